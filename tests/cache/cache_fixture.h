/*
 * Fixtures of the cache tests that build (their only includers): a
 * docker-registry on 127.0.0.1, definitions made with the C builder over
 * a local:// source, and solves on a store root standing for a host.
 * Everything is static.
 */
#ifndef KILN_TEST_CACHE_FIXTURE_H
#define KILN_TEST_CACHE_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

#include "internal.h"
#include "net_fixture.h"
#include "testutil.h"

#define REGISTRY_BIN "/usr/bin/docker-registry"

typedef struct registry {
    pid_t pid;
    int port;
    char host[64]; /* "127.0.0.1:PORT" */
} registry_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Starts docker-registry on a free port with its data under dir. */
static bool start_registry(registry_t *r, const char *dir)
{
    char cfg[600], log[600], text[2048];
    int64_t deadline;

    r->port = free_port();
    snprintf(r->host, sizeof(r->host), "127.0.0.1:%d", r->port);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof(text),
             "version: 0.1\n"
             "log:\n  level: error\n  accesslog:\n    disabled: true\n"
             "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
             "  delete:\n    enabled: true\n"
             "http:\n  addr: 127.0.0.1:%d\n",
             dir, r->port);
    snprintf(cfg, sizeof(cfg), "%s/config.yml", dir);
    write_file(cfg, text);
    snprintf(log, sizeof(log), "%s/registry.log", dir);
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        /* A test that dies takes its server along. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(REGISTRY_BIN, "docker-registry", "serve", cfg, (char *)NULL);
        _exit(127);
    }
    deadline = kiln__mono_ns() + 20 * 1000000000LL;
    while (kiln__mono_ns() < deadline) {
        int st;
        if (port_open(r->port)) {
            return true;
        }
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return false;
        }
        usleep(50000);
    }
    return false;
}

static void stop_registry(registry_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

/* What a solve reported. */
typedef struct outcome {
    kiln_solve_stats_t stats;
    int rc;
    kiln_error_t err;
    char warnings[8192];
    size_t n_warnings;
    char ran[2048]; /* names of the vertices that ran, ";"-separated */
    char misses[4096]; /* "NAME: cache miss: ..." lines */
    char exported[1024]; /* the exporter's "build cache exported" lines */
} outcome_t;

static void on_event(const kiln_event_t *ev, void *ud)
{
    outcome_t *o = ud;
    size_t n;

    if (ev->type == KILN_EVENT_WARNING) {
        n = strlen(o->warnings);
        snprintf(o->warnings + n, sizeof(o->warnings) - n, "%.*s\n",
                 (int)ev->len, (const char *)ev->data);
        o->n_warnings++;
    } else if (ev->type == KILN_EVENT_MESSAGE && ev->len > 11 &&
               memcmp(ev->data, "cache miss:", 11) == 0) {
        n = strlen(o->misses);
        snprintf(o->misses + n, sizeof(o->misses) - n, "%s: %.*s\n",
                 ev->name != NULL ? ev->name : "-", (int)ev->len,
                 (const char *)ev->data);
    } else if (ev->type == KILN_EVENT_MESSAGE && ev->len > 20 &&
               memcmp(ev->data, "build cache exported", 20) == 0) {
        n = strlen(o->exported);
        snprintf(o->exported + n, sizeof(o->exported) - n, "%.*s\n",
                 (int)ev->len, (const char *)ev->data);
    } else if (ev->type == KILN_EVENT_VERTEX_COMPLETED) {
        n = strlen(o->ran);
        snprintf(o->ran + n, sizeof(o->ran) - n, "%s;", ev->name);
    }
}

/* An engine on store `root`, with the importer's explanations. */
static kiln_engine_t *open_engine(const char *root)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_error_t err = {0};
    kiln_engine_t *e = NULL;

    eo.root = root;
    eo.jobs = 2;
    eo.log_level = KILN_LOG_INFO; /* the importer's miss explanations */
    if (kiln_engine_new(&eo, &err, &e) != 0) {
        fail_msg("engine: %s", err.message);
    }
    return e;
}

/* A build on engine e: definition `def`, locals "src=DIR", the result
 * into `out` (may be NULL), with the given cache specs (each may be
 * NULL). Any thread. */
static outcome_t build_on(kiln_engine_t *e, kiln_definition_t *def,
                          const char *src, const char *out,
                          const char *export1, const char *import1,
                          const char *import2)
{
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    char local[1100];
    const char *locals[] = {local, NULL};
    const char *exports[] = {export1, NULL};
    const char *imports[] = {import1, import2, NULL};
    outcome_t o;
    kiln_solve_t *s = NULL;

    memset(&o, 0, sizeof(o));
    snprintf(local, sizeof(local), "src=%s", src);
    so.definition = def;
    so.locals = locals;
    so.on_event = on_event;
    so.userdata = &o;
    so.export_cache = export1 != NULL ? exports : NULL;
    so.import_cache = import1 != NULL ? imports : NULL;
    if (out != NULL) {
        so.output = KILN_OUTPUT_LOCAL;
        so.output_dest = out;
    }
    o.rc = kiln_solve_start(e, &so, &o.err, &s);
    if (o.rc == 0) {
        o.rc = kiln_solve_wait(s, &o.err);
        kiln_solve_stats(s, &o.stats);
        kiln_solve_free(s);
    }
    return o;
}

/* build_on() on a new engine for `root`, closed after. */
static outcome_t build(const char *root, kiln_definition_t *def,
                       const char *src, const char *out, const char *export1,
                       const char *import1, const char *import2)
{
    kiln_engine_t *e = open_engine(root);
    outcome_t o = build_on(e, def, src, out, export1, import1, import2);

    kiln_engine_free(e);
    return o;
}

#define ASSERT_BUILT(o)                                                        \
    do {                                                                       \
        if ((o).rc != 0) {                                                     \
            fail_msg("build failed: %d: %s", (o).rc, (o).err.message);         \
        }                                                                      \
    } while (0)

/* Entries of a directory, "." and ".." aside. */
static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(d);
    return n;
}

static void assert_same_tree(const char *a, const char *b)
{
    char cmd[2400];

    snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s' >&2", a, b);
    assert_int_equal(system(cmd), 0);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
    }
}

#endif
