/*
 * ExecOp (exec.h): the op's meta and mounts become the helper's spec; the
 * helper runs; its status says what happened; the mounts' changes become
 * the outputs.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/helper.h"
#include "exec/mounts.h"

#define DEFAULT_HOSTNAME "buildkitsandbox"

static atomic_bool no_overlay, warned_overlay, warned_cgroup;

static void warn_once(const kiln__exec_env_t *env, atomic_bool *flag,
                      const char *msg)
{
    if (!atomic_exchange(flag, true) && env->warn != NULL) {
        env->warn(env->ud, msg);
    }
}

static int push(char ***v, size_t *n, char *s, kiln_error_t *err)
{
    char **nv;

    if (s == NULL || (nv = realloc(*v, (*n + 2) * sizeof(*nv))) == NULL) {
        free(s);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    nv[(*n)++] = s;
    nv[*n] = NULL;
    *v = nv;
    return 0;
}

static char *pair(const char *k, const char *v)
{
    char *s;

    return asprintf(&s, "%s=%s", k, v) < 0 ? NULL : s;
}

/* kiln__read_file() with a NUL after the bytes. */
static int read_text(const char *path, size_t limit, uint8_t **out, size_t *len,
                     kiln_error_t *err)
{
    int rc = kiln__read_file(path, limit, out, len, err);
    uint8_t *t;

    if (rc < 0) {
        return rc;
    }
    if ((t = realloc(*out, *len + 1)) == NULL) {
        free(*out);
        *out = NULL;
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    t[*len] = '\0';
    *out = t;
    return 0;
}

static bool has_env(char **env, size_t n, const char *key)
{
    size_t len = strlen(key);

    for (size_t i = 0; i < n; i++) {
        if (strncmp(env[i], key, len) == 0 && env[i][len] == '=') {
            return true;
        }
    }
    return false;
}

/* Meta.env, the proxy variables (both spellings, as BuildKit sets them),
 * secrets as environment variables, SSH_AUTH_SOCK. */
static int make_env(const kiln__exec_ctx_t *c, kiln__exec_spec_t *s,
                    kiln_error_t *err)
{
    const Pb__Meta *meta = c->op->meta;
    const Pb__ProxyEnv *px = meta->proxy_env;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < meta->n_env; i++) {
        rc = push(&s->env, &s->n_env, strdup(meta->env[i]), err);
    }
    if (px != NULL) {
        const char *const vals[][2] = {
            {"HTTP_PROXY", px->http_proxy}, {"HTTPS_PROXY", px->https_proxy},
            {"FTP_PROXY", px->ftp_proxy},   {"NO_PROXY", px->no_proxy},
            {"ALL_PROXY", px->all_proxy},
        };
        for (size_t i = 0; rc == 0 && i < KILN_ARRAY_SIZE(vals); i++) {
            char lower[16];

            if (vals[i][1] == NULL || vals[i][1][0] == '\0') {
                continue;
            }
            for (size_t k = 0; k < sizeof(lower); k++) {
                lower[k] = vals[i][0][k] >= 'A' && vals[i][0][k] <= 'Z'
                               ? (char)(vals[i][0][k] + 32)
                               : vals[i][0][k];
                if (vals[i][0][k] == '\0') {
                    break;
                }
            }
            rc = push(&s->env, &s->n_env, pair(vals[i][0], vals[i][1]), err);
            if (rc == 0) {
                rc = push(&s->env, &s->n_env, pair(lower, vals[i][1]), err);
            }
        }
    }
    for (size_t i = 0; rc == 0 && i < c->op->n_secretenv; i++) {
        const Pb__SecretEnv *se = c->op->secretenv[i];
        const char *path = kiln__exec_lookup(c->env->secrets, se->id);
        const char *var = kiln__exec_lookup(c->env->secret_envs, se->id);
        uint8_t *data = NULL;
        size_t len = 0;

        if (path != NULL) {
            rc = read_text(path, 500 * 1024, &data, &len, err);
        } else if (var != NULL && getenv(var) != NULL) {
            data = (uint8_t *)strdup(getenv(var));
            len = data != NULL ? strlen((char *)data) : 0;
            rc = data != NULL ? 0
                              : kiln__fail(err, KILN_ENOMEM, "out of memory");
        } else if (se->optional) {
            continue;
        } else {
            rc = kiln__fail(err, KILN_EINVAL,
                            "secret '%s' (for $%s) was not given (kiln build "
                            "--secret id=%s,src=FILE or env=VAR)",
                            se->id, se->name, se->id);
        }
        if (rc == 0) {
            rc = push(&s->env, &s->n_env, pair(se->name, (char *)data), err);
        }
        if (data != NULL) {
            explicit_bzero(data, len);
        }
        free(data);
    }
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        if (c->m[i].pm->mounttype == PB__MOUNT_TYPE__SSH &&
            c->m[i].kind != MNT_SKIP &&
            !has_env(s->env, s->n_env, "SSH_AUTH_SOCK")) {
            rc = push(&s->env, &s->n_env,
                      pair("SSH_AUTH_SOCK", c->m[i].pm->dest), err);
        }
    }
    return rc;
}

static int make_files(const kiln__exec_ctx_t *c, kiln__exec_spec_t *s,
                      kiln_error_t *err)
{
    const Pb__Meta *meta = c->op->meta;
    kiln__buf_t b = KILN_BUF_INIT;
    uint8_t *resolv = NULL;
    size_t len;
    kiln_error_t ignored;

    kiln__buf_printf(&b, "127.0.0.1\tlocalhost %s\n", s->hostname);
    kiln__buf_puts(&b, "::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (size_t i = 0; i < meta->n_extrahosts; i++) {
        kiln__buf_printf(&b, "%s\t%s\n", meta->extrahosts[i]->ip,
                         meta->extrahosts[i]->host);
    }
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    s->hosts = (char *)b.data;
    if (read_text("/etc/resolv.conf", 1u << 16, &resolv, &len, &ignored) == 0) {
        s->resolv = (char *)resolv;
    }
    return 0;
}

static int make_spec(kiln__exec_ctx_t *c, kiln__exec_spec_t *s,
                     kiln_error_t *err)
{
    const Pb__Meta *meta = c->op->meta;
    char staging[4096];
    int rc = 0;

    memset(s, 0, sizeof(*s));
    for (size_t i = 0; rc == 0 && i < meta->n_args; i++) {
        rc = push(&s->args, &s->n_args, strdup(meta->args[i]), err);
    }
    if (rc == 0) {
        rc = make_env(c, s, err);
    }
    if (rc == 0 && meta->cwd != NULL && meta->cwd[0] != '\0' &&
        meta->cwd[0] != '/') {
        rc = asprintf(&s->cwd, "/%s", meta->cwd) < 0
                 ? kiln__fail(err, KILN_ENOMEM, "out of memory")
                 : 0;
    } else if (rc == 0) {
        s->cwd = strdup(meta->cwd != NULL && meta->cwd[0] ? meta->cwd : "/");
    }
    s->user = strdup(meta->user != NULL ? meta->user : "");
    s->hostname =
        strdup(meta->hostname != NULL && meta->hostname[0] ? meta->hostname
                                                           : DEFAULT_HOSTNAME);
    if (rc == 0 && (s->cwd == NULL || s->user == NULL || s->hostname == NULL)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = make_files(c, s, err);
    }
    s->net_none = c->op->network == PB__NET_MODE__NONE;
    if (rc == 0 && meta->n_ulimit > 0) {
        s->ulimits = calloc(meta->n_ulimit, sizeof(*s->ulimits));
        if (s->ulimits == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        for (size_t i = 0; rc == 0 && i < meta->n_ulimit; i++) {
            const Pb__Ulimit *u = meta->ulimit[i];

            s->ulimits[i].name = strdup(u->name);
            s->ulimits[i].soft = u->soft < 0 ? UINT64_MAX : (uint64_t)u->soft;
            s->ulimits[i].hard = u->hard < 0 ? UINT64_MAX : (uint64_t)u->hard;
            s->n_ulimits++;
        }
    }
    if (rc == 0) {
        rc = kiln__exec_tmpdir(c, staging, err);
    }
    if (rc == 0 && (s->staging = strdup(staging)) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    /* The mounts: shallow copies, owned by c->m. */
    s->mounts = calloc(c->n + 1, sizeof(*s->mounts));
    for (size_t i = 0; rc == 0 && s->mounts != NULL && i < c->n; i++) {
        if (c->m[i].kind != MNT_SKIP) {
            s->mounts[s->n_mounts++] = c->m[i].spec;
        }
    }
    if (rc == 0 && s->mounts == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return rc;
}

static void spec_free(kiln__exec_spec_t *s)
{
    /* The mounts' strings belong to the mounts. */
    free(s->mounts);
    s->mounts = NULL;
    s->n_mounts = 0;
    kiln__exec_spec_clear(s);
}

/* What the helper said: stubs into c, the first error into err. Returns
 * 0, 1 when overlayfs was refused, or an error. */
static int read_status(kiln__exec_ctx_t *c, const kiln__exec_proc_t *p,
                       kiln_error_t *err)
{
    size_t off = 0;
    int rc = 0;

    while (off < p->status.len) {
        kiln__exec_rec_t r;
        char msg[KILN_ERROR_MAX];

        if (kiln__exec_rec_next(p->status.data, p->status.len, &off, &r, NULL) <
                0 ||
            r.n < 1) {
            break; /* a helper killed mid-record */
        }
        snprintf(msg, sizeof(msg), "%.*s", (int)r.len[0], (const char *)r.f[0]);
        if (r.tag == KILN__EXEC_ST_STUB && r.n == 2) {
            kiln__exec_stub_t *v =
                realloc(c->stubs, (c->n_stubs + 1) * sizeof(*v));
            if (v == NULL || (v[c->n_stubs].path = strdup(msg)) == NULL) {
                c->stubs = v != NULL ? v : c->stubs;
                return kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
            v[c->n_stubs++].parent = r.len[1] == 1 && r.f[1][0] == '1';
            c->stubs = v;
        } else if (r.tag == KILN__EXEC_ST_WARN) {
            if (c->env->warn != NULL) {
                c->env->warn(c->env->ud, msg);
            }
        } else if (rc == 0 && r.tag == KILN__EXEC_ST_NOOVL) {
            rc = 1;
            if (err != NULL) {
                snprintf(err->message, sizeof(err->message), "%s", msg);
            }
        } else if (rc == 0 && r.tag == KILN__EXEC_ST_NONS) {
            rc = kiln__fail(err, KILN_ENOTSUP, "%s", msg);
        } else if (rc == 0 && r.tag == KILN__EXEC_ST_START) {
            rc = kiln__fail(err, KILN_EINVAL, "%s", msg);
        } else if (rc == 0 && r.tag == KILN__EXEC_ST_ERROR) {
            rc = kiln__fail(err, KILN_EIO, "%s", msg);
        }
    }
    return rc;
}

/* BuildKit's message: process "ARGS" did not complete successfully. */
static int command_failed(const kiln__exec_ctx_t *c, const kiln__exec_proc_t *p,
                          kiln_error_t *err)
{
    const Pb__Meta *meta = c->op->meta;
    char cmd[256] = "", tail[KILN_ERROR_MAX];
    size_t used = 0;

    for (size_t i = 0; i < meta->n_args && used + 1 < sizeof(cmd); i++) {
        int w = snprintf(cmd + used, sizeof(cmd) - used, "%s%s",
                         i > 0 ? " " : "", meta->args[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    kiln__exec_tail(p, tail, sizeof(tail) - 200);
    if (p->term_signal != 0) {
        return kiln__fail(err, KILN_EIO,
                          "process \"%s\" did not complete successfully: "
                          "killed by signal %d%s",
                          cmd, p->term_signal, tail);
    }
    return kiln__fail(err, KILN_EIO,
                      "process \"%s\" did not complete successfully: exit "
                      "code: %lld%s",
                      cmd, (long long)p->exit_status, tail);
}

static bool exit_ok(const Pb__Meta *meta, const kiln__exec_proc_t *p)
{
    if (p->term_signal != 0) {
        return false;
    }
    if (meta->n_validexitcodes == 0) {
        return p->exit_status == 0;
    }
    for (size_t i = 0; i < meta->n_validexitcodes; i++) {
        if (meta->validexitcodes[i] == p->exit_status) {
            return true;
        }
    }
    return false;
}

/* One attempt: 1 means overlayfs was refused (retry with copies). */
static int attempt(kiln__exec_ctx_t *c, kiln_error_t *err)
{
    kiln__exec_spec_t spec;
    kiln__exec_proc_t p;
    kiln__buf_t b = KILN_BUF_INIT;
    int rc = kiln__exec_mounts_prepare(c, err);

    memset(&p, 0, sizeof(p));
    if (rc == 0) {
        rc = make_spec(c, &spec, err);
        if (rc == 0) {
            kiln__exec_spec_encode(&spec, &b);
            if (!kiln__buf_ok(&b)) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
        }
        spec_free(&spec);
    }
    if (rc == 0) {
        rc = kiln__exec_spawn(c->env, b.data, b.len, &p, err);
    }
    if (b.data != NULL) {
        explicit_bzero(b.data, b.len);
    }
    kiln__buf_free(&b);
    if (rc < 0) {
        return rc;
    }
    if (p.cancelled) {
        rc = kiln__fail(err, KILN_ECANCELED, "canceled");
    } else {
        rc = read_status(c, &p, err);
    }
    if (rc == 0 && !exit_ok(c->op->meta, &p)) {
        rc = command_failed(c, &p, err);
    }
    kiln__buf_free(&p.status);
    return rc;
}

static int check_op(const kiln__exec_env_t *env, const Pb__ExecOp *op,
                    kiln_error_t *err)
{
    if (op->meta == NULL || op->meta->n_args == 0) {
        return kiln__fail(err, KILN_EINVAL, "exec op without a command");
    }
    if (op->security == PB__SECURITY_MODE__INSECURE) {
        return kiln__fail(err, KILN_EINVAL,
                          "exec op asks for security mode INSECURE, which "
                          "kiln does not grant");
    }
    for (size_t i = 0; i < op->n_cdidevices; i++) {
        if (!op->cdidevices[i]->optional) {
            return kiln__fail(err, KILN_ENOTSUP,
                              "exec op needs CDI device '%s', which kiln "
                              "cannot provide",
                              op->cdidevices[i]->name);
        }
    }
    if (op->meta->cgroupparent != NULL && op->meta->cgroupparent[0]) {
        warn_once(env, &warned_cgroup,
                  "exec: Meta.cgroupParent is ignored (kiln makes no "
                  "cgroups)");
    }
    return 0;
}

/* Output i of the op: the mount that has it. */
static int make_result(const kiln__exec_ctx_t *c, kiln_fileop_result_t **out,
                       kiln_error_t *err)
{
    kiln_fileop_result_t *r = calloc(1, sizeof(*r));
    int64_t max = -1;

    if (r == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->m[i].pm->output > max) {
            max = c->m[i].pm->output;
        }
    }
    r->n_outputs = (size_t)(max + 1);
    r->outputs = calloc(r->n_outputs + 1, sizeof(*r->outputs));
    if (r->outputs == NULL) {
        kiln__fileop_result_free(r);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t o = 0; o < r->n_outputs; o++) {
        r->outputs[o].base = -2; /* unset */
    }
    for (size_t i = 0; i < c->n; i++) {
        const kiln__exec_mnt_t *m = &c->m[i];
        kiln_fileop_output_t *o;
        bool layer;

        if (m->pm->output < 0) {
            continue;
        }
        o = &r->outputs[m->pm->output];
        o->base = m->pm->input >= 0 ? m->pm->input : -1;
        layer =
            !m->pm->readonly &&
            (m->kind == MNT_PLAIN ||
             ((m->kind == MNT_OVERLAY || m->kind == MNT_COPY) && !m->empty));
        if (layer) {
            o->layers = calloc(1, sizeof(*o->layers));
            if (o->layers == NULL ||
                (o->layers->dir = strdup(m->upper)) == NULL) {
                kiln__fileop_result_free(r);
                return kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
            o->layers->created = true;
            o->n_layers = 1;
        }
    }
    for (size_t o = 0; o < r->n_outputs; o++) {
        if (r->outputs[o].base == -2) {
            kiln__fileop_result_free(r);
            return kiln__fail(err, KILN_EINVAL, "no mount makes output %zu", o);
        }
    }
    *out = r;
    return 0;
}

static void clear_stubs(kiln__exec_ctx_t *c)
{
    for (size_t i = 0; i < c->n_stubs; i++) {
        free(c->stubs[i].path);
    }
    free(c->stubs);
    c->stubs = NULL;
    c->n_stubs = 0;
}

int kiln__exec_run(const kiln__exec_env_t *env, kiln_error_t *err,
                   kiln_fileop_result_t **out)
{
    const char *force = getenv("KILN_EXEC_COPY");
    kiln__exec_ctx_t c = {.env = env, .op = env->op};
    int rc = check_op(env, env->op, err);

    *out = NULL;
    c.copy_mode =
        atomic_load(&no_overlay) || (force != NULL && strcmp(force, "1") == 0);
    if (rc == 0) {
        rc = attempt(&c, err);
    }
    if (rc == 1) {
        char why[KILN_ERROR_MAX], msg[KILN_ERROR_MAX + 128];

        snprintf(why, sizeof(why), "%s", err->message);
        snprintf(msg, sizeof(msg),
                 "exec: %s; running on copies of the inputs instead (slower)",
                 why);
        atomic_store(&no_overlay, true);
        warn_once(env, &warned_overlay, msg);
        kiln__exec_mounts_release(&c);
        clear_stubs(&c);
        c.copy_mode = true;
        rc = attempt(&c, err);
        if (rc == 1) {
            rc = kiln__fail(err, KILN_EIO, "overlayfs refused in copy mode");
        }
    }
    if (rc == 0) {
        rc = kiln__exec_mounts_collect(&c, err);
    }
    if (rc == 0) {
        rc = make_result(&c, out, err);
    }
    kiln__exec_mounts_release(&c);
    clear_stubs(&c);
    return rc;
}
