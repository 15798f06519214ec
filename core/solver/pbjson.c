/*
 * Generic protobuf-c message -> Go encoding/json, driven by the message
 * descriptors. See pbjson.h for the two struct generations it imitates.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.pb-c.h"
#include "solver/pbjson.h"

typedef struct pbjson {
    kiln__gojson_t *w;
    bool legacy;
    int rc;
} pbjson_t;

static void write_message(pbjson_t *c, const ProtobufCMessageDescriptor *d,
                          const ProtobufCMessage *msg);

/* Fields that gogo-era structs declare without omitempty. */
static bool legacy_always(const ProtobufCMessageDescriptor *d,
                          const char *field)
{
    static const struct {
        const ProtobufCMessageDescriptor *desc;
        const char *field;
    } always[] = {
        {&pb__mount__descriptor, "input"},
        {&pb__mount__descriptor, "output"},
        {&pb__merge_input__descriptor, "input"},
        {&pb__lower_diff_input__descriptor, "input"},
        {&pb__upper_diff_input__descriptor, "input"},
        {&pb__named_user_opt__descriptor, "input"},
        {&pb__build_op__descriptor, "builder"},
        {&pb__build_input__descriptor, "input"},
        {&pb__input__descriptor, "digest"},
        {&pb__input__descriptor, "index"},
        {&pb__definition__descriptor, "metadata"},
        {&pb__op_metadata__descriptor, "caps"},
        {&pb__range__descriptor, "start"},
        {&pb__range__descriptor, "end"},
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(always); i++) {
        if (always[i].desc == d && strcmp(always[i].field, field) == 0) {
            return true;
        }
    }
    return false;
}

/* Fields added after v0.11: a v0.11 daemon drops them while decoding, so
 * they never reach its JSON. */
static bool legacy_unknown(const ProtobufCMessageDescriptor *d,
                           const char *field)
{
    static const struct {
        const ProtobufCMessageDescriptor *desc;
        const char *field;
    } added[] = {
        {&pb__mount__descriptor, "contentCache"}, /* v0.13 */
        {&pb__file_action_copy__descriptor,       /* v0.14 */
         "alwaysReplaceExistingDestPaths"},
        {&pb__file_action_copy__descriptor, "modeStr"},        /* v0.17 */
        {&pb__meta__descriptor, "validExitCodes"},             /* v0.17 */
        {&pb__exec_op__descriptor, "cdiDevices"},              /* v0.20 */
        {&pb__file_action_copy__descriptor, "required_paths"}, /* v0.26 */
        {&pb__op_metadata__descriptor, "linux_resources"},     /* v0.31 */
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(added); i++) {
        if (added[i].desc == d && strcmp(added[i].field, field) == 0) {
            return true;
        }
    }
    return false;
}

/* protobuf-c represents map<K,V> as repeated XxxEntry{key=1, value=2}. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->name);

    return d->n_fields == 2 && n > 5 && strcmp(d->name + n - 5, "Entry") == 0 &&
           d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
           d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

static size_t elem_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

static bool scalar_is_zero(ProtobufCType type, const void *p)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return *(const int32_t *)p == 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return *(const int64_t *)p == 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)p == 0;
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *)p == NULL || **(char *const *)p == 0;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    default:
        return false;
    }
}

/* A message-typed value that Go holds by value (or must write although
 * nil) and protobuf-c left NULL: write the zero message. */
static void write_zero_message(pbjson_t *c, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *zero = calloc(1, d->sizeof_message);

    if (zero == NULL) {
        c->rc = KILN_ENOMEM;
        return;
    }
    d->message_init(zero);
    write_message(c, d, zero);
    free(zero);
}

static void write_value(pbjson_t *c, const ProtobufCFieldDescriptor *f,
                        const void *p)
{
    kiln__gojson_t *w = c->w;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        kiln__gojson_int(w, *(const int32_t *)p);
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        kiln__gojson_uint(w, *(const uint32_t *)p);
        return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        kiln__gojson_int(w, *(const int64_t *)p);
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        kiln__gojson_uint(w, *(const uint64_t *)p);
        return;
    case PROTOBUF_C_TYPE_BOOL:
        kiln__gojson_bool(w, *(const protobuf_c_boolean *)p);
        return;
    case PROTOBUF_C_TYPE_ENUM:
        kiln__gojson_int(w, *(const int *)p);
        return;
    case PROTOBUF_C_TYPE_STRING:
        kiln__gojson_cstr(w, *(char *const *)p ? *(char *const *)p : "");
        return;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        kiln__gojson_base64(w, b->data, b->len);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        if (m == NULL) {
            write_zero_message(c, f->descriptor);
        } else {
            write_message(c, f->descriptor, m);
        }
        return;
    }
    default:
        c->rc = KILN_EINVAL; /* float/double: not in ops.proto */
        return;
    }
}

/* A map entry and its position on the wire. */
typedef struct map_item {
    const char *key;
    const ProtobufCMessage *entry;
    size_t pos;
} map_item_t;

static int compare_items(const void *a, const void *b)
{
    const map_item_t *x = a, *y = b;
    int r = strcmp(x->key, y->key);

    if (r != 0) {
        return r;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * A Go map: keys sorted bytewise; a key repeated on the wire keeps its last
 * value, as Go's unmarshalers do.
 */
static void write_map(pbjson_t *c, ProtobufCMessage *const *entries, size_t n)
{
    map_item_t *items = malloc(n * sizeof(*items));

    if (items == NULL) {
        c->rc = KILN_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *d = entries[i]->descriptor;
        items[i].key =
            *(char *const *)((const char *)entries[i] + d->fields[0].offset);
        items[i].entry = entries[i];
        items[i].pos = i;
    }
    qsort(items, n, sizeof(*items), compare_items);
    kiln__gojson_begin_object(c->w);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *d = items[i].entry->descriptor;

        if (i + 1 < n && strcmp(items[i].key, items[i + 1].key) == 0) {
            continue; /* a later entry has the same key */
        }
        kiln__gojson_key(c->w, items[i].key);
        write_value(c, &d->fields[1],
                    (const char *)items[i].entry + d->fields[1].offset);
    }
    kiln__gojson_end_object(c->w);
    free(items);
}

static void write_repeated(pbjson_t *c, const ProtobufCFieldDescriptor *f,
                           const ProtobufCMessage *msg, bool always)
{
    size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
    const char *arr = *(char *const *)((const char *)msg + f->offset);
    bool map =
        f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor);

    if (n == 0 && !always) {
        return; /* omitempty: nil and empty slices and maps */
    }
    kiln__gojson_key(c->w, f->name);
    if (n == 0) {
        kiln__gojson_null(c->w); /* a nil map or slice without omitempty */
    } else if (map) {
        write_map(c, (ProtobufCMessage *const *)arr, n);
    } else {
        size_t size = elem_size(f->type);

        kiln__gojson_begin_array(c->w);
        for (size_t i = 0; i < n && c->rc == 0; i++) {
            write_value(c, f, arr + i * size);
        }
        kiln__gojson_end_array(c->w);
    }
}

static void write_field(pbjson_t *c, const ProtobufCMessageDescriptor *d,
                        const ProtobufCFieldDescriptor *f,
                        const ProtobufCMessage *msg)
{
    bool always = c->legacy && legacy_always(d, f->name);
    const void *p = (const char *)msg + f->offset;

    if (c->legacy && legacy_unknown(d, f->name)) {
        return;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        c->rc = KILN_EINVAL; /* only UserOpt's oneof is supported */
        return;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        write_repeated(c, f, msg, always);
        return;
    }
    if (!always && scalar_is_zero(f->type, p)) {
        return;
    }
    kiln__gojson_key(c->w, f->name);
    write_value(c, f, p);
}

/*
 * UserOpt: current BuildKit marshals {"User":{"byName":..,"byId":n}} with
 * both omitempty; gogo-era BuildKit reflected the oneof wrapper struct
 * (tag "byID"), and a nil oneof as null.
 */
static void write_user_opt(pbjson_t *c, const Pb__UserOpt *u)
{
    kiln__gojson_t *w = c->w;

    kiln__gojson_begin_object(w);
    kiln__gojson_key(w, "User");
    if (u->user_case == PB__USER_OPT__USER__NOT_SET && c->legacy) {
        kiln__gojson_null(w);
        kiln__gojson_end_object(w);
        return;
    }
    kiln__gojson_begin_object(w);
    if (u->user_case == PB__USER_OPT__USER_BY_NAME && u->byname != NULL) {
        kiln__gojson_key(w, "byName");
        write_message(c, &pb__named_user_opt__descriptor, &u->byname->base);
    } else if (u->user_case == PB__USER_OPT__USER_BY_ID && u->byid != 0) {
        kiln__gojson_key(w, c->legacy ? "byID" : "byId");
        kiln__gojson_uint(w, u->byid);
    }
    kiln__gojson_end_object(w);
    kiln__gojson_end_object(w);
}

static void write_message(pbjson_t *c, const ProtobufCMessageDescriptor *d,
                          const ProtobufCMessage *msg)
{
    if (d == &pb__user_opt__descriptor) {
        write_user_opt(c, (const Pb__UserOpt *)msg);
        return;
    }
    if (d == &pb__op__descriptor || d == &pb__file_action__descriptor) {
        c->rc = KILN_EINVAL; /* custom MarshalJSON in BuildKit */
        return;
    }
    kiln__gojson_begin_object(c->w);
    for (unsigned i = 0; i < d->n_fields && c->rc == 0; i++) {
        write_field(c, d, &d->fields[i], msg);
    }
    kiln__gojson_end_object(c->w);
}

int kiln__pbjson_write(kiln__gojson_t *w, const ProtobufCMessage *msg,
                       bool legacy)
{
    pbjson_t c = {w, legacy, 0};

    if (msg == NULL) {
        kiln__gojson_null(w);
        return 0;
    }
    write_message(&c, msg->descriptor, msg);
    if (c.rc == 0 && !kiln__buf_ok(w->out)) {
        c.rc = KILN_ENOMEM;
    }
    return c.rc;
}
