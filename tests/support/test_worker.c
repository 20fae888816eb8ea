// SPDX-License-Identifier: MIT
// genapi-test-worker: a service for the integration tests. test_service offers sleep (a slow
// handler that announces itself on stdout, so a test can kill the worker mid-request), echo,
// fail (a handler error) and silent (a handler that forgets to answer).
#include <genapi/worker.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static void
s_sleep(wk_request_t *req, void *ctx)
{
    (void) ctx;
    int64_t ms = wk_arg_int(req, "ms", 0);
    printf("HANDLER sleep start %lld\n", (long long) ms);
    fflush(stdout);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
    wk_reply(req, wk_map(req, "slept", wk_int(req, ms), NULL));
}

static void
s_echo(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *copy = wk_map(req, NULL);
    wk_map_set(req, copy, "value", wk_arg(req, "value"));
    wk_reply(req, copy);
}

static void
s_fail(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply_error(req, "boom");
}

static void
s_whoami(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *roles = wk_list(req, NULL);
    static const char *const known[] = {"admin", "editor", "viewer", "operator"};
    for (size_t i = 0; i < 4; i++) {
        if (wk_request_has_role(req, known[i])) {
            wk_list_push(req, roles, wk_str(req, known[i]));
        }
    }
    const char *device = wk_request_device_id(req);
    wk_reply(req, wk_map(req, "user_id", wk_str(req, wk_request_user_id(req)), "roles", roles,
                         "device_id", device ? wk_str(req, device) : wk_nil(req), NULL));
}

static void
s_silent(wk_request_t *req, void *ctx)
{
    (void) req;
    (void) ctx;
}

// An identity service for auth=service: params.token "user:ID:role1,role2" is accepted,
// anything else refused.
static void
s_authenticate(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *token = wk_value_str(wk_value_get(wk_arg(req, "params"), "token"));
    if (token == NULL || strncmp(token, "user:", 5) != 0 || token[5] == '\0') {
        wk_reply_error(req, "unknown token");
        return;
    }
    char id[128];
    const char *rest = token + 5;
    size_t n = strcspn(rest, ":");
    snprintf(id, sizeof id, "%.*s", (int) n, rest);
    wk_value_t *roles = wk_list(req, NULL);
    const char *r = rest[n] == ':' ? rest + n + 1 : "";
    while (*r) {
        size_t k = strcspn(r, ",");
        char role[64];
        snprintf(role, sizeof role, "%.*s", (int) k, r);
        wk_list_push(req, roles, wk_str(req, role));
        r += k + (r[k] == ',');
    }
    wk_reply(req, wk_map(req, "user_id", wk_str(req, id), "roles", roles, NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "sleep", .args = "ms:num", .timeout_ms = 30000, .handler = s_sleep},
    {.request_type = "echo", .args = "value:any", .handler = s_echo},
    {.request_type = "fail", .handler = s_fail},
    {.request_type = "silent", .handler = s_silent},
    {.request_type = "authenticate", .handler = s_authenticate},
    {.request_type = "whoami", .check_permission = "any_authenticated", .handler = s_whoami},
};

static const wk_service_t s_service = {
    .service = "test_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
