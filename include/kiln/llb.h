/*
 * kiln LLB definition builder.
 *
 * Builds BuildKit LLB graphs in C, the way BuildKit's Go package
 * `client/llb` does, and marshals them into a pb.Definition whose op bytes
 * and digests are the ones the Go client produces for the same graph.
 *
 * The model:
 *
 *  - A builder (kiln_llb_t) owns everything it hands out: states, exec
 *    handles and file-action chains stay valid until kiln_llb_free(). Callers
 *    never free them one by one. Strings and byte buffers passed in are
 *    copied; the caller keeps ownership of its arguments.
 *
 *  - A state (kiln_llb_state_t) is a filesystem: one output of one op, or
 *    scratch (the empty filesystem, which is no op at all). Sources return
 *    states; exec, file, merge and diff ops take states and return new ones.
 *
 *  - Errors are sticky, as the errors of Go's llb.State are: a function given
 *    bad input records the first error in its builder (a message that says
 *    what and where) and returns NULL. Every function given a NULL state,
 *    exec or action chain returns NULL too, so calls can be nested and
 *    checked once: kiln_llb_marshal() returns the recorded error. Passing
 *    NULL where no error was recorded yet records one.
 *
 *  - Setters such as kiln_llb_image_layer_limit() or kiln_llb_custom_name()
 *    configure the op that produced the state they are given and return that
 *    same state, so they can wrap the call that created it. Ops are encoded
 *    only by kiln_llb_marshal(), with the settings they have at that time.
 *
 *  - Strings must be valid UTF-8 (protobuf refuses anything else); paths
 *    are absolute or are resolved against "/" (builder states carry no
 *    working directory).
 *
 * Nothing here is thread-safe: use one builder from one thread at a time.
 * Different builders are independent.
 */
#ifndef KILN_LLB_H
#define KILN_LLB_H

#include <stdint.h>
#include <stdio.h>

#include <kiln/kiln.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_llb kiln_llb_t;             /* the builder */
typedef struct kiln_llb_state kiln_llb_state_t; /* a filesystem state */
typedef struct kiln_llb_exec kiln_llb_exec_t;   /* an exec op being set up */
typedef struct kiln_llb_file kiln_llb_file_t;   /* a chain of file actions */

/* Byte layout of the ops a builder marshals. */
typedef enum kiln_llb_encoding {
    /*
     * Go client >= v0.17 (protobuf-go, deterministic): Op inputs, platform
     * and constraints first, then the op body. File ops carry no platform.
     * The digests a current BuildKit daemon reports.
     */
    KILN_LLB_ENCODING_CURRENT = 0,
    /*
     * Go client v0.11.x (gogo/protobuf): every field in field-number order,
     * and file ops still carry a platform. Reproduces definitions written by
     * BuildKit v0.11.6.
     */
    KILN_LLB_ENCODING_LEGACY = 1,
} kiln_llb_encoding_t;

/* ------------------------------------------------------------------------
 * The builder
 */

/*
 * Creates a builder. Its default platform is the host's, as Go's
 * runtime.GOOS/GOARCH name it ("linux"/"amd64", "arm64", "arm" with variant
 * "v7", "386", ...), and its local unique id (see kiln_llb_local()) is 25
 * random characters from the system's random source.
 *
 * On success *out owns the builder; free it with kiln_llb_free().
 * Errors: KILN_EINVAL (unknown encoding), KILN_ENOMEM, KILN_EIO (no
 * randomness available).
 */
KILN_EXTERN int kiln_llb_new(kiln_llb_encoding_t encoding, kiln_llb_t **out);

/* Frees the builder and every state, exec and action chain it handed out.
 * NULL is a no-op. */
KILN_EXTERN void kiln_llb_free(kiln_llb_t *b);

/*
 * Sets the default platform: the Op.platform of exec ops and image sources
 * that have none of their own (Go's llb.Platform marshal option). `os` and
 * `arch` are required; `variant` may be NULL. Values are used as given, not
 * normalized. Returns 0, KILN_EINVAL (missing or not UTF-8) or KILN_ENOMEM.
 */
KILN_EXTERN int kiln_llb_set_platform(kiln_llb_t *b, const char *os,
                                      const char *arch, const char *variant);

/*
 * Sets the `local.unique` attribute written on local sources that have no
 * session id (Go's llb.LocalUniqueID), replacing the random one. A fixed id
 * makes local source digests reproducible. Returns 0, KILN_EINVAL or
 * KILN_ENOMEM.
 */
KILN_EXTERN int kiln_llb_set_local_unique_id(kiln_llb_t *b, const char *id);

/*
 * The first error recorded in the builder: returns its code (0 if none) and,
 * if `err` is not NULL and there is one, copies it into `err`.
 */
KILN_EXTERN int kiln_llb_error(const kiln_llb_t *b, kiln_error_t *err);

/* ------------------------------------------------------------------------
 * Sources
 *
 * Every source function returns a new state owned by the builder, or NULL
 * after recording an error.
 */

/* The empty filesystem (Go's llb.Scratch()): no op. Mounting it gives an
 * empty directory; marshaling it gives an empty definition. Never NULL for a
 * non-NULL builder. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_scratch(kiln_llb_t *b);

/*
 * A source op with a verbatim identifier ("scheme://..."), for source
 * plugins kiln does not know about. No capabilities are declared and no
 * normalization is done; attributes are added with kiln_llb_source_attr().
 * As in Go, only docker-image:// and oci-layout:// sources keep a platform,
 * and local:// sources without a session get `local.unique`.
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_source(kiln_llb_t *b,
                                              const char *identifier);

/*
 * Sets attribute `key` of the source op that produced `st` (any source,
 * including image, git, local and http ones, where it overrides what the
 * helpers set). Returns `st`.
 */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_source_attr(kiln_llb_state_t *st, const char *key, const char *value);

/*
 * A source made by the plugin that owns `scheme`: its translate() turns
 * `params` ("KEY=VALUE" strings, NULL-terminated; as for `kiln source
 * translate`) into the identifier and attrs, so any plugin's sources,
 * custom ones included, can be built from C. Plugins are found as by
 * kiln_source_translate() with the default path ($KILN_PLUGIN_PATH, the
 * installed and build-tree plugins). A plugin error (no plugin for the
 * scheme, a bad parameter) is recorded in the builder with the plugin's
 * message. No capabilities are declared.
 */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_plugin_source(kiln_llb_t *b, const char *scheme,
                       const char *const *params);

/*
 * A container image (Go's llb.Image). The reference is normalized as
 * Docker does: "busybox" becomes docker.io/library/busybox:latest,
 * "127.0.0.1:5000/busybox:latest" is kept, a digest is kept (no tag added).
 * An invalid reference records an error naming the reference and the rule
 * it breaks. The op carries the platform (kiln_llb_platform() to override).
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_image(kiln_llb_t *b, const char *ref);

typedef enum kiln_llb_resolve_mode {
    KILN_LLB_RESOLVE_DEFAULT = 0, /* registry, falling back to local store */
    KILN_LLB_RESOLVE_PULL = 1,    /* always the registry ("pull") */
    KILN_LLB_RESOLVE_LOCAL = 2,   /* local store first ("local") */
} kiln_llb_resolve_mode_t;

/* Image options; each applies to the image source that produced `st`,
 * records an error for any other op, and returns `st`. */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_image_resolve_mode(kiln_llb_state_t *st, kiln_llb_resolve_mode_t mode);
/* Use only the first `limit` (> 0) layers: `image.layerlimit`. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_image_layer_limit(kiln_llb_state_t *st,
                                                         int limit);
/* Usage-record type for garbage collection: "regular", "internal" (Go's
 * llb.MarkImageInternal) or "frontend". */
KILN_EXTERN kiln_llb_state_t *kiln_llb_image_record_type(kiln_llb_state_t *st,
                                                         const char *type);
/* The digest ("sha256:<hex>") the resolved manifest must have. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_image_checksum(kiln_llb_state_t *st,
                                                      const char *digest);

/*
 * A directory the client exposes in its session (Go's llb.Local). Without a
 * session id the op gets `local.unique`, the builder's unique id (see
 * kiln_llb_set_local_unique_id()).
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_local(kiln_llb_t *b, const char *name);

typedef enum kiln_llb_differ {
    KILN_LLB_DIFFER_METADATA = 0, /* resend files whose metadata changed */
    KILN_LLB_DIFFER_NONE = 1,     /* resend everything */
} kiln_llb_differ_t;

/* Local options; each applies to the local source that produced `st` and
 * returns `st`. Patterns are .dockerignore-style; include, exclude and
 * follow-path calls append one entry each to lists that are written as JSON
 * arrays, in call order. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_local_include(kiln_llb_state_t *st,
                                                     const char *pattern);
KILN_EXTERN kiln_llb_state_t *kiln_llb_local_exclude(kiln_llb_state_t *st,
                                                     const char *pattern);
KILN_EXTERN kiln_llb_state_t *kiln_llb_local_follow_path(kiln_llb_state_t *st,
                                                         const char *path);
KILN_EXTERN kiln_llb_state_t *
kiln_llb_local_shared_key_hint(kiln_llb_state_t *st, const char *hint);
/* Pins the source to one session ("<id>" or "<prefix>:<id>"); the op then
 * has no `local.unique`. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_local_session(kiln_llb_state_t *st,
                                                     const char *id);
/* Transfer strategy; `required` non-zero also declares the capability, so
 * that a daemon without it refuses the build. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_local_differ(kiln_llb_state_t *st,
                                                    kiln_llb_differ_t differ,
                                                    int required);

/*
 * A git repository (Go's llb.Git, current URL rules). `url` is an https,
 * http, git or ssh URL, an scp-style "user@host:path", or a bare
 * "host/path" (https is assumed). `fragment` may be NULL or "ref",
 * "ref:subdir". The identifier is git://<host><path>[#ref[:subdir]], shared
 * by all transports of one repository; `git.fullurl` keeps the remote (URL
 * without query and fragment). Auth secret names default to GIT_AUTH_TOKEN
 * and GIT_AUTH_HEADER and are always written. SSH remotes also get
 * `git.mountsshsock` ("default" unless set); known hosts are written only
 * when given (kiln never runs ssh-keyscan).
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_git(kiln_llb_t *b, const char *url,
                                           const char *fragment);

/* Git options; each applies to the git source that produced `st` and
 * returns `st`. Ref and subdir override the fragment's. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_git_ref(kiln_llb_state_t *st,
                                               const char *ref);
KILN_EXTERN kiln_llb_state_t *kiln_llb_git_subdir(kiln_llb_state_t *st,
                                                  const char *subdir);
/* Keep the .git directory in the result. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_git_keep_dir(kiln_llb_state_t *st);
/* Names of the session secrets holding a token / a whole Authorization
 * header; setting either declares the `source.git.httpauth` capability. */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_git_auth_token_secret(kiln_llb_state_t *st, const char *name);
KILN_EXTERN kiln_llb_state_t *
kiln_llb_git_auth_header_secret(kiln_llb_state_t *st, const char *name);
/* Appends known_hosts lines (a trailing newline is added if missing). Only
 * written for SSH remotes. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_git_known_ssh_hosts(kiln_llb_state_t *st,
                                                           const char *lines);
/* The SSH agent id to mount for SSH remotes (default "default"). */
KILN_EXTERN kiln_llb_state_t *kiln_llb_git_mount_ssh_sock(kiln_llb_state_t *st,
                                                          const char *id);
/* The commit (hex, a prefix is allowed) the resolved ref must match. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_git_checksum(kiln_llb_state_t *st,
                                                    const char *commit);
KILN_EXTERN kiln_llb_state_t *
kiln_llb_git_skip_submodules(kiln_llb_state_t *st);

/*
 * A file downloaded over HTTP(S) (Go's llb.HTTP); `url` must start with
 * http:// or https:// and is the identifier as given.
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_http(kiln_llb_t *b, const char *url);

/* HTTP options; each applies to the http source that produced `st` and
 * returns `st`. */
/* The expected digest of the content ("sha256:<hex>"). */
KILN_EXTERN kiln_llb_state_t *kiln_llb_http_checksum(kiln_llb_state_t *st,
                                                     const char *digest);
/* Name of the downloaded file in the result. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_http_filename(kiln_llb_state_t *st,
                                                     const char *name);
/* Permission bits of the file (& 0777; 0 leaves the daemon's default). */
KILN_EXTERN kiln_llb_state_t *kiln_llb_http_chmod(kiln_llb_state_t *st,
                                                  unsigned mode);
/* Owner of the file; zero ids are not written. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_http_chown(kiln_llb_state_t *st,
                                                  uint32_t uid, uint32_t gid);
/* Name of the session secret holding an Authorization header. */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_http_auth_header_secret(kiln_llb_state_t *st, const char *name);

/* ------------------------------------------------------------------------
 * Per-op metadata and constraints
 *
 * Each applies to the op that produced `st` (for an exec output, the exec;
 * for the result of a merge of one input, that input's op), records an
 * error for scratch, and returns `st`. Metadata never changes digests.
 */

/* The display name (description `llb.customname`). */
KILN_EXTERN kiln_llb_state_t *kiln_llb_custom_name(kiln_llb_state_t *st,
                                                   const char *name);
/* Any other description key. */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_description(kiln_llb_state_t *st, const char *key, const char *value);
/* Always re-run the op, never use the cache. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_ignore_cache(kiln_llb_state_t *st);
/* Groups the op's progress with others of the same id. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_progress_group(kiln_llb_state_t *st,
                                                      const char *id,
                                                      const char *name,
                                                      int weak);

typedef enum kiln_llb_export_cache {
    KILN_LLB_EXPORT_CACHE_DEFAULT = 0, /* the build's setting */
    KILN_LLB_EXPORT_CACHE_ON = 1,      /* always export this op's result */
    KILN_LLB_EXPORT_CACHE_OFF = 2,     /* never export it */
} kiln_llb_export_cache_t;

KILN_EXTERN kiln_llb_state_t *
kiln_llb_export_cache(kiln_llb_state_t *st, kiln_llb_export_cache_t mode);

/*
 * Sets Op.platform of an image source or exec op (other ops record an
 * error). Execs on the state, or on file-op, diff or exec results derived
 * from it, inherit it, as in Go. `variant` may be NULL. Unlike metadata this
 * changes the digest.
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_platform(kiln_llb_state_t *st,
                                                const char *os,
                                                const char *arch,
                                                const char *variant);

/* Adds a worker constraint filter (Go's llb.Require); changes the digest. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_require(kiln_llb_state_t *st,
                                               const char *filter);

/* ------------------------------------------------------------------------
 * Exec ops
 *
 * kiln_llb_exec() creates an exec op running `argv` on a root filesystem;
 * the kiln_llb_exec_* setters configure it and return the same exec (NULL
 * after an error). Only the platform is inherited from the root state:
 * environment, working directory ("/" by default), user and so on are the
 * exec's own.
 * Mounts are sorted by destination when marshaled, exactly as Go does, and
 * outputs are numbered in that order over the mounts that have one.
 */

/* Runs argv (NULL-terminated, at least one element) on `root`, which may be
 * scratch. The exec is owned by the builder. */
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec(kiln_llb_state_t *root,
                                           const char *const *argv);

/* Sets an environment variable; setting a key again moves it to the end
 * with the new value, as Go's AddEnv does. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_env(kiln_llb_exec_t *ex, const char *key, const char *value);
/* Working directory; a relative one is joined to the current one. */
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_cwd(kiln_llb_exec_t *ex,
                                               const char *dir);
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_user(kiln_llb_exec_t *ex,
                                                const char *user);
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_hostname(kiln_llb_exec_t *ex,
                                                    const char *hostname);

typedef enum kiln_llb_network {
    KILN_LLB_NET_SANDBOX = 0, /* the default: an isolated network */
    KILN_LLB_NET_HOST = 1,
    KILN_LLB_NET_NONE = 2,
} kiln_llb_network_t;

typedef enum kiln_llb_security {
    KILN_LLB_SECURITY_SANDBOX = 0,
    KILN_LLB_SECURITY_INSECURE = 1, /* privileged; needs daemon consent */
} kiln_llb_security_t;

KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_network(kiln_llb_exec_t *ex,
                                                   kiln_llb_network_t net);
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_security(kiln_llb_exec_t *ex,
                                                    kiln_llb_security_t sec);
/* Adds an /etc/hosts entry; `ip` is an IPv4 or IPv6 address, written in
 * Go's canonical form. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_extra_host(kiln_llb_exec_t *ex, const char *host, const char *ip);
/* Adds a resource limit ("nofile", "nproc", ...). */
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_ulimit(kiln_llb_exec_t *ex,
                                                  const char *name,
                                                  int64_t soft, int64_t hard);
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_cgroup_parent(kiln_llb_exec_t *ex,
                                                         const char *parent);
/* Exit codes that count as success (n >= 1); replaces earlier ones. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_valid_exit_codes(kiln_llb_exec_t *ex, const int *codes, size_t n);
/* Proxy variables, kept out of the cache key; any may be NULL. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_proxy_env(kiln_llb_exec_t *ex, const char *http_proxy,
                        const char *https_proxy, const char *ftp_proxy,
                        const char *no_proxy, const char *all_proxy);
/* Mounts the root read-only; kiln_llb_exec_root() then stands for the
 * unchanged root state. */
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_readonly_root(kiln_llb_exec_t *ex);

/*
 * Mount flags. READONLY: no output, the mount's state is `src` itself.
 * NO_OUTPUT: writable, but changes are dropped. CONTENT_CACHE_ON/OFF: force
 * content-based cache keys for the mount on or off (default: the daemon's
 * choice).
 */
#define KILN_LLB_MOUNT_READONLY          (1u << 0)
#define KILN_LLB_MOUNT_NO_OUTPUT         (1u << 1)
#define KILN_LLB_MOUNT_CONTENT_CACHE_ON  (1u << 2)
#define KILN_LLB_MOUNT_CONTENT_CACHE_OFF (1u << 3)

/*
 * Bind-mounts `src` (scratch for an empty directory) at `dest`. `selector`,
 * if not NULL, mounts only that path of `src`. Unless read-only or
 * no-output, the mount has an output: kiln_llb_exec_output(ex, dest).
 */
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_mount(kiln_llb_exec_t *ex,
                                                 const char *dest,
                                                 kiln_llb_state_t *src,
                                                 const char *selector,
                                                 unsigned flags);

typedef enum kiln_llb_cache_sharing {
    KILN_LLB_CACHE_SHARED = 0,  /* concurrent builds share it */
    KILN_LLB_CACHE_PRIVATE = 1, /* concurrent builds get their own */
    KILN_LLB_CACHE_LOCKED = 2,  /* concurrent builds wait */
} kiln_llb_cache_sharing_t;

/* A persistent cache directory `id` at `dest`, seeded from `src` (usually
 * scratch). No output. `flags`: KILN_LLB_MOUNT_READONLY and the
 * content-cache flags. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_cache(kiln_llb_exec_t *ex, const char *dest,
                    kiln_llb_state_t *src, const char *id,
                    kiln_llb_cache_sharing_t sharing, unsigned flags);
/* A tmpfs at `dest`; `size` in bytes, 0 for the default. No output. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_tmpfs(kiln_llb_exec_t *ex, const char *dest, int64_t size);

/* Secret and SSH flags. */
#define KILN_LLB_OPTIONAL (1u << 0) /* do not fail if the client lacks it */

/* Mounts session secret `id` as the file `dest`; `mode` < 0 means 0400. */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_secret(kiln_llb_exec_t *ex, const char *id, const char *dest,
                     uint32_t uid, uint32_t gid, int mode, unsigned flags);
/* Exposes session secret `id` as environment variable `name`. */
KILN_EXTERN kiln_llb_exec_t *kiln_llb_exec_secret_env(kiln_llb_exec_t *ex,
                                                      const char *id,
                                                      const char *name,
                                                      unsigned flags);
/*
 * Forwards SSH agent `id` (NULL or "" for the default agent) as a socket at
 * `target` (NULL for /run/buildkit/ssh_agent.N, N counting SSH sockets
 * from 0); `mode` < 0 means 0600. SSH_AUTH_SOCK is set to the first
 * socket unless the exec sets it.
 */
KILN_EXTERN kiln_llb_exec_t *
kiln_llb_exec_ssh(kiln_llb_exec_t *ex, const char *id, const char *target,
                  uint32_t uid, uint32_t gid, int mode, unsigned flags);

/* The root filesystem after the exec (output 0 unless mounts sort before
 * "/"). Owned by the builder. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_exec_root(kiln_llb_exec_t *ex);
/*
 * The state of the first mount at `dest` after the exec: its output, or for
 * a read-only mount the mounted state itself. Mounts without an output
 * (cache, tmpfs, no-output) and unknown destinations record an error.
 */
KILN_EXTERN kiln_llb_state_t *kiln_llb_exec_output(kiln_llb_exec_t *ex,
                                                   const char *dest);

/* ------------------------------------------------------------------------
 * File ops
 *
 * A file op applies a chain of actions to a base state, like Go's
 * st.File(llb.Mkdir(...).Mkfile(...).Copy(...)). Chains are built from
 * kiln_llb_actions(); each action function returns a new chain that extends
 * the one given (which stays valid: chains may branch). The kiln_llb_file_*
 * option setters change the last action of the chain they are given and
 * return it. Relative paths are resolved against "/".
 */

/* An empty chain to append actions to. Owned by the builder. */
KILN_EXTERN kiln_llb_file_t *kiln_llb_actions(kiln_llb_t *b);

/* mkdir flags */
#define KILN_LLB_MKDIR_PARENTS (1u << 0) /* create missing parents */

/* Creates directory `path` with permissions `mode` (& 0777). */
KILN_EXTERN kiln_llb_file_t *kiln_llb_mkdir(kiln_llb_file_t *fa,
                                            const char *path, unsigned mode,
                                            unsigned flags);
/* Creates file `path` holding data[0..len) with permissions `mode`
 * (& 0777). `data` may be NULL when len is 0. `flags` must be 0. */
KILN_EXTERN kiln_llb_file_t *kiln_llb_mkfile(kiln_llb_file_t *fa,
                                             const char *path, unsigned mode,
                                             const void *data, size_t len,
                                             unsigned flags);

/* rm flags */
#define KILN_LLB_RM_ALLOW_NOT_FOUND (1u << 0)
#define KILN_LLB_RM_ALLOW_WILDCARD  (1u << 1)

KILN_EXTERN kiln_llb_file_t *kiln_llb_rm(kiln_llb_file_t *fa, const char *path,
                                         unsigned flags);

/* copy flags */
#define KILN_LLB_COPY_FOLLOW_SYMLINKS         (1u << 0)
#define KILN_LLB_COPY_DIR_CONTENTS_ONLY       (1u << 1)
#define KILN_LLB_COPY_ATTEMPT_UNPACK          (1u << 2)
#define KILN_LLB_COPY_CREATE_DEST_PATH        (1u << 3)
#define KILN_LLB_COPY_ALLOW_WILDCARD          (1u << 4)
#define KILN_LLB_COPY_ALLOW_EMPTY_WILDCARD    (1u << 5)
#define KILN_LLB_COPY_ALWAYS_REPLACE_EXISTING (1u << 6)

/* Copies `src_path` of state `src` (scratch allowed) to `dest`; a trailing
 * "/" on `dest` is kept. The mode is kept unless kiln_llb_file_chmod(). */
KILN_EXTERN kiln_llb_file_t *kiln_llb_copy(kiln_llb_file_t *fa,
                                           kiln_llb_state_t *src,
                                           const char *src_path,
                                           const char *dest, unsigned flags);
/* Creates symlink `newpath` pointing to `oldpath` (both verbatim). `flags`
 * must be 0. Needs a BuildKit daemon >= v0.19. */
KILN_EXTERN kiln_llb_file_t *kiln_llb_symlink(kiln_llb_file_t *fa,
                                              const char *oldpath,
                                              const char *newpath,
                                              unsigned flags);

/* Owner of what mkdir, mkfile, copy or symlink create, as Go's
 * llb.WithUser: "user[:group]", each a name (resolved in the base state's
 * /etc/passwd and /etc/group), a number, or "root". */
KILN_EXTERN kiln_llb_file_t *kiln_llb_file_owner(kiln_llb_file_t *fa,
                                                 const char *user_group);
/* Owner by numeric ids (Go's llb.WithUIDGID). */
KILN_EXTERN kiln_llb_file_t *kiln_llb_file_owner_id(kiln_llb_file_t *fa,
                                                    uint32_t uid, uint32_t gid);
/* Modification time of what mkdir, mkfile, copy or symlink create, in
 * nanoseconds since the Unix epoch. */
KILN_EXTERN kiln_llb_file_t *kiln_llb_file_timestamp(kiln_llb_file_t *fa,
                                                     int64_t unix_nano);
/* Permissions of copied files (copy only). */
KILN_EXTERN kiln_llb_file_t *kiln_llb_file_chmod(kiln_llb_file_t *fa,
                                                 unsigned mode);
/* Copy only: append an include / exclude pattern. */
KILN_EXTERN kiln_llb_file_t *kiln_llb_file_include(kiln_llb_file_t *fa,
                                                   const char *pattern);
KILN_EXTERN kiln_llb_file_t *kiln_llb_file_exclude(kiln_llb_file_t *fa,
                                                   const char *pattern);

/* Applies the chain `fa` (at least one action) to `base` (scratch allowed)
 * and returns the resulting state. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_file(kiln_llb_state_t *base,
                                            kiln_llb_file_t *fa);

/* ------------------------------------------------------------------------
 * Merge and diff
 */

/*
 * Overlays inputs[0..n) in order (Go's llb.Merge). Scratch inputs are
 * dropped; if none is left the result is scratch, if one is left it is that
 * input itself, otherwise a merge op. `inputs` is borrowed.
 */
KILN_EXTERN kiln_llb_state_t *
kiln_llb_merge(kiln_llb_t *b, kiln_llb_state_t *const *inputs, size_t n);

/* The changes from `lower` to `upper` (Go's llb.Diff). A scratch lower
 * gives `upper` itself. */
KILN_EXTERN kiln_llb_state_t *kiln_llb_diff(kiln_llb_state_t *lower,
                                            kiln_llb_state_t *upper);

/* ------------------------------------------------------------------------
 * Marshaling
 */

/*
 * Marshals the graph that produces `result` into a pb.Definition, as Go's
 * State.Marshal does: every op once (deduplicated by digest), inputs before
 * the ops using them, then the terminal op; metadata for every op. Scratch
 * gives an empty definition (len 0). May be called more than once.
 *
 * On success *out holds the bytes (never NULL) and *len their count; free
 * *out with kiln_free(). Returns the builder's recorded error if there is
 * one, KILN_EINVAL for a NULL result or a cycle, KILN_ENOMEM; `err` gets the
 * message.
 */
KILN_EXTERN int kiln_llb_marshal(kiln_llb_t *b, kiln_llb_state_t *result,
                                 uint8_t **out, size_t *len, kiln_error_t *err);

/* As kiln_llb_marshal(), writing the definition to `fp` (not closed).
 * Adds KILN_EIO for write errors. */
KILN_EXTERN int kiln_llb_write(kiln_llb_t *b, kiln_llb_state_t *result,
                               FILE *fp, kiln_error_t *err);

/* As kiln_llb_write(), to file descriptor `fd` (not closed); retries short
 * writes and EINTR. */
KILN_EXTERN int kiln_llb_write_fd(kiln_llb_t *b, kiln_llb_state_t *result,
                                  int fd, kiln_error_t *err);

#ifdef __cplusplus
}
#endif

#endif /* KILN_LLB_H */
