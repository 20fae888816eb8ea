// SPDX-License-Identifier: MIT
// Node resolvers (bk_resolve.h): the cache of answers, the broker's own REQUEST to a
// resolver's worker and its REPLY, and the calls parked while a first answer is due.
#include "bk_resolve.h"

#include "bk_internal.h"
#include "ga_clock.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_wire.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

// A CALL waiting for its resolver's first answer: enough to route it again, or answer it.
typedef struct {
    uint8_t gw_id[255];  // the gateway's routing id
    size_t gw_id_len;    // bytes in gw_id
    uint64_t gw_serial;  // the gateway's serial (a new gateway under the same id is another)
    uint64_t gw_call_id; // the gateway's id for the call
    ga_buf_t body;       // the CALL envelope, encoded
    zmq_msg_t payload;   // its payload frame (the args), referenced, not copied
    bool has_payload;    // payload holds one
} s_parked_t;

// One resolver.
typedef struct {
    char *name;          // "service.request_type"
    char **nodes;        // the last answer (owned strings)
    size_t n_nodes;      // entries in nodes
    bool have;           // there is an answer
    int64_t fresh_until; // monotonic ms: the answer is fresh until then
    uint64_t pending;    // id of the REQUEST out (0: none)
    int64_t deadline;    // monotonic ms: the REQUEST out has failed after it
    int64_t failed_until; // monotonic ms: after a failure, calls fail at once until then
    zlist_t *parked;     // s_parked_t *, oldest first
    bool settle;         // the parked calls are to be routed (have) or answered (not)
} s_entry_t;

struct bk_resolve_t {
    int64_t cache_ms;    // how long an answer is fresh
    zhash_t *entries;    // name -> s_entry_t
    int64_t next_due;    // monotonic ms: bk_resolve_tick has nothing to do before
    size_t n_pending;    // entries with a REQUEST out (0: a REPLY is never a resolver's)
};

static void
s_parked_free(s_parked_t **p)
{
    if (*p) {
        ga_buf_fini(&(*p)->body);
        zmq_msg_close(&(*p)->payload);
        ga_free(*p);
        *p = NULL;
    }
}

static void
s_forget_nodes(s_entry_t *e)
{
    for (size_t i = 0; i < e->n_nodes; i++) {
        ga_free(e->nodes[i]);
    }
    ga_free(e->nodes);
    e->nodes = NULL;
    e->n_nodes = 0;
    e->have = false;
}

static void
s_entry_free(void *item)
{
    s_entry_t *e = item;
    s_forget_nodes(e);
    s_parked_t *p;
    while ((p = zlist_pop(e->parked)) != NULL) {
        s_parked_free(&p);
    }
    zlist_destroy(&e->parked);
    ga_free(e->name);
    ga_free(e);
}

bk_resolve_t *
bk_resolve_new(int64_t cache_ms)
{
    bk_resolve_t *self = ga_calloc(1, sizeof *self);
    self->cache_ms = cache_ms > 0 ? cache_ms : 5000;
    self->entries = zhash_new();
    ga_assert(self->entries);
    self->next_due = INT64_MAX;
    return self;
}

void
bk_resolve_destroy(bk_resolve_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    bk_resolve_t *self = *self_p;
    zhash_destroy(&self->entries);
    ga_free(self);
    *self_p = NULL;
}

// The entry of `resolver`, created when new; NULL when BK_RESOLVE_MAX are held already.
static s_entry_t *
s_entry(bk_resolve_t *self, const char *resolver)
{
    s_entry_t *e = zhash_lookup(self->entries, resolver);
    if (e || zhash_size(self->entries) >= BK_RESOLVE_MAX) {
        return e;
    }
    e = ga_calloc(1, sizeof *e);
    e->name = ga_strdup(resolver);
    e->parked = zlist_new();
    ga_assert(e->parked);
    ga_assert(zhash_insert(self->entries, resolver, e) == 0);
    zhash_freefn(self->entries, resolver, s_entry_free);
    return e;
}

ga_err_t
bk_resolve_store(bk_resolve_t *self, const char *resolver, const ga_value_t *nodes, int64_t now)
{
    if (nodes == NULL || nodes->type != GA_ARRAY || nodes->len > BK_RESOLVE_NODES_MAX) {
        return GA_EINVAL;
    }
    for (uint32_t i = 0; i < nodes->len; i++) {
        const ga_value_t *v = &nodes->u.items[i];
        if (v->type != GA_STR || v->len == 0 || memchr(v->u.s, '\0', v->len) != NULL) {
            return GA_EINVAL;
        }
    }
    s_entry_t *e = s_entry(self, resolver);
    if (e == NULL) {
        return GA_ETOOBIG;
    }
    s_forget_nodes(e);
    e->nodes = ga_calloc(nodes->len ? nodes->len : 1, sizeof(char *));
    for (uint32_t i = 0; i < nodes->len; i++) {
        e->nodes[i] = ga_strdup(nodes->u.items[i].u.s);
    }
    e->n_nodes = nodes->len;
    e->have = true;
    e->fresh_until = now + self->cache_ms;
    e->failed_until = 0;
    return GA_OK;
}

bool
bk_resolve_cached(bk_resolve_t *self, const char *resolver, int64_t now,
                  const char *const **nodes, size_t *n, bool *fresh)
{
    s_entry_t *e = zhash_lookup(self->entries, resolver);
    if (e == NULL || !e->have) {
        return false;
    }
    *nodes = (const char *const *) e->nodes;
    *n = e->n_nodes;
    *fresh = now < e->fresh_until;
    return true;
}

bool
bk_resolve_allows(bk_resolve_t *self, const char *resolver, const char *node)
{
    s_entry_t *e = zhash_lookup(self->entries, resolver);
    for (size_t i = 0; e && e->have && node && i < e->n_nodes; i++) {
        if (strcmp(e->nodes[i], node) == 0) {
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// The broker's side

static void
s_due(bk_resolve_t *self, int64_t at)
{
    if (at < self->next_due) {
        self->next_due = at;
    }
}

// The resolver failed: logged, its answer forgotten, its parked calls answered on the tick,
// and new calls answered at once for BK_RESOLVE_RETRY_MS.
static void
s_fail(bk_broker_t *broker, s_entry_t *e, int64_t now, const char *why)
{
    GA_WARN("nodes resolver %s failed: %s; the calls it routes get Service unavailable", e->name,
            why);
    if (e->pending) {
        broker->resolve->n_pending--;
    }
    e->pending = 0;
    s_forget_nodes(e);
    e->failed_until = now + BK_RESOLVE_RETRY_MS;
    if (zlist_size(e->parked) > 0) {
        e->settle = true;
        s_due(broker->resolve, now);
    }
}

// Sends the resolver's REQUEST (no arguments) to one of its workers; on failure, s_fail.
static void
s_ask(bk_broker_t *broker, s_entry_t *e, int64_t now)
{
    char service[256];
    const char *dot = strchr(e->name, '.');
    snprintf(service, sizeof service, "%.*s", dot ? (int) (dot - e->name) : 0, e->name);
    const char *request_type = dot ? dot + 1 : "";
    const ga_funcfg_t *rcfg = bk_registry_lookup(broker->registry, service, request_type, NULL);
    if (rcfg == NULL || rcfg->disabled) {
        s_fail(broker, e, now, rcfg ? "the function is disabled" : "no such function registered");
        return;
    }
    if (rcfg->response_type != GA_RESP_SYNC) {
        s_fail(broker, e, now, "a resolver must be a sync function");
        return;
    }
    bk_worker_t *w = bk_registry_pick_at(broker->registry, rcfg, now);
    if (w == NULL) {
        s_fail(broker, e, now, "no live worker serves it");
        return;
    }
    int64_t timeout = rcfg->timeout_ms > 0 ? rcfg->timeout_ms : GA_FUNCFG_TIMEOUT_DEFAULT;
    uint64_t id = ++broker->next_id;
    ga_arena_t *a = broker->arena;
    ga_value_t m = ga_map(a, 5); // no payload: no args
    ga_map_put(&m, a, "id", ga_int((int64_t) id));
    ga_map_put(&m, a, "service", ga_str(rcfg->service));
    ga_map_put(&m, a, "request_type", ga_str(rcfg->request_type));
    ga_map_put(&m, a, "request_id", ga_str("genapi-nodes-resolver"));
    ga_map_put(&m, a, "deadline", ga_int(ga_clock_wall_ms() + timeout));
    bk_batch_close(broker, broker->workers);
    if (ga_proto_send_value(broker->workers, w->id, w->id_len, GA_CMD_REQUEST, &m,
                            &broker->out) != GA_OK) {
        broker->stats.undeliverable++;
        s_fail(broker, e, now, "its worker cannot take the request");
        return;
    }
    e->pending = id;
    broker->resolve->n_pending++;
    e->deadline = now + timeout;
    s_due(broker->resolve, e->deadline);
}

bool
bk_resolve_nodes(bk_broker_t *broker, const char *resolver, uint64_t gw_serial,
                 const ga_proto_msg_t *msg, int64_t now, const char *const **nodes, size_t *n)
{
    bk_resolve_t *self = broker->resolve;
    uint64_t gw_call_id = (uint64_t) ga_map_get_int(&msg->value, "id", 0);
    s_entry_t *e = s_entry(self, resolver);
    if (e == NULL) {
        GA_WARN("nodes resolver %s: %d resolvers are cached already; its calls get Service "
                "unavailable", resolver, BK_RESOLVE_MAX);
        bk_send_error(broker, msg->id, msg->id_len, gw_call_id, GA_EUNAVAIL,
                      "Service unavailable", true);
        return false;
    }
    if (e->have && now >= e->fresh_until && e->pending == 0) {
        s_ask(broker, e, now); // the stale answer serves meanwhile
    }
    if (e->have) {
        *nodes = (const char *const *) e->nodes;
        *n = e->n_nodes;
        return true;
    }
    if (e->pending == 0 && now >= e->failed_until) {
        s_ask(broker, e, now);
    }
    if (e->pending == 0) {
        bk_send_error(broker, msg->id, msg->id_len, gw_call_id, GA_EUNAVAIL,
                      "Service unavailable", true);
        return false;
    }
    if (zlist_size(e->parked) >= BK_RESOLVE_WAIT_MAX) {
        bk_send_error(broker, msg->id, msg->id_len, gw_call_id, GA_EAGAIN,
                      "Service temporarily unavailable", true);
        return false;
    }
    s_parked_t *p = ga_calloc(1, sizeof *p);
    memcpy(p->gw_id, msg->id, msg->id_len);
    p->gw_id_len = msg->id_len;
    p->gw_serial = gw_serial;
    p->gw_call_id = gw_call_id;
    ga_buf_init(&p->body);
    ga_wire_encode(&p->body, &msg->value); // as checked (a cluster rate_limit field removed)
    zmq_msg_init(&p->payload);
    ga_proto_payload_t args = ga_proto_msg_payload(msg);
    if (msg->has_payload && ga_proto_payload_keep(&args, &p->payload) == GA_OK) {
        p->has_payload = true; // a reference to its frame, or a copy of a batch item's bytes
    }
    zlist_append(e->parked, p);
    return false;
}

bool
bk_resolve_on_reply(bk_broker_t *broker, const ga_proto_msg_t *msg)
{
    bk_resolve_t *self = broker->resolve;
    if (self->n_pending == 0) {
        return false; // the usual case: one comparison per REPLY
    }
    int64_t id = ga_map_get_int(&msg->value, "id", 0);
    if (id <= 0) {
        return false;
    }
    s_entry_t *e = NULL;
    for (s_entry_t *x = zhash_first(self->entries); x; x = zhash_next(self->entries)) {
        if (x->pending == (uint64_t) id) {
            e = x;
            break;
        }
    }
    if (e == NULL) {
        return false;
    }
    int64_t now = ga_clock_ms();
    e->pending = 0;
    self->n_pending--;
    const ga_value_t *ok = ga_map_get(&msg->value, "ok");
    if (ok == NULL || ok->type != GA_BOOL || !ok->u.b) {
        const char *error = ga_map_get_str(&msg->value, "error");
        char why[300];
        snprintf(why, sizeof why, "it answered with an error (%s)", error ? error : "?");
        s_fail(broker, e, now, why);
        return true;
    }
    ga_value_t result; // the REPLY's payload frame: the resolver's answer
    if (ga_proto_payload_decode(msg, broker->arena, &result) != GA_OK ||
        bk_resolve_store(self, e->name, &result, now) != GA_OK) {
        s_fail(broker, e, now, "its answer is not a list of node names");
        return true;
    }
    GA_DEBUG("nodes resolver %s: %zu node(s)", e->name, e->n_nodes);
    if (zlist_size(e->parked) > 0) {
        e->settle = true;
        s_due(self, now);
    }
    return true;
}

// Routes (the resolver answered) or answers (it failed) the calls parked on `e`.
static void
s_settle(bk_broker_t *broker, s_entry_t *e)
{
    e->settle = false;
    bool route = e->have;
    s_parked_t *p;
    size_t n = zlist_size(e->parked);
    // Only those parked now: a call routed again parks no more (the answer is fresh).
    for (size_t k = 0; k < n && (p = zlist_pop(e->parked)) != NULL; k++) {
        char key[2 * 255 + 1];
        bk_id_key(key, p->gw_id, p->gw_id_len);
        bk_gateway_t *gw = zhash_lookup(broker->gws, key);
        if (gw == NULL || gw->serial != p->gw_serial) {
            // Its gateway is gone: nobody waits for the answer.
        } else if (!route) {
            bk_send_error(broker, p->gw_id, p->gw_id_len, p->gw_call_id, GA_EUNAVAIL,
                          "Service unavailable", true);
        } else {
            ga_proto_msg_t m;
            memset(&m, 0, sizeof m);
            memcpy(m.id, p->gw_id, p->gw_id_len);
            m.id_len = p->gw_id_len;
            m.cmd = GA_CMD_CALL;
            m.body = p->body; // a view: bk_on_call copies what it keeps
            zmq_msg_init(&m.payload);
            if (p->has_payload) {
                ga_proto_msg_take_payload(&m, &p->payload);
            }
            if (ga_wire_decode(p->body.data, p->body.len, broker->arena, &m.value) == GA_OK) {
                broker->stats.calls--; // counted when it arrived
                bk_on_call(broker, gw, &m);
            }
            zmq_msg_close(&m.payload);
        }
        s_parked_free(&p);
        ga_arena_reset(broker->arena);
    }
}

void
bk_resolve_tick(bk_broker_t *broker, int64_t now)
{
    bk_resolve_t *self = broker->resolve;
    if (now < self->next_due) {
        return;
    }
    self->next_due = INT64_MAX;
    // Collected first: routing a parked call may add an entry.
    zlist_t *due = zlist_new();
    ga_assert(due);
    for (s_entry_t *e = zhash_first(self->entries); e; e = zhash_next(self->entries)) {
        if (e->pending && now >= e->deadline) {
            char why[64];
            snprintf(why, sizeof why, "no answer within its timeout");
            s_fail(broker, e, now, why);
        }
        if (e->pending) {
            s_due(self, e->deadline);
        }
        if (e->settle) {
            zlist_append(due, e);
        }
    }
    for (s_entry_t *e = zlist_first(due); e; e = zlist_next(due)) {
        s_settle(broker, e);
    }
    zlist_destroy(&due);
}

int64_t
bk_resolve_next_due(const bk_broker_t *broker)
{
    return broker->resolve->next_due;
}
