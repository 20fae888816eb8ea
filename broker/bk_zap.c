// SPDX-License-Identifier: MIT
// The broker's ZAP handler (see bk_zap.h).
#include "bk_zap.h"

#include "ga_log.h"
#include "ga_mem.h"

#include <czmq.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct bk_zap_t {
    zhash_t *keys;   // Z85 public key -> ga_curve_cert_t (owned)
    void *rep;       // REP bound to inproc://zeromq.zap.01
    size_t accepted; // requests answered 200
    size_t refused;  // requests answered 400
};

bk_zap_t *
bk_zap_new(void)
{
    bk_zap_t *self = ga_calloc(1, sizeof *self);
    self->keys = zhash_new();
    return self;
}

void
bk_zap_destroy(bk_zap_t **self_p)
{
    bk_zap_t *self = *self_p;
    if (self == NULL) {
        return;
    }
    zhash_destroy(&self->keys);
    if (self->rep) {
        zmq_close(self->rep);
    }
    ga_free(self);
    *self_p = NULL;
}

static bool
s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

ga_err_t
bk_zap_load_dir(bk_zap_t *self, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "curve_peers_dir: %s: cannot open the directory", dir);
        return GA_ECONFIG;
    }
    ga_err_t rc = GA_OK;
    struct dirent *e;
    while (rc == GA_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || s_ends_with(e->d_name, "_secret")) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        ga_curve_cert_t cert;
        char why[512];
        // Only the public half is trusted from here, even if a secret lies beside it.
        if (ga_curve_load(path, false, &cert, why, sizeof why) != GA_OK) {
            snprintf(err, errlen, "curve_peers_dir: %s", why);
            rc = GA_ECONFIG;
            break;
        }
        memset(cert.secret_txt, 0, sizeof cert.secret_txt);
        if (strcmp(cert.role, "broker") == 0) {
            continue;
        }
        ga_curve_cert_t *copy = ga_malloc(sizeof *copy);
        *copy = cert;
        zhash_update(self->keys, copy->public_txt, copy);
        zhash_freefn(self->keys, copy->public_txt, ga_free);
    }
    closedir(d);
    return rc;
}

ga_err_t
bk_zap_bind(bk_zap_t *self, void *zctx)
{
    self->rep = zmq_socket(zctx, ZMQ_REP);
    int zero = 0;
    if (self->rep == NULL || zmq_setsockopt(self->rep, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(self->rep, "inproc://zeromq.zap.01") != 0) {
        GA_ERR("cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        return GA_EIO;
    }
    return GA_OK;
}

void *
bk_zap_socket(const bk_zap_t *self)
{
    return self->rep;
}

// Which roles a socket (its ZAP domain) accepts.
static bool
s_role_accepted(const char *domain, const char *role)
{
    if (strcmp(domain, BK_ZAP_WORKERS) == 0 || strcmp(domain, BK_ZAP_STREAMS_IN) == 0) {
        return strcmp(role, "worker") == 0;
    }
    if (strcmp(domain, BK_ZAP_GATEWAYS) == 0 || strcmp(domain, BK_ZAP_STREAMS_OUT) == 0) {
        return strcmp(role, "gateway") == 0 || strcmp(role, "operator") == 0;
    }
    return false;
}

// One request: [version, request id, domain, address, routing id, mechanism, credentials...].
static void
s_answer(bk_zap_t *self, zmsg_t *req)
{
    char *version = zmsg_popstr(req);
    char *request_id = zmsg_popstr(req);
    char *domain = zmsg_popstr(req);
    char *address = zmsg_popstr(req);
    zframe_t *routing = zmsg_pop(req);
    char *mechanism = zmsg_popstr(req);
    zframe_t *key = zmsg_pop(req);
    const char *status = "400";
    const char *text = "unknown key";
    char user[GA_CURVE_KEY_TXT] = "";
    const ga_curve_cert_t *cert = NULL;
    if (version && strcmp(version, "1.0") == 0 && mechanism && strcmp(mechanism, "CURVE") == 0 &&
        domain && key && zframe_size(key) == 32) {
        zmq_z85_encode(user, zframe_data(key), 32);
        cert = zhash_lookup(self->keys, user);
        if (cert && s_role_accepted(domain, cert->role)) {
            status = "200";
            text = "OK";
        } else if (cert) {
            text = "role not accepted on this socket";
        }
    } else {
        text = "CURVE required";
    }
    if (status[0] == '2') {
        self->accepted++;
        GA_INFO("curve: %s %s (%s) accepted on %s from %s", cert->role, cert->name, user, domain,
                address ? address : "?");
    } else {
        self->refused++;
        GA_WARN("curve: %s refused on %s from %s: %s", user[0] ? user : "a peer",
                domain ? domain : "?", address ? address : "?", text);
        user[0] = '\0';
    }
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_addstr(reply, request_id ? request_id : "");
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, user);
    zmsg_addmem(reply, "", 0);
    if (zmsg_send(&reply, self->rep) != 0) {
        zmsg_destroy(&reply);
    }
    zstr_free(&version);
    zstr_free(&request_id);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&mechanism);
    zframe_destroy(&routing);
    zframe_destroy(&key);
}

void
bk_zap_process(bk_zap_t *self)
{
    for (int budget = 64; budget > 0; budget--) {
        zmq_pollitem_t item = {.socket = self->rep, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 0) <= 0) {
            return;
        }
        zmsg_t *req = zmsg_recv(self->rep);
        if (req == NULL) {
            return;
        }
        s_answer(self, req);
        zmsg_destroy(&req);
    }
}

const ga_curve_cert_t *
bk_zap_peer(const bk_zap_t *self, const char *user_id)
{
    if (self == NULL || user_id == NULL || user_id[0] == '\0') {
        return NULL;
    }
    return zhash_lookup(self->keys, user_id);
}

size_t
bk_zap_key_count(const bk_zap_t *self)
{
    return zhash_size(self->keys);
}

size_t
bk_zap_accepted(const bk_zap_t *self)
{
    return self->accepted;
}

size_t
bk_zap_refused(const bk_zap_t *self)
{
    return self->refused;
}
