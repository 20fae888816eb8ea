// SPDX-License-Identifier: MIT
// The in-flight table: lookups and removals, owner indexes (remove-by-owner touches only what
// the owner holds, moving a record between owners), deadlines (due in order, moved later
// lazily, moved earlier at once, answered records never expire), and a randomized run against
// a plain-array oracle.
#include "ga_inflight.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_rand.h"

typedef struct {
    ga_inflight_rec_t rec; // first member: the table links it
    int tag;               // test payload
} call_t;

static int
s_setup(void **state)
{
    *state = ga_inflight_new();
    return 0;
}

static int
s_teardown(void **state)
{
    ga_inflight_t *t = *state;
    ga_inflight_destroy(&t);
    assert_null(t);
    return 0;
}

static void
test_inflight_adds_gets_and_takes_by_id(void **state)
{
    ga_inflight_t *t = *state;
    call_t a = {.tag = 1}, b = {.tag = 2};
    ga_inflight_add(t, &a.rec, 10, GA_INFLIGHT_NONE, NULL);
    ga_inflight_add(t, &b.rec, 11, 500, NULL);
    assert_int_equal(ga_inflight_size(t), 2);
    assert_ptr_equal(ga_inflight_get(t, 10), &a.rec);
    assert_ptr_equal(ga_inflight_get(t, 11), &b.rec);
    assert_null(ga_inflight_get(t, 12));
    assert_ptr_equal(ga_inflight_take(t, 10), &a.rec);
    assert_null(ga_inflight_take(t, 10));
    assert_int_equal(ga_inflight_size(t), 1);
    // Re-added under a new id (a retry's next attempt).
    ga_inflight_add(t, &a.rec, 12, GA_INFLIGHT_NONE, NULL);
    assert_ptr_equal(ga_inflight_get(t, 12), &a.rec);
    assert_ptr_equal(ga_inflight_first(t), &a.rec);
    assert_ptr_equal(a.rec.all_next, &b.rec);
}

static void
test_inflight_removes_by_owner_only_what_the_owner_holds(void **state)
{
    ga_inflight_t *t = *state;
    call_t c[6];
    memset(c, 0, sizeof c);
    // Index 0: gateway 1 holds 0..3, gateway 2 holds 4..5. Index 1: worker 7 holds 1 and 4.
    for (int i = 0; i < 6; i++) {
        uint64_t owners[GA_INFLIGHT_OWNERS] = {i < 4 ? 1 : 2, i == 1 || i == 4 ? 7 : 0};
        ga_inflight_add(t, &c[i].rec, 100 + (uint64_t) i, GA_INFLIGHT_NONE, owners);
    }
    assert_int_equal(ga_inflight_owned_count(t, 0, 1), 4);
    assert_int_equal(ga_inflight_owned_count(t, 0, 2), 2);
    assert_int_equal(ga_inflight_owned_count(t, 1, 7), 2);
    assert_int_equal(ga_inflight_owned_count(t, 1, 8), 0);
    assert_null(ga_inflight_owned(t, 1, 0)); // 0 owns nothing
    // The worker goes: its two calls, from both gateways, and nothing else.
    int taken = 0;
    ga_inflight_rec_t *r;
    while ((r = ga_inflight_take_owned(t, 1, 7)) != NULL) {
        assert_true(r == &c[1].rec || r == &c[4].rec);
        taken++;
    }
    assert_int_equal(taken, 2);
    assert_int_equal(ga_inflight_size(t), 4);
    assert_int_equal(ga_inflight_owned_count(t, 0, 1), 3); // gateway 1 lost one of its four
    assert_int_equal(ga_inflight_owned_count(t, 0, 2), 1);
    // A walk that removes as it goes (filtered, as a gateway stops one channel's streams).
    for (r = ga_inflight_owned(t, 0, 1); r;) {
        ga_inflight_rec_t *next = r->next[0];
        if (((call_t *) r)->rec.id != 102) {
            ga_inflight_remove(t, r);
        }
        r = next;
    }
    assert_int_equal(ga_inflight_owned_count(t, 0, 1), 1);
    assert_ptr_equal(ga_inflight_owned(t, 0, 1), &c[2].rec);
    // Moving a record to another owner.
    ga_inflight_set_owner(t, &c[2].rec, 0, 2);
    assert_int_equal(ga_inflight_owned_count(t, 0, 1), 0);
    assert_int_equal(ga_inflight_owned_count(t, 0, 2), 2);
    ga_inflight_set_owner(t, &c[2].rec, 1, 9);
    assert_ptr_equal(ga_inflight_owned(t, 1, 9), &c[2].rec);
    ga_inflight_set_owner(t, &c[2].rec, 1, 0);
    assert_null(ga_inflight_owned(t, 1, 9));
    while (ga_inflight_take_owned(t, 0, 2)) {
    }
    assert_int_equal(ga_inflight_size(t), 0);
    assert_null(ga_inflight_first(t));
}

// Owner heads are recycled when an owner's last record goes, and the index remembers the last
// owner it looked up: neither may make one owner see another's records.
static void
test_inflight_owner_heads_recycle_without_mixing_owners(void **state)
{
    ga_inflight_t *t = *state;
    call_t c[7];
    memset(c, 0, sizeof c);
    uint64_t o5[GA_INFLIGHT_OWNERS] = {5, 0};
    uint64_t o6[GA_INFLIGHT_OWNERS] = {6, 0};
    uint64_t o9[GA_INFLIGHT_OWNERS] = {0, 9};
    ga_inflight_add(t, &c[0].rec, 1, GA_INFLIGHT_NONE, o5);
    ga_inflight_remove(t, &c[0].rec); // owner 5 empties: its head is freed
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 0);
    assert_null(ga_inflight_owned(t, 0, 5));
    ga_inflight_add(t, &c[6].rec, 7, GA_INFLIGHT_NONE, o9); // the other index reuses that head
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 0);
    assert_null(ga_inflight_owned(t, 0, 5));
    assert_ptr_equal(ga_inflight_owned(t, 1, 9), &c[6].rec);
    ga_inflight_remove(t, &c[6].rec);
    ga_inflight_add(t, &c[1].rec, 2, GA_INFLIGHT_NONE, o6); // and this one after it
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 0);
    assert_null(ga_inflight_owned(t, 0, 5));
    assert_int_equal(ga_inflight_owned_count(t, 0, 6), 1);
    ga_inflight_add(t, &c[2].rec, 3, GA_INFLIGHT_NONE, o5); // owner 5 is back, with a new head
    ga_inflight_add(t, &c[3].rec, 4, GA_INFLIGHT_NONE, o6);
    ga_inflight_add(t, &c[4].rec, 5, GA_INFLIGHT_NONE, o5);
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 2);
    assert_int_equal(ga_inflight_owned_count(t, 0, 6), 2);
    for (ga_inflight_rec_t *r = ga_inflight_owned(t, 0, 5); r; r = r->next[0]) {
        assert_true(r == &c[2].rec || r == &c[4].rec);
    }
    for (ga_inflight_rec_t *r = ga_inflight_owned(t, 0, 6); r; r = r->next[0]) {
        assert_true(r == &c[1].rec || r == &c[3].rec);
    }
    // Owner 6 empties through a move and a take, then comes back through a move.
    ga_inflight_set_owner(t, &c[1].rec, 0, 5);
    assert_ptr_equal(ga_inflight_take(t, 4), &c[3].rec);
    assert_int_equal(ga_inflight_owned_count(t, 0, 6), 0);
    assert_null(ga_inflight_owned(t, 0, 6));
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 3);
    ga_inflight_set_owner(t, &c[4].rec, 0, 6);
    assert_ptr_equal(ga_inflight_owned(t, 0, 6), &c[4].rec);
    assert_int_equal(ga_inflight_owned_count(t, 0, 6), 1);
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 2);
    // Owner 5 goes all at once; 6 keeps its record.
    while (ga_inflight_take_owned(t, 0, 5)) {
    }
    assert_int_equal(ga_inflight_owned_count(t, 0, 5), 0);
    assert_ptr_equal(ga_inflight_owned(t, 0, 6), &c[4].rec);
    ga_inflight_add(t, &c[5].rec, 6, GA_INFLIGHT_NONE, o5);
    assert_ptr_equal(ga_inflight_owned(t, 0, 5), &c[5].rec);
    assert_int_equal(ga_inflight_size(t), 2);
}

static void
test_inflight_expires_due_records_in_deadline_order(void **state)
{
    ga_inflight_t *t = *state;
    call_t c[4];
    memset(c, 0, sizeof c);
    const int64_t deadlines[] = {300, 100, GA_INFLIGHT_NONE, 200};
    for (int i = 0; i < 4; i++) {
        ga_inflight_add(t, &c[i].rec, 1 + (uint64_t) i, deadlines[i], NULL);
    }
    assert_int_equal(ga_inflight_next_deadline(t), 100);
    assert_null(ga_inflight_expire(t, 99));
    assert_ptr_equal(ga_inflight_expire(t, 100), &c[1].rec); // due exactly at its deadline
    assert_null(ga_inflight_get(t, 2));                      // and out of the table
    assert_null(ga_inflight_expire(t, 150));
    // An answered record never expires.
    ga_inflight_remove(t, &c[3].rec);
    assert_null(ga_inflight_expire(t, 250));
    // A deadline moved later (a stream that keeps talking) is not due at the old one.
    ga_inflight_set_deadline(t, &c[0].rec, 1000);
    assert_null(ga_inflight_expire(t, 999));
    assert_ptr_equal(ga_inflight_expire(t, 1000), &c[0].rec);
    // A record without a deadline never expires; one given an earlier deadline does, at once.
    assert_null(ga_inflight_expire(t, INT64_MAX - 1));
    ga_inflight_set_deadline(t, &c[2].rec, 2000);
    assert_int_equal(ga_inflight_next_deadline(t), 2000);
    ga_inflight_set_deadline(t, &c[2].rec, 1500); // earlier: queued again
    assert_ptr_equal(ga_inflight_expire(t, 1600), &c[2].rec);
    assert_null(ga_inflight_expire(t, 5000)); // the stale 2000 entry is skipped
    assert_int_equal(ga_inflight_size(t), 0);
}

#define N_CALLS 2000
#define N_OWNERS 13

// Every owner's count and list in both indexes against the oracle.
static void
s_check_owners(const ga_inflight_t *t, const call_t *c, const bool *live,
               uint64_t (*owner)[GA_INFLIGHT_OWNERS])
{
    for (int s = 0; s < GA_INFLIGHT_OWNERS; s++) {
        for (uint64_t who = 1; who < N_OWNERS; who++) {
            size_t want = 0;
            for (size_t j = 0; j < N_CALLS; j++) {
                want += live[j] && owner[j][s] == who;
            }
            assert_int_equal(ga_inflight_owned_count(t, s, who), want);
            size_t got = 0;
            for (const ga_inflight_rec_t *r = ga_inflight_owned(t, s, who); r; r = r->next[s]) {
                size_t j = (size_t) ((const call_t *) r - c);
                assert_true(live[j] && owner[j][s] == who);
                got++;
            }
            assert_int_equal(got, want);
        }
    }
}

// Random adds, takes, owner moves, deadline moves, owner removals and expiries against an
// oracle: live[i], owner[i][slot], deadline[i].
static void
test_inflight_matches_an_oracle(void **state)
{
    ga_inflight_t *t = *state;
    static call_t c[N_CALLS];
    static bool live[N_CALLS];
    static uint64_t owner[N_CALLS][GA_INFLIGHT_OWNERS];
    static int64_t deadline[N_CALLS];
    static uint64_t ids[N_CALLS];
    memset(c, 0, sizeof c);
    memset(live, 0, sizeof live);
    uint64_t seed = 0x1234567;
    uint64_t next_id = 0;
    int64_t now = 0;
    for (int step = 0; step < 100000; step++) {
        if (step % 5000 == 0) {
            s_check_owners(t, c, live, owner);
        }
        size_t i = test_rand(&seed) % N_CALLS;
        unsigned op = (unsigned) (test_rand(&seed) % 8);
        if (!live[i]) {
            uint64_t o[GA_INFLIGHT_OWNERS];
            for (int s = 0; s < GA_INFLIGHT_OWNERS; s++) {
                o[s] = owner[i][s] = test_rand(&seed) % N_OWNERS; // 0 included: none
            }
            deadline[i] = test_rand(&seed) % 4 ? now + (int64_t) (test_rand(&seed) % 1000)
                                               : GA_INFLIGHT_NONE;
            ids[i] = ++next_id;
            ga_inflight_add(t, &c[i].rec, ids[i], deadline[i], o);
            live[i] = true;
        } else if (op == 0) {
            assert_ptr_equal(ga_inflight_take(t, ids[i]), &c[i].rec);
            live[i] = false;
        } else if (op == 1) {
            int s = (int) (test_rand(&seed) % GA_INFLIGHT_OWNERS);
            owner[i][s] = test_rand(&seed) % N_OWNERS;
            ga_inflight_set_owner(t, &c[i].rec, s, owner[i][s]);
        } else if (op == 2) {
            deadline[i] = now + (int64_t) (test_rand(&seed) % 1000);
            ga_inflight_set_deadline(t, &c[i].rec, deadline[i]);
        } else if (op == 3 && test_rand(&seed) % 50 == 0) {
            int s = (int) (test_rand(&seed) % GA_INFLIGHT_OWNERS);
            uint64_t who = 1 + test_rand(&seed) % (N_OWNERS - 1);
            size_t want = 0;
            for (size_t j = 0; j < N_CALLS; j++) {
                want += live[j] && owner[j][s] == who;
            }
            assert_int_equal(ga_inflight_owned_count(t, s, who), want);
            ga_inflight_rec_t *r;
            size_t got = 0;
            while ((r = ga_inflight_take_owned(t, s, who)) != NULL) {
                size_t j = (size_t) ((call_t *) r - c);
                assert_true(live[j] && owner[j][s] == who);
                live[j] = false;
                got++;
            }
            assert_int_equal(got, want);
        } else if (op == 4) {
            now += (int64_t) (test_rand(&seed) % 50);
            ga_inflight_rec_t *r;
            while ((r = ga_inflight_expire(t, now)) != NULL) {
                size_t j = (size_t) ((call_t *) r - c);
                assert_true(live[j]);
                assert_true(deadline[j] <= now);
                live[j] = false;
            }
            for (size_t j = 0; j < N_CALLS; j++) {
                assert_false(live[j] && deadline[j] <= now); // every due record came out
            }
        }
    }
    size_t n = 0;
    for (size_t j = 0; j < N_CALLS; j++) {
        n += live[j];
        if (live[j]) {
            assert_ptr_equal(ga_inflight_get(t, ids[j]), &c[j].rec);
        }
    }
    assert_int_equal(ga_inflight_size(t), n);
    size_t walked = 0;
    for (ga_inflight_rec_t *r = ga_inflight_first(t); r; r = r->all_next) {
        walked++;
    }
    assert_int_equal(walked, n);
    s_check_owners(t, c, live, owner);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inflight_adds_gets_and_takes_by_id, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_inflight_removes_by_owner_only_what_the_owner_holds,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inflight_owner_heads_recycle_without_mixing_owners,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inflight_expires_due_records_in_deadline_order,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inflight_matches_an_oracle, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
