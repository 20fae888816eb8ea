// SPDX-License-Identifier: MIT
// libgenapi-worker: the C API a service links to. A service names its functions in a table
// (request type, version, arguments, handler); the library connects to the broker, pushes the
// table, heartbeats, re-registers after a broker restart, and runs handlers on a bounded
// thread pool. Handlers read validated arguments and answer with a value or an error; values
// are built with the wk_* constructors below, never as JSON text.
//
//     static void hello(wk_request_t *req, void *ctx) {
//         wk_reply(req, wk_map(req, "greeting", wk_str(req, "hello"), NULL));
//     }
//     static const wk_function_t functions[] = {{.request_type = "hello", .handler = hello}};
//     static const wk_service_t service = {.service = "greeter", .functions = functions,
//                                          .n_functions = 1};
//     int main(int argc, char **argv) { return wk_main(argc, argv, &service); }
#ifndef GENAPI_WORKER_H
#define GENAPI_WORKER_H

#include "ga_err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define WK_EXPORT __attribute__((visibility("default")))
#else
#define WK_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wk_worker_t wk_worker_t;
typedef struct wk_request_t wk_request_t;
typedef struct wk_stream_t wk_stream_t;
// A value (nil, boolean, integer, float, string, list or map). Values built for a request
// live until the handler returns; they are owned by the request.
typedef struct ga_value_t wk_value_t;

// A handler runs on a pool thread (on the I/O thread when the function is non_blocking). It
// must answer exactly once with wk_reply or wk_reply_error before returning (a handler that
// returns without answering is answered with an internal error). `ctx` is the service's ctx.
typedef void(wk_handler_fn)(wk_request_t *req, void *ctx);

// The library checks every call's arguments against the function's declaration before its
// handler runs, whoever sent the call. A function the gateway calls on its own behalf declares
// what the gateway sends it:
// a permission callback (named by another function's permission_callback) ...
#define WK_PERMISSION_CALLBACK_ARGS                                                                \
    "service:string, request_type:string, args:map, user_id:string(allow_nil=true), "            \
    "roles:list_string(allow_nil=true), device_id:string(allow_nil=true), "                      \
    "ip:string(allow_nil=true)"
// ... a hook (named by another function's before_execute or after_execute; docs/protocol.md,
// "Hooks"): hook is "before" or "after"; request is the whole request {request_id, service,
// request_type, version, args, user_id, roles, device_id, ip}, whatever request_info says;
// config the function's config (read-only); extra the hook's extra args (nil when none);
// result, for an after hook, the call's result. A before hook answers {args: {...}} to replace
// the args (validated again), any other value to go on unchanged, or an error to refuse the
// call with that message; an after hook answers the result the client gets ...
#define WK_HOOK_ARGS                                                                               \
    "hook:string, request:map, config:map, extra:any(allow_nil=true), "                          \
    "result:any(allow_nil=true)"
// ... and the identity service of a gateway with auth=service (its connect params and the
// client's address).
#define WK_AUTH_SERVICE_ARGS "params:map, ip:string(allow_nil=true)"

typedef struct {
    const char *request_type;  // function name (required)
    const char *version;       // version string, NULL for none
    // Declared arguments in order, "name:type" each, with options in parentheses:
    //   "title:string(max_bytes=200), tags:list_string(max_items=10, max_item_bytes=50),
    //    published:boolean(default=false), metadata:map(required=[author], accept=[a, b])"
    // Options: max_bytes, max_items, max_item_bytes, allow_nil, default, required, accept.
    const char *args;
    bool args_as_map;          // the handler reads one map (wk_args) rather than positions
    const char *response_type; // "sync" (default when NULL), "async", "stream" or "none"
    int timeout_ms;            // 0: the default (5000); -1: no timeout (streams only)
    // Who may call: NULL or "false" (anyone), "any_authenticated", "arg:NAME" (the argument
    // equals the caller's user id) or "role:[admin, moderator]".
    const char *check_permission;
    // "service.request_type" of a worker function deciding instead of check_permission.
    const char *permission_callback;
    // The handler sees the caller's identity: wk_request_user_id, wk_request_has_role,
    // wk_request_device_id and wk_request_ip. Without it they answer NULL (false): the gateway
    // does not send the identity, and the library would not show it.
    bool request_info;
    // The handler never blocks (no I/O, no sleeping, microseconds of work): it runs on the
    // library's I/O thread, skipping the two thread hand-offs of the pool. Not for streams.
    bool non_blocking;
    // How the broker picks the worker for a call (docs/protocol.md, "Node selection"): NULL or
    // "random", "hash" (request id), "hash:ARG" (a declared argument's value), "round_robin",
    // "sticky:KEY" (an argument, or user_id, device_id, ip, request_id) or "least_loaded".
    const char *choose_node_mode;
    // The node names allowed to serve it, NULL-terminated; NULL: any worker of the service.
    const char *const *nodes;
    // Or a resolver: "service.request_type" of a sync worker function, called without
    // arguments, whose result (a list of node names, cached briefly by the broker) allows the
    // nodes (docs/protocol.md, "Node selection"). Not with `nodes`.
    const char *nodes_resolver;
    // Retry (docs/protocol.md, "Retry and fallback"): NULL for none; "N" or "all_nodes:N" for
    // at most N attempts in all moving across nodes, "same_node:N" for at most N on the node
    // chosen first (N in 1..10; sync and async functions only). Retried: calls that could not
    // be delivered, and errors answered with wk_reply_error_retryable.
    const char *retry;
    // Hooks (docs/protocol.md, "Hooks"): "service.request_type" of a worker function declared
    // with WK_HOOK_ARGS, run by the gateway before the call (may replace the args or refuse)
    // and after it (sync and async only: returns the result the client gets). Their extra
    // args as JSON text, e.g. "[\"extra_value\", 42]" (NULL: none); hook_timeout_ms bounds each
    // hook call (0: the default, 5000).
    const char *before_execute;
    const char *before_execute_args;
    const char *after_execute;
    const char *after_execute_args;
    int hook_timeout_ms;
    wk_handler_fn *handler;    // the code (required)
    // Left out of the table until wk_worker_set_offered offers it (docs/protocol.md, "Config
    // pull"): a function this service turns on at run time.
    bool withdrawn;
    // visibility "internal" (docs/protocol.md, "Function config"; docs/security.md): the
    // function serves the gateway and the broker only, as a hook, a permission callback, the
    // identity service of auth=service or a nodes resolver. Their calls reach it; a client
    // calling it directly gets "Unknown function", as if it did not exist. Set it on every
    // function declared with WK_HOOK_ARGS, WK_PERMISSION_CALLBACK_ARGS or WK_AUTH_SERVICE_ARGS.
    bool internal;
} wk_function_t;

typedef struct {
    const char *service;              // service name (required)
    const char *node;                 // node name; NULL: "<service>@<hostname>"
    const wk_function_t *functions;   // the function table
    size_t n_functions;               // entries in functions
    void *ctx;                        // passed to every handler
} wk_service_t;

typedef struct {
    const char *broker;        // broker worker endpoint (default "tcp://127.0.0.1:5570")
    int heartbeat_ms;          // until the broker says otherwise (default 1000)
    int threads;               // handler threads (default 4)
    int queue_max;             // requests waiting for a thread before refusals (default 256)
    const char *push_token;    // sent with the table when set
    // Table version (NULL: a hash of the table). The broker skips a table pushed under the
    // version it last processed for the service, unless force_push (docs/protocol.md).
    const char *config_version;
    bool force_push;           // push the table even under an already processed version
    // Called on the library's I/O thread each time the broker accepts the table.
    void (*on_registered)(const char *node, const char *broker, void *arg);
    void *on_registered_arg;   // passed to on_registered
    // CurveZMQ (docs/security.md): this worker's certificate (FILE and FILE_secret, made by
    // genapi-ctl keygen --role worker) and the broker's public certificate. Both NULL: off.
    const char *curve_secret_file;
    const char *curve_broker_file;
    // wk_worker_destroy drains first (docs/operations.md, "Lifecycle"): it tells the broker to
    // send nothing more, refuses what is queued or still arrives (the broker gives it to
    // another worker), sends the replies of the handlers running, then says DISCONNECT. It
    // awaits those replies this long, in ms (0: 10000; negative: no drain, at once).
    int shutdown_timeout_ms;
} wk_options_t;

// Creates a worker for `service` with `options` (either may be borrowed; both must outlive
// the worker). No I/O. Any thread.
WK_EXPORT wk_worker_t *wk_worker_new(const wk_service_t *service, const wk_options_t *options);
// Drains (see shutdown_timeout_ms), stops the pool (waiting for running handlers), says
// DISCONNECT to the broker, frees everything.
WK_EXPORT void wk_worker_destroy(wk_worker_t **self_p);
// Validates the function table, starts the pool and the I/O thread, and connects. Returns
// GA_ECONFIG with the reason in `err` when the table is invalid, GA_EIO when the broker
// endpoint is unusable. Registration then happens in the background, and again after any
// broker restart.
WK_EXPORT ga_err_t wk_worker_start(wk_worker_t *self, char *err, size_t errlen);
// Offers (or withdraws) the function (request_type, version; version NULL for the unversioned
// one) from now on: the table this worker answers the broker's pulls with, and pushes at its
// next registration, has it (or not), under a new config version. The change is not pushed:
// the broker finds it at its next pull (docs/protocol.md, "Config pull"). Any thread, after
// wk_worker_start. GA_ENOTFOUND when the service has no such function.
WK_EXPORT ga_err_t wk_worker_set_offered(wk_worker_t *self, const char *request_type,
                                         const char *version, bool offered);

// A complete main(): options from --set name=value and GENAPI_* (broker, heartbeat_ms,
// threads, queue_max, push_token, config_version, force_push, node, log_level,
// shutdown_timeout_ms), logging to stderr, "READY worker <node> <broker>" on stdout at each
// registration, and a drain on SIGINT or SIGTERM (exit 0); a second one exits at once (exit
// 1). For programs only: it owns the process's signals.
WK_EXPORT int wk_main(int argc, char **argv, const wk_service_t *service);

// --- Inside a handler -----------------------------------------------------------------------

// An argument by name, or NULL when absent. Borrowed from the request.
WK_EXPORT const wk_value_t *wk_arg(wk_request_t *req, const char *name);
// An argument by its position in the declared order, or NULL.
WK_EXPORT const wk_value_t *wk_arg_at(wk_request_t *req, size_t index);
// All arguments as one map (for functions declared with map-style arguments).
WK_EXPORT const wk_value_t *wk_args(wk_request_t *req);
// Typed shortcuts: the string (NULL when absent or not a string), the number as int64 or
// double (`dflt` when absent or not a number), the boolean (`dflt` likewise).
WK_EXPORT const char *wk_arg_str(wk_request_t *req, const char *name);
WK_EXPORT int64_t wk_arg_int(wk_request_t *req, const char *name, int64_t dflt);
WK_EXPORT double wk_arg_num(wk_request_t *req, const char *name, double dflt);
WK_EXPORT bool wk_arg_bool(wk_request_t *req, const char *name, bool dflt);
// The client's request id.
WK_EXPORT const char *wk_request_id(wk_request_t *req);
// The node name of the worker running the handler (the walkthrough's Node.self()).
WK_EXPORT const char *wk_request_node(wk_request_t *req);
// The worker running the handler (for wk_worker_set_offered).
WK_EXPORT wk_worker_t *wk_request_worker(wk_request_t *req);
// Who called, for functions declared with request_info (NULL or false otherwise): the
// connection's user id (NULL when anonymous), its device id (NULL when unknown), its peer
// address, and whether the caller holds `role`.
WK_EXPORT const char *wk_request_user_id(wk_request_t *req);
WK_EXPORT const char *wk_request_device_id(wk_request_t *req);
WK_EXPORT const char *wk_request_ip(wk_request_t *req);
WK_EXPORT bool wk_request_has_role(wk_request_t *req, const char *role);

// Answers with `result` (NULL means nil). Only the first answer counts. A result nested more
// than 31 lists/maps deep cannot travel (docs/protocol.md): the caller gets an internal error.
WK_EXPORT void wk_reply(wk_request_t *req, const wk_value_t *result);
// Answers with an error message shown to the client. Only the first answer counts. The broker
// never retries it: an error answer usually means the call ran.
WK_EXPORT void wk_reply_error(wk_request_t *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
// The same, marking the error retryable: for a function with a retry setting, the broker makes
// another attempt (on another node, or the same one for same_node) while attempts and time
// remain, and the client sees this error only when none do. For a failure that leaves nothing
// done (a dependency down, a lock not taken), so that running the call again is safe.
WK_EXPORT void wk_reply_error_retryable(wk_request_t *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// --- Streams (functions with response_type "stream") -----------------------------------------

// The request's stream; NULL unless the function streams. The stream outlives the handler: it
// may be handed to any thread, which keeps sending until it ends the stream with
// wk_stream_send_last, wk_stream_complete or wk_stream_error. After an ending call the stream
// must not be used again. A cancelled stream must still be ended (sends are refused).
WK_EXPORT wk_stream_t *wk_request_stream(wk_request_t *req);
// A context for building values on the streaming thread (wk_map(wk_stream_ctx(s), ...)).
// Its values live until the next send on the stream.
WK_EXPORT wk_request_t *wk_stream_ctx(wk_stream_t *s);
// Sends one chunk (has_more true): encodes it and queues it for the library's publisher
// thread, which sends it at once, or with the stream's other chunks queued meanwhile in one
// batch. GA_ECLOSED when cancelled; GA_EAGAIN when the stream's queue (256 messages or 32 KB)
// had no room for 5 s because the broker was not taking its messages, or the stream is broken
// (end it with wk_stream_error). One thread at a time per stream.
WK_EXPORT ga_err_t wk_stream_send(wk_stream_t *s, const wk_value_t *chunk);
// Sends the final chunk and ends the stream.
WK_EXPORT ga_err_t wk_stream_send_last(wk_stream_t *s, const wk_value_t *chunk);
// Ends the stream without data.
WK_EXPORT ga_err_t wk_stream_complete(wk_stream_t *s);
// Ends the stream with an error message for the client.
WK_EXPORT ga_err_t wk_stream_error(wk_stream_t *s, const char *message);
// True once the broker has asked to stop (client disconnected or left, stop-stream, timeout).
WK_EXPORT bool wk_stream_is_cancelled(const wk_stream_t *s);

// --- Building values (owned by the request) -------------------------------------------------

WK_EXPORT wk_value_t *wk_nil(wk_request_t *req);
WK_EXPORT wk_value_t *wk_bool(wk_request_t *req, bool b);
WK_EXPORT wk_value_t *wk_int(wk_request_t *req, int64_t i);
WK_EXPORT wk_value_t *wk_float(wk_request_t *req, double f);
// Copies `s`.
WK_EXPORT wk_value_t *wk_str(wk_request_t *req, const char *s);
// A list of the given items, ended by NULL: wk_list(req, a, b, NULL).
WK_EXPORT wk_value_t *wk_list(wk_request_t *req, ...);
// A map from key/value pairs, ended by NULL: wk_map(req, "id", v1, "name", v2, NULL).
WK_EXPORT wk_value_t *wk_map(wk_request_t *req, ...);
WK_EXPORT void wk_list_push(wk_request_t *req, wk_value_t *list, const wk_value_t *item);
WK_EXPORT void wk_map_set(wk_request_t *req, wk_value_t *map, const char *key,
                          const wk_value_t *value);

// Reading values received as arguments.
typedef enum {
    WK_NIL,
    WK_BOOL,
    WK_INT,
    WK_FLOAT,
    WK_STR,
    WK_LIST,
    WK_MAP,
} wk_type_t;
WK_EXPORT wk_type_t wk_value_type(const wk_value_t *v);
WK_EXPORT const char *wk_value_str(const wk_value_t *v);          // NULL unless a string
WK_EXPORT int64_t wk_value_int(const wk_value_t *v, int64_t dflt); // integers and whole floats
WK_EXPORT double wk_value_num(const wk_value_t *v, double dflt);
WK_EXPORT size_t wk_value_len(const wk_value_t *v);               // list items or map pairs
WK_EXPORT const wk_value_t *wk_value_at(const wk_value_t *v, size_t index);      // list item
WK_EXPORT const wk_value_t *wk_value_get(const wk_value_t *v, const char *key); // map value

// --- Config verify (docs/protocol.md, "Config verify from workers") ------------------------

// The outcome of wk_verify.
typedef enum {
    WK_VERIFY_MATCHED,   // the service's pushed config_version is `version`
    WK_VERIFY_MISMATCH,  // it is another one: `stored_version`
    WK_VERIFY_NOT_FOUND, // no push from the service since the broker started
    WK_VERIFY_FAILED,    // no answer: `code` and `error` say why
} wk_verify_status_t;

typedef struct {
    wk_verify_status_t status;
    // WK_VERIFY_MISMATCH: the config_version of the service's last push (NULL when that push
    // named none).
    const char *stored_version;
    // WK_VERIFY_FAILED: GA_EINVAL (a bad call, or the broker's refusal: "Permission denied:
    // ..."), GA_EUNAVAIL ("Service unavailable", can_retry: not registered with a broker, or
    // stopping), GA_EAGAIN (can_retry: too many requests already wait for the broker),
    // GA_ETIMEDOUT ("Request timed out").
    int code;
    bool can_retry;
    const char *error;
} wk_verify_result_t;

// Asks the broker whether `service`'s pushed config_version is `version` (the admin op verify
// of genapi-ctl, without the admin token): what a service checks after a deploy before it
// relies on its new table. Waits at most `timeout_ms` (0: 5000) for the answer; strings live in
// `ctx` (a handler's request, or a context from wk_context_new in genapi/groups.h for a thread
// of the service's own). Never from a non_blocking handler (refused at once, GA_EINVAL). With
// CURVE on, a worker may verify only the services its certificate names (docs/security.md);
// without it, any service. Needs no push token: it changes nothing.
WK_EXPORT wk_verify_result_t wk_verify(wk_request_t *ctx, const char *service,
                                       const char *version, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
