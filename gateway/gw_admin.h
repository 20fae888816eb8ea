// SPDX-License-Identifier: MIT
// The gateway's admin HTTP listener (/metrics, /healthz, /readyz, /events; docs/operations.md, "Metrics
// and health") on its own address, never the public WebSocket port, and the gateway's
// telemetry helpers. Its descriptor is adopted into the libwebsockets loop by gw_server.c.
// Loop thread only.
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include "ga_err.h"
#include "gw_bridge.h"

#include <stdbool.h>

typedef struct gw_admin_t gw_admin_t;

// What /metrics and /readyz read from the server (called on the loop thread).
typedef void(gw_admin_stats_fn)(void *arg, ga_buf_t *out);

// Creates the admin listener for `listen` ("host:port"; NULL or empty: none, and no metrics
// kept). `bridge` is borrowed (readiness: registry held, broker heard); `stats` appends the
// server's own figures. No I/O.
gw_admin_t *gw_admin_new(const char *listen, gw_bridge_t *bridge, gw_admin_stats_fn *stats,
                         void *arg);
void gw_admin_destroy(gw_admin_t **self_p);
// The token /events (genapi-ctl tail) requires (borrowed; NULL or empty: /events refused).
void gw_admin_set_admin_token(gw_admin_t *self, const char *token);
// Listens (nothing when there is no listener). GA_EIO, logged naming metrics_listen.
GA_MUST_CHECK ga_err_t gw_admin_start(gw_admin_t *self);
// The descriptor to poll (-1 when there is no listener); gw_admin_process when readable.
int gw_admin_fd(const gw_admin_t *self);
void gw_admin_process(gw_admin_t *self);
// The port listened on (0: none).
int gw_admin_port(const gw_admin_t *self);
// /readyz turns 503 from now on (the gateway is stopping).
void gw_admin_set_draining(gw_admin_t *self);

// Telemetry: a short refusal reason for metrics ("rate_limited", "permission_denied", ...)
// from a refusal's client message and retry_after_ms. Static string.
const char *gw_tm_reason(const char *error, int64_t retry_after_ms);
// The start time to keep in a route: now in µs when someone listens to request stops, else 0.
int64_t gw_tm_start_us(void);
// Emits genapi.executor.request.stop for `route` (when its start was timed).
void gw_tm_request_stop(const gw_route_t *route, bool success);
// The same for a RESULT body (success: its "ok" is true).
void gw_tm_request_result(const gw_route_t *route, const ga_value_t *body);

#endif
