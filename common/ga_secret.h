// SPDX-License-Identifier: MIT
// Comparing a presented secret (push token, admin token) with the configured one: over the full
// length of both, NUL bytes included, in time that does not depend on where they differ.
#ifndef GA_SECRET_H
#define GA_SECRET_H

#include "ga_value.h"

#include <stdbool.h>
#include <stddef.h>

// True when `given` (`given_len` bytes, which may contain NULs) is exactly `secret` (a C
// string). The loop runs over all of `secret` whatever `given` holds; only the lengths (never
// the content) can influence the time taken. Any thread.
bool ga_secret_equal(const char *secret, const char *given, size_t given_len);

// The same for a decoded value: false unless `given` is a string (NULL is refused).
bool ga_secret_equal_value(const char *secret, const ga_value_t *given);

#endif
