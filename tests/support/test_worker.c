// SPDX-License-Identifier: MIT
// genapi-test-worker: a service for the integration tests. test_service offers sleep (a slow
// handler that announces itself on stdout, so a test can kill the worker mid-request), echo,
// fail (a handler error) and silent (a handler that forgets to answer), and more below.
// `--drop NAME[,NAME...]` leaves those functions out of the table it
// registers, as a new version of a service that no longer has them would.
// `--executor [RATE_LIMITS_JSON]` serves nothing: it runs the same table in-process with the
// executor (executor/include/genapi/executor.h), one request per stdin line ({request_id,
// service, request_type, version?, args?, user_id?, roles?, device_id?, ip?}), printing each
// response as "RESPONSE <json>" (tests/e2e/executor_parity.test.js compares them with the
// gateway's).
// `offer` offers a function the table leaves out (`late`) at run time, for config pulls.
// `group_op` runs one relay group operation for a user through the worker library
// (genapi/groups.h) and answers its outcome; `group_op_nb` is the same, non_blocking;
// `group_op_thread` runs it on a thread of its own with its own context.
// `verify` asks the broker whether a service's config_version is the one given (wk_verify) and
// answers {status, stored_version?} or {status: "failed", error, code}.
// `--telemetry PREFIX` attaches a handler (genapi/telemetry.h, as a service would) printing
// "EVENT <name> <service>.<request_type> success=<s> reason=<r> count=<n>" per event.
// The where_* functions answer {node} (the name given with `--set node=NAME`), one per
// choose_node_mode, so that a test can watch routing at work; hold_n1 runs on node n1 only.
#include <genapi/executor.h>
#include <genapi/groups.h>
#include <genapi/telemetry.h>
#include <genapi/worker.h>

#include "ga_arena.h"
#include "ga_json.h"
#include "ga_mem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
s_sleep(wk_request_t *req, void *ctx)
{
    (void) ctx;
    int64_t ms = wk_arg_int(req, "ms", 0);
    printf("HANDLER sleep start %lld\n", (long long) ms);
    fflush(stdout);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
    wk_reply(req, wk_map(req, "slept", wk_int(req, ms), NULL));
}

// One relay group operation for user_id (genapi/groups.h): {ok: true, result} or {ok: false,
// error, code, can_retry}, the outcome as the library gives it.
static void
s_group_op(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_group_op_t op = {.op = wk_arg_str(req, "op"),
                        .user_id = wk_arg_str(req, "user_id"),
                        .group_id = wk_arg_str(req, "group_id"),
                        .group_type = wk_arg_str(req, "group_type"),
                        .target = wk_arg_str(req, "target"),
                        .message = wk_arg_str(req, "message"),
                        .timeout_ms = (int) wk_arg_int(req, "timeout_ms", 0)};
    wk_group_result_t r = wk_group_call(req, &op);
    if (r.ok) {
        wk_reply(req, wk_map(req, "ok", wk_bool(req, true), "result", r.result, NULL));
        return;
    }
    wk_reply(req, wk_map(req, "ok", wk_bool(req, false), "error", wk_str(req, r.error), "code",
                         wk_int(req, r.code), "can_retry", wk_bool(req, r.can_retry), NULL));
}

// verify: the broker's answer to wk_verify(service, version), as the library gives it.
static void
s_verify(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_verify_result_t r = wk_verify(req, wk_arg_str(req, "service"), wk_arg_str(req, "version"),
                                     (int) wk_arg_int(req, "timeout_ms", 0));
    static const char *const names[] = {"matched", "mismatch", "not_found", "failed"};
    wk_value_t *out = wk_map(req, "status", wk_str(req, names[r.status]), NULL);
    if (r.status == WK_VERIFY_MISMATCH) {
        wk_map_set(req, out, "stored_version",
                   r.stored_version ? wk_str(req, r.stored_version) : wk_nil(req));
    } else if (r.status == WK_VERIFY_FAILED) {
        wk_map_set(req, out, "error", wk_str(req, r.error));
        wk_map_set(req, out, "code", wk_int(req, r.code));
        wk_map_set(req, out, "can_retry", wk_bool(req, r.can_retry));
    }
    wk_reply(req, out);
}

// group_op_thread: the same, run by a thread of the service's own with its own context
// (wk_context_new), as a background task would.
typedef struct {
    wk_worker_t *worker;
    wk_group_op_t op;
    wk_group_result_t r;
    wk_request_t *ctx;
} s_group_task_t;

static void *
s_group_task(void *arg)
{
    s_group_task_t *t = arg;
    t->ctx = wk_context_new(t->worker);
    t->r = wk_group_call(t->ctx, &t->op);
    return NULL;
}

static void
s_group_op_thread(wk_request_t *req, void *ctx)
{
    (void) ctx;
    s_group_task_t t = {.worker = wk_request_worker(req),
                        .op = {.op = wk_arg_str(req, "op"),
                               .user_id = wk_arg_str(req, "user_id"),
                               .group_id = wk_arg_str(req, "group_id"),
                               .group_type = wk_arg_str(req, "group_type"),
                               .target = wk_arg_str(req, "target"),
                               .message = wk_arg_str(req, "message"),
                               .request_id = "from-a-thread"}};
    pthread_t th;
    if (pthread_create(&th, NULL, s_group_task, &t) != 0) {
        wk_reply_error(req, "no thread");
        return;
    }
    pthread_join(th, NULL);
    // The answer lives in the thread's context, until it is reset: wk_reply encodes at once.
    if (t.r.ok) {
        wk_reply(req, wk_map(req, "ok", wk_bool(req, true), "result", t.r.result, NULL));
    } else {
        wk_reply(req, wk_map(req, "ok", wk_bool(req, false), "error", wk_str(req, t.r.error),
                             "code", wk_int(req, t.r.code), NULL));
    }
    wk_context_reset(t.ctx);
    wk_context_destroy(&t.ctx);
}

static void
s_echo(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *copy = wk_map(req, NULL);
    wk_map_set(req, copy, "value", wk_arg(req, "value"));
    wk_reply(req, copy);
}

static void
s_fail(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply_error(req, "boom");
}

static void
s_whoami(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *roles = wk_list(req, NULL);
    static const char *const known[] = {"admin", "editor", "viewer", "operator"};
    for (size_t i = 0; i < 4; i++) {
        if (wk_request_has_role(req, known[i])) {
            wk_list_push(req, roles, wk_str(req, known[i]));
        }
    }
    const char *device = wk_request_device_id(req);
    wk_reply(req, wk_map(req, "user_id", wk_str(req, wk_request_user_id(req)), "roles", roles,
                         "device_id", device ? wk_str(req, device) : wk_nil(req), NULL));
}

static wk_value_t *
s_str_or_nil(wk_request_t *req, const char *s)
{
    return s ? wk_str(req, s) : wk_nil(req);
}

// Everything of the caller the library shows this handler (nulls when it shows nothing).
static void
s_identity(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "user_id", s_str_or_nil(req, wk_request_user_id(req)), "admin",
                         wk_bool(req, wk_request_has_role(req, "admin")), "device_id",
                         s_str_or_nil(req, wk_request_device_id(req)), "ip",
                         s_str_or_nil(req, wk_request_ip(req)), "request_id",
                         s_str_or_nil(req, wk_request_id(req)), NULL));
}

static void
s_silent(wk_request_t *req, void *ctx)
{
    (void) req;
    (void) ctx;
}

// An identity service for auth=service: params.token "user:ID:role1,role2" is accepted,
// anything else refused.
static void
s_authenticate(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *token = wk_value_str(wk_value_get(wk_arg(req, "params"), "token"));
    if (token == NULL || strncmp(token, "user:", 5) != 0 || token[5] == '\0') {
        wk_reply_error(req, "unknown token");
        return;
    }
    char id[128];
    const char *rest = token + 5;
    size_t n = strcspn(rest, ":");
    snprintf(id, sizeof id, "%.*s", (int) n, rest);
    wk_value_t *roles = wk_list(req, NULL);
    const char *r = rest[n] == ':' ? rest + n + 1 : "";
    while (*r) {
        size_t k = strcspn(r, ",");
        char role[64];
        snprintf(role, sizeof role, "%.*s", (int) k, r);
        wk_list_push(req, roles, wk_str(req, role));
        r += k + (r[k] == ',');
    }
    wk_reply(req, wk_map(req, "user_id", wk_str(req, id), "roles", roles, NULL));
}

static void
s_nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
}

// A stream of n chunks {i}, then the end.
static void
s_count(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    wk_request_t *out = wk_stream_ctx(stream);
    int64_t n = wk_arg_int(req, "n", 0);
    int64_t interval = wk_arg_int(req, "interval_ms", 0);
    for (int64_t i = 1; i <= n; i++) {
        if (wk_stream_send(stream, wk_map(out, "i", wk_int(out, i), NULL)) != GA_OK) {
            break;
        }
        if (interval > 0) {
            s_nap_ms(interval);
        }
    }
    wk_stream_complete(stream);
}

// Streams until cancelled, then says so on stdout (the tests watch for it).
static void
s_watch(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    wk_request_t *out = wk_stream_ctx(stream);
    char request_id[128];
    snprintf(request_id, sizeof request_id, "%s", wk_request_id(req));
    printf("HANDLER watch start %s\n", request_id);
    fflush(stdout);
    for (int64_t i = 1; !wk_stream_is_cancelled(stream); i++) {
        if (wk_stream_send(stream, wk_map(out, "tick", wk_int(out, i), NULL)) != GA_OK) {
            break;
        }
        s_nap_ms(50);
    }
    printf("STREAM cancelled %s\n", request_id);
    fflush(stdout);
    wk_stream_complete(stream);
}

// Three chunks, then the process dies mid-stream.
static void
s_crash_stream(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    for (int i = 1; i <= 3; i++) {
        GA_IGNORE(wk_stream_send(stream, wk_int(wk_stream_ctx(stream), i)) != GA_OK); // dying
    }
    s_nap_ms(100);
    abort();
}

static void
s_fire(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *value = wk_value_str(wk_arg(req, "value"));
    printf("FIRED %s\n", value ? value : "?");
    fflush(stdout);
    wk_reply(req, wk_str(req, "nobody hears this"));
}

// A permission callback: allows (an ok answer) a call whose `value` argument is "open", denies
// (an error, whose reason the client sees) any other. Slow on purpose (200 ms), so that
// anything sent before its answer would be seen first by a client.
static void
s_guard(wk_request_t *req, void *ctx)
{
    (void) ctx;
    usleep(200 * 1000);
    const char *value = wk_value_str(wk_value_get(wk_arg(req, "args"), "value"));
    if (value && strcmp(value, "open") == 0) {
        wk_reply(req, NULL);
    } else {
        wk_reply_error(req, "value is not open");
    }
}

// The node name this process registered under (from `--set node=NAME`; "" when not set).
static char s_node[256];

// {node}, after `ms` (default 0) milliseconds.
static void
s_where(wk_request_t *req, void *ctx)
{
    (void) ctx;
    s_nap_ms((long) wk_arg_int(req, "ms", 0));
    wk_reply(req, wk_map(req, "node", wk_str(req, s_node), NULL));
}

static const char *const s_only_n1[] = {"n1", NULL};

// A nodes resolver: n2 only.
static void
s_resolve_n2(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_list(req, wk_str(req, "n2"), NULL));
}

// A resolver whose answer is not a list of node names.
static void
s_resolve_badly(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "nodes", wk_str(req, "n2"), NULL));
}

// A resolver that answers after its timeout (200 ms): too late.
static void
s_resolve_slowly(wk_request_t *req, void *ctx)
{
    (void) ctx;
    s_nap_ms(1000);
    wk_reply(req, wk_list(req, wk_str(req, "n2"), NULL));
}

// Offers or withdraws the function `name` at run time (wk_worker_set_offered): the broker
// learns of it by pulling the table, never by a push.
static void
s_offer(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *name = wk_arg_str(req, "name");
    bool offered = wk_arg_bool(req, "offered", true);
    if (wk_worker_set_offered(wk_request_worker(req), name, NULL, offered) != GA_OK) {
        wk_reply_error(req, "no such function");
        return;
    }
    wk_reply(req, wk_map(req, "name", wk_str(req, name), "offered", wk_bool(req, offered), NULL));
}

// Counts its executions for the retry tests: prints "EXEC <request id> <wall-clock ms>" when
// it starts, sleeps `ms`, then answers as `mode` says: ok (a result), retryable
// (wk_reply_error_retryable), or error (an ordinary error answer).
static void
s_tally(wk_request_t *req, void *ctx)
{
    (void) ctx;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("EXEC %s %lld\n", wk_request_id(req),
           (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000);
    fflush(stdout);
    int64_t ms = wk_arg_int(req, "ms", 0);
    if (ms > 0) {
        s_nap_ms((long) ms);
    }
    const char *mode = wk_arg_str(req, "mode");
    if (mode && strcmp(mode, "retryable") == 0) {
        wk_reply_error_retryable(req, "flaky");
    } else if (mode && strcmp(mode, "error") == 0) {
        wk_reply_error(req, "plain error");
    } else {
        wk_reply(req, wk_map(req, "request_id", wk_str(req, wk_request_id(req)), NULL));
    }
}

#define TALLY_ARGS "mode:string(default=ok), ms:num(default=0)"

// Hooks (docs/protocol.md, "Hooks"). hooked, hooked_async and hooked_stream run hook_before
// (extra args {"x": 7}) and, but for the stream, hook_after; both act on the call's `mode`:
// hook_before: pass (go on), modify (replace the args: tag says what the hook saw), invalid
// (args the declaration refuses), refuse (an error the client sees), slow (past the 500 ms
// hook_timeout), crash (answers nothing: an internal error), exit (the process dies).
// hook_after: after_fail (an error: the result stands), after_slow (past the timeout),
// anything else wraps the result as {wrapped, hook}.
static void
s_hook_before(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *request = wk_arg(req, "request");
    const wk_value_t *args = wk_value_get(request, "args");
    const char *mode = wk_value_str(wk_value_get(args, "mode"));
    mode = mode ? mode : "pass";
    printf("HOOK before %s %s\n", wk_value_str(wk_value_get(request, "request_id")), mode);
    fflush(stdout);
    if (strcmp(mode, "modify") == 0) {
        const char *user = wk_value_str(wk_value_get(request, "user_id"));
        const char *ip = wk_value_str(wk_value_get(request, "ip"));
        char tag[300];
        snprintf(tag, sizeof tag, "%s.%s x=%lld user=%s ip=%s config=%s hook=%s",
                 wk_value_str(wk_value_get(request, "service")),
                 wk_value_str(wk_value_get(request, "request_type")),
                 (long long) wk_value_int(wk_value_get(wk_arg(req, "extra"), "x"), -1),
                 user ? user : "none", ip ? "set" : "none",
                 wk_value_str(wk_value_get(wk_arg(req, "config"), "request_type")),
                 wk_arg_str(req, "hook"));
        wk_reply(req, wk_map(req, "args",
                             wk_map(req, "value", wk_value_get(args, "value"), "mode",
                                    wk_str(req, "modify"), "tag", wk_str(req, tag), NULL),
                             NULL));
    } else if (strcmp(mode, "invalid") == 0) {
        wk_reply(req, wk_map(req, "args", wk_map(req, "bogus", wk_int(req, 1), NULL), NULL));
    } else if (strcmp(mode, "refuse") == 0) {
        wk_reply_error(req, "refused by the before hook");
    } else if (strcmp(mode, "slow") == 0) {
        s_nap_ms(1500);
        wk_reply(req, NULL);
    } else if (strcmp(mode, "crash") == 0) {
        return; // no answer: the library answers an internal error
    } else if (strcmp(mode, "exit") == 0) {
        _exit(3);
    } else {
        wk_reply(req, NULL);
    }
}

static void
s_hook_after(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *request = wk_arg(req, "request");
    const char *mode = wk_value_str(wk_value_get(wk_value_get(request, "args"), "mode"));
    mode = mode ? mode : "pass";
    if (strcmp(mode, "after_fail") == 0) {
        wk_reply_error(req, "the after hook failed");
    } else if (strcmp(mode, "after_slow") == 0) {
        s_nap_ms(1500);
        wk_reply(req, NULL);
    } else {
        wk_reply(req, wk_map(req, "wrapped", wk_arg(req, "result"), "hook",
                             wk_str(req, wk_arg_str(req, "hook")), NULL));
    }
}

// The target of the hooks: answers {value, mode, tag} as it got them.
static void
s_hooked(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *tag = wk_arg(req, "tag");
    wk_reply(req, wk_map(req, "value", wk_arg(req, "value"), "mode",
                         wk_str(req, wk_arg_str(req, "mode")), "tag", tag ? tag : wk_nil(req),
                         NULL));
}

static void
s_hooked_stream(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    GA_IGNORE(wk_stream_send_last(stream, wk_str(wk_stream_ctx(stream), "only")) != GA_OK);
}

#define HOOKED_ARGS "value:any(allow_nil=true), mode:string(default=pass), tag:string(allow_nil=true)"

static const wk_function_t s_functions[] = {
    {.request_type = "sleep", .args = "ms:num", .timeout_ms = 30000, .handler = s_sleep},
    // Retry and fallback (tests/integration/retry_fallback.test.js).
    {.request_type = "tally", .args = TALLY_ARGS, .timeout_ms = 10000, .handler = s_tally},
    {.request_type = "tally_1s", .args = TALLY_ARGS, .timeout_ms = 1000, .handler = s_tally},
    {.request_type = "tally_retry3", .args = TALLY_ARGS, .timeout_ms = 10000, .retry = "3",
     .handler = s_tally},
    {.request_type = "tally_all3", .args = TALLY_ARGS, .timeout_ms = 10000,
     .retry = "all_nodes:3", .handler = s_tally},
    {.request_type = "tally_same2", .args = TALLY_ARGS, .timeout_ms = 10000,
     .retry = "same_node:2", .handler = s_tally},
    {.request_type = "tally_short", .args = TALLY_ARGS, .timeout_ms = 1000, .retry = "10",
     .handler = s_tally},
    {.request_type = "echo", .args = "value:any", .handler = s_echo},
#define GROUP_OP_ARGS                                                                              \
    "op:string, user_id:string, group_id:string, group_type:string(allow_nil=true), "            \
    "target:string(allow_nil=true), message:string(allow_nil=true), "                            \
    "timeout_ms:num(allow_nil=true)"
#define VERIFY_ARGS "service:string, version:string, timeout_ms:num(allow_nil=true)"
    {.request_type = "group_op", .args = GROUP_OP_ARGS, .args_as_map = true,
     .handler = s_group_op},
    {.request_type = "group_op_nb", .args = GROUP_OP_ARGS, .args_as_map = true,
     .non_blocking = true, .handler = s_group_op},
    {.request_type = "group_op_thread", .args = GROUP_OP_ARGS, .args_as_map = true,
     .handler = s_group_op_thread},
    {.request_type = "verify", .args = VERIFY_ARGS, .handler = s_verify},
    {.request_type = "verify_nb", .args = VERIFY_ARGS, .non_blocking = true, .handler = s_verify},
    {.request_type = "fail", .handler = s_fail},
    {.request_type = "silent", .handler = s_silent},
    {.request_type = "authenticate", .args = WK_AUTH_SERVICE_ARGS, .internal = true,
     .handler = s_authenticate},
    {.request_type = "count", .response_type = "stream", .timeout_ms = 60000,
     .args = "n:num, interval_ms:num(default=0)", .handler = s_count},
    {.request_type = "watch", .response_type = "stream", .timeout_ms = -1, .handler = s_watch},
    {.request_type = "paced", .response_type = "stream", .timeout_ms = 1500,
     .args = "n:num, interval_ms:num", .handler = s_count},
    {.request_type = "crash_stream", .response_type = "stream", .handler = s_crash_stream},
    {.request_type = "slow_async", .response_type = "async", .timeout_ms = 30000,
     .args = "ms:num", .handler = s_sleep},
    {.request_type = "fire", .response_type = "none", .args = "value:any", .handler = s_fire},
    {.request_type = "whoami", .check_permission = "any_authenticated", .request_info = true,
     .handler = s_whoami},
    // All the identity a handler can see, with request_info and without.
    {.request_type = "identity", .request_info = true, .handler = s_identity},
    {.request_type = "identity_blind", .handler = s_identity},
    {.request_type = "guard", .args = WK_PERMISSION_CALLBACK_ARGS, .internal = true,
     .handler = s_guard},
    {.request_type = "guarded_async", .response_type = "async", .args = "value:any",
     .permission_callback = "test_service.guard", .handler = s_echo},
    {.request_type = "guarded_stream", .response_type = "stream", .timeout_ms = 60000,
     .args = "value:any, n:num, interval_ms:num(default=0)",
     .permission_callback = "test_service.guard", .handler = s_count},
    {.request_type = "guarded_fire", .response_type = "none", .args = "value:any",
     .permission_callback = "test_service.guard", .handler = s_fire},
    // Callbacks that fail in other ways: an error answer (fail), no answer (silent), absent.
    {.request_type = "failing_guard", .args = WK_PERMISSION_CALLBACK_ARGS, .internal = true,
     .handler = s_fail},
    {.request_type = "silent_guard", .args = WK_PERMISSION_CALLBACK_ARGS, .internal = true,
     .handler = s_silent},
    {.request_type = "guarded_by_fail", .args = "value:any",
     .permission_callback = "test_service.failing_guard", .handler = s_echo},
    {.request_type = "guarded_by_silent", .args = "value:any",
     .permission_callback = "test_service.silent_guard", .handler = s_echo},
    {.request_type = "guarded_by_nothing", .args = "value:any",
     .permission_callback = "test_service.nothing", .handler = s_echo},
    // Node selection, one function per mode.
    {.request_type = "where_random", .handler = s_where},
    {.request_type = "where_rr", .choose_node_mode = "round_robin", .handler = s_where},
    {.request_type = "where_rr2", .choose_node_mode = "round_robin", .handler = s_where},
    {.request_type = "where_hash", .choose_node_mode = "hash", .handler = s_where},
    {.request_type = "where_hash_arg", .choose_node_mode = "hash:key", .args = "key:string",
     .handler = s_where},
    {.request_type = "where_sticky", .choose_node_mode = "sticky:key", .args = "key:string",
     .handler = s_where},
    {.request_type = "where_least", .choose_node_mode = "least_loaded", .handler = s_where},
    {.request_type = "hook_before", .args = WK_HOOK_ARGS, .internal = true,
     .handler = s_hook_before},
    {.request_type = "hook_after", .args = WK_HOOK_ARGS, .internal = true,
     .handler = s_hook_after},
    {.request_type = "hooked", .args = HOOKED_ARGS, .before_execute = "test_service.hook_before",
     .before_execute_args = "{\"x\": 7}", .after_execute = "test_service.hook_after",
     .hook_timeout_ms = 500, .handler = s_hooked},
    {.request_type = "hooked_async", .response_type = "async", .args = HOOKED_ARGS,
     .before_execute = "test_service.hook_before", .before_execute_args = "{\"x\": 7}",
     .after_execute = "test_service.hook_after", .hook_timeout_ms = 500, .handler = s_hooked},
    {.request_type = "hooked_stream", .response_type = "stream", .args = HOOKED_ARGS,
     .before_execute = "test_service.hook_before", .hook_timeout_ms = 500,
     .handler = s_hooked_stream},
    {.request_type = "hold_n1", .nodes = s_only_n1, .args = "ms:num", .timeout_ms = 30000,
     .handler = s_where},
    // Nodes resolvers (where_resolved runs on n2 only) and resolvers that fail in each way.
    {.request_type = "resolve_n2", .internal = true, .handler = s_resolve_n2},
    {.request_type = "resolve_badly", .internal = true, .handler = s_resolve_badly},
    {.request_type = "resolve_slowly", .timeout_ms = 200, .internal = true,
     .handler = s_resolve_slowly},
    {.request_type = "where_slow_resolver", .nodes_resolver = "test_service.resolve_slowly",
     .handler = s_where},
    {.request_type = "where_resolved", .nodes_resolver = "test_service.resolve_n2",
     .handler = s_where},
    {.request_type = "where_rr_resolved", .choose_node_mode = "round_robin",
     .nodes_resolver = "test_service.resolve_n2", .handler = s_where},
    {.request_type = "where_failing_resolver", .nodes_resolver = "test_service.fail",
     .handler = s_where},
    {.request_type = "where_bad_resolver", .nodes_resolver = "test_service.resolve_badly",
     .handler = s_where},
    {.request_type = "where_missing_resolver", .nodes_resolver = "test_service.nope",
     .handler = s_where},
    // Config pull: `late` is not in the table until `offer` offers it.
    {.request_type = "late", .withdrawn = true, .handler = s_where},
    {.request_type = "offer", .args = "name:string, offered:boolean(default=true)",
     .handler = s_offer},
};

static const wk_service_t s_service = {
    .service = "test_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

// True when `name` is one of the comma-separated names in `list`.
static bool
s_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, name, n) == 0) {
            return true;
        }
        p += k + (p[k] == ',');
    }
    return false;
}

static void
s_print_response(void *arg, const ex_response_t *resp)
{
    (void) arg;
    printf("RESPONSE %s\n", resp->json);
    fflush(stdout);
}

// A string field of a request line, or NULL.
static const char *
s_line_str(const ga_value_t *m, const char *name)
{
    return ga_map_get_str(m, name);
}

// --executor: runs stdin's requests in-process; 0 at end of input, 1 on a bad setup.
static int
s_executor_main(const wk_service_t *service, const char *rate_limits)
{
    char err[512];
    ex_executor_t *ex = ex_executor_new(NULL);
    if (ex_executor_register(ex, service, err, sizeof err) != GA_OK ||
        (rate_limits && ex_executor_rate_limits(ex, rate_limits, err, sizeof err) != GA_OK)) {
        fprintf(stderr, "executor: %s\n", err);
        ex_executor_destroy(&ex);
        return 1;
    }
    printf("READY executor\n");
    fflush(stdout);
    ga_arena_t *a = ga_arena_new(4096);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        ga_value_t m;
        if (ga_json_decode(line, strlen(line), a, &m, err, sizeof err) != GA_OK) {
            printf("BAD %s\n", err);
            fflush(stdout);
            continue;
        }
        const ga_value_t *args = ga_map_get(&m, "args");
        ga_buf_t args_json;
        ga_buf_init(&args_json);
        if (args) {
            ga_json_encode(&args_json, args);
        }
        ga_buf_append_char(&args_json, '\0');
        const ga_value_t *roles = ga_map_get(&m, "roles");
        const char *role_list[16];
        size_t n_roles = 0;
        for (uint32_t i = 0; roles && roles->type == GA_ARRAY && i < roles->len && i < 16; i++) {
            if (roles->u.items[i].type == GA_STR) {
                role_list[n_roles++] = roles->u.items[i].u.s;
            }
        }
        ex_request_t req = {.request_id = s_line_str(&m, "request_id"),
                            .service = s_line_str(&m, "service"),
                            .request_type = s_line_str(&m, "request_type"),
                            .version = s_line_str(&m, "version"),
                            .args = args ? (const char *) args_json.data : NULL,
                            .user_id = s_line_str(&m, "user_id"),
                            .roles = role_list,
                            .n_roles = n_roles,
                            .device_id = s_line_str(&m, "device_id"),
                            .ip = s_line_str(&m, "ip")};
        if (ex_executor_execute(ex, &req, s_print_response, NULL) != GA_OK) {
            printf("BAD args\n");
        }
        printf("DONE\n");
        fflush(stdout);
        ga_buf_fini(&args_json);
        ga_arena_reset(a);
    }
    free(line);
    ga_arena_destroy(&a);
    ex_executor_destroy(&ex);
    return 0;
}

// --telemetry: one stdout line per event of this worker process.
static void
s_print_event(wk_event_t event, const wk_event_data_t *d, void *arg)
{
    (void) arg;
    printf("EVENT %s %s.%s success=%s reason=%s count=%lld duration_us=%lld\n",
           wk_event_name(event), d->service ? d->service : "-",
           d->request_type ? d->request_type : "-",
           d->success == GA_TM_TRUE ? "true" : d->success == GA_TM_FALSE ? "false" : "-",
           d->reason ? d->reason : "-", (long long) d->count, (long long) d->duration_us);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    const char *drop = NULL;
    bool executor = false;
    const char *rate_limits = NULL;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--drop") == 0 && i + 1 < argc) {
            drop = argv[++i];
        } else if (strcmp(argv[i], "--telemetry") == 0 && i + 1 < argc) {
            int id;
            if (wk_telemetry_attach(argv[++i], "test-worker", s_print_event, NULL, &id) != GA_OK) {
                fprintf(stderr, "--telemetry %s: no such event prefix\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--executor") == 0) {
            executor = true;
            rate_limits = i + 1 < argc ? argv[++i] : NULL;
        } else {
            if (strcmp(argv[i], "--set") == 0 && i + 1 < argc &&
                strncmp(argv[i + 1], "node=", 5) == 0) {
                snprintf(s_node, sizeof s_node, "%s", argv[i + 1] + 5);
            }
            argv[kept++] = argv[i]; // the rest goes to wk_main, in order
        }
    }
    argc = kept;
    argv[argc] = NULL;
    enum { N = sizeof s_functions / sizeof s_functions[0] };
    wk_function_t table[N];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (!s_listed(drop, s_functions[i].request_type)) {
            table[n++] = s_functions[i];
        }
    }
    wk_service_t service = s_service;
    service.functions = table;
    service.n_functions = n;
    if (executor) {
        return s_executor_main(&service, rate_limits);
    }
    return wk_main(argc, argv, &service);
}
