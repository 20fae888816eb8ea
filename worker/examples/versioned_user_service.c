// SPDX-License-Identifier: MIT
// The walkthrough's section 8 ("Function Versioning"): get_user in two versions side by side.
// Version 1.0.0 takes `id` and returns every field; version 2.0.0 adds field filtering (`fields`,
// a list of at most ten names). The walkthrough registers them under user_service.get_user,
// where they would clash with section 1's get_user 1.0.0 (argument `user_id`) and, by the
// latest-version rule, take version-less callers away from it; genapi serves them as
// versioned_user_service.get_user instead (docs/walkthrough.md, section 8).
#include <genapi/worker.h>

#include <string.h>

typedef struct {
    const char *id, *name, *email;
} user_t;

// Section 1's users, and the user the section 8 request asks for (id "123").
static const user_t s_users[] = {
    {"1", "Alice", "alice@example.com"},
    {"2", "Bob", "bob@example.com"},
    {"123", "Carol", "carol@example.com"},
};
#define N_USERS (sizeof s_users / sizeof s_users[0])

static const user_t *
s_find(const char *id)
{
    for (size_t i = 0; i < N_USERS; i++) {
        if (strcmp(s_users[i].id, id) == 0) {
            return &s_users[i];
        }
    }
    return NULL;
}

// The value of field `name` of `u`, or NULL when there is no such field.
static const char *
s_field(const user_t *u, const char *name)
{
    return strcmp(name, "id") == 0      ? u->id
           : strcmp(name, "name") == 0  ? u->name
           : strcmp(name, "email") == 0 ? u->email
                                        : NULL;
}

// MyApp.Users.get_user_v1: all fields.
static void
s_get_user_v1(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const user_t *u = s_find(wk_arg_str(req, "id"));
    if (u == NULL) {
        wk_reply_error(req, "not_found");
        return;
    }
    wk_reply(req, wk_map(req, "id", wk_str(req, u->id), "name", wk_str(req, u->name), "email",
                         wk_str(req, u->email), NULL));
}

// MyApp.Users.get_user_v2: only the fields asked for.
static void
s_get_user_v2(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const user_t *u = s_find(wk_arg_str(req, "id"));
    if (u == NULL) {
        wk_reply_error(req, "not_found");
        return;
    }
    const wk_value_t *fields = wk_arg(req, "fields");
    wk_value_t *out = wk_map(req, NULL);
    for (size_t i = 0; i < wk_value_len(fields); i++) {
        const char *name = wk_value_str(wk_value_at(fields, i));
        const char *value = s_field(u, name);
        if (value == NULL) {
            wk_reply_error(req, "unknown field \"%s\" (fields: id, name, email)", name);
            return;
        }
        wk_map_set(req, out, name, wk_str(req, value));
    }
    wk_reply(req, out);
}

static const wk_function_t s_functions[] = {
    {.request_type = "get_user", .version = "1.0.0", .args = "id:string",
     .handler = s_get_user_v1},
    {.request_type = "get_user", .version = "2.0.0",
     .args = "id:string, fields:list_string(max_items=10)", .handler = s_get_user_v2},
};

static const wk_service_t s_service = {
    .service = "versioned_user_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
