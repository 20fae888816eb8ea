// SPDX-License-Identifier: MIT
// The broker: one thread, one poll loop over two ROUTER sockets (workers, gateways), the
// XSUB/XPUB stream proxy and a wake-up pipe. It owns the registry, worker and gateway liveness,
// the routing of every call with its deadline, and the forwarding of stream chunks.
// Everything except bk_broker_stop runs on the thread that calls bk_broker_run.
#ifndef BK_BROKER_H
#define BK_BROKER_H

#include "ga_err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *worker_endpoint;  // ROUTER for workers, e.g. "tcp://*:5570"
    const char *gateway_endpoint; // ROUTER for gateways, e.g. "tcp://*:5571"
    int64_t heartbeat_ms;         // heartbeat interval; peers are dead after 3 silent ones
    const char *stream_in_endpoint;  // XSUB: workers publish stream chunks here
    const char *stream_out_endpoint; // XPUB: gateways subscribe to their chunks here
    const char *push_token;       // required in every REGISTER when non-empty
    const char *admin_token;      // required in every ADMIN; empty: every ADMIN is refused
    // Admin operations allowed (comma-separated: status, functions, stop_stream); empty: none.
    const char *admin_actions;
    int64_t hwm;                  // ZeroMQ send/receive high-water mark per peer (messages)
    int64_t breaker_threshold;    // consecutive failures that open a worker's circuit
    int64_t breaker_cooldown_ms;  // how long an open circuit skips the worker
    // CurveZMQ (docs/security.md): both set, or both NULL/empty (CURVE off).
    const char *curve_secret_file; // the broker's certificate (FILE and FILE_secret), role broker
    const char *curve_peers_dir;   // public certificates of the gateways, workers and operators
    // Functions workers may register: comma-separated "service" or "service.function"; NULL or
    // empty: any (reserved names excepted).
    const char *allowlist;
    // Sticky routing's state file (docs/configuration.md): read at bind, written atomically at
    // most every BK_STICKY_SAVE_MS while the mapping changes, and at stop. NULL or empty: none.
    const char *state_file;
    int64_t max_groups;          // relay groups at most (docs/configuration.md)
    int64_t max_group_members;   // members per relay group at most
    // Relay groups' state file (docs/configuration.md): read at bind, written atomically with
    // the sticky state (at most every BK_STICKY_SAVE_MS while groups change) and at stop.
    const char *relay_state_file;
    // Config pull (docs/configuration.md): every pull_interval_ms (0: never) each registered
    // worker of the pulled services is asked for its table, each pull bounded by
    // pull_timeout_ms; service_configs (JSON, NULL or "[]": every service) names the services.
    int64_t pull_interval_ms;
    int64_t pull_timeout_ms;
    const char *service_configs;
    // How long a nodes resolver's answer is used before it is asked again (0: 5000 ms).
    int64_t resolver_cache_ms;
    // Admin HTTP listener (/metrics, /healthz, /readyz) "host:port"; NULL or empty: none. The
    // caller checks exposure (docs/configuration.md, metrics_listen).
    const char *metrics_listen;
    // Drain (bk_broker_drain): how long calls in flight are awaited, in ms.
    int64_t shutdown_timeout_ms;
    // Called on the loop thread after bk_broker_reload (SIGHUP); may change the settings the
    // loop reads (tokens, rate limits). NULL: reload does nothing.
    void (*on_reload)(void *arg);
    void *on_reload_arg; // passed to on_reload
} bk_config_t;

typedef struct bk_broker_t bk_broker_t;

// Creates a broker; `cfg` is borrowed and must outlive it. No I/O.
bk_broker_t *bk_broker_new(const bk_config_t *cfg);
void bk_broker_destroy(bk_broker_t **self_p);
// Creates and binds the sockets. GA_EIO with a logged reason when an endpoint cannot be bound.
GA_MUST_CHECK ga_err_t bk_broker_bind(bk_broker_t *self);
// Checks what bind would check, without binding or creating sockets (genapi-broker check):
// the CURVE files, admin_actions, the state files, the pull settings. GA_ECONFIG, logged.
GA_MUST_CHECK ga_err_t bk_broker_check(bk_broker_t *self);
// The bound endpoints with real ports ("tcp://127.0.0.1:40123"); valid after bind.
const char *bk_broker_worker_endpoint(const bk_broker_t *self);
const char *bk_broker_gateway_endpoint(const bk_broker_t *self);
const char *bk_broker_stream_in_endpoint(const bk_broker_t *self);
const char *bk_broker_stream_out_endpoint(const bk_broker_t *self);
// The admin listener's port (after bind; 0 when metrics_listen is empty).
int bk_broker_metrics_port(const bk_broker_t *self);
// Runs the loop until bk_broker_stop. Returns GA_OK on a requested stop.
GA_MUST_CHECK ga_err_t bk_broker_run(bk_broker_t *self);
// Asks the loop to stop now. Any thread; async-signal-safe.
void bk_broker_stop(bk_broker_t *self);
// Asks the loop to drain, then stop (docs/operations.md, "Lifecycle"): /readyz turns 503
// "draining", new CALLs are answered `Service unavailable`, the answers of calls in flight
// are still routed (up to shutdown_timeout_ms), then every worker and gateway is sent
// DISCONNECT "broker stopping" and bk_broker_run returns GA_OK. Any thread; async-signal-safe.
void bk_broker_drain(bk_broker_t *self);
// Asks the loop to call cfg->on_reload on its thread. Any thread; async-signal-safe.
void bk_broker_reload(bk_broker_t *self);
// Whether the last run ended by bk_broker_stop before a drain finished.
bool bk_broker_stopped_early(const bk_broker_t *self);

// The broker's cluster-wide rate limits (owned by the broker; disabled until configured with
// ga_ratelimit_configure, before bk_broker_run or on the loop thread).
typedef struct ga_ratelimit_t ga_ratelimit_t;
ga_ratelimit_t *bk_broker_rate_limits(bk_broker_t *self);

// Counters, for tests (read on the loop thread or after run returns). No endpoint exports them.
typedef struct {
    uint64_t calls;         // CALLs received
    uint64_t results;       // RESULTs sent to gateways
    uint64_t timeouts;      // calls answered with a timeout
    uint64_t workers_lost;  // workers dropped for silence
    uint64_t malformed;     // messages dropped as malformed
    uint64_t late_replies;  // replies for calls already answered
    uint64_t undeliverable; // messages a peer could not take (gone or full)
    uint64_t chunks;        // stream chunks forwarded
    uint64_t chunks_dropped; // stream messages a gateway could not take (the stream is ended)
    uint64_t breaker_opened; // times a worker's circuit opened
    uint64_t refused;        // messages refused for the sender's key (CURVE on)
    uint64_t retries;        // attempts after a call's first (fallback and retry)
    uint64_t retries_exhausted; // calls answered after using every attempt they were allowed
    uint64_t relay_published;   // relay messages published on the proxy
    uint64_t relay_dropped;     // relay messages the proxy could not take (the sender is told)
} bk_stats_t;
bk_stats_t bk_broker_stats(const bk_broker_t *self);

#endif
