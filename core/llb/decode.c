/*
 * Decoding and validation of LLB Definitions.
 *
 * Every op keeps the exact bytes it arrived in, so its digest is BuildKit's
 * by construction. Validation follows what BuildKit's solver checks when it
 * loads a definition, with errors that name the op at fault.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbenc.h"

const char *kiln__op_kind_name(enum kiln__op_kind kind)
{
    static const char *const names[] = {
        [KILN_OP_TERMINAL] = "terminal", [KILN_OP_EXEC] = "exec",
        [KILN_OP_SOURCE] = "source",     [KILN_OP_FILE] = "file",
        [KILN_OP_BUILD] = "build",       [KILN_OP_MERGE] = "merge",
        [KILN_OP_DIFF] = "diff",         [KILN_OP_PASSTHROUGH] = "passthrough",
    };
    return (unsigned)kind < KILN_ARRAY_SIZE(names) ? names[kind] : "unknown";
}

static enum kiln__op_kind kind_of(const Pb__Op *op)
{
    switch (op->op_case) {
    case PB__OP__OP_EXEC:
        return KILN_OP_EXEC;
    case PB__OP__OP_SOURCE:
        return KILN_OP_SOURCE;
    case PB__OP__OP_FILE:
        return KILN_OP_FILE;
    case PB__OP__OP_BUILD:
        return KILN_OP_BUILD;
    case PB__OP__OP_MERGE:
        return KILN_OP_MERGE;
    case PB__OP__OP_DIFF:
        return KILN_OP_DIFF;
    case PB__OP__OP_PASSTHROUGH:
        return KILN_OP_PASSTHROUGH;
    default:
        return KILN_OP_TERMINAL;
    }
}

/*
 * Only bind mounts produce outputs (BuildKit's PrepareMounts); Go clients
 * leave `output` at 0 on secret and SSH mounts.
 */
static bool mount_has_output(const Pb__Mount *m)
{
    return m->mounttype == PB__MOUNT_TYPE__BIND && m->output >= 0;
}

/* Number of outputs an op offers to its dependents. */
static size_t outputs_of(const Pb__Op *op)
{
    size_t n = 0;

    switch (op->op_case) {
    case PB__OP__OP_EXEC:
        for (size_t i = 0; i < op->exec->n_mounts; i++) {
            if (mount_has_output(op->exec->mounts[i])) {
                n++;
            }
        }
        return n;
    case PB__OP__OP_PASSTHROUGH:
        return op->passthrough->n_outputs;
    case PB__OP__OP__NOT_SET:
        return 0;
    default:
        return 1;
    }
}

static size_t hash_digest(const char *s)
{
    /* FNV-1a; digests are uniformly distributed anyway. */
    size_t h = 1469598103934665603ull;

    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h;
}

kiln__vertex_t *kiln__definition_find(const kiln_definition_t *def,
                                      const char *digest)
{
    size_t i;

    if (def->table == NULL) {
        return NULL;
    }
    for (i = hash_digest(digest) & def->table_mask; def->table[i] != 0;
         i = (i + 1) & def->table_mask) {
        kiln__vertex_t *v = &def->vertices[def->table[i] - 1];
        if (strcmp(v->digest, digest) == 0) {
            return v;
        }
    }
    return NULL;
}

static void table_insert(kiln_definition_t *def, size_t idx)
{
    size_t i = hash_digest(def->vertices[idx].digest) & def->table_mask;

    while (def->table[i] != 0) {
        i = (i + 1) & def->table_mask;
    }
    def->table[i] = idx + 1;
}

/* "op sha256:... (\"name\")" for error messages. */
static const char *label(const kiln__vertex_t *v, char *buf, size_t size)
{
    if (v->name != NULL) {
        snprintf(buf, size, "%s op %s (\"%.200s\")",
                 kiln__op_kind_name(v->kind), v->digest, v->name);
    } else {
        snprintf(buf, size, "%s op %s", kiln__op_kind_name(v->kind), v->digest);
    }
    return buf;
}

#define LABEL(v) label((v), lbl, sizeof(lbl))

static const char *custom_name(const Pb__OpMetadata *md)
{
    const char *name = NULL;

    if (md == NULL) {
        return NULL;
    }
    /* The last of repeated keys wins, as when Go decodes a map. */
    for (size_t i = 0; i < md->n_description; i++) {
        if (strcmp(md->description[i]->key, "llb.customname") == 0) {
            name = md->description[i]->value;
        }
    }
    return name;
}

static int check_index(kiln_error_t *err, const kiln__vertex_t *v,
                       const char *what, int64_t idx, int64_t limit,
                       bool allow_empty)
{
    char lbl[512];

    if ((idx == -1 && allow_empty) || (idx >= 0 && idx < limit)) {
        return 0;
    }
    return kiln__fail(
        err, KILN_EINVAL, "%s: %s is %lld, but the op has %lld input%s%s",
        LABEL(v), what, (long long)idx, (long long)limit, limit == 1 ? "" : "s",
        allow_empty ? " (-1 means none)" : "");
}

static int validate_exec(const kiln__vertex_t *v, kiln_error_t *err)
{
    const Pb__ExecOp *e = v->op->exec;
    int64_t n_in = (int64_t)v->op->n_inputs;
    int64_t next_out = 0;
    bool has_root = false;
    char lbl[512];
    char what[64];

    if (e->meta == NULL) {
        return kiln__fail(err, KILN_EINVAL, "%s: exec op has no meta",
                          LABEL(v));
    }
    if (e->meta->n_args == 0) {
        return kiln__fail(err, KILN_EINVAL, "%s: exec op has no arguments",
                          LABEL(v));
    }
    if (e->n_mounts == 0) {
        return kiln__fail(err, KILN_EINVAL, "%s: exec op has no mounts",
                          LABEL(v));
    }
    for (size_t i = 0; i < e->n_mounts; i++) {
        const Pb__Mount *m = e->mounts[i];
        int rc;

        snprintf(what, sizeof(what), "mount %zu input", i);
        rc = check_index(err, v, what, m->input, n_in, true);
        if (rc < 0) {
            return rc;
        }
        if (mount_has_output(m) && m->output != next_out++) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: mount %zu (%s) has output %lld, expected "
                              "%lld (outputs are numbered in mount order)",
                              LABEL(v), i, m->dest, (long long)m->output,
                              (long long)(next_out - 1));
        }
        if (strcmp(m->dest, "/") == 0) {
            has_root = true;
        }
    }
    if (!has_root) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: exec op has no root mount (dest \"/\")",
                          LABEL(v));
    }
    return 0;
}

static int validate_file(const kiln__vertex_t *v, kiln_error_t *err)
{
    const Pb__FileOp *f = v->op->file;
    int64_t n_in = (int64_t)v->op->n_inputs;
    char lbl[512];
    char what[64];

    if (f->n_actions == 0) {
        return kiln__fail(err, KILN_EINVAL, "%s: file op has no actions",
                          LABEL(v));
    }
    for (size_t j = 0; j < f->n_actions; j++) {
        const Pb__FileAction *a = f->actions[j];
        /* An action reads op inputs or the results of earlier actions. */
        int64_t limit = n_in + (int64_t)j;
        int rc;

        if (a->action_case == PB__FILE_ACTION__ACTION__NOT_SET) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: file action %zu has no action", LABEL(v), j);
        }
        snprintf(what, sizeof(what), "file action %zu input", j);
        rc = check_index(err, v, what, a->input, limit, true);
        if (rc == 0) {
            snprintf(what, sizeof(what), "file action %zu secondaryInput", j);
            rc = check_index(err, v, what, a->secondaryinput, limit, true);
        }
        if (rc < 0) {
            return rc;
        }
        if (a->output < -1) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: file action %zu has output %lld", LABEL(v),
                              j, (long long)a->output);
        }
    }
    return 0;
}

static int validate_body(const kiln__vertex_t *v, kiln_error_t *err)
{
    const Pb__Op *op = v->op;
    int64_t n_in = (int64_t)op->n_inputs;
    char lbl[512];
    int rc = 0;

    switch (v->kind) {
    case KILN_OP_EXEC:
        return validate_exec(v, err);
    case KILN_OP_FILE:
        return validate_file(v, err);
    case KILN_OP_SOURCE:
        if (op->source->identifier[0] == 0) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: source op has an empty identifier",
                              LABEL(v));
        }
        if (strstr(op->source->identifier, "://") == NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: source identifier \"%.200s\" has no "
                              "scheme (expected SCHEME://...)",
                              LABEL(v), op->source->identifier);
        }
        return 0;
    case KILN_OP_MERGE:
        if (op->merge->n_inputs == 0) {
            return kiln__fail(err, KILN_EINVAL, "%s: merge op has no inputs",
                              LABEL(v));
        }
        for (size_t i = 0; i < op->merge->n_inputs && rc == 0; i++) {
            rc = check_index(err, v, "merge input", op->merge->inputs[i]->input,
                             n_in, false);
        }
        return rc;
    case KILN_OP_DIFF:
        if (op->diff->lower == NULL || op->diff->upper == NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: diff op needs both lower and upper",
                              LABEL(v));
        }
        rc = check_index(err, v, "diff lower input", op->diff->lower->input,
                         n_in, true);
        if (rc == 0) {
            rc = check_index(err, v, "diff upper input", op->diff->upper->input,
                             n_in, true);
        }
        return rc;
    case KILN_OP_PASSTHROUGH:
        if (op->passthrough->id[0] == 0) {
            return kiln__fail(err, KILN_EINVAL, "%s: passthrough op has no id",
                              LABEL(v));
        }
        for (size_t i = 0; i < op->passthrough->n_outputs && rc == 0; i++) {
            rc = check_index(err, v, "passthrough output",
                             op->passthrough->outputs[i], n_in, false);
        }
        return rc;
    default:
        return 0;
    }
}

/* Resolves and checks every input edge of `v`. */
static int link_inputs(kiln_definition_t *def, kiln__vertex_t *v,
                       kiln_error_t *err)
{
    char lbl[512];

    if (v->op->n_inputs > KILN_OP_MAX_INPUTS) {
        return kiln__fail(err, KILN_E2BIG, "%s: %zu inputs (the limit is %u)",
                          LABEL(v), v->op->n_inputs, KILN_OP_MAX_INPUTS);
    }
    if (v->op->n_inputs == 0) {
        return 0;
    }
    v->inputs = calloc(v->op->n_inputs, sizeof(*v->inputs));
    if (v->inputs == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < v->op->n_inputs; i++) {
        const Pb__Input *in = v->op->inputs[i];
        kiln__vertex_t *dep;

        if (!kiln__digest_valid(in->digest)) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: input %zu has a malformed digest "
                              "\"%.80s\"",
                              LABEL(v), i, in->digest);
        }
        dep = kiln__definition_find(def, in->digest);
        if (dep == NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "%s: input %zu refers to %s, which is not in "
                              "the definition",
                              LABEL(v), i, in->digest);
        }
        if (in->index < 0 || (uint64_t)in->index >= dep->n_outputs) {
            char dlbl[512];
            return kiln__fail(err, KILN_EINVAL,
                              "%s: input %zu uses output %lld of %s, which "
                              "has %zu output%s",
                              LABEL(v), i, (long long)in->index,
                              label(dep, dlbl, sizeof(dlbl)), dep->n_outputs,
                              dep->n_outputs == 1 ? "" : "s");
        }
        v->inputs[i] = dep;
    }
    return 0;
}

/*
 * Cycle check, iterative so that a long chain cannot exhaust the stack.
 * A cycle needs a SHA-256 collision, but the graph is checked anyway: the
 * solver's walks rely on it.
 */
int kiln__graph_check_acyclic(kiln_definition_t *def, kiln_error_t *err)
{
    size_t n = def->n_vertices;
    uint8_t *color = calloc(n ? n : 1, 1); /* 0 new, 1 on stack, 2 done */
    size_t *stack = malloc((n ? n : 1) * sizeof(*stack));
    size_t *next = calloc(n ? n : 1, sizeof(*next));
    int rc = 0;

    if (color == NULL || stack == NULL || next == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t root = 0; root < n && rc == 0; root++) {
        size_t sp = 0;

        if (color[root] != 0) {
            continue;
        }
        stack[sp++] = root;
        color[root] = 1;
        while (sp > 0 && rc == 0) {
            kiln__vertex_t *v = &def->vertices[stack[sp - 1]];
            if (next[v->pos] < v->op->n_inputs) {
                size_t d = v->inputs[next[v->pos]++]->pos;
                if (color[d] == 1) {
                    char lbl[512];
                    rc = kiln__fail(err, KILN_EINVAL, "%s: cycle through %s",
                                    LABEL(v), def->vertices[d].digest);
                } else if (color[d] == 0) {
                    color[d] = 1;
                    stack[sp++] = d;
                }
            } else {
                color[v->pos] = 2;
                sp--;
            }
        }
    }
out:
    free(color);
    free(stack);
    free(next);
    return rc;
}

/*
 * Attaches each metadata entry to its op, in one pass over the entries (the
 * last of repeated keys wins, as when Go decodes a map). An entry keyed by a
 * digest that is not in the definition is an error.
 */
static int attach_metadata(kiln_definition_t *def, kiln_error_t *err)
{
    for (size_t i = 0; i < def->pb->n_metadata; i++) {
        const Pb__Definition__MetadataEntry *e = def->pb->metadata[i];
        kiln__vertex_t *v = kiln__definition_find(def, e->key);

        if (v == NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "metadata entry %zu is keyed by \"%.80s\", "
                              "which is not the digest of any op in the "
                              "definition",
                              i, e->key);
        }
        v->meta = e->value;
    }
    for (size_t i = 0; i < def->n_vertices; i++) {
        def->vertices[i].name = custom_name(def->vertices[i].meta);
    }
    return 0;
}

/* Decodes op bytes into vertex slots, dropping repeated ops. */
static int decode_ops(kiln_definition_t *def, kiln_error_t *err)
{
    Pb__Definition *pb = def->pb;
    size_t size = 16;

    while (size < pb->n_def * 2) {
        size *= 2;
    }
    def->vertices = calloc(pb->n_def ? pb->n_def : 1, sizeof(*def->vertices));
    def->table = calloc(size, sizeof(*def->table));
    if (def->vertices == NULL || def->table == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    def->table_mask = size - 1;
    for (size_t i = 0; i < pb->n_def; i++) {
        kiln__vertex_t *v = &def->vertices[def->n_vertices];
        const ProtobufCBinaryData *raw = &pb->def[i];
        int rc;

        if (kiln__sha256_digest(raw->data, raw->len, v->digest) < 0) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        if (kiln__definition_find(def, v->digest) != NULL) {
            continue; /* BuildKit keeps one op per digest too */
        }
        rc = kiln__pb_check(raw->data, raw->len, &pb__op__descriptor, err);
        if (rc < 0) {
            return kiln__fail_prefix(err, rc, "op %zu (%s)", i, v->digest);
        }
        v->op = pb__op__unpack(NULL, raw->len, raw->data);
        if (v->op == NULL) {
            return kiln__fail(err, KILN_EBADMSG,
                              "op %zu (%s): not a valid pb.Op", i, v->digest);
        }
        v->pos = def->n_vertices;
        v->raw = raw->data;
        v->raw_len = raw->len;
        v->kind = kind_of(v->op);
        v->n_outputs = outputs_of(v->op);
        table_insert(def, def->n_vertices++);
    }
    return 0;
}

static int check_terminal(kiln_definition_t *def, kiln_error_t *err)
{
    const ProtobufCBinaryData *raw;
    char digest[KILN_DIGEST_STRLEN + 1];
    kiln__vertex_t *term;
    char lbl[512];

    if (def->pb->n_def == 0) {
        return 0; /* an empty definition: nothing to build */
    }
    raw = &def->pb->def[def->pb->n_def - 1];
    if (kiln__sha256_digest(raw->data, raw->len, digest) < 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    term = kiln__definition_find(def, digest);
    if (term->kind != KILN_OP_TERMINAL) {
        return kiln__fail(err, KILN_EINVAL,
                          "no terminal op: the last op, %s, has an op body; "
                          "a definition ends with an op that has only the "
                          "result as input",
                          LABEL(term));
    }
    for (size_t i = 0; i < def->n_vertices; i++) {
        kiln__vertex_t *v = &def->vertices[i];
        if (v == term || v->kind != KILN_OP_TERMINAL) {
            continue;
        }
        if (v->op->n_inputs > 0) {
            return kiln__fail(err, KILN_EINVAL,
                              "more than one terminal op: op %zu (%s) has "
                              "only inputs, but only the last op may",
                              i, v->digest);
        }
        return kiln__fail(err, KILN_EINVAL, "op %zu (%s) has no op body", i,
                          v->digest);
    }
    if (term->op->n_inputs != 1) {
        return kiln__fail(err, KILN_EINVAL,
                          "the terminal op %s has %zu inputs; it must have "
                          "exactly one, the result",
                          term->digest, term->op->n_inputs);
    }
    if (term->op->platform != NULL || term->op->constraints != NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "the terminal op %s has a platform or constraints; "
                          "it may only have its input",
                          term->digest);
    }
    def->terminal = term;
    return 0;
}

static int validate(kiln_definition_t *def, kiln_error_t *err)
{
    /* Metadata first, so that later errors can name ops. */
    int rc = attach_metadata(def, err);

    if (rc == 0) {
        rc = check_terminal(def, err);
    }
    for (size_t i = 0; i < def->n_vertices && rc == 0; i++) {
        rc = link_inputs(def, &def->vertices[i], err);
        if (rc == 0) {
            rc = validate_body(&def->vertices[i], err);
        }
    }
    if (rc == 0) {
        rc = kiln__graph_check_acyclic(def, err);
    }
    return rc;
}

int kiln_definition_load(const void *data, size_t len, kiln_error_t *err,
                         kiln_definition_t **out)
{
    kiln_definition_t *def;
    int rc;

    *out = NULL;
    if (len > KILN_DEFINITION_MAX_BYTES) {
        return kiln__fail(err, KILN_E2BIG,
                          "definition is %zu bytes; the limit is %u", len,
                          KILN_DEFINITION_MAX_BYTES);
    }
    rc = kiln__pb_check(data, len, &pb__definition__descriptor, err);
    if (rc < 0) {
        return kiln__fail_prefix(err, rc, "not a valid LLB definition");
    }
    def = calloc(1, sizeof(*def));
    if (def == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    def->pb = pb__definition__unpack(NULL, len, data);
    if (def->pb == NULL) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "not a valid LLB definition: protobuf decoding "
                        "failed");
        goto fail;
    }
    if (def->pb->n_def > KILN_DEFINITION_MAX_OPS) {
        rc = kiln__fail(err, KILN_E2BIG,
                        "definition has %zu ops; the limit is %u",
                        def->pb->n_def, KILN_DEFINITION_MAX_OPS);
        goto fail;
    }
    rc = decode_ops(def, err);
    if (rc == 0) {
        rc = validate(def, err);
    }
    if (rc < 0) {
        goto fail;
    }
    *out = def;
    return 0;
fail:
    kiln_definition_free(def);
    return rc;
}

int kiln_definition_load_file(const char *path, kiln_error_t *err,
                              kiln_definition_t **out)
{
    uint8_t *data;
    size_t len;
    int rc;

    *out = NULL;
    rc = kiln__read_file(path, KILN_DEFINITION_MAX_BYTES, &data, &len, err);
    if (rc < 0) {
        return rc;
    }
    rc = kiln_definition_load(data, len, err, out);
    free(data);
    if (rc < 0 && strcmp(path, "-") != 0) {
        kiln__fail_prefix(err, rc, "%s", path);
    }
    return rc;
}

void kiln_definition_free(kiln_definition_t *def)
{
    if (def == NULL) {
        return;
    }
    for (size_t i = 0; i < def->n_vertices; i++) {
        free(def->vertices[i].inputs);
        if (def->vertices[i].op != NULL) {
            pb__op__free_unpacked(def->vertices[i].op, NULL);
        }
    }
    free(def->vertices);
    free(def->table);
    if (def->pb != NULL) {
        pb__definition__free_unpacked(def->pb, NULL);
    }
    free(def);
}

size_t kiln_definition_op_count(const kiln_definition_t *def)
{
    return def->n_vertices;
}

const char *kiln_definition_op_digest(const kiln_definition_t *def, size_t i)
{
    return i < def->n_vertices ? def->vertices[i].digest : NULL;
}

const char *kiln_definition_op_name(const kiln_definition_t *def, size_t i)
{
    return i < def->n_vertices ? def->vertices[i].name : NULL;
}

const char *kiln_definition_result(const kiln_definition_t *def, int64_t *index)
{
    if (def->terminal == NULL) {
        return NULL;
    }
    if (index != NULL) {
        *index = def->terminal->op->inputs[0]->index;
    }
    return def->terminal->op->inputs[0]->digest;
}

int kiln_definition_encode(const kiln_definition_t *def, uint8_t **out,
                           size_t *len, kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    *out = NULL;
    *len = 0;
    /* Definition and OpMetadata have no oneof: both orders agree; legacy
     * also keeps gogo's always-present Range positions. */
    rc = kiln__pb_encode(&def->pb->base, KILN_PB_ORDER_LEGACY, &b);
    if (rc < 0) {
        kiln__buf_free(&b);
        return kiln__fail(err, rc, "encoding the definition: %s",
                          kiln_strerror(rc));
    }
    if (!kiln__buf_reserve(&b, 0)) {
        kiln__buf_free(&b);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = b.data;
    *len = b.len;
    return 0;
}
