/* Attribute maps handed to plugins: string keys in strcmp order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/registry.h"

struct kiln_attrs {
    size_t n, cap;
    char **keys;
    char **values;
};

kiln_attrs_t *kiln__attrs_new(void)
{
    return calloc(1, sizeof(kiln_attrs_t));
}

void kiln__attrs_free(kiln_attrs_t *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        free(a->keys[i]);
        free(a->values[i]);
    }
    free(a->keys);
    free(a->values);
    free(a);
}

/* The index of `key`, or where it would go (*found false). */
static size_t find(const kiln_attrs_t *a, const char *key, bool *found)
{
    size_t lo = 0, hi = a->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->keys[mid], key);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static int grow(kiln_attrs_t *a)
{
    size_t cap = a->cap ? a->cap * 2 : 8;
    char **k = realloc(a->keys, cap * sizeof(*k));
    char **v;

    if (k == NULL) {
        return -ENOMEM;
    }
    a->keys = k;
    v = realloc(a->values, cap * sizeof(*v));
    if (v == NULL) {
        return -ENOMEM;
    }
    a->values = v;
    a->cap = cap;
    return 0;
}

int kiln__attrs_set(kiln_attrs_t *a, const char *key, const char *value)
{
    bool found;
    size_t i;
    char *v, *k;

    if (a == NULL || key == NULL || value == NULL) {
        return -EINVAL;
    }
    i = find(a, key, &found);
    if ((v = strdup(value)) == NULL) {
        return -ENOMEM;
    }
    if (found) {
        free(a->values[i]);
        a->values[i] = v;
        return 0;
    }
    if ((a->n == a->cap && grow(a) < 0) || (k = strdup(key)) == NULL) {
        free(v);
        return -ENOMEM;
    }
    memmove(a->keys + i + 1, a->keys + i, (a->n - i) * sizeof(*a->keys));
    memmove(a->values + i + 1, a->values + i, (a->n - i) * sizeof(*a->values));
    a->keys[i] = k;
    a->values[i] = v;
    a->n++;
    return 0;
}

const char *kiln__attrs_get(const kiln_attrs_t *a, const char *key)
{
    bool found;
    size_t i;

    if (a == NULL || key == NULL) {
        return NULL;
    }
    i = find(a, key, &found);
    return found ? a->values[i] : NULL;
}

size_t kiln__attrs_count(const kiln_attrs_t *a)
{
    return a != NULL ? a->n : 0;
}

const char *kiln__attrs_key(const kiln_attrs_t *a, size_t i)
{
    return a != NULL && i < a->n ? a->keys[i] : NULL;
}

const char *kiln__attrs_value(const kiln_attrs_t *a, size_t i)
{
    return a != NULL && i < a->n ? a->values[i] : NULL;
}
