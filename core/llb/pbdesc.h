/*
 * What the protobuf-c descriptor walkers share: the encoder (pbenc.c), the
 * wire checker (pbcheck.c) and the Go JSON writer (pbwalk.c) read messages
 * through the same rules for storage sizes, wire types and maps.
 */
#ifndef KILN_LLB_PBDESC_H
#define KILN_LLB_PBDESC_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

enum kiln__pb_wire {
    KILN_PB_WIRE_VARINT = 0,
    KILN_PB_WIRE_FIXED64 = 1,
    KILN_PB_WIRE_LEN = 2,
    KILN_PB_WIRE_FIXED32 = 5,
};

/* The wire type (KILN_PB_WIRE_*) a non-packed value of type `t` is
 * encoded with. */
unsigned kiln__pb_wire_type(ProtobufCType t);

/* Bytes of one value of type `t` as protobuf-c stores it, in a struct
 * member or a repeated field's array. */
size_t kiln__pb_elem_size(ProtobufCType t);

/*
 * True if `f` is a map field: protoc turns map<K, V> into a repeated field
 * of a nested message "<Name>Entry" {K key = 1; V value = 2;}.
 */
bool kiln__pb_is_map(const ProtobufCFieldDescriptor *f);

/* The member of `m` at byte `offset` (a field's offset or
 * quantifier_offset). */
static inline const void *kiln__pb_member(const ProtobufCMessage *m,
                                          unsigned offset)
{
    return (const char *)m + offset;
}

static inline bool kiln__pb_is_oneof(const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

#endif
