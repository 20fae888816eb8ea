// SPDX-License-Identifier: MIT
// ga_httpd over real loopback sockets: a request head that arrives in several writes (a shell's
// /dev/tcp probe writes one line at a time) is answered once the head is whole, not from its
// first line with the rest left unread (which made the kernel reset the connection under the
// answer).
#include "ga_httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static int
s_ok(void *arg, const char *path, ga_buf_t *body, const char **type)
{
    (void) arg;
    (void) type;
    ga_buf_append_str(body, strcmp(path, "/healthz") == 0 ? "ok\n" : "no\n");
    return strcmp(path, "/healthz") == 0 ? 200 : 404;
}

static int
s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
    return fd;
}

// Runs the responder for up to `ms` and returns what `fd` received (until it closed).
static size_t
s_pump(ga_httpd_t *h, int fd, char *out, size_t cap, int ms)
{
    size_t len = 0;
    for (int i = 0; i < ms / 5; i++) {
        ga_httpd_process(h);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5) > 0) {
            ssize_t n = recv(fd, out + len, cap - 1 - len, MSG_DONTWAIT);
            if (n <= 0) {
                break; // closed (or reset: n < 0)
            }
            len += (size_t) n;
        }
    }
    out[len] = '\0';
    return len;
}

static void
test_head_in_several_writes_is_answered_whole(void **state)
{
    (void) state;
    ga_httpd_t *h = ga_httpd_new(s_ok, NULL);
    char why[200];
    assert_int_equal(ga_httpd_listen(h, "127.0.0.1:0", why, sizeof why), GA_OK);
    int fd = s_connect(ga_httpd_port(h));
    const char *lines[] = {"GET /healthz HTTP/1.1\r\n", "Host: x\r\n", "User-Agent: sh\r\n",
                           "\r\n"};
    char out[4096];
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        assert_int_equal(send(fd, lines[i], strlen(lines[i]), 0), (ssize_t) strlen(lines[i]));
        if (i + 1 < sizeof lines / sizeof lines[0]) {
            // Nothing is answered before the head is whole.
            assert_int_equal(s_pump(h, fd, out, sizeof out, 50), 0);
        }
    }
    s_pump(h, fd, out, sizeof out, 2000);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(out, "\r\n\r\nok\n"));
    close(fd);
    ga_httpd_destroy(&h);
}

static void
test_head_in_one_write_is_answered(void **state)
{
    (void) state;
    ga_httpd_t *h = ga_httpd_new(s_ok, NULL);
    char why[200];
    assert_int_equal(ga_httpd_listen(h, "127.0.0.1:0", why, sizeof why), GA_OK);
    int fd = s_connect(ga_httpd_port(h));
    const char *req = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t) strlen(req));
    char out[4096];
    s_pump(h, fd, out, sizeof out, 2000);
    assert_non_null(strstr(out, "HTTP/1.1 404"));
    close(fd);
    ga_httpd_destroy(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_in_several_writes_is_answered_whole),
        cmocka_unit_test(test_head_in_one_write_is_answered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
