// SPDX-License-Identifier: MIT
// The broker's registry: function configs by (service, request_type, version), the live
// workers of each service and what each offers, and the failed-configs list. Owned by the
// broker's loop thread; no I/O here, so it is unit-testable without sockets.
//
// When a config goes (docs/protocol.md, "Registry updates"): a config that no worker in the
// registry offers while its service has at least one registered worker (the service is up,
// without it) is deleted once that has lasted `grace_ms` (bk_registry_sweep). A service with
// no worker at all keeps its configs: a worker that dies or disconnects deletes nothing, and
// calls get "Service unavailable" until a worker serves them again.
#ifndef BK_REGISTRY_H
#define BK_REGISTRY_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_funcfg.h"
#include "ga_proto.h"
#include "ga_value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_FAILED_MAX      256                   // failed-config entries kept
#define BK_FAILED_KEEP_MS  (24 * 3600 * 1000LL)  // how long a failed entry is kept
#define BK_OVERRIDES_MAX   4096                  // operator overrides kept (one per config key)
// The registry snapshot (every config's source) must fit in one message body (GA_PROTO_MAX_BODY)
// with the SNAPSHOT's other fields: a REGISTER (or an operator's add) that would make it larger
// is refused whole with "registry full: ..." (docs/protocol.md, "Registration").
#define BK_SNAPSHOT_RESERVE 4096                 // bytes kept for the message's other fields
#define BK_SNAPSHOT_MAX     (GA_PROTO_MAX_BODY - BK_SNAPSHOT_RESERVE)
#define BK_SNAPSHOT_SLACK   16                   // per operator-overridden config ("disabled")

typedef struct bk_registry_t bk_registry_t;

// A connected worker. Owned by the registry; pointers stay valid until bk_registry_remove.
typedef struct {
    uint8_t id[255];     // ZeroMQ routing id
    size_t id_len;       // bytes in id
    char *node;          // node name ("user_service@host-1")
    char *service;       // the service it serves
    int64_t expiry;      // monotonic ms after which it is dead unless heard from
    size_t inflight;     // requests sent and not yet answered
    bool registered;     // has pushed an accepted table
    void *offers;        // zhash_t of function keys it offers (values unused)
    int failures;        // consecutive failures (timeouts) of this life; reset by any answer
    uint64_t life;       // the broker's number for this life of the worker (a REGISTER with a
                         // new session starts a new one): its calls are owned by it
    int64_t session;     // the worker's session from REGISTER (a new one: it dropped its queue)
    int64_t breaker_until; // monotonic ms: skipped until then (circuit open)
    bool draining;       // it said it is stopping (HEARTBEAT draining): no new calls
    bool batch;          // its REGISTER said it reads batches (docs/protocol.md, "Batches")
    char key[64];        // CURVE public key it registered with ("" when CURVE is off)
    size_t slot;         // its place in the registry's list of workers (bk_registry.c)
    // Its pool as its last HEARTBEAT said (docs/protocol.md; bk_inspect.c): handler threads,
    // those running a call, calls queued for a thread, the queue's bound; pool_at: monotonic
    // ms of that HEARTBEAT (0: never reported).
    int64_t pool_threads, pool_busy, pool_queued, pool_queue_max, pool_at;
} bk_worker_t;

bk_registry_t *bk_registry_new(void);
void bk_registry_destroy(bk_registry_t **self_p);

// Finds the worker with routing id `id`, or NULL.
bk_worker_t *bk_registry_worker(bk_registry_t *self, const uint8_t *id, size_t id_len);

// Registers (or re-registers) the worker at `id` from a REGISTER body. Each function config is
// validated; accepted ones are added or replaced, refused ones recorded in the failed list. A
// table that would make the snapshot larger than BK_SNAPSHOT_MAX is refused whole, before
// anything changes (the worker is not registered): GA_ETOOBIG, `err` "registry full: ...".
// A key an operator overrides keeps the override (the pushed config is kept beneath it). When
// the body's config_version equals the service's last processed one and `force` is not true,
// the table is skipped (`*skipped`): the worker is registered and offers what that push
// gave, and `*failed` repeats what it refused. On return `*failed` is a list of
// {function, reason} and `*changed` a list of the config sources that were added or changed
// (both in `arena`). Returns GA_OK, or GA_ECONFIG with `err` set when the body itself is
// unusable (no node or service, functions not a list). The caller checks the push token.
GA_MUST_CHECK ga_err_t bk_registry_register(bk_registry_t *self, const uint8_t *id,
                                            size_t id_len, const ga_value_t *body,
                                            int64_t expiry, ga_arena_t *arena,
                                            ga_value_t *failed, ga_value_t *changed,
                                            bk_worker_t **worker, bool *skipped, char *err,
                                            size_t errlen);

// Calls `fn` for each reference from one config to a public one (visibility not "internal"):
// a before_execute, after_execute, permission_callback or nodes resolver naming
// "service.request_type" that resolves (as the gateway's or the broker's call of it would) to a
// config clients may call directly. Only references where the referring config or the named
// one belongs to `service` are given (a service that has just registered). The broker warns of
// each (docs/security.md, "Internal functions"): the reference works, but clients can call
// the function it names.
void bk_registry_each_public_ref(bk_registry_t *self, const char *service,
                                 void (*fn)(const ga_funcfg_t *from, const char *field,
                                            const ga_funcfg_t *to, void *arg),
                                 void *arg);

// Removes a worker (it has died or disconnected). Its pointer is invalid afterwards.
void bk_registry_remove(bk_registry_t *self, bk_worker_t *worker);

// Looks up a config; `version` NULL means the unversioned config, else the highest enabled
// version. Returns NULL when unknown.
const ga_funcfg_t *bk_registry_lookup(bk_registry_t *self, const char *service,
                                      const char *request_type, const char *version);

// --- Operators (docs/operations.md, "Versions") ---
// An operator's disable, delete or add is an override of one config key (service,
// request_type, version): it survives the workers registering again, until an operator lifts
// it (enable, or add for a deleted key). In each call `version` NULL or "0.0.0" names the
// unversioned config. Errors: GA_ENOTFOUND (no such config), GA_ECONFIG (add: the config is
// refused), GA_ETOOBIG (BK_OVERRIDES_MAX reached), with the reason in `err`.

// The config with exactly this key (no version resolution), or NULL.
const ga_funcfg_t *bk_registry_get(bk_registry_t *self, const char *service,
                                   const char *request_type, const char *version);
// What an operator did to this key: "disabled", "deleted", "added" or NULL.
const char *bk_registry_override_state(bk_registry_t *self, const char *service,
                                       const char *request_type, const char *version);
// Disables a config: calls get "Function disabled", version-less calls resolve past it.
// `*changed` lists the new source (for the gateways).
GA_MUST_CHECK ga_err_t bk_registry_disable(bk_registry_t *self, const char *service,
                                           const char *request_type, const char *version,
                                           ga_arena_t *arena, ga_value_t *changed, char *err,
                                           size_t errlen);
// Lifts an operator's disable or delete (the config the workers pushed, or the operator's
// added one, comes back). GA_OK without change when nothing was overridden.
GA_MUST_CHECK ga_err_t bk_registry_enable(bk_registry_t *self, const char *service,
                                          const char *request_type, const char *version,
                                          ga_arena_t *arena, ga_value_t *changed, char *err,
                                          size_t errlen);
// Deletes a config (and an operator's added one); `*removed` lists its key.
GA_MUST_CHECK ga_err_t bk_registry_delete(bk_registry_t *self, const char *service,
                                          const char *request_type, const char *version,
                                          ga_arena_t *arena, ga_value_t *removed, char *err,
                                          size_t errlen);
// Adds (or replaces) a config from `source` (a config map, validated as a pushed one), in
// place of what the workers push for its key, lifting a delete or disable. Refused unless a
// registered worker of its service offers its key (that worker runs it), and (GA_ETOOBIG,
// "registry full: ...") when it would make the snapshot larger than BK_SNAPSHOT_MAX.
GA_MUST_CHECK ga_err_t bk_registry_add(bk_registry_t *self, const ga_value_t *source,
                                       ga_arena_t *arena, ga_value_t *changed, char *err,
                                       size_t errlen);
// Every function's versions (of `service` only, when not NULL), deleted ones included:
// {service: {request_type: [{version (null: unversioned), enabled, operator?}]}}, versions in
// semantic-version order, in `arena`.
ga_value_t bk_registry_versions(bk_registry_t *self, const char *service, ga_arena_t *arena);

typedef enum {
    BK_VERIFY_MATCHED,   // the service's last processed push had this config_version
    BK_VERIFY_MISMATCH,  // it had another (in *stored; NULL when it named none)
    BK_VERIFY_NOT_FOUND, // no push from this service since the broker started
} bk_verify_t;
// Compares `config_version` with the service's last processed push.
bk_verify_t bk_registry_verify(bk_registry_t *self, const char *service,
                               const char *config_version, const char **stored);

// Each service's last processed push, sorted by service: [{service, config_version (nil when it
// named none), functions (configs taken from it), refused, workers (registered now), at_ms
// (wall-clock)}], in `arena`.
ga_value_t bk_registry_pushes(bk_registry_t *self, ga_arena_t *arena);

// Picks a live registered worker offering `cfg` (random among them), or NULL when none.
bk_worker_t *bk_registry_pick(bk_registry_t *self, const ga_funcfg_t *cfg);
// The same, skipping workers whose circuit breaker is open at `now`.
bk_worker_t *bk_registry_pick_at(bk_registry_t *self, const ga_funcfg_t *cfg, int64_t now);

// Collects the workers that may serve `cfg` at `now` (registered, offering it, on a node its
// `nodes` list allows, circuit closed) into `*buf`, grown as needed (`*cap` is its room; the
// caller frees it with ga_free); returns how many.
size_t bk_registry_candidates(bk_registry_t *self, const ga_funcfg_t *cfg, int64_t now,
                              bk_worker_t ***buf, size_t *cap);

// Every config's source, as a list in `arena` (for a gateway's snapshot).
ga_value_t bk_registry_snapshot(bk_registry_t *self, ga_arena_t *arena);

// Deletes the configs that have been unoffered while their service is up for `grace_ms` or
// more at `now` (and starts or stops the clock of the others). `*removed` is set to the list
// of {service, request_type, version?} deleted (in `arena`); returns its length. Cheap when
// nothing changed since the last sweep and no config is waiting.
size_t bk_registry_sweep(bk_registry_t *self, int64_t now, int64_t grace_ms, ga_arena_t *arena,
                         ga_value_t *removed);

// Calls fn for every worker (fn must not add or remove workers).
void bk_registry_each_worker(bk_registry_t *self, void (*fn)(bk_worker_t *w, void *arg),
                             void *arg);
// Collects the workers whose expiry is before `now` into out[0..max); returns the count.
size_t bk_registry_expired(bk_registry_t *self, int64_t now, bk_worker_t **out, size_t max);

size_t bk_registry_function_count(const bk_registry_t *self);
// The MessagePack size of every config's source, which bk_registry_snapshot lists (at most
// BK_SNAPSHOT_MAX).
size_t bk_registry_snapshot_bytes(const bk_registry_t *self);
size_t bk_registry_worker_count(const bk_registry_t *self);
size_t bk_registry_failed_count(const bk_registry_t *self);
// Records a config refused outside a push (an operator's batch add) in the failed-configs list
// (kept BK_FAILED_KEEP_MS, at most BK_FAILED_MAX).
void bk_registry_record_failed(bk_registry_t *self, const char *service, const char *function,
                               const char *reason);
// Clears the configs of `service` (of every service when NULL): removes them from the table,
// forgets the operators' overrides of that service (disabled, deleted, added) and its push
// record, so that its workers' next push is processed whatever its config_version. Workers,
// their offers and the failed-configs list stay. `*removed` lists [{service, request_type,
// version?}] the table lost (in `arena`), as an UPDATE carries them; returns how many.
size_t bk_registry_clear(bk_registry_t *self, const char *service, ga_arena_t *arena,
                         ga_value_t *removed);
// The failed-configs list, oldest first: [{service, function, reason, at_ms (wall clock)}].
ga_value_t bk_registry_failed_list(bk_registry_t *self, ga_arena_t *arena);

#endif
