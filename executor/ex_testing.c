// SPDX-License-Identifier: MIT
// The test helpers of include/genapi/testing.h: a thread-safe, growing list of responses.
#include "genapi/testing.h"

#include "ga_mem.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define EX_CALLS_MAX 100000 // responses kept per call (a runaway stream stops being kept)

struct ex_calls_t {
    pthread_mutex_t lock;
    pthread_cond_t cond;   // signalled at each response
    ex_response_t **items; // owned copies
    size_t n, cap;
    bool ended;            // the final response has come
};

// True when `r` ends its call.
static bool
s_final(const ex_response_t *r)
{
    return strcmp(r->kind, "ack") != 0 && strcmp(r->kind, "chunk") != 0;
}

static void
s_collect(void *arg, const ex_response_t *resp)
{
    ex_calls_t *c = arg;
    pthread_mutex_lock(&c->lock);
    if (c->n < EX_CALLS_MAX && !c->ended) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 8;
            c->items = ga_realloc(c->items, c->cap * sizeof *c->items);
        }
        c->items[c->n++] = ex_response_copy(resp);
        c->ended = s_final(resp);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

ex_calls_t *
ex_test_call(ex_executor_t *ex, const ex_request_t *req)
{
    ex_calls_t *c = ga_calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (ex_executor_execute(ex, req, s_collect, c) != GA_OK) {
        ex_test_free(&c);
    }
    return c;
}

bool
ex_test_wait(ex_calls_t *c, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    while (!c->ended && pthread_cond_timedwait(&c->cond, &c->lock, &until) != ETIMEDOUT) {
    }
    bool ended = c->ended;
    pthread_mutex_unlock(&c->lock);
    return ended;
}

size_t
ex_test_count(ex_calls_t *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

const ex_response_t *
ex_test_response(ex_calls_t *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    const ex_response_t *r = i < c->n ? c->items[i] : NULL;
    pthread_mutex_unlock(&c->lock);
    return r;
}

const ex_response_t *
ex_test_final(ex_calls_t *c)
{
    pthread_mutex_lock(&c->lock);
    const ex_response_t *r = c->ended ? c->items[c->n - 1] : NULL;
    pthread_mutex_unlock(&c->lock);
    return r;
}

void
ex_test_free(ex_calls_t **calls_p)
{
    if (calls_p == NULL || *calls_p == NULL) {
        return;
    }
    ex_calls_t *c = *calls_p;
    for (size_t i = 0; i < c->n; i++) {
        ex_response_free(&c->items[i]);
    }
    ga_free(c->items);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    ga_free(c);
    *calls_p = NULL;
}

ex_response_t *
ex_test_execute(ex_executor_t *ex, const ex_request_t *req)
{
    ex_calls_t *c = ex_test_call(ex, req);
    if (c == NULL) {
        return NULL;
    }
    ex_response_t *r = NULL;
    if (ex_test_wait(c, 5000)) {
        r = ex_response_copy(ex_test_final(c));
    }
    ex_test_free(&c);
    return r;
}
