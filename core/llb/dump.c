/*
 * dump-llb: JSON and Graphviz output of a definition.
 *
 * The JSON is what `buildctl debug dump-llb` of BuildKit v0.11.6 prints:
 * Go's encoding/json (Go < 1.22: "\u0008", not "\b") applied to the
 * structs gogo-protobuf generates from ops.proto. That gives keys in
 * declaration order named by the proto field names, zero values left out
 * (omitempty) except for the fields gogo declares non-nullable
 * (kiln__pbwalk_gogo_flags()), oneofs as a wrapper object under the Go name
 * of the oneof (null when unset), maps sorted by key, enums as numbers and
 * bytes as base64. The printer walks protobuf-c's descriptors
 * (llb/pbwalk.c), so fields added to ops.proto after v0.11 (validExitCodes,
 * symlink, passthrough, ...) are printed by the same rules without changes
 * here.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbwalk.h"

/* Output is handed to stdio whenever this much has been formatted. */
#define DUMP_CHUNK (1u << 20)

/* Longest dot label, in bytes; longer ones are cut and end in "...". */
#define DOT_LABEL_MAX 120

static const char *dump_oneof_name(const ProtobufCMessageDescriptor *d)
{
    const char *name = kiln__pbwalk_oneof_name(d);

    return name != NULL ? name : "oneof"; /* ops.proto has no other oneof */
}

static const kiln__pbwalk_style_t dump_style = {
    kiln__pbwalk_gogo_flags,
    dump_oneof_name,
    NULL,
    KILN_PBWALK_UNSET_ONEOF_NULL,
};

/* buildctl's llbOp{Op pb.Op; Digest digest.Digest; OpMetadata
 * pb.OpMetadata}, one per line. */
static int put_json_op(kiln__buf_t *b, const kiln__vertex_t *v)
{
    Pb__OpMetadata zero_meta = PB__OP_METADATA__INIT;
    kiln__gojson_t w;
    int rc;

    kiln__gojson_init(&w, b, 0);
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "Op");
    rc = kiln__pbwalk_json(&w, &dump_style, &pb__op__descriptor, &v->op->base);
    kiln__gojson_key(&w, "Digest");
    kiln__gojson_cstr(&w, v->digest);
    kiln__gojson_key(&w, "OpMetadata");
    if (rc == 0) {
        rc = kiln__pbwalk_json(&w, &dump_style, &pb__op_metadata__descriptor,
                               v->meta != NULL ? &v->meta->base
                                               : &zero_meta.base);
    }
    kiln__gojson_end_object(&w);
    kiln__buf_putc(b, '\n');
    if (rc == 0 && !kiln__gojson_ok(&w)) {
        rc = kiln__buf_ok(b) ? KILN_EINVAL : KILN_ENOMEM;
    }
    return rc;
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
        int rc = put_json_op(&b, &def->vertices[i]);

        if (rc == KILN_ENOMEM) {
            b.oom = true; /* reported by flush_buf() */
        } else if (rc < 0) {
            kiln__buf_free(&b);
            return kiln__fail(err, rc, "op %s: %s", def->vertices[i].digest,
                              kiln_strerror(rc));
        }
        if (b.len >= DUMP_CHUNK || !kiln__buf_ok(&b)) {
            rc = flush_buf(&b, out, err);
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
