/*
 * The local source plugin's internals: a directory of the build's host
 * (kiln build --local NAME=DIR), selected with BuildKit's include, exclude
 * and follow-path rules, pinned by a checksum of its content and copied
 * into the store.
 *
 *   local.c   descriptor, resolve() and fetch(), trees kept between them
 *   params.c  translate(): parameters -> identifier + attrs, as llb.Local
 *   json.c    Go json.Marshal of string lists, and parsing them back
 *   walk.c    the selected tree (fsutil's filtered walk)
 *   hash.c    content hashes (metadata cache + threads) and the pin
 *   cache.c   the metadata cache file under the plugin's cache directory
 *   copy.c    fetch(): the tree into the fetch directory
 */
#ifndef KILN_PLUGIN_LOCAL_H
#define KILN_PLUGIN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kiln/plugin.h>

#define LC_HASH_LEN 32 /* SHA-256 */

/* The plugin's state (init() to teardown()): the host, and the trees
 * resolve() pinned, kept for fetch() (local.c). */
typedef struct lc_state lc_state_t;
const kiln_host_t *lc_state_host(const lc_state_t *s);

/* What a hook call works with: the host and its job. */
typedef struct lc_ctx {
    const kiln_host_t *host;
    kiln_job_t *job;
    const char *name; /* the local name, for messages */
    const char *root; /* the absolute directory */
} lc_ctx_t;

/* A list of strings (patterns, paths), each malloc'd. */
typedef struct lc_strv {
    char **v;
    size_t n;
    size_t cap;
} lc_strv_t;

int lc_strv_push(lc_strv_t *s, const char *str, size_t len);
void lc_strv_free(lc_strv_t *s);

/* One selected entry of the tree. */
typedef struct lc_entry {
    char *rel;  /* '/'-separated path below the root */
    char *link; /* symlink target; NULL for others */
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint64_t ino;
    uint64_t dev;
    /* Regular files: the SHA-256 of the content, and whether it was
     * computed when the metadata could still change unseen (see hash.c). */
    unsigned char hash[LC_HASH_LEN];
    bool racy;
} lc_entry_t;

/* The selected tree, in walk order: parents first, names in strcmp order
 * within a directory. */
typedef struct lc_tree {
    lc_entry_t *v;
    size_t n;
    size_t cap;
    int64_t seen_ns; /* wall clock before the walk began */
} lc_tree_t;

void lc_tree_free(lc_tree_t *t);

/* The source's attrs, parsed. */
typedef struct lc_spec {
    lc_strv_t include;
    lc_strv_t exclude;
    lc_strv_t follow;
} lc_spec_t;

/* json.c. Appends Go's json.Marshal of v[0..n) (a []string) to *out
 * (malloc'd, NUL-terminated; *out may be NULL). 0 or -ENOMEM. */
int lc_json_marshal(const lc_strv_t *v, char **out);
/* Parses a JSON array of strings into *out (appended). 0, -EINVAL or
 * -ENOMEM. */
int lc_json_parse(const char *s, lc_strv_t *out);

/* params.c */
int lc_translate(void *state, kiln_job_t *job, const char *scheme,
                 const kiln_attrs_t *params, char *ident, size_t ident_size,
                 kiln_attrs_t *attrs);
/* Reads the pattern attrs of a source into *spec (freed with
 * lc_spec_free()). Fails with a message on malformed JSON. */
int lc_spec_parse(const lc_ctx_t *c, const kiln_attrs_t *attrs,
                  lc_spec_t *spec);
void lc_spec_free(lc_spec_t *spec);

/* walk.c. The selected tree of c->root (metadata only; no hashes). */
int lc_walk(const lc_ctx_t *c, const lc_spec_t *spec, lc_tree_t *out);
/* Go's path.Clean of a relative path, in place. */
void lc_path_clean(char *p);

/* hash.c. Fills the hash of every regular file of `t`, from the cache
 * file `cache_path` (may be NULL) when metadata is unchanged, and writes
 * the cache back. */
int lc_hash_tree(const lc_ctx_t *c, lc_tree_t *t, const char *cache_path);
/* Hashes one open file: the whole content, 1 MiB at a time. buf holds
 * LC_BUF_SIZE bytes. 0 or -errno. */
#define LC_BUF_SIZE (1u << 20)
int lc_hash_fd(int fd, void *buf, unsigned char out[LC_HASH_LEN],
               uint64_t *bytes);
/* "sha256:<hex>" of the tree into pin (72 bytes). */
int lc_pin(const lc_tree_t *t, char pin[72]);
/* True if st is the file e describes, unchanged (size, times, inode,
 * device, mode). */
struct stat;
bool lc_same_meta(const lc_entry_t *e, const struct stat *st);
/* Opens rel below dir_fd for reading, never following a symlink. */
int lc_open_read(int dir_fd, const char *rel);
/* True if metadata recorded at seen_ns may hide a later change. */
bool lc_is_racy(int64_t ctime_ns, int64_t mtime_ns, int64_t seen_ns);
int64_t lc_now_ns(void);

/* cache.c: the regular files of a previous walk whose hashes can be
 * trusted while their metadata is unchanged, in strcmp order of rel. */
typedef struct lc_cache {
    lc_entry_t *v; /* rel points into buf; link is NULL */
    size_t n;
    unsigned char *buf;
} lc_cache_t;

/* Loads `path`; a missing, truncated or corrupt file is an empty cache. */
void lc_cache_load(const char *path, lc_cache_t *out);
/* The record of rel, or NULL. */
const lc_entry_t *lc_cache_find(const lc_cache_t *c, const char *rel);
/* Writes the regular files of `t` that are not racy to `path`, atomically
 * (temp file + rename, under a flock). */
int lc_cache_save(const char *path, const lc_tree_t *t);
void lc_cache_free(lc_cache_t *c);

/* copy.c: copies the tree from c->root into dest_dir, checking that
 * nothing changed since it was hashed. */
int lc_copy_tree(const lc_ctx_t *c, const lc_tree_t *t, const char *dest_dir);

/* Error helpers (local.c): "local source 'NAME': ..." */
int lc_fail_errno(const lc_ctx_t *c, int err, const char *what,
                  const char *rel);
int lc_fail_changed(const lc_ctx_t *c, const char *rel);
int lc_oom(const lc_ctx_t *c);

#endif
