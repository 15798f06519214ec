/* Shared by the files of core/cache. */
#ifndef KILN_CACHE_CACHE_INT_H
#define KILN_CACHE_CACHE_INT_H

#include <pthread.h>

#include "cache/cache.h"
#include "cache/config.h"
#include "cache/manifest.h"
#include "engine/engine.h"

/* The store's key-value namespace for layer <-> blob mappings. */
#define KILN__CACHE_KV "kiln.cache"

/* Export uploads in flight at once per solve: they share libuv's pool
 * with the build's own work, which --jobs bounds. */
#define KILN__CACHE_UPLOADS 2

/* A store layer as packed for one exporter. */
typedef struct kiln__packed {
    char id[KILN__STORE_ID_MAX];
    kiln__cache_blob_t blob;
    bool done;
} kiln__packed_t;

typedef struct kiln__exporter {
    kiln__cache_spec_t spec;
    pthread_mutex_t mu; /* guards everything below */
    kiln__packed_t *packed;
    size_t n_packed, cap_packed;
    int status; /* first failure of a background upload */
    kiln_error_t error;
    uint64_t uploaded; /* bytes pushed or written */
    uint64_t skipped;  /* blobs the destination had */
} kiln__exporter_t;

/* An upload queued on the loop (loop thread only). */
typedef struct kiln__upload {
    kiln_solve_t *s;
    kiln__exporter_t *e;
    char *snapshot;
    uv_work_t work;
    struct kiln__upload *next;
} kiln__upload_t;

/* An import source, read at the plan. */
typedef struct kiln__import {
    kiln__cache_spec_t spec;
    kiln__cc_t *cc; /* its config; NULL when it could not be read */
    kiln__cache_manifest_t m;
    kiln__oci_reg_t *reg;      /* registry (plan thread only) */
} kiln__import_t;

struct kiln__cache {
    kiln__exporter_t *exp;
    size_t n_exp;
    kiln__import_t *imp;
    size_t n_imp;
    /* Loop thread: uploads waiting, and how many run. */
    kiln__upload_t *queue, *queue_tail;
    unsigned active;
    /* Plan thread: per node position, per output, the imported records
     * matching it ((source, record) pairs, flattened). */
    pthread_mutex_t mu; /* guards bad */
    size_t *bad;        /* (source, record) pairs whose result failed */
    size_t n_bad;
    size_t n_nodes;
    size_t **match;   /* [pos][k]: record k of the flattened matches */
    size_t **n_match; /* [pos][o]: end of output o's matches in match[pos] */
};

/* Reachable nodes, inputs first (iterative: deep graphs are fine). *out
 * is malloc'ed. */
int kiln__cache_order(const kiln_solve_t *s, size_t **out, size_t *n,
                      kiln_error_t *err);

/* The number of outputs of a node. */
size_t kiln__cache_n_out(const kiln__node_t *n);

/* BuildKit's record digest of output o of n ("" for random keys). */
void kiln__cache_record_digest(const kiln__node_t *n, size_t o,
                               char out[KILN_DIGEST_STRLEN + 1]);

/* The kv key of a layer's blob for a compression. */
void kiln__cache_layer_kv(const char *layer_id, kiln_oci_comp_t comp,
                          int level, char *buf, size_t size);
/* "digest diff_id size media_type" <-> blob. */
int kiln__cache_blob_get(kiln__store_t *st, const char *key,
                         kiln__cache_blob_t *b);
void kiln__cache_blob_put(kiln__store_t *st, const char *key,
                          const kiln__cache_blob_t *b);

/* Where blob `digest` was last seen in a registry (its host and
 * repository), so that an export to another repository of that registry
 * mounts it instead of uploading it. Remembering is best effort. */
void kiln__cache_seen_at(kiln__store_t *st, const char *digest,
                         const kiln__oci_ref_t *where);
bool kiln__cache_where_seen(kiln__store_t *st, const char *digest,
                            char *registry, size_t rsize, char *repo,
                            size_t qsize);

/* A registry client for a spec. */
int kiln__cache_reg_new(const kiln__cache_spec_t *sp, kiln_solve_t *s,
                        kiln__oci_reg_t **out, kiln_error_t *err);

/* Reads the cache a spec names (an import, or an export's destination)
 * into *cc and *m; `manifest_digest` receives the manifest's digest.
 * KILN_ENOENT when there is no such tag (or layout). */
int kiln__cache_read(const kiln__cache_spec_t *sp, kiln__oci_reg_t *reg,
                     kiln__cc_t **cc, kiln__cache_manifest_t *m,
                     char manifest_digest[KILN_DIGEST_STRLEN + 1],
                     kiln_error_t *err);

/* A local layout's index.json (clear *out with kiln__oci_index_clear), and
 * one of its blobs read whole (at most `limit` bytes) and checked against
 * its digest. */
int kiln__cache_local_index(const char *dir, kiln_oci_index_t *out,
                            kiln_error_t *err);
int kiln__cache_local_blob(const char *dir, const char *digest, size_t limit,
                           uint8_t **data, size_t *len, kiln_error_t *err);

#endif
