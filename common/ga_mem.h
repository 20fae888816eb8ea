// SPDX-License-Identifier: MIT
// The one allocator entry point. Every allocation in genapi goes through these; running out of
// memory aborts with a message (there is no recovery path worth its complexity), so callers never
// check for NULL. Also a growable byte buffer, reused across messages on hot paths.
#ifndef GA_MEM_H
#define GA_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Like malloc/calloc/realloc/strdup, but abort on failure. Any thread.
void *ga_malloc(size_t size);
void *ga_calloc(size_t n, size_t size);
void *ga_realloc(void *ptr, size_t size);
char *ga_strdup(const char *s);
char *ga_strndup(const char *s, size_t len);
void ga_free(void *ptr);

// Programmer-error check, always on. Never use on data from the network, config or a syscall.
#define ga_assert(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ga_panic(__FILE__, __LINE__, #cond);                                                   \
        }                                                                                          \
    } while (0)
_Noreturn void ga_panic(const char *file, int line, const char *what);

// memcpy(dst, src, n) without a call for short n (the keys, ids and names the codecs copy for
// every message): fixed-size copies that overlap, reading exactly src[0..n) and writing exactly
// dst[0..n); memcpy itself above 16 bytes.
static inline void
ga_copy_short(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n > 0 && n < 4) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    } else if (n > 16) {
        memcpy(d, s, n);
    }
}

// A growable byte buffer. Embedded: ga_buf_init / ga_buf_fini. Not thread-safe.
typedef struct {
    uint8_t *data; // bytes, owned; NULL until the first write
    size_t len;    // bytes in use
    size_t cap;    // bytes allocated
} ga_buf_t;

void ga_buf_init(ga_buf_t *self);
void ga_buf_fini(ga_buf_t *self);
// Empties the buffer, keeping its memory for reuse.
void ga_buf_reset(ga_buf_t *self);
// ga_buf_reserve's slow path: grows the buffer so that `extra` more bytes fit.
uint8_t *ga_buf_grow(ga_buf_t *self, size_t extra);
// Makes room for `extra` more bytes and returns a pointer to where they go. Inline, as are
// the appends: the encoders call them for every field and byte.
static inline uint8_t *
ga_buf_reserve(ga_buf_t *self, size_t extra)
{
    return self->cap - self->len >= extra ? self->data + self->len : ga_buf_grow(self, extra);
}
static inline void
ga_buf_append(ga_buf_t *self, const void *data, size_t len)
{
    if (len == 0) {
        return;
    }
    memcpy(ga_buf_reserve(self, len), data, len);
    self->len += len;
}
static inline void
ga_buf_append_str(ga_buf_t *self, const char *s)
{
    ga_buf_append(self, s, strlen(s));
}
static inline void
ga_buf_append_char(ga_buf_t *self, char c)
{
    *ga_buf_reserve(self, 1) = (uint8_t) c;
    self->len++;
}

#endif
