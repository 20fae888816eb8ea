// SPDX-License-Identifier: MIT
// The gateway's link to the broker: a DEALER to the broker's gateway ROUTER (calls, results,
// registry snapshot and updates, heartbeats) and a SUB to the broker's XPUB (stream chunks),
// both living on the gateway's loop thread (their ZMQ_FDs are adopted into the libwebsockets
// loop). Sends calls, keeps the table of calls in flight with their deadlines, receives results,
// stream chunks and registry changes, heartbeats the broker and notices when it goes silent.
// Every call it accepts is answered exactly once (through the result callback, or for streams
// the stream callback): by the broker, by a timeout, or by the loss of the broker.
#ifndef GW_BRIDGE_H
#define GW_BRIDGE_H

#include "ga_curve.h"
#include "ga_err.h"
#include "ga_value.h"
#include "gw_pipeline.h"
#include "gw_relay.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *broker;     // broker endpoint for gateways, e.g. "tcp://127.0.0.1:5571"
    const char *name;       // gateway name sent in HELLO
    int64_t heartbeat_ms;   // until the broker announces its own
    int64_t grace_ms;       // added to a function's timeout for the gateway's own deadline
    int64_t hwm;            // ZeroMQ high-water mark (messages)
    int64_t max_inflight;   // calls in flight across the gateway before refusals
    const ga_curve_cert_t *curve; // this gateway's CURVE certificate, or NULL (CURVE off)
    const char *curve_broker;     // the broker's public key (Z85) when curve is set
} gw_bridge_config_t;

// What the gateway needs to route a result back: copied when the call is sent.
typedef enum {
    GW_ROUTE_RESPONSE, // the answer to a client's request: a response on its channel
    GW_ROUTE_AUTH,     // the answer of the identity service for a new connection
    GW_ROUTE_JOIN,     // the broker's answer to joining the relay channel "chat:GROUP"
} gw_route_kind_t;

typedef struct {
    gw_route_kind_t kind;    // what the result is for
    ga_resp_t type;          // the function's response type (how results are delivered)
    uint64_t conn_id;        // connection that asked
    const char *join_ref;    // channel join_ref (NULL for null)
    const char *ref;         // the push's ref (NULL for null)
    const char *topic;       // channel topic
    const char *request_id;  // client's request id
    bool checking;           // a worker permission callback is deciding: nothing acknowledged yet
    const char *service;     // the function called (telemetry; NULL for identity checks)
    const char *request_type; // likewise
    int64_t started_us;      // monotonic µs when the request came in, or 0 (telemetry off)
} gw_route_t;

// Called with the RESULT body for each call, its payload frame decoded into "result" (for
// timeouts and broker loss, a synthesized body {ok:false, error, code, can_retry}). `route` and `body` are valid during the call only.
typedef void(gw_result_fn)(void *arg, const gw_route_t *route, const ga_value_t *body);
// Called for each message of a stream, in order: `body` is {kind, data | error} with kind
// chunk, last, end or error. After any kind but chunk the stream is over.
typedef void(gw_stream_fn)(void *arg, const gw_route_t *route, const ga_value_t *body);
// Called when a worker permission callback allowed an async or stream call and the call was
// sent: the moment to acknowledge it (before, the client could be told "accepted" and then
// "Permission denied").
typedef void(gw_accept_fn)(void *arg, const gw_route_t *route);
// Called after a SNAPSHOT or UPDATE has been applied to the pipeline.
typedef void(gw_registry_fn)(void *arg, bool snapshot);

typedef struct gw_bridge_t gw_bridge_t;

// Creates the bridge; `cfg` and `pipeline` are borrowed. No I/O.
gw_bridge_t *gw_bridge_new(const gw_bridge_config_t *cfg, gw_pipeline_t *pipeline,
                           gw_result_fn *on_result, gw_registry_fn *on_registry, void *arg);
// Sets the stream callback (streams are refused until one is set).
void gw_bridge_on_stream(gw_bridge_t *self, gw_stream_fn *on_stream);
// Sets the callback for permission-checked async and stream calls once allowed and sent.
void gw_bridge_on_accept(gw_bridge_t *self, gw_accept_fn *on_accept);
// Answers nothing more: calls still in flight are dropped silently (the process is stopping).
void gw_bridge_destroy(gw_bridge_t **self_p);
// Creates the socket, connects and says HELLO. GA_EIO when the endpoint is unusable.
GA_MUST_CHECK ga_err_t gw_bridge_connect(gw_bridge_t *self);
// The sockets' ZMQ_FDs (edge-triggered: call gw_bridge_process whenever one is readable):
// the DEALER to the broker, and the SUB for stream chunks.
int gw_bridge_fd(const gw_bridge_t *self);
int gw_bridge_stream_fd(const gw_bridge_t *self);

// Stops the streams of connection `conn_id` (on `topic` only, when not NULL): the broker is
// told to cancel them, and nothing more is delivered for them. For a client that left or
// disconnected.
void gw_bridge_stop_conn(gw_bridge_t *self, uint64_t conn_id, const char *topic);

// Sends a call. GA_OK: for sync and async calls the result callback will fire exactly once;
// for streams the stream callback fires until the stream ends; for none nothing fires. GA_EUNAVAIL: the broker is
// not reachable now; GA_EAGAIN: too many calls in flight. Neither fires the callback.
GA_MUST_CHECK ga_err_t gw_bridge_call(gw_bridge_t *self, const gw_call_t *call,
                                      const gw_route_t *route);
// Sends `check` (a permission callback call) first and `call` only when the check allows it
// (gw_pipeline_check_denial); otherwise the result callback gets its denial. Same
// return values and the same exactly-once guarantee as gw_bridge_call.
GA_MUST_CHECK ga_err_t gw_bridge_call_checked(gw_bridge_t *self, const gw_call_t *check,
                                              const gw_call_t *call, const gw_route_t *route);
// Relay groups (docs/protocol.md, "Relay groups"). The gateway's view of its members, fed by
// the broker's GROUP_EVENTs and the proxy's RELAY messages (owned by the bridge).
gw_relay_t *gw_bridge_relay(gw_bridge_t *self);
// Sends the group operation `op` (gw_relay_op) on group `group_id` for `user_id` (the caller's
// connection identity), living at route->conn_id on route->topic; `args` (may be NULL) gives
// group_type, user_id (the member acted on) and message. The answer comes through the result
// callback exactly once, as for a sync call with `timeout_ms`. Same return values as
// gw_bridge_call.
GA_MUST_CHECK ga_err_t gw_bridge_group(gw_bridge_t *self, const char *op, const char *group_id,
                                       const char *user_id, const ga_value_t *args,
                                       const gw_route_t *route, int64_t timeout_ms);
// Connection `conn_id` closed (`topic` NULL) or left channel `topic`: its local members go,
// and the broker is told when the connection ever asked for a group operation.
void gw_bridge_group_drop(gw_bridge_t *self, uint64_t conn_id, const char *topic);

// Receives and handles everything waiting from the broker. Call when gw_bridge_fd is readable
// and once after any sends (ZMQ_FD is edge-triggered: a send can consume a readiness edge).
void gw_bridge_process(gw_bridge_t *self);
// Receives and handles every waiting stream message. Call when gw_bridge_stream_fd is readable.
void gw_bridge_process_streams(gw_bridge_t *self);
// Heartbeats, broker liveness and call deadlines. Call periodically (every ~50-100 ms).
void gw_bridge_tick(gw_bridge_t *self);
// Milliseconds until the bridge next needs gw_bridge_tick.
int64_t gw_bridge_next_tick_ms(const gw_bridge_t *self);

// True once a registry snapshot has arrived (the gateway is ready).
bool gw_bridge_has_snapshot(const gw_bridge_t *self);
// True while the broker is heard from.
bool gw_bridge_is_connected(const gw_bridge_t *self);
size_t gw_bridge_inflight(const gw_bridge_t *self);
// Stream messages dropped as duplicates, and streams ended by a gap.
uint64_t gw_bridge_stream_duplicates(const gw_bridge_t *self);
uint64_t gw_bridge_stream_gaps(const gw_bridge_t *self);
// Registry updates found missing (each answered by asking the broker for a fresh snapshot).
uint64_t gw_bridge_registry_gaps(const gw_bridge_t *self);

#endif
