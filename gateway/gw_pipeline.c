// SPDX-License-Identifier: MIT
// The request pipeline: payload fields, function lookup, argument validation, permission
// checks, result conversion. Keeps the gateway's copy of the registry. Pure with respect to I/O.
#include "gw_pipeline.h"

#include "ga_clock.h"
#include "ga_functable.h"
#include "ga_json.h"
#include "ga_log.h"

#include <stdio.h>
#include <string.h>

#define GW_PERMISSION_FNS_MAX 32 // in-process permission callbacks
#define GW_HOOK_FNS_MAX       32 // in-process hooks
#define GW_BUILTIN_SERVICES_MAX 4 // distinct services of built-in functions remembered
#define GW_IDENTIFY_NAME_MAX    64 // longest service, request_type or version s_identify keeps

typedef struct {
    const char *name; // hook name (borrowed)
    gw_hook_fn *fn;   // the hook
    void *arg;        // its argument
} hook_fn_t;

typedef struct {
    const char *name;       // permission_callback name (borrowed)
    gw_permission_fn *fn;   // the callback
    void *arg;              // its argument
} permission_fn_t;

struct gw_pipeline_t {
    const gw_pipeline_config_t *cfg; // borrowed settings
    ga_functable_t *functions;       // registry copy
    ga_functable_t *held;            // the copy before a warming broker's snapshot, or NULL
    int64_t held_until;              // monotonic ms: `held` answers until then
    size_t rejected_configs;         // configs from the broker this gateway refused
    permission_fn_t permission_fns[GW_PERMISSION_FNS_MAX]; // in-process callbacks
    size_t n_permission_fns;         // entries used
    ga_ratelimit_t *limits;          // rate limits (docs/configuration.md, "Rate limits")
    ga_functable_t *builtins;        // the gateway's own functions (gw_pipeline_add_builtin)
    // The services of `builtins` (copies), so that a call of any other service skips that
    // table; NULL entries unused. More distinct services than fit: every call looks there.
    char *builtin_services[GW_BUILTIN_SERVICES_MAX];
    bool builtin_services_full;      // a builtin's service did not fit: always look
    // The config the last request named (s_identify), so that a run of calls of one function
    // skips the tables' lookups; emptied whenever either table changes (gw_pipeline_apply,
    // gw_pipeline_add_builtin). cfg NULL: empty.
    struct {
        const ga_funcfg_t *cfg;
        uint32_t service_len, request_type_len, version_len; // version_len 0: no version asked
        char service[GW_IDENTIFY_NAME_MAX];
        char request_type[GW_IDENTIFY_NAME_MAX];
        char version[GW_IDENTIFY_NAME_MAX];
    } last;
    hook_fn_t hook_fns[GW_HOOK_FNS_MAX]; // in-process hooks
    size_t n_hook_fns;               // entries used
    uint64_t hook_failures;          // hook calls that failed (gw_pipeline_hook_failures)
    uint64_t hook_timeouts;          // hook calls that timed out
};

gw_pipeline_t *
gw_pipeline_new(const gw_pipeline_config_t *cfg)
{
    gw_pipeline_t *self = ga_calloc(1, sizeof *self);
    self->cfg = cfg;
    self->functions = ga_functable_new();
    self->limits = ga_ratelimit_new();
    self->builtins = ga_functable_new();
    return self;
}

ga_ratelimit_t *
gw_pipeline_rate_limits(gw_pipeline_t *self)
{
    return self->limits;
}

ga_value_t
gw_pipeline_admin(gw_pipeline_t *self, const ga_value_t *req, ga_arena_t *arena)
{
    return ga_ratelimit_admin(self->limits, req, ga_clock_ms(), arena);
}

void
gw_pipeline_destroy(gw_pipeline_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_functable_destroy(&(*self_p)->functions);
    ga_functable_destroy(&(*self_p)->held);
    ga_ratelimit_destroy(&(*self_p)->limits);
    ga_functable_destroy(&(*self_p)->builtins);
    for (size_t i = 0; i < GW_BUILTIN_SERVICES_MAX; i++) {
        ga_free((*self_p)->builtin_services[i]);
    }
    ga_free(*self_p);
    *self_p = NULL;
}

size_t
gw_pipeline_apply(gw_pipeline_t *self, const ga_value_t *body, bool replace)
{
    self->last.cfg = NULL; // the registry copy changes
    const ga_value_t *list = ga_map_get(body, "functions");
    if (replace) {
        // A broker still in its re-registration window (just restarted) does not know yet
        // what its workers will register again: keep the old copy aside for that long, so a
        // function known before is "temporarily unavailable", not unknown.
        int64_t warming = ga_map_get_int(body, "warming_ms", 0);
        int64_t now = ga_clock_ms();
        if (warming <= 0 || (self->held && now >= self->held_until)) {
            ga_functable_destroy(&self->held);
        }
        if (warming > 0 && self->held == NULL && ga_functable_size(self->functions) > 0) {
            self->held = self->functions; // a second snapshot in the window keeps the first copy
            self->functions = ga_functable_new();
        } else {
            ga_functable_clear(self->functions);
        }
        self->held_until = now + (warming > 0 ? warming : 0);
    }
    size_t applied = 0;
    const ga_value_t *removed = ga_map_get(body, "removed");
    for (uint32_t i = 0; removed && removed->type == GA_ARRAY && i < removed->len; i++) {
        const ga_value_t *key = &removed->u.items[i];
        const char *service = ga_map_get_str(key, "service");
        const char *request_type = ga_map_get_str(key, "request_type");
        if (service == NULL || request_type == NULL) {
            self->rejected_configs++;
            GA_WARN("removal from the broker without service or request_type ignored");
            continue;
        }
        const char *version = ga_map_get_str(key, "version");
        applied += ga_functable_remove(self->functions, service, request_type, version);
        if (self->held) {
            ga_functable_remove(self->held, service, request_type, version); // gone for good
        }
    }
    for (uint32_t i = 0; list && list->type == GA_ARRAY && i < list->len; i++) {
        ga_funcfg_t *cfg = NULL;
        char why[256];
        if (ga_funcfg_parse(&list->u.items[i], &cfg, why, sizeof why) != GA_OK) {
            self->rejected_configs++;
            GA_WARN("config from the broker refused: %s", why);
            continue;
        }
        ga_functable_put(self->functions, &cfg);
        applied++;
    }
    return applied;
}

size_t
gw_pipeline_function_count(const gw_pipeline_t *self)
{
    return ga_functable_size(self->functions);
}

void
gw_response_error(gw_response_t *out, const char *request_id, const char *message,
                  bool can_retry)
{
    *out = (gw_response_t){
        .request_id = request_id ? request_id : "unknown",
        .kind = GW_KIND_ERROR,
        .success = false,
        .error = message,
        .can_retry = can_retry,
    };
}

// The request fields of a payload, found in one pass over its pairs: each is the first pair
// with that key, as ga_map_get would find it, or NULL.
typedef struct {
    const ga_value_t *request_id;
    const ga_value_t *service;
    const ga_value_t *request_type;
    const ga_value_t *version;
    const ga_value_t *args;
} request_fields_t;

// True when pair `p`'s key is the C string `name` of `len` bytes.
static inline bool
s_key_is(const ga_pair_t *p, const char *name, uint32_t len)
{
    return p->key_len == len && memcmp(p->key, name, len) == 0;
}

static inline void
s_take(const ga_value_t **slot, const ga_pair_t *p)
{
    if (*slot == NULL) {
        *slot = &p->value;
    }
}

// Fills `f` from the map `payload` (the caller checked its type).
static void
s_request_fields(const ga_value_t *payload, request_fields_t *f)
{
    *f = (request_fields_t){0};
    for (uint32_t i = 0; i < payload->len; i++) {
        const ga_pair_t *p = &payload->u.pairs[i];
        switch (p->key_len) {
        case 4:
            if (s_key_is(p, "args", 4)) {
                s_take(&f->args, p);
            }
            break;
        case 7:
            if (s_key_is(p, "service", 7)) {
                s_take(&f->service, p);
            } else if (s_key_is(p, "version", 7)) {
                s_take(&f->version, p);
            }
            break;
        case 10:
            if (s_key_is(p, "request_id", 10)) {
                s_take(&f->request_id, p);
            }
            break;
        case 12:
            if (s_key_is(p, "request_type", 12)) {
                s_take(&f->request_type, p);
            }
            break;
        default:
            break;
        }
    }
}

// A required request field `v` (NULL when absent): a non-empty string. When it is not, says why
// in `msg` (`len` bytes; NULL: the caller needs no reason), naming the field `name`.
static bool
s_field(const ga_value_t *v, const char *name, const char **out, char *msg, size_t len)
{
    if (v == NULL || v->type == GA_NIL) {
        if (msg) {
            snprintf(msg, len, "Missing field: %s", name);
        }
        return false;
    }
    if (v->type != GA_STR || v->len == 0 || strlen(v->u.s) != v->len) {
        if (msg) {
            snprintf(msg, len, "Invalid field: %s (expected a non-empty string)", name);
        }
        return false;
    }
    *out = v->u.s;
    return true;
}

void
gw_pipeline_register_permission(gw_pipeline_t *self, const char *name, gw_permission_fn *fn,
                                void *arg)
{
    ga_assert(self->n_permission_fns < GW_PERMISSION_FNS_MAX);
    self->permission_fns[self->n_permission_fns++] =
        (permission_fn_t){.name = name, .fn = fn, .arg = arg};
}

// True when `who` holds one of the roles in "role:[a, b]" (or "role:a,b").
static bool
s_has_role(const gw_identity_t *who, const char *mode)
{
    const char *p = mode + 5; // after "role:"
    while (*p) {
        while (*p == '[' || *p == ']' || *p == ',' || *p == '|' || *p == ' ') {
            p++;
        }
        size_t n = strcspn(p, "[], |");
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < who->n_roles; i++) {
            if (strlen(who->roles[i]) == n && strncmp(who->roles[i], p, n) == 0) {
                return true;
            }
        }
        p += n;
    }
    return false;
}

// True when the argument named in "arg:NAME" equals the caller's user id.
static bool
s_arg_is_user(const gw_identity_t *who, const ga_value_t *args, const char *name)
{
    const ga_value_t *v = ga_map_get(args, name);
    if (who->user_id == NULL || v == NULL) {
        return false;
    }
    if (v->type == GA_STR) {
        return strcmp(v->u.s, who->user_id) == 0;
    }
    if (v->type == GA_INT) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long) v->u.i);
        return strcmp(num, who->user_id) == 0;
    }
    return false;
}

// The built-in modes and in-process callbacks. Worker callbacks are left to the caller. On a
// denial `denial` holds the client's message: "Permission denied", with ": REASON" when an
// in-process callback gave one.
static bool
s_permitted(gw_pipeline_t *self, const ga_funcfg_t *cfg, const gw_identity_t *who,
            gw_call_t *call, char *denial, size_t len)
{
    snprintf(denial, len, "Permission denied");
    if (cfg->permission_callback) {
        for (size_t i = 0; i < self->n_permission_fns; i++) {
            const permission_fn_t *p = &self->permission_fns[i];
            if (strcmp(p->name, cfg->permission_callback) == 0) {
                char reason[256] = "";
                bool ok = p->fn(p->arg, who, call, reason, sizeof reason) == GA_OK;
                if (!ok && reason[0]) {
                    snprintf(denial, len, "Permission denied: %s", reason);
                }
                return ok;
            }
        }
        call->permission_callback = cfg->permission_callback;
        return true; // decided by the worker callback before dispatch
    }
    const char *mode = cfg->check_permission;
    if (strcmp(mode, "false") == 0) {
        return true;
    }
    if (strcmp(mode, "any_authenticated") == 0) {
        return who->user_id != NULL;
    }
    if (strncmp(mode, "arg:", 4) == 0) {
        return s_arg_is_user(who, &call->args, mode + 4);
    }
    if (strncmp(mode, "role:", 5) == 0) {
        return s_has_role(who, mode);
    }
    return false; // an unknown mode denies
}

bool
gw_pipeline_check_call(const gw_identity_t *who, const gw_call_t *call, ga_arena_t *arena,
                       gw_call_t *check)
{
    const char *name = call->permission_callback;
    const char *dot = name ? strchr(name, '.') : NULL;
    if (dot == NULL || dot == name || dot[1] == '\0') {
        return false;
    }
    memset(check, 0, sizeof *check);
    check->request_id = call->request_id;
    check->service = ga_arena_strndup(arena, name, (size_t) (dot - name));
    check->request_type = dot + 1;
    check->response_type = GA_RESP_SYNC;
    check->timeout_ms = GA_FUNCFG_TIMEOUT_DEFAULT;
    check->who = who;
    check->rate_limit_cluster = call->rate_limit_cluster;
    check->rate_limit_of = call->rate_limit_cluster ? call : NULL;
    ga_value_t roles = ga_array(arena, (uint32_t) who->n_roles);
    for (size_t i = 0; i < who->n_roles; i++) {
        ga_array_push(&roles, arena, ga_str(who->roles[i]));
    }
    ga_value_t args = ga_map(arena, 7);
    ga_map_put(&args, arena, "service", ga_str(call->service));
    ga_map_put(&args, arena, "request_type", ga_str(call->request_type));
    ga_map_put(&args, arena, "args", call->args);
    ga_map_put(&args, arena, "user_id", who->user_id ? ga_str(who->user_id) : ga_nil());
    ga_map_put(&args, arena, "roles", roles);
    ga_map_put(&args, arena, "device_id", who->device_id ? ga_str(who->device_id) : ga_nil());
    ga_map_put(&args, arena, "ip", who->ip ? ga_str(who->ip) : ga_nil());
    check->args = args;
    return true;
}

const char *
gw_pipeline_check_denial(const ga_value_t *body, ga_arena_t *arena)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok && ok->type == GA_BOOL && ok->u.b) {
        // Any ok answer allows, whatever its value, except one that says no: `false`, or a map
        // whose "allow" is false (what a callback written for a boolean answer means).
        const ga_value_t *result = ga_map_get(body, "result");
        const ga_value_t *allow = result ? ga_map_get(result, "allow") : NULL;
        bool no = (result && result->type == GA_BOOL && !result->u.b) ||
                  (allow && allow->type == GA_BOOL && !allow->u.b);
        return no ? "Permission denied" : NULL;
    }
    // Only the callback's own error answer carries a reason for the client; a crash, a
    // timeout, an unknown callback or a malformed answer denies without one.
    const char *reason = ga_map_get_str(body, "error");
    if (ok && ok->type == GA_BOOL && ga_map_get_int(body, "code", 0) == GA_EHANDLER && reason &&
        reason[0]) {
        size_t n = strlen(reason) + sizeof "Permission denied: ";
        char *msg = ga_arena_alloc(arena, n);
        snprintf(msg, n, "Permission denied: %s", reason);
        return msg;
    }
    return "Permission denied";
}

// The rate limits, once the arguments are validated (argument names can be keys) and before
// the permission check and dispatch: false with the refusal in `refusal`. With scope "cluster"
// the broker counts instead (the call is marked for it).
static bool
s_rate_allowed(gw_pipeline_t *self, const gw_identity_t *who, gw_call_t *call,
               gw_response_t *refusal)
{
    if (!ga_ratelimit_is_enabled(self->limits)) {
        return true;
    }
    if (strcmp(ga_ratelimit_scope(self->limits), "cluster") == 0) {
        call->rate_limit_cluster = true;
        return true;
    }
    ga_rl_subject_t subject = {.user_id = who->user_id,
                               .device_id = who->device_id,
                               .ip_address = who->ip,
                               .args = &call->args};
    int64_t retry = 0;
    ga_rl_verdict_t v = ga_ratelimit_check(self->limits, call->service, call->request_type,
                                           &subject, ga_clock_ms(), &retry);
    if (v == GA_RL_LIMITED) {
        gw_response_error(refusal, call->request_id, GA_RL_REFUSAL, true);
        refusal->retry_after_ms = retry;
        return false;
    }
    if (v == GA_RL_FAILED) {
        gw_response_error(refusal, call->request_id, GA_RL_FAILURE, true);
        return false;
    }
    return true;
}

// A config a client may call: NULL for an internal one (visibility "internal": a hook, a
// permission callback, an identity service, a nodes resolver), which a client's request finds
// exactly as it finds a function that does not exist (docs/protocol.md, "Function config").
// The gateway's own calls of such functions (gw_pipeline_hook_call, gw_pipeline_check_call, the
// server's auth call) and the broker's resolver calls never come through here.
static const ga_funcfg_t *
s_visible(const ga_funcfg_t *cfg)
{
    return cfg && !cfg->internal ? cfg : NULL;
}

// The config a payload names, before any other check: service and request_type non-empty
// strings, version absent, null or a non-empty string, and a config found for them (enabled or
// disabled) that clients may call. NULL when the payload does not identify one. Its response
// type then governs every refusal: a `none` function's callers hear nothing, whichever check
// fails.
// True when `service` may name a built-in function (gw_pipeline_add_builtin).
static bool
s_builtin_service(const gw_pipeline_t *self, const char *service)
{
    if (self->builtin_services_full) {
        return true;
    }
    for (size_t i = 0; i < GW_BUILTIN_SERVICES_MAX && self->builtin_services[i]; i++) {
        if (strcmp(self->builtin_services[i], service) == 0) {
            return true;
        }
    }
    return false;
}

// True when the name `s` of `len` bytes is the one kept in `kept` (`kept_len` bytes).
static inline bool
s_same_name(const char *kept, uint32_t kept_len, const char *s, uint32_t len)
{
    return kept_len == len && memcmp(kept, s, len) == 0;
}

static const ga_funcfg_t *
s_identify(gw_pipeline_t *self, const request_fields_t *f)
{
    const char *service = NULL;
    const char *request_type = NULL;
    if (!s_field(f->service, "service", &service, NULL, 0) ||
        !s_field(f->request_type, "request_type", &request_type, NULL, 0)) {
        return NULL;
    }
    const ga_value_t *version = f->version;
    const char *wanted = NULL;
    if (version && version->type != GA_NIL) {
        if (version->type != GA_STR || version->len == 0) {
            return NULL;
        }
        wanted = version->u.s;
    }
    // s_field checked that service and request_type have no NUL inside; a version with one
    // is never kept (its C string is what the lookup uses).
    uint32_t slen = f->service->len;
    uint32_t rlen = f->request_type->len;
    uint32_t vlen = wanted && strlen(wanted) == version->len ? version->len : 0;
    if (self->last.cfg && s_same_name(self->last.service, self->last.service_len, service, slen) &&
        s_same_name(self->last.request_type, self->last.request_type_len, request_type, rlen) &&
        (wanted ? vlen && s_same_name(self->last.version, self->last.version_len, wanted, vlen)
                : self->last.version_len == 0)) {
        return self->last.cfg;
    }
    const ga_funcfg_t *builtin =
        s_builtin_service(self, service)
            ? ga_functable_resolve(self->builtins, service, request_type, wanted)
            : NULL;
    const ga_funcfg_t *cfg =
        builtin ? builtin
                : s_visible(ga_functable_resolve(self->functions, service, request_type, wanted));
    if (cfg && slen < GW_IDENTIFY_NAME_MAX && rlen < GW_IDENTIFY_NAME_MAX &&
        vlen < GW_IDENTIFY_NAME_MAX && (wanted == NULL || vlen > 0)) {
        self->last.cfg = cfg;
        self->last.service_len = slen;
        self->last.request_type_len = rlen;
        self->last.version_len = vlen;
        memcpy(self->last.service, service, slen);
        memcpy(self->last.request_type, request_type, rlen);
        memcpy(self->last.version, wanted ? wanted : "", vlen);
    } else {
        self->last.cfg = NULL;
    }
    return cfg;
}

void
gw_pipeline_add_builtin(gw_pipeline_t *self, ga_funcfg_t **cfg)
{
    self->last.cfg = NULL; // the table changes
    const char *service = (*cfg)->service;
    if (!s_builtin_service(self, service)) {
        size_t i = 0;
        while (i < GW_BUILTIN_SERVICES_MAX && self->builtin_services[i]) {
            i++;
        }
        if (i < GW_BUILTIN_SERVICES_MAX) {
            self->builtin_services[i] = ga_strdup(service);
        } else {
            self->builtin_services_full = true;
        }
    }
    ga_functable_put(self->builtins, cfg);
}

// The routing key of a hash:ARG or sticky:KEY call: a string argument as it is, any other value
// as its JSON text; a request field (user_id, device_id, ip, request_id) as the gateway knows
// it. Longer than GW_ROUTING_KEY_MAX bytes: "#" and 16 hex digits of its FNV-1a hash (the
// broker only hashes it). NULL when the call has no value for it.
#define GW_ROUTING_KEY_MAX 256
static const char *
s_routing_key(const ga_funcfg_t *cfg, const gw_call_t *call, ga_arena_t *arena)
{
    const char *key = cfg->node_key;
    if (key == NULL) {
        return NULL;
    }
    const char *s = NULL;
    size_t len = 0;
    if (!cfg->node_key_is_arg) {
        const gw_identity_t *who = call->who;
        s = strcmp(key, "user_id") == 0     ? who->user_id
            : strcmp(key, "device_id") == 0 ? who->device_id
            : strcmp(key, "ip") == 0        ? who->ip
                                            : call->request_id;
        if (s == NULL || s[0] == '\0') {
            return NULL;
        }
        len = strlen(s);
    } else {
        const ga_value_t *v = ga_map_get(&call->args, key);
        if (v == NULL) {
            return NULL;
        }
        if (v->type == GA_STR) {
            s = v->u.s;
            len = strlen(s);
        } else {
            ga_buf_t b;
            ga_buf_init(&b);
            ga_json_encode(&b, v);
            s = ga_arena_strndup(arena, (const char *) b.data, b.len);
            len = b.len;
            ga_buf_fini(&b);
        }
    }
    if (len <= GW_ROUTING_KEY_MAX) {
        return ga_arena_strndup(arena, s, len);
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t) s[i]) * 0x100000001b3ULL;
    }
    char *out = ga_arena_alloc(arena, 18);
    snprintf(out, 18, "#%016llx", (unsigned long long) h);
    return out;
}

// "service.request_type": both parts non-empty.
static bool
s_is_function_name(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot && dot != name && dot[1] != '\0';
}

static const hook_fn_t *
s_local_hook(const gw_pipeline_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_hook_fns; i++) {
        if (strcmp(self->hook_fns[i].name, name) == 0) {
            return &self->hook_fns[i];
        }
    }
    return NULL;
}

// An in-process hook's name, or a worker function's.
static bool
s_hook_runs(const gw_pipeline_t *self, const char *name)
{
    return s_local_hook(self, name) != NULL || s_is_function_name(name);
}

void
gw_pipeline_register_hook(gw_pipeline_t *self, const char *name, gw_hook_fn *fn, void *arg)
{
    ga_assert(self->n_hook_fns < GW_HOOK_FNS_MAX);
    self->hook_fns[self->n_hook_fns++] = (hook_fn_t){.name = name, .fn = fn, .arg = arg};
}

ga_value_t
gw_pipeline_run_hook(gw_pipeline_t *self, const char *name, const ga_value_t *args,
                     ga_arena_t *arena)
{
    const hook_fn_t *h = s_local_hook(self, name);
    ga_value_t body = ga_map(arena, 4);
    char *reason = ga_arena_alloc(arena, 256);
    reason[0] = '\0';
    ga_value_t out = ga_nil();
    if (h && h->fn(h->arg, args, arena, &out, reason, 256) == GA_OK) {
        ga_map_put(&body, arena, "ok", ga_bool(true));
        ga_map_put(&body, arena, "result", out);
        return body;
    }
    ga_map_put(&body, arena, "ok", ga_bool(false));
    ga_map_put(&body, arena, "error", ga_str(reason[0] ? reason : "Hook failed"));
    ga_map_put(&body, arena, "code", ga_int(reason[0] ? GA_EHANDLER : GA_EINTERNAL));
    return body;
}

ga_err_t
gw_pipeline_prepare(gw_pipeline_t *self, const gw_identity_t *who, const ga_value_t *payload,
                    ga_arena_t *arena, gw_call_t *call, gw_response_t *refusal)
{
    char *msg = ga_arena_alloc(arena, 512);
    memset(call, 0, sizeof *call);
    if (payload->type != GA_MAP) {
        gw_response_error(refusal, NULL, "Invalid request: payload must be an object", false);
        return GA_EINVAL;
    }
    request_fields_t fields;
    s_request_fields(payload, &fields);
    const ga_funcfg_t *cfg = s_identify(self, &fields);
    call->response_type = cfg ? cfg->response_type : GA_RESP_SYNC; // refusals included
    const char *request_id = NULL;
    if (!s_field(fields.request_id, "request_id", &request_id, msg, 512) ||
        !s_field(fields.service, "service", &call->service, msg, 512) ||
        !s_field(fields.request_type, "request_type", &call->request_type, msg, 512)) {
        gw_response_error(refusal, request_id, msg, false);
        return GA_EINVAL;
    }
    call->request_id = request_id;
    call->who = who;
    if (self->cfg->require_auth && who->user_id == NULL) {
        gw_response_error(refusal, request_id, "Authentication required", false);
        return GA_EDENIED;
    }
    const ga_value_t *version = fields.version;
    if (version && version->type != GA_NIL && (version->type != GA_STR || version->len == 0)) {
        gw_response_error(refusal, request_id,
                          "Invalid field: version (expected a non-empty string)", false);
        return GA_EINVAL;
    }
    const ga_value_t *args = fields.args;
    ga_value_t empty = ga_map(arena, 0);
    if (args == NULL || args->type == GA_NIL) {
        args = &empty;
    } else if (args->type != GA_MAP) {
        gw_response_error(refusal, request_id, "Invalid field: args (expected an object)", false);
        return GA_EINVAL;
    }
    const char *wanted = version && version->type == GA_STR ? version->u.s : NULL;
    if (cfg == NULL && self->held && ga_clock_ms() >= self->held_until) {
        ga_functable_destroy(&self->held); // the broker's window is over
    }
    const ga_funcfg_t *before =
        cfg || self->held == NULL
            ? NULL
            : s_visible(ga_functable_resolve(self->held, call->service, call->request_type,
                                             wanted));
    if (before) {
        call->response_type = before->response_type; // a `none` caller hears nothing
        gw_response_error(refusal, request_id, "Service temporarily unavailable", true);
        return GA_EUNAVAIL;
    }
    if (cfg == NULL) { // s_identify read the same fields
        gw_response_error(refusal, request_id, "Unknown function", false);
        return GA_ENOTFOUND;
    }
    if (cfg->disabled) {
        gw_response_error(refusal, request_id, "Function disabled", false);
        return GA_ENOTFOUND;
    }
    if (ga_funcfg_check_args(cfg, args, arena, &call->args, msg, 512) != GA_OK) {
        gw_response_error(refusal, request_id, msg, false);
        return GA_EINVAL;
    }
    // Strings from the registry copy may change before the result comes back: copy them.
    call->version = cfg->version ? ga_arena_strdup(arena, cfg->version) : NULL;
    call->response_type = cfg->response_type;
    call->timeout_ms = cfg->timeout_ms;
    call->request_info = cfg->request_info;
    if (!s_rate_allowed(self, who, call, refusal)) {
        return GA_EAGAIN;
    }
    call->routing_key = s_routing_key(cfg, call, arena);
    if (!s_permitted(self, cfg, who, call, msg, 512)) {
        gw_response_error(refusal, request_id, msg, false);
        return GA_EDENIED;
    }
    if (call->permission_callback) {
        call->permission_callback = ga_arena_strdup(arena, call->permission_callback);
    }
    call->config = &cfg->source;
    call->hook_timeout_ms = cfg->hook_timeout_ms;
    // A hook is a worker function "service.request_type" or an in-process hook: any other
    // name cannot run, so a before hook refuses the call and an after hook leaves the result
    // (both counted).
    if (cfg->before_execute && !s_hook_runs(self, cfg->before_execute)) {
        self->hook_failures++;
        gw_response_error(refusal, request_id, "Hook failed", false);
        return GA_EDENIED;
    }
    if (cfg->after_execute && !s_hook_runs(self, cfg->after_execute)) {
        self->hook_failures++;
    } else if (cfg->after_execute) {
        call->after_execute = ga_arena_strdup(arena, cfg->after_execute);
        call->after_args = ga_value_copy(arena, &cfg->after_args);
    }
    if (cfg->before_execute) {
        call->before_execute = ga_arena_strdup(arena, cfg->before_execute);
        call->before_args = ga_value_copy(arena, &cfg->before_args);
    }
    return GA_OK;
}

bool
gw_pipeline_hook_call(const gw_pipeline_t *self, const gw_identity_t *who, const gw_call_t *call,
                      gw_hook_stage_t stage, ga_arena_t *arena, gw_call_t *hook)
{
    bool before = stage == GW_HOOK_BEFORE;
    const char *name = before ? call->before_execute : call->after_execute;
    if (name == NULL || !s_hook_runs(self, name)) {
        return false;
    }
    memset(hook, 0, sizeof *hook);
    hook->request_id = call->request_id;
    if (s_local_hook(self, name)) {
        hook->local_hook = true;
        hook->service = name;
        hook->request_type = "";
    } else {
        const char *dot = strchr(name, '.');
        hook->service = ga_arena_strndup(arena, name, (size_t) (dot - name));
        hook->request_type = dot + 1;
    }
    hook->response_type = GA_RESP_SYNC;
    hook->timeout_ms = call->hook_timeout_ms > 0 ? call->hook_timeout_ms
                                                 : GA_FUNCFG_HOOK_TIMEOUT_DEFAULT;
    hook->who = who;
    hook->rate_limit_cluster = call->rate_limit_cluster;
    hook->rate_limit_of = call->rate_limit_cluster ? call : NULL;
    // The whole request, whatever request_info says.
    ga_value_t roles = ga_array(arena, (uint32_t) who->n_roles);
    for (size_t i = 0; i < who->n_roles; i++) {
        ga_array_push(&roles, arena, ga_str(who->roles[i]));
    }
    ga_value_t req = ga_map(arena, 9);
    ga_map_put(&req, arena, "request_id", ga_str(call->request_id));
    ga_map_put(&req, arena, "service", ga_str(call->service));
    ga_map_put(&req, arena, "request_type", ga_str(call->request_type));
    ga_map_put(&req, arena, "version", call->version ? ga_str(call->version) : ga_nil());
    ga_map_put(&req, arena, "args", call->args);
    ga_map_put(&req, arena, "user_id", who->user_id ? ga_str(who->user_id) : ga_nil());
    ga_map_put(&req, arena, "roles", roles);
    ga_map_put(&req, arena, "device_id", who->device_id ? ga_str(who->device_id) : ga_nil());
    ga_map_put(&req, arena, "ip", who->ip && who->ip[0] ? ga_str(who->ip) : ga_nil());
    ga_value_t args = ga_map(arena, 5);
    ga_map_put(&args, arena, "hook", ga_str(before ? "before" : "after"));
    ga_map_put(&args, arena, "request", req);
    ga_map_put(&args, arena, "config", call->config ? *call->config : ga_map(arena, 0));
    ga_map_put(&args, arena, "extra", before ? call->before_args : call->after_args);
    hook->args = args;
    return true;
}

// Counts a failed hook call: GA_ETIMEDOUT for one the broker or the gateway timed out.
static ga_err_t
s_hook_failed(gw_pipeline_t *self, const ga_value_t *body)
{
    if (ga_map_get_int(body, "code", 0) == GA_ETIMEDOUT) {
        self->hook_timeouts++;
        return GA_ETIMEDOUT;
    }
    self->hook_failures++;
    return GA_EINTERNAL;
}

ga_err_t
gw_pipeline_before_verdict(gw_pipeline_t *self, const ga_value_t *body, const ga_value_t *call,
                           ga_arena_t *arena, ga_value_t *args, const char **refusal)
{
    const ga_value_t *own = ga_map_get(call, "args");
    *args = own ? *own : ga_map(arena, 0);
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok == NULL || ok->type != GA_BOOL || !ok->u.b) {
        // The hook's own error answer is the client's error; anything else refuses plainly.
        const char *reason = ga_map_get_str(body, "error");
        if (ok && ok->type == GA_BOOL && ga_map_get_int(body, "code", 0) == GA_EHANDLER &&
            reason && reason[0]) {
            *refusal = ga_arena_strdup(arena, reason);
            return GA_EHANDLER;
        }
        ga_err_t rc = s_hook_failed(self, body);
        *refusal = rc == GA_ETIMEDOUT ? "Hook timed out" : "Hook failed";
        return rc;
    }
    const ga_value_t *result = ga_map_get(body, "result");
    const ga_value_t *replaced = result ? ga_map_get(result, "args") : NULL;
    if (replaced == NULL) {
        return GA_OK; // no change
    }
    if (replaced->type != GA_MAP) {
        self->hook_failures++;
        *refusal = "Hook failed";
        return GA_EINTERNAL;
    }
    const char *service = ga_map_get_str(call, "service");
    const char *request_type = ga_map_get_str(call, "request_type");
    const ga_funcfg_t *cfg =
        service && request_type
            ? ga_functable_resolve(self->functions, service, request_type,
                                   ga_map_get_str(call, "version"))
            : NULL;
    if (cfg == NULL) {
        *refusal = "Unknown function"; // removed while its hook ran
        return GA_EINVAL;
    }
    char *msg = ga_arena_alloc(arena, 512);
    if (ga_funcfg_check_args(cfg, replaced, arena, args, msg, 512) != GA_OK) {
        *refusal = msg;
        return GA_EINVAL;
    }
    return GA_OK;
}

bool
gw_pipeline_after_verdict(gw_pipeline_t *self, const ga_value_t *body)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok && ok->type == GA_BOOL && ok->u.b) {
        return true;
    }
    (void) s_hook_failed(self, body);
    return false;
}

uint64_t
gw_pipeline_hook_failures(const gw_pipeline_t *self)
{
    return self->hook_failures;
}

uint64_t
gw_pipeline_hook_timeouts(const gw_pipeline_t *self)
{
    return self->hook_timeouts;
}

void
gw_pipeline_result(const gw_pipeline_t *self, const ga_value_t *body, const char *request_id,
                   gw_response_t *out)
{
    const ga_value_t *ok = ga_map_get(body, "ok");
    if (ok && ok->type == GA_BOOL && ok->u.b) {
        *out = (gw_response_t){
            .request_id = request_id,
            .kind = GW_KIND_RESULT,
            .success = true,
            .result = ga_map_get(body, "result"),
        };
        return;
    }
    const char *error = ga_map_get_str(body, "error");
    int64_t code = ga_map_get_int(body, "code", GA_EINTERNAL);
    const ga_value_t *retry = ga_map_get(body, "can_retry");
    bool can_retry = retry && retry->type == GA_BOOL && retry->u.b;
    if (error == NULL || (code == GA_EINTERNAL && !self->cfg->detail_errors)) {
        error = "Internal Server Error";
    }
    gw_response_error(out, request_id, error, can_retry);
    out->retry_after_ms = ga_map_get_int(body, "retry_after_ms", 0); // a cluster rate limit
}

// ga_map_put with the length of a literal key known: no strlen per field of every call.
static inline void
s_put_key(ga_value_t *m, ga_arena_t *a, const char *key, uint32_t klen, ga_value_t v)
{
    ga_assert(m->type == GA_MAP);
    if (m->len < m->cap) {
        m->u.pairs[m->len++] = (ga_pair_t){.key = key, .key_len = klen, .value = v};
    } else {
        ga_map_put(m, a, key, v);
    }
}
#define S_PUT(m, a, lit, v) s_put_key((m), (a), (lit), (uint32_t) (sizeof(lit) - 1), (v))

void
gw_call_body_put(const gw_call_t *call, ga_arena_t *a, ga_value_t *m)
{
    S_PUT(m, a, "service", ga_str(call->service));
    S_PUT(m, a, "request_type", ga_str(call->request_type));
    if (call->version) {
        S_PUT(m, a, "version", ga_str(call->version));
    }
    S_PUT(m, a, "args", call->args);
    S_PUT(m, a, "request_id", ga_str(call->request_id));
    if (call->routing_key) {
        S_PUT(m, a, "routing_key", ga_str(call->routing_key));
    }
    // The caller's identity reaches the handler only when its function asks (request_info).
    const gw_identity_t *who = call->request_info ? call->who : NULL;
    if (who && who->user_id) {
        S_PUT(m, a, "user_id", ga_str(who->user_id));
    }
    if (who && who->n_roles) {
        ga_value_t roles = ga_array(a, (uint32_t) who->n_roles);
        for (size_t i = 0; i < who->n_roles; i++) {
            ga_array_push(&roles, a, ga_str(who->roles[i]));
        }
        S_PUT(m, a, "roles", roles);
    }
    if (who && who->device_id) {
        S_PUT(m, a, "device_id", ga_str(who->device_id));
    }
    if (who && who->ip && who->ip[0]) {
        S_PUT(m, a, "ip", ga_str(who->ip));
    }
}

gw_response_t
gw_response_ack(const char *request_id, ga_resp_t type)
{
    return (gw_response_t){.request_id = request_id,
                           .kind = GW_KIND_ACK,
                           .success = true,
                           .async = true,
                           .has_more = type == GA_RESP_STREAM};
}

void
gw_response_pushed(gw_response_t *r, ga_resp_t type)
{
    r->async = type == GA_RESP_STREAM && r->kind == GW_KIND_ERROR;
}

void
gw_response_stream(const ga_value_t *body, const char *request_id, gw_response_t *out)
{
    const char *kind = ga_map_get_str(body, "kind");
    *out = (gw_response_t){.request_id = request_id, .success = true, .async = true};
    if (kind && strcmp(kind, "chunk") == 0) {
        out->kind = GW_KIND_CHUNK;
        out->has_more = true;
        out->result = ga_map_get(body, "data");
    } else if (kind && strcmp(kind, "last") == 0) {
        out->kind = GW_KIND_LAST;
        out->result = ga_map_get(body, "data");
    } else if (kind && strcmp(kind, "end") == 0) {
        out->kind = GW_KIND_END;
    } else {
        const char *error = ga_map_get_str(body, "error");
        out->kind = GW_KIND_ERROR;
        out->success = false;
        out->error = error ? error : "Internal Server Error";
    }
}

const char *
gw_kind_name(gw_kind_t kind)
{
    static const char *const names[] = {"result", "error", "ack", "chunk",
                                        "last",   "end",   "relay", "gap"};
    return names[kind];
}

void
gw_response_encode_head(const gw_response_t *r, ga_buf_t *out)
{
    ga_buf_append_str(out, "{\"request_id\":");
    ga_json_encode_str(out, r->request_id, strlen(r->request_id));
    ga_buf_append_str(out, r->success ? ",\"success\":true,\"result\":"
                                      : ",\"success\":false,\"result\":");
}

void
gw_response_encode_tail(const gw_response_t *r, ga_buf_t *out)
{
    ga_buf_append_str(out, ",\"error\":");
    if (r->error) {
        ga_json_encode_str(out, r->error, strlen(r->error));
    } else {
        ga_buf_append_str(out, "null");
    }
    ga_buf_append_str(out, r->async ? ",\"async\":true" : ",\"async\":false");
    ga_buf_append_str(out, r->has_more ? ",\"has_more\":true" : ",\"has_more\":false");
    ga_buf_append_str(out, r->can_retry ? ",\"can_retry\":true" : ",\"can_retry\":false");
    if (r->retry_after_ms > 0) {
        char num[40];
        snprintf(num, sizeof num, ",\"retry_after_ms\":%lld", (long long) r->retry_after_ms);
        ga_buf_append_str(out, num);
    }
    ga_buf_append_str(out, ",\"kind\":\"");
    ga_buf_append_str(out, gw_kind_name(r->kind));
    ga_buf_append_str(out, "\"}");
}

void
gw_response_encode(const gw_response_t *r, ga_buf_t *out)
{
    gw_response_encode_head(r, out);
    if (r->result) {
        ga_json_encode(out, r->result);
    } else {
        ga_buf_append_str(out, "null");
    }
    gw_response_encode_tail(r, out);
}
