/*
 * An exec op's mounts (mounts.h): from Pb__Mount to what the helper
 * mounts, and back to layers once the command has run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/mounts.h"
#include "snap/snap_int.h"

/* BuildKit's limit on a secret's size. */
#define SECRET_MAX (500 * 1024)

int kiln__exec_tmpdir(const kiln__exec_ctx_t *c, char path[4096],
                      kiln_error_t *err)
{
    const kiln_fileop_env_t *f = c->env->fenv;

    return f->new_layer(f->ud, path, 4096, err);
}

const char *kiln__exec_lookup(const char *const *list, const char *id)
{
    size_t n = strlen(id);

    for (; list != NULL && *list != NULL; list++) {
        if (strncmp(*list, id, n) == 0 && (*list)[n] == '=') {
            return *list + n + 1;
        }
    }
    return NULL;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

/* The input layers, top first, joined by newlines. A layer with whiteout
 * files goes in as its overlay twin (root), else the whole stack is
 * flattened first; so is an empty one (overlayfs wants a lower dir). */
static int lowers(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m, char **out,
                  size_t *count, kiln_error_t *err)
{
    size_t depth = kiln__snap_view_depth(m->view);
    /* One layer may be bound as it is, which a twin cannot: its devices
     * would show. */
    bool flat =
        depth == 0 || (depth == 1 && kiln__exec_layer_has_whiteouts(
                                         kiln__snap_view_layer(m->view, 0)));
    kiln__buf_t b = KILN_BUF_INIT;
    char dir[4096];
    int rc;

    for (size_t i = depth; !flat && i-- > 0;) {
        const char *l = kiln__snap_view_layer(m->view, i);

        flat = strchr(l, '\n') != NULL ||
               kiln__exec_lower_dir(c->env->store, l, dir, sizeof(dir)) < 0 ||
               strchr(dir, '\n') != NULL;
        if (!flat) {
            kiln__buf_puts(&b, dir);
            kiln__buf_putc(&b, i > 0 ? '\n' : '\0');
        }
    }
    if (!flat && kiln__buf_ok(&b)) {
        *count = depth;
        *out = (char *)b.data;
        return 0;
    }
    kiln__buf_free(&b);
    if (!flat) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__exec_tmpdir(c, dir, err);
    if (rc == 0) {
        rc = kiln__snap_materialize(m->view, dir, true, err);
    }
    if (rc < 0) {
        return rc;
    }
    *count = 1;
    return (*out = strdup(dir)) != NULL
               ? 0
               : kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* A bind mount with an input: an overlay, a read-only layer, or a copy. */
static int prep_input(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m,
                      kiln_error_t *err)
{
    bool root = strcmp(m->pm->dest, "/") == 0;
    char work[4096];
    size_t n = 0;
    int rc;

    if (m->pm->readonly && !root) {
        rc = lowers(c, m, &m->spec.src, &n, err);
        m->kind = MNT_OTHER;
        m->spec.type = n == 1 ? KILN__EXEC_MNT_BIND : KILN__EXEC_MNT_OVERLAY;
        m->spec.readonly = true;
        if (rc == 0 && n == 1) {
            return 0;
        }
        m->spec.upper = strdup("");
        m->spec.work = strdup("");
        return rc;
    }
    if (c->copy_mode) {
        rc = kiln__exec_tmpdir(c, m->full, err);
        if (rc == 0) {
            rc = kiln__snap_materialize(m->view, m->full, false, err);
        }
        if (rc == 0) {
            rc = kiln__exec_tmpdir(c, m->upper, err);
        }
        m->kind = MNT_COPY;
        m->spec.type = KILN__EXEC_MNT_BIND;
        m->spec.src = strdup(m->full);
        m->spec.readonly = m->pm->readonly;
        return rc;
    }
    rc = lowers(c, m, &m->spec.src, &n, err);
    if (rc == 0) {
        rc = kiln__exec_tmpdir(c, m->upper, err);
    }
    if (rc == 0) {
        rc = kiln__exec_tmpdir(c, work, err);
    }
    if (rc == 0) {
        rc = kiln__exec_copy_root_meta(m->view, m->upper, err);
    }
    m->kind = MNT_OVERLAY;
    m->spec.type = KILN__EXEC_MNT_OVERLAY;
    m->spec.upper = strdup(m->upper);
    m->spec.work = strdup(work);
    /* A read-only root still gets an upper (discarded): the stubs of the
     * other mounts go there, never into a layer. */
    m->spec.readonly = m->pm->readonly;
    return rc;
}

static int prep_scratch(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m,
                        kiln_error_t *err)
{
    int rc = kiln__exec_tmpdir(c, m->upper, err);

    if (rc == 0 && chmod(m->upper, 0755) < 0) {
        rc = kiln__fail(err, -errno, "%s: %s", m->upper, strerror(errno));
    }
    m->kind = MNT_PLAIN;
    m->spec.type = KILN__EXEC_MNT_BIND;
    m->spec.src = strdup(m->upper);
    m->spec.readonly = m->pm->readonly;
    return rc;
}

static int prep_cache(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m,
                      kiln_error_t *err)
{
    const Pb__CacheOpt *o = m->pm->cacheopt;
    const kiln_fileop_env_t *f = c->env->fenv;
    int rc;

    if (o == NULL || o->id == NULL || o->id[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL, "cache mount without an ID");
    }
    rc = kiln__exec_cache_acquire(c->env->store, o->id, o->sharing,
                                  f->cancelled, f->ud, &m->cache, err);
    if (rc == 0 && m->cache.fresh && m->view != NULL) {
        /* Seeded from its input the first time, as BuildKit does. */
        rc = kiln__snap_materialize(m->view, m->cache.dir, false, err);
    }
    m->kind = MNT_CACHE;
    m->spec.type = KILN__EXEC_MNT_BIND;
    m->spec.src = strdup(m->cache.dir != NULL ? m->cache.dir : "");
    m->spec.readonly = m->pm->readonly;
    return rc;
}

static int prep_secret(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m,
                       kiln_error_t *err)
{
    const Pb__SecretOpt *o = m->pm->secretopt;
    const char *path, *var;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = 0;

    if (o == NULL || o->id == NULL || o->id[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL, "secret mount without an ID");
    }
    path = kiln__exec_lookup(c->env->secrets, o->id);
    var = kiln__exec_lookup(c->env->secret_envs, o->id);
    if (path != NULL) {
        rc = kiln__read_file(path, SECRET_MAX, &data, &len, err);
        if (rc < 0) {
            return kiln__fail_prefix(err, rc, "secret '%s'", o->id);
        }
    } else if (var != NULL && getenv(var) != NULL) {
        const char *v = getenv(var);
        len = strlen(v);
        data = malloc(len + 1);
        if (data == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        memcpy(data, v, len);
    } else if (o->optional) {
        m->kind = MNT_SKIP;
        return 0;
    } else {
        return kiln__fail(err, KILN_EINVAL,
                          "secret '%s' was not given (kiln build --secret "
                          "id=%s,src=FILE or env=VAR)",
                          o->id, o->id);
    }
    m->kind = MNT_OTHER;
    m->spec.type = KILN__EXEC_MNT_SECRET;
    m->spec.data = data;
    m->spec.len = len;
    m->spec.uid = o->uid;
    m->spec.gid = o->gid;
    m->spec.mode = o->mode != 0 ? o->mode & 07777 : 0400;
    return 0;
}

static int prep_ssh(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m, kiln_error_t *err)
{
    const Pb__SSHOpt *o = m->pm->sshopt;
    const char *id = o != NULL && o->id != NULL && o->id[0] ? o->id : "default";
    const char *sock = kiln__exec_lookup(c->env->ssh, id);
    struct stat st;

    if (sock == NULL || stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        if (o != NULL && o->optional) {
            m->kind = MNT_SKIP;
            return 0;
        }
        return kiln__fail(err, KILN_EINVAL,
                          sock == NULL
                              ? "SSH agent '%s' was not given (kiln build "
                                "--ssh %s=SOCKET)"
                              : "SSH agent '%s': %s is not a socket",
                          id, sock == NULL ? id : sock);
    }
    m->kind = MNT_OTHER;
    m->spec.type = KILN__EXEC_MNT_SOCKET;
    m->spec.src = strdup(sock);
    m->spec.uid = o != NULL ? o->uid : 0;
    m->spec.gid = o != NULL ? o->gid : 0;
    m->spec.mode = o != NULL && o->mode != 0 ? o->mode & 07777 : 0600;
    return 0;
}

static int prep_one(kiln__exec_ctx_t *c, kiln__exec_mnt_t *m, kiln_error_t *err)
{
    const Pb__Mount *pm = m->pm;
    const kiln_fileop_env_t *f = c->env->fenv;
    const char *sel = pm->selector != NULL ? pm->selector : "";
    int rc;

    if (pm->dest == NULL || pm->dest[0] != '/') {
        return kiln__fail(err, KILN_EINVAL,
                          "mount destination '%s' is not an absolute path",
                          pm->dest != NULL ? pm->dest : "");
    }
    if (pm->input >= 0 && (size_t)pm->input >= f->n_inputs) {
        return kiln__fail(err, KILN_EINVAL, "mount %s: input %lld of %zu",
                          pm->dest, (long long)pm->input, f->n_inputs);
    }
    m->view = pm->input >= 0 ? f->inputs[pm->input] : NULL;
    while (*sel == '/') {
        sel++;
    }
    m->spec.dest = strdup(pm->dest);
    m->spec.selector = strdup(sel);
    m->spec.stub_parents = c->op->meta->removemountstubsrecursive;
    switch (pm->mounttype) {
    case PB__MOUNT_TYPE__BIND:
        rc = m->view != NULL ? prep_input(c, m, err) : prep_scratch(c, m, err);
        break;
    case PB__MOUNT_TYPE__CACHE:
        rc = prep_cache(c, m, err);
        break;
    case PB__MOUNT_TYPE__TMPFS:
        m->kind = MNT_OTHER;
        m->spec.type = KILN__EXEC_MNT_TMPFS;
        m->spec.size = pm->tmpfsopt != NULL && pm->tmpfsopt->size > 0
                           ? (uint64_t)pm->tmpfsopt->size
                           : 0;
        rc = 0;
        break;
    case PB__MOUNT_TYPE__SECRET:
        rc = prep_secret(c, m, err);
        break;
    case PB__MOUNT_TYPE__SSH:
        rc = prep_ssh(c, m, err);
        break;
    default:
        return kiln__fail(err, KILN_EINVAL, "mount %s: unknown type %d",
                          pm->dest, (int)pm->mounttype);
    }
    if (rc == 0) {
        char **strs[] = {&m->spec.src, &m->spec.upper, &m->spec.work};
        for (size_t i = 0; i < KILN_ARRAY_SIZE(strs); i++) {
            if (*strs[i] == NULL && (*strs[i] = dup_or_empty(NULL)) == NULL) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
        }
        if (m->spec.dest == NULL || m->spec.selector == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    return rc < 0 ? kiln__fail_prefix(err, rc, "mount %s", pm->dest) : 0;
}

/* The root first, then by destination (a mount inside another comes
 * after it); equal destinations keep their order. */
static int by_dest(const void *a, const void *b)
{
    const kiln__exec_mnt_t *x = a, *y = b;
    int rx = strcmp(x->pm->dest, "/") != 0, ry = strcmp(y->pm->dest, "/") != 0;
    int d = rx != ry ? rx - ry : strcmp(x->pm->dest, y->pm->dest);

    return d != 0 ? d : (x->pm < y->pm ? -1 : x->pm > y->pm);
}

int kiln__exec_mounts_prepare(kiln__exec_ctx_t *c, kiln_error_t *err)
{
    const Pb__ExecOp *op = c->op;
    int rc = 0;

    c->m = calloc(op->n_mounts + 1, sizeof(*c->m));
    if (c->m == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    c->n = op->n_mounts;
    for (size_t i = 0; i < c->n; i++) {
        c->m[i].pm = op->mounts[i];
        c->m[i].cache.lock_fd = -1;
        if (op->mounts[i]->dest == NULL) {
            return kiln__fail(err, KILN_EINVAL, "mount %zu has no destination",
                              i);
        }
    }
    qsort(c->m, c->n, sizeof(*c->m), by_dest);
    if (c->n == 0 || strcmp(c->m[0].pm->dest, "/") != 0 ||
        c->m[0].pm->mounttype != PB__MOUNT_TYPE__BIND) {
        return kiln__fail(err, KILN_EINVAL, "the exec op has no root mount");
    }
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        rc = prep_one(c, &c->m[i], err);
    }
    return rc;
}

/* The mount whose file system a stub at `path` was made in: the deepest
 * mount strictly above it. */
static size_t owner_of(const kiln__exec_ctx_t *c, const char *path)
{
    size_t best = 0, best_len = 0;

    for (size_t i = 1; i < c->n; i++) {
        const char *d = c->m[i].pm->dest;
        size_t n = strlen(d);

        while (n > 1 && d[n - 1] == '/') {
            n--;
        }
        if (n > best_len && strncmp(path, d, n) == 0 && path[n] == '/') {
            best = i;
            best_len = n;
        }
    }
    return best;
}

static int collect_one(kiln__exec_ctx_t *c, size_t i, kiln_error_t *err)
{
    kiln__exec_mnt_t *m = &c->m[i];
    kiln__exec_stub_t *mine = calloc(c->n_stubs + 1, sizeof(*mine));
    kiln_snap_view_t *after = NULL;
    const char *full = m->full;
    size_t k = 0;
    int rc = 0;

    if (mine == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (m->pm->output < 0 && m->kind != MNT_CACHE) {
        free(mine); /* changes are dropped: nothing to read back */
        return 0;
    }
    for (size_t s = 0; s < c->n_stubs; s++) {
        if (owner_of(c, c->stubs[s].path) == i) {
            mine[k++] = c->stubs[s];
        }
    }
    switch (m->kind) {
    case MNT_OVERLAY:
        rc = kiln__exec_upper_to_layer(m->upper, m->view, mine, k, m->pm->dest,
                                       &m->empty, err);
        break;
    case MNT_COPY:
        rc = kiln__exec_remove_stubs(m->full, mine, k, m->pm->dest, err);
        if (rc == 0) {
            rc = kiln__snap_view_open(&full, 1, err, &after);
        }
        if (rc == 0) {
            rc = kiln__snap_diff(m->view, after, m->upper, err);
        }
        kiln__snap_view_free(after);
        if (rc == 0) {
            int fd = open(m->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            bool empty = false;

            if (fd >= 0) {
                kiln__snap_dir_empty(fd, &empty);
                close(fd);
            }
            m->empty = empty;
        }
        break;
    case MNT_PLAIN:
        rc = kiln__exec_remove_stubs(m->upper, mine, k, m->pm->dest, err);
        break;
    case MNT_CACHE:
        rc = kiln__exec_remove_stubs(m->cache.dir, mine, k, m->pm->dest, err);
        break;
    default:
        break;
    }
    free(mine);
    return rc < 0 ? kiln__fail_prefix(err, rc, "mount %s", m->pm->dest) : 0;
}

int kiln__exec_mounts_collect(kiln__exec_ctx_t *c, kiln_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        rc = collect_one(c, i, err);
    }
    return rc;
}

void kiln__exec_mounts_release(kiln__exec_ctx_t *c)
{
    for (size_t i = 0; c->m != NULL && i < c->n; i++) {
        kiln__exec_mnt_t *m = &c->m[i];
        const Pb__CacheOpt *o = m->pm->cacheopt;

        if (m->kind == MNT_CACHE) {
            kiln__exec_cache_release(c->env->store, o != NULL ? o->id : "",
                                     &m->cache);
        }
        free(m->spec.dest);
        free(m->spec.src);
        free(m->spec.upper);
        free(m->spec.work);
        free(m->spec.selector);
        if (m->spec.data != NULL) {
            explicit_bzero(m->spec.data, m->spec.len);
        }
        free(m->spec.data);
    }
    free(c->m);
    c->m = NULL;
    c->n = 0;
}
