/*
 * What the plugin keeps between calls, in the host's kv store (small JSON
 * records), and the one file a fetch writes, copied out of the blob store.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include <jansson.h>

#include "http.h"

/* ---- kv records ---- */

static char *dup_member(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));

    return v != NULL ? strdup(v) : NULL;
}

int http_record_get(const http_call_t *c, const char *key, http_record_t *rec)
{
    const kiln_host_t *h = c->host;
    size_t size = 4096, len = 0;
    char *buf = malloc(size);
    json_t *obj;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (buf == NULL) {
        return h->fail(c->job, -ENOMEM, "out of memory");
    }
    rc = h->kv_get(c->job, key, buf, size, &len);
    if (rc == -ERANGE) {
        char *bigger = realloc(buf, len);
        if (bigger == NULL) {
            free(buf);
            return h->fail(c->job, -ENOMEM, "out of memory");
        }
        buf = bigger;
        size = len;
        rc = h->kv_get(c->job, key, buf, size, &len);
    }
    if (rc < 0) {
        free(buf);
        return rc == -ENOENT
                   ? rc
                   : h->fail(c->job, rc, "reading the record of %s: %s", key,
                             strerror(-rc));
    }
    obj = json_loadb(buf, len, 0, NULL);
    free(buf);
    rec->digest = dup_member(obj, "digest");
    rec->filename = dup_member(obj, "filename");
    rec->etag = dup_member(obj, "etag");
    rec->last_modified = dup_member(obj, "last_modified");
    rec->disposition = dup_member(obj, "disposition");
    json_decref(obj);
    if (rec->digest == NULL) {
        /* Unreadable or from elsewhere: as good as none. */
        h->log(c->job, KILN_PLUGIN_LOG_WARN, "ignoring a bad record for %s",
               key);
        http_record_clear(rec);
        return -ENOENT;
    }
    return 0;
}

static int set_member(json_t *obj, const char *key, const char *v)
{
    return v == NULL ? 0 : json_object_set_new(obj, key, json_string(v));
}

int http_record_set(const http_call_t *c, const char *key,
                    const http_record_t *rec)
{
    const kiln_host_t *h = c->host;
    json_t *obj = json_object();
    char *text = NULL;
    int rc = -ENOMEM;

    if (obj != NULL && set_member(obj, "digest", rec->digest) == 0 &&
        set_member(obj, "filename", rec->filename) == 0 &&
        set_member(obj, "etag", rec->etag) == 0 &&
        set_member(obj, "last_modified", rec->last_modified) == 0 &&
        set_member(obj, "disposition", rec->disposition) == 0) {
        text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(obj);
    if (text == NULL) {
        return h->fail(c->job, -ENOMEM, "out of memory");
    }
    rc = h->kv_set(c->job, key, text, strlen(text));
    free(text);
    if (rc < 0) {
        return h->fail(c->job, rc, "recording the download of %s: %s", key,
                       strerror(-rc));
    }
    return 0;
}

void http_record_clear(http_record_t *rec)
{
    free(rec->digest);
    free(rec->filename);
    free(rec->etag);
    free(rec->last_modified);
    free(rec->disposition);
    memset(rec, 0, sizeof(*rec));
}

bool http_blob_exists(const http_call_t *c, const char *digest)
{
    char path[PATH_MAX];

    return c->host->blob_path(c->job, digest, path, sizeof(path)) == 0;
}

/* ---- The fetched file ---- */

/* in -> out from offset 0: a reflink, else copy_file_range, else
 * read/write. Returns 0 or -errno. */
static int copy_fd(int in, int out)
{
    char buf[65536];
    ssize_t n;

    if (ioctl(out, FICLONE, in) == 0) {
        return 0;
    }
    for (;;) {
        n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
    }
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
        errno != EOPNOTSUPP && errno != EBADF) {
        return -errno;
    }
    /* Unsupported here: read and write from where it stopped. */
    for (;;) {
        n = read(in, buf, sizeof(buf));
        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return -errno;
            }
            off += w;
        }
    }
}

/* Owner, mode and times of the new file, in that order (chown may clear
 * mode bits). */
static int set_attrs(const http_call_t *c, const http_src_t *s, int fd,
                     const char *path, const char *last_modified)
{
    const kiln_host_t *h = c->host;
    struct timespec ts[2] = {{0, 0}, {0, 0}};
    mode_t mode = s->perm != 0 ? (mode_t)(s->perm & 0777) : 0600;
    time_t t;

    if (s->uid != 0 || s->gid != 0) {
        if (geteuid() == 0) {
            if (fchown(fd, (uid_t)s->uid, (gid_t)s->gid) < 0) {
                return h->fail(c->job, -errno, "chown %s to %lld:%lld: %s",
                               path, s->uid, s->gid, strerror(errno));
            }
        } else {
            h->log(c->job, KILN_PLUGIN_LOG_WARN,
                   "not running as root: %s keeps its owner, not %lld:%lld",
                   path, s->uid, s->gid);
        }
    }
    if (fchmod(fd, mode) < 0) {
        return h->fail(c->job, -errno, "chmod %s: %s", path, strerror(errno));
    }
    if (http_parse_time(last_modified, &t)) {
        ts[0].tv_sec = ts[1].tv_sec = t;
    }
    if (futimens(fd, ts) < 0) {
        return h->fail(c->job, -errno, "setting the times of %s: %s", path,
                       strerror(errno));
    }
    return 0;
}

int http_materialize(const http_call_t *c, const http_src_t *s,
                     const char *digest, const char *name,
                     const char *last_modified, const char *dest_dir)
{
    const kiln_host_t *h = c->host;
    char path[PATH_MAX];
    int in = -1, out = -1, rc;

    if (*name == '\0' || http_bad_file_name(name)) {
        return h->fail(c->job, -EINVAL, "%s: bad file name \"%s\"", s->url,
                       name);
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dest_dir, name) >=
        sizeof(path)) {
        return h->fail(c->job, -ENAMETOOLONG, "%s/%s: name too long", dest_dir,
                       name);
    }
    rc = h->blob_open(c->job, digest, &in);
    if (rc < 0) {
        return h->fail(c->job, rc, "%s: opening blob %s: %s", s->url, digest,
                       strerror(-rc));
    }
    out =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = h->fail(c->job, -errno, "creating %s: %s", path, strerror(errno));
        goto out;
    }
    rc = copy_fd(in, out);
    if (rc < 0) {
        rc = h->fail(c->job, rc, "writing %s: %s", path, strerror(-rc));
        goto out;
    }
    rc = set_attrs(c, s, out, path, last_modified);
    if (close(out) < 0 && rc == 0) {
        rc = h->fail(c->job, -errno, "writing %s: %s", path, strerror(errno));
    }
    out = -1;
out:
    if (out >= 0) {
        close(out);
    }
    close(in);
    return rc;
}
