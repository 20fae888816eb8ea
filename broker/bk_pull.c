// SPDX-License-Identifier: MIT
// Config pull (bk_pull.h; docs/protocol.md, "Config pull"): the broker's periodic PULL_VERSION
// and PULL to registered workers, one outstanding pull per worker, with backoff on failures.
#include "bk_pull.h"

#include "bk_internal.h"
#include "ga_clock.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_telemetry.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

#define S_VERSION_MAX 128 // bytes of a config version kept (with its NUL)

// One pulled worker (keyed by its routing id in hex).
typedef struct {
    uint64_t life;        // the worker's life when first seen (a new life pushed its table)
    int64_t next_at;      // monotonic ms of the next pull (when none is outstanding)
    uint64_t pending;     // id of the outstanding pull, 0 when none
    bool pending_full;    // the outstanding pull is a PULL (else PULL_VERSION)
    int64_t deadline;     // monotonic ms: the outstanding pull has failed after it
    int failures;         // consecutive failed pulls
    int64_t backoff_ms;   // the wait after the last failure (0: none)
    int64_t started_us;   // ga_clock_us when the current pull began (PULL_VERSION or PULL)
    char version[S_VERSION_MAX]; // config version the last answer gave ("": none yet)
    bool seen;            // marked during a tick: the worker is still registered
} s_worker_t;

struct bk_pull_t {
    int64_t interval_ms;  // 0: off
    int64_t timeout_ms;   // bound of each pull
    char **services;      // the pulled services (NULL: every registered one)
    bool *version_check;  // parallel to services: ask PULL_VERSION first
    size_t n_services;    // entries in services
    zhash_t *workers;     // hex routing id -> s_worker_t
    uint64_t next_id;     // last pull id handed out
    int64_t next_due;     // monotonic ms: the tick has nothing to do before
    // Counters (genapi-ctl status).
    uint64_t version_pulls; // PULL_VERSION sent
    uint64_t full_pulls;    // PULL sent
    uint64_t skipped;       // pulls that stopped at an unchanged version
    uint64_t changes;       // pulled tables that changed a config
    uint64_t failures;      // pulls unanswered within pull_timeout, or refused
};

bk_pull_t *
bk_pull_new(void)
{
    bk_pull_t *self = ga_calloc(1, sizeof *self);
    self->workers = zhash_new();
    ga_assert(self->workers);
    self->next_due = INT64_MAX;
    return self;
}

static void
s_free_services(bk_pull_t *self)
{
    for (size_t i = 0; i < self->n_services; i++) {
        ga_free(self->services[i]);
    }
    ga_free(self->services);
    ga_free(self->version_check);
    self->services = NULL;
    self->version_check = NULL;
    self->n_services = 0;
}

void
bk_pull_destroy(bk_pull_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    bk_pull_t *self = *self_p;
    s_free_services(self);
    zhash_destroy(&self->workers);
    ga_free(self);
    *self_p = NULL;
}

ga_err_t
bk_pull_configure(bk_pull_t *self, int64_t interval_ms, int64_t timeout_ms,
                  const char *service_configs, char *err, size_t errlen)
{
    s_free_services(self);
    self->interval_ms = interval_ms > 0 ? interval_ms : 0;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    self->next_due = self->interval_ms ? 0 : INT64_MAX;
    if (service_configs == NULL || service_configs[0] == '\0') {
        return GA_OK;
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    char why[300];
    ga_err_t rc = GA_OK;
    if (ga_json_decode(service_configs, strlen(service_configs), a, &v, why, sizeof why) !=
        GA_OK) {
        snprintf(err, errlen, "service_configs: not JSON (%s)", why);
        rc = GA_ECONFIG;
    } else if (v.type != GA_ARRAY || v.len > BK_PULL_SERVICES_MAX) {
        snprintf(err, errlen, "service_configs: a list of at most %d services (a name or "
                 "{service, version_check})", BK_PULL_SERVICES_MAX);
        rc = GA_ECONFIG;
    }
    if (rc == GA_OK && v.len > 0) {
        self->services = ga_calloc(v.len, sizeof(char *));
        self->version_check = ga_calloc(v.len, sizeof(bool));
    }
    for (uint32_t i = 0; rc == GA_OK && i < v.len; i++) {
        const ga_value_t *e = &v.u.items[i];
        const char *name = e->type == GA_STR ? e->u.s : ga_map_get_str(e, "service");
        bool check = true;
        for (uint32_t k = 0; e->type == GA_MAP && k < e->len; k++) {
            const ga_pair_t *p = &e->u.pairs[k];
            if (strcmp(p->key, "version_check") == 0) {
                if (p->value.type != GA_BOOL) {
                    snprintf(err, errlen, "service_configs[%u].version_check: true or false", i);
                    rc = GA_ECONFIG;
                }
                check = p->value.type == GA_BOOL && p->value.u.b;
            } else if (strcmp(p->key, "service") != 0) {
                snprintf(err, errlen, "service_configs[%u].%s: unknown field (service, "
                         "version_check)", i, p->key);
                rc = GA_ECONFIG;
            }
        }
        if (rc == GA_OK && (name == NULL || name[0] == '\0')) {
            snprintf(err, errlen, "service_configs[%u].service: a non-empty service name", i);
            rc = GA_ECONFIG;
        }
        if (rc == GA_OK) {
            self->services[self->n_services] = ga_strdup(name);
            self->version_check[self->n_services++] = check;
        }
    }
    ga_arena_destroy(&a);
    if (rc != GA_OK) {
        s_free_services(self);
    }
    return rc;
}

// Whether `service` is pulled, and whether with PULL_VERSION first.
static bool
s_pulled(const bk_pull_t *self, const char *service, bool *version_check)
{
    *version_check = true;
    if (self->n_services == 0) {
        return true;
    }
    for (size_t i = 0; i < self->n_services; i++) {
        if (service && strcmp(self->services[i], service) == 0) {
            *version_check = self->version_check[i];
            return true;
        }
    }
    return false;
}

static void
s_send_pull(bk_broker_t *broker, bk_worker_t *w, s_worker_t *st, bool full, int64_t now)
{
    bk_pull_t *self = broker->pull;
    st->pending = ++self->next_id;
    st->pending_full = full;
    st->deadline = now + self->timeout_ms;
    if (full) {
        self->full_pulls++;
    } else {
        self->version_pulls++;
    }
    ga_value_t m = ga_map(broker->arena, 1);
    ga_map_put(&m, broker->arena, "id", ga_int((int64_t) st->pending));
    bk_send(broker, broker->workers, w->id, w->id_len, full ? GA_CMD_PULL : GA_CMD_PULL_VERSION,
            &m);
}

// genapi.config.pull.stop: one pull (its PULL_VERSION and PULL) is over.
static void
s_emit_stop(const bk_worker_t *w, const s_worker_t *st, bool success, const char *reason)
{
    GA_EMIT(GA_EV_CONFIG_PULL_STOP, .duration_us = ga_clock_us() - st->started_us,
            .service = w->service, .node = w->node, .reason = reason,
            .success = success ? GA_TM_TRUE : GA_TM_FALSE);
}

// The outstanding pull of `st` failed (no answer in time, or an unusable one): the next waits
// pull_interval × 2^failures, at most BK_PULL_BACKOFF_MAX_MS.
static void
s_fail(bk_pull_t *self, bk_worker_t *w, s_worker_t *st, int64_t now, const char *why)
{
    self->failures++;
    s_emit_stop(w, st, false, why);
    st->pending = 0;
    st->failures++;
    int64_t backoff = self->interval_ms;
    for (int i = 0; i < st->failures && backoff < BK_PULL_BACKOFF_MAX_MS; i++) {
        backoff *= 2;
    }
    st->backoff_ms = backoff < BK_PULL_BACKOFF_MAX_MS ? backoff : BK_PULL_BACKOFF_MAX_MS;
    st->next_at = now + st->backoff_ms;
    GA_WARN("config pull from worker %s (%s) failed: %s; %d in a row, next in %lld ms",
            w->node ? w->node : "?", w->service ? w->service : "?", why, st->failures,
            (long long) st->backoff_ms);
}

typedef struct {
    bk_broker_t *broker;
    int64_t now;
    int64_t next_due;
} s_tick_ctx_t;

static void
s_tick_worker(bk_worker_t *w, void *arg)
{
    s_tick_ctx_t *ctx = arg;
    bk_pull_t *self = ctx->broker->pull;
    bool version_check;
    if (!w->registered || !s_pulled(self, w->service, &version_check)) {
        return;
    }
    char key[2 * 255 + 1];
    bk_id_key(key, w->id, w->id_len);
    s_worker_t *st = zhash_lookup(self->workers, key);
    if (st == NULL || st->life != w->life) {
        // New, or a new life: it has just pushed its table; the first pull is an interval on.
        if (st == NULL) {
            st = ga_calloc(1, sizeof *st);
            ga_assert(zhash_insert(self->workers, key, st) == 0);
            zhash_freefn(self->workers, key, ga_free);
        }
        memset(st, 0, sizeof *st);
        st->life = w->life;
        st->next_at = ctx->now + self->interval_ms;
    }
    st->seen = true;
    if (st->pending && ctx->now >= st->deadline) {
        char why[64];
        snprintf(why, sizeof why, "no answer within pull_timeout (%lld ms)",
                 (long long) self->timeout_ms);
        s_fail(self, w, st, ctx->now, why);
    }
    if (!st->pending && ctx->now >= st->next_at) {
        st->started_us = ga_clock_us();
        GA_EMIT(GA_EV_CONFIG_PULL_START, .service = w->service, .node = w->node);
        s_send_pull(ctx->broker, w, st, !version_check, ctx->now);
    }
    int64_t due = st->pending ? st->deadline : st->next_at;
    if (due < ctx->next_due) {
        ctx->next_due = due;
    }
}

void
bk_pull_tick(bk_broker_t *broker, int64_t now)
{
    bk_pull_t *self = broker->pull;
    if (self->interval_ms == 0 || now < self->next_due) {
        return;
    }
    for (s_worker_t *st = zhash_first(self->workers); st; st = zhash_next(self->workers)) {
        st->seen = false;
    }
    // New workers are noticed within a heartbeat.
    s_tick_ctx_t ctx = {.broker = broker, .now = now,
                        .next_due = now + broker->cfg->heartbeat_ms};
    bk_registry_each_worker(broker->registry, s_tick_worker, &ctx);
    self->next_due = ctx.next_due;
    zlist_t *gone = zlist_new();
    ga_assert(gone);
    for (s_worker_t *st = zhash_first(self->workers); st; st = zhash_next(self->workers)) {
        if (!st->seen) {
            zlist_append(gone, (void *) zhash_cursor(self->workers));
        }
    }
    for (const char *key = zlist_first(gone); key; key = zlist_next(gone)) {
        zhash_delete(self->workers, key);
    }
    zlist_destroy(&gone);
}

int64_t
bk_pull_next_due(const bk_broker_t *broker)
{
    return broker->pull->interval_ms ? broker->pull->next_due : INT64_MAX;
}

// A whole pulled table: registered as a push from this worker would be (docs/protocol.md,
// "Registration"), without a new life; the gateways hear of every change.
static void
s_on_table(bk_broker_t *broker, bk_worker_t *w, const ga_proto_msg_t *msg, const char *version)
{
    ga_arena_t *a = broker->arena;
    const ga_value_t *functions = ga_map_get(&msg->value, "functions"); // checked: a list
    ga_value_t body = ga_map(a, 5);
    // Copies: the registry replaces the worker's own strings while it reads these.
    ga_map_put(&body, a, "node", ga_str(ga_arena_strdup(a, w->node)));
    ga_map_put(&body, a, "service", ga_str(ga_arena_strdup(a, w->service)));
    ga_map_put(&body, a, "config_version", ga_str(version));
    ga_map_put(&body, a, "session", ga_int(w->session));
    ga_map_put(&body, a, "functions", *functions);
    ga_value_t refused, failed, changed;
    ga_value_t filtered = bk_access_filter(broker, &body, a, &refused);
    bk_worker_t *same = NULL;
    bool skipped = false;
    char err[256];
    if (bk_registry_register(broker->registry, w->id, w->id_len, &filtered, w->expiry, a, &failed,
                             &changed, &same, &skipped, err, sizeof err) != GA_OK) {
        GA_WARN("pulled table of worker %s refused: %s", w->node, err);
        return;
    }
    for (uint32_t i = 0; i < refused.len; i++) {
        ga_array_push(&failed, a, refused.u.items[i]);
    }
    if (changed.len > 0) {
        broker->pull->changes++;
        bk_warn_public_refs(broker, same->service);
    }
    GA_INFO("config pull from worker %s (%s): version %s, %u function(s) changed, %u refused",
            same->node, same->service, version, changed.len, failed.len);
    bk_broadcast_update(broker, &changed, NULL);
}

void
bk_pull_on_reply(bk_broker_t *broker, const ga_proto_msg_t *msg)
{
    bk_pull_t *self = broker->pull;
    bk_worker_t *w = bk_registry_worker(broker->registry, msg->id, msg->id_len);
    char key[2 * 255 + 1];
    bk_id_key(key, msg->id, msg->id_len);
    s_worker_t *st = zhash_lookup(self->workers, key);
    int64_t id = ga_map_get_int(&msg->value, "id", 0);
    if (w == NULL || st == NULL || st->pending == 0 || (uint64_t) id != st->pending) {
        GA_DEBUG("late or unknown PULLED dropped");
        return;
    }
    int64_t now = ga_clock_ms();
    bool full = st->pending_full;
    st->pending = 0;
    const char *version = ga_map_get_str(&msg->value, "config_version");
    if (version == NULL || version[0] == '\0' || strlen(version) >= S_VERSION_MAX) {
        s_fail(self, w, st, now, "the answer has no usable config_version");
        return;
    }
    if (full) {
        const char *service = ga_map_get_str(&msg->value, "service");
        const ga_value_t *functions = ga_map_get(&msg->value, "functions");
        if (service == NULL || strcmp(service, w->service) != 0 || functions == NULL ||
            functions->type != GA_ARRAY) {
            s_fail(self, w, st, now, "the answer is not this worker's service table");
            return;
        }
    } else {
        const char *stored = NULL;
        bool known = st->version[0] ? strcmp(st->version, version) == 0
                                    : bk_registry_verify(broker->registry, w->service, version,
                                                         &stored) == BK_VERIFY_MATCHED;
        if (!known) {
            s_send_pull(broker, w, st, true, now); // changed: the whole table now
            self->next_due = now;
            return;
        }
        self->skipped++;
    }
    snprintf(st->version, sizeof st->version, "%s", version);
    s_emit_stop(w, st, true, full ? "pulled" : "unchanged");
    st->failures = 0;
    st->backoff_ms = 0;
    st->next_at = now + self->interval_ms;
    if (full) {
        s_on_table(broker, w, msg, version);
    }
}

ga_value_t
bk_pull_status(const bk_broker_t *broker, ga_arena_t *a)
{
    const bk_pull_t *self = broker->pull;
    ga_value_t m = ga_map(a, 8);
    ga_map_put(&m, a, "interval_ms", ga_int(self->interval_ms));
    ga_map_put(&m, a, "timeout_ms", ga_int(self->timeout_ms));
    ga_map_put(&m, a, "version_pulls", ga_int((int64_t) self->version_pulls));
    ga_map_put(&m, a, "full_pulls", ga_int((int64_t) self->full_pulls));
    ga_map_put(&m, a, "skipped", ga_int((int64_t) self->skipped));
    ga_map_put(&m, a, "changes", ga_int((int64_t) self->changes));
    ga_map_put(&m, a, "failures", ga_int((int64_t) self->failures));
    ga_value_t list = ga_array(a, 4);
    zhash_t *workers = self->workers;
    for (s_worker_t *st = zhash_first(workers); st; st = zhash_next(workers)) {
        const char *key = zhash_cursor(workers);
        uint8_t id[255];
        size_t n = strlen(key) / 2;
        for (size_t i = 0; i < n; i++) {
            unsigned byte = 0;
            sscanf(key + 2 * i, "%2x", &byte);
            id[i] = (uint8_t) byte;
        }
        bk_worker_t *w = bk_registry_worker(broker->registry, id, n);
        ga_value_t e = ga_map(a, 5);
        ga_map_put(&e, a, "node", ga_str(w && w->node ? ga_arena_strdup(a, w->node) : "?"));
        ga_map_put(&e, a, "service",
                   ga_str(w && w->service ? ga_arena_strdup(a, w->service) : "?"));
        ga_map_put(&e, a, "config_version",
                   st->version[0] ? ga_str(ga_arena_strdup(a, st->version)) : ga_nil());
        ga_map_put(&e, a, "failures", ga_int(st->failures));
        ga_map_put(&e, a, "backoff_ms", ga_int(st->backoff_ms));
        ga_array_push(&list, a, e);
    }
    ga_map_put(&m, a, "workers", list);
    return m;
}
