/* Loading source plugins, and finding the one that owns a scheme. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/registry.h"

#ifndef KILN_PLUGINDIR
#error "KILN_PLUGINDIR must name the installed plugin directory"
#endif
#ifndef KILN_BUILD_ROOT
#error "KILN_BUILD_ROOT must name the build tree"
#endif

/* The descriptor members every ABI 1.x plugin has. */
#define DESC_MIN_SIZE                                                          \
    (offsetof(kiln_plugin_t, fetch) + sizeof(((kiln_plugin_t *)0)->fetch))

typedef const kiln_plugin_t *(*entry_fn)(void);

bool kiln__source_scheme(const char *identifier, size_t *len)
{
    const char *sep = strstr(identifier, "://");

    if (sep == NULL || sep == identifier) {
        return false;
    }
    *len = (size_t)(sep - identifier);
    return true;
}

const kiln__plugin_t *kiln__registry_find(const kiln__registry_t *r,
                                          const char *scheme, size_t len)
{
    for (size_t i = 0; r != NULL && i < r->n; i++) {
        for (const char *const *s = r->v[i].desc->schemes; *s != NULL; s++) {
            if (strlen(*s) == len && memcmp(*s, scheme, len) == 0) {
                return &r->v[i];
            }
        }
    }
    return NULL;
}

char *kiln__registry_names(const kiln__registry_t *r)
{
    kiln__buf_t b = KILN_BUF_INIT;

    for (size_t i = 0; r != NULL && i < r->n; i++) {
        kiln__buf_printf(&b, "%s%s", i > 0 ? ", " : "", r->v[i].desc->name);
    }
    if (b.len == 0) {
        kiln__buf_puts(&b, "none");
    }
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

static bool loaded_name(const kiln__registry_t *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->v[i].desc->name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* The checks on a descriptor before anything but its header is read. */
static int check_desc(const kiln_plugin_t *d, const char *path,
                      kiln_error_t *err)
{
    if (d == NULL || d->magic != KILN_PLUGIN_MAGIC) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: not a kiln plugin (%s() returned no kiln "
                          "descriptor)",
                          path, KILN_PLUGIN_ENTRY);
    }
    if (d->abi_major != KILN_PLUGIN_ABI_MAJOR ||
        d->abi_minor > KILN_PLUGIN_ABI_MINOR) {
        return kiln__fail(err, KILN_ENOTSUP,
                          "%s: built for plugin ABI %u.%u, this kiln provides "
                          "%u.%u; rebuild it against this kiln's "
                          "<kiln/plugin.h>",
                          path, d->abi_major, d->abi_minor,
                          KILN_PLUGIN_ABI_MAJOR, KILN_PLUGIN_ABI_MINOR);
    }
    if (d->size < DESC_MIN_SIZE) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: plugin descriptor of %u bytes, ABI %u.%u needs "
                          "at least %zu",
                          path, d->size, d->abi_major, d->abi_minor,
                          (size_t)DESC_MIN_SIZE);
    }
    if (d->name == NULL || d->name[0] == '\0' || d->schemes == NULL ||
        d->schemes[0] == NULL || d->resolve == NULL || d->fetch == NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: plugin descriptor without a name, schemes, "
                          "resolve or fetch",
                          path);
    }
    /* The name is a directory under the store (cache_dir) and a key-value
     * namespace: keep it a plain word. */
    if (strlen(d->name) > 64 ||
        strspn(d->name, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
            strlen(d->name)) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: plugin name '%.64s' is not 1 to 64 of a-z, "
                          "0-9, '_' and '-'",
                          path, d->name);
    }
    return 0;
}

/* A scheme of `d` that a loaded plugin already owns is an error. */
static int check_schemes(const kiln__registry_t *r, const kiln_plugin_t *d,
                         const char *path, kiln_error_t *err)
{
    for (const char *const *s = d->schemes; *s != NULL; s++) {
        const kiln__plugin_t *o = kiln__registry_find(r, *s, strlen(*s));

        if ((*s)[0] == '\0' || strstr(*s, "://") != NULL) {
            return kiln__fail(err, KILN_EINVAL, "%s: invalid scheme '%s'",
                              path, *s);
        }
        if (o != NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "scheme '%s' is claimed by two plugins: %s (%s) "
                              "and %s (%s)",
                              *s, o->path, o->desc->name, path, d->name);
        }
    }
    return 0;
}

/*
 * Modules initialised in this process. A module dlopen()ed by several
 * registries (one per engine, and one per kiln_source_translate()) is one
 * copy of its code and globals, so its init() runs once, on the first
 * load, and its teardown() on the last unload; every registry shares its
 * state. Loads and unloads take the lock, so init() and teardown() never
 * run at the same time as each other.
 */
struct inited {
    void *dl; /* dlopen()'s handle: the same for every load of a file */
    void *state;
    size_t refs;
};

static pthread_mutex_t inited_mu = PTHREAD_MUTEX_INITIALIZER;
static struct inited *inited;
static size_t n_inited;

/* Runs p's init() unless the module is initialised already; fills
 * p->state. Call with inited_mu held. */
static int init_locked(kiln__plugin_t *p)
{
    struct inited *v;
    int rc = 0;

    for (size_t i = 0; i < n_inited; i++) {
        if (inited[i].dl == p->dl) {
            inited[i].refs++;
            p->state = inited[i].state;
            return 0;
        }
    }
    v = realloc(inited, (n_inited + 1) * sizeof(*v));
    if (v == NULL) {
        return -ENOMEM;
    }
    inited = v;
    if (p->desc->init != NULL && (rc = p->desc->init(&kiln__host,
                                                     &p->state)) != 0) {
        return rc;
    }
    inited[n_inited].dl = p->dl;
    inited[n_inited].state = p->state;
    inited[n_inited].refs = 1;
    n_inited++;
    return 0;
}

/* Drops a registry's hold on p's module: teardown() with the last. */
static void fini(kiln__plugin_t *p)
{
    pthread_mutex_lock(&inited_mu);
    for (size_t i = 0; i < n_inited; i++) {
        if (inited[i].dl == p->dl && --inited[i].refs == 0) {
            if (p->desc->teardown != NULL) {
                p->desc->teardown(p->state);
            }
            inited[i] = inited[--n_inited];
            break;
        }
    }
    pthread_mutex_unlock(&inited_mu);
}

static int load_one(kiln__registry_t *r, const char *path, kiln_error_t *err)
{
    kiln__plugin_t p = {0};
    kiln__plugin_t *v;
    entry_fn entry;
    int rc;

    p.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p.dl == NULL) {
        return kiln__fail(err, KILN_EINVAL, "%s", dlerror());
    }
    *(void **)&entry = dlsym(p.dl, KILN_PLUGIN_ENTRY);
    if (entry == NULL) {
        rc = kiln__fail(err, KILN_EINVAL,
                        "%s: not a kiln plugin (no %s symbol)", path,
                        KILN_PLUGIN_ENTRY);
        goto fail;
    }
    p.desc = entry();
    rc = check_desc(p.desc, path, err);
    if (rc == 0 && loaded_name(r, p.desc->name)) {
        dlclose(p.dl); /* overridden by an earlier directory */
        return 0;
    }
    if (rc == 0) {
        rc = check_schemes(r, p.desc, path, err);
    }
    if (rc < 0) {
        goto fail;
    }
    if ((p.path = realpath(path, NULL)) == NULL ||
        (v = realloc(r->v, (r->n + 1) * sizeof(*v))) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        goto fail;
    }
    r->v = v;
    pthread_mutex_lock(&inited_mu);
    rc = init_locked(&p);
    pthread_mutex_unlock(&inited_mu);
    if (rc != 0) {
        rc = kiln__fail(err, rc < 0 ? rc : KILN_EINVAL,
                        "%s: plugin '%s' failed to initialise: %s", path,
                        p.desc->name, strerror(rc < 0 ? -rc : EINVAL));
        goto fail;
    }
    r->v[r->n++] = p;
    return 0;
fail:
    free(p.path);
    dlclose(p.dl);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_plugin_file(const char *dir, const char *name, bool prefixed)
{
    size_t n = strlen(name);
    char path[PATH_MAX];
    struct stat st;

    if (n < 4 || strcmp(name + n - 3, ".so") != 0 ||
        (prefixed && strncmp(name, "kiln-", 5) != 0)) {
        return false;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The candidate files of `dir`, sorted; with `nested`, those of its
 * subdirectories (the build tree's plugins/<name>/kiln-<name>.so). A
 * missing directory has none.
 */
static int list_dir(const char *dir, bool nested, char ***out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    int rc = 0;

    *n = 0;
    if (d == NULL) {
        *out = NULL;
        return 0;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        char **nv;

        if (e->d_name[0] == '.') {
            continue;
        }
        if (nested) {
            DIR *sd;
            struct dirent *se;

            snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
            if ((sd = opendir(sub)) == NULL) {
                continue;
            }
            while (rc == 0 && (se = readdir(sd)) != NULL) {
                if (!is_plugin_file(sub, se->d_name, true)) {
                    continue;
                }
                nv = realloc(v, (*n + 1) * sizeof(*v));
                if (nv == NULL || asprintf(&nv[*n], "%s/%s", sub,
                                           se->d_name) < 0) {
                    v = nv != NULL ? nv : v;
                    rc = KILN_ENOMEM;
                    break;
                }
                v = nv;
                (*n)++;
            }
            closedir(sd);
            continue;
        }
        if (!is_plugin_file(dir, e->d_name, false)) {
            continue;
        }
        nv = realloc(v, (*n + 1) * sizeof(*v));
        if (nv == NULL || asprintf(&nv[*n], "%s/%s", dir, e->d_name) < 0) {
            v = nv != NULL ? nv : v;
            rc = KILN_ENOMEM;
            break;
        }
        v = nv;
        (*n)++;
    }
    closedir(d);
    if (v != NULL) {
        qsort(v, *n, sizeof(*v), cmp_str);
    }
    *out = v;
    return rc;
}

static int load_dir(kiln__registry_t *r, const char *dir, bool nested,
                    kiln_error_t *err)
{
    char **files;
    size_t n;
    int rc = list_dir(dir, nested, &files, &n);

    if (rc < 0) {
        rc = kiln__fail(err, rc, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            rc = load_one(r, files[i], err);
        }
        free(files[i]);
    }
    free(files);
    return rc;
}

/* True when the running program is in kiln's build tree. */
static bool in_build_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    size_t root = strlen(KILN_BUILD_ROOT);

    if (n <= 0) {
        return false;
    }
    exe[n] = '\0';
    return strncmp(exe, KILN_BUILD_ROOT, root) == 0 && exe[root] == '/';
}

int kiln__registry_load(const char *path_list, kiln_error_t *err,
                        kiln__registry_t **out)
{
    kiln__registry_t *r = calloc(1, sizeof(*r));
    char *list = NULL, *save = NULL;
    int rc = 0;

    *out = NULL;
    if (r == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (path_list == NULL) {
        path_list = getenv("KILN_PLUGIN_PATH");
    }
    if (path_list != NULL && (list = strdup(path_list)) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (char *d = list != NULL ? strtok_r(list, ":", &save) : NULL;
         rc == 0 && d != NULL; d = strtok_r(NULL, ":", &save)) {
        rc = load_dir(r, d, false, err);
    }
    free(list);
    if (rc == 0) {
        rc = load_dir(r, KILN_PLUGINDIR, false, err);
    }
    if (rc == 0 && in_build_tree()) {
        rc = load_dir(r, KILN_BUILD_ROOT "/plugins", true, err);
    }
    if (rc < 0) {
        kiln__registry_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void kiln__registry_free(kiln__registry_t *r)
{
    const char *keep = getenv("KILN_NO_DLCLOSE");

    if (r == NULL) {
        return;
    }
    for (size_t i = r->n; i > 0; i--) {
        kiln__plugin_t *p = &r->v[i - 1];

        fini(p);
        if (keep == NULL || keep[0] == '\0') {
            dlclose(p->dl);
        }
        free(p->path);
    }
    free(r->v);
    free(r);
}
