// SPDX-License-Identifier: MIT
// A table of function configs keyed by (service, request_type, version), with the version
// rules of docs/protocol.md ("Requests", field `version`): a request naming a version gets
// exactly that one; a request without one gets the unversioned config if there is one, else
// the highest enabled version in semantic-version order. The broker's registry and each gateway's copy use this table.
// Owns its configs. Not thread-safe.
#ifndef GA_FUNCTABLE_H
#define GA_FUNCTABLE_H

#include "ga_funcfg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ga_functable_t ga_functable_t;

ga_functable_t *ga_functable_new(void);
void ga_functable_destroy(ga_functable_t **self_p);

// Adds or replaces the config with the same key; consumes *cfg_p. Returns true when the table
// changed (a new key, or a different source than before).
bool ga_functable_put(ga_functable_t *self, ga_funcfg_t **cfg_p);
// Exact lookup; `version` NULL means the unversioned config. Borrowed until the next change.
const ga_funcfg_t *ga_functable_get(const ga_functable_t *self, const char *service,
                                    const char *request_type, const char *version);
// Lookup with version resolution (see above). Borrowed until the next change.
const ga_funcfg_t *ga_functable_resolve(const ga_functable_t *self, const char *service,
                                        const char *request_type, const char *version);
// Removes the config with exactly this key (`version` NULL: the unversioned one); the
// resolution of (service, request_type) is recomputed. Returns true when there was one.
bool ga_functable_remove(ga_functable_t *self, const char *service, const char *request_type,
                         const char *version);
// Removes every config.
void ga_functable_clear(ga_functable_t *self);
size_t ga_functable_size(const ga_functable_t *self);
// A number that changes whenever a lookup's answer may: each put that changes the table, each
// remove and each clear. A caller may keep a lookup's answer (and the config's key) while it
// stays the same.
uint64_t ga_functable_changes(const ga_functable_t *self);
// Calls fn for every config, in no particular order.
void ga_functable_each(const ga_functable_t *self, void (*fn)(const ga_funcfg_t *cfg, void *arg),
                       void *arg);

// The key string for a config ("service\x1frequest_type\x1fversion"), written into buf
// (len > 0 bytes; a longer key is cut to len - 1 bytes, NUL-terminated, as snprintf does).
void ga_functable_key(char *buf, size_t len, const char *service, const char *request_type,
                      const char *version);
// Compares two version strings in semantic-version precedence: dot-separated parts, numbers
// numerically and below text; a pre-release ("-beta") below its release; build metadata ("+x")
// ignored; "1" < "1.0" (a missing part ranks lower). Returns <0, 0 or >0.
int ga_version_cmp(const char *a, const char *b);

#endif
