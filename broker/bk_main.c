// SPDX-License-Identifier: MIT
// genapi-broker: parses options, binds, prints READY with the real endpoints, runs the loop
// until SIGINT or SIGTERM, drains, and exits 0 after a clean shutdown (docs/operations.md,
// "Lifecycle").
#include "bk_broker.h"
#include "ga_config.h"
#include "ga_httpd.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_ratelimit.h"
#include "ga_signal.h"

#include <czmq.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *worker_endpoint;  // see table
    char *gateway_endpoint; // see table
    int64_t heartbeat_ms;   // see table
    char *stream_in_endpoint;  // see table
    char *stream_out_endpoint; // see table
    char *push_token;       // see table
    char *admin_token;      // see table
    int64_t hwm;            // see table
    int64_t breaker_threshold;   // see table
    int64_t breaker_cooldown_ms; // see table
    char *log_level;        // see table
    bool insecure_bind;     // see table
    char *curve_secret_file; // see table
    char *curve_peers_dir;   // see table
    char *allowlist;         // see table
    char *admin_actions;     // see table
    char *state_file;        // see table
    char *rate_limits;       // see table (JSON)
    int64_t max_groups;        // see table
    int64_t max_group_members; // see table
    char *relay_state_file;    // see table
    int64_t pull_interval_ms; // see table
    int64_t pull_timeout_ms;  // see table
    char *service_configs;    // see table (JSON)
    int64_t resolver_cache_ms; // see table
    char *metrics_listen;    // see table
    int64_t shutdown_timeout_ms; // see table
} options_t;

static const ga_option_t s_options[] = {
    {"worker_endpoint", GA_OPT_STR, "tcp://127.0.0.1:5570", 0, 0, offsetof(options_t, worker_endpoint),
     "ROUTER endpoint for workers"},
    {"gateway_endpoint", GA_OPT_STR, "tcp://127.0.0.1:5571", 0, 0, offsetof(options_t, gateway_endpoint),
     "ROUTER endpoint for gateways"},
    {"heartbeat_ms", GA_OPT_INT, "1000", 50, 60000, offsetof(options_t, heartbeat_ms),
     "heartbeat interval in ms; a peer silent for 3 intervals is dead"},
    {"stream_in_endpoint", GA_OPT_STR, "tcp://127.0.0.1:5572", 0, 0,
     offsetof(options_t, stream_in_endpoint), "XSUB endpoint where workers publish stream chunks"},
    {"stream_out_endpoint", GA_OPT_STR, "tcp://127.0.0.1:5573", 0, 0,
     offsetof(options_t, stream_out_endpoint), "XPUB endpoint where gateways subscribe"},
    {"admin_token", GA_OPT_STR, "", 0, 0, offsetof(options_t, admin_token),
     "token every admin request (genapi-ctl) must present (empty: admin requests refused)"},
    {"admin_actions", GA_OPT_STR, "", 0, 0, offsetof(options_t, admin_actions),
     "admin operations allowed: comma-separated status, functions, stop_stream (empty: none)"},
    {"breaker_threshold", GA_OPT_INT, "5", 0, 1000, offsetof(options_t, breaker_threshold),
     "consecutive failures (timeouts) that open a worker's circuit (0: never)"},
    {"breaker_cooldown_ms", GA_OPT_INT, "30000", 100, 3600000,
     offsetof(options_t, breaker_cooldown_ms), "how long an open circuit skips the worker"},
    {"push_token", GA_OPT_STR, "", 0, 0, offsetof(options_t, push_token),
     "token every worker must present when pushing its functions (empty: none)"},
    {"hwm", GA_OPT_INT, "100000", 100, 10000000, offsetof(options_t, hwm),
     "ZeroMQ high-water mark per peer, in messages"},
    {"log_level", GA_OPT_STR, "info", 0, 0, offsetof(options_t, log_level),
     "err, warn, notice, info or debug"},
    {"insecure_bind", GA_OPT_BOOL, "false", 0, 0, offsetof(options_t, insecure_bind),
     "allow endpoints beyond loopback without transport security (trusted networks only)"},
    {"curve_secret_file", GA_OPT_STR, "", 0, 0, offsetof(options_t, curve_secret_file),
     "the broker's CURVE certificate (FILE and FILE_secret, genapi-ctl keygen --role broker)"},
    {"curve_peers_dir", GA_OPT_STR, "", 0, 0, offsetof(options_t, curve_peers_dir),
     "directory of the public certificates of the gateways, workers and operators admitted"},
    {"allowlist", GA_OPT_STR, "", 0, 0, offsetof(options_t, allowlist),
     "functions workers may register: comma-separated service or service.function (empty: any)"},
    {"state_file", GA_OPT_STR, "", 0, 0, offsetof(options_t, state_file),
     "file keeping sticky routing across broker restarts, read at start (empty: none)"},
    {"rate_limits", GA_OPT_JSON, "{}", 0, 0, offsetof(options_t, rate_limits),
     "cluster-wide rate limits, counted here for gateways with scope cluster (JSON, as the "
     "gateway's rate_limits; docs/configuration.md)"},
    {"max_groups", GA_OPT_INT, "10000", 1, 10000000, offsetof(options_t, max_groups),
     "relay groups at most; creating one more is refused with the reason"},
    {"max_group_members", GA_OPT_INT, "10000", 1, 10000000,
     offsetof(options_t, max_group_members),
     "members per relay group at most; joining beyond is refused with the reason"},
    {"relay_state_file", GA_OPT_STR, "", 0, 0, offsetof(options_t, relay_state_file),
     "file keeping relay groups and their members across broker restarts (empty: none)"},
    {"pull_interval_ms", GA_OPT_INT, "30000", 0, 86400000, offsetof(options_t, pull_interval_ms),
     "how often the broker pulls each worker's function table (0: never; docs/protocol.md)"},
    {"pull_timeout_ms", GA_OPT_INT, "5000", 50, 300000, offsetof(options_t, pull_timeout_ms),
     "how long one pull may take before it counts as failed (failures back off)"},
    {"service_configs", GA_OPT_JSON, "[]", 0, 0, offsetof(options_t, service_configs),
     "services whose tables are pulled: a list of names or {service, version_check} "
     "([]: every registered service)"},
    {"resolver_cache_ms", GA_OPT_INT, "5000", 100, 3600000,
     offsetof(options_t, resolver_cache_ms),
     "how long the answer of a nodes resolver is used before it is asked again"},
    {"metrics_listen", GA_OPT_STR, "127.0.0.1:9465", 0, 0, offsetof(options_t, metrics_listen),
     "admin HTTP listener host:port for /metrics, /healthz, /readyz (empty: none; beyond "
     "loopback needs insecure_bind)"},
    {"shutdown_timeout_ms", GA_OPT_INT, "10000", 0, 3600000,
     offsetof(options_t, shutdown_timeout_ms),
     "on SIGTERM, how long the answers of calls in flight are awaited before stopping"},
    {NULL, GA_OPT_STR, NULL, 0, 0, 0, NULL},
};

// Applies the rate_limits option (cluster-wide limits); a malformed one, or one with scope
// "gateway" (the broker counts only cluster-wide limits), refuses the start naming the field.
static bool
s_rate_limits_apply(const char *text, bk_broker_t *broker, char *why, size_t whylen)
{
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    char detail[300];
    bool ok = ga_json_decode(text, strlen(text), a, &v, detail, sizeof detail) == GA_OK;
    if (!ok) {
        snprintf(why, whylen, "rate_limits: not JSON (%s)", detail);
    } else if (v.type == GA_MAP && ga_map_get_str(&v, "scope") &&
               strcmp(ga_map_get_str(&v, "scope"), "cluster") != 0) {
        snprintf(why, whylen, "rate_limits.scope: the broker counts cluster-wide limits only "
                              "(\"cluster\", or leave it out)");
        ok = false;
    } else if (ga_ratelimit_configure(bk_broker_rate_limits(broker), &v, "rate_limits", why,
                                      whylen) != GA_OK) {
        ok = false;
    }
    ga_arena_destroy(&a);
    return ok;
}

static bool
s_rate_limits(const char *text, bk_broker_t *broker)
{
    char why[400];
    if (!s_rate_limits_apply(text, broker, why, sizeof why)) {
        fprintf(stderr, "genapi-broker: %s\n", why);
        return false;
    }
    return true;
}

// True when `endpoint` can be reached from this host only: tcp on a loopback address, ipc or
// inproc. Anything else ("tcp://*:5570", "tcp://0.0.0.0:5570", an interface, a public address)
// listens beyond loopback.
static bool
s_is_loopback(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0) {
        return true;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0) {
        return false;
    }
    const char *host = endpoint + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}

// The broker's sockets carry caller identities and accept registrations: beyond loopback they
// need CURVE (every peer holds an admitted key), or the operator's word that the network is
// trusted (insecure_bind); either way a push token is required too. Returns false with the
// reason in `err`.
static bool
s_check_exposure(const options_t *opt, char *err, size_t errlen)
{
    const struct {
        const char *name;
        const char *endpoint;
    } eps[] = {{"worker_endpoint", opt->worker_endpoint},
               {"gateway_endpoint", opt->gateway_endpoint},
               {"stream_in_endpoint", opt->stream_in_endpoint},
               {"stream_out_endpoint", opt->stream_out_endpoint}};
    // The admin listener is plain HTTP whatever CURVE says: beyond loopback only on the
    // operator's word that the network is trusted.
    if (opt->metrics_listen[0] && !ga_httpd_is_loopback(opt->metrics_listen)) {
        if (!opt->insecure_bind) {
            snprintf(err, errlen,
                     "metrics_listen: %s listens beyond loopback (metrics and health are "
                     "unauthenticated plain HTTP); use a loopback address, or set "
                     "insecure_bind=true on a trusted network only",
                     opt->metrics_listen);
            return false;
        }
        GA_WARN("insecure_bind: metrics_listen %s is reachable beyond this host",
                opt->metrics_listen);
    }
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        if (s_is_loopback(eps[i].endpoint)) {
            continue;
        }
        bool curve = opt->curve_secret_file[0] && opt->curve_peers_dir[0];
        if (!curve && !opt->insecure_bind) {
            snprintf(err, errlen,
                     "%s: %s listens beyond loopback without transport security; use a loopback "
                     "address, configure CURVE (curve_secret_file, curve_peers_dir), or set "
                     "insecure_bind=true on a trusted network only",
                     eps[i].name, eps[i].endpoint);
            return false;
        }
        if (opt->push_token == NULL || opt->push_token[0] == '\0') {
            snprintf(err, errlen,
                     "push_token: required when the broker listens beyond loopback (%s is %s)",
                     eps[i].name, eps[i].endpoint);
            return false;
        }
        if (!curve) {
            GA_WARN("insecure_bind: %s %s is reachable beyond this host without transport "
                    "security; anyone who can reach it can send calls with any identity",
                    eps[i].name, eps[i].endpoint);
        }
    }
    return true;
}

// What a reload (SIGHUP) reads and changes, all on the loop thread.
typedef struct {
    int argc;            // the command line, read again
    char **argv;
    options_t *opt;      // the options in force
    bk_config_t *cfg;    // the broker's settings (tokens)
    bk_broker_t *broker; // for the rate limits
} reload_t;

// One changed option on reload (docs/operations.md, "Reload"): log_level, rate_limits,
// admin_token and push_token change at run time; everything else needs a restart.
static ga_reload_t
s_apply(const ga_option_t *o, const void *next_p, void *arg, char *why, size_t whylen)
{
    const options_t *next = next_p;
    reload_t *r = arg;
    if (strcmp(o->name, "log_level") == 0) {
        return ga_config_reload_log_level(next->log_level, why, whylen);
    }
    if (strcmp(o->name, "rate_limits") == 0) {
        return s_rate_limits_apply(next->rate_limits, r->broker, why, whylen)
                   ? GA_RELOAD_APPLIED
                   : GA_RELOAD_INVALID;
    }
    if (strcmp(o->name, "admin_token") == 0) {
        r->cfg->admin_token = next->admin_token; // moved into the options in force
        return GA_RELOAD_APPLIED;
    }
    if (strcmp(o->name, "push_token") == 0) {
        options_t probe = *r->opt;
        probe.push_token = next->push_token;
        char err[512];
        if (!s_check_exposure(&probe, err, sizeof err)) {
            snprintf(why, whylen, "%s", err);
            return GA_RELOAD_INVALID;
        }
        r->cfg->push_token = next->push_token; // read at the next REGISTER
        return GA_RELOAD_APPLIED;
    }
    return GA_RELOAD_RESTART;
}

static void
s_on_reload(void *arg)
{
    reload_t *r = arg;
    options_t next = {0};
    char err[512];
    if (ga_config_load(s_options, &next, "genapi-broker", r->argc, r->argv, err, sizeof err) !=
        GA_OK) {
        GA_ERR("reload: %s; nothing changed", err);
    } else {
        ga_config_reload(s_options, r->opt, &next, s_apply, r);
    }
    ga_config_fini(s_options, &next);
}

typedef struct {
    bk_broker_t *broker; // the broker signals act on
    atomic_int stops;    // SIGINT/SIGTERM received
} signal_arg_t;

// The signal thread: the first SIGINT or SIGTERM drains, the second stops at once.
static void
s_on_signal(int signo, void *arg)
{
    signal_arg_t *sa = arg;
    if (signo == SIGHUP) {
        GA_NOTICE("SIGHUP: reloading the configuration");
        bk_broker_reload(sa->broker);
        return;
    }
    const char *name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (atomic_fetch_add(&sa->stops, 1) == 0) {
        GA_NOTICE("%s: draining (send it again to stop at once)", name);
        bk_broker_drain(sa->broker);
    } else {
        GA_WARN("%s again: stopping at once", name);
        bk_broker_stop(sa->broker);
    }
}

int
main(int argc, char **argv)
{
    ga_signal_block();
    zsys_handler_set(NULL);
    ga_log_set_ident("genapi-broker");
    ga_log_set_sink(ga_log_stderr_sink);
    options_t opt = {0};
    char err[512];
    ga_err_t rc = ga_config_load(s_options, &opt, "genapi-broker", argc, argv, err, sizeof err);
    if (rc != GA_OK) {
        if (rc != GA_ECLOSED) {
            fprintf(stderr, "genapi-broker: %s\n", err);
        }
        ga_config_fini(s_options, &opt);
        return rc == GA_ECLOSED ? 0 : 2;
    }
    int level = ga_log_level_parse(opt.log_level);
    if (level < 0) {
        fprintf(stderr, "genapi-broker: log_level: must be err, warn, notice, info or debug\n");
        ga_config_fini(s_options, &opt);
        return 2;
    }
    ga_log_set_level((ga_log_level_t) level);
    if (!s_check_exposure(&opt, err, sizeof err)) {
        fprintf(stderr, "genapi-broker: %s\n", err);
        ga_config_fini(s_options, &opt);
        return 2;
    }
    bk_config_t cfg = {
        .worker_endpoint = opt.worker_endpoint,
        .gateway_endpoint = opt.gateway_endpoint,
        .heartbeat_ms = opt.heartbeat_ms,
        .stream_in_endpoint = opt.stream_in_endpoint,
        .stream_out_endpoint = opt.stream_out_endpoint,
        .push_token = opt.push_token,
        .admin_token = opt.admin_token,
        .hwm = opt.hwm,
        .breaker_threshold = opt.breaker_threshold,
        .breaker_cooldown_ms = opt.breaker_cooldown_ms,
        .curve_secret_file = opt.curve_secret_file,
        .curve_peers_dir = opt.curve_peers_dir,
        .allowlist = opt.allowlist,
        .admin_actions = opt.admin_actions,
        .state_file = opt.state_file,
        .max_groups = opt.max_groups,
        .max_group_members = opt.max_group_members,
        .relay_state_file = opt.relay_state_file,
        .pull_interval_ms = opt.pull_interval_ms,
        .pull_timeout_ms = opt.pull_timeout_ms,
        .service_configs = opt.service_configs,
        .resolver_cache_ms = opt.resolver_cache_ms,
        .metrics_listen = opt.metrics_listen,
        .shutdown_timeout_ms = opt.shutdown_timeout_ms,
    };
    reload_t reload = {.argc = argc, .argv = argv, .opt = &opt, .cfg = &cfg};
    cfg.on_reload = s_on_reload;
    cfg.on_reload_arg = &reload;
    bk_broker_t *broker = bk_broker_new(&cfg);
    reload.broker = broker;
    signal_arg_t sigarg = {.broker = broker};
    ga_signal_t *sig = NULL;
    int status = 1;
    if (!s_rate_limits(opt.rate_limits, broker)) {
        status = 2;
        goto out;
    }
    if (ga_config_is_check(argc, argv)) {
        // Everything bind checks except the endpoints themselves (nothing is bound).
        status = bk_broker_check(broker) == GA_OK ? 0 : 2;
        if (status == 0) {
            printf("genapi-broker: configuration valid\n");
        }
        goto out;
    }
    if (bk_broker_bind(broker) != GA_OK || ga_signal_start(s_on_signal, &sigarg, &sig) != GA_OK) {
        GA_ERR("startup failed");
        goto out;
    }
    printf("READY broker workers=%s gateways=%s streams_in=%s streams_out=%s metrics_port=%d\n",
           bk_broker_worker_endpoint(broker), bk_broker_gateway_endpoint(broker),
           bk_broker_stream_in_endpoint(broker), bk_broker_stream_out_endpoint(broker),
           bk_broker_metrics_port(broker));
    fflush(stdout);
    GA_INFO("listening: workers %s, gateways %s", bk_broker_worker_endpoint(broker),
            bk_broker_gateway_endpoint(broker));
    status = bk_broker_run(broker) == GA_OK && !bk_broker_stopped_early(broker) ? 0 : 1;
    GA_INFO("stopped%s", status ? " before the drain finished" : "");
out:
    ga_signal_destroy(&sig);
    bk_broker_destroy(&broker);
    ga_config_fini(s_options, &opt);
    return status;
}
