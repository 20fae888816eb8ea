// SPDX-License-Identifier: MIT
// Requests from a worker to its broker that wait for an answer: relay group operations
// (genapi/groups.h; GROUP, answered with GROUP_REPLY) and the config verify (wk_verify in
// genapi/worker.h; ADMIN, answered with ADMIN_REPLY). The calling thread encodes the body,
// puts it in the worker's list of waiting operations and wakes the I/O thread through an
// eventfd; the I/O thread (which alone owns the DEALER) sends it and, when the broker's reply
// arrives, hands the reply's bytes back and wakes the caller, which decodes them into its own
// context. Both kinds share one numbering and one bound: at most WK_GROUP_INFLIGHT_MAX
// operations wait at a time.
#include "wk_internal.h"

#include "genapi/groups.h"

#include "ga_clock.h"
#include "ga_log.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct wk_gcall_t {
    int64_t id;              // the request's id (this worker's numbering)
    ga_cmd_t cmd;            // GA_CMD_GROUP or GA_CMD_ADMIN
    ga_buf_t body;           // the encoded body
    bool sent;               // taken by the I/O thread
    bool done;               // answered (reply, or `code`/`error` below)
    ga_buf_t reply;          // the GROUP_REPLY body
    int code;                // a failure decided here (no reply): its code
    const char *error;       // ... and its message (static)
    struct wk_gcall_t *next; // the list of waiting operations
} wk_gcall_t;

struct wk_groups_t {
    pthread_mutex_t lock; // guards everything below
    pthread_cond_t cond;  // broadcast when an operation is done (CLOCK_MONOTONIC)
    int efd;              // eventfd: wakes the I/O thread
    wk_gcall_t *calls;    // operations not yet taken back by their callers
    size_t n_calls;       // entries in calls
    int64_t next_id;      // last id given
    bool closed;          // the I/O thread is stopping: nothing more is sent
};

wk_groups_t *
wk_groups_new(void)
{
    wk_groups_t *self = ga_calloc(1, sizeof *self);
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cond, &attr);
    pthread_condattr_destroy(&attr);
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ga_assert(self->efd >= 0);
    return self;
}

static void
s_call_free(wk_gcall_t *c)
{
    ga_buf_fini(&c->body);
    ga_buf_fini(&c->reply);
    ga_free(c);
}

void
wk_groups_destroy(wk_groups_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    wk_groups_t *self = *self_p;
    while (self->calls) {
        wk_gcall_t *c = self->calls;
        self->calls = c->next;
        s_call_free(c);
    }
    close(self->efd);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->lock);
    ga_free(self);
    *self_p = NULL;
}

int
wk_groups_fd(const wk_groups_t *self)
{
    return self->efd;
}

// Marks `c` done with a failure decided here. Under the lock.
static void
s_fail(wk_gcall_t *c, int code, const char *error)
{
    c->done = true;
    c->code = code;
    c->error = error;
}

void
wk_groups_on_wake(wk_worker_t *w, void *dealer, bool registered)
{
    wk_groups_t *self = w->groups;
    uint64_t n;
    GA_IGNORE(read(self->efd, &n, sizeof n) < 0); // EAGAIN: woken already
    bool any_done = false;
    pthread_mutex_lock(&self->lock);
    for (wk_gcall_t *c = self->calls; c; c = c->next) {
        if (c->sent || c->done) {
            continue;
        }
        c->sent = true;
        if (!registered) {
            s_fail(c, GA_EUNAVAIL, "Service unavailable");
            any_done = true;
        } else if (ga_proto_send(dealer, NULL, 0, (int) c->cmd, &c->body) != GA_OK) {
            s_fail(c, GA_EUNAVAIL, "Service unavailable"); // the broker is unreachable
            any_done = true;
        }
    }
    if (any_done) {
        pthread_cond_broadcast(&self->cond);
    }
    pthread_mutex_unlock(&self->lock);
}

void
wk_groups_on_reply(wk_worker_t *w, const ga_proto_msg_t *msg)
{
    wk_groups_t *self = w->groups;
    int64_t id = ga_map_get_int(&msg->value, "id", 0);
    pthread_mutex_lock(&self->lock);
    wk_gcall_t *c = self->calls;
    while (c && c->id != id) {
        c = c->next;
    }
    if (c && !c->done) {
        ga_buf_reset(&c->reply);
        ga_buf_append(&c->reply, msg->body.data, msg->body.len);
        c->done = true;
        pthread_cond_broadcast(&self->cond);
    } else {
        GA_DEBUG("%s %lld: nobody waits for it (timed out)", ga_cmd_name(msg->cmd),
                 (long long) id);
    }
    pthread_mutex_unlock(&self->lock);
}

void
wk_groups_close(wk_worker_t *w)
{
    wk_groups_t *self = w->groups;
    pthread_mutex_lock(&self->lock);
    self->closed = true;
    for (wk_gcall_t *c = self->calls; c; c = c->next) {
        if (!c->done) {
            s_fail(c, GA_EUNAVAIL, "Service unavailable");
        }
    }
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->lock);
}

// ---------------------------------------------------------------------------------------------
// The calling side

static wk_group_result_t
s_failed(int code, const char *error, bool can_retry)
{
    return (wk_group_result_t){.ok = false, .code = code, .can_retry = can_retry, .error = error};
}

static bool
s_op_known(const char *op)
{
    static const char *const ops[] = {"create", "join",   "leave",  "accept", "mute",
                                      "unmute", "info",   "delete", "send"};
    for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(op, ops[i]) == 0) {
            return true;
        }
    }
    return false;
}

// Unlinks `c` from the list. Under the lock.
static void
s_unlink(wk_groups_t *self, wk_gcall_t *c)
{
    for (wk_gcall_t **p = &self->calls; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            self->n_calls--;
            return;
        }
    }
}

// The answer in `reply` (a GROUP_REPLY or ADMIN_REPLY body), decoded into the context's arena.
static wk_group_result_t
s_decode(wk_request_t *ctx, const ga_buf_t *reply)
{
    ga_value_t *body = ga_arena_alloc(ctx->arena, sizeof *body);
    if (ga_wire_decode(reply->data, reply->len, ctx->arena, body) != GA_OK ||
        body->type != GA_MAP) {
        return s_failed(GA_EINTERNAL, "Internal Server Error", false); // checked on receipt
    }
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok && ok->type == GA_BOOL && ok->u.b) {
        const ga_value_t *result = ga_map_get(body, "result");
        return (wk_group_result_t){.ok = true, .result = result};
    }
    const char *error = ga_map_get_str(body, "error");
    const ga_value_t *retry = ga_map_get(body, "can_retry");
    return s_failed((int) ga_map_get_int(body, "code", GA_EINVAL),
                    error ? error : "Internal Server Error",
                    retry && retry->type == GA_BOOL && retry->u.b);
}

// Sends `m` (built in the context's arena; its "id" is added here) as `cmd` through the I/O
// thread and waits at most `timeout_ms` (0: WK_GROUP_TIMEOUT_MS) for the broker's answer,
// decoded into the context: {ok: true, result} as .ok and .result, anything else as a failure.
// `what` names the request in the log line of a timeout. Checked by the caller: a context with
// a worker, and not on the I/O thread (s_on_io_thread).
// True on the worker's I/O thread (a non_blocking handler), which must not wait for the
// broker: it is the thread that carries the answer.
static bool
s_on_io_thread(wk_worker_t *w)
{
    return atomic_load(&w->io_known) && pthread_equal(pthread_self(), w->io_thread);
}

static wk_group_result_t
s_roundtrip(wk_request_t *ctx, ga_cmd_t cmd, ga_value_t *m, int timeout_ms, const char *what)
{
    wk_worker_t *w = ctx->worker;
    if (w->io == NULL || w->groups == NULL) {
        return s_failed(GA_EUNAVAIL, "Service unavailable", true); // not started
    }
    ga_arena_t *a = ctx->arena;
    wk_groups_t *self = w->groups;
    wk_gcall_t *c = ga_calloc(1, sizeof *c);
    c->cmd = cmd;
    ga_buf_init(&c->body);
    ga_buf_init(&c->reply);
    pthread_mutex_lock(&self->lock);
    if (self->closed || self->n_calls >= WK_GROUP_INFLIGHT_MAX) {
        bool closed = self->closed;
        pthread_mutex_unlock(&self->lock);
        s_call_free(c);
        return closed ? s_failed(GA_EUNAVAIL, "Service unavailable", true)
                      : s_failed(GA_EAGAIN, "Service temporarily unavailable", true);
    }
    c->id = ++self->next_id;
    ga_map_put(m, a, "id", ga_int(c->id));
    ga_wire_encode(&c->body, m);
    c->next = self->calls;
    self->calls = c;
    self->n_calls++;
    pthread_mutex_unlock(&self->lock);
    uint64_t one = 1;
    GA_IGNORE(write(self->efd, &one, sizeof one) < 0); // only fails when the counter is full

    if (timeout_ms <= 0) {
        timeout_ms = WK_GROUP_TIMEOUT_MS;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->lock);
    while (!c->done) {
        if (pthread_cond_timedwait(&self->cond, &self->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    s_unlink(self, c);
    pthread_mutex_unlock(&self->lock);
    wk_group_result_t r;
    if (!c->done) {
        GA_WARN("%s: no answer from the broker in %d ms", what, timeout_ms);
        r = s_failed(GA_ETIMEDOUT, "Request timed out", false);
    } else if (c->error) {
        r = s_failed(c->code, c->error, c->code == GA_EUNAVAIL || c->code == GA_EAGAIN);
    } else {
        r = s_decode(ctx, &c->reply);
    }
    s_call_free(c);
    return r;
}

wk_group_result_t
wk_group_call(wk_request_t *ctx, const wk_group_op_t *op)
{
    wk_worker_t *w = ctx ? ctx->worker : NULL;
    if (w == NULL || op == NULL || !s_op_known(op->op) || op->user_id == NULL ||
        op->group_id == NULL) {
        return s_failed(GA_EINVAL,
                        "invalid group operation: a context, op (create, join, leave, accept, "
                        "mute, unmute, info, delete or send), user_id and group_id are required",
                        false);
    }
    if (s_on_io_thread(w)) {
        return s_failed(GA_EINVAL,
                        "group operations wait for the broker: not from a non_blocking handler",
                        false);
    }
    ga_arena_t *a = ctx->arena;
    ga_value_t m = ga_map(a, 8);
    ga_map_put(&m, a, "op", ga_str(op->op));
    ga_map_put(&m, a, "user_id", ga_str(op->user_id));
    ga_map_put(&m, a, "group_id", ga_str(op->group_id));
    if (op->group_type) {
        ga_map_put(&m, a, "group_type", ga_str(op->group_type));
    }
    if (op->target) {
        ga_map_put(&m, a, "target", ga_str(op->target));
    }
    if (op->message) {
        ga_map_put(&m, a, "message", ga_str(op->message));
    }
    const char *rid = op->request_id;
    if (rid == NULL && ctx->body) {
        rid = ga_map_get_str(ctx->body, "request_id");
    }
    ga_map_put(&m, a, "request_id", ga_str(rid ? rid : "worker"));
    char what[200];
    snprintf(what, sizeof what, "group %s of %.64s for %.64s", op->op, op->group_id,
             op->user_id);
    return s_roundtrip(ctx, GA_CMD_GROUP, &m, op->timeout_ms, what);
}

static wk_group_result_t
s_call(wk_request_t *ctx, const char *op, const char *user_id, const char *group_id,
       const char *group_type, const char *target, const char *message)
{
    wk_group_op_t o = {.op = op,
                       .user_id = user_id,
                       .group_id = group_id,
                       .group_type = group_type,
                       .target = target,
                       .message = message};
    return wk_group_call(ctx, &o);
}

wk_group_result_t
wk_group_create(wk_request_t *ctx, const char *user_id, const char *group_id,
                const char *group_type)
{
    return s_call(ctx, "create", user_id, group_id, group_type, NULL, NULL);
}

wk_group_result_t
wk_group_join(wk_request_t *ctx, const char *user_id, const char *group_id)
{
    return s_call(ctx, "join", user_id, group_id, NULL, NULL, NULL);
}

wk_group_result_t
wk_group_leave(wk_request_t *ctx, const char *user_id, const char *group_id)
{
    return s_call(ctx, "leave", user_id, group_id, NULL, NULL, NULL);
}

wk_group_result_t
wk_group_accept(wk_request_t *ctx, const char *user_id, const char *group_id, const char *target)
{
    return s_call(ctx, "accept", user_id, group_id, NULL, target, NULL);
}

wk_group_result_t
wk_group_mute(wk_request_t *ctx, const char *user_id, const char *group_id, const char *target)
{
    return s_call(ctx, "mute", user_id, group_id, NULL, target, NULL);
}

wk_group_result_t
wk_group_unmute(wk_request_t *ctx, const char *user_id, const char *group_id, const char *target)
{
    return s_call(ctx, "unmute", user_id, group_id, NULL, target, NULL);
}

wk_group_result_t
wk_group_info(wk_request_t *ctx, const char *user_id, const char *group_id)
{
    return s_call(ctx, "info", user_id, group_id, NULL, NULL, NULL);
}

wk_group_result_t
wk_group_delete(wk_request_t *ctx, const char *user_id, const char *group_id)
{
    return s_call(ctx, "delete", user_id, group_id, NULL, NULL, NULL);
}

wk_group_result_t
wk_group_send(wk_request_t *ctx, const char *user_id, const char *group_id, const char *message)
{
    return s_call(ctx, "send", user_id, group_id, NULL, NULL, message);
}

// ---------------------------------------------------------------------------------------------
// Config verify (genapi/worker.h): ADMIN {id, op: "verify", service, version} on the worker
// socket, answered with ADMIN_REPLY {id, ok: true, result: {status, stored_version?}}.

static wk_verify_result_t
s_verify_failed(int code, const char *error, bool can_retry)
{
    return (wk_verify_result_t){
        .status = WK_VERIFY_FAILED, .code = code, .can_retry = can_retry, .error = error};
}

wk_verify_result_t
wk_verify(wk_request_t *ctx, const char *service, const char *version, int timeout_ms)
{
    wk_worker_t *w = ctx ? ctx->worker : NULL;
    if (w == NULL || service == NULL || service[0] == '\0' || version == NULL ||
        version[0] == '\0') {
        return s_verify_failed(GA_EINVAL, "invalid verify: a context, service and version are "
                               "required", false);
    }
    if (s_on_io_thread(w)) {
        return s_verify_failed(GA_EINVAL,
                               "verify waits for the broker: not from a non_blocking handler",
                               false);
    }
    ga_arena_t *a = ctx->arena;
    ga_value_t m = ga_map(a, 4);
    ga_map_put(&m, a, "op", ga_str("verify"));
    ga_map_put(&m, a, "service", ga_str(service));
    ga_map_put(&m, a, "version", ga_str(version));
    char what[200];
    snprintf(what, sizeof what, "verify %.64s %.64s", service, version);
    wk_group_result_t r = s_roundtrip(ctx, GA_CMD_ADMIN, &m, timeout_ms, what);
    if (!r.ok) {
        return s_verify_failed(r.code, r.error, r.can_retry);
    }
    const char *status = r.result && r.result->type == GA_MAP
                             ? ga_map_get_str(r.result, "status")
                             : NULL;
    if (status && strcmp(status, "matched") == 0) {
        return (wk_verify_result_t){.status = WK_VERIFY_MATCHED};
    }
    if (status && strcmp(status, "not_found") == 0) {
        return (wk_verify_result_t){.status = WK_VERIFY_NOT_FOUND};
    }
    if (status && strcmp(status, "mismatch") == 0) {
        return (wk_verify_result_t){.status = WK_VERIFY_MISMATCH,
                                    .stored_version = ga_map_get_str(r.result, "stored_version")};
    }
    return s_verify_failed(GA_EINTERNAL, "Internal Server Error", false); // a broker's bug
}

wk_request_t *
wk_context_new(wk_worker_t *worker)
{
    wk_request_t *ctx = ga_calloc(1, sizeof *ctx);
    ctx->arena = ga_arena_new(4096);
    ctx->worker = worker;
    ctx->node = worker ? worker->node : NULL;
    return ctx;
}

void
wk_context_reset(wk_request_t *ctx)
{
    if (ctx) {
        ga_arena_reset(ctx->arena);
    }
}

void
wk_context_destroy(wk_request_t **ctx_p)
{
    if (ctx_p == NULL || *ctx_p == NULL) {
        return;
    }
    ga_arena_destroy(&(*ctx_p)->arena);
    ga_free(*ctx_p);
    *ctx_p = NULL;
}
