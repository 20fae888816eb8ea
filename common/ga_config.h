// SPDX-License-Identifier: MIT
// Program configuration from one table per program: name, type, default, range and help text.
// The table drives parsing, validation, --help and --print-config. Sources override in this
// order: defaults, a JSON file (--config FILE), environment variables GENAPI_<NAME> (upper
// case), then --set name=value. Called once from main; the filled struct is then passed down
// as a const pointer.
#ifndef GA_CONFIG_H
#define GA_CONFIG_H

#include "ga_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GA_OPT_STR,  // char * in the struct, owned by it (freed by ga_config_fini)
    GA_OPT_INT,  // int64_t in the struct, checked against min..max
    GA_OPT_BOOL, // bool in the struct
    // char * in the struct holding JSON text (owned, freed by ga_config_fini): in the file an
    // object or array (stored re-encoded) or a string holding JSON; in the environment and
    // --set, JSON text. Decoded and checked by the program, which names the option in errors.
    GA_OPT_JSON,
} ga_opt_type_t;

typedef struct {
    const char *name;   // option name, as in --set name=value and the JSON file
    ga_opt_type_t type; // how the value is parsed and stored
    const char *dflt;   // default, as text
    int64_t min;        // GA_OPT_INT: smallest accepted value
    int64_t max;        // GA_OPT_INT: largest accepted value
    size_t offset;      // offsetof(struct, field)
    const char *help;   // one line for --help
} ga_option_t;

// Fills `cfg` from the sources above. `table` ends with an entry whose name is NULL.
// Returns GA_OK; GA_ECLOSED when --help or --print-config was handled (exit 0); GA_ECONFIG
// with a message in `err` naming the option (and, for a file, its line and column). A leading
// `check` argument (ga_config_is_check) is skipped, and `-c FILE` is --config FILE.
// --print-config prints the effective values as one JSON object, secrets hidden (options
// whose name contains "token" or "secret" show "(hidden)" when set). May be called only from
// main (or, for a reload, from the thread that owns the program's options).
GA_MUST_CHECK ga_err_t ga_config_load(const ga_option_t *table, void *cfg, const char *prog,
                                      int argc, char **argv, char *err, size_t errlen);
// The JSON-file step of ga_config_load: applies the object in text[0..len) to `cfg` (which
// holds defaults or earlier values). `source` names the text in messages (the file's path).
// GA_ECONFIG with a message in `err` naming the option. Pure apart from `cfg`.
GA_MUST_CHECK ga_err_t ga_config_parse_json(const ga_option_t *table, void *cfg, const char *text,
                                            size_t len, const char *source, char *err,
                                            size_t errlen);
// True when the command line is `PROG check [-c FILE] [--set ...]`: the program validates its
// configuration, prints that it is valid, and exits 0 (2 with the error) without starting.
bool ga_config_is_check(int argc, char **argv);

// Frees the strings ga_config_load stored in `cfg`.
void ga_config_fini(const ga_option_t *table, void *cfg);

// Reload (SIGHUP, docs/operations.md "Reload"): what became of one changed option.
typedef enum {
    GA_RELOAD_APPLIED, // in force from now on
    GA_RELOAD_RESTART, // cannot change while running: kept until a restart
    GA_RELOAD_INVALID, // the new value is refused (reason given): the value in force is kept
} ga_reload_t;
// Acts on option `o` whose value in `next` differs from the one in force; `why` takes the
// reason of GA_RELOAD_INVALID.
typedef ga_reload_t(ga_config_apply_fn)(const ga_option_t *o, const void *next, void *arg,
                                        char *why, size_t whylen);
// The reload of option `log_level` to `level` ("err" ... "debug"), shared by every program's
// apply function: GA_RELOAD_APPLIED, or GA_RELOAD_INVALID with the reason in `why`.
ga_reload_t ga_config_reload_log_level(const char *level, char *why, size_t whylen);
// Compares `cur` (in force) with `next` (freshly loaded), calls `apply` for each option that
// differs, moves the applied values into `cur` (the old ones into `next`, freed with it), and
// logs one line naming the options changed, applied and needing a restart (names only, never
// values), plus one error line per refused value.
void ga_config_reload(const ga_option_t *table, void *cur, void *next, ga_config_apply_fn *apply,
                      void *arg);

#endif
