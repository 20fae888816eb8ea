// SPDX-License-Identifier: MIT
// Monotonic time for deadlines and heartbeats. Tests may replace the source with
// ga_clock_set_source to drive time by hand.
#ifndef GA_CLOCK_H
#define GA_CLOCK_H

#include <stdint.h>

typedef int64_t(ga_clock_fn)(void);

// Monotonic milliseconds and microseconds since an arbitrary origin. Any thread.
int64_t ga_clock_ms(void);
int64_t ga_clock_us(void);
// Wall-clock milliseconds since the Unix epoch (for timestamps shown to people only).
int64_t ga_clock_wall_ms(void);
// Replaces the microsecond source (NULL restores the real clock). Tests only.
void ga_clock_set_source(ga_clock_fn *source_us);

#endif
