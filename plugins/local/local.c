/*
 * The local source plugin: local://NAME is the directory the build maps
 * NAME to (kiln build --local NAME=DIR), selected with the source's include,
 * exclude and follow-path attrs exactly as BuildKit's client-side fsutil
 * walk selects it.
 *
 * resolve() walks the directory, hashes what changed since the last walk
 * (see hash.c) and pins the tree with a checksum of its content; fetch()
 * copies the same tree into the store, failing if anything changed in
 * between. The tree resolve() pinned is kept in memory for fetch() (a few
 * of them, most recent first), so fetch() neither walks nor hashes again.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "local.h"

#define KEEP_MAX 8

/* A pinned tree kept for fetch(); freed when evicted and unused. */
typedef struct kept {
    char key[65];
    char pin[72];
    lc_tree_t tree;
    unsigned refs; /* one for the list, one per fetch() using it */
} kept_t;

struct lc_state {
    const kiln_host_t *host;
    pthread_mutex_t lock;
    kept_t *kept[KEEP_MAX]; /* most recent first */
};

const kiln_host_t *lc_state_host(const lc_state_t *s)
{
    return s->host;
}

int lc_oom(const lc_ctx_t *c)
{
    return c->host->fail(c->job, -ENOMEM, "local source '%s': out of memory",
                         c->name);
}

int lc_fail_errno(const lc_ctx_t *c, int err, const char *what, const char *rel)
{
    return c->host->fail(c->job, -err, "local source '%s': %s %s/%s: %s",
                         c->name, what, c->root, rel, strerror(err));
}

int lc_fail_changed(const lc_ctx_t *c, const char *rel)
{
    return c->host->fail(c->job, -ESTALE,
                         "local source '%s': %s/%s changed during the build",
                         c->name, c->root, rel);
}

static void release(lc_state_t *s, kept_t *k)
{
    bool last;

    pthread_mutex_lock(&s->lock);
    last = --k->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        lc_tree_free(&k->tree);
        free(k);
    }
}

/* Keeps a pinned tree (taken), replacing one of the same key and pin. */
static void keep(lc_state_t *s, const char *key, const char *pin, lc_tree_t *t)
{
    kept_t *k = calloc(1, sizeof(*k)), *drop = NULL;
    size_t i = 0;

    if (k == NULL) {
        lc_tree_free(t);
        return;
    }
    snprintf(k->key, sizeof(k->key), "%s", key);
    snprintf(k->pin, sizeof(k->pin), "%s", pin);
    k->tree = *t;
    k->refs = 1;
    pthread_mutex_lock(&s->lock);
    while (i < KEEP_MAX - 1 && s->kept[i] != NULL &&
           !(strcmp(s->kept[i]->key, key) == 0 &&
             strcmp(s->kept[i]->pin, pin) == 0)) {
        i++;
    }
    drop = s->kept[i];
    memmove(&s->kept[1], &s->kept[0], i * sizeof(*s->kept));
    s->kept[0] = k;
    pthread_mutex_unlock(&s->lock);
    if (drop != NULL) {
        release(s, drop);
    }
}

static kept_t *find(lc_state_t *s, const char *key, const char *pin)
{
    kept_t *k = NULL;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < KEEP_MAX && s->kept[i] != NULL; i++) {
        if (strcmp(s->kept[i]->key, key) == 0 &&
            strcmp(s->kept[i]->pin, pin) == 0) {
            k = s->kept[i];
            k->refs++;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return k;
}

/* The key of a directory and pattern set: hex SHA-256 over the path and
 * the lists, each string NUL-terminated, each list ended by an empty
 * string (no pattern is empty after parsing). */
static int spec_key(const char *root, const lc_spec_t *spec, char key[65])
{
    static const char hex[] = "0123456789abcdef";
    const lc_strv_t *lists[] = {&spec->include, &spec->exclude, &spec->follow};
    size_t len = strlen(root) + 1 + 3, off;
    unsigned char d[LC_HASH_LEN];
    char *buf;

    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            len += strlen(lists[l]->v[i]) + 1;
        }
    }
    buf = malloc(len);
    if (buf == NULL) {
        return -ENOMEM;
    }
    off = strlen(root) + 1;
    memcpy(buf, root, off);
    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            size_t n = strlen(lists[l]->v[i]) + 1;
            memcpy(buf + off, lists[l]->v[i], n);
            off += n;
        }
        buf[off++] = '\0';
    }
    SHA256((unsigned char *)buf, off, d);
    free(buf);
    for (size_t i = 0; i < LC_HASH_LEN; i++) {
        key[2 * i] = hex[d[i] >> 4];
        key[2 * i + 1] = hex[d[i] & 0xf];
    }
    key[64] = '\0';
    return 0;
}

/* What resolve() and fetch() both start with: the directory, the
 * patterns, the key and the cache file (cache_path[0] is NUL without a
 * cache directory). */
static int setup(lc_ctx_t *c, const kiln_source_t *src, lc_spec_t *spec,
                 char key[65], char cache_path[PATH_MAX])
{
    const char *dir;
    int rc;

    memset(spec, 0, sizeof(*spec));
    if (c->name == NULL || *c->name == '\0') {
        return c->host->fail(c->job, -EINVAL,
                             "local source %s: no name after local://",
                             src->identifier);
    }
    dir = c->host->local_dir(c->job, c->name);
    if (dir == NULL) {
        return c->host->fail(c->job, -ENOENT,
                             "local source '%s': no directory given (kiln "
                             "build --local %s=DIR)",
                             c->name, c->name);
    }
    c->root = dir;
    rc = lc_spec_parse(c, src->attrs, spec);
    if (rc == 0 && spec_key(dir, spec, key) < 0) {
        rc = lc_oom(c);
    }
    cache_path[0] = '\0';
    if (rc == 0) {
        const char *cd = c->host->cache_dir(c->job);

        if (cd != NULL) {
            snprintf(cache_path, PATH_MAX, "%s/%s.idx", cd, key);
        } else {
            c->host->log(c->job, KILN_PLUGIN_LOG_WARN,
                         "local source '%s': no cache directory: every file "
                         "is hashed",
                         c->name);
        }
    }
    if (rc < 0) {
        lc_spec_free(spec);
    }
    return rc;
}

/* Walks and hashes the tree and computes its pin. */
static int scan(const lc_ctx_t *c, const lc_spec_t *spec,
                const char *cache_path, lc_tree_t *t, char pin[72])
{
    int rc = lc_walk(c, spec, t);

    if (rc == 0) {
        rc = lc_hash_tree(c, t, cache_path[0] != '\0' ? cache_path : NULL);
    }
    if (rc == 0 && lc_pin(t, pin) < 0) {
        rc = lc_oom(c);
    }
    if (rc < 0) {
        lc_tree_free(t);
    }
    return rc;
}

static int lc_resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    lc_state_t *s = state;
    lc_ctx_t c = {s->host, job, src->locator, NULL};
    lc_spec_t spec;
    lc_tree_t t;
    char key[65], pin[72], cache_path[PATH_MAX];
    int rc = setup(&c, src, &spec, key, cache_path);

    if (rc < 0) {
        return rc;
    }
    rc = scan(&c, &spec, cache_path, &t, pin);
    lc_spec_free(&spec);
    if (rc < 0) {
        return rc;
    }
    rc = s->host->set_pin(job, pin);
    if (rc < 0) {
        lc_tree_free(&t);
        return lc_oom(&c);
    }
    s->host->log(job, KILN_PLUGIN_LOG_INFO,
                 "local source '%s': %s: %zu entries, %s", c.name, c.root, t.n,
                 pin);
    keep(s, key, pin, &t);
    return 0;
}

static int lc_fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                    const char *dest_dir)
{
    lc_state_t *s = state;
    lc_ctx_t c = {s->host, job, src->locator, NULL};
    lc_spec_t spec;
    lc_tree_t t = {NULL, 0, 0, 0};
    char key[65], pin[72], cache_path[PATH_MAX];
    kept_t *k = NULL;
    int rc = setup(&c, src, &spec, key, cache_path);

    if (rc == 0 && src->pin == NULL) {
        rc = s->host->fail(job, -EINVAL,
                           "local source '%s': fetch without "
                           "a pin",
                           c.name);
    }
    if (rc == 0) {
        k = find(s, key, src->pin);
    }
    if (rc == 0 && k == NULL) {
        /* Not resolved by this process (or evicted): walk again. */
        rc = scan(&c, &spec, cache_path, &t, pin);
        if (rc == 0 && strcmp(pin, src->pin) != 0) {
            rc = s->host->fail(job, -ESTALE,
                               "local source '%s': %s changed during the "
                               "build (pinned %s, now %s)",
                               c.name, c.root, src->pin, pin);
        }
    }
    if (rc == 0) {
        const lc_tree_t *tree = k != NULL ? &k->tree : &t;
        int64_t t0 = lc_now_ns();

        rc = lc_copy_tree(&c, tree, dest_dir);
        if (rc == 0) {
            s->host->log(job, KILN_PLUGIN_LOG_DEBUG,
                         "local source '%s': copied %zu entries in %.3f s",
                         c.name, tree->n, (double)(lc_now_ns() - t0) / 1e9);
        }
    }
    if (k != NULL) {
        release(s, k);
    }
    lc_tree_free(&t);
    lc_spec_free(&spec);
    return rc;
}

static int lc_init(const kiln_host_t *host, void **state)
{
    lc_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return -ENOMEM;
    }
    s->host = host;
    pthread_mutex_init(&s->lock, NULL);
    *state = s;
    return 0;
}

static void lc_teardown(void *state)
{
    lc_state_t *s = state;

    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < KEEP_MAX && s->kept[i] != NULL; i++) {
        release(s, s->kept[i]);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const char *const local_schemes[] = {"local", NULL};

static const kiln_plugin_t local_plugin = {
    KILN_PLUGIN_HEADER,
    .name = "local",
    .version = "1.0.0",
    .description = "directories of the build's host (--local NAME=DIR)",
    .schemes = local_schemes,
    .init = lc_init,
    .teardown = lc_teardown,
    .translate = lc_translate,
    .resolve = lc_resolve,
    .fetch = lc_fetch,
};

KILN_PLUGIN_DEFINE(local_plugin)
