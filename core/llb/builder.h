/*
 * Internals of the definition builder (include/kiln/llb.h), shared by
 * builder.c (lifecycle, states, metadata, merge/diff), builder_source.c,
 * builder_exec.c, builder_file.c, builder_marshal.c and builder_util.c.
 *
 * Everything a builder hands out lives in its arena and is freed at once by
 * kiln_llb_free(). Ops are plain descriptions; they are turned into pb.Op
 * bytes only while marshaling, in a scratch arena that is dropped after.
 */
#ifndef KILN_LLB_BUILDER_H
#define KILN_LLB_BUILDER_H

#include <kiln/llb.h>

#include "oci/registry.h"
#include "internal.h"
#include "llb/pbenc.h"
#include "ops.pb-c.h"

/* ---- arena ---- */

typedef struct kiln__arena_chunk kiln__arena_chunk_t;

typedef struct kiln__arena {
    kiln__arena_chunk_t *head;
} kiln__arena_t;

/* Zeroed memory that lives until kiln__arena_free(); NULL when out of
 * memory or if n overflows. */
void *kiln__arena_alloc(kiln__arena_t *a, size_t n);
void *kiln__arena_dup(kiln__arena_t *a, const void *p, size_t n);
char *kiln__arena_strdup(kiln__arena_t *a, const char *s);
void kiln__arena_free(kiln__arena_t *a);

/* A growable array of pointers whose storage is in an arena. */
typedef struct kiln__vec {
    void **v;
    size_t n;
    size_t cap;
} kiln__vec_t;

bool kiln__vec_push(kiln__arena_t *a, kiln__vec_t *vec, void *item);

/* A key/value pair, for attrs, descriptions and environments. */
typedef struct kiln__kv {
    const char *key;
    const char *value;
} kiln__kv_t;

/* ---- builder objects ---- */

typedef struct kiln__platform {
    const char *os;
    const char *arch;
    const char *variant; /* "" for none */
} kiln__platform_t;

enum kiln__llb_kind {
    KILN_LLB_SOURCE,
    KILN_LLB_EXEC,
    KILN_LLB_FILE,
    KILN_LLB_MERGE,
    KILN_LLB_DIFF,
};

enum kiln__src_kind {
    KILN_SRC_GENERIC,
    KILN_SRC_IMAGE,
    KILN_SRC_LOCAL,
    KILN_SRC_GIT,
    KILN_SRC_HTTP,
};

typedef struct kiln__src kiln__src_t;
typedef struct kiln__mount kiln__mount_t;
typedef struct kiln__op kiln__op_t;

/* Marshal-time facts about an op, valid while op->gen == b->gen. */
typedef struct kiln__op_mark {
    unsigned gen;
    int visit; /* 1 on the DFS stack, 2 encoded */
    char digest[KILN_DIGEST_STRLEN + 1];
} kiln__op_mark_t;

struct kiln__op {
    kiln_llb_t *b;
    enum kiln__llb_kind kind;
    /* OpMetadata */
    bool ignore_cache;
    kiln__vec_t desc;  /* kiln__kv_t *, later keys replace earlier ones */
    int export_cache;  /* -1 unset, else the ExportCache value */
    const char *pg_id; /* progress group, NULL for none */
    const char *pg_name;
    bool pg_weak;
    /* Constraints */
    const kiln__platform_t *platform; /* explicit Op.platform, or NULL */
    kiln__vec_t filters;              /* char *, worker constraints */
    union {
        kiln__src_t *src;
        kiln_llb_exec_t *exec;
        struct kiln__file_op *file;
        struct kiln__merge_op *merge;
        struct kiln__diff_op *diff;
    } u;
    kiln__op_mark_t mark;
};

/* What a git URL turns into: identifier id (without "git://") and remote. */
typedef struct kiln__git_url {
    bool ok;            /* parsed; false: the raw url is used */
    bool ssh;           /* an SSH remote */
    const char *remote; /* git.fullurl */
    const char *id;     /* host + cleaned path, or the raw url */
} kiln__git_url_t;

/* A source op: the settings of the helper that made it. Identifier, attrs
 * and caps are derived from them when marshaling. */
struct kiln__src {
    enum kiln__src_kind kind;
    const char *identifier; /* generic, image (normalized), http */
    kiln__vec_t attrs;      /* kiln__kv_t *: kiln_llb_source_attr() */
    /* image */
    int resolve_mode;
    int layer_limit; /* 0: unset */
    const char *record_type;
    const char *checksum; /* image, git and http */
    /* local */
    const char *name;
    kiln__vec_t include, exclude, follow; /* char * */
    const char *shared_key_hint;
    const char *session;
    int differ; /* -1 unset */
    bool differ_required;
    /* git */
    kiln__git_url_t git;
    const char *ref, *subdir;
    bool keep_dir, auth_cap, skip_submodules;
    const char *auth_token, *auth_header; /* git and http */
    const char *known_hosts, *ssh_sock;
    /* http */
    const char *filename;
    unsigned perm;
    uint32_t uid, gid;
};

struct kiln_llb_state {
    kiln_llb_t *b;
    kiln__op_t *op;           /* NULL for scratch */
    kiln__mount_t *mount;     /* the exec mount this output belongs to */
    kiln_llb_state_t *parent; /* where the platform is inherited from */
    /* The platform, memoized while marshaling (valid if plat_gen == gen). */
    unsigned plat_gen;
    const kiln__platform_t *plat;
};

struct kiln__mount {
    const char *dest;
    kiln_llb_state_t *src; /* scratch for none */
    const char *selector;  /* "" for none */
    unsigned flags;        /* KILN_LLB_MOUNT_* */
    enum { KILN_MOUNT_BIND, KILN_MOUNT_CACHE, KILN_MOUNT_TMPFS } type;
    const char *cache_id;
    int sharing;
    int64_t tmpfs_size;
    kiln_llb_state_t *out; /* this mount's output state, once asked for */
    int64_t out_index;     /* set while marshaling; -1 for none */
};

#define CONTENT_CACHE_MASK                                                     \
    (KILN_LLB_MOUNT_CONTENT_CACHE_ON | KILN_LLB_MOUNT_CONTENT_CACHE_OFF)

struct kiln__secret {
    const char *id;
    const char *dest; /* file secret, or NULL */
    const char *env;  /* env secret, or NULL */
    uint32_t uid, gid, mode;
    bool optional;
};

struct kiln__ssh {
    const char *id;
    const char *target; /* NULL: /run/buildkit/ssh_agent.N */
    uint32_t uid, gid, mode;
    bool optional;
};

struct kiln_llb_exec {
    kiln__op_t *op;
    kiln_llb_state_t *base;
    kiln__vec_t argv; /* char * */
    kiln__vec_t env;  /* kiln__kv_t * */
    const char *cwd;
    const char *user;
    const char *hostname;
    int network;
    int security;
    kiln__vec_t hosts;   /* kiln__kv_t *: host, ip */
    kiln__vec_t ulimits; /* struct kiln__ulimit * */
    const char *cgroup_parent;
    int32_t *exit_codes;
    size_t n_exit_codes;
    const char *proxy[5]; /* http, https, ftp, no, all; NULL if unset */
    bool has_proxy;
    kiln__vec_t mounts;  /* kiln__mount_t *, in call order */
    kiln__mount_t *root; /* mounts.v[0] */
    kiln__vec_t secrets; /* struct kiln__secret * */
    kiln__vec_t ssh;     /* struct kiln__ssh * */
};

struct kiln__ulimit {
    const char *name;
    int64_t soft, hard;
};

enum kiln__action_kind {
    KILN_ACT_NONE, /* the empty chain */
    KILN_ACT_MKDIR,
    KILN_ACT_MKFILE,
    KILN_ACT_RM,
    KILN_ACT_COPY,
    KILN_ACT_SYMLINK,
};

typedef struct kiln__user_opt {
    bool set;
    const char *name; /* by name, or NULL for by id */
    uint32_t id;
} kiln__user_opt_t;

struct kiln_llb_file {
    kiln_llb_t *b;
    kiln_llb_file_t *prev; /* NULL for the first action */
    enum kiln__action_kind kind;
    const char *path;  /* mkdir/mkfile/rm path, copy src, symlink oldpath */
    const char *path2; /* copy dest, symlink newpath */
    unsigned mode;
    int32_t copy_mode; /* -1 keep */
    const uint8_t *data;
    size_t len;
    unsigned flags;
    bool has_owner;
    kiln__user_opt_t user, group;
    int64_t timestamp;            /* -1 unset */
    kiln__vec_t include, exclude; /* char * */
    kiln_llb_state_t *src;        /* copy source */
    /* marshal-time, valid while gen matches the op being encoded */
    unsigned gen;
    int64_t target;
    int64_t base;
};

struct kiln__file_op {
    kiln_llb_state_t *base;
    kiln_llb_file_t *last;
};

struct kiln__merge_op {
    kiln_llb_state_t **inputs;
    size_t n;
};

struct kiln__diff_op {
    kiln_llb_state_t *lower; /* never scratch (Go short-cuts that) */
    kiln_llb_state_t *upper;
};

struct kiln_llb {
    kiln__arena_t arena;
    enum kiln__pb_order order;
    bool legacy;
    kiln__platform_t platform;
    const char *local_unique;
    kiln_error_t err; /* err.code != 0: the first error */
    kiln_llb_state_t scratch;
    kiln_llb_file_t empty_chain;
    unsigned gen; /* marshal generation */
    unsigned action_gen;
};

/* ---- helpers (builder.c) ---- */

/* Records the first error of the builder (later ones are dropped). */
void kiln__llb_fail(kiln_llb_t *b, int code, const char *fmt, ...)
    KILN_PRINTF(3, 4);
/* Records "fn: <what> is NULL" unless an error is already recorded; for
 * propagation of NULL arguments. */
void kiln__llb_null(kiln_llb_t *b, const char *fn, const char *what);

void *kiln__llb_alloc(kiln_llb_t *b, size_t n);
/* Copies `s` into the arena as *out, checking it is valid UTF-8; records an
 * error naming `fn` and `what` and returns false otherwise. A NULL `s` is an
 * error unless `optional`, when *out is NULL and the result true. */
bool kiln__llb_str(kiln_llb_t *b, const char *fn, const char *what,
                   const char *s, bool optional, const char **out);
bool kiln__llb_push(kiln_llb_t *b, kiln__vec_t *vec, void *item);
/* Sets key in a kiln__kv_t * list; `replace_moves` moves the key to the end
 * (Go's EnvList.AddOrReplace) instead of replacing in place. */
bool kiln__llb_kv_set(kiln_llb_t *b, kiln__vec_t *vec, const char *key,
                      const char *value, bool replace_moves);

kiln__op_t *kiln__llb_op_new(kiln_llb_t *b, enum kiln__llb_kind kind);
kiln_llb_state_t *kiln__llb_state_new(kiln_llb_t *b, kiln__op_t *op,
                                      kiln_llb_state_t *parent);

/* Follows read-only mount outputs to the state they stand for. */
kiln_llb_state_t *kiln__llb_resolve(kiln_llb_state_t *st);
/* The platform a state carries, or NULL for the builder default. */
const kiln__platform_t *kiln__llb_state_platform(kiln_llb_state_t *st);
const kiln__platform_t *kiln__llb_platform_new(kiln_llb_t *b, const char *fn,
                                               const char *os, const char *arch,
                                               const char *variant);

/* ---- path and text helpers (builder_util.c) ---- */

/* Go's path.Clean, into arena memory. */
char *kiln__path_clean(kiln__arena_t *a, const char *p);
/* Go's path.Join of two elements. */
char *kiln__path_join(kiln__arena_t *a, const char *dir, const char *p);
/* BuildKit's normalizePath(parent "/", p, keepSlash). */
char *kiln__llb_normalize_path(kiln__arena_t *a, const char *p,
                               bool keep_slash);
/* Go's json.Marshal of a []string (legacy: \b and \f as \u00XX, as Go
 * before 1.22). */
char *kiln__json_strings(kiln__arena_t *a, char *const *v, size_t n,
                         bool legacy);
/* Go's net.IP.String() of a parsed address; false if `ip` is not one. */
bool kiln__ip_canonical(const char *ip, char out[64]);
/* The host platform as Go's runtime names it. */
void kiln__host_platform(const char **os, const char **arch,
                         const char **variant);
/* 25 random base-36 characters, as BuildKit's identity.NewID(). */
int kiln__random_id(char out[26]);

/* ---- sources (builder_source.c) ---- */

void kiln__git_parse(kiln__arena_t *a, const char *url, kiln__git_url_t *out);

/* ---- encoding (per op kind) ---- */

/* A set of capability ids (static strings), kept sorted. */
typedef struct kiln__caps {
    const char *v[48];
    size_t n;
} kiln__caps_t;

void kiln__caps_add(kiln__caps_t *c, const char *cap);

/* The marshal context shared by the encoders. */
typedef struct kiln__enc {
    kiln_llb_t *b;
    kiln__arena_t tmp;
    kiln_error_t *err;
} kiln__enc_t;

/* The resolved inputs of an op (kiln_llb_state_t *, never scratch) in Go's
 * Vertex.Inputs() order, which is the order of the post-order walk. */
int kiln__llb_op_inputs(kiln__enc_t *e, kiln__op_t *op, kiln__vec_t *out);

/* Adds the pb.Input (Pb__Input *) for a resolved non-scratch state to
 * `inputs`, reusing an equal one (same digest and index); returns its index,
 * or -1 when out of memory. */
int64_t kiln__llb_add_input(kiln__enc_t *e, kiln__vec_t *inputs,
                            kiln_llb_state_t *st);
/* The pb.Input fields a resolved state stands for. */
int64_t kiln__llb_output_index(const kiln_llb_state_t *st);

/* Fills Op.platform / Op.constraints. `plat` NULL: no platform. */
int kiln__llb_constraints(kiln__enc_t *e, Pb__Op *pop, kiln__op_t *op,
                          const kiln__platform_t *plat);

/* True for sources that keep Op.platform (docker-image://, oci-layout://). */
bool kiln__llb_src_has_platform(const kiln__src_t *src);

int kiln__llb_encode_source(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                            kiln__caps_t *caps);
int kiln__llb_encode_exec(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                          kiln__caps_t *caps);
int kiln__llb_encode_file(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                          kiln__caps_t *caps);
int kiln__llb_exec_inputs(kiln__enc_t *e, kiln__op_t *op, kiln__vec_t *out);
int kiln__llb_file_inputs(kiln__enc_t *e, kiln__op_t *op, kiln__vec_t *out);

/* Allocation in the marshal arena; records KILN_ENOMEM in e->err. */
void *kiln__enc_alloc(kiln__enc_t *e, size_t n);
int kiln__enc_oom(kiln__enc_t *e);

#define KILN_ENC_NEW(e, type, init)                                            \
    kiln__enc_new_msg((e), sizeof(type), &(type)init)
void *kiln__enc_new_msg(kiln__enc_t *e, size_t size, const void *init);

#endif
