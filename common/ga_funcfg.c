// SPDX-License-Identifier: MIT
// Parsing and registration-time validation of function configs (docs/protocol.md, "Function
// config"). Every rule failure returns GA_ECONFIG with a message that starts with the field's
// name; so does a field whose feature is not built yet.
#include "ga_funcfg.h"

#include "ga_mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_resp_names[] = {"sync", "async", "stream", "none"};
static const char *const s_type_names[] = {
    "string", "num",        "boolean",  "uuid",     "datetime", "naive_datetime", "list",
    "list_string", "list_num", "list_uuid", "list_map", "map",  "any"};

const char *
ga_resp_name(ga_resp_t r)
{
    return s_resp_names[r];
}

int
ga_resp_parse(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, s_resp_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *
ga_argtype_name(ga_argtype_t t)
{
    return s_type_names[t];
}

// "a, b, c" from a NULL-terminated or counted list of names, into `out`.
static void
s_join(const char *const *names, size_t n, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && names[i] && used < outlen; i++) {
        int k = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", names[i]);
        used += k > 0 ? (size_t) k : 0;
    }
}

int
ga_argtype_parse(const char *name)
{
    for (int i = 0; i < (int) (sizeof s_type_names / sizeof s_type_names[0]); i++) {
        if (strcmp(name, s_type_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

// Parsing state: the config being built and where to write a refusal.
typedef struct {
    ga_funcfg_t *cfg; // config under construction
    char *err;        // message buffer
    size_t errlen;    // its size
} parse_t;

__attribute__((format(printf, 2, 3))) static ga_err_t
s_fail(parse_t *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err, ps->errlen, fmt, ap);
    va_end(ap);
    return GA_ECONFIG;
}

// A non-empty string field, copied into the config's arena (already there: source is a copy).
static ga_err_t
s_name(parse_t *ps, const ga_value_t *v, const char *field, const char **out, bool required)
{
    if (v == NULL || v->type == GA_NIL) {
        if (required) {
            return s_fail(ps, "%s: required", field);
        }
        *out = NULL;
        return GA_OK;
    }
    if (v->type != GA_STR || v->len == 0 || strlen(v->u.s) != v->len) {
        return s_fail(ps, "%s: must be a non-empty string", field);
    }
    if (v->len > 255) {
        return s_fail(ps, "%s: longer than 255 bytes", field);
    }
    *out = v->u.s;
    return GA_OK;
}

// A list of non-empty strings.
static ga_err_t
s_str_list(parse_t *ps, const ga_value_t *v, const char *field, const char *const **out,
           uint32_t *n)
{
    if (v->type != GA_ARRAY) {
        return s_fail(ps, "%s: must be a list of strings", field);
    }
    const char **list = ga_arena_alloc(ps->cfg->arena, sizeof(char *) * (v->len + 1));
    for (uint32_t i = 0; i < v->len; i++) {
        const ga_value_t *item = &v->u.items[i];
        if (item->type != GA_STR || item->len == 0) {
            return s_fail(ps, "%s: item %u must be a non-empty string", field, i);
        }
        list[i] = item->u.s;
    }
    list[v->len] = NULL;
    *out = list;
    *n = v->len;
    return GA_OK;
}

static ga_err_t
s_limit(parse_t *ps, const ga_value_t *v, const char *arg, const char *opt, int64_t *out)
{
    if (v->type != GA_INT || v->u.i < 0 || v->u.i > INT32_MAX) {
        return s_fail(ps, "arg_types.%s.%s: must be a non-negative integer", arg, opt);
    }
    *out = v->u.i;
    return GA_OK;
}

static const char *const s_option_names[] = {
    "type", "max_bytes", "max_items", "max_item_bytes", "allow_nil", "default_value", "required",
    "accept"};

// One entry of arg_types: "type" or {type: ..., max_bytes: ..., ...}.
static ga_err_t
s_argspec(parse_t *ps, const char *name, const ga_value_t *v, ga_argspec_t *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->name = name;
    spec->max_bytes = -1;
    spec->max_items = -1;
    spec->max_item_bytes = -1;
    const ga_value_t *type = v;
    if (v->type == GA_MAP) {
        type = ga_map_get(v, "type");
        if (type == NULL) {
            return s_fail(ps, "arg_types.%s.type: required", name);
        }
    }
    if (type->type != GA_STR) {
        return s_fail(ps, "arg_types.%s: type must be a string", name);
    }
    int t = ga_argtype_parse(type->u.s);
    if (t < 0) {
        char valid[200];
        s_join(s_type_names, sizeof s_type_names / sizeof s_type_names[0], valid, sizeof valid);
        return s_fail(ps, "arg_types.%s: unknown type \"%s\" (valid: %s)", name, type->u.s,
                      valid);
    }
    spec->type = (ga_argtype_t) t;
    if (v->type != GA_MAP) {
        return GA_OK;
    }
    const ga_value_t *dflt = NULL;
    for (uint32_t i = 0; i < v->len; i++) {
        const char *opt = v->u.pairs[i].key;
        const ga_value_t *ov = &v->u.pairs[i].value;
        ga_err_t rc = GA_OK;
        bool is_list = spec->type >= GA_ARG_LIST && spec->type <= GA_ARG_LIST_MAP;
        if (strcmp(opt, "type") == 0) {
            continue;
        } else if (strcmp(opt, "max_bytes") == 0) {
            if (spec->type != GA_ARG_STRING) {
                return s_fail(ps, "arg_types.%s.max_bytes: applies to string only", name);
            }
            rc = s_limit(ps, ov, name, opt, &spec->max_bytes);
        } else if (strcmp(opt, "max_items") == 0) {
            if (!is_list && spec->type != GA_ARG_MAP) {
                return s_fail(ps, "arg_types.%s.max_items: applies to lists and map only", name);
            }
            rc = s_limit(ps, ov, name, opt, &spec->max_items);
        } else if (strcmp(opt, "max_item_bytes") == 0) {
            if (spec->type != GA_ARG_LIST_STRING) {
                return s_fail(ps, "arg_types.%s.max_item_bytes: applies to list_string only",
                              name);
            }
            rc = s_limit(ps, ov, name, opt, &spec->max_item_bytes);
        } else if (strcmp(opt, "allow_nil") == 0) {
            if (ov->type != GA_BOOL) {
                return s_fail(ps, "arg_types.%s.allow_nil: must be a boolean", name);
            }
            spec->allow_nil = ov->u.b;
        } else if (strcmp(opt, "default_value") == 0) {
            dflt = ov;
        } else if (strcmp(opt, "required") == 0 || strcmp(opt, "accept") == 0) {
            bool req = opt[0] == 'r';
            if (spec->type != GA_ARG_MAP) {
                return s_fail(ps, "arg_types.%s.%s: applies to map only", name, opt);
            }
            char field[300];
            snprintf(field, sizeof field, "arg_types.%s.%s", name, opt);
            rc = req ? s_str_list(ps, ov, field, &spec->required, &spec->n_required)
                     : s_str_list(ps, ov, field, &spec->accept, &spec->n_accept);
        } else {
            char valid[200];
            s_join(s_option_names, sizeof s_option_names / sizeof s_option_names[0], valid,
                   sizeof valid);
            return s_fail(ps, "arg_types.%s.%s: unknown option (valid: %s)", name, opt, valid);
        }
        if (rc != GA_OK) {
            return rc;
        }
    }
    if (dflt) {
        // The default must itself be valid for the type (and is not nil unless allowed).
        char why[200];
        if (ga_arg_check(spec, dflt, why, sizeof why) != GA_OK) {
            return s_fail(ps, "arg_types.%s.default_value: does not fit the type (%s)", name, why);
        }
        spec->has_default = true;
        spec->default_value = *dflt;
    }
    return GA_OK;
}

static ga_err_t
s_args(parse_t *ps, const ga_value_t *types, const ga_value_t *orders)
{
    ga_funcfg_t *cfg = ps->cfg;
    if (types == NULL || types->type == GA_NIL) {
        if (orders && orders->type == GA_ARRAY && orders->len > 0) {
            return s_fail(ps, "arg_orders: names arguments but arg_types declares none");
        }
        cfg->args_as_map = orders && orders->type == GA_STR && strcmp(orders->u.s, "map") == 0;
        return GA_OK;
    }
    if (types->type != GA_MAP) {
        return s_fail(ps, "arg_types: must be a map of argument name to type");
    }
    if (types->len > GA_FUNCFG_MAX_ARGS) {
        return s_fail(ps, "arg_types: more than %d arguments", GA_FUNCFG_MAX_ARGS);
    }
    cfg->n_args = types->len;
    cfg->args = ga_arena_alloc(cfg->arena, sizeof(ga_argspec_t) * (types->len + 1));
    // Order: arg_orders when it is a list, else declaration order.
    const ga_value_t *order_list = NULL;
    if (orders && orders->type != GA_NIL) {
        if (orders->type == GA_STR && strcmp(orders->u.s, "map") == 0) {
            cfg->args_as_map = true;
        } else if (orders->type == GA_ARRAY) {
            order_list = orders;
        } else {
            return s_fail(ps, "arg_orders: must be a list of argument names or \"map\"");
        }
    }
    if (order_list && order_list->len != types->len) {
        return s_fail(ps, "arg_orders: must name each of the %u declared arguments once",
                      types->len);
    }
    for (uint32_t i = 0; i < types->len; i++) {
        const ga_pair_t *p;
        if (order_list) {
            const ga_value_t *name = &order_list->u.items[i];
            if (name->type != GA_STR) {
                return s_fail(ps, "arg_orders: item %u must be a string", i);
            }
            for (uint32_t j = 0; j < i; j++) {
                if (strcmp(cfg->args[j].name, name->u.s) == 0) {
                    return s_fail(ps, "arg_orders: \"%s\" named twice", name->u.s);
                }
            }
            p = NULL;
            for (uint32_t j = 0; j < types->len; j++) {
                if (strcmp(types->u.pairs[j].key, name->u.s) == 0) {
                    p = &types->u.pairs[j];
                }
            }
            if (p == NULL) {
                return s_fail(ps, "arg_orders: \"%s\" is not declared in arg_types", name->u.s);
            }
        } else {
            p = &types->u.pairs[i];
        }
        if (p->key_len == 0) {
            return s_fail(ps, "arg_types: argument names must be non-empty");
        }
        ga_err_t rc = s_argspec(ps, p->key, &p->value, &cfg->args[i]);
        if (rc != GA_OK) {
            return rc;
        }
    }
    return GA_OK;
}

static ga_err_t
s_timeout(parse_t *ps, const ga_value_t *v, const char *field, int64_t *out, bool allow_inf)
{
    if (v == NULL || v->type == GA_NIL) {
        return GA_OK; // keep the default
    }
    if (allow_inf && v->type == GA_STR && strcmp(v->u.s, "infinity") == 0) {
        *out = GA_FUNCFG_TIMEOUT_INFINITY;
        return GA_OK;
    }
    if (v->type != GA_INT || v->u.i < GA_FUNCFG_TIMEOUT_MIN || v->u.i > GA_FUNCFG_TIMEOUT_MAX) {
        return s_fail(ps, "%s: must be %d..%d ms%s", field, GA_FUNCFG_TIMEOUT_MIN,
                      GA_FUNCFG_TIMEOUT_MAX, allow_inf ? " or \"infinity\"" : "");
    }
    *out = v->u.i;
    return GA_OK;
}

static bool
s_has_prefix_arg(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 && s[n] != '\0';
}

static const char *const s_request_fields[] = {"user_id", "device_id", "ip", "request_id"};

bool
ga_funcfg_is_request_field(const char *name)
{
    for (size_t i = 0; i < sizeof s_request_fields / sizeof s_request_fields[0]; i++) {
        if (strcmp(name, s_request_fields[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
s_declared(const ga_funcfg_t *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_args; i++) {
        if (strcmp(cfg->args[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

// choose_node_mode (after the arguments: hash:ARG and sticky:KEY name one).
static ga_err_t
s_node_mode(parse_t *ps, const ga_value_t *v)
{
    ga_funcfg_t *cfg = ps->cfg;
    const char *mode = "random";
    ga_err_t rc = s_name(ps, v, "choose_node_mode", &mode, false);
    if (rc != GA_OK) {
        return rc;
    }
    if (mode == NULL) {
        mode = "random";
    }
    cfg->choose_node_mode = mode;
    cfg->node_key = NULL;
    if (strcmp(mode, "random") == 0) {
        cfg->node_mode = GA_NODE_RANDOM;
    } else if (strcmp(mode, "hash") == 0) {
        cfg->node_mode = GA_NODE_HASH;
    } else if (strcmp(mode, "round_robin") == 0) {
        cfg->node_mode = GA_NODE_ROUND_ROBIN;
    } else if (strcmp(mode, "least_loaded") == 0) {
        cfg->node_mode = GA_NODE_LEAST_LOADED;
    } else if (s_has_prefix_arg(mode, "hash:")) {
        cfg->node_mode = GA_NODE_HASH_ARG;
        cfg->node_key = mode + 5;
        cfg->node_key_is_arg = true;
        if (!s_declared(cfg, cfg->node_key)) {
            return s_fail(ps, "choose_node_mode: hash:%s names no declared argument",
                          cfg->node_key);
        }
    } else if (s_has_prefix_arg(mode, "sticky:")) {
        cfg->node_mode = GA_NODE_STICKY;
        cfg->node_key = mode + 7;
        cfg->node_key_is_arg = s_declared(cfg, cfg->node_key);
        if (!cfg->node_key_is_arg && !ga_funcfg_is_request_field(cfg->node_key)) {
            return s_fail(ps, "choose_node_mode: sticky:%s names neither a declared argument "
                              "nor a request field (user_id, device_id, ip, request_id)",
                          cfg->node_key);
        }
    } else {
        return s_fail(ps, "choose_node_mode: must be random, hash, hash:ARG, round_robin, "
                          "sticky:KEY or least_loaded");
    }
    return GA_OK;
}

static ga_err_t
s_permission(parse_t *ps, const ga_value_t *v)
{
    ga_funcfg_t *cfg = ps->cfg;
    cfg->check_permission = "false";
    if (v == NULL || v->type == GA_NIL || (v->type == GA_BOOL && !v->u.b)) {
        return GA_OK;
    }
    if (v->type != GA_STR) {
        return s_fail(ps, "check_permission: must be false, \"any_authenticated\", "
                          "\"arg:NAME\" or \"role:[...]\"");
    }
    const char *s = v->u.s;
    if (strcmp(s, "false") == 0 || strcmp(s, "any_authenticated") == 0) {
        cfg->check_permission = s;
        return GA_OK;
    }
    if (s_has_prefix_arg(s, "arg:")) {
        for (uint32_t i = 0; i < cfg->n_args; i++) {
            if (strcmp(cfg->args[i].name, s + 4) == 0) {
                cfg->check_permission = s;
                return GA_OK;
            }
        }
        return s_fail(ps, "check_permission: argument \"%s\" is not declared", s + 4);
    }
    if (s_has_prefix_arg(s, "role:")) {
        cfg->check_permission = s;
        return GA_OK;
    }
    return s_fail(ps, "check_permission: must be false, \"any_authenticated\", \"arg:NAME\" or "
                      "\"role:[...]\"");
}

static ga_err_t
s_retry(parse_t *ps, const ga_value_t *v)
{
    if (v == NULL || v->type == GA_NIL) {
        return GA_OK;
    }
    if (v->type == GA_INT && v->u.i >= 1 && v->u.i <= 10) {
        char *s = ga_arena_alloc(ps->cfg->arena, 8);
        snprintf(s, 8, "%d", (int) v->u.i);
        ps->cfg->retry = s;
        ps->cfg->retry_attempts = (int) v->u.i;
        return GA_OK;
    }
    if (v->type == GA_STR) {
        const char *n = v->u.s;
        bool same_node = false;
        if (strncmp(n, "same_node:", 10) == 0) {
            n += 10;
            same_node = true;
        } else if (strncmp(n, "all_nodes:", 10) == 0) {
            n += 10;
        }
        char *end = NULL;
        long k = strtol(n, &end, 10);
        if (n[0] >= '0' && n[0] <= '9' && end != n && *end == '\0' && k >= 1 && k <= 10) {
            ps->cfg->retry = v->u.s;
            ps->cfg->retry_attempts = (int) k;
            ps->cfg->retry_same_node = same_node;
            return GA_OK;
        }
    }
    return s_fail(ps, "retry: must be N, \"same_node:N\" or \"all_nodes:N\" with N in 1..10");
}

// Retries are for calls whose one answer the broker waits for: a stream's chunks have reached
// the client already, and a none call has nobody waiting.
static ga_err_t
s_retry_fits(parse_t *ps)
{
    ga_resp_t r = ps->cfg->response_type;
    if (ps->cfg->retry && (r == GA_RESP_STREAM || r == GA_RESP_NONE)) {
        return s_fail(ps, "retry: only for sync and async functions (this one is %s)",
                      r == GA_RESP_STREAM ? "stream" : "none");
    }
    return GA_OK;
}

// A hook (docs/protocol.md, "Hooks"): "NAME", or {"function": "NAME", "args": EXTRA} where
// NAME is a worker function "service.request_type" or an in-process hook's name and EXTRA any
// value handed to each call (the walkthrough's extra_args).
static ga_err_t
s_hook(parse_t *ps, const ga_value_t *v, const char *field, const char **name, ga_value_t *args)
{
    *args = ga_nil();
    if (v == NULL || v->type != GA_MAP) {
        if (v && v->type != GA_NIL && v->type != GA_STR) {
            return s_fail(ps, "%s: must be \"service.request_type\" or {\"function\": "
                              "\"service.request_type\", \"args\": [...]}",
                          field);
        }
        return s_name(ps, v, field, name, false);
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const char *key = v->u.pairs[i].key;
        if (strcmp(key, "function") != 0 && strcmp(key, "args") != 0) {
            return s_fail(ps, "%s: unknown key %s (valid: function, args)", field, key);
        }
    }
    const ga_value_t *fn = ga_map_get(v, "function");
    if (fn == NULL || fn->type == GA_NIL) {
        return s_fail(ps, "%s: function required", field);
    }
    ga_err_t rc = s_name(ps, fn, field, name, false);
    const ga_value_t *extra = ga_map_get(v, "args");
    if (rc == GA_OK && extra) {
        *args = *extra;
    }
    return rc;
}

// An after hook rewrites a result: streams (whose chunks go out as they come) and none
// functions (no result) cannot have one.
static ga_err_t
s_hook_fits(parse_t *ps)
{
    ga_resp_t r = ps->cfg->response_type;
    if (ps->cfg->after_execute && (r == GA_RESP_STREAM || r == GA_RESP_NONE)) {
        return s_fail(ps, "after_execute: only for sync and async functions (this one is %s%s)",
                      r == GA_RESP_STREAM ? "stream" : "none",
                      r == GA_RESP_STREAM ? ": its chunks reach the client as they come" : "");
    }
    return GA_OK;
}

// Every field a config may carry, and whether genapi acts on it yet. A field whose feature is
// not built is refused when set ("retry: not supported yet"), never accepted and ignored: a
// quota-enforcing before hook that never ran would fail open. A field added here starts as
// not acted on until the code behind it exists (docs/protocol.md, "Function config").
static const struct {
    const char *name; // the key
    bool acted_on;    // false: refused when set to anything but nil
} s_fields[] = {
    {"service", true},
    {"request_type", true},
    {"version", true},
    {"nodes", true},
    {"choose_node_mode", true},
    {"timeout", true},
    {"arg_types", true},
    {"arg_orders", true},
    {"response_type", true},
    {"check_permission", true},
    {"permission_callback", true},
    {"retry", true}, // sync and async only: s_retry_fits refuses it elsewhere
    {"before_execute", true},
    {"after_execute", true}, // sync and async only: s_hook_fits refuses it elsewhere
    {"hook_timeout", true},
    {"request_info", true},
    {"disabled", true},
    {"visibility", true}, // "public" (default) or "internal": gw_pipeline_prepare acts on it
};
#define N_FIELDS (sizeof s_fields / sizeof s_fields[0])

static ga_err_t
s_parse(parse_t *ps, const ga_value_t *v)
{
    ga_funcfg_t *cfg = ps->cfg;
    if (v->type != GA_MAP) {
        return s_fail(ps, "config: must be a map");
    }
    for (uint32_t i = 0; i < v->len; i++) {
        size_t k = 0;
        while (k < N_FIELDS && strcmp(v->u.pairs[i].key, s_fields[k].name) != 0) {
            k++;
        }
        if (k == N_FIELDS) {
            const char *names[N_FIELDS];
            for (size_t j = 0; j < N_FIELDS; j++) {
                names[j] = s_fields[j].name;
            }
            char valid[300];
            s_join(names, N_FIELDS, valid, sizeof valid);
            return s_fail(ps, "%s: unknown field (valid: %s)", v->u.pairs[i].key, valid);
        }
    }
    ga_err_t rc;
    if ((rc = s_name(ps, ga_map_get(v, "service"), "service", &cfg->service, true)) ||
        (rc = s_name(ps, ga_map_get(v, "request_type"), "request_type", &cfg->request_type,
                     true)) ||
        (rc = s_name(ps, ga_map_get(v, "version"), "version", &cfg->version, false))) {
        return rc;
    }
    if (cfg->version && strcmp(cfg->version, "0.0.0") == 0) {
        cfg->version = NULL;
    }
    const ga_value_t *rt = ga_map_get(v, "response_type");
    cfg->response_type = GA_RESP_SYNC;
    if (rt && rt->type != GA_NIL) {
        int r = rt->type == GA_STR ? ga_resp_parse(rt->u.s) : -1;
        if (r < 0) {
            return s_fail(ps, "response_type: must be sync, async, stream or none");
        }
        cfg->response_type = (ga_resp_t) r;
    }
    cfg->timeout_ms = GA_FUNCFG_TIMEOUT_DEFAULT;
    if ((rc = s_timeout(ps, ga_map_get(v, "timeout"), "timeout", &cfg->timeout_ms,
                        cfg->response_type == GA_RESP_STREAM))) {
        return rc;
    }
    cfg->hook_timeout_ms = GA_FUNCFG_HOOK_TIMEOUT_DEFAULT;
    if ((rc = s_timeout(ps, ga_map_get(v, "hook_timeout"), "hook_timeout", &cfg->hook_timeout_ms,
                        false))) {
        return rc;
    }
    if ((rc = s_args(ps, ga_map_get(v, "arg_types"), ga_map_get(v, "arg_orders"))) ||
        (rc = s_node_mode(ps, ga_map_get(v, "choose_node_mode"))) ||
        (rc = s_permission(ps, ga_map_get(v, "check_permission"))) ||
        (rc = s_retry(ps, ga_map_get(v, "retry"))) || (rc = s_retry_fits(ps)) ||
        (rc = s_name(ps, ga_map_get(v, "permission_callback"), "permission_callback",
                     &cfg->permission_callback, false)) ||
        (rc = s_hook(ps, ga_map_get(v, "before_execute"), "before_execute", &cfg->before_execute,
                     &cfg->before_args)) ||
        (rc = s_hook(ps, ga_map_get(v, "after_execute"), "after_execute", &cfg->after_execute,
                     &cfg->after_args)) ||
        (rc = s_hook_fits(ps))) {
        return rc;
    }
    const ga_value_t *nodes = ga_map_get(v, "nodes");
    if (nodes && nodes->type == GA_MAP) {
        // {"resolver": "service.request_type"}, the same as the string alone.
        if (nodes->len != 1 || strcmp(nodes->u.pairs[0].key, "resolver") != 0) {
            return s_fail(ps, "nodes: a map names only a resolver: {\"resolver\": "
                              "\"service.request_type\"}");
        }
        nodes = &nodes->u.pairs[0].value;
    }
    if (nodes && nodes->type == GA_STR) {
        // A resolver: the worker function "service.request_type" whose answer lists the nodes
        // (docs/protocol.md, "Node selection").
        const char *dot = strchr(nodes->u.s, '.');
        if (dot == NULL || dot == nodes->u.s || dot[1] == '\0' ||
            memchr(nodes->u.s, '\0', nodes->len) != NULL) {
            return s_fail(ps, "nodes: a list of node names, or a resolver function named "
                              "\"service.request_type\"");
        }
        cfg->nodes_resolver = nodes->u.s;
    } else if (nodes && nodes->type != GA_NIL) {
        if ((rc = s_str_list(ps, nodes, "nodes", &cfg->nodes, &cfg->n_nodes))) {
            return rc;
        }
    }
    const char *flags[] = {"request_info", "disabled"};
    bool *dst[] = {&cfg->request_info, &cfg->disabled};
    for (int i = 0; i < 2; i++) {
        const ga_value_t *f = ga_map_get(v, flags[i]);
        if (f && f->type != GA_NIL) {
            if (f->type != GA_BOOL) {
                return s_fail(ps, "%s: must be a boolean", flags[i]);
            }
            *dst[i] = f->u.b;
        }
    }
    const ga_value_t *vis = ga_map_get(v, "visibility");
    if (vis && vis->type != GA_NIL) {
        bool is_internal = vis->type == GA_STR && vis->len == 8 && memcmp(vis->u.s, "internal", 8) == 0;
        bool is_public = vis->type == GA_STR && vis->len == 6 && memcmp(vis->u.s, "public", 6) == 0;
        if (!is_internal && !is_public) {
            return s_fail(ps, "visibility: must be \"public\" or \"internal\"");
        }
        cfg->internal = is_internal;
    }
    for (size_t k = 0; k < N_FIELDS; k++) {
        const ga_value_t *f = ga_map_get(v, s_fields[k].name);
        if (!s_fields[k].acted_on && f && f->type != GA_NIL) {
            return s_fail(ps, "%s: not supported yet", s_fields[k].name);
        }
    }
    return GA_OK;
}

ga_err_t
ga_funcfg_parse(const ga_value_t *v, ga_funcfg_t **out, char *err, size_t errlen)
{
    ga_funcfg_t *cfg = ga_calloc(1, sizeof *cfg);
    cfg->arena = ga_arena_new(2048);
    cfg->source = ga_value_copy(cfg->arena, v);
    parse_t ps = {.cfg = cfg, .err = err, .errlen = errlen};
    ga_err_t rc = s_parse(&ps, &cfg->source);
    if (rc != GA_OK) {
        ga_funcfg_destroy(&cfg);
        return rc;
    }
    *out = cfg;
    return GA_OK;
}

void
ga_funcfg_destroy(ga_funcfg_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_funcfg_t *self = *self_p;
    ga_arena_destroy(&self->arena);
    ga_free(self);
    *self_p = NULL;
}
