/*
 * A structural check of protobuf input before protobuf-c unpacks it: gives
 * errors that say which field and which byte is wrong, refuses nesting
 * deep enough to exhaust the stack, and refuses strings that are not UTF-8
 * (Go's protobuf runtime, and so BuildKit's daemon, refuses them too).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbdesc.h"

/* Reads a varint at p[*i..len). Returns false if truncated or longer than
 * ten bytes. */
static bool read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    uint64_t r = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b;

        if (*i >= len) {
            return false;
        }
        b = p[(*i)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            return true;
        }
    }
    return false;
}

static int bad(kiln_error_t *err, const ProtobufCMessageDescriptor *desc,
               size_t at, const char *what)
{
    return kiln__fail(err, KILN_EBADMSG, "malformed %s at byte %zu: %s",
                      desc->name, at, what);
}

static int check_packed(const uint8_t *p, size_t len, size_t base,
                        const ProtobufCMessageDescriptor *desc,
                        const ProtobufCFieldDescriptor *f, kiln_error_t *err)
{
    unsigned w = kiln__pb_wire_type(f->type);
    size_t i = 0;
    uint64_t v;

    if (w == KILN_PB_WIRE_VARINT) {
        while (i < len) {
            if (!read_varint(p, len, &i, &v)) {
                return bad(err, desc, base + i, "bad varint in packed field");
            }
        }
        return 0;
    }
    if (len % (w == KILN_PB_WIRE_FIXED64 ? 8 : 4) != 0) {
        return bad(err, desc, base, "packed field has a partial element");
    }
    return 0;
}

static int check_len_field(const uint8_t *p, size_t len, size_t base,
                           const ProtobufCMessageDescriptor *desc,
                           const ProtobufCFieldDescriptor *f, unsigned depth,
                           kiln_error_t *err);

static int check_msg(const uint8_t *p, size_t len, size_t base,
                     const ProtobufCMessageDescriptor *desc, unsigned depth,
                     kiln_error_t *err)
{
    size_t i = 0;

    if (depth > KILN_PB_MAX_DEPTH) {
        return kiln__fail(err, KILN_E2BIG,
                          "messages nested more than %u levels deep at byte "
                          "%zu",
                          KILN_PB_MAX_DEPTH, base);
    }
    while (i < len) {
        size_t start = i;
        const ProtobufCFieldDescriptor *f;
        uint64_t key, v;
        unsigned wt;
        uint64_t num;

        if (!read_varint(p, len, &i, &key)) {
            return bad(err, desc, base + start, "truncated field tag");
        }
        num = key >> 3;
        wt = (unsigned)(key & 7);
        if (num == 0 || num > 0x1fffffff) {
            return bad(err, desc, base + start, "invalid field number");
        }
        f = protobuf_c_message_descriptor_get_field(desc, (unsigned)num);
        if (f != NULL && wt != kiln__pb_wire_type(f->type) &&
            !(wt == KILN_PB_WIRE_LEN && f->label == PROTOBUF_C_LABEL_REPEATED &&
              kiln__pb_wire_type(f->type) != KILN_PB_WIRE_LEN)) {
            char what[160];
            snprintf(what, sizeof(what),
                     "field %s (%u) has wire type %u, expected %u", f->name,
                     f->id, wt, kiln__pb_wire_type(f->type));
            return bad(err, desc, base + start, what);
        }
        switch (wt) {
        case KILN_PB_WIRE_VARINT:
            if (!read_varint(p, len, &i, &v)) {
                return bad(err, desc, base + start, "truncated varint");
            }
            break;
        case KILN_PB_WIRE_FIXED64:
        case KILN_PB_WIRE_FIXED32: {
            size_t n = wt == KILN_PB_WIRE_FIXED64 ? 8 : 4;
            if (len - i < n) {
                return bad(err, desc, base + start, "truncated fixed field");
            }
            i += n;
            break;
        }
        case KILN_PB_WIRE_LEN: {
            int rc;
            if (!read_varint(p, len, &i, &v)) {
                return bad(err, desc, base + start, "truncated length");
            }
            if (v > len - i) {
                char what[160];
                snprintf(what, sizeof(what),
                         "field %" PRIu64 " claims %" PRIu64
                         " bytes but only %zu remain",
                         num, v, len - i);
                return bad(err, desc, base + start, what);
            }
            if (f != NULL) {
                rc = check_len_field(p + i, (size_t)v, base + i, desc, f, depth,
                                     err);
                if (rc < 0) {
                    return rc;
                }
            }
            i += (size_t)v;
            break;
        }
        default:
            return bad(err, desc, base + start,
                       wt == 3 || wt == 4 ? "groups are not supported"
                                          : "invalid wire type");
        }
    }
    return 0;
}

static int check_len_field(const uint8_t *p, size_t len, size_t base,
                           const ProtobufCMessageDescriptor *desc,
                           const ProtobufCFieldDescriptor *f, unsigned depth,
                           kiln_error_t *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return check_msg(p, len, base, f->descriptor, depth + 1, err);
    case PROTOBUF_C_TYPE_STRING:
        /* protobuf-c hands strings out NUL-terminated: an embedded NUL
         * would silently cut them short. */
        if (memchr(p, 0, len) != NULL) {
            return kiln__fail(err, KILN_EBADMSG,
                              "malformed %s at byte %zu: field %s contains "
                              "a NUL byte",
                              desc->name, base, f->name);
        }
        if (!kiln__utf8_valid(p, len)) {
            return kiln__fail(err, KILN_EBADMSG,
                              "malformed %s at byte %zu: field %s is not "
                              "valid UTF-8",
                              desc->name, base, f->name);
        }
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        return 0;
    default:
        return check_packed(p, len, base, desc, f, err);
    }
}

int kiln__pb_check(const uint8_t *data, size_t len,
                   const ProtobufCMessageDescriptor *desc, kiln_error_t *err)
{
    return check_msg(data, len, 0, desc, 0, err);
}
