// SPDX-License-Identifier: MIT
// The broker's registry without sockets: REGISTER bodies (accepted, refused per config or whole),
// change detection, version lookup, worker choice (offers, nodes, breaker), expiry, snapshots,
// and the sweep that deletes what the workers of an up service no longer offer.
#include "bk_registry.h"
#include "ga_json.h"
#include "ga_wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PICKS 200 // picks per check of a random choice

// The walkthrough's user_service worker.
static const char *s_user_service =
    "{\"node\":\"user_service@host-1\",\"service\":\"user_service\",\"config_version\":\"1\","
    "\"functions\":["
    "{\"service\":\"user_service\",\"request_type\":\"list_users\",\"version\":\"1.0.0\"},"
    "{\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
    "\"arg_types\":{\"user_id\":\"string\"}}"
    "]}";

typedef struct {
    bk_registry_t *r;   // under test
    ga_arena_t *a;      // bodies and results
    ga_value_t failed;  // the last register's refused configs
    ga_value_t changed; // the last register's added or changed configs
    ga_value_t removed; // the last sweep's deleted configs
    bk_worker_t *w;     // the last registered worker
    bool skipped;       // the last register's table was skipped (same config_version)
    char err[256];      // the last register's error
} fixture_t;

static int
s_setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    f.r = bk_registry_new();
    f.a = ga_arena_new(8192);
    *state = &f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    bk_registry_destroy(&f->r);
    assert_null(f->r);
    ga_arena_destroy(&f->a);
    return 0;
}

// Registers `json` for the worker with the one-byte routing id `id`.
static ga_err_t
s_register(fixture_t *f, uint8_t id, const char *json, int64_t expiry)
{
    ga_value_t body;
    char why[200] = "";
    if (ga_json_decode(json, strlen(json), f->a, &body, why, sizeof why) != GA_OK) {
        fail_msg("bad JSON in test: %s (%s)", json, why);
    }
    uint8_t rid[3] = {0x00, id, 0xff}; // a ZeroMQ-style id with a NUL byte in it
    f->err[0] = '\0';
    f->w = NULL;
    return bk_registry_register(f->r, rid, sizeof rid, &body, expiry, f->a, &f->failed, &f->changed,
                                &f->w, &f->skipped, f->err, sizeof f->err);
}

// A REGISTER body for `service` at `node` with the given configs (a JSON list's inside), under
// a config_version no other body has.
static const char *
s_body(fixture_t *f, const char *node, const char *service, const char *configs)
{
    static unsigned version; // each body a new config_version: none is skipped
    size_t n = strlen(node) + strlen(service) + strlen(configs) + 128;
    char *s = ga_arena_alloc(f->a, n);
    snprintf(s, n,
             "{\"node\":\"%s\",\"service\":\"%s\",\"config_version\":\"b%u\","
             "\"functions\":[%s]}",
             node, service, ++version, configs);
    return s;
}

// True when list `changed` holds a config source with this request_type (and version).
static bool
s_has_source(const ga_value_t *list, const char *request_type, const char *version)
{
    for (uint32_t i = 0; i < list->len; i++) {
        const ga_value_t *src = &list->u.items[i];
        const char *rt = ga_map_get_str(src, "request_type");
        const char *v = ga_map_get_str(src, "version");
        if (rt && strcmp(rt, request_type) == 0 &&
            (version == NULL ? v == NULL : v && strcmp(v, version) == 0)) {
            return true;
        }
    }
    return false;
}

// --- REGISTER ---

static void
test_registry_register_accepts_the_walkthrough_worker(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    assert_int_equal(f->failed.type, GA_ARRAY);
    assert_int_equal(f->failed.len, 0);
    assert_int_equal(f->changed.type, GA_ARRAY);
    assert_int_equal(f->changed.len, 2);
    assert_true(s_has_source(&f->changed, "list_users", "1.0.0"));
    assert_true(s_has_source(&f->changed, "get_user", "1.0.0"));
    assert_non_null(f->w);
    assert_string_equal(f->w->node, "user_service@host-1");
    assert_string_equal(f->w->service, "user_service");
    assert_int_equal(f->w->expiry, 1000);
    assert_true(f->w->registered);
    assert_int_equal(f->w->id_len, 3);
    assert_memory_equal(f->w->id, "\x00\x01\xff", 3);
    assert_int_equal(bk_registry_function_count(f->r), 2);
    assert_int_equal(bk_registry_worker_count(f->r), 1);
    assert_int_equal(bk_registry_failed_count(f->r), 0);
}

static void
test_registry_worker_is_found_by_its_routing_id(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    uint8_t same[3] = {0x00, 0x01, 0xff};
    uint8_t other[3] = {0x00, 0x02, 0xff};
    uint8_t prefix[2] = {0x00, 0x01};
    assert_ptr_equal(bk_registry_worker(f->r, same, 3), f->w);
    assert_null(bk_registry_worker(f->r, other, 3));
    assert_null(bk_registry_worker(f->r, prefix, 2));
    // Found again (the last one found is kept), then another, then none once removed.
    assert_int_equal(s_register(f, 2, s_user_service, 1000), GA_OK);
    bk_worker_t *w2 = f->w;
    assert_ptr_equal(bk_registry_worker(f->r, other, 3), w2);
    assert_ptr_equal(bk_registry_worker(f->r, other, 3), w2);
    bk_worker_t *w1 = bk_registry_worker(f->r, same, 3);
    assert_non_null(w1);
    assert_null(bk_registry_worker(f->r, prefix, 2));
    assert_ptr_equal(bk_registry_worker(f->r, same, 3), w1);
    bk_registry_remove(f->r, w1);
    assert_null(bk_registry_worker(f->r, same, 3));
    assert_ptr_equal(bk_registry_worker(f->r, other, 3), w2);
    bk_registry_remove(f->r, w2);
    assert_null(bk_registry_worker(f->r, other, 3));
}

static void
test_registry_register_refuses_a_bad_config_and_keeps_the_others(void **state)
{
    fixture_t *f = *state;
    const char *body = s_body(f, "n1", "user_service",
                              "{\"service\":\"user_service\",\"request_type\":\"good\"},"
                              "{\"service\":\"user_service\",\"request_type\":\"slow\","
                              "\"timeout\":5},"
                              "{\"service\":\"user_service\",\"request_type\":\"also_good\"}");
    assert_int_equal(s_register(f, 1, body, 1000), GA_OK);
    assert_int_equal(f->failed.len, 1);
    const ga_value_t *fail = &f->failed.u.items[0];
    assert_string_equal(ga_map_get_str(fail, "function"), "slow");
    const char *reason = ga_map_get_str(fail, "reason");
    assert_non_null(reason);
    assert_int_equal(strncmp(reason, "timeout:", 8), 0);
    assert_int_equal(f->changed.len, 2);
    assert_true(s_has_source(&f->changed, "good", NULL));
    assert_true(s_has_source(&f->changed, "also_good", NULL));
    assert_int_equal(bk_registry_function_count(f->r), 2);
    assert_null(bk_registry_lookup(f->r, "user_service", "slow", NULL));
    assert_int_equal(bk_registry_failed_count(f->r), 1);
}

static void
test_registry_register_names_an_unknown_field_in_the_reason(void **state)
{
    fixture_t *f = *state;
    const char *body = s_body(f, "n1", "user_service",
                              "{\"service\":\"user_service\",\"request_type\":\"f\","
                              "\"colour\":\"blue\"}");
    assert_int_equal(s_register(f, 1, body, 1000), GA_OK);
    assert_int_equal(f->failed.len, 1);
    const char *reason = ga_map_get_str(&f->failed.u.items[0], "reason");
    assert_int_equal(strncmp(reason, "colour:", 7), 0);
    assert_int_equal(f->changed.len, 0);
}

static void
test_registry_register_refuses_a_function_of_another_service(void **state)
{
    fixture_t *f = *state;
    const char *body = s_body(f, "n1", "user_service",
                              "{\"service\":\"admin_service\",\"request_type\":\"delete_user\"},"
                              "{\"service\":\"user_service\",\"request_type\":\"get_user\"}");
    assert_int_equal(s_register(f, 1, body, 1000), GA_OK);
    assert_int_equal(f->failed.len, 1);
    assert_string_equal(ga_map_get_str(&f->failed.u.items[0], "function"), "delete_user");
    const char *reason = ga_map_get_str(&f->failed.u.items[0], "reason");
    assert_int_equal(strncmp(reason, "service:", 8), 0);
    assert_non_null(strstr(reason, "admin_service"));
    assert_null(bk_registry_lookup(f->r, "admin_service", "delete_user", NULL));
    assert_non_null(bk_registry_lookup(f->r, "user_service", "get_user", NULL));
    assert_int_equal(f->changed.len, 1);
}

static void
test_registry_register_reports_a_config_without_request_type_as_unnamed(void **state)
{
    fixture_t *f = *state;
    const char *body = s_body(f, "n1", "user_service", "{\"service\":\"user_service\"}");
    assert_int_equal(s_register(f, 1, body, 1000), GA_OK);
    assert_int_equal(f->failed.len, 1);
    assert_string_equal(ga_map_get_str(&f->failed.u.items[0], "function"), "(unnamed)");
    assert_int_equal(strncmp(ga_map_get_str(&f->failed.u.items[0], "reason"), "request_type:", 13),
                     0);
}

static void
test_registry_register_refuses_a_body_without_node(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1,
                                "{\"service\":\"user_service\",\"config_version\":\"1\","
                                "\"functions\":[]}",
                                1000),
                     GA_ECONFIG);
    assert_true(strlen(f->err) > 0);
    assert_null(f->w);
    assert_int_equal(bk_registry_worker_count(f->r), 0);
}

static void
test_registry_register_refuses_a_body_without_service_or_with_empty_node(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, "{\"node\":\"n1\",\"functions\":[]}", 1000), GA_ECONFIG);
    assert_int_equal(s_register(f, 1, "{\"node\":\"\",\"service\":\"s\",\"functions\":[]}", 1000),
                     GA_ECONFIG);
    assert_int_equal(s_register(f, 1, "{\"node\":5,\"service\":\"s\",\"functions\":[]}", 1000),
                     GA_ECONFIG);
    assert_int_equal(bk_registry_worker_count(f->r), 0);
}

static void
test_registry_register_refuses_functions_that_are_not_a_list(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, "{\"node\":\"n1\",\"service\":\"s\",\"functions\":{}}", 1000),
                     GA_ECONFIG);
    assert_int_equal(s_register(f, 1, "{\"node\":\"n1\",\"service\":\"s\"}", 1000), GA_ECONFIG);
    assert_true(strlen(f->err) > 0);
    assert_int_equal(bk_registry_worker_count(f->r), 0);
    assert_int_equal(bk_registry_function_count(f->r), 0);
}

static void
test_registry_registering_the_same_table_again_changes_nothing(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    bk_worker_t *first = f->w;
    assert_int_equal(s_register(f, 1, s_user_service, 2000), GA_OK);
    assert_int_equal(f->changed.len, 0);
    assert_int_equal(f->failed.len, 0);
    assert_ptr_equal(f->w, first); // the same worker, re-registered
    assert_int_equal(f->w->expiry, 2000);
    assert_int_equal(bk_registry_worker_count(f->r), 1);
    assert_int_equal(bk_registry_function_count(f->r), 2);
}

static void
test_registry_second_worker_with_the_same_table_changes_nothing(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    assert_int_equal(s_register(f, 2, s_user_service, 1000), GA_OK);
    assert_int_equal(f->changed.len, 0);
    assert_int_equal(bk_registry_worker_count(f->r), 2);
    assert_int_equal(bk_registry_function_count(f->r), 2);
}

static void
test_registry_changed_lists_only_the_config_that_changed(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    const char *body = s_body(f, "user_service@host-1", "user_service",
                              "{\"service\":\"user_service\",\"request_type\":\"list_users\","
                              "\"version\":\"1.0.0\"},"
                              "{\"service\":\"user_service\",\"request_type\":\"get_user\","
                              "\"version\":\"1.0.0\",\"arg_types\":{\"user_id\":\"string\"},"
                              "\"timeout\":9000}");
    assert_int_equal(s_register(f, 1, body, 1000), GA_OK);
    assert_int_equal(f->changed.len, 1);
    assert_true(s_has_source(&f->changed, "get_user", "1.0.0"));
    assert_int_equal(bk_registry_lookup(f->r, "user_service", "get_user", "1.0.0")->timeout_ms,
                     9000);
}

static void
test_registry_failed_list_is_bounded(void **state)
{
    fixture_t *f = *state;
    const char *bad = "{\"service\":\"s\",\"request_type\":\"f\",\"timeout\":1}";
    for (int round = 0; round < 3; round++) {
        size_t n = 100 * (strlen(bad) + 1) + 1;
        char *configs = ga_arena_alloc(f->a, n);
        configs[0] = '\0';
        for (int i = 0; i < 100; i++) {
            strcat(configs, i ? "," : "");
            strcat(configs, bad);
        }
        assert_int_equal(s_register(f, 1, s_body(f, "n1", "s", configs), 1000), GA_OK);
        assert_int_equal(f->failed.len, 100); // the reply still names every refusal
    }
    assert_int_equal(bk_registry_failed_count(f->r), BK_FAILED_MAX);
}

// --- lookup ---

static void
test_registry_lookup_without_version_resolves_the_highest(void **state)
{
    fixture_t *f = *state;
    const char *body = s_body(f, "n1", "s",
                              "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.9.0\"},"
                              "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.10.0\"},"
                              "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.2.0\"}");
    assert_int_equal(s_register(f, 1, body, 1000), GA_OK);
    const ga_funcfg_t *c = bk_registry_lookup(f->r, "s", "f", NULL);
    assert_non_null(c);
    assert_string_equal(c->version, "1.10.0");
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", "1.9.0")->version, "1.9.0");
    assert_null(bk_registry_lookup(f->r, "s", "f", "3.0.0"));
    assert_null(bk_registry_lookup(f->r, "s", "g", NULL));
    assert_null(bk_registry_lookup(f->r, "t", "f", NULL));
}

// The same lookup asked again after each kind of change gets the new answer (lookups are kept
// between changes): a higher version registered, a version disabled, enabled, deleted.
static void
test_registry_lookup_again_after_each_change(void **state)
{
    fixture_t *f = *state;
    char err[200];
    ga_value_t out;
    assert_int_equal(
        s_register(f, 1,
                   s_body(f, "n1", "s",
                          "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.0.0\"}"),
                   1000),
        GA_OK);
    assert_null(bk_registry_lookup(f->r, "s", "g", NULL));
    assert_null(bk_registry_lookup(f->r, "s", "g", NULL));
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", NULL)->version, "1.0.0");
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", NULL)->version, "1.0.0");
    assert_null(bk_registry_lookup(f->r, "s", "f", "2.0.0"));
    assert_int_equal(
        s_register(f, 2,
                   s_body(f, "n2", "s",
                          "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"1.0.0\"},"
                          "{\"service\":\"s\",\"request_type\":\"f\",\"version\":\"2.0.0\"},"
                          "{\"service\":\"s\",\"request_type\":\"g\"}"),
                   1000),
        GA_OK);
    assert_non_null(bk_registry_lookup(f->r, "s", "g", NULL));
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", "2.0.0")->version, "2.0.0");
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", NULL)->version, "2.0.0");
    assert_int_equal(bk_registry_disable(f->r, "s", "f", "2.0.0", f->a, &out, err, sizeof err),
                     GA_OK);
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", NULL)->version, "1.0.0");
    assert_true(bk_registry_lookup(f->r, "s", "f", "2.0.0")->disabled);
    assert_int_equal(bk_registry_enable(f->r, "s", "f", "2.0.0", f->a, &out, err, sizeof err),
                     GA_OK);
    assert_false(bk_registry_lookup(f->r, "s", "f", "2.0.0")->disabled);
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", NULL)->version, "2.0.0");
    assert_int_equal(bk_registry_delete(f->r, "s", "f", "2.0.0", f->a, &out, err, sizeof err),
                     GA_OK);
    assert_null(bk_registry_lookup(f->r, "s", "f", "2.0.0"));
    assert_string_equal(bk_registry_lookup(f->r, "s", "f", NULL)->version, "1.0.0");
}

// --- pick ---

static void
test_registry_pick_returns_the_worker_offering_the_function(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1,
                                s_body(f, "a@h", "s",
                                       "{\"service\":\"s\","
                                       "\"request_type\":\"f1\"}"),
                                1000),
                     GA_OK);
    bk_worker_t *a = f->w;
    assert_int_equal(s_register(f, 2,
                                s_body(f, "b@h", "s",
                                       "{\"service\":\"s\","
                                       "\"request_type\":\"f2\"}"),
                                1000),
                     GA_OK);
    bk_worker_t *b = f->w;
    const ga_funcfg_t *f1 = bk_registry_lookup(f->r, "s", "f1", NULL);
    const ga_funcfg_t *f2 = bk_registry_lookup(f->r, "s", "f2", NULL);
    assert_non_null(f1);
    assert_non_null(f2);
    for (int i = 0; i < PICKS; i++) {
        assert_ptr_equal(bk_registry_pick(f->r, f1), a);
        assert_ptr_equal(bk_registry_pick(f->r, f2), b);
    }
}

static void
test_registry_pick_chooses_among_every_worker_offering_it(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    bk_worker_t *a = f->w;
    assert_int_equal(s_register(f, 2, s_user_service, 1000), GA_OK);
    bk_worker_t *b = f->w;
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "user_service", "get_user", NULL);
    srand(1);
    int seen_a = 0;
    int seen_b = 0;
    for (int i = 0; i < PICKS; i++) {
        bk_worker_t *w = bk_registry_pick(f->r, cfg);
        assert_true(w == a || w == b);
        seen_a += w == a;
        seen_b += w == b;
    }
    assert_true(seen_a > 0);
    assert_true(seen_b > 0);
}

static void
test_registry_pick_respects_the_nodes_list(void **state)
{
    fixture_t *f = *state;
    const char *cfg_json = "{\"service\":\"s\",\"request_type\":\"f\","
                           "\"nodes\":[\"s@host-2\",\"s@host-3\"]}";
    assert_int_equal(s_register(f, 1, s_body(f, "s@host-1", "s", cfg_json), 1000), GA_OK);
    assert_int_equal(s_register(f, 2, s_body(f, "s@host-2", "s", cfg_json), 1000), GA_OK);
    bk_worker_t *allowed = f->w;
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "s", "f", NULL);
    assert_int_equal(cfg->n_nodes, 2);
    for (int i = 0; i < PICKS; i++) {
        assert_ptr_equal(bk_registry_pick(f->r, cfg), allowed);
    }
}

static void
test_registry_pick_is_null_when_no_listed_node_is_live(void **state)
{
    fixture_t *f = *state;
    const char *cfg_json = "{\"service\":\"s\",\"request_type\":\"f\",\"nodes\":[\"s@elsewhere\"]}";
    assert_int_equal(s_register(f, 1, s_body(f, "s@host-1", "s", cfg_json), 1000), GA_OK);
    assert_null(bk_registry_pick(f->r, bk_registry_lookup(f->r, "s", "f", NULL)));
}

static void
test_registry_pick_ignores_a_worker_that_stopped_offering_it(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    const char *only_list = s_body(f, "user_service@host-1", "user_service",
                                   "{\"service\":\"user_service\",\"request_type\":"
                                   "\"list_users\",\"version\":\"1.0.0\"}");
    assert_int_equal(s_register(f, 1, only_list, 1000), GA_OK);
    const ga_funcfg_t *get_user = bk_registry_lookup(f->r, "user_service", "get_user", NULL);
    assert_non_null(get_user); // the config stays known
    assert_null(bk_registry_pick(f->r, get_user));
    const ga_funcfg_t *list = bk_registry_lookup(f->r, "user_service", "list_users", NULL);
    assert_ptr_equal(bk_registry_pick(f->r, list), f->w);
}

static void
test_registry_pick_offers_by_exact_version(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1,
                                s_body(f, "old@h", "s",
                                       "{\"service\":\"s\","
                                       "\"request_type\":\"f\",\"version\":\"1.0.0\"}"),
                                1000),
                     GA_OK);
    bk_worker_t *older = f->w;
    assert_int_equal(s_register(f, 2,
                                s_body(f, "new@h", "s",
                                       "{\"service\":\"s\","
                                       "\"request_type\":\"f\",\"version\":\"2.0.0\"}"),
                                1000),
                     GA_OK);
    bk_worker_t *newer = f->w;
    for (int i = 0; i < PICKS; i++) {
        assert_ptr_equal(bk_registry_pick(f->r, bk_registry_lookup(f->r, "s", "f", "1.0.0")),
                         older);
        assert_ptr_equal(bk_registry_pick(f->r, bk_registry_lookup(f->r, "s", "f", NULL)), newer);
    }
}

static void
test_registry_pick_at_skips_workers_with_an_open_breaker(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    bk_worker_t *w = f->w;
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "user_service", "list_users", NULL);
    assert_ptr_equal(bk_registry_pick_at(f->r, cfg, 50), w);
    w->breaker_until = 100;
    assert_null(bk_registry_pick_at(f->r, cfg, 50));
    assert_null(bk_registry_pick_at(f->r, cfg, 99));
    assert_ptr_equal(bk_registry_pick_at(f->r, cfg, 100), w); // closed again at its end
    assert_ptr_equal(bk_registry_pick(f->r, cfg), w);         // pick ignores the breaker
}

static void
test_registry_remove_makes_pick_return_null(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "user_service", "get_user", NULL);
    assert_non_null(bk_registry_pick(f->r, cfg));
    bk_registry_remove(f->r, f->w);
    assert_null(bk_registry_pick(f->r, cfg));
    assert_int_equal(bk_registry_worker_count(f->r), 0);
    uint8_t rid[3] = {0x00, 0x01, 0xff};
    assert_null(bk_registry_worker(f->r, rid, 3));
}

static void
test_registry_remove_leaves_other_workers_pickable(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    bk_worker_t *a = f->w;
    assert_int_equal(s_register(f, 2, s_user_service, 1000), GA_OK);
    bk_worker_t *b = f->w;
    bk_registry_remove(f->r, a);
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "user_service", "get_user", NULL);
    for (int i = 0; i < PICKS; i++) {
        assert_ptr_equal(bk_registry_pick(f->r, cfg), b);
    }
}

// --- liveness ---

static void
test_registry_expired_returns_workers_whose_expiry_is_past(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 100), GA_OK);
    bk_worker_t *w100 = f->w;
    assert_int_equal(s_register(f, 2, s_user_service, 200), GA_OK);
    bk_worker_t *w200 = f->w;
    assert_int_equal(s_register(f, 3, s_user_service, 300), GA_OK);
    bk_worker_t *out[8];
    assert_int_equal(bk_registry_expired(f->r, 100, out, 8), 0); // not before its expiry
    assert_int_equal(bk_registry_expired(f->r, 101, out, 8), 1);
    assert_ptr_equal(out[0], w100);
    size_t n = bk_registry_expired(f->r, 250, out, 8);
    assert_int_equal(n, 2);
    assert_true((out[0] == w100 && out[1] == w200) || (out[0] == w200 && out[1] == w100));
    assert_int_equal(bk_registry_expired(f->r, 1000, out, 8), 3);
    assert_int_equal(bk_registry_expired(f->r, 1000, out, 2), 2); // at most max
}

static void
test_registry_reregistering_extends_the_expiry(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 100), GA_OK);
    assert_int_equal(s_register(f, 1, s_user_service, 500), GA_OK);
    bk_worker_t *out[2];
    assert_int_equal(bk_registry_expired(f->r, 200, out, 2), 0);
}

static void
s_count_worker(bk_worker_t *w, void *arg)
{
    assert_true(w->registered);
    (*(int *) arg)++;
}

static void
test_registry_each_worker_visits_every_worker(void **state)
{
    fixture_t *f = *state;
    for (uint8_t id = 1; id <= 5; id++) {
        assert_int_equal(s_register(f, id, s_user_service, 1000), GA_OK);
    }
    int n = 0;
    bk_registry_each_worker(f->r, s_count_worker, &n);
    assert_int_equal(n, 5);
}

typedef struct {
    bk_worker_t *seen[8];
    int n;
} seen_t;

static void
s_collect_worker(bk_worker_t *w, void *arg)
{
    seen_t *s = arg;
    assert_true(s->n < 8);
    s->seen[s->n++] = w;
}

// Removing workers in any order (first, middle, last, the only one left) leaves exactly the
// others to walk, pick and expire, and a worker registered afterwards joins them.
static void
test_registry_remove_in_any_order_keeps_the_others(void **state)
{
    fixture_t *f = *state;
    bk_worker_t *w[5];
    for (uint8_t id = 1; id <= 5; id++) {
        assert_int_equal(s_register(f, id, s_user_service, 100 * id), GA_OK);
        w[id - 1] = f->w;
    }
    bk_registry_remove(f->r, w[2]); // middle
    bk_registry_remove(f->r, w[0]); // first
    bk_registry_remove(f->r, w[4]); // last
    seen_t s = {0};
    bk_registry_each_worker(f->r, s_collect_worker, &s);
    assert_int_equal(s.n, 2);
    assert_true((s.seen[0] == w[1] && s.seen[1] == w[3]) ||
                (s.seen[0] == w[3] && s.seen[1] == w[1]));
    bk_worker_t *out[8];
    assert_int_equal(bk_registry_expired(f->r, 1000, out, 8), 2);
    assert_int_equal(bk_registry_worker_count(f->r), 2);
    bk_registry_remove(f->r, w[3]);
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "user_service", "get_user", NULL);
    for (int i = 0; i < PICKS; i++) {
        assert_ptr_equal(bk_registry_pick(f->r, cfg), w[1]);
    }
    bk_registry_remove(f->r, w[1]);
    assert_null(bk_registry_pick(f->r, cfg));
    s.n = 0;
    bk_registry_each_worker(f->r, s_collect_worker, &s);
    assert_int_equal(s.n, 0);
    assert_int_equal(s_register(f, 9, s_user_service, 1000), GA_OK);
    assert_ptr_equal(bk_registry_pick(f->r, cfg), f->w);
}

// --- sweep: functions no worker offers any more ---

#define GRACE 600 // ms: the sweep's grace period in these tests

static const char *s_only_list_users =
    "{\"service\":\"user_service\",\"request_type\":\"list_users\",\"version\":\"1.0.0\"}";

static size_t
s_sweep(fixture_t *f, int64_t now)
{
    return bk_registry_sweep(f->r, now, GRACE, f->a, &f->removed);
}

static void
s_assert_removed_get_user(fixture_t *f)
{
    assert_int_equal(f->removed.type, GA_ARRAY);
    assert_int_equal(f->removed.len, 1);
    const ga_value_t *key = &f->removed.u.items[0];
    assert_string_equal(ga_map_get_str(key, "service"), "user_service");
    assert_string_equal(ga_map_get_str(key, "request_type"), "get_user");
    assert_string_equal(ga_map_get_str(key, "version"), "1.0.0");
    assert_null(bk_registry_lookup(f->r, "user_service", "get_user", NULL));
    assert_null(bk_registry_lookup(f->r, "user_service", "get_user", "1.0.0"));
    assert_non_null(bk_registry_lookup(f->r, "user_service", "list_users", NULL));
    assert_int_equal(bk_registry_function_count(f->r), 1);
}

static void
test_registry_sweep_removes_what_a_reregistered_worker_dropped_after_the_grace(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 10000), GA_OK);
    assert_int_equal(s_sweep(f, 1000), 0);
    assert_int_equal(
        s_register(f, 1, s_body(f, "user_service@host-1", "user_service", s_only_list_users),
                   10000),
        GA_OK);
    assert_int_equal(s_sweep(f, 2000), 0); // the clock starts
    assert_non_null(bk_registry_lookup(f->r, "user_service", "get_user", NULL));
    assert_int_equal(s_sweep(f, 2000 + GRACE - 1), 0);
    assert_int_equal(s_sweep(f, 2000 + GRACE), 1);
    s_assert_removed_get_user(f);
    assert_int_equal(s_sweep(f, 9000), 0); // once
}

static void
test_registry_sweep_keeps_a_function_offered_again_within_the_grace(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 10000), GA_OK);
    assert_int_equal(
        s_register(f, 1, s_body(f, "user_service@host-1", "user_service", s_only_list_users),
                   10000),
        GA_OK);
    assert_int_equal(s_sweep(f, 1000), 0);
    assert_int_equal(s_register(f, 2, s_user_service, 10000), GA_OK); // offered again
    assert_int_equal(s_sweep(f, 1000 + GRACE), 0);
    // Its clock restarts from zero the next time.
    bk_registry_remove(f->r, f->w);
    assert_int_equal(s_sweep(f, 1000 + 2 * GRACE), 0);
    assert_int_equal(s_sweep(f, 1000 + 3 * GRACE - 1), 0);
    assert_int_equal(s_sweep(f, 1000 + 3 * GRACE), 1);
    s_assert_removed_get_user(f);
}

// A worker dying is not a withdrawal: with its service down, everything stays known.
static void
test_registry_sweep_keeps_the_functions_of_a_service_with_no_worker(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 10000), GA_OK);
    bk_registry_remove(f->r, f->w);
    assert_int_equal(s_sweep(f, 1000), 0);
    assert_int_equal(s_sweep(f, 1000 + 100 * GRACE), 0);
    assert_int_equal(bk_registry_function_count(f->r), 2);
    // Another service's workers do not count.
    assert_int_equal(s_register(f, 2,
                                s_body(f, "a@h", "admin_service",
                                       "{\"service\":\"admin_service\",\"request_type\":\"x\"}"),
                                10000),
                     GA_OK);
    assert_int_equal(s_sweep(f, 2000 + 100 * GRACE), 0);
    assert_int_equal(s_sweep(f, 3000 + 100 * GRACE), 0);
    assert_int_equal(bk_registry_function_count(f->r), 3);
}

// The usual restart: the old process (dead, not yet found silent) still offers the function
// when the new one registers without it; the clock starts when the old one is removed.
static void
test_registry_sweep_removes_a_function_a_restarted_worker_dropped(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 10000), GA_OK);
    bk_worker_t *old = f->w;
    assert_int_equal(
        s_register(f, 2, s_body(f, "user_service@host-1", "user_service", s_only_list_users),
                   10000),
        GA_OK);
    assert_int_equal(s_sweep(f, 1000), 0);
    assert_int_equal(s_sweep(f, 1000 + 10 * GRACE), 0); // still offered by the old one
    bk_registry_remove(f->r, old);
    assert_int_equal(s_sweep(f, 2000 + 10 * GRACE), 0);
    assert_int_equal(s_sweep(f, 2000 + 11 * GRACE), 1);
    s_assert_removed_get_user(f);
}

// --- snapshot ---

static void
test_registry_snapshot_lists_every_config(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_user_service, 1000), GA_OK);
    assert_int_equal(s_register(f, 2,
                                s_body(f, "a@h", "admin_service",
                                       "{\"service\":\"admin_service\",\"request_type\":"
                                       "\"delete_user\",\"check_permission\":"
                                       "\"role:[admin]\"}"),
                                1000),
                     GA_OK);
    ga_value_t snap = bk_registry_snapshot(f->r, f->a);
    assert_int_equal(snap.type, GA_ARRAY);
    assert_int_equal(snap.len, 3);
    assert_true(s_has_source(&snap, "list_users", "1.0.0"));
    assert_true(s_has_source(&snap, "get_user", "1.0.0"));
    assert_true(s_has_source(&snap, "delete_user", NULL));
    // Sources are complete configs: they parse back to the same function.
    for (uint32_t i = 0; i < snap.len; i++) {
        ga_funcfg_t *cfg = NULL;
        char why[200];
        assert_int_equal(ga_funcfg_parse(&snap.u.items[i], &cfg, why, sizeof why), GA_OK);
        assert_non_null(bk_registry_lookup(f->r, cfg->service, cfg->request_type, cfg->version));
        ga_funcfg_destroy(&cfg);
    }
}

static void
test_registry_snapshot_of_empty_registry_is_an_empty_list(void **state)
{
    fixture_t *f = *state;
    ga_value_t snap = bk_registry_snapshot(f->r, f->a);
    assert_int_equal(snap.type, GA_ARRAY);
    assert_int_equal(snap.len, 0);
}

// --- references to public functions (docs/security.md, "Internal functions") ---

// Collects "from field to" per reference given.
static void
s_collect_ref(const ga_funcfg_t *from, const char *field, const ga_funcfg_t *to, void *arg)
{
    char *out = arg;
    size_t used = strlen(out);
    snprintf(out + used, 1024 - used, "%s.%s %s %s.%s;", from->service, from->request_type, field,
             to->service, to->request_type);
}

// Hooks, permission callbacks and resolvers naming a public function are reported (whichever
// side registered last); internal targets, in-process names and absent functions are not.
static void
test_registry_reports_references_to_public_functions(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        s_register(f, 1,
                   s_body(f, "data@h", "data",
                          "{\"service\":\"data\",\"request_type\":\"op\","
                          "\"before_execute\":\"hooks.quota\",\"after_execute\":\"hooks.log\","
                          "\"permission_callback\":\"hooks.allow\",\"nodes\":\"hooks.where\"},"
                          "{\"service\":\"data\",\"request_type\":\"local\","
                          "\"before_execute\":\"in_process\",\"permission_callback\":\"nope.x\"}"),
                   1000),
        GA_OK);
    char refs[1024] = "";
    bk_registry_each_public_ref(f->r, "data", s_collect_ref, refs);
    assert_string_equal(refs, ""); // hooks has not registered yet
    assert_int_equal(
        s_register(f, 2,
                   s_body(f, "hooks@h", "hooks",
                          "{\"service\":\"hooks\",\"request_type\":\"quota\","
                          "\"visibility\":\"internal\"},"
                          "{\"service\":\"hooks\",\"request_type\":\"log\","
                          "\"visibility\":\"internal\"},"
                          "{\"service\":\"hooks\",\"request_type\":\"allow\"},"
                          "{\"service\":\"hooks\",\"request_type\":\"where\","
                          "\"visibility\":\"public\"}"),
                   1000),
        GA_OK);
    // From hooks' side: the two public targets, in the order the fields are checked.
    bk_registry_each_public_ref(f->r, "hooks", s_collect_ref, refs);
    assert_string_equal(refs, "data.op permission_callback hooks.allow;data.op nodes hooks.where;");
    // From data's side: the same; an unrelated service: none.
    refs[0] = '\0';
    bk_registry_each_public_ref(f->r, "data", s_collect_ref, refs);
    assert_string_equal(refs, "data.op permission_callback hooks.allow;data.op nodes hooks.where;");
    refs[0] = '\0';
    bk_registry_each_public_ref(f->r, "user_service", s_collect_ref, refs);
    assert_string_equal(refs, "");
}

// --- the snapshot's size bound (docs/protocol.md, "Registration") ---

// `n` configs of `service`, named f0..f{n-1}, each carrying a string default of `bytes` bytes
// (a function config may be that large: max_bytes lifts the string cap). In the fixture's arena.
static const char *
s_big_configs(fixture_t *f, const char *service, int n, size_t bytes)
{
    size_t cap = (size_t) n * (bytes + 256) + 1;
    char *out = ga_arena_alloc(f->a, cap);
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        used += (size_t) snprintf(out + used, cap - used,
                                  "%s{\"service\":\"%s\",\"request_type\":\"f%d\",\"arg_types\":"
                                  "{\"s\":{\"type\":\"string\",\"max_bytes\":%zu,"
                                  "\"default_value\":\"",
                                  i ? "," : "", service, i, bytes);
        memset(out + used, 'x', bytes);
        used += bytes;
        used += (size_t) snprintf(out + used, cap - used, "\"}}}");
    }
    return out;
}

// The registry's count of snapshot bytes against an encoding of the snapshot itself.
static void
s_assert_snapshot_bytes(fixture_t *f)
{
    ga_value_t snap = bk_registry_snapshot(f->r, f->a);
    size_t sum = 0;
    ga_buf_t b;
    ga_buf_init(&b);
    for (uint32_t i = 0; i < snap.len; i++) {
        ga_buf_reset(&b);
        ga_wire_encode(&b, &snap.u.items[i]);
        sum += b.len;
    }
    ga_buf_fini(&b);
    assert_int_equal(bk_registry_snapshot_bytes(f->r), sum);
    assert_true(sum <= BK_SNAPSHOT_MAX);
}

// A table that would make the snapshot larger than a message may carry is refused whole with
// "registry full: ...", before anything changes; smaller ones, and the same table again, pass.
static void
test_registry_refuses_a_table_that_would_overflow_the_snapshot(void **state)
{
    fixture_t *f = *state;
    s_assert_snapshot_bytes(f);
    // 3 MB from one service.
    assert_int_equal(s_register(f, 1, s_body(f, "big@h", "big", s_big_configs(f, "big", 3, 1000000)),
                                1000),
                     GA_OK);
    assert_int_equal(f->changed.len, 3);
    s_assert_snapshot_bytes(f);
    size_t before = bk_registry_snapshot_bytes(f->r);
    assert_true(before > 3000000);
    // 1.2 MB more from another: refused whole, the worker not registered, nothing changed.
    assert_int_equal(s_register(f, 2, s_body(f, "more@h", "more", s_big_configs(f, "more", 2, 600000)),
                                1000),
                     GA_ETOOBIG);
    if (strncmp(f->err, "registry full: the 2 function(s) of more would make the registry snapshot ",
                strlen("registry full: the 2 function(s) of more would make the registry snapshot ")) !=
        0) {
        fail_msg("err: %s", f->err);
    }
    assert_non_null(strstr(f->err, "over the 4190208 bytes a message may carry"));
    assert_null(f->w);
    uint8_t rid[3] = {0x00, 2, 0xff};
    assert_null(bk_registry_worker(f->r, rid, sizeof rid));
    assert_null(bk_registry_lookup(f->r, "more", "f0", NULL));
    assert_int_equal(bk_registry_function_count(f->r), 3);
    assert_int_equal(bk_registry_snapshot_bytes(f->r), before);
    assert_int_equal(bk_registry_failed_count(f->r), 0);
    // A smaller table fits.
    assert_int_equal(s_register(f, 2, s_body(f, "more@h", "more", s_big_configs(f, "more", 1, 600000)),
                                1000),
                     GA_OK);
    s_assert_snapshot_bytes(f);
    // The same big table again (a new config_version) replaces itself: no growth, accepted.
    assert_int_equal(s_register(f, 1, s_body(f, "big@h", "big", s_big_configs(f, "big", 3, 1000000)),
                                1000),
                     GA_OK);
    assert_int_equal(f->changed.len, 0);
    s_assert_snapshot_bytes(f);
    // An operator's add of a config that does not fit is refused too.
    ga_value_t src;
    const char *big_one = s_big_configs(f, "more", 1, 1200000);
    assert_int_equal(ga_json_decode(big_one, strlen(big_one), f->a, &src, NULL, 0), GA_OK);
    ga_map_put(&src, f->a, "request_type", ga_str("f0"));
    ga_value_t changed;
    assert_int_equal(bk_registry_add(f->r, &src, f->a, &changed, f->err, sizeof f->err), GA_ETOOBIG);
    assert_non_null(strstr(f->err, "registry full: this config would make"));
    // Deleting and disabling keep the count exact.
    assert_int_equal(bk_registry_disable(f->r, "big", "f1", NULL, f->a, &changed, f->err,
                                         sizeof f->err),
                     GA_OK);
    s_assert_snapshot_bytes(f);
    ga_value_t removed;
    assert_int_equal(bk_registry_delete(f->r, "big", "f2", NULL, f->a, &removed, f->err,
                                        sizeof f->err),
                     GA_OK);
    s_assert_snapshot_bytes(f);
    assert_true(bk_registry_snapshot_bytes(f->r) < before);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

// --- operators' overrides (versions) and the config_version skip ---

// A REGISTER body under an explicit config_version (and `force`).
static const char *
s_versioned_body(fixture_t *f, const char *config_version, bool force, const char *configs)
{
    size_t n = strlen(config_version) + strlen(configs) + 160;
    char *s = ga_arena_alloc(f->a, n);
    snprintf(s, n,
             "{\"node\":\"vus@host\",\"service\":\"vus\",\"config_version\":\"%s\"%s,"
             "\"functions\":[%s]}",
             config_version, force ? ",\"force\":true" : "", configs);
    return s;
}

static const char *s_two_versions =
    "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
    "\"arg_types\":{\"id\":\"string\"}},"
    "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"2.0.0\","
    "\"arg_types\":{\"id\":\"string\",\"fields\":{\"type\":\"list_string\",\"max_items\":10}}}";

static void
test_registry_disable_survives_the_worker_registering_again(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", false, s_two_versions), 1000),
                     GA_OK);
    ga_value_t changed;
    assert_int_equal(bk_registry_disable(f->r, "vus", "get_user", "2.0.0", f->a, &changed, f->err,
                                         sizeof f->err),
                     GA_OK);
    assert_int_equal(changed.len, 1); // the disabled source, for the gateways
    assert_true(ga_map_get(&changed.u.items[0], "disabled")->u.b);
    assert_true(bk_registry_get(f->r, "vus", "get_user", "2.0.0")->disabled);
    assert_string_equal(bk_registry_lookup(f->r, "vus", "get_user", NULL)->version, "1.0.0");
    assert_string_equal(bk_registry_override_state(f->r, "vus", "get_user", "2.0.0"), "disabled");
    // A restarted worker pushes it enabled again, under a new version: it stays disabled.
    assert_int_equal(s_register(f, 2, s_versioned_body(f, "v2", false, s_two_versions), 1000),
                     GA_OK);
    assert_int_equal(f->changed.len, 0);
    assert_true(bk_registry_get(f->r, "vus", "get_user", "2.0.0")->disabled);
    // Enabled: back to what the worker pushed, and the latest again.
    assert_int_equal(bk_registry_enable(f->r, "vus", "get_user", "2.0.0", f->a, &changed, f->err,
                                        sizeof f->err),
                     GA_OK);
    assert_int_equal(changed.len, 1);
    assert_null(ga_map_get(&changed.u.items[0], "disabled"));
    assert_false(bk_registry_get(f->r, "vus", "get_user", "2.0.0")->disabled);
    assert_string_equal(bk_registry_lookup(f->r, "vus", "get_user", NULL)->version, "2.0.0");
    assert_null(bk_registry_override_state(f->r, "vus", "get_user", "2.0.0"));
}

static void
test_registry_delete_survives_the_worker_registering_again_until_enabled(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", false, s_two_versions), 1000),
                     GA_OK);
    ga_value_t removed, changed;
    assert_int_equal(bk_registry_delete(f->r, "vus", "get_user", "1.0.0", f->a, &removed, f->err,
                                        sizeof f->err),
                     GA_OK);
    assert_int_equal(removed.len, 1);
    assert_string_equal(ga_map_get_str(&removed.u.items[0], "version"), "1.0.0");
    assert_null(bk_registry_lookup(f->r, "vus", "get_user", "1.0.0"));
    // Deleting it again: not found, saying why.
    assert_int_equal(bk_registry_delete(f->r, "vus", "get_user", "1.0.0", f->a, &removed, f->err,
                                        sizeof f->err),
                     GA_ENOTFOUND);
    assert_non_null(strstr(f->err, "deleted by an operator"));
    // Re-registered, forced even: still gone, but its worker offers it.
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", true, s_two_versions), 1000),
                     GA_OK);
    assert_false(f->skipped);
    assert_null(bk_registry_lookup(f->r, "vus", "get_user", "1.0.0"));
    assert_int_equal(bk_registry_function_count(f->r), 1);
    // Enabled: back, and a worker runs it.
    assert_int_equal(bk_registry_enable(f->r, "vus", "get_user", "1.0.0", f->a, &changed, f->err,
                                        sizeof f->err),
                     GA_OK);
    assert_int_equal(changed.len, 1);
    const ga_funcfg_t *v1 = bk_registry_lookup(f->r, "vus", "get_user", "1.0.0");
    assert_non_null(v1);
    assert_ptr_equal(bk_registry_pick(f->r, v1), f->w);
}

static void
test_registry_overrides_refuse_unknown_configs(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", false, s_two_versions), 1000),
                     GA_OK);
    ga_value_t out;
    assert_int_equal(bk_registry_disable(f->r, "vus", "get_user", "3.0.0", f->a, &out, f->err,
                                         sizeof f->err),
                     GA_ENOTFOUND);
    assert_non_null(strstr(f->err, "get_user 3.0.0"));
    assert_int_equal(bk_registry_enable(f->r, "vus", "nope", "1.0.0", f->a, &out, f->err,
                                        sizeof f->err),
                     GA_ENOTFOUND);
    assert_int_equal(bk_registry_delete(f->r, "vus", "get_user", "0.0.0", f->a, &out, f->err,
                                        sizeof f->err),
                     GA_ENOTFOUND); // "0.0.0": the unversioned one, which this service lacks
    assert_non_null(strstr(f->err, "(unversioned)"));
    // Enabling what nobody overrode changes nothing.
    assert_int_equal(bk_registry_enable(f->r, "vus", "get_user", "1.0.0", f->a, &out, f->err,
                                        sizeof f->err),
                     GA_OK);
    assert_int_equal(out.len, 0);
    assert_int_equal(bk_registry_function_count(f->r), 2);
}

static ga_value_t
s_json(fixture_t *f, const char *json)
{
    ga_value_t v;
    assert_int_equal(ga_json_decode(json, strlen(json), f->a, &v, NULL, 0), GA_OK);
    return v;
}

static void
test_registry_add_replaces_an_offered_config_and_survives_registration(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", false, s_two_versions), 1000),
                     GA_OK);
    ga_value_t changed;
    ga_value_t cfg = s_json(f, "{\"service\":\"vus\",\"request_type\":\"get_user\","
                               "\"version\":\"1.0.0\",\"arg_types\":{\"id\":\"string\"},"
                               "\"timeout\":7000}");
    assert_int_equal(bk_registry_add(f->r, &cfg, f->a, &changed, f->err, sizeof f->err), GA_OK);
    assert_int_equal(changed.len, 1);
    assert_int_equal(bk_registry_get(f->r, "vus", "get_user", "1.0.0")->timeout_ms, 7000);
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v2", false, s_two_versions), 1000),
                     GA_OK);
    assert_int_equal(bk_registry_get(f->r, "vus", "get_user", "1.0.0")->timeout_ms, 7000);
    assert_string_equal(bk_registry_override_state(f->r, "vus", "get_user", "1.0.0"), "added");
    // A version no worker offers, and a config that breaks a rule, are refused with reasons.
    cfg = s_json(f, "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"3.0.0\"}");
    assert_int_equal(bk_registry_add(f->r, &cfg, f->a, &changed, f->err, sizeof f->err),
                     GA_ENOTFOUND);
    assert_non_null(strstr(f->err, "no registered worker of vus offers get_user 3.0.0"));
    cfg = s_json(f, "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
                    "\"timeout\":1}");
    assert_int_equal(bk_registry_add(f->r, &cfg, f->a, &changed, f->err, sizeof f->err),
                     GA_ECONFIG);
    assert_non_null(strstr(f->err, "timeout"));
    assert_int_equal(bk_registry_get(f->r, "vus", "get_user", "1.0.0")->timeout_ms, 7000);
}

static void
test_registry_add_restores_a_deleted_config(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", false, s_two_versions), 1000),
                     GA_OK);
    ga_value_t out;
    assert_int_equal(bk_registry_delete(f->r, "vus", "get_user", "2.0.0", f->a, &out, f->err,
                                        sizeof f->err),
                     GA_OK);
    ga_value_t cfg = s_json(f, "{\"service\":\"vus\",\"request_type\":\"get_user\","
                               "\"version\":\"2.0.0\",\"arg_types\":{\"id\":\"string\"}}");
    assert_int_equal(bk_registry_add(f->r, &cfg, f->a, &out, f->err, sizeof f->err), GA_OK);
    assert_string_equal(bk_registry_lookup(f->r, "vus", "get_user", NULL)->version, "2.0.0");
}

static void
test_registry_versions_lists_every_version_in_order_with_its_state(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "v1", false,
                                                       "{\"service\":\"vus\",\"request_type\":"
                                                       "\"f\",\"version\":\"1.10.0\"},"
                                                       "{\"service\":\"vus\",\"request_type\":"
                                                       "\"f\",\"version\":\"1.9.0\"},"
                                                       "{\"service\":\"vus\",\"request_type\":"
                                                       "\"f\"},"
                                                       "{\"service\":\"vus\",\"request_type\":"
                                                       "\"e\",\"version\":\"2.0.0\"}"),
                                1000),
                     GA_OK);
    assert_int_equal(s_register(f, 2, s_user_service, 1000), GA_OK);
    ga_value_t out;
    assert_int_equal(bk_registry_disable(f->r, "vus", "f", "1.9.0", f->a, &out, f->err,
                                         sizeof f->err),
                     GA_OK);
    assert_int_equal(bk_registry_delete(f->r, "vus", "f", "1.10.0", f->a, &out, f->err,
                                        sizeof f->err),
                     GA_OK);
    ga_value_t v = bk_registry_versions(f->r, "vus", f->a);
    assert_int_equal(v.len, 1); // vus only
    const ga_value_t *svc = ga_map_get(&v, "vus");
    assert_int_equal(svc->len, 2);
    assert_string_equal(svc->u.pairs[0].key, "e");
    const ga_value_t *fv = ga_map_get(svc, "f");
    assert_int_equal(fv->len, 3);
    assert_int_equal(ga_map_get(&fv->u.items[0], "version")->type, GA_NIL); // unversioned first
    assert_true(ga_map_get(&fv->u.items[0], "enabled")->u.b);
    assert_string_equal(ga_map_get_str(&fv->u.items[1], "version"), "1.9.0");
    assert_false(ga_map_get(&fv->u.items[1], "enabled")->u.b);
    assert_string_equal(ga_map_get_str(&fv->u.items[1], "operator"), "disabled");
    assert_string_equal(ga_map_get_str(&fv->u.items[2], "version"), "1.10.0");
    assert_string_equal(ga_map_get_str(&fv->u.items[2], "operator"), "deleted");
    ga_value_t all = bk_registry_versions(f->r, NULL, f->a);
    assert_int_equal(all.len, 2);
    assert_string_equal(all.u.pairs[0].key, "user_service");
}

static void
test_registry_same_config_version_is_skipped_unless_forced(void **state)
{
    fixture_t *f = *state;
    const char *only_v1 = "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
                          "\"arg_types\":{\"id\":\"string\"}}";
    const char *changed_v1 =
        "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
        "\"arg_types\":{\"id\":\"string\"},\"timeout\":9000},"
        "{\"service\":\"vus\",\"request_type\":\"bad\",\"timeout\":1}";
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "7", false, only_v1), 1000), GA_OK);
    assert_false(f->skipped);
    // Another worker, the same version, another table: skipped, yet registered and offering.
    assert_int_equal(s_register(f, 2, s_versioned_body(f, "7", false, changed_v1), 1000), GA_OK);
    assert_true(f->skipped);
    assert_int_equal(f->changed.len, 0);
    assert_int_equal(f->failed.len, 0);
    assert_int_equal(bk_registry_failed_count(f->r), 0);
    assert_true(f->w->registered);
    assert_int_equal(bk_registry_worker_count(f->r), 2);
    const ga_funcfg_t *cfg = bk_registry_lookup(f->r, "vus", "get_user", "1.0.0");
    assert_int_equal(cfg->timeout_ms, GA_FUNCFG_TIMEOUT_DEFAULT);
    bk_worker_t *second = f->w;
    bool picked_second = false;
    for (int i = 0; i < PICKS && !picked_second; i++) {
        picked_second = bk_registry_pick(f->r, cfg) == second;
    }
    assert_true(picked_second);
    // Forced: applied, and the bad config listed.
    assert_int_equal(s_register(f, 2, s_versioned_body(f, "7", true, changed_v1), 1000), GA_OK);
    assert_false(f->skipped);
    assert_int_equal(f->changed.len, 1);
    assert_int_equal(f->failed.len, 1);
    assert_int_equal(bk_registry_lookup(f->r, "vus", "get_user", "1.0.0")->timeout_ms, 9000);
    // The same again, not forced: skipped; the refusal is repeated to the worker, not listed
    // again.
    assert_int_equal(s_register(f, 2, s_versioned_body(f, "7", false, changed_v1), 1000), GA_OK);
    assert_true(f->skipped);
    assert_int_equal(f->failed.len, 1);
    assert_string_equal(ga_map_get_str(&f->failed.u.items[0], "function"), "bad");
    assert_int_equal(bk_registry_failed_count(f->r), 1);
}

static void
test_registry_skip_is_not_taken_when_a_config_of_that_version_is_gone(void **state)
{
    fixture_t *f = *state;
    const char *only_v1 = "{\"service\":\"vus\",\"request_type\":\"get_user\",\"version\":\"1.0.0\"}";
    // Worker 2 runs an older table without get_user; worker 1 pushes version 7 with it.
    assert_int_equal(s_register(f, 2, s_versioned_body(f, "6", false, ""), 100000), GA_OK);
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "7", false, only_v1), 100000), GA_OK);
    // Worker 1 goes; the service is up without get_user, so the sweep deletes it.
    bk_registry_remove(f->r, bk_registry_worker(f->r, (const uint8_t *) "\x00\x01\xff", 3));
    assert_int_equal(s_sweep(f, 1000), 0);
    assert_int_equal(s_sweep(f, 1000 + GRACE), 1);
    // Worker 3 comes with version 7, the last processed: its table is taken again all the same.
    assert_int_equal(s_register(f, 3, s_versioned_body(f, "7", false, only_v1), 100000), GA_OK);
    assert_false(f->skipped);
    assert_non_null(bk_registry_lookup(f->r, "vus", "get_user", "1.0.0"));
}

static void
test_registry_verify_answers_matched_mismatch_or_not_found(void **state)
{
    fixture_t *f = *state;
    const char *stored = "x";
    assert_int_equal(bk_registry_verify(f->r, "vus", "7", &stored), BK_VERIFY_NOT_FOUND);
    assert_null(stored);
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "7", false, s_two_versions), 1000),
                     GA_OK);
    assert_int_equal(bk_registry_verify(f->r, "vus", "7", &stored), BK_VERIFY_MATCHED);
    assert_int_equal(bk_registry_verify(f->r, "vus", "8", &stored), BK_VERIFY_MISMATCH);
    assert_string_equal(stored, "7");
    assert_int_equal(bk_registry_verify(f->r, "other", "7", &stored), BK_VERIFY_NOT_FOUND);
}

static void
test_registry_clear_flushes_one_service_with_its_overrides_and_push_record(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "7", false, s_two_versions), 1000),
                     GA_OK);
    assert_int_equal(s_register(f, 2, s_user_service, 1000), GA_OK);
    ga_value_t changed;
    assert_int_equal(bk_registry_disable(f->r, "vus", "get_user", "2.0.0", f->a, &changed, f->err,
                                         sizeof f->err),
                     GA_OK);
    ga_value_t removed;
    assert_int_equal(bk_registry_clear(f->r, "vus", f->a, &removed), 2);
    assert_int_equal(removed.len, 2);
    assert_string_equal(ga_map_get_str(&removed.u.items[0], "service"), "vus");
    assert_null(bk_registry_get(f->r, "vus", "get_user", "2.0.0"));
    assert_null(bk_registry_override_state(f->r, "vus", "get_user", "2.0.0"));
    const char *stored;
    assert_int_equal(bk_registry_verify(f->r, "vus", "7", &stored), BK_VERIFY_NOT_FOUND);
    // The other service and the workers stay.
    assert_int_equal(bk_registry_function_count(f->r), 2);
    assert_int_equal(bk_registry_worker_count(f->r), 2);
    // The same table under the same config_version is processed again, not skipped, and its
    // version is served enabled again (the disable went with the flush).
    assert_int_equal(s_register(f, 1, s_versioned_body(f, "7", false, s_two_versions), 1000),
                     GA_OK);
    assert_false(f->skipped);
    assert_int_equal(f->changed.len, 2);
    assert_false(bk_registry_get(f->r, "vus", "get_user", "2.0.0")->disabled);
    // Every service.
    assert_int_equal(bk_registry_clear(f->r, NULL, f->a, &removed), 4);
    assert_int_equal(bk_registry_function_count(f->r), 0);
    assert_int_equal(bk_registry_verify(f->r, "user_service", "1", &stored), BK_VERIFY_NOT_FOUND);
    assert_int_equal(bk_registry_clear(f->r, NULL, f->a, &removed), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_registry_reports_references_to_public_functions),
        T(test_registry_refuses_a_table_that_would_overflow_the_snapshot),
        T(test_registry_register_accepts_the_walkthrough_worker),
        T(test_registry_worker_is_found_by_its_routing_id),
        T(test_registry_register_refuses_a_bad_config_and_keeps_the_others),
        T(test_registry_register_names_an_unknown_field_in_the_reason),
        T(test_registry_register_refuses_a_function_of_another_service),
        T(test_registry_register_reports_a_config_without_request_type_as_unnamed),
        T(test_registry_register_refuses_a_body_without_node),
        T(test_registry_register_refuses_a_body_without_service_or_with_empty_node),
        T(test_registry_register_refuses_functions_that_are_not_a_list),
        T(test_registry_registering_the_same_table_again_changes_nothing),
        T(test_registry_second_worker_with_the_same_table_changes_nothing),
        T(test_registry_changed_lists_only_the_config_that_changed),
        T(test_registry_failed_list_is_bounded),
        T(test_registry_lookup_without_version_resolves_the_highest),
        T(test_registry_lookup_again_after_each_change),
        T(test_registry_pick_returns_the_worker_offering_the_function),
        T(test_registry_pick_chooses_among_every_worker_offering_it),
        T(test_registry_pick_respects_the_nodes_list),
        T(test_registry_pick_is_null_when_no_listed_node_is_live),
        T(test_registry_pick_ignores_a_worker_that_stopped_offering_it),
        T(test_registry_pick_offers_by_exact_version),
        T(test_registry_pick_at_skips_workers_with_an_open_breaker),
        T(test_registry_remove_makes_pick_return_null),
        T(test_registry_remove_leaves_other_workers_pickable),
        T(test_registry_expired_returns_workers_whose_expiry_is_past),
        T(test_registry_reregistering_extends_the_expiry),
        T(test_registry_each_worker_visits_every_worker),
        T(test_registry_remove_in_any_order_keeps_the_others),
        T(test_registry_sweep_removes_what_a_reregistered_worker_dropped_after_the_grace),
        T(test_registry_sweep_keeps_a_function_offered_again_within_the_grace),
        T(test_registry_sweep_keeps_the_functions_of_a_service_with_no_worker),
        T(test_registry_sweep_removes_a_function_a_restarted_worker_dropped),
        T(test_registry_snapshot_lists_every_config),
        T(test_registry_snapshot_of_empty_registry_is_an_empty_list),
        T(test_registry_disable_survives_the_worker_registering_again),
        T(test_registry_delete_survives_the_worker_registering_again_until_enabled),
        T(test_registry_overrides_refuse_unknown_configs),
        T(test_registry_add_replaces_an_offered_config_and_survives_registration),
        T(test_registry_add_restores_a_deleted_config),
        T(test_registry_versions_lists_every_version_in_order_with_its_state),
        T(test_registry_same_config_version_is_skipped_unless_forced),
        T(test_registry_skip_is_not_taken_when_a_config_of_that_version_is_gone),
        T(test_registry_verify_answers_matched_mismatch_or_not_found),
        T(test_registry_clear_flushes_one_service_with_its_overrides_and_push_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
