/* The exec tests' fixture (exec_fixture.h). */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_fixture.h"

#define BUSYBOX "/bin/busybox"

/*
 * ThreadSanitizer builds: libuv (not instrumented) closes the descriptors
 * it owns with a raw close syscall that TSan cannot see, so when another
 * thread then gets the same number TSan reports the two creations as a
 * race. Only reports with a frame in libuv are ignored.
 */
#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:libuv.so.1\n";
}
#endif

void ex_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st != 0) {
        fail_msg("command failed (%d): %s", st, cmd);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ex_rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ex_setup(ex_fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->base, sizeof(f->base), "/tmp/kiln-test-exec-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->base);
    snprintf(f->root, sizeof(f->root), "%s/root", f->base);
    snprintf(f->out, sizeof(f->out), "%s/out", f->base);
    ex_sh("set -e; r=%s; mkdir -p $r/bin $r/etc $r/proc $r/dev $r/tmp $r/run "
          "$r/home/builder $r/data/sub; chmod 1777 $r/tmp; "
          "cp %s $r/bin/busybox; chmod 0755 $r/bin/busybox; "
          "for a in $(%s --list); do [ $a = busybox ] || "
          "ln -s busybox $r/bin/$a; done; "
          "printf 'root:x:0:0:root:/root:/bin/sh\\n"
          "builder:x:1000:1000::/home/builder:/bin/sh\\n"
          "nobody:x:65534:65534::/nonexistent:/bin/false\\n' "
          "> $r/etc/passwd; "
          "printf 'root:x:0:\\nbuilder:x:1000:\\nextra:x:2000:builder\\n"
          "nogroup:x:65534:\\n' > $r/etc/group; "
          "echo bye > $r/etc/gone; echo one > $r/data/a; "
          "echo two > $r/data/sub/b; chown 1000:1000 $r/home/builder",
          f->rootfs, BUSYBOX, BUSYBOX);
}

void ex_teardown(ex_fixture_t *f)
{
    ex_rm_tree(f->base);
}

kiln_llb_t *ex_builder(kiln_llb_state_t **rootfs)
{
    kiln_llb_t *b;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    assert_int_equal(kiln_llb_set_local_unique_id(b, "kilntestexec"), 0);
    *rootfs = kiln_llb_local(b, "rootfs");
    return b;
}

kiln_definition_t *ex_def(kiln_llb_t *b, kiln_llb_state_t *res)
{
    kiln_error_t err = {0};
    kiln_definition_t *def = NULL;
    uint8_t *bytes;
    size_t len;

    if (kiln_llb_marshal(b, res, &bytes, &len, &err) < 0) {
        fail_msg("marshal: %s", err.message);
    }
    if (kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("load: %s", err.message);
    }
    kiln_free(bytes);
    return def;
}

static void on_event(const kiln_event_t *ev, void *ud)
{
    ex_result_t *r = ud;

    pthread_mutex_lock(&r->mu);
    if (ev->type == KILN_EVENT_LOG) {
        size_t room = sizeof(r->logs) - 1 - r->logs_len;
        size_t n = ev->len < room ? ev->len : room;

        memcpy(r->logs + r->logs_len, ev->data, n);
        r->logs_len += n;
        r->logs[r->logs_len] = '\0';
    } else if (ev->type == KILN_EVENT_WARNING) {
        size_t used = strlen(r->warnings);
        snprintf(r->warnings + used, sizeof(r->warnings) - used, "%.*s\n",
                 (int)ev->len, (const char *)ev->data);
    }
    pthread_mutex_unlock(&r->mu);
    if (ev->type == KILN_EVENT_LOG && r->on_log != NULL) {
        r->on_log(r, (const char *)ev->data, ev->len);
    }
}

void ex_solve(const ex_fixture_t *f, const kiln_definition_t *def,
              const ex_opts_t *o, ex_result_t *r)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e = NULL;
    kiln_solve_t *s = NULL;
    char local[160];
    const char *locals[] = {local, NULL};
    static const ex_opts_t none = {0};

    if (o == NULL) {
        o = &none;
    }
    r->rc = -1;
    r->logs_len = 0;
    r->logs[0] = '\0';
    r->warnings[0] = '\0';
    memset(&r->err, 0, sizeof(r->err));
    pthread_mutex_init(&r->mu, NULL);
    snprintf(local, sizeof(local), "rootfs=%s", f->rootfs);
    ex_rm_tree(f->out);
    eo.root = f->root;
    if (kiln_engine_new(&eo, &r->err, &e) < 0) {
        fail_msg("engine: %s", r->err.message);
    }
    so.definition = def;
    so.output = o->no_output ? KILN_OUTPUT_NONE : KILN_OUTPUT_LOCAL;
    so.output_dest = o->no_output ? NULL : f->out;
    so.locals = locals;
    so.secrets = o->secrets;
    so.secret_envs = o->secret_envs;
    so.ssh = o->ssh;
    so.on_event = on_event;
    so.userdata = r;
    r->rc = kiln_solve_start(e, &so, &r->err, &s);
    if (r->rc == 0) {
        if (o->started != NULL) {
            __atomic_store_n(o->started, s, __ATOMIC_SEQ_CST);
        }
        r->rc = kiln_solve_wait(s, &r->err);
        kiln_solve_stats(s, &r->stats);
        kiln_solve_free(s);
    }
    kiln_engine_free(e);
    pthread_mutex_destroy(&r->mu);
}

bool ex_read_out(const ex_fixture_t *f, const char *rel, char *buf, size_t size)
{
    char path[512];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", f->out, rel);
    fp = fopen(path, "r");
    if (fp == NULL) {
        buf[0] = '\0';
        return false;
    }
    n = fread(buf, 1, size - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return true;
}

bool ex_out_exists(const ex_fixture_t *f, const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->out, rel);
    return lstat(path, &st) == 0;
}

bool ex_namespaces_ok(char *why, size_t size)
{
    /* util-linux's unshare, a process of its own: a sanitizer's threads
     * in this one would make CLONE_NEWUSER fail for the wrong reason. */
    char cmd[256], msg[200] = "";
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd),
             "unshare --mount --pid --ipc --uts --net --fork %s true 2>&1",
             geteuid() != 0 ? "--user --map-root-user" : "");
    p = popen(cmd, "r");
    if (p == NULL) {
        snprintf(why, size, "cannot run unshare: %s", strerror(errno));
        return false;
    }
    if (fgets(msg, sizeof(msg), p) == NULL) {
        msg[0] = '\0';
    }
    st = pclose(p);
    if (st != 0) {
        msg[strcspn(msg, "\n")] = '\0';
        snprintf(why, size,
                 "the kernel forbids the namespaces an exec needs (%s)",
                 msg[0] != '\0' ? msg : "unshare failed");
        return false;
    }
    return true;
}
