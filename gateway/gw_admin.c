// SPDX-License-Identifier: MIT
// The gateway's admin listener and telemetry helpers (see gw_admin.h).
#include "gw_admin.h"

#include "ga_clock.h"
#include "ga_funcfg.h"
#include "ga_httpd.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_metrics.h"
#include "ga_secret.h"
#include "ga_tail.h"
#include "ga_telemetry.h"

#include <string.h>

struct gw_admin_t {
    const char *listen;       // "host:port" (borrowed), or NULL/"" for none
    gw_bridge_t *bridge;      // readiness (borrowed)
    gw_admin_stats_fn *stats; // the server's own figures
    void *arg;                // its argument
    ga_httpd_t *httpd;        // the listener, or NULL
    ga_metrics_t *metrics;    // metrics from events, or NULL
    bool draining;            // stopping: not ready
    const char *admin_token;  // /events needs it (borrowed); NULL or empty: /events refused
};

gw_admin_t *
gw_admin_new(const char *listen, gw_bridge_t *bridge, gw_admin_stats_fn *stats, void *arg)
{
    gw_admin_t *self = ga_calloc(1, sizeof *self);
    self->listen = listen;
    self->bridge = bridge;
    self->stats = stats;
    self->arg = arg;
    return self;
}

void
gw_admin_destroy(gw_admin_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    gw_admin_t *self = *self_p;
    ga_httpd_destroy(&self->httpd);
    ga_metrics_destroy(&self->metrics);
    ga_free(self);
    *self_p = NULL;
}

static int
s_on_http(void *arg, const char *path, ga_buf_t *body, const char **content_type)
{
    gw_admin_t *self = arg;
    if (strcmp(path, "/metrics") == 0) {
        *content_type = GA_METRICS_CONTENT_TYPE;
        ga_metrics_build_info(body, "genapi-gateway");
        ga_metrics_render(self->metrics, body);
        ga_metrics_put(body, "genapi_gateway_broker_connected", "gauge",
                       "1 when the broker is heard within its liveness window.",
                       gw_bridge_is_connected(self->bridge) ? 1 : 0);
        ga_metrics_put(body, "genapi_gateway_registry_loaded", "gauge",
                       "1 once a registry snapshot is held.",
                       gw_bridge_has_snapshot(self->bridge) ? 1 : 0);
        ga_metrics_put(body, "genapi_gateway_inflight_calls", "gauge", "Calls in flight.",
                       (double) gw_bridge_inflight(self->bridge));
        self->stats(self->arg, body);
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        ga_buf_append_str(body, "ok\n"); // answered by the loop: the loop is alive
        return 200;
    }
    if (strcmp(path, "/readyz") == 0) {
        const char *why = self->draining                           ? "draining"
                          : !gw_bridge_has_snapshot(self->bridge) ? "no registry snapshot yet"
                          : !gw_bridge_is_connected(self->bridge) ? "broker not heard"
                                                                  : NULL;
        ga_buf_append_str(body, why ? "not ready: " : "ready");
        if (why) {
            ga_buf_append_str(body, why);
        }
        ga_buf_append_char(body, '\n');
        return why ? 503 : 200;
    }
    ga_buf_append_str(body, "not found: try /metrics, /healthz or /readyz\n");
    return 404;
}

void
gw_admin_set_admin_token(gw_admin_t *self, const char *token)
{
    self->admin_token = token;
}

// Who may tail the gateway's events (/events, genapi-ctl tail): admin_token's holders.
static const char *
s_tail_auth(void *arg, const char *token)
{
    const gw_admin_t *self = arg;
    if (self->admin_token == NULL || self->admin_token[0] == '\0') {
        return "admin operations are off (set admin_token on the gateway)";
    }
    if (!ga_secret_equal(self->admin_token, token, strlen(token))) {
        return "admin token required";
    }
    return NULL;
}

ga_err_t
gw_admin_start(gw_admin_t *self)
{
    if (self->listen == NULL || self->listen[0] == '\0') {
        return GA_OK;
    }
    self->metrics = ga_metrics_new();
    self->httpd = ga_httpd_new(s_on_http, self);
    ga_tail_install(self->httpd, "genapi-gateway", s_tail_auth, self);
    char why[300];
    if (ga_httpd_listen(self->httpd, self->listen, why, sizeof why) != GA_OK) {
        GA_ERR("metrics_listen: %s (set metrics_listen to another host:port, or empty to "
               "disable)",
               why);
        return GA_EIO;
    }
    return GA_OK;
}

int
gw_admin_fd(const gw_admin_t *self)
{
    return self->httpd ? ga_httpd_fd(self->httpd) : -1;
}

void
gw_admin_process(gw_admin_t *self)
{
    if (self->httpd) {
        ga_httpd_process(self->httpd);
    }
}

int
gw_admin_port(const gw_admin_t *self)
{
    return self->httpd ? ga_httpd_port(self->httpd) : 0;
}

void
gw_admin_set_draining(gw_admin_t *self)
{
    self->draining = true;
}

const char *
gw_tm_reason(const char *error, int64_t retry_after_ms)
{
    static const struct {
        const char *prefix;
        const char *reason;
    } map[] = {
        {"Permission denied", "permission_denied"},
        {"Authentication required", "unauthenticated"},
        {"Unknown function", "unknown_function"},
        {"Function disabled", "disabled"},
        {"Service temporarily unavailable", "unavailable"},
        {"Service unavailable", "unavailable"},
        {"Too many requests in flight", "overloaded"},
        {"Rate limit", "rate_limited"},
    };
    if (retry_after_ms > 0) {
        return "rate_limited";
    }
    for (size_t i = 0; error && i < sizeof map / sizeof map[0]; i++) {
        if (strncmp(error, map[i].prefix, strlen(map[i].prefix)) == 0) {
            return map[i].reason;
        }
    }
    return "invalid_request";
}

int64_t
gw_tm_start_us(void)
{
    return ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP) ? ga_clock_us() : 0;
}

void
gw_tm_request_stop(const gw_route_t *route, bool success)
{
    if (route->kind != GW_ROUTE_RESPONSE || route->started_us == 0) {
        return;
    }
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = route->service,
            .request_type = route->request_type, .request_id = route->request_id,
            .response_type = ga_resp_name(route->type),
            .duration_us = ga_clock_us() - route->started_us,
            .success = success ? GA_TM_TRUE : GA_TM_FALSE);
}

void
gw_tm_request_result(const gw_route_t *route, const ga_value_t *body)
{
    if (route->started_us == 0) {
        return;
    }
    const ga_value_t *ok = ga_map_get(body, "ok");
    gw_tm_request_stop(route, ok && ok->type == GA_BOOL && ok->u.b);
}
