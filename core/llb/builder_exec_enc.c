/*
 * Encoding of exec ops, following BuildKit's Go ExecOp.Marshal
 * (client/llb/exec.go) field by field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

/* The mounts sorted by destination. Go sorts with sort.Slice, which is an
 * insertion sort (stable) for the handful of mounts an exec has; this is
 * stable for any count. */
static kiln__mount_t **sorted_mounts(kiln__enc_t *e, const kiln_llb_exec_t *ex)
{
    size_t n = ex->mounts.n;
    kiln__mount_t **v = kiln__enc_alloc(e, (n + 1) * sizeof(*v));

    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        kiln__mount_t *m = ex->mounts.v[i];
        size_t j = i;
        while (j > 0 && strcmp(v[j - 1]->dest, m->dest) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = m;
    }
    return v;
}

int kiln__llb_exec_inputs(kiln__enc_t *e, kiln__op_t *op, kiln__vec_t *out)
{
    const kiln_llb_exec_t *ex = op->u.exec;
    kiln__mount_t **sorted = sorted_mounts(e, ex);

    if (sorted == NULL) {
        return kiln__enc_oom(e);
    }
    for (size_t i = 0; i < ex->mounts.n; i++) {
        kiln_llb_state_t *st = kiln__llb_resolve(sorted[i]->src);
        bool seen = false;

        if (st->op == NULL) {
            continue;
        }
        for (size_t j = 0; j < out->n && !seen; j++) {
            const kiln_llb_state_t *o = out->v[j];
            seen = o->op == st->op && o->mount == st->mount;
        }
        if (!seen && !kiln__vec_push(&e->tmp, out, st)) {
            return kiln__enc_oom(e);
        }
    }
    return 0;
}

static char **copy_strings(kiln__enc_t *e, const kiln__vec_t *v)
{
    char **out = kiln__enc_alloc(e, (v->n + 1) * sizeof(*out));

    if (out != NULL && v->n > 0) {
        memcpy(out, v->v, v->n * sizeof(*out));
    }
    return out;
}

/* Meta.env: KEY=value in order, plus SSH_AUTH_SOCK for SSH sockets. */
static int meta_env(kiln__enc_t *e, const kiln_llb_exec_t *ex,
                    const char *ssh_sock, Pb__Meta *meta)
{
    size_t n = ex->env.n;
    bool has_sock = false;

    meta->env = kiln__enc_alloc(e, (n + 2) * sizeof(*meta->env));
    if (meta->env == NULL) {
        return kiln__enc_oom(e);
    }
    for (size_t i = 0; i < n; i++) {
        const kiln__kv_t *kv = ex->env.v[i];
        char *s = kiln__enc_alloc(e, strlen(kv->key) + strlen(kv->value) + 2);
        if (s == NULL) {
            return kiln__enc_oom(e);
        }
        sprintf(s, "%s=%s", kv->key, kv->value);
        meta->env[meta->n_env++] = s;
        has_sock = has_sock || strcmp(kv->key, "SSH_AUTH_SOCK") == 0;
    }
    if (ssh_sock != NULL && !has_sock) {
        char *s = kiln__enc_alloc(e, strlen(ssh_sock) + 15);
        if (s == NULL) {
            return kiln__enc_oom(e);
        }
        sprintf(s, "SSH_AUTH_SOCK=%s", ssh_sock);
        meta->env[meta->n_env++] = s;
    }
    return 0;
}

static int meta_lists(kiln__enc_t *e, const kiln_llb_exec_t *ex, Pb__Meta *meta,
                      kiln__caps_t *caps)
{
    if (ex->n_exit_codes > 0) {
        meta->validexitcodes = ex->exit_codes;
        meta->n_validexitcodes = ex->n_exit_codes;
        kiln__caps_add(caps, "exec.validexitcode");
    }
    meta->extrahosts =
        kiln__enc_alloc(e, (ex->hosts.n + 1) * sizeof(*meta->extrahosts));
    meta->ulimit =
        kiln__enc_alloc(e, (ex->ulimits.n + 1) * sizeof(*meta->ulimit));
    if (meta->extrahosts == NULL || meta->ulimit == NULL) {
        return kiln__enc_oom(e);
    }
    for (size_t i = 0; i < ex->hosts.n; i++) {
        const kiln__kv_t *kv = ex->hosts.v[i];
        Pb__HostIP *h = KILN_ENC_NEW(e, Pb__HostIP, PB__HOST_IP__INIT);
        if (h == NULL) {
            return kiln__enc_oom(e);
        }
        h->host = (char *)kv->key;
        h->ip = (char *)kv->value;
        meta->extrahosts[meta->n_extrahosts++] = h;
    }
    for (size_t i = 0; i < ex->ulimits.n; i++) {
        const struct kiln__ulimit *u = ex->ulimits.v[i];
        Pb__Ulimit *pu = KILN_ENC_NEW(e, Pb__Ulimit, PB__ULIMIT__INIT);
        if (pu == NULL) {
            return kiln__enc_oom(e);
        }
        pu->name = (char *)u->name;
        pu->soft = u->soft;
        pu->hard = u->hard;
        meta->ulimit[meta->n_ulimit++] = pu;
    }
    if (ex->ulimits.n > 0) {
        kiln__caps_add(caps, "exec.meta.ulimit");
    }
    return 0;
}

static Pb__Meta *build_meta(kiln__enc_t *e, const kiln_llb_exec_t *ex,
                            const char *ssh_sock, kiln__caps_t *caps)
{
    Pb__Meta *meta = KILN_ENC_NEW(e, Pb__Meta, PB__META__INIT);

    if (meta == NULL || (meta->args = copy_strings(e, &ex->argv)) == NULL) {
        kiln__enc_oom(e);
        return NULL;
    }
    meta->n_args = ex->argv.n;
    if (meta_env(e, ex, ssh_sock, meta) < 0 ||
        meta_lists(e, ex, meta, caps) < 0) {
        return NULL;
    }
    meta->cwd = (char *)ex->cwd;
    meta->user = (char *)(ex->user ? ex->user : "");
    meta->hostname = (char *)(ex->hostname ? ex->hostname : "");
    meta->cgroupparent = (char *)(ex->cgroup_parent ? ex->cgroup_parent : "");
    meta->removemountstubsrecursive = 1;
    if (ex->has_proxy) {
        Pb__ProxyEnv *p = KILN_ENC_NEW(e, Pb__ProxyEnv, PB__PROXY_ENV__INIT);
        if (p == NULL) {
            kiln__enc_oom(e);
            return NULL;
        }
        p->http_proxy = (char *)(ex->proxy[0] ? ex->proxy[0] : "");
        p->https_proxy = (char *)(ex->proxy[1] ? ex->proxy[1] : "");
        p->ftp_proxy = (char *)(ex->proxy[2] ? ex->proxy[2] : "");
        p->no_proxy = (char *)(ex->proxy[3] ? ex->proxy[3] : "");
        p->all_proxy = (char *)(ex->proxy[4] ? ex->proxy[4] : "");
        meta->proxy_env = p;
        kiln__caps_add(caps, "exec.meta.proxyenv");
    }
    return meta;
}

static void mount_caps(const kiln_llb_exec_t *ex, kiln__caps_t *caps)
{
    bool env_secret = false;

    for (size_t i = 0; i < ex->mounts.n; i++) {
        const kiln__mount_t *m = ex->mounts.v[i];
        if (*m->selector) {
            kiln__caps_add(caps, "exec.mount.selector");
        }
        if (m->type == KILN_MOUNT_CACHE) {
            kiln__caps_add(caps, "exec.mount.cache");
            kiln__caps_add(caps, "exec.mount.cache.sharing");
        } else if (m->type == KILN_MOUNT_TMPFS) {
            kiln__caps_add(caps, "exec.mount.tmpfs");
            if (m->tmpfs_size > 0) {
                kiln__caps_add(caps, "exec.mount.tmpfs.size");
            }
        } else if (kiln__llb_resolve(m->src)->op != NULL) {
            kiln__caps_add(caps, "exec.mount.bind");
        }
        if (m->flags & CONTENT_CACHE_MASK) {
            kiln__caps_add(caps, "exec.mount.cache.content");
        }
    }
    for (size_t i = 0; i < ex->secrets.n; i++) {
        env_secret |=
            ((const struct kiln__secret *)ex->secrets.v[i])->env != NULL;
    }
    if (ex->secrets.n > 0) {
        kiln__caps_add(caps, "exec.mount.secret");
    }
    if (env_secret) {
        kiln__caps_add(caps, "exec.secretenv");
    }
    if (ex->ssh.n > 0) {
        kiln__caps_add(caps, "exec.mount.ssh");
    }
}

/* One pb.Mount of the sorted list; `out` counts outputs so far. */
static Pb__Mount *bind_mount(kiln__enc_t *e, kiln__vec_t *inputs,
                             kiln__mount_t *m, int64_t *out)
{
    Pb__Mount *pm = KILN_ENC_NEW(e, Pb__Mount, PB__MOUNT__INIT);
    kiln_llb_state_t *src = kiln__llb_resolve(m->src);

    if (pm == NULL) {
        kiln__enc_oom(e);
        return NULL;
    }
    pm->input = -1;
    if (src->op != NULL &&
        (pm->input = kiln__llb_add_input(e, inputs, src)) < 0) {
        return NULL;
    }
    m->out_index = -1;
    if (m->type == KILN_MOUNT_BIND &&
        !(m->flags & (KILN_LLB_MOUNT_READONLY | KILN_LLB_MOUNT_NO_OUTPUT))) {
        m->out_index = (*out)++;
    }
    pm->output = m->out_index;
    pm->dest = (char *)m->dest;
    pm->readonly = (m->flags & KILN_LLB_MOUNT_READONLY) != 0;
    pm->selector = (char *)m->selector;
    if (m->flags & KILN_LLB_MOUNT_CONTENT_CACHE_ON) {
        pm->contentcache = PB__MOUNT_CONTENT_CACHE__ON;
    } else if (m->flags & KILN_LLB_MOUNT_CONTENT_CACHE_OFF) {
        pm->contentcache = PB__MOUNT_CONTENT_CACHE__OFF;
    }
    if (m->type == KILN_MOUNT_CACHE) {
        pm->mounttype = PB__MOUNT_TYPE__CACHE;
        pm->cacheopt = KILN_ENC_NEW(e, Pb__CacheOpt, PB__CACHE_OPT__INIT);
        if (pm->cacheopt == NULL) {
            kiln__enc_oom(e);
            return NULL;
        }
        pm->cacheopt->id = (char *)m->cache_id;
        pm->cacheopt->sharing = (Pb__CacheSharingOpt)m->sharing;
    } else if (m->type == KILN_MOUNT_TMPFS) {
        pm->mounttype = PB__MOUNT_TYPE__TMPFS;
        pm->tmpfsopt = KILN_ENC_NEW(e, Pb__TmpfsOpt, PB__TMPFS_OPT__INIT);
        if (pm->tmpfsopt == NULL) {
            kiln__enc_oom(e);
            return NULL;
        }
        pm->tmpfsopt->size = m->tmpfs_size;
    }
    return pm;
}

/* Secret files and env secrets, in call order. */
static int secret_mounts(kiln__enc_t *e, const kiln_llb_exec_t *ex,
                         Pb__ExecOp *eo)
{
    eo->secretenv =
        kiln__enc_alloc(e, (ex->secrets.n + 1) * sizeof(*eo->secretenv));
    if (eo->secretenv == NULL) {
        return kiln__enc_oom(e);
    }
    for (size_t i = 0; i < ex->secrets.n; i++) {
        const struct kiln__secret *s = ex->secrets.v[i];
        if (s->env != NULL) {
            Pb__SecretEnv *se =
                KILN_ENC_NEW(e, Pb__SecretEnv, PB__SECRET_ENV__INIT);
            if (se == NULL) {
                return kiln__enc_oom(e);
            }
            se->id = (char *)s->id;
            se->name = (char *)s->env;
            se->optional = s->optional;
            eo->secretenv[eo->n_secretenv++] = se;
        }
        if (s->dest != NULL) {
            Pb__Mount *pm = KILN_ENC_NEW(e, Pb__Mount, PB__MOUNT__INIT);
            Pb__SecretOpt *so =
                KILN_ENC_NEW(e, Pb__SecretOpt, PB__SECRET_OPT__INIT);
            if (pm == NULL || so == NULL) {
                return kiln__enc_oom(e);
            }
            pm->input = -1;
            pm->dest = (char *)s->dest;
            pm->mounttype = PB__MOUNT_TYPE__SECRET;
            so->id = (char *)s->id;
            so->uid = s->uid;
            so->gid = s->gid;
            so->mode = s->mode;
            so->optional = s->optional;
            pm->secretopt = so;
            eo->mounts[eo->n_mounts++] = pm;
        }
    }
    return 0;
}

static int ssh_mounts(kiln__enc_t *e, const kiln_llb_exec_t *ex,
                      char *const *targets, Pb__ExecOp *eo)
{
    for (size_t i = 0; i < ex->ssh.n; i++) {
        const struct kiln__ssh *s = ex->ssh.v[i];
        Pb__Mount *pm = KILN_ENC_NEW(e, Pb__Mount, PB__MOUNT__INIT);
        Pb__SSHOpt *so = KILN_ENC_NEW(e, Pb__SSHOpt, PB__SSHOPT__INIT);

        if (pm == NULL || so == NULL) {
            return kiln__enc_oom(e);
        }
        pm->input = -1;
        pm->dest = targets[i];
        pm->mounttype = PB__MOUNT_TYPE__SSH;
        so->id = (char *)s->id;
        so->uid = s->uid;
        so->gid = s->gid;
        so->mode = s->mode;
        so->optional = s->optional;
        pm->sshopt = so;
        eo->mounts[eo->n_mounts++] = pm;
    }
    return 0;
}

/* SSH socket paths: given, or /run/buildkit/ssh_agent.<i>. */
static char **ssh_targets(kiln__enc_t *e, const kiln_llb_exec_t *ex)
{
    char **t = kiln__enc_alloc(e, (ex->ssh.n + 1) * sizeof(*t));

    for (size_t i = 0; t != NULL && i < ex->ssh.n; i++) {
        const struct kiln__ssh *s = ex->ssh.v[i];
        char buf[64];
        if (s->target != NULL) {
            t[i] = (char *)s->target;
            continue;
        }
        snprintf(buf, sizeof(buf), "/run/buildkit/ssh_agent.%zu", i);
        t[i] = kiln__arena_strdup(&e->tmp, buf);
        if (t[i] == NULL) {
            return NULL;
        }
    }
    return t;
}

static int exec_mounts(kiln__enc_t *e, const kiln_llb_exec_t *ex,
                       char *const *targets, Pb__Op *pop, Pb__ExecOp *eo)
{
    kiln__mount_t **sorted = sorted_mounts(e, ex);
    kiln__vec_t inputs = {0};
    int64_t outputs = 0;
    size_t cap = ex->mounts.n + ex->secrets.n + ex->ssh.n + 1;

    eo->mounts = kiln__enc_alloc(e, cap * sizeof(*eo->mounts));
    if (sorted == NULL || eo->mounts == NULL) {
        return kiln__enc_oom(e);
    }
    for (size_t i = 0; i < ex->mounts.n; i++) {
        Pb__Mount *pm = bind_mount(e, &inputs, sorted[i], &outputs);
        if (pm == NULL) {
            return KILN_ENOMEM;
        }
        eo->mounts[eo->n_mounts++] = pm;
    }
    pop->inputs = (Pb__Input **)inputs.v;
    pop->n_inputs = inputs.n;
    if (secret_mounts(e, ex, eo) < 0) {
        return KILN_ENOMEM;
    }
    return ssh_mounts(e, ex, targets, eo);
}

int kiln__llb_encode_exec(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                          kiln__caps_t *caps)
{
    const kiln_llb_exec_t *ex = op->u.exec;
    const kiln__platform_t *plat = op->platform;
    Pb__ExecOp *eo = KILN_ENC_NEW(e, Pb__ExecOp, PB__EXEC_OP__INIT);
    char **targets = ssh_targets(e, ex);
    int rc;

    if (eo == NULL || targets == NULL) {
        return kiln__enc_oom(e);
    }
    eo->meta = build_meta(e, ex, ex->ssh.n > 0 ? targets[0] : NULL, caps);
    if (eo->meta == NULL) {
        return KILN_ENOMEM;
    }
    eo->network = (Pb__NetMode)ex->network;
    eo->security = (Pb__SecurityMode)ex->security;
    if (ex->network != KILN_LLB_NET_SANDBOX) {
        kiln__caps_add(caps, "exec.meta.network");
    }
    if (ex->security != KILN_LLB_SECURITY_SANDBOX) {
        kiln__caps_add(caps, "exec.meta.security");
    }
    kiln__caps_add(caps, "exec.meta.base");
    mount_caps(ex, caps);
    if (plat == NULL) {
        plat = kiln__llb_state_platform(ex->base);
    }
    rc = kiln__llb_constraints(e, pop, op, plat ? plat : &e->b->platform);
    if (rc == 0) {
        rc = exec_mounts(e, ex, targets, pop, eo);
    }
    if (rc < 0) {
        return rc;
    }
    pop->op_case = PB__OP__OP_EXEC;
    pop->exec = eo;
    return 0;
}
