// SPDX-License-Identifier: MIT
// Phoenix Channels serializer V2: a text frame is the JSON array
// [join_ref, ref, topic, event, payload], where join_ref and ref are strings or null. This file
// decodes one frame into its parts and encodes replies and pushes. Pure: no I/O, no state.
#ifndef GW_PHX_H
#define GW_PHX_H

#include "ga_arena.h"
#include "ga_err.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <stddef.h>

typedef struct {
    const char *join_ref;     // NULL when null
    const char *ref;          // NULL when null
    const char *topic;        // never NULL after a successful decode
    const char *event;        // never NULL after a successful decode
    const ga_value_t *payload; // any JSON value (borrowed from the arena)
} gw_phx_frame_t;

// Decodes one text frame. On GA_EPROTO `err` holds a client-visible reason beginning
// "malformed frame: ". Strings and payload live in `arena`.
GA_MUST_CHECK ga_err_t gw_phx_decode(const char *text, size_t len, ga_arena_t *arena,
                                     gw_phx_frame_t *out, char *err, size_t errlen);

// Appends [join_ref, ref, topic, event, <payload_json>] to `out`; NULL refs become null.
// `payload_json` is already-encoded JSON of `payload_len` bytes.
void gw_phx_encode(ga_buf_t *out, const char *join_ref, const char *ref, const char *topic,
                   const char *event, const char *payload_json, size_t payload_len);
// Appends a phx_reply frame: {"status": status, "response": <response_json>}.
void gw_phx_encode_reply(ga_buf_t *out, const char *join_ref, const char *ref, const char *topic,
                         const char *status, const char *response_json, size_t response_len);

#endif
