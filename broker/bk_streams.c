// SPDX-License-Identifier: MIT
// Streams: the XSUB/XPUB proxy that forwards workers' chunks to gateways untouched, moves a
// stream's idle deadline on at each message, forgets the call when its last message passes (or
// ends it with an error when a message cannot pass), and the stops (a gateway's STOP, admin
// stop_stream).
#include "bk_internal.h"

#include "ga_arena.h"
#include "ga_clock.h"
#include "ga_inflight.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <string.h>
#include <zmq.h>

// A stream message the gateway's queue could not take: the stream is broken (the gateway would
// see a gap at its next message, or, when the lost one ended the stream, never hear of it
// again). End it now on the reliable ROUTER/DEALER pair: the gateway gets an error RESULT and
// ends the stream for its client with that error; the worker is told to stop.
static void
s_interrupt(bk_broker_t *self, bk_call_t *call, bool ended)
{
    if (!ended) {
        bk_cancel_worker(self, call);
    }
    bk_send_error(self, call->gw_id, call->gw_id_len, call->gw_call_id, GA_EAGAIN,
                  "Stream interrupted: chunks were lost", true);
    bk_release_call(self, call);
}

// Forwards one stream message from the XSUB side to the XPUB side, frames untouched. Each
// message moves its stream's deadline on; the one that ends the stream forgets the call once
// it is on its way. A message the gateway cannot take ends the stream with an error. A batch
// (docs/protocol.md, "Streams on the proxy") is one message here: only its small body is
// decoded, never its data frame.
bool
bk_on_stream(bk_broker_t *self)
{
    zmq_msg_t parts[5];
    int n = 0;
    bool more = true;
    bool ok = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, self->stream_in, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&part);
            ok = false;
            break;
        }
        more = zmq_msg_more(&part);
        if (n < 5) {
            parts[n++] = part;
        } else {
            zmq_msg_close(&part);
            ok = false; // too many frames: drained and dropped
        }
    }
    if (n == 0) {
        return false;
    }
    // topic, head (tag, command, body), and a batch's data
    ok = ok && (n == 2 || n == 3) && zmq_msg_size(&parts[1]) > GA_PROTO_HEAD_LEN &&
         memcmp(zmq_msg_data(&parts[1]), GA_PROTO_TAG, GA_PROTO_TAG_LEN) == 0 &&
         ((uint8_t *) zmq_msg_data(&parts[1]))[GA_PROTO_TAG_LEN] == GA_CMD_STREAM;
    ga_value_t body;
    if (ok && ga_wire_decode((uint8_t *) zmq_msg_data(&parts[1]) + GA_PROTO_HEAD_LEN,
                             zmq_msg_size(&parts[1]) - GA_PROTO_HEAD_LEN, self->arena,
                             &body) == GA_OK) {
        const char *kind = ga_map_get_str(&body, "kind");
        int64_t id = ga_map_get_int(&body, "call", 0);
        bool ends = kind && strcmp(kind, "chunk") != 0;
        // Messages in it (counted in the stats): a batch says how many.
        int64_t count = n == 3 ? ga_map_get_int(&body, "n", 1) : 1;
        count = count < 1 ? 1 : count > 65536 ? 65536 : count;
        bk_call_t *call = id > 0 ? (bk_call_t *) ga_inflight_get(self->calls, (uint64_t) id) : NULL;
        if (call && !call->stream) {
            call = NULL; // not a stream: its deadline and end are the reply's business
        }
        // Only the call's own topic, and with CURVE on only from the worker it was routed to.
        bool allowed = bk_access_stream_msg(self, call, &parts[0]);
        bool sent = allowed;
        for (int i = 0; sent && i < n; i++) {
            int flags = (i < n - 1 ? ZMQ_SNDMORE : 0) | (i == 0 ? ZMQ_DONTWAIT : 0);
            if (zmq_msg_send(&parts[i], self->stream_out, flags) < 0) {
                // Only the first frame can fail (the rest of a message always goes): this
                // gateway's queue is full (XPUB_NODROP).
                sent = false;
                break;
            }
        }
        if (!allowed) {
            // Dropped, counted in stats.refused: nothing of it reaches a gateway.
        } else if (!sent) {
            self->stats.chunks_dropped += (uint64_t) count;
            if (call) {
                s_interrupt(self, call, ends);
            }
        } else {
            self->stats.chunks += (uint64_t) count;
            if (call && ends) {
                if (call->worker) {
                    call->worker->failures = 0;
                }
                bk_release_call(self, call);
            } else if (call && call->idle_ms > 0) {
                ga_inflight_set_deadline(self->calls, &call->rec, ga_clock_ms() + call->idle_ms);
            }
        }
    } else {
        self->stats.malformed++;
    }
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&parts[i]); // harmless on parts already sent
    }
    ga_arena_reset(self->arena);
    return true;
}

// Gateways' subscriptions arrive on the XPUB side; there is nothing to forward upstream (the
// XSUB side subscribes to everything), so they are read and dropped.
void
bk_drain_subscriptions(bk_broker_t *self)
{
    char buf[256];
    for (int i = 0; i < 256 && zmq_recv(self->stream_out, buf, sizeof buf, ZMQ_DONTWAIT) >= 0;
         i++) {
    }
}

// STOP from a gateway: its client is gone, so cancel without answering. Only that gateway's
// calls are looked at.
void
bk_on_stop(bk_broker_t *self, const bk_gateway_t *gw, const ga_proto_msg_t *msg)
{
    int64_t gw_call_id = ga_map_get_int(&msg->value, "id", 0);
    for (ga_inflight_rec_t *r = ga_inflight_owned(self->calls, BK_OWNER_GATEWAY, gw->serial); r;
         r = r->next[BK_OWNER_GATEWAY]) {
        bk_call_t *call = (bk_call_t *) r;
        if (gw_call_id > 0 && call->gw_call_id == (uint64_t) gw_call_id) {
            bk_cancel_worker(self, call);
            bk_release_call(self, call);
            return;
        }
    }
}

// Stops every open stream with the client request id `request_id`; the client gets kind end.
// An operator's request: it walks the table.
size_t
bk_stop_streams(bk_broker_t *self, const char *request_id)
{
    size_t n = 0;
    for (ga_inflight_rec_t *r = ga_inflight_first(self->calls); r;) {
        ga_inflight_rec_t *next = r->all_next;
        bk_call_t *call = (bk_call_t *) r;
        if (call->stream && strcmp(call->request_id, request_id) == 0) {
            bk_cancel_worker(self, call);
            ga_arena_t *a = self->arena;
            ga_value_t m = ga_map(a, 3);
            ga_map_put(&m, a, "id", ga_int((int64_t) call->gw_call_id));
            ga_map_put(&m, a, "ok", ga_bool(true));
            ga_map_put(&m, a, "stopped", ga_bool(true));
            bk_send(self, self->gateways, call->gw_id, call->gw_id_len, GA_CMD_RESULT, &m);
            bk_release_call(self, call);
            n++;
        }
        r = next;
    }
    return n;
}
