// SPDX-License-Identifier: MIT
// The walkthrough's user_service (section 1, "Basic Setup - Sync API"): list_users and
// get_user over a fixed table of users, with the walkthrough's data exactly.
#include <genapi/worker.h>

#include <string.h>

typedef struct {
    const char *id, *name, *email;
} user_t;

static const user_t s_users[] = {
    {"1", "Alice", "alice@example.com"},
    {"2", "Bob", "bob@example.com"},
};
#define N_USERS (sizeof s_users / sizeof s_users[0])

static wk_value_t *
s_user(wk_request_t *req, const user_t *u)
{
    return wk_map(req, "id", wk_str(req, u->id), "name", wk_str(req, u->name), "email",
                  wk_str(req, u->email), NULL);
}

static void
s_list_users(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_value_t *users = wk_list(req, NULL);
    for (size_t i = 0; i < N_USERS; i++) {
        wk_list_push(req, users, s_user(req, &s_users[i]));
    }
    wk_reply(req, users);
}

static void
s_get_user(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *id = wk_arg_str(req, "user_id");
    for (size_t i = 0; i < N_USERS; i++) {
        if (strcmp(s_users[i].id, id) == 0) {
            wk_reply(req, s_user(req, &s_users[i]));
            return;
        }
    }
    wk_reply_error(req, "not_found");
}

// Section 3: any authenticated caller sees its own profile.
static void
s_get_profile(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const char *me = wk_request_user_id(req);
    wk_reply(req,
             wk_map(req, "user_id", wk_str(req, me), "profile", wk_str(req, "your profile"), NULL));
}

// Section 3: user_id must be the caller's own (check_permission "arg:user_id").
static void
s_get_user_profile(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "user_id", wk_str(req, wk_arg_str(req, "user_id")), "profile",
                         wk_str(req, "private profile"), NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "list_users", .version = "1.0.0", .non_blocking = true,
     .handler = s_list_users},
    {.request_type = "get_user",
     .version = "1.0.0",
     .args = "user_id:string",
     .non_blocking = true,
     .handler = s_get_user},
    {.request_type = "get_profile",
     .check_permission = "any_authenticated",
     .request_info = true, // the handler reads the caller's user id
     .handler = s_get_profile},
    {.request_type = "get_user_profile",
     .args = "user_id:string",
     .check_permission = "arg:user_id",
     .handler = s_get_user_profile},
};

static const wk_service_t s_service = {
    .service = "user_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
