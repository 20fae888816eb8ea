// SPDX-License-Identifier: MIT
// JWT verification (gw_auth_verify) with time claims at the edges of their range: tokens found
// by fuzz_jwt (tests/fuzz) are refused or accepted by comparison, never by overflowing it.
#include "gw_auth.h"

#include "ga_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>

#define NOW 1700000000

static const unsigned char s_key[] = "unit-secret-0123456789abcdef0123";

static const gw_auth_config_t s_cfg = {
    .mode = GW_AUTH_JWT,
    .jwt_alg = "HS256",
    .key = s_key,
    .key_len = sizeof s_key - 1,
    .leeway_s = 30,
};

// An HS256 token for sub "u1" with the given exp and nbf claims. Caller frees.
static char *
s_token(long exp, long nbf)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", "u1"), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "exp", exp), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "nbf", nbf), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, s_key, (int) (sizeof s_key - 1)), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    return token;
}

static ga_err_t
s_verify(const char *token, char *why, size_t whylen)
{
    gw_auth_t *auth = gw_auth_new(&s_cfg);
    gw_auth_identity_t id;
    ga_err_t rc = gw_auth_verify(auth, token, NOW, &id, why, whylen);
    gw_auth_identity_fini(&id);
    gw_auth_destroy(&auth);
    return rc;
}

// Found by fuzz_jwt: exp near LONG_MAX made `exp + leeway` overflow, and nbf near LONG_MIN made
// `nbf - leeway` overflow (undefined behaviour; UBSan aborts). Both compare against now instead.
static void
test_time_claims_at_the_ends_of_their_range(void **state)
{
    (void) state;
    char why[128] = "";
    char *t = s_token(INT64_MAX - 5, 0); // expires in the far future: accepted
    assert_int_equal(s_verify(t, why, sizeof why), GA_OK);
    free(t); // allocated by libjwt with malloc
    t = s_token(NOW + 3600, INT64_MIN + 5); // valid since the far past: accepted
    assert_int_equal(s_verify(t, why, sizeof why), GA_OK);
    free(t);
    t = s_token(INT64_MIN + 5, 0); // expired long ago
    assert_int_equal(s_verify(t, why, sizeof why), GA_EDENIED);
    assert_string_equal(why, "token expired");
    free(t);
    t = s_token(NOW + 3600, INT64_MAX - 5); // not valid for a long time yet
    assert_int_equal(s_verify(t, why, sizeof why), GA_EDENIED);
    assert_string_equal(why, "token not valid yet");
    free(t);
    // The leeway still counts at the boundary.
    t = s_token(NOW - 29, NOW + 29);
    assert_int_equal(s_verify(t, why, sizeof why), GA_OK);
    free(t);
    t = s_token(NOW - 30, 0);
    assert_int_equal(s_verify(t, why, sizeof why), GA_EDENIED);
    free(t);
    t = s_token(NOW + 3600, NOW + 31);
    assert_int_equal(s_verify(t, why, sizeof why), GA_EDENIED);
    free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_claims_at_the_ends_of_their_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
