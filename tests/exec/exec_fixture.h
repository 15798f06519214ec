/*
 * Exec tests' fixture: a busybox rootfs made from Debian's busybox-static
 * (/bin/busybox and a symlink per applet, passwd and group entries), fed
 * to builds as the local source "rootfs"; engines on temporary store roots
 * solved through the public API, with their events recorded.
 */
#ifndef KILN_TESTS_EXEC_FIXTURE_H
#define KILN_TESTS_EXEC_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

/* A temporary directory with rootfs/, root/ (the store) and out/. */
typedef struct ex_fixture {
    char base[64];
    char rootfs[96];
    char root[96];
    char out[96];
} ex_fixture_t;

/* What a solve gave: status, stats, and its events of interest. */
typedef struct ex_result {
    int rc;
    kiln_error_t err;
    kiln_solve_stats_t stats;
    char logs[65536]; /* LOG data, in order */
    size_t logs_len;
    char warnings[8192];
    /* Called on every LOG event (from the engine's thread) if set. */
    void (*on_log)(struct ex_result *r, const char *data, size_t len);
    void *ud;
    pthread_mutex_t mu;
} ex_result_t;

/* Options of one solve beyond the definition. */
typedef struct ex_opts {
    const char *const *secrets;     /* "ID=PATH" */
    const char *const *secret_envs; /* "ID=VAR" */
    const char *const *ssh;         /* "ID=SOCKET" */
    bool no_output;                 /* export nothing */
    kiln_solve_t **started;         /* set to the running solve, if given */
} ex_opts_t;

/* Makes f->base with the rootfs; fails the test if it cannot. */
void ex_setup(ex_fixture_t *f);
void ex_teardown(ex_fixture_t *f);

/* A builder with the rootfs as local://rootfs, and that state. */
kiln_llb_t *ex_builder(kiln_llb_state_t **rootfs);

/* Marshals `res` and loads it as a definition (frees nothing). */
kiln_definition_t *ex_def(kiln_llb_t *b, kiln_llb_state_t *res);

/* Solves def with rootfs mapped, output to f->out (emptied first). */
void ex_solve(const ex_fixture_t *f, const kiln_definition_t *def,
              const ex_opts_t *o, ex_result_t *r);

/* Reads f->out/<rel> into buf (NUL-terminated); false if missing. */
bool ex_read_out(const ex_fixture_t *f, const char *rel, char *buf,
                 size_t size);

/* True if f->out/<rel> exists (lstat). */
bool ex_out_exists(const ex_fixture_t *f, const char *rel);

/* The namespaces an exec needs can be made here; else *why says why. */
bool ex_namespaces_ok(char *why, size_t size);

/* Runs a shell command, failing the test unless it exits 0. */
void ex_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void ex_rm_tree(const char *dir);

#endif
