// SPDX-License-Identifier: MIT
// The walkthrough's report_service (section 5, "Async Execution"): generate_report takes three
// seconds; the client gets an ack at once and the report's URL as a later push.
#include <genapi/worker.h>

#include <time.h>

static void
s_generate_report(wk_request_t *req, void *ctx)
{
    (void) ctx;
    struct timespec ts = {.tv_sec = 3, .tv_nsec = 0};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
    wk_reply(req, wk_map(req, "report_url", wk_str(req, "https://example.com/reports/123.pdf"),
                         NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "generate_report",
     .response_type = "async",
     .timeout_ms = 30000,
     .handler = s_generate_report},
};

static const wk_service_t s_service = {
    .service = "report_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
