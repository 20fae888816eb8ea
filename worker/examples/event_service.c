// SPDX-License-Identifier: MIT
// The walkthrough's event_service (section 6, "Streaming"): stream_events sends ten ticks half
// a second apart, then a last result; stream_search sends batches of results, then completes.
// Both stop early when the client goes away (the stream is cancelled).
#include <genapi/worker.h>

#include <stdio.h>
#include <time.h>

static void
s_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        // interrupted: sleep the rest
    }
}

static void
s_stream_events(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    wk_request_t *out = wk_stream_ctx(stream);
    for (int i = 1; i <= 10; i++) {
        if (wk_stream_send(stream, wk_map(out, "event", wk_str(out, "tick"), "number",
                                          wk_int(out, i), NULL)) != GA_OK) {
            wk_stream_complete(stream); // cancelled: the client is gone
            return;
        }
        s_sleep_ms(500);
    }
    wk_stream_send_last(stream,
                        wk_map(out, "event", wk_str(out, "done"), "total", wk_int(out, 10), NULL));
}

static void
s_stream_search(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    wk_request_t *out = wk_stream_ctx(stream);
    const char *query = wk_arg_str(req, "query");
    for (int batch = 0; batch < 3; batch++) {
        wk_value_t *results = wk_list(out, NULL);
        for (int i = 0; i < 5; i++) {
            char title[160];
            snprintf(title, sizeof title, "%s result %d", query, batch * 5 + i + 1);
            wk_list_push(out, results, wk_str(out, title));
        }
        if (wk_stream_send(stream, results) != GA_OK) {
            break;
        }
        s_sleep_ms(100);
    }
    wk_stream_complete(stream);
}

static const wk_function_t s_functions[] = {
    {.request_type = "stream_events",
     .response_type = "stream",
     .timeout_ms = 60000,
     .handler = s_stream_events},
    {.request_type = "stream_search",
     .response_type = "stream",
     .args = "query:string(max_bytes=200)",
     .timeout_ms = 60000,
     .handler = s_stream_search},
};

static const wk_service_t s_service = {
    .service = "event_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
