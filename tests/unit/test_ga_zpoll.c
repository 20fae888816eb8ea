// SPDX-License-Identifier: MIT
// ga_zpoll over real ZeroMQ sockets (inproc and tcp on loopback) and a pipe: readiness is
// reported, messages left behind after a partial receive are not lost to ZMQ_FD's edge, a send
// that swallows an edge is caught by touch, and plain descriptors are seen even while a socket
// stays busy.
#include "ga_zpoll.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

typedef struct {
    void *ctx;
    void *a; // sender
    void *b; // polled
} pair_t;

static void
s_pair_open(pair_t *p, int type_a, int type_b)
{
    p->ctx = zmq_ctx_new();
    p->a = zmq_socket(p->ctx, type_a);
    p->b = zmq_socket(p->ctx, type_b);
    int zero = 0;
    zmq_setsockopt(p->a, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->b, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(p->b, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    assert_int_equal(zmq_getsockopt(p->b, ZMQ_LAST_ENDPOINT, ep, &len), 0);
    assert_int_equal(zmq_connect(p->a, ep), 0);
}

static void
s_pair_close(pair_t *p)
{
    zmq_close(p->a);
    zmq_close(p->b);
    zmq_ctx_term(p->ctx);
}

static void
s_send(void *sock, const char *text)
{
    assert_int_equal(zmq_send(sock, text, strlen(text), 0), (int) strlen(text));
}

static void
s_recv(void *sock, const char *want)
{
    char buf[64];
    int n = zmq_recv(sock, buf, sizeof buf, ZMQ_DONTWAIT);
    assert_int_equal(n, (int) strlen(want));
    assert_memory_equal(buf, want, (size_t) n);
}

static void
test_ready_after_send_and_not_before(void **state)
{
    (void) state;
    pair_t p;
    s_pair_open(&p, ZMQ_PAIR, ZMQ_PAIR);
    ga_zpoll_item_t items[1] = {{.socket = p.b}};
    ga_zpoll_t z;
    assert_int_equal(ga_zpoll_init(&z, items, 1), GA_OK);
    assert_int_equal(ga_zpoll_wait(&z, 0), 0);
    assert_false(items[0].ready);
    s_send(p.a, "one");
    assert_int_equal(ga_zpoll_wait(&z, 5000), 1);
    assert_true(items[0].ready);
    s_recv(p.b, "one");
    assert_int_equal(ga_zpoll_wait(&z, 0), 0);
    ga_zpoll_fini(&z);
    s_pair_close(&p);
}

// Three messages arrive; the caller takes one per wait and never sees EAGAIN. Each wait must
// still report the socket ready although its descriptor fired only once.
static void
test_partial_receive_keeps_the_rest_visible(void **state)
{
    (void) state;
    pair_t p;
    s_pair_open(&p, ZMQ_PAIR, ZMQ_PAIR);
    ga_zpoll_item_t items[1] = {{.socket = p.b}};
    ga_zpoll_t z;
    assert_int_equal(ga_zpoll_init(&z, items, 1), GA_OK);
    s_send(p.a, "m1");
    s_send(p.a, "m2");
    s_send(p.a, "m3");
    const char *want[] = {"m1", "m2", "m3"};
    for (int i = 0; i < 3; i++) {
        // The three may arrive separately over tcp: wait as long as needed for each.
        assert_int_equal(ga_zpoll_wait(&z, 5000), 1);
        s_recv(p.b, want[i]);
    }
    assert_int_equal(ga_zpoll_wait(&z, 0), 0);
    ga_zpoll_fini(&z);
    s_pair_close(&p);
}

// A message arrives while the caller sends on the same socket; sends process the socket's
// commands, so the arrival's edge may be consumed. After touch, wait reports it.
static void
test_touch_after_send_finds_swallowed_arrivals(void **state)
{
    (void) state;
    pair_t p;
    s_pair_open(&p, ZMQ_DEALER, ZMQ_DEALER);
    ga_zpoll_item_t items[1] = {{.socket = p.b}};
    ga_zpoll_t z;
    assert_int_equal(ga_zpoll_init(&z, items, 1), GA_OK);
    assert_int_equal(ga_zpoll_wait(&z, 0), 0); // b is clean from here on
    s_send(p.b, "ping");
    assert_int_equal(zmq_poll(&(zmq_pollitem_t){.socket = p.a, .events = ZMQ_POLLIN}, 1, 5000), 1);
    s_recv(p.a, "ping");
    s_send(p.a, "pong");
    // Wait for the reply to reach b (zmq_poll asks ZMQ_EVENTS: the edge is consumed), then
    // send on b as a caller would.
    assert_int_equal(zmq_poll(&(zmq_pollitem_t){.socket = p.b, .events = ZMQ_POLLIN}, 1, 5000), 1);
    s_send(p.b, "again");
    ga_zpoll_touch(&z, p.b);
    assert_int_equal(ga_zpoll_wait(&z, 0), 1);
    s_recv(p.b, "pong");
    ga_zpoll_fini(&z);
    s_pair_close(&p);
}

// A socket that always has more to read does not hide a readable plain descriptor.
static void
test_plain_descriptor_seen_while_socket_busy(void **state)
{
    (void) state;
    pair_t p;
    s_pair_open(&p, ZMQ_PAIR, ZMQ_PAIR);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    ga_zpoll_item_t items[2] = {{.socket = p.b}, {.fd = fds[0]}};
    ga_zpoll_t z;
    assert_int_equal(ga_zpoll_init(&z, items, 2), GA_OK);
    s_send(p.a, "x");
    s_send(p.a, "y");
    assert_int_equal(ga_zpoll_wait(&z, 5000), 1);
    assert_true(items[0].ready);
    assert_false(items[1].ready);
    assert_int_equal(write(fds[1], "w", 1), 1);
    assert_int_equal(ga_zpoll_wait(&z, 5000), 2);
    assert_true(items[0].ready);
    assert_true(items[1].ready);
    ga_zpoll_fini(&z);
    close(fds[0]);
    close(fds[1]);
    s_pair_close(&p);
}

static void
test_touch_of_unknown_socket_is_harmless(void **state)
{
    (void) state;
    pair_t p;
    s_pair_open(&p, ZMQ_PAIR, ZMQ_PAIR);
    ga_zpoll_item_t items[1] = {{.socket = p.b}};
    ga_zpoll_t z;
    assert_int_equal(ga_zpoll_init(&z, items, 1), GA_OK);
    assert_int_equal(ga_zpoll_wait(&z, 0), 0);
    ga_zpoll_touch(&z, p.a);
    assert_false(items[0].dirty);
    assert_int_equal(ga_zpoll_wait(&z, 0), 0);
    ga_zpoll_fini(&z);
    s_pair_close(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_after_send_and_not_before),
        cmocka_unit_test(test_partial_receive_keeps_the_rest_visible),
        cmocka_unit_test(test_touch_after_send_finds_swallowed_arrivals),
        cmocka_unit_test(test_plain_descriptor_seen_while_socket_busy),
        cmocka_unit_test(test_touch_of_unknown_socket_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
