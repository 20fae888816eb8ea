// SPDX-License-Identifier: MIT
// Fuzz target: the compact argument notation of wk_function_t.args ("name:type(options)",
// wk_argspec_parse), then, as the worker does before it registers, the function config built
// from the result (ga_funcfg_parse), which also checks default values against their specs.
#include "wk_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ga_arena_t *arena = ga_arena_new(4096);
    char *spec = ga_arena_strndup(arena, (const char *) data, size); // the notation is C text
    ga_value_t types, orders;
    char err[256] = "";
    if (wk_argspec_parse(arena, spec, &types, &orders, err, sizeof err) == GA_OK) {
        ga_value_t m = ga_map(arena, 4);
        ga_map_put(&m, arena, "service", ga_str("fuzz"));
        ga_map_put(&m, arena, "request_type", ga_str("f"));
        ga_map_put(&m, arena, "arg_types", types);
        ga_map_put(&m, arena, "arg_orders", orders);
        ga_funcfg_t *cfg = NULL;
        if (ga_funcfg_parse(&m, &cfg, err, sizeof err) == GA_OK) {
            if (cfg->n_args != orders.len) {
                abort(); // every declared argument is kept, in order
            }
        } else if (cfg != NULL || err[0] == '\0') {
            abort();
        }
        ga_funcfg_destroy(&cfg);
    } else if (strncmp(err, "args: ", 6) != 0) {
        abort(); // a refusal names the notation
    }
    ga_arena_destroy(&arena);
    return 0;
}
