// SPDX-License-Identifier: MIT
// The walkthrough's event_service (section 6, "Streaming"): stream_events sends ten ticks half
// a second apart, then a last result; stream_search sends every search result in batches, then
// completes. Both stop early when the client goes away (the stream is cancelled).
#include <genapi/worker.h>

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

// MyApp.Search.all(): every result, in batches.
static const char *const s_results[][3] = {
    {"Getting started", "Sync APIs", "Async APIs"},
    {"Streaming", "Config push and pull", "Function versioning"},
    {"Retry and fallback", "Hooks", "Relay messages"},
};

static void
s_stream_search(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_stream_t *stream = wk_request_stream(req);
    wk_request_t *out = wk_stream_ctx(stream);
    for (size_t batch = 0; batch < sizeof s_results / sizeof s_results[0]; batch++) {
        wk_value_t *results = wk_list(out, NULL);
        for (size_t i = 0; i < 3; i++) {
            wk_list_push(out, results, wk_str(out, s_results[batch][i]));
        }
        if (wk_stream_send(stream, results) != GA_OK) {
            break; // cancelled: the client is gone
        }
    }
    wk_stream_complete(stream);
}

// As the walkthrough declares them: version 1.0.0, no arguments, the default timeout (5000 ms,
// which for a stream bounds the silence between two messages, so the 5-second stream_events
// runs to its end).
static const wk_function_t s_functions[] = {
    {.request_type = "stream_events",
     .version = "1.0.0",
     .response_type = "stream",
     .handler = s_stream_events},
    {.request_type = "stream_search",
     .version = "1.0.0",
     .response_type = "stream",
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
