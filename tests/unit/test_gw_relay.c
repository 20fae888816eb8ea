// SPDX-License-Identifier: MIT
// The gateway's relay member table (gateway/gw_relay.c): subscriptions follow local members,
// messages reach active and muted members on their channel (never pending ones), repeats and
// messages from before a join are dropped, and a gap in the sequence numbers is counted and
// told to the receiving members before the message that revealed it.
#include "gw_relay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    int subs;            // subscriptions held
    char last_sub[64];   // last topic (un)subscribed
    int n;               // deliveries
    uint64_t conn[32];   // to whom
    char topic[32][32];  // on which channel
    gw_kind_t kind[32];  // what
} rec_t;

static void
s_sub(void *arg, const char *topic, bool subscribe)
{
    rec_t *r = arg;
    r->subs += subscribe ? 1 : -1;
    snprintf(r->last_sub, sizeof r->last_sub, "%s", topic);
}

static void
s_deliver(void *arg, uint64_t conn, const char *topic, const gw_response_t *resp,
          const char *json, size_t len)
{
    rec_t *r = arg;
    assert_true(len > 0 && json[0] == '{' && json[len - 1] == '}');
    r->conn[r->n] = conn;
    snprintf(r->topic[r->n], sizeof r->topic[0], "%s", topic);
    r->kind[r->n] = resp->kind;
    r->n++;
}

static void
s_event(gw_relay_t *relay, ga_arena_t *a, const char *group, const char *user, int64_t conn,
        const char *topic, const char *state, int64_t seq)
{
    ga_value_t ev = ga_map(a, 7);
    ga_map_put(&ev, a, "group_id", ga_str(group));
    ga_map_put(&ev, a, "user_id", ga_str(user));
    ga_map_put(&ev, a, "conn", ga_int(conn));
    ga_map_put(&ev, a, "topic", ga_str(topic));
    ga_map_put(&ev, a, "seq", ga_int(seq));
    if (state) {
        ga_map_put(&ev, a, "state", ga_str(state));
    } else {
        ga_map_put(&ev, a, "removed", ga_bool(true));
    }
    gw_relay_on_event(relay, &ev);
}

static void
s_msg(gw_relay_t *relay, ga_arena_t *a, const char *group, int64_t seq)
{
    ga_value_t m = ga_map(a, 7);
    ga_map_put(&m, a, "group_id", ga_str(group));
    ga_map_put(&m, a, "seq", ga_int(seq));
    ga_map_put(&m, a, "from_user_id", ga_str("u1"));
    ga_map_put(&m, a, "message", ga_str("hi"));
    ga_map_put(&m, a, "timestamp", ga_str("2025-01-15T10:30:00Z"));
    ga_map_put(&m, a, "request_id", ga_str("r1"));
    char topic[64];
    snprintf(topic, sizeof topic, "r.%s", group);
    gw_relay_on_message(relay, (const uint8_t *) topic, strlen(topic), &m);
}

static void
test_relay_delivers_by_state_and_reports_gaps(void **state)
{
    (void) state;
    rec_t r = {0};
    ga_arena_t *a = ga_arena_new(4096);
    gw_relay_t *relay = gw_relay_new(s_sub, &r);
    gw_relay_on_deliver(relay, s_deliver, &r);
    for (uint64_t c = 1; c <= 3; c++) {
        gw_relay_note_conn(relay, c);
    }
    // Joined when the group had published 5 messages: those are not ours.
    s_event(relay, a, "g", "u1", 1, "chat:g", "active", 5);
    assert_int_equal(r.subs, 1);
    assert_string_equal(r.last_sub, "r.g");
    s_event(relay, a, "g", "u2", 2, "api:lobby", "muted", 5);
    s_event(relay, a, "g", "u3", 3, "chat:g", "pending", 5);
    assert_int_equal(r.subs, 1); // one subscription per group
    s_msg(relay, a, "g", 5);     // from before the join
    assert_int_equal(r.n, 0);
    s_msg(relay, a, "g", 6);
    assert_int_equal(r.n, 2); // active and muted, not pending
    assert_int_equal(r.conn[0], 1);
    assert_string_equal(r.topic[0], "chat:g");
    assert_int_equal(r.conn[1], 2);
    assert_string_equal(r.topic[1], "api:lobby");
    assert_int_equal(r.kind[0], GW_KIND_RELAY);
    s_msg(relay, a, "g", 6); // a repeat
    assert_int_equal(r.n, 2);
    // A message of another group whose id starts like ours is not ours.
    s_msg(relay, a, "g2", 7);
    assert_int_equal(r.n, 2);
    // 7 and 8 lost: a gap notice to each receiving member, then the message.
    s_msg(relay, a, "g", 9);
    assert_int_equal(r.n, 6);
    assert_int_equal(r.kind[2], GW_KIND_GAP);
    assert_int_equal(r.kind[3], GW_KIND_GAP);
    assert_int_equal(r.kind[4], GW_KIND_RELAY);
    assert_int_equal(gw_relay_gaps(relay), 1);
    assert_int_equal(gw_relay_missed(relay), 2);
    assert_int_equal(gw_relay_delivered(relay), 4);
    // Accepted: u3 receives from now on.
    s_event(relay, a, "g", "u3", 3, "chat:g", "active", 9);
    s_msg(relay, a, "g", 10);
    assert_int_equal(r.n, 9);
    // Members leave (event, a closed connection, a left channel): the last one unsubscribes.
    s_event(relay, a, "g", "u1", 1, "chat:g", NULL, 10);
    assert_true(gw_relay_drop(relay, 2, NULL));
    assert_false(gw_relay_drop(relay, 2, NULL)); // forgotten: nothing more to tell the broker
    assert_int_equal(r.subs, 1);
    assert_true(gw_relay_drop(relay, 3, "api:lobby")); // not through that channel: stays
    assert_int_equal(gw_relay_group_count(relay), 1);
    assert_true(gw_relay_drop(relay, 3, "chat:g"));
    assert_int_equal(r.subs, 0);
    assert_string_equal(r.last_sub, "r.g");
    assert_int_equal(gw_relay_group_count(relay), 0);
    // An event for a connection that already closed adds nothing.
    s_event(relay, a, "g", "u9", 9, "chat:g", "active", 10);
    assert_int_equal(gw_relay_group_count(relay), 0);
    gw_relay_destroy(&relay);
    ga_arena_destroy(&a);
}

// A member cut off during a delivery (its queue was full) drops its memberships from inside the
// delivery loop: the others still get the message, and the drop happens once the loop is done.
static gw_relay_t *s_relay;
static void
s_deliver_and_cut(void *arg, uint64_t conn, const char *topic, const gw_response_t *resp,
                  const char *json, size_t len)
{
    s_deliver(arg, conn, topic, resp, json, len);
    if (conn == 1) {
        assert_true(gw_relay_drop(s_relay, 1, NULL));
    }
}

static void
test_relay_member_cut_off_during_delivery(void **state)
{
    (void) state;
    rec_t r = {0};
    ga_arena_t *a = ga_arena_new(4096);
    s_relay = gw_relay_new(s_sub, &r);
    gw_relay_on_deliver(s_relay, s_deliver_and_cut, &r);
    for (uint64_t c = 1; c <= 3; c++) {
        gw_relay_note_conn(s_relay, c);
        s_event(s_relay, a, "g", c == 1 ? "u1" : c == 2 ? "u2" : "u3", (int64_t) c, "chat:g",
                "active", 0);
    }
    s_msg(s_relay, a, "g", 1);
    assert_int_equal(r.n, 3);
    s_msg(s_relay, a, "g", 2);
    assert_int_equal(r.n, 5); // conn 1 is gone
    assert_int_equal(r.conn[3], 2);
    assert_int_equal(r.conn[4], 3);
    gw_relay_destroy(&s_relay);
    ga_arena_destroy(&a);
}

static void
test_relay_builtins(void **state)
{
    (void) state;
    assert_string_equal(gw_relay_op("chat_service", "send_message"), "send");
    assert_string_equal(gw_relay_op("chat_service", "group_info"), "info");
    assert_null(gw_relay_op("chat_service", "nope"));
    assert_null(gw_relay_op("user_service", "send_message"));
    gw_pipeline_config_t cfg = {0};
    gw_pipeline_t *p = gw_pipeline_new(&cfg);
    gw_relay_add_builtins(p);
    gw_identity_t who = {.user_id = "u1", .ip = "127.0.0.1"};
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t args = ga_map(a, 2);
    ga_map_put(&args, a, "group_id", ga_str("g"));
    ga_map_put(&args, a, "message", ga_str("hi"));
    ga_value_t payload = ga_map(a, 4);
    ga_map_put(&payload, a, "request_id", ga_str("r"));
    ga_map_put(&payload, a, "service", ga_str("chat_service"));
    ga_map_put(&payload, a, "request_type", ga_str("send_message"));
    ga_map_put(&payload, a, "args", args);
    gw_call_t call;
    gw_response_t refusal;
    assert_int_equal(gw_pipeline_prepare(p, &who, &payload, a, &call, &refusal), GA_OK);
    assert_string_equal(call.version, "1.0.0");
    // any_authenticated: an anonymous caller is refused.
    gw_identity_t anon = {.ip = "127.0.0.1"};
    assert_int_not_equal(gw_pipeline_prepare(p, &anon, &payload, a, &call, &refusal), GA_OK);
    // A snapshot from the broker leaves the built-ins in place.
    ga_value_t snap = ga_map(a, 1);
    ga_map_put(&snap, a, "functions", ga_array(a, 0));
    gw_pipeline_apply(p, &snap, true);
    assert_int_equal(gw_pipeline_prepare(p, &who, &payload, a, &call, &refusal), GA_OK);
    gw_pipeline_destroy(&p);
    ga_arena_destroy(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_delivers_by_state_and_reports_gaps),
        cmocka_unit_test(test_relay_member_cut_off_during_delivery),
        cmocka_unit_test(test_relay_builtins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
