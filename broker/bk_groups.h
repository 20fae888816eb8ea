// SPDX-License-Identifier: MIT
// The relay group registry (docs/protocol.md, "Relay groups"): groups of three types, their
// members with a state each, the creator as admin, and the permission matrix every operation is
// checked against. Pure bookkeeping, no I/O: the broker keeps one (broker/bk_relay.c) and tells
// the gateways what changed. Each member records where it lives (gateway, connection, channel
// topic) so that a closed socket or a dead gateway takes exactly its own members. Bounded: at
// most `max_groups` groups and `max_members` members per group. One thread.
#ifndef BK_GROUPS_H
#define BK_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_GROUP_ID_MAX 128 // bytes of a group id
#define BK_USER_ID_MAX 1024 // bytes of a user id
#define BK_TOPIC_MAX 256    // bytes of a channel topic
#define BK_WHERE_OFFLINE "-" // bk_where_t gateway and topic of a member living on no connection

typedef enum {
    BK_GROUP_PUBLIC,         // join -> active
    BK_GROUP_PRIVATE,        // join -> pending; any active member accepts
    BK_GROUP_STRICT_PRIVATE, // join -> pending; the admin accepts, mutes and unmutes
} bk_group_type_t;

typedef enum {
    BK_MEMBER_ACTIVE,  // sends and receives
    BK_MEMBER_PENDING, // waits to be accepted: neither sends nor receives
    BK_MEMBER_MUTED,   // receives, does not send
} bk_member_state_t;

// Outcome of an operation; bk_groups_strerror gives the client-facing message.
typedef enum {
    BK_GROUPS_OK = 0,
    BK_GROUPS_NOT_FOUND,       // "group not found"
    BK_GROUPS_NOT_MEMBER,      // "not a member"
    BK_GROUPS_PENDING,         // "membership pending"
    BK_GROUPS_MUTED,           // "member is muted"
    BK_GROUPS_NOT_ADMIN,       // "not admin"
    BK_GROUPS_WRONG_TYPE,      // "wrong group type"
    BK_GROUPS_ALREADY_MEMBER,  // "already a member"
    BK_GROUPS_EXISTS,          // "group already exists"
    BK_GROUPS_TOO_MANY_GROUPS, // "too many groups (max_groups)"
    BK_GROUPS_TOO_MANY_MEMBERS, // "too many members in the group (max_group_members)"
    BK_GROUPS_INVALID,         // "invalid group id, user id or topic"
    BK_GROUPS_TARGET_NOT_MEMBER, // "target is not a member"
    BK_GROUPS_NOT_PENDING,     // "target is not pending"
    BK_GROUPS_TARGET_PENDING,  // "target is pending"
} bk_groups_rc_t;

// Where a member lives: its gateway (the broker's key for it), connection and channel topic.
// A member a worker added for its user (docs/protocol.md, "Relay groups from workers") lives on
// no connection: gateway and topic BK_WHERE_OFFLINE, conn 0. It sends and acts through workers,
// receives nothing, and its user joining through a connection attaches it there.
typedef struct {
    const char *gateway; // gateway key (the hex routing id at the broker)
    uint64_t conn;       // connection id at that gateway
    const char *topic;   // the channel through which it joined (relay pushes go there)
} bk_where_t;

typedef struct {
    char *user_id;           // owned
    bk_member_state_t state; // active, pending, muted
    char *gateway;           // owned: bk_where_t.gateway
    uint64_t conn;           // bk_where_t.conn
    char *topic;             // owned: bk_where_t.topic
} bk_member_t;

typedef struct {
    char *id;              // owned
    bk_group_type_t type;  // public, private, strict_private
    char *admin;           // the creator's user id (owned): admin whenever it is a member
    bk_member_t *members;  // members, in order of joining
    size_t n_members;      // entries used
    size_t cap_members;    // entries allocated
    uint64_t seq;          // messages published so far (relay sequence number)
} bk_group_t;

typedef struct bk_groups_t bk_groups_t;

// Creates an empty registry bounded by `max_groups` and `max_members` per group (both > 0).
bk_groups_t *bk_groups_new(size_t max_groups, size_t max_members);
void bk_groups_destroy(bk_groups_t **self_p);

// The message for `rc` ("group not found", ...).
const char *bk_groups_strerror(bk_groups_rc_t rc);
// "public", "private", "strict_private"; bk_group_type_parse gives -1 for anything else.
const char *bk_group_type_name(bk_group_type_t type);
int bk_group_type_parse(const char *name);
// "active", "pending", "muted".
const char *bk_member_state_name(bk_member_state_t state);

// Creates group `id` of `type` with `user_id` as admin and first (active) member at `where`.
bk_groups_rc_t bk_groups_create(bk_groups_t *self, const char *id, bk_group_type_t type,
                                const char *user_id, const bk_where_t *where);
// Adds `user_id` at `where`: active in a public group (and for the admin in any group),
// pending otherwise; the state in `*state`. A member joining again from the same connection
// is moved to the new channel topic and keeps its state (*moved set), and so is an offline
// member (BK_WHERE_OFFLINE) joining from a connection; from elsewhere it is
// BK_GROUPS_ALREADY_MEMBER.
bk_groups_rc_t bk_groups_join(bk_groups_t *self, const char *id, const char *user_id,
                              const bk_where_t *where, bk_member_state_t *state, bool *moved);
// Removes member `user_id` (any state).
bk_groups_rc_t bk_groups_leave(bk_groups_t *self, const char *id, const char *user_id);
// `actor` accepts pending member `target`: private groups any active member (not muted), strict
// private the admin only; public groups have no pending members (BK_GROUPS_WRONG_TYPE).
bk_groups_rc_t bk_groups_accept(bk_groups_t *self, const char *id, const char *actor,
                                const char *target);
// `actor` mutes (`mute` true) or unmutes `target`: strict private groups only, the admin only.
// Muting a muted member or unmuting an active one is a no-op; a pending target is refused.
bk_groups_rc_t bk_groups_mute(bk_groups_t *self, const char *id, const char *actor,
                              const char *target, bool mute);
// Whether `user_id` may send to group `id`: an active member.
bk_groups_rc_t bk_groups_can_send(const bk_groups_t *self, const char *id, const char *user_id);
// Whether `user_id` may see group `id` (group_info): a member in any state.
bk_groups_rc_t bk_groups_can_view(const bk_groups_t *self, const char *id, const char *user_id);
// Deletes group `id`; the admin only. The group is valid until the next call on the registry
// only through `*gone` (moved out, freed with bk_group_free), so the caller can tell its
// members' gateways.
bk_groups_rc_t bk_groups_delete(bk_groups_t *self, const char *id, const char *actor,
                                bk_group_t **gone);
void bk_group_free(bk_group_t **group_p);

// The group `id`, or NULL.
bk_group_t *bk_groups_find(const bk_groups_t *self, const char *id);
// The member `user_id` of `g`, or NULL.
bk_member_t *bk_group_member(const bk_group_t *g, const char *user_id);
// Members that receive messages (active and muted).
size_t bk_group_receivers(const bk_group_t *g);
size_t bk_groups_count(const bk_groups_t *self);

// Removes every member living on `gateway` (connection `conn`, or any when 0; channel `topic`,
// or any when NULL) from every group; calls `fn` (may be NULL) for each before it goes.
// Returns how many were removed.
size_t bk_groups_drop_where(bk_groups_t *self, const char *gateway, uint64_t conn,
                            const char *topic,
                            void (*fn)(void *arg, const bk_group_t *g, const bk_member_t *m),
                            void *arg);

// Restoring from a state file (broker/bk_relay.c): a group with its admin and sequence number,
// and its members with their state, detached (no gateway yet: bk_where_t gateway "", conn 0,
// topic "") until their gateway names them again (bk_groups_attach). Detached members are
// listed by group_info and removed with bk_groups_drop_where(self, "", 0, NULL, ...).
bk_groups_rc_t bk_groups_restore_group(bk_groups_t *self, const char *id, bk_group_type_t type,
                                       const char *admin, uint64_t seq);
bk_groups_rc_t bk_groups_restore_member(bk_groups_t *self, const char *id, const char *user_id,
                                        bk_member_state_t state);
// Attaches detached member `user_id` of group `id` to `where` (or confirms it is there
// already); `*m` is the member. BK_GROUPS_ALREADY_MEMBER when it lives elsewhere.
bk_groups_rc_t bk_groups_attach(bk_groups_t *self, const char *id, const char *user_id,
                                const bk_where_t *where, bk_member_t **m);

// Whether anything a state file keeps changed since bk_groups_saved (groups, members, states).
bool bk_groups_dirty(const bk_groups_t *self);
void bk_groups_saved(bk_groups_t *self);

// Iteration over every group (no change to the registry in between).
bk_group_t *bk_groups_first(bk_groups_t *self);
bk_group_t *bk_groups_next(bk_groups_t *self);

#endif
