/*
 * The git source plugin: scheme "git".
 *
 * translate writes what BuildKit's llb.Git(remote, fragment, opts...)
 * writes: git://HOST/PATH[#REF[:SUBDIR]] and the git.* attrs, the remote
 * as given (https, ssh://, scp-like, git://) in git.fullurl.
 *
 * resolve pins the source to a commit: a full commit name as the ref pins
 * without a request; anything else is looked up with `git ls-remote`
 * (branches, tags, refs/pull/N/head, HEAD), and a short commit name by
 * fetching the remote's history. The pin is the commit plus what changes
 * the result for it (keepgitdir, subdir, submodules skipped, commit
 * mtimes), so a branch that moved rebuilds and one that did not is a cache
 * hit.
 *
 * fetch makes the commit present in the cache repository of the remote
 * (shared, locked) and checks it out into the fetch directory. A cache
 * repository that turns out to be corrupt is discarded and fetched again.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "git.h"

#define SHA_MAX 65

/* Set by every init(): engines made at once on two threads load the
 * module once and call init() each, with the same table. */
static const kiln_host_t *_Atomic host;

static int git_init(const kiln_host_t *h, void **state)
{
    if (!KILN_HOST_HAS(h, local_dir)) {
        return -ENOTSUP;
    }
    host = h;
    *state = NULL;
    return 0;
}

/* ---- translate ---- */

static const char *const known_params =
    "remote, fragment, ref, subdir, keepgitdir, authtokensecret, "
    "authheadersecret, knownsshhosts, mountsshsock, checksum, "
    "skipsubmodules, mtime";

static bool known_param(const char *k)
{
    static const char *const keys[] = {
        "remote",           "fragment",       "ref",
        "subdir",           "keepgitdir",     "authtokensecret",
        "authheadersecret", "knownsshhosts",  "mountsshsock",
        "checksum",         "skipsubmodules", "mtime"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(k, keys[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* A boolean parameter: 1, 0, or -EINVAL with a message. */
static int param_bool(kiln_job_t *job, const kiln_attrs_t *params,
                      const char *key)
{
    const char *v = host->attr_get(params, key);

    if (v == NULL || strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        return 0;
    }
    if (*v == '\0' || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        return 1;
    }
    return host->fail(job, -EINVAL, "%s=%s: not a boolean (true or false)", key,
                      v);
}

/* path.Join("/", s) without the leading "/": "" for none. Malloc'ed. */
static char *clean_subdir(const char *s)
{
    char *p = git_path_clean(s);

    if (p != NULL) {
        memmove(p, p + 1, strlen(p));
    }
    return p;
}

/* The identifier: git:// + id [+ #ref[:subdir]]. */
static int write_ident(kiln_job_t *job, const git_url_t *u, const char *ref,
                       const char *sub, char *ident, size_t size)
{
    int n;

    if (u->ok && (*ref || *sub)) {
        n = snprintf(ident, size, "git://%s#%s%s%s", u->id, ref,
                     *sub ? ":" : "", sub);
    } else {
        n = snprintf(ident, size, "git://%s", u->id);
    }
    if (n < 0 || (size_t)n >= size) {
        return host->fail(job, -ENAMETOOLONG,
                          "the git identifier is too "
                          "long");
    }
    return 0;
}

/* The attrs llb.Git() sets, in its order of decisions. */
static int write_attrs(kiln_job_t *job, const kiln_attrs_t *params,
                       const git_url_t *u, int keep, int skip,
                       kiln_attrs_t *attrs)
{
    const char *tok = host->attr_get(params, "authtokensecret");
    const char *hdr = host->attr_get(params, "authheadersecret");
    const char *known = host->attr_get(params, "knownsshhosts");
    const char *sock = host->attr_get(params, "mountsshsock");
    const char *sum = host->attr_get(params, "checksum");
    const char *mtime = host->attr_get(params, "mtime");
    int rc = 0;

    tok = tok ? tok : "GIT_AUTH_TOKEN";
    hdr = hdr ? hdr : "GIT_AUTH_HEADER";
    if (keep) {
        rc = host->attr_set(attrs, "git.keepgitdir", "true");
    }
    if (rc == 0 && *u->remote) {
        rc = host->attr_set(attrs, "git.fullurl", u->remote);
    }
    if (rc == 0 && *tok) {
        rc = host->attr_set(attrs, "git.authtokensecret", tok);
    }
    if (rc == 0 && *hdr) {
        rc = host->attr_set(attrs, "git.authheadersecret", hdr);
    }
    if (rc == 0 && u->ssh) {
        if (known != NULL && *known) {
            /* llb.KnownSSHHosts: each key ends in exactly one newline. */
            size_t n = strlen(known);
            char *k = malloc(n + 2);
            if (k == NULL) {
                return -ENOMEM;
            }
            n -= n > 0 && known[n - 1] == '\n';
            sprintf(k, "%.*s\n", (int)n, known);
            rc = host->attr_set(attrs, "git.knownsshhosts", k);
            free(k);
        }
        if (rc == 0) {
            rc = host->attr_set(attrs, "git.mountsshsock",
                                sock && *sock ? sock : "default");
        }
    } else if ((known != NULL && *known) || (sock != NULL && *sock)) {
        host->log(job, KILN_PLUGIN_LOG_WARN,
                  "knownsshhosts and mountsshsock apply to SSH remotes "
                  "only: ignored for %s",
                  u->id);
    }
    if (rc == 0 && sum != NULL && *sum) {
        if (sum[strspn(sum, "0123456789abcdef")] != '\0') {
            return host->fail(job, -EINVAL,
                              "checksum=%s: not a (lower case, hex) commit "
                              "name",
                              sum);
        }
        rc = host->attr_set(attrs, "git.checksum", sum);
    }
    if (rc == 0 && skip) {
        rc = host->attr_set(attrs, "git.skipsubmodules", "true");
    }
    if (rc == 0 && mtime != NULL && *mtime) {
        /* llb.GitMTime: the checkout's time (git's), or the commit's. */
        if (strcmp(mtime, "checkout") != 0 && strcmp(mtime, "commit") != 0) {
            return host->fail(job, -EINVAL, "mtime=%s: not checkout or commit",
                              mtime);
        }
        rc = host->attr_set(attrs, "git.mtime", mtime);
    }
    return rc;
}

static int git_translate(void *state, kiln_job_t *job, const char *scheme,
                         const kiln_attrs_t *params, char *ident,
                         size_t ident_size, kiln_attrs_t *attrs)
{
    const char *remote = host->attr_get(params, "remote");
    const char *frag = host->attr_get(params, "fragment");
    const char *ref_opt = host->attr_get(params, "ref");
    const char *sub_opt = host->attr_get(params, "subdir");
    char *ref = NULL, *sub = NULL, *colon;
    git_url_t u = {0};
    int keep, skip, rc;

    (void)state;
    (void)scheme;
    for (size_t i = 0; i < host->attr_count(params); i++) {
        if (!known_param(host->attr_key(params, i))) {
            return host->fail(job, -EINVAL,
                              "unknown parameter \"%s\" (known: %s)",
                              host->attr_key(params, i), known_params);
        }
    }
    if (remote == NULL || *remote == '\0') {
        return host->fail(job, -EINVAL, "missing parameter remote=URL");
    }
    if ((keep = param_bool(job, params, "keepgitdir")) < 0 ||
        (skip = param_bool(job, params, "skipsubmodules")) < 0) {
        return keep < 0 ? keep : skip;
    }
    /* llb.Git(url, "ref:subdir"); GitRef and GitSubDir options win. */
    ref = strdup(frag ? frag : "");
    if (ref == NULL) {
        return -ENOMEM;
    }
    if ((colon = strchr(ref, ':')) != NULL) {
        *colon = '\0';
        sub = clean_subdir(colon + 1);
    }
    if (ref_opt != NULL) {
        free(ref);
        ref = strdup(ref_opt);
    }
    if (sub_opt != NULL) {
        free(sub);
        sub = clean_subdir(sub_opt);
    }
    if (ref == NULL || (sub == NULL && (sub = strdup("")) == NULL) ||
        git_url_parse(remote, &u) < 0) {
        rc = -ENOMEM;
    } else {
        rc = write_ident(job, &u, ref, sub, ident, ident_size);
    }
    if (rc == 0) {
        rc = write_attrs(job, params, &u, keep, skip, attrs);
    }
    git_url_free(&u);
    free(ref);
    free(sub);
    return rc == -ENOMEM ? host->fail(job, rc, "git: out of memory") : rc;
}

/* ---- the source ---- */

/* What resolve and fetch read from an identifier and its attrs. */
struct source {
    char *remote;
    char *ref;
    char *subdir;
    bool keep, skip, commit_mtime;
    const char *checksum;
};

static void source_free(struct source *s)
{
    free(s->remote);
    free(s->ref);
    free(s->subdir);
}

/*
 * Attrs that would change what the result is or whether it may be used:
 * refused rather than ignored (a signature check skipped silently would
 * pass anything). git.bundle (objects from elsewhere, the same commit)
 * and git.fetchbycommit (fetches here are always by commit) need nothing.
 */
static int refuse_unsupported(kiln_job_t *job, const kiln_source_t *src)
{
    static const char *const keys[] = {"git.checkoutbundle", "git.sig.pubkey",
                                       "git.sig.requiresignedtag"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = host->attr_get(src->attrs, keys[i]);
        if (v != NULL && *v && strcmp(v, "false") != 0) {
            return host->fail(job, -ENOTSUP,
                              "%s is not supported by kiln's git source",
                              keys[i]);
        }
    }
    return 0;
}

/* BuildKit's NewGitIdentifier: HOST/PATH#REF:SUBDIR; the remote from
 * git.fullurl, else https://HOST/PATH. */
static int source_parse(kiln_job_t *job, const kiln_source_t *src,
                        struct source *s)
{
    const char *loc = src->locator, *hash = strchr(loc, '#');
    const char *full = host->attr_get(src->attrs, "git.fullurl");
    const char *keep = host->attr_get(src->attrs, "git.keepgitdir");
    const char *skip = host->attr_get(src->attrs, "git.skipsubmodules");
    const char *mtime = host->attr_get(src->attrs, "git.mtime");
    size_t n = hash ? (size_t)(hash - loc) : strlen(loc);
    int rc;

    memset(s, 0, sizeof(*s));
    if (full != NULL && *full) {
        s->remote = strdup(full);
    } else if (asprintf(&s->remote, "https://%.*s", (int)n, loc) < 0) {
        s->remote = NULL;
    }
    if (hash != NULL) {
        const char *colon = strchr(hash + 1, ':');
        s->ref = colon ? strndup(hash + 1, (size_t)(colon - hash - 1))
                       : strdup(hash + 1);
        s->subdir = colon ? clean_subdir(colon + 1) : strdup("");
    } else {
        s->ref = strdup("");
        s->subdir = strdup("");
    }
    if (s->remote == NULL || s->ref == NULL || s->subdir == NULL) {
        source_free(s);
        return host->fail(job, -ENOMEM, "git: out of memory");
    }
    s->keep = keep != NULL && strcmp(keep, "true") == 0;
    s->skip = skip != NULL && strcmp(skip, "true") == 0;
    s->commit_mtime = mtime != NULL && strcmp(mtime, "commit") == 0;
    s->checksum = host->attr_get(src->attrs, "git.checksum");
    if ((rc = refuse_unsupported(job, src)) < 0) {
        source_free(s);
        return rc;
    }
    if (s->ref[0] == '-' || strstr(s->ref, "..") != NULL) {
        rc = host->fail(job, -EINVAL, "%s: invalid ref '%s'", src->identifier,
                        s->ref);
        source_free(s);
        return rc;
    }
    return 0;
}

/* 4 to 39 lower-case hex digits: perhaps a short commit name. */
static bool short_sha(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");

    return s[n] == '\0' && n >= 4 && n < 40;
}

/* ---- resolve ---- */

static int check_sum(kiln_job_t *job, const struct source *s, const char *shown,
                     const char *sha)
{
    if (s->checksum == NULL || *s->checksum == '\0' ||
        strncmp(sha, s->checksum, strlen(s->checksum)) == 0) {
        return 0;
    }
    return host->fail(job, -EBADMSG,
                      "ref '%s' of %s is commit %s, which does not match "
                      "git.checksum %s",
                      s->ref, shown, sha, s->checksum);
}

static int lookup(git_ctx_t *c, const struct source *s, char *sha)
{
    int rc;

    if (git_is_full_sha(s->ref)) {
        snprintf(sha, SHA_MAX, "%s", s->ref);
        return 0; /* a commit pins itself: no request */
    }
    if (!short_sha(s->ref)) {
        return git_ls_remote(c, s->ref, sha, SHA_MAX, true);
    }
    rc = git_ls_remote(c, s->ref, sha, SHA_MAX, false);
    if (rc == -ENOENT) {
        /* Not a ref: a commit prefix, found in the whole history. */
        rc = git_repo_lock(c);
        if (rc == 0) {
            rc = git_repo_expand(c, s->ref, sha, SHA_MAX);
        }
    }
    return rc;
}

static int git_resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    struct source s;
    git_ctx_t c;
    char sha[SHA_MAX], *pin = NULL;
    int rc;

    (void)state;
    if ((rc = source_parse(job, src, &s)) < 0) {
        return rc;
    }
    rc = git_ctx_open(&c, host, job, s.remote, src->attrs);
    if (rc == 0) {
        rc = lookup(&c, &s, sha);
    }
    if (rc == 0) {
        rc = check_sum(job, &s, c.shown, sha);
    }
    if (rc == 0) {
        host->log(job, KILN_PLUGIN_LOG_INFO, "%s#%s is commit %s", c.shown,
                  *s.ref ? s.ref : "HEAD", sha);
        /* BuildKit's cache key: what changes the result for the commit. */
        if (asprintf(&pin, "%s%s%s%s%s%s%s", sha, s.keep ? ".git#" : "",
                     s.keep ? s.ref : "", *s.subdir ? ":" : "", s.subdir,
                     s.skip ? "(skip-submodules)" : "",
                     s.commit_mtime ? "(mtime=commit)" : "") < 0) {
            pin = NULL;
            rc = host->fail(job, -ENOMEM, "git: out of memory");
        }
    }
    if (rc == 0) {
        rc = host->set_pin(job, pin);
    }
    free(pin);
    git_ctx_close(&c);
    source_free(&s);
    return rc;
}

/* ---- fetch ---- */

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
    (void)st;
    return ftw->level == 0                                     ? 0
           : (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1
                                                               : 0;
}

/* Empties dest for a second attempt. */
static int empty_dir(kiln_job_t *job, const char *dest)
{
    if (nftw(dest, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
        return host->fail(job, -errno, "%s: %s", dest, strerror(errno));
    }
    return 0;
}

static int fetch_into(git_ctx_t *c, const git_checkout_t *co, const char *dest)
{
    int rc = git_repo_lock(c);

    for (int attempt = 0; rc == 0; attempt++) {
        rc = git_repo_fetch(c, co->sha);
        if (rc == 0) {
            rc = git_checkout(c, co, dest);
        }
        if (rc != -EUCLEAN || attempt > 0) {
            break;
        }
        host->log(c->job, KILN_PLUGIN_LOG_WARN,
                  "the cache repository of %s is corrupt: discarding it and "
                  "fetching again",
                  c->shown);
        rc = empty_dir(c->job, dest);
        if (rc == 0) {
            rc = git_repo_reset(c);
        }
    }
    return rc;
}

static int git_fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                     const char *dest_dir)
{
    struct source s;
    git_checkout_t co = {0};
    git_ctx_t c;
    char sha[SHA_MAX];
    size_t n = src->pin ? strspn(src->pin, "0123456789abcdef") : 0;
    int rc;

    (void)state;
    if (n != 40 && n != 64) {
        return host->fail(job, -EINVAL, "%s: pin \"%s\" names no commit",
                          src->identifier, src->pin ? src->pin : "");
    }
    snprintf(sha, sizeof(sha), "%.*s", (int)n, src->pin);
    if ((rc = source_parse(job, src, &s)) < 0) {
        return rc;
    }
    co.sha = sha;
    co.subdir = s.subdir;
    co.keep_git_dir = s.keep;
    co.submodules = !s.skip;
    co.commit_mtime = s.commit_mtime;
    rc = git_ctx_open(&c, host, job, s.remote, src->attrs);
    if (rc == 0) {
        rc = fetch_into(&c, &co, dest_dir);
    }
    git_ctx_close(&c);
    source_free(&s);
    return rc;
}

static const char *const schemes[] = {"git", NULL};

static const kiln_plugin_t git_plugin = {
    KILN_PLUGIN_HEADER,
    .name = "git",
    .version = "1.0.0",
    .description = "git repositories at a commit, branch or tag "
                   "(git://HOST/PATH#REF:SUBDIR)",
    .schemes = schemes,
    .init = git_init,
    .translate = git_translate,
    .resolve = git_resolve,
    .fetch = git_fetch,
};

KILN_PLUGIN_DEFINE(git_plugin)
