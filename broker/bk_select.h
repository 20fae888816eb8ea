// SPDX-License-Identifier: MIT
// Node selection: which live worker serves a call, by the function's choose_node_mode
// (docs/protocol.md, "Node selection"): random, hash (request id), hash:ARG (the CALL's
// routing_key), round_robin (a counter per function), sticky:KEY (a remembered key -> node
// mapping) and least_loaded (fewest calls in flight). The candidates are the registry's live,
// registered workers offering the function, on an allowed node, with a closed circuit.
// Hash modes use rendezvous hashing (highest random weight) over the candidates' node names, so
// a key moves only when its own node leaves, never when an unrelated one joins or leaves.
//
// The sticky mapping is keyed by node name (not routing id), so it outlives worker restarts;
// an entry unused for BK_STICKY_IDLE_MS is forgotten; at most BK_STICKY_MAX entries are kept
// (the least recently used goes first). With a state file (broker option state_file) the
// mapping survives a broker restart: bk_select_load at start, bk_select_save from the tick.
// No I/O outside load and save; time is passed in (`now`, monotonic ms), so tests inject it.
#ifndef BK_SELECT_H
#define BK_SELECT_H

#include "bk_registry.h"
#include "ga_err.h"
#include "ga_funcfg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_STICKY_IDLE_MS      (3600 * 1000LL) // a sticky entry unused this long is forgotten
#define BK_STICKY_MAX          100000          // sticky entries kept (least recently used evicted)
#define BK_STICKY_SAVE_MS      5000            // at most one state-file write per this period
#define BK_STICKY_TOUCH_MS     60000           // a use this much after the saved one is saved
#define BK_STATE_FILE_MAX      (64u << 20)     // bytes of a state file read at start

typedef struct bk_select_t bk_select_t;

bk_select_t *bk_select_new(void);
void bk_select_destroy(bk_select_t **self_p);

// Picks the worker for a call of `cfg` at `now` (monotonic ms): `request_id` (hash) and
// `routing_key` (hash:ARG, sticky:KEY; the CALL's routing_key) may be NULL, and a mode whose
// key is missing picks at random. NULL when there is no candidate.
bk_worker_t *bk_select_pick(bk_select_t *self, bk_registry_t *registry, const ga_funcfg_t *cfg,
                            const char *request_id, const char *routing_key, int64_t now);

// The same, among the workers on `nodes` only (`n_nodes` names; `nodes` NULL: no such limit),
// for a function whose nodes a resolver names.
bk_worker_t *bk_select_pick_in(bk_select_t *self, bk_registry_t *registry,
                               const ga_funcfg_t *cfg, const char *request_id,
                               const char *routing_key, int64_t now, const char *const *nodes,
                               size_t n_nodes);
// How many workers the last pick (bk_select_pick or bk_select_pick_in) chose among: the
// workers that could take that call then.
size_t bk_select_last_candidates(const bk_select_t *self);

// Forgets the sticky entries unused since `now` - BK_STICKY_IDLE_MS; returns how many.
size_t bk_select_expire(bk_select_t *self, int64_t now);
// Sticky entries held.
size_t bk_select_sticky_count(const bk_select_t *self);
// The node the sticky entry for (`cfg`, `routing_key`) names, or NULL (tests, operators).
const char *bk_select_sticky_node(const bk_select_t *self, const ga_funcfg_t *cfg,
                                  const char *routing_key, int64_t now);
// Whether the mapping changed since the last save (a new, moved or forgotten entry, or uses
// BK_STICKY_TOUCH_MS past the saved ones).
bool bk_select_dirty(const bk_select_t *self);

// Reads the sticky mapping from `path` (`now` monotonic, `wall_now` wall-clock ms). A missing
// file is an empty mapping (GA_OK); an unreadable one is GA_EIO, a corrupt one GA_ECONFIG,
// each with the reason in `err` naming the file. Entries already idle for an hour are dropped.
GA_MUST_CHECK ga_err_t bk_select_load(bk_select_t *self, const char *path, int64_t now,
                                      int64_t wall_now, char *err, size_t errlen);
// Writes the sticky mapping to `path` atomically (PATH.tmp, then rename). GA_EIO with the
// reason in `err` on failure (the previous file is left as it was).
GA_MUST_CHECK ga_err_t bk_select_save(bk_select_t *self, const char *path, int64_t now,
                                      int64_t wall_now, char *err, size_t errlen);

#endif
