/*
 * Source plugins on the host side: the loader and registry (registry.c),
 * attribute maps (attrs.c) and the host table with its jobs (host.c).
 * Private to core/.
 *
 * Loading. Directories are searched in order: each of the plugin path
 * (colon-separated: the engine's plugin_path option, else
 * $KILN_PLUGIN_PATH), then the installed plugin directory, then, when the
 * running program lives in kiln's build tree, the plugins built there. In a
 * directory every regular file named *.so is a candidate (in the build
 * tree, kiln-*.so one level down), in name order. A plugin whose name was
 * loaded from an earlier directory is skipped, so a directory early on the
 * path overrides an installed plugin of the same name. Anything else that
 * is wrong is an error naming the file: dlopen failures, no entry point,
 * a bad magic, an ABI this kiln does not provide (both versions named), a
 * descriptor without a name, schemes, resolve or fetch, an init failure,
 * and a scheme claimed by two plugins (both files named).
 */
#ifndef KILN_PLUGIN_REGISTRY_H
#define KILN_PLUGIN_REGISTRY_H

#include <stdatomic.h>

#include <kiln/plugin.h>

#include "internal.h"

typedef struct kiln__plugin {
    const kiln_plugin_t *desc;
    void *dl;
    void *state;
    char *path;
} kiln__plugin_t;

typedef struct kiln__registry {
    kiln__plugin_t *v;
    size_t n;
} kiln__registry_t;

/* The host table handed to every plugin's init(). */
extern const kiln_host_t kiln__host;

/*
 * Loads the plugins of `path_list` (NULL: $KILN_PLUGIN_PATH; "" or unset:
 * none) and of the installed and build-tree directories. On success *out is
 * freed with kiln__registry_free(). Errors: KILN_EINVAL / KILN_ENOTSUP with
 * a message naming the file, KILN_ENOMEM.
 */
int kiln__registry_load(const char *path_list, kiln_error_t *err,
                        kiln__registry_t **out);

/* Tears every plugin down and unloads it (no dlclose with KILN_NO_DLCLOSE
 * set, so that leak reports can name plugin frames). NULL is a no-op. */
void kiln__registry_free(kiln__registry_t *r);

/* The plugin that owns `scheme` (len bytes), or NULL. */
const kiln__plugin_t *kiln__registry_find(const kiln__registry_t *r,
                                          const char *scheme, size_t len);

/* "local, http" (or "none"), malloc'ed; NULL when out of memory. */
char *kiln__registry_names(const kiln__registry_t *r);

/* Splits an identifier at its first "://": *len is the scheme's length.
 * False when there is none. */
bool kiln__source_scheme(const char *identifier, size_t *len);

/* ---- attrs.c ---- */

/* A new, empty map; NULL when out of memory. */
kiln_attrs_t *kiln__attrs_new(void);
void kiln__attrs_free(kiln_attrs_t *a);
int kiln__attrs_set(kiln_attrs_t *a, const char *key, const char *value);
const char *kiln__attrs_get(const kiln_attrs_t *a, const char *key);
size_t kiln__attrs_count(const kiln_attrs_t *a);
const char *kiln__attrs_key(const kiln_attrs_t *a, size_t i);
const char *kiln__attrs_value(const kiln_attrs_t *a, size_t i);

/* ---- host.c ---- */

struct kiln__store;
struct kiln_solve;
struct kiln__node;

/* Hands out an empty layer directory (the solver's, for add_layer). */
typedef int (*kiln__job_layer_fn)(void *ud, char *path, size_t size,
                                  kiln_error_t *err);

/* The layer named `key` for add_layer_keyed: the store's one, stacked as
 * it is (*reused true, path untouched), or a new empty directory in path
 * that is kept under `key` once committed. */
typedef int (*kiln__job_keyed_layer_fn)(void *ud, const char *key, char *path,
                                        size_t size, bool *reused,
                                        kiln_error_t *err);

/* What a job knows of its surroundings; every member may be NULL. */
typedef struct kiln__job_ctx {
    struct kiln__store *store; /* kv, blobs, cache_dir */
    struct kiln_solve *solve;  /* logs, cancellation */
    struct kiln__node *node;   /* progress */
    kiln__job_layer_fn new_layer; /* fetch only: add_layer */
    void *layer_ud;
    kiln__job_keyed_layer_fn keyed_layer; /* fetch only: add_layer_keyed */
    /* locals, secrets, oci_layouts: the solve's, or a resolve's own */
    const struct kiln_solve_options *opts;
} kiln__job_ctx_t;

/*
 * A job: one hook call of plugin `p`. kiln__job_new() returns NULL when out
 * of memory; kiln__job_error() is the message the plugin recorded (or a
 * generic one for `rc`), kiln__job_pin() what resolve() set (NULL if
 * nothing). kiln__job_free() releases it.
 */
kiln_job_t *kiln__job_new(const kiln__plugin_t *p, const kiln__job_ctx_t *ctx);
void kiln__job_free(kiln_job_t *job);
const char *kiln__job_error(kiln_job_t *job, int rc);
const char *kiln__job_pin(const kiln_job_t *job);

/* The directories add_layer() handed out, in order (borrowed). */
size_t kiln__job_layers(const kiln_job_t *job, const char *const **dirs);

/* What resolve() set with set_meta(): count, then entry i (borrowed). */
size_t kiln__job_meta_count(const kiln_job_t *job);
void kiln__job_meta(const kiln_job_t *job, size_t i, const char **key,
                    const char **value, size_t *len);

#endif
