// SPDX-License-Identifier: MIT
// msgpack-c's packer as the oracle of ga_wire_encode (which used to call it and now writes
// MessagePack itself): test_ga_wire and fuzz_wire compare its bytes with these.
#ifndef GA_WIRE_ORACLE_H
#define GA_WIRE_ORACLE_H

#include "ga_mem.h"
#include "ga_value.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

static int
wire_oracle_write(void *data, const char *buf, size_t len)
{
    ga_buf_append((ga_buf_t *) data, buf, len);
    return 0;
}

// Packs `v` as msgpack-c does; false when one of its calls failed.
static bool
wire_oracle_pack(msgpack_packer *pk, const ga_value_t *v)
{
    bool ok = true;
    switch (v->type) {
    case GA_NIL:
        return msgpack_pack_nil(pk) == 0;
    case GA_BOOL:
        return (v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) == 0;
    case GA_INT:
        return msgpack_pack_int64(pk, v->u.i) == 0;
    case GA_FLOAT:
        return msgpack_pack_double(pk, v->u.f) == 0;
    case GA_STR:
        return msgpack_pack_str_with_body(pk, v->u.s, v->len) == 0;
    case GA_ARRAY:
        ok = msgpack_pack_array(pk, v->len) == 0;
        for (uint32_t i = 0; ok && i < v->len; i++) {
            ok = wire_oracle_pack(pk, &v->u.items[i]);
        }
        return ok;
    case GA_MAP:
        ok = msgpack_pack_map(pk, v->len) == 0;
        for (uint32_t i = 0; ok && i < v->len; i++) {
            const ga_pair_t *p = &v->u.pairs[i];
            ok = msgpack_pack_str_with_body(pk, p->key, p->key_len) == 0 &&
                 wire_oracle_pack(pk, &p->value);
        }
        return ok;
    }
    return false;
}

// Appends msgpack-c's encoding of `v` to `out`; false when the packer failed.
static inline bool
wire_oracle_encode(const ga_value_t *v, ga_buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, wire_oracle_write);
    return wire_oracle_pack(&pk, v);
}

#endif
