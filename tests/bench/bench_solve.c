/*
 * Solver throughput end to end: `kiln build` of generated file-op graphs of
 * 10,000 vertices, cold and fully cached, run as child processes so that
 * wall time and peak RSS are those a user sees. Prints figures; asserts
 * nothing about time. Run: meson test -C build --benchmark -v
 *
 * Shapes:
 *   chain  10,000 chained mkfile ops from scratch, each writing /fK for
 *          K = i mod 100 (the shape of BuildKit's p_file_chain400, longer)
 *   fan    100 chains of 100 mkfile ops, merged (10,101 ops)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

static kiln_llb_state_t *mkfile(kiln_llb_t *b, kiln_llb_state_t *st,
                                const char *path, const char *data)
{
    return kiln_llb_file(
        st, kiln_llb_mkfile(kiln_llb_actions(b), path, 0644, data,
                            strlen(data), 0));
}

static kiln_llb_state_t *chain(kiln_llb_t *b, size_t n, size_t tag)
{
    kiln_llb_state_t *st = kiln_llb_scratch(b);

    char dir[32];

    snprintf(dir, sizeof(dir), "/c%zu", tag);
    st = kiln_llb_file(st, kiln_llb_mkdir(kiln_llb_actions(b), dir, 0755, 0));
    for (size_t i = 0; i < n; i++) {
        char path[64], data[64];
        snprintf(path, sizeof(path), "%s/f%zu", dir, i % 100);
        snprintf(data, sizeof(data), "%zu.%zu\n", tag, i);
        st = mkfile(b, st, path, data);
    }
    return st;
}

static void write_def(const char *path, int shape)
{
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;
    FILE *f;

    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0) {
        exit(1);
    }
    if (shape == 0) {
        st = chain(b, 10000, 0); /* + mkdir: 10,001 ops */
    } else {
        kiln_llb_state_t *in[100];
        for (size_t i = 0; i < 100; i++) {
            in[i] = chain(b, 100, i); /* 101 ops each */
        }
        st = kiln_llb_merge(b, in, 100);
    }
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0) {
        fprintf(stderr, "marshal: %s\n", err.message);
        exit(1);
    }
    f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
}

/* Runs `kiln build --root ROOT --progress=plain DEF`; prints a figure. */
static void build(const char *kiln, const char *root, const char *def,
                  const char *label, size_t n_ops)
{
    struct rusage ru;
    double t0 = now(), dt;
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(kiln, kiln, "build", "--root", root, "--progress=plain", def,
              (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: kiln build failed\n", label);
        exit(1);
    }
    dt = now() - t0;
    /* user / system CPU: where the time goes (system = the file system). */
    printf("%-16s %8.3f s wall %7.1f us/vertex  user %6.3f s  sys %6.3f s  "
           "peak RSS %5.1f MB\n",
           label, dt, dt * 1e6 / (double)n_ops,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
           (double)ru.ru_maxrss / 1024.0);
    fflush(stdout);
}

int main(void)
{
    const char *kiln = getenv("KILN_BIN");
    char dir[] = "/tmp/kiln-bench-solve-XXXXXX";
    char root[128], def[128], cmd[160];
    static const char *const names[] = {"chain", "fan"};
    static const size_t ops[] = {10001, 10101};

    if (kiln == NULL || mkdtemp(dir) == NULL) {
        fprintf(stderr, "run through meson test --benchmark\n");
        return 1;
    }
    for (int shape = 0; shape < 2; shape++) {
        char label[64];

        snprintf(root, sizeof(root), "%s/root-%s", dir, names[shape]);
        snprintf(def, sizeof(def), "%s/%s.pb", dir, names[shape]);
        write_def(def, shape);
        snprintf(label, sizeof(label), "%s cold", names[shape]);
        build(kiln, root, def, label, ops[shape]);
        for (int i = 0; i < 3; i++) {
            snprintf(label, sizeof(label), "%s cached #%d", names[shape],
                     i + 1);
            build(kiln, root, def, label, ops[shape]);
        }
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
