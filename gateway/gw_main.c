// SPDX-License-Identifier: MIT
// genapi-gateway: parses options, starts the WebSocket server and the broker link, prints
// READY once it listens and holds the registry, serves until SIGINT or SIGTERM, then drains
// and exits 0 (docs/operations.md, "Lifecycle").
#include "ga_config.h"
#include "ga_httpd.h"
#include "ga_curve.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_ratelimit.h"
#include "ga_signal.h"
#include "gw_server.h"

#include <ctype.h>
#include <signal.h>
#include <stdatomic.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    char *listen;              // see table
    char *broker;              // see table
    char *topics;              // see table
    char *api_event;           // see table
    char *delivery;            // see table
    int64_t max_payload_bytes; // see table
    int64_t max_outbox;        // see table
    int64_t max_outbox_bytes;  // see table
    int64_t max_connections;   // see table
    int64_t max_channels;      // see table
    int64_t max_inflight;      // see table
    int64_t heartbeat_ms;      // see table
    int64_t timeout_grace_ms;  // see table
    bool detail_errors;        // see table
    char *auth;                // see table
    char *jwt_alg;             // see table
    char *jwt_secret;          // see table
    char *jwt_public_key_file; // see table
    char *jwt_issuer;          // see table
    char *jwt_audience;        // see table
    int64_t jwt_leeway_s;      // see table
    bool allow_anonymous;      // see table
    bool require_auth;         // see table
    char *trusted_proxies;     // see table
    char *auth_service;        // see table
    char *log_level;           // see table
    char *curve_secret_file;   // see table
    char *curve_broker_file;   // see table
    char *tls_cert_file;       // see table
    char *tls_key_file;        // see table
    char *allowed_origins;     // see table
    char *rate_limits;         // see table (JSON)
    char *metrics_listen;      // see table
    bool insecure_bind;        // see table
    char *admin_token;         // see table
    int64_t shutdown_timeout_ms; // see table
} options_t;

#define OPT(name, type, dflt, min, max, help)                                                     \
    {#name, type, dflt, min, max, offsetof(options_t, name), help}

static const ga_option_t s_options[] = {
    OPT(listen, GA_OPT_STR, "0.0.0.0:4000", 0, 0, "WebSocket listen address host:port (port 0: any)"),
    OPT(broker, GA_OPT_STR, "tcp://127.0.0.1:5571", 0, 0, "broker endpoint for gateways"),
    OPT(topics, GA_OPT_STR, "api:lobby,chat:*", 0, 0,
        "joinable topics, comma-separated; a trailing * matches a prefix"),
    OPT(api_event, GA_OPT_STR, "api", 0, 0, "event name of API requests and responses"),
    OPT(delivery, GA_OPT_STR, "both", 0, 0,
        "immediate responses as phx_reply and push (both), reply only, or push only"),
    OPT(max_payload_bytes, GA_OPT_INT, "1048576", 256, 67108864,
        "largest inbound message in bytes, checked before parsing"),
    OPT(max_outbox, GA_OPT_INT, "65536", 4, 10000000,
        "frames queued per connection before it is closed as a slow consumer"),
    OPT(max_outbox_bytes, GA_OPT_INT, "16777216", 65536, 1073741824,
        "bytes queued per connection before it is closed as a slow consumer"),
    OPT(max_connections, GA_OPT_INT, "50000", 1, 10000000, "connections accepted at once"),
    OPT(max_channels, GA_OPT_INT, "16", 1, 1024, "channels one connection may join"),
    OPT(max_inflight, GA_OPT_INT, "100000", 1, 10000000,
        "calls in flight to the broker before new ones are refused"),
    OPT(heartbeat_ms, GA_OPT_INT, "1000", 50, 60000,
        "broker heartbeat interval until the broker announces its own"),
    OPT(timeout_grace_ms, GA_OPT_INT, "2000", 0, 60000,
        "added to a function's timeout before the gateway answers a call itself"),
    OPT(detail_errors, GA_OPT_BOOL, "false", 0, 0, "show internal error details to clients"),
    OPT(auth, GA_OPT_STR, "none", 0, 0,
        "connection identity: none (anonymous), jwt, or service (a worker function decides)"),
    OPT(auth_service, GA_OPT_STR, "", 0, 0,
        "auth=service: the deciding function as service.request_type"),
    OPT(jwt_alg, GA_OPT_STR, "HS256", 0, 0, "the only JWT algorithm accepted: HS256, RS256, ES256"),
    OPT(jwt_secret, GA_OPT_STR, "", 0, 0, "HS256 secret (no default: set it in the config file)"),
    OPT(jwt_public_key_file, GA_OPT_STR, "", 0, 0, "PEM public key file for RS256/ES256"),
    OPT(jwt_issuer, GA_OPT_STR, "", 0, 0, "required iss claim (empty: not checked)"),
    OPT(jwt_audience, GA_OPT_STR, "", 0, 0, "required aud claim (empty: not checked)"),
    OPT(jwt_leeway_s, GA_OPT_INT, "30", 0, 600, "clock skew allowed on exp and nbf, seconds"),
    OPT(allow_anonymous, GA_OPT_BOOL, "false", 0, 0,
        "with auth=jwt, a connection without a token is anonymous instead of refused"),
    OPT(require_auth, GA_OPT_BOOL, "false", 0, 0,
        "requests from anonymous connections get \"Authentication required\""),
    OPT(trusted_proxies, GA_OPT_STR, "", 0, 0,
        "comma-separated proxy addresses whose X-Forwarded-For gives the client address"),
    OPT(log_level, GA_OPT_STR, "info", 0, 0, "err, warn, notice, info or debug"),
    OPT(curve_secret_file, GA_OPT_STR, "", 0, 0,
        "this gateway's CURVE certificate (FILE and FILE_secret, role gateway)"),
    OPT(curve_broker_file, GA_OPT_STR, "", 0, 0, "the broker's public CURVE certificate"),
    OPT(tls_cert_file, GA_OPT_STR, "", 0, 0,
        "PEM certificate (chain) for wss:// on the listener, with tls_key_file (empty: ws://)"),
    OPT(tls_key_file, GA_OPT_STR, "", 0, 0, "PEM private key of tls_cert_file"),
    OPT(allowed_origins, GA_OPT_STR, "", 0, 0,
        "comma-separated exact Origins allowed on the handshake, e.g. https://app.example.com "
        "(empty: any)"),
    OPT(rate_limits, GA_OPT_JSON, "{}", 0, 0,
        "rate limits as a JSON object {enabled, fail_open, max_keys, scope, global_limits, "
        "api_limits} (docs/configuration.md, \"Rate limits\")"),
    OPT(metrics_listen, GA_OPT_STR, "127.0.0.1:9464", 0, 0,
        "admin HTTP listener host:port for /metrics, /healthz, /readyz (empty: none; beyond "
        "loopback needs insecure_bind)"),
    OPT(insecure_bind, GA_OPT_BOOL, "false", 0, 0,
        "allow metrics_listen beyond loopback (plain, unauthenticated HTTP; trusted networks only)"),
    OPT(admin_token, GA_OPT_STR, "", 0, 0,
        "the admin listener's /events (genapi-ctl tail) requires it as a bearer token (empty: "
        "/events refused)"),
    OPT(shutdown_timeout_ms, GA_OPT_INT, "10000", 0, 3600000,
        "on SIGTERM, how long calls in flight are awaited before the clients are closed"),
    {NULL, GA_OPT_STR, NULL, 0, 0, 0, NULL},
};

typedef struct {
    gw_server_t *server; // the server signals act on
    atomic_int stops;    // SIGINT/SIGTERM received
} signal_arg_t;

// What a reload (SIGHUP) reads and changes, all on the loop thread.
typedef struct {
    int argc;              // the command line, read again
    char **argv;
    options_t *opt;        // the options in force
    gw_config_t *cfg;      // the server's settings (the auth key)
    ga_buf_t *key;         // the auth key's bytes
    gw_server_t *server;   // for the pipeline's rate limits
} reload_t;

static ga_err_t s_rate_limits_apply(const char *text, gw_pipeline_t *pipeline, char *why,
                                    size_t whylen);

// One changed option on reload (docs/operations.md, "Reload"): log_level, rate_limits and
// jwt_secret change at run time; everything else needs a restart.
static ga_reload_t
s_apply(const ga_option_t *o, const void *next_p, void *arg, char *why, size_t whylen)
{
    const options_t *next = next_p;
    reload_t *r = arg;
    if (strcmp(o->name, "log_level") == 0) {
        return ga_config_reload_log_level(next->log_level, why, whylen);
    }
    if (strcmp(o->name, "rate_limits") == 0) {
        return s_rate_limits_apply(next->rate_limits, gw_server_pipeline(r->server), why,
                                   whylen) == GA_OK
                   ? GA_RELOAD_APPLIED
                   : GA_RELOAD_INVALID;
    }
    if (strcmp(o->name, "jwt_secret") == 0) {
        if (r->cfg->auth.mode != GW_AUTH_JWT || strcmp(r->opt->jwt_alg, "HS256") != 0) {
            return GA_RELOAD_APPLIED; // not in use: nothing to change (as at start)
        }
        if (strlen(next->jwt_secret) < 16) {
            snprintf(why, whylen, "at least 16 bytes are required");
            return GA_RELOAD_INVALID;
        }
        ga_buf_reset(r->key);
        ga_buf_append_str(r->key, next->jwt_secret);
        r->cfg->auth.key = r->key->data; // read by the next handshake
        r->cfg->auth.key_len = r->key->len;
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
    ga_err_t rc = ga_config_load(s_options, &next, "genapi-gateway", r->argc, r->argv, err,
                                 sizeof err);
    if (rc != GA_OK) {
        GA_ERR("reload: %s; nothing changed", err);
    } else {
        ga_config_reload(s_options, r->opt, &next, s_apply, r);
    }
    ga_config_fini(s_options, &next);
}

// The signal thread: the first SIGINT or SIGTERM drains, the second stops at once.
static void
s_on_signal(int signo, void *arg)
{
    signal_arg_t *sa = arg;
    if (signo == SIGHUP) {
        GA_NOTICE("SIGHUP: reloading the configuration");
        gw_server_reload(sa->server);
        return;
    }
    if (atomic_fetch_add(&sa->stops, 1) == 0) {
        GA_NOTICE("%s: draining (send it again to stop at once)", signo == SIGINT ? "SIGINT" : "SIGTERM");
        gw_server_drain(sa->server);
    } else {
        GA_WARN("%s again: stopping at once", signo == SIGINT ? "SIGINT" : "SIGTERM");
        gw_server_stop(sa->server);
    }
}

typedef struct {
    const char *host;   // the host shown
    const char *scheme; // ws or wss
    gw_server_t *server; // for the admin port
} ready_arg_t;

static void
s_on_ready(int port, void *arg)
{
    const ready_arg_t *ready = arg;
    printf("READY gateway %s://%s:%d/socket metrics_port=%d\n", ready->scheme, ready->host, port,
           gw_server_metrics_port(ready->server));
    fflush(stdout);
}

static void
s_lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        n--;
    }
    if (level & LLL_ERR) {
        GA_ERR("lws: %.*s", (int) n, line);
    } else {
        GA_WARN("lws: %.*s", (int) n, line);
    }
}

// Builds the identity settings; reads the public key file (main may do file I/O).
static ga_err_t
s_auth_config(const options_t *opt, gw_auth_config_t *auth, ga_buf_t *key)
{
    if (strcmp(opt->auth, "none") == 0) {
        auth->mode = GW_AUTH_NONE;
        return GA_OK;
    }
    if (strcmp(opt->auth, "service") == 0) {
        if (strchr(opt->auth_service, '.') == NULL) {
            fprintf(stderr, "genapi-gateway: auth_service: must be service.request_type\n");
            return GA_ECONFIG;
        }
        auth->mode = GW_AUTH_SERVICE;
        return GA_OK;
    }
    if (strcmp(opt->auth, "jwt") != 0) {
        fprintf(stderr, "genapi-gateway: auth: must be none, jwt or service\n");
        return GA_ECONFIG;
    }
    auth->mode = GW_AUTH_JWT;
    auth->jwt_alg = opt->jwt_alg;
    auth->issuer = opt->jwt_issuer;
    auth->audience = opt->jwt_audience;
    auth->leeway_s = opt->jwt_leeway_s;
    auth->allow_anonymous = opt->allow_anonymous;
    if (strcmp(opt->jwt_alg, "HS256") == 0) {
        if (strlen(opt->jwt_secret) < 16) {
            fprintf(stderr, "genapi-gateway: jwt_secret: at least 16 bytes are required\n");
            return GA_ECONFIG;
        }
        ga_buf_append_str(key, opt->jwt_secret);
    } else if (strcmp(opt->jwt_alg, "RS256") == 0 || strcmp(opt->jwt_alg, "ES256") == 0) {
        FILE *f = fopen(opt->jwt_public_key_file, "rb");
        if (f == NULL) {
            fprintf(stderr, "genapi-gateway: jwt_public_key_file: cannot open \"%s\"\n",
                    opt->jwt_public_key_file);
            return GA_ECONFIG;
        }
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            ga_buf_append(key, chunk, n);
        }
        GA_IGNORE(fclose(f)); // read-only
    } else {
        fprintf(stderr, "genapi-gateway: jwt_alg: must be HS256, RS256 or ES256\n");
        return GA_ECONFIG;
    }
    auth->key = key->data;
    auth->key_len = key->len;
    return GA_OK;
}

// Checks the TLS files as the listener will load them: both or neither, readable, a PEM
// certificate chain and the private key that belongs to it. Any failure refuses the start
// (never a silent fallback to plain ws).
static ga_err_t
s_tls_check(const options_t *opt)
{
    bool cert = opt->tls_cert_file[0] != '\0';
    bool key = opt->tls_key_file[0] != '\0';
    if (cert != key) {
        fprintf(stderr, "genapi-gateway: %s: required with %s\n",
                cert ? "tls_key_file" : "tls_cert_file", cert ? "tls_cert_file" : "tls_key_file");
        return GA_ECONFIG;
    }
    if (!cert) {
        return GA_OK;
    }
    const char *names[2] = {"tls_cert_file", "tls_key_file"};
    const char *paths[2] = {opt->tls_cert_file, opt->tls_key_file};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (f == NULL) {
            fprintf(stderr, "genapi-gateway: %s: cannot read \"%s\": %s\n", names[i], paths[i],
                    strerror(errno));
            return GA_ECONFIG;
        }
        GA_IGNORE(fclose(f)); // read-only
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *why = NULL;
    if (ctx == NULL) {
        why = "tls_cert_file: cannot create a TLS context";
    } else if (SSL_CTX_use_certificate_chain_file(ctx, opt->tls_cert_file) != 1) {
        why = "tls_cert_file: not a PEM certificate (chain)";
    } else if (SSL_CTX_use_PrivateKey_file(ctx, opt->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        why = "tls_key_file: not a PEM private key";
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        why = "tls_key_file: does not belong to the certificate in tls_cert_file";
    }
    if (why) {
        char detail[256];
        ERR_error_string_n(ERR_peek_last_error(), detail, sizeof detail);
        fprintf(stderr, "genapi-gateway: %s (%s)\n", why, detail);
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return why ? GA_ECONFIG : GA_OK;
}

// Checks that each allowed_origins entry is an origin as browsers send it: scheme://host or
// scheme://host:port, without a path or a trailing slash (which would never match).
static ga_err_t
s_origins_check(const char *list)
{
    for (const char *p = list; *p; p += strcspn(p, ",")) {
        p += strspn(p, ", ");
        size_t k = strcspn(p, ", ");
        if (k == 0) {
            continue;
        }
        size_t scheme = 0;
        while (scheme < k && (isalnum((unsigned char) p[scheme]) || p[scheme] == '+' ||
                              p[scheme] == '-' || p[scheme] == '.')) {
            scheme++;
        }
        const char *host = p + scheme + 3;
        size_t host_len = k >= scheme + 3 ? k - scheme - 3 : 0;
        if (scheme == 0 || !isalpha((unsigned char) p[0]) || host_len == 0 ||
            strncmp(p + scheme, "://", 3) != 0 || memchr(host, '/', host_len) ||
            memchr(host, '*', host_len)) {
            fprintf(stderr,
                    "genapi-gateway: allowed_origins: \"%.*s\" is not an origin: use "
                    "scheme://host[:port] (no path, no trailing slash)\n",
                    (int) k, p);
            return GA_ECONFIG;
        }
        if (k >= 256) {
            fprintf(stderr, "genapi-gateway: allowed_origins: \"%.40s...\" is longer than 255 "
                            "bytes\n", p);
            return GA_ECONFIG;
        }
    }
    return GA_OK;
}

// Applies the rate_limits option to the pipeline's limiter, all or nothing; GA_ECONFIG with
// the field named in `why`.
static ga_err_t
s_rate_limits_apply(const char *text, gw_pipeline_t *pipeline, char *why, size_t whylen)
{
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t v;
    char detail[300];
    ga_err_t rc = ga_json_decode(text, strlen(text), a, &v, detail, sizeof detail);
    if (rc != GA_OK) {
        snprintf(why, whylen, "not JSON (%s)", detail);
    } else if ((rc = ga_ratelimit_configure(gw_pipeline_rate_limits(pipeline), &v, "rate_limits",
                                            why, whylen)) != GA_OK) {
        // the reason names the field
    }
    ga_arena_destroy(&a);
    return rc == GA_OK ? GA_OK : GA_ECONFIG;
}

// The rate_limits option at start: a malformed one refuses the start with the field named.
static ga_err_t
s_rate_limits(const char *text, gw_pipeline_t *pipeline)
{
    char why[400];
    if (s_rate_limits_apply(text, pipeline, why, sizeof why) != GA_OK) {
        fprintf(stderr, "genapi-gateway: %s%s\n", strncmp(why, "not JSON", 8) == 0 ? "rate_limits: " : "", why);
        return GA_ECONFIG;
    }
    return GA_OK;
}

// Raises the open-file limit toward `want` (a gateway holds one descriptor per client; lws
// sizes its tables from this limit, so it is not raised past what is useful).
static void
s_raise_fd_limit(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        GA_IGNORE(setrlimit(RLIMIT_NOFILE, &rl) != 0); // keep the old limit if refused
    }
}

int
main(int argc, char **argv)
{
    ga_signal_block();
    ga_log_set_ident("genapi-gateway");
    ga_log_set_sink(ga_log_stderr_sink);
    lws_set_log_level(LLL_ERR, s_lws_log);
    options_t opt = {0};
    char err[512];
    ga_err_t rc = ga_config_load(s_options, &opt, "genapi-gateway", argc, argv, err, sizeof err);
    if (rc != GA_OK) {
        if (rc != GA_ECLOSED) {
            fprintf(stderr, "genapi-gateway: %s\n", err);
        }
        ga_config_fini(s_options, &opt);
        return rc == GA_ECLOSED ? 0 : 2;
    }
    int level = ga_log_level_parse(opt.log_level);
    if (level < 0) {
        fprintf(stderr, "genapi-gateway: log_level: must be err, warn, notice, info or debug\n");
        ga_config_fini(s_options, &opt);
        return 2;
    }
    ga_log_set_level((ga_log_level_t) level);

    char host[128] = "";
    int port = 0;
    const char *colon = strrchr(opt.listen, ':');
    gw_delivery_t delivery = GW_DELIVER_BOTH;
    if (strcmp(opt.delivery, "reply") == 0) {
        delivery = GW_DELIVER_REPLY;
    } else if (strcmp(opt.delivery, "push") == 0) {
        delivery = GW_DELIVER_PUSH;
    } else if (strcmp(opt.delivery, "both") != 0) {
        fprintf(stderr, "genapi-gateway: delivery: must be both, reply or push\n");
        ga_config_fini(s_options, &opt);
        return 2;
    }
    if (colon == NULL || sscanf(colon + 1, "%d", &port) != 1 || port < 0 || port > 65535 ||
        (size_t) (colon - opt.listen) >= sizeof host) {
        fprintf(stderr, "genapi-gateway: listen: must be host:port\n");
        ga_config_fini(s_options, &opt);
        return 2;
    }
    memcpy(host, opt.listen, (size_t) (colon - opt.listen));
    if (opt.metrics_listen[0] && !ga_httpd_is_loopback(opt.metrics_listen)) {
        if (!opt.insecure_bind) {
            fprintf(stderr,
                    "genapi-gateway: metrics_listen: %s listens beyond loopback (metrics and "
                    "health are unauthenticated plain HTTP); use a loopback address, or set "
                    "insecure_bind=true on a trusted network only\n",
                    opt.metrics_listen);
            ga_config_fini(s_options, &opt);
            return 2;
        }
        GA_WARN("insecure_bind: metrics_listen %s is reachable beyond this host",
                opt.metrics_listen);
    } else if (opt.insecure_bind) {
        GA_WARN("insecure_bind: set, but metrics_listen is on loopback (or empty): no effect");
    }
    if (s_tls_check(&opt) != GA_OK || s_origins_check(opt.allowed_origins) != GA_OK) {
        ga_config_fini(s_options, &opt);
        return 2;
    }
    gw_auth_config_t auth = {.mode = GW_AUTH_NONE};
    ga_buf_t key;
    ga_buf_init(&key);
    if (s_auth_config(&opt, &auth, &key) != GA_OK) {
        ga_buf_fini(&key);
        ga_config_fini(s_options, &opt);
        return 2;
    }
    ga_curve_cert_t curve_own, curve_broker;
    bool curve_on = false;
    if (ga_curve_client_load("curve_secret_file", opt.curve_secret_file, "curve_broker_file",
                             opt.curve_broker_file, "gateway", &curve_own, &curve_broker,
                             &curve_on, err, sizeof err) != GA_OK) {
        fprintf(stderr, "genapi-gateway: %s\n", err);
        ga_buf_fini(&key);
        ga_config_fini(s_options, &opt);
        return 2;
    }
    char name[160];
    char hostname[128] = "localhost";
    GA_IGNORE(gethostname(hostname, sizeof hostname) != 0); // keep "localhost" on failure
    hostname[sizeof hostname - 1] = '\0';
    snprintf(name, sizeof name, "gateway@%s:%d", hostname, (int) getpid());
    const char *shown = host[0] && strcmp(host, "0.0.0.0") != 0 ? host : "localhost";
    ready_arg_t ready = {.host = shown, .scheme = opt.tls_cert_file[0] ? "wss" : "ws"};

    gw_config_t cfg = {
        .host = strcmp(host, "0.0.0.0") == 0 ? "" : host,
        .port = port,
        .topics = opt.topics,
        .api_event = opt.api_event,
        .delivery = delivery,
        .max_payload_bytes = opt.max_payload_bytes,
        .max_outbox = opt.max_outbox,
        .max_outbox_bytes = opt.max_outbox_bytes,
        .max_connections = opt.max_connections,
        .max_channels = opt.max_channels,
        .rx_buffer_bytes = 4096,
        .auth = auth,
        .trusted_proxies = opt.trusted_proxies,
        .tls_cert_file = opt.tls_cert_file,
        .tls_key_file = opt.tls_key_file,
        .allowed_origins = opt.allowed_origins,
        .auth_service = opt.auth_service,
        .bridge = {.broker = opt.broker,
                   .name = name,
                   .heartbeat_ms = opt.heartbeat_ms,
                   .grace_ms = opt.timeout_grace_ms,
                   .hwm = 100000,
                   .max_inflight = opt.max_inflight,
                   .curve = curve_on ? &curve_own : NULL,
                   .curve_broker = curve_on ? curve_broker.public_txt : NULL},
        .pipeline = {.detail_errors = opt.detail_errors, .require_auth = opt.require_auth},
        .on_ready = s_on_ready,
        .on_ready_arg = &ready,
        .metrics_listen = opt.metrics_listen,
        .admin_token = opt.admin_token,
        .shutdown_timeout_ms = opt.shutdown_timeout_ms,
    };
    reload_t reload = {.argc = argc, .argv = argv, .opt = &opt, .cfg = &cfg, .key = &key};
    cfg.on_reload = s_on_reload;
    cfg.on_reload_arg = &reload;
    s_raise_fd_limit((rlim_t) opt.max_connections + 1024);
    gw_server_t *server = gw_server_new(&cfg);
    ready.server = server;
    reload.server = server;
    signal_arg_t sigarg = {.server = server};
    ga_signal_t *sig = NULL;
    int status = 1;
    if (s_rate_limits(opt.rate_limits, gw_server_pipeline(server)) != GA_OK) {
        status = 2;
        goto out;
    }
    if (ga_config_is_check(argc, argv)) {
        printf("genapi-gateway: configuration valid\n"); // everything checked but the ports
        status = 0;
        goto out;
    }
    if (gw_server_start(server) != GA_OK || ga_signal_start(s_on_signal, &sigarg, &sig) != GA_OK) {
        GA_ERR("startup failed");
        goto out;
    }
    GA_INFO("listening on %s://%s:%d, broker %s", ready.scheme, shown, gw_server_port(server),
            opt.broker);
    status = gw_server_run(server) == GA_OK && !gw_server_stopped_early(server) ? 0 : 1;
    GA_INFO("stopped%s", status ? " before the drain finished" : "");
out:
    ga_signal_destroy(&sig);
    gw_server_destroy(&server);
    ga_buf_fini(&key);
    ga_config_fini(s_options, &opt);
    return status;
}
