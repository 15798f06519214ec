/*
 * kiln source plugins: the one header a plugin includes.
 *
 * A source plugin is a shared module (kiln-NAME.so) that owns one or more
 * identifier schemes ("local", "https", ...). It exports one function,
 * kiln_plugin_entry(), returning a const descriptor; kiln dlopen()s every
 * module on its plugin path, checks the descriptor, and sends every
 * SourceOp whose identifier scheme the plugin claims to its hooks:
 *
 *   translate  user parameters (KEY=VALUE) -> SourceOp identifier + attrs,
 *              exactly as BuildKit's Go client builds them. Pure: no I/O,
 *              no clock, no network.
 *   resolve    identifier + attrs + platform -> a content pin: the string
 *              that stands for the source in cache keys (a commit, a
 *              content digest, a tree checksum). Same pin, same content.
 *   fetch      materialize the pinned content into an empty directory the
 *              host gives; the host turns it into a snapshot.
 *
 * A plugin never links against libkiln and never sees its types: every
 * service (logging, progress, cancellation, attribute maps, a persistent
 * key-value store, secrets, the content-addressed blob store) comes through
 * the host table passed to init(). No memory crosses the boundary: the host
 * copies what a plugin hands it, and fills buffers the plugin owns.
 *
 * Versions. The descriptor and the host table both start with their size,
 * and the header of the descriptor (magic, ABI major, minor, size) is
 * frozen forever. A plugin built for ABI major M, minor m loads in a host
 * of major M and minor >= m. A minor version only appends members, at the
 * end of the descriptor or of the host table: a host reads a descriptor
 * member only if the plugin's `size` covers it, and a plugin uses a host
 * member only if KILN_HOST_HAS() says the host has it. Members added in a
 * minor version are marked "Since ABI 1.N".
 *
 * Threads. init() and teardown() run once per process: on the first load
 * of the module and its last unload (several engines in one process share
 * the module, its globals and its state), never at the same time. translate() may run on any thread. resolve() and fetch() run on
 * threads of their own (never kiln's event loop) and may block; several
 * calls may run at once, for different sources, so state shared between
 * calls needs a lock. Host functions are thread-safe.
 *
 * Errors. Hooks return 0 or a negative errno value (-ENOENT, -EIO, ...)
 * after recording a message with host->fail(); the message should say
 * what failed and where ("GET https://x/y: 404 Not Found"). A hook that
 * fails leaves no partial result: the host discards the fetch directory.
 *
 * See docs/plugins.md for a complete worked example.
 */
#ifndef KILN_PLUGIN_H
#define KILN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_PLUGIN_MAGIC     0x4b494c4eu /* "KILN" */
#define KILN_PLUGIN_ABI_MAJOR 1           /* bumped on any incompatible change */
#define KILN_PLUGIN_ABI_MINOR 2           /* bumped when members are appended */
#define KILN_PLUGIN_ENTRY     "kiln_plugin_entry"

#if defined(__GNUC__)
#define KILN_PLUGIN_EXPORT        __attribute__((visibility("default")))
#define KILN_PLUGIN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KILN_PLUGIN_EXPORT
#define KILN_PLUGIN_PRINTF(f, a)
#endif

/* An ordered map of string keys to string values, owned by the host. */
typedef struct kiln_attrs kiln_attrs_t;

/* One call of a hook in flight (a translate, a resolve, a fetch), owned by
 * the host: what host services act on. */
typedef struct kiln_job kiln_job_t;

/* A compiled list of .dockerignore-style patterns, owned by the host. */
typedef struct kiln_patterns kiln_patterns_t;

enum kiln_plugin_log_level {
    KILN_PLUGIN_LOG_ERROR = 0,
    KILN_PLUGIN_LOG_WARN = 1,
    KILN_PLUGIN_LOG_INFO = 2,
    KILN_PLUGIN_LOG_DEBUG = 3,
};

/* The source a resolve() or fetch() is about. Borrowed for the call. */
typedef struct kiln_source {
    uint32_t size;            /* sizeof(kiln_source_t) in the host */
    const char *identifier;   /* "https://example.com/a.tgz" */
    const char *scheme;       /* "https": before the first "://" */
    const char *locator;      /* "example.com/a.tgz": after it */
    const kiln_attrs_t *attrs; /* SourceOp.attrs */
    /* Op.platform, or NULL members when the op has none. */
    const char *os;
    const char *arch;
    const char *variant;
    /* fetch() only: the pin resolve() gave for this source. */
    const char *pin;
} kiln_source_t;

/*
 * Services of the host. Every function is thread-safe. `job` is the one
 * passed to the hook being run; a service called with the job of a hook
 * that has returned is a programming error.
 */
typedef struct kiln_host {
    uint32_t size;      /* sizeof(kiln_host_t) in the host */
    uint32_t abi_minor; /* the host's KILN_PLUGIN_ABI_MINOR */

    /* -- Attribute maps (parameters, SourceOp attrs, outputs) -- */

    /* The value of `key`, or NULL. Borrowed from the map. */
    const char *(*attr_get)(const kiln_attrs_t *attrs, const char *key);
    /* Sets `key` (copied) to `value` (copied), replacing a value there.
     * 0, or -ENOMEM, or -EINVAL (NULL key or value). */
    int (*attr_set)(kiln_attrs_t *attrs, const char *key, const char *value);
    /* Entries in key order (strcmp): count, then key and value of entry i.
     * Borrowed from the map. */
    size_t (*attr_count)(const kiln_attrs_t *attrs);
    const char *(*attr_key)(const kiln_attrs_t *attrs, size_t i);
    const char *(*attr_value)(const kiln_attrs_t *attrs, size_t i);

    /* -- Reporting -- */

    /* A diagnostic of the job's vertex (a build's progress shows it). */
    void (*log)(kiln_job_t *job, enum kiln_plugin_log_level level,
                const char *fmt, ...) KILN_PLUGIN_PRINTF(3, 4);
    /* Records the job's error message and returns `code` (negative
     * errno), so that failures read `return host->fail(job, -EIO, ...)`. */
    int (*fail)(kiln_job_t *job, int code, const char *fmt, ...)
        KILN_PLUGIN_PRINTF(3, 4);
    /* Progress of a long step, in bytes: `total` 0 when unknown. */
    void (*progress)(kiln_job_t *job, uint64_t done, uint64_t total);
    /* Non-zero once the build is canceled: return -ECANCELED soon. */
    int (*cancelled)(const kiln_job_t *job);

    /* -- Results of resolve() -- */

    /* Sets the source's content pin (copied): required from resolve(). */
    int (*set_pin)(kiln_job_t *job, const char *pin);

    /* -- Storage of the plugin's own -- */

    /* A persistent directory of this plugin's (created on demand; shared
     * by every call and every kiln process on the store, so lock what you
     * write there). Borrowed; NULL if it cannot be created. */
    const char *(*cache_dir)(kiln_job_t *job);
    /*
     * A small persistent key-value store of this plugin's, kept in kiln's
     * metadata database (ETags, resolved refs, file metadata). Values are
     * bytes, at most 1 MiB. kv_get copies the value into buf (size bytes)
     * and sets *len to its length: -ENOENT if there is none, -ERANGE if
     * buf is too small (*len then says how much is needed). kv_set
     * replaces; kv_delete of a missing key is 0. Prune empties it.
     */
    int (*kv_get)(kiln_job_t *job, const char *key, void *buf, size_t size,
                  size_t *len);
    int (*kv_set)(kiln_job_t *job, const char *key, const void *value,
                  size_t len);
    int (*kv_delete)(kiln_job_t *job, const char *key);

    /* -- Secrets -- */

    /* The secret `id` the build was given, as kv_get returns values:
     * -ENOENT if there is none. Never log or store it. */
    int (*secret_get)(kiln_job_t *job, const char *id, void *buf,
                      size_t size, size_t *len);

    /* -- The content-addressed blob store -- */

    /*
     * Blobs are files named by the SHA-256 of their bytes, shared by every
     * plugin and kept until prune. blob_open opens blob `digest`
     * ("sha256:<hex>") for reading (*fd, the caller closes): -ENOENT if it
     * is not there. blob_create opens a new, empty file for writing (*fd;
     * do not close it) and names the write *w; blob_commit closes it,
     * checks the digest of what was written (against `expect` when not
     * NULL: a mismatch is -EBADMSG with a message naming both, and the
     * file is discarded), moves it into the store and writes its digest
     * into `digest` (72 bytes: "sha256:" + 64 hex + NUL); blob_abort
     * discards it. A write must end in exactly one of the two.
     */
    int (*blob_open)(kiln_job_t *job, const char *digest, int *fd);
    int (*blob_create)(kiln_job_t *job, int *fd, void **w);
    int (*blob_commit)(kiln_job_t *job, void *w, const char *expect,
                       char digest[72]);
    void (*blob_abort)(kiln_job_t *job, void *w);
    /* The absolute path of blob `digest` into buf: -ENOENT if absent,
     * -ENAMETOOLONG if buf is too small. For hard-linking or copying a
     * blob into a fetch directory; never write to it. */
    int (*blob_path)(kiln_job_t *job, const char *digest, char *buf,
                     size_t size);

    /* -- The build's local directories -- */

    /* The directory the build maps local name `name` to (`kiln build
     * --local NAME=DIR`, kiln_solve_options_t.locals), absolute; NULL if
     * the build maps none. Borrowed for the job. */
    const char *(*local_dir)(kiln_job_t *job, const char *name);

    /* -- Path patterns -- */

    /*
     * .dockerignore-style patterns, exactly as BuildKit's pattern matcher
     * (moby/patternmatcher): `*`, `?`, `[...]`, `**`, a leading `!`
     * re-includes, `..` and `.` are cleaned, a pattern that matches a
     * directory matches everything below it. A leading `/` is kept, as the
     * pattern library does (only .dockerignore files drop it when read), so
     * "/build" matches no relative path.
     * patterns_new compiles patterns[0..n) into *out (free with
     * patterns_free): -EINVAL for a malformed pattern, with the message
     * recorded in the job. patterns_match tells whether the relative,
     * '/'-separated `path` is matched (the last matching pattern decides;
     * parents count, as MatchesOrParentMatches): 1 or 0.
     * patterns_exclusions is 1 if some pattern starts with `!`, so that an
     * excluded directory may still hold re-included entries.
     */
    int (*patterns_new)(kiln_job_t *job, const char *const *patterns, size_t n,
                        kiln_patterns_t **out);
    void (*patterns_free)(kiln_patterns_t *p);
    int (*patterns_match)(const kiln_patterns_t *p, const char *path);
    int (*patterns_exclusions)(const kiln_patterns_t *p);

    /* -- Since ABI 1.1 -- */

    /*
     * fetch() only: one more layer for the source, stacked above dest_dir
     * and the layers added before it (an image's layers, bottom first), in
     * kiln's layer format (files as they are, `.wh.NAME` whiteouts and
     * `.wh..wh..opq` opaque markers deleting from the layers below). Writes
     * the path of a new empty directory on the store's file system into
     * buf. The host commits all of them, in order, when fetch() returns 0,
     * and discards them otherwise. -ENOTSUP outside fetch(),
     * -ENAMETOOLONG if buf is too small.
     */
    int (*add_layer)(kiln_job_t *job, char *buf, size_t size);

    /* -- Since ABI 1.2 -- */

    /*
     * fetch() only: like add_layer(), for a layer named by `key`, a stable
     * name of exactly what the layer will hold, under which the host keeps
     * it for every later fetch of any plugin (so name it by content and by
     * everything it depends on: an image layer by the chain of verified
     * blob digests from the bottom layer up). When the store has a layer
     * of that name, it is stacked as it is, *reused is set to 1 and buf is
     * left alone: write nothing. Otherwise *reused is 0, buf receives a new
     * empty directory as add_layer() gives, and when fetch() returns 0 the
     * host keeps the layer under `key`. A fetch that stacks all of its
     * layers this way may leave dest_dir empty: an empty dest_dir below
     * added layers is dropped. Keys are 1 to 256 printable ASCII bytes
     * (-EINVAL otherwise); -ENOTSUP outside fetch().
     */
    int (*add_layer_keyed)(kiln_job_t *job, const char *key, char *buf,
                           size_t size, int *reused);
    /*
     * resolve() only: metadata of the resolved source, for clients that
     * resolve a source without building it (kiln_source_resolve(), `kiln
     * image inspect`: what BuildKit's ResolveImageConfig answers). `value`
     * is copied, `len` bytes (text, usually JSON); setting a key again
     * replaces it. The image plugins set "image.digest" (the manifest's
     * digest) and "image.config" (the image config JSON). At most 64 keys
     * and 4 MiB each: -E2BIG beyond; -EINVAL for an empty key.
     */
    int (*set_meta)(kiln_job_t *job, const char *key, const void *value,
                    size_t len);
    /*
     * The OCI image layout directory the build names `store` (`kiln build
     * --oci-layout STORE=DIR`, kiln_solve_options_t.oci_layouts; BuildKit's
     * oci.store attr), absolute; NULL when the build names none. With
     * store NULL: the build's only layout, if it names exactly one.
     * Borrowed for the job.
     */
    const char *(*oci_layout_dir)(kiln_job_t *job, const char *store);
    /* ABI 1.3+: append below, never above. */
} kiln_host_t;

/* True if `host` has member `m` (a plugin built for a later minor than the
 * host's checks this before calling a member added since). */
#define KILN_HOST_HAS(host, m)                                                 \
    (offsetof(kiln_host_t, m) + sizeof((host)->m) <= (host)->size)

/* The descriptor a plugin exports. Designated initialisers, please. */
typedef struct kiln_plugin {
    /* Frozen header: checked first, never changes. */
    uint32_t magic;     /* KILN_PLUGIN_MAGIC */
    uint16_t abi_major; /* KILN_PLUGIN_ABI_MAJOR */
    uint16_t abi_minor; /* KILN_PLUGIN_ABI_MINOR */
    uint32_t size;      /* sizeof(kiln_plugin_t) */

    const char *name;        /* "local": lower case, unique */
    const char *version;     /* the plugin's own, "1.0.0" */
    const char *description; /* one line for `kiln plugins` */
    /* The identifier schemes it owns, NULL-terminated: {"https", "http",
     * NULL}. A scheme claimed by two loaded plugins is a load error. */
    const char *const *schemes;

    /*
     * Called once after loading: `host` stays valid until teardown. *state
     * (may stay NULL) is passed to every hook. A failure (negative errno)
     * unloads the plugin; the loader reports it with the code's strerror.
     * May be NULL.
     */
    int (*init)(const kiln_host_t *host, void **state);
    /* Called once before unloading. May be NULL. */
    void (*teardown)(void *state);

    /*
     * User parameters -> identifier and attrs, as BuildKit's Go client.
     * `params` are KEY=VALUE pairs as given (`kiln source translate local
     * name=context include=*.go`); unknown keys are an error (-EINVAL, the
     * message naming the key and the known ones). Writes the identifier
     * into ident (size bytes with the NUL; -ENAMETOOLONG if it does not
     * fit) and sets attrs (empty on entry) with host->attr_set. Pure. May
     * be NULL for a plugin without user-facing parameters.
     */
    int (*translate)(void *state, kiln_job_t *job, const char *scheme,
                     const kiln_attrs_t *params, char *ident,
                     size_t ident_size, kiln_attrs_t *attrs);
    /* Pins the source: calls host->set_pin() once. Required. */
    int (*resolve)(void *state, kiln_job_t *job, const kiln_source_t *src);
    /* Writes the content `src->pin` names into the empty directory
     * dest_dir (created by the host, on the store's file system). Files
     * get the modes and owners they will have in the snapshot. Required. */
    int (*fetch)(void *state, kiln_job_t *job, const kiln_source_t *src,
                 const char *dest_dir);
    /* ABI 1.1+: append below, never above. */
} kiln_plugin_t;

/*
 * Defines the entry point of a plugin whose descriptor is `desc`:
 *
 *     static const kiln_plugin_t my_plugin = { KILN_PLUGIN_HEADER, ... };
 *     KILN_PLUGIN_DEFINE(my_plugin)
 */
#define KILN_PLUGIN_HEADER                                                     \
    .magic = KILN_PLUGIN_MAGIC, .abi_major = KILN_PLUGIN_ABI_MAJOR,            \
    .abi_minor = KILN_PLUGIN_ABI_MINOR, .size = sizeof(kiln_plugin_t)

#define KILN_PLUGIN_DEFINE(desc)                                               \
    KILN_PLUGIN_EXPORT const kiln_plugin_t *kiln_plugin_entry(void);           \
    const kiln_plugin_t *kiln_plugin_entry(void)                               \
    {                                                                          \
        return &(desc);                                                        \
    }

#ifdef __cplusplus
}
#endif

#endif
