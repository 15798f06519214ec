/*
 * Build cache export and import through a docker-registry on 127.0.0.1:
 * a chain of 20 exec steps on the busybox base (kiln-mkbase's layout),
 * each copying 5 MB of text-like bytes from a read-only local:// mount
 * (KILN_BENCH_CACHE_MB per step scales it), built cold on fresh store
 * roots
 *
 *   no export        the build alone
 *   export max       the same with --export-cache type=registry,mode=max
 *                    (layers compressed and pushed while the chain runs)
 *   import           a fresh root importing that cache: nothing runs, the
 *                    final result's chain of layers is fetched
 *
 * Each configuration runs twice: with steps that only copy (the export's
 * compression then competes with almost nothing but itself for the
 * cores), and with steps that also work for 300 ms (`sleep 0.3`), as
 * compile steps do, the time the background upload is meant to hide in.
 * Each cold build runs ROUNDS times, alternating, and the median is kept.
 * Prints the export
 * overhead as a ratio (target under 1.10), the import build time against
 * the cold build, the time the export adds after the last step, and the
 * bytes pushed and fetched, for gzip, zstd and uncompressed layers;
 * asserts nothing. Run: meson test -C build --benchmark -v cache
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* registry_fixture.h's checks, without cmocka. */
#define fail_msg(...)                                                          \
    do {                                                                       \
        fprintf(stderr, "bench_cache: " __VA_ARGS__);                          \
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

#include "cache/manifest.h"
#include "oci/registry.h"

#define STEPS  20
#define ROUNDS 3

static char tmp[256];
static int seq;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_cache: %s: %s\n", what, msg);
    exit(1);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Text-like bytes (words from a small vocabulary), which compress about
 * as build outputs do. */
static void make_file(const char *path, size_t size, unsigned seed)
{
    static const char *const words[] = {
        "static", "int", "return", "kiln", "layer", "cache", "build", "0x1f",
        "struct", "void", "const", "char", "size_t", "if", "for", "while",
    };
    FILE *f = fopen(path, "w");
    size_t n = 0;

    if (f == NULL) {
        die(path, "cannot create");
    }
    while (n < size) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 16];
        n += (size_t)fprintf(f, "%s%c", w, (seed >> 8) % 9 == 0 ? '\n' : ' ');
        if ((seed >> 12) % 5 == 0) {
            n += (size_t)fprintf(f, "%u ", seed % 100000);
        }
    }
    fclose(f);
}

static char layout[400], base_ref[128];

/* The chain: each step copies /src/fNN onto the root, after `work_ms` of
 * sleeping. */
static kiln_definition_t *chain(int work_ms)
{
    kiln_llb_t *b = NULL;
    kiln_llb_state_t *src, *st;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    const char *params[] = {base_ref, "store=base", NULL};
    uint8_t *bytes = NULL;
    size_t len = 0;

    kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b);
    src = kiln_llb_local(b, "src");
    st = kiln_llb_plugin_source(b, "oci-layout", params);
    for (int i = 0; i < STEPS; i++) {
        char cmd[128], name[32];
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        kiln_llb_exec_t *ex;

        if (work_ms > 0) {
            snprintf(cmd, sizeof(cmd), "sleep %d.%03d; cp /src/f%02d /f%02d",
                     work_ms / 1000, work_ms % 1000, i, i);
        } else {
            snprintf(cmd, sizeof(cmd), "cp /src/f%02d /f%02d", i, i);
        }
        snprintf(name, sizeof(name), "step %d", i);
        ex = kiln_llb_exec(st, argv);
        ex = kiln_llb_exec_mount(ex, "/src", src, NULL,
                                 KILN_LLB_MOUNT_READONLY);
        st = kiln_llb_custom_name(kiln_llb_exec_root(ex), name);
    }
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        die("definition", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

/* When the last vertex completed (monotonic seconds). */
static void on_event(const kiln_event_t *ev, void *ud)
{
    if (ev->type == KILN_EVENT_VERTEX_COMPLETED) {
        *(double *)ud = now();
    }
}

static double last_done;

/* One build on a fresh root; returns its wall time, *run its run count;
 * last_done is when its last vertex completed. */
static double build(kiln_definition_t *def, const char *src,
                    const char *export_spec, const char *import_spec,
                    unsigned *run)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    char root[400], local[400];
    const char *locals[] = {local, NULL};
    const char *layouts[] = {layout, NULL};
    const char *exports[] = {export_spec, NULL};
    const char *imports[] = {import_spec, NULL};
    kiln_solve_stats_t stats;
    kiln_engine_t *e = NULL;
    kiln_solve_t *s = NULL;
    kiln_error_t err = {0};
    double t0, t;

    snprintf(root, sizeof(root), "%s/root-%d", tmp, seq++);
    snprintf(local, sizeof(local), "src=%s", src);
    eo.root = root;
    if (kiln_engine_new(&eo, &err, &e) < 0) {
        die("engine", err.message);
    }
    so.definition = def;
    so.locals = locals;
    so.oci_layouts = layouts;
    so.export_cache = export_spec != NULL ? exports : NULL;
    so.import_cache = import_spec != NULL ? imports : NULL;
    so.on_event = on_event;
    so.userdata = &last_done;
    t0 = now();
    if (kiln_solve_start(e, &so, &err, &s) < 0 ||
        kiln_solve_wait(s, &err) < 0) {
        die("build", err.message);
    }
    t = now() - t0;
    last_done = t0 + t - last_done; /* now: the time after the last vertex */
    kiln_solve_stats(s, &stats);
    *run = stats.run;
    kiln_solve_free(s);
    kiln_engine_free(e);
    return t;
}

/* Bytes of the layer blobs the cache at `ref` lists, and of its config. */
static void cache_bytes(const char *ref, uint64_t *layers, uint64_t *config)
{
    kiln__oci_ref_t r = {0};
    kiln__oci_reg_t *reg = NULL;
    kiln__oci_manifest_t m = {0};
    kiln__cache_manifest_t cm = {0};
    kiln_error_t err = {0};

    if (kiln__oci_ref_parse(ref, &r, &err) < 0 ||
        kiln__oci_reg_new(NULL, &reg, &err) < 0 ||
        kiln__oci_manifest_get(reg, &r, &m, &err) < 0 ||
        kiln__cache_manifest_parse(m.body, m.len, &cm, &err) < 0) {
        die(ref, err.message);
    }
    *layers = 0;
    for (size_t i = 0; i < cm.n_layers; i++) {
        *layers += (uint64_t)cm.layers[i].size;
    }
    *config = (uint64_t)cm.config_size;
    kiln__cache_manifest_clear(&cm);
    kiln__oci_manifest_clear(&m);
    kiln__oci_reg_free(reg);
    kiln__oci_ref_clear(&r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void run_compression(kiln_definition_t *def, const char *src,
                            const char *host, const char *comp,
                            const char *label)
{
    double cold[ROUNDS], exp[ROUNDS], tail[ROUNDS], imp, ratio;
    char ref[256], espec[400], ispec[400];
    uint64_t layers = 0, config = 0;
    unsigned run = 0;

    for (int r = 0; r < ROUNDS; r++) {
        snprintf(ref, sizeof(ref), "%s/bench/%s-%s:r%d", host, comp, label,
                 r);
        snprintf(espec, sizeof(espec),
                 "type=registry,ref=%s,mode=max,compression=%s", ref, comp);
        cold[r] = build(def, src, NULL, NULL, &run);
        if (run != STEPS + 2) {
            die("cold build", "not everything ran");
        }
        exp[r] = build(def, src, espec, NULL, &run);
        tail[r] = last_done;
    }
    snprintf(ispec, sizeof(ispec), "type=registry,ref=%s", ref);
    imp = build(def, src, NULL, ispec, &run);
    if (run != 0) {
        die("import build", "something ran");
    }
    cache_bytes(ref, &layers, &config);
    qsort(cold, ROUNDS, sizeof(*cold), cmp_double);
    qsort(exp, ROUNDS, sizeof(*exp), cmp_double);
    qsort(tail, ROUNDS, sizeof(*tail), cmp_double);
    ratio = exp[ROUNDS / 2] / cold[ROUNDS / 2];
    printf("%-12s %-4s cold %6.3f s  export max %6.3f s  overhead %.3f "
           "(%s 1.10)  import %6.3f s (%.2f of cold)\n",
           comp, label, cold[ROUNDS / 2], exp[ROUNDS / 2], ratio,
           ratio < 1.10 ? "under" : "NOT under", imp, imp / cold[ROUNDS / 2]);
    printf("      after the last step: %.3f s (uploads still queued, then "
           "the config and the manifest)\n",
           tail[ROUNDS / 2]);
    printf("      pushed %.1f MB of layers + %llu bytes of config; import "
           "fetched %.1f MB (the final chain: all %d layers)\n",
           (double)layers / 1e6, (unsigned long long)config,
           (double)layers / 1e6, STEPS);
}

int main(void)
{
    const char *mb_env = getenv("KILN_BENCH_CACHE_MB");
    size_t mb = mb_env != NULL ? (size_t)atoi(mb_env) : 5;
    char src[300], host[64], cmd[400];
    kiln_definition_t *def;
    test_registry_t reg;

    if (access("/usr/bin/docker-registry", X_OK) != 0) {
        printf("bench_cache: no /usr/bin/docker-registry, skipped\n");
        return 0;
    }
    snprintf(tmp, sizeof(tmp), "/tmp/kiln-bench-cache-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        die("mkdtemp", "failed");
    }
    snprintf(src, sizeof(src), "%s/src", tmp);
    mkdir(src, 0755);
    for (int i = 0; i < STEPS; i++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/f%02d", src, i);
        make_file(path, (mb ? mb : 5) << 20, (unsigned)i * 7919u + 1);
    }
    {
        const char *mkbase = getenv("KILN_MKBASE");
        char line[128] = "";
        FILE *p;

        snprintf(layout, sizeof(layout), "base=%s/base", tmp);
        snprintf(cmd, sizeof(cmd), "'%s' '%s/base'",
                 mkbase != NULL ? mkbase : "kiln-mkbase", tmp);
        p = popen(cmd, "r");
        if (p == NULL || fgets(line, sizeof(line), p) == NULL ||
            pclose(p) != 0) {
            die("kiln-mkbase", "failed (set KILN_MKBASE)");
        }
        line[strcspn(line, "\n")] = '\0';
        snprintf(base_ref, sizeof(base_ref), "ref=busybox@%s", line);
    }
    registry_start(&reg);
    snprintf(host, sizeof(host), "%s", reg.host);
    printf("%d exec steps of %zu MB each, registry %s, median of %d cold "
           "builds\n",
           STEPS, mb ? mb : 5, host, ROUNDS);
    def = chain(0);
    run_compression(def, src, host, "gzip", "copy");
    run_compression(def, src, host, "zstd", "copy");
    run_compression(def, src, host, "uncompressed", "copy");
    kiln_definition_free(def);
    def = chain(300);
    run_compression(def, src, host, "gzip", "work");
    run_compression(def, src, host, "zstd", "work");
    kiln_definition_free(def);
    registry_remove(&reg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
