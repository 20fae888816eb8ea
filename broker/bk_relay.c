// SPDX-License-Identifier: MIT
// Relay groups at the broker (docs/protocol.md, "Relay groups"): a gateway's GROUP operations
// are checked against the registry (broker/bk_groups.c) on behalf of the caller the gateway
// names, answered with GROUP_REPLY, and every membership change is told to the gateway where
// that member lives (GROUP_EVENT) so it knows whom to deliver to. A message is published once
// on the stream proxy's XPUB under "r.<group>" with the group's next sequence number; each
// gateway with members of the group subscribes to that topic.
#include "bk_internal.h"

#include "bk_groups.h"
#include "ga_file.h"
#include "ga_clock.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_proto.h"
#include "ga_telemetry.h"
#include "ga_wire.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BK_RELAY_STATE_VERSION 1
#define BK_RELAY_STATE_MAX (256u << 20) // bytes of a relay state file read at start

#define BK_RELAY_MESSAGE_MAX 2000 // bytes of a relay message (the send_message config's limit)

// The registry's key for a gateway: the hex routing id, as in bk_broker_t.gws.
static void
s_gateway_key(const uint8_t *id, size_t id_len, char *key)
{
    bk_id_key(key, id, id_len);
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
static void s_event_ex(bk_broker_t *self, const bk_group_t *g, const bk_member_t *m, bool removed,
                       bool restored);

static void
s_event(bk_broker_t *self, const bk_group_t *g, const bk_member_t *m, bool removed)
{
    s_event_ex(self, g, m, removed, false);
}

// `restored`: the member was claimed again after a broker restart; the gateway takes the
// group's sequence number as it is now.
static void
s_event_ex(bk_broker_t *self, const bk_group_t *g, const bk_member_t *m, bool removed,
           bool restored)
{
    bk_gateway_t *gw = zhash_lookup(self->gws, m->gateway);
    if (gw == NULL) {
        return; // gone: its members are removed when it is declared dead
    }
    ga_arena_t *a = self->arena;
    ga_value_t ev = ga_map(a, 8);
    if (restored) {
        ga_map_put(&ev, a, "restored", ga_bool(true));
    }
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

// Answers on `sock`: the gateways' ROUTER, or the workers' for a worker's operation.
static void
s_reply_error(bk_broker_t *self, void *sock, const ga_proto_msg_t *msg, int64_t id,
              const char *error, bool can_retry)
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
    bk_send(self, sock, msg->id, msg->id_len, GA_CMD_GROUP_REPLY, &r);
}

static void
s_reply_ok(bk_broker_t *self, void *sock, const ga_proto_msg_t *msg, int64_t id,
           const ga_value_t *result)
{
    if (id <= 0) {
        return;
    }
    ga_arena_t *a = self->arena;
    ga_value_t r = ga_map(a, 3);
    ga_map_put(&r, a, "id", ga_int(id));
    ga_map_put(&r, a, "ok", ga_bool(true));
    ga_map_put(&r, a, "result", *result);
    bk_send(self, sock, msg->id, msg->id_len, GA_CMD_GROUP_REPLY, &r);
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

// "active", "pending", "muted" -> bk_member_state_t; -1 for anything else.
static int
s_state_parse(const char *name)
{
    for (int s = BK_MEMBER_ACTIVE; s <= BK_MEMBER_MUTED; s++) {
        if (name && strcmp(name, bk_member_state_name((bk_member_state_t) s)) == 0) {
            return s;
        }
    }
    return -1;
}

static bool
s_str_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
}

static void s_apply(bk_broker_t *self, void *sock, const ga_proto_msg_t *msg, const char *op,
                    const bk_where_t *where, const char *origin);

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
    if (op && strcmp(op, "restore") == 0) {
        // After a broker restart a gateway names its members again: a restored member is
        // attached to it; anything else is told removed, so the gateway forgets it.
        bk_member_t *m = NULL;
        bk_where_t w = {.gateway = key, .conn = (uint64_t) conn, .topic = topic};
        bk_groups_rc_t rc = group_id && user_id
                                ? bk_groups_attach(groups, group_id, user_id, &w, &m)
                                : BK_GROUPS_INVALID;
        int claimed = s_state_parse(ga_map_get_str(b, "state"));
        if (rc == BK_GROUPS_NOT_MEMBER && claimed >= 0) {
            // Dropped while this gateway was out of reach (declared dead): back with the state
            // it had, which the gateway kept.
            rc = bk_groups_restore_member(groups, group_id, user_id,
                                          (bk_member_state_t) claimed);
            rc = rc == BK_GROUPS_OK ? bk_groups_attach(groups, group_id, user_id, &w, &m) : rc;
        }
        if (rc == BK_GROUPS_OK) {
            s_event_ex(self, bk_groups_find(groups, group_id), m, false, true);
        } else if (group_id && user_id && topic && conn > 0) {
            bk_group_t none = {.id = (char *) group_id};
            bk_member_t gone = {.user_id = (char *) user_id,
                                .gateway = key,
                                .conn = (uint64_t) conn,
                                .topic = (char *) topic};
            s_event(self, &none, &gone, true);
        }
        return;
    }
    if (op && strcmp(op, "drop") == 0) {
        // A connection closed (no topic) or left a channel: its memberships go, no reply.
        if (conn > 0) {
            size_t n = bk_groups_drop_where(groups, key, (uint64_t) conn, topic, NULL, NULL);
            if (n) {
                GA_EMIT(GA_EV_RELAY_LEAVE, .count = (int64_t) n, .reason = "disconnect");
            }
            GA_DEBUG("relay: %zu membership(s) of conn %lld dropped", n, (long long) conn);
        }
        return;
    }
    if (op == NULL || conn <= 0 || !s_str_ok(topic, BK_TOPIC_MAX) ||
        !s_str_ok(user_id, BK_USER_ID_MAX) || !s_str_ok(group_id, BK_GROUP_ID_MAX)) {
        self->stats.malformed++;
        s_reply_error(self, self->gateways, msg, id,
                      "invalid group operation: op, group_id (1..128 bytes), user_id, conn and "
                      "topic are required", false);
        return;
    }
    bk_where_t where = {.gateway = key, .conn = (uint64_t) conn, .topic = topic};
    const char *origin = ga_map_get_str(b, "origin");
    s_apply(self, self->gateways, msg, op, &where, origin ? origin : "?");
}

void
bk_relay_on_worker_group(bk_broker_t *self, const bk_worker_t *w, const ga_proto_msg_t *msg)
{
    const ga_value_t *b = &msg->value;
    int64_t id = ga_map_get_int(b, "id", 0);
    const char *op = ga_map_get_str(b, "op");
    char why[300];
    if (!w->registered) {
        s_reply_error(self, self->workers, msg, id, "Service unavailable: register first", true);
        return;
    }
    if (!bk_access_worker_group(self, msg, why, sizeof why)) {
        s_reply_error(self, self->workers, msg, id, why, false);
        return;
    }
    if (op == NULL || strcmp(op, "drop") == 0 || strcmp(op, "restore") == 0 ||
        !s_str_ok(ga_map_get_str(b, "user_id"), BK_USER_ID_MAX) ||
        !s_str_ok(ga_map_get_str(b, "group_id"), BK_GROUP_ID_MAX)) {
        self->stats.malformed++;
        s_reply_error(self, self->workers, msg, id,
                      "invalid group operation: op, group_id (1..128 bytes) and user_id are "
                      "required", false);
        return;
    }
    // The worker acts for its user, who lives on no connection through it: an offline member.
    bk_where_t offline = {.gateway = BK_WHERE_OFFLINE, .conn = 0, .topic = BK_WHERE_OFFLINE};
    char origin[300];
    snprintf(origin, sizeof origin, "worker:%s", w->node ? w->node : "?");
    s_apply(self, self->workers, msg, op, &offline, origin);
}

// One group operation `op` of GROUP body `msg` for its user_id at `where`, answered on `sock`.
static void
s_apply(bk_broker_t *self, void *sock, const ga_proto_msg_t *msg, const char *op,
        const bk_where_t *where_p, const char *origin)
{
    const ga_value_t *b = &msg->value;
    int64_t id = ga_map_get_int(b, "id", 0);
    const char *group_id = ga_map_get_str(b, "group_id");
    const char *user_id = ga_map_get_str(b, "user_id");
    bk_groups_t *groups = s_groups(self);
    bk_where_t where = *where_p;
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
            s_reply_error(self, sock, msg, id,
                          "invalid group_type: expected public, private or strict_private", false);
            return;
        }
        rc = bk_groups_create(groups, group_id, (bk_group_type_t) type, user_id, &where);
        if (rc == BK_GROUPS_OK) {
            g = bk_groups_find(groups, group_id);
            s_event(self, g, bk_group_member(g, user_id), false);
            GA_EMIT(GA_EV_RELAY_JOIN, .group_id = group_id,
                    .request_id = ga_map_get_str(b, "request_id"), .reason = "create");
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
            GA_EMIT(GA_EV_RELAY_JOIN, .group_id = group_id,
                    .request_id = ga_map_get_str(b, "request_id"), .reason = "join");
            ga_map_put(&result, a, "state", ga_str(bk_member_state_name(state)));
        }
    } else if (strcmp(op, "leave") == 0) {
        g = bk_groups_find(groups, group_id);
        bk_member_t *m = g ? bk_group_member(g, user_id) : NULL;
        if (m) {
            s_event(self, g, m, true);
            GA_EMIT(GA_EV_RELAY_LEAVE, .count = 1, .group_id = group_id, .reason = "leave");
        }
        rc = bk_groups_leave(groups, group_id, user_id);
        ga_map_put(&result, a, "status", ga_str("left"));
    } else if (strcmp(op, "accept") == 0 || strcmp(op, "mute") == 0 ||
               strcmp(op, "unmute") == 0) {
        if (!s_str_ok(target, BK_USER_ID_MAX)) {
            s_reply_error(self, sock, msg, id, "invalid argument user_id: the member to act on", false);
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
        if (gone) {
            GA_EMIT(GA_EV_RELAY_LEAVE, .count = (int64_t) gone->n_members, .group_id = group_id,
                    .reason = "delete");
        }
        bk_group_free(&gone);
        ga_map_put(&result, a, "status", ga_str("deleted"));
    } else if (strcmp(op, "send") == 0) {
        const char *message = ga_map_get_str(b, "message");
        if (message == NULL || strlen(message) > BK_RELAY_MESSAGE_MAX) {
            s_reply_error(self, sock, msg, id, "invalid argument message: a string of at most 2000 "
                                         "bytes", false);
            return;
        }
        rc = bk_groups_can_send(groups, group_id, user_id);
        if (rc == BK_GROUPS_OK) {
            g = bk_groups_find(groups, group_id);
            if (!s_publish(self, g, user_id, message, ga_map_get_str(b, "request_id"),
                           origin)) {
                s_reply_error(self, sock, msg, id, "Relay unavailable: a gateway cannot keep up", true);
                return;
            }
            GA_EMIT(GA_EV_RELAY_SEND, .count = (int64_t) bk_group_receivers(g),
                    .group_id = group_id, .request_id = ga_map_get_str(b, "request_id"));
            result = ga_map(a, 2);
            ga_map_put(&result, a, "status", ga_str("relayed"));
            ga_map_put(&result, a, "recipients_count", ga_int((int64_t) bk_group_receivers(g)));
        }
    } else {
        self->stats.malformed++;
        s_reply_error(self, sock, msg, id, "unknown group operation", false);
        return;
    }
    if (rc != BK_GROUPS_OK) {
        s_reply_error(self, sock, msg, id, bk_groups_strerror(rc), false);
        return;
    }
    s_reply_ok(self, sock, msg, id, &result);
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
    GA_EMIT(GA_EV_RELAY_LEAVE, .count = (int64_t) gone->n_members, .group_id = gone->id,
            .reason = "delete");
    ga_map_put(reply, a, "ok", ga_bool(true));
    ga_map_put(reply, a, "removed_members", ga_int((int64_t) gone->n_members));
    bk_group_free(&gone);
}

// ---------------------------------------------------------------------------------------------
// State file: {"genapi_relay": 1, "groups": [{"group_id", "group_type", "admin", "seq",
// "members": [{"user_id", "state", "offline"?}]}]} (docs/configuration.md, "relay_state_file").

static bool
s_state_file(const bk_broker_t *self)
{
    return self->cfg->relay_state_file && self->cfg->relay_state_file[0];
}

ga_err_t
bk_relay_load(bk_broker_t *self)
{
    if (!s_state_file(self)) {
        return GA_OK;
    }
    const char *path = self->cfg->relay_state_file;
    size_t len = 0;
    char *text = NULL;
    char why[200];
    ga_err_t read_rc = ga_file_read(path, BK_RELAY_STATE_MAX, &text, &len, why, sizeof why);
    if (read_rc == GA_ENOTFOUND) {
        return GA_OK; // first start
    }
    if (read_rc != GA_OK) {
        GA_ERR("relay_state_file: cannot read %s: %s", path, why);
        return GA_ECONFIG;
    }
    ga_arena_t *a = ga_arena_new(len + 4096);
    ga_value_t doc;
    char err[200];
    ga_err_t rc = GA_OK;
    bk_groups_t *groups = s_groups(self);
    const ga_value_t *list = NULL;
    if (ga_json_decode(text, len, a, &doc, err, sizeof err) != GA_OK) {
        GA_ERR("relay_state_file: %s is not valid JSON (%s)", path, err);
        rc = GA_ECONFIG;
    } else if (doc.type != GA_MAP ||
               ga_map_get_int(&doc, "genapi_relay", 0) != BK_RELAY_STATE_VERSION ||
               (list = ga_map_get(&doc, "groups")) == NULL || list->type != GA_ARRAY) {
        GA_ERR("relay_state_file: %s is not a genapi relay state file (want "
               "{\"genapi_relay\": 1, \"groups\": [...]})", path);
        rc = GA_ECONFIG;
    }
    size_t members = 0;
    for (uint32_t i = 0; rc == GA_OK && i < list->len; i++) {
        const ga_value_t *g = &list->u.items[i];
        const char *id = g->type == GA_MAP ? ga_map_get_str(g, "group_id") : NULL;
        int type = g->type == GA_MAP ? bk_group_type_parse(ga_map_get_str(g, "group_type")) : -1;
        const char *admin = g->type == GA_MAP ? ga_map_get_str(g, "admin") : NULL;
        int64_t seq = g->type == GA_MAP ? ga_map_get_int(g, "seq", -1) : -1;
        const ga_value_t *ms = g->type == GA_MAP ? ga_map_get(g, "members") : NULL;
        bk_groups_rc_t grc = type < 0 || seq < 0 || ms == NULL || ms->type != GA_ARRAY
                                 ? BK_GROUPS_INVALID
                                 : bk_groups_restore_group(groups, id, (bk_group_type_t) type,
                                                           admin, (uint64_t) seq);
        for (uint32_t j = 0; grc == BK_GROUPS_OK && j < ms->len; j++) {
            const ga_value_t *m = &ms->u.items[j];
            int st = m->type == GA_MAP ? s_state_parse(ga_map_get_str(m, "state")) : -1;
            const char *uid = m->type == GA_MAP ? ga_map_get_str(m, "user_id") : NULL;
            grc = st < 0 ? BK_GROUPS_INVALID
                         : bk_groups_restore_member(groups, id, uid, (bk_member_state_t) st);
            const ga_value_t *off = m->type == GA_MAP ? ga_map_get(m, "offline") : NULL;
            if (grc == BK_GROUPS_OK && off && off->type == GA_BOOL && off->u.b) {
                bk_where_t offline = {.gateway = BK_WHERE_OFFLINE, .topic = BK_WHERE_OFFLINE};
                bk_member_t *placed = NULL;
                grc = bk_groups_attach(groups, id, uid, &offline, &placed);
            }
            members++;
        }
        if (grc != BK_GROUPS_OK) {
            GA_ERR("relay_state_file: %s: group %u: %s (want {group_id, group_type, admin, seq, "
                   "members: [{user_id, state}]})", path, i, bk_groups_strerror(grc));
            rc = GA_ECONFIG;
        }
    }
    if (rc == GA_OK) {
        self->relay_detached = members > 0;
        bk_groups_saved(groups);
        GA_INFO("relay_state_file: %zu group(s), %zu member(s) read from %s",
                bk_groups_count(groups), members, path);
    } else {
        bk_groups_destroy(&self->groups); // nothing half-loaded stays
    }
    ga_arena_destroy(&a);
    ga_free(text);
    return rc;
}

void
bk_relay_save(bk_broker_t *self)
{
    if (!s_state_file(self) || self->groups == NULL ||
        !bk_groups_dirty(self->groups)) {
        return;
    }
    const char *path = self->cfg->relay_state_file;
    ga_buf_t out;
    ga_buf_init(&out);
    char num[64];
    ga_buf_append_str(&out, "{\"genapi_relay\":1,\"groups\":[");
    bool first = true;
    for (bk_group_t *g = bk_groups_first(self->groups); g; g = bk_groups_next(self->groups)) {
        ga_buf_append_str(&out, first ? "\n{\"group_id\":" : ",\n{\"group_id\":");
        first = false;
        ga_json_encode_str(&out, g->id, strlen(g->id));
        ga_buf_append_str(&out, ",\"group_type\":\"");
        ga_buf_append_str(&out, bk_group_type_name(g->type));
        ga_buf_append_str(&out, "\",\"admin\":");
        ga_json_encode_str(&out, g->admin, strlen(g->admin));
        snprintf(num, sizeof num, ",\"seq\":%llu,\"members\":[", (unsigned long long) g->seq);
        ga_buf_append_str(&out, num);
        for (size_t i = 0; i < g->n_members; i++) {
            ga_buf_append_str(&out, i ? ",{\"user_id\":" : "{\"user_id\":");
            ga_json_encode_str(&out, g->members[i].user_id, strlen(g->members[i].user_id));
            ga_buf_append_str(&out, ",\"state\":\"");
            ga_buf_append_str(&out, bk_member_state_name(g->members[i].state));
            // A member a worker added and whose user never joined through a connection: it
            // stays (no gateway will claim it after a restart).
            ga_buf_append_str(&out, strcmp(g->members[i].gateway, BK_WHERE_OFFLINE) == 0
                                        ? "\",\"offline\":true}"
                                        : "\"}");
        }
        ga_buf_append_str(&out, "]}");
    }
    ga_buf_append_str(&out, "\n]}\n");
    char why[256];
    if (ga_file_write_atomic(path, out.data, out.len, why, sizeof why) == GA_OK) {
        bk_groups_saved(self->groups);
    } else {
        GA_WARN("relay_state_file: cannot write %s: %s (groups are kept in memory; retried "
                "later)", path, why);
    }
    ga_buf_fini(&out);
}

void
bk_relay_tick(bk_broker_t *self, int64_t now)
{
    if (!self->relay_detached || now < self->warm_until || self->groups == NULL) {
        return;
    }
    self->relay_detached = false;
    size_t n = bk_groups_drop_where(self->groups, "", 0, NULL, NULL, NULL);
    if (n) {
        GA_NOTICE("relay: %zu restored member(s) no gateway claimed removed", n);
    }
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
        GA_EMIT(GA_EV_RELAY_LEAVE, .count = (int64_t) n, .reason = "gateway_lost");
        GA_NOTICE("relay: %zu member(s) of a dead gateway removed from their groups", n);
    }
}
