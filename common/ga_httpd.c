// SPDX-License-Identifier: MIT
// The admin HTTP responder (see ga_httpd.h): a listening socket and up to GA_HTTPD_CONNS_MAX
// accepted ones, all non-blocking and registered (level-triggered) in one epoll set. A
// streaming connection stays registered for reading (to notice its peer leaving) and, while
// its owner has bytes queued, for writing.
#include "ga_httpd.h"

#include "ga_log.h"
#include "ga_mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct ga_httpd_stream_t {
    ga_httpd_t *httpd; // the responder
    int slot;          // its connection's index
};

typedef struct {
    int fd;          // accepted socket, -1 when the slot is free
    uint64_t seq;    // accept order (the lowest is dropped first when full)
    char in[GA_HTTPD_REQUEST_MAX]; // request head read so far
    size_t in_len;   // bytes in `in`
    ga_buf_t out;    // response not yet written
    size_t out_at;   // bytes of `out` written
    bool answered;   // out holds the whole response (or a stream's head)
    bool streaming;  // a stream: out is refilled by the stream's owner, never closed when sent
    ga_httpd_stream_t stream; // its handle
} conn_t;

struct ga_httpd_t {
    ga_httpd_fn *fn;  // answers requests
    void *arg;        // its argument
    int epfd;         // the epoll set (the fd callers poll)
    int lfd;          // listening socket, -1 before listen
    int port;         // port bound
    uint64_t seq;     // last accept order handed out
    conn_t conns[GA_HTTPD_CONNS_MAX]; // the connections
    ga_buf_t body;    // response body, reused
    char *stream_path; // the streaming path, or NULL
    ga_httpd_stream_ops_t stream_ops; // its callbacks
    void *stream_arg;  // their argument (owned)
};

ga_httpd_t *
ga_httpd_new(ga_httpd_fn *fn, void *arg)
{
    ga_httpd_t *self = ga_calloc(1, sizeof *self);
    self->fn = fn;
    self->arg = arg;
    self->epfd = -1;
    self->lfd = -1;
    for (int i = 0; i < GA_HTTPD_CONNS_MAX; i++) {
        self->conns[i].fd = -1;
        self->conns[i].stream = (ga_httpd_stream_t){.httpd = self, .slot = i};
        ga_buf_init(&self->conns[i].out);
    }
    ga_buf_init(&self->body);
    return self;
}

static void
s_close(ga_httpd_t *self, conn_t *c)
{
    if (c->streaming) {
        c->streaming = false;
        self->stream_ops.closed(self->stream_arg, &c->stream);
    }
    if (c->fd >= 0) {
        GA_IGNORE(epoll_ctl(self->epfd, EPOLL_CTL_DEL, c->fd, NULL)); // closing removes it too
        close(c->fd);
    }
    c->fd = -1;
    c->in_len = 0;
    c->out_at = 0;
    c->answered = false;
    ga_buf_reset(&c->out);
}

void
ga_httpd_destroy(ga_httpd_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_httpd_t *self = *self_p;
    for (int i = 0; i < GA_HTTPD_CONNS_MAX; i++) {
        s_close(self, &self->conns[i]);
        ga_buf_fini(&self->conns[i].out);
    }
    if (self->lfd >= 0) {
        close(self->lfd);
    }
    if (self->epfd >= 0) {
        close(self->epfd);
    }
    if (self->stream_path) {
        self->stream_ops.free(self->stream_arg);
        ga_free(self->stream_path);
    }
    ga_buf_fini(&self->body);
    ga_free(self);
    *self_p = NULL;
}

bool
ga_httpd_is_loopback(const char *address)
{
    return strncmp(address, "127.", 4) == 0 || strncmp(address, "localhost:", 10) == 0 ||
           strncmp(address, "[::1]:", 6) == 0;
}

ga_err_t
ga_httpd_listen(ga_httpd_t *self, const char *address, char *why, size_t why_len)
{
    const char *colon = strrchr(address, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || (size_t) (colon - address) >= sizeof host || colon == address ||
        end == colon + 1 || *end != '\0' || port < 0 || port > 65535) {
        snprintf(why, why_len, "%s: must be host:port", address);
        return GA_EINVAL;
    }
    memcpy(host, address, (size_t) (colon - address));
    host[colon - address] = '\0';
    struct sockaddr_storage ss = {0};
    socklen_t sslen;
    int family;
    if (strcmp(host, "[::1]") == 0 || strcmp(host, "[::]") == 0) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t) port);
        a->sin6_addr = strcmp(host, "[::1]") == 0 ? in6addr_loopback : in6addr_any;
        family = AF_INET6;
        sslen = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *) &ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t) port);
        const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, h, &a->sin_addr) != 1) {
            snprintf(why, why_len, "%s: the host must be an IPv4 address, localhost or [::1]",
                     address);
            return GA_EINVAL;
        }
        family = AF_INET;
        sslen = sizeof *a;
    }
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    self->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (self->epfd < 0 || self->lfd < 0 ||
        setsockopt(self->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(self->lfd, (struct sockaddr *) &ss, sslen) != 0 || listen(self->lfd, 16) != 0) {
        snprintf(why, why_len, "cannot listen on %s: %s", address, strerror(errno));
        return GA_EIO;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, self->lfd, &ev) != 0) {
        snprintf(why, why_len, "cannot poll %s: %s", address, strerror(errno));
        return GA_EIO;
    }
    socklen_t n = sizeof ss;
    if (getsockname(self->lfd, (struct sockaddr *) &ss, &n) == 0) {
        self->port = family == AF_INET ? ntohs(((struct sockaddr_in *) &ss)->sin_port)
                                       : ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    }
    return GA_OK;
}

void
ga_httpd_set_stream(ga_httpd_t *self, const char *path, const ga_httpd_stream_ops_t *ops,
                    void *arg)
{
    ga_assert(self->stream_path == NULL && path && ops && ops->open && ops->fill &&
              ops->closed && ops->free);
    self->stream_path = ga_strdup(path);
    self->stream_ops = *ops;
    self->stream_arg = arg;
}

void
ga_httpd_stream_wake(ga_httpd_stream_t *stream, bool on)
{
    ga_httpd_t *self = stream->httpd;
    conn_t *c = &self->conns[stream->slot];
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u),
                             .data.u64 = (uint64_t) stream->slot};
    if (c->fd >= 0) {
        GA_IGNORE(epoll_ctl(self->epfd, EPOLL_CTL_MOD, c->fd, &ev)); // the fd is registered
    }
}

int
ga_httpd_port(const ga_httpd_t *self)
{
    return self->port;
}

int
ga_httpd_fd(const ga_httpd_t *self)
{
    return self->epfd;
}

static void
s_accept(ga_httpd_t *self)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept(self->lfd, NULL, NULL);
        if (fd < 0) {
            return; // EAGAIN (nothing more), or a peer that left already
        }
        if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            close(fd);
            continue;
        }
        conn_t *slot = NULL;
        for (int i = 0; i < GA_HTTPD_CONNS_MAX; i++) {
            conn_t *c = &self->conns[i];
            if (c->fd < 0) {
                slot = c;
                break;
            }
            if (!c->streaming && (slot == NULL || c->seq < slot->seq)) {
                slot = c; // the oldest, dropped if no slot is free (never a stream)
            }
        }
        if (slot == NULL) {
            close(fd); // every connection streams (their owner bounds them below the maximum)
            continue;
        }
        s_close(self, slot);
        slot->fd = fd;
        slot->seq = ++self->seq;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t) (slot - self->conns)};
        if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            slot->fd = -1;
        }
    }
}

static const char *
s_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

// Whether the request in c->in (a NUL-terminated head, possibly partial) is a GET of the
// streaming path.
static bool
s_is_stream(const ga_httpd_t *self, const conn_t *c)
{
    if (self->stream_path == NULL || strncmp(c->in, "GET ", 4) != 0) {
        return false;
    }
    size_t n = strlen(self->stream_path);
    const char *after = c->in + 4 + n;
    return strncmp(c->in + 4, self->stream_path, n) == 0 && (*after == ' ' || *after == '?');
}

// The value of header `name` in the head c->in (its first occurrence), copied into out.
static void
s_header(const conn_t *c, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *line = strchr(c->in, '\n'); line; line = strchr(line, '\n')) {
        line++;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            v += strspn(v, " \t");
            size_t vlen = strcspn(v, "\r\n");
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
                vlen--;
            }
            vlen = vlen < len - 1 ? vlen : len - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return;
        }
    }
}

// A GET of the streaming path: asks the owner, then streams or answers and closes.
static void
s_open_stream(ga_httpd_t *self, conn_t *c, const char *path, const char *query)
{
    char authorization[1024];
    s_header(c, "Authorization", authorization, sizeof authorization);
    const char *type = "text/plain; charset=utf-8";
    ga_httpd_req_t req = {.path = path, .query = query, .authorization = authorization};
    int status = self->stream_ops.open(self->stream_arg, &req, &c->stream, &self->body, &type);
    char hdr[256];
    int n = status == 200
                ? snprintf(hdr, sizeof hdr,
                           "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\n"
                           "Cache-Control: no-store\r\n\r\n",
                           type)
                : snprintf(hdr, sizeof hdr,
                           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\nCache-Control: no-store\r\n\r\n",
                           status, s_reason(status), type, self->body.len);
    ga_buf_reset(&c->out);
    ga_buf_append(&c->out, hdr, (size_t) n);
    ga_buf_append(&c->out, self->body.data, self->body.len);
    c->answered = true;
    c->streaming = status == 200;
    c->out_at = 0;
    struct epoll_event ev = {.events = (c->streaming ? EPOLLIN : 0u) | EPOLLOUT,
                             .data.u64 = (uint64_t) (c - self->conns)};
    GA_IGNORE(epoll_ctl(self->epfd, EPOLL_CTL_MOD, c->fd, &ev)); // the write below tries anyway
}

// Builds the response to the request head in c->in.
static void
s_answer(ga_httpd_t *self, conn_t *c)
{
    c->in[c->in_len < sizeof c->in ? c->in_len : sizeof c->in - 1] = '\0';
    ga_buf_reset(&self->body);
    const char *type = "text/plain; charset=utf-8";
    int status;
    char path[256];
    char *sp1 = strchr(c->in, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || (size_t) (sp2 - sp1 - 1) >= sizeof path) {
        status = 400;
        ga_buf_append_str(&self->body, "bad request\n");
    } else if (!((sp1 - c->in == 3 && memcmp(c->in, "GET", 3) == 0) ||
                 (sp1 - c->in == 4 && memcmp(c->in, "HEAD", 4) == 0))) {
        status = 405;
        ga_buf_append_str(&self->body, "only GET\n");
    } else {
        memcpy(path, sp1 + 1, (size_t) (sp2 - sp1 - 1));
        path[sp2 - sp1 - 1] = '\0';
        char *query = path + strcspn(path, "?");
        if (*query) {
            *query++ = '\0';
        }
        if (s_is_stream(self, c)) {
            s_open_stream(self, c, path, query);
            return;
        }
        status = self->fn(self->arg, path, &self->body, &type);
    }
    bool head = strncmp(c->in, "HEAD ", 5) == 0;
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\nCache-Control: no-store\r\n\r\n",
                     status, s_reason(status), type, self->body.len);
    ga_buf_reset(&c->out);
    ga_buf_append(&c->out, hdr, (size_t) n);
    if (!head) {
        ga_buf_append(&c->out, self->body.data, self->body.len);
    }
    c->answered = true;
    c->out_at = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t) (c - self->conns)};
    GA_IGNORE(epoll_ctl(self->epfd, EPOLL_CTL_MOD, c->fd, &ev)); // the write below tries anyway
}

static void
s_write(ga_httpd_t *self, conn_t *c)
{
    for (;;) {
        while (c->out_at < c->out.len) {
            ssize_t n =
                send(c->fd, c->out.data + c->out_at, c->out.len - c->out_at, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return; // EPOLLOUT brings us back
                }
                s_close(self, c);
                return;
            }
            c->out_at += (size_t) n;
        }
        if (!c->streaming) {
            break;
        }
        // A stream: what its owner queued meanwhile, until it has nothing (then it stops
        // the EPOLLOUT wake-ups itself, and wakes us again when it has more).
        ga_buf_reset(&c->out);
        c->out_at = 0;
        self->stream_ops.fill(self->stream_arg, &c->stream, &c->out);
        if (c->out.len == 0) {
            return;
        }
    }
    s_close(self, c);
}

// A stream's peer sends nothing we read: drain it, and close when it leaves.
static void
s_read_stream(ga_httpd_t *self, conn_t *c)
{
    char sink[512];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        s_close(self, c); // the peer left (or the connection failed)
        return;
    }
}

static void
s_read(ga_httpd_t *self, conn_t *c)
{
    for (;;) {
        size_t room = sizeof c->in - 1 - c->in_len;
        if (room == 0) {
            break; // head too long: answer from what we have (the request line fits or not)
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n == 0) {
            s_close(self, c); // closed before a whole request line
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            s_close(self, c);
            return;
        }
        c->in_len += (size_t) n;
    }
    c->in[c->in_len] = '\0';
    // The whole head is read before answering: a client may send it a line per write (a
    // shell's /dev/tcp probe does), and closing with its rest unread would make the kernel
    // reset the connection under the answer. A head longer than the buffer is answered from
    // what fits (the request line, at least, is in it).
    bool full = c->in_len >= sizeof c->in - 1;
    if (!full && strstr(c->in, "\r\n\r\n") == NULL && strstr(c->in, "\n\n") == NULL) {
        return;
    }
    s_answer(self, c);
    s_write(self, c);
}

void
ga_httpd_process(ga_httpd_t *self)
{
    if (self->epfd < 0) {
        return;
    }
    struct epoll_event evs[GA_HTTPD_CONNS_MAX + 1];
    int n = epoll_wait(self->epfd, evs, GA_HTTPD_CONNS_MAX + 1, 0);
    for (int i = 0; i < n; i++) {
        uint64_t k = evs[i].data.u64;
        if (k == UINT64_MAX) {
            s_accept(self);
            continue;
        }
        conn_t *c = &self->conns[k];
        if (c->fd < 0) {
            continue; // closed earlier in this round
        }
        if (c->streaming) {
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                s_read_stream(self, c);
            }
            if (c->fd >= 0 && c->streaming && (evs[i].events & EPOLLOUT)) {
                s_write(self, c);
            }
        } else if (c->answered) {
            s_write(self, c);
        } else {
            s_read(self, c);
        }
    }
}
