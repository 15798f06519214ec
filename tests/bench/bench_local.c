/*
 * The local source plugin's hashing throughput, through the engine API: a
 * definition with only local://ctx (no output) over a generated tree of
 * 100,000 files, 1 GiB in all (KILN_BENCH_LOCAL_MB scales both: 64 gives
 * 6,250 files), solved three times into a fresh store root:
 *
 *   cold       nothing cached: every file read and hashed
 *   unchanged  the same tree again: pinned from metadata alone
 *   one change one file rewritten: only it is read
 *
 * and, for comparison, `find | xargs sha256sum > /dev/null` over the same
 * files in the same run (the page cache holds them for both). "pin" is the
 * time from the solve's start to the plugin's "re-hashed N of M files"
 * message, the end of resolve(); "solve" adds storing the tree (a copy).
 * Prints figures and whether the targets are met (cold >= 70% of
 * sha256sum's MB/s, unchanged and one change < 1 s); asserts nothing.
 * Run: meson test -C build --benchmark -v local
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

#define FILES_PER_GIB 100000
#define PER_DIR       100

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_local: %s: %s\n", what, msg);
    exit(1);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void write_file(const char *path, size_t size, uint64_t *buf)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t words = (size + 7) / 8;

    if (fd < 0) {
        die(path, strerror(errno));
    }
    for (size_t i = 0; i < words; i++) {
        buf[i] = next_rand();
    }
    if (write(fd, buf, size) != (ssize_t)size || close(fd) < 0) {
        die(path, "write failed");
    }
}

/* n files averaging `avg` bytes (sizes spread over 0.5x..1.5x), 100 per
 * directory. Returns the bytes written. */
static uint64_t make_tree(const char *dir, size_t n, size_t avg)
{
    uint64_t *buf = malloc(avg * 2 + 16), total = 0;
    char path[512];

    if (buf == NULL) {
        die("malloc", strerror(ENOMEM));
    }
    for (size_t i = 0; i < n; i++) {
        size_t size = avg / 2 + (size_t)(next_rand() % (avg + 1));

        if (i % PER_DIR == 0) {
            snprintf(path, sizeof(path), "%s/d%05zu", dir, i / PER_DIR);
            if (mkdir(path, 0755) < 0) {
                die(path, strerror(errno));
            }
        }
        snprintf(path, sizeof(path), "%s/d%05zu/f%03zu.bin", dir, i / PER_DIR,
                 i % PER_DIR);
        write_file(path, size, buf);
        total += size;
    }
    free(buf);
    return total;
}

static kiln_definition_t *make_def(void)
{
    kiln_llb_t *b;
    kiln_error_t err = {0};
    kiln_definition_t *def = NULL;
    uint8_t *bytes;
    size_t len;

    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0 ||
        kiln_llb_set_local_unique_id(b, "benchlocal") < 0) {
        die("builder", "cannot create");
    }
    if (kiln_llb_marshal(b, kiln_llb_local(b, "ctx"), &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        die("definition", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

typedef struct run {
    int64_t start_ns;
    int64_t pinned_ns; /* when "re-hashed" arrived */
    long rehashed;
    double solve_s;
    kiln_solve_stats_t stats;
} run_t;

static void on_event(const kiln_event_t *ev, void *ud)
{
    run_t *r = ud;
    char msg[512];
    const char *p;

    if (ev->type != KILN_EVENT_MESSAGE) {
        return;
    }
    snprintf(msg, sizeof(msg), "%.*s", (int)ev->len, (const char *)ev->data);
    p = strstr(msg, "re-hashed ");
    if (p != NULL) {
        r->pinned_ns = ev->time_ns;
        r->rehashed = strtol(p + 10, NULL, 10);
    }
}

static run_t solve(const char *root, const char *local,
                   const kiln_definition_t *def)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    const char *locals[] = {local, NULL};
    kiln_error_t err = {0};
    kiln_engine_t *e;
    run_t r = {0};
    double t0;

    eo.root = root;
    eo.log_level = KILN_LOG_DEBUG;
    if (kiln_engine_new(&eo, &err, &e) < 0) {
        die("engine", err.message);
    }
    so.definition = def;
    so.locals = locals;
    so.on_event = on_event;
    so.userdata = &r;
    r.rehashed = -1;
    t0 = now();
    r.start_ns = wall_ns();
    if (kiln_solve(e, &so, &err) < 0) {
        die("solve", err.message);
    }
    r.solve_s = now() - t0;
    kiln_engine_free(e);
    return r;
}

static double pin_s(const run_t *r)
{
    return r->pinned_ns > 0 ? (double)(r->pinned_ns - r->start_ns) / 1e9
                            : r->solve_s;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    const char *env = getenv("KILN_BENCH_LOCAL_MB");
    long mb = env != NULL ? strtol(env, NULL, 10) : 1024;
    size_t files = (size_t)((double)FILES_PER_GIB * (double)mb / 1024.0);
    char base[] = "/tmp/kiln-bench-local-XXXXXX", src[64], root[64];
    char local[96], cmd[256], path[128];
    kiln_definition_t *def;
    uint64_t bytes;
    double t0, sha_s, mbytes;
    run_t cold, same, one;

    if (mb <= 0 || files < 1) {
        die("KILN_BENCH_LOCAL_MB", "must be a positive number of MiB");
    }
    if (mkdtemp(base) == NULL) {
        die("mkdtemp", strerror(errno));
    }
    snprintf(src, sizeof(src), "%s/src", base);
    snprintf(root, sizeof(root), "%s/root", base);
    snprintf(local, sizeof(local), "ctx=%s", src);
    mkdir(src, 0755);
    t0 = now();
    bytes = make_tree(src, files, (size_t)(mb << 20) / files);
    mbytes = (double)bytes / (1 << 20);
    printf("tree: %zu files, %.1f MiB, made in %.2f s\n", files, mbytes,
           now() - t0);
    sleep(1); /* let the newest files' timestamps settle */

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && find . -type f -print0 | xargs -0 sha256sum "
             "> /dev/null",
             src);
    t0 = now();
    if (system(cmd) != 0) {
        die("sha256sum", "failed");
    }
    sha_s = now() - t0;

    def = make_def();
    cold = solve(root, local, def);
    same = solve(root, local, def);
    snprintf(path, sizeof(path), "%s/d00000/f000.bin", src);
    {
        FILE *fp = fopen(path, "ab");
        if (fp == NULL || fputs("changed", fp) < 0 || fclose(fp) != 0) {
            die(path, "cannot change");
        }
    }
    one = solve(root, local, def);

    printf("sha256sum   %8.3f s  %8.1f MB/s\n", sha_s, mbytes / sha_s);
    printf("cold        pin %8.3f s  %8.1f MB/s  (%.0f%% of sha256sum; "
           "re-hashed %ld; solve %.3f s)\n",
           pin_s(&cold), mbytes / pin_s(&cold), 100.0 * sha_s / pin_s(&cold),
           cold.rehashed, cold.solve_s);
    printf("unchanged   pin %8.3f s  (re-hashed %ld; solve %.3f s)\n",
           pin_s(&same), same.rehashed, same.solve_s);
    printf("one change  pin %8.3f s  (re-hashed %ld; solve %.3f s)\n",
           pin_s(&one), one.rehashed, one.solve_s);
    printf("targets: cold >= 70%% of sha256sum: %s; unchanged < 1 s: %s; "
           "one change < 1 s: %s\n",
           sha_s / pin_s(&cold) >= 0.7 ? "met" : "MISSED",
           pin_s(&same) < 1.0 ? "met" : "MISSED",
           pin_s(&one) < 1.0 ? "met" : "MISSED");

    kiln_definition_free(def);
    nftw(base, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
    return 0;
}
