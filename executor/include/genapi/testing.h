// SPDX-License-Identifier: MIT
// Helpers for testing a service's functions in-process (docs/testing.md): register the worker's
// function table in an executor, call it with a request, and get every response the client
// would get, in order (an async call's ack and outcome, a stream's ack and chunks, collected
// from whichever thread the handler streams). Works with cmocka: the EX_ASSERT_* macros below
// use cmocka's assertions when <cmocka.h> is included first.
#ifndef GENAPI_TESTING_H
#define GENAPI_TESTING_H

#include "genapi/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

// The responses to one call, in order of delivery.
typedef struct ex_calls_t ex_calls_t;

// Executes `req` on `ex` and collects its responses; NULL when `req->args` is not valid JSON.
ex_calls_t *ex_test_call(ex_executor_t *ex, const ex_request_t *req);
// Waits up to `timeout_ms` until the call has ended (a sync answer or refusal, an async call's
// outcome, a stream's last, end or error): true when it has.
bool ex_test_wait(ex_calls_t *calls, int timeout_ms);
// Responses received so far, and the i-th one (borrowed from `calls`; NULL past the end).
size_t ex_test_count(ex_calls_t *calls);
const ex_response_t *ex_test_response(ex_calls_t *calls, size_t i);
// The final response (the one that ended the call), or NULL while it has not ended.
const ex_response_t *ex_test_final(ex_calls_t *calls);
void ex_test_free(ex_calls_t **calls_p);

// The one-shot form: executes `req`, waits for its end (up to 5 s) and returns a copy of the
// final response (free it with ex_response_free); NULL when none came.
ex_response_t *ex_test_execute(ex_executor_t *ex, const ex_request_t *req);

#ifdef assert_true // cmocka
// The response succeeded / failed with an error containing `needle`.
#define EX_ASSERT_SUCCESS(resp)                                                                    \
    do {                                                                                           \
        assert_non_null(resp);                                                                     \
        assert_true((resp)->success);                                                              \
    } while (0)
#define EX_ASSERT_ERROR(resp, needle)                                                              \
    do {                                                                                           \
        assert_non_null(resp);                                                                     \
        assert_false((resp)->success);                                                             \
        assert_non_null((resp)->error);                                                            \
        assert_non_null(strstr((resp)->error, (needle)));                                          \
    } while (0)
#endif

#ifdef __cplusplus
}
#endif

#endif
