// SPDX-License-Identifier: MIT
// The broker's private state (struct bk_broker_t, calls in flight, gateways) and the functions
// its files share, each marked with the file that defines it. Included only by broker/*.c;
// everything here runs on the loop thread.
#ifndef BK_INTERNAL_H
#define BK_INTERNAL_H

#include "bk_broker.h"
#include "bk_call.h"
#include "bk_groups.h"
#include "bk_pull.h"
#include "bk_resolve.h"
#include "bk_registry.h"
#include "bk_select.h"
#include "bk_zap.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_curve.h"
#include "ga_err.h"
#include "ga_inflight.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_telemetry.h"
#include "ga_value.h"

#include <czmq.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A call in flight (docs/architecture.md, "A call at the broker"): which gateway asked, under
// which id, its state machine (bk_call.h), and which worker has its current attempt. It lives
// in self->calls under the current attempt's id (a fresh id during a backoff), owned by its
// gateway (BK_OWNER_GATEWAY) and, while an attempt is out, by that worker's life
// (BK_OWNER_WORKER): a lost gateway or worker takes exactly its own calls.
typedef struct bk_call_t bk_call_t;
#define BK_REQUEST_ID_MAX 128 // bytes of a client request id kept for stop-stream
#define BK_NODE_MAX 128       // bytes of the node name kept for same_node retries
#define BK_OWNER_GATEWAY 0    // owner index: the gateway's serial
#define BK_OWNER_WORKER 1     // owner index: the worker's life

struct bk_call_t {
    ga_inflight_rec_t rec; // first: id (the attempt's, sent to the worker), deadline, owners
    bk_call_fsm_t fsm;     // attempts, deadlines, what happens next
    bool stream;           // a stream call: ends with its last chunk, not a reply
    int64_t idle_ms;       // streams: each forwarded message moves the deadline this far; else 0
    char request_id[BK_REQUEST_ID_MAX]; // the client's request id (truncated)
    uint64_t gw_call_id;   // the gateway's id for the same call
    uint8_t gw_id[255];    // gateway routing id
    size_t gw_id_len;      // bytes in gw_id
    uint64_t gw_serial;    // the gateway's serial (owner key)
    bool gw_batch;         // the gateway reads batches: its RESULT may join one
    bk_worker_t *worker;   // worker with the current attempt, or NULL (borrowed; a worker's
                           // calls are taken from it before it goes)
    char node[BK_NODE_MAX]; // same_node: the node of the first attempt
    uint64_t topic_hash;   // streams: FNV-1a of the stream topic its chunks must carry
    ga_buf_t body;         // the CALL envelope, kept when another attempt may follow
    zmq_msg_t payload;     // and its payload frame (the args), shared with the received message
                           // (zmq_msg_copy counts references): forwarded untouched each attempt
    bool has_payload;      // payload holds one
    bk_call_t *next;       // free-list link
};

// bk_ratelimit.c: rate-limit admin operations in flight and the cluster-wide limits.
typedef struct bk_ratelimit_t bk_ratelimit_t;

// Items per batch (docs/protocol.md, "Batches"): bounds the work one message gives its reader.
#define BK_BATCH_MAX 64

// A connected gateway.
typedef struct {
    uint8_t id[255]; // routing id
    size_t id_len;   // bytes in id
    int64_t expiry;  // monotonic ms
    bool resync;     // an UPDATE could not be sent: a SNAPSHOT is owed (sent on the tick)
    uint64_t serial; // owner key of its calls (never reused)
    bool batch;      // its HELLO said it reads batches (docs/protocol.md, "Batches")
} bk_gateway_t;

struct bk_broker_t {
    const bk_config_t *cfg;     // borrowed configuration
    void *zctx;                 // libzmq context (owned)
    void *workers;              // ROUTER for workers
    void *gateways;             // ROUTER for gateways
    void *stream_in;            // XSUB: workers' stream chunks
    void *stream_out;           // XPUB: gateways' subscriptions
    char worker_ep[256];        // bound endpoint, real port
    char gateway_ep[256];       // bound endpoint, real port
    char stream_in_ep[256];     // bound endpoint, real port
    char stream_out_ep[256];    // bound endpoint, real port
    int wake[2];                // pipe: bk_broker_stop writes, the loop polls
    atomic_bool stop;           // set by bk_broker_stop, or at the end of a drain
    atomic_bool drain_asked;    // set by bk_broker_drain
    atomic_bool reload_asked;   // set by bk_broker_reload
    bool draining;              // the drain has begun: new calls are refused
    bool drained;               // the drain finished
    int64_t drain_deadline;     // monotonic ms: calls in flight are awaited until then
    bk_registry_t *registry;    // functions and workers
    bk_select_t *select;        // node selection (round-robin counters, sticky mapping)
    int64_t next_state_save;    // monotonic ms: the sticky state file is written no sooner
    zhash_t *gws;               // hex routing id -> bk_gateway_t (owned)
    bk_gateway_t *gw_last;      // the gateway of the last message (NULL: none; cleared when
                                // it is removed): most messages come from it again
    ga_inflight_t *calls;       // attempt id -> bk_call_t, by gateway serial and worker life
    bk_call_t *free_calls;      // recycled call records
    uint64_t next_id;           // last call (attempt) id handed out
    uint64_t next_serial;       // last gateway serial or worker life handed out
    ga_arena_t *arena;          // per-message arena, reset after each message
    ga_proto_msg_t msg;         // receive buffers, reused
    ga_buf_t out;               // send buffer, reused
    // REQUESTs and RESULTs to peers that read batches join the message open to the same peer
    // (docs/protocol.md, "Batches"); every other send closes it first (bk_batch_close), and
    // the loop closes both before it sleeps.
    ga_proto_batch_t to_workers;
    ga_proto_batch_t to_gateways;
    bk_zap_t *zap;              // ZAP handler (CURVE on), else NULL
    ga_curve_cert_t curve;      // the broker's own certificate (CURVE on)
    ga_log_every_t refused_stream_log; // refused stream messages, logged once a minute
    ga_log_every_t version_log; // messages of another protocol version, logged once a minute
    int64_t next_heartbeat;     // monotonic ms
    uint64_t registry_seq;      // registry changes so far (SNAPSHOT, UPDATE, gateway HEARTBEAT)
    int64_t warm_until;         // monotonic ms: until then unknown functions are "temporarily
                                // unavailable" (workers are still registering after a start)
    bk_stats_t stats;           // counters
    // The time of the socket drain under way (s_drain in bk_broker.c): read once per drain
    // (at most 256 messages and one batch, well under a millisecond), not several times per
    // message. Outside a drain, bk_now_ms and bk_now_wall_ms read the clock.
    bool in_drain;              // a drain is under way: turn_ms holds its time
    int64_t turn_ms;            // monotonic ms at the drain's start
    int64_t turn_wall_ms;       // wall-clock ms at the same moment, INT64_MIN until first asked
    bk_ratelimit_t *rl;         // rate limits (bk_ratelimit.c)
    bk_groups_t *groups;        // relay groups (bk_relay.c; created at the first operation)
    bool relay_detached;        // groups were restored: members not yet claimed by a gateway
    bk_pull_t *pull;            // config pull (bk_pull.c)
    bk_resolve_t *resolve;      // node resolvers' answers and the calls waiting for them
    struct ga_metrics_t *metrics; // metrics from telemetry events (metrics_listen set), or NULL
    struct ga_httpd_t *httpd;   // admin HTTP listener (metrics_listen set), or NULL
};

// The monotonic time in ms for deadlines and liveness: the drain's (see turn_ms), or now.
static inline int64_t
bk_now_ms(const bk_broker_t *self)
{
    return self->in_drain ? self->turn_ms : ga_clock_ms();
}

// The wall-clock time in ms at the moment bk_now_ms gives (deadlines told to workers).
static inline int64_t
bk_now_wall_ms(bk_broker_t *self)
{
    if (!self->in_drain) {
        return ga_clock_wall_ms();
    }
    if (self->turn_wall_ms == INT64_MIN) {
        self->turn_wall_ms = ga_clock_wall_ms() - (ga_clock_ms() - self->turn_ms);
    }
    return self->turn_wall_ms;
}

// bk_peers.c: the key of routing id `id` in self->gws and the other tables keyed by a peer's
// id: its bytes in lowercase hex, NUL-terminated in `key` (2 * id_len + 1 bytes).
void bk_id_key(char *key, const uint8_t *id, size_t id_len);
// bk_broker.c: sends `body` as `cmd` to peer `id` on `sock`; a failure is counted, not fatal.
void bk_send(bk_broker_t *self, void *sock, const uint8_t *id, size_t id_len, int cmd,
             const ga_value_t *body);
// bk_broker.c: sends as `cmd` to peer `id` on `sock` the received envelope `env` (`env_len`
// bytes, decoded when received, or a copy of such bytes) with `edits` applied
// (ga_proto_envelope_edit_decoded: the other pairs go on byte for byte),
// then the payload `payload` untouched (NULL: none); a failure is counted, not fatal.
// With `batch` (the peer reads batches) the message joins the one open to that peer (the
// payload's bytes copied into it), else the payload goes as a frame of its own (shared when
// it has a frame).
ga_err_t bk_forward_edit(bk_broker_t *self, void *sock, const uint8_t *id, size_t id_len, int cmd,
                         const uint8_t *env, size_t env_len, const ga_proto_edit_t *edits,
                         size_t n_edits, const ga_proto_payload_t *payload, bool batch);
// bk_broker.c: sends the message open on `sock` (ga_proto_batch_close): call before sending
// anything on `sock` other than through bk_send and bk_forward_edit, which do it.
void bk_batch_close(bk_broker_t *self, void *sock);
// bk_broker.c: answers a gateway's call `gw_call_id` with an error RESULT (counted as a result).
void bk_send_error(bk_broker_t *self, const uint8_t *gw_id, size_t gw_id_len, uint64_t gw_call_id,
                   ga_err_t code, const char *message, bool can_retry);

// bk_peers.c: one message from a gateway (HELLO, HEARTBEAT, CALL, STOP, ADMIN).
void bk_on_gateway(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_peers.c: one message from a worker (REGISTER, HEARTBEAT, REPLY, DISCONNECT).
void bk_on_worker(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_peers.c: tells every gateway of a registry change (`changed` configs, `removed` keys,
// either may be NULL or empty) in one UPDATE under the next sequence number; a gateway that
// cannot take it is owed a SNAPSHOT.
void bk_broadcast_update(bk_broker_t *self, const ga_value_t *changed, const ga_value_t *removed);
// bk_peers.c: after `service` registered a changed table, warns of each hook, permission
// callback or nodes resolver to or from it that names a public function (docs/security.md,
// "Internal functions"): clients can call that function directly.
void bk_warn_public_refs(bk_broker_t *self, const char *service);
// bk_peers.c: the registry's and gateways' share of the tick: deletes the configs no worker
// has offered for a liveness period (bk_registry_sweep) and tells the gateways, forgets silent
// gateways, heartbeats the others with the registry's sequence number, and sends each owed
// SNAPSHOT.
void bk_tick_gateways(bk_broker_t *self, int64_t now);

// bk_metrics.c: emits `ev` for `call` (service and request_type from its kept body, when
// kept; request_id, node, count = attempts so far) when someone listens.
void bk_tm_call(bk_broker_t *self, const bk_call_t *call, ga_event_t ev);
// bk_metrics.c: `w` answered: a circuit whose cooldown has passed is closed (and said so).
void bk_tm_worker_answered(bk_worker_t *w);
// bk_metrics.c: opens the admin HTTP listener when metrics_listen is set (GA_EIO, logged,
// naming the option, when it cannot).
GA_MUST_CHECK ga_err_t bk_metrics_start(bk_broker_t *self);

// bk_calls.c: routes a gateway's CALL to a worker, or answers it with an error.
void bk_on_call(bk_broker_t *self, const bk_gateway_t *gw, const ga_proto_msg_t *msg);
// bk_calls.c: a worker's REPLY: passed on to the gateway that made the call, or, when it is a
// retryable failure and the call may go on, the next attempt.
void bk_on_reply(bk_broker_t *self, bk_worker_t *w, const ga_proto_msg_t *msg);
// bk_calls.c: every call whose current attempt `w` holds goes on without it (another attempt,
// or an answer); `w` is no longer picked afterwards. For a worker that is going away or has
// come back as a new life (it discarded its queue).
void bk_calls_worker_lost(bk_broker_t *self, bk_worker_t *w);
// bk_calls.c: bk_calls_worker_lost, then removes `w` from the registry (invalid after).
void bk_drop_worker(bk_broker_t *self, bk_worker_t *w, const char *why);
// bk_calls.c: tells the worker holding `call` to stop it.
void bk_cancel_worker(bk_broker_t *self, const bk_call_t *call);
// bk_calls.c: takes `call` out of self->calls (if in) and returns it to the free list.
void bk_release_call(bk_broker_t *self, bk_call_t *call);
// bk_calls.c: the timer: asks each owner in turn: the calls (deadlines, backoffs), the workers
// (liveness, heartbeats) and the gateways (bk_tick_gateways).
void bk_on_tick(bk_broker_t *self, int64_t now);
// bk_calls.c: forgets every call of the gateway `gw` (it went silent), answering each with
// `Service unavailable` in case it was only stalled; the workers are told to stop its streams.
void bk_drop_gateway_calls(bk_broker_t *self, const bk_gateway_t *gw);

// bk_streams.c: forwards one stream message from the XSUB side to the XPUB side. False when
// none was waiting (the receive that found nothing re-arms the socket's edge-triggered fd).
bool bk_on_stream(bk_broker_t *self);
// bk_streams.c: reads and drops gateways' subscriptions from the XPUB side.
void bk_drain_subscriptions(bk_broker_t *self);
// bk_streams.c: a gateway's STOP: cancels its call without answering.
void bk_on_stop(bk_broker_t *self, const bk_gateway_t *gw, const ga_proto_msg_t *msg);
// bk_streams.c: stops every open stream with client request id `request_id`; returns how many.
size_t bk_stop_streams(bk_broker_t *self, const char *request_id);

// bk_access.c: with CURVE on, whether the sender of `msg` on the gateway socket holds the key
// its command needs (gateway for calls, operator for ADMIN); a refused CALL or ADMIN is
// answered here. True when it may go on.
bool bk_access_gateway_msg(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_access.c: whether a CALL's caller identity is well formed (user_id, device_id, ip: absent
// or non-empty strings without NULs, at most BK_IDENTITY_MAX bytes; roles: at most BK_ROLES_MAX
// such strings). A malformed one is answered here with `Invalid caller identity`.
#define BK_IDENTITY_MAX 1024
#define BK_ROLES_MAX 64
bool bk_access_call_identity(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_access.c: FNV-1a 64 of `len` bytes (stream topics).
uint64_t bk_access_hash(const void *data, size_t len);
// bk_access.c: whether the stream message on `topic` (its first frame, `topic_frame`, carries
// the publisher's ZAP user id) may be forwarded for `call`: the call is an open stream (not
// NULL), the topic is the call's, and with CURVE on the publisher is the worker the call was
// routed to. A refused one is counted.
bool bk_access_stream_msg(bk_broker_t *self, const bk_call_t *call, const void *topic_frame);
// bk_access.c: with CURVE on, why the REGISTER `msg` may not register at all (no worker key,
// a service its key does not name, a service another key holds), in `buf`; NULL when it may.
const char *bk_access_register_refusal(bk_broker_t *self, const ga_proto_msg_t *msg, char *buf,
                                       size_t len);
// bk_access.c: whether the worker that sent GROUP `msg` may act for users in relay groups:
// with CURVE on, only a worker key whose certificate's services name BK_ACCESS_RELAY_GRANT
// (a `*` does not); any registered worker without CURVE (docs/security.md). The refusal in
// `why`.
#define BK_ACCESS_RELAY_GRANT "genapi.relay"
bool bk_access_worker_group(bk_broker_t *self, const ga_proto_msg_t *msg, char *why, size_t len);
// bk_access.c: whether the worker that sent ADMIN `msg` may verify `service`'s config
// version: with CURVE on, only a service its certificate's services allow (as for REGISTER);
// any service without CURVE (docs/security.md). The refusal in `why`.
bool bk_access_worker_verify(bk_broker_t *self, const ga_proto_msg_t *msg, const char *service,
                             char *why, size_t len);
// bk_access.c: the REGISTER `body` without the functions the allowlist or the reserved names
// refuse (in `a`); those go to `*refused` as [{function, reason}].
ga_value_t bk_access_filter(bk_broker_t *self, const ga_value_t *body, ga_arena_t *a,
                            ga_value_t *refused);

// bk_ratelimit.c: creates and frees the broker's rate-limit state (disabled limits).
bk_ratelimit_t *bk_ratelimit_new(void);
void bk_ratelimit_destroy(bk_ratelimit_t **self_p);
// bk_ratelimit.c: whether `op` is a rate-limit admin operation (rate_limit_*).
bool bk_ratelimit_is_op(const char *op);
// bk_ratelimit.c: an operator's rate_limit_* ADMIN request (already allowed by bk_on_admin):
// forwarded to every gateway (answered when all have, or after a wait), or with target
// "broker" answered by the broker's own cluster-wide limiter.
void bk_ratelimit_admin(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_ratelimit.c: a gateway's GATEWAY_ADMIN_REPLY.
void bk_ratelimit_on_reply(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_ratelimit.c: answers the operator requests whose gateways did not all answer in time.
void bk_ratelimit_tick(bk_broker_t *self, int64_t now);
// bk_ratelimit.c: the cluster-wide limits for a CALL carrying `rate_limit` keys (the field is
// removed from the body): true when it may go on; otherwise answered here with `Rate limit
// exceeded` (retry_after_ms) or `Rate limiter unavailable`.
bool bk_ratelimit_allow_call(bk_broker_t *self, const ga_proto_msg_t *msg);

// bk_relay.c: a gateway's GROUP operation on a relay group (docs/protocol.md, "Relay groups"):
// answered with GROUP_REPLY (except `drop`), membership changes told with GROUP_EVENT, a
// `send` published on the XPUB under "r.<group>".
void bk_relay_on_group(bk_broker_t *self, const bk_gateway_t *gw, const ga_proto_msg_t *msg);
// bk_relay.c: a worker's GROUP operation (docs/protocol.md, "Relay groups from workers"): the
// same operations for the user_id it names, who is an offline member where it joins or creates;
// answered with GROUP_REPLY on the workers' socket. Refused unless bk_access_worker_group.
void bk_relay_on_worker_group(bk_broker_t *self, const bk_worker_t *w, const ga_proto_msg_t *msg);
// bk_relay.c: an operator's relay operation `op` (groups, group_info, group_delete: see
// docs/protocol.md, "Admin operations"), answered into `reply` (built in the loop's arena).
void bk_relay_admin(bk_broker_t *self, const char *op, const ga_value_t *req, ga_value_t *reply);
// bk_relay.c: reads relay_state_file (when set): groups, admins, members and their states, the
// members detached until their gateways claim them. GA_ECONFIG, logged, for an unreadable or
// malformed file (a missing one is a first start).
ga_err_t bk_relay_load(bk_broker_t *self);
// bk_relay.c: writes relay_state_file atomically when groups changed since the last write.
void bk_relay_save(bk_broker_t *self);
// bk_relay.c: the re-registration window is over: restored members no gateway claimed go.
void bk_relay_tick(bk_broker_t *self, int64_t now);
// bk_relay.c: removes every member living on the dead gateway `gw` from every group.
void bk_relay_drop_gateway(bk_broker_t *self, const bk_gateway_t *gw);

// bk_inspect.c: a worker's HEARTBEAT body: its pool figures (threads, busy, queued, queue_max).
void bk_inspect_on_heartbeat(bk_worker_t *w, const ga_value_t *body);
// bk_inspect.c: answers the read-only admin ops pool_status, pushed_services and call_flow
// into `reply`; false when `op` is none of them.
bool bk_inspect_admin(bk_broker_t *self, const char *op, const ga_value_t *req, ga_value_t *reply);

// bk_admin.c: whether `action` names an admin operation (bk_admin_actions_list).
bool bk_admin_action_known(const char *action);
// bk_admin.c: every admin operation's name, comma-separated (for messages).
const char *bk_admin_actions_list(void);
// bk_admin.c: an operator's ADMIN request on the gateway socket.
void bk_on_admin(bk_broker_t *self, const ga_proto_msg_t *msg);
// bk_admin.c: a worker's ADMIN request on the worker socket (docs/protocol.md, "Config verify
// from workers"): op verify only, no admin token (it changes nothing), refused unless the
// worker is registered and bk_access_worker_verify; answered with ADMIN_REPLY {id, ok,
// result: {status, stored_version?}} or {id, ok: false, error, code, can_retry}.
void bk_admin_on_worker(bk_broker_t *self, const bk_worker_t *w, const ga_proto_msg_t *msg);

#endif
