/* Progress of `kiln build`: the vertex table shared by every renderer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

/* Vertex numbers beyond this are not tracked (a bogus number must not make
 * the table huge); their events are rendered without state. */
#define MAX_NUMBER (16u * 1024 * 1024)

void kiln_cli_sbuf_add(kiln_cli_sbuf_t *b, const char *s, size_t len)
{
    if (b->oom) {
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }
        d = realloc(b->data, cap);
        if (d == NULL) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void kiln_cli_sbuf_puts(kiln_cli_sbuf_t *b, const char *s)
{
    kiln_cli_sbuf_add(b, s, strlen(s));
}

void kiln_cli_sbuf_printf(kiln_cli_sbuf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof(small)) {
        kiln_cli_sbuf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    kiln_cli_sbuf_add(b, big, (size_t)n);
    free(big);
}

void kiln_cli_sbuf_free(kiln_cli_sbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void kiln_cli_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

size_t kiln_cli_utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80) {
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates, beyond U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        return 0;
    }
    return len;
}

int64_t kiln_cli_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void kiln_cli_summary_line(kiln_cli_sbuf_t *b, const kiln_solve_stats_t *stats)
{
    kiln_cli_sbuf_printf(b, "%u vertices: %u cached, %u run, %.2fs\n",
                         stats->total, stats->cached, stats->run,
                         (double)stats->duration_ns / 1e9);
}

int kiln_cli_progress_parse(const char *s, kiln_cli_progress_mode_t *out)
{
    static const char *const names[] = {"auto", "tty", "plain", "json"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (kiln_cli_progress_mode_t)i;
            return 0;
        }
    }
    return KILN_EINVAL;
}

static bool is_terminal(int fd)
{
    const char *term = getenv("TERM");

    return isatty(fd) && term != NULL && strcmp(term, "dumb") != 0;
}

int kiln_cli_progress_new(kiln_cli_progress_mode_t mode, int fd,
                          kiln_cli_progress_t **out)
{
    kiln_cli_progress_t *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (p == NULL) {
        return KILN_ENOMEM;
    }
    if (mode == KILN_CLI_PROGRESS_AUTO || mode == KILN_CLI_PROGRESS_TTY) {
        mode =
            is_terminal(fd) ? KILN_CLI_PROGRESS_TTY : KILN_CLI_PROGRESS_PLAIN;
    }
    p->r = mode == KILN_CLI_PROGRESS_TTY    ? &kiln_cli_tty_renderer
           : mode == KILN_CLI_PROGRESS_JSON ? &kiln_cli_json_renderer
                                            : &kiln_cli_plain_renderer;
    p->fd = fd;
    p->start_ns = kiln_cli_now_ns();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (mode == KILN_CLI_PROGRESS_TTY && kiln_cli_tty_start(p) < 0) {
        /* No thread: draw nothing live, but still keep state. */
        p->r = &kiln_cli_plain_renderer;
    }
    *out = p;
    return 0;
}

static void vertex_free(kiln_cli_vertex_t *v)
{
    if (v == NULL) {
        return;
    }
    free(v->name);
    free(v->digest);
    kiln_cli_sbuf_free(&v->partial[0]);
    kiln_cli_sbuf_free(&v->partial[1]);
    for (size_t i = 0; i < KILN_CLI_TAIL; i++) {
        free(v->tail[i]);
    }
    free(v);
}

/* The vertex of an event, made on first sight; NULL for solve-wide events,
 * untracked numbers, or out of memory. */
static kiln_cli_vertex_t *vertex_for(kiln_cli_progress_t *p,
                                     const kiln_event_t *ev)
{
    kiln_cli_vertex_t *v;

    if (ev->digest == NULL || ev->number == 0 || ev->number > MAX_NUMBER) {
        return NULL;
    }
    if (ev->number >= p->n_vertices) {
        size_t n = p->n_vertices ? p->n_vertices : 64;
        kiln_cli_vertex_t **t;
        while (n <= ev->number) {
            n *= 2;
        }
        t = realloc(p->vertices, n * sizeof(*t));
        if (t == NULL) {
            return NULL;
        }
        memset(t + p->n_vertices, 0, (n - p->n_vertices) * sizeof(*t));
        p->vertices = t;
        p->n_vertices = n;
    }
    v = p->vertices[ev->number];
    if (v != NULL) {
        return v;
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    v->number = ev->number;
    v->digest = strdup(ev->digest);
    v->name = strdup(ev->name != NULL ? ev->name : ev->digest);
    v->start_ns = ev->time_ns;
    if (v->digest == NULL || v->name == NULL) {
        vertex_free(v);
        return NULL;
    }
    p->vertices[ev->number] = v;
    p->n_seen++;
    return v;
}

/* Hands every complete line of `data` to the renderer; keeps the rest. */
static void split_lines(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                        const kiln_event_t *ev)
{
    kiln_cli_sbuf_t *b = &v->partial[ev->stream == 2 ? 1 : 0];
    const char *data = (const char *)ev->data;
    size_t len = ev->len;

    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;

        kiln_cli_sbuf_add(b, data, n);
        if (nl == NULL) {
            return;
        }
        n++;
        data += n;
        len -= n;
        if (b->len > 0 && b->data[b->len - 1] == '\r') {
            b->len--;
        }
        p->r->line(p, v, b->data != NULL ? b->data : "", b->len, ev->time_ns);
        b->len = 0;
    }
}

/* Hands the unfinished last lines of a vertex to the renderer. */
static void flush_lines(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                        int64_t time_ns)
{
    if (p->r->line == NULL) {
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        kiln_cli_sbuf_t *b = &v->partial[i];
        if (b->len > 0) {
            p->r->line(p, v, b->data, b->len, time_ns);
            b->len = 0;
        }
    }
}

static void update_state(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                         const kiln_event_t *ev)
{
    static const enum kiln_cli_vstate states[] = {
        [KILN_EVENT_VERTEX_STARTED] = KILN_CLI_V_RUNNING,
        [KILN_EVENT_VERTEX_CACHED] = KILN_CLI_V_CACHED,
        [KILN_EVENT_VERTEX_COMPLETED] = KILN_CLI_V_DONE,
        [KILN_EVENT_VERTEX_FAILED] = KILN_CLI_V_FAILED,
        [KILN_EVENT_VERTEX_CANCELED] = KILN_CLI_V_CANCELED,
    };

    if (ev->type == KILN_EVENT_VERTEX_STARTED) {
        v->start_ns = ev->time_ns;
    } else if (ev->type == KILN_EVENT_PROGRESS) {
        v->current = ev->current;
        v->total = ev->total;
    }
    if (ev->type < KILN_EVENT_VERTEX_STARTED ||
        ev->type > KILN_EVENT_VERTEX_CANCELED) {
        return;
    }
    if (ev->type != KILN_EVENT_VERTEX_STARTED) {
        flush_lines(p, v, ev->time_ns);
        if (v->state < KILN_CLI_V_CACHED) {
            p->n_done++;
        }
        v->duration_ns = ev->duration_ns;
    }
    v->state = states[ev->type];
}

void kiln_cli_progress_event(const kiln_event_t *ev, void *userdata)
{
    kiln_cli_progress_t *p = userdata;
    kiln_cli_vertex_t *v;

    pthread_mutex_lock(&p->mu);
    if (p->finished) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    v = vertex_for(p, ev);
    if (v != NULL) {
        update_state(p, v, ev);
    }
    if (ev->type == KILN_EVENT_LOG && v != NULL && p->r->line != NULL) {
        split_lines(p, v, ev);
    } else {
        p->r->event(p, v, ev);
    }
    pthread_mutex_unlock(&p->mu);
}

void kiln_cli_progress_note(kiln_cli_progress_t *p, const char *msg)
{
    pthread_mutex_lock(&p->mu);
    if (!p->finished) {
        p->r->note(p, msg);
    }
    pthread_mutex_unlock(&p->mu);
}

void kiln_cli_progress_finish(kiln_cli_progress_t *p, int status,
                              const kiln_error_t *err,
                              const kiln_solve_stats_t *stats)
{
    int64_t now = kiln_cli_now_ns();

    kiln_cli_tty_stop(p);
    pthread_mutex_lock(&p->mu);
    if (!p->finished) {
        for (size_t i = 1; i < p->n_vertices; i++) {
            if (p->vertices[i] != NULL) {
                flush_lines(p, p->vertices[i], now);
            }
        }
        p->r->finish(p, status, status < 0 && err != NULL ? err->message : NULL,
                     stats);
        p->finished = true;
    }
    pthread_mutex_unlock(&p->mu);
}

void kiln_cli_progress_free(kiln_cli_progress_t *p)
{
    if (p == NULL) {
        return;
    }
    kiln_cli_tty_stop(p);
    for (size_t i = 0; i < p->n_vertices; i++) {
        vertex_free(p->vertices[i]);
    }
    free(p->vertices);
    kiln_cli_sbuf_free(&p->pending);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
}
