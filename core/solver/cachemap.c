/*
 * Cache maps of exec, merge, diff, build and passthrough ops, the source
 * and record digest helpers, and what all cache maps share. The file op
 * lives in cachemap_file.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver/cachemap.h"
#include "solver/cachemap_int.h"
#include "solver/pbjson.h"
#include "util/gopath.h"

kiln__cachemap_t *kiln__cm_new(size_t n_deps)
{
    kiln__cachemap_t *cm = calloc(1, sizeof(*cm));

    if (cm == NULL) {
        return NULL;
    }
    cm->n_deps = n_deps;
    cm->deps = calloc(n_deps ? n_deps : 1, sizeof(*cm->deps));
    if (cm->deps == NULL) {
        free(cm);
        return NULL;
    }
    return cm;
}

static void free_sels(kiln__cm_selector_t *sels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(sels[i].path);
    }
    free(sels);
}

void kiln__cachemap_free(kiln__cachemap_t *cm)
{
    if (cm == NULL) {
        return;
    }
    for (size_t i = 0; i < cm->n_deps; i++) {
        kiln__cm_dep_t *d = &cm->deps[i];
        for (size_t k = 0; k < d->n_paths; k++) {
            free(d->paths[k]);
        }
        free(d->paths);
        free_sels(d->content_sels, d->n_content);
    }
    free(cm->deps);
    free(cm->json);
    free(cm);
}

/* Arrays grow by doubling: capacity is the next power of two >= n. */
static bool needs_growth(size_t n)
{
    return (n & (n - 1)) == 0;
}

int kiln__cm_dep_push_path(kiln__cm_dep_t *d, char *path)
{
    if (path == NULL) {
        return KILN_ENOMEM;
    }
    if (needs_growth(d->n_paths)) {
        char **p =
            realloc(d->paths, (d->n_paths ? d->n_paths * 2 : 1) * sizeof(*p));
        if (p == NULL) {
            free(path);
            return KILN_ENOMEM;
        }
        d->paths = p;
    }
    d->paths[d->n_paths++] = path;
    return 0;
}

int kiln__cm_dep_push_sel(kiln__cm_dep_t *d, const kiln__cm_selector_t *s)
{
    if (s->path == NULL) {
        return KILN_ENOMEM;
    }
    if (needs_growth(d->n_content)) {
        kiln__cm_selector_t *p =
            realloc(d->content_sels,
                    (d->n_content ? d->n_content * 2 : 1) * sizeof(*p));
        if (p == NULL) {
            free(s->path);
            return KILN_ENOMEM;
        }
        d->content_sels = p;
    }
    d->content_sels[d->n_content++] = *s;
    return 0;
}

int kiln__cm_finish(kiln__cachemap_t *cm, kiln__buf_t *json)
{
    int rc;

    if (!kiln__buf_reserve(json, 0)) {
        kiln__buf_free(json);
        return KILN_ENOMEM;
    }
    cm->json = (char *)json->data;
    cm->json_len = json->len;
    *json = (kiln__buf_t)KILN_BUF_INIT;
    rc = kiln__sha256_digest(cm->json, cm->json_len, cm->digest);
    return rc;
}

int kiln__cachemap_join_digest(char *const *strs, size_t n,
                               char out[KILN_DIGEST_STRLEN + 1])
{
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            kiln__buf_putc(&b, 0);
        }
        kiln__buf_puts(&b, strs[i]);
    }
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return KILN_ENOMEM;
    }
    rc = kiln__sha256_digest(b.data ? (const void *)b.data : "", b.len, out);
    kiln__buf_free(&b);
    return rc;
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is p2 a parent directory of p1 by BuildKit's string test? */
static bool has_dir_prefix(const char *p1, const char *p2,
                           enum kiln__cm_compat compat)
{
    size_t l = strlen(p2);

    if (strncmp(p1, p2, l) != 0) {
        return false;
    }
    if (compat == KILN_CM_CURRENT && l > 0 && p2[l - 1] == '/') {
        return true; /* forceTrailingSlash keeps it as is */
    }
    return p1[l] == '/';
}

int kiln__cm_dedupe_paths(char *const *in, size_t n,
                          enum kiln__cm_compat compat, const char ***out,
                          size_t *n_out)
{
    const char **v = malloc((n ? n : 1) * sizeof(*v));
    size_t m = 0, k = 0;

    if (v == NULL) {
        return KILN_ENOMEM;
    }
    if (n > 0) {
        memcpy(v, in, n * sizeof(*v));
        qsort(v, n, sizeof(*v), compare_str);
    }
    for (size_t i = 0; i < n; i++) {
        if (m == 0 || strcmp(v[m - 1], v[i]) != 0) {
            v[m++] = v[i];
        }
    }
    for (size_t i = 0; i < m; i++) {
        bool skip = false;
        for (size_t j = 0; j < m && !skip; j++) {
            skip = i != j && has_dir_prefix(v[i], v[j], compat);
        }
        if (!skip) {
            v[k++] = v[i];
        }
    }
    *out = v;
    *n_out = k;
    return 0;
}

/* ---- exec ---------------------------------------------------------- */

/* A shallow copy of an ExecOp with BuildKit's cache-map normalisation. */
typedef struct exec_norm {
    Pb__ExecOp exec;
    Pb__Meta meta;
    Pb__HostIP *hosts;
    Pb__HostIP **host_ptrs;
    Pb__Mount *mounts;
    Pb__Mount **mount_ptrs;
    Pb__CacheOpt *copts;
} exec_norm_t;

static void exec_norm_free(exec_norm_t *n)
{
    free(n->hosts);
    free(n->host_ptrs);
    free(n->mounts);
    free(n->mount_ptrs);
    free(n->copts);
}

/* checkShouldClearCacheOpts, inverted: a Dockerfile default cache mount
 * (ID == dest or "<namespace>/<dest>", sharing SHARED) keeps its options. */
static bool keeps_cache_id(const Pb__Mount *m)
{
    const char *slash = strchr(m->cacheopt->id, '/');

    if (m->cacheopt->sharing != PB__CACHE_SHARING_OPT__SHARED) {
        return false;
    }
    return strcmp(m->cacheopt->id, m->dest) == 0 ||
           (slash != NULL && strcmp(slash + 1, m->dest) == 0);
}

/* The single-mount case old BuildKit versions left out of the JSON. */
static bool plain_root(const Pb__Mount *m)
{
    return strcmp(m->dest, "/") == 0 && m->selector[0] == 0 && !m->readonly &&
           m->mounttype == PB__MOUNT_TYPE__BIND && m->cacheopt == NULL &&
           m->sshopt == NULL && m->secretopt == NULL && m->resultid[0] == 0;
}

static void exec_norm_mounts(exec_norm_t *n, const Pb__ExecOp *e,
                             enum kiln__cm_compat compat)
{
    for (size_t i = 0; i < e->n_mounts; i++) {
        Pb__Mount *m = &n->mounts[i];

        *m = *e->mounts[i];
        m->selector = (char *)"";
        if (compat == KILN_CM_CURRENT && m->cacheopt != NULL &&
            !keeps_cache_id(m)) {
            n->copts[i] = *m->cacheopt;
            n->copts[i].id = (char *)"";
            n->copts[i].sharing = PB__CACHE_SHARING_OPT__SHARED;
            m->cacheopt = &n->copts[i];
        }
        n->mount_ptrs[i] = m;
    }
    n->exec.mounts = n->mount_ptrs;
    if (e->n_mounts == 1 && plain_root(&n->mounts[0])) {
        n->exec.n_mounts = 0;
        n->exec.mounts = NULL;
    }
}

static int exec_normalize(exec_norm_t *n, const Pb__ExecOp *e,
                          enum kiln__cm_compat compat)
{
    size_t nh = e->meta->n_extrahosts, nm = e->n_mounts;

    memset(n, 0, sizeof(*n));
    n->exec = *e;
    n->meta = *e->meta;
    n->exec.meta = &n->meta;
    n->meta.proxy_env = NULL;
    n->hosts = calloc(nh ? nh : 1, sizeof(*n->hosts));
    n->host_ptrs = calloc(nh ? nh : 1, sizeof(*n->host_ptrs));
    n->mounts = calloc(nm ? nm : 1, sizeof(*n->mounts));
    n->mount_ptrs = calloc(nm ? nm : 1, sizeof(*n->mount_ptrs));
    n->copts = calloc(nm ? nm : 1, sizeof(*n->copts));
    if (!n->hosts || !n->host_ptrs || !n->mounts || !n->mount_ptrs ||
        !n->copts) {
        exec_norm_free(n);
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < nh; i++) {
        n->hosts[i] = *e->meta->extrahosts[i];
        n->hosts[i].ip = (char *)"";
        n->host_ptrs[i] = &n->hosts[i];
    }
    n->meta.extrahosts = n->host_ptrs;
    exec_norm_mounts(n, e, compat);
    return 0;
}

static void write_platform(kiln__gojson_t *w, const Pb__Platform *p,
                           enum kiln__cm_compat compat)
{
    kiln__gojson_key(w, "OS");
    kiln__gojson_cstr(w, p->os);
    kiln__gojson_key(w, "Arch");
    kiln__gojson_cstr(w, p->architecture);
    if (p->variant[0] != 0) {
        kiln__gojson_key(w, "Variant");
        kiln__gojson_cstr(w, p->variant);
    }
    if (compat != KILN_CM_CURRENT) {
        return; /* v0.11 had Variant only */
    }
    if (p->osversion[0] != 0) {
        kiln__gojson_key(w, "OSVersion");
        kiln__gojson_cstr(w, p->osversion);
    }
    if (p->n_osfeatures > 0) {
        kiln__gojson_key(w, "OSFeatures");
        kiln__gojson_begin_array(w);
        for (size_t i = 0; i < p->n_osfeatures; i++) {
            kiln__gojson_cstr(w, p->osfeatures[i]);
        }
        kiln__gojson_end_array(w);
    }
}

static int exec_json(const Pb__ExecOp *e, const Pb__Platform *p,
                     enum kiln__cm_compat compat, kiln__buf_t *out)
{
    kiln__gojson_t w;
    exec_norm_t n;
    int rc = exec_normalize(&n, e, compat);

    if (rc < 0) {
        return rc;
    }
    kiln__gojson_init(&w, out, kiln__cm_json_flags(compat));
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "Type");
    kiln__gojson_cstr(&w, "buildkit.exec.v0");
    kiln__gojson_key(&w, "Exec");
    rc = kiln__pbjson_write(&w, &n.exec.base, compat != KILN_CM_CURRENT);
    write_platform(&w, p, compat);
    kiln__gojson_end_object(&w);
    exec_norm_free(&n);
    if (rc == 0 && !kiln__gojson_ok(&w)) {
        rc = kiln__buf_ok(out) ? KILN_EINVAL : KILN_ENOMEM;
    }
    return rc;
}

static int dep_selector_digest(kiln__cm_dep_t *d)
{
    if (d->n_paths == 0) {
        return 0;
    }
    return kiln__cachemap_join_digest(d->paths, d->n_paths, d->selector);
}

/* Current getMountDeps: every mounted input gets a selector; the last
 * mount of an input decides its content key. */
static int exec_mount_current(kiln__cachemap_t *cm, const Pb__Mount *m,
                              size_t i, kiln_error_t *err)
{
    kiln__cm_dep_t *d = &cm->deps[m->input];
    char *sel = kiln__gopath_join_root(m->selector);
    bool content;

    content = m->output == -1 || m->readonly ||
              (sel != NULL && strcmp(sel, "/") == 0);
    if (kiln__cm_dep_push_path(d, sel) < 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (m->contentcache == PB__MOUNT_CONTENT_CACHE__OFF) {
        content = false;
    } else if (m->contentcache == PB__MOUNT_CONTENT_CACHE__ON) {
        if (!content) {
            return kiln__fail(err, KILN_EINVAL,
                              "mount %zu (%s): contentCache is ON, but the "
                              "mount is writable, has an output and selects "
                              "part of its input",
                              i, m->dest);
        }
    } else if (strcmp(m->dest, "/") == 0) {
        content = false;
    }
    d->content = content;
    return 0;
}

/* v0.11 getMountDeps: selectors only where Mount.selector is set; any
 * writable-with-output or root mount turns the content key off. */
static int exec_mount_v0_11(kiln__cachemap_t *cm, const Pb__Mount *m,
                            kiln_error_t *err)
{
    kiln__cm_dep_t *d = &cm->deps[m->input];

    if (m->selector[0] != 0 &&
        kiln__cm_dep_push_path(d, kiln__gopath_join_root(m->selector)) < 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if ((!m->readonly || strcmp(m->dest, "/") == 0) && m->output != -1) {
        d->content = false;
    }
    return 0;
}

/* toSelectors(dedupePaths(paths)) for an exec input's content key. */
static int exec_content_sels(kiln__cm_dep_t *d, enum kiln__cm_compat compat)
{
    const char **uniq;
    size_t n;
    int rc = kiln__cm_dedupe_paths(d->paths, d->n_paths, compat, &uniq, &n);

    for (size_t i = 0; i < n && rc == 0; i++) {
        if (compat == KILN_CM_CURRENT &&
            (uniq[i][0] == 0 || strcmp(uniq[i], "/") == 0)) {
            free_sels(d->content_sels, d->n_content);
            d->content_sels = NULL;
            d->n_content = 0; /* the whole input */
            break;
        }
        kiln__cm_selector_t s = {.path = strdup(uniq[i]), .follow_links = true};
        rc = kiln__cm_dep_push_sel(d, &s);
    }
    free(uniq);
    return rc;
}

static int exec_deps(kiln__cachemap_t *cm, const Pb__ExecOp *e,
                     enum kiln__cm_compat compat, kiln_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; i < cm->n_deps; i++) {
        cm->deps[i].content = compat != KILN_CM_CURRENT;
    }
    for (size_t i = 0; i < e->n_mounts && rc == 0; i++) {
        const Pb__Mount *m = e->mounts[i];
        Pb__MountType t = m->mounttype;

        if (compat == KILN_CM_CURRENT &&
            (t == PB__MOUNT_TYPE__SECRET || t == PB__MOUNT_TYPE__SSH ||
             t == PB__MOUNT_TYPE__TMPFS)) {
            continue;
        }
        if (m->input == -1) {
            continue;
        }
        if (m->input < 0 || (uint64_t)m->input >= cm->n_deps) {
            return kiln__fail(err, KILN_EINVAL,
                              "mount %zu (%s): input %lld, but the op has "
                              "%zu inputs",
                              i, m->dest, (long long)m->input, cm->n_deps);
        }
        rc = compat == KILN_CM_CURRENT ? exec_mount_current(cm, m, i, err)
                                       : exec_mount_v0_11(cm, m, err);
    }
    for (size_t i = 0; i < cm->n_deps && rc == 0; i++) {
        rc = dep_selector_digest(&cm->deps[i]);
        if (rc == 0 && cm->deps[i].content) {
            rc = exec_content_sels(&cm->deps[i], compat);
        }
        if (rc < 0) {
            rc = kiln__fail(err, rc, "out of memory");
        }
    }
    return rc;
}

static int exec_cachemap(const Pb__Op *op, const Pb__Platform *def,
                         enum kiln__cm_compat compat, kiln__cachemap_t *cm,
                         kiln_error_t *err)
{
    const Pb__Platform *p = op->platform ? op->platform : def;
    kiln__buf_t json = KILN_BUF_INIT;
    int rc;

    if (op->exec->meta == NULL) {
        return kiln__fail(err, KILN_EINVAL, "exec op has no meta");
    }
    if (p == NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "exec op has no platform, and no default platform "
                          "was given");
    }
    rc = exec_json(op->exec, p, compat, &json);
    if (rc == 0) {
        rc = kiln__cm_finish(cm, &json);
    }
    kiln__buf_free(&json);
    if (rc < 0) {
        return kiln__fail(err, rc, "exec cache map: %s", kiln_strerror(rc));
    }
    return exec_deps(cm, op->exec, compat, err);
}

/* ---- merge, diff, build, passthrough --------------------------------- */

/* {"Type":<type>,<field>:<msg>} with no selectors or content keys. */
static int simple_cachemap(const char *type, const char *field,
                           const ProtobufCMessage *msg,
                           enum kiln__cm_compat compat, kiln__cachemap_t *cm,
                           kiln_error_t *err)
{
    kiln__buf_t json = KILN_BUF_INIT;
    kiln__gojson_t w;
    int rc;

    kiln__gojson_init(&w, &json, kiln__cm_json_flags(compat));
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "Type");
    kiln__gojson_cstr(&w, type);
    kiln__gojson_key(&w, field);
    rc = kiln__pbjson_write(&w, msg, compat != KILN_CM_CURRENT);
    kiln__gojson_end_object(&w);
    if (rc == 0 && !kiln__gojson_ok(&w)) {
        rc = kiln__buf_ok(&json) ? KILN_EINVAL : KILN_ENOMEM;
    }
    if (rc == 0) {
        rc = kiln__cm_finish(cm, &json);
    }
    kiln__buf_free(&json);
    if (rc < 0) {
        return kiln__fail(err, rc, "%s cache map: %s", type, kiln_strerror(rc));
    }
    return 0;
}

/* len(Deps) as BuildKit sizes it for each op kind. */
static size_t deps_count(const Pb__Op *op)
{
    switch (op->op_case) {
    case PB__OP__OP_MERGE:
        return op->merge->n_inputs;
    case PB__OP__OP_DIFF:
        return (op->diff->lower && op->diff->lower->input != -1) +
               (size_t)(op->diff->upper && op->diff->upper->input != -1);
    default:
        return op->n_inputs;
    }
}

static int dispatch(const Pb__Op *op, const Pb__Platform *def,
                    enum kiln__cm_compat compat, kiln__cachemap_t *cm,
                    kiln_error_t *err)
{
    switch (op->op_case) {
    case PB__OP__OP_EXEC:
        return exec_cachemap(op, def, compat, cm, err);
    case PB__OP__OP_MERGE:
        return simple_cachemap("buildkit.merge.v0", "Merge", &op->merge->base,
                               compat, cm, err);
    case PB__OP__OP_DIFF:
        return simple_cachemap("buildkit.diff.v0", "Diff", &op->diff->base,
                               compat, cm, err);
    case PB__OP__OP_BUILD:
        return simple_cachemap("buildkit.build.v0", "Exec", &op->build->base,
                               compat, cm, err);
    case PB__OP__OP_PASSTHROUGH:
        return simple_cachemap("buildkit.passthrough.v0", "Passthrough",
                               &op->passthrough->base, compat, cm, err);
    default:
        return kiln__fail(err, KILN_ENOTSUP, "no cache map for this op");
    }
}

int kiln__cachemap_compute(const Pb__Op *op,
                           const Pb__Platform *default_platform,
                           enum kiln__cm_compat compat, kiln__cachemap_t **out,
                           kiln_error_t *err)
{
    kiln__cachemap_t *cm;
    int rc;

    *out = NULL;
    if (op->op_case == PB__OP__OP_FILE) {
        return kiln__cm_file(op, compat, out, err);
    }
    if (op->op_case == PB__OP__OP_SOURCE) {
        return kiln__fail(err, KILN_ENOTSUP,
                          "source ops get their cache key from the source "
                          "plugin");
    }
    if (op->op_case == PB__OP__OP__NOT_SET) {
        return kiln__fail(err, KILN_ENOTSUP,
                          "the terminal op has no cache "
                          "map");
    }
    cm = kiln__cm_new(deps_count(op));
    if (cm == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = dispatch(op, default_platform, compat, cm, err);
    if (rc < 0) {
        kiln__cachemap_free(cm);
        return rc;
    }
    *out = cm;
    return 0;
}

int kiln__cachemap_vertex(const kiln__vertex_t *v,
                          const Pb__Platform *default_platform,
                          enum kiln__cm_compat compat, kiln__cachemap_t **out,
                          kiln_error_t *err)
{
    int rc = kiln__cachemap_compute(v->op, default_platform, compat, out, err);

    if (rc < 0) {
        return kiln__fail_prefix(err, rc, "%s op %s",
                                 kiln__op_kind_name(v->kind), v->digest);
    }
    return 0;
}

/* ---- sources and records --------------------------------------------- */

bool kiln__cachemap_is_random(const char *digest)
{
    return strncmp(digest, "random:", 7) == 0;
}

int kiln__cachemap_source_digest(const void *key, size_t len,
                                 char out[KILN_DIGEST_STRLEN + 1])
{
    static const char prefix[] = "buildkit.source.v0:";
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    kiln__buf_puts(&b, prefix);
    kiln__buf_append(&b, key, len);
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return KILN_ENOMEM;
    }
    rc = kiln__sha256_digest(b.data, b.len, out);
    kiln__buf_free(&b);
    if (rc == 0 && len >= 8 && memcmp(key, "session:", 8) == 0) {
        memcpy(out, "random", 6); /* "sha256:" -> "random:", same hex */
    }
    return rc;
}

int kiln__cachemap_record_digest(const char *digest, int64_t output,
                                 enum kiln__cm_compat compat,
                                 char out[KILN_DIGEST_STRLEN + 1])
{
    char buf[KILN_DIGEST_STRLEN + 32];
    int n;
    int rc;

    if (strlen(digest) > KILN_DIGEST_STRLEN) {
        return KILN_EINVAL;
    }
    if (kiln__cachemap_is_random(digest) && compat == KILN_CM_CURRENT) {
        memcpy(out, digest, strlen(digest) + 1);
        return 0;
    }
    n = snprintf(buf, sizeof(buf), "%s@%lld", digest, (long long)output);
    rc = kiln__sha256_digest(buf, (size_t)n, out);
    if (rc == 0 && kiln__cachemap_is_random(digest)) {
        memcpy(out, "random", 6);
    }
    return rc;
}
