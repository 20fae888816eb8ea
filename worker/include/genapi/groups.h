// SPDX-License-Identifier: MIT
// Relay groups from a worker (docs/protocol.md, "Relay groups from workers"): a service acts
// for one of its users on the broker's group registry with the operations a client has through
// chat_service (create, join, leave, accept, mute, unmute, info, delete, send), checked against
// the same permission matrix and answered with the same errors. The broker admits them only
// from trusted workers (docs/security.md, "Relay groups from workers").
//
// A member a worker adds (create, join) lives on no connection: it is "offline", receives
// nothing, and may send and act through workers. When its user joins the group through a
// WebSocket connection (join_group, or the channel chat:GROUP) the membership moves there,
// keeping its state, and is delivered to from then on.
//
// Every call waits for the broker's answer, at most `timeout_ms`: call it from a handler on a
// pool thread, or from any thread of the service, after wk_worker_start; never from a
// non_blocking handler (the I/O thread, which carries the answer: refused at once with
// code GA_EINVAL).
//
//     static void invite(wk_request_t *req, void *ctx) {
//         wk_group_result_t r = wk_group_join(req, wk_arg_str(req, "user_id"), "support");
//         if (!r.ok) { wk_reply_error(req, "%s", r.error); return; }
//         wk_reply(req, r.result);
//     }
#ifndef GENAPI_GROUPS_H
#define GENAPI_GROUPS_H

#include "genapi/worker.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WK_GROUP_TIMEOUT_MS 5000 // default wait for the broker's answer (the built-ins' timeout)
#define WK_GROUP_INFLIGHT_MAX 1024 // operations waiting for the broker, per worker

// One group operation.
typedef struct {
    // "create", "join", "leave", "accept", "mute", "unmute", "info", "delete" or "send".
    const char *op;
    const char *user_id;    // the user the worker acts for (required, at most 1024 bytes)
    const char *group_id;   // the group (required, at most 128 bytes)
    const char *group_type; // create: "public" (NULL), "private" or "strict_private"
    const char *target;     // accept, mute, unmute: the member acted on
    const char *message;    // send: at most 2000 bytes
    // send: the request id the members' pushes carry (NULL: the handler's request id when
    // called inside one, else "worker").
    const char *request_id;
    int timeout_ms;         // 0: WK_GROUP_TIMEOUT_MS
} wk_group_op_t;

// Its outcome. On success `result` is what a client calling the matching chat_service
// function gets (docs/protocol.md, "Relay groups"): {group_id, group_type, state} for create,
// {status: "relayed", recipients_count} for send, and so on. On failure `error` is the precise
// reason: the matrix's ("not admin", "group not found", "membership pending", ...), the
// broker's refusal of this worker ("Permission denied: ..."), or the library's: "Service
// unavailable" (GA_EUNAVAIL, can_retry: not registered with a broker, or stopping), "Service
// temporarily unavailable" (GA_EAGAIN, can_retry: WK_GROUP_INFLIGHT_MAX operations already
// waiting), "Request timed out" (GA_ETIMEDOUT: the operation may still have happened), or an
// invalid call (GA_EINVAL). `error` and `result` live in the context passed to the call.
typedef struct {
    bool ok;                  // the operation was done
    int code;                 // 0, or the error code (docs/protocol.md, "Error codes")
    bool can_retry;           // trying again later may succeed
    const char *error;        // NULL when ok
    const wk_value_t *result; // the result when ok (a map), else NULL
} wk_group_result_t;

// Runs `op` for op->user_id and waits for the answer. `ctx` is a handler's request (or a
// stream's context, or one made by wk_context_new): it names the worker and holds the answer.
WK_EXPORT wk_group_result_t wk_group_call(wk_request_t *ctx, const wk_group_op_t *op);

// Shortcuts for wk_group_call with the default timeout.
WK_EXPORT wk_group_result_t wk_group_create(wk_request_t *ctx, const char *user_id,
                                            const char *group_id, const char *group_type);
WK_EXPORT wk_group_result_t wk_group_join(wk_request_t *ctx, const char *user_id,
                                          const char *group_id);
WK_EXPORT wk_group_result_t wk_group_leave(wk_request_t *ctx, const char *user_id,
                                           const char *group_id);
WK_EXPORT wk_group_result_t wk_group_accept(wk_request_t *ctx, const char *user_id,
                                            const char *group_id, const char *target);
WK_EXPORT wk_group_result_t wk_group_mute(wk_request_t *ctx, const char *user_id,
                                          const char *group_id, const char *target);
WK_EXPORT wk_group_result_t wk_group_unmute(wk_request_t *ctx, const char *user_id,
                                            const char *group_id, const char *target);
WK_EXPORT wk_group_result_t wk_group_info(wk_request_t *ctx, const char *user_id,
                                          const char *group_id);
WK_EXPORT wk_group_result_t wk_group_delete(wk_request_t *ctx, const char *user_id,
                                            const char *group_id);
WK_EXPORT wk_group_result_t wk_group_send(wk_request_t *ctx, const char *user_id,
                                          const char *group_id, const char *message);

// A context for values and group calls outside a handler (a service's own thread): values
// built in it, and group answers, live until wk_context_reset or wk_context_destroy (a thread
// that calls in a loop resets it between calls). One thread at a time.
WK_EXPORT wk_request_t *wk_context_new(wk_worker_t *worker);
WK_EXPORT void wk_context_reset(wk_request_t *ctx);
WK_EXPORT void wk_context_destroy(wk_request_t **ctx_p);

#ifdef __cplusplus
}
#endif

#endif
