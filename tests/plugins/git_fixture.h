/*
 * Servers and repositories for the git plugin's tests and benchmark:
 * `git daemon` (git://) and git's smart HTTP (git http-backend through
 * fcgiwrap behind nginx: /git/ wants a token, /pub/ speaks protocol v0 and
 * serves no unadvertised commit), all on free 127.0.0.1 ports, in one
 * temporary directory, killed with the process that started them; and
 * sshd with an ssh-agent holding its client key (gitf_start_ssh()).
 */
#ifndef KILN_TEST_GIT_FIXTURE_H
#define KILN_TEST_GIT_FIXTURE_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GITF_NGINX    "/usr/sbin/nginx"
#define GITF_FCGIWRAP "/usr/sbin/fcgiwrap"
#define GITF_BACKEND  "/usr/lib/git-core/git-http-backend"
#define GITF_TOKEN    "s3cret-token"
#define GITF_SSHD     "/usr/sbin/sshd"

struct git_fixture {
    char dir[64];         /* everything lives here */
    char srv[128];        /* the repositories served: <srv>/NAME.git */
    int git_port;         /* git daemon */
    int http_port;        /* nginx, 0 when nginx or fcgiwrap is missing */
    int ssh_port;         /* sshd, 0 when it is missing */
    char known_host[512]; /* "[127.0.0.1]:PORT ssh-ed25519 KEY" */
    pid_t daemon, nginx, fcgi, sshd, agent;
};

/* Runs a shell command (printf format) in the fixture's environment:
 * 0 or its exit status. */
static inline int gitf_sh(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline int gitf_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output of a shell command, first line, into buf. */
static inline void gitf_capture(char *buf, size_t size, const char *cmd)
{
    FILE *p = popen(cmd, "r");

    buf[0] = '\0';
    if (p != NULL) {
        if (fgets(buf, (int)size, p) == NULL) {
            buf[0] = '\0';
        }
        pclose(p);
    }
    buf[strcspn(buf, "\n")] = '\0';
}

static inline pid_t gitf_spawn(const char *log, char *const argv[])
{
    pid_t pid = fork();

    if (pid == 0) {
        /* A test that dies (a sanitizer abort) takes its servers along. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (log != NULL && (freopen(log, "a", stderr) == NULL ||
                            dup2(fileno(stderr), 1) < 0)) {
            _exit(126);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static inline bool gitf_wait_port(pid_t pid, int port)
{
    for (int i = 0; i < 250 && !port_open(port); i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return false;
        }
        usleep(20000);
    }
    return port_open(port);
}

/* Environment of the git commands that make the repositories. */
static inline void gitf_env(const char *home)
{
    setenv("HOME", home, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_AUTHOR_NAME", "kiln", 1);
    setenv("GIT_AUTHOR_EMAIL", "kiln@example.com", 1);
    setenv("GIT_COMMITTER_NAME", "kiln", 1);
    setenv("GIT_COMMITTER_EMAIL", "kiln@example.com", 1);
    setenv("GIT_ALLOW_PROTOCOL", "file:git:http", 1);
    unsetenv("GIT_DIR");
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
}

static const char gitf_nginx_conf[] =
    "worker_processes 1;\n"
    "%s"
    "pid %s/nginx.pid;\n"
    "error_log %s/nginx-error.log info;\n"
    "events { worker_connections 64; }\n"
    "http {\n"
    "  log_format kiln '$request_method $request_uri $status';\n"
    "  access_log %s/access.log kiln;\n"
    "  client_body_temp_path %s/tmp-body;\n"
    "  proxy_temp_path %s/tmp-proxy;\n"
    "  fastcgi_temp_path %s/tmp-fastcgi;\n"
    "  uwsgi_temp_path %s/tmp-uwsgi;\n"
    "  scgi_temp_path %s/tmp-scgi;\n"
    "  client_max_body_size 0;\n"
    "  server {\n"
    "    listen 127.0.0.1:%d;\n"
    "    location ~ ^/(git|pub)(/.*)$ {\n"
    "      set $area $1;\n"
    "      set $path $2;\n"
    "      set $auth off;\n"
    "      set $proto \"\";\n"
    "      if ($area = git) { set $auth git; set $proto $http_git_protocol; }\n"
    "      auth_basic $auth;\n"
    "      auth_basic_user_file %s/htpasswd;\n"
    "      fastcgi_pass unix:%s/fcgi.sock;\n"
    "      fastcgi_param SCRIPT_FILENAME " GITF_BACKEND ";\n"
    "      fastcgi_param GIT_PROJECT_ROOT %s;\n"
    "      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n"
    "      fastcgi_param PATH_INFO $path;\n"
    "      fastcgi_param REQUEST_METHOD $request_method;\n"
    "      fastcgi_param QUERY_STRING $query_string;\n"
    "      fastcgi_param CONTENT_TYPE $content_type;\n"
    "      fastcgi_param CONTENT_LENGTH $content_length;\n"
    "      fastcgi_param REMOTE_USER $remote_user;\n"
    "      fastcgi_param REMOTE_ADDR $remote_addr;\n"
    /* /pub/ speaks protocol v0 only: no Git-Protocol header. */
    "      fastcgi_param HTTP_GIT_PROTOCOL $proto;\n"
    "    }\n"
    "  }\n"
    "}\n";

static inline int gitf_start_http(struct git_fixture *g)
{
    char conf[256], sock[256], text[8192];
    const char *d = g->dir;
    FILE *f;

    if (access(GITF_NGINX, X_OK) != 0 || access(GITF_FCGIWRAP, X_OK) != 0 ||
        access(GITF_BACKEND, X_OK) != 0) {
        printf("# nginx, fcgiwrap or git-http-backend is missing: the HTTP "
               "tests skip\n");
        return 0;
    }
    snprintf(sock, sizeof(sock), "unix:%s/fcgi.sock", d);
    {
        char *argv[] = {GITF_FCGIWRAP, "-s", sock, NULL};
        char log[256];
        snprintf(log, sizeof(log), "%s/fcgiwrap.log", d);
        g->fcgi = gitf_spawn(log, argv);
    }
    if (gitf_sh("cd '%s' && printf 'x-access-token:{PLAIN}%s\\n' >htpasswd "
                "&& mkdir -p tmp-body tmp-proxy tmp-fastcgi tmp-uwsgi "
                "tmp-scgi",
                d, GITF_TOKEN) != 0) {
        return -1;
    }
    g->http_port = free_port();
    snprintf(text, sizeof(text), gitf_nginx_conf,
             geteuid() == 0 ? "user root root;\n" : "", d, d, d, d, d, d, d, d,
             g->http_port, d, d, g->srv);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", d);
    f = fopen(conf, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    fclose(f);
    for (int i = 0; i < 250; i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/fcgi.sock", d);
        if (access(path, F_OK) == 0) {
            break;
        }
        usleep(20000);
    }
    {
        char elog[256];
        char *argv[] = {GITF_NGINX, "-e", elog, "-p",          (char *)d,
                        "-c",       conf, "-g", "daemon off;", NULL};
        snprintf(elog, sizeof(elog), "%s/nginx-error.log", d);
        g->nginx = gitf_spawn(NULL, argv);
    }
    if (!gitf_wait_port(g->nginx, g->http_port)) {
        fprintf(stderr, "nginx did not start; see %s\n", d);
        g->http_port = 0;
        return -1;
    }
    return 0;
}

/* Starts git daemon (and nginx when present) over g->srv, made by the
 * caller. 0 or -1. */
static inline int gitf_start(struct git_fixture *g)
{
    char base[200], port[32], log[256];

    snprintf(base, sizeof(base), "--base-path=%s", g->srv);
    g->git_port = free_port();
    snprintf(port, sizeof(port), "--port=%d", g->git_port);
    snprintf(log, sizeof(log), "%s/daemon.log", g->dir);
    {
        char *argv[] = {"/usr/bin/git", "daemon",       "--reuseaddr",
                        "--verbose",    "--export-all", "--listen=127.0.0.1",
                        port,           base,           NULL};
        g->daemon = gitf_spawn(log, argv);
    }
    if (!gitf_wait_port(g->daemon, g->git_port)) {
        fprintf(stderr, "git daemon did not start; see %s\n", log);
        return -1;
    }
    return gitf_start_http(g);
}

static const char gitf_sshd_conf[] = "Port %d\n"
                                     "ListenAddress 127.0.0.1\n"
                                     "HostKey %s/ssh/hostkey\n"
                                     "AuthorizedKeysFile %s/ssh/client.pub\n"
                                     "PidFile %s/ssh/sshd.pid\n"
                                     "PasswordAuthentication no\n"
                                     "KbdInteractiveAuthentication no\n"
                                     "UsePAM no\n"
                                     "StrictModes no\n";

/*
 * sshd on a free port with a new host key, accepting a new client key
 * that an ssh-agent (SSH_AUTH_SOCK, set here) holds: git over ssh:// as
 * the current user. g->known_host is the host key's known_hosts line.
 * 0 (also when sshd is missing: ssh_port stays 0) or -1.
 */
static inline int gitf_start_ssh(struct git_fixture *g)
{
    char conf[256], sock[256], text[2048], cmd[512], key[400];
    FILE *f;

    if (access(GITF_SSHD, X_OK) != 0) {
        printf("# %s is missing: the SSH test skips\n", GITF_SSHD);
        return 0;
    }
    if (gitf_sh("mkdir -p /run/sshd '%s/ssh' && cd '%s/ssh' && "
                "ssh-keygen -q -t ed25519 -N '' -f hostkey && "
                "ssh-keygen -q -t ed25519 -N '' -f client",
                g->dir, g->dir) != 0) {
        return -1;
    }
    snprintf(sock, sizeof(sock), "%s/ssh/agent.sock", g->dir);
    {
        char *argv[] = {"/usr/bin/ssh-agent", "-D", "-a", sock, NULL};
        g->agent = gitf_spawn("/dev/null", argv);
    }
    for (int i = 0; i < 250 && access(sock, F_OK) != 0; i++) {
        usleep(20000);
    }
    setenv("SSH_AUTH_SOCK", sock, 1);
    if (gitf_sh("ssh-add -q '%s/ssh/client' 2>/dev/null", g->dir) != 0) {
        return -1;
    }
    g->ssh_port = free_port();
    snprintf(text, sizeof(text), gitf_sshd_conf, g->ssh_port, g->dir, g->dir,
             g->dir);
    snprintf(conf, sizeof(conf), "%s/ssh/sshd_config", g->dir);
    f = fopen(conf, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    fclose(f);
    {
        char log[256];
        char *argv[] = {GITF_SSHD, "-D", "-e", "-f", conf, NULL};
        snprintf(log, sizeof(log), "%s/ssh/sshd.log", g->dir);
        g->sshd = gitf_spawn(log, argv);
    }
    if (!gitf_wait_port(g->sshd, g->ssh_port)) {
        fprintf(stderr, "sshd did not start; see %s/ssh/sshd.log\n", g->dir);
        g->ssh_port = 0;
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "cut -d' ' -f1,2 '%s/ssh/hostkey.pub'", g->dir);
    gitf_capture(key, sizeof(key), cmd);
    snprintf(g->known_host, sizeof(g->known_host), "[127.0.0.1]:%d %s",
             g->ssh_port, key);
    return 0;
}

static inline void gitf_stop(struct git_fixture *g)
{
    pid_t pids[] = {g->nginx, g->fcgi, g->daemon, g->sshd, g->agent};

    for (size_t i = 0; i < 5; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    }
    if (g->dir[0] != '\0') {
        gitf_sh("rm -rf '%s'", g->dir);
    }
}

/* Requests for `repo` the daemon logged ("Request upload-pack for
 * '/REPO'"). */
static inline int gitf_daemon_requests(const struct git_fixture *g,
                                       const char *repo)
{
    char cmd[512], out[32];

    snprintf(cmd, sizeof(cmd),
             "grep -c \"Request upload-pack for '/%s'\" '%s/daemon.log'", repo,
             g->dir);
    gitf_capture(out, sizeof(out), cmd);
    return atoi(out);
}

#endif
