/*
 * Fixtures and checks for test_solver_cachemap.c (its only includer: each
 * unit test is one translation unit in tests/meson.build). Everything is
 * static.
 */
#ifndef KILN_TEST_CACHEMAP_FIXTURES_H
#define KILN_TEST_CACHEMAP_FIXTURES_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver/cachemap.h"
#include "util/gojson.h"
#include "util/gopath.h"
#include "testutil.h"

static Pb__Platform amd64 = PB__PLATFORM__INIT;

static void set_amd64(Pb__Platform *p)
{
    p->os = "linux";
    p->architecture = "amd64";
}

static kiln__cachemap_t *cm_of(const Pb__Op *op, enum kiln__cm_compat c)
{
    kiln_error_t err = {0};
    kiln__cachemap_t *cm = NULL;

    set_amd64(&amd64);
    if (kiln__cachemap_compute(op, &amd64, c, &cm, &err) != 0) {
        fail_msg("cache map: %s", err.message);
    }
    return cm;
}

static void assert_digest_of(const char *s, size_t len, const char *want)
{
    char got[KILN_DIGEST_STRLEN + 1];

    assert_int_equal(kiln__sha256_digest(s, len, got), 0);
    assert_string_equal(got, want);
}

static void digest_of_str(const char *s, size_t len,
                          char out[KILN_DIGEST_STRLEN + 1])
{
    assert_int_equal(kiln__sha256_digest(s, len, out), 0);
}

/* ---- fixtures ------------------------------------------------------------ */

/* An exec op shaped like cache.md's worked example: root mount of input 0,
 * read-only input 1 at /src. Callers adjust fields before use. */
typedef struct exec_fx {
    Pb__Op op;
    Pb__ExecOp exec;
    Pb__Meta meta;
    char *args[3];
    Pb__Mount m[4];
    Pb__Mount *mp[4];
    Pb__Input in[2];
    Pb__Input *inp[2];
    Pb__Platform plat;
} exec_fx_t;

static void exec_fx(exec_fx_t *f)
{
    static const Pb__Op op0 = PB__OP__INIT;
    static const Pb__ExecOp exec0 = PB__EXEC_OP__INIT;
    static const Pb__Meta meta0 = PB__META__INIT;
    static const Pb__Mount m0 = PB__MOUNT__INIT;
    static const Pb__Input in0 = PB__INPUT__INIT;
    static const Pb__Platform p0 = PB__PLATFORM__INIT;

    f->op = op0;
    f->exec = exec0;
    f->meta = meta0;
    f->plat = p0;
    set_amd64(&f->plat);
    f->args[0] = "/bin/sh";
    f->args[1] = "-c";
    f->args[2] = "echo a>b && true";
    f->meta.n_args = 3;
    f->meta.args = f->args;
    f->meta.cwd = "/";
    f->meta.removemountstubsrecursive = 1;
    for (int i = 0; i < 4; i++) {
        f->m[i] = m0;
        f->mp[i] = &f->m[i];
    }
    f->m[0].input = 0;
    f->m[0].dest = "/";
    f->m[0].output = 0;
    f->m[1].input = 1;
    f->m[1].dest = "/src";
    f->m[1].output = -1;
    f->m[1].readonly = 1;
    for (int i = 0; i < 2; i++) {
        f->in[i] = in0;
        f->inp[i] = &f->in[i];
    }
    f->exec.meta = &f->meta;
    f->exec.n_mounts = 2;
    f->exec.mounts = f->mp;
    f->op.n_inputs = 2;
    f->op.inputs = f->inp;
    f->op.op_case = PB__OP__OP_EXEC;
    f->op.exec = &f->exec;
    f->op.platform = &f->plat;
}

static void assert_json(const kiln__cachemap_t *cm, const char *want)
{
    assert_string_equal(cm->json, want);
    assert_int_equal(cm->json_len, strlen(want));
    assert_digest_of(want, strlen(want), cm->digest);
}

/* ---- checks against BuildKit v0.11.6 cache exports ----------------------- */

static json_t *load_json(const char *rel)
{
    size_t len;
    uint8_t *data = kt_read_data(rel, &len);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, len, 0, &jerr);

    if (j == NULL) {
        fail_msg("%s: %s", rel, jerr.text);
    }
    free(data);
    return j;
}

static json_t *load_blob(const char *name, const char *digest)
{
    char rel[256];

    assert_int_equal(strncmp(digest, "sha256:", 7), 0);
    snprintf(rel, sizeof(rel), "buildkit-cache/%s/blobs/sha256/%s", name,
             digest + 7);
    return load_json(rel);
}

/* index.json -> OCI index -> the cacheconfig.v0 descriptor -> config. */
static json_t *load_cache_config(const char *name)
{
    char rel[256];
    json_t *index, *manifest, *config = NULL;
    size_t i;
    json_t *desc;

    snprintf(rel, sizeof(rel), "buildkit-cache/%s/index.json", name);
    index = load_json(rel);
    manifest = load_blob(
        name,
        json_string_value(json_object_get(
            json_array_get(json_object_get(index, "manifests"), 0), "digest")));
    json_array_foreach(json_object_get(manifest, "manifests"), i, desc)
    {
        const char *mt = json_string_value(json_object_get(desc, "mediaType"));
        if (strcmp(mt, "application/vnd.buildkit.cacheconfig.v0") == 0) {
            config = load_blob(
                name, json_string_value(json_object_get(desc, "digest")));
        }
    }
    assert_non_null(config);
    json_decref(manifest);
    json_decref(index);
    return config;
}

static json_t *find_record(json_t *records, const char *digest)
{
    size_t i;
    json_t *r;

    json_array_foreach(records, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "digest")), digest) ==
            0) {
            return r;
        }
    }
    return NULL;
}

static const char *record_digest_at(json_t *records, json_t *link)
{
    json_t *r = json_array_get(
        records, (size_t)json_integer_value(json_object_get(link, "link")));

    assert_non_null(r);
    return json_string_value(json_object_get(r, "digest"));
}

static bool is_recorded_kind(const kiln__vertex_t *v)
{
    return v->kind == KILN_OP_EXEC || v->kind == KILN_OP_FILE;
}

static void record_of(const kiln__vertex_t *v, int64_t output,
                      char out[KILN_DIGEST_STRLEN + 1])
{
    kiln__cachemap_t *cm;
    kiln_error_t err = {0};

    if (kiln__cachemap_vertex(v, &amd64, KILN_CM_V0_11, &cm, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(
        kiln__cachemap_record_digest(cm->digest, output, KILN_CM_V0_11, out),
        0);
    kiln__cachemap_free(cm);
}

/* The links of input i of a record agree with the dep: a link with the
 * dep's selector (if any), a selector-less one exactly when a content key
 * exists, and the input op's own record among the links. */
static void check_input_links(json_t *records, json_t *links,
                              const kiln__vertex_t *v, size_t i,
                              const kiln__cm_dep_t *dep)
{
    bool has_plain = false, has_sel = false, has_input = false;
    const kiln__vertex_t *w = v->inputs[i];
    char want[KILN_DIGEST_STRLEN + 1] = "";
    size_t k;
    json_t *link;

    if (is_recorded_kind(w)) {
        record_of(w, v->op->inputs[i]->index, want);
    }
    json_array_foreach(links, k, link)
    {
        const char *sel = json_string_value(json_object_get(link, "selector"));
        if (sel != NULL) {
            assert_string_equal(sel, dep->selector);
            has_sel = true;
        } else {
            has_plain = true;
        }
        if (strcmp(record_digest_at(records, link), want) == 0 &&
            strcmp(sel ? sel : "", dep->selector) == 0) {
            has_input = true;
        }
    }
    if (dep->selector[0] != 0) {
        assert_true(has_sel);
        assert_true(has_plain == dep->content);
    } else {
        assert_false(has_sel);
    }
    if (want[0] != 0) {
        assert_true(has_input);
    }
}

static void check_record(json_t *records, json_t *rec, const kiln__vertex_t *v)
{
    json_t *inputs = json_object_get(rec, "inputs");
    kiln__cachemap_t *cm;
    kiln_error_t err = {0};

    assert_int_equal(kiln__cachemap_vertex(v, &amd64, KILN_CM_V0_11, &cm, &err),
                     0);
    assert_int_equal(json_array_size(inputs), cm->n_deps);
    for (size_t i = 0; i < cm->n_deps; i++) {
        check_input_links(records, json_array_get(inputs, i), v, i,
                          &cm->deps[i]);
    }
    kiln__cachemap_free(cm);
}

/*
 * Every exec/file output another op uses has its record in BuildKit's
 * export, with matching input links. Returns how many were checked.
 */
static size_t check_vector(const char *name, kiln_definition_t *def)
{
    json_t *config = load_cache_config(name);
    json_t *records = json_object_get(config, "records");
    size_t checked = 0;

    for (size_t u = 0; u < def->n_vertices; u++) {
        const kiln__vertex_t *user = &def->vertices[u];
        for (size_t j = 0; j < user->op->n_inputs; j++) {
            const kiln__vertex_t *v = user->inputs[j];
            char rd[KILN_DIGEST_STRLEN + 1];
            json_t *rec;

            if (!is_recorded_kind(v)) {
                continue;
            }
            record_of(v, user->op->inputs[j]->index, rd);
            rec = find_record(records, rd);
            if (rec == NULL) {
                fail_msg("%s: record %s of %s output %lld not exported", name,
                         rd, v->digest, (long long)user->op->inputs[j]->index);
            }
            check_record(records, rec, v);
            checked++;
        }
    }
    json_decref(config);
    return checked;
}

static kiln_definition_t *load_vector(const char *name)
{
    char rel[128];
    size_t len;
    uint8_t *pb;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};

    snprintf(rel, sizeof(rel), "llb/%s.pb", name);
    pb = kt_read_data(rel, &len);
    if (kiln_definition_load(pb, len, &err, &def) != 0) {
        fail_msg("%s: %s", name, err.message);
    }
    free(pb);
    return def;
}

static void assert_record(kiln_definition_t *def, const char *op_digest,
                          int64_t output, const char *want)
{
    char rd[KILN_DIGEST_STRLEN + 1];
    kiln__vertex_t *v = kiln__definition_find(def, op_digest);

    assert_non_null(v);
    record_of(v, output, rd);
    assert_string_equal(rd, want);
}

/* ---- file-op fixture ----------------------------------------------------- */

typedef struct file_fx {
    Pb__Op op;
    Pb__FileOp file;
    Pb__FileAction a[3];
    Pb__FileAction *ap[3];
    Pb__FileActionCopy copy;
    Pb__FileActionMkDir mkdir;
    Pb__FileActionMkFile mkfile;
    Pb__Input in[2];
    Pb__Input *inp[2];
} file_fx_t;

/* A copy of "/etc/foo/bar.txt" from input 1 onto input 0. */
static void file_fx(file_fx_t *f)
{
    static const Pb__Op op0 = PB__OP__INIT;
    static const Pb__FileOp file0 = PB__FILE_OP__INIT;
    static const Pb__FileAction a0 = PB__FILE_ACTION__INIT;
    static const Pb__FileActionCopy copy0 = PB__FILE_ACTION_COPY__INIT;
    static const Pb__FileActionMkDir mkdir0 = PB__FILE_ACTION_MK_DIR__INIT;
    static const Pb__FileActionMkFile mkfile0 = PB__FILE_ACTION_MK_FILE__INIT;
    static const Pb__Input in0 = PB__INPUT__INIT;

    f->op = op0;
    f->file = file0;
    f->copy = copy0;
    f->mkdir = mkdir0;
    f->mkfile = mkfile0;
    for (int i = 0; i < 3; i++) {
        f->a[i] = a0;
        f->ap[i] = &f->a[i];
    }
    for (int i = 0; i < 2; i++) {
        f->in[i] = in0;
        f->inp[i] = &f->in[i];
    }
    f->copy.src = "/etc/foo/bar.txt";
    f->copy.dest = "/x";
    f->copy.mode = -1;
    f->copy.timestamp = -1;
    f->mkdir.path = "/d";
    f->mkdir.mode = 0755;
    f->mkdir.timestamp = -1;
    f->mkfile.path = "/f";
    f->mkfile.mode = 0644;
    f->mkfile.timestamp = -1;
    f->a[0].input = 0;
    f->a[0].secondaryinput = 1;
    f->a[0].output = 0;
    f->a[0].action_case = PB__FILE_ACTION__ACTION_COPY;
    f->a[0].copy = &f->copy;
    f->file.n_actions = 1;
    f->file.actions = f->ap;
    f->op.n_inputs = 2;
    f->op.inputs = f->inp;
    f->op.op_case = PB__OP__OP_FILE;
    f->op.file = &f->file;
}

static size_t b64_decode(const char *s, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    size_t n = 0;
    int bits = 0;

    for (; *s && *s != '='; s++) {
        acc = (acc << 6) | (uint32_t)(strchr(abc, *s) - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = 0;
    return n;
}

/* Action i of a file cache map, decoded from its base64. */
static void assert_action(const kiln__cachemap_t *cm, size_t i,
                          const char *want)
{
    json_error_t jerr;
    json_t *j = json_loads(cm->json, 0, &jerr);
    char buf[1024];

    assert_non_null(j);
    b64_decode(
        json_string_value(json_array_get(json_object_get(j, "Actions"), i)),
        buf);
    assert_string_equal(buf, want);
    json_decref(j);
}

static void escape_is(const char *in, size_t len, unsigned flags,
                      const char *want)
{
    kiln__buf_t b = KILN_BUF_INIT;

    kiln__gojson_escape(&b, in, len, flags);
    assert_true(kiln__buf_ok(&b));
    assert_string_equal((const char *)b.data, want);
    kiln__buf_free(&b);
}

static void path_is(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* A mkfile on input 0 owned by user "app" (by name, /etc/passwd of input
 * 1) and group 5. */
typedef struct owner_fx {
    file_fx_t f;
    Pb__ChownOpt own;
    Pb__UserOpt user;
    Pb__UserOpt group;
    Pb__NamedUserOpt uname;
} owner_fx_t;

static void owner_fx(owner_fx_t *o)
{
    static const Pb__ChownOpt own0 = PB__CHOWN_OPT__INIT;
    static const Pb__UserOpt user0 = PB__USER_OPT__INIT;
    static const Pb__NamedUserOpt name0 = PB__NAMED_USER_OPT__INIT;

    file_fx(&o->f);
    o->own = own0;
    o->user = user0;
    o->group = user0;
    o->uname = name0;
    o->f.a[0].secondaryinput = -1;
    o->f.a[0].action_case = PB__FILE_ACTION__ACTION_MKFILE;
    o->f.a[0].mkfile = &o->f.mkfile;
    o->f.mkfile.owner = &o->own;
    o->own.user = &o->user;
    o->own.group = &o->group;
    o->uname.name = "app";
    o->uname.input = 1;
    o->user.user_case = PB__USER_OPT__USER_BY_NAME;
    o->user.byname = &o->uname;
    o->group.user_case = PB__USER_OPT__USER_BY_ID;
    o->group.byid = 5;
}

#endif
