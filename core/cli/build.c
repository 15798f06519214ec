/* kiln build: solve a definition, show its progress, export the result. */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "progress.h"

#define CMD "build"

/* Long-only options. */
enum { OPT_EXPORT_CACHE = 256, OPT_IMPORT_CACHE, OPT_EXPLAIN_MISSES };

struct build_args {
    const char *file;
    struct kiln_cli_output out;
    const char *root;
    unsigned jobs;
    bool no_cache;
    kiln_cli_progress_mode_t progress;
    kiln_log_level_t log_level;
    const char **locals;  /* "NAME=DIR", NULL-terminated */
    size_t n_locals;
    const char **secrets; /* "ID=PATH", NULL-terminated */
    size_t n_secrets;
    const char **layouts; /* "STORE=DIR", NULL-terminated */
    size_t n_layouts;
    const char **secret_envs; /* "ID=VAR", NULL-terminated */
    size_t n_secret_envs;
    const char **ssh; /* "ID=SOCKET", NULL-terminated */
    size_t n_ssh;
    const char **export_cache; /* BuildKit cache specs, NULL-terminated */
    size_t n_export_cache;
    const char **import_cache;
    size_t n_import_cache;
};

/*
 * SIGINT and SIGTERM are blocked in every thread and taken by a thread of
 * our own with sigwait(): the first cancels the solve, the second exits at
 * once. SIGUSR1 wakes the thread to end it.
 */
struct sigctl {
    pthread_mutex_t mu;
    pthread_t thread;
    sigset_t set;
    kiln_solve_t *solve;
    kiln_cli_progress_t *progress;
    int signals;
    bool stopping;
};

static void build_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: kiln build [OPTIONS] [FILE|-]\n"
        "\n"
        "Build an LLB definition (a marshaled pb.Definition, as 'buildctl\n"
        "build' reads it) from FILE, or from standard input when FILE is '-'\n"
        "or missing. Results are cached in the store; ops whose results are\n"
        "there already are not run again.\n"
        "\n"
        "Options:\n"
        "  -o, --output SPEC      Export the result: type=local,dest=DIR,\n"
        "                         type=tar,dest=FILE or type=tar,dest=- (a "
        "tar\n"
        "                         stream on standard output); a bare DIR or "
        "'-'\n"
        "                         is short for these. Default: export nothing\n"
        "      --root DIR         Store root (default: $KILN_ROOT, else\n"
        "                         /var/lib/kiln as root, else\n"
        "                         $XDG_DATA_HOME/kiln)\n"
        "  -j, --jobs N           Run at most N ops at once (default: the\n"
        "                         engine's limits)\n"
        "      --no-cache         Run every op, even when its result is "
        "cached\n"
        "      --progress MODE    auto, tty, plain or json (default: auto: "
        "tty\n"
        "                         when standard error is a terminal, else "
        "plain)\n"
        "      --log-level LEVEL  error, warn (default), info or debug: "
        "debug\n"
        "                         shows each vertex's cache key and "
        "lookup\n"
        "      --debug            Short for --log-level debug\n"
        "      --local NAME=DIR   Give local:// source NAME the directory "
        "DIR\n"
        "                         (repeatable)\n"
        "      --secret id=ID,src=PATH | id=ID,env=VAR\n"
        "                         Make the file PATH, or the variable VAR "
        "of\n"
        "                         this environment, secret ID for sources "
        "and\n"
        "                         exec steps that ask for it (repeatable; "
        "never\n"
        "                         stored)\n"
        "      --ssh ID[=SOCKET]  Forward the SSH agent at SOCKET (default:\n"
        "                         $SSH_AUTH_SOCK) to exec steps' SSH mounts "
        "ID\n"
        "                         (usually 'default'; repeatable)\n"
        "      --oci-layout STORE=DIR\n"
        "                         Give oci-layout:// sources whose oci.store "
        "is\n"
        "                         STORE the OCI image layout DIR "
        "(repeatable)\n"
        "      --export-cache type=local,dest=DIR | "
        "type=registry,ref=HOST/REPO[:TAG]\n"
        "                         Export the build cache (repeatable), "
        "as\n"
        "                         BuildKit does: mode=min|max (default "
        "min),\n"
        "                         compression=gzip|zstd|uncompressed,\n"
        "                         compression-level=N, ignore-error=true,\n"
        "                         oci-mediatypes, image-manifest, "
        "max-records=N,\n"
        "                         max-age=7d. Layers upload while the "
        "build\n"
        "                         runs; records are added to what is there\n"
        "      --import-cache type=local,src=DIR | "
        "type=registry,ref=HOST/REPO[:TAG]\n"
        "                         Reuse an exported build cache "
        "(repeatable);\n"
        "                         layers are fetched only for what the "
        "build\n"
        "                         needs\n"
        "      --explain-misses   For each vertex that runs although a cache "
        "was\n"
        "                         imported, say which record was nearest and "
        "what\n"
        "                         differed (raises --log-level to info)\n"
        "  -h, --help             Show this help and exit\n"
        "\n"
        "Progress goes to standard error and ends with a summary line. Ctrl-C\n"
        "cancels the build; a second Ctrl-C quits at once. Exit status: 0 "
        "built,\n"
        "1 the build failed, 2 a usage error.\n");
}

static int parse_jobs(const char *s, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < 1 ||
        v > INT_MAX) {
        return kiln_cli_usage_error(CMD,
                                    "--jobs wants a number from 1 up, not "
                                    "'%s'",
                                    s);
    }
    *out = (unsigned)v;
    return -1;
}

static int parse_level(const char *s, kiln_log_level_t *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (kiln_log_level_t)i;
            return -1;
        }
    }
    return kiln_cli_usage_error(
        CMD, "unknown log level '%s' (error, warn, info or debug)", s);
}

/* Appends s to a NULL-terminated list. */
static int push(const char ***list, size_t *n, const char *s)
{
    const char **v = realloc(*list, (*n + 2) * sizeof(*v));

    if (v == NULL) {
        kiln_error_t err = {KILN_ENOMEM, "out of memory"};
        return kiln_cli_error(&err);
    }
    v[(*n)++] = s;
    v[*n] = NULL;
    *list = v;
    return -1;
}

static int parse_local(struct build_args *a, const char *s)
{
    const char *eq = strchr(s, '=');

    if (eq == NULL || eq == s || eq[1] == '\0') {
        return kiln_cli_usage_error(CMD, "--local wants NAME=DIR, not '%s'",
                                    s);
    }
    return push(&a->locals, &a->n_locals, s);
}

/* buildctl's --oci-layout STORE=DIR. */
static int parse_layout(struct build_args *a, const char *s)
{
    const char *eq = strchr(s, '=');

    if (eq == NULL || eq == s || eq[1] == '\0') {
        return kiln_cli_usage_error(
            CMD, "--oci-layout wants STORE=DIR (id=path/to/layout), not '%s'",
            s);
    }
    return push(&a->layouts, &a->n_layouts, s);
}

/* buildctl's --secret id=ID,src=PATH (also "source") or id=ID,env=VAR,
 * kept as "ID=PATH" or "ID=VAR". */
static int parse_secret(struct build_args *a, const char *s)
{
    const char *id = NULL, *src = NULL, *env = NULL;
    size_t id_len = 0, src_len = 0, env_len = 0;
    char *pair;

    for (const char *p = s; *p != '\0';) {
        size_t n = strcspn(p, ",");

        if (strncmp(p, "id=", 3) == 0) {
            id = p + 3;
            id_len = n - 3;
        } else if (strncmp(p, "src=", 4) == 0) {
            src = p + 4;
            src_len = n - 4;
        } else if (strncmp(p, "source=", 7) == 0) {
            src = p + 7;
            src_len = n - 7;
        } else if (strncmp(p, "env=", 4) == 0) {
            env = p + 4;
            env_len = n - 4;
        } else {
            return kiln_cli_usage_error(CMD,
                                        "--secret: unknown field '%.*s' "
                                        "(id=ID,src=PATH or id=ID,env=VAR)",
                                        (int)n, p);
        }
        p += n + (p[n] == ',');
    }
    if (id == NULL || id_len == 0 || (src == NULL) == (env == NULL) ||
        (src != NULL && src_len == 0) || (env != NULL && env_len == 0)) {
        return kiln_cli_usage_error(CMD, "--secret wants id=ID,src=PATH or "
                                         "id=ID,env=VAR, not '%s'",
                                    s);
    }
    if (asprintf(&pair, "%.*s=%.*s", (int)id_len, id,
                 (int)(src != NULL ? src_len : env_len),
                 src != NULL ? src : env) < 0) {
        kiln_error_t err = {KILN_ENOMEM, "out of memory"};
        return kiln_cli_error(&err);
    }
    if (src != NULL) {
        return push(&a->secrets, &a->n_secrets, pair);
    }
    return push(&a->secret_envs, &a->n_secret_envs, pair);
}

/* buildctl's --ssh ID[=SOCKET]: without a socket, $SSH_AUTH_SOCK. */
static int parse_ssh(struct build_args *a, const char *s)
{
    const char *eq = strchr(s, '=');
    const char *sock = eq != NULL ? eq + 1 : getenv("SSH_AUTH_SOCK");
    size_t id_len = eq != NULL ? (size_t)(eq - s) : strlen(s);
    char *pair;

    if (id_len == 0 || (eq != NULL && eq[1] == '\0')) {
        return kiln_cli_usage_error(CMD, "--ssh wants ID or ID=SOCKET, not "
                                         "'%s'",
                                    s);
    }
    if (sock == NULL || sock[0] == '\0') {
        return kiln_cli_usage_error(CMD,
                                    "--ssh %s: no socket given and "
                                    "SSH_AUTH_SOCK is not set",
                                    s);
    }
    if (asprintf(&pair, "%.*s=%s", (int)id_len, s, sock) < 0) {
        kiln_error_t err = {KILN_ENOMEM, "out of memory"};
        return kiln_cli_error(&err);
    }
    return push(&a->ssh, &a->n_ssh, pair);
}

/* One option; returns -1 to go on, else the exit status. */
static int parse_option(struct build_args *a, int c, char **argv)
{
    char msg[512];

    switch (c) {
    case 'o':
        if (a->out.type != KILN_OUTPUT_NONE) {
            return kiln_cli_usage_error(CMD, "only one --output may be given");
        }
        if (kiln_cli_parse_output(optarg, &a->out, msg, sizeof(msg)) < 0) {
            return kiln_cli_usage_error(CMD, "%s", msg);
        }
        return -1;
    case 'r':
        if (optarg[0] == '\0') {
            return kiln_cli_usage_error(CMD, "--root wants a directory");
        }
        a->root = optarg;
        return -1;
    case 'j':
        return parse_jobs(optarg, &a->jobs);
    case 'n':
        a->no_cache = true;
        return -1;
    case 'p':
        if (kiln_cli_progress_parse(optarg, &a->progress) < 0) {
            return kiln_cli_usage_error(
                CMD, "unknown progress mode '%s' (auto, tty, plain or json)",
                optarg);
        }
        return -1;
    case 'l':
        return parse_level(optarg, &a->log_level);
    case 'L':
        return parse_local(a, optarg);
    case 'S':
        return parse_secret(a, optarg);
    case 'O':
        return parse_layout(a, optarg);
    case 's':
        return parse_ssh(a, optarg);
    case 'd':
        a->log_level = KILN_LOG_DEBUG;
        return -1;
    case OPT_EXPORT_CACHE:
        return push(&a->export_cache, &a->n_export_cache, optarg);
    case OPT_IMPORT_CACHE:
        return push(&a->import_cache, &a->n_import_cache, optarg);
    case OPT_EXPLAIN_MISSES:
        /* The explanations are INFO messages of the importer. */
        if (a->log_level < KILN_LOG_INFO) {
            a->log_level = KILN_LOG_INFO;
        }
        return -1;
    case 'h':
        build_usage(stdout);
        return 0;
    default:
        return kiln_cli_bad_option(CMD, c, argv);
    }
}

/* Returns -1 to go on building, else the exit status. */
static int parse_args(int argc, char **argv, struct build_args *a)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"root", required_argument, NULL, 'r'},
        {"jobs", required_argument, NULL, 'j'},
        {"no-cache", no_argument, NULL, 'n'},
        {"progress", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'l'},
        {"debug", no_argument, NULL, 'd'},
        {"local", required_argument, NULL, 'L'},
        {"secret", required_argument, NULL, 'S'},
        {"oci-layout", required_argument, NULL, 'O'},
        {"ssh", required_argument, NULL, 's'},
        {"export-cache", required_argument, NULL, OPT_EXPORT_CACHE},
        {"import-cache", required_argument, NULL, OPT_IMPORT_CACHE},
        {"explain-misses", no_argument, NULL, OPT_EXPLAIN_MISSES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:j:", opts, NULL)) != -1) {
        if ((rc = parse_option(a, c, argv)) >= 0) {
            return rc;
        }
    }
    if (argc - optind > 1) {
        return kiln_cli_usage_error(
            CMD, "too many arguments (starting at '%s')", argv[optind + 1]);
    }
    a->file = optind < argc ? argv[optind] : "-";
    if (strcmp(a->file, "-") == 0 && isatty(STDIN_FILENO)) {
        return kiln_cli_usage_error(CMD, "no definition: give a FILE, or pipe "
                                         "one into standard input");
    }
    if (a->out.to_stdout && isatty(STDOUT_FILENO)) {
        return kiln_cli_usage_error(CMD,
                                    "refusing to write a tar stream to a "
                                    "terminal: redirect standard output or use "
                                    "type=tar,dest=FILE");
    }
    return -1;
}

static void *sig_main(void *arg)
{
    struct sigctl *c = arg;

    for (;;) {
        int sig = 0;

        if (sigwait(&c->set, &sig) != 0) {
            continue;
        }
        pthread_mutex_lock(&c->mu);
        if (c->stopping) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        if (sig == SIGUSR1) {
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        if (c->signals++ > 0) {
            _exit(128 + sig);
        }
        if (c->solve != NULL) {
            kiln_solve_cancel(c->solve);
        }
        if (c->progress != NULL) {
            kiln_cli_progress_note(c->progress,
                                   "kiln: canceling the build (Ctrl-C again "
                                   "to quit at once)");
        }
        pthread_mutex_unlock(&c->mu);
    }
}

/* Blocks the signals (before any other thread exists, so that they all
 * inherit the mask) and starts the thread that takes them. */
static int sig_start(struct sigctl *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    sigemptyset(&c->set);
    sigaddset(&c->set, SIGINT);
    sigaddset(&c->set, SIGTERM);
    sigaddset(&c->set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &c->set, NULL);
    if (pthread_create(&c->thread, NULL, sig_main, c) != 0) {
        kiln_error_t err = {KILN_ENOMEM, "cannot start a thread"};
        pthread_sigmask(SIG_UNBLOCK, &c->set, NULL);
        pthread_mutex_destroy(&c->mu);
        return kiln_cli_error(&err);
    }
    return 0;
}

/* Signals still pending stay blocked: kiln exits right after this. */
static void sig_stop(struct sigctl *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    pthread_kill(c->thread, SIGUSR1);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
}

/* Points the signal thread at the running solve (or none); a signal that
 * came before the solve started cancels it now. Returns how many signals
 * came so far. */
static int sig_attach(struct sigctl *c, kiln_solve_t *s)
{
    int n;

    pthread_mutex_lock(&c->mu);
    c->solve = s;
    if (s != NULL && c->signals > 0) {
        kiln_solve_cancel(s);
    }
    n = c->signals;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static void sig_progress(struct sigctl *c, kiln_cli_progress_t *progress)
{
    pthread_mutex_lock(&c->mu);
    c->progress = progress;
    pthread_mutex_unlock(&c->mu);
}

static int solve(kiln_engine_t *engine, const struct build_args *a,
                 const kiln_definition_t *def, kiln_cli_progress_t *progress,
                 struct sigctl *sc)
{
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_solve_stats_t stats = {0};
    kiln_error_t err = {0};
    kiln_solve_t *s = NULL;
    int rc, signals;

    so.definition = def;
    so.output = a->out.type;
    so.output_dest = a->out.to_stdout ? NULL : a->out.dest;
    so.output_fd = a->out.to_stdout ? STDOUT_FILENO : -1;
    so.no_cache = a->no_cache;
    so.on_event = kiln_cli_progress_event;
    so.userdata = progress;
    so.locals = a->locals;
    so.secrets = a->secrets;
    so.oci_layouts = a->layouts;
    so.secret_envs = a->secret_envs;
    so.ssh = a->ssh;
    so.export_cache = a->export_cache;
    so.import_cache = a->import_cache;
    rc = kiln_solve_start(engine, &so, &err, &s);
    if (rc < 0) {
        return kiln_cli_error(&err);
    }
    sig_attach(sc, s);
    rc = kiln_solve_wait(s, &err);
    signals = sig_attach(sc, NULL);
    kiln_solve_stats(s, &stats);
    kiln_solve_free(s);
    kiln_cli_progress_finish(progress, rc, &err, &stats);
    if (rc == KILN_ECANCELED && signals > 0) {
        fprintf(stderr, "kiln: error: build canceled\n");
        return KILN_CLI_FAILURE;
    }
    return rc < 0 ? kiln_cli_error(&err) : 0;
}

static int build(const struct build_args *a, const kiln_definition_t *def)
{
    kiln_cli_progress_t *progress = NULL;
    kiln_engine_t *engine = NULL;
    struct sigctl sc;
    int rc;

    rc = sig_start(&sc);
    if (rc != 0) {
        return rc;
    }
    rc = kiln_cli_open_engine(a->root, a->jobs, a->log_level, &engine);
    if (rc == 0 &&
        kiln_cli_progress_new(a->progress, STDERR_FILENO, &progress) < 0) {
        kiln_error_t err = {KILN_ENOMEM, "out of memory"};
        rc = kiln_cli_error(&err);
    }
    if (rc == 0) {
        sig_progress(&sc, progress);
        rc = solve(engine, a, def, progress, &sc);
    }
    kiln_engine_free(engine);
    sig_stop(&sc);
    kiln_cli_progress_free(progress);
    return rc;
}

int kiln_cli_build(int argc, char **argv)
{
    struct build_args a = {0};
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    int rc;

    a.log_level = KILN_LOG_WARN;
    rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        /* A reader of the tar stream may go away: EPIPE, not a signal. */
        signal(SIGPIPE, SIG_IGN);
        if (kiln_definition_load_file(a.file, &err, &def) < 0) {
            rc = kiln_cli_error(&err);
        } else {
            rc = build(&a, def);
        }
    }
    kiln_definition_free(def);
    kiln_cli_output_free(&a.out);
    free(a.locals);
    free(a.layouts);
    free(a.export_cache);
    free(a.import_cache);
    for (size_t i = 0; i < a.n_secrets; i++) {
        free((char *)a.secrets[i]);
    }
    free(a.secrets);
    for (size_t i = 0; i < a.n_secret_envs; i++) {
        free((char *)a.secret_envs[i]);
    }
    free(a.secret_envs);
    for (size_t i = 0; i < a.n_ssh; i++) {
        free((char *)a.ssh[i]);
    }
    free(a.ssh);
    return rc;
}
