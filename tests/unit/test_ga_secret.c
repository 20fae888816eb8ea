// SPDX-License-Identifier: MIT
// Secret comparison: exact over the full length of both, NUL bytes included.
#include "ga_secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void
test_secret_equal_is_exact(void **state)
{
    (void) state;
    assert_true(ga_secret_equal("push-secret-123", "push-secret-123", 15));
    assert_false(ga_secret_equal("push-secret-123", "push-secret-12", 14));  // prefix
    assert_false(ga_secret_equal("push-secret-123", "push-secret-1234", 16)); // longer
    assert_false(ga_secret_equal("push-secret-123", "Push-secret-123", 15)); // first byte
    assert_false(ga_secret_equal("push-secret-123", "push-secret-124", 15)); // last byte
    assert_false(ga_secret_equal("push-secret-123", "", 0));
    assert_true(ga_secret_equal("", "", 0));
    assert_false(ga_secret_equal("", "x", 1));
}

static void
test_secret_equal_counts_nul_bytes(void **state)
{
    (void) state;
    // As C strings these would compare equal: the bytes after the NUL count.
    assert_false(ga_secret_equal("push-secret-123", "push-secret-123\0x", 17));
    assert_false(ga_secret_equal("admin-secret-456", "admin-secret-456\0junk", 21));
    assert_false(ga_secret_equal("admin-secret-456", "admin-secret-456\0", 17));
    // A NUL inside the presented bytes never matches a C-string secret.
    assert_false(ga_secret_equal("ab", "a\0", 2));
}

static void
test_secret_equal_value_wants_a_string(void **state)
{
    (void) state;
    ga_value_t good = ga_strn("tok", 3);
    ga_value_t nul = ga_strn("tok\0x", 5);
    ga_value_t num = ga_int(7);
    assert_true(ga_secret_equal_value("tok", &good));
    assert_false(ga_secret_equal_value("tok", &nul));
    assert_false(ga_secret_equal_value("tok", &num));
    assert_false(ga_secret_equal_value("tok", NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_equal_is_exact),
        cmocka_unit_test(test_secret_equal_counts_nul_bytes),
        cmocka_unit_test(test_secret_equal_value_wants_a_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
