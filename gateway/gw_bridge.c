// SPDX-License-Identifier: MIT
// The DEALER to the broker and the SUB for stream chunks, driven from the gateway loop. ZMQ_FD
// signals edges (a send can consume the edge of messages that arrived meanwhile), so each
// socket is drained by receiving until EAGAIN: on every readiness callback, after sends (the
// server's deferred kick) and on every tick. Call records come from a free list and keep their
// strings inline, so a steady load allocates nothing per request.
#include "gw_bridge.h"

#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_inflight.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_telemetry.h"
#include "ga_wire.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define GW_ROUTE_INLINE 256 // bytes of route strings kept inline in a call record

typedef struct pending_t pending_t;

// What a call record is waiting for: its chain runs the permission check, the before hook,
// the call itself and the after hook, each step sent only once the one before it allowed it.
typedef enum {
    STEP_CALL,   // the call itself
    STEP_CHECK,  // its worker permission callback
    STEP_BEFORE, // its before hook
    STEP_AFTER,  // its after hook (the call's result is kept in `kept`)
} step_t;

struct pending_t {
    ga_inflight_rec_t rec;        // id (the gateway's call id), deadline, owner: the connection
    gw_route_t route;             // strings point into text (or heap when large)
    char text[GW_ROUTE_INLINE];   // inline storage for the route strings
    char *heap;                   // storage when the strings do not fit inline
    step_t step;                  // what the id in flight is
    ga_buf_t held;                // encoded CALL waiting for the check or before hook (else empty)
    ga_buf_t before;              // encoded before-hook CALL waiting for the check (else empty)
    ga_buf_t after;               // encoded after-hook CALL, without its result (else empty)
    ga_buf_t kept;                // STEP_AFTER: the call's RESULT body, for a failing hook
    uint64_t held_id;             // the id inside `held`
    uint64_t next_seq;            // streams: the sequence number expected next
    int64_t idle_ms;              // streams: each message moves the deadline this far; else 0
    int64_t held_timeout_ms;      // its timeout
    char *relay_sub;              // a group join's proxy topic, subscribed while it is decided
    int64_t hook_timeout_ms;      // each hook call's timeout
    bool before_local;            // `before` is an in-process hook's: run, never sent
    bool after_local;             // `after` likewise
    int64_t hook_started_us;      // the running hook step's start (telemetry), or 0: untimed
    pending_t *next;              // free-list link
};

struct gw_bridge_t {
    const gw_bridge_config_t *cfg; // borrowed settings
    gw_pipeline_t *pipeline;       // registry copy lives here (borrowed)
    gw_result_fn *on_result;       // result callback
    gw_registry_fn *on_registry;   // registry callback
    gw_stream_fn *on_stream;       // stream callback
    gw_accept_fn *on_accept;       // checked async/stream call allowed and sent
    void *arg;                     // callbacks' argument
    void *zctx;                    // libzmq context (owned)
    void *dealer;                  // DEALER to the broker
    int fd;                        // its ZMQ_FD
    void *sub;                     // SUB to the broker's stream proxy
    int sub_fd;                    // its ZMQ_FD
    char sub_endpoint[300];        // where sub is connected ("" until the snapshot says)
    char topic_prefix[200];        // "s.<gateway name>." (the subscription)
    uint64_t duplicates;           // stream messages dropped as duplicates
    uint64_t gaps;                 // streams ended by a gap
    ga_inflight_t *calls;          // id -> pending_t, with deadlines, by connection (owner 0)
    pending_t *free_list;          // recycled records
    uint64_t next_id;              // last id handed out
    ga_arena_t *arena;             // per-message arena
    ga_proto_msg_t msg;            // receive buffers
    ga_buf_t out;                  // send buffer (a CALL's envelope)
    ga_buf_t payload;              // a CALL's payload frame (its args)
    ga_proto_batch_t batch;        // CALLs join one message per loop turn (docs/protocol.md,
                                   // "Batches"); every other send closes it first
    bool broker_batch;             // the broker's SNAPSHOT said it reads batches
    int64_t hb_ms;                 // heartbeat interval in force
    int64_t last_heard;            // monotonic ms of the broker's last message
    int64_t next_hb;               // next heartbeat
    bool connected;                // broker heard within the liveness window
    bool have_snapshot;            // a SNAPSHOT has been applied
    int64_t unheard_since;         // monotonic ms since when the broker is unheard (0: heard)
    ga_log_every_t unheard_log;    // "no answer from the broker", once per interval
    ga_log_every_t refused_log;    // the broker's DISCONNECT reason, once per interval
    ga_log_every_t version_log;    // a broker of another protocol version, once per interval
    bool refused;                  // the endpoint answered DISCONNECT: not a gateway endpoint
    int64_t registry_seq;          // sequence number of the registry copy (SNAPSHOT, UPDATE)
    bool want_snapshot;            // a gap was seen: HELLO again until a SNAPSHOT comes
    uint64_t registry_gaps;        // registry gaps seen
    int64_t resync_at;             // monotonic ms of the next such HELLO
    gw_relay_t *relay;             // relay groups: local members, subscriptions (owned)
};

// CALLs per batch: bounds the work one message gives the broker.
#define GW_BATCH_MAX 64

// A broker that stays unreachable, or refuses us, is logged at once and then once a minute.
#define GW_LOG_REPEAT_MS 60000

// The relay's subscription callback: "r.<group>" on the SUB while the group has local members.
static void
s_relay_sub(void *arg, const char *topic, bool subscribe)
{
    gw_bridge_t *self = arg;
    if (self->sub &&
        zmq_setsockopt(self->sub, subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic,
                       strlen(topic)) != 0) {
        GA_ERR("relay: cannot %s %s: %s", subscribe ? "subscribe to" : "unsubscribe from", topic,
               zmq_strerror(zmq_errno()));
    }
}

gw_bridge_t *
gw_bridge_new(const gw_bridge_config_t *cfg, gw_pipeline_t *pipeline, gw_result_fn *on_result,
              gw_registry_fn *on_registry, void *arg)
{
    gw_bridge_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->pipeline = pipeline;
    self->on_result = on_result;
    self->on_registry = on_registry;
    self->arg = arg;
    self->fd = -1;
    self->calls = ga_inflight_new();
    self->arena = ga_arena_new(16384);
    ga_proto_msg_init(&self->msg);
    ga_buf_init(&self->out);
    ga_buf_init(&self->payload);
    ga_proto_batch_init(&self->batch, NULL, GW_BATCH_MAX); // the socket once connected
    self->hb_ms = cfg->heartbeat_ms;
    self->relay = gw_relay_new(s_relay_sub, self);
    return self;
}

static void
s_pending_free(pending_t *p)
{
    ga_free(p->relay_sub);
    ga_free(p->heap);
    ga_buf_fini(&p->held);
    ga_buf_fini(&p->before);
    ga_buf_fini(&p->after);
    ga_buf_fini(&p->kept);
    ga_free(p);
}

void
gw_bridge_destroy(gw_bridge_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    gw_bridge_t *self = *self_p;
    ga_inflight_rec_t *rec;
    while ((rec = ga_inflight_first(self->calls)) != NULL) {
        ga_inflight_remove(self->calls, rec);
        s_pending_free((pending_t *) rec);
    }
    ga_inflight_destroy(&self->calls);
    gw_relay_destroy(&self->relay);
    while (self->free_list) {
        pending_t *p = self->free_list;
        self->free_list = p->next;
        s_pending_free(p);
    }
    ga_proto_batch_fini(&self->batch); // sends an open one: before its socket closes
    if (self->dealer) {
        zmq_close(self->dealer);
    }
    if (self->sub) {
        zmq_close(self->sub);
    }
    if (self->zctx) {
        zmq_ctx_term(self->zctx);
    }
    ga_arena_destroy(&self->arena);
    ga_proto_msg_fini(&self->msg);
    ga_buf_fini(&self->out);
    ga_buf_fini(&self->payload);
    ga_free(self);
    *self_p = NULL;
}

// Sends a CALL (`m`, one map: its args go as the payload frame): into the open batch when the
// broker reads batches (sent at the end of the loop turn, gw_bridge_process), else at once.
static ga_err_t
s_send_call(gw_bridge_t *self, const ga_value_t *m)
{
    if (self->broker_batch) {
        return ga_proto_batch_add_split(&self->batch, NULL, 0, GA_CMD_CALL, m, &self->out,
                                        &self->payload);
    }
    return ga_proto_send_split(self->dealer, NULL, 0, GA_CMD_CALL, m, &self->out,
                               &self->payload);
}

static void
s_send(gw_bridge_t *self, int cmd, const ga_value_t *body)
{
    ga_proto_batch_close(&self->batch);
    ga_err_t rc = ga_proto_send_value(self->dealer, NULL, 0, cmd, body, &self->out);
    if (rc != GA_OK) {
        GA_DEBUG("%s not sent to the broker: %s", ga_cmd_name(cmd), ga_strerror(rc));
    }
}

static void
s_hello(gw_bridge_t *self)
{
    ga_value_t m = ga_map(self->arena, 2);
    ga_map_put(&m, self->arena, "name", ga_str(self->cfg->name));
    ga_map_put(&m, self->arena, "batch", ga_bool(true)); // this gateway reads batches
    s_send(self, GA_CMD_HELLO, &m);
    ga_arena_reset(self->arena);
}

ga_err_t
gw_bridge_connect(gw_bridge_t *self)
{
    self->zctx = zmq_ctx_new();
    if (self->zctx == NULL) {
        return GA_EIO;
    }
    self->dealer = zmq_socket(self->zctx, ZMQ_DEALER);
    self->batch.socket = self->dealer;
    if (self->dealer == NULL) {
        return GA_EIO;
    }
    int zero = 0;
    int one = 1;
    int hwm = (int) self->cfg->hwm;
    int ivl = (int) self->cfg->heartbeat_ms;
    int timeout = (int) self->cfg->heartbeat_ms * GA_PROTO_LIVENESS;
    int reconnect_max = 2000;
    // IMMEDIATE: a call is refused at once while the broker is unreachable rather than queued
    // for a broker that, once restarted, would know nothing of it.
    if (zmq_setsockopt(self->dealer, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_IMMEDIATE, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_RECONNECT_IVL_MAX, &reconnect_max,
                       sizeof reconnect_max) != 0) {
        return GA_EIO;
    }
    if (self->cfg->curve &&
        ga_curve_client(self->dealer, self->cfg->curve, self->cfg->curve_broker) != GA_OK) {
        GA_ERR("cannot set CURVE keys: %s", zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    if (zmq_connect(self->dealer, self->cfg->broker) != 0) {
        GA_ERR("cannot connect to broker %s: %s", self->cfg->broker, zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    size_t len = sizeof self->fd;
    if (zmq_getsockopt(self->dealer, ZMQ_FD, &self->fd, &len) != 0) {
        return GA_EIO;
    }
    // The stream subscription: one prefix for every stream of this gateway. Topics may not
    // contain dots before the id, so dots in the name become underscores.
    int n = snprintf(self->topic_prefix, sizeof self->topic_prefix, "s.%s", self->cfg->name);
    for (int i = 2; i < n && i < (int) sizeof self->topic_prefix; i++) {
        if (self->topic_prefix[i] == '.') {
            self->topic_prefix[i] = '_';
        }
    }
    snprintf(self->topic_prefix + strlen(self->topic_prefix),
             sizeof self->topic_prefix - strlen(self->topic_prefix), ".");
    self->sub = zmq_socket(self->zctx, ZMQ_SUB);
    int sub_hwm = (int) self->cfg->hwm;
    len = sizeof self->sub_fd;
    if (self->sub == NULL || zmq_setsockopt(self->sub, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(self->sub, ZMQ_RCVHWM, &sub_hwm, sizeof sub_hwm) != 0 ||
        (self->cfg->curve &&
         ga_curve_client(self->sub, self->cfg->curve, self->cfg->curve_broker) != GA_OK) ||
        zmq_setsockopt(self->sub, ZMQ_SUBSCRIBE, self->topic_prefix,
                       strlen(self->topic_prefix)) != 0 ||
        zmq_getsockopt(self->sub, ZMQ_FD, &self->sub_fd, &len) != 0) {
        return GA_EIO;
    }
    self->last_heard = ga_clock_ms();
    self->next_hb = self->last_heard;
    self->unheard_since = self->last_heard;
    return GA_OK;
}

int
gw_bridge_fd(const gw_bridge_t *self)
{
    return self->fd;
}

int
gw_bridge_stream_fd(const gw_bridge_t *self)
{
    return self->sub_fd;
}

void
gw_bridge_on_stream(gw_bridge_t *self, gw_stream_fn *on_stream)
{
    self->on_stream = on_stream;
}

void
gw_bridge_on_accept(gw_bridge_t *self, gw_accept_fn *on_accept)
{
    self->on_accept = on_accept;
}

uint64_t
gw_bridge_stream_duplicates(const gw_bridge_t *self)
{
    return self->duplicates;
}

uint64_t
gw_bridge_stream_gaps(const gw_bridge_t *self)
{
    return self->gaps;
}

uint64_t
gw_bridge_registry_gaps(const gw_bridge_t *self)
{
    return self->registry_gaps;
}

// (Re)connects the SUB to the broker's stream proxy: the broker's host, the port it names.
static void
s_stream_connect(gw_bridge_t *self, int64_t port)
{
    const char *colon = strrchr(self->cfg->broker, ':');
    if (port <= 0 || port > 65535 || colon == NULL) {
        return;
    }
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "%.*s:%d", (int) (colon - self->cfg->broker),
             self->cfg->broker, (int) port);
    if (strcmp(endpoint, self->sub_endpoint) == 0) {
        return;
    }
    if (self->sub_endpoint[0]) {
        GA_IGNORE(zmq_disconnect(self->sub, self->sub_endpoint) != 0); // may be gone already
    }
    if (zmq_connect(self->sub, endpoint) != 0) {
        GA_ERR("cannot connect to the stream proxy %s", endpoint);
        self->sub_endpoint[0] = '\0';
        return;
    }
    snprintf(self->sub_endpoint, sizeof self->sub_endpoint, "%s", endpoint);
    GA_INFO("streams from %s", endpoint);
}

// Copies the route strings into the record.
static void
s_route_copy(pending_t *p, const gw_route_t *r)
{
    const char *src[6] = {r->join_ref, r->ref, r->topic ? r->topic : "", r->request_id,
                          r->service, r->request_type};
    size_t len[6];
    size_t need = 0;
    for (int i = 0; i < 6; i++) {
        len[i] = src[i] ? strlen(src[i]) + 1 : 0;
        need += len[i];
    }
    char *buf = p->text;
    ga_free(p->heap);
    p->heap = NULL;
    if (need > sizeof p->text) {
        buf = p->heap = ga_malloc(need);
    }
    const char *dst[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    for (int i = 0; i < 6; i++) {
        if (src[i]) {
            ga_copy_short(buf, src[i], len[i]);
            dst[i] = buf;
            buf += len[i];
        }
    }
    p->route = (gw_route_t){.kind = r->kind,
                            .type = r->type,
                            .conn_id = r->conn_id,
                            .join_ref = dst[0],
                            .ref = dst[1],
                            .topic = dst[2],
                            .request_id = dst[3],
                            .service = dst[4],
                            .request_type = dst[5],
                            .started_us = r->started_us};
}

static void s_relay_sub(void *arg, const char *topic, bool subscribe);

static void
s_release(gw_bridge_t *self, pending_t *p)
{
    if (p->relay_sub) {
        s_relay_sub(self, p->relay_sub, false); // the member's own subscription holds it now
        ga_free(p->relay_sub);
        p->relay_sub = NULL;
    }
    if (p->heap) {
        ga_free(p->heap);
        p->heap = NULL;
    }
    ga_buf_reset(&p->held);
    ga_buf_reset(&p->before);
    ga_buf_reset(&p->after);
    ga_buf_reset(&p->kept);
    p->step = STEP_CALL;
    p->before_local = false;
    p->after_local = false;
    p->next = self->free_list;
    self->free_list = p;
}

// A call record: a recycled one (s_release left it reset), or a new one.
static pending_t *
s_take(gw_bridge_t *self)
{
    pending_t *p = self->free_list;
    if (p) {
        self->free_list = p->next;
        return p;
    }
    p = ga_calloc(1, sizeof *p);
    ga_buf_init(&p->held);
    ga_buf_init(&p->before);
    ga_buf_init(&p->after);
    ga_buf_init(&p->kept);
    return p;
}

// Answers a call with an error the gateway itself decided.
static void
s_answer_error(gw_bridge_t *self, pending_t *p, int code, const char *message, bool can_retry)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 4);
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(message));
    ga_map_put(&m, a, "code", ga_int(code));
    ga_map_put(&m, a, "can_retry", ga_bool(can_retry));
    if (p->route.type == GA_RESP_STREAM && p->held.len == 0) {
        ga_value_t end = ga_map(a, 2);
        ga_map_put(&end, a, "kind", ga_str("error"));
        ga_map_put(&end, a, "error", ga_str(message));
        self->on_stream(self->arg, &p->route, &end);
    } else {
        self->on_result(self->arg, &p->route, &m);
    }
    s_release(self, p);
}

// The caller's keys for the broker's cluster-wide rate limits (docs/protocol.md, "Rate
// limits"): always the identity (the broker strips the field before the worker sees the call);
// a permission check (or hook) also names the call it guards, whose limits apply, and where
// that call's args are in its own (`args_in`, keys joined by dots): the broker reads them from
// the payload it otherwise never decodes.
static ga_value_t
s_rate_limit_keys(const gw_call_t *call, ga_arena_t *a, const char *args_in)
{
    ga_value_t rl = ga_map(a, 6);
    const gw_identity_t *who = call->who;
    if (who && who->user_id) {
        ga_map_put(&rl, a, "user_id", ga_str(who->user_id));
    }
    if (who && who->device_id) {
        ga_map_put(&rl, a, "device_id", ga_str(who->device_id));
    }
    if (who && who->ip && who->ip[0]) {
        ga_map_put(&rl, a, "ip_address", ga_str(who->ip));
    }
    if (call->rate_limit_of) {
        ga_map_put(&rl, a, "service", ga_str(call->rate_limit_of->service));
        ga_map_put(&rl, a, "request_type", ga_str(call->rate_limit_of->request_type));
        ga_map_put(&rl, a, "args_in", ga_str(args_in));
    }
    return rl;
}

// A CALL body for `call` under `id`, as one map (args included: ga_proto_send_split sends
// them as the payload frame); `rate_limit`: with the keys for the broker's rate limits when the
// call is counted there (`args_in`: see s_rate_limit_keys).
static ga_value_t
s_call_map(gw_bridge_t *self, const gw_call_t *call, uint64_t id, bool rate_limit,
           const char *args_in)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 12);
    ga_map_put(&m, a, "id", ga_int((int64_t) id));
    if (call->response_type == GA_RESP_STREAM) {
        char *topic = ga_arena_alloc(a, sizeof self->topic_prefix + 24);
        snprintf(topic, sizeof self->topic_prefix + 24, "%s%llu", self->topic_prefix,
                 (unsigned long long) id);
        ga_map_put(&m, a, "stream_topic", ga_str(topic));
    }
    gw_call_body_put(call, a, &m);
    if (rate_limit && call->rate_limit_cluster) {
        ga_map_put(&m, a, "rate_limit", s_rate_limit_keys(call, a, args_in));
    }
    return m;
}

// Encodes the CALL body of s_call_map into `out`: how a call waiting for an earlier step is
// kept (s_send_held sends it in frames).
static void
s_encode_call(gw_bridge_t *self, const gw_call_t *call, uint64_t id, ga_buf_t *out,
              bool rate_limit)
{
    ga_value_t m = s_call_map(self, call, id, rate_limit, NULL);
    ga_buf_reset(out);
    ga_wire_encode(out, &m);
}

// Hook telemetry (docs/telemetry.md): genapi.hook.before|after.start when a hook step is sent
// or run in process; its start timed only when its stop or exception is listened to.
static void
s_hook_start(pending_t *p, bool before)
{
    ga_event_t start = before ? GA_EV_HOOK_BEFORE_START : GA_EV_HOOK_AFTER_START;
    bool timed = before ? ga_telemetry_is_on(GA_EV_HOOK_BEFORE_STOP) ||
                              ga_telemetry_is_on(GA_EV_HOOK_BEFORE_EXCEPTION)
                        : ga_telemetry_is_on(GA_EV_HOOK_AFTER_STOP) ||
                              ga_telemetry_is_on(GA_EV_HOOK_AFTER_EXCEPTION);
    p->hook_started_us = timed ? ga_clock_us() : 0;
    GA_EMIT(start, .service = p->route.service, .request_type = p->route.request_type,
            .request_id = p->route.request_id);
}

// Its end: .stop when the hook answered (success: it allowed, or gave a result; else reason
// `refused` or `invalid_args` for a before hook, `error` for an after hook's error answer),
// .exception when it failed (`reason` timeout, unavailable or failed).
static void
s_hook_end(pending_t *p, bool before, bool success, const char *reason, bool exception)
{
    ga_event_t ev = before ? (exception ? GA_EV_HOOK_BEFORE_EXCEPTION : GA_EV_HOOK_BEFORE_STOP)
                           : (exception ? GA_EV_HOOK_AFTER_EXCEPTION : GA_EV_HOOK_AFTER_STOP);
    if (!ga_telemetry_is_on(ev)) {
        return;
    }
    ga_telemetry_emit(ev, &(const ga_tm_data_t){
                              .duration_us = p->hook_started_us
                                                 ? ga_clock_us() - p->hook_started_us
                                                 : 0,
                              .service = p->route.service,
                              .request_type = p->route.request_type,
                              .request_id = p->route.request_id,
                              .reason = reason,
                              .success = success ? GA_TM_TRUE : GA_TM_FALSE,
                          });
}

// A failed hook answer's reason, by its code.
static const char *
s_hook_failure(const ga_value_t *body)
{
    int64_t code = ga_map_get_int(body, "code", 0);
    return code == GA_ETIMEDOUT ? "timeout" : code == GA_EUNAVAIL ? "unavailable" : "failed";
}

// The hook chain's steps (below gw_bridge_call_checked).
static ga_err_t s_held_decode(gw_bridge_t *self, const ga_buf_t *buf, uint64_t id,
                              ga_value_t args, const ga_value_t *result, ga_value_t request_args,
                              ga_value_t *out);
static void s_before_done(gw_bridge_t *self, pending_t *p, const ga_value_t *body);
static void s_after_done(gw_bridge_t *self, pending_t *p, const ga_value_t *body);

// Tracks `p` under `id` with its deadline: timeout + grace after now (a hook step: its
// hook_timeout exactly, which the broker does not know of). For a stream (not while
// its permission check or before hook runs) that bounds the silence between two messages: each one received
// moves the deadline on (s_on_stream_msg). Infinity: no deadline.
static void
s_track(gw_bridge_t *self, pending_t *p, uint64_t id, int64_t timeout_ms)
{
    p->idle_ms = 0;
    int64_t deadline = GA_INFLIGHT_NONE;
    if (timeout_ms != GA_FUNCFG_TIMEOUT_INFINITY) {
        bool hook = p->step == STEP_BEFORE || p->step == STEP_AFTER;
        int64_t span = timeout_ms + (hook ? 0 : self->cfg->grace_ms);
        if (p->route.type == GA_RESP_STREAM && p->held.len == 0) {
            p->idle_ms = span;
        }
        deadline = ga_clock_ms() + span;
    }
    uint64_t owners[GA_INFLIGHT_OWNERS] = {p->route.conn_id, 0};
    ga_inflight_add(self->calls, &p->rec, id, deadline, owners);
}

ga_err_t
gw_bridge_call_checked(gw_bridge_t *self, const gw_call_t *check, const gw_call_t *call,
                       const gw_route_t *route)
{
    if (!self->connected) {
        return GA_EUNAVAIL;
    }
    if ((int64_t) ga_inflight_size(self->calls) >= self->cfg->max_inflight) {
        return GA_EAGAIN;
    }
    if (call->response_type == GA_RESP_STREAM && self->on_stream == NULL) {
        return GA_EUNAVAIL;
    }
    // The chain (docs/architecture.md, "One request end to end"): permission check, before
    // hook, the call, after hook; the first step present is sent now, each next one when the
    // step before it allows (s_on_result).
    gw_call_t before;
    gw_call_t after;
    bool has_before =
        gw_pipeline_hook_call(self->pipeline, call->who, call, GW_HOOK_BEFORE, self->arena, &before);
    bool has_after =
        gw_pipeline_hook_call(self->pipeline, call->who, call, GW_HOOK_AFTER, self->arena, &after);
    const gw_call_t *first = check ? check : has_before ? &before : call;
    // An in-process before hook first runs at once (below): the call, sent after it, then
    // carries the keys for the broker's rate limits.
    bool local_first = first == &before && before.local_hook;
    uint64_t id = ++self->next_id;
    if (!local_first) {
        // A guarded first step (check or hook) carries the guarded call's args inside its own.
        ga_value_t m = s_call_map(self, first, id, true, first == check ? "args" : "request.args");
        if (s_send_call(self, &m) != GA_OK) {
            ga_arena_reset(self->arena);
            return GA_EUNAVAIL;
        }
    }
    if (first == call && call->response_type == GA_RESP_NONE) {
        ga_arena_reset(self->arena);
        return GA_OK; // fire and forget: nothing to track, nothing will come back
    }
    pending_t *p = s_take(self);
    gw_route_t named = *route;
    if ((has_before || has_after) && named.service == NULL) {
        named.service = call->service; // for the hook events (telemetry)
        named.request_type = call->request_type;
    }
    s_route_copy(p, &named);
    p->route.checking = first != call;
    p->next_seq = 1;
    p->step = check ? STEP_CHECK : has_before ? STEP_BEFORE : STEP_CALL;
    p->hook_timeout_ms =
        call->hook_timeout_ms > 0 ? call->hook_timeout_ms : GA_FUNCFG_HOOK_TIMEOUT_DEFAULT;
    p->before_local = has_before && before.local_hook;
    p->after_local = has_after && after.local_hook;
    if (check && has_before) {
        s_encode_call(self, &before, 0, &p->before, false); // its id is set when it is sent
    }
    if (first != call) {
        p->held_id = ++self->next_id;
        p->held_timeout_ms = call->timeout_ms;
        s_encode_call(self, call, p->held_id, &p->held, local_first); // else counted with the first
    }
    if (has_after) {
        s_encode_call(self, &after, 0, &p->after, false); // sent with the result added
    }
    if (first == &before) {
        s_hook_start(p, true);
    }
    if (local_first) {
        ga_value_t body = gw_pipeline_run_hook(self->pipeline, before.service, &before.args,
                                               self->arena);
        s_before_done(self, p, &body);
    } else {
        s_track(self, p, id, first->timeout_ms);
    }
    ga_arena_reset(self->arena);
    return GA_OK;
}

ga_err_t
gw_bridge_call(gw_bridge_t *self, const gw_call_t *call, const gw_route_t *route)
{
    return gw_bridge_call_checked(self, NULL, call, route);
}

gw_relay_t *
gw_bridge_relay(gw_bridge_t *self)
{
    return self->relay;
}

ga_err_t
gw_bridge_group(gw_bridge_t *self, const char *op, const char *group_id, const char *user_id,
                const ga_value_t *args, const gw_route_t *route, int64_t timeout_ms)
{
    if (!self->connected) {
        return GA_EUNAVAIL;
    }
    if ((int64_t) ga_inflight_size(self->calls) >= self->cfg->max_inflight) {
        return GA_EAGAIN;
    }
    // A join (or create) subscribes to the group's proxy topic before the broker hears of it,
    // so that the messages published right after the join are on their way here (ZeroMQ
    // counts subscriptions: the member's own one, once the broker's event comes, keeps it).
    char *relay_sub = NULL;
    if (strcmp(op, "join") == 0 || strcmp(op, "create") == 0) {
        size_t len = strlen(group_id) + 3;
        relay_sub = ga_malloc(len);
        snprintf(relay_sub, len, "r.%s", group_id);
        s_relay_sub(self, relay_sub, true);
    }
    uint64_t id = ++self->next_id;
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 11);
    ga_map_put(&m, a, "id", ga_int((int64_t) id));
    ga_map_put(&m, a, "op", ga_str(op));
    ga_map_put(&m, a, "group_id", ga_str(group_id));
    ga_map_put(&m, a, "user_id", ga_str(user_id));
    ga_map_put(&m, a, "conn", ga_int((int64_t) route->conn_id));
    ga_map_put(&m, a, "topic", ga_str(route->topic));
    ga_map_put(&m, a, "request_id", ga_str(route->request_id ? route->request_id : "unknown"));
    ga_map_put(&m, a, "origin", ga_str(self->cfg->name));
    const char *type = args ? ga_map_get_str(args, "group_type") : NULL;
    const char *target = args ? ga_map_get_str(args, "user_id") : NULL;
    const char *message = args ? ga_map_get_str(args, "message") : NULL;
    if (type) {
        ga_map_put(&m, a, "group_type", ga_str(type));
    }
    if (target) {
        ga_map_put(&m, a, "target", ga_str(target));
    }
    if (message) {
        ga_map_put(&m, a, "message", ga_str(message));
    }
    ga_proto_batch_close(&self->batch);
    ga_err_t rc = ga_proto_send_value(self->dealer, NULL, 0, GA_CMD_GROUP, &m, &self->out);
    ga_arena_reset(self->arena);
    if (rc != GA_OK) {
        if (relay_sub) {
            s_relay_sub(self, relay_sub, false);
            ga_free(relay_sub);
        }
        return GA_EUNAVAIL;
    }
    gw_relay_note_conn(self->relay, route->conn_id);
    pending_t *p = s_take(self);
    s_route_copy(p, route);
    p->route.type = GA_RESP_SYNC;
    p->route.checking = false;
    p->step = STEP_CALL; // no hooks: the broker's answer is the answer
    p->relay_sub = relay_sub;
    s_track(self, p, id, timeout_ms);
    return GA_OK;
}

// Names one local member to a broker that has just started (op `restore`, no reply).
static void
s_restore_member(void *arg, const char *group_id, const char *user_id, uint64_t conn_id,
                 const char *topic, const char *state)
{
    gw_bridge_t *self = arg;
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "state", ga_str(state));
    ga_map_put(&m, a, "op", ga_str("restore"));
    ga_map_put(&m, a, "group_id", ga_str(group_id));
    ga_map_put(&m, a, "user_id", ga_str(user_id));
    ga_map_put(&m, a, "conn", ga_int((int64_t) conn_id));
    ga_map_put(&m, a, "topic", ga_str(topic));
    s_send(self, GA_CMD_GROUP, &m);
}

void
gw_bridge_group_drop(gw_bridge_t *self, uint64_t conn_id, const char *topic)
{
    if (!gw_relay_drop(self->relay, conn_id, topic)) {
        return; // never asked for a group operation: the broker holds nothing of it
    }
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 3);
    ga_map_put(&m, a, "op", ga_str("drop"));
    ga_map_put(&m, a, "conn", ga_int((int64_t) conn_id));
    if (topic) {
        ga_map_put(&m, a, "topic", ga_str(topic));
    }
    s_send(self, GA_CMD_GROUP, &m);
    ga_arena_reset(self->arena);
}

// Ends a stream from a RESULT body: {stopped: true} is a clean end, anything else an error.
static void
s_stream_end(gw_bridge_t *self, pending_t *p, const ga_value_t *result)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 2);
    const ga_value_t *stopped = ga_map_get(result, "stopped");
    if (stopped && stopped->type == GA_BOOL && stopped->u.b) {
        ga_map_put(&m, a, "kind", ga_str("end"));
    } else {
        const char *error = ga_map_get_str(result, "error");
        ga_map_put(&m, a, "kind", ga_str("error"));
        ga_map_put(&m, a, "error", ga_str(error ? error : "Internal Server Error"));
    }
    self->on_stream(self->arg, &p->route, &m);
    s_release(self, p);
}

static void
s_send_stop(gw_bridge_t *self, uint64_t id)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 1);
    ga_map_put(&m, a, "id", ga_int((int64_t) id));
    s_send(self, GA_CMD_STOP, &m);
}

// Ends stream `p` (call `id`) for its client with an error, and has the broker stop it: a gap
// in its sequence numbers, or a malformed message. Never silence.
static void
s_stream_gap(gw_bridge_t *self, pending_t *p, uint64_t id, int64_t seq)
{
    self->gaps++;
    GA_WARN("stream %llu: expected chunk %llu, got %lld: ending it", (unsigned long long) id,
            (unsigned long long) p->next_seq, (long long) seq);
    ga_inflight_remove(self->calls, &p->rec);
    s_send_stop(self, id);
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 2);
    ga_map_put(&m, a, "kind", ga_str("error"));
    ga_map_put(&m, a, "error", ga_str("Stream interrupted: chunks were lost"));
    self->on_stream(self->arg, &p->route, &m);
    s_release(self, p);
}

// One message from the stream proxy: checks its sequence numbers and delivers it. `items` is a
// batch's data frame (an array), NULL for a single message (docs/protocol.md, "Streams on the
// proxy"): a batch of n holds messages seq .. seq + n - 1, all chunks but the last, which is of
// its `kind`; `items` holds the data of those that carry data, in order.
static void
s_on_stream_msg(gw_bridge_t *self, const ga_proto_msg_t *msg, const ga_value_t *items)
{
    size_t plen = strlen(self->topic_prefix);
    if (msg->cmd != GA_CMD_STREAM || msg->id_len <= plen || msg->id_len > plen + 20 ||
        memcmp(msg->id, self->topic_prefix, plen) != 0) {
        return;
    }
    char digits[24];
    memcpy(digits, msg->id + plen, msg->id_len - plen);
    digits[msg->id_len - plen] = '\0';
    uint64_t id = strtoull(digits, NULL, 10);
    pending_t *p = (pending_t *) ga_inflight_get(self->calls, id);
    if (p == NULL || p->route.type != GA_RESP_STREAM) {
        return; // ended or stopped already: late chunks are dropped
    }
    const ga_value_t *body = &msg->value;
    int64_t seq = ga_map_get_int(body, "seq", 0);
    const char *kind = ga_map_get_str(body, "kind");
    bool has_n = ga_map_get(body, "n") != NULL;
    int64_t n = has_n ? ga_map_get_int(body, "n", 0) : 1;
    bool well_formed = seq > 0 && kind != NULL && n >= 1 && n <= INT32_MAX && has_n == (items != NULL);
    if (well_formed && items) {
        // Chunks and a last carry data; an end or an error does not.
        bool last_has_data = strcmp(kind, "chunk") == 0 || strcmp(kind, "last") == 0;
        well_formed = items->type == GA_ARRAY &&
                      (int64_t) items->len == (last_has_data ? n : n - 1);
    }
    if (seq > 0 && well_formed && (uint64_t) seq + (uint64_t) n - 1 < p->next_seq) {
        self->duplicates++;
        return;
    }
    if (!well_formed || (uint64_t) seq > p->next_seq) {
        s_stream_gap(self, p, id, seq);
        return;
    }
    uint64_t last = (uint64_t) seq + (uint64_t) n - 1;
    bool ends = strcmp(kind, "chunk") != 0;
    if (ends) {
        ga_inflight_remove(self->calls, &p->rec);
    } else if (p->idle_ms > 0) {
        ga_inflight_set_deadline(self->calls, &p->rec, ga_clock_ms() + p->idle_ms);
    }
    if (items == NULL) {
        p->next_seq++;
        self->on_stream(self->arg, &p->route, body);
    } else {
        // Each message of the batch on its own, from the first not seen yet (a batch that
        // overlaps what came before delivers only the rest).
        const char *error = ga_map_get_str(body, "error");
        for (uint64_t s = p->next_seq; s <= last; s++) {
            uint64_t i = s - (uint64_t) seq;
            bool is_last = s == last;
            ga_pair_t pairs[2];
            ga_value_t m = {.type = GA_MAP, .cap = 2, .u.pairs = pairs};
            pairs[m.len++] = (ga_pair_t){"kind", 4, ga_str(is_last ? kind : "chunk")};
            if (i < items->len) {
                pairs[m.len++] = (ga_pair_t){"data", 4, items->u.items[i]};
            } else if (error) {
                pairs[m.len++] = (ga_pair_t){"error", 5, ga_str(error)};
            }
            p->next_seq++;
            self->on_stream(self->arg, &p->route, &m);
        }
    }
    if (ends) {
        s_release(self, p);
    }
}

void
gw_bridge_stop_conn(gw_bridge_t *self, uint64_t conn_id, const char *topic)
{
    // Only this connection's calls are walked (the table's owner index), never the whole table.
    for (ga_inflight_rec_t *r = ga_inflight_owned(self->calls, 0, conn_id); r;) {
        ga_inflight_rec_t *next = r->next[0];
        pending_t *p = (pending_t *) r;
        if (p->route.type == GA_RESP_STREAM &&
            (topic == NULL || strcmp(p->route.topic, topic) == 0)) {
            ga_inflight_remove(self->calls, r);
            s_send_stop(self, r->id);
            s_release(self, p);
        }
        r = next;
    }
    ga_arena_reset(self->arena);
}

// Re-encodes the CALL held in `buf` under `id` into self->out and sends it; `args`: replaces
// its args (nil: kept); `result`: added to its args as "result" (NULL: none); `request_args`:
// replaces args.request.args (nil: kept). GA_EUNAVAIL when it cannot be sent.
static ga_err_t
s_send_held(gw_bridge_t *self, const ga_buf_t *buf, uint64_t id, ga_value_t args,
            const ga_value_t *result, ga_value_t request_args)
{
    ga_value_t m;
    if (s_held_decode(self, buf, id, args, result, request_args, &m) != GA_OK) {
        return GA_EUNAVAIL;
    }
    return s_send_call(self, &m) == GA_OK ? GA_OK : GA_EUNAVAIL;
}

// Decodes the CALL held in `buf` into `*out` (in the arena), patched as s_send_held says.
static ga_err_t
s_held_decode(gw_bridge_t *self, const ga_buf_t *buf, uint64_t id, ga_value_t args,
              const ga_value_t *result, ga_value_t request_args, ga_value_t *out)
{
    ga_arena_t *a = self->arena;
    ga_value_t m;
    if (ga_wire_decode(buf->data, buf->len, a, &m) != GA_OK || m.type != GA_MAP) {
        return GA_EUNAVAIL;
    }
    ga_value_t *idv = (ga_value_t *) ga_map_get(&m, "id");
    ga_value_t *argv = (ga_value_t *) ga_map_get(&m, "args");
    if (idv == NULL || argv == NULL || argv->type != GA_MAP) {
        return GA_EUNAVAIL;
    }
    *idv = ga_int((int64_t) id);
    if (args.type != GA_NIL) {
        *argv = args;
    }
    if (result) {
        ga_map_put(argv, a, "result", *result);
    }
    ga_value_t *req = (ga_value_t *) ga_map_get(argv, "request");
    ga_value_t *req_args = req ? (ga_value_t *) ga_map_get(req, "args") : NULL;
    if (request_args.type != GA_NIL && req_args) {
        *req_args = request_args;
    }
    *out = m;
    return GA_OK;
}

// Runs the in-process hook of the hook CALL held in `buf` (its service is the hook's name;
// `result` added to its args when not NULL) and returns its answer as a RESULT body.
static ga_value_t
s_run_local(gw_bridge_t *self, const ga_buf_t *buf, const ga_value_t *result)
{
    ga_value_t m;
    if (s_held_decode(self, buf, 0, ga_nil(), result, ga_nil(), &m) != GA_OK) {
        return gw_pipeline_run_hook(self->pipeline, "", &m, self->arena); // fails: no such hook
    }
    return gw_pipeline_run_hook(self->pipeline, ga_map_get_str(&m, "service"),
                                ga_map_get(&m, "args"), self->arena);
}

// The held call was sent: track it, and acknowledge an async or stream call now.
static void
s_sent(gw_bridge_t *self, pending_t *p)
{
    ga_buf_reset(&p->held);
    p->step = STEP_CALL;
    p->route.checking = false;
    if (p->route.type == GA_RESP_NONE) {
        s_release(self, p); // allowed and sent: nothing more will come back
        return;
    }
    if (p->route.type != GA_RESP_SYNC && self->on_accept) {
        self->on_accept(self->arg, &p->route);
    }
    s_track(self, p, p->held_id, p->held_timeout_ms);
}

// The step before allowed the call: sends its before hook when it has one still to run, else
// the call itself (then acknowledges an async or stream call).
static void
s_advance(gw_bridge_t *self, pending_t *p)
{
    if (p->before.len && p->before_local) {
        s_hook_start(p, true);
        ga_value_t body = s_run_local(self, &p->before, NULL);
        ga_buf_reset(&p->before);
        p->step = STEP_BEFORE;
        s_before_done(self, p, &body);
        return;
    }
    if (p->before.len) {
        uint64_t id = ++self->next_id;
        if (s_send_held(self, &p->before, id, ga_nil(), NULL, ga_nil()) != GA_OK) {
            s_answer_error(self, p, GA_EUNAVAIL, "Service unavailable", true);
            return;
        }
        ga_buf_reset(&p->before);
        p->step = STEP_BEFORE;
        s_hook_start(p, true);
        s_track(self, p, id, p->hook_timeout_ms);
        return;
    }
    if (s_send_held(self, &p->held, p->held_id, ga_nil(), NULL, ga_nil()) != GA_OK) {
        s_answer_error(self, p, GA_EUNAVAIL, "Service unavailable", true);
        return;
    }
    s_sent(self, p);
}

// The before hook answered (or timed out: a synthesized body): send the call with the args it
// gave, or refuse with its reason.
static void
s_before_done(gw_bridge_t *self, pending_t *p, const ga_value_t *body)
{
    ga_arena_t *a = self->arena;
    ga_value_t call;
    if (ga_wire_decode(p->held.data, p->held.len, a, &call) != GA_OK) {
        s_answer_error(self, p, GA_EINTERNAL, "Hook failed", false);
        return;
    }
    ga_value_t args;
    const char *refusal = NULL;
    ga_err_t rc = gw_pipeline_before_verdict(self->pipeline, body, &call, a, &args, &refusal);
    if (rc == GA_ETIMEDOUT || rc == GA_EINTERNAL) {
        s_hook_end(p, true, false, s_hook_failure(body), true);
    } else {
        s_hook_end(p, true, rc == GA_OK, rc == GA_OK         ? NULL
                                         : rc == GA_EHANDLER ? "refused"
                                                             : "invalid_args",
                   false);
    }
    if (rc != GA_OK) {
        s_answer_error(self, p, rc == GA_EHANDLER ? GA_EHANDLER : GA_EDENIED, refusal,
                       rc == GA_ETIMEDOUT);
        return;
    }
    if (s_send_held(self, &p->held, p->held_id, args, NULL, ga_nil()) != GA_OK) {
        s_answer_error(self, p, GA_EUNAVAIL, "Service unavailable", true);
        return;
    }
    if (p->after.len) {
        // The after hook sees the args the call was sent with.
        ga_buf_t tmp = p->after;
        ga_buf_init(&p->after);
        if (ga_wire_decode(tmp.data, tmp.len, a, &call) == GA_OK) {
            ga_value_t *argv = (ga_value_t *) ga_map_get(&call, "args");
            ga_value_t *req = argv ? (ga_value_t *) ga_map_get(argv, "request") : NULL;
            ga_value_t *req_args = req ? (ga_value_t *) ga_map_get(req, "args") : NULL;
            if (req_args) {
                *req_args = args;
            }
            ga_wire_encode(&p->after, &call);
        }
        ga_buf_fini(&tmp);
    }
    s_sent(self, p);
}

// The call's result came and it has an after hook: a success result goes through the hook
// (kept in case the hook fails); an error answer reaches the client as it is.
static void
s_after_start(gw_bridge_t *self, pending_t *p, const ga_value_t *body)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    const ga_value_t *result = ga_map_get(body, "result");
    ga_value_t nil = ga_nil();
    uint64_t id = ++self->next_id;
    bool success = ok && ok->type == GA_BOOL && ok->u.b;
    if (success && p->after_local) {
        ga_buf_reset(&p->kept);
        ga_wire_encode(&p->kept, body);
        s_hook_start(p, false);
        ga_value_t answer = s_run_local(self, &p->after, result ? result : &nil);
        p->step = STEP_AFTER;
        s_after_done(self, p, &answer);
        return;
    }
    if (!success ||
        s_send_held(self, &p->after, id, ga_nil(), result ? result : &nil, ga_nil()) != GA_OK) {
        self->on_result(self->arg, &p->route, body);
        s_release(self, p);
        return;
    }
    ga_buf_reset(&p->kept);
    ga_wire_encode(&p->kept, body);
    ga_buf_reset(&p->after);
    p->step = STEP_AFTER;
    s_hook_start(p, false);
    s_track(self, p, id, p->hook_timeout_ms);
}

// The after hook answered (or timed out, or the broker was lost: a synthesized body): its
// result when it answered ok, else the call's own.
static void
s_after_done(gw_bridge_t *self, pending_t *p, const ga_value_t *body)
{
    bool answered = gw_pipeline_after_verdict(self->pipeline, body);
    bool refused = !answered && ga_map_get_int(body, "code", 0) == GA_EHANDLER;
    s_hook_end(p, false, answered, answered ? NULL : refused ? "error" : s_hook_failure(body),
               !answered && !refused);
    if (answered) {
        ga_arena_t *a = self->arena;
        const ga_value_t *result = ga_map_get(body, "result");
        ga_value_t m = ga_map(a, 2);
        ga_map_put(&m, a, "ok", ga_bool(true));
        ga_map_put(&m, a, "result", result ? *result : ga_nil());
        self->on_result(self->arg, &p->route, &m);
    } else {
        ga_value_t kept;
        if (ga_wire_decode(p->kept.data, p->kept.len, self->arena, &kept) == GA_OK) {
            self->on_result(self->arg, &p->route, &kept);
        } else {
            s_answer_error(self, p, GA_EINTERNAL, "Internal Server Error", false);
            return;
        }
    }
    s_release(self, p);
}

// A failure body for a step the gateway itself ended (deadline, broker lost).
static ga_value_t
s_failure_body(gw_bridge_t *self, int code, const char *message)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 3);
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(message));
    ga_map_put(&m, a, "code", ga_int(code));
    return m;
}

static void
s_on_result(gw_bridge_t *self, const ga_value_t *body)
{
    int64_t id = ga_map_get_int(body, "id", 0);
    pending_t *p = id > 0 ? (pending_t *) ga_inflight_take(self->calls, (uint64_t) id) : NULL;
    if (p == NULL) {
        GA_DEBUG("result for unknown call %lld dropped (answered already)", (long long) id);
        return;
    }
    const ga_value_t *limited = ga_map_get(body, "rate_limited");
    if (p->step != STEP_CALL && p->step != STEP_AFTER && limited && limited->type == GA_BOOL &&
        limited->u.b) {
        // The broker's rate limits refused the call before its first step ran.
        self->on_result(self->arg, &p->route, body);
        s_release(self, p);
        return;
    }
    switch (p->step) {
    case STEP_CHECK: {
        // The permission check answered: go on with the chain, or deny.
        const char *denial = gw_pipeline_check_denial(body, self->arena);
        if (denial) {
            s_answer_error(self, p, GA_EDENIED, denial, false);
            return;
        }
        s_advance(self, p);
        return;
    }
    case STEP_BEFORE:
        s_before_done(self, p, body);
        return;
    case STEP_AFTER:
        s_after_done(self, p, body);
        return;
    case STEP_CALL:
        break;
    }
    if (p->after.len && p->route.type != GA_RESP_STREAM) {
        s_after_start(self, p, body);
        return;
    }
    if (p->route.type == GA_RESP_STREAM) {
        // The broker ends a stream this way only on failure (worker lost, timeout) or on a
        // stop; a normal end arrives on the stream itself.
        s_stream_end(self, p, body);
        return;
    }
    self->on_result(self->arg, &p->route, body);
    s_release(self, p);
}

// Registry sequence numbers (docs/protocol.md, "Registry updates"): a SNAPSHOT sets the copy's
// number, each UPDATE must be the next one, and a HEARTBEAT names the broker's current one.
// Anything else means an update was lost: the copy is applied as far as it goes and a fresh
// SNAPSHOT is asked for (HELLO again, see s_resync).
static void
s_check_seq(gw_bridge_t *self, const ga_proto_msg_t *msg)
{
    int64_t seq = ga_map_get_int(&msg->value, "seq", -1);
    if (msg->cmd == GA_CMD_SNAPSHOT) {
        self->registry_seq = seq;
        self->want_snapshot = false;
        return;
    }
    if (!self->have_snapshot || (msg->cmd == GA_CMD_HEARTBEAT && seq < 0)) {
        return; // a snapshot comes first anyway; a heartbeat need not name the number
    }
    int64_t expected = msg->cmd == GA_CMD_UPDATE ? self->registry_seq + 1 : self->registry_seq;
    if (msg->cmd == GA_CMD_UPDATE) {
        self->registry_seq = seq;
    }
    if (seq != expected && !self->want_snapshot) {
        GA_WARN("registry %s %lld, expected %lld: an update was lost; asking for a snapshot",
                ga_cmd_name(msg->cmd), (long long) seq, (long long) expected);
        self->registry_gaps++;
        self->want_snapshot = true;
        self->resync_at = 0;
    }
}

// Asks for the snapshot a gap calls for, again every heartbeat until it comes.
static void
s_resync(gw_bridge_t *self, int64_t now)
{
    if (self->want_snapshot && self->connected && now >= self->resync_at) {
        self->resync_at = now + self->hb_ms;
        s_hello(self);
    }
}

static void
s_handle(gw_bridge_t *self, const ga_proto_msg_t *msg)
{
    switch (msg->cmd) {
    case GA_CMD_RESULT:
    case GA_CMD_GROUP_REPLY: // a group operation's answer has a RESULT's body
        s_on_result(self, &msg->value);
        break;
    case GA_CMD_GROUP_EVENT:
        gw_relay_on_event(self->relay, &msg->value);
        break;
    case GA_CMD_SNAPSHOT:
    case GA_CMD_UPDATE: {
        bool snapshot = msg->cmd == GA_CMD_SNAPSHOT;
        s_check_seq(self, msg);
        size_t n = gw_pipeline_apply(self->pipeline, &msg->value, snapshot);
        if (snapshot) {
            // A SNAPSHOT comes when the broker sees us anew: it has just started (and knows
            // our relay members only from its state file, if at all), or it took us for dead
            // and dropped them, or we asked after a gap. Name them all (it answers each with an
            // event, restored or removed); a restarted broker numbers messages anew.
            if (ga_map_get_int(&msg->value, "warming_ms", 0) > 0) {
                gw_relay_renumber(self->relay);
            }
            gw_relay_each(self->relay, s_restore_member, self);
        }
        s_stream_connect(self, ga_map_get_int(&msg->value, "stream_port", 0));
        if (snapshot) {
            const ga_value_t *batch = ga_map_get(&msg->value, "batch");
            ga_proto_batch_close(&self->batch);
            self->broker_batch = batch && batch->type == GA_BOOL && batch->u.b;
        }
        int64_t hb = ga_map_get_int(&msg->value, "heartbeat_ms", 0);
        if (hb > 0 && hb != self->hb_ms) {
            self->hb_ms = hb;
            self->next_hb = 0; // heartbeat now, then on the broker's schedule
        }
        GA_INFO("registry %s: %zu config(s) applied, %zu known", snapshot ? "snapshot" : "update",
                n, gw_pipeline_function_count(self->pipeline));
        self->have_snapshot = self->have_snapshot || snapshot;
        if (self->on_registry) {
            self->on_registry(self->arg, snapshot);
        }
        break;
    }
    case GA_CMD_HEARTBEAT:
        s_check_seq(self, msg);
        break;
    case GA_CMD_GATEWAY_ADMIN: {
        // An operator's rate-limit operation, forwarded by the broker: answered with this
        // gateway's name, under the broker's id.
        ga_value_t reply = gw_pipeline_admin(self->pipeline, &msg->value, self->arena);
        ga_map_put(&reply, self->arena, "id", ga_int(ga_map_get_int(&msg->value, "id", 0)));
        ga_map_put(&reply, self->arena, "gateway", ga_str(self->cfg->name));
        s_send(self, GA_CMD_GATEWAY_ADMIN_REPLY, &reply);
        break;
    }
    default:
        GA_WARN("unexpected %s from the broker dropped", ga_cmd_name(msg->cmd));
        break;
    }
}

// Receives one message from the SUB without blocking: topic, head (tag, command and body) and,
// for a batch of stream messages, a data frame (docs/protocol.md, "Streams on the proxy"). The
// body goes to self->msg.value, the data frame to *items (*batch set), both decoded in the
// arena.
// GA_EAGAIN when nothing waits; GA_EPROTO when the message is malformed (consumed whole).
static ga_err_t
s_sub_recv(gw_bridge_t *self, ga_value_t *items, bool *batch)
{
    ga_proto_msg_t *msg = &self->msg;
    msg->id_len = 0;
    msg->cmd = 0;
    msg->value = ga_nil();
    *batch = false;
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, self->sub, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&part);
        return e == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    ga_err_t rc = GA_OK;
    int frame = 0;
    for (;;) {
        const uint8_t *data = zmq_msg_data(&part);
        size_t size = zmq_msg_size(&part);
        if (rc != GA_OK) {
            // malformed: the rest is only drained
        } else if (frame == 0) {
            if (size == 0 || size > GA_PROTO_MAX_ID) {
                rc = GA_EPROTO;
            } else {
                memcpy(msg->id, data, size);
                msg->id_len = size;
            }
        } else if (frame == 1) {
            // The head: tag, command and body in one frame (docs/protocol.md, "Frames").
            if (size <= GA_PROTO_HEAD_LEN || memcmp(data, GA_PROTO_TAG, GA_PROTO_TAG_LEN) != 0 ||
                ga_cmd_name(data[GA_PROTO_TAG_LEN]) == NULL ||
                size - GA_PROTO_HEAD_LEN > GA_PROTO_MAX_BODY ||
                ga_wire_decode(data + GA_PROTO_HEAD_LEN, size - GA_PROTO_HEAD_LEN, self->arena,
                               &msg->value) != GA_OK ||
                msg->value.type != GA_MAP) {
                rc = GA_EPROTO;
            } else {
                msg->cmd = data[GA_PROTO_TAG_LEN];
            }
        } else if (frame == 2 && msg->cmd == GA_CMD_STREAM) {
            if (size > GA_PROTO_MAX_BODY || ga_wire_decode(data, size, self->arena, items) != GA_OK ||
                items->type != GA_ARRAY) {
                rc = GA_EPROTO;
            }
            *batch = true;
        } else {
            rc = GA_EPROTO; // too many frames
        }
        bool more = zmq_msg_more(&part);
        if (!more) {
            break;
        }
        frame++;
        if (zmq_msg_recv(&part, self->sub, 0) < 0) {
            zmq_msg_close(&part);
            return GA_EIO;
        }
    }
    zmq_msg_close(&part);
    return rc == GA_OK && frame < 1 ? GA_EPROTO : rc; // too few frames (topic, head)
}

void
gw_bridge_process_streams(gw_bridge_t *self)
{
    // Nothing is ever sent on the SUB, so only our own receives consume its fd's edge: drain
    // it completely whenever the fd signals.
    for (;;) {
        ga_value_t items;
        bool batch = false;
        ga_err_t rc = s_sub_recv(self, &items, &batch);
        if (rc == GA_OK && self->msg.cmd == GA_CMD_RELAY && !batch) {
            gw_relay_on_message(self->relay, self->msg.id, self->msg.id_len, &self->msg.value);
        } else if (rc == GA_OK) {
            s_on_stream_msg(self, &self->msg, batch ? &items : NULL);
        } else if (rc != GA_EPROTO) {
            ga_arena_reset(self->arena);
            return;
        }
        ga_arena_reset(self->arena);
    }
}

static void s_process_once(gw_bridge_t *self);

void
gw_bridge_process(gw_bridge_t *self)
{
    // The CALLs this loop turn batched go out first; answers handled below may batch more
    // (hook chains), and sending them can consume the fd's edge: receive again after each
    // close, until a pass sends nothing.
    do {
        ga_proto_batch_close(&self->batch);
        s_process_once(self);
    } while (self->batch.open);
}

static void
s_process_once(gw_bridge_t *self)
{
    // Receive until EAGAIN: a receive that finds nothing also re-arms the edge-triggered fd,
    // and costs no more than the ZMQ_EVENTS check it replaces (which polls and calls getpid).
    for (;;) {
        ga_err_t rc = ga_proto_recv(self->dealer, false, &self->msg, self->arena);
        if (rc == GA_EAGAIN) {
            ga_arena_reset(self->arena);
            return;
        }
        if (rc == GA_OK && self->msg.cmd == GA_CMD_DISCONNECT) {
            // Not a broker's gateway endpoint (typically its worker endpoint): say why, and
            // stay unconnected.
            const char *why = ga_map_get_str(&self->msg.value, "reason");
            if (why && strcmp(why, GA_PROTO_BROKER_STOPPING) == 0) {
                // The broker drained and stops: taken as silent now, not in 3 heartbeats
                // (the tick answers what is still in flight and says HELLO until it is back).
                // Never a refusal, even when its heartbeats were already missed meanwhile.
                GA_NOTICE("broker %s is stopping", self->cfg->broker);
                if (self->connected) {
                    self->last_heard = ga_clock_ms() - self->hb_ms * GA_PROTO_LIVENESS - 1;
                }
                ga_arena_reset(self->arena);
                continue;
            }
            self->refused = true;
            if (ga_log_every_due(&self->refused_log, why, ga_clock_ms(), GW_LOG_REPEAT_MS)) {
                GA_ERR("broker %s refused this gateway: %s", self->cfg->broker,
                       why ? why : "(no reason)");
            }
            ga_arena_reset(self->arena);
            continue;
        }
        if (rc == GA_OK && self->msg.cmd == GA_CMD_RESULT &&
            ga_proto_payload_merge(&self->msg, self->arena) != GA_OK) {
            // The result (the payload frame, decoded here once) is not well-formed: the
            // client is answered with an error rather than left to time out.
            int64_t id = ga_map_get_int(&self->msg.value, "id", 0);
            GA_WARN("RESULT for call %lld with a malformed result: answered with an error",
                    (long long) id);
            ga_arena_t *a = self->arena;
            self->msg.value = ga_map(a, 5);
            ga_map_put(&self->msg.value, a, "id", ga_int(id));
            ga_map_put(&self->msg.value, a, "ok", ga_bool(false));
            ga_map_put(&self->msg.value, a, "error", ga_str("Internal Server Error"));
            ga_map_put(&self->msg.value, a, "code", ga_int(GA_EINTERNAL));
            ga_map_put(&self->msg.value, a, "can_retry", ga_bool(false));
        }
        if (rc == GA_OK) {
            if (!self->connected) {
                GA_NOTICE("broker %s reachable", self->cfg->broker);
                self->unheard_since = 0;
                self->refused = false;
                ga_log_every_reset(&self->unheard_log);
                ga_log_every_reset(&self->refused_log);
            }
            self->connected = true;
            self->last_heard = ga_clock_ms();
            s_handle(self, &self->msg);
        } else if (rc == GA_EPROTO && self->msg.peer_version) {
            if (ga_log_every_due(&self->version_log, NULL, ga_clock_ms(), GW_LOG_REPEAT_MS)) {
                GA_ERR("broker %s speaks protocol version %d, this gateway speaks %d: upgrade "
                       "it (its messages are dropped)",
                       self->cfg->broker, self->msg.peer_version, GA_PROTO_VERSION);
            }
        } else if (rc == GA_EPROTO) {
            GA_WARN("malformed message from the broker dropped");
        } else if (rc != GA_EAGAIN) {
            ga_arena_reset(self->arena);
            return;
        }
        ga_arena_reset(self->arena);
        s_resync(self, self->last_heard);
    }
}

void
gw_bridge_tick(gw_bridge_t *self)
{
    int64_t now = ga_clock_ms();
    ga_inflight_rec_t *rec;
    while ((rec = ga_inflight_expire(self->calls, now)) != NULL) {
        pending_t *p = (pending_t *) rec;
        if (p->step == STEP_CHECK) {
            // A permission callback that does not answer in time denies.
            s_answer_error(self, p, GA_EDENIED, "Permission denied", false);
        } else if (p->step == STEP_BEFORE || p->step == STEP_AFTER) {
            // A hook that does not answer in time: refuses the call, or leaves the result.
            ga_value_t late = s_failure_body(self, GA_ETIMEDOUT, "Request timed out");
            if (p->step == STEP_BEFORE) {
                s_before_done(self, p, &late);
            } else {
                s_after_done(self, p, &late);
            }
        } else {
            s_answer_error(self, p, GA_ETIMEDOUT, "Request timed out", true);
        }
        ga_arena_reset(self->arena);
    }
    if (self->connected && now - self->last_heard > self->hb_ms * GA_PROTO_LIVENESS) {
        GA_WARN("broker silent for %d heartbeats; failing %zu call(s) in flight",
                GA_PROTO_LIVENESS, ga_inflight_size(self->calls));
        self->connected = false;
        self->unheard_since = now;
        // The broker may have lost them all: answer each now rather than at its deadline.
        while ((rec = ga_inflight_first(self->calls)) != NULL) {
            ga_inflight_remove(self->calls, rec);
            pending_t *p = (pending_t *) rec;
            if (p->step == STEP_AFTER) {
                // The result is here: it stands without its hook.
                ga_value_t lost = s_failure_body(self, GA_EUNAVAIL, "Service unavailable");
                s_after_done(self, p, &lost);
            } else {
                if (p->step == STEP_BEFORE) {
                    s_hook_end(p, true, false, "unavailable", true);
                }
                s_answer_error(self, p, GA_EUNAVAIL, "Service unavailable", true);
            }
            ga_arena_reset(self->arena);
        }
    }
    if (!self->connected && !self->refused && self->unheard_since &&
        now - self->unheard_since >= self->hb_ms * GA_PROTO_LIVENESS &&
        ga_log_every_due(&self->unheard_log, NULL, now, GW_LOG_REPEAT_MS)) {
        GA_WARN("no answer from the broker at %s for %lld ms: is it running, and is this "
                "gateway's broker option the broker's gateway endpoint (gateway_endpoint, default "
                "port 5571)?",
                self->cfg->broker, (long long) (now - self->unheard_since));
    }
    if (now >= self->next_hb) {
        // While the broker is unheard, say HELLO often: connecting is quick after a restart.
        self->next_hb = now + (self->connected || self->hb_ms < 100 ? self->hb_ms : 100);
        if (self->connected) {
            ga_value_t empty = ga_map(self->arena, 0);
            s_send(self, GA_CMD_HEARTBEAT, &empty);
            ga_arena_reset(self->arena);
        } else {
            s_hello(self); // until the broker answers with a snapshot
        }
    }
    s_resync(self, now);
    gw_bridge_process(self);
}

int64_t
gw_bridge_next_tick_ms(const gw_bridge_t *self)
{
    int64_t now = ga_clock_ms();
    int64_t next = self->next_hb;
    int64_t due = ga_inflight_next_deadline(self->calls);
    if (due < next) {
        next = due;
    }
    return next > now ? next - now : 0;
}

bool
gw_bridge_has_snapshot(const gw_bridge_t *self)
{
    return self->have_snapshot;
}

bool
gw_bridge_is_connected(const gw_bridge_t *self)
{
    return self->connected;
}

size_t
gw_bridge_inflight(const gw_bridge_t *self)
{
    return ga_inflight_size(self->calls);
}
