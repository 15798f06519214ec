/*
 * Running kiln-run on a private libuv loop of the calling thread: the spec
 * goes out on a socket (descriptor 3 of the helper), status records come
 * back on it, stdout and stderr arrive on pipes and are passed on line by
 * line as they come. A timer polls the build's cancel flag and kills the
 * helper, whose death takes the build's pid namespace with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "exec/exec_int.h"
#include "exec/helper.h"

#ifndef KILN_BUILD_ROOT
#error "KILN_BUILD_ROOT must name the build tree"
#endif
#ifndef KILN_LIBEXECDIR
#error "KILN_LIBEXECDIR must name the installed helper directory"
#endif

/* A line longer than this is passed on in pieces. */
#define LINE_MAX_BYTES 65536
#define CANCEL_POLL_MS 25

struct stream {
    uv_pipe_t pipe;
    struct run_ctx *run;
    int number; /* 1 stdout, 2 stderr */
    kiln__buf_t partial;
    bool open;
};

struct run_ctx {
    const kiln__exec_env_t *env;
    kiln__exec_proc_t *p;
    uv_process_t proc;
    uv_poll_t status; /* our end of the socket: we read and close it */
    int status_fd;
    uv_timer_t timer;
    struct stream out[2];
    bool exited, status_open;
};

const char *kiln__exec_helper_path(void)
{
    static _Thread_local char path[PATH_MAX];
    const char *env = getenv("KILN_RUN_HELPER");
    char exe[PATH_MAX];
    ssize_t n;
    size_t root = strlen(KILN_BUILD_ROOT);

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    if (n > 0 && strncmp(exe, KILN_BUILD_ROOT, root) == 0 && exe[root] == '/') {
        snprintf(path, sizeof(path), "%s/core/exec/kiln-run", KILN_BUILD_ROOT);
        return path;
    }
    return KILN_LIBEXECDIR "/kiln-run";
}

static void add_tail(kiln__exec_proc_t *p, const uint8_t *line, size_t len)
{
    char *slot = p->tail[p->n_tail % KILN__EXEC_TAIL_LINES];
    size_t n =
        len < KILN__EXEC_TAIL_WIDTH - 1 ? len : KILN__EXEC_TAIL_WIDTH - 1;

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        n--;
    }
    memcpy(slot, line, n);
    slot[n] = '\0';
    p->n_tail++;
}

void kiln__exec_tail(const kiln__exec_proc_t *p, char *buf, size_t size)
{
    size_t first = p->n_tail > KILN__EXEC_TAIL_LINES
                       ? p->n_tail - KILN__EXEC_TAIL_LINES
                       : 0;
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = first; i < p->n_tail && used + 1 < size; i++) {
        int w = snprintf(buf + used, size - used, "\n  %s",
                         p->tail[i % KILN__EXEC_TAIL_LINES]);
        if (w < 0) {
            break;
        }
        used += (size_t)w < size - used ? (size_t)w : size - used - 1;
    }
}

static void emit(struct stream *s, const uint8_t *data, size_t len)
{
    const kiln__exec_env_t *env = s->run->env;

    add_tail(s->run->p, data, len);
    if (env->output != NULL) {
        env->output(env->ud, s->number, data, len);
    }
}

/* Passes on every complete line of partial + data, keeps the rest. */
static void take(struct stream *s, const uint8_t *data, size_t len)
{
    kiln__buf_t *b = &s->partial;
    size_t start = 0;

    kiln__buf_append(b, data, len);
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n' || i - start + 1 >= LINE_MAX_BYTES) {
            emit(s, b->data + start, i + 1 - start);
            start = i + 1;
        }
    }
    if (start > 0) {
        memmove(b->data, b->data + start, b->len - start);
        b->len -= start;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static _Thread_local char chunk[65536];

    (void)h;
    (void)suggested;
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void maybe_stop(struct run_ctx *r)
{
    if (r->exited && !r->out[0].open && !r->out[1].open && !r->status_open) {
        uv_timer_stop(&r->timer);
    }
}

static void on_output(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    struct stream *s = h->data;

    if (n > 0) {
        take(s, (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    if (n < 0) {
        if (s->partial.len > 0) {
            emit(s, s->partial.data, s->partial.len);
            s->partial.len = 0;
        }
        s->open = false;
        uv_close((uv_handle_t *)h, NULL);
        maybe_stop(s->run);
    }
}

/* The status socket is watched, not handed to libuv: libuv closes what
 * it owns with a raw syscall, and a descriptor closed out of a thread
 * sanitizer's sight looks like a race when another thread reuses it. */
static void on_status(uv_poll_t *h, int status, int events)
{
    struct run_ctx *r = h->data;
    char buf[4096];
    ssize_t n = 0;

    (void)events;
    if (status == 0) {
        n = read(r->status_fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            return;
        }
    }
    if (n > 0) {
        kiln__buf_append(&r->p->status, buf, (size_t)n);
        return;
    }
    r->status_open = false;
    uv_poll_stop(h);
    maybe_stop(r);
}

static void on_helper_exit(uv_process_t *proc, int64_t status, int sig)
{
    struct run_ctx *r = proc->data;

    r->p->exit_status = status;
    r->p->term_signal = sig;
    r->exited = true;
    uv_close((uv_handle_t *)proc, NULL);
    maybe_stop(r);
}

static void on_tick(uv_timer_t *t)
{
    struct run_ctx *r = t->data;
    const kiln_fileop_env_t *f = r->env->fenv;

    if (!r->exited && !r->p->cancelled && f->cancelled != NULL &&
        f->cancelled(f->ud)) {
        r->p->cancelled = true;
        uv_process_kill(&r->proc, SIGKILL);
    }
}

/* Sends the whole spec, then half-closes: the helper reads to EOF. A
 * helper that died early is seen at its exit, not here. */
static void send_spec(int fd, const uint8_t *spec, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, spec, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        spec += n;
        len -= (size_t)n;
    }
    shutdown(fd, SHUT_WR);
}

static void close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int kiln__exec_spawn(const kiln__exec_env_t *env, const uint8_t *spec,
                     size_t len, kiln__exec_proc_t *p, kiln_error_t *err)
{
    struct run_ctx r = {.env = env, .p = p};
    const char *helper = kiln__exec_helper_path();
    char *args[] = {(char *)helper, NULL};
    uv_stdio_container_t stdio[4];
    uv_process_options_t o = {0};
    uv_loop_t loop;
    int sv[2], rc;

    memset(p, 0, sizeof(*p));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return kiln__fail(err, -errno, "socketpair: %s", strerror(errno));
    }
    rc = uv_loop_init(&loop);
    if (rc < 0) {
        close(sv[0]);
        close(sv[1]);
        return kiln__fail(err, rc, "uv_loop_init: %s", uv_strerror(rc));
    }
    for (int i = 0; i < 2; i++) {
        r.out[i].run = &r;
        r.out[i].number = i + 1;
        uv_pipe_init(&loop, &r.out[i].pipe, 0);
        r.out[i].pipe.data = &r.out[i];
    }
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r.out[0].pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r.out[1].pipe;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = sv[1];
    o.file = helper;
    o.args = args;
    o.exit_cb = on_helper_exit;
    o.stdio = stdio;
    o.stdio_count = 4;
    r.proc.data = &r;
    rc = uv_spawn(&loop, &r.proc, &o);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        uv_walk(&loop, close_all, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return kiln__fail(err, rc, "cannot start the exec helper %s: %s",
                          helper, uv_strerror(rc));
    }
    send_spec(sv[0], spec, len);
    r.status_fd = sv[0];
    uv_poll_init(&loop, &r.status, sv[0]);
    r.status.data = &r;
    r.status_open = r.out[0].open = r.out[1].open = true;
    uv_poll_start(&r.status, UV_READABLE | UV_DISCONNECT, on_status);
    uv_read_start((uv_stream_t *)&r.out[0].pipe, alloc_cb, on_output);
    uv_read_start((uv_stream_t *)&r.out[1].pipe, alloc_cb, on_output);
    uv_timer_init(&loop, &r.timer);
    r.timer.data = &r;
    uv_timer_start(&r.timer, on_tick, CANCEL_POLL_MS, CANCEL_POLL_MS);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&r.timer, NULL);
    uv_walk(&loop, close_all, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(sv[0]);
    kiln__buf_free(&r.out[0].partial);
    kiln__buf_free(&r.out[1].partial);
    if (!kiln__buf_ok(&p->status)) {
        kiln__buf_free(&p->status);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}
