// SPDX-License-Identifier: MIT
// CurveZMQ keys for the service sockets (docs/security.md): certificates in czmq's text format,
// made by `genapi-ctl keygen`, each with metadata naming its role ("broker", "gateway",
// "worker", "operator"), a name and, for workers, the services it may register. A secret
// certificate is the public file plus FILE_secret. No global state; any thread.
#ifndef GA_CURVE_H
#define GA_CURVE_H

#include "ga_err.h"

#include <stdbool.h>
#include <stddef.h>

#define GA_CURVE_KEY_TXT 41       // Z85 key text plus NUL
#define GA_CURVE_NAME_MAX 64      // bytes of a certificate's name, NUL included
#define GA_CURVE_SERVICES_MAX 512 // bytes of a worker certificate's services list, NUL included

typedef struct {
    char public_txt[GA_CURVE_KEY_TXT]; // Z85 public key
    char secret_txt[GA_CURVE_KEY_TXT]; // Z85 secret key ("" when only the public file was read)
    char role[16];                     // broker, gateway, worker or operator
    char name[GA_CURVE_NAME_MAX];      // who holds it (the file name when the cert has none)
    char services[GA_CURVE_SERVICES_MAX]; // workers: comma-separated services it may register
} ga_curve_cert_t;

// Reads the certificate at `path` (and `path`_secret when `need_secret`). GA_ECONFIG with the
// reason in `err` when a file is missing or unreadable, the role is not one of the four, or the
// secret is required and absent.
GA_MUST_CHECK ga_err_t ga_curve_load(const char *path, bool need_secret, ga_curve_cert_t *out,
                                     char *err, size_t errlen);

// Writes a new key pair to `path` (public, mode 0644) and `path`_secret (mode 0600) with the
// given role, name and services (NULL or "" for none). GA_EIO when a file cannot be written.
GA_MUST_CHECK ga_err_t ga_curve_generate(const char *path, const char *role, const char *name,
                                         const char *services, char *err, size_t errlen);

// Makes libzmq socket `sock` a CURVE server with `own`'s keys; its ZAP requests carry `domain`.
// Call before bind. GA_EIO when libzmq refuses (no CURVE support).
GA_MUST_CHECK ga_err_t ga_curve_server(void *sock, const ga_curve_cert_t *own,
                                       const char *domain);
// Makes libzmq socket `sock` a CURVE client of the server with public key `server_public`.
// Call before connect.
GA_MUST_CHECK ga_err_t ga_curve_client(void *sock, const ga_curve_cert_t *own,
                                       const char *server_public);

// A client's settings: its own certificate (with secret, role `role`) at `own_path` and the
// broker's public certificate at `broker_path`. Both empty: CURVE off (*on false, GA_OK). One
// without the other, a missing file or a wrong role: GA_ECONFIG, the reason (naming the option
// `own_option` or `broker_option`) in `err`.
GA_MUST_CHECK ga_err_t ga_curve_client_load(const char *own_option, const char *own_path,
                                            const char *broker_option, const char *broker_path,
                                            const char *role, ga_curve_cert_t *own,
                                            ga_curve_cert_t *broker, bool *on, char *err,
                                            size_t errlen);

// True when `service` is in the comma-separated `services` ("*" allows any).
bool ga_curve_allows_service(const char *services, const char *service);

// True when the comma-separated `list` (spaces around items ignored) names `item`; with
// `wildcard`, an item "*" names anything.
bool ga_curve_list_has(const char *list, const char *item, bool wildcard);

#endif
