// SPDX-License-Identifier: MIT
// Multipart framing over libzmq: every frame of a message is read even when the message is
// refused, so a malformed message can never desynchronise the stream.
#include "ga_proto.h"

#include "ga_log.h"
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
    case GA_CMD_BATCH:
        return "BATCH";
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
    zmq_msg_init(&self->batch);
}

void
ga_proto_msg_fini(ga_proto_msg_t *self)
{
    ga_buf_fini(&self->body);
    zmq_msg_close(&self->payload);
    zmq_msg_close(&self->batch);
    self->batch_held = false;
    self->payload_is_frame = false;
    self->has_payload = false;
    self->payload_data = NULL;
    self->payload_len = 0;
    self->batch_socket = NULL;
}

const uint8_t *
ga_proto_payload(const ga_proto_msg_t *msg, size_t *len)
{
    if (!msg->has_payload) {
        *len = 0;
        return NULL;
    }
    *len = msg->payload_len;
    return msg->payload_data;
}

ga_proto_payload_t
ga_proto_msg_payload(const ga_proto_msg_t *msg)
{
    ga_proto_payload_t p = {.data = NULL, .len = 0, .frame = NULL};
    if (msg->has_payload) {
        p.data = msg->payload_data;
        p.len = msg->payload_len;
        // A frame of its own (libzmq's accessors take no const; a copy of it only takes a
        // reference, which changes its bookkeeping, never its bytes).
        p.frame = msg->payload_is_frame ? (zmq_msg_t *) &msg->payload : NULL;
    }
    return p;
}

void
ga_proto_msg_take_payload(ga_proto_msg_t *msg, zmq_msg_t *frame)
{
    zmq_msg_move(&msg->payload, frame);
    msg->payload_is_frame = true;
    msg->has_payload = true;
    // Asked after the move: a small message's bytes live inside the message itself.
    msg->payload_data = zmq_msg_data(&msg->payload);
    msg->payload_len = zmq_msg_size(&msg->payload);
}

ga_proto_payload_t
ga_proto_payload_of(zmq_msg_t *m)
{
    ga_proto_payload_t p = {.data = zmq_msg_data(m), .len = zmq_msg_size(m), .frame = m};
    if (p.len == 0) {
        p.data = NULL;
        p.frame = NULL;
    }
    return p;
}

ga_err_t
ga_proto_payload_keep(const ga_proto_payload_t *p, zmq_msg_t *out)
{
    if (p->frame != NULL) {
        if (zmq_msg_copy(out, p->frame) == 0) {
            return GA_OK;
        }
        zmq_msg_close(out);
        zmq_msg_init(out);
        return GA_EIO;
    }
    zmq_msg_close(out);
    if (p->len == 0) {
        zmq_msg_init(out);
        return GA_OK;
    }
    // Up to 33 bytes live inside the message itself; more take one allocation.
    if (zmq_msg_init_size(out, p->len) != 0) {
        zmq_msg_init(out);
        return GA_EIO;
    }
    memcpy(zmq_msg_data(out), p->data, p->len);
    return GA_OK;
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
    return ga_wire_decode_map(data, len, arena, out); // args and results: mostly flat maps
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

// Makes `m` the head frame: the tag, the command, then the envelope `env` (`len` bytes; an
// empty map when NULL). GA_EIO when no memory.
static ga_err_t
s_head_frame(zmq_msg_t *m, int cmd, const uint8_t *env, size_t len)
{
    if (env == NULL || len == 0) {
        env = (const uint8_t *) "\x80";
        len = 1;
    }
    if (zmq_msg_init_size(m, GA_PROTO_HEAD_LEN + len) != 0) {
        zmq_msg_init(m);
        return GA_EIO;
    }
    uint8_t *d = zmq_msg_data(m);
    memcpy(d, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
    d[GA_PROTO_TAG_LEN] = (uint8_t) cmd;
    memcpy(d + GA_PROTO_HEAD_LEN, env, len);
    return GA_OK;
}

// Sends the routing id (ROUTER side) and the head frame (`flags`: ZMQ_SNDMORE when a payload
// follows). ZMQ_DONTWAIT on the first frame decides for the whole message: once one frame is
// queued the rest of a multipart message is always accepted.
static ga_err_t
s_send_head(void *socket, const uint8_t *id, size_t id_len, int cmd, const uint8_t *env,
            size_t env_len, int flags)
{
    zmq_msg_t head;
    if (s_head_frame(&head, cmd, env, env_len) != GA_OK) {
        return GA_EIO;
    }
    ga_err_t rc = GA_OK;
    if (id != NULL) {
        if (zmq_send(socket, id, id_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
            rc = zmq_errno() == EAGAIN ? GA_EAGAIN : GA_EIO;
        } else if (zmq_msg_send(&head, socket, flags) < 0) {
            rc = GA_EIO;
        }
    } else if (zmq_msg_send(&head, socket, ZMQ_DONTWAIT | flags) < 0) {
        rc = zmq_errno() == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    if (rc != GA_OK) {
        zmq_msg_close(&head); // a sent message is closed by libzmq
    }
    return rc;
}

ga_err_t
ga_proto_send(void *socket, const uint8_t *id, size_t id_len, int cmd, const ga_buf_t *body)
{
    return s_send_head(socket, id, id_len, cmd, body->data, body->len, 0);
}

ga_err_t
ga_proto_send_payload(void *socket, const uint8_t *id, size_t id_len, int cmd,
                      const ga_buf_t *envelope, const ga_buf_t *payload)
{
    if (payload == NULL || payload->len == 0) {
        return ga_proto_send(socket, id, id_len, cmd, envelope);
    }
    ga_err_t rc = s_send_head(socket, id, id_len, cmd, envelope->data, envelope->len,
                              ZMQ_SNDMORE);
    if (rc != GA_OK) {
        return rc;
    }
    return zmq_send(socket, payload->data, payload->len, 0) < 0 ? GA_EIO : GA_OK;
}

ga_err_t
ga_proto_forward_bytes(void *socket, const uint8_t *id, size_t id_len, int cmd,
                       const uint8_t *env, size_t env_len, const ga_proto_payload_t *payload)
{
    bool has_payload = payload != NULL && payload->len > 0;
    ga_err_t rc = s_send_head(socket, id, id_len, cmd, env, env_len, has_payload ? ZMQ_SNDMORE : 0);
    if (rc != GA_OK || !has_payload) {
        return rc;
    }
    if (payload->frame == NULL) {
        return zmq_send(socket, payload->data, payload->len, 0) < 0 ? GA_EIO : GA_OK;
    }
    // A copy shares the received bytes (a reference count, or the few bytes of a small
    // message): the original stays for the next attempt.
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_copy(&part, payload->frame) != 0 || zmq_msg_send(&part, socket, 0) < 0) {
        zmq_msg_close(&part);
        return GA_EIO;
    }
    return GA_OK; // a sent message is closed by libzmq
}

ga_err_t
ga_proto_forward(void *socket, const uint8_t *id, size_t id_len, int cmd,
                 const ga_buf_t *envelope, const ga_proto_payload_t *payload)
{
    return ga_proto_forward_bytes(socket, id, id_len, cmd, envelope->data, envelope->len,
                                  payload);
}

// ---------------------------------------------------------------------------------------------
// Batches: several items in one message (docs/protocol.md, "Batches").

void
ga_proto_batch_init(ga_proto_batch_t *self, void *socket, unsigned max_items)
{
    memset(self, 0, sizeof *self);
    self->socket = socket;
    self->max_items = max_items ? max_items : 1;
    ga_buf_init(&self->frame);
}

void
ga_proto_batch_fini(ga_proto_batch_t *self)
{
    ga_proto_batch_close(self);
    ga_buf_fini(&self->frame);
}

void
ga_proto_batch_close(ga_proto_batch_t *self)
{
    if (!self->open) {
        return;
    }
    self->open = false;
    self->messages++;
    // A ROUTER's message was accepted with its routing id: the rest of it always is. A DEALER
    // was writable when the message opened and nothing was sent on it since.
    int flags = self->id_len ? 0 : ZMQ_DONTWAIT;
    if (zmq_send(self->socket, self->frame.data, self->frame.len, flags) < 0) {
        self->lost += self->items;
        GA_WARN("a batch of %u item(s) was refused by its socket: %s", self->items,
                zmq_strerror(zmq_errno()));
    }
}

// Appends `v` as four big-endian bytes.
static void
s_put_u32(ga_buf_t *out, uint32_t v)
{
    uint8_t *d = ga_buf_reserve(out, 4);
    d[0] = (uint8_t) (v >> 24);
    d[1] = (uint8_t) (v >> 16);
    d[2] = (uint8_t) (v >> 8);
    d[3] = (uint8_t) v;
    out->len += 4;
}

ga_err_t
ga_proto_batch_add(ga_proto_batch_t *self, const uint8_t *id, size_t id_len, int cmd,
                   const uint8_t *env, size_t env_len, const uint8_t *payload,
                   size_t payload_len)
{
    if (env == NULL || env_len == 0) {
        env = (const uint8_t *) "\x80";
        env_len = 1;
    }
    if (env_len > GA_PROTO_MAX_BODY || payload_len > GA_PROTO_MAX_BODY) {
        return GA_EIO; // never sent: a reader would refuse it
    }
    size_t item_len = 9 + env_len + payload_len;
    if (self->open && (self->items >= self->max_items || self->id_len != id_len ||
                       (id_len && memcmp(self->id, id, id_len) != 0) ||
                       self->frame.len + item_len > GA_PROTO_BATCH_BYTES)) {
        ga_proto_batch_close(self);
    }
    if (!self->open) {
        // Whether the peer takes the message is known now (high-water mark, unknown peer).
        if (id != NULL) {
            if (zmq_send(self->socket, id, id_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
                return zmq_errno() == EAGAIN ? GA_EAGAIN : GA_EIO;
            }
        } else {
            int events = 0;
            size_t size = sizeof events;
            if (zmq_getsockopt(self->socket, ZMQ_EVENTS, &events, &size) != 0) {
                return GA_EIO;
            }
            if (!(events & ZMQ_POLLOUT)) {
                return GA_EAGAIN;
            }
        }
        self->open = true;
        self->items = 0;
        self->id_len = id_len;
        if (id_len) {
            memcpy(self->id, id, id_len);
        }
        ga_buf_reset(&self->frame);
        uint8_t *d = ga_buf_reserve(&self->frame, GA_PROTO_HEAD_LEN);
        memcpy(d, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
        d[GA_PROTO_TAG_LEN] = GA_CMD_BATCH;
        self->frame.len += GA_PROTO_HEAD_LEN;
    }
    ga_buf_reserve(&self->frame, item_len);
    ga_buf_append_char(&self->frame, (char) cmd);
    s_put_u32(&self->frame, (uint32_t) env_len);
    ga_buf_append(&self->frame, env, env_len);
    s_put_u32(&self->frame, (uint32_t) payload_len);
    if (payload_len) {
        ga_buf_append(&self->frame, payload, payload_len);
    }
    self->items++;
    self->sent++;
    return GA_OK;
}

// ---------------------------------------------------------------------------------------------
// Envelope edits: a map rewritten pair by pair, the untouched pairs copied as bytes.

#define S_MAP_HEAD_MAX 5 // 0xdf and a 32-bit count

// Appends a string header and bytes as msgpack-c's packer writes them (the shortest form).
static void
s_put_str(ga_buf_t *out, const char *s, size_t n)
{
    uint8_t *h = ga_buf_reserve(out, 5);
    size_t hn;
    if (n < 32) {
        h[0] = (uint8_t) (0xa0 | n);
        hn = 1;
    } else if (n < 256) {
        h[0] = 0xd9;
        h[1] = (uint8_t) n;
        hn = 2;
    } else if (n < 65536) {
        h[0] = 0xda;
        h[1] = (uint8_t) (n >> 8);
        h[2] = (uint8_t) n;
        hn = 3;
    } else {
        h[0] = 0xdb;
        for (int i = 0; i < 4; i++) {
            h[1 + i] = (uint8_t) (n >> (24 - 8 * i));
        }
        hn = 5;
    }
    out->len += hn;
    ga_buf_append(out, s, n);
}

// Appends `v` as msgpack-c's packer encodes it (the shortest form for an integer); an int or a
// bool here, anything else through ga_wire_encode.
static void
s_put_value(ga_buf_t *out, const ga_value_t *v)
{
    if (v->type == GA_BOOL) {
        ga_buf_append_char(out, v->u.b ? (char) 0xc3 : (char) 0xc2);
        return;
    }
    if (v->type != GA_INT) {
        ga_wire_encode(out, v);
        return;
    }
    int64_t i = v->u.i;
    uint64_t u = (uint64_t) i;
    uint8_t *h = ga_buf_reserve(out, 9);
    if (i >= -32 && i < 128) {
        h[0] = (uint8_t) u; // a positive or negative fixint
        out->len += 1;
        return;
    }
    int n; // bytes after the header byte
    if (i > 0) {
        n = i < 256 ? 1 : i < 65536 ? 2 : i <= (int64_t) UINT32_MAX ? 4 : 8;
        h[0] = n == 1 ? 0xcc : n == 2 ? 0xcd : n == 4 ? 0xce : 0xcf;
    } else {
        n = i >= -128 ? 1 : i >= -32768 ? 2 : i >= INT32_MIN ? 4 : 8;
        h[0] = n == 1 ? 0xd0 : n == 2 ? 0xd1 : n == 4 ? 0xd2 : 0xd3;
    }
    switch (n) { // big-endian, written out: no loop per byte
    case 1:
        h[1] = (uint8_t) u;
        break;
    case 2:
        h[1] = (uint8_t) (u >> 8);
        h[2] = (uint8_t) u;
        break;
    case 4:
        h[1] = (uint8_t) (u >> 24);
        h[2] = (uint8_t) (u >> 16);
        h[3] = (uint8_t) (u >> 8);
        h[4] = (uint8_t) u;
        break;
    default: // 8, as a wall-clock time in milliseconds is
        h[1] = (uint8_t) (u >> 56);
        h[2] = (uint8_t) (u >> 48);
        h[3] = (uint8_t) (u >> 40);
        h[4] = (uint8_t) (u >> 32);
        h[5] = (uint8_t) (u >> 24);
        h[6] = (uint8_t) (u >> 16);
        h[7] = (uint8_t) (u >> 8);
        h[8] = (uint8_t) u;
        break;
    }
    out->len += 1 + (size_t) n;
}

// Reads a map or string header's count: `*count` and the header's length; false when the byte
// at `p` starts no header of that kind (or the input ends inside it).
static bool
s_read_head(const uint8_t *p, const uint8_t *end, bool map, uint64_t *count, size_t *hn)
{
    if (p >= end) {
        return false;
    }
    uint8_t c = *p;
    int n;
    if (map && (c & 0xf0) == 0x80) {
        *count = c & 0x0f;
        *hn = 1;
        return true;
    }
    if (!map && (c & 0xe0) == 0xa0) {
        *count = c & 0x1f;
        *hn = 1;
        return true;
    }
    if (map) {
        n = c == 0xde ? 2 : c == 0xdf ? 4 : 0;
    } else {
        n = c == 0xd9 || c == 0xc4 ? 1 : c == 0xda || c == 0xc5 ? 2 : c == 0xdb || c == 0xc6 ? 4 : 0;
    }
    if (n == 0 || end - p - 1 < n) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 1; i <= n; i++) {
        v = (v << 8) | p[i];
    }
    *count = v;
    *hn = 1 + (size_t) n;
    return true;
}

// The length of the value at `p` (at most `avail` bytes): scalars and strings here, arrays and
// maps through ga_wire_scan_first (which checks them whole); 0 when malformed.
static size_t
s_value_len(const uint8_t *p, size_t avail)
{
    if (avail == 0) {
        return 0;
    }
    uint8_t c = p[0];
    size_t n;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        return 1;
    }
    if ((c & 0xe0) == 0xa0) {
        n = 1 + (size_t) (c & 0x1f);
        return n <= avail ? n : 0;
    }
    switch (c) {
    case 0xcc:
    case 0xd0:
        n = 2;
        break;
    case 0xcd:
    case 0xd1:
        n = 3;
        break;
    case 0xca:
    case 0xce:
    case 0xd2:
        n = 5;
        break;
    case 0xcb:
    case 0xcf:
    case 0xd3:
        n = 9;
        break;
    case 0xc4:
    case 0xd9:
        n = avail >= 2 ? 2 + (size_t) p[1] : 0;
        break;
    case 0xc5:
    case 0xda:
        n = avail >= 3 ? 3 + ((size_t) p[1] << 8 | p[2]) : 0;
        break;
    default:
        if (ga_wire_scan_first(p, avail, &n) != GA_OK) {
            return 0;
        }
        break;
    }
    return n <= avail ? n : 0;
}

// Whether the `n` bytes at `key` are those of `s` (at least `n` long): by hand, as keys are
// short and most differ in their first bytes.
static inline bool
s_same_key(const char *s, const uint8_t *key, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if ((uint8_t) s[j] != key[j]) {
            return false;
        }
    }
    return true;
}

// ga_proto_envelope_edit and ga_proto_envelope_edit_decoded: with `decoded`, the keys are not
// checked for NUL bytes (the decoder did it). Every length is checked against the end either way.
static inline ga_err_t
s_envelope_edit(const uint8_t *env, size_t len, const ga_proto_edit_t *edits, size_t n_edits,
                ga_buf_t *out, const uint8_t **data, size_t *data_len, bool decoded)
{
    *data = NULL;
    *data_len = 0;
    const uint8_t *p = env;
    const uint8_t *end = env + len;
    uint64_t pairs;
    size_t hn;
    if (env == NULL || !s_read_head(p, end, true, &pairs, &hn) || pairs > len / 2) {
        return GA_EPROTO;
    }
    p += hn;
    size_t key_len[8];
    if (n_edits > sizeof key_len / sizeof key_len[0]) {
        return GA_EPROTO;
    }
    // A pair's key is compared with the edits' only when an edit has a key of its length (bit
    // `length` of len_mask; keys of 64 bytes or more always are).
    uint64_t len_mask = 0;
    for (size_t k = 0; k < n_edits; k++) {
        key_len[k] = strlen(edits[k].key);
        len_mask |= key_len[k] < 64 ? (uint64_t) 1 << key_len[k] : 0;
    }
    ga_buf_reset(out);
    ga_buf_reserve(out, S_MAP_HEAD_MAX + len + 32);
    out->len = S_MAP_HEAD_MAX; // the header goes last, right before the pairs
    uint64_t count = 0;
    const uint8_t *run = p; // kept pairs not copied yet start here: copied in one go
    for (uint64_t i = 0; i < pairs; i++) {
        const uint8_t *pair = p;
        uint64_t klen;
        if (p < end && (*p & 0xe0) == 0xa0) { // a fixstr key, as nearly all are
            klen = *p & 0x1fu;
            hn = 1;
        } else if (!s_read_head(p, end, false, &klen, &hn)) {
            return GA_EPROTO;
        }
        if (klen > (uint64_t) (end - p) - hn) {
            return GA_EPROTO;
        }
        const uint8_t *key = p + hn;
        if (!decoded && klen > 0 && memchr(key, '\0', (size_t) klen) != NULL) {
            return GA_EPROTO; // as the decoder refuses it
        }
        p = key + klen;
        size_t vlen = s_value_len(p, (size_t) (end - p));
        if (vlen == 0) {
            return GA_EPROTO;
        }
        const uint8_t *value = p;
        p += vlen;
        if (klen < 64 && !(len_mask >> klen & 1)) {
            count++; // no edit has a key this long
            continue;
        }
        const ga_proto_edit_t *e = NULL;
        for (size_t k = 0; k < n_edits; k++) {
            if (key_len[k] == klen && s_same_key(edits[k].key, key, (size_t) klen)) {
                e = &edits[k];
                break;
            }
        }
        if (e == NULL) {
            count++;
            continue;
        }
        ga_buf_append(out, run, (size_t) (pair - run));
        run = p;
        if (e->value && !e->append) {
            ga_buf_append(out, pair, (size_t) (value - pair)); // the key as it came
            s_put_value(out, e->value);
            count++;
        }
    }
    if (p != end) {
        return GA_EPROTO; // trailing bytes
    }
    ga_buf_append(out, run, (size_t) (p - run));
    for (size_t k = 0; k < n_edits; k++) {
        if (edits[k].value && edits[k].append) {
            s_put_str(out, edits[k].key, key_len[k]);
            s_put_value(out, edits[k].value);
            count++;
        }
    }
    uint8_t *h;
    if (count < 16) {
        h = out->data + S_MAP_HEAD_MAX - 1;
        h[0] = (uint8_t) (0x80 | count);
    } else if (count < 65536) {
        h = out->data + S_MAP_HEAD_MAX - 3;
        h[0] = 0xde;
        h[1] = (uint8_t) (count >> 8);
        h[2] = (uint8_t) count;
    } else {
        h = out->data;
        h[0] = 0xdf;
        for (int i = 0; i < 4; i++) {
            h[1 + i] = (uint8_t) (count >> (24 - 8 * i));
        }
    }
    *data = h;
    *data_len = out->len - (size_t) (h - out->data);
    return GA_OK;
}

ga_err_t
ga_proto_envelope_edit(const uint8_t *env, size_t len, const ga_proto_edit_t *edits,
                       size_t n_edits, ga_buf_t *out, const uint8_t **data, size_t *data_len)
{
    return s_envelope_edit(env, len, edits, n_edits, out, data, data_len, false);
}

ga_err_t
ga_proto_envelope_edit_decoded(const uint8_t *env, size_t len, const ga_proto_edit_t *edits,
                               size_t n_edits, ga_buf_t *out, const uint8_t **data,
                               size_t *data_len)
{
    return s_envelope_edit(env, len, edits, n_edits, out, data, data_len, true);
}

// Encodes `body` as ga_proto_send_split sends it: the envelope into `scratch`, the payload
// into `payload_scratch` (left empty when the body has none).
static void
s_split_encode(int cmd, const ga_value_t *body, ga_buf_t *scratch, ga_buf_t *payload_scratch)
{
    const char *key = ga_proto_payload_key(cmd);
    const ga_value_t *v = key ? ga_map_get(body, key) : NULL;
    ga_buf_reset(scratch);
    ga_buf_reset(payload_scratch);
    if (v == NULL) {
        ga_wire_encode(scratch, body);
        return;
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
    ga_wire_encode(scratch, &env);
    ga_free(heap);
    ga_wire_encode(payload_scratch, v);
}

ga_err_t
ga_proto_send_split(void *socket, const uint8_t *id, size_t id_len, int cmd,
                    const ga_value_t *body, ga_buf_t *scratch, ga_buf_t *payload_scratch)
{
    s_split_encode(cmd, body, scratch, payload_scratch);
    return ga_proto_send_payload(socket, id, id_len, cmd, scratch, payload_scratch);
}

ga_err_t
ga_proto_batch_add_split(ga_proto_batch_t *self, const uint8_t *id, size_t id_len, int cmd,
                         const ga_value_t *body, ga_buf_t *scratch, ga_buf_t *payload_scratch)
{
    s_split_encode(cmd, body, scratch, payload_scratch);
    return ga_proto_batch_add(self, id, id_len, cmd, scratch->data, scratch->len,
                              payload_scratch->data, payload_scratch->len);
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
    ga_err_t rc = ga_wire_decode_map(msg->body.data, msg->body.len, arena, &msg->value);
    if (rc != GA_OK || msg->value.type != GA_MAP) {
        return GA_EPROTO;
    }
    return GA_OK;
}

// Whether the frame `data` (`size` bytes) is a head frame: the tag, a known command and at
// least one byte of envelope (its command in *cmd). Sets msg->peer_version when it starts with
// our tag's letters and another version.
static bool
s_is_head(const uint8_t *data, size_t size, ga_proto_msg_t *msg, int *cmd)
{
    if (size <= GA_PROTO_HEAD_LEN || memcmp(data, GA_PROTO_TAG, GA_PROTO_TAG_LEN) != 0) {
        if (size >= GA_PROTO_TAG_LEN && memcmp(data, GA_PROTO_TAG, 4) == 0 &&
            data[4] != GA_PROTO_VERSION) {
            msg->peer_version = data[4] ? data[4] : 0xff; // another version: say so
        }
        return false;
    }
    *cmd = data[GA_PROTO_TAG_LEN];
    return ga_cmd_name(*cmd) != NULL;
}

// Drops the payload of the previous receive.
static void
s_payload_reset(ga_proto_msg_t *msg)
{
    if (msg->payload_is_frame) {
        zmq_msg_close(&msg->payload);
        zmq_msg_init(&msg->payload);
        msg->payload_is_frame = false;
    }
    msg->has_payload = false;
    msg->payload_data = NULL;
    msg->payload_len = 0;
}

// Reads the rest of a message whose head frame (checked, msg->cmd set) is in `part`: its
// envelope and the payload frame when one comes; nothing may follow. On an error `part` holds
// the last frame read (the caller drains the rest of the message from it).
// The head frame's bytes and size are given (`head`, `head_size`: libzmq's accessors are
// called once per frame).
static ga_err_t
s_recv_rest(void *socket, ga_proto_msg_t *msg, ga_arena_t *arena, zmq_msg_t *part,
            const uint8_t *head, size_t head_size)
{
    size_t size = head_size - GA_PROTO_HEAD_LEN;
    if (size > GA_PROTO_MAX_BODY) {
        return GA_EPROTO;
    }
    ga_buf_append(&msg->body, head + GA_PROTO_HEAD_LEN, size);
    if (!zmq_msg_more(part)) {
        return s_decode_envelope(msg, arena);
    }
    if (zmq_msg_recv(part, socket, 0) < 0) {
        return GA_EIO;
    }
    const uint8_t *data = zmq_msg_data(part);
    size = zmq_msg_size(part);
    // A payload frame: one MessagePack value, so never a head (a value starting with "G" is
    // the one-byte fixint 71). A frame that starts with the tag is malformed, never a payload.
    if (!ga_proto_has_payload(msg->cmd) || msg->body.len > GA_PROTO_MAX_ENVELOPE ||
        size == 0 || size > GA_PROTO_MAX_BODY || zmq_msg_more(part) ||
        (size >= 4 && memcmp(data, GA_PROTO_TAG, 4) == 0)) {
        return GA_EPROTO;
    }
    ga_proto_msg_take_payload(msg, part); // kept as received: forwarded, not copied
    return s_decode_envelope(msg, arena);
}

// Reads a big-endian 32-bit length.
static inline size_t
s_get_u32(const uint8_t *p)
{
    return (size_t) p[0] << 24 | (size_t) p[1] << 16 | (size_t) p[2] << 8 | (size_t) p[3];
}

// Reads the item at msg->batch_off in msg->batch (`socket`'s): its command, envelope and
// payload (pointing into the batch frame). Leaves msg->batch_socket set when more items follow.
static ga_err_t
s_batch_item(void *socket, ga_proto_msg_t *msg, ga_arena_t *arena)
{
    const uint8_t *d = zmq_msg_data(&msg->batch);
    size_t size = zmq_msg_size(&msg->batch);
    size_t off = msg->batch_off;
    if (off > size || size - off < 9) {
        return GA_EPROTO;
    }
    int cmd = d[off];
    size_t env_len = s_get_u32(d + off + 1);
    off += 5;
    if (cmd == GA_CMD_BATCH || ga_cmd_name(cmd) == NULL || env_len == 0 ||
        env_len > GA_PROTO_MAX_BODY || size - off < env_len + 4) {
        return GA_EPROTO;
    }
    const uint8_t *env = d + off;
    off += env_len;
    size_t payload_len = s_get_u32(d + off);
    off += 4;
    if (payload_len > 0 &&
        (!ga_proto_has_payload(cmd) || env_len > GA_PROTO_MAX_ENVELOPE ||
         payload_len > GA_PROTO_MAX_BODY || size - off < payload_len)) {
        return GA_EPROTO;
    }
    msg->cmd = cmd;
    ga_buf_append(&msg->body, env, env_len);
    if (payload_len > 0) {
        msg->has_payload = true;
        msg->payload_data = d + off;
        msg->payload_len = payload_len;
        off += payload_len;
    }
    ga_err_t rc = s_decode_envelope(msg, arena);
    if (rc == GA_OK && off < size) {
        msg->batch_off = off;
        msg->batch_socket = socket;
    }
    return rc;
}

ga_err_t
ga_proto_recv(void *socket, bool routed, ga_proto_msg_t *msg, ga_arena_t *arena)
{
    void *batch = msg->batch_socket;
    msg->batch_socket = NULL;
    msg->cmd = 0;
    ga_buf_reset(&msg->body);
    msg->value = ga_nil();
    msg->peer_version = 0;
    s_payload_reset(msg);
    ga_err_t rc = GA_EPROTO;
    if (batch != NULL) {
        // The next item of a batch read in part: same sender (id and user id kept). On another
        // socket (a caller's bug) the rest of the batch is dropped; no socket is out of step.
        // (s_batch_item sets msg->batch_socket again only when it read an item and more follow.)
        rc = batch == socket ? s_batch_item(socket, msg, arena) : GA_EPROTO;
        if (rc != GA_OK) {
            msg->value = ga_nil();
            s_payload_reset(msg);
        }
        return rc;
    }
    if (msg->batch_held) {
        zmq_msg_close(&msg->batch); // read whole: its bytes are no longer pointed at
        zmq_msg_init(&msg->batch);
        msg->batch_held = false;
    }
    zmq_msg_t part;
    zmq_msg_init(&part);
    msg->id_len = 0;
    msg->user_id[0] = '\0';
    if (zmq_msg_recv(&part, socket, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&part);
        return e == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    if (routed) {
        size_t size = zmq_msg_size(&part);
        if (size == 0 || size > GA_PROTO_MAX_ID || !zmq_msg_more(&part)) {
            goto out;
        }
        memcpy(msg->id, zmq_msg_data(&part), size);
        msg->id_len = size;
        if (zmq_msg_recv(&part, socket, 0) < 0) {
            rc = GA_EIO;
            goto out;
        }
    }
    int cmd = 0;
    const uint8_t *head = zmq_msg_data(&part);
    size_t head_size = zmq_msg_size(&part);
    if (!s_is_head(head, head_size, msg, &cmd)) {
        goto out;
    }
    // Who sent it, as the ZAP handler named it (CURVE on); a frame the peer sent, so it
    // carries the connection's metadata.
    const char *user = msg->want_user_id ? zmq_msg_gets(&part, "User-Id") : NULL;
    if (user) {
        snprintf(msg->user_id, sizeof msg->user_id, "%s", user);
    }
    if (cmd == GA_CMD_BATCH) {
        if (zmq_msg_more(&part)) {
            goto out; // a batch is the message's last frame
        }
        zmq_msg_move(&msg->batch, &part); // its items point into it until the next receive
        msg->batch_held = true;
        msg->batch_off = GA_PROTO_HEAD_LEN;
        rc = s_batch_item(socket, msg, arena);
        goto out;
    }
    msg->cmd = cmd;
    rc = s_recv_rest(socket, msg, arena, &part, head, head_size);
out:
    if (rc != GA_OK) {
        // The rest of the message goes with it.
        s_drain(socket, &part); // `part` holds the last frame read (empty after a move)
        msg->value = ga_nil();
        s_payload_reset(msg);
    }
    zmq_msg_close(&part);
    return rc;
}
