// SPDX-License-Identifier: MIT
// Rate limits at the broker: the operators' rate_limit_* ADMIN operations, forwarded to every
// gateway as GATEWAY_ADMIN and answered once all have replied (or after BK_RL_ADMIN_WAIT_MS),
// and the cluster-wide limits (scope "cluster"), counted here with the gateways' limiter code
// for each CALL that carries its caller's keys. docs/protocol.md, "Rate limits".
#include "bk_internal.h"

#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_ratelimit.h"
#include "ga_wire.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

#define BK_RL_PENDING_MAX 16     // operator requests waiting for gateways at once
#define BK_RL_ADMIN_WAIT_MS 2000 // how long the answers of the gateways are waited for

// One forwarded operator request.
typedef struct {
    bool used;              // the slot is waiting
    uint64_t id;            // sent to the gateways, echoed in their replies
    uint8_t admin[GA_PROTO_MAX_ID]; // the operator's routing id
    size_t admin_len;       // bytes in admin
    size_t expected;        // gateways asked
    size_t answered;        // replies so far
    int64_t deadline;       // monotonic ms: answer with what has come
    ga_buf_t replies;       // the replies' raw MessagePack bodies, back to back
    size_t lens[256];       // bytes of each (at most 256 gateways are kept per request)
    char op[32];            // the operation
} pending_t;

struct bk_ratelimit_t {
    ga_ratelimit_t *limits;              // the cluster-wide limits
    pending_t pending[BK_RL_PENDING_MAX]; // forwarded requests
    uint64_t next_id;                    // last id handed out
};

bk_ratelimit_t *
bk_ratelimit_new(void)
{
    bk_ratelimit_t *self = ga_calloc(1, sizeof *self);
    self->limits = ga_ratelimit_new();
    for (size_t i = 0; i < BK_RL_PENDING_MAX; i++) {
        ga_buf_init(&self->pending[i].replies);
    }
    return self;
}

void
bk_ratelimit_destroy(bk_ratelimit_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_ratelimit_destroy(&(*self_p)->limits);
    for (size_t i = 0; i < BK_RL_PENDING_MAX; i++) {
        ga_buf_fini(&(*self_p)->pending[i].replies);
    }
    ga_free(*self_p);
    *self_p = NULL;
}

ga_ratelimit_t *
bk_broker_rate_limits(bk_broker_t *self)
{
    return self->rl->limits;
}

// Answers the operator of `p`: {ok, gateways: [each gateway's reply], missing, broker?}. ok is
// true when every gateway that answered said ok (and the broker's own limiter, for writes).
static void
s_finish(bk_broker_t *self, pending_t *p)
{
    ga_arena_t *a = self->arena;
    ga_value_t list = ga_array(a, (uint32_t) (p->answered ? p->answered : 1));
    bool ok = true;
    const char *error = NULL;
    size_t off = 0;
    size_t kept = p->answered < 256 ? p->answered : 256;
    for (size_t i = 0; i < kept; i++) {
        ga_value_t v;
        if (ga_wire_decode(p->replies.data + off, p->lens[i], a, &v) == GA_OK) {
            const ga_value_t *g_ok = ga_map_get(&v, "ok");
            if (!(g_ok && g_ok->type == GA_BOOL && g_ok->u.b)) {
                ok = false;
                error = error ? error : ga_map_get_str(&v, "error");
            }
            ga_array_push(&list, a, v);
        }
        off += p->lens[i];
    }
    ga_value_t reply = ga_map(a, 6);
    ga_map_put(&reply, a, "gateways", list);
    ga_map_put(&reply, a, "missing", ga_int((int64_t) (p->expected - p->answered)));
    ga_map_put(&reply, a, "ok", ga_bool(ok));
    if (error) {
        ga_map_put(&reply, a, "error", ga_str(error));
    }
    bk_send(self, self->gateways, p->admin, p->admin_len, GA_CMD_ADMIN_REPLY, &reply);
    p->used = false;
    ga_buf_reset(&p->replies);
}

bool
bk_ratelimit_is_op(const char *op)
{
    return op && strncmp(op, "rate_limit_", 11) == 0;
}

void
bk_ratelimit_admin(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    ga_arena_t *a = self->arena;
    const char *op = ga_map_get_str(&msg->value, "op");
    // ?target=broker: the broker's own (cluster-wide) limiter answers at once.
    const char *target = ga_map_get_str(&msg->value, "target");
    if (target && strcmp(target, "broker") == 0) {
        ga_value_t reply = ga_ratelimit_admin(self->rl->limits, &msg->value, ga_clock_ms(), a);
        bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
        return;
    }
    pending_t *p = NULL;
    for (size_t i = 0; i < BK_RL_PENDING_MAX && p == NULL; i++) {
        p = self->rl->pending[i].used ? NULL : &self->rl->pending[i];
    }
    if (p == NULL || !ga_ratelimit_admin_op_known(op)) {
        ga_value_t reply = ga_map(a, 2);
        ga_map_put(&reply, a, "ok", ga_bool(false));
        ga_map_put(&reply, a, "error", ga_str(p ? "unknown op (rate_limit_config, "
                                                  "rate_limit_status, rate_limit_reset, "
                                                  "rate_limit_add, rate_limit_remove, "
                                                  "rate_limit_set)"
                                                : "too many rate-limit operations waiting for "
                                                  "gateways; try again"));
        bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_ADMIN_REPLY, &reply);
        return;
    }
    memset(p->lens, 0, sizeof p->lens);
    p->used = true;
    p->id = ++self->rl->next_id;
    memcpy(p->admin, msg->id, msg->id_len);
    p->admin_len = msg->id_len;
    p->expected = 0;
    p->answered = 0;
    p->deadline = ga_clock_ms() + BK_RL_ADMIN_WAIT_MS;
    snprintf(p->op, sizeof p->op, "%s", op);
    // The request as it came, without the operator's token, plus the id.
    ga_value_t fwd = ga_map(a, msg->value.len + 1);
    for (uint32_t i = 0; i < msg->value.len; i++) {
        const ga_pair_t *pair = &msg->value.u.pairs[i];
        if (strcmp(pair->key, "token") != 0 && strcmp(pair->key, "id") != 0) {
            ga_map_put(&fwd, a, pair->key, pair->value);
        }
    }
    ga_map_put(&fwd, a, "id", ga_int((int64_t) p->id));
    ga_buf_reset(&self->out);
    ga_wire_encode(&self->out, &fwd);
    bk_batch_close(self, self->gateways);
    for (bk_gateway_t *gw = zhash_first(self->gws); gw; gw = zhash_next(self->gws)) {
        if (ga_proto_send(self->gateways, gw->id, gw->id_len, GA_CMD_GATEWAY_ADMIN, &self->out) ==
            GA_OK) {
            p->expected++;
        } else {
            self->stats.undeliverable++;
        }
    }
    if (p->expected == 0) {
        s_finish(self, p); // no gateway: an empty answer at once
    }
}

void
bk_ratelimit_on_reply(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    int64_t id = ga_map_get_int(&msg->value, "id", 0);
    for (size_t i = 0; i < BK_RL_PENDING_MAX; i++) {
        pending_t *p = &self->rl->pending[i];
        if (!p->used || p->id != (uint64_t) id) {
            continue;
        }
        if (p->answered < 256) {
            ga_buf_append(&p->replies, msg->body.data, msg->body.len);
            p->lens[p->answered] = msg->body.len;
        }
        p->answered++;
        if (p->answered >= p->expected) {
            s_finish(self, p);
        }
        return;
    }
    GA_DEBUG("late GATEWAY_ADMIN_REPLY %lld dropped", (long long) id);
}

void
bk_ratelimit_tick(bk_broker_t *self, int64_t now)
{
    for (size_t i = 0; i < BK_RL_PENDING_MAX; i++) {
        pending_t *p = &self->rl->pending[i];
        if (p->used && now >= p->deadline) {
            GA_WARN("rate-limit op %s: %zu of %zu gateway(s) answered in time", p->op,
                    p->answered, p->expected);
            s_finish(self, p);
        }
    }
}

// Removes `key` from map `m` (order is not kept: the last pair takes its place).
static void
s_map_remove(ga_value_t *m, const char *key)
{
    for (uint32_t i = 0; i < m->len; i++) {
        if (strcmp(m->u.pairs[i].key, key) == 0) {
            m->u.pairs[i] = m->u.pairs[m->len - 1];
            m->len--;
            return;
        }
    }
}

bool
bk_ratelimit_allow_call(bk_broker_t *self, const ga_proto_msg_t *msg)
{
    // The body is the broker's own decoded copy (in its arena): it may be edited before it is
    // forwarded, as bk_on_call does with the id.
    ga_value_t *body = (ga_value_t *) &msg->value;
    const ga_value_t *keys = ga_map_get(body, "rate_limit");
    if (keys == NULL) {
        return true;
    }
    ga_value_t rl = *keys;
    s_map_remove(body, "rate_limit"); // the worker never sees the caller's keys through it
    if (rl.type != GA_MAP || !ga_ratelimit_is_enabled(self->rl->limits)) {
        return true;
    }
    // Limits keyed on an argument read the call's payload, decoded here (cluster-wide limits
    // only: docs/protocol.md, "Rate limits"). A permission check or hook carries the limits'
    // subject, the call it guards, whose args are inside its own at `args_in`.
    const char *service = ga_map_get_str(&rl, "service");
    const char *request_type = ga_map_get_str(&rl, "request_type");
    const char *args_in = NULL;
    if (service == NULL || request_type == NULL) {
        service = ga_map_get_str(body, "service");
        request_type = ga_map_get_str(body, "request_type");
    } else {
        args_in = ga_map_get_str(&rl, "args_in");
    }
    ga_value_t payload = ga_nil();
    const ga_value_t *args = NULL;
    if (ga_proto_payload_decode(msg, self->arena, &payload) == GA_OK) {
        args = &payload; // a malformed one: no argument values (the worker refuses it)
        for (const char *p = args_in; p && *p && args;) {
            size_t n = strcspn(p, ".");
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int) (n < sizeof key ? n : sizeof key - 1), p);
            args = ga_map_get(args, key);
            p += n + (p[n] == '.');
        }
    }
    ga_rl_subject_t who = {.user_id = ga_map_get_str(&rl, "user_id"),
                           .device_id = ga_map_get_str(&rl, "device_id"),
                           .ip_address = ga_map_get_str(&rl, "ip_address"),
                           .args = args && args->type == GA_MAP ? args : NULL};
    int64_t retry = 0;
    ga_rl_verdict_t v = ga_ratelimit_check(self->rl->limits, service, request_type, &who,
                                           ga_clock_ms(), &retry);
    if (v == GA_RL_ALLOW) {
        return true;
    }
    int64_t gw_call_id = ga_map_get_int(body, "id", 0);
    ga_arena_t *a = self->arena;
    ga_value_t m = ga_map(a, 7);
    ga_map_put(&m, a, "id", ga_int(gw_call_id));
    ga_map_put(&m, a, "ok", ga_bool(false));
    ga_map_put(&m, a, "error", ga_str(v == GA_RL_LIMITED ? GA_RL_REFUSAL : GA_RL_FAILURE));
    ga_map_put(&m, a, "code", ga_int(GA_EAGAIN));
    ga_map_put(&m, a, "can_retry", ga_bool(true));
    ga_map_put(&m, a, "rate_limited", ga_bool(true));
    if (v == GA_RL_LIMITED) {
        ga_map_put(&m, a, "retry_after_ms", ga_int(retry));
    }
    self->stats.results++;
    bk_send(self, self->gateways, msg->id, msg->id_len, GA_CMD_RESULT, &m);
    return false;
}
