// SPDX-License-Identifier: MIT
// JSON codec between text and ga_value_t. The only file that includes the JSON library
// (jansson, which rejects invalid UTF-8, lone surrogates, embedded NULs and trailing garbage).
// Encoding is our own writer: it never fails, writes shortest round-trip numbers, maps
// non-finite floats to null and replaces invalid UTF-8 from a peer with U+FFFD. Pure.
#ifndef GA_JSON_H
#define GA_JSON_H

#include "ga_err.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <stddef.h>

// Maximum nesting of arrays and objects accepted by the decoder.
#define GA_JSON_MAX_DEPTH 32

// Decodes one JSON document (any type at top level) into `*out`, in `arena`. Duplicate object
// keys are refused. On error returns GA_EPROTO (or GA_ETOOBIG for nesting) and, when `err` is
// not NULL, writes a short reason into err[0..errlen).
GA_MUST_CHECK ga_err_t ga_json_decode(const char *text, size_t len, ga_arena_t *arena,
                                      ga_value_t *out, char *err, size_t errlen);

// Appends the JSON text of `v` to `out` (no NUL terminator).
void ga_json_encode(ga_buf_t *out, const ga_value_t *v);
// Appends `s` (len bytes) as a JSON string literal with quotes.
void ga_json_encode_str(ga_buf_t *out, const char *s, size_t len);

#endif
