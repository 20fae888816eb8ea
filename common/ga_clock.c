// SPDX-License-Identifier: MIT
// CLOCK_MONOTONIC behind a replaceable function pointer.
#include "ga_clock.h"

#include <stdatomic.h>
#include <time.h>

static int64_t
s_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static ga_clock_fn *_Atomic s_source = s_real_us;

int64_t
ga_clock_us(void)
{
    return atomic_load_explicit(&s_source, memory_order_relaxed)();
}

int64_t
ga_clock_ms(void)
{
    return ga_clock_us() / 1000;
}

int64_t
ga_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ga_clock_set_source(ga_clock_fn *source_us)
{
    atomic_store(&s_source, source_us ? source_us : s_real_us);
}
