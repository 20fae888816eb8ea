// SPDX-License-Identifier: MIT
// Relay groups at the gateway (docs/protocol.md, "Relay groups"): the chat_service built-in
// functions (their configs, and the broker operation each maps to), and the gateway's view of
// its own members, kept from the broker's GROUP_EVENTs: for each group with local members, who
// they are (connection, user, channel topic, state) and the last sequence number seen. A relay
// message from the proxy is delivered to the local members that receive (active and muted,
// never pending); a gap in the sequence numbers is counted, logged and told to those members.
// The gateway subscribes to "r.<group>" exactly while it has members of that group. No I/O of
// its own: subscriptions and deliveries go through callbacks. One thread (the gateway loop).
#ifndef GW_RELAY_H
#define GW_RELAY_H

#include "ga_arena.h"
#include "ga_value.h"
#include "gw_pipeline.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_RELAY_SERVICE "chat_service" // the built-ins' service
#define GW_RELAY_CHANNEL "chat:"        // joining "chat:GROUP" joins GROUP

// Subscribe (true) or unsubscribe the proxy topic `topic` ("r.<group>").
typedef void(gw_relay_sub_fn)(void *arg, const char *topic, bool subscribe);
// Deliver `resp` (kind relay or gap) to connection `conn_id` on channel `topic`; `json` (`len`
// bytes) is its encoding (gw_response_encode), the same for every member of one message.
typedef void(gw_relay_deliver_fn)(void *arg, uint64_t conn_id, const char *topic,
                                  const gw_response_t *resp, const char *json, size_t len);

typedef struct gw_relay_t gw_relay_t;

gw_relay_t *gw_relay_new(gw_relay_sub_fn *sub, void *sub_arg);
void gw_relay_destroy(gw_relay_t **self_p);
// Sets where messages are delivered (nothing is delivered before).
void gw_relay_on_deliver(gw_relay_t *self, gw_relay_deliver_fn *fn, void *arg);

// Adds the chat_service built-in functions to `pipeline` (gw_pipeline_add_builtin).
void gw_relay_add_builtins(gw_pipeline_t *pipeline);
// The broker operation of built-in `request_type` of `service` ("create", "join", "leave",
// "accept", "mute", "unmute", "info", "delete", "send"), or NULL when it is not a built-in.
const char *gw_relay_op(const char *service, const char *request_type);

// A GROUP_EVENT body from the broker: {group_id, user_id, conn, topic, state | removed, seq}.
void gw_relay_on_event(gw_relay_t *self, const ga_value_t *ev);
// A RELAY message received on proxy topic `topic` (`topic_len` bytes, "r.<group>").
void gw_relay_on_message(gw_relay_t *self, const uint8_t *topic, size_t topic_len,
                         const ga_value_t *body);
// Notes that connection `conn_id` asked for a group operation (its close must be told).
void gw_relay_note_conn(gw_relay_t *self, uint64_t conn_id);
// Removes the local members of connection `conn_id` (joined through `topic` only, when not
// NULL). True when the broker must be told: the connection ever asked for a group operation.
// With `topic` NULL the connection is forgotten.
bool gw_relay_drop(gw_relay_t *self, uint64_t conn_id, const char *topic);

// The broker restarted: each group takes the sequence number of its next `restored` event as
// the last one seen (the new broker's numbering may differ from the old one's).
void gw_relay_renumber(gw_relay_t *self);
// Calls `fn` for every local member with its state ("active", "pending", "muted"): a broker
// that has just started, or that lost this gateway for a while, is told them again
// (docs/protocol.md, "Relay groups on the wire", `restore`).
void gw_relay_each(const gw_relay_t *self,
                   void (*fn)(void *arg, const char *group_id, const char *user_id,
                              uint64_t conn_id, const char *topic, const char *state),
                   void *arg);

// Counters: messages delivered to members, gaps seen, messages found missing in them.
uint64_t gw_relay_delivered(const gw_relay_t *self);
uint64_t gw_relay_gaps(const gw_relay_t *self);
uint64_t gw_relay_missed(const gw_relay_t *self);
// Groups with local members (= topics subscribed).
size_t gw_relay_group_count(const gw_relay_t *self);

#endif
