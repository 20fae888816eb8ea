// SPDX-License-Identifier: MIT
// Phoenix V2 frames: good frames decode into their five parts, every malformed shape is refused
// with a "malformed frame: " reason, and replies and pushes are encoded to the exact text.
#include "gw_phx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int
s_setup(void **state)
{
    *state = ga_arena_new(4096);
    return 0;
}

static int
s_teardown(void **state)
{
    ga_arena_t *arena = *state;
    ga_arena_destroy(&arena);
    return 0;
}

// Decodes `text`, asserting success.
static gw_phx_frame_t
s_decode_ok(ga_arena_t *arena, const char *text)
{
    gw_phx_frame_t f;
    char err[256] = "";
    ga_err_t rc = gw_phx_decode(text, strlen(text), arena, &f, err, sizeof err);
    if (rc != GA_OK) {
        fail_msg("decode of %s failed: %s", text, err);
    }
    return f;
}

// Decodes `text`, asserting a GA_EPROTO refusal whose reason starts "malformed frame: ".
static void
s_decode_refused(ga_arena_t *arena, const char *text)
{
    gw_phx_frame_t f;
    char err[256] = "";
    assert_int_equal(gw_phx_decode(text, strlen(text), arena, &f, err, sizeof err), GA_EPROTO);
    if (strncmp(err, "malformed frame: ", 17) != 0) {
        fail_msg("reason for %s is \"%s\"", text, err);
    }
    assert_true(strlen(err) > 17); // the reason says what is wrong, not just the prefix
}

// The buffer's bytes as a C string (appends a NUL).
static const char *
s_text(ga_buf_t *b)
{
    ga_buf_append_char(b, '\0');
    return (const char *) b->data;
}

static void
test_phx_decode_accepts_join_with_string_refs(void **state)
{
    gw_phx_frame_t f = s_decode_ok(*state, "[\"3\",\"4\",\"api:lobby\",\"phx_join\",{}]");
    assert_string_equal(f.join_ref, "3");
    assert_string_equal(f.ref, "4");
    assert_string_equal(f.topic, "api:lobby");
    assert_string_equal(f.event, "phx_join");
    assert_non_null(f.payload);
    assert_int_equal(f.payload->type, GA_MAP);
    assert_int_equal(f.payload->len, 0);
}

static void
test_phx_decode_maps_null_join_ref_of_heartbeat_to_null(void **state)
{
    gw_phx_frame_t f = s_decode_ok(*state, "[null,\"5\",\"phoenix\",\"heartbeat\",{}]");
    assert_null(f.join_ref);
    assert_string_equal(f.ref, "5");
    assert_string_equal(f.topic, "phoenix");
    assert_string_equal(f.event, "heartbeat");
}

static void
test_phx_decode_maps_both_null_refs_to_null(void **state)
{
    gw_phx_frame_t f = s_decode_ok(*state, "[null,null,\"api:lobby\",\"api\",{}]");
    assert_null(f.join_ref);
    assert_null(f.ref);
}

static void
test_phx_decode_exposes_api_payload_fields(void **state)
{
    gw_phx_frame_t f = s_decode_ok(*state, "[\"1\",\"2\",\"api:lobby\",\"api\",{\"request_id\":"
                                           "\"req_2\",\"service\":\"user_service\",\"args\":"
                                           "{\"user_id\":\"1\"}}]");
    assert_string_equal(f.event, "api");
    assert_int_equal(f.payload->type, GA_MAP);
    assert_string_equal(ga_map_get_str(f.payload, "request_id"), "req_2");
    assert_string_equal(ga_map_get_str(f.payload, "service"), "user_service");
    const ga_value_t *args = ga_map_get(f.payload, "args");
    assert_non_null(args);
    assert_string_equal(ga_map_get_str(args, "user_id"), "1");
}

static void
test_phx_decode_accepts_any_json_value_as_payload(void **state)
{
    gw_phx_frame_t f = s_decode_ok(*state, "[\"1\",\"2\",\"t\",\"e\",[1,2,3]]");
    assert_int_equal(f.payload->type, GA_ARRAY);
    assert_int_equal(f.payload->len, 3);
    f = s_decode_ok(*state, "[\"1\",\"2\",\"t\",\"e\",null]");
    assert_int_equal(f.payload->type, GA_NIL);
}

static void
test_phx_decode_refuses_integer_refs(void **state)
{
    s_decode_refused(*state, "[1,\"22\",\"api:lobby\",\"api\",{}]");
    s_decode_refused(*state, "[\"1\",22,\"api:lobby\",\"api\",{}]");
    s_decode_refused(*state, "[0,-7,\"api:lobby\",\"api\",{}]");
    s_decode_refused(*state, "[9223372036854775807,null,\"t\",\"e\",{}]");
}

static void
test_phx_decode_reads_only_len_bytes(void **state)
{
    const char *text = "[\"1\",\"2\",\"t\",\"e\",{}]trailing";
    gw_phx_frame_t f;
    char err[256] = "";
    size_t len = strlen("[\"1\",\"2\",\"t\",\"e\",{}]");
    assert_int_equal(gw_phx_decode(text, len, *state, &f, err, sizeof err), GA_OK);
    assert_string_equal(f.topic, "t");
    // The same bytes with the tail included are not one JSON document.
    assert_int_equal(gw_phx_decode(text, strlen(text), *state, &f, err, sizeof err), GA_EPROTO);
}

static void
test_phx_decode_refuses_text_that_is_not_json(void **state)
{
    s_decode_refused(*state, "not json");
    s_decode_refused(*state, "[\"1\",\"2\",\"t\",\"e\",{}");
    s_decode_refused(*state, "");
}

static void
test_phx_decode_refuses_a_json_object(void **state)
{
    s_decode_refused(*state, "{\"join_ref\":\"1\",\"ref\":\"2\",\"topic\":\"t\",\"event\":\"e\","
                             "\"payload\":{}}");
}

static void
test_phx_decode_refuses_a_json_scalar(void **state)
{
    s_decode_refused(*state, "\"phx_join\"");
    s_decode_refused(*state, "42");
}

static void
test_phx_decode_refuses_four_element_array(void **state)
{
    s_decode_refused(*state, "[\"1\",\"2\",\"api:lobby\",\"api\"]");
}

static void
test_phx_decode_refuses_six_element_array(void **state)
{
    s_decode_refused(*state, "[\"1\",\"2\",\"api:lobby\",\"api\",{},{}]");
}

static void
test_phx_decode_refuses_empty_array(void **state)
{
    s_decode_refused(*state, "[]");
}

static void
test_phx_decode_refuses_topic_that_is_not_a_string(void **state)
{
    s_decode_refused(*state, "[\"1\",\"2\",5,\"api\",{}]");
    s_decode_refused(*state, "[\"1\",\"2\",null,\"api\",{}]");
}

static void
test_phx_decode_refuses_empty_topic(void **state)
{
    s_decode_refused(*state, "[\"1\",\"2\",\"\",\"api\",{}]");
}

static void
test_phx_decode_refuses_empty_event(void **state)
{
    s_decode_refused(*state, "[\"1\",\"2\",\"api:lobby\",\"\",{}]");
}

static void
test_phx_decode_refuses_event_that_is_not_a_string(void **state)
{
    s_decode_refused(*state, "[\"1\",\"2\",\"api:lobby\",[\"api\"],{}]");
}

static void
test_phx_decode_refuses_ref_that_is_an_object(void **state)
{
    s_decode_refused(*state, "[\"1\",{},\"api:lobby\",\"api\",{}]");
}

static void
test_phx_decode_refuses_join_ref_that_is_an_object(void **state)
{
    s_decode_refused(*state, "[{\"a\":1},\"2\",\"api:lobby\",\"api\",{}]");
}

static void
test_phx_decode_refuses_ref_that_is_an_array_float_or_boolean(void **state)
{
    s_decode_refused(*state, "[\"1\",[],\"api:lobby\",\"api\",{}]");
    s_decode_refused(*state, "[\"1\",1.5,\"api:lobby\",\"api\",{}]");
    s_decode_refused(*state, "[true,\"2\",\"api:lobby\",\"api\",{}]");
}

static void
test_phx_encode_reply_produces_exact_text(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    gw_phx_encode_reply(&b, "1", "2", "api:lobby", "ok", "{}", 2);
    assert_string_equal(s_text(&b), "[\"1\",\"2\",\"api:lobby\",\"phx_reply\",{\"status\":\"ok\","
                                    "\"response\":{}}]");
    ga_buf_fini(&b);
}

static void
test_phx_encode_reply_with_null_join_ref_and_error_status(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    const char *resp = "{\"reason\":\"unmatched topic\"}";
    gw_phx_encode_reply(&b, NULL, "7", "chat:x", "error", resp, strlen(resp));
    assert_string_equal(s_text(&b), "[null,\"7\",\"chat:x\",\"phx_reply\",{\"status\":\"error\","
                                    "\"response\":{\"reason\":\"unmatched topic\"}}]");
    ga_buf_fini(&b);
}

static void
test_phx_encode_push_with_null_ref_produces_exact_text(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    const char *resp = "{\"request_id\":\"req_1\",\"success\":true}";
    gw_phx_encode(&b, "1", NULL, "api:lobby", "api", resp, strlen(resp));
    assert_string_equal(s_text(&b), "[\"1\",null,\"api:lobby\",\"api\",{\"request_id\":"
                                    "\"req_1\",\"success\":true}]");
    ga_buf_fini(&b);
}

static void
test_phx_encode_writes_payload_len_bytes_only(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    gw_phx_encode(&b, NULL, NULL, "phoenix", "phx_error", "{}IGNORED", 2);
    assert_string_equal(s_text(&b), "[null,null,\"phoenix\",\"phx_error\",{}]");
    ga_buf_fini(&b);
}

static void
test_phx_encode_appends_to_existing_buffer_content(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    ga_buf_append_str(&b, "prefix:");
    gw_phx_encode_reply(&b, "1", "2", "t", "ok", "{}", 2);
    assert_string_equal(s_text(&b), "prefix:[\"1\",\"2\",\"t\",\"phx_reply\",{\"status\":\"ok\","
                                    "\"response\":{}}]");
    ga_buf_fini(&b);
}

static void
test_phx_encode_escapes_quotes_backslashes_and_controls(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    gw_phx_encode(&b, "a\"b", "c\\d", "chat:\"q\"", "ev\n", "{}", 2);
    assert_string_equal(s_text(&b), "[\"a\\\"b\",\"c\\\\d\",\"chat:\\\"q\\\"\",\"ev\\n\",{}]");
    ga_buf_reset(&b);
    gw_phx_encode_reply(&b, "1", "2", "t\"", "o\"k", "{}", 2);
    assert_string_equal(s_text(&b), "[\"1\",\"2\",\"t\\\"\",\"phx_reply\",{\"status\":"
                                    "\"o\\\"k\",\"response\":{}}]");
    ga_buf_fini(&b);
}

static void
test_phx_encoded_push_decodes_back_to_the_same_parts(void **state)
{
    ga_buf_t b;
    ga_buf_init(&b);
    gw_phx_encode(&b, "j\"1", NULL, "api:\\lobby", "api", "{\"k\":[1,\"x\"]}", 13);
    gw_phx_frame_t f;
    char err[256] = "";
    assert_int_equal(gw_phx_decode((const char *) b.data, b.len, *state, &f, err, sizeof err),
                     GA_OK);
    assert_string_equal(f.join_ref, "j\"1");
    assert_null(f.ref);
    assert_string_equal(f.topic, "api:\\lobby");
    assert_string_equal(f.event, "api");
    const ga_value_t *k = ga_map_get(f.payload, "k");
    assert_non_null(k);
    assert_int_equal(k->type, GA_ARRAY);
    assert_int_equal(k->len, 2);
    ga_buf_fini(&b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_phx_decode_accepts_join_with_string_refs),
        T(test_phx_decode_maps_null_join_ref_of_heartbeat_to_null),
        T(test_phx_decode_maps_both_null_refs_to_null),
        T(test_phx_decode_exposes_api_payload_fields),
        T(test_phx_decode_accepts_any_json_value_as_payload),
        T(test_phx_decode_refuses_integer_refs),
        T(test_phx_decode_reads_only_len_bytes),
        T(test_phx_decode_refuses_text_that_is_not_json),
        T(test_phx_decode_refuses_a_json_object),
        T(test_phx_decode_refuses_a_json_scalar),
        T(test_phx_decode_refuses_four_element_array),
        T(test_phx_decode_refuses_six_element_array),
        T(test_phx_decode_refuses_empty_array),
        T(test_phx_decode_refuses_topic_that_is_not_a_string),
        T(test_phx_decode_refuses_empty_topic),
        T(test_phx_decode_refuses_empty_event),
        T(test_phx_decode_refuses_event_that_is_not_a_string),
        T(test_phx_decode_refuses_ref_that_is_an_object),
        T(test_phx_decode_refuses_join_ref_that_is_an_object),
        T(test_phx_decode_refuses_ref_that_is_an_array_float_or_boolean),
        T(test_phx_encode_reply_produces_exact_text),
        T(test_phx_encode_reply_with_null_join_ref_and_error_status),
        T(test_phx_encode_push_with_null_ref_produces_exact_text),
        T(test_phx_encode_writes_payload_len_bytes_only),
        T(test_phx_encode_appends_to_existing_buffer_content),
        T(test_phx_encode_escapes_quotes_backslashes_and_controls),
        T(test_phx_encoded_push_decodes_back_to_the_same_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
