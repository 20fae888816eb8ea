// SPDX-License-Identifier: MIT
// Phoenix V2 frames: decoding good and bad frames, and the exact text of replies and pushes.
#include "gw_phx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void
test_phx_decodes_join_heartbeat_and_api_frames(void **state)
{
    (void) state;
    ga_arena_t *a = ga_arena_new(4096);
    gw_phx_frame_t f;
    char err[200];
    const char *join = "[\"3\",\"3\",\"api:lobby\",\"phx_join\",{}]";
    assert_int_equal(gw_phx_decode(join, strlen(join), a, &f, err, sizeof err), GA_OK);
    assert_string_equal(f.join_ref, "3");
    assert_string_equal(f.topic, "api:lobby");
    assert_string_equal(f.event, "phx_join");
    assert_int_equal(f.payload->type, GA_MAP);
    const char *hb = "[null,\"5\",\"phoenix\",\"heartbeat\",{}]";
    assert_int_equal(gw_phx_decode(hb, strlen(hb), a, &f, err, sizeof err), GA_OK);
    assert_null(f.join_ref);
    assert_string_equal(f.ref, "5");
    const char *ints = "[1,22,\"t\",\"api\",{\"request_id\":\"r\"}]";
    assert_int_equal(gw_phx_decode(ints, strlen(ints), a, &f, err, sizeof err), GA_OK);
    assert_string_equal(f.join_ref, "1");
    assert_string_equal(f.ref, "22");
    ga_arena_destroy(&a);
}

static void
test_phx_refuses_malformed_frames_with_a_reason(void **state)
{
    (void) state;
    const char *bad[] = {
        "not json",
        "{\"a\":1}",
        "[\"1\",\"2\",\"t\",\"e\"]",
        "[\"1\",\"2\",\"t\",\"e\",{},1]",
        "[\"1\",\"2\",5,\"e\",{}]",
        "[\"1\",\"2\",\"t\",\"\",{}]",
        "[{},\"2\",\"t\",\"e\",{}]",
        "[\"1\",[],\"t\",\"e\",{}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ga_arena_t *a = ga_arena_new(4096);
        gw_phx_frame_t f;
        char err[200] = "";
        assert_int_equal(gw_phx_decode(bad[i], strlen(bad[i]), a, &f, err, sizeof err),
                         GA_EPROTO);
        assert_int_equal(strncmp(err, "malformed frame: ", 17), 0);
        ga_arena_destroy(&a);
    }
}

static void
test_phx_encodes_replies_and_pushes_exactly(void **state)
{
    (void) state;
    ga_buf_t b;
    ga_buf_init(&b);
    gw_phx_encode_reply(&b, "1", "2", "api:lobby", "ok", "{}", 2);
    ga_buf_append_char(&b, '\0');
    assert_string_equal((const char *) b.data,
                        "[\"1\",\"2\",\"api:lobby\",\"phx_reply\",{\"status\":\"ok\",\"response\":{}}]");
    ga_buf_reset(&b);
    gw_phx_encode(&b, "1", NULL, "api:lobby", "api", "{\"x\":1}", 7);
    ga_buf_append_char(&b, '\0');
    assert_string_equal((const char *) b.data, "[\"1\",null,\"api:lobby\",\"api\",{\"x\":1}]");
    ga_buf_reset(&b);
    gw_phx_encode(&b, NULL, NULL, "chat:\"q\"", "phx_error", "{}", 2);
    ga_buf_append_char(&b, '\0');
    assert_string_equal((const char *) b.data, "[null,null,\"chat:\\\"q\\\"\",\"phx_error\",{}]");
    ga_buf_fini(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phx_decodes_join_heartbeat_and_api_frames),
        cmocka_unit_test(test_phx_refuses_malformed_frames_with_a_reason),
        cmocka_unit_test(test_phx_encodes_replies_and_pushes_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
