// SPDX-License-Identifier: MIT
// genapi-call: one call through a gateway from a shell, as a client would make it (the Phoenix
// Channels V2 JSON protocol of docs/protocol.md, "Client protocol"): connect, join the topic,
// push the API event, print the response as one JSON line (a stream: one line per chunk, then
// its last, end or error), leave. Exit status: 0 when the call succeeded, 1 when it was answered
// with an error (the message on stderr), 2 for a usage error, 3 when no answer came (refused
// handshake or join, closed connection, timeout). docs/operations.md, "genapi-call".
#include "ga_arena.h"
#include "ga_json.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <libwebsockets.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_HEARTBEAT_US (25 * LWS_US_PER_SEC) // Phoenix clients heartbeat every 30 s
#define S_FRAMES_MAX   4                     // frames queued for writing at once
#define S_MESSAGE_MAX  (16u << 20)           // largest message taken from the gateway

enum { S_EXIT_OK = 0, S_EXIT_CALL = 1, S_EXIT_USAGE = 2, S_EXIT_FAILED = 3 };

typedef struct {
    // Options.
    const char *topic;      // channel topic (api:lobby)
    const char *event;      // the API event name (api)
    const char *service;    // the call
    const char *request_type;
    const char *version;    // or NULL
    const char *request_id; // echoed in every response
    ga_value_t args;        // the call's args (a map)
    int64_t timeout_ms;     // longest silence waited for
    bool no_wait;           // push and leave (for none functions)
    bool verbose;           // also print acks
    // State.
    struct lws_context *context;
    struct lws *wsi;
    ga_arena_t *arena;      // decoded messages (reset per message)
    ga_buf_t in;            // a message being received (fragments)
    ga_buf_t out[S_FRAMES_MAX]; // frames waiting to be written (LWS_PRE bytes of room first)
    size_t n_out;           // frames waiting
    int ref;                // last ref used
    bool joined;            // the join was answered ok
    bool pushed;            // the call's frame was written
    bool acked;             // an ack came (async, stream)
    bool done;              // finished: exit with `status`
    int status;             // exit status
    lws_sorted_usec_list_t heartbeat; // heartbeat timer
    lws_sorted_usec_list_t deadline;  // silence timer
} call_t;

static int
s_usage(void)
{
    fprintf(stderr,
            "usage: genapi-call [options] SERVICE FUNCTION ['{\"arg\": value, ...}']\n"
            "  --url URL          the gateway (default ws://127.0.0.1:4000/socket/websocket;\n"
            "                     .../socket is completed; wss:// for TLS, with --ca FILE)\n"
            "  --token JWT        connect param token (gateways with auth=jwt)\n"
            "  --device-id ID     connect param device_id\n"
            "  --param KEY=VALUE  another connect param (auth=service gateways), repeatable\n"
            "  --version V        call exactly version V\n"
            "  --topic T          channel topic (default api:lobby); --event E (default api)\n"
            "  --request-id ID    (default genapi-call-PID-TIME)\n"
            "  --timeout-ms MS    longest wait for the next message (default 30000)\n"
            "  --no-wait          push and exit 0 without waiting (none functions answer "
            "nothing)\n"
            "  --verbose          also print the ack of an async or stream call\n"
            "Prints each response as a JSON line; exit 0 on success, 1 when the call failed,\n"
            "2 for usage errors, 3 when no answer came (refused, closed, timed out).\n");
    return S_EXIT_USAGE;
}

static void
s_finish(call_t *c, int status)
{
    if (!c->done) {
        c->done = true;
        c->status = status;
    }
}

// Queues one frame: [join_ref, ref, topic, event, payload], refs as strings (null: join_ref
// of a heartbeat).
static void
s_queue(call_t *c, bool with_join_ref, const char *topic, const char *event,
        const ga_value_t *payload)
{
    if (c->n_out == S_FRAMES_MAX) {
        fprintf(stderr, "genapi-call: too many frames queued\n");
        s_finish(c, S_EXIT_FAILED);
        return;
    }
    ga_buf_t *b = &c->out[c->n_out++];
    ga_buf_reset(b);
    ga_buf_reserve(b, LWS_PRE);
    b->len = LWS_PRE;
    char ref[24];
    snprintf(ref, sizeof ref, "%d", ++c->ref);
    ga_buf_append_str(b, with_join_ref ? "[\"1\"," : "[null,");
    ga_json_encode_str(b, ref, strlen(ref));
    ga_buf_append_char(b, ',');
    ga_json_encode_str(b, topic, strlen(topic));
    ga_buf_append_char(b, ',');
    ga_json_encode_str(b, event, strlen(event));
    ga_buf_append_char(b, ',');
    ga_json_encode(b, payload);
    ga_buf_append_char(b, ']');
    if (c->wsi) {
        lws_callback_on_writable(c->wsi);
    }
}

static void
s_join(call_t *c)
{
    ga_value_t empty = ga_map(c->arena, 0);
    s_queue(c, true, c->topic, "phx_join", &empty);
}

static void
s_push_call(call_t *c)
{
    ga_arena_t *a = c->arena;
    ga_value_t m = ga_map(a, 5);
    ga_map_put(&m, a, "request_id", ga_str(c->request_id));
    ga_map_put(&m, a, "service", ga_str(c->service));
    ga_map_put(&m, a, "request_type", ga_str(c->request_type));
    ga_map_put(&m, a, "args", c->args);
    if (c->version) {
        ga_map_put(&m, a, "version", ga_str(c->version));
    }
    s_queue(c, true, c->topic, c->event, &m);
}

// Restarts the silence timer.
static void
s_on_deadline(lws_sorted_usec_list_t *sul)
{
    call_t *c = lws_container_of(sul, call_t, deadline);
    fprintf(stderr, "genapi-call: no answer within %lld ms\n", (long long) c->timeout_ms);
    s_finish(c, S_EXIT_FAILED);
    lws_cancel_service(c->context);
}

static void
s_arm_deadline(call_t *c)
{
    lws_sul_schedule(c->context, 0, &c->deadline, s_on_deadline,
                     (lws_usec_t) c->timeout_ms * LWS_US_PER_MS);
}

static void
s_on_heartbeat(lws_sorted_usec_list_t *sul)
{
    call_t *c = lws_container_of(sul, call_t, heartbeat);
    ga_value_t empty = ga_map(c->arena, 0);
    s_queue(c, false, "phoenix", "heartbeat", &empty);
    lws_sul_schedule(c->context, 0, &c->heartbeat, s_on_heartbeat, S_HEARTBEAT_US);
}

static void
s_print(const ga_value_t *v)
{
    ga_buf_t out;
    ga_buf_init(&out);
    ga_json_encode(&out, v);
    printf("%.*s\n", (int) out.len, (const char *) out.data);
    fflush(stdout);
    ga_buf_fini(&out);
}

// One response of the call (from its phx_reply or an api push).
static void
s_on_response(call_t *c, const ga_value_t *r)
{
    const char *kind = ga_map_get_str(r, "kind");
    const ga_value_t *ok = ga_map_get(r, "success");
    bool success = ok && ok->type == GA_BOOL && ok->u.b;
    kind = kind ? kind : "";
    s_arm_deadline(c);
    if (strcmp(kind, "ack") == 0) {
        if (!c->acked && c->verbose) {
            s_print(r);
        }
        c->acked = true; // the second copy (delivery both) is dropped
        return;
    }
    s_print(r);
    if (strcmp(kind, "chunk") == 0 && success) {
        return; // more to come
    }
    if (!success) {
        const char *error = ga_map_get_str(r, "error");
        fprintf(stderr, "genapi-call: %s\n", error ? error : "failed");
    }
    s_finish(c, success ? S_EXIT_OK : S_EXIT_CALL);
}

// One whole text message from the gateway.
static void
s_on_message(call_t *c, const char *text, size_t len)
{
    ga_arena_reset(c->arena);
    ga_value_t f;
    char why[160];
    if (ga_json_decode(text, len, c->arena, &f, why, sizeof why) != GA_OK || f.type != GA_ARRAY ||
        f.len != 5 || f.u.items[2].type != GA_STR || f.u.items[3].type != GA_STR) {
        fprintf(stderr, "genapi-call: not a Phoenix V2 frame from the gateway: %.*s\n",
                (int) (len < 200 ? len : 200), text);
        s_finish(c, S_EXIT_FAILED);
        return;
    }
    const char *ref = f.u.items[1].type == GA_STR ? f.u.items[1].u.s : NULL;
    const char *topic = f.u.items[2].u.s;
    const char *event = f.u.items[3].u.s;
    const ga_value_t *payload = &f.u.items[4];
    if (strcmp(topic, c->topic) != 0) {
        return; // heartbeat replies
    }
    if (strcmp(event, "phx_reply") == 0 && ref) {
        const char *st = ga_map_get_str(payload, "status");
        const ga_value_t *response = ga_map_get(payload, "response");
        if (st == NULL || strcmp(st, "ok") != 0) {
            const char *reason = ga_map_get_str(response, "reason");
            fprintf(stderr, "genapi-call: %s refused: %s\n", c->joined ? "request" : "join",
                    reason ? reason : "(no reason)");
            s_finish(c, S_EXIT_FAILED);
        } else if (!c->joined) {
            c->joined = true;
            s_push_call(c);
            s_arm_deadline(c);
        } else if (response && ga_map_get(response, "request_id")) {
            s_on_response(c, response); // delivery reply or both; push-only sends {}
        }
    } else if (strcmp(event, c->event) == 0) {
        const char *rid = ga_map_get_str(payload, "request_id");
        if (rid && strcmp(rid, c->request_id) == 0) {
            s_on_response(c, payload);
        }
    } else if (strcmp(event, "phx_error") == 0 || strcmp(event, "phx_close") == 0) {
        const char *reason = ga_map_get_str(payload, "reason");
        fprintf(stderr, "genapi-call: the gateway sent %s%s%s\n", event, reason ? ": " : "",
                reason ? reason : "");
        s_finish(c, S_EXIT_FAILED);
    }
}

static int
s_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void) user;
    call_t *c = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        int status = (int) lws_http_client_http_response(wsi);
        if (status > 0) {
            fprintf(stderr, "genapi-call: the gateway refused the handshake: HTTP %d%s\n", status,
                    status == 401   ? " (a token is required, or it was refused)"
                    : status == 404 ? " (the path must end with /socket/websocket)"
                                    : "");
        } else {
            fprintf(stderr, "genapi-call: cannot connect: %s\n",
                    in ? (const char *) in : "(no reason)");
        }
        c->wsi = NULL;
        s_finish(c, S_EXIT_FAILED);
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s_join(c);
        lws_sul_schedule(c->context, 0, &c->heartbeat, s_on_heartbeat, S_HEARTBEAT_US);
        s_arm_deadline(c);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c->in.len + len > S_MESSAGE_MAX) {
            fprintf(stderr, "genapi-call: a message larger than %u bytes\n", S_MESSAGE_MAX);
            s_finish(c, S_EXIT_FAILED);
            return -1;
        }
        ga_buf_append(&c->in, in, len);
        if (lws_is_final_fragment(wsi)) {
            s_on_message(c, (const char *) c->in.data, c->in.len);
            ga_buf_reset(&c->in);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->n_out > 0) {
            ga_buf_t *b = &c->out[0];
            size_t n = b->len - LWS_PRE;
            if (lws_write(wsi, b->data + LWS_PRE, n, LWS_WRITE_TEXT) < (int) n) {
                s_finish(c, S_EXIT_FAILED);
                return -1;
            }
            ga_buf_t first = c->out[0];
            memmove(&c->out[0], &c->out[1], (c->n_out - 1) * sizeof c->out[0]);
            c->out[--c->n_out] = first; // keep its room for reuse
            if (c->joined && !c->pushed && c->n_out == 0) {
                c->pushed = true;
                if (c->no_wait) {
                    s_finish(c, S_EXIT_OK);
                }
            }
            if (c->n_out > 0) {
                lws_callback_on_writable(wsi);
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!c->done) {
            fprintf(stderr, "genapi-call: the gateway closed the connection\n");
        }
        s_finish(c, S_EXIT_FAILED);
        c->wsi = NULL;
        break;
    default:
        break;
    }
    if (c->done && c->wsi == wsi && reason != LWS_CALLBACK_CLIENT_CONNECTION_ERROR &&
        reason != LWS_CALLBACK_CLIENT_CLOSED) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        c->wsi = NULL;
        return -1; // close now
    }
    return 0;
}

// Appends `s` to `b`, percent-encoded for a query string.
static void
s_query_put(ga_buf_t *b, const char *key, const char *s)
{
    ga_buf_append_char(b, b->len && strchr((const char *) b->data, '?') ? '&' : '?');
    for (int pass = 0; pass < 2; pass++) {
        for (const unsigned char *p = (const unsigned char *) (pass ? s : key); *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("-._~", *p)) {
                ga_buf_append_char(b, (char) *p);
            } else {
                char hex[4];
                snprintf(hex, sizeof hex, "%%%02X", *p);
                ga_buf_append_str(b, hex);
            }
        }
        if (pass == 0) {
            ga_buf_append_char(b, '=');
        }
    }
}

int
main(int argc, char **argv)
{
    call_t c = {.topic = "api:lobby", .event = "api", .timeout_ms = 30000};
    const char *url = getenv("GENAPI_GATEWAY_URL");
    const char *token = getenv("GENAPI_TOKEN");
    const char *device_id = NULL;
    const char *ca = NULL;
    const char *params[16];
    size_t n_params = 0;
    const char *operands[3] = {NULL, NULL, NULL};
    int n = 0;
    url = url ? url : "ws://127.0.0.1:4000/socket/websocket";
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--url") == 0 && more) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0 && more) {
            token = argv[++i];
        } else if (strcmp(argv[i], "--device-id") == 0 && more) {
            device_id = argv[++i];
        } else if (strcmp(argv[i], "--param") == 0 && more && strchr(argv[i + 1], '=') &&
                   n_params < 16) {
            params[n_params++] = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0 && more) {
            c.version = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && more) {
            c.topic = argv[++i];
        } else if (strcmp(argv[i], "--event") == 0 && more) {
            c.event = argv[++i];
        } else if (strcmp(argv[i], "--request-id") == 0 && more) {
            c.request_id = argv[++i];
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && more) {
            c.timeout_ms = strtoll(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--ca") == 0 && more) {
            ca = argv[++i];
        } else if (strcmp(argv[i], "--no-wait") == 0) {
            c.no_wait = true;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            c.verbose = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage();
            return S_EXIT_OK;
        } else if (n < 3 && (argv[i][0] != '-' || argv[i][1] == '\0')) {
            operands[n++] = argv[i];
        } else {
            return s_usage();
        }
    }
    if (n < 2 || c.timeout_ms <= 0 || !operands[0][0] || !operands[1][0]) {
        return s_usage();
    }
    c.service = operands[0];
    c.request_type = operands[1];
    c.arena = ga_arena_new(8192);
    ga_arena_t *keep = ga_arena_new(4096); // the args and the URL parts, for the whole run
    char why[200];
    const char *args_text = operands[2] ? operands[2] : "{}";
    if (ga_json_decode(args_text, strlen(args_text), keep, &c.args, why, sizeof why) != GA_OK ||
        c.args.type != GA_MAP) {
        fprintf(stderr, "genapi-call: the args must be a JSON object%s%s\n", why[0] ? ": " : "",
                why);
        ga_arena_destroy(&c.arena);
        ga_arena_destroy(&keep);
        return S_EXIT_USAGE;
    }
    char rid[64];
    if (c.request_id == NULL) {
        snprintf(rid, sizeof rid, "genapi-call-%ld-%lld", (long) getpid(),
                 (long long) time(NULL));
        c.request_id = rid;
    }
    // ws[s]://host:port/path: /socket is completed to /socket/websocket; vsn and the connect
    // params go in the query string (docs/protocol.md, "Connecting").
    char *u = ga_arena_strdup(keep, url);
    const char *prot = NULL, *host = NULL, *path = NULL;
    int port = 0;
    if (lws_parse_uri(u, &prot, &host, &port, &path) != 0 ||
        (strcmp(prot, "ws") != 0 && strcmp(prot, "wss") != 0) || !host[0]) {
        fprintf(stderr, "genapi-call: %s: not a ws:// or wss:// URL\n", url);
        ga_arena_destroy(&c.arena);
        ga_arena_destroy(&keep);
        return S_EXIT_USAGE;
    }
    bool tls = strcmp(prot, "wss") == 0;
    ga_buf_t full;
    ga_buf_init(&full);
    ga_buf_append_char(&full, '/');
    ga_buf_append_str(&full, path);
    while (full.len > 1 && full.data[full.len - 1] == '/') {
        full.len--;
    }
    ga_buf_append_char(&full, '\0');
    full.len--;
    if (strcmp((const char *) full.data, "/") == 0) {
        full.len = 0;
        ga_buf_append_str(&full, "/socket/websocket");
    } else if (full.len >= 7 && strcmp((const char *) full.data + full.len - 7, "/socket") == 0) {
        ga_buf_append_str(&full, "/websocket");
    }
    ga_buf_append_char(&full, '\0');
    full.len--;
    s_query_put(&full, "vsn", "2.0.0");
    if (token) {
        s_query_put(&full, "token", token);
    }
    if (device_id) {
        s_query_put(&full, "device_id", device_id);
    }
    for (size_t i = 0; i < n_params; i++) {
        char *kv = ga_arena_strdup(keep, params[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        s_query_put(&full, kv, eq + 1);
    }
    ga_buf_append_char(&full, '\0');
    for (size_t i = 0; i < S_FRAMES_MAX; i++) {
        ga_buf_init(&c.out[i]);
    }
    ga_buf_init(&c.in);

    lws_set_log_level(LLL_ERR, NULL);
    static const struct lws_protocols protocols[] = {
        {"genapi-call", s_callback, 0, 65536, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = &c;
    info.options = tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    info.client_ssl_ca_filepath = ca;
    c.context = lws_create_context(&info);
    int status = S_EXIT_FAILED;
    if (c.context == NULL) {
        fprintf(stderr, "genapi-call: cannot create the libwebsockets context\n");
        goto out;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c.context;
    ci.address = host;
    ci.port = port;
    ci.path = (const char *) full.data;
    ci.host = host;
    ci.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = "genapi-call";
    ci.pwsi = &c.wsi;
    if (lws_client_connect_via_info(&ci) == NULL && !c.done) {
        fprintf(stderr, "genapi-call: cannot connect to %s\n", url);
        s_finish(&c, S_EXIT_FAILED);
    }
    while (!c.done || c.wsi != NULL) {
        if (c.done && c.wsi) {
            lws_callback_on_writable(c.wsi); // the callback closes it
        }
        if (lws_service(c.context, 0) < 0) {
            break;
        }
    }
    status = c.status;
out:
    if (c.context) {
        lws_context_destroy(c.context);
    }
    for (size_t i = 0; i < S_FRAMES_MAX; i++) {
        ga_buf_fini(&c.out[i]);
    }
    ga_buf_fini(&c.in);
    ga_buf_fini(&full);
    ga_arena_destroy(&c.arena);
    ga_arena_destroy(&keep);
    return status;
}
