// SPDX-License-Identifier: MIT
// The service protocol's frame layout, shared by broker, gateway and worker library. Owns the
// protocol tag, the command codes and the send/receive of one multipart message; bodies are
// MessagePack maps (ga_wire). docs/protocol.md is the full reference.
//
//   message   = [ routing-id ] tag command body      ; routing-id only on the ROUTER side
//   tag       = "GAPI" %x01                           ; 4 ASCII bytes + protocol version
//   command   = 1 OCTET                               ; GA_CMD_*
//   body      = MessagePack map                       ; at most GA_PROTO_MAX_BODY bytes
//
//   worker  -> broker : REGISTER HEARTBEAT REPLY DISCONNECT
//   broker  -> worker : REGISTERED HEARTBEAT REQUEST DISCONNECT CANCEL
//   gateway -> broker : HELLO HEARTBEAT CALL STOP ADMIN GATEWAY_ADMIN_REPLY
//   broker  -> gateway: SNAPSHOT UPDATE HEARTBEAT RESULT ADMIN_REPLY GATEWAY_ADMIN
//
// Stream chunks travel on the broker's XSUB/XPUB proxy instead, as topic messages:
//
//   topic-msg = topic tag STREAM body              ; topic "s.<gateway>.<gateway call id>"
//                                                  ; a batch adds its data (an array)
#ifndef GA_PROTO_H
#define GA_PROTO_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <stddef.h>
#include <stdint.h>

#define GA_PROTO_TAG       "GAPI\x01"
#define GA_PROTO_TAG_LEN   5
#define GA_PROTO_VERSION   1
#define GA_PROTO_MAX_BODY  (4u * 1024u * 1024u) // bytes; larger bodies are dropped and counted
#define GA_PROTO_MAX_ID    255                  // bytes of a ZeroMQ routing id
#define GA_PROTO_LIVENESS  3                    // heartbeats missed before a peer is dead

typedef enum {
    GA_CMD_REGISTER = 0x01,   // W->B: {node, service, config_version, token?, functions}
    GA_CMD_REGISTERED = 0x02, // B->W: {ok, failed, heartbeat_ms, stream_port} or {ok:false, error}
    GA_CMD_HEARTBEAT = 0x03,  // both ways, all peers: {}; broker -> gateway: {seq}
    GA_CMD_REQUEST = 0x04,    // B->W: {id, service, request_type, version, args, ...}
    GA_CMD_REPLY = 0x05,      // W->B: {id, ok, result | error, code?}
    GA_CMD_DISCONNECT = 0x06, // both ways: {reason}; from the broker: register again
    GA_CMD_CANCEL = 0x07,     // B->W: {id}: stop the stream with this id (other calls ignore it)
    GA_CMD_PULL_VERSION = 0x08, // B->W: {id}: answered with PULLED {id, config_version}
    GA_CMD_PULL = 0x09,       // B->W: {id}: answered with PULLED {id, config_version, functions}
    GA_CMD_PULLED = 0x0A,     // W->B: the answer to PULL_VERSION or PULL (docs/protocol.md)
    GA_CMD_HELLO = 0x10,      // G->B: {name}: answered with a SNAPSHOT (also to resync)
    GA_CMD_SNAPSHOT = 0x11,   // B->G: {functions, seq, warming_ms, heartbeat_ms, stream_port}
    GA_CMD_UPDATE = 0x12,     // B->G: {seq, functions, removed: [{service, request_type, ...}]}
    GA_CMD_CALL = 0x13,       // G->B: {id, service, request_type, version, args, ...}
    GA_CMD_RESULT = 0x14,     // B->G: {id, ok, result | error, code, can_retry, stopped?}
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

// One received message. Buffers are reused between receives: init once, fini at the end.
typedef struct {
    uint8_t id[GA_PROTO_MAX_ID]; // routing id (ROUTER side) or topic (SUB side)
    size_t id_len;               // bytes in id; 0 on a DEALER
    int cmd;                     // command byte
    ga_buf_t body;               // raw MessagePack body
    ga_value_t value;            // decoded body (a map), in the arena passed to recv
    bool want_user_id;           // set by the owner: fill user_id from each message (ZAP)
    char user_id[64];            // the sender's ZAP user id (its CURVE public key), or ""
} ga_proto_msg_t;

void ga_proto_msg_init(ga_proto_msg_t *self);
void ga_proto_msg_fini(ga_proto_msg_t *self);

// Sends one message on `socket` (a libzmq socket). `id` is the routing id on a ROUTER, NULL on
// a DEALER. `body` is an encoded MessagePack map. Never blocks: returns GA_EAGAIN when the
// peer's queue is at its high-water mark (the message is not sent), GA_EIO on other failures.
GA_MUST_CHECK ga_err_t ga_proto_send(void *socket, const uint8_t *id, size_t id_len, int cmd,
                                     const ga_buf_t *body);
// Encodes `body` into `scratch` (reset first) and sends it.
GA_MUST_CHECK ga_err_t ga_proto_send_value(void *socket, const uint8_t *id, size_t id_len,
                                           int cmd, const ga_value_t *body, ga_buf_t *scratch);

// Sends a topic message (topic frame, tag, command, body) on a PUB/XPUB socket without
// blocking. GA_EAGAIN when the socket is at its high-water mark (nothing sent).
GA_MUST_CHECK ga_err_t ga_proto_publish(void *socket, const char *topic, int cmd,
                                        const ga_buf_t *body);

// Receives one message without blocking. `routed` says whether a routing-id frame (or, on a
// SUB socket, a topic frame) comes first.
// Returns GA_EAGAIN when nothing is waiting; GA_EPROTO when the message is malformed (wrong
// frame count, tag, version, unknown command, oversized or undecodable body, body not a map):
// the whole message has been consumed and should be counted and dropped. On GA_OK, msg->value
// is the decoded body in `arena`.
GA_MUST_CHECK ga_err_t ga_proto_recv(void *socket, bool routed, ga_proto_msg_t *msg,
                                     ga_arena_t *arena);

#endif
