// SPDX-License-Identifier: MIT
// The executor: the gateway's request pipeline in-process, without a network (docs/testing.md).
// A program or a unit test registers a service's function table (the same wk_service_t a
// worker passes to wk_main: the walkthrough's `nodes: :local`), builds a request with the
// caller's identity, and executes it: the same checks as the gateway (gateway/gw_pipeline.c:
// function lookup, arguments, rate limits, permission), then a permission callback and a before
// hook of a registered service, the handler called directly, and an after hook. Every response
// the client would get (docs/protocol.md, "Responses") goes to a callback, in order: sync
// results and refusals at once, an async call's ack then its outcome, a stream's ack then its
// chunks from whichever thread the handler streams. No libwebsockets, no broker.
// Nothing times out in-process: every call runs on the executing thread (docs/testing.md).
// One executor is used by one thread (stream messages may come from the handler's threads).
#ifndef GENAPI_EXECUTOR_H
#define GENAPI_EXECUTOR_H

#include "genapi/worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ex_executor_t ex_executor_t;

// A request as a client sends it, with the identity the gateway would attach to its connection.
typedef struct {
    const char *request_id;   // required (refused like the gateway does when NULL)
    const char *service;      // required
    const char *request_type; // required
    const char *version;      // NULL: the latest
    const char *args;         // the args object as JSON text; NULL: {}
    const char *user_id;      // NULL: anonymous
    const char *const *roles; // roles held (n_roles entries)
    size_t n_roles;
    const char *device_id;    // NULL: unknown
    const char *ip;           // NULL: unknown
} ex_request_t;

// One response object, as the client gets it (docs/protocol.md, "Responses"). Owned strings.
typedef struct {
    char *request_id;       // echoed
    bool success;
    char *result;           // the result as JSON text ("null" when none)
    char *error;            // NULL when none
    bool async;
    bool has_more;
    bool can_retry;
    int64_t retry_after_ms; // > 0 only for a rate-limit refusal
    char kind[8];           // "result", "error", "ack", "chunk", "last" or "end"
    char *json;             // the whole object as the gateway encodes it
} ex_response_t;

// Receives each response; `resp` is borrowed for the call (copy with ex_response_copy).
// Called on the executing thread, or on the thread a stream handler streams from.
typedef void(ex_response_fn)(void *arg, const ex_response_t *resp);

typedef struct {
    bool detail_errors; // show internal error details (the gateway's detail_errors)
    bool require_auth;  // anonymous callers get "Authentication required"
} ex_options_t;

// Creates an executor with no functions; `options` may be NULL (defaults: both false).
ex_executor_t *ex_executor_new(const ex_options_t *options);
// Frees the executor. Streams still open are dropped (their handlers must have ended them).
void ex_executor_destroy(ex_executor_t **self_p);
// Registers `service`'s function table (borrowed: it must outlive the executor), as a worker
// would push it to the broker. GA_ECONFIG with the reason in `err` when the table is invalid.
ga_err_t ex_executor_register(ex_executor_t *self, const wk_service_t *service, char *err,
                              size_t errlen);
// Configures the rate limits with the gateway's `rate_limits` JSON object (docs/configuration.md,
// "Rate limits"). GA_ECONFIG with the reason, naming the field, in `err`.
ga_err_t ex_executor_rate_limits(ex_executor_t *self, const char *json, char *err,
                                 size_t errlen);
// Executes `req`: each response goes to `fn` in order. Returns when the call is answered (for a
// stream: once the handler returned; the stream may go on from other threads). GA_EINVAL when
// `args` is not valid JSON (nothing is delivered then).
ga_err_t ex_executor_execute(ex_executor_t *self, const ex_request_t *req, ex_response_fn *fn,
                             void *arg);

// A deep copy of `resp`; free it with ex_response_free.
ex_response_t *ex_response_copy(const ex_response_t *resp);
void ex_response_free(ex_response_t **resp_p);

#ifdef __cplusplus
}
#endif

#endif
