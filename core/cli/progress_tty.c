/*
 * The tty renderer: a live view at the bottom of the terminal, redrawn ten
 * times a second by a thread of its own, as buildctl draws it:
 *
 *    => CACHED mkfile /a                                      0.0s
 *    => mkfile /b                                             0.1s
 *   [+] Building 1.2s (12/20)
 *    => mkfile /c                                             0.3s
 *    => => # the last lines of its output
 *
 * Finished vertices scroll up above the live view, which holds a header
 * and the vertices running now with their timers and last log lines.
 * Events only change state under the lock; all drawing is done by the
 * timer thread (and by finish, once the thread has stopped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define REDRAW_NS 100000000ll /* ten frames a second */

#define CLEAR_EOL "\x1b[K"

static void update_size(kiln_cli_progress_t *p)
{
    struct winsize ws;

    p->width = 80;
    p->height = 24;
    if (ioctl(p->fd, TIOCGWINSZ, &ws) == 0) {
        if (ws.ws_col >= 20) {
            p->width = ws.ws_col;
        }
        if (ws.ws_row >= 4) {
            p->height = ws.ws_row;
        }
    }
}

static bool use_color(void)
{
    const char *no = getenv("NO_COLOR");

    return no == NULL || no[0] == '\0';
}

/* Appends at most `cols` columns of `text` (a code point is a column;
 * control characters become spaces, bytes that are not UTF-8 U+FFFD).
 * Returns the columns used. */
static int fit(kiln_cli_sbuf_t *b, const char *text, size_t len, int cols)
{
    const unsigned char *s = (const unsigned char *)text;
    int used = 0;
    size_t i = 0;

    while (i < len && used < cols) {
        size_t n = kiln_cli_utf8_len(s + i, len - i);

        if (n == 0) {
            kiln_cli_sbuf_puts(b, "\xef\xbf\xbd");
            n = 1;
        } else if (s[i] < 0x20 || s[i] == 0x7f ||
                   (s[i] == 0xc2 && s[i + 1] < 0xa0)) {
            /* C0 and C1 controls: an escape would move the cursor. */
            kiln_cli_sbuf_puts(b, " ");
        } else {
            kiln_cli_sbuf_add(b, text + i, n);
        }
        used++;
        i += n;
    }
    return used;
}

/* One row: prefix, text, and `timer` (may be NULL) at the right edge. */
static void row(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b, const char *prefix,
                const char *text, size_t len, const char *timer)
{
    int width = p->width - 1;
    int tlen = timer != NULL ? (int)strlen(timer) + 1 : 0;
    int used = fit(b, prefix, strlen(prefix), width);

    used +=
        fit(b, text, len, width - used - tlen > 0 ? width - used - tlen : 0);
    if (timer != NULL && used + tlen <= width) {
        kiln_cli_sbuf_printf(b, "%*s", width - used, timer);
    }
    kiln_cli_sbuf_puts(b, CLEAR_EOL "\n");
}

static void timer_str(char *buf, size_t len, int64_t ns)
{
    snprintf(buf, len, "%.1fs", ns > 0 ? (double)ns / 1e9 : 0.0);
}

/* The lines of a vertex's tail, oldest first; returns how many were added
 * (at most `max`). */
static int tail_rows(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b,
                     const kiln_cli_vertex_t *v, int max)
{
    int n = 0;

    for (size_t i = 0; i < KILN_CLI_TAIL && n < max; i++) {
        const char *line = v->tail[(v->tail_next + i) % KILN_CLI_TAIL];
        if (line != NULL) {
            row(p, b, " => => # ", line, strlen(line), NULL);
            n++;
        }
    }
    return n;
}

/* A finished vertex's row, added to the lines above the live view. */
static void finished_row(kiln_cli_progress_t *p, kiln_cli_vertex_t *v)
{
    static const char *const words[] = {
        [KILN_CLI_V_CACHED] = " => CACHED ",
        [KILN_CLI_V_DONE] = " => ",
        [KILN_CLI_V_FAILED] = " => ERROR ",
        [KILN_CLI_V_CANCELED] = " => CANCELED ",
    };
    bool red = v->state == KILN_CLI_V_FAILED && use_color();
    char timer[32];

    timer_str(timer, sizeof(timer), v->duration_ns);
    if (red) {
        kiln_cli_sbuf_puts(&p->pending, "\x1b[31m");
    }
    row(p, &p->pending, words[v->state], v->name, strlen(v->name), timer);
    if (v->state == KILN_CLI_V_FAILED) {
        tail_rows(p, &p->pending, v, KILN_CLI_TAIL);
    }
    if (red) {
        kiln_cli_sbuf_puts(&p->pending, "\x1b[0m");
    }
}

static void tty_event(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                      const kiln_event_t *ev)
{
    switch (ev->type) {
    case KILN_EVENT_VERTEX_CACHED:
    case KILN_EVENT_VERTEX_COMPLETED:
    case KILN_EVENT_VERTEX_FAILED:
    case KILN_EVENT_VERTEX_CANCELED:
        if (v != NULL) {
            finished_row(p, v);
        }
        break;
    case KILN_EVENT_WARNING:
    case KILN_EVENT_MESSAGE:
        row(p, &p->pending,
            ev->type == KILN_EVENT_WARNING ? "WARN: "
            : ev->level >= KILN_LOG_DEBUG  ? "DEBUG: "
                                           : "INFO: ",
            ev->data != NULL ? (const char *)ev->data : "",
            ev->data != NULL ? ev->len : 0, NULL);
        break;
    default:
        break;
    }
}

static void tty_line(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                     const char *line, size_t len, int64_t time_ns)
{
    char *copy = strndup(line, len > 4096 ? 4096 : len);
    char **slot = &v->tail[v->tail_next];

    if (copy == NULL) {
        return;
    }
    free(*slot);
    *slot = copy;
    v->tail_next = (v->tail_next + 1) % KILN_CLI_TAIL;
}

static void tty_note(kiln_cli_progress_t *p, const char *msg)
{
    row(p, &p->pending, "", msg, strlen(msg), NULL);
}

/* The running vertices, with their tails, in at most `max` rows. */
static int running_rows(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b, int max,
                        int64_t now)
{
    int lines = 0, hidden = 0;
    char timer[32];

    for (size_t i = 1; i < p->n_vertices; i++) {
        kiln_cli_vertex_t *v = p->vertices[i];
        if (v == NULL || v->state != KILN_CLI_V_RUNNING) {
            continue;
        }
        if (lines >= max - 1) {
            hidden++;
            continue;
        }
        timer_str(timer, sizeof(timer), now - v->start_ns);
        row(p, b, " => ", v->name, strlen(v->name), timer);
        lines++;
        lines += tail_rows(p, b, v, max - 1 - lines);
    }
    if (hidden > 0) {
        kiln_cli_sbuf_printf(b, " => ... and %d more running" CLEAR_EOL "\n",
                             hidden);
        lines++;
    }
    return lines;
}

/* Redraws: the new finished rows, then the live view. `word` ends the
 * header once the solve ended ("FINISHED"), else NULL. */
static void frame(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b, const char *word)
{
    int64_t now = kiln_cli_now_ns();
    char head[128];

    update_size(p);
    if (p->live_lines > 0) {
        kiln_cli_sbuf_printf(b, "\r\x1b[%dA", p->live_lines);
    }
    kiln_cli_sbuf_add(b, p->pending.data != NULL ? p->pending.data : "",
                      p->pending.len);
    p->pending.len = 0;
    snprintf(head, sizeof(head), "[+] Building %.1fs (%u/%u)%s%s",
             (double)(now - p->start_ns) / 1e9, p->n_done, p->n_seen,
             word != NULL ? " " : "", word != NULL ? word : "");
    row(p, b, "", head, strlen(head), NULL);
    p->live_lines = 1 + running_rows(p, b, p->height - 2, now);
    kiln_cli_sbuf_puts(b, "\x1b[J");
}

static void *tty_main(void *arg)
{
    kiln_cli_progress_t *p = arg;
    kiln_cli_sbuf_t b = {0};

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        int64_t at = kiln_cli_now_ns() + REDRAW_NS;

        frame(p, &b, NULL);
        pthread_mutex_unlock(&p->mu);
        if (!b.oom) {
            kiln_cli_write_all(p->fd, b.data, b.len);
        }
        kiln_cli_sbuf_free(&b);
        ts.tv_sec = (time_t)(at / 1000000000);
        ts.tv_nsec = (long)(at % 1000000000);
        pthread_mutex_lock(&p->mu);
        while (!p->stop && kiln_cli_now_ns() < at) {
            pthread_cond_timedwait(&p->cond, &p->mu, &ts);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int kiln_cli_tty_start(kiln_cli_progress_t *p)
{
    update_size(p);
    if (pthread_create(&p->thread, NULL, tty_main, p) != 0) {
        return KILN_ENOMEM;
    }
    p->has_thread = true;
    return 0;
}

void kiln_cli_tty_stop(kiln_cli_progress_t *p)
{
    pthread_mutex_lock(&p->mu);
    if (!p->has_thread) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->stop = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->has_thread = false;
}

static void tty_finish(kiln_cli_progress_t *p, int status, const char *error,
                       const kiln_solve_stats_t *stats)
{
    kiln_cli_sbuf_t b = {0};

    frame(p, &b,
          status == 0                ? "FINISHED"
          : status == KILN_ECANCELED ? "CANCELED"
                                     : "FAILED");
    kiln_cli_summary_line(&b, stats);
    if (!b.oom) {
        kiln_cli_write_all(p->fd, b.data, b.len);
    }
    kiln_cli_sbuf_free(&b);
}

const kiln_cli_renderer_t kiln_cli_tty_renderer = {
    .event = tty_event,
    .line = tty_line,
    .note = tty_note,
    .finish = tty_finish,
};
