/*
 * The git CLI, run with posix_spawn from the calling thread (resolve and
 * fetch run on threads of their own and may block), in an environment
 * made from nothing: no user or system configuration, a private HOME, no
 * terminal prompts, English messages, and the configuration a run needs
 * (the auth header, protocol.file.allow) passed through GIT_CONFIG_KEY_n
 * variables, so that secrets never appear on a command line. The child
 * leads a process group of its own, killed whole on cancel or timeout.
 *
 * Not uv_spawn: libuv closes descriptors with raw syscalls, so its loops,
 * made and closed on the many fetch threads, hand descriptor numbers
 * between threads unseen by ThreadSanitizer (a race report on every run).
 * poll() and waitpid() on this thread do the same work.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "git.h"

#define POLL_MS   50
#define MAX_OUT   (256u << 20)
#define LINGER_MS 2000
#define MAX_ENV   40
#define ENV_PASSTHRU                                                           \
    "PATH", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",          \
        "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "SSH_AUTH_SOCK",     \
        "TMPDIR"

struct run {
    git_out_t *o;
    size_t cap, err_len;
    bool oom;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void keep_out(struct run *r, const char *p, size_t n)
{
    git_out_t *o = r->o;

    if (o->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 65536;
        char *b;
        while (cap < o->len + n + 1) {
            cap *= 2;
        }
        if (cap > MAX_OUT || (b = realloc(o->out, cap)) == NULL) {
            r->oom = true;
            return;
        }
        o->out = b;
        r->cap = cap;
    }
    memcpy(o->out + o->len, p, n);
    o->len += n;
    o->out[o->len] = '\0';
}

/* Keeps the last sizeof(err) - 1 bytes of stderr. */
static void keep_err(struct run *r, const char *p, size_t n)
{
    size_t max = sizeof(r->o->err) - 1;

    if (n >= max) {
        p += n - max;
        n = max;
    }
    if (r->err_len + n > max) {
        size_t drop = r->err_len + n - max;
        memmove(r->o->err, r->o->err + drop, r->err_len - drop);
        r->err_len -= drop;
    }
    memcpy(r->o->err + r->err_len, p, n);
    r->err_len += n;
    r->o->err[r->err_len] = '\0';
}

static uint64_t timeout_ms(void)
{
    const char *v = getenv("KILN_GIT_TIMEOUT");
    char *end;
    unsigned long s;

    if (v == NULL || *v == '\0') {
        return 600000;
    }
    s = strtoul(v, &end, 10);
    return *end == '\0' && s > 0 ? (uint64_t)s * 1000 : 600000;
}

/* One "KEY=VALUE" string into env[*n]; false when out of room/memory. */
static bool put_env(char **env, size_t *n, const char *key, const char *val)
{
    if (*n + 1 >= MAX_ENV) {
        return false;
    }
    env[*n] = malloc(strlen(key) + strlen(val) + 2);
    if (env[*n] == NULL) {
        return false;
    }
    sprintf(env[*n], "%s=%s", key, val);
    (*n)++;
    env[*n] = NULL;
    return true;
}

static bool put_config(char **env, size_t *n, int *count, const char *key,
                       const char *val)
{
    char k[32];

    snprintf(k, sizeof(k), "GIT_CONFIG_KEY_%d", *count);
    if (!put_env(env, n, k, key)) {
        return false;
    }
    snprintf(k, sizeof(k), "GIT_CONFIG_VALUE_%d", *count);
    (*count)++;
    return put_env(env, n, k, val);
}

/* The child's environment: NULL-terminated, malloc'ed strings. */
static bool make_env(const git_env_t *ge, char **env)
{
    static const char *const pass[] = {ENV_PASSTHRU};
    char templates[4200];
    size_t n = 0;
    int count = 0;
    char num[16];
    bool ok = true;

    env[0] = NULL;
    for (size_t i = 0; ok && i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = getenv(pass[i]);
        if (v != NULL) {
            ok = put_env(env, &n, pass[i], v);
        }
    }
    ok = ok &&
         (getenv("PATH") != NULL || put_env(env, &n, "PATH", "/usr/bin:/bin"));
    /* An empty template directory: new repositories get no hooks. */
    snprintf(templates, sizeof(templates), "%s/templates", ge->home);
    ok = ok && put_env(env, &n, "HOME", ge->home) &&
         put_env(env, &n, "XDG_CONFIG_HOME", ge->home) &&
         put_env(env, &n, "GIT_TEMPLATE_DIR", templates) &&
         put_env(env, &n, "LC_ALL", "C") &&
         put_env(env, &n, "GIT_TERMINAL_PROMPT", "0") &&
         put_env(env, &n, "GIT_CONFIG_NOSYSTEM", "1") &&
         put_env(env, &n, "GIT_CONFIG_GLOBAL", "/dev/null");
    if (ok && ge->ssh_command != NULL) {
        ok = put_env(env, &n, "GIT_SSH_COMMAND", ge->ssh_command);
    }
    if (ok && ge->index_file != NULL) {
        ok = put_env(env, &n, "GIT_INDEX_FILE", ge->index_file);
    }
    /* No background gc or maintenance in the shared repositories: they
     * would outlive the lock. */
    ok = ok && put_config(env, &n, &count, "gc.auto", "0") &&
         put_config(env, &n, &count, "maintenance.auto", "false") &&
         put_config(env, &n, &count, "advice.detachedHead", "false") &&
         put_config(env, &n, &count, "protocol.ext.allow", "never") &&
         put_config(env, &n, &count, "protocol.file.allow",
                    ge->allow_file ? "always" : "never") &&
         put_config(env, &n, &count, "uploadpack.allowAnySHA1InWant", "true");
    if (ok && ge->auth_key != NULL && ge->auth_value != NULL) {
        ok = put_config(env, &n, &count, ge->auth_key, ge->auth_value);
    }
    snprintf(num, sizeof(num), "%d", count);
    return ok && put_env(env, &n, "GIT_CONFIG_COUNT", num);
}

static void free_env(char **env)
{
    for (size_t i = 0; env[i] != NULL; i++) {
        free(env[i]);
    }
}

/* Replaces every `secret` ("USERINFO@") in s (size bytes) by "xxxxx@". */
static void hide(char *s, size_t size, const char *secret)
{
    char out[4096];
    size_t sl, w = 0;
    const char *r = s, *at;

    if (secret == NULL || (sl = strlen(secret)) == 0 || size > sizeof(out)) {
        return;
    }
    /* "USERINFO@" as redact() shows it: "xxxxx@". */
    while ((at = strstr(r, secret)) != NULL) {
        size_t n = (size_t)(at - r);
        if (w + n + 6 >= size) {
            break;
        }
        memcpy(out + w, r, n);
        memcpy(out + w + n, "xxxxx@", 6);
        w += n + 6;
        r = at + sl;
    }
    snprintf(out + w, size - w, "%s", r);
    memcpy(s, out, strlen(out) + 1);
}

/* "git ARGS" at debug level, credentials hidden. */
static void log_command(const kiln_host_t *host, kiln_job_t *job,
                        const git_env_t *ge, const char *const *argv)
{
    char line[2048];
    size_t w = 0;

    for (size_t i = 0; argv[i] != NULL && w + 2 < sizeof(line); i++) {
        int n =
            snprintf(line + w, sizeof(line) - w, "%s%s", i ? " " : "", argv[i]);
        w = n < 0 ? w : w + (size_t)n;
    }
    line[sizeof(line) - 1] = '\0';
    hide(line, sizeof(line), ge->secret);
    host->log(job, KILN_PLUGIN_LOG_DEBUG, "%s", line);
}

/* Starts git: its stdout and stderr into fds[0] and fds[1]. */
static int spawn(const char *cwd, const char *const *argv, char **env,
                 pid_t *pid, int fds[2])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int out[2] = {-1, -1}, err[2] = {-1, -1}, rc;
    sigset_t none, def;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        rc = -errno;
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0) {
                close(out[i]);
            }
        }
        return rc;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (cwd != NULL) {
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    }
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    rc = -posix_spawnp(pid, "git", &fa, &at, (char *const *)argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(err[1]);
    if (rc < 0) {
        close(out[0]);
        close(err[0]);
        return rc;
    }
    fds[0] = out[0];
    fds[1] = err[0];
    return 0;
}

/* Reads fds until both end, the job is canceled or the deadline passes
 * (the group killed: *killed), then reaps the child. */
static void wait_child(struct run *r, const kiln_host_t *host, kiln_job_t *job,
                       pid_t pid, int fds[2], int *killed)
{
    uint64_t deadline = now_ms() + timeout_ms(), exited_at = 0;
    bool open[2] = {true, true}, exited = false;
    int status = 0;

    while (open[0] || open[1]) {
        struct pollfd p[2] = {{.fd = open[0] ? fds[0] : -1, .events = POLLIN},
                              {.fd = open[1] ? fds[1] : -1, .events = POLLIN}};
        char buf[65536];

        if (poll(p, 2, POLL_MS) < 0 && errno != EINTR) {
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (open[i] && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t n = read(fds[i], buf, sizeof(buf));
                if (n > 0 && i == 0) {
                    keep_out(r, buf, (size_t)n);
                } else if (n > 0) {
                    keep_err(r, buf, (size_t)n);
                } else if (n == 0 || errno != EINTR) {
                    open[i] = false;
                }
            }
        }
        if (*killed == 0 && !exited) {
            if (host->cancelled(job)) {
                *killed = -ECANCELED;
            } else if (now_ms() >= deadline) {
                *killed = -ETIMEDOUT;
            }
            if (*killed != 0) {
                /* The group: helpers git started (git-remote-http, ssh,
                 * upload-pack) go with it. */
                kill(-pid, SIGKILL);
            }
        }
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            exited_at = now_ms();
        }
        if (exited && now_ms() - exited_at > LINGER_MS) {
            break; /* something the child left behind holds the pipes */
        }
    }
    if (!exited) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    close(fds[0]);
    close(fds[1]);
    r->o->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int git_run(const kiln_host_t *host, kiln_job_t *job, const git_env_t *ge,
            const char *cwd, const char *const *argv, git_out_t *o)
{
    struct run r = {.o = o};
    char *env[MAX_ENV];
    int fds[2], killed = 0, rc;
    pid_t pid;

    memset(o, 0, sizeof(*o));
    o->status = -1;
    if (!make_env(ge, env)) {
        free_env(env);
        return host->fail(job, -ENOMEM, "git: out of memory");
    }
    log_command(host, job, ge, argv);
    rc = spawn(cwd, argv, env, &pid, fds);
    free_env(env);
    if (rc < 0) {
        return host->fail(job, rc, "cannot run git: %s", strerror(-rc));
    }
    wait_child(&r, host, job, pid, fds, &killed);
    hide(o->err, sizeof(o->err), ge->secret);
    if (killed == -ECANCELED) {
        return host->fail(job, -ECANCELED, "git %s: canceled", argv[1]);
    }
    if (killed == -ETIMEDOUT) {
        return host->fail(job, -ETIMEDOUT,
                          "git %s: timed out after %llu s (KILN_GIT_TIMEOUT)",
                          argv[1], (unsigned long long)timeout_ms() / 1000);
    }
    if (r.oom) {
        return host->fail(job, -ENOMEM, "git %s: output too large", argv[1]);
    }
    return 0;
}

const char *git_err_line(git_out_t *o)
{
    char joined[sizeof(o->err)], *save = NULL;
    size_t w = 0;

    /* Every line that says something, without git's prefixes, joined. */
    for (char *line = strtok_r(o->err, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        static const char *const prefixes[] = {
            "fatal: ", "error: ", "remote: "};
        while (*line == ' ') {
            line++;
        }
        for (size_t i = 0; i < 3; i++) {
            if (strncmp(line, prefixes[i], strlen(prefixes[i])) == 0) {
                line += strlen(prefixes[i]);
            }
        }
        if (*line != '\0' && w + strlen(line) + 3 < sizeof(joined)) {
            w += (size_t)sprintf(joined + w, "%s%s", w ? "; " : "", line);
        }
    }
    if (w == 0) {
        return "no message";
    }
    memcpy(o->err, joined, w + 1);
    return o->err;
}
