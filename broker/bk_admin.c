// SPDX-License-Identifier: MIT
// ADMIN: operator requests (genapi-ctl) on the gateway socket, guarded by admin_token: status
// (workers, circuits, functions, failed configs, calls in flight), functions (every registered
// config as its worker pushed it), stop_stream, and the versions operations (docs/operations.md,
// "Versions"): versions, get, get_latest, disable, enable, delete, add_config, batch_add,
// clear, verify (also asked by workers, bk_admin_on_worker); and the
// relay group operations (groups, group_info, group_delete, answered by bk_relay.c). Each
// change of the registry reaches every gateway in one numbered UPDATE.
#include "bk_internal.h"

#include "bk_registry.h"
#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_idmap.h"
#include "ga_proto.h"
#include "ga_secret.h"
#include "ga_telemetry.h"

#include <stdlib.h>
#include <string.h>

#define BK_BATCH_ADD_MAX 1024 // configs in one batch_add

// The admin operations, each enabled by name in admin_actions.
static const char *const s_actions[] = {
    "status", "functions", "stop_stream",
    // Versions and pushes (bk_registry.c overrides).
    "versions", "get", "get_latest", "disable", "enable", "delete", "add_config", "batch_add",
    "clear", "verify",
    // Rate limits (bk_ratelimit.c): reads, then changes.
    "rate_limit_config", "rate_limit_status", "rate_limit_reset", "rate_limit_add",
    "rate_limit_remove", "rate_limit_set",
    // Relay groups (bk_relay.c).
    "groups", "group_info", "group_delete",
    // Read-only views (bk_inspect.c).
    "pool_status", "pushed_services", "call_flow",
    // Not an ADMIN op: the admin listener's /events (genapi-ctl tail; bk_metrics.c).
    "tail"};
#define S_ACTIONS_LIST                                                                           \
    "status, functions, stop_stream, versions, get, get_latest, disable, enable, delete, "       \
    "add_config, batch_add, clear, verify, rate_limit_config, rate_limit_status, "              \
    "rate_limit_reset, "                                                                         \
    "rate_limit_add, rate_limit_remove, rate_limit_set, groups, group_info, group_delete, "        \
    "pool_status, pushed_services, call_flow, tail"

const char *
bk_admin_actions_list(void)
{
    return S_ACTIONS_LIST;
}

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

// A request's string field, or NULL when absent, not a string or empty.
static const char *
s_field(const ga_proto_msg_t *msg, const char *name)
{
    const char *v = ga_map_get_str(&msg->value, name);
    return v && v[0] ? v : NULL;
}

static void
s_fail(ga_value_t *reply, ga_arena_t *a, const char *error)
{
    ga_map_put(reply, a, "ok", ga_bool(false));
    ga_map_put(reply, a, "error", ga_str_dup(a, error, strlen(error)));
}

// get, get_latest: the config (exactly this version, or the one a version-less call gets),
// whether it is callable, and what an operator did to it.
static void
s_get(bk_broker_t *self, const ga_proto_msg_t *msg, bool latest, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const char *service = s_field(msg, "service");
    const char *request_type = s_field(msg, "request_type");
    const char *version = latest ? NULL : s_field(msg, "version");
    if (service == NULL || request_type == NULL) {
        s_fail(reply, a, "service and request_type required");
        return;
    }
    const ga_funcfg_t *cfg =
        latest ? bk_registry_lookup(self->registry, service, request_type, NULL)
               : bk_registry_get(self->registry, service, request_type, version);
    if (cfg == NULL) {
        const char *state =
            bk_registry_override_state(self->registry, service, request_type, version);
        char err[300];
        snprintf(err, sizeof err, "no config %s.%s%s%s%s", service, request_type,
                 latest ? " (no enabled version)" : version ? " " : " (unversioned)",
                 latest || version == NULL ? "" : version,
                 state && strcmp(state, "deleted") == 0 ? ": deleted by an operator" : "");
        s_fail(reply, a, err);
        return;
    }
    const char *state = bk_registry_override_state(self->registry, cfg->service,
                                                   cfg->request_type, cfg->version);
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "config", cfg->source);
    ga_map_put(reply, a, "enabled", ga_bool(!cfg->disabled));
    if (state) {
        ga_map_put(reply, a, "operator", ga_str(state));
    }
}

// disable, enable, delete: the operator's override of one version; every gateway is told.
static void
s_override(bk_broker_t *self, const ga_proto_msg_t *msg, const char *op, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const char *service = s_field(msg, "service");
    const char *request_type = s_field(msg, "request_type");
    const char *version = s_field(msg, "version");
    if (service == NULL || request_type == NULL || version == NULL) {
        s_fail(reply, a,
               "service, request_type and version required (version \"0.0.0\" names the "
               "unversioned config)");
        return;
    }
    ga_value_t changed = ga_array(a, 0);
    ga_value_t removed = ga_array(a, 0);
    char err[300];
    ga_err_t rc;
    if (strcmp(op, "disable") == 0) {
        rc = bk_registry_disable(self->registry, service, request_type, version, a, &changed,
                                 err, sizeof err);
    } else if (strcmp(op, "enable") == 0) {
        rc = bk_registry_enable(self->registry, service, request_type, version, a, &changed,
                                err, sizeof err);
    } else {
        rc = bk_registry_delete(self->registry, service, request_type, version, a, &removed,
                                err, sizeof err);
    }
    if (rc != GA_OK) {
        s_fail(reply, a, err);
        return;
    }
    GA_NOTICE("ADMIN %s %s.%s %s: %u changed, %u removed", op, service, request_type, version,
              changed.len, removed.len);
    bk_broadcast_update(self, &changed, &removed);
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "changed", ga_int((int64_t) (changed.len + removed.len)));
}

// Adds one operator config `cfg` under the registration rules (the allowlist and reserved
// names included), appending what changed to `changed`; NULL, or why it was refused (in `err`
// or static).
static const char *
s_add_one(bk_broker_t *self, const ga_value_t *cfg, ga_value_t *changed, char *err, size_t len)
{
    ga_arena_t *a = self->arena;
    const char *service = cfg->type == GA_MAP ? ga_map_get_str(cfg, "service") : NULL;
    if (service == NULL) {
        return "config required: a function config map with its service";
    }
    ga_value_t body = ga_map(a, 2);
    ga_value_t list = ga_array(a, 1);
    ga_array_push(&list, a, *cfg);
    ga_map_put(&body, a, "service", ga_str(service));
    ga_map_put(&body, a, "functions", list);
    ga_value_t refused;
    ga_value_t kept = bk_access_filter(self, &body, a, &refused);
    if (refused.len) {
        return ga_map_get_str(&refused.u.items[0], "reason");
    }
    (void) kept; // the one config, which the filter let through
    ga_value_t one;
    if (bk_registry_add(self->registry, cfg, a, &one, err, len) != GA_OK) {
        return err;
    }
    for (uint32_t i = 0; i < one.len; i++) {
        ga_array_push(changed, a, one.u.items[i]);
    }
    return NULL;
}

// add_config: an operator's config (as ConfigDb.add), under the registration rules (the
// allowlist and reserved names included); every gateway is told.
static void
s_add_config(bk_broker_t *self, const ga_proto_msg_t *msg, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const ga_value_t *cfg = ga_map_get(&msg->value, "config");
    ga_value_t changed = ga_array(a, 1);
    char err[300];
    const char *why = cfg ? s_add_one(self, cfg, &changed, err, sizeof err)
                          : "config required: a function config map with its service";
    if (why) {
        s_fail(reply, a, why);
        return;
    }
    GA_NOTICE("ADMIN add_config %s.%s: %u changed", ga_map_get_str(cfg, "service"),
              ga_map_get_str(cfg, "request_type"), changed.len);
    bk_broadcast_update(self, &changed, NULL);
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "changed", ga_int((int64_t) changed.len));
}

// batch_add: a list of operator configs, each taken or refused alone (partial acceptance);
// the refused ones are listed with their reasons and recorded in the failed-configs list, and
// the gateways hear of every change in one UPDATE.
static void
s_batch_add(bk_broker_t *self, const ga_proto_msg_t *msg, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const ga_value_t *configs = ga_map_get(&msg->value, "configs");
    if (configs == NULL || configs->type != GA_ARRAY || configs->len == 0 ||
        configs->len > BK_BATCH_ADD_MAX) {
        char err[120];
        snprintf(err, sizeof err, "configs required: a list of 1 to %d function config maps",
                 BK_BATCH_ADD_MAX);
        s_fail(reply, a, err);
        return;
    }
    ga_value_t changed = ga_array(a, configs->len);
    ga_value_t refused = ga_array(a, 0);
    uint32_t added = 0;
    for (uint32_t i = 0; i < configs->len; i++) {
        const ga_value_t *cfg = &configs->u.items[i];
        char err[300];
        const char *why = s_add_one(self, cfg, &changed, err, sizeof err);
        if (why == NULL) {
            added++;
            continue;
        }
        const char *service = cfg->type == GA_MAP ? ga_map_get_str(cfg, "service") : NULL;
        const char *rt = cfg->type == GA_MAP ? ga_map_get_str(cfg, "request_type") : NULL;
        bk_registry_record_failed(self->registry, service ? service : "(none)",
                                  rt ? rt : "(unnamed)", why);
        ga_value_t entry = ga_map(a, 4);
        ga_map_put(&entry, a, "index", ga_int(i));
        ga_map_put(&entry, a, "service", service ? ga_str(service) : ga_nil());
        ga_map_put(&entry, a, "function", ga_str(rt ? rt : "(unnamed)"));
        ga_map_put(&entry, a, "reason", ga_str_dup(a, why, strlen(why)));
        ga_array_push(&refused, a, entry);
    }
    GA_NOTICE("ADMIN batch_add: %u of %u config(s) added, %u refused, %u changed", added,
              configs->len, refused.len, changed.len);
    GA_EMIT(GA_EV_CONFIG_BATCH_ADD, .count = added,
            .success = refused.len ? GA_TM_FALSE : GA_TM_TRUE,
            .reason = refused.len ? "partial" : NULL);
    bk_broadcast_update(self, &changed, NULL);
    ga_map_put(reply, a, "ok", ga_bool(refused.len == 0));
    if (refused.len) {
        char err[120];
        snprintf(err, sizeof err, "%u of %u config(s) refused (the others were added)",
                 refused.len, configs->len);
        ga_map_put(reply, a, "error", ga_str_dup(a, err, strlen(err)));
    }
    ga_map_put(reply, a, "added", ga_int(added));
    ga_map_put(reply, a, "changed", ga_int((int64_t) changed.len));
    ga_map_put(reply, a, "refused", refused);
}

// clear's walk of the workers: asks each registered worker of the cleared service (of all)
// to push its table again, keeping its session (no call in flight is lost).
typedef struct {
    bk_broker_t *self;
    const char *service; // NULL: every service
    int64_t asked;       // workers asked
} s_clear_t;

static void
s_clear_worker(bk_worker_t *w, void *arg)
{
    s_clear_t *c = arg;
    if (!w->registered || w->service == NULL ||
        (c->service && strcmp(w->service, c->service) != 0)) {
        return;
    }
    ga_arena_t *a = c->self->arena;
    ga_value_t m = ga_map(a, 2);
    ga_map_put(&m, a, "reason", ga_str("config cleared by an operator: push your table again"));
    ga_map_put(&m, a, "keep_session", ga_bool(true));
    bk_send(c->self, c->self->workers, w->id, w->id_len, GA_CMD_DISCONNECT, &m);
    c->asked++;
}

// clear: every config of a service (of all without one) flushed, the gateways told, and the
// live workers asked for their tables (a flush and reload).
static void
s_clear(bk_broker_t *self, const ga_proto_msg_t *msg, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const char *service = s_field(msg, "service");
    ga_value_t removed;
    size_t n = bk_registry_clear(self->registry, service, a, &removed);
    bk_broadcast_update(self, NULL, &removed);
    s_clear_t c = {.self = self, .service = service};
    bk_registry_each_worker(self->registry, s_clear_worker, &c);
    GA_NOTICE("ADMIN clear %s: %zu config(s) removed, %lld worker(s) asked to push again",
              service ? service : "(every service)", n, (long long) c.asked);
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "removed", ga_int((int64_t) n));
    ga_map_put(reply, a, "workers_asked", ga_int(c.asked));
}

// verify: the service's pushed config_version against `version`, as {result | status,
// stored_version?} into `out` (the operator's reply names it `result`, a worker's `status`).
static void
s_verify_into(bk_broker_t *self, const char *service, const char *version, const char *key,
              ga_value_t *out)
{
    ga_arena_t *a = self->arena;
    const char *stored = NULL;
    bk_verify_t v = bk_registry_verify(self->registry, service, version, &stored);
    ga_map_put(out, a, key,
               ga_str(v == BK_VERIFY_MATCHED    ? "matched"
                      : v == BK_VERIFY_MISMATCH ? "mismatch"
                                                : "not_found"));
    if (v == BK_VERIFY_MISMATCH) {
        ga_map_put(out, a, "stored_version",
                   stored ? ga_str_dup(a, stored, strlen(stored)) : ga_nil());
    }
}

static void
s_verify(bk_broker_t *self, const ga_proto_msg_t *msg, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    const char *service = s_field(msg, "service");
    const char *version = s_field(msg, "version");
    if (service == NULL || version == NULL) {
        s_fail(reply, a, "service and version required");
        return;
    }
    ga_map_put(reply, a, "ok", ga_bool(true));
    s_verify_into(self, service, version, "result", reply);
}

void
bk_admin_on_worker(bk_broker_t *self, const bk_worker_t *w, const ga_proto_msg_t *msg)
{
    ga_arena_t *a = self->arena;
    int64_t id = ga_map_get_int(&msg->value, "id", 0);
    if (id <= 0) {
        self->stats.malformed++;
        GA_WARN("ADMIN from worker %s without an id dropped", w->node ? w->node : "?");
        return;
    }
    const char *op = ga_map_get_str(&msg->value, "op");
    const char *service = s_field(msg, "service");
    const char *version = s_field(msg, "version");
    char why[300];
    const char *error = NULL;
    bool can_retry = false;
    if (!w->registered) {
        error = "Service unavailable: register first";
        can_retry = true;
    } else if (op == NULL || strcmp(op, "verify") != 0 || service == NULL || version == NULL) {
        self->stats.malformed++;
        error = "invalid worker request: op \"verify\" with service and version (the only "
                "admin operation a worker may ask)";
    } else if (!bk_access_worker_verify(self, msg, service, why, sizeof why)) {
        error = why;
    }
    ga_value_t r = ga_map(a, 5);
    ga_map_put(&r, a, "id", ga_int(id));
    if (error) {
        ga_map_put(&r, a, "ok", ga_bool(false));
        ga_map_put(&r, a, "error", ga_str_dup(a, error, strlen(error)));
        ga_map_put(&r, a, "code", ga_int(can_retry ? GA_EUNAVAIL : GA_EINVAL));
        ga_map_put(&r, a, "can_retry", ga_bool(can_retry));
    } else {
        ga_value_t result = ga_map(a, 2);
        s_verify_into(self, service, version, "status", &result);
        ga_map_put(&r, a, "ok", ga_bool(true));
        ga_map_put(&r, a, "result", result);
    }
    bk_send(self, self->workers, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &r);
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
    } else if (bk_ratelimit_is_op(op)) {
        bk_ratelimit_admin(self, msg); // answered once the gateways have
        return;
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
        ga_map_put(&reply, a, "pulls", bk_pull_status(self, a));
    } else if (op && (strcmp(op, "get") == 0 || strcmp(op, "get_latest") == 0)) {
        s_get(self, msg, strcmp(op, "get_latest") == 0, &reply);
    } else if (op && (strcmp(op, "disable") == 0 || strcmp(op, "enable") == 0 ||
                      strcmp(op, "delete") == 0)) {
        s_override(self, msg, op, &reply);
    } else if (op && strcmp(op, "versions") == 0) {
        ga_map_put(&reply, a, "ok", ga_bool(true));
        ga_map_put(&reply, a, "versions",
                   bk_registry_versions(self->registry, s_field(msg, "service"), a));
    } else if (op && strcmp(op, "add_config") == 0) {
        s_add_config(self, msg, &reply);
    } else if (op && strcmp(op, "batch_add") == 0) {
        s_batch_add(self, msg, &reply);
    } else if (op && strcmp(op, "clear") == 0) {
        s_clear(self, msg, &reply);
    } else if (op && strcmp(op, "verify") == 0) {
        s_verify(self, msg, &reply);
    } else if (op && strncmp(op, "group", 5) == 0 && bk_admin_action_known(op)) {
        bk_relay_admin(self, op, &msg->value, &reply);
    } else if (op && bk_inspect_admin(self, op, &msg->value, &reply)) {
        // answered
    } else {
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("unknown op (" S_ACTIONS_LIST ")"));
    }
    bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
}
