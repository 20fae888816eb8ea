// SPDX-License-Identifier: MIT
// The broker object: lifecycle and sockets, the send helpers, and the loop that polls both
// ROUTERs, the stream proxy and a wake-up pipe. Must never block: every send is non-blocking
// and a peer that cannot take a message is counted, not waited for.
#include "bk_broker.h"

#include "bk_internal.h"
#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_httpd.h"
#include "ga_metrics.h"
#include "ga_inflight.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_wire.h"
#include "ga_zpoll.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

bk_broker_t *
bk_broker_new(const bk_config_t *cfg)
{
    bk_broker_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->wake[0] = self->wake[1] = -1;
    self->registry = bk_registry_new();
    self->select = bk_select_new();
    self->gws = zhash_new();
    ga_assert(self->gws);
    self->calls = ga_inflight_new();
    self->arena = ga_arena_new(16384);
    ga_proto_msg_init(&self->msg);
    ga_buf_init(&self->out);
    ga_proto_batch_init(&self->to_workers, NULL, BK_BATCH_MAX); // sockets set once bound
    ga_proto_batch_init(&self->to_gateways, NULL, BK_BATCH_MAX);
    self->rl = bk_ratelimit_new();
    self->pull = bk_pull_new();
    self->resolve = bk_resolve_new(cfg->resolver_cache_ms);
    return self;
}

void
bk_broker_destroy(bk_broker_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    bk_broker_t *self = *self_p;
    ga_inflight_rec_t *rec;
    while ((rec = ga_inflight_first(self->calls)) != NULL) {
        bk_release_call(self, (bk_call_t *) rec);
    }
    ga_inflight_destroy(&self->calls);
    while (self->free_calls) {
        bk_call_t *c = self->free_calls;
        self->free_calls = c->next;
        ga_buf_fini(&c->body);
        zmq_msg_close(&c->payload);
        ga_free(c);
    }
    zhash_destroy(&self->gws);
    bk_registry_destroy(&self->registry);
    bk_select_destroy(&self->select);
    bk_ratelimit_destroy(&self->rl);
    bk_groups_destroy(&self->groups);
    bk_pull_destroy(&self->pull);
    bk_resolve_destroy(&self->resolve);
    ga_httpd_destroy(&self->httpd);
    ga_metrics_destroy(&self->metrics);
    ga_arena_destroy(&self->arena);
    ga_proto_msg_fini(&self->msg);
    ga_buf_fini(&self->out);
    ga_proto_batch_fini(&self->to_workers);
    ga_proto_batch_fini(&self->to_gateways);
    bk_zap_destroy(&self->zap); // its socket closes before the context terminates
    if (self->workers) {
        zmq_close(self->workers);
    }
    if (self->gateways) {
        zmq_close(self->gateways);
    }
    if (self->stream_in) {
        zmq_close(self->stream_in);
    }
    if (self->stream_out) {
        zmq_close(self->stream_out);
    }
    if (self->zctx) {
        zmq_ctx_term(self->zctx);
    }
    for (int i = 0; i < 2; i++) {
        if (self->wake[i] >= 0) {
            close(self->wake[i]);
        }
    }
    ga_free(self);
    *self_p = NULL;
}

// Binds one socket; `option` names the setting that holds `endpoint`, so that a bind failure
// says what to change. With CURVE on, the socket is a CURVE server whose peers the ZAP handler
// admits by `domain`.
static ga_err_t
s_bind_socket(bk_broker_t *self, int type, const char *option, const char *domain,
              const char *endpoint, void **sock, char *bound, size_t len)
{
    *sock = zmq_socket(self->zctx, type);
    if (*sock == NULL) {
        return GA_EIO;
    }
    if (self->zap && ga_curve_server(*sock, &self->curve, domain) != GA_OK) {
        GA_ERR("cannot make %s a CURVE server: %s", option, zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    int one = 1;
    int zero = 0;
    int hwm = (int) self->cfg->hwm;
    // ROUTER_MANDATORY turns silent drops (unknown or full peer) into errors we count;
    // XPUB_NODROP does the same for a gateway that cannot take more chunks (it sees a gap).
    if ((type == ZMQ_ROUTER &&
         zmq_setsockopt(*sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0) ||
        (type == ZMQ_XPUB && zmq_setsockopt(*sock, ZMQ_XPUB_NODROP, &one, sizeof one) != 0) ||
        zmq_setsockopt(*sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(*sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(*sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0) {
        return GA_EIO;
    }
    if (zmq_bind(*sock, endpoint) != 0) {
        GA_ERR("cannot bind %s: %s (set the option %s to another endpoint)", endpoint,
               zmq_strerror(zmq_errno()), option);
        return GA_EIO;
    }
    size_t n = len;
    if (zmq_getsockopt(*sock, ZMQ_LAST_ENDPOINT, bound, &n) != 0) {
        return GA_EIO;
    }
    return GA_OK;
}

// CURVE on when both settings are given: the broker's own certificate, the peers' public
// certificates, and the ZAP handler bound before any socket (libzmq 4.3 admits every client of
// a CURVE socket while no ZAP handler is bound).
static ga_err_t
s_curve_start(bk_broker_t *self)
{
    const char *secret = self->cfg->curve_secret_file;
    const char *peers = self->cfg->curve_peers_dir;
    bool have_secret = secret && secret[0];
    bool have_peers = peers && peers[0];
    if (!have_secret && !have_peers) {
        return GA_OK;
    }
    char err[600];
    if (!have_secret || !have_peers) {
        GA_ERR("%s: CURVE needs both curve_secret_file and curve_peers_dir",
               have_secret ? "curve_peers_dir" : "curve_secret_file");
        return GA_ECONFIG;
    }
    if (ga_curve_load(secret, true, &self->curve, err, sizeof err) != GA_OK) {
        GA_ERR("curve_secret_file: %s", err);
        return GA_ECONFIG;
    }
    if (strcmp(self->curve.role, "broker") != 0) {
        GA_ERR("curve_secret_file: %s is a %s key, not a broker key", secret, self->curve.role);
        return GA_ECONFIG;
    }
    self->zap = bk_zap_new();
    if (bk_zap_load_dir(self->zap, peers, err, sizeof err) != GA_OK) {
        GA_ERR("%s", err);
        return GA_ECONFIG;
    }
    if (self->zctx == NULL) {
        return GA_OK; // bk_broker_check: the files only
    }
    if (bk_zap_bind(self->zap, self->zctx) != GA_OK) {
        return GA_EIO;
    }
    self->msg.want_user_id = true;
    GA_INFO("curve on: %zu peer key(s) from %s; broker public key %s", bk_zap_key_count(self->zap),
            peers, self->curve.public_txt);
    return GA_OK;
}

// Every name in admin_actions must be an admin operation: a misspelt one would silently stay
// off.
static ga_err_t
s_check_admin_actions(const bk_broker_t *self)
{
    const char *p = self->cfg->admin_actions;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int) n, p);
        char *s = name;
        while (*s == ' ') {
            s++;
        }
        for (size_t k = strlen(s); k > 0 && s[k - 1] == ' '; k--) {
            s[k - 1] = '\0';
        }
        if (s[0] && !bk_admin_action_known(s)) {
            GA_ERR("admin_actions: unknown action \"%s\" (valid: %s)", s,
                   bk_admin_actions_list());
            return GA_ECONFIG;
        }
        p += n + (p[n] == ',');
    }
    return GA_OK;
}

static bool
s_has_state_file(const bk_broker_t *self)
{
    return self->cfg->state_file && self->cfg->state_file[0];
}

// The sticky mapping of the previous run. A file that cannot be read or is not a state file
// stops the start (a silently lost mapping would move every sticky key).
static ga_err_t
s_state_load(bk_broker_t *self)
{
    if (!s_has_state_file(self)) {
        return GA_OK;
    }
    char err[600];
    if (bk_select_load(self->select, self->cfg->state_file, ga_clock_ms(), ga_clock_wall_ms(),
                       err, sizeof err) != GA_OK) {
        GA_ERR("%s (move it away to start with an empty mapping)", err);
        return GA_ECONFIG;
    }
    GA_INFO("state_file: %zu sticky mapping(s) read from %s",
            bk_select_sticky_count(self->select), self->cfg->state_file);
    return GA_OK;
}

// Forgets idle sticky entries and writes the state file when the mapping changed, at most every
// BK_STICKY_SAVE_MS (`force`: now, at stop). The write is a small file on the loop thread.
static void
s_state_tick(bk_broker_t *self, int64_t now, bool force)
{
    if (!force && now < self->next_state_save) {
        return;
    }
    self->next_state_save = now + BK_STICKY_SAVE_MS;
    bk_relay_save(self); // relay_state_file, on the same schedule (and at stop)
    bk_select_expire(self->select, now);
    if (!s_has_state_file(self) || !bk_select_dirty(self->select)) {
        return;
    }
    char err[600];
    if (bk_select_save(self->select, self->cfg->state_file, now, ga_clock_wall_ms(), err,
                       sizeof err) != GA_OK) {
        GA_WARN("%s (sticky mappings are kept in memory; retried later)", err);
    }
}

ga_err_t
bk_broker_check(bk_broker_t *self)
{
    if (s_curve_start(self) != GA_OK || s_check_admin_actions(self) != GA_OK ||
        s_state_load(self) != GA_OK || bk_relay_load(self) != GA_OK) {
        return GA_ECONFIG;
    }
    char err[512];
    if (bk_pull_configure(self->pull, self->cfg->pull_interval_ms, self->cfg->pull_timeout_ms,
                          self->cfg->service_configs, err, sizeof err) != GA_OK) {
        GA_ERR("%s", err);
        return GA_ECONFIG;
    }
    return GA_OK;
}

ga_err_t
bk_broker_bind(bk_broker_t *self)
{
    if (pipe(self->wake) != 0 || fcntl(self->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(self->wake[1], F_SETFL, O_NONBLOCK) != 0) {
        return GA_EIO;
    }
    self->zctx = zmq_ctx_new();
    if (self->zctx == NULL) {
        return GA_EIO;
    }
    if (bk_broker_check(self) != GA_OK) { // the same checks as `check -c`
        return GA_ECONFIG;
    }
    ga_err_t rc = s_bind_socket(self, ZMQ_ROUTER, "worker_endpoint", BK_ZAP_WORKERS,
                                self->cfg->worker_endpoint, &self->workers, self->worker_ep,
                                sizeof self->worker_ep);
    if (rc == GA_OK) {
        rc = s_bind_socket(self, ZMQ_ROUTER, "gateway_endpoint", BK_ZAP_GATEWAYS,
                           self->cfg->gateway_endpoint, &self->gateways, self->gateway_ep,
                           sizeof self->gateway_ep);
    }
    self->to_workers.socket = self->workers;
    self->to_gateways.socket = self->gateways;
    if (rc == GA_OK) {
        rc = s_bind_socket(self, ZMQ_XSUB, "stream_in_endpoint", BK_ZAP_STREAMS_IN,
                           self->cfg->stream_in_endpoint, &self->stream_in, self->stream_in_ep,
                           sizeof self->stream_in_ep);
    }
    if (rc == GA_OK) {
        rc = s_bind_socket(self, ZMQ_XPUB, "stream_out_endpoint", BK_ZAP_STREAMS_OUT,
                           self->cfg->stream_out_endpoint, &self->stream_out,
                           self->stream_out_ep, sizeof self->stream_out_ep);
    }
    // The proxy takes every chunk from every worker; the XPUB side filters per gateway.
    if (rc == GA_OK && zmq_send(self->stream_in, "\x01", 1, 0) != 1) {
        rc = GA_EIO;
    }
    if (rc == GA_OK) {
        rc = bk_metrics_start(self); // last: /readyz answers once everything is bound
    }
    return rc;
}

const char *
bk_broker_worker_endpoint(const bk_broker_t *self)
{
    return self->worker_ep;
}

const char *
bk_broker_gateway_endpoint(const bk_broker_t *self)
{
    return self->gateway_ep;
}

const char *
bk_broker_stream_in_endpoint(const bk_broker_t *self)
{
    return self->stream_in_ep;
}

const char *
bk_broker_stream_out_endpoint(const bk_broker_t *self)
{
    return self->stream_out_ep;
}

void
bk_broker_stop(bk_broker_t *self)
{
    atomic_store(&self->stop, true);
    char c = 1;
    GA_IGNORE(write(self->wake[1], &c, 1) < 0); // a full pipe already means "wake up"
}

void
bk_broker_drain(bk_broker_t *self)
{
    atomic_store(&self->drain_asked, true);
    char c = 1;
    GA_IGNORE(write(self->wake[1], &c, 1) < 0); // a full pipe already means "wake up"
}

void
bk_broker_reload(bk_broker_t *self)
{
    atomic_store(&self->reload_asked, true);
    char c = 1;
    GA_IGNORE(write(self->wake[1], &c, 1) < 0); // a full pipe already means "wake up"
}

bool
bk_broker_stopped_early(const bk_broker_t *self)
{
    return atomic_load(&self->drain_asked) && !self->drained;
}

bk_stats_t
bk_broker_stats(const bk_broker_t *self)
{
    return self->stats;
}

// ---------------------------------------------------------------------------------------------
// Sending

void
bk_batch_close(bk_broker_t *self, void *sock)
{
    ga_proto_batch_close(sock == self->workers ? &self->to_workers : &self->to_gateways);
}

void
bk_send(bk_broker_t *self, void *sock, const uint8_t *id, size_t id_len, int cmd,
        const ga_value_t *body)
{
    bk_batch_close(self, sock);
    ga_err_t rc = ga_proto_send_value(sock, id, id_len, cmd, body, &self->out);
    if (rc != GA_OK) {
        self->stats.undeliverable++;
        GA_DEBUG("undeliverable %s: %s", ga_cmd_name(cmd), ga_strerror(rc));
    }
}

ga_err_t
bk_forward_edit(bk_broker_t *self, void *sock, const uint8_t *id, size_t id_len, int cmd,
                const uint8_t *env, size_t env_len, const ga_proto_edit_t *edits, size_t n_edits,
                const ga_proto_payload_t *payload, bool batch)
{
    const uint8_t *data;
    size_t len;
    // Every envelope edited here was decoded (ga_proto_recv), or is a copy of one that was.
    ga_err_t rc = ga_proto_envelope_edit_decoded(env, env_len, edits, n_edits, &self->out, &data,
                                                 &len);
    if (rc == GA_OK && batch) {
        ga_proto_batch_t *b = sock == self->workers ? &self->to_workers : &self->to_gateways;
        rc = ga_proto_batch_add(b, id, id_len, cmd, data, len, payload ? payload->data : NULL,
                                payload ? payload->len : 0);
    } else if (rc == GA_OK) {
        bk_batch_close(self, sock);
        rc = ga_proto_forward_bytes(sock, id, id_len, cmd, data, len, payload);
    }
    if (rc != GA_OK) {
        self->stats.undeliverable++;
        GA_DEBUG("undeliverable %s: %s", ga_cmd_name(cmd), ga_strerror(rc));
    }
    return rc;
}

// Answers a gateway's call with an error.
void
bk_send_error(bk_broker_t *self, const uint8_t *gw_id, size_t gw_id_len, uint64_t gw_call_id,
              ga_err_t code, const char *message, bool can_retry)
{
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 5);
    ga_map_put(&m, a, "id", ga_int((int64_t) gw_call_id));
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(message));
    ga_map_put(&m, a, "code", ga_int(code));
    ga_map_put(&m, a, "can_retry", ga_bool(can_retry));
    bk_send(self, self->gateways, gw_id, gw_id_len, GA_CMD_RESULT, &m);
    self->stats.results++;
}

// ---------------------------------------------------------------------------------------------
// Loop

// Drains up to `budget` messages from one socket so neither side can starve the other.
static void
s_drain_msgs(bk_broker_t *self, void *sock, bool from_workers, int budget)
{
    // A batch is read to its end: the receive buffers are shared by both sockets.
    while (budget-- > 0 || self->msg.batch_socket != NULL) {
        ga_err_t rc = ga_proto_recv(sock, true, &self->msg, self->arena);
        if (rc == GA_EAGAIN) {
            return;
        }
        if (rc == GA_EPROTO) {
            self->stats.malformed++;
            GA_DEBUG("malformed message dropped");
            if (self->msg.peer_version &&
                ga_log_every_due(&self->version_log, NULL, ga_clock_ms(), 60000)) {
                GA_ERR("a %s peer speaks protocol version %d, this broker speaks %d: upgrade it "
                       "(its messages are dropped)",
                       from_workers ? "worker" : "gateway", self->msg.peer_version,
                       GA_PROTO_VERSION);
            }
        } else if (rc == GA_OK) {
            if (from_workers) {
                bk_on_worker(self, &self->msg);
            } else {
                bk_on_gateway(self, &self->msg);
            }
        } else {
            GA_WARN("receive failed: %s", zmq_strerror(zmq_errno()));
            ga_arena_reset(self->arena);
            return;
        }
        ga_arena_reset(self->arena);
    }
}

// s_drain_msgs, with the clock read once for the whole drain (bk_now_ms).
static void
s_drain(bk_broker_t *self, void *sock, bool from_workers, int budget)
{
    self->in_drain = true;
    self->turn_ms = ga_clock_ms();
    self->turn_wall_ms = INT64_MIN;
    s_drain_msgs(self, sock, from_workers, budget);
    self->in_drain = false;
}

static void
s_goodbye_worker(bk_worker_t *w, void *arg)
{
    bk_broker_t *self = arg;
    ga_value_t m = ga_map(self->arena, 1);
    ga_map_put(&m, self->arena, "reason", ga_str(GA_PROTO_BROKER_STOPPING));
    bk_send(self, self->workers, w->id, w->id_len, GA_CMD_DISCONNECT, &m);
    ga_arena_reset(self->arena);
}

// One step of the drain (docs/operations.md, "Lifecycle"): begins it when asked; ends it once
// no call is in flight or shutdown_timeout_ms has passed, telling every peer.
static void
s_drain_step(bk_broker_t *self, int64_t now)
{
    if (!self->draining) {
        if (!atomic_load(&self->drain_asked)) {
            return;
        }
        self->draining = true;
        self->drain_deadline = now + self->cfg->shutdown_timeout_ms;
        GA_NOTICE("draining: %zu call(s) in flight; new calls refused, answers routed up to "
                  "shutdown_timeout_ms=%lld",
                  ga_inflight_size(self->calls), (long long) self->cfg->shutdown_timeout_ms);
    }
    size_t inflight = ga_inflight_size(self->calls);
    if (inflight && now < self->drain_deadline) {
        return;
    }
    if (inflight) {
        GA_WARN("draining: shutdown_timeout_ms passed with %zu call(s) in flight: their "
                "gateways answer them (Service unavailable)",
                inflight);
    }
    bk_registry_each_worker(self->registry, s_goodbye_worker, self);
    ga_value_t m = ga_map(self->arena, 1);
    ga_map_put(&m, self->arena, "reason", ga_str(GA_PROTO_BROKER_STOPPING));
    for (bk_gateway_t *gw = zhash_first(self->gws); gw; gw = zhash_next(self->gws)) {
        bk_send(self, self->gateways, gw->id, gw->id_len, GA_CMD_DISCONNECT, &m);
    }
    ga_arena_reset(self->arena);
    // The sockets close with no linger: give these goodbyes up to a second to leave.
    int linger = 1000;
    GA_IGNORE(zmq_setsockopt(self->workers, ZMQ_LINGER, &linger, sizeof linger) != 0);
    GA_IGNORE(zmq_setsockopt(self->gateways, ZMQ_LINGER, &linger, sizeof linger) != 0);
    GA_NOTICE("drained: told %zu worker(s) and %zu gateway(s) %s",
              bk_registry_worker_count(self->registry), zhash_size(self->gws),
              GA_PROTO_BROKER_STOPPING);
    self->drained = true;
    atomic_store(&self->stop, true);
}

ga_err_t
bk_broker_run(bk_broker_t *self)
{
    enum { WORKERS, GATEWAYS, WAKE, STREAM_IN, STREAM_OUT, ZAP, HTTP, N_ITEMS };
    ga_zpoll_item_t items[N_ITEMS] = {
        [WORKERS] = {.socket = self->workers},
        [GATEWAYS] = {.socket = self->gateways},
        [WAKE] = {.fd = self->wake[0]},
        [STREAM_IN] = {.socket = self->stream_in},
        [STREAM_OUT] = {.socket = self->stream_out},
        [ZAP] = {.socket = self->zap ? bk_zap_socket(self->zap) : NULL, .fd = -1},
        [HTTP] = {.fd = self->httpd ? ga_httpd_fd(self->httpd) : -1},
    };
    ga_zpoll_t poller;
    if (ga_zpoll_init(&poller, items, N_ITEMS) != GA_OK) {
        GA_ERR("cannot poll the broker's sockets: %s", zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    self->next_heartbeat = ga_clock_ms() + self->cfg->heartbeat_ms;
    // One worker-liveness period: by then every live worker has heard of this broker (or
    // found it silent) and registered again.
    self->warm_until = ga_clock_ms() + self->cfg->heartbeat_ms * GA_PROTO_LIVENESS;
    ga_err_t rc = GA_OK;
    while (!atomic_load(&self->stop)) {
        int64_t now = ga_clock_ms();
        int64_t next = self->next_heartbeat;
        int64_t due = ga_inflight_next_deadline(self->calls);
        if (due < next) {
            next = due;
        }
        due = bk_pull_next_due(self);
        if (due < next) {
            next = due;
        }
        due = bk_resolve_next_due(self);
        if (due < next) {
            next = due;
        }
        // Both ROUTERs are sent on from everywhere (replies, requests, heartbeats, updates):
        // check them before every sleep rather than track each send.
        items[WORKERS].dirty = items[GATEWAYS].dirty = true;
        ga_proto_batch_close(&self->to_workers); // what this turn sent goes out now
        ga_proto_batch_close(&self->to_gateways);
        if (self->draining && next > now + 20) {
            next = now + 20; // the drain checks the calls in flight this often
        }
        long timeout = next > now ? (long) (next - now) : 0;
        if (ga_zpoll_wait(&poller, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            GA_ERR("poll failed: %s", strerror(errno));
            rc = GA_EIO;
            break;
        }
        if (items[WAKE].ready) {
            char buf[16];
            while (read(self->wake[0], buf, sizeof buf) > 0) {
                // emptied: a drain asked for is seen below
            }
            if (atomic_exchange(&self->reload_asked, false) && self->cfg->on_reload) {
                self->cfg->on_reload(self->cfg->on_reload_arg);
            }
        }
        if (items[ZAP].ready) {
            bk_zap_process(self->zap); // first: handshakes wait on it
            ga_zpoll_touch(&poller, bk_zap_socket(self->zap));
        }
        if (items[WORKERS].ready) {
            s_drain(self, self->workers, true, 256);
        }
        if (items[GATEWAYS].ready) {
            s_drain(self, self->gateways, false, 256);
        }
        if (items[STREAM_IN].ready) {
            // Receive until nothing is left (or a budget is spent: the item stays dirty, so
            // the next wait looks again): no ZMQ_EVENTS check per message, which costs a poll
            // and a getpid each in libzmq 4.3.
            for (int i = 0; i < 1024 && bk_on_stream(self); i++) {
            }
            ga_zpoll_touch(&poller, self->stream_out);
        }
        if (items[STREAM_OUT].ready) {
            bk_drain_subscriptions(self);
        }
        if (items[HTTP].ready) {
            ga_httpd_process(self->httpd);
        }
        int64_t tick = ga_clock_ms(); // one read for the timers' share of the turn
        bk_on_tick(self, tick);
        bk_pull_tick(self, tick);
        bk_resolve_tick(self, tick);
        s_state_tick(self, tick, false);
        s_drain_step(self, tick);
    }
    s_state_tick(self, ga_clock_ms(), true);
    ga_zpoll_fini(&poller);
    return rc;
}
