// SPDX-License-Identifier: MIT
// Registry bookkeeping for the broker: the function table, workers by routing id, configs
// waiting to be deleted, the failed-configs list, each service's last processed push (its
// config_version) and the operators' overrides. Workers are found by a hex rendering of their
// routing id.
#include "bk_registry.h"

#include "ga_clock.h"
#include "ga_functable.h"
#include "ga_mem.h"
#include "ga_telemetry.h"
#include "ga_wire.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEXKEY_MAX (2 * 255 + 1)
#define KEY_MAX_REG 600 // a function key (ga_functable_key)

// A refused config, kept for operators.
typedef struct {
    char *service;      // service it claimed
    char *function;     // request_type (and version) it claimed
    char *reason;       // why it was refused
    int64_t at_wall_ms; // when
} failed_t;

// An operator's override of one config key (docs/operations.md, "Versions"). It outlives every
// worker registration: the workers' config for the key is kept in `pushed`, and what the table
// holds is derived from both (s_apply).
typedef struct {
    char *service;       // key: service
    char *request_type;  // key: request_type
    char *version;       // key: version (NULL: unversioned)
    bool deleted;        // absent from the table until an operator enables or adds it
    bool disabled;       // served as disabled ("Function disabled")
    ga_funcfg_t *added;  // the operator's own config (add), preferred to `pushed`; or NULL
    ga_funcfg_t *pushed; // the config the workers last pushed for this key; or NULL
} override_t;

// A service's last processed push: what a push with the same config_version is skipped for.
typedef struct {
    char *config_version; // as pushed (NULL: the push named none)
    zhash_t *keys;        // function keys accepted from it (values unused)
    ga_arena_t *arena;    // holds `refused`
    ga_value_t refused;   // [{function, reason}] refused from it
    int64_t at_ms;        // wall-clock ms it was processed
} push_t;

#define LOOKUP_NAME_MAX 128 // longer names are looked up every time

struct bk_registry_t {
    ga_functable_t *functions; // every accepted config
    zhash_t *workers;          // hex routing id -> bk_worker_t (owned)
    bk_worker_t **all;         // the same workers, for walking them (zhash_first/next visit
    size_t n_all;              // every bucket); worker->slot is each one's place
    size_t cap_all;            // slots allocated in `all`
    zhash_t *unoffered;        // function key -> int64_t (owned): since when unoffered, service up
    bool dirty;                // workers or offers changed since the last sweep
    zlist_t *failed;           // failed_t (owned), oldest first, at most BK_FAILED_MAX
    zhash_t *overrides;        // function key -> override_t (owned), at most BK_OVERRIDES_MAX
    zhash_t *pushes;           // service -> push_t (owned)
    // The registry snapshot's size: the MessagePack bytes of every config's source in
    // `functions` (kept by s_table_put and s_table_remove), bounded by BK_SNAPSHOT_MAX.
    size_t snap_bytes;
    ga_buf_t scratch;          // s_source_bytes's encoding buffer
    // The last answer of bk_registry_lookup and the key of the last config whose candidates
    // were collected, each kept while ga_functable_changes stays `changes` (a config is freed
    // only by a change, so its pointer is not reused meanwhile): calls mostly ask for the
    // same function again.
    struct {
        bool valid;                  // the fields below hold an answer
        uint64_t changes;            // ga_functable_changes when it was looked up
        bool has_version;            // a version was asked for
        char service[LOOKUP_NAME_MAX];      // the names asked for
        char request_type[LOOKUP_NAME_MAX];
        char version[LOOKUP_NAME_MAX];
        const ga_funcfg_t *cfg;      // the answer (NULL: none)
    } last;
    bk_worker_t *last_worker;  // the worker bk_registry_worker found last (NULL: none; cleared
                               // when it is removed): most messages come from it again
    struct {
        const ga_funcfg_t *cfg; // the config (NULL: none yet)
        uint64_t changes;       // ga_functable_changes when the key was made
        char key[600];          // ga_functable_key of it
    } last_key;
};

// The MessagePack size of a config source (what it adds to a snapshot).
static size_t
s_source_bytes(bk_registry_t *self, const ga_value_t *source)
{
    ga_buf_reset(&self->scratch);
    ga_wire_encode(&self->scratch, source);
    return self->scratch.len;
}

// ga_functable_put, keeping snap_bytes. True when the table changed.
static bool
s_table_put(bk_registry_t *self, ga_funcfg_t **cfg_p)
{
    ga_funcfg_t *cfg = *cfg_p;
    const ga_funcfg_t *old =
        ga_functable_get(self->functions, cfg->service, cfg->request_type, cfg->version);
    size_t old_bytes = old ? s_source_bytes(self, &old->source) : 0;
    size_t new_bytes = s_source_bytes(self, &cfg->source);
    if (!ga_functable_put(self->functions, cfg_p)) {
        return false;
    }
    self->snap_bytes = self->snap_bytes - old_bytes + new_bytes;
    return true;
}

// ga_functable_remove, keeping snap_bytes. True when there was such a config.
static bool
s_table_remove(bk_registry_t *self, const char *service, const char *request_type,
               const char *version)
{
    const ga_funcfg_t *old = ga_functable_get(self->functions, service, request_type, version);
    if (old) {
        self->snap_bytes -= s_source_bytes(self, &old->source);
    }
    return ga_functable_remove(self->functions, service, request_type, version);
}

// Refuses a change that would make the snapshot larger than BK_SNAPSHOT_MAX: `projected` bytes.
static ga_err_t
s_registry_full(size_t projected, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "registry full: %s would make the registry snapshot %zu bytes, over the %u bytes "
             "a message may carry (docs/operations.md, \"Limits\")",
             what, projected, (unsigned) BK_SNAPSHOT_MAX);
    return GA_ETOOBIG;
}

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

static void
s_override_free(void *data)
{
    override_t *ov = data;
    ga_free(ov->service);
    ga_free(ov->request_type);
    ga_free(ov->version);
    ga_funcfg_destroy(&ov->added);
    ga_funcfg_destroy(&ov->pushed);
    ga_free(ov);
}

static void
s_push_free(void *data)
{
    push_t *p = data;
    ga_free(p->config_version);
    zhash_destroy(&p->keys);
    ga_arena_destroy(&p->arena);
    ga_free(p);
}

bk_registry_t *
bk_registry_new(void)
{
    bk_registry_t *self = ga_calloc(1, sizeof *self);
    self->functions = ga_functable_new();
    self->workers = zhash_new();
    self->unoffered = zhash_new();
    self->failed = zlist_new();
    self->overrides = zhash_new();
    self->pushes = zhash_new();
    ga_buf_init(&self->scratch);
    ga_assert(self->workers && self->unoffered && self->failed && self->overrides &&
              self->pushes);
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
    ga_free(self->all);
    ga_buf_fini(&self->scratch);
    zhash_destroy(&self->unoffered);
    zhash_destroy(&self->overrides);
    zhash_destroy(&self->pushes);
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
    bk_worker_t *w = self->last_worker;
    if (w && w->id_len == id_len && memcmp(w->id, id, id_len) == 0) {
        return w;
    }
    char key[HEXKEY_MAX];
    s_hexkey(key, id, id_len);
    w = zhash_lookup(self->workers, key);
    if (w) {
        self->last_worker = w;
    }
    return w;
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

// A {service, request_type, version?} key as UPDATE's `removed` lists it (in `a`).
static ga_value_t
s_key_value(ga_arena_t *a, const char *service, const char *request_type, const char *version)
{
    ga_value_t m = ga_map(a, 3);
    ga_map_put(&m, a, "service", ga_str_dup(a, service, strlen(service)));
    ga_map_put(&m, a, "request_type", ga_str_dup(a, request_type, strlen(request_type)));
    if (version) {
        ga_map_put(&m, a, "version", ga_str_dup(a, version, strlen(version)));
    }
    return m;
}

// Splits a function key (ga_functable_key) into its parts, each at most KEY_PART_MAX bytes;
// `*version` is NULL for the unversioned key.
#define KEY_PART_MAX 600
static void
s_key_split(const char *key, char *service, char *request_type, char *version_buf,
            const char **version)
{
    size_t a = strcspn(key, "\x1f");
    const char *rest = key[a] ? key + a + 1 : key + a;
    size_t b = strcspn(rest, "\x1f");
    snprintf(service, KEY_PART_MAX, "%.*s", (int) a, key);
    snprintf(request_type, KEY_PART_MAX, "%.*s", (int) b, rest);
    snprintf(version_buf, KEY_PART_MAX, "%s", rest[b] ? rest + b + 1 : "");
    *version = version_buf[0] ? version_buf : NULL;
}

// A new config parsed from `base`'s source, marked disabled when `disable`.
static ga_funcfg_t *
s_config_copy(const ga_funcfg_t *base, bool disable)
{
    ga_arena_t *tmp = ga_arena_new(1024);
    ga_value_t src = base->source;
    if (disable) {
        src = ga_map(tmp, base->source.len + 1);
        for (uint32_t i = 0; i < base->source.len; i++) {
            const ga_pair_t *p = &base->source.u.pairs[i];
            if (strcmp(p->key, "disabled") != 0) {
                ga_map_put(&src, tmp, p->key, p->value);
            }
        }
        ga_map_put(&src, tmp, "disabled", ga_bool(true));
    }
    ga_funcfg_t *cfg = NULL;
    char why[256];
    ga_err_t rc = ga_funcfg_parse(&src, &cfg, why, sizeof why);
    ga_assert(rc == GA_OK); // it parsed before, and "disabled": true is valid
    ga_arena_destroy(&tmp);
    return cfg;
}

// Makes the table's entry for `ov`'s key what the override says: absent when deleted (or when
// neither an operator nor a worker gave a config), else the operator's config or else the
// pushed one, disabled when the operator disabled it. The change, if any, is appended to
// `*changed` or `*removed` (either may be NULL).
static void
s_apply(bk_registry_t *self, override_t *ov, ga_arena_t *arena, ga_value_t *changed,
        ga_value_t *removed)
{
    const ga_funcfg_t *base = ov->added ? ov->added : ov->pushed;
    if (base == NULL || ov->deleted) {
        if (s_table_remove(self, ov->service, ov->request_type, ov->version)) {
            char fkey[KEY_MAX_REG];
            ga_functable_key(fkey, sizeof fkey, ov->service, ov->request_type, ov->version);
            zhash_delete(self->unoffered, fkey);
            if (removed) {
                ga_array_push(removed, arena,
                              s_key_value(arena, ov->service, ov->request_type, ov->version));
            }
        }
        return;
    }
    ga_funcfg_t *cfg = s_config_copy(base, ov->disabled && !base->disabled);
    ga_value_t source = changed ? ga_value_copy(arena, &cfg->source) : ga_nil();
    if (s_table_put(self, &cfg) && changed) {
        ga_array_push(changed, arena, source);
    }
}

// Whether every config accepted from `push` is still known (in the table, or governed by an
// operator's override): a push of the same version may then be skipped.
static bool
s_push_intact(bk_registry_t *self, push_t *push)
{
    char svc[KEY_PART_MAX], rt[KEY_PART_MAX], vbuf[KEY_PART_MAX];
    for (void *v = zhash_first(push->keys); v; v = zhash_next(push->keys)) {
        const char *key = zhash_cursor(push->keys);
        const char *version;
        s_key_split(key, svc, rt, vbuf, &version);
        if (zhash_lookup(self->overrides, key) == NULL &&
            ga_functable_get(self->functions, svc, rt, version) == NULL) {
            return false;
        }
    }
    return true;
}

ga_err_t
bk_registry_register(bk_registry_t *self, const uint8_t *id, size_t id_len,
                     const ga_value_t *body, int64_t expiry, ga_arena_t *arena,
                     ga_value_t *failed, ga_value_t *changed, bk_worker_t **worker, bool *skipped,
                     char *err, size_t errlen)
{
    const char *node = ga_map_get_str(body, "node");
    const char *service = ga_map_get_str(body, "service");
    const ga_value_t *functions = ga_map_get(body, "functions");
    *skipped = false;
    if (node == NULL || node[0] == '\0' || service == NULL || service[0] == '\0') {
        snprintf(err, errlen, "register: node and service must be non-empty strings");
        return GA_ECONFIG;
    }
    if (functions == NULL || functions->type != GA_ARRAY) {
        snprintf(err, errlen, "register: functions must be a list of configs");
        return GA_ECONFIG;
    }
    // The same config_version as the service's last processed push is skipped unless forced
    // (docs/protocol.md, "Registration"): the worker offers what that push gave.
    const char *config_version = ga_map_get_str(body, "config_version");
    const ga_value_t *force = ga_map_get(body, "force");
    push_t *last = zhash_lookup(self->pushes, service);
    bool skip = (force == NULL || force->type != GA_BOOL || !force->u.b) && last &&
                config_version && last->config_version &&
                strcmp(last->config_version, config_version) == 0 && s_push_intact(self, last);
    // Otherwise each config is parsed first, and the whole table refused, before anything
    // changes, when it would make the snapshot too large for a message (docs/protocol.md,
    // "Registration").
    ga_funcfg_t **cfgs = NULL;
    char(*whys)[256] = NULL;
    if (!skip && functions->len > 0) {
        cfgs = ga_calloc(functions->len, sizeof *cfgs);
        whys = ga_calloc(functions->len, sizeof *whys);
        size_t projected = self->snap_bytes;
        for (uint32_t i = 0; i < functions->len; i++) {
            if (ga_funcfg_parse(&functions->u.items[i], &cfgs[i], whys[i], sizeof whys[i]) !=
                GA_OK) {
                continue;
            }
            const ga_funcfg_t *cfg = cfgs[i];
            if (strcmp(cfg->service, service) != 0) {
                continue; // refused below
            }
            const ga_funcfg_t *old =
                ga_functable_get(self->functions, cfg->service, cfg->request_type, cfg->version);
            size_t old_bytes = old ? s_source_bytes(self, &old->source) : 0;
            char fkey[KEY_MAX_REG];
            ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
            // An operator's disable adds `"disabled": true` to what is pushed.
            bool overridden = zhash_lookup(self->overrides, fkey) != NULL;
            projected += s_source_bytes(self, &cfg->source) + (overridden ? BK_SNAPSHOT_SLACK : 0);
            projected = projected > old_bytes ? projected - old_bytes : 0;
        }
        if (projected > BK_SNAPSHOT_MAX) {
            for (uint32_t i = 0; i < functions->len; i++) {
                ga_funcfg_destroy(&cfgs[i]);
            }
            ga_free(cfgs);
            ga_free(whys);
            char what[300];
            snprintf(what, sizeof what, "the %u function(s) of %s", functions->len, service);
            return s_registry_full(projected, what, err, errlen);
        }
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
        if (self->n_all == self->cap_all) {
            self->cap_all = self->cap_all ? self->cap_all * 2 : 16;
            self->all = ga_realloc(self->all, sizeof *self->all * self->cap_all);
        }
        w->slot = self->n_all;
        self->all[self->n_all++] = w;
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
    if (skip) {
        for (void *v = zhash_first(last->keys); v; v = zhash_next(last->keys)) {
            const char *fkey = zhash_cursor(last->keys);
            zhash_insert(offers, fkey, (void *) "1");
            override_t *ov = zhash_lookup(self->overrides, fkey);
            if (ov) {
                s_apply(self, ov, arena, changed, NULL); // back, if the sweep had taken it
            }
        }
        for (uint32_t i = 0; i < last->refused.len; i++) {
            ga_array_push(failed, arena, ga_value_copy(arena, &last->refused.u.items[i]));
        }
        *skipped = true;
        w->registered = true;
        self->dirty = true;
        *worker = w;
        return GA_OK;
    }
    push_t *push = ga_calloc(1, sizeof *push);
    push->config_version = config_version ? ga_strdup(config_version) : NULL;
    push->at_ms = ga_clock_wall_ms();
    push->keys = zhash_new();
    ga_assert(push->keys);
    push->arena = ga_arena_new(1024);
    push->refused = ga_array(push->arena, 0);
    for (uint32_t i = 0; i < functions->len; i++) {
        const ga_value_t *fv = &functions->u.items[i];
        char *why = whys[i];
        const size_t why_len = sizeof whys[i];
        ga_funcfg_t *cfg = cfgs[i]; // parsed above; NULL with the reason in why when refused
        cfgs[i] = NULL;
        ga_err_t rc = cfg ? GA_OK : GA_ECONFIG;
        if (rc == GA_OK && strcmp(cfg->service, service) != 0) {
            snprintf(why, why_len, "service: \"%s\" does not match the worker's service \"%s\"",
                     cfg->service, service);
            ga_funcfg_destroy(&cfg);
            rc = GA_ECONFIG;
        }
        if (rc != GA_OK) {
            const char *rt = ga_map_get_str(fv, "request_type");
            const char *name = rt ? rt : "(unnamed)";
            s_add_failed(self, service, name, why);
            ga_array_push(failed, arena, s_failure(arena, name, why));
            ga_array_push(&push->refused, push->arena, s_failure(push->arena, name, why));
            continue;
        }
        char fkey[600];
        ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
        zhash_insert(offers, fkey, (void *) "1"); // a duplicate entry in one table is harmless
        zhash_insert(push->keys, fkey, (void *) "1");
        override_t *ov = zhash_lookup(self->overrides, fkey);
        if (ov) {
            // An operator governs this key: the pushed config is kept under the override.
            ga_funcfg_destroy(&ov->pushed);
            ov->pushed = cfg;
            s_apply(self, ov, arena, changed, NULL);
            continue;
        }
        ga_value_t source = ga_value_copy(arena, &cfg->source);
        if (s_table_put(self, &cfg)) {
            ga_array_push(changed, arena, source);
        }
    }
    ga_free(cfgs);
    ga_free(whys);
    zhash_update(self->pushes, service, push); // frees the previous record
    zhash_freefn(self->pushes, service, s_push_free);
    w->registered = true;
    self->dirty = true;
    *worker = w;
    GA_EMIT(GA_EV_CONFIG_PUSH, .service = service, .node = node, .count = functions->len);
    return GA_OK;
}

// bk_registry_each_public_ref's walk: the registry, the service and the callback.
typedef struct {
    bk_registry_t *self;
    const char *service;
    void (*fn)(const ga_funcfg_t *from, const char *field, const ga_funcfg_t *to, void *arg);
    void *arg;
} public_refs_t;

static void
s_public_ref_one(const ga_funcfg_t *cfg, void *arg)
{
    public_refs_t *pr = arg;
    const char *names[] = {cfg->before_execute, cfg->after_execute, cfg->permission_callback,
                           cfg->nodes_resolver};
    const char *fields[] = {"before_execute", "after_execute", "permission_callback", "nodes"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *dot = names[i] ? strchr(names[i], '.') : NULL;
        if (dot == NULL || dot == names[i] || (size_t) (dot - names[i]) >= KEY_MAX_REG) {
            continue; // an in-process hook or callback, or no reference
        }
        char svc[KEY_MAX_REG];
        snprintf(svc, sizeof svc, "%.*s", (int) (dot - names[i]), names[i]);
        if (strcmp(cfg->service, pr->service) != 0 && strcmp(svc, pr->service) != 0) {
            continue;
        }
        const ga_funcfg_t *to = ga_functable_resolve(pr->self->functions, svc, dot + 1, NULL);
        if (to && !to->internal) {
            pr->fn(cfg, fields[i], to, pr->arg);
        }
    }
}

void
bk_registry_each_public_ref(bk_registry_t *self, const char *service,
                            void (*fn)(const ga_funcfg_t *from, const char *field,
                                       const ga_funcfg_t *to, void *arg),
                            void *arg)
{
    public_refs_t pr = {.self = self, .service = service, .fn = fn, .arg = arg};
    ga_functable_each(self->functions, s_public_ref_one, &pr);
}

void
bk_registry_remove(bk_registry_t *self, bk_worker_t *worker)
{
    char key[HEXKEY_MAX];
    s_hexkey(key, worker->id, worker->id_len);
    ga_assert(worker->slot < self->n_all && self->all[worker->slot] == worker);
    bk_worker_t *last = self->all[--self->n_all];
    self->all[worker->slot] = last;
    last->slot = worker->slot;
    if (self->last_worker == worker) {
        self->last_worker = NULL;
    }
    zhash_delete(self->workers, key);
    self->dirty = true;
}

const ga_funcfg_t *
bk_registry_lookup(bk_registry_t *self, const char *service, const char *request_type,
                   const char *version)
{
    uint64_t changes = ga_functable_changes(self->functions);
    if (self->last.valid && self->last.changes == changes && service && request_type &&
        self->last.has_version == (version != NULL) &&
        strcmp(self->last.request_type, request_type) == 0 &&
        strcmp(self->last.service, service) == 0 &&
        (version == NULL || strcmp(self->last.version, version) == 0)) {
        return self->last.cfg;
    }
    const ga_funcfg_t *cfg = ga_functable_resolve(self->functions, service, request_type, version);
    self->last.valid = service && request_type &&
                       strlen(service) < LOOKUP_NAME_MAX &&
                       strlen(request_type) < LOOKUP_NAME_MAX &&
                       (version == NULL || strlen(version) < LOOKUP_NAME_MAX);
    if (self->last.valid) {
        self->last.changes = changes;
        self->last.has_version = version != NULL;
        strcpy(self->last.service, service);
        strcpy(self->last.request_type, request_type);
        strcpy(self->last.version, version ? version : "");
        self->last.cfg = cfg;
    }
    return cfg;
}

// ---------------------------------------------------------------------------------------------
// Operators' overrides and the push record

// The override of a key, created (holding a copy of the table's config as `pushed`) when
// `create`; NULL when absent and not created, or when the table is full of overrides.
static override_t *
s_override(bk_registry_t *self, const char *service, const char *request_type,
           const char *version, bool create)
{
    char fkey[KEY_MAX_REG];
    ga_functable_key(fkey, sizeof fkey, service, request_type, version);
    override_t *ov = zhash_lookup(self->overrides, fkey);
    if (ov || !create || zhash_size(self->overrides) >= BK_OVERRIDES_MAX) {
        return ov;
    }
    ov = ga_calloc(1, sizeof *ov);
    ov->service = ga_strdup(service);
    ov->request_type = ga_strdup(request_type);
    ov->version = version ? ga_strdup(version) : NULL;
    const ga_funcfg_t *cur = ga_functable_get(self->functions, service, request_type, version);
    ov->pushed = cur ? s_config_copy(cur, false) : NULL;
    ga_assert(zhash_insert(self->overrides, fkey, ov) == 0);
    zhash_freefn(self->overrides, fkey, s_override_free);
    return ov;
}

// Forgets an override that no longer changes anything (neither flag, no operator config).
static void
s_override_tidy(bk_registry_t *self, override_t *ov)
{
    if (!ov->deleted && !ov->disabled && ov->added == NULL) {
        char fkey[KEY_MAX_REG];
        ga_functable_key(fkey, sizeof fkey, ov->service, ov->request_type, ov->version);
        zhash_delete(self->overrides, fkey); // frees ov
    }
}

// "0.0.0" names the unversioned config, as in requests.
static const char *
s_norm_version(const char *version)
{
    return version && version[0] && strcmp(version, "0.0.0") != 0 ? version : NULL;
}

static ga_err_t
s_not_found(char *err, size_t errlen, const char *service, const char *request_type,
            const char *version, bool deleted)
{
    snprintf(err, errlen, "no config %s.%s%s%s%s", service, request_type, version ? " " : "",
             version ? version : " (unversioned)",
             deleted ? ": deleted by an operator (enable or add-config restores it)" : "");
    return GA_ENOTFOUND;
}

static ga_err_t
s_full(char *err, size_t errlen)
{
    snprintf(err, errlen, "too many operator overrides (at most %d)", BK_OVERRIDES_MAX);
    return GA_ETOOBIG;
}

const ga_funcfg_t *
bk_registry_get(bk_registry_t *self, const char *service, const char *request_type,
                const char *version)
{
    return ga_functable_get(self->functions, service, request_type, s_norm_version(version));
}

const char *
bk_registry_override_state(bk_registry_t *self, const char *service, const char *request_type,
                           const char *version)
{
    char fkey[KEY_MAX_REG];
    ga_functable_key(fkey, sizeof fkey, service, request_type, s_norm_version(version));
    const override_t *ov = zhash_lookup(self->overrides, fkey);
    return ov == NULL ? NULL : ov->deleted ? "deleted" : ov->disabled ? "disabled"
                           : ov->added ? "added" : NULL;
}

ga_err_t
bk_registry_disable(bk_registry_t *self, const char *service, const char *request_type,
                    const char *version, ga_arena_t *arena, ga_value_t *changed, char *err,
                    size_t errlen)
{
    version = s_norm_version(version);
    *changed = ga_array(arena, 0);
    override_t *ov = s_override(self, service, request_type, version, false);
    if (ga_functable_get(self->functions, service, request_type, version) == NULL) {
        return s_not_found(err, errlen, service, request_type, version, ov && ov->deleted);
    }
    if ((ov = s_override(self, service, request_type, version, true)) == NULL) {
        return s_full(err, errlen);
    }
    ov->disabled = true;
    s_apply(self, ov, arena, changed, NULL);
    GA_EMIT(GA_EV_CONFIG_DISABLE, .service = service, .request_type = request_type, .version = version, .count = changed->len);
    return GA_OK;
}

ga_err_t
bk_registry_enable(bk_registry_t *self, const char *service, const char *request_type,
                   const char *version, ga_arena_t *arena, ga_value_t *changed, char *err,
                   size_t errlen)
{
    version = s_norm_version(version);
    *changed = ga_array(arena, 0);
    override_t *ov = s_override(self, service, request_type, version, false);
    if (ov == NULL) {
        if (ga_functable_get(self->functions, service, request_type, version) == NULL) {
            return s_not_found(err, errlen, service, request_type, version, false);
        }
        return GA_OK; // nothing an operator did to lift
    }
    if (ov->added == NULL && ov->pushed == NULL) {
        return s_not_found(err, errlen, service, request_type, version, false);
    }
    ov->disabled = false;
    ov->deleted = false;
    s_apply(self, ov, arena, changed, NULL);
    s_override_tidy(self, ov);
    self->dirty = true; // back in the table: the sweep decides whether anyone serves it
    GA_EMIT(GA_EV_CONFIG_ENABLE, .service = service, .request_type = request_type, .version = version, .count = changed->len);
    return GA_OK;
}

ga_err_t
bk_registry_delete(bk_registry_t *self, const char *service, const char *request_type,
                   const char *version, ga_arena_t *arena, ga_value_t *removed, char *err,
                   size_t errlen)
{
    version = s_norm_version(version);
    *removed = ga_array(arena, 0);
    override_t *ov = s_override(self, service, request_type, version, false);
    if (ga_functable_get(self->functions, service, request_type, version) == NULL) {
        return s_not_found(err, errlen, service, request_type, version, ov && ov->deleted);
    }
    if ((ov = s_override(self, service, request_type, version, true)) == NULL) {
        return s_full(err, errlen);
    }
    ov->deleted = true;
    ov->disabled = false;
    ga_funcfg_destroy(&ov->added); // deleted means the operator's own config too
    s_apply(self, ov, arena, NULL, removed);
    GA_EMIT(GA_EV_CONFIG_DELETE, .service = service, .request_type = request_type, .version = version, .count = removed->len);
    return GA_OK;
}

// Whether a registered worker of `cfg`'s service offers its key.
static bool
s_offered(bk_registry_t *self, const ga_funcfg_t *cfg)
{
    char fkey[KEY_MAX_REG];
    ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
    for (size_t slot = 0; slot < self->n_all; slot++) {
        bk_worker_t *w = self->all[slot];
        if (w->registered && zhash_lookup(w->offers, fkey)) {
            return true;
        }
    }
    return false;
}

ga_err_t
bk_registry_add(bk_registry_t *self, const ga_value_t *source, ga_arena_t *arena,
                ga_value_t *changed, char *err, size_t errlen)
{
    *changed = ga_array(arena, 0);
    ga_funcfg_t *cfg = NULL;
    char why[256];
    if (ga_funcfg_parse(source, &cfg, why, sizeof why) != GA_OK) {
        snprintf(err, errlen, "%s", why);
        return GA_ECONFIG;
    }
    if (!s_offered(self, cfg)) {
        snprintf(err, errlen,
                 "no registered worker of %s offers %s%s%s: a config names a function its "
                 "workers have",
                 cfg->service, cfg->request_type, cfg->version ? " " : " (unversioned)",
                 cfg->version ? cfg->version : "");
        ga_funcfg_destroy(&cfg);
        return GA_ENOTFOUND;
    }
    const ga_funcfg_t *old =
        ga_functable_get(self->functions, cfg->service, cfg->request_type, cfg->version);
    size_t old_bytes = old ? s_source_bytes(self, &old->source) : 0;
    size_t projected = self->snap_bytes + s_source_bytes(self, &cfg->source);
    projected = projected > old_bytes ? projected - old_bytes : 0;
    if (projected > BK_SNAPSHOT_MAX) {
        ga_funcfg_destroy(&cfg);
        return s_registry_full(projected, "this config", err, errlen);
    }
    override_t *ov = s_override(self, cfg->service, cfg->request_type, cfg->version, true);
    if (ov == NULL) {
        ga_funcfg_destroy(&cfg);
        return s_full(err, errlen);
    }
    ga_funcfg_destroy(&ov->added);
    ov->added = cfg;
    ov->deleted = false;
    ov->disabled = false;
    s_apply(self, ov, arena, changed, NULL);
    self->dirty = true;
    GA_EMIT(GA_EV_CONFIG_ADD, .service = cfg->service, .request_type = cfg->request_type, .version = cfg->version);
    return GA_OK;
}

void
bk_registry_record_failed(bk_registry_t *self, const char *service, const char *function,
                          const char *reason)
{
    s_add_failed(self, service, function, reason);
}

// bk_registry_clear's walk of the table: the configs of one service (or all) to remove.
typedef struct {
    const char *service; // NULL: every service
    ga_arena_t *arena;   // for `doomed`
    ga_value_t doomed;   // [{service, request_type, version?}]
} clear_t;

static void
s_clear_one(const ga_funcfg_t *cfg, void *arg)
{
    clear_t *c = arg;
    if (c->service == NULL || strcmp(cfg->service, c->service) == 0) {
        ga_array_push(&c->doomed, c->arena,
                      s_key_value(c->arena, cfg->service, cfg->request_type, cfg->version));
    }
}

// Deletes from `hash` every entry whose key s_key_split gives `service` (every entry when
// NULL); `by_service` when the keys are service names themselves.
static void
s_delete_keys_of(zhash_t *hash, const char *service, bool by_service)
{
    zlist_t *gone = zlist_new();
    ga_assert(gone);
    for (void *v = zhash_first(hash); v; v = zhash_next(hash)) {
        const char *key = zhash_cursor(hash);
        bool match = service == NULL;
        if (!match && by_service) {
            match = strcmp(key, service) == 0;
        } else if (!match) {
            char svc[KEY_PART_MAX], rt[KEY_PART_MAX], vbuf[KEY_PART_MAX];
            const char *version;
            s_key_split(key, svc, rt, vbuf, &version);
            match = strcmp(svc, service) == 0;
        }
        if (match) {
            zlist_append(gone, (void *) key);
        }
    }
    for (const char *key = zlist_first(gone); key; key = zlist_next(gone)) {
        zhash_delete(hash, key);
    }
    zlist_destroy(&gone);
}

size_t
bk_registry_clear(bk_registry_t *self, const char *service, ga_arena_t *arena,
                  ga_value_t *removed)
{
    clear_t c = {.service = service, .arena = arena, .doomed = ga_array(arena, 0)};
    ga_functable_each(self->functions, s_clear_one, &c);
    for (uint32_t i = 0; i < c.doomed.len; i++) {
        const ga_value_t *k = &c.doomed.u.items[i];
        const char *svc = ga_map_get_str(k, "service");
        const char *request_type = ga_map_get_str(k, "request_type");
        const char *version = ga_map_get_str(k, "version");
        char fkey[KEY_MAX_REG];
        ga_functable_key(fkey, sizeof fkey, svc, request_type, version);
        zhash_delete(self->unoffered, fkey);
        s_table_remove(self, svc, request_type, version);
    }
    s_delete_keys_of(self->overrides, service, false);
    s_delete_keys_of(self->pushes, service, true);
    self->dirty = true;
    *removed = c.doomed;
    GA_EMIT(GA_EV_CONFIG_CLEAR, .service = service, .count = c.doomed.len);
    return c.doomed.len;
}

// One function's versions for bk_registry_versions, sortable.
typedef struct {
    const char *service;      // borrowed from the table or an override
    const char *request_type; // likewise
    const char *version;      // likewise; NULL: unversioned
    bool enabled;             // callable (not disabled, not deleted)
    const char *operator;     // override state, or NULL
} version_row_t;

static int
s_row_cmp(const void *pa, const void *pb)
{
    const version_row_t *a = pa;
    const version_row_t *b = pb;
    int c = strcmp(a->service, b->service);
    if (c == 0) {
        c = strcmp(a->request_type, b->request_type);
    }
    if (c == 0 && (a->version == NULL || b->version == NULL)) {
        c = (a->version != NULL) - (b->version != NULL); // unversioned first
    } else if (c == 0) {
        c = ga_version_cmp(a->version, b->version);
    }
    return c;
}

typedef struct {
    bk_registry_t *self;  // registry
    const char *service;  // only this service (NULL: all)
    version_row_t *rows;  // collected rows
    size_t n;             // rows used
    size_t cap;           // rows allocated
} version_rows_t;

static void
s_row_add(version_rows_t *vr, const char *service, const char *request_type,
          const char *version, bool enabled, const char *state)
{
    if (vr->service && strcmp(service, vr->service) != 0) {
        return;
    }
    if (vr->n == vr->cap) {
        vr->cap = vr->cap ? 2 * vr->cap : 16;
        vr->rows = ga_realloc(vr->rows, vr->cap * sizeof *vr->rows);
    }
    vr->rows[vr->n++] = (version_row_t){service, request_type, version, enabled, state};
}

static void
s_row_from_table(const ga_funcfg_t *cfg, void *arg)
{
    version_rows_t *vr = arg;
    s_row_add(vr, cfg->service, cfg->request_type, cfg->version, !cfg->disabled,
              bk_registry_override_state(vr->self, cfg->service, cfg->request_type,
                                         cfg->version));
}

ga_value_t
bk_registry_versions(bk_registry_t *self, const char *service, ga_arena_t *a)
{
    version_rows_t vr = {.self = self, .service = service};
    ga_functable_each(self->functions, s_row_from_table, &vr);
    for (override_t *ov = zhash_first(self->overrides); ov; ov = zhash_next(self->overrides)) {
        if (ov->deleted) {
            s_row_add(&vr, ov->service, ov->request_type, ov->version, false, "deleted");
        }
    }
    if (vr.n > 1) {
        qsort(vr.rows, vr.n, sizeof *vr.rows, s_row_cmp);
    }
    // {service: {request_type: [{version, enabled, operator?}]}}, built row by row in order.
    ga_value_t out = ga_map(a, 4);
    ga_value_t *svc_map = NULL;
    ga_value_t *fn_list = NULL;
    for (size_t i = 0; i < vr.n; i++) {
        const version_row_t *r = &vr.rows[i];
        if (i == 0 || strcmp(r->service, vr.rows[i - 1].service) != 0) {
            ga_map_put(&out, a, ga_str_dup(a, r->service, strlen(r->service)).u.s, ga_map(a, 4));
            svc_map = &out.u.pairs[out.len - 1].value;
            fn_list = NULL;
        }
        if (fn_list == NULL || strcmp(r->request_type, vr.rows[i - 1].request_type) != 0) {
            ga_map_put(svc_map, a, ga_str_dup(a, r->request_type, strlen(r->request_type)).u.s,
                       ga_array(a, 2));
            fn_list = &svc_map->u.pairs[svc_map->len - 1].value;
        }
        ga_value_t m = ga_map(a, 3);
        ga_map_put(&m, a, "version",
                   r->version ? ga_str_dup(a, r->version, strlen(r->version)) : ga_nil());
        ga_map_put(&m, a, "enabled", ga_bool(r->enabled));
        if (r->operator) {
            ga_map_put(&m, a, "operator", ga_str(r->operator));
        }
        ga_array_push(fn_list, a, m);
    }
    ga_free(vr.rows);
    return out;
}

bk_verify_t
bk_registry_verify(bk_registry_t *self, const char *service, const char *config_version,
                   const char **stored)
{
    const push_t *push = zhash_lookup(self->pushes, service);
    *stored = push ? push->config_version : NULL;
    if (push == NULL) {
        return BK_VERIFY_NOT_FOUND;
    }
    return push->config_version && strcmp(push->config_version, config_version) == 0
               ? BK_VERIFY_MATCHED
               : BK_VERIFY_MISMATCH;
}

static int
s_push_cmp(const void *pa, const void *pb)
{
    const char *x = ga_map_get_str(pa, "service");
    const char *y = ga_map_get_str(pb, "service");
    return strcmp(x ? x : "", y ? y : "");
}

ga_value_t
bk_registry_pushes(bk_registry_t *self, ga_arena_t *arena)
{
    ga_value_t out = ga_array(arena, (uint32_t) zhash_size(self->pushes) + 1);
    for (push_t *p = zhash_first(self->pushes); p; p = zhash_next(self->pushes)) {
        const char *service = zhash_cursor(self->pushes);
        int64_t workers = 0;
        for (size_t i = 0; i < self->n_all; i++) {
            const bk_worker_t *w = self->all[i];
            workers += w->registered && w->service && strcmp(w->service, service) == 0;
        }
        ga_value_t m = ga_map(arena, 6);
        ga_map_put(&m, arena, "service", ga_str(ga_arena_strdup(arena, service)));
        ga_map_put(&m, arena, "config_version",
                   p->config_version ? ga_str(ga_arena_strdup(arena, p->config_version))
                                     : ga_nil());
        ga_map_put(&m, arena, "functions", ga_int((int64_t) zhash_size(p->keys)));
        ga_map_put(&m, arena, "refused", ga_int((int64_t) p->refused.len));
        ga_map_put(&m, arena, "workers", ga_int(workers));
        ga_map_put(&m, arena, "at_ms", ga_int(p->at_ms));
        ga_array_push(&out, arena, m);
    }
    if (out.len > 1) {
        qsort(out.u.items, out.len, sizeof out.u.items[0], s_push_cmp);
    }
    return out;
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
    for (size_t slot = 0; slot < self->n_all; slot++) {
        bk_worker_t *w = self->all[slot];
        if (!w->registered || w->draining || zhash_lookup(w->offers, fkey) == NULL ||
            w->breaker_until > now) {
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
    if (!w->registered || w->draining || zhash_lookup(w->offers, fkey) == NULL ||
            w->breaker_until > now) {
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
    uint64_t changes = ga_functable_changes(self->functions);
    if (self->last_key.cfg != cfg || self->last_key.changes != changes) {
        ga_functable_key(self->last_key.key, sizeof self->last_key.key, cfg->service,
                         cfg->request_type, cfg->version);
        self->last_key.cfg = cfg;
        self->last_key.changes = changes;
    }
    const char *fkey = self->last_key.key;
    size_t n = 0;
    for (size_t slot = 0; slot < self->n_all; slot++) {
        bk_worker_t *w = self->all[slot];
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
    for (size_t slot = 0; slot < self->n_all; slot++) {
        bk_worker_t *w = self->all[slot];
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
        s_table_remove(self, service, request_type, version);
    }
    zhash_destroy(&sw.offered);
    zhash_destroy(&sw.services);
    *removed = sw.doomed;
    return sw.doomed.len;
}

void
bk_registry_each_worker(bk_registry_t *self, void (*fn)(bk_worker_t *w, void *arg), void *arg)
{
    for (size_t slot = 0; slot < self->n_all; slot++) {
        bk_worker_t *w = self->all[slot];
        fn(w, arg);
    }
}

size_t
bk_registry_expired(bk_registry_t *self, int64_t now, bk_worker_t **out, size_t max)
{
    size_t n = 0;
    for (size_t slot = 0; slot < self->n_all && n < max; slot++) {
        bk_worker_t *w = self->all[slot];
        if (w->expiry < now) {
            out[n++] = w;
        }
    }
    return n;
}

size_t
bk_registry_snapshot_bytes(const bk_registry_t *self)
{
    return self->snap_bytes;
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
