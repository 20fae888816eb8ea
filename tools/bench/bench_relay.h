// SPDX-License-Identifier: MIT
// The relay scenario of genapi-bench (modes relay and nats-relay), as pure functions: the
// message text every sender publishes ("t:<send time, us>:<message number>"), found again in
// whatever frame delivers it (a genapi relay push, a NATS MSG payload), and the window that
// bounds the messages not yet received by every member, so that senders publish as fast as
// the members take them and no one is cut off as a slow consumer. No I/O.
#ifndef BENCH_RELAY_H
#define BENCH_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Writes message `m` sent at `t_us` into out; returns its length (0 if cap is short).
size_t bench_relay_message(char *out, size_t cap, int64_t t_us, uint64_t m);

// Finds "t:<digits>:<digits>" in buf[0..len): *t_us and *m; false when absent.
bool bench_relay_parse(const char *buf, size_t len, int64_t *t_us, uint64_t *m);

// Messages sent and not yet received by all their members. Message numbers start at 1 and
// grow by one; at most `cap` may be outstanding at once.
typedef struct {
    uint64_t *id;       // message number in each slot (0: free)
    uint32_t *left;     // deliveries still expected
    int64_t *sent_at;   // its send time (us)
    size_t cap;         // slots (a power of two)
    uint64_t next;      // the next message number
    uint64_t low;       // the lowest message number not yet complete (or next)
    uint64_t outstanding; // messages sent and not complete
    uint64_t completed; // messages every member received
    uint64_t expired;   // messages given up (bench_relay_sweep)
    uint64_t stray;     // deliveries of unknown or completed messages
} bench_relay_window_t;

void bench_relay_window_init(bench_relay_window_t *w, size_t cap);
void bench_relay_window_fini(bench_relay_window_t *w);
// Numbers a new message expecting `expected` deliveries, sent at `now`; 0 when the window is
// full (`cap` outstanding).
uint64_t bench_relay_window_send(bench_relay_window_t *w, uint32_t expected, int64_t now);
// One delivery of message `m`; true when it completed the message.
bool bench_relay_window_got(bench_relay_window_t *w, uint64_t m);
// Gives up the messages outstanding since before `now - max_age_us` (a member that left or
// was cut off will never receive them); returns how many.
uint64_t bench_relay_window_sweep(bench_relay_window_t *w, int64_t now, int64_t max_age_us);

#endif
