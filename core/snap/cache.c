/*
 * Listings of hot directories of immutable layers, per view. A lookup in a
 * deep view costs one or two fstatat() per layer; when the same directory
 * of a layer is looked up again and again (many files written into one
 * directory, a tar unpacked), its listing answers instead: which names
 * exist, their type, whiteouts and the opaque marker. Layers a writer is
 * still changing (the top of a writer's view) are never cached. Bounded:
 * past the limits, lookups simply go to the kernel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

#define HOT_AFTER   3         /* lookups before a listing is read */
#define MAX_SLOTS   (1 << 16) /* directories tracked per view */
#define MAX_BYTES   (16u << 20)
#define MAX_ENTRIES 100000 /* per listing */

typedef struct listing_ent {
    const char *name;
    unsigned char type; /* DT_* */
} listing_ent_t;

struct snap_listing {
    listing_ent_t *ents;
    size_t n;
    char *names;
};

typedef struct cache_slot {
    char *dir; /* NULL: free */
    int layer;
    unsigned hits;
    bool failed; /* too large or unreadable: never again */
    snap_listing_t *list;
} cache_slot_t;

struct snap_cache {
    pthread_mutex_t mu;
    cache_slot_t *slots;
    size_t cap, n, bytes;
    int mutable_from;
};

int kiln__snap_cache_new(int mutable_from, snap_cache_t **out)
{
    snap_cache_t *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return KILN_ENOMEM;
    }
    c->mutable_from = mutable_from;
    *out = c;
    return 0;
}

static void listing_free(snap_listing_t *l)
{
    if (l != NULL) {
        free(l->ents);
        free(l->names);
        free(l);
    }
}

void kiln__snap_cache_free(snap_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].dir);
        listing_free(c->slots[i].list);
    }
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static size_t slot_of(const snap_cache_t *c, int layer, const char *dir)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(unsigned)layer;

    for (const char *p = dir; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        const cache_slot_t *s = &c->slots[i];
        if (s->dir == NULL || (s->layer == layer && strcmp(s->dir, dir) == 0)) {
            return i;
        }
    }
}

static bool cache_grow(snap_cache_t *c)
{
    snap_cache_t n = *c;

    n.cap = c->cap ? c->cap * 2 : 256;
    n.slots = calloc(n.cap, sizeof(*n.slots));
    if (n.slots == NULL) {
        return false;
    }
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].dir != NULL) {
            n.slots[slot_of(&n, c->slots[i].layer, c->slots[i].dir)] =
                c->slots[i];
        }
    }
    free(c->slots);
    c->slots = n.slots;
    c->cap = n.cap;
    return true;
}

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const listing_ent_t *)a)->name,
                  ((const listing_ent_t *)b)->name);
}

/* Reads the names of a directory into a sorted listing. */
static snap_listing_t *listing_read(int fd, size_t *bytes)
{
    snap_listing_t *l = calloc(1, sizeof(*l));
    kiln__buf_t names = KILN_BUF_INIT, types = KILN_BUF_INIT;
    struct dirent *d;
    DIR *dir = fdopendir(fd);
    size_t off = 0;

    if (dir == NULL || l == NULL) {
        close(fd);
        free(l);
        return NULL;
    }
    while ((d = readdir(dir)) != NULL && l->n <= MAX_ENTRIES) {
        if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) {
            kiln__buf_append(&names, d->d_name, strlen(d->d_name) + 1);
            kiln__buf_putc(&types, d->d_type);
            l->n++;
        }
    }
    closedir(dir);
    l->ents = malloc((l->n ? l->n : 1) * sizeof(*l->ents));
    if (!kiln__buf_ok(&names) || !kiln__buf_ok(&types) || l->ents == NULL ||
        l->n > MAX_ENTRIES) {
        kiln__buf_free(&names);
        kiln__buf_free(&types);
        listing_free(l);
        return NULL;
    }
    l->names = (char *)names.data;
    for (size_t i = 0; i < l->n; i++) {
        l->ents[i].name = l->names + off;
        l->ents[i].type = types.data[i];
        off += strlen(l->ents[i].name) + 1;
    }
    kiln__buf_free(&types);
    qsort(l->ents, l->n, sizeof(*l->ents), ent_cmp);
    *bytes = names.len + l->n * sizeof(*l->ents);
    return l;
}

static void load(const kiln_snap_view_t *v, snap_cache_t *c, cache_slot_t *s)
{
    size_t bytes = 0;
    int fd = openat(v->fds[s->layer], kiln__snap_rel(s->dir),
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    s->list = fd >= 0 ? listing_read(fd, &bytes) : NULL;
    if (s->list != NULL && c->bytes + bytes > MAX_BYTES) {
        listing_free(s->list);
        s->list = NULL;
    }
    s->failed = s->list == NULL;
    c->bytes += s->list != NULL ? bytes : 0;
}

const snap_listing_t *kiln__snap_cache_get(const kiln_snap_view_t *v, int layer,
                                           const char *dir)
{
    snap_cache_t *c = v->cache;
    const snap_listing_t *l = NULL;
    cache_slot_t *s;

    if (c == NULL || layer >= c->mutable_from) {
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    if ((c->n + 1) * 2 > c->cap && c->n < MAX_SLOTS && !cache_grow(c)) {
        goto out;
    }
    if (c->cap == 0) {
        goto out;
    }
    s = &c->slots[slot_of(c, layer, dir)];
    if (s->dir == NULL) {
        if ((c->n + 1) * 2 > c->cap) {
            goto out; /* full: tracked directories only */
        }
        s->dir = strdup(dir);
        if (s->dir == NULL) {
            goto out;
        }
        s->layer = layer;
        c->n++;
    }
    if (s->list == NULL && !s->failed && ++s->hits >= HOT_AFTER) {
        load(v, c, s);
    }
    l = s->list;
out:
    pthread_mutex_unlock(&c->mu);
    return l;
}

int kiln__snap_listing_find(const snap_listing_t *l, const char *name)
{
    listing_ent_t key = {name, 0};
    const listing_ent_t *e =
        bsearch(&key, l->ents, l->n, sizeof(*l->ents), ent_cmp);

    if (e == NULL) {
        return -1;
    }
    return e->type;
}
