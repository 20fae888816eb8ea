// SPDX-License-Identifier: MIT
// The broker call's state machine (see bk_call.h): pure, no I/O, no clock of its own.
#include "bk_call.h"

#include <string.h>

void
bk_call_fsm_start(bk_call_fsm_t *fsm, bk_retry_mode_t mode, bool retry_set, int max_attempts,
                  int64_t timeout_ms, int64_t now)
{
    memset(fsm, 0, sizeof *fsm);
    fsm->state = BK_CALL_SENT; // about to send the first attempt
    fsm->mode = mode;
    fsm->retry_set = retry_set;
    fsm->max_attempts = max_attempts < 1                      ? 1
                        : max_attempts > BK_CALL_ATTEMPTS_MAX ? BK_CALL_ATTEMPTS_MAX
                                                              : max_attempts;
    fsm->deadline = timeout_ms > 0 ? now + timeout_ms : INT64_MAX;
    fsm->attempt_deadline = fsm->deadline;
    fsm->wake_at = INT64_MAX;
}

void
bk_call_fsm_sent(bk_call_fsm_t *fsm, uint64_t attempt_id, uint64_t life, int64_t now)
{
    if (fsm->attempts < BK_CALL_ATTEMPTS_MAX) {
        fsm->tried[fsm->attempts] = life;
    }
    fsm->attempts++;
    fsm->attempt_id = attempt_id;
    fsm->state = BK_CALL_SENT;
    fsm->wake_at = INT64_MAX;
    int left = fsm->max_attempts - fsm->attempts + 1;
    if (fsm->deadline == INT64_MAX || left <= 1 || !fsm->retry_set) {
        // Without a retry setting (fallback only) an attempt has all the time left: a slow
        // handler is not cut short to make room for attempts nobody asked for; fallback moves
        // on when a call cannot be delivered (worker gone or lost), not when it is slow.
        fsm->attempt_deadline = fsm->deadline;
    } else {
        // An equal share of the time left, so that every allowed attempt can still be made.
        fsm->attempt_deadline = now + (fsm->deadline - now) / left;
    }
}

int64_t
bk_call_backoff_ms(int attempts, uint64_t rnd)
{
    int shift = attempts > 1 ? attempts - 1 : 0;
    int64_t base = shift > 10 ? BK_CALL_BACKOFF_MAX_MS : (int64_t) BK_CALL_BACKOFF_BASE_MS << shift;
    if (base > BK_CALL_BACKOFF_MAX_MS) {
        base = BK_CALL_BACKOFF_MAX_MS;
    }
    int64_t wait = base + (int64_t) (rnd % (uint64_t) (base / 4 + 1));
    return wait > BK_CALL_BACKOFF_MAX_MS ? BK_CALL_BACKOFF_MAX_MS : wait;
}

static bk_call_do_t
s_fail(bk_call_fsm_t *fsm, ga_err_t code, const char *message, bool can_retry)
{
    fsm->state = BK_CALL_DONE;
    fsm->attempt_id = 0;
    fsm->code = code;
    fsm->message = message;
    fsm->can_retry = can_retry;
    return BK_DO_FAIL;
}

// Every allowed attempt was used: the last failure is the answer. A call that was tried more
// than once, or under a retry setting, is final (can_retry false); a lone attempt without a
// retry setting keeps the failure's own can_retry.
static bk_call_do_t
s_exhausted(bk_call_fsm_t *fsm, ga_err_t code, const char *message)
{
    fsm->exhausted = fsm->retry_set || fsm->attempts > 1;
    return s_fail(fsm, code, message, !fsm->exhausted);
}

bk_call_do_t
bk_call_fsm_on(bk_call_fsm_t *fsm, bk_call_event_t event, uint64_t attempt_id, int64_t now,
               uint64_t rnd)
{
    if (fsm->state == BK_CALL_DONE) {
        return BK_DO_DROP;
    }
    if (fsm->state == BK_CALL_BACKOFF) {
        if (event != BK_EV_DUE || attempt_id != 0) {
            return BK_DO_DROP; // the previous attempt's worker, late
        }
        if (now >= fsm->deadline) {
            return s_fail(fsm, GA_ETIMEDOUT, "Request timed out", true);
        }
        if (now < fsm->wake_at) {
            return BK_DO_NOTHING;
        }
        fsm->state = BK_CALL_SENT; // the owner sends, then calls bk_call_fsm_sent
        fsm->wake_at = INT64_MAX;
        return BK_DO_SEND;
    }
    // SENT (or about to send).
    if (event == BK_EV_NO_WORKER) {
        if (fsm->attempts == 0) {
            return s_fail(fsm, GA_EUNAVAIL, "Service unavailable", true);
        }
        return s_exhausted(fsm, fsm->code ? fsm->code : GA_EUNAVAIL,
                           fsm->message ? fsm->message : "Service unavailable");
    }
    if (attempt_id != fsm->attempt_id || attempt_id == 0) {
        return BK_DO_DROP;
    }
    ga_err_t code;
    const char *message;
    switch (event) {
    case BK_EV_REPLY:
        fsm->state = BK_CALL_DONE;
        fsm->attempt_id = 0;
        return BK_DO_FORWARD;
    case BK_EV_RETRYABLE:
        if (fsm->mode == BK_RETRY_FALLBACK) {
            // The handler ran and answered: fallback is for calls that could not be delivered.
            fsm->state = BK_CALL_DONE;
            fsm->attempt_id = 0;
            return BK_DO_FORWARD;
        }
        code = GA_EHANDLER;
        message = NULL; // the handler's own message (the owner has the reply)
        break;
    case BK_EV_LOST:
        code = GA_ELOST;
        message = "Worker lost";
        break;
    case BK_EV_UNSENT:
        code = GA_EUNAVAIL;
        message = "Service unavailable";
        break;
    case BK_EV_DUE:
        if (now >= fsm->deadline) {
            return s_fail(fsm, GA_ETIMEDOUT, "Request timed out", true);
        }
        if (now < fsm->attempt_deadline) {
            return BK_DO_NOTHING;
        }
        code = GA_ETIMEDOUT;
        message = "Request timed out";
        break;
    default:
        return BK_DO_DROP;
    }
    fsm->attempt_id = 0;
    fsm->code = code;
    fsm->message = message;
    if (fsm->attempts >= fsm->max_attempts) {
        return s_exhausted(fsm, code, message);
    }
    if (fsm->mode == BK_RETRY_FALLBACK) {
        return BK_DO_SEND; // the next node, at once
    }
    int64_t wake = now + bk_call_backoff_ms(fsm->attempts, rnd);
    if (wake >= fsm->deadline) {
        // No attempt could start in time: answer now rather than at the deadline.
        return s_fail(fsm, code, message, true);
    }
    fsm->state = BK_CALL_BACKOFF;
    fsm->wake_at = wake;
    return BK_DO_WAIT;
}

int64_t
bk_call_fsm_due(const bk_call_fsm_t *fsm)
{
    switch (fsm->state) {
    case BK_CALL_SENT:
        return fsm->attempt_deadline < fsm->deadline ? fsm->attempt_deadline : fsm->deadline;
    case BK_CALL_BACKOFF:
        return fsm->wake_at < fsm->deadline ? fsm->wake_at : fsm->deadline;
    default:
        return INT64_MAX;
    }
}

bool
bk_call_fsm_tried(const bk_call_fsm_t *fsm, uint64_t life)
{
    int n = fsm->attempts < BK_CALL_ATTEMPTS_MAX ? fsm->attempts : BK_CALL_ATTEMPTS_MAX;
    for (int i = 0; i < n; i++) {
        if (fsm->tried[i] == life) {
            return true;
        }
    }
    return false;
}
