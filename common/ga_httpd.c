// SPDX-License-Identifier: MIT
// The admin HTTP responder (see ga_httpd.h): a listening socket and up to GA_HTTPD_CONNS_MAX
// accepted ones, all non-blocking and registered (level-triggered) in one epoll set.
#include "ga_httpd.h"

#include "ga_log.h"
#include "ga_mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int fd;          // accepted socket, -1 when the slot is free
    uint64_t seq;    // accept order (the lowest is dropped first when full)
    char in[GA_HTTPD_REQUEST_MAX]; // request head read so far
    size_t in_len;   // bytes in `in`
    ga_buf_t out;    // response not yet written
    size_t out_at;   // bytes of `out` written
    bool answered;   // out holds the whole response
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
        ga_buf_init(&self->conns[i].out);
    }
    ga_buf_init(&self->body);
    return self;
}

static void
s_close(ga_httpd_t *self, conn_t *c)
{
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
            if (slot == NULL || c->seq < slot->seq) {
                slot = c; // the oldest, dropped if no slot is free
            }
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
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
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
        path[strcspn(path, "?")] = '\0';
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
    while (c->out_at < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_at, c->out.len - c->out_at, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return; // EPOLLOUT brings us back
            }
            break;
        }
        c->out_at += (size_t) n;
    }
    s_close(self, c);
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
    // The request line is all we need; the rest of the head is not read further.
    if (strstr(c->in, "\r\n") == NULL && strchr(c->in, '\n') == NULL &&
        c->in_len < sizeof c->in - 1) {
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
        if (c->answered) {
            s_write(self, c);
        } else {
            s_read(self, c);
        }
    }
}
