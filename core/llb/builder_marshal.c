/*
 * Marshaling a builder graph into a pb.Definition, as BuildKit's Go
 * State.Marshal does (client/llb/state.go, marshal.go): a post-order walk
 * over op inputs, ops deduplicated by digest with their metadata merged,
 * then the terminal op, metadata for every op and an empty source-map
 * location per op. Also the encoders shared by the op kinds, and merge and
 * diff ops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llb/builder.h"

/* ---- encoder helpers ---- */

void *kiln__enc_alloc(kiln__enc_t *e, size_t n)
{
    void *p = kiln__arena_alloc(&e->tmp, n);

    if (p == NULL) {
        kiln__enc_oom(e);
    }
    return p;
}

int kiln__enc_oom(kiln__enc_t *e)
{
    return kiln__fail(e->err, KILN_ENOMEM, "kiln_llb_marshal: out of memory");
}

void *kiln__enc_new_msg(kiln__enc_t *e, size_t size, const void *init)
{
    void *p = kiln__enc_alloc(e, size);

    if (p != NULL) {
        memcpy(p, init, size);
    }
    return p;
}

void kiln__caps_add(kiln__caps_t *c, const char *cap)
{
    size_t i = 0;

    while (i < c->n && strcmp(c->v[i], cap) < 0) {
        i++;
    }
    if ((i < c->n && strcmp(c->v[i], cap) == 0) ||
        c->n == KILN_ARRAY_SIZE(c->v)) {
        return;
    }
    memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(c->v[0]));
    c->v[i] = cap;
    c->n++;
}

int64_t kiln__llb_output_index(const kiln_llb_state_t *st)
{
    return st->mount != NULL ? st->mount->out_index : 0;
}

int64_t kiln__llb_add_input(kiln__enc_t *e, kiln__vec_t *inputs,
                            kiln_llb_state_t *st)
{
    const char *digest = st->op->mark.digest;
    int64_t index = kiln__llb_output_index(st);
    Pb__Input *in;

    for (size_t i = 0; i < inputs->n; i++) {
        in = inputs->v[i];
        if (in->index == index && strcmp(in->digest, digest) == 0) {
            return (int64_t)i;
        }
    }
    in = KILN_ENC_NEW(e, Pb__Input, PB__INPUT__INIT);
    if (in == NULL || !kiln__vec_push(&e->tmp, inputs, in)) {
        kiln__enc_oom(e);
        return -1;
    }
    in->digest = (char *)digest;
    in->index = index;
    return (int64_t)inputs->n - 1;
}

int kiln__llb_constraints(kiln__enc_t *e, Pb__Op *pop, kiln__op_t *op,
                          const kiln__platform_t *plat)
{
    Pb__WorkerConstraints *wc =
        KILN_ENC_NEW(e, Pb__WorkerConstraints, PB__WORKER_CONSTRAINTS__INIT);

    if (wc == NULL) {
        return KILN_ENOMEM;
    }
    if (plat != NULL) {
        Pb__Platform *p = KILN_ENC_NEW(e, Pb__Platform, PB__PLATFORM__INIT);
        if (p == NULL) {
            return KILN_ENOMEM;
        }
        p->architecture = (char *)plat->arch;
        p->os = (char *)plat->os;
        p->variant = (char *)plat->variant;
        pop->platform = p;
    }
    wc->filter = (char **)op->filters.v;
    wc->n_filter = op->filters.n;
    pop->constraints = wc;
    return 0;
}

/* ---- merge and diff ---- */

static int push_resolved(kiln__enc_t *e, kiln__vec_t *out, kiln_llb_state_t *st)
{
    st = kiln__llb_resolve(st);
    if (st->op == NULL) {
        return 0;
    }
    return kiln__vec_push(&e->tmp, out, st) ? 0 : kiln__enc_oom(e);
}

int kiln__llb_op_inputs(kiln__enc_t *e, kiln__op_t *op, kiln__vec_t *out)
{
    int rc = 0;

    switch (op->kind) {
    case KILN_LLB_EXEC:
        return kiln__llb_exec_inputs(e, op, out);
    case KILN_LLB_FILE:
        return kiln__llb_file_inputs(e, op, out);
    case KILN_LLB_MERGE:
        for (size_t i = 0; i < op->u.merge->n && rc == 0; i++) {
            rc = push_resolved(e, out, op->u.merge->inputs[i]);
        }
        return rc;
    case KILN_LLB_DIFF:
        rc = push_resolved(e, out, op->u.diff->lower);
        return rc == 0 ? push_resolved(e, out, op->u.diff->upper) : rc;
    default:
        return 0;
    }
}

/* Appends an input without de-duplication, as Go's merge and diff do. */
static int64_t append_input(kiln__enc_t *e, kiln__vec_t *inputs,
                            kiln_llb_state_t *st)
{
    Pb__Input *in = KILN_ENC_NEW(e, Pb__Input, PB__INPUT__INIT);

    if (in == NULL || !kiln__vec_push(&e->tmp, inputs, in)) {
        kiln__enc_oom(e);
        return -1;
    }
    in->digest = st->op->mark.digest;
    in->index = kiln__llb_output_index(st);
    return (int64_t)inputs->n - 1;
}

static int encode_merge(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                        kiln__caps_t *caps)
{
    const struct kiln__merge_op *m = op->u.merge;
    Pb__MergeOp *mo = KILN_ENC_NEW(e, Pb__MergeOp, PB__MERGE_OP__INIT);
    kiln__vec_t inputs = {0};

    if (mo == NULL || (mo->inputs = kiln__enc_alloc(
                           e, (m->n + 1) * sizeof(*mo->inputs))) == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        kiln_llb_state_t *st = kiln__llb_resolve(m->inputs[i]);
        Pb__MergeInput *mi;
        if (st->op == NULL) {
            continue;
        }
        mi = KILN_ENC_NEW(e, Pb__MergeInput, PB__MERGE_INPUT__INIT);
        if (mi == NULL || (mi->input = append_input(e, &inputs, st)) < 0) {
            return KILN_ENOMEM;
        }
        mo->inputs[mo->n_inputs++] = mi;
    }
    pop->inputs = (Pb__Input **)inputs.v;
    pop->n_inputs = inputs.n;
    pop->op_case = PB__OP__OP_MERGE;
    pop->merge = mo;
    kiln__caps_add(caps, "mergeop");
    return kiln__llb_constraints(e, pop, op, NULL);
}

static int encode_diff(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                       kiln__caps_t *caps)
{
    kiln_llb_state_t *lower = kiln__llb_resolve(op->u.diff->lower);
    kiln_llb_state_t *upper = kiln__llb_resolve(op->u.diff->upper);
    Pb__DiffOp *d = KILN_ENC_NEW(e, Pb__DiffOp, PB__DIFF_OP__INIT);
    kiln__vec_t inputs = {0};

    if (d == NULL ||
        (d->lower = KILN_ENC_NEW(e, Pb__LowerDiffInput,
                                 PB__LOWER_DIFF_INPUT__INIT)) == NULL ||
        (d->upper = KILN_ENC_NEW(e, Pb__UpperDiffInput,
                                 PB__UPPER_DIFF_INPUT__INIT)) == NULL) {
        return KILN_ENOMEM;
    }
    d->lower->input = lower->op ? append_input(e, &inputs, lower) : -1;
    d->upper->input = upper->op ? append_input(e, &inputs, upper) : -1;
    if ((lower->op && d->lower->input < 0) ||
        (upper->op && d->upper->input < 0)) {
        return KILN_ENOMEM;
    }
    pop->inputs = (Pb__Input **)inputs.v;
    pop->n_inputs = inputs.n;
    pop->op_case = PB__OP__OP_DIFF;
    pop->diff = d;
    kiln__caps_add(caps, "diffop");
    return kiln__llb_constraints(e, pop, op, NULL);
}

/* ---- ops and their metadata ---- */

/* One distinct op of the definition, with its merged metadata. */
typedef struct entry {
    const char *digest;
    ProtobufCBinaryData bytes;
    bool ignore_cache;
    kiln__vec_t desc; /* kiln__kv_t * */
    int export_cache;
    const char *pg_id, *pg_name;
    bool pg_weak;
    kiln__caps_t caps;
} entry_t;

typedef struct walk {
    kiln__enc_t *e;
    kiln__vec_t entries; /* entry_t *, definition order */
    size_t *table;       /* digest -> entry index + 1 */
    size_t mask;
} walk_t;

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;

    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h;
}

static entry_t *find_entry(const walk_t *w, const char *digest)
{
    for (size_t i = hash_str(digest) & w->mask; w->table[i] != 0;
         i = (i + 1) & w->mask) {
        entry_t *en = w->entries.v[w->table[i] - 1];
        if (strcmp(en->digest, digest) == 0) {
            return en;
        }
    }
    return NULL;
}

static void table_put(walk_t *w, size_t idx)
{
    const entry_t *en = w->entries.v[idx];
    size_t i = hash_str(en->digest) & w->mask;

    while (w->table[i] != 0) {
        i = (i + 1) & w->mask;
    }
    w->table[i] = idx + 1;
}

/* Adds an entry, growing the table to keep it at most half full. */
static int add_entry(walk_t *w, entry_t *en)
{
    if (!kiln__vec_push(&w->e->tmp, &w->entries, en)) {
        return kiln__enc_oom(w->e);
    }
    if (w->entries.n * 2 > w->mask + 1) {
        size_t size = (w->mask + 1) * 2;
        size_t *t = calloc(size, sizeof(*t));
        if (t == NULL) {
            return kiln__enc_oom(w->e);
        }
        free(w->table);
        w->table = t;
        w->mask = size - 1;
        for (size_t i = 0; i < w->entries.n; i++) {
            table_put(w, i);
        }
    } else {
        table_put(w, w->entries.n - 1);
    }
    return 0;
}

/* Go's mergeMetadata: metadata of ops with equal digests combines. */
static int merge_meta(kiln__enc_t *e, entry_t *en, const kiln__op_t *op,
                      const kiln__caps_t *caps)
{
    en->ignore_cache = en->ignore_cache || op->ignore_cache;
    for (size_t i = 0; i < op->desc.n; i++) {
        const kiln__kv_t *kv = op->desc.v[i];
        bool found = false;
        for (size_t j = 0; j < en->desc.n && !found; j++) {
            kiln__kv_t *have = en->desc.v[j];
            if (strcmp(have->key, kv->key) == 0) {
                have->value = kv->value;
                found = true;
            }
        }
        if (!found) {
            kiln__kv_t *copy = kiln__enc_new_msg(e, sizeof(*copy), kv);
            if (copy == NULL || !kiln__vec_push(&e->tmp, &en->desc, copy)) {
                return kiln__enc_oom(e);
            }
        }
    }
    if (op->export_cache >= 0) {
        en->export_cache = op->export_cache;
    }
    if (op->pg_id != NULL) {
        en->pg_id = op->pg_id;
        en->pg_name = op->pg_name;
        en->pg_weak = op->pg_weak;
    }
    for (size_t i = 0; i < caps->n; i++) {
        kiln__caps_add(&en->caps, caps->v[i]);
    }
    return 0;
}

static int encode_body(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                       kiln__caps_t *caps)
{
    switch (op->kind) {
    case KILN_LLB_SOURCE:
        return kiln__llb_encode_source(e, op, pop, caps);
    case KILN_LLB_EXEC:
        return kiln__llb_encode_exec(e, op, pop, caps);
    case KILN_LLB_FILE:
        return kiln__llb_encode_file(e, op, pop, caps);
    case KILN_LLB_MERGE:
        return encode_merge(e, op, pop, caps);
    default:
        return encode_diff(e, op, pop, caps);
    }
}

/* Serializes a pb.Op into the marshal arena and digests it. */
static int serialize(kiln__enc_t *e, Pb__Op *pop, ProtobufCBinaryData *out,
                     char digest[KILN_DIGEST_STRLEN + 1])
{
    kiln__buf_t buf = KILN_BUF_INIT;
    int rc = kiln__pb_encode(&pop->base, e->b->order, &buf);

    if (rc == 0) {
        out->len = buf.len;
        out->data = kiln__arena_dup(&e->tmp, buf.data, buf.len);
        rc = out->data != NULL || buf.len == 0 ? 0 : KILN_ENOMEM;
    }
    if (rc == 0) {
        rc = kiln__sha256_digest(buf.data, buf.len, digest);
    }
    kiln__buf_free(&buf);
    return rc < 0 ? kiln__enc_oom(e) : 0;
}

/* Encodes an op whose inputs are encoded, and records it. */
static int emit_op(walk_t *w, kiln__op_t *op)
{
    kiln__enc_t *e = w->e;
    Pb__Op *pop = KILN_ENC_NEW(e, Pb__Op, PB__OP__INIT);
    kiln__caps_t caps = {0};
    ProtobufCBinaryData bytes;
    entry_t *en;
    int rc;

    if (pop == NULL) {
        return KILN_ENOMEM;
    }
    rc = encode_body(e, op, pop, &caps);
    if (rc == 0) {
        rc = serialize(e, pop, &bytes, op->mark.digest);
    }
    if (rc < 0) {
        return rc;
    }
    en = find_entry(w, op->mark.digest);
    if (en == NULL) {
        en = kiln__enc_alloc(e, sizeof(*en));
        if (en == NULL) {
            return KILN_ENOMEM;
        }
        en->digest = op->mark.digest;
        en->bytes = bytes;
        en->export_cache = -1;
        rc = add_entry(w, en);
    }
    return rc == 0 ? merge_meta(e, en, op, &caps) : rc;
}

typedef struct frame {
    kiln__op_t *op;
    kiln__vec_t inputs; /* kiln_llb_state_t * */
    size_t next;
} frame_t;

static int push_frame(walk_t *w, frame_t **stack, size_t *sp, size_t *cap,
                      kiln__op_t *op)
{
    frame_t *f;

    if (*sp == *cap) {
        size_t n = *cap ? *cap * 2 : 64;
        frame_t *s = realloc(*stack, n * sizeof(*s));
        if (s == NULL) {
            return kiln__enc_oom(w->e);
        }
        *stack = s;
        *cap = n;
    }
    f = &(*stack)[(*sp)++];
    memset(f, 0, sizeof(*f));
    f->op = op;
    op->mark.gen = w->e->b->gen;
    op->mark.visit = 1;
    return kiln__llb_op_inputs(w->e, op, &f->inputs);
}

/* Go's marshal(): inputs first (in Inputs() order), then the op. An
 * explicit stack keeps long chains off the C stack. */
static int walk_ops(walk_t *w, kiln__op_t *root)
{
    unsigned gen = w->e->b->gen;
    frame_t *stack = NULL;
    size_t sp = 0, cap = 0;
    int rc = push_frame(w, &stack, &sp, &cap, root);

    while (rc == 0 && sp > 0) {
        frame_t *f = &stack[sp - 1];
        kiln__op_t *child;

        if (f->next == f->inputs.n) {
            rc = emit_op(w, f->op);
            f->op->mark.visit = 2;
            sp--;
            continue;
        }
        child = ((kiln_llb_state_t *)f->inputs.v[f->next++])->op;
        if (child->mark.gen == gen && child->mark.visit == 2) {
            continue;
        }
        if (child->mark.gen == gen) {
            rc = kiln__fail(w->e->err, KILN_EINVAL,
                            "kiln_llb_marshal: the graph has a cycle: an op "
                            "uses its own output, directly or through "
                            "other ops");
            break;
        }
        rc = push_frame(w, &stack, &sp, &cap, child);
    }
    free(stack);
    return rc;
}

/* ---- the definition ---- */

/* The terminal op: only the result as input. Its caps say what the
 * definition as a whole needs. */
static int terminal(walk_t *w, kiln_llb_state_t *res, entry_t **out)
{
    kiln__enc_t *e = w->e;
    Pb__Op pop = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *ins[1] = {&in};
    entry_t *en = kiln__enc_alloc(e, sizeof(*en));
    char *digest = kiln__enc_alloc(e, KILN_DIGEST_STRLEN + 1);
    int rc;

    if (en == NULL || digest == NULL) {
        return KILN_ENOMEM;
    }
    in.digest = res->op->mark.digest;
    in.index = kiln__llb_output_index(res);
    pop.n_inputs = 1;
    pop.inputs = ins;
    rc = serialize(e, &pop, &en->bytes, digest);
    if (rc < 0) {
        return rc;
    }
    en->digest = digest;
    en->export_cache = -1;
    kiln__caps_add(&en->caps, "constraints");
    kiln__caps_add(&en->caps, "platform");
    for (size_t i = 0; i < w->entries.n; i++) {
        const entry_t *o = w->entries.v[i];
        if (o->ignore_cache) {
            kiln__caps_add(&en->caps, "meta.ignorecache");
        }
        if (o->desc.n > 0) {
            kiln__caps_add(&en->caps, "meta.description");
        }
        if (o->export_cache >= 0) {
            kiln__caps_add(&en->caps, "meta.exportcache");
        }
    }
    *out = en;
    return 0;
}

static int meta_maps(kiln__enc_t *e, const entry_t *en, Pb__OpMetadata *md)
{
    md->description =
        kiln__enc_alloc(e, (en->desc.n + 1) * sizeof(*md->description));
    md->caps = kiln__enc_alloc(e, (en->caps.n + 1) * sizeof(*md->caps));
    if (md->description == NULL || md->caps == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < en->desc.n; i++) {
        const kiln__kv_t *kv = en->desc.v[i];
        Pb__OpMetadata__DescriptionEntry *d =
            KILN_ENC_NEW(e, Pb__OpMetadata__DescriptionEntry,
                         PB__OP_METADATA__DESCRIPTION_ENTRY__INIT);
        if (d == NULL) {
            return KILN_ENOMEM;
        }
        d->key = (char *)kv->key;
        d->value = (char *)kv->value;
        md->description[md->n_description++] = d;
    }
    for (size_t i = 0; i < en->caps.n; i++) {
        Pb__OpMetadata__CapsEntry *c = KILN_ENC_NEW(
            e, Pb__OpMetadata__CapsEntry, PB__OP_METADATA__CAPS_ENTRY__INIT);
        if (c == NULL) {
            return KILN_ENOMEM;
        }
        c->key = (char *)en->caps.v[i];
        c->value = 1;
        md->caps[md->n_caps++] = c;
    }
    return 0;
}

static Pb__OpMetadata *meta_msg(kiln__enc_t *e, const entry_t *en)
{
    Pb__OpMetadata *md = KILN_ENC_NEW(e, Pb__OpMetadata, PB__OP_METADATA__INIT);

    if (md == NULL || meta_maps(e, en, md) < 0) {
        return NULL;
    }
    md->ignore_cache = en->ignore_cache;
    if (en->export_cache >= 0) {
        md->export_cache =
            KILN_ENC_NEW(e, Pb__ExportCache, PB__EXPORT_CACHE__INIT);
        if (md->export_cache == NULL) {
            return NULL;
        }
        md->export_cache->value = en->export_cache != 0;
    }
    if (en->pg_id != NULL) {
        md->progress_group =
            KILN_ENC_NEW(e, Pb__ProgressGroup, PB__PROGRESS_GROUP__INIT);
        if (md->progress_group == NULL) {
            return NULL;
        }
        md->progress_group->id = (char *)en->pg_id;
        md->progress_group->name = (char *)en->pg_name;
        md->progress_group->weak = en->pg_weak;
    }
    return md;
}

/* Definition.def, .metadata (one entry per op and the terminal) and
 * .Source (an empty location list per op, as the Go client writes). */
static int assemble(walk_t *w, entry_t *term, Pb__Definition *def)
{
    kiln__enc_t *e = w->e;
    size_t n = w->entries.n;
    Pb__Source *src = KILN_ENC_NEW(e, Pb__Source, PB__SOURCE__INIT);
    Pb__Locations *empty = KILN_ENC_NEW(e, Pb__Locations, PB__LOCATIONS__INIT);

    def->def = kiln__enc_alloc(e, (n + 1) * sizeof(*def->def));
    def->metadata = kiln__enc_alloc(e, (n + 1) * sizeof(*def->metadata));
    if (src == NULL || empty == NULL || def->def == NULL ||
        def->metadata == NULL ||
        (src->locations =
             kiln__enc_alloc(e, (n + 1) * sizeof(*src->locations))) == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i <= n; i++) {
        const entry_t *en = i < n ? w->entries.v[i] : term;
        Pb__Definition__MetadataEntry *me =
            KILN_ENC_NEW(e, Pb__Definition__MetadataEntry,
                         PB__DEFINITION__METADATA_ENTRY__INIT);
        if (me == NULL || (me->value = meta_msg(e, en)) == NULL) {
            return KILN_ENOMEM;
        }
        me->key = (char *)en->digest;
        def->def[def->n_def++] = en->bytes;
        def->metadata[def->n_metadata++] = me;
        if (i < n) {
            Pb__Source__LocationsEntry *le =
                KILN_ENC_NEW(e, Pb__Source__LocationsEntry,
                             PB__SOURCE__LOCATIONS_ENTRY__INIT);
            if (le == NULL) {
                return KILN_ENOMEM;
            }
            le->key = (char *)en->digest;
            le->value = empty;
            src->locations[src->n_locations++] = le;
        }
    }
    def->source = src;
    return 0;
}

/* Marshals into `out`; the definition of `res`, whose op is not NULL. */
static int marshal_graph(kiln__enc_t *e, kiln_llb_state_t *res,
                         kiln__buf_t *out)
{
    walk_t w = {e, {0}, NULL, 63};
    Pb__Definition def = PB__DEFINITION__INIT;
    entry_t *term = NULL;
    int rc;

    w.table = calloc(w.mask + 1, sizeof(*w.table));
    if (w.table == NULL) {
        return kiln__enc_oom(e);
    }
    rc = walk_ops(&w, res->op);
    if (rc == 0) {
        rc = terminal(&w, res, &term);
    }
    if (rc == 0) {
        rc = assemble(&w, term, &def);
    }
    if (rc == 0) {
        rc = kiln__pb_encode(&def.base, e->b->order, out);
    }
    free(w.table);
    /* Encoders record their own messages; the protobuf encoder only fails
     * for memory. */
    return rc == KILN_ENOMEM ? kiln__enc_oom(e) : rc;
}

static int marshal_buf(kiln_llb_t *b, kiln_llb_state_t *result,
                       kiln__buf_t *out, kiln_error_t *err)
{
    kiln__enc_t e = {b, {NULL}, err};
    kiln_llb_state_t *res;
    int rc;

    if (b == NULL) {
        return kiln__fail(err, KILN_EINVAL, "kiln_llb_marshal: no builder");
    }
    if (b->err.code != 0) {
        if (err != NULL) {
            *err = b->err;
        }
        return b->err.code;
    }
    if (result == NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "kiln_llb_marshal: the result state is NULL");
    }
    if (result->b != b) {
        return kiln__fail(err, KILN_EINVAL,
                          "kiln_llb_marshal: the result state belongs to "
                          "another builder");
    }
    res = kiln__llb_resolve(result);
    if (res->op == NULL) {
        return 0; /* scratch: an empty definition */
    }
    /* A new generation invalidates every op's marks of earlier calls. */
    b->gen++;
    rc = marshal_graph(&e, res, out);
    kiln__arena_free(&e.tmp);
    return rc;
}

int kiln_llb_marshal(kiln_llb_t *b, kiln_llb_state_t *result, uint8_t **out,
                     size_t *len, kiln_error_t *err)
{
    kiln__buf_t buf = KILN_BUF_INIT;
    int rc;

    *out = NULL;
    *len = 0;
    rc = marshal_buf(b, result, &buf, err);
    if (rc == 0 && !kiln__buf_reserve(&buf, 0)) {
        rc = kiln__fail(err, KILN_ENOMEM, "kiln_llb_marshal: out of memory");
    }
    if (rc < 0) {
        kiln__buf_free(&buf);
        return rc;
    }
    /* buf.data is malloc'ed and never NULL after a successful reserve. */
    *out = buf.data;
    *len = buf.len;
    return 0;
}

int kiln_llb_write(kiln_llb_t *b, kiln_llb_state_t *result, FILE *fp,
                   kiln_error_t *err)
{
    kiln__buf_t buf = KILN_BUF_INIT;
    int rc = marshal_buf(b, result, &buf, err);

    if (rc == 0 &&
        ((buf.len > 0 && fwrite(buf.data, 1, buf.len, fp) != buf.len) ||
         fflush(fp) != 0)) {
        rc = kiln__fail(err, KILN_EIO, "kiln_llb_write: %s", strerror(errno));
    }
    kiln__buf_free(&buf);
    return rc;
}

int kiln_llb_write_fd(kiln_llb_t *b, kiln_llb_state_t *result, int fd,
                      kiln_error_t *err)
{
    kiln__buf_t buf = KILN_BUF_INIT;
    int rc = marshal_buf(b, result, &buf, err);
    size_t done = 0;

    while (rc == 0 && done < buf.len) {
        ssize_t n = write(fd, buf.data + done, buf.len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = kiln__fail(err, KILN_EIO, "kiln_llb_write_fd: %s",
                            n < 0 ? strerror(errno) : "short write");
            break;
        }
        done += (size_t)n;
    }
    kiln__buf_free(&buf);
    return rc;
}
