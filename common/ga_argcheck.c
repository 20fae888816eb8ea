// SPDX-License-Identifier: MIT
// Checks one argument value against its ga_argspec_t (types and options: docs/protocol.md,
// "Function config"; messages: "Errors a client can see"), and a request's whole argument map
// against its config (ga_funcfg_check_args). Used by the gateway on every request, by the
// worker library again before every handler, and by ga_funcfg at registration for default
// values. Messages are client-visible and name the argument. Pure.
#include "ga_funcfg.h"
#include "ga_utf8.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static ga_err_t
s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return GA_EINVAL;
}

static bool
s_is_uuid(const ga_value_t *v)
{
    if (v->type != GA_STR || v->len != 36) {
        return false;
    }
    for (uint32_t i = 0; i < 36; i++) {
        char c = v->u.s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !isxdigit((unsigned char) c)) {
            return false;
        }
    }
    return true;
}

// Reads exactly n digits at *p into *out.
static bool
s_digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !isdigit((unsigned char) **p)) {
            return false;
        }
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool
s_expect(const char **p, const char *end, char c)
{
    if (*p < end && **p == c) {
        (*p)++;
        return true;
    }
    return false;
}

// ISO 8601 extended format: YYYY-MM-DDTHH:MM:SS[.fraction], then an offset (Z, +HH:MM, -HH:MM)
// when `with_offset`, nothing more otherwise.
static bool
s_is_datetime(const ga_value_t *v, bool with_offset)
{
    if (v->type != GA_STR) {
        return false;
    }
    const char *p = v->u.s;
    const char *end = p + v->len;
    int y, mo, d, h, mi, s;
    if (!s_digits(&p, end, 4, &y) || !s_expect(&p, end, '-') || !s_digits(&p, end, 2, &mo) ||
        !s_expect(&p, end, '-') || !s_digits(&p, end, 2, &d) ||
        !(s_expect(&p, end, 'T') || s_expect(&p, end, ' ')) || !s_digits(&p, end, 2, &h) ||
        !s_expect(&p, end, ':') || !s_digits(&p, end, 2, &mi) || !s_expect(&p, end, ':') ||
        !s_digits(&p, end, 2, &s)) {
        return false;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60) {
        return false;
    }
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) {
        return false;
    }
    if (s_expect(&p, end, '.')) {
        const char *digits = p;
        while (p < end && isdigit((unsigned char) *p)) {
            p++;
        }
        if (p == digits) {
            return false;
        }
    }
    if (!with_offset) {
        return p == end;
    }
    if (s_expect(&p, end, 'Z')) {
        return p == end;
    }
    if (!(s_expect(&p, end, '+') || s_expect(&p, end, '-'))) {
        return false;
    }
    int oh, om;
    if (!s_digits(&p, end, 2, &oh) || !s_expect(&p, end, ':') || !s_digits(&p, end, 2, &om)) {
        return false;
    }
    return p == end && oh <= 23 && om <= 59;
}

static bool
s_is_num(const ga_value_t *v)
{
    return v->type == GA_INT || v->type == GA_FLOAT;
}

static ga_err_t
s_check_string(const ga_argspec_t *spec, const ga_value_t *v, int64_t limit, const char *what,
               char *err, size_t errlen)
{
    if (v->type != GA_STR || !ga_utf8_valid(v->u.s, v->len)) {
        return s_fail(err, errlen, "Invalid type for argument %s: expected %s", spec->name, what);
    }
    if ((int64_t) v->len > limit) {
        return s_fail(err, errlen, "Argument %s exceeds max_bytes %lld", spec->name,
                      (long long) limit);
    }
    return GA_OK;
}

static ga_err_t
s_check_map_keys(const ga_argspec_t *spec, const ga_value_t *v, char *err, size_t errlen)
{
    char list[512] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < spec->n_required; i++) {
        if (ga_map_get(v, spec->required[i]) == NULL) {
            int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                             spec->required[i]);
            used = n > 0 && used + (size_t) n < sizeof list ? used + (size_t) n : used;
        }
    }
    if (used) {
        return s_fail(err, errlen, "Argument %s is missing required keys: %s", spec->name, list);
    }
    if (spec->accept == NULL) {
        return GA_OK;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        bool ok = false;
        for (uint32_t k = 0; k < spec->n_accept && !ok; k++) {
            ok = strcmp(v->u.pairs[i].key, spec->accept[k]) == 0;
        }
        if (!ok) {
            int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                             v->u.pairs[i].key);
            used = n > 0 && used + (size_t) n < sizeof list ? used + (size_t) n : used;
        }
    }
    if (used) {
        return s_fail(err, errlen, "Argument %s has keys that are not accepted: %s", spec->name,
                      list);
    }
    return GA_OK;
}

// Where a nested value sits inside an argument ("data.items[3].text"), for messages.
typedef struct {
    const char *arg; // the argument's name
    char path[128];  // the path so far (truncated with "..." when longer)
    size_t len;      // bytes used in path
} arg_path_t;

// Appends to the path; returns the length to restore afterwards.
__attribute__((format(printf, 2, 3))) static size_t
s_path_push(arg_path_t *p, const char *fmt, ...)
{
    size_t before = p->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->path + p->len, sizeof p->path - p->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof p->path - p->len) {
        memcpy(p->path + sizeof p->path - 4, "...", 4); // full: mark it and keep what fits
        p->len = sizeof p->path - 1;
    } else {
        p->len += (size_t) n;
    }
    return before;
}

static void
s_path_pop(arg_path_t *p, size_t len)
{
    p->len = len;
    p->path[len] = '\0';
}

// The global caps on a value nested inside an argument, and on everything inside it: strings
// and map keys at most GA_ARG_MAX_BYTES_DEFAULT bytes, lists and maps at most
// GA_ARG_MAX_ITEMS_DEFAULT entries. Depth is bounded by the decoders (GA_JSON_MAX_DEPTH).
static ga_err_t
s_check_nested(arg_path_t *p, const ga_value_t *v, char *err, size_t errlen)
{
    switch (v->type) {
    case GA_STR:
        if (v->len > GA_ARG_MAX_BYTES_DEFAULT) {
            return s_fail(err, errlen, "Argument %s exceeds max_bytes %d at %s", p->arg,
                          GA_ARG_MAX_BYTES_DEFAULT, p->path);
        }
        return GA_OK;
    case GA_ARRAY:
        if (v->len > GA_ARG_MAX_ITEMS_DEFAULT) {
            return s_fail(err, errlen, "Argument %s exceeds max_items %d at %s", p->arg,
                          GA_ARG_MAX_ITEMS_DEFAULT, p->path);
        }
        for (uint32_t i = 0; i < v->len; i++) {
            size_t mark = s_path_push(p, "[%u]", i);
            ga_err_t rc = s_check_nested(p, &v->u.items[i], err, errlen);
            s_path_pop(p, mark);
            if (rc != GA_OK) {
                return rc;
            }
        }
        return GA_OK;
    case GA_MAP:
        if (v->len > GA_ARG_MAX_ITEMS_DEFAULT) {
            return s_fail(err, errlen, "Argument %s exceeds max_items %d at %s", p->arg,
                          GA_ARG_MAX_ITEMS_DEFAULT, p->path);
        }
        for (uint32_t i = 0; i < v->len; i++) {
            const char *key = v->u.pairs[i].key;
            size_t klen = strlen(key);
            if (klen > GA_ARG_MAX_BYTES_DEFAULT) {
                return s_fail(err, errlen, "Argument %s has a key over max_bytes %d at %s", p->arg,
                              GA_ARG_MAX_BYTES_DEFAULT, p->path);
            }
            size_t mark = s_path_push(p, ".%.*s%s", klen > 40 ? 40 : (int) klen, key,
                                      klen > 40 ? "..." : "");
            ga_err_t rc = s_check_nested(p, &v->u.pairs[i].value, err, errlen);
            s_path_pop(p, mark);
            if (rc != GA_OK) {
                return rc;
            }
        }
        return GA_OK;
    default:
        return GA_OK;
    }
}

// Applies the global caps to what a list or map argument holds (`whole` false: its own size
// was checked against the spec) or to an `any` argument entirely (`whole` true).
static ga_err_t
s_check_contents(const ga_argspec_t *spec, const ga_value_t *v, bool whole, char *err,
                 size_t errlen)
{
    arg_path_t p = {.arg = spec->name};
    s_path_push(&p, "%s", spec->name);
    if (whole) {
        return s_check_nested(&p, v, err, errlen);
    }
    for (uint32_t i = 0; i < v->len; i++) {
        size_t mark;
        const ga_value_t *item;
        if (v->type == GA_ARRAY) {
            mark = s_path_push(&p, "[%u]", i);
            item = &v->u.items[i];
        } else {
            const char *key = v->u.pairs[i].key;
            size_t klen = strlen(key);
            if (klen > GA_ARG_MAX_BYTES_DEFAULT) {
                return s_fail(err, errlen, "Argument %s has a key over max_bytes %d at %s",
                              spec->name, GA_ARG_MAX_BYTES_DEFAULT, p.path);
            }
            mark = s_path_push(&p, ".%.*s%s", klen > 40 ? 40 : (int) klen, key,
                               klen > 40 ? "..." : "");
            item = &v->u.pairs[i].value;
        }
        ga_err_t rc = s_check_nested(&p, item, err, errlen);
        s_path_pop(&p, mark);
        if (rc != GA_OK) {
            return rc;
        }
    }
    return GA_OK;
}

ga_err_t
ga_arg_check(const ga_argspec_t *spec, const ga_value_t *v, char *err, size_t errlen)
{
    const char *tname = ga_argtype_name(spec->type);
    if (v->type == GA_NIL) {
        if (spec->allow_nil || spec->type == GA_ARG_ANY) {
            return GA_OK;
        }
        return s_fail(err, errlen, "Invalid type for argument %s: expected %s", spec->name,
                      tname);
    }
    int64_t max_bytes = spec->max_bytes >= 0 ? spec->max_bytes : GA_ARG_MAX_BYTES_DEFAULT;
    int64_t max_items = spec->max_items >= 0 ? spec->max_items : GA_ARG_MAX_ITEMS_DEFAULT;
    int64_t item_bytes =
        spec->max_item_bytes >= 0 ? spec->max_item_bytes : GA_ARG_MAX_BYTES_DEFAULT;
    bool ok = true;
    switch (spec->type) {
    case GA_ARG_ANY:
        return s_check_contents(spec, v, true, err, errlen);
    case GA_ARG_STRING:
        return s_check_string(spec, v, max_bytes, tname, err, errlen);
    case GA_ARG_NUM:
        ok = s_is_num(v);
        break;
    case GA_ARG_BOOLEAN:
        ok = v->type == GA_BOOL;
        break;
    case GA_ARG_UUID:
        ok = s_is_uuid(v);
        break;
    case GA_ARG_DATETIME:
        ok = s_is_datetime(v, true);
        break;
    case GA_ARG_NAIVE_DATETIME:
        ok = s_is_datetime(v, false);
        break;
    case GA_ARG_MAP:
        if (v->type != GA_MAP) {
            ok = false;
            break;
        }
        if ((int64_t) v->len > max_items) {
            return s_fail(err, errlen, "Argument %s exceeds max_items %lld", spec->name,
                          (long long) max_items);
        }
        if (s_check_map_keys(spec, v, err, errlen) != GA_OK) {
            return GA_EINVAL;
        }
        return s_check_contents(spec, v, false, err, errlen);
    case GA_ARG_LIST:
    case GA_ARG_LIST_STRING:
    case GA_ARG_LIST_NUM:
    case GA_ARG_LIST_UUID:
    case GA_ARG_LIST_MAP:
        if (v->type != GA_ARRAY) {
            ok = false;
            break;
        }
        if ((int64_t) v->len > max_items) {
            return s_fail(err, errlen, "Argument %s exceeds max_items %lld", spec->name,
                          (long long) max_items);
        }
        for (uint32_t i = 0; i < v->len && ok; i++) {
            const ga_value_t *item = &v->u.items[i];
            switch (spec->type) {
            case GA_ARG_LIST_STRING:
                if (item->type != GA_STR || !ga_utf8_valid(item->u.s, item->len)) {
                    ok = false;
                } else if ((int64_t) item->len > item_bytes) {
                    return s_fail(err, errlen, "Argument %s item %u exceeds max_item_bytes %lld",
                                  spec->name, i, (long long) item_bytes);
                }
                break;
            case GA_ARG_LIST_NUM:
                ok = s_is_num(item);
                break;
            case GA_ARG_LIST_UUID:
                ok = s_is_uuid(item);
                break;
            case GA_ARG_LIST_MAP:
                ok = item->type == GA_MAP;
                break;
            default:
                break;
            }
        }
        break;
    }
    if (!ok) {
        return s_fail(err, errlen, "Invalid type for argument %s: expected %s", spec->name, tname);
    }
    if (spec->type == GA_ARG_LIST || spec->type == GA_ARG_LIST_MAP) {
        return s_check_contents(spec, v, false, err, errlen);
    }
    return GA_OK;
}

ga_err_t
ga_funcfg_check_args(const ga_funcfg_t *cfg, const ga_value_t *given, ga_arena_t *arena,
                     ga_value_t *out, char *msg, size_t len)
{
    if (given->type != GA_MAP) {
        return s_fail(msg, len, "Invalid field: args (expected an object)");
    }
    for (uint32_t i = 0; i < given->len; i++) {
        const char *key = given->u.pairs[i].key;
        bool declared = false;
        for (uint32_t k = 0; k < cfg->n_args && !declared; k++) {
            declared = strcmp(cfg->args[k].name, key) == 0;
        }
        if (!declared) {
            return s_fail(msg, len, "Unknown argument: %s", key);
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
            return s_fail(msg, len, "Missing required argument: %s", spec->name);
        }
        if (ga_arg_check(spec, v, msg, len) != GA_OK) {
            return GA_EINVAL;
        }
        ga_map_put(out, arena, spec->name, *v);
    }
    return GA_OK;
}
