/*
 * The git CLI, run with uv_spawn on a loop of the calling thread (resolve
 * and fetch run on threads of their own and may block), in an environment
 * made from nothing: no user or system configuration, a private HOME, no
 * terminal prompts, English messages, and the configuration a run needs
 * (the auth header, protocol.file.allow) passed through GIT_CONFIG_KEY_n
 * variables, so that secrets never appear on a command line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "git.h"

#define POLL_MS      50
#define MAX_OUT      (256u << 20)
#define LINGER_MS    2000
#define MAX_ENV      40
#define ENV_PASSTHRU "PATH", "http_proxy", "https_proxy", "HTTP_PROXY", \
    "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY",   \
    "SSH_AUTH_SOCK", "TMPDIR"

struct run {
    uv_loop_t loop;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    const kiln_host_t *host;
    kiln_job_t *job;
    git_out_t *o;
    size_t cap, err_len;
    uint64_t deadline, exited_at;
    int open; /* handles not yet closed */
    bool exited, out_done, err_done, oom;
    int killed; /* 0, or -ECANCELED, or -ETIMEDOUT */
};

static void on_close(uv_handle_t *h)
{
    struct run *r = h->data;

    r->open--;
}

static void close_handle(struct run *r, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        uv_close(h, on_close);
    }
    (void)r;
}

static void maybe_finish(struct run *r)
{
    if (r->exited && r->out_done && r->err_done) {
        close_handle(r, (uv_handle_t *)&r->timer);
        close_handle(r, (uv_handle_t *)&r->proc);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static __thread char chunk[65536];

    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof(chunk));
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

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *r = s->data;
    bool is_out = s == (uv_stream_t *)&r->out;

    if (n > 0) {
        if (is_out) {
            keep_out(r, buf->base, (size_t)n);
        } else {
            keep_err(r, buf->base, (size_t)n);
        }
        return;
    }
    if (n < 0) {
        close_handle(r, (uv_handle_t *)s);
        if (is_out) {
            r->out_done = true;
        } else {
            r->err_done = true;
        }
        maybe_finish(r);
    }
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    struct run *r = p->data;

    r->exited = true;
    r->exited_at = uv_now(&r->loop);
    r->o->status = sig != 0 ? -1 : (int)status;
    maybe_finish(r);
}

static void kill_group(struct run *r, int why)
{
    if (r->killed == 0 && !r->exited) {
        r->killed = why;
        /* Detached: the child leads its own process group, so helpers it
         * started (git-remote-http, ssh, upload-pack) go with it. */
        kill(-r->proc.pid, SIGKILL);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    uint64_t now = uv_now(&r->loop);

    if (r->host->cancelled(r->job)) {
        kill_group(r, -ECANCELED);
    } else if (now >= r->deadline) {
        kill_group(r, -ETIMEDOUT);
    }
    if (r->exited && now - r->exited_at > LINGER_MS) {
        /* Something the child left behind holds the pipes: stop reading. */
        r->out_done = r->err_done = true;
        close_handle(r, (uv_handle_t *)&r->out);
        close_handle(r, (uv_handle_t *)&r->err);
        maybe_finish(r);
    }
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
    ok = ok && (getenv("PATH") != NULL ||
                put_env(env, &n, "PATH", "/usr/bin:/bin"));
    ok = ok && put_env(env, &n, "HOME", ge->home) &&
         put_env(env, &n, "XDG_CONFIG_HOME", ge->home) &&
         put_env(env, &n, "GIT_TEMPLATE_DIR", ge->home) &&
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

/* Replaces every `secret` in s by "xxxxx", in place (never longer). */
static void hide(char *s, const char *secret)
{
    size_t sl;
    char *at;

    if (secret == NULL || (sl = strlen(secret)) < 5) {
        return;
    }
    while ((at = strstr(s, secret)) != NULL) {
        memcpy(at, "xxxxx", 5);
        memmove(at + 5, at + sl, strlen(at + sl) + 1);
    }
}

static int spawn(struct run *r, const git_env_t *ge, const char *cwd,
                 const char *const *argv, char **env)
{
    uv_stdio_container_t stdio[3];
    uv_process_options_t po = {0};
    int rc;

    uv_pipe_init(&r->loop, &r->out, 0);
    uv_pipe_init(&r->loop, &r->err, 0);
    r->out.data = r->err.data = r->proc.data = r->timer.data = r;
    r->open = 3;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->err;
    po.file = "git";
    po.args = (char **)argv;
    po.env = env;
    po.cwd = cwd;
    po.flags = UV_PROCESS_DETACHED;
    po.stdio_count = 3;
    po.stdio = stdio;
    po.exit_cb = on_child_exit;
    (void)ge;
    rc = uv_spawn(&r->loop, &r->proc, &po);
    if (rc < 0) {
        uv_close((uv_handle_t *)&r->out, on_close);
        uv_close((uv_handle_t *)&r->err, on_close);
        uv_close((uv_handle_t *)&r->proc, on_close);
        return rc;
    }
    r->open++;
    uv_timer_init(&r->loop, &r->timer);
    uv_timer_start(&r->timer, on_tick, POLL_MS, POLL_MS);
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
    return 0;
}

int git_run(const kiln_host_t *host, kiln_job_t *job, const git_env_t *ge,
            const char *cwd, const char *const *argv, git_out_t *o)
{
    struct run r = {.host = host, .job = job, .o = o};
    char *env[MAX_ENV];
    int rc;

    memset(o, 0, sizeof(*o));
    o->status = -1;
    if (!make_env(ge, env)) {
        free_env(env);
        return host->fail(job, -ENOMEM, "git: out of memory");
    }
    if ((rc = uv_loop_init(&r.loop)) < 0) {
        free_env(env);
        return host->fail(job, rc, "git: %s", uv_strerror(rc));
    }
    r.deadline = uv_now(&r.loop) + timeout_ms();
    rc = spawn(&r, ge, cwd, argv, env);
    while (r.open > 0) {
        uv_run(&r.loop, UV_RUN_ONCE);
    }
    uv_loop_close(&r.loop);
    free_env(env);
    hide(o->err, ge->secret);
    if (rc < 0) {
        return host->fail(job, rc, "cannot run git: %s", uv_strerror(rc));
    }
    if (r.killed == -ECANCELED) {
        return host->fail(job, -ECANCELED, "git %s: canceled", argv[1]);
    }
    if (r.killed == -ETIMEDOUT) {
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
        static const char *const prefixes[] = {"fatal: ", "error: ",
                                               "remote: "};
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
