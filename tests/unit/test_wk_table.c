// SPDX-License-Identifier: MIT
// The table a worker offers (wk_table_current, what REGISTER and the broker's PULL get, see
// docs/protocol.md "Config pull"): withdrawn functions are left out until offered, the config
// version follows the offered set (back to the same one when the set is), and a configured
// config_version gets "+HASH" while the set differs from the declared one.
#include "wk_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void
s_handler(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, NULL);
}

static const wk_function_t s_functions[] = {
    {.request_type = "a", .handler = s_handler},
    {.request_type = "b", .version = "2.0.0", .handler = s_handler},
    {.request_type = "late", .withdrawn = true, .handler = s_handler},
};
static const wk_service_t s_service = {.service = "svc", .functions = s_functions,
                                       .n_functions = 3};

// The request_types of the current table, comma-separated, and its version in `version`.
static const char *
s_current(wk_worker_t *w, ga_arena_t *a, char *version, size_t len)
{
    static char names[256];
    names[0] = '\0';
    ga_value_t t = wk_table_current(w, a, version, len);
    for (uint32_t i = 0; i < t.len; i++) {
        strcat(names, i ? "," : "");
        strcat(names, ga_map_get_str(&t.u.items[i], "request_type"));
    }
    return names;
}

static void
test_withdrawn_functions_are_offered_at_run_time_under_a_new_version(void **state)
{
    (void) state;
    char err[256], v0[WK_VERSION_MAX], v1[WK_VERSION_MAX], v2[WK_VERSION_MAX];
    wk_worker_t *w = wk_worker_new(&s_service, NULL);
    assert_int_equal(wk_table_build(w, err, sizeof err), GA_OK);
    ga_arena_t *a = ga_arena_new(4096);
    assert_string_equal(s_current(w, a, v0, sizeof v0), "a,b");
    assert_int_equal(strlen(v0), 16); // a hash of the offered table
    assert_int_equal(wk_worker_set_offered(w, "late", NULL, true), GA_OK);
    assert_string_equal(s_current(w, a, v1, sizeof v1), "a,b,late");
    assert_string_not_equal(v0, v1);
    // Withdrawing "b" needs its version; the unversioned "b" does not exist.
    assert_int_equal(wk_worker_set_offered(w, "b", NULL, false), GA_ENOTFOUND);
    assert_int_equal(wk_worker_set_offered(w, "nope", NULL, false), GA_ENOTFOUND);
    assert_int_equal(wk_worker_set_offered(w, "b", "2.0.0", false), GA_OK);
    assert_string_equal(s_current(w, a, v2, sizeof v2), "a,late");
    assert_string_not_equal(v1, v2);
    // Back to the declared set: back to the first version.
    assert_int_equal(wk_worker_set_offered(w, "b", "2.0.0", true), GA_OK);
    assert_int_equal(wk_worker_set_offered(w, "late", NULL, false), GA_OK);
    assert_string_equal(s_current(w, a, v2, sizeof v2), "a,b");
    assert_string_equal(v0, v2);
    ga_arena_destroy(&a);
    wk_worker_destroy(&w);
}

static void
test_a_configured_version_is_marked_while_the_offered_set_differs(void **state)
{
    (void) state;
    char err[256], v[WK_VERSION_MAX];
    wk_options_t opt = {.config_version = "1.4.0"};
    wk_worker_t *w = wk_worker_new(&s_service, &opt);
    assert_int_equal(wk_table_build(w, err, sizeof err), GA_OK);
    ga_arena_t *a = ga_arena_new(4096);
    s_current(w, a, v, sizeof v);
    assert_string_equal(v, "1.4.0");
    assert_int_equal(wk_worker_set_offered(w, "late", NULL, true), GA_OK);
    s_current(w, a, v, sizeof v);
    assert_int_equal(strncmp(v, "1.4.0+", 6), 0);
    assert_int_equal(strlen(v), 6 + 16);
    assert_int_equal(wk_worker_set_offered(w, "late", NULL, false), GA_OK);
    s_current(w, a, v, sizeof v);
    assert_string_equal(v, "1.4.0");
    ga_arena_destroy(&a);
    wk_worker_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_withdrawn_functions_are_offered_at_run_time_under_a_new_version),
        cmocka_unit_test(test_a_configured_version_is_marked_while_the_offered_set_differs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
