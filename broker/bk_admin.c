// SPDX-License-Identifier: MIT
// ADMIN: operator requests (genapi-ctl) on the gateway socket, guarded by admin_token: status
// (workers, circuits, functions, failed configs, calls in flight) and stop_stream.
#include "bk_internal.h"

#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_idmap.h"
#include "ga_proto.h"
#include "ga_secret.h"

#include <string.h>

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
    if (token && token[0] && !ga_secret_equal_value(token, ga_map_get(&msg->value, "token"))) {
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("admin token required"));
    } else if (op && strcmp(op, "stop_stream") == 0) {
        const char *rid = ga_map_get_str(&msg->value, "request_id");
        size_t n = rid ? bk_stop_streams(self, rid) : 0;
        ga_map_put(&reply, a, "ok", ga_bool(n > 0));
        ga_map_put(&reply, a, "stopped", ga_int((int64_t) n));
        if (n == 0) {
            ga_map_put(&reply, a, "error", ga_str("no open stream with that request id"));
        }
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
        ga_map_put(&reply, a, "calls_in_flight", ga_int((int64_t) ga_idmap_size(self->calls)));
    } else {
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("unknown op (status, stop_stream)"));
    }
    bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
}
