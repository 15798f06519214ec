/*
 * The engine: store, loop, job limits, in-flight table. Private to core/.
 */
#ifndef KILN_ENGINE_ENGINE_H
#define KILN_ENGINE_ENGINE_H

#include <pthread.h>
#include <uv.h>

#include "plugin/registry.h"
#include "solver/solve.h"
#include "store/store.h"

/* A vertex run shared by every solve that needs the same key. */
struct kiln__job {
    char key[KILN_DIGEST_STRLEN + 1];
    kiln_solve_t *owner;  /* solve whose node runs it */
    kiln__node_t *node;   /* that node */
    enum kiln__pool pool;
    kiln__node_t **waiters; /* nodes of other solves waiting for it */
    kiln_solve_t **waiter_solves;
    size_t n_waiters;
    uv_work_t work;
    int status;
    bool cached;          /* found under a slow key: nothing ran */
    bool threaded;        /* runs on a thread of its own */
    kiln_error_t error;
    kiln__job_t *next;    /* in-flight list */
};

enum kiln__msg_type { MSG_START, MSG_CANCEL, MSG_STOP, MSG_JOB_DONE };

typedef struct kiln__msg {
    enum kiln__msg_type type;
    uint64_t solve_id;
    kiln_solve_t *solve; /* MSG_START only: ownership passes to the loop */
    kiln__job_t *job;    /* MSG_JOB_DONE: a job of the process pool ended */
    struct kiln__msg *next;
} kiln__msg_t;

struct kiln_engine {
    kiln__store_t *store;
    kiln__registry_t *plugins;
    char *root;
    unsigned limit[KILN__N_POOLS];   /* jobs at once per pool */
    unsigned running[KILN__N_POOLS]; /* jobs in flight, all solves */
    unsigned threads;                /* of those, on threads of their own */
    kiln_log_level_t log_level;

    uv_loop_t *loop;
    uv_loop_t own_loop;
    bool has_thread;
    uv_thread_t thread;
    uv_async_t *async; /* heap: freed by its close callback */

    pthread_mutex_t mu;  /* guards msgs and next_id */
    kiln__msg_t *msgs, *msgs_tail;
    uint64_t next_id;

    kiln_solve_t *solves; /* live solves (loop thread only) */
    kiln__job_t *inflight; /* loop thread only */
    bool stopping;
};

/* Any thread: queues a message for the loop (dropped once stopped). */
void kiln__engine_post(kiln_engine_t *e, kiln__msg_t *m);

/* Loop thread: links a new solve and begins it. */
void kiln__engine_start(kiln_engine_t *e, kiln_solve_t *s);

/* Loop thread: look for more work to start, in every live solve. */
void kiln__engine_dispatch(kiln_engine_t *e);

/* Loop thread: a solve has ended; unlink it and tell its waiter. */
void kiln__engine_solve_ended(kiln_engine_t *e, kiln_solve_t *s);

#endif
