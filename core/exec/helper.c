/*
 * kiln-run: runs one exec op's command in its own namespaces (helper.h).
 * Not for people: kiln starts it with the spec on descriptor 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/helper.h"

extern char **environ;

#define SPEC_MAX (64u << 20)

void kiln__helper_status(int tag, const char *fmt, ...)
{
    char msg[KILN_ERROR_MAX];
    kiln__buf_t b = KILN_BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kiln__exec_rec(&b, tag, 1, (const void *const[]){msg}, NULL);
    if (kiln__buf_ok(&b)) {
        (void)!send(KILN__EXEC_FD, b.data, b.len, MSG_NOSIGNAL);
    }
    kiln__buf_free(&b);
}

void kiln__helper_stub(const char *path, bool parent)
{
    kiln__buf_t b = KILN_BUF_INIT;

    kiln__exec_rec(&b, KILN__EXEC_ST_STUB, 2,
                   (const void *const[]){path, parent ? "1" : "0"}, NULL);
    if (kiln__buf_ok(&b)) {
        (void)!send(KILN__EXEC_FD, b.data, b.len, MSG_NOSIGNAL);
    }
    kiln__buf_free(&b);
}

static int read_spec(kiln__exec_spec_t *s)
{
    kiln__buf_t b = KILN_BUF_INIT;
    kiln_error_t err = {0};
    int rc;

    for (;;) {
        ssize_t n;

        if (!kiln__buf_reserve(&b, 65536)) {
            kiln__buf_free(&b);
            kiln__helper_status(KILN__EXEC_ST_ERROR, "kiln-run: out of memory");
            return -1;
        }
        n = read(KILN__EXEC_FD, b.data + b.len, 65536);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 || b.len + (size_t)n > SPEC_MAX) {
            kiln__buf_free(&b);
            kiln__helper_status(KILN__EXEC_ST_ERROR,
                                "kiln-run: reading the spec: %s",
                                n < 0 ? strerror(errno) : "too large");
            return -1;
        }
        if (n == 0) {
            break;
        }
        b.len += (size_t)n;
    }
    rc = kiln__exec_spec_decode(b.data, b.len, s, &err);
    explicit_bzero(b.data, b.len); /* secrets */
    kiln__buf_free(&b);
    if (rc < 0) {
        kiln__helper_status(KILN__EXEC_ST_ERROR, "kiln-run: %s", err.message);
        return -1;
    }
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        return -1;
    }
    n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Rootless: the caller becomes root of the new user namespace (one id
 * mapped; nothing else needs subuid ranges). */
static int map_ids(uid_t uid, gid_t gid)
{
    char map[64];

    if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT) {
        return -1;
    }
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) < 0) {
        return -1;
    }
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
    return write_file("/proc/self/gid_map", map);
}

static int status_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const struct {
    const char *name;
    int resource;
} rlimits[] = {
    {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
    {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
    {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},       {"as", RLIMIT_AS},
};

static int set_ulimits(const kiln__exec_spec_t *s)
{
    for (size_t i = 0; i < s->n_ulimits; i++) {
        const kiln__exec_ulimit_t *u = &s->ulimits[i];
        struct rlimit rl = {u->soft, u->hard};
        size_t k = 0;

        while (k < KILN_ARRAY_SIZE(rlimits) &&
               strcmp(rlimits[k].name, u->name) != 0) {
            k++;
        }
        if (k == KILN_ARRAY_SIZE(rlimits)) {
            kiln__helper_status(KILN__EXEC_ST_START, "unknown ulimit '%s'",
                                u->name);
            return -1;
        }
        if (setrlimit(rlimits[k].resource, &rl) < 0) {
            kiln__helper_status(KILN__EXEC_ST_START, "ulimit %s=%llu:%llu: %s",
                                u->name, (unsigned long long)u->soft,
                                (unsigned long long)u->hard, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Reads a small file of the new root, NULL if missing. */
static char *slurp(const char *path)
{
    kiln_error_t err;
    uint8_t *data = NULL;
    size_t len;

    char *text;

    if (kiln__read_file(path, 16u << 20, &data, &len, &err) < 0) {
        return NULL;
    }
    if ((text = realloc(data, len + 1)) == NULL) {
        free(data);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

/* mkdir -p of the working directory; what it creates belongs to the
 * user, as BuildKit makes it. */
static int make_cwd(const char *cwd, const kiln__exec_user_t *u)
{
    char path[4096];

    if (snprintf(path, sizeof(path), "%s", cwd) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(path, 0755) == 0) {
                (void)!chown(path, u->uid, u->gid);
            } else if (errno != EEXIST) {
                return -1;
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    return 0;
}

static bool env_has(char **env, const char *key)
{
    size_t len = strlen(key);

    for (; env != NULL && *env != NULL; env++) {
        if (strncmp(*env, key, len) == 0 && (*env)[len] == '=') {
            return true;
        }
    }
    return false;
}

/* The capabilities a build step keeps, as BuildKit's (and Docker's)
 * default sandbox: no CAP_SYS_ADMIN, so nothing can be mounted or
 * remounted from inside, no module loading, no raw devices. */
static const int kept_caps[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
    CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,    CAP_AUDIT_WRITE,
};

static int last_cap(void)
{
    char *text = slurp("/proc/sys/kernel/cap_last_cap");
    int last = text != NULL ? atoi(text) : CAP_LAST_CAP;

    free(text);
    return last > 0 && last < 64 ? last : CAP_LAST_CAP;
}

/* Drops every other capability from the bounding set, then from the
 * effective, permitted and inheritable sets (for root; setuid() to a
 * user clears them anyway). */
static int drop_caps(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{0}};
    uint64_t keep = 0;

    for (size_t i = 0; i < KILN_ARRAY_SIZE(kept_caps); i++) {
        keep |= 1ull << kept_caps[i];
    }
    for (int cap = 0, last = last_cap(); cap <= last; cap++) {
        if (!(keep & (1ull << cap)) &&
            prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
            return -1;
        }
    }
    d[0].effective = d[0].permitted = d[0].inheritable = (uint32_t)keep;
    d[1].effective = d[1].permitted = d[1].inheritable = (uint32_t)(keep >> 32);
    return (int)syscall(SYS_capset, &h, d);
}

/* The command's process: becomes the user and execs. Never returns. */
static void exec_command(const kiln__exec_spec_t *s, const kiln__exec_user_t *u,
                         const char *cwd)
{
    char home[300];
    char **env = calloc(s->n_env + 3, sizeof(*env));
    size_t n = 0;

    if (env == NULL) {
        kiln__helper_status(KILN__EXEC_ST_START, "out of memory");
        _exit(127);
    }
    for (size_t i = 0; i < s->n_env; i++) {
        env[n++] = s->env[i];
    }
    if (!env_has(s->env, "PATH")) {
        env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                   "/sbin:/bin";
    }
    if (!env_has(s->env, "HOME")) {
        snprintf(home, sizeof(home), "HOME=%s", u->home);
        env[n++] = home;
    }
    if (set_ulimits(s) < 0) {
        _exit(127);
    }
    /* Before the user change, which needs CAP_SETUID (kept). */
    if (drop_caps() < 0) {
        kiln__helper_status(KILN__EXEC_ST_START, "dropping capabilities: %s",
                            strerror(errno));
        _exit(127);
    }
    if (setgroups(u->n_groups, u->groups) < 0 && errno != EPERM) {
        kiln__helper_status(KILN__EXEC_ST_START, "setgroups: %s",
                            strerror(errno));
        _exit(127);
    }
    if (setgid(u->gid) < 0 || setuid(u->uid) < 0) {
        kiln__helper_status(KILN__EXEC_ST_START, "cannot become user %u:%u: %s",
                            (unsigned)u->uid, (unsigned)u->gid,
                            strerror(errno));
        _exit(127);
    }
    if (chdir(cwd) < 0) {
        kiln__helper_status(KILN__EXEC_ST_START, "working directory %s: %s",
                            cwd, strerror(errno));
        _exit(127);
    }

    signal(SIGPIPE, SIG_DFL);
    environ = env;
    execvp(s->args[0], s->args);
    kiln__helper_status(KILN__EXEC_ST_START, "cannot run %s: %s", s->args[0],
                        strerror(errno));
    _exit(127);
}

/* Waits for `cmd`, reaping every orphan meanwhile (init's duty). */
static int reap_until(pid_t cmd)
{
    for (;;) {
        int st;
        pid_t p = wait(&st);

        if (p == cmd) {
            return status_code(st);
        }
        if (p < 0 && errno != EINTR) {
            return 127;
        }
    }
}

/* Pid 1 of the build: mounts, user, then the command. */
static int run_init(const kiln__exec_spec_t *s, bool rootless)
{
    kiln__exec_user_t u;
    kiln_error_t err = {0};
    char *passwd, *group;
    const char *cwd = s->cwd != NULL && s->cwd[0] != '\0' ? s->cwd : "/";
    pid_t cmd;
    int rc;

    if (kiln__helper_mounts(s, s->staging, rootless) < 0) {
        return KILN__EXEC_EXIT_SETUP;
    }
    if (s->hostname != NULL &&
        sethostname(s->hostname, strlen(s->hostname)) < 0) {
        kiln__helper_status(KILN__EXEC_ST_ERROR, "sethostname %s: %s",
                            s->hostname, strerror(errno));
        return KILN__EXEC_EXIT_SETUP;
    }
    passwd = slurp("/etc/passwd");
    group = slurp("/etc/group");
    rc = kiln__exec_user_resolve(s->user, passwd, group, &u, &err);
    free(passwd);
    free(group);
    if (rc < 0) {
        kiln__helper_status(KILN__EXEC_ST_START, "%s", err.message);
        return KILN__EXEC_EXIT_SETUP;
    }
    if (cwd[0] != '/' || make_cwd(cwd, &u) < 0) {
        kiln__helper_status(KILN__EXEC_ST_START,
                            "cannot make working directory %s: %s", cwd,
                            cwd[0] != '/' ? "not absolute" : strerror(errno));
        return KILN__EXEC_EXIT_SETUP;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        kiln__helper_status(KILN__EXEC_ST_ERROR, "no_new_privs: %s",
                            strerror(errno));
        return KILN__EXEC_EXIT_SETUP;
    }
    cmd = fork();
    if (cmd < 0) {
        kiln__helper_status(KILN__EXEC_ST_ERROR, "fork: %s", strerror(errno));
        return KILN__EXEC_EXIT_SETUP;
    }
    if (cmd == 0) {
        exec_command(s, &u, cwd);
    }
    /* kiln sees the end of the status stream once the command runs. */
    close(KILN__EXEC_FD);
    return kiln__helper_relay_wanted() ? kiln__helper_relay_run(cmd)
                                       : reap_until(cmd);
}

/*
 * Every exit is _exit(): nothing is left to flush, and a leak checker
 * (sanitizer builds) cannot stop the world of a process that made a pid
 * namespace.
 */
int main(int argc, char **argv)
{
    kiln__exec_spec_t s;
    bool rootless = geteuid() != 0;
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    pid_t init;
    int st;

    (void)argv;
    if (argc != 1 || fcntl(KILN__EXEC_FD, F_GETFD) < 0) {
        fprintf(stderr, "kiln-run: kiln's exec helper; not to be run by "
                        "hand\n");
        _exit(2);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Whatever else kiln's process had open (an embedder's descriptors
     * without O_CLOEXEC) must not reach the command: it could see the
     * host through them. */
    if (syscall(SYS_close_range, KILN__EXEC_FD + 1, ~0U, 0) < 0) {
        for (int fd = KILN__EXEC_FD + 1; fd < 65536; fd++) {
            close(fd);
        }
    }
    fcntl(KILN__EXEC_FD, F_SETFD, FD_CLOEXEC);
    umask(022); /* as runc gives a container, whatever kiln's is */
    if (read_spec(&s) < 0) {
        _exit(KILN__EXEC_EXIT_SETUP);
    }
    if (s.net_none) {
        flags |= CLONE_NEWNET;
    }
    if (rootless) {
        flags |= CLONE_NEWUSER;
    }
    if (unshare(flags) < 0 || (rootless && map_ids(uid, gid) < 0)) {
        kiln__helper_status(
            KILN__EXEC_ST_NONS, "cannot create the build's namespaces%s: %s",
            rootless ? " (as a user: user namespaces)" : "", strerror(errno));
        kiln__exec_spec_clear(&s);
        _exit(KILN__EXEC_EXIT_SETUP);
    }
    init = fork();
    if (init < 0) {
        kiln__helper_status(KILN__EXEC_ST_ERROR, "fork: %s", strerror(errno));
        _exit(KILN__EXEC_EXIT_SETUP);
    }
    if (init == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 0 && kill(getppid(), 0) < 0) {
            _exit(KILN__EXEC_EXIT_SETUP);
        }
        st = run_init(&s, rootless);
        kiln__exec_spec_clear(&s);
        _exit(st);
    }
    close(KILN__EXEC_FD);
    kiln__exec_spec_clear(&s);
    while (waitpid(init, &st, 0) < 0) {
        if (errno != EINTR) {
            _exit(KILN__EXEC_EXIT_SETUP);
        }
    }
    _exit(status_code(st));
}
