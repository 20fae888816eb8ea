// SPDX-License-Identifier: MIT
// The deadline queue: entries come out in deadline order, only when due at `now`, next() is the
// earliest deadline (INT64_MAX when empty), and random pushes interleaved with pops stay sorted.
#include "ga_timeq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_rand.h"

#define N_RANDOM 10000

static int
s_setup(void **state)
{
    *state = ga_timeq_new();
    return 0;
}

static int
s_teardown(void **state)
{
    ga_timeq_t *q = *state;
    ga_timeq_destroy(&q);
    assert_null(q);
    return 0;
}

static void
test_timeq_empty_queue_has_no_next_and_pops_nothing(void **state)
{
    ga_timeq_t *q = *state;
    uint64_t id = 77;
    assert_int_equal(ga_timeq_size(q), 0);
    assert_true(ga_timeq_next(q) == INT64_MAX);
    assert_false(ga_timeq_pop_due(q, INT64_MAX, &id));
    assert_int_equal(id, 77); // untouched
}

static void
test_timeq_pops_in_deadline_order(void **state)
{
    ga_timeq_t *q = *state;
    const int64_t deadlines[] = {500, 100, 400, 200, 300};
    for (uint64_t i = 0; i < 5; i++) {
        ga_timeq_push(q, deadlines[i], i + 1);
    }
    assert_int_equal(ga_timeq_size(q), 5);
    const uint64_t want[] = {2, 4, 5, 3, 1};
    for (size_t i = 0; i < 5; i++) {
        uint64_t id = 0;
        assert_true(ga_timeq_pop_due(q, INT64_MAX, &id));
        assert_int_equal(id, want[i]);
        assert_int_equal(ga_timeq_size(q), 4 - i);
    }
    assert_true(ga_timeq_next(q) == INT64_MAX);
}

static void
test_timeq_next_is_the_earliest_deadline(void **state)
{
    ga_timeq_t *q = *state;
    ga_timeq_push(q, 300, 1);
    assert_int_equal(ga_timeq_next(q), 300);
    ga_timeq_push(q, 100, 2);
    assert_int_equal(ga_timeq_next(q), 100);
    ga_timeq_push(q, 200, 3);
    assert_int_equal(ga_timeq_next(q), 100);
    uint64_t id;
    assert_true(ga_timeq_pop_due(q, 100, &id));
    assert_int_equal(ga_timeq_next(q), 200);
    assert_true(ga_timeq_pop_due(q, 200, &id));
    assert_int_equal(ga_timeq_next(q), 300);
    assert_true(ga_timeq_pop_due(q, 300, &id));
    assert_true(ga_timeq_next(q) == INT64_MAX);
}

static void
test_timeq_pop_due_leaves_entries_not_yet_due(void **state)
{
    ga_timeq_t *q = *state;
    ga_timeq_push(q, 1000, 1);
    ga_timeq_push(q, 2000, 2);
    uint64_t id = 0;
    assert_false(ga_timeq_pop_due(q, 999, &id));
    assert_int_equal(ga_timeq_size(q), 2);
    assert_true(ga_timeq_pop_due(q, 1000, &id)); // due exactly at its deadline
    assert_int_equal(id, 1);
    assert_false(ga_timeq_pop_due(q, 1999, &id));
    assert_int_equal(id, 1);
    assert_int_equal(ga_timeq_size(q), 1);
    assert_true(ga_timeq_pop_due(q, 5000, &id));
    assert_int_equal(id, 2);
    assert_false(ga_timeq_pop_due(q, 5000, &id));
}

static void
test_timeq_pop_due_drains_only_what_is_due(void **state)
{
    ga_timeq_t *q = *state;
    for (uint64_t i = 1; i <= 100; i++) {
        ga_timeq_push(q, (int64_t) i * 10, i);
    }
    uint64_t id;
    size_t popped = 0;
    while (ga_timeq_pop_due(q, 505, &id)) {
        popped++;
        assert_true(id <= 50);
    }
    assert_int_equal(popped, 50);
    assert_int_equal(ga_timeq_size(q), 50);
    assert_int_equal(ga_timeq_next(q), 510);
}

static void
test_timeq_keeps_duplicate_deadlines_and_negative_ones(void **state)
{
    ga_timeq_t *q = *state;
    ga_timeq_push(q, 5, 1);
    ga_timeq_push(q, 5, 2);
    ga_timeq_push(q, -10, 3);
    ga_timeq_push(q, INT64_MIN, 4);
    ga_timeq_push(q, 5, 5);
    assert_true(ga_timeq_next(q) == INT64_MIN);
    uint64_t id;
    assert_true(ga_timeq_pop_due(q, INT64_MIN, &id));
    assert_int_equal(id, 4);
    assert_true(ga_timeq_pop_due(q, -10, &id));
    assert_int_equal(id, 3);
    assert_false(ga_timeq_pop_due(q, 4, &id));
    bool seen[6] = {false};
    for (int i = 0; i < 3; i++) {
        assert_true(ga_timeq_pop_due(q, 5, &id));
        assert_true(id == 1 || id == 2 || id == 5);
        assert_false(seen[id]);
        seen[id] = true;
    }
    assert_int_equal(ga_timeq_size(q), 0);
}

static void
test_timeq_random_pushes_come_out_sorted(void **state)
{
    ga_timeq_t *q = *state;
    static int64_t deadline_of[N_RANDOM + 1];
    static bool popped[N_RANDOM + 1];
    memset(popped, 0, sizeof popped);
    uint64_t seed = 0xDEADBEEFCAFEULL;
    for (uint64_t id = 1; id <= N_RANDOM; id++) {
        // A narrow range makes many duplicates; a few extreme values test the ends.
        int64_t d = (int64_t) (test_rand(&seed) % 5000) - 1000;
        if (id % 1000 == 0) {
            d = id % 2000 == 0 ? INT64_MAX - 1 : INT64_MIN + 1;
        }
        deadline_of[id] = d;
        ga_timeq_push(q, d, id);
    }
    assert_int_equal(ga_timeq_size(q), N_RANDOM);
    int64_t last = INT64_MIN;
    for (size_t n = 0; n < N_RANDOM; n++) {
        int64_t next = ga_timeq_next(q);
        uint64_t id = 0;
        assert_true(ga_timeq_pop_due(q, INT64_MAX, &id));
        assert_true(id >= 1 && id <= N_RANDOM);
        assert_false(popped[id]); // each id exactly once
        popped[id] = true;
        assert_int_equal(deadline_of[id], next); // next() named this entry's deadline
        assert_true(deadline_of[id] >= last);
        last = deadline_of[id];
    }
    assert_int_equal(ga_timeq_size(q), 0);
    assert_true(ga_timeq_next(q) == INT64_MAX);
}

static void
test_timeq_interleaved_pushes_and_pops_stay_ordered(void **state)
{
    ga_timeq_t *q = *state;
    // A clock that advances; each step pushes a few deadlines ahead and pops what is due.
    static int64_t deadline_of[N_RANDOM + 1];
    uint64_t seed = 42;
    uint64_t next_id = 1;
    size_t live = 0;
    size_t total_popped = 0;
    for (int64_t now = 0; next_id <= N_RANDOM || live > 0; now += 7) {
        for (int k = 0; k < 3 && next_id <= N_RANDOM; k++) {
            int64_t d = now + (int64_t) (test_rand(&seed) % 100);
            deadline_of[next_id] = d;
            ga_timeq_push(q, d, next_id++);
            live++;
        }
        uint64_t id;
        int64_t prev = INT64_MIN;
        while (ga_timeq_pop_due(q, now, &id)) {
            assert_true(deadline_of[id] <= now);
            assert_true(deadline_of[id] >= prev);
            prev = deadline_of[id];
            live--;
            total_popped++;
        }
        assert_int_equal(ga_timeq_size(q), live);
        assert_true(ga_timeq_next(q) > now); // nothing due is left behind
    }
    assert_int_equal(total_popped, N_RANDOM);
}

static void
test_timeq_destroy_of_null_is_harmless(void **state)
{
    (void) state;
    ga_timeq_t *q = NULL;
    ga_timeq_destroy(&q);
    ga_timeq_destroy(NULL);
    assert_null(q);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_timeq_empty_queue_has_no_next_and_pops_nothing),
        T(test_timeq_pops_in_deadline_order),
        T(test_timeq_next_is_the_earliest_deadline),
        T(test_timeq_pop_due_leaves_entries_not_yet_due),
        T(test_timeq_pop_due_drains_only_what_is_due),
        T(test_timeq_keeps_duplicate_deadlines_and_negative_ones),
        T(test_timeq_random_pushes_come_out_sorted),
        T(test_timeq_interleaved_pushes_and_pops_stay_ordered),
        cmocka_unit_test(test_timeq_destroy_of_null_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
