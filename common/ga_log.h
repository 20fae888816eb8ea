// SPDX-License-Identifier: MIT
// Level-checked logging: one line per event on the installed sink (stderr by default for
// programs; silent in the worker library until the application installs a sink). The level
// is checked before anything is formatted, so DEBUG calls on hot paths cost one comparison.
// On stderr each line is one JSON object {ts, level, prog, pid, msg[, request_id]} unless
// stderr is a terminal, where it is "UTC-time L prog[pid]: msg" (docs/operations.md, "Logs");
// a message's "request_id=ID" is also given as the request_id field. Other sinks get the
// human form.
#ifndef GA_LOG_H
#define GA_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    GA_LOG_ERR = 0,
    GA_LOG_WARN = 1,
    GA_LOG_NOTICE = 2,
    GA_LOG_INFO = 3,
    GA_LOG_DEBUG = 4,
} ga_log_level_t;

// A sink receives one formatted line (no trailing newline). Must be thread-safe.
typedef void(ga_log_sink_fn)(ga_log_level_t level, const char *line);

// Sets the identity printed on each line ("genapi-broker"). Call once from main.
void ga_log_set_ident(const char *ident);
// Sets the maximum level written. Any thread.
void ga_log_set_level(ga_log_level_t level);
ga_log_level_t ga_log_level(void);
// Parses "err", "warn", "notice", "info", "debug"; returns -1 when unknown.
int ga_log_level_parse(const char *name);
// Installs a sink; NULL silences logging. ga_log_stderr_sink is the standard one (JSON lines
// unless stderr is a terminal: decided here).
void ga_log_set_sink(ga_log_sink_fn *sink);
void ga_log_stderr_sink(ga_log_level_t level, const char *line);

void ga_log_write(ga_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// A condition that persists (a broker that does not answer, a port that is wrong) is logged
// once, then at most once per interval, never once per retry. One per condition and owner;
// not thread-safe. Zeroed memory is a valid initial state.
typedef struct {
    int64_t next_ms;   // monotonic ms before which the same key is not logged again
    uint32_t key_hash; // FNV-1a hash of the key last logged (0: nothing logged yet)
} ga_log_every_t;

// True when the caller should log now: the first time, when `key` (the reason, or NULL) differs
// from the last one logged, or once `interval_ms` has passed since the last.
bool ga_log_every_due(ga_log_every_t *self, const char *key, int64_t now_ms, int64_t interval_ms);
// Forgets the condition (it cleared): the next occurrence is logged at once.
void ga_log_every_reset(ga_log_every_t *self);

#define GA_LOG_AT(lvl, ...)                                                                        \
    do {                                                                                           \
        if ((lvl) <= ga_log_level()) {                                                             \
            ga_log_write((lvl), __VA_ARGS__);                                                      \
        }                                                                                          \
    } while (0)
#define GA_ERR(...)    GA_LOG_AT(GA_LOG_ERR, __VA_ARGS__)
#define GA_WARN(...)   GA_LOG_AT(GA_LOG_WARN, __VA_ARGS__)
#define GA_NOTICE(...) GA_LOG_AT(GA_LOG_NOTICE, __VA_ARGS__)
#define GA_INFO(...)   GA_LOG_AT(GA_LOG_INFO, __VA_ARGS__)
#define GA_DEBUG(...)  GA_LOG_AT(GA_LOG_DEBUG, __VA_ARGS__)

#endif
