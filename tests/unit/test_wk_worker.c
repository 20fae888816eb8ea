// SPDX-License-Identifier: MIT
// The worker library's checks of a service's function table, before any I/O: the compact
// argument notation names the argument and lists the valid types and options when one is
// unknown, and a table the config parser refuses is refused with the function's name.
#include <genapi/worker.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void
s_handler(wk_request_t *req, void *ctx)
{
    (void) ctx;
    wk_reply(req, NULL);
}

// Starts a worker whose one function declares `args`; returns the refusal (empty when started).
static ga_err_t
s_start(const char *args, char *err, size_t errlen)
{
    const wk_function_t fn = {.request_type = "f", .args = args, .handler = s_handler};
    const wk_service_t svc = {.service = "s", .functions = &fn, .n_functions = 1};
    wk_options_t opt = {.broker = "tcp://127.0.0.1:1"};
    wk_worker_t *w = wk_worker_new(&svc, &opt);
    err[0] = '\0';
    ga_err_t rc = wk_worker_start(w, err, errlen);
    wk_worker_destroy(&w);
    return rc;
}

static void
test_worker_args_unknown_type_or_option_lists_the_valid_ones(void **state)
{
    (void) state;
    struct {
        const char *args;
        const char *want;
    } cases[] = {
        {"id:strng",
         "args: id: unknown type \"strng\" (valid: string, num, boolean, uuid, datetime, "
         "naive_datetime, list, list_string, list_num, list_uuid, list_map, map, any)"},
        {"title:string(maxbytes=5)",
         "args: title: unknown option \"maxbytes\" (valid: max_bytes, max_items, "
         "max_item_bytes, allow_nil, default, required, accept)"},
        {"n:num(default_value=3)",
         "args: n: unknown option \"default_value\" (valid: max_bytes, max_items, "
         "max_item_bytes, allow_nil, default, required, accept)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512];
        ga_err_t rc = s_start(cases[i].args, err, sizeof err);
        // The library appends the function's name.
        char want[600];
        snprintf(want, sizeof want, "%s (function f)", cases[i].want);
        if (rc != GA_ECONFIG || strcmp(err, want) != 0) {
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].args, err, want);
        }
    }
    // A rule the config parser enforces comes back with the function's name.
    char err[512];
    assert_int_equal(s_start("t:num(max_bytes=5)", err, sizeof err), GA_ECONFIG);
    assert_string_equal(err, "function f: arg_types.t.max_bytes: applies to string only");
}

// choose_node_mode and nodes reach the config: every mode starts, a wrong one is refused
// with the function's name.
static void
test_worker_node_mode_and_nodes_are_checked(void **state)
{
    (void) state;
    static const char *const nodes[] = {"n1", "n2", NULL};
    const char *modes[] = {"random", "hash", "hash:k", "round_robin", "sticky:k",
                           "sticky:user_id", "least_loaded", "hash:nope"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        const wk_function_t fn = {.request_type = "f", .args = "k:string",
                                  .choose_node_mode = modes[i], .nodes = nodes,
                                  .handler = s_handler};
        const wk_service_t svc = {.service = "s", .functions = &fn, .n_functions = 1};
        wk_options_t opt = {.broker = "tcp://127.0.0.1:1"};
        wk_worker_t *w = wk_worker_new(&svc, &opt);
        char err[512] = "";
        ga_err_t rc = wk_worker_start(w, err, sizeof err);
        wk_worker_destroy(&w);
        if (strcmp(modes[i], "hash:nope") == 0) {
            assert_int_equal(rc, GA_ECONFIG);
            assert_string_equal(err, "function f: choose_node_mode: hash:nope names no declared "
                                     "argument");
        } else if (rc != GA_OK) {
            fail_msg("%s refused: %s", modes[i], err);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_args_unknown_type_or_option_lists_the_valid_ones),
        cmocka_unit_test(test_worker_node_mode_and_nodes_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
