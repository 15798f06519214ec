/*
 * MergeOp and DiffOp over layer stacks (BuildKit's solver/llbsolver/ops/
 * merge.go and diff.go, cache manager Merge/Diff): a merge stacks its
 * inputs' layers, a diff keeps what upper adds to lower, sharing layers
 * whenever lower's stack is a prefix of upper's.
 */
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* A result with one output on `base` and room for n layers. */
static int result_new(int64_t base, size_t n, kiln_error_t *err,
                      kiln_fileop_result_t **out)
{
    kiln_fileop_result_t *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->outputs = calloc(1, sizeof(*r->outputs))) == NULL ||
        (r->outputs[0].layers = calloc(n + 1, sizeof(kiln_fileop_layer_t))) ==
            NULL) {
        kiln__fileop_result_free(r);
        return oom(err);
    }
    r->n_outputs = 1;
    r->outputs[0].base = base;
    *out = r;
    return 0;
}

static int add_layer(kiln_fileop_result_t *r, const char *dir, bool created,
                     kiln_error_t *err)
{
    kiln_fileop_output_t *o = &r->outputs[0];

    if ((o->layers[o->n_layers].dir = strdup(dir)) == NULL) {
        return oom(err);
    }
    o->layers[o->n_layers++].created = created;
    return 0;
}

static int check_input(const kiln_fileop_env_t *env, int64_t i,
                       const char *what, kiln_error_t *err)
{
    if (i < -1 || i >= (int64_t)env->n_inputs) {
        return kiln__fail(err, KILN_EINVAL,
                          "invalid %s input index %lld for an op with %zu "
                          "inputs",
                          what, (long long)i, env->n_inputs);
    }
    return 0;
}

int kiln__mergeop_run(const Pb__MergeOp *op, const kiln_fileop_env_t *env,
                      kiln_error_t *err, kiln_fileop_result_t **out)
{
    kiln_fileop_result_t *r = NULL;
    size_t total = 0;
    int64_t first;
    int rc = 0;

    *out = NULL;
    if (op->n_inputs == 0) {
        return kiln__fail(err, KILN_EINVAL, "merge op without inputs");
    }
    for (size_t i = 0; i < op->n_inputs; i++) {
        int64_t in = op->inputs[i]->input;
        if (in < 0 || (rc = check_input(env, in, "merge", err)) < 0) {
            return rc < 0 ? rc
                          : kiln__fail(err, KILN_EINVAL,
                                       "invalid merge input index %lld",
                                       (long long)in);
        }
        total += kiln__snap_view_depth(env->inputs[in]);
    }
    first = op->inputs[0]->input;
    rc = result_new(first, total, err, &r);
    for (size_t i = 1; rc == 0 && i < op->n_inputs; i++) {
        const kiln_snap_view_t *v = env->inputs[op->inputs[i]->input];
        for (size_t l = 0; rc == 0 && l < kiln__snap_view_depth(v); l++) {
            rc = add_layer(r, kiln__snap_view_layer(v, l), false, err);
        }
    }
    if (rc < 0) {
        kiln__fileop_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* True if lower's layers are the first layers of upper's. */
static bool is_prefix(const kiln_snap_view_t *lower,
                      const kiln_snap_view_t *upper)
{
    size_t nl = kiln__snap_view_depth(lower);

    if (nl > kiln__snap_view_depth(upper)) {
        return false;
    }
    for (size_t i = 0; i < nl; i++) {
        if (strcmp(kiln__snap_view_layer(lower, i),
                   kiln__snap_view_layer(upper, i)) != 0) {
            return false;
        }
    }
    return true;
}

/* The diff as a new layer (dropped if empty). */
static int computed_diff(const kiln_fileop_env_t *env,
                         const kiln_snap_view_t *lower,
                         const kiln_snap_view_t *upper, kiln_error_t *err,
                         kiln_fileop_result_t *r)
{
    char dir[4096];
    int rc = env->new_layer(env->ud, dir, sizeof(dir), err);

    if (rc == 0) {
        rc = kiln__snap_diff(lower, upper, dir, err);
    }
    if (rc == 0 && kiln__fo_dir_is_empty(dir) &&
        kiln__fo_same_root(lower, dir)) {
        r->discard = calloc(1, sizeof(char *));
        rc = r->discard != NULL && (r->discard[0] = strdup(dir)) != NULL
                 ? 0
                 : oom(err);
        r->n_discard = rc == 0;
        return rc;
    }
    return rc == 0 ? add_layer(r, dir, true, err) : rc;
}

int kiln__diffop_run(const Pb__DiffOp *op, const kiln_fileop_env_t *env,
                     kiln_error_t *err, kiln_fileop_result_t **out)
{
    int64_t lo = op->lower != NULL ? op->lower->input : -2;
    int64_t up = op->upper != NULL ? op->upper->input : -2;
    const kiln_snap_view_t *lower, *upper;
    kiln_snap_view_t *empty = NULL;
    kiln_fileop_result_t *r = NULL;
    int rc;

    *out = NULL;
    if ((rc = check_input(env, lo, "lower", err)) < 0 ||
        (rc = check_input(env, up, "upper", err)) < 0) {
        return rc;
    }
    if (lo == -1) {
        /* Scratch lower: upper itself (scratch if both are). */
        return result_new(up, 0, err, out);
    }
    lower = env->inputs[lo];
    if (up == -1) {
        rc = kiln__snap_view_open(NULL, 0, err, &empty);
    }
    upper = up == -1 ? empty : env->inputs[up];
    if (rc == 0) {
        size_t nl = kiln__snap_view_depth(lower);
        size_t nu = kiln__snap_view_depth(upper);
        bool prefix = is_prefix(lower, upper);

        rc = result_new(-1, prefix ? nu - nl : 1, err, &r);
        for (size_t i = nl; rc == 0 && prefix && i < nu; i++) {
            rc = add_layer(r, kiln__snap_view_layer(upper, i), false, err);
        }
        if (rc == 0 && !prefix) {
            rc = computed_diff(env, lower, upper, err, r);
        }
    }
    kiln__snap_view_free(empty);
    if (rc < 0) {
        kiln__fileop_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int kiln__fileop_output_stack(const kiln_fileop_env_t *env,
                              const kiln_fileop_output_t *o,
                              const char ***layers, size_t *n)
{
    const kiln_snap_view_t *b = o->base >= 0 ? env->inputs[o->base] : NULL;
    size_t nb = b != NULL ? kiln__snap_view_depth(b) : 0, k = 0;
    const char **v = malloc((nb + o->n_layers + 1) * sizeof(*v));

    if (v == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < nb; i++) {
        v[k++] = kiln__snap_view_layer(b, i);
    }
    for (size_t i = 0; i < o->n_layers; i++) {
        v[k++] = o->layers[i].dir;
    }
    *layers = v;
    *n = k;
    return 0;
}

int kiln__fileop_output_view(const kiln_fileop_env_t *env,
                             const kiln_fileop_output_t *o, kiln_error_t *err,
                             kiln_snap_view_t **out)
{
    const char **v = NULL;
    size_t n = 0;
    int rc = kiln__fileop_output_stack(env, o, &v, &n);

    if (rc < 0) {
        return oom(err);
    }
    rc = kiln__snap_view_open(v, n, err, out);
    free(v);
    return rc;
}
