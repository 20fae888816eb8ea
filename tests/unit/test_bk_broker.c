// SPDX-License-Identifier: MIT
// The broker in-process on loopback TCP, driven by raw DEALER sockets acting as a worker and a
// gateway: routing, id mapping, liveness, deadlines, push tokens, registry updates (sequence
// numbers, removals, owed snapshots), the re-registration window, hostile input, and streams
// through the XSUB/XPUB proxy (idle deadlines, a full gateway queue, a lost gateway), and
// batches (docs/protocol.md, "Batches") to peers that read them and never to others.
#include "bk_broker.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_json.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <cmocka.h>

typedef struct {
    bk_config_t cfg;      // broker settings
    bk_broker_t *broker;  // broker under test
    pthread_t thread;     // runs bk_broker_run
    void *zctx;           // context for the fake peers
    void *worker;         // DEALER posing as a worker
    void *gateway;        // DEALER posing as a gateway
    ga_arena_t *arena;    // decoded messages
    ga_proto_msg_t msg;   // last message received
    ga_buf_t buf;         // encode scratch
    void *keep[4];        // fake peers s_expect keeps alive (HEARTBEAT every 100 ms)
    int n_keep;           // entries in keep
} fixture_t;

static void *
s_run(void *arg)
{
    fixture_t *f = arg;
    assert_int_equal(bk_broker_run(f->broker), GA_OK);
    return NULL;
}

static void *
s_dealer(fixture_t *f, const char *endpoint)
{
    void *s = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    return s;
}

static fixture_t *
s_start_hwm(const char *token, int64_t heartbeat_ms, int64_t hwm)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->cfg = (bk_config_t){.worker_endpoint = "tcp://127.0.0.1:*",
                           .gateway_endpoint = "tcp://127.0.0.1:*",
                           .heartbeat_ms = heartbeat_ms,
                           .push_token = token,
                           .admin_token = "test-admin-token",
                           .admin_actions = "status, functions,stop_stream",
                           .hwm = hwm,
                           .stream_in_endpoint = "tcp://127.0.0.1:*",
                           .stream_out_endpoint = "tcp://127.0.0.1:*",
                           .breaker_threshold = 5,
                           .breaker_cooldown_ms = 30000};
    f->broker = bk_broker_new(&f->cfg);
    assert_int_equal(bk_broker_bind(f->broker), GA_OK);
    assert_int_equal(pthread_create(&f->thread, NULL, s_run, f), 0);
    f->zctx = zmq_ctx_new();
    f->worker = s_dealer(f, bk_broker_worker_endpoint(f->broker));
    f->gateway = s_dealer(f, bk_broker_gateway_endpoint(f->broker));
    f->arena = ga_arena_new(4096);
    ga_proto_msg_init(&f->msg);
    ga_buf_init(&f->buf);
    return f;
}

static fixture_t *
s_start(const char *token, int64_t heartbeat_ms)
{
    return s_start_hwm(token, heartbeat_ms, 1000);
}

static bk_stats_t
s_stop(fixture_t *f)
{
    bk_broker_stop(f->broker);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    bk_stats_t stats = bk_broker_stats(f->broker);
    bk_broker_destroy(&f->broker);
    zmq_close(f->worker);
    zmq_close(f->gateway);
    zmq_ctx_term(f->zctx);
    ga_arena_destroy(&f->arena);
    ga_proto_msg_fini(&f->msg);
    ga_buf_fini(&f->buf);
    free(f);
    return stats;
}

static void
s_send_json(fixture_t *f, void *sock, int cmd, const char *json)
{
    ga_value_t v;
    assert_int_equal(ga_json_decode(json, strlen(json), f->arena, &v, NULL, 0), GA_OK);
    // In the frame layout: a CALL's args and a REPLY's result as the payload frame.
    ga_buf_t payload;
    ga_buf_init(&payload);
    assert_int_equal(ga_proto_send_split(sock, NULL, 0, cmd, &v, &f->buf, &payload), GA_OK);
    ga_buf_fini(&payload);
}

// Waits up to `ms` for a message with command `cmd` on `sock`, skipping heartbeats.
static bool
s_expect(fixture_t *f, void *sock, int cmd, int ms)
{
    int64_t deadline = ga_clock_ms() + ms;
    int64_t next_keep = 0;
    while (ga_clock_ms() < deadline) {
        if (f->n_keep && ga_clock_ms() >= next_keep) {
            next_keep = ga_clock_ms() + 100;
            for (int i = 0; i < f->n_keep; i++) {
                s_send_json(f, f->keep[i], GA_CMD_HEARTBEAT, "{}");
            }
        }
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        long wait = (long) (deadline - ga_clock_ms());
        if (zmq_poll(&item, 1, f->n_keep && wait > 50 ? 50 : wait) <= 0) {
            continue;
        }
        ga_arena_reset(f->arena);
        if (ga_proto_recv(sock, false, &f->msg, f->arena) != GA_OK) {
            continue;
        }
        // Envelopes never carry the payload's value; merged here so that tests read one map.
        const char *key = ga_proto_payload_key(f->msg.cmd);
        if (key) {
            assert_null(ga_map_get(&f->msg.value, key));
            assert_int_equal(ga_proto_payload_merge(&f->msg, f->arena), GA_OK);
        }
        if (f->msg.cmd == cmd) {
            return true;
        }
    }
    return false;
}

static const char *s_register =
    "{\"node\":\"test@here\",\"service\":\"test_service\",\"config_version\":\"1\","
    "\"functions\":[{\"service\":\"test_service\",\"request_type\":\"echo\","
    "\"arg_types\":{\"value\":\"any\"},\"timeout\":300},"
    "{\"service\":\"test_service\",\"request_type\":\"bad\",\"timeout\":5}]}";

static void
s_register_worker(fixture_t *f)
{
    s_send_json(f, f->worker, GA_CMD_REGISTER, s_register);
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    const ga_value_t *ok = ga_map_get(&f->msg.value, "ok");
    assert_non_null(ok);
    assert_true(ok->u.b);
}

static void
test_broker_routes_call_and_maps_ids_both_ways(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    s_register_worker(f);
    // The refused config is reported with a reason naming the field.
    const ga_value_t *failed = ga_map_get(&f->msg.value, "failed");
    assert_int_equal(failed->len, 1);
    assert_non_null(strstr(ga_map_get_str(&failed->u.items[0], "reason"), "timeout"));

    s_send_json(f, f->gateway, GA_CMD_HELLO, "{\"name\":\"gw\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_SNAPSHOT, 2000));
    assert_int_equal(ga_map_get(&f->msg.value, "functions")->len, 1);

    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":41,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"args\":{\"value\":7},\"request_id\":\"r1\"}");
    assert_true(s_expect(f, f->worker, GA_CMD_REQUEST, 2000));
    int64_t broker_id = ga_map_get_int(&f->msg.value, "id", 0);
    assert_true(broker_id > 0);
    assert_string_equal(ga_map_get_str(&f->msg.value, "request_id"), "r1");

    char reply[128];
    snprintf(reply, sizeof reply, "{\"id\":%lld,\"ok\":true,\"result\":{\"value\":7}}",
             (long long) broker_id);
    s_send_json(f, f->worker, GA_CMD_REPLY, reply);
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 41);
    assert_int_equal(ga_map_get_int(ga_map_get(&f->msg.value, "result"), "value", 0), 7);

    // The same reply again is late: dropped and counted, never forwarded twice.
    s_send_json(f, f->worker, GA_CMD_REPLY, reply);
    assert_false(s_expect(f, f->gateway, GA_CMD_RESULT, 200));
    bk_stats_t stats = s_stop(f);
    assert_int_equal(stats.calls, 1);
    assert_int_equal(stats.late_replies, 1);
}


// Receives `n` messages of command `cmd` on `sock` (2 s at most), items of batches included;
// returns how many libzmq messages they came in, and marks each item's id in seen[id].
static int
s_expect_items(fixture_t *f, void *sock, int cmd, int n, int64_t id_base, int *seen)
{
    int messages = 0;
    int got = 0;
    int64_t deadline = ga_clock_ms() + 2000;
    while (got < n && ga_clock_ms() < deadline) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (f->msg.batch_socket == NULL && zmq_poll(&item, 1, 50) <= 0) {
            continue;
        }
        ga_arena_reset(f->arena);
        assert_int_equal(ga_proto_recv(sock, false, &f->msg, f->arena), GA_OK);
        if (f->msg.cmd != cmd) {
            assert_null(f->msg.batch_socket); // a heartbeat: never batched
            continue;
        }
        int64_t id = ga_map_get_int(&f->msg.value, "id", 0) - id_base;
        assert_true(id >= 0 && id < n);
        seen[id]++;
        got++;
        if (f->msg.batch_socket == NULL) {
            messages++; // the message's last item
        }
    }
    assert_int_equal(got, n);
    return messages;
}

// Sends `n` CALLs of test_service.echo (ids id_base..id_base+n-1) from the fake gateway as one
// batch, and checks that they went as one message.
static void
s_send_calls(fixture_t *f, int n, int id_base, ga_buf_t *payload)
{
    ga_proto_batch_t out;
    ga_proto_batch_init(&out, f->gateway, 64);
    for (int i = 0; i < n; i++) {
        char json[200];
        snprintf(json, sizeof json,
                 "{\"id\":%d,\"service\":\"test_service\",\"request_type\":\"echo\","
                 "\"args\":{\"value\":%d},\"request_id\":\"r%d\"}",
                 id_base + i, i, id_base + i);
        ga_value_t v;
        assert_int_equal(ga_json_decode(json, strlen(json), f->arena, &v, NULL, 0), GA_OK);
        assert_int_equal(
            ga_proto_batch_add_split(&out, NULL, 0, GA_CMD_CALL, &v, &f->buf, payload), GA_OK);
    }
    ga_proto_batch_fini(&out);
    assert_int_equal(out.messages, 1);
}

// A burst of calls through a gateway and a worker that both read batches: the CALLs come in one
// message, the worker's REQUESTs and the gateway's RESULTs in fewer messages than calls, and
// every call is answered exactly once with its own id. A worker that did not say `batch` gets
// every REQUEST as a message of its own.
static void
test_broker_batches_only_for_peers_that_read_them(void **state)
{
    (void) state;
    enum { N = 40 };
    fixture_t *f = s_start(NULL, 1000);
    char reg[1024];
    snprintf(reg, sizeof reg, "%.*s,\"batch\":true}", (int) strlen(s_register) - 1, s_register);
    s_send_json(f, f->worker, GA_CMD_REGISTER, reg);
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    const ga_value_t *b = ga_map_get(&f->msg.value, "batch");
    assert_true(b && b->type == GA_BOOL && b->u.b); // the broker says it reads them
    s_send_json(f, f->gateway, GA_CMD_HELLO, "{\"name\":\"gw\",\"batch\":true}");
    assert_true(s_expect(f, f->gateway, GA_CMD_SNAPSHOT, 2000));
    b = ga_map_get(&f->msg.value, "batch");
    assert_true(b && b->type == GA_BOOL && b->u.b);

    ga_buf_t payload;
    ga_buf_init(&payload);
    s_send_calls(f, N, 1000, &payload); // one message of N CALLs
    ga_proto_batch_t out;

    int seen[N] = {0};
    int64_t first = 0;
    // REQUEST ids are the broker's: consecutive from the first one.
    zmq_pollitem_t item = {.socket = f->worker, .events = ZMQ_POLLIN};
    assert_true(zmq_poll(&item, 1, 2000) == 1);
    ga_arena_reset(f->arena);
    assert_int_equal(ga_proto_recv(f->worker, false, &f->msg, f->arena), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_REQUEST);
    first = ga_map_get_int(&f->msg.value, "id", 0);
    seen[0]++;
    int messages = f->msg.batch_socket == NULL ? 1 : 0;
    messages += s_expect_items(f, f->worker, GA_CMD_REQUEST, N - 1, first + 1, seen + 1);
    assert_true(messages < N / 4); // batched: here one or two messages
    for (int i = 0; i < N; i++) {
        assert_int_equal(seen[i], 1);
    }

    // The worker answers all of them in one message; the gateway gets each RESULT once.
    ga_proto_batch_init(&out, f->worker, 64);
    for (int i = 0; i < N; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"id\":%lld,\"ok\":true,\"result\":{\"value\":%d}}",
                 (long long) (first + i), i);
        ga_value_t v;
        assert_int_equal(ga_json_decode(json, strlen(json), f->arena, &v, NULL, 0), GA_OK);
        assert_int_equal(
            ga_proto_batch_add_split(&out, NULL, 0, GA_CMD_REPLY, &v, &f->buf, &payload), GA_OK);
    }
    ga_proto_batch_fini(&out);
    int results[N] = {0};
    messages = s_expect_items(f, f->gateway, GA_CMD_RESULT, N, 1000, results);
    assert_true(messages < N / 4);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i], 1);
    }

    // A worker that never said `batch` (any worker in another language that does not read
    // them): the same burst reaches it one REQUEST per message.
    void *plain = s_dealer(f, bk_broker_worker_endpoint(f->broker));
    s_send_json(f, f->worker, GA_CMD_DISCONNECT, "{\"reason\":\"test\"}");
    s_send_json(f, plain, GA_CMD_REGISTER, s_register);
    assert_true(s_expect(f, plain, GA_CMD_REGISTERED, 2000));
    s_send_calls(f, N, 2000, &payload);
    memset(seen, 0, sizeof seen);
    assert_true(zmq_poll(&(zmq_pollitem_t){.socket = plain, .events = ZMQ_POLLIN}, 1, 2000) == 1);
    ga_arena_reset(f->arena);
    assert_int_equal(ga_proto_recv(plain, false, &f->msg, f->arena), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_REQUEST);
    assert_null(f->msg.batch_socket);
    first = ga_map_get_int(&f->msg.value, "id", 0);
    messages = 1 + s_expect_items(f, plain, GA_CMD_REQUEST, N - 1, first + 1, seen);
    assert_int_equal(messages, N);
    ga_buf_fini(&payload);
    zmq_close(plain);
    s_stop(f);
}

// An operator sees each refused config, with its reason, in the admin status.
static void
test_broker_lists_failed_configs_in_status(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    s_register_worker(f);
    s_send_json(f, f->gateway, GA_CMD_ADMIN,
                "{\"op\":\"status\",\"token\":\"test-admin-token\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_true(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_int_equal(ga_map_get_int(&f->msg.value, "functions", -1), 1);
    const ga_value_t *failed = ga_map_get(&f->msg.value, "failed_configs");
    assert_non_null(failed);
    assert_int_equal(failed->type, GA_ARRAY);
    assert_int_equal(failed->len, 1);
    const ga_value_t *entry = &failed->u.items[0];
    assert_string_equal(ga_map_get_str(entry, "service"), "test_service");
    assert_string_equal(ga_map_get_str(entry, "function"), "bad");
    assert_non_null(strstr(ga_map_get_str(entry, "reason"), "timeout"));
    assert_true(ga_map_get_int(entry, "at_ms", 0) > 0);
    s_stop(f);
}

static void
s_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
}

static void
test_broker_answers_unknown_function_and_missing_worker(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 50);
    s_sleep_ms(400); // past the re-registration window (3 heartbeats of 50 ms)
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":1,\"service\":\"nope\",\"request_type\":\"x\",\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Unknown function");

    s_register_worker(f);
    s_send_json(f, f->worker, GA_CMD_DISCONNECT, "{\"reason\":\"bye\"}");
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":2,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 2);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Service unavailable");
    assert_true(ga_map_get(&f->msg.value, "can_retry")->u.b);
    s_stop(f);
}

static void
test_broker_fails_calls_of_a_silent_worker_within_liveness(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 50);
    s_register_worker(f);
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":9,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->worker, GA_CMD_REQUEST, 2000));
    int64_t start = ga_clock_ms();
    // The fake worker now says nothing: 3 heartbeats (150 ms) later the call fails.
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 1000));
    int64_t waited = ga_clock_ms() - start;
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 9);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Worker lost");
    assert_int_equal(ga_map_get_int(&f->msg.value, "code", 0), GA_ELOST);
    assert_true(waited < 500);
    bk_stats_t stats = s_stop(f);
    assert_int_equal(stats.workers_lost, 1);
}

// A worker that registers afresh (a new session) while a call is in flight on it: the call is
// answered Worker lost and the REGISTER is still read whole (its decoded body lives in the
// arena the lost calls' answers are built in).
static void
test_broker_registers_afresh_a_worker_with_calls_in_flight(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    s_register_worker(f);
    s_send_json(f, f->gateway, GA_CMD_HELLO, "{\"name\":\"gw\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_SNAPSHOT, 2000));
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":12,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"args\":{\"value\":1},\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->worker, GA_CMD_REQUEST, 2000));
    s_send_json(f, f->worker, GA_CMD_REGISTER,
                "{\"node\":\"test@here\",\"service\":\"test_service\",\"session\":77,"
                "\"config_version\":\"2\",\"functions\":[{\"service\":\"test_service\","
                "\"request_type\":\"echo\",\"arg_types\":{\"value\":\"any\"},"
                "\"timeout\":300}]}");
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    const ga_value_t *ok = ga_map_get(&f->msg.value, "ok");
    assert_non_null(ok);
    assert_true(ok->u.b);
    assert_int_equal(ga_map_get(&f->msg.value, "failed")->len, 0);
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 12);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Worker lost");
    s_stop(f);
}

static void
test_broker_times_out_a_call_the_worker_never_answers(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    s_register_worker(f);
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":5,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->worker, GA_CMD_REQUEST, 2000));
    // The function's timeout is 300 ms; the worker stays alive (1 s heartbeat) but silent.
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 1500));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Request timed out");
    assert_int_equal(ga_map_get_int(&f->msg.value, "code", 0), GA_ETIMEDOUT);
    bk_stats_t stats = s_stop(f);
    assert_int_equal(stats.timeouts, 1);
}

static void
test_broker_refuses_a_wrong_push_token(void **state)
{
    (void) state;
    fixture_t *f = s_start("s3cret", 1000);
    s_send_json(f, f->worker, GA_CMD_REGISTER, s_register);
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    assert_false(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "invalid push token");
    // With the token, the same table is accepted.
    const char *with_token =
        "{\"node\":\"n\",\"service\":\"test_service\",\"config_version\":\"1\","
        "\"token\":\"s3cret\",\"functions\":[]}";
    s_send_json(f, f->worker, GA_CMD_REGISTER, with_token);
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    assert_true(ga_map_get(&f->msg.value, "ok")->u.b);
    s_stop(f);
}

// The push and admin tokens are compared over their full length: a C-string comparison would
// accept "push-secret-123\0x" for "push-secret-123".
static void
test_broker_compares_tokens_over_their_full_length(void **state)
{
    (void) state;
    fixture_t *f = s_start("push-secret-123", 1000);
    f->cfg.admin_token = "admin-secret-456"; // read by the loop only when an ADMIN arrives
    ga_arena_t *a = f->arena;
    ga_value_t reg = ga_map(a, 5);
    ga_map_put(&reg, a, "node", ga_str("n"));
    ga_map_put(&reg, a, "service", ga_str("test_service"));
    ga_map_put(&reg, a, "config_version", ga_str("1"));
    ga_map_put(&reg, a, "token", ga_strn("push-secret-123\0x", 17));
    ga_map_put(&reg, a, "functions", ga_array(a, 0));
    assert_int_equal(ga_proto_send_value(f->worker, NULL, 0, GA_CMD_REGISTER, &reg, &f->buf),
                     GA_OK);
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    assert_false(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "invalid push token");

    ga_value_t admin = ga_map(f->arena, 2);
    ga_map_put(&admin, f->arena, "op", ga_str("status"));
    ga_map_put(&admin, f->arena, "token", ga_strn("admin-secret-456\0junk", 21));
    assert_int_equal(ga_proto_send_value(f->gateway, NULL, 0, GA_CMD_ADMIN, &admin, &f->buf),
                     GA_OK);
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_false(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "admin token required");
    // The exact token passes.
    ga_value_t exact = ga_map(f->arena, 2);
    ga_map_put(&exact, f->arena, "op", ga_str("status"));
    ga_map_put(&exact, f->arena, "token", ga_str("admin-secret-456"));
    assert_int_equal(ga_proto_send_value(f->gateway, NULL, 0, GA_CMD_ADMIN, &exact, &f->buf),
                     GA_OK);
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_true(ga_map_get(&f->msg.value, "ok")->u.b);
    s_stop(f);
}

// A CALL whose caller identity is malformed is refused at the broker, never forwarded.
static void
test_broker_refuses_malformed_caller_identities(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    s_register_worker(f);
    const char *bad[] = {
        "{\"id\":1,\"service\":\"test_service\",\"request_type\":\"echo\",\"request_id\":\"r\","
        "\"args\":{},\"user_id\":5}",
        "{\"id\":2,\"service\":\"test_service\",\"request_type\":\"echo\",\"request_id\":\"r\","
        "\"args\":{},\"roles\":\"admin\"}",
        "{\"id\":3,\"service\":\"test_service\",\"request_type\":\"echo\",\"request_id\":\"r\","
        "\"args\":{},\"roles\":[\"admin\",7]}",
        "{\"id\":4,\"service\":\"test_service\",\"request_type\":\"echo\",\"request_id\":\"r\","
        "\"args\":{},\"user_id\":\"\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_send_json(f, f->gateway, GA_CMD_CALL, bad[i]);
        assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
        assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), (int64_t) i + 1);
        assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Invalid caller identity");
    }
    // A NUL inside the user id.
    ga_value_t call = ga_map(f->arena, 6);
    ga_map_put(&call, f->arena, "id", ga_int(5));
    ga_map_put(&call, f->arena, "service", ga_str("test_service"));
    ga_map_put(&call, f->arena, "request_type", ga_str("echo"));
    ga_map_put(&call, f->arena, "request_id", ga_str("r"));
    ga_map_put(&call, f->arena, "args", ga_map(f->arena, 0));
    ga_map_put(&call, f->arena, "user_id", ga_strn("alice\0admin", 11));
    ga_buf_t payload;
    ga_buf_init(&payload);
    assert_int_equal(ga_proto_send_split(f->gateway, NULL, 0, GA_CMD_CALL, &call, &f->buf,
                                         &payload),
                     GA_OK);
    ga_buf_fini(&payload);
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Invalid caller identity");
    // The worker never saw any of them.
    zmq_pollitem_t item = {.socket = f->worker, .events = ZMQ_POLLIN};
    while (zmq_poll(&item, 1, 200) > 0) {
        ga_arena_reset(f->arena);
        assert_int_equal(ga_proto_recv(f->worker, false, &f->msg, f->arena), GA_OK);
        assert_int_not_equal(f->msg.cmd, GA_CMD_REQUEST);
    }
    s_stop(f);
}

// Admin operations need the configured token and the action enabled; with no token configured
// every one is refused.
static void
test_broker_refuses_admin_operations_not_enabled(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    f->cfg.admin_actions = "status"; // read by the loop only when an ADMIN arrives
    s_send_json(f, f->gateway, GA_CMD_ADMIN,
                "{\"op\":\"functions\",\"token\":\"test-admin-token\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_false(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"),
                        "admin action not enabled (admin_actions)");
    s_send_json(f, f->gateway, GA_CMD_ADMIN, "{\"op\":\"status\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "admin token required");
    s_send_json(f, f->gateway, GA_CMD_ADMIN,
                "{\"op\":\"status\",\"token\":\"test-admin-token\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_true(ga_map_get(&f->msg.value, "ok")->u.b);
    f->cfg.admin_token = "";
    s_send_json(f, f->gateway, GA_CMD_ADMIN,
                "{\"op\":\"status\",\"token\":\"test-admin-token\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_ADMIN_REPLY, 2000));
    assert_false(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_non_null(strstr(ga_map_get_str(&f->msg.value, "error"), "admin operations are off"));
    s_stop(f);
}

static void
test_broker_tells_an_unknown_worker_to_register_again(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    s_send_json(f, f->worker, GA_CMD_HEARTBEAT, "{}");
    assert_true(s_expect(f, f->worker, GA_CMD_DISCONNECT, 2000));
    s_stop(f);
}

static void
test_broker_drops_hostile_messages_and_keeps_serving(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    // Wrong tag; too few frames; a count bomb body; a body that is not a map.
    assert_true(zmq_send(f->worker, "HTTP/", 5, ZMQ_SNDMORE) == 5);
    assert_true(zmq_send(f->worker, "\x01", 1, ZMQ_SNDMORE) == 1);
    assert_true(zmq_send(f->worker, "\x80", 1, 0) == 1);
    // Head frames: tag and command, then the envelope (none; a count bomb; not a map).
    const char *call_head = GA_PROTO_TAG "\x13";
    assert_true(zmq_send(f->gateway, call_head, GA_PROTO_HEAD_LEN, 0) == GA_PROTO_HEAD_LEN);
    const char *bomb = GA_PROTO_TAG "\x13" "\xdd\xff\xff\xff\xff";
    assert_true(zmq_send(f->gateway, bomb, GA_PROTO_HEAD_LEN + 5, 0) == GA_PROTO_HEAD_LEN + 5);
    const char *list = GA_PROTO_TAG "\x13" "\x91\xc0";
    assert_true(zmq_send(f->gateway, list, GA_PROTO_HEAD_LEN + 2, 0) == GA_PROTO_HEAD_LEN + 2);
    // Still serving: a worker registers and a gateway call goes through.
    s_register_worker(f);
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":3,\"service\":\"nope\",\"request_type\":\"x\",\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    bk_stats_t stats = s_stop(f);
    assert_int_equal(stats.malformed, 4);
}

// Right after a start the broker cannot tell an unknown function from one whose workers have
// not registered again yet: for one liveness period it answers "temporarily unavailable".
static void
test_broker_answers_temporarily_unavailable_while_workers_register_again(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 200);
    s_send_json(f, f->gateway, GA_CMD_HELLO, "{\"name\":\"gw\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_SNAPSHOT, 2000));
    int64_t warming = ga_map_get_int(&f->msg.value, "warming_ms", -1);
    assert_true(warming > 0 && warming <= 600);
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":1,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Service temporarily unavailable");
    assert_true(ga_map_get(&f->msg.value, "can_retry")->u.b);
    assert_int_equal(ga_map_get_int(&f->msg.value, "code", 0), GA_EUNAVAIL);
    // After the window an unknown function is unknown, and snapshots say the window is over.
    s_sleep_ms(800);
    s_send_json(f, f->gateway, GA_CMD_HELLO, "{\"name\":\"gw\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_SNAPSHOT, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "warming_ms", -1), 0);
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":2,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Unknown function");
    assert_false(ga_map_get(&f->msg.value, "can_retry")->u.b);
    s_stop(f);
}

// Every gateway gets each change once, numbered; a heartbeat names the current number. A
// function the service's worker no longer offers goes after one liveness period (600 ms).
static void
test_broker_numbers_updates_and_sends_removals_to_every_gateway(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 200);
    void *second = s_dealer(f, bk_broker_gateway_endpoint(f->broker));
    void *gws[2] = {f->gateway, second};
    f->keep[0] = f->gateway;
    f->keep[1] = second;
    f->n_keep = 2;
    for (int i = 0; i < 2; i++) {
        s_send_json(f, gws[i], GA_CMD_HELLO, "{\"name\":\"gw\"}");
        assert_true(s_expect(f, gws[i], GA_CMD_SNAPSHOT, 2000));
        assert_int_equal(ga_map_get_int(&f->msg.value, "seq", -1), 0);
    }
    s_register_worker(f);
    f->keep[f->n_keep++] = f->worker;
    for (int i = 0; i < 2; i++) {
        assert_true(s_expect(f, gws[i], GA_CMD_UPDATE, 2000));
        assert_int_equal(ga_map_get_int(&f->msg.value, "seq", -1), 1);
        assert_int_equal(ga_map_get(&f->msg.value, "functions")->len, 1);
        assert_int_equal(ga_map_get(&f->msg.value, "removed")->len, 0);
    }
    // The same node registers again without echo: nobody lists it any more.
    s_send_json(f, f->worker, GA_CMD_REGISTER,
                "{\"node\":\"test@here\",\"service\":\"test_service\","
                "\"config_version\":\"2\",\"functions\":[]}");
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    for (int i = 0; i < 2; i++) {
        assert_true(s_expect(f, gws[i], GA_CMD_UPDATE, 5000));
        assert_int_equal(ga_map_get_int(&f->msg.value, "seq", -1), 2);
        assert_int_equal(ga_map_get(&f->msg.value, "functions")->len, 0);
        const ga_value_t *removed = ga_map_get(&f->msg.value, "removed");
        assert_int_equal(removed->len, 1);
        assert_string_equal(ga_map_get_str(&removed->u.items[0], "service"), "test_service");
        assert_string_equal(ga_map_get_str(&removed->u.items[0], "request_type"), "echo");
        assert_null(ga_map_get(&removed->u.items[0], "version"));
    }
    assert_true(s_expect(f, second, GA_CMD_HEARTBEAT, 2500));
    assert_int_equal(ga_map_get_int(&f->msg.value, "seq", -1), 2);
    s_send_json(f, second, GA_CMD_HELLO, "{\"name\":\"gw\"}");
    assert_true(s_expect(f, second, GA_CMD_SNAPSHOT, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "seq", -1), 2);
    assert_int_equal(ga_map_get(&f->msg.value, "functions")->len, 0);
    // Calls now get Unknown function.
    s_send_json(f, f->gateway, GA_CMD_CALL,
                "{\"id\":3,\"service\":\"test_service\",\"request_type\":\"echo\","
                "\"request_id\":\"r\"}");
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Unknown function");
    f->n_keep = 0;
    zmq_close(second);
    s_stop(f);
}

// An UPDATE the broker could not send is not lost: the gateway is owed a snapshot, sent on
// the next heartbeat.
static void
test_broker_sends_a_snapshot_to_a_gateway_that_missed_an_update(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    void *gw = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(gw, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(gw, ZMQ_ROUTING_ID, "gw-a", 4), 0);
    assert_int_equal(zmq_connect(gw, bk_broker_gateway_endpoint(f->broker)), 0);
    s_send_json(f, gw, GA_CMD_HELLO, "{\"name\":\"gw-a\"}");
    assert_true(s_expect(f, gw, GA_CMD_SNAPSHOT, 2000));
    zmq_close(gw); // gone for a moment: the broker cannot deliver to it
    s_sleep_ms(500);
    s_register_worker(f); // its UPDATE finds no gateway-a
    gw = zmq_socket(f->zctx, ZMQ_DEALER);
    assert_int_equal(zmq_setsockopt(gw, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(gw, ZMQ_ROUTING_ID, "gw-a", 4), 0);
    assert_int_equal(zmq_connect(gw, bk_broker_gateway_endpoint(f->broker)), 0);
    s_send_json(f, gw, GA_CMD_HEARTBEAT, "{}"); // not a HELLO: it does not know it missed one
    assert_true(s_expect(f, gw, GA_CMD_SNAPSHOT, 3000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "seq", -1), 1);
    assert_int_equal(ga_map_get(&f->msg.value, "functions")->len, 1);
    zmq_close(gw);
    bk_stats_t stats = s_stop(f);
    assert_true(stats.undeliverable >= 1);
}

// ---------------------------------------------------------------------------------------------
// Streams: a fake worker publishes on the broker's XSUB; a fake gateway subscribes to its XPUB.

static const char *s_register_streams =
    "{\"node\":\"streamer@here\",\"service\":\"test_service\",\"config_version\":\"1\","
    "\"functions\":[{\"service\":\"test_service\",\"request_type\":\"st\","
    "\"response_type\":\"stream\",\"timeout\":600},"
    "{\"service\":\"test_service\",\"request_type\":\"forever\","
    "\"response_type\":\"stream\",\"timeout\":\"infinity\"}]}";

// Registers the stream functions and connects an XPUB (the worker's stream socket) to the
// broker's XSUB, returning once the broker's subscription has arrived.
static void *
s_stream_worker(fixture_t *f)
{
    s_send_json(f, f->worker, GA_CMD_REGISTER, s_register_streams);
    assert_true(s_expect(f, f->worker, GA_CMD_REGISTERED, 2000));
    assert_true(ga_map_get(&f->msg.value, "ok")->u.b);
    void *pub = zmq_socket(f->zctx, ZMQ_XPUB);
    int zero = 0;
    int one = 1;
    assert_int_equal(zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one), 0);
    assert_int_equal(zmq_connect(pub, bk_broker_stream_in_endpoint(f->broker)), 0);
    zmq_pollitem_t item = {.socket = pub, .events = ZMQ_POLLIN};
    assert_true(zmq_poll(&item, 1, 3000) == 1);
    char sub[64];
    assert_true(zmq_recv(pub, sub, sizeof sub, 0) >= 1 && sub[0] == 1);
    return pub;
}

// Publishes one stream message, waiting (at most 5 s) for room.
static void
s_publish(fixture_t *f, void *pub, const char *topic, int64_t call, int64_t seq, const char *kind,
          size_t pad)
{
    ga_value_t m = ga_map(f->arena, 4);
    ga_map_put(&m, f->arena, "call", ga_int(call));
    ga_map_put(&m, f->arena, "seq", ga_int(seq));
    ga_map_put(&m, f->arena, "kind", ga_str(kind));
    char *data = ga_arena_alloc(f->arena, pad + 1);
    memset(data, 'x', pad);
    data[pad] = '\0';
    ga_map_put(&m, f->arena, "data", ga_str(data));
    ga_buf_reset(&f->buf);
    ga_wire_encode(&f->buf, &m);
    int64_t deadline = ga_clock_ms() + 5000;
    ga_err_t rc;
    while ((rc = ga_proto_publish(pub, topic, GA_CMD_STREAM, &f->buf)) == GA_EAGAIN &&
           ga_clock_ms() < deadline) {
        zmq_pollitem_t none = {.socket = NULL, .fd = -1};
        zmq_poll(&none, 0, 1);
    }
    assert_int_equal(rc, GA_OK);
    ga_arena_reset(f->arena);
}

// Starts stream `request_type` as gateway call `gw_call_id`; returns the broker's id.
static int64_t
s_start_stream(fixture_t *f, const char *request_type, int64_t gw_call_id)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"id\":%lld,\"service\":\"test_service\",\"request_type\":\"%s\","
             "\"request_id\":\"r%lld\",\"stream_topic\":\"s.gw.%lld\"}",
             (long long) gw_call_id, request_type, (long long) gw_call_id,
             (long long) gw_call_id);
    s_send_json(f, f->gateway, GA_CMD_CALL, json);
    assert_true(s_expect(f, f->worker, GA_CMD_REQUEST, 2000));
    int64_t id = ga_map_get_int(&f->msg.value, "id", 0);
    assert_true(id > 0);
    return id;
}

// Publishes chunks of a stream of its own (gateway call 69; a message for no open stream is
// dropped at the broker) until one reaches `sub`: the subscription is then in place. Returns
// how many were published.
static int
s_probe_subscription(fixture_t *f, void *pub, void *sub)
{
    int64_t probe = s_start_stream(f, "forever", 69);
    for (int i = 0; i < 300; i++) {
        s_publish(f, pub, "s.gw.69", probe, i + 1, "chunk", 1);
        zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 10) == 1) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            do {
                assert_true(zmq_msg_recv(&part, sub, 0) >= 0);
            } while (zmq_msg_more(&part));
            zmq_msg_close(&part);
            return i + 1;
        }
    }
    fail_msg("the subscription never came through");
    return 0;
}

// A stream's timeout (600 ms) bounds the silence between its messages: one that keeps talking
// for 2.5 times as long is not cut; once silent, it times out and its worker is told to stop.
static void
test_broker_stream_deadline_bounds_silence_not_the_whole_stream(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    void *pub = s_stream_worker(f);
    int64_t id = s_start_stream(f, "st", 70);
    for (int64_t seq = 1; seq <= 10; seq++) { // 10 x 150 ms
        s_publish(f, pub, "s.gw.70", id, seq, "chunk", 1);
        s_send_json(f, f->worker, GA_CMD_HEARTBEAT, "{}"); // the worker stays alive
        assert_false(s_expect(f, f->gateway, GA_CMD_RESULT, 150));
    }
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 70);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Request timed out");
    assert_true(s_expect(f, f->worker, GA_CMD_CANCEL, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);
    zmq_close(pub);
    bk_stats_t stats = s_stop(f);
    assert_int_equal(stats.timeouts, 1);
    assert_int_equal(stats.chunks, 10);
}

// A gateway's queue that is full loses stream messages at the broker's XPUB (XPUB_NODROP).
// Whatever was lost, a chunk or the message that ends the stream, the gateway hears of it on
// its reliable socket at once (an error RESULT), never silence; the worker is told to stop.
static void
test_broker_ends_a_stream_whose_messages_a_full_gateway_cannot_take(void **state)
{
    (void) state;
    fixture_t *f = s_start_hwm(NULL, 1000, 10);
    void *pub = s_stream_worker(f);
    // The gateway's stream socket: subscribed, tiny buffers, and never read.
    void *sub = zmq_socket(f->zctx, ZMQ_SUB);
    int zero = 0;
    int small = 1;
    int rcvbuf = 4096;
    assert_int_equal(zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_RCVHWM, &small, sizeof small), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "s.gw.", 5), 0);
    assert_int_equal(zmq_connect(sub, bk_broker_stream_out_endpoint(f->broker)), 0);
    // Probe until the subscription is in place.
    s_probe_subscription(f, pub, sub);

    // A stream of large chunks overflows the gateway's queue mid-stream.
    int64_t id = s_start_stream(f, "forever", 71);
    bool told = false;
    for (int64_t seq = 1; seq <= 4000 && !told; seq++) {
        s_publish(f, pub, "s.gw.71", id, seq, "chunk", 16384);
        if (seq % 50 == 0) {
            s_send_json(f, f->worker, GA_CMD_HEARTBEAT, "{}"); // the worker stays alive
            told = s_expect(f, f->gateway, GA_CMD_RESULT, 1);
        }
    }
    assert_true(told || s_expect(f, f->gateway, GA_CMD_RESULT, 3000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 71);
    assert_false(ga_map_get(&f->msg.value, "ok")->u.b);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"),
                        "Stream interrupted: chunks were lost");
    assert_true(ga_map_get(&f->msg.value, "can_retry")->u.b);
    assert_true(s_expect(f, f->worker, GA_CMD_CANCEL, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);

    // Still full (filler streams, one message each, so that every one is a message the full
    // queue refuses), a stream whose only message is its end (kind last) loses it. The broker
    // must not forget the call silently: the gateway gets the error.
    int64_t id2 = s_start_stream(f, "forever", 72);
    enum { FILLERS = 200 };
    for (int i = 0; i < FILLERS; i++) {
        char topic[32];
        snprintf(topic, sizeof topic, "s.gw.%d", 100 + i);
        int64_t filler = s_start_stream(f, "forever", 100 + i);
        s_publish(f, pub, topic, filler, 1, "chunk", 16384);
        if (i % 50 == 0) {
            s_send_json(f, f->worker, GA_CMD_HEARTBEAT, "{}");
        }
    }
    s_publish(f, pub, "s.gw.72", id2, 1, "last", 16384);
    bool ended = false;
    for (int i = 0; i < FILLERS + 1 && !ended; i++) { // fillers' RESULTs may come first
        assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 3000));
        ended = ga_map_get_int(&f->msg.value, "id", 0) == 72;
    }
    assert_true(ended);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"),
                        "Stream interrupted: chunks were lost");
    zmq_close(sub);
    zmq_close(pub);
    bk_stats_t stats = s_stop(f);
    assert_true(stats.chunks_dropped >= 2);
}

// A batch of stream messages (docs/protocol.md, "Streams on the proxy") is one ZeroMQ message
// with a data frame: the broker forwards it whole, frames untouched, counts each message in it,
// and forgets the call when the batch ends the stream (no timeout RESULT follows).
static void
test_broker_forwards_a_batch_whole_and_ends_the_stream_with_it(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 1000);
    void *pub = s_stream_worker(f);
    void *sub = zmq_socket(f->zctx, ZMQ_SUB);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "s.gw.", 5), 0);
    assert_int_equal(zmq_connect(sub, bk_broker_stream_out_endpoint(f->broker)), 0);
    // Probe until the subscription is in place.
    int probes = s_probe_subscription(f, pub, sub);
    for (int i = 0; i < 50; i++) { // the probes still on their way
        char drop[256];
        zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
        while (zmq_poll(&item, 1, 10) == 1) {
            GA_IGNORE(zmq_recv(sub, drop, sizeof drop, 0) < 0);
        }
    }

    int64_t id = s_start_stream(f, "st", 74);
    // Messages 1..3 (chunks), then 4 (a chunk) and 5 (the end).
    static const uint8_t items1[] = {0x93, 0x01, 0x02, 0x03};
    static const uint8_t items2[] = {0x91, 0x04};
    const uint8_t *items[] = {items1, items2};
    size_t items_len[] = {sizeof items1, sizeof items2};
    const char *kinds[] = {"chunk", "end"};
    int64_t seqs[] = {1, 4};
    int64_t ns[] = {3, 2};
    const uint8_t cmd = GA_CMD_STREAM;
    for (int b = 0; b < 2; b++) {
        ga_value_t m = ga_map(f->arena, 4);
        ga_map_put(&m, f->arena, "call", ga_int(id));
        ga_map_put(&m, f->arena, "seq", ga_int(seqs[b]));
        ga_map_put(&m, f->arena, "kind", ga_str(kinds[b]));
        ga_map_put(&m, f->arena, "n", ga_int(ns[b]));
        ga_buf_reset(&f->buf);
        ga_wire_encode(&f->buf, &m);
        uint8_t head[GA_PROTO_HEAD_LEN + 128]; // tag, command, then the body
        assert_true(f->buf.len <= 128);
        memcpy(head, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
        head[GA_PROTO_TAG_LEN] = cmd;
        memcpy(head + GA_PROTO_HEAD_LEN, f->buf.data, f->buf.len);
        assert_true(zmq_send(pub, "s.gw.74", 7, ZMQ_SNDMORE) >= 0);
        assert_true(zmq_send(pub, head, GA_PROTO_HEAD_LEN + f->buf.len, ZMQ_SNDMORE) >= 0);
        assert_true(zmq_send(pub, items[b], items_len[b], 0) >= 0);
        ga_arena_reset(f->arena);
    }
    for (int b = 0; b < 2; b++) {
        zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
        assert_int_equal(zmq_poll(&item, 1, 3000), 1);
        zmq_msg_t parts[5];
        int n = 0;
        bool more = true;
        while (more && n < 5) {
            zmq_msg_init(&parts[n]);
            assert_true(zmq_msg_recv(&parts[n], sub, 0) >= 0);
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        assert_false(more);
        assert_int_equal(n, 3);
        assert_int_equal(zmq_msg_size(&parts[0]), 7);
        assert_memory_equal(zmq_msg_data(&parts[0]), "s.gw.74", 7);
        assert_int_equal(zmq_msg_size(&parts[2]), items_len[b]);
        assert_memory_equal(zmq_msg_data(&parts[2]), items[b], items_len[b]);
        ga_value_t body;
        assert_int_equal(ga_wire_decode((uint8_t *) zmq_msg_data(&parts[1]) + GA_PROTO_HEAD_LEN,
                                        zmq_msg_size(&parts[1]) - GA_PROTO_HEAD_LEN, f->arena,
                                        &body),
                         GA_OK);
        assert_int_equal(ga_map_get_int(&body, "seq", 0), seqs[b]);
        for (int i = 0; i < n; i++) {
            zmq_msg_close(&parts[i]);
        }
        ga_arena_reset(f->arena);
    }
    // The end was in the second batch: the call is forgotten, so its 600 ms timeout never
    // fires.
    for (int i = 0; i < 8; i++) {
        s_send_json(f, f->worker, GA_CMD_HEARTBEAT, "{}"); // the worker stays alive
        assert_false(s_expect(f, f->gateway, GA_CMD_RESULT, 150));
    }
    zmq_close(sub);
    zmq_close(pub);
    bk_stats_t stats = s_stop(f);
    assert_int_equal(stats.chunks, (uint64_t) probes + 5);
    assert_int_equal(stats.timeouts, 0);
}

// A gateway that goes silent is forgotten with its calls: a stream with no deadline (timeout
// infinity) is stopped at its worker rather than left running for nobody.
static void
test_broker_stops_the_streams_of_a_lost_gateway(void **state)
{
    (void) state;
    fixture_t *f = s_start(NULL, 50);
    void *pub = s_stream_worker(f);
    int64_t id = s_start_stream(f, "forever", 73);
    // The worker stays alive (it heartbeats); the gateway says nothing more.
    bool cancelled = false;
    for (int i = 0; i < 40 && !cancelled; i++) {
        s_send_json(f, f->worker, GA_CMD_HEARTBEAT, "{}");
        cancelled = s_expect(f, f->worker, GA_CMD_CANCEL, 50);
    }
    assert_true(cancelled);
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);
    // Were the gateway only stalled, it would find its stream ended when it resumed.
    assert_true(s_expect(f, f->gateway, GA_CMD_RESULT, 1000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 73);
    assert_string_equal(ga_map_get_str(&f->msg.value, "error"), "Service unavailable");
    zmq_close(pub);
    s_stop(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_routes_call_and_maps_ids_both_ways),
        cmocka_unit_test(test_broker_batches_only_for_peers_that_read_them),
        cmocka_unit_test(test_broker_lists_failed_configs_in_status),
        cmocka_unit_test(test_broker_answers_unknown_function_and_missing_worker),
        cmocka_unit_test(test_broker_fails_calls_of_a_silent_worker_within_liveness),
        cmocka_unit_test(test_broker_registers_afresh_a_worker_with_calls_in_flight),
        cmocka_unit_test(test_broker_times_out_a_call_the_worker_never_answers),
        cmocka_unit_test(test_broker_refuses_a_wrong_push_token),
        cmocka_unit_test(test_broker_compares_tokens_over_their_full_length),
        cmocka_unit_test(test_broker_refuses_malformed_caller_identities),
        cmocka_unit_test(test_broker_refuses_admin_operations_not_enabled),
        cmocka_unit_test(test_broker_tells_an_unknown_worker_to_register_again),
        cmocka_unit_test(test_broker_drops_hostile_messages_and_keeps_serving),
        cmocka_unit_test(test_broker_answers_temporarily_unavailable_while_workers_register_again),
        cmocka_unit_test(test_broker_numbers_updates_and_sends_removals_to_every_gateway),
        cmocka_unit_test(test_broker_sends_a_snapshot_to_a_gateway_that_missed_an_update),
        cmocka_unit_test(test_broker_stream_deadline_bounds_silence_not_the_whole_stream),
        cmocka_unit_test(test_broker_ends_a_stream_whose_messages_a_full_gateway_cannot_take),
        cmocka_unit_test(test_broker_forwards_a_batch_whole_and_ends_the_stream_with_it),
        cmocka_unit_test(test_broker_stops_the_streams_of_a_lost_gateway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
