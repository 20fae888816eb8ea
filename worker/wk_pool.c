// SPDX-License-Identifier: MIT
// One handler thread of the worker pool. It receives a REQUEST (envelope, then payload) from the
// I/O thread on its actor pipe, runs the matching handler, and sends back the encoded REPLY
// (envelope, then the result's value), which the I/O thread sends as two frames. One request at
// a time; the I/O thread owns the queue and never gives a busy thread a second request.
#include "wk_internal.h"

#include "ga_clock.h"
#include "ga_log.h"
#include "ga_telemetry.h"
#include "ga_wire.h"

#include <string.h>

const wk_function_t *
wk_function_find(const wk_worker_t *w, const char *request_type, const char *version,
                 size_t *index)
{
    for (size_t i = 0; i < w->svc->n_functions; i++) {
        const ga_funcfg_t *cfg = w->cfgs[i];
        bool same_version = (version == NULL && cfg->version == NULL) ||
                            (version && cfg->version && strcmp(version, cfg->version) == 0);
        if (same_version && strcmp(cfg->request_type, request_type) == 0) {
            *index = i;
            return &w->svc->functions[i];
        }
    }
    return NULL;
}

void
wk_request_run(wk_worker_t *w, const uint8_t *data, size_t len, ga_arena_t *arena, ga_buf_t *out)
{
    ga_value_t body;
    ga_buf_reset(out);
    size_t env_len = 0;
    if (ga_wire_decode_first(data, len, arena, &body, &env_len) != GA_OK || body.type != GA_MAP) {
        // The I/O thread decoded this envelope already, so this cannot happen with our own I/O
        // thread; answer with id 0, which the broker drops and counts.
        wk_encode_error(out, arena, 0, GA_EPROTO, "Internal Server Error", false);
        return;
    }
    wk_request_run_decoded(w, &body, data + env_len, len - env_len, arena, out);
}

void
wk_request_run_decoded(wk_worker_t *w, const ga_value_t *envelope, const uint8_t *payload_data,
                       size_t payload_len, ga_arena_t *arena, ga_buf_t *out)
{
    ga_value_t body = *envelope; // a view of the decoded map
    ga_buf_reset(out);
    int64_t id = ga_map_get_int(&body, "id", 0);
    // Past its deadline the broker has answered it already (timed out, or moved on to another
    // attempt): running it now would run a call its client was told failed.
    int64_t deadline = ga_map_get_int(&body, "deadline", 0);
    if (deadline > 0 && ga_clock_wall_ms() + atomic_load(&w->clock_offset_ms) > deadline) {
        atomic_fetch_add(&w->expired, 1);
        GA_INFO("call %lld dropped: dequeued %lld ms after its deadline", (long long) id,
                (long long) (ga_clock_wall_ms() + atomic_load(&w->clock_offset_ms) - deadline));
        return; // no reply: nobody waits for it
    }
    const char *request_type = ga_map_get_str(&body, "request_type");
    const char *version = ga_map_get_str(&body, "version");
    size_t index = 0;
    const wk_function_t *fn =
        request_type ? wk_function_find(w, request_type, version, &index) : NULL;
    if (fn == NULL) {
        wk_encode_error(out, arena, id, GA_ENOTFOUND, "Unknown function", false);
        return;
    }
    // Defence in depth: the arguments are checked against this worker's own declaration, whoever
    // sent the call, so a handler never sees arguments its declaration forbids.
    const ga_funcfg_t *cfg = w->cfgs[index];
    // The args: the payload, decoded here once (the broker passed its bytes on untouched).
    ga_value_t payload = ga_nil();
    const ga_value_t *given = &payload;
    ga_value_t empty = ga_map(arena, 0);
    ga_value_t *args = ga_arena_alloc(arena, sizeof *args);
    char why[512];
    if (payload_len > 0 &&
        ga_wire_decode_map(payload_data, payload_len, arena, &payload) != GA_OK) {
        GA_WARN("call %lld to %s.%s refused: its args are not well-formed MessagePack",
                (long long) id, w->svc->service, request_type);
        if (cfg->response_type != GA_RESP_NONE) {
            wk_encode_error(out, arena, id, GA_EINVAL,
                            "Invalid request: args are not well-formed MessagePack", false);
        }
        return;
    }
    if (ga_funcfg_check_args(cfg, given && given->type != GA_NIL ? given : &empty, arena, args,
                             why, sizeof why) != GA_OK) {
        GA_WARN("call %lld to %s.%s refused: %s", (long long) id, w->svc->service, request_type,
                why);
        if (cfg->response_type != GA_RESP_NONE) {
            wk_encode_error(out, arena, id, GA_EINVAL, why, false);
        }
        return;
    }
    wk_request_t req = {
        .arena = arena,
        .body = &body,
        .args = args,
        .cfg = cfg,
        .id = id,
        .out = out,
        .node = w->node,
        .worker = w,
    };
    ga_resp_t type = req.cfg->response_type;
    if (type == GA_RESP_STREAM) {
        const char *topic = ga_map_get_str(&body, "stream_topic");
        // Streams are kept by call id, and 0 is no id: the broker's ids are positive.
        if (topic == NULL || id <= 0) {
            wk_encode_error(out, arena, id, GA_EPROTO, "Internal Server Error", false);
            return;
        }
        req.stream = wk_stream_open(w, id, topic);
        req.answered = true; // answers travel on the stream
    }
    GA_EMIT(GA_EV_WORKER_POOL_TASK_START, .service = w->svc->service, .request_type = request_type, .version = version, .node = w->node, .pool_name = w->svc->service);
    int64_t started_us = ga_telemetry_is_on(GA_EV_WORKER_POOL_TASK_STOP) || ga_telemetry_is_on(GA_EV_WORKER_POOL_TASK_EXCEPTION) ? ga_clock_us() : 0;
    fn->handler(&req, w->svc->ctx);
    bool done = req.answered || type == GA_RESP_NONE; // a none function answers nothing
    GA_EMIT(done ? GA_EV_WORKER_POOL_TASK_STOP : GA_EV_WORKER_POOL_TASK_EXCEPTION, .service = w->svc->service, .request_type = request_type, .version = version, .node = w->node, .pool_name = w->svc->service, .duration_us = started_us ? ga_clock_us() - started_us : 0, .success = done ? GA_TM_TRUE : GA_TM_FALSE, .reason = done ? NULL : "returned without answering");
    if (type == GA_RESP_STREAM || type == GA_RESP_NONE) {
        ga_buf_reset(out); // no reply: the stream (or nothing, for none) is the answer
        return;
    }
    if (!req.answered) {
        GA_WARN("handler %s.%s returned without answering", w->svc->service, request_type);
        wk_encode_error(out, arena, id, GA_EINTERNAL, "Internal Server Error", false);
    }
}

void
wk_pool_actor(zsock_t *pipe, void *args)
{
    wk_worker_t *w = args;
    ga_arena_t *arena = ga_arena_new(16384);
    ga_buf_t out;
    ga_buf_init(&out);
    zsock_signal(pipe, 0);
    for (;;) {
        zframe_t *frame = zframe_recv(pipe);
        if (frame == NULL || zframe_streq(frame, "$TERM")) {
            zframe_destroy(&frame);
            break;
        }
        wk_request_run(w, zframe_data(frame), zframe_size(frame), arena, &out);
        zframe_destroy(&frame);
        zframe_t *reply = zframe_new(out.data, out.len);
        if (zframe_send(&reply, pipe, 0) != 0) {
            zframe_destroy(&reply);
        }
        ga_arena_reset(arena);
    }
    ga_buf_fini(&out);
    ga_arena_destroy(&arena);
}
