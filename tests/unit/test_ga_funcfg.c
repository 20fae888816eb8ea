// SPDX-License-Identifier: MIT
// Function configs and argument checks (docs/protocol.md, "Function config" and "Errors a
// client can see"), table-driven: the walkthrough's own configs are accepted with the defaults,
// each broken rule is refused with a message naming the field, and every type and option
// accepts and refuses what it should, with the exact client-visible messages.
#include "ga_funcfg.h"
#include "ga_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static ga_err_t
s_parse(const char *json, ga_funcfg_t **cfg, char *err, size_t errlen)
{
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    assert_int_equal(ga_json_decode(json, strlen(json), a, &v, NULL, 0), GA_OK);
    ga_err_t rc = ga_funcfg_parse(&v, cfg, err, errlen);
    ga_arena_destroy(&a); // the config keeps its own copy
    return rc;
}

static void
test_funcfg_accepts_the_walkthrough_configs_with_defaults(void **state)
{
    (void) state;
    char err[256] = "";
    ga_funcfg_t *cfg = NULL;
    assert_int_equal(s_parse("{\"service\":\"user_service\",\"request_type\":\"list_users\"}", &cfg,
                             err, sizeof err),
                     GA_OK);
    assert_int_equal(cfg->timeout_ms, 5000);
    assert_int_equal(cfg->response_type, GA_RESP_SYNC);
    assert_null(cfg->version);
    assert_string_equal(cfg->choose_node_mode, "random");
    assert_string_equal(cfg->check_permission, "false");
    assert_int_equal(cfg->n_args, 0);
    ga_funcfg_destroy(&cfg);

    const char *blog =
        "{\"service\":\"blog_service\",\"request_type\":\"create_post\",\"arg_types\":{"
        "\"title\":{\"type\":\"string\",\"max_bytes\":200},"
        "\"body\":{\"type\":\"string\",\"max_bytes\":50000},"
        "\"tags\":{\"type\":\"list_string\",\"max_items\":10,\"max_item_bytes\":50},"
        "\"published\":{\"type\":\"boolean\",\"default_value\":false},"
        "\"metadata\":{\"type\":\"map\",\"max_items\":50,\"required\":[\"author\"],"
        "\"accept\":[\"author\",\"category\",\"thumbnail\"]}},"
        "\"arg_orders\":[\"title\",\"body\",\"tags\",\"published\",\"metadata\"],"
        "\"response_type\":\"sync\",\"version\":\"0.0.0\"}";
    assert_int_equal(s_parse(blog, &cfg, err, sizeof err), GA_OK);
    assert_int_equal(cfg->n_args, 5);
    assert_string_equal(cfg->args[2].name, "tags");
    assert_int_equal(cfg->args[2].max_item_bytes, 50);
    assert_true(cfg->args[3].has_default);
    assert_int_equal(cfg->args[4].n_required, 1);
    assert_int_equal(cfg->args[4].n_accept, 3);
    assert_null(cfg->version); // "0.0.0" means none
    ga_funcfg_destroy(&cfg);

    const char *search =
        "{\"service\":\"search_service\",\"request_type\":\"search\",\"arg_types\":{"
        "\"query\":{\"type\":\"string\",\"max_bytes\":500},"
        "\"limit\":{\"type\":\"num\",\"default_value\":20}},\"arg_orders\":\"map\","
        "\"response_type\":\"stream\",\"timeout\":\"infinity\"}";
    assert_int_equal(s_parse(search, &cfg, err, sizeof err), GA_OK);
    assert_true(cfg->args_as_map);
    assert_int_equal(cfg->timeout_ms, GA_FUNCFG_TIMEOUT_INFINITY);
    ga_funcfg_destroy(&cfg);
}

static void
test_funcfg_refuses_broken_rules_naming_the_field(void **state)
{
    (void) state;
    struct {
        const char *json;
        const char *prefix;
    } cases[] = {
        {"{\"request_type\":\"x\"}", "service: required"},
        {"{\"service\":\"s\",\"request_type\":\"\"}", "request_type:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":\"strng\"}}",
         "arg_types.a: unknown type \"strng\""},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":{\"type\":\"num\","
         "\"default_value\":\"ten\"}}}",
         "arg_types.a.default_value:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":\"num\"},"
         "\"arg_orders\":[\"b\"]}",
         "arg_orders:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":\"num\",\"b\":\"num\"},"
         "\"arg_orders\":[\"a\",\"a\"]}",
         "arg_orders:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":\"num\",\"b\":\"num\"},"
         "\"arg_orders\":[\"a\"]}",
         "arg_orders:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"timeout\":50}", "timeout:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"timeout\":400000}", "timeout:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"timeout\":\"infinity\"}", "timeout:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"response_type\":\"later\"}",
         "response_type:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"colour\":1}", "colour: unknown field"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":{\"type\":\"num\","
         "\"max_bytes\":5}}}",
         "arg_types.a.max_bytes:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"choose_node_mode\":\"fastest\"}",
         "choose_node_mode:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"check_permission\":\"arg:nope\"}",
         "check_permission:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":\"same_node:0\"}", "retry:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":\"same_node:+3\"}", "retry:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":11}", "retry:"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":2,\"response_type\":\"stream\"}",
         "retry: only for sync and async functions (this one is stream)"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":2,\"response_type\":\"none\"}",
         "retry: only for sync and async functions (this one is none)"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"disabled\":\"no\"}", "disabled:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        ga_funcfg_t *cfg = NULL;
        assert_int_equal(s_parse(cases[i].json, &cfg, err, sizeof err), GA_ECONFIG);
        assert_null(cfg);
        if (strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) != 0) {
            fail_msg("case %zu: \"%s\" does not start with \"%s\"", i, err, cases[i].prefix);
        }
    }
}

// One argument check: `spec_json` is an arg_types entry, `value_json` the value (NULL: the
// expected message is checked for nil). `want` NULL means accepted.
static void
s_check(const char *spec_json, const char *value_json, const char *want)
{
    char cfg_json[1024];
    snprintf(cfg_json, sizeof cfg_json,
             "{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":%s}}", spec_json);
    char err[256] = "";
    ga_funcfg_t *cfg = NULL;
    if (s_parse(cfg_json, &cfg, err, sizeof err) != GA_OK) {
        fail_msg("spec %s refused: %s", spec_json, err);
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    assert_int_equal(ga_json_decode(value_json, strlen(value_json), a, &v, NULL, 0), GA_OK);
    char msg[256] = "";
    ga_err_t rc = ga_arg_check(&cfg->args[0], &v, msg, sizeof msg);
    if (want == NULL && rc != GA_OK) {
        fail_msg("%s as %s refused: %s", value_json, spec_json, msg);
    }
    if (want != NULL && (rc == GA_OK || strcmp(msg, want) != 0)) {
        fail_msg("%s as %s: got \"%s\", want \"%s\"", value_json, spec_json,
                 rc == GA_OK ? "(accepted)" : msg, want);
    }
    ga_arena_destroy(&a);
    ga_funcfg_destroy(&cfg);
}

#define TYPE_ERR(t) "Invalid type for argument a: expected " t

static void
test_argcheck_every_type_valid_and_invalid(void **state)
{
    (void) state;
    s_check("\"string\"", "\"x\"", NULL);
    s_check("\"string\"", "5", TYPE_ERR("string"));
    s_check("\"string\"", "\"\"", NULL);
    s_check("\"num\"", "5", NULL);
    s_check("\"num\"", "5.5", NULL);
    s_check("\"num\"", "-1e10", NULL);
    s_check("\"num\"", "\"5\"", TYPE_ERR("num"));
    s_check("\"boolean\"", "true", NULL);
    s_check("\"boolean\"", "0", TYPE_ERR("boolean"));
    s_check("\"boolean\"", "1", TYPE_ERR("boolean"));
    s_check("\"uuid\"", "\"123e4567-e89b-12d3-a456-426614174000\"", NULL);
    s_check("\"uuid\"", "\"123E4567-E89B-12D3-A456-426614174000\"", NULL);
    s_check("\"uuid\"", "\"123e4567e89b12d3a456426614174000\"", TYPE_ERR("uuid"));
    s_check("\"uuid\"", "\"123e4567-e89b-12d3-a456-42661417400g\"", TYPE_ERR("uuid"));
    s_check("\"datetime\"", "\"2024-02-29T10:00:00Z\"", NULL);
    s_check("\"datetime\"", "\"2024-02-29T10:00:00.123+02:00\"", NULL);
    s_check("\"datetime\"", "\"2023-02-29T10:00:00Z\"", TYPE_ERR("datetime"));
    s_check("\"datetime\"", "\"2024-01-01T10:00:00\"", TYPE_ERR("datetime"));
    s_check("\"datetime\"", "\"2024-13-01T10:00:00Z\"", TYPE_ERR("datetime"));
    s_check("\"naive_datetime\"", "\"2024-01-01T10:00:00\"", NULL);
    s_check("\"naive_datetime\"", "\"2024-01-01T10:00:00Z\"", TYPE_ERR("naive_datetime"));
    s_check("\"list\"", "[1,\"a\",null]", NULL);
    s_check("\"list\"", "[]", NULL);
    s_check("\"list\"", "{}", TYPE_ERR("list"));
    s_check("\"list_string\"", "[\"a\",\"b\"]", NULL);
    s_check("\"list_string\"", "[\"a\",1]", TYPE_ERR("list_string"));
    s_check("\"list_num\"", "[1,2.5]", NULL);
    s_check("\"list_num\"", "[1,\"2\"]", TYPE_ERR("list_num"));
    s_check("\"list_uuid\"", "[\"123e4567-e89b-12d3-a456-426614174000\"]", NULL);
    s_check("\"list_uuid\"", "[\"nope\"]", TYPE_ERR("list_uuid"));
    s_check("\"list_map\"", "[{},{\"a\":1}]", NULL);
    s_check("\"list_map\"", "[[]]", TYPE_ERR("list_map"));
    s_check("\"map\"", "{\"k\":1}", NULL);
    s_check("\"map\"", "[]", TYPE_ERR("map"));
    s_check("\"any\"", "null", NULL);
    s_check("\"any\"", "{\"x\":[1]}", NULL);
}

static void
test_argcheck_options_and_limits(void **state)
{
    (void) state;
    // max_bytes counts bytes, not characters: "é" is two bytes.
    s_check("{\"type\":\"string\",\"max_bytes\":4}", "\"\xc3\xa9\xc3\xa9\"", NULL);
    s_check("{\"type\":\"string\",\"max_bytes\":3}", "\"\xc3\xa9\xc3\xa9\"",
            "Argument a exceeds max_bytes 3");
    s_check("{\"type\":\"list\",\"max_items\":2}", "[1,2,3]", "Argument a exceeds max_items 2");
    s_check("{\"type\":\"map\",\"max_items\":1}", "{\"x\":1,\"y\":2}",
            "Argument a exceeds max_items 1");
    s_check("{\"type\":\"list_string\",\"max_item_bytes\":2}", "[\"ab\",\"abc\"]",
            "Argument a item 1 exceeds max_item_bytes 2");
    s_check("{\"type\":\"map\",\"required\":[\"k1\",\"k2\"]}", "{}",
            "Argument a is missing required keys: k1, k2");
    s_check("{\"type\":\"map\",\"accept\":[\"k1\"]}", "{\"k1\":1,\"k9\":2}",
            "Argument a has keys that are not accepted: k9");
    // nil, with and without allow_nil.
    s_check("\"string\"", "null", TYPE_ERR("string"));
    s_check("{\"type\":\"string\",\"allow_nil\":true}", "null", NULL);
    // Global caps when a config sets none: 3000 bytes, 1000 items.
    char big[3100];
    big[0] = '"';
    memset(big + 1, 'x', 3001);
    big[3002] = '"';
    big[3003] = '\0';
    s_check("\"string\"", big, "Argument a exceeds max_bytes 3000");
    big[3001] = '"';
    big[3002] = '\0';
    s_check("\"string\"", big, NULL);
    char list[4200] = "[";
    for (int i = 0; i < 1001; i++) {
        strcat(list, i ? ",1" : "1");
    }
    strcat(list, "]");
    s_check("\"list_num\"", list, "Argument a exceeds max_items 1000");
}

// Hooks: a name, or {function, args}; after_execute only for sync and async functions; the
// hook timeout in range; the defaults when unset.
static void
test_funcfg_hooks(void **state)
{
    (void) state;
    ga_funcfg_t *cfg = NULL;
    char err[256] = "";
    assert_int_equal(s_parse("{\"service\":\"s\",\"request_type\":\"x\","
                             "\"before_execute\":{\"function\":\"h.enrich\",\"args\":[\"e\",42]},"
                             "\"after_execute\":\"h.log\",\"hook_timeout\":250}",
                             &cfg, err, sizeof err),
                     GA_OK);
    assert_string_equal(cfg->before_execute, "h.enrich");
    assert_int_equal(cfg->before_args.type, GA_ARRAY);
    assert_int_equal(cfg->before_args.len, 2);
    assert_string_equal(cfg->after_execute, "h.log");
    assert_int_equal(cfg->after_args.type, GA_NIL);
    assert_int_equal(cfg->hook_timeout_ms, 250);
    ga_funcfg_destroy(&cfg);
    assert_int_equal(s_parse("{\"service\":\"s\",\"request_type\":\"x\"}", &cfg, err, sizeof err),
                     GA_OK);
    assert_null(cfg->before_execute);
    assert_null(cfg->after_execute);
    assert_int_equal(cfg->hook_timeout_ms, GA_FUNCFG_HOOK_TIMEOUT_DEFAULT);
    ga_funcfg_destroy(&cfg);
    struct {
        const char *field; // JSON "key":value
        const char *want;  // the exact refusal
    } cases[] = {
        {"\"before_execute\":42",
         "before_execute: must be \"service.request_type\" or {\"function\": "
         "\"service.request_type\", \"args\": [...]}"},
        {"\"before_execute\":\"\"", "before_execute: must be a non-empty string"},
        {"\"before_execute\":{\"args\":[1]}", "before_execute: function required"},
        {"\"after_execute\":{\"function\":\"h.x\",\"extra\":1}",
         "after_execute: unknown key extra (valid: function, args)"},
        {"\"hook_timeout\":50", "hook_timeout: must be 100..300000 ms"},
        {"\"after_execute\":\"h.log\",\"response_type\":\"stream\"",
         "after_execute: only for sync and async functions (this one is stream: its chunks "
         "reach the client as they come)"},
        {"\"after_execute\":\"h.log\",\"response_type\":\"none\"",
         "after_execute: only for sync and async functions (this one is none)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"service\":\"s\",\"request_type\":\"x\",%s}",
                 cases[i].field);
        err[0] = '\0';
        if (s_parse(json, &cfg, err, sizeof err) != GA_ECONFIG || strcmp(err, cases[i].want) != 0) {
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].field, err, cases[i].want);
        }
        assert_null(cfg);
    }
}

// Every field is acted on (common/ga_funcfg.c s_fields: a field whose feature is not built would
// be refused when set, never accepted and ignored); nil means unset.
static void
test_funcfg_refuses_fields_nothing_acts_on_yet(void **state)
{
    (void) state;
    // Unset (absent or nil) is accepted.
    const char *fine[] = {
        "{\"service\":\"s\",\"request_type\":\"x\",\"retry\":null,\"before_execute\":null,"
        "\"after_execute\":null,\"hook_timeout\":null}",
        "{\"service\":\"s\",\"request_type\":\"x\",\"choose_node_mode\":\"random\"}",
        "{\"service\":\"s\",\"request_type\":\"x\",\"nodes\":[\"s@host-1\"],\"request_info\":true}",
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        char err[256] = "";
        ga_funcfg_t *cfg = NULL;
        if (s_parse(fine[i], &cfg, err, sizeof err) != GA_OK) {
            fail_msg("%s refused: %s", fine[i], err);
        }
        ga_funcfg_destroy(&cfg);
    }
}

// nodes may name a resolver, "service.request_type" alone or as {"resolver": ...}; anything
// else that is not a list of node names is refused naming the field.
static void
test_funcfg_nodes_resolver(void **state)
{
    (void) state;
    const char *good[] = {"\"data_service.resolve_nodes\"",
                          "{\"resolver\":\"data_service.resolve_nodes\"}"};
    for (size_t i = 0; i < 2; i++) {
        char json[256], err[256] = "";
        snprintf(json, sizeof json, "{\"service\":\"s\",\"request_type\":\"x\",\"nodes\":%s}",
                 good[i]);
        ga_funcfg_t *cfg = NULL;
        if (s_parse(json, &cfg, err, sizeof err) != GA_OK) {
            fail_msg("%s refused: %s", good[i], err);
        }
        assert_string_equal(cfg->nodes_resolver, "data_service.resolve_nodes");
        assert_int_equal(cfg->n_nodes, 0);
        ga_funcfg_destroy(&cfg);
    }
    struct {
        const char *nodes; // JSON value
        const char *want;  // the exact refusal
    } bad[] = {
        {"\"resolve_nodes\"",
         "nodes: a list of node names, or a resolver function named \"service.request_type\""},
        {"\".x\"", "nodes: a list of node names, or a resolver function named "
                   "\"service.request_type\""},
        {"\"s.\"", "nodes: a list of node names, or a resolver function named "
                   "\"service.request_type\""},
        {"{\"resolver\":\"a.b\",\"cache\":1}",
         "nodes: a map names only a resolver: {\"resolver\": \"service.request_type\"}"},
        {"{\"fn\":\"a.b\"}",
         "nodes: a map names only a resolver: {\"resolver\": \"service.request_type\"}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[256], err[256] = "";
        snprintf(json, sizeof json, "{\"service\":\"s\",\"request_type\":\"x\",\"nodes\":%s}",
                 bad[i].nodes);
        ga_funcfg_t *cfg = NULL;
        if (s_parse(json, &cfg, err, sizeof err) != GA_ECONFIG || strcmp(err, bad[i].want) != 0) {
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].nodes, err, bad[i].want);
        }
        assert_null(cfg);
    }
}

// Every node mode is accepted and parsed; hash:ARG must name a declared argument, sticky:KEY an
// argument or a request field.
static void
test_funcfg_node_modes(void **state)
{
    (void) state;
    struct {
        const char *mode;    // choose_node_mode
        int want;            // ga_node_mode_t, or -1: refused
        const char *key;     // node_key expected (NULL: none), or the refusal
        bool is_arg;         // node_key_is_arg expected
    } cases[] = {
        {"random", GA_NODE_RANDOM, NULL, false},
        {"hash", GA_NODE_HASH, NULL, false},
        {"round_robin", GA_NODE_ROUND_ROBIN, NULL, false},
        {"least_loaded", GA_NODE_LEAST_LOADED, NULL, false},
        {"hash:user_id", GA_NODE_HASH_ARG, "user_id", true},
        {"sticky:user_id", GA_NODE_STICKY, "user_id", true},
        {"sticky:device_id", GA_NODE_STICKY, "device_id", false},
        {"sticky:ip", GA_NODE_STICKY, "ip", false},
        {"hash:colour", -1, "choose_node_mode: hash:colour names no declared argument", false},
        {"hash:device_id", -1, "choose_node_mode: hash:device_id names no declared argument",
         false},
        {"sticky:colour", -1,
         "choose_node_mode: sticky:colour names neither a declared argument nor a request field "
         "(user_id, device_id, ip, request_id)",
         false},
        {"hash:", -1,
         "choose_node_mode: must be random, hash, hash:ARG, round_robin, sticky:KEY or "
         "least_loaded",
         false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"service\":\"s\",\"request_type\":\"x\",\"choose_node_mode\":\"%s\","
                 "\"arg_types\":{\"user_id\":\"string\"}}",
                 cases[i].mode);
        char err[256] = "";
        ga_funcfg_t *cfg = NULL;
        ga_err_t rc = s_parse(json, &cfg, err, sizeof err);
        if (cases[i].want < 0) {
            if (rc != GA_ECONFIG || strcmp(err, cases[i].key) != 0) {
                fail_msg("%s: got \"%s\", want \"%s\"", cases[i].mode, err, cases[i].key);
            }
            continue;
        }
        if (rc != GA_OK) {
            fail_msg("%s refused: %s", cases[i].mode, err);
        }
        assert_int_equal(cfg->node_mode, cases[i].want);
        assert_string_equal(cfg->choose_node_mode, cases[i].mode);
        if (cases[i].key) {
            assert_string_equal(cfg->node_key, cases[i].key);
            assert_int_equal(cfg->node_key_is_arg, cases[i].is_arg);
        } else {
            assert_null(cfg->node_key);
        }
        ga_funcfg_destroy(&cfg);
    }
}

// Unknown names list the valid ones, so the fix is in the message.
static void
test_funcfg_unknown_type_option_or_field_lists_the_valid_ones(void **state)
{
    (void) state;
    struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":\"strng\"}}",
         "arg_types.a: unknown type \"strng\" (valid: string, num, boolean, uuid, datetime, "
         "naive_datetime, list, list_string, list_num, list_uuid, list_map, map, any)"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":{\"type\":\"integer\"}}}",
         "arg_types.a: unknown type \"integer\" (valid: string, num, boolean, uuid, datetime, "
         "naive_datetime, list, list_string, list_num, list_uuid, list_map, map, any)"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"arg_types\":{\"a\":{\"type\":\"string\","
         "\"maxbytes\":5}}}",
         "arg_types.a.maxbytes: unknown option (valid: type, max_bytes, max_items, "
         "max_item_bytes, allow_nil, default_value, required, accept)"},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"colour\":1}",
         "colour: unknown field (valid: service, request_type, version, nodes, choose_node_mode, "
         "timeout, arg_types, arg_orders, response_type, check_permission, permission_callback, "
         "retry, before_execute, after_execute, hook_timeout, request_info, disabled, "
         "visibility)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        ga_funcfg_t *cfg = NULL;
        if (s_parse(cases[i].json, &cfg, err, sizeof err) != GA_ECONFIG ||
            strcmp(err, cases[i].want) != 0) {
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        }
    }
}

// visibility: "public" (the default) or "internal" (a function only the gateway and the broker
// call: hooks, permission callbacks, identity services, nodes resolvers); anything else refused.
static void
test_funcfg_visibility(void **state)
{
    (void) state;
    char err[256] = "";
    ga_funcfg_t *cfg = NULL;
    assert_int_equal(s_parse("{\"service\":\"s\",\"request_type\":\"x\"}", &cfg, err,
                             sizeof err),
                     GA_OK);
    assert_false(cfg->internal);
    ga_funcfg_destroy(&cfg);
    assert_int_equal(s_parse("{\"service\":\"s\",\"request_type\":\"x\",\"visibility\":"
                             "\"public\"}",
                             &cfg, err, sizeof err),
                     GA_OK);
    assert_false(cfg->internal);
    ga_funcfg_destroy(&cfg);
    assert_int_equal(s_parse("{\"service\":\"s\",\"request_type\":\"x\",\"visibility\":"
                             "\"internal\"}",
                             &cfg, err, sizeof err),
                     GA_OK);
    assert_true(cfg->internal);
    ga_funcfg_destroy(&cfg);
    const char *bad[] = {
        "{\"service\":\"s\",\"request_type\":\"x\",\"visibility\":\"private\"}",
        "{\"service\":\"s\",\"request_type\":\"x\",\"visibility\":true}",
        "{\"service\":\"s\",\"request_type\":\"x\",\"visibility\":\"Internal\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(s_parse(bad[i], &cfg, err, sizeof err), GA_ECONFIG);
        assert_null(cfg);
        assert_string_equal(err, "visibility: must be \"public\" or \"internal\"");
    }
}

// retry is acted on: N and all_nodes:N move across nodes, same_node:N stays on one.
static void
test_funcfg_parses_retry_forms(void **state)
{
    (void) state;
    struct {
        const char *json; // the config
        int attempts;     // retry_attempts wanted
        bool same_node;   // retry_same_node wanted
    } cases[] = {
        {"{\"service\":\"s\",\"request_type\":\"x\"}", 0, false},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":3}", 3, false},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":\"all_nodes:10\"}", 10, false},
        {"{\"service\":\"s\",\"request_type\":\"x\",\"retry\":\"same_node:2\",\"response_type\":"
         "\"async\"}",
         2, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        ga_funcfg_t *cfg = NULL;
        assert_int_equal(s_parse(cases[i].json, &cfg, err, sizeof err), GA_OK);
        assert_int_equal(cfg->retry_attempts, cases[i].attempts);
        assert_int_equal(cfg->retry_same_node, cases[i].same_node);
        ga_funcfg_destroy(&cfg);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_funcfg_parses_retry_forms),
        cmocka_unit_test(test_funcfg_visibility),
        cmocka_unit_test(test_funcfg_accepts_the_walkthrough_configs_with_defaults),
        cmocka_unit_test(test_funcfg_refuses_broken_rules_naming_the_field),
        cmocka_unit_test(test_argcheck_every_type_valid_and_invalid),
        cmocka_unit_test(test_argcheck_options_and_limits),
        cmocka_unit_test(test_funcfg_refuses_fields_nothing_acts_on_yet),
        cmocka_unit_test(test_funcfg_hooks),
        cmocka_unit_test(test_funcfg_unknown_type_option_or_field_lists_the_valid_ones),
        cmocka_unit_test(test_funcfg_node_modes),
        cmocka_unit_test(test_funcfg_nodes_resolver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
