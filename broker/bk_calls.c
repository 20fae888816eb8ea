// SPDX-License-Identifier: MIT
// Calls in flight, each answered exactly once (worker reply, worker lost, timeout, or refusal):
// routing to a worker, deadlines, a lost worker's calls, the circuit breaker's count. The tick is
// here for its deadlines; it also reaps silent peers and heartbeats the others.
#include "bk_internal.h"

#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_idmap.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_timeq.h"

#include <czmq.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BK_EXPIRED_BATCH 64 // workers reaped per liveness check

void
bk_release_call(bk_broker_t *self, bk_call_t *call)
{
    if (call->worker) {
        call->worker->inflight--;
    }
    call->next = self->free_calls;
    self->free_calls = call;
}

void
bk_on_call(bk_broker_t *self, const ga_proto_msg_t *msg)
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
    if (cfg == NULL && ga_clock_ms() < self->warm_until) {
        // Just started: its workers may not have registered again yet (docs/protocol.md).
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_EUNAVAIL,
                      "Service temporarily unavailable", true);
        return;
    }
    if (cfg == NULL) {
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_ENOTFOUND,
                      "Unknown function", false);
        return;
    }
    if (cfg->disabled) {
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_ENOTFOUND,
                      "Function disabled", false);
        return;
    }
    bk_worker_t *w = bk_select_pick(self->select, self->registry, cfg,
                                    ga_map_get_str(body, "request_id"),
                                    ga_map_get_str(body, "routing_key"), ga_clock_ms());
    if (w == NULL) {
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_EUNAVAIL,
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
    const char *topic = ga_map_get_str(body, "stream_topic");
    call->topic_hash = topic ? bk_access_hash(topic, strlen(topic)) : 0;
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
        bk_release_call(self, call);
        return;
    }
    ga_err_t rc = ga_proto_send_value(self->workers, w->id, w->id_len, GA_CMD_REQUEST, body,
                                      &self->out);
    if (rc != GA_OK) {
        self->stats.undeliverable++;
        call->worker = NULL;
        bk_release_call(self, call);
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_EUNAVAIL,
                      "Service unavailable", true);
        return;
    }
    w->inflight++;
    ga_idmap_put(self->calls, call->id, call);
    // A stream's timeout bounds the silence between two of its messages (bk_on_stream moves
    // the deadline on); any other call's bounds the whole call. Infinity: no deadline.
    call->idle_ms = call->stream && cfg->timeout_ms > 0 ? cfg->timeout_ms : 0;
    call->deadline = INT64_MAX;
    if (cfg->timeout_ms != GA_FUNCFG_TIMEOUT_INFINITY) {
        call->deadline = ga_clock_ms() + cfg->timeout_ms;
        ga_timeq_push(self->deadlines, call->deadline, call->id);
    }
}

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

void
bk_drop_worker(bk_broker_t *self, bk_worker_t *w, const char *why)
{
    GA_NOTICE("worker %s (%s) removed: %s; %zu call(s) in flight failed", w->node ? w->node : "?",
              w->service ? w->service : "?", why, w->inflight);
    if (w->inflight) {
        lost_t lost = {.self = self, .worker = w, .ids = ga_malloc(sizeof(uint64_t) * w->inflight)};
        ga_idmap_each(self->calls, s_collect_lost, &lost);
        for (size_t i = 0; i < lost.n; i++) {
            bk_call_t *call = ga_idmap_take(self->calls, lost.ids[i]);
            bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_ELOST,
                          "Worker lost", true);
            bk_release_call(self, call);
        }
        ga_free(lost.ids);
    }
    bk_registry_remove(self->registry, w);
}

void
bk_on_reply(bk_broker_t *self, bk_worker_t *w, const ga_proto_msg_t *msg)
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
    bk_send(self, self->gateways, call->gw_id, call->gw_id_len, GA_CMD_RESULT, &msg->value);
    self->stats.results++;
    bk_release_call(self, call);
}

typedef struct {
    const uint8_t *gw_id; // gateway routing id
    size_t gw_id_len;     // its length
    uint64_t *ids;        // matching broker ids
    size_t n;             // matches so far
    size_t max;           // room in ids
} gw_calls_t;

static void
s_collect_gateway(uint64_t id, void *value, void *arg)
{
    gw_calls_t *m = arg;
    bk_call_t *call = value;
    if (m->n < m->max && call->gw_id_len == m->gw_id_len &&
        memcmp(call->gw_id, m->gw_id, m->gw_id_len) == 0) {
        m->ids[m->n++] = id;
    }
}

void
bk_drop_gateway_calls(bk_broker_t *self, const uint8_t *gw_id, size_t gw_id_len)
{
    size_t max = ga_idmap_size(self->calls);
    if (max == 0) {
        return;
    }
    gw_calls_t m = {.gw_id = gw_id,
                    .gw_id_len = gw_id_len,
                    .ids = ga_malloc(sizeof(uint64_t) * max),
                    .max = max};
    ga_idmap_each(self->calls, s_collect_gateway, &m);
    for (size_t i = 0; i < m.n; i++) {
        bk_call_t *call = ga_idmap_take(self->calls, m.ids[i]);
        if (call->stream) {
            bk_cancel_worker(self, call);
        }
        // Dropped if the gateway is really gone; if it was only stalled, it reads this when it
        // resumes, rather than waiting on a stream the worker no longer sends.
        bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_EUNAVAIL,
                      "Service unavailable", true);
        bk_release_call(self, call);
    }
    if (m.n) {
        GA_NOTICE("%zu call(s) of the lost gateway forgotten", m.n);
    }
    ga_free(m.ids);
}

// Tells the worker holding `call` to stop it (its stream handler sees the cancel).
void
bk_cancel_worker(bk_broker_t *self, const bk_call_t *call)
{
    if (call->worker == NULL) {
        return;
    }
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 1);
    ga_map_put(&m, a, "id", ga_int((int64_t) call->id));
    bk_send(self, self->workers, call->worker->id, call->worker->id_len, GA_CMD_CANCEL, &m);
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

// ---------------------------------------------------------------------------------------------
// Timers

static void
s_heartbeat_worker(bk_worker_t *w, void *arg)
{
    bk_broker_t *self = arg;
    ga_value_t empty = ga_map(self->arena, 0);
    bk_send(self, self->workers, w->id, w->id_len, GA_CMD_HEARTBEAT, &empty);
}

void
bk_on_tick(bk_broker_t *self, int64_t now)
{
    // Deadlines: answer every call whose time is up.
    uint64_t id;
    while (ga_timeq_pop_due(self->deadlines, now, &id)) {
        bk_call_t *call = ga_idmap_get(self->calls, id);
        if (call == NULL) {
            continue; // answered in time
        }
        if (call->deadline > now) {
            // A stream that kept talking: its deadline moved on. One entry per call stays queued.
            ga_timeq_push(self->deadlines, call->deadline, id);
            continue;
        }
        ga_idmap_take(self->calls, id);
        self->stats.timeouts++;
        bk_cancel_worker(self, call);
        s_note_failure(self, call->worker, now);
        bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_ETIMEDOUT,
                      "Request timed out", true);
        bk_release_call(self, call);
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
        bk_drop_worker(self, expired[i], "silent for 3 heartbeats");
    }
    bk_registry_each_worker(self->registry, s_heartbeat_worker, self);
    bk_tick_gateways(self, now);
    ga_arena_reset(self->arena);
}
