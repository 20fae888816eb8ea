// SPDX-License-Identifier: MIT
// ga_httpd: a tiny non-blocking HTTP/1.x responder for the admin listener (/metrics, /healthz,
// /readyz; docs/operations.md). It reads one request line per connection, answers through a
// callback, and closes: no keep-alive, no request bodies. Its sockets sit behind one epoll
// descriptor (ga_httpd_fd), so a loop polls a single readable fd whatever the number of
// connections: the broker puts it among its ga_zpoll items, the gateway adopts it into the
// libwebsockets loop. Connections are bounded (GA_HTTPD_CONNS_MAX; the oldest is dropped for a
// new one) and so is each request (GA_HTTPD_REQUEST_MAX bytes). One thread: the one that calls
// ga_httpd_process.
//
// One path may stream (ga_httpd_set_stream; genapi-ctl tail's /events): its connection stays
// open after the answer's head and the stream's owner queues bytes for it from any thread,
// waking the loop with ga_httpd_stream_wake. Streaming connections are never dropped for a new
// one; their owner bounds how many there are.
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

// A streaming connection (owned by the responder; valid from its open to its closed call).
typedef struct ga_httpd_stream_t ga_httpd_stream_t;

// What a stream opener sees of a request.
typedef struct {
    const char *path;          // without the query string
    const char *query;         // after '?', "" when none
    const char *authorization; // the Authorization header's value, "" when none
} ga_httpd_req_t;

// A streaming path's callbacks, all called on the processing thread.
typedef struct {
    // A GET of the path (its whole head read): returns the status. 200 keeps the connection
    // open (the head, then `body` if any, are sent first, without Content-Length); anything
    // else answers with `body` and closes.
    int (*open)(void *arg, const ga_httpd_req_t *req, ga_httpd_stream_t *stream, ga_buf_t *body,
                const char **content_type);
    // Everything queued so far was written: append what comes next to `out` (empty when it
    // is). With nothing more, the owner calls ga_httpd_stream_wake(stream, false).
    void (*fill)(void *arg, ga_httpd_stream_t *stream, ga_buf_t *out);
    // The connection closed (the peer left, a write failed, or the responder is destroyed).
    void (*closed)(void *arg, ga_httpd_stream_t *stream);
    // The responder is destroyed, after every closed: frees `arg`.
    void (*free)(void *arg);
} ga_httpd_stream_ops_t;

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
// Streams GETs of `path` (exact, query string cut off) through `ops` (copied); `arg` is owned
// from now on (ops->free). One streaming path per responder.
void ga_httpd_set_stream(ga_httpd_t *self, const char *path, const ga_httpd_stream_ops_t *ops,
                         void *arg);
// Asks for fill calls (on: the stream has bytes queued) or stops them (off). Any thread, as
// long as the stream is open (the owner serialises it with its closed callback).
void ga_httpd_stream_wake(ga_httpd_stream_t *stream, bool on);

// True when `address` ("host:port") is on loopback (127.x, localhost, [::1]).
bool ga_httpd_is_loopback(const char *address);

#endif
