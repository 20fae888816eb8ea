// SPDX-License-Identifier: MIT
// The NATS side of genapi-bench, as pure functions over byte buffers: the server's protocol
// text parsed one operation at a time (the caller keeps the text across WebSocket frames, which
// may hold several operations or part of one), and the stream convention shared by
// genapi-bench (mode nats-stream) and genapi-nats-responder (--stream). No I/O.
//
// Stream convention: a request's payload is the JSON {"n":N} (the same args genapi's
// test_service.count takes); the responder publishes N messages to the request's reply subject,
// {"i":1} .. {"i":N-1} and then {"i":N,"last":true}, the same data per chunk as count's. A
// request without a positive n gets one message, {"error":"...","last":true}.
#ifndef BENCH_NATS_H
#define BENCH_NATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The server's control lines are at most 4096 bytes (nats-server's max_control_line default).
#define BENCH_NATS_MAX_LINE 4096

typedef enum {
    BENCH_NATS_MSG,   // MSG <subject> <sid> [reply-to] <#bytes>\r\n<payload>\r\n
    BENCH_NATS_PING,  // PING: answer PONG
    BENCH_NATS_PONG,  // PONG: the answer to ours
    BENCH_NATS_ERR,   // -ERR '...'
    BENCH_NATS_OTHER, // INFO, +OK and anything else: ignored
} bench_nats_kind_t;

typedef struct {
    bench_nats_kind_t kind;
    const char *line;      // the control line, without its CRLF
    size_t line_len;
    const char *subject;   // MSG: subject
    size_t subject_len;
    const char *payload;   // MSG: payload (not NUL-terminated)
    size_t payload_len;
} bench_nats_op_t;

// Parses the operation at buf[0..len). Returns 0 when it is not complete yet, -1 when it is
// malformed (a MSG line that does not parse, a line over BENCH_NATS_MAX_LINE, a payload not
// followed by CRLF), else its length in bytes; *op points into buf.
long bench_nats_parse(const char *buf, size_t len, bench_nats_op_t *op);

// The number after a subject's last dot (the request ref in _INBOX.<conn>.<ref>); 0 if none.
uint64_t bench_nats_subject_ref(const char *subject, size_t len);

// The largest N a stream request may ask for.
#define BENCH_NATS_MAX_STREAM 1000000000LL
// The one message a stream request without a valid N gets.
#define BENCH_NATS_STREAM_BAD_REQUEST "{\"error\":\"expected {n: N}, 1 <= N <= 1e9\",\"last\":true}"

// A stream request's N, from the payload {"n":N}; 0 when absent, not a positive integer or over
// BENCH_NATS_MAX_STREAM.
long long bench_nats_stream_n(const char *payload, size_t len);

// Writes message i (1..n) of a stream of n into out; returns its length (0 if cap is short).
size_t bench_nats_stream_chunk(char *out, size_t cap, long long i, long long n);

// True when a stream message is its stream's last ("last":true).
bool bench_nats_stream_is_last(const char *payload, size_t len);

#endif
