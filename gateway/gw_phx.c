// SPDX-License-Identifier: MIT
// Phoenix V2 frames over ga_json. Everything the client sends is checked for shape here, so the
// rest of the gateway sees only well-formed frames.
#include "gw_phx.h"

#include "ga_json.h"

#include <stdio.h>
#include <string.h>

// A ref is a string or null, as docs/protocol.md says; anything else (numbers included) is a
// malformed frame.
static ga_err_t
s_ref(const ga_value_t *v, const char **out)
{
    if (v->type == GA_NIL) {
        *out = NULL;
        return GA_OK;
    }
    if (v->type == GA_STR) {
        *out = v->u.s;
        return GA_OK;
    }
    return GA_EPROTO;
}

ga_err_t
gw_phx_decode(const char *text, size_t len, ga_arena_t *arena, gw_phx_frame_t *out, char *err,
              size_t errlen)
{
    ga_value_t v;
    char why[160];
    memset(out, 0, sizeof *out);
    if (ga_json_decode(text, len, arena, &v, why, sizeof why) != GA_OK) {
        snprintf(err, errlen, "malformed frame: invalid JSON (%s)", why);
        return GA_EPROTO;
    }
    if (v.type != GA_ARRAY || v.len != 5) {
        snprintf(err, errlen,
                 "malformed frame: expected [join_ref, ref, topic, event, payload]");
        return GA_EPROTO;
    }
    const ga_value_t *it = v.u.items;
    if (s_ref(&it[0], &out->join_ref) != GA_OK || s_ref(&it[1], &out->ref) != GA_OK) {
        snprintf(err, errlen, "malformed frame: join_ref and ref must be strings or null");
        return GA_EPROTO;
    }
    if (it[2].type != GA_STR || it[2].len == 0 || it[3].type != GA_STR || it[3].len == 0) {
        snprintf(err, errlen, "malformed frame: topic and event must be non-empty strings");
        return GA_EPROTO;
    }
    out->topic = it[2].u.s;
    out->event = it[3].u.s;
    out->payload = &it[4];
    return GA_OK;
}

static void
s_ref_out(ga_buf_t *out, const char *ref)
{
    if (ref) {
        ga_json_encode_str(out, ref, strlen(ref));
    } else {
        ga_buf_append(out, "null", 4);
    }
}

void
gw_phx_encode(ga_buf_t *out, const char *join_ref, const char *ref, const char *topic,
              const char *event, const char *payload_json, size_t payload_len)
{
    ga_buf_append_char(out, '[');
    s_ref_out(out, join_ref);
    ga_buf_append_char(out, ',');
    s_ref_out(out, ref);
    ga_buf_append_char(out, ',');
    ga_json_encode_str(out, topic, strlen(topic));
    ga_buf_append_char(out, ',');
    ga_json_encode_str(out, event, strlen(event));
    ga_buf_append_char(out, ',');
    ga_buf_append(out, payload_json, payload_len);
    ga_buf_append_char(out, ']');
}

void
gw_phx_encode_reply(ga_buf_t *out, const char *join_ref, const char *ref, const char *topic,
                    const char *status, const char *response_json, size_t response_len)
{
    ga_buf_append_char(out, '[');
    s_ref_out(out, join_ref);
    ga_buf_append_char(out, ',');
    s_ref_out(out, ref);
    ga_buf_append_char(out, ',');
    ga_json_encode_str(out, topic, strlen(topic));
    ga_buf_append_str(out, ",\"phx_reply\",{\"status\":");
    ga_json_encode_str(out, status, strlen(status));
    ga_buf_append_str(out, ",\"response\":");
    ga_buf_append(out, response_json, response_len);
    ga_buf_append_str(out, "}]");
}
