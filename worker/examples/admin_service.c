// SPDX-License-Identifier: MIT
// The walkthrough's admin_service (section 3, "Permissions"): delete_user needs the admin role;
// admin_action is decided by a permission callback, authorize, which is itself a function of
// this worker (it allows callers holding the admin or operator role). authorize declares the
// arguments a gateway sends a permission callback (WK_PERMISSION_CALLBACK_ARGS) and is internal:
// a client that calls it directly gets "Unknown function" (docs/security.md, "Internal
// functions").
#include <genapi/worker.h>

#include <string.h>

static void
s_delete_user(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "deleted", wk_str(req, wk_arg_str(req, "user_id")), NULL));
}

static void
s_admin_action(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "action", wk_str(req, wk_arg_str(req, "action")), "performed_by",
                         wk_str(req, wk_request_user_id(req)), NULL));
}

// The permission callback: the gateway sends {service, request_type, args, user_id, roles,
// device_id, ip}; an ok answer allows the call (the walkthrough's :ok), an error denies it and
// the client sees "Permission denied: unauthorized" (the walkthrough's {:error, :unauthorized}).
static void
s_authorize(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *roles = wk_arg(req, "roles");
    bool allowed = false;
    for (size_t i = 0; i < wk_value_len(roles) && !allowed; i++) {
        const char *role = wk_value_str(wk_value_at(roles, i));
        allowed = role && (strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0);
    }
    if (allowed) {
        wk_reply(req, NULL);
    } else {
        wk_reply_error(req, "unauthorized");
    }
}

static const wk_function_t s_functions[] = {
    {.request_type = "delete_user",
     .args = "user_id:string",
     .check_permission = "role:[admin]",
     .handler = s_delete_user},
    {.request_type = "admin_action",
     .args = "action:string",
     .permission_callback = "admin_service.authorize",
     .request_info = true, // the handler reports who performed the action
     .handler = s_admin_action},
    // Internal: only the gateway asks it; clients cannot probe it.
    {.request_type = "authorize", .args = WK_PERMISSION_CALLBACK_ARGS, .internal = true,
     .handler = s_authorize},
};

static const wk_service_t s_service = {
    .service = "admin_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
