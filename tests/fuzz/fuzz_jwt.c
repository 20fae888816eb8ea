// SPDX-License-Identifier: MIT
// Fuzz target: the token a client puts in its connect params (gw_auth_verify, HS256 with a
// fixed secret). libjwt parses; this exercises our wrapper and claim handling (alg pinning,
// exp, nbf, iss, aud as a string or list, sub, device_id, roles). A random signature never
// verifies, so two more shapes reach the claims:
//   * input starting with '{': "HEADER-JSON\nPAYLOAD-JSON" (no newline: the payload with a
//     {"alg":"HS256","typ":"JWT"} header), base64url-encoded and signed with the secret;
//   * any other input is verified as the token text, and when it has the form A.B.C, verified
//     again as A.B.<the right signature of A.B>.
// Each token is checked under two configs: issuer, audience and leeway set; and none of them.
#include "ga_mem.h"
#include "gw_auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW 1700000000 // the fixed "now" of every check

static const unsigned char s_key[] = "fuzz-secret-0123456789abcdef0123";

static const gw_auth_config_t s_strict = {
    .mode = GW_AUTH_JWT,
    .jwt_alg = "HS256",
    .key = s_key,
    .key_len = sizeof s_key - 1,
    .issuer = "genapi",
    .audience = "clients",
    .leeway_s = 30,
};

static const gw_auth_config_t s_plain = {
    .mode = GW_AUTH_JWT,
    .jwt_alg = "HS256",
    .key = s_key,
    .key_len = sizeof s_key - 1,
    .allow_anonymous = true,
};

// Appends the base64url encoding (no padding) of data[0..n) to `out`.
static void
s_b64url(ga_buf_t *out, const uint8_t *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) data[i] << 16;
        size_t chars = 2;
        if (i + 1 < n) {
            v |= (uint32_t) data[i + 1] << 8;
            chars = 3;
        }
        if (i + 2 < n) {
            v |= data[i + 2];
            chars = 4;
        }
        for (size_t k = 0; k < chars; k++) {
            ga_buf_append_char(out, abc[(v >> (18 - 6 * k)) & 63]);
        }
    }
}

// Appends "." and the HS256 signature of token[0..len) to `token`, then a NUL.
static void
s_sign(ga_buf_t *token)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), s_key, (int) (sizeof s_key - 1), token->data, token->len, mac,
             &mac_len) == NULL) {
        abort();
    }
    ga_buf_append_char(token, '.');
    s_b64url(token, mac, mac_len);
    ga_buf_append_char(token, '\0');
}

static void
s_verify(const char *token)
{
    const gw_auth_config_t *cfgs[] = {&s_strict, &s_plain};
    for (size_t i = 0; i < 2; i++) {
        gw_auth_t *auth = gw_auth_new(cfgs[i]);
        gw_auth_identity_t id;
        char why[256] = "";
        ga_err_t rc = gw_auth_verify(auth, token, S_NOW, &id, why, sizeof why);
        if (rc == GA_OK) {
            // Accepted with a token: a user; and never more roles than kept.
            if ((token[0] && (id.user_id == NULL || id.user_id[0] == '\0')) ||
                id.n_roles > GW_AUTH_MAX_ROLES) {
                abort();
            }
        } else if (rc != GA_EDENIED || why[0] == '\0') {
            abort(); // a refusal says why
        }
        gw_auth_identity_fini(&id);
        gw_auth_destroy(&auth);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ga_buf_t token;
    ga_buf_init(&token);
    if (size > 0 && data[0] == '{') {
        const uint8_t *nl = memchr(data, '\n', size);
        static const char dflt[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        if (nl) {
            s_b64url(&token, data, (size_t) (nl - data));
        } else {
            s_b64url(&token, (const uint8_t *) dflt, sizeof dflt - 1);
        }
        ga_buf_append_char(&token, '.');
        const uint8_t *payload = nl ? nl + 1 : data;
        s_b64url(&token, payload, size - (size_t) (payload - data));
        s_sign(&token);
        s_verify((const char *) token.data);
    } else {
        ga_buf_append(&token, data, size);
        ga_buf_append_char(&token, '\0');
        s_verify((const char *) token.data);
        // A.B.C: the same header and payload with the right signature.
        const char *text = (const char *) token.data;
        const char *first = strchr(text, '.');
        const char *last = strrchr(text, '.');
        if (first && last != first && strchr(first + 1, '.') == last) {
            ga_buf_t signed_token;
            ga_buf_init(&signed_token);
            ga_buf_append(&signed_token, text, (size_t) (last - text));
            s_sign(&signed_token);
            s_verify((const char *) signed_token.data);
            ga_buf_fini(&signed_token);
        }
    }
    ga_buf_fini(&token);
    return 0;
}
