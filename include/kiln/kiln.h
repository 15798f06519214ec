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

/*
 * Engines and solves.
 *
 * An engine owns a store root (metadata.db, layers, logs; see
 * docs/store-format.md) and a scheduler. A solve builds one definition on
 * it: every op whose cache key has a record in the store is "cached" and not
 * run; the others run as soon as their inputs are done, up to the engine's
 * job limits. Progress arrives as events.
 *
 * Threads: by default an engine runs its own thread with its own event loop;
 * kiln_solve_wait() blocks the caller until the solve ends, and events are
 * delivered on the engine's thread. An embedder with a libuv loop passes it
 * in the options instead: everything then runs on that loop, the caller must
 * run it, and completion arrives through `on_done`; kiln_solve_start(),
 * kiln_solve_free() and kiln_engine_free() are then called on the loop's
 * thread, and after kiln_engine_free() the loop is run once more (it closes
 * the engine's handle) before uv_loop_close(). kiln_solve_cancel() may be
 * called from any thread in both modes.
 *
 * Leases: a solve holds every result it used in the store (prune never
 * removes them) until kiln_solve_free().
 */
struct uv_loop_s;

typedef struct kiln_engine kiln_engine_t;
typedef struct kiln_solve kiln_solve_t;

typedef enum kiln_log_level {
    KILN_LOG_ERROR = 0,
    KILN_LOG_WARN = 1,
    KILN_LOG_INFO = 2,
    KILN_LOG_DEBUG = 3,
} kiln_log_level_t;

typedef struct kiln_engine_options {
    /* sizeof(kiln_engine_options_t) as the caller was compiled; set by
     * KILN_ENGINE_OPTIONS_INIT. Later versions only append fields. */
    uint32_t size;
    /* Store root. NULL: $KILN_ROOT, else /var/lib/kiln for root, else
     * $XDG_DATA_HOME/kiln. Created if missing. */
    const char *root;
    /* Ops running at once (file ops, hashing, unpacking); 0: CPU count. */
    unsigned jobs;
    /* External processes at once (exec ops, git, downloads); 0: 64. These
     * mostly wait, so the default lets independent steps all run. */
    unsigned process_jobs;
    /* Colon-separated plugin directories searched before the installed
     * plugin directory. NULL: $KILN_PLUGIN_PATH. */
    const char *plugin_path;
    /* Diagnostics delivered as events: KILN_LOG_WARN (default) gives
     * WARNING events, INFO adds MESSAGE events about notable work
     * (flattened snapshots), DEBUG adds the cache key and lookup of every
     * vertex. ERROR: only failures. */
    kiln_log_level_t log_level;
    /* NULL: the engine runs its own thread. Otherwise the embedder's libuv
     * loop, which must outlive the engine and is run by the embedder. */
    struct uv_loop_s *loop;
} kiln_engine_options_t;

#define KILN_ENGINE_OPTIONS_INIT                                               \
    {                                                                          \
        sizeof(kiln_engine_options_t), NULL, 0, 0, NULL, KILN_LOG_WARN, NULL   \
    }

/*
 * Opens the store at opts->root and starts the scheduler. On success *out is
 * freed with kiln_engine_free(). Errors: KILN_EINVAL (bad options), KILN_EIO
 * and others from opening the store, with the path in `err`.
 */
KILN_EXTERN int kiln_engine_new(const kiln_engine_options_t *opts,
                                kiln_error_t *err, kiln_engine_t **out);

/* Cancels running solves, waits for them to end, closes the store. NULL is
 * a no-op. With an embedder's loop, call it from the loop's thread. */
KILN_EXTERN void kiln_engine_free(kiln_engine_t *engine);

/* The store root the engine uses. Owned by the engine. */
KILN_EXTERN const char *kiln_engine_root(const kiln_engine_t *engine);

typedef enum kiln_event_type {
    KILN_EVENT_VERTEX_STARTED = 1,   /* an op began to run */
    KILN_EVENT_VERTEX_CACHED = 2,    /* an op's result came from the store */
    KILN_EVENT_VERTEX_COMPLETED = 3, /* an op ran and its result is stored */
    KILN_EVENT_VERTEX_FAILED = 4,    /* an op failed; message in data */
    KILN_EVENT_VERTEX_CANCELED = 5,  /* an op was stopped by a cancel */
    KILN_EVENT_LOG = 6,              /* output of a running op */
    KILN_EVENT_PROGRESS = 7,         /* bytes or items done of a long step */
    KILN_EVENT_WARNING = 8,          /* something worth knowing; in data */
    KILN_EVENT_MESSAGE = 9,          /* a diagnostic at `level` (INFO or
                                        DEBUG, as the engine's log_level
                                        allows): what was decided and why */
} kiln_event_type_t;

/*
 * One progress event. Every pointer is borrowed for the duration of the
 * callback only.
 */
typedef struct kiln_event {
    kiln_event_type_t type;
    int64_t time_ns;     /* wall clock, nanoseconds since the Unix epoch */
    const char *digest;  /* the op's digest; NULL for solve-wide warnings */
    const char *name;    /* display name: custom name or a summary */
    uint32_t number;     /* 1-based, stable within a solve */
    int stream;          /* LOG: 1 stdout, 2 stderr */
    const uint8_t *data; /* LOG bytes, or FAILED/WARNING message */
    size_t len;          /* bytes in data */
    uint64_t current;    /* PROGRESS: done so far */
    uint64_t total;      /* PROGRESS: expected, 0 if unknown */
    int64_t duration_ns; /* COMPLETED/FAILED/CANCELED: time it ran */
    kiln_log_level_t level; /* MESSAGE: INFO or DEBUG; WARNING: WARN */
} kiln_event_t;

typedef void (*kiln_event_cb)(const kiln_event_t *event, void *userdata);

typedef enum kiln_output_type {
    KILN_OUTPUT_NONE = 0,  /* build and store; export nothing */
    KILN_OUTPUT_LOCAL = 1, /* the result's files into a directory */
    KILN_OUTPUT_TAR = 2,   /* the result's files as a tar stream */
} kiln_output_type_t;

typedef struct kiln_solve_options {
    /* sizeof(kiln_solve_options_t); set by KILN_SOLVE_OPTIONS_INIT. */
    uint32_t size;
    /* The definition to build. Borrowed until the solve ends. */
    const kiln_definition_t *definition;
    kiln_output_type_t output;
    /* LOCAL: directory (created if missing; existing files are replaced).
     * TAR: file path, or NULL to write to output_fd. */
    const char *output_dest;
    int output_fd;
    /* Run every op even when the store has its result. */
    int no_cache;
    /* Progress; may be NULL. */
    kiln_event_cb on_event;
    void *userdata;
    /* With an embedder's loop: called on the loop when the solve ends, with
     * its status (0 or a KILN_E* code; see kiln_solve_status()). */
    void (*on_done)(kiln_solve_t *solve, int status, void *userdata);
    /* Local directories for local:// sources: "NAME=DIR" strings,
     * NULL-terminated (kiln build --local NAME=DIR); may be NULL. Borrowed
     * until the solve ends. A DIR that is not a directory makes
     * kiln_solve_start() fail with KILN_EINVAL, naming it; so does a
     * secret's PATH that cannot be read. */
    const char *const *locals;
    /* Secrets for source plugins and exec ops' secret mounts and
     * variables: "ID=PATH" strings, NULL-terminated (kiln build --secret
     * id=ID,src=PATH); the files are read when they are used, never
     * stored. May be NULL. */
    const char *const *secrets;
    /* OCI image layout directories for oci-layout:// sources: "STORE=DIR"
     * strings, NULL-terminated (kiln build --oci-layout STORE=DIR; STORE
     * is what a source's oci.store attr names). May be NULL. A DIR that is
     * not a directory makes kiln_solve_start() fail with KILN_EINVAL. */
    const char *const *oci_layouts;
    /* Secrets taken from environment variables of this process: "ID=VAR"
     * strings, NULL-terminated (kiln build --secret id=ID,env=VAR); the
     * value is read when an exec uses it, never stored. A VAR that is not
     * set makes kiln_solve_start() fail with KILN_EINVAL. May be NULL. */
    const char *const *secret_envs;
    /* SSH agents for exec ops' SSH mounts: "ID=SOCKET" strings,
     * NULL-terminated (kiln build --ssh default=$SSH_AUTH_SOCK); the
     * socket is mounted into the command's root. A SOCKET that is not a
     * socket makes kiln_solve_start() fail with KILN_EINVAL. May be NULL. */
    const char *const *ssh;
    /* Build cache exports (kiln build --export-cache), BuildKit's specs,
     * NULL-terminated; may be NULL: "type=local,dest=DIR" or
     * "type=registry,ref=HOST/REPO[:TAG]", with mode=min|max,
     * compression=gzip|zstd|uncompressed, compression-level=N,
     * ignore-error=true, oci-mediatypes, image-manifest, max-records=N,
     * max-age=DURATION (see docs/cache-format.md). Layers are uploaded
     * while the build runs; the solve ends once the cache is written, and
     * an export failure fails it unless ignore-error=true (then it is a
     * WARNING event). A malformed spec fails kiln_solve_start(). */
    const char *const *export_cache;
    /* Build caches to reuse (--import-cache): "type=local,src=DIR" or
     * "type=registry,ref=...", NULL-terminated; may be NULL. Only their
     * configs are read up front; layers are fetched for the records the
     * build uses. One that cannot be read is a WARNING event. */
    const char *const *import_cache;
} kiln_solve_options_t;

#define KILN_SOLVE_OPTIONS_INIT                                                \
    {                                                                          \
        sizeof(kiln_solve_options_t), NULL, KILN_OUTPUT_NONE, NULL, -1, 0,     \
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL         \
    }

/*
 * Starts building opts->definition. On success *out is the running solve;
 * it is freed with kiln_solve_free() after it ended. A failure to start
 * (bad options) returns an error and never calls on_done.
 */
KILN_EXTERN int kiln_solve_start(kiln_engine_t *engine,
                                 const kiln_solve_options_t *opts,
                                 kiln_error_t *err, kiln_solve_t **out);

/* Blocks until the solve ends (own-thread engines only; KILN_EINVAL with an
 * embedder's loop). Returns its status, message in err. */
KILN_EXTERN int kiln_solve_wait(kiln_solve_t *solve, kiln_error_t *err);

/* Asks the solve to stop: running ops are stopped, nothing unfinished is
 * recorded, and the solve ends with KILN_ECANCELED. Any thread; idempotent. */
KILN_EXTERN void kiln_solve_cancel(kiln_solve_t *solve);

/* Status of an ended solve: 0, or its error (message in err). */
KILN_EXTERN int kiln_solve_status(const kiln_solve_t *solve, kiln_error_t *err);

typedef struct kiln_solve_stats {
    uint32_t total;      /* ops the result needed */
    uint32_t cached;     /* of those, taken from the store */
    uint32_t run;        /* of those, run */
    int64_t duration_ns; /* wall time of the solve */
} kiln_solve_stats_t;

/* Counts of an ended (or running) solve. */
KILN_EXTERN void kiln_solve_stats(const kiln_solve_t *solve,
                                  kiln_solve_stats_t *stats);

/* Frees an ended solve. NULL is a no-op. */
KILN_EXTERN void kiln_solve_free(kiln_solve_t *solve);

/* kiln_solve_start() + kiln_solve_wait() + kiln_solve_free(). */
KILN_EXTERN int kiln_solve(kiln_engine_t *engine,
                           const kiln_solve_options_t *opts, kiln_error_t *err);

/*
 * Source plugins (see <kiln/plugin.h> and docs/plugins.md). Both functions
 * load the plugins as an engine does: the directories of `plugin_path`
 * (colon-separated; NULL: $KILN_PLUGIN_PATH), then the installed plugin
 * directory, then, for programs in kiln's build tree, the plugins built
 * there. A plugin that cannot be loaded is an error naming its file.
 */
typedef struct kiln_plugin_info {
    const char *name;
    const char *version;
    const char *description;     /* may be NULL */
    const char *path;            /* the module's file */
    const char *const *schemes;  /* NULL-terminated */
} kiln_plugin_info_t;

/* Called once per loaded plugin, in load order; non-zero stops. */
typedef int (*kiln_plugin_cb)(const kiln_plugin_info_t *info, void *userdata);

/* Lists the plugins that load; the info is borrowed for the callback. */
KILN_EXTERN int kiln_plugins_list(const char *plugin_path, kiln_plugin_cb cb,
                                  void *userdata, kiln_error_t *err);

/* A SourceOp as a plugin's translate() makes it. Free with
 * kiln_translated_free() (NULL is a no-op). */
typedef struct kiln_translated {
    char *identifier;
    size_t n_attrs;
    char **keys;   /* in byte order */
    char **values;
} kiln_translated_t;

/*
 * Asks the plugin that owns `scheme` to translate `params` ("KEY=VALUE"
 * strings, NULL-terminated) into the SourceOp identifier and attrs BuildKit
 * would write (what `kiln source translate` prints). Errors: KILN_ENOENT
 * (no plugin owns the scheme; the loaded ones are named), KILN_ENOTSUP
 * (the plugin takes no parameters), KILN_EINVAL (a malformed parameter;
 * the plugin's message), load errors.
 */
KILN_EXTERN int kiln_source_translate(const char *plugin_path,
                                      const char *scheme,
                                      const char *const *params,
                                      kiln_translated_t **out,
                                      kiln_error_t *err);
KILN_EXTERN void kiln_translated_free(kiln_translated_t *t);

/* What resolving a source gave: its pin (the string that stands for its
 * content in cache keys) and the plugin's metadata, n_meta KEY -> VALUE
 * pairs in the order set (values are lens[i] bytes plus a NUL). Free with
 * kiln_resolved_free() (NULL is a no-op). */
typedef struct kiln_resolved {
    char *pin;
    size_t n_meta;
    char **keys;
    char **values;
    size_t *lens;
} kiln_resolved_t;

/*
 * Resolves one source as a build would, without building: the plugin that
 * owns the identifier's scheme pins it against the engine's store (and the
 * network), and its metadata comes back. For docker-image:// and
 * oci-layout:// sources that is "image.digest" (the manifest's digest) and
 * "image.config" (the image config JSON: Env, WorkingDir, User,
 * Entrypoint, Cmd, ...), what BuildKit's ResolveImageConfig gives a
 * frontend (`kiln image inspect` prints them). `attrs` are the SourceOp's
 * attrs as "KEY=VALUE" strings, NULL-terminated (may be NULL); `platform`
 * is "os/arch[/variant]", NULL for the host's; `context` may give the
 * locals, secrets and OCI layouts a build would (only those members are
 * read; may be NULL). Blocks for as long as the plugin works: call it from
 * any thread but an embedder's loop. Errors: KILN_ENOENT (no plugin for
 * the scheme), KILN_EINVAL (a malformed identifier, attr or platform), or
 * the plugin's own (an image that is not there, an unreachable registry).
 */
KILN_EXTERN int kiln_source_resolve(kiln_engine_t *engine,
                                    const char *identifier,
                                    const char *const *attrs,
                                    const char *platform,
                                    const kiln_solve_options_t *context,
                                    kiln_resolved_t **out, kiln_error_t *err);
KILN_EXTERN void kiln_resolved_free(kiln_resolved_t *r);

/*
 * Exported build caches: what `kiln cache ls` shows.
 */
typedef struct kiln_cache_record {
    const char *digest;      /* the record's digest, BuildKit's cache key */
    const char *description; /* the vertex's name (kiln's exports), or NULL */
    uint64_t size;           /* bytes of its newest result's layer blobs;
                                0 without a result */
    size_t n_layers;         /* layers of that result */
    size_t n_results;        /* results it has (0: a link only) */
    size_t n_inputs;         /* the op's inputs */
    const char *created;     /* RFC 3339 time of its newest result, or NULL */
} kiln_cache_record_t;

/* Called once per record, in the config's order; non-zero stops. */
typedef int (*kiln_cache_record_cb)(const kiln_cache_record_t *record,
                                    void *userdata);

/*
 * Reads the exported build cache `spec` names, as --import-cache takes it
 * ("type=local,src=DIR" or "type=registry,ref=HOST/REPO[:TAG]"; only its
 * manifest and config are fetched), and calls cb for each record; the
 * record is borrowed for the call. Errors: KILN_EINVAL (a bad spec),
 * KILN_ENOENT (no such cache), KILN_EBADMSG (not a build cache, or a
 * malformed one: the message names the field), KILN_EIO.
 */
KILN_EXTERN int kiln_cache_list(const char *spec, kiln_cache_record_cb cb,
                                void *userdata, kiln_error_t *err);

/*
 * Store management: what `kiln du`, `kiln prune` and `kiln logs` show.
 */
typedef struct kiln_du_entry {
    const char *key;         /* cache key of the record */
    const char *digest;      /* digest of the op that made it */
    const char *description; /* the op's display name */
    uint64_t size;           /* bytes of layers no other record shares */
    uint64_t shared_size;    /* bytes of layers shared with other records */
    int64_t created_ns;      /* wall clock, ns since the epoch */
    int64_t last_used_ns;
    int in_use; /* held by a running build */
} kiln_du_entry_t;

/* Called once per record, most recently used first; non-zero stops. */
typedef int (*kiln_du_cb)(const kiln_du_entry_t *entry, void *userdata);

/* Walks the store's records; *total (if not NULL) is the disk space all
 * layers and logs take, each counted once. */
KILN_EXTERN int kiln_engine_du(kiln_engine_t *engine, kiln_du_cb cb,
                               void *userdata, uint64_t *total,
                               kiln_error_t *err);

typedef struct kiln_prune_options {
    uint32_t size;            /* set by KILN_PRUNE_OPTIONS_INIT */
    int all;                  /* remove every record not in use */
    uint64_t keep_storage;    /* remove least recently used until the store
                                 takes at most this many bytes (0: off) */
    int64_t keep_duration_ns; /* remove records unused for longer (0: off) */
} kiln_prune_options_t;

#define KILN_PRUNE_OPTIONS_INIT                                                \
    {                                                                          \
        sizeof(kiln_prune_options_t), 0, 0, 0                                  \
    }

/* Removes records (least recently used first), then the layers and logs
 * nothing references. Never touches what a running build holds. */
KILN_EXTERN int kiln_engine_prune(kiln_engine_t *engine,
                                  const kiln_prune_options_t *opts,
                                  uint64_t *freed, uint32_t *removed,
                                  kiln_error_t *err);

/*
 * Writes the complete stored output of the op whose digest starts with
 * `query` (at least 4 hex digits, "sha256:" optional) or whose name equals
 * it, to `fd`. KILN_ENOENT if nothing matches, KILN_EINVAL if several ops
 * match (the message lists them).
 */
KILN_EXTERN int kiln_engine_logs(kiln_engine_t *engine, const char *query,
                                 int fd, kiln_error_t *err);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
