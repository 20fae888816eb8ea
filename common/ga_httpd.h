// SPDX-License-Identifier: MIT
// ga_httpd: a tiny non-blocking HTTP/1.x responder for the admin listener (/metrics, /healthz,
// /readyz; docs/operations.md). It reads one request line per connection, answers through a
// callback, and closes: no keep-alive, no request bodies. Its sockets sit behind one epoll
// descriptor (ga_httpd_fd), so a loop polls a single readable fd whatever the number of
// connections: the broker puts it among its ga_zpoll items, the gateway adopts it into the
// libwebsockets loop. Connections are bounded (GA_HTTPD_CONNS_MAX; the oldest is dropped for a
// new one) and so is each request (GA_HTTPD_REQUEST_MAX bytes). One thread: the one that calls
// ga_httpd_process.
#ifndef GA_HTTPD_H
#define GA_HTTPD_H

#include "ga_err.h"
#include "ga_mem.h"

#include <stdbool.h>

#define GA_HTTPD_CONNS_MAX   16   // connections open at once
#define GA_HTTPD_REQUEST_MAX 4096 // bytes of request head read at most

// Answers a GET for `path` (query string cut off): fills `body` and sets *content_type (a
// static string); returns the HTTP status (200, 404, 503, ...). Called on the processing thread.
typedef int(ga_httpd_fn)(void *arg, const char *path, ga_buf_t *body, const char **content_type);

typedef struct ga_httpd_t ga_httpd_t;

// Creates a responder; no I/O.
ga_httpd_t *ga_httpd_new(ga_httpd_fn *fn, void *arg);
// Closes every socket.
void ga_httpd_destroy(ga_httpd_t **self_p);
// Listens on "host:port" (port 0: any; host an IPv4 address, "localhost" or "[::1]"). GA_EINVAL
// with the reason in `why` when the address does not parse, GA_EIO when it cannot be bound.
GA_MUST_CHECK ga_err_t ga_httpd_listen(ga_httpd_t *self, const char *address, char *why,
                                       size_t why_len);
// The port bound (after listen).
int ga_httpd_port(const ga_httpd_t *self);
// The descriptor to poll for reading; call ga_httpd_process when it is readable.
int ga_httpd_fd(const ga_httpd_t *self);
// Accepts, reads, answers and closes whatever is ready, without blocking.
void ga_httpd_process(ga_httpd_t *self);
// True when `address` ("host:port") is on loopback (127.x, localhost, [::1]).
bool ga_httpd_is_loopback(const char *address);

#endif
