// SPDX-License-Identifier: MIT
// What a handler can do with its request: read arguments, build values, answer once. All
// memory comes from the request's arena, freed when the handler returns.
#include "wk_internal.h"

#include "ga_log.h"
#include "ga_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const wk_value_t *
wk_arg(wk_request_t *req, const char *name)
{
    return ga_map_get(req->args, name);
}

const wk_value_t *
wk_arg_at(wk_request_t *req, size_t index)
{
    if (req->cfg == NULL || index >= req->cfg->n_args) {
        return NULL;
    }
    return ga_map_get(req->args, req->cfg->args[index].name);
}

const wk_value_t *
wk_args(wk_request_t *req)
{
    return req->args;
}

const char *
wk_arg_str(wk_request_t *req, const char *name)
{
    return ga_map_get_str(req->args, name);
}

int64_t
wk_arg_int(wk_request_t *req, const char *name, int64_t dflt)
{
    return wk_value_int(wk_arg(req, name), dflt);
}

double
wk_arg_num(wk_request_t *req, const char *name, double dflt)
{
    return wk_value_num(wk_arg(req, name), dflt);
}

bool
wk_arg_bool(wk_request_t *req, const char *name, bool dflt)
{
    const ga_value_t *v = wk_arg(req, name);
    return v && v->type == GA_BOOL ? v->u.b : dflt;
}

// The caller's identity is the handler's only when its function declares request_info.
static bool
s_request_info(const wk_request_t *req)
{
    return req->cfg != NULL && req->cfg->request_info;
}

const char *
wk_request_user_id(wk_request_t *req)
{
    return s_request_info(req) ? ga_map_get_str(req->body, "user_id") : NULL;
}

const char *
wk_request_ip(wk_request_t *req)
{
    return s_request_info(req) ? ga_map_get_str(req->body, "ip") : NULL;
}

const char *
wk_request_id(wk_request_t *req)
{
    return ga_map_get_str(req->body, "request_id");
}

const char *
wk_request_node(wk_request_t *req)
{
    return req->node ? req->node : "";
}

wk_worker_t *
wk_request_worker(wk_request_t *req)
{
    return req->worker;
}

const char *
wk_request_device_id(wk_request_t *req)
{
    return s_request_info(req) ? ga_map_get_str(req->body, "device_id") : NULL;
}

bool
wk_request_has_role(wk_request_t *req, const char *role)
{
    const ga_value_t *roles = s_request_info(req) ? ga_map_get(req->body, "roles") : NULL;
    for (uint32_t i = 0; roles && roles->type == GA_ARRAY && i < roles->len; i++) {
        const ga_value_t *r = &roles->u.items[i];
        if (r->type == GA_STR && strcmp(r->u.s, role) == 0) {
            return true;
        }
    }
    return false;
}

void
wk_encode_error(ga_buf_t *out, ga_arena_t *arena, int64_t id, int code, const char *message,
                bool can_retry)
{
    ga_value_t m = ga_map(arena, 5);
    ga_map_put(&m, arena, "id", ga_int(id));
    ga_map_put(&m, arena, "ok", ga_bool(false));
    ga_map_put(&m, arena, "error", ga_str(message));
    ga_map_put(&m, arena, "code", ga_int(code));
    ga_map_put(&m, arena, "can_retry", ga_bool(can_retry));
    ga_buf_reset(out);
    ga_wire_encode(out, &m);
}

void
wk_request_encode(ga_buf_t *out, const ga_value_t *body)
{
    ga_arena_t *a = ga_arena_new(1024);
    ga_value_t env = ga_map(a, body->len);
    const ga_value_t *args = NULL;
    for (uint32_t i = 0; body->type == GA_MAP && i < body->len; i++) {
        if (strcmp(body->u.pairs[i].key, "args") == 0) {
            args = &body->u.pairs[i].value;
        } else {
            env.u.pairs[env.len++] = body->u.pairs[i];
        }
    }
    ga_wire_encode(out, &env);
    if (args) {
        ga_wire_encode(out, args);
    }
    ga_arena_destroy(&a);
}

ga_err_t
wk_reply_decode(const uint8_t *data, size_t len, ga_arena_t *arena, ga_value_t *body)
{
    size_t n = 0;
    ga_err_t rc = ga_wire_decode_first(data, len, arena, body, &n);
    if (rc == GA_OK && body->type != GA_MAP) {
        rc = GA_EPROTO;
    }
    if (rc == GA_OK && n < len) {
        ga_value_t result;
        rc = ga_wire_decode(data + n, len - n, arena, &result);
        if (rc == GA_OK) {
            ga_map_put(body, arena, "result", result);
        }
    }
    return rc;
}

// Whether `v` nests at most `max` arrays and maps deep (a scalar: 0).
static bool
s_depth_within(const ga_value_t *v, int max)
{
    if (v->type != GA_ARRAY && v->type != GA_MAP) {
        return true;
    }
    if (max <= 0) {
        return false;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const ga_value_t *x = v->type == GA_MAP ? &v->u.pairs[i].value : &v->u.items[i];
        if (!s_depth_within(x, max - 1)) {
            return false;
        }
    }
    return true;
}

void
wk_reply(wk_request_t *req, const wk_value_t *result)
{
    if (req->answered) {
        return;
    }
    req->answered = true;
    ga_value_t m = ga_map(req->arena, 2);
    ga_map_put(&m, req->arena, "id", ga_int(req->id));
    ga_map_put(&m, req->arena, "ok", ga_bool(true));
    ga_buf_reset(req->out);
    ga_wire_encode(req->out, &m); // the envelope; the result follows as the payload
    ga_value_t nil = ga_nil();
    result = result ? result : &nil;
    // A result nested deeper than a body may be (GA_WIRE_MAX_DEPTH, with the one level of the
    // map a gateway puts it in) would be dropped by a decoder on the way and the caller would
    // wait for the timeout: answer an error now.
    if (s_depth_within(result, GA_WIRE_MAX_DEPTH - 1)) {
        ga_wire_encode(req->out, result);
    } else {
        GA_WARN("reply to call %lld nested deeper than %d levels: answered with an error",
                (long long) req->id, GA_WIRE_MAX_DEPTH);
        wk_encode_error(req->out, req->arena, req->id, GA_EINTERNAL, "Internal Server Error",
                        false);
    }
}

__attribute__((format(printf, 3, 0))) static void
s_reply_error(wk_request_t *req, bool retryable, const char *fmt, va_list ap)
{
    if (req->answered) {
        return;
    }
    req->answered = true;
    char message[1024];
    vsnprintf(message, sizeof message, fmt, ap);
    ga_arena_t *a = req->arena;
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "id", ga_int(req->id));
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(message));
    ga_map_put(&m, a, "code", ga_int(GA_EHANDLER));
    ga_map_put(&m, a, "can_retry", ga_bool(retryable));
    if (retryable) {
        ga_map_put(&m, a, "retryable", ga_bool(true)); // docs/protocol.md, "REPLY"
    }
    ga_buf_reset(req->out);
    ga_wire_encode(req->out, &m);
}

void
wk_reply_error(wk_request_t *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_error(req, false, fmt, ap);
    va_end(ap);
}

void
wk_reply_error_retryable(wk_request_t *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_error(req, true, fmt, ap);
    va_end(ap);
}

static wk_value_t *
s_new(wk_request_t *req, ga_value_t v)
{
    ga_value_t *p = ga_arena_alloc(req->arena, sizeof *p);
    *p = v;
    return p;
}

wk_value_t *
wk_nil(wk_request_t *req)
{
    return s_new(req, ga_nil());
}

wk_value_t *
wk_bool(wk_request_t *req, bool b)
{
    return s_new(req, ga_bool(b));
}

wk_value_t *
wk_int(wk_request_t *req, int64_t i)
{
    return s_new(req, ga_int(i));
}

wk_value_t *
wk_float(wk_request_t *req, double f)
{
    return s_new(req, ga_float(f));
}

wk_value_t *
wk_str(wk_request_t *req, const char *s)
{
    return s_new(req, ga_str_dup(req->arena, s ? s : "", s ? strlen(s) : 0));
}

wk_value_t *
wk_list(wk_request_t *req, ...)
{
    wk_value_t *list = s_new(req, ga_array(req->arena, 4));
    va_list ap;
    va_start(ap, req);
    const wk_value_t *item;
    while ((item = va_arg(ap, const wk_value_t *)) != NULL) {
        ga_array_push(list, req->arena, *item);
    }
    va_end(ap);
    return list;
}

wk_value_t *
wk_map(wk_request_t *req, ...)
{
    wk_value_t *map = s_new(req, ga_map(req->arena, 4));
    va_list ap;
    va_start(ap, req);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const wk_value_t *value = va_arg(ap, const wk_value_t *);
        wk_map_set(req, map, key, value);
    }
    va_end(ap);
    return map;
}

void
wk_list_push(wk_request_t *req, wk_value_t *list, const wk_value_t *item)
{
    ga_array_push(list, req->arena, item ? *item : ga_nil());
}

void
wk_map_set(wk_request_t *req, wk_value_t *map, const char *key, const wk_value_t *value)
{
    ga_map_put(map, req->arena, ga_arena_strdup(req->arena, key), value ? *value : ga_nil());
}

wk_type_t
wk_value_type(const wk_value_t *v)
{
    return v ? (wk_type_t) v->type : WK_NIL;
}

const char *
wk_value_str(const wk_value_t *v)
{
    return v && v->type == GA_STR ? v->u.s : NULL;
}

int64_t
wk_value_int(const wk_value_t *v, int64_t dflt)
{
    if (v && v->type == GA_INT) {
        return v->u.i;
    }
    if (v && v->type == GA_FLOAT && v->u.f >= -9.2e18 && v->u.f <= 9.2e18 &&
        v->u.f == (double) (int64_t) v->u.f) {
        return (int64_t) v->u.f;
    }
    return dflt;
}

double
wk_value_num(const wk_value_t *v, double dflt)
{
    if (v && v->type == GA_INT) {
        return (double) v->u.i;
    }
    return v && v->type == GA_FLOAT ? v->u.f : dflt;
}

size_t
wk_value_len(const wk_value_t *v)
{
    return v && (v->type == GA_ARRAY || v->type == GA_MAP) ? v->len : 0;
}

const wk_value_t *
wk_value_at(const wk_value_t *v, size_t index)
{
    return v && v->type == GA_ARRAY && index < v->len ? &v->u.items[index] : NULL;
}

const wk_value_t *
wk_value_get(const wk_value_t *v, const char *key)
{
    return ga_map_get(v, key);
}
