// SPDX-License-Identifier: MIT
// MessagePack codec between bytes and ga_value_t, our own both ways (msgpack-c's packer is only
// the unit tests' oracle for the encoder).
//
// Decoding never trusts a count the input claims. msgpack-c 4.0 sizes arrays and maps from the
// claimed count (an 11-byte input can make it ask for 256 GiB), so every decode first runs a
// pre-scan that walks the whole input without allocating: each claimed element count must fit
// in the bytes that remain (one byte per element at least, two per map pair), nesting is capped,
// every length is checked against the end, map keys must be strings without NULs, and
// extension types are refused. Only then is the tree built, in the caller's arena, sized by what
// the scan counted. Pure: no I/O, no logging, no globals.
#ifndef GA_WIRE_H
#define GA_WIRE_H

#include "ga_err.h"
#include "ga_mem.h"
#include "ga_value.h"

#include <stddef.h>
#include <stdint.h>

// Maximum nesting of arrays and maps accepted by the decoder.
#define GA_WIRE_MAX_DEPTH 32

// Appends the MessagePack encoding of `v` to `out`. Any thread (no shared state).
void ga_wire_encode(ga_buf_t *out, const ga_value_t *v);

// Checks that `data` holds exactly one well-formed MessagePack value within the limits above.
// Allocates nothing. Returns GA_OK, GA_EPROTO (malformed, truncated, trailing bytes, unsupported
// type) or GA_ETOOBIG (nesting deeper than GA_WIRE_MAX_DEPTH).
GA_MUST_CHECK ga_err_t ga_wire_scan(const uint8_t *data, size_t len);

// Like ga_wire_scan on the first value of `data` only: `*n` is its length in bytes; bytes after
// it are allowed (a stream of values, e.g. an envelope followed by its payload).
GA_MUST_CHECK ga_err_t ga_wire_scan_first(const uint8_t *data, size_t len, size_t *n);

// ga_wire_decode of the first value of `data` only (`*n`: its length in bytes), scanning it once.
GA_MUST_CHECK ga_err_t ga_wire_decode_first(const uint8_t *data, size_t len, ga_arena_t *arena,
                                            ga_value_t *out, size_t *n);

// Scans, then decodes `data` into `*out`, allocating from `arena` (strings are copied and
// NUL-terminated). On error `*out` is nil and the arena may hold garbage until reset.
GA_MUST_CHECK ga_err_t ga_wire_decode(const uint8_t *data, size_t len, ga_arena_t *arena,
                                      ga_value_t *out);

// ga_wire_decode, same result and same errors, in one pass when `data` is a map whose values
// are all scalars (nil, bool, int, float, str, bin), as protocol envelopes mostly are: without
// nesting, the pairs array is sized by a count checked against the bytes, so no pre-scan is
// needed. Anything else goes through ga_wire_decode. On error, as there, `*out` is nil and the
// arena may hold garbage until reset.
GA_MUST_CHECK ga_err_t ga_wire_decode_map(const uint8_t *data, size_t len, ga_arena_t *arena,
                                          ga_value_t *out);
#endif
