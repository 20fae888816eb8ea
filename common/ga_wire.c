// SPDX-License-Identifier: MIT
// MessagePack: encoding straight into a ga_buf_t; decoding by our own bounded scanner and tree
// builder (see ga_wire.h for why msgpack-c's unpacker is not given raw input).
#include "ga_wire.h"

#include <string.h>

// ---------------------------------------------------------------------------------------------
// Encoding
//
// Written straight into the ga_buf_t, byte for byte what msgpack-c's packer writes (the
// smallest form of each value, as msgpack_pack_int64, msgpack_pack_double, msgpack_pack_str,
// msgpack_pack_array and msgpack_pack_map choose it): the packer's write callback per element
// cost more than the encoding itself. tests/unit/test_ga_wire.c checks it against the packer.

static inline void
s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static inline void
s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static inline void
s_put64(uint8_t *p, uint64_t v)
{
    s_put32(p, (uint32_t) (v >> 32));
    s_put32(p + 4, (uint32_t) v);
}

// Writes the header of a str, array or map of n elements at p: `fix` | n below `fixmax`, else
// the 8-bit (str only: `t8` nonzero), 16-bit or 32-bit form. Returns the bytes written.
static inline size_t
s_put_head(uint8_t *p, size_t n, uint8_t fix, size_t fixmax, uint8_t t8, uint8_t t16, uint8_t t32)
{
    if (n < fixmax) {
        p[0] = (uint8_t) (fix | n);
        return 1;
    }
    if (t8 && n < 256) {
        p[0] = t8;
        p[1] = (uint8_t) n;
        return 2;
    }
    if (n < 65536) {
        p[0] = t16;
        s_put16(p + 1, (uint16_t) n);
        return 3;
    }
    p[0] = t32;
    s_put32(p + 1, (uint32_t) n);
    return 5;
}

static inline void
s_str(ga_buf_t *out, const char *s, size_t len)
{
    uint8_t *p = ga_buf_reserve(out, 5 + len);
    size_t h = s_put_head(p, len, 0xa0, 32, 0xd9, 0xda, 0xdb);
    ga_copy_short(p + h, s, len);
    out->len += h + len;
}

// msgpack_pack_int64's choice: a fixint for [-32, 127], else the smallest signed form for a
// negative number and the smallest unsigned form for a positive one.
static size_t
s_int(uint8_t *p, int64_t d)
{
    if (d < -(1LL << 5)) {
        if (d < -(1LL << 15)) {
            if (d < -(1LL << 31)) {
                p[0] = 0xd3;
                s_put64(p + 1, (uint64_t) d);
                return 9;
            }
            p[0] = 0xd2;
            s_put32(p + 1, (uint32_t) (int32_t) d);
            return 5;
        }
        if (d < -(1 << 7)) {
            p[0] = 0xd1;
            s_put16(p + 1, (uint16_t) (int16_t) d);
            return 3;
        }
        p[0] = 0xd0;
        p[1] = (uint8_t) (int8_t) d;
        return 2;
    }
    if (d < (1 << 7)) {
        p[0] = (uint8_t) (int8_t) d;
        return 1;
    }
    if (d < (1LL << 16)) {
        if (d < (1 << 8)) {
            p[0] = 0xcc;
            p[1] = (uint8_t) d;
            return 2;
        }
        p[0] = 0xcd;
        s_put16(p + 1, (uint16_t) d);
        return 3;
    }
    if (d < (1LL << 32)) {
        p[0] = 0xce;
        s_put32(p + 1, (uint32_t) d);
        return 5;
    }
    p[0] = 0xcf;
    s_put64(p + 1, (uint64_t) d);
    return 9;
}

static void
s_pack(ga_buf_t *out, const ga_value_t *v)
{
    uint8_t *p;
    switch (v->type) {
    case GA_NIL:
        ga_buf_append_char(out, (char) 0xc0);
        break;
    case GA_BOOL:
        ga_buf_append_char(out, (char) (v->u.b ? 0xc3 : 0xc2));
        break;
    case GA_INT:
        p = ga_buf_reserve(out, 9);
        out->len += s_int(p, v->u.i);
        break;
    case GA_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v->u.f, sizeof bits);
        p = ga_buf_reserve(out, 9);
        p[0] = 0xcb;
        s_put64(p + 1, bits);
        out->len += 9;
        break;
    }
    case GA_STR:
        s_str(out, v->u.s, v->len);
        break;
    case GA_ARRAY:
        p = ga_buf_reserve(out, 5);
        out->len += s_put_head(p, v->len, 0x90, 16, 0, 0xdc, 0xdd);
        for (uint32_t i = 0; i < v->len; i++) {
            s_pack(out, &v->u.items[i]);
        }
        break;
    case GA_MAP:
        p = ga_buf_reserve(out, 5);
        out->len += s_put_head(p, v->len, 0x80, 16, 0, 0xde, 0xdf);
        for (uint32_t i = 0; i < v->len; i++) {
            const ga_pair_t *pair = &v->u.pairs[i];
            s_str(out, pair->key, pair->key_len);
            s_pack(out, &pair->value);
        }
        break;
    }
}

void
ga_wire_encode(ga_buf_t *out, const ga_value_t *v)
{
    s_pack(out, v);
}

// ---------------------------------------------------------------------------------------------
// Reading primitives

typedef struct {
    const uint8_t *p;   // next byte
    const uint8_t *end; // one past the last byte
} reader_t;

static uint64_t
s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

// What one header byte (plus its length bytes) says comes next.
typedef struct {
    ga_type_t type;  // value type; GA_STR also for bin
    uint64_t count;  // str/bin: bytes; array: items; map: pairs
    int64_t i;       // GA_INT
    double f;        // GA_FLOAT
    bool b;          // GA_BOOL
    bool is_big_u64; // an unsigned integer above INT64_MAX (decoded as a float)
} head_t;

// Reads one header. Checks that the fixed-size part is present; payload sizes are the caller's.
static ga_err_t
s_head(reader_t *r, head_t *h)
{
    if (r->p >= r->end) {
        return GA_EPROTO;
    }
    uint8_t c = *r->p++;
    size_t avail = (size_t) (r->end - r->p);
    int n = 0; // bytes of length/value that follow the header byte
    // Only the fields of h->type are set below (callers read no others); count is zeroed so
    // that a stray read of it is harmless.
    h->count = 0;
    if (c <= 0x7f) {
        h->type = GA_INT;
        h->i = c;
        return GA_OK;
    }
    if (c >= 0xe0) {
        h->type = GA_INT;
        h->i = (int8_t) c;
        return GA_OK;
    }
    if ((c & 0xf0) == 0x80) {
        h->type = GA_MAP;
        h->count = c & 0x0f;
        return GA_OK;
    }
    if ((c & 0xf0) == 0x90) {
        h->type = GA_ARRAY;
        h->count = c & 0x0f;
        return GA_OK;
    }
    if ((c & 0xe0) == 0xa0) {
        h->type = GA_STR;
        h->count = c & 0x1f;
        return GA_OK;
    }
    switch (c) {
    case 0xc0:
        h->type = GA_NIL;
        return GA_OK;
    case 0xc2:
    case 0xc3:
        h->type = GA_BOOL;
        h->b = c == 0xc3;
        return GA_OK;
    case 0xc4: // bin 8/16/32
    case 0xd9: // str 8/16/32
        n = 1;
        break;
    case 0xc5:
    case 0xda:
    case 0xdc:
    case 0xde:
        n = 2;
        break;
    case 0xc6:
    case 0xdb:
    case 0xdd:
    case 0xdf:
        n = 4;
        break;
    case 0xca:
        n = 4;
        break;
    case 0xcb:
        n = 8;
        break;
    case 0xcc:
    case 0xd0:
        n = 1;
        break;
    case 0xcd:
    case 0xd1:
        n = 2;
        break;
    case 0xce:
    case 0xd2:
        n = 4;
        break;
    case 0xcf:
    case 0xd3:
        n = 8;
        break;
    default: // 0xc1 (never used), ext and fixext
        return GA_EPROTO;
    }
    if (avail < (size_t) n) {
        return GA_EPROTO;
    }
    uint64_t raw = s_be(r->p, n);
    r->p += n;
    switch (c) {
    case 0xc4:
    case 0xc5:
    case 0xc6:
    case 0xd9:
    case 0xda:
    case 0xdb:
        h->type = GA_STR;
        h->count = raw;
        break;
    case 0xdc:
    case 0xdd:
        h->type = GA_ARRAY;
        h->count = raw;
        break;
    case 0xde:
    case 0xdf:
        h->type = GA_MAP;
        h->count = raw;
        break;
    case 0xca: {
        uint32_t bits = (uint32_t) raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        h->type = GA_FLOAT;
        h->f = f;
        break;
    }
    case 0xcb: {
        double d;
        memcpy(&d, &raw, sizeof d);
        h->type = GA_FLOAT;
        h->f = d;
        break;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (raw > (uint64_t) INT64_MAX) {
            h->type = GA_FLOAT;
            h->f = (double) raw;
            h->is_big_u64 = true;
        } else {
            h->type = GA_INT;
            h->i = (int64_t) raw;
        }
        break;
    case 0xd0:
        h->type = GA_INT;
        h->i = (int8_t) raw;
        break;
    case 0xd1:
        h->type = GA_INT;
        h->i = (int16_t) raw;
        break;
    case 0xd2:
        h->type = GA_INT;
        h->i = (int32_t) raw;
        break;
    default: // 0xd3
        h->type = GA_INT;
        h->i = (int64_t) raw;
        break;
    }
    return GA_OK;
}

// ---------------------------------------------------------------------------------------------
// Pre-scan: walk everything, allocate nothing.

static ga_err_t
s_scan_value(reader_t *r, int depth, bool is_key)
{
    head_t h;
    ga_err_t rc = s_head(r, &h);
    if (rc != GA_OK) {
        return rc;
    }
    size_t avail = (size_t) (r->end - r->p);
    if (is_key && h.type != GA_STR) {
        return GA_EPROTO;
    }
    switch (h.type) {
    case GA_STR:
        if (h.count > avail || h.count > UINT32_MAX) {
            return GA_EPROTO;
        }
        if (is_key && memchr(r->p, '\0', (size_t) h.count) != NULL) {
            return GA_EPROTO;
        }
        r->p += h.count;
        return GA_OK;
    case GA_ARRAY:
    case GA_MAP: {
        if (depth >= GA_WIRE_MAX_DEPTH) {
            return GA_ETOOBIG;
        }
        // Each element takes one byte at least; a map pair two. Checked before descending.
        uint64_t per = h.type == GA_MAP ? 2 : 1;
        if (h.count > avail / per) {
            return GA_EPROTO;
        }
        for (uint64_t i = 0; i < h.count; i++) {
            if (h.type == GA_MAP) {
                rc = s_scan_value(r, depth + 1, true);
                if (rc != GA_OK) {
                    return rc;
                }
            }
            rc = s_scan_value(r, depth + 1, false);
            if (rc != GA_OK) {
                return rc;
            }
        }
        return GA_OK;
    }
    default:
        return GA_OK;
    }
}

ga_err_t
ga_wire_scan(const uint8_t *data, size_t len)
{
    if (data == NULL || len == 0) {
        return GA_EPROTO;
    }
    reader_t r = {.p = data, .end = data + len};
    ga_err_t rc = s_scan_value(&r, 0, false);
    if (rc == GA_OK && r.p != r.end) {
        rc = GA_EPROTO; // trailing bytes
    }
    return rc;
}

ga_err_t
ga_wire_scan_first(const uint8_t *data, size_t len, size_t *n)
{
    *n = 0;
    if (data == NULL || len == 0) {
        return GA_EPROTO;
    }
    reader_t r = {.p = data, .end = data + len};
    ga_err_t rc = s_scan_value(&r, 0, false);
    if (rc == GA_OK) {
        *n = (size_t) (r.p - data);
    }
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Tree building, on input the scan has accepted (bounds are still checked: cheap insurance).

static ga_err_t
s_build(reader_t *r, ga_arena_t *arena, ga_value_t *out)
{
    head_t h;
    ga_err_t rc = s_head(r, &h);
    if (rc != GA_OK) {
        return rc;
    }
    size_t avail = (size_t) (r->end - r->p);
    switch (h.type) {
    case GA_NIL:
        *out = ga_nil();
        return GA_OK;
    case GA_BOOL:
        *out = ga_bool(h.b);
        return GA_OK;
    case GA_INT:
        *out = ga_int(h.i);
        return GA_OK;
    case GA_FLOAT:
        *out = ga_float(h.f);
        return GA_OK;
    case GA_STR:
        if (h.count > avail) {
            return GA_EPROTO;
        }
        *out = ga_str_dup(arena, (const char *) r->p, (size_t) h.count);
        r->p += h.count;
        return GA_OK;
    case GA_ARRAY: {
        if (h.count > avail) {
            return GA_EPROTO;
        }
        ga_value_t a = ga_array(arena, (uint32_t) h.count);
        for (uint32_t i = 0; i < (uint32_t) h.count; i++) {
            rc = s_build(r, arena, &a.u.items[i]);
            if (rc != GA_OK) {
                return rc;
            }
        }
        a.len = (uint32_t) h.count;
        *out = a;
        return GA_OK;
    }
    case GA_MAP: {
        if (h.count > avail / 2) {
            return GA_EPROTO;
        }
        ga_value_t m = ga_map(arena, (uint32_t) h.count);
        for (uint32_t i = 0; i < (uint32_t) h.count; i++) {
            ga_value_t key;
            rc = s_build(r, arena, &key);
            if (rc != GA_OK) {
                return rc;
            }
            if (key.type != GA_STR) {
                return GA_EPROTO;
            }
            m.u.pairs[i].key = key.u.s;
            m.u.pairs[i].key_len = key.len;
            rc = s_build(r, arena, &m.u.pairs[i].value);
            if (rc != GA_OK) {
                return rc;
            }
        }
        m.len = (uint32_t) h.count;
        *out = m;
        return GA_OK;
    }
    }
    return GA_EPROTO;
}

ga_err_t
ga_wire_decode(const uint8_t *data, size_t len, ga_arena_t *arena, ga_value_t *out)
{
    *out = ga_nil();
    ga_err_t rc = ga_wire_scan(data, len);
    if (rc != GA_OK) {
        return rc;
    }
    reader_t r = {.p = data, .end = data + len};
    rc = s_build(&r, arena, out);
    if (rc != GA_OK) {
        *out = ga_nil();
    }
    return rc;
}

ga_err_t
ga_wire_decode_first(const uint8_t *data, size_t len, ga_arena_t *arena, ga_value_t *out,
                     size_t *n)
{
    *out = ga_nil();
    ga_err_t rc = ga_wire_scan_first(data, len, n);
    if (rc != GA_OK) {
        return rc;
    }
    reader_t r = {.p = data, .end = data + *n};
    rc = s_build(&r, arena, out);
    if (rc != GA_OK) {
        *out = ga_nil();
    }
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Flat maps in one pass: nothing nests, so nothing needs scanning before it is built.

// The keys of the protocol's envelopes (docs/protocol.md, "Commands"): a decoded key equal to
// one of them points to this static copy instead of one in the arena. The caller cannot tell
// the difference (keys are borrowed either way), and the common keys cost no copy.
static const char *
s_known_key(const uint8_t *k, size_t len)
{
#define S_IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0 ? lit : NULL)
    switch (len) {
    case 2:
        return k[0] == 'o' ? S_IS("ok") : k[1] == 'd' ? S_IS("id") : S_IS("ip");
    case 4:
        return k[0] == 'c' ? S_IS("code") : S_IS("node");
    case 5:
        return k[0] == 'e' ? S_IS("error") : S_IS("roles");
    case 7:
        switch (k[0]) {
        case 's':
            return S_IS("service");
        case 'v':
            return S_IS("version");
        case 'u':
            return S_IS("user_id");
        case 'r':
            return S_IS("refused");
        default:
            return NULL;
        }
    case 8:
        return S_IS("deadline");
    case 9:
        switch (k[0]) {
        case 'c':
            return S_IS("can_retry");
        case 'd':
            return S_IS("device_id");
        case 'r':
            return S_IS("retryable");
        default:
            return NULL;
        }
    case 10:
        return k[1] == 'e' ? S_IS("request_id") : S_IS("rate_limit");
    case 11:
        return S_IS("routing_key");
    case 12:
        return k[0] == 'r' ? S_IS("request_type") : S_IS("stream_topic");
    default:
        return NULL;
    }
#undef S_IS
}

// Copies the `len` bytes at `p` (present: the caller checked) NUL-terminated to `*sb`, the
// next free byte of the map's string space, and moves `*sb` past them.
static inline const char *
s_strbuf_copy(char **sb, const uint8_t *p, size_t len)
{
    char *s = *sb;
    ga_copy_short(s, p, len);
    s[len] = '\0';
    *sb = s + len + 1;
    return s;
}

ga_err_t
ga_wire_decode_map(const uint8_t *data, size_t len, ga_arena_t *arena, ga_value_t *out)
{
    *out = (ga_value_t){.type = GA_NIL};
    if (data == NULL || len == 0) {
        return GA_EPROTO;
    }
    const uint8_t *p = data + 1;
    const uint8_t *end = data + len;
    size_t count;
    if ((data[0] & 0xf0) == 0x80) {
        count = data[0] & 0x0f;
    } else if (data[0] == 0xde && len >= 3) {
        count = (size_t) s_be(p, 2);
        p += 2;
    } else if (data[0] == 0xdf && len >= 5) {
        count = (size_t) s_be(p, 4);
        p += 4;
    } else {
        return ga_wire_decode(data, len, arena, out); // not a map: the general path decides
    }
    if (count > (size_t) (end - p) / 2) {
        return GA_EPROTO; // as the pre-scan refuses it
    }
    // One arena allocation: the pairs, then room for every string of the map (each string's
    // bytes plus its NUL fit in the input bytes that hold it, header included).
    ga_pair_t *pairs = NULL;
    char *sb = NULL;
    if (count > 0) {
        pairs = ga_arena_alloc(arena, count * sizeof(ga_pair_t) + (size_t) (end - p) + 1);
        sb = (char *) (pairs + count);
    }
    for (size_t i = 0; i < count; i++) {
        ga_pair_t *pr = &pairs[i];
        size_t klen;
        // A fixstr key (every key of the protocol's) is read here; others by s_head.
        if (p < end && (*p & 0xe0) == 0xa0) {
            klen = *p++ & 0x1f;
        } else {
            reader_t r = {.p = p, .end = end};
            head_t k;
            if (s_head(&r, &k) != GA_OK || k.type != GA_STR) {
                return GA_EPROTO;
            }
            p = r.p;
            klen = (size_t) k.count; // 4 length bytes at most: fits
        }
        if (klen > (size_t) (end - p)) {
            return GA_EPROTO;
        }
        const char *known = s_known_key(p, klen);
        if (known) {
            pr->key = known; // equal bytes, so no NUL in it either
        } else if (memchr(p, '\0', klen) != NULL) {
            return GA_EPROTO;
        } else {
            pr->key = s_strbuf_copy(&sb, p, klen);
        }
        pr->key_len = (uint32_t) klen;
        p += klen;
        // The scalars of the protocol's envelopes are read here; the rest by s_head.
        if (p >= end) {
            return GA_EPROTO;
        }
        uint8_t c = *p;
        size_t vlen;
        if (c <= 0x7f || c >= 0xe0) { // positive and negative fixint: the byte as an int8
            pr->value = (ga_value_t){.type = GA_INT, .u.i = (int8_t) c};
            p++;
            continue;
        }
        if ((c & 0xe0) == 0xa0) { // fixstr
            vlen = c & 0x1f;
            p++;
        } else {
            size_t avail = (size_t) (end - p) - 1; // after the header byte
            switch (c) {
            case 0xc0:
                pr->value = (ga_value_t){.type = GA_NIL};
                p++;
                continue;
            case 0xc2:
            case 0xc3:
                pr->value = (ga_value_t){.type = GA_BOOL, .u.b = c == 0xc3};
                p++;
                continue;
            case 0xcc:
            case 0xcd:
            case 0xce:
            case 0xcf:
            case 0xd0:
            case 0xd1:
            case 0xd2:
            case 0xd3: {
                int n = 1 << (c & 0x03); // 1, 2, 4 or 8 bytes, unsigned then signed
                if (avail < (size_t) n) {
                    return GA_EPROTO;
                }
                uint64_t raw = s_be(p + 1, n);
                p += 1 + n;
                int64_t v;
                if (c >= 0xd0) {
                    v = n == 1   ? (int8_t) raw
                        : n == 2 ? (int16_t) raw
                        : n == 4 ? (int32_t) raw
                                 : (int64_t) raw;
                } else if (raw > (uint64_t) INT64_MAX) {
                    // As s_head: an unsigned integer above INT64_MAX is decoded as a float.
                    pr->value = (ga_value_t){.type = GA_FLOAT, .u.f = (double) raw};
                    continue;
                } else {
                    v = (int64_t) raw;
                }
                pr->value = (ga_value_t){.type = GA_INT, .u.i = v};
                continue;
            }
            case 0xd9: // str8
                if (avail < 1) {
                    return GA_EPROTO;
                }
                vlen = p[1];
                p += 2;
                break;
            default: {
                reader_t r = {.p = p, .end = end};
                head_t v;
                if (s_head(&r, &v) != GA_OK) {
                    return GA_EPROTO;
                }
                p = r.p;
                switch (v.type) {
                case GA_ARRAY:
                case GA_MAP:
                    // Something nests: the general path (pre-scan, then build) takes it all.
                    return ga_wire_decode(data, len, arena, out);
                case GA_STR:
                    if (v.count > (size_t) (end - p) || v.count > UINT32_MAX) {
                        return GA_EPROTO;
                    }
                    vlen = (size_t) v.count;
                    break;
                case GA_FLOAT:
                    pr->value = (ga_value_t){.type = GA_FLOAT, .u.f = v.f};
                    continue;
                case GA_NIL: // nil, bool and int are all read above; kept for completeness
                    pr->value = (ga_value_t){.type = GA_NIL};
                    continue;
                case GA_BOOL:
                    pr->value = (ga_value_t){.type = GA_BOOL, .u.b = v.b};
                    continue;
                case GA_INT:
                    pr->value = (ga_value_t){.type = GA_INT, .u.i = v.i};
                    continue;
                default: // no other type exists
                    return GA_EPROTO;
                }
                break;
            }
            }
        }
        if (vlen > (size_t) (end - p)) {
            return GA_EPROTO;
        }
        pr->value = (ga_value_t){
            .type = GA_STR, .len = (uint32_t) vlen, .u.s = s_strbuf_copy(&sb, p, vlen)};
        p += vlen;
    }
    if (p != end) {
        return GA_EPROTO; // trailing bytes
    }
    *out = (ga_value_t){
        .type = GA_MAP, .len = (uint32_t) count, .cap = (uint32_t) count, .u.pairs = pairs};
    return GA_OK;
}
