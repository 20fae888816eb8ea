// SPDX-License-Identifier: MIT
// Latency samples for genapi-bench: every sample is kept (no histogram approximation) in one
// preallocated array; percentiles are read off the sorted samples. Pure, single-threaded.
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t *us;     // samples in microseconds
    size_t len;      // samples recorded
    size_t cap;      // room in us
    size_t dropped;  // samples beyond cap (counted, not stored)
} bench_stats_t;

void bench_stats_init(bench_stats_t *self, size_t cap);
void bench_stats_fini(bench_stats_t *self);
void bench_stats_add(bench_stats_t *self, int64_t us);
// Sorts the samples (call once, after the run).
void bench_stats_sort(bench_stats_t *self);
// The q-quantile (0 <= q <= 1) of sorted samples by the nearest-rank method; 0 when empty.
int64_t bench_stats_quantile(const bench_stats_t *self, double q);

#endif
