// SPDX-License-Identifier: MIT
// Signal handling for programs' main functions only (never for libraries): block SIGINT,
// SIGTERM and SIGHUP in every thread, then turn their arrival into one callback on a dedicated
// thread that sigwaits. The callback starts the program's drain (the first SIGINT/SIGTERM),
// stops it at once (the second), or asks for a reload (SIGHUP), and wakes its loop
// (docs/operations.md, "Lifecycle").
#ifndef GA_SIGNAL_H
#define GA_SIGNAL_H

#include "ga_err.h"

typedef void(ga_signal_fn)(int signo, void *arg);
typedef struct ga_signal_t ga_signal_t;

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in threads it starts later) and
// ignores SIGPIPE. Call first thing in main.
void ga_signal_block(void);
// Starts the waiting thread; `fn` is called on it for each SIGINT, SIGTERM or SIGHUP, with the
// signal's number. Caller owns result.
GA_MUST_CHECK ga_err_t ga_signal_start(ga_signal_fn *fn, void *arg, ga_signal_t **out);
// Stops and joins the waiting thread. Accepts NULL.
void ga_signal_destroy(ga_signal_t **self_p);

#endif
