// SPDX-License-Identifier: MIT
// The JSON codec: strict decoding (duplicates, invalid UTF-8, trailing bytes, depth) and the
// writer's escaping, UTF-8 repair and number formatting. The decoder is our own parser; tables
// pin down every rule it shares with jansson (which it replaced), every table case is decoded
// from the end of a page followed by an unmapped one (so a read past len faults), and a
// randomized test compares it with jansson itself, linked here only, as an oracle.
#include "ga_json.h"

#include "test_rand.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

static ga_err_t
s_decode(ga_arena_t *a, const char *text, ga_value_t *v)
{
    return ga_json_decode(text, strlen(text), a, v, NULL, 0);
}

static void
s_encodes_as(const ga_value_t *v, const char *want)
{
    ga_buf_t b;
    ga_buf_init(&b);
    ga_json_encode(&b, v);
    ga_buf_append_char(&b, '\0');
    assert_string_equal((const char *) b.data, want);
    ga_buf_fini(&b);
}

static void
test_json_decodes_values_and_round_trips(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    const char *text = "{\"a\":[1,-2,3.5,true,false,null],\"b\":{\"c\":\"d\\u00e9\"},\"e\":\"\"}";
    assert_int_equal(s_decode(a, text, &v), GA_OK);
    assert_int_equal(v.type, GA_MAP);
    assert_int_equal(ga_map_get(&v, "a")->len, 6);
    assert_string_equal(ga_map_get_str(ga_map_get(&v, "b"), "c"), "d\xc3\xa9");
    ga_buf_t b;
    ga_buf_init(&b);
    ga_json_encode(&b, &v);
    ga_value_t back;
    assert_int_equal(ga_json_decode((const char *) b.data, b.len, a, &back, NULL, 0), GA_OK);
    assert_true(ga_value_equal(&v, &back));
    ga_buf_fini(&b);
    ga_arena_destroy(&a);
}

static void
test_json_refuses_what_is_not_strict_json(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    char err[128];
    const char *bad[] = {"{\"a\":1,\"a\":2}", "\"\xc3\x28\"", "[1] x", "", "{", "[1,]",
                         "\"\\ud800\"", "nul"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ga_json_decode(bad[i], strlen(bad[i]), a, &v, err, sizeof err),
                         GA_EPROTO);
        assert_true(strlen(err) > 0);
    }
    char deep[80];
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    deep[66] = '\0';
    assert_int_equal(s_decode(a, deep, &v), GA_ETOOBIG);
    deep[65] = '\0';
    assert_int_equal(s_decode(a, deep + 1, &v), GA_OK); // 32 deep
    ga_arena_destroy(&a);
}

static void
test_json_writer_escapes_and_repairs(void **state)
{
    (void) state;
    ga_value_t s = ga_str("q\"b\\n\nt\t\x01");
    s_encodes_as(&s, "\"q\\\"b\\\\n\\nt\\t\\u0001\"");
    ga_value_t bad = ga_strn("a\xff" "b\xc3", 4);
    s_encodes_as(&bad, "\"a\\ufffdb\\ufffd\"");
    ga_value_t utf8 = ga_str("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    s_encodes_as(&utf8, "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

static void
test_json_writer_formats_numbers(void **state)
{
    (void) state;
    ga_value_t v = ga_float(0.1);
    s_encodes_as(&v, "0.1");
    v = ga_float(1e300);
    s_encodes_as(&v, "1e+300");
    v = ga_float(0.0 / 0.0);
    s_encodes_as(&v, "null");
    v = ga_float(1.0 / 0.0);
    s_encodes_as(&v, "null");
    v = ga_int(INT64_MIN);
    s_encodes_as(&v, "-9223372036854775808");
    v = ga_int(INT64_MAX);
    s_encodes_as(&v, "9223372036854775807");
    v = ga_int(0);
    s_encodes_as(&v, "0");
    v = ga_int(-7);
    s_encodes_as(&v, "-7");
    v = ga_int(1000);
    s_encodes_as(&v, "1000");
    v = ga_float(1.0 / 3.0);
    ga_buf_t b;
    ga_buf_init(&b);
    ga_json_encode(&b, &v);
    ga_arena_t *a = ga_arena_new(256);
    ga_value_t back;
    assert_int_equal(ga_json_decode((const char *) b.data, b.len, a, &back, NULL, 0), GA_OK);
    assert_true(back.u.f == 1.0 / 3.0); // shortest form that round-trips exactly
    ga_arena_destroy(&a);
    ga_buf_fini(&b);
}

// ---- helpers for the table-driven tests ----

// Decodes text[0..len) copied so that its last byte is the last byte of a read-only page and
// the next page is unmapped: a read at or past len (the input has no NUL terminator) faults,
// and so would a write into the input.
static ga_err_t
s_decode_at_page_end(ga_arena_t *a, const char *text, size_t len, ga_value_t *v, char *err,
                     size_t errlen)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    size_t pages = len ? (len + page - 1) / page : 1;
    size_t total = (pages + 1) * page;
    unsigned char *m =
        mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    char *p = (char *) m + pages * page - len;
    if (len) {
        memcpy(p, text, len);
    }
    assert_int_equal(mprotect(m, pages * page, PROT_READ), 0);
    assert_int_equal(mprotect(m + pages * page, page, PROT_NONE), 0);
    ga_err_t rc = ga_json_decode(p, len, a, v, err, errlen);
    assert_int_equal(munmap(m, total), 0);
    return rc;
}

// Decodes from an exact-size heap copy (ASan catches a read past len); for bulk cases.
static ga_err_t
s_decode_exact(ga_arena_t *a, const char *text, size_t len, ga_value_t *v, char *err,
               size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) {
        memcpy(copy, text, len);
    }
    ga_err_t rc = ga_json_decode(copy, len, a, v, err, errlen);
    free(copy);
    return rc;
}

static char *
s_encode(const ga_value_t *v)
{
    ga_buf_t b;
    ga_buf_init(&b);
    ga_json_encode(&b, v);
    ga_buf_append_char(&b, '\0');
    return (char *) b.data; // caller frees
}

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

// Strict equality: same types, maps in the same order, floats bit for bit (-0.0 is not 0.0).
static bool
s_same(const ga_value_t *a, const ga_value_t *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case GA_NIL:
        return true;
    case GA_BOOL:
        return a->u.b == b->u.b;
    case GA_INT:
        return a->u.i == b->u.i;
    case GA_FLOAT:
        return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
    case GA_STR:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0 && a->u.s[a->len] == '\0';
    case GA_ARRAY:
        if (a->len != b->len) {
            return false;
        }
        for (uint32_t i = 0; i < a->len; i++) {
            if (!s_same(&a->u.items[i], &b->u.items[i])) {
                return false;
            }
        }
        return true;
    case GA_MAP:
        if (a->len != b->len) {
            return false;
        }
        for (uint32_t i = 0; i < a->len; i++) {
            const ga_pair_t *p = &a->u.pairs[i], *q = &b->u.pairs[i];
            if (p->key_len != q->key_len || memcmp(p->key, q->key, p->key_len) != 0 ||
                p->key[p->key_len] != '\0' || !s_same(&p->value, &q->value)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

// ---- accepted documents: decoded type and canonical encoding (the round trip) ----

typedef struct {
    const char *in;
    size_t len;
    ga_type_t type;
    const char *out; // ga_json_encode of the decoded value
} accept_case_t;

#define ACCEPT(in, type, out) {in, sizeof(in) - 1, type, out}

static const accept_case_t s_accepted[] = {
    // Scalars and numbers.
    ACCEPT("null", GA_NIL, "null"),
    ACCEPT("true", GA_BOOL, "true"),
    ACCEPT("false", GA_BOOL, "false"),
    ACCEPT("0", GA_INT, "0"),
    ACCEPT("-0", GA_INT, "0"), // jansson: integer 0
    ACCEPT("7", GA_INT, "7"),
    ACCEPT("-123", GA_INT, "-123"),
    ACCEPT("9223372036854775807", GA_INT, "9223372036854775807"),
    ACCEPT("-9223372036854775808", GA_INT, "-9223372036854775808"),
    ACCEPT("1000000000000000000", GA_INT, "1000000000000000000"),
    ACCEPT("-0.0", GA_FLOAT, "-0"),
    ACCEPT("0.0", GA_FLOAT, "0"),
    ACCEPT("10.0", GA_FLOAT, "10"),
    ACCEPT("1E+2", GA_FLOAT, "100"),
    ACCEPT("1e2", GA_FLOAT, "100"),
    ACCEPT("1E2", GA_FLOAT, "100"),
    ACCEPT("1e-2", GA_FLOAT, "0.01"),
    ACCEPT("1E-2", GA_FLOAT, "0.01"),
    ACCEPT("0e0", GA_FLOAT, "0"),
    ACCEPT("-0e-0", GA_FLOAT, "-0"),
    ACCEPT("0.5", GA_FLOAT, "0.5"),
    ACCEPT("-1.5e-3", GA_FLOAT, "-0.0015"),
    ACCEPT("1.5e300", GA_FLOAT, "1.5e+300"),
    ACCEPT("1.7976931348623157e308", GA_FLOAT, "1.7976931348623157e+308"),
    ACCEPT("-1.7976931348623157E+308", GA_FLOAT, "-1.7976931348623157e+308"),
    ACCEPT("9223372036854775808.0", GA_FLOAT, "9.2233720368547758e+18"),
    ACCEPT("5e-324", GA_FLOAT, "4.94065645841247e-324"), // the smallest subnormal
    ACCEPT("1e-400", GA_FLOAT, "0"), // underflow is not an error (jansson: neither)
    ACCEPT("-1e-400", GA_FLOAT, "-0"),
    ACCEPT("0.00000000000000000000000000000000000000000000000000000000000000000000000000000000"
           "00000000000000000000000000000000000000000000000000000000000000000000000000000001",
           GA_FLOAT, "1e-160"), // longer than strtod's stack copy
    ACCEPT("123456789012345678901234567890e-10", GA_FLOAT, "1.2345678901234567e+19"),
    // Strings (escapes in detail below).
    ACCEPT("\"\"", GA_STR, "\"\""),
    ACCEPT("\"\\u00e9\\/\"", GA_STR, "\"\xc3\xa9/\""),
    ACCEPT("\"\\b\\f\"", GA_STR, "\"\\u0008\\u000c\""),
    ACCEPT("\"\x7f\"", GA_STR, "\"\x7f\""), // DEL is not a control character for JSON
    ACCEPT("\"\\ud83d\\ude00\"", GA_STR, "\"\xf0\x9f\x98\x80\""),
    ACCEPT("\"\xef\xbb\xbf\"", GA_STR, "\"\xef\xbb\xbf\""), // a BOM inside a string is text
    // Whitespace: space, tab, CR and LF, anywhere between tokens.
    ACCEPT(" \t\r\n[ 1 , 2 ]\n\r\t ", GA_ARRAY, "[1,2]"),
    ACCEPT("{ \"a\" : [ ] , \"b\" : { } }", GA_MAP, "{\"a\":[],\"b\":{}}"),
    ACCEPT("\n\n1\n\n", GA_INT, "1"),
    ACCEPT("[\t]", GA_ARRAY, "[]"),
    ACCEPT("{\r}", GA_MAP, "{}"),
    // Containers; members keep their input order.
    ACCEPT("[]", GA_ARRAY, "[]"),
    ACCEPT("{}", GA_MAP, "{}"),
    ACCEPT("[[[]]]", GA_ARRAY, "[[[]]]"),
    ACCEPT("[{}]", GA_ARRAY, "[{}]"),
    ACCEPT("{\"\":\"\"}", GA_MAP, "{\"\":\"\"}"),
    ACCEPT("{\"z\":1,\"a\":2,\"m\":3}", GA_MAP, "{\"z\":1,\"a\":2,\"m\":3}"),
    ACCEPT("{\"a\":{\"a\":1},\"b\":{\"a\":2}}", GA_MAP, "{\"a\":{\"a\":1},\"b\":{\"a\":2}}"),
    ACCEPT("{\"a\":1,\"A\":2,\"a \":3,\"\\u0061b\":4}", GA_MAP,
           "{\"a\":1,\"A\":2,\"a \":3,\"ab\":4}"), // close keys that are not duplicates
    ACCEPT("[1,-2,3.5,true,false,null,\"x\",[],{}]", GA_ARRAY,
           "[1,-2,3.5,true,false,null,\"x\",[],{}]"),
    ACCEPT("[\"3\",\"7\",\"api:lobby\",\"api\",{\"request_id\":\"r-7\",\"service\":\"user_service\","
           "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}]",
           GA_ARRAY,
           "[\"3\",\"7\",\"api:lobby\",\"api\",{\"request_id\":\"r-7\",\"service\":\"user_service\","
           "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}]"),
    ACCEPT("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
           "\"k10\":10}",
           GA_MAP,
           "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
           "\"k10\":10}"),
};

static void
test_json_accepts_and_round_trips_a_corpus(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    for (size_t i = 0; i < sizeof s_accepted / sizeof s_accepted[0]; i++) {
        const accept_case_t *c = &s_accepted[i];
        ga_value_t v;
        char err[128] = "";
        ga_err_t rc = s_decode_at_page_end(a, c->in, c->len, &v, err, sizeof err);
        if (rc != GA_OK) {
            fail_msg("case %zu <%s>: refused: %s", i, c->in, err);
        }
        assert_int_equal(v.type, c->type);
        char *text = s_encode(&v);
        if (strcmp(text, c->out) != 0) {
            fail_msg("case %zu <%s>: encodes as <%s>, want <%s>", i, c->in, text, c->out);
        }
        // The canonical text decodes and is a fixed point (but for a float alone, which the
        // writer may print as an integer: "-0" for -0.0 reads back as the integer 0).
        ga_value_t back;
        assert_int_equal(s_decode_exact(a, text, strlen(text), &back, NULL, 0), GA_OK);
        char *again = s_encode(&back);
        if (v.type != GA_FLOAT) {
            assert_string_equal(again, text);
        }
        free(again);
        free(text);
        ga_arena_reset(a);
    }
    ga_arena_destroy(&a);
}

// ---- refused documents ----

typedef struct {
    const char *in;
    size_t len;
    ga_err_t rc;
    const char *reason; // expected in err (a substring, often with the offset)
} reject_case_t;

#define REJECT(in, reason) {in, sizeof(in) - 1, GA_EPROTO, reason}

static const reject_case_t s_refused[] = {
    // Empty input and whitespace rules.
    REJECT("", "empty document at offset 0"),
    REJECT(" \t\r\n", "empty document at offset 4"),
    REJECT("\f1", "unexpected character at offset 0"),
    REJECT("1\f", "unexpected data after the document at offset 1"),
    REJECT("\v1", "unexpected character"),
    REJECT("[1,\f2]", "unexpected character at offset 3"),
    REJECT("\xc2\xa0" "1", "unexpected character at offset 0"),  // NBSP
    REJECT("\xe3\x80\x80" "1", "unexpected character"),          // ideographic space
    REJECT("\xef\xbb\xbf{}", "unexpected character at offset 0"), // BOM
    REJECT("\0", "unexpected character"),
    REJECT(" \0 1", "unexpected character at offset 1"),
    // Trailing garbage, including a NUL after a number or literal (jansson skips that one NUL;
    // we do not: see the randomized test).
    REJECT("[1] x", "unexpected data after the document at offset 4"),
    REJECT("1 2", "unexpected data after the document at offset 2"),
    REJECT("{} {}", "unexpected data after the document"),
    REJECT("[1]]", "unexpected data after the document"),
    REJECT("\"a\"\"b\"", "unexpected data after the document"),
    REJECT("truex", "unexpected data after the document at offset 4"),
    REJECT("nulll", "unexpected data after the document"),
    REJECT("1\0", "unexpected data after the document at offset 1"),
    REJECT("true\0", "unexpected data after the document"),
    REJECT("1.5\0", "unexpected data after the document"),
    REJECT("[1\0]", "expected ',' or ']' at offset 2"),
    REJECT("{\"a\":null\0}", "expected ',' or '}' at offset 9"),
    REJECT("[1]\0", "unexpected data after the document at offset 3"),
    // Structure.
    REJECT("[", "unexpected end of input at offset 1"),
    REJECT("{", "unexpected end of input at offset 1"),
    REJECT("]", "unexpected character at offset 0"),
    REJECT("}", "unexpected character"),
    REJECT(":", "unexpected character"),
    REJECT(",", "unexpected character"),
    REJECT("[1,]", "unexpected character at offset 3"),
    REJECT("[,1]", "unexpected character at offset 1"),
    REJECT("[1 2]", "expected ',' or ']' at offset 3"),
    REJECT("[1,,2]", "unexpected character"),
    REJECT("[1}", "expected ',' or ']'"),
    REJECT("[[1]", "unexpected end of input"),
    REJECT("[1,", "unexpected end of input"),
    REJECT("{\"a\"}", "expected ':' at offset 4"),
    REJECT("{\"a\":}", "unexpected character at offset 5"),
    REJECT("{\"a\" 1}", "expected ':'"),
    REJECT("{\"a\":1,}", "expected a string key at offset 7"),
    REJECT("{,}", "expected a string key at offset 1"),
    REJECT("{1:2}", "expected a string key"),
    REJECT("{a:1}", "expected a string key"),
    REJECT("{'a':1}", "expected a string key"),
    REJECT("['a']", "unexpected character"),
    REJECT("{\"a\":1]", "expected ',' or '}'"),
    REJECT("{\"a\":1 \"b\":2}", "expected ',' or '}'"),
    REJECT("{\"a\":1", "unexpected end of input"),
    REJECT("{\"a\":", "unexpected end of input"),
    REJECT("{\"a\"", "expected ':'"),
    // Literals.
    REJECT("nul", "invalid literal at offset 0"),
    REJECT("tru", "invalid literal"),
    REJECT("fals", "invalid literal"),
    REJECT("True", "unexpected character"),
    REJECT("NULL", "unexpected character"),
    REJECT("nan", "invalid literal"),
    REJECT("undefined", "unexpected character"),
    REJECT("[n]", "invalid literal at offset 1"),
    // Numbers: RFC 8259's grammar exactly.
    REJECT("01", "invalid number (leading zero) at offset 0"),
    REJECT("-01", "invalid number (leading zero) at offset 1"),
    REJECT("00", "leading zero"),
    REJECT("[01]", "leading zero"),
    REJECT("{\"a\":01}", "leading zero"),
    REJECT("01.5", "leading zero"),
    REJECT("+1", "unexpected character"),
    REJECT("+0", "unexpected character"),
    REJECT(".5", "unexpected character"),
    REJECT("-.5", "invalid number at offset 1"),
    REJECT("1.", "digit expected after '.') at offset 2"),
    REJECT("-1.", "digit expected after '.'"),
    REJECT("[1.]", "digit expected after '.'"),
    REJECT("1.e5", "digit expected after '.'"),
    REJECT("1e", "digit expected in exponent) at offset 2"),
    REJECT("1E", "digit expected in exponent"),
    REJECT("1e+", "digit expected in exponent"),
    REJECT("1e-", "digit expected in exponent"),
    REJECT("1e+-1", "digit expected in exponent"),
    REJECT("-", "invalid number at offset 1"),
    REJECT("--1", "invalid number"),
    REJECT("- 1", "invalid number"),
    REJECT("0x10", "unexpected data after the document at offset 1"),
    REJECT("0X1A", "unexpected data after the document"),
    REJECT("1.5.3", "unexpected data after the document"),
    REJECT("1e5.5", "unexpected data after the document"),
    REJECT("1e5e5", "unexpected data after the document"),
    REJECT("1_000", "unexpected data after the document"),
    REJECT("NaN", "unexpected character"),
    REJECT("Infinity", "unexpected character"),
    REJECT("-Infinity", "invalid number"),
    REJECT("inf", "unexpected character"),
    REJECT("\xd9\xa1", "unexpected character"), // ARABIC-INDIC DIGIT ONE
    REJECT("9223372036854775808", "too big integer at offset 0"),
    REJECT("-9223372036854775809", "too big negative integer at offset 0"),
    REJECT("[18446744073709551615]", "too big integer at offset 1"),
    REJECT("18446744073709551616", "too big integer"), // 2^64: wraps a naive accumulator to 0
    REJECT("99999999999999999999", "too big integer"),
    REJECT("-99999999999999999999", "too big negative integer"),
    REJECT("100000000000000000000", "too big integer"),
    REJECT("1e309", "real number overflow at offset 0"),
    REJECT("-1e309", "real number overflow"),
    REJECT("1.8e308", "real number overflow"),
    REJECT("1E+400", "real number overflow"),
    REJECT("[923456789e300]", "real number overflow at offset 1"),
    // Strings: termination and escapes.
    REJECT("\"", "unterminated string at offset 0"),
    REJECT("\"abc", "unterminated string at offset 0"),
    REJECT("[\"abc]", "unterminated string at offset 1"),
    REJECT("\"\\", "unterminated string"),
    REJECT("\"\\\"", "unterminated string"),
    REJECT("\"\\x41\"", "invalid escape at offset 1"),
    REJECT("\"\\'\"", "invalid escape"),
    REJECT("\"\\a\"", "invalid escape"),
    REJECT("\"\\0\"", "invalid escape"),
    REJECT("\"\\U0041\"", "invalid escape"),
    REJECT("\"\\ \"", "invalid escape"),
    REJECT("\"\\u\"", "invalid \\u escape at offset 1"),
    REJECT("\"\\u12\"", "invalid \\u escape"),
    REJECT("\"\\u123\"", "invalid \\u escape"),
    REJECT("\"\\u12g4\"", "invalid \\u escape"),
    REJECT("\"\\u 123\"", "invalid \\u escape"),
    REJECT("\"\\u-123\"", "invalid \\u escape"),
    REJECT("\"\\u0041", "unterminated string"),
    REJECT("\"\\u004", "invalid \\u escape"),
    REJECT("\"\\u0000\"", "\\u0000 is not allowed at offset 1"),
    REJECT("\"a\\u0000b\"", "\\u0000 is not allowed"),
    REJECT("{\"\\u0000\":1}", "\\u0000 is not allowed"),
    REJECT("{\"a\\u0000\":1}", "\\u0000 is not allowed"),
    // Surrogates in \u escapes.
    REJECT("\"\\ud800\"", "lone high surrogate at offset 1"),
    REJECT("\"\\uD800\"", "lone high surrogate"),
    REJECT("\"\\udbff\"", "lone high surrogate"),
    REJECT("\"\\ud800x\"", "lone high surrogate"),
    REJECT("\"\\ud800\\n\"", "lone high surrogate"),
    REJECT("\"\\ud800\\", "lone high surrogate"),
    REJECT("\"\\ud800\\u0041\"", "high surrogate not followed by a low one at offset 1"),
    REJECT("\"\\ud800\\ud800\"", "high surrogate not followed by a low one"),
    REJECT("\"\\ud800\\ue000\"", "high surrogate not followed by a low one"),
    REJECT("\"\\ud800\\udc0\"", "invalid \\u escape at offset 7"),
    REJECT("\"\\ud800\\uzzzz\"", "invalid \\u escape"),
    REJECT("\"\\ud800\\u\"", "invalid \\u escape"),
    REJECT("\"\\udc00\"", "lone low surrogate at offset 1"),
    REJECT("\"\\uDFFF\"", "lone low surrogate"),
    REJECT("\"\\udc00\\ud800\"", "lone low surrogate"), // a pair in the wrong order
    REJECT("\"a\\ude00\\ud83d\"", "lone low surrogate at offset 2"),
    REJECT("{\"\\ud800\":1}", "lone high surrogate"),
    // Strings: UTF-8.
    REJECT("\"\xc3\x28\"", "invalid UTF-8 at offset 1"),
    REJECT("\"\xc0\xaf\"", "invalid UTF-8"),         // overlong '/'
    REJECT("\"\xc1\xbf\"", "invalid UTF-8"),         // overlong
    REJECT("\"\xe0\x80\xaf\"", "invalid UTF-8"),     // overlong '/', 3 bytes
    REJECT("\"\xe0\x9f\xbf\"", "invalid UTF-8"),     // overlong U+07FF
    REJECT("\"\xf0\x80\x80\xaf\"", "invalid UTF-8"), // overlong '/', 4 bytes
    REJECT("\"\xf0\x8f\xbf\xbf\"", "invalid UTF-8"), // overlong U+FFFF
    REJECT("\"\xc3", "invalid UTF-8 at offset 1"),   // sequence cut by the end of input
    REJECT("\"\xe2\x82", "invalid UTF-8"),
    REJECT("\"\xf0\x9f\x98", "invalid UTF-8"),
    REJECT("\"\xc3\"", "invalid UTF-8"), // cut by the closing quote
    REJECT("\"\xe2\x82\"", "invalid UTF-8"),
    REJECT("\"\xf0\x9f\x98\"", "invalid UTF-8"),
    REJECT("\"\xe2\x82x\"", "invalid UTF-8"),
    REJECT("\"\xff\"", "invalid UTF-8"),
    REJECT("\"\xfe\"", "invalid UTF-8"),
    REJECT("\"a\x80\"", "invalid UTF-8 at offset 2"), // lone continuation byte
    REJECT("\"\xbf\"", "invalid UTF-8"),
    REJECT("\"\xf8\x88\x80\x80\x80\"", "invalid UTF-8"),     // 5-byte form
    REJECT("\"\xed\xa0\x80\"", "invalid UTF-8"),             // U+D800 encoded
    REJECT("\"\xed\xbf\xbf\"", "invalid UTF-8"),             // U+DFFF encoded
    REJECT("\"\xed\xa0\xbd\xed\xb8\x80\"", "invalid UTF-8"), // CESU-8 pair
    REJECT("\"\xf4\x90\x80\x80\"", "invalid UTF-8"),         // U+110000
    REJECT("\"\xf5\x80\x80\x80\"", "invalid UTF-8"),
    REJECT("{\"\xff\":1}", "invalid UTF-8 at offset 2"),
    REJECT("[\xff]", "unexpected character at offset 1"),
    REJECT("\xc3\xa9", "unexpected character"),
    // Control characters (all 32 are checked in a loop below).
    REJECT("\"a\x01\"", "control character in string at offset 2"),
    REJECT("[\"a\nb\"]", "control character in string at offset 3"),
    REJECT("\"\t\"", "control character in string"),
    REJECT("\"\0\"", "control character in string"),
    REJECT("{\"a\x1f\":1}", "control character in string"),
    // Duplicate keys, compared after unescaping.
    REJECT("{\"a\":1,\"a\":2}", "duplicate object key at offset 7"),
    REJECT("{\"a\":1,\"b\":2,\"a\":3}", "duplicate object key at offset 13"),
    REJECT("{\"a\":1,\"\\u0061\":2}", "duplicate object key"),
    REJECT("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate object key"),
    REJECT("{\"\":1,\"\":2}", "duplicate object key"),
    REJECT("{\"x\":{\"a\":1,\"a\":1}}", "duplicate object key at offset 12"),
    REJECT("[{\"a\":1,\"a\":1}]", "duplicate object key"),
    REJECT("{\"a\":1,\"a\":[}", "duplicate object key"), // found first: reported first
    REJECT("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
           "\"k1\":0}",
           "duplicate object key at offset 64"), // past the linear scan: the hash table
    REJECT("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k8\":9}",
           "duplicate object key at offset 57"), // the 9th key, the first one hashed
    // Nesting: the first problem in input order decides the code.
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 33, GA_ETOOBIG, "nesting deeper than 32"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{\"a\":1}]", 40, GA_ETOOBIG, "nesting deeper than 32"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1,]", 35, GA_EPROTO, "unexpected character at offset 34"},
};

static void
test_json_refuses_each_rule_with_a_reason_and_offset(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    for (size_t i = 0; i < sizeof s_refused / sizeof s_refused[0]; i++) {
        const reject_case_t *c = &s_refused[i];
        ga_value_t v = ga_int(1);
        char err[128] = "";
        ga_err_t rc = s_decode_at_page_end(a, c->in, c->len, &v, err, sizeof err);
        if (rc != c->rc || strstr(err, c->reason) == NULL) {
            fail_msg("case %zu <%.*s>: rc %d err <%s>, want rc %d err <%s>", i, (int) c->len,
                     c->in, rc, err, c->rc, c->reason);
        }
        assert_int_equal(v.type, GA_NIL); // *out is nil on error
        if (rc == GA_EPROTO) {
            assert_non_null(strstr(err, " at offset "));
        }
        // Without an error buffer, or with a tiny one, the result is the same.
        assert_int_equal(s_decode_exact(a, c->in, c->len, &v, NULL, 0), c->rc);
        char tiny[4] = "xyz";
        assert_int_equal(s_decode_exact(a, c->in, c->len, &v, tiny, sizeof tiny), c->rc);
        assert_int_equal(strlen(tiny), 3);
        assert_int_equal(s_decode_exact(a, c->in, c->len, &v, tiny, 0), c->rc);
        ga_arena_reset(a);
    }
    ga_arena_destroy(&a);
}

// ---- strings: every escape, surrogate pairs, control characters ----

typedef struct {
    const char *in; // a JSON string literal, quotes included
    const char *want;
    size_t want_len;
} string_case_t;

#define STRING(in, want) {in, want, sizeof(want) - 1}

static const string_case_t s_strings[] = {
    STRING("\"\\\"\"", "\""),
    STRING("\"\\\\\"", "\\"),
    STRING("\"\\/\"", "/"),
    STRING("\"\\b\"", "\b"),
    STRING("\"\\f\"", "\f"),
    STRING("\"\\n\"", "\n"),
    STRING("\"\\r\"", "\r"),
    STRING("\"\\t\"", "\t"),
    STRING("\"\\u0041\"", "A"),
    STRING("\"\\u0001\"", "\x01"),
    STRING("\"\\u001f\"", "\x1f"),
    STRING("\"\\u007f\"", "\x7f"),
    STRING("\"\\u0080\"", "\xc2\x80"),
    STRING("\"\\u00e9\"", "\xc3\xa9"),
    STRING("\"\\u00C9\"", "\xc3\x89"),
    STRING("\"\\u07ff\"", "\xdf\xbf"),
    STRING("\"\\u0800\"", "\xe0\xa0\x80"),
    STRING("\"\\u20AC\"", "\xe2\x82\xac"),
    STRING("\"\\ud7ff\"", "\xed\x9f\xbf"),
    STRING("\"\\ue000\"", "\xee\x80\x80"),
    STRING("\"\\uFFFF\"", "\xef\xbf\xbf"),
    STRING("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80"), // U+10000
    STRING("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"), // U+1F600
    STRING("\"\\uD834\\uDd1E\"", "\xf0\x9d\x84\x9e"), // U+1D11E, mixed case
    STRING("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"), // U+10FFFF
    STRING("\"a\\nb\\u00e9c\\ud83d\\ude00d\\\\\"", "a\nb\xc3\xa9" "c\xf0\x9f\x98\x80" "d\\"),
    STRING("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t"),
    STRING("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"",
           "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"),
    STRING("\"\xef\xbf\xbf\xee\x80\x80\xed\x9f\xbf\"", "\xef\xbf\xbf\xee\x80\x80\xed\x9f\xbf"),
    STRING("\"\x7f\"", "\x7f"),
    STRING("\"\"", ""),
};

static void
test_json_decodes_every_escape_and_surrogate_pair(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    for (size_t i = 0; i < sizeof s_strings / sizeof s_strings[0]; i++) {
        const string_case_t *c = &s_strings[i];
        ga_value_t v;
        char err[128] = "";
        if (s_decode_at_page_end(a, c->in, strlen(c->in), &v, err, sizeof err) != GA_OK) {
            fail_msg("case %zu <%s>: %s", i, c->in, err);
        }
        assert_int_equal(v.type, GA_STR);
        assert_int_equal(v.len, c->want_len);
        assert_memory_equal(v.u.s, c->want, c->want_len);
        assert_int_equal(v.u.s[v.len], '\0');
        // The same text as an object key, and as a string in an array.
        char doc[256];
        int n = snprintf(doc, sizeof doc, "{%s:[%s]}", c->in, c->in);
        assert_int_equal(s_decode_exact(a, doc, (size_t) n, &v, err, sizeof err), GA_OK);
        assert_int_equal(v.u.pairs[0].key_len, c->want_len);
        assert_memory_equal(v.u.pairs[0].key, c->want, c->want_len);
        assert_int_equal(v.u.pairs[0].key[c->want_len], '\0');
        assert_int_equal(v.u.pairs[0].value.u.items[0].len, c->want_len);
        ga_arena_reset(a);
    }
    // A long string with escapes spread through it, bigger than any stack buffer.
    char *doc = malloc(70000);
    char *want = malloc(70000);
    assert_non_null(doc);
    assert_non_null(want);
    size_t n = 0, w = 0;
    doc[n++] = '"';
    for (int i = 0; i < 3000; i++) { // 66 kB of input
        memcpy(doc + n, "ab\\n\\u00e9\\ud83d\\ude00", 22);
        n += 22;
        memcpy(want + w, "ab\n\xc3\xa9\xf0\x9f\x98\x80", 9);
        w += 9;
    }
    doc[n++] = '"';
    ga_value_t v;
    assert_int_equal(s_decode_exact(a, doc, n, &v, NULL, 0), GA_OK);
    assert_int_equal(v.len, w);
    assert_memory_equal(v.u.s, want, w);
    assert_int_equal(v.u.s[w], '\0');
    free(doc);
    free(want);
    ga_arena_destroy(&a);
}

static void
test_json_refuses_every_raw_control_character(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    for (int c = 0; c < 0x20; c++) {
        char text[] = "[\"a?b\",{\"k\":1}]";
        char key[] = "{\"k?\":1}";
        text[3] = (char) c;
        key[3] = (char) c;
        ga_value_t v;
        char err[128];
        assert_int_equal(s_decode_exact(a, text, sizeof text - 1, &v, err, sizeof err),
                         GA_EPROTO);
        assert_string_equal(err, "control character in string at offset 3");
        assert_int_equal(s_decode_exact(a, key, sizeof key - 1, &v, err, sizeof err), GA_EPROTO);
        assert_string_equal(err, "control character in string at offset 3");
        // Escaped, each one is fine (but \u0000).
        char esc[16];
        int n = snprintf(esc, sizeof esc, "\"\\u%04x\"", c);
        assert_int_equal(s_decode_exact(a, esc, (size_t) n, &v, NULL, 0),
                         c == 0 ? GA_EPROTO : GA_OK);
        if (c) {
            assert_int_equal(v.len, 1);
            assert_int_equal(v.u.s[0], c);
        }
    }
    ga_arena_destroy(&a);
}

// ---- limits ----

static char *
s_nested(int depth, const char *open, const char *inner, const char *close, size_t *len)
{
    size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
    char *s = malloc((size_t) depth * (lo + lc) + li + 1);
    assert_non_null(s);
    size_t n = 0;
    for (int i = 0; i < depth; i++, n += lo) {
        memcpy(s + n, open, lo);
    }
    memcpy(s + n, inner, li);
    n += li;
    for (int i = 0; i < depth; i++, n += lc) {
        memcpy(s + n, close, lc);
    }
    s[n] = '\0';
    *len = n;
    return s;
}

static void
test_json_caps_nesting_at_32_without_deep_recursion(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    const char *forms[][3] = {{"[", "1", "]"}, {"{\"a\":", "1", "}"}, {"[{\"a\":", "1", "}]"}};
    for (size_t f = 0; f < 3; f++) {
        int per = f == 2 ? 2 : 1; // containers per repetition
        for (int depth = 30 / per; depth <= 34 / per; depth++) {
            size_t len;
            char *s = s_nested(depth, forms[f][0], forms[f][1], forms[f][2], &len);
            ga_value_t v;
            char err[128] = "";
            ga_err_t rc = s_decode_exact(a, s, len, &v, err, sizeof err);
            if (depth * per <= GA_JSON_MAX_DEPTH) {
                assert_int_equal(rc, GA_OK);
                char *back = s_encode(&v);
                assert_string_equal(back, s);
                free(back);
            } else {
                assert_int_equal(rc, GA_ETOOBIG);
                assert_string_equal(err, "nesting deeper than 32");
                assert_int_equal(v.type, GA_NIL);
            }
            free(s);
            ga_arena_reset(a);
        }
    }
    // 1 MB of '[' (or of '{"a":'): refused at the 33rd level, at once, recursion bounded.
    const char *units[] = {"[", "{\"a\":", "[1,"};
    for (size_t u = 0; u < 3; u++) {
        size_t ul = strlen(units[u]);
        size_t len = (1 << 20) / ul * ul;
        char *s = malloc(len);
        assert_non_null(s);
        for (size_t i = 0; i < len; i += ul) {
            memcpy(s + i, units[u], ul);
        }
        double t0 = s_now();
        ga_value_t v;
        assert_int_equal(s_decode_exact(a, s, len, &v, NULL, 0), GA_ETOOBIG);
        assert_true(s_now() - t0 < 0.5);
        free(s);
    }
    ga_arena_destroy(&a);
}

// An object of n keys "k0".."k<n-1>" (values i), plus `extra` appended as its last member.
static char *
s_big_object(int n, const char *extra, size_t *len)
{
    size_t cap = (size_t) n * 24 + 64;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = 0;
    s[o++] = '{';
    for (int i = 0; i < n; i++) {
        o += (size_t) snprintf(s + o, cap - o, "%s\"k%d\":%d", i ? "," : "", i, i);
    }
    o += (size_t) snprintf(s + o, cap - o, "%s}", extra);
    *len = o;
    return s;
}

static void
test_json_refuses_duplicates_in_large_objects_in_linear_time(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(1 << 16);
    size_t len;
    char *s = s_big_object(10000, "", &len);
    ga_value_t v;
    char err[128] = "";
    assert_int_equal(s_decode_exact(a, s, len, &v, err, sizeof err), GA_OK);
    assert_int_equal(v.type, GA_MAP);
    assert_int_equal(v.len, 10000);
    for (uint32_t i = 0; i < v.len; i++) { // input order kept
        char key[16];
        snprintf(key, sizeof key, "k%u", i);
        assert_string_equal(v.u.pairs[i].key, key);
        assert_int_equal(v.u.pairs[i].value.u.i, i);
    }
    free(s);
    ga_arena_reset(a);
    // One duplicate at the end (of the first, a middle and the last key) is refused, there.
    const char *dups[] = {",\"k0\":0", ",\"k5000\":0", ",\"k9999\":0", ",\"x\":1,\"x\":2"};
    for (size_t i = 0; i < 4; i++) {
        s = s_big_object(10000, dups[i], &len);
        assert_int_equal(s_decode_exact(a, s, len, &v, err, sizeof err), GA_EPROTO);
        char want[64];
        const char *at = strrchr(s, ',') + 1;
        snprintf(want, sizeof want, "duplicate object key at offset %zu", (size_t) (at - s));
        assert_string_equal(err, want);
        free(s);
        ga_arena_reset(a);
    }
    // A 1 MB frame's worth of keys (about 100k) decodes quickly: not quadratic.
    s = s_big_object(100000, "", &len);
    double t0 = s_now();
    assert_int_equal(s_decode_exact(a, s, len, &v, NULL, 0), GA_OK);
    double took = s_now() - t0;
    assert_int_equal(v.len, 100000);
    assert_true(took < 3.0); // ~0.05 s with ASan; a quadratic check takes minutes
    free(s);
    ga_arena_destroy(&a);
}

static void
test_json_large_documents_round_trip(void **state)
{
    (void) state;
    // Enough items and pairs to move the scratch stack from the C stack into the arena, with
    // containers open at several levels while it moves.
    ga_buf_t b;
    ga_buf_init(&b);
    ga_buf_append_str(&b, "{\"list\":[");
    for (int i = 0; i < 300; i++) {
        char item[96];
        snprintf(item, sizeof item, "%s{\"id\":%d,\"name\":\"n%d\",\"tags\":[%d,%d.5,\"t\"]}",
                 i ? "," : "", i, i, i, i);
        ga_buf_append_str(&b, item);
    }
    ga_buf_append_str(&b, "],\"after\":[");
    for (int i = 0; i < 2000; i++) {
        char item[16];
        snprintf(item, sizeof item, "%s%d", i ? "," : "", i);
        ga_buf_append_str(&b, item);
    }
    ga_buf_append_str(&b, "],\"end\":true}");
    ga_buf_append_char(&b, '\0');
    const char *text = (const char *) b.data;
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    assert_int_equal(s_decode_at_page_end(a, text, strlen(text), &v, NULL, 0), GA_OK);
    assert_int_equal(ga_map_get(&v, "list")->len, 300);
    assert_int_equal(ga_map_get(&v, "after")->len, 2000);
    char *back = s_encode(&v);
    assert_string_equal(back, text);
    free(back);
    ga_arena_destroy(&a);
    ga_buf_fini(&b);
}

static void
test_json_reads_only_len_bytes(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    // A prefix of a longer buffer decodes as that prefix alone.
    static const struct {
        const char *buf;
        size_t len;
        ga_err_t rc;
        const char *out;
    } cases[] = {
        {"12345", 3, GA_OK, "123"},
        {"[1,2]garbage", 5, GA_OK, "[1,2]"},
        {"truex", 4, GA_OK, "true"},
        {"nullx", 3, GA_EPROTO, NULL},
        {"1.5e3", 3, GA_OK, "1.5"},
        {"1.5e3", 2, GA_EPROTO, NULL},
        {"1.5e3", 4, GA_EPROTO, NULL},
        {"-12", 1, GA_EPROTO, NULL},
        {"\"abc\"", 4, GA_EPROTO, NULL},
        {"\"\\u00e9\"", 6, GA_EPROTO, NULL},
        {"\"\\ud83d\\ude00\"", 12, GA_EPROTO, NULL},
        {"\"\xe2\x82\xac\"", 3, GA_EPROTO, NULL},
        {"{\"a\":1} ", 7, GA_OK, "{\"a\":1}"},
        {"[1] x", 3, GA_OK, "[1]"},
        {"9223372036854775807", 18, GA_OK, "922337203685477580"},
        {"", 0, GA_EPROTO, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ga_value_t v;
        char err[128] = "";
        // From inside the longer buffer, then with the prefix alone against an unmapped page.
        assert_int_equal(ga_json_decode(cases[i].buf, cases[i].len, a, &v, err, sizeof err),
                         cases[i].rc);
        ga_value_t w;
        assert_int_equal(s_decode_at_page_end(a, cases[i].buf, cases[i].len, &w, NULL, 0),
                         cases[i].rc);
        if (cases[i].rc == GA_OK) {
            char *text = s_encode(&v);
            assert_string_equal(text, cases[i].out);
            free(text);
            assert_true(s_same(&v, &w));
        }
        ga_arena_reset(a);
    }
    ga_arena_destroy(&a);
}

// ---- randomized comparison with jansson ----

// The old decoder's conversion: jansson's tree as a ga_value_t. False when deeper than the cap.
static bool
s_from_jansson(json_t *j, ga_arena_t *a, ga_value_t *out, int depth)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = ga_nil();
        return true;
    case JSON_TRUE:
    case JSON_FALSE:
        *out = ga_bool(json_is_true(j));
        return true;
    case JSON_INTEGER:
        *out = ga_int((int64_t) json_integer_value(j));
        return true;
    case JSON_REAL:
        *out = ga_float(json_real_value(j));
        return true;
    case JSON_STRING:
        *out = ga_str_dup(a, json_string_value(j), json_string_length(j));
        return true;
    case JSON_ARRAY: {
        if (depth >= GA_JSON_MAX_DEPTH) {
            return false;
        }
        size_t n = json_array_size(j);
        *out = ga_array(a, (uint32_t) n);
        for (size_t i = 0; i < n; i++) {
            if (!s_from_jansson(json_array_get(j, i), a, &out->u.items[i], depth + 1)) {
                return false;
            }
        }
        out->len = (uint32_t) n;
        return true;
    }
    case JSON_OBJECT: {
        if (depth >= GA_JSON_MAX_DEPTH) {
            return false;
        }
        *out = ga_map(a, (uint32_t) json_object_size(j));
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            ga_pair_t *p = &out->u.pairs[out->len++];
            p->key = ga_arena_strdup(a, key);
            p->key_len = (uint32_t) strlen(key);
            if (!s_from_jansson(val, a, &p->value, depth + 1)) {
                return false;
            }
        }
        return true;
    }
    }
    return false;
}

// jansson skips one NUL byte right after a number or a literal (its lexer's unget of a NUL
// does not stick), so it accepts "1\0" and "[true\0]"; RFC 8259 does not, and neither do we.
// This removes such NULs, to check that they are the only disagreement.
static size_t
s_strip_jansson_nuls(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char prev = i ? (unsigned char) in[i - 1] : 0;
        bool after_token = (prev >= '0' && prev <= '9') || (prev >= 'a' && prev <= 'z') ||
                           (prev >= 'A' && prev <= 'Z');
        if (in[i] == '\0' && after_token) {
            continue;
        }
        out[o++] = in[i];
    }
    return o;
}

// Every byte value at every position of strings of 1 to 24 bytes (across the scanner's 8-byte
// words), as a value and as a key: the same verdict and bytes as jansson.
static void
test_json_agrees_with_jansson_on_every_byte_at_every_position(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    int accepted = 0;
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int byte = 0; byte < 256; byte++) {
                char doc[64];
                size_t n = 0;
                doc[n++] = '{';
                for (int part = 0; part < 2; part++) { // the key, then the value
                    doc[n++] = '"';
                    memset(doc + n, 'a' + part, len);
                    doc[n + at] = (char) byte;
                    n += len;
                    doc[n++] = '"';
                    doc[n++] = part ? '}' : ':';
                }
                ga_value_t v;
                ga_err_t rc = s_decode_exact(a, doc, n, &v, NULL, 0);
                json_t *j = json_loadb(doc, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
                if ((rc == GA_OK) != (j != NULL)) {
                    fail_msg("byte 0x%02x at %zu of %zu: rc %d, jansson %s", byte, at, len, rc,
                             j ? "accepts" : "refuses");
                }
                if (j) {
                    ga_value_t want;
                    assert_true(s_from_jansson(j, a, &want, 0));
                    assert_true(s_same(&v, &want));
                    json_decref(j);
                    accepted++;
                }
                ga_arena_reset(a);
            }
        }
    }
    assert_int_equal(accepted, 300 * (95 - 2) + 300); // printable ASCII but '"' and '\\'; DEL
    ga_arena_destroy(&a);
}

static const char *const s_seeds[] = {
    "[\"3\",\"7\",\"api:lobby\",\"api\",{\"request_id\":\"r-7\",\"service\":\"user_service\","
    "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}]",
    "{\"a\":[1,-2,3.5,true,false,null],\"b\":{\"c\":\"d\\u00e9\"},\"e\":\"\"}",
    "[0,-0,1e5,1E+2,-1.5e-3,0.25,9223372036854775807,-9223372036854775808,1e308,123.456e-7]",
    "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\",\"h\xc3\xa9 \xe2\x82\xac "
    "\xf0\x9f\x98\x80\"]",
    "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,"
    "\"k11\":{\"k1\":[]}}",
    " { \"x\" : [ 1 , 2 , { \"y\" : null } ] ,\n\t\"z\" : \"w\" } \r\n",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":[true]}}}}}}}}}}",
    "\"plain string\"",
    "12345",
    "[true,false,null,\"\",[],{}]",
};

static void
test_json_agrees_with_jansson_on_random_mutations(void **state)
{
    (void) state;
    static const char interesting[] = "{}[]:,\"\\/ \t\r\n\f0123456789-+.eEtrufalsnubdD8C"
                                      "\x00\x01\x1f\x7f\x80\xbf\xc0\xc3\xe2\xed\xf0\xf4\xf5\xff";
    uint64_t seed = 0x6a736f6e2d6f7261ULL; // fixed: failures reproduce
    ga_arena_t *a = ga_arena_new(4096);
    size_t nseeds = sizeof s_seeds / sizeof s_seeds[0];
    int accepted = 0, refused = 0, too_deep = 0, nul_quirk = 0;
    enum { RUNS = 20000, MAX = 1024 };
    for (int run = 0; run < RUNS; run++) {
        char doc[MAX];
        const char *src = s_seeds[test_rand(&seed) % nseeds];
        size_t n = strlen(src);
        memcpy(doc, src, n);
        int mutations = 1 + (int) (test_rand(&seed) % 3);
        for (int m = 0; m < mutations; m++) {
            size_t at = n ? (size_t) (test_rand(&seed) % n) : 0;
            unsigned char byte = test_rand(&seed) % 2
                                     ? (unsigned char) interesting[test_rand(&seed) %
                                                                   (sizeof interesting - 1)]
                                     : (unsigned char) test_rand(&seed);
            switch (test_rand(&seed) % 6) {
            case 0: // replace
                if (n) {
                    doc[at] = (char) byte;
                }
                break;
            case 1: // insert
                memmove(doc + at + 1, doc + at, n - at);
                doc[at] = (char) byte;
                n++;
                break;
            case 2: // delete
                if (n) {
                    memmove(doc + at, doc + at + 1, n - at - 1);
                    n--;
                }
                break;
            case 3: { // copy a short range elsewhere (duplicate keys, deeper nesting)
                size_t from = n ? (size_t) (test_rand(&seed) % n) : 0;
                size_t k = 1 + (size_t) (test_rand(&seed) % 12);
                if (from + k > n) {
                    k = n - from;
                }
                if (n + k <= MAX / 2) {
                    char tmp[16];
                    memcpy(tmp, doc + from, k);
                    memmove(doc + at + k, doc + at, n - at);
                    memcpy(doc + at, tmp, k);
                    n += k;
                }
                break;
            }
            case 4: // truncate
                n = at;
                break;
            default: { // swap
                size_t other = n ? (size_t) (test_rand(&seed) % n) : 0;
                if (n) {
                    char t = doc[at];
                    doc[at] = doc[other];
                    doc[other] = t;
                }
                break;
            }
            }
        }
        ga_value_t v;
        char err[128] = "";
        ga_err_t rc = s_decode_exact(a, doc, n, &v, err, sizeof err);
        json_error_t jerr;
        json_t *j = json_loadb(doc, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL) {
            // jansson refuses: so do we, with a reason.
            if (rc == GA_OK) {
                fail_msg("run %d: we accept what jansson refuses (%s): <%.*s>", run, jerr.text,
                         (int) n, doc);
            }
            assert_true(rc == GA_EPROTO || rc == GA_ETOOBIG);
            assert_int_equal(v.type, GA_NIL);
            if (rc == GA_EPROTO) {
                const char *off = strstr(err, " at offset ");
                assert_non_null(off);
                assert_true(strtoul(off + 11, NULL, 10) <= n);
            } else {
                too_deep++;
            }
            refused++;
            continue;
        }
        ga_value_t want;
        bool fits = s_from_jansson(j, a, &want, 0);
        json_decref(j);
        char stripped[MAX];
        size_t sn = s_strip_jansson_nuls(doc, n, stripped);
        if (sn != n) {
            // The NUL quirk: we refuse; without those NULs we agree.
            assert_int_not_equal(rc, GA_OK);
            rc = s_decode_exact(a, stripped, sn, &v, err, sizeof err);
            nul_quirk++;
        }
        if (!fits) {
            assert_int_equal(rc, GA_ETOOBIG);
            too_deep++;
            continue;
        }
        if (rc != GA_OK || !s_same(&v, &want)) {
            fail_msg("run %d: rc %d (%s) differs from jansson on <%.*s>", run, rc, err, (int) n,
                     doc);
        }
        accepted++;
        ga_arena_reset(a);
    }
    print_message("%d mutations: %d accepted, %d refused, %d too deep, %d with jansson's NUL "
                  "quirk\n",
                  RUNS, accepted, refused, too_deep, nul_quirk);
    // The mutations reach both outcomes and the depth limit often enough to mean something.
    assert_true(accepted > RUNS / 20);
    assert_true(refused > RUNS / 5);
    assert_true(too_deep > 10);
    ga_arena_destroy(&a);
}

// The writer's string escaping, byte by byte as it was before it scanned eight bytes at a time:
// the reference for test_json_writer_escapes_at_every_offset.
static void
s_reference_str(ga_buf_t *out, const unsigned char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    ga_buf_append_char(out, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ga_buf_append_char(out, (char) c);
            i++;
            continue;
        }
        // A valid UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
        size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4                             ? 4
                                                                         : 0;
        bool ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) {
            ok = (p[i + k] & 0xc0) == 0x80;
        }
        if (ok && n == 3) {
            ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
        }
        if (ok && n == 4) {
            ok = !(c == 0xf0 && p[i + 1] < 0x90) && !(c == 0xf4 && p[i + 1] >= 0x90);
        }
        if (ok) {
            ga_buf_append(out, p + i, n);
            i += n;
            continue;
        }
        char esc[7] = {0};
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", c);
        } else if (c == '\n') {
            snprintf(esc, sizeof esc, "\\n");
        } else if (c == '\r') {
            snprintf(esc, sizeof esc, "\\r");
        } else if (c == '\t') {
            snprintf(esc, sizeof esc, "\\t");
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            snprintf(esc, sizeof esc, "\\ufffd");
        }
        ga_buf_append_str(out, esc);
        i++;
    }
    ga_buf_append_char(out, '"');
}

// Every byte that needs escaping or starts a UTF-8 sequence (valid or not), at every offset of
// strings of 0 to 40 bytes (the writer scans eight bytes at a time, then byte by byte), and
// random strings: the same text as the byte-by-byte reference.
static void
test_json_writer_escapes_at_every_offset(void **state)
{
    (void) state;
    static const char *const specials[] = {"\"", "\\", "\n", "\r", "\t", "\x01", "\x1f", "\x7f",
                                           "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                           "\xff", "\xc3", "\xed\xa0\x80", "\x80"};
    unsigned char text[64];
    ga_buf_t got, want;
    ga_buf_init(&got);
    ga_buf_init(&want);
    for (size_t len = 0; len <= 40; len++) {
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
                memset(text, 'a', sizeof text);
                size_t n = strlen(specials[k]);
                size_t total = len + n;
                memcpy(text + at, specials[k], n);
                ga_buf_reset(&got);
                ga_buf_reset(&want);
                ga_json_encode_str(&got, (const char *) text, total);
                s_reference_str(&want, text, total);
                assert_int_equal(got.len, want.len);
                assert_memory_equal(got.data, want.data, want.len);
            }
        }
    }
    uint64_t seed = 0x243f6a8885a308d3u;
    for (int round = 0; round < 20000; round++) {
        size_t len = test_rand(&seed) % sizeof text;
        for (size_t i = 0; i < len; i++) {
            uint64_t r = test_rand(&seed);
            // Mostly plain ASCII, so that runs of eight plain bytes occur.
            text[i] = (unsigned char) (r % 4 ? 0x20 + (r >> 8) % 0x5f : r >> 8);
        }
        ga_buf_reset(&got);
        ga_buf_reset(&want);
        ga_json_encode_str(&got, (const char *) text, len);
        s_reference_str(&want, text, len);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);
    }
    ga_buf_fini(&got);
    ga_buf_fini(&want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_decodes_values_and_round_trips),
        cmocka_unit_test(test_json_refuses_what_is_not_strict_json),
        cmocka_unit_test(test_json_writer_escapes_and_repairs),
        cmocka_unit_test(test_json_writer_escapes_at_every_offset),
        cmocka_unit_test(test_json_writer_formats_numbers),
        cmocka_unit_test(test_json_accepts_and_round_trips_a_corpus),
        cmocka_unit_test(test_json_refuses_each_rule_with_a_reason_and_offset),
        cmocka_unit_test(test_json_decodes_every_escape_and_surrogate_pair),
        cmocka_unit_test(test_json_refuses_every_raw_control_character),
        cmocka_unit_test(test_json_caps_nesting_at_32_without_deep_recursion),
        cmocka_unit_test(test_json_refuses_duplicates_in_large_objects_in_linear_time),
        cmocka_unit_test(test_json_large_documents_round_trip),
        cmocka_unit_test(test_json_reads_only_len_bytes),
        cmocka_unit_test(test_json_agrees_with_jansson_on_every_byte_at_every_position),
        cmocka_unit_test(test_json_agrees_with_jansson_on_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
