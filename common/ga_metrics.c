// SPDX-License-Identifier: MIT
// Prometheus metrics from telemetry events (see ga_metrics.h): a fixed list of metrics, each
// series found by a hash of (metric, labels) in an open-addressing table.
#include "ga_metrics.h"

#include "ga_log.h"
#include "ga_telemetry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef enum {
    M_EVENTS,
    M_REQUESTS,
    M_DURATION,
    M_REFUSALS,
    M_RETRIES,
    M_RETRIES_EXHAUSTED,
    M_RL_CHECKS,
    M_RL_EXCEEDED,
    M_CIRCUIT,
    M_CIRCUIT_OPENED,
    M_CONN_EVENTS,
    M_CONFIG,
    M_TASKS,
    M_COUNT
} metric_t;

static const struct {
    const char *name; // full metric name
    const char *type; // counter, gauge, histogram
    const char *help; // HELP text
} s_metrics[M_COUNT] = {
    [M_EVENTS] = {"genapi_telemetry_events_total", "counter", "Telemetry events emitted, by event name."},
    [M_REQUESTS] = {"genapi_requests_total", "counter",
                    "Requests answered, by service, request_type and outcome (ok, error, refused)."},
    [M_DURATION] = {"genapi_request_duration_seconds", "histogram",
                    "Time from a request's start to its answer, by service and request_type."},
    [M_REFUSALS] = {"genapi_refusals_total", "counter",
                    "Requests refused before reaching a worker, by reason."},
    [M_RETRIES] = {"genapi_retries_total", "counter",
                   "Attempts after a call's first (fallback and retry), by service and request_type."},
    [M_RETRIES_EXHAUSTED] = {"genapi_retries_exhausted_total", "counter",
                             "Calls answered after using every attempt they were allowed."},
    [M_RL_CHECKS] = {"genapi_rate_limit_checks_total", "counter", "Rate-limit checks, by scope."},
    [M_RL_EXCEEDED] = {"genapi_rate_limit_exceeded_total", "counter",
                       "Requests refused by a rate limit, by key and scope."},
    [M_CIRCUIT] = {"genapi_circuit_open", "gauge",
                   "Circuit breaker state per worker node: 1 open (skipped), 0 closed."},
    [M_CIRCUIT_OPENED] = {"genapi_circuit_opened_total", "counter",
                          "Times a worker node's circuit opened."},
    [M_CONN_EVENTS] = {"genapi_connection_events_total", "counter",
                       "Connection events (connect, disconnect, join, auth_failure)."},
    [M_CONFIG] = {"genapi_config_events_total", "counter",
                  "Function registry changes, by event (push, add, delete, disable, enable, ...)."},
    [M_TASKS] = {"genapi_worker_tasks_total", "counter", "Worker pool tasks, by outcome."},
};

static const double s_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,   0.5,   1,      2.5,   5,    10,   30};
#define N_BOUNDS (sizeof s_bounds / sizeof s_bounds[0])
#define TABLE_SIZE 4096 // power of two, above twice GA_METRICS_SERIES_MAX

typedef struct {
    int metric;                 // metric_t, -1: free slot
    uint64_t hash;              // of (metric, labels)
    char *labels;               // rendered label pairs ('a="x",b="y"'), owned
    double value;               // counter or gauge value; histogram: sum of observations
    uint64_t count;             // histogram: observations
    uint64_t buckets[N_BOUNDS]; // histogram: observations at or below each bound
} series_t;

#define MEMO_SIZE 64 // functions whose request series are remembered (power of two)
#define MEMO_NAME 64 // bytes of a service or request_type remembered, with its NUL

// One function's series for its answered requests, remembered by its service and request_type
// as emitted, so that a request's stop finds them without building labels.
typedef struct {
    char service[MEMO_NAME];      // "" with requests[] NULL: unused
    char request_type[MEMO_NAME]; // as emitted
    series_t *requests[2];        // genapi_requests_total, outcome "error" [0] and "ok" [1]
    series_t *duration;           // genapi_request_duration_seconds
} memo_t;

struct ga_metrics_t {
    series_t *table;   // TABLE_SIZE slots
    size_t n_series;   // slots in use
    int handler;       // telemetry handler id
    ga_buf_t labels;   // label text being built, reused
    series_t *events[GA_EV_COUNT]; // each event's genapi_telemetry_events_total series, once found
    memo_t memo[MEMO_SIZE];        // by a hash of service and request_type
    // The rate-limit checks series of the last scope seen, kept: a check per request then
    // builds no label text (docs/benchmarks.md, "Rate-limit check").
    series_t *rl_checks; // genapi_rate_limit_checks_total{scope=rl_scope}, NULL until first
    char rl_scope[32];   // its scope
};

static uint64_t
s_hash(int metric, const char *labels)
{
    uint64_t h = UINT64_C(1469598103934665603) ^ (uint64_t) metric;
    for (const char *p = labels; *p; p++) {
        h = (h ^ (uint64_t) (uint8_t) *p) * UINT64_C(1099511628211);
    }
    return h;
}

// Appends `v` as a label value (its first 200 bytes), escaped as the text format asks: runs
// without a character to escape are copied whole.
static void
s_label(ga_buf_t *b, const char *name, const char *v)
{
    if (b->len) {
        ga_buf_append_char(b, ',');
    }
    ga_buf_append_str(b, name);
    ga_buf_append(b, "=\"", 2);
    const char *p = v ? v : "";
    size_t left = strnlen(p, 200);
    while (left > 0) {
        size_t run = strcspn(p, "\\\"\n");
        run = run < left ? run : left;
        ga_buf_append(b, p, run);
        p += run;
        left -= run;
        if (left == 0) {
            break;
        }
        if (*p == '\n') {
            ga_buf_append(b, "\\n", 2);
        } else {
            ga_buf_append_char(b, '\\');
            ga_buf_append_char(b, *p);
        }
        p++;
        left--;
    }
    ga_buf_append_char(b, '"');
}

// The series of `metric` with the labels in `b` (NUL-terminated by the caller), created when
// new; the overflow series when the table is full.
static series_t *
s_series(ga_metrics_t *self, int metric, const char *labels)
{
    uint64_t h = s_hash(metric, labels);
    for (int pass = 0; pass < 2; pass++) {
        size_t i = h & (TABLE_SIZE - 1);
        for (;;) {
            series_t *s = &self->table[i];
            if (s->metric < 0) {
                if (self->n_series >= GA_METRICS_SERIES_MAX && pass == 0) {
                    break; // full: fall back to the overflow series
                }
                s->metric = metric;
                s->hash = h;
                s->labels = ga_strdup(labels);
                self->n_series++;
                return s;
            }
            if (s->hash == h && s->metric == metric && strcmp(s->labels, labels) == 0) {
                return s;
            }
            i = (i + 1) & (TABLE_SIZE - 1);
        }
        labels = "overflow=\"true\"";
        h = s_hash(metric, labels);
    }
    ga_assert(false); // unreachable: the overflow series always finds a slot (table > max)
    return NULL;
}

// The series of `metric` labelled with the text in `labels`, which is then cut back to its
// first `keep` bytes (0: emptied), so that labels shared by the next series are built once.
static series_t *
s_find(ga_metrics_t *self, int metric, ga_buf_t *labels, size_t keep)
{
    ga_buf_append_char(labels, '\0');
    series_t *s = s_series(self, metric, (const char *) labels->data);
    labels->len = keep;
    return s;
}

static void
s_add(ga_metrics_t *self, int metric, ga_buf_t *labels, double v)
{
    s_find(self, metric, labels, 0)->value += v;
}

static void
s_set(ga_metrics_t *self, int metric, ga_buf_t *labels, double v)
{
    s_find(self, metric, labels, 0)->value = v;
}

static void
s_observe(series_t *s, double seconds)
{
    s->value += seconds;
    s->count++;
    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (seconds <= s_bounds[i]) {
            s->buckets[i]++;
        }
    }
}

// The memo entry for `d`'s service and request_type (NULL counts as ""), or NULL when either
// is too long to remember. A different function in the entry is replaced (series never move,
// so a remembered pointer is what a lookup would find).
static memo_t *
s_memo(ga_metrics_t *self, const ga_tm_data_t *d)
{
    const char *svc = d->service ? d->service : "";
    const char *rt = d->request_type ? d->request_type : "";
    uint64_t h = UINT64_C(1469598103934665603);
    size_t ns = 0;
    for (; svc[ns]; ns++) {
        h = (h ^ (uint8_t) svc[ns]) * UINT64_C(1099511628211);
    }
    h = (h ^ 0x1f) * UINT64_C(1099511628211);
    size_t nr = 0;
    for (; rt[nr]; nr++) {
        h = (h ^ (uint8_t) rt[nr]) * UINT64_C(1099511628211);
    }
    if (ns >= MEMO_NAME || nr >= MEMO_NAME) {
        return NULL;
    }
    memo_t *m = &self->memo[(h ^ (h >> 32)) & (MEMO_SIZE - 1)];
    if (strcmp(m->service, svc) != 0 || strcmp(m->request_type, rt) != 0) {
        memcpy(m->service, svc, ns + 1);
        memcpy(m->request_type, rt, nr + 1);
        m->requests[0] = m->requests[1] = m->duration = NULL;
    }
    return m;
}

static void
s_fn(ga_buf_t *l, const ga_tm_data_t *d)
{
    s_label(l, "service", d->service);
    s_label(l, "request_type", d->request_type);
}

static void
s_on_event(ga_event_t ev, const ga_tm_data_t *d, void *arg)
{
    ga_metrics_t *self = arg;
    ga_buf_t *l = &self->labels; // reused: no allocation per event once grown
    ga_buf_reset(l);
    const char *name = ga_telemetry_name(ev);
    // An event's own series never moves (slots are never freed): found once, kept.
    series_t **evs = name ? &self->events[ev] : NULL;
    if (evs && *evs) {
        (*evs)->value += 1;
    } else {
        s_label(l, "event", name);
        series_t *s = s_find(self, M_EVENTS, l, 0);
        s->value += 1;
        if (evs) {
            *evs = s;
        }
    }
    switch (ev) {
    case GA_EV_EXECUTOR_REQUEST_STOP:
    case GA_EV_EXECUTOR_REQUEST_EXCEPTION: {
        bool refused = ev == GA_EV_EXECUTOR_REQUEST_EXCEPTION;
        int ok = d->success != GA_TM_FALSE;
        memo_t *m = refused ? NULL : s_memo(self, d);
        if (m && m->requests[ok]) {
            m->requests[ok]->value += 1;
            s_observe(m->duration, (double) d->duration_us / 1e6);
            break;
        }
        s_fn(l, d);
        size_t fn_len = l->len; // service and request_type, shared with the duration's labels
        s_label(l, "outcome", refused ? "refused" : ok ? "ok" : "error");
        series_t *requests = s_find(self, M_REQUESTS, l, refused ? 0 : fn_len);
        requests->value += 1;
        if (refused) {
            s_label(l, "reason", d->reason);
            s_add(self, M_REFUSALS, l, 1);
            break;
        }
        series_t *duration = s_find(self, M_DURATION, l, 0);
        s_observe(duration, (double) d->duration_us / 1e6);
        if (m) {
            m->requests[ok] = requests;
            m->duration = duration;
        }
        break;
    }
    case GA_EV_EXECUTOR_RETRY:
        s_fn(l, d);
        s_add(self, M_RETRIES, l, 1);
        break;
    case GA_EV_EXECUTOR_RETRY_EXHAUSTED:
        s_fn(l, d);
        s_add(self, M_RETRIES_EXHAUSTED, l, 1);
        break;
    case GA_EV_RATE_LIMITER_CHECK: {
        const char *scope = d->scope ? d->scope : "";
        if (self->rl_checks == NULL || strcmp(self->rl_scope, scope) != 0) {
            s_label(l, "scope", d->scope);
            self->rl_checks = s_find(self, M_RL_CHECKS, l, 0);
            snprintf(self->rl_scope, sizeof self->rl_scope, "%s", scope);
        }
        self->rl_checks->value += 1;
        break;
    }
    case GA_EV_RATE_LIMITER_EXCEEDED:
        s_label(l, "key", d->key);
        s_label(l, "scope", d->scope);
        s_add(self, M_RL_EXCEEDED, l, 1);
        break;
    case GA_EV_WORKER_POOL_CIRCUIT_OPEN:
    case GA_EV_WORKER_POOL_CIRCUIT_CLOSE:
        s_label(l, "node", d->node);
        s_set(self, M_CIRCUIT, l, ev == GA_EV_WORKER_POOL_CIRCUIT_OPEN ? 1 : 0);
        if (ev == GA_EV_WORKER_POOL_CIRCUIT_OPEN) {
            s_label(l, "node", d->node);
            s_add(self, M_CIRCUIT_OPENED, l, 1);
        }
        break;
    case GA_EV_CONNECTION_CONNECT:
    case GA_EV_CONNECTION_DISCONNECT:
    case GA_EV_CONNECTION_JOIN:
    case GA_EV_CONNECTION_AUTH_FAILURE:
        s_label(l, "event", name + strlen("genapi.connection."));
        s_add(self, M_CONN_EVENTS, l, 1);
        break;
    case GA_EV_WORKER_POOL_TASK_STOP:
    case GA_EV_WORKER_POOL_TASK_EXCEPTION:
    case GA_EV_WORKER_POOL_TASK_REJECTED:
        s_label(l, "outcome", name + strlen("genapi.worker_pool.task."));
        s_add(self, M_TASKS, l, 1);
        break;
    default:
        if (strncmp(name, "genapi.config.", 14) == 0) {
            s_label(l, "event", name + 14);
            s_add(self, M_CONFIG, l, 1);
        }
        break;
    }
}

ga_metrics_t *
ga_metrics_new(void)
{
    ga_metrics_t *self = ga_calloc(1, sizeof *self);
    self->table = ga_calloc(TABLE_SIZE, sizeof *self->table);
    ga_buf_init(&self->labels);
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        self->table[i].metric = -1;
    }
    // Attaching cannot fail but for a full handler table, a programmer error here.
    ga_err_t rc = ga_telemetry_attach_all("genapi-metrics", s_on_event, self, &self->handler);
    ga_assert(rc == GA_OK);
    return self;
}

void
ga_metrics_destroy(ga_metrics_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_metrics_t *self = *self_p;
    GA_IGNORE(ga_telemetry_detach(self->handler)); // attached in new: found
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        ga_free(self->table[i].labels);
    }
    ga_free(self->table);
    ga_buf_fini(&self->labels);
    ga_free(self);
    *self_p = NULL;
}

static void
s_printf(ga_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_printf(ga_buf_t *out, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ga_buf_append(out, line, (size_t) n < sizeof line ? (size_t) n : sizeof line - 1);
    }
}

void
ga_metrics_put(ga_buf_t *out, const char *name, const char *type, const char *help, double value)
{
    s_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
}

void
ga_metrics_build_info(ga_buf_t *out, const char *program)
{
    s_printf(out,
             "# HELP genapi_build_info Build of this process.\n# TYPE genapi_build_info gauge\n"
             "genapi_build_info{program=\"%s\",version=\"%s\"} 1\n",
             program, GA_VERSION);
}

void
ga_metrics_render(const ga_metrics_t *self, ga_buf_t *out)
{
    for (int m = 0; m < M_COUNT; m++) {
        const char *name = s_metrics[m].name;
        s_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, s_metrics[m].help, name,
                 s_metrics[m].type);
        for (size_t i = 0; i < TABLE_SIZE; i++) {
            const series_t *s = &self->table[i];
            if (s->metric != m) {
                continue;
            }
            const char *sep = s->labels[0] ? "," : "";
            if (m != M_DURATION) {
                if (s->labels[0]) {
                    s_printf(out, "%s{%s} %.17g\n", name, s->labels, s->value);
                } else {
                    s_printf(out, "%s %.17g\n", name, s->value);
                }
                continue;
            }
            for (size_t b = 0; b < N_BOUNDS; b++) {
                s_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, s->labels, sep,
                         s_bounds[b], (unsigned long long) s->buckets[b]);
            }
            s_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, s->labels, sep,
                     (unsigned long long) s->count);
            s_printf(out, "%s_sum{%s} %.17g\n", name, s->labels, s->value);
            s_printf(out, "%s_count{%s} %llu\n", name, s->labels, (unsigned long long) s->count);
        }
    }
}
