// SPDX-License-Identifier: MIT
// GET /events (ga_tail on ga_httpd, real loopback sockets): a client attaches a telemetry
// handler only while connected (and only to its prefix's events), gets one JSON line per event,
// is refused without the token or with a prefix that selects nothing, at most
// GA_TAIL_CLIENTS_MAX at once; a client that does not read loses events, counted exactly, while
// emitting never blocks.
#include "ga_arena.h"
#include "ga_httpd.h"
#include "ga_json.h"
#include "ga_tail.h"
#include "ga_telemetry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static const char *
s_auth(void *arg, const char *token)
{
    (void) arg;
    return strcmp(token, "sesame") == 0 ? NULL : "admin token required";
}

static int
s_not_found(void *arg, const char *path, ga_buf_t *body, const char **type)
{
    (void) arg;
    (void) path;
    (void) type;
    ga_buf_append_str(body, "no\n");
    return 404;
}

typedef struct {
    ga_httpd_t *httpd;
    int port;
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->httpd = ga_httpd_new(s_not_found, NULL);
    ga_tail_install(f->httpd, "test-program", s_auth, NULL);
    char why[200];
    assert_int_equal(ga_httpd_listen(f->httpd, "127.0.0.1:0", why, sizeof why), GA_OK);
    f->port = ga_httpd_port(f->httpd);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    ga_httpd_destroy(&f->httpd);
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP)); // closed: detached
    free(f);
    return 0;
}

// A client socket with GET `path` sent; `rcvbuf` > 0 shrinks its receive buffer first.
static int
s_client(const fixture_t *f, const char *path, const char *token, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0) {
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n%s%s%s\r\n", path,
                     token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    assert_int_equal(send(fd, req, (size_t) n, 0), n);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    return fd;
}

// Runs the responder and reads `fd` into `in` until `until` appears in it (or 3 s pass).
static bool
s_pump(fixture_t *f, int fd, ga_buf_t *in, const char *until)
{
    for (int round = 0; round < (strcmp(until ? until : "", "never") == 0 ? 1 : 600); round++) {
        ga_httpd_process(f->httpd);
        char chunk[65536];
        ssize_t n;
        while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0) {
            ga_buf_append(in, chunk, (size_t) n);
        }
        ga_buf_append_char(in, '\0');
        in->len--;
        if (until && strstr((const char *) in->data, until)) {
            return true;
        }
        if (n == 0 && until == NULL) {
            return true; // closed
        }
        struct pollfd p = {.fd = ga_httpd_fd(f->httpd), .events = POLLIN};
        GA_IGNORE(poll(&p, 1, 5));
    }
    return false;
}

// Counts the lines of `text` that contain `needle`.
static int
s_count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

static void
test_tail_streams_the_prefix_events_as_json_lines(void **state)
{
    fixture_t *f = *state;
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP)); // nothing paid before
    int fd = s_client(f, "/events?prefix=genapi.executor", "sesame", 0);
    ga_buf_t in;
    ga_buf_init(&in);
    assert_true(s_pump(f, fd, &in, "\"attached\":true"));
    assert_non_null(strstr((const char *) in.data, "HTTP/1.1 200 OK"));
    assert_non_null(strstr((const char *) in.data, "application/x-ndjson"));
    assert_non_null(strstr((const char *) in.data, "\"program\":\"test-program\""));
    assert_true(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP));
    assert_false(ga_telemetry_is_on(GA_EV_CONNECTION_CONNECT)); // outside the prefix

    GA_EMIT(GA_EV_EXECUTOR_REQUEST_START, .service = "svc", .request_type = "say \"hi\"",
            .request_id = "r1");
    GA_EMIT(GA_EV_CONNECTION_CONNECT, .success = GA_TM_TRUE);
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "svc", .request_type = "f",
            .duration_us = 812, .success = GA_TM_TRUE);
    assert_true(s_pump(f, fd, &in, "request.stop"));
    assert_int_equal(s_count((const char *) in.data, "genapi.connection"), 0);

    // Each line after the head is one JSON object: name, at_ms, measurements, metadata.
    const char *body = strstr((const char *) in.data, "\r\n\r\n") + 4;
    ga_arena_t *a = ga_arena_new(4096);
    int lines = 0;
    for (const char *line = body; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        ga_value_t v;
        assert_int_equal(ga_json_decode(line, (size_t) (nl - line), a, &v, NULL, 0), GA_OK);
        if (lines == 1) {
            assert_string_equal(ga_map_get_str(&v, "name"), "genapi.executor.request.start");
            const ga_value_t *md = ga_map_get(&v, "metadata");
            assert_string_equal(ga_map_get_str(md, "request_type"), "say \"hi\"");
            assert_string_equal(ga_map_get_str(md, "request_id"), "r1");
        } else if (lines == 2) {
            assert_string_equal(ga_map_get_str(&v, "name"), "genapi.executor.request.stop");
            const ga_value_t *m = ga_map_get(&v, "measurements");
            assert_int_equal(ga_map_get_int(m, "duration_us", 0), 812);
            const ga_value_t *ok = ga_map_get(ga_map_get(&v, "metadata"), "success");
            assert_true(ok && ok->type == GA_BOOL && ok->u.b);
            assert_true(ga_map_get_int(&v, "at_ms", 0) > 1600000000000);
        }
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, 3); // attached, start, stop
    ga_arena_destroy(&a);

    // The client leaves: the responder notices and the handler is detached.
    close(fd);
    for (int i = 0; i < 200 && ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP); i++) {
        ga_httpd_process(f->httpd);
        usleep(5000);
    }
    assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP));
    ga_buf_fini(&in);
}

static void
test_tail_refusals(void **state)
{
    fixture_t *f = *state;
    const struct {
        const char *path;
        const char *token;
        const char *expect;
    } cases[] = {
        {"/events", NULL, "HTTP/1.1 403 Forbidden"},
        {"/events", "wrong", "admin token required"},
        {"/events?prefix=genapi.exec", "sesame", "HTTP/1.1 404"},
        {"/events?prefix=%zz", "sesame", "HTTP/1.1 400"},
        {"/metrics", "sesame", "no\n"}, // other paths: the responder's own callback
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = s_client(f, cases[i].path, cases[i].token, 0);
        ga_buf_t in;
        ga_buf_init(&in);
        assert_true(s_pump(f, fd, &in, NULL)); // answered and closed
        if (strstr((const char *) in.data, cases[i].expect) == NULL) {
            fail_msg("%s: %s", cases[i].path, (const char *) in.data);
        }
        assert_false(ga_telemetry_is_on(GA_EV_EXECUTOR_REQUEST_STOP));
        ga_buf_fini(&in);
        close(fd);
    }
}

static void
test_tail_clients_are_bounded(void **state)
{
    fixture_t *f = *state;
    int fds[GA_TAIL_CLIENTS_MAX];
    ga_buf_t in;
    ga_buf_init(&in);
    for (int i = 0; i < GA_TAIL_CLIENTS_MAX; i++) {
        fds[i] = s_client(f, "/events", "sesame", 0);
        ga_buf_reset(&in);
        assert_true(s_pump(f, fds[i], &in, "\"attached\":true"));
    }
    int extra = s_client(f, "/events", "sesame", 0);
    ga_buf_reset(&in);
    assert_true(s_pump(f, extra, &in, NULL));
    assert_non_null(strstr((const char *) in.data, "HTTP/1.1 503"));
    close(extra);
    // Ordinary requests still get slots beside the streams (streams are never dropped).
    for (int i = 0; i < 20; i++) {
        int fd = s_client(f, "/metrics", NULL, 0);
        ga_buf_reset(&in);
        assert_true(s_pump(f, fd, &in, NULL));
        assert_non_null(strstr((const char *) in.data, "404"));
        close(fd);
    }
    GA_EMIT(GA_EV_CONFIG_ADD, .service = "s");
    for (int i = 0; i < GA_TAIL_CLIENTS_MAX; i++) {
        ga_buf_reset(&in);
        assert_true(s_pump(f, fds[i], &in, "genapi.config.add"));
        close(fds[i]);
    }
    ga_buf_fini(&in);
}

static void
test_tail_slow_reader_loses_counted_events_without_blocking(void **state)
{
    fixture_t *f = *state;
    int fd = s_client(f, "/events", "sesame", 4096);
    ga_buf_t in;
    ga_buf_init(&in);
    assert_true(s_pump(f, fd, &in, "\"attached\":true"));
    // 20000 events (about 4 MB of lines) while the client reads nothing: emitting never waits.
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "a_service_name", .request_type = "f",
                .request_id = "some-request-id-0123456789", .duration_us = i,
                .success = GA_TM_TRUE);
        if (i % 100 == 0) {
            ga_httpd_process(f->httpd);
        }
    }
    // Now it reads everything queued; one more event carries the count of those dropped.
    size_t seen = 0;
    for (int idle = 0; idle < 50; idle = in.len == seen ? idle + 1 : 0) {
        seen = in.len;
        GA_IGNORE(s_pump(f, fd, &in, "never"));
    }
    GA_EMIT(GA_EV_EXECUTOR_REQUEST_STOP, .service = "last", .duration_us = -1);
    assert_true(s_pump(f, fd, &in, "\"service\":\"last\""));
    int received = s_count((const char *) in.data, "genapi.executor.request.stop") - 1;
    long long dropped = 0;
    for (const char *p = (const char *) in.data; (p = strstr(p, "{\"dropped\":")) != NULL;
         p++) {
        dropped += strtoll(p + strlen("{\"dropped\":"), NULL, 10);
    }
    assert_true(dropped > 0);
    assert_true(received > 0);
    assert_int_equal(received + dropped, N);
    close(fd);
    ga_buf_fini(&in);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tail_streams_the_prefix_events_as_json_lines,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tail_refusals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tail_clients_are_bounded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_tail_slow_reader_loses_counted_events_without_blocking, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
