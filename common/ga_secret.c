// SPDX-License-Identifier: MIT
// Constant-time secret comparison (see ga_secret.h).
#include "ga_secret.h"

#include <string.h>

bool
ga_secret_equal(const char *secret, const char *given, size_t given_len)
{
    size_t len = strlen(secret);
    volatile unsigned char diff = len != given_len;
    for (size_t i = 0; i < len; i++) {
        // Past the end of `given`, compare with a byte no C-string secret holds (NUL).
        unsigned char g = i < given_len ? (unsigned char) given[i] : 0;
        diff |= (unsigned char) ((unsigned char) secret[i] ^ g);
    }
    return diff == 0;
}

bool
ga_secret_equal_value(const char *secret, const ga_value_t *given)
{
    if (given == NULL || given->type != GA_STR) {
        return false; // absence tells nothing about the secret
    }
    return ga_secret_equal(secret, given->u.s, given->len);
}
