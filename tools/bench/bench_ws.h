// SPDX-License-Identifier: MIT
// The client side of RFC 6455 for genapi-bench, as pure functions over byte buffers: the
// upgrade request, masked frame encoding, and server frame decoding. No I/O.
#ifndef BENCH_WS_H
#define BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_WS_TEXT   0x1
#define BENCH_WS_BINARY 0x2
#define BENCH_WS_CLOSE  0x8
#define BENCH_WS_PING   0x9
#define BENCH_WS_PONG   0xA

// Writes the HTTP upgrade request for `path` on `host` into out; returns its length.
size_t bench_ws_handshake(char *out, size_t cap, const char *host, const char *path);
// True when buf[0..len) holds a complete "101" response; *consumed is its length.
// Returns -1 when a complete response is not 101.
int bench_ws_handshake_done(const char *buf, size_t len, size_t *consumed);

// Encodes one final, masked frame with `opcode` and `payload` into out (which needs
// len + 14 bytes). `mask` is the masking key. Returns the frame length.
size_t bench_ws_encode(uint8_t *out, int opcode, const void *payload, size_t len,
                       uint32_t mask);

// Decodes one server frame at buf[0..len). Returns 0 when incomplete, -1 when malformed
// (a masked server frame, a reserved bit, a length over 2^31), else the frame length; the
// payload is buf[*start .. *start + *plen), *opcode its opcode and *fin the FIN bit.
long bench_ws_decode(const uint8_t *buf, size_t len, int *opcode, bool *fin, size_t *start,
                     size_t *plen);

#endif
