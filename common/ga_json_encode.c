// SPDX-License-Identifier: MIT
// Encoding: a small writer from ga_value_t to JSON text. It never fails, writes shortest
// round-trip numbers, maps non-finite floats to null and replaces invalid UTF-8 with U+FFFD.
#include "ga_json.h"
#include "ga_json_plain.h"

#include "ga_utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The index of the first byte at or after i that is not printable ASCII other than '"' and
// '\\' (those need no escaping), or len.
static inline size_t
s_plain_run(const unsigned char *t, size_t i, size_t len)
{
    i = ga_json_plain_words(t, i, len);
    while (i < len) {
        unsigned char c = t[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
            break;
        }
        i++;
    }
    return i;
}

void
ga_json_encode_str(ga_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *) s;
    size_t i = s_plain_run(p, 0, len);
    if (i == len) { // nothing to escape (the common case): one reserve, one copy
        uint8_t *d = ga_buf_reserve(out, len + 2);
        d[0] = '"';
        ga_copy_short(d + 1, p, len);
        d[len + 1] = '"';
        out->len += len + 2;
        return;
    }
    ga_buf_append_char(out, '"');
    size_t run = 0; // start of the pending run of bytes that need no escaping
    while (i < len) {
        i = s_plain_run(p, i, len);
        if (i == len) {
            break;
        }
        unsigned char c = p[i];
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
        // Digits from the end, without snprintf (a stream chunk is often a small map of ints).
        uint64_t u = v->u.i < 0 ? 0 - (uint64_t) v->u.i : (uint64_t) v->u.i;
        char *end = tmp + sizeof tmp;
        char *p = end;
        do {
            *--p = (char) ('0' + u % 10);
            u /= 10;
        } while (u);
        if (v->u.i < 0) {
            *--p = '-';
        }
        ga_buf_append(out, p, (size_t) (end - p));
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
