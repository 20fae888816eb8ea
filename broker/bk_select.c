// SPDX-License-Identifier: MIT
// Node selection for the broker (see bk_select.h and docs/protocol.md, "Node selection").
// The candidate list is a buffer kept across calls, so a pick allocates nothing; a sticky
// entry is allocated once, when its key is first seen.
#include "bk_select.h"

#include "ga_arena.h"
#include "ga_file.h"
#include "ga_functable.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RR_MAX        4096 // round-robin counters kept (all are dropped past this: they restart)
#define STATE_VERSION 1    // the state file's format

// One sticky mapping: a key (hash of function and routing key) -> node name. Linked in use
// order, least recently used first.
typedef struct sticky_t sticky_t;
struct sticky_t {
    char hex[17];      // the key, 16 hex digits (the zhash key)
    char *node;        // node name (owned)
    int64_t last_used; // monotonic ms
    int64_t saved_use; // last_used as of the last save (INT64_MIN: never saved)
    sticky_t *prev;    // less recently used
    sticky_t *next;    // more recently used
};

struct bk_select_t {
    bk_worker_t **cand; // candidates of the current pick (reused)
    size_t cap;         // room in cand
    size_t last_n;      // candidates the last pick chose among
    zhash_t *rr;        // function key -> uint64_t counter (owned)
    zhash_t *sticky;    // hex key -> sticky_t (owned by the list; the hash does not free)
    sticky_t *oldest;   // least recently used
    sticky_t *newest;   // most recently used
    bool dirty;         // changed since the last save
};

// ---------------------------------------------------------------------------------------------
// Hashing

static uint64_t
s_fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (uint8_t) *s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

// splitmix64's finalizer: spreads every input bit over the output.
static uint64_t
s_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

// Whether `a` should be preferred to `b` when both run the same node: the one heard from last
// (a restarted worker's old process lingers until found silent).
static bool
s_fresher(const bk_worker_t *a, const bk_worker_t *b)
{
    return a->expiry > b->expiry;
}

// Rendezvous hashing: the candidate whose node name scores highest with `key`. The score
// depends on the key and the node name only, so adding or removing another node never moves
// a key whose node stays.
static bk_worker_t *
s_rendezvous(bk_worker_t **cand, size_t n, uint64_t key)
{
    bk_worker_t *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; i < n; i++) {
        bk_worker_t *w = cand[i];
        uint64_t score = s_mix(key ^ s_mix(s_fnv(FNV_OFFSET, w->node)));
        if (best == NULL || score > best_score ||
            (score == best_score && strcmp(w->node, best->node) < 0) ||
            (score == best_score && strcmp(w->node, best->node) == 0 && s_fresher(w, best))) {
            best = w;
            best_score = score;
        }
    }
    return best;
}

static bk_worker_t *
s_random(bk_worker_t **cand, size_t n)
{
    return cand[(size_t) rand() % n];
}

// Fewest calls in flight; ties at random (reservoir sampling among the tied).
static bk_worker_t *
s_least_loaded(bk_worker_t **cand, size_t n)
{
    bk_worker_t *best = NULL;
    unsigned ties = 0;
    for (size_t i = 0; i < n; i++) {
        bk_worker_t *w = cand[i];
        if (best == NULL || w->inflight < best->inflight) {
            best = w;
            ties = 1;
        } else if (w->inflight == best->inflight && (unsigned) rand() % ++ties == 0) {
            best = w;
        }
    }
    return best;
}

static int
s_by_node(const void *a, const void *b)
{
    const bk_worker_t *x = *(bk_worker_t *const *) a;
    const bk_worker_t *y = *(bk_worker_t *const *) b;
    int c = strcmp(x->node, y->node);
    if (c != 0) {
        return c;
    }
    c = x->id_len < y->id_len ? -1 : x->id_len > y->id_len;
    return c ? c : memcmp(x->id, y->id, x->id_len);
}

// The next candidate in node-name order, by a counter of the function's own.
static bk_worker_t *
s_round_robin(bk_select_t *self, const ga_funcfg_t *cfg, bk_worker_t **cand, size_t n)
{
    char fkey[600];
    ga_functable_key(fkey, sizeof fkey, cfg->service, cfg->request_type, cfg->version);
    uint64_t *counter = zhash_lookup(self->rr, fkey);
    if (counter == NULL) {
        if (zhash_size(self->rr) >= RR_MAX) {
            zhash_destroy(&self->rr);
            self->rr = zhash_new();
            ga_assert(self->rr);
        }
        counter = ga_calloc(1, sizeof *counter);
        ga_assert(zhash_insert(self->rr, fkey, counter) == 0);
        zhash_freefn(self->rr, fkey, ga_free);
    }
    qsort(cand, n, sizeof cand[0], s_by_node);
    return cand[(*counter)++ % n];
}

// ---------------------------------------------------------------------------------------------
// Sticky mapping

static void
s_unlink(bk_select_t *self, sticky_t *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        self->oldest = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        self->newest = e->prev;
    }
    e->prev = e->next = NULL;
}

static void
s_append(bk_select_t *self, sticky_t *e)
{
    e->prev = self->newest;
    e->next = NULL;
    if (self->newest) {
        self->newest->next = e;
    } else {
        self->oldest = e;
    }
    self->newest = e;
}

static void
s_forget(bk_select_t *self, sticky_t *e)
{
    s_unlink(self, e);
    zhash_delete(self->sticky, e->hex);
    ga_free(e->node);
    ga_free(e);
    self->dirty = true;
}

// Adds an entry used at `last_used`, kept in use order; evicts the least recently used one
// when the table is full.
static sticky_t *
s_add(bk_select_t *self, const char *hex, const char *node, int64_t last_used)
{
    if (zhash_size(self->sticky) >= BK_STICKY_MAX && self->oldest) {
        s_forget(self, self->oldest);
    }
    sticky_t *e = ga_calloc(1, sizeof *e);
    snprintf(e->hex, sizeof e->hex, "%s", hex);
    e->node = ga_strdup(node);
    e->last_used = last_used;
    e->saved_use = INT64_MIN;
    ga_assert(zhash_insert(self->sticky, e->hex, e) == 0);
    // Keep use order: walk back from the newest (entries loaded from a file come unordered).
    sticky_t *after = self->newest;
    while (after && after->last_used > last_used) {
        after = after->prev;
    }
    if (after == self->newest) {
        s_append(self, e);
    } else {
        e->prev = after;
        e->next = after ? after->next : self->oldest;
        if (after) {
            after->next = e;
        } else {
            self->oldest = e;
        }
        e->next->prev = e;
    }
    self->dirty = true;
    return e;
}

// The sticky key of (function, routing key): the function's service and request_type (every
// version shares the mapping) and the key's value, hashed.
static void
s_sticky_hex(const ga_funcfg_t *cfg, const char *routing_key, char hex[17])
{
    uint64_t h = s_fnv(FNV_OFFSET, cfg->service);
    h = s_fnv(h ^ 0xff, cfg->request_type);
    h = s_fnv(h ^ 0xfe, routing_key);
    snprintf(hex, 17, "%016" PRIx64, h);
}

static sticky_t *
s_sticky_get(const bk_select_t *self, const char *hex, int64_t now)
{
    sticky_t *e = zhash_lookup(self->sticky, hex);
    return e && now - e->last_used < BK_STICKY_IDLE_MS ? e : NULL;
}

static bk_worker_t *
s_sticky(bk_select_t *self, const ga_funcfg_t *cfg, const char *routing_key, bk_worker_t **cand,
         size_t n, int64_t now)
{
    char hex[17];
    s_sticky_hex(cfg, routing_key, hex);
    uint64_t key = strtoull(hex, NULL, 16);
    sticky_t *e = zhash_lookup(self->sticky, hex);
    if (e && now - e->last_used >= BK_STICKY_IDLE_MS) {
        s_forget(self, e); // idle for an hour: the next use maps the key afresh
        e = NULL;
    }
    if (e) {
        bk_worker_t *found = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(cand[i]->node, e->node) == 0 &&
                (found == NULL || s_fresher(cand[i], found))) {
                found = cand[i];
            }
        }
        if (found == NULL) {
            // Its node is away (restarting, or its circuit is open): this call goes elsewhere,
            // the mapping stays for when it is back (and ages: an hour away forgets it).
            return s_rendezvous(cand, n, key);
        }
        e->last_used = now;
        s_unlink(self, e);
        s_append(self, e);
        if (e->saved_use == INT64_MIN || now - e->saved_use >= BK_STICKY_TOUCH_MS) {
            self->dirty = true;
        }
        return found;
    }
    bk_worker_t *w = s_rendezvous(cand, n, key);
    s_add(self, hex, w->node, now);
    return w;
}

// ---------------------------------------------------------------------------------------------
// API

bk_select_t *
bk_select_new(void)
{
    bk_select_t *self = ga_calloc(1, sizeof *self);
    self->rr = zhash_new();
    self->sticky = zhash_new();
    ga_assert(self->rr && self->sticky);
    return self;
}

void
bk_select_destroy(bk_select_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    bk_select_t *self = *self_p;
    while (self->oldest) {
        sticky_t *e = self->oldest;
        self->oldest = e->next;
        ga_free(e->node);
        ga_free(e);
    }
    zhash_destroy(&self->sticky);
    zhash_destroy(&self->rr);
    ga_free(self->cand);
    ga_free(self);
    *self_p = NULL;
}

bk_worker_t *
bk_select_pick(bk_select_t *self, bk_registry_t *registry, const ga_funcfg_t *cfg,
               const char *request_id, const char *routing_key, int64_t now)
{
    return bk_select_pick_in(self, registry, cfg, request_id, routing_key, now, NULL, 0);
}

// Keeps the candidates on one of `nodes`; returns how many are left.
static size_t
s_keep_nodes(bk_worker_t **cand, size_t n, const char *const *nodes, size_t n_nodes)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n_nodes; k++) {
            if (cand[i]->node && strcmp(cand[i]->node, nodes[k]) == 0) {
                cand[kept++] = cand[i];
                break;
            }
        }
    }
    return kept;
}

bk_worker_t *
bk_select_pick_in(bk_select_t *self, bk_registry_t *registry, const ga_funcfg_t *cfg,
                  const char *request_id, const char *routing_key, int64_t now,
                  const char *const *nodes, size_t n_nodes)
{
    size_t n = bk_registry_candidates(registry, cfg, now, &self->cand, &self->cap);
    if (nodes) {
        n = s_keep_nodes(self->cand, n, nodes, n_nodes);
    }
    self->last_n = n;
    if (n == 0) {
        return NULL;
    }
    switch (cfg->node_mode) {
    case GA_NODE_HASH:
        return request_id ? s_rendezvous(self->cand, n, s_mix(s_fnv(FNV_OFFSET, request_id)))
                          : s_random(self->cand, n);
    case GA_NODE_HASH_ARG:
        return routing_key ? s_rendezvous(self->cand, n, s_mix(s_fnv(FNV_OFFSET, routing_key)))
                           : s_random(self->cand, n);
    case GA_NODE_ROUND_ROBIN:
        return s_round_robin(self, cfg, self->cand, n);
    case GA_NODE_STICKY:
        return routing_key ? s_sticky(self, cfg, routing_key, self->cand, n, now)
                           : s_random(self->cand, n);
    case GA_NODE_LEAST_LOADED:
        return s_least_loaded(self->cand, n);
    case GA_NODE_RANDOM:
    default:
        return s_random(self->cand, n);
    }
}

size_t
bk_select_last_candidates(const bk_select_t *self)
{
    return self->last_n;
}

size_t
bk_select_expire(bk_select_t *self, int64_t now)
{
    size_t n = 0;
    while (self->oldest && now - self->oldest->last_used >= BK_STICKY_IDLE_MS) {
        s_forget(self, self->oldest);
        n++;
    }
    return n;
}

size_t
bk_select_sticky_count(const bk_select_t *self)
{
    return zhash_size(self->sticky);
}

const char *
bk_select_sticky_node(const bk_select_t *self, const ga_funcfg_t *cfg, const char *routing_key,
                      int64_t now)
{
    char hex[17];
    s_sticky_hex(cfg, routing_key, hex);
    sticky_t *e = s_sticky_get(self, hex, now);
    return e ? e->node : NULL;
}

bool
bk_select_dirty(const bk_select_t *self)
{
    return self->dirty;
}

// ---------------------------------------------------------------------------------------------
// State file: {"genapi_sticky": 1, "saved_at_ms": WALL, "entries": [{"key": HEX, "node": NAME,
// "idle_ms": N}, ...]} (docs/configuration.md, "state_file"). Keys are hashes: no argument value reaches the disk.

__attribute__((format(printf, 3, 4))) static ga_err_t
s_corrupt(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return GA_ECONFIG;
}

static bool
s_is_hex16(const char *s)
{
    if (s == NULL || strlen(s) != 16) {
        return false;
    }
    for (int i = 0; i < 16; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

ga_err_t
bk_select_load(bk_select_t *self, const char *path, int64_t now, int64_t wall_now, char *err,
               size_t errlen)
{
    char *text = NULL;
    size_t size = 0;
    char why_read[200];
    ga_err_t read_rc = ga_file_read(path, BK_STATE_FILE_MAX, &text, &size, why_read,
                                    sizeof why_read);
    if (read_rc == GA_ENOTFOUND) {
        return GA_OK; // first start: nothing remembered yet
    }
    if (read_rc == GA_ETOOBIG) {
        return s_corrupt(err, errlen, "state_file: %s is larger than %u bytes", path,
                         BK_STATE_FILE_MAX);
    }
    if (read_rc != GA_OK) {
        snprintf(err, errlen, "state_file: cannot read %s: %s", path, why_read);
        return GA_EIO;
    }
    ga_arena_t *a = ga_arena_new(size + 4096);
    ga_value_t doc;
    char why[200];
    ga_err_t rc = GA_OK;
    if (ga_json_decode(text, size, a, &doc, why, sizeof why) != GA_OK) {
        rc = s_corrupt(err, errlen, "state_file: %s is not valid JSON (%s)", path, why);
        goto out;
    }
    const ga_value_t *entries = ga_map_get(&doc, "entries");
    if (doc.type != GA_MAP || ga_map_get_int(&doc, "genapi_sticky", 0) != STATE_VERSION ||
        entries == NULL || entries->type != GA_ARRAY) {
        rc = s_corrupt(err, errlen,
                       "state_file: %s is not a genapi sticky-routing state file (want "
                       "{\"genapi_sticky\": %d, \"entries\": [...]})",
                       path, STATE_VERSION);
        goto out;
    }
    // The time the broker was down counts as idle time.
    int64_t saved_at = ga_map_get_int(&doc, "saved_at_ms", wall_now);
    int64_t down = saved_at > 0 && saved_at < wall_now ? wall_now - saved_at : 0;
    for (uint32_t i = 0; i < entries->len; i++) {
        const ga_value_t *e = &entries->u.items[i];
        const char *key = e->type == GA_MAP ? ga_map_get_str(e, "key") : NULL;
        const char *node = e->type == GA_MAP ? ga_map_get_str(e, "node") : NULL;
        int64_t idle = e->type == GA_MAP ? ga_map_get_int(e, "idle_ms", -1) : -1;
        if (!s_is_hex16(key) || node == NULL || node[0] == '\0' || strlen(node) > 255 ||
            idle < 0) {
            rc = s_corrupt(err, errlen,
                           "state_file: %s: entry %u is not {key: 16 hex digits, node: a name, "
                           "idle_ms: >= 0}",
                           path, i);
            goto out;
        }
        if (zhash_lookup(self->sticky, key)) {
            rc = s_corrupt(err, errlen, "state_file: %s: entry %u repeats key %s", path, i, key);
            goto out;
        }
        if (idle >= BK_STICKY_IDLE_MS || down >= BK_STICKY_IDLE_MS ||
            idle + down >= BK_STICKY_IDLE_MS) {
            continue; // expired while the broker was down
        }
        idle += down;
        sticky_t *s = s_add(self, key, node, now - idle);
        s->saved_use = s->last_used;
    }
    self->dirty = false;
out:
    if (rc != GA_OK) {
        // Nothing half-loaded stays.
        while (self->oldest) {
            s_forget(self, self->oldest);
        }
        self->dirty = false;
    }
    ga_arena_destroy(&a);
    ga_free(text);
    return rc;
}

ga_err_t
bk_select_save(bk_select_t *self, const char *path, int64_t now, int64_t wall_now, char *err,
               size_t errlen)
{
    ga_buf_t out;
    ga_buf_init(&out);
    char line[400];
    snprintf(line, sizeof line, "{\"genapi_sticky\":%d,\"saved_at_ms\":%" PRId64 ",\"entries\":[",
             STATE_VERSION, wall_now);
    ga_buf_append_str(&out, line);
    for (sticky_t *e = self->oldest; e; e = e->next) {
        int64_t idle = now - e->last_used;
        if (idle >= BK_STICKY_IDLE_MS) {
            continue;
        }
        snprintf(line, sizeof line, "%s\n{\"key\":\"%s\",\"node\":", e == self->oldest ? "" : ",",
                 e->hex);
        ga_buf_append_str(&out, line);
        ga_json_encode_str(&out, e->node, strlen(e->node));
        snprintf(line, sizeof line, ",\"idle_ms\":%" PRId64 "}", idle < 0 ? 0 : idle);
        ga_buf_append_str(&out, line);
    }
    ga_buf_append_str(&out, "\n]}\n");
    char why[256];
    ga_err_t rc = ga_file_write_atomic(path, out.data, out.len, why, sizeof why);
    if (rc != GA_OK) {
        snprintf(err, errlen, "state_file: cannot write %s: %s", path, why);
    } else {
        for (sticky_t *e = self->oldest; e; e = e->next) {
            e->saved_use = e->last_used;
        }
        self->dirty = false;
    }
    ga_buf_fini(&out);
    return rc;
}
