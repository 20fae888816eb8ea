// SPDX-License-Identifier: MIT
// bench-ratelimit: the cost of one rate-limit check (ga_ratelimit_check) with the walkthrough's
// limits (1000/min per user and 5000/min per device globally, generate_report 10/min per user),
// for a gateway serving many users: N checks (default 2,000,000, after as many to warm up)
// spread over K users (default 10,000) on K/4 devices, time advancing 1 ms every 100 checks so
// that windows slide and idle ones are swept, as in a steady state. Prints the CPU time per check and the verdicts.
// Not a test: it is not registered with ctest.
#include "ga_arena.h"
#include "ga_json.h"
#include "ga_metrics.h"
#include "ga_ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// max_keys is filled in from the number of users (two windows per user at most, and room).
static const char s_config[] =
    "{\"enabled\":true,\"max_keys\":%ld,\"global_limits\":["
    "{\"key\":\"user_id\",\"max_requests\":1000,\"window_ms\":60000},"
    "{\"key\":\"device_id\",\"max_requests\":5000,\"window_ms\":60000}],"
    "\"api_limits\":[{\"service\":\"report_service\",\"request_type\":\"generate_report\","
    "\"key\":\"user_id\",\"max_requests\":10,\"window_ms\":60000}]}";

// Checks from..to-1: check i is from user (i * 7919) % users (every user in turn, not in order)
// at time i / 100 ms; every 50th is a generate_report. Verdicts counted in verdicts[].
static void
s_checks(ga_ratelimit_t *rl, char (*names)[32], char (*devices)[32], long users, long from,
         long to, long *verdicts)
{
    int64_t retry = 0;
    for (long i = from; i < to; i++) {
        long u = (i * 7919) % users;
        // The next check's ids fetched ahead: in a gateway they are the connection's, at hand
        // when its request is handled; here they are in tables of 32 bytes per user, whose
        // cache misses would be the harness's, not the limiter's.
        long next = ((i + 1) * 7919) % users;
        __builtin_prefetch(names[next]);
        __builtin_prefetch(devices[next]);
        ga_rl_subject_t who = {.user_id = names[u], .device_id = devices[u],
                               .ip_address = "10.1.2.3"};
        bool report = i % 50 == 0;
        ga_rl_verdict_t v = ga_ratelimit_check(rl, report ? "report_service" : "user_service",
                                               report ? "generate_report" : "get_user", &who,
                                               i / 100, &retry);
        verdicts[v]++;
    }
}

// The timed checks, a function of their own so that callgrind can count them alone:
// valgrind --tool=callgrind --collect-atstart=no --toggle-collect=s_timed bench-ratelimit ...
__attribute__((noinline)) static void
s_timed(ga_ratelimit_t *rl, char (*names)[32], char (*devices)[32], long users, long from,
        long to, long *verdicts)
{
    s_checks(rl, names, devices, users, from, to, verdicts);
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    long users = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
    if (n <= 0 || users <= 0) {
        fprintf(stderr, "usage: bench-ratelimit [CHECKS] [USERS] [metrics]\n");
        return 2;
    }
    // "metrics": the checks' telemetry goes to a ga_metrics, as in a gateway with metrics_listen.
    ga_metrics_t *metrics = argc > 3 && strcmp(argv[3], "metrics") == 0 ? ga_metrics_new() : NULL;
    ga_arena_t *arena = ga_arena_new(4096);
    ga_value_t cfg;
    char why[200];
    ga_ratelimit_t *rl = ga_ratelimit_new();
    char config[sizeof s_config + 32];
    long max_keys = 2 * users + 1000 < 10000000 ? 2 * users + 1000 : 10000000;
    int config_len = snprintf(config, sizeof config, s_config, max_keys);
    if (ga_json_decode(config, (size_t) config_len, arena, &cfg, why, sizeof why) != GA_OK ||
        ga_ratelimit_configure(rl, &cfg, "rate_limits", why, sizeof why) != GA_OK) {
        fprintf(stderr, "bench-ratelimit: %s\n", why);
        return 1;
    }
    // Names made up front: the loop measures the check only.
    char (*names)[32] = malloc((size_t) users * sizeof *names);
    char (*devices)[32] = malloc((size_t) users * sizeof *devices);
    for (long u = 0; u < users; u++) {
        snprintf(names[u], sizeof names[u], "user-%ld", u);
        snprintf(devices[u], sizeof devices[u], "device-%ld", u / 4);
    }
    // The first n checks warm up (every window created, rings grown); the next n are timed.
    long verdicts[3] = {0, 0, 0};
    struct timespec t0, t1;
    s_checks(rl, names, devices, users, 0, n, verdicts);
    verdicts[0] = verdicts[1] = verdicts[2] = 0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0); // CPU time: the machine may be shared
    s_timed(rl, names, devices, users, n, 2 * n, verdicts);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double ns = (double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec);
    ga_rl_stats_t st = ga_ratelimit_stats(rl);
    printf("%ld checks over %ld users: %.0f ns (CPU) per check (%ld allowed, %ld refused; %llu "
           "limiter failures, fail_open; %zu windows)\n",
           n, users, ns / (double) n, verdicts[GA_RL_ALLOW], verdicts[GA_RL_LIMITED],
           (unsigned long long) st.failures, st.keys);
    free(names);
    free(devices);
    ga_ratelimit_destroy(&rl);
    ga_metrics_destroy(&metrics);
    ga_arena_destroy(&arena);
    return 0;
}
