// SPDX-License-Identifier: MIT
// Fuzz target: a REQUEST from the broker (its envelope's MessagePack value followed by its
// payload's, the args), through the worker library as its I/O thread sees it (the envelope
// decoded, as ga_proto_recv does, then "must be a map") and as a pool thread
// runs it (wk_request_run: function lookup by request_type and version, args, stream topic,
// the handler, the REPLY encoding). The worker is built once with a small function table
// (wk_table_build: no threads, no sockets); handlers read every argument through the public
// accessors and echo what they read, so the reply encoder sees fuzzed values too. Every REPLY
// (envelope, then the result for a success) must decode as a map carrying the call's id.
#include "wk_internal.h"

#include "ga_wire.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static wk_worker_t *s_worker; // read-only after LLVMFuzzerInitialize (streams come and go)

static void
s_echo(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *got = wk_map(req, "name", wk_str(req, wk_arg_str(req, "name") ? "y" : "n"),
                             "n", wk_int(req, wk_arg_int(req, "n", -1)),
                             "x", wk_float(req, wk_arg_num(req, "n", 0.5)),
                             "flag", wk_bool(req, wk_arg_bool(req, "flag", false)), NULL);
    wk_value_t *positional = wk_list(req, NULL);
    for (size_t i = 0; i < 8; i++) {
        const wk_value_t *v = wk_arg_at(req, i);
        wk_list_push(req, positional, v ? v : wk_nil(req));
        // The value accessors on whatever arrived.
        (void) wk_value_type(v);
        (void) wk_value_str(v);
        (void) wk_value_int(v, 0);
        (void) wk_value_num(v, 0);
        for (size_t k = 0; k < wk_value_len(v) && k < 4; k++) {
            (void) wk_value_at(v, k);
        }
        (void) wk_value_get(v, "a");
    }
    wk_map_set(req, got, "positional", positional);
    wk_map_set(req, got, "all", wk_args(req));
    const char *user = wk_request_user_id(req);
    const char *rid = wk_request_id(req);
    const char *device = wk_request_device_id(req);
    wk_map_set(req, got, "user", user ? wk_str(req, user) : wk_nil(req));
    wk_map_set(req, got, "request_id", rid ? wk_str(req, rid) : wk_nil(req));
    wk_map_set(req, got, "device", device ? wk_str(req, device) : wk_nil(req));
    wk_map_set(req, got, "admin", wk_bool(req, wk_request_has_role(req, "admin")));
    wk_reply(req, got);
}

static void
s_fail(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *name = wk_arg_str(req, "name");
    wk_reply_error(req, "cannot %s", name ? name : "-");
    wk_reply(req, NULL); // only the first answer counts
}

static void
s_mute(wk_request_t *req, void *ctx)
{
    (void) req;
    (void) ctx; // returns without answering: the library answers with an internal error
}

static void
s_stream(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *s = wk_request_stream(req);
    if (s == NULL) {
        abort(); // a stream function always gets its stream
    }
    // The broker's CANCEL for this call, then end the stream: a cancelled stream sends nothing
    // (no socket needed) and is freed. A non-positive id cannot be cancelled by the broker;
    // mark it directly so the stream still ends without waiting for a socket.
    wk_stream_cancel(s_worker, s->id);
    atomic_store(&s->cancelled, true);
    if (wk_stream_send(s, wk_args(req)) != GA_ECLOSED) {
        abort();
    }
    GA_IGNORE(wk_stream_error(s, "done")); // cancelled: GA_ECLOSED, stream freed
}

static const wk_function_t s_functions[] = {
    {.request_type = "echo",
     .args = "name:string(max_bytes=20), n:num, flag:boolean(default=false), "
             "tags:list_string(max_items=3), meta:map(required=[a], accept=[a, b]), any:any",
     .handler = s_echo},
    {.request_type = "echo", .version = "2.0.0", .args_as_map = true, .handler = s_echo},
    {.request_type = "fail", .args = "name:string", .handler = s_fail},
    {.request_type = "mute", .handler = s_mute},
    {.request_type = "none", .response_type = "none", .args = "x:any", .handler = s_echo},
    {.request_type = "async", .response_type = "async", .handler = s_echo, .non_blocking = true},
    {.request_type = "stream", .response_type = "stream", .timeout_ms = -1, .handler = s_stream},
};

static const wk_service_t s_service = {
    .service = "fuzz",
    .node = "fuzz@here",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    char err[256];
    s_worker = wk_worker_new(&s_service, NULL);
    if (wk_table_build(s_worker, err, sizeof err) != GA_OK) {
        abort();
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ga_arena_t *arena = ga_arena_new(4096);
    ga_value_t body;
    // What the I/O thread lets through (ga_proto_recv): an envelope that decodes as a map; the
    // rest of the input is the payload frame (the args), which only the pool thread decodes.
    size_t env_len = 0;
    if (ga_wire_scan_first(data, size, &env_len) == GA_OK &&
        ga_wire_decode(data, env_len, arena, &body) == GA_OK && body.type == GA_MAP) {
        ga_arena_t *run = ga_arena_new(4096);
        ga_buf_t out;
        ga_buf_init(&out);
        wk_request_run(s_worker, data, size, run, &out);
        if (out.len > 0) {
            ga_value_t reply;
            if (wk_reply_decode(out.data, out.len, arena, &reply) != GA_OK ||
                reply.type != GA_MAP || ga_map_get(&reply, "id") == NULL ||
                ga_map_get(&reply, "ok") == NULL) {
                abort(); // a REPLY the broker would drop
            }
        }
        ga_buf_fini(&out);
        ga_arena_destroy(&run);
    }
    ga_arena_destroy(&arena);
    return 0;
}
