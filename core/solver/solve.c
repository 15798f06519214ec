/*
 * Scheduling one solve on the engine's loop.
 *
 * Phases: plan (on the thread pool: cache keys, then store lookups from the
 * result down, since a cached vertex needs none of its inputs), run (ready
 * vertices go to the thread pool as job slots free up; a vertex another
 * solve is already running is waited for, not run twice), export, end.
 * Everything here runs on the loop thread except the uv_work callbacks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "engine/engine.h"
#include "solver/run.h"

/* How often running ops' progress is reported. */
#define TICK_MS 200

static void fill_event(kiln_event_t *ev, kiln__node_t *n,
                       kiln_event_type_t type)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    ev->time_ns = kiln__now_ns();
    if (n != NULL) {
        ev->digest = n->v->digest;
        ev->name = n->name;
        ev->number = n->number;
        if (n->started_ns != 0) {
            ev->duration_ns = kiln__mono_ns() - n->started_ns;
        }
    }
}

/* A PROGRESS event for n: `done` bytes of `total` (0: unknown). */
static void emit_progress(kiln_solve_t *s, kiln__node_t *n, uint64_t done,
                          uint64_t total)
{
    kiln_event_t ev;

    n->sent_bytes = done;
    if (s->opts.on_event == NULL) {
        return;
    }
    fill_event(&ev, n, KILN_EVENT_PROGRESS);
    ev.current = done;
    ev.total = total;
    s->opts.on_event(&ev, s->opts.userdata);
}

/* The ops this solve runs itself report their progress as it changes. */
static void on_tick(uv_timer_t *t)
{
    kiln_solve_t *s = t->data;

    /* Output of running processes, as it comes. */
    kiln__solve_flush(s);
    for (size_t i = 0; i < s->def->n_vertices; i++) {
        kiln__node_t *n = &s->nodes[i];
        uint64_t done;

        if (!s->planned) {
            /* The plan owns the nodes: only sources being pinned (a
             * download, a tree hashed) report, through their atomics. */
            if (!atomic_load(&n->resolving)) {
                continue;
            }
        } else if (n->state != NODE_RUNNING || n->job == NULL ||
                   n->job->node != n) {
            continue;
        }
        done = atomic_load(&n->done_bytes);
        if (done != n->sent_bytes) {
            emit_progress(s, n, done, atomic_load(&n->total_bytes));
        }
    }
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void start_ticker(kiln_solve_t *s)
{
    uv_timer_t *t;

    if (s->opts.on_event == NULL || (t = calloc(1, sizeof(*t))) == NULL) {
        return; /* progress is best effort */
    }
    uv_timer_init(s->engine->loop, t);
    t->data = s;
    uv_timer_start(t, on_tick, TICK_MS, TICK_MS);
    s->ticker = t;
}

static void stop_ticker(kiln_solve_t *s)
{
    if (s->ticker != NULL) {
        uv_timer_stop(s->ticker);
        uv_close((uv_handle_t *)s->ticker, free_handle);
        s->ticker = NULL;
    }
}

void kiln__solve_note(kiln_solve_t *s, kiln__node_t *n, kiln_log_level_t level,
                      const char *fmt, ...)
{
    kiln__note_t *note;
    va_list ap;
    int len;

    if (level > s->engine->log_level || s->opts.on_event == NULL) {
        return;
    }
    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || (note = malloc(sizeof(*note) + (size_t)len + 1)) == NULL) {
        return; /* diagnostics are best effort */
    }
    va_start(ap, fmt);
    vsnprintf(note->msg, (size_t)len + 1, fmt, ap);
    va_end(ap);
    note->node = n;
    note->level = level;
    note->stream = 0;
    note->len = (size_t)len;
    note->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->notes_tail != NULL) {
        s->notes_tail->next = note;
    } else {
        s->notes = note;
    }
    s->notes_tail = note;
    pthread_mutex_unlock(&s->mu);
}

void kiln__solve_log(kiln_solve_t *s, kiln__node_t *n, int stream,
                     const void *data, size_t len)
{
    kiln__note_t *note;

    if (s->opts.on_event == NULL ||
        (note = malloc(sizeof(*note) + len + 1)) == NULL) {
        return; /* the output is kept with the record either way */
    }
    memcpy(note->msg, data, len);
    note->msg[len] = '\0';
    note->node = n;
    note->level = KILN_LOG_INFO;
    note->stream = stream;
    note->len = len;
    note->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->notes_tail != NULL) {
        s->notes_tail->next = note;
    } else {
        s->notes = note;
    }
    s->notes_tail = note;
    pthread_mutex_unlock(&s->mu);
}

void kiln__solve_flush(kiln_solve_t *s)
{
    kiln__note_t *note;

    pthread_mutex_lock(&s->mu);
    note = s->notes;
    s->notes = s->notes_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (note != NULL) {
        kiln__note_t *next = note->next;
        kiln_event_t ev;

        fill_event(&ev, note->node,
                   note->stream != 0             ? KILN_EVENT_LOG
                   : note->level <= KILN_LOG_WARN ? KILN_EVENT_WARNING
                                                  : KILN_EVENT_MESSAGE);
        ev.level = note->level;
        ev.stream = note->stream;
        ev.data = (const uint8_t *)note->msg;
        ev.len = note->len;
        s->opts.on_event(&ev, s->opts.userdata);
        free(note);
        note = next;
    }
}

void kiln__solve_emit(kiln_solve_t *s, kiln__node_t *n,
                      kiln_event_type_t type, const char *msg)
{
    kiln_event_t ev;

    if (s->opts.on_event == NULL) {
        return;
    }
    fill_event(&ev, n, type);
    if (msg != NULL) {
        ev.data = (const uint8_t *)msg;
        ev.len = strlen(msg);
    }
    s->opts.on_event(&ev, s->opts.userdata);
}

static bool push_ready(kiln_solve_t *s, kiln__node_t *n)
{
    kiln__queue_t *q = &s->ready[n->pool];

    if (q->head > 0 && q->head == q->tail) {
        q->head = q->tail = 0; /* empty: reuse from the start */
    }
    if (q->tail == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        kiln__node_t **items = realloc(q->items, cap * sizeof(*items));
        if (items == NULL) {
            return false;
        }
        q->items = items;
        q->cap = cap;
    }
    q->items[q->tail++] = n;
    n->state = NODE_READY;
    return true;
}

/* The first failure decides the solve's status; `name` (may be NULL) is
 * the vertex at fault. */
static void fail_solve(kiln_solve_t *s, int code, const char *name,
                       const char *msg)
{
    if (s->failing) {
        return;
    }
    s->failing = true;
    atomic_store(&s->stop, true);
    s->status = code;
    if (name != NULL) {
        kiln__fail(&s->error, code, "%s: %s", name, msg);
    } else {
        kiln__fail(&s->error, code, "%s", msg);
    }
}

/* Plan, on the thread pool: keys for every reachable node, then lookups
 * from the result down. */
static void plan_work(uv_work_t *w)
{
    kiln_solve_t *s = w->data;
    kiln_error_t *err = &s->work_error; /* the loop owns s->error */
    kiln__node_t **stack;
    size_t sp = 0;
    int rc;

    rc = kiln__solve_compute_keys(s, err);
    if (rc < 0) {
        s->work_status = rc;
        return;
    }
    kiln__cache_import_plan(s);
    stack = malloc(s->def->n_vertices * sizeof(*stack));
    if (stack == NULL) {
        s->work_status = kiln__fail(err, KILN_ENOMEM, "out of memory");
        return;
    }
    stack[sp++] = s->result;
    s->result->state = NODE_WAITING;
    while (sp > 0 && s->work_status == 0) {
        kiln__node_t *n = stack[--sp];
        size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
        bool hit = !n->ignore_cache && !s->opts.no_cache;

        n->snapshots = calloc(n_out, sizeof(*n->snapshots));
        if (n->snapshots == NULL) {
            s->work_status = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
        for (size_t o = 0; o < n_out && hit; o++) {
            int lr = kiln__run_lookup(s->engine, n->keys[o], &n->snapshots[o],
                                      err);
            if (lr == KILN_ENOENT) {
                hit = false;
            } else if (lr < 0) {
                s->work_status = lr;
                hit = false;
            }
        }
        if (!hit && !n->ignore_cache && !s->opts.no_cache &&
            s->work_status == 0) {
            /* Not in the store: an imported build cache may have it. */
            int ir = kiln__cache_import_lookup(s, n, err);
            s->work_status = ir < 0 ? ir : 0;
            hit = ir == 1;
        }
        n->state = hit ? NODE_CACHED : NODE_WAITING;
        kiln__solve_note(s, n, KILN_LOG_DEBUG, "cache key %s: %s", n->keys[0],
                         hit                                 ? "hit"
                         : n->ignore_cache || s->opts.no_cache ? "not looked up"
                                                               : "miss");
        if (hit) {
            continue;
        }
        for (size_t i = 0; i < n->v->op->n_inputs; i++) {
            kiln__node_t *in = &s->nodes[n->v->inputs[i]->pos];
            if (in->state == NODE_UNNEEDED) {
                in->state = NODE_WAITING; /* claimed; decided when popped */
                stack[sp++] = in;
            }
        }
    }
    free(stack);
}

/* Loop: count what each waiting node still needs and queue the ready. */
static void plan_done(uv_work_t *w, int status)
{
    kiln_solve_t *s = w->data;

    free(w);
    s->running--;
    s->planned = true;
    kiln__solve_flush(s);
    if (s->work_status < 0) {
        /* A cancel during the plan stays the solve's status. */
        fail_solve(s, s->work_status, NULL, s->work_error.message);
    } else if (status < 0) {
        fail_solve(s, KILN_ECANCELED, NULL, "canceled");
    }
    if (s->failing) {
        kiln__solve_dispatch(s);
        return;
    }
    for (size_t i = 0; i < s->def->n_vertices; i++) {
        kiln__node_t *n = &s->nodes[i];
        if (!n->reachable) {
            continue;
        }
        s->stats.total++;
        if (n->state != NODE_WAITING) {
            /* Cached, or below a cached node: nothing to run. */
            n->state = NODE_CACHED;
            s->stats.cached++;
            kiln__solve_emit(s, n, KILN_EVENT_VERTEX_CACHED, NULL);
            kiln__cache_export_node(s, n);
            continue;
        }
        s->remaining++;
        for (size_t k = 0; k < n->v->op->n_inputs; k++) {
            kiln__node_t *in = &s->nodes[n->v->inputs[k]->pos];
            if (in->state == NODE_WAITING) {
                kiln__node_t **u = realloc(
                    in->users, (in->n_users + 1) * sizeof(*in->users));
                if (u == NULL) {
                    fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
                    break;
                }
                in->users = u;
                in->users[in->n_users++] = n;
                n->pending++;
            }
        }
    }
    for (size_t i = 0; i < s->def->n_vertices && !s->failing; i++) {
        kiln__node_t *n = &s->nodes[i];
        if (n->state == NODE_WAITING && n->pending == 0 &&
            !push_ready(s, n)) {
            fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
        }
    }
    kiln__engine_dispatch(s->engine);
}

void kiln__solve_begin(kiln_solve_t *s)
{
    uv_work_t *w = calloc(1, sizeof(*w));

    s->started_ns = kiln__mono_ns();
    if (s->result == NULL) { /* empty definition: nothing to build */
        s->planned = true;
        kiln__solve_dispatch(s);
        free(w);
        return;
    }
    if (w == NULL) {
        fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
        s->planned = true;
        kiln__solve_dispatch(s);
        return;
    }
    w->data = s;
    s->running++; /* the plan counts as work in flight */
    start_ticker(s);
    uv_queue_work(s->engine->loop, w, plan_work, plan_done);
}

static void run_work(uv_work_t *w)
{
    kiln__job_t *job = w->data;

    job->status =
        kiln__run_node(job->owner, job->node, &job->cached, &job->error);
}

/* Loop thread: a job ended (on the thread pool or a thread of its own). */
void kiln__solve_job_ended(kiln__job_t *job)
{
    kiln_engine_t *e = job->owner->engine;

    e->running[job->pool]--;
    if (job->threaded && --e->threads == 0 && e->loop != &e->own_loop) {
        uv_unref((uv_handle_t *)e->async);
    }
    kiln__solve_flush(job->owner);
    kiln__solve_job_done(job); /* frees job */
    kiln__engine_dispatch(e);
}

static void run_done(uv_work_t *w, int status)
{
    kiln__job_t *job = w->data;

    if (status < 0 && job->status == 0) {
        job->status = kiln__fail(&job->error, KILN_ECANCELED, "canceled");
    }
    kiln__solve_job_ended(job);
}

/*
 * Jobs of the process pool (sources, exec ops) block for long and may be
 * many at once: each gets a thread of its own, so that they never starve
 * libuv's small thread pool, and reports its end through the engine's
 * message queue.
 */
static void *process_main(void *arg)
{
    kiln__job_t *job = arg;
    kiln__msg_t *m = calloc(1, sizeof(*m));

    run_work(&job->work);
    if (m == NULL) {
        /* Cannot tell the loop: keep trying, it is one small allocation. */
        while ((m = calloc(1, sizeof(*m))) == NULL) {
            usleep(10000);
        }
    }
    m->type = MSG_JOB_DONE;
    m->job = job;
    kiln__engine_post(job->owner->engine, m);
    return NULL;
}

static int start_job(kiln_engine_t *e, kiln__job_t *job)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    if (job->pool != KILN__POOL_PROCESS) {
        return uv_queue_work(e->loop, &job->work, run_work, run_done);
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, process_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        return -rc;
    }
    /* An embedder's loop must stay alive until the thread reports back. */
    job->threaded = true;
    if (e->threads++ == 0 && e->loop != &e->own_loop) {
        uv_ref((uv_handle_t *)e->async);
    }
    return 0;
}

/* Finds a job in flight for `key` in any solve of the engine. */
static kiln__job_t *find_inflight(kiln_engine_t *e, const char *key)
{
    for (kiln__job_t *j = e->inflight; j != NULL; j = j->next) {
        if (strcmp(j->key, key) == 0) {
            return j;
        }
    }
    return NULL;
}

static int wait_on(kiln__job_t *job, kiln_solve_t *s, kiln__node_t *n)
{
    size_t k = job->n_waiters + 1;
    kiln__node_t **w = realloc(job->waiters, k * sizeof(*w));
    kiln_solve_t **ws;

    if (w == NULL) {
        return KILN_ENOMEM;
    }
    job->waiters = w;
    ws = realloc(job->waiter_solves, k * sizeof(*ws));
    if (ws == NULL) {
        return KILN_ENOMEM;
    }
    job->waiter_solves = ws;
    job->waiters[job->n_waiters] = n;
    job->waiter_solves[job->n_waiters++] = s;
    return 0;
}

/* Starts node n: a new job, or a wait on the same key in flight. */
static void start_node(kiln_solve_t *s, kiln__node_t *n)
{
    kiln_engine_t *e = s->engine;
    kiln__job_t *job = find_inflight(e, n->keys[0]);

    n->state = NODE_RUNNING;
    n->started_ns = kiln__mono_ns();
    s->running++;
    kiln__solve_emit(s, n, KILN_EVENT_VERTEX_STARTED, NULL);
    if (job != NULL) {
        if (wait_on(job, s, n) == 0) {
            n->job = job;
            return;
        }
    } else if ((job = calloc(1, sizeof(*job))) != NULL) {
        memcpy(job->key, n->keys[0], sizeof(job->key));
        job->owner = s;
        job->node = n;
        job->pool = n->pool;
        job->work.data = job;
        job->next = e->inflight;
        e->inflight = job;
        n->job = job;
        e->running[n->pool]++;
        if (start_job(e, job) < 0) {
            /* Could not start: end it as failed, on the loop. */
            job->status = kiln__fail(&job->error, KILN_ENOMEM,
                                     "cannot start a thread for the op");
            kiln__solve_job_ended(job);
        }
        return;
    }
    s->running--;
    n->state = NODE_FAILED;
    fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
}

static char *dup_or_null(const char *p, bool *oom)
{
    char *d;

    if (p == NULL) {
        return NULL;
    }
    d = strdup(p);
    if (d == NULL) {
        *oom = true;
    }
    return d;
}

static void node_succeeded(kiln_solve_t *s, kiln__node_t *n,
                           const kiln__job_t *job)
{
    bool oom = false;

    if (n != job->node) {
        /* A node of another solve: it takes a lease of its own, released
         * with its solve. */
        size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
        for (size_t o = 0; o < n_out && !oom; o++) {
            free(n->snapshots[o]);
            n->snapshots[o] = dup_or_null(job->node->snapshots[o], &oom);
            if (n->snapshots[o] != NULL &&
                kiln__store_lease(s->engine->store, KILN__STORE_SNAPSHOT,
                                  n->snapshots[o], NULL) < 0) {
                free(n->snapshots[o]);
                n->snapshots[o] = NULL;
                oom = true;
            }
        }
    }
    if (oom) {
        n->state = NODE_FAILED;
        fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
        return;
    }
    s->remaining--;
    if (job->cached) {
        n->state = NODE_CACHED;
        s->stats.cached++;
        kiln__solve_emit(s, n, KILN_EVENT_VERTEX_CACHED, NULL);
    } else {
        uint64_t done = atomic_load(&job->node->done_bytes);
        uint64_t total = atomic_load(&job->node->total_bytes);

        if (done != n->sent_bytes) {
            /* The final figure. */
            emit_progress(s, n, done, total > done ? total : done);
        }
        n->state = NODE_DONE;
        s->stats.run++;
        kiln__solve_emit(s, n, KILN_EVENT_VERTEX_COMPLETED, NULL);
    }
    kiln__cache_export_node(s, n);
    for (size_t i = 0; i < n->n_users; i++) {
        kiln__node_t *u = n->users[i];
        if (--u->pending == 0 && u->state == NODE_WAITING &&
            !push_ready(s, u)) {
            fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
        }
    }
}

static void node_finished(kiln_solve_t *s, kiln__node_t *n,
                          const kiln__job_t *job)
{
    s->running--;
    n->job = NULL;
    if (job->status == 0) {
        node_succeeded(s, n, job);
        return;
    }
    if (job->status == KILN_ECANCELED && n != job->node && !s->failing) {
        /* The solve that ran it was canceled, this one was not: run it. */
        if (!push_ready(s, n)) {
            fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
        }
        return;
    }
    if (job->status == KILN_ECANCELED) {
        n->state = NODE_CANCELED;
        kiln__solve_emit(s, n, KILN_EVENT_VERTEX_CANCELED, NULL);
    } else {
        n->state = NODE_FAILED;
        kiln__solve_emit(s, n, KILN_EVENT_VERTEX_FAILED, job->error.message);
    }
    fail_solve(s, job->status, n->name, job->error.message);
}

void kiln__solve_job_done(kiln__job_t *job)
{
    kiln_engine_t *e = job->owner->engine;

    for (kiln__job_t **p = &e->inflight; *p != NULL; p = &(*p)->next) {
        if (*p == job) {
            *p = job->next;
            break;
        }
    }
    /* Waiters first: they copy results from the owner's node. */
    for (size_t i = 0; i < job->n_waiters; i++) {
        node_finished(job->waiter_solves[i], job->waiters[i], job);
    }
    node_finished(job->owner, job->node, job);
    free(job->waiters);
    free(job->waiter_solves);
    free(job);
}

static void end_solve(kiln_solve_t *s)
{
    if (s->failing && s->status == 0) {
        s->status = kiln__fail(&s->error, KILN_ECANCELED, "canceled");
    }
    s->stats.duration_ns = kiln__mono_ns() - s->started_ns;
    kiln__solve_flush(s);
    stop_ticker(s);
    kiln__engine_solve_ended(s->engine, s);
}

static void export_work(uv_work_t *w)
{
    kiln_solve_t *s = w->data;

    s->work_status = s->opts.output != KILN_OUTPUT_NONE
                         ? kiln__run_export(s, &s->work_error)
                         : 0;
    if (s->work_status == 0) {
        s->work_status = kiln__cache_export_finish(s, &s->work_error);
    }
}

static void export_done(uv_work_t *w, int status)
{
    kiln_solve_t *s = w->data;

    free(w);
    s->running--;
    s->exporting = false;
    if (s->work_status < 0) {
        fail_solve(s, s->work_status, NULL, s->work_error.message);
    } else if (status < 0) {
        fail_solve(s, KILN_ECANCELED, NULL, "canceled");
    }
    end_solve(s);
}

/* Everything needed is built (or the solve failed): export, then end. */
static void solve_finish(kiln_solve_t *s)
{
    uv_work_t *w;

    if (s->failing || s->result == NULL ||
        (s->opts.output == KILN_OUTPUT_NONE && !kiln__cache_exports(s))) {
        end_solve(s);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fail_solve(s, KILN_ENOMEM, NULL, "out of memory");
        end_solve(s);
        return;
    }
    w->data = s;
    s->exporting = true;
    s->running++;
    uv_queue_work(s->engine->loop, w, export_work, export_done);
}

void kiln__solve_cancel_on_loop(kiln_solve_t *s)
{
    if (s->ended || s->failing) {
        return;
    }
    s->failing = true;
    atomic_store(&s->stop, true);
    s->status = kiln__fail(&s->error, KILN_ECANCELED, "canceled");
    kiln__solve_dispatch(s);
}

void kiln__solve_dispatch(kiln_solve_t *s)
{
    kiln_engine_t *e = s->engine;

    for (int p = 0; p < KILN__N_POOLS; p++) {
        kiln__queue_t *q = &s->ready[p];

        while (!s->failing && q->head < q->tail &&
               e->running[p] < e->limit[p]) {
            start_node(s, q->items[q->head++]);
        }
    }
    if (s->running > 0 || s->ended || !s->planned || s->exporting) {
        return;
    }
    if (!s->failing && s->remaining > 0) {
        return; /* waiting for job slots */
    }
    solve_finish(s);
}
