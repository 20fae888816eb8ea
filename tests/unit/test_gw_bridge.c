// SPDX-License-Identifier: MIT
// The gateway's broker link against a fake broker on loopback TCP (a ROUTER and an XPUB driven
// by the test): registry snapshot, numbered updates (a missing one makes it ask for a fresh
// snapshot), stream chunks delivered in order, a gap turned into an error plus a STOP to the
// broker, duplicates dropped, the stream's end, and its idle deadline; batches of stream
// messages delivered message by message, with the same sequence rules; the hook chain (permission
// check, before hook, call, after hook) and its failures.
#include "ga_clock.h"
#include "ga_json.h"
#include "ga_proto.h"
#include "ga_telemetry.h"
#include "ga_wire.h"
#include "gw_bridge.h"
#include "gw_pipeline.h"

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

#define MAX_EVENTS 32

typedef struct {
    void *zctx;                  // context for the fake broker
    void *router;                // fake broker: gateway socket
    void *xpub;                  // fake broker: stream proxy output
    char router_ep[128];         // its endpoint
    gw_pipeline_config_t pcfg;   // pipeline settings
    gw_bridge_config_t bcfg;     // bridge settings
    gw_pipeline_t *pipeline;     // under test
    gw_bridge_t *bridge;         // under test
    uint8_t gw_id[256];          // the bridge's routing id as the fake broker sees it
    size_t gw_id_len;            // its length
    char kinds[MAX_EVENTS][16];  // stream messages delivered, by kind
    char errors[MAX_EVENTS][128]; // their error text
    int64_t data[MAX_EVENTS];    // their data (integers)
    int n_events;                // delivered so far
    ga_arena_t *arena;           // fake broker's decoding
    ga_proto_msg_t msg;          // fake broker's last message
    ga_buf_t buf;                // encoding scratch
    int n_results;               // result callbacks so far
    char result_json[256];       // the last one's body, as JSON
    int n_accepts;               // accept callbacks so far
} fixture_t;

static void
s_on_result(void *arg, const gw_route_t *route, const ga_value_t *body)
{
    fixture_t *f = arg;
    (void) route;
    ga_buf_t b;
    ga_buf_init(&b);
    ga_json_encode(&b, body);
    snprintf(f->result_json, sizeof f->result_json, "%.*s", (int) b.len, (const char *) b.data);
    ga_buf_fini(&b);
    f->n_results++;
}

static void
s_on_accept(void *arg, const gw_route_t *route)
{
    fixture_t *f = arg;
    (void) route;
    f->n_accepts++;
}

static void
s_on_stream(void *arg, const gw_route_t *route, const ga_value_t *body)
{
    fixture_t *f = arg;
    (void) route;
    assert_true(f->n_events < MAX_EVENTS);
    const char *kind = ga_map_get_str(body, "kind");
    const char *error = ga_map_get_str(body, "error");
    snprintf(f->kinds[f->n_events], sizeof f->kinds[0], "%s", kind ? kind : "?");
    snprintf(f->errors[f->n_events], sizeof f->errors[0], "%s", error ? error : "");
    f->data[f->n_events] = ga_map_get_int(body, "data", -1);
    f->n_events++;
}

// Runs the bridge (as the gateway's loop would) for up to `ms`, until `done` says stop.
static void
s_pump(fixture_t *f, int ms, bool (*done)(fixture_t *))
{
    int64_t deadline = ga_clock_ms() + ms;
    while (ga_clock_ms() < deadline && !(done && done(f))) {
        struct pollfd fds[2] = {{.fd = gw_bridge_fd(f->bridge), .events = POLLIN},
                                {.fd = gw_bridge_stream_fd(f->bridge), .events = POLLIN}};
        GA_IGNORE(poll(fds, 2, 5) < 0); // a timeout or a signal: either way, process below
        gw_bridge_process(f->bridge);
        gw_bridge_process_streams(f->bridge);
        gw_bridge_tick(f->bridge);
    }
}

// Receives one message on the fake broker's ROUTER (pumping the bridge meanwhile).
static bool
s_broker_recv(fixture_t *f, int cmd, int ms)
{
    int64_t deadline = ga_clock_ms() + ms;
    while (ga_clock_ms() < deadline) {
        s_pump(f, 5, NULL);
        ga_arena_reset(f->arena);
        if (ga_proto_recv(f->router, true, &f->msg, f->arena) == GA_OK && f->msg.cmd == cmd) {
            // The layout (docs/protocol.md, "Frames"): a CALL's args travel in the payload
            // frame, never in the envelope; merged here so that tests read one map.
            if (cmd == GA_CMD_CALL) {
                assert_null(ga_map_get(&f->msg.value, "args"));
                assert_true(f->msg.has_payload);
                assert_int_equal(ga_proto_payload_merge(&f->msg, f->arena), GA_OK);
            }
            memcpy(f->gw_id, f->msg.id, f->msg.id_len);
            f->gw_id_len = f->msg.id_len;
            return true;
        }
    }
    return false;
}

static void
s_broker_send(fixture_t *f, int cmd, const char *json)
{
    ga_value_t v;
    assert_int_equal(ga_json_decode(json, strlen(json), f->arena, &v, NULL, 0), GA_OK);
    ga_buf_t payload;
    ga_buf_init(&payload);
    assert_int_equal(ga_proto_send_split(f->router, f->gw_id, f->gw_id_len, cmd, &v, &f->buf,
                                         &payload),
                     GA_OK);
    ga_buf_fini(&payload);
}

static void
s_publish(fixture_t *f, const char *topic, int64_t call, int64_t seq, const char *kind)
{
    char json[256];
    snprintf(json, sizeof json, "{\"call\":%lld,\"seq\":%lld,\"kind\":\"%s\",\"data\":%lld}",
             (long long) call, (long long) seq, kind, (long long) seq);
    ga_value_t v;
    assert_int_equal(ga_json_decode(json, strlen(json), f->arena, &v, NULL, 0), GA_OK);
    ga_buf_reset(&f->buf);
    ga_wire_encode(&f->buf, &v);
    assert_int_equal(ga_proto_publish(f->xpub, topic, GA_CMD_STREAM, &f->buf), GA_OK);
}

// Publishes a stream message with body `body_json` and, unless `items_json` is NULL, a batch's
// data frame (docs/protocol.md, "Streams on the proxy").
static void
s_publish_batch(fixture_t *f, const char *topic, const char *body_json, const char *items_json)
{
    ga_value_t v;
    assert_int_equal(ga_json_decode(body_json, strlen(body_json), f->arena, &v, NULL, 0), GA_OK);
    ga_buf_reset(&f->buf);
    ga_wire_encode(&f->buf, &v);
    // The head frame: tag, command, then the body.
    uint8_t head[GA_PROTO_HEAD_LEN + 512];
    assert_true(f->buf.len <= 512);
    memcpy(head, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
    head[GA_PROTO_TAG_LEN] = GA_CMD_STREAM;
    memcpy(head + GA_PROTO_HEAD_LEN, f->buf.data, f->buf.len);
    assert_true(zmq_send(f->xpub, topic, strlen(topic), ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->xpub, head, GA_PROTO_HEAD_LEN + f->buf.len,
                         items_json ? ZMQ_SNDMORE : 0) >= 0);
    if (items_json) {
        assert_int_equal(ga_json_decode(items_json, strlen(items_json), f->arena, &v, NULL, 0),
                         GA_OK);
        ga_buf_reset(&f->buf);
        ga_wire_encode(&f->buf, &v);
        assert_true(zmq_send(f->xpub, f->buf.data, f->buf.len, 0) >= 0);
    }
}

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->zctx = zmq_ctx_new();
    f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
    f->xpub = zmq_socket(f->zctx, ZMQ_XPUB);
    int zero = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(f->xpub, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(zmq_bind(f->xpub, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof f->router_ep;
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->router_ep, &len);
    f->bcfg = (gw_bridge_config_t){.broker = f->router_ep,
                                   .name = "gw.test",
                                   .heartbeat_ms = 1000,
                                   .grace_ms = 1000,
                                   .hwm = 1000,
                                   .max_inflight = 100};
    f->pipeline = gw_pipeline_new(&f->pcfg);
    f->bridge = gw_bridge_new(&f->bcfg, f->pipeline, s_on_result, NULL, f);
    gw_bridge_on_stream(f->bridge, s_on_stream);
    gw_bridge_on_accept(f->bridge, s_on_accept);
    f->arena = ga_arena_new(4096);
    ga_proto_msg_init(&f->msg);
    ga_buf_init(&f->buf);
    assert_int_equal(gw_bridge_connect(f->bridge), GA_OK);

    // Handshake: HELLO, then a snapshot naming the stream proxy's port.
    assert_true(s_broker_recv(f, GA_CMD_HELLO, 3000));
    char xpub_ep[128];
    len = sizeof xpub_ep;
    zmq_getsockopt(f->xpub, ZMQ_LAST_ENDPOINT, xpub_ep, &len);
    char snapshot[512];
    snprintf(snapshot, sizeof snapshot,
             "{\"functions\":[{\"service\":\"s\",\"request_type\":\"st\","
             "\"response_type\":\"stream\"}],\"seq\":1,\"heartbeat_ms\":1000,\"stream_port\":%s}",
             strrchr(xpub_ep, ':') + 1);
    s_broker_send(f, GA_CMD_SNAPSHOT, snapshot);
    // Wait for the bridge's subscription to reach the XPUB (it starts with byte 1).
    int64_t deadline = ga_clock_ms() + 3000;
    char sub[256] = "";
    while (ga_clock_ms() < deadline) {
        s_pump(f, 5, NULL);
        if (zmq_recv(f->xpub, sub, sizeof sub, ZMQ_DONTWAIT) > 0 && sub[0] == 1) {
            break;
        }
    }
    assert_int_equal(sub[0], 1);
    assert_non_null(strstr(sub + 1, "s.gw_test."));
    assert_true(gw_bridge_has_snapshot(f->bridge));
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    gw_bridge_destroy(&f->bridge);
    gw_pipeline_destroy(&f->pipeline);
    zmq_close(f->router);
    zmq_close(f->xpub);
    zmq_ctx_term(f->zctx);
    ga_arena_destroy(&f->arena);
    ga_proto_msg_fini(&f->msg);
    ga_buf_fini(&f->buf);
    free(f);
    return 0;
}

// Starts a stream call with `timeout_ms`; returns the topic the bridge asked for and the
// gateway's call id.
static int64_t
s_start_stream_timeout(fixture_t *f, char *topic, size_t len, int64_t timeout_ms)
{
    gw_identity_t who = {0};
    ga_value_t args = ga_map(f->arena, 0);
    gw_call_t call = {.request_id = "r1",
                      .service = "s",
                      .request_type = "st",
                      .args = args,
                      .response_type = GA_RESP_STREAM,
                      .timeout_ms = timeout_ms,
                      .who = &who};
    gw_route_t route = {.type = GA_RESP_STREAM, .conn_id = 1, .topic = "api:lobby",
                        .request_id = "r1"};
    assert_int_equal(gw_bridge_call(f->bridge, &call, &route), GA_OK);
    assert_true(s_broker_recv(f, GA_CMD_CALL, 3000));
    const char *t = ga_map_get_str(&f->msg.value, "stream_topic");
    assert_non_null(t);
    snprintf(topic, len, "%s", t);
    return ga_map_get_int(&f->msg.value, "id", 0);
}

static int64_t
s_start_stream(fixture_t *f, char *topic, size_t len)
{
    return s_start_stream_timeout(f, topic, len, 5000);
}

static bool
s_three_events(fixture_t *f)
{
    return f->n_events >= 3;
}

static void
test_bridge_turns_a_stream_gap_into_an_error_and_stops_the_call(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    int64_t id = s_start_stream(f, topic, sizeof topic);
    s_publish(f, topic, 77, 1, "chunk");
    s_publish(f, topic, 77, 2, "chunk");
    s_publish(f, topic, 77, 4, "chunk"); // 3 was lost on the way
    s_publish(f, topic, 77, 5, "last");
    s_pump(f, 2000, s_three_events);
    assert_int_equal(f->n_events, 3);
    assert_string_equal(f->kinds[0], "chunk");
    assert_int_equal(f->data[0], 1);
    assert_int_equal(f->data[1], 2);
    assert_string_equal(f->kinds[2], "error");
    assert_string_equal(f->errors[2], "Stream interrupted: chunks were lost");
    assert_int_equal(gw_bridge_stream_gaps(f->bridge), 1);
    // The broker is told to stop the call, and nothing more is delivered for it.
    assert_true(s_broker_recv(f, GA_CMD_STOP, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);
    s_pump(f, 100, NULL);
    assert_int_equal(f->n_events, 3);
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

static void
test_bridge_drops_duplicates_and_ends_on_last(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    s_start_stream(f, topic, sizeof topic);
    s_publish(f, topic, 78, 1, "chunk");
    s_publish(f, topic, 78, 1, "chunk"); // duplicate
    s_publish(f, topic, 78, 2, "chunk");
    s_publish(f, topic, 78, 3, "last");
    s_publish(f, topic, 78, 4, "chunk"); // after the end: dropped
    s_pump(f, 2000, s_three_events);
    s_pump(f, 100, NULL);
    assert_int_equal(f->n_events, 3);
    assert_string_equal(f->kinds[0], "chunk");
    assert_string_equal(f->kinds[1], "chunk");
    assert_string_equal(f->kinds[2], "last");
    assert_int_equal(f->data[2], 3);
    assert_int_equal(gw_bridge_stream_duplicates(f->bridge), 1);
    assert_int_equal(gw_bridge_stream_gaps(f->bridge), 0);
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

static void
test_bridge_stops_a_disconnected_clients_streams(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    int64_t id = s_start_stream(f, topic, sizeof topic);
    gw_bridge_stop_conn(f->bridge, 1, NULL);
    assert_true(s_broker_recv(f, GA_CMD_STOP, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);
    s_publish(f, topic, 79, 1, "chunk");
    s_pump(f, 100, NULL);
    assert_int_equal(f->n_events, 0);
}

static bool
s_one_error(fixture_t *f)
{
    return f->n_events > 0 && strcmp(f->kinds[f->n_events - 1], "error") == 0;
}

// A stream's timeout bounds the silence between two messages, not its whole life: a stream
// that keeps talking outlives timeout + grace several times over; one that goes silent longer
// ends with a timeout error. (The fake broker never answers, so this is the gateway's own
// deadline: timeout 200 + grace 1000 ms.)
static void
test_bridge_stream_deadline_bounds_silence_not_the_whole_stream(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    s_start_stream_timeout(f, topic, sizeof topic, 200);
    for (int64_t seq = 1; seq <= 6; seq++) { // 6 x 400 ms: twice the 1200 ms bound
        s_publish(f, topic, 80, seq, "chunk");
        s_broker_send(f, GA_CMD_HEARTBEAT, "{}"); // the broker stays alive throughout
        s_pump(f, 400, NULL);
    }
    assert_int_equal(f->n_events, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(f->kinds[i], "chunk");
    }
    assert_int_equal(gw_bridge_inflight(f->bridge), 1);
    // Now silence: the stream ends with a timeout error, and is forgotten.
    for (int i = 0; i < 25 && !s_one_error(f); i++) {
        s_broker_send(f, GA_CMD_HEARTBEAT, "{}");
        s_pump(f, 200, s_one_error);
    }
    assert_int_equal(f->n_events, 7);
    assert_string_equal(f->kinds[6], "error");
    assert_string_equal(f->errors[6], "Request timed out");
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

// With an infinite timeout there is no deadline at all; the broker's error RESULT (worker
// lost, chunks lost on the way) still ends the stream for the client.
static void
test_bridge_infinite_stream_ends_on_a_broker_error(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    int64_t id = s_start_stream_timeout(f, topic, sizeof topic, -1);
    s_publish(f, topic, 81, 1, "chunk");
    s_pump(f, 1500, NULL); // past any 200 + 1000 ms bound: still open
    assert_int_equal(f->n_events, 1);
    assert_int_equal(gw_bridge_inflight(f->bridge), 1);
    char result[256];
    snprintf(result, sizeof result,
             "{\"id\":%lld,\"ok\":false,\"error\":\"Stream interrupted: chunks were lost\","
             "\"code\":6,\"can_retry\":true}",
             (long long) id);
    s_broker_send(f, GA_CMD_RESULT, result);
    s_pump(f, 2000, s_one_error);
    assert_int_equal(f->n_events, 2);
    assert_string_equal(f->kinds[1], "error");
    assert_string_equal(f->errors[1], "Stream interrupted: chunks were lost");
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

static bool
s_one_event(fixture_t *f)
{
    return f->n_events >= 1;
}

static bool
s_five_events(fixture_t *f)
{
    return f->n_events >= 5;
}

static bool
s_seven_events(fixture_t *f)
{
    return f->n_events >= 7;
}

// A batch carries several stream messages in one: the gateway delivers each on its own, in
// order, numbered from the batch's seq; the last one has the batch's kind, and an end carries
// no data of its own.
static void
test_bridge_delivers_a_batch_message_by_message(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    s_start_stream(f, topic, sizeof topic);
    s_publish(f, topic, 90, 1, "chunk");
    s_publish_batch(f, topic, "{\"call\":90,\"seq\":2,\"kind\":\"chunk\",\"n\":3}", "[2,3,4]");
    s_publish_batch(f, topic, "{\"call\":90,\"seq\":5,\"kind\":\"end\",\"n\":3}", "[5,6]");
    s_pump(f, 2000, s_seven_events);
    s_pump(f, 100, NULL);
    assert_int_equal(f->n_events, 7);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(f->kinds[i], "chunk");
        assert_int_equal(f->data[i], i + 1);
    }
    assert_string_equal(f->kinds[6], "end");
    assert_int_equal(f->data[6], -1);
    assert_int_equal(gw_bridge_stream_gaps(f->bridge), 0);
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

// A batch ending with an error: its chunks, then the error with the body's message.
static void
test_bridge_batch_ending_in_an_error(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    s_start_stream(f, topic, sizeof topic);
    s_publish_batch(f, topic,
                    "{\"call\":91,\"seq\":1,\"kind\":\"error\",\"n\":3,\"error\":\"disk full\"}",
                    "[1,2]");
    s_pump(f, 2000, s_three_events);
    assert_int_equal(f->n_events, 3);
    assert_string_equal(f->kinds[0], "chunk");
    assert_int_equal(f->data[1], 2);
    assert_string_equal(f->kinds[2], "error");
    assert_string_equal(f->errors[2], "disk full");
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

// Sequence numbers hold inside batches: a batch seen whole already is a duplicate, one that
// overlaps delivers only the rest, and one that skips ahead is a gap.
static void
test_bridge_batches_keep_duplicates_and_gaps_exact(void **state)
{
    fixture_t *f = *state;
    char topic[256];
    s_start_stream(f, topic, sizeof topic);
    s_publish_batch(f, topic, "{\"call\":92,\"seq\":1,\"kind\":\"chunk\",\"n\":3}", "[1,2,3]");
    s_publish_batch(f, topic, "{\"call\":92,\"seq\":2,\"kind\":\"chunk\",\"n\":2}", "[2,3]");
    s_publish_batch(f, topic, "{\"call\":92,\"seq\":3,\"kind\":\"last\",\"n\":3}", "[3,4,5]");
    s_pump(f, 2000, s_five_events);
    s_pump(f, 100, NULL);
    assert_int_equal(f->n_events, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f->data[i], i + 1);
    }
    assert_string_equal(f->kinds[3], "chunk");
    assert_string_equal(f->kinds[4], "last");
    assert_int_equal(gw_bridge_stream_duplicates(f->bridge), 1);
    assert_int_equal(gw_bridge_stream_gaps(f->bridge), 0);
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);

    f->n_events = 0;
    int64_t id = s_start_stream(f, topic, sizeof topic);
    s_publish_batch(f, topic, "{\"call\":93,\"seq\":1,\"kind\":\"chunk\",\"n\":2}", "[1,2]");
    s_publish_batch(f, topic, "{\"call\":93,\"seq\":4,\"kind\":\"last\",\"n\":2}", "[4,5]");
    s_pump(f, 2000, s_three_events);
    assert_int_equal(f->n_events, 3);
    assert_string_equal(f->kinds[2], "error");
    assert_string_equal(f->errors[2], "Stream interrupted: chunks were lost");
    assert_int_equal(gw_bridge_stream_gaps(f->bridge), 1);
    assert_true(s_broker_recv(f, GA_CMD_STOP, 2000));
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);
}

// A batch whose data frame does not match its body (a count that differs, a body with n but no
// data frame, a data frame that is not an array) is never delivered in part or ignored: the
// stream ends with the error, as for a gap.
static void
test_bridge_ends_a_stream_on_a_malformed_batch(void **state)
{
    fixture_t *f = *state;
    static const char *const bodies[] = {
        "{\"call\":94,\"seq\":1,\"kind\":\"chunk\",\"n\":3}",
        "{\"call\":94,\"seq\":1,\"kind\":\"end\",\"n\":2}",
        "{\"call\":94,\"seq\":1,\"kind\":\"chunk\",\"n\":2}",
        "{\"call\":94,\"seq\":1,\"kind\":\"chunk\",\"n\":0}",
    };
    static const char *const items[] = {"[1,2]", "[1,2]", NULL, "[]"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        f->n_events = 0;
        char topic[256];
        int64_t id = s_start_stream(f, topic, sizeof topic);
        s_publish_batch(f, topic, bodies[i], items[i]);
        s_pump(f, 2000, s_one_error);
        assert_int_equal(f->n_events, 1);
        assert_string_equal(f->kinds[0], "error");
        assert_string_equal(f->errors[0], "Stream interrupted: chunks were lost");
        assert_true(s_broker_recv(f, GA_CMD_STOP, 2000));
        assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), id);
        assert_int_equal(gw_bridge_inflight(f->bridge), 0);
    }
    // A data frame that is not an array is malformed whatever the body says: dropped whole.
    char topic[256];
    f->n_events = 0;
    s_start_stream(f, topic, sizeof topic);
    s_publish_batch(f, topic, "{\"call\":95,\"seq\":1,\"kind\":\"chunk\",\"n\":1}", "{\"a\":1}");
    s_publish(f, topic, 95, 1, "last");
    s_pump(f, 2000, s_one_event);
    assert_int_equal(f->n_events, 1);
    assert_string_equal(f->kinds[0], "last");
}

// The caller's identity goes in a CALL only for a function declared with request_info.
// Hooks: the chain permission check -> before hook -> call -> after hook, each step sent only
// once the one before allowed it; the before hook's args (validated again) reach the call, and
// the after hook's answer is the result.
static bool
s_one_result(fixture_t *f)
{
    return f->n_results > 0;
}

// A call of s.f (n:num) with both hooks (hook_timeout `hook_ms`), and a permission check when
// `checked`.
static void
s_hooked_call(fixture_t *f, bool checked, int64_t hook_ms, ga_resp_t type)
{
    const char *cfg = "{\"functions\":[{\"service\":\"s\",\"request_type\":\"f\","
                      "\"arg_types\":{\"n\":\"num\"},\"response_type\":\"async\"}]}";
    ga_value_t body;
    assert_int_equal(ga_json_decode(cfg, strlen(cfg), f->arena, &body, NULL, 0), GA_OK);
    gw_pipeline_apply(f->pipeline, &body, false);
    static gw_identity_t who = {.user_id = "u1", .ip = "10.0.0.1"};
    ga_value_t args = ga_map(f->arena, 1);
    ga_map_put(&args, f->arena, "n", ga_int(1));
    ga_value_t extra = ga_array(f->arena, 1);
    ga_array_push(&extra, f->arena, ga_str("extra_value"));
    ga_value_t config = ga_map(f->arena, 1);
    ga_map_put(&config, f->arena, "request_type", ga_str("f"));
    gw_call_t call = {.request_id = "r1",
                      .service = "s",
                      .request_type = "f",
                      .args = args,
                      .response_type = type,
                      .timeout_ms = 5000,
                      .who = &who,
                      .before_execute = "h.before",
                      .before_args = extra,
                      .after_execute = "h.after",
                      .hook_timeout_ms = hook_ms,
                      .config = &config,
                      .permission_callback = checked ? "g.guard" : NULL};
    gw_route_t route = {.type = type, .conn_id = 1, .topic = "api:lobby", .request_id = "r1"};
    gw_call_t check;
    if (checked) {
        assert_true(gw_pipeline_check_call(&who, &call, f->arena, &check));
    }
    assert_int_equal(gw_bridge_call_checked(f->bridge, checked ? &check : NULL, &call, &route),
                     GA_OK);
}

static int64_t
s_expect_call(fixture_t *f, const char *service, const char *request_type)
{
    assert_true(s_broker_recv(f, GA_CMD_CALL, 3000));
    assert_string_equal(ga_map_get_str(&f->msg.value, "service"), service);
    assert_string_equal(ga_map_get_str(&f->msg.value, "request_type"), request_type);
    return ga_map_get_int(&f->msg.value, "id", 0);
}

static void
s_answer(fixture_t *f, int64_t id, const char *rest)
{
    char json[256];
    snprintf(json, sizeof json, "{\"id\":%lld,%s}", (long long) id, rest);
    s_broker_send(f, GA_CMD_RESULT, json);
}

static void
test_bridge_runs_the_hook_chain_in_order(void **state)
{
    fixture_t *f = *state;
    s_hooked_call(f, true, 1000, GA_RESP_ASYNC);
    int64_t id = s_expect_call(f, "g", "guard");
    s_pump(f, 100, NULL);
    assert_int_equal(f->n_accepts, 0); // nothing acknowledged while the chain decides
    s_answer(f, id, "\"ok\":true,\"result\":null");
    id = s_expect_call(f, "h", "before");
    const ga_value_t *args = ga_map_get(&f->msg.value, "args");
    assert_string_equal(ga_map_get_str(args, "hook"), "before");
    const ga_value_t *req = ga_map_get(args, "request");
    assert_string_equal(ga_map_get_str(req, "user_id"), "u1");
    assert_string_equal(ga_map_get_str(req, "ip"), "10.0.0.1");
    assert_string_equal(ga_map_get_str(req, "request_type"), "f");
    assert_int_equal(ga_map_get_int(ga_map_get(req, "args"), "n", 0), 1);
    assert_string_equal(ga_map_get_str(ga_map_get(args, "config"), "request_type"), "f");
    assert_int_equal(ga_map_get(args, "extra")->type, GA_ARRAY);
    assert_int_equal(f->n_accepts, 0);
    s_answer(f, id, "\"ok\":true,\"result\":{\"args\":{\"n\":2}}");
    id = s_expect_call(f, "s", "f");
    assert_int_equal(ga_map_get_int(ga_map_get(&f->msg.value, "args"), "n", 0), 2);
    assert_int_equal(f->n_accepts, 1); // the ack, once the call is sent
    s_answer(f, id, "\"ok\":true,\"result\":10");
    id = s_expect_call(f, "h", "after");
    args = ga_map_get(&f->msg.value, "args");
    assert_string_equal(ga_map_get_str(args, "hook"), "after");
    assert_int_equal(ga_map_get_int(args, "result", 0), 10);
    assert_int_equal(ga_map_get_int(ga_map_get(ga_map_get(args, "request"), "args"), "n", 0), 2);
    assert_int_equal(f->n_results, 0);
    s_answer(f, id, "\"ok\":true,\"result\":11");
    s_pump(f, 3000, s_one_result);
    assert_string_equal(f->result_json, "{\"ok\":true,\"result\":11}");
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

static void
test_bridge_before_hook_refusals(void **state)
{
    fixture_t *f = *state;
    struct {
        const char *answer; // the hook's RESULT (without id); NULL: none (a timeout)
        const char *error;  // what the client gets
    } cases[] = {
        {"\"ok\":false,\"error\":\"Quota exceeded\",\"code\":14", "Quota exceeded"},
        {"\"ok\":false,\"error\":\"worker lost\",\"code\":13", "Hook failed"},
        {"\"ok\":true,\"result\":{\"args\":{\"n\":\"two\"}}",
         "Invalid type for argument n: expected num"},
        {NULL, "Hook timed out"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->n_results = 0;
        s_hooked_call(f, false, 200, GA_RESP_SYNC);
        int64_t id = s_expect_call(f, "h", "before");
        if (cases[i].answer) {
            s_answer(f, id, cases[i].answer);
        }
        s_pump(f, 3000, s_one_result);
        assert_int_equal(f->n_results, 1);
        if (strstr(f->result_json, cases[i].error) == NULL) {
            fail_msg("case %zu: %s", i, f->result_json);
        }
        // The call itself was never sent.
        assert_false(s_broker_recv(f, GA_CMD_CALL, 50));
    }
    assert_int_equal(gw_pipeline_hook_failures(f->pipeline), 1);
    assert_int_equal(gw_pipeline_hook_timeouts(f->pipeline), 1);
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

static void
test_bridge_failing_after_hook_keeps_the_result(void **state)
{
    fixture_t *f = *state;
    const char *answers[] = {"\"ok\":false,\"error\":\"boom\",\"code\":15", NULL};
    for (size_t i = 0; i < 2; i++) {
        f->n_results = 0;
        s_hooked_call(f, false, 200, GA_RESP_SYNC);
        int64_t id = s_expect_call(f, "h", "before");
        s_answer(f, id, "\"ok\":true,\"result\":null");
        id = s_expect_call(f, "s", "f");
        assert_int_equal(ga_map_get_int(ga_map_get(&f->msg.value, "args"), "n", 0), 1);
        s_answer(f, id, "\"ok\":true,\"result\":{\"v\":10}");
        id = s_expect_call(f, "h", "after");
        if (answers[i]) {
            s_answer(f, id, answers[i]);
        }
        s_pump(f, 3000, s_one_result);
        assert_non_null(strstr(f->result_json, "\"ok\":true,\"result\":{\"v\":10}"));
    }
    assert_int_equal(gw_pipeline_hook_failures(f->pipeline), 1);
    assert_int_equal(gw_pipeline_hook_timeouts(f->pipeline), 1);
    // An error answer of the call itself reaches the client as it is, without the after hook.
    f->n_results = 0;
    s_hooked_call(f, false, 200, GA_RESP_SYNC);
    int64_t id = s_expect_call(f, "h", "before");
    s_answer(f, id, "\"ok\":true,\"result\":null");
    id = s_expect_call(f, "s", "f");
    s_answer(f, id, "\"ok\":false,\"error\":\"plain\",\"code\":14");
    s_pump(f, 3000, s_one_result);
    assert_non_null(strstr(f->result_json, "\"error\":\"plain\""));
    assert_false(s_broker_recv(f, GA_CMD_CALL, 50));
}

// In-process hooks (gw_pipeline_register_hook) run in the chain at once: the before hook's args
// are what the call is sent with, the after hook's answer is the result.
static ga_err_t
s_local_hook(void *arg, const ga_value_t *args, ga_arena_t *arena, ga_value_t *out, char *reason,
             size_t reason_len)
{
    (void) arg;
    (void) reason;
    (void) reason_len;
    const char *hook = ga_map_get_str(args, "hook");
    if (strcmp(hook, "before") == 0) {
        ga_value_t replaced = ga_map(arena, 1);
        ga_map_put(&replaced, arena, "n", ga_int(40));
        *out = ga_map(arena, 1);
        ga_map_put(out, arena, "args", replaced);
    } else {
        *out = ga_int(ga_map_get_int(args, "result", 0) + 2);
    }
    return GA_OK;
}

static void
test_bridge_runs_in_process_hooks(void **state)
{
    fixture_t *f = *state;
    gw_pipeline_register_hook(f->pipeline, "h.before", s_local_hook, NULL);
    gw_pipeline_register_hook(f->pipeline, "h.after", s_local_hook, NULL);
    s_hooked_call(f, false, 1000, GA_RESP_SYNC);
    int64_t id = s_expect_call(f, "s", "f"); // the hook ran at once: the call is what comes
    assert_int_equal(ga_map_get_int(ga_map_get(&f->msg.value, "args"), "n", 0), 40);
    s_answer(f, id, "\"ok\":true,\"result\":40");
    s_pump(f, 3000, s_one_result);
    assert_string_equal(f->result_json, "{\"ok\":true,\"result\":42}");
    assert_false(s_broker_recv(f, GA_CMD_CALL, 50));
    assert_int_equal(gw_bridge_inflight(f->bridge), 0);
}

// The hook events (docs/telemetry.md) of in-process hooks, recorded by a handler.
typedef struct {
    int n;
    ga_event_t ev[8];
    char service[8][16];
    char request_type[8][16];
    char request_id[8][16];
    int success[8];
    int64_t duration_us[8];
} hook_events_t;

static void
s_on_hook_event(ga_event_t ev, const ga_tm_data_t *d, void *arg)
{
    hook_events_t *h = arg;
    if (h->n == 8) {
        return;
    }
    h->ev[h->n] = ev;
    snprintf(h->service[h->n], 16, "%s", d->service ? d->service : "");
    snprintf(h->request_type[h->n], 16, "%s", d->request_type ? d->request_type : "");
    snprintf(h->request_id[h->n], 16, "%s", d->request_id ? d->request_id : "");
    h->success[h->n] = d->success;
    h->duration_us[h->n] = d->duration_us;
    h->n++;
}

static void
test_bridge_in_process_hooks_emit_hook_events(void **state)
{
    fixture_t *f = *state;
    hook_events_t h = {0};
    int id;
    assert_int_equal(ga_telemetry_attach_hooks("test", s_on_hook_event, &h, &id), GA_OK);
    gw_pipeline_register_hook(f->pipeline, "h.before", s_local_hook, NULL);
    gw_pipeline_register_hook(f->pipeline, "h.after", s_local_hook, NULL);
    s_hooked_call(f, false, 1000, GA_RESP_SYNC);
    int64_t call_id = s_expect_call(f, "s", "f");
    s_answer(f, call_id, "\"ok\":true,\"result\":40");
    s_pump(f, 3000, s_one_result);
    assert_string_equal(f->result_json, "{\"ok\":true,\"result\":42}");
    GA_IGNORE(ga_telemetry_detach(id));
    const ga_event_t want[] = {GA_EV_HOOK_BEFORE_START, GA_EV_HOOK_BEFORE_STOP,
                               GA_EV_HOOK_AFTER_START, GA_EV_HOOK_AFTER_STOP};
    assert_int_equal(h.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(h.ev[i], want[i]);
        assert_string_equal(h.service[i], "s"); // the hooked call's, though its route had none
        assert_string_equal(h.request_type[i], "f");
        assert_string_equal(h.request_id[i], "r1");
        assert_int_equal(h.success[i], i % 2 ? GA_TM_TRUE : GA_TM_UNSET);
        assert_true(h.duration_us[i] >= 0);
    }
}

static void
test_bridge_sends_the_identity_only_with_request_info(void **state)
{
    fixture_t *f = *state;
    const char *const roles[] = {"admin"};
    gw_identity_t who = {
        .user_id = "u1", .roles = roles, .n_roles = 1, .device_id = "d1", .ip = "10.0.0.9"};
    const char *const keys[] = {"user_id", "roles", "device_id", "ip"};
    for (int info = 0; info < 2; info++) {
        gw_call_t call = {.request_id = "r1",
                          .service = "s",
                          .request_type = "f",
                          .args = ga_map(f->arena, 0),
                          .response_type = GA_RESP_NONE,
                          .timeout_ms = 5000,
                          .who = &who,
                          .request_info = info == 1};
        gw_route_t route = {.type = GA_RESP_NONE, .conn_id = 1, .request_id = "r1"};
        assert_int_equal(gw_bridge_call(f->bridge, &call, &route), GA_OK);
        assert_true(s_broker_recv(f, GA_CMD_CALL, 3000));
        for (size_t k = 0; k < 4; k++) {
            if ((ga_map_get(&f->msg.value, keys[k]) != NULL) != (info == 1)) {
                fail_msg("request_info %d: %s %s", info, keys[k], info ? "missing" : "sent");
            }
        }
    }
    assert_string_equal(ga_map_get_str(&f->msg.value, "user_id"), "u1");
    assert_string_equal(ga_map_get_str(&f->msg.value, "ip"), "10.0.0.9");
}

// The CALL carries routing_key exactly when the call has one (hash:ARG, sticky:KEY).
static void
test_bridge_sends_the_routing_key_when_set(void **state)
{
    fixture_t *f = *state;
    gw_identity_t who = {0};
    const char *keys[] = {NULL, "alice"};
    for (int i = 0; i < 2; i++) {
        gw_call_t call = {.request_id = "r1",
                          .service = "s",
                          .request_type = "f",
                          .args = ga_map(f->arena, 0),
                          .response_type = GA_RESP_NONE,
                          .timeout_ms = 5000,
                          .who = &who,
                          .routing_key = keys[i]};
        gw_route_t route = {.type = GA_RESP_NONE, .conn_id = 1, .request_id = "r1"};
        assert_int_equal(gw_bridge_call(f->bridge, &call, &route), GA_OK);
        assert_true(s_broker_recv(f, GA_CMD_CALL, 3000));
        const char *got = ga_map_get_str(&f->msg.value, "routing_key");
        if (keys[i]) {
            assert_non_null(got);
            assert_string_equal(got, keys[i]);
        } else {
            assert_null(ga_map_get(&f->msg.value, "routing_key"));
        }
    }
}

static void
test_bridge_asks_for_a_snapshot_when_an_update_is_missing(void **state)
{
    fixture_t *f = *state;
    s_broker_send(f, GA_CMD_UPDATE,
                  "{\"seq\":2,\"functions\":[{\"service\":\"s\",\"request_type\":\"a\"}],"
                  "\"removed\":[]}");
    assert_false(s_broker_recv(f, GA_CMD_HELLO, 300)); // in order: nothing to ask
    assert_int_equal(gw_pipeline_function_count(f->pipeline), 2);
    // 3 never arrives (the broker's queue to us was full).
    s_broker_send(f, GA_CMD_UPDATE,
                  "{\"seq\":4,\"functions\":[],"
                  "\"removed\":[{\"service\":\"s\",\"request_type\":\"st\"}]}");
    assert_true(s_broker_recv(f, GA_CMD_HELLO, 2000));
    assert_int_equal(gw_bridge_registry_gaps(f->bridge), 1);
    assert_int_equal(gw_pipeline_function_count(f->pipeline), 1); // applied as far as it goes
    // Until the snapshot comes it asks again, once a heartbeat.
    assert_true(s_broker_recv(f, GA_CMD_HELLO, 2500));
    s_broker_send(f, GA_CMD_SNAPSHOT,
                  "{\"seq\":4,\"functions\":[{\"service\":\"s\",\"request_type\":\"a\"},"
                  "{\"service\":\"s\",\"request_type\":\"b\"}],\"heartbeat_ms\":1000}");
    assert_false(s_broker_recv(f, GA_CMD_HELLO, 1500));
    assert_int_equal(gw_pipeline_function_count(f->pipeline), 2);
    // Numbering continues from the snapshot's.
    s_broker_send(f, GA_CMD_UPDATE, "{\"seq\":5,\"functions\":[],\"removed\":[]}");
    s_broker_send(f, GA_CMD_HEARTBEAT, "{\"seq\":5}");
    assert_false(s_broker_recv(f, GA_CMD_HELLO, 300));
    assert_int_equal(gw_bridge_registry_gaps(f->bridge), 1);
}

// The lost update was the last one: the broker's heartbeat names a newer registry.
static void
test_bridge_asks_for_a_snapshot_when_a_heartbeat_names_a_newer_registry(void **state)
{
    fixture_t *f = *state;
    s_broker_send(f, GA_CMD_HEARTBEAT, "{\"seq\":1}");
    assert_false(s_broker_recv(f, GA_CMD_HELLO, 300));
    s_broker_send(f, GA_CMD_HEARTBEAT, "{\"seq\":2}");
    assert_true(s_broker_recv(f, GA_CMD_HELLO, 2000));
    assert_int_equal(gw_bridge_registry_gaps(f->bridge), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_bridge_turns_a_stream_gap_into_an_error_and_stops_the_call, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_runs_the_hook_chain_in_order, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_before_hook_refusals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_runs_in_process_hooks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_in_process_hooks_emit_hook_events, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_failing_after_hook_keeps_the_result, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_sends_the_routing_key_when_set, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_drops_duplicates_and_ends_on_last, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_stops_a_disconnected_clients_streams, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_bridge_stream_deadline_bounds_silence_not_the_whole_stream, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_infinite_stream_ends_on_a_broker_error,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_delivers_a_batch_message_by_message, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_batch_ending_in_an_error, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_batches_keep_duplicates_and_gaps_exact,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_ends_a_stream_on_a_malformed_batch, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_sends_the_identity_only_with_request_info,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_asks_for_a_snapshot_when_an_update_is_missing,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_bridge_asks_for_a_snapshot_when_a_heartbeat_names_a_newer_registry, s_setup,
            s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
