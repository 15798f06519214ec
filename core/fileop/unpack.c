/*
 * attemptUnpackDockerCompatibility: Docker's ADD of a local archive. As
 * BuildKit's unpack() and applyRootArchive() (solver/llbsolver/file/
 * unpack.go, unpack_root.go): a regular file that reads as a tar archive,
 * plain or compressed with gzip, bzip2, xz or zstd, is extracted into the
 * destination directory instead of being copied. Entry paths and the
 * symlinks met on the way are resolved inside the extraction directory;
 * "../" that leaves it is an error.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileop/fileop_int.h"
#include "util/gopath.h"

#define MAX_LINKS 255

typedef struct ux {
    kiln__fo_ctx_t *c;
    const char *root; /* canonical extraction directory */
    bool same_owner;  /* false when not root: owners are not applied */
    struct dirtime {
        char *path;
        int64_t mtime;
    } * dirs;
    size_t n_dirs;
    size_t cap_dirs;
} ux_t;

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

static struct archive *open_archive(int fd)
{
    struct archive *a = archive_read_new();

    if (a == NULL) {
        return NULL;
    }
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* isArchivePath(): a regular file whose first tar header reads. */
static bool is_archive(const kiln_snap_view_t *v, const kiln_snap_entry_t *e)
{
    struct archive *a;
    struct archive_entry *ae;
    bool ok = false;
    int fd = -1;

    if (e->layer < 0 || !S_ISREG(e->st.st_mode) ||
        kiln__snap_open_file(v, e, &fd, NULL) < 0) {
        return false;
    }
    if ((a = open_archive(fd)) != NULL) {
        int r = archive_read_next_header(a, &ae);
        ok = r == ARCHIVE_OK || r == ARCHIVE_WARN;
        archive_read_free(a);
    }
    close(fd);
    return ok;
}

/* cleanRootTarPath(): "" to skip; an error when it leaves the root. */
static int clean_tar_path(ux_t *x, const char *name, char **out)
{
    char *c;

    *out = NULL;
    while (*name == '/') {
        name++;
    }
    c = kiln__gopath_clean(name);
    if (c == NULL) {
        return oom(x->c->err);
    }
    if (strcmp(c, "..") == 0 || strncmp(c, "../", 3) == 0) {
        free(c);
        return kiln__fail(x->c->err, KILN_EINVAL,
                          "archive path \"%s\" is outside extraction root",
                          name);
    }
    if (strcmp(c, ".") == 0) {
        c[0] = '\0';
    }
    *out = c;
    return 0;
}

static char *under_root(const ux_t *x, const char *rel)
{
    return *rel ? kiln__fo_join(x->root, rel) : strdup(x->root);
}

/* One step of resolveRootPath(): the symlink at `cand` (relative) with
 * `rest` after it becomes the next name to resolve. */
static int follow_link(ux_t *x, const kiln_snap_entry_t *e, const char *cand,
                       const char *rest, char **next)
{
    char target[4096], *dir, *joined = NULL, *name = NULL;
    int rc = kiln__snap_readlink(kiln__snap_writer_view(x->c->w), e, target,
                                 sizeof(target), x->c->err);

    if (rc < 0) {
        return rc;
    }
    if (target[0] == '/') {
        rc = clean_tar_path(x, target, &name);
    } else if ((dir = strdup(cand)) == NULL) {
        rc = oom(x->c->err);
    } else {
        char *slash = strrchr(dir, '/');
        *(slash != NULL ? slash : dir) = '\0';
        joined = *dir ? kiln__fo_join(dir, target) : strdup(target);
        name = joined != NULL ? kiln__gopath_clean(joined) : NULL;
        rc = name != NULL ? 0 : oom(x->c->err);
        if (rc == 0 && strcmp(name, ".") == 0) {
            name[0] = '\0';
        } else if (rc == 0 &&
                   (strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0)) {
            rc = kiln__fail(x->c->err, KILN_EINVAL,
                            "archive symlink \"%s\" points outside "
                            "extraction root",
                            cand);
        }
        free(dir);
        free(joined);
    }
    if (rc == 0 && *rest) {
        joined = *name ? kiln__fo_join(name, rest) : strdup(rest);
        free(name);
        name = joined;
        rc = name != NULL ? 0 : oom(x->c->err);
    }
    if (rc < 0) {
        free(name);
        return rc;
    }
    *next = name;
    return 0;
}

/* One pass over the components of `name`: *followed when a symlink was met
 * (then *out is the next name), else *out is the resolved path. */
static int resolve_pass(ux_t *x, const char *name, bool follow_leaf,
                        kiln_snap_entry_t *e, char **out, bool *followed)
{
    size_t n = strlen(name), done = 0;
    char *res = calloc(1, n + 2), *full;
    int rc = res != NULL ? 0 : oom(x->c->err);

    *followed = false;
    while (rc == 0 && done < n) {
        const char *part = name + done;
        size_t len = strcspn(part, "/");
        size_t rl = strlen(res);
        bool last = done + len >= n;

        done += len + (last ? 0 : 1);
        if (len == 0 || (len == 1 && part[0] == '.')) {
            continue;
        }
        snprintf(res + rl, n + 2 - rl, "%s%.*s", rl ? "/" : "", (int)len, part);
        if (last && !follow_leaf) {
            break;
        }
        if ((full = under_root(x, res)) == NULL) {
            rc = oom(x->c->err);
            break;
        }
        rc = kiln__fo_resolve(x->c, full, false, e);
        free(full);
        if (rc == KILN_ENOENT || rc == -ENOTDIR ||
            (rc == 0 && !kiln__fo_exists(e))) {
            snprintf(res + rl, n + 2 - rl, "%s%s", rl ? "/" : "", part);
            rc = 0;
            break;
        }
        if (rc == 0 && S_ISLNK(e->st.st_mode)) {
            rc = follow_link(x, e, res, last ? "" : name + done, out);
            *followed = rc == 0;
            free(res);
            return rc;
        }
    }
    if (rc < 0) {
        free(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* resolveRootPath(): the path to operate on, relative to the root. */
static int resolve_root_path(ux_t *x, const char *name, bool follow_leaf,
                             char **out)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    char *cur = strdup(name), *next;
    bool followed;
    int rc = (e && cur) ? 0 : oom(x->c->err);

    for (int i = 0; rc == 0 && i < MAX_LINKS; i++) {
        rc = resolve_pass(x, cur, follow_leaf, e, &next, &followed);
        if (rc < 0) {
            break;
        }
        free(cur);
        cur = next;
        if (!followed) {
            free(e);
            *out = cur;
            return 0;
        }
    }
    if (rc == 0) {
        rc =
            kiln__fail(x->c->err, KILN_EINVAL,
                       "too many symlinks resolving archive path \"%s\"", name);
    }
    free(cur);
    free(e);
    return rc;
}

/* Creates the missing parents of `rel` (0755, root-owned), as
 * applyRootArchive does before each entry. */
static int make_parents(ux_t *x, const char *rel, kiln_snap_entry_t *e)
{
    kiln_snap_attr_t a = {0755, x->same_owner ? 0 : -1, x->same_owner ? 0 : -1,
                          -1};
    char *p = strdup(rel), *full;
    int rc = p != NULL ? 0 : oom(x->c->err);

    for (char *s = p; rc == 0 && (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        if ((full = under_root(x, p)) == NULL) {
            rc = oom(x->c->err);
            break;
        }
        rc = kiln__fo_resolve(x->c, full, true, e);
        if (rc == 0 && !kiln__fo_exists(e)) {
            rc = kiln__snap_mkdir(x->c->w, e->path, &a, false, x->c->err);
        } else if (rc == 0 && !kiln__fo_is_dir(e)) {
            rc =
                kiln__fail(x->c->err, -ENOTDIR, "mkdir %s: not a directory", p);
        }
        free(full);
        *s = '/';
    }
    free(p);
    return rc;
}

/* Reads the current entry's data. */
static int read_data(ux_t *x, struct archive *a, kiln__buf_t *b)
{
    char chunk[64 * 1024];
    la_ssize_t r;

    while ((r = archive_read_data(a, chunk, sizeof(chunk))) > 0) {
        kiln__buf_append(b, chunk, (size_t)r);
    }
    if (r < 0) {
        return kiln__fail(x->c->err, KILN_EIO, "read archive: %s",
                          archive_error_string(a));
    }
    return kiln__buf_ok(b) ? 0 : oom(x->c->err);
}

static int64_t entry_mtime(struct archive_entry *ae)
{
    int64_t s = archive_entry_mtime(ae);

    if (s < 0) {
        return 0; /* boundRootTime: before the epoch is the epoch */
    }
    return s * 1000000000 + archive_entry_mtime_nsec(ae);
}

static int add_dir_time(ux_t *x, const char *path, int64_t mtime)
{
    if (x->n_dirs == x->cap_dirs) {
        size_t cap = x->cap_dirs ? x->cap_dirs * 2 : 16;
        struct dirtime *v = realloc(x->dirs, cap * sizeof(*v));
        if (v == NULL) {
            return oom(x->c->err);
        }
        x->dirs = v;
        x->cap_dirs = cap;
    }
    x->dirs[x->n_dirs].path = strdup(path);
    if (x->dirs[x->n_dirs].path == NULL) {
        return oom(x->c->err);
    }
    x->dirs[x->n_dirs++].mtime = mtime;
    return 0;
}

/* A hard link: kiln has no link primitive, so the target is copied. */
static int extract_link(ux_t *x, struct archive_entry *ae, const char *full,
                        const kiln_snap_attr_t *attr, kiln_snap_entry_t *e)
{
    char *ln = NULL, *lr = NULL, *lfull = NULL;
    int rc = clean_tar_path(x, archive_entry_hardlink(ae), &ln);

    if (rc == 0 && *ln == '\0') {
        rc = kiln__fail(x->c->err, KILN_EINVAL,
                        "archive hardlink \"%s\" targets extraction root",
                        archive_entry_pathname(ae));
    }
    if (rc == 0) {
        rc = resolve_root_path(x, ln, false, &lr);
    }
    if (rc == 0 && (lfull = under_root(x, lr)) == NULL) {
        rc = oom(x->c->err);
    }
    if (rc == 0) {
        rc = kiln__fo_resolve(x->c, lfull, false, e);
    }
    if (rc == 0 && !kiln__fo_exists(e)) {
        rc = kiln__fail(x->c->err, KILN_ENOENT,
                        "link %s: no such file or directory", lr);
    }
    if (rc == 0) {
        rc = kiln__snap_copy(x->c->w, kiln__snap_writer_view(x->c->w), e, full,
                             NULL, x->c->err);
    }
    if (rc == 0 && !S_ISLNK(e->st.st_mode)) {
        rc = kiln__snap_setattr(x->c->w, full, attr, x->c->err);
    }
    free(ln);
    free(lr);
    free(lfull);
    return rc;
}

/* The owner, mode and time an entry gets (mapArchiveHeaderOwner: an
 * explicit chown wins over the header). */
static void entry_attr(const ux_t *x, struct archive_entry *ae,
                       kiln_snap_attr_t *a)
{
    a->mode = archive_entry_mode(ae) & 07777;
    a->uid = x->c->owner.set ? x->c->owner.uid : archive_entry_uid(ae);
    a->gid = x->c->owner.set ? x->c->owner.gid : archive_entry_gid(ae);
    if (!x->same_owner) {
        a->uid = a->gid = -1;
    }
    a->mtime_ns = entry_mtime(ae);
}

/* Writes one entry at `full` (its parents exist, nothing else is there
 * unless both are directories). */
static int extract_one(ux_t *x, struct archive *a, struct archive_entry *ae,
                       const char *full, kiln_snap_entry_t *e)
{
    mode_t type = archive_entry_filetype(ae);
    kiln_snap_attr_t attr;
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    entry_attr(x, ae, &attr);
    if (archive_entry_hardlink(ae) != NULL) {
        return extract_link(x, ae, full, &attr, e);
    }
    switch (type) {
    case AE_IFDIR:
        rc = kiln__fo_resolve(x->c, full, false, e);
        if (rc == 0 && !kiln__fo_exists(e)) {
            rc = kiln__snap_mkdir(x->c->w, full, &attr, false, x->c->err);
        } else if (rc == 0) {
            rc = kiln__snap_setattr(x->c->w, full, &attr, x->c->err);
        }
        return rc == 0 ? add_dir_time(x, full, attr.mtime_ns) : rc;
    case AE_IFREG:
        rc = read_data(x, a, &b);
        if (rc == 0) {
            rc = kiln__snap_write_file(x->c->w, full, b.data, b.len, &attr,
                                       x->c->err);
        }
        kiln__buf_free(&b);
        return rc;
    case AE_IFLNK:
        return kiln__snap_symlink(x->c->w, archive_entry_symlink(ae), full,
                                  &attr, x->c->err);
    default:
        return kiln__fail(x->c->err, KILN_ENOTSUP,
                          "unsupported tar entry \"%s\" type %o",
                          archive_entry_pathname(ae), (unsigned)type);
    }
}

/* One header of the archive: where it goes, what makes room for it. */
static int apply_entry(ux_t *x, struct archive *a, struct archive_entry *ae,
                       kiln_snap_entry_t *e)
{
    bool is_dir = archive_entry_filetype(ae) == AE_IFDIR &&
                  archive_entry_hardlink(ae) == NULL;
    char *name = NULL, *op = NULL, *full = NULL;
    int rc = clean_tar_path(x, archive_entry_pathname(ae), &name);

    if (rc < 0 || *name == '\0') {
        free(name);
        return rc;
    }
    rc = resolve_root_path(x, name, is_dir, &op);
    if (rc == 0 && *op != '\0') {
        rc = make_parents(x, op, e);
        if (rc == 0 && (full = under_root(x, op)) == NULL) {
            rc = oom(x->c->err);
        }
        if (rc == 0) {
            rc = kiln__fo_resolve(x->c, full, false, e);
        }
        if (rc == 0 && kiln__fo_exists(e) && !(is_dir && kiln__fo_is_dir(e))) {
            rc = kiln__snap_remove(x->c->w, full, x->c->err);
        }
        if (rc == 0) {
            rc = extract_one(x, a, ae, full, e);
        }
        if (rc == 0 && archive_entry_filetype(ae) == AE_IFREG) {
            kiln__fo_progress(x->c, (uint64_t)archive_entry_size(ae));
        }
    }
    free(name);
    free(op);
    free(full);
    return rc;
}

/* applyRootArchive(): every entry, then the directories' times, last
 * first. */
static int extract(ux_t *x, const kiln_snap_view_t *v,
                   const kiln_snap_entry_t *src)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    struct archive_entry *ae;
    struct archive *a = NULL;
    int fd = -1, r;
    int rc = e != NULL ? kiln__snap_open_file(v, src, &fd, x->c->err)
                       : oom(x->c->err);

    if (rc == 0 && (a = open_archive(fd)) == NULL) {
        rc = kiln__fail(x->c->err, KILN_EIO, "%s: cannot read archive",
                        src->path);
    }
    while (rc == 0 && (r = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = kiln__fail(x->c->err, KILN_EIO, "%s: %s", src->path,
                            archive_error_string(a));
        } else if (!kiln__fo_cancelled(x->c)) {
            rc = apply_entry(x, a, ae, e);
        } else {
            rc = KILN_ECANCELED;
        }
    }
    for (size_t i = x->n_dirs; rc == 0 && i > 0; i--) {
        kiln_snap_attr_t t = KILN_SNAP_ATTR_INIT;
        t.mtime_ns = x->dirs[i - 1].mtime;
        rc = kiln__snap_setattr(x->c->w, x->dirs[i - 1].path, &t, x->c->err);
    }
    if (a != NULL) {
        archive_read_free(a);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(e);
    return rc;
}

int kiln__fo_unpack(kiln__fo_ctx_t *c, const char *src, const char *dest,
                    const kiln_snap_attr_t *dir_attr)
{
    kiln_snap_entry_t *s = malloc(sizeof(*s)), *d = malloc(sizeof(*d));
    char *sj = kiln__gopath_join_root(src), *dj = kiln__gopath_clean(dest);
    ux_t x = {c, NULL, geteuid() == 0, NULL, 0, 0};
    int rc = (s && d && sj && dj) ? 0 : oom(c->err);

    if (rc == 0 && kiln__snap_resolve(c->src, sj, true, s, NULL) == 0 &&
        is_archive(c->src, s)) {
        rc = kiln__fo_mkdir_all(c, dj, dir_attr);
        if (rc == 0) {
            rc = kiln__fo_resolve(c, dj, true, d);
        }
        if (rc == 0) {
            x.root = d->path;
            rc = extract(&x, c->src, s);
        }
        rc = rc == 0 ? 1 : rc;
    }
    for (size_t i = 0; i < x.n_dirs; i++) {
        free(x.dirs[i].path);
    }
    free(x.dirs);
    free(sj);
    free(dj);
    free(s);
    free(d);
    return rc;
}
