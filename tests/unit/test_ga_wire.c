// SPDX-License-Identifier: MIT
// The MessagePack codec: round trips of every type, the protocol's hex test vectors, and
// hostile input (count bombs, deep nesting, truncation, extension types) refused without a
// large allocation.
#include "ga_json.h"
#include "ga_wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include "../support/wire_oracle.h" // the oracle of test_wire_encodes_as_msgpack_c_does

#include "test_rand.h"

static ga_value_t
s_json(ga_arena_t *a, const char *text)
{
    ga_value_t v;
    assert_int_equal(ga_json_decode(text, strlen(text), a, &v, NULL, 0), GA_OK);
    return v;
}

static size_t
s_unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    while (*hex) {
        if (*hex == ' ' || *hex == '\n') {
            hex++;
            continue;
        }
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t) v;
        hex += 2;
    }
    return n;
}

static void
s_roundtrip(const ga_value_t *v)
{
    ga_arena_t *a = ga_arena_new(4096);
    ga_buf_t b;
    ga_buf_init(&b);
    ga_wire_encode(&b, v);
    ga_value_t back;
    assert_int_equal(ga_wire_decode(b.data, b.len, a, &back), GA_OK);
    assert_true(ga_value_equal(v, &back));
    ga_buf_fini(&b);
    ga_arena_destroy(&a);
}

static void
test_wire_round_trips_every_type(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t values[] = {ga_nil(),          ga_bool(true),      ga_bool(false),
                           ga_int(0),         ga_int(-1),         ga_int(127),
                           ga_int(-33),       ga_int(65536),      ga_int(INT64_MAX),
                           ga_int(INT64_MIN), ga_float(0.5),      ga_float(-1e300),
                           ga_str(""),        ga_str("héllo"),
                           s_json(a, "{\"a\":[1,{\"b\":null}],\"c\":\"d\",\"e\":[]}")};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        s_roundtrip(&values[i]);
    }
    // A string longer than 65535 bytes (str32) and a list of 70000 items (array32).
    char *big = malloc(70001);
    memset(big, 'x', 70000);
    big[70000] = '\0';
    ga_value_t s = ga_str(big);
    s_roundtrip(&s);
    ga_value_t list = ga_array(a, 70000);
    for (int i = 0; i < 70000; i++) {
        ga_array_push(&list, a, ga_int(i));
    }
    s_roundtrip(&list);
    free(big);
    ga_arena_destroy(&a);
}

static void
test_wire_encodes_the_protocol_test_vectors(void **state)
{
    (void) state;
    struct {
        const char *json;
        const char *hex;
    } vectors[] = {
        {"{}", "80"},
        {"{\"id\":1}", "81 a2 69 64 01"},
        {"{\"ok\":true,\"result\":[1,\"a\"]}", "82 a2 6f 6b c3 a6 72 65 73 75 6c 74 92 01 a1 61"},
        {"{\"id\":7,\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
         "\"args\":{\"user_id\":\"1\"},\"request_id\":\"r1\"}",
         "86 a2 69 64 07 a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 "
         "71 75 65 73 74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e a5 31 "
         "2e 30 2e 30 a4 61 72 67 73 81 a7 75 73 65 72 5f 69 64 a1 31 aa 72 65 71 75 65 73 74 5f "
         "69 64 a2 72 31"},
        {"{\"id\":7,\"ok\":false,\"error\":\"Worker lost\",\"code\":13,\"can_retry\":true}",
         "85 a2 69 64 07 a2 6f 6b c2 a5 65 72 72 6f 72 ab 57 6f 72 6b 65 72 20 6c 6f 73 74 a4 63 "
         "6f 64 65 0d a9 63 61 6e 5f 72 65 74 72 79 c3"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        ga_arena_t *a = ga_arena_new(4096);
        ga_value_t v = s_json(a, vectors[i].json);
        ga_buf_t b;
        ga_buf_init(&b);
        ga_wire_encode(&b, &v);
        uint8_t want[256];
        size_t n = s_unhex(vectors[i].hex, want);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, want, n);
        ga_value_t back;
        assert_int_equal(ga_wire_decode(want, n, a, &back), GA_OK);
        assert_true(ga_value_equal(&v, &back));
        ga_buf_fini(&b);
        ga_arena_destroy(&a);
    }
}

static void
test_wire_decodes_uint64_above_int64_as_float(void **state)
{
    (void) state;
    const uint8_t in[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ga_arena_t *a = ga_arena_new(256);
    ga_value_t v;
    assert_int_equal(ga_wire_decode(in, sizeof in, a, &v), GA_OK);
    assert_int_equal(v.type, GA_FLOAT);
    assert_true(v.u.f > 1.8e19);
    const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; // 1.5 as float32
    assert_int_equal(ga_wire_decode(f32, sizeof f32, a, &v), GA_OK);
    assert_true(v.type == GA_FLOAT && v.u.f == 1.5);
    ga_arena_destroy(&a);
}

// Every hostile input is refused, and nothing large was allocated for it.
static void
s_refused(const uint8_t *in, size_t len, ga_err_t want)
{
    ga_arena_t *a = ga_arena_new(256);
    ga_value_t v;
    assert_int_equal(ga_wire_decode(in, len, a, &v), want);
    assert_int_equal(v.type, GA_NIL);
    assert_true(ga_arena_used(a) < 4096);
    ga_arena_destroy(&a);
}

static void
test_wire_refuses_count_bombs_without_allocating(void **state)
{
    (void) state;
    const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    const uint8_t nested[] = {0xdd, 0x00, 0x01, 0x00, 0x00, 0xdd, 0x00, 0x01, 0x00, 0x00, 0xc0};
    const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    const uint8_t bin16[] = {0xc5, 0x01, 0x00, 'a', 'b'};
    const uint8_t array16_short[] = {0xdc, 0x00, 0x03, 0x01, 0x02};
    const uint8_t map_odd[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b'};
    s_refused(array32, sizeof array32, GA_EPROTO);
    s_refused(map32, sizeof map32, GA_EPROTO);
    s_refused(nested, sizeof nested, GA_EPROTO);
    s_refused(str32, sizeof str32, GA_EPROTO);
    s_refused(bin16, sizeof bin16, GA_EPROTO);
    s_refused(array16_short, sizeof array16_short, GA_EPROTO);
    s_refused(map_odd, sizeof map_odd, GA_EPROTO);
}

static void
test_wire_caps_nesting_depth(void **state)
{
    (void) state;
    uint8_t in[64];
    memset(in, 0x91, 33);
    in[33] = 0xc0;
    s_refused(in, 34, GA_ETOOBIG);
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    assert_int_equal(ga_wire_decode(in + 1, 33, a, &v), GA_OK); // 32 deep is fine
    ga_arena_destroy(&a);
}

static void
test_wire_refuses_every_truncation_and_trailing_bytes(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v = s_json(a, "{\"id\":123456789,\"service\":\"user_service\",\"args\":{\"list\":"
                             "[1,2.5,\"three\",null,true,{\"k\":\"v\"}],\"text\":\"a longer "
                             "string that needs str8\"},\"neg\":-100000}");
    ga_buf_t b;
    ga_buf_init(&b);
    ga_wire_encode(&b, &v);
    for (size_t n = 0; n < b.len; n++) {
        ga_value_t out;
        assert_int_not_equal(ga_wire_decode(b.data, n, a, &out), GA_OK);
    }
    ga_buf_append_char(&b, 0x00);
    ga_value_t out;
    assert_int_equal(ga_wire_decode(b.data, b.len, a, &out), GA_EPROTO);
    ga_buf_fini(&b);
    ga_arena_destroy(&a);
}

static void
test_wire_refuses_extensions_reserved_and_bad_keys(void **state)
{
    (void) state;
    const uint8_t fixext[] = {0xd4, 0x01, 0x00};
    const uint8_t ext8[] = {0xc7, 0x01, 0x05, 0x00};
    const uint8_t never[] = {0xc1};
    const uint8_t int_key[] = {0x81, 0x01, 0x02};
    const uint8_t nul_key[] = {0x81, 0xa2, 'a', 0x00, 0x01};
    s_refused(fixext, sizeof fixext, GA_EPROTO);
    s_refused(ext8, sizeof ext8, GA_EPROTO);
    s_refused(never, sizeof never, GA_EPROTO);
    s_refused(int_key, sizeof int_key, GA_EPROTO);
    s_refused(nul_key, sizeof nul_key, GA_EPROTO);
    s_refused((const uint8_t *) "", 0, GA_EPROTO);
}

static void
test_wire_survives_random_bytes(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    uint32_t seed = 12345;
    uint8_t in[64];
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + (seed % 64);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (uint8_t) (seed >> 16);
        }
        ga_value_t v;
        ga_err_t rc = ga_wire_decode(in, len, a, &v);
        assert_true(rc == GA_OK || rc == GA_EPROTO || rc == GA_ETOOBIG);
        // Whatever was accepted fits in a small multiple of the input.
        assert_true(ga_arena_used(a) < 64 * 1024);
        ga_arena_reset(a);
    }
    ga_arena_destroy(&a);
}

// ga_wire_decode_map (protocol envelopes, one pass when no value nests) gives what
// ga_wire_decode gives, value and error alike: on chosen inputs and on random bytes behind a
// map header.
static void
s_same_as_decode(ga_arena_t *a, const uint8_t *data, size_t len)
{
    // In a buffer of exactly len bytes, so that ASan sees any read past the end.
    uint8_t *in = malloc(len);
    assert_non_null(in);
    memcpy(in, data, len);
    ga_value_t v, flat;
    ga_err_t want = ga_wire_decode(in, len, a, &v);
    assert_int_equal(ga_wire_decode_map(in, len, a, &flat), want);
    free(in);
    if (want == GA_OK) {
        ga_buf_t x, y;
        ga_buf_init(&x);
        ga_buf_init(&y);
        ga_wire_encode(&x, &v);
        ga_wire_encode(&y, &flat);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.data, y.data, x.len);
        ga_buf_fini(&x);
        ga_buf_fini(&y);
        // Keys (the protocol's own are static copies) and strings (packed in one allocation)
        // are NUL-terminated where their length says.
        for (uint32_t i = 0; flat.type == GA_MAP && i < flat.len; i++) {
            const ga_pair_t *p = &flat.u.pairs[i];
            assert_int_equal(p->key[p->key_len], '\0');
            assert_true(ga_value_equal(ga_map_get(&flat, p->key), ga_map_get(&v, p->key)));
            if (p->value.type == GA_STR) {
                assert_int_equal(p->value.u.s[p->value.len], '\0');
            }
        }
    }
    ga_arena_reset(a);
}

static void
test_wire_decode_map_agrees_with_decode(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    const char *cases[] = {
        "80",                                     // {}
        "82 a2 69 64 2a a2 6f 6b c3",             // {id: 42, ok: true}
        "84 a1 66 ca 3f c0 00 00 a1 62 c4 02 00 ff a1 73 d9 03 61 62 63 a1 69 cd 00 05",
        "82 a1 6e c0 a1 75 cf ff ff ff ff ff ff ff ff", // nil; a uint64 above INT64_MAX
        "82 a1 72 92 a1 61 a1 62 a1 6e 01",       // an array inside: the general path
        "81 a1 6d 81 a1 6b 80",                   // a map inside
        "92 01 02",                               // not a map
        "a3 61 62 63",                            // not a map
        "82 a1 61 01",                            // a pair short
        "81 01 02",                               // a key that is not a string
        "81 a2 61 00 01",                         // a key with a NUL
        "81 a1 61 a5 61 62",                      // a string longer than what is left
        "81 a1 61 01 c0",                         // trailing bytes
        "81 a1 61 d4 01 00",                      // an extension type
        "81 a1 61 c1",                            // a reserved byte
        "df ff ff ff ff",                         // a count the bytes cannot hold
        "82 a1 61 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 "
        "91 91 91 91 91 91 c0 a1 62 c1",          // too deep, then a reserved byte
        "82 a1 62 c1 a1 61 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 "
        "91 91 91 91 91 91 91 c0",                // a reserved byte, then too deep
        // An envelope: the protocol's keys, keys close to them, a bin key, str8 and empty
        // strings, a uint16.
        "8b a2 69 64 2a a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 "
        "71 75 65 73 74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e d9 05 "
        "31 2e 30 2e 30 aa 72 65 71 75 65 73 74 5f 69 64 a3 72 2d 31 a2 69 78 c3 a3 69 64 64 c0 "
        "c4 02 6f 6b c2 aa 72 61 74 65 5f 6c 69 6d 69 73 a0 a2 6f 6b cd 01 00 ac 73 74 72 65 61 "
        "6d 5f 74 6f 70 69 78 a0",
        "82 a2 69 64 01 a5 65 72 72 6f 72 da 00 02 68 69", // a str16 value
        "82 a2 69 64 01 a5 65 72 72 6f 72 a5 68 69",        // a string longer than what is left
        // Integers of every width read in the one pass: signed ones negative and positive,
        // unsigned ones at their maximum, negative fixints; then each cut short.
        "8c a1 61 d0 80 a1 62 d0 7f a1 63 d1 80 00 a1 64 d1 7f ff a1 65 d2 80 00 00 00 a1 66 d2 "
        "7f ff ff ff a1 67 d3 80 00 00 00 00 00 00 00 a1 68 d3 ff ff ff ff ff ff ff ff a1 69 cc "
        "ff a1 6a cd ff ff a1 6b ce ff ff ff ff a1 6c e0",
        "82 a1 61 cf 7f ff ff ff ff ff ff ff a1 62 ff", // INT64_MAX as a uint64; -1
        "81 a1 61 cc", "81 a1 61 cd 01", "81 a1 61 ce 01 02 03", "81 a1 61 cf 01 02 03 04 05 06 07",
        "81 a1 61 d0", "81 a1 61 d1 01", "81 a1 61 d2 01 02 03", "81 a1 61 d3 01 02 03 04 05 06 07",
        "81 a1 61", "81 a1 61 d9", "81 a1 61 d9 02 61", "81 a1 61 d9 00", // str8: cut, empty
        "82 a1 66 ca 3f c0 00 00 a1 64 cb 40 09 21 fb 54 44 2d 18", // float32, float64
        "81 a1 62 c6 00 00 00 01 00", "81 a1 62 c6 00 00 00 02 00", // bin32: whole, cut
        "81 d9 02 6b 6b c0", "81 da 00 01 6b c0", "81 db 00 00 00 01 6b c0", // str8/16/32 keys
        "81 c4 02 6b 00 c0", "81 d9 05 6b c0",                      // a bin key with a NUL; cut
        "de 00 02 a1 61 01 a1 62 02", "df 00 00 00 01 a1 61 01",   // map16, map32
        "de 00", "de 00 01", "df 00 00 00", "df 00 00 00 02 a1 61 01", // cut, or a pair short
        "de 00 00", "df 00 00 00 00", "de 00 00 c0",                // empty; trailing bytes
        "82 a1 61 cc 05 a1 62 dc 00 01 01",                          // array16 after an int
        "82 a1 61 d9 01 78 a1 62 de 00 01 a1 63 c0",                 // map16 after a str8
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t in[256];
        size_t n = s_unhex(cases[i], in);
        s_same_as_decode(a, in, n);
    }
    uint32_t seed = 777;
    uint8_t in[64];
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + (seed % 64);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (uint8_t) (seed >> 16);
        }
        in[0] = (uint8_t) (0x80 | (in[0] & 0x0f)); // a fixmap of 0..15 pairs
        s_same_as_decode(a, in, len);
    }
    // Maps made of the protocol's keys, keys near them and string values of every header
    // size, cut short at random: known keys, packed strings and truncation together.
    static const char *const words[] = {
        "id", "ip", "ok", "code", "node", "error", "roles", "service", "version", "user_id",
        "refused", "deadline", "can_retry", "device_id", "retryable", "request_id",
        "rate_limit", "routing_key", "request_type", "stream_topic", "i", "idx", "oK",
        "servicf", "request_ie", "stream_topiC", "", "x\001y",
    };
    uint8_t big[512];
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t pairs = (seed >> 16) % 12;
        size_t len = 0;
        big[len++] = (uint8_t) (0x80 | pairs);
        for (uint32_t i = 0; i < 2 * pairs; i++) {
            seed = seed * 1103515245u + 12345u;
            const char *w = words[(seed >> 16) % (sizeof words / sizeof words[0])];
            size_t wl = strlen(w);
            switch ((seed >> 8) % 4) {
            case 0:
                big[len++] = (uint8_t) (0xa0 | wl);
                break;
            case 1:
                big[len++] = 0xd9;
                big[len++] = (uint8_t) wl;
                break;
            case 2:
                big[len++] = 0xc4;
                big[len++] = (uint8_t) wl;
                break;
            default:
                big[len++] = (uint8_t) ((seed >> 4) & 0x7f); // an int (a key that is not a string)
                wl = 0;
                break;
            }
            memcpy(big + len, w, wl);
            len += wl;
        }
        seed = seed * 1103515245u + 12345u;
        size_t cut = (seed >> 16) % 4 == 0 ? (seed >> 4) % (len + 1) : len;
        if (cut > 0) {
            s_same_as_decode(a, big, cut);
        }
    }
    ga_arena_destroy(&a);
}

// ga_map_get finds a key by its bytes and length: not a prefix of it, not a longer key, not a
// key with a NUL inside (it equals no C string), and the empty key.
static void
test_map_get_exact_keys(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t m = ga_map(a, 6);
    ga_map_put(&m, a, "idx", ga_int(1));
    ga_map_put(&m, a, "id", ga_int(2));
    ga_map_put(&m, a, "", ga_int(3));
    ga_map_put(&m, a, "service", ga_int(4));
    m.u.pairs[m.len++] = (ga_pair_t){.key = "ok\0x", .key_len = 4, .value = ga_int(5)};
    ga_map_put(&m, a, "ok", ga_int(6));
    assert_int_equal(ga_map_get_int(&m, "idx", 0), 1);
    assert_int_equal(ga_map_get_int(&m, "id", 0), 2);
    assert_int_equal(ga_map_get_int(&m, "", 0), 3);
    assert_int_equal(ga_map_get_int(&m, "service", 0), 4);
    assert_int_equal(ga_map_get_int(&m, "ok", 0), 6);
    assert_null(ga_map_get(&m, "i"));
    assert_null(ga_map_get(&m, "idxy"));
    assert_null(ga_map_get(&m, "servic"));
    assert_null(ga_map_get(&m, "services"));
    assert_null(ga_map_get(&m, "o"));
    ga_value_t n = ga_map(a, 1);
    assert_null(ga_map_get(&n, "id"));
    ga_value_t i = ga_int(1);
    assert_null(ga_map_get(&i, "id"));
    ga_arena_destroy(&a);
}

// Found by fuzz_worker_cmd: a REQUEST body whose id is the float 5.1e228. ga_map_get_int
// converted any float to int64_t to see whether it was whole, which is undefined behaviour for a
// double outside [-2^63, 2^63) or NaN (UBSan: "outside the range of representable values").
// Such values now give the default; whole floats inside the range still count.
static void
test_wire_float_ids_outside_int64_give_the_default(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    uint8_t in[64];
    // The fuzzer's input: {"id": 5.1e228, "request_type": "echo", "ards": {"n": 1e20}}
    size_t len = s_unhex("83 a2 69 64 cb 6f 6b 00 00 00 00 00 00 ac 72 65 71 75 65 73 74 5f 74"
                         "79 70 65 a4 65 63 68 6f a4 61 72 64 73 81 a1 6e cb 44 15 af 8c 78 b5"
                         "8c 40",
                         in);
    ga_value_t v;
    assert_int_equal(ga_wire_decode(in, len, a, &v), GA_OK);
    assert_int_equal(ga_map_get_int(&v, "id", -1), -1);
    struct {
        double f;
        int64_t want;
    } cases[] = {
        {1e300, -1},           {-1e300, -1},        {0x1p63, -1},    {-0x1p64, -1},
        {(double) NAN, -1},    {(double) INFINITY, -1}, {7.0, 7},    {-0x1p63, INT64_MIN},
        {0x1p62, 0x4000000000000000}, {2.5, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ga_value_t m = ga_map(a, 1);
        ga_map_put(&m, a, "id", ga_float(cases[i].f));
        assert_int_equal(ga_map_get_int(&m, "id", -1), cases[i].want);
    }
    ga_arena_destroy(&a);
}

// ga_wire_encode writes MessagePack itself; msgpack-c's packer (which it used to call) is the
// oracle: the same bytes for every boundary of every header form and for random trees.
static void
s_assert_encodes_as_oracle(const ga_value_t *v)
{
    ga_buf_t want, got;
    ga_buf_init(&want);
    ga_buf_init(&got);
    assert_true(wire_oracle_encode(v, &want));
    ga_wire_encode(&got, v);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ga_buf_fini(&want);
    ga_buf_fini(&got);
}

// A random value of at most `depth` more levels; sizes near the header boundaries.
static ga_value_t
s_random_value(ga_arena_t *a, uint64_t *seed, int depth, char *text)
{
    static const uint32_t sizes[] = {0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 257};
    uint64_t r = test_rand(seed);
    switch (r % (depth > 0 ? 7 : 5)) {
    case 0:
        return ga_nil();
    case 1:
        return ga_bool((r >> 8) & 1);
    case 2: {
        int shift = (int) ((r >> 8) % 64);
        int64_t i = (int64_t) (test_rand(seed) >> shift);
        return ga_int((r >> 16) & 1 ? -i : i);
    }
    case 3: {
        uint64_t bits = test_rand(seed);
        double f;
        memcpy(&f, &bits, sizeof f);
        return ga_float((r >> 8) & 1 ? f : (double) (int64_t) bits / 7.0);
    }
    case 4:
        return ga_strn(text, sizes[(r >> 8) % (sizeof sizes / sizeof sizes[0])]);
    case 5: {
        uint32_t n = (uint32_t) ((r >> 8) % 20);
        ga_value_t arr = ga_array(a, n);
        for (uint32_t i = 0; i < n; i++) {
            ga_array_push(&arr, a, s_random_value(a, seed, depth - 1, text));
        }
        return arr;
    }
    default: {
        uint32_t n = (uint32_t) ((r >> 8) % 20);
        ga_value_t m = ga_map(a, n);
        for (uint32_t i = 0; i < n; i++) {
            static const char keys[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            const char *key = keys + ((r >> 16) + i) % (sizeof keys - 1);
            ga_map_put(&m, a, key, s_random_value(a, seed, depth - 1, text));
        }
        return m;
    }
    }
}

static void
test_wire_encodes_as_msgpack_c_does(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    // Every integer form's boundaries, both sides.
    static const int64_t ints[] = {0, 1, -1, 31, 32, -31, -32, -33, 127, 128, -127, -128, -129,
                                   255, 256, -255, -256, 32767, 32768, -32767, -32768, -32769,
                                   65535, 65536, -65535, -65536, 2147483647, 2147483648,
                                   -2147483647, -2147483648LL, -2147483649LL, 4294967295LL,
                                   4294967296LL, -4294967296LL, INT64_MAX, INT64_MIN,
                                   INT64_MIN + 1, INT64_MAX - 1};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        ga_value_t v = ga_int(ints[i]);
        s_assert_encodes_as_oracle(&v);
    }
    static const double floats[] = {0.0, -0.0, 1.5, -1e300, 5e-324, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        ga_value_t v = ga_float(floats[i]);
        s_assert_encodes_as_oracle(&v);
    }
    // Strings, arrays and maps at every header boundary (fix, 8-, 16-, 32-bit counts).
    static const uint32_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};
    char *text = malloc(70001);
    assert_non_null(text);
    for (size_t i = 0; i < 70000; i++) {
        text[i] = (char) ('a' + i % 26);
    }
    text[70000] = '\0';
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        ga_value_t s = ga_strn(text, lens[i]);
        s_assert_encodes_as_oracle(&s);
        ga_value_t arr = ga_array(a, lens[i]);
        ga_value_t m = ga_map(a, lens[i]);
        for (uint32_t j = 0; j < lens[i]; j++) {
            ga_array_push(&arr, a, ga_int(j));
            ga_map_put(&m, a, "k", ga_bool(j & 1));
        }
        s_assert_encodes_as_oracle(&arr);
        s_assert_encodes_as_oracle(&m);
        ga_arena_reset(a);
    }
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 2000; round++) {
        ga_value_t v = s_random_value(a, &seed, 4, text);
        s_assert_encodes_as_oracle(&v);
        ga_arena_reset(a);
    }
    free(text);
    ga_arena_destroy(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trips_every_type),
        cmocka_unit_test(test_wire_encodes_the_protocol_test_vectors),
        cmocka_unit_test(test_wire_encodes_as_msgpack_c_does),
        cmocka_unit_test(test_wire_decodes_uint64_above_int64_as_float),
        cmocka_unit_test(test_wire_refuses_count_bombs_without_allocating),
        cmocka_unit_test(test_wire_caps_nesting_depth),
        cmocka_unit_test(test_wire_refuses_every_truncation_and_trailing_bytes),
        cmocka_unit_test(test_wire_refuses_extensions_reserved_and_bad_keys),
        cmocka_unit_test(test_wire_survives_random_bytes),
        cmocka_unit_test(test_wire_float_ids_outside_int64_give_the_default),
        cmocka_unit_test(test_wire_decode_map_agrees_with_decode),
        cmocka_unit_test(test_map_get_exact_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
