/*
 * Source ops through the plugin registry (source.c). Private to core/.
 */
#ifndef KILN_SOLVER_SOURCE_H
#define KILN_SOLVER_SOURCE_H

#include "plugin/registry.h"
#include "solver/solve.h"

/*
 * Pins source node n with its plugin's resolve(): sets n->pin and n->cm
 * (the cache map whose digest is BuildKit's source digest of the pin).
 * Blocks (the plugin may hash a tree or make a request): a worker thread.
 * Errors name the vertex: no plugin for the scheme (the loaded ones are
 * listed), or the plugin's own message.
 */
int kiln__source_resolve(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err);

/* Fills the empty directory `dest` with the pinned content of source node
 * n (the plugin's fetch()); layers the plugin adds above it come from
 * new_layer(ud, ...) and keyed_layer(ud, ...), in order. Blocks: a thread
 * of its own. */
int kiln__source_fetch(kiln_solve_t *s, kiln__node_t *n, const char *dest,
                       kiln__job_layer_fn new_layer,
                       kiln__job_keyed_layer_fn keyed_layer, void *ud,
                       kiln_error_t *err);

#endif
