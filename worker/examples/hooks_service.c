// SPDX-License-Identifier: MIT
// The walkthrough's hooks (section 11, "Hooks"), served as hooks_service: validate_quota and
// enrich_request run before a call, log_response after it (docs/protocol.md, "Hooks"). Each
// declares what the gateway sends a hook (WK_HOOK_ARGS): the whole request, the function's
// config, the hook's extra args and, after the call, its result. data_service's
// expensive_operation and process_data name them (worker/examples/data_service.c). All three
// are internal: only the gateway calls them (docs/security.md, "Internal functions").
//
// validate_quota is the walkthrough's MyApp.Quota.check: each caller (user id, or "anonymous")
// may make GENAPI_HOOKS_QUOTA calls (default 1000) in this process's life; past that the call
// is refused with "Quota exceeded. Upgrade your plan.".
#include <genapi/worker.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTA_USERS 1024 // callers remembered; past that the oldest slot is reused

typedef struct {
    char user[128]; // user id ("" for a free slot)
    int64_t used;   // calls counted
} quota_slot_t;

typedef struct {
    pthread_mutex_t lock; // handlers run on several pool threads
    quota_slot_t slots[QUOTA_USERS];
    size_t next;          // the slot a new caller takes
    int64_t limit;        // calls per caller
} quota_t;

static quota_t s_quota = {.lock = PTHREAD_MUTEX_INITIALIZER};

// Counts one call of `user`: false when its quota is spent (the call is not counted).
static bool
s_quota_take(const char *user)
{
    pthread_mutex_lock(&s_quota.lock);
    quota_slot_t *slot = NULL;
    for (size_t i = 0; i < QUOTA_USERS && slot == NULL; i++) {
        if (strcmp(s_quota.slots[i].user, user) == 0) {
            slot = &s_quota.slots[i];
        }
    }
    if (slot == NULL) {
        slot = &s_quota.slots[s_quota.next];
        s_quota.next = (s_quota.next + 1) % QUOTA_USERS;
        snprintf(slot->user, sizeof slot->user, "%s", user);
        slot->used = 0;
    }
    bool ok = slot->used < s_quota.limit;
    if (ok) {
        slot->used++;
    }
    pthread_mutex_unlock(&s_quota.lock);
    return ok;
}

// {:ok, request, fun_config} (go on unchanged) or {:error, "Quota exceeded. Upgrade your plan."}.
static void
s_validate_quota(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *user = wk_value_str(wk_value_get(wk_arg(req, "request"), "user_id"));
    if (s_quota_take(user ? user : "anonymous")) {
        wk_reply(req, NULL);
    } else {
        wk_reply_error(req, "Quota exceeded. Upgrade your plan.");
    }
}

// Logs the call and returns its result unchanged.
static void
s_log_response(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *r = wk_arg(req, "request");
    const char *user = wk_value_str(wk_value_get(r, "user_id"));
    fprintf(stderr, "API call: %s/%s by %s\n", wk_value_str(wk_value_get(r, "service")),
            wk_value_str(wk_value_get(r, "request_type")), user ? user : "anonymous");
    wk_reply(req, wk_arg(req, "result"));
}

// The walkthrough's hook with extra arguments (["extra_value", 42] in process_data's config):
// the request's args (process_data declares data and enriched) with "enriched" set to true.
static void
s_enrich_request(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *args = wk_value_get(wk_arg(req, "request"), "args");
    wk_value_t *out = wk_map(req, NULL);
    const wk_value_t *data = wk_value_get(args, "data");
    if (data) {
        wk_map_set(req, out, "data", data);
    }
    wk_map_set(req, out, "enriched", wk_bool(req, true));
    wk_reply(req, wk_map(req, "args", out, NULL));
}

static const wk_function_t s_functions[] = {
    // Internal: the gateway calls them around data_service's calls; a client calling one
    // directly gets "Unknown function" (a direct validate_quota would spend quota).
    {.request_type = "validate_quota", .args = WK_HOOK_ARGS, .internal = true,
     .handler = s_validate_quota},
    {.request_type = "log_response", .args = WK_HOOK_ARGS, .internal = true,
     .handler = s_log_response},
    {.request_type = "enrich_request", .args = WK_HOOK_ARGS, .internal = true,
     .handler = s_enrich_request},
};

static const wk_service_t s_service = {
    .service = "hooks_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    const char *quota = getenv("GENAPI_HOOKS_QUOTA");
    s_quota.limit = quota && atoll(quota) > 0 ? atoll(quota) : 1000;
    return wk_main(argc, argv, &s_service);
}
