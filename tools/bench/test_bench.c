// SPDX-License-Identifier: MIT
// genapi-bench's own arithmetic and framing: nearest-rank percentiles, WebSocket frames
// encoded and decoded at every length boundary, NATS protocol text cut anywhere, and the
// stream convention shared with genapi-nats-responder.
#include "bench_nats.h"
#include "bench_relay.h"
#include "bench_stats.h"
#include "bench_ws.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void
test_stats_percentiles_by_nearest_rank(void **state)
{
    (void) state;
    bench_stats_t s;
    bench_stats_init(&s, 1000);
    for (int i = 100; i >= 1; i--) {
        bench_stats_add(&s, i); // unsorted input
    }
    bench_stats_sort(&s);
    assert_int_equal(bench_stats_quantile(&s, 0.5), 50);
    assert_int_equal(bench_stats_quantile(&s, 0.9), 90);
    assert_int_equal(bench_stats_quantile(&s, 0.99), 99);
    assert_int_equal(bench_stats_quantile(&s, 0.999), 100);
    assert_int_equal(bench_stats_quantile(&s, 1.0), 100);
    assert_int_equal(bench_stats_quantile(&s, 0.0), 1);
    bench_stats_fini(&s);

    bench_stats_t one;
    bench_stats_init(&one, 2);
    assert_int_equal(bench_stats_quantile(&one, 0.5), 0); // empty
    bench_stats_add(&one, 7);
    bench_stats_add(&one, 9);
    bench_stats_add(&one, 11); // beyond capacity: counted as dropped
    bench_stats_sort(&one);
    assert_int_equal(one.dropped, 1);
    assert_int_equal(bench_stats_quantile(&one, 0.5), 7);
    assert_int_equal(bench_stats_quantile(&one, 0.51), 9);
    bench_stats_fini(&one);
}

// A server frame (unmasked) of `len` bytes, built by hand.
static size_t
s_server_frame(uint8_t *out, const uint8_t *payload, size_t len)
{
    size_t n = 0;
    out[n++] = 0x81;
    if (len < 126) {
        out[n++] = (uint8_t) len;
    } else if (len < 65536) {
        out[n++] = 126;
        out[n++] = (uint8_t) (len >> 8);
        out[n++] = (uint8_t) len;
    } else {
        out[n++] = 127;
        for (int i = 7; i >= 0; i--) {
            out[n++] = (uint8_t) ((uint64_t) len >> (8 * i));
        }
    }
    memcpy(out + n, payload, len);
    return n + len;
}

static void
test_ws_frames_round_trip_at_length_boundaries(void **state)
{
    (void) state;
    size_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    uint8_t *payload = malloc(70000);
    uint8_t *frame = malloc(70016);
    for (size_t i = 0; i < 70000; i++) {
        payload[i] = (uint8_t) (i * 7);
    }
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        size_t len = lengths[k];
        // Client frames: masked; unmasking with the key gives the payload back.
        size_t n = bench_ws_encode(frame, BENCH_WS_TEXT, payload, len, 0x01020304u);
        size_t head = len < 126 ? 2 : (len < 65536 ? 4 : 10);
        assert_int_equal(n, head + 4 + len);
        assert_int_equal(frame[0], 0x81);
        assert_true(frame[1] & 0x80);
        const uint8_t *key = frame + head;
        for (size_t i = 0; i < len; i++) {
            assert_int_equal(frame[head + 4 + i] ^ key[i & 3], payload[i]);
        }
        // Server frames: decoded whole, and incomplete at every shorter prefix of the header.
        n = s_server_frame(frame, payload, len);
        int opcode;
        bool fin;
        size_t start, plen;
        assert_int_equal(bench_ws_decode(frame, n, &opcode, &fin, &start, &plen), (long) n);
        assert_int_equal(opcode, BENCH_WS_TEXT);
        assert_true(fin);
        assert_int_equal(plen, len);
        assert_memory_equal(frame + start, payload, len);
        for (size_t cut = 0; cut < n && cut < 12; cut++) {
            assert_int_equal(bench_ws_decode(frame, cut, &opcode, &fin, &start, &plen), 0);
        }
    }
    const uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    int opcode;
    bool fin;
    size_t start, plen;
    assert_int_equal(bench_ws_decode(masked, sizeof masked, &opcode, &fin, &start, &plen), -1);
    free(payload);
    free(frame);
}

static void
test_ws_handshake_request_and_response(void **state)
{
    (void) state;
    char req[512];
    size_t n = bench_ws_handshake(req, sizeof req, "127.0.0.1:4000", "/socket/websocket?vsn=2.0.0");
    assert_true(n > 0);
    assert_non_null(strstr(req, "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "Upgrade: websocket\r\n"));
    size_t used = 0;
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81";
    assert_int_equal(bench_ws_handshake_done(ok, strlen(ok), &used), 1);
    assert_int_equal(used, strlen(ok) - 1);
    const char *partial = "HTTP/1.1 101 Switching Protocols\r\n";
    assert_int_equal(bench_ws_handshake_done(partial, strlen(partial), &used), 0);
    const char *refused = "HTTP/1.1 403 Forbidden\r\n\r\n";
    assert_int_equal(bench_ws_handshake_done(refused, strlen(refused), &used), -1);
}

static void
test_nats_parse_operations(void **state)
{
    (void) state;
    const char text[] = "INFO {\"server_id\":\"x\"}\r\n"
                        "MSG _INBOX.3.42 1 7\r\n{\"i\":1}\r\n"
                        "MSG\t_INBOX.3.43  1 reply.to 4\r\na\r\nb\r\n" // CRLF in a payload
                        "PING\r\n"
                        "PONG\r\n"
                        "-ERR 'Maximum Payload Violation'\r\n"
                        "+OK\r\n";
    size_t len = sizeof text - 1;
    size_t off = 0;
    bench_nats_op_t op;
    long n = bench_nats_parse(text + off, len - off, &op);
    assert_int_equal(op.kind, BENCH_NATS_OTHER);
    off += (size_t) n;
    n = bench_nats_parse(text + off, len - off, &op);
    assert_int_equal(op.kind, BENCH_NATS_MSG);
    assert_int_equal(n, strlen("MSG _INBOX.3.42 1 7\r\n{\"i\":1}\r\n"));
    assert_int_equal(op.subject_len, strlen("_INBOX.3.42"));
    assert_memory_equal(op.subject, "_INBOX.3.42", op.subject_len);
    assert_int_equal(bench_nats_subject_ref(op.subject, op.subject_len), 42);
    assert_int_equal(op.payload_len, 7);
    assert_memory_equal(op.payload, "{\"i\":1}", 7);
    off += (size_t) n;
    n = bench_nats_parse(text + off, len - off, &op);
    assert_int_equal(op.kind, BENCH_NATS_MSG);
    assert_int_equal(bench_nats_subject_ref(op.subject, op.subject_len), 43);
    assert_int_equal(op.payload_len, 4);
    assert_memory_equal(op.payload, "a\r\nb", 4);
    off += (size_t) n;
    bench_nats_kind_t rest[] = {BENCH_NATS_PING, BENCH_NATS_PONG, BENCH_NATS_ERR, BENCH_NATS_OTHER};
    for (size_t i = 0; i < 4; i++) {
        n = bench_nats_parse(text + off, len - off, &op);
        assert_true(n > 0);
        assert_int_equal(op.kind, rest[i]);
        off += (size_t) n;
    }
    assert_int_equal(off, len);
    assert_int_equal(bench_nats_parse(text, 0, &op), 0);

    // Malformed: too few fields, a byte count that is not a number, a payload without its
    // CRLF, a line longer than any the server sends.
    const char *bad[] = {"MSG a 1\r\n", "MSG a 1 x7\r\n{\"i\":1}\r\n", "MSG a 1 2 3 4\r\n",
                         "MSG a 1 2\r\nabcd\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bench_nats_parse(bad[i], strlen(bad[i]), &op), -1);
    }
    char *long_line = malloc(BENCH_NATS_MAX_LINE + 10);
    memset(long_line, 'x', BENCH_NATS_MAX_LINE + 10);
    assert_int_equal(bench_nats_parse(long_line, BENCH_NATS_MAX_LINE + 1, &op), 0);
    assert_int_equal(bench_nats_parse(long_line, BENCH_NATS_MAX_LINE + 10, &op), -1);
    free(long_line);

    assert_int_equal(bench_nats_subject_ref("_INBOX.0.", 9), 0);
    assert_int_equal(bench_nats_subject_ref("nodot", 5), 0);
    assert_int_equal(bench_nats_subject_ref("_INBOX.0.1x", 11), 0);
    assert_int_equal(bench_nats_subject_ref("_INBOX.17.18446744073709551615", 30),
                     UINT64_MAX);
}

static void
test_nats_message_incomplete_at_every_cut(void **state)
{
    (void) state;
    const char msg[] = "MSG _INBOX.0.7 1 22\r\n{\"i\":1000,\"last\":true}\r\n";
    size_t len = sizeof msg - 1;
    bench_nats_op_t op;
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(bench_nats_parse(msg, cut, &op), 0);
    }
    assert_int_equal(bench_nats_parse(msg, len, &op), (long) len);
    assert_true(bench_nats_stream_is_last(op.payload, op.payload_len));
}

// A stream as the server sends it, delivered in pieces of every size from 1 to 97 bytes the
// way genapi-bench receives it (appended to the text kept from earlier frames): every message
// is seen once, in order, and only the last is marked last.
static void
test_nats_stream_across_frames(void **state)
{
    (void) state;
    enum { N = 300 };
    char *wire = malloc(N * 64);
    size_t wire_len = 0;
    for (long long i = 1; i <= N; i++) {
        char chunk[64];
        size_t clen = bench_nats_stream_chunk(chunk, sizeof chunk, i, N);
        assert_true(clen > 0);
        wire_len += (size_t) sprintf(wire + wire_len, "MSG _INBOX.5.9 1 %zu\r\n%.*s\r\n", clen,
                                     (int) clen, chunk);
    }
    char *text = malloc(wire_len);
    for (size_t piece = 1; piece < 98; piece++) {
        size_t text_len = 0;
        long long seen = 0;
        int lasts = 0;
        for (size_t sent = 0; sent < wire_len;) {
            size_t take = wire_len - sent < piece ? wire_len - sent : piece;
            memcpy(text + text_len, wire + sent, take);
            text_len += take;
            sent += take;
            size_t off = 0;
            bench_nats_op_t op;
            long used;
            while ((used = bench_nats_parse(text + off, text_len - off, &op)) > 0) {
                assert_int_equal(op.kind, BENCH_NATS_MSG);
                assert_int_equal(bench_nats_subject_ref(op.subject, op.subject_len), 9);
                char expect[64];
                size_t elen = bench_nats_stream_chunk(expect, sizeof expect, ++seen, N);
                assert_int_equal(op.payload_len, elen);
                assert_memory_equal(op.payload, expect, elen);
                lasts += bench_nats_stream_is_last(op.payload, op.payload_len);
                off += (size_t) used;
            }
            assert_int_equal(used, 0);
            memmove(text, text + off, text_len - off);
            text_len -= off;
        }
        assert_int_equal(seen, N);
        assert_int_equal(lasts, 1);
        assert_int_equal(text_len, 0);
    }
    free(text);
    free(wire);
}

static void
test_nats_stream_convention(void **state)
{
    (void) state;
    const char *good[] = {"{\"n\":1000}", "{ \"n\" : 5 }", "{\"x\":\"n\",\"n\":3}",
                          "{\"n\":1000000000}"};
    long long want[] = {1000, 5, 3, 1000000000};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(bench_nats_stream_n(good[i], strlen(good[i])), want[i]);
    }
    const char *bad[] = {"{}", "{\"n\":0}", "{\"n\":-1}", "{\"n\":1.5}", "{\"n\":1e3}",
                         "{\"n\":\"7\"}", "{\"n\":1000000001}", "{\"name\":4}", "{\"n\":"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bench_nats_stream_n(bad[i], strlen(bad[i])), 0);
    }
    // Only part of the payload is read: a length that stops before the digits finds nothing.
    assert_int_equal(bench_nats_stream_n("{\"n\":12}", 5), 0);

    char out[64];
    assert_int_equal(bench_nats_stream_chunk(out, sizeof out, 1, 3), 7);
    assert_memory_equal(out, "{\"i\":1}", 7);
    assert_false(bench_nats_stream_is_last(out, 7));
    size_t n = bench_nats_stream_chunk(out, sizeof out, 3, 3);
    assert_string_equal(out, "{\"i\":3,\"last\":true}");
    assert_true(bench_nats_stream_is_last(out, n));
    assert_false(bench_nats_stream_is_last(out, n - 2)); // ..."last":tru
    assert_int_equal(bench_nats_stream_chunk(out, 8, 1000, 1000), 0);
    assert_true(bench_nats_stream_is_last(BENCH_NATS_STREAM_BAD_REQUEST,
                                          strlen(BENCH_NATS_STREAM_BAD_REQUEST)));
}

// The relay scenario's message text is found in a genapi push and in a NATS payload; nothing
// else parses as one.
static void
test_relay_message_found_in_any_frame(void **state)
{
    (void) state;
    char text[64];
    size_t n = bench_relay_message(text, sizeof text, 123456789, 42);
    assert_string_equal(text, "t:123456789:42");
    assert_int_equal(n, strlen(text));
    assert_int_equal(bench_relay_message(text, 8, 123456789, 42), 0); // too short
    int64_t t = 0;
    uint64_t m = 0;
    const char *push = "[\"1\",null,\"chat:bench\",\"api\",{\"kind\":\"relay\",\"result\":"
                       "{\"from_user_id\":\"m3t:9\",\"message\":\"t:77:5\"}}]";
    assert_true(bench_relay_parse(push, strlen(push), &t, &m));
    assert_int_equal(t, 77);
    assert_int_equal(m, 5);
    assert_true(bench_relay_parse("t:1:2", 5, &t, &m));
    assert_int_equal(m, 2);
    assert_false(bench_relay_parse("t:1:", 4, &t, &m));
    assert_false(bench_relay_parse("xt:1:2", 6, &t, &m));
    assert_false(bench_relay_parse("t:1:2", 4, &t, &m)); // cut before the number
}

// The window: complete when every expected delivery came, in any order; full at its size;
// outstanding messages given up after their age; strays counted.
static void
test_relay_window(void **state)
{
    (void) state;
    bench_relay_window_t w;
    bench_relay_window_init(&w, 3); // rounded up to 4
    assert_int_equal(w.cap, 4);
    assert_int_equal(bench_relay_window_send(&w, 2, 100), 1);
    assert_int_equal(bench_relay_window_send(&w, 2, 100), 2);
    assert_int_equal(bench_relay_window_send(&w, 2, 200), 3);
    assert_int_equal(bench_relay_window_send(&w, 0, 200), 0); // nobody to deliver to
    assert_int_equal(bench_relay_window_send(&w, 2, 200), 4);
    assert_int_equal(bench_relay_window_send(&w, 2, 200), 0); // full
    assert_false(bench_relay_window_got(&w, 2));
    assert_true(bench_relay_window_got(&w, 2)); // 2 completes before 1
    assert_int_equal(bench_relay_window_send(&w, 2, 200), 0); // 1 still holds the ring
    assert_false(bench_relay_window_got(&w, 2)); // a stray
    assert_int_equal(w.stray, 1);
    assert_false(bench_relay_window_got(&w, 1));
    assert_true(bench_relay_window_got(&w, 1));
    assert_int_equal(w.low, 3);
    assert_int_equal(bench_relay_window_send(&w, 2, 300), 5);
    assert_int_equal(bench_relay_window_send(&w, 2, 300), 6);
    assert_int_equal(w.outstanding, 4);
    // 3 and 4 (sent at 200) are given up at 1200 with a 900 us limit; 5 and 6 wait.
    assert_int_equal(bench_relay_window_sweep(&w, 1200, 900), 2);
    assert_int_equal(w.expired, 2);
    assert_int_equal(w.outstanding, 2);
    assert_int_equal(w.low, 5);
    assert_false(bench_relay_window_got(&w, 3)); // given up: a stray now
    assert_int_equal(w.completed, 2);
    bench_relay_window_fini(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_percentiles_by_nearest_rank),
        cmocka_unit_test(test_ws_frames_round_trip_at_length_boundaries),
        cmocka_unit_test(test_ws_handshake_request_and_response),
        cmocka_unit_test(test_nats_parse_operations),
        cmocka_unit_test(test_nats_message_incomplete_at_every_cut),
        cmocka_unit_test(test_nats_stream_across_frames),
        cmocka_unit_test(test_nats_stream_convention),
        cmocka_unit_test(test_relay_message_found_in_any_frame),
        cmocka_unit_test(test_relay_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
