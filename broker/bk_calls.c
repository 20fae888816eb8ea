// SPDX-License-Identifier: MIT
// Calls in flight, each answered exactly once (worker reply, worker lost, timeout, refusal),
// whatever number of attempts it takes: the owner of each call's state machine (bk_call.h).
// Here the machine's decisions become I/O: picking a worker for each attempt (the first by
// the function's node selection, later ones by the retry mode), sending it with its deadline,
// waiting out backoffs, and answering the gateway. The tick asks each owner in turn: the calls
// (deadlines), the workers (liveness, heartbeats), the gateways (bk_tick_gateways).
#include "bk_internal.h"

#include "bk_call.h"
#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_functable.h"
#include "ga_inflight.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <czmq.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BK_EXPIRED_BATCH 64 // workers reaped per liveness check

static void s_act(bk_broker_t *self, bk_call_t *call, bk_call_do_t act,
                  const ga_proto_msg_t *reply);

// Takes the call out of the table and off its worker (no-op when it is in neither).
static void
s_detach(bk_broker_t *self, bk_call_t *call)
{
    if (call->rec.linked) {
        ga_inflight_remove(self->calls, &call->rec);
    }
    if (call->worker) {
        call->worker->inflight--;
        call->worker = NULL;
    }
}

void
bk_release_call(bk_broker_t *self, bk_call_t *call)
{
    s_detach(self, call);
    ga_buf_reset(&call->body);
    if (call->has_payload) {
        zmq_msg_close(&call->payload); // drops this call's reference to the args
        zmq_msg_init(&call->payload);
        call->has_payload = false;
    }
    call->next = self->free_calls;
    self->free_calls = call;
}

static bk_call_t *
s_call_new(bk_broker_t *self)
{
    bk_call_t *call = self->free_calls;
    if (call) {
        self->free_calls = call->next;
    } else {
        call = ga_calloc(1, sizeof *call);
        ga_buf_init(&call->body);
        zmq_msg_init(&call->payload);
    }
    call->next = NULL;
    call->worker = NULL;
    call->node[0] = '\0';
    return call;
}

// Copies `src` (NULL: "") into `dst` (`size` bytes), truncated and NUL-terminated, as
// snprintf's "%s" would, at a fraction of its cost.
static void
s_copy_str(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

// Whether `w` may take an attempt of `cfg` (function key `fkey`) at `now`; a function whose
// nodes a resolver names, only on a node of its last answer (`resolve`).
static bool
s_eligible(bk_resolve_t *resolve, const bk_worker_t *w, const ga_funcfg_t *cfg,
           const char *fkey, int64_t now)
{
    if (!w->registered || w->draining || w->breaker_until > now ||
        zhash_lookup(w->offers, fkey) == NULL) {
        return false;
    }
    if (cfg->nodes_resolver) {
        return bk_resolve_allows(resolve, cfg->nodes_resolver, w->node);
    }
    if (cfg->n_nodes == 0) {
        return true;
    }
    for (uint32_t i = 0; i < cfg->n_nodes; i++) {
        if (strcmp(cfg->nodes[i], w->node) == 0) {
            return true;
        }
    }
    return false;
}

// A worker for the next attempt: same_node, one on the first attempt's node; otherwise one
// not tried yet (random among them), or for retry across nodes, once all were tried, any.
typedef struct {
    bk_resolve_t *resolve;  // node resolvers' answers
    const bk_call_t *call;  // the call
    const ga_funcfg_t *cfg; // its function
    const char *fkey;       // the function's key
    int64_t now;            // for the breaker
    bool any;               // tried ones count too
    bk_worker_t *chosen;    // the pick
    unsigned seen;          // candidates so far
} pick_t;

static void
s_pick_one(bk_worker_t *w, void *arg)
{
    pick_t *p = arg;
    if (!s_eligible(p->resolve, w, p->cfg, p->fkey, p->now)) {
        return;
    }
    if (p->call->fsm.mode == BK_RETRY_SAME_NODE) {
        if (strcmp(w->node, p->call->node) != 0) {
            return;
        }
    } else if (!p->any && bk_call_fsm_tried(&p->call->fsm, w->life)) {
        return;
    }
    p->seen++;
    if ((unsigned) rand() % p->seen == 0) {
        p->chosen = w;
    }
}

static bk_worker_t *
s_pick_next(bk_broker_t *self, const bk_call_t *call, const ga_funcfg_t *cfg, int64_t now)
{
    char fkey[600];
    ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
    pick_t p = {.resolve = self->resolve, .call = call, .cfg = cfg, .fkey = fkey, .now = now};
    bk_registry_each_worker(self->registry, s_pick_one, &p);
    if (p.chosen == NULL && call->fsm.mode == BK_RETRY_ALL_NODES) {
        p.any = true;
        bk_registry_each_worker(self->registry, s_pick_one, &p);
    }
    return p.chosen;
}

// Sends the REQUEST of one attempt to `w`: the CALL envelope (`env`, `env_len` bytes) with the
// attempt's id in place of the gateway's and the attempt's deadline as a wall-clock time
// (docs/protocol.md, "REQUEST deadlines"), then the CALL's payload frame (the args) as it came.
// Neither is decoded: the envelope's other pairs are copied as bytes.
static ga_err_t
s_send_request(bk_broker_t *self, bk_worker_t *w, const uint8_t *env, size_t env_len,
               const ga_proto_payload_t *payload, uint64_t id, int64_t due, int64_t now)
{
    ga_value_t idv = ga_int((int64_t) id);
    ga_value_t deadline = ga_int(due != INT64_MAX ? bk_now_wall_ms(self) + (due - now) : 0);
    // A kept envelope (another attempt) still has the rate-limit keys: the worker never sees
    // them.
    const ga_proto_edit_t edits[] = {
        {.key = "id", .value = &idv, .append = true},
        {.key = "deadline", .value = due != INT64_MAX ? &deadline : NULL, .append = true},
        {.key = "rate_limit"},
    };
    return bk_forward_edit(self, self->workers, w->id, w->id_len, GA_CMD_REQUEST, env, env_len,
                           edits, sizeof edits / sizeof edits[0], payload, w->batch);
}

// Keeps the call in the table under `id` until `due`, owned by its gateway and by `w`.
static void
s_track(bk_broker_t *self, bk_call_t *call, uint64_t id, bk_worker_t *w, int64_t due)
{
    uint64_t owners[GA_INFLIGHT_OWNERS];
    owners[BK_OWNER_GATEWAY] = call->gw_serial;
    owners[BK_OWNER_WORKER] = w ? w->life : 0;
    ga_inflight_add(self->calls, &call->rec, id, due, owners);
    call->worker = w;
    if (w) {
        w->inflight++;
    }
}

// Sends the next attempt of `call` (CALL envelope `env`, `env_len` bytes, payload frame
// `payload`) to `w`.
static void
s_attempt(bk_broker_t *self, bk_call_t *call, const uint8_t *env, size_t env_len,
          const ga_proto_payload_t *payload, bk_worker_t *w)
{
    int64_t now = bk_now_ms(self);
    uint64_t id = ++self->next_id;
    if (call->fsm.attempts == 0) {
        s_copy_str(call->node, sizeof call->node, w->node);
    }
    bk_call_fsm_sent(&call->fsm, id, w->life, now);
    // A stream's timeout bounds the silence between two of its messages (bk_on_stream moves
    // the deadline on); any other call's attempt is due at its share of the call's timeout.
    int64_t due = call->stream ? (call->idle_ms > 0 ? now + call->idle_ms : INT64_MAX)
                               : bk_call_fsm_due(&call->fsm);
    if (s_send_request(self, w, env, env_len, payload, id, due, now) != GA_OK) {
        s_act(self, call, bk_call_fsm_on(&call->fsm, BK_EV_UNSENT, id, now, (uint64_t) rand()),
              NULL);
        return;
    }
    s_track(self, call, id, w, due);
}

// The next attempt, from the kept envelope and payload: the function is looked up again (it
// may have changed or gone during a backoff).
static void
s_next_attempt(bk_broker_t *self, bk_call_t *call)
{
    int64_t now = bk_now_ms(self);
    ga_value_t body = ga_nil();
    const ga_funcfg_t *cfg = NULL;
    if (call->body.len &&
        ga_wire_decode(call->body.data, call->body.len, self->arena, &body) == GA_OK) {
        cfg = bk_registry_lookup(self->registry, ga_map_get_str(&body, "service"),
                                 ga_map_get_str(&body, "request_type"),
                                 ga_map_get_str(&body, "version"));
    }
    bk_worker_t *w = cfg && !cfg->disabled ? s_pick_next(self, call, cfg, now) : NULL;
    if (w == NULL) {
        s_act(self, call, bk_call_fsm_on(&call->fsm, BK_EV_NO_WORKER, 0, now, 0), NULL);
        return;
    }
    self->stats.retries++;
    GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = cfg->service, .request_type = cfg->request_type, .version = cfg->version, .request_id = call->request_id, .node = w->node, .count = call->fsm.attempts + 1);
    ga_proto_payload_t payload = ga_proto_payload_of(&call->payload);
    s_attempt(self, call, call->body.data, call->body.len, call->has_payload ? &payload : NULL,
              w);
}

// Passes a worker's REPLY on to the gateway under the gateway's id; `can_retry` >= 0 replaces
// the reply's own. Nothing is decoded again: the envelope's other pairs are copied as bytes,
// and the payload frame (the result) goes on as it came.
static void
s_forward(bk_broker_t *self, bk_call_t *call, const ga_proto_msg_t *reply, int can_retry)
{
    // The received message is the broker's own (self->msg, or a parked copy): its payload is
    // shared with the message sent.
    ga_proto_payload_t result = ga_proto_msg_payload(reply);
    const ga_proto_payload_t *payload = reply->has_payload ? &result : NULL;
    ga_value_t idv = ga_int((int64_t) call->gw_call_id);
    ga_value_t retry = ga_bool(can_retry > 0);
    const ga_proto_edit_t edits[] = {
        {.key = "id", .value = &idv},
        {.key = "can_retry", .value = &retry},
    };
    GA_IGNORE(bk_forward_edit(self, self->gateways, call->gw_id, call->gw_id_len, GA_CMD_RESULT,
                              reply->body.data, reply->body.len, edits, can_retry >= 0 ? 2 : 1,
                              payload, call->gw_batch) != GA_OK); // counted there
    self->stats.results++;
}

// Carries out what the state machine decided. The call is out of the table on entry.
static void
s_act(bk_broker_t *self, bk_call_t *call, bk_call_do_t act, const ga_proto_msg_t *reply)
{
    switch (act) {
    case BK_DO_FORWARD:
        s_forward(self, call, reply, -1);
        bk_release_call(self, call);
        return;
    case BK_DO_FAIL:
        if (call->fsm.exhausted) {
            self->stats.retries_exhausted++;
            bk_tm_call(self, call, GA_EV_EXECUTOR_RETRY_EXHAUSTED);
            GA_INFO("call %s: retries exhausted after %d attempt(s)", call->request_id,
                    call->fsm.attempts);
        }
        if (call->fsm.code == GA_ETIMEDOUT) {
            self->stats.timeouts++;
        }
        if (call->fsm.message == NULL && reply) {
            s_forward(self, call, reply, call->fsm.can_retry); // the handler's own error
        } else {
            bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, call->fsm.code,
                          call->fsm.message ? call->fsm.message : "Internal Server Error",
                          call->fsm.can_retry);
        }
        bk_release_call(self, call);
        return;
    case BK_DO_SEND:
        s_next_attempt(self, call);
        return;
    case BK_DO_WAIT:
        // Attempt-less: under a fresh id no worker knows, so a late answer finds nothing.
        s_track(self, call, ++self->next_id, NULL, bk_call_fsm_due(&call->fsm));
        return;
    case BK_DO_DROP:
        self->stats.late_replies++;
        return;
    case BK_DO_NOTHING:
        return;
    }
}

// The CALL envelope's fields the broker routes by (docs/protocol.md, "Commands"), found in one
// pass over its pairs instead of a lookup each; for each key its first pair, as ga_map_get.
typedef struct {
    const ga_value_t *id, *service, *request_type, *version, *request_id, *routing_key,
        *stream_topic;
} call_env_t;

static bool
s_key_is(const ga_pair_t *p, const char *key, size_t len)
{
    return p->key_len == len && memcmp(p->key, key, len) == 0;
}

static void
s_call_env(const ga_value_t *body, call_env_t *e)
{
    memset(e, 0, sizeof *e);
    for (uint32_t i = 0; body->type == GA_MAP && i < body->len; i++) {
        const ga_pair_t *p = &body->u.pairs[i];
        const ga_value_t **slot = NULL;
        switch (p->key_len) {
        case 2:
            slot = s_key_is(p, "id", 2) ? &e->id : NULL;
            break;
        case 7:
            slot = s_key_is(p, "service", 7) ? &e->service
                   : s_key_is(p, "version", 7) ? &e->version
                                               : NULL;
            break;
        case 10:
            slot = s_key_is(p, "request_id", 10) ? &e->request_id : NULL;
            break;
        case 11:
            slot = s_key_is(p, "routing_key", 11) ? &e->routing_key : NULL;
            break;
        case 12:
            slot = s_key_is(p, "request_type", 12) ? &e->request_type
                   : s_key_is(p, "stream_topic", 12) ? &e->stream_topic
                                                     : NULL;
            break;
        default:
            break;
        }
        if (slot && *slot == NULL) {
            *slot = &p->value;
        }
    }
}

// A string field's text (NULL when absent or not a string), as ga_map_get_str.
static const char *
s_str(const ga_value_t *v)
{
    return v && v->type == GA_STR ? v->u.s : NULL;
}

// An integer field's value (`dflt` when absent or not an integer), as ga_map_get_int.
static int64_t
s_int(const ga_value_t *v, int64_t dflt)
{
    if (v && v->type == GA_INT) {
        return v->u.i;
    }
    if (v && v->type == GA_FLOAT && v->u.f >= -0x1p63 && v->u.f < 0x1p63 &&
        v->u.f == (double) (int64_t) v->u.f) {
        return (int64_t) v->u.f;
    }
    return dflt;
}

void
bk_on_call(bk_broker_t *self, const bk_gateway_t *gw, const ga_proto_msg_t *msg)
{
    const ga_value_t *body = &msg->value;
    // The args as they came: their bytes in the received batch, or their frame.
    ga_proto_payload_t args = ga_proto_msg_payload(msg);
    const ga_proto_payload_t *payload = msg->has_payload ? &args : NULL;
    self->stats.calls++;
    call_env_t env;
    s_call_env(body, &env);
    int64_t gw_call_id = s_int(env.id, 0);
    const char *service = s_str(env.service);
    const char *request_type = s_str(env.request_type);
    const char *version = s_str(env.version);
    const char *request_id = s_str(env.request_id);
    if (gw_call_id <= 0 || service == NULL || request_type == NULL) {
        self->stats.malformed++;
        GA_WARN("CALL without id, service or request_type dropped");
        return;
    }
    int64_t now = bk_now_ms(self);
    const ga_funcfg_t *cfg = bk_registry_lookup(self->registry, service, request_type, version);
    if (cfg == NULL && now < self->warm_until) {
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
    // A resolver names the nodes (docs/protocol.md, "Node selection"): without a usable answer
    // the call waits for one (answered or routed later) or is answered here.
    const char *const *nodes = NULL;
    size_t n_nodes = 0;
    if (cfg->nodes_resolver && !bk_resolve_nodes(self, cfg->nodes_resolver, gw->serial, msg, now,
                                                 &nodes, &n_nodes)) {
        return;
    }
    bk_worker_t *w = bk_select_pick_in(self->select, self->registry, cfg,
                                       request_id, s_str(env.routing_key), now, nodes,
                                       n_nodes);
    if (w == NULL) {
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) gw_call_id, GA_EUNAVAIL,
                      "Service unavailable", true);
        return;
    }
    if (cfg->response_type == GA_RESP_NONE) {
        // Fire and forget: nobody waits, so nothing is tracked (and nothing retried).
        int64_t due = cfg->timeout_ms > 0 ? now + cfg->timeout_ms : INT64_MAX;
        GA_IGNORE(s_send_request(self, w, msg->body.data, msg->body.len, payload, ++self->next_id,
                                 due, now) != GA_OK);
        return;
    }
    bk_call_t *call = s_call_new(self);
    call->gw_call_id = (uint64_t) gw_call_id;
    memcpy(call->gw_id, msg->id, msg->id_len);
    call->gw_id_len = msg->id_len;
    call->gw_serial = gw->serial;
    call->gw_batch = gw->batch;
    call->stream = cfg->response_type == GA_RESP_STREAM;
    call->idle_ms = call->stream && cfg->timeout_ms > 0 ? cfg->timeout_ms : 0;
    const char *topic = s_str(env.stream_topic);
    call->topic_hash = topic ? bk_access_hash(topic, strlen(topic)) : 0;
    s_copy_str(call->request_id, sizeof call->request_id, request_id);
    // How it moves on (docs/protocol.md, "Retry and fallback"): a retry setting gives its
    // attempts; without one, each worker that could take it now may get one (fallback).
    // Streams get one attempt: their chunks may be with the client already.
    bk_retry_mode_t mode = BK_RETRY_FALLBACK;
    int attempts = 1;
    if (call->stream) {
        attempts = 1;
    } else if (cfg->retry_attempts > 0) {
        mode = cfg->retry_same_node ? BK_RETRY_SAME_NODE : BK_RETRY_ALL_NODES;
        attempts = cfg->retry_attempts;
    } else {
        // The workers the pick chose among (same moment, same rules as s_eligible).
        size_t n = bk_select_last_candidates(self->select);
        attempts = n > BK_CALL_ATTEMPTS_MAX ? BK_CALL_ATTEMPTS_MAX : (int) n;
    }
    bk_call_fsm_start(&call->fsm, mode, cfg->retry_attempts > 0 && !call->stream, attempts,
                      call->stream || cfg->timeout_ms <= 0 ? 0 : cfg->timeout_ms, now);
    if (call->fsm.max_attempts > 1) {
        // For the next attempts: the envelope (small) copied, the payload referenced (a frame
        // of its own) or copied (a batch item: its batch frame is not kept alive for it).
        ga_buf_append(&call->body, msg->body.data, msg->body.len);
        if (payload && ga_proto_payload_keep(payload, &call->payload) == GA_OK) {
            call->has_payload = true;
        }
    }
    s_attempt(self, call, msg->body.data, msg->body.len, payload, w);
}

void
bk_calls_worker_lost(bk_broker_t *self, bk_worker_t *w)
{
    w->registered = false; // picked no more: its calls go elsewhere
    int64_t now = ga_clock_ms();
    ga_inflight_rec_t *rec;
    while ((rec = ga_inflight_take_owned(self->calls, BK_OWNER_WORKER, w->life)) != NULL) {
        bk_call_t *call = (bk_call_t *) rec;
        uint64_t id = rec->id;
        s_detach(self, call);
        s_act(self, call, bk_call_fsm_on(&call->fsm, BK_EV_LOST, id, now, (uint64_t) rand()),
              NULL);
        // No ga_arena_reset here: the message being handled (a REGISTER with a new session)
        // lives in the same arena, and is read after this; it is reset after the message.
    }
}

void
bk_drop_worker(bk_broker_t *self, bk_worker_t *w, const char *why)
{
    GA_NOTICE("worker %s (%s) removed: %s; %zu call(s) in flight lost", w->node ? w->node : "?",
              w->service ? w->service : "?", why, w->inflight);
    bk_calls_worker_lost(self, w);
    bk_registry_remove(self->registry, w);
}

void
bk_on_reply(bk_broker_t *self, bk_worker_t *w, const ga_proto_msg_t *msg)
{
    // The fields read, found in one pass (for each key its first pair, as ga_map_get).
    const ga_value_t *idv = NULL, *ok = NULL, *retryable = NULL, *refused = NULL;
    for (uint32_t i = 0; msg->value.type == GA_MAP && i < msg->value.len; i++) {
        const ga_pair_t *p = &msg->value.u.pairs[i];
        const ga_value_t **slot = s_key_is(p, "id", 2)          ? &idv
                                  : s_key_is(p, "ok", 2)        ? &ok
                                  : s_key_is(p, "retryable", 9) ? &retryable
                                  : s_key_is(p, "refused", 7)   ? &refused
                                                                : NULL;
        if (slot && *slot == NULL) {
            *slot = &p->value;
        }
    }
    int64_t id = s_int(idv, 0);
    bk_call_t *call = id > 0 ? (bk_call_t *) ga_inflight_get(self->calls, (uint64_t) id) : NULL;
    if (call == NULL || call->worker != w) {
        // An attempt given up (timed out, retried elsewhere) or a call answered already.
        self->stats.late_replies++;
        GA_DEBUG("reply for unknown or expired call %lld dropped", (long long) id);
        return;
    }
    s_detach(self, call);
    w->failures = 0; // it answered: whatever it said, it is alive and responsive
    bk_tm_worker_answered(w);
    bk_call_event_t ev = BK_EV_REPLY;
    if (ok && ok->type == GA_BOOL && !ok->u.b) {
        if (refused && refused->type == GA_BOOL && refused->u.b) {
            ev = BK_EV_UNSENT; // it did not run (the worker's queue was full)
        } else if (retryable && retryable->type == GA_BOOL && retryable->u.b) {
            ev = BK_EV_RETRYABLE;
        }
    }
    bk_call_do_t act = bk_call_fsm_on(&call->fsm, ev, (uint64_t) id, bk_now_ms(self),
                                      (uint64_t) rand());
    if (act == BK_DO_FAIL && call->fsm.message == NULL) {
        s_act(self, call, act, msg);
    } else if (act == BK_DO_FAIL && ev == BK_EV_UNSENT) {
        s_forward(self, call, msg, call->fsm.can_retry ? 1 : 0); // the worker's refusal
        bk_release_call(self, call);
    } else {
        s_act(self, call, act, msg);
    }
}

void
bk_drop_gateway_calls(bk_broker_t *self, const bk_gateway_t *gw)
{
    size_t n = 0;
    ga_inflight_rec_t *rec;
    while ((rec = ga_inflight_take_owned(self->calls, BK_OWNER_GATEWAY, gw->serial)) != NULL) {
        bk_call_t *call = (bk_call_t *) rec;
        if (call->stream) {
            bk_cancel_worker(self, call);
        }
        // Dropped if the gateway is really gone; if it was only stalled, it reads this when it
        // resumes, rather than waiting on a stream the worker no longer sends.
        bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_EUNAVAIL,
                      "Service unavailable", true);
        bk_release_call(self, call);
        ga_arena_reset(self->arena);
        n++;
    }
    if (n) {
        GA_NOTICE("%zu call(s) of the lost gateway forgotten", n);
    }
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
    ga_map_put(&m, a, "id", ga_int((int64_t) call->rec.id));
    bk_send(self, self->workers, call->worker->id, call->worker->id_len, GA_CMD_CANCEL, &m);
}

// A timed-out attempt counts against its worker's breaker. The call's worker is always of its
// current life: a life's calls are taken from it when it ends (bk_calls_worker_lost).
static void
s_note_failure(bk_broker_t *self, bk_worker_t *w, uint64_t life, int64_t now)
{
    if (w == NULL || w->life != life) {
        return;
    }
    w->failures++;
    if (self->cfg->breaker_threshold > 0 && w->failures >= self->cfg->breaker_threshold) {
        w->breaker_until = now + self->cfg->breaker_cooldown_ms;
        self->stats.breaker_opened++;
        GA_EMIT(GA_EV_WORKER_POOL_CIRCUIT_OPEN, .node = w->node, .pool_name = w->service, .count = w->failures);
        GA_WARN("worker %s: %d failures in a row, skipped for %lld ms (circuit open)", w->node,
                w->failures, (long long) self->cfg->breaker_cooldown_ms);
    }
}

// ---------------------------------------------------------------------------------------------
// Timers

// The calls' share of the tick: every record whose deadline passed.
static void
s_tick_calls(bk_broker_t *self, int64_t now)
{
    ga_inflight_rec_t *rec;
    while ((rec = ga_inflight_expire(self->calls, now)) != NULL) {
        bk_call_t *call = (bk_call_t *) rec;
        uint64_t id = rec->id;
        bk_worker_t *w = call->worker;
        bk_call_do_t act = BK_DO_FAIL;
        if (!call->stream) {
            bool backoff = call->fsm.state == BK_CALL_BACKOFF;
            act = bk_call_fsm_on(&call->fsm, BK_EV_DUE, backoff ? 0 : id, now, (uint64_t) rand());
        }
        if (act == BK_DO_NOTHING) {
            call->worker = NULL;
            if (w) {
                w->inflight--;
            }
            s_track(self, call, id, w, bk_call_fsm_due(&call->fsm)); // not due yet
            continue;
        }
        if (w) {
            // An attempt given up: the worker is told (streams stop), the breaker counts it.
            bk_cancel_worker(self, call);
            int n = call->fsm.attempts;
            s_note_failure(self, w, n > 0 ? call->fsm.tried[(n - 1) % BK_CALL_ATTEMPTS_MAX] : 0,
                           now);
        }
        s_detach(self, call);
        if (call->stream) {
            self->stats.timeouts++;
            bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_ETIMEDOUT,
                          "Request timed out", true);
            bk_release_call(self, call);
        } else {
            s_act(self, call, act, NULL);
        }
        ga_arena_reset(self->arena);
    }
}

static void
s_heartbeat_worker(bk_worker_t *w, void *arg)
{
    bk_broker_t *self = arg;
    ga_value_t empty = ga_map(self->arena, 0);
    bk_send(self, self->workers, w->id, w->id_len, GA_CMD_HEARTBEAT, &empty);
}

// The workers' share of the tick: the silent ones go (their calls move on), the others hear
// from us.
static void
s_tick_workers(bk_broker_t *self, int64_t now)
{
    bk_worker_t *expired[BK_EXPIRED_BATCH];
    size_t n = bk_registry_expired(self->registry, now, expired, BK_EXPIRED_BATCH);
    for (size_t i = 0; i < n; i++) {
        self->stats.workers_lost++;
        bk_drop_worker(self, expired[i], "silent for 3 heartbeats");
    }
    bk_registry_each_worker(self->registry, s_heartbeat_worker, self);
}

void
bk_on_tick(bk_broker_t *self, int64_t now)
{
    s_tick_calls(self, now);
    if (now < self->next_heartbeat) {
        return;
    }
    self->next_heartbeat = now + self->cfg->heartbeat_ms;
    s_tick_workers(self, now);
    bk_tick_gateways(self, now);
    ga_arena_reset(self->arena);
}
