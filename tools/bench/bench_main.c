// SPDX-License-Identifier: MIT
// genapi-bench: a single-threaded epoll load generator. It speaks Phoenix V2 over WebSocket to
// a genapi gateway (modes sync, async, stream, idle) or the NATS text protocol over WebSocket
// to nats-server (modes nats and nats-stream, the peers of sync and stream), keeps K requests
// in flight on each of N connections (or sends at a fixed rate, open loop, timing each request
// from its scheduled time), records every latency sample and reports throughput, percentiles,
// errors by kind and CPU use, as text and JSON. Modes relay and nats-relay put every connection
// in one relay group (one NATS subject) over one or two servers (--url2) and have --senders of
// them publish as fast as every member takes the messages (see bench_relay.h).
#include "bench_nats.h"
#include "bench_relay.h"
#include "bench_stats.h"
#include "bench_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING        8192        // in-flight send times per connection (indexed by ref)
#define MAX_ERRORS  16          // distinct error messages counted
#define IO_CHUNK    65536

typedef enum {
    MODE_SYNC,
    MODE_ASYNC,
    MODE_STREAM,
    MODE_IDLE,
    MODE_NATS,
    MODE_NATS_STREAM,
    MODE_RELAY,
    MODE_NATS_RELAY,
} mode_t_;

// --mode names and report names, in mode_t_ order.
static const char *const s_mode_names[] = {"sync", "async", "stream", "idle", "nats",
                                           "nats-stream", "relay", "nats-relay"};
#define MODE_COUNT ((int) (sizeof s_mode_names / sizeof s_mode_names[0]))

typedef enum { ST_CONNECTING, ST_HANDSHAKE, ST_JOINING, ST_READY, ST_CLOSED } state_t;

typedef struct {
    int fd;                 // socket
    int index;              // connection number
    state_t state;          // protocol state
    uint8_t *rx;            // received, not yet parsed
    size_t rx_len;          // bytes in rx
    size_t rx_cap;          // room in rx
    uint8_t *tx;            // to send
    size_t tx_len;          // bytes in tx
    size_t tx_cap;          // room in tx
    bool want_out;          // EPOLLOUT armed
    char *text;             // NATS: protocol text across frames
    size_t text_len;        // bytes in text
    size_t text_cap;        // room in text
    int inflight;           // requests outstanding
    uint64_t next_ref;      // next request number
    int64_t sent_at[RING];  // send (or scheduled) time by ref % RING
    uint64_t sent_ref[RING]; // which ref occupies the slot
    int server;             // relay modes: 0 for --url, 1 for --url2
} conn_t;

typedef struct {
    char msg[96];  // error text
    uint64_t count; // occurrences
} err_t;

typedef struct {
    // options
    const char *host;     // target host
    int port;             // target port
    const char *path;     // request path
    mode_t_ mode;         // what to do
    int connections;      // N
    int inflight;         // K
    double duration;      // seconds
    uint64_t max_requests; // stop after this many (0: duration only)
    double rate;          // open-loop requests/s (0: closed loop)
    const char *service;  // genapi service
    const char *function; // genapi request_type
    const char *args;     // JSON args (genapi), request payload (NATS)
    const char *subject;  // NATS subject
    bool json;            // print JSON too
    int gateway_pid;      // for CPU and RSS, or 0
    int pid;              // ours: in NATS inboxes, so replies meant for an earlier run (a
                          // stream the responder is still sending) do not reach this one
    // state
    int ep;               // epoll fd
    conn_t *conns;        // connections
    bench_stats_t stats;  // latency samples
    uint64_t done;        // requests completed
    uint64_t sent;        // requests sent
    uint64_t chunks;      // stream chunks received
    uint64_t connect_failures; // connections that failed to open
    uint64_t closes;      // connections closed by the peer
    err_t errors[MAX_ERRORS]; // error responses by message
    uint64_t other_errors; // error responses beyond MAX_ERRORS distinct messages
    uint64_t backlog;     // open loop: scheduled requests waiting for capacity
    int64_t *backlog_at;  // their scheduled times (ring)
    size_t backlog_head;  // ring head
    size_t backlog_cap;   // ring size
    int ready;            // connections ready
    uint32_t mask;        // masking key generator
    // relay modes (bench_relay.h)
    const char *url2;     // a second server: connections alternate between the two
    const char *host2;    // its host, port and path
    int port2;
    const char *path2;
    const char *group;    // the relay group (genapi) or subject (NATS)
    int senders;          // connections that publish (the first ones)
    int next_sender;      // round robin over them
    bench_relay_window_t window; // messages not yet received by every member
    uint64_t deliveries;  // messages received by members
    uint64_t gaps;        // genapi gap notices received
    int also_pids[8];     // --also-pid: more server processes whose CPU counts as the server's
    int n_also_pids;      // entries used
} bench_t;

static int64_t
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool
s_is_nats(const bench_t *b)
{
    return b->mode == MODE_NATS || b->mode == MODE_NATS_STREAM || b->mode == MODE_NATS_RELAY;
}

static bool
s_is_relay(const bench_t *b)
{
    return b->mode == MODE_RELAY || b->mode == MODE_NATS_RELAY;
}

// Stream modes run one stream at a time per connection, whatever --inflight says.
static bool
s_is_stream(const bench_t *b)
{
    return b->mode == MODE_STREAM || b->mode == MODE_NATS_STREAM;
}

static void
s_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need) {
        return;
    }
    size_t n = *cap ? *cap : 4096;
    while (n < need) {
        n *= 2;
    }
    uint8_t *p = realloc(*buf, n);
    if (p == NULL) {
        fprintf(stderr, "genapi-bench: out of memory\n");
        exit(1);
    }
    *buf = p;
    *cap = n;
}

static void
s_count_error(bench_t *b, const char *msg, size_t len)
{
    if (len > sizeof b->errors[0].msg - 1) {
        len = sizeof b->errors[0].msg - 1;
    }
    for (int i = 0; i < MAX_ERRORS; i++) {
        if (b->errors[i].count == 0) {
            memcpy(b->errors[i].msg, msg, len);
            b->errors[i].msg[len] = '\0';
            b->errors[i].count = 1;
            return;
        }
        if (strlen(b->errors[i].msg) == len && memcmp(b->errors[i].msg, msg, len) == 0) {
            b->errors[i].count++;
            return;
        }
    }
    b->other_errors++;
}

// ---------------------------------------------------------------------------------------------
// Sending

static void
s_flush(bench_t *b, conn_t *c)
{
    while (c->tx_len > 0) {
        ssize_t n = write(c->fd, c->tx, c->tx_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            c->state = ST_CLOSED;
            return;
        }
        memmove(c->tx, c->tx + n, c->tx_len - (size_t) n);
        c->tx_len -= (size_t) n;
    }
    bool want = c->tx_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

static void
s_send_frame(bench_t *b, conn_t *c, int opcode, const char *payload, size_t len)
{
    s_grow(&c->tx, &c->tx_cap, c->tx_len + len + 14);
    b->mask = b->mask * 1103515245u + 12345u;
    c->tx_len += bench_ws_encode(c->tx + c->tx_len, opcode, payload, len, b->mask);
}

// Sends one request; `at` is its send (or scheduled) time.
static void
s_request(bench_t *b, conn_t *c, int64_t at)
{
    uint64_t ref = ++c->next_ref;
    char buf[2048];
    int n;
    if (s_is_nats(b)) {
        // The reply subject carries the ref: each MSG back says which request it answers.
        n = snprintf(buf, sizeof buf, "PUB %s _INBOX.%d.%d.%llu %zu\r\n%s\r\n", b->subject,
                     b->pid, c->index, (unsigned long long) ref, strlen(b->args), b->args);
    } else {
        n = snprintf(buf, sizeof buf,
                     "[\"0\",\"%llu\",\"api:lobby\",\"api\",{\"request_id\":\"%llu\",\"service\":"
                     "\"%s\",\"request_type\":\"%s\",\"args\":%s}]",
                     (unsigned long long) ref, (unsigned long long) ref, b->service, b->function,
                     b->args);
    }
    if (n <= 0 || (size_t) n >= sizeof buf) {
        return;
    }
    c->sent_at[ref % RING] = at;
    c->sent_ref[ref % RING] = ref;
    c->inflight++;
    b->sent++;
    s_send_frame(b, c, BENCH_WS_TEXT, buf, (size_t) n);
}

static bool
s_may_send(const bench_t *b)
{
    return b->max_requests == 0 || b->sent < b->max_requests;
}

// Closed loop: top the connection up to K in flight.
static void
s_top_up(bench_t *b, conn_t *c)
{
    if (b->rate > 0 || c->state != ST_READY || b->mode == MODE_IDLE || s_is_relay(b)) {
        return;
    }
    int k = s_is_stream(b) ? 1 : b->inflight;
    while (c->inflight < k && s_may_send(b)) {
        s_request(b, c, s_now_us());
    }
}

// ---------------------------------------------------------------------------------------------
// Receiving

// Completes request `ref` on `c`, recording its latency.
static void
s_complete(bench_t *b, conn_t *c, uint64_t ref, int64_t now)
{
    if (ref == 0 || c->sent_ref[ref % RING] != ref) {
        return;
    }
    c->sent_ref[ref % RING] = 0;
    c->inflight--;
    b->done++;
    bench_stats_add(&b->stats, now - c->sent_at[ref % RING]);
}

// Reads a JSON string starting at p (at the opening quote); returns its end (after the quote).
static const char *
s_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return end;
}

// The ref (second element) of a Phoenix frame, 0 when null or absent.
static uint64_t
s_phx_ref(const char *p, const char *end)
{
    if (p >= end || *p != '[') {
        return 0;
    }
    p++;
    p = *p == '"' ? s_skip_string(p, end) : p + 4; // join_ref or null
    if (p >= end || *p != ',') {
        return 0;
    }
    p++;
    if (p < end && *p == '"') {
        return strtoull(p + 1, NULL, 10);
    }
    return 0;
}

static const char *
s_find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; p + n <= end; p++) {
        if (memcmp(p, needle, n) == 0) {
            return p;
        }
    }
    return NULL;
}

// Counts an error response's message.
static void
s_error_of(bench_t *b, const char *p, const char *end)
{
    const char *e = s_find(p, end, "\"error\":\"");
    if (e) {
        e += 9;
        const char *q = s_skip_string(e - 1, end);
        s_count_error(b, e, (size_t) (q - e - 1));
    } else {
        s_count_error(b, "error without message", 21);
    }
}

// ---------------------------------------------------------------------------------------------
// Relay modes

// One message received by a member: its latency from the sender's clock, and its window slot.
static void
s_relay_got(bench_t *b, const char *p, size_t len, int64_t now)
{
    int64_t t;
    uint64_t m;
    if (!bench_relay_parse(p, len, &t, &m)) {
        s_count_error(b, "relay message without a timestamp", 33);
        return;
    }
    b->deliveries++;
    bench_stats_add(&b->stats, now - t);
    if (bench_relay_window_got(&b->window, m)) {
        b->done++;
    }
}

// True when the Phoenix frame at p is a push: its ref (second element) is null. Every reply
// has a ref.
static bool
s_phx_is_push(const char *p, const char *end)
{
    if (p >= end || *p != '[') {
        return false;
    }
    p++;
    p = p < end && *p == '"' ? s_skip_string(p, end) : p + 4; // join_ref or null
    return end - p >= 5 && memcmp(p, ",null", 5) == 0;
}

// genapi, mode relay: the chat:GROUP join's reply makes the connection ready; relay pushes are
// deliveries; a gap notice or a refused send is an error. A push is told by its null ref and
// its message found directly, so that the load generator reads a delivery in one pass (three
// whole-frame searches made it spend half again as much per genapi delivery as per NATS one).
static void
s_on_relay_phx(bench_t *b, conn_t *c, const char *p, size_t len, int64_t now)
{
    const char *end = p + len;
    if (s_phx_is_push(p, end)) {
        int64_t t;
        uint64_t m;
        if (bench_relay_parse(p, len, &t, &m)) {
            b->deliveries++;
            bench_stats_add(&b->stats, now - t);
            if (bench_relay_window_got(&b->window, m)) {
                b->done++;
            }
        } else if (s_find(p, end, "\"kind\":\"gap\"")) {
            b->gaps++;
            s_count_error(b, "relay gap notice", 16);
        }
        return;
    }
    bool is_reply = s_find(p, end, "\"phx_reply\"") != NULL;
    if (is_reply && s_find(p, end, "\"chat:")) {
        if (c->state == ST_JOINING && s_find(p, end, "\"status\":\"ok\"")) {
            c->state = ST_READY;
            b->ready++;
        } else if (c->state == ST_JOINING) {
            s_error_of(b, p, end);
            s_count_error(b, "relay join refused", 18);
            c->state = ST_CLOSED;
        }
        return;
    }
    if (is_reply) {
        // create_group ("group already exists" but for the first) and send_message replies.
        if (s_find(p, end, "\"success\":false") && !s_find(p, end, "group already exists")) {
            s_error_of(b, p, end);
        }
        return;
    }
}

// Relay modes: on open, genapi connections create the group (refused as existing but for the
// first: each one's create reaches the broker before its own join) and join chat:GROUP; NATS
// connections subscribe to the subject.
static void
s_relay_open(bench_t *b, conn_t *c)
{
    char buf[512];
    int n;
    if (b->mode == MODE_NATS_RELAY) {
        const char *connect = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false}\r\n";
        s_send_frame(b, c, BENCH_WS_TEXT, connect, strlen(connect));
        n = snprintf(buf, sizeof buf, "SUB %s 1\r\nPING\r\n", b->group);
        s_send_frame(b, c, BENCH_WS_TEXT, buf, (size_t) n);
        return;
    }
    const char *lobby = "[\"0\",null,\"api:lobby\",\"phx_join\",{}]";
    s_send_frame(b, c, BENCH_WS_TEXT, lobby, strlen(lobby));
    n = snprintf(buf, sizeof buf,
                 "[\"0\",\"c\",\"api:lobby\",\"api\",{\"request_id\":\"c\",\"service\":"
                 "\"chat_service\",\"request_type\":\"create_group\",\"args\":{\"group_id\":"
                 "\"%s\"}}]",
                 b->group);
    s_send_frame(b, c, BENCH_WS_TEXT, buf, (size_t) n);
    n = snprintf(buf, sizeof buf, "[\"1\",\"j\",\"chat:%s\",\"phx_join\",{}]", b->group);
    s_send_frame(b, c, BENCH_WS_TEXT, buf, (size_t) n);
}

// Publishes from the senders, round robin, while the window has room: a message is out until
// every member ready when it was sent has received it (or 5 s passed).
static void
s_relay_pump(bench_t *b, int64_t now)
{
    bench_relay_window_sweep(&b->window, now, 5 * 1000000LL);
    int tries = 0;
    while (s_may_send(b) && tries < b->senders) {
        conn_t *c = &b->conns[b->next_sender];
        b->next_sender = (b->next_sender + 1) % b->senders;
        if (c->state != ST_READY) {
            tries++;
            continue;
        }
        uint64_t m = bench_relay_window_send(&b->window, (uint32_t) b->ready, now);
        if (m == 0) {
            return;
        }
        tries = 0;
        char text[64];
        char buf[512];
        bench_relay_message(text, sizeof text, now, m);
        int n;
        uint64_t ref = ++c->next_ref;
        if (b->mode == MODE_NATS_RELAY) {
            n = snprintf(buf, sizeof buf, "PUB %s %zu\r\n%s\r\n", b->group, strlen(text), text);
        } else {
            n = snprintf(buf, sizeof buf,
                         "[\"0\",\"%llu\",\"api:lobby\",\"api\",{\"request_id\":\"%llu\","
                         "\"service\":\"chat_service\",\"request_type\":\"send_message\","
                         "\"args\":{\"group_id\":\"%s\",\"message\":\"%s\"}}]",
                         (unsigned long long) ref, (unsigned long long) ref, b->group, text);
        }
        b->sent++;
        s_send_frame(b, c, BENCH_WS_TEXT, buf, (size_t) n);
        s_flush(b, c);
    }
}

static void
s_on_phx(bench_t *b, conn_t *c, const char *p, size_t len, int64_t now)
{
    const char *end = p + len;
    if (b->mode == MODE_RELAY) {
        s_on_relay_phx(b, c, p, len, now);
        return;
    }
    uint64_t ref = s_phx_ref(p, end);
    bool is_reply = s_find(p, end, "\"phx_reply\"") != NULL;
    if (c->state == ST_JOINING && is_reply && ref == 0) {
        if (s_find(p, end, "\"status\":\"ok\"")) {
            c->state = ST_READY;
            b->ready++;
        } else {
            s_count_error(b, "join refused", 12);
            c->state = ST_CLOSED;
        }
        return;
    }
    bool failed = s_find(p, end, "\"success\":false") != NULL;
    if (is_reply) {
        if (b->mode == MODE_SYNC || failed) {
            if (failed) {
                s_error_of(b, p, end);
            }
            s_complete(b, c, ref, now);
        }
        return;
    }
    // A push on the API event: async results and stream chunks carry the request id.
    const char *rid = s_find(p, end, "\"request_id\":\"");
    if (rid == NULL) {
        return;
    }
    uint64_t id = strtoull(rid + 14, NULL, 10);
    if (b->mode == MODE_ASYNC && (s_find(p, end, "\"kind\":\"result\"") ||
                                  s_find(p, end, "\"kind\":\"error\""))) {
        if (failed) {
            s_error_of(b, p, end);
        }
        s_complete(b, c, id, now);
    } else if (b->mode == MODE_STREAM) {
        if (s_find(p, end, "\"kind\":\"chunk\"") || s_find(p, end, "\"kind\":\"last\"")) {
            b->chunks++;
        }
        if (s_find(p, end, "\"has_more\":false") && !s_find(p, end, "\"kind\":\"ack\"")) {
            if (failed) {
                s_error_of(b, p, end);
            }
            s_complete(b, c, id, now);
        }
    }
}

// NATS protocol text kept across WebSocket frames in c->text: every complete operation is
// handled, the rest waits for the next frame. In mode nats a MSG completes its request; in mode
// nats-stream every MSG is a chunk and the one marked last completes the stream.
static void
s_on_nats(bench_t *b, conn_t *c, int64_t now)
{
    size_t off = 0;
    while (off < c->text_len) {
        bench_nats_op_t op;
        long used = bench_nats_parse(c->text + off, c->text_len - off, &op);
        if (used == 0) {
            break;
        }
        if (used < 0) {
            s_count_error(b, "malformed NATS protocol text", 28);
            c->state = ST_CLOSED;
            return;
        }
        off += (size_t) used;
        if (op.kind == BENCH_NATS_MSG && b->mode == MODE_NATS_RELAY) {
            s_relay_got(b, op.payload, op.payload_len, now);
        } else if (op.kind == BENCH_NATS_MSG) {
            uint64_t ref = bench_nats_subject_ref(op.subject, op.subject_len);
            if (b->mode != MODE_NATS_STREAM) {
                s_complete(b, c, ref, now);
                continue;
            }
            b->chunks++;
            if (bench_nats_stream_is_last(op.payload, op.payload_len)) {
                const char *end = op.payload + op.payload_len;
                if (s_find(op.payload, end, "\"error\":")) {
                    s_error_of(b, op.payload, end);
                }
                s_complete(b, c, ref, now);
            }
        } else if (op.kind == BENCH_NATS_PING) {
            s_send_frame(b, c, BENCH_WS_TEXT, "PONG\r\n", 6);
        } else if (op.kind == BENCH_NATS_PONG && c->state == ST_JOINING) {
            c->state = ST_READY;
            b->ready++;
        } else if (op.kind == BENCH_NATS_ERR) {
            s_count_error(b, op.line, op.line_len);
        }
    }
    memmove(c->text, c->text + off, c->text_len - off);
    c->text_len -= off;
}

static void
s_on_open(bench_t *b, conn_t *c)
{
    c->state = ST_JOINING;
    if (s_is_relay(b)) {
        s_relay_open(b, c);
    } else if (s_is_nats(b)) {
        char sub[128];
        const char *connect = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false}\r\n";
        s_send_frame(b, c, BENCH_WS_TEXT, connect, strlen(connect));
        int n =
            snprintf(sub, sizeof sub, "SUB _INBOX.%d.%d.* 1\r\nPING\r\n", b->pid, c->index);
        s_send_frame(b, c, BENCH_WS_TEXT, sub, (size_t) n);
    } else {
        const char *join = "[\"0\",null,\"api:lobby\",\"phx_join\",{}]";
        s_send_frame(b, c, BENCH_WS_TEXT, join, strlen(join));
    }
}

static void
s_on_readable(bench_t *b, conn_t *c)
{
    for (;;) {
        s_grow(&c->rx, &c->rx_cap, c->rx_len + IO_CHUNK);
        ssize_t n = read(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            b->closes++;
            c->state = ST_CLOSED;
            return;
        }
        if (n < 0) {
            break;
        }
        c->rx_len += (size_t) n;
    }
    size_t off = 0;
    int64_t now = s_now_us();
    if (c->state == ST_HANDSHAKE) {
        size_t used = 0;
        int rc = bench_ws_handshake_done((const char *) c->rx, c->rx_len, &used);
        if (rc < 0) {
            b->connect_failures++;
            c->state = ST_CLOSED;
            return;
        }
        if (rc == 0) {
            return;
        }
        off = used;
        s_on_open(b, c);
    }
    for (;;) {
        int opcode;
        bool fin;
        size_t start, plen;
        long used = bench_ws_decode(c->rx + off, c->rx_len - off, &opcode, &fin, &start, &plen);
        if (used == 0) {
            break;
        }
        if (used < 0) {
            s_count_error(b, "malformed frame", 15);
            c->state = ST_CLOSED;
            return;
        }
        const char *payload = (const char *) c->rx + off + start;
        if (opcode == BENCH_WS_CLOSE) {
            b->closes++;
            c->state = ST_CLOSED;
            return;
        }
        if (opcode == BENCH_WS_PING) {
            s_send_frame(b, c, BENCH_WS_PONG, payload, plen);
        } else if (s_is_nats(b)) {
            // nats-server sends protocol text in text or binary frames, maybe fragmented.
            if (opcode == BENCH_WS_TEXT || opcode == BENCH_WS_BINARY || opcode == 0) {
                s_grow((uint8_t **) &c->text, &c->text_cap, c->text_len + plen);
                memcpy(c->text + c->text_len, payload, plen);
                c->text_len += plen;
                s_on_nats(b, c, now);
                if (c->state == ST_CLOSED) {
                    return;
                }
            }
        } else if (opcode == BENCH_WS_TEXT || opcode == 0) {
            s_on_phx(b, c, payload, plen, now);
        }
        off += (size_t) used;
    }
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
}

// ---------------------------------------------------------------------------------------------
// Setup, loop, report

static int
s_connect(bench_t *b, conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Relay modes: every other connection goes to --url2; a genapi member names itself (the
    // gateways run auth=service with genapi-test-worker's authenticate: token user:NAME).
    const char *h = b->host;
    int port = b->port;
    const char *path = b->path;
    if (s_is_relay(b) && b->url2 && c->index % 2 == 1) {
        h = b->host2;
        port = b->port2;
        path = b->path2;
        c->server = 1;
    }
    char member_path[512];
    if (b->mode == MODE_RELAY) {
        snprintf(member_path, sizeof member_path, "%s%stoken=user:m%d", path,
                 strchr(path, '?') ? "&" : "?", c->index);
        path = member_path;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    if (inet_pton(AF_INET, h, &sa.sin_addr) != 1) {
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        return -1;
    }
    char req[1024];
    char host[128];
    snprintf(host, sizeof host, "%s:%d", h, port);
    size_t n = bench_ws_handshake(req, sizeof req, host, path);
    s_grow(&c->tx, &c->tx_cap, n);
    memcpy(c->tx, req, n);
    c->tx_len = n;
    c->state = ST_HANDSHAKE;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = true;
    return epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static bool
s_parse_url(bench_t *b, const char *url)
{
    static char host[128];
    static char path[256];
    int port = 0;
    if (sscanf(url, "ws://%127[^:/]:%d%255s", host, &port, path) < 2) {
        return false;
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    b->host = host;
    b->port = port;
    b->path = path[0] ? path : "/";
    return true;
}

// --url2 (relay modes), parsed as --url.
static bool
s_parse_url2(bench_t *b, const char *url)
{
    static char host[128];
    static char path[256];
    int port = 0;
    if (sscanf(url, "ws://%127[^:/]:%d%255s", host, &port, path) < 2) {
        return false;
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    b->host2 = host;
    b->port2 = port;
    b->path2 = path[0] ? path : "/";
    return true;
}

// utime + stime of a process, in microseconds (0 when unknown).
static int64_t
s_proc_cpu_us(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) != 2) {
        return 0;
    }
    return (int64_t) ((ut + st) * 1000000ULL / (unsigned long long) sysconf(_SC_CLK_TCK));
}

static int64_t
s_proc_rss_kb(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

static int64_t
s_self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t) ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
           (int64_t) ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

static void
s_usage(void)
{
    fprintf(stderr,
            "usage: genapi-bench --url ws://HOST:PORT/PATH\n"
            "         [--mode sync|async|stream|idle|nats|nats-stream]\n"
            "         [--connections N] [--inflight K] [--duration S] [--requests N]\n"
            "         [--rate R] [--service S] [--function F] [--args JSON] [--subject SUBJ]\n"
            "         [--gateway-pid PID] [--json]\n"
            "         [--url2 URL] [--group NAME] [--senders N]   (modes relay, nats-relay)\n"
            "         [--also-pid PID]...  (more server processes: their CPU counts too)\n"
            "  nats, nats-stream: PUB --args (at most 1024 bytes) to --subject; nats-stream\n"
            "  expects genapi-nats-responder --stream: --args '{\"n\":N}' asks for N chunks\n"
            "  relay, nats-relay: every connection joins relay group (subscribes to subject)\n"
            "  --group, alternating between --url and --url2; the first --senders publish\n"
            "  while fewer than --inflight messages wait for a member; latency is from the\n"
            "  send time in each message to its receipt, for every delivery\n");
}

static bool
s_options(bench_t *b, int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            b->json = true;
            continue;
        }
        if (v == NULL) {
            return false;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            url = v;
        } else if (strcmp(a, "--mode") == 0) {
            int m = -1;
            for (int k = 0; k < MODE_COUNT; k++) {
                m = strcmp(v, s_mode_names[k]) == 0 ? k : m;
            }
            if (m < 0) {
                return false;
            }
            b->mode = (mode_t_) m;
        } else if (strcmp(a, "--connections") == 0) {
            b->connections = atoi(v);
        } else if (strcmp(a, "--inflight") == 0) {
            b->inflight = atoi(v);
        } else if (strcmp(a, "--duration") == 0) {
            b->duration = atof(v);
        } else if (strcmp(a, "--requests") == 0) {
            b->max_requests = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--rate") == 0) {
            b->rate = atof(v);
        } else if (strcmp(a, "--service") == 0) {
            b->service = v;
        } else if (strcmp(a, "--function") == 0) {
            b->function = v;
        } else if (strcmp(a, "--args") == 0) {
            b->args = v;
        } else if (strcmp(a, "--subject") == 0) {
            b->subject = v;
        } else if (strcmp(a, "--gateway-pid") == 0) {
            b->gateway_pid = atoi(v);
        } else if (strcmp(a, "--url2") == 0) {
            b->url2 = v;
        } else if (strcmp(a, "--group") == 0) {
            b->group = v;
        } else if (strcmp(a, "--senders") == 0) {
            b->senders = atoi(v);
        } else if (strcmp(a, "--also-pid") == 0 && b->n_also_pids < 8) {
            b->also_pids[b->n_also_pids++] = atoi(v);
        } else {
            return false;
        }
    }
    // Relay modes: a group name that fits the frames, 1..connections senders.
    if (s_is_relay(b) && (b->senders < 1 || b->senders > b->connections ||
                          strlen(b->group) == 0 || strlen(b->group) > 128 ||
                          strpbrk(b->group, "\"\\ \r\n") || (b->url2 && !s_parse_url2(b, b->url2)))) {
        return false;
    }
    // Longer args would not fit s_request's buffer (and nothing would ever be sent).
    return url && s_parse_url(b, url) && b->connections > 0 && b->inflight > 0 &&
           b->inflight < RING / 2 && b->duration > 0 && strlen(b->args) <= 1024;
}

static void
s_report(bench_t *b, double elapsed, int64_t cpu_us, int64_t gw_cpu_us, int64_t rss_before,
         int64_t rss_after)
{
    bench_stats_sort(&b->stats);
    double q[] = {0.5, 0.9, 0.99, 0.999, 1.0};
    const char *names[] = {"p50", "p90", "p99", "p99.9", "max"};
    int64_t lat[5];
    for (int i = 0; i < 5; i++) {
        lat[i] = bench_stats_quantile(&b->stats, q[i]);
    }
    double tput = elapsed > 0 ? (double) b->done / elapsed : 0;
    double per_req = b->done ? (double) cpu_us / (double) b->done : 0;
    double gw_per_req = b->done && gw_cpu_us ? (double) gw_cpu_us / (double) b->done : 0;
    double rss_per_conn = b->ready ? (double) (rss_after - rss_before) * 1024.0 / b->ready : 0;
    uint64_t errors = b->other_errors;
    for (int i = 0; i < MAX_ERRORS; i++) {
        errors += b->errors[i].count;
    }
    printf("mode %s, %d connections x %d in flight, %.1f s%s\n", s_mode_names[b->mode],
           b->connections, b->inflight, elapsed, b->rate > 0 ? ", open loop" : "");
    printf("  requests %llu, %.0f/s; ready connections %d\n", (unsigned long long) b->done, tput,
           b->ready);
    if (s_is_stream(b)) {
        printf("  stream chunks %llu, %.0f/s\n", (unsigned long long) b->chunks,
               elapsed > 0 ? (double) b->chunks / elapsed : 0);
    }
    if (s_is_relay(b)) {
        printf("  relay: %llu messages sent, %llu received by every member, %llu given up; "
               "%llu deliveries, %.0f/s; %llu gap notices\n",
               (unsigned long long) b->sent, (unsigned long long) b->window.completed,
               (unsigned long long) b->window.expired, (unsigned long long) b->deliveries,
               elapsed > 0 ? (double) b->deliveries / elapsed : 0,
               (unsigned long long) b->gaps);
    }
    printf("  latency us: p50 %lld  p90 %lld  p99 %lld  p99.9 %lld  max %lld\n",
           (long long) lat[0], (long long) lat[1], (long long) lat[2], (long long) lat[3],
           (long long) lat[4]);
    printf("  errors %llu (connect failures %llu, closes %llu)\n", (unsigned long long) errors,
           (unsigned long long) b->connect_failures, (unsigned long long) b->closes);
    for (int i = 0; i < MAX_ERRORS && b->errors[i].count; i++) {
        printf("    %llu x %s\n", (unsigned long long) b->errors[i].count, b->errors[i].msg);
    }
    printf("  bench cpu: %.1f us/request (%.0f%% of a core)\n", per_req,
           elapsed > 0 ? 100.0 * (double) cpu_us / (elapsed * 1e6) : 0);
    if (b->gateway_pid) {
        printf("  server cpu: %.1f us/request; server rss: %lld -> %lld kB (%.0f bytes per "
               "connection)\n",
               gw_per_req, (long long) rss_before, (long long) rss_after, rss_per_conn);
    }
    if (!b->json) {
        return;
    }
    printf("{\"mode\":\"%s\",\"connections\":%d,\"inflight\":%d,\"duration_s\":%.3f,"
           "\"open_loop_rate\":%.1f,\"requests\":%llu,\"throughput\":%.1f,\"chunks\":%llu,"
           "\"chunks_per_s\":%.1f,\"ready\":%d,\"latency_us\":{",
           s_mode_names[b->mode], b->connections, b->inflight, elapsed, b->rate,
           (unsigned long long) b->done, tput, (unsigned long long) b->chunks,
           elapsed > 0 ? (double) b->chunks / elapsed : 0, b->ready);
    for (int i = 0; i < 5; i++) {
        printf("%s\"%s\":%lld", i ? "," : "", names[i], (long long) lat[i]);
    }
    printf("},\"errors\":{\"total\":%llu,\"connect_failures\":%llu,\"closes\":%llu",
           (unsigned long long) errors, (unsigned long long) b->connect_failures,
           (unsigned long long) b->closes);
    for (int i = 0; i < MAX_ERRORS && b->errors[i].count; i++) {
        printf(",\"");
        for (const char *p = b->errors[i].msg; *p; p++) {
            putchar(*p == '"' || *p == '\\' ? '_' : *p);
        }
        printf("\":%llu", (unsigned long long) b->errors[i].count);
    }
    if (s_is_relay(b)) {
        printf("},\"relay\":{\"members\":%d,\"senders\":%d,\"messages_sent\":%llu,"
               "\"messages_complete\":%llu,\"messages_given_up\":%llu,\"deliveries\":%llu,"
               "\"deliveries_per_s\":%.1f,\"gaps\":%llu,"
               "\"server_cpu_us_per_delivery\":%.3f",
               b->ready, b->senders, (unsigned long long) b->sent,
               (unsigned long long) b->window.completed, (unsigned long long) b->window.expired,
               (unsigned long long) b->deliveries,
               elapsed > 0 ? (double) b->deliveries / elapsed : 0, (unsigned long long) b->gaps,
               b->deliveries && gw_cpu_us ? (double) gw_cpu_us / (double) b->deliveries : 0);
    }
    printf("},\"bench_cpu_us_per_request\":%.2f,\"server_cpu_us_per_request\":%.2f,"
           "\"server_rss_kb_before\":%lld,\"server_rss_kb_after\":%lld,"
           "\"server_rss_bytes_per_connection\":%.0f}\n",
           per_req, gw_per_req, (long long) rss_before, (long long) rss_after, rss_per_conn);
}

int
main(int argc, char **argv)
{
    bench_t b = {.mode = MODE_SYNC,
                 .connections = 1,
                 .inflight = 1,
                 .duration = 5,
                 .service = "user_service",
                 .function = "get_user",
                 .args = "{\"user_id\":\"1\"}",
                 .subject = "user_service.get_user",
                 .pid = (int) getpid(),
                 .mask = 0x9e3779b9u,
                 .group = "bench",
                 .senders = 1};
    if (!s_options(&b, argc, argv)) {
        s_usage();
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; // tens of thousands of connections need the hard limit
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    b.ep = epoll_create1(0);
    b.conns = calloc((size_t) b.connections, sizeof(conn_t));
    bench_stats_init(&b.stats, 20 * 1000 * 1000);
    bench_relay_window_init(&b.window, (size_t) b.inflight);
    b.backlog_cap = 1 << 20;
    b.backlog_at = calloc(b.backlog_cap, sizeof(int64_t));
    if (b.ep < 0 || b.conns == NULL || b.backlog_at == NULL) {
        fprintf(stderr, "genapi-bench: setup failed\n");
        return 1;
    }
    int64_t rss_before = b.gateway_pid ? s_proc_rss_kb(b.gateway_pid) : 0;
    for (int i = 0; i < b.connections; i++) {
        b.conns[i].index = i;
        if (s_connect(&b, &b.conns[i]) != 0) {
            b.connect_failures++;
            b.conns[i].state = ST_CLOSED;
        }
    }
    // Connect and join everyone first (bounded wait), then measure.
    struct epoll_event events[256];
    int64_t setup_deadline = s_now_us() + 30 * 1000000LL;
    while (b.ready + (int) b.connect_failures < b.connections && s_now_us() < setup_deadline) {
        int n = epoll_wait(b.ep, events, 256, 10);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                if (c->state != ST_CLOSED) {
                    b.connect_failures++;
                    c->state = ST_CLOSED;
                    epoll_ctl(b.ep, EPOLL_CTL_DEL, c->fd, NULL);
                }
                continue;
            }
            if (events[i].events & EPOLLIN) {
                s_on_readable(&b, c);
            }
            if (c->state != ST_CLOSED) {
                s_flush(&b, c);
            } else {
                epoll_ctl(b.ep, EPOLL_CTL_DEL, c->fd, NULL); // closed while joining: once
            }
        }
    }
    int64_t gw_cpu0 = b.gateway_pid ? s_proc_cpu_us(b.gateway_pid) : 0;
    for (int i = 0; i < b.n_also_pids; i++) {
        gw_cpu0 += s_proc_cpu_us(b.also_pids[i]);
    }
    int64_t cpu0 = s_self_cpu_us();
    int64_t t0 = s_now_us();
    int64_t end = t0 + (int64_t) (b.duration * 1e6);
    double interval = b.rate > 0 ? 1e6 / b.rate : 0;
    int64_t next_send = t0;
    int rr = 0;
    for (int i = 0; i < b.connections; i++) {
        s_top_up(&b, &b.conns[i]);
        if (b.conns[i].state != ST_CLOSED) {
            s_flush(&b, &b.conns[i]);
        }
    }
    while (s_now_us() < end && (b.max_requests == 0 || b.done < b.max_requests)) {
        int n = epoll_wait(b.ep, events, 256, b.rate > 0 ? 1 : 10);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->state == ST_CLOSED) {
                continue;
            }
            if (events[i].events & EPOLLIN) {
                s_on_readable(&b, c);
            }
            if (c->state == ST_CLOSED) {
                epoll_ctl(b.ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            s_top_up(&b, c);
            s_flush(&b, c);
        }
        if (s_is_relay(&b)) {
            s_relay_pump(&b, s_now_us());
        }
        if (b.rate > 0) {
            // Open loop: every scheduled slot becomes a request, timed from its schedule.
            int64_t now = s_now_us();
            while (next_send <= now && s_may_send(&b)) {
                b.backlog_at[(b.backlog_head + b.backlog) % b.backlog_cap] = next_send;
                b.backlog = b.backlog + 1 < b.backlog_cap ? b.backlog + 1 : b.backlog;
                next_send += (int64_t) interval;
            }
            for (int tries = 0; b.backlog > 0 && tries < b.connections; tries++) {
                conn_t *c = &b.conns[rr];
                rr = (rr + 1) % b.connections;
                if (c->state == ST_READY && c->inflight < b.inflight) {
                    s_request(&b, c, b.backlog_at[b.backlog_head]);
                    b.backlog_head = (b.backlog_head + 1) % b.backlog_cap;
                    b.backlog--;
                    s_flush(&b, c);
                    tries = -1;
                }
            }
        }
    }
    double elapsed = (double) (s_now_us() - t0) / 1e6;
    int64_t cpu_us = s_self_cpu_us() - cpu0;
    int64_t gw_cpu_us = b.gateway_pid ? s_proc_cpu_us(b.gateway_pid) - gw_cpu0 : 0;
    for (int i = 0; b.gateway_pid && i < b.n_also_pids; i++) {
        gw_cpu_us += s_proc_cpu_us(b.also_pids[i]);
    }
    int64_t rss_after = b.gateway_pid ? s_proc_rss_kb(b.gateway_pid) : 0;
    s_report(&b, elapsed, cpu_us, gw_cpu_us, rss_before, rss_after);
    for (int i = 0; i < b.connections; i++) {
        if (b.conns[i].fd > 0) {
            close(b.conns[i].fd);
        }
        free(b.conns[i].rx);
        free(b.conns[i].tx);
        free(b.conns[i].text);
    }
    free(b.conns);
    free(b.backlog_at);
    bench_relay_window_fini(&b.window);
    bench_stats_fini(&b.stats);
    close(b.ep);
    if (b.mode == MODE_IDLE) {
        return b.ready > 0 ? 0 : 1;
    }
    return b.done > 0 ? 0 : 1;
}
