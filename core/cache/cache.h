/*
 * Build cache export and import (kiln build --export-cache /
 * --import-cache), in BuildKit's format: an OCI layout directory or a
 * registry ref holding a cacheconfig.v0 config and the layer blobs of the
 * results it lists. Private to core/. See docs/cache-format.md.
 *
 * The solver calls in at four points, all small:
 * - kiln__cache_new() when a solve starts (bad specs fail the start);
 * - kiln__cache_import_plan() and kiln__cache_import_lookup() from the
 *   plan (its thread): imported configs are read once, matched against
 *   the graph's cache keys, and a miss in the store asks them; only then
 *   are a record's layer blobs fetched (lazily: only what the build
 *   needs);
 * - kiln__cache_export_node() on the loop when a vertex has its result:
 *   its layers are packed, compressed and uploaded on the thread pool
 *   while the build goes on (a few at a time);
 * - kiln__cache_export_finish() at the end: the config and manifest are
 *   merged with what the destination holds and written.
 */
#ifndef KILN_CACHE_CACHE_H
#define KILN_CACHE_CACHE_H

#include "internal.h"
#include "oci/layout.h"
#include "oci/registry.h"

typedef struct kiln__node kiln__node_t;

enum kiln__cache_type {
    KILN__CACHE_LOCAL = 1,
    KILN__CACHE_REGISTRY = 2,
};

/* One --export-cache or --import-cache, parsed (spec.c). */
typedef struct kiln__cache_spec {
    enum kiln__cache_type type;
    bool export;
    char *dir;    /* local: dest (export) or src (import) */
    char *tag;    /* local: the index.json ref name ("latest") */
    char *digest; /* local import: a manifest digest instead of the tag */
    char *ref;    /* registry: as given, with ":latest" added if bare */
    kiln__oci_ref_t reg;
    bool insecure; /* registry.insecure */
    bool max;      /* mode=max */
    kiln_oci_comp_t comp;
    int level; /* compression-level; 0: default */
    bool ignore_error;
    bool oci;            /* oci-mediatypes (default true) */
    bool image_manifest; /* image-manifest (default true) */
    size_t max_records;  /* 0: no bound */
    int64_t max_age_s;   /* 0: no bound */
} kiln__cache_spec_t;

/*
 * Parses one spec: "type=local,dest=DIR[,mode=min|max][,...]" or
 * "type=registry,ref=HOST/REPO[:TAG][,...]" (import: "type=local,src=DIR"
 * / "type=registry,ref=..."). Option names are BuildKit's; an unknown
 * option or value is an error naming it (BuildKit ignores them, which
 * hides typos such as mod=max). Free with kiln__cache_spec_clear().
 */
int kiln__cache_spec_parse(const char *s, bool export, kiln__cache_spec_t *out,
                           kiln_error_t *err);
void kiln__cache_spec_clear(kiln__cache_spec_t *sp);

/* A layer of the store as a blob in an exported cache. */
typedef struct kiln__cache_blob {
    char digest[KILN_DIGEST_STRLEN + 1];
    char diff_id[KILN_DIGEST_STRLEN + 1];
    char media_type[64];
    int64_t size;
} kiln__cache_blob_t;

typedef struct kiln__cache kiln__cache_t;

/* Parses opts->export_cache and opts->import_cache; *out is NULL when
 * there are none. KILN_EINVAL names the bad spec. */
int kiln__cache_new(const kiln_solve_options_t *opts, kiln__cache_t **out,
                    kiln_error_t *err);
void kiln__cache_free(kiln__cache_t *c);

/* Plan thread, after the keys: reads every import (one that cannot be
 * read is a warning, and the build goes on without it) and matches its
 * records against the graph. */
void kiln__cache_import_plan(kiln_solve_t *s);

/* Plan thread: node n missed in the store. 1: an imported record gave
 * every output a result (n->snapshots set and leased, and recorded in the
 * store under n's keys); 0: no usable record (a blob that is missing or
 * corrupt is a warning, and the record a miss); < 0 a store error. */
int kiln__cache_import_lookup(kiln_solve_t *s, kiln__node_t *n,
                              kiln_error_t *err);

/* Worker thread, when node n is about to run (its inputs built, its
 * content deps checksummed, the store missed): the import lookup again,
 * now also through BuildKit's content-key links and through inputs that
 * came from the cache after the plan. 1: imported (as
 * kiln__cache_import_lookup()); 0: n runs, and with INFO messages on, a
 * "cache miss: ..." message says what was nearest. */
int kiln__cache_import_run(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err);

/* Loop thread: node n has its result (ran, or was found). Queues the
 * packing and upload of its layers for the exporters that want them. */
void kiln__cache_export_node(kiln_solve_t *s, kiln__node_t *n);

/* Worker thread, once the build is done and every upload ended: writes
 * each exporter's config and manifest, merged with the destination's.
 * An exporter with ignore-error=true turns its failure into a warning. */
int kiln__cache_export_finish(kiln_solve_t *s, kiln_error_t *err);

/* True if the solve has exporters (the end has work to do). */
bool kiln__cache_exports(const kiln_solve_t *s);

#endif
