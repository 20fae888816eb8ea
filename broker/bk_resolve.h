// SPDX-License-Identifier: MIT
// Node resolvers (docs/protocol.md, "Node selection"): a function config whose `nodes` names a
// worker function ("service.request_type") is served only by the nodes that function's answer
// lists. The broker calls the resolver itself (a REQUEST without arguments to one of its
// workers; the REPLY never reaches a gateway), keeps the answer for `cache_ms`, and while a
// fresh answer is on its way uses the previous one or, when there is none, parks the calls (at
// most BK_RESOLVE_WAIT_MAX per resolver) until it arrives. A resolver that fails (an error
// answer, not a list of node names, no answer within its function's timeout, not registered,
// no live worker) is logged, its calls get `Service unavailable`, and it is asked again after
// BK_RESOLVE_RETRY_MS at the earliest. Loop thread only.
#ifndef BK_RESOLVE_H
#define BK_RESOLVE_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_proto.h"
#include "ga_value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_RESOLVE_WAIT_MAX  1024  // calls parked per resolver while its first answer is due
#define BK_RESOLVE_NODES_MAX 256   // node names kept from one answer
#define BK_RESOLVE_RETRY_MS  1000  // after a failure, calls fail at once for this long
#define BK_RESOLVE_MAX       1024  // resolvers cached

typedef struct bk_resolve_t bk_resolve_t;
typedef struct bk_broker_t bk_broker_t;

// --- The cache (no I/O; unit-tested alone) ---

bk_resolve_t *bk_resolve_new(int64_t cache_ms);
void bk_resolve_destroy(bk_resolve_t **self_p);
// Stores `nodes` (a list of node-name strings) as the answer of `resolver` at `now`: fresh
// until now + cache_ms. GA_EINVAL when `nodes` is not such a list (the entry keeps what it
// had).
GA_MUST_CHECK ga_err_t bk_resolve_store(bk_resolve_t *self, const char *resolver,
                                        const ga_value_t *nodes, int64_t now);
// The last answer of `resolver` (`*nodes`, `*n`; borrowed until the next store or failure),
// false when there is none. `*fresh` tells whether it is younger than cache_ms at `now`.
bool bk_resolve_cached(bk_resolve_t *self, const char *resolver, int64_t now,
                       const char *const **nodes, size_t *n, bool *fresh);
// Whether `node` is in the last answer of `resolver` (false without an answer).
bool bk_resolve_allows(bk_resolve_t *self, const char *resolver, const char *node);

// --- The broker's side ---

// A CALL of `cfg_resolver`'s function (already looked up, `gw_serial` its gateway's serial):
// true with the allowed nodes when a usable answer is cached (a stale one also starts a
// refresh); false when the call was parked (answered when the resolver is) or answered here
// with an error.
bool bk_resolve_nodes(bk_broker_t *broker, const char *resolver, uint64_t gw_serial,
                      const ga_proto_msg_t *msg, int64_t now, const char *const **nodes,
                      size_t *n);
// A worker's REPLY: true when it answers a resolver call (consumed here), false otherwise.
bool bk_resolve_on_reply(bk_broker_t *broker, const ga_proto_msg_t *msg);
// Fails the resolver calls past their deadline and routes the calls parked for answers that
// came (or fails them). Cheap when nothing is due.
void bk_resolve_tick(bk_broker_t *broker, int64_t now);
// When bk_resolve_tick next has something to do (INT64_MAX: nothing).
int64_t bk_resolve_next_due(const bk_broker_t *broker);

#endif
