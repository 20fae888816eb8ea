// SPDX-License-Identifier: MIT
// wk_main: a whole main() for services. Unlike the rest of the library it owns the process's
// signals and log sink, because it is the program's main; services that embed a worker in a
// larger program use wk_worker_new/start/destroy instead.
#include "wk_internal.h"

#include "ga_config.h"
#include "ga_log.h"
#include "ga_signal.h"

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

typedef struct {
    char *broker;       // see table
    int64_t heartbeat_ms; // see table
    int64_t threads;    // see table
    int64_t queue_max;  // see table
    char *push_token;   // see table
    char *config_version; // see table
    bool force_push;    // see table
    char *node;         // see table
    char *log_level;    // see table
    char *curve_secret_file; // see table
    char *curve_broker_file; // see table
    int64_t shutdown_timeout_ms; // see table
} options_t;

static const ga_option_t s_options[] = {
    {"broker", GA_OPT_STR, "tcp://127.0.0.1:5570", 0, 0, offsetof(options_t, broker),
     "broker endpoint for workers"},
    {"heartbeat_ms", GA_OPT_INT, "1000", 50, 60000, offsetof(options_t, heartbeat_ms),
     "heartbeat interval until the broker announces its own"},
    {"threads", GA_OPT_INT, "4", 1, 1024, offsetof(options_t, threads), "handler threads"},
    {"queue_max", GA_OPT_INT, "256", 1, 1000000, offsetof(options_t, queue_max),
     "requests waiting for a thread before new ones are refused"},
    {"push_token", GA_OPT_STR, "", 0, 0, offsetof(options_t, push_token),
     "token presented with the function table"},
    {"config_version", GA_OPT_STR, "", 0, 0, offsetof(options_t, config_version),
     "version of the function table (empty: a hash of the table)"},
    {"force_push", GA_OPT_BOOL, "false", 0, 0, offsetof(options_t, force_push),
     "push the table even when the broker already has its config_version"},
    {"node", GA_OPT_STR, "", 0, 0, offsetof(options_t, node),
     "node name (empty: <service>@<hostname>)"},
    {"log_level", GA_OPT_STR, "info", 0, 0, offsetof(options_t, log_level),
     "err, warn, notice, info or debug"},
    {"curve_secret_file", GA_OPT_STR, "", 0, 0, offsetof(options_t, curve_secret_file),
     "this worker's CURVE certificate (FILE and FILE_secret, role worker)"},
    {"curve_broker_file", GA_OPT_STR, "", 0, 0, offsetof(options_t, curve_broker_file),
     "the broker's public CURVE certificate"},
    {"shutdown_timeout_ms", GA_OPT_INT, "10000", 0, 3600000,
     offsetof(options_t, shutdown_timeout_ms),
     "on SIGTERM, how long the replies of the handlers running are awaited"},
    {NULL, GA_OPT_STR, NULL, 0, 0, 0, NULL},
};

typedef struct {
    int wake;       // main waits for a byte on this pipe
    int argc;       // the command line, read again on SIGHUP
    char **argv;
    options_t *opt; // the options in force
} signal_arg_t;

// Reload (docs/operations.md, "Reload"): only log_level changes at run time.
static ga_reload_t
s_apply(const ga_option_t *o, const void *next_p, void *arg, char *why, size_t whylen)
{
    const options_t *next = next_p;
    (void) arg;
    if (strcmp(o->name, "log_level") != 0) {
        return GA_RELOAD_RESTART;
    }
    return ga_config_reload_log_level(next->log_level, why, whylen);
}

// The signal thread: the first SIGINT or SIGTERM wakes main, which drains the worker
// (wk_worker_destroy); the second exits at once, since a running handler cannot be interrupted.
// SIGHUP reloads here (main only waits meanwhile, and reads nothing the reload changes).
static void
s_on_signal(int signo, void *arg)
{
    static atomic_int stops;
    signal_arg_t *sa = arg;
    if (signo == SIGHUP) {
        GA_NOTICE("SIGHUP: reloading the configuration");
        options_t next = {0};
        char err[512];
        if (ga_config_load(s_options, &next, sa->argv[0], sa->argc, sa->argv, err, sizeof err) !=
            GA_OK) {
            GA_ERR("reload: %s; nothing changed", err);
        } else {
            ga_config_reload(s_options, sa->opt, &next, s_apply, NULL);
        }
        ga_config_fini(s_options, &next);
        return;
    }
    const char *name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (atomic_fetch_add(&stops, 1) > 0) {
        GA_WARN("%s again: exiting at once", name);
        _exit(1);
    }
    GA_NOTICE("%s: draining (send it again to exit at once)", name);
    char c = 1;
    GA_IGNORE(write(sa->wake, &c, 1) < 0); // main is waiting for exactly this byte
}

static void
s_on_registered(const char *node, const char *broker, void *arg)
{
    (void) arg;
    printf("READY worker %s %s\n", node, broker);
    fflush(stdout);
}

int
wk_main(int argc, char **argv, const wk_service_t *service)
{
    ga_signal_block();
    zsys_handler_set(NULL);
    ga_log_set_ident(service->service ? service->service : "worker");
    ga_log_set_sink(ga_log_stderr_sink);
    options_t opt = {0};
    char err[512];
    ga_err_t rc = ga_config_load(s_options, &opt, argv[0], argc, argv, err, sizeof err);
    if (rc != GA_OK) {
        if (rc != GA_ECLOSED) {
            fprintf(stderr, "%s: %s\n", argv[0], err);
        }
        ga_config_fini(s_options, &opt);
        return rc == GA_ECLOSED ? 0 : 2;
    }
    int level = ga_log_level_parse(opt.log_level);
    if (level < 0) {
        fprintf(stderr, "%s: log_level: must be err, warn, notice, info or debug\n", argv[0]);
        ga_config_fini(s_options, &opt);
        return 2;
    }
    ga_log_set_level((ga_log_level_t) level);
    wk_service_t svc = *service;
    if (opt.node[0]) {
        svc.node = opt.node;
    }
    if (ga_config_is_check(argc, argv)) {
        wk_worker_t *probe = wk_worker_new(&svc, NULL);
        rc = wk_table_build(probe, err, sizeof err);
        wk_worker_destroy(&probe);
        if (rc != GA_OK) {
            fprintf(stderr, "%s: %s\n", argv[0], err);
        } else {
            printf("%s: configuration valid\n", argv[0]);
        }
        ga_config_fini(s_options, &opt);
        return rc == GA_OK ? 0 : 2;
    }
    wk_options_t wopt = {
        .broker = opt.broker,
        .heartbeat_ms = (int) opt.heartbeat_ms,
        .threads = (int) opt.threads,
        .queue_max = (int) opt.queue_max,
        .push_token = opt.push_token,
        .config_version = opt.config_version[0] ? opt.config_version : NULL,
        .force_push = opt.force_push,
        .curve_secret_file = opt.curve_secret_file,
        .curve_broker_file = opt.curve_broker_file,
        .on_registered = s_on_registered,
        // 0 here means no wait at all (the library reads 0 as its default).
        .shutdown_timeout_ms = opt.shutdown_timeout_ms ? (int) opt.shutdown_timeout_ms : -1,
    };
    int wake[2] = {-1, -1};
    ga_signal_t *sig = NULL;
    wk_worker_t *worker = wk_worker_new(&svc, &wopt);
    int status = 1;
    signal_arg_t sigarg = {.wake = -1, .argc = argc, .argv = argv, .opt = &opt};
    bool piped = pipe(wake) == 0;
    sigarg.wake = wake[1];
    if (!piped || ga_signal_start(s_on_signal, &sigarg, &sig) != GA_OK) {
        fprintf(stderr, "%s: cannot set up signal handling\n", argv[0]);
        goto out;
    }
    if (wk_worker_start(worker, err, sizeof err) != GA_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err);
        goto out;
    }
    GA_INFO("worker %s started: %d thread(s), broker %s", svc.service, wopt.threads, opt.broker);
    char c;
    while (read(wake[0], &c, 1) < 0) {
        // EINTR cannot happen with the signals blocked, but a retry is harmless.
    }
    GA_INFO("stopping");
    status = 0;
out:
    wk_worker_destroy(&worker);
    ga_signal_destroy(&sig);
    for (int i = 0; i < 2; i++) {
        if (wake[i] >= 0) {
            close(wake[i]);
        }
    }
    ga_config_fini(s_options, &opt);
    return status;
}
