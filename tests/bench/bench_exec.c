/*
 * Per-exec overhead, through the engine API, on a busybox rootfs made from
 * Debian's busybox-static (/bin/busybox and its applet links) given as
 * local://rootfs:
 *
 *   sequential   200 exec steps in a chain, `/bin/true N` each on the
 *                previous one's root (jobs 1)
 *   independent  200 `/bin/true N` steps on the rootfs, each with a
 *                scratch output at /out, merged (jobs 2, as --jobs 2)
 *
 * The rootfs source is built (and stored) first, so the figures are the
 * steps alone: namespaces, overlay mounts, the helper, reading the upper
 * back and committing the records. Prints ms per step, against the
 * target of 15 ms sequential, and the peak RSS of kiln and of its helpers;
 * asserts nothing. KILN_BENCH_EXEC_STEPS changes the count.
 * Run: meson test -C build --benchmark -v exec
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_exec: %s: %s\n", what, msg);
    exit(1);
}

static void sh(const char *cmd)
{
    if (system(cmd) != 0) {
        die("command failed", cmd);
    }
}

static kiln_definition_t *load(kiln_llb_t *b, kiln_llb_state_t *res)
{
    kiln_error_t err = {0};
    kiln_definition_t *def = NULL;
    uint8_t *bytes;
    size_t len;

    if (kiln_llb_marshal(b, res, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        die("definition", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

static kiln_llb_t *builder(kiln_llb_state_t **rootfs)
{
    kiln_llb_t *b;

    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0) {
        die("builder", "out of memory");
    }
    kiln_llb_set_local_unique_id(b, "kilnbenchexec");
    *rootfs = kiln_llb_local(b, "rootfs");
    return b;
}

static kiln_definition_t *chain(int n)
{
    kiln_llb_state_t *st;
    kiln_llb_t *b = builder(&st);

    for (int i = 0; i < n; i++) {
        char arg[16];

        snprintf(arg, sizeof(arg), "%d", i);
        st = kiln_llb_exec_root(
            kiln_llb_exec(st, (const char *const[]){"/bin/true", arg, NULL}));
    }
    return load(b, st);
}

static kiln_definition_t *independent(int n)
{
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = builder(&rootfs);
    kiln_llb_state_t **outs = calloc((size_t)n, sizeof(*outs));

    for (int i = 0; i < n; i++) {
        char arg[16];
        kiln_llb_exec_t *ex;

        snprintf(arg, sizeof(arg), "%d", i);
        ex = kiln_llb_exec(rootfs,
                           (const char *const[]){"/bin/true", arg, NULL});
        kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
        outs[i] = kiln_llb_exec_output(ex, "/out");
    }
    kiln_definition_t *def = load(b, kiln_llb_merge(b, outs, (size_t)n));
    free(outs);
    return def;
}

static double solve(const char *root, const char *rootfs, unsigned jobs,
                    const kiln_definition_t *def, kiln_solve_stats_t *stats)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e = NULL;
    kiln_error_t err = {0};
    char local[256];
    const char *locals[] = {local, NULL};
    double t0;

    snprintf(local, sizeof(local), "rootfs=%s", rootfs);
    eo.root = root;
    eo.jobs = jobs;
    eo.process_jobs = jobs;
    if (kiln_engine_new(&eo, &err, &e) < 0) {
        die("engine", err.message);
    }
    so.definition = def;
    so.locals = locals;
    t0 = now();
    if (kiln_solve(e, &so, &err) < 0) {
        die("solve", err.message);
    }
    t0 = now() - t0;
    kiln_engine_free(e);
    (void)stats;
    return t0;
}

int main(void)
{
    const char *env = getenv("KILN_BENCH_EXEC_STEPS");
    int n = env != NULL ? atoi(env) : 200;
    char base[] = "/tmp/kiln-bench-exec-XXXXXX";
    char root[96], rootfs[96], cmd[1024];
    kiln_definition_t *warm, *seq, *par;
    double t_seq, t_par;
    struct rusage self, kids;

    if (n < 1 || mkdtemp(base) == NULL) {
        die("setup", "bad KILN_BENCH_EXEC_STEPS or no /tmp");
    }
    snprintf(root, sizeof(root), "%s/root", base);
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", base);
    snprintf(cmd, sizeof(cmd),
             "set -e; r=%s; mkdir -p $r/bin $r/etc $r/proc $r/dev $r/tmp; "
             "cp /bin/busybox $r/bin/; for a in $(/bin/busybox --list); do "
             "[ $a = busybox ] || ln -s busybox $r/bin/$a; done",
             rootfs);
    sh(cmd);

    /* The rootfs alone (one step), so that it is stored before timing. */
    {
        kiln_llb_state_t *st;
        kiln_llb_t *b = builder(&st);

        warm = load(b, st);
    }
    solve(root, rootfs, 1, warm, NULL);
    seq = chain(n);
    par = independent(n);
    t_seq = solve(root, rootfs, 1, seq, NULL);
    t_par = solve(root, rootfs, 2, par, NULL);
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);

    printf("exec steps: %d, busybox rootfs, overlayfs\n", n);
    printf("sequential (chain, jobs 1): %.2f s, %.2f ms per step "
           "(target < 15 ms: %s)\n",
           t_seq, t_seq * 1000 / n, t_seq * 1000 / n < 15 ? "met" : "missed");
    printf("independent (jobs 2):       %.2f s, %.2f ms per step\n", t_par,
           t_par * 1000 / n);
    printf("peak RSS: kiln %.1f MiB, largest helper %.1f MiB\n",
           (double)self.ru_maxrss / 1024, (double)kids.ru_maxrss / 1024);

    kiln_definition_free(warm);
    kiln_definition_free(seq);
    kiln_definition_free(par);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    sh(cmd);
    return 0;
}
