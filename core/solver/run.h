/*
 * Running one vertex and reading results: the solver's bridge to the store,
 * snapshots and op executors. Private to core/.
 */
#ifndef KILN_SOLVER_RUN_H
#define KILN_SOLVER_RUN_H

#include "solver/solve.h"

/*
 * Looks up the record of `key`. On a hit returns 0 and sets *snapshot
 * (malloc'ed snapshot id, caller frees); KILN_ENOENT on a miss.
 * Thread-safe.
 */
int kiln__run_lookup(kiln_engine_t *e, const char *key, char **snapshot,
                     kiln_error_t *err);

/*
 * Runs node `n` of solve `s` (its inputs' snapshots are in their nodes'
 * `snapshots`): executes the op, commits its outputs as snapshots and
 * records them under n->keys, and fills n->snapshots. When the op only
 * reads some inputs, their content checksums give slow keys first: a hit
 * there fills n->snapshots without running anything and sets *cached.
 * Called on a worker thread; reads only immutable solve state.
 */
int kiln__run_node(kiln_solve_t *s, kiln__node_t *n, bool *cached,
                   kiln_error_t *err);

/* Writes the solve's result to its requested output (LOCAL or TAR).
 * Called on a worker thread after the result is known. */
int kiln__run_export(kiln_solve_t *s, kiln_error_t *err);

/* Releases the snapshots the solve's nodes hold (leased by lookups and
 * runs). Any thread, once the solve has ended. */
void kiln__run_release_all(kiln_solve_t *s);

#endif
