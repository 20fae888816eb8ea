// SPDX-License-Identifier: MIT
// Connection identity at the handshake: verifies a JWT from the connect params (algorithm pinned
// by config, signature, exp required, nbf/iss/aud when configured) and counts refusals per
// peer address, since the Phoenix client reconnects at once after every refusal. The only file
// that includes libjwt. Owned by the gateway's loop thread.
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "ga_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_AUTH_MAX_ROLES      32   // roles kept from a token
#define GW_AUTH_REFUSALS_MAX   10   // refusals per peer per window before it is throttled
#define GW_AUTH_WINDOW_MS      10000
#define GW_AUTH_PEERS_MAX      4096 // peers tracked for refusal limiting

typedef enum {
    GW_AUTH_NONE,    // every connection is anonymous
    GW_AUTH_JWT,     // a token in the connect params
    GW_AUTH_SERVICE, // a worker function decides
} gw_auth_mode_t;

typedef struct {
    gw_auth_mode_t mode;        // see above
    const char *jwt_alg;        // "HS256", "RS256" or "ES256": the only one accepted
    const unsigned char *key;   // HS256 secret, or the PEM public key for RS256/ES256
    size_t key_len;             // bytes in key
    const char *issuer;         // required `iss` when non-empty
    const char *audience;       // required in `aud` when non-empty
    int64_t leeway_s;           // clock skew allowed on exp and nbf
    bool allow_anonymous;       // a connection without a token is anonymous, not refused
} gw_auth_config_t;

// A verified identity; strings owned by the struct (gw_identity_fini frees them).
typedef struct {
    char *user_id;                      // `sub`
    char *roles[GW_AUTH_MAX_ROLES];     // `roles` claim (strings)
    size_t n_roles;                     // entries in roles
    char *device_id;                    // `device_id` claim or param
} gw_auth_identity_t;

void gw_auth_identity_fini(gw_auth_identity_t *id);

typedef struct gw_auth_t gw_auth_t;

// `cfg` and its key are borrowed and must outlive the object.
gw_auth_t *gw_auth_new(const gw_auth_config_t *cfg);
void gw_auth_destroy(gw_auth_t **self_p);

// Checks a token (NULL or "" when the client sent none) at wall-clock time `now_s`.
// GA_OK: `*out` is filled (empty for an anonymous connection). GA_EDENIED: `why` says why.
GA_MUST_CHECK ga_err_t gw_auth_verify(gw_auth_t *self, const char *token, int64_t now_s,
                                      gw_auth_identity_t *out, char *why, size_t whylen);

// Refusal throttling by peer address: true when `peer` has been refused GW_AUTH_REFUSALS_MAX
// times in the current window. It marks only the failing attempts: a throttled address's
// refusals are answered 429 rather than 401; its valid and anonymous connections still pass
// (see docs/protocol.md, "Identity").
bool gw_auth_is_throttled(gw_auth_t *self, const char *peer, int64_t now_ms);
// Records one refusal for `peer`. Returns true exactly once per window: on the refusal that
// makes the address throttled (the caller logs it then, and not for the refusals that follow).
bool gw_auth_note_refusal(gw_auth_t *self, const char *peer, int64_t now_ms);

// Signs a development token (genapi-ctl). Returns a string the caller frees with ga_free.
GA_MUST_CHECK ga_err_t gw_auth_sign(const char *alg, const unsigned char *key, size_t key_len,
                                    const char *sub, const char *const *roles, size_t n_roles,
                                    int64_t exp_s, char **out);

#endif
