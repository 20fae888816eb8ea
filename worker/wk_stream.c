// SPDX-License-Identifier: MIT
// Streams: each stream message is a topic message on an XPUB socket connected to the broker's
// XSUB proxy, numbered so the gateway can tell a gap from silence (docs/protocol.md, "Streams
// on the proxy").
//
// A streaming thread does not touch the socket: it encodes the message's data at once and
// queues the message on its stream (bounded: WK_STREAM_BATCH_MAX messages, about
// WK_STREAM_BATCH_BYTES), and the publisher thread sends what is queued. When a stream queues
// faster than the publisher sends, the publisher finds several messages queued and sends them
// as one batch message; a stream that sends now and then has each message sent alone, as soon
// as the publisher wakes. So the socket has one thread (no lock around it), and the broker and
// the gateway handle one ZeroMQ message per batch rather than per chunk.
//
// XPUB rather than PUB: it tells us when the broker's subscription has arrived, and with
// XPUB_NODROP a full queue is an error we can wait on instead of silent loss. A batch the
// broker does not take within WK_STREAM_WAIT_MS is dropped and its stream marked broken: its
// later sends fail (the gateway sees the gap, or the silence, and ends it for the client).
#include "wk_internal.h"

#include "ga_clock.h"
#include "ga_log.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define WK_STREAM_WAIT_MS     5000  // longest wait for room in a stream's queue, or the broker
#define WK_STREAM_HWM         10000 // messages (batches) queued in the socket
#define WK_STREAM_BATCH_MAX   256   // messages in one batch (and in one stream's queue)
#define WK_STREAM_BATCH_BYTES 32768 // data bytes in one batch, unless one message is larger
#define WK_STREAM_HEAD        3     // bytes kept before the queued data for the array header

// Waits on `cond` (stream_lock held) for at most `ms` milliseconds of the monotonic clock.
static void
s_wait(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cond, lock, &ts);
}

static void
s_nap(void)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
    nanosleep(&ts, NULL);
}

static void
s_free_stream(wk_stream_t *s)
{
    ga_free(s->topic);
    ga_free(s->error);
    ga_buf_fini(&s->stage);
    ga_buf_fini(&s->queue);
    ga_buf_fini(&s->spare);
    ga_arena_destroy(&s->ctx->arena);
    ga_free(s->ctx);
    ga_free(s);
}

// Frees an ended stream once the publisher is done with it (stream_lock held). True if freed.
static bool
s_release_locked(wk_worker_t *w, wk_stream_t *s)
{
    if (!s->ended || s->on_list || s->sending) {
        return false;
    }
    if (w->streams) {
        ga_idmap_take(w->streams, (uint64_t) s->id);
    }
    s_free_stream(s);
    return true;
}

// Forgets a stream's queued messages (stream_lock held).
static void
s_clear_queue_locked(wk_stream_t *s)
{
    s->queue.len = WK_STREAM_HEAD;
    s->n_queued = 0;
    s->n_data = 0;
    s->end_kind = NULL;
    ga_free(s->error);
    s->error = NULL;
}

// ---------------------------------------------------------------------------------------------
// The publisher thread

// (Re)connects the socket to `endpoint`. Publisher thread.
static void
s_connect(wk_worker_t *w, const char *endpoint)
{
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
}

// Consumes subscription messages; true once the broker's subscription has arrived.
static bool
s_ready(wk_worker_t *w)
{
    char sub[64];
    while (w->pub && !w->pub_ready && zmq_recv(w->pub, sub, sizeof sub, ZMQ_DONTWAIT) > 0) {
        w->pub_ready = sub[0] == 1;
    }
    return w->pub && w->pub_ready;
}

// What the publisher took from a stream: messages first_seq .. first_seq + n - 1, the data of
// those that have data in `data` (after WK_STREAM_HEAD bytes), the last one of kind `kind`.
typedef struct {
    uint64_t first_seq;
    uint32_t n;
    uint32_t n_data;
    const char *kind;
    char *error;     // owned
    ga_buf_t *data;  // the stream's spare buffer
} batch_t;

// Encodes the body of a batch into `body`; sets *items (the batch's data frame) or NULL.
static void
s_encode(const wk_stream_t *s, batch_t *b, ga_arena_t *a, ga_buf_t *body, const uint8_t **items,
         size_t *items_len)
{
    ga_value_t m = ga_map(a, 5);
    ga_map_put(&m, a, "call", ga_int(s->id));
    ga_map_put(&m, a, "seq", ga_int((int64_t) b->first_seq));
    ga_map_put(&m, a, "kind", ga_str(b->kind));
    if (b->error) {
        ga_map_put(&m, a, "error", ga_str(b->error));
    }
    uint8_t *data = b->data->data + WK_STREAM_HEAD;
    size_t data_len = b->data->len - WK_STREAM_HEAD;
    *items = NULL;
    *items_len = 0;
    ga_buf_reset(body);
    if (b->n == 1) {
        // One message: the form without `n`, its data (if any) the last value of the map. It
        // is encoded as nil and the nil (one byte, 0xc0, last) replaced by the encoded data.
        if (b->n_data == 1) {
            ga_map_put(&m, a, "data", ga_nil());
        }
        ga_wire_encode(body, &m);
        if (b->n_data == 1) {
            ga_assert(body->len > 0 && body->data[body->len - 1] == 0xc0);
            body->len--;
            ga_buf_append(body, data, data_len);
        }
        return;
    }
    ga_map_put(&m, a, "n", ga_int(b->n));
    ga_wire_encode(body, &m);
    if (b->n_data > 0) {
        // A MessagePack array of n_data values: its header just before the queued data.
        uint8_t *head;
        if (b->n_data < 16) {
            head = data - 1;
            head[0] = (uint8_t) (0x90 | b->n_data);
        } else {
            head = data - 3;
            head[0] = 0xdc;
            head[1] = (uint8_t) (b->n_data >> 8);
            head[2] = (uint8_t) b->n_data;
        }
        *items = head;
        *items_len = (size_t) (data + data_len - head);
    }
}

// Sends one batch; GA_EAGAIN when the socket has no room (nothing sent).
static ga_err_t
s_send(wk_worker_t *w, const wk_stream_t *s, const ga_buf_t *body, const uint8_t *items,
       size_t items_len)
{
    // The head frame: tag, command, then the body (docs/protocol.md, "Streams on the proxy").
    zmq_msg_t head;
    if (zmq_msg_init_size(&head, GA_PROTO_HEAD_LEN + body->len) != 0) {
        return GA_EIO;
    }
    uint8_t *d = zmq_msg_data(&head);
    memcpy(d, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
    d[GA_PROTO_TAG_LEN] = GA_CMD_STREAM;
    memcpy(d + GA_PROTO_HEAD_LEN, body->data, body->len);
    if (zmq_send(w->pub, s->topic, strlen(s->topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return zmq_errno() == EAGAIN ? GA_EAGAIN : GA_EIO;
    }
    // The rest of a message always goes once its first frame has.
    if (zmq_msg_send(&head, w->pub, items ? ZMQ_SNDMORE : 0) < 0) {
        zmq_msg_close(&head);
    }
    if (items) {
        zmq_send(w->pub, items, items_len, 0);
    }
    return GA_OK;
}

// Publishes one batch taken from `s`, waiting (bounded) for the broker's subscription and for
// room. Publisher thread, stream_lock not held.
static ga_err_t
s_publish(wk_worker_t *w, wk_stream_t *s, batch_t *b, ga_arena_t *a, ga_buf_t *body)
{
    const uint8_t *items;
    size_t items_len;
    s_encode(s, b, a, body, &items, &items_len);
    ga_arena_reset(a);
    int64_t deadline = ga_clock_ms() + WK_STREAM_WAIT_MS;
    for (;;) {
        ga_err_t rc = s_ready(w) ? s_send(w, s, body, items, items_len) : GA_EAGAIN;
        if (rc != GA_EAGAIN) {
            return rc;
        }
        if (ga_clock_ms() >= deadline || atomic_load(&s->cancelled)) {
            return GA_EAGAIN;
        }
        pthread_mutex_lock(&w->stream_lock);
        bool stop = w->stream_stop;
        pthread_mutex_unlock(&w->stream_lock);
        if (stop) {
            return GA_EAGAIN;
        }
        s_nap(); // the broker is not taking messages yet: wait, bounded
    }
}

static void *
s_publisher(void *arg)
{
    wk_worker_t *w = arg;
    ga_arena_t *a = ga_arena_new(1024);
    ga_buf_t body;
    ga_buf_init(&body);
    uint64_t gen = 0;
    char endpoint[sizeof w->pub_want];
    pthread_mutex_lock(&w->stream_lock);
    while (!w->stream_stop) {
        if (gen != w->pub_want_gen) {
            gen = w->pub_want_gen;
            snprintf(endpoint, sizeof endpoint, "%s", w->pub_want);
            pthread_mutex_unlock(&w->stream_lock);
            if (w->pub == NULL || strcmp(endpoint, w->pub_endpoint) != 0) {
                s_connect(w, endpoint);
            }
            pthread_mutex_lock(&w->stream_lock);
            continue;
        }
        wk_stream_t *s = w->ready_head;
        if (s == NULL) {
            w->pub_idle = true;
            s_wait(&w->stream_work, &w->stream_lock, 1000);
            w->pub_idle = false;
            continue;
        }
        w->ready_head = s->next;
        if (w->ready_head == NULL) {
            w->ready_tail = NULL;
        }
        s->next = NULL;
        s->on_list = false;
        if (atomic_load(&s->cancelled) || s->broken) {
            s_clear_queue_locked(s); // the broker wants no more of it
            pthread_cond_broadcast(&w->stream_room);
            s_release_locked(w, s);
            continue;
        }
        // Take the whole queue: the streaming thread goes on filling the other buffer.
        batch_t b = {.first_seq = s->seq - s->n_queued + 1,
                     .n = s->n_queued,
                     .n_data = s->n_data,
                     .kind = s->end_kind ? s->end_kind : "chunk",
                     .error = s->error,
                     .data = &s->spare};
        ga_buf_t t = s->queue;
        s->queue = s->spare;
        s->spare = t;
        s->error = NULL;
        s->sending = true;
        s_clear_queue_locked(s);
        pthread_cond_broadcast(&w->stream_room);
        pthread_mutex_unlock(&w->stream_lock);
        ga_err_t rc = s_publish(w, s, &b, a, &body);
        ga_free(b.error);
        pthread_mutex_lock(&w->stream_lock);
        s->sending = false;
        if (rc != GA_OK && !atomic_load(&s->cancelled)) {
            GA_WARN("stream %lld: %u messages could not be sent: the stream is broken",
                    (long long) s->id, b.n);
            s->broken = true;
            s_clear_queue_locked(s);
            pthread_cond_broadcast(&w->stream_room);
        }
        s_release_locked(w, s);
    }
    pthread_mutex_unlock(&w->stream_lock);
    if (w->pub) {
        zmq_close(w->pub);
        w->pub = NULL;
    }
    ga_buf_fini(&body);
    ga_arena_destroy(&a);
    return NULL;
}

void
wk_stream_connect(wk_worker_t *w, const char *endpoint)
{
    pthread_mutex_lock(&w->stream_lock);
    if (strcmp(w->pub_want, endpoint) != 0) {
        snprintf(w->pub_want, sizeof w->pub_want, "%s", endpoint);
        w->pub_want_gen++;
        pthread_cond_signal(&w->stream_work);
    }
    if (!w->stream_thread_on) {
        if (pthread_create(&w->stream_thread, NULL, s_publisher, w) == 0) {
            w->stream_thread_on = true;
        } else {
            GA_ERR("cannot start the stream publisher thread");
        }
    }
    pthread_mutex_unlock(&w->stream_lock);
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
    w->stream_stop = true;
    pthread_cond_signal(&w->stream_work);
    bool joined = w->stream_thread_on;
    w->stream_thread_on = false;
    pthread_mutex_unlock(&w->stream_lock);
    if (joined) {
        pthread_join(w->stream_thread, NULL);
    }
    pthread_mutex_lock(&w->stream_lock);
    if (w->streams) {
        ga_idmap_each(w->streams, s_free_each, NULL);
        ga_idmap_destroy(&w->streams);
    }
    w->ready_head = w->ready_tail = NULL;
    pthread_mutex_unlock(&w->stream_lock);
}

// ---------------------------------------------------------------------------------------------
// Streaming threads

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
    ga_buf_init(&s->stage);
    ga_buf_init(&s->queue);
    ga_buf_init(&s->spare);
    ga_buf_reserve(&s->queue, WK_STREAM_HEAD);
    s->queue.len = WK_STREAM_HEAD;
    ga_buf_reserve(&s->spare, WK_STREAM_HEAD);
    s->spare.len = WK_STREAM_HEAD;
    pthread_mutex_lock(&w->stream_lock);
    ga_idmap_put(w->streams, (uint64_t) id, s);
    pthread_mutex_unlock(&w->stream_lock);
    return s;
}

void
wk_stream_cancel(wk_worker_t *w, int64_t id)
{
    pthread_mutex_lock(&w->stream_lock);
    wk_stream_t *s = id > 0 && w->streams ? ga_idmap_get(w->streams, (uint64_t) id) : NULL;
    if (s) {
        atomic_store(&s->cancelled, true);
        pthread_cond_broadcast(&w->stream_room); // a thread waiting for room gives up
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

// In-process streams (the executor): the message goes to the sink now, on this thread.
static ga_err_t
s_sink(wk_stream_t *s, const char *kind, const ga_value_t *data, const char *error)
{
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
    s->w->local_sink(s->w->local_sink_arg, &m);
    s->seq++;
    return GA_OK;
}

// Queues one stream message for the publisher, waiting (bounded) for room in the stream's
// queue. `kind` is a static string. GA_ECLOSED when cancelled, GA_EAGAIN when there was no room
// within WK_STREAM_WAIT_MS or the stream is broken.
static ga_err_t
s_queue(wk_stream_t *s, const char *kind, const ga_value_t *data, const char *error)
{
    if (atomic_load(&s->cancelled)) {
        return GA_ECLOSED;
    }
    wk_worker_t *w = s->w;
    if (w->local_sink) {
        ga_err_t rc = s_sink(s, kind, data, error);
        ga_arena_reset(s->ctx->arena);
        return rc;
    }
    ga_buf_reset(&s->stage);
    if (data) {
        ga_wire_encode(&s->stage, data);
    }
    ga_arena_reset(s->ctx->arena); // the values are encoded: the context is free again
    bool ends = strcmp(kind, "chunk") != 0;
    int64_t deadline = ga_clock_ms() + WK_STREAM_WAIT_MS;
    ga_err_t rc = GA_OK;
    pthread_mutex_lock(&w->stream_lock);
    for (;;) {
        if (atomic_load(&s->cancelled)) {
            rc = GA_ECLOSED;
            break;
        }
        if (s->broken) {
            rc = GA_EAGAIN;
            break;
        }
        size_t bytes = s->queue.len - WK_STREAM_HEAD;
        if (s->n_queued == 0 || (s->n_queued < WK_STREAM_BATCH_MAX &&
                                 bytes + s->stage.len <= WK_STREAM_BATCH_BYTES)) {
            break; // room
        }
        if (ga_clock_ms() >= deadline) {
            rc = GA_EAGAIN;
            break;
        }
        s_wait(&w->stream_room, &w->stream_lock, 10);
    }
    if (rc == GA_OK) {
        ga_buf_append(&s->queue, s->stage.data, s->stage.len);
        s->n_queued++;
        s->n_data += data != NULL;
        s->seq++;
        if (ends) {
            s->end_kind = kind;
            s->error = error ? ga_strdup(error) : NULL;
        }
        if (!s->on_list) {
            s->on_list = true;
            if (w->ready_tail) {
                w->ready_tail->next = s;
            } else {
                w->ready_head = s;
            }
            w->ready_tail = s;
        }
        if (w->pub_idle) {
            pthread_cond_signal(&w->stream_work);
        }
    }
    pthread_mutex_unlock(&w->stream_lock);
    return rc;
}

// Ends a stream: its thread is done with it. It is freed now, or by the publisher once the
// messages queued on it are sent.
static ga_err_t
s_end(wk_stream_t *s, ga_err_t rc)
{
    wk_worker_t *w = s->w;
    pthread_mutex_lock(&w->stream_lock);
    s->ended = true;
    s_release_locked(w, s);
    pthread_mutex_unlock(&w->stream_lock);
    return rc;
}

ga_err_t
wk_stream_send(wk_stream_t *s, const wk_value_t *chunk)
{
    ga_value_t nil = ga_nil();
    return s_queue(s, "chunk", chunk ? chunk : &nil, NULL);
}

ga_err_t
wk_stream_send_last(wk_stream_t *s, const wk_value_t *chunk)
{
    ga_value_t nil = ga_nil();
    return s_end(s, s_queue(s, "last", chunk ? chunk : &nil, NULL));
}

ga_err_t
wk_stream_complete(wk_stream_t *s)
{
    return s_end(s, s_queue(s, "end", NULL, NULL));
}

ga_err_t
wk_stream_error(wk_stream_t *s, const char *message)
{
    return s_end(s, s_queue(s, "error", NULL, message ? message : "stream failed"));
}
