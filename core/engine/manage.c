/* The store management API: disk usage, prune, stored logs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"

struct du_ctx {
    kiln_du_cb cb;
    void *userdata;
};

static int du_entry(const kiln__store_du_entry_t *e, void *ud)
{
    struct du_ctx *c = ud;
    kiln_du_entry_t out = {
        .key = e->record.key,
        .digest = e->record.digest,
        .description = e->record.description,
        .size = e->size,
        .shared_size = e->shared_size,
        .created_ns = e->record.created_ns,
        .last_used_ns = e->record.last_used_ns,
        .in_use = e->in_use,
    };

    return c->cb != NULL ? c->cb(&out, c->userdata) : 0;
}

/* Cache mounts after the records: "cachemount:<hex>" entries. */
struct du_cm_ctx {
    struct du_ctx *c;
    uint64_t total;
};

static int du_cachemount(const kiln__store_cachemount_t *m, void *ud)
{
    struct du_cm_ctx *x = ud;
    char key[96], desc[512];
    kiln_du_entry_t out = {
        .key = key,
        .description = desc,
        .size = m->size,
        .created_ns = m->created_ns,
        .last_used_ns = m->last_used_ns,
        .in_use = m->in_use,
    };

    snprintf(key, sizeof(key), "cachemount:%s", m->hex);
    snprintf(desc, sizeof(desc), "cache mount '%s'", m->id);
    x->total += m->size;
    return x->c->cb != NULL ? x->c->cb(&out, x->c->userdata) : 0;
}

int kiln_engine_du(kiln_engine_t *engine, kiln_du_cb cb, void *userdata,
                   uint64_t *total, kiln_error_t *err)
{
    struct du_ctx c = {cb, userdata};
    struct du_cm_ctx cm = {&c, 0};
    kiln__store_usage_t usage = {0};
    int rc = kiln__store_du(engine->store, du_entry, &c, &usage, err);

    if (rc == 0) {
        rc = kiln__store_cachemounts(engine->store, du_cachemount, &cm, err);
    }
    if (rc == 0 && total != NULL) {
        *total = usage.total + cm.total;
    }
    return rc;
}

int kiln_engine_prune(kiln_engine_t *engine, const kiln_prune_options_t *opts,
                      uint64_t *freed, uint32_t *removed, kiln_error_t *err)
{
    kiln__store_prune_opts_t po = {0};
    int rc;

    if (opts == NULL || opts->size < sizeof(kiln_prune_options_t)) {
        return kiln__fail(err, KILN_EINVAL,
                          "kiln_prune_options_t: initialise it with "
                          "KILN_PRUNE_OPTIONS_INIT");
    }
    if (opts->keep_duration_ns < 0) {
        return kiln__fail(err, KILN_EINVAL, "negative keep duration");
    }
    po.all = opts->all != 0;
    po.keep_storage = opts->keep_storage;
    po.keep_duration_ns = opts->keep_duration_ns;
    rc = kiln__store_prune(engine->store, &po, freed, removed, err);
    if (rc == 0 && po.all) {
        /* Cache mounts are no records: only --all takes them (those no
         * build holds), as buildctl prune --all does. */
        uint64_t cm_freed = 0;
        uint32_t cm_removed = 0;

        rc = kiln__store_cachemounts_prune(engine->store, &cm_freed,
                                           &cm_removed, err);
        if (freed != NULL) {
            *freed += cm_freed;
        }
        if (removed != NULL) {
            *removed += cm_removed;
        }
    }
    return rc;
}

/* Records matching a `kiln logs` query, one per op digest (the most
 * recently used record of each). */
struct logs_ctx {
    const char *query; /* as given */
    const char *hex;   /* query without "sha256:" */
    bool by_prefix;    /* hex is a plausible digest prefix */
    char (*keys)[KILN_DIGEST_STRLEN + 1];
    char (*digests)[KILN_DIGEST_STRLEN + 1];
    char **names;
    size_t n;
    bool oom;
};

static bool is_hex_prefix(const char *s)
{
    size_t n = strlen(s);

    if (n < 4 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool record_matches(const struct logs_ctx *c,
                           const kiln__store_record_t *r)
{
    if (r->description != NULL && strcmp(r->description, c->query) == 0) {
        return true;
    }
    if (!c->by_prefix || r->digest == NULL) {
        return false;
    }
    return strncmp(r->digest + 7, c->hex, strlen(c->hex)) == 0;
}

static int logs_match(const kiln__store_record_t *r, void *ud)
{
    struct logs_ctx *c = ud;
    size_t k = c->n + 1;
    void *p;

    if (!record_matches(c, r)) {
        return 0;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->digests[i], r->digest) == 0) {
            return 0; /* an older record of the same op */
        }
    }
    if ((p = realloc(c->keys, k * sizeof(*c->keys))) != NULL) {
        c->keys = p;
    }
    if (p != NULL && (p = realloc(c->digests, k * sizeof(*c->digests)))) {
        c->digests = p;
    }
    if (p != NULL && (p = realloc(c->names, k * sizeof(*c->names)))) {
        c->names = p;
    }
    if (p == NULL) {
        c->oom = true;
        return 1;
    }
    snprintf(c->keys[c->n], sizeof(c->keys[c->n]), "%s", r->key);
    snprintf(c->digests[c->n], sizeof(c->digests[c->n]), "%s", r->digest);
    c->names[c->n] = strdup(r->description != NULL ? r->description : "");
    if (c->names[c->n] == NULL) {
        c->oom = true;
        return 1;
    }
    c->n++;
    return 0;
}

static void logs_ctx_free(struct logs_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->names[i]);
    }
    free(c->names);
    free(c->keys);
    free(c->digests);
}

static int ambiguous(const struct logs_ctx *c, kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    kiln__buf_printf(&b, "'%s' matches %zu vertices:", c->query, c->n);
    for (size_t i = 0; i < c->n && i < 10; i++) {
        kiln__buf_printf(&b, " %.19s (%s)%s", c->digests[i], c->names[i],
                         i + 1 < c->n ? "," : "");
    }
    if (c->n > 10) {
        kiln__buf_puts(&b, " ...");
    }
    kiln__buf_puts(&b, "; give more digits");
    rc = kiln__fail(err, KILN_EINVAL, "%s",
                    kiln__buf_ok(&b) ? (char *)b.data : "ambiguous query");
    kiln__buf_free(&b);
    return rc;
}

static int copy_fd(int in, int out, kiln_error_t *err)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return kiln__fail(err, KILN_EIO, "reading a log: %s",
                              strerror(errno));
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w < 0) {
                return kiln__fail(err, KILN_EIO, "writing a log: %s",
                                  strerror(errno));
            }
            off += w;
        }
    }
    return 0;
}

int kiln_engine_logs(kiln_engine_t *engine, const char *query, int fd,
                     kiln_error_t *err)
{
    struct logs_ctx c = {0};
    int in = -1, rc;

    if (query == NULL || query[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL, "no vertex given");
    }
    c.query = query;
    c.hex = strncmp(query, "sha256:", 7) == 0 ? query + 7 : query;
    c.by_prefix = is_hex_prefix(c.hex);
    rc = kiln__store_each_record(engine->store, logs_match, &c, err);
    if (rc == 0 && c.oom) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    } else if (rc == 0 && c.n == 0) {
        rc = kiln__fail(err, KILN_ENOENT,
                        "no vertex in the store has a digest starting with "
                        "or a name equal to '%s'",
                        query);
    } else if (rc == 0 && c.n > 1) {
        rc = ambiguous(&c, err);
    } else if (rc == 0) {
        rc = kiln__store_open_log(engine->store, c.keys[0], &in, NULL, err);
        if (rc == KILN_ENOENT) {
            rc = kiln__fail(err, KILN_ENOENT, "%.19s (%s) wrote no output",
                            c.digests[0], c.names[0]);
        }
    }
    if (rc == 0) {
        rc = copy_fd(in, fd, err);
        close(in);
    }
    logs_ctx_free(&c);
    return rc;
}
