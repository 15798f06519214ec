/*
 * Exec ops through the public API: definitions made with the C builder
 * over the busybox rootfs (exec_fixture.h), solved into temporary store
 * roots and exported to directories. Each test checks what the command
 * left in the output, the events, or the store.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_fixture.h"

static char skip_reason[256];

static int group_setup(void **state)
{
    (void)state;
    if (!ex_namespaces_ok(skip_reason, sizeof(skip_reason))) {
        fprintf(stderr, "# skipping exec tests: %s\n", skip_reason);
    } else {
        skip_reason[0] = '\0';
    }
    return 0;
}

static int setup(void **state)
{
    ex_fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    ex_setup(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    ex_fixture_t *f = *state;

    ex_teardown(f);
    free(f);
    return 0;
}

#define NEED_NAMESPACES()                                                      \
    do {                                                                       \
        if (skip_reason[0] != '\0') {                                          \
            print_message("skipped: %s\n", skip_reason);                       \
            skip();                                                            \
        }                                                                      \
    } while (0)

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void assert_ok(const ex_result_t *r)
{
    if (r->rc != 0) {
        fail_msg("solve failed (%d): %s\nlogs: %s", r->rc, r->err.message,
                 r->logs);
    }
}

/* sh -c `script` on the rootfs; the root after it. */
static kiln_definition_t *sh_def(const char *script, kiln_llb_exec_t **exp,
                                 kiln_llb_t **bp)
{
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", script));

    if (exp != NULL) {
        *exp = ex;
        *bp = b;
        return NULL;
    }
    kiln_definition_t *def = ex_def(b, kiln_llb_exec_root(ex));
    kiln_llb_free(b);
    return def;
}

static kiln_definition_t *finish(kiln_llb_t *b, kiln_llb_state_t *st)
{
    kiln_definition_t *def = ex_def(b, st);

    kiln_llb_free(b);
    return def;
}

/* ---- the output ---- */

static void test_writes_file(void **state)
{
    ex_fixture_t *f = *state;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[256];

    NEED_NAMESPACES();
    def = sh_def("echo hello > /hello && echo out && echo err >&2", NULL, NULL);
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "hello", buf, sizeof(buf)));
    assert_string_equal(buf, "hello\n");
    assert_true(ex_out_exists(f, "bin/busybox"));
    assert_non_null(strstr(r.logs, "out\n"));
    assert_non_null(strstr(r.logs, "err\n"));
    /* Mount points of /proc and /dev leave nothing in the output. */
    assert_true(ex_out_exists(f, "proc"));
    assert_false(ex_out_exists(f, "proc/1"));
    assert_false(ex_out_exists(f, "dev/null"));
    assert_int_equal(r.stats.run, 2);

    /* Again: everything from the store. */
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_int_equal(r.stats.run, 0);
    assert_int_equal(r.stats.cached, r.stats.total);
    assert_true(ex_read_out(f, "hello", buf, sizeof(buf)));
    assert_string_equal(buf, "hello\n");
    kiln_definition_free(def);
}

static void test_deletes(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *e1, *e2, *e3;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[64];

    NEED_NAMESPACES();
    /* Removals become whiteouts, a re-made directory an opaque one; the
     * next execs see them through their own overlays (as root: the
     * layer's overlay twin), also when they change that directory. */
    e1 = kiln_llb_exec(rootfs,
                       ARGV("sh", "-c",
                            "rm /etc/gone && rm -r /data && mkdir /data && "
                            "echo new > /data/n"));
    e2 = kiln_llb_exec(kiln_llb_exec_root(e1),
                       ARGV("sh", "-c",
                            "test ! -e /etc/gone && test ! -e /data/a && "
                            "test -f /data/n && ls /data > /listing"));
    e3 = kiln_llb_exec(kiln_llb_exec_root(e2),
                       ARGV("sh", "-c",
                            "echo x > /data/x && test ! -e /data/a && "
                            "ls /data > /listing3"));
    def = finish(b, kiln_llb_exec_root(e3));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_false(ex_out_exists(f, "etc/gone"));
    assert_false(ex_out_exists(f, "data/a"));
    assert_false(ex_out_exists(f, "data/sub"));
    assert_true(ex_read_out(f, "listing3", buf, sizeof(buf)));
    assert_string_equal(buf, "n\nx\n");
    assert_true(ex_read_out(f, "listing", buf, sizeof(buf)));
    assert_string_equal(buf, "n\n");
    assert_true(ex_out_exists(f, "etc/passwd"));
    kiln_definition_free(def);
}

static void test_exit_code(void **state)
{
    ex_fixture_t *f = *state;
    kiln_definition_t *def;
    ex_result_t r = {0};

    NEED_NAMESPACES();
    def = sh_def("echo line-before-failure; echo why >&2; exit 3", NULL, NULL);
    ex_solve(f, def, NULL, &r);
    assert_int_equal(r.rc, KILN_EIO);
    assert_non_null(strstr(r.err.message, "process \"sh -c echo "));
    assert_non_null(strstr(r.err.message, "exit code: 3"));
    assert_non_null(strstr(r.err.message, "line-before-failure"));
    assert_non_null(strstr(r.err.message, "why"));
    assert_false(ex_out_exists(f, "bin"));
    kiln_definition_free(def);

    /* A command that is not there. */
    {
        kiln_llb_state_t *rootfs;
        kiln_llb_t *b = ex_builder(&rootfs);
        kiln_llb_exec_t *ex = kiln_llb_exec(rootfs, ARGV("/no/such/cmd"));

        def = finish(b, kiln_llb_exec_root(ex));
    }
    ex_solve(f, def, NULL, &r);
    assert_int_not_equal(r.rc, 0);
    assert_non_null(strstr(r.err.message, "/no/such/cmd"));
    kiln_definition_free(def);

    /* INSECURE is refused before anything runs. */
    {
        kiln_llb_exec_t *ex;
        kiln_llb_t *b;

        sh_def("touch /x", &ex, &b);
        kiln_llb_exec_security(ex, KILN_LLB_SECURITY_INSECURE);
        def = finish(b, kiln_llb_exec_root(ex));
    }
    ex_solve(f, def, NULL, &r);
    assert_int_equal(r.rc, KILN_EINVAL);
    assert_non_null(strstr(r.err.message, "security mode INSECURE"));
    kiln_definition_free(def);

    /* Valid exit codes: 3 is success here. */
    {
        kiln_llb_exec_t *ex;
        kiln_llb_t *b;
        static const int codes[] = {0, 3};

        sh_def("exit 3", &ex, &b);
        kiln_llb_exec_valid_exit_codes(ex, codes, 2);
        def = finish(b, kiln_llb_exec_root(ex));
    }
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    kiln_definition_free(def);
}

static void test_env_cwd_user(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_exec_t *ex;
    kiln_llb_t *b;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[256];
    struct stat st;
    char path[256];

    NEED_NAMESPACES();
    sh_def("echo \"$FOO $(pwd) $(id -u):$(id -g) $(id -G) $HOME\" > out; "
           "echo \"$PATH\" > path",
           &ex, &b);
    kiln_llb_exec_env(ex, "FOO", "bar baz");
    kiln_llb_exec_cwd(ex, "/work/dir");
    kiln_llb_exec_user(ex, "builder");
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "work/dir/out", buf, sizeof(buf)));
    assert_string_equal(buf, "bar baz /work/dir 1000:1000 1000 2000 "
                             "/home/builder\n");
    assert_true(ex_read_out(f, "work/dir/path", buf, sizeof(buf)));
    assert_string_equal(buf, "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                             "/usr/bin:/sbin:/bin\n");
    /* The working directory was made for the user. */
    snprintf(path, sizeof(path), "%s/work/dir", f->out);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    kiln_definition_free(def);

    /* uid:gid by number, and a name that is not in /etc/passwd. */
    sh_def("id -u > /tmp/u; id -g >> /tmp/u", &ex, &b);
    kiln_llb_exec_user(ex, "1234:2000");
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "tmp/u", buf, sizeof(buf)));
    assert_string_equal(buf, "1234\n2000\n");
    kiln_definition_free(def);

    sh_def("true", &ex, &b);
    kiln_llb_exec_user(ex, "nosuchuser");
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_int_not_equal(r.rc, 0);
    assert_non_null(strstr(r.err.message, "user 'nosuchuser' is not in"));
    kiln_definition_free(def);
}

/* ---- isolation ---- */

static void test_pid_namespace(void **state)
{
    ex_fixture_t *f = *state;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[512];

    NEED_NAMESPACES();
    def = sh_def("grep CapEff /proc/self/status > /caps; "
                 "! mount -t tmpfs none /tmp 2>/dev/null && "
                 "! echo h > /proc/sysrq-trigger 2>/dev/null && "
                 "! echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && "
                 "! head -c 1 /proc/kcore > /dev/null 2>&1 && "
                 "test -z \"$(cat /proc/timer_list)\" && "
                 "echo protected > /protected; "
                 "echo $PPID > /ppid; ls /proc | grep -c '^[0-9]*$' > /procs; "
                 "tr '\\0' ' ' < /proc/1/cmdline > /init; hostname > /host; "
                 "cat /etc/hosts > /hosts",
                 NULL, NULL);
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    /* The default sandbox's capabilities (BuildKit's, Docker's): no
     * CAP_SYS_ADMIN, so the command cannot mount. */
    assert_true(ex_read_out(f, "caps", buf, sizeof(buf)));
    assert_string_equal(buf, "CapEff:\t00000000a80425fb\n");
    /* The host kernel's knobs in /proc are read-only or hidden. */
    assert_true(ex_out_exists(f, "protected"));
    /* The build's init is pid 1, the command its child. */
    assert_true(ex_read_out(f, "ppid", buf, sizeof(buf)));
    assert_string_equal(buf, "1\n");
    assert_true(ex_read_out(f, "init", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "kiln-run"));
    /* init, sh, ls, grep: no host process is visible. */
    assert_true(ex_read_out(f, "procs", buf, sizeof(buf)));
    assert_true(atoi(buf) >= 2 && atoi(buf) <= 5);
    assert_true(ex_read_out(f, "host", buf, sizeof(buf)));
    assert_string_equal(buf, "buildkitsandbox\n");
    assert_true(ex_read_out(f, "hosts", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "127.0.0.1\tlocalhost buildkitsandbox\n"));
    /* The generated /etc/hosts is not part of the output. */
    assert_false(ex_out_exists(f, "etc/hosts"));
    kiln_definition_free(def);
}

static void test_host_invisible(void **state)
{
    ex_fixture_t *f = *state;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char script[512], marker[160], buf[512];
    int leaked;

    NEED_NAMESPACES();
    snprintf(marker, sizeof(marker), "%s/host-only-marker", f->base);
    ex_sh("echo x > %s", marker);
    /* A descriptor of this process without O_CLOEXEC, onto the host: it
     * must not reach the command. */
    leaked = open(f->base, O_RDONLY | O_DIRECTORY);
    assert_true(leaked > 2);
    {
        /* Above the helper's own descriptors. */
        int high = fcntl(leaked, F_DUPFD, 40);

        close(leaked);
        leaked = high;
    }
    assert_true(leaked >= 40);
    snprintf(script, sizeof(script),
             "test ! -e %s && test ! -e %s && test ! -e /proc/self/fd/%d && "
             "ls / > /tmp/listing",
             marker, f->rootfs, leaked);
    def = sh_def(script, NULL, NULL);
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "tmp/listing", buf, sizeof(buf)));
    assert_string_equal(buf, "bin\ndata\ndev\netc\nhome\nproc\nrun\ntmp\n");
    close(leaked);
    kiln_definition_free(def);
}

static void test_network(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_exec_t *ex;
    kiln_llb_t *b;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[512];

    NEED_NAMESPACES();
    sh_def("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /ifs", &ex,
           &b);
    kiln_llb_exec_network(ex, KILN_LLB_NET_NONE);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "ifs", buf, sizeof(buf)));
    assert_string_equal(buf, "lo\n");
    kiln_definition_free(def);

    /* The host's network: its interfaces are there. */
    sh_def("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /ifs", &ex,
           &b);
    kiln_llb_exec_network(ex, KILN_LLB_NET_HOST);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "ifs", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "lo\n"));
    assert_true(strlen(buf) > strlen("lo\n"));
    kiln_definition_free(def);
}

/* ---- output and cancel ---- */

/* On "first", lets the command go on by making the file it waits for in
 * its cache mount: it only sees it if the line arrived while it ran. */
static void release_on_first(ex_result_t *r, const char *data, size_t len)
{
    const ex_fixture_t *f = r->ud;

    if (memmem(data, len, "first", 5) != NULL) {
        ex_sh("for d in %s/cachemounts/*/0; do touch $d/go; done", f->root);
    }
}

static void test_streaming(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_exec_t *ex;
    kiln_llb_t *b;
    kiln_definition_t *def;
    ex_result_t r = {0};

    NEED_NAMESPACES();
    sh_def("echo first; i=0; while [ ! -e /sync/go ] && [ $i -lt 300 ]; do "
           "sleep 0.05; i=$((i+1)); done; test -e /sync/go && echo second",
           &ex, &b);
    kiln_llb_exec_cache(ex, "/sync", kiln_llb_scratch(b), "sync",
                        KILN_LLB_CACHE_SHARED, 0);
    def = finish(b, kiln_llb_exec_root(ex));
    r.on_log = release_on_first;
    r.ud = f;
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_non_null(strstr(r.logs, "first\nsecond\n"));
    kiln_definition_free(def);
}

struct cancel_ctx {
    kiln_solve_t *solve;
    int64_t canceled_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cancel_on_start(ex_result_t *r, const char *data, size_t len)
{
    struct cancel_ctx *c = r->ud;
    kiln_solve_t *s;

    if (memmem(data, len, "sleeping", 8) == NULL) {
        return;
    }
    while ((s = __atomic_load_n(&c->solve, __ATOMIC_SEQ_CST)) == NULL) {
        sched_yield();
    }
    c->canceled_ns = now_ns();
    kiln_solve_cancel(s);
}

/* True if a process runs `sleep 1000` (its cmdline). */
static bool sleep_running(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;

    while (d != NULL && !found && (e = readdir(d)) != NULL) {
        char path[300], cmd[64];
        FILE *fp;
        size_t n;

        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        if ((fp = fopen(path, "r")) == NULL) {
            continue;
        }
        n = fread(cmd, 1, sizeof(cmd), fp);
        fclose(fp);
        found = n == 11 && memcmp(cmd, "sleep\0001000", 11) == 0;
    }
    if (d != NULL) {
        closedir(d);
    }
    return found;
}

static void test_cancel(void **state)
{
    ex_fixture_t *f = *state;
    kiln_definition_t *def;
    ex_result_t r = {0};
    struct cancel_ctx c = {0};
    ex_opts_t o = {.started = &c.solve};
    int64_t ended;

    NEED_NAMESPACES();
    def = sh_def("echo sleeping; sleep 1000", NULL, NULL);
    r.on_log = cancel_on_start;
    r.ud = &c;
    ex_solve(f, def, &o, &r);
    ended = now_ns();
    assert_int_equal(r.rc, KILN_ECANCELED);
    assert_true(c.canceled_ns > 0);
    print_message("# canceled a running sleep 1000 in %.0f ms\n",
                  (double)(ended - c.canceled_ns) / 1e6);
    /* A generous bound, not a benchmark: a process tree left running
     * would keep the solve for 1000 s. */
    assert_true(ended - c.canceled_ns < 10 * 1000000000LL);
    assert_false(sleep_running());
    assert_false(ex_out_exists(f, "bin"));
    kiln_definition_free(def);
}

/* ---- the solve options ---- */

/* A caller built before secret_envs and ssh existed passes the shorter
 * struct; it still builds, the new fields read as unset. */
static void test_older_options(void **state)
{
    ex_fixture_t *f = *state;
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_definition_t *def;
    kiln_engine_t *e = NULL;
    kiln_error_t err = {0};
    char local[160];
    const char *locals[] = {local, NULL};

    NEED_NAMESPACES();
    def = sh_def("echo ok > /ok", NULL, NULL);
    snprintf(local, sizeof(local), "rootfs=%s", f->rootfs);
    eo.root = f->root;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    so.size = (uint32_t)offsetof(kiln_solve_options_t, secret_envs);
    so.definition = def;
    so.locals = locals;
    so.secret_envs = (const char *const[]){"x=KILN_NO_SUCH_VARIABLE", NULL};
    if (kiln_solve(e, &so, &err) != 0) {
        fail_msg("solve: %s", err.message);
    }
    so.size = 8;
    assert_int_equal(kiln_solve(e, &so, &err), KILN_EINVAL);
    assert_non_null(strstr(err.message, "KILN_SOLVE_OPTIONS_INIT"));
    kiln_engine_free(e);
    kiln_definition_free(def);
}

/* ---- rootless ---- */

/* As `nobody`, with a store and rootfs of its own: the command is root of
 * a user namespace, its files belong to the caller outside. Runs in a
 * child process, which cannot give up root for the others. */
static void test_rootless(void **state)
{
    ex_fixture_t *f = *state;
    char buf[64], path[256];
    struct stat st;
    pid_t pid;
    int status;

    NEED_NAMESPACES();
    if (geteuid() != 0) {
        printf("# test_rootless: already not root (the other tests ran "
               "rootless)\n");
        return;
    }
    ex_sh("chmod 0755 %s && chown -R 65534:65534 %s/rootfs && "
          "mkdir -p %s/root %s/out && chown 65534:65534 %s/root %s/out",
          f->base, f->base, f->base, f->base, f->base, f->base);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A fresh process (a forked copy of this threaded one could not
         * start threads under ThreadSanitizer), as nobody. */
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0) {
            _exit(3);
        }
        execl("/proc/self/exe", "test_exec", "--rootless-child", f->base,
              (char *)NULL);
        _exit(6);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 4) {
        printf("# test_rootless: not run, the kernel forbids user "
               "namespaces\n");
        return;
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(ex_read_out(f, "whoami", buf, sizeof(buf)));
    assert_string_equal(buf, "0\n");
    assert_true(ex_read_out(f, "tmp/made", buf, sizeof(buf)));
    assert_string_equal(buf, "made\n");
    assert_false(ex_out_exists(f, "etc/gone"));
    snprintf(path, sizeof(path), "%s/tmp/made", f->out);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);
}

/* The rootless build, in the process test_rootless starts as nobody. */
static int rootless_child(const char *base)
{
    ex_fixture_t mine = {0};
    kiln_definition_t *def;
    ex_result_t r = {0};
    char why[256];

    snprintf(mine.base, sizeof(mine.base), "%s", base);
    snprintf(mine.rootfs, sizeof(mine.rootfs), "%s/rootfs", base);
    snprintf(mine.root, sizeof(mine.root), "%s/root", base);
    snprintf(mine.out, sizeof(mine.out), "%s/out", base);
    if (!ex_namespaces_ok(why, sizeof(why))) {
        fprintf(stderr, "# rootless: %s\n", why);
        return 4;
    }
    {
        kiln_llb_state_t *rootfs;
        kiln_llb_t *b = ex_builder(&rootfs);
        kiln_llb_exec_t *e1 = kiln_llb_exec(
            rootfs, ARGV("sh", "-c", "echo made > /tmp/made; rm /etc/gone"));
        /* A layer with whiteouts below: without root the stack is
         * flattened for the overlay. */
        kiln_llb_exec_t *e2 = kiln_llb_exec(
            kiln_llb_exec_root(e1), ARGV("sh", "-c",
                                         "test ! -e /etc/gone && id -u > "
                                         "/whoami"));

        def = finish(b, kiln_llb_exec_root(e2));
    }
    ex_solve(&mine, def, NULL, &r);
    kiln_definition_free(def);
    if (r.rc != 0) {
        fprintf(stderr, "# rootless build: %s\n", r.err.message);
        return 5;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--rootless-child") == 0) {
        return rootless_child(argv[2]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_cwd_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pid_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_invisible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rootless, setup, teardown),
    };

    /* Where the kernel forbids what an exec needs, the whole file is
     * skipped (TAP "1..0 # SKIP"), saying why. */
    if (!ex_namespaces_ok(skip_reason, sizeof(skip_reason))) {
        printf("1..0 # SKIP the kernel forbids namespaces exec needs: %s\n",
               skip_reason);
        return 0;
    }
    skip_reason[0] = '\0';
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
