// SPDX-License-Identifier: MIT
// jansson for parsing (strict), a small writer for output. Conversion to ga_value_t copies
// strings into the caller's arena and frees the jansson tree before returning.
#include "ga_json.h"

#include "ga_utf8.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ga_err_t
s_convert(json_t *j, ga_arena_t *arena, ga_value_t *out, int depth)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = ga_nil();
        return GA_OK;
    case JSON_TRUE:
        *out = ga_bool(true);
        return GA_OK;
    case JSON_FALSE:
        *out = ga_bool(false);
        return GA_OK;
    case JSON_INTEGER:
        *out = ga_int((int64_t) json_integer_value(j));
        return GA_OK;
    case JSON_REAL:
        *out = ga_float(json_real_value(j));
        return GA_OK;
    case JSON_STRING:
        *out = ga_str_dup(arena, json_string_value(j), json_string_length(j));
        return GA_OK;
    case JSON_ARRAY: {
        if (depth >= GA_JSON_MAX_DEPTH) {
            return GA_ETOOBIG;
        }
        size_t n = json_array_size(j);
        ga_value_t a = ga_array(arena, (uint32_t) n);
        for (size_t i = 0; i < n; i++) {
            ga_err_t rc = s_convert(json_array_get(j, i), arena, &a.u.items[i], depth + 1);
            if (rc != GA_OK) {
                return rc;
            }
        }
        a.len = (uint32_t) n;
        *out = a;
        return GA_OK;
    }
    case JSON_OBJECT: {
        if (depth >= GA_JSON_MAX_DEPTH) {
            return GA_ETOOBIG;
        }
        size_t n = json_object_size(j);
        ga_value_t m = ga_map(arena, (uint32_t) n);
        const char *key;
        json_t *val;
        uint32_t i = 0;
        json_object_foreach(j, key, val) {
            size_t klen = strlen(key);
            m.u.pairs[i].key = ga_arena_strndup(arena, key, klen);
            m.u.pairs[i].key_len = (uint32_t) klen;
            ga_err_t rc = s_convert(val, arena, &m.u.pairs[i].value, depth + 1);
            if (rc != GA_OK) {
                return rc;
            }
            i++;
        }
        m.len = i;
        *out = m;
        return GA_OK;
    }
    }
    return GA_EPROTO;
}

ga_err_t
ga_json_decode(const char *text, size_t len, ga_arena_t *arena, ga_value_t *out, char *err,
               size_t errlen)
{
    *out = ga_nil();
    json_error_t jerr;
    // JSON_DISABLE_EOF_CHECK is not set: trailing garbage is an error.
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        if (err && errlen) {
            snprintf(err, errlen, "%s at offset %d", jerr.text, jerr.position);
        }
        return GA_EPROTO;
    }
    ga_err_t rc = s_convert(j, arena, out, 0);
    json_decref(j);
    if (rc != GA_OK) {
        *out = ga_nil();
        if (err && errlen) {
            snprintf(err, errlen, "nesting deeper than %d", GA_JSON_MAX_DEPTH);
        }
    }
    return rc;
}

void
ga_json_encode_str(ga_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *) s;
    ga_buf_append_char(out, '"');
    size_t run = 0; // start of the pending run of bytes that need no escaping
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t n = c >= 0x80 ? ga_utf8_seq(p + i, len - i) : 0;
        if (n > 0) {
            i += n;
            continue;
        }
        ga_buf_append(out, p + run, i - run);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char) c};
            ga_buf_append(out, esc, 2);
        } else if (c == '\n') {
            ga_buf_append(out, "\\n", 2);
        } else if (c == '\r') {
            ga_buf_append(out, "\\r", 2);
        } else if (c == '\t') {
            ga_buf_append(out, "\\t", 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ga_buf_append(out, esc, 6);
        } else {
            ga_buf_append(out, "\\ufffd", 6); // invalid UTF-8 byte from a peer
        }
        i++;
        run = i;
    }
    ga_buf_append(out, p + run, len - run);
    ga_buf_append_char(out, '"');
}

static void
s_encode_float(ga_buf_t *out, double f)
{
    if (!isfinite(f)) {
        ga_buf_append(out, "null", 4);
        return;
    }
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.15g", f);
    if (strtod(tmp, NULL) != f) {
        n = snprintf(tmp, sizeof tmp, "%.17g", f);
    }
    ga_buf_append(out, tmp, (size_t) n);
}

void
ga_json_encode(ga_buf_t *out, const ga_value_t *v)
{
    char tmp[32];
    switch (v->type) {
    case GA_NIL:
        ga_buf_append(out, "null", 4);
        return;
    case GA_BOOL:
        ga_buf_append_str(out, v->u.b ? "true" : "false");
        return;
    case GA_INT: {
        int n = snprintf(tmp, sizeof tmp, "%lld", (long long) v->u.i);
        ga_buf_append(out, tmp, (size_t) n);
        return;
    }
    case GA_FLOAT:
        s_encode_float(out, v->u.f);
        return;
    case GA_STR:
        ga_json_encode_str(out, v->u.s, v->len);
        return;
    case GA_ARRAY:
        ga_buf_append_char(out, '[');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) {
                ga_buf_append_char(out, ',');
            }
            ga_json_encode(out, &v->u.items[i]);
        }
        ga_buf_append_char(out, ']');
        return;
    case GA_MAP:
        ga_buf_append_char(out, '{');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) {
                ga_buf_append_char(out, ',');
            }
            ga_json_encode_str(out, v->u.pairs[i].key, v->u.pairs[i].key_len);
            ga_buf_append_char(out, ':');
            ga_json_encode(out, &v->u.pairs[i].value);
        }
        ga_buf_append_char(out, '}');
        return;
    }
}
