// SPDX-License-Identifier: MIT
// Fuzz target: the service protocol's frame reader (ga_proto_recv) on real libzmq sockets, as a
// broker's ROUTER sees a peer's messages: plain messages and batches (docs/protocol.md,
// "Frames" and "Batches"). The input is cut into frames (a byte gives each frame's length, the
// bytes after it its data; 0xff ends a message), sent over inproc from a DEALER, and read back
// until nothing is left. Whatever came, the reader must stay in step: a sentinel message sent
// after the fuzzed ones is read whole, and nothing of the fuzzed messages is left behind.
#include "ga_proto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void *s_ctx;
static void *s_router;
static void *s_dealer;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    s_ctx = zmq_ctx_new();
    s_router = zmq_socket(s_ctx, ZMQ_ROUTER);
    s_dealer = zmq_socket(s_ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s_router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s_dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(s_router, "inproc://fuzz-frames") != 0 ||
        zmq_connect(s_dealer, "inproc://fuzz-frames") != 0) {
        abort();
    }
    return 0;
}

// Receives on the ROUTER until it has nothing (a batch is read to its end); returns how many
// items were accepted. Waits briefly for the first message: inproc delivery is asynchronous.
static void
s_read_all(ga_proto_msg_t *msg, ga_arena_t *arena)
{
    zmq_pollitem_t item = {.socket = s_router, .events = ZMQ_POLLIN};
    while (msg->batch_socket != NULL || zmq_poll(&item, 1, 0) > 0) {
        ga_err_t rc = ga_proto_recv(s_router, true, msg, arena);
        ga_arena_reset(arena);
        if (rc == GA_EAGAIN) {
            break;
        }
        if (rc == GA_OK && msg->has_payload) {
            size_t len = 0;
            const uint8_t *p = ga_proto_payload(msg, &len);
            if (p == NULL || len == 0) {
                abort(); // a payload is never empty
            }
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ga_arena_t *arena = ga_arena_new(4096);
    ga_proto_msg_t msg;
    ga_proto_msg_init(&msg);
    // Frames: [len][len bytes]...; len 0xff ends the message (the last frame sent without
    // SNDMORE is an empty one when the message has no frame yet).
    size_t i = 0;
    int frames = 0;
    while (i < size) {
        uint8_t len = data[i++];
        if (len == 0xff || i >= size) {
            zmq_send(s_dealer, "", 0, 0); // ends the message (an empty frame last)
            frames = 0;
            continue;
        }
        size_t n = len;
        if (n > size - i) {
            n = size - i;
        }
        bool last = i + n >= size;
        zmq_send(s_dealer, data + i, n, last ? 0 : ZMQ_SNDMORE);
        i += n;
        frames = last ? 0 : frames + 1;
    }
    if (frames) {
        zmq_send(s_dealer, "", 0, 0);
    }
    // The sentinel: a HEARTBEAT with an empty map (its head frame: tag, command, envelope).
    const uint8_t head[GA_PROTO_HEAD_LEN + 1] = {'G', 'A', 'P', 'I', GA_PROTO_VERSION,
                                                 GA_CMD_HEARTBEAT, 0x80};
    zmq_send(s_dealer, head, sizeof head, 0);
    // Read until the sentinel comes: everything before it is consumed whatever it was.
    bool sentinel = false;
    for (int spins = 0; spins < 100000 && !sentinel; spins++) {
        zmq_pollitem_t item = {.socket = s_router, .events = ZMQ_POLLIN};
        if (msg.batch_socket == NULL && zmq_poll(&item, 1, 100) <= 0) {
            continue;
        }
        ga_err_t rc = ga_proto_recv(s_router, true, &msg, arena);
        if (rc == GA_OK && msg.cmd == GA_CMD_HEARTBEAT && msg.batch_socket == NULL &&
            msg.body.len == 1 && msg.body.data[0] == 0x80) {
            sentinel = true; // (a fuzzed message may look the same: the next check decides)
        }
        ga_arena_reset(arena);
    }
    if (!sentinel) {
        abort(); // the reader lost its place: the sentinel never came whole
    }
    s_read_all(&msg, arena); // a fuzzed HEARTBEAT like the sentinel may have come first
    ga_proto_msg_fini(&msg);
    ga_arena_destroy(&arena);
    return 0;
}
