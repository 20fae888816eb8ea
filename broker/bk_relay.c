// SPDX-License-Identifier: MIT
// Relay groups at the broker (docs/protocol.md, "Relay groups"): a gateway's GROUP operations
// are checked against the registry (broker/bk_groups.c) on behalf of the caller the gateway
// names, answered with GROUP_REPLY, and every membership change is told to the gateway where
// that member lives (GROUP_EVENT) so it knows whom to deliver to. A message is published once
// on the stream proxy's XPUB under "r.<group>" with the group's next sequence number; each
// gateway with members of the group subscribes to that topic.
#include "bk_internal.h"

#include "bk_groups.h"
#include "ga_clock.h"
#include "ga_log.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BK_RELAY_MESSAGE_MAX 2000 // bytes of a relay message (the send_message config's limit)

// The registry's key for a gateway: the hex routing id, as in bk_broker_t.gws.
static void
s_gateway_key(const uint8_t *id, size_t id_len, char *key)
{
    for (size_t i = 0; i < id_len; i++) {
        snprintf(key + 2 * i, 3, "%02x", id[i]);
    }
    key[2 * id_len] = '\0';
}

static bk_groups_t *
s_groups(bk_broker_t *self)
{
    if (self->groups == NULL) {
        // Unset (0) in a program that embeds the broker: the defaults of bk_main.c.
        int64_t groups = self->cfg->max_groups > 0 ? self->cfg->max_groups : 10000;
        int64_t members = self->cfg->max_group_members > 0 ? self->cfg->max_group_members : 10000;
        self->groups = bk_groups_new((size_t) groups, (size_t) members);
    }
    return self->groups;
}

// Tells the gateway where member `m` of `g` lives what its state now is (or that it is gone).
static void
s_event(bk_broker_t *self, const bk_group_t *g, const bk_member_t *m, bool removed)
{
    bk_gateway_t *gw = zhash_lookup(self->gws, m->gateway);
    if (gw == NULL) {
        return; // gone: its members are removed when it is declared dead
    }
    ga_arena_t *a = self->arena;
    ga_value_t ev = ga_map(a, 7);
    ga_map_put(&ev, a, "group_id", ga_str(g->id));
    ga_map_put(&ev, a, "user_id", ga_str(m->user_id));
    ga_map_put(&ev, a, "conn", ga_int((int64_t) m->conn));
    ga_map_put(&ev, a, "topic", ga_str(m->topic));
    ga_map_put(&ev, a, "seq", ga_int((int64_t) g->seq));
    if (removed) {
        ga_map_put(&ev, a, "removed", ga_bool(true));
    } else {
        ga_map_put(&ev, a, "state", ga_str(bk_member_state_name(m->state)));
    }
    bk_send(self, self->gateways, gw->id, gw->id_len, GA_CMD_GROUP_EVENT, &ev);
}

static void
s_reply_error(bk_broker_t *self, const ga_proto_msg_t *msg, int64_t id, const char *error,
              bool can_retry)
{
    if (id <= 0) {
        return;
    }
    ga_arena_t *a = self->arena;
    ga_value_t r = ga_map(a, 5);
    ga_map_put(&r, a, "id", ga_int(id));
    ga_map_put(&r, a, "ok", ga_bool(false));
    ga_map_put(&r, a, "error", ga_str(error));
    ga_map_put(&r, a, "code", ga_int(GA_EINVAL));
    ga_map_put(&r, a, "can_retry", ga_bool(can_retry));
    bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_GROUP_REPLY, &r);
}

static void
s_reply_ok(bk_broker_t *self, const ga_proto_msg_t *msg, int64_t id, const ga_value_t *result)
{
    if (id <= 0) {
        return;
    }
    ga_arena_t *a = self->arena;
    ga_value_t r = ga_map(a, 3);
    ga_map_put(&r, a, "id", ga_int(id));
    ga_map_put(&r, a, "ok", ga_bool(true));
    ga_map_put(&r, a, "result", *result);
    bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_GROUP_REPLY, &r);
}

// {group_id, group_type, members: [{user_id, state, admin}]}
static ga_value_t
s_info(bk_broker_t *self, const bk_group_t *g)
{
    ga_arena_t *a = self->arena;
    ga_value_t members = ga_array(a, (uint32_t) g->n_members);
    for (size_t i = 0; i < g->n_members; i++) {
        const bk_member_t *m = &g->members[i];
        ga_value_t e = ga_map(a, 3);
        ga_map_put(&e, a, "user_id", ga_str(m->user_id));
        ga_map_put(&e, a, "state", ga_str(bk_member_state_name(m->state)));
        ga_map_put(&e, a, "admin", ga_bool(strcmp(m->user_id, g->admin) == 0));
        ga_array_push(&members, a, e);
    }
    ga_value_t r = ga_map(a, 3);
    ga_map_put(&r, a, "group_id", ga_str(g->id));
    ga_map_put(&r, a, "group_type", ga_str(bk_group_type_name(g->type)));
    ga_map_put(&r, a, "members", members);
    return r;
}

// ISO 8601 UTC, seconds: "2025-01-15T10:30:00Z".
static void
s_timestamp(char *buf, size_t len)
{
    time_t t = (time_t) (ga_clock_wall_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// Publishes `message` from `from` to group `g` under its next sequence number. False when the
// proxy could not take it (a gateway's queue is full): nothing was sent, the number is unused.
static bool
s_publish(bk_broker_t *self, bk_group_t *g, const char *from, const char *message,
          const char *request_id, const char *origin)
{
    ga_arena_t *a = self->arena;
    char ts[32];
    s_timestamp(ts, sizeof ts);
    ga_value_t m = ga_map(a, 7);
    ga_map_put(&m, a, "group_id", ga_str(g->id));
    ga_map_put(&m, a, "seq", ga_int((int64_t) (g->seq + 1)));
    ga_map_put(&m, a, "from_user_id", ga_str(from));
    ga_map_put(&m, a, "message", ga_str(message));
    ga_map_put(&m, a, "timestamp", ga_str(ts));
    ga_map_put(&m, a, "request_id", ga_str(request_id ? request_id : "unknown"));
    ga_map_put(&m, a, "origin", ga_str(origin));
    char topic[BK_GROUP_ID_MAX + 3];
    snprintf(topic, sizeof topic, "r.%s", g->id);
    ga_buf_reset(&self->out);
    ga_wire_encode(&self->out, &m);
    if (ga_proto_publish(self->stream_out, topic, GA_CMD_RELAY, &self->out) != GA_OK) {
        self->stats.relay_dropped++;
        return false;
    }
    g->seq++;
    self->stats.relay_published++;
    return true;
}

static bool
s_str_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
}

void
bk_relay_on_group(bk_broker_t *self, const bk_gateway_t *gw, const ga_proto_msg_t *msg)
{
    const ga_value_t *b = &msg->value;
    int64_t id = ga_map_get_int(b, "id", 0);
    const char *op = ga_map_get_str(b, "op");
    const char *group_id = ga_map_get_str(b, "group_id");
    const char *user_id = ga_map_get_str(b, "user_id");
    const char *topic = ga_map_get_str(b, "topic");
    int64_t conn = ga_map_get_int(b, "conn", 0);
    char key[2 * 255 + 1];
    s_gateway_key(gw->id, gw->id_len, key);
    bk_groups_t *groups = s_groups(self);
    if (op && strcmp(op, "drop") == 0) {
        // A connection closed (no topic) or left a channel: its memberships go, no reply.
        if (conn > 0) {
            size_t n = bk_groups_drop_where(groups, key, (uint64_t) conn, topic, NULL, NULL);
            GA_DEBUG("relay: %zu membership(s) of conn %lld dropped", n, (long long) conn);
        }
        return;
    }
    if (op == NULL || conn <= 0 || !s_str_ok(topic, BK_TOPIC_MAX) ||
        !s_str_ok(user_id, BK_USER_ID_MAX) || !s_str_ok(group_id, BK_GROUP_ID_MAX)) {
        self->stats.malformed++;
        s_reply_error(self, msg, id, "invalid group operation: op, group_id (1..128 bytes), "
                                     "user_id, conn and topic are required", false);
        return;
    }
    bk_where_t where = {.gateway = key, .conn = (uint64_t) conn, .topic = topic};
    const char *target = ga_map_get_str(b, "target");
    ga_arena_t *a = self->arena;
    ga_value_t result = ga_map(a, 4);
    ga_map_put(&result, a, "group_id", ga_str(group_id));
    bk_groups_rc_t rc = BK_GROUPS_OK;
    bk_group_t *g = NULL;
    if (strcmp(op, "create") == 0) {
        const char *type_name = ga_map_get_str(b, "group_type");
        int type = bk_group_type_parse(type_name ? type_name : "public");
        if (type < 0) {
            s_reply_error(self, msg, id,
                          "invalid group_type: expected public, private or strict_private", false);
            return;
        }
        rc = bk_groups_create(groups, group_id, (bk_group_type_t) type, user_id, &where);
        if (rc == BK_GROUPS_OK) {
            g = bk_groups_find(groups, group_id);
            s_event(self, g, bk_group_member(g, user_id), false);
            ga_map_put(&result, a, "group_type", ga_str(type_name ? type_name : "public"));
            ga_map_put(&result, a, "state", ga_str("active"));
        }
    } else if (strcmp(op, "join") == 0) {
        bk_member_state_t state;
        bool moved;
        rc = bk_groups_join(groups, group_id, user_id, &where, &state, &moved);
        if (rc == BK_GROUPS_OK) {
            g = bk_groups_find(groups, group_id);
            s_event(self, g, bk_group_member(g, user_id), false);
            ga_map_put(&result, a, "state", ga_str(bk_member_state_name(state)));
        }
    } else if (strcmp(op, "leave") == 0) {
        g = bk_groups_find(groups, group_id);
        bk_member_t *m = g ? bk_group_member(g, user_id) : NULL;
        if (m) {
            s_event(self, g, m, true);
        }
        rc = bk_groups_leave(groups, group_id, user_id);
        ga_map_put(&result, a, "status", ga_str("left"));
    } else if (strcmp(op, "accept") == 0 || strcmp(op, "mute") == 0 ||
               strcmp(op, "unmute") == 0) {
        if (!s_str_ok(target, BK_USER_ID_MAX)) {
            s_reply_error(self, msg, id, "invalid argument user_id: the member to act on", false);
            return;
        }
        rc = op[0] == 'a' ? bk_groups_accept(groups, group_id, user_id, target)
                          : bk_groups_mute(groups, group_id, user_id, target, op[0] == 'm');
        if (rc == BK_GROUPS_OK) {
            g = bk_groups_find(groups, group_id);
            bk_member_t *t = bk_group_member(g, target);
            s_event(self, g, t, false);
            ga_map_put(&result, a, "user_id", ga_str(target));
            ga_map_put(&result, a, "state", ga_str(bk_member_state_name(t->state)));
        }
    } else if (strcmp(op, "info") == 0) {
        rc = bk_groups_can_view(groups, group_id, user_id);
        if (rc == BK_GROUPS_OK) {
            result = s_info(self, bk_groups_find(groups, group_id));
        }
    } else if (strcmp(op, "delete") == 0) {
        bk_group_t *gone = NULL;
        rc = bk_groups_delete(groups, group_id, user_id, &gone);
        for (size_t i = 0; gone && i < gone->n_members; i++) {
            s_event(self, gone, &gone->members[i], true);
        }
        bk_group_free(&gone);
        ga_map_put(&result, a, "status", ga_str("deleted"));
    } else if (strcmp(op, "send") == 0) {
        const char *message = ga_map_get_str(b, "message");
        if (message == NULL || strlen(message) > BK_RELAY_MESSAGE_MAX) {
            s_reply_error(self, msg, id, "invalid argument message: a string of at most 2000 "
                                         "bytes", false);
            return;
        }
        rc = bk_groups_can_send(groups, group_id, user_id);
        if (rc == BK_GROUPS_OK) {
            g = bk_groups_find(groups, group_id);
            const char *origin = ga_map_get_str(b, "origin");
            if (!s_publish(self, g, user_id, message, ga_map_get_str(b, "request_id"),
                           origin ? origin : "?")) {
                s_reply_error(self, msg, id, "Relay unavailable: a gateway cannot keep up", true);
                return;
            }
            result = ga_map(a, 2);
            ga_map_put(&result, a, "status", ga_str("relayed"));
            ga_map_put(&result, a, "recipients_count", ga_int((int64_t) bk_group_receivers(g)));
        }
    } else {
        self->stats.malformed++;
        s_reply_error(self, msg, id, "unknown group operation", false);
        return;
    }
    if (rc != BK_GROUPS_OK) {
        s_reply_error(self, msg, id, bk_groups_strerror(rc), false);
        return;
    }
    s_reply_ok(self, msg, id, &result);
}

void
bk_relay_admin(bk_broker_t *self, const char *op, const ga_value_t *req, ga_value_t *reply)
{
    ga_arena_t *a = self->arena;
    bk_groups_t *groups = s_groups(self);
    if (strcmp(op, "groups") == 0) {
        ga_value_t list = ga_array(a, (uint32_t) bk_groups_count(groups) + 1);
        for (bk_group_t *g = bk_groups_first(groups); g; g = bk_groups_next(groups)) {
            ga_value_t e = ga_map(a, 5);
            ga_map_put(&e, a, "group_id", ga_str(g->id));
            ga_map_put(&e, a, "group_type", ga_str(bk_group_type_name(g->type)));
            ga_map_put(&e, a, "admin", ga_str(g->admin));
            ga_map_put(&e, a, "members", ga_int((int64_t) g->n_members));
            ga_map_put(&e, a, "messages", ga_int((int64_t) g->seq));
            ga_array_push(&list, a, e);
        }
        ga_map_put(reply, a, "ok", ga_bool(true));
        ga_map_put(reply, a, "groups", list);
        return;
    }
    const char *group_id = ga_map_get_str(req, "group_id");
    bk_group_t *g = bk_groups_find(groups, group_id);
    if (g == NULL) {
        ga_map_put(reply, a, "ok", ga_bool(false));
        ga_map_put(reply, a, "error", ga_str(bk_groups_strerror(BK_GROUPS_NOT_FOUND)));
        return;
    }
    if (strcmp(op, "group_info") == 0) {
        ga_map_put(reply, a, "ok", ga_bool(true));
        ga_map_put(reply, a, "group", s_info(self, g));
        return;
    }
    // group_delete: the operator may delete any group; its members' gateways are told.
    bk_group_t *gone = NULL;
    bk_groups_rc_t rc = bk_groups_delete(groups, group_id, g->admin, &gone);
    ga_assert(rc == BK_GROUPS_OK);
    for (size_t i = 0; i < gone->n_members; i++) {
        s_event(self, gone, &gone->members[i], true);
    }
    GA_NOTICE("relay group %s deleted by an operator (%zu member(s))", gone->id, gone->n_members);
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "removed_members", ga_int((int64_t) gone->n_members));
    bk_group_free(&gone);
}

void
bk_relay_drop_gateway(bk_broker_t *self, const bk_gateway_t *gw)
{
    if (self->groups == NULL) {
        return;
    }
    char key[2 * 255 + 1];
    s_gateway_key(gw->id, gw->id_len, key);
    size_t n = bk_groups_drop_where(self->groups, key, 0, NULL, NULL, NULL);
    if (n) {
        GA_NOTICE("relay: %zu member(s) of a dead gateway removed from their groups", n);
    }
}
