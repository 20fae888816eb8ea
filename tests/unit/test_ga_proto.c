// SPDX-License-Identifier: MIT
// The frame layout (ga_proto): envelope and payload as separate frames on real libzmq sockets
// (inproc DEALER and ROUTER), the payload passed through byte for byte (also when forwarded,
// and forwarded twice, as a retry does), the frames refused where the layout does not define
// them (a payload on another command, an empty or extra frame, an oversized envelope, another
// protocol version), batches (several items in one message, read one at a time, closed per
// peer, per bound and on demand), and the hex test vectors of docs/protocol.md ("Test
// vectors").
#include "ga_json.h"
#include "ga_proto.h"
#include "ga_wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

typedef struct {
    void *ctx;          // libzmq context
    void *router;       // bound, receives with routing ids
    void *dealer;       // connected to router
    void *router2;      // a second hop: what the router forwards goes here
    void *dealer2;      // connected to router2
    ga_arena_t *arena;  // decoded envelopes
    ga_proto_msg_t msg; // receive buffers
    ga_buf_t env;       // scratch
    ga_buf_t pay;       // scratch
} fixture_t;

static void *
s_socket(fixture_t *f, int type)
{
    void *s = zmq_socket(f->ctx, type);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    return s;
}

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->ctx = zmq_ctx_new();
    f->router = s_socket(f, ZMQ_ROUTER);
    f->dealer = s_socket(f, ZMQ_DEALER);
    f->router2 = s_socket(f, ZMQ_ROUTER);
    f->dealer2 = s_socket(f, ZMQ_DEALER);
    assert_int_equal(zmq_setsockopt(f->dealer2, ZMQ_ROUTING_ID, "w2", 2), 0);
    assert_int_equal(zmq_bind(f->router, "inproc://proto-a"), 0);
    assert_int_equal(zmq_connect(f->dealer, "inproc://proto-a"), 0);
    assert_int_equal(zmq_bind(f->router2, "inproc://proto-b"), 0);
    assert_int_equal(zmq_connect(f->dealer2, "inproc://proto-b"), 0);
    f->arena = ga_arena_new(4096);
    ga_proto_msg_init(&f->msg);
    ga_buf_init(&f->env);
    ga_buf_init(&f->pay);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    ga_proto_msg_fini(&f->msg);
    ga_buf_fini(&f->env);
    ga_buf_fini(&f->pay);
    ga_arena_destroy(&f->arena);
    zmq_close(f->router);
    zmq_close(f->dealer);
    zmq_close(f->router2);
    zmq_close(f->dealer2);
    zmq_ctx_term(f->ctx);
    free(f);
    return 0;
}

static size_t
s_unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    while (*hex) {
        if (*hex == ' ' || *hex == '\n') {
            hex++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(hex, "%2x", &v), 1);
        out[n++] = (uint8_t) v;
        hex += 2;
    }
    return n;
}

// Receives one message on `sock` (waiting up to a second for it).
static ga_err_t
s_recv(fixture_t *f, void *sock, bool routed)
{
    // The next item of a batch may be read already (the socket then has nothing to poll).
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    assert_true(f->msg.batch_socket == sock || zmq_poll(&item, 1, 1000) == 1);
    ga_arena_reset(f->arena);
    return ga_proto_recv(sock, routed, &f->msg, f->arena);
}

// Sends raw frames on `sock` (the last one without SNDMORE).
static void
s_send_frames(void *sock, const void *const *frames, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
    }
}

// A payload the broker could not re-encode identically from a decoded value: a float32
// (ga_wire encodes floats as float64), a bin (decoded as a string, encoded as str), a str8
// header for a 3-byte string (re-encoded as fixstr) and an int in a wider form than needed.
static const char s_odd_payload[] = "84 a1 66 ca 3f c0 00 00 a1 62 c4 02 00 ff a1 73 d9 03 61 62 63 "
                                    "a1 69 cd 00 05";

static void
test_envelope_and_payload_travel_as_separate_frames(void **state)
{
    fixture_t *f = *state;
    uint8_t odd[64];
    size_t odd_len = s_unhex(s_odd_payload, odd);
    ga_value_t env;
    const char *json = "{\"id\":7,\"service\":\"svc\",\"request_type\":\"fn\",\"request_id\":\"r1\"}";
    assert_int_equal(ga_json_decode(json, strlen(json), f->arena, &env, NULL, 0), GA_OK);
    ga_wire_encode(&f->env, &env);
    ga_buf_append(&f->pay, odd, odd_len);
    assert_int_equal(ga_proto_send_payload(f->dealer, NULL, 0, GA_CMD_CALL, &f->env, &f->pay),
                     GA_OK);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_CALL);
    assert_true(f->msg.id_len > 0);
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 7);
    assert_string_equal(ga_map_get_str(&f->msg.value, "service"), "svc");
    assert_null(ga_map_get(&f->msg.value, "args"));
    size_t len = 0;
    const uint8_t *p = ga_proto_payload(&f->msg, &len);
    assert_non_null(p);
    assert_int_equal(len, odd_len);
    assert_memory_equal(p, odd, odd_len);

    // Forwarded twice (a first attempt and a retry): the same bytes each time, the received
    // payload left intact for the next one.
    ga_buf_reset(&f->env);
    ga_buf_append(&f->env, "\x81\xa2id\x2a", 5);
    for (int i = 0; i < 2; i++) {
        ga_proto_payload_t args = ga_proto_msg_payload(&f->msg);
        assert_true(args.frame == &f->msg.payload); // a frame of its own: shared when sent
        assert_int_equal(ga_proto_forward(f->router2, (const uint8_t *) "w2", 2, GA_CMD_REQUEST,
                                          &f->env, &args),
                         GA_OK);
    }
    ga_proto_msg_t first;
    ga_proto_msg_init(&first);
    for (int i = 0; i < 2; i++) {
        zmq_pollitem_t item = {.socket = f->dealer2, .events = ZMQ_POLLIN};
        assert_int_equal(zmq_poll(&item, 1, 1000), 1);
        assert_int_equal(ga_proto_recv(f->dealer2, false, &first, f->arena), GA_OK);
        assert_int_equal(first.cmd, GA_CMD_REQUEST);
        assert_int_equal(ga_map_get_int(&first.value, "id", 0), 42);
        p = ga_proto_payload(&first, &len);
        assert_int_equal(len, odd_len);
        assert_memory_equal(p, odd, odd_len);
    }
    ga_proto_msg_fini(&first);
    // The received message still holds its payload after both forwards.
    p = ga_proto_payload(&f->msg, &len);
    assert_int_equal(len, odd_len);
    assert_memory_equal(p, odd, odd_len);
}

// A payload larger than libzmq's inline size travels by reference: still the same bytes.
static void
test_large_payload_is_forwarded_unchanged(void **state)
{
    fixture_t *f = *state;
    size_t n = 100000;
    uint8_t *big = malloc(n + 5);
    big[0] = 0xc6; // bin32
    big[1] = (uint8_t) (n >> 24);
    big[2] = (uint8_t) (n >> 16);
    big[3] = (uint8_t) (n >> 8);
    big[4] = (uint8_t) n;
    for (size_t i = 0; i < n; i++) {
        big[5 + i] = (uint8_t) (i * 31);
    }
    ga_buf_append(&f->env, "\x81\xa2id\x01", 5);
    ga_buf_append(&f->pay, big, n + 5);
    assert_int_equal(ga_proto_send_payload(f->dealer, NULL, 0, GA_CMD_REPLY, &f->env, &f->pay),
                     GA_OK);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    ga_proto_payload_t result = ga_proto_msg_payload(&f->msg);
    assert_int_equal(ga_proto_forward(f->router2, (const uint8_t *) "w2", 2, GA_CMD_RESULT,
                                      &f->env, &result),
                     GA_OK);
    assert_int_equal(s_recv(f, f->dealer2, false), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_RESULT);
    size_t len = 0;
    const uint8_t *p = ga_proto_payload(&f->msg, &len);
    assert_int_equal(len, n + 5);
    assert_memory_equal(p, big, n + 5);
    free(big);
}

// Every malformed message is refused as a whole, and the next one is read as it should be.
static void
test_frames_the_layout_does_not_define_are_refused(void **state)
{
    fixture_t *f = *state;
    // Head frames: the tag, the command, then the envelope.
    const char *hb = GA_PROTO_TAG "\x03" "\x80";
    const char *call_env = GA_PROTO_TAG "\x13" "\x81\xa2id\x01";
    const char *result_env = GA_PROTO_TAG "\x14" "\x80";
    uint8_t call_cmd = GA_CMD_CALL;
    size_t big_len = GA_PROTO_HEAD_LEN + GA_PROTO_MAX_ENVELOPE + 1;
    uint8_t *big = calloc(1, big_len);
    memcpy(big, GA_PROTO_TAG "\x13", GA_PROTO_HEAD_LEN);
    uint8_t *e = big + GA_PROTO_HEAD_LEN; // bin32 holding the rest: well-formed, but too large
    size_t e_len = big_len - GA_PROTO_HEAD_LEN - 5;
    e[0] = 0xc6;
    e[1] = (uint8_t) (e_len >> 24);
    e[2] = (uint8_t) (e_len >> 16);
    e[3] = (uint8_t) (e_len >> 8);
    e[4] = (uint8_t) e_len;
    struct {
        const char *what;
        const void *frames[5];
        size_t lens[5];
        size_t n;
        uint8_t peer_version;
    } cases[] = {
        {"a payload on a command without one", {hb, "\x80"}, {7, 1}, 2, 0},
        {"an empty payload frame", {call_env, ""}, {11, 0}, 2, 0},
        {"a frame after the payload", {result_env, "\xc0", "\xc0"}, {7, 1, 1}, 3, 0},
        {"an envelope larger than GA_PROTO_MAX_ENVELOPE before a payload", {big, "\x80"},
         {big_len, 1}, 2, 0},
        {"an envelope that is not a map", {GA_PROTO_TAG "\x13" "\x91\x01", "\x80"}, {8, 1}, 2, 0},
        {"a malformed envelope", {GA_PROTO_TAG "\x13" "\x82\xa2id", "\x80"}, {10, 1}, 2, 0},
        {"an unknown command", {GA_PROTO_TAG "\xff" "\x80"}, {7}, 1, 0},
        {"a head without its command", {GA_PROTO_TAG}, {5}, 1, 0},
        {"a head without its envelope", {GA_PROTO_TAG "\x03"}, {6}, 1, 0},
        {"a head without its envelope, the envelope in the next frame",
         {GA_PROTO_TAG "\x03", "\x80"}, {6, 1}, 2, 0},
        {"protocol version 1 (one body)", {"GAPI\x01", &call_cmd, "\x81\xa2id\x01"}, {5, 1, 5}, 3,
         1},
        {"protocol version 2 (tag and command in two frames)",
         {"GAPI\x02", &call_cmd, "\x81\xa2id\x01", "\x80"}, {5, 1, 5, 1}, 4, 2},
        {"protocol version 3 (tag and command in one frame, the envelope in the next)",
         {"GAPI\x03\x13", "\x81\xa2id\x01", "\x80"}, {6, 5, 1}, 3, 3},
        {"protocol version 4 (a batch's items as frames of their own)",
         {"GAPI\x04\x13\x81\xa2id\x01", "\x80"}, {11, 1}, 2, 4},
        {"a frame after a batch frame",
         {GA_PROTO_TAG "\x0b\x03\x00\x00\x00\x01\x80\x00\x00\x00\x00", "\x80"}, {16, 1}, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_send_frames(f->dealer, cases[i].frames, cases[i].lens, cases[i].n);
        ga_err_t rc = s_recv(f, f->router, true);
        if (rc != GA_EPROTO) {
            fail_msg("%s: accepted", cases[i].what);
        }
        assert_int_equal(f->msg.peer_version, cases[i].peer_version);
        assert_false(f->msg.has_payload);
        // The stream is not desynchronised: a good message right after is read whole.
        ga_buf_reset(&f->env);
        ga_buf_append(&f->env, "\x80", 1);
        assert_int_equal(ga_proto_send(f->dealer, NULL, 0, GA_CMD_HEARTBEAT, &f->env), GA_OK);
        assert_int_equal(s_recv(f, f->router, true), GA_OK);
        assert_int_equal(f->msg.cmd, GA_CMD_HEARTBEAT);
    }
    free(big);
    // A payload is optional where it is defined: a CALL without one is a CALL without args.
    ga_buf_reset(&f->env);
    ga_buf_append(&f->env, "\x81\xa2id\x01", 5);
    assert_int_equal(ga_proto_send_payload(f->dealer, NULL, 0, GA_CMD_CALL, &f->env, NULL),
                     GA_OK);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_false(f->msg.has_payload);
    ga_value_t v;
    assert_int_equal(ga_proto_payload_decode(&f->msg, f->arena, &v), GA_OK);
    assert_int_equal(v.type, GA_NIL);
}

// A malformed payload is not the codec's to refuse (the broker never decodes it): it arrives,
// and decoding it says so.
static void
test_malformed_payload_arrives_and_fails_to_decode(void **state)
{
    fixture_t *f = *state;
    ga_buf_append(&f->env, "\x81\xa2id\x01", 5);
    ga_buf_append(&f->pay, "\xdd\xff\xff\xff\xff", 5); // an array claiming 2^32-1 items
    assert_int_equal(ga_proto_send_payload(f->dealer, NULL, 0, GA_CMD_REQUEST, &f->env, &f->pay),
                     GA_OK);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_true(f->msg.has_payload);
    ga_value_t v;
    assert_int_equal(ga_proto_payload_decode(&f->msg, f->arena, &v), GA_EPROTO);
    assert_int_equal(ga_proto_payload_merge(&f->msg, f->arena), GA_EPROTO);
}

// A body given as one map is split (args or result to the payload) and merged back.
static void
test_split_and_merge_round_trip(void **state)
{
    fixture_t *f = *state;
    struct {
        int cmd;
        const char *json;
        const char *key;
    } cases[] = {
        {GA_CMD_CALL, "{\"id\":3,\"service\":\"s\",\"args\":{\"a\":[1,2.5,\"x\"]},\"request_id\":\"r\"}",
         "args"},
        {GA_CMD_REPLY, "{\"id\":3,\"ok\":true,\"result\":{\"v\":null}}", "result"},
        {GA_CMD_RESULT, "{\"id\":3,\"ok\":false,\"error\":\"no\",\"code\":14}", NULL},
        {GA_CMD_REGISTER, "{\"node\":\"n\",\"args\":{\"kept\":true}}", NULL},
    };
    ga_buf_t pay2;
    ga_buf_init(&pay2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ga_value_t body;
        assert_int_equal(ga_json_decode(cases[i].json, strlen(cases[i].json), f->arena, &body,
                                        NULL, 0),
                         GA_OK);
        assert_int_equal(ga_proto_send_split(f->dealer, NULL, 0, cases[i].cmd, &body, &f->env,
                                             &f->pay),
                         GA_OK);
        ga_arena_t *keep = ga_arena_new(1024);
        ga_value_t want;
        assert_int_equal(ga_json_decode(cases[i].json, strlen(cases[i].json), keep, &want, NULL,
                                        0),
                         GA_OK);
        assert_int_equal(s_recv(f, f->router, true), GA_OK);
        assert_int_equal(f->msg.has_payload, cases[i].key != NULL);
        if (cases[i].key) {
            assert_null(ga_map_get(&f->msg.value, cases[i].key)); // not in the envelope
            size_t len;
            const uint8_t *p = ga_proto_payload(&f->msg, &len);
            ga_buf_reset(&pay2);
            ga_wire_encode(&pay2, ga_map_get(&want, cases[i].key));
            assert_int_equal(len, pay2.len);
            assert_memory_equal(p, pay2.data, len);
        }
        assert_int_equal(ga_proto_payload_merge(&f->msg, f->arena), GA_OK);
        // The same pairs (the payload's key comes last once merged).
        assert_int_equal(f->msg.value.len, want.len);
        for (uint32_t k = 0; k < want.len; k++) {
            const ga_pair_t *pair = &want.u.pairs[k];
            const ga_value_t *got = ga_map_get(&f->msg.value, pair->key);
            assert_non_null(got);
            assert_true(ga_value_equal(got, &pair->value));
        }
        ga_arena_destroy(&keep);
    }
    ga_buf_fini(&pay2);
}

// docs/protocol.md, "Test vectors": the envelopes and payloads of one call end to end.
static void
test_protocol_test_vectors(void **state)
{
    fixture_t *f = *state;
    struct {
        const char *json;
        const char *hex;
    } vectors[] = {
        // CALL envelope
        {"{\"id\":7,\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":"
         "\"1.0.0\",\"request_id\":\"r1\"}",
         "85 a2 69 64 07 a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 "
         "71 75 65 73 74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e a5 31 "
         "2e 30 2e 30 aa 72 65 71 75 65 73 74 5f 69 64 a2 72 31"},
        // CALL and REQUEST payload
        {"{\"user_id\":\"1\"}", "81 a7 75 73 65 72 5f 69 64 a1 31"},
        // REQUEST envelope
        {"{\"service\":\"user_service\",\"request_type\":\"get_user\",\"version\":\"1.0.0\","
         "\"request_id\":\"r1\",\"id\":42,\"deadline\":1700000005000}",
         "86 a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 71 75 65 73 "
         "74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e a5 31 2e 30 2e 30 "
         "aa 72 65 71 75 65 73 74 5f 69 64 a2 72 31 a2 69 64 2a a8 64 65 61 64 6c 69 6e 65 cf 00 "
         "00 01 8b cf e5 7b 88"},
        // REPLY envelope
        {"{\"id\":42,\"ok\":true}", "82 a2 69 64 2a a2 6f 6b c3"},
        // REPLY and RESULT payload
        {"{\"id\":\"1\",\"name\":\"Alice\"}",
         "82 a2 69 64 a1 31 a4 6e 61 6d 65 a5 41 6c 69 63 65"},
        // RESULT envelope
        {"{\"id\":7,\"ok\":true}", "82 a2 69 64 07 a2 6f 6b c3"},
        // an error RESULT: envelope only
        {"{\"id\":7,\"ok\":false,\"error\":\"Worker lost\",\"code\":13,\"can_retry\":true}",
         "85 a2 69 64 07 a2 6f 6b c2 a5 65 72 72 6f 72 ab 57 6f 72 6b 65 72 20 6c 6f 73 74 a4 63 "
         "6f 64 65 0d a9 63 61 6e 5f 72 65 74 72 79 c3"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        ga_value_t v;
        assert_int_equal(ga_json_decode(vectors[i].json, strlen(vectors[i].json), f->arena, &v,
                                        NULL, 0),
                         GA_OK);
        ga_buf_reset(&f->env);
        ga_wire_encode(&f->env, &v);
        uint8_t want[256];
        size_t n = s_unhex(vectors[i].hex, want);
        assert_int_equal(f->env.len, n);
        assert_memory_equal(f->env.data, want, n);
    }
    // A whole CALL on a DEALER: the head frame (tag, command, envelope), then the payload.
    uint8_t head[256], pay[64];
    memcpy(head, "\x47\x41\x50\x49\x05\x13", 6);
    size_t env_len = s_unhex(vectors[0].hex, head + 6);
    size_t pay_len = s_unhex(vectors[1].hex, pay);
    const void *frames[] = {head, pay};
    size_t lens[] = {6 + env_len, pay_len};
    s_send_frames(f->dealer, frames, lens, 2);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_int_equal(f->msg.cmd, 0x13);
    assert_int_equal(ga_proto_payload_merge(&f->msg, f->arena), GA_OK);
    assert_string_equal(ga_map_get_str(ga_map_get(&f->msg.value, "args"), "user_id"), "1");
}

// docs/protocol.md, "Test vectors": the broker makes the REQUEST envelope from the CALL's and
// the RESULT envelope from the REPLY's by editing pairs, copying the others as bytes.
static void
test_envelope_edit_gives_the_test_vectors(void **state)
{
    fixture_t *f = *state;
    uint8_t call[256], want[256], reply[64];
    size_t call_len = s_unhex(
        "85 a2 69 64 07 a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 "
        "71 75 65 73 74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e a5 31 "
        "2e 30 2e 30 aa 72 65 71 75 65 73 74 5f 69 64 a2 72 31",
        call);
    size_t want_len = s_unhex(
        "86 a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 71 75 65 73 "
        "74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e a5 31 2e 30 2e 30 "
        "aa 72 65 71 75 65 73 74 5f 69 64 a2 72 31 a2 69 64 2a a8 64 65 61 64 6c 69 6e 65 cf 00 "
        "00 01 8b cf e5 7b 88",
        want);
    ga_value_t id = ga_int(42), deadline = ga_int(1700000005000);
    ga_proto_edit_t request[] = {
        {.key = "id", .value = &id, .append = true},
        {.key = "deadline", .value = &deadline, .append = true},
        {.key = "rate_limit"},
    };
    const uint8_t *out;
    size_t out_len;
    assert_int_equal(ga_proto_envelope_edit(call, call_len, request, 3, &f->env, &out, &out_len),
                     GA_OK);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    // REPLY {"id":42,"ok":true} -> RESULT {"id":7,"ok":true}: the id replaced where it stands.
    size_t reply_len = s_unhex("82 a2 69 64 2a a2 6f 6b c3", reply);
    want_len = s_unhex("82 a2 69 64 07 a2 6f 6b c3", want);
    ga_value_t gw_id = ga_int(7), no = ga_bool(false);
    ga_proto_edit_t result[] = {{.key = "id", .value = &gw_id}, {.key = "can_retry", .value = &no}};
    assert_int_equal(ga_proto_envelope_edit(reply, reply_len, result, 2, &f->env, &out, &out_len),
                     GA_OK);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    // A replaced value present in the input changes there; the rest keeps its bytes, odd
    // encodings included (a uint16 holding 13, a float32).
    reply_len = s_unhex("84 a2 69 64 2a a4 63 6f 64 65 cd 00 0d a9 63 61 6e 5f 72 65 74 72 79 c3 "
                        "a1 66 ca 3f c0 00 00",
                        reply);
    want_len = s_unhex("84 a2 69 64 07 a4 63 6f 64 65 cd 00 0d a9 63 61 6e 5f 72 65 74 72 79 c2 "
                       "a1 66 ca 3f c0 00 00",
                       want);
    assert_int_equal(ga_proto_envelope_edit(reply, reply_len, result, 2, &f->env, &out, &out_len),
                     GA_OK);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    // Every integer width, negative ones too, as msgpack-c encodes them.
    int64_t ints[] = {0, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                      INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,
                      (int64_t) INT32_MIN - 1, INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        ga_value_t v = ga_int(ints[i]);
        ga_proto_edit_t e = {.key = "n", .value = &v, .append = true};
        assert_int_equal(ga_proto_envelope_edit((const uint8_t *) "\x80", 1, &e, 1, &f->env, &out,
                                                &out_len),
                         GA_OK);
        ga_value_t m = ga_map(f->arena, 1);
        ga_map_put(&m, f->arena, "n", v);
        ga_buf_reset(&f->pay);
        ga_wire_encode(&f->pay, &m);
        assert_int_equal(out_len, f->pay.len);
        assert_memory_equal(out, f->pay.data, out_len);
    }
}

// The map's count is written anew in the shortest form: 15 pairs and one more make a map16;
// a long key a str8. Malformed input is refused, nothing half-written is returned.
static void
test_envelope_edit_counts_and_refusals(void **state)
{
    fixture_t *f = *state;
    ga_value_t m = ga_map(f->arena, 15);
    char keys[15][4];
    for (int i = 0; i < 15; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ga_map_put(&m, f->arena, keys[i], ga_int(i));
    }
    ga_buf_t in;
    ga_buf_init(&in);
    ga_wire_encode(&in, &m);
    const char *long_key = "a_key_longer_than_thirty_one_bytes";
    ga_value_t v = ga_str("x");
    ga_proto_edit_t e = {.key = long_key, .value = &v, .append = true};
    const uint8_t *out;
    size_t out_len;
    assert_int_equal(ga_proto_envelope_edit(in.data, in.len, &e, 1, &f->env, &out, &out_len),
                     GA_OK);
    ga_map_put(&m, f->arena, long_key, v);
    ga_buf_reset(&f->pay);
    ga_wire_encode(&f->pay, &m);
    assert_int_equal(out[0], 0xde);
    assert_int_equal(out_len, f->pay.len);
    assert_memory_equal(out, f->pay.data, out_len);
    ga_value_t back;
    assert_int_equal(ga_wire_decode(out, out_len, f->arena, &back), GA_OK);
    assert_int_equal(back.len, 16);
    ga_buf_fini(&in);

    const char *bad[] = {
        "",                      // nothing
        "91 01",                 // an array, not a map
        "82 a1 61 01",           // one pair short
        "81 01 02",              // a key that is not a string
        "81 a2 61 00 01",        // a key with a NUL byte
        "81 a1 61 01 c0",        // trailing bytes
        "81 a1 61 d4 01 00",     // an extension type
        "81 a5 61 62",           // a key longer than what is left
        "df ff ff ff ff",        // a count the bytes cannot hold
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t raw[16];
        size_t n = s_unhex(bad[i], raw);
        out = (const uint8_t *) "x";
        assert_int_equal(ga_proto_envelope_edit(n ? raw : NULL, n, &e, 1, &f->env, &out, &out_len),
                         GA_EPROTO);
        assert_null(out);
    }
}


// Keys as the edit meets them: a str8 key (a header other than fixstr), a key of 64 bytes or
// more, keys of an edit's length that are not its key, matched or kept byte for byte; a NUL
// anywhere in a key (short or long, first pair or last) refused.
static void
test_envelope_edit_keys(void **state)
{
    fixture_t *f = *state;
    char long_key[80];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    ga_value_t m = ga_map(f->arena, 5);
    ga_map_put(&m, f->arena, "ab", ga_int(1));                  // an edit's length, not its key
    ga_map_put(&m, f->arena, long_key, ga_int(2));              // str8, 79 bytes
    ga_map_put(&m, f->arena, long_key + 10, ga_str("x"));       // str8, 69 bytes: kept
    ga_map_put(&m, f->arena, "id", ga_int(3));                  // replaced
    ga_map_put(&m, f->arena, "request_id", ga_str("r1"));       // rate_limit's length
    ga_buf_t in;
    ga_buf_init(&in);
    ga_wire_encode(&in, &m);
    ga_value_t seven = ga_int(7), big = ga_int(1700000005000);
    const ga_proto_edit_t edits[] = {
        {.key = "id", .value = &seven},
        {.key = long_key}, // removed
        {.key = "rate_limit"},
        {.key = "deadline", .value = &big, .append = true},
    };
    const uint8_t *out;
    size_t out_len;
    assert_int_equal(ga_proto_envelope_edit(in.data, in.len, edits, 4, &f->env, &out, &out_len),
                     GA_OK);
    ga_value_t want = ga_map(f->arena, 5);
    ga_map_put(&want, f->arena, "ab", ga_int(1));
    ga_map_put(&want, f->arena, long_key + 10, ga_str("x"));
    ga_map_put(&want, f->arena, "id", ga_int(7));
    ga_map_put(&want, f->arena, "request_id", ga_str("r1"));
    ga_map_put(&want, f->arena, "deadline", big);
    ga_buf_reset(&f->pay);
    ga_wire_encode(&f->pay, &want);
    assert_int_equal(out_len, f->pay.len);
    assert_memory_equal(out, f->pay.data, out_len);

    // A NUL at each place of a key of each length, in an envelope of each size around it.
    for (size_t klen = 1; klen <= 40; klen++) {
        for (size_t at = 0; at < klen; at++) {
            for (size_t pad = 0; pad <= 20; pad += 4) {
                uint8_t raw[128];
                size_t n = 0;
                raw[n++] = 0x82;
                raw[n++] = 0xa0 | (uint8_t) pad; // a first pair of `pad` bytes of key
                memset(raw + n, 'p', pad);
                n += pad;
                raw[n++] = 0x01;
                if (klen < 32) {
                    raw[n++] = 0xa0 | (uint8_t) klen;
                } else {
                    raw[n++] = 0xd9;
                    raw[n++] = (uint8_t) klen;
                }
                memset(raw + n, 'k', klen);
                raw[n + at] = '\0';
                n += klen;
                raw[n++] = 0xc3;
                out = (const uint8_t *) "x";
                assert_int_equal(
                    ga_proto_envelope_edit(raw, n, edits, 4, &f->env, &out, &out_len), GA_EPROTO);
                assert_null(out);
                raw[n - 1 - klen + at] = 'k'; // without the NUL: fine
                assert_int_equal(
                    ga_proto_envelope_edit(raw, n, edits, 4, &f->env, &out, &out_len), GA_OK);
            }
        }
    }
    ga_buf_fini(&in);
}

// The edit of decoded bytes (what the broker uses): the same output as the validating edit for
// every envelope the decoder accepts, the same refusals for malformed ones (every length is
// still checked), except a key holding a NUL, which only the decoder looks for.
static void
test_envelope_edit_decoded(void **state)
{
    fixture_t *f = *state;
    const char *good[] = {
        "85 a2 69 64 07 a7 73 65 72 76 69 63 65 ac 75 73 65 72 5f 73 65 72 76 69 63 65 ac 72 65 "
        "71 75 65 73 74 5f 74 79 70 65 a8 67 65 74 5f 75 73 65 72 a7 76 65 72 73 69 6f 6e a5 31 "
        "2e 30 2e 30 aa 72 65 71 75 65 73 74 5f 69 64 a2 72 31",
        "82 a2 69 64 2a a2 6f 6b c3",
        "84 a2 69 64 2a a4 63 6f 64 65 cd 00 0d a9 63 61 6e 5f 72 65 74 72 79 c3 a1 66 ca 3f c0 00 "
        "00",
        "83 aa 72 61 74 65 5f 6c 69 6d 69 74 81 a1 61 92 01 a1 62 d9 02 69 64 01 a2 69 64 c0", // nested
        "80",
    };
    ga_value_t id = ga_int(42), deadline = ga_int(1700000005000), no = ga_bool(false);
    const ga_proto_edit_t edits[] = {
        {.key = "id", .value = &id, .append = true},
        {.key = "deadline", .value = &deadline, .append = true},
        {.key = "rate_limit"},
        {.key = "can_retry", .value = &no},
    };
    ga_buf_t other;
    ga_buf_init(&other);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t raw[256];
        size_t n = s_unhex(good[i], raw);
        ga_value_t v;
        assert_int_equal(ga_wire_decode(raw, n, f->arena, &v), GA_OK);
        for (size_t k = 1; k <= 4; k++) {
            const uint8_t *a, *b;
            size_t a_len, b_len;
            assert_int_equal(ga_proto_envelope_edit(raw, n, edits, k, &f->env, &a, &a_len), GA_OK);
            assert_int_equal(
                ga_proto_envelope_edit_decoded(raw, n, edits, k, &other, &b, &b_len), GA_OK);
            assert_int_equal(a_len, b_len);
            assert_memory_equal(a, b, a_len);
        }
    }
    ga_buf_fini(&other);
    const char *bad[] = {
        "",                  // nothing
        "91 01",             // an array, not a map
        "82 a1 61 01",       // one pair short
        "81 01 02",          // a key that is not a string
        "81 a1 61 01 c0",    // trailing bytes
        "81 a1 61 d4 01 00", // an extension type
        "81 a5 61 62",       // a key longer than what is left
        "81 a1 61 a5 61 62", // a value longer than what is left
        "81 a1 61 92 01",    // an array one short
        "df ff ff ff ff",    // a count the bytes cannot hold
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t raw[16];
        size_t n = s_unhex(bad[i], raw);
        const uint8_t *out = (const uint8_t *) "x";
        size_t out_len;
        assert_int_equal(
            ga_proto_envelope_edit_decoded(n ? raw : NULL, n, edits, 4, &f->env, &out, &out_len),
            GA_EPROTO);
        assert_null(out);
        assert_int_equal(ga_proto_envelope_edit(n ? raw : NULL, n, edits, 4, &f->env, &out,
                                                &out_len),
                         GA_EPROTO);
    }
    // A NUL in a key: refused by the validating edit, which does not trust the bytes.
    uint8_t nul[] = {0x81, 0xa2, 0x61, 0x00, 0x01};
    const uint8_t *out;
    size_t out_len;
    assert_int_equal(ga_proto_envelope_edit(nul, sizeof nul, edits, 4, &f->env, &out, &out_len),
                     GA_EPROTO);
    ga_value_t v;
    assert_int_not_equal(ga_wire_decode(nul, sizeof nul, f->arena, &v), GA_OK);
}

// Receives the next message on `sock` raw (what libzmq delivers): its frames' bytes appended to
// `out` (cleared first), the routing id's frame skipped on a ROUTER (`routed`). Returns the
// number of frames after the routing id.
static int
s_raw_frames(void *sock, bool routed, ga_buf_t *out)
{
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    assert_true(zmq_poll(&item, 1, 1000) == 1);
    ga_buf_reset(out);
    int n = 0;
    zmq_msg_t part;
    zmq_msg_init(&part);
    bool skip = routed; // the routing id
    do {
        assert_true(zmq_msg_recv(&part, sock, 0) >= 0);
        if (skip) {
            skip = false;
            continue;
        }
        ga_buf_append(out, zmq_msg_data(&part), zmq_msg_size(&part));
        n++;
    } while (zmq_msg_more(&part));
    zmq_msg_close(&part);
    return n;
}

// Appends one batch item (docs/protocol.md, "Batches") to `out`.
static void
s_put_item(ga_buf_t *out, int cmd, const void *env, size_t env_len, const void *payload,
           size_t payload_len)
{
    uint8_t h[5] = {(uint8_t) cmd, (uint8_t) (env_len >> 24), (uint8_t) (env_len >> 16),
                    (uint8_t) (env_len >> 8), (uint8_t) env_len};
    ga_buf_append(out, h, 5);
    ga_buf_append(out, env, env_len);
    uint8_t l[4] = {(uint8_t) (payload_len >> 24), (uint8_t) (payload_len >> 16),
                    (uint8_t) (payload_len >> 8), (uint8_t) payload_len};
    ga_buf_append(out, l, 4);
    ga_buf_append(out, payload, payload_len);
}

// Starts a batch frame in `out`: the tag and the BATCH command.
static void
s_batch_head(ga_buf_t *out)
{
    ga_buf_reset(out);
    ga_buf_append(out, GA_PROTO_TAG "\x0b", GA_PROTO_HEAD_LEN);
}

// Several items in one frame: read back one per receive, each whole (command, envelope,
// payload when it has one, routing id), then nothing; the stats say one message.
static void
test_batch_items_arrive_one_per_receive(void **state)
{
    fixture_t *f = *state;
    ga_proto_batch_t b;
    ga_proto_batch_init(&b, f->dealer, 64);
    uint8_t odd[64];
    size_t odd_len = s_unhex(s_odd_payload, odd);
    // REPLY with a payload, REPLY without (an error), REPLY with one again, a HEARTBEAT-like
    // command without payload last.
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, (const uint8_t *) "\x81\xa2id\x01",
                                        5, odd, odd_len),
                     GA_OK);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY,
                                        (const uint8_t *) "\x82\xa2id\x02\xa2ok\xc2", 9, NULL, 0),
                     GA_OK);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, (const uint8_t *) "\x81\xa2id\x03",
                                        5, (const uint8_t *) "\x07", 1),
                     GA_OK);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_HEARTBEAT, (const uint8_t *) "\x80", 1,
                                        NULL, 0),
                     GA_OK);
    assert_true(b.open);
    // Nothing arrives before the close.
    zmq_pollitem_t item = {.socket = f->router, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, 50), 0);
    ga_proto_batch_close(&b);
    assert_false(b.open);
    assert_int_equal(b.sent, 4);
    assert_int_equal(b.messages, 1);
    assert_int_equal(b.lost, 0);

    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_REPLY);
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 1);
    size_t len = 0;
    const uint8_t *p = ga_proto_payload(&f->msg, &len);
    assert_int_equal(len, odd_len);
    assert_memory_equal(p, odd, odd_len);
    assert_true(f->msg.batch_socket == f->router);
    // A batch item's payload has no frame of its own: kept, it is copied, and the copy outlives
    // the batch frame.
    ga_proto_payload_t first = ga_proto_msg_payload(&f->msg);
    assert_null(first.frame);
    assert_int_equal(first.len, odd_len);
    zmq_msg_t kept;
    zmq_msg_init(&kept);
    assert_int_equal(ga_proto_payload_keep(&first, &kept), GA_OK);
    size_t id_len = f->msg.id_len;
    uint8_t id[GA_PROTO_MAX_ID];
    memcpy(id, f->msg.id, id_len);
    assert_true(id_len > 0);

    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_REPLY);
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 2);
    assert_false(f->msg.has_payload);
    assert_int_equal(f->msg.id_len, id_len);
    assert_memory_equal(f->msg.id, id, id_len);

    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_int_equal(ga_map_get_int(&f->msg.value, "id", 0), 3);
    p = ga_proto_payload(&f->msg, &len);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 7);

    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_int_equal(f->msg.cmd, GA_CMD_HEARTBEAT);
    assert_false(f->msg.has_payload);
    assert_null(f->msg.batch_socket);
    assert_int_equal(ga_proto_recv(f->router, true, &f->msg, f->arena), GA_EAGAIN);
    ga_proto_batch_fini(&b);
    // The kept copy, after the batch frame was released.
    ga_proto_payload_t again = ga_proto_payload_of(&kept);
    assert_int_equal(again.len, odd_len);
    assert_memory_equal(again.data, odd, odd_len);
    zmq_msg_close(&kept);
}

// A ROUTER's batch is per peer: an item for another peer, the bound, and any close end the
// open message; each message is the routing id and one batch frame, the payloads in it byte
// for byte. A payload received as a frame of its own is kept by reference.
static void
test_batch_closes_per_peer_and_bound(void **state)
{
    fixture_t *f = *state;
    void *dealer3 = s_socket(f, ZMQ_DEALER);
    assert_int_equal(zmq_setsockopt(dealer3, ZMQ_ROUTING_ID, "w3", 2), 0);
    assert_int_equal(zmq_connect(dealer3, "inproc://proto-b"), 0);
    // The ROUTER learns both peers' ids from a message of each.
    ga_buf_append(&f->env, "\x80", 1);
    assert_int_equal(ga_proto_send(f->dealer2, NULL, 0, GA_CMD_HEARTBEAT, &f->env), GA_OK);
    assert_int_equal(ga_proto_send(dealer3, NULL, 0, GA_CMD_HEARTBEAT, &f->env), GA_OK);
    assert_int_equal(s_recv(f, f->router2, true), GA_OK);
    assert_int_equal(s_recv(f, f->router2, true), GA_OK);

    // A payload received on the first hop as a frame of its own, batched on the second.
    uint8_t odd[64];
    size_t odd_len = s_unhex(s_odd_payload, odd);
    ga_buf_reset(&f->env);
    ga_buf_append(&f->env, "\x81\xa2id\x01", 5);
    ga_buf_reset(&f->pay);
    ga_buf_append(&f->pay, odd, odd_len);
    assert_int_equal(ga_proto_send_payload(f->dealer, NULL, 0, GA_CMD_CALL, &f->env, &f->pay),
                     GA_OK);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    ga_proto_payload_t args = ga_proto_msg_payload(&f->msg);
    zmq_msg_t kept;
    zmq_msg_init(&kept);
    assert_int_equal(ga_proto_payload_keep(&args, &kept), GA_OK);
    ga_proto_payload_t a = ga_proto_payload_of(&kept);
    assert_true(a.frame == &kept);

    ga_proto_batch_t b;
    ga_proto_batch_init(&b, f->router2, 2);
    const uint8_t *env = (const uint8_t *) "\x81\xa2id\x05";
    for (int i = 0; i < 3; i++) { // the bound (2): the third opens a second message to w2
        assert_int_equal(ga_proto_batch_add(&b, (const uint8_t *) "w2", 2, GA_CMD_REQUEST, env,
                                            5, a.data, a.len),
                         GA_OK);
    }
    // Another peer: the message to w2 is closed first.
    assert_int_equal(ga_proto_batch_add(&b, (const uint8_t *) "w3", 2, GA_CMD_REQUEST, env, 5,
                                        NULL, 0),
                     GA_OK);
    ga_proto_batch_close(&b);
    assert_int_equal(b.sent, 4);
    assert_int_equal(b.messages, 3);
    // An unknown peer is refused when its message is opened (ROUTER_MANDATORY, as the broker
    // sets it), and nothing stays open.
    int one = 1;
    assert_int_equal(zmq_setsockopt(f->router2, ZMQ_ROUTER_MANDATORY, &one, sizeof one), 0);
    assert_int_equal(ga_proto_batch_add(&b, (const uint8_t *) "zz", 2, GA_CMD_REQUEST, env, 5,
                                        NULL, 0),
                     GA_EIO);
    assert_false(b.open);
    ga_proto_batch_fini(&b);

    // w2: a frame of two items, then one of one item; w3: one item without payload.
    ga_buf_t want, got;
    ga_buf_init(&want);
    ga_buf_init(&got);
    s_batch_head(&want);
    s_put_item(&want, GA_CMD_REQUEST, env, 5, odd, odd_len);
    s_put_item(&want, GA_CMD_REQUEST, env, 5, odd, odd_len);
    assert_int_equal(s_raw_frames(f->dealer2, false, &got), 1);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    s_batch_head(&want);
    s_put_item(&want, GA_CMD_REQUEST, env, 5, odd, odd_len);
    assert_int_equal(s_raw_frames(f->dealer2, false, &got), 1);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    s_batch_head(&want);
    s_put_item(&want, GA_CMD_REQUEST, env, 5, NULL, 0);
    assert_int_equal(s_raw_frames(dealer3, false, &got), 1);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ga_buf_fini(&want);
    ga_buf_fini(&got);
    zmq_close(dealer3);
    zmq_msg_close(&kept);
}

// A DEALER's batch never blocks and never hides a refusal: with no peer to take it (here
// ZMQ_IMMEDIATE and no connection, as a worker or gateway whose broker is gone) the first item
// is refused at once, with or without a payload, and nothing is left open.
static void
test_batch_on_a_dealer_refuses_at_once(void **state)
{
    fixture_t *f = *state;
    void *lone = s_socket(f, ZMQ_DEALER);
    int one = 1;
    assert_int_equal(zmq_setsockopt(lone, ZMQ_IMMEDIATE, &one, sizeof one), 0);
    assert_int_equal(zmq_connect(lone, "tcp://127.0.0.1:9"), 0); // nothing listens there
    ga_proto_batch_t b;
    ga_proto_batch_init(&b, lone, 64);
    const uint8_t *env = (const uint8_t *) "\x81\xa2id\x01";
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, env, 5, (const uint8_t *) "\x07",
                                        1),
                     GA_EAGAIN);
    assert_false(b.open);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, env, 5, NULL, 0), GA_EAGAIN);
    assert_false(b.open);
    ga_proto_batch_fini(&b);
    assert_int_equal(b.lost, 0);
    zmq_close(lone);

    // Connected: three items, one message: the routing id and one frame.
    ga_proto_batch_init(&b, f->dealer, 64);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, env, 5, NULL, 0), GA_OK);
    assert_true(b.open);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, env, 5, (const uint8_t *) "\x07",
                                        1),
                     GA_OK);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY, env, 5, NULL, 0), GA_OK);
    ga_proto_batch_fini(&b);
    assert_int_equal(b.sent, 3);
    assert_int_equal(b.messages, 1);
    ga_buf_t got;
    ga_buf_init(&got);
    assert_int_equal(s_raw_frames(f->router, true, &got), 1);
    ga_buf_fini(&got);
}

// A batch frame this long (GA_PROTO_BATCH_BYTES) takes no more items: the next opens another.
static void
test_batch_closes_at_its_byte_bound(void **state)
{
    fixture_t *f = *state;
    size_t n = GA_PROTO_BATCH_BYTES / 3;
    uint8_t *big = calloc(1, n);
    big[0] = 0xc6; // bin32 of the rest
    big[1] = (uint8_t) ((n - 5) >> 24);
    big[2] = (uint8_t) ((n - 5) >> 16);
    big[3] = (uint8_t) ((n - 5) >> 8);
    big[4] = (uint8_t) (n - 5);
    ga_proto_batch_t b;
    ga_proto_batch_init(&b, f->dealer, 64);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY,
                                            (const uint8_t *) "\x81\xa2id\x01", 5, big, n),
                         GA_OK);
    }
    ga_proto_batch_fini(&b);
    assert_int_equal(b.messages, 2); // 2 items, then 2 more
    for (int i = 0; i < 4; i++) {
        zmq_pollitem_t item = {.socket = f->router, .events = ZMQ_POLLIN};
        assert_true(f->msg.batch_socket != NULL || zmq_poll(&item, 1, 1000) == 1);
        assert_int_equal(ga_proto_recv(f->router, true, &f->msg, f->arena), GA_OK);
        size_t len = 0;
        const uint8_t *p = ga_proto_payload(&f->msg, &len);
        assert_int_equal(len, n);
        assert_memory_equal(p, big, n);
        assert_true((f->msg.batch_socket != NULL) == (i % 2 == 0));
    }
    free(big);
}

// A malformed item drops the rest of its batch, and the next message is read whole.
static void
test_batch_malformed_item_drops_the_rest(void **state)
{
    fixture_t *f = *state;
    const char *env = "\x81\xa2id\x01";
    struct {
        const char *what;
        int cmd;           // the second item's
        const char *env;   // its envelope
        size_t env_len;
        size_t payload_len; // its payload (bytes 0x07)
        size_t cut;         // bytes cut from the end of the frame
        size_t claim;       // a larger env-len than the bytes there, when not 0
    } cases[] = {
        {"an unknown command", 0xff, "\x80", 1, 0, 0, 0},
        {"a batch inside a batch", GA_CMD_BATCH, "\x80", 1, 0, 0, 0},
        {"an empty envelope", GA_CMD_REPLY, "", 0, 0, 0, 0},
        {"a malformed envelope", GA_CMD_REPLY, "\x82\xa2id", 4, 0, 0, 0},
        {"an envelope that is not a map", GA_CMD_REPLY, "\x91\x01", 2, 0, 0, 0},
        {"a payload on a command without one", GA_CMD_HEARTBEAT, "\x80", 1, 1, 0, 0},
        {"a payload cut short", GA_CMD_REPLY, env, 5, 4, 2, 0},
        {"a payload length cut short", GA_CMD_REPLY, env, 5, 0, 2, 0},
        {"an envelope length past the end", GA_CMD_REPLY, env, 5, 0, 0, 1000},
        {"an envelope length of 2^32-1", GA_CMD_REPLY, env, 5, 0, 0, 0xffffffffu},
    };
    ga_buf_t frame;
    ga_buf_init(&frame);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_batch_head(&frame);
        s_put_item(&frame, GA_CMD_REPLY, env, 5, "\x07", 1);
        size_t at = frame.len;
        s_put_item(&frame, cases[i].cmd, cases[i].env, cases[i].env_len, "\x07\x07\x07\x07",
                   cases[i].payload_len);
        if (cases[i].claim) {
            frame.data[at + 1] = (uint8_t) (cases[i].claim >> 24);
            frame.data[at + 2] = (uint8_t) (cases[i].claim >> 16);
            frame.data[at + 3] = (uint8_t) (cases[i].claim >> 8);
            frame.data[at + 4] = (uint8_t) cases[i].claim;
        }
        if (cases[i].cut) {
            frame.len -= cases[i].cut; // the bad item is the frame's last
        } else {
            s_put_item(&frame, GA_CMD_REPLY, env, 5, NULL, 0); // a good item after the bad one
        }
        assert_true(zmq_send(f->dealer, frame.data, frame.len, 0) >= 0);
        ga_err_t rc;
        int good = 0;
        while ((rc = s_recv(f, f->router, true)) == GA_OK) {
            good++;
            if (f->msg.batch_socket == NULL) {
                break;
            }
        }
        if (rc != GA_EPROTO) {
            fail_msg("%s: accepted whole", cases[i].what);
        }
        assert_int_equal(good, 1); // the first item, read before the bad one
        assert_null(f->msg.batch_socket);
        assert_false(f->msg.has_payload);
        ga_buf_reset(&f->env);
        ga_buf_append(&f->env, "\x80", 1);
        assert_int_equal(ga_proto_send(f->dealer, NULL, 0, GA_CMD_HEARTBEAT, &f->env), GA_OK);
        assert_int_equal(s_recv(f, f->router, true), GA_OK);
        assert_int_equal(f->msg.cmd, GA_CMD_HEARTBEAT);
        assert_null(f->msg.batch_socket);
    }
    // A batch frame with no item, or fewer bytes than an item's lengths.
    const void *frames[] = {GA_PROTO_TAG "\x0b\x05\x00\x00"};
    size_t lens[] = {9};
    s_send_frames(f->dealer, frames, lens, 1);
    assert_int_equal(s_recv(f, f->router, true), GA_EPROTO);
    // The next item asked for on another socket: the rest of the batch is dropped.
    s_batch_head(&frame);
    s_put_item(&frame, GA_CMD_REPLY, env, 5, NULL, 0);
    s_put_item(&frame, GA_CMD_REPLY, env, 5, NULL, 0);
    assert_true(zmq_send(f->dealer, frame.data, frame.len, 0) >= 0);
    assert_int_equal(s_recv(f, f->router, true), GA_OK);
    assert_true(f->msg.batch_socket == f->router);
    assert_int_equal(ga_proto_recv(f->dealer2, false, &f->msg, f->arena), GA_EPROTO);
    assert_null(f->msg.batch_socket);
    ga_buf_fini(&frame);
}

// docs/protocol.md, "Test vectors": a batch of two REPLY items, the first with the payload
// {"id":"1","name":"Alice"}, the second an error without payload, byte for byte.
static void
test_batch_test_vector(void **state)
{
    fixture_t *f = *state;
    uint8_t want[128];
    size_t want_len = s_unhex("47 41 50 49 05 0b "
                              "05 00 00 00 09 82 a2 69 64 2a a2 6f 6b c3 "
                              "00 00 00 11 82 a2 69 64 a1 31 a4 6e 61 6d 65 a5 41 6c 69 63 65 "
                              "05 00 00 00 09 82 a2 69 64 2b a2 6f 6b c2 00 00 00 00",
                              want);
    ga_proto_batch_t b;
    ga_proto_batch_init(&b, f->dealer, 64);
    uint8_t pay[32];
    size_t pay_len = s_unhex("82 a2 69 64 a1 31 a4 6e 61 6d 65 a5 41 6c 69 63 65", pay);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY,
                                        (const uint8_t *) "\x82\xa2id\x2a\xa2ok\xc3", 9, pay,
                                        pay_len),
                     GA_OK);
    assert_int_equal(ga_proto_batch_add(&b, NULL, 0, GA_CMD_REPLY,
                                        (const uint8_t *) "\x82\xa2id\x2b\xa2ok\xc2", 9, NULL, 0),
                     GA_OK);
    ga_proto_batch_fini(&b);
    ga_buf_t got;
    ga_buf_init(&got);
    assert_int_equal(s_raw_frames(f->router, true, &got), 1);
    assert_int_equal(got.len, want_len);
    assert_memory_equal(got.data, want, want_len);
    ga_buf_fini(&got);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_envelope_and_payload_travel_as_separate_frames,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_large_payload_is_forwarded_unchanged, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_frames_the_layout_does_not_define_are_refused,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_payload_arrives_and_fails_to_decode,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_split_and_merge_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_protocol_test_vectors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_items_arrive_one_per_receive, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_closes_per_peer_and_bound, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_on_a_dealer_refuses_at_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_malformed_item_drops_the_rest, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_closes_at_its_byte_bound, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_test_vector, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_edit_gives_the_test_vectors, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_edit_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_edit_decoded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_edit_counts_and_refusals, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
