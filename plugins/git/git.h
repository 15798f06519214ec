/*
 * The git source plugin: git://HOST/PATH[#REF[:SUBDIR]] identifiers, as
 * BuildKit's llb.Git() writes them and its source/git reads them.
 *
 *   git_url.c   remotes parsed as BuildKit's gitutil.ParseURL (pure)
 *   git_refs.c  ls-remote output: which ref a name means (pure)
 *   git_run.c   the git CLI, run with uv_spawn in a clean environment
 *   git_repo.c  the shared bare repositories of the cache directory
 *   git_tree.c  checkouts into the fetch directory
 *   git.c       the descriptor: translate, resolve, fetch
 */
#ifndef KILN_PLUGIN_GIT_H
#define KILN_PLUGIN_GIT_H

#include <stdbool.h>
#include <stddef.h>

#include <kiln/plugin.h>

/* ---- git_url.c ---- */

/* A remote as gitutil.ParseURL understands it. */
typedef struct git_url {
    bool ok;      /* parsed; false: the raw string is both id and remote */
    bool ssh;     /* ssh:// or scp-like user@host:path */
    char *remote; /* the URL without query and fragment (user-info kept) */
    char *id;     /* HOST[:PORT] + cleaned absolute path */
} git_url_t;

/*
 * Parses `url` as llb.Git() does (prepending https:// to what is neither a
 * URL nor scp-like). 0, or -ENOMEM; free the members with git_url_free().
 */
int git_url_parse(const char *url, git_url_t *out);
void git_url_free(git_url_t *u);

/* path.Join("/", p): a cleaned absolute path. Malloc'ed; NULL: no memory. */
char *git_path_clean(const char *p);

/*
 * `remote` with any user-info (user:password@) replaced by "xxxxx@", for
 * messages and cache names. Malloc'ed; NULL: no memory.
 */
char *git_url_redact(const char *remote);

/* The user-info of `remote` ("user:tok"), or NULL if it has none.
 * Malloc'ed. */
char *git_url_userinfo(const char *remote);

/* True if `remote` is a local repository (file:// or a path). */
bool git_url_is_local(const char *remote);

/* "scheme://host" of an http(s) remote, for http.<url>.extraheader;
 * NULL for other remotes or no memory. Malloc'ed. */
char *git_url_http_origin(const char *remote);

/* True if s is a full commit name: 40 (SHA-1) or 64 (SHA-256) hex. */
bool git_is_full_sha(const char *s);

/* ---- git_refs.c ---- */

/*
 * Picks the commit `ref` names from `git ls-remote` output (lines
 * "<sha>\t<refname>", peeled tags as "<refname>^{}"): an exact refname
 * ("refs/...", "HEAD") first, then refs/heads/REF, then refs/tags/REF
 * (peeled to the commit), then any ref ending in "/REF". An empty ref is
 * HEAD. Writes the hex SHA into sha (at least 65 bytes). 0, -ENOENT (no
 * such ref), or -EBADMSG (a line that is not ls-remote output).
 */
int git_refs_pick(const char *out, size_t len, const char *ref, char *sha,
                  size_t sha_size);

/* ---- git_run.c ---- */

/* What a run of git needs besides its arguments. */
typedef struct git_env {
    const char *home;        /* private HOME (an empty directory) */
    const char *auth_key;    /* "http.<origin>/.extraheader", or NULL */
    const char *auth_value;  /* its value, never on the command line */
    const char *ssh_command; /* GIT_SSH_COMMAND, or NULL */
    const char *index_file;  /* GIT_INDEX_FILE, or NULL */
    bool allow_file;         /* protocol.file.allow=always */
    const char *secret;      /* "USERINFO@" to hide in messages, or NULL */
} git_env_t;

/* The output of a run: stdout (NUL-terminated), the end of stderr. */
typedef struct git_out {
    char *out;
    size_t len;
    char err[2048];
    int status; /* exit status; -1 if killed */
} git_out_t;

/*
 * Runs `git argv...` in cwd (NULL: inherit), with env, until it exits, the
 * job is canceled (the process group is killed: -ECANCELED), or the
 * timeout (KILN_GIT_TIMEOUT seconds, default 600) passes (killed:
 * -ETIMEDOUT, with a message). Returns 0 when git ran (check o->status),
 * or a negative errno after host->fail(). o->out is malloc'ed (free it,
 * also on failure).
 */
int git_run(const kiln_host_t *host, kiln_job_t *job, const git_env_t *env,
            const char *cwd, const char *const *argv, git_out_t *o);

/* The last non-empty line of o->err, without "fatal: "/"error: ". */
const char *git_err_line(git_out_t *o);

/* ---- git_repo.c ---- */

/* One fetch or resolve against a remote. */
typedef struct git_ctx {
    const kiln_host_t *host;
    kiln_job_t *job;
    const char *remote; /* what git is given */
    char *shown;        /* the remote for messages (redacted) */
    git_env_t env;
    char *home;
    char *auth_value;
    char *ssh_command;
    char *known_hosts_file;
    char *repo; /* the bare repository of the cache */
    int lock_fd;
} git_ctx_t;

/*
 * Prepares a context for `remote` (the git.fullurl, or the identifier's
 * https URL), the auth secrets and SSH options the attrs name. 0 or a
 * negative errno after host->fail(). git_ctx_close() in all cases.
 */
int git_ctx_open(git_ctx_t *c, const kiln_host_t *host, kiln_job_t *job,
                 const char *remote, const kiln_attrs_t *attrs);
void git_ctx_close(git_ctx_t *c);

/* `git ls-remote` of the remote: the commit `ref` names into sha. A ref
 * the remote lacks is -ENOENT, with a message if report_missing. */
int git_ls_remote(git_ctx_t *c, const char *ref, char *sha, size_t size,
                  bool report_missing);

/*
 * Locks the cache repository of the remote (waiting for another fetch of
 * it, canceled with the job), creating it, or discarding it when it is
 * unusable. Unlocked by git_ctx_close().
 */
int git_repo_lock(git_ctx_t *c);

/* Discards the cache repository (corrupt) and makes a new one. Locked. */
int git_repo_reset(git_ctx_t *c);

/*
 * Makes commit `sha` present in the locked cache repository: nothing if it
 * is there, else a shallow fetch of it, else (the server refuses an
 * unadvertised commit) a full fetch. -ENOENT with a message if the remote
 * does not have it, -EUCLEAN if the cache repository is corrupt.
 */
int git_repo_fetch(git_ctx_t *c, const char *sha);

/* A short commit name -> the full one, fetching all history first. */
int git_repo_expand(git_ctx_t *c, const char *prefix, char *sha, size_t size);

/* ---- git_tree.c ---- */

typedef struct git_checkout {
    const char *sha;
    const char *subdir; /* NULL or "" for the whole tree */
    bool keep_git_dir;
    bool submodules;
    bool commit_mtime; /* git.mtime=commit: every mtime the commit's time */
} git_checkout_t;

/*
 * Checks out commit co->sha of the locked cache repository into the empty
 * directory dest. -ENOENT with a message when the subdir is missing;
 * -EUCLEAN when the cache repository fails (the caller resets it and
 * tries again).
 */
int git_checkout(git_ctx_t *c, const git_checkout_t *co, const char *dest);

#endif
