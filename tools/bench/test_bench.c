// SPDX-License-Identifier: MIT
// genapi-bench's own arithmetic and framing: nearest-rank percentiles, and WebSocket frames
// encoded and decoded at every length boundary.
#include "bench_stats.h"
#include "bench_ws.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_percentiles_by_nearest_rank),
        cmocka_unit_test(test_ws_frames_round_trip_at_length_boundaries),
        cmocka_unit_test(test_ws_handshake_request_and_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
