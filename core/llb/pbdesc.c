/* Descriptor helpers shared by the protobuf-c walkers; see pbdesc.h. */
#include <string.h>

#include "llb/pbdesc.h"

unsigned kiln__pb_wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return KILN_PB_WIRE_FIXED64;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return KILN_PB_WIRE_FIXED32;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return KILN_PB_WIRE_LEN;
    default:
        return KILN_PB_WIRE_VARINT;
    }
}

size_t kiln__pb_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4; /* 32-bit integers, enums (C ints), float */
    }
}

bool kiln__pb_is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
        f->label != PROTOBUF_C_LABEL_REPEATED || d == NULL ||
        d->n_fields != 2 || d->fields[0].id != 1 || d->fields[1].id != 2 ||
        strcmp(d->fields[0].name, "key") != 0 ||
        strcmp(d->fields[1].name, "value") != 0) {
        return false;
    }
    n = strlen(d->name);
    return n > 5 && strcmp(d->name + n - 5, "Entry") == 0;
}
