// SPDX-License-Identifier: MIT
// genapi-nats-responder: the peer genapi is measured against. A cnats service that answers
// requests on user_service.get_user with the same JSON genapi's user_service returns for
// get_user "1". SendAsap is on: without it cnats's flusher adds about 1 ms to every reply.
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char s_alice[] = "{\"id\":\"1\",\"name\":\"Alice\",\"email\":\"alice@example.com\"}";
static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal(int signo)
{
    (void) signo;
    s_stop = 1;
}

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

int
main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "nats://127.0.0.1:4222";
    const char *subject = argc > 2 ? argv[2] : "user_service.get_user";
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    if (natsOptions_Create(&opts) != NATS_OK || natsOptions_SetURL(opts, url) != NATS_OK ||
        natsOptions_SetSendAsap(opts, true) != NATS_OK ||
        natsConnection_Connect(&nc, opts) != NATS_OK ||
        natsConnection_Subscribe(&sub, nc, subject, s_on_msg, NULL) != NATS_OK ||
        natsConnection_Flush(nc) != NATS_OK) {
        fprintf(stderr, "genapi-nats-responder: cannot serve %s on %s\n", subject, url);
        return 1;
    }
    printf("READY nats-responder %s %s\n", url, subject);
    fflush(stdout);
    while (!s_stop) {
        pause();
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return 0;
}
