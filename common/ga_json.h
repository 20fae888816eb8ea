// SPDX-License-Identifier: MIT
// JSON codec between text and ga_value_t. Pure: no I/O, no global state (the duplicate-key
// table of a large object takes a per-call seed from the clock and addresses; it never changes
// a result).
// Decoding is our own single-pass parser that builds values directly in the caller's arena (no
// malloc per message). It is strict RFC 8259, as jansson was with JSON_REJECT_DUPLICATES: any
// value at top level; only space, tab, CR and LF as whitespace; trailing bytes refused; strings
// must be valid UTF-8 without raw control characters, \u escapes must pair surrogates and may
// not be \u0000; integers must fit int64_t, other numbers must not overflow a double; object
// keys are unique and keep their input order.
// Encoding is our own writer: it never fails, writes shortest round-trip numbers, maps
// non-finite floats to null and replaces invalid UTF-8 from a peer with U+FFFD.
#ifndef GA_JSON_H
#define GA_JSON_H

#include "ga_err.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <stddef.h>

// Maximum nesting of arrays and objects accepted by the decoder.
#define GA_JSON_MAX_DEPTH 32

// Decodes one JSON document (any type at top level) from text[0..len) (no NUL terminator needed;
// nothing at or past len is read) into `*out`, in `arena`. Duplicate object keys are refused.
// On error sets `*out` to nil, returns GA_ETOOBIG for nesting deeper than GA_JSON_MAX_DEPTH and
// GA_EPROTO for anything else, and, when `err` is not NULL, writes a short reason into
// err[0..errlen) ("<reason> at offset N"). Values already built stay in the arena until reset.
GA_MUST_CHECK ga_err_t ga_json_decode(const char *text, size_t len, ga_arena_t *arena,
                                      ga_value_t *out, char *err, size_t errlen);

// Appends the JSON text of `v` to `out` (no NUL terminator).
void ga_json_encode(ga_buf_t *out, const ga_value_t *v);
// Appends `s` (len bytes) as a JSON string literal with quotes.
void ga_json_encode_str(ga_buf_t *out, const char *s, size_t len);

#endif
