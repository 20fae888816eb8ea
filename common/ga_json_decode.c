// SPDX-License-Identifier: MIT
// Decoding: a single-pass recursive-descent parser that writes ga_value_t straight into the
// caller's arena: no per-node malloc, no intermediate tree, no conversion copy. It accepts
// exactly RFC 8259 JSON, as jansson did with JSON_DECODE_ANY | JSON_REJECT_DUPLICATES (see
// ga_json.h for the rules). The writer is in ga_json_encode.c.
//
// Containers: the element count is unknown until the closing bracket, so the items (or pairs)
// of every open container are collected on one scratch stack, innermost last, and copied once
// into an exact-size arena array when the container closes. The scratch starts on the C stack
// and moves to the arena (doubling) only for large documents, so decoding a typical frame makes
// no heap allocation beyond the arena's own blocks.
#include "ga_json.h"
#include "ga_json_plain.h"

#include "ga_utf8.h"

#include <errno.h>
#include <langinfo.h>
#include <math.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

// Bytes of scratch on the C stack: the items and pairs of typical frames fit (24 / 40 bytes each).
#define SCRATCH_ON_STACK 2048
// An object checks a new key against its first keys by linear scan; from this many keys on it
// uses a hash table instead, so that a 1 MB object of 100k keys is not quadratic.
#define LINEAR_KEYS 8
// Numbers up to this many bytes are copied to the C stack for strtod; longer ones to the arena.
#define NUMBER_ON_STACK 64
// Decoded strings are packed one after another (unaligned, NUL-terminated) into chunks of at
// most this many bytes taken from the arena, rather than one arena allocation each; a longer
// string gets a chunk of its own size.
#define STRING_CHUNK 1024

typedef struct {
    const unsigned char *text; // the input; NOT NUL-terminated: never read at or past len
    size_t len;                // bytes in text
    size_t pos;                // next byte to read
    ga_arena_t *arena;         // where every value goes
    unsigned char *scratch;    // items and pairs of the open containers, innermost last
    size_t used;               // bytes of scratch in use
    size_t cap;                // bytes of scratch available
    char *err;                 // the caller's buffer for a reason, or NULL
    size_t errlen;             // bytes in err
    char *strings;             // where the next decoded string goes (see STRING_CHUNK)
    size_t strings_left;       // bytes left there
} parser_t;

// Keys of one object with more than LINEAR_KEYS keys: open addressing, linear probing. A slot
// holds (hash << 32) | (pair index + 1); 0 is empty. Lives in the arena.
typedef struct {
    uint64_t *slots; // NULL until the object reaches LINEAR_KEYS keys
    size_t mask;     // slots - 1
    uint64_t seed;   // the hash seed this table was built with
} keyset_t;

static ga_err_t s_value(parser_t *ps, ga_value_t *out, unsigned depth);

// Bytes that stand for themselves inside a string: printable ASCII but '"' and '\\'. Anything
// else (control characters, a backslash, the closing quote, UTF-8 lead bytes) takes the slow path.
// clang-format off
#define PLAIN16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const bool s_plain[256] = {
    [0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x22 '"'
    PLAIN16,
    PLAIN16,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, // 0x5c '\\'
    PLAIN16,
    PLAIN16,
};
// clang-format on

// The index of the first byte at or after i that is not plain, or len.
static inline size_t
s_plain_run(const unsigned char *t, size_t i, size_t len)
{
    i = ga_json_plain_words(t, i, len);
    while (i < len && s_plain[t[i]]) {
        i++;
    }
    return i;
}

static ga_err_t
s_fail(const parser_t *ps, size_t at, const char *reason)
{
    if (ps->err && ps->errlen) {
        snprintf(ps->err, ps->errlen, "%s at offset %zu", reason, at);
    }
    return GA_EPROTO;
}

static ga_err_t
s_too_deep(const parser_t *ps)
{
    if (ps->err && ps->errlen) {
        snprintf(ps->err, ps->errlen, "nesting deeper than %d", GA_JSON_MAX_DEPTH);
    }
    return GA_ETOOBIG;
}

static inline bool
s_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

// JSON whitespace is exactly space, tab, LF and CR (not FF, VT or Unicode spaces).
static inline void
s_skip_ws(parser_t *ps)
{
    while (ps->pos < ps->len) {
        unsigned char c = ps->text[ps->pos];
        // Every whitespace byte is at most ' ': one compare settles the usual token byte.
        if (c > ' ' || (c != ' ' && c != '\n' && c != '\r' && c != '\t')) {
            return;
        }
        ps->pos++;
    }
}

// Moves the scratch stack to the arena with room for `size` more bytes. The old copy is wasted,
// but doubling bounds the waste by the final size, which is proportional to the input.
static void
s_grow(parser_t *ps, size_t size)
{
    size_t ncap = ps->cap * 2;
    while (ncap - ps->used < size) {
        ncap *= 2;
    }
    unsigned char *p = ga_arena_alloc(ps->arena, ncap);
    memcpy(p, ps->scratch, ps->used);
    ps->scratch = p;
    ps->cap = ncap;
}

// Reserves `size` bytes on the scratch stack.
static inline void *
s_push(parser_t *ps, size_t size)
{
    if (ps->cap - ps->used < size) {
        s_grow(ps, size);
    }
    void *slot = ps->scratch + ps->used;
    ps->used += size;
    return slot;
}

// ---- strings ----

// The value of 4 hex digits at text[at], or -1 when they are not 4 hex digits.
static int32_t
s_hex4(const unsigned char *text, size_t len, size_t at)
{
    if (at > len || len - at < 4) {
        return -1;
    }
    int32_t v = 0;
    for (size_t i = at; i < at + 4; i++) {
        unsigned char c = text[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

// Checks the escape whose backslash is at text[at]. Sets *in to its length in the input and
// *out to the length of its UTF-8 decoding. Surrogate pairs must be complete and in order;
// \u0000 is refused, as jansson does without JSON_ALLOW_NUL (our strings and keys are C strings).
static ga_err_t
s_check_escape(const parser_t *ps, size_t at, size_t *in, size_t *out)
{
    const unsigned char *t = ps->text;
    if (at + 1 >= ps->len) {
        return s_fail(ps, at, "unterminated string");
    }
    switch (t[at + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        *in = 2;
        *out = 1;
        return GA_OK;
    case 'u':
        break;
    default:
        return s_fail(ps, at, "invalid escape");
    }
    int32_t cp = s_hex4(t, ps->len, at + 2);
    if (cp < 0) {
        return s_fail(ps, at, "invalid \\u escape");
    }
    if (cp == 0) {
        return s_fail(ps, at, "\\u0000 is not allowed");
    }
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        return s_fail(ps, at, "lone low surrogate");
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (ps->len - at < 8 || t[at + 6] != '\\' || t[at + 7] != 'u') {
            return s_fail(ps, at, "lone high surrogate");
        }
        int32_t lo = s_hex4(t, ps->len, at + 8);
        if (lo < 0) {
            return s_fail(ps, at + 6, "invalid \\u escape");
        }
        if (lo < 0xdc00 || lo > 0xdfff) {
            return s_fail(ps, at, "high surrogate not followed by a low one");
        }
        *in = 12;
        *out = 4;
        return GA_OK;
    }
    *in = 6;
    *out = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
    return GA_OK;
}

// Decodes the n bytes of string body at src, already checked by s_string, into dst.
static void
s_unescape(const unsigned char *src, size_t n, char *dst)
{
    size_t i = 0;
    size_t o = 0;
    while (i < n) {
        const unsigned char *bs = memchr(src + i, '\\', n - i);
        size_t run = bs ? (size_t) (bs - (src + i)) : n - i;
        memcpy(dst + o, src + i, run);
        i += run;
        o += run;
        if (i == n) {
            break;
        }
        unsigned char c = src[i + 1];
        i += 2;
        switch (c) {
        case 'b':
            dst[o++] = '\b';
            continue;
        case 'f':
            dst[o++] = '\f';
            continue;
        case 'n':
            dst[o++] = '\n';
            continue;
        case 'r':
            dst[o++] = '\r';
            continue;
        case 't':
            dst[o++] = '\t';
            continue;
        case 'u':
            break;
        default: // '"', '\\', '/'
            dst[o++] = (char) c;
            continue;
        }
        uint32_t cp = (uint32_t) s_hex4(src, n, i);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t) s_hex4(src, n, i + 2) - 0xdc00);
            i += 6;
        }
        if (cp < 0x80) {
            dst[o++] = (char) cp;
        } else if (cp < 0x800) {
            dst[o++] = (char) (0xc0 | (cp >> 6));
            dst[o++] = (char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            dst[o++] = (char) (0xe0 | (cp >> 12));
            dst[o++] = (char) (0x80 | ((cp >> 6) & 0x3f));
            dst[o++] = (char) (0x80 | (cp & 0x3f));
        } else {
            dst[o++] = (char) (0xf0 | (cp >> 18));
            dst[o++] = (char) (0x80 | ((cp >> 12) & 0x3f));
            dst[o++] = (char) (0x80 | ((cp >> 6) & 0x3f));
            dst[o++] = (char) (0x80 | (cp & 0x3f));
        }
    }
}

// Room for a decoded string of n bytes and its NUL, from the current chunk or a new one.
static inline char *
s_string_room(parser_t *ps, size_t n)
{
    if (ps->strings_left <= n) {
        // The input from this string's opening quote on is at least as long as every string
        // still to come, decoded and NUL-terminated: a chunk never needs to be larger.
        size_t rest = ps->len - ps->pos;
        size_t chunk = rest < STRING_CHUNK ? rest : STRING_CHUNK;
        chunk = chunk > n ? chunk : n + 1;
        ps->strings = ga_arena_alloc(ps->arena, chunk);
        ps->strings_left = chunk;
    }
    char *s = ps->strings;
    ps->strings += n + 1;
    ps->strings_left -= n + 1;
    return s;
}

// s_string for any string: a first scan checks everything (UTF-8, control characters,
// escapes) and finds the decoded length; an escape-free string is then one copy, others are
// decoded in a second pass over that string only.
static ga_err_t
s_string_any(parser_t *ps, const char **out, uint32_t *out_len)
{
    const unsigned char *t = ps->text;
    size_t len = ps->len;
    size_t start = ps->pos + 1;
    size_t i = start;
    size_t shrink = 0; // input bytes the escapes lose when decoded (every escape loses some)
    for (;;) {
        i = s_plain_run(t, i, len);
        if (i >= len) {
            return s_fail(ps, ps->pos, "unterminated string");
        }
        unsigned char c = t[i];
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            size_t in, dec;
            ga_err_t rc = s_check_escape(ps, i, &in, &dec);
            if (rc != GA_OK) {
                return rc;
            }
            i += in;
            shrink += in - dec;
            continue;
        }
        if (c < 0x20) {
            return s_fail(ps, i, "control character in string");
        }
        size_t n = ga_utf8_seq(t + i, len - i);
        if (n == 0) {
            return s_fail(ps, i, "invalid UTF-8");
        }
        i += n;
    }
    size_t raw = i - start;
    size_t n = raw - shrink;
    if (n > UINT32_MAX) {
        return s_fail(ps, ps->pos, "string longer than 4 GiB");
    }
    char *s = s_string_room(ps, n);
    ps->pos = i + 1;
    if (shrink == 0) {
        ga_copy_short(s, t + start, n);
    } else {
        s_unescape(t + start, raw, s);
    }
    s[n] = '\0';
    *out = s;
    *out_len = (uint32_t) n;
    return GA_OK;
}

// Reads the string whose opening quote is at text[pos] into the arena (NUL-terminated), packed
// with the others (see STRING_CHUNK). Inline for the common case, printable ASCII up to the
// closing quote; anything else (escapes, UTF-8, errors) is s_string_any's.
static inline ga_err_t
s_string(parser_t *ps, const char **out, uint32_t *out_len)
{
    const unsigned char *t = ps->text;
    size_t start = ps->pos + 1;
    size_t i = s_plain_run(t, start, ps->len);
    size_t n = i - start;
    if (i >= ps->len || t[i] != '"' || n > UINT32_MAX) {
        return s_string_any(ps, out, out_len);
    }
    char *s = s_string_room(ps, n);
    ps->pos = i + 1;
    ga_copy_short(s, t + start, n);
    s[n] = '\0';
    *out = s;
    *out_len = (uint32_t) n;
    return GA_OK;
}

// ---- numbers ----

// An integer (no fraction, no exponent) becomes GA_INT and must fit int64_t; anything else
// becomes GA_FLOAT through strtod and must not overflow to infinity (underflow to 0 or a
// subnormal is accepted, as jansson does). The grammar is RFC 8259's: no '+', no leading zero,
// digits on both sides of '.', digits after the exponent sign.
static ga_err_t
s_number(parser_t *ps, ga_value_t *out)
{
    const unsigned char *t = ps->text;
    size_t len = ps->len;
    size_t start = ps->pos;
    size_t i = start;
    bool neg = false;
    if (t[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= len || !s_digit(t[i])) {
        return s_fail(ps, i, "invalid number");
    }
    size_t first = i;
    uint64_t u = 0; // wraps past 19 digits; ndigits tells
    if (t[i] == '0') {
        i++;
        if (i < len && s_digit(t[i])) {
            return s_fail(ps, first, "invalid number (leading zero)");
        }
    } else {
        while (i < len && s_digit(t[i])) {
            u = u * 10 + (uint64_t) (t[i] - '0');
            i++;
        }
    }
    size_t ndigits = i - first;
    bool real = false;
    if (i < len && t[i] == '.') {
        i++;
        if (i >= len || !s_digit(t[i])) {
            return s_fail(ps, i, "invalid number (digit expected after '.')");
        }
        while (i < len && s_digit(t[i])) {
            i++;
        }
        real = true;
    }
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < len && (t[i] == '+' || t[i] == '-')) {
            i++;
        }
        if (i >= len || !s_digit(t[i])) {
            return s_fail(ps, i, "invalid number (digit expected in exponent)");
        }
        while (i < len && s_digit(t[i])) {
            i++;
        }
        real = true;
    }
    ps->pos = i;
    if (!real) {
        // 19 digits always fit in uint64_t; 20 or more (no leading zeros) exceed int64_t.
        uint64_t limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
        if (ndigits > 19 || u > limit) {
            return s_fail(ps, start, neg ? "too big negative integer" : "too big integer");
        }
        *out = ga_int(!neg ? (int64_t) u : u == limit ? INT64_MIN : -(int64_t) u);
        return GA_OK;
    }
    // strtod needs a NUL-terminated copy (the input has none) in which the decimal point is
    // the locale's, as jansson does, in case an embedding program called setlocale (nl_langinfo
    // rather than localeconv: it is thread-safe).
    size_t n = i - start;
    char small[NUMBER_ON_STACK];
    char *buf = n < sizeof small ? small : ga_arena_alloc(ps->arena, n + 1);
    memcpy(buf, t + start, n);
    buf[n] = '\0';
    char point = nl_langinfo(RADIXCHAR)[0];
    if (point != '.') {
        char *dot = memchr(buf, '.', n);
        if (dot) {
            *dot = point;
        }
    }
    errno = 0;
    char *end;
    double d = strtod(buf, &end);
    if (end != buf + n) {
        return s_fail(ps, start, "invalid number"); // a multi-byte locale decimal point
    }
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE) {
        return s_fail(ps, start, "real number overflow");
    }
    *out = ga_float(d);
    return GA_OK;
}

// ---- duplicate keys ----

// A seed per table, so that a peer cannot choose keys that all collide (it would make the table
// quadratic): the monotonic clock in nanoseconds (a vDSO read, no system call) mixed with a
// heap and a stack address (both randomised by ASLR). No state is kept between calls, so the
// codec stays free of globals (codecs are pure, so they can be fuzzed); it is computed only for
// objects of more than LINEAR_KEYS keys.
static uint64_t
s_hash_seed(const void *table)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
    s ^= (uint64_t) (uintptr_t) table * 0x9e3779b97f4a7c15u;
    s ^= ((uint64_t) (uintptr_t) &ts << 17) * 0xbf58476d1ce4e5b9u;
    s ^= s >> 31;
    return s | 1;
}

// 64x64 -> 128-bit multiply folded to 64 bits (wyhash's mixing step).
static inline uint64_t
s_mum(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __extension__ typedef unsigned __int128 u128;
    u128 r = (u128) a * b;
    return (uint64_t) r ^ (uint64_t) (r >> 64);
#else
    uint64_t ha = a >> 32, la = (uint32_t) a, hb = b >> 32, lb = (uint32_t) b;
    uint64_t hh = ha * hb, hl = ha * lb, lh = la * hb, ll = la * lb;
    uint64_t mid = (ll >> 32) + (uint32_t) hl + (uint32_t) lh;
    uint64_t lo = (mid << 32) | (uint32_t) ll;
    uint64_t hi = hh + (hl >> 32) + (lh >> 32) + (mid >> 32);
    return lo ^ hi;
#endif
}

static uint32_t
s_hash(const char *key, size_t len, uint64_t seed)
{
    const uint64_t k = 0xa0761d6478bd642fu;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15u);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, key, 8);
        h = s_mum(w ^ seed, h ^ k);
        key += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, key, len);
    h = s_mum(w ^ seed ^ k, h ^ len);
    return (uint32_t) (h ^ (h >> 32));
}

// Puts pair `index` (hash h) in a table known to have room and not to hold its key.
static void
s_keys_insert(keyset_t *ks, uint32_t h, uint64_t index)
{
    size_t j = h & ks->mask;
    while (ks->slots[j] != 0) {
        j = (j + 1) & ks->mask;
    }
    ks->slots[j] = ((uint64_t) h << 32) | (index + 1);
}

// (Re)builds the table for the n pairs so far with room for at least n + 1 keys at half load.
static void
s_keys_grow(parser_t *ps, keyset_t *ks, const ga_pair_t *pairs, uint32_t n)
{
    size_t ocap = ks->slots ? ks->mask + 1 : 0;
    size_t cap = ocap ? ocap * 2 : 32;
    while (cap < 2 * ((size_t) n + 1)) {
        cap *= 2;
    }
    uint64_t *old = ks->slots;
    ks->slots = ga_arena_alloc(ps->arena, cap * sizeof *ks->slots);
    memset(ks->slots, 0, cap * sizeof *ks->slots);
    ks->mask = cap - 1;
    if (old) {
        for (size_t j = 0; j < ocap; j++) {
            if (old[j]) {
                s_keys_insert(ks, (uint32_t) (old[j] >> 32), (uint32_t) old[j] - 1);
            }
        }
        return;
    }
    ks->seed = s_hash_seed(ks);
    for (uint32_t i = 0; i < n; i++) {
        s_keys_insert(ks, s_hash(pairs[i].key, pairs[i].key_len, ks->seed), i);
    }
}

// Refuses `key` (which starts at offset `at`) when the object's n pairs so far have it;
// otherwise records it as pair n, which the caller pushes once its value is read.
static ga_err_t
s_key_unique(parser_t *ps, keyset_t *ks, size_t base, uint32_t n, const char *key,
             uint32_t klen, size_t at)
{
    const ga_pair_t *pairs = (const ga_pair_t *) (ps->scratch + base);
    if (n < LINEAR_KEYS) {
        for (uint32_t i = 0; i < n; i++) {
            if (pairs[i].key_len == klen && memcmp(pairs[i].key, key, klen) == 0) {
                return s_fail(ps, at, "duplicate object key");
            }
        }
        return GA_OK;
    }
    if (ks->slots == NULL || 2 * ((size_t) n + 1) > ks->mask + 1) {
        s_keys_grow(ps, ks, pairs, n);
    }
    uint32_t h = s_hash(key, klen, ks->seed);
    for (size_t j = h & ks->mask;; j = (j + 1) & ks->mask) {
        uint64_t slot = ks->slots[j];
        if (slot == 0) {
            ks->slots[j] = ((uint64_t) h << 32) | ((uint64_t) n + 1);
            return GA_OK;
        }
        if ((uint32_t) (slot >> 32) == h) {
            const ga_pair_t *p = &pairs[(uint32_t) slot - 1];
            if (p->key_len == klen && memcmp(p->key, key, klen) == 0) {
                return s_fail(ps, at, "duplicate object key");
            }
        }
    }
}

// ---- containers ----

// After an item or pair: skips to the next one (true) or past the closing bracket (false).
static ga_err_t
s_next(parser_t *ps, char close, bool *more)
{
    s_skip_ws(ps);
    if (ps->pos >= ps->len) {
        return s_fail(ps, ps->pos, "unexpected end of input");
    }
    unsigned char c = ps->text[ps->pos];
    if (c == ',') {
        ps->pos++;
        s_skip_ws(ps);
        *more = true;
        return GA_OK;
    }
    if (c == (unsigned char) close) {
        ps->pos++;
        *more = false;
        return GA_OK;
    }
    return s_fail(ps, ps->pos, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
}

static ga_err_t
s_array(parser_t *ps, ga_value_t *out, unsigned depth)
{
    if (depth >= GA_JSON_MAX_DEPTH) {
        return s_too_deep(ps);
    }
    ps->pos++; // '['
    s_skip_ws(ps);
    if (ps->pos < ps->len && ps->text[ps->pos] == ']') {
        ps->pos++;
        *out = ga_array(ps->arena, 0);
        return GA_OK;
    }
    size_t base = ps->used;
    uint32_t n = 0;
    for (bool more = true; more;) {
        ga_value_t item;
        ga_err_t rc = s_value(ps, &item, depth + 1);
        if (rc != GA_OK) {
            return rc;
        }
        if (n == UINT32_MAX) {
            return s_fail(ps, ps->pos, "array too long");
        }
        *(ga_value_t *) s_push(ps, sizeof item) = item;
        n++;
        rc = s_next(ps, ']', &more);
        if (rc != GA_OK) {
            return rc;
        }
    }
    ga_value_t a = ga_array(ps->arena, n);
    memcpy(a.u.items, ps->scratch + base, n * sizeof(ga_value_t));
    a.len = n;
    ps->used = base;
    *out = a;
    return GA_OK;
}

// Members keep their input order, as jansson's objects did.
static ga_err_t
s_object(parser_t *ps, ga_value_t *out, unsigned depth)
{
    if (depth >= GA_JSON_MAX_DEPTH) {
        return s_too_deep(ps);
    }
    ps->pos++; // '{'
    s_skip_ws(ps);
    if (ps->pos < ps->len && ps->text[ps->pos] == '}') {
        ps->pos++;
        *out = ga_map(ps->arena, 0);
        return GA_OK;
    }
    size_t base = ps->used;
    uint32_t n = 0;
    keyset_t keys = {0};
    for (bool more = true; more;) {
        if (ps->pos >= ps->len) {
            return s_fail(ps, ps->pos, "unexpected end of input");
        }
        if (ps->text[ps->pos] != '"') {
            return s_fail(ps, ps->pos, "expected a string key");
        }
        size_t at = ps->pos;
        ga_pair_t pair;
        ga_err_t rc = s_string(ps, &pair.key, &pair.key_len);
        if (rc != GA_OK) {
            return rc;
        }
        if (n == UINT32_MAX - 1) {
            return s_fail(ps, at, "object too long");
        }
        rc = s_key_unique(ps, &keys, base, n, pair.key, pair.key_len, at);
        if (rc != GA_OK) {
            return rc;
        }
        s_skip_ws(ps);
        if (ps->pos >= ps->len || ps->text[ps->pos] != ':') {
            return s_fail(ps, ps->pos, "expected ':'");
        }
        ps->pos++;
        s_skip_ws(ps);
        rc = s_value(ps, &pair.value, depth + 1);
        if (rc != GA_OK) {
            return rc;
        }
        *(ga_pair_t *) s_push(ps, sizeof pair) = pair;
        n++;
        rc = s_next(ps, '}', &more);
        if (rc != GA_OK) {
            return rc;
        }
    }
    ga_value_t m = ga_map(ps->arena, n);
    memcpy(m.u.pairs, ps->scratch + base, n * sizeof(ga_pair_t));
    m.len = n;
    ps->used = base;
    *out = m;
    return GA_OK;
}

static ga_err_t
s_literal(parser_t *ps, const char *word, size_t n, ga_value_t v, ga_value_t *out)
{
    if (ps->len - ps->pos < n || memcmp(ps->text + ps->pos, word, n) != 0) {
        return s_fail(ps, ps->pos, "invalid literal");
    }
    ps->pos += n;
    *out = v;
    return GA_OK;
}

// One value starting at text[pos] (whitespace already skipped). `depth` counts the containers
// around it; recursion is bounded by GA_JSON_MAX_DEPTH, checked before descending.
static ga_err_t
s_value(parser_t *ps, ga_value_t *out, unsigned depth)
{
    if (ps->pos >= ps->len) {
        return s_fail(ps, ps->pos, "unexpected end of input");
    }
    switch (ps->text[ps->pos]) {
    case '{':
        return s_object(ps, out, depth);
    case '[':
        return s_array(ps, out, depth);
    case '"': {
        const char *s;
        uint32_t n;
        ga_err_t rc = s_string(ps, &s, &n);
        if (rc == GA_OK) {
            *out = (ga_value_t){.type = GA_STR, .len = n, .u.s = s}; // ga_strn, minus its check
        }
        return rc;
    }
    case 't':
        return s_literal(ps, "true", 4, ga_bool(true), out);
    case 'f':
        return s_literal(ps, "false", 5, ga_bool(false), out);
    case 'n':
        return s_literal(ps, "null", 4, ga_nil(), out);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return s_number(ps, out);
    default:
        return s_fail(ps, ps->pos, "unexpected character");
    }
}

ga_err_t
ga_json_decode(const char *text, size_t len, ga_arena_t *arena, ga_value_t *out, char *err,
               size_t errlen)
{
    *out = ga_nil();
    alignas(max_align_t) unsigned char scratch[SCRATCH_ON_STACK];
    parser_t ps = {.text = (const unsigned char *) text,
                   .len = len,
                   .arena = arena,
                   .scratch = scratch,
                   .cap = sizeof scratch,
                   .err = err,
                   .errlen = errlen};
    s_skip_ws(&ps);
    if (ps.pos == ps.len) {
        return s_fail(&ps, ps.pos, "empty document");
    }
    ga_value_t v;
    ga_err_t rc = s_value(&ps, &v, 0);
    if (rc != GA_OK) {
        return rc;
    }
    s_skip_ws(&ps);
    if (ps.pos != ps.len) {
        return s_fail(&ps, ps.pos, "unexpected data after the document");
    }
    *out = v;
    return GA_OK;
}
