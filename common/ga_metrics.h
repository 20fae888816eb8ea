// SPDX-License-Identifier: MIT
// ga_metrics: Prometheus counters, gauges and latency histograms kept from telemetry events
// (ga_telemetry.h), rendered in the Prometheus text format for /metrics (docs/operations.md,
// "Metrics"). Label values come from event metadata (service, request_type, node, key name,
// scope, reason), never from user ids; the number of series is bounded by
// GA_METRICS_SERIES_MAX, beyond which new label sets are counted in one series labelled
// overflow="true". One thread: events must be emitted, and render called, on the same thread
// (the gateway's and the broker's loop).
#ifndef GA_METRICS_H
#define GA_METRICS_H

#include "ga_err.h"
#include "ga_mem.h"

#include <stdint.h>

#define GA_METRICS_SERIES_MAX 2000 // label sets kept across all metrics

typedef struct ga_metrics_t ga_metrics_t;

// Creates the metrics and attaches their telemetry handler (to every event). No I/O.
ga_metrics_t *ga_metrics_new(void);
// Detaches the handler and frees everything.
void ga_metrics_destroy(ga_metrics_t **self_p);
// Appends the exposition of every metric kept (HELP, TYPE, samples) to `out`.
void ga_metrics_render(const ga_metrics_t *self, ga_buf_t *out);

// Helpers for a process's own figures, in the same format: one unlabelled sample with its
// HELP and TYPE lines. `type` is "counter" or "gauge"; counters' names end in _total.
void ga_metrics_put(ga_buf_t *out, const char *name, const char *type, const char *help,
                    double value);

// Appends genapi_build_info{program, version} 1, the build of `program` ("genapi-broker").
void ga_metrics_build_info(ga_buf_t *out, const char *program);

// The content type of the exposition.
#define GA_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
