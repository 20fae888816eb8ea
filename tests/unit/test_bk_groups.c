// SPDX-License-Identifier: MIT
// The relay group registry (broker/bk_groups.c): the whole permission matrix as a table (every
// action x group type x the caller's standing), then creation errors, the bounds, joining again,
// and the removal of a connection's or a gateway's members.
#include "bk_groups.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

// The caller's standing in the group before the action.
enum { NONE, PENDING, ACTIVE, MUTED, ADMIN, N_STANDINGS };
static const char *const s_standing_names[] = {"none", "pending", "active", "muted", "admin"};

typedef enum { JOIN, LEAVE, ACCEPT, MUTE, UNMUTE, SEND, RECEIVE, INFO, DELETE } action_t;
static const char *const s_action_names[] = {"join", "leave", "accept", "mute", "unmute",
                                             "send", "receive", "info", "delete"};

#define OK BK_GROUPS_OK
#define NF BK_GROUPS_NOT_FOUND
#define NM BK_GROUPS_NOT_MEMBER
#define PE BK_GROUPS_PENDING
#define MU BK_GROUPS_MUTED
#define NA BK_GROUPS_NOT_ADMIN
#define WT BK_GROUPS_WRONG_TYPE
#define AM BK_GROUPS_ALREADY_MEMBER
#define NO BK_GROUPS_NOT_MEMBER // RECEIVE: does not receive

typedef struct {
    action_t action;
    bk_group_type_t type;
    bk_groups_rc_t expect[N_STANDINGS]; // none, pending, active, muted, admin
} row_t;

static const row_t s_matrix[] = {
    // join from another connection: public -> active, private/strict -> pending (checked below)
    {JOIN, BK_GROUP_PUBLIC, {OK, AM, AM, AM, AM}},
    {JOIN, BK_GROUP_PRIVATE, {OK, AM, AM, AM, AM}},
    {JOIN, BK_GROUP_STRICT_PRIVATE, {OK, AM, AM, AM, AM}},
    {LEAVE, BK_GROUP_PUBLIC, {NM, OK, OK, OK, OK}},
    {LEAVE, BK_GROUP_PRIVATE, {NM, OK, OK, OK, OK}},
    {LEAVE, BK_GROUP_STRICT_PRIVATE, {NM, OK, OK, OK, OK}},
    // accept a pending member: private any active member, strict_private the admin only
    {ACCEPT, BK_GROUP_PUBLIC, {NM, PE, WT, WT, WT}},
    {ACCEPT, BK_GROUP_PRIVATE, {NM, PE, OK, MU, OK}},
    {ACCEPT, BK_GROUP_STRICT_PRIVATE, {NM, PE, NA, NA, OK}},
    // mute an active member / unmute a muted one: strict_private only, the admin only
    {MUTE, BK_GROUP_PUBLIC, {NM, PE, WT, WT, WT}},
    {MUTE, BK_GROUP_PRIVATE, {NM, PE, WT, WT, WT}},
    {MUTE, BK_GROUP_STRICT_PRIVATE, {NM, PE, NA, NA, OK}},
    {UNMUTE, BK_GROUP_PUBLIC, {NM, PE, WT, WT, WT}},
    {UNMUTE, BK_GROUP_PRIVATE, {NM, PE, WT, WT, WT}},
    {UNMUTE, BK_GROUP_STRICT_PRIVATE, {NM, PE, NA, NA, OK}},
    // send: active members, not muted
    {SEND, BK_GROUP_PUBLIC, {NM, PE, OK, MU, OK}},
    {SEND, BK_GROUP_PRIVATE, {NM, PE, OK, MU, OK}},
    {SEND, BK_GROUP_STRICT_PRIVATE, {NM, PE, OK, MU, OK}},
    // receive: active and muted, never pending
    {RECEIVE, BK_GROUP_PUBLIC, {NO, NO, OK, OK, OK}},
    {RECEIVE, BK_GROUP_PRIVATE, {NO, NO, OK, OK, OK}},
    {RECEIVE, BK_GROUP_STRICT_PRIVATE, {NO, NO, OK, OK, OK}},
    {INFO, BK_GROUP_PUBLIC, {NM, OK, OK, OK, OK}},
    {INFO, BK_GROUP_PRIVATE, {NM, OK, OK, OK, OK}},
    {INFO, BK_GROUP_STRICT_PRIVATE, {NM, OK, OK, OK, OK}},
    {DELETE, BK_GROUP_PUBLIC, {NM, NA, NA, NA, OK}},
    {DELETE, BK_GROUP_PRIVATE, {NM, NA, NA, NA, OK}},
    {DELETE, BK_GROUP_STRICT_PRIVATE, {NM, NA, NA, NA, OK}},
};

static const bk_where_t s_gw_a = {.gateway = "aa", .conn = 1, .topic = "api:lobby"};

// Group "g" of `type`, created by "admin"; "target" is the member an accept, mute or unmute acts
// on (pending, active or muted as the action needs); "caller" holds `standing`. States are set
// directly so that every cell of the matrix is reached, possible or not through joins alone.
static bk_groups_t *
s_setup(bk_group_type_t type, int standing, action_t action, const char **caller)
{
    bk_groups_t *gs = bk_groups_new(16, 16);
    assert_int_equal(bk_groups_create(gs, "g", type, "admin", &s_gw_a), OK);
    bk_group_t *g = bk_groups_find(gs, "g");
    bk_member_state_t st;
    bool moved;
    bk_where_t w = {.gateway = "bb", .conn = 2, .topic = "chat:g"};
    assert_int_equal(bk_groups_join(gs, "g", "target", &w, &st, &moved), OK);
    bk_group_member(g, "target")->state = action == ACCEPT  ? BK_MEMBER_PENDING
                                          : action == UNMUTE ? BK_MEMBER_MUTED
                                                             : BK_MEMBER_ACTIVE;
    *caller = standing == ADMIN ? "admin" : "caller";
    if (standing != NONE && standing != ADMIN) {
        w.conn = 3;
        assert_int_equal(bk_groups_join(gs, "g", "caller", &w, &st, &moved), OK);
        bk_group_member(g, "caller")->state = standing == PENDING ? BK_MEMBER_PENDING
                                              : standing == MUTED ? BK_MEMBER_MUTED
                                                                  : BK_MEMBER_ACTIVE;
    }
    return gs;
}

static bk_groups_rc_t
s_run(bk_groups_t *gs, action_t action, const char *caller)
{
    bk_member_state_t st;
    bool moved;
    bk_where_t w = {.gateway = "cc", .conn = 9, .topic = "chat:g"};
    bk_group_t *gone = NULL;
    bk_groups_rc_t rc = OK;
    bk_group_t *g = bk_groups_find(gs, "g");
    switch (action) {
    case JOIN:
        return bk_groups_join(gs, "g", caller, &w, &st, &moved);
    case LEAVE:
        return bk_groups_leave(gs, "g", caller);
    case ACCEPT:
        return bk_groups_accept(gs, "g", caller, "target");
    case MUTE:
        return bk_groups_mute(gs, "g", caller, "target", true);
    case UNMUTE:
        return bk_groups_mute(gs, "g", caller, "target", false);
    case SEND:
        return bk_groups_can_send(gs, "g", caller);
    case RECEIVE: {
        bk_member_t *m = bk_group_member(g, caller);
        return m && m->state != BK_MEMBER_PENDING ? OK : NO;
    }
    case INFO:
        return bk_groups_can_view(gs, "g", caller);
    case DELETE:
        rc = bk_groups_delete(gs, "g", caller, &gone);
        bk_group_free(&gone);
        return rc;
    }
    return NF;
}

static void
test_groups_permission_matrix(void **state)
{
    (void) state;
    int failures = 0;
    for (size_t r = 0; r < sizeof s_matrix / sizeof s_matrix[0]; r++) {
        const row_t *row = &s_matrix[r];
        for (int s = 0; s < N_STANDINGS; s++) {
            const char *caller;
            bk_groups_t *gs = s_setup(row->type, s, row->action, &caller);
            bk_groups_rc_t rc = s_run(gs, row->action, caller);
            if (rc != row->expect[s]) {
                print_error("%s %s as %s: got \"%s\", expected \"%s\"\n",
                            s_action_names[row->action], bk_group_type_name(row->type),
                            s_standing_names[s], bk_groups_strerror(rc),
                            bk_groups_strerror(row->expect[s]));
                failures++;
            }
            bk_group_t *g = bk_groups_find(gs, "g");
            // What a successful action changed.
            if (rc == OK && row->action == JOIN) {
                bk_member_t *m = bk_group_member(g, caller);
                assert_non_null(m);
                assert_int_equal(m->state, row->type == BK_GROUP_PUBLIC ? BK_MEMBER_ACTIVE
                                                                        : BK_MEMBER_PENDING);
                assert_string_equal(m->gateway, "cc");
                assert_string_equal(m->topic, "chat:g");
            }
            if (rc == OK && (row->action == ACCEPT || row->action == UNMUTE)) {
                assert_int_equal(bk_group_member(g, "target")->state, BK_MEMBER_ACTIVE);
            }
            if (rc == OK && row->action == MUTE) {
                assert_int_equal(bk_group_member(g, "target")->state, BK_MEMBER_MUTED);
            }
            if (rc == OK && row->action == LEAVE) {
                assert_null(bk_group_member(g, caller));
            }
            if (rc == OK && row->action == DELETE) {
                assert_null(g);
            } else {
                assert_non_null(g);
            }
            bk_groups_destroy(&gs);
        }
    }
    assert_int_equal(failures, 0);
}

static void
test_groups_missing_group_and_creation_errors(void **state)
{
    (void) state;
    bk_groups_t *gs = bk_groups_new(2, 3);
    bk_member_state_t st;
    bool moved;
    bk_group_t *gone;
    assert_int_equal(bk_groups_join(gs, "x", "u", &s_gw_a, &st, &moved), NF);
    assert_int_equal(bk_groups_leave(gs, "x", "u"), NF);
    assert_int_equal(bk_groups_accept(gs, "x", "u", "v"), NF);
    assert_int_equal(bk_groups_mute(gs, "x", "u", "v", true), NF);
    assert_int_equal(bk_groups_can_send(gs, "x", "u"), NF);
    assert_int_equal(bk_groups_can_view(gs, "x", "u"), NF);
    assert_int_equal(bk_groups_delete(gs, "x", "u", &gone), NF);
    assert_int_equal(bk_groups_create(gs, "", BK_GROUP_PUBLIC, "u", &s_gw_a), BK_GROUPS_INVALID);
    assert_int_equal(bk_groups_create(gs, "g", BK_GROUP_PUBLIC, "", &s_gw_a), BK_GROUPS_INVALID);
    char long_id[BK_GROUP_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(bk_groups_create(gs, long_id, BK_GROUP_PUBLIC, "u", &s_gw_a),
                     BK_GROUPS_INVALID);
    assert_int_equal(bk_groups_create(gs, "g1", BK_GROUP_PRIVATE, "u", &s_gw_a), OK);
    assert_int_equal(bk_groups_create(gs, "g1", BK_GROUP_PUBLIC, "v", &s_gw_a), BK_GROUPS_EXISTS);
    assert_int_equal(bk_groups_create(gs, "g2", BK_GROUP_PUBLIC, "u", &s_gw_a), OK);
    // Bounds: max_groups 2, max_members 3 (the creator counts).
    assert_int_equal(bk_groups_create(gs, "g3", BK_GROUP_PUBLIC, "u", &s_gw_a),
                     BK_GROUPS_TOO_MANY_GROUPS);
    bk_where_t w = {.gateway = "bb", .conn = 5, .topic = "chat:g2"};
    assert_int_equal(bk_groups_join(gs, "g2", "v1", &w, &st, &moved), OK);
    assert_int_equal(bk_groups_join(gs, "g2", "v2", &w, &st, &moved), OK);
    assert_int_equal(bk_groups_join(gs, "g2", "v3", &w, &st, &moved), BK_GROUPS_TOO_MANY_MEMBERS);
    assert_int_equal(bk_group_receivers(bk_groups_find(gs, "g2")), 3);
    // The admin joining its private group again (after leaving) is active at once.
    assert_int_equal(bk_groups_leave(gs, "g1", "u"), OK);
    assert_int_equal(bk_groups_join(gs, "g1", "u", &w, &st, &moved), OK);
    assert_int_equal(st, BK_MEMBER_ACTIVE);
    // Accept/mute targets that are not members or are in the wrong state.
    assert_int_equal(bk_groups_accept(gs, "g1", "u", "nobody"), BK_GROUPS_TARGET_NOT_MEMBER);
    assert_int_equal(bk_groups_accept(gs, "g1", "u", "u"), BK_GROUPS_NOT_PENDING);
    assert_int_equal(bk_groups_create(gs, "g1", BK_GROUP_PUBLIC, "u", &s_gw_a), BK_GROUPS_EXISTS);
    assert_int_equal(bk_groups_delete(gs, "g1", "u", &gone), OK);
    assert_non_null(gone);
    assert_string_equal(gone->id, "g1");
    bk_group_free(&gone);
    assert_int_equal(bk_groups_count(gs), 1);
    assert_int_equal(bk_groups_create(gs, "s", BK_GROUP_STRICT_PRIVATE, "a", &s_gw_a), OK);
    assert_int_equal(bk_groups_join(gs, "s", "p", &w, &st, &moved), OK);
    assert_int_equal(st, BK_MEMBER_PENDING);
    assert_int_equal(bk_groups_mute(gs, "s", "a", "p", true), BK_GROUPS_TARGET_PENDING);
    assert_int_equal(bk_groups_mute(gs, "s", "a", "nobody", true), BK_GROUPS_TARGET_NOT_MEMBER);
    bk_groups_destroy(&gs);
}

static void
test_groups_join_again_moves_the_channel_or_is_refused(void **state)
{
    (void) state;
    bk_groups_t *gs = bk_groups_new(4, 4);
    bk_member_state_t st;
    bool moved;
    assert_int_equal(bk_groups_create(gs, "g", BK_GROUP_PRIVATE, "a", &s_gw_a), OK);
    bk_where_t lobby = {.gateway = "bb", .conn = 7, .topic = "api:lobby"};
    assert_int_equal(bk_groups_join(gs, "g", "u", &lobby, &st, &moved), OK);
    assert_false(moved);
    // Same connection, another channel (joining chat:g after join_group): moved, state kept.
    bk_where_t chat = {.gateway = "bb", .conn = 7, .topic = "chat:g"};
    assert_int_equal(bk_groups_join(gs, "g", "u", &chat, &st, &moved), OK);
    assert_true(moved);
    assert_int_equal(st, BK_MEMBER_PENDING);
    assert_string_equal(bk_group_member(bk_groups_find(gs, "g"), "u")->topic, "chat:g");
    // Same channel again, or another connection: already a member.
    assert_int_equal(bk_groups_join(gs, "g", "u", &chat, &st, &moved), AM);
    bk_where_t other = {.gateway = "cc", .conn = 7, .topic = "chat:g"};
    assert_int_equal(bk_groups_join(gs, "g", "u", &other, &st, &moved), AM);
    bk_groups_destroy(&gs);
}

// A member a worker added lives on no connection (offline): its user joining through a
// connection attaches it there with its state; the worker joining it again is refused; dropping
// a gateway's or the detached (restored) members never takes it.
static void
test_groups_offline_member_attaches_on_join(void **state)
{
    (void) state;
    bk_groups_t *gs = bk_groups_new(4, 4);
    bk_member_state_t st;
    bool moved;
    bk_where_t offline = {.gateway = BK_WHERE_OFFLINE, .conn = 0, .topic = BK_WHERE_OFFLINE};
    assert_int_equal(bk_groups_create(gs, "g", BK_GROUP_PRIVATE, "bot", &offline), OK);
    assert_int_equal(bk_groups_join(gs, "g", "u", &offline, &st, &moved), OK);
    assert_int_equal(st, BK_MEMBER_PENDING);
    assert_int_equal(bk_groups_join(gs, "g", "u", &offline, &st, &moved), AM);
    assert_int_equal(bk_groups_accept(gs, "g", "bot", "u"), OK);
    assert_int_equal(bk_groups_drop_where(gs, "", 0, NULL, NULL, NULL), 0);
    bk_where_t chat = {.gateway = "bb", .conn = 9, .topic = "chat:g"};
    assert_int_equal(bk_groups_join(gs, "g", "u", &chat, &st, &moved), OK);
    assert_true(moved);
    assert_int_equal(st, BK_MEMBER_ACTIVE);
    bk_member_t *m = bk_group_member(bk_groups_find(gs, "g"), "u");
    assert_string_equal(m->gateway, "bb");
    assert_int_equal(m->conn, 9);
    assert_string_equal(m->topic, "chat:g");
    // Now it lives on that connection: from elsewhere (a worker, another gateway) it is a member.
    assert_int_equal(bk_groups_join(gs, "g", "u", &offline, &st, &moved), AM);
    assert_int_equal(bk_groups_drop_where(gs, "bb", 0, NULL, NULL, NULL), 1);
    assert_non_null(bk_group_member(bk_groups_find(gs, "g"), "bot"));
    bk_groups_destroy(&gs);
}

static int s_dropped;
static void
s_count_drop(void *arg, const bk_group_t *g, const bk_member_t *m)
{
    (void) arg;
    (void) g;
    (void) m;
    s_dropped++;
}

static void
test_groups_drop_connection_channel_and_gateway(void **state)
{
    (void) state;
    bk_groups_t *gs = bk_groups_new(4, 8);
    bk_member_state_t st;
    bool moved;
    bk_where_t a1 = {.gateway = "aa", .conn = 1, .topic = "chat:g1"};
    bk_where_t a1l = {.gateway = "aa", .conn = 1, .topic = "api:lobby"};
    bk_where_t a2 = {.gateway = "aa", .conn = 2, .topic = "chat:g1"};
    bk_where_t b1 = {.gateway = "bb", .conn = 1, .topic = "chat:g1"};
    assert_int_equal(bk_groups_create(gs, "g1", BK_GROUP_PUBLIC, "u1", &a1), OK);
    assert_int_equal(bk_groups_create(gs, "g2", BK_GROUP_PUBLIC, "u1", &a1l), OK);
    assert_int_equal(bk_groups_join(gs, "g1", "u2", &a2, &st, &moved), OK);
    assert_int_equal(bk_groups_join(gs, "g1", "u3", &b1, &st, &moved), OK);
    assert_int_equal(bk_groups_join(gs, "g2", "u3", &b1, &st, &moved), OK);
    // A channel of one connection: only the membership joined through it.
    assert_int_equal(bk_groups_drop_where(gs, "aa", 1, "api:lobby", s_count_drop, NULL), 1);
    assert_null(bk_group_member(bk_groups_find(gs, "g2"), "u1"));
    assert_non_null(bk_group_member(bk_groups_find(gs, "g1"), "u1"));
    // A connection (same connection id on another gateway untouched).
    assert_int_equal(bk_groups_drop_where(gs, "aa", 1, NULL, s_count_drop, NULL), 1);
    assert_non_null(bk_group_member(bk_groups_find(gs, "g1"), "u3"));
    // A whole gateway: every member there, in every group; the groups stay.
    assert_int_equal(bk_groups_drop_where(gs, "bb", 0, NULL, s_count_drop, NULL), 2);
    assert_int_equal(s_dropped, 4);
    assert_int_equal(bk_groups_find(gs, "g1")->n_members, 1);
    assert_int_equal(bk_groups_find(gs, "g2")->n_members, 0);
    assert_int_equal(bk_groups_count(gs), 2);
    bk_groups_destroy(&gs);
}

static void
test_groups_restore_and_attach(void **state)
{
    (void) state;
    bk_groups_t *gs = bk_groups_new(4, 4);
    assert_false(bk_groups_dirty(gs));
    assert_int_equal(bk_groups_restore_group(gs, "g", BK_GROUP_PRIVATE, "a", 42), OK);
    assert_int_equal(bk_groups_restore_group(gs, "g", BK_GROUP_PRIVATE, "a", 0), BK_GROUPS_EXISTS);
    assert_int_equal(bk_groups_restore_member(gs, "g", "a", BK_MEMBER_ACTIVE), OK);
    assert_int_equal(bk_groups_restore_member(gs, "g", "p", BK_MEMBER_PENDING), OK);
    assert_int_equal(bk_groups_restore_member(gs, "x", "p", BK_MEMBER_PENDING), NF);
    assert_int_equal(bk_groups_find(gs, "g")->seq, 42);
    bk_groups_saved(gs);
    bk_member_t *m = NULL;
    bk_where_t w = {.gateway = "bb", .conn = 3, .topic = "chat:g"};
    assert_int_equal(bk_groups_attach(gs, "g", "p", &w, &m), OK);
    assert_string_equal(m->gateway, "bb");
    assert_int_equal(m->state, BK_MEMBER_PENDING); // the saved state, whatever is claimed
    assert_true(bk_groups_dirty(gs));
    assert_int_equal(bk_groups_attach(gs, "g", "p", &w, &m), OK); // again: already there
    bk_where_t other = {.gateway = "cc", .conn = 3, .topic = "chat:g"};
    assert_int_equal(bk_groups_attach(gs, "g", "p", &other, &m), AM);
    assert_int_equal(bk_groups_attach(gs, "g", "nobody", &w, &m), NM);
    // Unclaimed members go: the detached ones only.
    assert_int_equal(bk_groups_drop_where(gs, "", 0, NULL, NULL, NULL), 1);
    assert_null(bk_group_member(bk_groups_find(gs, "g"), "a"));
    assert_non_null(bk_group_member(bk_groups_find(gs, "g"), "p"));
    // The admin is still the admin when it joins again.
    bk_member_state_t st;
    bool moved;
    assert_int_equal(bk_groups_join(gs, "g", "a", &w, &st, &moved), OK);
    assert_int_equal(st, BK_MEMBER_ACTIVE);
    bk_groups_destroy(&gs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_permission_matrix),
        cmocka_unit_test(test_groups_missing_group_and_creation_errors),
        cmocka_unit_test(test_groups_join_again_moves_the_channel_or_is_refused),
        cmocka_unit_test(test_groups_offline_member_attaches_on_join),
        cmocka_unit_test(test_groups_drop_connection_channel_and_gateway),
        cmocka_unit_test(test_groups_restore_and_attach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
