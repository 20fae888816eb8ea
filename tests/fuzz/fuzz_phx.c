// SPDX-License-Identifier: MIT
// Fuzz target: one Phoenix V2 text frame from a WebSocket client (gw_phx_decode, over our JSON
// decoder). Differential check: a frame that decodes is encoded again (gw_phx_encode with the
// payload through ga_json_encode) and must decode to the same five parts. JSON has one number
// type, so an integral float may come back as an integer ("1.5e3" is written "1500"): numbers
// are compared by value.
#include "ga_arena.h"
#include "ga_json.h"
#include "ga_mem.h"
#include "gw_phx.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
s_same_ref(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool
s_same(const ga_value_t *a, const ga_value_t *b)
{
    if (a->type == GA_INT && b->type == GA_FLOAT) {
        return (double) a->u.i == b->u.f;
    }
    if (a->type == GA_FLOAT && b->type == GA_INT) {
        return a->u.f == (double) b->u.i;
    }
    if (a->type != b->type) {
        return false;
    }
    if (a->type == GA_ARRAY || a->type == GA_MAP) {
        if (a->len != b->len) {
            return false;
        }
        for (uint32_t i = 0; i < a->len; i++) {
            // Keys keep their input order, so pairs line up.
            if (a->type == GA_MAP && strcmp(a->u.pairs[i].key, b->u.pairs[i].key) != 0) {
                return false;
            }
            if (!s_same(a->type == GA_MAP ? &a->u.pairs[i].value : &a->u.items[i],
                        b->type == GA_MAP ? &b->u.pairs[i].value : &b->u.items[i])) {
                return false;
            }
        }
        return true;
    }
    return ga_value_equal(a, b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ga_arena_t *arena = ga_arena_new(4096);
    gw_phx_frame_t f;
    char err[256];
    if (gw_phx_decode((const char *) data, size, arena, &f, err, sizeof err) == GA_OK) {
        ga_buf_t payload, frame;
        ga_buf_init(&payload);
        ga_buf_init(&frame);
        ga_json_encode(&payload, f.payload);
        gw_phx_encode(&frame, f.join_ref, f.ref, f.topic, f.event, (const char *) payload.data,
                      payload.len);
        gw_phx_frame_t g;
        if (gw_phx_decode((const char *) frame.data, frame.len, arena, &g, err, sizeof err) !=
                GA_OK ||
            !s_same_ref(f.join_ref, g.join_ref) || !s_same_ref(f.ref, g.ref) ||
            strcmp(f.topic, g.topic) != 0 || strcmp(f.event, g.event) != 0 ||
            !s_same(f.payload, g.payload)) {
            abort(); // the encoder and decoder disagree
        }
        ga_buf_fini(&frame);
        ga_buf_fini(&payload);
    } else if (strncmp(err, "malformed frame: ", 17) != 0) {
        abort(); // every refusal carries the client-visible prefix
    }
    ga_arena_destroy(&arena);
    return 0;
}
