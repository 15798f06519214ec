/*
 * Engines: the store, the loop (own thread or the embedder's), and the
 * public solve API. Cross-thread requests (start, cancel, stop) go through
 * one message queue and one uv_async_t; everything else happens on the
 * loop thread.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"

/* Queues a message for the loop; dropped once the engine has stopped. */
void kiln__engine_post(kiln_engine_t *e, kiln__msg_t *m)
{
    pthread_mutex_lock(&e->mu);
    if (e->async == NULL) {
        pthread_mutex_unlock(&e->mu);
        free(m);
        return;
    }
    if (e->msgs_tail != NULL) {
        e->msgs_tail->next = m;
    } else {
        e->msgs = m;
    }
    e->msgs_tail = m;
    uv_async_send(e->async);
    pthread_mutex_unlock(&e->mu);
}

static kiln_solve_t *find_solve(kiln_engine_t *e, uint64_t id)
{
    for (kiln_solve_t *s = e->solves; s != NULL; s = s->next) {
        if (s->id == id) {
            return s;
        }
    }
    return NULL;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Once stopping and idle, closing the async handle lets the loop end. */
static void maybe_close(kiln_engine_t *e)
{
    uv_async_t *h;

    if (!e->stopping || e->solves != NULL) {
        return;
    }
    pthread_mutex_lock(&e->mu);
    h = e->async;
    e->async = NULL;
    pthread_mutex_unlock(&e->mu);
    if (h != NULL) {
        uv_close((uv_handle_t *)h, free_handle);
    }
}

void kiln__engine_start(kiln_engine_t *e, kiln_solve_t *s)
{
    s->next = e->solves;
    e->solves = s;
    if (e->stopping) {
        kiln__solve_cancel_on_loop(s);
    }
    kiln__solve_begin(s);
}

static void handle_msg(kiln_engine_t *e, kiln__msg_t *m)
{
    kiln_solve_t *s;

    switch (m->type) {
    case MSG_START:
        kiln__engine_start(e, m->solve);
        break;
    case MSG_CANCEL:
        s = find_solve(e, m->solve_id);
        if (s != NULL) {
            kiln__solve_cancel_on_loop(s);
        }
        break;
    case MSG_JOB_DONE:
        kiln__solve_job_ended(m->job);
        break;
    case MSG_STOP:
        e->stopping = true;
        for (s = e->solves; s != NULL; s = s->next) {
            kiln__solve_cancel_on_loop(s);
        }
        break;
    }
}

static void on_async(uv_async_t *h)
{
    kiln_engine_t *e = h->data;
    kiln__msg_t *m;

    pthread_mutex_lock(&e->mu);
    m = e->msgs;
    e->msgs = e->msgs_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    while (m != NULL) {
        kiln__msg_t *next = m->next;
        handle_msg(e, m);
        free(m);
        m = next;
    }
    maybe_close(e);
}

void kiln__engine_dispatch(kiln_engine_t *e)
{
    kiln_solve_t *s = e->solves;

    while (s != NULL) {
        kiln_solve_t *next = s->next; /* s may end and unlink */
        kiln__solve_dispatch(s);
        s = next;
    }
}

void kiln__engine_solve_ended(kiln_engine_t *e, kiln_solve_t *s)
{
    for (kiln_solve_t **p = &e->solves; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    s->next = NULL;
    if (s->opts.on_done != NULL) {
        s->ended = true;
        s->opts.on_done(s, s->status, s->opts.userdata);
    } else {
        pthread_mutex_lock(&s->mu);
        s->ended = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
    }
    maybe_close(e);
}

static void loop_thread(void *arg)
{
    kiln_engine_t *e = arg;

    uv_run(e->loop, UV_RUN_DEFAULT);
}

static int start_loop(kiln_engine_t *e, const kiln_engine_options_t *o,
                      kiln_error_t *err)
{
    int rc;

    if (o->loop != NULL) {
        e->loop = o->loop;
    } else {
        rc = uv_loop_init(&e->own_loop);
        if (rc < 0) {
            return kiln__fail(err, rc, "event loop: %s", uv_strerror(rc));
        }
        e->loop = &e->own_loop;
    }
    e->async = calloc(1, sizeof(*e->async));
    if (e->async == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = uv_async_init(e->loop, e->async, on_async);
    if (rc < 0) {
        free(e->async);
        e->async = NULL;
        return kiln__fail(err, rc, "event loop: %s", uv_strerror(rc));
    }
    e->async->data = e;
    if (o->loop == NULL) {
        rc = uv_thread_create(&e->thread, loop_thread, e);
        if (rc < 0) {
            return kiln__fail(err, rc, "engine thread: %s", uv_strerror(rc));
        }
        e->has_thread = true;
    } else {
        /* The embedder's loop must not stay alive just for us. */
        uv_unref((uv_handle_t *)e->async);
    }
    return 0;
}

int kiln_engine_new(const kiln_engine_options_t *o, kiln_error_t *err,
                    kiln_engine_t **out)
{
    kiln_engine_options_t def = KILN_ENGINE_OPTIONS_INIT;
    kiln_engine_t *e;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int rc;

    *out = NULL;
    if (o == NULL) {
        o = &def;
    }
    if (o->size < sizeof(kiln_engine_options_t)) {
        return kiln__fail(err, KILN_EINVAL,
                          "kiln_engine_options_t of %u bytes; initialise it "
                          "with KILN_ENGINE_OPTIONS_INIT",
                          o->size);
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&e->mu, NULL);
    e->limit[KILN__POOL_CPU] = o->jobs ? o->jobs
                                       : (unsigned)(ncpu > 0 ? ncpu : 1);
    e->limit[KILN__POOL_PROCESS] = o->process_jobs ? o->process_jobs : 64;
    e->log_level = o->log_level;
    e->next_id = 1;
    rc = kiln__registry_load(o->plugin_path, err, &e->plugins);
    if (rc == 0) {
        rc = kiln__store_open(o->root, err, &e->store);
    }
    if (rc == 0) {
        rc = start_loop(e, o, err);
    }
    if (rc < 0) {
        kiln_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void kiln_engine_free(kiln_engine_t *e)
{
    kiln__msg_t *m;

    if (e == NULL) {
        return;
    }
    if (e->has_thread) {
        m = calloc(1, sizeof(*m));
        if (m != NULL) {
            m->type = MSG_STOP;
            kiln__engine_post(e, m);
        }
        uv_thread_join(&e->thread);
    } else {
        /* No thread (an embedder's loop, or a failed start): the embedder
         * has run its loop until its solves ended. */
        e->stopping = true;
        maybe_close(e);
    }
    if (e->loop == &e->own_loop) {
        uv_run(e->loop, UV_RUN_DEFAULT);
        uv_loop_close(e->loop);
    }
    kiln__store_close(e->store);
    kiln__registry_free(e->plugins);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

const char *kiln_engine_root(const kiln_engine_t *e)
{
    return kiln__store_root(e->store);
}
