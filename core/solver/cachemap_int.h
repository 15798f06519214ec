/* Helpers shared by the cache-map sources (cachemap.c, cachemap_file.c). */
#ifndef KILN_SOLVER_CACHEMAP_INT_H
#define KILN_SOLVER_CACHEMAP_INT_H

#include "solver/cachemap.h"
#include "util/gojson.h"

/* The gojson flags matching a compat level. */
static inline unsigned kiln__cm_json_flags(enum kiln__cm_compat compat)
{
    return compat == KILN_CM_CURRENT ? KILN_GOJSON_GO122 : 0;
}

/* A cache map with n_deps empty deps, or NULL when out of memory. */
kiln__cachemap_t *kiln__cm_new(size_t n_deps);

/* Takes the JSON in `json` (reset on return, also on failure) and sets
 * cm->json and cm->digest from it. Returns 0 or KILN_ENOMEM. */
int kiln__cm_finish(kiln__cachemap_t *cm, kiln__buf_t *json);

/* Appends an owned path (taken even on failure). 0 or KILN_ENOMEM. */
int kiln__cm_dep_push_path(kiln__cm_dep_t *d, char *path);

/* Appends a content selector; takes s->path (even on failure). */
int kiln__cm_dep_push_sel(kiln__cm_dep_t *d, const kiln__cm_selector_t *s);

/*
 * BuildKit's dedupePaths: the distinct paths of in[0..n) that have no other
 * path as a parent directory, sorted. *out (malloc'ed, entries borrowed
 * from `in`) and *n_out receive them. v0.11 compared with p2+"/", current
 * BuildKit with p2 given a trailing slash only if it lacks one.
 */
int kiln__cm_dedupe_paths(char *const *in, size_t n,
                          enum kiln__cm_compat compat, const char ***out,
                          size_t *n_out);

/* The file-op cache map (cachemap_file.c). */
int kiln__cm_file(const Pb__Op *op, enum kiln__cm_compat compat,
                  kiln__cachemap_t **out, kiln_error_t *err);

#endif
