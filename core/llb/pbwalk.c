/*
 * protobuf-c message -> Go encoding/json of the generated struct, driven by
 * the descriptors and parameterised by a style; see pbwalk.h.
 */
#include <stdlib.h>
#include <string.h>

#include "llb/pbdesc.h"
#include "llb/pbwalk.h"
#include "ops.pb-c.h"

typedef struct walk {
    kiln__gojson_t *w;
    const kiln__pbwalk_style_t *st;
    int rc;
} walk_t;

/* The (gogoproto.nullable) = false and customtype fields of BuildKit
 * v0.11's ops.proto. */
static const kiln__pbwalk_rule_t gogo_rules[] = {
    {&pb__input__descriptor, "digest", KILN_PBWALK_ALWAYS},
    {&pb__input__descriptor, "index", KILN_PBWALK_ALWAYS},
    {&pb__mount__descriptor, "input", KILN_PBWALK_ALWAYS},
    {&pb__mount__descriptor, "output", KILN_PBWALK_ALWAYS},
    {&pb__build_op__descriptor, "builder", KILN_PBWALK_ALWAYS},
    {&pb__build_input__descriptor, "input", KILN_PBWALK_ALWAYS},
    {&pb__op_metadata__descriptor, "caps", KILN_PBWALK_ALWAYS},
    {&pb__range__descriptor, "start", KILN_PBWALK_ALWAYS},
    {&pb__range__descriptor, "end", KILN_PBWALK_ALWAYS},
    {&pb__definition__descriptor, "metadata",
     KILN_PBWALK_ALWAYS | KILN_PBWALK_ZERO_VALUES},
    {&pb__file_action__descriptor, "input", KILN_PBWALK_ALWAYS},
    {&pb__file_action__descriptor, "secondaryInput", KILN_PBWALK_ALWAYS},
    {&pb__file_action__descriptor, "output", KILN_PBWALK_ALWAYS},
    {&pb__named_user_opt__descriptor, "input", KILN_PBWALK_ALWAYS},
    {&pb__merge_input__descriptor, "input", KILN_PBWALK_ALWAYS},
    {&pb__lower_diff_input__descriptor, "input", KILN_PBWALK_ALWAYS},
    {&pb__upper_diff_input__descriptor, "input", KILN_PBWALK_ALWAYS},
};

/* Go field names of the oneofs: the oneof's name in CamelCase. */
static const struct {
    const ProtobufCMessageDescriptor *desc;
    const char *name;
} oneof_names[] = {
    {&pb__op__descriptor, "Op"},
    {&pb__file_action__descriptor, "Action"},
    {&pb__user_opt__descriptor, "User"},
};

unsigned kiln__pbwalk_rule_flags(const kiln__pbwalk_rule_t *rules, size_t n,
                                 const ProtobufCMessageDescriptor *d,
                                 const ProtobufCFieldDescriptor *f)
{
    for (size_t i = 0; i < n; i++) {
        if (rules[i].desc == d && strcmp(rules[i].field, f->name) == 0) {
            return rules[i].flags;
        }
    }
    return 0;
}

unsigned kiln__pbwalk_gogo_flags(const ProtobufCMessageDescriptor *d,
                                 const ProtobufCFieldDescriptor *f)
{
    return kiln__pbwalk_rule_flags(gogo_rules, KILN_ARRAY_SIZE(gogo_rules), d,
                                   f);
}

const char *kiln__pbwalk_oneof_name(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < KILN_ARRAY_SIZE(oneof_names); i++) {
        if (oneof_names[i].desc == d) {
            return oneof_names[i].name;
        }
    }
    return NULL;
}

static void put_message(walk_t *c, const ProtobufCMessageDescriptor *d,
                        const ProtobufCMessage *m);

static bool is_float(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_FLOAT ||
           f->type == PROTOBUF_C_TYPE_DOUBLE;
}

/* Go's omitempty test for one stored value. */
static bool is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    default:
        return kiln__pb_elem_size(f->type) == 8 ? *(const uint64_t *)p == 0
                                                : *(const uint32_t *)p == 0;
    }
}

/* A message with every field at its default: Go's zero struct. */
static void put_zero_message(walk_t *c, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);

    if (m == NULL) {
        c->rc = KILN_ENOMEM;
        return;
    }
    d->message_init(m);
    put_message(c, d, m);
    free(m);
}

/* One value of field `f` stored at `p`. */
static void put_value(walk_t *c, const ProtobufCFieldDescriptor *f,
                      const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        kiln__gojson_int(c->w, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        kiln__gojson_uint(c->w, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        kiln__gojson_uint(c->w, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        kiln__gojson_bool(c->w, *(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (c->st->flags & KILN_PBWALK_NO_FLOATS) {
            c->rc = KILN_EINVAL;
        } else {
            kiln__gojson_double(c->w, f->type == PROTOBUF_C_TYPE_FLOAT
                                          ? *(const float *)p
                                          : *(const double *)p);
        }
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        kiln__gojson_cstr(c->w, s != NULL ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        kiln__gojson_base64(c->w, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        put_message(c, f->descriptor, *(ProtobufCMessage *const *)p);
        break;
    default: /* int32, sint32, sfixed32 and enums (numbers, as in Go) */
        kiln__gojson_int(c->w, *(const int32_t *)p);
        break;
    }
}

struct map_key {
    const char *key;
    size_t idx;
};

static int cmp_map_key(const void *a, const void *b)
{
    const struct map_key *x = a;
    const struct map_key *y = b;
    int r = strcmp(x->key, y->key);

    if (r != 0) {
        return r;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * A Go map: keys sorted bytewise, one entry per key (the last one, as Go's
 * decoders keep).
 */
static void put_map(walk_t *c, const ProtobufCFieldDescriptor *f, size_t n,
                    ProtobufCMessage *const *entries, unsigned flags)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &e->fields[0];
    const ProtobufCFieldDescriptor *vf = &e->fields[1];
    struct map_key *keys = malloc(n * sizeof(*keys));

    if (keys == NULL) {
        c->rc = KILN_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = *(char *const *)kiln__pb_member(entries[i], kf->offset);
        keys[i].key = k != NULL ? k : "";
        keys[i].idx = i;
    }
    qsort(keys, n, sizeof(*keys), cmp_map_key);
    kiln__gojson_begin_object(c->w);
    for (size_t i = 0; i < n && c->rc == 0; i++) {
        const void *vp;

        if (i + 1 < n && strcmp(keys[i].key, keys[i + 1].key) == 0) {
            continue; /* a later entry has the same key */
        }
        kiln__gojson_key(c->w, keys[i].key);
        vp = kiln__pb_member(entries[keys[i].idx], vf->offset);
        if ((flags & KILN_PBWALK_ZERO_VALUES) &&
            vf->type == PROTOBUF_C_TYPE_MESSAGE && is_zero(vf, vp)) {
            put_zero_message(c, vf->descriptor);
        } else {
            put_value(c, vf, vp);
        }
    }
    kiln__gojson_end_object(c->w);
    free(keys);
}

/* protoc's map<string, V>; other keys would need Go's key formatting. */
static bool is_string_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;

    return kiln__pb_is_map(f) && e->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

static void put_repeated(walk_t *c, const ProtobufCFieldDescriptor *f,
                         const ProtobufCMessage *m, unsigned flags)
{
    size_t n = *(const size_t *)kiln__pb_member(m, f->quantifier_offset);
    const char *elems = *(char *const *)kiln__pb_member(m, f->offset);
    size_t size = kiln__pb_elem_size(f->type);

    if (n == 0 && !(flags & KILN_PBWALK_ALWAYS)) {
        return; /* omitempty: nil and empty slices and maps */
    }
    kiln__gojson_key(c->w, f->name);
    if (n == 0) {
        kiln__gojson_null(c->w); /* Go's nil map or slice */
    } else if (is_string_map(f)) {
        put_map(c, f, n, (ProtobufCMessage *const *)elems, flags);
    } else {
        kiln__gojson_begin_array(c->w);
        for (size_t i = 0; i < n && c->rc == 0; i++) {
            put_value(c, f, elems + i * size);
        }
        kiln__gojson_end_array(c->w);
    }
}

static void put_field(walk_t *c, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *m)
{
    const void *p = kiln__pb_member(m, f->offset);
    unsigned flags = c->st->field_flags(d, f);
    bool always = (flags & KILN_PBWALK_ALWAYS) != 0;

    if (flags & KILN_PBWALK_OMIT) {
        return;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        put_repeated(c, f, m, flags);
        return;
    }
    if (is_float(f) && (c->st->flags & KILN_PBWALK_NO_FLOATS)) {
        c->rc = KILN_EINVAL;
        return;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
        f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING) {
        /* Explicit presence (proto3 optional): a pointer in Go. */
        if (!*(const protobuf_c_boolean *)kiln__pb_member(
                m, f->quantifier_offset)) {
            return;
        }
        always = true;
    }
    if (!always && is_zero(f, p)) {
        return;
    }
    kiln__gojson_key(c->w, f->name);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_zero(f, p)) {
        put_zero_message(c, f->descriptor); /* non-nullable message */
    } else {
        put_value(c, f, p);
    }
}

/* The oneof `f` belongs to, as a wrapper: {"member":value}, or null or {}
 * when none is set. */
static void put_oneof(walk_t *c, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *m)
{
    const char *name = c->st->oneof_name(d);
    uint32_t which =
        *(const uint32_t *)kiln__pb_member(m, f->quantifier_offset);
    const ProtobufCFieldDescriptor *set =
        which != 0 ? protobuf_c_message_descriptor_get_field(d, which) : NULL;

    if (name == NULL) {
        c->rc = KILN_EINVAL;
        return;
    }
    kiln__gojson_key(c->w, name);
    if (set != NULL && set->quantifier_offset != f->quantifier_offset) {
        set = NULL; /* a number outside this oneof */
    }
    if (set == NULL && (c->st->flags & KILN_PBWALK_UNSET_ONEOF_NULL)) {
        kiln__gojson_null(c->w);
        return;
    }
    kiln__gojson_begin_object(c->w);
    if (set != NULL && !is_zero(set, kiln__pb_member(m, set->offset))) {
        kiln__gojson_key(c->w, c->st->member_key != NULL
                                   ? c->st->member_key(set)
                                   : set->name);
        put_value(c, set, kiln__pb_member(m, set->offset));
    }
    kiln__gojson_end_object(c->w);
}

/* True if `d->fields[i]` is the first member of its oneof. */
static bool first_of_oneof(const ProtobufCMessageDescriptor *d, unsigned i)
{
    for (unsigned j = 0; j < i; j++) {
        if (kiln__pb_is_oneof(&d->fields[j]) &&
            d->fields[j].quantifier_offset == d->fields[i].quantifier_offset) {
            return false;
        }
    }
    return true;
}

static void put_message(walk_t *c, const ProtobufCMessageDescriptor *d,
                        const ProtobufCMessage *m)
{
    if (m == NULL) {
        kiln__gojson_null(c->w);
        return;
    }
    kiln__gojson_begin_object(c->w);
    for (unsigned i = 0; i < d->n_fields && c->rc == 0; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        if (!kiln__pb_is_oneof(f)) {
            put_field(c, d, f, m);
        } else if (first_of_oneof(d, i)) {
            put_oneof(c, d, f, m);
        }
    }
    kiln__gojson_end_object(c->w);
}

int kiln__pbwalk_json(kiln__gojson_t *w, const kiln__pbwalk_style_t *st,
                      const ProtobufCMessageDescriptor *d,
                      const ProtobufCMessage *m)
{
    walk_t c = {w, st, 0};

    put_message(&c, d, m);
    return c.rc;
}
