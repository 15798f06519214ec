/*
 * BuildKit cache maps: for one decoded op, the digest that stands for the
 * op in cache keys (sha256 of the Go JSON of the normalized op), and per
 * input the dependency selector and whether a content ("slow") key is
 * computed. See docs in /work/shared/reference/cache.md §1; the rules follow
 * solver/llbsolver/ops/{exec,file,merge,diff,build,passthrough,source}.go.
 *
 * Source ops are not handled here: their key string comes from the source
 * plugin; kiln__cachemap_source_digest() turns it into the digest.
 */
#ifndef KILN_SOLVER_CACHEMAP_H
#define KILN_SOLVER_CACHEMAP_H

#include "internal.h"
#include "llb/graph.h"
#include "ops.pb-c.h"

/*
 * Which daemon generation to agree with. Cache keys changed at v0.17 (Go
 * structs went from gogo to protobuf-go, so "input":0 is no longer
 * written) and exec selector/content rules changed at v0.13.
 */
enum kiln__cm_compat {
    /* BuildKit >= v0.17 (checked against v0.32): every JSON field
     * omitempty, Go >= 1.22 escaping, exec mounts always give a selector
     * (path.Join("/", sel)), Dockerfile-default cache IDs kept, others
     * cleared, OSVersion/OSFeatures in the exec platform. */
    KILN_CM_CURRENT = 0,
    /* BuildKit v0.11.x (gogo structs, Go < 1.22 escaping): "input":0
     * written, exec selectors only for non-empty Mount.selector, content
     * keys off once any mount of the input is writable-with-output or the
     * root, cache mount IDs kept. v0.12-v0.16 mix both and match neither
     * exactly. */
    KILN_CM_V0_11,
};

/* A path to checksum for a content key, with the options BuildKit's
 * contenthash.Checksum gets. */
typedef struct kiln__cm_selector {
    char *path; /* owned by the cache map */
    bool wildcard;
    bool follow_links;
    /* Borrowed from the op: valid while the op (its definition) lives. */
    size_t n_include;
    char **include;
    size_t n_exclude;
    char **exclude;
    size_t n_required;
    char **required;
} kiln__cm_selector_t;

/* What the op asks of input i (BuildKit's CacheMap.Deps[i]). */
typedef struct kiln__cm_dep {
    /* sha256 of the selector paths joined with "\0"; "" for none. */
    char selector[KILN_DIGEST_STRLEN + 1];
    /* The paths hashed into `selector`, in join order. */
    size_t n_paths;
    char **paths;
    /* True if a content key (ComputeDigestFunc) is computed for the input. */
    bool content;
    /* What that content key checksums, in order (its digest is sha256 of
     * the checksums joined with "\0"). Zero entries means the whole input
     * ("/"). Only filled when `content` is true. */
    size_t n_content;
    kiln__cm_selector_t *content_sels;
} kiln__cm_dep_t;

typedef struct kiln__cachemap {
    /* "sha256:<hex>" (or "random:<hex>" for session sources). */
    char digest[KILN_DIGEST_STRLEN + 1];
    /* BuildKit's len(Deps): the op's input count, except merge (number of
     * merge inputs) and diff (number of non-scratch sides). */
    size_t n_deps;
    kiln__cm_dep_t *deps;
    /* The exact bytes hashed into `digest`, NUL-terminated. */
    char *json;
    size_t json_len;
} kiln__cachemap_t;

/*
 * Computes the cache map of `op` (exec, file, merge, diff, build or
 * passthrough). `default_platform` stands in for a missing Op.platform of
 * an exec op (BuildKit uses the daemon's platforms.DefaultSpec()); it may
 * be NULL when the op has its own. On success *out is owned by the caller:
 * free it with kiln__cachemap_free(); it borrows pattern strings from `op`
 * (see kiln__cm_selector_t), so it must not outlive it.
 *
 * Errors (*out NULL, `err` filled): KILN_ENOTSUP for source ops (use
 * kiln__cachemap_source_digest) and terminal ops; KILN_EINVAL when BuildKit
 * refuses the op's cache map too (a file op reading a selector from an
 * index that is neither an op input nor an action base, contentCache=ON
 * on a mount that cannot be content-cached) or an exec op has no
 * platform; KILN_ENOMEM.
 */
int kiln__cachemap_compute(const Pb__Op *op,
                           const Pb__Platform *default_platform,
                           enum kiln__cm_compat compat, kiln__cachemap_t **out,
                           kiln_error_t *err);

/* As kiln__cachemap_compute() for a vertex of a loaded definition; error
 * messages name the op. */
int kiln__cachemap_vertex(const kiln__vertex_t *v,
                          const Pb__Platform *default_platform,
                          enum kiln__cm_compat compat, kiln__cachemap_t **out,
                          kiln_error_t *err);

/* Frees a cache map. NULL is a no-op. */
void kiln__cachemap_free(kiln__cachemap_t *cm);

/*
 * The cache-map digest of a source op whose plugin returned key `key`
 * (len bytes): sha256("buildkit.source.v0:" + key); when the key starts
 * with "session:" (local sources), the same hex as "random:<hex>", which
 * never matches across sessions and is never exported. Returns 0 or
 * KILN_ENOMEM.
 */
int kiln__cachemap_source_digest(const void *key, size_t len,
                                 char out[KILN_DIGEST_STRLEN + 1]);

/* True for a "random:" digest. */
bool kiln__cachemap_is_random(const char *digest);

/*
 * The root-key / exported record digest of output `output` of a cache map
 * digest: sha256("<digest>@<output>"); content keys use output -1. For a
 * "random:" digest, current BuildKit keeps "random:<hex of digest>" while
 * v0.11-era BuildKit used "random:" + hex(sha256("<digest>@<output>")).
 * Returns 0, KILN_EINVAL (digest longer than a digest) or KILN_ENOMEM.
 */
int kiln__cachemap_record_digest(const char *digest, int64_t output,
                                 enum kiln__cm_compat compat,
                                 char out[KILN_DIGEST_STRLEN + 1]);

/* sha256 of the strings joined with "\0" (BuildKit's selector digests). */
int kiln__cachemap_join_digest(char *const *strs, size_t n,
                               char out[KILN_DIGEST_STRLEN + 1]);

#endif
