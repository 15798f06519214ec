/*
 * The plain renderer: one line per event, each prefixed with the vertex
 * number, as BuildKit's plain progress prints them:
 *
 *   #3 mkfile /x
 *   #3 0.123 a log line
 *   #3 DONE 0.1s
 *
 * A vertex's name is printed again (after a blank line) whenever the
 * output switches to it from another one.
 */
#include <stdio.h>

#include "progress.h"

/* Plain prints a long step's progress at most this often per vertex. */
#define PROGRESS_INTERVAL_NS 1000000000ll

static void header(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b, uint32_t number,
                   const char *name)
{
    if (p->last == number && number != 0) {
        return;
    }
    if (p->printed) {
        kiln_cli_sbuf_puts(b, "\n");
    }
    kiln_cli_sbuf_printf(b, "#%u %s\n", number, name != NULL ? name : "");
    p->last = number;
}

static void flush(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b)
{
    if (b->len > 0) {
        kiln_cli_write_all(p->fd, b->data, b->len);
        p->printed = true;
    }
    kiln_cli_sbuf_free(b);
}

/* `len` bytes of a message, without a trailing newline. */
static int msg_len(const kiln_event_t *ev)
{
    size_t len = ev->len;

    while (len > 0 &&
           (ev->data[len - 1] == '\n' || ev->data[len - 1] == '\r')) {
        len--;
    }
    return len > 65536 ? 65536 : (int)len;
}

static bool progress_due(kiln_cli_vertex_t *v, const kiln_event_t *ev)
{
    if (v == NULL || ev->current == ev->total ||
        ev->time_ns - v->progress_ns >= PROGRESS_INTERVAL_NS) {
        if (v != NULL) {
            v->progress_ns = ev->time_ns;
        }
        return true;
    }
    return false;
}

static void vertex_event(kiln_cli_progress_t *p, kiln_cli_sbuf_t *b,
                         kiln_cli_vertex_t *v, const kiln_event_t *ev)
{
    uint32_t n = ev->number;
    double secs = (double)ev->duration_ns / 1e9;
    const char *data = (const char *)ev->data;

    switch (ev->type) {
    case KILN_EVENT_VERTEX_CACHED:
        kiln_cli_sbuf_printf(b, "#%u CACHED\n", n);
        break;
    case KILN_EVENT_VERTEX_COMPLETED:
        kiln_cli_sbuf_printf(b, "#%u DONE %.1fs\n", n, secs);
        break;
    case KILN_EVENT_VERTEX_FAILED:
        kiln_cli_sbuf_printf(b, "#%u ERROR: %.*s\n", n, msg_len(ev),
                             data != NULL ? data : "");
        break;
    case KILN_EVENT_VERTEX_CANCELED:
        kiln_cli_sbuf_printf(b, "#%u CANCELED\n", n);
        break;
    case KILN_EVENT_LOG:
        kiln_cli_sbuf_printf(b, "#%u %.*s\n", n, msg_len(ev),
                             data != NULL ? data : "");
        break;
    case KILN_EVENT_PROGRESS:
        secs = v != NULL ? (double)(ev->time_ns - v->start_ns) / 1e9 : 0;
        if (ev->total > 0) {
            kiln_cli_sbuf_printf(b, "#%u %llu / %llu %.1fs\n", n,
                                 (unsigned long long)ev->current,
                                 (unsigned long long)ev->total, secs);
        } else {
            kiln_cli_sbuf_printf(b, "#%u %llu %.1fs\n", n,
                                 (unsigned long long)ev->current, secs);
        }
        break;
    case KILN_EVENT_WARNING:
        kiln_cli_sbuf_printf(b, "#%u WARN: %.*s\n", n, msg_len(ev),
                             data != NULL ? data : "");
        break;
    case KILN_EVENT_MESSAGE:
        kiln_cli_sbuf_printf(b, "#%u %s: %.*s\n", n,
                             ev->level >= KILN_LOG_DEBUG ? "DEBUG" : "INFO",
                             msg_len(ev), data != NULL ? data : "");
        break;
    default:
        break;
    }
}

static void plain_event(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                        const kiln_event_t *ev)
{
    kiln_cli_sbuf_t b = {0};

    if (ev->digest == NULL) {
        /* Solve-wide: a warning on a block of its own. */
        if (ev->type != KILN_EVENT_WARNING && ev->type != KILN_EVENT_MESSAGE) {
            return;
        }
        kiln_cli_sbuf_printf(&b, "%s%s: %.*s\n", p->printed ? "\n" : "",
                             ev->type == KILN_EVENT_WARNING ? "WARN"
                             : ev->level >= KILN_LOG_DEBUG  ? "DEBUG"
                                                            : "INFO",
                             msg_len(ev), (const char *)ev->data);
        p->last = 0;
        flush(p, &b);
        return;
    }
    if (ev->type == KILN_EVENT_PROGRESS && !progress_due(v, ev)) {
        return;
    }
    header(p, &b, ev->number, v != NULL ? v->name : ev->name);
    vertex_event(p, &b, v, ev);
    flush(p, &b);
}

static void plain_line(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                       const char *line, size_t len, int64_t time_ns)
{
    kiln_cli_sbuf_t b = {0};
    double secs = (double)(time_ns - v->start_ns) / 1e9;

    header(p, &b, v->number, v->name);
    kiln_cli_sbuf_printf(&b, "#%u %.3f ", v->number, secs < 0 ? 0 : secs);
    kiln_cli_sbuf_add(&b, line, len);
    kiln_cli_sbuf_puts(&b, "\n");
    flush(p, &b);
}

static void plain_note(kiln_cli_progress_t *p, const char *msg)
{
    kiln_cli_sbuf_t b = {0};

    kiln_cli_sbuf_printf(&b, "%s%s\n", p->printed ? "\n" : "", msg);
    p->last = 0;
    flush(p, &b);
}

static void plain_finish(kiln_cli_progress_t *p, int status, const char *error,
                         const kiln_solve_stats_t *stats)
{
    kiln_cli_sbuf_t b = {0};

    if (p->printed) {
        kiln_cli_sbuf_puts(&b, "\n");
    }
    kiln_cli_summary_line(&b, stats);
    flush(p, &b);
}

const kiln_cli_renderer_t kiln_cli_plain_renderer = {
    .event = plain_event,
    .line = plain_line,
    .note = plain_note,
    .finish = plain_finish,
};
