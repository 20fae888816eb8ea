// SPDX-License-Identifier: MIT
// The JSON codecs' shared word test (ga_json_decode.c, ga_json_encode.c): where a run of bytes
// that need no escaping ends, eight bytes at a time. Private to common/.
#ifndef GA_JSON_PLAIN_H
#define GA_JSON_PLAIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// The index of the first byte at or after `i` that is not printable ASCII other than '"' and
// '\\' (a control byte, '"', '\\' or 0x80 and above), looking eight bytes at a time with the
// classic word tests ("has a byte below n", "has a zero byte"): borrows only run upwards, so
// the lowest flagged byte is exactly the first special one. Stops where fewer than eight bytes
// remain (or at once on a big-endian machine): the caller looks at the rest byte by byte.
static inline size_t
ga_json_plain_words(const unsigned char *t, size_t i, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t high = 0x8080808080808080u;
    while (len - i >= 8) { // never past len
        uint64_t x;
        memcpy(&x, t + i, 8);
        uint64_t quote = x ^ (ones * '"');
        uint64_t bslash = x ^ (ones * '\\');
        uint64_t below_space = (x - ones * 0x20) & ~x;
        uint64_t is_quote = (quote - ones) & ~quote;
        uint64_t is_bslash = (bslash - ones) & ~bslash;
        uint64_t special = (below_space | is_quote | is_bslash | x) & high; // x: 0x80 and above
        if (special) {
            return i + (size_t) (__builtin_ctzll(special) >> 3);
        }
        i += 8;
    }
#endif
    return i;
}

#endif
