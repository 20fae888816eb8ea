// SPDX-License-Identifier: MIT
// The worker library's stream publisher against a fake broker (an XSUB bound on loopback TCP,
// driven by the test; docs/protocol.md, "Streams on the proxy"): messages queued faster than
// they can go leave as batches with exact sequence numbers; a message sent alone leaves in the
// single form; a cancelled stream's queued messages are dropped; a stream's queue is bounded
// (a send with no room for 5 s fails).
#include "wk_internal.h"

#include "ga_clock.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

static void
s_never(wk_request_t *req, void *ctx)
{
    (void) req;
    (void) ctx;
}

static const wk_function_t s_functions[] = {
    {.request_type = "feed", .response_type = "stream", .timeout_ms = -1, .handler = s_never},
};

static const wk_service_t s_service = {
    .service = "svc", .node = "svc@test", .functions = s_functions, .n_functions = 1};

typedef struct {
    void *zctx;       // the fake broker's context
    void *xsub;       // the fake broker's stream-in socket
    wk_worker_t *w;   // the worker (never started: only its stream side is used)
    ga_arena_t *arena; // decoded messages
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->zctx = zmq_ctx_new();
    f->xsub = zmq_socket(f->zctx, ZMQ_XSUB);
    int zero = 0;
    zmq_setsockopt(f->xsub, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(f->xsub, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(f->xsub, ZMQ_LAST_ENDPOINT, endpoint, &len);
    f->w = wk_worker_new(&s_service, NULL);
    wk_stream_connect(f->w, endpoint);
    f->arena = ga_arena_new(4096);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    wk_worker_destroy(&f->w);
    zmq_close(f->xsub);
    zmq_ctx_term(f->zctx);
    ga_arena_destroy(&f->arena);
    free(f);
    return 0;
}

// The broker's subscription (to everything): until it arrives, the worker sends nothing.
static void
s_subscribe(fixture_t *f)
{
    assert_int_equal(zmq_send(f->xsub, "\x01", 1, 0), 1);
}

// One received stream message: its body and, for a batch, its data frame.
typedef struct {
    ga_value_t body;
    ga_value_t items; // nil for the single form
    bool batch;
} msg_t;

// Receives one stream message within `ms`; false when none came.
static bool
s_recv(fixture_t *f, msg_t *m, int ms)
{
    zmq_pollitem_t item = {.socket = f->xsub, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, ms) != 1) {
        return false;
    }
    zmq_msg_t part;
    zmq_msg_init(&part);
    int frame = 0;
    bool more = true;
    *m = (msg_t){.body = ga_nil(), .items = ga_nil()};
    while (more) {
        assert_true(zmq_msg_recv(&part, f->xsub, 0) >= 0);
        more = zmq_msg_more(&part);
        const uint8_t *data = zmq_msg_data(&part);
        size_t size = zmq_msg_size(&part);
        if (frame == 0) {
            assert_int_equal(size, 6);
            assert_memory_equal(data, "s.gw.7", 6);
        } else if (frame == 1) {
            assert_true(size > GA_PROTO_HEAD_LEN); // tag, command, then the body
            assert_memory_equal(data, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
            assert_int_equal(data[GA_PROTO_TAG_LEN], GA_CMD_STREAM);
            assert_int_equal(ga_wire_decode(data + GA_PROTO_HEAD_LEN, size - GA_PROTO_HEAD_LEN,
                                            f->arena, &m->body),
                             GA_OK);
        } else {
            assert_int_equal(frame, 2);
            assert_int_equal(ga_wire_decode(data, size, f->arena, &m->items), GA_OK);
            assert_int_equal(m->items.type, GA_ARRAY);
            m->batch = true;
        }
        frame++;
    }
    zmq_msg_close(&part);
    assert_true(frame == 2 || frame == 3);
    assert_int_equal(ga_map_get_int(&m->body, "call", 0), 7);
    // A batch says how many messages it holds; the single form never does.
    assert_int_equal(ga_map_get(&m->body, "n") != NULL, m->batch);
    return true;
}

// Chunks 1..100 and the end, queued before the broker's subscription arrives: the publisher can
// send none of them yet, so they leave as one batch (two at most: the publisher may have taken
// the first chunk alone before it found it could not send), numbered 1..101 without a gap.
static void
test_stream_messages_queued_meanwhile_leave_as_one_batch(void **state)
{
    fixture_t *f = *state;
    wk_stream_t *s = wk_stream_open(f->w, 7, "s.gw.7");
    for (int i = 1; i <= 100; i++) {
        assert_int_equal(wk_stream_send(s, wk_int(wk_stream_ctx(s), i)), GA_OK);
    }
    assert_int_equal(wk_stream_complete(s), GA_OK);
    s_subscribe(f);
    int64_t next = 1;
    int messages = 0;
    bool ended = false;
    while (!ended) {
        msg_t m;
        assert_true(s_recv(f, &m, 5000));
        messages++;
        assert_int_equal(ga_map_get_int(&m.body, "seq", 0), next);
        const char *kind = ga_map_get_str(&m.body, "kind");
        int64_t n = m.batch ? ga_map_get_int(&m.body, "n", 0) : 1;
        ended = strcmp(kind, "end") == 0;
        if (m.batch) {
            assert_int_equal(m.items.len, ended ? n - 1 : n);
            for (uint32_t i = 0; i < m.items.len; i++) {
                assert_int_equal(m.items.u.items[i].type, GA_INT);
                assert_int_equal(m.items.u.items[i].u.i, next + i);
            }
        } else {
            assert_string_equal(kind, "chunk");
            assert_int_equal(ga_map_get_int(&m.body, "data", 0), next);
        }
        next += n;
        ga_arena_reset(f->arena);
    }
    assert_int_equal(next, 102);
    assert_true(messages <= 2);
}

// A message sent when nothing else is queued leaves at once, alone, in the single form
// {call, seq, kind, data}; the error end carries its message.
static void
test_stream_message_sent_alone_leaves_in_the_single_form(void **state)
{
    fixture_t *f = *state;
    s_subscribe(f);
    wk_stream_t *s = wk_stream_open(f->w, 7, "s.gw.7");
    wk_request_t *ctx = wk_stream_ctx(s);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(wk_stream_send(s, wk_map(ctx, "i", wk_int(ctx, i), NULL)), GA_OK);
        msg_t m;
        assert_true(s_recv(f, &m, 5000));
        assert_false(m.batch);
        assert_int_equal(ga_map_get_int(&m.body, "seq", 0), i);
        assert_string_equal(ga_map_get_str(&m.body, "kind"), "chunk");
        assert_int_equal(ga_map_get_int(ga_map_get(&m.body, "data"), "i", 0), i);
        ga_arena_reset(f->arena);
    }
    assert_int_equal(wk_stream_error(s, "disk full"), GA_OK);
    msg_t m;
    assert_true(s_recv(f, &m, 5000));
    assert_false(m.batch);
    assert_int_equal(ga_map_get_int(&m.body, "seq", 0), 4);
    assert_string_equal(ga_map_get_str(&m.body, "kind"), "error");
    assert_string_equal(ga_map_get_str(&m.body, "error"), "disk full");
    assert_null(ga_map_get(&m.body, "data"));
}

// A stream the broker cancels: later sends are refused, and what was queued is not sent.
static void
test_stream_cancelled_drops_its_queue(void **state)
{
    fixture_t *f = *state;
    wk_stream_t *s = wk_stream_open(f->w, 7, "s.gw.7");
    for (int i = 1; i <= 10; i++) {
        assert_int_equal(wk_stream_send(s, wk_int(wk_stream_ctx(s), i)), GA_OK);
    }
    wk_stream_cancel(f->w, 7);
    assert_true(wk_stream_is_cancelled(s));
    assert_int_equal(wk_stream_send(s, wk_int(wk_stream_ctx(s), 11)), GA_ECLOSED);
    assert_int_equal(wk_stream_complete(s), GA_ECLOSED);
    s_subscribe(f);
    msg_t m;
    assert_false(s_recv(f, &m, 300));
}

// A stream's queue is bounded: with the broker not taking anything (no subscription), a send
// waits for room for 5 s at most, then fails with GA_EAGAIN, and the stream can still be ended.
static void
test_stream_queue_is_bounded(void **state)
{
    fixture_t *f = *state;
    wk_stream_t *s = wk_stream_open(f->w, 7, "s.gw.7");
    ga_err_t rc = GA_OK;
    int sent = 0;
    while (rc == GA_OK && sent < 100000) {
        rc = wk_stream_send(s, wk_int(wk_stream_ctx(s), sent + 1));
        sent += rc == GA_OK;
    }
    assert_int_equal(rc, GA_EAGAIN);
    assert_true(sent < 1000); // a queue's worth (and the publisher's batch), not everything
    wk_stream_cancel(f->w, 7);
    assert_int_equal(wk_stream_complete(s), GA_ECLOSED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_messages_queued_meanwhile_leave_as_one_batch,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stream_message_sent_alone_leaves_in_the_single_form,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stream_cancelled_drops_its_queue, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_stream_queue_is_bounded, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
