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

bool
ga_proto_has_payload(int cmd)
{
    return cmd == GA_CMD_CALL || cmd == GA_CMD_REQUEST || cmd == GA_CMD_REPLY ||
           cmd == GA_CMD_RESULT;
}

const char *
ga_proto_payload_key(int cmd)
{
    if (cmd == GA_CMD_CALL || cmd == GA_CMD_REQUEST) {
        return "args";
    }
    if (cmd == GA_CMD_REPLY || cmd == GA_CMD_RESULT) {
        return "result";
    }
    return NULL;
}

void
ga_proto_msg_init(ga_proto_msg_t *self)
{
    memset(self, 0, sizeof *self);
    ga_buf_init(&self->body);
    zmq_msg_init(&self->payload);
}

void
ga_proto_msg_fini(ga_proto_msg_t *self)
{
    ga_buf_fini(&self->body);
    zmq_msg_close(&self->payload);
    self->has_payload = false;
}

const uint8_t *
ga_proto_payload(const ga_proto_msg_t *msg, size_t *len)
{
    if (!msg->has_payload) {
        *len = 0;
        return NULL;
    }
    zmq_msg_t *m = (zmq_msg_t *) &msg->payload; // libzmq's accessors take no const
    *len = zmq_msg_size(m);
    return zmq_msg_data(m);
}

ga_err_t
ga_proto_payload_decode(const ga_proto_msg_t *msg, ga_arena_t *arena, ga_value_t *out)
{
    size_t len;
    const uint8_t *data = ga_proto_payload(msg, &len);
    if (data == NULL) {
        *out = ga_nil();
        return GA_OK;
    }
    return ga_wire_decode(data, len, arena, out);
}

ga_err_t
ga_proto_payload_merge(ga_proto_msg_t *msg, ga_arena_t *arena)
{
    const char *key = ga_proto_payload_key(msg->cmd);
    if (!msg->has_payload || key == NULL) {
        return GA_OK;
    }
    ga_value_t v;
    ga_err_t rc = ga_proto_payload_decode(msg, arena, &v);
    if (rc != GA_OK) {
        return rc;
    }
    ga_value_t *old = (ga_value_t *) ga_map_get(&msg->value, key);
    if (old) {
        *old = v;
    } else {
        ga_map_put(&msg->value, arena, key, v);
    }
    return GA_OK;
}

// Sends the frames before the envelope: routing id (ROUTER side), tag, command.
static ga_err_t
s_send_head(void *socket, const uint8_t *id, size_t id_len, int cmd)
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
    if (zmq_send(socket, &c, 1, ZMQ_SNDMORE) < 0) {
        return GA_EIO;
    }
    return GA_OK;
}

static int
s_send_envelope(void *socket, const ga_buf_t *body, int flags)
{
    return zmq_send(socket, body->data ? body->data : (const uint8_t *) "\x80",
                    body->data ? body->len : 1, flags);
}

ga_err_t
ga_proto_send(void *socket, const uint8_t *id, size_t id_len, int cmd, const ga_buf_t *body)
{
    ga_err_t rc = s_send_head(socket, id, id_len, cmd);
    if (rc != GA_OK) {
        return rc;
    }
    return s_send_envelope(socket, body, 0) < 0 ? GA_EIO : GA_OK;
}

ga_err_t
ga_proto_send_payload(void *socket, const uint8_t *id, size_t id_len, int cmd,
                      const ga_buf_t *envelope, const ga_buf_t *payload)
{
    if (payload == NULL || payload->len == 0) {
        return ga_proto_send(socket, id, id_len, cmd, envelope);
    }
    ga_err_t rc = s_send_head(socket, id, id_len, cmd);
    if (rc != GA_OK) {
        return rc;
    }
    if (s_send_envelope(socket, envelope, ZMQ_SNDMORE) < 0 ||
        zmq_send(socket, payload->data, payload->len, 0) < 0) {
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
ga_proto_forward(void *socket, const uint8_t *id, size_t id_len, int cmd,
                 const ga_buf_t *envelope, zmq_msg_t *payload)
{
    if (payload == NULL || zmq_msg_size(payload) == 0) {
        return ga_proto_send(socket, id, id_len, cmd, envelope);
    }
    ga_err_t rc = s_send_head(socket, id, id_len, cmd);
    if (rc != GA_OK) {
        return rc;
    }
    // A copy shares the received bytes (a reference count, or the few bytes of a small
    // message): the original stays for the next attempt.
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (s_send_envelope(socket, envelope, ZMQ_SNDMORE) < 0 || zmq_msg_copy(&part, payload) != 0 ||
        zmq_msg_send(&part, socket, 0) < 0) {
        zmq_msg_close(&part);
        return GA_EIO;
    }
    return GA_OK; // a sent message is closed by libzmq
}

ga_err_t
ga_proto_send_split(void *socket, const uint8_t *id, size_t id_len, int cmd,
                    const ga_value_t *body, ga_buf_t *scratch, ga_buf_t *payload_scratch)
{
    const char *key = ga_proto_payload_key(cmd);
    const ga_value_t *v = key ? ga_map_get(body, key) : NULL;
    if (v == NULL) {
        return ga_proto_send_value(socket, id, id_len, cmd, body, scratch);
    }
    // The envelope: every pair but the payload's, encoded as a map one shorter.
    ga_value_t env = *body;
    ga_pair_t pairs[64];
    ga_pair_t *heap = NULL;
    ga_pair_t *dst = pairs;
    if (body->len > 64) {
        dst = heap = ga_calloc(body->len, sizeof *heap);
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < body->len; i++) {
        if (strcmp(body->u.pairs[i].key, key) != 0) {
            dst[n++] = body->u.pairs[i];
        }
    }
    env.u.pairs = dst;
    env.len = n;
    ga_buf_reset(scratch);
    ga_wire_encode(scratch, &env);
    ga_free(heap);
    ga_buf_reset(payload_scratch);
    ga_wire_encode(payload_scratch, v);
    return ga_proto_send_payload(socket, id, id_len, cmd, scratch, payload_scratch);
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

// Decodes msg->body as the envelope: a well-formed map, or GA_EPROTO.
static ga_err_t
s_decode_envelope(ga_proto_msg_t *msg, ga_arena_t *arena)
{
    ga_err_t rc = ga_wire_decode(msg->body.data, msg->body.len, arena, &msg->value);
    if (rc != GA_OK || msg->value.type != GA_MAP) {
        return GA_EPROTO;
    }
    return GA_OK;
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
    msg->peer_version = 0;
    if (msg->has_payload) {
        zmq_msg_close(&msg->payload);
        zmq_msg_init(&msg->payload);
        msg->has_payload = false;
    }
    if (zmq_msg_recv(&part, socket, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&part);
        return e == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    for (;;) {
        const uint8_t *data = zmq_msg_data(&part);
        size_t size = zmq_msg_size(&part);
        int slot = routed ? frame : frame + 1; // 0 id, 1 tag, 2 command, 3 envelope, 4 payload
        bool more = zmq_msg_more(&part);
        if (slot == 0) {
            if (size == 0 || size > GA_PROTO_MAX_ID) {
                goto out;
            }
            memcpy(msg->id, data, size);
            msg->id_len = size;
        } else if (slot == 1) {
            if (size != GA_PROTO_TAG_LEN || memcmp(data, GA_PROTO_TAG, GA_PROTO_TAG_LEN) != 0) {
                if (size == GA_PROTO_TAG_LEN && memcmp(data, GA_PROTO_TAG, 4) == 0) {
                    msg->peer_version = data[4] ? data[4] : 0xff; // another version: say so
                }
                goto out;
            }
            // Who sent it, as the ZAP handler named it (CURVE on); a frame the peer sent, so
            // it carries the connection's metadata.
            const char *user = msg->want_user_id ? zmq_msg_gets(&part, "User-Id") : NULL;
            if (user) {
                snprintf(msg->user_id, sizeof msg->user_id, "%s", user);
            }
        } else if (slot == 2) {
            if (size != 1 || ga_cmd_name(data[0]) == NULL) {
                goto out;
            }
            msg->cmd = data[0];
        } else if (slot == 3) {
            bool payload = ga_proto_has_payload(msg->cmd);
            if ((more && !payload) ||
                size > (more ? GA_PROTO_MAX_ENVELOPE : GA_PROTO_MAX_BODY)) {
                goto out;
            }
            ga_buf_append(&msg->body, data, size);
            if (!more) {
                rc = s_decode_envelope(msg, arena);
                goto out;
            }
        } else if (slot == 4) {
            if (more || size == 0 || size > GA_PROTO_MAX_BODY) {
                goto out;
            }
            rc = s_decode_envelope(msg, arena);
            if (rc == GA_OK) {
                zmq_msg_move(&msg->payload, &part); // kept as received: forwarded, not copied
                msg->has_payload = true;
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
    if (rc != GA_OK) {
        msg->value = ga_nil();
    }
    return rc;
}
