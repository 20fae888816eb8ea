// SPDX-License-Identifier: MIT
// Registry bookkeeping for the broker: the function table, workers by routing id, configs
// waiting to be deleted, and the failed-configs list. Workers are found by a hex rendering of
// their routing id.
#include "bk_registry.h"

#include "ga_clock.h"
#include "ga_functable.h"
#include "ga_mem.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEXKEY_MAX (2 * 255 + 1)

// A refused config, kept for operators.
typedef struct {
    char *service;      // service it claimed
    char *function;     // request_type (and version) it claimed
    char *reason;       // why it was refused
    int64_t at_wall_ms; // when
} failed_t;

struct bk_registry_t {
    ga_functable_t *functions; // every accepted config
    zhash_t *workers;          // hex routing id -> bk_worker_t (owned)
    zhash_t *unoffered;        // function key -> int64_t (owned): since when unoffered, service up
    bool dirty;                // workers or offers changed since the last sweep
    zlist_t *failed;           // failed_t (owned), oldest first, at most BK_FAILED_MAX
};

static void
s_hexkey(char *out, const uint8_t *id, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * len] = '\0';
}

static void
s_worker_free(void *data)
{
    bk_worker_t *w = data;
    zhash_t *offers = w->offers;
    zhash_destroy(&offers);
    ga_free(w->node);
    ga_free(w->service);
    ga_free(w);
}

static void
s_failed_free(void *data)
{
    failed_t *f = data;
    ga_free(f->service);
    ga_free(f->function);
    ga_free(f->reason);
    ga_free(f);
}

bk_registry_t *
bk_registry_new(void)
{
    bk_registry_t *self = ga_calloc(1, sizeof *self);
    self->functions = ga_functable_new();
    self->workers = zhash_new();
    self->unoffered = zhash_new();
    self->failed = zlist_new();
    ga_assert(self->workers && self->unoffered && self->failed);
    return self;
}

void
bk_registry_destroy(bk_registry_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    bk_registry_t *self = *self_p;
    ga_functable_destroy(&self->functions);
    zhash_destroy(&self->workers);
    zhash_destroy(&self->unoffered);
    while (zlist_size(self->failed)) {
        s_failed_free(zlist_pop(self->failed));
    }
    zlist_destroy(&self->failed);
    ga_free(self);
    *self_p = NULL;
}

bk_worker_t *
bk_registry_worker(bk_registry_t *self, const uint8_t *id, size_t id_len)
{
    char key[HEXKEY_MAX];
    s_hexkey(key, id, id_len);
    return zhash_lookup(self->workers, key);
}

static void
s_add_failed(bk_registry_t *self, const char *service, const char *function, const char *reason)
{
    failed_t *f = ga_calloc(1, sizeof *f);
    f->service = ga_strdup(service);
    f->function = ga_strdup(function);
    f->reason = ga_strdup(reason);
    f->at_wall_ms = ga_clock_wall_ms();
    if (zlist_append(self->failed, f) != 0) {
        s_failed_free(f);
        return;
    }
    int64_t cutoff = f->at_wall_ms - BK_FAILED_KEEP_MS;
    failed_t *oldest;
    while ((oldest = zlist_first(self->failed)) != NULL &&
           (zlist_size(self->failed) > BK_FAILED_MAX || oldest->at_wall_ms < cutoff)) {
        s_failed_free(zlist_pop(self->failed));
    }
}

static ga_value_t
s_failure(ga_arena_t *arena, const char *function, const char *reason)
{
    ga_value_t m = ga_map(arena, 2);
    ga_map_put(&m, arena, "function", ga_str_dup(arena, function, strlen(function)));
    ga_map_put(&m, arena, "reason", ga_str_dup(arena, reason, strlen(reason)));
    return m;
}

ga_err_t
bk_registry_register(bk_registry_t *self, const uint8_t *id, size_t id_len,
                     const ga_value_t *body, int64_t expiry, ga_arena_t *arena,
                     ga_value_t *failed, ga_value_t *changed, bk_worker_t **worker, char *err,
                     size_t errlen)
{
    const char *node = ga_map_get_str(body, "node");
    const char *service = ga_map_get_str(body, "service");
    const ga_value_t *functions = ga_map_get(body, "functions");
    if (node == NULL || node[0] == '\0' || service == NULL || service[0] == '\0') {
        snprintf(err, errlen, "register: node and service must be non-empty strings");
        return GA_ECONFIG;
    }
    if (functions == NULL || functions->type != GA_ARRAY) {
        snprintf(err, errlen, "register: functions must be a list of configs");
        return GA_ECONFIG;
    }
    char key[HEXKEY_MAX];
    s_hexkey(key, id, id_len);
    bk_worker_t *w = zhash_lookup(self->workers, key);
    if (w == NULL) {
        w = ga_calloc(1, sizeof *w);
        memcpy(w->id, id, id_len);
        w->id_len = id_len;
        ga_assert(zhash_insert(self->workers, key, w) == 0);
        zhash_freefn(self->workers, key, s_worker_free);
    }
    ga_free(w->node);
    ga_free(w->service);
    w->node = ga_strdup(node);
    w->service = ga_strdup(service);
    w->expiry = expiry;
    zhash_t *offers = w->offers;
    zhash_destroy(&offers);
    offers = zhash_new();
    ga_assert(offers);
    w->offers = offers;

    *failed = ga_array(arena, 0);
    *changed = ga_array(arena, 0);
    for (uint32_t i = 0; i < functions->len; i++) {
        const ga_value_t *fv = &functions->u.items[i];
        char why[256];
        ga_funcfg_t *cfg = NULL;
        ga_err_t rc = ga_funcfg_parse(fv, &cfg, why, sizeof why);
        if (rc == GA_OK && strcmp(cfg->service, service) != 0) {
            snprintf(why, sizeof why, "service: \"%s\" does not match the worker's service \"%s\"",
                     cfg->service, service);
            ga_funcfg_destroy(&cfg);
            rc = GA_ECONFIG;
        }
        if (rc != GA_OK) {
            const char *rt = ga_map_get_str(fv, "request_type");
            const char *name = rt ? rt : "(unnamed)";
            s_add_failed(self, service, name, why);
            ga_array_push(failed, arena, s_failure(arena, name, why));
            continue;
        }
        char fkey[600];
        ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
        zhash_insert(offers, fkey, (void *) "1"); // a duplicate entry in one table is harmless
        ga_value_t source = ga_value_copy(arena, &cfg->source);
        if (ga_functable_put(self->functions, &cfg)) {
            ga_array_push(changed, arena, source);
        }
    }
    w->registered = true;
    self->dirty = true;
    *worker = w;
    return GA_OK;
}

void
bk_registry_remove(bk_registry_t *self, bk_worker_t *worker)
{
    char key[HEXKEY_MAX];
    s_hexkey(key, worker->id, worker->id_len);
    zhash_delete(self->workers, key);
    self->dirty = true;
}

const ga_funcfg_t *
bk_registry_lookup(bk_registry_t *self, const char *service, const char *request_type,
                   const char *version)
{
    return ga_functable_resolve(self->functions, service, request_type, version);
}

bk_worker_t *
bk_registry_pick(bk_registry_t *self, const ga_funcfg_t *cfg)
{
    return bk_registry_pick_at(self, cfg, INT64_MAX);
}

bk_worker_t *
bk_registry_pick_at(bk_registry_t *self, const ga_funcfg_t *cfg, int64_t now)
{
    char fkey[600];
    ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
    bk_worker_t *chosen = NULL;
    unsigned seen = 0;
    // Reservoir sampling: a uniform random choice in one pass, no temporary array.
    for (bk_worker_t *w = zhash_first(self->workers); w; w = zhash_next(self->workers)) {
        if (!w->registered || zhash_lookup(w->offers, fkey) == NULL || w->breaker_until > now) {
            continue;
        }
        if (cfg->n_nodes) {
            bool allowed = false;
            for (uint32_t i = 0; i < cfg->n_nodes && !allowed; i++) {
                allowed = strcmp(cfg->nodes[i], w->node) == 0;
            }
            if (!allowed) {
                continue;
            }
        }
        seen++;
        if ((unsigned) rand() % seen == 0) {
            chosen = w;
        }
    }
    return chosen;
}

// Whether `w` may serve `cfg` (key `fkey`) at `now`.
static bool
s_candidate(const bk_worker_t *w, const ga_funcfg_t *cfg, const char *fkey, int64_t now)
{
    if (!w->registered || zhash_lookup(w->offers, fkey) == NULL || w->breaker_until > now) {
        return false;
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

size_t
bk_registry_candidates(bk_registry_t *self, const ga_funcfg_t *cfg, int64_t now,
                       bk_worker_t ***buf, size_t *cap)
{
    char fkey[600];
    ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
    size_t n = 0;
    for (bk_worker_t *w = zhash_first(self->workers); w; w = zhash_next(self->workers)) {
        if (!s_candidate(w, cfg, fkey, now)) {
            continue;
        }
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *buf = ga_realloc(*buf, sizeof(bk_worker_t *) * *cap);
        }
        (*buf)[n++] = w;
    }
    return n;
}

static void
s_snap_one(const ga_funcfg_t *cfg, void *arg)
{
    void **ctx = arg;
    ga_array_push(ctx[0], ctx[1], ga_value_copy(ctx[1], &cfg->source));
}

ga_value_t
bk_registry_snapshot(bk_registry_t *self, ga_arena_t *arena)
{
    ga_value_t list = ga_array(arena, (uint32_t) ga_functable_size(self->functions));
    void *ctx[2] = {&list, arena};
    ga_functable_each(self->functions, s_snap_one, ctx);
    return list;
}

// One sweep's view: what the registered workers offer, which services have one, and the
// configs to delete.
typedef struct {
    bk_registry_t *self; // registry
    int64_t now;         // sweep time
    int64_t grace_ms;    // how long a config may stay unoffered
    zhash_t *offered;    // function keys some worker offers
    zhash_t *services;   // services with a registered worker
    ga_arena_t *arena;   // for `doomed`
    ga_value_t doomed;   // [{service, request_type, version?}] to delete
} sweep_t;

static void
s_sweep_one(const ga_funcfg_t *cfg, void *arg)
{
    sweep_t *sw = arg;
    char fkey[600];
    ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
    zhash_t *unoffered = sw->self->unoffered;
    if (zhash_lookup(sw->offered, fkey) || !zhash_lookup(sw->services, cfg->service)) {
        zhash_delete(unoffered, fkey); // served, or the whole service is down: it stays
        return;
    }
    int64_t *since = zhash_lookup(unoffered, fkey);
    if (since == NULL) {
        since = ga_malloc(sizeof *since);
        *since = sw->now;
        ga_assert(zhash_insert(unoffered, fkey, since) == 0);
        zhash_freefn(unoffered, fkey, ga_free);
        return;
    }
    if (sw->now - *since < sw->grace_ms) {
        return;
    }
    ga_arena_t *a = sw->arena;
    ga_value_t m = ga_map(a, 3);
    ga_map_put(&m, a, "service", ga_str_dup(a, cfg->service, strlen(cfg->service)));
    ga_map_put(&m, a, "request_type",
               ga_str_dup(a, cfg->request_type, strlen(cfg->request_type)));
    if (cfg->version) {
        ga_map_put(&m, a, "version", ga_str_dup(a, cfg->version, strlen(cfg->version)));
    }
    ga_array_push(&sw->doomed, a, m);
}

size_t
bk_registry_sweep(bk_registry_t *self, int64_t now, int64_t grace_ms, ga_arena_t *arena,
                  ga_value_t *removed)
{
    *removed = ga_array(arena, 0);
    if (!self->dirty && zhash_size(self->unoffered) == 0) {
        return 0;
    }
    self->dirty = false;
    sweep_t sw = {.self = self, .now = now, .grace_ms = grace_ms, .offered = zhash_new(),
                  .services = zhash_new(), .arena = arena, .doomed = ga_array(arena, 0)};
    ga_assert(sw.offered && sw.services);
    for (bk_worker_t *w = zhash_first(self->workers); w; w = zhash_next(self->workers)) {
        if (!w->registered) {
            continue;
        }
        zhash_update(sw.services, w->service, (void *) "1");
        for (void *v = zhash_first(w->offers); v; v = zhash_next(w->offers)) {
            zhash_update(sw.offered, zhash_cursor(w->offers), (void *) "1");
        }
    }
    ga_functable_each(self->functions, s_sweep_one, &sw);
    for (uint32_t i = 0; i < sw.doomed.len; i++) {
        const ga_value_t *k = &sw.doomed.u.items[i];
        const char *service = ga_map_get_str(k, "service");
        const char *request_type = ga_map_get_str(k, "request_type");
        const char *version = ga_map_get_str(k, "version");
        char fkey[600];
        ga_functable_key(fkey, sizeof fkey, service, request_type, version);
        zhash_delete(self->unoffered, fkey);
        ga_functable_remove(self->functions, service, request_type, version);
    }
    zhash_destroy(&sw.offered);
    zhash_destroy(&sw.services);
    *removed = sw.doomed;
    return sw.doomed.len;
}

void
bk_registry_each_worker(bk_registry_t *self, void (*fn)(bk_worker_t *w, void *arg), void *arg)
{
    for (bk_worker_t *w = zhash_first(self->workers); w; w = zhash_next(self->workers)) {
        fn(w, arg);
    }
}

size_t
bk_registry_expired(bk_registry_t *self, int64_t now, bk_worker_t **out, size_t max)
{
    size_t n = 0;
    for (bk_worker_t *w = zhash_first(self->workers); w && n < max; w = zhash_next(self->workers)) {
        if (w->expiry < now) {
            out[n++] = w;
        }
    }
    return n;
}

size_t
bk_registry_function_count(const bk_registry_t *self)
{
    return ga_functable_size(self->functions);
}

size_t
bk_registry_worker_count(const bk_registry_t *self)
{
    return zhash_size(self->workers);
}

size_t
bk_registry_failed_count(const bk_registry_t *self)
{
    return zlist_size(self->failed);
}

ga_value_t
bk_registry_failed_list(bk_registry_t *self, ga_arena_t *arena)
{
    ga_value_t list = ga_array(arena, (uint32_t) zlist_size(self->failed));
    for (failed_t *f = zlist_first(self->failed); f; f = zlist_next(self->failed)) {
        ga_value_t m = ga_map(arena, 4);
        ga_map_put(&m, arena, "service", ga_str_dup(arena, f->service, strlen(f->service)));
        ga_map_put(&m, arena, "function", ga_str_dup(arena, f->function, strlen(f->function)));
        ga_map_put(&m, arena, "reason", ga_str_dup(arena, f->reason, strlen(f->reason)));
        ga_map_put(&m, arena, "at_ms", ga_int(f->at_wall_ms));
        ga_array_push(&list, arena, m);
    }
    return list;
}
