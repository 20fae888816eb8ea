// SPDX-License-Identifier: MIT
// A small deterministic generator for the unit tests (xorshift64*), so failures reproduce.
// It never repeats an output within its period and never yields 0.
#ifndef TEST_RAND_H
#define TEST_RAND_H

#include <stdint.h>

static inline uint64_t
test_rand(uint64_t *seed)
{
    uint64_t x = *seed;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *seed = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
