// SPDX-License-Identifier: MIT
// A broker call's state machine, without I/O (docs/architecture.md, "A call at the broker"):
//
//   start -> SENT --answer / ordinary error------------------------------> FORWARD (done)
//             |  --retryable error, lost worker, unsent, attempt timeout--> SEND (another or
//             |        the same node, at once) | WAIT (backoff) | FAIL (exhausted, done)
//             |  --call deadline---------------------------------------> FAIL (timed out)
//           BACKOFF --wake--> SEND ;  --call deadline--> FAIL
//   any event naming an attempt that is not the current one: DROP (late, counted by the caller)
//
// The owner (bk_calls.c) feeds events in and carries out what comes back: it sends attempts,
// keeps the record in the in-flight table under the current attempt's id with
// bk_call_fsm_due() as its deadline, and answers the gateway exactly once, on FORWARD or FAIL.
#ifndef BK_CALL_H
#define BK_CALL_H

#include "ga_err.h"

#include <stdbool.h>
#include <stdint.h>

#define BK_CALL_ATTEMPTS_MAX 10       // attempts per call at most (retry N: 1..10)
#define BK_CALL_BACKOFF_BASE_MS 100   // wait before the 2nd attempt; doubles each attempt
#define BK_CALL_BACKOFF_MAX_MS 5000   // cap of the wait (jitter included)

typedef enum {
    BK_CALL_SENT,    // an attempt is with a worker
    BK_CALL_BACKOFF, // waiting before the next attempt
    BK_CALL_DONE,    // answered
} bk_call_state_t;

typedef enum {
    BK_RETRY_FALLBACK,  // no retry setting: a call that cannot be delivered tries each other node once
    BK_RETRY_ALL_NODES, // retry N / all_nodes:N: N attempts in all, moving across nodes
    BK_RETRY_SAME_NODE, // same_node:N: N attempts in all, on the node chosen first
} bk_retry_mode_t;

typedef enum {
    BK_EV_REPLY,     // the worker answered: a result, or an ordinary error
    BK_EV_RETRYABLE, // the worker answered with an error marked retryable (or refused: not run)
    BK_EV_LOST,      // the worker went away (silent, disconnected, or registered afresh)
    BK_EV_UNSENT,    // the attempt could not be handed to the worker's socket
    BK_EV_DUE,       // the record's deadline (bk_call_fsm_due) passed
    BK_EV_NO_WORKER, // SEND found no worker for the next attempt
} bk_call_event_t;

typedef enum {
    BK_DO_FORWARD, // pass the worker's answer to the gateway; the call is done
    BK_DO_FAIL,    // answer the gateway with fsm->code, message, can_retry; the call is done
    BK_DO_SEND,    // send the next attempt now (same_node: to the first node; else another)
    BK_DO_WAIT,    // keep the call, attempt-less, until bk_call_fsm_due, then feed BK_EV_DUE
    BK_DO_DROP,    // an event of an earlier attempt: nothing changes
    BK_DO_NOTHING, // an attempt's record deadline came before its due time: nothing changes
} bk_call_do_t;

typedef struct {
    bk_call_state_t state;      // where the call is
    bk_retry_mode_t mode;       // how it moves on
    bool retry_set;             // a retry setting was given (exhaustion is then final)
    int max_attempts;           // attempts allowed in all (1..BK_CALL_ATTEMPTS_MAX)
    int attempts;               // attempts sent so far
    uint64_t attempt_id;        // id of the attempt with a worker (0: none)
    uint64_t tried[BK_CALL_ATTEMPTS_MAX]; // worker lives tried, in order
    int64_t deadline;           // monotonic ms bounding every attempt (INT64_MAX: none)
    int64_t attempt_deadline;   // monotonic ms: the current attempt is given up then
    int64_t wake_at;            // monotonic ms: the backoff ends
    ga_err_t code;              // on FAIL: the error code
    const char *message;        // on FAIL: the error message (static)
    bool can_retry;             // on FAIL: may the client try again
    bool exhausted;             // on FAIL: every allowed attempt was used
} bk_call_fsm_t;

// Starts a call at `now`: `timeout_ms` bounds all attempts (<= 0: none), at most
// `max_attempts` of them, moving on as `mode` says.
void bk_call_fsm_start(bk_call_fsm_t *fsm, bk_retry_mode_t mode, bool retry_set,
                       int max_attempts, int64_t timeout_ms, int64_t now);
// Records that attempt `attempt_id` went to the worker of life `life` at `now`: it is given an
// equal share of the time left (time left / attempts left).
void bk_call_fsm_sent(bk_call_fsm_t *fsm, uint64_t attempt_id, uint64_t life, int64_t now);
// Feeds `event` about attempt `attempt_id` (0 for BK_EV_DUE during a backoff and for
// BK_EV_NO_WORKER) at `now`; `rnd` is a random number (the backoff's jitter).
bk_call_do_t bk_call_fsm_on(bk_call_fsm_t *fsm, bk_call_event_t event, uint64_t attempt_id,
                            int64_t now, uint64_t rnd);
// When the record must next be looked at: the attempt's deadline while SENT, the end of the
// backoff while BACKOFF (either bounded by the call's deadline); INT64_MAX: never.
int64_t bk_call_fsm_due(const bk_call_fsm_t *fsm);
// Whether the worker of life `life` has had an attempt of this call.
bool bk_call_fsm_tried(const bk_call_fsm_t *fsm, uint64_t life);
// The wait before attempt `attempts` + 1 (attempts >= 1): 100 ms x 2^(attempts-1) plus up to a
// quarter more (jitter from `rnd`), capped at 5 s.
int64_t bk_call_backoff_ms(int attempts, uint64_t rnd);

#endif
