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
    uint64_t changes; // ga_functable_changes
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

// Writes parts[0..n) joined by \x1f into buf (len > 0 bytes), cut to len - 1 bytes and
// NUL-terminated as snprintf would: on every lookup, so no format string is parsed.
static void
s_join(char *buf, size_t len, const char *const *parts, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n && at + 1 < len; i++) {
        if (i > 0) {
            buf[at++] = '\x1f';
        }
        size_t room = len - 1 - at;
        size_t k = strnlen(parts[i], room);
        memcpy(buf + at, parts[i], k);
        at += k;
    }
    buf[at] = '\0';
}

void
ga_functable_key(char *buf, size_t len, const char *service, const char *request_type,
                 const char *version)
{
    const char *parts[] = {service, request_type, version ? version : ""};
    s_join(buf, len, parts, 3);
}

static void
s_base_key(char *buf, size_t len, const char *service, const char *request_type)
{
    const char *parts[] = {service, request_type};
    s_join(buf, len, parts, 2);
}

// Compares dot-separated identifiers of [a, a_end) and [b, b_end): numbers numerically and
// below text, text in ASCII order; when one list is a prefix of the other, the shorter is lower.
static int
s_ident_cmp(const char *a, const char *a_end, const char *b, const char *b_end)
{
    while (a < a_end && b < b_end) {
        size_t la = strcspn(a, ".");
        size_t lb = strcspn(b, ".");
        la = la < (size_t) (a_end - a) ? la : (size_t) (a_end - a);
        lb = lb < (size_t) (b_end - b) ? lb : (size_t) (b_end - b);
        bool na = la > 0 && strspn(a, "0123456789") >= la;
        bool nb = lb > 0 && strspn(b, "0123456789") >= lb;
        int c;
        if (na && nb) {
            // Numeric: skip leading zeros, then the longer number is larger.
            while (la > 1 && *a == '0') {
                a++;
                la--;
            }
            while (lb > 1 && *b == '0') {
                b++;
                lb--;
            }
            c = la != lb ? (la < lb ? -1 : 1) : memcmp(a, b, la);
        } else if (na != nb) {
            c = na ? -1 : 1;
        } else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (c == 0 && la != lb) {
                c = la < lb ? -1 : 1;
            }
        }
        if (c != 0) {
            return c < 0 ? -1 : 1;
        }
        a += la;
        b += lb;
        a += a < a_end && *a == '.';
        b += b < b_end && *b == '.';
    }
    return a < a_end ? 1 : b < b_end ? -1 : 0;
}

int
ga_version_cmp(const char *a, const char *b)
{
    // Build metadata (after '+') does not take part; a pre-release (after the first '-')
    // ranks below its release: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0.
    const char *a_end = a + strcspn(a, "+");
    const char *b_end = b + strcspn(b, "+");
    const char *a_pre = a + strcspn(a, "-+");
    const char *b_pre = b + strcspn(b, "-+");
    int c = s_ident_cmp(a, a_pre, b, b_pre);
    if (c != 0) {
        return c;
    }
    bool ha = a_pre < a_end;
    bool hb = b_pre < b_end;
    if (ha != hb) {
        return ha ? -1 : 1;
    }
    return ha ? s_ident_cmp(a_pre + 1, a_end, b_pre + 1, b_end) : 0;
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
    self->changes++;
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

bool
ga_functable_remove(ga_functable_t *self, const char *service, const char *request_type,
                    const char *version)
{
    char key[KEY_MAX];
    ga_functable_key(key, sizeof key, service, request_type, version);
    if (zhash_lookup(self->configs, key) == NULL) {
        return false;
    }
    // The names may live in the config being freed: recompute with copies.
    char svc[KEY_MAX];
    char rt[KEY_MAX];
    snprintf(svc, sizeof svc, "%s", service);
    snprintf(rt, sizeof rt, "%s", request_type);
    self->changes++;
    zhash_delete(self->configs, key);
    s_relatest(self, svc, rt);
    return true;
}

void
ga_functable_clear(ga_functable_t *self)
{
    self->changes++;
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

uint64_t
ga_functable_changes(const ga_functable_t *self)
{
    return self->changes;
}

void
ga_functable_each(const ga_functable_t *self, void (*fn)(const ga_funcfg_t *cfg, void *arg),
                  void *arg)
{
    for (ga_funcfg_t *c = zhash_first(self->configs); c; c = zhash_next(self->configs)) {
        fn(c, arg);
    }
}
