// SPDX-License-Identifier: MIT
// Telemetry: handlers attach to one event, a prefix at a dot boundary or all; detach by id or
// owner; an event nobody listens to costs one branch (its flag is off, measured below); the
// metrics kept from events render as Prometheus text with moving counters and buckets.
#include "ga_clock.h"
#include "ga_log.h"
#include "ga_metrics.h"
#include "ga_telemetry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <pthread.h>
#include <stdatomic.h>

#include <cmocka.h>

typedef struct {
    int calls;               // handler calls
    ga_event_t last;         // last event seen
    char service[64];        // its service
    int64_t duration_us;     // its duration
} seen_t;

static void
s_record(ga_event_t ev, const ga_tm_data_t *d, void *arg)
{
    seen_t *s = arg;
    s->calls++;
    s->last = ev;
    snprintf(s->service, sizeof s->service, "%s", d->service ? d->service : "");
    s->duration_us = d->duration_us;
}

static int
s_teardown(void **state)
{
    (void) state;
    ga_telemetry_detach_all();
    return 0;
}

static void
test_telemetry_names_are_unique_and_found(void **state)
{
    (void) state;
    for (int e = 0; e < GA_EV_COUNT; e++) {
        const char *name = ga_telemetry_name((ga_event_t) e);
        assert_non_null(name);
        assert_int_equal(strncmp(name, "genapi.", 7), 0);
        assert_int_equal(ga_telemetry_find(name), e);
    }
    assert_int_equal(ga_telemetry_find("genapi.nope"), -1);
    assert_string_equal(ga_telemetry_name(GA_EV_EXECUTOR_REQUEST_STOP),
                        "genapi.executor.request.stop");
    assert_null(ga_telemetry_name(GA_EV_COUNT));
}

static void
test_telemetry_no_handler_means_flag_off_and_no_call(void **state)
{
    (void) state;
    for (int e = 0; e < GA_EV_COUNT; e++) {
        assert_false(ga_telemetry_is_on((ga_event_t) e));
    }
    seen_t s = {0};
    int id;
    assert_int_equal(ga_telemetry_attach("genapi.executor.retry", "t", s_record, &s, &id), GA_OK);
    assert_int_equal(ga_telemetry_detach(id), GA_OK);
    GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = "svc");
    assert_int_equal(s.calls, 0);
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_RETRY));
}

static void
test_telemetry_exact_name_selects_only_that_event(void **state)
{
    (void) state;
    seen_t s = {0};
    int id;
    assert_int_equal(ga_telemetry_attach("genapi.executor.retry", "t", s_record, &s, &id), GA_OK);
    assert_true(ga_telemetry_is_on(GA_EV_EXECUTOR_RETRY));
    // "genapi.executor.retry" is also a prefix of "genapi.executor.retry.exhausted", at a dot.
    assert_true(ga_telemetry_is_on(GA_EV_EXECUTOR_RETRY_EXHAUSTED));
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP));
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "other");
    GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = "svc", .count = 2);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last, GA_EV_EXECUTOR_RETRY);
    assert_string_equal(s.service, "svc");
}

static void
test_telemetry_prefix_matches_at_dot_boundaries_only(void **state)
{
    (void) state;
    seen_t s = {0};
    int id;
    assert_int_equal(ga_telemetry_attach("genapi.rate_limiter.", NULL, s_record, &s, &id), GA_OK);
    for (int e = 0; e < GA_EV_COUNT; e++) {
        bool want = strncmp(ga_telemetry_name((ga_event_t) e), "genapi.rate_limiter.", 20) == 0;
        assert_int_equal(ga_telemetry_is_on((ga_event_t) e), want);
    }
    // "genapi.exec" is not a whole component: it selects nothing and is refused.
    int other;
    assert_int_equal(ga_telemetry_attach("genapi.exec", NULL, s_record, &s, &other),
                     GA_ENOTFOUND);
    assert_int_equal(ga_telemetry_attach("nope", NULL, s_record, &s, &other), GA_ENOTFOUND);
    GA_EMIT(GA_EV_RATE_LIMITER_EXCEEDED, .key = "user_id", .scope = "gateway", .count = 1);
    GA_EMIT(GA_EV_CONFIG_PUSH, .service = "x", .count = 1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last, GA_EV_RATE_LIMITER_EXCEEDED);
}

static void
test_telemetry_group_helpers_and_all(void **state)
{
    (void) state;
    seen_t ex = {0}, all = {0}, cfg = {0};
    int a, b, c;
    assert_int_equal(ga_telemetry_attach_executor("app", s_record, &ex, &a), GA_OK);
    assert_int_equal(ga_telemetry_attach_all("app", s_record, &all, &b), GA_OK);
    assert_int_equal(ga_telemetry_attach_config("other", s_record, &cfg, &c), GA_OK);
    for (int e = 0; e < GA_EV_COUNT; e++) {
        GA_EMIT((ga_event_t) e, .service = "s", .duration_us = 5);
    }
    assert_int_equal(all.calls, GA_EV_COUNT);
    assert_int_equal(ex.calls, 5);
    // pull.start, pull.stop, push, add, batch_add, delete, clear, disable, enable
    assert_int_equal(cfg.calls, 9);
    // detach by owner removes both "app" handlers and leaves "other".
    assert_int_equal(ga_telemetry_detach_owner("app"), 2);
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP));
    assert_true(ga_telemetry_is_on(GA_EV_CONFIG_ADD));
    assert_int_equal(ga_telemetry_detach(a), GA_ENOTFOUND);
    assert_int_equal(ga_telemetry_detach(c), GA_OK);
    assert_false(ga_telemetry_is_on(GA_EV_CONFIG_ADD));
}

static void
test_telemetry_handler_table_is_bounded(void **state)
{
    (void) state;
    seen_t s = {0};
    int id;
    for (int i = 0; i < GA_TELEMETRY_HANDLERS_MAX; i++) {
        assert_int_equal(ga_telemetry_attach("*", NULL, s_record, &s, &id), GA_OK);
    }
    assert_int_equal(ga_telemetry_attach("*", NULL, s_record, &s, &id), GA_EAGAIN);
    GA_EMIT(GA_EV_CONNECTION_JOIN, .reason = "x");
    assert_int_equal(s.calls, GA_TELEMETRY_HANDLERS_MAX);
}

static void
test_telemetry_format_names_measurements_and_metadata(void **state)
{
    (void) state;
    char line[256];
    ga_tm_data_t d = {.duration_us = 812, .service = "svc", .request_type = "fn",
                      .success = GA_TM_TRUE};
    GA_IGNORE(ga_telemetry_format(GA_EV_EXECUTOR_REQUEST_STOP, &d, line, sizeof line));
    assert_string_equal(line, "event=genapi.executor.request.stop duration_us=812 service=svc "
                              "request_type=fn success=true");
    char tiny[8];
    GA_IGNORE(ga_telemetry_format(GA_EV_EXECUTOR_REQUEST_STOP, &d, tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static char s_logged[512]; // last line the capturing sink saw

static void
s_sink(ga_log_level_t level, const char *line)
{
    (void) level;
    snprintf(s_logged, sizeof s_logged, "%s", line);
}

static void
test_telemetry_default_logger_writes_one_line_per_event(void **state)
{
    (void) state;
    ga_log_set_sink(s_sink);
    ga_log_set_level(GA_LOG_INFO);
    int id;
    assert_int_equal(ga_telemetry_attach_default_logger(&id), GA_OK);
    GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = "svc", .request_type = "fn", .count = 2);
    assert_non_null(strstr(s_logged, "telemetry event=genapi.executor.retry count=2 service=svc "
                                     "request_type=fn"));
    assert_int_equal(ga_telemetry_detach(id), GA_OK);
    s_logged[0] = '\0';
    GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = "svc", .count = 3);
    assert_string_equal(s_logged, "");
    ga_log_set_sink(NULL);
}

static int64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// The hot-path cost with nobody listening: one relaxed load and a branch per GA_EMIT. Measured
// (and printed) against an empty loop; asserted only loosely (timing under load varies), the
// exact claim asserted being that no handler ran and the flag stayed off.
static void
test_telemetry_unheard_emit_costs_a_branch(void **state)
{
    (void) state;
    enum { N = 10 * 1000 * 1000 };
    volatile int64_t sink = 0;
    int64_t t0 = s_now_ns();
    for (int i = 0; i < N; i++) {
        sink += i;
    }
    int64_t t1 = s_now_ns();
    for (int i = 0; i < N; i++) {
        sink += i;
        GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "svc", .duration_us = i);
    }
    int64_t t2 = s_now_ns();
    seen_t s = {0};
    int id;
    assert_int_equal(ga_telemetry_attach("genapi.executor.request.stop", NULL, s_record, &s, &id),
                     GA_OK);
    int64_t t3 = s_now_ns();
    for (int i = 0; i < N / 10; i++) {
        sink += i;
        GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "svc", .duration_us = i);
    }
    int64_t t4 = s_now_ns();
    assert_int_equal(s.calls, N / 10);
    printf("# telemetry: empty loop %.2f ns/iter, unheard GA_EMIT %.2f ns/iter, "
           "one handler %.2f ns/emit\n",
           (double) (t1 - t0) / N, (double) (t2 - t1) / N, (double) (t4 - t3) / (N / 10));
    assert_true(sink != 0);
}

static void
test_metrics_render_counts_requests_and_buckets(void **state)
{
    (void) state;
    ga_metrics_t *m = ga_metrics_new();
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "svc", .request_type = "fn",
            .duration_us = 3000, .success = GA_TM_TRUE);
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "svc", .request_type = "fn",
            .duration_us = 200000, .success = GA_TM_FALSE);
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_EXCEPTION, .service = "svc", .request_type = "fn",
            .reason = "rate_limited");
    GA_EMIT(GA_EV_RATE_LIMITER_EXCEEDED, .key = "user_id", .scope = "gateway", .count = 1);
    GA_EMIT(GA_EV_WORKER_POOL_CIRCUIT_OPEN, .node = "n\"1", .count = 5);
    ga_buf_t out;
    ga_buf_init(&out);
    ga_metrics_render(m, &out);
    ga_buf_append_char(&out, '\0');
    const char *t = (const char *) out.data;
    assert_non_null(strstr(t, "# TYPE genapi_requests_total counter\n"));
    assert_non_null(
        strstr(t, "genapi_requests_total{service=\"svc\",request_type=\"fn\",outcome=\"ok\"} 1\n"));
    assert_non_null(strstr(
        t, "genapi_requests_total{service=\"svc\",request_type=\"fn\",outcome=\"error\"} 1\n"));
    assert_non_null(strstr(t, "genapi_refusals_total{reason=\"rate_limited\"} 1\n"));
    assert_non_null(strstr(t, "genapi_request_duration_seconds_bucket{service=\"svc\","
                              "request_type=\"fn\",le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(t, "genapi_request_duration_seconds_bucket{service=\"svc\","
                              "request_type=\"fn\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(t, "genapi_request_duration_seconds_bucket{service=\"svc\","
                              "request_type=\"fn\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(
        t, "genapi_request_duration_seconds_count{service=\"svc\",request_type=\"fn\"} 2\n"));
    assert_non_null(
        strstr(t, "genapi_rate_limit_exceeded_total{key=\"user_id\",scope=\"gateway\"} 1\n"));
    assert_non_null(strstr(t, "genapi_circuit_open{node=\"n\\\"1\"} 1\n"));
    GA_EMIT(GA_EV_WORKER_POOL_CIRCUIT_CLOSE, .node = "n\"1");
    ga_buf_reset(&out);
    ga_metrics_render(m, &out);
    ga_buf_append_char(&out, '\0');
    assert_non_null(strstr((const char *) out.data, "genapi_circuit_open{node=\"n\\\"1\"} 0\n"));
    ga_buf_fini(&out);
    ga_metrics_destroy(&m);
    assert_null(m);
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP));
}

// Label values are escaped and cut at 200 bytes, and each event's count moves with every
// emit (its series is found once and kept).
static void
test_metrics_labels_escaped_and_events_counted(void **state)
{
    (void) state;
    ga_metrics_t *m = ga_metrics_new();
    char long_node[300];
    memset(long_node, 'x', sizeof long_node - 1);
    long_node[sizeof long_node - 1] = '\0';
    long_node[198] = '"';
    for (int i = 0; i < 3; i++) {
        GA_EMIT(GA_EV_WORKER_POOL_CIRCUIT_OPEN, .node = "a\\b\nc\"d", .count = 5);
    }
    GA_EMIT(GA_EV_WORKER_POOL_CIRCUIT_OPEN, .node = long_node, .count = 5);
    ga_buf_t out;
    ga_buf_init(&out);
    ga_metrics_render(m, &out);
    ga_buf_append_char(&out, '\0');
    const char *t = (const char *) out.data;
    assert_non_null(strstr(t, "genapi_circuit_opened_total{node=\"a\\\\b\\nc\\\"d\"} 3\n"));
    char want[512];
    snprintf(want, sizeof want, "genapi_circuit_opened_total{node=\"%.198s\\\"x\"} 1\n", long_node);
    assert_non_null(strstr(t, want));
    assert_non_null(strstr(
        t, "genapi_telemetry_events_total{event=\"genapi.worker_pool.circuit.open\"} 4\n"));
    ga_buf_fini(&out);
    ga_metrics_destroy(&m);
}

// Requests of many functions, interleaved (more functions than the handler remembers, some
// names too long to remember), each counted in its own series.
static void
test_metrics_requests_of_many_functions_counted_apart(void **state)
{
    (void) state;
    ga_metrics_t *m = ga_metrics_new();
    char svc[128];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 150; i++) {
            snprintf(svc, sizeof svc, i % 10 == 0 ? "s%d-%0100d" : "s%d", i, 0);
            GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = svc, .request_type = "f",
                    .duration_us = 3000, .success = round == 1 ? GA_TM_FALSE : GA_TM_TRUE);
        }
    }
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .duration_us = 1, .success = GA_TM_TRUE);
    ga_buf_t out;
    ga_buf_init(&out);
    ga_metrics_render(m, &out);
    ga_buf_append_char(&out, '\0');
    const char *t = (const char *) out.data;
    char want[512];
    for (int i = 0; i < 150; i++) {
        char name[128];
        snprintf(name, sizeof name, i % 10 == 0 ? "s%d-%0100d" : "s%d", i, 0);
        snprintf(want, sizeof want,
                 "genapi_requests_total{service=\"%s\",request_type=\"f\",outcome=\"ok\"} 2\n", name);
        assert_non_null(strstr(t, want));
        snprintf(want, sizeof want,
                 "genapi_requests_total{service=\"%s\",request_type=\"f\",outcome=\"error\"} 1\n",
                 name);
        assert_non_null(strstr(t, want));
        snprintf(want, sizeof want,
                 "genapi_request_duration_seconds_count{service=\"%s\",request_type=\"f\"} 3\n", name);
        assert_non_null(strstr(t, want));
    }
    assert_non_null(
        strstr(t, "genapi_requests_total{service=\"\",request_type=\"\",outcome=\"ok\"} 1\n"));
    ga_buf_fini(&out);
    ga_metrics_destroy(&m);
}

static void
test_metrics_series_are_bounded(void **state)
{
    (void) state;
    ga_metrics_t *m = ga_metrics_new();
    char svc[32];
    for (int i = 0; i < GA_METRICS_SERIES_MAX + 100; i++) {
        snprintf(svc, sizeof svc, "s%d", i);
        GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = svc, .request_type = "f", .count = 1);
    }
    ga_buf_t out;
    ga_buf_init(&out);
    ga_metrics_render(m, &out);
    ga_buf_append_char(&out, '\0');
    assert_non_null(strstr((const char *) out.data, "genapi_retries_total{overflow=\"true\"}"));
    ga_buf_fini(&out);
    ga_metrics_destroy(&m);
}


// Emitting takes no lock (a sequence lock over a published copy): while other threads attach
// and detach, every handler an emit calls gets its own argument, never another slot's.
static atomic_long s_wrong, s_heard;
static int s_tag_a, s_tag_b;

static void
s_handler_a(ga_event_t ev, const ga_tm_data_t *d, void *arg)
{
    (void) ev;
    (void) d;
    atomic_fetch_add(arg == &s_tag_a ? &s_heard : &s_wrong, 1);
}

static void
s_handler_b(ga_event_t ev, const ga_tm_data_t *d, void *arg)
{
    (void) ev;
    (void) d;
    atomic_fetch_add(arg == &s_tag_b ? &s_heard : &s_wrong, 1);
}

static atomic_bool s_stop;

static void *
s_emitter(void *arg)
{
    (void) arg;
    while (!atomic_load(&s_stop)) {
        GA_EMIT(GA_EV_EXECUTOR_RETRY, .service = "s", .count = 1);
    }
    return NULL;
}

static void
test_telemetry_emit_during_attach_and_detach_calls_matching_handlers(void **state)
{
    (void) state;
    atomic_store(&s_stop, false);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, s_emitter, NULL), 0);
    }
    for (int round = 0; round < 3000; round++) {
        int a = 0, b = 0;
        // Alternate which slot each handler takes, so a stale read would mix them up.
        if (round % 2) {
            assert_int_equal(ga_telemetry_attach_executor("t", s_handler_a, &s_tag_a, &a), GA_OK);
            assert_int_equal(ga_telemetry_attach_executor("t", s_handler_b, &s_tag_b, &b), GA_OK);
        } else {
            assert_int_equal(ga_telemetry_attach_executor("t", s_handler_b, &s_tag_b, &b), GA_OK);
            assert_int_equal(ga_telemetry_attach_executor("t", s_handler_a, &s_tag_a, &a), GA_OK);
        }
        assert_int_equal(ga_telemetry_detach(a), GA_OK);
        assert_int_equal(ga_telemetry_detach(b), GA_OK);
    }
    atomic_store(&s_stop, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(atomic_load(&s_wrong), 0);
    assert_true(atomic_load(&s_heard) > 0);
}

#define T(name) cmocka_unit_test_teardown(name, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_telemetry_names_are_unique_and_found),
        T(test_telemetry_no_handler_means_flag_off_and_no_call),
        T(test_telemetry_exact_name_selects_only_that_event),
        T(test_telemetry_prefix_matches_at_dot_boundaries_only),
        T(test_telemetry_group_helpers_and_all),
        T(test_telemetry_handler_table_is_bounded),
        T(test_telemetry_format_names_measurements_and_metadata),
        T(test_telemetry_default_logger_writes_one_line_per_event),
        T(test_telemetry_unheard_emit_costs_a_branch),
        T(test_metrics_render_counts_requests_and_buckets),
        T(test_metrics_series_are_bounded),
        T(test_metrics_labels_escaped_and_events_counted),
        T(test_metrics_requests_of_many_functions_counted_apart),
        T(test_telemetry_emit_during_attach_and_detach_calls_matching_handlers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
