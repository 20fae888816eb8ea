// SPDX-License-Identifier: MIT
// The nodes resolvers' cache (broker/bk_resolve.h) without sockets: an answer is fresh for
// cache_ms, then stale but still there (it serves while a new one is on its way); a new answer
// replaces it; an answer that is not a list of node names is refused and leaves the entry as
// it was; a resolver never answered allows nothing.
#include "bk_resolve.h"
#include "ga_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static ga_value_t
s_json(ga_arena_t *a, const char *text)
{
    ga_value_t v;
    char err[200];
    assert_int_equal(ga_json_decode(text, strlen(text), a, &v, err, sizeof err), GA_OK);
    return v;
}

static void
test_resolve_cache_fresh_then_stale_then_replaced(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    bk_resolve_t *r = bk_resolve_new(5000);
    const char *const *nodes = NULL;
    size_t n = 0;
    bool fresh = true;
    assert_false(bk_resolve_cached(r, "s.resolve", 0, &nodes, &n, &fresh));
    assert_false(bk_resolve_allows(r, "s.resolve", "n1"));

    ga_value_t v = s_json(a, "[\"n1\", \"n2\"]");
    assert_int_equal(bk_resolve_store(r, "s.resolve", &v, 1000), GA_OK);
    assert_true(bk_resolve_cached(r, "s.resolve", 1000, &nodes, &n, &fresh));
    assert_true(fresh);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0], "n1");
    assert_string_equal(nodes[1], "n2");
    assert_true(bk_resolve_allows(r, "s.resolve", "n2"));
    assert_false(bk_resolve_allows(r, "s.resolve", "n3"));
    assert_false(bk_resolve_allows(r, "other.resolve", "n1"));
    // Fresh until 1000 + 5000, stale from then on, still usable.
    assert_true(bk_resolve_cached(r, "s.resolve", 5999, &nodes, &n, &fresh));
    assert_true(fresh);
    assert_true(bk_resolve_cached(r, "s.resolve", 6000, &nodes, &n, &fresh));
    assert_false(fresh);
    assert_true(bk_resolve_allows(r, "s.resolve", "n1"));

    // A new answer replaces the old one and is fresh again.
    v = s_json(a, "[\"n3\"]");
    assert_int_equal(bk_resolve_store(r, "s.resolve", &v, 7000), GA_OK);
    assert_true(bk_resolve_cached(r, "s.resolve", 7000, &nodes, &n, &fresh));
    assert_true(fresh);
    assert_int_equal(n, 1);
    assert_false(bk_resolve_allows(r, "s.resolve", "n1"));
    assert_true(bk_resolve_allows(r, "s.resolve", "n3"));

    // An empty list is an answer: no node may serve.
    v = s_json(a, "[]");
    assert_int_equal(bk_resolve_store(r, "s.resolve", &v, 8000), GA_OK);
    assert_true(bk_resolve_cached(r, "s.resolve", 8000, &nodes, &n, &fresh));
    assert_int_equal(n, 0);
    assert_false(bk_resolve_allows(r, "s.resolve", "n3"));
    bk_resolve_destroy(&r);
    ga_arena_destroy(&a);
}

static void
test_resolve_cache_refuses_answers_that_are_not_node_lists(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    bk_resolve_t *r = bk_resolve_new(100);
    ga_value_t good = s_json(a, "[\"n1\"]");
    assert_int_equal(bk_resolve_store(r, "s.r", &good, 0), GA_OK);
    const char *bad[] = {"{\"nodes\": [\"n2\"]}", "\"n2\"", "[\"n2\", 3]", "[\"\"]", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ga_value_t v = s_json(a, bad[i]);
        assert_int_equal(bk_resolve_store(r, "s.r", &v, 50), GA_EINVAL);
    }
    assert_int_equal(bk_resolve_store(r, "s.r", NULL, 50), GA_EINVAL);
    // The entry is as it was: n1, fresh until 100.
    const char *const *nodes = NULL;
    size_t n = 0;
    bool fresh = false;
    assert_true(bk_resolve_cached(r, "s.r", 99, &nodes, &n, &fresh));
    assert_true(fresh);
    assert_int_equal(n, 1);
    assert_string_equal(nodes[0], "n1");
    assert_true(bk_resolve_cached(r, "s.r", 100, &nodes, &n, &fresh));
    assert_false(fresh);
    // Too many names for one answer.
    char big[BK_RESOLVE_NODES_MAX * 8 + 16] = "[";
    for (int i = 0; i <= BK_RESOLVE_NODES_MAX; i++) {
        strcat(big, i ? ",\"n\"" : "\"n\"");
    }
    strcat(big, "]");
    ga_value_t v = s_json(a, big);
    assert_int_equal(bk_resolve_store(r, "s.r", &v, 50), GA_EINVAL);
    bk_resolve_destroy(&r);
    ga_arena_destroy(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_cache_fresh_then_stale_then_replaced),
        cmocka_unit_test(test_resolve_cache_refuses_answers_that_are_not_node_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
