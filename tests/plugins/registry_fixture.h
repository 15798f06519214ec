/*
 * Shared by the image plugin tests: Debian's docker-registry started on a
 * free 127.0.0.1 port with its storage in a temporary directory (killed
 * with the test), its access log, and small shell helpers. Include after
 * cmocka.h and net_fixture.h.
 */
#ifndef KILN_TEST_REGISTRY_FIXTURE_H
#define KILN_TEST_REGISTRY_FIXTURE_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define REGISTRY_BIN "/usr/bin/docker-registry"

typedef struct test_registry {
    char dir[64]; /* its temporary directory */
    int port;
    pid_t pid;
    char host[32]; /* "127.0.0.1:PORT" */
    char log[128]; /* its access log */
} test_registry_t;

static inline void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static inline void sh(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fail_msg("command failed: %s", cmd);
    }
}

/* Lines of the registry's access log holding `needle`. */
static inline int registry_log_count(const test_registry_t *r,
                                     const char *needle)
{
    char buf[2048];
    FILE *f = fopen(r->log, "r");
    int n = 0;

    if (f == NULL) {
        return 0;
    }
    while (fgets(buf, sizeof(buf), f) != NULL) {
        n += strstr(buf, needle) != NULL;
    }
    fclose(f);
    return n;
}

static inline void registry_start(test_registry_t *r)
{
    char cfg[128], text[1024];

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/kiln-registry-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->port = free_port();
    snprintf(r->host, sizeof(r->host), "127.0.0.1:%d", r->port);
    snprintf(text, sizeof(text),
             "version: 0.1\n"
             "log:\n  level: error\n"
             "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
             "http:\n  addr: 127.0.0.1:%d\n",
             r->dir, r->port);
    snprintf(cfg, sizeof(cfg), "%s/config.yml", r->dir);
    write_text(cfg, text);
    snprintf(r->log, sizeof(r->log), "%s/registry.log", r->dir);
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        /* A test that dies (a sanitizer abort) takes its server along. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(REGISTRY_BIN, "docker-registry", "serve", cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400 && !port_open(r->port); i++) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            fail_msg("docker-registry exited; see %s", r->log);
        }
        usleep(50000);
    }
    assert_true(port_open(r->port));
}

/* Stops the registry (only: its directory stays, for registry_remove). */
static inline void registry_stop(test_registry_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

static inline void registry_remove(test_registry_t *r)
{
    registry_stop(r);
    if (r->dir[0] != '\0') {
        sh("rm -rf '%s'", r->dir);
        r->dir[0] = '\0';
    }
}

#endif
