// SPDX-License-Identifier: MIT
// The executor (include/genapi/executor.h): gw_pipeline_prepare's checks, then the handler run
// in-process through the worker library's own wk_request_run on a REQUEST body built with the
// gateway's gw_call_body_put, and the responses built by the same gw_pipeline functions the
// gateway's server uses (gw_pipeline_result, gw_response_ack, gw_response_pushed,
// gw_response_stream).
#include "genapi/executor.h"

#include "gw_pipeline.h"
#include "wk_internal.h"

#include "ga_json.h"
#include "ga_wire.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define EX_SERVICES_MAX 32 // services registered in one executor

// An open in-process stream: where its messages go.
typedef struct {
    char *request_id;  // owned
    ex_response_fn *fn;
    void *arg;
} ex_stream_t;

struct ex_executor_t {
    gw_pipeline_config_t cfg;                  // the pipeline's settings
    gw_pipeline_t *pipeline;                   // the gateway's pipeline
    wk_worker_t *workers[EX_SERVICES_MAX];     // one per registered service (never started)
    size_t n_workers;
    ga_arena_t *arena;                         // per execute
    pthread_mutex_t lock;                      // guards streams and next_id
    ga_idmap_t *streams;                       // call id -> ex_stream_t
    int64_t next_id;                           // call ids (positive, as the broker's)
};

static char *
s_buf_str(const ga_buf_t *b)
{
    char *s = ga_malloc(b->len + 1);
    if (b->len) {
        memcpy(s, b->data, b->len);
    }
    s[b->len] = '\0';
    return s;
}

// Delivers the gateway's response `r` as an ex_response_t.
static void
s_deliver(const gw_response_t *r, ex_response_fn *fn, void *arg)
{
    ga_buf_t b;
    ga_buf_init(&b);
    ex_response_t out = {.success = r->success,
                         .async = r->async,
                         .has_more = r->has_more,
                         .can_retry = r->can_retry,
                         .retry_after_ms = r->retry_after_ms};
    snprintf(out.kind, sizeof out.kind, "%s", gw_kind_name(r->kind));
    out.request_id = ga_strdup(r->request_id);
    out.error = r->error ? ga_strdup(r->error) : NULL;
    if (r->result) {
        ga_json_encode(&b, r->result);
    } else {
        ga_buf_append_str(&b, "null");
    }
    out.result = s_buf_str(&b);
    ga_buf_reset(&b);
    gw_response_encode(r, &b);
    out.json = s_buf_str(&b);
    ga_buf_fini(&b);
    fn(arg, &out);
    ga_free(out.request_id);
    ga_free(out.error);
    ga_free(out.result);
    ga_free(out.json);
}

// The worker library's stream sink: a stream message {call, seq, kind, data?, error?}, on the
// streaming thread.
static void
s_stream_sink(void *arg, const ga_value_t *msg)
{
    ex_executor_t *self = arg;
    int64_t id = ga_map_get_int(msg, "call", 0);
    const char *kind = ga_map_get_str(msg, "kind");
    bool last = kind == NULL || strcmp(kind, "chunk") != 0;
    pthread_mutex_lock(&self->lock);
    ex_stream_t *s = last ? ga_idmap_take(self->streams, (uint64_t) id)
                          : ga_idmap_get(self->streams, (uint64_t) id);
    pthread_mutex_unlock(&self->lock);
    if (s == NULL) {
        return;
    }
    gw_response_t r;
    gw_response_stream(msg, s->request_id, &r);
    s_deliver(&r, s->fn, s->arg);
    if (last) {
        ga_free(s->request_id);
        ga_free(s);
    }
}

ex_executor_t *
ex_executor_new(const ex_options_t *options)
{
    ex_executor_t *self = ga_calloc(1, sizeof *self);
    if (options) {
        self->cfg.detail_errors = options->detail_errors;
        self->cfg.require_auth = options->require_auth;
    }
    self->pipeline = gw_pipeline_new(&self->cfg);
    self->arena = ga_arena_new(4096);
    pthread_mutex_init(&self->lock, NULL);
    self->streams = ga_idmap_new();
    return self;
}

static void
s_free_stream(uint64_t id, void *value, void *arg)
{
    (void) id;
    (void) arg;
    ex_stream_t *s = value;
    ga_free(s->request_id);
    ga_free(s);
}

void
ex_executor_destroy(ex_executor_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ex_executor_t *self = *self_p;
    for (size_t i = 0; i < self->n_workers; i++) {
        wk_worker_destroy(&self->workers[i]);
    }
    ga_idmap_each(self->streams, s_free_stream, NULL);
    ga_idmap_destroy(&self->streams);
    pthread_mutex_destroy(&self->lock);
    gw_pipeline_destroy(&self->pipeline);
    ga_arena_destroy(&self->arena);
    ga_free(self);
    *self_p = NULL;
}

ga_err_t
ex_executor_register(ex_executor_t *self, const wk_service_t *service, char *err, size_t errlen)
{
    if (self->n_workers == EX_SERVICES_MAX) {
        snprintf(err, errlen, "at most %d services per executor", EX_SERVICES_MAX);
        return GA_ECONFIG;
    }
    wk_worker_t *w = wk_worker_new(service, NULL);
    ga_err_t rc = wk_table_build(w, err, errlen);
    if (rc != GA_OK) {
        wk_worker_destroy(&w);
        return rc;
    }
    w->local_sink = s_stream_sink;
    w->local_sink_arg = self;
    // The table as the broker would forward it to the gateway: the functions offered (a
    // `withdrawn` one is not, as for a worker).
    ga_arena_t *a = self->arena;
    char version[64];
    ga_value_t offered = wk_table_current(w, a, version, sizeof version);
    ga_value_t body = ga_map(a, 1);
    ga_map_put(&body, a, "functions", offered);
    size_t added = gw_pipeline_apply(self->pipeline, &body, false);
    ga_arena_reset(a);
    if (added != offered.len) {
        snprintf(err, errlen, "service %s: %zu of %u functions refused by the pipeline",
                 service->service, (size_t) offered.len - added, offered.len);
        wk_worker_destroy(&w);
        return GA_ECONFIG;
    }
    self->workers[self->n_workers++] = w;
    return GA_OK;
}

ga_err_t
ex_executor_rate_limits(ex_executor_t *self, const char *json, char *err, size_t errlen)
{
    ga_value_t cfg;
    ga_err_t rc = ga_json_decode(json, strlen(json), self->arena, &cfg, err, errlen);
    if (rc == GA_OK) {
        rc = ga_ratelimit_configure(gw_pipeline_rate_limits(self->pipeline), &cfg, "rate_limits",
                                    err, errlen);
    } else {
        rc = GA_ECONFIG;
    }
    ga_arena_reset(self->arena);
    return rc;
}

static wk_worker_t *
s_worker(const ex_executor_t *self, const char *service)
{
    for (size_t i = 0; i < self->n_workers; i++) {
        if (strcmp(self->workers[i]->svc->service, service) == 0) {
            return self->workers[i];
        }
    }
    return NULL;
}

// Runs `call` on its registered service, as the broker's REQUEST would: `*body` is the REPLY
// body ({ok, result} or {ok: false, error, code, can_retry}); nil for a stream or none function.
static int64_t
s_next_id(ex_executor_t *self)
{
    pthread_mutex_lock(&self->lock);
    int64_t id = ++self->next_id;
    pthread_mutex_unlock(&self->lock);
    return id;
}

static void
s_run(ex_executor_t *self, const gw_call_t *call, int64_t id, ga_value_t *body)
{
    ga_arena_t *a = self->arena;
    *body = ga_nil();
    wk_worker_t *w = s_worker(self, call->service);
    if (w == NULL) { // a permission callback naming a service not registered here
        *body = ga_map(a, 3);
        ga_map_put(body, a, "ok", ga_bool(false));
        ga_map_put(body, a, "error", ga_str("Service unavailable"));
        ga_map_put(body, a, "code", ga_int(GA_EUNAVAIL));
        return;
    }
    ga_value_t m = ga_map(a, 12);
    ga_map_put(&m, a, "id", ga_int(id));
    if (call->response_type == GA_RESP_STREAM) {
        ga_map_put(&m, a, "stream_topic", ga_str("local"));
    }
    gw_call_body_put(call, a, &m);
    ga_buf_t req, reply;
    ga_buf_init(&req);
    ga_buf_init(&reply);
    wk_request_encode(&req, &m); // as the worker's I/O thread hands it on: envelope, args
    wk_request_run(w, req.data, req.len, a, &reply);
    if (reply.len && wk_reply_decode(reply.data, reply.len, a, body) != GA_OK) {
        *body = ga_nil();
    }
    ga_buf_fini(&req);
    ga_buf_fini(&reply);
}

// Runs a hook call (gw_pipeline_hook_call): an in-process hook of the pipeline, or a worker
// function of a registered service. `*answer` is its RESULT body.
static void
s_run_hook(ex_executor_t *self, const gw_call_t *hook, ga_value_t *answer)
{
    if (hook->local_hook) {
        *answer = gw_pipeline_run_hook(self->pipeline, hook->service, &hook->args, self->arena);
    } else {
        s_run(self, hook, s_next_id(self), answer);
    }
}

// An error RESULT body, as the gateway's bridge answers for a step it ended.
static ga_value_t
s_error_body(ga_arena_t *a, int code, const char *message, bool can_retry)
{
    ga_value_t m = ga_map(a, 4);
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(message));
    ga_map_put(&m, a, "code", ga_int(code));
    ga_map_put(&m, a, "can_retry", ga_bool(can_retry));
    return m;
}

static void
s_noop(void *arg, const ex_response_t *resp)
{
    (void) arg;
    (void) resp;
}

ga_err_t
ex_executor_execute(ex_executor_t *self, const ex_request_t *req, ex_response_fn *fn, void *arg)
{
    ga_arena_t *a = self->arena;
    ga_arena_reset(a);
    ga_value_t args = ga_map(a, 0);
    if (req->args && ga_json_decode(req->args, strlen(req->args), a, &args, NULL, 0) != GA_OK) {
        return GA_EINVAL;
    }
    ga_value_t payload = ga_map(a, 5);
    if (req->request_id) {
        ga_map_put(&payload, a, "request_id", ga_str(req->request_id));
    }
    if (req->service) {
        ga_map_put(&payload, a, "service", ga_str(req->service));
    }
    if (req->request_type) {
        ga_map_put(&payload, a, "request_type", ga_str(req->request_type));
    }
    if (req->version) {
        ga_map_put(&payload, a, "version", ga_str(req->version));
    }
    ga_map_put(&payload, a, "args", args);
    gw_identity_t who = {.user_id = req->user_id,
                         .roles = req->roles,
                         .n_roles = req->n_roles,
                         .device_id = req->device_id,
                         .ip = req->ip ? req->ip : ""};
    gw_call_t call;
    gw_response_t resp;
    ga_err_t rc = gw_pipeline_prepare(self->pipeline, &who, &payload, a, &call, &resp);
    if (call.response_type == GA_RESP_NONE) {
        fn = s_noop; // a none function's callers hear nothing, refusals included
    }
    if (rc != GA_OK) {
        s_deliver(&resp, fn, arg);
        return GA_OK;
    }
    if (call.permission_callback) {
        gw_call_t check;
        ga_value_t verdict;
        const char *denial = "Permission denied";
        if (gw_pipeline_check_call(&who, &call, a, &check)) {
            s_run(self, &check, s_next_id(self), &verdict);
            denial = gw_pipeline_check_denial(&verdict, a);
        }
        if (denial) {
            gw_response_error(&resp, call.request_id, denial, false);
            s_deliver(&resp, fn, arg);
            return GA_OK;
        }
    }
    // The before hook (docs/protocol.md, "Hooks"), as the bridge runs it after the permission
    // callback: it may replace the args (validated again) or refuse the call.
    gw_call_t hook;
    if (call.before_execute) {
        ga_value_t answer = s_error_body(a, GA_EINTERNAL, "Hook failed", false);
        if (gw_pipeline_hook_call(self->pipeline, &who, &call, GW_HOOK_BEFORE, a, &hook)) {
            s_run_hook(self, &hook, &answer);
        }
        ga_value_t sent = ga_map(a, 8);
        gw_call_body_put(&call, a, &sent);
        ga_value_t hooked;
        const char *refusal = NULL;
        ga_err_t verdict =
            gw_pipeline_before_verdict(self->pipeline, &answer, &sent, a, &hooked, &refusal);
        if (verdict != GA_OK) {
            ga_value_t body = s_error_body(a, verdict == GA_EHANDLER ? GA_EHANDLER : GA_EDENIED,
                                           refusal, verdict == GA_ETIMEDOUT);
            gw_pipeline_result(self->pipeline, &body, call.request_id, &resp);
            s_deliver(&resp, fn, arg);
            return GA_OK;
        }
        call.args = hooked;
    }
    if (call.response_type == GA_RESP_ASYNC || call.response_type == GA_RESP_STREAM) {
        resp = gw_response_ack(call.request_id, call.response_type);
        s_deliver(&resp, fn, arg);
    }
    int64_t id = s_next_id(self);
    if (call.response_type == GA_RESP_STREAM) {
        ex_stream_t *s = ga_calloc(1, sizeof *s);
        s->request_id = ga_strdup(call.request_id);
        s->fn = fn;
        s->arg = arg;
        pthread_mutex_lock(&self->lock);
        ga_idmap_put(self->streams, (uint64_t) id, s);
        pthread_mutex_unlock(&self->lock);
    }
    ga_value_t body;
    s_run(self, &call, id, &body);
    if (call.response_type == GA_RESP_NONE) {
        return GA_OK; // none has no answer
    }
    if (call.response_type == GA_RESP_STREAM) {
        if (body.type == GA_MAP) { // the worker refused the stream before it started
            pthread_mutex_lock(&self->lock);
            ex_stream_t *s = ga_idmap_take(self->streams, (uint64_t) id);
            pthread_mutex_unlock(&self->lock);
            if (s) {
                s_free_stream((uint64_t) id, s, NULL);
                gw_pipeline_result(self->pipeline, &body, call.request_id, &resp);
                gw_response_pushed(&resp, call.response_type);
                s_deliver(&resp, fn, arg);
            }
        }
        return GA_OK; // otherwise the stream's messages are its answer
    }
    // The after hook: a success result goes through it; its answer replaces the result unless
    // it failed (then the call's own result stands).
    const ga_value_t *ok = ga_map_get(&body, "ok");
    if (call.after_execute && ok && ok->type == GA_BOOL && ok->u.b &&
        gw_pipeline_hook_call(self->pipeline, &who, &call, GW_HOOK_AFTER, a, &hook)) {
        const ga_value_t *result = ga_map_get(&body, "result");
        ga_map_put(&hook.args, a, "result", result ? *result : ga_nil());
        ga_value_t answer;
        s_run_hook(self, &hook, &answer);
        if (gw_pipeline_after_verdict(self->pipeline, &answer)) {
            const ga_value_t *replaced = ga_map_get(&answer, "result");
            body = ga_map(a, 2);
            ga_map_put(&body, a, "ok", ga_bool(true));
            ga_map_put(&body, a, "result", replaced ? *replaced : ga_nil());
        }
    }
    gw_pipeline_result(self->pipeline, &body, call.request_id, &resp);
    if (call.response_type == GA_RESP_ASYNC) {
        gw_response_pushed(&resp, call.response_type);
    }
    s_deliver(&resp, fn, arg);
    return GA_OK;
}

ex_response_t *
ex_response_copy(const ex_response_t *resp)
{
    ex_response_t *c = ga_malloc(sizeof *c);
    *c = *resp;
    c->request_id = ga_strdup(resp->request_id);
    c->result = ga_strdup(resp->result);
    c->error = resp->error ? ga_strdup(resp->error) : NULL;
    c->json = ga_strdup(resp->json);
    return c;
}

void
ex_response_free(ex_response_t **resp_p)
{
    if (resp_p == NULL || *resp_p == NULL) {
        return;
    }
    ga_free((*resp_p)->request_id);
    ga_free((*resp_p)->result);
    ga_free((*resp_p)->error);
    ga_free((*resp_p)->json);
    ga_free(*resp_p);
    *resp_p = NULL;
}
