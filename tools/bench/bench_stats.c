// SPDX-License-Identifier: MIT
// Sample storage and nearest-rank percentiles.
#include "bench_stats.h"

#include <math.h>
#include <stdlib.h>

void
bench_stats_init(bench_stats_t *self, size_t cap)
{
    self->us = malloc(sizeof(int64_t) * (cap ? cap : 1));
    self->len = 0;
    self->cap = self->us ? cap : 0;
    self->dropped = 0;
}

void
bench_stats_fini(bench_stats_t *self)
{
    free(self->us);
    self->us = NULL;
    self->len = self->cap = 0;
}

void
bench_stats_add(bench_stats_t *self, int64_t us)
{
    if (self->len < self->cap) {
        self->us[self->len++] = us;
    } else {
        self->dropped++;
    }
}

static int
s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a;
    int64_t y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

void
bench_stats_sort(bench_stats_t *self)
{
    qsort(self->us, self->len, sizeof(int64_t), s_cmp);
}

int64_t
bench_stats_quantile(const bench_stats_t *self, double q)
{
    if (self->len == 0) {
        return 0;
    }
    if (q <= 0) {
        return self->us[0];
    }
    // Nearest rank: the smallest sample with at least q of the samples at or below it.
    size_t rank = (size_t) ceil(q * (double) self->len);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > self->len) {
        rank = self->len;
    }
    return self->us[rank - 1];
}
