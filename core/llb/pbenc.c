/*
 * Deterministic protobuf encoder driven by protobuf-c descriptors.
 *
 * protobuf-c's own packer writes oneof members in field-number position and
 * drops map entries' zero keys and values, so neither of BuildKit's byte
 * layouts can be produced with it. This walker follows Go's rules instead.
 */
#include <stdlib.h>
#include <string.h>

#include "llb/pbdesc.h"
#include "llb/pbenc.h"

void kiln__pb_put_varint(kiln__buf_t *out, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;

    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            tmp[n] |= 0x80;
        }
        n++;
    } while (v != 0);
    kiln__buf_append(out, tmp, n);
}

void kiln__pb_put_tag(kiln__buf_t *out, uint32_t field, unsigned wire_type)
{
    kiln__pb_put_varint(out, ((uint64_t)field << 3) | wire_type);
}

void kiln__pb_put_bytes(kiln__buf_t *out, uint32_t field, const void *data,
                        size_t len)
{
    kiln__pb_put_tag(out, field, KILN_PB_WIRE_LEN);
    kiln__pb_put_varint(out, len);
    kiln__buf_append(out, data, len);
}

/* Writes a scalar's payload (no tag). Negative int32/enum values are sign
 * extended to ten bytes, as Go does. */
static void put_scalar(kiln__buf_t *out, ProtobufCType t, const void *p)
{
    uint32_t u32;
    uint64_t u64;

    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v;
        memcpy(&v, p, 4);
        kiln__pb_put_varint(out, (uint64_t)(int64_t)v);
        break;
    }
    case PROTOBUF_C_TYPE_SINT32: {
        int32_t v;
        memcpy(&v, p, 4);
        kiln__pb_put_varint(out, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
        break;
    }
    case PROTOBUF_C_TYPE_UINT32:
        memcpy(&u32, p, 4);
        kiln__pb_put_varint(out, u32);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        memcpy(&u64, p, 8);
        kiln__pb_put_varint(out, u64);
        break;
    case PROTOBUF_C_TYPE_SINT64: {
        int64_t v;
        memcpy(&v, p, 8);
        kiln__pb_put_varint(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
        break;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v;
        memcpy(&v, p, sizeof(v));
        kiln__buf_putc(out, v ? 1 : 0);
        break;
    }
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT: {
        uint8_t le[4];
        memcpy(&u32, p, 4);
        for (int i = 0; i < 4; i++) {
            le[i] = (uint8_t)(u32 >> (8 * i));
        }
        kiln__buf_append(out, le, 4);
        break;
    }
    default: { /* 64-bit fixed types */
        uint8_t le[8];
        memcpy(&u64, p, 8);
        for (int i = 0; i < 8; i++) {
            le[i] = (uint8_t)(u64 >> (8 * i));
        }
        kiln__buf_append(out, le, 8);
        break;
    }
    }
}

static bool scalar_is_zero(ProtobufCType t, const void *p)
{
    static const uint8_t zero[8];

    return memcmp(p, zero, kiln__pb_elem_size(t)) == 0;
}

static int encode_message(const ProtobufCMessage *m, enum kiln__pb_order order,
                          kiln__buf_t *out);

/* Writes a length-delimited sub-message; NULL encodes as empty. */
static int put_message(kiln__buf_t *out, uint32_t field,
                       const ProtobufCMessage *m, enum kiln__pb_order order)
{
    kiln__buf_t tmp = KILN_BUF_INIT;
    int rc = 0;

    if (m != NULL) {
        rc = encode_message(m, order, &tmp);
    }
    if (rc == 0) {
        kiln__pb_put_bytes(out, field, tmp.data, tmp.len);
    }
    kiln__buf_free(&tmp);
    return rc;
}

/* Writes one field value (with its tag) regardless of presence rules. */
static int put_value(kiln__buf_t *out, const ProtobufCFieldDescriptor *f,
                     const void *p, enum kiln__pb_order order)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        kiln__pb_put_bytes(out, f->id, s ? s : "", s ? strlen(s) : 0);
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        kiln__pb_put_bytes(out, f->id, bd->data, bd->len);
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return put_message(out, f->id, *(ProtobufCMessage *const *)p, order);
    default:
        kiln__pb_put_tag(out, f->id, kiln__pb_wire_type(f->type));
        put_scalar(out, f->type, p);
        return 0;
    }
}

/* A map entry: key and value always written, whatever their values. */
static int put_map_entry(kiln__buf_t *out, uint32_t field,
                         const ProtobufCMessage *e, enum kiln__pb_order order)
{
    const ProtobufCMessageDescriptor *d = e->descriptor;
    kiln__buf_t tmp = KILN_BUF_INIT;
    int rc = 0;

    for (unsigned i = 0; i < 2 && rc == 0; i++) {
        rc = put_value(&tmp, &d->fields[i],
                       kiln__pb_member(e, d->fields[i].offset), order);
    }
    if (rc == 0) {
        kiln__pb_put_bytes(out, field, tmp.data, tmp.len);
    }
    kiln__buf_free(&tmp);
    return rc;
}

static const char *entry_key(const ProtobufCMessage *e)
{
    const ProtobufCFieldDescriptor *kf = &e->descriptor->fields[0];
    const char *k;

    if (kf->type != PROTOBUF_C_TYPE_STRING) {
        return "";
    }
    k = *(char *const *)kiln__pb_member(e, kf->offset);
    return k ? k : "";
}

static int cmp_entries(const void *a, const void *b)
{
    const ProtobufCMessage *ea = *(const ProtobufCMessage *const *)a;
    const ProtobufCMessage *eb = *(const ProtobufCMessage *const *)b;

    /* strcmp orders by unsigned bytes, as Go's sort of string keys. */
    return strcmp(entry_key(ea), entry_key(eb));
}

static int put_map(kiln__buf_t *out, const ProtobufCFieldDescriptor *f,
                   ProtobufCMessage *const *entries, size_t n,
                   enum kiln__pb_order order)
{
    const ProtobufCMessage **sorted;
    int rc = 0;

    if (n == 0) {
        return 0;
    }
    sorted = malloc(n * sizeof(*sorted));
    if (sorted == NULL) {
        return KILN_ENOMEM;
    }
    memcpy(sorted, entries, n * sizeof(*sorted));
    /* Keys of one map are unique in anything a Go client writes; for
     * duplicates from foreign input the order among equals is unspecified,
     * which only affects re-encoding of such malformed maps. */
    qsort(sorted, n, sizeof(*sorted), cmp_entries);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = put_map_entry(out, f->id, sorted[i], order);
    }
    free(sorted);
    return rc;
}

static int put_repeated(kiln__buf_t *out, const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f,
                        enum kiln__pb_order order)
{
    size_t n = *(const size_t *)kiln__pb_member(m, f->quantifier_offset);
    const void *arr = *(void *const *)kiln__pb_member(m, f->offset);
    int rc = 0;

    if (n == 0) {
        return 0;
    }
    if (kiln__pb_is_map(f)) {
        return put_map(out, f, arr, n, order);
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: {
        size_t step = kiln__pb_elem_size(f->type);
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = put_value(out, f, (const char *)arr + i * step, order);
        }
        return rc;
    }
    default: {
        /* proto3 packs repeated scalars. */
        kiln__buf_t tmp = KILN_BUF_INIT;
        size_t step = kiln__pb_elem_size(f->type);
        for (size_t i = 0; i < n; i++) {
            put_scalar(&tmp, f->type, (const char *)arr + i * step);
        }
        kiln__pb_put_bytes(out, f->id, tmp.data, tmp.len);
        kiln__buf_free(&tmp);
        return 0;
    }
    }
}

/* gogo marshalled non-nullable message fields even when unset. */
static bool legacy_always_present(const ProtobufCMessage *m,
                                  const ProtobufCFieldDescriptor *f)
{
    return strcmp(m->descriptor->name, "pb.Range") == 0 &&
           f->type == PROTOBUF_C_TYPE_MESSAGE;
}

static int put_field(kiln__buf_t *out, const ProtobufCMessage *m,
                     const ProtobufCFieldDescriptor *f,
                     enum kiln__pb_order order)
{
    const void *p = kiln__pb_member(m, f->offset);

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        return put_repeated(out, m, f, order);
    }
    if (kiln__pb_is_oneof(f)) {
        uint32_t which =
            *(const uint32_t *)kiln__pb_member(m, f->quantifier_offset);
        /* The set member of a oneof is written even when zero. */
        return which == f->id ? put_value(out, f, p, order) : 0;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
        f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE) {
        protobuf_c_boolean has;
        memcpy(&has, kiln__pb_member(m, f->quantifier_offset), sizeof(has));
        return has ? put_value(out, f, p, order) : 0;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s != NULL && *s != 0 ? put_value(out, f, p, order) : 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len > 0
                   ? put_value(out, f, p, order)
                   : 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (*(void *const *)p != NULL ||
            (order == KILN_PB_ORDER_LEGACY && legacy_always_present(m, f))) {
            return put_value(out, f, p, order);
        }
        return 0;
    default:
        return scalar_is_zero(f->type, p) ? 0 : put_value(out, f, p, order);
    }
}

static void put_unknown(kiln__buf_t *out, const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        kiln__pb_put_tag(out, u->tag, u->wire_type);
        kiln__buf_append(out, u->data, u->len);
    }
}

static int encode_message(const ProtobufCMessage *m, enum kiln__pb_order order,
                          kiln__buf_t *out)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int rc = 0;

    /* protobuf-c lists fields by ascending number. */
    if (order == KILN_PB_ORDER_LEGACY) {
        for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
            rc = put_field(out, m, &d->fields[i], order);
        }
    } else {
        for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
            if (!kiln__pb_is_oneof(&d->fields[i])) {
                rc = put_field(out, m, &d->fields[i], order);
            }
        }
        for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
            if (kiln__pb_is_oneof(&d->fields[i])) {
                rc = put_field(out, m, &d->fields[i], order);
            }
        }
    }
    if (rc == 0) {
        put_unknown(out, m);
    }
    return rc;
}

int kiln__pb_encode(const ProtobufCMessage *msg, enum kiln__pb_order order,
                    kiln__buf_t *out)
{
    int rc = encode_message(msg, order, out);

    if (rc == 0 && !kiln__buf_ok(out)) {
        rc = KILN_ENOMEM;
    }
    return rc;
}
