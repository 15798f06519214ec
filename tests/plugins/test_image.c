/*
 * The docker-image source plugin through the public API, against Debian's
 * docker-registry started on 127.0.0.1. The fixture image (two layers of
 * busybox-static: the second adds a file and whites out one of the first)
 * is made with core/oci's layout writer and pushed with its registry
 * client, both compiled into this test; the builds use only <kiln/kiln.h>
 * and <kiln/llb.h>. Nothing leaves 127.0.0.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "net_fixture.h"
#include "registry_fixture.h"

#include <kiln/kiln.h>
#include <kiln/llb.h>

#include "oci/layout.h"
#include "oci/registry.h"

#define BUSYBOX      "/bin/busybox"

/* The registry and the image pushed to it, shared by every test. */
static struct {
    test_registry_t reg;
    int port;
    char ref[128];      /* "127.0.0.1:PORT/busybox:latest" */
    char digest[80];    /* the manifest's */
    char pin[80];       /* the pin BuildKit's key gives */
    char pin_json[256]; /* the JSON hashed into it */
} srv;

/* Per test: a store root and an output directory. */
struct fixture {
    char root[64];
    char out[64];
};

/* ---- the fixture image ---- */

/* Pushes blob `d` of layout `lay`. */
static void push_blob(kiln__oci_reg_t *r, const char *registry, const char *lay,
                      const char *d)
{
    char path[256];
    kiln_error_t err = {0};
    uint8_t *data;
    size_t len;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", lay, d + 7);
    if (kiln__read_file(path, 64u << 20, &data, &len, &err) != 0 ||
        kiln__oci_blob_push(r, registry, "busybox", d, data, len, &err) != 0) {
        fail_msg("push %s: %s", d, err.message);
    }
    free(data);
}

/* Two layers: busybox, bin/sh, etc/hostname and etc/gone; then etc/added
 * and a whiteout of etc/gone. Pushed as 127.0.0.1:PORT/busybox:latest. */
static void push_image(void)
{
    char lay[128], l1[128], l2[128], diff[2][KILN_DIGEST_STRLEN + 1];
    char host[64], json[256];
    kiln_oci_desc_t layers[2] = {{0}}, cfg_desc = {0}, man_desc = {0};
    kiln_oci_config_t cfg = {0};
    kiln_oci_platform_t p;
    kiln__oci_reg_t *r = NULL;
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char *diff_v[2] = {diff[0], diff[1]};
    uint8_t *body;
    size_t len;

    snprintf(lay, sizeof(lay), "%s/layout", srv.reg.dir);
    snprintf(l1, sizeof(l1), "%s/l1", srv.reg.dir);
    snprintf(l2, sizeof(l2), "%s/l2", srv.reg.dir);
    sh("mkdir -p %s/bin %s/etc %s/etc && cp %s %s/bin/busybox && "
       "chmod 0755 %s/bin/busybox && ln -s busybox %s/bin/sh && "
       "echo kiln > %s/etc/hostname && echo bye > %s/etc/gone && "
       "echo hi > %s/etc/added && : > %s/etc/.wh.gone",
       l1, l1, l2, BUSYBOX, l1, l1, l1, l1, l1, l2, l2);
    assert_int_equal(kiln__oci_layout_init(lay, &err), 0);
    if (kiln__oci_write_layer(lay, l1, KILN_OCI_COMP_GZIP, &layers[0], diff[0],
                              &err) != 0 ||
        kiln__oci_write_layer(lay, l2, KILN_OCI_COMP_GZIP, &layers[1], diff[1],
                              &err) != 0) {
        fail_msg("layer: %s", err.message);
    }
    kiln__oci_platform_host(&p);
    cfg.os = p.os;
    cfg.architecture = p.arch;
    cfg.variant = p.variant[0] != '\0' ? p.variant : NULL;
    cfg.diff_ids.v = diff_v;
    cfg.diff_ids.n = 2;
    if (kiln__oci_write_config(lay, &cfg, &cfg_desc, &err) != 0 ||
        kiln__oci_write_manifest(lay, &cfg_desc, layers, 2, &man_desc, &err) !=
            0) {
        fail_msg("manifest: %s", err.message);
    }

    snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
    assert_int_equal(kiln__oci_reg_new(NULL, &r, &err), 0);
    push_blob(r, host, lay, layers[0].digest);
    push_blob(r, host, lay, layers[1].digest);
    push_blob(r, host, lay, cfg_desc.digest);
    snprintf(srv.ref, sizeof(srv.ref), "%s/busybox:latest", host);
    assert_int_equal(kiln__oci_ref_parse(srv.ref, &ref, &err), 0);
    snprintf(json, sizeof(json), "%s/blobs/sha256/%s", lay,
             man_desc.digest + 7);
    assert_int_equal(kiln__read_file(json, 1u << 20, &body, &len, &err), 0);
    if (kiln__oci_manifest_put(r, &ref, KILN_OCI_MT_MANIFEST, body, len, NULL,
                               &err) != 0) {
        fail_msg("manifest put: %s", err.message);
    }
    free(body);
    snprintf(srv.digest, sizeof(srv.digest), "%s", man_desc.digest);

    /* BuildKit's index-0 key: Go's JSON of its struct, in field order. */
    if (p.variant[0] != '\0') {
        snprintf(json, sizeof(json),
                 "{\"Digest\":\"%s\",\"OS\":\"%s\",\"Arch\":\"%s\","
                 "\"Variant\":\"%s\"}",
                 srv.digest, p.os, p.arch, p.variant);
    } else {
        snprintf(json, sizeof(json),
                 "{\"Digest\":\"%s\",\"OS\":\"%s\",\"Arch\":\"%s\"}",
                 srv.digest, p.os, p.arch);
    }
    assert_int_equal(kiln__sha256_digest(json, strlen(json), srv.pin), 0);
    snprintf(srv.pin_json, sizeof(srv.pin_json), "%s", json);

    kiln__oci_ref_clear(&ref);
    kiln__oci_reg_free(r);
    kiln__oci_desc_clear(&layers[0]);
    kiln__oci_desc_clear(&layers[1]);
    kiln__oci_desc_clear(&cfg_desc);
    kiln__oci_desc_clear(&man_desc);
}

/* ---- the registry ---- */

static int start_registry(void **state)
{
    (void)state;
    registry_start(&srv.reg);
    srv.port = srv.reg.port;
    push_image();
    return 0;
}

static int stop_registry(void **state)
{
    (void)state;
    registry_remove(&srv.reg);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->root, sizeof(f->root), "/tmp/kiln-image-root-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->out, sizeof(f->out), "%s.out", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    sh("chmod -R u+w '%s' 2>/dev/null; rm -rf '%s' '%s'", f->root, f->root,
       f->out);
    free(f);
    return 0;
}

/* ---- builds ---- */

/* The image with /kiln.txt made on it. */
static kiln_definition_t *image_def_mode(const char *ref,
                                         kiln_llb_resolve_mode_t mode)
{
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_llb_file_t *fa;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_image(b, ref);
    if (mode != KILN_LLB_RESOLVE_DEFAULT) {
        st = kiln_llb_image_resolve_mode(st, mode);
    }
    fa =
        kiln_llb_mkfile(kiln_llb_actions(b), "/kiln.txt", 0644, "made\n", 5, 0);
    st = kiln_llb_file(st, fa);
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("%s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

static kiln_definition_t *image_def(const char *ref)
{
    return image_def_mode(ref, KILN_LLB_RESOLVE_DEFAULT);
}

struct result {
    int rc;
    kiln_error_t err;
    kiln_solve_stats_t stats;
    char pin[80]; /* the image plugin's, from the DEBUG messages */
    char warning[1024]; /* the last WARNING event */
};

static void on_event(const kiln_event_t *ev, void *ud)
{
    struct result *r = ud;

    if (ev->type == KILN_EVENT_WARNING && ev->data != NULL) {
        snprintf(r->warning, sizeof(r->warning), "%.*s", (int)ev->len,
                 (const char *)ev->data);
    }
    if (ev->type == KILN_EVENT_MESSAGE && ev->data != NULL) {
        char msg[1024];
        const char *at;
        snprintf(msg, sizeof(msg), "%.*s", (int)ev->len,
                 (const char *)ev->data);
        if (strncmp(msg, "image pinned to ", 16) == 0 &&
            (at = strstr(msg, "pinned to sha256:")) != NULL) {
            snprintf(r->pin, sizeof(r->pin), "%.71s", at + 10);
        }
    }
}

static void run_opts(struct fixture *f, kiln_definition_t *def, int no_cache,
                     struct result *r)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_solve_t *s;

    sh("rm -rf '%s' && mkdir '%s'", f->out, f->out);
    memset(r, 0, sizeof(*r));
    eo.root = f->root;
    eo.log_level = KILN_LOG_DEBUG;
    if (kiln_engine_new(&eo, &r->err, &e) < 0) {
        fail_msg("engine: %s", r->err.message);
    }
    so.definition = def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = f->out;
    so.on_event = on_event;
    so.userdata = r;
    so.no_cache = no_cache;
    if (kiln_solve_start(e, &so, &r->err, &s) < 0) {
        fail_msg("solve: %s", r->err.message);
    }
    r->rc = kiln_solve_wait(s, &r->err);
    kiln_solve_stats(s, &r->stats);
    kiln_solve_free(s);
    kiln_engine_free(e);
}

static void run(struct fixture *f, kiln_definition_t *def, struct result *r)
{
    run_opts(f, def, 0, r);
}

static void build_fails(struct fixture *f, const char *ref, const char *want)
{
    kiln_definition_t *def = image_def(ref);
    struct result r;

    run(f, def, &r);
    kiln_definition_free(def);
    if (r.rc == 0) {
        fail_msg("the build of %s succeeded", ref);
    }
    printf("# failed as expected: %s\n", r.err.message);
    if (strstr(r.err.message, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", r.err.message, want);
    }
}

static void expect_content(const struct fixture *f, const char *rel,
                           const char *want)
{
    char path[256], buf[64] = {0};
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->out, rel);
    fp = fopen(path, "r");
    if (fp == NULL) {
        fail_msg("%s: %s", rel, strerror(errno));
    }
    assert_true(fread(buf, 1, sizeof(buf) - 1, fp) > 0);
    fclose(fp);
    assert_string_equal(buf, want);
}

static void expect_tree(const struct fixture *f)
{
    char path[256], link[64] = {0};
    struct stat st;

    snprintf(path, sizeof(path), "%s/bin/busybox", f->out);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_true((st.st_mode & 0111) != 0);
    assert_int_equal(access(path, X_OK), 0);
    snprintf(path, sizeof(path), "%s/bin/sh", f->out);
    assert_true(readlink(path, link, sizeof(link) - 1) > 0);
    assert_string_equal(link, "busybox");
    expect_content(f, "etc/hostname", "kiln\n");
    expect_content(f, "etc/added", "hi\n");
    expect_content(f, "kiln.txt", "made\n");
    snprintf(path, sizeof(path), "%s/etc/gone", f->out);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/etc/.wh.gone", f->out);
    assert_int_equal(lstat(path, &st), -1);
}

/* ---- tests ---- */

static void test_translate(void **state)
{
    const char *ok[] = {"ref=127.0.0.1:5000/busybox:latest", "resolvemode=pull",
                        "layerlimit=1", NULL};
    const char *plain[] = {"ref=docker.io/library/busybox:latest", NULL};
    const char *bare[] = {"ref=busybox", NULL};
    const char *bad[] = {"ref=busybox/Upper", NULL};
    const char *lay[] = {"ref=busybox@sha256:"
                         "4edcf4cbb0f5d920b278869fc0740829a366c921fbb9c142"
                         "990568ae55d87b39",
                         "store=base", "layerlimit=1", NULL};
    const char *lay_tag[] = {"ref=busybox:latest", NULL};
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};

    (void)state;
    if (kiln_source_translate(NULL, "docker-image", ok, &t, &err) < 0) {
        fail_msg("%s", err.message);
    }
    assert_string_equal(t->identifier,
                        "docker-image://127.0.0.1:5000/busybox:latest");
    assert_int_equal(t->n_attrs, 2);
    assert_string_equal(t->keys[0], "image.layerlimit");
    assert_string_equal(t->values[0], "1");
    assert_string_equal(t->keys[1], "image.resolvemode");
    assert_string_equal(t->values[1], "pull");
    kiln_translated_free(t);
    t = NULL;

    assert_int_equal(
        kiln_source_translate(NULL, "docker-image", plain, &t, &err), 0);
    assert_string_equal(t->identifier,
                        "docker-image://docker.io/library/busybox:latest");
    assert_int_equal(t->n_attrs, 0);
    kiln_translated_free(t);
    t = NULL;

    /* Normalized as llb.Image does. */
    assert_int_equal(
        kiln_source_translate(NULL, "docker-image", bare, &t, &err), 0);
    assert_string_equal(t->identifier,
                        "docker-image://docker.io/library/busybox:latest");
    kiln_translated_free(t);
    t = NULL;

    assert_int_equal(kiln_source_translate(NULL, "docker-image", bad, &t, &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.message, "must be lowercase"));
    kiln_translated_free(t);
    t = NULL;

    /* oci-layout: kept as given (llb.OCILayout), with its attrs. */
    assert_int_equal(kiln_source_translate(NULL, "oci-layout", lay, &t, &err),
                     0);
    assert_string_equal(t->identifier, "oci-layout://busybox@sha256:"
                                       "4edcf4cbb0f5d920b278869fc0740829a366c9"
                                       "21fbb9c142990568ae55d87b39");
    assert_int_equal(t->n_attrs, 2);
    assert_string_equal(t->keys[0], "oci.layerlimit");
    assert_string_equal(t->keys[1], "oci.store");
    assert_string_equal(t->values[1], "base");
    kiln_translated_free(t);
    t = NULL;
    assert_int_equal(
        kiln_source_translate(NULL, "oci-layout", lay_tag, &t, &err),
        KILN_EINVAL);
    assert_non_null(strstr(err.message, "must carry a digest"));
    kiln_translated_free(t);
}

static void test_build_and_cache(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = image_def(srv.ref);
    struct result r;
    int blobs;

    run(f, def, &r);
    if (r.rc != 0) {
        fail_msg("build failed: %s", r.err.message);
    }
    expect_tree(f);
    assert_string_equal(r.pin, srv.pin);
    blobs = registry_log_count(&srv.reg, "GET /v2/busybox/blobs/");
    printf("# first build: %u ops, %u cached; %d blob GETs\n", r.stats.total,
           r.stats.cached, blobs);
    assert_true(blobs >= 2);

    run(f, def, &r);
    if (r.rc != 0) {
        fail_msg("second build failed: %s", r.err.message);
    }
    expect_tree(f);
    printf("# second build: %u ops, %u cached\n", r.stats.total,
           r.stats.cached);
    assert_true(r.stats.total > 0);
    assert_int_equal(r.stats.cached, r.stats.total);
    assert_int_equal(registry_log_count(&srv.reg, "GET /v2/busybox/blobs/"), blobs);

    /* Run again: the layers come from the blob store, not the registry. */
    run_opts(f, def, 1, &r);
    if (r.rc != 0) {
        fail_msg("no-cache build failed: %s", r.err.message);
    }
    expect_tree(f);
    printf("# no-cache build: %u ops, %u run\n", r.stats.total, r.stats.run);
    assert_int_equal(r.stats.cached, 0);
    assert_int_equal(registry_log_count(&srv.reg, "GET /v2/busybox/blobs/"), blobs);
    kiln_definition_free(def);
}

/* image.layerlimit=1: only the bottom layer, and a pin of its own. */
static void test_layer_limit(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_error_t err = {0};
    struct result r;
    char path[256], json[512], want[80];
    struct stat sb;
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_image_layer_limit(kiln_llb_image(b, srv.ref), 1);
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("%s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    run(f, def, &r);
    kiln_definition_free(def);
    if (r.rc != 0) {
        fail_msg("build failed: %s", r.err.message);
    }
    expect_content(f, "etc/gone", "bye\n");
    snprintf(path, sizeof(path), "%s/etc/added", f->out);
    assert_int_equal(lstat(path, &sb), -1);
    /* The key of the full image with "Limit":1 appended. */
    snprintf(json, sizeof(json), "%s", srv.pin_json);
    snprintf(json + strlen(json) - 1, sizeof(json) - strlen(json) + 1,
             ",\"Limit\":1}");
    assert_int_equal(kiln__sha256_digest(json, strlen(json), want), 0);
    assert_string_equal(r.pin, want);
}

/* image.resolvemode=local: a resolved image is pinned again without the
 * registry. Stops the registry, so it runs last. */
static void test_resolve_local(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = image_def_mode(srv.ref, KILN_LLB_RESOLVE_LOCAL);
    struct result r;

    run(f, def, &r);
    if (r.rc != 0) {
        fail_msg("build failed: %s", r.err.message);
    }
    expect_tree(f);
    assert_string_equal(r.pin, srv.pin);

    registry_stop(&srv.reg);
    assert_false(port_open(srv.port));
    run(f, def, &r);
    if (r.rc != 0) {
        fail_msg("offline build failed: %s", r.err.message);
    }
    expect_tree(f);
    assert_string_equal(r.pin, srv.pin);
    assert_int_equal(r.stats.cached, r.stats.total);
    kiln_definition_free(def);

    /* The default mode asks the registry, and on failure falls back to
     * the image resolved before, with a warning. */
    def = image_def(srv.ref);
    run(f, def, &r);
    kiln_definition_free(def);
    if (r.rc != 0) {
        fail_msg("default mode, registry gone: %s", r.err.message);
    }
    assert_string_equal(r.pin, srv.pin);
    assert_non_null(strstr(r.warning, "cannot reach registry"));
    assert_non_null(strstr(r.warning, "using the image resolved before"));

    /* pull mode asks the registry, and it is gone. */
    def = image_def_mode(srv.ref, KILN_LLB_RESOLVE_PULL);
    run(f, def, &r);
    kiln_definition_free(def);
    assert_int_not_equal(r.rc, 0);
    assert_non_null(strstr(r.err.message, "cannot reach registry"));

    /* A reference pinned by digest needs no registry in any mode. */
    {
        char pinned[256];
        snprintf(pinned, sizeof(pinned), "%s@%s", srv.ref, srv.digest);
        def = image_def_mode(pinned, KILN_LLB_RESOLVE_PULL);
    }
    run(f, def, &r);
    kiln_definition_free(def);
    assert_int_equal(r.rc, 0);
    r.err.message[0] = '\0';
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    char ref[128];

    snprintf(ref, sizeof(ref), "127.0.0.1:%d/busybox:nosuchtag", srv.port);
    build_fails(f, ref, "image not found");
    snprintf(ref, sizeof(ref), "127.0.0.1:%d/nosuchrepo:latest", srv.port);
    build_fails(f, ref, "image not found");
    snprintf(ref, sizeof(ref), "127.0.0.1:%d/busybox:latest", free_port());
    build_fails(f, ref, "cannot reach registry");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate),
        cmocka_unit_test_setup_teardown(test_build_and_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_local, setup, teardown),
    };
    const char *proxies[] = {"http_proxy",  "https_proxy", "HTTP_PROXY",
                             "HTTPS_PROXY", "all_proxy",   "ALL_PROXY",
                             "no_proxy",    "NO_PROXY"};

    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        unsetenv(proxies[i]);
    }
    if (access(REGISTRY_BIN, X_OK) != 0) {
        printf("1..0 # SKIP %s not found\n", REGISTRY_BIN);
        return 0;
    }
    if (access(BUSYBOX, X_OK) != 0) {
        printf("1..0 # SKIP %s not found (apt-get install busybox-static)\n",
               BUSYBOX);
        return 0;
    }
    return cmocka_run_group_tests(tests, start_registry, stop_registry);
}
