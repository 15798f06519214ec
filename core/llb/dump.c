/*
 * dump-llb: JSON and Graphviz output of a definition.
 *
 * The JSON is what `buildctl debug dump-llb` of BuildKit v0.11.6 prints:
 * Go's encoding/json applied to the structs gogo-protobuf generates from
 * ops.proto. That gives keys in declaration order named by the proto field
 * names, zero values left out (omitempty) except for the fields gogo
 * declares non-nullable (field_rules below), oneofs as a wrapper object
 * under the Go name of the oneof, maps sorted by key, enums as numbers and
 * bytes as base64. The printer walks protobuf-c's descriptors, so fields
 * added to ops.proto after v0.11 (validExitCodes, symlink, passthrough, ...)
 * are printed by the same rules without changes here.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"

/* Output is handed to stdio whenever this much has been formatted. */
#define DUMP_CHUNK (1u << 20)

/* Longest dot label, in bytes; longer ones are cut and end in "...". */
#define DOT_LABEL_MAX 120

enum field_rule_flags {
    /* gogo non-nullable: no omitempty, printed even when zero or empty. */
    RULE_ALWAYS = 1,
    /* A map of non-nullable messages: a missing value is a zero struct, not
     * null. */
    RULE_VALUE_STRUCT = 2,
};

struct field_rule {
    const ProtobufCMessageDescriptor *desc;
    const char *field;
    unsigned flags;
};

/* The (gogoproto.nullable) = false fields of BuildKit v0.11's ops.proto. */
static const struct field_rule field_rules[] = {
    {&pb__input__descriptor, "digest", RULE_ALWAYS},
    {&pb__input__descriptor, "index", RULE_ALWAYS},
    {&pb__mount__descriptor, "input", RULE_ALWAYS},
    {&pb__mount__descriptor, "output", RULE_ALWAYS},
    {&pb__build_op__descriptor, "builder", RULE_ALWAYS},
    {&pb__build_input__descriptor, "input", RULE_ALWAYS},
    {&pb__op_metadata__descriptor, "caps", RULE_ALWAYS},
    {&pb__range__descriptor, "start", RULE_ALWAYS},
    {&pb__range__descriptor, "end", RULE_ALWAYS},
    {&pb__definition__descriptor, "metadata", RULE_ALWAYS | RULE_VALUE_STRUCT},
    {&pb__file_action__descriptor, "input", RULE_ALWAYS},
    {&pb__file_action__descriptor, "secondaryInput", RULE_ALWAYS},
    {&pb__file_action__descriptor, "output", RULE_ALWAYS},
    {&pb__named_user_opt__descriptor, "input", RULE_ALWAYS},
    {&pb__merge_input__descriptor, "input", RULE_ALWAYS},
    {&pb__lower_diff_input__descriptor, "input", RULE_ALWAYS},
    {&pb__upper_diff_input__descriptor, "input", RULE_ALWAYS},
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

static void put_message(kiln__buf_t *b, const ProtobufCMessageDescriptor *d,
                        const ProtobufCMessage *m);

static unsigned rule_of(const ProtobufCMessageDescriptor *d,
                        const ProtobufCFieldDescriptor *f)
{
    for (size_t i = 0; i < KILN_ARRAY_SIZE(field_rules); i++) {
        if (field_rules[i].desc == d &&
            strcmp(field_rules[i].field, f->name) == 0) {
            return field_rules[i].flags;
        }
    }
    return 0;
}

static const char *oneof_name(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < KILN_ARRAY_SIZE(oneof_names); i++) {
        if (oneof_names[i].desc == d) {
            return oneof_names[i].name;
        }
    }
    return "oneof"; /* ops.proto has no other oneof */
}

static bool is_oneof(const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

/*
 * protoc makes a map<string, V> field of message P a repeated field of the
 * nested message P.<Name>Entry {key = 1; value = 2;}.
 */
static bool is_map(const ProtobufCMessageDescriptor *parent,
                   const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t plen = strlen(parent->name);
    size_t slen;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE || e->n_fields != 2) {
        return false;
    }
    slen = strlen(e->short_name);
    return slen > 5 && strcmp(e->short_name + slen - 5, "Entry") == 0 &&
           strncmp(e->name, parent->name, plen) == 0 && e->name[plen] == '.' &&
           e->fields[0].id == 1 &&
           e->fields[0].type == PROTOBUF_C_TYPE_STRING && e->fields[1].id == 2;
}

static const void *field_ptr(const ProtobufCMessage *m, unsigned offset)
{
    return (const char *)m + offset;
}

/* Bytes of one element of field `f` as protobuf-c stores it. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
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
        return 4; /* 32-bit integers, enums, float */
    }
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
        return elem_size(f) == 8 ? *(const uint64_t *)p == 0
                                 : *(const uint32_t *)p == 0;
    }
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is invalid. */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
    size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;

    return k != 0 && k <= n && kiln__utf8_valid(s, k) ? k : 0;
}

/* Go's escape for the ASCII byte `c`, or NULL if it is written as is. */
static const char *ascii_escape(uint8_t c, char buf[8])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '<':
    case '>':
    case '&':
        break; /* HTML escaping, on by default in Go */
    default:
        if (c >= 0x20) {
            return NULL;
        }
    }
    snprintf(buf, 8, "\\u%04x", (unsigned)c);
    return buf;
}

/* A JSON string as Go's encoding/json writes it. */
static void put_json_bytes(kiln__buf_t *b, const uint8_t *s, size_t n)
{
    size_t start = 0;
    size_t i = 0;

    kiln__buf_putc(b, '"');
    while (i < n) {
        uint8_t c = s[i];
        size_t k = 1;
        const char *esc;
        char buf[8];

        if (c < 0x80) {
            esc = ascii_escape(c, buf);
        } else if ((k = utf8_seq_len(s + i, n - i)) == 0) {
            esc = "\\ufffd"; /* each invalid byte, as in Go */
            k = 1;
        } else if (k == 3 && c == 0xe2 && s[i + 1] == 0x80 &&
                   (s[i + 2] & 0xfe) == 0xa8) {
            esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
        } else {
            esc = NULL;
        }
        if (esc != NULL) {
            kiln__buf_append(b, s + start, i - start);
            kiln__buf_puts(b, esc);
            start = i + k;
        }
        i += k;
    }
    kiln__buf_append(b, s + start, n - start);
    kiln__buf_putc(b, '"');
}

static void put_json_string(kiln__buf_t *b, const char *s)
{
    s = s != NULL ? s : "";
    put_json_bytes(b, (const uint8_t *)s, strlen(s));
}

/* Standard base64 with padding, as Go encodes []byte. */
static void put_base64(kiln__buf_t *b, const ProtobufCBinaryData *d)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char quad[4];

    kiln__buf_putc(b, '"');
    for (size_t i = 0; i < d->len; i += 3) {
        size_t rest = d->len - i;
        uint32_t v = (uint32_t)d->data[i] << 16;

        v |= rest > 1 ? (uint32_t)d->data[i + 1] << 8 : 0;
        v |= rest > 2 ? d->data[i + 2] : 0;
        quad[0] = tab[(v >> 18) & 63];
        quad[1] = tab[(v >> 12) & 63];
        quad[2] = rest > 1 ? tab[(v >> 6) & 63] : '=';
        quad[3] = rest > 2 ? tab[v & 63] : '=';
        kiln__buf_append(b, quad, 4);
    }
    kiln__buf_putc(b, '"');
}

/*
 * ops.proto has no floating-point fields; this keeps the output valid JSON
 * should one appear, without reproducing Go's shortest formatting.
 */
static void put_float(kiln__buf_t *b, double v)
{
    if (isfinite(v)) {
        kiln__buf_printf(b, "%.17g", v);
    } else {
        kiln__buf_puts(b, "null");
    }
}

/* A message with every field at its default: Go's zero struct. */
static void put_zero_message(kiln__buf_t *b,
                             const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);

    if (m == NULL) {
        b->oom = true;
        return;
    }
    d->message_init(m);
    put_message(b, d, m);
    free(m);
}

/* One value of field `f` stored at `p`. */
static void put_value(kiln__buf_t *b, const ProtobufCFieldDescriptor *f,
                      const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        kiln__buf_printf(b, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        kiln__buf_printf(b, "%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        kiln__buf_printf(b, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        kiln__buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        put_float(b, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        put_float(b, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_STRING:
        put_json_string(b, *(char *const *)p);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        put_base64(b, p);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        put_message(b, f->descriptor, *(ProtobufCMessage *const *)p);
        break;
    default: /* int32, sint32, sfixed32 and enums (numbers, as in Go) */
        kiln__buf_printf(b, "%" PRId32, *(const int32_t *)p);
        break;
    }
}

static void put_key(kiln__buf_t *b, const char *name, bool *first)
{
    if (!*first) {
        kiln__buf_putc(b, ',');
    }
    *first = false;
    put_json_string(b, name);
    kiln__buf_putc(b, ':');
}

struct map_key {
    const char *key;
    size_t idx;
};

static int cmp_map_key(const void *a, const void *b)
{
    const struct map_key *x = a;
    const struct map_key *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0) {
        return c;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * A Go map: keys sorted bytewise, one entry per key (the last one, as Go's
 * decoder keeps), NULL message values printed as Go would hold them.
 */
static void put_map(kiln__buf_t *b, const ProtobufCFieldDescriptor *f, size_t n,
                    ProtobufCMessage *const *entries, unsigned rule)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &e->fields[0];
    const ProtobufCFieldDescriptor *vf = &e->fields[1];
    struct map_key *keys = malloc(n * sizeof(*keys));
    bool first = true;

    if (keys == NULL) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = *(char *const *)field_ptr(entries[i], kf->offset);
        keys[i].key = k != NULL ? k : "";
        keys[i].idx = i;
    }
    qsort(keys, n, sizeof(*keys), cmp_map_key);
    kiln__buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        const void *vp;

        if (i + 1 < n && strcmp(keys[i].key, keys[i + 1].key) == 0) {
            continue;
        }
        put_key(b, keys[i].key, &first);
        vp = field_ptr(entries[keys[i].idx], vf->offset);
        if ((rule & RULE_VALUE_STRUCT) && is_zero(vf, vp)) {
            put_zero_message(b, vf->descriptor);
        } else {
            put_value(b, vf, vp);
        }
    }
    kiln__buf_putc(b, '}');
    free(keys);
}

static void put_array(kiln__buf_t *b, const ProtobufCFieldDescriptor *f,
                      size_t n, const void *elems)
{
    size_t size = elem_size(f);

    kiln__buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            kiln__buf_putc(b, ',');
        }
        put_value(b, f, (const char *)elems + i * size);
    }
    kiln__buf_putc(b, ']');
}

static void put_repeated(kiln__buf_t *b, const ProtobufCMessageDescriptor *d,
                         const ProtobufCFieldDescriptor *f,
                         const ProtobufCMessage *m, bool *first)
{
    size_t n = *(const size_t *)field_ptr(m, f->quantifier_offset);
    const void *elems = *(void *const *)field_ptr(m, f->offset);
    unsigned rule = rule_of(d, f);

    if (n == 0 && !(rule & RULE_ALWAYS)) {
        return;
    }
    put_key(b, f->name, first);
    if (n == 0) {
        kiln__buf_puts(b, "null"); /* Go's nil map or slice */
    } else if (is_map(d, f)) {
        put_map(b, f, n, elems, rule);
    } else {
        put_array(b, f, n, elems);
    }
}

static void put_field(kiln__buf_t *b, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *m, bool *first)
{
    const void *p = field_ptr(m, f->offset);
    bool always = (rule_of(d, f) & RULE_ALWAYS) != 0;

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        put_repeated(b, d, f, m, first);
        return;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
        f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING) {
        /* Explicit presence (proto3 optional): a pointer in Go. */
        if (!*(const protobuf_c_boolean *)field_ptr(m, f->quantifier_offset)) {
            return;
        }
        always = true;
    }
    if (!always && is_zero(f, p)) {
        return;
    }
    put_key(b, f->name, first);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_zero(f, p)) {
        put_zero_message(b, f->descriptor); /* non-nullable message */
    } else {
        put_value(b, f, p);
    }
}

/* The oneof `f` belongs to, as gogo's wrapper: {"member":value} or null. */
static void put_oneof(kiln__buf_t *b, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *m, bool *first)
{
    uint32_t which = *(const uint32_t *)field_ptr(m, f->quantifier_offset);
    const ProtobufCFieldDescriptor *set =
        which != 0 ? protobuf_c_message_descriptor_get_field(d, which) : NULL;
    bool inner_first = true;

    put_key(b, oneof_name(d), first);
    if (set == NULL || set->quantifier_offset != f->quantifier_offset) {
        kiln__buf_puts(b, "null");
        return;
    }
    kiln__buf_putc(b, '{');
    if (!is_zero(set, field_ptr(m, set->offset))) {
        put_key(b, set->name, &inner_first);
        put_value(b, set, field_ptr(m, set->offset));
    }
    kiln__buf_putc(b, '}');
}

/* True if `d->fields[i]` is the first member of its oneof. */
static bool first_of_oneof(const ProtobufCMessageDescriptor *d, unsigned i)
{
    for (unsigned j = 0; j < i; j++) {
        if (is_oneof(&d->fields[j]) &&
            d->fields[j].quantifier_offset == d->fields[i].quantifier_offset) {
            return false;
        }
    }
    return true;
}

static void put_message(kiln__buf_t *b, const ProtobufCMessageDescriptor *d,
                        const ProtobufCMessage *m)
{
    bool first = true;

    if (m == NULL) {
        kiln__buf_puts(b, "null");
        return;
    }
    kiln__buf_putc(b, '{');
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        if (!is_oneof(f)) {
            put_field(b, d, f, m, &first);
        } else if (first_of_oneof(d, i)) {
            put_oneof(b, d, f, m, &first);
        }
    }
    kiln__buf_putc(b, '}');
}

/* buildctl's llbOp{Op pb.Op; Digest digest.Digest; OpMetadata
 * pb.OpMetadata}, one per line. */
static void put_json_op(kiln__buf_t *b, const kiln__vertex_t *v)
{
    kiln__buf_puts(b, "{\"Op\":");
    put_message(b, &pb__op__descriptor, &v->op->base);
    kiln__buf_puts(b, ",\"Digest\":");
    put_json_string(b, v->digest);
    kiln__buf_puts(b, ",\"OpMetadata\":");
    if (v->meta != NULL) {
        put_message(b, &pb__op_metadata__descriptor, &v->meta->base);
    } else {
        put_zero_message(b, &pb__op_metadata__descriptor);
    }
    kiln__buf_puts(b, "}\n");
}

/* Hands what `b` holds to `out` and empties it. */
static int flush_buf(kiln__buf_t *b, FILE *out, kiln_error_t *err)
{
    if (!kiln__buf_ok(b)) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (b->len > 0 && fwrite(b->data, 1, b->len, out) != b->len) {
        return kiln__fail(err, KILN_EIO, "writing the dump: %s",
                          strerror(errno));
    }
    b->len = 0;
    return 0;
}

static int finish(kiln__buf_t *b, FILE *out, kiln_error_t *err)
{
    int rc = flush_buf(b, out, err);

    kiln__buf_free(b);
    if (rc == 0 && fflush(out) != 0) {
        rc = kiln__fail(err, KILN_EIO, "writing the dump: %s", strerror(errno));
    }
    return rc;
}

int kiln_definition_dump_json(const kiln_definition_t *def, FILE *out,
                              kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;

    for (size_t i = 0; i < def->n_vertices; i++) {
        put_json_op(&b, &def->vertices[i]);
        if (b.len >= DUMP_CHUNK || !kiln__buf_ok(&b)) {
            int rc = flush_buf(&b, out, err);
            if (rc < 0) {
                kiln__buf_free(&b);
                return rc;
            }
        }
    }
    return finish(&b, out, err);
}

/*
 * Graphviz.
 */

/* A double-quoted dot string. Backslashes are doubled so that no label
 * escape (\N, \l, ...) is triggered, newlines become dot's \n line break,
 * other control characters spaces, and & starts an entity in dot labels. */
static void put_dot_string(kiln__buf_t *b, const char *s, size_t max)
{
    size_t n = strlen(s);
    bool cut = n > max;

    if (cut) {
        n = max;
        while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80) {
            n--; /* keep whole UTF-8 sequences */
        }
    }
    kiln__buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];

        if (c == '"' || c == '\\') {
            kiln__buf_putc(b, '\\');
            kiln__buf_putc(b, c);
        } else if (c == '\n') {
            kiln__buf_puts(b, "\\n");
        } else if (c == '&') {
            kiln__buf_puts(b, "&amp;");
        } else {
            kiln__buf_putc(b, c < 0x20 || c == 0x7f ? ' ' : c);
        }
    }
    kiln__buf_puts(b, cut ? "...\"" : "\"");
}

/* "exec sh -c ...", "source docker-image://...", "file mkdir, copy". */
static void op_summary(kiln__buf_t *l, const kiln__vertex_t *v)
{
    const Pb__Op *op = v->op;

    kiln__buf_puts(l, kiln__op_kind_name(v->kind));
    switch (v->kind) {
    case KILN_OP_SOURCE:
        kiln__buf_printf(l, " %s", op->source->identifier);
        break;
    case KILN_OP_EXEC:
        for (size_t i = 0; op->exec->meta && i < op->exec->meta->n_args; i++) {
            kiln__buf_printf(l, " %s", op->exec->meta->args[i]);
        }
        break;
    case KILN_OP_FILE:
        for (size_t i = 0; i < op->file->n_actions; i++) {
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(
                    &pb__file_action__descriptor,
                    (unsigned)op->file->actions[i]->action_case);
            kiln__buf_printf(l, "%s%s", i > 0 ? ", " : " ",
                             f != NULL ? f->name : "?");
        }
        break;
    case KILN_OP_PASSTHROUGH:
        kiln__buf_printf(l, " %s", op->passthrough->id);
        break;
    default:
        break;
    }
}

static void put_dot_node(kiln__buf_t *b, const kiln__vertex_t *v)
{
    kiln__buf_t label = KILN_BUF_INIT;

    kiln__buf_puts(b, "  ");
    put_dot_string(b, v->digest, KILN_DIGEST_STRLEN);
    kiln__buf_puts(b, " [label=");
    if (v->name != NULL) {
        put_dot_string(b, v->name, DOT_LABEL_MAX);
    } else {
        op_summary(&label, v);
        if (!kiln__buf_ok(&label)) {
            b->oom = true;
        } else {
            put_dot_string(b, (const char *)label.data, DOT_LABEL_MAX);
        }
        kiln__buf_free(&label);
    }
    kiln__buf_puts(b, " shape=box];\n");
}

/* One edge per input, from the op producing it to the op using it. */
static void put_dot_edges(kiln__buf_t *b, const kiln__vertex_t *v)
{
    for (size_t i = 0; i < v->op->n_inputs; i++) {
        int64_t index = v->op->inputs[i]->index;

        kiln__buf_puts(b, "  ");
        put_dot_string(b, v->inputs[i]->digest, KILN_DIGEST_STRLEN);
        kiln__buf_puts(b, " -> ");
        put_dot_string(b, v->digest, KILN_DIGEST_STRLEN);
        if (index != 0) {
            kiln__buf_printf(b, " [label=\"%" PRId64 "\"]", index);
        }
        kiln__buf_puts(b, ";\n");
    }
}

int kiln_definition_dump_dot(const kiln_definition_t *def, FILE *out,
                             kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;
    int rc = 0;

    kiln__buf_puts(&b, "digraph {\n");
    for (size_t pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t i = 0; i < def->n_vertices && rc == 0; i++) {
            if (pass == 0) {
                put_dot_node(&b, &def->vertices[i]);
            } else {
                put_dot_edges(&b, &def->vertices[i]);
            }
            if (b.len >= DUMP_CHUNK || !kiln__buf_ok(&b)) {
                rc = flush_buf(&b, out, err);
            }
        }
    }
    if (rc < 0) {
        kiln__buf_free(&b);
        return rc;
    }
    kiln__buf_puts(&b, "}\n");
    return finish(&b, out, err);
}
