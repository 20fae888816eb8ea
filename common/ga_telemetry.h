// SPDX-License-Identifier: MIT
// ga_telemetry: named events (genapi.<group>.<event>, docs/telemetry.md) emitted where things
// happen, and in-process handlers attached to one event, a prefix of names or all of them.
//
// Cost: each event has a cached "someone listens" flag. GA_EMIT tests it (one relaxed atomic
// load and a branch) before building anything, so an event nobody listens to costs that branch
// only. Attach and detach recompute the flags. Emitting copies the matching handlers under a
// mutex and calls them outside it, on the emitting thread, so handlers may run on any thread
// that emits (the worker library emits from its handler threads) and may attach or detach.
#ifndef GA_TELEMETRY_H
#define GA_TELEMETRY_H

#include "ga_err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Every event; ga_telemetry_name gives its name. Keep in step with the table in
// ga_telemetry.c and docs/telemetry.md.
typedef enum {
    GA_EV_EXECUTOR_REQUEST_START,
    GA_EV_EXECUTOR_REQUEST_STOP,
    GA_EV_EXECUTOR_REQUEST_EXCEPTION,
    GA_EV_EXECUTOR_RETRY,
    GA_EV_EXECUTOR_RETRY_EXHAUSTED,
    GA_EV_RATE_LIMITER_CHECK,
    GA_EV_RATE_LIMITER_EXCEEDED,
    GA_EV_RATE_LIMITER_RESET,
    GA_EV_RATE_LIMITER_CLEANUP,
    GA_EV_HOOK_BEFORE_START,
    GA_EV_HOOK_BEFORE_STOP,
    GA_EV_HOOK_BEFORE_EXCEPTION,
    GA_EV_HOOK_AFTER_START,
    GA_EV_HOOK_AFTER_STOP,
    GA_EV_HOOK_AFTER_EXCEPTION,
    GA_EV_WORKER_POOL_TASK_START,
    GA_EV_WORKER_POOL_TASK_STOP,
    GA_EV_WORKER_POOL_TASK_EXCEPTION,
    GA_EV_WORKER_POOL_TASK_REJECTED,
    GA_EV_WORKER_POOL_CIRCUIT_OPEN,
    GA_EV_WORKER_POOL_CIRCUIT_CLOSE,
    GA_EV_CONFIG_PULL_START,
    GA_EV_CONFIG_PULL_STOP,
    GA_EV_CONFIG_PUSH,
    GA_EV_CONFIG_ADD,
    GA_EV_CONFIG_BATCH_ADD,
    GA_EV_CONFIG_DELETE,
    GA_EV_CONFIG_CLEAR,
    GA_EV_CONFIG_DISABLE,
    GA_EV_CONFIG_ENABLE,
    GA_EV_CONNECTION_CONNECT,
    GA_EV_CONNECTION_DISCONNECT,
    GA_EV_CONNECTION_JOIN,
    GA_EV_CONNECTION_AUTH_FAILURE,
    GA_EV_RELAY_JOIN,
    GA_EV_RELAY_LEAVE,
    GA_EV_RELAY_SEND,
    GA_EV_RELAY_DELIVER,
    GA_EV_COUNT
} ga_event_t;

// Tri-state for the success metadata (0: not given).
enum { GA_TM_UNSET = 0, GA_TM_TRUE = 1, GA_TM_FALSE = 2 };

// Measurements and metadata of one event. Which measurements an event carries is fixed per
// event (ga_telemetry_measures); strings are NULL when not given and are borrowed for the
// duration of the handler call only.
typedef struct {
    int64_t duration_us;      // measurement: elapsed microseconds
    int64_t count;            // measurement: attempt number, items, windows freed, ...
    const char *service;      // metadata
    const char *request_type; // metadata
    const char *version;      // metadata: function version
    const char *request_id;   // metadata: the client's request id
    const char *node;         // metadata: the worker node
    const char *pool_name;    // metadata: the worker pool (service name of a worker)
    const char *key;          // metadata: rate-limit key (user_id, ip_address, ...)
    const char *scope;        // metadata: rate-limit scope (gateway, cluster)
    const char *reason;       // metadata: why (error kind, refusal reason, close reason)
    const char *response_type; // metadata: sync, async, stream, none
    const char *topic;        // metadata: channel topic (connection join)
    int success;              // metadata: GA_TM_TRUE / GA_TM_FALSE, GA_TM_UNSET when not given
    const char *group_id;     // metadata: relay group
} ga_tm_data_t;

// Which measurements an event carries (bit mask of GA_TM_M_*).
#define GA_TM_M_DURATION 1u
#define GA_TM_M_COUNT    2u

// A handler: `data` is valid during the call only. Called on the emitting thread.
typedef void(ga_telemetry_fn)(ga_event_t event, const ga_tm_data_t *data, void *arg);

// Handlers attached at most at once.
#define GA_TELEMETRY_HANDLERS_MAX 64

// The per-event "someone listens" flags (read by GA_EMIT; written by attach and detach only).
extern atomic_bool ga_telemetry_on[GA_EV_COUNT];

// The event's full name ("genapi.executor.request.stop"); NULL when out of range. Static.
const char *ga_telemetry_name(ga_event_t event);
// Its measurements (GA_TM_M_* mask).
unsigned ga_telemetry_measures(ga_event_t event);
// False for events of features not built yet (declared, never emitted): docs/telemetry.md.
bool ga_telemetry_is_emitted(ga_event_t event);
// The event named `name`, or -1.
int ga_telemetry_find(const char *name);

// Attaches `fn` (with `arg`, borrowed until detached) to the events `pattern` selects: an
// event's full name, a prefix of names ending at a dot boundary ("genapi.executor",
// "genapi.rate_limiter."), or "" / "*" / "genapi" for all. `owner` (copied, may be NULL) names
// the attacher for ga_telemetry_detach_owner. Sets *id. GA_ENOTFOUND when the pattern selects
// no event; GA_EAGAIN when GA_TELEMETRY_HANDLERS_MAX handlers are attached. Any thread.
GA_MUST_CHECK ga_err_t ga_telemetry_attach(const char *pattern, const char *owner,
                                           ga_telemetry_fn *fn, void *arg, int *id);
// The walkthrough's helpers: all events, or one group's.
GA_MUST_CHECK ga_err_t ga_telemetry_attach_all(const char *owner, ga_telemetry_fn *fn, void *arg,
                                               int *id);
GA_MUST_CHECK ga_err_t ga_telemetry_attach_executor(const char *owner, ga_telemetry_fn *fn,
                                                    void *arg, int *id);
GA_MUST_CHECK ga_err_t ga_telemetry_attach_rate_limiter(const char *owner, ga_telemetry_fn *fn,
                                                        void *arg, int *id);
GA_MUST_CHECK ga_err_t ga_telemetry_attach_hooks(const char *owner, ga_telemetry_fn *fn,
                                                 void *arg, int *id);
GA_MUST_CHECK ga_err_t ga_telemetry_attach_worker_pool(const char *owner, ga_telemetry_fn *fn,
                                                       void *arg, int *id);
GA_MUST_CHECK ga_err_t ga_telemetry_attach_config(const char *owner, ga_telemetry_fn *fn,
                                                  void *arg, int *id);
// Attaches the built-in debug logger to every event: one INFO line per event
// ("telemetry genapi.executor.request.stop duration_us=812 service=... success=true").
GA_MUST_CHECK ga_err_t ga_telemetry_attach_default_logger(int *id);
// Detaches handler `id`. GA_ENOTFOUND when no such handler is attached. Any thread; once it
// returns, the handler is not called again except by emits already copying it on other threads.
GA_MUST_CHECK ga_err_t ga_telemetry_detach(int id);
// Detaches every handler attached with `owner`; returns how many.
size_t ga_telemetry_detach_owner(const char *owner);
// Detaches every handler (tests, shutdown).
void ga_telemetry_detach_all(void);

// Calls the handlers of `event`. Use GA_EMIT rather than calling this directly.
void ga_telemetry_emit(ga_event_t event, const ga_tm_data_t *data);

// Writes "name key=value ..." for an event (what the default logger prints) into buf,
// truncated to len (NUL-terminated). Returns the length it wanted.
size_t ga_telemetry_format(ga_event_t event, const ga_tm_data_t *data, char *buf, size_t len);

// True when someone listens to `event`: the one branch an unheard event costs.
static inline bool
ga_telemetry_is_on(ga_event_t event)
{
    return atomic_load_explicit(&ga_telemetry_on[event], memory_order_relaxed);
}

// Emits `ev` with the given fields (designated initialisers of ga_tm_data_t), building them
// only when someone listens: GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = s, .count = 2);
#define GA_EMIT(ev, ...)                                                                           \
    do {                                                                                           \
        if (ga_telemetry_is_on(ev)) {                                                              \
            ga_telemetry_emit((ev), &(const ga_tm_data_t){__VA_ARGS__});                           \
        }                                                                                          \
    } while (0)

#endif
