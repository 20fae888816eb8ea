// SPDX-License-Identifier: MIT
// ADMIN: operator requests (genapi-ctl) on the gateway socket, guarded by admin_token: status
// (workers, circuits, functions, failed configs, calls in flight), functions (every registered
// config as its worker pushed it) and stop_stream.
#include "bk_internal.h"

#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_idmap.h"
#include "ga_proto.h"
#include "ga_secret.h"

#include <stdlib.h>
#include <string.h>

// The admin operations, each enabled by name in admin_actions.
static const char *const s_actions[] = {"status", "functions", "stop_stream"};

// Orders configs by service, request_type, then version (unversioned first).
static int
s_config_cmp(const void *pa, const void *pb)
{
    const ga_value_t *a = pa;
    const ga_value_t *b = pb;
    static const char *const keys[] = {"service", "request_type", "version"};
    for (size_t i = 0; i < 3; i++) {
        const char *x = ga_map_get_str(a, keys[i]);
        const char *y = ga_map_get_str(b, keys[i]);
        int c = strcmp(x ? x : "", y ? y : "");
        if (c != 0) {
            return c;
        }
    }
    return 0;
}

bool
bk_admin_action_known(const char *action)
{
    for (size_t i = 0; i < sizeof s_actions / sizeof s_actions[0]; i++) {
        if (strcmp(action, s_actions[i]) == 0) {
            return true;
        }
    }
    return false;
}

// Every registered config's source (of `service` only, when not NULL), sorted.
static ga_value_t
s_functions(bk_broker_t *self, const char *service, ga_arena_t *a)
{
    ga_value_t all = bk_registry_snapshot(self->registry, a);
    ga_value_t out = ga_array(a, all.len ? all.len : 1);
    for (uint32_t i = 0; i < all.len; i++) {
        const char *svc = ga_map_get_str(&all.u.items[i], "service");
        if (service == NULL || (svc && strcmp(svc, service) == 0)) {
            ga_array_push(&out, a, all.u.items[i]);
        }
    }
    if (out.len > 1) {
        qsort(out.u.items, out.len, sizeof out.u.items[0], s_config_cmp);
    }
    return out;
}

static void
s_status_worker(bk_worker_t *w, void *arg)
{
    void **ctx = arg;
    ga_value_t *list = ctx[0];
    ga_arena_t *a = ctx[1];
    int64_t now = *(int64_t *) ctx[2];
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "node", ga_str(w->node ? w->node : ""));
    ga_map_put(&m, a, "service", ga_str(w->service ? w->service : ""));
    ga_map_put(&m, a, "inflight", ga_int((int64_t) w->inflight));
    ga_map_put(&m, a, "failures", ga_int(w->failures));
    ga_map_put(&m, a, "circuit", ga_str(w->breaker_until > now ? "open" : "closed"));
    ga_array_push(list, a, m);
}

// ADMIN: operator requests on the gateway socket (genapi-ctl). Guarded by admin_token.
void
bk_on_admin(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    ga_arena_t *a = self->arena;
    ga_value_t reply = ga_map(a, 6);
    const char *op = ga_map_get_str(&msg->value, "op");
    const char *token = self->cfg->admin_token;
    const char *actions = self->cfg->admin_actions;
    const char *refusal = NULL;
    if (token == NULL || token[0] == '\0') {
        refusal = "admin operations are off (set admin_token and admin_actions on the broker)";
    } else if (!ga_secret_equal_value(token, ga_map_get(&msg->value, "token"))) {
        refusal = "admin token required";
    } else if (op && bk_admin_action_known(op) && !ga_curve_allows_service(actions, op)) {
        refusal = "admin action not enabled (admin_actions)";
    }
    if (refusal) {
        GA_WARN("ADMIN %s refused: %s", op ? op : "?", refusal);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str(refusal));
    } else if (op && strcmp(op, "stop_stream") == 0) {
        const char *rid = ga_map_get_str(&msg->value, "request_id");
        size_t n = rid ? bk_stop_streams(self, rid) : 0;
        ga_map_put(&reply, a, "ok", ga_bool(n > 0));
        ga_map_put(&reply, a, "stopped", ga_int((int64_t) n));
        if (n == 0) {
            ga_map_put(&reply, a, "error", ga_str("no open stream with that request id"));
        }
    } else if (op && strcmp(op, "functions") == 0) {
        const ga_value_t *svc = ga_map_get(&msg->value, "service");
        ga_map_put(&reply, a, "ok", ga_bool(true));
        ga_map_put(&reply, a, "functions",
                   s_functions(self, svc && svc->type == GA_STR ? svc->u.s : NULL, a));
    } else if (op && strcmp(op, "status") == 0) {
        int64_t now = ga_clock_ms();
        ga_value_t workers = ga_array(a, 4);
        void *ctx[3] = {&workers, a, &now};
        bk_registry_each_worker(self->registry, s_status_worker, ctx);
        ga_map_put(&reply, a, "ok", ga_bool(true));
        ga_map_put(&reply, a, "workers", workers);
        ga_map_put(&reply, a, "functions",
                   ga_int((int64_t) bk_registry_function_count(self->registry)));
        ga_map_put(&reply, a, "failed_configs", bk_registry_failed_list(self->registry, a));
        ga_map_put(&reply, a, "calls_in_flight", ga_int((int64_t) ga_inflight_size(self->calls)));
    } else {
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("unknown op (status, functions, stop_stream)"));
    }
    bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
}
