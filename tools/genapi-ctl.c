// SPDX-License-Identifier: MIT
// genapi-ctl: the operator's command line. `token` mints a development JWT for a gateway with
// auth=jwt; `keygen` makes a CurveZMQ certificate (docs/security.md); `status`, `functions`,
// `stop-stream`, the versions commands (`versions`, `get`, `disable`, `enable`, `delete`,
// `add-config`, one config or a batch), `clear`, `verify`, `rate-limit` and the relay group commands (`groups`, `group-info`,
// `group-delete`) speak the broker's admin operations on its gateway endpoint
// (docs/operations.md), and so do the walkthrough's IEx helpers (`cache-status`,
// `pool-status`, `rl-status`, `rl-global`, `rl-config`, `pushed-services`, `failed-configs`,
// `group`, `call-flow`); `health` reads the admin listeners' /healthz and /readyz. `events` lists the telemetry events and `tail` streams them from a
// running process's admin listener (docs/telemetry.md).
#include "ga_arena.h"
#include "ga_curve.h"
#include "ga_json.h"
#include "ga_mem.h"
#include "ga_proto.h"
#include "ga_telemetry.h"
#include "ga_wire.h"
#include "gw_auth.h"

#include <zmq.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char s_usage_text[] =
    "usage: genapi-ctl COMMAND [ARGS] [--broker tcp://127.0.0.1:5571] [--token ADMIN_TOKEN]\n"
    "\n"
    "The walkthrough's IEx helpers (admin operations on the broker; docs/operations.md):\n"
    "  cache-status [SERVICE]            registered services, functions and versions\n"
    "  pool-status [SERVICE]             per worker: threads, busy, idle, queued, in flight, "
    "circuit\n"
    "  rl-status USER [--service S --request-type R]   USER's rate-limit windows on every "
    "gateway\n"
    "  rl-global [--cluster]             the global rate limits (every gateway's, or the "
    "broker's)\n"
    "  rl-config [--cluster]             the whole rate-limit config with its counters\n"
    "  pushed-services                   each service's last processed push (config_version, "
    "functions)\n"
    "  failed-configs                    configs the broker refused, with the reason\n"
    "  groups | group GROUP              relay groups, one group's members\n"
    "  call-flow SERVICE FUNCTION [VERSION] [--user USER]   would a call pass, which version,\n"
    "                                    where would it go now (nothing is called)\n"
    "  health [--gateway-http 127.0.0.1:9464] [--broker-http 127.0.0.1:9465]   /healthz and "
    "/readyz\n"
    "  events [PREFIX]                   the telemetry events (docs/telemetry.md)\n"
    "  tail [PREFIX] [--gateway-http 127.0.0.1:9464 | --broker-http 127.0.0.1:9465]\n"
    "                                    a running process's events as JSON lines, until "
    "interrupted\n"
    "\n"
    "Registry and operations (admin operations on the broker):\n"
    "  status                            workers, circuits, functions, failed configs, pulls\n"
    "  functions [SERVICE]               every registered config as pushed\n"
    "  versions [SERVICE]                service -> function -> versions\n"
    "  get SERVICE FUNCTION [VERSION]    one config (no VERSION: what a call without one gets)\n"
    "  disable|enable|delete SERVICE FUNCTION VERSION   (0.0.0: the unversioned config)\n"
    "  add-config FILE.json|-|'{...}'|'[...]'   one function config, or a list of them (each\n"
    "                                    added or refused alone)\n"
    "  clear [SERVICE]                   flush every config of SERVICE (of all), then the live\n"
    "                                    workers push their tables again\n"
    "  verify SERVICE CONFIG_VERSION\n"
    "  stop-stream REQUEST_ID\n"
    "  group-info GROUP | group-delete GROUP\n"
    "  rate-limit config\n"
    "  rate-limit status|reset VALUE [--key K] [--service S --request-type R]\n"
    "  rate-limit add --key K --max N --window-ms MS [--service S --request-type R]\n"
    "  rate-limit remove --key K [--service S --request-type R]\n"
    "  rate-limit set CONFIG_JSON\n"
    "             (rate-limit and rl-*: --cluster addresses the broker's cluster-wide limits)\n"
    "\n"
    "Offline:\n"
    "  token --sub USER [--roles a,b] [--ttl SECONDS]\n"
    "        (--config GATEWAY.json | --secret S | --alg RS256|ES256 --key PRIVATE.pem)\n"
    "  keygen --role broker|gateway|worker|operator --out PATH [--name NAME] [--services s1,s2]\n"
    "\n"
    "--broker (or GENAPI_BROKER_ADMIN) is the broker's gateway endpoint; --token (or\n"
    "GENAPI_ADMIN_TOKEN) its admin_token, which every admin operation and tail need.\n"
    "One call through a gateway from a shell: genapi-call SERVICE FUNCTION '{json args}'.\n";

static int
s_usage(void)
{
    fputs(s_usage_text, stderr);
    return 2;
}

// Sends one ADMIN request to the broker; prints the reply as JSON, or with `reply` not NULL
// copies it there (in `a`) instead. Exit status 0 when ok.
static int
s_admin_ex(const char *broker, const char *token, ga_value_t *request, ga_arena_t *a,
           ga_value_t *reply)
{
    if (token) {
        ga_map_put(request, a, "token", ga_str(token));
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    int status = 1;
    ga_buf_t out;
    ga_buf_init(&out);
    ga_proto_msg_t msg;
    ga_proto_msg_init(&msg);
    // CURVE: an operator certificate and the broker's public one, named by the environment
    // (GENAPI_CURVE_SECRET_FILE, GENAPI_CURVE_BROKER_FILE) like the programs' options.
    ga_curve_cert_t own, broker_cert;
    bool curve = false;
    char err[600];
    if (ga_curve_client_load("GENAPI_CURVE_SECRET_FILE", getenv("GENAPI_CURVE_SECRET_FILE"),
                             "GENAPI_CURVE_BROKER_FILE", getenv("GENAPI_CURVE_BROKER_FILE"),
                             "operator", &own, &broker_cert, &curve, err, sizeof err) != GA_OK) {
        fprintf(stderr, "genapi-ctl: %s\n", err);
        goto out;
    }
    if (sock == NULL || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        (curve && ga_curve_client(sock, &own, broker_cert.public_txt) != GA_OK) ||
        zmq_connect(sock, broker) != 0) {
        fprintf(stderr, "genapi-ctl: cannot connect to %s\n", broker);
        goto out;
    }
    // The first send may come before the connection is up: DEALER queues it.
    ga_wire_encode(&out, request);
    if (ga_proto_send(sock, NULL, 0, GA_CMD_ADMIN, &out) != GA_OK) {
        fprintf(stderr, "genapi-ctl: cannot send to %s\n", broker);
        goto out;
    }
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, 5000) <= 0 || ga_proto_recv(sock, false, &msg, a) != GA_OK ||
        msg.cmd != GA_CMD_ADMIN_REPLY) {
        fprintf(stderr, "genapi-ctl: no answer from the broker at %s within 5 s\n", broker);
        goto out;
    }
    if (reply) {
        *reply = ga_value_copy(a, &msg.value);
    } else {
        ga_buf_reset(&out);
        ga_json_encode(&out, &msg.value);
        printf("%.*s\n", (int) out.len, (const char *) out.data);
    }
    const ga_value_t *ok = ga_map_get(&msg.value, "ok");
    status = ok && ok->type == GA_BOOL && ok->u.b ? 0 : 1;
out:
    ga_proto_msg_fini(&msg);
    ga_buf_fini(&out);
    if (sock) {
        zmq_close(sock);
    }
    zmq_ctx_term(ctx);
    return status;
}

static int
s_admin(const char *broker, const char *token, ga_value_t *request, ga_arena_t *a)
{
    return s_admin_ex(broker, token, request, a, NULL);
}

// Prints `v` as one JSON line.
static void
s_print_json(const ga_value_t *v)
{
    ga_buf_t out;
    ga_buf_init(&out);
    ga_json_encode(&out, v);
    printf("%.*s\n", (int) out.len, (const char *) out.data);
    ga_buf_fini(&out);
}

// The admin commands: name, op, operands required and allowed, and the operand fields.
typedef struct {
    const char *command;   // genapi-ctl's word
    const char *op;        // the admin op
    int min;               // operands required
    int max;               // operands allowed
    const char *fields[3]; // the request field each operand fills
} admin_cmd_t;

static const admin_cmd_t s_admin_cmds[] = {
    {"status", "status", 0, 0, {NULL}},
    {"functions", "functions", 0, 1, {"service"}},
    {"stop-stream", "stop_stream", 1, 1, {"request_id"}},
    {"versions", "versions", 0, 1, {"service"}},
    {"get", "get", 2, 3, {"service", "request_type", "version"}},
    {"disable", "disable", 3, 3, {"service", "request_type", "version"}},
    {"enable", "enable", 3, 3, {"service", "request_type", "version"}},
    {"delete", "delete", 3, 3, {"service", "request_type", "version"}},
    {"add-config", "add_config", 1, 1, {"config"}}, // a list: batch_add
    {"clear", "clear", 0, 1, {"service"}},
    {"verify", "verify", 2, 2, {"service", "version"}},
    {"groups", "groups", 0, 0, {NULL}},
    {"group-info", "group_info", 1, 1, {"group_id"}},
    {"group-delete", "group_delete", 1, 1, {"group_id"}},
    // The walkthrough's IEx helpers that are one admin op each.
    {"cache-status", "versions", 0, 1, {"service"}},
    {"pool-status", "pool_status", 0, 1, {"service"}},
    {"pushed-services", "pushed_services", 0, 0, {NULL}},
    {"group", "group_info", 1, 1, {"group_id"}},
};

static const admin_cmd_t *
s_admin_find(const char *command)
{
    for (size_t i = 0; i < sizeof s_admin_cmds / sizeof s_admin_cmds[0]; i++) {
        if (strcmp(command, s_admin_cmds[i].command) == 0) {
            return &s_admin_cmds[i];
        }
    }
    return NULL;
}

static bool s_read_file(const char *path, ga_buf_t *out);

// add-config's operand: JSON text ("{..." or "[..."), "-" (standard input) or a file, decoded
// into `a`: one config map, or a list (a batch).
static bool
s_config_arg(const char *arg, ga_arena_t *a, ga_value_t *out)
{
    ga_buf_t text;
    ga_buf_init(&text);
    bool ok = true;
    if (arg[0] == '{' || arg[0] == '[') {
        ga_buf_append_str(&text, arg);
    } else if (strcmp(arg, "-") == 0) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
            ga_buf_append(&text, chunk, n);
        }
    } else if (!s_read_file(arg, &text)) {
        fprintf(stderr, "genapi-ctl: cannot read %s\n", arg);
        ok = false;
    }
    char why[200] = "";
    if (ok && (ga_json_decode((const char *) text.data, text.len, a, out, why, sizeof why) !=
                   GA_OK ||
               (out->type != GA_MAP && out->type != GA_ARRAY))) {
        fprintf(stderr, "genapi-ctl: %s: not a JSON config map or list of them%s%s\n", arg,
                why[0] ? ": " : "", why);
        ok = false;
    }
    ga_buf_fini(&text);
    return ok;
}

static int
s_admin_cmd(const admin_cmd_t *cmd, int argc, char **argv)
{
    const char *broker = getenv("GENAPI_BROKER_ADMIN");
    const char *token = getenv("GENAPI_ADMIN_TOKEN");
    const char *operands[3];
    int n = 0;
    broker = broker ? broker : "tcp://127.0.0.1:5571";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc) {
            broker = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
            token = argv[++i];
        } else if (n < cmd->max && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            operands[n++] = argv[i];
        } else {
            return s_usage();
        }
    }
    if (n < cmd->min) {
        return s_usage();
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t request = ga_map(a, 5);
    const char *op = cmd->op;
    if (strcmp(op, "get") == 0 && n == 2) {
        op = "get_latest"; // no version: what a call without one gets
    }
    int status = 2;
    for (int i = 0; i < n; i++) {
        ga_value_t v = ga_str(operands[i]);
        const char *field = cmd->fields[i];
        if (strcmp(field, "config") == 0) {
            if (!s_config_arg(operands[i], a, &v)) {
                goto out;
            }
            if (v.type == GA_ARRAY) {
                // A list: the batch operation, each config added or refused alone.
                op = "batch_add";
                field = "configs";
            }
        }
        ga_map_put(&request, a, field, v);
    }
    ga_map_put(&request, a, "op", ga_str(op));
    status = s_admin(broker, token, &request, a);
out:
    ga_arena_destroy(&a);
    return status;
}

// rate-limit: the rate_limit_* admin operations (docs/operations.md, "Rate limits").
static int
s_rate_limit_cmd(int argc, char **argv)
{
    const char *broker = getenv("GENAPI_BROKER_ADMIN");
    const char *token = getenv("GENAPI_ADMIN_TOKEN");
    broker = broker ? broker : "tcp://127.0.0.1:5571";
    if (argc < 3) {
        return s_usage();
    }
    const char *sub = argv[2];
    const char *operand = NULL, *key = NULL, *service = NULL, *request_type = NULL;
    long long max = 0, window = 0;
    bool cluster = false;
    for (int i = 3; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--broker") == 0 && more) {
            broker = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0 && more) {
            token = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0 && more) {
            key = argv[++i];
        } else if (strcmp(argv[i], "--service") == 0 && more) {
            service = argv[++i];
        } else if (strcmp(argv[i], "--request-type") == 0 && more) {
            request_type = argv[++i];
        } else if (strcmp(argv[i], "--max") == 0 && more) {
            max = strtoll(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--window-ms") == 0 && more) {
            window = strtoll(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--cluster") == 0) {
            cluster = true;
        } else if (operand == NULL && (argv[i][0] != '-' || argv[i][1] == '\0')) {
            operand = argv[i];
        } else {
            return s_usage();
        }
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t req = ga_map(a, 8);
    ga_value_t limit = ga_map(a, 5);
    if (key) {
        ga_map_put(&limit, a, "key", ga_str(key));
    }
    if (service) {
        ga_map_put(&limit, a, "service", ga_str(service));
    }
    if (request_type) {
        ga_map_put(&limit, a, "request_type", ga_str(request_type));
    }
    int status = -1;
    if (strcmp(sub, "config") == 0 && operand == NULL) {
        ga_map_put(&req, a, "op", ga_str("rate_limit_config"));
    } else if ((strcmp(sub, "status") == 0 || strcmp(sub, "reset") == 0) && operand) {
        ga_map_put(&req, a, "op", ga_str(sub[0] == 's' ? "rate_limit_status" : "rate_limit_reset"));
        ga_map_put(&req, a, "value", ga_str(operand));
        for (uint32_t i = 0; i < limit.len; i++) {
            ga_map_put(&req, a, limit.u.pairs[i].key, limit.u.pairs[i].value);
        }
    } else if (strcmp(sub, "add") == 0 && operand == NULL && key) {
        ga_map_put(&limit, a, "max_requests", ga_int(max));
        ga_map_put(&limit, a, "window_ms", ga_int(window));
        ga_map_put(&req, a, "op", ga_str("rate_limit_add"));
        ga_map_put(&req, a, "limit", limit);
    } else if (strcmp(sub, "remove") == 0 && operand == NULL && key) {
        ga_map_put(&req, a, "op", ga_str("rate_limit_remove"));
        ga_map_put(&req, a, "limit", limit);
    } else if (strcmp(sub, "set") == 0 && operand) {
        ga_value_t cfg;
        char why[200];
        if (ga_json_decode(operand, strlen(operand), a, &cfg, why, sizeof why) != GA_OK) {
            fprintf(stderr, "genapi-ctl: rate-limit set: not JSON (%s)\n", why);
            status = 2;
        }
        ga_map_put(&req, a, "op", ga_str("rate_limit_set"));
        ga_map_put(&req, a, "config", cfg);
    } else {
        status = s_usage();
    }
    if (status < 0) {
        if (cluster) {
            ga_map_put(&req, a, "target", ga_str("broker"));
        }
        status = s_admin(broker, token, &req, a);
    }
    ga_arena_destroy(&a);
    return status;
}

// Reads a whole file into `out`; false when it cannot be read.
static bool
s_read_file(const char *path, ga_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        ga_buf_append(out, chunk, n);
    }
    GA_IGNORE(fclose(f)); // read-only
    return true;
}

// The jwt_secret (and jwt_alg) of a gateway config file.
static bool
s_secret_from_config(const char *path, ga_buf_t *key, char *alg, size_t alglen)
{
    ga_buf_t text;
    ga_buf_init(&text);
    bool ok = s_read_file(path, &text);
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t doc;
    if (ok && ga_json_decode((const char *) text.data, text.len, a, &doc, NULL, 0) == GA_OK) {
        const char *secret = ga_map_get_str(&doc, "jwt_secret");
        const char *cfg_alg = ga_map_get_str(&doc, "jwt_alg");
        ok = secret != NULL && secret[0] != '\0';
        if (ok) {
            ga_buf_append_str(key, secret);
            snprintf(alg, alglen, "%s", cfg_alg ? cfg_alg : "HS256");
        }
    } else {
        ok = false;
    }
    ga_arena_destroy(&a);
    ga_buf_fini(&text);
    return ok;
}

static int
s_token(int argc, char **argv)
{
    const char *sub = NULL;
    const char *roles = "";
    const char *config = NULL;
    const char *secret = NULL;
    const char *key_file = NULL;
    char alg[16] = "HS256";
    long ttl = 3600;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sub") == 0) {
            sub = argv[i + 1];
        } else if (strcmp(argv[i], "--roles") == 0) {
            roles = argv[i + 1];
        } else if (strcmp(argv[i], "--ttl") == 0) {
            ttl = strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--config") == 0) {
            config = argv[i + 1];
        } else if (strcmp(argv[i], "--secret") == 0) {
            secret = argv[i + 1];
        } else if (strcmp(argv[i], "--key") == 0) {
            key_file = argv[i + 1];
        } else if (strcmp(argv[i], "--alg") == 0) {
            snprintf(alg, sizeof alg, "%s", argv[i + 1]);
        } else {
            return s_usage();
        }
    }
    if (sub == NULL || sub[0] == '\0' || (argc % 2) != 0) {
        return s_usage();
    }
    ga_buf_t key;
    ga_buf_init(&key);
    bool have_key = (secret && (ga_buf_append_str(&key, secret), true)) ||
                    (config && s_secret_from_config(config, &key, alg, sizeof alg)) ||
                    (key_file && s_read_file(key_file, &key));
    if (!have_key || key.len == 0) {
        fprintf(stderr, "genapi-ctl: no signing key (give --config, --secret or --key)\n");
        ga_buf_fini(&key);
        return 2;
    }
    // Roles: split the comma-separated list in place.
    char *list = ga_strdup(roles);
    const char *role_v[32];
    size_t n_roles = 0;
    for (char *save = NULL, *r = strtok_r(list, ",", &save); r && n_roles < 32;
         r = strtok_r(NULL, ",", &save)) {
        role_v[n_roles++] = r;
    }
    char *token = NULL;
    int status = 0;
    if (gw_auth_sign(alg, key.data, key.len, sub, role_v, n_roles, (int64_t) time(NULL) + ttl,
                     &token) != GA_OK) {
        fprintf(stderr, "genapi-ctl: cannot sign with %s and this key\n", alg);
        status = 1;
    } else {
        printf("%s\n", token);
    }
    ga_free(token);
    ga_free(list);
    ga_buf_fini(&key);
    return status;
}

// keygen: a CurveZMQ key pair as two certificate files (docs/security.md).
static int
s_keygen(int argc, char **argv)
{
    const char *role = NULL;
    const char *out = NULL;
    const char *name = NULL;
    const char *services = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--role") == 0) {
            role = argv[i + 1];
        } else if (strcmp(argv[i], "--out") == 0) {
            out = argv[i + 1];
        } else if (strcmp(argv[i], "--name") == 0) {
            name = argv[i + 1];
        } else if (strcmp(argv[i], "--services") == 0) {
            services = argv[i + 1];
        } else {
            return s_usage();
        }
    }
    if (role == NULL || out == NULL || (argc % 2) != 0) {
        return s_usage();
    }
    if (services && strcmp(role, "worker") != 0) {
        fprintf(stderr, "genapi-ctl: --services applies to worker keys only\n");
        return 2;
    }
    char err[512];
    if (ga_curve_generate(out, role, name, services, err, sizeof err) != GA_OK) {
        fprintf(stderr, "genapi-ctl: %s\n", err);
        return 1;
    }
    printf("%s (public, give it to the broker) and %s_secret (keep it here)\n", out, out);
    return 0;
}

// Connects to "host:port" (an admin HTTP listener) with `timeout_ms` on connect, reads and
// writes. -1, said on stderr, when it cannot.
static int
s_http_connect(const char *address, int timeout_ms)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || (size_t) (colon - address) >= sizeof host) {
        fprintf(stderr, "genapi-ctl: %s: must be host:port\n", address);
        return -1;
    }
    memcpy(host, address, (size_t) (colon - address));
    host[colon - address] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
        fprintf(stderr, "genapi-ctl: %s: cannot resolve\n", address);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "genapi-ctl: cannot connect to %s: %s\n", address, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

// Sends "GET path" (with the bearer token when not NULL) and reads the response head into
// `head` (NUL-terminated) and whatever body came with it into `body`. Returns the status, or
// -1 (said on stderr).
static int
s_http_request(int fd, const char *address, const char *path, const char *token,
               ga_buf_t *head, ga_buf_t *body)
{
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n",
                     path, address, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (n <= 0 || (size_t) n >= sizeof req || send(fd, req, (size_t) n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "genapi-ctl: cannot send to %s\n", address);
        return -1;
    }
    for (;;) {
        char chunk[4096];
        ssize_t got = recv(fd, chunk, sizeof chunk, 0);
        if (got <= 0) {
            fprintf(stderr, "genapi-ctl: %s closed the connection before answering%s\n",
                    address, got < 0 && errno == EAGAIN ? " (timed out)" : "");
            return -1;
        }
        ga_buf_append(head, chunk, (size_t) got);
        ga_buf_append_char(head, '\0');
        head->len--;
        char *end = strstr((char *) head->data, "\r\n\r\n");
        if (end) {
            size_t at = (size_t) (end - (char *) head->data) + 4;
            ga_buf_append(body, head->data + at, head->len - at);
            head->len = at;
            head->data[at] = '\0';
            break;
        }
        if (head->len > 16384) {
            fprintf(stderr, "genapi-ctl: %s: response head too long\n", address);
            return -1;
        }
    }
    int status = 0;
    if (sscanf((const char *) head->data, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "genapi-ctl: %s: not an HTTP response\n", address);
        return -1;
    }
    return status;
}

// tail [PREFIX]: a running gateway's (or broker's) telemetry events as JSON lines, from its
// admin listener's /events (docs/telemetry.md, "Tailing a running process"), until interrupted
// or the process closes the stream.
static int
s_tail(int argc, char **argv)
{
    const char *address = getenv("GENAPI_GATEWAY_HTTP");
    const char *token = getenv("GENAPI_ADMIN_TOKEN");
    const char *prefix = NULL;
    address = address ? address : "127.0.0.1:9464";
    for (int i = 2; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--gateway-http") == 0 && more) {
            address = argv[++i];
        } else if (strcmp(argv[i], "--broker-http") == 0 && more) {
            address = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0 && more) {
            token = argv[++i];
        } else if (prefix == NULL && argv[i][0] != '-') {
            prefix = argv[i];
        } else {
            return s_usage();
        }
    }
    char path[512] = "/events";
    if (prefix) {
        if (strspn(prefix, "abcdefghijklmnopqrstuvwxyz_.*") != strlen(prefix) ||
            strlen(prefix) > 200) {
            fprintf(stderr, "genapi-ctl tail: %s: not an event name prefix (genapi-ctl events "
                            "lists them)\n",
                    prefix);
            return 2;
        }
        snprintf(path, sizeof path, "/events?prefix=%s", prefix);
    }
    int fd = s_http_connect(address, 5000);
    if (fd < 0) {
        return 1;
    }
    ga_buf_t head, body;
    ga_buf_init(&head);
    ga_buf_init(&body);
    int rc = 1;
    int status = s_http_request(fd, address, path, token, &head, &body);
    if (status != 200) {
        // The refusal's body follows (Content-Length, then the close).
        char chunk[4096];
        ssize_t got;
        while (status > 0 && (got = recv(fd, chunk, sizeof chunk, 0)) > 0) {
            ga_buf_append(&body, chunk, (size_t) got);
        }
        if (status > 0) {
            fprintf(stderr, "genapi-ctl tail: %s answered %d: %.*s", address, status,
                    (int) body.len, (const char *) body.data);
        }
        goto out;
    }
    // Streaming: no read timeout from now on; every line goes out as it comes.
    struct timeval none = {0};
    GA_IGNORE(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none)); // best effort
    fwrite(body.data, 1, body.len, stdout);
    fflush(stdout);
    for (;;) {
        char chunk[8192];
        ssize_t got = recv(fd, chunk, sizeof chunk, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        fwrite(chunk, 1, (size_t) got, stdout);
        if (fflush(stdout) != 0) {
            break; // our reader left (a closed pipe)
        }
    }
    fprintf(stderr, "genapi-ctl tail: %s closed the stream\n", address);
out:
    ga_buf_fini(&head);
    ga_buf_fini(&body);
    close(fd);
    return rc;
}

// Lists the telemetry events (those under PREFIX when given): name, measurements, and whether
// this build emits it yet.
static int
s_events(int argc, char **argv)
{
    const char *prefix = argc >= 3 ? argv[2] : "";
    size_t n = strlen(prefix);
    int shown = 0;
    for (int e = 0; e < GA_EV_COUNT; e++) {
        const char *name = ga_telemetry_name((ga_event_t) e);
        if (strncmp(name, prefix, n) != 0) {
            continue;
        }
        unsigned m = ga_telemetry_measures((ga_event_t) e);
        const char *measure =
            m & GA_TM_M_DURATION ? "duration_us" : m & GA_TM_M_COUNT ? "count" : "-";
        if (ga_telemetry_is_emitted((ga_event_t) e)) {
            printf("%-36s %s\n", name, measure);
        } else {
            printf("%-36s %-12s (not emitted yet: feature not built)\n", name, measure);
        }
        shown++;
    }
    if (shown == 0) {
        fprintf(stderr, "genapi-ctl events: no event starts with %s\n", prefix);
        return 1;
    }
    return 0;
}

// GET `path` from an admin listener: the status (-1 when unreachable, said in `body`) and the
// body (trimmed of its last newline).
static int
s_http_get(const char *address, const char *path, ga_buf_t *body)
{
    int fd = s_http_connect(address, 5000);
    if (fd < 0) {
        ga_buf_append_str(body, "cannot connect");
        return -1;
    }
    ga_buf_t head;
    ga_buf_init(&head);
    int status = s_http_request(fd, address, path, NULL, &head, body);
    char chunk[4096];
    ssize_t got;
    while (status > 0 && (got = recv(fd, chunk, sizeof chunk, 0)) > 0) {
        ga_buf_append(body, chunk, (size_t) got);
    }
    if (status < 0) {
        ga_buf_reset(body);
        ga_buf_append_str(body, "no HTTP answer");
    }
    while (body->len > 0 && (body->data[body->len - 1] == '\n' || body->data[body->len - 1] == '\r')) {
        body->len--;
    }
    ga_buf_fini(&head);
    close(fd);
    return status;
}

// health: /healthz and /readyz of the gateway and the broker (their admin listeners). Exit 0
// when all four answer 200.
static int
s_health(int argc, char **argv)
{
    const char *gw = getenv("GENAPI_GATEWAY_HTTP");
    const char *bk = getenv("GENAPI_BROKER_HTTP");
    gw = gw ? gw : "127.0.0.1:9464";
    bk = bk ? bk : "127.0.0.1:9465";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--gateway-http") == 0 && i + 1 < argc) {
            gw = argv[++i];
        } else if (strcmp(argv[i], "--broker-http") == 0 && i + 1 < argc) {
            bk = argv[++i];
        } else {
            return s_usage();
        }
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t out = ga_map(a, 3);
    bool all = true;
    const char *names[2] = {"gateway", "broker"};
    const char *addresses[2] = {gw, bk};
    for (int p = 0; p < 2; p++) {
        ga_value_t proc = ga_map(a, 3);
        ga_map_put(&proc, a, "address", ga_str(addresses[p]));
        const char *paths[2] = {"/healthz", "/readyz"};
        for (int k = 0; k < 2; k++) {
            ga_buf_t body;
            ga_buf_init(&body);
            int status = s_http_get(addresses[p], paths[k], &body);
            ga_value_t r = ga_map(a, 2);
            ga_map_put(&r, a, "status", status > 0 ? ga_int(status) : ga_nil());
            ga_map_put(&r, a, "body", ga_str_dup(a, (const char *) body.data, body.len));
            ga_map_put(&proc, a, paths[k] + 1, r);
            all = all && status == 200;
            ga_buf_fini(&body);
        }
        ga_map_put(&out, a, names[p], proc);
    }
    ga_map_put(&out, a, "ok", ga_bool(all));
    s_print_json(&out);
    ga_arena_destroy(&a);
    return all ? 0 : 1;
}

// The admin endpoint and token options shared by the commands below; true when argv[*i] was
// one (and *i moved past its value).
static bool
s_admin_opt(int argc, char **argv, int *i, const char **broker, const char **token)
{
    if (*i + 1 < argc && strcmp(argv[*i], "--broker") == 0) {
        *broker = argv[++*i];
        return true;
    }
    if (*i + 1 < argc && strcmp(argv[*i], "--token") == 0) {
        *token = argv[++*i];
        return true;
    }
    return false;
}

// rl-status USER, rl-config: thin names over rate-limit status USER --key user_id and
// rate-limit config (the walkthrough's rl_status, rl_config).
static int
s_rl_alias(int argc, char **argv)
{
    bool status = strcmp(argv[1], "rl-status") == 0;
    if (status && (argc < 3 || argv[2][0] == '-')) {
        return s_usage();
    }
    char *args[64];
    int n = 0;
    args[n++] = argv[0];
    args[n++] = (char *) "rate-limit";
    args[n++] = (char *) (status ? "status" : "config");
    if (status) {
        args[n++] = argv[2];
        args[n++] = (char *) "--key";
        args[n++] = (char *) "user_id";
    }
    for (int i = status ? 3 : 2; i < argc && n < 63; i++) {
        args[n++] = argv[i];
    }
    args[n] = NULL;
    return s_rate_limit_cmd(n, args);
}

// rl-global [--cluster]: the global limits only, of every gateway (or of the broker).
static int
s_rl_global(int argc, char **argv)
{
    const char *broker = getenv("GENAPI_BROKER_ADMIN");
    const char *token = getenv("GENAPI_ADMIN_TOKEN");
    broker = broker ? broker : "tcp://127.0.0.1:5571";
    bool cluster = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--cluster") == 0) {
            cluster = true;
        } else if (!s_admin_opt(argc, argv, &i, &broker, &token)) {
            return s_usage();
        }
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t req = ga_map(a, 3);
    ga_map_put(&req, a, "op", ga_str("rate_limit_config"));
    if (cluster) {
        ga_map_put(&req, a, "target", ga_str("broker"));
    }
    ga_value_t reply = ga_nil();
    int status = s_admin_ex(broker, token, &req, a, &reply);
    ga_value_t out = ga_map(a, 3);
    const ga_value_t *ok = ga_map_get(&reply, "ok");
    ga_map_put(&out, a, "ok", ok ? *ok : ga_bool(false));
    const ga_value_t *gws = ga_map_get(&reply, "gateways");
    if (status == 0 && cluster) {
        const ga_value_t *g = ga_map_get(ga_map_get(&reply, "config"), "global_limits");
        ga_map_put(&out, a, "global_limits", g ? *g : ga_array(a, 0));
    } else if (status == 0 && gws && gws->type == GA_ARRAY) {
        ga_value_t list = ga_array(a, gws->len + 1);
        for (uint32_t i = 0; i < gws->len; i++) {
            ga_value_t m = ga_map(a, 2);
            const char *name = ga_map_get_str(&gws->u.items[i], "gateway");
            const ga_value_t *g =
                ga_map_get(ga_map_get(&gws->u.items[i], "config"), "global_limits");
            ga_map_put(&m, a, "gateway", ga_str(name ? name : "?"));
            ga_map_put(&m, a, "global_limits", g ? *g : ga_array(a, 0));
            ga_array_push(&list, a, m);
        }
        ga_map_put(&out, a, "gateways", list);
        const ga_value_t *missing = ga_map_get(&reply, "missing");
        ga_map_put(&out, a, "missing", missing ? *missing : ga_int(0));
    } else {
        out = reply; // the refusal as it came
    }
    s_print_json(&out);
    ga_arena_destroy(&a);
    return status;
}

// failed-configs: the failed-configs list of `status` (the configs the broker refused).
static int
s_failed_configs(int argc, char **argv)
{
    const char *broker = getenv("GENAPI_BROKER_ADMIN");
    const char *token = getenv("GENAPI_ADMIN_TOKEN");
    broker = broker ? broker : "tcp://127.0.0.1:5571";
    for (int i = 2; i < argc; i++) {
        if (!s_admin_opt(argc, argv, &i, &broker, &token)) {
            return s_usage();
        }
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t req = ga_map(a, 2);
    ga_map_put(&req, a, "op", ga_str("status"));
    ga_value_t reply = ga_nil();
    int status = s_admin_ex(broker, token, &req, a, &reply);
    if (status == 0) {
        ga_value_t out = ga_map(a, 2);
        const ga_value_t *failed = ga_map_get(&reply, "failed_configs");
        ga_map_put(&out, a, "ok", ga_bool(true));
        ga_map_put(&out, a, "failed_configs", failed ? *failed : ga_array(a, 0));
        reply = out;
    }
    s_print_json(&reply);
    ga_arena_destroy(&a);
    return status;
}

// Whether a rate limit (a map with key, service?, request_type?) applies to calls of
// service.request_type: a global one always, an API one when it names that function.
static bool
s_limit_applies(const ga_value_t *limit, const char *service, const char *request_type)
{
    const char *s = ga_map_get_str(limit, "service");
    const char *r = ga_map_get_str(limit, "request_type");
    return s == NULL || (strcmp(s, service) == 0 && (r == NULL || strcmp(r, request_type) == 0));
}

// call-flow SERVICE FUNCTION [VERSION] [--user USER]: the broker's call_flow (would it pass,
// which version, which candidates and pick), then the rate limits that apply to the function
// on every gateway (with --user, USER's windows: a limit with nothing remaining refuses).
// Nothing is called. Exit 0 when it would pass.
static int
s_call_flow(int argc, char **argv)
{
    const char *broker = getenv("GENAPI_BROKER_ADMIN");
    const char *token = getenv("GENAPI_ADMIN_TOKEN");
    broker = broker ? broker : "tcp://127.0.0.1:5571";
    const char *operands[3] = {NULL, NULL, NULL};
    const char *user = NULL;
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (s_admin_opt(argc, argv, &i, &broker, &token)) {
            continue;
        }
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            user = argv[++i];
        } else if (n < 3 && argv[i][0] != '-') {
            operands[n++] = argv[i];
        } else {
            return s_usage();
        }
    }
    if (n < 2) {
        return s_usage();
    }
    ga_arena_t *a = ga_arena_new(8192);
    ga_value_t req = ga_map(a, 5);
    ga_map_put(&req, a, "op", ga_str("call_flow"));
    ga_map_put(&req, a, "service", ga_str(operands[0]));
    ga_map_put(&req, a, "request_type", ga_str(operands[1]));
    if (operands[2]) {
        ga_map_put(&req, a, "version", ga_str(operands[2]));
    }
    ga_value_t flow = ga_nil();
    int status = s_admin_ex(broker, token, &req, a, &flow);
    if (status != 0) {
        s_print_json(&flow);
        ga_arena_destroy(&a);
        return 1;
    }
    // The rate limits on every gateway that apply to this function.
    ga_value_t rl_req = ga_map(a, 2);
    ga_map_put(&rl_req, a, "op", ga_str("rate_limit_config"));
    ga_value_t rl = ga_nil();
    ga_value_t limits = ga_map(a, 4);
    if (s_admin_ex(broker, token, &rl_req, a, &rl) != 0) {
        const char *why = ga_map_get_str(&rl, "error");
        ga_map_put(&limits, a, "error", ga_str(why ? why : "no answer"));
    } else {
        const ga_value_t *gws = ga_map_get(&rl, "gateways");
        ga_value_t list = ga_array(a, 2);
        for (uint32_t i = 0; gws && gws->type == GA_ARRAY && i < gws->len; i++) {
            const ga_value_t *cfg = ga_map_get(&gws->u.items[i], "config");
            const ga_value_t *en = ga_map_get(cfg, "enabled");
            ga_value_t m = ga_map(a, 3);
            const char *name = ga_map_get_str(&gws->u.items[i], "gateway");
            ga_map_put(&m, a, "gateway", ga_str(name ? name : "?"));
            ga_map_put(&m, a, "enabled", en ? *en : ga_bool(false));
            ga_value_t applying = ga_array(a, 2);
            const char *kinds[2] = {"global_limits", "api_limits"};
            for (int k = 0; k < 2; k++) {
                const ga_value_t *ls = ga_map_get(cfg, kinds[k]);
                for (uint32_t j = 0; ls && ls->type == GA_ARRAY && j < ls->len; j++) {
                    if (s_limit_applies(&ls->u.items[j], operands[0], operands[1])) {
                        ga_array_push(&applying, a, ls->u.items[j]);
                    }
                }
            }
            ga_map_put(&m, a, "limits", applying);
            ga_array_push(&list, a, m);
        }
        ga_map_put(&limits, a, "gateways", list);
    }
    if (user && !ga_map_get(&limits, "error")) {
        ga_value_t st_req = ga_map(a, 5);
        ga_map_put(&st_req, a, "op", ga_str("rate_limit_status"));
        ga_map_put(&st_req, a, "value", ga_str(user));
        ga_map_put(&st_req, a, "key", ga_str("user_id"));
        ga_map_put(&st_req, a, "service", ga_str(operands[0]));
        ga_map_put(&st_req, a, "request_type", ga_str(operands[1]));
        ga_value_t st = ga_nil();
        if (s_admin_ex(broker, token, &st_req, a, &st) == 0) {
            const ga_value_t *gws = ga_map_get(&st, "gateways");
            ga_map_put(&limits, a, "user", ga_str(user));
            ga_map_put(&limits, a, "windows", gws ? *gws : ga_array(a, 0));
            for (uint32_t i = 0; gws && gws->type == GA_ARRAY && i < gws->len; i++) {
                const ga_value_t *ls = ga_map_get(&gws->u.items[i], "limits");
                for (uint32_t j = 0; ls && ls->type == GA_ARRAY && j < ls->len; j++) {
                    if (ga_map_get_int(&ls->u.items[j], "remaining", 1) <= 0) {
                        ga_value_t *pass = (ga_value_t *) ga_map_get(&flow, "would_pass");
                        if (pass) {
                            *pass = ga_bool(false); // the broker's verdict, overruled
                        }
                        if (ga_map_get(&flow, "refusal") == NULL) {
                            ga_map_put(&flow, a, "refusal", ga_str("Rate limit exceeded"));
                        }
                    }
                }
            }
        } else {
            const char *why = ga_map_get_str(&st, "error");
            ga_map_put(&limits, a, "user_error", ga_str(why ? why : "no answer"));
        }
    }
    ga_map_put(&flow, a, "rate_limits", limits);
    s_print_json(&flow);
    const ga_value_t *pass = ga_map_get(&flow, "would_pass");
    status = pass && pass->type == GA_BOOL && pass->u.b ? 0 : 1;
    ga_arena_destroy(&a);
    return status;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        fputs(s_usage_text, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "health") == 0) {
        return s_health(argc, argv);
    }
    if (argc >= 2 && (strcmp(argv[1], "rl-status") == 0 || strcmp(argv[1], "rl-config") == 0)) {
        return s_rl_alias(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "rl-global") == 0) {
        return s_rl_global(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "failed-configs") == 0) {
        return s_failed_configs(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "call-flow") == 0) {
        return s_call_flow(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "events") == 0) {
        return s_events(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "tail") == 0) {
        return s_tail(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0) {
        return s_keygen(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "token") == 0) {
        return s_token(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "rate-limit") == 0) {
        return s_rate_limit_cmd(argc, argv);
    }
    const admin_cmd_t *cmd = argc >= 2 ? s_admin_find(argv[1]) : NULL;
    if (cmd) {
        return s_admin_cmd(cmd, argc, argv);
    }
    return s_usage();
}
