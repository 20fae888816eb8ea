// SPDX-License-Identifier: MIT
// ga_tail: telemetry events streamed to HTTP clients (`genapi-ctl tail`), on the admin
// listener's GET /events (docs/telemetry.md, "Tailing a running process"). Each client is one
// telemetry handler (attached while it is connected, to the events its `prefix` selects) with
// its own bounded queue of JSON lines: when the client reads too slowly, events are dropped and
// counted, never waited for, and the next line that fits says how many were lost. With no client
// connected no handler is attached, so the events cost what unheard events cost.
#ifndef GA_TAIL_H
#define GA_TAIL_H

#include "ga_httpd.h"
#include "ga_telemetry.h"

#define GA_TAIL_CLIENTS_MAX 4            // tails connected at once (one more gets 503)
#define GA_TAIL_QUEUE_MAX   (256 * 1024) // bytes queued per tail beyond what its socket took

// Decides whether `token` (the Authorization header's bearer token, "" when none) may tail:
// NULL when it may, else the refusal (a static string, sent with 403).
typedef const char *(ga_tail_auth_fn)(void *arg, const char *token);

// Serves /events on `httpd` (owned by it from now on): `program` names the process in the
// first line, `auth` (with `arg`, borrowed for the responder's life) admits clients.
void ga_tail_install(ga_httpd_t *httpd, const char *program, ga_tail_auth_fn *auth, void *arg);

// Appends one event as a JSON line ({"name", "at_ms", "measurements", "metadata"} and '\n').
void ga_tail_format(ga_buf_t *out, ga_event_t event, const ga_tm_data_t *data);

#endif
