// SPDX-License-Identifier: MIT
// Config pull (docs/protocol.md, "Config pull"): every pull_interval the broker asks each
// registered worker of the pulled services (all, or the service_configs list) for its function
// table, first through the cheap PULL_VERSION when the service offers it, and pulls the whole
// table (PULL) only when the version differs from the one it knows. A pulled table takes the
// registration path of a push (validated config by config, refused ones listed, an UPDATE to
// every gateway). A worker that does not answer within pull_timeout is asked again after
// pull_interval × 2^failures, at most BK_PULL_BACKOFF_MAX_MS. Loop thread only.
#ifndef BK_PULL_H
#define BK_PULL_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_proto.h"
#include "ga_value.h"

#include <stddef.h>
#include <stdint.h>

#define BK_PULL_BACKOFF_MAX_MS (5 * 60 * 1000LL) // longest wait after failed pulls
#define BK_PULL_SERVICES_MAX   256               // entries in service_configs

typedef struct bk_pull_t bk_pull_t;
typedef struct bk_broker_t bk_broker_t;

// Creates the pull state: off until bk_pull_configure.
bk_pull_t *bk_pull_new(void);
void bk_pull_destroy(bk_pull_t **self_p);

// Sets the schedule (`interval_ms` 0: no pulls) and the services pulled from
// `service_configs`, a JSON list (NULL or empty text, or []: every registered service) whose
// entries are a service name or {service, version_check (default true)}; version_check false
// skips PULL_VERSION and pulls the whole table each time. GA_ECONFIG with the reason, naming
// the field, in `err`.
GA_MUST_CHECK ga_err_t bk_pull_configure(bk_pull_t *self, int64_t interval_ms,
                                         int64_t timeout_ms, const char *service_configs,
                                         char *err, size_t errlen);

// The broker's share: sends the pulls that are due, fails those past pull_timeout (backing
// the worker off), and forgets workers that are gone. Cheap when nothing is due.
void bk_pull_tick(bk_broker_t *broker, int64_t now);
// The monotonic ms at which bk_pull_tick next has something to do (INT64_MAX: never).
int64_t bk_pull_next_due(const bk_broker_t *broker);
// A worker's PULLED (the routing id in `msg` is a registered worker's).
void bk_pull_on_reply(bk_broker_t *broker, const ga_proto_msg_t *msg);
// Counters and each pulled worker's state, for genapi-ctl status (in `a`): {interval_ms,
// timeout_ms, version_pulls, full_pulls, skipped, changes, failures, workers: [{node, service,
// config_version, failures, backoff_ms}]}.
ga_value_t bk_pull_status(const bk_broker_t *broker, ga_arena_t *a);

#endif
