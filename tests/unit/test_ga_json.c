// SPDX-License-Identifier: MIT
// The JSON codec: strict decoding (duplicates, invalid UTF-8, trailing bytes, depth) and the
// writer's escaping, UTF-8 repair and number formatting.
#include "ga_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_decodes_values_and_round_trips),
        cmocka_unit_test(test_json_refuses_what_is_not_strict_json),
        cmocka_unit_test(test_json_writer_escapes_and_repairs),
        cmocka_unit_test(test_json_writer_formats_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
