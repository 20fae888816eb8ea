// SPDX-License-Identifier: MIT
// bench-json-decode: decodes one typical Phoenix frame N times (default 10,000) into an arena
// reset after each decode, as the gateway does per frame. Meant to be run under
// `valgrind --tool=callgrind` (instruction counts are repeatable on a noisy machine, and
// valgrind's heap summary counts the mallocs); also prints wall time per decode.
// Not a test: it is not registered with ctest.
#include "ga_arena.h"
#include "ga_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char s_frame[] =
    "[\"3\",\"7\",\"api:lobby\",\"api\",{\"request_id\":\"r-7\",\"service\":\"user_service\","
    "\"request_type\":\"get_user\",\"args\":{\"user_id\":\"1\"}}]";

int
main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    ga_arena_t *arena = ga_arena_new(16384); // the gateway's per-connection arena size
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long ok = 0;
    for (long i = 0; i < n; i++) {
        ga_value_t v;
        if (ga_json_decode(s_frame, sizeof s_frame - 1, arena, &v, NULL, 0) == GA_OK &&
            v.type == GA_ARRAY && v.len == 5) {
            ok++;
        }
        ga_arena_reset(arena);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec);
    printf("%ld decodes (%ld ok), %.0f ns per decode\n", n, ok, n ? ns / (double) n : 0.0);
    ga_arena_destroy(&arena);
    return ok == n ? 0 : 1;
}
