// SPDX-License-Identifier: MIT
// The broker call's state machine, transition by transition: answers, ordinary and retryable
// errors, lost workers, unsent attempts, attempt timeouts and the call's deadline, fallback
// (each node once, no backoff), retry across nodes and on one node (backoff within bounds,
// exhaustion final), late events of earlier attempts dropped, and the time split between
// attempts.
#include "bk_call.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void
test_call_forwards_an_answer_and_drops_everything_after(void **state)
{
    (void) state;
    bk_call_fsm_t f;
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 1, 5000, 1000);
    assert_int_equal(bk_call_fsm_due(&f), 6000);
    bk_call_fsm_sent(&f, 7, 100, 1000);
    assert_int_equal(f.attempts, 1);
    assert_true(bk_call_fsm_tried(&f, 100));
    assert_false(bk_call_fsm_tried(&f, 101));
    assert_int_equal(bk_call_fsm_due(&f), 6000); // a lone attempt has the whole timeout
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_REPLY, 7, 1200, 0), BK_DO_FORWARD);
    assert_int_equal(f.state, BK_CALL_DONE);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_REPLY, 7, 1300, 0), BK_DO_DROP);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 7, 9000, 0), BK_DO_DROP);
    assert_true(bk_call_fsm_due(&f) == INT64_MAX);
}

static void
test_call_without_retry_keeps_a_lone_attempts_failure_retryable(void **state)
{
    (void) state;
    bk_call_fsm_t f;
    // One node, no retry setting: a lost worker and a timeout are answered as they always were.
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 1, 5000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 1, 10, 0), BK_DO_FAIL);
    assert_int_equal(f.code, GA_ELOST);
    assert_string_equal(f.message, "Worker lost");
    assert_true(f.can_retry);
    assert_false(f.exhausted);
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 1, 5000, 0);
    bk_call_fsm_sent(&f, 2, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 2, 4999, 0), BK_DO_NOTHING);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 2, 5000, 0), BK_DO_FAIL);
    assert_int_equal(f.code, GA_ETIMEDOUT);
    assert_true(f.can_retry);
    // An ordinary error answer is an answer: forwarded, never retried.
    bk_call_fsm_start(&f, BK_RETRY_ALL_NODES, true, 3, 5000, 0);
    bk_call_fsm_sent(&f, 3, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_REPLY, 3, 10, 0), BK_DO_FORWARD);
    assert_int_equal(f.attempts, 1);
}

static void
test_call_falls_back_to_each_node_once_without_backoff(void **state)
{
    (void) state;
    bk_call_fsm_t f;
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 3, 3000, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_NO_WORKER, 0, 0, 0), BK_DO_FAIL); // none at all
    assert_int_equal(f.code, GA_EUNAVAIL);
    assert_true(f.can_retry);

    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 3, 3000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    // Without a retry setting an attempt has all the time left: a slow handler is not cut
    // short for attempts nobody asked for.
    assert_int_equal(bk_call_fsm_due(&f), 3000);
    // Lost mid-call: the next node at once.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 1, 10, 0), BK_DO_SEND);
    bk_call_fsm_sent(&f, 2, 200, 10);
    assert_int_equal(bk_call_fsm_due(&f), 3000);
    // Its message could not be sent: the third node.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_UNSENT, 2, 1505, 0), BK_DO_SEND);
    bk_call_fsm_sent(&f, 3, 300, 1505);
    assert_int_equal(bk_call_fsm_due(&f), 3000); // the last attempt has what is left
    assert_true(bk_call_fsm_tried(&f, 100) && bk_call_fsm_tried(&f, 200) &&
                bk_call_fsm_tried(&f, 300));
    // A handler's retryable error under fallback: it ran, so it is the answer.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_RETRYABLE, 3, 1600, 0), BK_DO_FORWARD);

    // Every node undeliverable: exhausted, final.
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 2, 3000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_UNSENT, 1, 0, 0), BK_DO_SEND);
    bk_call_fsm_sent(&f, 2, 200, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 2, 5, 0), BK_DO_FAIL);
    assert_int_equal(f.code, GA_ELOST);
    assert_false(f.can_retry);
    assert_true(f.exhausted);
    // No node left to fall back to after one failure: the failure, still retryable.
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 3, 3000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 1, 0, 0), BK_DO_SEND);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_NO_WORKER, 0, 0, 0), BK_DO_FAIL);
    assert_string_equal(f.message, "Worker lost");
    assert_true(f.can_retry);
}

static void
test_call_retries_with_backoff_then_exhausts(void **state)
{
    (void) state;
    bk_call_fsm_t f;
    bk_call_fsm_start(&f, BK_RETRY_ALL_NODES, true, 3, 30000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_due(&f), 10000);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_RETRYABLE, 1, 50, 0), BK_DO_WAIT);
    assert_int_equal(f.state, BK_CALL_BACKOFF);
    assert_int_equal(f.code, GA_EHANDLER);
    assert_null(f.message); // the handler's own
    int64_t wake = bk_call_fsm_due(&f);
    assert_true(wake >= 150 && wake <= 175); // 100 ms (+ up to 25 % jitter)
    // The first attempt's worker answers late, during the backoff: dropped.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_REPLY, 1, 60, 0), BK_DO_DROP);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 0, wake - 1, 0), BK_DO_NOTHING);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 0, wake, 0), BK_DO_SEND);
    bk_call_fsm_sent(&f, 2, 200, wake);
    // Lost: second backoff, 200 ms.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 2, 1000, 99), BK_DO_WAIT);
    wake = bk_call_fsm_due(&f);
    assert_true(wake >= 1200 && wake <= 1250);
    // A late answer after the retry was sent: dropped, the new attempt's answer counts.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 0, wake, 0), BK_DO_SEND);
    bk_call_fsm_sent(&f, 3, 100, wake);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_REPLY, 2, wake + 1, 0), BK_DO_DROP);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_REPLY, 1, wake + 1, 0), BK_DO_DROP);
    assert_int_equal(f.state, BK_CALL_SENT);
    // The third and last attempt fails too: exhausted, final.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_RETRYABLE, 3, wake + 5, 0), BK_DO_FAIL);
    assert_true(f.exhausted);
    assert_false(f.can_retry);
    assert_int_equal(f.attempts, 3);
}

static void
test_call_retry_one_is_one_attempt_and_final(void **state)
{
    (void) state;
    bk_call_fsm_t f;
    bk_call_fsm_start(&f, BK_RETRY_SAME_NODE, true, 1, 5000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 1, 5, 0), BK_DO_FAIL);
    assert_true(f.exhausted);
    assert_false(f.can_retry);
}

static void
test_call_deadline_bounds_every_attempt_and_backoff(void **state)
{
    (void) state;
    bk_call_fsm_t f;
    bk_call_fsm_start(&f, BK_RETRY_SAME_NODE, true, 5, 1000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_due(&f), 200);
    // Attempt timeout: backoff 100 ms.
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 1, 200, 0), BK_DO_WAIT);
    assert_int_equal(f.code, GA_ETIMEDOUT);
    int64_t wake = bk_call_fsm_due(&f);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 0, wake, 0), BK_DO_SEND);
    bk_call_fsm_sent(&f, 2, 100, 900);
    // The call's deadline comes first: timed out, still retryable for the client.
    assert_int_equal(bk_call_fsm_due(&f), 900 + 100 / 4);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 2, 1000, 0), BK_DO_FAIL);
    assert_int_equal(f.code, GA_ETIMEDOUT);
    assert_true(f.can_retry);
    // A backoff that would end past the deadline: answered at once with the failure.
    bk_call_fsm_start(&f, BK_RETRY_ALL_NODES, true, 5, 1000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 1, 950, 0), BK_DO_FAIL);
    assert_int_equal(f.code, GA_ELOST);
    assert_true(f.can_retry);
    // During a backoff the deadline ends the call too.
    bk_call_fsm_start(&f, BK_RETRY_ALL_NODES, true, 5, 1000, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_LOST, 1, 10, 0), BK_DO_WAIT);
    assert_int_equal(bk_call_fsm_on(&f, BK_EV_DUE, 0, 1000, 0), BK_DO_FAIL);
    assert_int_equal(f.code, GA_ETIMEDOUT);
    // No timeout (infinity): attempts keep the whole, unbounded time.
    bk_call_fsm_start(&f, BK_RETRY_FALLBACK, false, 3, 0, 0);
    bk_call_fsm_sent(&f, 1, 100, 0);
    assert_true(bk_call_fsm_due(&f) == INT64_MAX);
}

static void
test_call_backoff_doubles_and_caps(void **state)
{
    (void) state;
    for (uint64_t rnd = 0; rnd < 1000; rnd += 37) {
        for (int a = 1; a <= 10; a++) {
            int64_t base = 100LL << (a - 1);
            if (base > 5000) {
                base = 5000;
            }
            int64_t w = bk_call_backoff_ms(a, rnd);
            assert_true(w >= base);
            assert_true(w <= base + base / 4);
            assert_true(w <= 5000);
        }
    }
    assert_int_equal(bk_call_backoff_ms(7, 0), 5000); // 6400 capped
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_forwards_an_answer_and_drops_everything_after),
        cmocka_unit_test(test_call_without_retry_keeps_a_lone_attempts_failure_retryable),
        cmocka_unit_test(test_call_falls_back_to_each_node_once_without_backoff),
        cmocka_unit_test(test_call_retries_with_backoff_then_exhausts),
        cmocka_unit_test(test_call_retry_one_is_one_attempt_and_final),
        cmocka_unit_test(test_call_deadline_bounds_every_attempt_and_backoff),
        cmocka_unit_test(test_call_backoff_doubles_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
