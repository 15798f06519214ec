/* The public solve API: start, wait, cancel, status, stats, free. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

#include "cache/cache.h"
#include "engine/engine.h"
#include "solver/cachemap.h"
#include "solver/run.h"

static int init_nodes(kiln_solve_t *s, kiln_error_t *err)
{
    const kiln_definition_t *def = s->def;
    const char *result = kiln_definition_result(def, &s->result_index);

    s->nodes = calloc(def->n_vertices ? def->n_vertices : 1,
                      sizeof(*s->nodes));
    if (s->nodes == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < def->n_vertices; i++) {
        kiln__node_t *n = &s->nodes[i];
        n->v = &def->vertices[i];
        n->number = (uint32_t)i + 1;
        n->ignore_cache = n->v->meta != NULL && n->v->meta->ignore_cache;
        /* Exec ops and sources (downloads, clones) mostly wait. */
        n->pool = n->v->kind == KILN_OP_EXEC || n->v->kind == KILN_OP_SOURCE
                      ? KILN__POOL_PROCESS
                      : KILN__POOL_CPU;
        n->name = kiln__vertex_summary(n->v);
        if (n->name == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    if (result != NULL) {
        s->result = &s->nodes[kiln__definition_find(def, result)->pos];
    }
    return 0;
}

/*
 * "NAME=PATH" lists (locals, secrets): each well formed, its path an
 * existing directory (`dir`) or a readable file, so that a typo is an
 * error before anything runs rather than a source that finds nothing.
 */
static int check_pairs(const char *const *list, const char *what, bool dir,
                       kiln_error_t *err)
{
    for (; list != NULL && *list != NULL; list++) {
        const char *eq = strchr(*list, '=');
        struct stat st;

        if (eq == NULL || eq == *list || eq[1] == '\0') {
            return kiln__fail(err, KILN_EINVAL, "%s '%s' is not NAME=PATH",
                              what, *list);
        }
        if (stat(eq + 1, &st) < 0 || (dir && !S_ISDIR(st.st_mode)) ||
            (!dir && access(eq + 1, R_OK) < 0)) {
            int e = errno != 0 ? errno : ENOTDIR;
            return kiln__fail(err, KILN_EINVAL, "%s '%.*s' (%s): %s", what,
                              (int)(eq - *list), *list, eq + 1,
                              dir && stat(eq + 1, &st) == 0
                                  ? "not a directory"
                                  : strerror(e));
        }
    }
    return 0;
}

/* Secrets from variables and SSH sockets, checked up front as locals are:
 * "ID=VAR" with VAR set, "ID=SOCKET" naming a socket. */
static int check_exec_pairs(const kiln_solve_options_t *o, kiln_error_t *err)
{
    for (const char *const *l = o->secret_envs; l != NULL && *l; l++) {
        const char *eq = strchr(*l, '=');

        if (eq == NULL || eq == *l || eq[1] == '\0') {
            return kiln__fail(err, KILN_EINVAL, "secret '%s' is not ID=VAR",
                              *l);
        }
        if (getenv(eq + 1) == NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "secret '%.*s': environment variable %s is not "
                              "set",
                              (int)(eq - *l), *l, eq + 1);
        }
    }
    for (const char *const *l = o->ssh; l != NULL && *l; l++) {
        const char *eq = strchr(*l, '=');
        struct stat st;

        if (eq == NULL || eq == *l || eq[1] == '\0') {
            return kiln__fail(err, KILN_EINVAL,
                              "SSH agent '%s' is not ID=SOCKET", *l);
        }
        if (stat(eq + 1, &st) < 0 || !S_ISSOCK(st.st_mode)) {
            return kiln__fail(err, KILN_EINVAL, "SSH agent '%.*s' (%s): %s",
                              (int)(eq - *l), *l, eq + 1,
                              stat(eq + 1, &st) < 0 ? strerror(errno)
                                                    : "not a socket");
        }
    }
    return 0;
}

int kiln_solve_start(kiln_engine_t *e, const kiln_solve_options_t *o,
                     kiln_error_t *err, kiln_solve_t **out)
{
    kiln_solve_options_t full = KILN_SOLVE_OPTIONS_INIT;
    kiln_solve_t *s;
    kiln__msg_t *m;
    int rc;

    *out = NULL;
    /* Callers built before secret_envs and ssh were appended pass the
     * older, shorter struct: the new fields read as NULL. */
    if (o == NULL || o->size < offsetof(kiln_solve_options_t, secret_envs)) {
        return kiln__fail(err, KILN_EINVAL,
                          "kiln_solve_options_t: initialise it with "
                          "KILN_SOLVE_OPTIONS_INIT");
    }
    memcpy(&full, o, o->size < sizeof(full) ? o->size : sizeof(full));
    full.size = sizeof(full);
    if (o->size < sizeof(full)) {
        full.secret_envs = full.ssh = NULL;
    }
    o = &full;
    if (o->definition == NULL) {
        return kiln__fail(err, KILN_EINVAL, "no definition to solve");
    }
    if (o->output == KILN_OUTPUT_LOCAL && o->output_dest == NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "output type local needs a destination directory");
    }
    if (o->output == KILN_OUTPUT_TAR && o->output_dest == NULL &&
        o->output_fd < 0) {
        return kiln__fail(err, KILN_EINVAL,
                          "output type tar needs a file or a descriptor");
    }
    if (o->on_done == NULL && e->loop != &e->own_loop) {
        return kiln__fail(err, KILN_EINVAL,
                          "with an embedder's loop, on_done is required");
    }
    rc = check_pairs(o->locals, "local directory", true, err);
    if (rc == 0) {
        rc = check_pairs(o->secrets, "secret", false, err);
    }
    if (rc == 0) {
        rc = check_pairs(o->oci_layouts, "OCI layout", true, err);
    }
    if (rc == 0) {
        rc = check_exec_pairs(o, err);
    }
    if (rc < 0) {
        return rc;
    }
    s = calloc(1, sizeof(*s));
    m = calloc(1, sizeof(*m));
    if (s == NULL || m == NULL) {
        free(s);
        free(m);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    s->engine = e;
    s->opts = *o;
    s->def = o->definition;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    rc = init_nodes(s, err);
    if (rc == 0) {
        rc = kiln__cache_new(o, &s->cache, err);
    }
    if (rc < 0) {
        free(m);
        kiln_solve_free(s);
        return rc;
    }
    pthread_mutex_lock(&e->mu);
    s->id = e->next_id++;
    pthread_mutex_unlock(&e->mu);
    *out = s;
    if (e->loop != &e->own_loop) {
        /* The embedder's loop thread: start now, so that the queued work
         * keeps the loop running. */
        free(m);
        kiln__engine_start(e, s);
        return 0;
    }
    m->type = MSG_START;
    m->solve = s;
    m->solve_id = s->id;
    kiln__engine_post(e, m);
    return 0;
}

int kiln_solve_wait(kiln_solve_t *s, kiln_error_t *err)
{
    if (s->opts.on_done != NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "kiln_solve_wait: this solve reports through "
                          "on_done");
    }
    pthread_mutex_lock(&s->mu);
    while (!s->ended) {
        pthread_cond_wait(&s->cond, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return kiln_solve_status(s, err);
}

void kiln_solve_cancel(kiln_solve_t *s)
{
    kiln__msg_t *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        return;
    }
    m->type = MSG_CANCEL;
    m->solve_id = s->id;
    kiln__engine_post(s->engine, m);
}

int kiln_solve_status(const kiln_solve_t *s, kiln_error_t *err)
{
    if (s->status < 0 && err != NULL) {
        *err = s->error;
    }
    return s->status;
}

void kiln_solve_stats(const kiln_solve_t *s, kiln_solve_stats_t *stats)
{
    *stats = s->stats;
}

void kiln_solve_free(kiln_solve_t *s)
{
    if (s == NULL) {
        return;
    }
    if (s->nodes != NULL) {
        kiln__run_release_all(s);
        for (size_t i = 0; i < s->def->n_vertices; i++) {
            kiln__node_t *n = &s->nodes[i];
            size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
            if (n->snapshots != NULL) {
                for (size_t o = 0; o < n_out; o++) {
                    free(n->snapshots[o]);
                }
            }
            free(n->snapshots);
            kiln__cachemap_free(n->cm);
            free(n->pin);
            free(n->content);
            kiln__buf_free(&n->output);
            free(n->keys);
            free(n->users);
            free(n->name);
        }
    }
    free(s->nodes);
    kiln__cache_free(s->cache);
    for (int p = 0; p < KILN__N_POOLS; p++) {
        free(s->ready[p].items);
    }
    while (s->notes != NULL) {
        kiln__note_t *next = s->notes->next;
        free(s->notes);
        s->notes = next;
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}

int kiln_solve(kiln_engine_t *e, const kiln_solve_options_t *o,
               kiln_error_t *err)
{
    kiln_solve_t *s;
    int rc = kiln_solve_start(e, o, err, &s);

    if (rc < 0) {
        return rc;
    }
    rc = kiln_solve_wait(s, err);
    kiln_solve_free(s);
    return rc;
}
