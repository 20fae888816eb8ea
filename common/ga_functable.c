// SPDX-License-Identifier: MIT
// Two czmq hashes: configs by full key (owning), and the resolved "latest" config by
// (service, request_type) (borrowing), recomputed for that pair whenever it changes.
#include "ga_functable.h"

#include "ga_mem.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 600

struct ga_functable_t {
    zhash_t *configs; // full key -> ga_funcfg_t (owned)
    zhash_t *latest;  // "service\x1frequest_type" -> ga_funcfg_t (borrowed)
};

static void
s_cfg_free(void *data)
{
    ga_funcfg_t *cfg = data;
    ga_funcfg_destroy(&cfg);
}

ga_functable_t *
ga_functable_new(void)
{
    ga_functable_t *self = ga_calloc(1, sizeof *self);
    self->configs = zhash_new();
    self->latest = zhash_new();
    ga_assert(self->configs && self->latest);
    return self;
}

void
ga_functable_destroy(ga_functable_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_functable_t *self = *self_p;
    zhash_destroy(&self->latest);
    zhash_destroy(&self->configs);
    ga_free(self);
    *self_p = NULL;
}

void
ga_functable_key(char *buf, size_t len, const char *service, const char *request_type,
                 const char *version)
{
    snprintf(buf, len, "%s\x1f%s\x1f%s", service, request_type, version ? version : "");
}

static void
s_base_key(char *buf, size_t len, const char *service, const char *request_type)
{
    snprintf(buf, len, "%s\x1f%s", service, request_type);
}

int
ga_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        char *ea, *eb;
        unsigned long na = strtoul(a, &ea, 10);
        unsigned long nb = strtoul(b, &eb, 10);
        if (ea != a && eb != b) {
            if (na != nb) {
                return na < nb ? -1 : 1;
            }
            a = ea;
            b = eb;
        } else {
            // Non-numeric parts compare as text up to the next dot.
            size_t la = strcspn(a, ".");
            size_t lb = strcspn(b, ".");
            int c = strncmp(a, b, la < lb ? la : lb);
            if (c != 0 || la != lb) {
                return c != 0 ? c : (la < lb ? -1 : 1);
            }
            a += la;
            b += lb;
        }
        if (*a == '.') {
            a++;
        }
        if (*b == '.') {
            b++;
        }
    }
    return 0;
}

// Recomputes the resolved config for (service, request_type).
static void
s_relatest(ga_functable_t *self, const char *service, const char *request_type)
{
    char base[KEY_MAX];
    s_base_key(base, sizeof base, service, request_type);
    const ga_funcfg_t *best = NULL;
    for (ga_funcfg_t *c = zhash_first(self->configs); c; c = zhash_next(self->configs)) {
        if (strcmp(c->service, service) != 0 || strcmp(c->request_type, request_type) != 0) {
            continue;
        }
        if (c->version == NULL) {
            best = c; // the unversioned config wins
            break;
        }
        if (c->disabled) {
            continue;
        }
        if (best == NULL || ga_version_cmp(c->version, best->version) > 0) {
            best = c;
        }
    }
    if (best) {
        zhash_update(self->latest, base, (void *) best);
    } else {
        zhash_delete(self->latest, base);
    }
}

bool
ga_functable_put(ga_functable_t *self, ga_funcfg_t **cfg_p)
{
    ga_funcfg_t *cfg = *cfg_p;
    *cfg_p = NULL;
    char key[KEY_MAX];
    ga_functable_key(key, sizeof key, cfg->service, cfg->request_type, cfg->version);
    ga_funcfg_t *old = zhash_lookup(self->configs, key);
    if (old && ga_value_equal(&old->source, &cfg->source)) {
        ga_funcfg_destroy(&cfg);
        return false;
    }
    // zhash_update frees the old item through its free function.
    zhash_update(self->configs, key, cfg);
    zhash_freefn(self->configs, key, s_cfg_free);
    s_relatest(self, cfg->service, cfg->request_type);
    return true;
}

const ga_funcfg_t *
ga_functable_get(const ga_functable_t *self, const char *service, const char *request_type,
                 const char *version)
{
    char key[KEY_MAX];
    ga_functable_key(key, sizeof key, service, request_type, version);
    return zhash_lookup(self->configs, key);
}

const ga_funcfg_t *
ga_functable_resolve(const ga_functable_t *self, const char *service, const char *request_type,
                     const char *version)
{
    if (version && strcmp(version, "0.0.0") != 0) {
        return ga_functable_get(self, service, request_type, version);
    }
    char base[KEY_MAX];
    s_base_key(base, sizeof base, service, request_type);
    return zhash_lookup(self->latest, base);
}

void
ga_functable_clear(ga_functable_t *self)
{
    zhash_destroy(&self->latest);
    zhash_destroy(&self->configs);
    self->configs = zhash_new();
    self->latest = zhash_new();
    ga_assert(self->configs && self->latest);
}

size_t
ga_functable_size(const ga_functable_t *self)
{
    return zhash_size(self->configs);
}

void
ga_functable_each(const ga_functable_t *self, void (*fn)(const ga_funcfg_t *cfg, void *arg),
                  void *arg)
{
    for (ga_funcfg_t *c = zhash_first(self->configs); c; c = zhash_next(self->configs)) {
        fn(c, arg);
    }
}
