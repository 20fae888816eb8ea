// SPDX-License-Identifier: MIT
// CurveZMQ certificates and socket options (see ga_curve.h).
#include "ga_curve.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool
s_role_valid(const char *role)
{
    return role && (strcmp(role, "broker") == 0 || strcmp(role, "gateway") == 0 ||
                    strcmp(role, "worker") == 0 || strcmp(role, "operator") == 0);
}

static void
s_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

ga_err_t
ga_curve_load(const char *path, bool need_secret, ga_curve_cert_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char secret_path[4096];
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    struct stat st;
    bool have_secret = stat(secret_path, &st) == 0;
    if (need_secret && !have_secret) {
        snprintf(err, errlen, "%s: no such secret certificate (make one with genapi-ctl keygen)",
                 secret_path);
        return GA_ECONFIG;
    }
    if (stat(path, &st) != 0 && !have_secret) {
        snprintf(err, errlen, "%s: no such certificate (make one with genapi-ctl keygen)", path);
        return GA_ECONFIG;
    }
    // zcert_load reads PATH_secret when it exists (both keys), else PATH (public key only).
    zcert_t *cert = zcert_load(path);
    if (cert == NULL) {
        snprintf(err, errlen, "%s: not a readable certificate", path);
        return GA_ECONFIG;
    }
    const char *role = zcert_meta(cert, "role");
    if (!s_role_valid(role)) {
        snprintf(err, errlen, "%s: role must be broker, gateway, worker or operator (got %s)",
                 path, role ? role : "none");
        zcert_destroy(&cert);
        return GA_ECONFIG;
    }
    s_copy(out->public_txt, sizeof out->public_txt, zcert_public_txt(cert));
    if (have_secret) {
        s_copy(out->secret_txt, sizeof out->secret_txt, zcert_secret_txt(cert));
    }
    s_copy(out->role, sizeof out->role, role);
    const char *name = zcert_meta(cert, "name");
    if (name == NULL || name[0] == '\0') {
        const char *slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
    }
    s_copy(out->name, sizeof out->name, name);
    s_copy(out->services, sizeof out->services, zcert_meta(cert, "services"));
    zcert_destroy(&cert);
    if (need_secret && strspn(out->secret_txt, "0") == strlen(out->secret_txt)) {
        snprintf(err, errlen, "%s: the certificate holds no secret key", secret_path);
        return GA_ECONFIG;
    }
    return GA_OK;
}

ga_err_t
ga_curve_generate(const char *path, const char *role, const char *name, const char *services,
                  char *err, size_t errlen)
{
    if (!s_role_valid(role)) {
        snprintf(err, errlen, "role must be broker, gateway, worker or operator");
        return GA_ECONFIG;
    }
    zcert_t *cert = zcert_new();
    if (cert == NULL) {
        snprintf(err, errlen, "cannot make a key pair (libzmq without CURVE?)");
        return GA_EIO;
    }
    zcert_set_meta(cert, "role", "%s", role);
    if (name && name[0]) {
        zcert_set_meta(cert, "name", "%s", name);
    }
    if (services && services[0]) {
        zcert_set_meta(cert, "services", "%s", services);
    }
    // zcert_save writes the secret file with mode 0600.
    int rc = zcert_save(cert, path);
    zcert_destroy(&cert);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot write the certificate files", path);
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
ga_curve_server(void *sock, const ga_curve_cert_t *own, const char *domain)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->secret_txt, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0) {
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
ga_curve_client(void *sock, const ga_curve_cert_t *own, const char *server_public)
{
    if (strlen(server_public) != 40 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, own->public_txt, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->secret_txt, 40) != 0) {
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
ga_curve_client_load(const char *own_option, const char *own_path, const char *broker_option,
                     const char *broker_path, const char *role, ga_curve_cert_t *own,
                     ga_curve_cert_t *broker, bool *on, char *err, size_t errlen)
{
    bool have_own = own_path && own_path[0];
    bool have_broker = broker_path && broker_path[0];
    *on = false;
    if (!have_own && !have_broker) {
        return GA_OK;
    }
    if (!have_own || !have_broker) {
        snprintf(err, errlen, "%s: CURVE needs both %s and %s",
                 have_own ? broker_option : own_option, own_option, broker_option);
        return GA_ECONFIG;
    }
    char why[512];
    if (ga_curve_load(own_path, true, own, why, sizeof why) != GA_OK) {
        snprintf(err, errlen, "%s: %s", own_option, why);
        return GA_ECONFIG;
    }
    if (strcmp(own->role, role) != 0) {
        snprintf(err, errlen, "%s: %s is a %s key, not a %s key", own_option, own_path,
                 own->role, role);
        return GA_ECONFIG;
    }
    if (ga_curve_load(broker_path, false, broker, why, sizeof why) != GA_OK) {
        snprintf(err, errlen, "%s: %s", broker_option, why);
        return GA_ECONFIG;
    }
    if (strcmp(broker->role, "broker") != 0) {
        snprintf(err, errlen, "%s: %s is a %s key, not the broker's", broker_option, broker_path,
                 broker->role);
        return GA_ECONFIG;
    }
    *on = true;
    return GA_OK;
}

bool
ga_curve_allows_service(const char *services, const char *service)
{
    return ga_curve_list_has(services, service, true);
}

bool
ga_curve_list_has(const char *list, const char *item, bool wildcard)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *end = p;
        while (*end && *end != ',') {
            end++;
        }
        const char *last = end;
        while (last > p && last[-1] == ' ') {
            last--;
        }
        size_t len = (size_t) (last - p);
        if ((wildcard && len == 1 && *p == '*') || (len == n && n && memcmp(p, item, n) == 0)) {
            return true;
        }
        p = end;
    }
    return false;
}
