// SPDX-License-Identifier: MIT
// Node selection without sockets: a registry with workers registered from REGISTER bodies, and
// each choose_node_mode: random spreads, round_robin cycles per function, hash and hash:ARG are
// stable and move only their own keys when an unrelated node joins or leaves (rendezvous),
// least_loaded avoids a busy worker, sticky survives joins, restarts and a state file, and
// expires after an idle hour (time is injected).
#include "bk_registry.h"
#include "bk_select.h"
#include "ga_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define PICKS 300
#define NOW   1000000 // an arbitrary monotonic start, ms

typedef struct {
    bk_registry_t *r;  // registry
    bk_select_t *s;    // under test
    ga_arena_t *a;     // bodies
    char dir[64];      // scratch directory for state files
} fixture_t;

static int
s_setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    f.r = bk_registry_new();
    f.s = bk_select_new();
    f.a = ga_arena_new(8192);
    snprintf(f.dir, sizeof f.dir, "/tmp/test_bk_select.XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    *state = &f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    bk_select_destroy(&f->s);
    assert_null(f->s);
    bk_registry_destroy(&f->r);
    ga_arena_destroy(&f->a);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

// Every function the tests route, in each mode.
static const char *s_configs =
    "{\"service\":\"s\",\"request_type\":\"rand\"},"
    "{\"service\":\"s\",\"request_type\":\"rr\",\"choose_node_mode\":\"round_robin\"},"
    "{\"service\":\"s\",\"request_type\":\"rr2\",\"choose_node_mode\":\"round_robin\"},"
    "{\"service\":\"s\",\"request_type\":\"hash\",\"choose_node_mode\":\"hash\"},"
    "{\"service\":\"s\",\"request_type\":\"harg\",\"choose_node_mode\":\"hash:k\","
    "\"arg_types\":{\"k\":\"string\"}},"
    "{\"service\":\"s\",\"request_type\":\"sticky\",\"choose_node_mode\":\"sticky:k\","
    "\"arg_types\":{\"k\":\"string\"}},"
    "{\"service\":\"s\",\"request_type\":\"least\",\"choose_node_mode\":\"least_loaded\"},"
    "{\"service\":\"s\",\"request_type\":\"only23\",\"choose_node_mode\":\"round_robin\","
    "\"nodes\":[\"n2\",\"n3\"]}";

// Registers worker `node` under the one-byte routing id `id`, heard from at `expiry`.
static bk_worker_t *
s_worker(fixture_t *f, uint8_t id, const char *node, int64_t expiry)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"node\":\"%s\",\"service\":\"s\",\"config_version\":\"1\",\"functions\":[%s]}",
             node, s_configs);
    ga_value_t body, failed, changed;
    char why[200] = "";
    assert_int_equal(ga_json_decode(json, strlen(json), f->a, &body, why, sizeof why), GA_OK);
    uint8_t rid[2] = {0x00, id};
    bk_worker_t *w = NULL;
    bool skipped = false; // the same config_version from a second node: offers it all the same
    assert_int_equal(bk_registry_register(f->r, rid, sizeof rid, &body, expiry, f->a, &failed,
                                          &changed, &w, &skipped, why, sizeof why),
                     GA_OK);
    assert_int_equal(failed.len, 0);
    return w;
}

static const ga_funcfg_t *
s_cfg(fixture_t *f, const char *name)
{
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "s", name, NULL);
    assert_non_null(cfg);
    return cfg;
}

static const char *
s_pick(fixture_t *f, const char *fn, const char *request_id, const char *key, int64_t now)
{
    bk_worker_t *w = bk_select_pick(f->s, f->r, s_cfg(f, fn), request_id, key, now);
    assert_non_null(w);
    return w->node;
}

static void
s_three(fixture_t *f)
{
    s_worker(f, 1, "n1", NOW);
    s_worker(f, 2, "n2", NOW);
    s_worker(f, 3, "n3", NOW);
}

static int
s_index(const char *node)
{
    assert_true(node[0] == 'n' && node[1] >= '1' && node[1] <= '9');
    return node[1] - '1';
}

static void
test_select_none_without_candidates(void **state)
{
    fixture_t *f = *state;
    s_worker(f, 1, "n1", NOW);
    const ga_funcfg_t *cfg = s_cfg(f, "only23");
    assert_null(bk_select_pick(f->s, f->r, cfg, "r", NULL, NOW));
}

static void
test_select_random_spreads(void **state)
{
    fixture_t *f = *state;
    s_three(f);
    int seen[3] = {0};
    for (int i = 0; i < PICKS; i++) {
        seen[s_index(s_pick(f, "rand", "r", NULL, NOW))]++;
    }
    for (int i = 0; i < 3; i++) {
        assert_true(seen[i] > PICKS / 10);
    }
}

static void
test_select_round_robin_cycles_per_function(void **state)
{
    fixture_t *f = *state;
    s_worker(f, 3, "n3", NOW); // registration order is not the cycle's order
    s_worker(f, 1, "n1", NOW);
    s_worker(f, 2, "n2", NOW);
    static const char *want[] = {"n1", "n2", "n3"};
    for (int i = 0; i < 9; i++) {
        assert_string_equal(s_pick(f, "rr", NULL, NULL, NOW), want[i % 3]);
        // Another function's calls do not move this one's counter, and vice versa.
        if (i % 2 == 0) {
            assert_string_equal(s_pick(f, "rr2", NULL, NULL, NOW), want[(i / 2) % 3]);
        }
    }
    // The nodes list narrows the cycle.
    assert_string_equal(s_pick(f, "only23", NULL, NULL, NOW), "n2");
    assert_string_equal(s_pick(f, "only23", NULL, NULL, NOW), "n3");
    assert_string_equal(s_pick(f, "only23", NULL, NULL, NOW), "n2");
}

static void
test_select_hash_by_request_id_is_stable_and_spreads(void **state)
{
    fixture_t *f = *state;
    s_three(f);
    int seen[3] = {0};
    for (int i = 0; i < PICKS; i++) {
        char id[32];
        snprintf(id, sizeof id, "req-%d", i);
        const char *node = s_pick(f, "hash", id, NULL, NOW);
        for (int k = 0; k < 5; k++) {
            assert_string_equal(s_pick(f, "hash", id, NULL, NOW), node);
        }
        seen[s_index(node)]++;
    }
    for (int i = 0; i < 3; i++) {
        assert_true(seen[i] > PICKS / 10);
    }
}

// Rendezvous hashing: when n4 joins, only keys that now go to n4 move; when n2 leaves, only
// n2's keys move.
static void
test_select_hash_arg_moves_only_its_own_keys(void **state)
{
    fixture_t *f = *state;
    s_three(f);
    enum { KEYS = 400 };
    static char before[KEYS][8], after[KEYS][8];
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        snprintf(before[i], sizeof before[i], "%s", s_pick(f, "harg", "any", key, NOW));
        assert_string_equal(s_pick(f, "harg", "other request id", key, NOW), before[i]);
    }
    s_worker(f, 4, "n4", NOW);
    int moved = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        snprintf(after[i], sizeof after[i], "%s", s_pick(f, "harg", "r", key, NOW));
        if (strcmp(before[i], after[i]) != 0) {
            assert_string_equal(after[i], "n4");
            moved++;
        }
    }
    // About a quarter move to the newcomer (wide bounds: this checks spread, not luck).
    assert_true(moved > KEYS / 8 && moved < KEYS / 2);
    uint8_t rid[2] = {0x00, 2};
    bk_registry_remove(f->r, bk_registry_worker(f->r, rid, sizeof rid));
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        const char *now_at = s_pick(f, "harg", "r", key, NOW);
        if (strcmp(after[i], "n2") != 0) {
            assert_string_equal(now_at, after[i]);
        } else {
            assert_string_not_equal(now_at, "n2");
        }
    }
}

static void
test_select_least_loaded_avoids_a_busy_worker(void **state)
{
    fixture_t *f = *state;
    bk_worker_t *w1 = s_worker(f, 1, "n1", NOW);
    bk_worker_t *w2 = s_worker(f, 2, "n2", NOW);
    bk_worker_t *w3 = s_worker(f, 3, "n3", NOW);
    w1->inflight = 5;
    w2->inflight = 0;
    w3->inflight = 0;
    int seen[3] = {0};
    for (int i = 0; i < PICKS; i++) {
        seen[s_index(s_pick(f, "least", NULL, NULL, NOW))]++;
    }
    assert_int_equal(seen[0], 0);
    assert_true(seen[1] > 0 && seen[2] > 0); // ties are shared
    w2->inflight = 1;
    for (int i = 0; i < 20; i++) {
        assert_string_equal(s_pick(f, "least", NULL, NULL, NOW), "n3");
    }
}

// The first use maps a key; joins, a restart of its node (new routing id) and its absence do
// not change the mapping; an idle hour forgets it.
static void
test_select_sticky_holds_then_expires(void **state)
{
    fixture_t *f = *state;
    s_worker(f, 1, "n1", NOW);
    enum { KEYS = 20 };
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        assert_string_equal(s_pick(f, "sticky", "r", key, NOW), "n1");
    }
    assert_int_equal(bk_select_sticky_count(f->s), KEYS);
    assert_true(bk_select_dirty(f->s));
    s_worker(f, 2, "n2", NOW);
    s_worker(f, 3, "n3", NOW);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        assert_string_equal(s_pick(f, "sticky", "r", key, NOW + 10), "n1");
    }
    // n1 goes away: its keys go elsewhere meanwhile, and come back when n1 does (another
    // process, another routing id, the same node name).
    uint8_t rid[2] = {0x00, 1};
    bk_registry_remove(f->r, bk_registry_worker(f->r, rid, sizeof rid));
    snprintf(key, sizeof key, "user-0");
    assert_string_not_equal(s_pick(f, "sticky", "r", key, NOW + 20), "n1");
    s_worker(f, 9, "n1", NOW + 30);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        assert_string_equal(s_pick(f, "sticky", "r", key, NOW + 40), "n1");
    }
    // A key without a value (an absent argument) is routed at random and remembered nowhere.
    assert_non_null(s_pick(f, "sticky", "r", NULL, NOW + 40));
    assert_int_equal(bk_select_sticky_count(f->s), KEYS);
    // user-0 used again half an hour later; the others idle.
    const ga_funcfg_t *cfg = s_cfg(f, "sticky");
    int64_t half = NOW + 40 + BK_STICKY_IDLE_MS / 2;
    assert_string_equal(s_pick(f, "sticky", "r", "user-0", half), "n1");
    assert_int_equal(bk_select_expire(f->s, NOW + 40 + BK_STICKY_IDLE_MS - 1), 0);
    assert_int_equal(bk_select_expire(f->s, NOW + 40 + BK_STICKY_IDLE_MS), KEYS - 1);
    assert_int_equal(bk_select_sticky_count(f->s), 1);
    assert_string_equal(bk_select_sticky_node(f->s, cfg, "user-0", half + 1), "n1");
    assert_null(bk_select_sticky_node(f->s, cfg, "user-1", half + 1));
    // Expired (the tick has not run yet): the next use maps the key afresh, among all nodes.
    assert_null(bk_select_sticky_node(f->s, cfg, "user-0", half + BK_STICKY_IDLE_MS));
    int seen[3] = {0};
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        seen[s_index(s_pick(f, "sticky", "r", key, half + BK_STICKY_IDLE_MS))]++;
    }
    assert_true(seen[1] + seen[2] > 0); // no longer all on n1
}

static void
s_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

// A saved mapping comes back in another selector (a broker restart), with its idle time (the
// time the broker was down included); bad files are refused with a reason naming the file.
static void
test_select_state_file_round_trip_and_refusals(void **state)
{
    fixture_t *f = *state;
    s_worker(f, 1, "n1", NOW);
    assert_string_equal(s_pick(f, "sticky", "r", "alice", NOW), "n1");
    assert_string_equal(s_pick(f, "sticky", "r", "bob", NOW + BK_STICKY_IDLE_MS / 2), "n1");
    s_worker(f, 2, "n2", NOW);
    s_worker(f, 3, "n3", NOW);
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/sticky.json", f->dir);
    int64_t wall = 1700000000000LL;
    int64_t at = NOW + BK_STICKY_IDLE_MS / 2;
    assert_int_equal(bk_select_save(f->s, path, at, wall, err, sizeof err), GA_OK);
    assert_false(bk_select_dirty(f->s));
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); // renamed into place

    // Back one minute later, on a new monotonic clock.
    bk_select_t *again = bk_select_new();
    assert_int_equal(bk_select_load(again, path, 50, wall + 60000, err, sizeof err), GA_OK);
    assert_int_equal(bk_select_sticky_count(again), 2);
    const ga_funcfg_t *cfg = s_cfg(f, "sticky");
    assert_string_equal(bk_select_sticky_node(again, cfg, "alice", 50), "n1");
    assert_string_equal(bk_select_sticky_node(again, cfg, "bob", 50), "n1");
    assert_string_equal(bk_select_pick(again, f->r, cfg, "r", "bob", 60)->node, "n1");
    // alice had been idle half an hour, plus the minute down: gone half an hour later.
    assert_int_equal(bk_select_expire(again, 50 + BK_STICKY_IDLE_MS / 2 - 60000), 1);
    assert_null(bk_select_sticky_node(again, cfg, "alice", 50 + BK_STICKY_IDLE_MS / 2 - 60000));
    bk_select_destroy(&again);

    // Down for over an hour: everything expired.
    again = bk_select_new();
    assert_int_equal(bk_select_load(again, path, 50, wall + BK_STICKY_IDLE_MS, err, sizeof err),
                     GA_OK);
    assert_int_equal(bk_select_sticky_count(again), 0);
    bk_select_destroy(&again);

    // Missing: an empty mapping.
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.json", f->dir);
    again = bk_select_new();
    assert_int_equal(bk_select_load(again, missing, 50, wall, err, sizeof err), GA_OK);
    // Unreadable: a directory.
    assert_int_equal(bk_select_load(again, f->dir, 50, wall, err, sizeof err), GA_EIO);
    assert_non_null(strstr(err, "state_file: cannot read"));
    // Corrupt, in several ways; nothing half-loaded stays.
    static const char *bad[] = {
        "{\"genapi_sticky\":1,\"entries\":[", // truncated
        "[]",
        "{\"genapi_sticky\":2,\"entries\":[]}",
        "{\"genapi_sticky\":1,\"entries\":[{\"key\":\"0123456789abcdef\",\"node\":\"n1\","
        "\"idle_ms\":0},{\"key\":\"xyz\",\"node\":\"n1\",\"idle_ms\":0}]}",
        "{\"genapi_sticky\":1,\"entries\":[{\"key\":\"0123456789abcdef\",\"node\":\"\","
        "\"idle_ms\":0}]}",
        "{\"genapi_sticky\":1,\"entries\":[{\"key\":\"0123456789abcdef\",\"node\":\"n1\","
        "\"idle_ms\":0},{\"key\":\"0123456789abcdef\",\"node\":\"n2\",\"idle_ms\":0}]}",
    };
    char bad_path[128];
    snprintf(bad_path, sizeof bad_path, "%s/bad.json", f->dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write(bad_path, bad[i]);
        err[0] = '\0';
        if (bk_select_load(again, bad_path, 50, wall, err, sizeof err) != GA_ECONFIG) {
            fail_msg("bad file %zu accepted", i);
        }
        assert_non_null(strstr(err, bad_path));
        assert_int_equal(bk_select_sticky_count(again), 0);
    }
    bk_select_destroy(&again);
    // A save that cannot be written leaves the old file and says why.
    char nowhere[160];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/sticky.json", f->dir);
    assert_int_equal(bk_select_save(f->s, nowhere, at, wall, err, sizeof err), GA_EIO);
    assert_non_null(strstr(err, "state_file: cannot write"));
}

// A use long after the saved one marks the mapping for saving; a use just after does not.
static void
test_select_sticky_touch_marks_dirty_at_a_bounded_rate(void **state)
{
    fixture_t *f = *state;
    s_worker(f, 1, "n1", NOW);
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/sticky.json", f->dir);
    s_pick(f, "sticky", "r", "alice", NOW);
    assert_int_equal(bk_select_save(f->s, path, NOW, 1700000000000LL, err, sizeof err), GA_OK);
    s_pick(f, "sticky", "r", "alice", NOW + 1000);
    assert_false(bk_select_dirty(f->s));
    s_pick(f, "sticky", "r", "alice", NOW + BK_STICKY_TOUCH_MS);
    assert_true(bk_select_dirty(f->s));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_select_none_without_candidates),
        T(test_select_random_spreads),
        T(test_select_round_robin_cycles_per_function),
        T(test_select_hash_by_request_id_is_stable_and_spreads),
        T(test_select_hash_arg_moves_only_its_own_keys),
        T(test_select_least_loaded_avoids_a_busy_worker),
        T(test_select_sticky_holds_then_expires),
        T(test_select_state_file_round_trip_and_refusals),
        T(test_select_sticky_touch_marks_dirty_at_a_bounded_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
