// SPDX-License-Identifier: MIT
// The broker's ZAP handler (ZeroMQ RFC 27): with CURVE on, libzmq asks it, for every peer that
// connects to one of the broker's sockets, whether that peer's public key may. The keys it knows
// come from a directory of public certificates (genapi-ctl keygen), each with a role; the
// socket (its ZAP domain) decides which roles are accepted. An accepted peer's messages carry
// its public key as their ZAP user id, from which bk_zap_peer gives its role, name and services.
// Owned by the broker's loop thread; no other thread touches it.
#ifndef BK_ZAP_H
#define BK_ZAP_H

#include "ga_curve.h"
#include "ga_err.h"

#include <stddef.h>

// The ZAP domains of the broker's four sockets.
#define BK_ZAP_WORKERS     "workers"     // worker ROUTER: role worker
#define BK_ZAP_GATEWAYS    "gateways"    // gateway ROUTER: roles gateway and operator
#define BK_ZAP_STREAMS_IN  "streams_in"  // XSUB: role worker (stream publishers)
#define BK_ZAP_STREAMS_OUT "streams_out" // XPUB: roles gateway and operator (subscribers)

typedef struct bk_zap_t bk_zap_t;

bk_zap_t *bk_zap_new(void);
void bk_zap_destroy(bk_zap_t **self_p);

// Loads every public certificate in `dir` (files named *_secret, dot files and role "broker"
// are skipped). GA_ECONFIG with the file and reason in `err` when one is unreadable or has no
// valid role: a key directory is read whole or refused.
GA_MUST_CHECK ga_err_t bk_zap_load_dir(bk_zap_t *self, const char *dir, char *err, size_t errlen);
// Binds the handler's socket in libzmq context `zctx`. Call before any CURVE socket binds.
GA_MUST_CHECK ga_err_t bk_zap_bind(bk_zap_t *self, void *zctx);
// The handler's socket, for the loop's poller.
void *bk_zap_socket(const bk_zap_t *self);
// Answers the waiting ZAP requests, at most 64 per call (the loop calls again while the
// socket stays ready).
void bk_zap_process(bk_zap_t *self);

// The accepted peer whose ZAP user id is `user_id`, or NULL (no key, or CURVE off).
const ga_curve_cert_t *bk_zap_peer(const bk_zap_t *self, const char *user_id);
// Keys loaded, and requests accepted and refused so far.
size_t bk_zap_key_count(const bk_zap_t *self);
size_t bk_zap_accepted(const bk_zap_t *self);
size_t bk_zap_refused(const bk_zap_t *self);

#endif
