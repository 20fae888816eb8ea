// SPDX-License-Identifier: MIT
// GET /events: telemetry events as JSON lines to up to GA_TAIL_CLIENTS_MAX clients (see
// ga_tail.h). The handlers may run on any thread that emits; each queue is guarded by the
// tail's mutex, and the responder's loop writes it out (ga_httpd_stream_wake).
#include "ga_tail.h"

#include "ga_clock.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct ga_tail_t ga_tail_t;

typedef struct {
    ga_tail_t *tail;            // back pointer (the handler's argument)
    ga_httpd_stream_t *stream;  // the client, NULL when the slot is free
    int handler;                // its telemetry handler id
    ga_buf_t queue;             // lines not yet handed to the responder
    uint64_t dropped;           // events dropped since the last "dropped" line
    uint64_t dropped_total;     // events dropped since it connected
    uint64_t sent;              // events queued since it connected
    bool armed;                 // the responder was asked for fill calls
} client_t;

struct ga_tail_t {
    pthread_mutex_t lock;                    // guards the clients
    char *program;                           // "genapi-gateway", "genapi-broker"
    ga_tail_auth_fn *auth;                   // admits clients
    void *auth_arg;                          // its argument (borrowed)
    client_t clients[GA_TAIL_CLIENTS_MAX];   // the slots
};

void
ga_tail_format(ga_buf_t *out, ga_event_t event, const ga_tm_data_t *d)
{
    char num[48];
    const char *name = ga_telemetry_name(event);
    ga_buf_append_str(out, "{\"name\":");
    ga_json_encode_str(out, name ? name : "?", name ? strlen(name) : 1);
    snprintf(num, sizeof num, ",\"at_ms\":%lld", (long long) ga_clock_wall_ms());
    ga_buf_append_str(out, num);
    ga_buf_append_str(out, ",\"measurements\":{");
    unsigned m = ga_telemetry_measures(event);
    if (m & GA_TM_M_DURATION) {
        snprintf(num, sizeof num, "\"duration_us\":%lld", (long long) d->duration_us);
        ga_buf_append_str(out, num);
    }
    if (m & GA_TM_M_COUNT) {
        snprintf(num, sizeof num, "%s\"count\":%lld", (m & GA_TM_M_DURATION) ? "," : "",
                 (long long) d->count);
        ga_buf_append_str(out, num);
    }
    ga_buf_append_str(out, "},\"metadata\":{");
    const struct {
        const char *key;
        const char *value;
    } fields[] = {
        {"service", d->service},     {"request_type", d->request_type},
        {"version", d->version},     {"request_id", d->request_id},
        {"response_type", d->response_type}, {"node", d->node},
        {"pool_name", d->pool_name}, {"key", d->key},
        {"scope", d->scope},         {"topic", d->topic},
        {"group_id", d->group_id},   {"reason", d->reason},
    };
    bool first = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].value == NULL) {
            continue;
        }
        ga_buf_append_str(out, first ? "\"" : ",\"");
        ga_buf_append_str(out, fields[i].key);
        ga_buf_append_str(out, "\":");
        ga_json_encode_str(out, fields[i].value, strlen(fields[i].value));
        first = false;
    }
    if (d->success != GA_TM_UNSET) {
        ga_buf_append_str(out, first ? "\"success\":" : ",\"success\":");
        ga_buf_append_str(out, d->success == GA_TM_TRUE ? "true" : "false");
    }
    ga_buf_append_str(out, "}}\n");
}

// Asks the responder for fill calls once (the client's lock held).
static void
s_arm(client_t *c)
{
    if (!c->armed) {
        c->armed = true;
        ga_httpd_stream_wake(c->stream, true);
    }
}

// The telemetry handler of one client: one line into its queue, or a drop.
static void
s_on_event(ga_event_t event, const ga_tm_data_t *data, void *arg)
{
    client_t *c = arg;
    ga_tail_t *tail = c->tail;
    pthread_mutex_lock(&tail->lock);
    if (c->stream == NULL) {
        pthread_mutex_unlock(&tail->lock); // it left while this emit was on its way
        return;
    }
    size_t before = c->queue.len;
    if (c->dropped > 0) {
        char line[80];
        int n = snprintf(line, sizeof line, "{\"dropped\":%llu}\n",
                         (unsigned long long) c->dropped);
        ga_buf_append(&c->queue, line, (size_t) n);
    }
    ga_tail_format(&c->queue, event, data);
    if (c->queue.len > GA_TAIL_QUEUE_MAX) {
        c->queue.len = before; // the reader is too slow: this one is lost, and counted
        c->dropped++;
        c->dropped_total++;
    } else {
        c->dropped = 0;
        c->sent++;
        s_arm(c);
    }
    pthread_mutex_unlock(&tail->lock);
}

static client_t *
s_find(ga_tail_t *tail, const ga_httpd_stream_t *stream)
{
    for (size_t i = 0; i < GA_TAIL_CLIENTS_MAX; i++) {
        if (tail->clients[i].stream == stream) {
            return &tail->clients[i];
        }
    }
    return NULL;
}

// The value of `name` in a query string ("a=1&prefix=x"), percent-decoded into out; false when
// absent or undecodable.
static bool
s_query_get(const char *query, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) != 0 || p[n] != '=') {
            continue;
        }
        size_t at = 0;
        for (const char *v = p + n + 1; *v && *v != '&'; v++) {
            unsigned ch = (unsigned char) *v;
            if (ch == '%') {
                unsigned hi, lo;
                if (sscanf(v + 1, "%1x%1x", &hi, &lo) != 2) {
                    return false;
                }
                ch = hi * 16 + lo;
                v += 2;
            } else if (ch == '+') {
                ch = ' ';
            }
            if (at + 1 >= len || ch == 0) {
                return false;
            }
            out[at++] = (char) ch;
        }
        out[at] = '\0';
        return true;
    }
    return false;
}

static int
s_open(void *arg, const ga_httpd_req_t *req, ga_httpd_stream_t *stream, ga_buf_t *body,
       const char **content_type)
{
    ga_tail_t *tail = arg;
    const char *token = "";
    if (strncasecmp(req->authorization, "Bearer ", 7) == 0) {
        token = req->authorization + 7;
    }
    const char *refusal = tail->auth(tail->auth_arg, token);
    if (refusal) {
        GA_WARN("tail refused: %s", refusal);
        ga_buf_append_str(body, refusal);
        ga_buf_append_char(body, '\n');
        return 403;
    }
    char prefix[128] = "";
    if (req->query[0] && strstr(req->query, "prefix=") &&
        !s_query_get(req->query, "prefix", prefix, sizeof prefix)) {
        ga_buf_append_str(body, "prefix: not a valid event name prefix\n");
        return 400;
    }
    pthread_mutex_lock(&tail->lock);
    client_t *c = s_find(tail, NULL);
    int status = 200;
    if (c == NULL) {
        ga_buf_append_str(body, "too many tails connected (4 at most)\n");
        status = 503;
    } else {
        ga_err_t rc = ga_telemetry_attach(prefix, "genapi-tail", s_on_event, c, &c->handler);
        if (rc == GA_ENOTFOUND) {
            ga_buf_append_str(body, "no event matches this prefix (genapi-ctl events lists "
                                    "them; a prefix ends at a dot)\n");
            status = 404;
        } else if (rc != GA_OK) {
            ga_buf_append_str(body, "too many telemetry handlers attached\n");
            status = 503;
        } else {
            c->stream = stream;
            c->dropped = c->dropped_total = c->sent = 0;
            c->armed = true; // the responder writes the head, then asks for more
            ga_buf_reset(&c->queue);
            char line[256];
            ga_buf_append_str(body, "{\"attached\":true,\"program\":");
            ga_json_encode_str(body, tail->program, strlen(tail->program));
            snprintf(line, sizeof line, ",\"pid\":%ld,\"prefix\":", (long) getpid());
            ga_buf_append_str(body, line);
            ga_json_encode_str(body, prefix, strlen(prefix));
            ga_buf_append_str(body, "}\n");
            *content_type = "application/x-ndjson";
            GA_INFO("tail attached (prefix \"%s\")", prefix);
        }
    }
    pthread_mutex_unlock(&tail->lock);
    return status;
}

static void
s_fill(void *arg, ga_httpd_stream_t *stream, ga_buf_t *out)
{
    ga_tail_t *tail = arg;
    pthread_mutex_lock(&tail->lock);
    client_t *c = s_find(tail, stream);
    if (c && c->queue.len > 0) {
        ga_buf_t t = *out; // out is empty: hand over the queue, keep out's room for the next
        *out = c->queue;
        c->queue = t;
    } else if (c) {
        c->armed = false;
        ga_httpd_stream_wake(stream, false);
    }
    pthread_mutex_unlock(&tail->lock);
}

static void
s_closed(void *arg, ga_httpd_stream_t *stream)
{
    ga_tail_t *tail = arg;
    pthread_mutex_lock(&tail->lock);
    client_t *c = s_find(tail, stream);
    if (c) {
        GA_IGNORE(ga_telemetry_detach(c->handler)); // attached at open
        GA_INFO("tail detached: %llu events sent, %llu dropped (slow reader)",
                (unsigned long long) c->sent, (unsigned long long) c->dropped_total);
        c->stream = NULL;
        c->handler = 0;
        ga_buf_reset(&c->queue);
    }
    pthread_mutex_unlock(&tail->lock);
}

static void
s_free(void *arg)
{
    ga_tail_t *tail = arg;
    for (size_t i = 0; i < GA_TAIL_CLIENTS_MAX; i++) {
        ga_buf_fini(&tail->clients[i].queue);
    }
    pthread_mutex_destroy(&tail->lock);
    ga_free(tail->program);
    ga_free(tail);
}

void
ga_tail_install(ga_httpd_t *httpd, const char *program, ga_tail_auth_fn *auth, void *arg)
{
    ga_tail_t *tail = ga_calloc(1, sizeof *tail);
    pthread_mutex_init(&tail->lock, NULL);
    tail->program = ga_strdup(program);
    tail->auth = auth;
    tail->auth_arg = arg;
    for (size_t i = 0; i < GA_TAIL_CLIENTS_MAX; i++) {
        tail->clients[i].tail = tail;
        ga_buf_init(&tail->clients[i].queue);
    }
    static const ga_httpd_stream_ops_t ops = {
        .open = s_open, .fill = s_fill, .closed = s_closed, .free = s_free};
    ga_httpd_set_stream(httpd, "/events", &ops, tail);
}
