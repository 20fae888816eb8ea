// SPDX-License-Identifier: MIT
// Streams: each chunk is a topic message on an XPUB socket connected to the broker's XSUB
// proxy, numbered so the gateway can tell a gap from silence. The socket is shared by every
// streaming thread under one mutex, and nothing else ever touches it (it is never polled), so
// the sharing is safe. XPUB rather than PUB: it tells us when the broker's subscription has
// arrived, and with XPUB_NODROP a full queue is an error we can wait on instead of silent loss.
#include "wk_internal.h"

#include "ga_clock.h"
#include "ga_log.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <string.h>
#include <time.h>
#include <zmq.h>

#define WK_STREAM_WAIT_MS 5000 // longest wait for the broker to take a chunk
#define WK_STREAM_HWM     10000

static void
s_nap(void)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
    nanosleep(&ts, NULL);
}

void
wk_stream_connect(wk_worker_t *w, const char *endpoint)
{
    pthread_mutex_lock(&w->stream_lock);
    if (w->pub && strcmp(w->pub_endpoint, endpoint) == 0) {
        pthread_mutex_unlock(&w->stream_lock);
        return;
    }
    if (w->pub) {
        zmq_close(w->pub);
        w->pub = NULL;
    }
    w->pub_ready = false;
    void *pub = zmq_socket(zsys_init(), ZMQ_XPUB);
    int zero = 0;
    int one = 1;
    int hwm = WK_STREAM_HWM;
    if (pub == NULL || zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one) != 0 ||
        (w->curve && ga_curve_client(pub, &w->curve_own, w->curve_broker.public_txt) != GA_OK) ||
        zmq_connect(pub, endpoint) != 0) {
        GA_ERR("cannot connect the stream socket to %s", endpoint);
        if (pub) {
            zmq_close(pub);
        }
    } else {
        w->pub = pub;
        snprintf(w->pub_endpoint, sizeof w->pub_endpoint, "%s", endpoint);
    }
    pthread_mutex_unlock(&w->stream_lock);
}

static void
s_free_stream(wk_stream_t *s)
{
    ga_free(s->topic);
    ga_arena_destroy(&s->ctx->arena);
    ga_free(s->ctx);
    ga_free(s);
}

static void
s_free_each(uint64_t id, void *value, void *arg)
{
    (void) id;
    (void) arg;
    s_free_stream(value);
}

void
wk_stream_shutdown(wk_worker_t *w)
{
    pthread_mutex_lock(&w->stream_lock);
    if (w->pub) {
        zmq_close(w->pub);
        w->pub = NULL;
    }
    if (w->streams) {
        ga_idmap_each(w->streams, s_free_each, NULL);
        ga_idmap_destroy(&w->streams);
    }
    pthread_mutex_unlock(&w->stream_lock);
}

wk_stream_t *
wk_stream_open(wk_worker_t *w, int64_t id, const char *topic)
{
    wk_stream_t *s = ga_calloc(1, sizeof *s);
    s->w = w;
    s->id = id;
    s->topic = ga_strdup(topic);
    s->ctx = ga_calloc(1, sizeof *s->ctx);
    s->ctx->arena = ga_arena_new(4096);
    s->ctx->id = id;
    s->ctx->node = w->node;
    s->ctx->worker = w; // group operations from the streaming thread (genapi/groups.h)
    pthread_mutex_lock(&w->stream_lock);
    ga_idmap_put(w->streams, (uint64_t) id, s);
    pthread_mutex_unlock(&w->stream_lock);
    return s;
}

void
wk_stream_cancel(wk_worker_t *w, int64_t id)
{
    pthread_mutex_lock(&w->stream_lock);
    wk_stream_t *s = id > 0 ? ga_idmap_get(w->streams, (uint64_t) id) : NULL;
    if (s) {
        atomic_store(&s->cancelled, true);
        GA_INFO("stream %lld cancelled by the broker", (long long) id);
    }
    pthread_mutex_unlock(&w->stream_lock);
}

wk_stream_t *
wk_request_stream(wk_request_t *req)
{
    return req->stream;
}

wk_request_t *
wk_stream_ctx(wk_stream_t *s)
{
    return s->ctx;
}

bool
wk_stream_is_cancelled(const wk_stream_t *s)
{
    return atomic_load(&((wk_stream_t *) s)->cancelled);
}

// Consumes subscription messages; true once the broker's subscription has arrived.
static bool
s_ready_locked(wk_worker_t *w)
{
    char sub[64];
    while (!w->pub_ready && zmq_recv(w->pub, sub, sizeof sub, ZMQ_DONTWAIT) > 0) {
        w->pub_ready = sub[0] == 1;
    }
    return w->pub_ready;
}

// Publishes one stream message, waiting (bounded) for the socket and for room in its queue.
static ga_err_t
s_publish(wk_stream_t *s, const char *kind, const ga_value_t *data, const char *error)
{
    if (atomic_load(&s->cancelled)) {
        return GA_ECLOSED;
    }
    wk_worker_t *w = s->w;
    ga_arena_t *a = s->ctx->arena;
    ga_value_t m = ga_map(a, 5);
    ga_map_put(&m, a, "call", ga_int(s->id));
    ga_map_put(&m, a, "seq", ga_int((int64_t) (s->seq + 1)));
    ga_map_put(&m, a, "kind", ga_str(kind));
    if (data) {
        ga_map_put(&m, a, "data", *data);
    }
    if (error) {
        ga_map_put(&m, a, "error", ga_str(error));
    }
    ga_buf_t body;
    ga_buf_init(&body);
    ga_wire_encode(&body, &m);
    int64_t deadline = ga_clock_ms() + WK_STREAM_WAIT_MS;
    ga_err_t rc = GA_EAGAIN;
    if (w->local_sink) {
        w->local_sink(w->local_sink_arg, &m); // in-process: no socket, no wait
        rc = GA_OK;
    }
    while (rc == GA_EAGAIN) {
        pthread_mutex_lock(&w->stream_lock);
        if (w->pub && s_ready_locked(w)) {
            rc = ga_proto_publish(w->pub, s->topic, GA_CMD_STREAM, &body);
        }
        pthread_mutex_unlock(&w->stream_lock);
        if (rc != GA_EAGAIN || ga_clock_ms() >= deadline || atomic_load(&s->cancelled)) {
            break;
        }
        s_nap(); // the broker is not taking chunks yet: wait, bounded
    }
    ga_buf_fini(&body);
    ga_arena_reset(a);
    if (rc == GA_OK) {
        s->seq++;
    }
    return rc == GA_OK ? GA_OK : (atomic_load(&s->cancelled) ? GA_ECLOSED : GA_EAGAIN);
}

// Ends a stream: forgets and frees it.
static ga_err_t
s_end(wk_stream_t *s, ga_err_t rc)
{
    wk_worker_t *w = s->w;
    pthread_mutex_lock(&w->stream_lock);
    if (w->streams) {
        ga_idmap_take(w->streams, (uint64_t) s->id);
    }
    pthread_mutex_unlock(&w->stream_lock);
    s_free_stream(s);
    return rc;
}

ga_err_t
wk_stream_send(wk_stream_t *s, const wk_value_t *chunk)
{
    ga_value_t nil = ga_nil();
    return s_publish(s, "chunk", chunk ? chunk : &nil, NULL);
}

ga_err_t
wk_stream_send_last(wk_stream_t *s, const wk_value_t *chunk)
{
    ga_value_t nil = ga_nil();
    return s_end(s, s_publish(s, "last", chunk ? chunk : &nil, NULL));
}

ga_err_t
wk_stream_complete(wk_stream_t *s)
{
    return s_end(s, s_publish(s, "end", NULL, NULL));
}

ga_err_t
wk_stream_error(wk_stream_t *s, const char *message)
{
    return s_end(s, s_publish(s, "error", NULL, message ? message : "stream failed"));
}
