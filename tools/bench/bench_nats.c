// SPDX-License-Identifier: MIT
// NATS protocol text (the server's side of https://docs.nats.io/reference/reference-protocols/
// nats-protocol) and genapi-bench's stream convention, without I/O.
#include "bench_nats.h"

#include <stdio.h>
#include <string.h>

static bool
s_starts(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(line, word, n) == 0;
}

static bool
s_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

// The end of the CRLF-terminated line at buf[0..len) (the CR), or NULL when none yet.
static const char *
s_line_end(const char *buf, size_t len)
{
    const char *p = buf;
    const char *end = buf + len;
    while ((p = memchr(p, '\r', (size_t) (end - p))) != NULL) {
        if (p + 1 >= end) {
            return NULL; // the LF has not arrived
        }
        if (p[1] == '\n') {
            return p;
        }
        p++;
    }
    return NULL;
}

// MSG <subject> <sid> [reply-to] <#bytes>: the subject and the byte count; false if malformed.
static bool
s_msg_line(const char *line, size_t len, bench_nats_op_t *op, size_t *bytes)
{
    const char *tok[4];
    size_t tok_len[4];
    int n = 0;
    const char *p = line + 4;
    const char *end = line + len;
    for (;;) {
        while (p < end && s_blank(*p)) {
            p++;
        }
        if (p == end) {
            break;
        }
        if (n == 4) {
            return false;
        }
        tok[n] = p;
        while (p < end && !s_blank(*p)) {
            p++;
        }
        tok_len[n] = (size_t) (p - tok[n]);
        n++;
    }
    if (n < 3) {
        return false;
    }
    size_t v = 0;
    for (size_t i = 0; i < tok_len[n - 1]; i++) {
        char ch = tok[n - 1][i];
        if (ch < '0' || ch > '9' || v > (1u << 30)) {
            return false; // not a number, or beyond any sane max_payload
        }
        v = v * 10 + (size_t) (ch - '0');
    }
    op->subject = tok[0];
    op->subject_len = tok_len[0];
    *bytes = v;
    return true;
}

long
bench_nats_parse(const char *buf, size_t len, bench_nats_op_t *op)
{
    size_t scan = len < BENCH_NATS_MAX_LINE + 2 ? len : BENCH_NATS_MAX_LINE + 2;
    const char *cr = s_line_end(buf, scan);
    if (cr == NULL) {
        return scan == len ? 0 : -1; // a line this long is not the server talking
    }
    memset(op, 0, sizeof *op);
    op->line = buf;
    op->line_len = (size_t) (cr - buf);
    size_t head = op->line_len + 2;
    if (s_starts(buf, op->line_len, "MSG ") || s_starts(buf, op->line_len, "MSG\t")) {
        size_t bytes = 0;
        if (!s_msg_line(buf, op->line_len, op, &bytes)) {
            return -1;
        }
        if (len - head < bytes + 2) {
            return 0; // the payload is still on its way (maybe in the next WebSocket frame)
        }
        if (buf[head + bytes] != '\r' || buf[head + bytes + 1] != '\n') {
            return -1;
        }
        op->kind = BENCH_NATS_MSG;
        op->payload = buf + head;
        op->payload_len = bytes;
        return (long) (head + bytes + 2);
    }
    if (s_starts(buf, op->line_len, "PING")) {
        op->kind = BENCH_NATS_PING;
    } else if (s_starts(buf, op->line_len, "PONG")) {
        op->kind = BENCH_NATS_PONG;
    } else if (s_starts(buf, op->line_len, "-ERR")) {
        op->kind = BENCH_NATS_ERR;
    } else {
        op->kind = BENCH_NATS_OTHER;
    }
    return (long) head;
}

uint64_t
bench_nats_subject_ref(const char *subject, size_t len)
{
    size_t i = len;
    while (i > 0 && subject[i - 1] != '.') {
        i--;
    }
    if (i == 0 || i == len) {
        return 0;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (subject[i] < '0' || subject[i] > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t) (subject[i] - '0');
    }
    return v;
}

static const char *
s_skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

long long
bench_nats_stream_n(const char *payload, size_t len)
{
    const char *end = payload + len;
    for (const char *p = payload; p + 3 <= end; p++) {
        if (memcmp(p, "\"n\"", 3) != 0) {
            continue;
        }
        const char *q = s_skip_space(p + 3, end);
        if (q == end || *q != ':') {
            continue; // a string "n", not the key
        }
        q = s_skip_space(q + 1, end);
        long long n = 0;
        const char *digits = q;
        while (q < end && *q >= '0' && *q <= '9') {
            n = n * 10 + (*q - '0');
            if (n > BENCH_NATS_MAX_STREAM) {
                return 0;
            }
            q++;
        }
        // 5.0 or 1e3 are numbers too, but not the integers this convention asks for.
        if (q == digits || (q < end && (*q == '.' || *q == 'e' || *q == 'E'))) {
            return 0;
        }
        return n;
    }
    return 0;
}

size_t
bench_nats_stream_chunk(char *out, size_t cap, long long i, long long n)
{
    int len = i < n ? snprintf(out, cap, "{\"i\":%lld}", i)
                    : snprintf(out, cap, "{\"i\":%lld,\"last\":true}", i);
    return len < 0 || (size_t) len >= cap ? 0 : (size_t) len;
}

bool
bench_nats_stream_is_last(const char *payload, size_t len)
{
    static const char marker[] = "\"last\":true";
    size_t n = sizeof marker - 1;
    for (size_t i = 0; i + n <= len; i++) {
        if (payload[i] == '"' && memcmp(payload + i, marker, n) == 0) {
            return true;
        }
    }
    return false;
}
