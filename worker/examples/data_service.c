// SPDX-License-Identifier: MIT
// The walkthrough's data_service (section 9, "Retry & Node Fallback"): get_data, declared as
// there (no arguments, sync). `make run` starts it three times as node1, node2 and node3
// (--set node=node1 ...); each answer names the node that served it (`node`), so that a client
// can watch routing, fallback and retries at work.
#include <genapi/worker.h>

static void
s_get_data(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, wk_map(req, "node", wk_str(req, wk_request_node(req)), "data",
                         wk_str(req, "some data"), NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "get_data", .handler = s_get_data},
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
