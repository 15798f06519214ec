/*
 * Progress renderers of `kiln build`: tty (a live view redrawn by a timer
 * thread), plain (one line per event) and json (one object per event).
 *
 * Events arrive on the engine's thread, notes on the signal thread, and the
 * tty timer runs on a thread of its own: every entry point takes the
 * progress's mutex, and renderer hooks run with it held.
 */
#ifndef KILN_CLI_PROGRESS_H
#define KILN_CLI_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

typedef enum kiln_cli_progress_mode {
    KILN_CLI_PROGRESS_AUTO = 0,
    KILN_CLI_PROGRESS_TTY,
    KILN_CLI_PROGRESS_PLAIN,
    KILN_CLI_PROGRESS_JSON,
} kiln_cli_progress_mode_t;

typedef struct kiln_cli_progress kiln_cli_progress_t;

/* Parses "auto", "tty", "plain" or "json"; KILN_EINVAL otherwise. */
int kiln_cli_progress_parse(const char *s, kiln_cli_progress_mode_t *out);

/*
 * A renderer writing to `fd` (standard error). AUTO picks TTY when `fd` is a
 * terminal whose TERM is not "dumb", else PLAIN; TTY falls back to PLAIN
 * the same way. Returns 0 or KILN_ENOMEM; free with kiln_cli_progress_free().
 */
int kiln_cli_progress_new(kiln_cli_progress_mode_t mode, int fd,
                          kiln_cli_progress_t **out);

/* The kiln_event_cb of a solve; `userdata` is the progress. Any thread. */
void kiln_cli_progress_event(const kiln_event_t *ev, void *userdata);

/* A message for the user ("canceling ..."), shown in the tty and plain
 * views; json ignores it. Any thread. */
void kiln_cli_progress_note(kiln_cli_progress_t *p, const char *msg);

/*
 * The solve ended with `status` (message in `err`): flushes partial log
 * lines, stops the tty timer, draws the final view and prints the summary
 * (a line "N vertices: N cached, N run, T s", or a json "summary" object).
 */
void kiln_cli_progress_finish(kiln_cli_progress_t *p, int status,
                              const kiln_error_t *err,
                              const kiln_solve_stats_t *stats);

/* Frees the renderer, stopping the tty timer if finish was not called.
 * NULL is a no-op. */
void kiln_cli_progress_free(kiln_cli_progress_t *p);

/* Below: shared by progress*.c only. */

/* A growable string; `oom` is set when an append ran out of memory. */
typedef struct kiln_cli_sbuf {
    char *data;
    size_t len, cap;
    bool oom;
} kiln_cli_sbuf_t;

void kiln_cli_sbuf_add(kiln_cli_sbuf_t *b, const char *s, size_t len);
void kiln_cli_sbuf_puts(kiln_cli_sbuf_t *b, const char *s);
void kiln_cli_sbuf_printf(kiln_cli_sbuf_t *b, const char *fmt, ...)
    KILN_PRINTF(2, 3);
void kiln_cli_sbuf_free(kiln_cli_sbuf_t *b);

/* Writes all of `len` bytes, retrying on EINTR and short writes; errors
 * are ignored (there is nowhere to report a failing stderr). */
void kiln_cli_write_all(int fd, const char *data, size_t len);

enum kiln_cli_vstate {
    KILN_CLI_V_NEW = 0,
    KILN_CLI_V_RUNNING,
    KILN_CLI_V_CACHED,
    KILN_CLI_V_DONE,
    KILN_CLI_V_FAILED,
    KILN_CLI_V_CANCELED,
};

/* Log lines the tty view keeps per vertex. */
#define KILN_CLI_TAIL 6

typedef struct kiln_cli_vertex {
    uint32_t number;
    char *name;
    char *digest;
    enum kiln_cli_vstate state;
    int64_t start_ns;    /* wall clock of STARTED, else of the first event */
    int64_t duration_ns; /* from the final event */
    kiln_cli_sbuf_t partial[2]; /* unfinished last line, stdout / stderr */
    char *tail[KILN_CLI_TAIL];  /* tty: last lines, a ring */
    size_t tail_next;
    int64_t progress_ns; /* plain: when progress was last printed */
    uint64_t current, total;
} kiln_cli_vertex_t;

typedef struct kiln_cli_renderer {
    /* An event; `v` is NULL for a solve-wide one (a warning). */
    void (*event)(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                  const kiln_event_t *ev);
    /* A complete log line without its newline; NULL: the renderer takes
     * LOG events whole in `event`. */
    void (*line)(kiln_cli_progress_t *p, kiln_cli_vertex_t *v, const char *line,
                 size_t len, int64_t time_ns);
    void (*note)(kiln_cli_progress_t *p, const char *msg);
    void (*finish)(kiln_cli_progress_t *p, int status, const char *error,
                   const kiln_solve_stats_t *stats);
} kiln_cli_renderer_t;

struct kiln_cli_progress {
    pthread_mutex_t mu;
    const kiln_cli_renderer_t *r;
    int fd;
    int64_t start_ns;             /* wall clock when the renderer was made */
    kiln_cli_vertex_t **vertices; /* by number; [0] unused */
    size_t n_vertices;            /* slots in `vertices` */
    uint32_t n_seen, n_done;
    bool finished;
    /* plain */
    uint32_t last; /* vertex whose header was printed last; 0: none */
    bool printed;  /* anything printed yet */
    /* tty */
    bool has_thread, stop;
    pthread_t thread;
    pthread_cond_t cond;
    kiln_cli_sbuf_t pending; /* finished lines not drawn yet */
    int live_lines;          /* lines of the live view on screen */
    int width, height;
};

extern const kiln_cli_renderer_t kiln_cli_plain_renderer;
extern const kiln_cli_renderer_t kiln_cli_json_renderer;
extern const kiln_cli_renderer_t kiln_cli_tty_renderer;

/* Length of the valid UTF-8 sequence at s (at most n > 0 bytes), or 0 if
 * s does not start one (a stray byte, an overlong form, a surrogate). */
size_t kiln_cli_utf8_len(const unsigned char *s, size_t n);

/* Wall clock now, ns since the epoch. */
int64_t kiln_cli_now_ns(void);

/* The summary line, "N vertices: N cached, N run, T.TTs\n". */
void kiln_cli_summary_line(kiln_cli_sbuf_t *b, const kiln_solve_stats_t *stats);

/* tty: starts and stops the redraw thread (stop: without the lock). */
int kiln_cli_tty_start(kiln_cli_progress_t *p);
void kiln_cli_tty_stop(kiln_cli_progress_t *p);

#endif
