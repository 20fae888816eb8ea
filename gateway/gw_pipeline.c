// SPDX-License-Identifier: MIT
// The request pipeline: payload fields, function lookup, argument validation, result
// conversion. Keeps the gateway's copy of the registry. Pure with respect to I/O.
#include "gw_pipeline.h"

#include "ga_functable.h"
#include "ga_json.h"
#include "ga_log.h"

#include <stdio.h>
#include <string.h>

struct gw_pipeline_t {
    const gw_pipeline_config_t *cfg; // borrowed settings
    ga_functable_t *functions;       // registry copy
    size_t rejected_configs;         // configs from the broker this gateway refused
};

gw_pipeline_t *
gw_pipeline_new(const gw_pipeline_config_t *cfg)
{
    gw_pipeline_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->functions = ga_functable_new();
    return self;
}

void
gw_pipeline_destroy(gw_pipeline_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_functable_destroy(&(*self_p)->functions);
    ga_free(*self_p);
    *self_p = NULL;
}

size_t
gw_pipeline_apply(gw_pipeline_t *self, const ga_value_t *body, bool replace)
{
    const ga_value_t *list = ga_map_get(body, "functions");
    if (replace) {
        ga_functable_clear(self->functions);
    }
    size_t applied = 0;
    for (uint32_t i = 0; list && list->type == GA_ARRAY && i < list->len; i++) {
        ga_funcfg_t *cfg = NULL;
        char why[256];
        if (ga_funcfg_parse(&list->u.items[i], &cfg, why, sizeof why) != GA_OK) {
            self->rejected_configs++;
            GA_WARN("config from the broker refused: %s", why);
            continue;
        }
        ga_functable_put(self->functions, &cfg);
        applied++;
    }
    return applied;
}

size_t
gw_pipeline_function_count(const gw_pipeline_t *self)
{
    return ga_functable_size(self->functions);
}

void
gw_response_error(gw_response_t *out, const char *request_id, const char *message,
                  bool can_retry)
{
    *out = (gw_response_t){
        .request_id = request_id ? request_id : "unknown",
        .kind = GW_KIND_ERROR,
        .success = false,
        .error = message,
        .can_retry = can_retry,
    };
}

// A required request field: a non-empty string.
static bool
s_field(const ga_value_t *payload, const char *name, const char **out, char *msg, size_t len)
{
    const ga_value_t *v = ga_map_get(payload, name);
    if (v == NULL || v->type == GA_NIL) {
        snprintf(msg, len, "Missing field: %s", name);
        return false;
    }
    if (v->type != GA_STR || v->len == 0 || strlen(v->u.s) != v->len) {
        snprintf(msg, len, "Invalid field: %s (expected a non-empty string)", name);
        return false;
    }
    *out = v->u.s;
    return true;
}

// Validates `given` against the config's declared arguments; builds the converted map.
static bool
s_args(const ga_funcfg_t *cfg, const ga_value_t *given, ga_arena_t *arena, ga_value_t *out,
       char *msg, size_t len)
{
    for (uint32_t i = 0; i < given->len; i++) {
        const char *key = given->u.pairs[i].key;
        bool declared = false;
        for (uint32_t k = 0; k < cfg->n_args && !declared; k++) {
            declared = strcmp(cfg->args[k].name, key) == 0;
        }
        if (!declared) {
            snprintf(msg, len, "Unknown argument: %s", key);
            return false;
        }
    }
    *out = ga_map(arena, cfg->n_args);
    for (uint32_t k = 0; k < cfg->n_args; k++) {
        const ga_argspec_t *spec = &cfg->args[k];
        const ga_value_t *v = ga_map_get(given, spec->name);
        if (v == NULL) {
            if (spec->has_default) {
                ga_map_put(out, arena, spec->name, spec->default_value);
                continue;
            }
            if (spec->allow_nil || spec->type == GA_ARG_ANY) {
                ga_map_put(out, arena, spec->name, ga_nil());
                continue;
            }
            snprintf(msg, len, "Missing required argument: %s", spec->name);
            return false;
        }
        if (ga_arg_check(spec, v, msg, len) != GA_OK) {
            return false;
        }
        ga_map_put(out, arena, spec->name, *v);
    }
    return true;
}

ga_err_t
gw_pipeline_prepare(gw_pipeline_t *self, const gw_identity_t *who, const ga_value_t *payload,
                    ga_arena_t *arena, gw_call_t *call, gw_response_t *refusal)
{
    (void) who; // identity checks arrive with permissions (issue #3)
    char *msg = ga_arena_alloc(arena, 512);
    memset(call, 0, sizeof *call);
    if (payload->type != GA_MAP) {
        gw_response_error(refusal, NULL, "Invalid request: payload must be an object", false);
        return GA_EINVAL;
    }
    const char *request_id = NULL;
    if (!s_field(payload, "request_id", &request_id, msg, 512) ||
        !s_field(payload, "service", &call->service, msg, 512) ||
        !s_field(payload, "request_type", &call->request_type, msg, 512)) {
        gw_response_error(refusal, request_id, msg, false);
        return GA_EINVAL;
    }
    call->request_id = request_id;
    const ga_value_t *version = ga_map_get(payload, "version");
    const char *wanted = NULL;
    if (version && version->type != GA_NIL) {
        if (version->type != GA_STR || version->len == 0) {
            gw_response_error(refusal, request_id,
                              "Invalid field: version (expected a non-empty string)", false);
            return GA_EINVAL;
        }
        wanted = version->u.s;
    }
    const ga_value_t *args = ga_map_get(payload, "args");
    ga_value_t empty = ga_map(arena, 0);
    if (args == NULL || args->type == GA_NIL) {
        args = &empty;
    } else if (args->type != GA_MAP) {
        gw_response_error(refusal, request_id, "Invalid field: args (expected an object)", false);
        return GA_EINVAL;
    }
    const ga_funcfg_t *cfg =
        ga_functable_resolve(self->functions, call->service, call->request_type, wanted);
    if (cfg == NULL) {
        gw_response_error(refusal, request_id, "Unknown function", false);
        return GA_ENOTFOUND;
    }
    if (cfg->disabled) {
        gw_response_error(refusal, request_id, "Function disabled", false);
        return GA_ENOTFOUND;
    }
    if (!s_args(cfg, args, arena, &call->args, msg, 512)) {
        gw_response_error(refusal, request_id, msg, false);
        return GA_EINVAL;
    }
    // Strings from the registry copy may change before the result comes back: copy them.
    call->version = cfg->version ? ga_arena_strdup(arena, cfg->version) : NULL;
    call->response_type = cfg->response_type;
    call->timeout_ms = cfg->timeout_ms;
    return GA_OK;
}

void
gw_pipeline_result(const gw_pipeline_t *self, const ga_value_t *body, const char *request_id,
                   gw_response_t *out)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok && ok->type == GA_BOOL && ok->u.b) {
        *out = (gw_response_t){
            .request_id = request_id,
            .kind = GW_KIND_RESULT,
            .success = true,
            .result = ga_map_get(body, "result"),
        };
        return;
    }
    const char *error = ga_map_get_str(body, "error");
    int64_t code = ga_map_get_int(body, "code", GA_EINTERNAL);
    const ga_value_t *retry = ga_map_get(body, "can_retry");
    bool can_retry = retry && retry->type == GA_BOOL && retry->u.b;
    if (error == NULL || (code == GA_EINTERNAL && !self->cfg->detail_errors)) {
        error = "Internal Server Error";
    }
    gw_response_error(out, request_id, error, can_retry);
}

const char *
gw_kind_name(gw_kind_t kind)
{
    static const char *const names[] = {"result", "error", "ack", "chunk", "last", "end"};
    return names[kind];
}

void
gw_response_encode(const gw_response_t *r, ga_buf_t *out)
{
    ga_buf_append_str(out, "{\"request_id\":");
    ga_json_encode_str(out, r->request_id, strlen(r->request_id));
    ga_buf_append_str(out, r->success ? ",\"success\":true,\"result\":"
                                      : ",\"success\":false,\"result\":");
    if (r->result) {
        ga_json_encode(out, r->result);
    } else {
        ga_buf_append_str(out, "null");
    }
    ga_buf_append_str(out, ",\"error\":");
    if (r->error) {
        ga_json_encode_str(out, r->error, strlen(r->error));
    } else {
        ga_buf_append_str(out, "null");
    }
    ga_buf_append_str(out, r->async ? ",\"async\":true" : ",\"async\":false");
    ga_buf_append_str(out, r->has_more ? ",\"has_more\":true" : ",\"has_more\":false");
    ga_buf_append_str(out, r->can_retry ? ",\"can_retry\":true" : ",\"can_retry\":false");
    ga_buf_append_str(out, ",\"kind\":\"");
    ga_buf_append_str(out, gw_kind_name(r->kind));
    ga_buf_append_str(out, "\"}");
}
