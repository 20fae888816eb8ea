// SPDX-License-Identifier: MIT
// genapi-test-register BROKER_WORKER_ENDPOINT REGISTER_JSON: pushes one REGISTER body, as any
// worker could (with fields the C worker library has no way to set), prints the broker's
// REGISTERED answer as JSON on stdout, says DISCONNECT and exits: 0 when answered, 1 otherwise.
// REGISTER_JSON "-" reads the body from stdin (a table larger than an argument may be).
#include "ga_arena.h"
#include "ga_json.h"
#include "ga_proto.h"

#include <zmq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// All of stdin, NUL-terminated (malloc'd), or NULL.
static char *
s_read_stdin(size_t *len)
{
    size_t cap = 1 << 16;
    size_t n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, stdin);
        n += k;
        if (k == 0) {
            break;
        }
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: genapi-test-register BROKER_WORKER_ENDPOINT REGISTER_JSON\n");
        return 2;
    }
    ga_arena_t *a = ga_arena_new(4096);
    ga_value_t body;
    char why[200];
    size_t len = strlen(argv[2]);
    char *text = strcmp(argv[2], "-") == 0 ? s_read_stdin(&len) : NULL;
    const char *json = text ? text : argv[2];
    ga_err_t parsed = ga_json_decode(json, len, a, &body, why, sizeof why);
    free(text);
    if (parsed != GA_OK) {
        fprintf(stderr, "genapi-test-register: bad JSON: %s\n", why);
        ga_arena_destroy(&a);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    int status = 1;
    ga_buf_t buf;
    ga_buf_init(&buf);
    ga_proto_msg_t msg;
    ga_proto_msg_init(&msg);
    if (zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) == 0 &&
        zmq_connect(sock, argv[1]) == 0 &&
        ga_proto_send_value(sock, NULL, 0, GA_CMD_REGISTER, &body, &buf) == GA_OK) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        while (zmq_poll(&item, 1, 5000) > 0 && ga_proto_recv(sock, false, &msg, a) == GA_OK) {
            if (msg.cmd == GA_CMD_REGISTERED) {
                ga_buf_reset(&buf);
                ga_json_encode(&buf, &msg.value);
                printf("%.*s\n", (int) buf.len, (const char *) buf.data);
                status = 0;
                break;
            }
        }
        ga_value_t bye = ga_map(a, 1);
        ga_map_put(&bye, a, "reason", ga_str("done"));
        GA_IGNORE(ga_proto_send_value(sock, NULL, 0, GA_CMD_DISCONNECT, &bye, &buf) != GA_OK);
    }
    if (status != 0) {
        fprintf(stderr, "genapi-test-register: no REGISTERED from %s within 5 s\n", argv[1]);
    }
    ga_proto_msg_fini(&msg);
    ga_buf_fini(&buf);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    ga_arena_destroy(&a);
    return status;
}
