// SPDX-License-Identifier: MIT
// The walkthrough's data_service (section 9, "Retry & Node Fallback"): get_data, declared as
// there (no arguments, sync). `make run` starts it three times as node1, node2 and node3
// (--set node=node1 ...); each answer names the node that served it (`node`), so that a client
// can watch routing, fallback and retries at work.
//
// Section 11 ("Hooks"): expensive_operation (no arguments) runs hooks_service.validate_quota
// before and hooks_service.log_response after each call; process_data runs
// hooks_service.enrich_request with the extra args ["extra_value", 42], which sets its
// `enriched` argument (the args a before hook gives are validated against the declaration, so
// process_data declares what the hook adds). Both answer with what they got.
#include <genapi/worker.h>

static void
s_get_data(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "node", wk_str(req, wk_request_node(req)), "data",
                         wk_str(req, "some data"), NULL));
}

static void
s_expensive_operation(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "node", wk_str(req, wk_request_node(req)), "result",
                         wk_str(req, "expensive result"), NULL));
}

static void
s_process_data(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *data = wk_arg(req, "data");
    wk_reply(req, wk_map(req, "processed", data ? data : wk_nil(req), "enriched",
                         wk_bool(req, wk_arg_bool(req, "enriched", false)), NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "get_data", .handler = s_get_data},
    {.request_type = "expensive_operation",
     .before_execute = "hooks_service.validate_quota",
     .after_execute = "hooks_service.log_response",
     .hook_timeout_ms = 5000,
     .handler = s_expensive_operation},
    {.request_type = "process_data",
     .args = "data:any(allow_nil=true), enriched:boolean(default=false)",
     .before_execute = "hooks_service.enrich_request",
     .before_execute_args = "[\"extra_value\", 42]",
     .handler = s_process_data},
};

static const wk_service_t s_service = {
    .service = "data_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
