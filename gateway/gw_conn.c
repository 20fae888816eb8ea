// SPDX-License-Identifier: MIT
// Connection bookkeeping: channels and the bounded outbound queue.
#include "gw_conn.h"

#include <stdio.h>
#include <string.h>

struct gw_outpool_t {
    size_t block;    // bytes of data in every pooled block
    size_t max_free; // most blocks kept
    size_t n_free;   // blocks kept
    gw_out_t *free;  // kept blocks, linked through next
};

gw_outpool_t *
gw_outpool_new(size_t block, size_t max_free)
{
    gw_outpool_t *self = ga_calloc(1, sizeof *self);
    self->block = block;
    self->max_free = max_free;
    return self;
}

void
gw_outpool_destroy(gw_outpool_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    gw_outpool_t *self = *self_p;
    while (self->free) {
        gw_out_t *next = self->free->next;
        ga_free(self->free);
        self->free = next;
    }
    ga_free(self);
    *self_p = NULL;
}

size_t
gw_outpool_free_count(const gw_outpool_t *self)
{
    return self->n_free;
}

// A block of at least `size` data bytes: a kept one when it fits a pooled block.
static gw_out_t *
s_out_alloc(gw_outpool_t *pool, size_t size)
{
    if (pool && size <= pool->block) {
        gw_out_t *out = pool->free;
        if (out) {
            pool->free = out->next;
            pool->n_free--;
            return out;
        }
        size = pool->block;
    }
    gw_out_t *out = ga_malloc(sizeof *out + size);
    out->cap = size;
    return out;
}

static void
s_out_free(gw_outpool_t *pool, gw_out_t *out)
{
    if (pool && out->cap == pool->block && pool->n_free < pool->max_free) {
        out->next = pool->free;
        pool->free = out;
        pool->n_free++;
        return;
    }
    ga_free(out);
}

gw_conn_t *
gw_conn_new(uint64_t id, void *wsi, const char *ip)
{
    gw_conn_t *self = ga_calloc(1, sizeof *self);
    self->id = id;
    self->wsi = wsi;
    snprintf(self->ip, sizeof self->ip, "%s", ip ? ip : "");
    self->who.ip = self->ip;
    ga_buf_init(&self->rx);
    return self;
}

void
gw_conn_destroy(gw_conn_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    gw_conn_t *self = *self_p;
    for (size_t i = 0; i < self->n_channels; i++) {
        ga_free(self->channels[i].topic);
        ga_free(self->channels[i].join_ref);
    }
    ga_free(self->channels);
    gw_conn_clear_queue(self);
    gw_out_t *held;
    while ((held = gw_conn_unhold(self)) != NULL) {
        ga_free(held);
    }
    gw_conn_clear_params(self);
    gw_auth_identity_fini(&self->ident);
    ga_buf_fini(&self->rx);
    ga_free(self);
    *self_p = NULL;
}

void
gw_conn_set_identity(gw_conn_t *self, gw_auth_identity_t *id)
{
    gw_auth_identity_fini(&self->ident);
    self->ident = *id;
    memset(id, 0, sizeof *id);
    self->who.user_id = self->ident.user_id;
    self->who.roles = (const char *const *) self->ident.roles;
    self->who.n_roles = self->ident.n_roles;
    self->who.device_id = self->ident.device_id;
}

gw_channel_t *
gw_conn_channel(gw_conn_t *self, const char *topic)
{
    for (size_t i = 0; i < self->n_channels; i++) {
        if (strcmp(self->channels[i].topic, topic) == 0) {
            return &self->channels[i];
        }
    }
    return NULL;
}

bool
gw_conn_join(gw_conn_t *self, const char *topic, const char *join_ref, size_t max)
{
    gw_channel_t *ch = gw_conn_channel(self, topic);
    if (ch == NULL) {
        if (self->n_channels >= max) {
            return false;
        }
        self->channels =
            ga_realloc(self->channels, sizeof(gw_channel_t) * (self->n_channels + 1));
        ch = &self->channels[self->n_channels++];
        ch->topic = ga_strdup(topic);
        ch->join_ref = NULL;
    }
    ga_free(ch->join_ref);
    ch->join_ref = join_ref ? ga_strdup(join_ref) : NULL;
    return true;
}

bool
gw_conn_leave(gw_conn_t *self, const char *topic)
{
    gw_channel_t *ch = gw_conn_channel(self, topic);
    if (ch == NULL) {
        return false;
    }
    ga_free(ch->topic);
    ga_free(ch->join_ref);
    *ch = self->channels[--self->n_channels];
    return true;
}

bool
gw_conn_hold(gw_conn_t *self, const void *data, size_t len, size_t max)
{
    if (self->n_held >= max) {
        return false;
    }
    gw_out_t *f = ga_malloc(sizeof *f + len);
    f->next = NULL;
    f->len = len;
    f->cap = len;
    memcpy(f->data, data, len);
    if (self->held_tail) {
        self->held_tail->next = f;
    } else {
        self->held_head = f;
    }
    self->held_tail = f;
    self->n_held++;
    return true;
}

gw_out_t *
gw_conn_unhold(gw_conn_t *self)
{
    gw_out_t *f = self->held_head;
    if (f == NULL) {
        return NULL;
    }
    self->held_head = f->next;
    if (self->held_head == NULL) {
        self->held_tail = NULL;
    }
    self->n_held--;
    return f;
}

void
gw_conn_clear_params(gw_conn_t *self)
{
    for (size_t i = 0; i < self->n_params; i++) {
        ga_free(self->params[i]);
    }
    ga_free(self->params);
    self->params = NULL;
    self->n_params = 0;
}

bool
gw_conn_enqueue(gw_conn_t *self, const void *data, size_t len, size_t pre, size_t max_count,
                size_t max_bytes)
{
    if (self->out_count >= max_count || self->out_bytes + len > max_bytes) {
        return false;
    }
    gw_out_t *out = s_out_alloc(self->pool, pre + len);
    out->next = NULL;
    out->len = len;
    memcpy(out->data + pre, data, len);
    if (self->out_tail) {
        self->out_tail->next = out;
    } else {
        self->out_head = out;
    }
    self->out_tail = out;
    self->out_count++;
    self->out_bytes += len;
    return true;
}

gw_out_t *
gw_conn_dequeue(gw_conn_t *self)
{
    gw_out_t *out = self->out_head;
    if (out == NULL) {
        return NULL;
    }
    self->out_head = out->next;
    if (self->out_head == NULL) {
        self->out_tail = NULL;
    }
    self->out_count--;
    self->out_bytes -= out->len;
    return out;
}

void
gw_conn_release(gw_conn_t *self, gw_out_t *out)
{
    s_out_free(self->pool, out);
}

void
gw_conn_clear_queue(gw_conn_t *self)
{
    gw_out_t *out;
    while ((out = gw_conn_dequeue(self)) != NULL) {
        gw_conn_release(self, out);
    }
}
