// SPDX-License-Identifier: MIT
// The function table and its version rules: exact lookups, resolution (unversioned first, then
// the highest enabled version in semantic-version order), change detection and version order.
#include "ga_functable.h"
#include "ga_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int
s_setup(void **state)
{
    *state = ga_functable_new();
    return 0;
}

static int
s_teardown(void **state)
{
    ga_functable_t *t = *state;
    ga_functable_destroy(&t);
    assert_null(t);
    return 0;
}

// Parses a config from JSON text.
static ga_funcfg_t *
s_cfg(const char *json)
{
    ga_arena_t *a = ga_arena_new(1024);
    ga_value_t v;
    assert_int_equal(ga_json_decode(json, strlen(json), a, &v, NULL, 0), GA_OK);
    ga_funcfg_t *cfg = NULL;
    char err[256] = "";
    if (ga_funcfg_parse(&v, &cfg, err, sizeof err) != GA_OK) {
        fail_msg("config %s refused: %s", json, err);
    }
    ga_arena_destroy(&a); // the config keeps its own copy
    return cfg;
}

// Puts a config built from JSON; returns what put returned.
static bool
s_put(ga_functable_t *t, const char *json)
{
    ga_funcfg_t *cfg = s_cfg(json);
    bool changed = ga_functable_put(t, &cfg);
    assert_null(cfg); // consumed, whatever the outcome
    return changed;
}

// Puts service "s", request_type "f" at `version` (NULL: unversioned), optionally disabled.
static void
s_put_version(ga_functable_t *t, const char *version, bool disabled)
{
    char json[256];
    if (version) {
        snprintf(json, sizeof json,
                 "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"%s\",\"disabled\":%s}",
                 version, disabled ? "true" : "false");
    } else {
        snprintf(json, sizeof json, "{\"service\":\"s\",\"request_type\":\"f\",\"disabled\":%s}",
                 disabled ? "true" : "false");
    }
    assert_true(s_put(t, json));
}

static int
s_sign(int x)
{
    return (x > 0) - (x < 0);
}

// --- put, get, resolve ---

static void
test_functable_starts_empty(void **state)
{
    ga_functable_t *t = *state;
    assert_int_equal(ga_functable_size(t), 0);
    assert_null(ga_functable_get(t, "s", "f", NULL));
    assert_null(ga_functable_resolve(t, "s", "f", NULL));
}

static void
test_functable_put_then_get_returns_that_config(void **state)
{
    ga_functable_t *t = *state;
    assert_true(s_put(t, "{\"service\":\"user_service\",\"request_type\":\"get_user\","
                         "\"version\":\"1.0.0\",\"timeout\":7000}"));
    assert_int_equal(ga_functable_size(t), 1);
    const ga_funcfg_t *c = ga_functable_get(t, "user_service", "get_user", "1.0.0");
    assert_non_null(c);
    assert_string_equal(c->service, "user_service");
    assert_string_equal(c->request_type, "get_user");
    assert_string_equal(c->version, "1.0.0");
    assert_int_equal(c->timeout_ms, 7000);
}

static void
test_functable_get_is_exact_on_every_key_part(void **state)
{
    ga_functable_t *t = *state;
    assert_true(s_put(t, "{\"service\":\"svc\",\"request_type\":\"fn\",\"version\":\"1.0.0\"}"));
    assert_null(ga_functable_get(t, "svc", "fn", NULL)); // NULL means the unversioned config
    assert_null(ga_functable_get(t, "svc", "fn", "1.0"));
    assert_null(ga_functable_get(t, "svc", "f", "1.0.0"));
    assert_null(ga_functable_get(t, "sv", "fn", "1.0.0"));
    assert_null(ga_functable_get(t, "svc", "fn2", "1.0.0"));
    assert_non_null(ga_functable_get(t, "svc", "fn", "1.0.0"));
}

static void
test_functable_get_with_null_version_finds_the_unversioned_config(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, NULL, false);
    s_put_version(t, "1.0.0", false);
    const ga_funcfg_t *c = ga_functable_get(t, "s", "f", NULL);
    assert_non_null(c);
    assert_null(c->version);
    assert_int_equal(ga_functable_size(t), 2);
}

static void
test_functable_resolve_with_a_version_is_an_exact_lookup(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, "2.0.0", false);
    assert_string_equal(ga_functable_resolve(t, "s", "f", "1.0.0")->version, "1.0.0");
    assert_null(ga_functable_resolve(t, "s", "f", "3.0.0"));
}

static void
test_functable_resolve_with_a_version_returns_it_even_when_disabled(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, "2.0.0", true);
    const ga_funcfg_t *c = ga_functable_resolve(t, "s", "f", "2.0.0");
    assert_non_null(c);
    assert_true(c->disabled); // the caller answers "Function disabled"
}

static void
test_functable_resolve_picks_highest_version_in_semver_order(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.9.0", false);
    s_put_version(t, "1.10.0", false);
    s_put_version(t, "1.2.0", false);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "1.10.0");
}

static void
test_functable_resolve_result_does_not_depend_on_insertion_order(void **state)
{
    (void) state;
    const char *versions[] = {"0.9.1", "2.0.0", "1.10.0", "1.9.9", "1.2.0"};
    for (size_t start = 0; start < 5; start++) {
        ga_functable_t *t = ga_functable_new();
        for (size_t i = 0; i < 5; i++) {
            s_put_version(t, versions[(start + i) % 5], false);
        }
        assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "2.0.0");
        ga_functable_destroy(&t);
    }
}

static void
test_functable_unversioned_beats_versioned(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, NULL, false);
    s_put_version(t, "9.0.0", false); // added after the unversioned one
    const ga_funcfg_t *c = ga_functable_resolve(t, "s", "f", NULL);
    assert_non_null(c);
    assert_null(c->version);
}

static void
test_functable_version_0_0_0_means_unversioned(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "2.0.0", false);
    s_put_version(t, "0.0.0", false);
    assert_int_equal(ga_functable_size(t), 2);
    assert_non_null(ga_functable_get(t, "s", "f", NULL));
    assert_null(ga_functable_resolve(t, "s", "f", NULL)->version);
    assert_null(ga_functable_resolve(t, "s", "f", "0.0.0")->version);
}

static void
test_functable_resolve_skips_disabled_versions(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, "2.0.0", true);
    s_put_version(t, "1.5.0", false);
    s_put_version(t, "1.10.0", true);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "1.5.0");
}

static void
test_functable_resolve_is_null_when_every_version_is_disabled(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", true);
    s_put_version(t, "2.0.0", true);
    assert_null(ga_functable_resolve(t, "s", "f", NULL));
    assert_int_equal(ga_functable_size(t), 2);
}

static void
test_functable_disabling_the_latest_falls_back_to_the_next(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, "2.0.0", false);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "2.0.0");
    s_put_version(t, "2.0.0", true); // replaced by a disabled copy
    assert_int_equal(ga_functable_size(t), 2);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "1.0.0");
    s_put_version(t, "2.0.0", false); // and enabled again
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "2.0.0");
}

static void
test_functable_resolution_is_per_service_and_request_type(void **state)
{
    ga_functable_t *t = *state;
    assert_true(s_put(t, "{\"service\":\"a\",\"request_type\":\"f\",\"version\":\"5.0.0\"}"));
    assert_true(s_put(t, "{\"service\":\"a\",\"request_type\":\"g\"}"));
    assert_true(s_put(t, "{\"service\":\"b\",\"request_type\":\"f\",\"version\":\"1.0.0\"}"));
    assert_string_equal(ga_functable_resolve(t, "a", "f", NULL)->version, "5.0.0");
    assert_null(ga_functable_resolve(t, "a", "g", NULL)->version);
    assert_string_equal(ga_functable_resolve(t, "b", "f", NULL)->version, "1.0.0");
    assert_null(ga_functable_resolve(t, "b", "g", NULL));
}

// --- change detection ---

static void
test_functable_put_of_identical_source_returns_false(void **state)
{
    ga_functable_t *t = *state;
    const char *json = "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.0.0\","
                       "\"arg_types\":{\"user_id\":\"string\"}}";
    assert_true(s_put(t, json));
    const ga_funcfg_t *before = ga_functable_get(t, "s", "f", "1.0.0");
    assert_false(s_put(t, json));
    assert_int_equal(ga_functable_size(t), 1);
    assert_ptr_equal(ga_functable_get(t, "s", "f", "1.0.0"), before); // the old one is kept
}

static void
test_functable_put_of_same_source_in_other_key_order_returns_false(void **state)
{
    ga_functable_t *t = *state;
    assert_true(s_put(t, "{\"service\":\"s\",\"request_type\":\"f\",\"timeout\":6000}"));
    assert_false(s_put(t, "{\"timeout\":6000,\"request_type\":\"f\",\"service\":\"s\"}"));
}

static void
test_functable_put_of_different_source_replaces_and_returns_true(void **state)
{
    ga_functable_t *t = *state;
    assert_true(s_put(t, "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.0.0\","
                         "\"timeout\":6000}"));
    assert_true(s_put(t, "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.0.0\","
                         "\"timeout\":8000}"));
    assert_int_equal(ga_functable_size(t), 1);
    assert_int_equal(ga_functable_get(t, "s", "f", "1.0.0")->timeout_ms, 8000);
    assert_int_equal(ga_functable_resolve(t, "s", "f", NULL)->timeout_ms, 8000);
}

static void
test_functable_clear_removes_every_config(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, NULL, false);
    ga_functable_clear(t);
    assert_int_equal(ga_functable_size(t), 0);
    assert_null(ga_functable_get(t, "s", "f", "1.0.0"));
    assert_null(ga_functable_resolve(t, "s", "f", NULL));
    s_put_version(t, "3.0.0", false); // usable afterwards
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "3.0.0");
}

static void
test_functable_remove_drops_one_key_and_reresolves(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "1.0.0", false);
    s_put_version(t, "2.0.0", false);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "2.0.0");
    // The resolved config itself goes: resolution falls back to the next version.
    assert_true(ga_functable_remove(t, "s", "f", "2.0.0"));
    assert_int_equal(ga_functable_size(t), 1);
    assert_null(ga_functable_get(t, "s", "f", "2.0.0"));
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "1.0.0");
    assert_false(ga_functable_remove(t, "s", "f", "2.0.0")); // already gone
    assert_false(ga_functable_remove(t, "s", "f", NULL));    // no unversioned config
    assert_true(ga_functable_remove(t, "s", "f", "1.0.0"));
    assert_null(ga_functable_resolve(t, "s", "f", NULL));
    assert_int_equal(ga_functable_size(t), 0);
}

static void
s_collect(const ga_funcfg_t *cfg, void *arg)
{
    int *seen = arg;
    int i = cfg->request_type[0] - 'a';
    assert_true(i >= 0 && i < 26);
    seen[i]++;
}

static void
test_functable_each_visits_every_config_once(void **state)
{
    ga_functable_t *t = *state;
    char json[128];
    for (char c = 'a'; c <= 'j'; c++) {
        snprintf(json, sizeof json, "{\"service\":\"s\",\"request_type\":\"%c\"}", c);
        assert_true(s_put(t, json));
    }
    int seen[26] = {0};
    ga_functable_each(t, s_collect, seen);
    for (int i = 0; i < 26; i++) {
        assert_int_equal(seen[i], i < 10 ? 1 : 0);
    }
}

static void
test_functable_key_joins_parts_with_unit_separators(void **state)
{
    (void) state;
    char key[64];
    ga_functable_key(key, sizeof key, "svc", "fn", "1.0.0");
    assert_string_equal(key, "svc\x1f"
                             "fn\x1f"
                             "1.0.0");
    ga_functable_key(key, sizeof key, "svc", "fn", NULL);
    assert_string_equal(key, "svc\x1f"
                             "fn\x1f");
    // A key longer than the buffer is cut to its size, NUL-terminated, at every length.
    for (size_t len = 1; len <= 16; len++) {
        char want[16];
        snprintf(want, len, "%s\x1f%s\x1f%s", "svc", "fn", "1.0.0");
        memset(key, 'z', sizeof key);
        ga_functable_key(key, len, "svc", "fn", "1.0.0");
        assert_string_equal(key, want);
        assert_int_equal(key[len], 'z'); // nothing written past the buffer
    }
}

// --- version order ---

static void
test_version_cmp_orders_numeric_parts_numerically(void **state)
{
    (void) state;
    assert_true(ga_version_cmp("1.10.0", "1.9.0") > 0);
    assert_true(ga_version_cmp("1.9.0", "1.10.0") < 0);
    assert_true(ga_version_cmp("2.0", "1.99.99") > 0);
    assert_true(ga_version_cmp("1.99.99", "2.0") < 0);
    assert_true(ga_version_cmp("10.0.0", "9.0.0") > 0);
    assert_true(ga_version_cmp("1.0.10", "1.0.9") > 0);
}

static void
test_version_cmp_equal_versions_compare_zero(void **state)
{
    (void) state;
    assert_int_equal(ga_version_cmp("1.0.0", "1.0.0"), 0);
    assert_int_equal(ga_version_cmp("1.10.0-beta", "1.10.0-beta"), 0);
    assert_int_equal(ga_version_cmp("", ""), 0);
}

static void
test_version_cmp_prerelease_is_consistent_and_antisymmetric(void **state)
{
    (void) state;
    int ab = ga_version_cmp("1.0.0-beta", "1.0.0");
    int ba = ga_version_cmp("1.0.0", "1.0.0-beta");
    assert_true(ab < 0); // a pre-release ranks below its release
    assert_int_equal(s_sign(ab), -s_sign(ba));
    // Repeated calls agree.
    assert_int_equal(s_sign(ga_version_cmp("1.0.0-beta", "1.0.0")), s_sign(ab));
    // A pre-release of a higher version stays above every lower version.
    assert_true(ga_version_cmp("1.1.0-beta", "1.0.0") > 0);
    assert_true(ga_version_cmp("1.0.0-beta", "1.1.0") < 0);
}

static void
test_version_cmp_is_antisymmetric_over_many_pairs(void **state)
{
    (void) state;
    const char *v[] = {"0.0.1",       "0.1",    "1",     "1.0",    "1.0.0", "1.0.0-beta",
                       "1.0.0-alpha", "1.0.1",  "1.2.3", "1.10.0", "1.9.0", "2.0",
                       "2.0.0-rc1",   "10.0.0", "1.a",   "1.b",    "v1",    "1.0.0.1"};
    size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ga_version_cmp(v[i], v[i]), 0);
        for (size_t j = 0; j < n; j++) {
            int ij = s_sign(ga_version_cmp(v[i], v[j]));
            int ji = s_sign(ga_version_cmp(v[j], v[i]));
            if (ij != -ji) {
                fail_msg("cmp(%s, %s) = %d but cmp(%s, %s) = %d", v[i], v[j], ij, v[j], v[i], ji);
            }
        }
    }
}

static void
test_version_cmp_sorts_a_release_sequence(void **state)
{
    (void) state;
    const char *seq[] = {"0.1.0", "0.9.0",  "0.10.0", "1.0.0", "1.0.1", "1.2.0",
                         "1.9.0", "1.10.0", "1.10.1", "2.0.0", "10.0.0"};
    size_t n = sizeof seq / sizeof seq[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = s_sign(ga_version_cmp(seq[i], seq[j]));
            int want = i < j ? -1 : (i > j ? 1 : 0);
            if (c != want) {
                fail_msg("cmp(%s, %s) = %d, want %d", seq[i], seq[j], c, want);
            }
        }
    }
}

// semver.org's precedence example, plus build metadata and leading zeros.
static void
test_version_cmp_follows_semver_precedence(void **state)
{
    (void) state;
    const char *seq[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                         "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1-rc.1",
                         "1.0.1"};
    size_t n = sizeof seq / sizeof seq[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = s_sign(ga_version_cmp(seq[i], seq[j]));
            int want = i < j ? -1 : (i > j ? 1 : 0);
            if (c != want) {
                fail_msg("cmp(%s, %s) = %d, want %d", seq[i], seq[j], c, want);
            }
        }
    }
    assert_int_equal(ga_version_cmp("1.0.0+build.5", "1.0.0"), 0);
    assert_int_equal(ga_version_cmp("1.0.0-rc.1+b7", "1.0.0-rc.1"), 0);
    assert_int_equal(ga_version_cmp("1.01.0", "1.1.0"), 0);
    assert_true(ga_version_cmp("1.0.0-rc.1+b7", "1.0.0+a") < 0);
}

static void
test_functable_resolve_prefers_a_release_over_its_prerelease(void **state)
{
    ga_functable_t *t = *state;
    s_put_version(t, "2.0.0-beta", false);
    s_put_version(t, "1.0.0", false);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "2.0.0-beta");
    s_put_version(t, "2.0.0", false);
    assert_string_equal(ga_functable_resolve(t, "s", "f", NULL)->version, "2.0.0");
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_functable_starts_empty),
        T(test_functable_put_then_get_returns_that_config),
        T(test_functable_get_is_exact_on_every_key_part),
        T(test_functable_get_with_null_version_finds_the_unversioned_config),
        T(test_functable_resolve_with_a_version_is_an_exact_lookup),
        T(test_functable_resolve_with_a_version_returns_it_even_when_disabled),
        T(test_functable_resolve_picks_highest_version_in_semver_order),
        cmocka_unit_test(test_functable_resolve_result_does_not_depend_on_insertion_order),
        T(test_functable_unversioned_beats_versioned),
        T(test_functable_version_0_0_0_means_unversioned),
        T(test_functable_resolve_skips_disabled_versions),
        T(test_functable_resolve_is_null_when_every_version_is_disabled),
        T(test_functable_disabling_the_latest_falls_back_to_the_next),
        T(test_functable_resolution_is_per_service_and_request_type),
        T(test_functable_put_of_identical_source_returns_false),
        T(test_functable_put_of_same_source_in_other_key_order_returns_false),
        T(test_functable_put_of_different_source_replaces_and_returns_true),
        T(test_functable_clear_removes_every_config),
        T(test_functable_remove_drops_one_key_and_reresolves),
        T(test_functable_each_visits_every_config_once),
        cmocka_unit_test(test_functable_key_joins_parts_with_unit_separators),
        cmocka_unit_test(test_version_cmp_orders_numeric_parts_numerically),
        cmocka_unit_test(test_version_cmp_equal_versions_compare_zero),
        cmocka_unit_test(test_version_cmp_prerelease_is_consistent_and_antisymmetric),
        cmocka_unit_test(test_version_cmp_is_antisymmetric_over_many_pairs),
        cmocka_unit_test(test_version_cmp_sorts_a_release_sequence),
        cmocka_unit_test(test_version_cmp_follows_semver_precedence),
        T(test_functable_resolve_prefers_a_release_over_its_prerelease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
