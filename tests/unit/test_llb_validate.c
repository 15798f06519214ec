/*
 * Every validation error of kiln_definition_load(): each test builds a bad
 * definition, loads it through the public entry point and checks the code
 * and that the message names what is wrong and where.
 */
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbenc.h"
#include "testutil.h"

/* A definition under construction: encoded ops and metadata entries. */
struct def_builder {
    ProtobufCBinaryData ops[16];
    size_t n_ops;
    Pb__Definition__MetadataEntry *md[16];
    size_t n_md;
};

static void add_op(struct def_builder *d, const Pb__Op *op,
                   char digest[KILN_DIGEST_STRLEN + 1])
{
    kiln__buf_t b = KILN_BUF_INIT;

    assert_int_equal(kiln__pb_encode(&op->base, KILN_PB_ORDER_CURRENT, &b), 0);
    kiln__buf_reserve(&b, 0);
    if (digest != NULL) {
        kiln__sha256_digest(b.data, b.len, digest);
    }
    d->ops[d->n_ops].data = b.data;
    d->ops[d->n_ops].len = b.len;
    d->n_ops++;
}

static void add_meta(struct def_builder *d, const char *key, Pb__OpMetadata *md)
{
    Pb__Definition__MetadataEntry *e = malloc(sizeof(*e));

    pb__definition__metadata_entry__init(e);
    e->key = (char *)key;
    e->value = md;
    d->md[d->n_md++] = e;
}

/* Loads the definition; returns the code, message in *err. */
static int load(struct def_builder *d, kiln_error_t *err)
{
    Pb__Definition def = PB__DEFINITION__INIT;
    kiln__buf_t b = KILN_BUF_INIT;
    kiln_definition_t *out = NULL;
    int rc;

    def.n_def = d->n_ops;
    def.def = d->ops;
    def.n_metadata = d->n_md;
    def.metadata = d->md;
    assert_int_equal(kiln__pb_encode(&def.base, KILN_PB_ORDER_CURRENT, &b), 0);
    memset(err, 0, sizeof(*err));
    rc = kiln_definition_load(b.data, b.len, err, &out);
    if (rc == 0) {
        assert_non_null(out);
    } else {
        assert_null(out);
        assert_int_equal(err->code, rc);
    }
    kiln_definition_free(out);
    kiln__buf_free(&b);
    for (size_t i = 0; i < d->n_ops; i++) {
        free(d->ops[i].data);
    }
    for (size_t i = 0; i < d->n_md; i++) {
        free(d->md[i]);
    }
    return rc;
}

static void assert_contains(const char *msg, const char *part)
{
    if (strstr(msg, part) == NULL) {
        fail_msg("message \"%s\" does not contain \"%s\"", msg, part);
    }
}

/* A source op; identifier `id`. */
static void make_source(Pb__Op *op, Pb__SourceOp *src, const char *id)
{
    pb__op__init(op);
    pb__source_op__init(src);
    src->identifier = (char *)id;
    op->op_case = PB__OP__OP_SOURCE;
    op->source = src;
}

/* The terminal op pointing at digest:index. */
static void make_terminal(Pb__Op *op, Pb__Input *in, Pb__Input **slot,
                          const char *digest, int64_t index)
{
    pb__op__init(op);
    pb__input__init(in);
    in->digest = (char *)digest;
    in->index = index;
    *slot = in;
    op->n_inputs = 1;
    op->inputs = slot;
}

static void test_valid_minimal(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, dg, 0);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), 0);
}

static void test_not_protobuf(void **state)
{
    static const char text[] = "this is not a definition\n";
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};

    assert_int_equal(kiln_definition_load(text, strlen(text), &err, &def),
                     KILN_EBADMSG);
    assert_null(def);
    assert_contains(err.message, "not a valid LLB definition");
    assert_contains(err.message, "byte");
}

/* Every truncation of a real definition fails cleanly (or is a valid
 * prefix, which protobuf allows only at field boundaries). */
static void test_truncated(void **state)
{
    size_t len;
    uint8_t *pb = kt_read_data("llb/e_run_file.pb", &len);
    size_t bad = 0;

    for (size_t cut = 1; cut < len; cut++) {
        kiln_definition_t *def = NULL;
        kiln_error_t err = {0};
        uint8_t *copy = malloc(cut);
        int rc;

        memcpy(copy, pb, cut);
        rc = kiln_definition_load(copy, cut, &err, &def);
        if (rc != 0) {
            assert_null(def);
            assert_true(rc == KILN_EBADMSG || rc == KILN_EINVAL);
            assert_true(strlen(err.message) > 0);
            bad++;
        }
        kiln_definition_free(def);
        free(copy);
    }
    /* Cutting inside the last op leaves a definition that cannot load. */
    assert_true(bad > len - 100);
    {
        kiln_definition_t *def = NULL;
        kiln_error_t err = {0};
        assert_int_equal(kiln_definition_load(pb, len - 3, &err, &def),
                         KILN_EBADMSG);
        assert_contains(err.message, "claims");
    }
    free(pb);
}

static void test_missing_input(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    char dg[KILN_DIGEST_STRLEN + 1];
    const char *absent = "sha256:00000000000000000000000000000000000000000000"
                         "00000000000000000000";
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, absent, 0);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "terminal op sha256:");
    assert_contains(err.message, "input 0 refers to sha256:0000");
    assert_contains(err.message, "not in the definition");
}

static void test_malformed_digest(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, "md5:1234", 0);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "malformed digest \"md5:1234\"");
}

static void test_output_out_of_range(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, dg, 1);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "uses output 1 of source op sha256:");
    assert_contains(err.message, "which has 1 output");

    memset(&d, 0, sizeof(d));
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, dg, -1);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "uses output -1");
}

static void test_no_terminal(void **state)
{
    struct def_builder d = {0};
    Pb__Op src;
    Pb__SourceOp s;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "no terminal op");
    assert_contains(err.message, dg);
}

static void test_two_terminals(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, src2, t1, t2;
    Pb__SourceOp s, s2;
    Pb__Input in1, in2, *slot1, *slot2;
    char dg[KILN_DIGEST_STRLEN + 1], dg2[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_source(&src2, &s2, "docker-image://docker.io/library/alpine:latest");
    add_op(&d, &src2, dg2);
    make_terminal(&t1, &in1, &slot1, dg, 0);
    add_op(&d, &t1, NULL);
    make_terminal(&t2, &in2, &slot2, dg2, 0);
    add_op(&d, &t2, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "more than one terminal op: op 2");
}

static void test_bodiless_op(void **state)
{
    struct def_builder d = {0};
    Pb__Op empty = PB__OP__INIT, src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    Pb__WorkerConstraints wc = PB__WORKER_CONSTRAINTS__INIT;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    empty.constraints = &wc; /* distinct from any terminal's bytes */
    add_op(&d, &empty, NULL);
    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, dg, 0);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "op 0 (sha256:");
    assert_contains(err.message, "has no op body");
}

static void test_terminal_shape(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, in2, *slots[2];
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slots[0], dg, 0);
    in2 = in;
    slots[1] = &in2;
    term.n_inputs = 2;
    term.inputs = slots;
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "has 2 inputs; it must have exactly one");
}

static void test_metadata_unknown_digest(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    Pb__OpMetadata md = PB__OP_METADATA__INIT;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "docker-image://docker.io/library/busybox:latest");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, dg, 0);
    add_op(&d, &term, NULL);
    add_meta(&d, "sha256:feedfeed", &md);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "metadata entry 0 is keyed by "
                                 "\"sha256:feedfeed\"");
}

/* Errors name the op by its custom name as well as its digest. */
static void test_error_names_custom_name(void **state)
{
    struct def_builder d = {0};
    Pb__Op ex = PB__OP__INIT, term;
    Pb__ExecOp e = PB__EXEC_OP__INIT;
    Pb__Meta meta = PB__META__INIT;
    Pb__Mount m = PB__MOUNT__INIT, *mounts[] = {&m};
    Pb__Input in, *slot;
    Pb__OpMetadata md = PB__OP_METADATA__INIT;
    Pb__OpMetadata__DescriptionEntry de =
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT;
    Pb__OpMetadata__DescriptionEntry *des[] = {&de};
    char *args[] = {"make"};
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    meta.n_args = 1;
    meta.args = args;
    m.input = 0; /* but the op has no inputs */
    m.dest = "/";
    e.meta = &meta;
    e.n_mounts = 1;
    e.mounts = mounts;
    ex.op_case = PB__OP__OP_EXEC;
    ex.exec = &e;
    add_op(&d, &ex, dg);
    make_terminal(&term, &in, &slot, dg, 0);
    add_op(&d, &term, NULL);
    de.key = "llb.customname";
    de.value = "RUN make";
    md.n_description = 1;
    md.description = des;
    add_meta(&d, dg, &md);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "exec op sha256:");
    assert_contains(err.message, "(\"RUN make\")");
    assert_contains(err.message, "mount 0 input is 0, but the op has 0 inputs");
}

/* Exec ops: meta, args, mounts, a root mount, output numbering. */
static void test_exec_shape(void **state)
{
    static const struct {
        int case_no;
        const char *want;
    } cases[] = {
        {0, "exec op has no meta"},      {1, "exec op has no arguments"},
        {2, "exec op has no mounts"},    {3, "exec op has no root mount"},
        {4, "has output 1, expected 0"},
    };

    for (size_t k = 0; k < KILN_ARRAY_SIZE(cases); k++) {
        struct def_builder d = {0};
        Pb__Op ex = PB__OP__INIT, term;
        Pb__ExecOp e = PB__EXEC_OP__INIT;
        Pb__Meta meta = PB__META__INIT;
        Pb__Mount m = PB__MOUNT__INIT, *mounts[] = {&m};
        Pb__Input in, *slot;
        char *args[] = {"true"};
        char dg[KILN_DIGEST_STRLEN + 1];
        kiln_error_t err;

        meta.n_args = cases[k].case_no == 1 ? 0 : 1;
        meta.args = args;
        m.input = -1;
        m.dest = cases[k].case_no == 3 ? "/work" : "/";
        m.output = cases[k].case_no == 4 ? 1 : 0;
        e.meta = cases[k].case_no == 0 ? NULL : &meta;
        e.n_mounts = cases[k].case_no == 2 ? 0 : 1;
        e.mounts = mounts;
        ex.op_case = PB__OP__OP_EXEC;
        ex.exec = &e;
        add_op(&d, &ex, dg);
        make_terminal(&term, &in, &slot, dg, 0);
        add_op(&d, &term, NULL);
        assert_int_equal(load(&d, &err), KILN_EINVAL);
        assert_contains(err.message, cases[k].want);
    }
}

/* Go leaves output 0 on secret and SSH mounts: only binds have outputs. */
static void test_exec_secret_mount_output(void **state)
{
    struct def_builder d = {0};
    Pb__Op ex = PB__OP__INIT, term;
    Pb__ExecOp e = PB__EXEC_OP__INIT;
    Pb__Meta meta = PB__META__INIT;
    Pb__Mount root = PB__MOUNT__INIT, sec = PB__MOUNT__INIT;
    Pb__Mount *mounts[] = {&root, &sec};
    Pb__SecretOpt so = PB__SECRET_OPT__INIT;
    Pb__Input in, *slot;
    char *args[] = {"true"};
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    meta.n_args = 1;
    meta.args = args;
    root.input = -1;
    root.dest = "/";
    sec.input = -1;
    sec.dest = "/run/secrets/token";
    sec.mounttype = PB__MOUNT_TYPE__SECRET;
    sec.secretopt = &so;
    so.id = "token";
    so.mode = 0400;
    e.meta = &meta;
    e.n_mounts = 2;
    e.mounts = mounts;
    ex.op_case = PB__OP__OP_EXEC;
    ex.exec = &e;
    add_op(&d, &ex, dg);
    make_terminal(&term, &in, &slot, dg, 0);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), 0);

    /* ...and the secret mount is not output 1. */
    memset(&d, 0, sizeof(d));
    add_op(&d, &ex, dg);
    make_terminal(&term, &in, &slot, dg, 1);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EINVAL);
    assert_contains(err.message, "which has 1 output");
}

/* File ops: at least one action; action inputs within range. */
static void test_file_shape(void **state)
{
    for (int k = 0; k < 3; k++) {
        struct def_builder d = {0};
        Pb__Op op = PB__OP__INIT, term;
        Pb__FileOp f = PB__FILE_OP__INIT;
        Pb__FileAction a = PB__FILE_ACTION__INIT, *acts[] = {&a};
        Pb__FileActionMkDir mk = PB__FILE_ACTION_MK_DIR__INIT;
        Pb__Input in, *slot;
        char dg[KILN_DIGEST_STRLEN + 1];
        kiln_error_t err;

        mk.path = "/x";
        a.input = k == 1 ? 1 : -1; /* 1: past 0 inputs + 0 actions */
        a.secondaryinput = -1;
        a.action_case = k == 2 ? PB__FILE_ACTION__ACTION__NOT_SET
                               : PB__FILE_ACTION__ACTION_MKDIR;
        a.mkdir = &mk;
        f.n_actions = k == 0 ? 0 : 1;
        f.actions = acts;
        op.op_case = PB__OP__OP_FILE;
        op.file = &f;
        add_op(&d, &op, dg);
        make_terminal(&term, &in, &slot, dg, 0);
        add_op(&d, &term, NULL);
        assert_int_equal(load(&d, &err), KILN_EINVAL);
        assert_contains(err.message,
                        k == 0   ? "file op has no actions"
                        : k == 1 ? "file action 0 input is 1, but the op has "
                                   "0 inputs"
                                 : "file action 0 has no action");
    }
}

static void test_diff_merge_source_shape(void **state)
{
    for (int k = 0; k < 4; k++) {
        struct def_builder d = {0};
        Pb__Op op = PB__OP__INIT, term;
        Pb__DiffOp diff = PB__DIFF_OP__INIT;
        Pb__LowerDiffInput lo = PB__LOWER_DIFF_INPUT__INIT;
        Pb__MergeOp merge = PB__MERGE_OP__INIT;
        Pb__SourceOp src = PB__SOURCE_OP__INIT;
        Pb__Input in, *slot;
        char dg[KILN_DIGEST_STRLEN + 1];
        kiln_error_t err;
        const char *want;

        if (k == 0) {
            diff.lower = &lo;
            op.op_case = PB__OP__OP_DIFF;
            op.diff = &diff;
            want = "diff op needs both lower and upper";
        } else if (k == 1) {
            op.op_case = PB__OP__OP_MERGE;
            op.merge = &merge;
            want = "merge op has no inputs";
        } else if (k == 2) {
            src.identifier = "";
            op.op_case = PB__OP__OP_SOURCE;
            op.source = &src;
            want = "source op has an empty identifier";
        } else {
            src.identifier = "busybox";
            op.op_case = PB__OP__OP_SOURCE;
            op.source = &src;
            want = "source identifier \"busybox\" has no scheme";
        }
        add_op(&d, &op, dg);
        make_terminal(&term, &in, &slot, dg, 0);
        add_op(&d, &term, NULL);
        assert_int_equal(load(&d, &err), KILN_EINVAL);
        assert_contains(err.message, want);
    }
}

static void test_invalid_utf8(void **state)
{
    struct def_builder d = {0};
    Pb__Op src, term;
    Pb__SourceOp s;
    Pb__Input in, *slot;
    char dg[KILN_DIGEST_STRLEN + 1];
    kiln_error_t err;

    make_source(&src, &s, "local://ctx\xff\xfe");
    add_op(&d, &src, dg);
    make_terminal(&term, &in, &slot, dg, 0);
    add_op(&d, &term, NULL);
    assert_int_equal(load(&d, &err), KILN_EBADMSG);
    assert_contains(err.message, "op 0 (sha256:");
    assert_contains(err.message, "field identifier is not valid UTF-8");
}

/* An embedded NUL would cut a C string short: refused. */
static void test_nul_in_string(void **state)
{
    static const char ident[] = "a://x\0y";
    kiln__buf_t src = KILN_BUF_INIT, op = KILN_BUF_INIT, def = KILN_BUF_INIT;
    kiln_definition_t *out = NULL;
    kiln_error_t err = {0};

    kiln__pb_put_bytes(&src, 1, ident, sizeof(ident) - 1);
    kiln__pb_put_bytes(&op, 3, src.data, src.len);
    kiln__pb_put_bytes(&def, 1, op.data, op.len);
    assert_int_equal(kiln_definition_load(def.data, def.len, &err, &out),
                     KILN_EBADMSG);
    assert_contains(err.message, "field identifier contains a NUL byte");
    kiln__buf_free(&src);
    kiln__buf_free(&op);
    kiln__buf_free(&def);
}

/* Absurd sizes: too many bytes, nesting too deep. */
static void test_limits(void **state)
{
    static const uint8_t small[4];
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    kiln__buf_t b = KILN_BUF_INIT;

    /* The size is refused before the buffer is read. */
    assert_int_equal(
        kiln_definition_load(small, KILN_DEFINITION_MAX_BYTES + 1u, &err, &def),
        KILN_E2BIG);
    assert_contains(err.message, "the limit is");

    /* Definition.Source.infos[0].definition, 40 levels deep. */
    for (int i = 0; i < 40; i++) {
        kiln__buf_t info = KILN_BUF_INIT, source = KILN_BUF_INIT;
        kiln__pb_put_bytes(&info, 3, b.data, b.len);         /* definition */
        kiln__pb_put_bytes(&source, 2, info.data, info.len); /* infos */
        kiln__buf_free(&b);
        kiln__pb_put_bytes(&b, 3, source.data, source.len); /* Source */
        kiln__buf_free(&info);
        kiln__buf_free(&source);
    }
    assert_int_equal(kiln_definition_load(b.data, b.len, &err, &def),
                     KILN_E2BIG);
    assert_contains(err.message, "nested more than");
    kiln__buf_free(&b);
}

/* Hand-wired cycle: the check the solver relies on. */
static void test_cycle(void **state)
{
    kiln_definition_t def = {0};
    kiln__vertex_t v[2] = {{0}};
    kiln__vertex_t *in0[] = {&v[1]}, *in1[] = {&v[0]};
    Pb__Op op0 = PB__OP__INIT, op1 = PB__OP__INIT;
    kiln_error_t err = {0};

    op0.n_inputs = 1;
    op1.n_inputs = 1;
    v[0].op = &op0;
    v[0].pos = 0;
    v[0].inputs = in0;
    v[0].kind = KILN_OP_FILE;
    strcpy(v[0].digest, "sha256:aaaa");
    v[1].op = &op1;
    v[1].pos = 1;
    v[1].inputs = in1;
    v[1].kind = KILN_OP_FILE;
    strcpy(v[1].digest, "sha256:bbbb");
    def.vertices = v;
    def.n_vertices = 2;
    assert_int_equal(kiln__graph_check_acyclic(&def, &err), KILN_EINVAL);
    assert_contains(err.message, "cycle through sha256:");

    in1[0] = &v[1]; /* now 1 -> 1 only: still a cycle */
    assert_int_equal(kiln__graph_check_acyclic(&def, &err), KILN_EINVAL);
    op1.n_inputs = 0;
    assert_int_equal(kiln__graph_check_acyclic(&def, &err), 0);
}

static void test_load_file_errors(void **state)
{
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};

    assert_int_equal(
        kiln_definition_load_file("/nonexistent/kiln.pb", &err, &def),
        KILN_ENOENT);
    assert_contains(err.message, "/nonexistent/kiln.pb");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_minimal),
        cmocka_unit_test(test_not_protobuf),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing_input),
        cmocka_unit_test(test_malformed_digest),
        cmocka_unit_test(test_output_out_of_range),
        cmocka_unit_test(test_no_terminal),
        cmocka_unit_test(test_two_terminals),
        cmocka_unit_test(test_bodiless_op),
        cmocka_unit_test(test_terminal_shape),
        cmocka_unit_test(test_metadata_unknown_digest),
        cmocka_unit_test(test_error_names_custom_name),
        cmocka_unit_test(test_exec_shape),
        cmocka_unit_test(test_exec_secret_mount_output),
        cmocka_unit_test(test_file_shape),
        cmocka_unit_test(test_diff_merge_source_shape),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_load_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
