// SPDX-License-Identifier: MIT
// The log sink and level: the only mutable static state besides each program's stop flag.
// Lines are JSON objects, or "UTC-time level ident[pid]: message key=value..." (see ga_log.h).
#include "ga_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int s_level = GA_LOG_INFO;
static ga_log_sink_fn *_Atomic s_sink; // no sink until one is set (static: null)
static char s_ident[32] = "genapi";
static _Atomic bool s_json; // lines as JSON objects (the stderr sink, stderr not a terminal)

void
ga_log_set_ident(const char *ident)
{
    snprintf(s_ident, sizeof s_ident, "%s", ident);
}

void
ga_log_set_level(ga_log_level_t level)
{
    atomic_store(&s_level, (int) level);
}

ga_log_level_t
ga_log_level(void)
{
    return (ga_log_level_t) atomic_load_explicit(&s_level, memory_order_relaxed);
}

int
ga_log_level_parse(const char *name)
{
    static const char *const names[] = {"err", "warn", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void
ga_log_set_sink(ga_log_sink_fn *sink)
{
    atomic_store(&s_json, sink == ga_log_stderr_sink && !isatty(STDERR_FILENO));
    atomic_store(&s_sink, sink);
}

// Appends text[0..len) to line[*n..cap) as the inside of a JSON string (quotes and backslashes
// escaped, control characters as \u00XX); stops, whole escapes only, when the room runs out.
static void
s_json_escape(char *line, size_t *n, size_t cap, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        char esc[7];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char) c;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        } else {
            esc[k++] = (char) c;
        }
        if (*n + k >= cap) {
            return;
        }
        memcpy(line + *n, esc, k);
        *n += k;
    }
}

// Appends to line[*n..cap) whatever fits of the formatted text.
static void
s_append(char *line, size_t *n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
s_append(char *line, size_t *n, size_t cap, const char *fmt, ...)
{
    if (*n >= cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0) {
        *n += (size_t) k < cap - *n ? (size_t) k : cap - *n - 1;
    }
}

void
ga_log_stderr_sink(ga_log_level_t level, const char *line)
{
    (void) level;
    // One fprintf per line keeps lines whole under concurrent writers (stdio locks the stream).
    fprintf(stderr, "%s\n", line);
}

void
ga_log_write(ga_log_level_t level, const char *fmt, ...)
{
    ga_log_sink_fn *sink = atomic_load(&s_sink);
    if (sink == NULL) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long) (tv.tv_usec / 1000));
    char line[2400];
    size_t n = 0;
    if (!atomic_load(&s_json)) {
        static const char letters[] = "EWNID";
        s_append(line, &n, sizeof line, "%s %c %s[%d]: %s", ts, letters[level], s_ident,
                 (int) getpid(), msg);
        sink(level, line);
        return;
    }
    static const char *const names[] = {"error", "warn", "notice", "info", "debug"};
    s_append(line, &n, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", ts,
             names[level]);
    s_json_escape(line, &n, sizeof line, s_ident, strlen(s_ident));
    s_append(line, &n, sizeof line, "\",\"pid\":%d,\"msg\":\"", (int) getpid());
    s_json_escape(line, &n, sizeof line - 256, msg, strlen(msg)); // room kept for the end
    // The request a line is about, as its own field: "request_id=ID" in the message.
    const char *rid = strstr(msg, "request_id=");
    if (rid && (rid == msg || rid[-1] == ' ' || rid[-1] == '(')) {
        rid += strlen("request_id=");
        s_append(line, &n, sizeof line, "\",\"request_id\":\"");
        s_json_escape(line, &n, sizeof line - 8, rid, strcspn(rid, " ,;)"));
    }
    s_append(line, &n, sizeof line, "\"}");
    if (n + 1 >= sizeof line) {
        // Cut short: still one valid object (the message is at most 1023 bytes, so only
        // escapes can make it this long).
        n = 0;
        s_append(line, &n, sizeof line,
                 "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"genapi\",\"pid\":%d,"
                 "\"msg\":\"(line too long to log)\"}",
                 ts, names[level], (int) getpid());
    }
    sink(level, line);
}

bool
ga_log_every_due(ga_log_every_t *self, const char *key, int64_t now_ms, int64_t interval_ms)
{
    uint32_t h = 2166136261u;
    for (const char *c = key ? key : ""; *c; c++) {
        h = (h ^ (uint8_t) *c) * 16777619u;
    }
    h |= 1u; // never 0, which means "nothing logged yet"
    if (self->key_hash == h && now_ms < self->next_ms) {
        return false;
    }
    self->key_hash = h;
    self->next_ms = now_ms + interval_ms;
    return true;
}

void
ga_log_every_reset(ga_log_every_t *self)
{
    self->key_hash = 0;
    self->next_ms = 0;
}
