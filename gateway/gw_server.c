// SPDX-License-Identifier: MIT
// libwebsockets glue: accepts /socket/websocket, assembles inbound messages within the payload
// limit, runs the Phoenix protocol and the API pipeline, and on each WRITEABLE callback writes
// the queued frames (several gathered into one write, up to GW_BATCH_BYTES). The broker
// bridge's two ZeroMQ fds (DEALER and SUB) live in the same loop as raw file descriptors.
#include "gw_server.h"

#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_idmap.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "gw_conn.h"
#include "gw_phx.h"
#include "ga_json.h"
#include "ga_metrics.h"
#include "ga_telemetry.h"
#include "gw_admin.h"

#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define GW_TICK_MAX_US (100 * LWS_US_PER_MS) // longest wait between bridge ticks
#define GW_WS_PATH     "/socket/websocket"
#define GW_BATCH_BYTES 65536 // frames gathered into one write up to this many bytes
#define GW_OUT_BLOCK   (512 - 32) // pooled outbound frame block: headroom + a typical reply
#define GW_OUT_BLOCKS_KEPT 1024   // blocks kept for reuse (about 0.5 MB at most)
#define GW_HELD_MAX    16   // frames held per connection while its identity is being decided
#define GW_PARAMS_MAX  32   // connect params kept for the identity service
#define GW_AUTH_TIMEOUT_MS 5000
#define GW_CLOSE_TRY_AGAIN_LATER 1013 // RFC 6455 registry: "Try Again Later"
#define GW_HTTP_TOO_MANY_REQUESTS 429 // RFC 6585 (libwebsockets names no constant for it)
#define GW_PHX_VSN     "2.0.0" // the only serializer version spoken
#define GW_DRAIN_TICK_US (10 * LWS_US_PER_MS) // drain steps this far apart
#define GW_DRAIN_BATCH 500  // connections closed per drain step
#define GW_DRAIN_FLUSH_MS 2000 // a closing client's queued frames are awaited this long
#define GW_DRAIN_CLOSE_MS 5000 // connections still open this long after closing began: dropped

struct gw_server_t {
    const gw_config_t *cfg;       // borrowed settings
    struct lws_context *context;  // libwebsockets context (owned)
    struct lws_vhost *vhost;      // the listening vhost
    int port;                     // actual port
    atomic_bool stop;             // set by gw_server_stop, or at the end of a drain
    atomic_bool drain_asked;      // set by gw_server_drain
    atomic_bool reload_asked;     // set by gw_server_reload
    bool draining;                // the drain has begun (loop thread)
    bool closing;                 // the drain is closing the clients
    bool drained;                 // the drain finished: every client closed
    int64_t drain_deadline_ms;    // calls in flight are awaited until then
    int64_t closing_since_ms;     // when closing began
    lws_sorted_usec_list_t drain; // drain steps
    gw_pipeline_t *pipeline;      // request checks and registry copy
    gw_bridge_t *bridge;          // broker link
    gw_auth_t *auth;              // handshake identity checks
    struct lws *bridge_wsi;       // the adopted bridge fd
    struct lws *stream_wsi;       // the adopted stream fd
    struct lws *upgrade_wsi;      // the upgrade accepted last, until its filter callback
    gw_conn_t *upgrade_conn;      // its connection (owned until then)
    ga_idmap_t *conns;            // conn id -> gw_conn_t
    gw_outpool_t *outpool;        // outbound frame blocks shared by the connections
    uint64_t next_conn_id;        // last id handed out
    ga_arena_t *arena;            // per-message arena
    ga_buf_t scratch;             // response JSON, reused
    ga_buf_t frame;               // outbound frame, reused
    ga_buf_t batch;               // several outbound WebSocket frames for one write, reused
    // The last relay push frame (s_on_relay), its length without the payload and the closing
    // bracket, and what it was encoded for: "s<join_ref>" or "n" (null), NUL, topic, NUL.
    ga_buf_t relay_frame;
    size_t relay_prefix;          // 0: nothing encoded yet
    ga_buf_t relay_key;
    ga_buf_t chunk_head;          // a stream chunk's frame up to its data (s_push_chunk)
    ga_buf_t chunk_tail;          // and after its data
    ga_buf_t chunk_key;           // the route both are for (join_ref, topic, request_id)
    lws_sorted_usec_list_t tick;  // bridge timer
    lws_sorted_usec_list_t kick;  // deferred bridge processing after sends
    bool kicked;                  // kick is scheduled
    bool destroying;              // the context is going: schedule nothing
    bool ready_announced;         // on_ready has been called
    gw_stats_t stats;             // counters
    gw_admin_t *admin;            // admin HTTP listener (metrics, health)
    struct lws *admin_wsi;        // its adopted fd, or NULL
};

// ---------------------------------------------------------------------------------------------
// Outbound

// Closes `conn` at its next WRITEABLE with `code` and `reason`.
static void
s_close_later(gw_conn_t *conn, int code, const char *reason)
{
    if (conn->close_code == 0) {
        conn->close_code = code;
        snprintf(conn->close_reason, sizeof conn->close_reason, "%s", reason);
    }
    gw_conn_clear_queue(conn);
    lws_callback_on_writable(conn->wsi);
}

static void s_bridge_kick(gw_server_t *self);

static void
s_send_frame(gw_server_t *self, gw_conn_t *conn, const ga_buf_t *frame)
{
    if (conn->close_code) {
        return;
    }
    // A connection with frames queued has asked for WRITEABLE already (s_on_writeable asks
    // again while any are left): ask only for the first.
    bool idle = conn->out_head == NULL;
    if (!gw_conn_enqueue(conn, frame->data, frame->len, LWS_PRE, (size_t) self->cfg->max_outbox,
                         (size_t) self->cfg->max_outbox_bytes)) {
        self->stats.slow_closed++;
        GA_NOTICE("closing slow consumer conn=%llu: outbound queue full",
                  (unsigned long long) conn->id);
        s_close_later(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer: queue full");
        // Cut off now, not when its socket finally drains: it leaves its relay groups.
        gw_bridge_group_drop(self->bridge, conn->id, NULL);
        s_bridge_kick(self);
        return;
    }
    if (idle) {
        lws_callback_on_writable(conn->wsi);
    }
}

static void
s_reply(gw_server_t *self, gw_conn_t *conn, const char *join_ref, const char *ref,
        const char *topic, const char *status, const char *response_json)
{
    ga_buf_reset(&self->frame);
    gw_phx_encode_reply(&self->frame, join_ref, ref, topic, status, response_json,
                        strlen(response_json));
    s_send_frame(self, conn, &self->frame);
}

// Sends a protocol-level error reply {"reason": reason}.
static void
s_reply_reason(gw_server_t *self, gw_conn_t *conn, const gw_phx_frame_t *f, const char *reason)
{
    ga_buf_reset(&self->scratch);
    ga_buf_append_str(&self->scratch, "{\"reason\":");
    ga_json_encode_str(&self->scratch, reason, strlen(reason));
    ga_buf_append_char(&self->scratch, '}');
    ga_buf_reset(&self->frame);
    gw_phx_encode_reply(&self->frame, f->join_ref, f->ref, f->topic, "error",
                        (const char *) self->scratch.data, self->scratch.len);
    s_send_frame(self, conn, &self->frame);
}

// Pushes a later message (async result, stream chunk) on the API event.
static void
s_push(gw_server_t *self, gw_conn_t *conn, const char *join_ref, const char *topic,
       const gw_response_t *resp)
{
    ga_buf_reset(&self->scratch);
    gw_response_encode(resp, &self->scratch);
    ga_buf_reset(&self->frame);
    gw_phx_encode(&self->frame, join_ref, NULL, topic, self->cfg->api_event,
                  (const char *) self->scratch.data, self->scratch.len);
    s_send_frame(self, conn, &self->frame);
}

// Delivers a response for the push (join_ref, ref, topic) per the delivery setting.
static void
s_deliver(gw_server_t *self, gw_conn_t *conn, const char *join_ref, const char *ref,
          const char *topic, const gw_response_t *resp)
{
    ga_buf_reset(&self->scratch);
    gw_response_encode(resp, &self->scratch);
    gw_delivery_t mode = self->cfg->delivery;
    ga_buf_reset(&self->frame);
    if (mode == GW_DELIVER_PUSH) {
        gw_phx_encode_reply(&self->frame, join_ref, ref, topic, "ok", "{}", 2);
    } else {
        gw_phx_encode_reply(&self->frame, join_ref, ref, topic, "ok",
                            (const char *) self->scratch.data, self->scratch.len);
    }
    s_send_frame(self, conn, &self->frame);
    if (mode != GW_DELIVER_REPLY) {
        ga_buf_reset(&self->frame);
        gw_phx_encode(&self->frame, join_ref, NULL, topic, self->cfg->api_event,
                      (const char *) self->scratch.data, self->scratch.len);
        s_send_frame(self, conn, &self->frame);
    }
}

// ---------------------------------------------------------------------------------------------
// Bridge callbacks

static void s_on_message(gw_server_t *self, gw_conn_t *conn, const char *text, size_t len);

static void
s_on_kick(lws_sorted_usec_list_t *sul)
{
    gw_server_t *self = lws_container_of(sul, gw_server_t, kick);
    self->kicked = false;
    gw_bridge_process(self->bridge);
}

// ZMQ_FD is edge-triggered: a send can consume the readiness of messages that arrived
// meanwhile, so the bridge must be drained after sending. Doing it once per loop iteration,
// rather than after every send, saves the socket checks (each a few system calls) that a
// burst of requests would otherwise pay one by one.
static void
s_bridge_kick(gw_server_t *self)
{
    if (!self->kicked && !self->destroying) {
        self->kicked = true;
        lws_sul_schedule(self->context, 0, &self->kick, s_on_kick, 1);
    }
}

// Logs an address that has just become throttled, once per window.
static void
s_note_refusal(gw_server_t *self, const char *ip, int64_t now)
{
    if (gw_auth_note_refusal(self->auth, ip, now)) {
        GA_NOTICE("auth: %d refused handshakes from ip=%s in %d s: its further refusals are "
                  "answered 429 until the window ends; valid and anonymous connections pass",
                  GW_AUTH_REFUSALS_MAX, ip, GW_AUTH_WINDOW_MS / 1000);
    }
}

// The identity service answered for a new connection: {user_id, roles?, device_id?} allows
// it; an error or anything else refuses it. Held frames are then processed in order.
static void
s_on_auth_result(gw_server_t *self, gw_conn_t *conn, const ga_value_t *body)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    const ga_value_t *result = ga_map_get(body, "result");
    const char *user = ga_map_get_str(result, "user_id");
    if (ok == NULL || ok->type != GA_BOOL || !ok->u.b || user == NULL || user[0] == '\0') {
        self->stats.auth_refused++;
        GA_EMIT(GA_EV_CONNECTION_AUTH_FAILURE, .reason = "refused by the identity service");
        s_note_refusal(self, conn->ip, ga_clock_ms());
        GA_INFO("connection refused by the identity service conn=%llu ip=%s",
                (unsigned long long) conn->id, conn->ip);
        s_close_later(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, "authentication refused");
        return;
    }
    gw_auth_identity_t id = {.user_id = ga_strdup(user)};
    const char *device = ga_map_get_str(result, "device_id");
    for (size_t i = 0; device == NULL && i < conn->n_params; i++) {
        if (strncmp(conn->params[i], "device_id=", 10) == 0) {
            device = conn->params[i] + 10; // the connect param, as with jwt
        }
    }
    id.device_id = device ? ga_strdup(device) : NULL;
    const ga_value_t *roles = ga_map_get(result, "roles");
    for (uint32_t i = 0; roles && roles->type == GA_ARRAY && i < roles->len &&
                         id.n_roles < GW_AUTH_MAX_ROLES;
         i++) {
        if (roles->u.items[i].type == GA_STR) {
            id.roles[id.n_roles++] = ga_strdup(roles->u.items[i].u.s);
        }
    }
    gw_conn_set_identity(conn, &id);
    conn->auth_pending = false;
    gw_conn_clear_params(conn);
    gw_out_t *held;
    while ((held = gw_conn_unhold(conn)) != NULL) {
        s_on_message(self, conn, (const char *) held->data, held->len);
        ga_free(held);
    }
}

// Asks the identity service about a new connection (auth mode service).
static void
s_start_auth(gw_server_t *self, gw_conn_t *conn)
{
    ga_arena_t *a = self->arena;
    const char *name = self->cfg->auth_service ? self->cfg->auth_service : "";
    const char *dot = strchr(name, '.');
    ga_value_t params = ga_map(a, (uint32_t) conn->n_params);
    for (size_t i = 0; i < conn->n_params; i++) {
        char *eq = strchr(conn->params[i], '=');
        if (eq && strncmp(conn->params[i], "vsn=", 4) != 0) {
            ga_map_put(&params, a, ga_arena_strndup(a, conn->params[i], (size_t) (eq - conn->params[i])),
                       ga_str(eq + 1));
        }
    }
    ga_value_t args = ga_map(a, 2);
    ga_map_put(&args, a, "params", params);
    ga_map_put(&args, a, "ip", ga_str(conn->ip));
    char request_id[48];
    snprintf(request_id, sizeof request_id, "auth-%llu", (unsigned long long) conn->id);
    gw_call_t call = {
        .request_id = request_id,
        .service = dot ? ga_arena_strndup(a, name, (size_t) (dot - name)) : name,
        .request_type = dot ? dot + 1 : "",
        .args = args,
        .response_type = GA_RESP_SYNC,
        .timeout_ms = GW_AUTH_TIMEOUT_MS,
        .who = &conn->who,
    };
    gw_route_t route = {.kind = GW_ROUTE_AUTH, .conn_id = conn->id, .request_id = request_id};
    if (dot == NULL || gw_bridge_call(self->bridge, &call, &route) != GA_OK) {
        s_close_later(conn, GW_CLOSE_TRY_AGAIN_LATER, "authentication unavailable");
    }
    s_bridge_kick(self);
    ga_arena_reset(a);
}

// The connection a result is for, when it is still joined to the same channel join: a client
// that left (or re-joined) gets nothing for the old join, as on a Phoenix server.
static gw_conn_t *
s_route_conn(gw_server_t *self, const gw_route_t *route)
{
    gw_conn_t *conn = ga_idmap_get(self->conns, route->conn_id);
    gw_channel_t *ch = conn ? gw_conn_channel(conn, route->topic) : NULL;
    bool same_join = ch && ((ch->join_ref == NULL && route->join_ref == NULL) ||
                            (ch->join_ref && route->join_ref &&
                             strcmp(ch->join_ref, route->join_ref) == 0));
    if (!same_join) {
        self->stats.undelivered++;
        return NULL;
    }
    return conn;
}

// The broker's answer to joining "chat:GROUP" (docs/protocol.md, "Relay groups"): the join's
// reply, ok with {group_id, state}, or an error with the precise reason (the channel is then
// not joined).
static void
s_on_relay_join(gw_server_t *self, const gw_route_t *route, const ga_value_t *body)
{
    gw_conn_t *conn = s_route_conn(self, route);
    if (conn == NULL) {
        return;
    }
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok && ok->type == GA_BOOL && ok->u.b) {
        const ga_value_t *result = ga_map_get(body, "result");
        ga_buf_reset(&self->scratch);
        if (result) {
            ga_json_encode(&self->scratch, result);
        } else {
            ga_buf_append_str(&self->scratch, "{}");
        }
        ga_buf_append_char(&self->scratch, '\0');
        s_reply(self, conn, route->join_ref, route->ref, route->topic, "ok",
                (const char *) self->scratch.data);
        return;
    }
    const char *error = ga_map_get_str(body, "error");
    gw_phx_frame_t f = {.join_ref = route->join_ref, .ref = route->ref, .topic = route->topic};
    s_reply_reason(self, conn, &f, error ? error : "Service unavailable");
    GA_IGNORE(gw_conn_leave(conn, route->topic)); // joined: s_route_conn found it
}

// A relay message (or gap notice) for a member on this gateway: pushed on the channel through
// which it joined the group, when that channel is still joined.
static void
s_on_relay(void *arg, uint64_t conn_id, const char *topic, const gw_response_t *resp,
           const char *json, size_t len)
{
    gw_server_t *self = arg;
    (void) resp; // already encoded in `json`, once for every member
    gw_conn_t *conn = ga_idmap_get(self->conns, conn_id);
    gw_channel_t *ch = conn ? gw_conn_channel(conn, topic) : NULL;
    if (ch == NULL) {
        self->stats.undelivered++;
        return;
    }
    // Only join_ref and topic differ between the members' frames, and the members of a group
    // mostly share both: the previous member's frame is sent again when they and the payload
    // match, instead of encoding the same bytes once per member.
    ga_buf_t *f = &self->relay_frame;
    char tag = ch->join_ref ? 's' : 'n';
    const char *join_ref = ch->join_ref ? ch->join_ref : "";
    size_t jlen = strlen(join_ref);
    size_t tlen = strlen(topic);
    const uint8_t *k = self->relay_key.data;
    bool same = self->relay_prefix > 0 && f->len == self->relay_prefix + len + 1 &&
                self->relay_key.len == jlen + tlen + 3 && k[0] == (uint8_t) tag &&
                memcmp(k + 1, join_ref, jlen) == 0 && memcmp(k + 2 + jlen, topic, tlen) == 0 &&
                memcmp(f->data + self->relay_prefix, json, len) == 0;
    if (!same) {
        ga_buf_reset(f);
        gw_phx_encode(f, ch->join_ref, NULL, topic, self->cfg->api_event, json, len);
        self->relay_prefix = f->len - len - 1;
        ga_buf_reset(&self->relay_key);
        ga_buf_append_char(&self->relay_key, tag);
        ga_buf_append(&self->relay_key, join_ref, jlen + 1); // with its NUL
        ga_buf_append(&self->relay_key, topic, tlen + 1);
    }
    s_send_frame(self, conn, f);
}

static void
s_on_result(void *arg, const gw_route_t *route, const ga_value_t *body)
{
    gw_server_t *self = arg;
    gw_conn_t *conn = ga_idmap_get(self->conns, route->conn_id);
    if (route->kind == GW_ROUTE_AUTH) {
        if (conn && conn->auth_pending) {
            s_on_auth_result(self, conn, body);
        }
        return;
    }
    if (route->kind == GW_ROUTE_JOIN) {
        s_on_relay_join(self, route, body);
        return;
    }
    conn = s_route_conn(self, route);
    if (conn == NULL) {
        return;
    }
    gw_tm_request_result(route, body);
    if (route->type == GA_RESP_NONE) {
        return; // fire and forget: a denial by a permission callback is not heard either
    }
    gw_response_t resp;
    gw_pipeline_result(self->pipeline, body, route->request_id, &resp);
    if (route->type == GA_RESP_SYNC || route->checking) {
        // A sync answer, or a permission callback's denial before any acknowledgement.
        s_deliver(self, conn, route->join_ref, route->ref, route->topic, &resp);
    } else {
        // Acknowledged already: the outcome is a push (an error inside a stream is async).
        gw_response_pushed(&resp, route->type);
        s_push(self, conn, route->join_ref, route->topic, &resp);
    }
}

// A permission callback allowed an async or stream call and it was sent: acknowledge it now.
static void
s_on_accept(void *arg, const gw_route_t *route)
{
    gw_server_t *self = arg;
    gw_conn_t *conn = s_route_conn(self, route);
    if (conn == NULL) {
        return;
    }
    gw_response_t resp = gw_response_ack(route->request_id, route->type);
    s_deliver(self, conn, route->join_ref, route->ref, route->topic, &resp);
}

// Whether `key` holds the strings `fields` (each NULL or not), as s_chunk_key wrote them.
static bool
s_chunk_key_is(const ga_buf_t *key, const char *const *fields, int n)
{
    const uint8_t *p = key->data;
    const uint8_t *end = p + key->len;
    for (int i = 0; i < n; i++) {
        if (p == NULL || p >= end || (*p++ == 0) != (fields[i] == NULL)) {
            return false;
        }
        if (fields[i]) {
            size_t len = strlen(fields[i]) + 1;
            if ((size_t) (end - p) < len || memcmp(p, fields[i], len) != 0) {
                return false;
            }
            p += len;
        }
    }
    return p == end;
}

static void
s_chunk_key(ga_buf_t *key, const char *const *fields, int n)
{
    ga_buf_reset(key);
    for (int i = 0; i < n; i++) {
        ga_buf_append_char(key, fields[i] ? 1 : 0);
        if (fields[i]) {
            ga_buf_append(key, fields[i], strlen(fields[i]) + 1);
        }
    }
}

// Pushes a stream chunk: the frame s_push would write, built from the parts around the data,
// which are the same for every chunk of a stream and so encoded once per stream (for the
// stream of the last chunk pushed: a batch's chunks come one after another).
static void
s_push_chunk(gw_server_t *self, gw_conn_t *conn, const gw_route_t *route,
             const gw_response_t *resp)
{
    const char *fields[] = {route->join_ref, route->topic, route->request_id};
    if (!s_chunk_key_is(&self->chunk_key, fields, 3)) {
        ga_buf_reset(&self->chunk_head);
        gw_phx_encode(&self->chunk_head, route->join_ref, NULL, route->topic,
                      self->cfg->api_event, "", 0);
        self->chunk_head.len--; // the closing ']': the payload goes there
        gw_response_encode_head(resp, &self->chunk_head);
        ga_buf_reset(&self->chunk_tail);
        gw_response_encode_tail(resp, &self->chunk_tail);
        ga_buf_append_char(&self->chunk_tail, ']');
        s_chunk_key(&self->chunk_key, fields, 3);
    }
    ga_buf_t *f = &self->frame;
    ga_buf_reset(f);
    ga_buf_append(f, self->chunk_head.data, self->chunk_head.len);
    if (resp->result) {
        ga_json_encode(f, resp->result);
    } else {
        ga_buf_append(f, "null", 4);
    }
    ga_buf_append(f, self->chunk_tail.data, self->chunk_tail.len);
    s_send_frame(self, conn, f);
}

static void
s_on_stream(void *arg, const gw_route_t *route, const ga_value_t *body)
{
    gw_server_t *self = arg;
    gw_conn_t *conn = s_route_conn(self, route);
    if (conn == NULL) {
        return;
    }
    gw_response_t resp;
    gw_response_stream(body, route->request_id, &resp);
    if (resp.kind == GW_KIND_CHUNK) {
        s_push_chunk(self, conn, route, &resp);
        return;
    }
    gw_tm_request_stop(route, resp.success);
    s_push(self, conn, route->join_ref, route->topic, &resp);
}

// The server's own counters for /metrics.
static void
s_admin_stats(void *arg, ga_buf_t *out)
{
    gw_server_t *self = arg;
    const gw_stats_t *s = &self->stats;
    ga_metrics_put(out, "genapi_gateway_connections_accepted_total", "counter",
                   "WebSocket connections accepted.", (double) s->connections);
    ga_metrics_put(out, "genapi_gateway_frames_in_total", "counter", "Inbound messages.",
                   (double) s->frames_in);
    ga_metrics_put(out, "genapi_gateway_malformed_total", "counter",
                   "Messages refused as malformed.", (double) s->malformed);
    ga_metrics_put(out, "genapi_gateway_requests_received_total", "counter",
                   "API requests received.", (double) s->requests);
    ga_metrics_put(out, "genapi_gateway_slow_closed_total", "counter",
                   "Connections closed for a full outbound queue.", (double) s->slow_closed);
    ga_metrics_put(out, "genapi_gateway_auth_refused_total", "counter",
                   "Handshakes refused for identity.", (double) s->auth_refused);
    ga_metrics_put(out, "genapi_gateway_connections_open", "gauge", "Connections open.",
                   (double) ga_idmap_size(self->conns));
}

static void
s_on_registry(void *arg, bool snapshot)
{
    gw_server_t *self = arg;
    if (snapshot && !self->ready_announced) {
        self->ready_announced = true;
        if (self->cfg->on_ready) {
            self->cfg->on_ready(self->port, self->cfg->on_ready_arg);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inbound

static bool
s_topic_allowed(const char *patterns, const char *topic)
{
    const char *p = patterns;
    size_t tlen = strlen(topic);
    while (*p) {
        while (*p == ',' || *p == ' ') {
            p++;
        }
        size_t n = strcspn(p, ", ");
        if (n == 0) {
            break;
        }
        if (p[n - 1] == '*') {
            if (tlen >= n - 1 && strncmp(p, topic, n - 1) == 0) {
                return true;
            }
        } else if (n == tlen && strncmp(p, topic, n) == 0) {
            return true;
        }
        p += n;
    }
    return false;
}

static void
s_on_api(gw_server_t *self, gw_conn_t *conn, const gw_phx_frame_t *f)
{
    self->stats.requests++;
    gw_call_t call;
    gw_response_t resp;
    if (gw_pipeline_prepare(self->pipeline, &conn->who, f->payload, self->arena, &call, &resp) !=
        GA_OK) {
        // A `none` function's callers hear nothing, refusals included; a request that does
        // not identify a function is answered (its type is unknown).
        GA_EMIT(GA_EV_EXECUTOR_REQUEST_EXCEPTION, .service = call.service, .request_type = call.request_type, .request_id = call.request_id, .reason = gw_tm_reason(resp.error, resp.retry_after_ms), .success = GA_TM_FALSE);
        if (call.response_type != GA_RESP_NONE) {
            s_deliver(self, conn, f->join_ref, f->ref, f->topic, &resp);
        }
        return;
    }
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_START, .service = call.service, .request_type = call.request_type, .version = call.version, .request_id = call.request_id, .response_type = ga_resp_name(call.response_type));
    GA_DEBUG("call %s.%s request_id=%s conn=%llu", call.service, call.request_type,
             call.request_id ? call.request_id : "-", (unsigned long long) conn->id);
    int64_t started_us = gw_tm_start_us();
    gw_route_t route = {.type = call.response_type,
                        .service = started_us ? call.service : NULL,
                        .request_type = started_us ? call.request_type : NULL,
                        .started_us = started_us,
                        .conn_id = conn->id,
                        .join_ref = f->join_ref,
                        .ref = f->ref,
                        .topic = f->topic,
                        .request_id = call.request_id};
    ga_err_t rc;
    gw_call_t check;
    const char *relay_op = gw_relay_op(call.service, call.request_type);
    if (self->draining) {
        rc = GA_EUNAVAIL; // stopping: calls in flight finish, new ones go elsewhere
    } else if (relay_op) {
        // A relay built-in (gateway/gw_relay.c): checked above like any function, decided by
        // the broker's group registry for the connection's own user.
        rc = gw_bridge_group(self->bridge, relay_op, ga_map_get_str(&call.args, "group_id"),
                             conn->who.user_id ? conn->who.user_id : "", &call.args, &route,
                             call.timeout_ms);
    } else if (call.permission_callback == NULL) {
        rc = gw_bridge_call(self->bridge, &call, &route);
    } else if (gw_pipeline_check_call(&conn->who, &call, self->arena, &check)) {
        rc = gw_bridge_call_checked(self->bridge, &check, &call, &route);
    } else {
        GA_EMIT(GA_EV_EXECUTOR_REQUEST_EXCEPTION, .service = call.service, .request_type = call.request_type, .request_id = call.request_id, .reason = "permission_denied", .success = GA_TM_FALSE);
        if (call.response_type != GA_RESP_NONE) {
            gw_response_error(&resp, call.request_id, "Permission denied", false);
            s_deliver(self, conn, f->join_ref, f->ref, f->topic, &resp);
        }
        return;
    }
    if (rc != GA_OK) {
        GA_EMIT(GA_EV_EXECUTOR_REQUEST_EXCEPTION, .service = call.service, .request_type = call.request_type, .request_id = call.request_id, .reason = rc == GA_EUNAVAIL ? "unavailable" : "overloaded", .success = GA_TM_FALSE);
    }
    if (call.response_type == GA_RESP_NONE) {
        // Fire and forget: the client hears nothing, errors included.
    } else if (rc == GA_EUNAVAIL) {
        gw_response_error(&resp, call.request_id, "Service unavailable", true);
        s_deliver(self, conn, f->join_ref, f->ref, f->topic, &resp);
    } else if (rc != GA_OK) {
        gw_response_error(&resp, call.request_id, "Too many requests in flight", true);
        s_deliver(self, conn, f->join_ref, f->ref, f->topic, &resp);
    } else if (call.response_type != GA_RESP_SYNC && call.permission_callback == NULL &&
               call.before_execute == NULL) {
        // async: accepted, the result follows as a push; stream: started, chunks follow. With
        // a permission callback or a before hook the acknowledgement waits for their answers
        // (s_on_accept).
        resp = gw_response_ack(call.request_id, call.response_type);
        s_deliver(self, conn, f->join_ref, f->ref, f->topic, &resp);
    }
    s_bridge_kick(self);
}

// Ends the join on `topic`, as a Phoenix server ends a channel: its streams are stopped (the
// workers are told), results still due for it are dropped, and the client gets
// [join_ref, join_ref, topic, "phx_close", {}] for that join.
static void
s_close_channel(gw_server_t *self, gw_conn_t *conn, const char *topic)
{
    gw_channel_t *ch = gw_conn_channel(conn, topic);
    if (ch == NULL) {
        return;
    }
    gw_bridge_stop_conn(self->bridge, conn->id, topic);
    gw_bridge_group_drop(self->bridge, conn->id, topic); // its relay memberships through it
    s_bridge_kick(self);
    ga_buf_reset(&self->frame);
    gw_phx_encode(&self->frame, ch->join_ref, ch->join_ref, topic, "phx_close", "{}", 2);
    s_send_frame(self, conn, &self->frame);
    GA_IGNORE(gw_conn_leave(conn, topic)); // joined: found just above
}

// Joining "chat:GROUP" joins relay group GROUP (docs/protocol.md, "Relay groups"): the
// channel is joined now and the reply waits for the broker (s_on_relay_join); a refusal
// leaves the channel again.
static void
s_relay_join(gw_server_t *self, gw_conn_t *conn, const gw_phx_frame_t *f)
{
    const char *group = f->topic + strlen(GW_RELAY_CHANNEL);
    const char *why = NULL;
    if (conn->who.user_id == NULL) {
        why = "Authentication required";
    } else if (group[0] == '\0') {
        why = "group not found";
    } else {
        gw_route_t route = {.kind = GW_ROUTE_JOIN,
                            .type = GA_RESP_SYNC,
                            .conn_id = conn->id,
                            .join_ref = f->join_ref,
                            .ref = f->ref,
                            .topic = f->topic,
                            .request_id = f->ref};
        ga_err_t rc = gw_bridge_group(self->bridge, "join", group, conn->who.user_id, NULL,
                                      &route, GA_FUNCFG_TIMEOUT_DEFAULT);
        why = rc == GA_OK         ? NULL
              : rc == GA_EUNAVAIL ? "Service unavailable"
                                  : "Too many requests in flight";
        s_bridge_kick(self);
    }
    if (why) {
        s_reply_reason(self, conn, f, why);
        GA_IGNORE(gw_conn_leave(conn, f->topic)); // joined just before
    }
}

static void
s_on_message(gw_server_t *self, gw_conn_t *conn, const char *text, size_t len)
{
    if (conn->auth_pending) {
        if (!gw_conn_hold(conn, text, len, GW_HELD_MAX)) {
            s_close_later(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                          "too many frames before authentication");
        }
        return;
    }
    self->stats.frames_in++;
    gw_phx_frame_t f;
    char err[256];
    if (gw_phx_decode(text, len, self->arena, &f, err, sizeof err) != GA_OK) {
        self->stats.malformed++;
        ga_buf_reset(&self->scratch);
        ga_buf_append_str(&self->scratch, "{\"reason\":");
        ga_json_encode_str(&self->scratch, err, strlen(err));
        ga_buf_append_char(&self->scratch, '}');
        ga_buf_reset(&self->frame);
        gw_phx_encode(&self->frame, NULL, NULL, "phoenix", "phx_error",
                      (const char *) self->scratch.data, self->scratch.len);
        s_send_frame(self, conn, &self->frame);
        return;
    }
    if (strcmp(f.topic, "phoenix") == 0) {
        if (strcmp(f.event, "heartbeat") == 0) {
            s_reply(self, conn, NULL, f.ref, "phoenix", "ok", "{}");
        } else {
            s_reply_reason(self, conn, &f, "unknown event");
        }
        return;
    }
    if (strcmp(f.event, "phx_join") == 0) {
        if (!s_topic_allowed(self->cfg->topics, f.topic)) {
            s_reply_reason(self, conn, &f, "unmatched topic");
            return;
        }
        if (gw_conn_channel(conn, f.topic)) {
            s_close_channel(self, conn, f.topic); // a duplicate join replaces the old one
        }
        if (!gw_conn_join(conn, f.topic, f.join_ref, (size_t) self->cfg->max_channels)) {
            s_reply_reason(self, conn, &f, "too many channels");
        } else if (strncmp(f.topic, GW_RELAY_CHANNEL, strlen(GW_RELAY_CHANNEL)) == 0) {
            s_relay_join(self, conn, &f); // answered when the broker has decided
        } else {
            s_reply(self, conn, f.join_ref, f.ref, f.topic, "ok", "{}");
            GA_EMIT(GA_EV_CONNECTION_JOIN, .topic = f.topic);
        }
        return;
    }
    gw_channel_t *ch = gw_conn_channel(conn, f.topic);
    if (strcmp(f.event, "phx_leave") == 0) {
        // Answered ok whether joined or not, as a Phoenix server does; the join it names (or
        // a join with a null join_ref) is then closed. A leave naming an older join of the
        // topic leaves the current one alone.
        bool current = ch && (ch->join_ref == NULL ||
                              (f.join_ref && strcmp(ch->join_ref, f.join_ref) == 0));
        s_reply(self, conn, f.join_ref, f.ref, f.topic, "ok", "{}");
        if (current) {
            s_close_channel(self, conn, f.topic);
        }
        return;
    }
    if (ch == NULL) {
        s_reply_reason(self, conn, &f, "unmatched topic");
        return;
    }
    if (strcmp(f.event, self->cfg->api_event) == 0) {
        s_on_api(self, conn, &f);
        return;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "unknown event: %.100s", f.event);
    s_reply_reason(self, conn, &f, reason);
}

static int
s_on_receive(gw_server_t *self, struct lws *wsi, gw_conn_t *conn, const void *in, size_t len)
{
    if (conn->close_code) {
        return 0; // closing: ignore the rest
    }
    if (lws_frame_is_binary(wsi)) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                         (unsigned char *) "binary frames are not supported", 31);
        return -1;
    }
    size_t remaining = lws_remaining_packet_payload(wsi);
    size_t total = conn->rx.len + len + remaining;
    if (total > (size_t) self->cfg->max_payload_bytes) {
        self->stats.oversized++;
        char reason[64];
        int n = snprintf(reason, sizeof reason, "message exceeds %lld bytes",
                         (long long) self->cfg->max_payload_bytes);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *) reason,
                         (size_t) n);
        return -1;
    }
    bool whole = remaining == 0 && lws_is_final_fragment(wsi);
    if (whole && conn->rx.len == 0) {
        s_on_message(self, conn, in, len); // the common case: no copy
    } else {
        ga_buf_append(&conn->rx, in, len);
        if (whole) {
            s_on_message(self, conn, (const char *) conn->rx.data, conn->rx.len);
            ga_buf_reset(&conn->rx);
            if (conn->rx.cap > 16384) {
                ga_buf_fini(&conn->rx); // do not keep a large buffer on an idle connection
            }
        }
    }
    ga_arena_reset(self->arena);
    return 0;
}

// Appends one unmasked, unfragmented server-to-client text frame (RFC 6455 section 5.2).
static void
s_append_ws_frame(ga_buf_t *buf, const uint8_t *payload, size_t len)
{
    uint8_t head[10] = {0x81}; // FIN + text
    size_t n = 2;
    if (len < 126) {
        head[1] = (uint8_t) len;
    } else if (len <= 0xffff) {
        head[1] = 126;
        head[2] = (uint8_t) (len >> 8);
        head[3] = (uint8_t) len;
        n = 4;
    } else {
        head[1] = 127;
        for (int i = 0; i < 8; i++) {
            head[2 + i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
        n = 10;
    }
    ga_buf_append(buf, head, n);
    ga_buf_append(buf, payload, len);
}

static int
s_on_writeable(gw_server_t *self, struct lws *wsi, gw_conn_t *conn)
{
    if (conn->close_code) {
        lws_close_reason(wsi, (enum lws_close_status) conn->close_code,
                         (unsigned char *) conn->close_reason, strlen(conn->close_reason));
        return -1;
    }
    gw_out_t *out = gw_conn_dequeue(conn);
    if (out == NULL) {
        return 0;
    }
    int n;
    if (conn->out_head == NULL) {
        n = lws_write(wsi, out->data + LWS_PRE, out->len, LWS_WRITE_TEXT);
        gw_conn_release(conn, out);
    } else {
        // Several frames are waiting (replies to pipelined requests, stream chunks): frame them
        // here and hand them to the socket in one write, one system call instead of one each.
        // LWS_WRITE_RAW sends bytes as they are; a partial send is buffered by libwebsockets,
        // which calls WRITEABLE again only once it is out, so frames are never interleaved.
        ga_buf_t *b = &self->batch;
        ga_buf_reset(b);
        ga_buf_reserve(b, LWS_PRE);
        b->len = LWS_PRE;
        do {
            s_append_ws_frame(b, out->data + LWS_PRE, out->len);
            gw_conn_release(conn, out);
        } while (b->len < GW_BATCH_BYTES && (out = gw_conn_dequeue(conn)) != NULL);
        n = lws_write(wsi, b->data + LWS_PRE, b->len - LWS_PRE, LWS_WRITE_RAW);
        if (b->cap > 4 * GW_BATCH_BYTES) {
            ga_buf_fini(b); // one large frame passed through: do not keep its buffer
            ga_buf_init(b);
        }
    }
    if (n < 0) {
        return -1;
    }
    if (conn->out_head) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// libwebsockets callbacks

// The peer's address: X-Forwarded-For (its last entry) only when the TCP peer is a trusted
// proxy, so a client cannot choose its own address.
static void
s_peer_address(const gw_server_t *self, struct lws *wsi, char *ip, size_t len)
{
    lws_get_peer_simple(wsi, ip, len);
    const char *trusted = self->cfg->trusted_proxies;
    if (trusted == NULL || trusted[0] == '\0') {
        return;
    }
    size_t n = strlen(ip);
    bool is_trusted = false;
    for (const char *p = trusted; *p && !is_trusted; p += strcspn(p, ",")) {
        p += strspn(p, ", ");
        size_t k = strcspn(p, ", ");
        is_trusted = k == n && k > 0 && strncmp(p, ip, n) == 0;
    }
    char xff[256];
    if (!is_trusted || lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR) <= 0) {
        return;
    }
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    last += strspn(last, " ");
    if (*last) {
        snprintf(ip, len, "%.*s", (int) strcspn(last, " "), last);
    }
}

// Refuses an upgrade with an HTTP status and a one-line body saying why; the connection is
// then closed (the response is a few hundred bytes: the socket takes it at once).
static int
s_refuse_upgrade(struct lws *wsi, unsigned int status, const char *why)
{
    GA_IGNORE(lws_return_http_status(wsi, status, why)); // closing either way
    return -1;
}

// Whether the handshake's Origin is acceptable: any when allowed_origins is empty; otherwise
// one of its entries exactly. A handshake without Origin passes: browsers always send it on a
// WebSocket handshake, so its absence means a non-browser client, which cross-site WebSocket
// hijacking (what the list stops) cannot involve (docs/security.md, "The WebSocket edge").
static bool
s_origin_allowed(const gw_server_t *self, struct lws *wsi)
{
    const char *allowed = self->cfg->allowed_origins;
    if (allowed == NULL || allowed[0] == '\0' || lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0) {
        return true;
    }
    char origin[256];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0) {
        return false; // longer than any origin worth listing
    }
    for (const char *p = allowed; *p; p += strcspn(p, ",")) {
        p += strspn(p, ", ");
        size_t k = strcspn(p, ", ");
        if (k > 0 && k == (size_t) n && strncmp(p, origin, k) == 0) {
            return true;
        }
    }
    return false;
}

// Finds URL argument `name` ("vsn="): GA_OK with `*value` pointing into `buf`, GA_ENOTFOUND
// when absent, GA_ETOOBIG when present but longer than `len` (never taken as absent). Unlike
// lws_get_urlarg_by_name, which stops at the first argument too long for its buffer, a long
// argument before it (a token) does not hide it.
static ga_err_t
s_urlarg(struct lws *wsi, const char *name, char *buf, int len, const char **value)
{
    size_t n = strlen(name);
    *value = NULL;
    for (int i = 0;; i++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen <= 0) {
            return GA_ENOTFOUND;
        }
        char *frag = flen < len ? buf : ga_malloc((size_t) flen + 1); // rare: a long argument
        bool match = lws_hdr_copy_fragment(wsi, frag, flen + 1, WSI_TOKEN_HTTP_URI_ARGS, i) > 0 &&
                     strncmp(frag, name, n) == 0;
        if (frag != buf) {
            ga_free(frag);
            if (match) {
                return GA_ETOOBIG;
            }
        } else if (match) {
            *value = buf + n;
            return GA_OK;
        }
    }
}

// Decides a WebSocket upgrade (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, where an HTTP answer can
// still be sent): the Origin (403), the path (404), vsn (400), the connection limit (503), then
// identity (401, or 429 from an address refused too often lately). An accepted upgrade's connection is kept
// for the FILTER_PROTOCOL_CONNECTION callback that follows for the same wsi.
static int
s_on_upgrade(gw_server_t *self, struct lws *wsi)
{
    gw_conn_destroy(&self->upgrade_conn); // an earlier upgrade that went no further
    self->upgrade_wsi = NULL;
    if (self->draining) {
        return s_refuse_upgrade(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
                                "draining: this gateway is stopping, connect to another");
    }
    if (!s_origin_allowed(self, wsi)) {
        char ip[64] = "";
        s_peer_address(self, wsi, ip, sizeof ip);
        GA_INFO("connection refused: origin not allowed ip=%s", ip);
        return s_refuse_upgrade(wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed");
    }
    char uri[128];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, GW_WS_PATH) != 0) {
        return s_refuse_upgrade(wsi, HTTP_STATUS_NOT_FOUND, "not found: use " GW_WS_PATH);
    }
    char vsn_buf[32];
    const char *vsn;
    if (s_urlarg(wsi, "vsn=", vsn_buf, (int) sizeof vsn_buf, &vsn) != GA_OK ||
        strcmp(vsn, GW_PHX_VSN) != 0) {
        return s_refuse_upgrade(wsi, HTTP_STATUS_BAD_REQUEST,
                                "vsn=" GW_PHX_VSN " required (Phoenix serializer V2)");
    }
    if ((int64_t) ga_idmap_size(self->conns) >= self->cfg->max_connections) {
        GA_WARN("connection refused: %lld connections open",
                (long long) self->cfg->max_connections);
        return s_refuse_upgrade(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "too many connections");
    }
    char ip[64] = "";
    s_peer_address(self, wsi, ip, sizeof ip);
    int64_t now = ga_clock_ms();
    char token_buf[8300];
    char device_buf[160];
    const char *token;
    const char *device;
    ga_err_t token_rc = s_urlarg(wsi, "token=", token_buf, (int) sizeof token_buf, &token);
    if (s_urlarg(wsi, "device_id=", device_buf, (int) sizeof device_buf, &device) == GA_ETOOBIG) {
        return s_refuse_upgrade(wsi, HTTP_STATUS_BAD_REQUEST, "device_id too long");
    }
    gw_auth_identity_t id;
    char why[128] = "token too long";
    // Every token is checked, even from a throttled address: a valid one must pass there too.
    if ((token_rc == GA_ETOOBIG && self->cfg->auth.mode == GW_AUTH_JWT) ||
        gw_auth_verify(self->auth, token, ga_clock_wall_ms() / 1000, &id, why, sizeof why) !=
            GA_OK) {
        self->stats.auth_refused++;
        GA_EMIT(GA_EV_CONNECTION_AUTH_FAILURE, .reason = why);
        bool throttled = gw_auth_is_throttled(self->auth, ip, now);
        s_note_refusal(self, ip, now);
        if (throttled) {
            return s_refuse_upgrade(wsi, GW_HTTP_TOO_MANY_REQUESTS, "too many refused handshakes");
        }
        GA_INFO("connection refused: %s ip=%s", why, ip);
        return s_refuse_upgrade(wsi, HTTP_STATUS_UNAUTHORIZED, why);
    }
    if (id.device_id == NULL && device && device[0]) {
        id.device_id = ga_strdup(device);
    }
    gw_conn_t *conn = gw_conn_new(++self->next_conn_id, wsi, ip);
    conn->pool = self->outpool;
    gw_conn_set_identity(conn, &id);
    if (self->cfg->auth.mode == GW_AUTH_SERVICE) {
        conn->auth_pending = true;
        conn->params = ga_calloc(GW_PARAMS_MAX, sizeof(char *));
        // Each "name=value" up to the size of a token; a longer one is left out, the rest kept.
        int flen;
        for (int i = 0; conn->n_params < GW_PARAMS_MAX &&
                        (flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i)) > 0;
             i++) {
            if (flen < (int) sizeof token_buf &&
                lws_hdr_copy_fragment(wsi, token_buf, (int) sizeof token_buf,
                                      WSI_TOKEN_HTTP_URI_ARGS, i) > 0) {
                conn->params[conn->n_params++] = ga_strdup(token_buf);
            }
        }
    }
    self->upgrade_wsi = wsi;
    self->upgrade_conn = conn;
    return 0;
}

// Binds the connection decided by s_on_upgrade to the wsi's per-session slot.
static int
s_on_handshake(gw_server_t *self, struct lws *wsi, gw_conn_t **slot)
{
    if (slot == NULL || self->upgrade_wsi != wsi || self->upgrade_conn == NULL) {
        return 1; // not an upgrade s_on_upgrade accepted: cannot happen with lws 4.1
    }
    gw_conn_destroy(slot); // a repeated filter call replaces, never leaks
    *slot = self->upgrade_conn;
    self->upgrade_conn = NULL;
    self->upgrade_wsi = NULL;
    return 0;
}

static int
s_on_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server_t *self = ctx ? lws_context_user(ctx) : NULL;
    gw_conn_t **slot = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return s_on_upgrade(self, wsi);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return s_on_handshake(self, wsi, slot);
    case LWS_CALLBACK_ESTABLISHED:
        if (*slot == NULL) {
            return -1; // the handshake did not create the connection: refuse
        }
        ga_idmap_put(self->conns, (*slot)->id, *slot);
        self->stats.connections++;
        GA_EMIT(GA_EV_CONNECTION_CONNECT, .success = GA_TM_TRUE);
        if ((*slot)->auth_pending) {
            s_start_auth(self, *slot);
        }
        GA_DEBUG("connected conn=%llu ip=%s user=%s", (unsigned long long) (*slot)->id,
                 (*slot)->ip, (*slot)->who.user_id ? (*slot)->who.user_id : "-");
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return *slot ? s_on_receive(self, wsi, *slot, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return *slot ? s_on_writeable(self, wsi, *slot) : -1;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        // CLOSED follows an established connection; WSI_DESTROY also covers a handshake that
        // failed after the filter created the connection. Whichever comes first frees it.
        if (slot && *slot) {
            GA_DEBUG("closed conn=%llu", (unsigned long long) (*slot)->id);
            if (ga_idmap_take(self->conns, (*slot)->id) != NULL) {
                GA_EMIT(GA_EV_CONNECTION_DISCONNECT, .success = GA_TM_TRUE);
                gw_bridge_stop_conn(self->bridge, (*slot)->id, NULL); // tell the workers
                gw_bridge_group_drop(self->bridge, (*slot)->id, NULL); // and its groups
                s_bridge_kick(self);
            }
            gw_conn_destroy(slot);
        }
        return 0;
    case LWS_CALLBACK_HTTP:
        // Plain HTTP on the public port: only the WebSocket path exists.
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "use " GW_WS_PATH) != 0) {
            return -1;
        }
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static int
s_on_bridge_fd(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
               size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    gw_server_t *self = ctx ? lws_context_user(ctx) : NULL;
    (void) user;
    (void) in;
    (void) len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (wsi == self->stream_wsi) {
            gw_bridge_process_streams(self->bridge);
        } else if (wsi == self->admin_wsi) {
            gw_admin_process(self->admin);
        } else {
            gw_bridge_process(self->bridge);
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (wsi == self->bridge_wsi) {
            self->bridge_wsi = NULL;
        } else if (wsi == self->stream_wsi) {
            self->stream_wsi = NULL;
        } else if (wsi == self->admin_wsi) {
            self->admin_wsi = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols s_protocols[] = {
    {"phoenix", s_on_ws, sizeof(gw_conn_t *), 0, 0, NULL, 0},
    {"genapi-bridge", s_on_bridge_fd, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
s_on_tick(lws_sorted_usec_list_t *sul)
{
    gw_server_t *self = lws_container_of(sul, gw_server_t, tick);
    gw_bridge_tick(self->bridge);
    int64_t next_us = gw_bridge_next_tick_ms(self->bridge) * LWS_US_PER_MS;
    if (next_us > GW_TICK_MAX_US) {
        next_us = GW_TICK_MAX_US;
    }
    if (next_us < LWS_US_PER_MS) {
        next_us = LWS_US_PER_MS;
    }
    lws_sul_schedule(self->context, 0, &self->tick, s_on_tick, next_us);
}

// ---------------------------------------------------------------------------------------------
// Drain (docs/operations.md, "Lifecycle")

typedef struct {
    size_t left; // connections this step may still close
    bool force;  // close even with frames still queued
} drain_batch_t;

static void
s_close_going_away(uint64_t id, void *value, void *arg)
{
    (void) id;
    gw_conn_t *conn = value;
    drain_batch_t *batch = arg;
    if (batch->left == 0 || conn->close_code || (conn->out_head && !batch->force)) {
        return; // done, closing already, or its last replies are still being written
    }
    conn->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
    snprintf(conn->close_reason, sizeof conn->close_reason, "server shutting down");
    lws_callback_on_writable(conn->wsi);
    batch->left--;
}

static void
s_on_drain(lws_sorted_usec_list_t *sul)
{
    gw_server_t *self = lws_container_of(sul, gw_server_t, drain);
    int64_t now = ga_clock_ms();
    size_t inflight = gw_bridge_inflight(self->bridge);
    if (!self->closing && (inflight == 0 || now >= self->drain_deadline_ms)) {
        self->closing = true;
        self->closing_since_ms = now;
        if (inflight) {
            GA_WARN("draining: shutdown_timeout_ms passed with %zu call(s) in flight: their "
                    "clients are closed without an answer",
                    inflight);
        }
        GA_NOTICE("draining: closing %zu connection(s) with 1001",
                  ga_idmap_size(self->conns));
    }
    if (self->closing) {
        size_t open = ga_idmap_size(self->conns);
        if (open == 0 || now - self->closing_since_ms >= GW_DRAIN_CLOSE_MS) {
            if (open) {
                GA_WARN("draining: %zu connection(s) did not close in %d ms: dropped", open,
                        GW_DRAIN_CLOSE_MS);
            }
            self->drained = true;
            atomic_store(&self->stop, true);
            return;
        }
        drain_batch_t batch = {.left = GW_DRAIN_BATCH,
                               .force = now - self->closing_since_ms >= GW_DRAIN_FLUSH_MS};
        ga_idmap_each(self->conns, s_close_going_away, &batch);
    }
    lws_sul_schedule(self->context, 0, &self->drain, s_on_drain, GW_DRAIN_TICK_US);
}

static void
s_drain_begin(gw_server_t *self)
{
    self->draining = true;
    gw_admin_set_draining(self->admin);
    self->drain_deadline_ms = ga_clock_ms() + self->cfg->shutdown_timeout_ms;
    GA_NOTICE("draining: %zu call(s) in flight, %zu connection(s); new connections refused, "
              "calls in flight awaited up to shutdown_timeout_ms=%lld",
              gw_bridge_inflight(self->bridge), ga_idmap_size(self->conns),
              (long long) self->cfg->shutdown_timeout_ms);
    lws_sul_schedule(self->context, 0, &self->drain, s_on_drain, 1);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

gw_server_t *
gw_server_new(const gw_config_t *cfg)
{
    gw_server_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->pipeline = gw_pipeline_new(&cfg->pipeline);
    self->bridge = gw_bridge_new(&cfg->bridge, self->pipeline, s_on_result, s_on_registry, self);
    gw_bridge_on_accept(self->bridge, s_on_accept);
    gw_bridge_on_stream(self->bridge, s_on_stream);
    gw_relay_add_builtins(self->pipeline);
    gw_relay_on_deliver(gw_bridge_relay(self->bridge), s_on_relay, self);
    self->auth = gw_auth_new(&cfg->auth);
    self->conns = ga_idmap_new();
    self->outpool = gw_outpool_new(GW_OUT_BLOCK, GW_OUT_BLOCKS_KEPT);
    self->arena = ga_arena_new(65536);
    ga_buf_init(&self->scratch);
    ga_buf_init(&self->frame);
    ga_buf_init(&self->batch);
    ga_buf_init(&self->relay_frame);
    ga_buf_init(&self->relay_key);
    ga_buf_init(&self->chunk_head);
    ga_buf_init(&self->chunk_tail);
    ga_buf_init(&self->chunk_key);
    self->admin = gw_admin_new(cfg->metrics_listen, self->bridge, s_admin_stats, self);
    gw_admin_set_admin_token(self->admin, cfg->admin_token);
    return self;
}

void
gw_server_destroy(gw_server_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    gw_server_t *self = *self_p;
    self->destroying = true;
    if (self->context) {
        lws_sul_cancel(&self->tick);
        lws_sul_cancel(&self->kick);
        lws_sul_cancel(&self->drain);
        // Destroying the context closes every connection (CLOSED frees each gw_conn_t).
        lws_context_destroy(self->context);
    }
    gw_conn_destroy(&self->upgrade_conn);
    gw_admin_destroy(&self->admin);
    gw_bridge_destroy(&self->bridge);
    gw_pipeline_destroy(&self->pipeline);
    gw_auth_destroy(&self->auth);
    ga_idmap_destroy(&self->conns);
    gw_outpool_destroy(&self->outpool); // after every connection is gone
    ga_arena_destroy(&self->arena);
    ga_buf_fini(&self->scratch);
    ga_buf_fini(&self->frame);
    ga_buf_fini(&self->batch);
    ga_buf_fini(&self->relay_frame);
    ga_buf_fini(&self->relay_key);
    ga_buf_fini(&self->chunk_head);
    ga_buf_fini(&self->chunk_tail);
    ga_buf_fini(&self->chunk_key);
    ga_free(self);
    *self_p = NULL;
}

// Adopts a ZeroMQ socket's fd into the lws loop. lws closes an adopted descriptor when its
// context goes, so it gets a duplicate: libzmq's own stays valid until zmq_close.
static struct lws *
s_adopt(gw_server_t *self, int zmq_fd)
{
    lws_sock_file_fd_type fd;
    memset(&fd, 0, sizeof fd);
    fd.filefd = dup(zmq_fd);
    if (fd.filefd < 0) {
        return NULL;
    }
    struct lws *wsi =
        lws_adopt_descriptor_vhost(self->vhost, LWS_ADOPT_RAW_FILE_DESC, fd, "genapi-bridge", NULL);
    if (wsi == NULL) {
        close(fd.filefd);
    }
    return wsi;
}

ga_err_t
gw_server_start(gw_server_t *self)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = self->cfg->port;
    info.iface = self->cfg->host && self->cfg->host[0] ? self->cfg->host : NULL;
    info.protocols = s_protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = self;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.pt_serv_buf_size = (unsigned int) (self->cfg->rx_buffer_bytes > 4096
                                                ? self->cfg->rx_buffer_bytes
                                                : 4096);
    bool tls = self->cfg->tls_cert_file && self->cfg->tls_cert_file[0];
    if (tls) {
        // wss only (no plain ws on this port), TLS 1.2 and later: older versions are refused
        // whatever the system's OpenSSL configuration allows.
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = self->cfg->tls_cert_file;
        info.ssl_private_key_filepath = self->cfg->tls_key_file;
        info.ssl_options_set =
            (long) (SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
    }
    self->context = lws_create_context(&info);
    if (self->context == NULL) {
        GA_ERR("cannot listen on %s:%d (in use? set the option listen%s)",
               info.iface ? info.iface : "*", info.port,
               tls ? "; or TLS setup failed: see tls_cert_file, tls_key_file" : "");
        return GA_EIO;
    }
    self->vhost = lws_get_vhost_by_name(self->context, "default");
    self->port = self->vhost ? lws_get_vhost_listen_port(self->vhost) : -1;
    if (self->port <= 0) {
        GA_ERR("no listening port");
        return GA_EIO;
    }
    if (gw_bridge_connect(self->bridge) != GA_OK) {
        return GA_EIO;
    }
    self->bridge_wsi = s_adopt(self, gw_bridge_fd(self->bridge));
    self->stream_wsi = s_adopt(self, gw_bridge_stream_fd(self->bridge));
    if (self->bridge_wsi == NULL || self->stream_wsi == NULL) {
        GA_ERR("cannot adopt the broker sockets into the event loop");
        return GA_EIO;
    }
    if (gw_admin_start(self->admin) != GA_OK ||
        (gw_admin_fd(self->admin) >= 0 &&
         (self->admin_wsi = s_adopt(self, gw_admin_fd(self->admin))) == NULL)) {
        return GA_EIO;
    }
    lws_sul_schedule(self->context, 0, &self->tick, s_on_tick, LWS_US_PER_MS);
    return GA_OK;
}

gw_pipeline_t *
gw_server_pipeline(gw_server_t *self)
{
    return self->pipeline;
}

int
gw_server_port(const gw_server_t *self)
{
    return self->port;
}

ga_err_t
gw_server_run(gw_server_t *self)
{
    while (!atomic_load(&self->stop)) {
        if (atomic_load(&self->drain_asked) && !self->draining) {
            s_drain_begin(self);
        }
        if (atomic_exchange(&self->reload_asked, false) && self->cfg->on_reload) {
            self->cfg->on_reload(self->cfg->on_reload_arg);
        }
        if (lws_service(self->context, 0) < 0) {
            GA_ERR("event loop failed");
            return GA_EIO;
        }
    }
    return GA_OK;
}

void
gw_server_drain(gw_server_t *self)
{
    atomic_store(&self->drain_asked, true);
    if (self->context) {
        lws_cancel_service(self->context);
    }
}

void
gw_server_reload(gw_server_t *self)
{
    atomic_store(&self->reload_asked, true);
    if (self->context) {
        lws_cancel_service(self->context);
    }
}

bool
gw_server_stopped_early(const gw_server_t *self)
{
    return atomic_load(&self->drain_asked) && !self->drained;
}

void
gw_server_stop(gw_server_t *self)
{
    atomic_store(&self->stop, true);
    if (self->context) {
        lws_cancel_service(self->context);
    }
}

int
gw_server_metrics_port(const gw_server_t *self)
{
    return gw_admin_port(self->admin);
}

gw_stats_t
gw_server_stats(const gw_server_t *self)
{
    return self->stats;
}
