/*
 * Pulling an image: kiln's docker-image source against skopeo + umoci on
 * the same image, in the same run. A 5-layer image of ~200 MB
 * (KILN_BENCH_PULL_MB scales it; half of each file random bytes, half
 * text, so it compresses as binaries do) is written with kiln's OCI
 * writer and pushed to docker-registry on 127.0.0.1. Then:
 *
 *   kiln cold      a fresh store root: manifest, config, 5 layer blobs
 *                  downloaded, verified and unpacked into a snapshot
 *   kiln warm      --no-cache on the same root: blobs and unpacked layers
 *                  present, the image resolved and stacked again
 *   kiln cached    a plain rebuild: the source's record is found
 *   skopeo+umoci   `skopeo copy docker://REF oci:DIR:v1` then `umoci raw
 *                  unpack` into a rootfs, cold (empty DIR) and warm
 *                  (blobs already in DIR: only the unpack is redone)
 *
 * Prints the figures and whether the targets are met (cold at least 1.5x
 * faster than skopeo+umoci, warm under 1 s); asserts nothing.
 * Run: meson test -C build --benchmark -v pull
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* registry_fixture.h's checks, without cmocka. */
#define fail_msg(...)                                                          \
    do {                                                                       \
        fprintf(stderr, "bench_pull: " __VA_ARGS__);                           \
        fputc('\n', stderr);                                                   \
        exit(1);                                                               \
    } while (0)
#define assert_true(x)                                                         \
    do {                                                                       \
        if (!(x)) {                                                            \
            fail_msg("%s:%d: %s", __FILE__, __LINE__, #x);                     \
        }                                                                      \
    } while (0)
#define assert_non_null(x)     assert_true((x) != NULL)
#define assert_int_equal(a, b) assert_true((a) == (b))

#include "net_fixture.h"
#include "../plugins/registry_fixture.h"

#include <kiln/kiln.h>
#include <kiln/llb.h>

#include "oci/layout.h"
#include "oci/registry.h"

#define LAYERS 5

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* `mb` MB of 100 kB files under dir: half random, half text. */
static void make_layer(const char *dir, size_t mb)
{
    static const char words[] = "the kiln build engine runs llb graphs ";
    size_t n = mb * 10;
    char path[512];
    uint8_t *buf = malloc(100000);

    assert_non_null(buf);
    sh("mkdir -p '%s'", dir);
    for (size_t i = 0; i < n; i++) {
        FILE *f;
        for (size_t j = 0; j < 50000; j += 8) {
            uint64_t r = next_rand();
            memcpy(buf + j, &r, 8);
        }
        for (size_t j = 50000; j < 100000; j++) {
            buf[j] = (uint8_t)words[(j + i) % (sizeof(words) - 1)];
        }
        snprintf(path, sizeof(path), "%s/f%04zu", dir, i);
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_true(fwrite(buf, 1, 100000, f) == 100000);
        fclose(f);
    }
    free(buf);
}

static void push_blob(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                      const char *lay, const char *digest)
{
    char path[512];
    kiln_error_t err = {0};
    uint8_t *data;
    size_t len;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", lay, digest + 7);
    if (kiln__read_file(path, 1u << 30, &data, &len, &err) != 0 ||
        kiln__oci_blob_push(r, ref->registry, ref->repository, digest, data,
                            len, &err) != 0) {
        fail_msg("push %s: %s", digest, err.message);
    }
    free(data);
}

/* The image, as layout dir/layout and pushed as ref. */
static uint64_t make_image(const char *dir, const char *ref_s, size_t mb)
{
    char lay[256], src[256], diff[LAYERS][KILN_DIGEST_STRLEN + 1];
    char *diff_v[LAYERS], path[512];
    kiln_oci_desc_t layers[LAYERS] = {{0}}, cfg_desc = {0}, man = {0};
    kiln_oci_config_t cfg = {0};
    kiln_oci_platform_t p;
    kiln__oci_reg_t *r = NULL;
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    uint64_t bytes = 0;
    uint8_t *body;
    size_t len;

    snprintf(lay, sizeof(lay), "%s/layout", dir);
    assert_int_equal(kiln__oci_layout_init(lay, &err), 0);
    for (int i = 0; i < LAYERS; i++) {
        snprintf(src, sizeof(src), "%s/src%d/l%d", dir, i, i);
        make_layer(src, mb / LAYERS);
        snprintf(src, sizeof(src), "%s/src%d", dir, i);
        if (kiln__oci_write_layer(lay, src, KILN_OCI_COMP_GZIP, &layers[i],
                                  diff[i], &err) != 0) {
            fail_msg("layer: %s", err.message);
        }
        diff_v[i] = diff[i];
        bytes += (uint64_t)layers[i].size;
        sh("rm -rf '%s'", src);
    }
    kiln__oci_platform_host(&p);
    cfg.os = p.os;
    cfg.architecture = p.arch;
    cfg.diff_ids.v = diff_v;
    cfg.diff_ids.n = LAYERS;
    if (kiln__oci_write_config(lay, &cfg, &cfg_desc, &err) != 0 ||
        kiln__oci_write_manifest(lay, &cfg_desc, layers, LAYERS, &man,
                                 &err) != 0 ||
        kiln__oci_ref_parse(ref_s, &ref, &err) != 0 ||
        kiln__oci_reg_new(NULL, &r, &err) != 0) {
        fail_msg("image: %s", err.message);
    }
    for (int i = 0; i < LAYERS; i++) {
        push_blob(r, &ref, lay, layers[i].digest);
        kiln__oci_desc_clear(&layers[i]);
    }
    push_blob(r, &ref, lay, cfg_desc.digest);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", lay, man.digest + 7);
    if (kiln__read_file(path, 1u << 20, &body, &len, &err) != 0 ||
        kiln__oci_manifest_put(r, &ref, KILN_OCI_MT_MANIFEST, body, len, NULL,
                               &err) != 0) {
        fail_msg("manifest: %s", err.message);
    }
    free(body);
    kiln__oci_desc_clear(&cfg_desc);
    kiln__oci_desc_clear(&man);
    kiln__oci_ref_clear(&ref);
    kiln__oci_reg_free(r);
    sh("rm -rf '%s'", lay);
    return bytes;
}

/* One solve of docker-image://ref (no export): seconds. */
static double pull(const char *root, const char *ref, bool no_cache,
                   kiln_solve_stats_t *stats)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_definition_t *def = NULL;
    kiln_engine_t *e;
    kiln_solve_t *s;
    kiln_error_t err = {0};
    kiln_llb_t *b;
    uint8_t *bytes;
    size_t len;
    double t0;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    if (kiln_llb_marshal(b, kiln_llb_image(b, ref), &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("definition: %s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    t0 = now();
    eo.root = root;
    if (kiln_engine_new(&eo, &err, &e) < 0) {
        fail_msg("engine: %s", err.message);
    }
    so.definition = def;
    so.no_cache = no_cache;
    if (kiln_solve_start(e, &so, &err, &s) < 0 ||
        kiln_solve_wait(s, &err) != 0) {
        fail_msg("pull: %s", err.message);
    }
    kiln_solve_stats(s, stats);
    kiln_solve_free(s);
    kiln_engine_free(e);
    t0 = now() - t0;
    kiln_definition_free(def);
    return t0;
}

/* Runs the shell command `cmd`: seconds. */
static double timed(const char *cmd)
{
    double t0 = now();

    sh("%s", cmd);
    return now() - t0;
}

int main(void)
{
    const char *mb_s = getenv("KILN_BENCH_PULL_MB");
    size_t mb = mb_s != NULL ? strtoul(mb_s, NULL, 10) : 200;
    test_registry_t reg;
    kiln_solve_stats_t st;
    char dir[] = "/tmp/kiln-bench-pull-XXXXXX", ref[128], root[256];
    char oci[256], rootfs[256], copy[1024], unpack[1024];
    double cold, warm, cached, sk_cold, um_cold, sk_warm, um_warm;
    struct rusage ru;
    uint64_t bytes;
    bool tools;

    if (access(REGISTRY_BIN, X_OK) != 0) {
        printf("bench_pull: %s not found (apt-get install docker-registry): "
               "skipped\n",
               REGISTRY_BIN);
        return 0;
    }
    tools = system("command -v skopeo >/dev/null && command -v umoci "
                   ">/dev/null") == 0;
    assert_non_null(mkdtemp(dir));
    registry_start(&reg);
    snprintf(ref, sizeof(ref), "%s/bench:v1", reg.host);
    bytes = make_image(dir, ref, mb < LAYERS ? LAYERS : mb);
    printf("image: %d layers, %zu MB of files, %.1f MB compressed\n", LAYERS,
           mb, (double)bytes / 1e6);

    snprintf(root, sizeof(root), "%s/root", dir);
    cold = pull(root, ref, false, &st);
    warm = pull(root, ref, true, &st);
    cached = pull(root, ref, false, &st);
    printf("kiln cold:    %7.3f s  (%.0f MB/s compressed)\n", cold,
           (double)bytes / 1e6 / cold);
    printf("kiln warm:    %7.3f s  (blobs and unpacked layers present, "
           "--no-cache)\n",
           warm);
    printf("kiln cached:  %7.3f s  (%u of %u ops cached)\n", cached,
           (unsigned)st.cached, (unsigned)st.total);
    if (tools) {
        snprintf(oci, sizeof(oci), "%s/oci", dir);
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
        snprintf(copy, sizeof(copy),
                 "skopeo copy --quiet --src-tls-verify=false docker://%s "
                 "oci:'%s':v1",
                 ref, oci);
        snprintf(unpack, sizeof(unpack),
                 "umoci raw unpack --image '%s':v1 '%s' 2>/dev/null", oci,
                 rootfs);
        sk_cold = timed(copy);
        um_cold = timed(unpack);
        sh("rm -rf '%s'", rootfs);
        sk_warm = timed(copy);
        um_warm = timed(unpack);
        printf("skopeo+umoci cold: %7.3f s  (copy %.3f s, unpack %.3f s)\n",
               sk_cold + um_cold, sk_cold, um_cold);
        printf("skopeo+umoci warm: %7.3f s  (copy %.3f s, unpack %.3f s)\n",
               sk_warm + um_warm, sk_warm, um_warm);
        printf("cold speed-up over skopeo+umoci: %.2fx (target >= 1.5x: "
               "%s)\n",
               (sk_cold + um_cold) / cold,
               (sk_cold + um_cold) / cold >= 1.5 ? "met" : "NOT met");
    } else {
        printf("skopeo or umoci not installed: no comparison\n");
    }
    printf("warm under 1 s: %s\n", warm < 1.0 ? "met" : "NOT met");
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %ld MB\n", ru.ru_maxrss / 1024);
    registry_remove(&reg);
    sh("chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    return 0;
}
