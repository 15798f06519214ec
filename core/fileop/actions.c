/*
 * FileOp actions other than copy: mkdir, mkfile, rm, symlink, and the
 * helpers they share with copy.c (solver/llbsolver/file/backend.go and
 * user_linux.go in BuildKit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileop/fileop_int.h"
#include "util/gopath.h"

/* Largest /etc/passwd or /etc/group read for a chown by name. */
#define OWNER_FILE_MAX (16u << 20)

/* The mode mask of mkdir(2) under BuildKit's usual umask of 022 (dockerd and
 * buildkitd run with it); kiln applies it explicitly so results do not
 * depend on the process umask. */
#define MKDIR_UMASK 022

void kiln__fo_progress(kiln__fo_ctx_t *c, uint64_t bytes)
{
    const kiln_fileop_env_t *env = c->env;

    if (env != NULL && env->progress != NULL && bytes > 0) {
        env->progress(env->ud, bytes);
    }
}

bool kiln__fo_cancelled(kiln__fo_ctx_t *c)
{
    const kiln_fileop_env_t *env = c->env;

    if (env != NULL && env->cancelled != NULL && env->cancelled(env->ud)) {
        kiln__fail(c->err, KILN_ECANCELED, "canceled");
        return true;
    }
    return false;
}

char *kiln__fo_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    char *s;

    while (la > 0 && a[la - 1] == '/') {
        la--;
    }
    while (*b == '/') {
        b++;
    }
    s = malloc(la + strlen(b) + 2);
    if (s != NULL) {
        memcpy(s, a, la);
        s[la] = '/';
        strcpy(s + la + 1, b);
    }
    return s;
}

int64_t kiln__fo_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

bool kiln__fo_exists(const kiln_snap_entry_t *e)
{
    return e->layer >= 0 || strcmp(e->path, "/") == 0;
}

bool kiln__fo_is_dir(const kiln_snap_entry_t *e)
{
    if (strcmp(e->path, "/") == 0) {
        return true;
    }
    return e->layer >= 0 && S_ISDIR(e->st.st_mode);
}

int kiln__fo_resolve(kiln__fo_ctx_t *c, const char *path, bool follow,
                     kiln_snap_entry_t *e)
{
    return kiln__snap_resolve(kiln__snap_writer_view(c->w), path, follow, e,
                              c->err);
}

static bool is_missing(int rc)
{
    return rc == KILN_ENOENT || rc == -ENOTDIR;
}

int kiln__fo_mkdir_all(kiln__fo_ctx_t *c, const char *path,
                       const kiln_snap_attr_t *attr)
{
    char *p = kiln__gopath_join_root(path);
    int rc;

    if (p == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__snap_mkdir(c->w, p, attr, true, c->err);
    free(p);
    return rc;
}

static void owner_attr(const kiln__fo_ctx_t *c, kiln_snap_attr_t *a)
{
    a->uid = c->owner.set ? c->owner.uid : -1;
    a->gid = c->owner.set ? c->owner.gid : -1;
}

int kiln__fo_mkdir(kiln__fo_ctx_t *c, const Pb__FileActionMkDir *a)
{
    kiln_snap_attr_t attr = KILN_SNAP_ATTR_INIT;
    kiln_snap_entry_t *e;
    char *p;
    int rc;

    attr.mode = (mode_t)a->mode & 0777 & ~(mode_t)MKDIR_UMASK;
    attr.mtime_ns = a->timestamp;
    owner_attr(c, &attr);
    if (a->makeparents) {
        return kiln__fo_mkdir_all(c, a->path, &attr);
    }
    p = kiln__gopath_join_root(a->path);
    e = malloc(sizeof(*e));
    if (p == NULL || e == NULL) {
        rc = kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    } else if (is_missing(rc = kiln__fo_resolve(c, p, true, e))) {
        rc = kiln__fail(c->err, KILN_ENOENT,
                        "mkdir %s: no such file or directory", p);
    } else if (rc == 0 && !kiln__fo_exists(e)) {
        rc = kiln__snap_mkdir(c->w, e->path, &attr, false, c->err);
    }
    /* An existing path of any type is not an error (os.ErrExist). */
    free(e);
    free(p);
    return rc;
}

/* Resolves the path a mkfile or symlink creates (its last component
 * followed, as fs.RootPath does). */
static int resolve_new(kiln__fo_ctx_t *c, const char *path, const char *what,
                       kiln_snap_entry_t *e, char **clean)
{
    int rc;

    *clean = kiln__gopath_join_root(path);
    if (*clean == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__fo_resolve(c, *clean, true, e);
    if (is_missing(rc)) {
        return kiln__fail(c->err, KILN_ENOENT,
                          "%s %s: no such file or directory", what, *clean);
    }
    return rc;
}

int kiln__fo_mkfile(kiln__fo_ctx_t *c, const Pb__FileActionMkFile *a)
{
    kiln_snap_attr_t attr = KILN_SNAP_ATTR_INIT;
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    char *p = NULL;
    int rc;

    attr.mode = (mode_t)a->mode & 0777;
    attr.mtime_ns = a->timestamp;
    owner_attr(c, &attr);
    if (e == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    rc = resolve_new(c, a->path, "open", e, &p);
    if (rc == 0 && kiln__fo_is_dir(e)) {
        rc = kiln__fail(c->err, -EISDIR, "%s: is a directory", p);
    }
    if (rc == 0) {
        rc = kiln__snap_write_file(c->w, e->path, a->data.data, a->data.len,
                                   &attr, c->err);
    }
    free(p);
    free(e);
    return rc;
}

int kiln__fo_symlink(kiln__fo_ctx_t *c, const Pb__FileActionSymlink *a)
{
    kiln_snap_attr_t attr = KILN_SNAP_ATTR_INIT;
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    char *p = NULL;
    int rc;

    attr.mtime_ns = a->timestamp;
    owner_attr(c, &attr);
    if (e == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    rc = resolve_new(c, a->newpath, "symlink", e, &p);
    if (rc == 0 && kiln__fo_exists(e)) {
        rc = kiln__fail(c->err, -EEXIST, "symlink %s %s: file exists",
                        a->oldpath, p);
    }
    if (rc == 0) {
        rc = kiln__snap_symlink(c->w, a->oldpath, e->path, &attr, c->err);
    }
    free(p);
    free(e);
    return rc;
}

/* BuildKit's rmPath: the parent resolved, the last component not. */
static int rm_path(kiln__fo_ctx_t *c, const char *path, bool allow_missing,
                   kiln_snap_entry_t *e)
{
    char *p = kiln__gopath_join_root(path);
    int rc = 0;

    if (p == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    if (strcmp(p, "/") == 0) {
        rc = kiln__fail(c->err, KILN_EINVAL, "rmPath: invalid empty path");
    } else if (!allow_missing) {
        /* os.Stat: a dangling symlink counts as missing. */
        rc = kiln__fo_resolve(c, p, true, e);
        if (is_missing(rc) || (rc == 0 && !kiln__fo_exists(e))) {
            rc = kiln__fail(c->err, KILN_ENOENT,
                            "%s: no such file or directory", p);
        }
    }
    if (rc == 0) {
        rc = kiln__fo_resolve(c, p, false, e);
        if (is_missing(rc)) {
            rc = 0;
        } else if (rc == 0 && kiln__fo_exists(e)) {
            rc = kiln__snap_remove(c->w, e->path, c->err);
            rc = rc == KILN_ENOENT ? 0 : rc;
        }
    }
    free(p);
    return rc;
}

int kiln__fo_rm(kiln__fo_ctx_t *c, const Pb__FileActionRm *a)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    char **m = NULL;
    size_t n = 0;
    int rc = 0;

    if (e == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    if (!a->allowwildcard) {
        rc = rm_path(c, a->path, a->allownotfound, e);
        free(e);
        return rc;
    }
    rc = kiln__fo_resolve_wildcards(kiln__snap_writer_view(c->w), a->path,
                                    false, &m, &n, c->err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = rm_path(c, m[i], a->allownotfound, e);
    }
    kiln__fo_strv_free(m, n);
    free(e);
    return rc;
}

/* Reads a whole small file of a view; *data is NUL-terminated. Sets *data
 * NULL when the file does not exist. */
static int read_view_file(const kiln_snap_view_t *v, const char *path,
                          char **data, kiln_error_t *err)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    kiln__buf_t b = KILN_BUF_INIT;
    char chunk[8192];
    ssize_t r;
    int fd = -1, rc;

    *data = NULL;
    if (e == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__snap_resolve(v, path, true, e, err);
    if (is_missing(rc) || (rc == 0 && e->layer < 0)) {
        free(e);
        return 0;
    }
    if (rc == 0 && !S_ISREG(e->st.st_mode)) {
        rc = kiln__fail(err, KILN_EIO, "read %s: not a regular file", path);
    }
    if (rc == 0) {
        rc = kiln__snap_open_file(v, e, &fd, err);
    }
    while (rc == 0 && (r = read(fd, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno != EINTR) {
            rc =
                kiln__fail(err, KILN_EIO, "read %s: %s", path, strerror(errno));
        } else if (r > 0) {
            kiln__buf_append(&b, chunk, (size_t)r);
        }
        if (rc == 0 && b.len > OWNER_FILE_MAX) {
            rc = kiln__fail(err, KILN_E2BIG, "%s: too large", path);
        }
    }
    kiln__buf_putc(&b, 0);
    if (rc == 0 && !kiln__buf_ok(&b)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (fd >= 0) {
        close(fd);
    }
    free(e);
    if (rc < 0) {
        kiln__buf_free(&b);
        return rc;
    }
    *data = (char *)b.data;
    return 0;
}

/* strconv.Atoi, 0 on failure (as runc's parseLine). */
static int64_t atoi_go(const char *s, size_t len)
{
    char buf[32];
    char *end;
    long long v;

    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] == ' ' || buf[0] == '\t') {
        return 0;
    }
    errno = 0;
    v = strtoll(buf, &end, 10);
    return (*end != '\0' || errno != 0) ? 0 : (int64_t)v;
}

/* Trims a line as bytes.TrimSpace does (ASCII whitespace). */
static char *trim_line(char *line)
{
    size_t n;

    while (*line != '\0' && strchr(" \t\r\v\f", *line) != NULL) {
        line++;
    }
    n = strlen(line);
    while (n > 0 && strchr(" \t\r\v\f", line[n - 1]) != NULL) {
        line[--n] = '\0';
    }
    return line;
}

/*
 * Finds `name` in passwd or group text, as runc's ParsePasswdFilter and
 * ParseGroupFilter read it: "name:x:id:gid..." per line, fields split on
 * ':', numbers 0 when they do not parse, first match wins. Returns true if
 * found, with the third field in *id and the fourth in *gid.
 */
static bool find_entry(char *text, const char *name, int64_t *id, int64_t *gid)
{
    size_t nlen = strlen(name);

    for (char *next = text; next != NULL && *next != '\0';) {
        char *nl = strchr(next, '\n'), *line = next, *f[4] = {0};
        size_t n = 0;

        if (nl != NULL) {
            *nl = '\0';
        }
        next = nl != NULL ? nl + 1 : NULL;
        line = trim_line(line);
        for (char *p = line; n < 4 && p != NULL; n++) {
            f[n] = p;
            p = strchr(p, ':');
            p = p != NULL ? p + 1 : NULL;
        }
        if (*line == '\0' || strncmp(line, name, nlen) != 0 ||
            (line[nlen] != ':' && line[nlen] != '\0')) {
            continue;
        }
        *id = f[2] != NULL ? atoi_go(f[2], strcspn(f[2], ":")) : 0;
        *gid = f[3] != NULL ? atoi_go(f[3], strcspn(f[3], ":")) : 0;
        return true;
    }
    return false;
}

/* One name lookup; leaves the ids alone when the name is not found. */
static int lookup_name(const kiln_snap_view_t *v, const char *file,
                       const char *name, int64_t *id, int64_t *gid,
                       kiln_error_t *err)
{
    char *text;
    int64_t i = 0, g = 0;
    int rc = read_view_file(v, file, &text, err);

    if (rc < 0 || text == NULL) {
        return rc;
    }
    if (find_entry(text, name, &i, &g)) {
        *id = i;
        if (gid != NULL) {
            *gid = g;
        }
    }
    free(text);
    return 0;
}

int kiln__fo_read_owner(const Pb__ChownOpt *o, const kiln_snap_view_t *uview,
                        const kiln_snap_view_t *gview, kiln__fo_owner_t *out,
                        kiln_error_t *err)
{
    const Pb__UserOpt *u = o != NULL ? o->user : NULL;
    const Pb__UserOpt *g = o != NULL ? o->group : NULL;
    int rc = 0;

    out->set = o != NULL;
    out->uid = 0;
    out->gid = 0;
    if (u != NULL && u->user_case == PB__USER_OPT__USER_BY_ID) {
        out->uid = out->gid = u->byid;
    } else if (u != NULL && u->user_case == PB__USER_OPT__USER_BY_NAME) {
        rc = lookup_name(uview, "/etc/passwd", u->byname->name, &out->uid,
                         &out->gid, err);
    }
    if (rc == 0 && g != NULL && g->user_case == PB__USER_OPT__USER_BY_ID) {
        out->gid = g->byid;
    } else if (rc == 0 && g != NULL &&
               g->user_case == PB__USER_OPT__USER_BY_NAME) {
        rc = lookup_name(gview, "/etc/group", g->byname->name, &out->gid, NULL,
                         err);
    }
    return rc;
}
