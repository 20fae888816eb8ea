// SPDX-License-Identifier: MIT
// genapi-test-register BROKER_WORKER_ENDPOINT REGISTER_JSON: pushes one REGISTER body, as any
// worker could (with fields the C worker library has no way to set), prints the broker's
// REGISTERED answer as JSON on stdout, says DISCONNECT and exits: 0 when answered, 1 otherwise.
#include "ga_arena.h"
#include "ga_json.h"
#include "ga_proto.h"

#include <zmq.h>

#include <stdio.h>
#include <string.h>

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
    if (ga_json_decode(argv[2], strlen(argv[2]), a, &body, why, sizeof why) != GA_OK) {
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
