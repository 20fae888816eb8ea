// SPDX-License-Identifier: MIT
// One connection's bookkeeping without sockets: channels (join, re-join, leave, the limit), the
// bounded outbound queue (limits, FIFO order, headroom), its frame pool and the frames held
// during auth.
#include "gw_conn.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define NO_LIMIT SIZE_MAX

static int
s_setup(void **state)
{
    *state = gw_conn_new(42, (void *) 0x1234, "192.0.2.7");
    return 0;
}

static int
s_teardown(void **state)
{
    gw_conn_t *c = *state;
    gw_conn_destroy(&c);
    assert_null(c);
    return 0;
}

// Enqueues a NUL-less copy of `s` with no limits.
static void
s_enqueue(gw_conn_t *c, const char *s, size_t pre)
{
    assert_true(gw_conn_enqueue(c, s, strlen(s), pre, NO_LIMIT, NO_LIMIT));
}

// Dequeues one frame, asserting its payload (after `pre` bytes of headroom), and frees it.
static void
s_dequeue_expect(gw_conn_t *c, const char *want, size_t pre)
{
    gw_out_t *f = gw_conn_dequeue(c);
    assert_non_null(f);
    assert_int_equal(f->len, strlen(want));
    assert_memory_equal(f->data + pre, want, f->len);
    gw_conn_release(c, f);
}

// --- creation and identity ---

static void
test_conn_new_keeps_id_handle_and_peer_address(void **state)
{
    gw_conn_t *c = *state;
    assert_int_equal(c->id, 42);
    assert_ptr_equal(c->wsi, (void *) 0x1234);
    assert_string_equal(c->ip, "192.0.2.7");
    assert_ptr_equal(c->who.ip, c->ip);
    assert_null(c->who.user_id);
    assert_int_equal(c->n_channels, 0);
    assert_int_equal(c->out_count, 0);
    assert_int_equal(c->out_bytes, 0);
    assert_null(gw_conn_dequeue(c));
}

static void
test_conn_new_with_null_ip_has_empty_address(void **state)
{
    (void) state;
    gw_conn_t *c = gw_conn_new(1, NULL, NULL);
    assert_string_equal(c->ip, "");
    assert_ptr_equal(c->who.ip, c->ip);
    gw_conn_destroy(&c);
}

static void
test_conn_new_truncates_an_overlong_ip(void **state)
{
    (void) state;
    char ip[200];
    memset(ip, '1', sizeof ip - 1);
    ip[sizeof ip - 1] = '\0';
    gw_conn_t *c = gw_conn_new(1, NULL, ip);
    assert_int_equal(strlen(c->ip), sizeof c->ip - 1);
    gw_conn_destroy(&c);
}

static void
test_conn_set_identity_takes_over_the_strings(void **state)
{
    gw_conn_t *c = *state;
    gw_auth_identity_t id = {.user_id = ga_strdup("alice"), .device_id = ga_strdup("d1")};
    id.roles[0] = ga_strdup("admin");
    id.roles[1] = ga_strdup("ops");
    id.n_roles = 2;
    gw_conn_set_identity(c, &id);
    assert_null(id.user_id); // left empty: the connection owns them now
    assert_null(id.device_id);
    assert_int_equal(id.n_roles, 0);
    assert_string_equal(c->who.user_id, "alice");
    assert_string_equal(c->who.device_id, "d1");
    assert_int_equal(c->who.n_roles, 2);
    assert_string_equal(c->who.roles[1], "ops");
    // A second identity replaces the first (ASan reports a leak if the first is not freed).
    gw_auth_identity_t id2 = {.user_id = ga_strdup("bob")};
    gw_conn_set_identity(c, &id2);
    assert_string_equal(c->who.user_id, "bob");
    assert_null(c->who.device_id);
    assert_int_equal(c->who.n_roles, 0);
    assert_ptr_equal(c->who.ip, c->ip);
}

// --- channels ---

static void
test_conn_join_adds_a_channel_with_a_copied_join_ref(void **state)
{
    gw_conn_t *c = *state;
    char ref[8] = "3";
    char topic[16] = "api:lobby";
    assert_true(gw_conn_join(c, topic, ref, 16));
    ref[0] = 'X'; // the connection keeps copies, not the caller's buffers
    topic[0] = 'X';
    gw_channel_t *ch = gw_conn_channel(c, "api:lobby");
    assert_non_null(ch);
    assert_string_equal(ch->topic, "api:lobby");
    assert_string_equal(ch->join_ref, "3");
    assert_int_equal(c->n_channels, 1);
    assert_null(gw_conn_channel(c, "api:other"));
    assert_null(gw_conn_channel(c, "api:lobb"));
}

static void
test_conn_join_with_null_join_ref_keeps_null(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_join(c, "chat:1", NULL, 16));
    assert_null(gw_conn_channel(c, "chat:1")->join_ref);
}

static void
test_conn_rejoin_replaces_join_ref_without_adding_a_channel(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_join(c, "api:lobby", "1", 16));
    assert_true(gw_conn_join(c, "api:lobby", "7", 16));
    assert_int_equal(c->n_channels, 1);
    assert_string_equal(gw_conn_channel(c, "api:lobby")->join_ref, "7");
    assert_true(gw_conn_join(c, "api:lobby", NULL, 16));
    assert_null(gw_conn_channel(c, "api:lobby")->join_ref);
    assert_true(gw_conn_join(c, "api:lobby", "8", 16));
    assert_string_equal(gw_conn_channel(c, "api:lobby")->join_ref, "8");
}

static void
test_conn_join_refuses_beyond_max_channels(void **state)
{
    gw_conn_t *c = *state;
    char topic[32];
    for (int i = 0; i < 4; i++) {
        snprintf(topic, sizeof topic, "chat:%d", i);
        assert_true(gw_conn_join(c, topic, "1", 4));
    }
    assert_false(gw_conn_join(c, "chat:4", "1", 4));
    assert_int_equal(c->n_channels, 4);
    assert_null(gw_conn_channel(c, "chat:4"));
}

static void
test_conn_rejoin_at_max_channels_is_allowed(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_join(c, "a", "1", 2));
    assert_true(gw_conn_join(c, "b", "1", 2));
    assert_true(gw_conn_join(c, "a", "2", 2));
    assert_int_equal(c->n_channels, 2);
    assert_string_equal(gw_conn_channel(c, "a")->join_ref, "2");
}

static void
test_conn_max_channels_zero_refuses_every_join(void **state)
{
    gw_conn_t *c = *state;
    assert_false(gw_conn_join(c, "api:lobby", "1", 0));
    assert_int_equal(c->n_channels, 0);
}

static void
test_conn_leave_removes_only_that_channel(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_join(c, "a", "1", 16));
    assert_true(gw_conn_join(c, "b", "2", 16));
    assert_true(gw_conn_join(c, "c", "3", 16));
    assert_true(gw_conn_leave(c, "a"));
    assert_int_equal(c->n_channels, 2);
    assert_null(gw_conn_channel(c, "a"));
    assert_string_equal(gw_conn_channel(c, "b")->join_ref, "2");
    assert_string_equal(gw_conn_channel(c, "c")->join_ref, "3");
    assert_true(gw_conn_leave(c, "c"));
    assert_string_equal(gw_conn_channel(c, "b")->join_ref, "2");
    assert_int_equal(c->n_channels, 1);
}

static void
test_conn_leave_of_a_topic_not_joined_is_false(void **state)
{
    gw_conn_t *c = *state;
    assert_false(gw_conn_leave(c, "api:lobby"));
    assert_true(gw_conn_join(c, "api:lobby", "1", 16));
    assert_true(gw_conn_leave(c, "api:lobby"));
    assert_false(gw_conn_leave(c, "api:lobby"));
    assert_int_equal(c->n_channels, 0);
}

static void
test_conn_leave_frees_a_slot_under_the_limit(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_join(c, "a", "1", 2));
    assert_true(gw_conn_join(c, "b", "1", 2));
    assert_false(gw_conn_join(c, "c", "1", 2));
    assert_true(gw_conn_leave(c, "a"));
    assert_true(gw_conn_join(c, "c", "5", 2));
    assert_string_equal(gw_conn_channel(c, "c")->join_ref, "5");
    assert_non_null(gw_conn_channel(c, "b"));
}

// --- outbound queue ---

static void
test_conn_dequeue_returns_frames_in_fifo_order(void **state)
{
    gw_conn_t *c = *state;
    s_enqueue(c, "one", 0);
    s_enqueue(c, "two", 0);
    s_enqueue(c, "three", 0);
    assert_int_equal(c->out_count, 3);
    assert_int_equal(c->out_bytes, 11);
    s_dequeue_expect(c, "one", 0);
    assert_int_equal(c->out_count, 2);
    assert_int_equal(c->out_bytes, 8);
    s_dequeue_expect(c, "two", 0);
    s_dequeue_expect(c, "three", 0);
    assert_null(gw_conn_dequeue(c));
    assert_int_equal(c->out_count, 0);
    assert_int_equal(c->out_bytes, 0);
    assert_null(c->out_head);
    assert_null(c->out_tail);
}

static void
test_conn_queue_works_again_after_being_emptied(void **state)
{
    gw_conn_t *c = *state;
    s_enqueue(c, "a", 0);
    s_dequeue_expect(c, "a", 0);
    s_enqueue(c, "b", 0);
    s_enqueue(c, "c", 0);
    s_dequeue_expect(c, "b", 0);
    s_enqueue(c, "d", 0);
    s_dequeue_expect(c, "c", 0);
    s_dequeue_expect(c, "d", 0);
    assert_null(gw_conn_dequeue(c));
}

static void
test_conn_enqueue_refuses_at_max_count_queuing_nothing(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_enqueue(c, "a", 1, 0, 2, NO_LIMIT));
    assert_true(gw_conn_enqueue(c, "b", 1, 0, 2, NO_LIMIT));
    gw_out_t *tail = c->out_tail;
    assert_false(gw_conn_enqueue(c, "c", 1, 0, 2, NO_LIMIT));
    assert_int_equal(c->out_count, 2);
    assert_int_equal(c->out_bytes, 2);
    assert_ptr_equal(c->out_tail, tail);
    assert_null(tail->next);
    s_dequeue_expect(c, "a", 0);
    // One frame out makes room for one more.
    assert_true(gw_conn_enqueue(c, "c", 1, 0, 2, NO_LIMIT));
    s_dequeue_expect(c, "b", 0);
    s_dequeue_expect(c, "c", 0);
}

static void
test_conn_enqueue_refuses_beyond_max_bytes_queuing_nothing(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_enqueue(c, "123456", 6, 0, NO_LIMIT, 10));
    assert_false(gw_conn_enqueue(c, "12345", 5, 0, NO_LIMIT, 10)); // 11 > 10
    assert_int_equal(c->out_count, 1);
    assert_int_equal(c->out_bytes, 6);
    assert_true(gw_conn_enqueue(c, "1234", 4, 0, NO_LIMIT, 10)); // exactly 10
    assert_int_equal(c->out_bytes, 10);
    assert_false(gw_conn_enqueue(c, "1", 1, 0, NO_LIMIT, 10));
    assert_int_equal(c->out_count, 2);
    s_dequeue_expect(c, "123456", 0);
    s_dequeue_expect(c, "1234", 0);
    assert_null(gw_conn_dequeue(c));
}

static void
test_conn_enqueue_refuses_one_frame_larger_than_max_bytes(void **state)
{
    gw_conn_t *c = *state;
    assert_false(gw_conn_enqueue(c, "0123456789a", 11, 0, NO_LIMIT, 10));
    assert_int_equal(c->out_count, 0);
    assert_null(c->out_head);
}

static void
test_conn_headroom_bytes_precede_the_payload(void **state)
{
    gw_conn_t *c = *state;
    const size_t pre = 16;
    s_enqueue(c, "payload", pre);
    assert_int_equal(c->out_bytes, 7); // headroom is not counted
    gw_out_t *f = gw_conn_dequeue(c);
    assert_non_null(f);
    assert_int_equal(f->len, 7);
    assert_memory_equal(f->data + pre, "payload", 7);
    // The headroom is writable memory of the frame (ASan would catch an overflow).
    memset(f->data, 0xAB, pre);
    assert_memory_equal(f->data + pre, "payload", 7);
    ga_free(f);
}

static void
test_conn_enqueue_copies_the_data(void **state)
{
    gw_conn_t *c = *state;
    char buf[8] = "hello";
    s_enqueue(c, buf, 4);
    memcpy(buf, "XXXXX", 5);
    s_dequeue_expect(c, "hello", 4);
}

static void
test_conn_enqueue_accepts_an_empty_frame(void **state)
{
    gw_conn_t *c = *state;
    assert_true(gw_conn_enqueue(c, "", 0, 8, 4, 4));
    assert_int_equal(c->out_count, 1);
    assert_int_equal(c->out_bytes, 0);
    gw_out_t *f = gw_conn_dequeue(c);
    assert_int_equal(f->len, 0);
    ga_free(f);
}

static void
test_conn_clear_queue_drops_every_frame(void **state)
{
    gw_conn_t *c = *state;
    for (int i = 0; i < 100; i++) {
        s_enqueue(c, "frame", 32);
    }
    assert_int_equal(c->out_count, 100);
    gw_conn_clear_queue(c);
    assert_int_equal(c->out_count, 0);
    assert_int_equal(c->out_bytes, 0);
    assert_null(c->out_head);
    assert_null(c->out_tail);
    assert_null(gw_conn_dequeue(c));
    s_enqueue(c, "again", 0);
    s_dequeue_expect(c, "again", 0);
}

static void
test_conn_destroy_frees_queue_channels_held_frames_and_params(void **state)
{
    (void) state;
    gw_conn_t *c = gw_conn_new(7, NULL, "::1");
    assert_true(gw_conn_join(c, "api:lobby", "1", 4));
    assert_true(gw_conn_join(c, "chat:x", NULL, 4));
    s_enqueue(c, "queued", 16);
    assert_true(gw_conn_hold(c, "held", 4, 4));
    c->params = ga_calloc(2, sizeof *c->params);
    c->params[0] = ga_strdup("token=abc");
    c->params[1] = ga_strdup("vsn=2.0.0");
    c->n_params = 2;
    gw_auth_identity_t id = {.user_id = ga_strdup("u")};
    gw_conn_set_identity(c, &id);
    ga_buf_append_str(&c->rx, "partial");
    gw_conn_destroy(&c); // LeakSanitizer reports anything left behind
    assert_null(c);
    gw_conn_destroy(&c); // destroying NULL is harmless
}

// --- frames held while auth is pending ---

static void
test_conn_hold_keeps_copies_in_order_up_to_max(void **state)
{
    gw_conn_t *c = *state;
    char buf[4] = "f1";
    assert_true(gw_conn_hold(c, buf, 2, 2));
    memcpy(buf, "f2", 2);
    assert_true(gw_conn_hold(c, buf, 2, 2));
    assert_false(gw_conn_hold(c, "f3", 2, 2));
    assert_int_equal(c->n_held, 2);
    gw_out_t *f = gw_conn_unhold(c);
    assert_int_equal(f->len, 2);
    assert_memory_equal(f->data, "f1", 2);
    ga_free(f);
    f = gw_conn_unhold(c);
    assert_memory_equal(f->data, "f2", 2);
    ga_free(f);
    assert_null(gw_conn_unhold(c));
    assert_int_equal(c->n_held, 0);
    assert_null(c->held_tail);
}

static void
test_conn_clear_params_frees_and_empties(void **state)
{
    gw_conn_t *c = *state;
    c->params = ga_calloc(1, sizeof *c->params);
    c->params[0] = ga_strdup("token=x");
    c->n_params = 1;
    gw_conn_clear_params(c);
    assert_null(c->params);
    assert_int_equal(c->n_params, 0);
    gw_conn_clear_params(c); // twice is harmless
}

// --- the outbound frame pool ---

// Frames that fit a block come from the pool and go back to it: after the first round trip,
// queuing costs no allocation (the same block comes back).
static void
test_outpool_reuses_released_blocks(void **state)
{
    (void) state;
    gw_outpool_t *pool = gw_outpool_new(64, 2);
    gw_conn_t *c = gw_conn_new(1, NULL, NULL);
    c->pool = pool;
    assert_true(gw_conn_enqueue(c, "hello", 5, 16, NO_LIMIT, NO_LIMIT));
    gw_out_t *first = gw_conn_dequeue(c);
    assert_int_equal(first->cap, 64);
    assert_memory_equal(first->data + 16, "hello", 5);
    gw_conn_release(c, first);
    assert_int_equal(gw_outpool_free_count(pool), 1);
    assert_true(gw_conn_enqueue(c, "again", 5, 16, NO_LIMIT, NO_LIMIT));
    assert_int_equal(gw_outpool_free_count(pool), 0);
    gw_out_t *second = gw_conn_dequeue(c);
    assert_ptr_equal(second, first);
    assert_memory_equal(second->data + 16, "again", 5);
    gw_conn_release(c, second);
    gw_conn_destroy(&c);
    gw_outpool_destroy(&pool);
    assert_null(pool);
}

// A frame larger than a block is allocated to size and freed, never kept; the pool keeps at
// most max_free blocks; clearing a queue returns its blocks.
static void
test_outpool_is_bounded_and_keeps_only_block_sized_frames(void **state)
{
    (void) state;
    gw_outpool_t *pool = gw_outpool_new(32, 2);
    gw_conn_t *c = gw_conn_new(1, NULL, NULL);
    c->pool = pool;
    char big[100];
    memset(big, 'x', sizeof big);
    assert_true(gw_conn_enqueue(c, big, sizeof big, 8, NO_LIMIT, NO_LIMIT));
    gw_out_t *f = gw_conn_dequeue(c);
    assert_int_equal(f->cap, 108);
    assert_memory_equal(f->data + 8, big, sizeof big);
    gw_conn_release(c, f);
    assert_int_equal(gw_outpool_free_count(pool), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(gw_conn_enqueue(c, "abc", 3, 8, NO_LIMIT, NO_LIMIT));
    }
    gw_conn_clear_queue(c);
    assert_int_equal(c->out_count, 0);
    assert_int_equal(gw_outpool_free_count(pool), 2); // three were freed (LeakSanitizer checks)
    gw_conn_destroy(&c);
    gw_outpool_destroy(&pool);
}

// A connection destroyed with frames queued gives them back before the pool goes.
static void
test_outpool_takes_back_the_queue_of_a_destroyed_connection(void **state)
{
    (void) state;
    gw_outpool_t *pool = gw_outpool_new(48, 8);
    gw_conn_t *c = gw_conn_new(1, NULL, NULL);
    c->pool = pool;
    for (int i = 0; i < 3; i++) {
        assert_true(gw_conn_enqueue(c, "frame", 5, 16, NO_LIMIT, NO_LIMIT));
    }
    gw_conn_destroy(&c);
    assert_int_equal(gw_outpool_free_count(pool), 3);
    gw_outpool_destroy(&pool);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_conn_new_keeps_id_handle_and_peer_address),
        cmocka_unit_test(test_conn_new_with_null_ip_has_empty_address),
        cmocka_unit_test(test_conn_new_truncates_an_overlong_ip),
        T(test_conn_set_identity_takes_over_the_strings),
        T(test_conn_join_adds_a_channel_with_a_copied_join_ref),
        T(test_conn_join_with_null_join_ref_keeps_null),
        T(test_conn_rejoin_replaces_join_ref_without_adding_a_channel),
        T(test_conn_join_refuses_beyond_max_channels),
        T(test_conn_rejoin_at_max_channels_is_allowed),
        T(test_conn_max_channels_zero_refuses_every_join),
        T(test_conn_leave_removes_only_that_channel),
        T(test_conn_leave_of_a_topic_not_joined_is_false),
        T(test_conn_leave_frees_a_slot_under_the_limit),
        T(test_conn_dequeue_returns_frames_in_fifo_order),
        T(test_conn_queue_works_again_after_being_emptied),
        T(test_conn_enqueue_refuses_at_max_count_queuing_nothing),
        T(test_conn_enqueue_refuses_beyond_max_bytes_queuing_nothing),
        T(test_conn_enqueue_refuses_one_frame_larger_than_max_bytes),
        T(test_conn_headroom_bytes_precede_the_payload),
        T(test_conn_enqueue_copies_the_data),
        T(test_conn_enqueue_accepts_an_empty_frame),
        T(test_conn_clear_queue_drops_every_frame),
        cmocka_unit_test(test_conn_destroy_frees_queue_channels_held_frames_and_params),
        T(test_conn_hold_keeps_copies_in_order_up_to_max),
        T(test_conn_clear_params_frees_and_empties),
        cmocka_unit_test(test_outpool_reuses_released_blocks),
        cmocka_unit_test(test_outpool_is_bounded_and_keeps_only_block_sized_frames),
        cmocka_unit_test(test_outpool_takes_back_the_queue_of_a_destroyed_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
