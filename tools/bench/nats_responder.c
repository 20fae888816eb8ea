// SPDX-License-Identifier: MIT
// genapi-nats-responder: the peer genapi is measured against. A cnats service that answers
// requests on user_service.get_user with the same JSON genapi's user_service returns for
// get_user "1". SendAsap is on: without it cnats's flusher adds about 1 ms to every reply.
//
// With --stream SUBJECT it also serves the peer of genapi's test_service.count on SUBJECT: a
// request {"n":N} gets N messages on its reply subject, {"i":1} .. {"i":N,"last":true} (the
// convention in bench_nats.h, which genapi-bench's mode nats-stream reads).
#include "bench_nats.h"

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char s_alice[] = "{\"id\":\"1\",\"name\":\"Alice\",\"email\":\"alice@example.com\"}";
static const char s_bad_stream[] = BENCH_NATS_STREAM_BAD_REQUEST;

static void
s_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) sub;
    (void) closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply) {
        natsConnection_Publish(nc, reply, s_alice, (int) sizeof s_alice - 1);
    }
    natsMsg_Destroy(msg);
}

// One stream, published from this subscription's delivery thread: streams are served one after
// another, each chunk written as soon as it is published (SendAsap).
static void
s_on_stream(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) sub;
    (void) closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply == NULL) {
        natsMsg_Destroy(msg);
        return;
    }
    long long n = bench_nats_stream_n(natsMsg_GetData(msg), (size_t) natsMsg_GetDataLength(msg));
    if (n == 0) {
        natsConnection_Publish(nc, reply, s_bad_stream, (int) sizeof s_bad_stream - 1);
    }
    char chunk[64];
    for (long long i = 1; i <= n; i++) {
        size_t len = bench_nats_stream_chunk(chunk, sizeof chunk, i, n);
        if (natsConnection_Publish(nc, reply, chunk, (int) len) != NATS_OK) {
            break; // connection closed: the client sees the stream stop
        }
    }
    natsMsg_Destroy(msg);
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: genapi-nats-responder [URL [SUBJECT]] [--stream SUBJECT]\n"
                    "  URL defaults to nats://127.0.0.1:4222, SUBJECT to user_service.get_user\n");
}

int
main(int argc, char **argv)
{
    const char *url = "nats://127.0.0.1:4222";
    const char *subject = "user_service.get_user";
    const char *stream_subject = NULL;
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stream") == 0 && i + 1 < argc) {
            stream_subject = argv[++i];
        } else if (argv[i][0] != '-' && positional < 2) {
            if (positional++ == 0) {
                url = argv[i];
            } else {
                subject = argv[i];
            }
        } else {
            s_usage();
            return 2;
        }
    }
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsSubscription *stream_sub = NULL;
    // SIGINT and SIGTERM blocked before cnats starts its threads, which inherit the mask: the
    // main thread takes them with sigwait. (A handler could run on a cnats thread and leave
    // the main thread in pause() for ever.)
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (natsOptions_Create(&opts) != NATS_OK || natsOptions_SetURL(opts, url) != NATS_OK ||
        natsOptions_SetSendAsap(opts, true) != NATS_OK ||
        natsConnection_Connect(&nc, opts) != NATS_OK ||
        natsConnection_Subscribe(&sub, nc, subject, s_on_msg, NULL) != NATS_OK) {
        fprintf(stderr, "genapi-nats-responder: cannot serve %s on %s\n", subject, url);
        return 1;
    }
    if (stream_subject &&
        natsConnection_Subscribe(&stream_sub, nc, stream_subject, s_on_stream, NULL) != NATS_OK) {
        fprintf(stderr, "genapi-nats-responder: cannot serve streams on %s on %s\n",
                stream_subject, url);
        return 1;
    }
    // The subscriptions are known to the server once it has answered a PING sent after them.
    if (natsConnection_Flush(nc) != NATS_OK) {
        fprintf(stderr, "genapi-nats-responder: no answer from %s\n", url);
        return 1;
    }
    if (stream_subject) {
        printf("READY nats-responder %s %s stream %s\n", url, subject, stream_subject);
    } else {
        printf("READY nats-responder %s %s\n", url, subject);
    }
    fflush(stdout);
    int signo = 0;
    while (sigwait(&stop_signals, &signo) != 0) {
    }
    natsSubscription_Destroy(stream_sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return 0;
}
