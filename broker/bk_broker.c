// SPDX-License-Identifier: MIT
// The broker's loop: poll both ROUTERs and a wake-up pipe, dispatch each message, answer every
// call exactly once (worker reply, worker lost, timeout, or refusal), heartbeat all peers.
// Must never block: every send is non-blocking and a peer that cannot take a message is
// counted, not waited for.
#include "bk_broker.h"

#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_idmap.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_timeq.h"
#include "ga_wire.h"
#include "ga_zpoll.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

#define BK_EXPIRED_BATCH 64 // workers reaped per liveness check

// A call in flight: which gateway asked, under which id, and which worker has it.
typedef struct bk_call_t bk_call_t;
#define BK_REQUEST_ID_MAX 128 // bytes of a client request id kept for stop-stream

struct bk_call_t {
    uint64_t id;         // broker's id (sent to the worker)
    bool stream;         // a stream call: ends with its last chunk, not a reply
    char request_id[BK_REQUEST_ID_MAX]; // the client's request id (truncated)
    uint64_t gw_call_id; // the gateway's id for the same call
    uint8_t gw_id[255];  // gateway routing id
    size_t gw_id_len;    // bytes in gw_id
    bk_worker_t *worker; // worker handling it (borrowed; calls are failed before it goes)
    bk_call_t *next;     // free-list link
};

// A connected gateway.
typedef struct {
    uint8_t id[255]; // routing id
    size_t id_len;   // bytes in id
    int64_t expiry;  // monotonic ms
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
    atomic_bool stop;           // set by bk_broker_stop
    bk_registry_t *registry;    // functions and workers
    zhash_t *gws;               // hex routing id -> bk_gateway_t (owned)
    ga_idmap_t *calls;          // broker id -> bk_call_t
    ga_timeq_t *deadlines;      // call deadlines (lazy: stale ids skipped)
    bk_call_t *free_calls;      // recycled call records
    uint64_t next_id;           // last call id handed out
    ga_arena_t *arena;          // per-message arena, reset after each message
    ga_proto_msg_t msg;         // receive buffers, reused
    ga_buf_t out;               // send buffer, reused
    int64_t next_heartbeat;     // monotonic ms
    bk_stats_t stats;           // counters
};

static void s_on_admin(bk_broker_t *self, const ga_proto_msg_t *msg);
static void s_on_stop(bk_broker_t *self, const ga_proto_msg_t *msg);
static void s_cancel_worker(bk_broker_t *self, const bk_call_t *call);
static void s_note_failure(bk_broker_t *self, bk_worker_t *w, int64_t now);

bk_broker_t *
bk_broker_new(const bk_config_t *cfg)
{
    bk_broker_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->wake[0] = self->wake[1] = -1;
    self->registry = bk_registry_new();
    self->gws = zhash_new();
    ga_assert(self->gws);
    self->calls = ga_idmap_new();
    self->deadlines = ga_timeq_new();
    self->arena = ga_arena_new(16384);
    ga_proto_msg_init(&self->msg);
    ga_buf_init(&self->out);
    return self;
}

static void
s_free_call(uint64_t id, void *value, void *arg)
{
    (void) id;
    (void) arg;
    ga_free(value);
}

void
bk_broker_destroy(bk_broker_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    bk_broker_t *self = *self_p;
    ga_idmap_each(self->calls, s_free_call, NULL);
    ga_idmap_destroy(&self->calls);
    while (self->free_calls) {
        bk_call_t *c = self->free_calls;
        self->free_calls = c->next;
        ga_free(c);
    }
    ga_timeq_destroy(&self->deadlines);
    zhash_destroy(&self->gws);
    bk_registry_destroy(&self->registry);
    ga_arena_destroy(&self->arena);
    ga_proto_msg_fini(&self->msg);
    ga_buf_fini(&self->out);
    if (self->workers) {
        zmq_close(self->workers);
    }
    if (self->gateways) {
        zmq_close(self->gateways);
    }
    if (self->stream_in) {
        zmq_close(self->stream_in);
    }
    if (self->stream_out) {
        zmq_close(self->stream_out);
    }
    if (self->zctx) {
        zmq_ctx_term(self->zctx);
    }
    for (int i = 0; i < 2; i++) {
        if (self->wake[i] >= 0) {
            close(self->wake[i]);
        }
    }
    ga_free(self);
    *self_p = NULL;
}

static ga_err_t
s_bind_socket(bk_broker_t *self, int type, const char *endpoint, void **sock, char *bound,
              size_t len)
{
    *sock = zmq_socket(self->zctx, type);
    if (*sock == NULL) {
        return GA_EIO;
    }
    int one = 1;
    int zero = 0;
    int hwm = (int) self->cfg->hwm;
    // ROUTER_MANDATORY turns silent drops (unknown or full peer) into errors we count;
    // XPUB_NODROP does the same for a gateway that cannot take more chunks (it sees a gap).
    if ((type == ZMQ_ROUTER &&
         zmq_setsockopt(*sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0) ||
        (type == ZMQ_XPUB && zmq_setsockopt(*sock, ZMQ_XPUB_NODROP, &one, sizeof one) != 0) ||
        zmq_setsockopt(*sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(*sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(*sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0) {
        return GA_EIO;
    }
    if (zmq_bind(*sock, endpoint) != 0) {
        GA_ERR("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    size_t n = len;
    if (zmq_getsockopt(*sock, ZMQ_LAST_ENDPOINT, bound, &n) != 0) {
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
bk_broker_bind(bk_broker_t *self)
{
    if (pipe(self->wake) != 0 || fcntl(self->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(self->wake[1], F_SETFL, O_NONBLOCK) != 0) {
        return GA_EIO;
    }
    self->zctx = zmq_ctx_new();
    if (self->zctx == NULL) {
        return GA_EIO;
    }
    ga_err_t rc = s_bind_socket(self, ZMQ_ROUTER, self->cfg->worker_endpoint, &self->workers,
                                self->worker_ep, sizeof self->worker_ep);
    if (rc == GA_OK) {
        rc = s_bind_socket(self, ZMQ_ROUTER, self->cfg->gateway_endpoint, &self->gateways,
                           self->gateway_ep, sizeof self->gateway_ep);
    }
    if (rc == GA_OK) {
        rc = s_bind_socket(self, ZMQ_XSUB, self->cfg->stream_in_endpoint, &self->stream_in,
                           self->stream_in_ep, sizeof self->stream_in_ep);
    }
    if (rc == GA_OK) {
        rc = s_bind_socket(self, ZMQ_XPUB, self->cfg->stream_out_endpoint, &self->stream_out,
                           self->stream_out_ep, sizeof self->stream_out_ep);
    }
    // The proxy takes every chunk from every worker; the XPUB side filters per gateway.
    if (rc == GA_OK && zmq_send(self->stream_in, "\x01", 1, 0) != 1) {
        rc = GA_EIO;
    }
    return rc;
}

const char *
bk_broker_worker_endpoint(const bk_broker_t *self)
{
    return self->worker_ep;
}

const char *
bk_broker_gateway_endpoint(const bk_broker_t *self)
{
    return self->gateway_ep;
}

const char *
bk_broker_stream_in_endpoint(const bk_broker_t *self)
{
    return self->stream_in_ep;
}

const char *
bk_broker_stream_out_endpoint(const bk_broker_t *self)
{
    return self->stream_out_ep;
}

// The port of a bound endpoint ("tcp://0.0.0.0:5573" -> 5573), told to peers so they can
// reach the stream proxy at the host they already use for the broker.
static int64_t
s_port(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    return colon ? strtoll(colon + 1, NULL, 10) : 0;
}

void
bk_broker_stop(bk_broker_t *self)
{
    atomic_store(&self->stop, true);
    char c = 1;
    GA_IGNORE(write(self->wake[1], &c, 1) < 0); // a full pipe already means "wake up"
}

bk_stats_t
bk_broker_stats(const bk_broker_t *self)
{
    return self->stats;
}

static int64_t
s_liveness_ms(const bk_broker_t *self)
{
    return self->cfg->heartbeat_ms * GA_PROTO_LIVENESS;
}

// ---------------------------------------------------------------------------------------------
// Sending

static void
s_send(bk_broker_t *self, void *sock, const uint8_t *id, size_t id_len, int cmd,
       const ga_value_t *body)
{
    ga_err_t rc = ga_proto_send_value(sock, id, id_len, cmd, body, &self->out);
    if (rc != GA_OK) {
        self->stats.undeliverable++;
        GA_DEBUG("undeliverable %s: %s", ga_cmd_name(cmd), ga_strerror(rc));
    }
}

// Answers a gateway's call with an error.
static void
s_send_error(bk_broker_t *self, const uint8_t *gw_id, size_t gw_id_len, uint64_t gw_call_id,
             ga_err_t code, const char *message, bool can_retry)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 5);
    ga_map_put(&m, a, "id", ga_int((int64_t) gw_call_id));
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(message));
    ga_map_put(&m, a, "code", ga_int(code));
    ga_map_put(&m, a, "can_retry", ga_bool(can_retry));
    s_send(self, self->gateways, gw_id, gw_id_len, GA_CMD_RESULT, &m);
    self->stats.results++;
}

static void
s_release_call(bk_broker_t *self, bk_call_t *call)
{
    if (call->worker) {
        call->worker->inflight--;
    }
    call->next = self->free_calls;
    self->free_calls = call;
}

// ---------------------------------------------------------------------------------------------
// Gateways

static bk_gateway_t *
s_gateway_touch(bk_broker_t *self, const uint8_t *id, size_t id_len, bool *is_new)
{
    char key[2 * 255 + 1];
    for (size_t i = 0; i < id_len; i++) {
        snprintf(key + 2 * i, 3, "%02x", id[i]);
    }
    key[2 * id_len] = '\0';
    bk_gateway_t *gw = zhash_lookup(self->gws, key);
    *is_new = gw == NULL;
    if (gw == NULL) {
        gw = ga_calloc(1, sizeof *gw);
        memcpy(gw->id, id, id_len);
        gw->id_len = id_len;
        ga_assert(zhash_insert(self->gws, key, gw) == 0);
        zhash_freefn(self->gws, key, ga_free);
    }
    gw->expiry = ga_clock_ms() + s_liveness_ms(self);
    return gw;
}

static void
s_send_snapshot(bk_broker_t *self, const uint8_t *id, size_t id_len)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 2);
    ga_map_put(&m, a, "functions", bk_registry_snapshot(self->registry, a));
    ga_map_put(&m, a, "heartbeat_ms", ga_int(self->cfg->heartbeat_ms));
    ga_map_put(&m, a, "stream_port", ga_int(s_port(self->stream_out_ep)));
    s_send(self, self->gateways, id, id_len, GA_CMD_SNAPSHOT, &m);
}

static void
s_broadcast_update(bk_broker_t *self, const ga_value_t *changed)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 1);
    ga_map_put(&m, a, "functions", *changed);
    ga_buf_reset(&self->out);
    ga_wire_encode(&self->out, &m); // encoded once, sent to every gateway
    for (bk_gateway_t *gw = zhash_first(self->gws); gw; gw = zhash_next(self->gws)) {
        if (ga_proto_send(self->gateways, gw->id, gw->id_len, GA_CMD_UPDATE, &self->out) !=
            GA_OK) {
            self->stats.undeliverable++;
        }
    }
}

static void
s_on_call(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    const ga_value_t *body = &msg->value;
    self->stats.calls++;
    int64_t gw_call_id = ga_map_get_int(body, "id", 0);
    const char *service = ga_map_get_str(body, "service");
    const char *request_type = ga_map_get_str(body, "request_type");
    const char *version = ga_map_get_str(body, "version");
    if (gw_call_id <= 0 || service == NULL || request_type == NULL) {
        self->stats.malformed++;
        GA_WARN("CALL without id, service or request_type dropped");
        return;
    }
    const ga_funcfg_t *cfg = bk_registry_lookup(self->registry, service, request_type, version);
    if (cfg == NULL) {
        s_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_ENOTFOUND,
                     "Unknown function", false);
        return;
    }
    if (cfg->disabled) {
        s_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_ENOTFOUND,
                     "Function disabled", false);
        return;
    }
    bk_worker_t *w = bk_registry_pick_at(self->registry, cfg, ga_clock_ms());
    if (w == NULL) {
        s_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_EUNAVAIL,
                     "Service unavailable", true);
        return;
    }
    bk_call_t *call = self->free_calls;
    if (call) {
        self->free_calls = call->next;
    } else {
        call = ga_malloc(sizeof *call);
    }
    call->id = ++self->next_id;
    call->gw_call_id = (uint64_t) gw_call_id;
    memcpy(call->gw_id, msg->id, msg->id_len);
    call->gw_id_len = msg->id_len;
    call->worker = w;
    call->next = NULL;
    call->stream = cfg->response_type == GA_RESP_STREAM;
    const char *request_id = ga_map_get_str(body, "request_id");
    snprintf(call->request_id, sizeof call->request_id, "%s", request_id ? request_id : "");
    // Forward the body as it came, with the broker's id in place of the gateway's.
    ga_value_t *idv = (ga_value_t *) ga_map_get(body, "id");
    *idv = ga_int((int64_t) call->id);
    if (cfg->response_type == GA_RESP_NONE) {
        // Fire and forget: nobody waits, so nothing is tracked.
        if (ga_proto_send_value(self->workers, w->id, w->id_len, GA_CMD_REQUEST, body,
                                &self->out) != GA_OK) {
            self->stats.undeliverable++;
        }
        call->worker = NULL;
        s_release_call(self, call);
        return;
    }
    ga_err_t rc = ga_proto_send_value(self->workers, w->id, w->id_len, GA_CMD_REQUEST, body,
                                      &self->out);
    if (rc != GA_OK) {
        self->stats.undeliverable++;
        call->worker = NULL;
        s_release_call(self, call);
        s_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_EUNAVAIL,
                     "Service unavailable", true);
        return;
    }
    w->inflight++;
    ga_idmap_put(self->calls, call->id, call);
    if (cfg->timeout_ms != GA_FUNCFG_TIMEOUT_INFINITY) {
        ga_timeq_push(self->deadlines, ga_clock_ms() + cfg->timeout_ms, call->id);
    }
}

static void
s_on_gateway(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    if (msg->cmd == GA_CMD_ADMIN) {
        s_on_admin(self, msg); // operators are not gateways: no snapshot, no liveness
        return;
    }
    bool is_new;
    s_gateway_touch(self, msg->id, msg->id_len, &is_new);
    if (is_new || msg->cmd == GA_CMD_HELLO) {
        GA_INFO("gateway connected (%s)", is_new ? "new" : "hello again");
        s_send_snapshot(self, msg->id, msg->id_len);
    }
    switch (msg->cmd) {
    case GA_CMD_CALL:
        s_on_call(self, msg);
        break;
    case GA_CMD_STOP:
        s_on_stop(self, msg);
        break;
    case GA_CMD_HELLO:
    case GA_CMD_HEARTBEAT:
        break;
    default:
        self->stats.malformed++;
        GA_WARN("unexpected %s from a gateway dropped", ga_cmd_name(msg->cmd));
        break;
    }
}

// ---------------------------------------------------------------------------------------------
// Workers

// Answers every call the worker holds with `message`, and forgets the worker.
typedef struct {
    bk_broker_t *self;   // broker
    bk_worker_t *worker; // worker going away
    uint64_t *ids;       // ids collected
    size_t n;            // ids collected so far
} lost_t;

static void
s_collect_lost(uint64_t id, void *value, void *arg)
{
    lost_t *lost = arg;
    bk_call_t *call = value;
    if (call->worker == lost->worker) {
        lost->ids[lost->n++] = id;
    }
}

static void
s_drop_worker(bk_broker_t *self, bk_worker_t *w, const char *why)
{
    GA_NOTICE("worker %s (%s) removed: %s; %zu call(s) in flight failed", w->node ? w->node : "?",
              w->service ? w->service : "?", why, w->inflight);
    if (w->inflight) {
        lost_t lost = {.self = self, .worker = w, .ids = ga_malloc(sizeof(uint64_t) * w->inflight)};
        ga_idmap_each(self->calls, s_collect_lost, &lost);
        for (size_t i = 0; i < lost.n; i++) {
            bk_call_t *call = ga_idmap_take(self->calls, lost.ids[i]);
            s_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_ELOST,
                         "Worker lost", true);
            s_release_call(self, call);
        }
        ga_free(lost.ids);
    }
    bk_registry_remove(self->registry, w);
}

static void
s_on_register(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    ga_arena_t *a = self->arena;
    const char *token = self->cfg->push_token;
    ga_value_t reply = ga_map(a, 5);
    if (token && token[0]) {
        const char *given = ga_map_get_str(&msg->value, "token");
        size_t tlen = strlen(token);
        // Constant-time comparison: the time taken does not depend on where they differ.
        unsigned diff = given == NULL || strlen(given) != tlen;
        for (size_t i = 0; given && i < tlen && given[i]; i++) {
            diff |= (unsigned) (token[i] ^ given[i]);
        }
        if (diff) {
            GA_WARN("REGISTER refused: invalid push token");
            ga_map_put(&reply, a, "ok", ga_bool(false));
            ga_map_put(&reply, a, "error", ga_str("invalid push token"));
            s_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
            return;
        }
    }
    ga_value_t failed, changed;
    bk_worker_t *w = NULL;
    char err[256];
    ga_err_t rc = bk_registry_register(self->registry, msg->id, msg->id_len, &msg->value,
                                       ga_clock_ms() + s_liveness_ms(self), a, &failed, &changed,
                                       &w, err, sizeof err);
    if (rc != GA_OK) {
        GA_WARN("REGISTER refused: %s", err);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str(err));
        s_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
        return;
    }
    GA_INFO("worker %s registered for %s: %u function(s) changed, %u refused", w->node,
            w->service, changed.len, failed.len);
    if (changed.len) {
        s_broadcast_update(self, &changed);
    }
    ga_map_put(&reply, a, "ok", ga_bool(true));
    ga_map_put(&reply, a, "failed", failed);
    ga_map_put(&reply, a, "heartbeat_ms", ga_int(self->cfg->heartbeat_ms));
    ga_map_put(&reply, a, "stream_port", ga_int(s_port(self->stream_in_ep)));
    s_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
}

static void
s_on_reply(bk_broker_t *self, bk_worker_t *w, const ga_proto_msg_t *msg)
{
    int64_t id = ga_map_get_int(&msg->value, "id", 0);
    bk_call_t *call = id > 0 ? ga_idmap_get(self->calls, (uint64_t) id) : NULL;
    if (call == NULL || call->worker != w) {
        self->stats.late_replies++;
        GA_DEBUG("reply for unknown or expired call %lld dropped", (long long) id);
        return;
    }
    ga_idmap_take(self->calls, call->id);
    w->failures = 0; // it answered: whatever it said, it is alive and responsive
    ga_value_t *idv = (ga_value_t *) ga_map_get(&msg->value, "id");
    *idv = ga_int((int64_t) call->gw_call_id);
    s_send(self, self->gateways, call->gw_id, call->gw_id_len, GA_CMD_RESULT, &msg->value);
    self->stats.results++;
    s_release_call(self, call);
}

static void
s_on_worker(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    if (msg->cmd == GA_CMD_REGISTER) {
        s_on_register(self, msg);
        return;
    }
    bk_worker_t *w = bk_registry_worker(self->registry, msg->id, msg->id_len);
    if (w == NULL) {
        // Typically after a broker restart: the worker must push its table again.
        if (msg->cmd != GA_CMD_DISCONNECT) {
            ga_arena_t *a = self->arena;
            ga_value_t m = ga_map(a, 1);
            ga_map_put(&m, a, "reason", ga_str("unknown worker: register again"));
            s_send(self, self->workers, msg->id, msg->id_len, GA_CMD_DISCONNECT, &m);
        }
        return;
    }
    w->expiry = ga_clock_ms() + s_liveness_ms(self);
    switch (msg->cmd) {
    case GA_CMD_HEARTBEAT:
        break;
    case GA_CMD_REPLY:
        s_on_reply(self, w, msg);
        break;
    case GA_CMD_DISCONNECT:
        s_drop_worker(self, w, "disconnected");
        break;
    default:
        self->stats.malformed++;
        GA_WARN("unexpected %s from worker %s dropped", ga_cmd_name(msg->cmd), w->node);
        break;
    }
}

// ---------------------------------------------------------------------------------------------
// Streams, stops, circuit breaker, admin

// Tells the worker holding `call` to stop it (its stream handler sees the cancel).
static void
s_cancel_worker(bk_broker_t *self, const bk_call_t *call)
{
    if (call->worker == NULL) {
        return;
    }
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 1);
    ga_map_put(&m, a, "id", ga_int((int64_t) call->id));
    s_send(self, self->workers, call->worker->id, call->worker->id_len, GA_CMD_CANCEL, &m);
}

static void
s_note_failure(bk_broker_t *self, bk_worker_t *w, int64_t now)
{
    if (w == NULL) {
        return;
    }
    w->failures++;
    if (self->cfg->breaker_threshold > 0 && w->failures >= self->cfg->breaker_threshold) {
        w->breaker_until = now + self->cfg->breaker_cooldown_ms;
        self->stats.breaker_opened++;
        GA_WARN("worker %s: %d failures in a row, skipped for %lld ms (circuit open)", w->node,
                w->failures, (long long) self->cfg->breaker_cooldown_ms);
    }
}

// Forwards one stream message from the XSUB side to the XPUB side, frames untouched, and
// forgets the call when the message ends the stream.
static void
s_on_stream(bk_broker_t *self)
{
    zmq_msg_t parts[4];
    int n = 0;
    bool more = true;
    bool ok = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, self->stream_in, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&part);
            ok = false;
            break;
        }
        more = zmq_msg_more(&part);
        if (n < 4) {
            parts[n++] = part;
        } else {
            zmq_msg_close(&part);
            ok = false; // too many frames: drained and dropped
        }
    }
    if (n == 0) {
        return;
    }
    ok = ok && n == 4 && zmq_msg_size(&parts[1]) == GA_PROTO_TAG_LEN &&
         memcmp(zmq_msg_data(&parts[1]), GA_PROTO_TAG, GA_PROTO_TAG_LEN) == 0 &&
         zmq_msg_size(&parts[2]) == 1 && *(uint8_t *) zmq_msg_data(&parts[2]) == GA_CMD_STREAM;
    ga_value_t body;
    if (ok && ga_wire_decode(zmq_msg_data(&parts[3]), zmq_msg_size(&parts[3]), self->arena,
                             &body) == GA_OK) {
        const char *kind = ga_map_get_str(&body, "kind");
        int64_t id = ga_map_get_int(&body, "call", 0);
        bool ends = kind && strcmp(kind, "chunk") != 0;
        bk_call_t *call = ends && id > 0 ? ga_idmap_take(self->calls, (uint64_t) id) : NULL;
        if (call) {
            if (call->worker) {
                call->worker->failures = 0;
            }
            s_release_call(self, call);
        }
        for (int i = 0; i < 4; i++) {
            int flags = (i < 3 ? ZMQ_SNDMORE : 0) | (i == 0 ? ZMQ_DONTWAIT : 0);
            if (zmq_msg_send(&parts[i], self->stream_out, flags) < 0) {
                // Only the first frame can fail (the rest of a message always goes):
                // this gateway's queue is full, and the gap tells it.
                self->stats.chunks_dropped++;
                break;
            }
        }
        self->stats.chunks++;
    } else {
        self->stats.malformed++;
    }
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&parts[i]); // harmless on parts already sent
    }
    ga_arena_reset(self->arena);
}

// Gateways' subscriptions arrive on the XPUB side; there is nothing to forward upstream (the
// XSUB side subscribes to everything), so they are read and dropped.
static void
s_drain_subscriptions(bk_broker_t *self)
{
    char buf[256];
    for (int i = 0; i < 256 && zmq_recv(self->stream_out, buf, sizeof buf, ZMQ_DONTWAIT) >= 0;
         i++) {
    }
}

// Finds the call a gateway knows as `gw_call_id` (O(calls): stops are rare).
typedef struct {
    const uint8_t *gw_id; // gateway routing id
    size_t gw_id_len;     // its length
    uint64_t gw_call_id;  // the gateway's id; 0 to match by request id
    const char *request_id; // client request id, or NULL
    uint64_t *found;      // matching broker ids
    size_t n;             // matches so far
    size_t max;           // room in found
} match_t;

static void
s_match(uint64_t id, void *value, void *arg)
{
    match_t *m = arg;
    bk_call_t *call = value;
    bool hit = m->request_id
                   ? call->stream && strcmp(call->request_id, m->request_id) == 0
                   : call->gw_call_id == m->gw_call_id && call->gw_id_len == m->gw_id_len &&
                         memcmp(call->gw_id, m->gw_id, m->gw_id_len) == 0;
    if (hit && m->n < m->max) {
        m->found[m->n++] = id;
    }
}

// STOP from a gateway: its client is gone, so cancel without answering.
static void
s_on_stop(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    int64_t gw_call_id = ga_map_get_int(&msg->value, "id", 0);
    uint64_t found = 0;
    match_t m = {.gw_id = msg->id,
                 .gw_id_len = msg->id_len,
                 .gw_call_id = (uint64_t) gw_call_id,
                 .found = &found,
                 .max = 1};
    ga_idmap_each(self->calls, s_match, &m);
    bk_call_t *call = m.n ? ga_idmap_take(self->calls, found) : NULL;
    if (call) {
        s_cancel_worker(self, call);
        s_release_call(self, call);
    }
}

// Stops every open stream with the client request id `request_id`; the client gets kind end.
static size_t
s_stop_streams(bk_broker_t *self, const char *request_id)
{
    uint64_t found[64];
    match_t m = {.request_id = request_id, .found = found, .max = 64};
    ga_idmap_each(self->calls, s_match, &m);
    for (size_t i = 0; i < m.n; i++) {
        bk_call_t *call = ga_idmap_take(self->calls, found[i]);
        s_cancel_worker(self, call);
        ga_arena_t *a = self->arena;
        ga_value_t r = ga_map(a, 3);
        ga_map_put(&r, a, "id", ga_int((int64_t) call->gw_call_id));
        ga_map_put(&r, a, "ok", ga_bool(true));
        ga_map_put(&r, a, "stopped", ga_bool(true));
        s_send(self, self->gateways, call->gw_id, call->gw_id_len, GA_CMD_RESULT, &r);
        s_release_call(self, call);
    }
    return m.n;
}

static void
s_status_worker(bk_worker_t *w, void *arg)
{
    void **ctx = arg;
    ga_value_t *list = ctx[0];
    ga_arena_t *a = ctx[1];
    int64_t now = *(int64_t *) ctx[2];
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "node", ga_str(w->node ? w->node : ""));
    ga_map_put(&m, a, "service", ga_str(w->service ? w->service : ""));
    ga_map_put(&m, a, "inflight", ga_int((int64_t) w->inflight));
    ga_map_put(&m, a, "failures", ga_int(w->failures));
    ga_map_put(&m, a, "circuit", ga_str(w->breaker_until > now ? "open" : "closed"));
    ga_array_push(list, a, m);
}

// ADMIN: operator requests on the gateway socket (genapi-ctl). Guarded by admin_token.
static void
s_on_admin(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    ga_arena_t *a = self->arena;
    ga_value_t reply = ga_map(a, 6);
    const char *op = ga_map_get_str(&msg->value, "op");
    const char *token = self->cfg->admin_token;
    const char *given = ga_map_get_str(&msg->value, "token");
    if (token && token[0] && (given == NULL || strcmp(given, token) != 0)) {
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("admin token required"));
    } else if (op && strcmp(op, "stop_stream") == 0) {
        const char *rid = ga_map_get_str(&msg->value, "request_id");
        size_t n = rid ? s_stop_streams(self, rid) : 0;
        ga_map_put(&reply, a, "ok", ga_bool(n > 0));
        ga_map_put(&reply, a, "stopped", ga_int((int64_t) n));
        if (n == 0) {
            ga_map_put(&reply, a, "error", ga_str("no open stream with that request id"));
        }
    } else if (op && strcmp(op, "status") == 0) {
        int64_t now = ga_clock_ms();
        ga_value_t workers = ga_array(a, 4);
        void *ctx[3] = {&workers, a, &now};
        bk_registry_each_worker(self->registry, s_status_worker, ctx);
        ga_map_put(&reply, a, "ok", ga_bool(true));
        ga_map_put(&reply, a, "workers", workers);
        ga_map_put(&reply, a, "functions",
                   ga_int((int64_t) bk_registry_function_count(self->registry)));
        ga_map_put(&reply, a, "failed_configs", bk_registry_failed_list(self->registry, a));
        ga_map_put(&reply, a, "calls_in_flight", ga_int((int64_t) ga_idmap_size(self->calls)));
    } else {
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("unknown op (status, stop_stream)"));
    }
    s_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
}

// ---------------------------------------------------------------------------------------------
// Timers

static void
s_heartbeat_worker(bk_worker_t *w, void *arg)
{
    bk_broker_t *self = arg;
    ga_value_t empty = ga_map(self->arena, 0);
    s_send(self, self->workers, w->id, w->id_len, GA_CMD_HEARTBEAT, &empty);
}

static void
s_on_tick(bk_broker_t *self, int64_t now)
{
    // Deadlines: answer every call whose time is up.
    uint64_t id;
    while (ga_timeq_pop_due(self->deadlines, now, &id)) {
        bk_call_t *call = ga_idmap_take(self->calls, id);
        if (call == NULL) {
            continue; // answered in time
        }
        self->stats.timeouts++;
        s_cancel_worker(self, call);
        s_note_failure(self, call->worker, now);
        s_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_ETIMEDOUT,
                     "Request timed out", true);
        s_release_call(self, call);
        ga_arena_reset(self->arena);
    }
    if (now < self->next_heartbeat) {
        return;
    }
    self->next_heartbeat = now + self->cfg->heartbeat_ms;
    bk_worker_t *expired[BK_EXPIRED_BATCH];
    size_t n = bk_registry_expired(self->registry, now, expired, BK_EXPIRED_BATCH);
    for (size_t i = 0; i < n; i++) {
        self->stats.workers_lost++;
        s_drop_worker(self, expired[i], "silent for 3 heartbeats");
    }
    bk_registry_each_worker(self->registry, s_heartbeat_worker, self);
    ga_value_t empty = ga_map(self->arena, 0);
    zlist_t *dead = zlist_new();
    ga_assert(dead);
    for (bk_gateway_t *gw = zhash_first(self->gws); gw; gw = zhash_next(self->gws)) {
        if (gw->expiry < now) {
            zlist_append(dead, (void *) zhash_cursor(self->gws));
        } else {
            s_send(self, self->gateways, gw->id, gw->id_len, GA_CMD_HEARTBEAT, &empty);
        }
    }
    for (const char *key = zlist_first(dead); key; key = zlist_next(dead)) {
        GA_NOTICE("gateway removed: silent for 3 heartbeats");
        zhash_delete(self->gws, key);
    }
    zlist_destroy(&dead);
    ga_arena_reset(self->arena);
}

// ---------------------------------------------------------------------------------------------
// Loop

// Drains up to `budget` messages from one socket so neither side can starve the other.
static void
s_drain(bk_broker_t *self, void *sock, bool from_workers, int budget)
{
    while (budget-- > 0) {
        ga_err_t rc = ga_proto_recv(sock, true, &self->msg, self->arena);
        if (rc == GA_EAGAIN) {
            return;
        }
        if (rc == GA_EPROTO) {
            self->stats.malformed++;
            GA_DEBUG("malformed message dropped");
        } else if (rc == GA_OK) {
            if (from_workers) {
                s_on_worker(self, &self->msg);
            } else {
                s_on_gateway(self, &self->msg);
            }
        } else {
            GA_WARN("receive failed: %s", zmq_strerror(zmq_errno()));
            ga_arena_reset(self->arena);
            return;
        }
        ga_arena_reset(self->arena);
    }
}

ga_err_t
bk_broker_run(bk_broker_t *self)
{
    enum { WORKERS, GATEWAYS, WAKE, STREAM_IN, STREAM_OUT, N_ITEMS };
    ga_zpoll_item_t items[N_ITEMS] = {
        [WORKERS] = {.socket = self->workers},
        [GATEWAYS] = {.socket = self->gateways},
        [WAKE] = {.fd = self->wake[0]},
        [STREAM_IN] = {.socket = self->stream_in},
        [STREAM_OUT] = {.socket = self->stream_out},
    };
    ga_zpoll_t poller;
    if (ga_zpoll_init(&poller, items, N_ITEMS) != GA_OK) {
        GA_ERR("cannot poll the broker's sockets: %s", zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    self->next_heartbeat = ga_clock_ms() + self->cfg->heartbeat_ms;
    ga_err_t rc = GA_OK;
    while (!atomic_load(&self->stop)) {
        int64_t now = ga_clock_ms();
        int64_t next = self->next_heartbeat;
        int64_t due = ga_timeq_next(self->deadlines);
        if (due < next) {
            next = due;
        }
        // Both ROUTERs are sent on from everywhere (replies, requests, heartbeats, updates):
        // check them before every sleep rather than track each send.
        items[WORKERS].dirty = items[GATEWAYS].dirty = true;
        long timeout = next > now ? (long) (next - now) : 0;
        if (ga_zpoll_wait(&poller, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            GA_ERR("poll failed: %s", strerror(errno));
            rc = GA_EIO;
            break;
        }
        if (items[WORKERS].ready) {
            s_drain(self, self->workers, true, 256);
        }
        if (items[GATEWAYS].ready) {
            s_drain(self, self->gateways, false, 256);
        }
        for (int i = 0; i < 1024 && items[STREAM_IN].ready; i++) {
            uint32_t events = 0;
            size_t len = sizeof events;
            if (zmq_getsockopt(self->stream_in, ZMQ_EVENTS, &events, &len) != 0 ||
                !(events & ZMQ_POLLIN)) {
                break;
            }
            s_on_stream(self);
            ga_zpoll_touch(&poller, self->stream_out);
        }
        if (items[STREAM_OUT].ready) {
            s_drain_subscriptions(self);
        }
        s_on_tick(self, ga_clock_ms());
    }
    ga_zpoll_fini(&poller);
    return rc;
}
