// SPDX-License-Identifier: MIT
// The walkthrough's section 15 ("Testing") in C, with the executor (executor/include/genapi/
// testing.h): a service author's tests of user_service's functions, called in-process the way a
// client calls them. docs/testing.md shows this file; every example in it runs under `make test`.
// Then async and stream responses, collected in order (a stream from another thread).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <genapi/testing.h>

#include <pthread.h>

// --- The service under test: user_service, as its worker declares it -------------------------

static void
s_get_user(wk_request_t *req, void *ctx)
{
    (void) ctx;
    if (strcmp(wk_arg_str(req, "user_id"), "1") == 0) {
        wk_reply(req, wk_map(req, "id", wk_str(req, "1"), "name", wk_str(req, "Alice"), NULL));
        return;
    }
    wk_reply_error(req, "not_found");
}

static void
s_get_user_profile(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "user_id", wk_str(req, wk_arg_str(req, "user_id")), NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "get_user", .args = "user_id:string", .handler = s_get_user},
    {.request_type = "get_user_profile",
     .args = "user_id:string",
     .check_permission = "arg:user_id",
     .handler = s_get_user_profile},
};

static const wk_service_t s_user_service = {
    .service = "user_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

// Each test gets a fresh executor with user_service registered.
static int
s_setup(void **state)
{
    char err[256];
    ex_executor_t *ex = ex_executor_new(NULL);
    assert_int_equal(ex_executor_register(ex, &s_user_service, err, sizeof err), GA_OK);
    *state = ex;
    return 0;
}

static int
s_teardown(void **state)
{
    ex_executor_t *ex = *state;
    ex_executor_destroy(&ex);
    return 0;
}

// --- Section 15: "Test the Executor directly" -------------------------------------------------

// [get_user returns user data]
static void
test_get_user_returns_data(void **state)
{
    ex_request_t req = {.request_id = "test_1",
                        .service = "user_service",
                        .request_type = "get_user",
                        .args = "{\"user_id\": \"1\"}"};
    ex_response_t *resp = ex_test_execute(*state, &req);
    EX_ASSERT_SUCCESS(resp);
    assert_string_equal(resp->request_id, "test_1");
    assert_string_equal(resp->result, "{\"id\":\"1\",\"name\":\"Alice\"}");
    ex_response_free(&resp);
}

// [get_user returns an error for an unknown user]
static void
test_get_user_unknown(void **state)
{
    ex_request_t req = {.request_id = "test_2",
                        .service = "user_service",
                        .request_type = "get_user",
                        .args = "{\"user_id\": \"nonexistent\"}"};
    ex_response_t *resp = ex_test_execute(*state, &req);
    EX_ASSERT_ERROR(resp, "not_found");
    assert_string_equal(resp->request_id, "test_2");
    ex_response_free(&resp);
}

// [a missing argument is refused]
static void
test_missing_argument(void **state)
{
    ex_request_t req = {.request_id = "test_1",
                        .service = "user_service",
                        .request_type = "get_user",
                        .args = "{}"}; // missing "user_id"
    ex_response_t *resp = ex_test_execute(*state, &req);
    EX_ASSERT_ERROR(resp, "Missing required argument: user_id");
    ex_response_free(&resp);
}

// [permission denied when the user id does not match]
static void
test_permission_denied(void **state)
{
    ex_request_t req = {.request_id = "test_1",
                        .service = "user_service",
                        .request_type = "get_user_profile",
                        .user_id = "user_123",
                        .args = "{\"user_id\": \"user_999\"}"};
    ex_response_t *resp = ex_test_execute(*state, &req);
    EX_ASSERT_ERROR(resp, "Permission denied");
    ex_response_free(&resp);
    // The caller's own profile is allowed.
    req.args = "{\"user_id\": \"user_123\"}";
    resp = ex_test_execute(*state, &req);
    EX_ASSERT_SUCCESS(resp);
    ex_response_free(&resp);
}

// [the N+1th call is rate limited]
static void
test_rate_limited(void **state)
{
    enum { MAX = 100 };
    char err[256];
    assert_int_equal(ex_executor_rate_limits(*state,
                                             "{\"enabled\": true, \"global_limits\": [{\"key\": "
                                             "\"user_id\", \"max_requests\": 100, "
                                             "\"window_ms\": 60000}]}",
                                             err, sizeof err),
                     GA_OK);
    ex_request_t req = {.request_id = "test_1",
                        .service = "user_service",
                        .request_type = "get_user",
                        .user_id = "user_123",
                        .args = "{\"user_id\": \"1\"}"};
    for (int i = 0; i < MAX; i++) {
        ex_response_t *resp = ex_test_execute(*state, &req);
        EX_ASSERT_SUCCESS(resp);
        ex_response_free(&resp);
    }
    ex_response_t *resp = ex_test_execute(*state, &req);
    EX_ASSERT_ERROR(resp, "Rate limit exceeded");
    assert_true(resp->can_retry);
    assert_true(resp->retry_after_ms > 0);
    ex_response_free(&resp);
}
// [end]

// --- Async and stream responses ---------------------------------------------------------------

static void
s_async_job(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "job", wk_int(req, wk_arg_int(req, "n", 0) * 2), NULL));
}

// Streams three chunks then ends, from a thread of its own after the handler returned.
static void *
s_streamer(void *arg)
{
    wk_stream_t *s = arg;
    for (int i = 1; i <= 3; i++) {
        wk_request_t *c = wk_stream_ctx(s);
        assert_int_equal(wk_stream_send(s, wk_map(c, "i", wk_int(c, i), NULL)), GA_OK);
    }
    wk_request_t *c = wk_stream_ctx(s);
    assert_int_equal(wk_stream_send_last(s, wk_str(c, "done")), GA_OK);
    return NULL;
}

static pthread_t s_thread;

static void
s_stream_job(wk_request_t *req, void *ctx)
{
    (void) ctx;
    assert_int_equal(pthread_create(&s_thread, NULL, s_streamer, wk_request_stream(req)), 0);
}

static const wk_function_t s_job_functions[] = {
    {.request_type = "double", .args = "n:num", .response_type = "async",
     .handler = s_async_job},
    {.request_type = "ticks", .response_type = "stream", .handler = s_stream_job},
};

static const wk_service_t s_job_service = {
    .service = "job_service",
    .functions = s_job_functions,
    .n_functions = 2,
};

static void
test_async_ack_then_result(void **state)
{
    char err[256];
    ga_err_t rc = ex_executor_register(*state, &s_job_service, err, sizeof err);
    if (rc != GA_OK) {
        fail_msg("%s", err);
    }
    ex_request_t req = {.request_id = "a1",
                        .service = "job_service",
                        .request_type = "double",
                        .args = "{\"n\": 21}"};
    ex_calls_t *calls = ex_test_call(*state, &req);
    assert_true(ex_test_wait(calls, 5000));
    assert_int_equal(ex_test_count(calls), 2);
    assert_string_equal(ex_test_response(calls, 0)->json,
                        "{\"request_id\":\"a1\",\"success\":true,\"result\":null,\"error\":null,"
                        "\"async\":true,\"has_more\":false,\"can_retry\":false,\"kind\":\"ack\"}");
    assert_string_equal(ex_test_response(calls, 1)->json,
                        "{\"request_id\":\"a1\",\"success\":true,\"result\":{\"job\":42},"
                        "\"error\":null,\"async\":false,\"has_more\":false,\"can_retry\":false,"
                        "\"kind\":\"result\"}");
    ex_test_free(&calls);
}

static void
test_stream_in_order_from_another_thread(void **state)
{
    char err[256];
    ga_err_t rc = ex_executor_register(*state, &s_job_service, err, sizeof err);
    if (rc != GA_OK) {
        fail_msg("%s", err);
    }
    ex_request_t req = {.request_id = "s1", .service = "job_service", .request_type = "ticks"};
    ex_calls_t *calls = ex_test_call(*state, &req);
    assert_true(ex_test_wait(calls, 5000));
    pthread_join(s_thread, NULL);
    static const char *kinds[] = {"ack", "chunk", "chunk", "chunk", "last"};
    static const char *results[] = {"null", "{\"i\":1}", "{\"i\":2}", "{\"i\":3}", "\"done\""};
    assert_int_equal(ex_test_count(calls), 5);
    for (size_t i = 0; i < 5; i++) {
        const ex_response_t *r = ex_test_response(calls, i);
        assert_string_equal(r->kind, kinds[i]);
        assert_string_equal(r->result, results[i]);
        assert_true(r->async);
        assert_int_equal(r->has_more, i < 4);
    }
    ex_test_free(&calls);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_get_user_returns_data),
        T(test_get_user_unknown),
        T(test_missing_argument),
        T(test_permission_denied),
        T(test_rate_limited),
        T(test_async_ack_then_result),
        T(test_stream_in_order_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
