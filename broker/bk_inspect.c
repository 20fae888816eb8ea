// SPDX-License-Identifier: MIT
// The broker's read-only admin views for genapi-ctl (docs/operations.md, "genapi-ctl"):
// pool_status (per worker: its pool's threads, busy, idle and queued as its HEARTBEAT last
// said, the calls in flight to it, its circuit), pushed_services (each service's last
// processed table: config_version, functions taken and refused, workers) and call_flow (whether
// a call of a function would pass, which version it gets and where it would go now, without
// making it). Nothing here changes routing state.
#include "bk_internal.h"

#include "bk_registry.h"
#include "bk_resolve.h"
#include "bk_select.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_mem.h"

#include <string.h>

void
bk_inspect_on_heartbeat(bk_worker_t *w, const ga_value_t *body)
{
    int64_t threads = ga_map_get_int(body, "threads", -1);
    if (threads < 0) {
        return; // a worker library that does not report its pool
    }
    w->pool_threads = threads;
    w->pool_busy = ga_map_get_int(body, "busy", 0);
    w->pool_queued = ga_map_get_int(body, "queued", 0);
    w->pool_queue_max = ga_map_get_int(body, "queue_max", 0);
    w->pool_at = ga_clock_ms();
}

typedef struct {
    ga_value_t *list;      // the reply's workers
    ga_arena_t *a;         // its arena
    int64_t now;           // monotonic ms
    const char *service;   // only this service's workers, or NULL
} pool_ctx_t;

static void
s_pool_worker(bk_worker_t *w, void *arg)
{
    pool_ctx_t *c = arg;
    if (c->service && (w->service == NULL || strcmp(w->service, c->service) != 0)) {
        return;
    }
    ga_arena_t *a = c->a;
    ga_value_t m = ga_map(a, 12);
    ga_map_put(&m, a, "node", ga_str(w->node ? w->node : ""));
    ga_map_put(&m, a, "service", ga_str(w->service ? w->service : ""));
    if (w->pool_at > 0) {
        int64_t busy = w->pool_busy < w->pool_threads ? w->pool_busy : w->pool_threads;
        ga_map_put(&m, a, "threads", ga_int(w->pool_threads));
        ga_map_put(&m, a, "busy", ga_int(busy));
        ga_map_put(&m, a, "idle", ga_int(w->pool_threads - busy));
        ga_map_put(&m, a, "queued", ga_int(w->pool_queued));
        ga_map_put(&m, a, "queue_max", ga_int(w->pool_queue_max));
        ga_map_put(&m, a, "reported_ms_ago", ga_int(c->now - w->pool_at));
    } else {
        ga_map_put(&m, a, "pool", ga_str("not reported yet (figures come with its HEARTBEAT)"));
    }
    ga_map_put(&m, a, "inflight", ga_int((int64_t) w->inflight));
    ga_map_put(&m, a, "failures", ga_int(w->failures));
    bool open = w->breaker_until > c->now;
    ga_map_put(&m, a, "circuit", ga_str(open ? "open" : "closed"));
    if (open) {
        ga_map_put(&m, a, "circuit_open_ms", ga_int(w->breaker_until - c->now));
    }
    ga_array_push(c->list, a, m);
}

// The config's fields that decide a call's path, as genapi-ctl call-flow shows them.
static ga_value_t
s_flow_config(const ga_funcfg_t *cfg, ga_arena_t *a)
{
    ga_value_t m = ga_map(a, 12);
    ga_map_put(&m, a, "version", cfg->version ? ga_str(cfg->version) : ga_nil());
    ga_map_put(&m, a, "response_type", ga_str(ga_resp_name(cfg->response_type)));
    ga_map_put(&m, a, "timeout_ms", ga_int(cfg->timeout_ms));
    ga_map_put(&m, a, "choose_node_mode",
               ga_str(cfg->choose_node_mode ? cfg->choose_node_mode : "random"));
    ga_map_put(&m, a, "check_permission",
               ga_str(cfg->check_permission ? cfg->check_permission : "false"));
    const struct {
        const char *key;
        const char *value;
    } opt[] = {{"permission_callback", cfg->permission_callback},
               {"retry", cfg->retry},
               {"before_execute", cfg->before_execute},
               {"after_execute", cfg->after_execute},
               {"nodes_resolver", cfg->nodes_resolver}};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        if (opt[i].value) {
            ga_map_put(&m, a, opt[i].key, ga_str(opt[i].value));
        }
    }
    if (cfg->n_nodes > 0) {
        ga_value_t nodes = ga_array(a, cfg->n_nodes);
        for (uint32_t i = 0; i < cfg->n_nodes; i++) {
            ga_array_push(&nodes, a, ga_str(cfg->nodes[i]));
        }
        ga_map_put(&m, a, "nodes", nodes);
    }
    return m;
}

// How the mode picks among the candidates, for the modes whose pick depends on the call.
static const char *
s_mode_note(const ga_funcfg_t *cfg)
{
    switch (cfg->node_mode) {
    case GA_NODE_HASH: return "by the call's request_id (rendezvous hash over the candidates)";
    case GA_NODE_HASH_ARG: return "by the call's routing argument (rendezvous hash)";
    case GA_NODE_ROUND_ROBIN: return "the next in the rotation over the candidates";
    case GA_NODE_STICKY: return "the node remembered for the call's key, else at random";
    case GA_NODE_LEAST_LOADED: return "the candidate with the fewest calls in flight";
    default: return "at random among the candidates";
    }
}

// call_flow: whether a call of (service, request_type[, version]) would pass, and where to.
static void
s_call_flow(bk_broker_t *self, const ga_value_t *req, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const char *service = ga_map_get_str(req, "service");
    const char *request_type = ga_map_get_str(req, "request_type");
    const char *version = ga_map_get_str(req, "version");
    if (service == NULL || request_type == NULL || !service[0] || !request_type[0]) {
        ga_map_put(reply, a, "ok", ga_bool(false));
        ga_map_put(reply, a, "error", ga_str("service and request_type required"));
        return;
    }
    version = version && version[0] ? version : NULL;
    int64_t now = ga_clock_ms();
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "service", ga_str(service));
    ga_map_put(reply, a, "request_type", ga_str(request_type));
    ga_map_put(reply, a, "requested_version", version ? ga_str(version) : ga_nil());
    // The same lookup as a CALL (bk_on_call): exactly the version named, else the one a call
    // without a version gets.
    const ga_funcfg_t *cfg = bk_registry_lookup(self->registry, service, request_type, version);
    const char *refusal = NULL;
    if (cfg == NULL) {
        const char *state = bk_registry_override_state(self->registry, service, request_type,
                                                       version);
        refusal = "Unknown function";
        if (state && strcmp(state, "deleted") == 0) {
            ga_map_put(reply, a, "operator", ga_str(state));
        }
    } else {
        const char *state = bk_registry_override_state(self->registry, cfg->service,
                                                       cfg->request_type, cfg->version);
        if (state) {
            ga_map_put(reply, a, "operator", ga_str(state));
        }
        ga_map_put(reply, a, "config", s_flow_config(cfg, a));
        ga_map_put(reply, a, "enabled", ga_bool(!cfg->disabled));
        if (cfg->disabled) {
            refusal = "Function disabled";
        }
    }
    if (cfg) {
        bk_worker_t **buf = NULL;
        size_t cap = 0;
        size_t n = bk_registry_candidates(self->registry, cfg, now, &buf, &cap);
        ga_value_t route = ga_map(a, 6);
        ga_value_t cands = ga_array(a, (uint32_t) (n ? n : 1));
        for (size_t i = 0; i < n; i++) {
            if (cfg->nodes_resolver && !bk_resolve_allows(self->resolve, cfg->nodes_resolver,
                                                          buf[i]->node)) {
                continue;
            }
            ga_value_t c = ga_map(a, 3);
            ga_map_put(&c, a, "node", ga_str(buf[i]->node));
            ga_map_put(&c, a, "inflight", ga_int((int64_t) buf[i]->inflight));
            ga_map_put(&c, a, "failures", ga_int(buf[i]->failures));
            ga_array_push(&cands, a, c);
        }
        ga_free(buf);
        ga_map_put(&route, a, "candidates", cands);
        if (cfg->nodes_resolver) {
            const char *const *nodes;
            size_t n_nodes;
            bool fresh = false;
            bool cached = bk_resolve_cached(self->resolve, cfg->nodes_resolver, now, &nodes,
                                            &n_nodes, &fresh);
            ga_map_put(&route, a, "resolver",
                       ga_str(!cached  ? "no answer yet: the first call asks it"
                              : fresh ? "answer cached: candidates are on its nodes"
                                      : "answer stale: the next call asks again"));
        }
        if (cands.len == 0) {
            ga_map_put(&route, a, "would_pick", ga_nil());
            refusal = refusal ? refusal : "Service unavailable";
        } else if (cfg->node_mode == GA_NODE_LEAST_LOADED || cands.len == 1) {
            // Deterministic now (least_loaded picks by in-flight counts; one candidate is it).
            const ga_value_t *best = &cands.u.items[0];
            for (uint32_t i = 1; cfg->node_mode == GA_NODE_LEAST_LOADED && i < cands.len; i++) {
                if (ga_map_get_int(&cands.u.items[i], "inflight", 0) <
                    ga_map_get_int(best, "inflight", 0)) {
                    best = &cands.u.items[i];
                }
            }
            ga_map_put(&route, a, "would_pick", *ga_map_get(best, "node"));
        } else {
            ga_map_put(&route, a, "would_pick", ga_nil());
        }
        ga_map_put(&route, a, "how", ga_str(s_mode_note(cfg)));
        ga_map_put(reply, a, "route", route);
    }
    ga_map_put(reply, a, "would_pass", ga_bool(refusal == NULL));
    if (refusal) {
        ga_map_put(reply, a, "refusal", ga_str(refusal));
    }
}

bool
bk_inspect_admin(bk_broker_t *self, const char *op, const ga_value_t *req, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    if (strcmp(op, "pool_status") == 0) {
        ga_value_t workers = ga_array(a, 4);
        const char *service = ga_map_get_str(req, "service");
        pool_ctx_t c = {.list = &workers, .a = a, .now = ga_clock_ms(),
                        .service = service && service[0] ? service : NULL};
        bk_registry_each_worker(self->registry, s_pool_worker, &c);
        ga_map_put(reply, a, "ok", ga_bool(true));
        ga_map_put(reply, a, "workers", workers);
        return true;
    }
    if (strcmp(op, "pushed_services") == 0) {
        ga_map_put(reply, a, "ok", ga_bool(true));
        ga_map_put(reply, a, "services", bk_registry_pushes(self->registry, a));
        return true;
    }
    if (strcmp(op, "call_flow") == 0) {
        s_call_flow(self, req, reply);
        return true;
    }
    return false;
}
