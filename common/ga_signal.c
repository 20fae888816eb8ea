// SPDX-License-Identifier: MIT
// A sigwait thread. Stopping it sends it SIGUSR1 (also blocked, and waited for) so that the
// join never depends on an outside signal.
#include "ga_signal.h"

#include "ga_mem.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

struct ga_signal_t {
    pthread_t thread; // the sigwait thread
    ga_signal_fn *fn; // callback for SIGINT/SIGTERM/SIGHUP
    void *arg;        // its argument
};

static void
s_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

void
ga_signal_block(void)
{
    sigset_t set;
    s_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void *
s_run(void *arg)
{
    ga_signal_t *self = arg;
    sigset_t set;
    s_set(&set);
    for (;;) {
        int signo = 0;
        if (sigwait(&set, &signo) != 0) {
            continue;
        }
        if (signo == SIGUSR1) {
            return NULL;
        }
        self->fn(signo, self->arg);
    }
}

ga_err_t
ga_signal_start(ga_signal_fn *fn, void *arg, ga_signal_t **out)
{
    ga_signal_t *self = ga_calloc(1, sizeof *self);
    self->fn = fn;
    self->arg = arg;
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        ga_free(self);
        return GA_EIO;
    }
    *out = self;
    return GA_OK;
}

void
ga_signal_destroy(ga_signal_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_signal_t *self = *self_p;
    pthread_kill(self->thread, SIGUSR1);
    pthread_join(self->thread, NULL);
    ga_free(self);
    *self_p = NULL;
}
