/*
 * The solver: per-solve scheduling of a definition's vertices on the
 * engine's libuv loop. Private to core/.
 *
 * A solve computes every reachable vertex's cache key (keys.c), looks the
 * result up top-down (a cached vertex needs none of its inputs), then runs
 * the rest bottom-up as their inputs complete, each on the thread pool
 * (runop.c), bounded by the engine's job limits. Vertices with the same key
 * in solves of one engine run once (the engine's in-flight table).
 */
#ifndef KILN_SOLVER_SOLVE_H
#define KILN_SOLVER_SOLVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "llb/graph.h"

typedef struct kiln__node kiln__node_t;

/*
 * Job pools, ninja style: internal work (file ops, hashing, copying) is
 * bounded by the CPU count, external processes (exec ops, downloads, git),
 * which mostly wait, by a limit of their own.
 */
enum kiln__pool {
    KILN__POOL_CPU = 0,
    KILN__POOL_PROCESS = 1,
    KILN__N_POOLS = 2,
};

/* A FIFO of ready nodes. */
typedef struct kiln__queue {
    kiln__node_t **items;
    size_t head, tail, cap;
} kiln__queue_t;

/* A diagnostic made on a worker thread, delivered on the loop. */
typedef struct kiln__note {
    kiln__node_t *node; /* NULL: solve-wide */
    kiln_log_level_t level;
    int stream;         /* 1 or 2: LOG output of the op, len bytes */
    size_t len;
    struct kiln__note *next;
    char msg[];
} kiln__note_t;
typedef struct kiln__job kiln__job_t;

enum kiln__node_state {
    NODE_UNNEEDED = 0, /* not reachable from the result, or below a hit */
    NODE_WAITING,      /* needed, inputs not ready */
    NODE_READY,        /* inputs ready, waiting for a job slot */
    NODE_RUNNING,
    NODE_DONE,   /* ran; result stored */
    NODE_CACHED, /* result came from the store */
    NODE_FAILED,
    NODE_CANCELED,
};

/* Per-vertex state within one solve. */
struct kiln__node {
    kiln__vertex_t *v;
    uint32_t number;          /* 1-based, in definition order */
    enum kiln__node_state state;
    char *name;               /* display name, owned */
    char (*keys)[KILN_DIGEST_STRLEN + 1]; /* one per output */
    char **snapshots;         /* snapshot id per output once known, owned */
    bool ignore_cache;
    enum kiln__pool pool;
    bool reachable;
    size_t pending;           /* needed inputs not yet available */
    kiln__node_t **users;     /* nodes that take this one as input */
    size_t n_users;
    int64_t started_ns;
    kiln__job_t *job;         /* while running or waiting on another solve */
    struct kiln__cachemap *cm; /* the op's cache map, from keys.c */
    _Atomic uint64_t done_bytes; /* progress of the run, written by it */
    _Atomic uint64_t total_bytes; /* expected, 0 if unknown */
    atomic_bool resolving;       /* a source being pinned, during the plan */
    char *pin;                   /* sources: what the plugin pinned */
    /* Per op input, the content checksum a content dep got when the node
     * ran ("" for other inputs); NULL if none: for cache export/import. */
    char (*content)[KILN_DIGEST_STRLEN + 1];
    kiln__buf_t output;          /* what the op said while it ran: kept
                                    with its records (kiln logs) */
    uint64_t sent_bytes;         /* done_bytes last reported (loop) */
};

/* Everything a solve needs; kiln_solve_t is this. */
struct kiln_solve {
    kiln_engine_t *engine;
    uint64_t id;         /* engine-unique, for cross-thread messages */
    kiln_solve_options_t opts;
    const kiln_definition_t *def;
    kiln__node_t *nodes; /* def->n_vertices, parallel to def->vertices */
    kiln__node_t *result;
    int64_t result_index;

    size_t running;      /* jobs of this solve in flight */
    size_t remaining;    /* needed nodes not finished */
    kiln__queue_t ready[KILN__N_POOLS];

    bool planned;        /* keys computed and lookups done */
    bool exporting;
    bool failing;        /* stop dispatching: failed or canceled */
    bool ended;
    atomic_bool stop;    /* set with `failing`: read by running ops */
    uv_timer_t *ticker;  /* reports progress of running ops; heap */

    int status;          /* loop thread only, as error */
    kiln_error_t error;
    /* Of the plan or the export, each on a worker thread, read by the loop
     * once it is done (they never run at once). */
    int work_status;
    kiln_error_t work_error;
    kiln_solve_stats_t stats;
    int64_t started_ns;
    struct kiln__cache *cache; /* cache exports and imports (core/cache) */

    pthread_mutex_t mu;  /* guards `ended` for kiln_solve_wait(), notes */
    kiln__note_t *notes, *notes_tail;
    pthread_cond_t cond;
    kiln_solve_t *next;  /* engine's list of live solves */
};

/* Called on the loop: begins scheduling a started solve. */
void kiln__solve_begin(kiln_solve_t *s);

/* Loop thread: starts ready nodes of `s` while the engine has free job
 * slots; ends the solve when nothing is left to do. */
void kiln__solve_dispatch(kiln_solve_t *s);

/* Loop thread: a job ended; release its slot, then as below. */
void kiln__solve_job_ended(kiln__job_t *job);

/* Loop thread: a job finished; update every node that waited on it. */
void kiln__solve_job_done(kiln__job_t *job);

/* Called on the loop: asks the solve to stop. */
void kiln__solve_cancel_on_loop(kiln_solve_t *s);

/* Frees a solve's scheduling state (not the solve itself). */
void kiln__solve_release(kiln_solve_t *s);

/* Computes every reachable node's cache keys (keys.c). */
int kiln__solve_compute_keys(kiln_solve_t *s, kiln_error_t *err);

/* The selector through which n reads input i ("" for none). */
const char *kiln__solve_selector(const kiln__node_t *n, size_t i);

/* True if input i of n is a content dep: the op only reads it, so a slow
 * key from its content checksum applies. */
bool kiln__solve_content_dep(const kiln__node_t *n, size_t i);

/* The slow keys of every output of n: content[i] (per Op.inputs; NULL
 * for inputs that are not content deps) replaces input i's key and
 * selector. Thread-safe (reads immutable solve state). */
int kiln__solve_slow_keys(const kiln_solve_t *s, const kiln__node_t *n,
                          const char *const *content,
                          char (*out)[KILN_DIGEST_STRLEN + 1],
                          kiln_error_t *err);

/*
 * A diagnostic about node n (NULL: solve-wide) at `level`, if the engine's
 * log level allows it: WARN becomes a WARNING event, INFO and DEBUG a
 * MESSAGE event. Any thread; delivered on the loop (kiln__solve_flush()).
 */
void kiln__solve_note(kiln_solve_t *s, kiln__node_t *n, kiln_log_level_t level,
                      const char *fmt, ...) KILN_PRINTF(4, 5);

/* Output of node n's process (stream 1 stdout, 2 stderr), delivered as a
 * LOG event on the loop like a note. Any thread. */
void kiln__solve_log(kiln_solve_t *s, kiln__node_t *n, int stream,
                     const void *data, size_t len);

/* Loop thread: emits the notes queued so far, in order. */
void kiln__solve_flush(kiln_solve_t *s);

/* Emits an event for node n (NULL for solve-wide) of solve s. */
void kiln__solve_emit(kiln_solve_t *s, kiln__node_t *n,
                      kiln_event_type_t type, const char *msg);

#endif
