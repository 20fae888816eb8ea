// SPDX-License-Identifier: MIT
// JWT verification on top of libjwt 1.10, which checks signatures only: it checks neither
// expiry nor, when called without a key, the absence of a signature. So the algorithm is
// pinned here, the key is always passed, and every time claim is checked here.
#include "gw_auth.h"

#include "ga_arena.h"
#include "ga_json.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <czmq.h>
#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Refusals from one peer in the current window.
typedef struct {
    int64_t window_start; // monotonic ms
    int count;            // refusals in this window
} peer_t;

struct gw_auth_t {
    const gw_auth_config_t *cfg; // borrowed
    zhash_t *peers;              // peer address -> peer_t (owned)
};

void
gw_auth_identity_fini(gw_auth_identity_t *id)
{
    ga_free(id->user_id);
    ga_free(id->device_id);
    for (size_t i = 0; i < id->n_roles; i++) {
        ga_free(id->roles[i]);
    }
    memset(id, 0, sizeof *id);
}

gw_auth_t *
gw_auth_new(const gw_auth_config_t *cfg)
{
    gw_auth_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->peers = zhash_new();
    ga_assert(self->peers);
    return self;
}

void
gw_auth_destroy(gw_auth_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zhash_destroy(&(*self_p)->peers);
    ga_free(*self_p);
    *self_p = NULL;
}

__attribute__((format(printf, 3, 4))) static ga_err_t
s_deny(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return GA_EDENIED;
}

// Reads an integer time claim; false when absent.
static bool
s_time_claim(jwt_t *jwt, const char *name, long *out)
{
    errno = 0;
    long v = jwt_get_grant_int(jwt, name);
    if (errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

// True when the `aud` claim (a string or a list of strings) contains `want`.
static bool
s_audience_ok(jwt_t *jwt, const char *want)
{
    const char *single = jwt_get_grant(jwt, "aud");
    if (single) {
        return strcmp(single, want) == 0;
    }
    char *json = jwt_get_grants_json(jwt, "aud");
    if (json == NULL) {
        return false;
    }
    bool found = false;
    ga_arena_t *a = ga_arena_new(1024);
    ga_value_t v;
    if (ga_json_decode(json, strlen(json), a, &v, NULL, 0) == GA_OK && v.type == GA_ARRAY) {
        for (uint32_t i = 0; i < v.len && !found; i++) {
            found = v.u.items[i].type == GA_STR && strcmp(v.u.items[i].u.s, want) == 0;
        }
    }
    ga_arena_destroy(&a);
    free(json); // allocated by libjwt with malloc
    return found;
}

static void
s_roles(jwt_t *jwt, gw_auth_identity_t *out)
{
    char *json = jwt_get_grants_json(jwt, "roles");
    if (json == NULL) {
        return;
    }
    ga_arena_t *a = ga_arena_new(1024);
    ga_value_t v;
    if (ga_json_decode(json, strlen(json), a, &v, NULL, 0) == GA_OK && v.type == GA_ARRAY) {
        for (uint32_t i = 0; i < v.len && out->n_roles < GW_AUTH_MAX_ROLES; i++) {
            if (v.u.items[i].type == GA_STR && v.u.items[i].len > 0) {
                out->roles[out->n_roles++] = ga_strdup(v.u.items[i].u.s);
            }
        }
    }
    ga_arena_destroy(&a);
    free(json); // allocated by libjwt with malloc
}

ga_err_t
gw_auth_verify(gw_auth_t *self, const char *token, int64_t now_s, gw_auth_identity_t *out,
               char *why, size_t whylen)
{
    const gw_auth_config_t *cfg = self->cfg;
    memset(out, 0, sizeof *out);
    if (cfg->mode != GW_AUTH_JWT) {
        return GA_OK;
    }
    if (token == NULL || token[0] == '\0') {
        return cfg->allow_anonymous ? GA_OK : s_deny(why, whylen, "token required");
    }
    if (strlen(token) > 8192) {
        return s_deny(why, whylen, "token too long");
    }
    jwt_alg_t want = jwt_str_alg(cfg->jwt_alg);
    if (want == JWT_ALG_NONE || want == JWT_ALG_INVAL || cfg->key == NULL || cfg->key_len == 0) {
        return s_deny(why, whylen, "no verification key configured");
    }
    jwt_t *jwt = NULL;
    // Always with the key: libjwt accepts an unsigned token when given none.
    if (jwt_decode(&jwt, token, cfg->key, (int) cfg->key_len) != 0 || jwt == NULL) {
        return s_deny(why, whylen, "invalid token");
    }
    ga_err_t rc = GA_OK;
    long exp = 0;
    long nbf = 0;
    const char *sub = jwt_get_grant(jwt, "sub");
    if (jwt_get_alg(jwt) != want) {
        rc = s_deny(why, whylen, "token algorithm %s is not accepted", jwt_alg_str(jwt_get_alg(jwt)));
    } else if (!s_time_claim(jwt, "exp", &exp)) {
        rc = s_deny(why, whylen, "token has no exp");
    } else if (exp <= now_s - cfg->leeway_s) { // not exp + leeway: exp may be near LONG_MAX
        rc = s_deny(why, whylen, "token expired");
    } else if (s_time_claim(jwt, "nbf", &nbf) && nbf > now_s + cfg->leeway_s) {
        rc = s_deny(why, whylen, "token not valid yet");
    } else if (cfg->issuer && cfg->issuer[0] &&
               (jwt_get_grant(jwt, "iss") == NULL ||
                strcmp(jwt_get_grant(jwt, "iss"), cfg->issuer) != 0)) {
        rc = s_deny(why, whylen, "token issuer not accepted");
    } else if (cfg->audience && cfg->audience[0] && !s_audience_ok(jwt, cfg->audience)) {
        rc = s_deny(why, whylen, "token audience not accepted");
    } else if (sub == NULL || sub[0] == '\0') {
        rc = s_deny(why, whylen, "token has no sub");
    } else {
        out->user_id = ga_strdup(sub);
        const char *device = jwt_get_grant(jwt, "device_id");
        out->device_id = device ? ga_strdup(device) : NULL;
        s_roles(jwt, out);
    }
    jwt_free(jwt);
    return rc;
}

bool
gw_auth_is_throttled(gw_auth_t *self, const char *peer, int64_t now_ms)
{
    peer_t *p = zhash_lookup(self->peers, peer);
    return p && now_ms - p->window_start < GW_AUTH_WINDOW_MS && p->count >= GW_AUTH_REFUSALS_MAX;
}

bool
gw_auth_note_refusal(gw_auth_t *self, const char *peer, int64_t now_ms)
{
    peer_t *p = zhash_lookup(self->peers, peer);
    if (p == NULL) {
        if (zhash_size(self->peers) >= GW_AUTH_PEERS_MAX) {
            // Bounded: forget everyone rather than grow (a flood of addresses resets limits).
            zhash_destroy(&self->peers);
            self->peers = zhash_new();
            ga_assert(self->peers);
        }
        p = ga_calloc(1, sizeof *p);
        p->window_start = now_ms;
        ga_assert(zhash_insert(self->peers, peer, p) == 0);
        zhash_freefn(self->peers, peer, ga_free);
    }
    if (now_ms - p->window_start >= GW_AUTH_WINDOW_MS) {
        p->window_start = now_ms;
        p->count = 0;
    }
    p->count++;
    return p->count == GW_AUTH_REFUSALS_MAX;
}

ga_err_t
gw_auth_sign(const char *alg, const unsigned char *key, size_t key_len, const char *sub,
             const char *const *roles, size_t n_roles, int64_t exp_s, char **out)
{
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0) {
        return GA_EIO;
    }
    ga_buf_t json;
    ga_buf_init(&json);
    ga_buf_append_str(&json, "{\"roles\":[");
    for (size_t i = 0; i < n_roles; i++) {
        if (i) {
            ga_buf_append_char(&json, ',');
        }
        ga_json_encode_str(&json, roles[i], strlen(roles[i]));
    }
    ga_buf_append_str(&json, "]}");
    ga_buf_append_char(&json, '\0');
    ga_err_t rc = GA_OK;
    if (jwt_add_grant(jwt, "sub", sub) != 0 || jwt_add_grant_int(jwt, "exp", (long) exp_s) != 0 ||
        jwt_add_grants_json(jwt, (const char *) json.data) != 0 ||
        jwt_set_alg(jwt, jwt_str_alg(alg), key, (int) key_len) != 0) {
        rc = GA_EINVAL;
    } else {
        char *token = jwt_encode_str(jwt);
        if (token == NULL) {
            rc = GA_EINVAL;
        } else {
            *out = ga_strdup(token);
            free(token); // allocated by libjwt with malloc
        }
    }
    ga_buf_fini(&json);
    jwt_free(jwt);
    return rc;
}
