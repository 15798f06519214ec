/*
 * The host table plugins call, and the jobs its functions act on. A job
 * carries what one hook call may reach: the store (key-value store, blobs,
 * cache directory), the solve (diagnostics, cancellation, local
 * directories, secrets) and the vertex (progress). Nothing a plugin hands
 * over is kept by reference: strings are copied, values are copied into
 * the plugin's buffers.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileop/fileop_int.h"
#include "plugin/registry.h"
#include "solver/solve.h"
#include "store/store.h"

struct kiln_job {
    /* Recursive: host functions that take it call h_fail(), which does. A
     * plugin may call host functions from threads of its own. */
    pthread_mutex_t mu;
    const kiln__plugin_t *p;
    kiln__job_ctx_t ctx;
    kiln_error_t err;
    char *pin;
    char *cache_dir;
    char *local_dir;
    char **layers; /* add_layer() */
    size_t n_layers;
    char *oci_dir;
    /* set_meta() */
    char **meta_keys;
    char **meta_values;
    size_t *meta_lens;
    size_t n_meta;
};

/* Most keys set_meta() takes, and most bytes of one value. */
#define JOB_META_MAX       64
#define JOB_META_VALUE_MAX (4u << 20)

kiln_job_t *kiln__job_new(const kiln__plugin_t *p, const kiln__job_ctx_t *ctx)
{
    kiln_job_t *job = calloc(1, sizeof(*job));

    if (job != NULL) {
        pthread_mutexattr_t a;

        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&job->mu, &a);
        pthread_mutexattr_destroy(&a);
        job->p = p;
        if (ctx != NULL) {
            job->ctx = *ctx;
        }
    }
    return job;
}

void kiln__job_free(kiln_job_t *job)
{
    if (job == NULL) {
        return;
    }
    free(job->pin);
    free(job->cache_dir);
    free(job->local_dir);
    for (size_t i = 0; i < job->n_layers; i++) {
        free(job->layers[i]);
    }
    free(job->layers);
    free(job->oci_dir);
    for (size_t i = 0; i < job->n_meta; i++) {
        free(job->meta_keys[i]);
        free(job->meta_values[i]);
    }
    free(job->meta_keys);
    free(job->meta_values);
    free(job->meta_lens);
    pthread_mutex_destroy(&job->mu);
    free(job);
}

const char *kiln__job_error(kiln_job_t *job, int rc)
{
    if (job->err.message[0] == '\0') {
        snprintf(job->err.message, sizeof(job->err.message),
                 "plugin '%s' failed without saying why (%s)",
                 job->p->desc->name, strerror(rc < 0 ? -rc : EIO));
    }
    return job->err.message;
}

const char *kiln__job_pin(const kiln_job_t *job)
{
    return job->pin;
}

size_t kiln__job_layers(const kiln_job_t *job, const char *const **dirs)
{
    *dirs = (const char *const *)job->layers;
    return job->n_layers;
}

size_t kiln__job_meta_count(const kiln_job_t *job)
{
    return job->n_meta;
}

void kiln__job_meta(const kiln_job_t *job, size_t i, const char **key,
                    const char **value, size_t *len)
{
    *key = job->meta_keys[i];
    *value = job->meta_values[i];
    *len = job->meta_lens[i];
}

/* The options of the job's solve, or of the resolve it belongs to. */
static const kiln_solve_options_t *job_opts(const kiln_job_t *job)
{
    if (job->ctx.opts != NULL) {
        return job->ctx.opts;
    }
    return job->ctx.solve != NULL ? &job->ctx.solve->opts : NULL;
}

/* ---- attrs ---- */

static const char *h_attr_get(const kiln_attrs_t *a, const char *key)
{
    return kiln__attrs_get(a, key);
}

static int h_attr_set(kiln_attrs_t *a, const char *key, const char *value)
{
    return kiln__attrs_set(a, key, value);
}

static size_t h_attr_count(const kiln_attrs_t *a)
{
    return kiln__attrs_count(a);
}

static const char *h_attr_key(const kiln_attrs_t *a, size_t i)
{
    return kiln__attrs_key(a, i);
}

static const char *h_attr_value(const kiln_attrs_t *a, size_t i)
{
    return kiln__attrs_value(a, i);
}

/* ---- reporting ---- */

static void h_log(kiln_job_t *job, enum kiln_plugin_log_level level,
                  const char *fmt, ...) KILN_PLUGIN_PRINTF(3, 4);
static int h_fail(kiln_job_t *job, int code, const char *fmt, ...)
    KILN_PLUGIN_PRINTF(3, 4);

static void h_log(kiln_job_t *job, enum kiln_plugin_log_level level,
                  const char *fmt, ...)
{
    char msg[KILN_ERROR_MAX];
    va_list ap;

    if (job == NULL || job->ctx.solve == NULL) {
        return; /* no build to show it in */
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (job->ctx.node != NULL) {
        /* Only this job writes the vertex's output while it runs; the
         * lock is for a plugin's own threads. */
        static const char *const names[] = {"error", "warn", "info", "debug"};
        pthread_mutex_lock(&job->mu);
        kiln__buf_printf(&job->ctx.node->output, "[%s] %s\n",
                         names[level <= KILN_PLUGIN_LOG_DEBUG ? level : 3],
                         msg);
        pthread_mutex_unlock(&job->mu);
    }
    kiln__solve_note(job->ctx.solve, job->ctx.node,
                     level > KILN_PLUGIN_LOG_DEBUG ? KILN_LOG_DEBUG
                                                   : (kiln_log_level_t)level,
                     "%s: %s", job->p->desc->name, msg);
}

static int h_fail(kiln_job_t *job, int code, const char *fmt, ...)
{
    va_list ap;

    if (code >= 0) {
        code = -EIO;
    }
    if (job == NULL) {
        return code;
    }
    pthread_mutex_lock(&job->mu);
    va_start(ap, fmt);
    vsnprintf(job->err.message, sizeof(job->err.message), fmt, ap);
    va_end(ap);
    job->err.code = code;
    pthread_mutex_unlock(&job->mu);
    return code;
}

static void h_progress(kiln_job_t *job, uint64_t done, uint64_t total)
{
    if (job != NULL && job->ctx.node != NULL) {
        atomic_store(&job->ctx.node->done_bytes, done);
        atomic_store(&job->ctx.node->total_bytes, total);
    }
}

static int h_cancelled(const kiln_job_t *job)
{
    return job != NULL && job->ctx.solve != NULL &&
           atomic_load(&job->ctx.solve->stop);
}

static int set_pin_locked(kiln_job_t *job, const char *pin)
{
    char *copy;

    if (job == NULL || pin == NULL || pin[0] == '\0') {
        return -EINVAL;
    }
    if ((copy = strdup(pin)) == NULL) {
        return -ENOMEM;
    }
    free(job->pin);
    job->pin = copy;
    return 0;
}

static int h_set_pin(kiln_job_t *job, const char *pin)
{
    int r;

    if (job == NULL) {
        return -EINVAL;
    }
    pthread_mutex_lock(&job->mu);
    r = set_pin_locked(job, pin);
    pthread_mutex_unlock(&job->mu);
    return r;
}

/* ---- storage ---- */

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                *p = '/';
                return -errno;
            }
            *p = '/';
        }
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static const char *cache_dir_locked(kiln_job_t *job)
{
    char *dir;

    if (job == NULL || job->ctx.store == NULL) {
        return NULL;
    }
    if (job->cache_dir != NULL) {
        return job->cache_dir;
    }
    if (asprintf(&dir, "%s/plugins/%s", kiln__store_root(job->ctx.store),
                 job->p->desc->name) < 0) {
        return NULL;
    }
    if (mkdirs(dir) < 0) {
        free(dir);
        return NULL;
    }
    job->cache_dir = dir;
    return dir;
}

static const char *h_cache_dir(kiln_job_t *job)
{
    const char *r;

    if (job == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&job->mu);
    r = cache_dir_locked(job);
    pthread_mutex_unlock(&job->mu);
    return r;
}

/* Copies a failure of the store into the job; returns its code. */
static int store_fail(kiln_job_t *job, int rc, const kiln_error_t *err)
{
    if (rc < 0 && rc != KILN_ENOENT && rc != -ERANGE) {
        h_fail(job, rc, "%s", err->message);
    }
    return rc;
}

static int no_store(kiln_job_t *job)
{
    return h_fail(job, -ENOTSUP, "no store is open for this call");
}

static int h_kv_get(kiln_job_t *job, const char *key, void *buf, size_t size,
                    size_t *len)
{
    kiln_error_t err = {0};

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    return store_fail(job,
                      kiln__store_kv_get(job->ctx.store, job->p->desc->name,
                                         key, buf, size, len, &err),
                      &err);
}

static int h_kv_set(kiln_job_t *job, const char *key, const void *value,
                    size_t len)
{
    kiln_error_t err = {0};

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    return store_fail(job,
                      kiln__store_kv_set(job->ctx.store, job->p->desc->name,
                                         key, value, len, &err),
                      &err);
}

static int h_kv_delete(kiln_job_t *job, const char *key)
{
    kiln_error_t err = {0};

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    return store_fail(
        job,
        kiln__store_kv_delete(job->ctx.store, job->p->desc->name, key, &err),
        &err);
}

/* "ID=VALUE" entries of a NULL-terminated list: the value of `id`. */
static const char *lookup_pair(const char *const *list, const char *id)
{
    size_t n = strlen(id);

    for (; list != NULL && *list != NULL; list++) {
        if (strncmp(*list, id, n) == 0 && (*list)[n] == '=') {
            return *list + n + 1;
        }
    }
    return NULL;
}

static int h_secret_get(kiln_job_t *job, const char *id, void *buf, size_t size,
                        size_t *len)
{
    const char *path = NULL;
    uint8_t *data = NULL;
    kiln_error_t err = {0};
    size_t n = 0;
    int rc;

    if (job == NULL || id == NULL) {
        return -EINVAL;
    }
    if (job_opts(job) != NULL) {
        path = lookup_pair(job_opts(job)->secrets, id);
    }
    if (path == NULL) {
        return -ENOENT;
    }
    rc = kiln__read_file(path, 1u << 20, &data, &n, &err);
    if (rc < 0) {
        return h_fail(job, rc, "secret '%s': %s", id, err.message);
    }
    *len = n;
    if (n > size) {
        free(data);
        return -ERANGE;
    }
    memcpy(buf, data, n);
    explicit_bzero(data, n);
    free(data);
    return 0;
}

static int h_blob_open(kiln_job_t *job, const char *digest, int *fd)
{
    kiln_error_t err = {0};

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    return store_fail(
        job, kiln__store_blob_open(job->ctx.store, digest, fd, &err), &err);
}

static int h_blob_create(kiln_job_t *job, int *fd, void **w)
{
    kiln_error_t err = {0};
    kiln__store_blob_writer_t *bw = NULL;
    int rc;

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    rc = kiln__store_blob_create(job->ctx.store, fd, &bw, &err);
    *w = bw;
    return store_fail(job, rc, &err);
}

static int h_blob_commit(kiln_job_t *job, void *w, const char *expect,
                         char digest[72])
{
    kiln_error_t err = {0};
    int rc;

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    rc = kiln__store_blob_commit(job->ctx.store, w, expect, digest, &err);
    if (rc < 0) {
        h_fail(job, rc, "%s", err.message);
    }
    return rc;
}

static void h_blob_abort(kiln_job_t *job, void *w)
{
    if (job != NULL && job->ctx.store != NULL && w != NULL) {
        kiln__store_blob_abort(job->ctx.store, w);
    }
}

static int h_blob_path(kiln_job_t *job, const char *digest, char *buf,
                       size_t size)
{
    kiln_error_t err = {0};

    if (job == NULL || job->ctx.store == NULL) {
        return no_store(job);
    }
    return store_fail(
        job, kiln__store_blob_path(job->ctx.store, digest, buf, size, &err),
        &err);
}

static const char *local_dir_locked(kiln_job_t *job, const char *name)
{
    const char *dir;
    char *abs;

    if (job == NULL || job_opts(job) == NULL || name == NULL) {
        return NULL;
    }
    dir = lookup_pair(job_opts(job)->locals, name);
    if (dir == NULL || (abs = realpath(dir, NULL)) == NULL) {
        return NULL;
    }
    free(job->local_dir);
    job->local_dir = abs;
    return abs;
}

static const char *h_local_dir(kiln_job_t *job, const char *name)
{
    const char *r;

    if (job == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&job->mu);
    r = local_dir_locked(job, name);
    pthread_mutex_unlock(&job->mu);
    return r;
}

static int add_layer_locked(kiln_job_t *job, char *buf, size_t size)
{
    kiln_error_t err = {0};
    char path[4096];
    char **v, *copy;
    int rc;

    if (job == NULL || job->ctx.new_layer == NULL) {
        return -ENOTSUP;
    }
    rc = job->ctx.new_layer(job->ctx.layer_ud, path, sizeof(path), &err);
    if (rc < 0) {
        return h_fail(job, rc, "%s", err.message);
    }
    if (strlen(path) + 1 > size) {
        return -ENAMETOOLONG;
    }
    v = realloc(job->layers, (job->n_layers + 1) * sizeof(*v));
    if (v == NULL || (copy = strdup(path)) == NULL) {
        job->layers = v != NULL ? v : job->layers;
        return -ENOMEM;
    }
    job->layers = v;
    job->layers[job->n_layers++] = copy;
    memcpy(buf, path, strlen(path) + 1);
    return 0;
}

static int h_add_layer(kiln_job_t *job, char *buf, size_t size)
{
    int r;

    if (job == NULL) {
        return -EINVAL;
    }
    pthread_mutex_lock(&job->mu);
    r = add_layer_locked(job, buf, size);
    pthread_mutex_unlock(&job->mu);
    return r;
}

static bool layer_key_valid(const char *key)
{
    size_t n = 0;

    for (; key[n] != '\0'; n++) {
        if (key[n] <= ' ' || key[n] > '~' || n >= 256) {
            return false;
        }
    }
    return n > 0;
}

static int add_layer_keyed_locked(kiln_job_t *job, const char *key, char *buf,
                                  size_t size, int *reused)
{
    kiln_error_t err = {0};
    char path[4096];
    bool got = false;
    int rc;

    if (job == NULL || job->ctx.keyed_layer == NULL) {
        return -ENOTSUP;
    }
    if (key == NULL || reused == NULL || !layer_key_valid(key)) {
        return h_fail(job, -EINVAL,
                      "add_layer_keyed: a key is 1 to 256 printable ASCII "
                      "bytes");
    }
    rc = job->ctx.keyed_layer(job->ctx.layer_ud, key, path, sizeof(path), &got,
                              &err);
    if (rc < 0) {
        return h_fail(job, rc, "%s", err.message);
    }
    *reused = got ? 1 : 0;
    if (got) {
        return 0;
    }
    if (strlen(path) + 1 > size) {
        return -ENAMETOOLONG;
    }
    memcpy(buf, path, strlen(path) + 1);
    return 0;
}

static int h_add_layer_keyed(kiln_job_t *job, const char *key, char *buf,
                             size_t size, int *reused)
{
    int r;

    if (job == NULL) {
        return -EINVAL;
    }
    pthread_mutex_lock(&job->mu);
    r = add_layer_keyed_locked(job, key, buf, size, reused);
    pthread_mutex_unlock(&job->mu);
    return r;
}

static int set_meta_locked(kiln_job_t *job, const char *key, const void *value,
                           size_t len)
{
    char **nk, **nv, *k, *v;
    size_t *nl, i;

    if (job == NULL || key == NULL || key[0] == '\0' ||
        (value == NULL && len > 0)) {
        return -EINVAL;
    }
    if (len > JOB_META_VALUE_MAX) {
        return h_fail(job, -E2BIG, "set_meta %s: %zu bytes (at most %u)", key,
                      len, JOB_META_VALUE_MAX);
    }
    for (i = 0; i < job->n_meta && strcmp(job->meta_keys[i], key) != 0; i++) {
    }
    if (i == job->n_meta && i >= JOB_META_MAX) {
        return h_fail(job, -E2BIG, "set_meta %s: more than %d keys", key,
                      JOB_META_MAX);
    }
    v = malloc(len + 1);
    if (v == NULL) {
        return -ENOMEM;
    }
    if (len > 0) {
        memcpy(v, value, len);
    }
    v[len] = '\0';
    if (i < job->n_meta) {
        free(job->meta_values[i]);
        job->meta_values[i] = v;
        job->meta_lens[i] = len;
        return 0;
    }
    k = strdup(key);
    nk = realloc(job->meta_keys, (i + 1) * sizeof(*nk));
    if (nk != NULL) {
        job->meta_keys = nk;
    }
    nv = realloc(job->meta_values, (i + 1) * sizeof(*nv));
    if (nv != NULL) {
        job->meta_values = nv;
    }
    nl = realloc(job->meta_lens, (i + 1) * sizeof(*nl));
    if (nl != NULL) {
        job->meta_lens = nl;
    }
    if (k == NULL || nk == NULL || nv == NULL || nl == NULL) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    job->meta_keys[i] = k;
    job->meta_values[i] = v;
    job->meta_lens[i] = len;
    job->n_meta++;
    return 0;
}

static int h_set_meta(kiln_job_t *job, const char *key, const void *value,
                      size_t len)
{
    int r;

    if (job == NULL) {
        return -EINVAL;
    }
    pthread_mutex_lock(&job->mu);
    r = set_meta_locked(job, key, value, len);
    pthread_mutex_unlock(&job->mu);
    return r;
}

static const char *oci_layout_dir_locked(kiln_job_t *job, const char *store)
{
    const kiln_solve_options_t *o = job != NULL ? job_opts(job) : NULL;
    const char *dir = NULL;
    char *abs;

    if (o == NULL || o->oci_layouts == NULL) {
        return NULL;
    }
    if (store != NULL) {
        dir = lookup_pair(o->oci_layouts, store);
    } else if (o->oci_layouts[0] != NULL && o->oci_layouts[1] == NULL) {
        dir = strchr(o->oci_layouts[0], '=');
        dir = dir != NULL ? dir + 1 : NULL;
    }
    if (dir == NULL || (abs = realpath(dir, NULL)) == NULL) {
        return NULL;
    }
    free(job->oci_dir);
    job->oci_dir = abs;
    return abs;
}

static const char *h_oci_layout_dir(kiln_job_t *job, const char *store)
{
    const char *r;

    if (job == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&job->mu);
    r = oci_layout_dir_locked(job, store);
    pthread_mutex_unlock(&job->mu);
    return r;
}

/* ---- patterns ---- */

static int h_patterns_new(kiln_job_t *job, const char *const *patterns,
                          size_t n, kiln_patterns_t **out)
{
    kiln__fo_patterns_t *p = NULL;
    kiln_error_t err = {0};
    int rc = kiln__fo_patterns_new((char *const *)patterns, n, &p, &err);

    if (rc < 0) {
        return h_fail(job, rc, "%s", err.message);
    }
    *out = (kiln_patterns_t *)p;
    return 0;
}

static void h_patterns_free(kiln_patterns_t *p)
{
    kiln__fo_patterns_free((kiln__fo_patterns_t *)p);
}

static int h_patterns_match(const kiln_patterns_t *p, const char *path)
{
    const kiln__fo_patterns_t *fp = (const kiln__fo_patterns_t *)p;
    bool *info = calloc(kiln__fo_patterns_count(fp) + 1, sizeof(*info));
    bool m;

    if (info == NULL) {
        return -ENOMEM;
    }
    m = kiln__fo_patterns_match(fp, path, NULL, info);
    free(info);
    return m ? 1 : 0;
}

static int h_patterns_exclusions(const kiln_patterns_t *p)
{
    return kiln__fo_patterns_exclusions((const kiln__fo_patterns_t *)p) ? 1 : 0;
}

const kiln_host_t kiln__host = {
    .size = sizeof(kiln_host_t),
    .abi_minor = KILN_PLUGIN_ABI_MINOR,
    .attr_get = h_attr_get,
    .attr_set = h_attr_set,
    .attr_count = h_attr_count,
    .attr_key = h_attr_key,
    .attr_value = h_attr_value,
    .log = h_log,
    .fail = h_fail,
    .progress = h_progress,
    .cancelled = h_cancelled,
    .set_pin = h_set_pin,
    .cache_dir = h_cache_dir,
    .kv_get = h_kv_get,
    .kv_set = h_kv_set,
    .kv_delete = h_kv_delete,
    .secret_get = h_secret_get,
    .blob_open = h_blob_open,
    .blob_create = h_blob_create,
    .blob_commit = h_blob_commit,
    .blob_abort = h_blob_abort,
    .blob_path = h_blob_path,
    .local_dir = h_local_dir,
    .patterns_new = h_patterns_new,
    .patterns_free = h_patterns_free,
    .patterns_match = h_patterns_match,
    .patterns_exclusions = h_patterns_exclusions,
    .add_layer = h_add_layer,
    .add_layer_keyed = h_add_layer_keyed,
    .set_meta = h_set_meta,
    .oci_layout_dir = h_oci_layout_dir,
};
