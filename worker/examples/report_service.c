// SPDX-License-Identifier: MIT
// The walkthrough's report_service (section 5, "Async Execution"): generate_report takes three
// seconds; the client gets an ack at once and the report's URL as a later push. Its config is
// the walkthrough's: version 1.0.0, one argument `format` (a string, "pdf" when absent), async,
// the default timeout (5 s).
#include <genapi/worker.h>

#include <stdio.h>
#include <time.h>

static void
s_generate_report(wk_request_t *req, void *ctx)
{
    (void) ctx;
    struct timespec ts = {.tv_sec = 3, .tv_nsec = 0};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
    char url[300];
    snprintf(url, sizeof url, "https://example.com/reports/123.%s", wk_arg_str(req, "format"));
    wk_reply(req, wk_map(req, "report_url", wk_str(req, url), NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "generate_report",
     .version = "1.0.0",
     .args = "format:string(default=pdf)",
     .response_type = "async",
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
