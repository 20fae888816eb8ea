// SPDX-License-Identifier: MIT
// ga_zpoll: waits on ZeroMQ sockets and plain descriptors with fewer system calls than
// zmq_poll. zmq_poll asks every socket for ZMQ_EVENTS before and after it sleeps, and in
// libzmq 4.3 each of those asks costs a getpid and a poll even for a socket nobody touched;
// on the virtualised 2-vCPU build machines a system call is the expensive thing
// (docs/benchmarks.md, "Where the time goes"). ga_zpoll sleeps in one poll on the sockets'
// ZMQ_FDs and asks ZMQ_EVENTS only of a socket whose descriptor fired or that the caller marked
// dirty.
//
// ZMQ_FD is edge-triggered: any call on a socket (a send, a recv that did not end in EAGAIN)
// may consume the signal of messages that then wait unseen. The contract that makes one
// poll safe:
//   * a socket returned ready is marked dirty: receive from it as much as you like;
//   * after sending on a socket, call ga_zpoll_touch (or set dirty) so the next wait checks
//     it before sleeping;
//   * a socket drained until EAGAIN may be left clean, but leaving it dirty is never wrong.
#ifndef GA_ZPOLL_H
#define GA_ZPOLL_H

#include <poll.h>
#include <stdbool.h>

#include "ga_err.h"

typedef struct {
    void *socket; // a ZeroMQ socket, or NULL for a plain descriptor
    int fd;       // the plain descriptor (ignored when socket is set)
    bool dirty;   // check ZMQ_EVENTS before sleeping (set by touch and by readiness)
    bool ready;   // out: a message can be received (or the descriptor is readable)
} ga_zpoll_item_t;

typedef struct {
    ga_zpoll_item_t *items;
    struct pollfd *pfds;
    int n;
} ga_zpoll_t;

// Sets up n items (the caller fills socket or fd in each beforehand). Every socket starts
// dirty. GA_EIO when a socket has no ZMQ_FD.
GA_MUST_CHECK ga_err_t ga_zpoll_init(ga_zpoll_t *self, ga_zpoll_item_t *items, int n);
void ga_zpoll_fini(ga_zpoll_t *self);

// Waits up to timeout_ms (-1: forever) until an item is ready; sets each item's ready.
// Returns the number ready, 0 on timeout, -1 on error (errno set; EINTR: call again).
int ga_zpoll_wait(ga_zpoll_t *self, long timeout_ms);

// Marks the item holding socket dirty: call after sending on it.
void ga_zpoll_touch(ga_zpoll_t *self, const void *socket);

#endif
