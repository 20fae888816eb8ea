// SPDX-License-Identifier: MIT
// Who may do what on the broker's sockets (docs/security.md): with CURVE on, the sender's key
// role decides which commands it may send, and a worker key registers only the services its
// certificate names, never a service another key holds; with or without CURVE, the allowlist
// and the reserved names decide which functions can be registered at all.
#include "bk_internal.h"

#include "ga_clock.h"
#include "ga_log.h"
#include "ga_proto.h"

#include <stdio.h>
#include <zmq.h>
#include <string.h>

// Functions genapi itself provides (relay groups) and the operator namespace: no worker may
// register them.
static const char *const s_reserved_functions[] = {
    "chat_service.create_group", "chat_service.join_group",   "chat_service.leave_group",
    "chat_service.accept_member", "chat_service.mute_member", "chat_service.unmute_member",
    "chat_service.group_info",   "chat_service.delete_group", "chat_service.send_message",
};

static bool
s_reserved(const char *service, const char *request_type)
{
    if (strcmp(service, "genapi") == 0 || strncmp(service, "genapi.", 7) == 0) {
        return true;
    }
    char name[600];
    snprintf(name, sizeof name, "%s.%s", service, request_type);
    for (size_t i = 0; i < sizeof s_reserved_functions / sizeof s_reserved_functions[0]; i++) {
        if (strcmp(name, s_reserved_functions[i]) == 0) {
            return true;
        }
    }
    return false;
}

// True when the allowlist (comma-separated "service" or "service.function"; empty: everything)
// admits the function.
static bool
s_allowed(const char *allowlist, const char *service, const char *request_type)
{
    if (allowlist == NULL || allowlist[0] == '\0') {
        return true;
    }
    char name[600];
    snprintf(name, sizeof name, "%s.%s", service, request_type);
    return ga_curve_allows_service(allowlist, service) || ga_curve_allows_service(allowlist, name);
}

bool
bk_access_gateway_msg(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    if (self->zap == NULL) {
        return true;
    }
    const ga_curve_cert_t *peer = bk_zap_peer(self->zap, msg->user_id);
    const char *need = msg->cmd == GA_CMD_ADMIN ? "operator" : "gateway";
    if (peer && strcmp(peer->role, need) == 0) {
        return true;
    }
    self->stats.refused++;
    GA_WARN("%s from %s key %s refused: only %s keys may send it", ga_cmd_name(msg->cmd),
            peer ? peer->role : "an unknown", peer ? peer->name : "?", need);
    ga_arena_t *a = self->arena;
    if (msg->cmd == GA_CMD_ADMIN) {
        ga_value_t reply = ga_map(a, 2);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str("operator key required"));
        bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
    } else if (msg->cmd == GA_CMD_CALL) {
        int64_t id = ga_map_get_int(&msg->value, "id", 0);
        if (id > 0) {
            bk_send_error(self, msg->id, msg->id_len, (uint64_t) id, GA_EDENIED,
                          "Permission denied", false);
        }
    }
    return false;
}

// A caller identity field: absent, or a non-empty string without NUL bytes, at most `max` bytes.
static bool
s_identity_str(const ga_value_t *v, size_t max)
{
    return v == NULL || v->type == GA_NIL ||
           (v->type == GA_STR && v->len > 0 && v->len <= max && strlen(v->u.s) == v->len);
}

bool
bk_access_call_identity(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    const ga_value_t *body = &msg->value;
    // The identity fields, found in one pass (for each key its first pair, as ga_map_get):
    // most calls carry none of them.
    const ga_value_t *roles = NULL, *user_id = NULL, *device_id = NULL, *ip = NULL;
    for (uint32_t i = 0; body->type == GA_MAP && i < body->len; i++) {
        const ga_pair_t *p = &body->u.pairs[i];
        const ga_value_t **slot = NULL;
        if (p->key_len == 5 && memcmp(p->key, "roles", 5) == 0) {
            slot = &roles;
        } else if (p->key_len == 7 && memcmp(p->key, "user_id", 7) == 0) {
            slot = &user_id;
        } else if (p->key_len == 9 && memcmp(p->key, "device_id", 9) == 0) {
            slot = &device_id;
        } else if (p->key_len == 2 && memcmp(p->key, "ip", 2) == 0) {
            slot = &ip;
        }
        if (slot && *slot == NULL) {
            *slot = &p->value;
        }
    }
    bool ok = s_identity_str(user_id, BK_IDENTITY_MAX) &&
              s_identity_str(device_id, BK_IDENTITY_MAX) && s_identity_str(ip, 64) &&
              (roles == NULL || roles->type == GA_NIL ||
               (roles->type == GA_ARRAY && roles->len <= BK_ROLES_MAX));
    for (uint32_t i = 0; ok && roles && roles->type == GA_ARRAY && i < roles->len; i++) {
        ok = s_identity_str(&roles->u.items[i], BK_IDENTITY_MAX) &&
             roles->u.items[i].type == GA_STR;
    }
    if (ok) {
        return true;
    }
    self->stats.malformed++;
    int64_t id = ga_map_get_int(body, "id", 0);
    GA_WARN("CALL %lld refused: malformed caller identity", (long long) id);
    if (id > 0) {
        bk_send_error(self, msg->id, msg->id_len, (uint64_t) id, GA_EPROTO,
                      "Invalid caller identity", false);
    }
    return false;
}

uint64_t
bk_access_hash(const void *data, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ ((const uint8_t *) data)[i]) * 1099511628211ULL;
    }
    return h;
}

bool
bk_access_stream_msg(bk_broker_t *self, const bk_call_t *call, const void *topic_frame)
{
    zmq_msg_t *topic = (zmq_msg_t *) topic_frame; // zmq_msg_gets takes a non-const message
    const char *why = NULL;
    if (call == NULL) {
        // Not an open stream (ended, stopped, never routed): nobody waits for it, and its
        // topic and publisher cannot be checked.
        why = "no such stream";
    } else if (bk_access_hash(zmq_msg_data(topic), zmq_msg_size(topic)) != call->topic_hash) {
        why = "not the call's topic";
    } else if (self->zap) {
        const char *user = zmq_msg_gets(topic, "User-Id");
        if (call->worker == NULL || user == NULL || strcmp(user, call->worker->key) != 0) {
            why = "not published by the worker the call was routed to";
        }
    }
    if (why == NULL) {
        return true;
    }
    self->stats.refused++;
    if (ga_log_every_due(&self->refused_stream_log, why, ga_clock_ms(), 60000)) {
        GA_WARN("stream message for call %llu refused: %s (further refusals counted)",
                (unsigned long long) (call ? call->rec.id : 0), why);
    }
    return false;
}

typedef struct {
    const char *service; // the service being registered
    const char *key;     // the registering key
    const uint8_t *id;   // the registering worker's routing id
    size_t id_len;       // bytes in id
    const char *holder;  // out: the node of a worker holding the service with another key
} s_takeover_t;

static void
s_find_holder(bk_worker_t *w, void *arg)
{
    s_takeover_t *t = arg;
    if (t->holder == NULL && w->registered && w->service && strcmp(w->service, t->service) == 0 &&
        strcmp(w->key, t->key) != 0 && (w->id_len != t->id_len || memcmp(w->id, t->id, w->id_len))) {
        t->holder = w->node ? w->node : "?";
    }
}

const char *
bk_access_register_refusal(bk_broker_t *self, const ga_proto_msg_t *msg, char *buf, size_t len)
{
    const char *service = ga_map_get_str(&msg->value, "service");
    if (service == NULL || self->zap == NULL) {
        return NULL; // the registry refuses a body without a service
    }
    const ga_curve_cert_t *peer = bk_zap_peer(self->zap, msg->user_id);
    if (peer == NULL || strcmp(peer->role, "worker") != 0) {
        snprintf(buf, len, "a worker key is required");
        return buf;
    }
    if (!ga_curve_allows_service(peer->services, service)) {
        snprintf(buf, len, "service %s is not allowed for key %s (its services: %s)", service,
                 peer->name, peer->services[0] ? peer->services : "none");
        return buf;
    }
    s_takeover_t t = {.service = service, .key = msg->user_id, .id = msg->id,
                      .id_len = msg->id_len};
    bk_registry_each_worker(self->registry, s_find_holder, &t);
    if (t.holder) {
        snprintf(buf, len, "service %s is registered by %s with another key", service, t.holder);
        return buf;
    }
    return NULL;
}

bool
bk_access_worker_group(bk_broker_t *self, const ga_proto_msg_t *msg, char *why, size_t len)
{
    if (self->zap == NULL) {
        return true; // the broker's sockets are on a trusted network (docs/security.md)
    }
    const ga_curve_cert_t *peer = bk_zap_peer(self->zap, msg->user_id);
    if (peer && strcmp(peer->role, "worker") == 0 &&
        ga_curve_list_has(peer->services, BK_ACCESS_RELAY_GRANT, false)) {
        return true;
    }
    self->stats.refused++;
    snprintf(why, len,
             "Permission denied: worker key %s may not act for users in relay groups (its "
             "certificate's services must name " BK_ACCESS_RELAY_GRANT ")",
             peer ? peer->name : "?");
    GA_WARN("GROUP from worker key %s refused: its services do not name %s",
            peer ? peer->name : "?", BK_ACCESS_RELAY_GRANT);
    return false;
}

bool
bk_access_worker_verify(bk_broker_t *self, const ga_proto_msg_t *msg, const char *service,
                        char *why, size_t len)
{
    if (self->zap == NULL) {
        return true; // the broker's sockets are on a trusted network (docs/security.md)
    }
    const ga_curve_cert_t *peer = bk_zap_peer(self->zap, msg->user_id);
    if (peer && strcmp(peer->role, "worker") == 0 &&
        ga_curve_allows_service(peer->services, service)) {
        return true;
    }
    self->stats.refused++;
    snprintf(why, len,
             "Permission denied: worker key %s may verify only the services its certificate "
             "names (%s)",
             peer ? peer->name : "?", peer && peer->services[0] ? peer->services : "none");
    GA_WARN("verify of %s from worker key %s refused: its services do not name it", service,
            peer ? peer->name : "?");
    return false;
}

ga_value_t
bk_access_filter(bk_broker_t *self, const ga_value_t *body, ga_arena_t *a, ga_value_t *refused)
{
    *refused = ga_array(a, 0);
    const ga_value_t *fns = ga_map_get(body, "functions");
    const char *service = ga_map_get_str(body, "service");
    if (fns == NULL || fns->type != GA_ARRAY || service == NULL) {
        return *body; // malformed: the registry says why
    }
    ga_value_t kept = ga_array(a, fns->len);
    for (uint32_t i = 0; i < fns->len; i++) {
        const ga_value_t *f = &fns->u.items[i];
        const char *rt = ga_map_get_str(f, "request_type");
        const char *fs = ga_map_get_str(f, "service");
        const char *svc = fs ? fs : service;
        const char *why = NULL;
        if (rt && s_reserved(svc, rt)) {
            why = "reserved name: provided by genapi itself";
        } else if (rt && !s_allowed(self->cfg->allowlist, svc, rt)) {
            why = "not in the broker's allowlist";
        }
        if (why) {
            ga_value_t entry = ga_map(a, 2);
            ga_map_put(&entry, a, "function", ga_str(rt));
            ga_map_put(&entry, a, "reason", ga_str(why));
            ga_array_push(refused, a, entry);
            GA_WARN("REGISTER: %s.%s refused: %s", svc, rt, why);
            continue;
        }
        ga_array_push(&kept, a, *f);
    }
    ga_value_t out = ga_map(a, body->len);
    for (uint32_t i = 0; i < body->len; i++) {
        const ga_pair_t *p = &body->u.pairs[i];
        ga_map_put(&out, a, p->key, strcmp(p->key, "functions") == 0 ? kept : p->value);
    }
    return out;
}
