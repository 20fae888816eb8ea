// SPDX-License-Identifier: MIT
// The sliding-window limiter, driven with an injected time: the N+1th request refused with the
// exact retry-after, the window sliding at the boundary, refused requests not counted, global
// and per-function limits, keys from identity and arguments, reset, status, idle windows
// reclaimed, the max_keys cap and an injected fault under fail_open both ways, config errors.
#include "ga_ratelimit.h"

#include "ga_json.h"
#include "ga_metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    ga_ratelimit_t *rl; // under test
    ga_arena_t *a;      // for configs and views
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *f = test_calloc(1, sizeof *f);
    f->rl = ga_ratelimit_new();
    f->a = ga_arena_new(4096);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    ga_ratelimit_destroy(&f->rl);
    assert_null(f->rl);
    ga_ratelimit_destroy(&f->rl); // twice is safe
    ga_arena_destroy(&f->a);
    test_free(f);
    return 0;
}

static ga_value_t
s_json(fixture_t *f, const char *text)
{
    ga_value_t v;
    assert_int_equal(ga_json_decode(text, strlen(text), f->a, &v, NULL, 0), GA_OK);
    return v;
}

static void
s_configure(fixture_t *f, const char *text)
{
    ga_value_t v = s_json(f, text);
    char why[256] = "";
    ga_err_t rc = ga_ratelimit_configure(f->rl, &v, "rate_limits", why, sizeof why);
    if (rc != GA_OK) {
        fail_msg("configure: %s", why);
    }
}

static ga_rl_verdict_t
s_check(fixture_t *f, const char *svc, const char *fn, const char *user, int64_t now,
        int64_t *retry)
{
    ga_rl_subject_t who = {.user_id = user, .device_id = "dev1", .ip_address = "10.0.0.1"};
    int64_t dummy;
    return ga_ratelimit_check(f->rl, svc, fn, &who, now, retry ? retry : &dummy);
}

static void
test_ratelimit_disabled_allows_everything_and_counts_nothing(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":false,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":1,\"window_ms\":1000}]}");
    for (int i = 0; i < 10; i++) {
        assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    }
    assert_int_equal(ga_ratelimit_stats(f->rl).keys, 0);
    assert_int_equal(ga_ratelimit_stats(f->rl).checks, 0);
}

static void
test_ratelimit_refuses_the_n_plus_first_with_exact_retry_after(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":3,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 100, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 200, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 300, NULL), GA_RL_ALLOW);
    int64_t retry = 0;
    assert_int_equal(s_check(f, "s", "f", "u1", 400, &retry), GA_RL_LIMITED);
    assert_int_equal(retry, 700); // the oldest (100) leaves at 1100
    // Another user has a window of its own.
    assert_int_equal(s_check(f, "s", "f", "u2", 400, NULL), GA_RL_ALLOW);
    assert_int_equal(ga_ratelimit_stats(f->rl).refused, 1);
}

static void
test_ratelimit_window_slides_exactly_at_the_boundary(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":2,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 600, NULL), GA_RL_ALLOW);
    int64_t retry = 0;
    assert_int_equal(s_check(f, "s", "f", "u1", 999, &retry), GA_RL_LIMITED);
    assert_int_equal(retry, 1);
    // At 1000 the request of 0 has left: one slot free, not two (no fixed-window reset).
    assert_int_equal(s_check(f, "s", "f", "u1", 1000, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 1000, &retry), GA_RL_LIMITED);
    assert_int_equal(retry, 600); // 600 leaves at 1600
    assert_int_equal(s_check(f, "s", "f", "u1", 1599, NULL), GA_RL_LIMITED);
    assert_int_equal(s_check(f, "s", "f", "u1", 1600, NULL), GA_RL_ALLOW);
}

static void
test_ratelimit_refused_requests_do_not_count(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":2,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 500, NULL), GA_RL_ALLOW);
    for (int64_t t = 600; t < 1000; t += 50) {
        assert_int_equal(s_check(f, "s", "f", "u1", t, NULL), GA_RL_LIMITED);
    }
    // Had the refusals counted, the window would still be full at 1000 and at 1500.
    assert_int_equal(s_check(f, "s", "f", "u1", 1000, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 1500, NULL), GA_RL_ALLOW);
    assert_int_equal(ga_ratelimit_stats(f->rl).refused, 8);
}

static void
test_ratelimit_api_limits_apply_to_their_function_only_and_all_limits_must_pass(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,"
                   "\"global_limits\":[{\"key\":\"user_id\",\"max_requests\":5,\"window_ms\":1000}],"
                   "\"api_limits\":[{\"service\":\"report_service\",\"request_type\":"
                   "\"generate_report\",\"key\":\"user_id\",\"max_requests\":2,"
                   "\"window_ms\":60000}]}");
    assert_int_equal(s_check(f, "report_service", "generate_report", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "report_service", "generate_report", "u1", 1, NULL), GA_RL_ALLOW);
    int64_t retry = 0;
    assert_int_equal(s_check(f, "report_service", "generate_report", "u1", 2, &retry),
                     GA_RL_LIMITED);
    assert_int_equal(retry, 59998);
    // Other functions still pass (the refused report request did not count globally either).
    assert_int_equal(s_check(f, "user_service", "get_user", "u1", 3, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "user_service", "get_user", "u1", 4, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "user_service", "get_user", "u1", 5, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "user_service", "get_user", "u1", 6, &retry), GA_RL_LIMITED);
    assert_int_equal(retry, 994); // the global window: the request at 0 leaves at 1000
    // When two limits refuse, the later of the two says when to retry.
    assert_int_equal(s_check(f, "report_service", "generate_report", "u1", 7, &retry),
                     GA_RL_LIMITED);
    assert_int_equal(retry, 59993);
}

static void
test_ratelimit_keys_from_identity_and_arguments_absent_keys_do_not_apply(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":["
                   "{\"key\":\"device_id\",\"max_requests\":1,\"window_ms\":1000},"
                   "{\"key\":\"account\",\"max_requests\":1,\"window_ms\":1000}]}");
    ga_value_t args1 = s_json(f, "{\"account\":42}");
    ga_value_t args2 = s_json(f, "{\"account\":\"42\"}");
    ga_value_t args3 = s_json(f, "{\"account\":43}");
    int64_t retry;
    ga_rl_subject_t a = {.user_id = "u1", .device_id = "d1", .args = &args1};
    ga_rl_subject_t b = {.user_id = "u1", .device_id = "d2", .args = &args2};
    ga_rl_subject_t c = {.user_id = "u1", .device_id = "d3", .args = &args3};
    ga_rl_subject_t none = {.user_id = "u1"};
    assert_int_equal(ga_ratelimit_check(f->rl, "s", "f", &a, 0, &retry), GA_RL_ALLOW);
    // The same account (the number 42 and the string "42" key alike), another device: refused.
    assert_int_equal(ga_ratelimit_check(f->rl, "s", "f", &b, 0, &retry), GA_RL_LIMITED);
    assert_int_equal(ga_ratelimit_check(f->rl, "s", "f", &c, 0, &retry), GA_RL_ALLOW);
    // No device id, no account argument: neither limit applies.
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ga_ratelimit_check(f->rl, "s", "f", &none, 0, &retry), GA_RL_ALLOW);
    }
}

static void
test_ratelimit_reset_clears_a_key_and_status_reports_each_limit(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,"
                   "\"global_limits\":[{\"key\":\"user_id\",\"max_requests\":3,\"window_ms\":1000},"
                   "{\"key\":\"device_id\",\"max_requests\":10,\"window_ms\":1000}],"
                   "\"api_limits\":[{\"service\":\"s\",\"request_type\":\"f\",\"key\":\"user_id\","
                   "\"max_requests\":2,\"window_ms\":5000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 10, NULL), GA_RL_ALLOW);
    ga_value_t st = ga_ratelimit_status(f->rl, "u1", "user_id", "s", "f", 20, f->a);
    assert_int_equal(st.type, GA_ARRAY);
    assert_int_equal(st.len, 2); // the global user_id limit and the function's
    for (uint32_t i = 0; i < st.len; i++) {
        const ga_value_t *e = &st.u.items[i];
        bool api = strcmp(ga_map_get_str(e, "scope"), "api") == 0;
        assert_int_equal(ga_map_get_int(e, "current", -1), 2);
        assert_int_equal(ga_map_get_int(e, "max", -1), api ? 2 : 3);
        assert_int_equal(ga_map_get_int(e, "remaining", -1), api ? 0 : 1);
        assert_int_equal(ga_map_get_int(e, "window_ms", -1), api ? 5000 : 1000);
        assert_int_equal(ga_map_get_int(e, "retry_after_ms", -1), api ? 4980 : 0);
    }
    // Without a function or a key: every limit.
    st = ga_ratelimit_status(f->rl, "u1", NULL, NULL, NULL, 20, f->a);
    assert_int_equal(st.len, 3);
    assert_int_equal(s_check(f, "s", "f", "u1", 30, NULL), GA_RL_LIMITED);
    // Reset u1 for the limits that apply to s.f on user_id: the global one and the function's.
    assert_int_equal(ga_ratelimit_reset(f->rl, "u1", "user_id", "s", "f"), 2);
    assert_int_equal(s_check(f, "s", "f", "u1", 40, NULL), GA_RL_ALLOW);
    st = ga_ratelimit_status(f->rl, "u1", "user_id", NULL, NULL, 50, f->a);
    assert_int_equal(st.len, 2);
    assert_int_equal(ga_map_get_int(&st.u.items[0], "current", -1), 1);
    assert_int_equal(ga_ratelimit_reset(f->rl, "nobody", NULL, NULL, NULL), 0);
}

static void
test_ratelimit_idle_windows_are_reclaimed_by_the_incremental_sweep(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":5,\"window_ms\":1000}]}");
    char user[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(user, sizeof user, "user-%d", i);
        assert_int_equal(s_check(f, "s", "f", user, 0, NULL), GA_RL_ALLOW);
    }
    assert_int_equal(ga_ratelimit_stats(f->rl).keys, 1000);
    // Still inside the window: the sweep frees nothing.
    assert_int_equal(ga_ratelimit_sweep(f->rl, 999, 1u << 20), 0);
    // Past it: a few slots per check, until every idle window is gone (one key stays busy).
    for (int i = 0; i < 2000 && ga_ratelimit_stats(f->rl).keys > 1; i++) {
        assert_int_equal(s_check(f, "s", "f", "busy", 1000 + i, NULL) != GA_RL_FAILED, true);
    }
    assert_int_equal(ga_ratelimit_stats(f->rl).keys, 1);
    assert_int_equal(ga_ratelimit_stats(f->rl).reclaimed, 1000);
}

static void
test_ratelimit_key_cap_fails_open_or_closed(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"max_keys\":2,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":1,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u2", 0, NULL), GA_RL_ALLOW);
    // fail_open (the default): a third key cannot be tracked, so it is let through, uncounted.
    assert_int_equal(s_check(f, "s", "f", "u3", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u3", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(ga_ratelimit_stats(f->rl).failures, 2);
    // Known keys are still limited.
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_LIMITED);
    s_configure(f, "{\"enabled\":true,\"fail_open\":false,\"max_keys\":2,\"global_limits\":"
                   "[{\"key\":\"user_id\",\"max_requests\":1,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u3", 0, NULL), GA_RL_FAILED);
    // Unchanged limit: its windows were kept (u1 still limited).
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_LIMITED);
    // Once the windows have expired, the incremental sweep makes room again within one pass
    // over the hash table (64 slots here, a few per check).
    ga_rl_verdict_t v = GA_RL_FAILED;
    for (int i = 0; i < 64 && v == GA_RL_FAILED; i++) {
        v = s_check(f, "s", "f", "u3", 1000 + i, NULL);
    }
    assert_int_equal(v, GA_RL_ALLOW);
}

static void
test_ratelimit_injected_fault_follows_fail_open(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":1,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    ga_ratelimit_inject_fault(f->rl, true);
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW); // fail_open
    s_configure(f, "{\"enabled\":true,\"fail_open\":false,\"global_limits\":[{\"key\":"
                   "\"user_id\",\"max_requests\":1,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u9", 0, NULL), GA_RL_FAILED);
    assert_int_equal(ga_ratelimit_stats(f->rl).failures, 2);
    ga_ratelimit_inject_fault(f->rl, false);
    assert_int_equal(s_check(f, "s", "f", "u9", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_LIMITED);
}

static void
test_ratelimit_put_replace_remove_at_runtime(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true}");
    char why[256];
    ga_value_t lim = s_json(f, "{\"key\":\"ip_address\",\"max_requests\":1,\"window_ms\":1000}");
    assert_int_equal(ga_ratelimit_put(f->rl, &lim, why, sizeof why), GA_OK);
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u2", 0, NULL), GA_RL_LIMITED); // same address
    lim = s_json(f, "{\"key\":\"ip_address\",\"max_requests\":3,\"window_ms\":1000}");
    assert_int_equal(ga_ratelimit_put(f->rl, &lim, why, sizeof why), GA_OK); // replaced
    ga_value_t cfg = ga_ratelimit_config(f->rl, f->a);
    const ga_value_t *global = ga_map_get(&cfg, "global_limits");
    assert_int_equal(global->len, 1);
    assert_int_equal(ga_map_get_int(&global->u.items[0], "max_requests", 0), 3);
    assert_int_equal(s_check(f, "s", "f", "u2", 0, NULL), GA_RL_ALLOW);
    lim = s_json(f, "{\"key\":\"ip_address\"}");
    assert_int_equal(ga_ratelimit_remove(f->rl, &lim, why, sizeof why), GA_OK);
    assert_int_equal(ga_ratelimit_remove(f->rl, &lim, why, sizeof why), GA_ENOTFOUND);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s_check(f, "s", "f", "u2", 0, NULL), GA_RL_ALLOW);
    }
    lim = s_json(f, "{\"key\":\"user_id\",\"max_requests\":0,\"window_ms\":1000}");
    assert_int_equal(ga_ratelimit_put(f->rl, &lim, why, sizeof why), GA_ECONFIG);
    assert_non_null(strstr(why, "max_requests"));
}

static void
test_ratelimit_malformed_config_is_refused_naming_the_field(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *json;  // config
        const char *field; // expected in the reason
    } cases[] = {
        {"[]", "rate_limits: must be an object"},
        {"{\"enabled\":\"yes\"}", "rate_limits.enabled"},
        {"{\"fail_open\":1}", "rate_limits.fail_open"},
        {"{\"max_keys\":0}", "rate_limits.max_keys"},
        {"{\"scope\":\"world\"}", "rate_limits.scope"},
        {"{\"limits\":[]}", "rate_limits.limits: unknown field"},
        {"{\"global_limits\":{}}", "rate_limits.global_limits: must be an array"},
        {"{\"global_limits\":[{\"key\":\"user_id\",\"window_ms\":10}]}",
         "rate_limits.global_limits[0].max_requests"},
        {"{\"global_limits\":[{\"key\":\"user_id\",\"max_requests\":1,\"window_ms\":0}]}",
         "rate_limits.global_limits[0].window_ms"},
        {"{\"global_limits\":[{\"key\":\"\",\"max_requests\":1,\"window_ms\":1}]}",
         "rate_limits.global_limits[0].key"},
        {"{\"global_limits\":[{\"key\":\"user_id\",\"max_requests\":1,\"window_ms\":1,"
         "\"service\":\"s\"}]}",
         "rate_limits.global_limits[0].service: unknown field"},
        {"{\"api_limits\":[{\"key\":\"user_id\",\"max_requests\":1,\"window_ms\":1}]}",
         "rate_limits.api_limits[0].service"},
        {"{\"api_limits\":[{\"service\":\"s\",\"key\":\"user_id\",\"max_requests\":1,"
         "\"window_ms\":1}]}",
         "rate_limits.api_limits[0].request_type"},
        {"{\"global_limits\":[{\"key\":\"user_id\",\"max_requests\":1,\"window_ms\":1},"
         "{\"key\":\"user_id\",\"max_requests\":2,\"window_ms\":1}]}",
         "rate_limits.global_limits[1]: a second limit"},
    };
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":1,\"window_ms\":1000}]}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ga_value_t v = s_json(f, cases[i].json);
        char why[256] = "";
        assert_int_equal(ga_ratelimit_configure(f->rl, &v, "rate_limits", why, sizeof why),
                         GA_ECONFIG);
        if (strstr(why, cases[i].field) == NULL) {
            fail_msg("case %zu: \"%s\" does not name \"%s\"", i, why, cases[i].field);
        }
    }
    // Nothing changed: the limit still holds.
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_LIMITED);
}

static void
test_ratelimit_large_window_rings_grow_up_to_the_limit_only(void **state)
{
    fixture_t *f = *state;
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":1000,\"window_ms\":60000}]}");
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(s_check(f, "s", "f", "u1", i, NULL), GA_RL_ALLOW);
    }
    int64_t retry = 0;
    assert_int_equal(s_check(f, "s", "f", "u1", 1000, &retry), GA_RL_LIMITED);
    assert_int_equal(retry, 59000);
    // Sliding: one leaves each millisecond from 60000 on.
    assert_int_equal(s_check(f, "s", "f", "u1", 60000, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 60000, NULL), GA_RL_LIMITED);
    assert_int_equal(s_check(f, "s", "f", "u1", 60001, NULL), GA_RL_ALLOW);
}

// The reference model of one window for the randomized test: accepted timestamps, oldest first.
typedef struct {
    int64_t ts[64]; // at most the limit's max_requests
    int n;          // entries
} model_window_t;

static void
s_model_expire(model_window_t *m, int64_t window_ms, int64_t now)
{
    int drop = 0;
    while (drop < m->n && m->ts[drop] + window_ms <= now) {
        drop++;
    }
    memmove(m->ts, m->ts + drop, (size_t) (m->n - drop) * sizeof m->ts[0]);
    m->n -= drop;
}

static void
test_ratelimit_many_keys_match_a_reference_model(void **state)
{
    // Thousands of keys (the table grows many times), values short and long (inline and
    // allocated, up to the 1024-byte cap), windows freed by the sweep and by reset while others
    // live around them: every verdict and retry-after must be what an exact sliding window
    // gives, so no window may be lost or mixed up when entries move.
    fixture_t *f = *state;
    enum { USERS = 3000, DEVICES = 40, OPS = 60000 };
    s_configure(f, "{\"enabled\":true,\"global_limits\":["
                   "{\"key\":\"user_id\",\"max_requests\":2,\"window_ms\":2000},"
                   "{\"key\":\"device_id\",\"max_requests\":8,\"window_ms\":400}]}");
    static model_window_t users[USERS], devices[DEVICES];
    static char names[USERS][1025];
    char device_names[DEVICES][16];
    memset(users, 0, sizeof users);
    memset(devices, 0, sizeof devices);
    uint64_t x = 0x9e3779b97f4a7c15ull;
#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    for (int u = 0; u < USERS; u++) {
        // Lengths 1..40, and every 97th exactly the cap: distinct in their first bytes.
        size_t len = u % 97 == 0 ? 1024 : 1 + (size_t) (NEXT() % 40);
        int head = snprintf(names[u], sizeof names[u], "%d-", u);
        memset(names[u] + head, 'a' + u % 26, len > (size_t) head ? len - (size_t) head : 0);
        names[u][len > (size_t) head ? len : (size_t) head] = '\0';
    }
    for (int d = 0; d < DEVICES; d++) {
        snprintf(device_names[d], sizeof device_names[d], "device-%d", d);
    }
    int64_t now = 0;
    int refused = 0;
    for (int op = 0; op < OPS; op++) {
        now += (int64_t) (NEXT() % 3);
        int u = (int) (NEXT() % USERS);
        int d = u % DEVICES;
        if (NEXT() % 100 == 0) {
            assert_true(ga_ratelimit_reset(f->rl, names[u], "user_id", NULL, NULL) <= 1);
            users[u].n = 0;
            continue;
        }
        ga_rl_subject_t who = {.user_id = names[u], .device_id = device_names[d]};
        int64_t retry = -1;
        ga_rl_verdict_t v = ga_ratelimit_check(f->rl, "s", "f", &who, now, &retry);
        s_model_expire(&users[u], 2000, now);
        s_model_expire(&devices[d], 400, now);
        int64_t want_retry = 0;
        if (users[u].n >= 2) {
            want_retry = users[u].ts[0] + 2000 - now;
        }
        if (devices[d].n >= 8 && devices[d].ts[0] + 400 - now > want_retry) {
            want_retry = devices[d].ts[0] + 400 - now;
        }
        bool want_limited = users[u].n >= 2 || devices[d].n >= 8;
        refused += want_limited;
        assert_int_equal(v, want_limited ? GA_RL_LIMITED : GA_RL_ALLOW);
        assert_int_equal(retry, want_retry);
        if (!want_limited) {
            users[u].ts[users[u].n++] = now;
            devices[d].ts[devices[d].n++] = now;
        }
        if (op % 1000 == 0) {
            ga_arena_reset(f->a);
            ga_value_t st = ga_ratelimit_status(f->rl, names[u], "user_id", NULL, NULL, now, f->a);
            assert_int_equal(st.len, 1);
            assert_int_equal(ga_map_get_int(&st.u.items[0], "current", -1), users[u].n);
        }
    }
#undef NEXT
    assert_true(ga_ratelimit_stats(f->rl).keys > 1000);
    assert_true(refused > 100 && refused < OPS / 2); // both outcomes were exercised
    // Past every window: a full sweep frees every window.
    size_t live = ga_ratelimit_stats(f->rl).keys;
    assert_int_equal(ga_ratelimit_sweep(f->rl, now + 2000, 1u << 20), live);
    assert_int_equal(ga_ratelimit_stats(f->rl).keys, 0);
}

static void
test_ratelimit_metrics_count_checks_per_scope_across_a_scope_change(void **state)
{
    // The metrics keep the checks series of the last scope seen: a change of scope must start
    // counting in the other series, and the events counter must count every check.
    fixture_t *f = *state;
    ga_metrics_t *m = ga_metrics_new();
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":9,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    s_configure(f, "{\"enabled\":true,\"scope\":\"cluster\",\"global_limits\":[{\"key\":"
                   "\"user_id\",\"max_requests\":9,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    s_configure(f, "{\"enabled\":true,\"global_limits\":[{\"key\":\"user_id\","
                   "\"max_requests\":9,\"window_ms\":1000}]}");
    assert_int_equal(s_check(f, "s", "f", "u1", 0, NULL), GA_RL_ALLOW);
    ga_buf_t out;
    ga_buf_init(&out);
    ga_metrics_render(m, &out);
    ga_buf_append_char(&out, '\0');
    const char *text = (const char *) out.data;
    assert_non_null(strstr(text, "genapi_rate_limit_checks_total{scope=\"gateway\"} 3\n"));
    assert_non_null(strstr(text, "genapi_rate_limit_checks_total{scope=\"cluster\"} 1\n"));
    assert_non_null(strstr(text, "{event=\"genapi.rate_limiter.check\"} 4\n"));
    ga_buf_fini(&out);
    ga_metrics_destroy(&m);
}

static void
test_ratelimit_key_cap_sweep_spares_the_windows_of_the_check_in_progress(void **state)
{
    // At max_keys, a check that finds one window (idle by now, not yet swept) and must create
    // another sweeps for room: the window it has just found must not be the one freed. Where
    // windows sit in the table depends on their hash, so many key pairs are tried, each in a
    // fresh limiter; every pair must end counted in both windows or fail open uncounted.
    fixture_t *f = *state;
    int counted = 0;
    for (int k = 0; k < 200; k++) {
        ga_ratelimit_destroy(&f->rl);
        f->rl = ga_ratelimit_new();
        s_configure(f, "{\"enabled\":true,\"max_keys\":2,\"global_limits\":["
                       "{\"key\":\"user_id\",\"max_requests\":5,\"window_ms\":1000},"
                       "{\"key\":\"device_id\",\"max_requests\":5,\"window_ms\":1000}]}");
        char user[16], dev1[16], dev2[16];
        snprintf(user, sizeof user, "u%d", k);
        snprintf(dev1, sizeof dev1, "d%d", k);
        snprintf(dev2, sizeof dev2, "e%d", k);
        int64_t retry = 0;
        ga_rl_subject_t first = {.user_id = user, .device_id = dev1};
        assert_int_equal(ga_ratelimit_check(f->rl, "s", "f", &first, 0, &retry), GA_RL_ALLOW);
        ga_rl_subject_t again = {.user_id = user, .device_id = dev2};
        assert_int_equal(ga_ratelimit_check(f->rl, "s", "f", &again, 2000, &retry), GA_RL_ALLOW);
        if (ga_ratelimit_stats(f->rl).failures > 0) {
            continue; // no room found this time: allowed uncounted (fail_open)
        }
        ga_arena_reset(f->a);
        ga_value_t st = ga_ratelimit_status(f->rl, user, "user_id", NULL, NULL, 2000, f->a);
        assert_int_equal(ga_map_get_int(&st.u.items[0], "current", -1), 1);
        st = ga_ratelimit_status(f->rl, dev2, "device_id", NULL, NULL, 2000, f->a);
        assert_int_equal(ga_map_get_int(&st.u.items[0], "current", -1), 1);
        counted++;
    }
    assert_true(counted > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        T(test_ratelimit_disabled_allows_everything_and_counts_nothing),
        T(test_ratelimit_refuses_the_n_plus_first_with_exact_retry_after),
        T(test_ratelimit_window_slides_exactly_at_the_boundary),
        T(test_ratelimit_refused_requests_do_not_count),
        T(test_ratelimit_api_limits_apply_to_their_function_only_and_all_limits_must_pass),
        T(test_ratelimit_keys_from_identity_and_arguments_absent_keys_do_not_apply),
        T(test_ratelimit_reset_clears_a_key_and_status_reports_each_limit),
        T(test_ratelimit_idle_windows_are_reclaimed_by_the_incremental_sweep),
        T(test_ratelimit_key_cap_fails_open_or_closed),
        T(test_ratelimit_key_cap_sweep_spares_the_windows_of_the_check_in_progress),
        T(test_ratelimit_injected_fault_follows_fail_open),
        T(test_ratelimit_put_replace_remove_at_runtime),
        T(test_ratelimit_malformed_config_is_refused_naming_the_field),
        T(test_ratelimit_large_window_rings_grow_up_to_the_limit_only),
        T(test_ratelimit_many_keys_match_a_reference_model),
        T(test_ratelimit_metrics_count_checks_per_scope_across_a_scope_change),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
