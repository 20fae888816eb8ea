// SPDX-License-Identifier: MIT
// The event table, the handler table and its per-event flags (see ga_telemetry.h).
#include "ga_telemetry.h"

#include "ga_log.h"
#include "ga_mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define D GA_TM_M_DURATION
#define C GA_TM_M_COUNT

static const struct {
    const char *name;  // full event name
    unsigned measures; // GA_TM_M_* mask
    bool emitted;      // false: the feature is not built yet
} s_events[GA_EV_COUNT] = {
    [GA_EV_EXECUTOR_REQUEST_START] = {"genapi.executor.request.start", 0, true},
    [GA_EV_EXECUTOR_REQUEST_STOP] = {"genapi.executor.request.stop", D, true},
    [GA_EV_EXECUTOR_REQUEST_EXCEPTION] = {"genapi.executor.request.exception", 0, true},
    [GA_EV_EXECUTOR_RETRY] = {"genapi.executor.retry", C, true},
    [GA_EV_EXECUTOR_RETRY_EXHAUSTED] = {"genapi.executor.retry.exhausted", C, true},
    [GA_EV_RATE_LIMITER_CHECK] = {"genapi.rate_limiter.check", 0, true},
    [GA_EV_RATE_LIMITER_EXCEEDED] = {"genapi.rate_limiter.exceeded", C, true},
    [GA_EV_RATE_LIMITER_RESET] = {"genapi.rate_limiter.reset", C, true},
    [GA_EV_RATE_LIMITER_CLEANUP] = {"genapi.rate_limiter.cleanup", C, true},
    [GA_EV_HOOK_BEFORE_START] = {"genapi.hook.before.start", 0, true},
    [GA_EV_HOOK_BEFORE_STOP] = {"genapi.hook.before.stop", D, true},
    [GA_EV_HOOK_BEFORE_EXCEPTION] = {"genapi.hook.before.exception", D, true},
    [GA_EV_HOOK_AFTER_START] = {"genapi.hook.after.start", 0, true},
    [GA_EV_HOOK_AFTER_STOP] = {"genapi.hook.after.stop", D, true},
    [GA_EV_HOOK_AFTER_EXCEPTION] = {"genapi.hook.after.exception", D, true},
    [GA_EV_WORKER_POOL_TASK_START] = {"genapi.worker_pool.task.start", 0, true},
    [GA_EV_WORKER_POOL_TASK_STOP] = {"genapi.worker_pool.task.stop", D, true},
    [GA_EV_WORKER_POOL_TASK_EXCEPTION] = {"genapi.worker_pool.task.exception", D, true},
    [GA_EV_WORKER_POOL_TASK_REJECTED] = {"genapi.worker_pool.task.rejected", 0, true},
    [GA_EV_WORKER_POOL_CIRCUIT_OPEN] = {"genapi.worker_pool.circuit.open", C, true},
    [GA_EV_WORKER_POOL_CIRCUIT_CLOSE] = {"genapi.worker_pool.circuit.close", 0, true},
    [GA_EV_CONFIG_PULL_START] = {"genapi.config.pull.start", 0, true},
    [GA_EV_CONFIG_PULL_STOP] = {"genapi.config.pull.stop", D, true},
    [GA_EV_CONFIG_PUSH] = {"genapi.config.push", C, true},
    [GA_EV_CONFIG_ADD] = {"genapi.config.add", 0, true},
    [GA_EV_CONFIG_BATCH_ADD] = {"genapi.config.batch_add", C, true},
    [GA_EV_CONFIG_DELETE] = {"genapi.config.delete", C, true},
    [GA_EV_CONFIG_CLEAR] = {"genapi.config.clear", C, true},
    [GA_EV_CONFIG_DISABLE] = {"genapi.config.disable", C, true},
    [GA_EV_CONFIG_ENABLE] = {"genapi.config.enable", C, true},
    [GA_EV_CONNECTION_CONNECT] = {"genapi.connection.connect", 0, true},
    [GA_EV_CONNECTION_DISCONNECT] = {"genapi.connection.disconnect", 0, true},
    [GA_EV_CONNECTION_JOIN] = {"genapi.connection.join", 0, true},
    [GA_EV_CONNECTION_AUTH_FAILURE] = {"genapi.connection.auth_failure", 0, true},
    [GA_EV_RELAY_JOIN] = {"genapi.relay.join", 0, true},
    [GA_EV_RELAY_LEAVE] = {"genapi.relay.leave", C, true},
    [GA_EV_RELAY_SEND] = {"genapi.relay.send", C, true},
    [GA_EV_RELAY_DELIVER] = {"genapi.relay.deliver", C, true},
};

#undef D
#undef C

typedef struct {
    int id;               // handler id (0: free slot)
    char *pattern;        // what it was attached to ("" for all)
    char *owner;          // attacher's name, or NULL
    ga_telemetry_fn *fn;  // the handler
    void *arg;            // its argument (borrowed)
} handler_t;

atomic_bool ga_telemetry_on[GA_EV_COUNT];

// Attach and detach take s_lock; emit takes no lock. What emit reads (each event's mask and
// each slot's fn and arg) is a copy published by s_refresh under a sequence lock: s_seq is odd
// while a writer changes the copy, and a reader that saw it odd or changed reads again. Readers
// write nothing shared, so emitting from many threads contends on nothing.
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static handler_t s_handlers[GA_TELEMETRY_HANDLERS_MAX]; // guarded by s_lock
static int s_next_id;                                    // guarded by s_lock
static atomic_uint s_seq;                                // the copy's sequence lock
static _Atomic(uint64_t) s_mask[GA_EV_COUNT]; // per event, bit i: handler slot i listens
static _Atomic(ga_telemetry_fn *) s_fn[GA_TELEMETRY_HANDLERS_MAX]; // slot i's handler
static _Atomic(void *) s_arg[GA_TELEMETRY_HANDLERS_MAX];           // and its argument

_Static_assert(GA_TELEMETRY_HANDLERS_MAX <= 64, "one bit per handler slot in s_mask");

const char *
ga_telemetry_name(ga_event_t event)
{
    return (unsigned) event < GA_EV_COUNT ? s_events[event].name : NULL;
}

unsigned
ga_telemetry_measures(ga_event_t event)
{
    return (unsigned) event < GA_EV_COUNT ? s_events[event].measures : 0;
}

bool
ga_telemetry_is_emitted(ga_event_t event)
{
    return (unsigned) event < GA_EV_COUNT && s_events[event].emitted;
}

int
ga_telemetry_find(const char *name)
{
    for (int i = 0; i < GA_EV_COUNT; i++) {
        if (strcmp(s_events[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

// Whether `pattern` (already normalised: no trailing dot, "" for all) selects `name`.
static bool
s_matches(const char *pattern, const char *name)
{
    size_t n = strlen(pattern);
    return n == 0 || (strncmp(name, pattern, n) == 0 && (name[n] == '\0' || name[n] == '.'));
}

// Recomputes every event's flag and publishes emit's copy. Called with s_lock held.
static void
s_refresh(void)
{
    unsigned seq = atomic_load_explicit(&s_seq, memory_order_relaxed);
    atomic_store_explicit(&s_seq, seq + 1, memory_order_relaxed); // odd: being changed
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < GA_TELEMETRY_HANDLERS_MAX; i++) {
        atomic_store_explicit(&s_fn[i], s_handlers[i].fn, memory_order_relaxed);
        atomic_store_explicit(&s_arg[i], s_handlers[i].arg, memory_order_relaxed);
    }
    for (int e = 0; e < GA_EV_COUNT; e++) {
        uint64_t mask = 0;
        for (size_t i = 0; i < GA_TELEMETRY_HANDLERS_MAX; i++) {
            if (s_handlers[i].id != 0 && s_matches(s_handlers[i].pattern, s_events[e].name)) {
                mask |= UINT64_C(1) << i;
            }
        }
        atomic_store_explicit(&s_mask[e], mask, memory_order_relaxed);
        atomic_store_explicit(&ga_telemetry_on[e], mask != 0, memory_order_relaxed);
    }
    atomic_store_explicit(&s_seq, seq + 2, memory_order_release); // even: consistent again
}

static void
s_free_slot(handler_t *h)
{
    ga_free(h->pattern);
    ga_free(h->owner);
    *h = (handler_t){0};
}

ga_err_t
ga_telemetry_attach(const char *pattern, const char *owner, ga_telemetry_fn *fn, void *arg,
                    int *id)
{
    ga_assert(pattern && fn && id);
    char norm[128];
    if (strcmp(pattern, "*") == 0 || strcmp(pattern, "genapi") == 0 ||
        strcmp(pattern, "genapi.") == 0) {
        pattern = "";
    }
    size_t n = strlen(pattern);
    if (n >= sizeof norm) {
        return GA_ENOTFOUND;
    }
    memcpy(norm, pattern, n + 1);
    if (n > 0 && norm[n - 1] == '.') {
        norm[n - 1] = '\0';
    }
    bool any = false;
    for (int e = 0; e < GA_EV_COUNT && !any; e++) {
        any = s_matches(norm, s_events[e].name);
    }
    if (!any) {
        return GA_ENOTFOUND;
    }
    ga_err_t rc = GA_EAGAIN;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < GA_TELEMETRY_HANDLERS_MAX; i++) {
        if (s_handlers[i].id == 0) {
            if (++s_next_id <= 0) {
                s_next_id = 1;
            }
            s_handlers[i] = (handler_t){.id = s_next_id,
                                        .pattern = ga_strdup(norm),
                                        .owner = owner ? ga_strdup(owner) : NULL,
                                        .fn = fn,
                                        .arg = arg};
            *id = s_next_id;
            s_refresh();
            rc = GA_OK;
            break;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

ga_err_t
ga_telemetry_attach_all(const char *owner, ga_telemetry_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach("", owner, fn, arg, id);
}

ga_err_t
ga_telemetry_attach_executor(const char *owner, ga_telemetry_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach("genapi.executor", owner, fn, arg, id);
}

ga_err_t
ga_telemetry_attach_rate_limiter(const char *owner, ga_telemetry_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach("genapi.rate_limiter", owner, fn, arg, id);
}

ga_err_t
ga_telemetry_attach_hooks(const char *owner, ga_telemetry_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach("genapi.hook", owner, fn, arg, id);
}

ga_err_t
ga_telemetry_attach_worker_pool(const char *owner, ga_telemetry_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach("genapi.worker_pool", owner, fn, arg, id);
}

ga_err_t
ga_telemetry_attach_config(const char *owner, ga_telemetry_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach("genapi.config", owner, fn, arg, id);
}

static void
s_default_logger(ga_event_t event, const ga_tm_data_t *data, void *arg)
{
    (void) arg;
    char line[1024];
    GA_IGNORE(ga_telemetry_format(event, data, line, sizeof line)); // truncation is fine
    GA_INFO("telemetry %s", line);
}

ga_err_t
ga_telemetry_attach_default_logger(int *id)
{
    return ga_telemetry_attach("", "genapi-default-logger", s_default_logger, NULL, id);
}

ga_err_t
ga_telemetry_detach(int id)
{
    ga_err_t rc = GA_ENOTFOUND;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < GA_TELEMETRY_HANDLERS_MAX && id > 0; i++) {
        if (s_handlers[i].id == id) {
            s_free_slot(&s_handlers[i]);
            s_refresh();
            rc = GA_OK;
            break;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

size_t
ga_telemetry_detach_owner(const char *owner)
{
    size_t n = 0;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < GA_TELEMETRY_HANDLERS_MAX && owner; i++) {
        if (s_handlers[i].id != 0 && s_handlers[i].owner &&
            strcmp(s_handlers[i].owner, owner) == 0) {
            s_free_slot(&s_handlers[i]);
            n++;
        }
    }
    s_refresh();
    pthread_mutex_unlock(&s_lock);
    return n;
}

void
ga_telemetry_detach_all(void)
{
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < GA_TELEMETRY_HANDLERS_MAX; i++) {
        if (s_handlers[i].id != 0) {
            s_free_slot(&s_handlers[i]);
        }
    }
    s_refresh();
    pthread_mutex_unlock(&s_lock);
}

void
ga_telemetry_emit(ga_event_t event, const ga_tm_data_t *data)
{
    if ((unsigned) event >= GA_EV_COUNT) {
        return;
    }
    struct {
        ga_telemetry_fn *fn;
        void *arg;
    } todo[GA_TELEMETRY_HANDLERS_MAX];
    size_t n = 0;
    unsigned seq;
    do {
        seq = atomic_load_explicit(&s_seq, memory_order_acquire);
        if (seq & 1u) {
            continue; // an attach or detach is publishing: read again
        }
        n = 0;
        uint64_t mask = atomic_load_explicit(&s_mask[event], memory_order_relaxed);
        for (; mask; mask &= mask - 1) {
            int i = __builtin_ctzll(mask);
            todo[n].fn = atomic_load_explicit(&s_fn[i], memory_order_relaxed);
            todo[n].arg = atomic_load_explicit(&s_arg[i], memory_order_relaxed);
            n++;
        }
        atomic_thread_fence(memory_order_acquire);
    } while ((seq & 1u) || atomic_load_explicit(&s_seq, memory_order_relaxed) != seq);
    for (size_t i = 0; i < n; i++) {
        todo[i].fn(event, data, todo[i].arg);
    }
}

// Appends " key=value" to buf at *at, counting what it wanted.
static void
s_put(char *buf, size_t len, size_t *at, const char *key, const char *value)
{
    if (value == NULL) {
        return;
    }
    size_t room = *at < len ? len - *at : 0;
    int n = snprintf(room ? buf + *at : NULL, room, "%s%s=%s", *at ? " " : "", key, value);
    *at += n > 0 ? (size_t) n : 0;
}

size_t
ga_telemetry_format(ga_event_t event, const ga_tm_data_t *d, char *buf, size_t len)
{
    size_t at = 0;
    const char *name = ga_telemetry_name(event);
    s_put(buf, len, &at, "event", name ? name : "?");
    unsigned m = ga_telemetry_measures(event);
    char num[32];
    if (m & GA_TM_M_DURATION) {
        snprintf(num, sizeof num, "%lld", (long long) d->duration_us);
        s_put(buf, len, &at, "duration_us", num);
    }
    if (m & GA_TM_M_COUNT) {
        snprintf(num, sizeof num, "%lld", (long long) d->count);
        s_put(buf, len, &at, "count", num);
    }
    s_put(buf, len, &at, "service", d->service);
    s_put(buf, len, &at, "request_type", d->request_type);
    s_put(buf, len, &at, "version", d->version);
    s_put(buf, len, &at, "request_id", d->request_id);
    s_put(buf, len, &at, "response_type", d->response_type);
    s_put(buf, len, &at, "node", d->node);
    s_put(buf, len, &at, "pool_name", d->pool_name);
    s_put(buf, len, &at, "key", d->key);
    s_put(buf, len, &at, "scope", d->scope);
    s_put(buf, len, &at, "topic", d->topic);
    s_put(buf, len, &at, "group_id", d->group_id);
    s_put(buf, len, &at, "reason", d->reason);
    s_put(buf, len, &at, "success",
          d->success == GA_TM_TRUE ? "true" : d->success == GA_TM_FALSE ? "false" : NULL);
    return at;
}
