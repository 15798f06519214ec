/*
 * Checkouts of a commit of the cache repository into the fetch directory.
 *
 * The plain case reads the tree (or just the subdir's tree) into a private
 * index and checks it out: no .git, nothing else written. With keepgitdir
 * or submodules the directory becomes a repository of its own: a shallow
 * clone of the commit from the cache repository (keepgitdir: a .git usable
 * by `git log`, its origin the redacted remote, no reflog), or one that
 * borrows the cache's objects (submodules only; the .git goes afterwards),
 * and `git submodule update --init --recursive --depth 1` fills the
 * submodules from their own remotes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "git.h"

static int run_in(git_ctx_t *c, const git_env_t *env, const char *cwd,
                  const char *const *argv, git_out_t *o)
{
    return git_run(c->host, c->job, env, cwd, argv, o);
}

/* Runs a local step; a failure reads "git STEP: message" with `code`. */
static int step(git_ctx_t *c, const git_env_t *env, const char *cwd,
                const char *const *argv, int code)
{
    git_out_t o;
    int rc = run_in(c, env, cwd, argv, &o);

    if (rc == 0 && o.status != 0) {
        rc = c->host->fail(c->job, code, "git %s in %s: %s", argv[1], c->shown,
                           git_err_line(&o));
    }
    free(o.out);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static int rm_tree(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

/* Drops every .git (the repository and the submodules' gitdir files). */
static int rm_git(const char *path, const struct stat *st, int type,
                  struct FTW *ftw)
{
    const char *base = path + ftw->base;

    (void)st;
    if (strcmp(base, ".git") != 0) {
        return 0;
    }
    if (type == FTW_D || type == FTW_DP) {
        return rm_tree(path) < 0 ? -1 : 0;
    }
    return unlink(path) < 0 ? -1 : 0;
}

/* "tree" if SHA:SUBDIR is a directory of the commit. */
static int check_subdir(git_ctx_t *c, const git_checkout_t *co)
{
    char gitdir[4200], spec[4200];
    const char *argv[] = {"git", gitdir, "cat-file", "-t", spec, NULL};
    git_out_t o;
    int rc;

    snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", c->repo);
    snprintf(spec, sizeof(spec), "%s:%s", co->sha, co->subdir);
    rc = run_in(c, &c->env, c->home, argv, &o);
    if (rc == 0 &&
        (o.status != 0 || o.out == NULL || strncmp(o.out, "tree\n", 5) != 0)) {
        rc = c->host->fail(
            c->job, -ENOENT, "subdir '%s' not found in %s at %s%s", co->subdir,
            c->shown, co->sha, o.status == 0 ? " (not a directory)" : "");
    }
    free(o.out);
    return rc;
}

/* True if the commit has a .gitmodules at its root. */
static bool has_submodules(git_ctx_t *c, const char *sha)
{
    char gitdir[4200], spec[100];
    const char *argv[] = {"git", gitdir, "cat-file", "-e", spec, NULL};
    git_out_t o;
    bool yes;

    snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", c->repo);
    snprintf(spec, sizeof(spec), "%s:.gitmodules", sha);
    yes = run_in(c, &c->env, c->home, argv, &o) == 0 && o.status == 0;
    free(o.out);
    return yes;
}

/* read-tree + checkout-index with a private index: the plain case. */
static int checkout_plain(git_ctx_t *c, const git_checkout_t *co,
                          const char *dest)
{
    char gitdir[4200], worktree[4200], spec[4200], *tmp = NULL, *index = NULL;
    const char *read[] = {"git", gitdir, "read-tree", spec, NULL};
    const char *out[] = {"git", gitdir, worktree, "checkout-index",
                         "-a",  "-f",   NULL};
    git_env_t env = c->env;
    int rc;

    if (asprintf(&tmp, "%s/index-XXXXXX", c->home) < 0) {
        return c->host->fail(c->job, -ENOMEM, "git: out of memory");
    }
    if (mkdtemp(tmp) == NULL || asprintf(&index, "%s/index", tmp) < 0) {
        rc = -errno;
        free(tmp);
        return c->host->fail(c->job, rc ? rc : -ENOMEM, "%s: %s", c->home,
                             strerror(errno));
    }
    env.index_file = index;
    snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", c->repo);
    snprintf(worktree, sizeof(worktree), "--work-tree=%s", dest);
    if (co->subdir != NULL && *co->subdir) {
        snprintf(spec, sizeof(spec), "%s:%s", co->sha, co->subdir);
    } else {
        snprintf(spec, sizeof(spec), "%s^{tree}", co->sha);
    }
    rc = step(c, &env, c->home, read, -EUCLEAN);
    if (rc == 0) {
        rc = step(c, &env, c->home, out, -EUCLEAN);
    }
    rm_tree(tmp);
    free(index);
    free(tmp);
    return rc;
}

/* Moves the entries of dir/sub into dest and removes dir. */
static int hoist(git_ctx_t *c, const char *dir, const char *sub,
                 const char *dest)
{
    char *from = NULL, path[8192], to[8192];
    struct dirent *de;
    struct stat st;
    DIR *d;
    int rc = 0;

    if (asprintf(&from, "%s/%s", dir, sub) < 0) {
        return c->host->fail(c->job, -ENOMEM, "git: out of memory");
    }
    if (lstat(from, &st) < 0 || !S_ISDIR(st.st_mode)) {
        free(from);
        return c->host->fail(c->job, -ENOENT, "subdir '%s' not found in %s",
                             sub, c->shown);
    }
    if ((d = opendir(from)) == NULL) {
        rc = -errno;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", from, de->d_name);
        snprintf(to, sizeof(to), "%s/%s", dest, de->d_name);
        if (rename(path, to) < 0) {
            rc = -errno;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    free(from);
    if (rc == 0) {
        rc = rm_tree(dir);
    }
    return rc < 0 ? c->host->fail(c->job, rc, "%s: %s", dest, strerror(-rc))
                  : 0;
}

/* The repository in work: its objects fetched (keepgitdir) or borrowed. */
static int make_work_repo(git_ctx_t *c, const git_checkout_t *co,
                          const char *work)
{
    const char *init[] = {"git", "init", "-q", work, NULL};
    const char *fetch[] = {"git", "fetch", "-q",    "--no-tags", "--depth",
                           "1",   c->repo, co->sha, NULL};
    git_env_t env = c->env;
    char path[4200];
    FILE *f;
    int rc = step(c, &c->env, c->home, init, -EUCLEAN);

    if (rc < 0) {
        return rc;
    }
    if (co->keep_git_dir) {
        /* From the cache repository, a local path: file transport. */
        env.allow_file = true;
        return step(c, &env, work, fetch, -EUCLEAN);
    }
    snprintf(path, sizeof(path), "%s/.git/objects/info/alternates", work);
    f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%s/objects\n", c->repo) < 0 || fclose(f)) {
        return c->host->fail(c->job, -EUCLEAN, "%s: cannot write", path);
    }
    return 0;
}

static int checkout_repo(git_ctx_t *c, const git_checkout_t *co,
                         const char *work)
{
    const char *checkout[] = {"git",      "checkout", "-q",
                              "--detach", co->sha,    NULL};
    const char *origin[] = {"git", "remote", "add", "origin", c->remote, NULL};
    const char *update[] = {"git",     "submodule", "update",
                            "-q",      "--init",    "--recursive",
                            "--depth", "1",         NULL};
    const char *seturl[] = {"git",    "remote", "set-url",
                            "origin", c->shown, NULL};
    const char *expire[] = {"git",   "reflog",       "expire",
                            "--all", "--expire=now", NULL};
    int rc = make_work_repo(c, co, work);

    if (rc == 0) {
        rc = step(c, &c->env, work, checkout, -EUCLEAN);
    }
    /* Relative submodule URLs resolve against origin: the real remote. */
    if (rc == 0) {
        rc = step(c, &c->env, work, origin, -EUCLEAN);
    }
    if (rc == 0 && co->submodules) {
        /* A failure here is the submodules' remotes, not the cache. */
        rc = step(c, &c->env, work, update, -EIO);
    }
    if (rc == 0 && co->keep_git_dir) {
        rc = step(c, &c->env, work, seturl, -EUCLEAN);
    }
    if (rc == 0 && co->keep_git_dir) {
        rc = step(c, &c->env, work, expire, -EUCLEAN);
    }
    if (rc == 0 && !co->keep_git_dir &&
        nftw(work, rm_git, 16, FTW_PHYS | FTW_DEPTH) < 0) {
        rc = c->host->fail(c->job, -errno, "%s: cannot remove .git", work);
    }
    return rc;
}

static int checkout(git_ctx_t *c, const git_checkout_t *co, const char *dest);

/* The time of the commit, for git.mtime=commit: every path's mtime. */
static __thread struct timespec commit_time[2];

static int set_time(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return utimensat(AT_FDCWD, path, commit_time, AT_SYMLINK_NOFOLLOW);
}

static int set_commit_times(git_ctx_t *c, const char *sha, const char *dest)
{
    char gitdir[4200];
    const char *argv[] = {"git",          gitdir, "log", "-1",
                          "--format=%ct", sha,    NULL};
    git_out_t o;
    char *end;
    long long t = -1;
    int rc;

    snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", c->repo);
    rc = run_in(c, &c->env, c->home, argv, &o);
    if (rc == 0 && o.status == 0 && o.out != NULL) {
        t = strtoll(o.out, &end, 10);
        if (end == o.out || (*end != '\n' && *end != '\0')) {
            t = -1;
        }
    }
    free(o.out);
    if (rc < 0) {
        return rc;
    }
    if (t < 0) {
        return c->host->fail(c->job, -EUCLEAN,
                             "git log in %s: no time for commit %s", c->shown,
                             sha);
    }
    commit_time[0].tv_sec = commit_time[1].tv_sec = (time_t)t;
    commit_time[0].tv_nsec = commit_time[1].tv_nsec = 0;
    if (nftw(dest, set_time, 16, FTW_PHYS | FTW_DEPTH) < 0) {
        return c->host->fail(c->job, -errno, "%s: setting times: %s", dest,
                             strerror(errno));
    }
    return 0;
}

/* The checkout, then the commit's time on everything if asked for. */
int git_checkout(git_ctx_t *c, const git_checkout_t *co, const char *dest)
{
    int rc = checkout(c, co, dest);

    if (rc == 0 && co->commit_mtime) {
        rc = set_commit_times(c, co->sha, dest);
    }
    return rc;
}

static int checkout(git_ctx_t *c, const git_checkout_t *co, const char *dest)
{
    git_checkout_t cc = *co;
    char *work = NULL;
    bool sub = co->subdir != NULL && *co->subdir;
    int rc;

    if (sub && (rc = check_subdir(c, co)) < 0) {
        return rc;
    }
    cc.submodules = co->submodules && has_submodules(c, co->sha);
    if (!cc.keep_git_dir && !cc.submodules) {
        return checkout_plain(c, &cc, dest);
    }
    if (!sub) {
        return checkout_repo(c, &cc, dest);
    }
    /* Only the subdir is kept: work beside it, then move it up. */
    if (asprintf(&work, "%s/.kiln-git-XXXXXX", dest) < 0) {
        return c->host->fail(c->job, -ENOMEM, "git: out of memory");
    }
    if (mkdtemp(work) == NULL) {
        rc = -errno;
        free(work);
        return c->host->fail(c->job, rc, "%s: %s", dest, strerror(-rc));
    }
    rc = checkout_repo(c, &cc, work);
    if (rc == 0) {
        rc = hoist(c, work, co->subdir, dest);
    }
    free(work);
    return rc;
}
