// SPDX-License-Identifier: MIT
// The gateway's WebSocket server: a libwebsockets context with one service thread that also
// drives the broker bridge (its ZeroMQ fds are adopted into the same loop), so a request goes
// from frame to broker and back without a thread hand-off. Speaks Phoenix Channels V2 on
// /socket/websocket. Everything except gw_server_stop runs on the thread calling gw_server_run.
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "ga_err.h"
#include "gw_auth.h"
#include "gw_bridge.h"
#include "gw_pipeline.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    GW_DELIVER_BOTH,  // phx_reply and a push on the API event
    GW_DELIVER_REPLY, // phx_reply only
    GW_DELIVER_PUSH,  // push only (the reply is an empty ok)
} gw_delivery_t;

typedef struct {
    const char *host;           // listen address ("127.0.0.1", or "" for all)
    int port;                   // listen port; 0 picks a free one
    const char *topics;         // joinable topics, comma-separated; "prefix*" matches a prefix
    const char *api_event;      // the API event name
    gw_delivery_t delivery;     // how immediate responses are delivered
    int64_t max_payload_bytes;  // largest inbound message, checked before parsing
    int64_t max_outbox;         // frames queued per connection before it is closed as slow
    int64_t max_outbox_bytes;   // bytes queued per connection before it is closed as slow
    int64_t max_connections;    // connections accepted at once
    int64_t max_channels;       // channels one connection may join
    int64_t rx_buffer_bytes;    // libwebsockets receive buffer per connection
    gw_auth_config_t auth;      // connection identity
    const char *auth_service;   // auth mode service: the deciding function "service.request_type"
    const char *trusted_proxies; // comma-separated peer addresses whose X-Forwarded-For counts
    const char *tls_cert_file;  // PEM certificate (chain): TLS on the listener; NULL or "": off
    const char *tls_key_file;   // PEM private key of tls_cert_file (set with it)
    const char *allowed_origins; // comma-separated exact Origin values; NULL or "": any
    gw_bridge_config_t bridge;  // broker link settings
    gw_pipeline_config_t pipeline; // pipeline settings
    // Called once, on the loop thread, when the server listens and has the registry.
    void (*on_ready)(int port, void *arg);
    void *on_ready_arg;         // passed to on_ready
    // Admin HTTP listener "host:port" for /metrics, /healthz, /readyz (never the WebSocket
    // port); NULL or "": none. The caller checks exposure (docs/configuration.md).
    const char *metrics_listen;
    const char *admin_token;      // the admin listener's /events needs it (empty: refused)
    // Drain (gw_server_drain): how long calls in flight are awaited before the clients are
    // closed anyway, in ms.
    int64_t shutdown_timeout_ms;
    // Called on the loop thread after gw_server_reload (SIGHUP); may change the settings the
    // loop reads (the auth key, the pipeline's rate limits). NULL: reload does nothing.
    void (*on_reload)(void *arg);
    void *on_reload_arg; // passed to on_reload
} gw_config_t;

typedef struct gw_server_t gw_server_t;

// Creates a server; `cfg` is borrowed and must outlive it. No I/O.
gw_server_t *gw_server_new(const gw_config_t *cfg);
void gw_server_destroy(gw_server_t **self_p);
// Listens and connects to the broker. GA_EIO when the port or endpoint is unusable.
GA_MUST_CHECK ga_err_t gw_server_start(gw_server_t *self);
// The request pipeline, e.g. to register in-process permission callbacks before start.
gw_pipeline_t *gw_server_pipeline(gw_server_t *self);
// The port actually listened on (after start).
int gw_server_port(const gw_server_t *self);
// Serves until gw_server_stop. Returns GA_OK on a requested stop.
GA_MUST_CHECK ga_err_t gw_server_run(gw_server_t *self);
// Asks the loop to stop now: calls in flight are abandoned and connections dropped. Any
// thread; safe from a signal-handling thread.
void gw_server_stop(gw_server_t *self);
// Asks the loop to drain, then stop (docs/operations.md, "Lifecycle"): /readyz turns 503
// "draining", new WebSocket handshakes are refused with 503 and new requests answered
// `Service unavailable`, calls in flight are awaited (up to shutdown_timeout_ms), then the
// clients are closed in batches with 1001 and gw_server_run returns GA_OK once none is left.
// Any thread; safe from a signal-handling thread.
void gw_server_drain(gw_server_t *self);
// Asks the loop to call cfg->on_reload on its thread. Any thread; safe from a signal thread.
void gw_server_reload(gw_server_t *self);
// Whether the last run ended by gw_server_stop before a drain finished.
bool gw_server_stopped_early(const gw_server_t *self);

// Counters (read on the loop thread or after run returns).
typedef struct {
    uint64_t connections;     // connections accepted
    uint64_t frames_in;       // complete inbound messages
    uint64_t malformed;       // messages refused as malformed
    uint64_t oversized;       // connections closed for an oversized message
    uint64_t slow_closed;     // connections closed for a full outbound queue
    uint64_t requests;        // API requests received
    uint64_t undelivered;     // responses whose connection or channel was gone
    uint64_t auth_refused;    // handshakes refused for identity
} gw_stats_t;
gw_stats_t gw_server_stats(const gw_server_t *self);
// The admin listener's port (after start; 0 when metrics_listen is empty).
int gw_server_metrics_port(const gw_server_t *self);

#endif
