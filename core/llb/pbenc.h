/*
 * Deterministic protobuf encoding of protobuf-c messages, byte-identical to
 * what BuildKit's Go clients marshal (reference: llb-wire.md §2).
 */
#ifndef KILN_LLB_PBENC_H
#define KILN_LLB_PBENC_H

#include <protobuf-c/protobuf-c.h>

#include "internal.h"

enum kiln__pb_order {
    /*
     * protobuf-go with Deterministic: true (BuildKit clients >= v0.17):
     * non-oneof fields by number, then the set oneof member.
     */
    KILN_PB_ORDER_CURRENT = 0,
    /* gogo/protobuf (BuildKit clients <= v0.16): every field by number, and
     * Range.start/end always written. */
    KILN_PB_ORDER_LEGACY = 1,
};

/*
 * Appends the encoding of `msg` to `out`. Proto3 scalars equal to zero are
 * omitted, present sub-messages are written even when empty, maps are
 * written sorted by key with key and value always present, repeated scalars
 * are packed, unknown fields (kept by protobuf-c when decoding) go last.
 * Returns 0 or KILN_ENOMEM.
 */
int kiln__pb_encode(const ProtobufCMessage *msg, enum kiln__pb_order order,
                    kiln__buf_t *out);

/* Low-level writers, shared with code that assembles messages by hand. */
void kiln__pb_put_varint(kiln__buf_t *out, uint64_t v);
void kiln__pb_put_tag(kiln__buf_t *out, uint32_t field, unsigned wire_type);
void kiln__pb_put_bytes(kiln__buf_t *out, uint32_t field, const void *data,
                        size_t len);

#endif
