// SPDX-License-Identifier: MIT
// The relay scenario's message text and delivery window (see bench_relay.h).
#include "bench_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t
bench_relay_message(char *out, size_t cap, int64_t t_us, uint64_t m)
{
    int n = snprintf(out, cap, "t:%lld:%llu", (long long) t_us, (unsigned long long) m);
    return n > 0 && (size_t) n < cap ? (size_t) n : 0;
}

static bool
s_digits(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *q = *p;
    while (q < end && *q >= '0' && *q <= '9') {
        v = v * 10 + (uint64_t) (*q - '0');
        q++;
    }
    if (q == *p) {
        return false;
    }
    *p = q;
    *out = v;
    return true;
}

bool
bench_relay_parse(const char *buf, size_t len, int64_t *t_us, uint64_t *m)
{
    const char *end = buf + len;
    for (const char *p = buf; p + 2 < end; p++) {
        if (p[0] != 't' || p[1] != ':' || (p > buf && p[-1] != '"' && p[-1] != '\n')) {
            continue;
        }
        const char *q = p + 2;
        uint64_t t, n;
        if (s_digits(&q, end, &t) && q < end && *q == ':' && (q++, s_digits(&q, end, &n))) {
            *t_us = (int64_t) t;
            *m = n;
            return true;
        }
    }
    return false;
}

void
bench_relay_window_init(bench_relay_window_t *w, size_t cap)
{
    size_t n = 1;
    while (n < cap) {
        n *= 2;
    }
    memset(w, 0, sizeof *w);
    w->id = calloc(n, sizeof *w->id);
    w->left = calloc(n, sizeof *w->left);
    w->sent_at = calloc(n, sizeof *w->sent_at);
    if (w->id == NULL || w->left == NULL || w->sent_at == NULL) {
        fprintf(stderr, "genapi-bench: out of memory\n");
        exit(1);
    }
    w->cap = n;
    w->next = 1;
    w->low = 1;
}

void
bench_relay_window_fini(bench_relay_window_t *w)
{
    free(w->id);
    free(w->left);
    free(w->sent_at);
    memset(w, 0, sizeof *w);
}

// Moves `low` past completed messages.
static void
s_advance(bench_relay_window_t *w)
{
    while (w->low < w->next && w->id[w->low & (w->cap - 1)] != w->low) {
        w->low++;
    }
}

uint64_t
bench_relay_window_send(bench_relay_window_t *w, uint32_t expected, int64_t now)
{
    // A slot is free once its message is complete; the ring holds `cap` numbers from low.
    if (expected == 0 || w->next - w->low >= w->cap) {
        return 0;
    }
    uint64_t m = w->next++;
    size_t i = m & (w->cap - 1);
    w->id[i] = m;
    w->left[i] = expected;
    w->sent_at[i] = now;
    w->outstanding++;
    return m;
}

bool
bench_relay_window_got(bench_relay_window_t *w, uint64_t m)
{
    size_t i = m & (w->cap - 1);
    if (m == 0 || w->id[i] != m) {
        w->stray++;
        return false;
    }
    if (--w->left[i] > 0) {
        return false;
    }
    w->id[i] = 0;
    w->outstanding--;
    w->completed++;
    s_advance(w);
    return true;
}

uint64_t
bench_relay_window_sweep(bench_relay_window_t *w, int64_t now, int64_t max_age_us)
{
    uint64_t n = 0;
    for (;;) {
        s_advance(w);
        size_t i = w->low & (w->cap - 1);
        if (w->low >= w->next || now - w->sent_at[i] <= max_age_us) {
            return n;
        }
        w->id[i] = 0;
        w->outstanding--;
        w->expired++;
        n++;
    }
}
