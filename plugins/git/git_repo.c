/*
 * The remote side: ls-remote, and one bare repository per remote in the
 * plugin's cache directory (repos/<sha256 of the redacted remote>), shared
 * by every build and every kiln process on the store, locked with flock()
 * while a fetch or checkout uses it. Fetches are shallow: just the commit
 * asked for, unless the server refuses to serve an unadvertised commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "git.h"

#define AUTH_MAX 8192

/* ---- context ---- */

static int ctx_oom(git_ctx_t *c)
{
    return c->host->fail(c->job, -ENOMEM, "git: out of memory");
}

/* The secret `id`, first as "<id>.<host>" (BuildKit's lookup order). */
static int get_secret(git_ctx_t *c, const char *id, const char *host_name,
                      char *buf, size_t size, size_t *len)
{
    char name[512];
    int rc;

    snprintf(name, sizeof(name), "%s.%s", id, host_name);
    rc = c->host->secret_get(c->job, name, buf, size - 1, len);
    if (rc == -ENOENT) {
        rc = c->host->secret_get(c->job, id, buf, size - 1, len);
    }
    if (rc == 0) {
        buf[*len] = '\0';
        while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r')) {
            buf[--*len] = '\0';
        }
    }
    return rc;
}

/* http.<origin>/.extraheader from the header secret, else the token one
 * (as basic x-access-token:TOKEN), when the build has either. */
static int setup_auth(git_ctx_t *c, const kiln_attrs_t *attrs)
{
    const char *hdr = c->host->attr_get(attrs, "git.authheadersecret");
    const char *tok = c->host->attr_get(attrs, "git.authtokensecret");
    char *origin = git_url_http_origin(c->remote), buf[AUTH_MAX];
    const char *host_name;
    size_t len = 0;
    int rc = -ENOENT;

    if (origin == NULL) {
        return 0; /* not http(s): nothing to send */
    }
    host_name = strstr(origin, "://") + 3;
    if (hdr != NULL && *hdr) {
        rc = get_secret(c, hdr, host_name, buf, sizeof(buf), &len);
        if (rc == 0 && asprintf(&c->auth_value, "Authorization: %s", buf) < 0) {
            c->auth_value = NULL;
            rc = -ENOMEM;
        }
    }
    if (rc == -ENOENT && tok != NULL && *tok) {
        rc = get_secret(c, tok, host_name, buf, sizeof(buf), &len);
        if (rc == 0) {
            char plain[AUTH_MAX + 16], b64[AUTH_MAX * 2];
            int n = snprintf(plain, sizeof(plain), "x-access-token:%s", buf);
            EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)plain, n);
            if (asprintf(&c->auth_value, "Authorization: basic %s", b64) < 0) {
                c->auth_value = NULL;
                rc = -ENOMEM;
            }
        }
    }
    explicit_bzero(buf, sizeof(buf));
    if (rc == 0) {
        char *k = NULL;
        if (asprintf(&k, "http.%s/.extraheader", origin) < 0) {
            k = NULL;
            rc = -ENOMEM;
        }
        free(origin);
        c->env.auth_key = k;
        c->env.auth_value = c->auth_value;
        return rc == -ENOMEM ? ctx_oom(c) : 0;
    }
    free(origin);
    if (rc == -ENOENT) {
        return 0; /* BuildKit names default secrets: absent is normal */
    }
    return rc == -ENOMEM
               ? ctx_oom(c)
               : c->host->fail(c->job, rc, "%s: reading the auth secret: %s",
                               c->shown, strerror(-rc));
}

/* GIT_SSH_COMMAND: never ask, check hosts against git.knownsshhosts. */
static int setup_ssh(git_ctx_t *c, const kiln_attrs_t *attrs)
{
    const char *known = c->host->attr_get(attrs, "git.knownsshhosts");
    int fd, rc;

    if (known == NULL || *known == '\0') {
        c->ssh_command = strdup("ssh -F /dev/null -o BatchMode=yes");
        return c->ssh_command ? 0 : ctx_oom(c);
    }
    if (asprintf(&c->known_hosts_file, "%s/known_hosts-XXXXXX", c->home) < 0) {
        c->known_hosts_file = NULL;
        return ctx_oom(c);
    }
    fd = mkstemp(c->known_hosts_file);
    if (fd < 0) {
        rc = -errno;
        free(c->known_hosts_file);
        c->known_hosts_file = NULL;
        return c->host->fail(c->job, rc, "%s: %s", c->home, strerror(-rc));
    }
    rc = write(fd, known, strlen(known)) == (ssize_t)strlen(known) ? 0 : -EIO;
    close(fd);
    if (rc < 0) {
        return c->host->fail(c->job, rc, "%s: cannot write", c->home);
    }
    if (asprintf(&c->ssh_command,
                 "ssh -F /dev/null -o BatchMode=yes "
                 "-o StrictHostKeyChecking=yes "
                 "-o UserKnownHostsFile=%s",
                 c->known_hosts_file) < 0) {
        c->ssh_command = NULL;
        return ctx_oom(c);
    }
    return 0;
}

/* repos/<sha256 hex of the redacted remote>. */
static int repo_path(git_ctx_t *c, const char *cache)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];

    SHA256((const unsigned char *)c->shown, strlen(c->shown), md);
    for (size_t i = 0; i < sizeof(md); i++) {
        sprintf(hex + 2 * i, "%02x", md[i]);
    }
    if (asprintf(&c->repo, "%s/repos/%s.git", cache, hex) < 0) {
        c->repo = NULL;
        return ctx_oom(c);
    }
    return 0;
}

int git_ctx_open(git_ctx_t *c, const kiln_host_t *host, kiln_job_t *job,
                 const char *remote, const kiln_attrs_t *attrs)
{
    const char *cache = host->cache_dir(job);
    char *repos = NULL, *user, *secret = NULL, templates[4200];
    int rc;

    memset(c, 0, sizeof(*c));
    c->host = host;
    c->job = job;
    c->remote = remote;
    c->lock_fd = -1;
    if ((c->shown = git_url_redact(remote)) == NULL) {
        return ctx_oom(c);
    }
    if (remote[0] == '-' || remote[0] == '\0') {
        return host->fail(job, -EINVAL, "git remote \"%s\" is not valid",
                          c->shown);
    }
    if (cache == NULL) {
        return host->fail(job, -EIO, "git: no cache directory");
    }
    if (asprintf(&c->home, "%s/home", cache) < 0) {
        c->home = NULL;
        return ctx_oom(c);
    }
    if (asprintf(&repos, "%s/repos", cache) < 0) {
        return ctx_oom(c);
    }
    snprintf(templates, sizeof(templates), "%s/templates", c->home);
    if ((mkdir(c->home, 0700) < 0 && errno != EEXIST) ||
        (mkdir(templates, 0700) < 0 && errno != EEXIST) ||
        (mkdir(repos, 0755) < 0 && errno != EEXIST)) {
        rc = -errno;
        free(repos);
        return host->fail(job, rc, "%s: %s", cache, strerror(-rc));
    }
    free(repos);
    c->env.home = c->home;
    if ((user = git_url_userinfo(remote)) != NULL) {
        /* Hidden with its '@', so that a short one hides only itself. */
        if (asprintf(&secret, "%s@", user) < 0) {
            secret = NULL;
        }
        free(user);
        if (secret == NULL) {
            return ctx_oom(c);
        }
        c->env.secret = secret;
    }
    c->env.allow_file = git_url_is_local(remote);
    if ((rc = repo_path(c, cache)) < 0 || (rc = setup_auth(c, attrs)) < 0 ||
        (rc = setup_ssh(c, attrs)) < 0) {
        return rc;
    }
    c->env.ssh_command = c->ssh_command;
    return 0;
}

void git_ctx_close(git_ctx_t *c)
{
    if (c->lock_fd >= 0) {
        close(c->lock_fd); /* releases the flock */
    }
    if (c->known_hosts_file != NULL) {
        unlink(c->known_hosts_file);
    }
    if (c->auth_value != NULL) {
        explicit_bzero(c->auth_value, strlen(c->auth_value));
    }
    free(c->auth_value);
    free((char *)c->env.auth_key);
    free((char *)c->env.secret);
    free(c->known_hosts_file);
    free(c->ssh_command);
    free(c->shown);
    free(c->home);
    free(c->repo);
    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
}

/* ---- messages ---- */

static bool auth_problem(const char *err)
{
    return strstr(err, "Authentication failed") != NULL ||
           strstr(err, "could not read Username") != NULL ||
           strstr(err, "could not read Password") != NULL ||
           strstr(err, "401") != NULL || strstr(err, "403") != NULL ||
           strstr(err, "Permission denied (publickey") != NULL;
}

/* git's words for a repository of ours that is broken. */
static bool local_damage(const char *err)
{
    return strstr(err, "corrupt") != NULL ||
           strstr(err, "bad object") != NULL ||
           strstr(err, "index-pack failed") != NULL ||
           strstr(err, "not a git repository") != NULL ||
           strstr(err, "unable to read") != NULL ||
           strstr(err, "missing blob") != NULL ||
           strstr(err, "bad config") != NULL;
}

/* A failed git command against the remote, as a job failure. */
static int remote_fail(git_ctx_t *c, const char *what, git_out_t *o)
{
    const char *line;

    if (strstr(o->err, "Host key verification failed") != NULL ||
        strstr(o->err, "REMOTE HOST IDENTIFICATION HAS CHANGED") != NULL) {
        /* ssh's banner says less than this. */
        return c->host->fail(c->job, -EACCES,
                             "git %s %s: host key verification failed (the "
                             "host's key is not one git.knownsshhosts lists)",
                             what, c->shown);
    }
    line = git_err_line(o);

    if (local_damage(line)) {
        return c->host->fail(c->job, -EUCLEAN, "git %s %s: %s", what, c->shown,
                             line);
    }
    if (auth_problem(line)) {
        return c->host->fail(c->job, -EACCES,
                             "git %s %s: authentication failed (%s)", what,
                             c->shown, line);
    }
    return c->host->fail(c->job, -EIO, "git %s %s: %s", what, c->shown, line);
}

/* git --git-dir=REPO args...: 0 with o filled, or a failure. */
static int in_repo(git_ctx_t *c, git_out_t *o, const char *const *args)
{
    const char *argv[16];
    char gitdir[4200];
    size_t n = 0;

    snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", c->repo);
    argv[n++] = "git";
    argv[n++] = gitdir;
    while (*args != NULL && n < 15) {
        argv[n++] = *args++;
    }
    argv[n] = NULL;
    return git_run(c->host, c->job, &c->env, c->home, argv, o);
}

/* ---- ls-remote ---- */

int git_ls_remote(git_ctx_t *c, const char *ref, char *sha, size_t size,
                  bool report_missing)
{
    char peeled[1100];
    const char *want = *ref ? ref : "HEAD";
    const char *argv[] = {"git", "ls-remote", c->remote, want, peeled, NULL};
    git_out_t o;
    int rc;

    snprintf(peeled, sizeof(peeled), "%s^{}", want);
    rc = git_run(c->host, c->job, &c->env, c->home, argv, &o);
    if (rc == 0 && o.status != 0) {
        rc = remote_fail(c, "ls-remote", &o);
    } else if (rc == 0) {
        rc = git_refs_pick(o.out ? o.out : "", o.len, ref, sha, size);
        if (rc == -ENOENT) {
            if (report_missing) {
                rc = c->host->fail(c->job, -ENOENT, "ref '%s' not found in %s",
                                   want, c->shown);
            }
        } else if (rc < 0) {
            rc = c->host->fail(c->job, -EBADMSG,
                               "git ls-remote %s: unexpected output", c->shown);
        }
    }
    free(o.out);
    return rc;
}

/* ---- the cache repository ---- */

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static int init_repo(git_ctx_t *c)
{
    const char *argv[] = {"git", "init", "-q", "--bare", c->repo, NULL};
    git_out_t o;
    int rc = git_run(c->host, c->job, &c->env, c->home, argv, &o);

    if (rc == 0 && o.status != 0) {
        rc = c->host->fail(c->job, -EIO, "git init %s: %s", c->repo,
                           git_err_line(&o));
    }
    free(o.out);
    return rc;
}

/* True if the repository answers as a git directory. */
static bool repo_usable(git_ctx_t *c, char *why, size_t size)
{
    const char *args[] = {"rev-parse", "--is-bare-repository", NULL};
    git_out_t o;
    bool ok = false;

    if (in_repo(c, &o, args) == 0) {
        ok = o.status == 0 && o.out != NULL && strncmp(o.out, "true", 4) == 0;
        snprintf(why, size, "%s", git_err_line(&o));
    } else {
        snprintf(why, size, "git did not run");
    }
    free(o.out);
    return ok;
}

int git_repo_reset(git_ctx_t *c)
{
    struct stat st;

    if (lstat(c->repo, &st) == 0 &&
        nftw(c->repo, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
        int rc = -errno;
        return c->host->fail(c->job, rc, "cannot remove %s: %s", c->repo,
                             strerror(-rc));
    }
    return init_repo(c);
}

int git_repo_lock(git_ctx_t *c)
{
    char path[4200], why[512];
    struct stat st;
    bool waited = false;

    snprintf(path, sizeof(path), "%s.lock", c->repo);
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->lock_fd < 0) {
        int rc = -errno;
        return c->host->fail(c->job, rc, "%s: %s", path, strerror(-rc));
    }
    while (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int rc = -errno;
            return c->host->fail(c->job, rc, "flock %s: %s", path,
                                 strerror(-rc));
        }
        if (c->host->cancelled(c->job)) {
            return c->host->fail(c->job, -ECANCELED, "canceled");
        }
        if (!waited) {
            c->host->log(c->job, KILN_PLUGIN_LOG_INFO,
                         "waiting for another fetch of %s", c->shown);
            waited = true;
        }
        usleep(20000);
    }
    if (lstat(c->repo, &st) < 0) {
        return init_repo(c);
    }
    if (!repo_usable(c, why, sizeof(why))) {
        c->host->log(c->job, KILN_PLUGIN_LOG_WARN,
                     "the cache repository of %s is corrupt (%s): "
                     "discarding it",
                     c->shown, why);
        return git_repo_reset(c);
    }
    return 0;
}

static bool has_commit(git_ctx_t *c, const char *sha)
{
    char spec[80];
    const char *args[] = {"cat-file", "-e", spec, NULL};
    git_out_t o;
    bool ok;

    snprintf(spec, sizeof(spec), "%s^{commit}", sha);
    ok = in_repo(c, &o, args) == 0 && o.status == 0;
    free(o.out);
    return ok;
}

/* A ref of ours keeps a fetched commit from being pruned. */
static int keep_commit(git_ctx_t *c, const char *sha)
{
    char ref[100];
    const char *args[] = {"update-ref", ref, sha, NULL};
    git_out_t o;
    int rc;

    snprintf(ref, sizeof(ref), "refs/kiln/%s", sha);
    rc = in_repo(c, &o, args);
    if (rc == 0 && o.status != 0) {
        rc = c->host->fail(c->job, -EIO, "git update-ref in %s: %s", c->repo,
                           git_err_line(&o));
    }
    free(o.out);
    return rc;
}

/* Every ref of the remote, with all history. */
static int fetch_all(git_ctx_t *c)
{
    char shallow[4200];
    const char *args[] = {"fetch",
                          "-q",
                          "--no-tags",
                          "--no-write-fetch-head",
                          "--unshallow",
                          c->remote,
                          "+refs/*:refs/remote/*",
                          NULL};
    git_out_t o;
    int rc;

    snprintf(shallow, sizeof(shallow), "%s/shallow", c->repo);
    if (access(shallow, F_OK) != 0) {
        args[4] = "--update-shallow"; /* not shallow: nothing to deepen */
    }
    c->host->log(c->job, KILN_PLUGIN_LOG_INFO, "fetching all of %s", c->shown);
    rc = in_repo(c, &o, args);
    if (rc == 0 && o.status != 0) {
        rc = remote_fail(c, "fetch", &o);
    }
    free(o.out);
    return rc;
}

/* A failed fetch that a full fetch can make up for. */
static bool refused_commit(const char *err)
{
    return strstr(err, "unadvertised object") != NULL ||
           strstr(err, "not our ref") != NULL ||
           strstr(err, "couldn't find remote ref") != NULL;
}

int git_repo_fetch(git_ctx_t *c, const char *sha)
{
    char spec[160];
    const char *args[] = {"fetch",   "-q", "--no-tags", "--no-write-fetch-head",
                          "--depth", "1",  c->remote,   spec,
                          NULL};
    git_out_t o;
    int rc;

    if (has_commit(c, sha)) {
        c->host->log(c->job, KILN_PLUGIN_LOG_DEBUG, "%s: %s is cached",
                     c->shown, sha);
        return 0;
    }
    snprintf(spec, sizeof(spec), "+%s:refs/kiln/%s", sha, sha);
    rc = in_repo(c, &o, args);
    if (rc == 0 && o.status != 0) {
        if (refused_commit(o.err)) {
            c->host->log(c->job, KILN_PLUGIN_LOG_INFO,
                         "%s does not serve commit %s by itself", c->shown,
                         sha);
            rc = fetch_all(c);
        } else {
            rc = remote_fail(c, "fetch", &o);
        }
        if (rc == 0 && !has_commit(c, sha)) {
            rc = c->host->fail(c->job, -ENOENT, "commit %s not found in %s",
                               sha, c->shown);
        }
        if (rc == 0) {
            rc = keep_commit(c, sha);
        }
    } else if (rc == 0 && !has_commit(c, sha)) {
        /* git took an unreadable object of ours for the commit. */
        rc = c->host->fail(c->job, -EUCLEAN,
                           "commit %s is unreadable in the cache of %s", sha,
                           c->shown);
    }
    free(o.out);
    return rc;
}

int git_repo_expand(git_ctx_t *c, const char *prefix, char *sha, size_t size)
{
    char spec[80];
    const char *args[] = {"rev-parse", "--verify", "-q", spec, NULL};
    git_out_t o;
    int rc;

    snprintf(spec, sizeof(spec), "%s^{commit}", prefix);
    rc = fetch_all(c);
    if (rc == 0) {
        rc = in_repo(c, &o, args);
        if (rc == 0 && (o.status != 0 || o.out == NULL || strlen(o.out) < 41 ||
                        strlen(o.out) > size)) {
            rc = c->host->fail(c->job, -ENOENT,
                               "ref '%s' not found in %s (not a ref, nor a "
                               "unique commit prefix)",
                               prefix, c->shown);
        } else if (rc == 0) {
            snprintf(sha, size, "%.*s", (int)strcspn(o.out, "\n"), o.out);
        }
        free(o.out);
    }
    return rc;
}
