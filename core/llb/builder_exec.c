/*
 * Exec ops: setup through kiln_llb_exec_*, and encoding as BuildKit's Go
 * ExecOp.Marshal does it (client/llb/exec.go): mounts sorted by
 * destination, inputs de-duplicated, outputs numbered over the mounts that
 * have one, secret and SSH mounts appended after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

/* ---- setup ---- */

kiln_llb_exec_t *kiln_llb_exec(kiln_llb_state_t *root, const char *const *argv)
{
    static const char fn[] = "kiln_llb_exec";
    kiln_llb_t *b;
    kiln_llb_exec_t *ex;
    kiln__mount_t *m;
    kiln__op_t *op;

    if (root == NULL) {
        return NULL;
    }
    b = root->b;
    if (argv == NULL || argv[0] == NULL) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: argv is empty", fn);
        return NULL;
    }
    op = kiln__llb_op_new(b, KILN_LLB_EXEC);
    ex = op ? kiln__llb_alloc(b, sizeof(*ex)) : NULL;
    m = ex ? kiln__llb_alloc(b, sizeof(*m)) : NULL;
    if (m == NULL) {
        return NULL;
    }
    for (size_t i = 0; argv[i] != NULL; i++) {
        const char *arg;
        if (!kiln__llb_str(b, fn, "argument", argv[i], false, &arg) ||
            !kiln__llb_push(b, &ex->argv, (void *)arg)) {
            return NULL;
        }
    }
    m->dest = "/";
    m->src = root;
    m->selector = "";
    m->out_index = -1;
    if (!kiln__llb_push(b, &ex->mounts, m)) {
        return NULL;
    }
    ex->op = op;
    ex->base = root;
    ex->root = m;
    ex->cwd = "/";
    op->u.exec = ex;
    return ex;
}

/* Copies a string argument of an exec setter. */
static bool ex_str(kiln_llb_exec_t *ex, const char *fn, const char *what,
                   const char *s, const char **out)
{
    return kiln__llb_str(ex->op->b, fn, what, s, false, out);
}

kiln_llb_exec_t *kiln_llb_exec_env(kiln_llb_exec_t *ex, const char *key,
                                   const char *value)
{
    static const char fn[] = "kiln_llb_exec_env";
    const char *k, *v;

    if (ex == NULL || !ex_str(ex, fn, "key", key, &k) ||
        !ex_str(ex, fn, "value", value, &v)) {
        return NULL;
    }
    if (*k == 0 || strchr(k, '=') != NULL) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL,
                       "%s: invalid variable name \"%.100s\"", fn, k);
        return NULL;
    }
    return kiln__llb_kv_set(ex->op->b, &ex->env, k, v, true) ? ex : NULL;
}

kiln_llb_exec_t *kiln_llb_exec_cwd(kiln_llb_exec_t *ex, const char *dir)
{
    static const char fn[] = "kiln_llb_exec_cwd";
    const char *d;

    if (ex == NULL || !ex_str(ex, fn, "dir", dir, &d)) {
        return NULL;
    }
    if (*d == 0) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL, "%s: the directory is empty",
                       fn);
        return NULL;
    }
    /* Go's llb.Dir: absolute as given, relative joined to the current. */
    if (d[0] != '/') {
        d = kiln__path_join(&ex->op->b->arena, ex->cwd, d);
        if (d == NULL) {
            kiln__llb_fail(ex->op->b, KILN_ENOMEM, "out of memory");
            return NULL;
        }
    }
    ex->cwd = d;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_user(kiln_llb_exec_t *ex, const char *user)
{
    if (ex == NULL ||
        !ex_str(ex, "kiln_llb_exec_user", "user", user, &ex->user)) {
        return NULL;
    }
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_hostname(kiln_llb_exec_t *ex,
                                        const char *hostname)
{
    if (ex == NULL || !ex_str(ex, "kiln_llb_exec_hostname", "hostname",
                              hostname, &ex->hostname)) {
        return NULL;
    }
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_network(kiln_llb_exec_t *ex,
                                       kiln_llb_network_t net)
{
    if (ex == NULL) {
        return NULL;
    }
    if ((int)net < 0 || net > KILN_LLB_NET_NONE) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL,
                       "kiln_llb_exec_network: unknown mode %d", (int)net);
        return NULL;
    }
    ex->network = (int)net;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_security(kiln_llb_exec_t *ex,
                                        kiln_llb_security_t sec)
{
    if (ex == NULL) {
        return NULL;
    }
    if ((int)sec < 0 || sec > KILN_LLB_SECURITY_INSECURE) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL,
                       "kiln_llb_exec_security: unknown mode %d", (int)sec);
        return NULL;
    }
    ex->security = (int)sec;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_extra_host(kiln_llb_exec_t *ex, const char *host,
                                          const char *ip)
{
    static const char fn[] = "kiln_llb_exec_extra_host";
    kiln_llb_t *b;
    const char *h, *canon;
    char buf[64];
    kiln__kv_t *kv;

    if (ex == NULL || !ex_str(ex, fn, "host", host, &h)) {
        return NULL;
    }
    b = ex->op->b;
    if (ip == NULL || !kiln__ip_canonical(ip, buf)) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: \"%.100s\" is not an IP address",
                       fn, ip ? ip : "(null)");
        return NULL;
    }
    canon = kiln__arena_strdup(&b->arena, buf);
    kv = kiln__llb_alloc(b, sizeof(*kv));
    if (canon == NULL || kv == NULL) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
        return NULL;
    }
    kv->key = h;
    kv->value = canon;
    return kiln__llb_push(b, &ex->hosts, kv) ? ex : NULL;
}

kiln_llb_exec_t *kiln_llb_exec_ulimit(kiln_llb_exec_t *ex, const char *name,
                                      int64_t soft, int64_t hard)
{
    static const char fn[] = "kiln_llb_exec_ulimit";
    struct kiln__ulimit *u;

    if (ex == NULL) {
        return NULL;
    }
    u = kiln__llb_alloc(ex->op->b, sizeof(*u));
    if (u == NULL || !ex_str(ex, fn, "name", name, &u->name)) {
        return NULL;
    }
    if (*u->name == 0) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL, "%s: the name is empty", fn);
        return NULL;
    }
    u->soft = soft;
    u->hard = hard;
    return kiln__llb_push(ex->op->b, &ex->ulimits, u) ? ex : NULL;
}

kiln_llb_exec_t *kiln_llb_exec_cgroup_parent(kiln_llb_exec_t *ex,
                                             const char *parent)
{
    if (ex == NULL || !ex_str(ex, "kiln_llb_exec_cgroup_parent", "parent",
                              parent, &ex->cgroup_parent)) {
        return NULL;
    }
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_valid_exit_codes(kiln_llb_exec_t *ex,
                                                const int *codes, size_t n)
{
    int32_t *v;

    if (ex == NULL) {
        return NULL;
    }
    if (codes == NULL || n == 0) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL,
                       "kiln_llb_exec_valid_exit_codes: no codes given");
        return NULL;
    }
    v = kiln__llb_alloc(ex->op->b, n * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = (int32_t)codes[i];
    }
    ex->exit_codes = v;
    ex->n_exit_codes = n;
    return ex;
}

kiln_llb_exec_t *
kiln_llb_exec_proxy_env(kiln_llb_exec_t *ex, const char *http_proxy,
                        const char *https_proxy, const char *ftp_proxy,
                        const char *no_proxy, const char *all_proxy)
{
    static const char fn[] = "kiln_llb_exec_proxy_env";
    const char *in[5] = {http_proxy, https_proxy, ftp_proxy, no_proxy,
                         all_proxy};

    if (ex == NULL) {
        return NULL;
    }
    for (int i = 0; i < 5; i++) {
        if (!kiln__llb_str(ex->op->b, fn, "proxy", in[i], true,
                           &ex->proxy[i])) {
            return NULL;
        }
    }
    ex->has_proxy = true;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_readonly_root(kiln_llb_exec_t *ex)
{
    if (ex == NULL) {
        return NULL;
    }
    ex->root->flags |= KILN_LLB_MOUNT_READONLY;
    return ex;
}

/* ---- mounts ---- */

static kiln__mount_t *add_mount(kiln_llb_exec_t *ex, const char *fn,
                                const char *dest, kiln_llb_state_t *src,
                                unsigned flags, unsigned allowed)
{
    kiln_llb_t *b = ex->op->b;
    kiln__mount_t *m;

    if (flags & ~allowed) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: unknown flags 0x%x", fn,
                       flags & ~allowed);
        return NULL;
    }
    if ((flags & KILN_LLB_MOUNT_CONTENT_CACHE_ON) &&
        (flags & KILN_LLB_MOUNT_CONTENT_CACHE_OFF)) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: content cache both on and off", fn);
        return NULL;
    }
    if (src != NULL && src->b != b) {
        kiln__llb_fail(b, KILN_EINVAL,
                       "%s: the state belongs to another builder", fn);
        return NULL;
    }
    m = kiln__llb_alloc(b, sizeof(*m));
    if (m == NULL || !ex_str(ex, fn, "dest", dest, &m->dest)) {
        return NULL;
    }
    if (*m->dest == 0) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: dest is empty", fn);
        return NULL;
    }
    m->src = src ? src : &b->scratch;
    m->selector = "";
    m->flags = flags;
    m->out_index = -1;
    return kiln__llb_push(b, &ex->mounts, m) ? m : NULL;
}

kiln_llb_exec_t *kiln_llb_exec_mount(kiln_llb_exec_t *ex, const char *dest,
                                     kiln_llb_state_t *src,
                                     const char *selector, unsigned flags)
{
    static const char fn[] = "kiln_llb_exec_mount";
    kiln__mount_t *m;

    if (ex == NULL) {
        return NULL;
    }
    if (src == NULL) {
        kiln__llb_null(ex->op->b, fn, "src");
        return NULL;
    }
    m = add_mount(ex, fn, dest, src, flags,
                  KILN_LLB_MOUNT_READONLY | KILN_LLB_MOUNT_NO_OUTPUT |
                      CONTENT_CACHE_MASK);
    if (m == NULL || (selector != NULL &&
                      !ex_str(ex, fn, "selector", selector, &m->selector))) {
        return NULL;
    }
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_cache(kiln_llb_exec_t *ex, const char *dest,
                                     kiln_llb_state_t *src, const char *id,
                                     kiln_llb_cache_sharing_t sharing,
                                     unsigned flags)
{
    static const char fn[] = "kiln_llb_exec_cache";
    kiln__mount_t *m;

    if (ex == NULL) {
        return NULL;
    }
    if (src == NULL) {
        kiln__llb_null(ex->op->b, fn, "src");
        return NULL;
    }
    if ((int)sharing < 0 || sharing > KILN_LLB_CACHE_LOCKED) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL, "%s: unknown sharing %d", fn,
                       (int)sharing);
        return NULL;
    }
    m = add_mount(ex, fn, dest, src, flags,
                  KILN_LLB_MOUNT_READONLY | CONTENT_CACHE_MASK);
    if (m == NULL || !ex_str(ex, fn, "id", id, &m->cache_id)) {
        return NULL;
    }
    if (*m->cache_id == 0) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL, "%s: the cache id is empty", fn);
        return NULL;
    }
    m->type = KILN_MOUNT_CACHE;
    m->sharing = (int)sharing;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_tmpfs(kiln_llb_exec_t *ex, const char *dest,
                                     int64_t size)
{
    static const char fn[] = "kiln_llb_exec_tmpfs";
    kiln__mount_t *m;

    if (ex == NULL) {
        return NULL;
    }
    if (size < 0) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL, "%s: negative size", fn);
        return NULL;
    }
    m = add_mount(ex, fn, dest, NULL, 0, 0);
    if (m == NULL) {
        return NULL;
    }
    m->type = KILN_MOUNT_TMPFS;
    m->tmpfs_size = size;
    return ex;
}

static struct kiln__secret *add_secret(kiln_llb_exec_t *ex, const char *fn,
                                       const char *id, unsigned flags)
{
    struct kiln__secret *s;

    if (flags & ~KILN_LLB_OPTIONAL) {
        kiln__llb_fail(ex->op->b, KILN_EINVAL, "%s: unknown flags 0x%x", fn,
                       flags & ~KILN_LLB_OPTIONAL);
        return NULL;
    }
    s = kiln__llb_alloc(ex->op->b, sizeof(*s));
    if (s == NULL || !ex_str(ex, fn, "id", id, &s->id) ||
        !kiln__llb_push(ex->op->b, &ex->secrets, s)) {
        return NULL;
    }
    s->optional = (flags & KILN_LLB_OPTIONAL) != 0;
    return s;
}

kiln_llb_exec_t *kiln_llb_exec_secret(kiln_llb_exec_t *ex, const char *id,
                                      const char *dest, uint32_t uid,
                                      uint32_t gid, int mode, unsigned flags)
{
    static const char fn[] = "kiln_llb_exec_secret";
    struct kiln__secret *s;

    if (ex == NULL) {
        return NULL;
    }
    s = add_secret(ex, fn, id, flags);
    if (s == NULL || !ex_str(ex, fn, "dest", dest, &s->dest)) {
        return NULL;
    }
    s->uid = uid;
    s->gid = gid;
    s->mode = mode < 0 ? 0400 : (uint32_t)mode;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_secret_env(kiln_llb_exec_t *ex, const char *id,
                                          const char *name, unsigned flags)
{
    static const char fn[] = "kiln_llb_exec_secret_env";
    struct kiln__secret *s;

    if (ex == NULL) {
        return NULL;
    }
    s = add_secret(ex, fn, id, flags);
    if (s == NULL || !ex_str(ex, fn, "name", name, &s->env)) {
        return NULL;
    }
    s->mode = 0400;
    return ex;
}

kiln_llb_exec_t *kiln_llb_exec_ssh(kiln_llb_exec_t *ex, const char *id,
                                   const char *target, uint32_t uid,
                                   uint32_t gid, int mode, unsigned flags)
{
    static const char fn[] = "kiln_llb_exec_ssh";
    kiln_llb_t *b;
    struct kiln__ssh *s;

    if (ex == NULL) {
        return NULL;
    }
    b = ex->op->b;
    if (flags & ~KILN_LLB_OPTIONAL) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: unknown flags 0x%x", fn,
                       flags & ~KILN_LLB_OPTIONAL);
        return NULL;
    }
    s = kiln__llb_alloc(b, sizeof(*s));
    if (s == NULL || !kiln__llb_str(b, fn, "id", id ? id : "", false, &s->id) ||
        !kiln__llb_str(b, fn, "target", target, true, &s->target) ||
        !kiln__llb_push(b, &ex->ssh, s)) {
        return NULL;
    }
    if (s->target != NULL && *s->target == 0) {
        s->target = NULL;
    }
    s->uid = uid;
    s->gid = gid;
    s->mode = mode < 0 ? 0600 : (uint32_t)mode;
    s->optional = (flags & KILN_LLB_OPTIONAL) != 0;
    return ex;
}

/* ---- outputs ---- */

static kiln_llb_state_t *mount_state(kiln_llb_exec_t *ex, kiln__mount_t *m)
{
    if (m->out == NULL) {
        /* The platform of a mount's output is its source's, unless the
         * exec has one of its own (kiln__llb_state_platform). */
        m->out = kiln__llb_state_new(ex->op->b, ex->op, m->src);
        if (m->out != NULL) {
            m->out->mount = m;
        }
    }
    return m->out;
}

kiln_llb_state_t *kiln_llb_exec_root(kiln_llb_exec_t *ex)
{
    return ex != NULL ? mount_state(ex, ex->root) : NULL;
}

kiln_llb_state_t *kiln_llb_exec_output(kiln_llb_exec_t *ex, const char *dest)
{
    static const char fn[] = "kiln_llb_exec_output";
    kiln_llb_t *b;

    if (ex == NULL) {
        return NULL;
    }
    b = ex->op->b;
    if (dest == NULL) {
        kiln__llb_null(b, fn, "dest");
        return NULL;
    }
    for (size_t i = 0; i < ex->mounts.n; i++) {
        kiln__mount_t *m = ex->mounts.v[i];
        if (strcmp(m->dest, dest) != 0) {
            continue;
        }
        if (m->type != KILN_MOUNT_BIND ||
            (m->flags & KILN_LLB_MOUNT_NO_OUTPUT)) {
            kiln__llb_fail(b, KILN_EINVAL,
                           "%s: the %s mount at %.200s has no output", fn,
                           m->type == KILN_MOUNT_CACHE   ? "cache"
                           : m->type == KILN_MOUNT_TMPFS ? "tmpfs"
                                                         : "no-output",
                           dest);
            return NULL;
        }
        return mount_state(ex, m);
    }
    kiln__llb_fail(b, KILN_EINVAL, "%s: the exec has no mount at %.200s", fn,
                   dest);
    return NULL;
}
