// SPDX-License-Identifier: MIT
// WebSocket client framing (RFC 6455, section 5) without I/O.
#include "bench_ws.h"

#include <stdio.h>
#include <string.h>

size_t
bench_ws_handshake(char *out, size_t cap, const char *host, const char *path)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, host);
    return n < 0 || (size_t) n >= cap ? 0 : (size_t) n;
}

int
bench_ws_handshake_done(const char *buf, size_t len, size_t *consumed)
{
    for (size_t i = 3; i < len; i++) {
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') {
            *consumed = i + 1;
            return len >= 12 && memcmp(buf + 9, "101", 3) == 0 ? 1 : -1;
        }
    }
    return 0;
}

size_t
bench_ws_encode(uint8_t *out, int opcode, const void *payload, size_t len, uint32_t mask)
{
    size_t n = 0;
    out[n++] = (uint8_t) (0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[n++] = (uint8_t) (0x80 | len);
    } else if (len < 65536) {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t) (len >> 8);
        out[n++] = (uint8_t) len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) {
            out[n++] = (uint8_t) ((uint64_t) len >> (8 * i));
        }
    }
    uint8_t key[4] = {(uint8_t) (mask >> 24), (uint8_t) (mask >> 16), (uint8_t) (mask >> 8),
                      (uint8_t) mask};
    memcpy(out + n, key, 4);
    n += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++) {
        out[n + i] = p[i] ^ key[i & 3];
    }
    return n + len;
}

long
bench_ws_decode(const uint8_t *buf, size_t len, int *opcode, bool *fin, size_t *start,
                size_t *plen)
{
    if (len < 2) {
        return 0;
    }
    if ((buf[0] & 0x70) != 0 || (buf[1] & 0x80) != 0) {
        return -1; // reserved bits, or a masked server frame
    }
    *fin = (buf[0] & 0x80) != 0;
    *opcode = buf[0] & 0x0f;
    uint64_t n = buf[1] & 0x7f;
    size_t head = 2;
    if (n == 126) {
        if (len < 4) {
            return 0;
        }
        n = ((uint64_t) buf[2] << 8) | buf[3];
        head = 4;
    } else if (n == 127) {
        if (len < 10) {
            return 0;
        }
        n = 0;
        for (int i = 0; i < 8; i++) {
            n = (n << 8) | buf[2 + i];
        }
        head = 10;
        if (n > 0x7fffffffu) {
            return -1;
        }
    }
    if (len - head < n) {
        return 0;
    }
    *start = head;
    *plen = (size_t) n;
    return (long) (head + n);
}
