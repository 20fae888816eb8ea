// SPDX-License-Identifier: MIT
// The service protocol's frame layout, shared by broker, gateway and worker library. Owns the
// protocol tag, the command codes and the send/receive of one multipart message; envelopes and
// bodies are MessagePack maps (ga_wire). docs/protocol.md is the full reference.
//
//   message   = [ routing-id ] head [ payload ]        ; routing-id: ROUTER side
//             / [ routing-id ] batch                  ; several items in one frame
//   head      = tag command envelope                  ; one frame: 6 bytes, then the envelope
//   tag       = "GAPI" %x05                           ; 4 ASCII bytes + protocol version
//   command   = 1 OCTET                               ; GA_CMD_*
//   envelope  = MessagePack map                       ; the body of commands without payload
//   payload   = one MessagePack value                 ; CALL, REQUEST: the args;
//                                                     ; REPLY, RESULT: the result
//
// The payload exists only for CALL, REQUEST, REPLY and RESULT (ga_proto_has_payload). The
// broker routes by the envelope and forwards the payload's bytes untouched (ga_proto_forward,
// ga_proto_batch_add), never decoding them unless a configured feature needs an argument value.
//
//   worker  -> broker : REGISTER HEARTBEAT REPLY DISCONNECT
//   broker  -> worker : REGISTERED HEARTBEAT REQUEST DISCONNECT CANCEL
//   gateway -> broker : HELLO HEARTBEAT CALL STOP ADMIN GATEWAY_ADMIN_REPLY
//   broker  -> gateway: SNAPSHOT UPDATE HEARTBEAT RESULT ADMIN_REPLY GATEWAY_ADMIN
//
// Stream chunks travel on the broker's XSUB/XPUB proxy instead, as topic messages:
//
//   topic-msg = topic head [data]                  ; head: tag STREAM body; topic "s.<gateway>.<id>"
//                                                  ; a batch adds its data (an array)
#ifndef GA_PROTO_H
#define GA_PROTO_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define GA_PROTO_TAG       "GAPI\x05"
#define GA_PROTO_TAG_LEN   5
#define GA_PROTO_HEAD_LEN  6                    // the head frame's first bytes: tag and command,
                                                // the envelope after them
#define GA_PROTO_VERSION   5                    // the tag's last byte; 4: a batch's items as
                                                // frames of their own; 3: tag and command in a
                                                // frame of their own, the envelope in the next;
                                                // 2: the command in a frame of its own too;
                                                // 1: one body, no payload
#define GA_PROTO_MAX_BODY  (4u * 1024u * 1024u) // bytes of a body or payload; larger: dropped
#define GA_PROTO_MAX_ENVELOPE (256u * 1024u)    // bytes of an envelope followed by a payload
#define GA_PROTO_BATCH_BYTES (256u * 1024u)   // a batch frame this long takes no more items
                                                // (one larger item travels in a batch alone)
#define GA_PROTO_MAX_ID    255                  // bytes of a ZeroMQ routing id
#define GA_PROTO_LIVENESS  3                    // heartbeats missed before a peer is dead
// The reason of the DISCONNECT a broker sends every worker and gateway at the end of its drain
// (docs/protocol.md, "Stopping").
#define GA_PROTO_BROKER_STOPPING "broker stopping"

typedef enum {
    GA_CMD_REGISTER = 0x01,   // W->B: {node, service, config_version, token?, functions}
    GA_CMD_REGISTERED = 0x02, // B->W: {ok, failed, heartbeat_ms, stream_port} or {ok:false, error}
    GA_CMD_HEARTBEAT = 0x03,  // both ways, all peers: {}; broker -> gateway: {seq}
    GA_CMD_REQUEST = 0x04,    // B->W: {id, service, request_type, version, deadline, ...} args
    GA_CMD_REPLY = 0x05,      // W->B: {id, ok, error?, code?, ...} result
    GA_CMD_DISCONNECT = 0x06, // both ways: {reason}; from the broker: register again
    GA_CMD_CANCEL = 0x07,     // B->W: {id}: stop the stream with this id (other calls ignore it)
    GA_CMD_PULL_VERSION = 0x08, // B->W: {id}: answered with PULLED {id, config_version}
    GA_CMD_PULL = 0x09,       // B->W: {id}: answered with PULLED {id, config_version, functions}
    GA_CMD_PULLED = 0x0A,     // W->B: the answer to PULL_VERSION or PULL (docs/protocol.md)
    GA_CMD_BATCH = 0x0B,      // any direction, peers that read them: several items in one frame
    GA_CMD_HELLO = 0x10,      // G->B: {name}: answered with a SNAPSHOT (also to resync)
    GA_CMD_SNAPSHOT = 0x11,   // B->G: {functions, seq, warming_ms, heartbeat_ms, stream_port}
    GA_CMD_UPDATE = 0x12,     // B->G: {seq, functions, removed: [{service, request_type, ...}]}
    GA_CMD_CALL = 0x13,       // G->B: {id, service, request_type, version, ...} args
    GA_CMD_RESULT = 0x14,     // B->G: {id, ok, error?, code, can_retry, stopped?} result
    GA_CMD_STOP = 0x15,       // G->B: {id}: the client is gone; stop that call
    GA_CMD_ADMIN = 0x16,      // any DEALER on the gateway socket -> B: {op, ...}
    GA_CMD_ADMIN_REPLY = 0x17, // B -> that DEALER: {ok, ...}
    GA_CMD_GATEWAY_ADMIN = 0x18, // B->G: {id, op, ...}: a rate-limit admin op for the gateway
    GA_CMD_GATEWAY_ADMIN_REPLY = 0x19, // G->B: {id, gateway, ok, ...}
    GA_CMD_STREAM = 0x20,     // topic message W->(proxy)->G: {call, seq, kind, data | error}
    // Relay groups (docs/protocol.md, "Relay groups").
    GA_CMD_GROUP = 0x30,       // G->B: {id?, op, group_id, user_id, conn, topic, ...}
    GA_CMD_GROUP_REPLY = 0x31, // B->G: {id, ok, result | error, code, can_retry}
    GA_CMD_GROUP_EVENT = 0x32, // B->G: {group_id, user_id, conn, topic, state | removed, seq}
    GA_CMD_RELAY = 0x33,       // topic message B->G on "r.<group>": {group_id, seq, ...}
} ga_cmd_t;

// Returns the command's name ("REGISTER"), or NULL when `cmd` is not a known command.
const char *ga_cmd_name(int cmd);

// Whether messages of `cmd` may carry a payload frame after the envelope (CALL, REQUEST, REPLY,
// RESULT).
bool ga_proto_has_payload(int cmd);
// The key under which a body given as one map holds what `cmd`'s payload frame carries: "args"
// (CALL, REQUEST), "result" (REPLY, RESULT); NULL for commands without a payload.
const char *ga_proto_payload_key(int cmd);

// One received message. Buffers are reused between receives: init once, fini at the end.
typedef struct {
    uint8_t id[GA_PROTO_MAX_ID]; // routing id (ROUTER side) or topic (SUB side)
    size_t id_len;               // bytes in id; 0 on a DEALER
    int cmd;                     // command byte
    ga_buf_t body;               // raw MessagePack envelope (the body of other commands)
    ga_value_t value;            // decoded envelope (a map), in the arena passed to recv
    bool has_payload;            // a payload came (ga_proto_payload, ga_proto_msg_payload)
    const uint8_t *payload_data; // its bytes: the payload frame's, or a batch item's inside the
    size_t payload_len;          // batch frame; valid until the next recv
    zmq_msg_t payload;           // the payload frame as received, when it came as a frame of its
                                 // own (empty for a batch item): shared, never copied, when sent
    bool payload_is_frame;       // the payload is that frame
    uint8_t peer_version;        // a refused message's tag was "GAPI" + this version (else 0)
    void *batch_socket;          // the socket whose batch has more items (NULL: none)
    zmq_msg_t batch;             // the last batch frame (kept while its items are read)
    bool batch_held;             // batch holds one
    size_t batch_off;            // where its next item starts
    bool want_user_id;           // set by the owner: fill user_id from each message (ZAP)
    char user_id[64];            // the sender's ZAP user id (its CURVE public key), or ""
} ga_proto_msg_t;

void ga_proto_msg_init(ga_proto_msg_t *self);
void ga_proto_msg_fini(ga_proto_msg_t *self);

// A payload to send: its bytes and, when they are exactly a received frame, that frame (shared
// when the payload is sent as a frame of its own, instead of copied).
typedef struct {
    const uint8_t *data;
    size_t len;
    zmq_msg_t *frame; // NULL: the bytes are copied where they go
} ga_proto_payload_t;

// The received payload's bytes (NULL and 0 when none came).
const uint8_t *ga_proto_payload(const ga_proto_msg_t *msg, size_t *len);
// The received payload as a payload to send (its bytes and, when it came as a frame of its
// own, that frame); valid until the next recv. Empty (len 0) when none came.
ga_proto_payload_t ga_proto_msg_payload(const ga_proto_msg_t *msg);
// Makes the frame `frame` (moved, left empty) the payload of `msg`, as if it had been received
// with it: for a message built by hand from a kept envelope and payload.
void ga_proto_msg_take_payload(ga_proto_msg_t *msg, zmq_msg_t *frame);
// A payload held in `m` (a frame of its own, as ga_proto_payload_keep fills it).
ga_proto_payload_t ga_proto_payload_of(zmq_msg_t *m);
// Makes `out` (an initialised message, released first) hold the payload `p` for later sends:
// a reference to its frame when it has one (libzmq counts references), else a copy of its
// bytes, so that a batch item's payload never keeps its whole batch frame alive. GA_EIO when
// no memory (`out` is then empty).
GA_MUST_CHECK ga_err_t ga_proto_payload_keep(const ga_proto_payload_t *p, zmq_msg_t *out);
// Decodes the received payload into `*out` (in `arena`): GA_OK (nil when none came), GA_EPROTO
// or GA_ETOOBIG when it is not one well-formed MessagePack value within the decoder's limits.
GA_MUST_CHECK ga_err_t ga_proto_payload_decode(const ga_proto_msg_t *msg, ga_arena_t *arena,
                                               ga_value_t *out);
// Decodes the received payload into msg->value under ga_proto_payload_key(msg->cmd) (replacing
// a value there): the body as one map again, for code that reads it that way. GA_OK without a
// payload (nothing changes); GA_EPROTO or GA_ETOOBIG when it does not decode.
GA_MUST_CHECK ga_err_t ga_proto_payload_merge(ga_proto_msg_t *msg, ga_arena_t *arena);

// Sends one message on `socket` (a libzmq socket). `id` is the routing id on a ROUTER, NULL on
// a DEALER. `body` is an encoded MessagePack map. Never blocks: returns GA_EAGAIN when the
// peer's queue is at its high-water mark (the message is not sent), GA_EIO on other failures.
GA_MUST_CHECK ga_err_t ga_proto_send(void *socket, const uint8_t *id, size_t id_len, int cmd,
                                     const ga_buf_t *body);
// Encodes `body` into `scratch` (reset first) and sends it.
GA_MUST_CHECK ga_err_t ga_proto_send_value(void *socket, const uint8_t *id, size_t id_len,
                                           int cmd, const ga_value_t *body, ga_buf_t *scratch);
// Sends `envelope` followed by the payload frame `payload` (`cmd` must have one;
// ga_proto_has_payload); a NULL or empty `payload` sends none. Errors as ga_proto_send.
GA_MUST_CHECK ga_err_t ga_proto_send_payload(void *socket, const uint8_t *id, size_t id_len,
                                             int cmd, const ga_buf_t *envelope,
                                             const ga_buf_t *payload);
// Sends `envelope` followed by the payload `payload` (NULL or empty: none) as a frame of its
// own, never decoded: a payload with a frame shares it (zmq_msg_copy counts references; the
// frame is left as it was), one without is copied.
GA_MUST_CHECK ga_err_t ga_proto_forward(void *socket, const uint8_t *id, size_t id_len, int cmd,
                                        const ga_buf_t *envelope,
                                        const ga_proto_payload_t *payload);
// Sends the envelope bytes `env` (`env_len`) followed by the payload `payload` (NULL: none),
// as ga_proto_forward does.
GA_MUST_CHECK ga_err_t ga_proto_forward_bytes(void *socket, const uint8_t *id, size_t id_len,
                                              int cmd, const uint8_t *env, size_t env_len,
                                              const ga_proto_payload_t *payload);

// One change to an envelope's top-level pairs (ga_proto_envelope_edit).
typedef struct {
    const char *key;         // the pair's key
    const ga_value_t *value; // its new value; NULL: every pair with this key is removed
    bool append;             // the pair goes last (pairs with this key are removed first);
                             // otherwise its value is replaced where it stands (not added)
} ga_proto_edit_t;

// Writes into `out` (reset first) the envelope `env` (`len` bytes: one MessagePack map) with
// the `n_edits` edits applied, without decoding it: every other pair is copied byte for byte,
// in order, and only the map's count is written anew. `*data` and `*data_len` give the result,
// which lies inside `out` (valid until `out` changes). Lets a relay route by a few keys and
// pass the rest on as the sender encoded it (docs/protocol.md, "Frames"). GA_EPROTO when `env`
// is not a well-formed map with string keys (ga_wire_scan's limits apply to each value), or
// with more than 8 edits.
GA_MUST_CHECK ga_err_t ga_proto_envelope_edit(const uint8_t *env, size_t len,
                                              const ga_proto_edit_t *edits, size_t n_edits,
                                              ga_buf_t *out, const uint8_t **data,
                                              size_t *data_len);
// ga_proto_envelope_edit for an envelope whose very bytes ga_wire_decode or ga_wire_decode_map
// accepted (as ga_proto_recv does msg->body; a copy of them too): the keys are not checked for
// NUL bytes again, which the decoder refused. Same output for such bytes. Every length and count
// is still checked against the end (memory-safe on any input, GA_EPROTO as there), but a key
// holding a NUL is copied as it came: never pass bytes that were not decoded.
GA_MUST_CHECK ga_err_t ga_proto_envelope_edit_decoded(const uint8_t *env, size_t len,
                                                      const ga_proto_edit_t *edits,
                                                      size_t n_edits, ga_buf_t *out,
                                                      const uint8_t **data, size_t *data_len);
// Sends a body given as one map in the frame layout: for a command with a payload, the value
// under ga_proto_payload_key(cmd) (when present) is encoded into `payload_scratch` and sent as
// the payload frame, the other keys as the envelope (in `scratch`); any other command is sent
// as ga_proto_send_value sends it.
GA_MUST_CHECK ga_err_t ga_proto_send_split(void *socket, const uint8_t *id, size_t id_len,
                                           int cmd, const ga_value_t *body, ga_buf_t *scratch,
                                           ga_buf_t *payload_scratch);

// Sends a topic message (topic frame, tag, command, body) on a PUB/XPUB socket without
// blocking. GA_EAGAIN when the socket is at its high-water mark (nothing sent).
GA_MUST_CHECK ga_err_t ga_proto_publish(void *socket, const char *topic, int cmd,
                                        const ga_buf_t *body);

// Batches (docs/protocol.md, "Batches"): one frame may carry several items for the same peer,
// each a command, an envelope and a payload:
//
//   batch     = tag %x0B item *item                     ; one frame: the BATCH command
//   item      = command env-len envelope payload-len payload
//   env-len   = 4 OCTET                                  ; big-endian, at least 1
//   payload-len = 4 OCTET                                ; big-endian, 0: no payload
//
// A batch is sent only to a peer that announced it reads them (batch: true in its HELLO or
// REGISTER, or the broker's SNAPSHOT or REGISTERED). ga_proto_batch_t writes one: items are
// appended to the frame as they come and the frame is sent when the owner closes it (once per
// turn of its loop), so that a burst of answers to one peer costs libzmq one frame instead of
// two per item. Whether the peer takes the message is known when it is opened: a ROUTER's
// routing-id frame is sent then (high-water mark, unknown peer), a DEALER asks ZMQ_EVENTS.
// ga_proto_recv returns one item per call.
typedef struct {
    void *socket;
    bool open;                   // a message is open: its routing id is queued (ROUTER side)
    uint8_t id[GA_PROTO_MAX_ID]; // the open message's routing id (ROUTER side)
    size_t id_len;
    ga_buf_t frame;              // the open message's batch frame so far (reused)
    unsigned items;              // items in the open message
    unsigned max_items;          // an open message this full is closed before the next item
    uint64_t sent;               // items sent (stats)
    uint64_t messages;           // messages closed (stats): sent / messages = items per message
    uint64_t lost;               // items of a DEALER's batch its socket refused when closed
} ga_proto_batch_t;

void ga_proto_batch_init(ga_proto_batch_t *self, void *socket, unsigned max_items);
// Closes an open message, then releases the frame's buffer.
void ga_proto_batch_fini(ga_proto_batch_t *self);
// Adds an item (`cmd`, envelope `env`, payload bytes `payload`: none when `payload_len` is 0,
// copied) to the message open to `id` (NULL on a DEALER), opening one when none is open; a
// message open to another peer, full (max_items, or GA_PROTO_BATCH_BYTES) is closed first.
// Errors as ga_proto_send, and only when a message is opened: an item added to an open message
// goes with it.
GA_MUST_CHECK ga_err_t ga_proto_batch_add(ga_proto_batch_t *self, const uint8_t *id,
                                          size_t id_len, int cmd, const uint8_t *env,
                                          size_t env_len, const uint8_t *payload,
                                          size_t payload_len);
// Adds a body given as one map, split as ga_proto_send_split splits it.
GA_MUST_CHECK ga_err_t ga_proto_batch_add_split(ga_proto_batch_t *self, const uint8_t *id,
                                                size_t id_len, int cmd, const ga_value_t *body,
                                                ga_buf_t *scratch, ga_buf_t *payload_scratch);
// Sends the open message's batch frame: the peer receives it now. Call before anything else is
// sent on the socket, and before the loop sleeps. A ROUTER's frame always goes (its routing id
// was taken); a DEALER's was found writable when opened and nothing else was sent on it since,
// so a refusal here cannot happen short of a libzmq failure: it is counted (lost) and logged.
void ga_proto_batch_close(ga_proto_batch_t *self);

// Receives one message without blocking. `routed` says whether a routing-id frame (or, on a
// SUB socket, a topic frame) comes first.
// Returns GA_EAGAIN when nothing is waiting; GA_EPROTO when the message is malformed (wrong
// frame count, a payload frame on a command without one, tag, version (msg->peer_version then
// names the sender's), unknown command, oversized or undecodable envelope, envelope not a map,
// empty or oversized payload): the whole message has been consumed and should be counted and
// dropped. On GA_OK, msg->value is the decoded envelope in `arena` and the payload
// (ga_proto_payload) is not decoded (ga_proto_payload_decode).
// A batch is returned one item per call, each with the message's routing id and user id; while
// msg->batch_socket is set the next call should be on that socket (and is, in a loop that
// receives until GA_EAGAIN; a loop with a budget goes on while it is set): a call on another
// socket drops the rest of the batch (GA_EPROTO). A malformed item drops the rest of its batch.
GA_MUST_CHECK ga_err_t ga_proto_recv(void *socket, bool routed, ga_proto_msg_t *msg,
                                     ga_arena_t *arena);

#endif
