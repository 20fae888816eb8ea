// SPDX-License-Identifier: MIT
// The compact argument notation of wk_function_t.args, turned into the arg_types map and
// arg_orders list of a function config:
//
//   args  = arg *( sep arg )            sep = 1*( "," / " " )
//   arg   = name ":" type [ "(" opt *( "," opt ) ")" ]
//   opt   = key "=" value               key = max_bytes / max_items / max_item_bytes /
//                                              allow_nil / default / required / accept
//   value = integer / float / true / false / nil / "quoted string" / [a, b, c] / bare-word
//
// e.g. "title:string(max_bytes=200), published:boolean(default=false),
//       metadata:map(required=[author], accept=[author, category])"
// The config parser (ga_funcfg) then validates the result like any pushed config.
#include "wk_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;    // next character
    ga_arena_t *a;    // where values go
    char *err;        // message buffer
    size_t errlen;    // its size
} cursor_t;

static void
s_skip(cursor_t *c)
{
    while (isspace((unsigned char) *c->p)) {
        c->p++;
    }
}

static bool
s_word_char(char ch)
{
    return isalnum((unsigned char) ch) || ch == '_' || ch == '-' || ch == '.' || ch == '+' ||
           ch == ':';
}

// A bare word (letters, digits, _ - . + :).
static size_t
s_word(cursor_t *c)
{
    const char *start = c->p;
    while (s_word_char(*c->p)) {
        c->p++;
    }
    return (size_t) (c->p - start);
}

static ga_err_t
s_fail(cursor_t *c, const char *what)
{
    snprintf(c->err, c->errlen, "args: %s at \"%.20s\"", what, c->p);
    return GA_ECONFIG;
}

static ga_err_t
s_value(cursor_t *c, ga_value_t *out)
{
    s_skip(c);
    if (*c->p == '"') {
        const char *start = ++c->p;
        while (*c->p && *c->p != '"') {
            c->p++;
        }
        if (*c->p != '"') {
            return s_fail(c, "unterminated string");
        }
        *out = ga_str_dup(c->a, start, (size_t) (c->p - start));
        c->p++;
        return GA_OK;
    }
    if (*c->p == '[') {
        c->p++;
        *out = ga_array(c->a, 4);
        for (;;) {
            s_skip(c);
            if (*c->p == ']') {
                c->p++;
                return GA_OK;
            }
            ga_value_t item;
            ga_err_t rc = s_value(c, &item);
            if (rc != GA_OK) {
                return rc;
            }
            ga_array_push(out, c->a, item);
            s_skip(c);
            if (*c->p == ',' || *c->p == '|') {
                c->p++;
            } else if (*c->p != ']') {
                return s_fail(c, "expected , or ] in a list");
            }
        }
    }
    const char *start = c->p;
    size_t n = s_word(c);
    if (n == 0) {
        return s_fail(c, "expected a value");
    }
    char *word = ga_arena_strndup(c->a, start, n);
    char *end = NULL;
    long long i = strtoll(word, &end, 10);
    if (*end == '\0') {
        *out = ga_int(i);
        return GA_OK;
    }
    double f = strtod(word, &end);
    if (*end == '\0') {
        *out = ga_float(f);
    } else if (strcmp(word, "true") == 0 || strcmp(word, "false") == 0) {
        *out = ga_bool(word[0] == 't');
    } else if (strcmp(word, "nil") == 0 || strcmp(word, "null") == 0) {
        *out = ga_nil();
    } else {
        *out = ga_str(word);
    }
    return GA_OK;
}

// The options of the notation ("default" is the config's default_value).
static const char *const s_option_names[] = {
    "max_bytes", "max_items", "max_item_bytes", "allow_nil", "default", "required", "accept"};
#define N_OPTIONS (sizeof s_option_names / sizeof s_option_names[0])

// "(key=value, ...)" after a type: the extended form {type, key: value, ...}.
static ga_err_t
s_options(cursor_t *c, const char *arg, ga_value_t type, ga_value_t *out)
{
    *out = ga_map(c->a, 4);
    ga_map_put(out, c->a, "type", type);
    c->p++; // '('
    for (;;) {
        s_skip(c);
        if (*c->p == ')') {
            c->p++;
            return GA_OK;
        }
        const char *start = c->p;
        size_t n = s_word(c);
        s_skip(c);
        if (n == 0 || *c->p != '=') {
            return s_fail(c, "expected key=value");
        }
        c->p++;
        char *key = ga_arena_strndup(c->a, start, n);
        size_t k = 0;
        while (k < N_OPTIONS && strcmp(key, s_option_names[k]) != 0) {
            k++;
        }
        if (k == N_OPTIONS) {
            snprintf(c->err, c->errlen,
                     "args: %s: unknown option \"%s\" (valid: max_bytes, max_items, "
                     "max_item_bytes, allow_nil, default, required, accept)",
                     arg, key);
            return GA_ECONFIG;
        }
        if (strcmp(key, "default") == 0) {
            key = "default_value";
        }
        ga_value_t v;
        ga_err_t rc = s_value(c, &v);
        if (rc != GA_OK) {
            return rc;
        }
        ga_map_put(out, c->a, key, v);
        s_skip(c);
        if (*c->p == ',') {
            c->p++;
        } else if (*c->p != ')') {
            return s_fail(c, "expected , or ) after an option");
        }
    }
}

ga_err_t
wk_argspec_parse(ga_arena_t *a, const char *spec, ga_value_t *types, ga_value_t *orders,
                 char *err, size_t errlen)
{
    cursor_t c = {.p = spec, .a = a, .err = err, .errlen = errlen};
    *types = ga_map(a, 4);
    *orders = ga_array(a, 4);
    for (;;) {
        while (*c.p == ',' || isspace((unsigned char) *c.p)) {
            c.p++;
        }
        if (*c.p == '\0') {
            return GA_OK;
        }
        const char *start = c.p;
        while (isalnum((unsigned char) *c.p) || *c.p == '_' || *c.p == '-' || *c.p == '.') {
            c.p++;
        }
        size_t name_len = (size_t) (c.p - start);
        if (name_len == 0 || *c.p != ':') {
            return s_fail(&c, "expected name:type");
        }
        char *name = ga_arena_strndup(a, start, name_len);
        c.p++;
        const char *tstart = c.p;
        while (isalnum((unsigned char) *c.p) || *c.p == '_') {
            c.p++;
        }
        if (c.p == tstart) {
            return s_fail(&c, "expected a type after ':'");
        }
        ga_value_t type = ga_str_dup(a, tstart, (size_t) (c.p - tstart));
        if (ga_argtype_parse(type.u.s) < 0) {
            char valid[200] = "";
            for (int t = 0; t <= GA_ARG_ANY; t++) {
                size_t used = strlen(valid);
                snprintf(valid + used, sizeof valid - used, "%s%s", t ? ", " : "",
                         ga_argtype_name((ga_argtype_t) t));
            }
            snprintf(err, errlen, "args: %s: unknown type \"%s\" (valid: %s)", name, type.u.s,
                     valid);
            return GA_ECONFIG;
        }
        ga_value_t entry = type;
        if (*c.p == '(') {
            ga_err_t rc = s_options(&c, name, type, &entry);
            if (rc != GA_OK) {
                return rc;
            }
        }
        ga_map_put(types, a, name, entry);
        ga_array_push(orders, a, ga_str(name));
    }
}
