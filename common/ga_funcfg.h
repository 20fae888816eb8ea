// SPDX-License-Identifier: MIT
// A function config: what a worker offers (service, request_type, version), how it is called
// (timeout, response type, node choice) and what it accepts (argument specs). Parsed from the
// ga_value_t map that workers push (docs/protocol.md, "Function config") and validated field by
// field: a config that breaks a rule, or sets a field whose feature is not built yet, is
// refused with a message naming the field. Each config owns an arena that holds all of its
// strings and values; the config is immutable once parsed.
#ifndef GA_FUNCFG_H
#define GA_FUNCFG_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_value.h"

#include <stdbool.h>
#include <stdint.h>

#define GA_FUNCFG_TIMEOUT_DEFAULT  5000    // ms
#define GA_FUNCFG_TIMEOUT_MIN      100     // ms
#define GA_FUNCFG_TIMEOUT_MAX      300000  // ms
#define GA_FUNCFG_TIMEOUT_INFINITY (-1)    // streams only
#define GA_ARG_MAX_BYTES_DEFAULT   3000    // per string, when a config sets none
#define GA_ARG_MAX_ITEMS_DEFAULT   1000    // per list or map, when a config sets none
#define GA_FUNCFG_HOOK_TIMEOUT_DEFAULT 5000 // ms
#define GA_FUNCFG_MAX_ARGS         64      // declared arguments per function

typedef enum {
    GA_ARG_STRING,
    GA_ARG_NUM,
    GA_ARG_BOOLEAN,
    GA_ARG_UUID,
    GA_ARG_DATETIME,
    GA_ARG_NAIVE_DATETIME,
    GA_ARG_LIST,
    GA_ARG_LIST_STRING,
    GA_ARG_LIST_NUM,
    GA_ARG_LIST_UUID,
    GA_ARG_LIST_MAP,
    GA_ARG_MAP,
    GA_ARG_ANY,
} ga_argtype_t;

// How the broker picks a worker for a call (docs/protocol.md, "Node selection").
typedef enum {
    GA_NODE_RANDOM,       // uniform among the live candidates
    GA_NODE_HASH,         // by request id (rendezvous hashing)
    GA_NODE_HASH_ARG,     // by an argument's value (the CALL's routing_key), rendezvous
    GA_NODE_ROUND_ROBIN,  // a counter per function over the candidates in node-name order
    GA_NODE_STICKY,       // sticky:KEY: a remembered key -> node mapping
    GA_NODE_LEAST_LOADED, // fewest calls in flight
} ga_node_mode_t;

typedef enum {
    GA_RESP_SYNC,
    GA_RESP_ASYNC,
    GA_RESP_STREAM,
    GA_RESP_NONE,
} ga_resp_t;

// One declared argument.
typedef struct {
    const char *name;          // argument name
    ga_argtype_t type;         // declared type
    int64_t max_bytes;         // string: byte limit (global cap when unset)
    int64_t max_items;         // lists and map: item limit (global cap when unset)
    int64_t max_item_bytes;    // list_string: bytes per item (global string cap when unset)
    bool allow_nil;            // null accepted
    bool has_default;          // default_value set
    ga_value_t default_value;  // used when the argument is absent (not when null)
    const char *const *required; // map: keys that must be present
    uint32_t n_required;         // entries in required
    const char *const *accept;   // map: the only keys allowed (NULL: any)
    uint32_t n_accept;           // entries in accept
} ga_argspec_t;

typedef struct ga_funcfg_t ga_funcfg_t;

struct ga_funcfg_t {
    ga_arena_t *arena;            // owns every string and value below
    const char *service;          // service name
    const char *request_type;     // function name within the service
    const char *version;          // NULL when unversioned ("0.0.0" also means none)
    int64_t timeout_ms;           // GA_FUNCFG_TIMEOUT_INFINITY or 100..300000
    ga_resp_t response_type;      // sync, async, stream, none
    ga_argspec_t *args;           // declared arguments, in arg_orders order
    uint32_t n_args;              // entries in args
    bool args_as_map;             // arg_orders: "map" (handler gets one map)
    const char *choose_node_mode; // as given: "random", "hash", "hash:ARG", "sticky:KEY", ...
    ga_node_mode_t node_mode;     // choose_node_mode parsed
    // hash:ARG and sticky:KEY: the argument or request field whose value routes the call (the
    // gateway sends it as the CALL's routing_key); NULL for the other modes.
    const char *node_key;
    bool node_key_is_arg;         // node_key names a declared argument (else a request field)
    const char *const *nodes;     // allowed node names (NULL: any live worker)
    uint32_t n_nodes;             // entries in nodes
    // nodes as a resolver: the worker function "service.request_type" whose answer (a list of
    // node names, cached briefly) allows the nodes; NULL when nodes is a list or absent.
    const char *nodes_resolver;
    const char *check_permission; // "false", "any_authenticated", "arg:NAME", "role:[a,b]"
    const char *permission_callback; // worker function "service.request_type", or NULL
    const char *retry;            // NULL, "N", "same_node:N", "all_nodes:N"
    int retry_attempts;           // from retry: attempts in all (1..10); 0 when not set
    bool retry_same_node;         // from retry: same_node:N (else across nodes)
    // Hooks (docs/protocol.md, "Hooks"): a worker function "service.request_type" or the name
    // of an in-process hook, each with its extra args (nil when none). after_execute is refused
    // for stream and none functions.
    const char *before_execute;   // hook function, or NULL
    ga_value_t before_args;       // its extra args (any value; nil: none)
    const char *after_execute;    // hook function, or NULL
    ga_value_t after_args;        // its extra args (any value; nil: none)
    int64_t hook_timeout_ms;      // per hook call (default GA_FUNCFG_HOOK_TIMEOUT_DEFAULT)
    bool request_info;            // the handler also sees the caller: user, roles, device, ip
    bool disabled;                // refused with "Function disabled"
    // visibility "internal": the function serves the gateway and the broker only (a hook, a
    // permission callback, an identity service, a nodes resolver). A client's direct call is
    // answered exactly as for an unknown function (docs/protocol.md, "Function config").
    bool internal;
    ga_value_t source;            // the config map as received (for forwarding), in arena
};

// Parses and validates `v`. On GA_OK `*out` is a new config the caller owns. On GA_ECONFIG
// `err` names the field and the rule ("timeout: must be 100..300000 ms or \"infinity\"").
GA_MUST_CHECK ga_err_t ga_funcfg_parse(const ga_value_t *v, ga_funcfg_t **out, char *err,
                                       size_t errlen);
void ga_funcfg_destroy(ga_funcfg_t **self_p);

// Checks one argument value against its spec. Returns GA_OK or GA_EINVAL with the
// client-visible message in `err` (worded as in docs/protocol.md, "Errors a client can see").
GA_MUST_CHECK ga_err_t ga_arg_check(const ga_argspec_t *spec, const ga_value_t *v, char *err,
                                    size_t errlen);

// Checks a request's arguments (`given`, a map) against every declared argument of `cfg`:
// undeclared names are refused, absent ones take their default (or nil when allowed), each
// value is checked with ga_arg_check. On GA_OK `*out` is the converted map (in `arena`); on
// GA_EINVAL `msg` holds the client-visible message. The gateway runs it on every request and
// the worker library again before any handler (a handler never sees arguments its declaration
// forbids, whoever sent the call).
GA_MUST_CHECK ga_err_t ga_funcfg_check_args(const ga_funcfg_t *cfg, const ga_value_t *given,
                                            ga_arena_t *arena, ga_value_t *out, char *msg,
                                            size_t len);

// The request fields sticky:KEY may name besides declared arguments: user_id, device_id, ip
// (the caller's, as the gateway knows them) and request_id. True when `name` is one.
bool ga_funcfg_is_request_field(const char *name);

// Names and parsing for enums ("sync" <-> GA_RESP_SYNC). Parsers return -1 when unknown.
const char *ga_resp_name(ga_resp_t r);
int ga_resp_parse(const char *name);
const char *ga_argtype_name(ga_argtype_t t);
int ga_argtype_parse(const char *name);

#endif
