// SPDX-License-Identifier: MIT
// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). Pure.
#ifndef GA_UTF8_H
#define GA_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// Length of the valid sequence starting at s[0] (1..4), or 0 when s[0..len) starts with an
// invalid or truncated one. len must be at least 1.
size_t ga_utf8_seq(const unsigned char *s, size_t len);
// True when all of s[0..len) is valid UTF-8.
bool ga_utf8_valid(const char *s, size_t len);

#endif
