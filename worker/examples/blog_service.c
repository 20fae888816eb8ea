// SPDX-License-Identifier: MIT
// The walkthrough's blog_service (section 2, "Argument Validation", extended format):
// create_post with byte, item and key limits and a default. The gateway validates every
// argument before this handler runs, so it reads them by position without checks.
#include <genapi/worker.h>

#include <stdatomic.h>
#include <stdio.h>

static atomic_int s_next_post = 1;

static void
s_create_post(wk_request_t *req, void *ctx)
{
    (void) ctx;
    char id[32];
    snprintf(id, sizeof id, "post_%d", atomic_fetch_add(&s_next_post, 1));
    wk_value_t *post = wk_map(req, "id", wk_str(req, id), NULL);
    static const char *const fields[] = {"title", "body", "tags", "published", "metadata"};
    for (size_t i = 0; i < 5; i++) {
        wk_map_set(req, post, fields[i], wk_arg_at(req, i)); // arg_orders position i
    }
    wk_reply(req, post);
}

static const wk_function_t s_functions[] = {
    {.request_type = "create_post",
     .args = "title:string(max_bytes=200), body:string(max_bytes=50000),"
             " tags:list_string(max_items=10, max_item_bytes=50),"
             " published:boolean(default=false),"
             " metadata:map(max_items=50, required=[author], accept=[author, category, thumbnail])",
     .handler = s_create_post},
};

static const wk_service_t s_service = {
    .service = "blog_service",
    .functions = s_functions,
    .n_functions = sizeof s_functions / sizeof s_functions[0],
};

int
main(int argc, char **argv)
{
    return wk_main(argc, argv, &s_service);
}
