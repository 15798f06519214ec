/*
 * BuildKit's cache config (application/vnd.buildkit.cacheconfig.v0), the
 * JSON that an exported build cache is made of: layer blobs with their
 * parents, and records (cache-key digests) with their results and the
 * links from each input to the records that satisfied it. See
 * docs/cache-format.md and /work/shared/reference/cache.md §3.
 *
 * Parsing is strict about structure (indexes in range, no parent or link
 * loops, no empty input list, digests well formed) and lenient about what
 * BuildKit leaves out (a missing `parent` is 0, Go's omitempty). Writing
 * is deterministic, in BuildKit's order (sortConfig), so that equal caches
 * give equal config blobs and a config BuildKit wrote reads back to the
 * same bytes.
 *
 * Strings are malloc'ed and owned by the struct that holds them;
 * kiln__cc_free() releases a whole config. No global state: any thread,
 * on distinct objects.
 */
#ifndef KILN_CACHE_CONFIG_H
#define KILN_CACHE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define KILN_CC_MEDIA_TYPE "application/vnd.buildkit.cacheconfig.v0"

/* Largest config read, as BuildKit's importers (readBlob). */
#define KILN_CC_MAX_BYTES (1u << 20)

/* Longest time string kept ("2026-11-23T19:02:04.700003698Z"). */
#define KILN_CC_TIME_MAX 40

/* A layer blob and the layer it sits on (-1: none). `media_type`, `size`
 * and `diff_id` come from the manifest's descriptor of the blob, not from
 * the config; `annotations` is the config's own annotations object (JSON
 * text, or NULL), kept as read. */
typedef struct kiln__cc_layer {
    char blob[KILN_DIGEST_STRLEN + 1];
    int64_t parent;
    char *annotations;
    char *media_type;
    int64_t size; /* -1: unknown */
    char diff_id[KILN_DIGEST_STRLEN + 1]; /* "" when unknown */
    char created[KILN_CC_TIME_MAX];       /* "" when unknown */
} kiln__cc_layer_t;

/* A result: the top layer (with all its parents). */
typedef struct kiln__cc_result {
    int64_t layer;
    char created[KILN_CC_TIME_MAX];
} kiln__cc_result_t;

/* A result as an explicit list of layers, bottom first. */
typedef struct kiln__cc_chain {
    int64_t *layers;
    size_t n;
    char created[KILN_CC_TIME_MAX];
} kiln__cc_chain_t;

/* One alternative for an input: the record `link`, read through
 * `selector` ("" for none). */
typedef struct kiln__cc_link {
    int64_t link;
    char *selector;
} kiln__cc_link_t;

typedef struct kiln__cc_input {
    kiln__cc_link_t *links;
    size_t n;
} kiln__cc_input_t;

typedef struct kiln__cc_record {
    char *digest; /* "sha256:<hex>" (or "random:<hex>") */
    /* kiln's extension "kiln.description": the vertex's name, or NULL.
     * BuildKit ignores the field. */
    char *description;
    kiln__cc_result_t *results;
    size_t n_results;
    kiln__cc_chain_t *chains;
    size_t n_chains;
    kiln__cc_input_t *inputs;
    size_t n_inputs;
} kiln__cc_record_t;

typedef struct kiln__cc {
    kiln__cc_layer_t *layers;
    size_t n_layers, cap_layers;
    kiln__cc_record_t *records;
    size_t n_records, cap_records;
} kiln__cc_t;

/* A new empty config (KILN_ENOMEM). Free with kiln__cc_free(). */
int kiln__cc_new(kiln__cc_t **out, kiln_error_t *err);
void kiln__cc_free(kiln__cc_t *cc);

/*
 * Parses data[0..len) (borrowed). Errors (KILN_EBADMSG, KILN_E2BIG over
 * KILN_CC_MAX_BYTES, KILN_ENOMEM) name the field at fault, e.g.
 * "records[3].inputs[1][0].link: 9 is out of range (5 records)".
 */
int kiln__cc_parse(const void *data, size_t len, kiln__cc_t **out,
                   kiln_error_t *err);

/* Sorts the config in BuildKit's order (indexes remapped), then writes it
 * as compact JSON into *out (malloc'ed, NUL-terminated; *len without the
 * NUL). */
int kiln__cc_write(kiln__cc_t *cc, char **out, size_t *len,
                   kiln_error_t *err);

/* Appends a layer / a record; *index receives its index. The record's
 * strings are copied; its arrays start empty. */
int kiln__cc_add_layer(kiln__cc_t *cc, const char *blob, int64_t parent,
                       size_t *index, kiln_error_t *err);
int kiln__cc_add_record(kiln__cc_t *cc, const char *digest, size_t n_inputs,
                        size_t *index, kiln_error_t *err);
/* Adds record `link` as an alternative of input `i` of record `rec`
 * (nothing if it is there already). */
int kiln__cc_add_link(kiln__cc_t *cc, size_t rec, size_t i, size_t link,
                      const char *selector, kiln_error_t *err);
/* Sets a record's description (copied) unless it has one. */
int kiln__cc_describe(kiln__cc_t *cc, size_t rec, const char *description,
                      kiln_error_t *err);
/* Adds a result (top layer `layer`) to record `rec` unless it has it. */
int kiln__cc_add_result(kiln__cc_t *cc, size_t rec, size_t layer,
                        const char *created, kiln_error_t *err);

/* The layers of a result, bottom first, following parents from `top`:
 * *out malloc'ed (caller frees), *n its length. */
int kiln__cc_layer_chain(const kiln__cc_t *cc, int64_t top, int64_t **out,
                         size_t *n, kiln_error_t *err);

/* Now as BuildKit writes createdAt (RFC 3339, UTC, nanoseconds). */
void kiln__cc_time_now(char out[KILN_CC_TIME_MAX]);

/*
 * Merging (merge.c). kiln__cc_merge() adds every record and layer of `src`
 * to `dst`: records are content addressed (their digest and, per input,
 * the set of (selector, linked record) they accept, recursively), so a
 * record both have is kept once with the union of their results. Layers
 * are (blob, parent) pairs, kept once each.
 */
int kiln__cc_merge(kiln__cc_t *dst, const kiln__cc_t *src, kiln_error_t *err);

/*
 * Bounds a config to `max_records` records with results (0: no bound)
 * and drops results older than `max_age_s` seconds (0: no bound): the
 * results created longest ago go first. Then removes what no kept result
 * needs: records neither holding a result nor linked (transitively) from
 * one, and layers no result uses. *dropped (may be NULL) receives the
 * records removed.
 */
int kiln__cc_limit(kiln__cc_t *cc, size_t max_records, int64_t max_age_s,
                   size_t *dropped, kiln_error_t *err);

#endif
