// SPDX-License-Identifier: MIT
// genapi-test-worker: a service for the integration tests. test_service offers sleep (a slow
// handler that announces itself on stdout, so a test can kill the worker mid-request), echo,
// fail (a handler error) and silent (a handler that forgets to answer).
#include <genapi/worker.h>

#include <stdio.h>
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
s_silent(wk_request_t *req, void *ctx)
{
    (void) req;
    (void) ctx;
}

static const wk_function_t s_functions[] = {
    {.request_type = "sleep", .args = "ms:num", .timeout_ms = 30000, .handler = s_sleep},
    {.request_type = "echo", .args = "value:any", .handler = s_echo},
    {.request_type = "fail", .handler = s_fail},
    {.request_type = "silent", .handler = s_silent},
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
