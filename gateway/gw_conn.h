// SPDX-License-Identifier: MIT
// One client connection's state: identity, joined channels, the partial inbound message and
// the bounded outbound queue. No libwebsockets calls here: gw_server does the I/O, this file
// keeps the bookkeeping and its limits, so it can be unit-tested.
#ifndef GW_CONN_H
#define GW_CONN_H

#include "ga_mem.h"
#include "gw_auth.h"
#include "gw_pipeline.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// One queued outbound frame; `data` has `pre` bytes of headroom before the payload.
typedef struct gw_out_t gw_out_t;
struct gw_out_t {
    gw_out_t *next; // next frame in the queue
    size_t len;     // payload bytes (after the headroom)
    size_t cap;     // bytes allocated in data
    unsigned char data[]; // headroom + payload
};

// A bounded free list of outbound frame blocks shared by the connections of one gateway thread,
// so that queuing a reply costs no malloc in the steady state. Frames that do not fit a block
// are allocated to size and freed after use. Not thread-safe (one per event loop).
typedef struct gw_outpool_t gw_outpool_t;
// Blocks of `block` bytes (headroom + payload); at most `max_free` kept when released.
gw_outpool_t *gw_outpool_new(size_t block, size_t max_free);
// Frees the kept blocks. Connections give their frames back to the pool when released or
// destroyed, so destroy the pool after every connection that uses it.
void gw_outpool_destroy(gw_outpool_t **self_p);
// Blocks currently kept for reuse.
size_t gw_outpool_free_count(const gw_outpool_t *self);

typedef struct {
    char *topic;    // joined topic (owned)
    char *join_ref; // the join's ref (owned; NULL for null)
} gw_channel_t;

typedef struct {
    uint64_t id;             // connection id, never reused
    void *wsi;               // the libwebsockets handle (borrowed)
    char ip[64];             // peer address
    gw_identity_t who;       // identity as the pipeline sees it (strings in `ident`)
    gw_auth_identity_t ident; // identity strings (owned)
    gw_channel_t *channels;  // joined channels
    size_t n_channels;       // entries used
    ga_buf_t rx;             // inbound message being assembled
    gw_outpool_t *pool;      // where outbound frames come from and return to (NULL: malloc)
    gw_out_t *out_head;      // oldest queued frame
    gw_out_t *out_tail;      // newest queued frame
    size_t out_count;        // frames queued
    size_t out_bytes;        // payload bytes queued
    bool auth_pending;       // waiting for the identity service: inbound frames are held
    char **params;           // connect params "name=value" (kept only while auth is pending)
    size_t n_params;         // entries in params
    gw_out_t *held_head;     // inbound frames held while auth is pending (oldest first)
    gw_out_t *held_tail;     // newest held frame
    size_t n_held;           // frames held
    int close_code;          // non-zero: close with this code at the next WRITEABLE
    char close_reason[64];   // reason sent with close_code
} gw_conn_t;

gw_conn_t *gw_conn_new(uint64_t id, void *wsi, const char *ip);
void gw_conn_destroy(gw_conn_t **self_p);
// Takes over `*id` (left empty) as the connection's identity.
void gw_conn_set_identity(gw_conn_t *self, gw_auth_identity_t *id);

// The channel joined on `topic`, or NULL.
gw_channel_t *gw_conn_channel(gw_conn_t *self, const char *topic);
// Joins (or re-joins, replacing the join_ref). False when `max` channels are already joined.
bool gw_conn_join(gw_conn_t *self, const char *topic, const char *join_ref, size_t max);
// Leaves; false when not joined.
bool gw_conn_leave(gw_conn_t *self, const char *topic);

// Holds a copy of an inbound frame while authentication is pending; false when `max` frames
// are already held.
bool gw_conn_hold(gw_conn_t *self, const void *data, size_t len, size_t max);
// Removes and returns the oldest held frame (caller frees it with ga_free), or NULL.
gw_out_t *gw_conn_unhold(gw_conn_t *self);
// Frees the connect params.
void gw_conn_clear_params(gw_conn_t *self);

// Queues a copy of `data` with `pre` bytes of headroom. Returns false, queuing nothing, when
// the queue already holds `max_count` frames or `max_bytes` bytes: the caller closes the
// connection as a slow consumer.
bool gw_conn_enqueue(gw_conn_t *self, const void *data, size_t len, size_t pre, size_t max_count,
                     size_t max_bytes);
// Removes and returns the oldest frame (the caller gives it back with gw_conn_release), or NULL.
gw_out_t *gw_conn_dequeue(gw_conn_t *self);
// Returns a dequeued frame to the connection's pool (or frees it).
void gw_conn_release(gw_conn_t *self, gw_out_t *out);
// Drops every queued frame.
void gw_conn_clear_queue(gw_conn_t *self);

#endif
