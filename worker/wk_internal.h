// SPDX-License-Identifier: MIT
// Private structures shared by the worker library's files: the worker object, the request a
// handler sees, and the pool thread's entry point. Never included by services.
#ifndef WK_INTERNAL_H
#define WK_INTERNAL_H

#include "genapi/worker.h"

#include "ga_arena.h"
#include "ga_curve.h"
#include "ga_funcfg.h"
#include "ga_mem.h"
#include "ga_value.h"

#include "ga_idmap.h"
#include "ga_proto.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#define WK_NODE_MAX 256
#define WK_VERSION_MAX 128 // bytes of a config version sent (with its NUL)

typedef struct wk_groups_t wk_groups_t;

struct wk_worker_t {
    const wk_service_t *svc;  // borrowed service description
    wk_options_t opt;         // options with defaults filled in
    char node[WK_NODE_MAX];   // node name
    char config_version[32];  // version of the whole table (every function offered)
    ga_arena_t *table_arena;  // holds `table`
    ga_value_t table;         // list of function config maps, parallel to svc->functions
    // Which functions the table pushed and pulled has (wk_worker_set_offered; any thread).
    atomic_bool *offered;
    ga_funcfg_t **cfgs;       // parsed configs, parallel to svc->functions (read-only)
    zactor_t *io;             // the I/O thread (owns the broker socket and the pool)
    // Streams (wk_stream.c): a streaming thread encodes each message at once and queues it on
    // its stream; the publisher thread sends the queued messages on an XPUB socket connected
    // to the broker's XSUB, all of one stream's in one topic message when they queue faster
    // than it sends. Only the publisher touches the socket (pub, pub_endpoint, pub_ready);
    // stream_lock guards the rest, and every stream's queue.
    pthread_mutex_t stream_lock;  // guards the fields below up to `streams`, and the queues
    pthread_cond_t stream_work;   // to the publisher: a stream has messages, or connect/stop
    pthread_cond_t stream_room;   // to streaming threads: a stream's queue was taken
    pthread_t stream_thread;      // the publisher
    bool stream_thread_on;        // the publisher was started
    bool stream_stop;             // the publisher must stop
    bool pub_idle;                // the publisher waits on stream_work
    char pub_want[256];           // where the socket should be connected ("": not yet)
    uint64_t pub_want_gen;        // bumped at each new pub_want
    wk_stream_t *ready_head;      // streams with queued messages, oldest first
    wk_stream_t *ready_tail;      // last of them
    ga_idmap_t *streams;          // broker call id -> wk_stream_t (open streams)
    void *pub;                    // XPUB to the broker (publisher only)
    char pub_endpoint[256];       // where pub is connected (publisher only)
    bool pub_ready;               // the broker's subscription has arrived (publisher only)
    bool curve;               // CURVE on: curve_own and curve_broker are loaded
    ga_curve_cert_t curve_own;    // this worker's certificate (with its secret key)
    ga_curve_cert_t curve_broker; // the broker's public certificate
    // The broker's wall clock minus ours, measured at each registration: a request's deadline
    // is the broker's time (docs/protocol.md, "REQUEST"). Written by the I/O thread.
    _Atomic int64_t clock_offset_ms;
    atomic_uint_fast64_t expired;  // requests dropped because their deadline had passed
    atomic_uint_fast64_t discarded; // queued requests dropped when the broker had given us up
    // In-process streams (the executor, executor/): when set, every stream message {call, seq,
    // kind, data?, error?} goes to this sink, on the streaming thread, instead of the socket.
    // Set before any request runs.
    void (*local_sink)(void *arg, const ga_value_t *msg);
    void *local_sink_arg;     // passed to local_sink
    // Relay group operations waiting for the broker (wk_groups.c), and the I/O thread, which
    // must not wait for them (io_thread valid once io_known).
    wk_groups_t *groups;
    pthread_t io_thread;
    atomic_bool io_known;
};

struct wk_stream_t {
    wk_worker_t *w;           // owning worker
    int64_t id;               // broker's call id
    char *topic;              // "s.<gateway>.<id>" (owned)
    atomic_bool cancelled;    // the broker asked to stop (client gone, stop-stream, timeout)
    wk_request_t *ctx;        // a request context for building values on the streaming thread
    ga_buf_t stage;           // the streaming thread's encoding of its next message's data
    // Under w->stream_lock:
    uint64_t seq;             // sequence number of the last message queued
    ga_buf_t queue;           // the queued messages' data, encoded, after WK_STREAM_HEAD bytes
    ga_buf_t spare;           // the publisher's buffer: swapped with queue when it takes it
    uint32_t n_queued;        // messages queued
    uint32_t n_data;          // of which carry data (the values in queue)
    const char *end_kind;     // "last", "end" or "error" once the message ending it is queued
    char *error;              // the error end's message (owned)
    bool on_list;             // on the worker's ready list
    bool sending;             // the publisher is sending messages it took from it
    bool ended;               // its thread has ended it: whoever sees it idle last frees it
    bool broken;              // messages could not be sent within 5 s: sends fail
    wk_stream_t *next;        // ready list link
};
struct wk_request_t {
    ga_arena_t *arena;         // everything for this request
    const ga_value_t *body;    // the REQUEST body
    const ga_value_t *args;    // its args map (never NULL: an empty map when absent)
    const ga_funcfg_t *cfg;    // the function's config (argument order)
    int64_t id;                // broker's call id, echoed in the reply
    bool answered;             // a reply has been encoded
    ga_buf_t *out;             // where the REPLY body is encoded
    wk_stream_t *stream;       // stream functions: the stream (NULL otherwise)
    const char *node;          // the worker's node name (borrowed from wk_worker_t)
    wk_worker_t *worker;       // the worker running it
};

// Parses the compact argument notation of wk_function_t.args (see wk_argspec.c) into an
// arg_types map and an arg_orders list in `a`. GA_ECONFIG with a message in `err`.
ga_err_t wk_argspec_parse(ga_arena_t *a, const char *spec, ga_value_t *types, ga_value_t *orders,
                          char *err, size_t errlen);

// Builds the pushed table (w->table) and the parsed configs (w->cfgs) from the service
// description; wk_worker_start calls it before starting any thread, and so can a test that
// runs requests without sockets. GA_ECONFIG with a message in `err`.
ga_err_t wk_table_build(wk_worker_t *w, char *err, size_t errlen);
// The table as offered now (the functions not withdrawn, in `a`) and its config version (in
// `version`): the configured config_version while the offered set is the one the service
// declared (with "+<hash>" appended otherwise), else a hash of the offered table. I/O thread.
ga_value_t wk_table_current(wk_worker_t *w, ga_arena_t *a, char *version, size_t len);

// Runs the handler for one REQUEST and encodes its REPLY into `out` (left empty when the
// function owes no reply: none and stream functions). The REQUEST is its envelope's MessagePack
// value followed by its payload's (the args; none: no args), the REPLY likewise: its envelope,
// then for a success the result's value (docs/protocol.md, "Frames"). On a pool thread, or on
// the I/O thread for non_blocking functions.
void wk_request_run(wk_worker_t *w, const uint8_t *data, size_t len, ga_arena_t *arena,
                    ga_buf_t *out);
// wk_request_run of a REQUEST whose envelope is decoded already (`envelope`, a map in `arena`
// or longer-lived) and whose payload is `payload_data` (`payload_len` bytes; 0: no args): the
// I/O thread's non_blocking functions run from the received message, neither copied nor
// decoded again.
void wk_request_run_decoded(wk_worker_t *w, const ga_value_t *envelope,
                            const uint8_t *payload_data, size_t payload_len, ga_arena_t *arena,
                            ga_buf_t *out);
// The function for (request_type, version), with its index, or NULL.
const wk_function_t *wk_function_find(const wk_worker_t *w, const char *request_type,
                                      const char *version, size_t *index);

// Body of one pool thread (a zactor). `args` is the wk_worker_t.
void wk_pool_actor(zsock_t *pipe, void *args);

// Opens a stream for a stream function's REQUEST (registers it for cancellation). Any thread.
wk_stream_t *wk_stream_open(wk_worker_t *w, int64_t id, const char *topic);
// Marks the stream with broker call id `id` cancelled, if open. Any thread.
void wk_stream_cancel(wk_worker_t *w, int64_t id);
// (Re)connects the stream socket to the broker's XSUB at `endpoint`. Any thread.
void wk_stream_connect(wk_worker_t *w, const char *endpoint);
// Closes the stream socket and frees open streams (worker shutdown).
void wk_stream_shutdown(wk_worker_t *w);

// Requests from the worker that wait for the broker (wk_groups.c): relay group operations
// (genapi/groups.h) and wk_verify. Created with the worker; the I/O thread polls wk_groups_fd
// and then calls wk_groups_on_wake (sends what waits, or fails it when not registered), hands
// each GROUP_REPLY and ADMIN_REPLY to wk_groups_on_reply, and calls wk_groups_close before it
// stops (whatever waits fails at once).
wk_groups_t *wk_groups_new(void);
void wk_groups_destroy(wk_groups_t **self_p);
int wk_groups_fd(const wk_groups_t *self);
void wk_groups_on_wake(wk_worker_t *w, void *dealer, bool registered);
void wk_groups_on_reply(wk_worker_t *w, const ga_proto_msg_t *msg);
void wk_groups_close(wk_worker_t *w);

// Encodes `body` (a REQUEST as one map, args included) as wk_request_run takes it: the
// envelope (the other keys), then the args. For in-process callers and tests.
void wk_request_encode(ga_buf_t *out, const ga_value_t *body);
// Decodes a REPLY as wk_request_run encodes it into one map (the result under "result").
GA_MUST_CHECK ga_err_t wk_reply_decode(const uint8_t *data, size_t len, ga_arena_t *arena,
                                       ga_value_t *body);

// Encodes an error REPLY body for call `id` into `out`.
void wk_encode_error(ga_buf_t *out, ga_arena_t *arena, int64_t id, int code, const char *message,
                     bool can_retry);

#endif
