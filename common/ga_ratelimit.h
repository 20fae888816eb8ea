// SPDX-License-Identifier: MIT
// The rate limiter: exact sliding windows per (limit, key value), shared by the gateway (per
// gateway limits) and the broker (cluster-wide limits). Each window is a ring of the timestamps
// of the requests it accepted within window_ms, at most max_requests of them, so a key's memory
// is bounded by its limit; a check is O(1) amortized per applicable limit. Idle windows are
// reclaimed by an incremental sweep (a few hash slots per check), never a full scan. The number
// of tracked windows is capped (max_keys): a window that cannot be created is a limiter failure,
// decided by fail_open. docs/configuration.md, "Rate limits", documents the config and the rules.
// Does no I/O and reads no clock: callers pass the time. Owned by one thread; no locks.
#ifndef GA_RATELIMIT_H
#define GA_RATELIMIT_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GA_RL_LIMITS_MAX 64          // limits (global and per function) in one limiter
#define GA_RL_MAX_REQUESTS 1000000   // largest max_requests of a limit
#define GA_RL_WINDOW_MAX_MS 86400000 // largest window_ms of a limit (one day)
#define GA_RL_MAX_KEYS_MAX 10000000  // largest max_keys
#define GA_RL_MAX_KEYS_DEFAULT 100000 // tracked windows when the config does not say
#define GA_RL_VALUE_MAX 1024         // bytes of a key value that tell windows apart
#define GA_RL_NAME_MAX 128           // bytes of a key name, service or request_type

// What a client is told: over a limit (with retry_after_ms), or the limiter failed with
// fail_open false (no retry_after_ms: the client is not over any limit). Both can_retry.
#define GA_RL_REFUSAL "Rate limit exceeded"
#define GA_RL_FAILURE "Rate limiter unavailable"

typedef struct ga_ratelimit_t ga_ratelimit_t;

// Who a request is from, for the keys user_id, device_id, ip_address and argument names. Any
// member may be NULL (that key's limits then do not apply to the request). Borrowed.
typedef struct {
    const char *user_id;    // the connection's user id
    const char *device_id;  // the connection's device id
    const char *ip_address; // the client address
    const ga_value_t *args; // the validated arguments (a map)
} ga_rl_subject_t;

typedef enum {
    GA_RL_ALLOW,   // allowed (and counted in every applicable window), or nothing applies
    GA_RL_LIMITED, // over a limit: refused, not counted; retry_after_ms says when to retry
    GA_RL_FAILED,  // the limiter failed (window cap, fault) and fail_open is false: refuse
} ga_rl_verdict_t;

// Counters, since the limiter was created.
typedef struct {
    uint64_t checks;       // checks made while enabled
    uint64_t refused;      // requests refused over a limit
    uint64_t failures;     // limiter failures (allowed or refused by fail_open)
    uint64_t reclaimed;    // idle windows freed by the sweep
    size_t keys;           // windows tracked now
} ga_rl_stats_t;

// Creates a limiter: disabled, fail_open, no limits, max_keys GA_RL_MAX_KEYS_DEFAULT. No I/O.
ga_ratelimit_t *ga_ratelimit_new(void);
// Frees the limiter and every window. Accepts NULL; sets *self_p to NULL.
void ga_ratelimit_destroy(ga_ratelimit_t **self_p);

// Replaces the whole configuration with `cfg`: {enabled, fail_open, max_keys, scope,
// global_limits: [{key, max_requests, window_ms}], api_limits: [{service, request_type, key,
// max_requests, window_ms}]}; absent fields take their defaults. All or nothing: GA_ECONFIG with
// a reason naming the field (prefixed by `where`, e.g. "rate_limits") and nothing changed. A limit
// that is the same as before (scope, key, max_requests and window_ms) keeps its windows; any
// other starts afresh.
GA_MUST_CHECK ga_err_t ga_ratelimit_configure(ga_ratelimit_t *self, const ga_value_t *cfg,
                                              const char *where, char *why, size_t why_len);
// Adds a limit, or replaces the one with the same scope and key: {key, max_requests, window_ms}
// global, or with service and request_type for one function. GA_ECONFIG with a reason (nothing
// changed); GA_ETOOBIG when GA_RL_LIMITS_MAX limits exist already.
GA_MUST_CHECK ga_err_t ga_ratelimit_put(ga_ratelimit_t *self, const ga_value_t *limit,
                                        char *why, size_t why_len);
// Removes the limit {key[, service, request_type]}. GA_ENOTFOUND when there is none,
// GA_ECONFIG when `limit` is malformed (reason in `why`).
GA_MUST_CHECK ga_err_t ga_ratelimit_remove(ga_ratelimit_t *self, const ga_value_t *limit,
                                           char *why, size_t why_len);

// The configuration as ga_ratelimit_configure takes it, plus `stats` (counters, per limit
// `refused`). Built in `arena`.
ga_value_t ga_ratelimit_config(const ga_ratelimit_t *self, ga_arena_t *arena);
// The scope field of the configuration ("gateway" or "cluster"; borrowed).
const char *ga_ratelimit_scope(const ga_ratelimit_t *self);
bool ga_ratelimit_is_enabled(const ga_ratelimit_t *self);

// Checks one request to `service`.`request_type` from `who` at monotonic time `now_ms`, against
// the global limits and the function's own. Allowed: counted in every applicable window.
// Refused (GA_RL_LIMITED): counted nowhere, `*retry_after_ms` is when the window that refused
// it (the latest, if several did) has room again. A limiter failure allows the request when
// fail_open is true (counted nowhere), else returns GA_RL_FAILED.
ga_rl_verdict_t ga_ratelimit_check(ga_ratelimit_t *self, const char *service,
                                   const char *request_type, const ga_rl_subject_t *who,
                                   int64_t now_ms, int64_t *retry_after_ms);

// The windows of key value `value` at `now_ms`: one entry {scope, service, request_type, key,
// max, window_ms, current, remaining, retry_after_ms} per limit keyed by `key` (any key when NULL)
// that applies to `service`.`request_type` (global and that function's limits; every limit when
// service is NULL). Built in `arena`.
ga_value_t ga_ratelimit_status(ga_ratelimit_t *self, const char *value, const char *key,
                               const char *service, const char *request_type, int64_t now_ms,
                               ga_arena_t *arena);
// Forgets the windows of `value` for the same selection of limits as ga_ratelimit_status;
// returns how many windows were cleared.
size_t ga_ratelimit_reset(ga_ratelimit_t *self, const char *value, const char *key,
                          const char *service, const char *request_type);

// An operator request {op, ...} on the limiter at `now_ms`, answered with a map {ok, ...} built
// in `arena` (docs/protocol.md, "Rate limits" lists the ops and their fields):
//   rate_limit_config                                        -> {ok, config}
//   rate_limit_status {value, key?, service?, request_type?}  -> {ok, limits: [...]}
//   rate_limit_reset  {value, key?, service?, request_type?}  -> {ok, cleared}
//   rate_limit_add    {limit: {key, max_requests, window_ms, service?, request_type?}} -> {ok}
//   rate_limit_remove {limit: {key, service?, request_type?}} -> {ok}
//   rate_limit_set    {config: {...}}                         -> {ok}
// A refused request gets {ok: false, error}.
ga_value_t ga_ratelimit_admin(ga_ratelimit_t *self, const ga_value_t *req, int64_t now_ms,
                              ga_arena_t *arena);
// Whether `op` is one of the operations ga_ratelimit_admin answers.
bool ga_ratelimit_admin_op_known(const char *op);

// Sweeps up to `slots` hash slots for idle windows at `now_ms` (checks do a little of this
// each; a timer may call it too). Returns the windows freed.
size_t ga_ratelimit_sweep(ga_ratelimit_t *self, int64_t now_ms, size_t slots);
ga_rl_stats_t ga_ratelimit_stats(const ga_ratelimit_t *self);
// Makes every check fail as the limiter's own fault would (tests and drills only).
void ga_ratelimit_inject_fault(ga_ratelimit_t *self, bool on);

#endif
