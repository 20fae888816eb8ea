// SPDX-License-Identifier: MIT
#include "ga_zpoll.h"

#include <zmq.h>

#include "ga_clock.h"
#include "ga_mem.h"

#include <stdint.h>

// True when socket has a message to receive. ZMQ_EVENTS processes the socket's pending
// commands, which also re-arms its ZMQ_FD edge.
static bool
s_readable(void *socket)
{
    int events = 0;
    size_t len = sizeof events;
    // A failure (a closing context) counts as ready: the caller's receive reports it.
    return zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) != 0 || (events & ZMQ_POLLIN);
}

ga_err_t
ga_zpoll_init(ga_zpoll_t *self, ga_zpoll_item_t *items, int n)
{
    self->items = items;
    self->n = n;
    self->pfds = ga_calloc((size_t) n, sizeof *self->pfds);
    for (int i = 0; i < n; i++) {
        ga_zpoll_item_t *it = &items[i];
        it->ready = false;
        it->dirty = it->socket != NULL;
        if (it->socket) {
            size_t len = sizeof it->fd;
            if (zmq_getsockopt(it->socket, ZMQ_FD, &it->fd, &len) != 0) {
                ga_zpoll_fini(self);
                return GA_EIO;
            }
        }
        self->pfds[i] = (struct pollfd){.fd = it->fd, .events = POLLIN};
    }
    return GA_OK;
}

void
ga_zpoll_fini(ga_zpoll_t *self)
{
    ga_free(self->pfds);
    self->pfds = NULL;
    self->n = 0;
}

// One pass: asks the dirty sockets, sleeps in one poll unless something is ready already, then
// asks the sockets whose descriptor fired. Returns the number ready or -1.
static int
s_pass(ga_zpoll_t *self, long timeout_ms)
{
    int ready = 0;
    // Sockets used since the last wait may hold messages whose edge was consumed: ask them.
    for (int i = 0; i < self->n; i++) {
        ga_zpoll_item_t *it = &self->items[i];
        it->ready = it->dirty && s_readable(it->socket);
        it->dirty = false;
        ready += it->ready;
    }
    // One poll: plain descriptors are always looked at, so a busy socket cannot starve them.
    int rc = poll(self->pfds, (nfds_t) self->n, ready ? 0 : (int) timeout_ms);
    if (rc < 0) {
        return -1;
    }
    for (int i = 0; i < self->n && rc > 0; i++) {
        ga_zpoll_item_t *it = &self->items[i];
        if (!(self->pfds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
            continue;
        }
        rc--;
        bool now_ready = it->socket ? it->ready || s_readable(it->socket) : true;
        ready += now_ready && !it->ready;
        it->ready = now_ready;
    }
    return ready;
}

int
ga_zpoll_wait(ga_zpoll_t *self, long timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : ga_clock_ms() + timeout_ms;
    int ready;
    // A descriptor also fires for commands that bring no message (a peer connecting): sleep
    // again for the time that is left.
    for (;;) {
        ready = s_pass(self, timeout_ms);
        if (ready != 0) {
            break;
        }
        int64_t now = ga_clock_ms();
        if (now >= deadline) {
            break;
        }
        timeout_ms = deadline == INT64_MAX ? -1 : (long) (deadline - now);
    }
    // The caller receives from what is ready, possibly not until EAGAIN: check again next time.
    for (int i = 0; i < self->n; i++) {
        self->items[i].dirty = self->items[i].socket && self->items[i].ready;
    }
    return ready;
}

void
ga_zpoll_touch(ga_zpoll_t *self, const void *socket)
{
    for (int i = 0; i < self->n; i++) {
        if (self->items[i].socket == socket) {
            self->items[i].dirty = true;
            return;
        }
    }
}
