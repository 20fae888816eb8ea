// SPDX-License-Identifier: MIT
// The gateway's request pipeline, apart from any socket: decode a request payload, find the
// function in the registry copy, validate and convert arguments, check permission (built-in
// modes and in-process callbacks here; a worker permission callback is sent by the bridge,
// gw_bridge_call_checked), apply the rate limits (docs/configuration.md, "Rate limits"), and
// turn broker results into client responses. Hooks (docs/protocol.md, "Hooks"): the pipeline
// builds the hook calls and judges their answers; the bridge sends them around the call
// (gw_bridge_call_checked). The WebSocket server and the broker bridge call it; tests and
// embedding programs can drive it directly.
// Owned by one thread (the gateway's loop).
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_funcfg.h"
#include "ga_mem.h"
#include "ga_ratelimit.h"
#include "ga_value.h"

#include <stdbool.h>
#include <stddef.h>

// Who is calling: set once per connection, never from a payload.
typedef struct {
    const char *user_id;      // NULL when anonymous
    const char *const *roles; // roles held
    size_t n_roles;           // entries in roles
    const char *device_id;    // NULL when unknown
    const char *ip;           // peer address
} gw_identity_t;

typedef enum {
    GW_KIND_RESULT,
    GW_KIND_ERROR,
    GW_KIND_ACK,
    GW_KIND_CHUNK,
    GW_KIND_LAST,
    GW_KIND_END,
    GW_KIND_RELAY, // a relay group message (docs/protocol.md, "Relay groups")
    GW_KIND_GAP,   // relay messages to this member were lost
} gw_kind_t;

// A response object as the client sees it (docs/protocol.md, section 1, "Responses").
typedef struct {
    const char *request_id;   // echoed; "unknown" when the request had none
    gw_kind_t kind;           // result, error, ack, chunk, last, end
    bool success;             // false only for errors
    const ga_value_t *result; // NULL encodes as null
    const char *error;        // NULL encodes as null
    bool async;               // see the table in docs/protocol.md, "Responses"
    bool has_more;            // see the table in docs/protocol.md, "Responses"
    bool can_retry;           // errors only: retrying may succeed
    int64_t retry_after_ms;   // > 0 only for a rate-limit refusal: encoded as retry_after_ms
} gw_response_t;

// A request that passed every check, ready for the broker.
typedef struct gw_call_t {
    const char *request_id;   // the client's id
    const char *service;      // service
    const char *request_type; // function
    const char *version;      // the resolved version (NULL: unversioned)
    ga_value_t args;          // validated args, defaults applied
    ga_resp_t response_type;  // how results come back
    int64_t timeout_ms;       // the function's timeout (GA_FUNCFG_TIMEOUT_INFINITY allowed)
    // Set when a worker function must allow the call first ("service.request_type"): the
    // caller sends the check (gw_pipeline_check_call) and dispatches only on approval.
    const char *permission_callback;
    const gw_identity_t *who; // the caller (borrowed: valid while the call is being sent)
    // The function's request_info: only then does the CALL carry the caller's identity (user id,
    // roles, device id, ip) for the handler. The gateway's own checks use `who` regardless.
    bool request_info;
    // hash:ARG and sticky:KEY: the value the broker routes by (docs/protocol.md, "Node
    // selection"), from the validated argument or the request field; NULL otherwise or when the
    // call has no such value. Sent as the CALL's routing_key.
    const char *routing_key;
    // Rate limits are counted at the broker (scope "cluster"): the CALL carries the caller's
    // keys for it (docs/protocol.md, "Rate limits").
    bool rate_limit_cluster;
    // A permission check's call (gw_pipeline_check_call): the broker counts that call's limits
    // when it gets the check, so they hold before the callback runs. NULL otherwise.
    const struct gw_call_t *rate_limit_of;
    // Hooks (docs/protocol.md, "Hooks"): worker functions "service.request_type" called before
    // and after the call (gw_pipeline_hook_call), with their extra args; NULL when none.
    const char *before_execute;
    const char *after_execute;
    ga_value_t before_args;        // extra args of before_execute (nil: none)
    ga_value_t after_args;         // extra args of after_execute (nil: none)
    int64_t hook_timeout_ms;       // each hook call's timeout
    // The function's config as registered, for hooks to read (borrowed from the registry copy:
    // valid while the call is being sent). NULL outside the pipeline.
    const ga_value_t *config;
    // A hook call (gw_pipeline_hook_call) of an in-process hook: run with gw_pipeline_run_hook,
    // never sent.
    bool local_hook;
} gw_call_t;

typedef enum {
    GW_HOOK_BEFORE,
    GW_HOOK_AFTER,
} gw_hook_stage_t;

// An in-process permission callback (registered by an embedding program): GA_OK allows the
// call; anything else denies it. The client sees "Permission denied: REASON" when the callback
// wrote a `reason`, else "Permission denied".
typedef ga_err_t(gw_permission_fn)(void *arg, const gw_identity_t *who, const gw_call_t *call,
                                   char *reason, size_t reason_len);

// An in-process hook (registered by an embedding program): `args` is what a worker hook gets
// (WK_HOOK_ARGS: hook, request, config, extra, result). GA_OK: `*out` (built in `arena`) is its
// answer: for a before hook {args: {...}} to replace the args (validated again) or any other
// value to go on; for an after hook the result the client gets. Anything else: a before hook
// refuses the call with `reason` (or "Hook failed" when it wrote none); an after hook leaves
// the result. Runs on the gateway's loop thread: it must not block.
typedef ga_err_t(gw_hook_fn)(void *arg, const ga_value_t *args, ga_arena_t *arena,
                             ga_value_t *out, char *reason, size_t reason_len);

typedef struct {
    bool detail_errors; // show internal error details to clients
    bool require_auth;  // anonymous connections get "Authentication required"
} gw_pipeline_config_t;

typedef struct gw_pipeline_t gw_pipeline_t;

// Creates a pipeline with an empty registry copy; `cfg` is borrowed.
gw_pipeline_t *gw_pipeline_new(const gw_pipeline_config_t *cfg);
void gw_pipeline_destroy(gw_pipeline_t **self_p);

// Applies a registry message from the broker: `replace` (a SNAPSHOT) empties the copy first.
// `body` is the message body ({functions: [config, ...], removed: [{service, request_type,
// version?}, ...]}); removals are applied before additions. Invalid configs are skipped and
// counted (the broker validated them; a gateway of another version may disagree). A SNAPSHOT
// with `warming_ms` > 0 (the broker has just started) keeps the previous copy aside for that
// long: a function it knew that the new copy lacks is refused with "Service temporarily
// unavailable" (can_retry) instead of "Unknown function". Returns the number of configs added,
// changed or removed.
size_t gw_pipeline_apply(gw_pipeline_t *self, const ga_value_t *body, bool replace);
size_t gw_pipeline_function_count(const gw_pipeline_t *self);

// The pipeline's rate limiter (owned by the pipeline): configure it before serving
// (ga_ratelimit_configure) and change it at runtime (gw_pipeline_admin). Disabled until then.
ga_ratelimit_t *gw_pipeline_rate_limits(gw_pipeline_t *self);
// Answers a broker's GATEWAY_ADMIN request `req` ({op, ...}: the rate_limit_* operations of
// ga_ratelimit_admin) with the reply map, built in `arena`.
ga_value_t gw_pipeline_admin(gw_pipeline_t *self, const ga_value_t *req, ga_arena_t *arena);

// Runs the checks on one API payload, in this order: the request fields, require_auth, the
// function (unknown, disabled, temporarily unavailable), its arguments, the rate limits, the
// permission, then that its hooks can run (a before hook that cannot refuses with "Hook
// failed"); the hooks, their extra args, hook_timeout and the config go into the call. GA_OK: `*call` is ready to dispatch (strings and args
// borrowed from `payload` and `arena`). Any other result: `*refusal` holds the error response
// to send, and call->response_type says whether the function was found to be a `none` function
// (whose callers never receive anything, errors included).
GA_MUST_CHECK ga_err_t gw_pipeline_prepare(gw_pipeline_t *self, const gw_identity_t *who,
                                           const ga_value_t *payload, ga_arena_t *arena,
                                           gw_call_t *call, gw_response_t *refusal);

// Adds a built-in function of the gateway itself (the relay functions of chat_service,
// gateway/gw_relay.c): found before the broker's configs and kept across snapshots, checked
// like any other (fields, arguments, rate limits, permission). Takes over `*cfg`.
void gw_pipeline_add_builtin(gw_pipeline_t *self, ga_funcfg_t **cfg);

// Registers an in-process permission callback under `name`; a config whose
// permission_callback is `name` is decided by it, synchronously. Names are borrowed.
void gw_pipeline_register_permission(gw_pipeline_t *self, const char *name, gw_permission_fn *fn,
                                     void *arg);

// Builds the call that asks the worker permission callback of `call` (its args: service,
// request_type, args, user_id, roles, device_id, ip). False when the callback name is not of
// the form "service.request_type".
bool gw_pipeline_check_call(const gw_identity_t *who, const gw_call_t *call, ga_arena_t *arena,
                            gw_call_t *check);
// The verdict of a permission callback's RESULT body (docs/protocol.md, "Permissions"): NULL
// allows (any ok answer, whatever its value, except `false` or {"allow": false}); otherwise the
// client's error message, in `arena` when it is built: "Permission denied: REASON" when the
// callback answered with its own error (code GA_EHANDLER), plain "Permission denied" for any
// other failure (crash, timeout, unknown callback, malformed answer) and for `false`.
const char *gw_pipeline_check_denial(const ga_value_t *body, ga_arena_t *arena);

// Builds the call of `call`'s before or after hook (a sync call of the worker function it
// names, with hook_timeout). Its args, as WK_HOOK_ARGS declares them (worker/include/genapi/
// worker.h): hook ("before" or "after"), request {request_id, service, request_type, version,
// args, user_id, roles, device_id, ip}, config (the function's, read-only), extra (the hook's
// extra args, or nil) and, for an after hook, result (added by the bridge when the result
// comes). False when the call has no such hook, or its name is neither "service.request_type"
// nor an in-process hook's.
// An in-process hook's name instead sets `hook->local_hook` (service is the name).
bool gw_pipeline_hook_call(const gw_pipeline_t *self, const gw_identity_t *who,
                           const gw_call_t *call, gw_hook_stage_t stage, ga_arena_t *arena,
                           gw_call_t *hook);
// Registers an in-process hook under `name`: a config whose before_execute or after_execute
// names it runs it at that step of the chain, on the loop thread. Names are borrowed.
void gw_pipeline_register_hook(gw_pipeline_t *self, const char *name, gw_hook_fn *fn, void *arg);
// Runs the in-process hook `name` on `args` and returns its answer as a RESULT body, as a worker
// hook's would be: {ok: true, result} or {ok: false, error, code} (code GA_EHANDLER when it gave
// a reason, GA_EINTERNAL otherwise or when no such hook is registered).
ga_value_t gw_pipeline_run_hook(gw_pipeline_t *self, const char *name, const ga_value_t *args,
                                ga_arena_t *arena);
// The verdict of a before hook's RESULT `body` on the CALL body `call` it guards (service,
// request_type, version, args). GA_OK: go on, sending `*args`: the hook's replacement (an ok
// answer {args: {...}}), validated again against the function's declaration, or the call's own
// args (any other ok answer). Otherwise `*refusal` is the client's error: the hook's own error
// message (GA_EHANDLER), "Hook timed out" (GA_ETIMEDOUT), "Hook failed" (GA_EINTERNAL: a crash,
// an internal error, an unknown hook, an `args` that is not a map) or the validation message of
// a replacement the declaration refuses (GA_EINVAL). Counts failures and timeouts.
GA_MUST_CHECK ga_err_t gw_pipeline_before_verdict(gw_pipeline_t *self, const ga_value_t *body,
                                                  const ga_value_t *call, ga_arena_t *arena,
                                                  ga_value_t *args, const char **refusal);
// The verdict of an after hook's RESULT `body`: true when it answered ok (its result is then
// the result the client gets); false when it failed or timed out (counted): the original
// result stands.
bool gw_pipeline_after_verdict(gw_pipeline_t *self, const ga_value_t *body);
// Hook calls that failed (crash, internal error, unknown hook, malformed answer) and that timed
// out, since start.
uint64_t gw_pipeline_hook_failures(const gw_pipeline_t *self);
uint64_t gw_pipeline_hook_timeouts(const gw_pipeline_t *self);

// Converts a broker RESULT body for `request_id` into the response the client gets.
void gw_pipeline_result(const gw_pipeline_t *self, const ga_value_t *body,
                        const char *request_id, gw_response_t *out);

// Puts the fields of `call` a worker's REQUEST carries into the CALL map `m` (built in `a`):
// service, request_type, version, args, request_id, routing_key and, only for a function with
// request_info, the caller's identity (user_id, roles, device_id, ip). The id, stream_topic
// and rate_limit fields are the sender's. The gateway's bridge and the in-process executor
// (executor/) both build their calls with it.
void gw_call_body_put(const gw_call_t *call, ga_arena_t *a, ga_value_t *m);
// The acknowledgement of an accepted async call or a started stream (docs/protocol.md,
// "Responses").
gw_response_t gw_response_ack(const char *request_id, ga_resp_t type);
// Marks an acknowledged call's outcome `r` (a push): async only for an error inside a stream.
void gw_response_pushed(gw_response_t *r, ga_resp_t type);
// Converts a stream message body {kind, data?, error?} for `request_id` into the push the
// client gets (chunk, last, end or error).
void gw_response_stream(const ga_value_t *body, const char *request_id, gw_response_t *out);

// Fills an error response.
void gw_response_error(gw_response_t *out, const char *request_id, const char *message,
                       bool can_retry);
// Appends the JSON object of `r` to `out`.
void gw_response_encode(const gw_response_t *r, ga_buf_t *out);
// The same object in two parts around its result (r->result is not read): the head, which ends
// with `"result":`, and the tail after the result. gw_response_encode is head, result, tail; a
// stream's chunks differ only in their result, so the gateway builds the parts once per stream.
void gw_response_encode_head(const gw_response_t *r, ga_buf_t *out);
void gw_response_encode_tail(const gw_response_t *r, ga_buf_t *out);
const char *gw_kind_name(gw_kind_t kind);

#endif
