/*
 * BuildKit's vector e_run_file (tests/data/llb, from ../shared/testdata):
 * exec steps and file ops on docker-image://127.0.0.1:5000/busybox:latest.
 * The busybox rootfs (exec_fixture.h) is pushed as busybox:latest to
 * Debian's docker-registry on a free 127.0.0.1 port, and the vector's
 * graph is made again with the C builder, only the image reference
 * pointing at that port: the same builder with port 5000 gives the
 * vector's bytes exactly, which the test checks first. The build runs,
 * exports to a directory, and runs again fully cached.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_fixture.h"
#include "net_fixture.h"
#include "oci/layout.h"
#include "oci/registry.h"

#define REGISTRY_BIN "/usr/bin/docker-registry"

static struct {
    char dir[64];
    int port;
    pid_t pid;
    char log[128];
    ex_fixture_t fx; /* the rootfs the image is made of */
    char skip[256];
} srv;

static void push_blob(kiln__oci_reg_t *r, const char *host, const char *lay,
                      const char *d)
{
    char path[256];
    kiln_error_t err = {0};
    uint8_t *data;
    size_t len;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", lay, d + 7);
    if (kiln__read_file(path, 64u << 20, &data, &len, &err) != 0 ||
        kiln__oci_blob_push(r, host, "busybox", d, data, len, &err) != 0) {
        fail_msg("push %s: %s", d, err.message);
    }
    free(data);
}

/* The rootfs as a one-layer image, pushed as busybox:latest. */
static void push_image(void)
{
    char lay[128], host[64], ref[128], path[256];
    char diff[KILN_DIGEST_STRLEN + 1];
    char *diff_v[1] = {diff};
    kiln_oci_desc_t layer = {0}, cfg_desc = {0}, man_desc = {0};
    kiln_oci_config_t cfg = {0};
    kiln_oci_platform_t p;
    kiln__oci_reg_t *r = NULL;
    kiln__oci_ref_t oref = {0};
    kiln_error_t err = {0};
    uint8_t *body;
    size_t len;

    snprintf(lay, sizeof(lay), "%s/layout", srv.dir);
    assert_int_equal(kiln__oci_layout_init(lay, &err), 0);
    if (kiln__oci_write_layer(lay, srv.fx.rootfs, KILN_OCI_COMP_GZIP, &layer,
                              diff, &err) != 0) {
        fail_msg("layer: %s", err.message);
    }
    kiln__oci_platform_host(&p);
    cfg.os = p.os;
    cfg.architecture = p.arch;
    cfg.variant = p.variant[0] != '\0' ? p.variant : NULL;
    cfg.diff_ids.v = diff_v;
    cfg.diff_ids.n = 1;
    if (kiln__oci_write_config(lay, &cfg, &cfg_desc, &err) != 0 ||
        kiln__oci_write_manifest(lay, &cfg_desc, &layer, 1, &man_desc, &err) !=
            0) {
        fail_msg("manifest: %s", err.message);
    }
    snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
    assert_int_equal(kiln__oci_reg_new(NULL, &r, &err), 0);
    push_blob(r, host, lay, layer.digest);
    push_blob(r, host, lay, cfg_desc.digest);
    snprintf(ref, sizeof(ref), "%s/busybox:latest", host);
    assert_int_equal(kiln__oci_ref_parse(ref, &oref, &err), 0);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", lay,
             man_desc.digest + 7);
    assert_int_equal(kiln__read_file(path, 1u << 20, &body, &len, &err), 0);
    if (kiln__oci_manifest_put(r, &oref, KILN_OCI_MT_MANIFEST, body, len, NULL,
                               &err) != 0) {
        fail_msg("manifest put: %s", err.message);
    }
    free(body);
    kiln__oci_ref_clear(&oref);
    kiln__oci_reg_free(r);
    kiln__oci_desc_clear(&layer);
    kiln__oci_desc_clear(&cfg_desc);
    kiln__oci_desc_clear(&man_desc);
}

static int start_registry(void **state)
{
    char cfg[128], text[1024];
    struct utsname u;
    FILE *fp;

    (void)state;
    if (!ex_namespaces_ok(srv.skip, sizeof(srv.skip))) {
        fprintf(stderr, "# skipping: %s\n", srv.skip);
        return 0;
    }
    /* The vector's ops carry platform linux/amd64. */
    if (uname(&u) == 0 && strcmp(u.machine, "x86_64") != 0) {
        snprintf(srv.skip, sizeof(srv.skip),
                 "the vector is for linux/amd64, this machine is %s",
                 u.machine);
        return 0;
    }
    ex_setup(&srv.fx);
    snprintf(srv.dir, sizeof(srv.dir), "%s/registry", srv.fx.base);
    assert_int_equal(mkdir(srv.dir, 0700), 0);
    srv.port = free_port();
    snprintf(text, sizeof(text),
             "version: 0.1\nlog:\n  level: error\n"
             "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
             "http:\n  addr: 127.0.0.1:%d\n",
             srv.dir, srv.port);
    snprintf(cfg, sizeof(cfg), "%s/config.yml", srv.dir);
    fp = fopen(cfg, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    snprintf(srv.log, sizeof(srv.log), "%s/registry.log", srv.dir);
    srv.pid = fork();
    assert_true(srv.pid >= 0);
    if (srv.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(srv.log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(REGISTRY_BIN, "docker-registry", "serve", cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400 && !port_open(srv.port); i++) {
        int st;
        if (waitpid(srv.pid, &st, WNOHANG) == srv.pid) {
            fail_msg("docker-registry exited; see %s", srv.log);
        }
        usleep(50000);
    }
    assert_true(port_open(srv.port));
    push_image();
    return 0;
}

static int stop_registry(void **state)
{
    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    if (srv.fx.base[0] != '\0') {
        ex_teardown(&srv.fx);
    }
    return 0;
}

/* e_run_file as tests/unit/test_llb_builder.c makes it, on `ref`. */
static kiln_llb_t *run_file(const char *ref, kiln_llb_state_t **res)
{
    kiln_llb_t *b = NULL;
    kiln_llb_state_t *img;
    kiln_llb_exec_t *ex;
    kiln_llb_file_t *fa;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_LEGACY, &b), 0);
    assert_int_equal(kiln_llb_set_platform(b, "linux", "amd64", NULL), 0);
    img = kiln_llb_image(b, ref);
    ex = kiln_llb_exec(
        img, (const char *const[]){"sh", "-c", "echo hi > /out/x", NULL});
    kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
    fa =
        kiln_llb_mkdir(kiln_llb_actions(b), "/d", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_mkfile(fa, "/d/f", 0644, "hello\n", 6, 0);
    fa = kiln_llb_copy(fa, img, "/etc/passwd", "/d/passwd", 0);
    fa = kiln_llb_mkfile(fa, "/tmpfile", 0600, "remove me", 9, 0);
    fa = kiln_llb_rm(fa, "/tmpfile", 0);
    *res = kiln_llb_file(kiln_llb_exec_output(ex, "/out"), fa);
    return b;
}

static void test_same_bytes(void **state)
{
    kiln_llb_state_t *res;
    kiln_llb_t *b = run_file("127.0.0.1:5000/busybox:latest", &res);
    kiln_error_t err = {0};
    uint8_t *bytes, *want;
    size_t len, want_len;
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/llb/e_run_file.pb",
             getenv("KILN_TEST_DATA"));
    assert_int_equal(kiln__read_file(path, 1u << 20, &want, &want_len, &err),
                     0);
    assert_int_equal(kiln_llb_marshal(b, res, &bytes, &len, &err), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(bytes, want, len);
    kiln_free(bytes);
    free(want);
    kiln_llb_free(b);
}

static void test_builds(void **state)
{
    kiln_llb_state_t *res;
    kiln_llb_t *b;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char ref[128], buf[512], passwd[512], path[256];
    FILE *fp;

    (void)state;
    if (srv.skip[0] != '\0') {
        print_message("skipped: %s\n", srv.skip);
        skip();
    }
    snprintf(ref, sizeof(ref), "127.0.0.1:%d/busybox:latest", srv.port);
    b = run_file(ref, &res);
    def = ex_def(b, res);
    kiln_llb_free(b);
    ex_solve(&srv.fx, def, NULL, &r);
    if (r.rc != 0) {
        fail_msg("build failed: %s", r.err.message);
    }
    assert_int_equal(r.stats.run, 3);
    assert_true(ex_read_out(&srv.fx, "x", buf, sizeof(buf)));
    assert_string_equal(buf, "hi\n");
    assert_true(ex_read_out(&srv.fx, "d/f", buf, sizeof(buf)));
    assert_string_equal(buf, "hello\n");
    assert_true(ex_read_out(&srv.fx, "d/passwd", buf, sizeof(buf)));
    snprintf(path, sizeof(path), "%s/etc/passwd", srv.fx.rootfs);
    fp = fopen(path, "r");
    assert_non_null(fp);
    passwd[fread(passwd, 1, sizeof(passwd) - 1, fp)] = '\0';
    fclose(fp);
    assert_string_equal(buf, passwd);
    assert_false(ex_out_exists(&srv.fx, "tmpfile"));
    assert_false(ex_out_exists(&srv.fx, "bin"));

    /* Again: nothing runs. */
    ex_solve(&srv.fx, def, NULL, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.stats.run, 0);
    assert_int_equal(r.stats.cached, r.stats.total);
    assert_true(ex_read_out(&srv.fx, "x", buf, sizeof(buf)));
    assert_string_equal(buf, "hi\n");
    kiln_definition_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes),
        cmocka_unit_test(test_builds),
    };
    char why[256];

    /* Where the kernel forbids what an exec needs, the whole file is
     * skipped (TAP "1..0 # SKIP"), saying why. */
    if (!ex_namespaces_ok(why, sizeof(why))) {
        printf("1..0 # SKIP the kernel forbids namespaces exec needs: %s\n",
               why);
        return 0;
    }
    return cmocka_run_group_tests(tests, start_registry, stop_registry);
}
