// SPDX-License-Identifier: MIT
// genapi-test-peer: a raw ZeroMQ peer for the security tests, playing whoever an attacker on the
// network could play: a DEALER on a broker ROUTER (a forged gateway or worker), a PUB on the
// stream proxy's input (a forged stream chunk), or a SUB on its output (an eavesdropper).
//
//   genapi-test-peer --connect ENDPOINT --type dealer|pub|sub [--curve-key FILE --broker-key FILE]
//                    [--topic TOPIC] [--send COMMAND JSON [--payload HEX] [--envelope HEX]]...
//                    [--listen MS] [--answer-heartbeats] [--reply retryable|echo] [--version N]
//                    [--print-envelopes]
//
// COMMAND is a command name (CALL, REGISTER, ADMIN, STREAM, ...) and JSON its body (a string
// value written "\u0000"-free; a "token" given as {"$bytes": "hex"} is sent as raw bytes, NUL
// bytes included), sent in the frame layout (a CALL's "args", a REPLY's "result" as the payload
// frame); --payload sends HEX as that COMMAND's payload frame instead, byte for byte, and
// --envelope HEX as its envelope frame instead of JSON's encoding (JSON must still parse). A pub
// sends each message on TOPIC; a sub subscribes to TOPIC (default: all).
// With --answer-heartbeats a dealer answers each HEARTBEAT (a worker that stays alive but
// answers nothing else). --reply answers each REQUEST: `retryable` with a retryable handler
// error, `echo` with a success whose result is the REQUEST's payload frame, sent back as
// received, and whose envelope ends with the pair "note": 1.5 as a float32 (`a4 6e 6f 74 65 ca
// 3f c0 00 00`, which no re-encoding of a decoded value gives back). --version N sends every
// message as version N framed it (a stale peer): for 4 one frame of the tag (with 4 as its
// version), the command and the JSON's encoding; for 3 a frame of the tag and the command,
// then the JSON's encoding; for 1 and 2 the tag, the command in a frame of its own, then the
// JSON's encoding.
// Prints "CONNECTED" once set up, then one line per message received within MS
// (default 1000): "RECV COMMAND JSON" (sub: "RECV TOPIC COMMAND JSON"; the payload merged into
// the JSON), and after a message with a payload frame "PAYLOAD HEX", its bytes; with
// --print-envelopes, "ENVELOPE HEX" (the envelope frame's bytes) after every RECV line first.
// Exit 0 unless the arguments are bad.
#include "ga_arena.h"
#include "ga_curve.h"
#include "ga_json.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <zmq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_command(const char *name)
{
    for (int c = 0; c < 256; c++) {
        const char *n = ga_cmd_name(c);
        if (n && strcmp(n, name) == 0) {
            return c;
        }
    }
    return -1;
}

// Replaces {"$bytes": "hex"} values at the top level by raw strings.
static void
s_raw_bytes(ga_value_t *body, ga_arena_t *a)
{
    for (uint32_t i = 0; body->type == GA_MAP && i < body->len; i++) {
        ga_value_t *v = &body->u.pairs[i].value;
        const char *hex = v->type == GA_MAP ? ga_map_get_str(v, "$bytes") : NULL;
        if (hex == NULL) {
            continue;
        }
        size_t n = strlen(hex) / 2;
        char *raw = ga_arena_alloc(a, n + 1);
        for (size_t j = 0; j < n; j++) {
            unsigned byte = 0;
            sscanf(hex + 2 * j, "%2x", &byte);
            raw[j] = (char) byte;
        }
        raw[n] = '\0';
        *v = ga_strn(raw, n);
    }
}

// Appends the bytes written in HEX to `out`.
static void
s_unhex(ga_buf_t *out, const char *hex)
{
    for (size_t j = 0; hex[j] && hex[j + 1]; j += 2) {
        unsigned byte = 0;
        sscanf(hex + j, "%2x", &byte);
        uint8_t b = (uint8_t) byte;
        ga_buf_append(out, &b, 1);
    }
}

static void
s_print_hex(const char *label, const uint8_t *data, size_t len)
{
    printf("%s ", label);
    for (size_t j = 0; j < len; j++) {
        printf("%02x", data[j]);
    }
    printf("\n");
}

int
main(int argc, char **argv)
{
    const char *endpoint = NULL, *type = "dealer", *topic = "", *curve_key = NULL;
    const char *broker_key = NULL;
    long listen_ms = 1000;
    bool answer_heartbeats = false;
    const char *reply = NULL;
    int version = GA_PROTO_VERSION;
    bool print_envelopes = false;
    const char *sends[32][4];
    int n_sends = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
            endpoint = argv[++i];
        } else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
            type = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            topic = argv[++i];
        } else if (strcmp(argv[i], "--curve-key") == 0 && i + 1 < argc) {
            curve_key = argv[++i];
        } else if (strcmp(argv[i], "--broker-key") == 0 && i + 1 < argc) {
            broker_key = argv[++i];
        } else if (strcmp(argv[i], "--answer-heartbeats") == 0) {
            answer_heartbeats = true;
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--send") == 0 && i + 2 < argc && n_sends < 32) {
            sends[n_sends][0] = argv[i + 1];
            sends[n_sends][1] = argv[i + 2];
            sends[n_sends][2] = NULL;
            sends[n_sends][3] = NULL;
            n_sends++;
            i += 2;
        } else if (strcmp(argv[i], "--payload") == 0 && i + 1 < argc && n_sends > 0) {
            sends[n_sends - 1][2] = argv[++i];
        } else if (strcmp(argv[i], "--envelope") == 0 && i + 1 < argc && n_sends > 0) {
            sends[n_sends - 1][3] = argv[++i];
        } else if (strcmp(argv[i], "--print-envelopes") == 0) {
            print_envelopes = true;
        } else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
            version = (int) strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--reply") == 0 && i + 1 < argc &&
                   (strcmp(argv[i + 1], "retryable") == 0 || strcmp(argv[i + 1], "echo") == 0)) {
            reply = argv[++i];
        } else {
            fprintf(stderr, "genapi-test-peer: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    int zt = strcmp(type, "pub") == 0 ? ZMQ_PUB : strcmp(type, "sub") == 0 ? ZMQ_SUB : ZMQ_DEALER;
    if (endpoint == NULL) {
        fprintf(stderr, "genapi-test-peer: --connect is required\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, zt);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    ga_curve_cert_t own, broker;
    bool curve = curve_key && broker_key;
    char err[600];
    // Any role will do: the broker, not this program, decides what a key may do.
    if (curve && (ga_curve_load(curve_key, true, &own, err, sizeof err) != GA_OK ||
                  ga_curve_load(broker_key, false, &broker, err, sizeof err) != GA_OK)) {
        fprintf(stderr, "genapi-test-peer: %s\n", err);
        return 2;
    }
    if (curve && ga_curve_client(sock, &own, broker.public_txt) != GA_OK) {
        fprintf(stderr, "genapi-test-peer: cannot set CURVE keys\n");
        return 2;
    }
    if (zt == ZMQ_SUB) {
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, strlen(topic));
    }
    if (zmq_connect(sock, endpoint) != 0) {
        fprintf(stderr, "genapi-test-peer: cannot connect to %s\n", endpoint);
        return 2;
    }
    zmq_sleep(zt == ZMQ_PUB ? 1 : 0); // a PUB's first messages are lost before subscriptions
    printf("CONNECTED\n");
    fflush(stdout);
    ga_arena_t *a = ga_arena_new(4096);
    ga_buf_t out, payload;
    ga_buf_init(&out);
    ga_buf_init(&payload);
    for (int i = 0; i < n_sends; i++) {
        int cmd = s_command(sends[i][0]);
        ga_value_t body;
        if (cmd < 0 || ga_json_decode(sends[i][1], strlen(sends[i][1]), a, &body, err,
                                      sizeof err) != GA_OK) {
            fprintf(stderr, "genapi-test-peer: bad --send %s %s\n", sends[i][0], sends[i][1]);
            return 2;
        }
        s_raw_bytes(&body, a);
        ga_buf_reset(&out);
        if (sends[i][3]) {
            s_unhex(&out, sends[i][3]);
        } else {
            ga_wire_encode(&out, &body);
        }
        ga_err_t rc;
        if (version != GA_PROTO_VERSION && zt == ZMQ_DEALER) {
            // An older peer's layout: version 4 sends tag, command and body as one frame;
            // version 3 sends tag and command as one frame and the body in the next; versions
            // 1 and 2 send the tag, the command and the body as three frames.
            char head[GA_PROTO_HEAD_LEN];
            memcpy(head, GA_PROTO_TAG, GA_PROTO_TAG_LEN);
            head[GA_PROTO_TAG_LEN - 1] = (char) version;
            head[GA_PROTO_TAG_LEN] = (char) cmd;
            uint8_t c = (uint8_t) cmd;
            bool sent = true;
            if (version == 4) {
                ga_buf_t one;
                ga_buf_init(&one);
                ga_buf_append(&one, head, sizeof head);
                ga_buf_append(&one, out.data, out.len);
                ga_buf_reset(&out);
                ga_buf_append(&out, one.data, one.len); // the last frame below
                ga_buf_fini(&one);
            } else if (version == 3) {
                sent = zmq_send(sock, head, sizeof head, ZMQ_SNDMORE) >= 0;
            } else {
                sent = zmq_send(sock, head, GA_PROTO_TAG_LEN, ZMQ_SNDMORE) >= 0 &&
                       zmq_send(sock, &c, 1, ZMQ_SNDMORE) >= 0;
            }
            rc = sent && zmq_send(sock, out.data, out.len, 0) >= 0 ? GA_OK : GA_EIO;
        } else if (zt == ZMQ_PUB) {
            rc = ga_proto_publish(sock, topic, cmd, &out);
        } else if (sends[i][2] || sends[i][3]) {
            ga_buf_reset(&payload);
            if (sends[i][2]) {
                s_unhex(&payload, sends[i][2]);
            }
            rc = ga_proto_send_payload(sock, NULL, 0, cmd, &out, &payload);
        } else {
            rc = ga_proto_send_split(sock, NULL, 0, cmd, &body, &out, &payload);
        }
        if (rc != GA_OK) {
            printf("UNSENT %s\n", sends[i][0]);
        }
    }
    ga_proto_msg_t msg;
    ga_proto_msg_init(&msg);
    void *watch = zmq_stopwatch_start();
    for (;;) {
        long left = listen_ms - (long) (zmq_stopwatch_intermediate(watch) / 1000);
        if (left <= 0) {
            break;
        }
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, left) <= 0) {
            continue;
        }
        ga_arena_reset(a);
        if (ga_proto_recv(sock, zt == ZMQ_SUB, &msg, a) != GA_OK) {
            printf("RECV MALFORMED\n");
            continue;
        }
        if (answer_heartbeats && msg.cmd == GA_CMD_HEARTBEAT && zt != ZMQ_SUB) {
            // Alive as a worker, answering nothing else (a worker that ignores config pulls).
            ga_value_t empty = ga_map(a, 0);
            ga_buf_reset(&out);
            ga_wire_encode(&out, &empty);
            GA_IGNORE(ga_proto_send(sock, NULL, 0, GA_CMD_HEARTBEAT, &out) != GA_OK);
        }
        if (reply && msg.cmd == GA_CMD_REQUEST && zt == ZMQ_DEALER) {
            ga_value_t r = ga_map(a, 6);
            ga_map_put(&r, a, "id", ga_int(ga_map_get_int(&msg.value, "id", 0)));
            ga_map_put(&r, a, "ok", ga_bool(strcmp(reply, "echo") == 0));
            if (strcmp(reply, "retryable") == 0) {
                ga_map_put(&r, a, "error", ga_str("try another node"));
                ga_map_put(&r, a, "code", ga_int(GA_EHANDLER));
                ga_map_put(&r, a, "can_retry", ga_bool(true));
                ga_map_put(&r, a, "retryable", ga_bool(true));
            }
            ga_buf_reset(&out);
            ga_wire_encode(&out, &r);
            if (strcmp(reply, "echo") == 0) {
                out.data[0]++; // {id, ok} is a fixmap: one pair more
                s_unhex(&out, "a46e6f7465ca3fc00000");
            }
            ga_proto_payload_t echo = ga_proto_msg_payload(&msg);
            GA_IGNORE(ga_proto_forward(sock, NULL, 0, GA_CMD_REPLY, &out,
                                       strcmp(reply, "echo") == 0 && msg.has_payload ? &echo
                                                                                    : NULL) !=
                      GA_OK);
        }
        size_t plen = 0;
        const uint8_t *pdata = ga_proto_payload(&msg, &plen);
        bool merged = ga_proto_payload_merge(&msg, a) == GA_OK;
        ga_buf_reset(&out);
        ga_json_encode(&out, &msg.value);
        if (!merged) {
            ga_buf_append(&out, " (payload malformed)", 20);
        }
        if (zt == ZMQ_SUB) {
            printf("RECV %.*s %s %.*s\n", (int) msg.id_len, (const char *) msg.id,
                   ga_cmd_name(msg.cmd), (int) out.len, (const char *) out.data);
        } else {
            printf("RECV %s %.*s\n", ga_cmd_name(msg.cmd), (int) out.len, (const char *) out.data);
        }
        if (print_envelopes) {
            s_print_hex("ENVELOPE", msg.body.data, msg.body.len); // as received
        }
        if (pdata) {
            s_print_hex("PAYLOAD", pdata, plen);
        }
        fflush(stdout);
    }
    zmq_stopwatch_stop(watch);
    ga_proto_msg_fini(&msg);
    ga_buf_fini(&out);
    ga_buf_fini(&payload);
    ga_arena_destroy(&a);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
