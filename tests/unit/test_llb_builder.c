/*
 * The definition builder (include/kiln/llb.h): BuildKit's vectors rebuilt
 * in legacy mode, llb-wire.md's byte examples in current mode, and the
 * normalization, numbering and error rules.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/llb.h>

#include "llb/graph.h"
#include "testutil.h"

#define SHA(x) "sha256:" x

/* ---- helpers ---- */

static kiln_llb_t *new_builder(kiln_llb_encoding_t enc)
{
    kiln_llb_t *b = NULL;

    assert_int_equal(kiln_llb_new(enc, &b), 0);
    assert_int_equal(kiln_llb_set_platform(b, "linux", "amd64", NULL), 0);
    assert_int_equal(
        kiln_llb_set_local_unique_id(b, "llbgenfixeduniqueid000000"), 0);
    return b;
}

/* Marshals `st` and loads the result; fails the test on any error. */
static kiln_definition_t *marshal_load(kiln_llb_t *b, kiln_llb_state_t *st,
                                       uint8_t **bytes, size_t *len)
{
    kiln_error_t err = {0};
    kiln_definition_t *def = NULL;
    uint8_t *out = NULL;
    size_t n = 0;

    if (kiln_llb_marshal(b, st, &out, &n, &err) != 0) {
        fail_msg("marshal: %s", err.message);
    }
    assert_non_null(out);
    if (kiln_definition_load(out, n, &err, &def) != 0) {
        fail_msg("load: %s", err.message);
    }
    if (bytes != NULL) {
        *bytes = out;
        *len = n;
    } else {
        kiln_free(out);
    }
    return def;
}

/* The op the definition's result points at. */
static kiln__vertex_t *result_vertex(kiln_definition_t *def)
{
    const char *d = kiln_definition_result(def, NULL);

    assert_non_null(d);
    return kiln__definition_find(def, d);
}

/*
 * The first op of kind `kind` in a marshaled definition, decoded without
 * validation, with its metadata. For secret and SSH mounts: Go leaves their
 * `output` at 0 and BuildKit numbers only bind mounts, but
 * kiln_definition_load() still counts every mount with output >= 0.
 */
typedef struct raw_op {
    Pb__Definition *def;
    Pb__Op *op;
    const Pb__OpMetadata *meta;
} raw_op_t;

static void raw_find(kiln_llb_t *b, kiln_llb_state_t *st, Pb__Op__OpCase kind,
                     raw_op_t *r)
{
    uint8_t *bytes;
    size_t len;
    kiln_error_t err = {0};

    memset(r, 0, sizeof(*r));
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) != 0) {
        fail_msg("marshal: %s", err.message);
    }
    r->def = pb__definition__unpack(NULL, len, bytes);
    kiln_free(bytes);
    assert_non_null(r->def);
    for (size_t i = 0; i < r->def->n_def && r->op == NULL; i++) {
        char digest[KILN_DIGEST_STRLEN + 1];
        Pb__Op *op =
            pb__op__unpack(NULL, r->def->def[i].len, r->def->def[i].data);
        assert_non_null(op);
        if (op->op_case != kind) {
            pb__op__free_unpacked(op, NULL);
            continue;
        }
        r->op = op;
        kiln__sha256_digest(r->def->def[i].data, r->def->def[i].len, digest);
        for (size_t j = 0; j < r->def->n_metadata; j++) {
            if (strcmp(r->def->metadata[j]->key, digest) == 0) {
                r->meta = r->def->metadata[j]->value;
            }
        }
    }
    assert_non_null(r->op);
}

static void raw_free(raw_op_t *r)
{
    pb__op__free_unpacked(r->op, NULL);
    pb__definition__free_unpacked(r->def, NULL);
}

static bool map_has(const Pb__OpMetadata *md, const char *cap)
{
    for (size_t i = 0; md != NULL && i < md->n_caps; i++) {
        if (strcmp(md->caps[i]->key, cap) == 0 && md->caps[i]->value) {
            return true;
        }
    }
    return false;
}

static const char *attr(const Pb__SourceOp *so, const char *key)
{
    for (size_t i = 0; i < so->n_attrs; i++) {
        if (strcmp(so->attrs[i]->key, key) == 0) {
            return so->attrs[i]->value;
        }
    }
    return NULL;
}

/* Same caps and descriptions. */
static void assert_meta_equal(const char *what, const Pb__OpMetadata *got,
                              const Pb__OpMetadata *want)
{
    assert_non_null(got);
    assert_non_null(want);
    if (got->n_caps != want->n_caps) {
        fail_msg("%s: %zu caps, want %zu", what, got->n_caps, want->n_caps);
    }
    for (size_t i = 0; i < want->n_caps; i++) {
        if (!map_has(got, want->caps[i]->key)) {
            fail_msg("%s: missing cap %s", what, want->caps[i]->key);
        }
    }
    assert_int_equal(got->n_description, want->n_description);
    for (size_t i = 0; i < want->n_description; i++) {
        bool found = false;
        for (size_t j = 0; j < got->n_description; j++) {
            found |= strcmp(got->description[j]->key,
                            want->description[i]->key) == 0 &&
                     strcmp(got->description[j]->value,
                            want->description[i]->value) == 0;
        }
        assert_true(found);
    }
    assert_int_equal(got->ignore_cache, want->ignore_cache);
}

/*
 * Compares a rebuilt vector with tests/data/llb/<name>: the same set of op
 * digests, the same result, the same metadata per digest, the same op
 * digests as the .json lists; with `exact`, the same bytes.
 */
static void check_vector(const char *name, kiln_llb_t *b, kiln_llb_state_t *st,
                         bool exact)
{
    char rel[128];
    size_t want_len, json_len, got_len, n_lines;
    uint8_t *want, *json, *got;
    char **lines;
    kiln_definition_t *wdef = NULL, *gdef;

    snprintf(rel, sizeof(rel), "llb/%s.pb", name);
    want = kt_read_data(rel, &want_len);
    snprintf(rel, sizeof(rel), "llb/%s.json", name);
    json = kt_read_data(rel, &json_len);
    assert_int_equal(kiln_definition_load(want, want_len, NULL, &wdef), 0);
    gdef = marshal_load(b, st, &got, &got_len);

    assert_int_equal(kiln_definition_op_count(gdef),
                     kiln_definition_op_count(wdef));
    assert_string_equal(kiln_definition_result(gdef, NULL),
                        kiln_definition_result(wdef, NULL));
    for (size_t i = 0; i < kiln_definition_op_count(gdef); i++) {
        const char *d = kiln_definition_op_digest(gdef, i);
        kiln__vertex_t *w = kiln__definition_find(wdef, d);
        if (w == NULL) {
            fail_msg("%s: op %zu (%s) is not in the vector", name, i, d);
        }
        assert_meta_equal(d, kiln__definition_find(gdef, d)->meta, w->meta);
    }
    n_lines = kt_split_lines((char *)json, &lines);
    assert_int_equal(n_lines, kiln_definition_op_count(gdef));
    for (size_t i = 0; i < n_lines; i++) {
        json_t *obj = json_loads(lines[i], 0, NULL);
        assert_non_null(obj);
        assert_non_null(kiln__definition_find(
            gdef, json_string_value(json_object_get(obj, "Digest"))));
        json_decref(obj);
    }
    if (exact) {
        kt_assert_bytes_equal(got, got_len, want, want_len);
    }
    free(lines);
    free(json);
    free(want);
    kiln_free(got);
    kiln_definition_free(wdef);
    kiln_definition_free(gdef);
}

static const char *const *sh(const char *script)
{
    static const char *argv[4];

    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = script;
    argv[3] = NULL;
    return argv;
}

#define REGISTRY_BUSYBOX "127.0.0.1:5000/busybox:latest"

/* ---- BuildKit v0.11.6 vectors, legacy encoding ---- */

static void test_vector_sources(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_LEGACY);
    kiln_llb_state_t *st;

    check_vector("a_image", b, kiln_llb_image(b, REGISTRY_BUSYBOX), true);
    check_vector(
        "b_git_https", b,
        kiln_llb_git(b, "https://github.com/moby/buildkit.git", "v0.11.0"),
        true);
    check_vector("b_git_ssh", b,
                 kiln_llb_git(b, "git@github.com:moby/buildkit.git", "master"),
                 true);

    st = kiln_llb_local(b, "context");
    kiln_llb_local_include(st, "src/**");
    kiln_llb_local_include(st, "*.go");
    kiln_llb_local_include(st, "Dockerfile");
    kiln_llb_local_exclude(st, "**/*.tmp");
    kiln_llb_local_exclude(st, "node_modules");
    kiln_llb_local_exclude(st, "!node_modules/keep");
    kiln_llb_local_shared_key_hint(st, "context-shared-key");
    check_vector("c_local", b, st, true);

    st = kiln_llb_http(b, "https://example.com/file.tar.gz");
    kiln_llb_http_checksum(st, SHA("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
                                   "2b0b822cd15d6c15b0f00a08"));
    kiln_llb_http_filename(st, "f");
    kiln_llb_http_chmod(st, 0644);
    check_vector("d_http", b, st, true);
    kiln_llb_free(b);
}

static void test_vector_run_file(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_LEGACY);
    kiln_llb_state_t *img = kiln_llb_image(b, REGISTRY_BUSYBOX);
    kiln_llb_exec_t *ex = kiln_llb_exec(img, sh("echo hi > /out/x"));
    kiln_llb_file_t *fa;

    kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
    fa =
        kiln_llb_mkdir(kiln_llb_actions(b), "/d", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_mkfile(fa, "/d/f", 0644, "hello\n", 6, 0);
    fa = kiln_llb_copy(fa, img, "/etc/passwd", "/d/passwd", 0);
    fa = kiln_llb_mkfile(fa, "/tmpfile", 0600, "remove me", 9, 0);
    fa = kiln_llb_rm(fa, "/tmpfile", 0);
    check_vector("e_run_file", b,
                 kiln_llb_file(kiln_llb_exec_output(ex, "/out"), fa), true);
    kiln_llb_free(b);
}

static void test_vector_diamond(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_LEGACY);
    kiln_llb_state_t *img = kiln_llb_image(b, REGISTRY_BUSYBOX);
    kiln_llb_state_t *a =
        kiln_llb_exec_root(kiln_llb_exec(img, sh("echo a > /a")));
    kiln_llb_state_t *c =
        kiln_llb_exec_root(kiln_llb_exec(img, sh("echo b > /b")));
    kiln_llb_file_t *fa = kiln_llb_copy(kiln_llb_actions(b), a, "/a", "/a", 0);

    fa = kiln_llb_copy(fa, c, "/b", "/b", 0);
    /* Go walks the FileOp's inputs in a fixed order since v0.12; v0.11.6
     * walked a map, but the vector happens to have the same order. */
    check_vector("f_diamond", b, kiln_llb_file(kiln_llb_scratch(b), fa), true);
    kiln_llb_free(b);
}

static void test_vector_chain(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_LEGACY);
    kiln_llb_state_t *st = kiln_llb_image(b, REGISTRY_BUSYBOX);

    for (int i = 0; i < 200; i++) {
        char script[64];
        snprintf(script, sizeof(script), "echo %d >> /log", i);
        st = kiln_llb_exec_root(kiln_llb_exec(st, sh(script)));
    }
    check_vector("g_chain200", b, st, true);
    kiln_llb_free(b);
}

/* ---- current encoding: llb-wire.md section 2 ---- */

static void test_current_image(void **state)
{
    static const uint8_t want[] =
        "\x52\x0e\x0a\x05"
        "amd64"
        "\x12\x05"
        "linux"
        "\x5a\x00"
        "\x1a\x31\x0a\x2f"
        "docker-image://docker.io/library/busybox:latest";
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_definition_t *def =
        marshal_load(b, kiln_llb_image(b, "busybox"), NULL, NULL);
    kiln__vertex_t *v = result_vertex(def);

    kt_assert_bytes_equal(v->raw, v->raw_len, want, sizeof(want) - 1);
    assert_string_equal(v->digest, SHA("e1432b8e2054abb034451c15f0a8ad49d07f5"
                                       "892ca266016226fec77e95d20a0"));
    assert_string_equal(kiln_definition_op_digest(def, 1),
                        SHA("ed184c8ee1441a77d21fb2e07c870c7dca33c5e9b47f503"
                            "3e4d70507d8c1f8c7"));
    assert_true(map_has(def->terminal->meta, "constraints"));
    assert_true(map_has(def->terminal->meta, "platform"));
    kiln_definition_free(def);
    kiln_llb_free(b);
}

/* ---- sources ---- */

/* The source op a single-source state marshals to. */
static Pb__SourceOp *marshal_source(kiln_llb_t *b, kiln_llb_state_t *st,
                                    kiln_definition_t **def)
{
    *def = marshal_load(b, st, NULL, NULL);
    return result_vertex(*def)->op->source;
}

static void test_git_urls(void **state)
{
    static const struct {
        const char *url, *frag, *subdir, *id, *fullurl;
        bool ssh;
    } rows[] = {
        {"https://github.com/moby/buildkit.git", "v0.11.6", NULL,
         "git://github.com/moby/buildkit.git#v0.11.6",
         "https://github.com/moby/buildkit.git", false},
        {"github.com/foo/bar.git", "ref:subdir", NULL,
         "git://github.com/foo/bar.git#ref:subdir",
         "https://github.com/foo/bar.git", false},
        {"git@github.com:moby/buildkit.git", "main", NULL,
         "git://github.com/moby/buildkit.git#main",
         "git@github.com:moby/buildkit.git", true},
        {"ssh://git@host:2222/x/y.git", "", NULL, "git://host:2222/x/y.git",
         "ssh://git@host:2222/x/y.git", true},
        {"https://user:tok@host/x.git?a=b#dev", "", NULL, "git://host/x.git",
         "https://user:tok@host/x.git", false},
        {"github.com/foo/bar.git", "", "d", "git://github.com/foo/bar.git#:d",
         "https://github.com/foo/bar.git", false},
        {"HTTPS://Example.com/a/../b.git/", NULL, NULL,
         "git://Example.com/b.git", "https://Example.com/a/../b.git/", false},
        {"git://host/repo", "ref:/sub/../dir/", NULL, "git://host/repo#ref:dir",
         "git://host/repo", false},
        {"https://h/x.git", ":", NULL, "git://h/x.git", "https://h/x.git",
         false},
        {"ftp://x/y", "ref", NULL, "git://ftp://x/y", "ftp://x/y", false},
        {"https://h:port/x", NULL, NULL, "git://https://h:port/x",
         "https://h:port/x", false},
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(rows); i++) {
        kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
        kiln_llb_state_t *st = kiln_llb_git(b, rows[i].url, rows[i].frag);
        kiln_definition_t *def;
        Pb__SourceOp *so;

        if (rows[i].subdir != NULL) {
            kiln_llb_git_subdir(st, rows[i].subdir);
        }
        so = marshal_source(b, st, &def);
        assert_string_equal(so->identifier, rows[i].id);
        assert_string_equal(attr(so, "git.fullurl"), rows[i].fullurl);
        assert_string_equal(attr(so, "git.authtokensecret"), "GIT_AUTH_TOKEN");
        assert_string_equal(attr(so, "git.authheadersecret"),
                            "GIT_AUTH_HEADER");
        assert_null(attr(so, "git.knownsshhosts"));
        assert_int_equal(attr(so, "git.mountsshsock") != NULL, rows[i].ssh);
        assert_int_equal(
            map_has(result_vertex(def)->meta, "source.git.knownsshhosts"),
            rows[i].ssh);
        assert_null(result_vertex(def)->op->platform);
        kiln_definition_free(def);
        kiln_llb_free(b);
    }
}

static void test_git_options(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *st = kiln_llb_git(b, "git@host:r.git", "x:y");
    const Pb__OpMetadata *md;
    kiln_definition_t *def;
    Pb__SourceOp *so;

    kiln_llb_git_ref(st, "main");
    kiln_llb_git_keep_dir(st);
    kiln_llb_git_known_ssh_hosts(st, "host ssh-ed25519 AAAA\n");
    kiln_llb_git_known_ssh_hosts(st, "host2 ssh-rsa BBBB");
    kiln_llb_git_mount_ssh_sock(st, "agent");
    kiln_llb_git_checksum(st, "abc123");
    kiln_llb_git_skip_submodules(st);
    kiln_llb_git_auth_token_secret(st, "TOK");
    so = marshal_source(b, st, &def);
    md = result_vertex(def)->meta;
    assert_string_equal(so->identifier, "git://host/r.git#main:y");
    assert_string_equal(attr(so, "git.knownsshhosts"),
                        "host ssh-ed25519 AAAA\nhost2 ssh-rsa BBBB\n");
    assert_string_equal(attr(so, "git.mountsshsock"), "agent");
    assert_string_equal(attr(so, "git.keepgitdir"), "true");
    assert_string_equal(attr(so, "git.checksum"), "abc123");
    assert_string_equal(attr(so, "git.skipsubmodules"), "true");
    assert_string_equal(attr(so, "git.authtokensecret"), "TOK");
    assert_true(map_has(md, "source.git.httpauth"));
    assert_true(map_has(md, "source.git.keepgitdir"));
    assert_true(map_has(md, "source.git.checksum"));
    assert_true(map_has(md, "source.git.skipsubmodules"));
    kiln_definition_free(def);
    kiln_llb_free(b);
}

static void test_image_refs(void **state)
{
    static const struct {
        const char *ref, *want; /* want NULL: invalid, `msg` expected */
        const char *msg;
    } rows[] = {
        {"busybox", "docker.io/library/busybox:latest", NULL},
        {REGISTRY_BUSYBOX, REGISTRY_BUSYBOX, NULL},
        {"ubuntu:22.04", "docker.io/library/ubuntu:22.04", NULL},
        {"docker.io/busybox", "docker.io/library/busybox:latest", NULL},
        {"index.docker.io/foo/bar", "docker.io/foo/bar:latest", NULL},
        {"localhost/foo", "localhost/foo:latest", NULL},
        {"localhost:5000/a/b:c", "localhost:5000/a/b:c", NULL},
        {"[::1]:5000/foo", "[::1]:5000/foo:latest", NULL},
        {"Example.com/foo", "Example.com/foo:latest", NULL},
        {"foo/bar", "docker.io/foo/bar:latest", NULL},
        {"a__b/c-----d/e.f_g", "docker.io/a__b/c-----d/e.f_g:latest", NULL},
        {"ghcr.io/a/b@sha256:"
         "0123456789abcdef0123456789abcdef0123456789"
         "abcdef0123456789abcdef",
         "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789"
         "abcdef0123456789abcdef",
         NULL},
        {"name:tag@sha256:"
         "0123456789abcdef0123456789abcdef0123456789"
         "abcdef0123456789abcdef",
         "docker.io/library/name:tag@sha256:0123456789abcdef0123456789abcd"
         "ef0123456789abcdef0123456789abcdef",
         NULL},
        {"Busybox", NULL,
         "repository name (library/Busybox) must be lowercase"},
        {"", NULL, "invalid reference format"},
        {"busybox:", NULL, "invalid reference format"},
        {"a..b", NULL, "invalid reference format"},
        {"foo/-bar", NULL, "invalid reference format"},
        {"busybox@sha256:abc", NULL, "invalid reference format"},
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         NULL, "cannot specify 64-byte hexadecimal strings"},
        {"busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef01"
         "23456789abcdef",
         NULL, "invalid checksum digest format"},
        {"busybox@sha256:0123456789abcdef0123456789abcdef", NULL,
         "invalid checksum digest length"},
        {"busybox@md5:0123456789abcdef0123456789abcdef", NULL,
         "unsupported digest algorithm"},
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(rows); i++) {
        kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
        kiln_llb_state_t *st = kiln_llb_image(b, rows[i].ref);
        kiln_error_t err = {0};

        if (rows[i].want == NULL) {
            assert_null(st);
            assert_int_equal(kiln_llb_error(b, &err), KILN_EINVAL);
            if (strstr(err.message, rows[i].msg) == NULL ||
                strstr(err.message, "kiln_llb_image") == NULL) {
                fail_msg("%s: message \"%s\"", rows[i].ref, err.message);
            }
        } else {
            kiln_definition_t *def;
            char want[512];
            snprintf(want, sizeof(want), "docker-image://%s", rows[i].want);
            assert_string_equal(marshal_source(b, st, &def)->identifier, want);
            kiln_definition_free(def);
        }
        kiln_llb_free(b);
    }
}

static void test_source_options(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *st;
    kiln_definition_t *def;
    Pb__SourceOp *so;
    const Pb__OpMetadata *md;

    st = kiln_llb_image(b, "busybox");
    kiln_llb_image_resolve_mode(st, KILN_LLB_RESOLVE_PULL);
    kiln_llb_image_layer_limit(st, 3);
    kiln_llb_image_record_type(st, "internal");
    kiln_llb_source_attr(st, "x.custom", "1");
    so = marshal_source(b, st, &def);
    md = result_vertex(def)->meta;
    assert_string_equal(attr(so, "image.resolvemode"), "pull");
    assert_string_equal(attr(so, "image.layerlimit"), "3");
    assert_string_equal(attr(so, "image.recordtype"), "internal");
    assert_string_equal(attr(so, "x.custom"), "1");
    assert_true(map_has(md, "source.image.resolvemode"));
    assert_true(map_has(md, "source.image.layerlimit"));
    kiln_definition_free(def);

    st = kiln_llb_local_session(kiln_llb_local(b, "ctx"), "sess");
    kiln_llb_local_differ(st, KILN_LLB_DIFFER_NONE, 1);
    kiln_llb_local_follow_path(st, "a<b>&\"c\"");
    so = marshal_source(b, st, &def);
    assert_null(attr(so, "local.unique"));
    assert_string_equal(attr(so, "local.session"), "sess");
    assert_string_equal(attr(so, "local.differ"), "none");
    assert_string_equal(attr(so, "local.followpaths"),
                        "[\"a\\u003cb\\u003e\\u0026\\\"c\\\"\"]");
    assert_true(map_has(result_vertex(def)->meta, "source.local.differ"));
    assert_true(map_has(result_vertex(def)->meta, "source.local.sessionid"));
    kiln_definition_free(def);

    st = kiln_llb_http_chown(kiln_llb_http(b, "http://h/f"), 0, 7);
    kiln_llb_http_auth_header_secret(st, "AUTH");
    so = marshal_source(b, st, &def);
    md = result_vertex(def)->meta;
    assert_null(attr(so, "http.uid"));
    assert_string_equal(attr(so, "http.gid"), "7");
    assert_string_equal(attr(so, "http.authheadersecret"), "AUTH");
    assert_true(map_has(md, "soruce.http.uidgid"));
    assert_true(map_has(md, "source.http.auth"));
    kiln_definition_free(def);

    so = marshal_source(b, kiln_llb_source(b, "custom://thing"), &def);
    assert_string_equal(so->identifier, "custom://thing");
    assert_int_equal(result_vertex(def)->meta->n_caps, 0);
    kiln_definition_free(def);
    kiln_llb_free(b);
}

/* Without kiln_llb_set_local_unique_id: 25 random base-36 characters. */
static void test_local_unique(void **state)
{
    char ids[2][32];

    for (int i = 0; i < 2; i++) {
        kiln_llb_t *b = NULL;
        kiln_definition_t *def;
        const char *u;

        assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
        u = attr(marshal_source(b, kiln_llb_local(b, "c"), &def),
                 "local.unique");
        assert_non_null(u);
        assert_int_equal(strlen(u), 25);
        assert_int_equal(strspn(u, "0123456789abcdefghijklmnopqrstuvwxyz"), 25);
        snprintf(ids[i], sizeof(ids[i]), "%s", u);
        kiln_definition_free(def);
        kiln_llb_free(b);
    }
    assert_string_not_equal(ids[0], ids[1]);
}

/* ---- exec ---- */

/* Sorting, input de-duplication and output numbering, as Go does them. */
static void test_exec_mounts(void **state)
{
    static const struct {
        const char *dest;
        int64_t input, output;
        Pb__MountType type;
    } want[] = {
        {"/", 0, 0, PB__MOUNT_TYPE__BIND},
        {"/a", 1, 1, PB__MOUNT_TYPE__BIND},
        {"/cache", -1, -1, PB__MOUNT_TYPE__CACHE},
        {"/out", -1, 2, PB__MOUNT_TYPE__BIND},
        {"/ro", 0, -1, PB__MOUNT_TYPE__BIND},
        {"/tmp", -1, -1, PB__MOUNT_TYPE__TMPFS},
        /* Appended unsorted, output left 0 as Go does. */
        {"/run/secrets/tok", -1, 0, PB__MOUNT_TYPE__SECRET},
        {"/run/buildkit/ssh_agent.0", -1, 0, PB__MOUNT_TYPE__SSH},
    };
    static const char *const caps[] = {
        "exec.meta.base",        "exec.mount.bind",
        "exec.mount.cache",      "exec.mount.cache.sharing",
        "exec.mount.selector",   "exec.mount.tmpfs",
        "exec.mount.tmpfs.size", "exec.mount.secret",
        "exec.secretenv",        "exec.mount.ssh"};
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *img = kiln_llb_image(b, "busybox");
    kiln_llb_exec_t *ex = kiln_llb_exec(img, sh("true"));
    kiln_llb_state_t *st;
    raw_op_t file, exv;
    const Pb__ExecOp *eo;

    kiln_llb_exec_tmpfs(ex, "/tmp", 1 << 20);
    kiln_llb_exec_mount(ex, "/ro", img, NULL, KILN_LLB_MOUNT_READONLY);
    kiln_llb_exec_cache(ex, "/cache", kiln_llb_scratch(b), "go",
                        KILN_LLB_CACHE_LOCKED, 0);
    kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
    kiln_llb_exec_mount(ex, "/a", kiln_llb_image(b, "alpine"), "sub", 0);
    kiln_llb_exec_secret(ex, "tok", "/run/secrets/tok", 1, 2, -1, 0);
    kiln_llb_exec_secret_env(ex, "tok", "TOKEN", KILN_LLB_OPTIONAL);
    kiln_llb_exec_ssh(ex, NULL, NULL, 0, 0, -1, 0);
    assert_ptr_equal(kiln_llb_exec_output(ex, "/ro"),
                     kiln_llb_exec_output(ex, "/ro"));
    st = kiln_llb_file(kiln_llb_exec_output(ex, "/out"),
                       kiln_llb_rm(kiln_llb_actions(b), "/x", 0));
    raw_find(b, st, PB__OP__OP_FILE, &file);
    raw_find(b, st, PB__OP__OP_EXEC, &exv);
    assert_int_equal(file.op->inputs[0]->index, 2); /* /out is output 2 */
    eo = exv.op->exec;
    assert_int_equal(exv.op->n_inputs, 2); /* busybox once, alpine */
    assert_int_equal(eo->n_mounts, KILN_ARRAY_SIZE(want));
    for (size_t i = 0; i < KILN_ARRAY_SIZE(want); i++) {
        const Pb__Mount *m = eo->mounts[i];
        assert_string_equal(m->dest, want[i].dest);
        assert_int_equal(m->input, want[i].input);
        assert_int_equal(m->output, want[i].output);
        assert_int_equal(m->mounttype, want[i].type);
    }
    assert_string_equal(eo->mounts[1]->selector, "sub");
    assert_int_equal(eo->mounts[2]->cacheopt->sharing,
                     PB__CACHE_SHARING_OPT__LOCKED);
    assert_true(eo->mounts[4]->readonly);
    assert_int_equal(eo->mounts[5]->tmpfsopt->size, 1 << 20);
    assert_int_equal(eo->mounts[6]->secretopt->mode, 0400);
    assert_int_equal(eo->mounts[6]->secretopt->uid, 1);
    assert_int_equal(eo->mounts[7]->sshopt->mode, 0600);
    assert_true(eo->n_secretenv == 1 && eo->secretenv[0]->optional);
    assert_int_equal(eo->meta->n_env, 1);
    assert_string_equal(eo->meta->env[0],
                        "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0");
    assert_true(eo->meta->removemountstubsrecursive);
    assert_string_equal(eo->meta->cwd, "/");
    assert_non_null(exv.op->platform);
    assert_int_equal(exv.meta->n_caps, KILN_ARRAY_SIZE(caps));
    for (size_t i = 0; i < KILN_ARRAY_SIZE(caps); i++) {
        assert_true(map_has(exv.meta, caps[i]));
    }
    raw_free(&file);
    raw_free(&exv);
    /* Mounts without an output have no state. */
    assert_null(kiln_llb_exec_output(ex, "/tmp"));
    assert_int_equal(kiln_llb_error(b, NULL), KILN_EINVAL);
    kiln_llb_free(b);
}

static void test_exec_meta(void **state)
{
    static const int codes[] = {0, 1};
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_exec_t *ex = kiln_llb_exec(kiln_llb_scratch(b), sh("x"));
    raw_op_t v;
    const Pb__Meta *meta;

    kiln_llb_exec_env(ex, "A", "1");
    kiln_llb_exec_env(ex, "B", "2");
    kiln_llb_exec_env(ex, "A", "3");
    kiln_llb_exec_env(ex, "SSH_AUTH_SOCK", "/s");
    kiln_llb_exec_cwd(ex, "/w");
    kiln_llb_exec_cwd(ex, "sub/../dir");
    kiln_llb_exec_user(ex, "nobody");
    kiln_llb_exec_hostname(ex, "box");
    kiln_llb_exec_network(ex, KILN_LLB_NET_HOST);
    kiln_llb_exec_security(ex, KILN_LLB_SECURITY_INSECURE);
    kiln_llb_exec_extra_host(ex, "a", "::ffff:10.0.0.1");
    kiln_llb_exec_extra_host(ex, "b", "2001:db8:0:0:1:0:0:1");
    kiln_llb_exec_ulimit(ex, "nofile", 1024, 2048);
    kiln_llb_exec_cgroup_parent(ex, "cg");
    kiln_llb_exec_valid_exit_codes(ex, codes, 2);
    kiln_llb_exec_proxy_env(ex, "http://p", NULL, NULL, "localhost", NULL);
    kiln_llb_exec_ssh(ex, "agent", "/ssh", 1, 1, 0700, KILN_LLB_OPTIONAL);
    kiln_llb_custom_name(kiln_llb_exec_root(ex), "run x");
    raw_find(b, kiln_llb_exec_root(ex), PB__OP__OP_EXEC, &v);
    meta = v.op->exec->meta;
    assert_int_equal(meta->n_env, 3);
    assert_string_equal(meta->env[0], "B=2");
    assert_string_equal(meta->env[1], "A=3");
    assert_string_equal(meta->env[2], "SSH_AUTH_SOCK=/s");
    assert_string_equal(meta->cwd, "/w/dir");
    assert_string_equal(meta->user, "nobody");
    assert_string_equal(meta->hostname, "box");
    assert_string_equal(meta->cgroupparent, "cg");
    assert_string_equal(meta->extrahosts[0]->ip, "10.0.0.1");
    assert_string_equal(meta->extrahosts[1]->ip, "2001:db8::1:0:0:1");
    assert_int_equal(meta->ulimit[0]->hard, 2048);
    assert_int_equal(meta->n_validexitcodes, 2);
    assert_string_equal(meta->proxy_env->no_proxy, "localhost");
    assert_int_equal(v.op->exec->network, PB__NET_MODE__HOST);
    assert_int_equal(v.op->exec->security, PB__SECURITY_MODE__INSECURE);
    /* The root is scratch: input -1, no bind cap. */
    assert_int_equal(v.op->exec->mounts[0]->input, -1);
    assert_string_equal(v.meta->description[0]->value, "run x");
    assert_string_equal(v.op->exec->mounts[1]->sshopt->id, "agent");
    assert_true(v.op->exec->mounts[1]->sshopt->optional);
    for (const char *const *c =
             (const char *const[]){"exec.meta.network", "exec.meta.security",
                                   "exec.meta.ulimit", "exec.validexitcode",
                                   "exec.meta.proxyenv", "exec.mount.ssh",
                                   NULL};
         *c != NULL; c++) {
        assert_true(map_has(v.meta, *c));
    }
    assert_false(map_has(v.meta, "exec.mount.bind"));
    raw_free(&v);
    kiln_llb_free(b);
}

/* A read-only root: the root state stands for the base. */
static void test_exec_readonly_root(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *img = kiln_llb_image(b, "busybox");
    kiln_llb_exec_t *ex = kiln_llb_exec(img, sh("x"));
    kiln_llb_state_t *root = kiln_llb_exec_root(ex);
    kiln_definition_t *def;

    kiln_llb_exec_mount(ex, "/o", kiln_llb_scratch(b), NULL, 0);
    kiln_llb_exec_readonly_root(ex);
    def = marshal_load(
        b,
        kiln_llb_merge(
            b, (kiln_llb_state_t *[]){root, kiln_llb_exec_output(ex, "/o")}, 2),
        NULL, NULL);
    /* merge(busybox, exec output 0): /o is output 0 now. */
    assert_int_equal(result_vertex(def)->kind, KILN_OP_MERGE);
    assert_int_equal(result_vertex(def)->inputs[0]->kind, KILN_OP_SOURCE);
    assert_int_equal(result_vertex(def)->op->inputs[1]->index, 0);
    kiln_definition_free(def);
    kiln_llb_free(b);
}

/* ---- file ops ---- */

static void test_file_actions(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *img = kiln_llb_image(b, "busybox");
    kiln_llb_state_t *src = kiln_llb_image(b, "alpine");
    kiln_llb_file_t *fa = kiln_llb_actions(b);
    kiln_definition_t *def;
    kiln__vertex_t *v;
    const Pb__FileAction *const *a;

    fa = kiln_llb_file_owner(kiln_llb_mkdir(fa, "rel/./dir", 04755, 0),
                             "1000:staff");
    fa = kiln_llb_file_timestamp(kiln_llb_mkfile(fa, "f", 0644, NULL, 0, 0),
                                 1700000000000000000);
    fa =
        kiln_llb_copy(fa, src, "sub/.", "out/", KILN_LLB_COPY_CREATE_DEST_PATH);
    kiln_llb_file_chmod(fa, 0700);
    kiln_llb_file_include(fa, "*.c");
    kiln_llb_file_exclude(fa, "x");
    kiln_llb_file_owner(fa, "root");
    fa = kiln_llb_copy(fa, kiln_llb_scratch(b), "/a", "/b/.", 0);
    fa = kiln_llb_copy(fa, img, "/c", "/d", 0);
    fa = kiln_llb_file_owner_id(kiln_llb_symlink(fa, "../t", "l", 0), 1, 2);
    fa = kiln_llb_rm(fa, "/g*",
                     KILN_LLB_RM_ALLOW_WILDCARD | KILN_LLB_RM_ALLOW_NOT_FOUND);
    def = marshal_load(b, kiln_llb_file(img, fa), NULL, NULL);
    v = result_vertex(def);
    a = (const Pb__FileAction *const *)v->op->file->actions;
    assert_null(v->op->platform);         /* current encoding: no platform */
    assert_int_equal(v->op->n_inputs, 2); /* busybox, alpine */
    assert_int_equal(v->op->file->n_actions, 7);
    assert_true(a[0]->input == 0 && a[0]->secondaryinput == -1 &&
                a[0]->output == -1);
    assert_string_equal(a[0]->mkdir->path, "/rel/dir");
    assert_int_equal(a[0]->mkdir->mode, 0755);
    assert_int_equal(a[0]->mkdir->timestamp, -1);
    assert_int_equal(a[0]->mkdir->owner->user->byid, 1000);
    assert_string_equal(a[0]->mkdir->owner->group->byname->name, "staff");
    assert_int_equal(a[0]->mkdir->owner->group->byname->input, 0);
    assert_int_equal(a[1]->input, 2);
    assert_int_equal(a[1]->mkfile->timestamp, 1700000000000000000);
    assert_true(a[2]->input == 3 && a[2]->secondaryinput == 1);
    assert_string_equal(a[2]->copy->src, "/sub");
    assert_string_equal(a[2]->copy->dest, "/out/");
    assert_int_equal(a[2]->copy->mode, 0700);
    assert_true(a[2]->copy->createdestpath);
    assert_string_equal(a[2]->copy->include_patterns[0], "*.c");
    assert_string_equal(a[2]->copy->exclude_patterns[0], "x");
    assert_int_equal(a[2]->copy->owner->user->byid, 0);
    assert_null(a[2]->copy->owner->group);
    assert_int_equal(a[3]->secondaryinput, -1); /* from scratch */
    assert_string_equal(a[3]->copy->dest, "/b/.");
    assert_int_equal(a[3]->copy->mode, -1);
    assert_int_equal(a[4]->secondaryinput, 0); /* busybox, de-duplicated */
    assert_string_equal(a[5]->symlink->oldpath, "../t");
    assert_string_equal(a[5]->symlink->newpath, "l");
    assert_int_equal(a[5]->symlink->owner->group->byid, 2);
    assert_true(a[6]->rm->allowwildcard && a[6]->rm->allownotfound);
    assert_true(a[6]->input == 7 && a[6]->output == 0);
    /* Go never declares the copy/symlink caps it defines (see report). */
    assert_int_equal(v->meta->n_caps, 1);
    assert_true(map_has(v->meta, "file.base"));
    kiln_definition_free(def);
    kiln_llb_free(b);
}

/* On scratch: no inputs, action 0 reads -1, named owners get input -1. */
static void test_file_scratch(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_LEGACY);
    kiln_llb_file_t *fa =
        kiln_llb_mkfile(kiln_llb_actions(b), "/f", 0600, "x", 1, 0);
    kiln_definition_t *def;
    kiln__vertex_t *v;

    kiln_llb_file_owner(fa, "app:");
    def = marshal_load(b, kiln_llb_file(kiln_llb_scratch(b), fa), NULL, NULL);
    v = result_vertex(def);
    assert_int_equal(v->op->n_inputs, 0);
    assert_int_equal(v->op->file->actions[0]->input, -1);
    assert_int_equal(
        v->op->file->actions[0]->mkfile->owner->user->byname->input, -1);
    assert_int_equal(v->op->file->actions[0]->mkfile->owner->group->byid, 0);
    assert_non_null(v->op->platform); /* legacy encoding keeps it */
    kiln_definition_free(def);
    kiln_llb_free(b);
}

/* ---- merge, diff, platform, metadata ---- */

static void test_merge_diff(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *s = kiln_llb_scratch(b);
    kiln_llb_state_t *x = kiln_llb_image(b, "busybox");
    kiln_llb_state_t *y = kiln_llb_image(b, "alpine");
    kiln_definition_t *def;
    kiln__vertex_t *v;
    uint8_t *bytes;
    size_t len;

    assert_ptr_equal(kiln_llb_merge(b, NULL, 0), s);
    assert_ptr_equal(kiln_llb_merge(b, (kiln_llb_state_t *[]){s, x, s}, 3), x);
    assert_ptr_equal(kiln_llb_diff(s, y), y);
    assert_ptr_equal(kiln_llb_diff(s, s), s);

    /* Merge keeps repeated inputs, as Go does. */
    def = marshal_load(b,
                       kiln_llb_merge(b, (kiln_llb_state_t *[]){x, s, y, x}, 4),
                       NULL, NULL);
    v = result_vertex(def);
    assert_int_equal(v->kind, KILN_OP_MERGE);
    assert_int_equal(v->op->n_inputs, 3);
    assert_int_equal(v->op->merge->n_inputs, 3);
    assert_int_equal(v->op->merge->inputs[2]->input, 2);
    assert_null(v->op->platform);
    assert_true(map_has(v->meta, "mergeop"));
    assert_int_equal(kiln_definition_op_count(def), 4); /* x, y, merge, term */
    kiln_definition_free(def);

    def = marshal_load(b, kiln_llb_diff(x, s), NULL, NULL);
    v = result_vertex(def);
    assert_int_equal(v->op->diff->lower->input, 0);
    assert_int_equal(v->op->diff->upper->input, -1);
    assert_true(map_has(v->meta, "diffop"));
    kiln_definition_free(def);

    /* Scratch marshals to an empty definition. */
    assert_int_equal(kiln_llb_marshal(b, s, &bytes, &len, NULL), 0);
    assert_non_null(bytes);
    assert_int_equal(len, 0);
    kiln_free(bytes);
    kiln_llb_free(b);
}

static void test_platform(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *img =
        kiln_llb_platform(kiln_llb_image(b, "busybox"), "linux", "arm", "v7");
    kiln_llb_state_t *run = kiln_llb_exec_root(kiln_llb_exec(img, sh("x")));
    kiln_llb_state_t *local = kiln_llb_local(b, "c");
    kiln_definition_t *def;
    kiln__vertex_t *v;

    def = marshal_load(b, kiln_llb_exec_root(kiln_llb_exec(run, sh("y"))), NULL,
                       NULL);
    v = result_vertex(def);
    assert_string_equal(v->op->platform->architecture, "arm");
    assert_string_equal(v->op->platform->variant, "v7");
    assert_string_equal(v->inputs[0]->inputs[0]->op->platform->variant, "v7");
    kiln_definition_free(def);
    assert_null(kiln_llb_platform(local, "linux", "arm64", NULL));
    assert_int_equal(kiln_llb_error(b, NULL), KILN_EINVAL);
    kiln_llb_free(b);
}

static void test_metadata(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *img = kiln_llb_image(b, "busybox");
    kiln_llb_state_t *run;
    kiln_definition_t *def;
    kiln__vertex_t *v;
    const Pb__OpMetadata *md;

    kiln_llb_custom_name(img, "base");
    kiln_llb_description(img, "com.example", "yes");
    kiln_llb_custom_name(img, "base image");
    run = kiln_llb_exec_root(kiln_llb_exec(img, sh("x")));
    kiln_llb_ignore_cache(run);
    kiln_llb_export_cache(run, KILN_LLB_EXPORT_CACHE_OFF);
    kiln_llb_progress_group(run, "pg", "group", 1);
    kiln_llb_require(run, "label==x");
    def = marshal_load(b, run, NULL, NULL);
    v = result_vertex(def);
    md = v->meta;
    assert_true(md->ignore_cache);
    assert_non_null(md->export_cache);
    assert_false(md->export_cache->value);
    assert_string_equal(md->progress_group->id, "pg");
    assert_true(md->progress_group->weak);
    assert_string_equal(v->op->constraints->filter[0], "label==x");
    assert_string_equal(v->inputs[0]->name, "base image");
    assert_int_equal(v->inputs[0]->meta->n_description, 2);
    md = def->terminal->meta;
    assert_int_equal(md->n_caps, 5);
    assert_true(map_has(md, "meta.ignorecache"));
    assert_true(map_has(md, "meta.description"));
    assert_true(map_has(md, "meta.exportcache"));
    kiln_definition_free(def);
    kiln_llb_free(b);
}

/* ---- errors, output, lifetime ---- */

static void test_sticky_errors(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *bad = kiln_llb_image(b, "Not A Ref");
    kiln_llb_state_t *good = kiln_llb_image(b, "busybox");
    kiln_llb_exec_t *ex = kiln_llb_exec(bad, sh("x"));
    kiln_error_t err = {0};
    uint8_t *bytes = (uint8_t *)"untouched";
    size_t len = 1;

    assert_null(bad);
    assert_null(ex);
    assert_null(kiln_llb_exec_env(ex, "A", "1"));
    assert_null(kiln_llb_exec_root(ex));
    assert_null(kiln_llb_file(kiln_llb_exec_root(ex),
                              kiln_llb_mkdir(kiln_llb_actions(b), "/a", 0, 0)));
    assert_null(kiln_llb_diff(bad, good));
    assert_null(kiln_llb_custom_name(bad, "x"));
    /* Later errors do not replace the first. */
    assert_null(kiln_llb_git(b, "", NULL));
    assert_null(kiln_llb_mkdir(kiln_llb_actions(b), "/a", 0, 0x80));
    assert_int_equal(kiln_llb_marshal(b, good, &bytes, &len, &err),
                     KILN_EINVAL);
    assert_null(bytes);
    assert_int_equal(len, 0);
    assert_int_equal(err.code, KILN_EINVAL);
    assert_non_null(strstr(err.message, "kiln_llb_image"));
    assert_non_null(strstr(err.message, "\"Not A Ref\""));
    kiln_llb_free(b);

    /* NULL passed where nothing failed before is an error of its own. */
    b = new_builder(KILN_LLB_ENCODING_CURRENT);
    assert_null(kiln_llb_merge(b, (kiln_llb_state_t *[]){NULL}, 1));
    assert_int_equal(kiln_llb_error(b, &err), KILN_EINVAL);
    assert_non_null(strstr(err.message, "input 0 is NULL"));
    kiln_llb_free(b);

    b = new_builder(KILN_LLB_ENCODING_CURRENT);
    assert_int_equal(kiln_llb_marshal(b, NULL, &bytes, &len, &err),
                     KILN_EINVAL);
    assert_null(
        kiln_llb_file(kiln_llb_image(b, "busybox"), kiln_llb_actions(b)));
    assert_null(
        kiln_llb_file_chmod(kiln_llb_rm(kiln_llb_actions(b), "/x", 0), 0644));
    assert_null(kiln_llb_image_layer_limit(kiln_llb_local(b, "c"), 1));
    assert_null(kiln_llb_exec_extra_host(
        kiln_llb_exec(kiln_llb_scratch(b), sh("x")), "h", "1.2.3"));
    assert_int_equal(kiln_llb_error(b, &err), KILN_EINVAL);
    assert_non_null(strstr(err.message, "chain has no actions"));
    kiln_llb_free(b);
}

/* An exec mounting its own output cannot be marshaled. */
static void test_cycle(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_exec_t *ex = kiln_llb_exec(kiln_llb_image(b, "busybox"), sh("x"));
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;

    kiln_llb_exec_mount(ex, "/self", kiln_llb_exec_root(ex), NULL, 0);
    assert_int_equal(
        kiln_llb_marshal(b, kiln_llb_exec_root(ex), &bytes, &len, &err),
        KILN_EINVAL);
    assert_non_null(strstr(err.message, "cycle"));
    /* The builder stays usable. */
    assert_int_equal(kiln_llb_error(b, NULL), 0);
    kiln_llb_free(b);
}

static void test_write(void **state)
{
    kiln_llb_t *b = new_builder(KILN_LLB_ENCODING_CURRENT);
    kiln_llb_state_t *st = kiln_llb_exec_root(
        kiln_llb_exec(kiln_llb_image(b, "busybox"), sh("x")));
    uint8_t *bytes, buf[4096];
    size_t len;
    FILE *fp = tmpfile();
    int fds[2];

    assert_int_equal(kiln_llb_marshal(b, st, &bytes, &len, NULL), 0);
    assert_non_null(fp);
    assert_int_equal(kiln_llb_write(b, st, fp, NULL), 0);
    rewind(fp);
    assert_int_equal(fread(buf, 1, sizeof(buf), fp), len);
    kt_assert_bytes_equal(buf, len, bytes, len);
    fclose(fp);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(kiln_llb_write_fd(b, st, fds[1], NULL), 0);
    close(fds[1]);
    assert_int_equal(read(fds[0], buf, sizeof(buf)), (ssize_t)len);
    kt_assert_bytes_equal(buf, len, bytes, len);
    close(fds[0]);
    kiln_free(bytes);
    kiln_llb_free(b);
    kiln_llb_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_sources),
        cmocka_unit_test(test_vector_run_file),
        cmocka_unit_test(test_vector_diamond),
        cmocka_unit_test(test_vector_chain),
        cmocka_unit_test(test_current_image),
        cmocka_unit_test(test_git_urls),
        cmocka_unit_test(test_git_options),
        cmocka_unit_test(test_image_refs),
        cmocka_unit_test(test_source_options),
        cmocka_unit_test(test_local_unique),
        cmocka_unit_test(test_exec_mounts),
        cmocka_unit_test(test_exec_meta),
        cmocka_unit_test(test_exec_readonly_root),
        cmocka_unit_test(test_file_actions),
        cmocka_unit_test(test_file_scratch),
        cmocka_unit_test(test_merge_diff),
        cmocka_unit_test(test_platform),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_sticky_errors),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
