// SPDX-License-Identifier: MIT
// The log sink and level: the only mutable static state besides each program's stop flag.
// Lines are "UTC-time level ident[pid]: message key=value...".
#include "ga_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int s_level = GA_LOG_INFO;
static ga_log_sink_fn *_Atomic s_sink; // no sink until one is set (static: null)
static char s_ident[32] = "genapi";

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
    atomic_store(&s_sink, sink);
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
    char line[1024];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    static const char letters[] = "EWNID";
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %s[%d]: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long) (tv.tv_usec / 1000), letters[level], s_ident, (int) getpid());
    if (n < 0 || (size_t) n >= sizeof line) {
        n = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t) n, fmt, ap);
    va_end(ap);
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
