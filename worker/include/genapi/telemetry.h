// SPDX-License-Identifier: MIT
// Telemetry for a service's own code: attach handlers to the events this worker process
// emits (docs/telemetry.md, "In a worker"), as the walkthrough's attach_all, attach_worker_pool,
// attach_config and attach_default_logger do:
//
//     static void on_event(wk_event_t ev, const wk_event_data_t *d, void *arg) {
//         if (ev == GA_EV_WORKER_POOL_TASK_STOP)
//             printf("%s took %lld us\n", d->request_type, (long long) d->duration_us);
//     }
//     int id;
//     wk_telemetry_attach_worker_pool("my-service", on_event, NULL, &id);
//
// A worker emits genapi.worker_pool.task.start, .stop, .exception (on the handler thread that
// ran the call, or the I/O thread for non_blocking functions), .task.rejected (the I/O thread,
// pool and queue full) and genapi.config.push (the I/O thread, the broker answered this
// worker's table). Handlers run synchronously on those threads: keep them short, and never
// call wk_reply from one. The data is valid during the call only. An event nobody listens to
// costs one branch.
#ifndef GENAPI_TELEMETRY_H
#define GENAPI_TELEMETRY_H

#include "ga_telemetry.h"

#include <genapi/worker.h>

#ifdef __cplusplus
extern "C" {
#endif

// An event (GA_EV_*), its measurements and metadata (service, request_type, version, node,
// pool_name, duration_us, success, reason, ...; NULL or GA_TM_UNSET when not given).
typedef ga_event_t wk_event_t;
typedef ga_tm_data_t wk_event_data_t;
// A handler; `arg` is the one given when attaching.
typedef void(wk_event_fn)(wk_event_t event, const wk_event_data_t *data, void *arg);

// Attaches `fn` to the events `pattern` selects: a full name ("genapi.worker_pool.task.stop"),
// a prefix at a dot boundary ("genapi.worker_pool"), or "" / "*" for all. `owner` names the
// attacher for wk_telemetry_detach_all. Sets *id. GA_ENOTFOUND when the pattern selects no
// event, GA_EAGAIN when 64 handlers are attached. Any thread.
WK_EXPORT ga_err_t wk_telemetry_attach(const char *pattern, const char *owner, wk_event_fn *fn,
                                       void *arg, int *id);
// Every event (the walkthrough's attach_all).
WK_EXPORT ga_err_t wk_telemetry_attach_all(const char *owner, wk_event_fn *fn, void *arg,
                                           int *id);
// genapi.worker_pool.* (attach_worker_pool).
WK_EXPORT ga_err_t wk_telemetry_attach_worker_pool(const char *owner, wk_event_fn *fn,
                                                   void *arg, int *id);
// genapi.config.* (attach_config).
WK_EXPORT ga_err_t wk_telemetry_attach_config(const char *owner, wk_event_fn *fn, void *arg,
                                              int *id);
// The built-in debug logger: one INFO log line per event (attach_default_logger).
WK_EXPORT ga_err_t wk_telemetry_attach_default_logger(int *id);
// Detaches handler `id`; GA_ENOTFOUND when none. Any thread.
WK_EXPORT ga_err_t wk_telemetry_detach(int id);
// Detaches every handler `owner` attached (the walkthrough's detach_all); returns how many.
WK_EXPORT size_t wk_telemetry_detach_all(const char *owner);
// The event's full name ("genapi.worker_pool.task.stop"), NULL when out of range; every event
// is 0 <= event < GA_EV_COUNT (the walkthrough's list_events).
WK_EXPORT const char *wk_event_name(wk_event_t event);
// Writes the event as "event=NAME key=value ..." (what the logger prints) into buf (len
// bytes, NUL-terminated, truncated); returns the length it wanted.
WK_EXPORT size_t wk_event_format(wk_event_t event, const wk_event_data_t *data, char *buf,
                                 size_t len);

#ifdef __cplusplus
}
#endif

#endif
