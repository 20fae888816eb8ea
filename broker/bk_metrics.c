// SPDX-License-Identifier: MIT
// The broker's telemetry helpers and its admin HTTP listener: /metrics (the events' metrics
// plus the broker's counters), /healthz, /readyz and /events (genapi-ctl tail) (docs/operations.md, "Metrics and health").
#include "bk_internal.h"
#include "bk_registry.h"

#include "ga_clock.h"
#include "ga_httpd.h"
#include "ga_log.h"
#include "ga_metrics.h"
#include "ga_secret.h"
#include "ga_tail.h"
#include "ga_telemetry.h"
#include "ga_wire.h"

#include <stdio.h>
#include <string.h>

void
bk_tm_call(bk_broker_t *self, const bk_call_t *call, ga_event_t ev)
{
    if (!ga_telemetry_is_on(ev)) {
        return;
    }
    ga_value_t body = {0};
    if (call->body.len == 0 ||
        ga_wire_decode(call->body.data, call->body.len, self->arena, &body) != GA_OK) {
        body = ga_nil();
    }
    ga_telemetry_emit(ev, &(const ga_tm_data_t){
                              .service = ga_map_get_str(&body, "service"),
                              .request_type = ga_map_get_str(&body, "request_type"),
                              .version = ga_map_get_str(&body, "version"),
                              .request_id = call->request_id,
                              .node = call->worker ? call->worker->node : NULL,
                              .count = call->fsm.attempts,
                          });
}

void
bk_tm_worker_answered(bk_worker_t *w)
{
    if (w->breaker_until != 0 && w->breaker_until <= ga_clock_ms()) {
        w->breaker_until = 0; // the cooldown passed and it answered: the circuit is closed
        GA_EMIT(GA_EV_WORKER_POOL_CIRCUIT_CLOSE, .node = w->node, .pool_name = w->service);
    }
}

// The broker's own counters, as Prometheus counters.
static void
s_render_stats(const bk_broker_t *self, ga_buf_t *out)
{
    const bk_stats_t *s = &self->stats;
    const struct {
        const char *name;
        const char *help;
        uint64_t value;
    } rows[] = {
        {"genapi_broker_calls_total", "CALLs received from gateways.", s->calls},
        {"genapi_broker_results_total", "RESULTs sent to gateways.", s->results},
        {"genapi_broker_timeouts_total", "Calls answered with a timeout.", s->timeouts},
        {"genapi_broker_workers_lost_total", "Workers dropped for silence.", s->workers_lost},
        {"genapi_broker_malformed_total", "Messages dropped as malformed.", s->malformed},
        {"genapi_broker_late_replies_total", "Replies for calls answered already.",
         s->late_replies},
        {"genapi_broker_undeliverable_total", "Messages a peer could not take.",
         s->undeliverable},
        {"genapi_broker_chunks_total", "Stream chunks forwarded.", s->chunks},
        {"genapi_broker_chunks_dropped_total", "Stream messages a gateway could not take.",
         s->chunks_dropped},
        {"genapi_broker_refused_total", "Messages refused for the sender's key (CURVE).",
         s->refused},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ga_metrics_put(out, rows[i].name, "counter", rows[i].help, (double) rows[i].value);
    }
    // Batches (docs/protocol.md, "Batches"): items per message = items / messages.
    ga_metrics_put(out, "genapi_broker_batch_items_total", "counter",
                   "REQUESTs and RESULTs sent in batches.",
                   (double) (self->to_workers.sent + self->to_gateways.sent));
    ga_metrics_put(out, "genapi_broker_batch_messages_total", "counter",
                   "Messages those batches were sent in.",
                   (double) (self->to_workers.messages + self->to_gateways.messages));
    ga_metrics_put(out, "genapi_broker_inflight_calls", "gauge", "Calls in flight.",
                   (double) ga_inflight_size(self->calls));
    ga_metrics_put(out, "genapi_broker_workers", "gauge", "Workers connected.",
                   (double) bk_registry_worker_count(self->registry));
    ga_metrics_put(out, "genapi_broker_functions", "gauge", "Functions in the registry.",
                   (double) bk_registry_function_count(self->registry));
    ga_metrics_put(out, "genapi_broker_gateways", "gauge", "Gateways connected.",
                   (double) zhash_size(self->gws));
}

static int
s_on_http(void *arg, const char *path, ga_buf_t *body, const char **content_type)
{
    bk_broker_t *self = arg;
    if (strcmp(path, "/metrics") == 0) {
        *content_type = GA_METRICS_CONTENT_TYPE;
        ga_metrics_build_info(body, "genapi-broker");
        ga_metrics_render(self->metrics, body);
        s_render_stats(self, body);
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        ga_buf_append_str(body, "ok\n"); // answered by the loop: the loop is alive
        return 200;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(&self->stop) || self->draining) {
            ga_buf_append_str(body, self->draining ? "not ready: draining\n" : "stopping\n");
            return 503;
        }
        ga_buf_append_str(body, "ready\n"); // answered only once every endpoint is bound
        return 200;
    }
    ga_buf_append_str(body, "not found: try /metrics, /healthz or /readyz\n");
    return 404;
}

// Who may tail the broker's events (/events, genapi-ctl tail): the admin gate of ADMIN, with
// the action "tail".
static const char *
s_tail_auth(void *arg, const char *token)
{
    const bk_broker_t *self = arg;
    const char *admin = self->cfg->admin_token;
    if (admin == NULL || admin[0] == '\0') {
        return "admin operations are off (set admin_token and admin_actions on the broker)";
    }
    if (!ga_secret_equal(admin, token, strlen(token))) {
        return "admin token required";
    }
    if (!ga_curve_allows_service(self->cfg->admin_actions, "tail")) {
        return "admin action not enabled (admin_actions)";
    }
    return NULL;
}

ga_err_t
bk_metrics_start(bk_broker_t *self)
{
    const char *listen = self->cfg->metrics_listen;
    if (listen == NULL || listen[0] == '\0') {
        return GA_OK; // no admin listener: no metrics kept, no handler attached
    }
    self->metrics = ga_metrics_new();
    self->httpd = ga_httpd_new(s_on_http, self);
    ga_tail_install(self->httpd, "genapi-broker", s_tail_auth, self);
    char why[300];
    if (ga_httpd_listen(self->httpd, listen, why, sizeof why) != GA_OK) {
        GA_ERR("metrics_listen: %s (set metrics_listen to another host:port, or empty to "
               "disable)",
               why);
        return GA_EIO;
    }
    return GA_OK;
}

int
bk_broker_metrics_port(const bk_broker_t *self)
{
    return self->httpd ? ga_httpd_port(self->httpd) : 0;
}
