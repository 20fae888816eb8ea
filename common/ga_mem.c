// SPDX-License-Identifier: MIT
// Aborting allocator wrappers and the growable byte buffer. The only place that calls malloc.
#include "ga_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void
ga_panic(const char *file, int line, const char *what)
{
    fprintf(stderr, "genapi: assertion failed at %s:%d: %s\n", file, line, what);
    abort();
}

static void *
s_check(void *p, size_t size)
{
    if (p == NULL && size != 0) {
        fprintf(stderr, "genapi: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return p;
}

void *
ga_malloc(size_t size)
{
    return s_check(malloc(size ? size : 1), size ? size : 1);
}

void *
ga_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0) {
        n = 1;
        size = 1;
    }
    return s_check(calloc(n, size), n * size);
}

void *
ga_realloc(void *ptr, size_t size)
{
    return s_check(realloc(ptr, size ? size : 1), size ? size : 1);
}

char *
ga_strdup(const char *s)
{
    return ga_strndup(s, strlen(s));
}

char *
ga_strndup(const char *s, size_t len)
{
    char *copy = ga_malloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

void
ga_free(void *ptr)
{
    free(ptr);
}

void
ga_buf_init(ga_buf_t *self)
{
    self->data = NULL;
    self->len = 0;
    self->cap = 0;
}

void
ga_buf_fini(ga_buf_t *self)
{
    ga_free(self->data);
    ga_buf_init(self);
}

void
ga_buf_reset(ga_buf_t *self)
{
    self->len = 0;
}

uint8_t *
ga_buf_grow(ga_buf_t *self, size_t extra)
{
    if (self->cap - self->len < extra) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap - self->len < extra) {
            cap *= 2;
        }
        self->data = ga_realloc(self->data, cap);
        self->cap = cap;
    }
    return self->data + self->len;
}
