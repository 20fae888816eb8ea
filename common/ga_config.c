// SPDX-License-Identifier: MIT
// The config-table engine behind every program's options. Reads files and the environment, so
// it runs in main before any loop starts.
#include "ga_config.h"

#include "ga_arena.h"
#include "ga_json.h"
#include "ga_log.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ; // POSIX: the process's environment

static const ga_option_t *
s_find(const ga_option_t *table, const char *name, size_t len)
{
    for (const ga_option_t *o = table; o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
            return o;
        }
    }
    return NULL;
}

static ga_err_t
s_set(const ga_option_t *o, void *cfg, const char *text, const char *source, char *err,
      size_t errlen)
{
    char *field = (char *) cfg + o->offset;
    switch (o->type) {
    case GA_OPT_JSON:
    case GA_OPT_STR: {
        char **dst = (char **) (void *) field;
        ga_free(*dst);
        *dst = ga_strdup(text);
        return GA_OK;
    }
    case GA_OPT_INT: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: \"%s\" (from %s) must be an integer in %lld..%lld",
                     o->name, text, source, (long long) o->min, (long long) o->max);
            return GA_ECONFIG;
        }
        *(int64_t *) (void *) field = v;
        return GA_OK;
    }
    case GA_OPT_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 || strcmp(text, "on") == 0) {
            *(bool *) (void *) field = true;
        } else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
                   strcmp(text, "off") == 0) {
            *(bool *) (void *) field = false;
        } else {
            snprintf(err, errlen, "%s: \"%s\" (from %s) must be true or false", o->name, text,
                     source);
            return GA_ECONFIG;
        }
        return GA_OK;
    }
    return GA_ECONFIG;
}

// Line and column (from 1) of byte `at` in text[0..len).
static void
s_line_col(const char *text, size_t len, size_t at, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

// The offset of top-level key `key` in the JSON object text[0..len) (its opening quote), or
// len when not found. Keys are compared byte for byte (a key written with escapes is not
// found: the message then has no position).
static size_t
s_key_offset(const char *text, size_t len, const char *key, size_t key_len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '"') {
            size_t start = i++;
            while (i < len && text[i] != '"') {
                i += text[i] == '\\' ? 2 : 1;
            }
            if (depth != 1 || i >= len) {
                continue;
            }
            size_t k = i + 1;
            while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r' ||
                               text[k] == '\n')) {
                k++;
            }
            if (k < len && text[k] == ':' && i - start - 1 == key_len &&
                memcmp(text + start + 1, key, key_len) == 0) {
                return start;
            }
        }
    }
    return len;
}

// Levenshtein distance of a and b, capped at 3 (for "did you mean").
static unsigned
s_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > 63 || lb > 63 || (la > lb ? la - lb : lb - la) > 2) {
        return 3;
    }
    unsigned row[64];
    for (size_t j = 0; j <= lb; j++) {
        row[j] = (unsigned) j;
    }
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned) i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 3 ? row[lb] : 3;
}

// The closest option name to `name` (at most 2 edits away), or NULL.
static const char *
s_suggest(const ga_option_t *table, const char *name)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (const ga_option_t *o = table; o->name; o++) {
        unsigned d = s_distance(name, o->name);
        if (d < best_d) {
            best_d = d;
            best = o->name;
        }
    }
    return best;
}

ga_err_t
ga_config_parse_json(const ga_option_t *table, void *cfg, const char *text, size_t len,
                     const char *source, char *err, size_t errlen)
{
    ga_arena_t *arena = ga_arena_new(4096);
    ga_value_t doc;
    char why[200];
    unsigned line;
    unsigned col;
    ga_err_t rc = ga_json_decode(text, len, arena, &doc, why, sizeof why);
    if (rc != GA_OK || doc.type != GA_MAP) {
        // The decoder says where: "... at offset N"; shown as line and column.
        const char *at = rc != GA_OK ? strstr(why, " at offset ") : NULL;
        if (at) {
            s_line_col(text, len, (size_t) strtoull(at + 11, NULL, 10), &line, &col);
            snprintf(err, errlen, "config file %s:%u:%u: %.*s", source, line, col,
                     (int) (at - why), why);
        } else {
            snprintf(err, errlen, "config file %s: %s", source,
                     rc != GA_OK ? why : "must hold a JSON object");
        }
        rc = GA_ECONFIG;
        goto out;
    }
    for (uint32_t i = 0; i < doc.len && rc == GA_OK; i++) {
        const ga_pair_t *p = &doc.u.pairs[i];
        const ga_option_t *o = s_find(table, p->key, p->key_len);
        char where[300];
        size_t off = s_key_offset(text, len, p->key, p->key_len);
        if (off < len) {
            s_line_col(text, len, off, &line, &col);
            snprintf(where, sizeof where, "%s:%u:%u", source, line, col);
        } else {
            snprintf(where, sizeof where, "%s", source);
        }
        if (o == NULL) {
            const char *near = s_suggest(table, p->key);
            snprintf(err, errlen, "config file %s: unknown option \"%s\"%s%s%s", where, p->key,
                     near ? " (did you mean \"" : " (see --help)", near ? near : "",
                     near ? "\"?)" : "");
            rc = GA_ECONFIG;
            break;
        }
        char num[32];
        const char *value = NULL;
        if (o->type == GA_OPT_JSON && (p->value.type == GA_MAP || p->value.type == GA_ARRAY)) {
            ga_buf_t json;
            ga_buf_init(&json);
            ga_json_encode(&json, &p->value);
            ga_buf_append_char(&json, '\0');
            rc = s_set(o, cfg, (const char *) json.data, source, err, errlen);
            ga_buf_fini(&json);
            continue;
        }
        if (p->value.type == GA_STR) {
            value = p->value.u.s;
        } else if (p->value.type == GA_INT) {
            snprintf(num, sizeof num, "%lld", (long long) p->value.u.i);
            value = num;
        } else if (p->value.type == GA_BOOL) {
            value = p->value.u.b ? "true" : "false";
        } else {
            snprintf(err, errlen, "config file %s: option \"%s\" must be a string, integer or "
                                  "boolean", where, p->key);
            rc = GA_ECONFIG;
            break;
        }
        rc = s_set(o, cfg, value, where, err, errlen);
    }
out:
    ga_arena_destroy(&arena);
    return rc;
}

static ga_err_t
s_load_file(const ga_option_t *table, void *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return GA_ECONFIG;
    }
    ga_buf_t text;
    ga_buf_init(&text);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        ga_buf_append(&text, chunk, n);
    }
    GA_IGNORE(fclose(f)); // read-only file: nothing to flush
    ga_err_t rc = ga_config_parse_json(table, cfg, (const char *) text.data, text.len, path, err,
                                       errlen);
    ga_buf_fini(&text);
    return rc;
}

static void
s_help(const ga_option_t *table, const char *prog)
{
    printf("usage: %s [--config FILE.json] [--set name=value ...] [--print-config]\n"
           "       %s check [-c FILE.json] [--set name=value ...]   (validate, do not start)\n\n"
           "options (also GENAPI_<NAME> in the environment):\n",
           prog, prog);
    for (const ga_option_t *o = table; o->name; o++) {
        printf("  %-22s %s (default: %s)\n", o->name, o->help, o->dflt);
    }
}

// Whether an option's value is a secret, never printed: its name says token or secret.
static bool
s_is_secret(const char *name)
{
    return strstr(name, "token") != NULL || strstr(name, "secret") != NULL;
}

// The effective values as one JSON object, one option per line (a JSON option embedded as
// JSON), secrets shown as "(hidden)" when set.
static void
s_print(const ga_option_t *table, const void *cfg)
{
    ga_buf_t out;
    ga_buf_init(&out);
    ga_buf_append_str(&out, "{\n");
    for (const ga_option_t *o = table; o->name; o++) {
        const char *field = (const char *) cfg + o->offset;
        ga_buf_append_str(&out, "  ");
        ga_json_encode_str(&out, o->name, strlen(o->name));
        ga_buf_append_str(&out, ": ");
        char num[32];
        switch (o->type) {
        case GA_OPT_STR:
        case GA_OPT_JSON: {
            const char *v = *(char *const *) (const void *) field;
            v = v ? v : "";
            if (s_is_secret(o->name) && v[0]) {
                v = "(hidden)";
            }
            ga_arena_t *arena = o->type == GA_OPT_JSON ? ga_arena_new(4096) : NULL;
            ga_value_t doc;
            char why[200];
            if (arena && ga_json_decode(v, strlen(v), arena, &doc, why, sizeof why) == GA_OK) {
                ga_json_encode(&out, &doc); // embedded as JSON
            } else {
                ga_json_encode_str(&out, v, strlen(v)); // text (the program refuses it)
            }
            ga_arena_destroy(&arena);
            break;
        }
        case GA_OPT_INT:
            snprintf(num, sizeof num, "%lld", (long long) *(const int64_t *) (const void *) field);
            ga_buf_append_str(&out, num);
            break;
        case GA_OPT_BOOL:
            ga_buf_append_str(&out, *(const bool *) (const void *) field ? "true" : "false");
            break;
        }
        ga_buf_append_str(&out, o[1].name ? ",\n" : "\n");
    }
    ga_buf_append_str(&out, "}\n");
    fwrite(out.data, 1, out.len, stdout);
    ga_buf_fini(&out);
}

// Warns of each GENAPI_* variable in the environment that names no option of `table` but is
// one or two letters away from one (GENAPI_RATE_LIMTS): most likely a setting meant for this
// program, which would otherwise be ignored without a word. Other GENAPI_* variables (another
// program's options, the tools' own) are left alone.
static void
s_warn_env_typos(const ga_option_t *table, const char *prog)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "GENAPI_", 7) != 0) {
            continue;
        }
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t) (eq - *e) - 7 : strlen(*e) - 7;
        char name[64];
        if (n == 0 || n >= sizeof name) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            name[i] = (char) tolower((unsigned char) (*e)[7 + i]);
        }
        name[n] = '\0';
        if (s_find(table, name, n) != NULL) {
            continue;
        }
        const char *near = s_suggest(table, name);
        if (near) {
            char want[80];
            size_t k = 0;
            for (const char *p = near; *p && k + 1 < sizeof want; p++) {
                want[k++] = (char) toupper((unsigned char) *p);
            }
            want[k] = '\0';
            GA_WARN("the environment's GENAPI_%.*s is no option of %s and is ignored (did you "
                    "mean GENAPI_%s?)",
                    (int) n, *e + 7, prog, want);
        }
    }
}

bool
ga_config_is_check(int argc, char **argv)
{
    return argc > 1 && strcmp(argv[1], "check") == 0;
}

ga_err_t
ga_config_load(const ga_option_t *table, void *cfg, const char *prog, int argc, char **argv,
               char *err, size_t errlen)
{
    ga_err_t rc;
    for (const ga_option_t *o = table; o->name; o++) {
        if ((rc = s_set(o, cfg, o->dflt, "default", err, errlen)) != GA_OK) {
            return rc;
        }
    }
    bool print = false;
    int first = ga_config_is_check(argc, argv) ? 2 : 1;
    // Pass 1: the file, so that the environment and --set override it.
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_help(table, prog);
            return GA_ECLOSED;
        }
        if (strcmp(argv[i], "--print-config") == 0) {
            print = true;
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) &&
                   i + 1 < argc) {
            if ((rc = s_load_file(table, cfg, argv[++i], err, errlen)) != GA_OK) {
                return rc;
            }
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            i++;
        } else {
            snprintf(err, errlen, "unknown argument \"%s\" (see --help)", argv[i]);
            return GA_ECONFIG;
        }
    }
    for (const ga_option_t *o = table; o->name; o++) {
        char env[80] = "GENAPI_";
        size_t k = strlen(env);
        for (const char *p = o->name; *p && k + 1 < sizeof env; p++) {
            env[k++] = (char) toupper((unsigned char) *p);
        }
        env[k] = '\0';
        const char *v = getenv(env);
        if (v && (rc = s_set(o, cfg, v, env, err, errlen)) != GA_OK) {
            return rc;
        }
    }
    s_warn_env_typos(table, prog);
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--set") != 0 || i + 1 >= argc) {
            i += strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0;
            continue;
        }
        const char *kv = argv[++i];
        const char *eq = strchr(kv, '=');
        const ga_option_t *o = eq ? s_find(table, kv, (size_t) (eq - kv)) : NULL;
        if (o == NULL) {
            // The closest option name, as for a config file's key ("did you mean").
            char name[64];
            size_t n = eq ? (size_t) (eq - kv) : strlen(kv);
            snprintf(name, sizeof name, "%.*s", (int) (n < sizeof name ? n : sizeof name - 1),
                     kv);
            const char *near = n < sizeof name ? s_suggest(table, name) : NULL;
            snprintf(err, errlen, "--set %s: unknown option%s%s%s", kv,
                     near ? " (did you mean \"" : " (see --help)", near ? near : "",
                     near ? "\"?)" : "");
            return GA_ECONFIG;
        }
        if ((rc = s_set(o, cfg, eq + 1, "--set", err, errlen)) != GA_OK) {
            return rc;
        }
    }
    if (print) {
        s_print(table, cfg);
        return GA_ECLOSED;
    }
    return GA_OK;
}

static bool
s_equal(const ga_option_t *o, const void *a, const void *b)
{
    const char *fa = (const char *) a + o->offset;
    const char *fb = (const char *) b + o->offset;
    switch (o->type) {
    case GA_OPT_STR:
    case GA_OPT_JSON: {
        const char *sa = *(char *const *) (const void *) fa;
        const char *sb = *(char *const *) (const void *) fb;
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    case GA_OPT_INT:
        return *(const int64_t *) (const void *) fa == *(const int64_t *) (const void *) fb;
    case GA_OPT_BOOL:
        return *(const bool *) (const void *) fa == *(const bool *) (const void *) fb;
    }
    return true;
}

static void
s_swap(const ga_option_t *o, void *a, void *b)
{
    char tmp[sizeof(int64_t) > sizeof(char *) ? sizeof(int64_t) : sizeof(char *)];
    size_t n = o->type == GA_OPT_INT    ? sizeof(int64_t)
               : o->type == GA_OPT_BOOL ? sizeof(bool)
                                        : sizeof(char *);
    memcpy(tmp, (char *) a + o->offset, n);
    memcpy((char *) a + o->offset, (char *) b + o->offset, n);
    memcpy((char *) b + o->offset, tmp, n);
}

static void
s_list_add(char *list, size_t len, const char *name)
{
    size_t used = strlen(list);
    snprintf(list + used, len - used, "%s%s", used ? ", " : "", name);
}

void
ga_config_reload(const ga_option_t *table, void *cur, void *next, ga_config_apply_fn *apply,
                 void *arg)
{
    char changed[512] = "";
    char applied[512] = "";
    char restart[512] = "";
    char refused[512] = "";
    for (const ga_option_t *o = table; o->name; o++) {
        if (s_equal(o, cur, next)) {
            continue;
        }
        s_list_add(changed, sizeof changed, o->name);
        char why[300] = "";
        switch (apply(o, next, arg, why, sizeof why)) {
        case GA_RELOAD_APPLIED:
            s_swap(o, cur, next);
            s_list_add(applied, sizeof applied, o->name);
            break;
        case GA_RELOAD_RESTART:
            s_list_add(restart, sizeof restart, o->name);
            break;
        case GA_RELOAD_INVALID:
            s_list_add(refused, sizeof refused, o->name);
            GA_ERR("reload: %s: %s; the value in force is kept", o->name, why);
            break;
        }
    }
    if (changed[0] == '\0') {
        GA_NOTICE("reload: nothing changed");
        return;
    }
    GA_NOTICE("reload: changed: %s; applied: %s; need a restart (not applied): %s; refused: %s",
              changed, applied[0] ? applied : "none", restart[0] ? restart : "none",
              refused[0] ? refused : "none");
}

void
ga_config_fini(const ga_option_t *table, void *cfg)
{
    for (const ga_option_t *o = table; o->name; o++) {
        if (o->type == GA_OPT_STR || o->type == GA_OPT_JSON) {
            char **dst = (char **) (void *) ((char *) cfg + o->offset);
            ga_free(*dst);
            *dst = NULL;
        }
    }
}

ga_reload_t
ga_config_reload_log_level(const char *level, char *why, size_t whylen)
{
    int parsed = ga_log_level_parse(level);
    if (parsed < 0) {
        snprintf(why, whylen, "must be err, warn, notice, info or debug");
        return GA_RELOAD_INVALID;
    }
    ga_log_set_level((ga_log_level_t) parsed);
    return GA_RELOAD_APPLIED;
}
