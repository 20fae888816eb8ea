// SPDX-License-Identifier: MIT
// The relay group registry: groups by id in a czmq hash, members in a growing array per group
// (bounded by max_members), and the permission matrix of docs/protocol.md, "Relay groups".
#include "bk_groups.h"

#include "ga_err.h"
#include "ga_mem.h"

#include <czmq.h>
#include <string.h>

struct bk_groups_t {
    zhash_t *groups;    // id -> bk_group_t (owned)
    size_t max_groups;  // bound on groups
    size_t max_members; // bound on members per group
    bool dirty;         // changed since the last bk_groups_saved
};

static void
s_group_free_fn(void *data)
{
    bk_group_t *g = data;
    bk_group_free(&g);
}

bk_groups_t *
bk_groups_new(size_t max_groups, size_t max_members)
{
    ga_assert(max_groups > 0 && max_members > 0);
    bk_groups_t *self = ga_calloc(1, sizeof *self);
    self->groups = zhash_new();
    ga_assert(self->groups);
    self->max_groups = max_groups;
    self->max_members = max_members;
    return self;
}

void
bk_groups_destroy(bk_groups_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zhash_destroy(&(*self_p)->groups);
    ga_free(*self_p);
    *self_p = NULL;
}

static void
s_member_fini(bk_member_t *m)
{
    ga_free(m->user_id);
    ga_free(m->gateway);
    ga_free(m->topic);
}

void
bk_group_free(bk_group_t **group_p)
{
    if (group_p == NULL || *group_p == NULL) {
        return;
    }
    bk_group_t *g = *group_p;
    for (size_t i = 0; i < g->n_members; i++) {
        s_member_fini(&g->members[i]);
    }
    ga_free(g->members);
    ga_free(g->id);
    ga_free(g->admin);
    ga_free(g);
    *group_p = NULL;
}

const char *
bk_groups_strerror(bk_groups_rc_t rc)
{
    switch (rc) {
    case BK_GROUPS_OK:
        return "ok";
    case BK_GROUPS_NOT_FOUND:
        return "group not found";
    case BK_GROUPS_NOT_MEMBER:
        return "not a member";
    case BK_GROUPS_PENDING:
        return "membership pending";
    case BK_GROUPS_MUTED:
        return "member is muted";
    case BK_GROUPS_NOT_ADMIN:
        return "not admin";
    case BK_GROUPS_WRONG_TYPE:
        return "wrong group type";
    case BK_GROUPS_ALREADY_MEMBER:
        return "already a member";
    case BK_GROUPS_EXISTS:
        return "group already exists";
    case BK_GROUPS_TOO_MANY_GROUPS:
        return "too many groups (max_groups)";
    case BK_GROUPS_TOO_MANY_MEMBERS:
        return "too many members in the group (max_group_members)";
    case BK_GROUPS_INVALID:
        return "invalid group id, user id or topic";
    case BK_GROUPS_TARGET_NOT_MEMBER:
        return "target is not a member";
    case BK_GROUPS_NOT_PENDING:
        return "target is not pending";
    case BK_GROUPS_TARGET_PENDING:
        return "target is pending";
    }
    return "unknown error";
}

const char *
bk_group_type_name(bk_group_type_t type)
{
    switch (type) {
    case BK_GROUP_PUBLIC:
        return "public";
    case BK_GROUP_PRIVATE:
        return "private";
    case BK_GROUP_STRICT_PRIVATE:
        return "strict_private";
    }
    return "?";
}

int
bk_group_type_parse(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (int t = BK_GROUP_PUBLIC; t <= BK_GROUP_STRICT_PRIVATE; t++) {
        if (strcmp(name, bk_group_type_name((bk_group_type_t) t)) == 0) {
            return t;
        }
    }
    return -1;
}

const char *
bk_member_state_name(bk_member_state_t state)
{
    switch (state) {
    case BK_MEMBER_ACTIVE:
        return "active";
    case BK_MEMBER_PENDING:
        return "pending";
    case BK_MEMBER_MUTED:
        return "muted";
    }
    return "?";
}

static bool
s_valid(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
}

static bool
s_where_valid(const bk_where_t *w)
{
    return w && s_valid(w->gateway, 2 * 255) && s_valid(w->topic, BK_TOPIC_MAX);
}

bk_group_t *
bk_groups_find(const bk_groups_t *self, const char *id)
{
    return id ? zhash_lookup(self->groups, id) : NULL;
}

bk_member_t *
bk_group_member(const bk_group_t *g, const char *user_id)
{
    for (size_t i = 0; user_id && i < g->n_members; i++) {
        if (strcmp(g->members[i].user_id, user_id) == 0) {
            return &g->members[i];
        }
    }
    return NULL;
}

size_t
bk_group_receivers(const bk_group_t *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_members; i++) {
        n += g->members[i].state != BK_MEMBER_PENDING;
    }
    return n;
}

size_t
bk_groups_count(const bk_groups_t *self)
{
    return zhash_size(self->groups);
}

static bk_groups_rc_t
s_add_member(bk_groups_t *self, bk_group_t *g, const char *user_id, const bk_where_t *where,
             bk_member_state_t state)
{
    if (g->n_members >= self->max_members) {
        return BK_GROUPS_TOO_MANY_MEMBERS;
    }
    if (g->n_members == g->cap_members) {
        g->cap_members = g->cap_members ? 2 * g->cap_members : 4;
        g->members = ga_realloc(g->members, g->cap_members * sizeof *g->members);
    }
    self->dirty = true;
    g->members[g->n_members++] = (bk_member_t){
        .user_id = ga_strdup(user_id),
        .state = state,
        .gateway = ga_strdup(where->gateway),
        .conn = where->conn,
        .topic = ga_strdup(where->topic),
    };
    return BK_GROUPS_OK;
}

static void
s_remove_at(bk_group_t *g, size_t i)
{
    s_member_fini(&g->members[i]);
    memmove(&g->members[i], &g->members[i + 1], (g->n_members - i - 1) * sizeof *g->members);
    g->n_members--;
}

bk_groups_rc_t
bk_groups_create(bk_groups_t *self, const char *id, bk_group_type_t type, const char *user_id,
                 const bk_where_t *where)
{
    if (!s_valid(id, BK_GROUP_ID_MAX) || !s_valid(user_id, BK_USER_ID_MAX) ||
        !s_where_valid(where) || type > BK_GROUP_STRICT_PRIVATE) {
        return BK_GROUPS_INVALID;
    }
    if (zhash_lookup(self->groups, id)) {
        return BK_GROUPS_EXISTS;
    }
    if (zhash_size(self->groups) >= self->max_groups) {
        return BK_GROUPS_TOO_MANY_GROUPS;
    }
    bk_group_t *g = ga_calloc(1, sizeof *g);
    g->id = ga_strdup(id);
    g->type = type;
    g->admin = ga_strdup(user_id);
    GA_IGNORE(s_add_member(self, g, user_id, where, BK_MEMBER_ACTIVE)); // max_members > 0
    ga_assert(zhash_insert(self->groups, id, g) == 0);
    zhash_freefn(self->groups, id, s_group_free_fn);
    return BK_GROUPS_OK;
}

bk_groups_rc_t
bk_groups_join(bk_groups_t *self, const char *id, const char *user_id, const bk_where_t *where,
               bk_member_state_t *state, bool *moved)
{
    *moved = false;
    if (!s_valid(user_id, BK_USER_ID_MAX) || !s_where_valid(where)) {
        return BK_GROUPS_INVALID;
    }
    bk_group_t *g = bk_groups_find(self, id);
    if (g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    bk_member_t *m = bk_group_member(g, user_id);
    if (m) {
        bool offline = strcmp(m->gateway, BK_WHERE_OFFLINE) == 0;
        if (offline && strcmp(where->gateway, BK_WHERE_OFFLINE) != 0) {
            // Added by a worker; its user now joins through a connection: it lives there.
            ga_free(m->gateway);
            m->gateway = ga_strdup(where->gateway);
            m->conn = where->conn;
        } else if (m->conn != where->conn || strcmp(m->gateway, where->gateway) != 0) {
            return BK_GROUPS_ALREADY_MEMBER;
        }
        if (strcmp(m->topic, where->topic) == 0) {
            return BK_GROUPS_ALREADY_MEMBER;
        }
        ga_free(m->topic);
        m->topic = ga_strdup(where->topic);
        *state = m->state;
        self->dirty = true;
        *moved = true;
        return BK_GROUPS_OK;
    }
    *state = g->type == BK_GROUP_PUBLIC || strcmp(g->admin, user_id) == 0 ? BK_MEMBER_ACTIVE
                                                                          : BK_MEMBER_PENDING;
    return s_add_member(self, g, user_id, where, *state);
}

bk_groups_rc_t
bk_groups_leave(bk_groups_t *self, const char *id, const char *user_id)
{
    bk_group_t *g = bk_groups_find(self, id);
    if (g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    bk_member_t *m = bk_group_member(g, user_id);
    if (m == NULL) {
        return BK_GROUPS_NOT_MEMBER;
    }
    s_remove_at(g, (size_t) (m - g->members));
    self->dirty = true;
    return BK_GROUPS_OK;
}

// The actor's standing: found, a member, not pending.
static bk_groups_rc_t
s_actor(const bk_groups_t *self, const char *id, const char *actor, bk_group_t **g,
        bk_member_t **m)
{
    *g = bk_groups_find(self, id);
    if (*g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    *m = bk_group_member(*g, actor);
    if (*m == NULL) {
        return BK_GROUPS_NOT_MEMBER;
    }
    if ((*m)->state == BK_MEMBER_PENDING) {
        return BK_GROUPS_PENDING;
    }
    return BK_GROUPS_OK;
}

bk_groups_rc_t
bk_groups_accept(bk_groups_t *self, const char *id, const char *actor, const char *target)
{
    bk_group_t *g;
    bk_member_t *a;
    bk_groups_rc_t rc = s_actor(self, id, actor, &g, &a);
    if (rc != BK_GROUPS_OK) {
        return rc;
    }
    if (g->type == BK_GROUP_PUBLIC) {
        return BK_GROUPS_WRONG_TYPE;
    }
    if (g->type == BK_GROUP_STRICT_PRIVATE && strcmp(g->admin, actor) != 0) {
        return BK_GROUPS_NOT_ADMIN;
    }
    if (g->type == BK_GROUP_PRIVATE && a->state != BK_MEMBER_ACTIVE) {
        return BK_GROUPS_MUTED;
    }
    bk_member_t *t = bk_group_member(g, target);
    if (t == NULL) {
        return BK_GROUPS_TARGET_NOT_MEMBER;
    }
    if (t->state != BK_MEMBER_PENDING) {
        return BK_GROUPS_NOT_PENDING;
    }
    t->state = BK_MEMBER_ACTIVE;
    self->dirty = true;
    return BK_GROUPS_OK;
}

bk_groups_rc_t
bk_groups_mute(bk_groups_t *self, const char *id, const char *actor, const char *target,
               bool mute)
{
    bk_group_t *g;
    bk_member_t *a;
    bk_groups_rc_t rc = s_actor(self, id, actor, &g, &a);
    if (rc != BK_GROUPS_OK) {
        return rc;
    }
    if (g->type != BK_GROUP_STRICT_PRIVATE) {
        return BK_GROUPS_WRONG_TYPE;
    }
    if (strcmp(g->admin, actor) != 0) {
        return BK_GROUPS_NOT_ADMIN;
    }
    bk_member_t *t = bk_group_member(g, target);
    if (t == NULL) {
        return BK_GROUPS_TARGET_NOT_MEMBER;
    }
    if (t->state == BK_MEMBER_PENDING) {
        return BK_GROUPS_TARGET_PENDING;
    }
    t->state = mute ? BK_MEMBER_MUTED : BK_MEMBER_ACTIVE;
    self->dirty = true;
    return BK_GROUPS_OK;
}

bk_groups_rc_t
bk_groups_can_send(const bk_groups_t *self, const char *id, const char *user_id)
{
    bk_group_t *g;
    bk_member_t *m;
    bk_groups_rc_t rc = s_actor(self, id, user_id, &g, &m);
    if (rc == BK_GROUPS_OK && m->state == BK_MEMBER_MUTED) {
        return BK_GROUPS_MUTED;
    }
    return rc;
}

bk_groups_rc_t
bk_groups_can_view(const bk_groups_t *self, const char *id, const char *user_id)
{
    bk_group_t *g = bk_groups_find(self, id);
    if (g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    return bk_group_member(g, user_id) ? BK_GROUPS_OK : BK_GROUPS_NOT_MEMBER;
}

bk_groups_rc_t
bk_groups_delete(bk_groups_t *self, const char *id, const char *actor, bk_group_t **gone)
{
    *gone = NULL;
    bk_group_t *g = bk_groups_find(self, id);
    if (g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    if (actor == NULL || strcmp(g->admin, actor) != 0) {
        return bk_group_member(g, actor) ? BK_GROUPS_NOT_ADMIN : BK_GROUPS_NOT_MEMBER;
    }
    zhash_freefn(self->groups, id, NULL); // moved out to the caller
    zhash_delete(self->groups, id);
    *gone = g;
    self->dirty = true;
    return BK_GROUPS_OK;
}

size_t
bk_groups_drop_where(bk_groups_t *self, const char *gateway, uint64_t conn, const char *topic,
                     void (*fn)(void *arg, const bk_group_t *g, const bk_member_t *m), void *arg)
{
    size_t n = 0;
    for (bk_group_t *g = zhash_first(self->groups); g; g = zhash_next(self->groups)) {
        for (size_t i = 0; i < g->n_members;) {
            bk_member_t *m = &g->members[i];
            if (strcmp(m->gateway, gateway) == 0 && (conn == 0 || m->conn == conn) &&
                (topic == NULL || strcmp(m->topic, topic) == 0)) {
                if (fn) {
                    fn(arg, g, m);
                }
                s_remove_at(g, i);
                self->dirty = true;
                n++;
            } else {
                i++;
            }
        }
    }
    return n;
}

bk_groups_rc_t
bk_groups_restore_group(bk_groups_t *self, const char *id, bk_group_type_t type,
                        const char *admin, uint64_t seq)
{
    if (!s_valid(id, BK_GROUP_ID_MAX) || !s_valid(admin, BK_USER_ID_MAX) ||
        type > BK_GROUP_STRICT_PRIVATE) {
        return BK_GROUPS_INVALID;
    }
    if (zhash_lookup(self->groups, id)) {
        return BK_GROUPS_EXISTS;
    }
    if (zhash_size(self->groups) >= self->max_groups) {
        return BK_GROUPS_TOO_MANY_GROUPS;
    }
    bk_group_t *g = ga_calloc(1, sizeof *g);
    g->id = ga_strdup(id);
    g->type = type;
    g->admin = ga_strdup(admin);
    g->seq = seq;
    ga_assert(zhash_insert(self->groups, id, g) == 0);
    zhash_freefn(self->groups, id, s_group_free_fn);
    return BK_GROUPS_OK;
}

bk_groups_rc_t
bk_groups_restore_member(bk_groups_t *self, const char *id, const char *user_id,
                         bk_member_state_t state)
{
    bk_group_t *g = bk_groups_find(self, id);
    if (g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    if (!s_valid(user_id, BK_USER_ID_MAX) || state > BK_MEMBER_MUTED) {
        return BK_GROUPS_INVALID;
    }
    if (bk_group_member(g, user_id)) {
        return BK_GROUPS_ALREADY_MEMBER;
    }
    bk_where_t detached = {.gateway = "", .conn = 0, .topic = ""};
    return s_add_member(self, g, user_id, &detached, state);
}

bk_groups_rc_t
bk_groups_attach(bk_groups_t *self, const char *id, const char *user_id, const bk_where_t *where,
                 bk_member_t **m)
{
    if (!s_where_valid(where)) {
        return BK_GROUPS_INVALID;
    }
    bk_group_t *g = bk_groups_find(self, id);
    if (g == NULL) {
        return BK_GROUPS_NOT_FOUND;
    }
    *m = bk_group_member(g, user_id);
    if (*m == NULL) {
        return BK_GROUPS_NOT_MEMBER;
    }
    if ((*m)->gateway[0] == '\0') {
        ga_free((*m)->gateway);
        ga_free((*m)->topic);
        (*m)->gateway = ga_strdup(where->gateway);
        (*m)->topic = ga_strdup(where->topic);
        (*m)->conn = where->conn;
        self->dirty = true;
        return BK_GROUPS_OK;
    }
    bool same = (*m)->conn == where->conn && strcmp((*m)->gateway, where->gateway) == 0 &&
                strcmp((*m)->topic, where->topic) == 0;
    return same ? BK_GROUPS_OK : BK_GROUPS_ALREADY_MEMBER;
}

bool
bk_groups_dirty(const bk_groups_t *self)
{
    return self->dirty;
}

void
bk_groups_saved(bk_groups_t *self)
{
    self->dirty = false;
}

bk_group_t *
bk_groups_first(bk_groups_t *self)
{
    return zhash_first(self->groups);
}

bk_group_t *
bk_groups_next(bk_groups_t *self)
{
    return zhash_next(self->groups);
}
