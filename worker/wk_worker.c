// SPDX-License-Identifier: MIT
// The worker object and its I/O thread. The I/O thread owns the DEALER to the broker and the
// pool threads' pipes; it registers the function table, heartbeats, re-registers with backoff
// when the broker goes silent or forgets it, hands requests to idle pool threads through a
// bounded queue, and refuses work when that queue is full. Handlers never touch a socket.
#include "wk_internal.h"

#include "ga_clock.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_telemetry.h"
#include "ga_proto.h"
#include "ga_wire.h"
#include "ga_zpoll.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define WK_BACKOFF_MIN_MS 200  // first re-register delay
#define WK_BACKOFF_MAX_MS 5000 // longest re-register delay

wk_worker_t *
wk_worker_new(const wk_service_t *service, const wk_options_t *options)
{
    wk_worker_t *self = ga_calloc(1, sizeof *self);
    self->svc = service;
    if (options) {
        self->opt = *options;
    }
    if (self->opt.broker == NULL || self->opt.broker[0] == '\0') {
        self->opt.broker = "tcp://127.0.0.1:5570";
    }
    if (self->opt.heartbeat_ms <= 0) {
        self->opt.heartbeat_ms = 1000;
    }
    if (self->opt.threads <= 0) {
        self->opt.threads = 4;
    }
    if (self->opt.queue_max <= 0) {
        self->opt.queue_max = 256;
    }
    if (self->opt.shutdown_timeout_ms == 0) {
        self->opt.shutdown_timeout_ms = 10000;
    }
    self->table_arena = ga_arena_new(4096);
    pthread_mutex_init(&self->stream_lock, NULL);
    pthread_condattr_t mono; // timed waits on the monotonic clock
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&self->stream_work, &mono);
    pthread_cond_init(&self->stream_room, &mono);
    pthread_condattr_destroy(&mono);
    self->streams = ga_idmap_new();
    self->groups = wk_groups_new();
    return self;
}

void
wk_worker_destroy(wk_worker_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    wk_worker_t *self = *self_p;
    zactor_destroy(&self->io);
    wk_groups_destroy(&self->groups);
    wk_stream_shutdown(self);
    pthread_cond_destroy(&self->stream_room);
    pthread_cond_destroy(&self->stream_work);
    pthread_mutex_destroy(&self->stream_lock);
    if (self->cfgs) {
        for (size_t i = 0; i < self->svc->n_functions; i++) {
            ga_funcfg_destroy(&self->cfgs[i]);
        }
        ga_free(self->cfgs);
    }
    ga_arena_destroy(&self->table_arena);
    ga_free(self->offered);
    ga_free(self);
    *self_p = NULL;
}

// FNV-1a over the encoded table: the version changes exactly when the table does.
static uint64_t
s_table_hash(const ga_value_t *table)
{
    ga_buf_t enc;
    ga_buf_init(&enc);
    ga_wire_encode(&enc, table);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < enc.len; i++) {
        h = (h ^ enc.data[i]) * 1099511628211ULL;
    }
    ga_buf_fini(&enc);
    return h;
}

ga_err_t
wk_table_build(wk_worker_t *self, char *err, size_t errlen)
{
    const wk_service_t *svc = self->svc;
    ga_arena_t *a = self->table_arena;
    if (svc->service == NULL || svc->service[0] == '\0' || svc->n_functions == 0) {
        snprintf(err, errlen, "service: a name and at least one function are required");
        return GA_ECONFIG;
    }
    self->table = ga_array(a, (uint32_t) svc->n_functions);
    self->cfgs = ga_calloc(svc->n_functions, sizeof(ga_funcfg_t *));
    self->offered = ga_calloc(svc->n_functions, sizeof(atomic_bool));
    for (size_t i = 0; i < svc->n_functions; i++) {
        atomic_init(&self->offered[i], !svc->functions[i].withdrawn);
    }
    for (size_t i = 0; i < svc->n_functions; i++) {
        const wk_function_t *fn = &svc->functions[i];
        if (fn->handler == NULL || fn->request_type == NULL) {
            snprintf(err, errlen, "function %zu: request_type and handler are required", i);
            return GA_ECONFIG;
        }
        ga_value_t m = ga_map(a, 8);
        ga_map_put(&m, a, "service", ga_str(svc->service));
        ga_map_put(&m, a, "request_type", ga_str(fn->request_type));
        if (fn->version) {
            ga_map_put(&m, a, "version", ga_str(fn->version));
        }
        ga_map_put(&m, a, "response_type", ga_str(fn->response_type ? fn->response_type : "sync"));
        if (fn->timeout_ms < 0) {
            ga_map_put(&m, a, "timeout", ga_str("infinity")); // streams only
        } else if (fn->timeout_ms > 0) {
            ga_map_put(&m, a, "timeout", ga_int(fn->timeout_ms));
        }
        if (fn->args && fn->args[0]) {
            ga_value_t types, orders;
            ga_err_t rc = wk_argspec_parse(a, fn->args, &types, &orders, err, errlen);
            if (rc != GA_OK) {
                snprintf(err + strlen(err), errlen - strlen(err), " (function %s)",
                         fn->request_type);
                return rc;
            }
            ga_map_put(&m, a, "arg_types", types);
            ga_map_put(&m, a, "arg_orders", fn->args_as_map ? ga_str("map") : orders);
        } else if (fn->args_as_map) {
            ga_map_put(&m, a, "arg_orders", ga_str("map"));
        }
        if (fn->check_permission) {
            ga_map_put(&m, a, "check_permission", ga_str(fn->check_permission));
        }
        if (fn->permission_callback) {
            ga_map_put(&m, a, "permission_callback", ga_str(fn->permission_callback));
        }
        if (fn->request_info) {
            ga_map_put(&m, a, "request_info", ga_bool(true));
        }
        if (fn->choose_node_mode) {
            ga_map_put(&m, a, "choose_node_mode", ga_str(fn->choose_node_mode));
        }
        if (fn->nodes && fn->nodes_resolver) {
            snprintf(err, errlen, "function %s: nodes and nodes_resolver: set one of them",
                     fn->request_type);
            return GA_ECONFIG;
        }
        if (fn->nodes_resolver) {
            ga_map_put(&m, a, "nodes", ga_str(fn->nodes_resolver));
        }
        if (fn->nodes) {
            ga_value_t nodes = ga_array(a, 0);
            for (size_t k = 0; fn->nodes[k]; k++) {
                ga_array_push(&nodes, a, ga_str(fn->nodes[k]));
            }
            ga_map_put(&m, a, "nodes", nodes);
        }
        if (fn->retry) {
            ga_map_put(&m, a, "retry", ga_str(fn->retry)); // "3", "same_node:2", "all_nodes:4"
        }
        // Hooks: {"function": NAME, "args": EXTRA} when extra args are given, else NAME.
        const char *hooks[] = {fn->before_execute, fn->after_execute};
        const char *extras[] = {fn->before_execute_args, fn->after_execute_args};
        const char *fields[] = {"before_execute", "after_execute"};
        for (int h = 0; h < 2; h++) {
            if (hooks[h] == NULL) {
                continue;
            }
            if (extras[h] == NULL) {
                ga_map_put(&m, a, fields[h], ga_str(hooks[h]));
                continue;
            }
            ga_value_t extra;
            char why[160];
            if (ga_json_decode(extras[h], strlen(extras[h]), a, &extra, why, sizeof why) !=
                GA_OK) {
                snprintf(err, errlen, "function %s: %s_args: not JSON (%s)", fn->request_type,
                         fields[h], why);
                return GA_ECONFIG;
            }
            ga_value_t hook = ga_map(a, 2);
            ga_map_put(&hook, a, "function", ga_str(hooks[h]));
            ga_map_put(&hook, a, "args", extra);
            ga_map_put(&m, a, fields[h], hook);
        }
        if (fn->hook_timeout_ms > 0) {
            ga_map_put(&m, a, "hook_timeout", ga_int(fn->hook_timeout_ms));
        }
        if (fn->internal) {
            ga_map_put(&m, a, "visibility", ga_str("internal")); // public: left out (default)
        }
        char why[256];
        if (ga_funcfg_parse(&m, &self->cfgs[i], why, sizeof why) != GA_OK) {
            snprintf(err, errlen, "function %s: %s", fn->request_type, why);
            return GA_ECONFIG;
        }
        ga_array_push(&self->table, a, m);
    }
    if (svc->node && svc->node[0]) {
        snprintf(self->node, sizeof self->node, "%s", svc->node);
    } else {
        char host[128] = "localhost";
        GA_IGNORE(gethostname(host, sizeof host) != 0); // keep "localhost" on failure
        host[sizeof host - 1] = '\0';
        snprintf(self->node, sizeof self->node, "%s@%s", svc->service, host);
    }
    if (self->opt.config_version) {
        snprintf(self->config_version, sizeof self->config_version, "%s",
                 self->opt.config_version);
    } else {
        snprintf(self->config_version, sizeof self->config_version, "%016llx",
                 (unsigned long long) s_table_hash(&self->table));
    }
    return GA_OK;
}

ga_value_t
wk_table_current(wk_worker_t *self, ga_arena_t *a, char *version, size_t len)
{
    size_t n = self->svc->n_functions;
    ga_value_t table = ga_array(a, (uint32_t) n);
    bool as_declared = true;
    for (size_t i = 0; i < n; i++) {
        bool offered = atomic_load(&self->offered[i]);
        as_declared = as_declared && offered == !self->svc->functions[i].withdrawn;
        if (offered) {
            ga_array_push(&table, a, self->table.u.items[i]);
        }
    }
    if (self->opt.config_version) {
        if (as_declared) {
            snprintf(version, len, "%s", self->config_version);
        } else {
            snprintf(version, len, "%.*s+%016llx", (int) (len > 18 ? len - 18 : 0),
                     self->opt.config_version, (unsigned long long) s_table_hash(&table));
        }
    } else {
        snprintf(version, len, "%016llx", (unsigned long long) s_table_hash(&table));
    }
    return table;
}

ga_err_t
wk_worker_set_offered(wk_worker_t *self, const char *request_type, const char *version,
                      bool offered)
{
    size_t index = 0;
    if (self == NULL || self->offered == NULL || request_type == NULL ||
        wk_function_find(self, request_type, version, &index) == NULL) {
        return GA_ENOTFOUND;
    }
    atomic_store(&self->offered[index], offered);
    GA_INFO("function %s %s: the broker learns of it at its next pull", request_type,
            offered ? "offered" : "withdrawn");
    return GA_OK;
}

// ---------------------------------------------------------------------------------------------
// The I/O thread

typedef struct {
    wk_worker_t *w;         // the worker (read-only here)
    zsock_t *pipe;          // actor pipe to wk_worker_t
    void *dealer;           // libzmq DEALER to the broker
    zactor_t **pool;        // handler threads
    bool *busy;             // pool[i] is running a request
    zlist_t *queue;         // zframe_t request bodies waiting for a thread
    ga_arena_t *arena;      // per-message arena
    ga_proto_msg_t msg;     // receive buffers
    ga_buf_t out;           // send buffer
    ga_proto_batch_t batch; // REPLYs join one message per loop turn (docs/protocol.md,
                            // "Batches"); every other send closes it first
    bool broker_batch;      // the broker's REGISTERED said it reads batches
    bool registered;        // the broker has accepted our table
    int64_t hb_ms;          // heartbeat interval (the broker's once registered)
    int64_t last_heard;     // monotonic ms of the broker's last message
    int64_t next_hb;        // when to heartbeat next
    int64_t register_at;    // when to send REGISTER next (while unregistered)
    int64_t backoff;        // current re-register delay
    ga_zpoll_t *poller;     // the I/O loop's poller: sends on pool sockets touch it
    int64_t unregistered_since; // monotonic ms of the first REGISTER not yet accepted (0: none)
    ga_log_every_t refused_log; // "broker refused the table", once per reason and interval
    ga_log_every_t silent_log;  // "no answer from the broker", once per interval
    ga_log_every_t version_log; // a broker of another protocol version, once per interval
    int64_t session;            // this life's session, sent with REGISTER (new after a loss)
    uint32_t pushed;            // functions in the last REGISTER's table
    bool draining;              // stopping: new requests refused, running ones finish
    int64_t drain_deadline;     // monotonic ms: running handlers' replies awaited until then
} io_t;

// A new session: the broker takes a REGISTER carrying it as a new life of this worker.
static void
s_new_session(io_t *io)
{
    static uint64_t counter;
    uint64_t x = ((uint64_t) ga_clock_wall_ms() << 16) ^ (uint64_t) getpid() ^ (++counter << 48);
    x ^= (uint64_t) ga_clock_us() * 0x9E3779B97F4A7C15ULL;
    io->session = (int64_t) (x & INT64_MAX) | 1;
}

// The broker has given this worker up, or soon will (it was silent for a liveness period, or
// said so): whatever waits in the queue was answered already or will be when our REGISTER
// arrives, so it is dropped, never run; then register afresh under a new session.
static void
s_lost_broker(io_t *io, int64_t now, const char *why)
{
    size_t n = zlist_size(io->queue);
    zframe_t *f;
    while ((f = zlist_pop(io->queue)) != NULL) {
        zframe_destroy(&f);
    }
    atomic_fetch_add(&io->w->discarded, n);
    GA_NOTICE("%s; registering afresh%s", why, n ? " and dropping the queued requests" : "");
    if (n) {
        GA_NOTICE("%zu queued request(s) dropped", n);
    }
    io->registered = false;
    io->backoff = WK_BACKOFF_MIN_MS;
    s_new_session(io);
    io->register_at = now;
}

// A broker that stays unreachable, or keeps refusing the table, is logged at once and then
// once a minute: not silent, and not once per retry either.
#define WK_LOG_REPEAT_MS 60000

// Replies per batch: bounds the work one message gives the broker.
#define WK_BATCH_MAX 64

static void
s_send(io_t *io, int cmd, const ga_value_t *body)
{
    ga_proto_batch_close(&io->batch);
    ga_err_t rc = ga_proto_send_value(io->dealer, NULL, 0, cmd, body, &io->out);
    if (rc != GA_OK) {
        GA_DEBUG("%s not sent: %s", ga_cmd_name(cmd), ga_strerror(rc));
    }
}

static void
s_register(io_t *io, int64_t now)
{
    wk_worker_t *w = io->w;
    ga_arena_t *a = io->arena;
    char version[WK_VERSION_MAX];
    ga_value_t table = wk_table_current(w, a, version, sizeof version);
    ga_value_t m = ga_map(a, 7);
    ga_map_put(&m, a, "node", ga_str(w->node));
    ga_map_put(&m, a, "service", ga_str(w->svc->service));
    ga_map_put(&m, a, "config_version", ga_str(ga_arena_strdup(a, version)));
    ga_map_put(&m, a, "session", ga_int(io->session));
    ga_map_put(&m, a, "batch", ga_bool(true)); // this worker reads batches
    if (w->opt.push_token && w->opt.push_token[0]) {
        ga_map_put(&m, a, "token", ga_str(w->opt.push_token));
    }
    if (w->opt.force_push) {
        ga_map_put(&m, a, "force", ga_bool(true));
    }
    ga_map_put(&m, a, "functions", table);
    io->pushed = table.len;
    s_send(io, GA_CMD_REGISTER, &m);
    if (io->unregistered_since == 0) {
        io->unregistered_since = now;
    }
    io->register_at = now + io->backoff;
    io->backoff = io->backoff * 2 > WK_BACKOFF_MAX_MS ? WK_BACKOFF_MAX_MS : io->backoff * 2;
    ga_arena_reset(a);
}

static void
s_on_registered(io_t *io, const ga_value_t *body)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok == NULL || ok->type != GA_BOOL || !ok->u.b) {
        const char *why = ga_map_get_str(body, "error");
        if (ga_log_every_due(&io->refused_log, why, ga_clock_ms(), WK_LOG_REPEAT_MS)) {
            GA_ERR("broker %s refused the function table: %s", io->w->opt.broker,
                   why ? why : "(no reason)");
        }
        GA_EMIT(GA_EV_CONFIG_PUSH, .service = io->w->svc->service, .node = io->w->node,
                .success = GA_TM_FALSE, .reason = why ? why : "refused");
        return; // retried with backoff
    }
    const ga_value_t *failed = ga_map_get(body, "failed");
    for (uint32_t i = 0; failed && failed->type == GA_ARRAY && i < failed->len; i++) {
        const char *fn = ga_map_get_str(&failed->u.items[i], "function");
        const char *why = ga_map_get_str(&failed->u.items[i], "reason");
        GA_WARN("broker refused function %s: %s", fn ? fn : "?", why ? why : "?");
    }
    const ga_value_t *batch = ga_map_get(body, "batch");
    ga_proto_batch_close(&io->batch);
    io->broker_batch = batch && batch->type == GA_BOOL && batch->u.b;
    int64_t hb = ga_map_get_int(body, "heartbeat_ms", 0);
    if (hb > 0) {
        io->hb_ms = hb;
    }
    int64_t broker_now = ga_map_get_int(body, "now_ms", 0);
    if (broker_now > 0) {
        atomic_store(&io->w->clock_offset_ms, broker_now - ga_clock_wall_ms());
    }
    // Streams go to the broker's XSUB: same host as its worker endpoint, the port it names.
    int64_t port = ga_map_get_int(body, "stream_port", 0);
    const char *colon = strrchr(io->w->opt.broker, ':');
    if (port > 0 && port < 65536 && colon) {
        char endpoint[300];
        snprintf(endpoint, sizeof endpoint, "%.*s:%d", (int) (colon - io->w->opt.broker),
                 io->w->opt.broker, (int) port);
        wk_stream_connect(io->w, endpoint);
    }
    io->next_hb = 0; // heartbeat now, then on the broker's schedule
    io->registered = true;
    io->backoff = WK_BACKOFF_MIN_MS;
    io->unregistered_since = 0;
    ga_log_every_reset(&io->refused_log);
    ga_log_every_reset(&io->silent_log);
    const ga_value_t *skipped = ga_map_get(body, "skipped");
    uint32_t n_failed = failed && failed->type == GA_ARRAY ? failed->len : 0;
    GA_EMIT(GA_EV_CONFIG_PUSH, .service = io->w->svc->service, .node = io->w->node,
            .count = io->pushed > n_failed ? io->pushed - n_failed : 0, .success = GA_TM_TRUE,
            .reason = skipped && skipped->type == GA_BOOL && skipped->u.b ? "skipped" : NULL);
    if (skipped && skipped->type == GA_BOOL && skipped->u.b) {
        GA_INFO("registered with %s as %s; the broker already had config version %s, table "
                "not pushed again (force_push pushes it)",
                io->w->opt.broker, io->w->node, io->w->config_version);
    } else {
        GA_INFO("registered with %s as %s", io->w->opt.broker, io->w->node);
    }
    if (io->w->opt.on_registered) {
        io->w->opt.on_registered(io->w->node, io->w->opt.broker, io->w->opt.on_registered_arg);
    }
}

static void s_refuse(io_t *io, int64_t id);
// Sends a REPLY as wk_request_run encodes it (envelope, then the result's value when ok): the
// two values go out as the envelope and payload frames.
static ga_err_t
s_send_reply(io_t *io, const uint8_t *data, size_t len)
{
    size_t n = len;
    if (ga_wire_scan_first(data, len, &n) != GA_OK) {
        n = len; // our own encoding: cannot happen; sent whole, the broker counts it
    }
    if (io->broker_batch) {
        return ga_proto_batch_add(&io->batch, NULL, 0, GA_CMD_REPLY, data, n, data + n, len - n);
    }
    ga_buf_t env = {.data = (uint8_t *) data, .len = n};
    ga_buf_t payload = {.data = (uint8_t *) data + n, .len = len - n};
    return ga_proto_send_payload(io->dealer, NULL, 0, GA_CMD_REPLY, &env, &payload);
}

// A REQUEST's two frames as one run of bytes for wk_request_run (envelope, then payload).
static zframe_t *
s_request_frame(const ga_proto_msg_t *msg)
{
    size_t plen = 0;
    const uint8_t *payload = ga_proto_payload(msg, &plen);
    zframe_t *f = zframe_new(NULL, msg->body.len + plen);
    memcpy(zframe_data(f), msg->body.data, msg->body.len);
    if (plen) {
        memcpy(zframe_data(f) + msg->body.len, payload, plen);
    }
    return f;
}

static void
s_on_request(io_t *io, const ga_proto_msg_t *msg)
{
    if (io->draining) {
        s_refuse(io, ga_map_get_int(&msg->value, "id", 0)); // sent before our notice arrived
        return;
    }
    if (!io->registered) {
        // Sent to a life the broker has given up (or will, when our REGISTER reaches it).
        atomic_fetch_add(&io->w->discarded, 1);
        GA_DEBUG("request received while registering afresh: dropped");
        return;
    }
    size_t index = 0;
    const char *request_type = ga_map_get_str(&msg->value, "request_type");
    if (ga_log_level() >= GA_LOG_DEBUG) {
        const char *rid = ga_map_get_str(&msg->value, "request_id");
        GA_DEBUG("request %s request_id=%s", request_type ? request_type : "-", rid ? rid : "-");
    }
    const wk_function_t *fn =
        request_type ? wk_function_find(io->w, request_type,
                                        ga_map_get_str(&msg->value, "version"), &index)
                     : NULL;
    if (fn && fn->non_blocking && io->w->cfgs[index]->response_type != GA_RESP_STREAM) {
        // Run here, from the message as received: the envelope decoded once (above), the
        // payload for the first time.
        size_t plen = 0;
        const uint8_t *payload = ga_proto_payload(msg, &plen);
        wk_request_run_decoded(io->w, &msg->value, payload, plen, io->arena, &io->out);
        if (io->out.len && s_send_reply(io, io->out.data, io->out.len) != GA_OK) {
            GA_WARN("reply not sent: broker unreachable");
        }
        return;
    }
    for (int i = 0; i < io->w->opt.threads; i++) {
        if (!io->busy[i]) {
            zframe_t *f = s_request_frame(msg);
            ga_zpoll_touch(io->poller, zsock_resolve(io->pool[i]));
            if (zframe_send(&f, io->pool[i], 0) != 0) {
                zframe_destroy(&f);
                break;
            }
            io->busy[i] = true;
            return;
        }
    }
    if (zlist_size(io->queue) < (size_t) io->w->opt.queue_max) {
        zframe_t *f = s_request_frame(msg);
        if (zlist_append(io->queue, f) == 0) {
            return;
        }
        zframe_destroy(&f);
    }
    // Pool and queue full: refuse at once so the caller can retry elsewhere.
    GA_EMIT(GA_EV_WORKER_POOL_TASK_REJECTED, .service = io->w->svc->service, .node = io->w->node, .pool_name = io->w->svc->service, .reason = "pool and queue full");
    s_refuse(io, ga_map_get_int(&msg->value, "id", 0));
}

// Answers REQUEST `id` with a refusal: it did not run, so the broker may give it to another
// worker (docs/protocol.md, "Retry and fallback").
static void
s_refuse(io_t *io, int64_t id)
{
    ga_arena_t *a = io->arena;
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "id", ga_int(id));
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str("Service temporarily unavailable"));
    ga_map_put(&m, a, "code", ga_int(GA_EAGAIN));
    ga_map_put(&m, a, "can_retry", ga_bool(true));
    ga_map_put(&m, a, "refused", ga_bool(true)); // it did not run: another node may take it
    ga_buf_reset(&io->out);
    ga_wire_encode(&io->out, &m);
    ga_err_t rc = io->broker_batch ? ga_proto_batch_add(&io->batch, NULL, 0, GA_CMD_REPLY,
                                                        io->out.data, io->out.len, NULL, 0)
                                   : ga_proto_send(io->dealer, NULL, 0, GA_CMD_REPLY, &io->out);
    if (rc != GA_OK) {
        GA_DEBUG("refusal for call %lld not sent", (long long) id);
    }
}

// The broker's pull (docs/protocol.md, "Config pull"): the table as offered now (`full`), or
// only its config version, answered here on the I/O thread. A worker registering afresh does
// not answer: its REGISTER carries the table.
static void
s_on_pull(io_t *io, bool full)
{
    if (!io->registered) {
        return;
    }
    wk_worker_t *w = io->w;
    ga_arena_t *a = io->arena;
    char version[WK_VERSION_MAX];
    ga_value_t table = wk_table_current(w, a, version, sizeof version);
    ga_value_t m = ga_map(a, 5);
    ga_map_put(&m, a, "id", ga_int(ga_map_get_int(&io->msg.value, "id", 0)));
    ga_map_put(&m, a, "config_version", ga_str(ga_arena_strdup(a, version)));
    if (full) {
        ga_map_put(&m, a, "node", ga_str(w->node));
        ga_map_put(&m, a, "service", ga_str(w->svc->service));
        ga_map_put(&m, a, "functions", table);
    }
    s_send(io, GA_CMD_PULLED, &m);
}

// True (and the worker registering afresh) when the broker has been silent for a liveness
// period: checked before anything it sent is handled, so that requests that waited while this
// process was stopped are not run.
static bool
s_check_silence(io_t *io, int64_t now)
{
    if (io->registered && now - io->last_heard > io->hb_ms * GA_PROTO_LIVENESS) {
        s_lost_broker(io, now, "broker silent for 3 heartbeats");
        return true;
    }
    return false;
}

static void
s_on_broker(io_t *io, int64_t now)
{
    s_check_silence(io, now);
    // A batch is read to its end (ga_proto_recv's contract), whatever the budget.
    for (int budget = 256; budget > 0 || io->msg.batch_socket != NULL; budget--) {
        ga_err_t rc = ga_proto_recv(io->dealer, false, &io->msg, io->arena);
        if (rc == GA_EAGAIN || rc == GA_EIO) {
            break;
        }
        if (rc == GA_EPROTO) {
            if (io->msg.peer_version == 0) {
                GA_WARN("malformed message from the broker dropped");
            } else if (ga_log_every_due(&io->version_log, NULL, now, WK_LOG_REPEAT_MS)) {
                GA_ERR("broker %s speaks protocol version %d, this worker speaks %d: upgrade it "
                       "(its messages are dropped)",
                       io->w->opt.broker, io->msg.peer_version, GA_PROTO_VERSION);
            }
            ga_arena_reset(io->arena);
            continue;
        }
        io->last_heard = now;
        switch (io->msg.cmd) {
        case GA_CMD_REGISTERED:
            s_on_registered(io, &io->msg.value);
            break;
        case GA_CMD_HEARTBEAT:
            break;
        case GA_CMD_REQUEST:
            s_on_request(io, &io->msg);
            break;
        case GA_CMD_CANCEL:
            wk_stream_cancel(io->w, ga_map_get_int(&io->msg.value, "id", 0));
            break;
        case GA_CMD_PULL_VERSION:
        case GA_CMD_PULL:
            s_on_pull(io, io->msg.cmd == GA_CMD_PULL);
            break;
        case GA_CMD_GROUP_REPLY:
        case GA_CMD_ADMIN_REPLY:                 // wk_verify's answer
            wk_groups_on_reply(io->w, &io->msg); // wk_groups.c
            break;
        case GA_CMD_DISCONNECT: {
            const char *why = ga_map_get_str(&io->msg.value, "reason");
            const ga_value_t *keep = ga_map_get(&io->msg.value, "keep_session");
            if (keep && keep->type == GA_BOOL && keep->u.b && io->registered) {
                // The broker flushed our configs (genapi-ctl clear): push the table again in
                // the same session, so that nothing queued or running is lost.
                GA_NOTICE("broker asks for our table again (%s)", why ? why : "no reason");
                s_register(io, now);
                break;
            }
            bool stopping = why && strcmp(why, GA_PROTO_BROKER_STOPPING) == 0;
            s_lost_broker(io, now, stopping ? "the broker is stopping"
                                            : "broker asks us to register again");
            if (!stopping) {
                s_register(io, now); // else after the usual delay: it is going away
            }
            break;
        }
        default:
            GA_WARN("unexpected %s from the broker dropped", ga_cmd_name(io->msg.cmd));
            break;
        }
        ga_arena_reset(io->arena);
    }
}

static void
s_on_pool(io_t *io, int i)
{
    zframe_t *reply = zframe_recv(io->pool[i]);
    if (reply == NULL) {
        return;
    }
    // An empty frame: the handler is done and owes no reply (none and stream functions).
    if (zframe_size(reply) && s_send_reply(io, zframe_data(reply), zframe_size(reply)) != GA_OK) {
        GA_WARN("reply not sent: broker unreachable");
    }
    zframe_destroy(&reply);
    // pool[i] was ready, so the poller checks it again before sleeping: the send below needs
    // no touch.
    zframe_t *next = zlist_pop(io->queue);
    if (next == NULL) {
        io->busy[i] = false;
    } else if (zframe_send(&next, io->pool[i], 0) != 0) {
        zframe_destroy(&next);
        io->busy[i] = false;
    }
}

static void
s_on_timer(io_t *io, int64_t now)
{
    s_check_silence(io, now);
    if (!io->registered && now >= io->register_at) {
        s_register(io, now);
    }
    // Nothing heard since the first unanswered REGISTER, for a liveness period: say so.
    if (!io->registered && io->unregistered_since &&
        now - io->unregistered_since >= io->hb_ms * GA_PROTO_LIVENESS &&
        io->last_heard < io->unregistered_since &&
        ga_log_every_due(&io->silent_log, NULL, now, WK_LOG_REPEAT_MS)) {
        GA_WARN("no answer from the broker at %s for %lld ms: is it running, and is this "
                "worker's broker option the broker's worker endpoint (worker_endpoint, default "
                "port 5570)?",
                io->w->opt.broker, (long long) (now - io->unregistered_since));
    }
    if (now >= io->next_hb) {
        io->next_hb = now + io->hb_ms;
        if (io->registered) {
            // The pool's figures ride along (docs/protocol.md; genapi-ctl pool-status).
            int64_t busy = 0;
            for (int i = 0; i < io->w->opt.threads; i++) {
                busy += io->busy[i];
            }
            ga_value_t hb = ga_map(io->arena, 5);
            ga_map_put(&hb, io->arena, "threads", ga_int(io->w->opt.threads));
            ga_map_put(&hb, io->arena, "busy", ga_int(busy));
            ga_map_put(&hb, io->arena, "queued", ga_int((int64_t) zlist_size(io->queue)));
            ga_map_put(&hb, io->arena, "queue_max", ga_int(io->w->opt.queue_max));
            if (io->draining) {
                ga_map_put(&hb, io->arena, "draining", ga_bool(true)); // said again each time
            }
            s_send(io, GA_CMD_HEARTBEAT, &hb);
            ga_arena_reset(io->arena);
        }
    }
}

static bool
s_io_init(io_t *io, zsock_t *pipe, wk_worker_t *w)
{
    memset(io, 0, sizeof *io);
    ga_proto_batch_init(&io->batch, NULL, WK_BATCH_MAX); // the socket once it exists
    io->w = w;
    io->pipe = pipe;
    io->arena = ga_arena_new(16384);
    ga_proto_msg_init(&io->msg);
    ga_buf_init(&io->out);
    io->queue = zlist_new();
    io->pool = ga_calloc((size_t) w->opt.threads, sizeof(zactor_t *));
    io->busy = ga_calloc((size_t) w->opt.threads, sizeof(bool));
    for (int i = 0; i < w->opt.threads; i++) {
        io->pool[i] = zactor_new(wk_pool_actor, w);
        if (io->pool[i] == NULL) {
            return false;
        }
    }
    io->hb_ms = w->opt.heartbeat_ms;
    io->backoff = WK_BACKOFF_MIN_MS;
    s_new_session(io);
    io->dealer = zmq_socket(zsys_init(), ZMQ_DEALER);
    if (io->dealer == NULL) {
        return false;
    }
    io->batch.socket = io->dealer;
    int zero = 0;
    int one = 1;
    int hwm = 10000;
    int ivl = (int) io->hb_ms;
    int timeout = (int) io->hb_ms * GA_PROTO_LIVENESS;
    int reconnect_max = 2000;
    // IMMEDIATE: never queue messages for a broker we are not connected to (they would reach
    // a restarted broker that knows nothing of them). ZMTP heartbeats find dead TCP peers.
    if (zmq_setsockopt(io->dealer, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(io->dealer, ZMQ_IMMEDIATE, &one, sizeof one) != 0 ||
        zmq_setsockopt(io->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(io->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(io->dealer, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl) != 0 ||
        zmq_setsockopt(io->dealer, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout) != 0 ||
        zmq_setsockopt(io->dealer, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max) !=
            0) {
        return false;
    }
    if (w->curve &&
        ga_curve_client(io->dealer, &w->curve_own, w->curve_broker.public_txt) != GA_OK) {
        GA_ERR("cannot set CURVE keys: %s", zmq_strerror(zmq_errno()));
        return false;
    }
    if (zmq_connect(io->dealer, w->opt.broker) != 0) {
        GA_ERR("cannot connect to %s: %s", w->opt.broker, zmq_strerror(zmq_errno()));
        return false;
    }
    return true;
}

static void
s_io_fini(io_t *io)
{
    if (io->dealer && io->registered) {
        ga_value_t m = ga_map(io->arena, 1);
        ga_map_put(&m, io->arena, "reason", ga_str("worker stopping"));
        s_send(io, GA_CMD_DISCONNECT, &m);
    }
    wk_groups_close(io->w); // a handler waiting for a group operation returns now
    for (int i = 0; io->pool && i < io->w->opt.threads; i++) {
        zactor_destroy(&io->pool[i]);
    }
    ga_free(io->pool);
    ga_free(io->busy);
    zframe_t *f;
    while (io->queue && (f = zlist_pop(io->queue)) != NULL) {
        zframe_destroy(&f);
    }
    zlist_destroy(&io->queue);
    ga_proto_batch_fini(&io->batch); // sends an open one: before its socket closes
    if (io->dealer) {
        zmq_close(io->dealer);
    }
    ga_proto_msg_fini(&io->msg);
    ga_buf_fini(&io->out);
    ga_arena_destroy(&io->arena);
}

// Begins the drain (docs/operations.md, "Lifecycle"): tells the broker to send nothing more
// (HEARTBEAT draining, docs/protocol.md "Stopping") and refuses what is queued. False when
// there is nothing to wait for.
static bool
s_drain_begin(io_t *io, int64_t now)
{
    if (io->w->opt.shutdown_timeout_ms < 0) {
        return false;
    }
    io->draining = true;
    io->drain_deadline = now + io->w->opt.shutdown_timeout_ms;
    if (io->registered) {
        ga_value_t m = ga_map(io->arena, 1);
        ga_map_put(&m, io->arena, "draining", ga_bool(true));
        s_send(io, GA_CMD_HEARTBEAT, &m);
        ga_arena_reset(io->arena);
    }
    size_t refused = 0;
    zframe_t *f;
    while ((f = zlist_pop(io->queue)) != NULL) {
        ga_value_t body;
        size_t n = 0; // a queued request is its envelope followed by its payload
        if (ga_wire_decode_first(zframe_data(f), zframe_size(f), io->arena, &body, &n) == GA_OK) {
            s_refuse(io, ga_map_get_int(&body, "id", 0));
            refused++;
        }
        ga_arena_reset(io->arena);
        zframe_destroy(&f);
    }
    size_t running = 0;
    for (int i = 0; i < io->w->opt.threads; i++) {
        running += io->busy[i];
    }
    GA_NOTICE("draining: %zu call(s) running, %zu queued call(s) handed back; awaiting them up "
              "to shutdown_timeout_ms=%d",
              running, refused, io->w->opt.shutdown_timeout_ms);
    return running > 0;
}

// Whether the drain is over: no handler running, or the time is up.
static bool
s_drain_done(io_t *io, int64_t now)
{
    size_t running = 0;
    for (int i = 0; i < io->w->opt.threads; i++) {
        running += io->busy[i];
    }
    if (running && now >= io->drain_deadline) {
        GA_WARN("draining: shutdown_timeout_ms passed with %zu handler(s) running: their "
                "replies are not sent",
                running);
    }
    return running == 0 || now >= io->drain_deadline;
}

static void
s_io_actor(zsock_t *pipe, void *args)
{
    io_t io;
    wk_worker_t *w = args;
    w->io_thread = pthread_self();
    atomic_store(&w->io_known, true);
    bool ok = s_io_init(&io, pipe, args);
    zsock_signal(pipe, 0);     // zactor_new returns
    zsock_signal(pipe, ok ? 0 : 1); // wk_worker_start reads the outcome
    int n = ok ? io.w->opt.threads + 3 : 1;
    ga_zpoll_item_t *items = ga_calloc((size_t) n, sizeof *items);
    items[0].socket = zsock_resolve(pipe);
    if (ok) {
        items[1].socket = io.dealer;
        for (int i = 0; i < io.w->opt.threads; i++) {
            items[2 + i].socket = zsock_resolve(io.pool[i]);
        }
        items[n - 1].fd = wk_groups_fd(io.w->groups); // group operations to send
    }
    ga_zpoll_t poller;
    if (ga_zpoll_init(&poller, items, n) != GA_OK) {
        GA_ERR("cannot poll the worker's sockets: %s", zmq_strerror(zmq_errno()));
        ok = false;
        n = 0;
    }
    io.poller = &poller;
    if (ok) {
        s_register(&io, ga_clock_ms());
        io.next_hb = ga_clock_ms() + io.hb_ms;
    }
    for (;;) {
        int64_t now = ga_clock_ms();
        int64_t next = io.registered ? io.next_hb : io.register_at;
        if (io.draining && next > now + 20) {
            next = now + 20; // the drain checks its deadline this often
        }
        long timeout = !ok ? -1 : (next > now ? (long) (next - now) : 0);
        if (ok) {
            // Replies, refusals, heartbeats and registrations all go out on the DEALER.
            items[1].dirty = true;
            ga_proto_batch_close(&io.batch); // the replies of this turn go out now
        }
        if (n == 0 || ga_zpoll_wait(&poller, timeout) < 0) {
            if (n > 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        if (items[0].ready) {
            char *cmd = zstr_recv(pipe);
            bool gone = cmd == NULL; // the caller went away: no drain
            bool term = gone || strcmp(cmd, "$TERM") == 0;
            zstr_free(&cmd);
            if (term && (gone || !ok || io.draining || !s_drain_begin(&io, ga_clock_ms()))) {
                break;
            }
        }
        if (!ok) {
            continue;
        }
        now = ga_clock_ms();
        // First, before a finished handler takes the next queued request or anything received
        // is handled: if this process was stopped, what waits was given up by the broker.
        s_check_silence(&io, now);
        if (items[1].ready) {
            s_on_broker(&io, now);
        }
        for (int i = 0; i < io.w->opt.threads; i++) {
            if (items[2 + i].ready) {
                s_on_pool(&io, i);
            }
        }
        if (items[n - 1].ready) {
            ga_proto_batch_close(&io.batch);
            wk_groups_on_wake(io.w, io.dealer, io.registered);
        }
        s_on_timer(&io, now);
        if (io.draining && s_drain_done(&io, ga_clock_ms())) {
            break;
        }
    }
    if (n > 0) {
        ga_zpoll_fini(&poller);
    }
    ga_free(items);
    s_io_fini(&io);
}

ga_err_t
wk_worker_start(wk_worker_t *self, char *err, size_t errlen)
{
    ga_err_t rc = wk_table_build(self, err, errlen);
    if (rc != GA_OK) {
        return rc;
    }
    rc = ga_curve_client_load("curve_secret_file", self->opt.curve_secret_file,
                              "curve_broker_file", self->opt.curve_broker_file, "worker",
                              &self->curve_own, &self->curve_broker, &self->curve, err, errlen);
    if (rc != GA_OK) {
        return rc;
    }
    self->io = zactor_new(s_io_actor, self);
    if (self->io == NULL || zsock_wait(self->io) != 0) {
        snprintf(err, errlen, "cannot start: broker endpoint %s unusable", self->opt.broker);
        return GA_EIO;
    }
    return GA_OK;
}
