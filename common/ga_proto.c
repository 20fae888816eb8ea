// SPDX-License-Identifier: MIT
// Multipart framing over libzmq: every frame of a message is read even when the message is
// refused, so a malformed message can never desynchronise the stream.
#include "ga_proto.h"

#include "ga_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

const char *
ga_cmd_name(int cmd)
{
    switch (cmd) {
    case GA_CMD_REGISTER:
        return "REGISTER";
    case GA_CMD_REGISTERED:
        return "REGISTERED";
    case GA_CMD_HEARTBEAT:
        return "HEARTBEAT";
    case GA_CMD_REQUEST:
        return "REQUEST";
    case GA_CMD_REPLY:
        return "REPLY";
    case GA_CMD_DISCONNECT:
        return "DISCONNECT";
    case GA_CMD_HELLO:
        return "HELLO";
    case GA_CMD_SNAPSHOT:
        return "SNAPSHOT";
    case GA_CMD_UPDATE:
        return "UPDATE";
    case GA_CMD_CALL:
        return "CALL";
    case GA_CMD_RESULT:
        return "RESULT";
    case GA_CMD_CANCEL:
        return "CANCEL";
    case GA_CMD_PULL_VERSION:
        return "PULL_VERSION";
    case GA_CMD_PULL:
        return "PULL";
    case GA_CMD_PULLED:
        return "PULLED";
    case GA_CMD_STOP:
        return "STOP";
    case GA_CMD_ADMIN:
        return "ADMIN";
    case GA_CMD_ADMIN_REPLY:
        return "ADMIN_REPLY";
    case GA_CMD_GATEWAY_ADMIN:
        return "GATEWAY_ADMIN";
    case GA_CMD_GATEWAY_ADMIN_REPLY:
        return "GATEWAY_ADMIN_REPLY";
    case GA_CMD_STREAM:
        return "STREAM";
    case GA_CMD_GROUP:
        return "GROUP";
    case GA_CMD_GROUP_REPLY:
        return "GROUP_REPLY";
    case GA_CMD_GROUP_EVENT:
        return "GROUP_EVENT";
    case GA_CMD_RELAY:
        return "RELAY";
    default:
        return NULL;
    }
}

void
ga_proto_msg_init(ga_proto_msg_t *self)
{
    memset(self, 0, sizeof *self);
    ga_buf_init(&self->body);
}

void
ga_proto_msg_fini(ga_proto_msg_t *self)
{
    ga_buf_fini(&self->body);
}

ga_err_t
ga_proto_send(void *socket, const uint8_t *id, size_t id_len, int cmd, const ga_buf_t *body)
{
    uint8_t c = (uint8_t) cmd;
    // ZMQ_DONTWAIT on the first frame decides for the whole message: once one frame is queued
    // the rest of a multipart message is always accepted.
    if (id != NULL) {
        if (zmq_send(socket, id, id_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
            return zmq_errno() == EAGAIN ? GA_EAGAIN : GA_EIO;
        }
        if (zmq_send(socket, GA_PROTO_TAG, GA_PROTO_TAG_LEN, ZMQ_SNDMORE) < 0) {
            return GA_EIO;
        }
    } else if (zmq_send(socket, GA_PROTO_TAG, GA_PROTO_TAG_LEN, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
        return zmq_errno() == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    if (zmq_send(socket, &c, 1, ZMQ_SNDMORE) < 0 ||
        zmq_send(socket, body->data ? body->data : (const uint8_t *) "\x80",
                 body->data ? body->len : 1, 0) < 0) {
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
ga_proto_publish(void *socket, const char *topic, int cmd, const ga_buf_t *body)
{
    return ga_proto_send(socket, (const uint8_t *) topic, strlen(topic), cmd, body);
}

ga_err_t
ga_proto_send_value(void *socket, const uint8_t *id, size_t id_len, int cmd,
                    const ga_value_t *body, ga_buf_t *scratch)
{
    ga_buf_reset(scratch);
    ga_wire_encode(scratch, body);
    return ga_proto_send(socket, id, id_len, cmd, scratch);
}

// Reads the rest of a multipart message and throws it away.
static void
s_drain(void *socket, zmq_msg_t *part)
{
    while (zmq_msg_more(part)) {
        if (zmq_msg_recv(part, socket, 0) < 0) {
            return;
        }
    }
}

ga_err_t
ga_proto_recv(void *socket, bool routed, ga_proto_msg_t *msg, ga_arena_t *arena)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    ga_err_t rc = GA_EPROTO;
    int frame = 0;
    msg->id_len = 0;
    msg->cmd = 0;
    ga_buf_reset(&msg->body);
    msg->value = ga_nil();
    msg->user_id[0] = '\0';
    if (zmq_msg_recv(&part, socket, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&part);
        return e == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    for (;;) {
        const uint8_t *data = zmq_msg_data(&part);
        size_t size = zmq_msg_size(&part);
        int slot = routed ? frame : frame + 1; // 0 id, 1 tag, 2 command, 3 body
        bool more = zmq_msg_more(&part);
        if (slot == 0) {
            if (size == 0 || size > GA_PROTO_MAX_ID) {
                goto out;
            }
            memcpy(msg->id, data, size);
            msg->id_len = size;
        } else if (slot == 1) {
            if (size != GA_PROTO_TAG_LEN || memcmp(data, GA_PROTO_TAG, GA_PROTO_TAG_LEN) != 0) {
                goto out;
            }
            // Who sent it, as the ZAP handler named it (CURVE on); a frame the peer sent, so
            // it carries the connection's metadata.
            const char *user = msg->want_user_id ? zmq_msg_gets(&part, "User-Id") : NULL;
            snprintf(msg->user_id, sizeof msg->user_id, "%s", user ? user : "");
        } else if (slot == 2) {
            if (size != 1 || ga_cmd_name(data[0]) == NULL) {
                goto out;
            }
            msg->cmd = data[0];
        } else if (slot == 3) {
            if (more || size > GA_PROTO_MAX_BODY) {
                goto out;
            }
            ga_buf_append(&msg->body, data, size);
            rc = ga_wire_decode(msg->body.data, msg->body.len, arena, &msg->value);
            if (rc == GA_OK && msg->value.type != GA_MAP) {
                rc = GA_EPROTO;
            }
            if (rc != GA_OK) {
                rc = GA_EPROTO;
            }
            goto out;
        }
        if (!more) {
            goto out; // too few frames
        }
        frame++;
        if (zmq_msg_recv(&part, socket, 0) < 0) {
            rc = GA_EIO;
            goto out;
        }
    }
out:
    s_drain(socket, &part);
    zmq_msg_close(&part);
    return rc;
}
