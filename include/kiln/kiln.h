/*
 * kiln: a build engine for BuildKit's LLB build graphs.
 *
 * This is libkiln's public API. Every function returns 0 on success or a
 * negative KILN_E* code (a negative errno value) on failure; functions that
 * take a kiln_error_t fill it with a message that says what went wrong and
 * where. Objects are opaque and owned by the caller from the moment a _new or
 * _load function hands them out until the matching _free.
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kiln/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_EXTERN            __attribute__((visibility("default")))
#define KILN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KILN_EXTERN
#define KILN_PRINTF(fmt, args)
#endif

/* Error codes. Always negative; 0 means success. */
#define KILN_ENOMEM  (-ENOMEM)  /* out of memory */
#define KILN_EINVAL  (-EINVAL)  /* invalid argument or definition */
#define KILN_EBADMSG (-EBADMSG) /* input is not a decodable definition */
#define KILN_E2BIG   (-E2BIG)   /* input exceeds a size limit */
#define KILN_EIO     (-EIO)     /* read or write failed */
#define KILN_ENOENT  (-ENOENT)  /* a named thing does not exist */
#define KILN_ENOTSUP (-ENOTSUP) /* not supported by this build */
#define KILN_ECANCELED (-ECANCELED) /* the operation was canceled */
#define KILN_ELOOP   (-ELOOP)   /* too many levels of symbolic links */

/* Longest message a kiln_error_t holds, with its terminating NUL. */
#define KILN_ERROR_MAX 1024

/*
 * What went wrong. Callers allocate it (on the stack is fine) and pass it to
 * functions that can fail; on failure `code` holds the returned code and
 * `message` a one-line, NUL-terminated description. On success it is left
 * untouched. Passing NULL is allowed when the caller does not want details.
 */
typedef struct kiln_error {
    int code;
    char message[KILN_ERROR_MAX];
} kiln_error_t;

/* A short static description of a KILN_E* code, as strerror() does. */
KILN_EXTERN const char *kiln_strerror(int code);

/* The library's version, "MAJOR.MINOR.PATCH". Static storage. */
KILN_EXTERN const char *kiln_version(void);

/* Releases memory that a kiln function handed out with "free with
 * kiln_free". NULL is a no-op. */
KILN_EXTERN void kiln_free(void *ptr);

/*
 * Definitions.
 *
 * A kiln_definition_t is a decoded and validated LLB Definition: every op's
 * exact bytes, its digest ("sha256:" + hex SHA-256 of those bytes, as
 * BuildKit computes it), its metadata, and the graph edges between ops.
 */
typedef struct kiln_definition kiln_definition_t;

/* Largest definition kiln accepts, in bytes. */
#define KILN_DEFINITION_MAX_BYTES (256u * 1024 * 1024)

/*
 * Decodes and validates a marshaled pb.Definition. `data` is borrowed and
 * copied: the caller may free it after the call. On success *out owns the
 * definition; free it with kiln_definition_free(). On failure *out is NULL and
 * `err` names the op at fault (its digest and custom name) where there is one.
 *
 * Errors: KILN_EBADMSG (not protobuf, truncated, invalid UTF-8 in a string),
 * KILN_EINVAL (decodes, but is not a valid graph: a missing input, an output
 * index out of range, a cycle, no terminal op, ...), KILN_E2BIG (over a size
 * limit), KILN_ENOMEM.
 */
KILN_EXTERN int kiln_definition_load(const void *data, size_t len,
                                     kiln_error_t *err,
                                     kiln_definition_t **out);

/* As kiln_definition_load(), reading the file at `path`, or standard input
 * when `path` is "-". Adds KILN_EIO and KILN_ENOENT for unreadable files. */
KILN_EXTERN int kiln_definition_load_file(const char *path, kiln_error_t *err,
                                          kiln_definition_t **out);

/* Frees a definition. NULL is a no-op. */
KILN_EXTERN void kiln_definition_free(kiln_definition_t *def);

/* Number of distinct ops, the terminal op included, in definition order. */
KILN_EXTERN size_t kiln_definition_op_count(const kiln_definition_t *def);

/* Digest of op `i` ("sha256:<hex>"), or NULL if i is out of range. Owned by
 * the definition. */
KILN_EXTERN const char *kiln_definition_op_digest(const kiln_definition_t *def,
                                                  size_t i);

/* The op's display name: its `llb.customname` description if it has one,
 * else NULL. Owned by the definition. */
KILN_EXTERN const char *kiln_definition_op_name(const kiln_definition_t *def,
                                                size_t i);

/*
 * The build result: the digest of the op the terminal points at, and in
 * *index (if not NULL) which output of it. NULL for an empty definition,
 * which BuildKit treats as "nothing to build".
 */
KILN_EXTERN const char *kiln_definition_result(const kiln_definition_t *def,
                                               int64_t *index);

/*
 * Writes one JSON object per op to `out`, in definition order, in the shape
 * `buildctl debug dump-llb` prints: {"Op":...,"Digest":...,"OpMetadata":...}.
 * Returns 0, KILN_EIO if writing failed, or KILN_ENOMEM.
 */
KILN_EXTERN int kiln_definition_dump_json(const kiln_definition_t *def,
                                          FILE *out, kiln_error_t *err);

/*
 * Writes the graph in Graphviz dot syntax: one node per op, labelled with its
 * custom name, or else a summary (the op kind and its identifier, arguments
 * or actions), and one edge per input, labelled with the output index when it
 * is not 0. Returns 0, KILN_EIO or KILN_ENOMEM.
 */
KILN_EXTERN int kiln_definition_dump_dot(const kiln_definition_t *def,
                                         FILE *out, kiln_error_t *err);

/*
 * Marshals the definition again. Op bytes are the ones decoded, so digests are
 * kept; maps are written sorted by key, unknown fields are kept. For a
 * definition written by a gogo-era (<= v0.16) BuildKit client the result is
 * byte-identical to the input. *out is freed with kiln_free().
 */
KILN_EXTERN int kiln_definition_encode(const kiln_definition_t *def,
                                       uint8_t **out, size_t *len,
                                       kiln_error_t *err);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
