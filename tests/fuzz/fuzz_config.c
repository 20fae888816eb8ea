// SPDX-License-Identifier: MIT
// Fuzz target: a JSON config file's text (ga_config_parse_json, the step of ga_config_load that
// reads --config FILE), against a table with every option type (strings, ranged integers,
// booleans; names like the gateway's). After any outcome the struct holds in-range integers,
// and a refusal names what was refused.
#include "ga_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    char *listen;
    char *topics;
    int64_t max_payload_bytes;
    int64_t heartbeat_ms;
    int64_t timeout_grace_ms;
    bool detail_errors;
    bool insecure_bind;
    char *jwt_secret;
} opts_t;

#define OPT(name, type, dflt, min, max)                                                           \
    {#name, type, dflt, min, max, offsetof(opts_t, name), "fuzz"}

static const ga_option_t s_table[] = {
    OPT(listen, GA_OPT_STR, "0.0.0.0:4000", 0, 0),
    OPT(topics, GA_OPT_STR, "api:lobby,chat:*", 0, 0),
    OPT(max_payload_bytes, GA_OPT_INT, "1048576", 256, 67108864),
    OPT(heartbeat_ms, GA_OPT_INT, "1000", 50, 60000),
    OPT(timeout_grace_ms, GA_OPT_INT, "2000", 0, 60000),
    OPT(detail_errors, GA_OPT_BOOL, "false", 0, 0),
    OPT(insecure_bind, GA_OPT_BOOL, "false", 0, 0),
    OPT(jwt_secret, GA_OPT_STR, "", 0, 0),
    {NULL, GA_OPT_STR, NULL, 0, 0, 0, NULL},
};

// A refusal names the file, or begins with the option's name (a long value quoted in the
// message may push "(from fuzz.json)" past the end of the buffer).
static bool
s_names_what(const char *err)
{
    if (strstr(err, "fuzz.json") != NULL) {
        return true;
    }
    for (const ga_option_t *o = s_table; o->name; o++) {
        size_t n = strlen(o->name);
        if (strncmp(err, o->name, n) == 0 && err[n] == ':') {
            return true;
        }
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    char err[512] = "";
    char *argv[] = {"fuzz_config", NULL};
    if (ga_config_load(s_table, &o, "fuzz_config", 1, argv, err, sizeof err) != GA_OK) {
        abort(); // the defaults are valid
    }
    ga_err_t rc =
        ga_config_parse_json(s_table, &o, (const char *) data, size, "fuzz.json", err, sizeof err);
    if (rc != GA_OK && (rc != GA_ECONFIG || !s_names_what(err))) {
        abort(); // a refusal names the file or the option
    }
    if (o.listen == NULL || o.topics == NULL || o.jwt_secret == NULL ||
        o.max_payload_bytes < 256 || o.max_payload_bytes > 67108864 || o.heartbeat_ms < 50 ||
        o.heartbeat_ms > 60000 || o.timeout_grace_ms < 0 || o.timeout_grace_ms > 60000) {
        abort(); // an out-of-range value was stored
    }
    ga_config_fini(s_table, &o);
    return 0;
}
