// SPDX-License-Identifier: MIT
// The request pipeline in-process: registry copy (snapshot, update), request fields, versions,
// arguments and defaults, permission modes, and broker results as exact client JSON.
#include "ga_json.h"
#include "gw_pipeline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

// The walkthrough's user_service, as its worker registers it.
static const char *s_walkthrough =
    "{\"functions\":["
    "{\"service\":\"user_service\",\"request_type\":\"list_users\",\"version\":\"1.0.0\"},"
    "{\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
    "\"arg_types\":{\"user_id\":\"string\"}}"
    "]}";

// More configs for versions, defaults, disabled functions and permissions.
static const char *s_extra =
    "{\"functions\":["
    "{\"service\":\"report_service\",\"request_type\":\"export\",\"version\":\"1.9.0\","
    "\"timeout\":9000},"
    "{\"service\":\"report_service\",\"request_type\":\"export\",\"version\":\"1.10.0\","
    "\"timeout\":7000},"
    "{\"service\":\"report_service\",\"request_type\":\"export\",\"version\":\"2.0.0\","
    "\"disabled\":true},"
    "{\"service\":\"report_service\",\"request_type\":\"legacy\",\"disabled\":true},"
    "{\"service\":\"search_service\",\"request_type\":\"search\",\"arg_types\":{"
    "\"limit\":{\"type\":\"num\",\"default_value\":20},"
    "\"query\":{\"type\":\"string\",\"allow_nil\":true}},\"arg_orders\":\"map\"},"
    "{\"service\":\"event_service\",\"request_type\":\"log\",\"response_type\":\"none\","
    "\"arg_types\":{\"msg\":\"string\"}},"
    "{\"service\":\"user_service\",\"request_type\":\"get_profile\","
    "\"check_permission\":\"any_authenticated\"},"
    "{\"service\":\"user_service\",\"request_type\":\"get_user_profile\","
    "\"arg_types\":{\"user_id\":\"string\"},\"check_permission\":\"arg:user_id\"},"
    "{\"service\":\"admin_service\",\"request_type\":\"delete_user\","
    "\"check_permission\":\"role:[admin, ops]\"},"
    "{\"service\":\"admin_service\",\"request_type\":\"custom\","
    "\"permission_callback\":\"in_process\"},"
    "{\"service\":\"admin_service\",\"request_type\":\"remote\","
    "\"arg_types\":{\"n\":\"num\"},\"permission_callback\":\"admin_service.authorize\"}"
    "]}";

#define N_WALKTHROUGH 2
#define N_EXTRA       11

typedef struct {
    gw_pipeline_config_t cfg; // settings (borrowed by the pipeline: tests may flip them)
    gw_pipeline_t *p;         // under test
    ga_arena_t *a;            // requests and bodies
    gw_call_t call;           // the last prepared call
    gw_response_t refusal;    // the last refusal
} fixture_t;

static ga_value_t
s_json(ga_arena_t *a, const char *text)
{
    ga_value_t v;
    char err[200] = "";
    if (ga_json_decode(text, strlen(text), a, &v, err, sizeof err) != GA_OK) {
        fail_msg("bad JSON in test: %s (%s)", text, err);
    }
    return v;
}

static size_t
s_apply(fixture_t *f, const char *json, bool replace)
{
    ga_value_t body = s_json(f->a, json);
    return gw_pipeline_apply(f->p, &body, replace);
}

static ga_err_t
s_allow_bob(void *arg, const gw_identity_t *who, const gw_call_t *call, char *reason, size_t len)
{
    int *calls = arg;
    (*calls)++;
    assert_string_equal(call->request_type, "custom");
    if (who->user_id && strcmp(who->user_id, "bob") == 0) {
        return GA_OK;
    }
    snprintf(reason, len, "not bob");
    return GA_EDENIED;
}

static int s_callback_calls;

static int
s_setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    s_callback_calls = 0;
    f.p = gw_pipeline_new(&f.cfg);
    f.a = ga_arena_new(8192);
    assert_int_equal(s_apply(&f, s_walkthrough, true), N_WALKTHROUGH);
    assert_int_equal(s_apply(&f, s_extra, false), N_EXTRA);
    gw_pipeline_register_permission(f.p, "in_process", s_allow_bob, &s_callback_calls);
    *state = &f;
    return 0;
}

static int
s_setup_empty(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    f.p = gw_pipeline_new(&f.cfg);
    f.a = ga_arena_new(8192);
    *state = &f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    gw_pipeline_destroy(&f->p);
    assert_null(f->p);
    ga_arena_destroy(&f->a);
    return 0;
}

// Runs prepare on `json` as `who`. Returns its result; f->call or f->refusal holds the outcome.
static ga_err_t
s_prepare_as(fixture_t *f, const gw_identity_t *who, const char *json)
{
    ga_value_t payload = s_json(f->a, json);
    memset(&f->refusal, 0, sizeof f->refusal);
    ga_err_t rc = gw_pipeline_prepare(f->p, who, &payload, f->a, &f->call, &f->refusal);
    if (rc != GA_OK) {
        assert_int_equal(f->refusal.kind, GW_KIND_ERROR);
        assert_false(f->refusal.success);
        assert_false(f->refusal.async);
        assert_false(f->refusal.has_more);
        assert_null(f->refusal.result);
        assert_non_null(f->refusal.error);
        assert_non_null(f->refusal.request_id);
    }
    return rc;
}

static ga_err_t
s_prepare(fixture_t *f, const char *json)
{
    static const gw_identity_t anon = {.ip = "127.0.0.1"};
    return s_prepare_as(f, &anon, json);
}

// Prepares `json` and returns the refusal message (failing when it was accepted).
static const char *
s_refused(fixture_t *f, const char *json)
{
    if (s_prepare(f, json) == GA_OK) {
        fail_msg("accepted: %s", json);
    }
    return f->refusal.error;
}

// Encodes a response into a NUL-terminated string in the fixture's arena.
static const char *
s_encode(fixture_t *f, const gw_response_t *r)
{
    ga_buf_t b;
    ga_buf_init(&b);
    gw_response_encode(r, &b);
    char *s = ga_arena_strndup(f->a, (const char *) b.data, b.len);
    ga_buf_fini(&b);
    return s;
}

// --- registry copy ---

static void
test_pipeline_apply_snapshot_adds_the_walkthrough_functions(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(gw_pipeline_function_count(f->p), 0);
    assert_int_equal(s_apply(f, s_walkthrough, true), 2);
    assert_int_equal(gw_pipeline_function_count(f->p), 2);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"req_1\",\"service\":\"user_service\","
                                  "\"request_type\":\"list_users\"}"),
                     GA_OK);
}

static void
test_pipeline_apply_skips_invalid_configs_and_counts_only_applied(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_apply(f,
                             "{\"functions\":[{\"service\":\"x\",\"request_type\":\"ok\"},"
                             "{\"service\":\"x\",\"request_type\":\"bad\",\"timeout\":5},"
                             "{\"bad\":1},\"not a map\"]}",
                             true),
                     1);
    assert_int_equal(gw_pipeline_function_count(f->p), 1);
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"x\","
                                     "\"request_type\":\"bad\"}"),
                        "Unknown function");
}

static void
test_pipeline_apply_without_a_function_list_applies_nothing(void **state)
{
    fixture_t *f = *state;
    size_t before = gw_pipeline_function_count(f->p);
    assert_int_equal(s_apply(f, "{\"functions\":{\"service\":\"x\"}}", false), 0);
    assert_int_equal(s_apply(f, "{}", false), 0);
    assert_int_equal(gw_pipeline_function_count(f->p), before);
}

static void
test_pipeline_second_snapshot_replaces_the_copy(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(gw_pipeline_function_count(f->p), N_WALKTHROUGH + N_EXTRA);
    assert_int_equal(
        s_apply(f, "{\"functions\":[{\"service\":\"x\",\"request_type\":\"y\"}]}", true), 1);
    assert_int_equal(gw_pipeline_function_count(f->p), 1);
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}"),
                        "Unknown function");
    assert_int_equal(
        s_prepare(f, "{\"request_id\":\"r\",\"service\":\"x\",\"request_type\":\"y\"}"), GA_OK);
}

static void
test_pipeline_update_adds_without_removing(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        s_apply(f, "{\"functions\":[{\"service\":\"x\",\"request_type\":\"z\"}]}", false), 1);
    assert_int_equal(gw_pipeline_function_count(f->p), N_WALKTHROUGH + N_EXTRA + 1);
    assert_int_equal(
        s_prepare(f, "{\"request_id\":\"r\",\"service\":\"x\",\"request_type\":\"z\"}"), GA_OK);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}"),
                     GA_OK);
}

static void
test_pipeline_update_of_same_key_replaces_that_config(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_apply(f,
                             "{\"functions\":[{\"service\":\"user_service\",\"request_type\":"
                             "\"get_user\",\"version\":\"1.0.0\",\"timeout\":9000,"
                             "\"arg_types\":{\"user_id\":\"string\",\"full\":\"boolean\"}}]}",
                             false),
                     1);
    assert_int_equal(gw_pipeline_function_count(f->p), N_WALKTHROUGH + N_EXTRA);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\","
                                  "\"full\":true}}"),
                     GA_OK);
    assert_int_equal(f->call.timeout_ms, 9000);
}

static const char *s_get_user_1 =
    "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":\"get_user\","
    "\"args\":{\"user_id\":\"1\"}}";

static void
test_pipeline_update_removals_make_a_function_unknown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_apply(f,
                             "{\"seq\":2,\"functions\":[],\"removed\":["
                             "{\"service\":\"user_service\",\"request_type\":\"get_user\","
                             "\"version\":\"1.0.0\"},"
                             "{\"service\":\"report_service\",\"request_type\":\"legacy\"},"
                             "{\"service\":\"user_service\",\"request_type\":\"never\"},"
                             "{\"request_type\":\"no service\"}, 7]}",
                             false),
                     2); // two known configs removed; the unknown and malformed ones skipped
    assert_int_equal(gw_pipeline_function_count(f->p), N_WALKTHROUGH + N_EXTRA - 2);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_ENOTFOUND);
    assert_string_equal(f->refusal.error, "Unknown function");
    assert_false(f->refusal.can_retry);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"list_users\"}"),
                     GA_OK);
}

// Calls of the function the previous call named see every registry change at once (prepare
// remembers the last function it found): a replaced config, a removal, a snapshot, another
// version asked for, and a built-in function added under the same name.
static void
test_pipeline_repeated_calls_see_registry_changes(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
        assert_int_equal(f->call.timeout_ms, GA_FUNCFG_TIMEOUT_DEFAULT);
        assert_string_equal(f->call.version, "1.0.0");
    }
    assert_int_equal(s_apply(f,
                             "{\"functions\":[{\"service\":\"user_service\",\"request_type\":"
                             "\"get_user\",\"version\":\"1.0.0\",\"timeout\":9000,"
                             "\"arg_types\":{\"user_id\":\"string\"}}]}",
                             false),
                     1);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    assert_int_equal(f->call.timeout_ms, 9000);
    // A newer version: the unversioned call takes it; asking for 1.0.0 still gets 1.0.0.
    assert_int_equal(s_apply(f,
                             "{\"functions\":[{\"service\":\"user_service\",\"request_type\":"
                             "\"get_user\",\"version\":\"1.1.0\",\"timeout\":8000,"
                             "\"arg_types\":{\"user_id\":\"string\"}}]}",
                             false),
                     1);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    assert_int_equal(f->call.timeout_ms, 8000);
    assert_string_equal(f->call.version, "1.1.0");
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\",\"version\":\"1.0.0\","
                                  "\"args\":{\"user_id\":\"1\"}}"),
                     GA_OK);
    assert_int_equal(f->call.timeout_ms, 9000);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    assert_string_equal(f->call.version, "1.1.0");
    // Removed: unknown at once.
    assert_int_equal(s_apply(f,
                             "{\"removed\":[{\"service\":\"user_service\",\"request_type\":"
                             "\"get_user\",\"version\":\"1.1.0\"},{\"service\":\"user_service\","
                             "\"request_type\":\"get_user\",\"version\":\"1.0.0\"}]}",
                             false),
                     2);
    assert_string_equal(s_refused(f, s_get_user_1), "Unknown function");
    // Back in a snapshot, then replaced by a snapshot without it.
    assert_int_equal(s_apply(f, s_walkthrough, true), N_WALKTHROUGH);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    assert_int_equal(s_apply(f, "{\"functions\":[]}", true), 0);
    assert_string_equal(s_refused(f, s_get_user_1), "Unknown function");
    // A built-in function of that name, added after a call found the broker's config, wins.
    assert_int_equal(s_apply(f, s_walkthrough, false), N_WALKTHROUGH);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    assert_int_equal(f->call.timeout_ms, GA_FUNCFG_TIMEOUT_DEFAULT);
    ga_funcfg_t *builtin = NULL;
    char why[256];
    ga_value_t cfg = s_json(f->a, "{\"service\":\"user_service\",\"request_type\":\"get_user\","
                                  "\"timeout\":1234,\"arg_types\":{\"user_id\":\"string\"}}");
    assert_int_equal(ga_funcfg_parse(&cfg, &builtin, why, sizeof why), GA_OK);
    gw_pipeline_add_builtin(f->p, &builtin);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    assert_int_equal(f->call.timeout_ms, 1234);
}

// A just-restarted broker's snapshot lacks what its workers have not registered again yet.
static void
test_pipeline_a_warming_snapshot_keeps_known_functions_temporarily_unavailable(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_apply(f,
                             "{\"seq\":0,\"warming_ms\":60000,\"functions\":["
                             "{\"service\":\"user_service\",\"request_type\":\"list_users\","
                             "\"version\":\"1.0.0\"}]}",
                             true),
                     1);
    assert_int_equal(gw_pipeline_function_count(f->p), 1);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_EUNAVAIL);
    assert_string_equal(f->refusal.error, "Service temporarily unavailable");
    assert_true(f->refusal.can_retry);
    // A `none` function's caller hears nothing, this refusal included.
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                  "\"request_type\":\"log\",\"args\":{\"msg\":\"m\"}}"),
                     GA_EUNAVAIL);
    assert_int_equal(f->call.response_type, GA_RESP_NONE);
    // Never known: unknown, window or not.
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"nope\"}"),
                        "Unknown function");
    // A second snapshot within the window keeps the copy from before the restart.
    assert_int_equal(s_apply(f, "{\"seq\":0,\"warming_ms\":60000,\"functions\":[]}", true),
                     0);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_EUNAVAIL);
    // Registered again: served as usual.
    assert_int_equal(s_apply(f, s_walkthrough, false), N_WALKTHROUGH);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_OK);
    // Removed by the broker: unknown at once, window or not.
    assert_int_equal(s_apply(f,
                             "{\"seq\":2,\"removed\":[{\"service\":\"user_service\","
                             "\"request_type\":\"get_user\",\"version\":\"1.0.0\"}]}",
                             false),
                     1);
    assert_string_equal(s_refused(f, s_get_user_1), "Unknown function");
    // A snapshot after the window: what it lacks is unknown.
    assert_int_equal(s_apply(f, "{\"seq\":3,\"warming_ms\":0,\"functions\":[]}", true), 0);
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                     "\"request_type\":\"log\",\"args\":{\"msg\":\"m\"}}"),
                        "Unknown function");
}

static void
test_pipeline_the_warming_window_ends(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_apply(f, "{\"seq\":0,\"warming_ms\":50,\"functions\":[]}", true), 0);
    assert_int_equal(s_prepare(f, s_get_user_1), GA_EUNAVAIL);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 120 * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
    assert_int_equal(s_prepare(f, s_get_user_1), GA_ENOTFOUND);
    assert_string_equal(f->refusal.error, "Unknown function");
}

// --- a good request ---

static void
test_pipeline_prepare_get_user_yields_a_complete_call(void **state)
{
    fixture_t *f = *state;
    const gw_identity_t who = {.user_id = "u1", .ip = "10.0.0.1"};
    assert_int_equal(s_prepare_as(f, &who,
                                  "{\"request_id\":\"req_2\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}"),
                     GA_OK);
    gw_call_t *c = &f->call;
    assert_string_equal(c->request_id, "req_2");
    assert_string_equal(c->service, "user_service");
    assert_string_equal(c->request_type, "get_user");
    assert_non_null(c->version); // resolved, though the request names none
    assert_string_equal(c->version, "1.0.0");
    assert_int_equal(c->args.type, GA_MAP);
    assert_int_equal(c->args.len, 1);
    assert_string_equal(ga_map_get_str(&c->args, "user_id"), "1");
    assert_int_equal(c->response_type, GA_RESP_SYNC);
    assert_int_equal(c->timeout_ms, 5000);
    assert_null(c->permission_callback);
    assert_ptr_equal(c->who, &who);
}

static void
test_pipeline_prepare_list_users_without_args_gets_empty_args(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"req_1\",\"service\":\"user_service\","
                                  "\"request_type\":\"list_users\"}"),
                     GA_OK);
    assert_int_equal(f->call.args.type, GA_MAP);
    assert_int_equal(f->call.args.len, 0);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"req_1\",\"service\":\"user_service\","
                                  "\"request_type\":\"list_users\",\"args\":null}"),
                     GA_OK);
    assert_int_equal(f->call.args.len, 0);
}

static void
test_pipeline_prepare_ignores_unknown_top_level_keys(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"list_users\",\"extra\":[1,2],"
                                  "\"user_id\":\"forged\"}"),
                     GA_OK);
}

static void
test_pipeline_call_version_survives_a_registry_change(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}"),
                     GA_OK);
    const char *version = f->call.version;
    // The snapshot frees every config the call was prepared from.
    assert_int_equal(s_apply(f, "{\"functions\":[]}", true), 0);
    assert_int_equal(gw_pipeline_function_count(f->p), 0);
    assert_string_equal(version, "1.0.0");
}

// --- request field refusals ---

static void
test_pipeline_refuses_missing_service_keeping_request_id(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"req_9\",\"request_type\":\"get_user\"}"),
                     GA_EINVAL);
    assert_string_equal(f->refusal.error, "Missing field: service");
    assert_string_equal(f->refusal.request_id, "req_9");
    assert_false(f->refusal.can_retry);
}

static void
test_pipeline_refuses_missing_request_id_answering_unknown(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"service\":\"user_service\",\"request_type\":"
                                     "\"list_users\"}"),
                        "Missing field: request_id");
    assert_string_equal(f->refusal.request_id, "unknown");
}

static void
test_pipeline_refuses_null_request_id_as_missing(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":null,\"service\":\"user_service\","
                                     "\"request_type\":\"list_users\"}"),
                        "Missing field: request_id");
    assert_string_equal(f->refusal.request_id, "unknown");
}

static void
test_pipeline_refuses_missing_request_type(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\"}"),
                        "Missing field: request_type");
    assert_string_equal(f->refusal.request_id, "r");
}

static void
test_pipeline_refuses_non_string_service(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":5,"
                                     "\"request_type\":\"get_user\"}"),
                        "Invalid field: service (expected a non-empty string)");
    assert_string_equal(f->refusal.request_id, "r");
}

static void
test_pipeline_refuses_empty_service(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"\","
                                     "\"request_type\":\"get_user\"}"),
                        "Invalid field: service (expected a non-empty string)");
}

static void
test_pipeline_refuses_non_string_request_id_answering_unknown(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":7,\"service\":\"user_service\","
                                     "\"request_type\":\"list_users\"}"),
                        "Invalid field: request_id (expected a non-empty string)");
    assert_string_equal(f->refusal.request_id, "unknown");
}

static void
test_pipeline_refuses_args_that_are_a_list(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\",\"args\":[]}"),
                     GA_EINVAL);
    assert_string_equal(f->refusal.error, "Invalid field: args (expected an object)");
}

static void
test_pipeline_refuses_non_string_version(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"list_users\",\"version\":1}"),
                        "Invalid field: version (expected a non-empty string)");
}

static void
test_pipeline_refuses_payload_that_is_not_an_object(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "[\"request_id\",\"r\"]"),
                        "Invalid request: payload must be an object");
    assert_string_equal(f->refusal.request_id, "unknown");
}

static void
test_pipeline_require_auth_refuses_anonymous_callers(void **state)
{
    fixture_t *f = *state;
    f->cfg.require_auth = true;
    const char *req = "{\"request_id\":\"r\",\"service\":\"user_service\","
                      "\"request_type\":\"list_users\"}";
    assert_int_equal(s_prepare(f, req), GA_EDENIED);
    assert_string_equal(f->refusal.error, "Authentication required");
    const gw_identity_t alice = {.user_id = "alice"};
    assert_int_equal(s_prepare_as(f, &alice, req), GA_OK);
    f->cfg.require_auth = false;
}

// --- functions and versions ---

static void
test_pipeline_refuses_unknown_request_type_and_service(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"nope\"}"),
                     GA_ENOTFOUND);
    assert_string_equal(f->refusal.error, "Unknown function");
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"nope\","
                                     "\"request_type\":\"get_user\"}"),
                        "Unknown function");
}

static void
test_pipeline_refuses_a_version_that_does_not_exist(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"get_user\",\"version\":\"9.9.9\","
                                     "\"args\":{\"user_id\":\"1\"}}"),
                        "Unknown function");
}

static void
test_pipeline_refuses_a_disabled_config(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"report_service\","
                                  "\"request_type\":\"legacy\"}"),
                     GA_ENOTFOUND);
    assert_string_equal(f->refusal.error, "Function disabled");
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"report_service\","
                                     "\"request_type\":\"export\",\"version\":\"2.0.0\"}"),
                        "Function disabled");
}

// Functions with visibility "internal" (hooks, permission callbacks, identity services, nodes
// resolvers): a client's request gets exactly what a request for a function that does not exist
// gets, whatever else it carries (a none function, a disabled one, a warming broker), while the
// gateway's own hook and permission calls to them are built as before.
static void
test_pipeline_internal_functions_answer_clients_as_unknown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_apply(f,
                             "{\"functions\":["
                             "{\"service\":\"hooks\",\"request_type\":\"quota\","
                             "\"visibility\":\"internal\",\"arg_types\":{\"hook\":\"string\"}},"
                             "{\"service\":\"hooks\",\"request_type\":\"quota_v\","
                             "\"version\":\"1.0.0\",\"visibility\":\"internal\"},"
                             "{\"service\":\"hooks\",\"request_type\":\"quiet\","
                             "\"response_type\":\"none\",\"visibility\":\"internal\"},"
                             "{\"service\":\"hooks\",\"request_type\":\"off\","
                             "\"disabled\":true,\"visibility\":\"internal\"},"
                             "{\"service\":\"hooks\",\"request_type\":\"open\","
                             "\"visibility\":\"public\"},"
                             "{\"service\":\"data\",\"request_type\":\"guarded\","
                             "\"before_execute\":\"hooks.quota\","
                             "\"permission_callback\":\"hooks.quota_v\"}]}",
                             false),
                     6);
    // The reference: a function that does not exist.
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"hooks\","
                                  "\"request_type\":\"absent\",\"args\":{\"hook\":\"x\"}}"),
                     GA_ENOTFOUND);
    const char *unknown = s_encode(f, &f->refusal);
    assert_int_equal(f->call.response_type, GA_RESP_SYNC);
    const char *internal[] = {
        "{\"request_id\":\"r\",\"service\":\"hooks\",\"request_type\":\"quota\","
        "\"args\":{\"hook\":\"x\"}}",
        "{\"request_id\":\"r\",\"service\":\"hooks\",\"request_type\":\"quota\","
        "\"args\":{\"hook\":1}}", // arguments are never checked: nothing is revealed
        "{\"request_id\":\"r\",\"service\":\"hooks\",\"request_type\":\"quota_v\","
        "\"version\":\"1.0.0\",\"args\":{\"hook\":\"x\"}}",
        "{\"request_id\":\"r\",\"service\":\"hooks\",\"request_type\":\"quota_v\","
        "\"args\":{\"hook\":\"x\"}}",
        "{\"request_id\":\"r\",\"service\":\"hooks\",\"request_type\":\"quiet\","
        "\"args\":{\"hook\":\"x\"}}",
        "{\"request_id\":\"r\",\"service\":\"hooks\",\"request_type\":\"off\","
        "\"args\":{\"hook\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++) {
        assert_int_equal(s_prepare(f, internal[i]), GA_ENOTFOUND);
        assert_string_equal(s_encode(f, &f->refusal), unknown);
        if (f->call.response_type != GA_RESP_SYNC) {
            fail_msg("%s: answered as a %s function", internal[i],
                     ga_resp_name(f->call.response_type));
        }
    }
    // A public one is served.
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"hooks\","
                                  "\"request_type\":\"open\"}"),
                     GA_OK);
    // The gateway's own calls still name them.
    const gw_identity_t who = {.user_id = "u1", .ip = "10.0.0.1"};
    assert_int_equal(s_prepare_as(f, &who, "{\"request_id\":\"r\",\"service\":\"data\","
                                           "\"request_type\":\"guarded\"}"),
                     GA_OK);
    gw_call_t side;
    assert_true(gw_pipeline_hook_call(f->p, &who, &f->call, GW_HOOK_BEFORE, f->a, &side));
    assert_string_equal(side.service, "hooks");
    assert_string_equal(side.request_type, "quota");
    assert_true(gw_pipeline_check_call(&who, &f->call, f->a, &side));
    assert_string_equal(side.request_type, "quota_v");
    // A broker warming up after a restart: a known internal function is still unknown to
    // clients, not "temporarily unavailable" (which would reveal it).
    assert_int_equal(s_apply(f, "{\"seq\":0,\"warming_ms\":60000,\"functions\":[]}", true), 0);
    assert_int_equal(s_prepare(f, internal[0]), GA_ENOTFOUND);
    assert_string_equal(s_encode(f, &f->refusal), unknown);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"hooks\","
                                  "\"request_type\":\"open\"}"),
                     GA_EUNAVAIL);
}

static void
test_pipeline_resolves_highest_enabled_version_in_semver_order(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"report_service\","
                                  "\"request_type\":\"export\"}"),
                     GA_OK);
    assert_string_equal(f->call.version, "1.10.0"); // not 1.9.0 (text order), not disabled 2.0.0
    assert_int_equal(f->call.timeout_ms, 7000);
}

static void
test_pipeline_gives_exactly_the_version_requested(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"report_service\","
                                  "\"request_type\":\"export\",\"version\":\"1.9.0\"}"),
                     GA_OK);
    assert_string_equal(f->call.version, "1.9.0");
    assert_int_equal(f->call.timeout_ms, 9000);
}

static void
test_pipeline_treats_version_0_0_0_and_null_as_none(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"report_service\","
                                  "\"request_type\":\"export\",\"version\":\"0.0.0\"}"),
                     GA_OK);
    assert_string_equal(f->call.version, "1.10.0");
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"report_service\","
                                  "\"request_type\":\"export\",\"version\":null}"),
                     GA_OK);
    assert_string_equal(f->call.version, "1.10.0");
}

static void
test_pipeline_unversioned_call_has_null_version(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"search_service\","
                                  "\"request_type\":\"search\"}"),
                     GA_OK);
    assert_null(f->call.version);
}

// --- arguments ---

static void
test_pipeline_refuses_get_user_without_args(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user\"}"),
                     GA_EINVAL);
    assert_string_equal(f->refusal.error, "Missing required argument: user_id");
}

static void
test_pipeline_refuses_an_undeclared_argument(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\","
                                     "\"x\":1}}"),
                        "Unknown argument: x");
}

static void
test_pipeline_refuses_an_argument_of_the_wrong_type(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"get_user\",\"args\":{\"user_id\":5}}"),
                        "Invalid type for argument user_id: expected string");
}

static void
test_pipeline_refuses_null_for_an_argument_without_allow_nil(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"user_service\","
                                     "\"request_type\":\"get_user\",\"args\":{\"user_id\":null}}"),
                        "Invalid type for argument user_id: expected string");
}

static void
test_pipeline_applies_default_when_argument_is_absent(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"search_service\","
                                  "\"request_type\":\"search\",\"args\":{\"query\":\"q\"}}"),
                     GA_OK);
    const ga_value_t *limit = ga_map_get(&f->call.args, "limit");
    assert_non_null(limit);
    assert_int_equal(limit->type, GA_INT);
    assert_int_equal(limit->u.i, 20);
    assert_string_equal(ga_map_get_str(&f->call.args, "query"), "q");
}

static void
test_pipeline_does_not_apply_default_when_argument_is_null(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"search_service\","
                                     "\"request_type\":\"search\",\"args\":{\"limit\":null}}"),
                        "Invalid type for argument limit: expected num");
}

static void
test_pipeline_keeps_a_given_value_over_the_default(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"search_service\","
                                  "\"request_type\":\"search\",\"args\":{\"limit\":5}}"),
                     GA_OK);
    assert_int_equal(ga_map_get_int(&f->call.args, "limit", 0), 5);
}

static void
test_pipeline_fills_absent_nullable_argument_with_null(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"search_service\","
                                  "\"request_type\":\"search\",\"args\":{}}"),
                     GA_OK);
    assert_int_equal(f->call.args.len, 2);
    const ga_value_t *query = ga_map_get(&f->call.args, "query");
    assert_non_null(query);
    assert_int_equal(query->type, GA_NIL);
}

static void
test_pipeline_refusal_of_a_none_function_reports_its_response_type(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                     "\"request_type\":\"log\"}"),
                        "Missing required argument: msg");
    assert_int_equal(f->call.response_type, GA_RESP_NONE);
    // An unknown function is not known to be a `none` function.
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                     "\"request_type\":\"nope\"}"),
                        "Unknown function");
    assert_int_equal(f->call.response_type, GA_RESP_SYNC);
}

// Once service, request_type and version name a config, every refusal of a `none` function
// says so, whichever check refused it: the caller must stay silent.
static void
test_pipeline_every_refusal_of_a_known_none_function_reports_it(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        s_apply(f,
                "{\"functions\":[{\"service\":\"event_service\",\"request_type\":\"off\","
                "\"response_type\":\"none\",\"disabled\":true},"
                "{\"service\":\"event_service\",\"request_type\":\"mine\","
                "\"response_type\":\"none\",\"check_permission\":\"any_authenticated\"}]}",
                false),
        2);
    static const char *const cases[][2] = {
        {"{\"service\":\"event_service\",\"request_type\":\"log\",\"args\":{\"msg\":\"m\"}}",
         "Missing field: request_id"},
        {"{\"request_id\":7,\"service\":\"event_service\",\"request_type\":\"log\"}",
         "Invalid field: request_id (expected a non-empty string)"},
        {"{\"request_id\":\"r\",\"service\":\"event_service\",\"request_type\":\"log\","
         "\"args\":[]}",
         "Invalid field: args (expected an object)"},
        {"{\"request_id\":\"r\",\"service\":\"event_service\",\"request_type\":\"off\"}",
         "Function disabled"},
        {"{\"request_id\":\"r\",\"service\":\"event_service\",\"request_type\":\"log\","
         "\"args\":{\"msg\":\"m\",\"x\":1}}",
         "Unknown argument: x"},
        {"{\"request_id\":\"r\",\"service\":\"event_service\",\"request_type\":\"mine\"}",
         "Permission denied"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(s_refused(f, cases[i][0]), cases[i][1]);
        assert_int_equal(f->call.response_type, GA_RESP_NONE);
    }
    f->cfg.require_auth = true;
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                     "\"request_type\":\"log\",\"args\":{\"msg\":\"m\"}}"),
                        "Authentication required");
    assert_int_equal(f->call.response_type, GA_RESP_NONE);
    f->cfg.require_auth = false;
    // Not identified: a version of the wrong type, or one that does not exist.
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                     "\"request_type\":\"log\",\"version\":1}"),
                        "Invalid field: version (expected a non-empty string)");
    assert_int_equal(f->call.response_type, GA_RESP_SYNC);
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"event_service\","
                                     "\"request_type\":\"log\",\"version\":\"9\"}"),
                        "Unknown function");
    assert_int_equal(f->call.response_type, GA_RESP_SYNC);
}

// A request to caps_service.take with `args_json` as its args.
static const char *
s_caps_request(fixture_t *f, const char *args_json)
{
    size_t n = strlen(args_json) + 128;
    char *req = ga_arena_alloc(f->a, n);
    snprintf(req, n, "{\"request_id\":\"r\",\"service\":\"caps_service\","
                     "\"request_type\":\"take\",\"args\":%s}", args_json);
    return req;
}

// `n` copies of `unit` separated by `sep`, between `open` and `close`.
static const char *
s_repeat(fixture_t *f, const char *open, const char *unit, const char *sep, size_t n,
         const char *close)
{
    size_t len = strlen(open) + n * (strlen(unit) + strlen(sep)) + strlen(close) + 1;
    char *out = ga_arena_alloc(f->a, len);
    strcpy(out, open);
    for (size_t i = 0; i < n; i++) {
        strcat(out, i ? sep : "");
        strcat(out, unit);
    }
    strcat(out, close);
    return out;
}

static void
test_pipeline_global_caps_hold_for_values_nested_in_arguments(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        s_apply(f,
                "{\"functions\":[{\"service\":\"caps_service\",\"request_type\":\"take\","
                "\"arg_types\":{\"a\":{\"type\":\"any\",\"allow_nil\":true},"
                "\"m\":{\"type\":\"map\",\"allow_nil\":true},"
                "\"l\":{\"type\":\"list\",\"allow_nil\":true},"
                "\"lm\":{\"type\":\"list_map\",\"allow_nil\":true}}}]}",
                false),
        1);
    const char *big = s_repeat(f, "\"", "x", "", 5000, "\"");     // a 5000-byte string
    const char *ok_str = s_repeat(f, "\"", "x", "", 3000, "\"");  // exactly at the cap
    const char *long_list = s_repeat(f, "[", "1", ",", 2000, "]"); // 2000 items
    const char *ok_list = s_repeat(f, "[", "1", ",", 1000, "]");   // exactly at the cap
    char args[16384];
    struct {
        const char *pre;   // args JSON before the large value
        const char *inner; // the large value
        const char *post;  // args JSON after it
        const char *error; // the refusal
    } cases[] = {
        {"{\"a\":", big, "}", "Argument a exceeds max_bytes 3000 at a"},
        {"{\"a\":{\"deep\":[{\"s\":", big, "}]}}", "Argument a exceeds max_bytes 3000 at a.deep[0].s"},
        {"{\"a\":[[", long_list, "]]}", "Argument a exceeds max_items 1000 at a[0][0]"},
        {"{\"m\":{\"k\":", big, "}}", "Argument m exceeds max_bytes 3000 at m.k"},
        {"{\"m\":{\"k\":", long_list, "}}", "Argument m exceeds max_items 1000 at m.k"},
        {"{\"l\":[1,{\"x\":", big, "}]}", "Argument l exceeds max_bytes 3000 at l[1].x"},
        {"{\"l\":[", long_list, "]}", "Argument l exceeds max_items 1000 at l[0]"},
        {"{\"lm\":[{\"x\":[", big, "]}]}", "Argument lm exceeds max_bytes 3000 at lm[0].x[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "%s%s%s", cases[i].pre, cases[i].inner, cases[i].post);
        assert_string_equal(s_refused(f, s_caps_request(f, args)), cases[i].error);
    }
    // A key longer than the cap is refused too; values at the caps pass.
    snprintf(args, sizeof args, "{\"m\":{%s:1}}", big);
    assert_string_equal(s_refused(f, s_caps_request(f, args)),
                        "Argument m has a key over max_bytes 3000 at m");
    snprintf(args, sizeof args, "{\"a\":{\"s\":%s,\"l\":%s},\"lm\":[{\"l\":%s}]}", ok_str,
             ok_list, ok_list);
    assert_int_equal(s_prepare(f, s_caps_request(f, args)), GA_OK);
}

// --- permissions ---

static void
test_pipeline_any_authenticated_refuses_anonymous_only(void **state)
{
    fixture_t *f = *state;
    const char *req = "{\"request_id\":\"r\",\"service\":\"user_service\","
                      "\"request_type\":\"get_profile\"}";
    assert_int_equal(s_prepare(f, req), GA_EDENIED);
    assert_string_equal(f->refusal.error, "Permission denied");
    const gw_identity_t alice = {.user_id = "alice"};
    assert_int_equal(s_prepare_as(f, &alice, req), GA_OK);
}

static void
test_pipeline_arg_permission_needs_argument_equal_to_caller(void **state)
{
    fixture_t *f = *state;
    const gw_identity_t alice = {.user_id = "alice"};
    assert_int_equal(s_prepare_as(f, &alice,
                                  "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user_profile\","
                                  "\"args\":{\"user_id\":\"alice\"}}"),
                     GA_OK);
    // A payload's user_id never changes who the caller is.
    assert_int_equal(s_prepare_as(f, &alice,
                                  "{\"request_id\":\"r\",\"service\":\"user_service\","
                                  "\"request_type\":\"get_user_profile\","
                                  "\"args\":{\"user_id\":\"bob\"},\"user_id\":\"bob\"}"),
                     GA_EDENIED);
    assert_string_equal(f->refusal.error, "Permission denied");
}

static void
test_pipeline_role_permission_needs_one_listed_role(void **state)
{
    fixture_t *f = *state;
    const char *const ops_roles[] = {"viewer", "ops"};
    const char *const other_roles[] = {"viewer", "opsx"};
    const gw_identity_t ops = {.user_id = "o", .roles = ops_roles, .n_roles = 2};
    const gw_identity_t other = {.user_id = "p", .roles = other_roles, .n_roles = 2};
    const char *req = "{\"request_id\":\"r\",\"service\":\"admin_service\","
                      "\"request_type\":\"delete_user\",\"user_roles\":[\"admin\"]}";
    assert_int_equal(s_prepare_as(f, &ops, req), GA_OK);
    assert_int_equal(s_prepare_as(f, &other, req), GA_EDENIED);
    assert_int_equal(s_prepare(f, req), GA_EDENIED); // user_roles in a payload count for nothing
}

static void
test_pipeline_in_process_callback_decides_synchronously(void **state)
{
    fixture_t *f = *state;
    const gw_identity_t bob = {.user_id = "bob"};
    const gw_identity_t alice = {.user_id = "alice"};
    const char *req = "{\"request_id\":\"r\",\"service\":\"admin_service\","
                      "\"request_type\":\"custom\"}";
    assert_int_equal(s_prepare_as(f, &bob, req), GA_OK);
    assert_null(f->call.permission_callback); // decided here, nothing left for the caller
    assert_int_equal(s_prepare_as(f, &alice, req), GA_EDENIED);
    assert_string_equal(f->refusal.error, "Permission denied: not bob"); // its reason
    assert_int_equal(s_callback_calls, 2);
}

// An in-process hook: answers {saw: HOOK}, or refuses with a reason when `hook` is "refuse".
static ga_err_t
s_local_hook(void *arg, const ga_value_t *args, ga_arena_t *arena, ga_value_t *out, char *reason,
             size_t reason_len)
{
    (void) arg;
    const char *hook = ga_map_get_str(args, "hook");
    if (hook && strcmp(hook, "refuse") == 0) {
        snprintf(reason, reason_len, "no, said the hook");
        return GA_EDENIED;
    }
    *out = ga_map(arena, 1);
    ga_map_put(out, arena, "saw", ga_str(hook ? hook : "?"));
    return GA_OK;
}

// Hooks: prepare hands the hooks to the caller with the function's config; the hook call
// carries the whole request; the before hook's verdicts; a hook name that is not a worker
// function refuses (before) or is skipped (after), counted either way.
static void
test_pipeline_hooks(void **state)
{
    fixture_t *f = *state;
    ga_value_t body = s_json(
        f->a, "{\"functions\":["
              "{\"service\":\"data\",\"request_type\":\"hooked\",\"arg_types\":{\"n\":\"num\"},"
              "\"before_execute\":{\"function\":\"hooks.before\",\"args\":[\"extra_value\",42]},"
              "\"after_execute\":\"hooks.after\",\"hook_timeout\":300},"
              "{\"service\":\"data\",\"request_type\":\"bad_before\","
              "\"before_execute\":\"not_a_function\"},"
              "{\"service\":\"data\",\"request_type\":\"bad_after\","
              "\"after_execute\":\"not_a_function\"}]}");
    assert_int_equal(gw_pipeline_apply(f->p, &body, false), 3);
    const char *const roles[] = {"viewer"};
    const gw_identity_t alice = {.user_id = "alice", .roles = roles, .n_roles = 1, .ip = "10.0.0.1"};
    assert_int_equal(s_prepare_as(f, &alice,
                                  "{\"request_id\":\"r9\",\"service\":\"data\","
                                  "\"request_type\":\"hooked\",\"args\":{\"n\":1}}"),
                     GA_OK);
    assert_string_equal(f->call.before_execute, "hooks.before");
    assert_string_equal(f->call.after_execute, "hooks.after");
    assert_int_equal(f->call.hook_timeout_ms, 300);
    assert_int_equal(f->call.before_args.type, GA_ARRAY);
    assert_non_null(f->call.config);
    gw_call_t hook;
    assert_true(gw_pipeline_hook_call(f->p, &alice, &f->call, GW_HOOK_BEFORE, f->a, &hook));
    assert_string_equal(hook.service, "hooks");
    assert_string_equal(hook.request_type, "before");
    assert_int_equal(hook.timeout_ms, 300);
    assert_false(hook.request_info); // the identity travels in args.request only
    const ga_value_t *req = ga_map_get(&hook.args, "request");
    const char *fields[] = {"request_id", "service", "request_type", "version", "args",
                            "user_id",    "roles",   "device_id",    "ip"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (ga_map_get(req, fields[i]) == NULL) {
            fail_msg("request.%s missing", fields[i]);
        }
    }
    assert_string_equal(ga_map_get_str(req, "user_id"), "alice");
    assert_string_equal(ga_map_get_str(ga_map_get(&hook.args, "config"), "after_execute"),
                        "hooks.after");
    assert_int_equal(ga_map_get(&hook.args, "extra")->len, 2);
    assert_true(gw_pipeline_hook_call(f->p, &alice, &f->call, GW_HOOK_AFTER, f->a, &hook));
    assert_string_equal(ga_map_get_str(&hook.args, "hook"), "after");
    assert_int_equal(ga_map_get(&hook.args, "extra")->type, GA_NIL);

    // Verdicts on the CALL body {service, request_type, args}.
    ga_value_t call = s_json(f->a, "{\"service\":\"data\",\"request_type\":\"hooked\","
                                   "\"args\":{\"n\":1}}");
    struct {
        const char *body;   // the hook's RESULT
        ga_err_t rc;        // verdict
        int64_t n;          // GA_OK: the args' n
        const char *error;  // otherwise: the refusal
    } cases[] = {
        {"{\"ok\":true,\"result\":null}", GA_OK, 1, NULL},
        {"{\"ok\":true,\"result\":{\"args\":{\"n\":5}}}", GA_OK, 5, NULL},
        {"{\"ok\":true,\"result\":{\"args\":{\"n\":\"x\"}}}", GA_EINVAL, 0,
         "Invalid type for argument n: expected num"},
        {"{\"ok\":true,\"result\":{\"args\":[1]}}", GA_EINTERNAL, 0, "Hook failed"},
        {"{\"ok\":false,\"error\":\"Quota exceeded\",\"code\":14}", GA_EHANDLER, 0,
         "Quota exceeded"},
        {"{\"ok\":false,\"error\":\"Request timed out\",\"code\":4}", GA_ETIMEDOUT, 0,
         "Hook timed out"},
        {"{\"ok\":false,\"error\":\"secret detail\",\"code\":15}", GA_EINTERNAL, 0,
         "Hook failed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ga_value_t b = s_json(f->a, cases[i].body);
        ga_value_t args;
        const char *refusal = NULL;
        ga_err_t rc = gw_pipeline_before_verdict(f->p, &b, &call, f->a, &args, &refusal);
        if (rc != cases[i].rc) {
            fail_msg("%s: rc %d", cases[i].body, rc);
        }
        if (rc == GA_OK) {
            assert_int_equal(ga_map_get_int(&args, "n", 0), cases[i].n);
        } else {
            assert_string_equal(refusal, cases[i].error);
        }
    }
    assert_int_equal(gw_pipeline_hook_failures(f->p), 2);
    assert_int_equal(gw_pipeline_hook_timeouts(f->p), 1);
    ga_value_t ok = s_json(f->a, "{\"ok\":true,\"result\":1}");
    ga_value_t bad = s_json(f->a, "{\"ok\":false,\"error\":\"x\",\"code\":13}");
    assert_true(gw_pipeline_after_verdict(f->p, &ok));
    assert_false(gw_pipeline_after_verdict(f->p, &bad));
    assert_int_equal(gw_pipeline_hook_failures(f->p), 3);

    // A hook that cannot run: a before hook refuses, an after hook is left out; both counted.
    assert_string_equal(s_refused(f, "{\"request_id\":\"r\",\"service\":\"data\","
                                     "\"request_type\":\"bad_before\"}"),
                        "Hook failed");
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"data\","
                                  "\"request_type\":\"bad_after\"}"),
                     GA_OK);
    assert_null(f->call.after_execute);
    assert_int_equal(gw_pipeline_hook_failures(f->p), 5);

    // Registered in-process, the same name runs: the hook call is marked local, and running it
    // gives a RESULT body as a worker hook's.
    gw_pipeline_register_hook(f->p, "not_a_function", s_local_hook, NULL);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"r\",\"service\":\"data\","
                                  "\"request_type\":\"bad_before\"}"),
                     GA_OK);
    assert_true(gw_pipeline_hook_call(f->p, &alice, &f->call, GW_HOOK_BEFORE, f->a, &hook));
    assert_true(hook.local_hook);
    ga_value_t got = gw_pipeline_run_hook(f->p, hook.service, &hook.args, f->a);
    assert_true(ga_map_get(&got, "ok")->u.b);
    assert_string_equal(ga_map_get_str(ga_map_get(&got, "result"), "saw"), "before");
    ga_value_t refuse = s_json(f->a, "{\"hook\":\"refuse\"}");
    got = gw_pipeline_run_hook(f->p, "not_a_function", &refuse, f->a);
    assert_string_equal(ga_map_get_str(&got, "error"), "no, said the hook");
    assert_int_equal(ga_map_get_int(&got, "code", 0), GA_EHANDLER);
    got = gw_pipeline_run_hook(f->p, "unregistered", &refuse, f->a);
    assert_int_equal(ga_map_get_int(&got, "code", 0), GA_EINTERNAL);
}

static void
test_pipeline_worker_callback_is_left_to_the_caller_with_a_check_call(void **state)
{
    fixture_t *f = *state;
    const char *const roles[] = {"admin"};
    const gw_identity_t alice = {
        .user_id = "alice", .roles = roles, .n_roles = 1, .device_id = "d1", .ip = "10.1.2.3"};
    assert_int_equal(s_prepare_as(f, &alice,
                                  "{\"request_id\":\"req_7\",\"service\":\"admin_service\","
                                  "\"request_type\":\"remote\",\"args\":{\"n\":3}}"),
                     GA_OK);
    assert_string_equal(f->call.permission_callback, "admin_service.authorize");
    gw_call_t check;
    assert_true(gw_pipeline_check_call(&alice, &f->call, f->a, &check));
    assert_string_equal(check.request_id, "req_7");
    assert_string_equal(check.service, "admin_service");
    assert_string_equal(check.request_type, "authorize");
    assert_int_equal(check.response_type, GA_RESP_SYNC);
    assert_int_equal(check.timeout_ms, GA_FUNCFG_TIMEOUT_DEFAULT);
    assert_string_equal(ga_map_get_str(&check.args, "service"), "admin_service");
    assert_string_equal(ga_map_get_str(&check.args, "request_type"), "remote");
    assert_int_equal(ga_map_get_int(ga_map_get(&check.args, "args"), "n", 0), 3);
    assert_string_equal(ga_map_get_str(&check.args, "user_id"), "alice");
    assert_string_equal(ga_map_get_str(&check.args, "device_id"), "d1");
    assert_string_equal(ga_map_get_str(&check.args, "ip"), "10.1.2.3");
    const ga_value_t *r = ga_map_get(&check.args, "roles");
    assert_non_null(r);
    assert_int_equal(r->type, GA_ARRAY);
    assert_int_equal(r->len, 1);
    assert_string_equal(r->u.items[0].u.s, "admin");
}

static void
test_pipeline_check_call_for_anonymous_sends_nulls(void **state)
{
    fixture_t *f = *state;
    const gw_identity_t anon = {0};
    assert_int_equal(s_prepare_as(f, &anon,
                                  "{\"request_id\":\"r\",\"service\":\"admin_service\","
                                  "\"request_type\":\"remote\",\"args\":{\"n\":1}}"),
                     GA_OK);
    gw_call_t check;
    assert_true(gw_pipeline_check_call(&anon, &f->call, f->a, &check));
    assert_int_equal(ga_map_get(&check.args, "user_id")->type, GA_NIL);
    assert_int_equal(ga_map_get(&check.args, "device_id")->type, GA_NIL);
    assert_int_equal(ga_map_get(&check.args, "ip")->type, GA_NIL);
    assert_int_equal(ga_map_get(&check.args, "roles")->len, 0);
}

static void
test_pipeline_check_call_refuses_names_without_service_dot_function(void **state)
{
    fixture_t *f = *state;
    const gw_identity_t anon = {0};
    const char *names[] = {"nodot", ".fn", "svc.", NULL};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        gw_call_t call = {.request_id = "r",
                          .service = "s",
                          .request_type = "t",
                          .permission_callback = names[i]};
        gw_call_t check;
        assert_false(gw_pipeline_check_call(&anon, &call, f->a, &check));
    }
}

// The permission callback contract: an ok answer allows (whatever its value, except one that
// says no), the callback's own error denies with its reason, any other failure denies plainly.
static void
test_pipeline_check_answer_allows_on_ok_and_denies_with_the_callbacks_reason(void **state)
{
    fixture_t *f = *state;
    const struct {
        const char *body;
        const char *denial; // NULL: allowed
    } cases[] = {
        {"{\"ok\":true,\"result\":null}", NULL}, // the walkthrough's :ok
        {"{\"ok\":true}", NULL},
        {"{\"ok\":true,\"result\":true}", NULL},
        {"{\"ok\":true,\"result\":{\"allow\":true}}", NULL},
        {"{\"ok\":true,\"result\":\"yes\"}", NULL},
        {"{\"ok\":true,\"result\":{\"user\":\"u1\"}}", NULL},
        // An ok answer that says no still denies (fail closed for boolean answers).
        {"{\"ok\":true,\"result\":false}", "Permission denied"},
        {"{\"ok\":true,\"result\":{\"allow\":false}}", "Permission denied"},
        // The callback's own error: its reason reaches the client.
        {"{\"ok\":false,\"error\":\"unauthorized\",\"code\":14}",
         "Permission denied: unauthorized"},
        {"{\"ok\":false,\"error\":\"Quota exceeded. Upgrade your plan.\",\"code\":14,"
         "\"can_retry\":false}",
         "Permission denied: Quota exceeded. Upgrade your plan."},
        // Anything else: no reason (crash, timeout, unknown callback, internal, malformed).
        {"{\"ok\":false,\"error\":\"\",\"code\":14}", "Permission denied"},
        {"{\"ok\":false,\"error\":\"Worker lost\",\"code\":13,\"can_retry\":true}",
         "Permission denied"},
        {"{\"ok\":false,\"error\":\"Request timed out\",\"code\":4}", "Permission denied"},
        {"{\"ok\":false,\"error\":\"Unknown function\",\"code\":7}", "Permission denied"},
        {"{\"ok\":false,\"error\":\"Internal Server Error\",\"code\":15}",
         "Permission denied"},
        {"{\"ok\":false,\"error\":\"boom\"}", "Permission denied"},
        {"{\"ok\":\"true\",\"result\":true}", "Permission denied"},
        {"{\"result\":true}", "Permission denied"},
        {"{\"error\":\"x\",\"code\":14}", "Permission denied"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ga_value_t v = s_json(f->a, cases[i].body);
        const char *got = gw_pipeline_check_denial(&v, f->a);
        bool same = got == NULL ? cases[i].denial == NULL
                                : cases[i].denial != NULL && strcmp(got, cases[i].denial) == 0;
        if (!same) {
            fail_msg("check_denial(%s) = %s, want %s", cases[i].body, got ? got : "(allowed)",
                     cases[i].denial ? cases[i].denial : "(allowed)");
        }
    }
}

// --- results and responses ---

static void
test_pipeline_result_ok_becomes_a_success_result(void **state)
{
    fixture_t *f = *state;
    ga_value_t body = s_json(f->a, "{\"ok\":true,\"result\":{\"id\":\"1\",\"name\":\"Alice\"}}");
    gw_response_t r;
    gw_pipeline_result(f->p, &body, "req_2", &r);
    assert_int_equal(r.kind, GW_KIND_RESULT);
    assert_true(r.success);
    assert_string_equal(r.request_id, "req_2");
    assert_null(r.error);
    assert_false(r.can_retry);
    assert_non_null(r.result);
    assert_string_equal(ga_map_get_str(r.result, "name"), "Alice");
    assert_string_equal(s_encode(f, &r),
                        "{\"request_id\":\"req_2\",\"success\":true,\"result\":{\"id\":\"1\","
                        "\"name\":\"Alice\"},\"error\":null,\"async\":false,\"has_more\":false,"
                        "\"can_retry\":false,\"kind\":\"result\"}");
}

static void
test_pipeline_result_handler_error_shows_its_message(void **state)
{
    fixture_t *f = *state;
    ga_value_t body = s_json(f->a, "{\"ok\":false,\"error\":\"not_found\",\"code\":14}");
    gw_response_t r;
    gw_pipeline_result(f->p, &body, "r", &r);
    assert_int_equal(r.kind, GW_KIND_ERROR);
    assert_false(r.success);
    assert_null(r.result);
    assert_string_equal(r.error, "not_found");
    assert_false(r.can_retry);
}

static void
test_pipeline_result_internal_error_is_hidden_without_detail_errors(void **state)
{
    fixture_t *f = *state;
    ga_value_t body = s_json(f->a, "{\"ok\":false,\"error\":\"db down\",\"code\":15}");
    gw_response_t r;
    f->cfg.detail_errors = false;
    gw_pipeline_result(f->p, &body, "r", &r);
    assert_string_equal(r.error, "Internal Server Error");
    f->cfg.detail_errors = true;
    gw_pipeline_result(f->p, &body, "r", &r);
    assert_string_equal(r.error, "db down");
    f->cfg.detail_errors = false;
}

static void
test_pipeline_result_without_code_or_message_is_internal(void **state)
{
    fixture_t *f = *state;
    gw_response_t r;
    ga_value_t no_code = s_json(f->a, "{\"ok\":false,\"error\":\"secret\"}");
    gw_pipeline_result(f->p, &no_code, "r", &r);
    assert_string_equal(r.error, "Internal Server Error");
    ga_value_t no_msg = s_json(f->a, "{\"ok\":false,\"code\":14}");
    gw_pipeline_result(f->p, &no_msg, "r", &r);
    assert_string_equal(r.error, "Internal Server Error");
    assert_int_equal(r.kind, GW_KIND_ERROR);
}

static void
test_pipeline_result_propagates_can_retry(void **state)
{
    fixture_t *f = *state;
    ga_value_t body =
        s_json(f->a, "{\"ok\":false,\"error\":\"Worker lost\",\"code\":13,\"can_retry\":true}");
    gw_response_t r;
    gw_pipeline_result(f->p, &body, "r", &r);
    assert_string_equal(r.error, "Worker lost");
    assert_true(r.can_retry);
    assert_string_equal(s_encode(f, &r),
                        "{\"request_id\":\"r\",\"success\":false,\"result\":null,\"error\":"
                        "\"Worker lost\",\"async\":false,\"has_more\":false,\"can_retry\":true,"
                        "\"kind\":\"error\"}");
}

static void
test_response_error_names_unknown_request_id(void **state)
{
    fixture_t *f = *state;
    gw_response_t r;
    gw_response_error(&r, NULL, "Service unavailable", true);
    assert_string_equal(r.request_id, "unknown");
    assert_int_equal(r.kind, GW_KIND_ERROR);
    assert_string_equal(s_encode(f, &r),
                        "{\"request_id\":\"unknown\",\"success\":false,\"result\":null,\"error\":"
                        "\"Service unavailable\",\"async\":false,\"has_more\":false,"
                        "\"can_retry\":true,\"kind\":\"error\"}");
}

static void
test_response_encode_writes_keys_in_fixed_order_with_flags(void **state)
{
    fixture_t *f = *state;
    ga_value_t data = s_json(f->a, "[1,\"two\",null]");
    gw_response_t r = {.request_id = "s\"1",
                       .kind = GW_KIND_CHUNK,
                       .success = true,
                       .result = &data,
                       .async = true,
                       .has_more = true};
    assert_string_equal(s_encode(f, &r),
                        "{\"request_id\":\"s\\\"1\",\"success\":true,\"result\":[1,\"two\",null],"
                        "\"error\":null,\"async\":true,\"has_more\":true,\"can_retry\":false,"
                        "\"kind\":\"chunk\"}");
    gw_response_t ack = {.request_id = "a", .kind = GW_KIND_ACK, .success = true, .async = true};
    assert_string_equal(s_encode(f, &ack),
                        "{\"request_id\":\"a\",\"success\":true,\"result\":null,\"error\":null,"
                        "\"async\":true,\"has_more\":false,\"can_retry\":false,\"kind\":\"ack\"}");
}

static void
test_kind_names_match_the_spec(void **state)
{
    (void) state;
    assert_string_equal(gw_kind_name(GW_KIND_RESULT), "result");
    assert_string_equal(gw_kind_name(GW_KIND_ERROR), "error");
    assert_string_equal(gw_kind_name(GW_KIND_ACK), "ack");
    assert_string_equal(gw_kind_name(GW_KIND_CHUNK), "chunk");
    assert_string_equal(gw_kind_name(GW_KIND_LAST), "last");
    assert_string_equal(gw_kind_name(GW_KIND_END), "end");
}

#define T(name)       cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
#define T_EMPTY(name) cmocka_unit_test_setup_teardown(name, s_setup_empty, s_teardown)

// hash:ARG and sticky:KEY calls carry the value the broker routes by: a string argument as it
// is, another value as JSON, a request field from the identity, a long value as a hash; other
// modes and absent values carry none.
static void
test_pipeline_routing_key_for_hash_and_sticky_modes(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        s_apply(f,
                "{\"functions\":["
                "{\"service\":\"r\",\"request_type\":\"h\",\"choose_node_mode\":\"hash:k\","
                "\"arg_types\":{\"k\":{\"type\":\"any\",\"allow_nil\":true},\"o\":\"num\"}},"
                "{\"service\":\"r\",\"request_type\":\"opt\",\"choose_node_mode\":\"sticky:k\","
                "\"arg_types\":{\"k\":{\"type\":\"string\",\"default_value\":\"dflt\"}}},"
                "{\"service\":\"r\",\"request_type\":\"u\",\"choose_node_mode\":\"sticky:user_id\"},"
                "{\"service\":\"r\",\"request_type\":\"rr\",\"choose_node_mode\":\"round_robin\","
                "\"arg_types\":{\"k\":\"string\"}}]}",
                false),
        4);
    assert_int_equal(s_prepare(f, "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":"
                                  "\"h\",\"args\":{\"k\":\"alice\",\"o\":1}}"),
                     GA_OK);
    assert_string_equal(f->call.routing_key, "alice");
    assert_int_equal(s_prepare(f, "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":"
                                  "\"h\",\"args\":{\"k\":{\"a\":[1,2.5]},\"o\":1}}"),
                     GA_OK);
    assert_string_equal(f->call.routing_key, "{\"a\":[1,2.5]}");
    assert_int_equal(s_prepare(f, "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":"
                                  "\"h\",\"args\":{\"k\":null,\"o\":1}}"),
                     GA_OK);
    assert_string_equal(f->call.routing_key, "null");
    char json[1024];
    char long_key[400];
    memset(long_key, 'x', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    snprintf(json, sizeof json,
             "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":\"h\",\"args\":"
             "{\"k\":\"%s\",\"o\":1}}",
             long_key);
    assert_int_equal(s_prepare(f, json), GA_OK);
    assert_int_equal(strlen(f->call.routing_key), 17);
    assert_int_equal(f->call.routing_key[0], '#');
    // A default counts as the value.
    assert_int_equal(
        s_prepare(f, "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":\"opt\"}"),
        GA_OK);
    assert_string_equal(f->call.routing_key, "dflt");
    // A request field: the caller's user id, none when anonymous.
    static const gw_identity_t bob = {.user_id = "bob", .ip = "127.0.0.1"};
    assert_int_equal(s_prepare_as(f, &bob, "{\"request_id\":\"1\",\"service\":\"r\","
                                            "\"request_type\":\"u\"}"),
                     GA_OK);
    assert_string_equal(f->call.routing_key, "bob");
    assert_int_equal(
        s_prepare(f, "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":\"u\"}"),
        GA_OK);
    assert_null(f->call.routing_key);
    // Other modes: none.
    assert_int_equal(s_prepare(f, "{\"request_id\":\"1\",\"service\":\"r\",\"request_type\":"
                                  "\"rr\",\"args\":{\"k\":\"alice\"}}"),
                     GA_OK);
    assert_null(f->call.routing_key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pipeline_routing_key_for_hash_and_sticky_modes),
        T_EMPTY(test_pipeline_apply_snapshot_adds_the_walkthrough_functions),
        T_EMPTY(test_pipeline_apply_skips_invalid_configs_and_counts_only_applied),
        T(test_pipeline_apply_without_a_function_list_applies_nothing),
        T(test_pipeline_second_snapshot_replaces_the_copy),
        T(test_pipeline_update_adds_without_removing),
        T(test_pipeline_update_of_same_key_replaces_that_config),
        T(test_pipeline_update_removals_make_a_function_unknown),
        T(test_pipeline_repeated_calls_see_registry_changes),
        T(test_pipeline_a_warming_snapshot_keeps_known_functions_temporarily_unavailable),
        T(test_pipeline_the_warming_window_ends),
        T(test_pipeline_prepare_get_user_yields_a_complete_call),
        T(test_pipeline_prepare_list_users_without_args_gets_empty_args),
        T(test_pipeline_prepare_ignores_unknown_top_level_keys),
        T(test_pipeline_call_version_survives_a_registry_change),
        T(test_pipeline_refuses_missing_service_keeping_request_id),
        T(test_pipeline_refuses_missing_request_id_answering_unknown),
        T(test_pipeline_refuses_null_request_id_as_missing),
        T(test_pipeline_refuses_missing_request_type),
        T(test_pipeline_refuses_non_string_service),
        T(test_pipeline_refuses_empty_service),
        T(test_pipeline_refuses_non_string_request_id_answering_unknown),
        T(test_pipeline_refuses_args_that_are_a_list),
        T(test_pipeline_refuses_non_string_version),
        T(test_pipeline_refuses_payload_that_is_not_an_object),
        T(test_pipeline_require_auth_refuses_anonymous_callers),
        T(test_pipeline_refuses_unknown_request_type_and_service),
        T(test_pipeline_refuses_a_version_that_does_not_exist),
        T(test_pipeline_internal_functions_answer_clients_as_unknown),
        T(test_pipeline_refuses_a_disabled_config),
        T(test_pipeline_resolves_highest_enabled_version_in_semver_order),
        T(test_pipeline_gives_exactly_the_version_requested),
        T(test_pipeline_treats_version_0_0_0_and_null_as_none),
        T(test_pipeline_unversioned_call_has_null_version),
        T(test_pipeline_refuses_get_user_without_args),
        T(test_pipeline_refuses_an_undeclared_argument),
        T(test_pipeline_refuses_an_argument_of_the_wrong_type),
        T(test_pipeline_refuses_null_for_an_argument_without_allow_nil),
        T(test_pipeline_applies_default_when_argument_is_absent),
        T(test_pipeline_does_not_apply_default_when_argument_is_null),
        T(test_pipeline_keeps_a_given_value_over_the_default),
        T(test_pipeline_fills_absent_nullable_argument_with_null),
        T(test_pipeline_refusal_of_a_none_function_reports_its_response_type),
        T(test_pipeline_every_refusal_of_a_known_none_function_reports_it),
        T(test_pipeline_global_caps_hold_for_values_nested_in_arguments),
        T(test_pipeline_any_authenticated_refuses_anonymous_only),
        T(test_pipeline_arg_permission_needs_argument_equal_to_caller),
        T(test_pipeline_role_permission_needs_one_listed_role),
        T(test_pipeline_in_process_callback_decides_synchronously),
        T(test_pipeline_worker_callback_is_left_to_the_caller_with_a_check_call),
        T(test_pipeline_hooks),
        T(test_pipeline_check_call_for_anonymous_sends_nulls),
        T(test_pipeline_check_call_refuses_names_without_service_dot_function),
        T(test_pipeline_check_answer_allows_on_ok_and_denies_with_the_callbacks_reason),
        T(test_pipeline_result_ok_becomes_a_success_result),
        T(test_pipeline_result_handler_error_shows_its_message),
        T(test_pipeline_result_internal_error_is_hidden_without_detail_errors),
        T(test_pipeline_result_without_code_or_message_is_internal),
        T(test_pipeline_result_propagates_can_retry),
        T(test_response_error_names_unknown_request_id),
        T(test_response_encode_writes_keys_in_fixed_order_with_flags),
        T(test_kind_names_match_the_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
