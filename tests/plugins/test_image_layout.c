/*
 * The image plugin beyond one registry image: oci-layout:// sources read
 * from OCI layout directories (the busybox base kiln-mkbase writes, and a
 * two-platform index made here), kiln_source_resolve() and `kiln image
 * inspect`, unpacked layers shared between images, and images that
 * skopeo wrote (OCI and Docker schema 2) pulled from docker-registry on
 * 127.0.0.1. Builds use only <kiln/kiln.h> and <kiln/llb.h>.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "net_fixture.h"
#include "registry_fixture.h"

#include <kiln/kiln.h>
#include <kiln/llb.h>

#include "oci/layout.h"

static struct {
    test_registry_t reg;
    char dir[64];     /* temporary directory */
    char layout[128]; /* kiln-mkbase's layout ("base") */
    char base[80];    /* its manifest digest */
    char multi[80];   /* the two-platform index in the same layout */
    char derived[80]; /* the base plus a layer, in the same layout */
    char bin[4096];   /* kiln */
} fx;

struct result {
    int rc;
    kiln_error_t err;
    kiln_solve_stats_t stats;
    int reused; /* "layer ... reused" messages */
};

static void on_event(const kiln_event_t *ev, void *ud)
{
    struct result *r = ud;

    if (ev->type == KILN_EVENT_MESSAGE && ev->data != NULL &&
        memmem(ev->data, ev->len, " reused for image-layer:", 24) != NULL) {
        r->reused++;
    }
}

/* Builds def into out (emptied first) on store root, with the layout named
 * "base" unless `layouts` says otherwise. */
static void build(const char *root, const char *out, kiln_definition_t *def,
                  const char *const *layouts, struct result *r)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_solve_t *s;

    sh("rm -rf '%s' && mkdir -p '%s'", out, out);
    memset(r, 0, sizeof(*r));
    eo.root = root;
    eo.log_level = KILN_LOG_DEBUG;
    if (kiln_engine_new(&eo, &r->err, &e) < 0) {
        fail_msg("engine: %s", r->err.message);
    }
    so.definition = def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = out;
    so.oci_layouts = layouts;
    so.on_event = on_event;
    so.userdata = r;
    if (kiln_solve_start(e, &so, &r->err, &s) < 0) {
        r->rc = r->err.code;
    } else {
        r->rc = kiln_solve_wait(s, &r->err);
        kiln_solve_stats(s, &r->stats);
        kiln_solve_free(s);
    }
    kiln_engine_free(e);
}

/* oci-layout://busybox@DIGEST (store "base") or an image, plus /kiln.txt. */
static kiln_definition_t *def_of(const char *scheme, const char *ref,
                                 const char *arch)
{
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    char p_ref[256];
    const char *params[] = {p_ref, "store=base", NULL};
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    snprintf(p_ref, sizeof(p_ref), "ref=%s", ref);
    if (strcmp(scheme, "docker-image") == 0) {
        params[1] = NULL;
    }
    st = kiln_llb_plugin_source(b, scheme, params);
    if (arch != NULL) {
        st = kiln_llb_platform(st, "linux", arch, NULL);
    }
    st = kiln_llb_file(st, kiln_llb_mkfile(kiln_llb_actions(b), "/kiln.txt",
                                           0644, "made\n", 5, 0));
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("%s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

static kiln_definition_t *base_def(void)
{
    char ref[128];

    snprintf(ref, sizeof(ref), "busybox@%s", fx.base);
    return def_of("oci-layout", ref, NULL);
}

static const char *const *base_layouts(void)
{
    static char pair[160];
    static const char *v[] = {pair, NULL};

    snprintf(pair, sizeof(pair), "base=%s", fx.layout);
    return v;
}

static void expect_base(const char *out)
{
    char path[256], link[64] = {0};
    struct stat st;

    snprintf(path, sizeof(path), "%s/bin/busybox", out);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0);
    snprintf(path, sizeof(path), "%s/bin/sh", out);
    assert_true(readlink(path, link, sizeof(link) - 1) > 0);
    assert_string_equal(link, "/bin/busybox");
    snprintf(path, sizeof(path), "%s/etc/passwd", out);
    assert_int_equal(lstat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/kiln.txt", out);
    assert_int_equal(lstat(path, &st), 0);
}

static void read_text(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        fail_msg("%s: %s", path, strerror(errno));
    }
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* The temporary store root and output of one test. */
struct dirs {
    char root[128];
    char out[128];
};

static int setup(void **state)
{
    struct dirs *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    snprintf(d->root, sizeof(d->root), "%s/root-XXXXXX", fx.dir);
    assert_non_null(mkdtemp(d->root));
    snprintf(d->out, sizeof(d->out), "%s.out", d->root);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dirs *d = *state;

    sh("rm -rf '%s' '%s'", d->root, d->out);
    free(d);
    return 0;
}

/* ---- fixtures ---- */

/* A layer holding /arch with `text`, into layout dir. */
static void arch_image(const char *arch, kiln_oci_desc_t *man)
{
    char src[128], diff[KILN_DIGEST_STRLEN + 1], *diff_v[1] = {diff};
    kiln_oci_desc_t layer = {0}, cfg_desc = {0};
    kiln_oci_config_t cfg = {0};
    kiln_error_t err = {0};

    snprintf(src, sizeof(src), "%s/arch-%s", fx.dir, arch);
    sh("mkdir -p '%s' && printf %s > '%s/arch'", src, arch, src);
    cfg.os = "linux";
    cfg.architecture = (char *)arch;
    cfg.diff_ids.v = diff_v;
    cfg.diff_ids.n = 1;
    if (kiln__oci_write_layer(fx.layout, src, KILN_OCI_COMP_GZIP, &layer,
                              diff, &err) != 0 ||
        kiln__oci_write_config(fx.layout, &cfg, &cfg_desc, &err) != 0 ||
        kiln__oci_write_manifest(fx.layout, &cfg_desc, &layer, 1, man,
                                 &err) != 0) {
        fail_msg("%s image: %s", arch, err.message);
    }
    man->has_platform = true;
    snprintf(man->platform.os, sizeof(man->platform.os), "linux");
    snprintf(man->platform.arch, sizeof(man->platform.arch), "%s", arch);
    kiln__oci_desc_clear(&layer);
    kiln__oci_desc_clear(&cfg_desc);
}

/* The base's layer and one more (/etc/derived), as image "derived". */
static void derived_image(kiln_oci_desc_t *man)
{
    char src[128], diff[KILN_DIGEST_STRLEN + 1];
    char *diff_v[2];
    kiln_oci_layout_t *lay = NULL;
    kiln_oci_image_manifest_t m = {0};
    kiln_oci_config_t cfg = {0};
    kiln_oci_desc_t layers[2] = {{0}}, cfg_desc = {0};
    kiln_error_t err = {0};

    if (kiln__oci_layout_open(fx.layout, &lay, &err) != 0 ||
        kiln__oci_layout_find(lay, fx.base, NULL, &m, NULL, &err) != 0 ||
        kiln__oci_layout_read_config(lay, &m, &cfg, &err) != 0) {
        fail_msg("base: %s", err.message);
    }
    snprintf(src, sizeof(src), "%s/derived", fx.dir);
    sh("mkdir -p '%s/etc' && echo derived > '%s/etc/derived'", src, src);
    assert_int_equal(kiln__oci_desc_copy(&layers[0], &m.layers[0], &err), 0);
    if (kiln__oci_write_layer(fx.layout, src, KILN_OCI_COMP_GZIP, &layers[1],
                              diff, &err) != 0) {
        fail_msg("derived layer: %s", err.message);
    }
    diff_v[0] = cfg.diff_ids.v[0];
    diff_v[1] = diff;
    {
        kiln_oci_strv_t keep = cfg.diff_ids;
        cfg.diff_ids.v = diff_v;
        cfg.diff_ids.n = 2;
        if (kiln__oci_write_config(fx.layout, &cfg, &cfg_desc, &err) != 0 ||
            kiln__oci_write_manifest(fx.layout, &cfg_desc, layers, 2, man,
                                     &err) != 0) {
            fail_msg("derived: %s", err.message);
        }
        cfg.diff_ids = keep;
    }
    snprintf(fx.derived, sizeof(fx.derived), "%s", man->digest);
    kiln__oci_config_clear(&cfg);
    kiln__oci_image_manifest_clear(&m);
    kiln__oci_layout_free(lay);
    kiln__oci_desc_clear(&layers[0]);
    kiln__oci_desc_clear(&layers[1]);
    kiln__oci_desc_clear(&cfg_desc);
}

/* An index of an amd64 and an arm64 image, beside the base in index.json. */
static void write_multi(void)
{
    kiln_oci_desc_t m[2] = {{0}}, ix = {0}, entries[3] = {{0}}, der = {0};
    kiln_error_t err = {0};

    arch_image("amd64", &m[0]);
    arch_image("arm64", &m[1]);
    derived_image(&der);
    if (kiln__oci_write_index_blob(fx.layout, m, 2, &ix, &err) != 0) {
        fail_msg("index: %s", err.message);
    }
    snprintf(fx.multi, sizeof(fx.multi), "%s", ix.digest);
    /* index.json: the base (as mkbase wrote it) and the index. */
    entries[0].media_type = KILN_OCI_MT_MANIFEST;
    snprintf(entries[0].digest, sizeof(entries[0].digest), "%s", fx.base);
    {
        char path[256];
        struct stat st;
        snprintf(path, sizeof(path), "%s/blobs/sha256/%s", fx.layout,
                 fx.base + 7);
        assert_int_equal(stat(path, &st), 0);
        entries[0].size = st.st_size;
    }
    entries[0].ref_name = "latest";
    entries[1] = ix;
    entries[1].ref_name = "multi";
    entries[2] = der;
    entries[2].ref_name = "derived";
    if (kiln__oci_write_index_json(fx.layout, entries, 3, &err) != 0) {
        fail_msg("index.json: %s", err.message);
    }
    entries[1].ref_name = NULL;
    entries[2].ref_name = NULL;
    kiln__oci_desc_clear(&der);
    kiln__oci_desc_clear(&m[0]);
    kiln__oci_desc_clear(&m[1]);
    kiln__oci_desc_clear(&ix);
}

static int group_setup(void **state)
{
    const char *mkbase = getenv("KILN_MKBASE");
    const char *bin = getenv("KILN_BIN");
    char cmd[512];
    FILE *p;

    (void)state;
    assert_non_null(mkbase);
    assert_non_null(bin);
    snprintf(fx.bin, sizeof(fx.bin), "%s", bin);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/kiln-layout-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    snprintf(fx.layout, sizeof(fx.layout), "%s/base", fx.dir);
    registry_start(&fx.reg);
    snprintf(cmd, sizeof(cmd), "'%s' --push %s/base:v1 '%s'", mkbase,
             fx.reg.host, fx.layout);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(fx.base, sizeof(fx.base), p));
    assert_int_equal(pclose(p), 0);
    fx.base[strcspn(fx.base, "\n")] = '\0';
    assert_int_equal(strlen(fx.base), KILN_DIGEST_STRLEN);
    write_multi();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    registry_remove(&fx.reg);
    sh("rm -rf '%s'", fx.dir);
    return 0;
}

/* ---- tests ---- */

static void test_layout_build(void **state)
{
    struct dirs *d = *state;
    kiln_definition_t *def = base_def();
    struct result r;

    build(d->root, d->out, def, base_layouts(), &r);
    if (r.rc != 0) {
        fail_msg("build: %s", r.err.message);
    }
    expect_base(d->out);
    assert_int_equal(r.stats.cached, 0);

    build(d->root, d->out, def, base_layouts(), &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.stats.cached, r.stats.total);
    expect_base(d->out);
    kiln_definition_free(def);
}

static void expect_failure(struct result *r, const char *want)
{
    if (r->rc == 0) {
        fail_msg("the build succeeded; wanted \"%s\"", want);
    }
    printf("# failed as expected: %s\n", r->err.message);
    if (strstr(r->err.message, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", r->err.message, want);
    }
}

static void test_layout_errors(void **state)
{
    struct dirs *d = *state;
    kiln_definition_t *def = base_def();
    char bad[160], pair[200], ref[128];
    const char *bad_layouts[] = {pair, NULL};
    const char *other[] = {"other=/tmp", NULL};
    struct result r;

    /* No layout for store "base". */
    build(d->root, d->out, def, NULL, &r);
    expect_failure(&r, "the build names no OCI layout 'base'");
    build(d->root, d->out, def, other, &r);
    expect_failure(&r, "the build names no OCI layout 'base'");

    /* A directory that is not there fails before anything runs. */
    snprintf(pair, sizeof(pair), "base=%s/nowhere", fx.dir);
    build(d->root, d->out, def, bad_layouts, &r);
    expect_failure(&r, "nowhere");

    /* A digest the layout does not hold. */
    kiln_definition_free(def);
    snprintf(ref, sizeof(ref), "busybox@sha256:%064d", 0);
    def = def_of("oci-layout", ref, NULL);
    build(d->root, d->out, def, base_layouts(), &r);
    expect_failure(&r, "sha256:0000");
    kiln_definition_free(def);

    /* A tampered layer: a digest mismatch, and nothing recorded. */
    snprintf(bad, sizeof(bad), "%s/tampered", fx.dir);
    sh("rm -rf '%s' && cp -r '%s' '%s'", bad, fx.layout, bad);
    sh("cd '%s/blobs/sha256' && for b in *; do "
       "if [ $(stat -c %%s $b) -gt 100000 ]; then "
       "tar -C '%s/arch-amd64' -czf $b .; fi; done",
       bad, fx.dir);
    snprintf(pair, sizeof(pair), "base=%s", bad);
    def = base_def();
    build(d->root, d->out, def, bad_layouts, &r);
    expect_failure(&r, "digest mismatch");
    /* A damaged one: the archive's own error. */
    sh("rm -rf '%s' && cp -r '%s' '%s'", bad, fx.layout, bad);
    sh("cd '%s/blobs/sha256' && for b in *; do "
       "if [ $(stat -c %%s $b) -gt 100000 ]; then "
       "printf 'X' | dd of=$b bs=1 seek=5000 conv=notrunc 2>/dev/null; "
       "fi; done",
       bad);
    build(d->root, d->out, def, bad_layouts, &r);
    expect_failure(&r, "layer sha256:");
    build(d->root, d->out, def, base_layouts(), &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.stats.cached, 0);
    expect_base(d->out);
    kiln_definition_free(def);
}

static void test_platform_index(void **state)
{
    struct dirs *d = *state;
    char ref[128], path[256], text[16];
    kiln_definition_t *def;
    struct result r;

    snprintf(ref, sizeof(ref), "multi@%s", fx.multi);
    def = def_of("oci-layout", ref, "arm64");
    build(d->root, d->out, def, base_layouts(), &r);
    kiln_definition_free(def);
    if (r.rc != 0) {
        fail_msg("arm64: %s", r.err.message);
    }
    snprintf(path, sizeof(path), "%s/arch", d->out);
    read_text(path, text, sizeof(text));
    assert_string_equal(text, "arm64");

    def = def_of("oci-layout", ref, "amd64");
    build(d->root, d->out, def, base_layouts(), &r);
    kiln_definition_free(def);
    assert_int_equal(r.rc, 0);
    read_text(path, text, sizeof(text));
    assert_string_equal(text, "amd64");

    def = def_of("oci-layout", ref, "s390x");
    build(d->root, d->out, def, base_layouts(), &r);
    kiln_definition_free(def);
    expect_failure(&r, "s390x");
}

/* kiln_source_resolve: the digest and config, no build. */
static void test_resolve_api(void **state)
{
    struct dirs *d = *state;
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t ctx = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_resolved_t *res = NULL;
    kiln_error_t err = {0};
    char id[256];
    const char *attrs[] = {"oci.store=base", NULL};
    int got = 0;

    eo.root = d->root;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    ctx.oci_layouts = base_layouts();
    snprintf(id, sizeof(id), "oci-layout://busybox@%s", fx.base);
    if (kiln_source_resolve(e, id, attrs, NULL, &ctx, &res, &err) != 0) {
        fail_msg("resolve: %s", err.message);
    }
    assert_int_equal(strlen(res->pin), KILN_DIGEST_STRLEN);
    for (size_t i = 0; i < res->n_meta; i++) {
        if (strcmp(res->keys[i], "image.digest") == 0) {
            assert_string_equal(res->values[i], fx.base);
            got++;
        } else if (strcmp(res->keys[i], "image.config") == 0) {
            assert_non_null(strstr(res->values[i], "\"Cmd\":[\"/bin/sh\"]"));
            assert_non_null(strstr(res->values[i], "PATH="));
            got++;
        }
    }
    assert_int_equal(got, 2);
    kiln_resolved_free(res);
    res = NULL;

    /* The same image from the registry: the same digest. */
    snprintf(id, sizeof(id), "docker-image://%s/base:v1", fx.reg.host);
    assert_int_equal(kiln_source_resolve(e, id, NULL, NULL, NULL, &res, &err),
                     0);
    assert_string_equal(res->values[0], fx.base);
    kiln_resolved_free(res);
    res = NULL;

    snprintf(id, sizeof(id), "docker-image://%s/base:nope", fx.reg.host);
    assert_int_equal(kiln_source_resolve(e, id, NULL, NULL, NULL, &res, &err),
                     KILN_ENOENT);
    assert_non_null(strstr(err.message, "image not found"));
    assert_int_equal(kiln_source_resolve(e, id, NULL, "linux", NULL, &res,
                                         &err),
                     KILN_EINVAL);
    assert_int_equal(
        kiln_source_resolve(e, "nope://x", NULL, NULL, NULL, &res, &err),
        KILN_ENOENT);
    assert_null(res);
    kiln_engine_free(e);
}

/* The CLI: kiln image inspect and kiln build --oci-layout. */
static void test_cli(void **state)
{
    struct dirs *d = *state;
    char cmd[2048], out[8192], path[256];
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_error_t err = {0};
    char ref[160];
    const char *params[] = {ref, "store=base", NULL};
    FILE *p, *f;
    size_t n;

    snprintf(cmd, sizeof(cmd),
             "'%s' image inspect --root '%s' %s/base:v1", fx.bin, d->root,
             fx.reg.host);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(out, fx.base));
    assert_non_null(strstr(out, "\"Cmd\""));
    assert_non_null(strstr(out, "\"platform\": \"linux/"));

    snprintf(cmd, sizeof(cmd),
             "out=$('%s' image inspect --root '%s' %s/base:nope 2>&1); "
             "test $? -eq 1 && echo \"$out\" | grep -q 'image not found'",
             fx.bin, d->root, fx.reg.host);
    sh("%s", cmd);
    snprintf(cmd, sizeof(cmd),
             "'%s' image inspect --root '%s' 'Bad/Ref:x' 2>&1 | "
             "grep -q 'must be lowercase'",
             fx.bin, d->root);
    sh("%s", cmd);

    /* A definition file built with --oci-layout. */
    snprintf(ref, sizeof(ref), "ref=busybox@%s", fx.base);
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_plugin_source(b, "oci-layout", params);
    snprintf(path, sizeof(path), "%s.pb", d->root);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(kiln_llb_write(b, st, f, &err), 0);
    fclose(f);
    kiln_llb_free(b);
    sh("'%s' build --progress plain --root '%s' --oci-layout base='%s' "
       "-o '%s' '%s' 2>/dev/null && test -x '%s/bin/busybox'",
       fx.bin, d->root, fx.layout, d->out, path, d->out);
    sh("'%s' build --root '%s' --oci-layout base '%s' 2>&1 | "
       "grep -q 'id=path/to/layout'",
       fx.bin, d->root, path);
    sh("rm -f '%s'", path);
}

/* The base from the layout, then an image sharing its layer: the layer is
 * reused, neither downloaded nor unpacked again; from the layout, and from
 * the registry (pushed there by skopeo). */
static void test_layer_reuse(void **state)
{
    struct dirs *d = *state;
    kiln_definition_t *def = base_def();
    char ref[128], path[256];
    struct result r;
    struct stat st;
    int blobs;

    build(d->root, d->out, def, base_layouts(), &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.reused, 0);
    kiln_definition_free(def);

    snprintf(ref, sizeof(ref), "derived@%s", fx.derived);
    def = def_of("oci-layout", ref, NULL);
    build(d->root, d->out, def, base_layouts(), &r);
    kiln_definition_free(def);
    if (r.rc != 0) {
        fail_msg("derived: %s", r.err.message);
    }
    expect_base(d->out);
    snprintf(path, sizeof(path), "%s/etc/derived", d->out);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(r.reused, 1);

    if (system("command -v skopeo >/dev/null 2>&1") != 0) {
        printf("# skopeo is not installed: the registry half skipped\n");
        return;
    }
    snprintf(ref, sizeof(ref), "%s/derived:v1", fx.reg.host);
    sh("skopeo copy --quiet --dest-tls-verify=false oci:'%s':derived "
       "docker://%s",
       fx.layout, ref);
    /* A fresh root that has the base only. */
    sh("rm -rf '%s'", d->root);
    def = base_def();
    build(d->root, d->out, def, base_layouts(), &r);
    assert_int_equal(r.rc, 0);
    kiln_definition_free(def);
    blobs = registry_log_count(&fx.reg, "GET /v2/derived/blobs/");
    def = def_of("docker-image", ref, NULL);
    build(d->root, d->out, def, NULL, &r);
    kiln_definition_free(def);
    if (r.rc != 0) {
        fail_msg("registry build: %s", r.err.message);
    }
    assert_int_equal(r.reused, 1);
    assert_int_equal(stat(path, &st), 0);
    /* The config and the new layer; not the base's layer. */
    blobs = registry_log_count(&fx.reg, "GET /v2/derived/blobs/") - blobs;
    printf("# blob GETs for the derived image: %d\n", blobs);
    assert_int_equal(blobs, 2);
}

static bool have(const char *tool)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Images skopeo pushed (OCI, and Docker schema 2) are pulled by kiln. */
static void test_skopeo_pushed(void **state)
{
    static const char *const formats[] = {"oci", "v2s2"};
    struct dirs *d = *state;

    if (!have("skopeo")) {
        printf("# skopeo is not installed (apt-get install skopeo): "
               "skipped\n");
        skip();
    }
    for (size_t i = 0; i < 2; i++) {
        kiln_definition_t *def;
        char ref[128];
        struct result r;

        snprintf(ref, sizeof(ref), "%s/skopeo-%s:v1", fx.reg.host,
                 formats[i]);
        sh("skopeo copy --quiet --format %s --dest-tls-verify=false "
           "oci:'%s':latest docker://%s",
           formats[i], fx.layout, ref);
        def = def_of("docker-image", ref, NULL);
        build(d->root, d->out, def, NULL, &r);
        kiln_definition_free(def);
        if (r.rc != 0) {
            fail_msg("%s: %s", formats[i], r.err.message);
        }
        expect_base(d->out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platform_index, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resolve_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skopeo_pushed, setup,
                                        teardown),
    };

    if (access("/bin/busybox", X_OK) != 0 || access(REGISTRY_BIN, X_OK) != 0) {
        printf("1..0 # SKIP needs /bin/busybox and %s (apt-get install "
               "busybox-static docker-registry)\n",
               REGISTRY_BIN);
        return 0;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
