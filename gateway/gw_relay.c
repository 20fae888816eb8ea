// SPDX-License-Identifier: MIT
// The gateway's side of relay groups: the chat_service built-ins and the local member table
// (groups by id in a czmq hash, members in a small array per group, bounded by what the broker
// admits per group). See gw_relay.h.
#include "gw_relay.h"

#include "ga_err.h"
#include "ga_funcfg.h"
#include "ga_idmap.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_telemetry.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

typedef enum { L_ACTIVE, L_PENDING, L_MUTED } lstate_t;

typedef struct {
    uint64_t conn;  // connection id
    char *user_id;  // owned
    char *topic;    // channel through which it joined (owned)
    lstate_t state; // as the broker last told
} lmember_t;

typedef struct {
    char *topic;        // "r.<group>" (owned)
    uint64_t last_seq;  // the last sequence number seen (or the group's at the first join)
    lmember_t *members; // local members
    size_t n, cap;      // used, allocated
    bool renumber;      // a restarted broker numbers anew: take the next restored event's seq
} lgroup_t;

struct gw_relay_t {
    zhash_t *groups;              // group id -> lgroup_t
    ga_idmap_t *conns;            // connections that asked for group operations (value: self)
    gw_relay_sub_fn *sub;         // subscription callback
    void *sub_arg;                // its argument
    gw_relay_deliver_fn *deliver; // delivery callback
    void *deliver_arg;            // its argument
    uint64_t delivered;           // messages delivered to members
    uint64_t gaps;                // gaps seen
    uint64_t missed;              // messages missing in those gaps
    bool delivering;              // inside a delivery loop: drops wait (s_drop_later)
    struct {
        uint64_t conn;            // connection
        char *topic;              // channel (owned), or NULL: every channel
    } *later;                     // drops asked for during delivery (a member cut off as slow)
    size_t n_later, cap_later;    // used, allocated
    ga_buf_t json;                // the response being delivered, encoded once (reused)
};

static void s_drop_now(gw_relay_t *self, uint64_t conn_id, const char *topic);

// The built-ins (docs/protocol.md, "Relay groups"): op, request_type, config.
static const struct {
    const char *op;
    const char *request_type;
    const char *config;
} s_builtins[] = {
#define GW_GROUP_ARG "\"group_id\":{\"type\":\"string\",\"max_bytes\":128}"
#define GW_BUILTIN(rt, extra_types, orders)                                                       \
    "{\"service\":\"chat_service\",\"request_type\":\"" rt "\",\"response_type\":\"sync\","     \
    "\"check_permission\":\"any_authenticated\",\"timeout\":5000,\"arg_types\":{" GW_GROUP_ARG \
    extra_types "},\"arg_orders\":[" orders "]"
    {"create", "create_group",
     GW_BUILTIN("create_group",
                ",\"group_type\":{\"type\":\"string\",\"max_bytes\":32,"
                "\"default_value\":\"public\"}",
                "\"group_id\",\"group_type\"") "}"},
    {"join", "join_group", GW_BUILTIN("join_group", "", "\"group_id\"") "}"},
    {"leave", "leave_group", GW_BUILTIN("leave_group", "", "\"group_id\"") "}"},
    {"accept", "accept_member",
     GW_BUILTIN("accept_member", ",\"user_id\":{\"type\":\"string\",\"max_bytes\":1024}",
                "\"group_id\",\"user_id\"") "}"},
    {"mute", "mute_member",
     GW_BUILTIN("mute_member", ",\"user_id\":{\"type\":\"string\",\"max_bytes\":1024}",
                "\"group_id\",\"user_id\"") "}"},
    {"unmute", "unmute_member",
     GW_BUILTIN("unmute_member", ",\"user_id\":{\"type\":\"string\",\"max_bytes\":1024}",
                "\"group_id\",\"user_id\"") "}"},
    {"info", "group_info", GW_BUILTIN("group_info", "", "\"group_id\"") "}"},
    {"delete", "delete_group", GW_BUILTIN("delete_group", "", "\"group_id\"") "}"},
    {"send", "send_message",
     GW_BUILTIN("send_message", ",\"message\":{\"type\":\"string\",\"max_bytes\":2000}",
                "\"group_id\",\"message\"") ",\"version\":\"1.0.0\"}"},
#undef GW_BUILTIN
#undef GW_GROUP_ARG
};

void
gw_relay_add_builtins(gw_pipeline_t *pipeline)
{
    ga_arena_t *a = ga_arena_new(4096);
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++) {
        ga_value_t v;
        ga_funcfg_t *cfg = NULL;
        char why[256];
        const char *text = s_builtins[i].config;
        ga_assert(ga_json_decode(text, strlen(text), a, &v, why, sizeof why) == GA_OK);
        if (ga_funcfg_parse(&v, &cfg, why, sizeof why) != GA_OK) {
            GA_ERR("built-in %s refused: %s", s_builtins[i].request_type, why);
            ga_assert(false);
        }
        gw_pipeline_add_builtin(pipeline, &cfg);
        ga_arena_reset(a);
    }
    ga_arena_destroy(&a);
}

const char *
gw_relay_op(const char *service, const char *request_type)
{
    if (service == NULL || request_type == NULL || strcmp(service, GW_RELAY_SERVICE) != 0) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++) {
        if (strcmp(request_type, s_builtins[i].request_type) == 0) {
            return s_builtins[i].op;
        }
    }
    return NULL;
}

static void
s_lgroup_free(void *data)
{
    lgroup_t *g = data;
    for (size_t i = 0; i < g->n; i++) {
        ga_free(g->members[i].user_id);
        ga_free(g->members[i].topic);
    }
    ga_free(g->members);
    ga_free(g->topic);
    ga_free(g);
}

gw_relay_t *
gw_relay_new(gw_relay_sub_fn *sub, void *sub_arg)
{
    gw_relay_t *self = ga_calloc(1, sizeof *self);
    self->groups = zhash_new();
    ga_assert(self->groups);
    self->conns = ga_idmap_new();
    self->sub = sub;
    self->sub_arg = sub_arg;
    ga_buf_init(&self->json);
    return self;
}

void
gw_relay_destroy(gw_relay_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zhash_destroy(&(*self_p)->groups);
    ga_idmap_destroy(&(*self_p)->conns);
    ga_free((*self_p)->later);
    ga_buf_fini(&(*self_p)->json);
    ga_free(*self_p);
    *self_p = NULL;
}

void
gw_relay_on_deliver(gw_relay_t *self, gw_relay_deliver_fn *fn, void *arg)
{
    self->deliver = fn;
    self->deliver_arg = arg;
}

// Forgets group `id` (no local member left) and unsubscribes.
static void
s_group_gone(gw_relay_t *self, const char *id, lgroup_t *g)
{
    if (self->sub) {
        self->sub(self->sub_arg, g->topic, false);
    }
    zhash_delete(self->groups, id); // frees g
}

static void
s_remove_at(lgroup_t *g, size_t i)
{
    ga_free(g->members[i].user_id);
    ga_free(g->members[i].topic);
    memmove(&g->members[i], &g->members[i + 1], (g->n - i - 1) * sizeof *g->members);
    g->n--;
}

void
gw_relay_on_event(gw_relay_t *self, const ga_value_t *ev)
{
    const char *id = ga_map_get_str(ev, "group_id");
    const char *user_id = ga_map_get_str(ev, "user_id");
    const char *topic = ga_map_get_str(ev, "topic");
    const char *state = ga_map_get_str(ev, "state");
    int64_t conn = ga_map_get_int(ev, "conn", 0);
    int64_t seq = ga_map_get_int(ev, "seq", 0);
    const ga_value_t *removed = ga_map_get(ev, "removed");
    bool remove = removed && removed->type == GA_BOOL && removed->u.b;
    if (id == NULL || user_id == NULL || topic == NULL || conn <= 0 || (!remove && !state)) {
        GA_WARN("malformed relay group event dropped");
        return;
    }
    lgroup_t *g = zhash_lookup(self->groups, id);
    lmember_t *m = NULL;
    for (size_t i = 0; g && i < g->n; i++) {
        if (g->members[i].conn == (uint64_t) conn && strcmp(g->members[i].user_id, user_id) == 0) {
            m = &g->members[i];
        }
    }
    if (remove) {
        if (m) {
            s_remove_at(g, (size_t) (m - g->members));
            if (g->n == 0) {
                s_group_gone(self, id, g);
            }
        }
        return;
    }
    if (ga_idmap_get(self->conns, (uint64_t) conn) == NULL) {
        return; // the connection closed meanwhile (its drop is on its way to the broker)
    }
    lstate_t st = strcmp(state, "active") == 0    ? L_ACTIVE
                  : strcmp(state, "muted") == 0 ? L_MUTED
                                                : L_PENDING;
    if (g == NULL) {
        g = ga_calloc(1, sizeof *g);
        size_t len = strlen(id) + 3;
        g->topic = ga_malloc(len);
        snprintf(g->topic, len, "r.%s", id);
        g->last_seq = seq > 0 ? (uint64_t) seq : 0; // messages up to here were before the join
        ga_assert(zhash_insert(self->groups, id, g) == 0);
        zhash_freefn(self->groups, id, s_lgroup_free);
        if (self->sub) {
            self->sub(self->sub_arg, g->topic, true);
        }
    }
    if (m == NULL) {
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 4;
            g->members = ga_realloc(g->members, g->cap * sizeof *g->members);
        }
        m = &g->members[g->n++];
        *m = (lmember_t){.conn = (uint64_t) conn, .user_id = ga_strdup(user_id)};
    } else {
        ga_free(m->topic);
    }
    m->topic = ga_strdup(topic);
    m->state = st;
    const ga_value_t *restored = ga_map_get(ev, "restored");
    if (restored && restored->type == GA_BOOL && restored->u.b && seq >= 0 && g->renumber) {
        g->last_seq = (uint64_t) seq; // a restarted broker: its numbering goes on from here
        g->renumber = false;
    }
}

void
gw_relay_renumber(gw_relay_t *self)
{
    for (lgroup_t *g = zhash_first(self->groups); g; g = zhash_next(self->groups)) {
        g->renumber = true;
    }
}

void
gw_relay_each(const gw_relay_t *self,
              void (*fn)(void *arg, const char *group_id, const char *user_id, uint64_t conn_id,
                         const char *topic, const char *state),
              void *arg)
{
    static const char *const names[] = {"active", "pending", "muted"};
    for (lgroup_t *g = zhash_first(self->groups); g; g = zhash_next(self->groups)) {
        const char *id = zhash_cursor(self->groups);
        for (size_t i = 0; i < g->n; i++) {
            fn(arg, id, g->members[i].user_id, g->members[i].conn, g->members[i].topic,
               names[g->members[i].state]);
        }
    }
}

static void
s_on_message(gw_relay_t *self, const uint8_t *topic, size_t topic_len, const ga_value_t *body)
{
    const char *id = ga_map_get_str(body, "group_id");
    if (id == NULL || topic_len != strlen(id) + 2 || memcmp(topic, "r.", 2) != 0 ||
        memcmp(topic + 2, id, topic_len - 2) != 0) {
        return; // malformed, or a group whose id only starts like one of ours
    }
    lgroup_t *g = zhash_lookup(self->groups, id);
    int64_t seq = ga_map_get_int(body, "seq", 0);
    if (g == NULL || seq <= 0 || (uint64_t) seq <= g->last_seq) {
        return; // no local member (any more), or from before our members joined
    }
    const char *request_id = ga_map_get_str(body, "request_id");
    request_id = request_id ? request_id : "unknown";
    if ((uint64_t) seq > g->last_seq + 1) {
        // Messages were lost on the way (the proxy queue to this gateway overflowed): never
        // silence. Counted, logged, and each member that should have had them is told.
        uint64_t missed = (uint64_t) seq - g->last_seq - 1;
        self->gaps++;
        self->missed += missed;
        GA_WARN("relay group %s: %llu message(s) lost before %lld", id,
                (unsigned long long) missed, (long long) seq);
        ga_arena_t *a = ga_arena_new(256);
        ga_value_t r = ga_map(a, 3);
        ga_map_put(&r, a, "group_id", ga_str(id));
        ga_map_put(&r, a, "missed", ga_int((int64_t) missed));
        ga_map_put(&r, a, "before_seq", ga_int(seq));
        gw_response_t gap = {.request_id = request_id,
                             .kind = GW_KIND_GAP,
                             .success = false,
                             .result = &r,
                             .error = "relay messages were lost"};
        ga_buf_reset(&self->json);
        gw_response_encode(&gap, &self->json);
        for (size_t i = 0; self->deliver && i < g->n; i++) {
            if (g->members[i].state != L_PENDING) {
                self->deliver(self->deliver_arg, g->members[i].conn, g->members[i].topic, &gap,
                              (const char *) self->json.data, self->json.len);
            }
        }
        ga_arena_destroy(&a);
    }
    g->last_seq = (uint64_t) seq;
    // The member sees {group_id, from_user_id, message, timestamp}: the body without the
    // routing fields, built on the stack (no allocation per message).
    ga_pair_t pairs[4];
    static const char *const keys[] = {"group_id", "from_user_id", "message", "timestamp"};
    for (int i = 0; i < 4; i++) {
        const ga_value_t *v = ga_map_get(body, keys[i]);
        if (v == NULL) {
            return;
        }
        pairs[i] = (ga_pair_t){.key = keys[i], .key_len = (uint32_t) strlen(keys[i]), .value = *v};
    }
    ga_value_t result = {.type = GA_MAP, .len = 4, .cap = 4, .u.pairs = pairs};
    gw_response_t resp = {.request_id = request_id,
                          .kind = GW_KIND_RELAY,
                          .success = true,
                          .result = &result};
    ga_buf_reset(&self->json);
    gw_response_encode(&resp, &self->json); // once for every member
    for (size_t i = 0; self->deliver && i < g->n; i++) {
        if (g->members[i].state != L_PENDING) {
            self->deliver(self->deliver_arg, g->members[i].conn, g->members[i].topic, &resp,
                          (const char *) self->json.data, self->json.len);
            self->delivered++;
        }
    }
}

void
gw_relay_on_message(gw_relay_t *self, const uint8_t *topic, size_t topic_len,
                    const ga_value_t *body)
{
    // A delivery may cut a slow member off, which drops its memberships: that waits until the
    // loop over the group's members is done.
    self->delivering = true;
    uint64_t delivered = self->delivered;
    s_on_message(self, topic, topic_len, body);
    self->delivering = false;
    // One event per message and gateway (not per member): the members it was pushed to here.
    if (self->delivered > delivered) {
        GA_EMIT(GA_EV_RELAY_DELIVER, .count = (int64_t) (self->delivered - delivered),
                .group_id = ga_map_get_str(body, "group_id"),
                .request_id = ga_map_get_str(body, "request_id"));
    }
    for (size_t i = 0; i < self->n_later; i++) {
        s_drop_now(self, self->later[i].conn, self->later[i].topic);
        ga_free(self->later[i].topic);
    }
    self->n_later = 0;
}

void
gw_relay_note_conn(gw_relay_t *self, uint64_t conn_id)
{
    ga_idmap_put(self->conns, conn_id, self);
}

bool
gw_relay_drop(gw_relay_t *self, uint64_t conn_id, const char *topic)
{
    bool known = ga_idmap_get(self->conns, conn_id) != NULL;
    if (!known) {
        return false;
    }
    if (topic == NULL) {
        ga_idmap_take(self->conns, conn_id);
    }
    if (self->delivering) {
        if (self->n_later == self->cap_later) {
            self->cap_later = self->cap_later ? 2 * self->cap_later : 8;
            self->later = ga_realloc(self->later, self->cap_later * sizeof *self->later);
        }
        self->later[self->n_later].conn = conn_id;
        self->later[self->n_later].topic = topic ? ga_strdup(topic) : NULL;
        self->n_later++;
    } else {
        s_drop_now(self, conn_id, topic);
    }
    return true;
}

// Removes the local members of `conn_id` (through `topic` only, when not NULL); a group left
// without local members is forgotten and unsubscribed.
static void
s_drop_now(gw_relay_t *self, uint64_t conn_id, const char *topic)
{
    zlist_t *empty = zlist_new();
    ga_assert(empty);
    for (lgroup_t *g = zhash_first(self->groups); g; g = zhash_next(self->groups)) {
        for (size_t i = 0; i < g->n;) {
            if (g->members[i].conn == conn_id &&
                (topic == NULL || strcmp(g->members[i].topic, topic) == 0)) {
                s_remove_at(g, i);
            } else {
                i++;
            }
        }
        if (g->n == 0) {
            zlist_append(empty, (void *) zhash_cursor(self->groups));
        }
    }
    for (const char *id = zlist_first(empty); id; id = zlist_next(empty)) {
        s_group_gone(self, id, zhash_lookup(self->groups, id));
    }
    zlist_destroy(&empty);
}

uint64_t
gw_relay_delivered(const gw_relay_t *self)
{
    return self->delivered;
}

uint64_t
gw_relay_gaps(const gw_relay_t *self)
{
    return self->gaps;
}

uint64_t
gw_relay_missed(const gw_relay_t *self)
{
    return self->missed;
}

size_t
gw_relay_group_count(const gw_relay_t *self)
{
    return zhash_size(self->groups);
}
