/*
 * The definition builder (include/kiln/llb.h): builder lifecycle, sticky
 * errors, states, per-op metadata, merge and diff.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

/* ---- builder ---- */

int kiln_llb_new(kiln_llb_encoding_t encoding, kiln_llb_t **out)
{
    const char *os, *arch, *variant;
    char id[26];
    kiln_llb_t *b;
    int rc;

    *out = NULL;
    if (encoding != KILN_LLB_ENCODING_CURRENT &&
        encoding != KILN_LLB_ENCODING_LEGACY) {
        return KILN_EINVAL;
    }
    rc = kiln__random_id(id);
    if (rc < 0) {
        return rc;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return KILN_ENOMEM;
    }
    b->legacy = encoding == KILN_LLB_ENCODING_LEGACY;
    b->order = b->legacy ? KILN_PB_ORDER_LEGACY : KILN_PB_ORDER_CURRENT;
    kiln__host_platform(&os, &arch, &variant);
    b->platform.os = os;
    b->platform.arch = arch;
    b->platform.variant = variant;
    b->local_unique = kiln__arena_strdup(&b->arena, id);
    if (b->local_unique == NULL) {
        kiln_llb_free(b);
        return KILN_ENOMEM;
    }
    b->scratch.b = b;
    b->empty_chain.b = b;
    b->empty_chain.kind = KILN_ACT_NONE;
    *out = b;
    return 0;
}

void kiln_llb_free(kiln_llb_t *b)
{
    if (b == NULL) {
        return;
    }
    kiln__arena_free(&b->arena);
    free(b);
}

static bool utf8_ok(const char *s)
{
    return kiln__utf8_valid(s, strlen(s));
}

int kiln_llb_set_platform(kiln_llb_t *b, const char *os, const char *arch,
                          const char *variant)
{
    char *o, *a, *v;

    if (os == NULL || arch == NULL || *os == 0 || *arch == 0 || !utf8_ok(os) ||
        !utf8_ok(arch) || (variant != NULL && !utf8_ok(variant))) {
        return KILN_EINVAL;
    }
    o = kiln__arena_strdup(&b->arena, os);
    a = kiln__arena_strdup(&b->arena, arch);
    v = kiln__arena_strdup(&b->arena, variant ? variant : "");
    if (o == NULL || a == NULL || v == NULL) {
        return KILN_ENOMEM;
    }
    b->platform.os = o;
    b->platform.arch = a;
    b->platform.variant = v;
    return 0;
}

int kiln_llb_set_local_unique_id(kiln_llb_t *b, const char *id)
{
    char *copy;

    if (id == NULL || *id == 0 || !utf8_ok(id)) {
        return KILN_EINVAL;
    }
    copy = kiln__arena_strdup(&b->arena, id);
    if (copy == NULL) {
        return KILN_ENOMEM;
    }
    b->local_unique = copy;
    return 0;
}

int kiln_llb_error(const kiln_llb_t *b, kiln_error_t *err)
{
    if (b->err.code != 0 && err != NULL) {
        *err = b->err;
    }
    return b->err.code;
}

/* ---- internal helpers ---- */

void kiln__llb_fail(kiln_llb_t *b, int code, const char *fmt, ...)
{
    va_list ap;

    if (b->err.code != 0) {
        return;
    }
    b->err.code = code;
    va_start(ap, fmt);
    vsnprintf(b->err.message, sizeof(b->err.message), fmt, ap);
    va_end(ap);
}

void kiln__llb_null(kiln_llb_t *b, const char *fn, const char *what)
{
    if (b != NULL) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: %s is NULL", fn, what);
    }
}

void *kiln__llb_alloc(kiln_llb_t *b, size_t n)
{
    void *p = kiln__arena_alloc(&b->arena, n);

    if (p == NULL) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
    }
    return p;
}

bool kiln__llb_str(kiln_llb_t *b, const char *fn, const char *what,
                   const char *s, bool optional, const char **out)
{
    *out = NULL;
    if (s == NULL) {
        if (!optional) {
            kiln__llb_fail(b, KILN_EINVAL, "%s: %s is NULL", fn, what);
        }
        return optional;
    }
    if (!utf8_ok(s)) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: %s is not valid UTF-8", fn, what);
        return false;
    }
    *out = kiln__arena_strdup(&b->arena, s);
    if (*out == NULL) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

bool kiln__llb_push(kiln_llb_t *b, kiln__vec_t *vec, void *item)
{
    if (!kiln__vec_push(&b->arena, vec, item)) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

bool kiln__llb_kv_set(kiln_llb_t *b, kiln__vec_t *vec, const char *key,
                      const char *value, bool replace_moves)
{
    kiln__kv_t *kv;

    for (size_t i = 0; i < vec->n; i++) {
        kv = vec->v[i];
        if (strcmp(kv->key, key) != 0) {
            continue;
        }
        if (!replace_moves) {
            kv->value = value;
            return true;
        }
        memmove(&vec->v[i], &vec->v[i + 1],
                (vec->n - i - 1) * sizeof(vec->v[0]));
        vec->n--;
        break;
    }
    kv = kiln__llb_alloc(b, sizeof(*kv));
    if (kv == NULL) {
        return false;
    }
    kv->key = key;
    kv->value = value;
    return kiln__llb_push(b, vec, kv);
}

kiln__op_t *kiln__llb_op_new(kiln_llb_t *b, enum kiln__llb_kind kind)
{
    kiln__op_t *op = kiln__llb_alloc(b, sizeof(*op));

    if (op != NULL) {
        op->b = b;
        op->kind = kind;
        op->export_cache = -1;
    }
    return op;
}

kiln_llb_state_t *kiln__llb_state_new(kiln_llb_t *b, kiln__op_t *op,
                                      kiln_llb_state_t *parent)
{
    kiln_llb_state_t *st = kiln__llb_alloc(b, sizeof(*st));

    if (st != NULL) {
        st->b = b;
        st->op = op;
        st->parent = parent;
    }
    return st;
}

kiln_llb_state_t *kiln__llb_resolve(kiln_llb_state_t *st)
{
    /* A read-only mount has no output of its own; it is its source. Chains
     * are finite: a mount's source exists before the mount. */
    while (st->mount != NULL && (st->mount->flags & KILN_LLB_MOUNT_READONLY)) {
        st = st->mount->src;
    }
    return st;
}

/* The state a platform lookup continues with, or NULL where it stops. */
static kiln_llb_state_t *platform_next(kiln_llb_state_t *st)
{
    return st->op != NULL && st->op->platform != NULL ? NULL : st->parent;
}

const kiln__platform_t *kiln__llb_state_platform(kiln_llb_state_t *st)
{
    unsigned gen = st->b->gen;
    const kiln__platform_t *p = NULL;

    /* Long exec chains ask for the platform at every link: the answer is
     * memoized along the path, so each state is walked once per marshal. */
    for (kiln_llb_state_t *s = st; s != NULL; s = platform_next(s)) {
        s = kiln__llb_resolve(s);
        if (s->plat_gen == gen) {
            p = s->plat;
            break;
        }
        if (s->op != NULL && s->op->platform != NULL) {
            p = s->op->platform;
            break;
        }
    }
    for (kiln_llb_state_t *s = st; s != NULL; s = platform_next(s)) {
        s = kiln__llb_resolve(s);
        if (s->plat_gen == gen) {
            break;
        }
        s->plat_gen = gen;
        s->plat = p;
    }
    return p;
}

const kiln__platform_t *kiln__llb_platform_new(kiln_llb_t *b, const char *fn,
                                               const char *os, const char *arch,
                                               const char *variant)
{
    kiln__platform_t *p;

    if (os == NULL || arch == NULL || *os == 0 || *arch == 0) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: os and architecture are required",
                       fn);
        return NULL;
    }
    p = kiln__llb_alloc(b, sizeof(*p));
    if (p == NULL || !kiln__llb_str(b, fn, "os", os, false, &p->os) ||
        !kiln__llb_str(b, fn, "architecture", arch, false, &p->arch) ||
        !kiln__llb_str(b, fn, "variant", variant ? variant : "", false,
                       &p->variant)) {
        return NULL;
    }
    return p;
}

/* ---- states ---- */

kiln_llb_state_t *kiln_llb_scratch(kiln_llb_t *b)
{
    return b != NULL ? &b->scratch : NULL;
}

/* The op that metadata setters change, or NULL after recording why not. */
static kiln__op_t *meta_op(kiln_llb_state_t *st, const char *fn)
{
    if (st == NULL) {
        return NULL;
    }
    if (st->op == NULL) {
        kiln__llb_fail(st->b, KILN_EINVAL,
                       "%s: scratch has no op to set this on", fn);
        return NULL;
    }
    return st->op;
}

kiln_llb_state_t *kiln_llb_custom_name(kiln_llb_state_t *st, const char *name)
{
    return kiln_llb_description(st, "llb.customname", name);
}

kiln_llb_state_t *kiln_llb_description(kiln_llb_state_t *st, const char *key,
                                       const char *value)
{
    static const char fn[] = "kiln_llb_description";
    kiln__op_t *op = meta_op(st, fn);
    const char *k, *v;

    if (op == NULL || !kiln__llb_str(st->b, fn, "key", key, false, &k) ||
        !kiln__llb_str(st->b, fn, "value", value, false, &v) ||
        !kiln__llb_kv_set(st->b, &op->desc, k, v, false)) {
        return NULL;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_ignore_cache(kiln_llb_state_t *st)
{
    kiln__op_t *op = meta_op(st, "kiln_llb_ignore_cache");

    if (op == NULL) {
        return NULL;
    }
    op->ignore_cache = true;
    return st;
}

kiln_llb_state_t *kiln_llb_progress_group(kiln_llb_state_t *st, const char *id,
                                          const char *name, int weak)
{
    static const char fn[] = "kiln_llb_progress_group";
    kiln__op_t *op = meta_op(st, fn);
    const char *i, *n;

    if (op == NULL || !kiln__llb_str(st->b, fn, "id", id, false, &i) ||
        !kiln__llb_str(st->b, fn, "name", name ? name : "", false, &n)) {
        return NULL;
    }
    op->pg_id = i;
    op->pg_name = n;
    op->pg_weak = weak != 0;
    return st;
}

kiln_llb_state_t *kiln_llb_export_cache(kiln_llb_state_t *st,
                                        kiln_llb_export_cache_t mode)
{
    kiln__op_t *op = meta_op(st, "kiln_llb_export_cache");

    if (op == NULL) {
        return NULL;
    }
    switch (mode) {
    case KILN_LLB_EXPORT_CACHE_DEFAULT:
        op->export_cache = -1;
        break;
    case KILN_LLB_EXPORT_CACHE_ON:
        op->export_cache = 1;
        break;
    case KILN_LLB_EXPORT_CACHE_OFF:
        op->export_cache = 0;
        break;
    default:
        kiln__llb_fail(st->b, KILN_EINVAL,
                       "kiln_llb_export_cache: unknown mode %d", (int)mode);
        return NULL;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_platform(kiln_llb_state_t *st, const char *os,
                                    const char *arch, const char *variant)
{
    static const char fn[] = "kiln_llb_platform";
    kiln__op_t *op = meta_op(st, fn);
    const kiln__platform_t *p;

    if (op == NULL) {
        return NULL;
    }
    if (op->kind != KILN_LLB_EXEC && !(op->kind == KILN_LLB_SOURCE &&
                                       kiln__llb_src_has_platform(op->u.src))) {
        kiln__llb_fail(st->b, KILN_EINVAL,
                       "%s: only image sources and exec ops have a platform",
                       fn);
        return NULL;
    }
    p = kiln__llb_platform_new(st->b, fn, os, arch, variant);
    if (p == NULL) {
        return NULL;
    }
    op->platform = p;
    return st;
}

kiln_llb_state_t *kiln_llb_require(kiln_llb_state_t *st, const char *filter)
{
    static const char fn[] = "kiln_llb_require";
    kiln__op_t *op = meta_op(st, fn);
    const char *f;

    if (op == NULL || !kiln__llb_str(st->b, fn, "filter", filter, false, &f) ||
        !kiln__llb_push(st->b, &op->filters, (void *)f)) {
        return NULL;
    }
    return st;
}

/* ---- merge and diff ---- */

/* Checks merge inputs; returns how many are not scratch, or -1. */
static long merge_count(kiln_llb_t *b, kiln_llb_state_t *const *inputs,
                        size_t n, kiln_llb_state_t **last)
{
    static const char fn[] = "kiln_llb_merge";
    long kept = 0;

    if (n > 0 && inputs == NULL) {
        kiln__llb_null(b, fn, "inputs");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (inputs[i] == NULL) {
            kiln__llb_fail(b, KILN_EINVAL, "%s: input %zu is NULL", fn, i);
            return -1;
        }
        if (inputs[i]->b != b) {
            kiln__llb_fail(b, KILN_EINVAL,
                           "%s: input %zu belongs to another builder", fn, i);
            return -1;
        }
        /* Merging scratch changes nothing: Go drops it. */
        if (kiln__llb_resolve(inputs[i])->op != NULL) {
            *last = inputs[i];
            kept++;
        }
    }
    return kept;
}

kiln_llb_state_t *kiln_llb_merge(kiln_llb_t *b, kiln_llb_state_t *const *inputs,
                                 size_t n)
{
    kiln_llb_state_t *last = NULL;
    struct kiln__merge_op *m;
    kiln__op_t *op;
    long kept;

    if (b == NULL || (kept = merge_count(b, inputs, n, &last)) < 0) {
        return NULL;
    }
    /* Go: nothing left is scratch, one input is that input itself. */
    if (kept <= 1) {
        return kept == 0 ? &b->scratch : last;
    }
    m = kiln__llb_alloc(b, sizeof(*m));
    op = kiln__llb_op_new(b, KILN_LLB_MERGE);
    if (m == NULL || op == NULL ||
        (m->inputs = kiln__llb_alloc(b, (size_t)kept * sizeof(*m->inputs))) ==
            NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (kiln__llb_resolve(inputs[i])->op != NULL) {
            m->inputs[m->n++] = inputs[i];
        }
    }
    op->u.merge = m;
    return kiln__llb_state_new(b, op, NULL);
}

kiln_llb_state_t *kiln_llb_diff(kiln_llb_state_t *lower,
                                kiln_llb_state_t *upper)
{
    static const char fn[] = "kiln_llb_diff";
    struct kiln__diff_op *d;
    kiln_llb_t *b;
    kiln__op_t *op;

    if (lower == NULL || upper == NULL) {
        kiln__llb_null(lower   ? lower->b
                       : upper ? upper->b
                               : NULL,
                       fn, lower ? "upper" : "lower");
        return NULL;
    }
    b = lower->b;
    if (upper->b != b) {
        kiln__llb_fail(b, KILN_EINVAL,
                       "%s: lower and upper belong to different builders", fn);
        return NULL;
    }
    /* Go: the diff from scratch is the upper state itself (scratch if
     * both are). */
    if (kiln__llb_resolve(lower)->op == NULL) {
        return upper;
    }
    d = kiln__llb_alloc(b, sizeof(*d));
    op = kiln__llb_op_new(b, KILN_LLB_DIFF);
    if (d == NULL || op == NULL) {
        return NULL;
    }
    d->lower = lower;
    d->upper = upper;
    op->u.diff = d;
    return kiln__llb_state_new(b, op, lower);
}
