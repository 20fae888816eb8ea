// SPDX-License-Identifier: MIT
// The broker's peers: gateways (liveness, the snapshot on connect, function-table updates) and
// workers (REGISTER with its push token, liveness), and the dispatch of each message they send.
#include "bk_internal.h"

#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_secret.h"
#include "ga_wire.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The port of a bound endpoint ("tcp://0.0.0.0:5573" -> 5573), told to peers so they can
// reach the stream proxy at the host they already use for the broker.
static int64_t
s_port(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    return colon ? strtoll(colon + 1, NULL, 10) : 0;
}

static int64_t
s_liveness_ms(const bk_broker_t *self)
{
    return self->cfg->heartbeat_ms * GA_PROTO_LIVENESS;
}

// ---------------------------------------------------------------------------------------------
// Gateways

void
bk_id_key(char *key, const uint8_t *id, size_t id_len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < id_len; i++) {
        key[2 * i] = hex[id[i] >> 4];
        key[2 * i + 1] = hex[id[i] & 15];
    }
    key[2 * id_len] = '\0';
}

static bk_gateway_t *
s_gateway_touch(bk_broker_t *self, const uint8_t *id, size_t id_len, bool *is_new)
{
    bk_gateway_t *gw = self->gw_last;
    if (gw && gw->id_len == id_len && memcmp(gw->id, id, id_len) == 0) {
        *is_new = false;
        gw->expiry = bk_now_ms(self) + s_liveness_ms(self);
        return gw;
    }
    char key[2 * 255 + 1];
    bk_id_key(key, id, id_len);
    gw = zhash_lookup(self->gws, key);
    *is_new = gw == NULL;
    if (gw == NULL) {
        gw = ga_calloc(1, sizeof *gw);
        memcpy(gw->id, id, id_len);
        gw->id_len = id_len;
        gw->serial = ++self->next_serial;
        ga_assert(zhash_insert(self->gws, key, gw) == 0);
        zhash_freefn(self->gws, key, ga_free);
    }
    gw->expiry = bk_now_ms(self) + s_liveness_ms(self);
    self->gw_last = gw;
    return gw;
}

// Sends the whole registry to gateway `gw`; false when it could not take it (then it is owed
// one, retried on the tick).
static bool
s_send_snapshot(bk_broker_t *self, bk_gateway_t *gw)
{
    ga_arena_t *a = self->arena;
    int64_t warming = self->warm_until - ga_clock_ms();
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "functions", bk_registry_snapshot(self->registry, a));
    ga_map_put(&m, a, "seq", ga_int((int64_t) self->registry_seq));
    ga_map_put(&m, a, "warming_ms", ga_int(warming > 0 ? warming : 0));
    ga_map_put(&m, a, "heartbeat_ms", ga_int(self->cfg->heartbeat_ms));
    ga_map_put(&m, a, "stream_port", ga_int(s_port(self->stream_out_ep)));
    ga_map_put(&m, a, "batch", ga_bool(true)); // this broker reads batches
    bk_batch_close(self, self->gateways);
    ga_err_t rc = ga_proto_send_value(self->gateways, gw->id, gw->id_len, GA_CMD_SNAPSHOT, &m,
                                      &self->out);
    if (rc != GA_OK) {
        self->stats.undeliverable++;
        GA_DEBUG("snapshot not sent (%s): retried on the next heartbeat", ga_strerror(rc));
    }
    gw->resync = rc != GA_OK;
    return rc == GA_OK;
}

void
bk_broadcast_update(bk_broker_t *self, const ga_value_t *changed, const ga_value_t *removed)
{
    if ((changed == NULL || changed->len == 0) && (removed == NULL || removed->len == 0)) {
        return;
    }
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 3);
    ga_map_put(&m, a, "seq", ga_int((int64_t) ++self->registry_seq));
    ga_map_put(&m, a, "functions", changed ? *changed : ga_array(a, 0));
    ga_map_put(&m, a, "removed", removed ? *removed : ga_array(a, 0));
    ga_buf_reset(&self->out);
    ga_wire_encode(&self->out, &m); // encoded once, sent to every gateway
    bk_batch_close(self, self->gateways);
    for (bk_gateway_t *gw = zhash_first(self->gws); gw; gw = zhash_next(self->gws)) {
        if (gw->resync) {
            continue; // a snapshot is owed anyway, and will include this change
        }
        if (ga_proto_send(self->gateways, gw->id, gw->id_len, GA_CMD_UPDATE, &self->out) !=
            GA_OK) {
            // Missing one update would leave its copy wrong for good: owe it a snapshot.
            self->stats.undeliverable++;
            gw->resync = true;
        }
    }
}

// Told to a worker that connected to the gateway endpoint, and to a gateway that connected to
// the worker endpoint: the option `broker` names a different port for each.
#define BK_WRONG_PORT_WORKER                                                                     \
    "wrong port: this is the broker's gateway endpoint (gateway_endpoint); a worker's broker "  \
    "option must name the broker's worker endpoint (worker_endpoint, default port 5570)"
#define BK_WRONG_PORT_GATEWAY                                                                    \
    "wrong port: this is the broker's worker endpoint (worker_endpoint); a gateway's broker "   \
    "option must name the broker's gateway endpoint (gateway_endpoint, default port 5571)"

void
bk_tick_gateways(bk_broker_t *self, int64_t now)
{
    // Functions whose service has been up without them for one liveness period go now: every
    // gateway hears of it, and the heartbeats below carry the new number.
    ga_value_t removed;
    if (bk_registry_sweep(self->registry, now, s_liveness_ms(self), self->arena, &removed)) {
        GA_NOTICE("%u function(s) no worker offers any more removed", removed.len);
        bk_broadcast_update(self, NULL, &removed);
    }
    bk_ratelimit_tick(self, now);
    bk_relay_tick(self, now);
    ga_value_t hb = ga_map(self->arena, 1);
    ga_map_put(&hb, self->arena, "seq", ga_int((int64_t) self->registry_seq));
    zlist_t *dead = zlist_new();
    ga_assert(dead);
    for (bk_gateway_t *gw = zhash_first(self->gws); gw; gw = zhash_next(self->gws)) {
        if (gw->expiry < now) {
            zlist_append(dead, (void *) zhash_cursor(self->gws));
        } else if (gw->resync) {
            s_send_snapshot(self, gw); // a snapshot is a sign of life too
        } else {
            bk_send(self, self->gateways, gw->id, gw->id_len, GA_CMD_HEARTBEAT, &hb);
        }
    }
    for (const char *key = zlist_first(dead); key; key = zlist_next(dead)) {
        GA_NOTICE("gateway removed: silent for 3 heartbeats");
        bk_gateway_t *gw = zhash_lookup(self->gws, key);
        if (gw) {
            bk_drop_gateway_calls(self, gw); // its streams may have no deadline
            bk_relay_drop_gateway(self, gw); // its members leave every group
        }
        if (gw == self->gw_last) {
            self->gw_last = NULL;
        }
        zhash_delete(self->gws, key);
    }
    zlist_destroy(&dead);
}

void
bk_on_gateway(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    if (!bk_access_gateway_msg(self, msg)) {
        return;
    }
    if (msg->cmd == GA_CMD_ADMIN) {
        bk_on_admin(self, msg); // operators are not gateways: no snapshot, no liveness
        return;
    }
    if (msg->cmd == GA_CMD_REGISTER) {
        // A worker on the gateway port: refuse its table with the reason, never a snapshot.
        ga_arena_t *a = self->arena;
        ga_value_t reply = ga_map(a, 2);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str(BK_WRONG_PORT_WORKER));
        bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
        return;
    }
    bool is_new;
    bk_gateway_t *gw = s_gateway_touch(self, msg->id, msg->id_len, &is_new);
    if (msg->cmd == GA_CMD_HELLO) {
        const ga_value_t *batch = ga_map_get(&msg->value, "batch");
        gw->batch = batch && batch->type == GA_BOOL && batch->u.b;
    }
    if (is_new || msg->cmd == GA_CMD_HELLO) {
        // HELLO again is also how a gateway that saw a gap in the updates asks for a snapshot.
        GA_INFO("gateway connected (%s)", is_new ? "new" : "hello again");
        s_send_snapshot(self, gw);
    }
    switch (msg->cmd) {
    case GA_CMD_CALL:
        if (self->draining) {
            // Stopping: the calls in flight finish, new ones are turned away at once.
            bk_send_error(self, msg->id, msg->id_len,
                          (uint64_t) ga_map_get_int(&msg->value, "id", 0), GA_EUNAVAIL,
                          "Service unavailable", true);
        } else if (bk_access_call_identity(self, msg) && bk_ratelimit_allow_call(self, msg)) {
            if (ga_log_level() >= GA_LOG_DEBUG) {
                const char *svc = ga_map_get_str(&msg->value, "service");
                const char *fn = ga_map_get_str(&msg->value, "request_type");
                const char *rid = ga_map_get_str(&msg->value, "request_id");
                GA_DEBUG("call %s.%s request_id=%s from a gateway", svc ? svc : "-",
                         fn ? fn : "-", rid ? rid : "-");
            }
            bk_on_call(self, gw, msg);
        }
        break;
    case GA_CMD_GATEWAY_ADMIN_REPLY:
        bk_ratelimit_on_reply(self, msg);
        break;
    case GA_CMD_STOP:
        bk_on_stop(self, gw, msg);
        break;
    case GA_CMD_GROUP:
        bk_relay_on_group(self, gw, msg);
        break;
    case GA_CMD_HELLO:
    case GA_CMD_HEARTBEAT:
        break;
    default:
        self->stats.malformed++;
        GA_WARN("unexpected %s from a gateway dropped", ga_cmd_name(msg->cmd));
        break;
    }
}

// ---------------------------------------------------------------------------------------------
// Workers

static void
s_warn_public_ref(const ga_funcfg_t *from, const char *field, const ga_funcfg_t *to, void *arg)
{
    (void) arg;
    GA_WARN("%s.%s: %s names %s.%s, a public function that clients can call directly; declare "
            "it with visibility \"internal\" (docs/security.md, \"Internal functions\")",
            from->service, from->request_type, field, to->service, to->request_type);
}

void
bk_warn_public_refs(bk_broker_t *self, const char *service)
{
    bk_registry_each_public_ref(self->registry, service, s_warn_public_ref, NULL);
}

static void
s_on_register(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    ga_arena_t *a = self->arena;
    const char *token = self->cfg->push_token;
    ga_value_t reply = ga_map(a, 7);
    if (token && token[0]) {
        // Over the full length of both, NUL bytes included, in constant time.
        if (!ga_secret_equal_value(token, ga_map_get(&msg->value, "token"))) {
            GA_WARN("REGISTER refused: invalid push token");
            ga_map_put(&reply, a, "ok", ga_bool(false));
            ga_map_put(&reply, a, "error", ga_str("invalid push token"));
            bk_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
            return;
        }
    }
    ga_value_t failed, changed, refused;
    bk_worker_t *w = NULL;
    bool skipped = false;
    char err[256];
    const char *why = bk_access_register_refusal(self, msg, err, sizeof err);
    if (why) {
        GA_WARN("REGISTER refused: %s", why);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str(why));
        bk_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
        return;
    }
    // A worker that comes back with a new session has dropped whatever it held (docs/protocol.md,
    // "Worker lives"): its calls of the old life go on without it now, and its breaker counts
    // the new life only.
    int64_t session = ga_map_get_int(&msg->value, "session", 0);
    bk_worker_t *old = bk_registry_worker(self->registry, msg->id, msg->id_len);
    bool fresh = old == NULL || old->session != session;
    if (old && fresh) {
        GA_NOTICE("worker %s registered afresh: %zu call(s) of its previous life lost",
                  old->node ? old->node : "?", old->inflight);
        bk_calls_worker_lost(self, old);
    }
    ga_value_t body = bk_access_filter(self, &msg->value, a, &refused);
    ga_err_t rc = bk_registry_register(self->registry, msg->id, msg->id_len, &body,
                                       ga_clock_ms() + s_liveness_ms(self), a, &failed, &changed,
                                       &w, &skipped, err, sizeof err);
    if (rc != GA_OK) {
        GA_WARN("REGISTER refused: %s", err);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str(err));
        bk_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
        return;
    }
    snprintf(w->key, sizeof w->key, "%s", msg->user_id);
    const ga_value_t *batch = ga_map_get(&msg->value, "batch");
    w->batch = batch && batch->type == GA_BOOL && batch->u.b;
    if (fresh) {
        w->life = ++self->next_serial;
        w->session = session;
        w->failures = 0;
        w->breaker_until = 0;
    }
    for (uint32_t i = 0; i < refused.len; i++) {
        ga_array_push(&failed, a, refused.u.items[i]);
    }
    if (skipped) {
        GA_INFO("worker %s registered for %s: config version %s already processed, table "
                "skipped", w->node, w->service, ga_map_get_str(&msg->value, "config_version"));
    } else {
        GA_INFO("worker %s registered for %s: %u function(s) changed, %u refused", w->node,
                w->service, changed.len, failed.len);
        if (changed.len > 0) {
            bk_warn_public_refs(self, w->service);
        }
    }
    bk_broadcast_update(self, &changed, NULL);
    ga_map_put(&reply, a, "ok", ga_bool(true));
    ga_map_put(&reply, a, "skipped", ga_bool(skipped));
    ga_map_put(&reply, a, "failed", failed);
    ga_map_put(&reply, a, "heartbeat_ms", ga_int(self->cfg->heartbeat_ms));
    ga_map_put(&reply, a, "stream_port", ga_int(s_port(self->stream_in_ep)));
    ga_map_put(&reply, a, "batch", ga_bool(true)); // this broker reads batches
    // The worker compares requests' deadlines (our wall clock) with its own clock plus the
    // difference this shows (docs/protocol.md, "REQUEST").
    ga_map_put(&reply, a, "now_ms", ga_int(ga_clock_wall_ms()));
    bk_send(self, self->workers, msg->id, msg->id_len, GA_CMD_REGISTERED, &reply);
}

void
bk_on_worker(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    if (msg->cmd == GA_CMD_REGISTER) {
        s_on_register(self, msg);
        return;
    }
    bk_worker_t *w = bk_registry_worker(self->registry, msg->id, msg->id_len);
    if (w == NULL) {
        // Typically after a broker restart: the worker must push its table again. A gateway's
        // HELLO here means a gateway on the worker port: it is told which port to use.
        if (msg->cmd != GA_CMD_DISCONNECT) {
            ga_arena_t *a = self->arena;
            ga_value_t m = ga_map(a, 1);
            ga_map_put(&m, a, "reason",
                       ga_str(msg->cmd == GA_CMD_HELLO ? BK_WRONG_PORT_GATEWAY
                                                       : "unknown worker: register again"));
            bk_send(self, self->workers, msg->id, msg->id_len, GA_CMD_DISCONNECT, &m);
        }
        return;
    }
    w->expiry = bk_now_ms(self) + s_liveness_ms(self);
    switch (msg->cmd) {
    case GA_CMD_HEARTBEAT:
        bk_inspect_on_heartbeat(w, &msg->value);
        if (!w->draining && ga_map_get(&msg->value, "draining")) {
            // The worker is stopping (docs/protocol.md, "Stopping"): it finishes what it has.
            w->draining = true;
            GA_INFO("worker %s is draining: no new calls for it", w->node);
        }
        break;
    case GA_CMD_REPLY:
        if (!bk_resolve_on_reply(self, msg)) { // the broker's own resolver calls
            bk_on_reply(self, w, msg);
        }
        break;
    case GA_CMD_PULLED:
        bk_pull_on_reply(self, msg);
        break;
    case GA_CMD_GROUP:
        bk_relay_on_worker_group(self, w, msg);
        break;
    case GA_CMD_ADMIN:
        bk_admin_on_worker(self, w, msg); // wk_verify
        break;
    case GA_CMD_DISCONNECT:
        bk_drop_worker(self, w, "disconnected");
        break;
    default:
        self->stats.malformed++;
        GA_WARN("unexpected %s from worker %s dropped", ga_cmd_name(msg->cmd), w->node);
        break;
    }
}
