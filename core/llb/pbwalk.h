/*
 * protobuf-c messages written as Go's encoding/json writes the structs that
 * BuildKit generates from the same .proto, driven by the descriptors: keys
 * in .proto order under the .proto field names, zero values left out
 * (omitempty), enums as numbers, bytes as base64, maps sorted by key (a key
 * repeated on the wire keeps its last value, as Go's decoders do), a oneof
 * as a wrapper object {"member":value} under the oneof's Go name.
 *
 * Struct generations differ in details (which fields are not omitempty,
 * fields a release does not know, how a oneof is shaped); a style says
 * which. Users: `kiln debug dump-llb` (llb/dump.c, gogo v0.11 structs) and
 * cache maps (solver/pbjson.c, gogo and protobuf-go structs).
 */
#ifndef KILN_LLB_PBWALK_H
#define KILN_LLB_PBWALK_H

#include <protobuf-c/protobuf-c.h>

#include "util/gojson.h"

/* What a style says about one field. */
enum kiln__pbwalk_field_flags {
    /* No omitempty: written even when zero or empty (a nil map or slice as
     * null, a NULL message as the zero message). */
    KILN_PBWALK_ALWAYS = 1u << 0,
    /* A map whose NULL message values are zero messages rather than null
     * (Go holds the values by value). */
    KILN_PBWALK_ZERO_VALUES = 1u << 1,
    /* Not in the Go struct at all: never written. */
    KILN_PBWALK_OMIT = 1u << 2,
};

/* Style-wide choices. */
enum kiln__pbwalk_style_flags {
    /* An unset oneof is null (gogo reflects the nil interface), not {}. */
    KILN_PBWALK_UNSET_ONEOF_NULL = 1u << 0,
    /* float and double fields are refused (KILN_EINVAL) instead of written
     * with kiln__gojson_double(). */
    KILN_PBWALK_NO_FLOATS = 1u << 1,
};

typedef struct kiln__pbwalk_style {
    /* KILN_PBWALK_ALWAYS, _ZERO_VALUES and _OMIT for field `f` of `d`. */
    unsigned (*field_flags)(const ProtobufCMessageDescriptor *d,
                            const ProtobufCFieldDescriptor *f);
    /* The key of `d`'s oneof wrapper (the oneof's Go field name), or NULL
     * if this style cannot write it: the walk then fails with KILN_EINVAL. */
    const char *(*oneof_name)(const ProtobufCMessageDescriptor *d);
    /* The key of a set oneof member in its wrapper; NULL: the field name. */
    const char *(*member_key)(const ProtobufCFieldDescriptor *f);
    unsigned flags; /* enum kiln__pbwalk_style_flags */
} kiln__pbwalk_style_t;

/*
 * Writes `m` (of type `d`; NULL writes null) as one JSON value through `w`.
 * Returns 0, KILN_ENOMEM (a zero message or map index could not be
 * allocated) or KILN_EINVAL (something the style refuses); the writer's own
 * state (kiln__gojson_ok()) is the caller's to check. Borrows everything.
 */
int kiln__pbwalk_json(kiln__gojson_t *w, const kiln__pbwalk_style_t *st,
                      const ProtobufCMessageDescriptor *d,
                      const ProtobufCMessage *m);

/* One field's flags in a table of rules. */
typedef struct kiln__pbwalk_rule {
    const ProtobufCMessageDescriptor *desc;
    const char *field; /* the .proto name */
    unsigned flags;    /* enum kiln__pbwalk_field_flags */
} kiln__pbwalk_rule_t;

/* The flags of field `f` of `d` in rules[0..n), 0 if it is not listed. */
unsigned kiln__pbwalk_rule_flags(const kiln__pbwalk_rule_t *rules, size_t n,
                                 const ProtobufCMessageDescriptor *d,
                                 const ProtobufCFieldDescriptor *f);

/*
 * The field flags of the structs gogo-protobuf generates from BuildKit
 * v0.11's ops.proto: KILN_PBWALK_ALWAYS for the (gogoproto.nullable) =
 * false and customtype fields, plus KILN_PBWALK_ZERO_VALUES for
 * Definition.metadata (a map of non-nullable messages).
 */
unsigned kiln__pbwalk_gogo_flags(const ProtobufCMessageDescriptor *d,
                                 const ProtobufCFieldDescriptor *f);

/* The Go name of the oneof of ops.proto's message `d` ("Op", "Action",
 * "User"), or NULL if `d` has none. */
const char *kiln__pbwalk_oneof_name(const ProtobufCMessageDescriptor *d);

#endif
