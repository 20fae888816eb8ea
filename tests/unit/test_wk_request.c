// SPDX-License-Identifier: MIT
// The worker library's REQUEST handling without threads or sockets (wk_table_build, then
// wk_request_run on a body as the broker sends it): malformed bodies found by fuzz_worker_cmd
// (tests/fuzz) are answered with an error and never reach a handler or abort the worker.
#include "wk_internal.h"

#include "ga_json.h"
#include "ga_wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int s_stream_calls; // stream handler runs

static void
s_stream(wk_request_t *req, void *ctx)
{
    (void) ctx;
    s_stream_calls++;
    wk_stream_t *s = wk_request_stream(req);
    atomic_store(&s->cancelled, true); // as the broker's CANCEL would: nothing is sent
    assert_int_equal(wk_stream_complete(s), GA_ECLOSED); // and the stream is freed
}

// Answers with a list nested args.depth levels deep.
static void
s_deep(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *v = wk_int(req, 1);
    for (int64_t i = 0; i < wk_arg_int(req, "depth", 0); i++) {
        v = wk_list(req, v, NULL);
    }
    wk_reply(req, v);
}

static const wk_function_t s_functions[] = {
    {.request_type = "feed", .response_type = "stream", .timeout_ms = -1, .handler = s_stream},
    {.request_type = "deep", .args = "depth:num", .handler = s_deep},
};

static const wk_service_t s_service = {
    .service = "svc", .node = "svc@test", .functions = s_functions, .n_functions = 2};

// Runs the REQUEST given as JSON (one map, args included) and returns the decoded REPLY (one
// map, the result included; nil when none).
static ga_value_t
s_run(wk_worker_t *w, ga_arena_t *a, const char *json)
{
    ga_value_t body;
    assert_int_equal(ga_json_decode(json, strlen(json), a, &body, NULL, 0), GA_OK);
    ga_buf_t in, out;
    ga_buf_init(&in);
    ga_buf_init(&out);
    wk_request_encode(&in, &body); // envelope, then the args as the payload
    wk_request_run(w, in.data, in.len, a, &out);
    ga_value_t reply = ga_nil();
    if (out.len) {
        assert_int_equal(wk_reply_decode(out.data, out.len, a, &reply), GA_OK);
    }
    ga_buf_fini(&out);
    ga_buf_fini(&in);
    return reply;
}

// Found by fuzz_worker_cmd: a stream REQUEST without an id (or with id 0) opened a stream
// under id 0, which the stream table reserves: ga_idmap_put asserted and the worker aborted.
// A stream REQUEST whose id is not a positive integer is now refused (the broker's ids are).
static void
test_stream_request_without_a_positive_id_is_refused(void **state)
{
    (void) state;
    char err[256];
    wk_worker_t *w = wk_worker_new(&s_service, NULL);
    assert_int_equal(wk_table_build(w, err, sizeof err), GA_OK);
    ga_arena_t *a = ga_arena_new(4096);
    const char *bodies[] = {
        "{\"service\":\"svc\",\"request_type\":\"feed\",\"stream_topic\":\"s.gw1.7\",\"args\":{}}",
        "{\"id\":0,\"request_type\":\"feed\",\"stream_topic\":\"s.gw1.7\"}",
        "{\"id\":-4,\"request_type\":\"feed\",\"stream_topic\":\"s.gw1.7\"}",
        "{\"id\":\"7\",\"request_type\":\"feed\",\"stream_topic\":\"s.gw1.7\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        ga_value_t reply = s_run(w, a, bodies[i]);
        assert_int_equal(reply.type, GA_MAP);
        assert_false(ga_map_get(&reply, "ok")->u.b);
        assert_int_equal(ga_map_get_int(&reply, "code", 0), GA_EPROTO);
        ga_arena_reset(a);
    }
    assert_int_equal(s_stream_calls, 0);
    // A well-formed one still runs (its handler cancels and ends the stream).
    ga_value_t reply = s_run(w, a, "{\"id\":9,\"request_type\":\"feed\",\"stream_topic\":\"s.g.9\"}");
    assert_int_equal(reply.type, GA_NIL);
    assert_int_equal(s_stream_calls, 1);
    ga_arena_destroy(&a);
    wk_worker_destroy(&w);
}

// Found by fuzz_worker_cmd: a handler's result nested deeper than the protocol allows (here its
// arguments echoed inside a few more levels) was encoded into a REPLY that the broker's decoder
// refuses (GA_ETOOBIG), so the answer was dropped and the client waited for the timeout. Such a
// result is now answered at once with an internal error; one level less still goes through.
static void
test_reply_nested_too_deep_is_an_internal_error(void **state)
{
    (void) state;
    char err[256];
    wk_worker_t *w = wk_worker_new(&s_service, NULL);
    assert_int_equal(wk_table_build(w, err, sizeof err), GA_OK);
    ga_arena_t *a = ga_arena_new(4096);
    // The REPLY map is one level; its result may have GA_WIRE_MAX_DEPTH - 1 more.
    ga_value_t reply = s_run(w, a, "{\"id\":5,\"request_type\":\"deep\",\"args\":{\"depth\":31}}");
    assert_true(ga_map_get(&reply, "ok")->u.b);
    ga_arena_reset(a);
    reply = s_run(w, a, "{\"id\":6,\"request_type\":\"deep\",\"args\":{\"depth\":32}}");
    assert_int_equal(reply.type, GA_MAP);
    assert_int_equal(ga_map_get_int(&reply, "id", 0), 6);
    assert_false(ga_map_get(&reply, "ok")->u.b);
    assert_int_equal(ga_map_get_int(&reply, "code", 0), GA_EINTERNAL);
    ga_arena_destroy(&a);
    wk_worker_destroy(&w);
}

// The args arrive as the REQUEST's payload frame, decoded only by the worker (the broker passes
// the bytes on): a malformed one is answered with an error naming it, under the call's id,
// never dropped (the client would wait for its timeout) and never given to the handler.
static void
test_malformed_payload_is_answered_with_an_error(void **state)
{
    (void) state;
    char err[256];
    wk_worker_t *w = wk_worker_new(&s_service, NULL);
    assert_int_equal(wk_table_build(w, err, sizeof err), GA_OK);
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t env;
    const char *json = "{\"id\":9,\"request_type\":\"deep\"}";
    assert_int_equal(ga_json_decode(json, strlen(json), a, &env, NULL, 0), GA_OK);
    const uint8_t *bad[] = {(const uint8_t *) "\xdd\xff\xff\xff\xff", // 2^32-1 items claimed
                            (const uint8_t *) "\x81\xa5" "depth" "\x01\xc0"};  // a trailing byte
    size_t lens[] = {5, 9};
    for (size_t i = 0; i < 2; i++) {
        ga_buf_t in, out;
        ga_buf_init(&in);
        ga_buf_init(&out);
        ga_wire_encode(&in, &env);
        ga_buf_append(&in, bad[i], lens[i]);
        wk_request_run(w, in.data, in.len, a, &out);
        ga_value_t reply;
        assert_int_equal(wk_reply_decode(out.data, out.len, a, &reply), GA_OK);
        assert_int_equal(ga_map_get_int(&reply, "id", 0), 9);
        assert_false(ga_map_get(&reply, "ok")->u.b);
        assert_int_equal(ga_map_get_int(&reply, "code", 0), GA_EINVAL);
        assert_non_null(strstr(ga_map_get_str(&reply, "error"), "args"));
        ga_buf_fini(&in);
        ga_buf_fini(&out);
    }
    // A well-formed one reaches the handler, and its result comes back as the payload.
    ga_buf_t in, out;
    ga_buf_init(&in);
    ga_buf_init(&out);
    ga_wire_encode(&in, &env);
    ga_buf_append(&in, "\x81\xa5" "depth" "\x01", 8);
    wk_request_run(w, in.data, in.len, a, &out);
    size_t n = 0;
    assert_int_equal(ga_wire_scan_first(out.data, out.len, &n), GA_OK);
    assert_int_equal(out.len - n, 2); // [1]
    assert_memory_equal(out.data + n, "\x91\x01", 2);
    ga_buf_fini(&in);
    ga_buf_fini(&out);
    ga_arena_destroy(&a);
    wk_worker_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_request_without_a_positive_id_is_refused),
        cmocka_unit_test(test_reply_nested_too_deep_is_an_internal_error),
        cmocka_unit_test(test_malformed_payload_is_answered_with_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
