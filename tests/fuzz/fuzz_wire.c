// SPDX-License-Identifier: MIT
// Fuzz target: one MessagePack body from a peer (ga_wire_scan, ga_wire_decode), and what the
// broker and gateway build from bodies: function configs (ga_funcfg_parse; they arrive in
// REGISTER from workers and in SNAPSHOT/UPDATE at the gateway) and argument checks
// (ga_arg_check, on a client's args against a parsed config).
//   * any map is parsed as one function config, and each item of its "functions" list too;
//   * a two-item list [config, args] parses the config and checks args against it.
// Differential checks: scan and decode agree, ga_wire_decode_map (the envelopes' one-pass
// decoder) agrees with ga_wire_decode, and re-encoding is a fixed point
// (encode(decode(encode(decode(x)))) == encode(decode(x)), byte for byte: NaN-safe), and the
// encoding is byte for byte what msgpack-c's packer writes for the same value.
#include "ga_arena.h"
#include "ga_funcfg.h"
#include "ga_mem.h"
#include "ga_value.h"
#include "ga_wire.h"
#include "../support/wire_oracle.h" // the encoder's oracle

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ga_funcfg_t *
s_parse(const ga_value_t *v)
{
    ga_funcfg_t *cfg = NULL;
    char err[256];
    if (ga_funcfg_parse(v, &cfg, err, sizeof err) != GA_OK) {
        if (cfg != NULL || err[0] == '\0') {
            abort(); // a refusal returns nothing and says why
        }
        return NULL;
    }
    return cfg;
}

static void
s_check_args(const ga_funcfg_t *cfg, const ga_value_t *args)
{
    char err[512];
    for (uint32_t i = 0; i < cfg->n_args; i++) {
        const ga_value_t *v = ga_map_get(args, cfg->args[i].name);
        if (v != NULL && ga_arg_check(&cfg->args[i], v, err, sizeof err) != GA_OK &&
            err[0] == '\0') {
            abort(); // a refusal says why
        }
    }
}

// ga_wire_encode's bytes `enc` of `v` are msgpack-c's.
static void
s_same_as_oracle(const ga_value_t *v, const ga_buf_t *enc)
{
    ga_buf_t want;
    ga_buf_init(&want);
    if (!wire_oracle_encode(v, &want) || want.len != enc->len ||
        memcmp(want.data, enc->data, want.len) != 0) {
        abort();
    }
    ga_buf_fini(&want);
}

static void
s_round_trip(const ga_value_t *v, ga_arena_t *arena)
{
    ga_buf_t a, b;
    ga_buf_init(&a);
    ga_buf_init(&b);
    ga_wire_encode(&a, v);
    s_same_as_oracle(v, &a);
    ga_value_t again;
    if (ga_wire_decode(a.data, a.len, arena, &again) != GA_OK) {
        abort(); // our own encoding must decode
    }
    ga_wire_encode(&b, &again);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
        abort();
    }
    ga_buf_fini(&b);
    ga_buf_fini(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ga_arena_t *arena = ga_arena_new(4096);
    ga_value_t v;
    ga_err_t scanned = ga_wire_scan(data, size);
    ga_err_t decoded = ga_wire_decode(data, size, arena, &v);
    if (scanned != decoded) {
        abort();
    }
    ga_value_t flat;
    if (ga_wire_decode_map(data, size, arena, &flat) != decoded) {
        abort();
    }
    if (decoded == GA_OK) {
        ga_buf_t a, b;
        ga_buf_init(&a);
        ga_buf_init(&b);
        ga_wire_encode(&a, &v);
        ga_wire_encode(&b, &flat);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            abort(); // the same value
        }
        ga_buf_fini(&b);
        ga_buf_fini(&a);
    }
    if (decoded == GA_OK) {
        s_round_trip(&v, arena);
        if (v.type == GA_MAP) {
            ga_funcfg_t *cfg = s_parse(&v);
            ga_funcfg_destroy(&cfg);
            const ga_value_t *fns = ga_map_get(&v, "functions");
            for (uint32_t i = 0; fns && fns->type == GA_ARRAY && i < fns->len; i++) {
                cfg = s_parse(&fns->u.items[i]);
                ga_funcfg_destroy(&cfg);
            }
        } else if (v.type == GA_ARRAY && v.len == 2) {
            ga_funcfg_t *cfg = s_parse(&v.u.items[0]);
            if (cfg != NULL && v.u.items[1].type == GA_MAP) {
                s_check_args(cfg, &v.u.items[1]);
            }
            ga_funcfg_destroy(&cfg);
        }
    }
    ga_arena_destroy(&arena);
    return 0;
}
