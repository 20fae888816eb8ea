// SPDX-License-Identifier: MIT
// The walkthrough's search_service (section 2, map-style arguments): search
// receives one map with query, limit and offset, the last two defaulted by the
// gateway when absent.
#include <genapi/worker.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

static const char *const s_documents[] = {
    "Getting started with genapi", "Phoenix channels over WebSocket", "ZeroMQ workers in C",
    "Argument validation",         "Permissions and roles",           "Rate limiting",
};
#define N_DOCUMENTS (sizeof s_documents / sizeof s_documents[0])

// Case-insensitive substring test.
static bool
s_contains(const char *text, const char *query)
{
    size_t n = strlen(query);
    for (; *text; text++) {
        size_t i = 0;
        while (i < n && text[i] &&
               tolower((unsigned char) text[i]) == tolower((unsigned char) query[i])) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    return n == 0;
}

static void
s_search(wk_request_t *req, void *ctx)
{
    (void) ctx;
    const wk_value_t *args = wk_args(req);
    const char *query = wk_value_str(wk_value_get(args, "query"));
    int64_t limit = wk_value_int(wk_value_get(args, "limit"), 20);
    int64_t offset = wk_value_int(wk_value_get(args, "offset"), 0);
    wk_value_t *results = wk_list(req, NULL);
    int64_t seen = 0;
    for (size_t i = 0; i < N_DOCUMENTS && (int64_t) wk_value_len(results) < limit; i++) {
        if (s_contains(s_documents[i], query) && seen++ >= offset) {
            wk_list_push(req, results, wk_str(req, s_documents[i]));
        }
    }
    wk_reply(req, wk_map(req, "query", wk_str(req, query), "limit", wk_int(req, limit), "offset",
                         wk_int(req, offset), "results", results, NULL));
}

static const wk_function_t s_functions[] = {
    {.request_type = "search",
     .args = "query:string(max_bytes=500), limit:num(default=20), "
             "offset:num(default=0)",
     .args_as_map = true,
     .handler = s_search},
};

static const wk_service_t s_service = {
    .service = "search_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
