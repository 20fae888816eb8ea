// SPDX-License-Identifier: MIT
// The gateway's request pipeline in-process, with no sockets: registry copy, request fields,
// version resolution, argument conversion with defaults, the permission modes (including an
// in-process C callback), and the conversion of broker results into client responses.
#include "ga_json.h"
#include "gw_pipeline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const char *s_snapshot =
    "{\"functions\":["
    "{\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
    "\"arg_types\":{\"user_id\":\"string\"}},"
    "{\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"1.10.0\","
    "\"arg_types\":{\"user_id\":\"string\"},\"timeout\":7000},"
    "{\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"2.0.0\","
    "\"disabled\":true},"
    "{\"service\":\"user_service\",\"request_type\":\"get_profile\","
    "\"check_permission\":\"any_authenticated\"},"
    "{\"service\":\"user_service\",\"request_type\":\"own\",\"arg_types\":{\"user_id\":\"string\"},"
    "\"check_permission\":\"arg:user_id\"},"
    "{\"service\":\"admin\",\"request_type\":\"delete\",\"check_permission\":\"role:[admin, ops]\"},"
    "{\"service\":\"admin\",\"request_type\":\"custom\",\"permission_callback\":\"in_process\"},"
    "{\"service\":\"admin\",\"request_type\":\"remote\",\"permission_callback\":\"admin.authorize\"},"
    "{\"service\":\"search\",\"request_type\":\"q\",\"arg_types\":{\"limit\":{\"type\":\"num\","
    "\"default_value\":20},\"q\":{\"type\":\"string\",\"allow_nil\":true}},\"arg_orders\":\"map\"}"
    "]}";

typedef struct {
    gw_pipeline_config_t cfg; // settings
    gw_pipeline_t *p;         // under test
    ga_arena_t *a;            // per request
} fixture_t;

static ga_err_t
s_allow_bob(void *arg, const gw_identity_t *who, const gw_call_t *call, char *reason, size_t len)
{
    (void) arg;
    (void) call;
    if (who->user_id && strcmp(who->user_id, "bob") == 0) {
        return GA_OK;
    }
    snprintf(reason, len, "not bob");
    return GA_EDENIED;
}

static int
s_setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    f.p = gw_pipeline_new(&f.cfg);
    f.a = ga_arena_new(4096);
    ga_value_t body;
    assert_int_equal(ga_json_decode(s_snapshot, strlen(s_snapshot), f.a, &body, NULL, 0), GA_OK);
    assert_int_equal(gw_pipeline_apply(f.p, &body, true), 9);
    gw_pipeline_register_permission(f.p, "in_process", s_allow_bob, NULL);
    *state = &f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    gw_pipeline_destroy(&f->p);
    ga_arena_destroy(&f->a);
    return 0;
}

// Runs prepare on `json` as `who`; returns the error message, or NULL when dispatchable.
static const char *
s_run(fixture_t *f, const gw_identity_t *who, const char *json, gw_call_t *call)
{
    ga_value_t payload;
    assert_int_equal(ga_json_decode(json, strlen(json), f->a, &payload, NULL, 0), GA_OK);
    gw_response_t refusal;
    gw_call_t scratch;
    call = call ? call : &scratch;
    if (gw_pipeline_prepare(f->p, who, &payload, f->a, call, &refusal) == GA_OK) {
        return NULL;
    }
    assert_int_equal(refusal.kind, GW_KIND_ERROR);
    assert_false(refusal.success);
    return refusal.error;
}

static void
test_pipeline_resolves_versions_and_converts_args(void **state)
{
    fixture_t *f = *state;
    gw_identity_t anon = {0};
    gw_call_t call;
    assert_null(s_run(f, &anon,
                      "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":"
                      "\"get_user\",\"args\":{\"user_id\":\"1\"}}",
                      &call));
    assert_string_equal(call.version, "1.10.0"); // highest enabled, semver order
    assert_int_equal(call.timeout_ms, 7000);
    assert_string_equal(ga_map_get_str(&call.args, "user_id"), "1");
    assert_null(s_run(f, &anon,
                      "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":"
                      "\"get_user\",\"version\":\"1.0.0\",\"args\":{\"user_id\":\"1\"}}",
                      &call));
    assert_string_equal(call.version, "1.0.0");
    assert_string_equal(s_run(f, &anon,
                              "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":"
                              "\"get_user\",\"version\":\"2.0.0\"}",
                              NULL),
                        "Function disabled");
    // Defaults apply when absent, not when null; map-style args keep their names.
    assert_null(s_run(f, &anon,
                      "{\"request_id\":\"r\",\"service\":\"search\",\"request_type\":\"q\","
                      "\"args\":{\"q\":null}}",
                      &call));
    assert_int_equal(ga_map_get_int(&call.args, "limit", 0), 20);
    assert_int_equal(ga_map_get(&call.args, "q")->type, GA_NIL);
}

static void
test_pipeline_permission_modes(void **state)
{
    fixture_t *f = *state;
    const char *const admin_roles[] = {"viewer", "ops"};
    gw_identity_t anon = {0};
    gw_identity_t alice = {.user_id = "alice"};
    gw_identity_t ops = {.user_id = "o", .roles = admin_roles, .n_roles = 2};
    gw_identity_t bob = {.user_id = "bob"};
    const char *profile = "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":"
                          "\"get_profile\"}";
    assert_string_equal(s_run(f, &anon, profile, NULL), "Permission denied");
    assert_null(s_run(f, &alice, profile, NULL));
    assert_null(s_run(f, &alice,
                      "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":\"own\","
                      "\"args\":{\"user_id\":\"alice\"}}",
                      NULL));
    assert_string_equal(s_run(f, &alice,
                              "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":"
                              "\"own\",\"args\":{\"user_id\":\"bob\"},\"user_id\":\"bob\"}",
                              NULL),
                        "Permission denied");
    const char *del = "{\"request_id\":\"r\",\"service\":\"admin\",\"request_type\":\"delete\","
                      "\"user_roles\":[\"admin\"]}";
    assert_null(s_run(f, &ops, del, NULL));
    assert_string_equal(s_run(f, &alice, del, NULL), "Permission denied");
    const char *custom = "{\"request_id\":\"r\",\"service\":\"admin\",\"request_type\":\"custom\"}";
    assert_null(s_run(f, &bob, custom, NULL));
    assert_string_equal(s_run(f, &alice, custom, NULL), "Permission denied");
    // A worker callback is left to the caller, with the check call ready to send.
    gw_call_t call;
    gw_call_t check;
    assert_null(s_run(f, &alice,
                      "{\"request_id\":\"r\",\"service\":\"admin\",\"request_type\":\"remote\"}",
                      &call));
    assert_string_equal(call.permission_callback, "admin.authorize");
    assert_true(gw_pipeline_check_call(&alice, &call, f->a, &check));
    assert_string_equal(check.service, "admin");
    assert_string_equal(check.request_type, "authorize");
    assert_string_equal(ga_map_get_str(&check.args, "user_id"), "alice");
}

static void
test_pipeline_check_answers_allow_only_true(void **state)
{
    fixture_t *f = *state;
    const char *answers[] = {"{\"ok\":true,\"result\":true}", "{\"ok\":true,\"result\":{\"allow\":true}}",
                             "{\"ok\":true,\"result\":false}", "{\"ok\":true,\"result\":\"yes\"}",
                             "{\"ok\":false,\"error\":\"boom\"}", "{\"ok\":true}"};
    bool want[] = {true, true, false, false, false, false};
    for (size_t i = 0; i < 6; i++) {
        ga_value_t v;
        assert_int_equal(ga_json_decode(answers[i], strlen(answers[i]), f->a, &v, NULL, 0), GA_OK);
        assert_int_equal(gw_pipeline_check_allows(&v), want[i]);
    }
}

static void
test_pipeline_results_become_responses(void **state)
{
    fixture_t *f = *state;
    struct {
        const char *body;
        bool detail;
        const char *json;
    } cases[] = {
        {"{\"ok\":true,\"result\":{\"a\":1}}", false,
         "{\"request_id\":\"r\",\"success\":true,\"result\":{\"a\":1},\"error\":null,\"async\":"
         "false,\"has_more\":false,\"can_retry\":false,\"kind\":\"result\"}"},
        {"{\"ok\":false,\"error\":\"not_found\",\"code\":14}", false,
         "{\"request_id\":\"r\",\"success\":false,\"result\":null,\"error\":\"not_found\","
         "\"async\":false,\"has_more\":false,\"can_retry\":false,\"kind\":\"error\"}"},
        {"{\"ok\":false,\"error\":\"db down\",\"code\":15}", false,
         "{\"request_id\":\"r\",\"success\":false,\"result\":null,\"error\":\"Internal Server "
         "Error\",\"async\":false,\"has_more\":false,\"can_retry\":false,\"kind\":\"error\"}"},
        {"{\"ok\":false,\"error\":\"db down\",\"code\":15}", true,
         "{\"request_id\":\"r\",\"success\":false,\"result\":null,\"error\":\"db down\","
         "\"async\":false,\"has_more\":false,\"can_retry\":false,\"kind\":\"error\"}"},
        {"{\"ok\":false,\"error\":\"Worker lost\",\"code\":13,\"can_retry\":true}", false,
         "{\"request_id\":\"r\",\"success\":false,\"result\":null,\"error\":\"Worker lost\","
         "\"async\":false,\"has_more\":false,\"can_retry\":true,\"kind\":\"error\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->cfg.detail_errors = cases[i].detail;
        ga_value_t body;
        assert_int_equal(
            ga_json_decode(cases[i].body, strlen(cases[i].body), f->a, &body, NULL, 0), GA_OK);
        gw_response_t r;
        gw_pipeline_result(f->p, &body, "r", &r);
        ga_buf_t b;
        ga_buf_init(&b);
        gw_response_encode(&r, &b);
        ga_buf_append_char(&b, '\0');
        assert_string_equal((const char *) b.data, cases[i].json);
        ga_buf_fini(&b);
    }
    f->cfg.detail_errors = false;
}

static void
test_pipeline_snapshot_replaces_and_update_adds(void **state)
{
    fixture_t *f = *state;
    const char *snap = "{\"functions\":[{\"service\":\"x\",\"request_type\":\"y\"}]}";
    const char *upd = "{\"functions\":[{\"service\":\"x\",\"request_type\":\"z\"},{\"bad\":1}]}";
    ga_value_t v;
    assert_int_equal(ga_json_decode(snap, strlen(snap), f->a, &v, NULL, 0), GA_OK);
    assert_int_equal(gw_pipeline_apply(f->p, &v, true), 1);
    assert_int_equal(gw_pipeline_function_count(f->p), 1);
    assert_int_equal(ga_json_decode(upd, strlen(upd), f->a, &v, NULL, 0), GA_OK);
    assert_int_equal(gw_pipeline_apply(f->p, &v, false), 1); // the bad one is skipped
    assert_int_equal(gw_pipeline_function_count(f->p), 2);
    gw_identity_t anon = {0};
    assert_string_equal(s_run(f, &anon,
                              "{\"request_id\":\"r\",\"service\":\"user_service\",\"request_type\":"
                              "\"get_user\"}",
                              NULL),
                        "Unknown function");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline_resolves_versions_and_converts_args, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_permission_modes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_check_answers_allow_only_true, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_results_become_responses, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_snapshot_replaces_and_update_adds, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
