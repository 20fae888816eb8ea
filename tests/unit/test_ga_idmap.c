// SPDX-License-Identifier: MIT
// The id map against a plain-array oracle: inserts, replacements, insert-if-absent, lookups and
// removals over thousands of ids (growth, collisions, backward-shift deletion), and each()
// coverage.
#include "ga_idmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_rand.h"

#define N_IDS 10000

static int
s_setup(void **state)
{
    *state = ga_idmap_new();
    return 0;
}

static int
s_teardown(void **state)
{
    ga_idmap_t *m = *state;
    ga_idmap_destroy(&m);
    assert_null(m);
    return 0;
}

// Oracle: ids[i] is present with value &vals[i] when live[i].
typedef struct {
    uint64_t ids[N_IDS]; // every id the test uses
    int vals[N_IDS];     // the values are pointers into this array
    bool live[N_IDS];    // whether ids[i] should be in the map
    size_t n_live;       // entries live
} oracle_t;

// Checks every oracle entry against the map, and the size.
static void
s_check(const ga_idmap_t *m, const oracle_t *o)
{
    assert_int_equal(ga_idmap_size(m), o->n_live);
    for (size_t i = 0; i < N_IDS; i++) {
        void *got = ga_idmap_get(m, o->ids[i]);
        void *want = o->live[i] ? (void *) &o->vals[i] : NULL;
        if (got != want) {
            fail_msg("id %llu (index %zu): got %p, want %p", (unsigned long long) o->ids[i], i, got,
                     want);
        }
    }
}

static void
test_idmap_empty_map_finds_nothing(void **state)
{
    ga_idmap_t *m = *state;
    assert_int_equal(ga_idmap_size(m), 0);
    assert_null(ga_idmap_get(m, 1));
    assert_null(ga_idmap_take(m, 1));
    assert_null(ga_idmap_get(m, UINT64_MAX));
}

static void
test_idmap_put_get_take_one_entry(void **state)
{
    ga_idmap_t *m = *state;
    int v = 5;
    ga_idmap_put(m, 7, &v);
    assert_int_equal(ga_idmap_size(m), 1);
    assert_ptr_equal(ga_idmap_get(m, 7), &v);
    assert_null(ga_idmap_get(m, 8));
    assert_ptr_equal(ga_idmap_take(m, 7), &v);
    assert_int_equal(ga_idmap_size(m), 0);
    assert_null(ga_idmap_get(m, 7));
    assert_null(ga_idmap_take(m, 7));
}

static void
test_idmap_put_of_existing_id_replaces_the_value(void **state)
{
    ga_idmap_t *m = *state;
    int a = 1;
    int b = 2;
    ga_idmap_put(m, 99, &a);
    ga_idmap_put(m, 99, &b);
    assert_int_equal(ga_idmap_size(m), 1);
    assert_ptr_equal(ga_idmap_get(m, 99), &b);
}

static void
test_idmap_put_new_inserts_once_and_keeps_the_first_value(void **state)
{
    ga_idmap_t *m = *state;
    int a = 1;
    int b = 2;
    assert_null(ga_idmap_put_new(m, 99, &a));
    assert_ptr_equal(ga_idmap_put_new(m, 99, &b), &a); // present: unchanged, the old value back
    assert_int_equal(ga_idmap_size(m), 1);
    assert_ptr_equal(ga_idmap_get(m, 99), &a);
    assert_ptr_equal(ga_idmap_take(m, 99), &a);
    assert_null(ga_idmap_put_new(m, 99, &b)); // gone: inserted again
    assert_ptr_equal(ga_idmap_get(m, 99), &b);
}

// put_new across growth (the slot it found moves when the table doubles) and on a present id
// at the growth threshold (which must not grow or change anything), against the oracle.
static void
test_idmap_put_new_matches_oracle_across_growth(void **state)
{
    ga_idmap_t *m = *state;
    static oracle_t o;
    memset(&o, 0, sizeof o);
    uint64_t seed = 777;
    for (size_t i = 0; i < N_IDS; i++) {
        o.ids[i] = i % 2 ? test_rand(&seed) : i + 1; // sequential and random ids, interleaved
    }
    for (size_t i = 0; i < N_IDS; i++) {
        assert_null(ga_idmap_put_new(m, o.ids[i], &o.vals[i]));
        o.live[i] = true;
        o.n_live++;
        // Every id already in: found, not replaced, whatever the fill.
        size_t j = (size_t) (test_rand(&seed) % (i + 1));
        assert_ptr_equal(ga_idmap_put_new(m, o.ids[j], &o.vals[i]), &o.vals[j]);
        assert_int_equal(ga_idmap_size(m), o.n_live);
        if (i % 1000 == 999) {
            s_check(m, &o);
        }
    }
    s_check(m, &o);
}

static void
test_idmap_id_zero_is_never_found(void **state)
{
    ga_idmap_t *m = *state;
    int v = 1;
    ga_idmap_put(m, 1, &v);
    // 0 marks an empty slot inside the map; asking for it must not match one.
    assert_null(ga_idmap_get(m, 0));
    assert_null(ga_idmap_take(m, 0));
    assert_int_equal(ga_idmap_size(m), 1);
}

static void
test_idmap_extreme_ids_are_ordinary_keys(void **state)
{
    ga_idmap_t *m = *state;
    int a = 1;
    int b = 2;
    ga_idmap_put(m, UINT64_MAX, &a);
    ga_idmap_put(m, (uint64_t) 1 << 63, &b);
    assert_ptr_equal(ga_idmap_get(m, UINT64_MAX), &a);
    assert_ptr_equal(ga_idmap_get(m, (uint64_t) 1 << 63), &b);
    assert_ptr_equal(ga_idmap_take(m, UINT64_MAX), &a);
    assert_ptr_equal(ga_idmap_get(m, (uint64_t) 1 << 63), &b);
}

static void
test_idmap_sequential_ids_with_random_deletions_match_oracle(void **state)
{
    ga_idmap_t *m = *state;
    static oracle_t o;
    memset(&o, 0, sizeof o);
    for (size_t i = 0; i < N_IDS; i++) {
        o.ids[i] = i + 1; // as owners assign them
        ga_idmap_put(m, o.ids[i], &o.vals[i]);
        o.live[i] = true;
        o.n_live++;
    }
    s_check(m, &o);
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < N_IDS / 2; k++) {
            size_t i = (size_t) (test_rand(&seed) % N_IDS);
            void *want = o.live[i] ? (void *) &o.vals[i] : NULL;
            assert_ptr_equal(ga_idmap_take(m, o.ids[i]), want);
            if (o.live[i]) {
                o.live[i] = false;
                o.n_live--;
            }
        }
        s_check(m, &o);
        // Put back a random part of what is gone.
        for (size_t i = 0; i < N_IDS; i++) {
            if (!o.live[i] && test_rand(&seed) % 3 == 0) {
                ga_idmap_put(m, o.ids[i], &o.vals[i]);
                o.live[i] = true;
                o.n_live++;
            }
        }
        s_check(m, &o);
    }
}

static void
test_idmap_random_ids_with_random_deletions_match_oracle(void **state)
{
    ga_idmap_t *m = *state;
    static oracle_t o;
    memset(&o, 0, sizeof o);
    uint64_t seed = 12345;
    // xorshift64* never repeats an output within its period and never yields 0.
    for (size_t i = 0; i < N_IDS; i++) {
        o.ids[i] = test_rand(&seed);
        assert_true(o.ids[i] != 0);
    }
    // Interleave puts and takes so deletions happen at every table size.
    for (size_t i = 0; i < N_IDS; i++) {
        ga_idmap_put(m, o.ids[i], &o.vals[i]);
        o.live[i] = true;
        o.n_live++;
        if (i % 4 == 3) {
            size_t victim = (size_t) (test_rand(&seed) % (i + 1));
            void *want = o.live[victim] ? (void *) &o.vals[victim] : NULL;
            assert_ptr_equal(ga_idmap_take(m, o.ids[victim]), want);
            if (o.live[victim]) {
                o.live[victim] = false;
                o.n_live--;
            }
        }
    }
    s_check(m, &o);
    // Remove everything, checking the rest after every 500 removals.
    for (size_t i = 0; i < N_IDS; i++) {
        void *want = o.live[i] ? (void *) &o.vals[i] : NULL;
        assert_ptr_equal(ga_idmap_take(m, o.ids[i]), want);
        if (o.live[i]) {
            o.live[i] = false;
            o.n_live--;
        }
        if (i % 500 == 0) {
            s_check(m, &o);
        }
    }
    assert_int_equal(ga_idmap_size(m), 0);
}

static void
test_idmap_any_single_deletion_keeps_all_other_entries_findable(void **state)
{
    (void) state;
    // 31 entries stay in the initial 64 slots (load just under 1/2), so probe runs form and
    // wrap around the end of the table; every choice of victim must leave the others reachable.
    enum { N = 31, TRIALS = 200 };
    uint64_t seed = 777;
    int vals[N];
    for (int trial = 0; trial < TRIALS; trial++) {
        uint64_t ids[N];
        for (int i = 0; i < N; i++) {
            ids[i] = test_rand(&seed); // distinct and non-zero (see s_rand)
        }
        for (int victim = 0; victim < N; victim++) {
            ga_idmap_t *m = ga_idmap_new();
            for (int i = 0; i < N; i++) {
                ga_idmap_put(m, ids[i], &vals[i]);
            }
            assert_ptr_equal(ga_idmap_take(m, ids[victim]), &vals[victim]);
            assert_int_equal(ga_idmap_size(m), N - 1);
            for (int i = 0; i < N; i++) {
                void *want = i == victim ? NULL : (void *) &vals[i];
                if (ga_idmap_get(m, ids[i]) != want) {
                    fail_msg("trial %d: after taking %d, entry %d is wrong", trial, victim, i);
                }
            }
            ga_idmap_destroy(&m);
        }
    }
}

static void
test_idmap_deleting_in_insertion_order_and_reverse_keeps_the_rest(void **state)
{
    ga_idmap_t *m = *state;
    enum { N = 1000 };
    static int vals[N];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            ga_idmap_put(m, (uint64_t) i * 64 + 1, &vals[i]);
        }
        for (int k = 0; k < N; k++) {
            int i = pass == 0 ? k : N - 1 - k;
            assert_ptr_equal(ga_idmap_take(m, (uint64_t) i * 64 + 1), &vals[i]);
            if (k % 97 == 0) {
                for (int r = 0; r < N; r++) {
                    bool gone = pass == 0 ? r <= i : r >= i;
                    void *want = gone ? NULL : (void *) &vals[r];
                    assert_ptr_equal(ga_idmap_get(m, (uint64_t) r * 64 + 1), want);
                }
            }
        }
        assert_int_equal(ga_idmap_size(m), 0);
    }
}

typedef struct {
    const oracle_t *o; // expected entries
    int visits[N_IDS]; // visits per oracle index
    size_t total;      // calls
} visit_t;

static void
s_visit(uint64_t id, void *value, void *arg)
{
    visit_t *v = arg;
    v->total++;
    // Values point into o->vals, so the index is recoverable from the pointer.
    ptrdiff_t i = (const int *) value - v->o->vals;
    assert_true(i >= 0 && i < N_IDS);
    assert_int_equal(v->o->ids[i], id);
    v->visits[i]++;
}

static void
test_idmap_each_visits_every_entry_once(void **state)
{
    ga_idmap_t *m = *state;
    static oracle_t o;
    static visit_t v;
    memset(&o, 0, sizeof o);
    memset(&v, 0, sizeof v);
    for (size_t i = 0; i < N_IDS; i++) {
        o.ids[i] = i * 3 + 1;
        ga_idmap_put(m, o.ids[i], &o.vals[i]);
        o.live[i] = true;
    }
    o.n_live = N_IDS;
    for (size_t i = 0; i < N_IDS; i += 3) {
        assert_non_null(ga_idmap_take(m, o.ids[i]));
        o.live[i] = false;
        o.n_live--;
    }
    v.o = &o;
    ga_idmap_each(m, s_visit, &v);
    assert_int_equal(v.total, o.n_live);
    for (size_t i = 0; i < N_IDS; i++) {
        assert_int_equal(v.visits[i], o.live[i] ? 1 : 0);
    }
}

static void
s_count(uint64_t id, void *value, void *arg)
{
    (void) id;
    (void) value;
    (*(size_t *) arg)++;
}

static void
test_idmap_each_on_empty_map_calls_nothing(void **state)
{
    ga_idmap_t *m = *state;
    size_t n = 0;
    ga_idmap_each(m, s_count, &n);
    assert_int_equal(n, 0);
    int x = 0;
    ga_idmap_put(m, 5, &x);
    assert_ptr_equal(ga_idmap_take(m, 5), &x);
    ga_idmap_each(m, s_count, &n);
    assert_int_equal(n, 0);
}

static void
test_idmap_destroy_of_null_is_harmless(void **state)
{
    (void) state;
    ga_idmap_t *m = NULL;
    ga_idmap_destroy(&m);
    ga_idmap_destroy(NULL);
    assert_null(m);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_idmap_empty_map_finds_nothing),
        T(test_idmap_put_get_take_one_entry),
        T(test_idmap_put_of_existing_id_replaces_the_value),
        T(test_idmap_put_new_inserts_once_and_keeps_the_first_value),
        T(test_idmap_put_new_matches_oracle_across_growth),
        T(test_idmap_id_zero_is_never_found),
        T(test_idmap_extreme_ids_are_ordinary_keys),
        T(test_idmap_sequential_ids_with_random_deletions_match_oracle),
        T(test_idmap_random_ids_with_random_deletions_match_oracle),
        cmocka_unit_test(test_idmap_any_single_deletion_keeps_all_other_entries_findable),
        T(test_idmap_deleting_in_insertion_order_and_reverse_keeps_the_rest),
        T(test_idmap_each_visits_every_entry_once),
        T(test_idmap_each_on_empty_map_calls_nothing),
        cmocka_unit_test(test_idmap_destroy_of_null_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
