/*
 * The http source plugin through the public API: definitions made with the
 * C builder (an http source copied onto scratch), solved into temporary
 * store roots and exported to directories, against a real nginx on
 * 127.0.0.1 (started here with a generated configuration) and, for
 * timeouts, a listener that never answers. Nothing leaves 127.0.0.1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "net_fixture.h"

#include <kiln/kiln.h>
#include <kiln/llb.h>

#define NGINX "/usr/sbin/nginx"

#define HELLO       "hello, kiln\n"
#define HELLO_MTIME 1600000000
#define BIG_SIZE    (1u << 20)

/* The server, shared by every test: started by group setup. */
static struct {
    char dir[64];  /* its temporary directory */
    char www[128]; /* document root */
    int port;
    pid_t pid; /* 0: no nginx */
} srv;

/* Per test: a store root and an output directory. */
struct fixture {
    char root[64];
    char out[64];
};

/* ---- helpers ---- */

static void write_file(const char *path, const void *data, size_t len,
                       time_t mtime)
{
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(futimens(fd, ts), 0);
    assert_int_equal(close(fd), 0);
}

static void serve(const char *rel, const char *text, time_t mtime)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", srv.www, rel);
    write_file(path, text, strlen(text), mtime);
}

/* "sha256:<hex>" of a file, by sha256sum(1). */
static void sha256_file(const char *path, char out[72])
{
    char cmd[512], hex[80] = {0};
    FILE *p;

    snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%64s", hex), 1);
    assert_int_equal(pclose(p), 0);
    snprintf(out, 72, "sha256:%s", hex);
}

/* "sha256:<hex>" of a string. */
static void sha256_text(const char *text, char out[72])
{
    char path[128];

    snprintf(path, sizeof(path), "%s/key.json", srv.dir);
    write_file(path, text, strlen(text), 0);
    sha256_file(path, out);
}

/* The pin is BuildKit's cache key: sha256 of the Go JSON of its fields. */
static void expect_pin(const char *got, const char *json)
{
    char want[72];

    sha256_text(json, want);
    if (strcmp(got, want) != 0) {
        fail_msg("pin %s, want %s = sha256(%s)", got, want, json);
    }
}

static void url_of(char *buf, size_t size, const char *path)
{
    snprintf(buf, size, "http://127.0.0.1:%d%s", srv.port, path);
}

/* Lines of nginx's access log ("METHOD URI STATUS BYTES") equal to
 * `line`, or starting with it if it ends in '*'. */
static int log_count(const char *line)
{
    char path[128], buf[512];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s/access.log", srv.dir);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(buf, sizeof(buf), f) != NULL) {
        size_t len = strlen(line);
        buf[strcspn(buf, "\n")] = '\0';
        if (len > 0 && line[len - 1] == '*') {
            n += strncmp(buf, line, len - 1) == 0;
        } else {
            n += strcmp(buf, line) == 0;
        }
    }
    fclose(f);
    return n;
}

/* nginx writes its access log line after the response: wait for it. */
static void expect_log(const char *line, int want)
{
    for (int i = 0; i < 100 && log_count(line) < want; i++) {
        usleep(20000);
    }
    if (log_count(line) != want) {
        fail_msg("access log: %d lines \"%s\", want %d", log_count(line), line,
                 want);
    }
}

#define NEED_NGINX()                                                           \
    do {                                                                       \
        if (srv.pid == 0) {                                                    \
            skip();                                                            \
        }                                                                      \
    } while (0)

/* ---- nginx ---- */

static const char nginx_conf[] =
    "worker_processes 1;\n"
    "%s"
    "pid %s/nginx.pid;\n"
    "error_log %s/error.log info;\n"
    "events { worker_connections 64; }\n"
    "http {\n"
    "  log_format kiln '$request_method $request_uri $status "
    "$body_bytes_sent';\n"
    "  access_log %s/access.log kiln;\n"
    "  client_body_temp_path %s/tmp-body;\n"
    "  proxy_temp_path %s/tmp-proxy;\n"
    "  fastcgi_temp_path %s/tmp-fastcgi;\n"
    "  uwsgi_temp_path %s/tmp-uwsgi;\n"
    "  scgi_temp_path %s/tmp-scgi;\n"
    "  default_type application/octet-stream;\n"
    "  server {\n"
    "    listen 127.0.0.1:%d;\n"
    "    root %s;\n"
    "    absolute_redirect off;\n"
    "    location = /error { return 500; }\n"
    "    location = /redirect { return 302 /files/hello.txt; }\n"
    "    location = /loop { return 302 /loop; }\n"
    "    location = /fixed { default_type text/plain; "
    "return 200 \"fixed body\\n\"; }\n"
    "    location /cd/ { add_header Content-Disposition "
    "'attachment; filename=\"named.bin\"'; }\n"
    "    location /cd-utf8/ { add_header Content-Disposition "
    "'attachment; filename=\"plain.txt\"; "
    "filename*=UTF-8\\'\\'na%%C3%%AFve%%20name.txt'; }\n"
    "    location /cd-dots/ { add_header Content-Disposition "
    "'attachment; filename=\"../../up\"'; }\n"
    "    location /cd-dotdot/ { add_header Content-Disposition "
    "'inline; filename=\"..\"'; }\n"
    "    location /slow/ { limit_rate 4k; }\n"
    "    location /private/ {\n"
    "      if ($http_authorization != \"Bearer s3cret\") { return 401; }\n"
    "    }\n"
    "  }\n"
    "}\n";

static void mkdir_in(const char *dir, const char *sub)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    assert_int_equal(mkdir(path, 0755), 0);
}

static int start_nginx(void **state)
{
    char conf[256], elog[256], text[4096], *big;
    const char *d = srv.dir;
    FILE *f;

    (void)state;
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    setenv("KILN_HTTP_TIMEOUT", "20", 1);
    strcpy(srv.dir, "/tmp/kiln-http-XXXXXX");
    if (mkdtemp(srv.dir) == NULL || chmod(srv.dir, 0755) < 0) {
        return -1;
    }
    snprintf(srv.www, sizeof(srv.www), "%s/www", d);
    if (access(NGINX, X_OK) != 0) {
        printf("# %s is not installed: the tests that need it skip\n", NGINX);
        return 0;
    }
    mkdir_in(d, "www");
    mkdir_in(srv.www, "files");
    mkdir_in(srv.www, "cd");
    mkdir_in(srv.www, "cd-utf8");
    mkdir_in(srv.www, "cd-dots");
    mkdir_in(srv.www, "cd-dotdot");
    mkdir_in(srv.www, "slow");
    mkdir_in(srv.www, "private");
    serve("files/hello.txt", HELLO, HELLO_MTIME);
    serve("cd/data.bin", "disposition\n", HELLO_MTIME);
    serve("cd-utf8/data.bin", "disposition\n", HELLO_MTIME);
    serve("cd-dots/data.bin", "disposition\n", HELLO_MTIME);
    serve("cd-dotdot/data.bin", "disposition\n", HELLO_MTIME);
    serve("private/token.txt", "secret content\n", HELLO_MTIME);
    big = calloc(1, BIG_SIZE + 1);
    memset(big, 'x', BIG_SIZE);
    serve("slow/big.bin", big, HELLO_MTIME);
    free(big);

    srv.port = free_port();
    snprintf(text, sizeof(text), nginx_conf,
             geteuid() == 0 ? "user root root;\n" : "", d, d, d, d, d, d, d, d,
             srv.port, srv.www);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", d);
    snprintf(elog, sizeof(elog), "%s/error.log", d);
    f = fopen(conf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);

    srv.pid = fork();
    assert_true(srv.pid >= 0);
    if (srv.pid == 0) {
        /* A test that dies (a sanitizer abort) takes its server along. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl(NGINX, "nginx", "-e", elog, "-p", d, "-c", conf, "-g",
              "daemon off;", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250 && !port_open(srv.port); i++) {
        int status;
        if (waitpid(srv.pid, &status, WNOHANG) == srv.pid) {
            fprintf(stderr, "nginx exited (status %d); see %s\n", status, elog);
            srv.pid = 0;
            return -1;
        }
        usleep(20000);
    }
    return port_open(srv.port) ? 0 : -1;
}

static int stop_nginx(void **state)
{
    char cmd[128];

    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- builds ---- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    strcpy(f->root, "/tmp/kiln-http-root-XXXXXX");
    strcpy(f->out, "/tmp/kiln-http-out-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    assert_non_null(mkdtemp(f->out));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->root, f->out);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* What an http source gets besides its URL. */
struct opts {
    const char *checksum;
    const char *filename;
    unsigned chmod;
    uint32_t uid, gid;
    const char *secret; /* http.authheadersecret */
};

/* The source's files copied onto scratch. */
static kiln_definition_t *http_def(const char *url, const struct opts *o)
{
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_llb_file_t *fa;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_http(b, url);
    if (o != NULL && o->checksum != NULL) {
        st = kiln_llb_http_checksum(st, o->checksum);
    }
    if (o != NULL && o->filename != NULL) {
        st = kiln_llb_http_filename(st, o->filename);
    }
    if (o != NULL && o->chmod != 0) {
        st = kiln_llb_http_chmod(st, o->chmod);
    }
    if (o != NULL && (o->uid != 0 || o->gid != 0)) {
        st = kiln_llb_http_chown(st, o->uid, o->gid);
    }
    if (o != NULL && o->secret != NULL) {
        st = kiln_llb_http_auth_header_secret(st, o->secret);
    }
    fa = kiln_llb_copy(kiln_llb_actions(b), st, "/", "/",
                       KILN_LLB_COPY_DIR_CONTENTS_ONLY);
    st = kiln_llb_file(kiln_llb_scratch(b), fa);
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("%s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

struct result {
    int rc;
    kiln_error_t err;
    kiln_solve_stats_t stats;
    atomic_int progress;
    atomic_ullong progress_total;
    double seconds;
    char pin[80]; /* the http source's, from the DEBUG messages */
};

static void on_event(const kiln_event_t *ev, void *ud)
{
    struct result *r = ud;

    if (ev->type == KILN_EVENT_PROGRESS && ev->current > 0) {
        atomic_store(&r->progress_total, ev->total);
        atomic_fetch_add(&r->progress, 1);
    } else if (ev->type == KILN_EVENT_MESSAGE && ev->data != NULL) {
        char msg[512];
        const char *at;
        snprintf(msg, sizeof(msg), "%.*s", (int)ev->len,
                 (const char *)ev->data);
        if ((at = strstr(msg, "pinned to sha256:")) != NULL) {
            snprintf(r->pin, sizeof(r->pin), "%.71s", at + 10);
        }
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

enum cancel { NO_CANCEL, CANCEL_ON_PROGRESS, CANCEL_AFTER_1S };

/*
 * Solves `def` into f->root, exporting to f->out (emptied first), and
 * cancels it as `cancel` says.
 */
static void run(struct fixture *f, kiln_definition_t *def,
                const char *const *secrets, enum cancel cancel,
                struct result *r)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_solve_t *s;
    char cmd[256];
    double t0 = now();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", f->out, f->out);
    assert_int_equal(system(cmd), 0);
    memset(r, 0, sizeof(*r));
    eo.root = f->root;
    eo.log_level = KILN_LOG_DEBUG;
    if (kiln_engine_new(&eo, &r->err, &e) < 0) {
        fail_msg("engine: %s", r->err.message);
    }
    so.definition = def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = f->out;
    so.on_event = on_event;
    so.userdata = r;
    so.secrets = secrets;
    if (kiln_solve_start(e, &so, &r->err, &s) < 0) {
        fail_msg("solve: %s", r->err.message);
    }
    if (cancel == CANCEL_ON_PROGRESS) {
        for (int i = 0; i < 1000 && atomic_load(&r->progress) == 0; i++) {
            usleep(10000);
        }
        kiln_solve_cancel(s);
    } else if (cancel == CANCEL_AFTER_1S) {
        usleep(1000000);
        kiln_solve_cancel(s);
    }
    r->rc = kiln_solve_wait(s, &r->err);
    kiln_solve_stats(s, &r->stats);
    kiln_solve_free(s);
    kiln_engine_free(e);
    r->seconds = now() - t0;
}

static void build_ok(struct fixture *f, kiln_definition_t *def,
                     struct result *r)
{
    run(f, def, NULL, NO_CANCEL, r);
    if (r->rc != 0) {
        fail_msg("build failed: %s", r->err.message);
    }
}

/* The build fails and its message holds every string given. */
static void build_fails(struct fixture *f, kiln_definition_t *def, ...)
{
    struct result r;
    const char *want;
    va_list ap;

    run(f, def, NULL, NO_CANCEL, &r);
    if (r.rc == 0) {
        fail_msg("the build succeeded");
    }
    printf("# failed as expected: %s\n", r.err.message);
    va_start(ap, def);
    while ((want = va_arg(ap, const char *)) != NULL) {
        if (strstr(r.err.message, want) == NULL) {
            fail_msg("message \"%s\" lacks \"%s\"", r.err.message, want);
        }
    }
    va_end(ap);
}

/* The exported directory holds exactly `name` with this content, mode and
 * mtime. */
static void expect_file(const struct fixture *f, const char *name,
                        const char *content, mode_t mode, time_t mtime)
{
    char path[256], buf[256] = {0};
    struct dirent *de;
    struct stat st;
    DIR *d = opendir(f->out);
    int n = 0, fd;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            if (strcmp(de->d_name, name) != 0) {
                fail_msg("unexpected %s in the result", de->d_name);
            }
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
    snprintf(path, sizeof(path), "%s/%s", f->out, name);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != mode) {
        fail_msg("%s: mode %o, want %o", path, st.st_mode & 07777, mode);
    }
    if (st.st_mtim.tv_sec != mtime || st.st_mtim.tv_nsec != 0) {
        fail_msg("%s: mtime %lld.%09ld, want %lld", path,
                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                 (long long)mtime);
    }
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
    close(fd);
    assert_string_equal(buf, content);
}

/* ---- tests ---- */

static void test_translate(void **state)
{
    const char *params[] = {
        "url=https://example.com/file.tar.gz",
        "checksum=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6"
        "c15b0f00a08",
        "filename=f", "chmod=644", NULL};
    const char *bad[] = {"url=https://example.com/x", "sha=1", NULL};
    const char *ids[] = {"url=http://h/x", "uid=1000", "gid=0", NULL};
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};

    (void)state;
    /* BuildKit's dump of llb.HTTP(url, Checksum, Filename, Chmod(0644)):
     * tests/data/llb/d_http.json. */
    if (kiln_source_translate(NULL, "https", params, &t, &err) < 0) {
        fail_msg("%s", err.message);
    }
    assert_string_equal(t->identifier, "https://example.com/file.tar.gz");
    assert_int_equal(t->n_attrs, 3);
    assert_string_equal(t->keys[0], "http.checksum");
    assert_string_equal(t->values[0],
                        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b8"
                        "22cd15d6c15b0f00a08");
    assert_string_equal(t->keys[1], "http.filename");
    assert_string_equal(t->values[1], "f");
    assert_string_equal(t->keys[2], "http.perm");
    assert_string_equal(t->values[2], "0644");
    kiln_translated_free(t);
    t = NULL;

    /* llb.Chown writes only the non-zero id. */
    assert_int_equal(kiln_source_translate(NULL, "http", ids, &t, &err), 0);
    assert_int_equal(t->n_attrs, 1);
    assert_string_equal(t->keys[0], "http.uid");
    assert_string_equal(t->values[0], "1000");
    kiln_translated_free(t);
    t = NULL;

    assert_int_equal(kiln_source_translate(NULL, "https", bad, &t, &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.message, "\"sha\""));
    assert_null(t);
}

static void prune_all(struct fixture *f)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_prune_options_t po = KILN_PRUNE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_error_t err = {0};

    eo.root = f->root;
    po.all = 1;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    if (kiln_engine_prune(e, &po, NULL, NULL, &err) < 0) {
        fail_msg("prune: %s", err.message);
    }
    kiln_engine_free(e);
}

static void test_download(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char url[128], path[256], sum[72], json[512], pin[80];

    NEED_NGINX();
    url_of(url, sizeof(url), "/files/hello.txt");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    /* Default mode 0600, mtime from Last-Modified. */
    expect_file(f, "hello.txt", HELLO, 0600, HELLO_MTIME);
    assert_int_equal(r.stats.run, r.stats.total);
    expect_log("GET /files/hello.txt 200 12", 1);
    snprintf(path, sizeof(path), "%s/files/hello.txt", srv.www);
    sha256_file(path, sum);
    snprintf(json, sizeof(json),
             "{\"Filename\":\"hello.txt\",\"Perm\":0,\"UID\":0,\"GID\":0,"
             "\"Checksum\":\"%s\","
             "\"LastModTime\":\"Sun, 13 Sep 2020 12:26:40 GMT\"}",
             sum);
    expect_pin(r.pin, json);
    snprintf(pin, sizeof(pin), "%s", r.pin);

    /* Rebuilt: a conditional request, a 304 without a body, all cached. */
    build_ok(f, def, &r);
    expect_file(f, "hello.txt", HELLO, 0600, HELLO_MTIME);
    assert_int_equal(r.stats.cached, r.stats.total);
    assert_int_equal(r.stats.run, 0);
    assert_string_equal(r.pin, pin);
    expect_log("GET /files/hello.txt 304 0", 1);
    expect_log("GET /files/hello.txt 200 12", 1);

    /* Pruned (blobs and the plugin's records with it): downloaded again,
     * unconditionally, to the same pin. */
    prune_all(f);
    build_ok(f, def, &r);
    expect_file(f, "hello.txt", HELLO, 0600, HELLO_MTIME);
    assert_string_equal(r.pin, pin);
    expect_log("GET /files/hello.txt 200 12", 2);
    expect_log("GET /files/hello.txt 304 0", 1);
    kiln_definition_free(def);
}

static void test_changed(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char url[128];

    NEED_NGINX();
    serve("files/changing.txt", "first\n", HELLO_MTIME);
    url_of(url, sizeof(url), "/files/changing.txt");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    expect_file(f, "changing.txt", "first\n", 0600, HELLO_MTIME);

    serve("files/changing.txt", "second version\n", HELLO_MTIME + 3600);
    build_ok(f, def, &r);
    expect_file(f, "changing.txt", "second version\n", 0600,
                HELLO_MTIME + 3600);
    assert_true(r.stats.run > 0);
    expect_log("GET /files/changing.txt 200 15", 1);

    /* And back to cached once it stays put. */
    build_ok(f, def, &r);
    assert_int_equal(r.stats.run, 0);
    expect_log("GET /files/changing.txt 304 0", 1);
    kiln_definition_free(def);
}

static void test_options(void **state)
{
    struct fixture *f = *state;
    struct opts o = {.filename = "renamed.txt", .chmod = 0755};
    kiln_definition_t *def;
    struct result r;
    char url[128], path[256], sum[72], json[512];
    struct stat st;

    NEED_NGINX();
    if (geteuid() == 0) {
        o.uid = 1234;
        o.gid = 5678;
    }
    url_of(url, sizeof(url), "/files/hello.txt");
    def = http_def(url, &o);
    build_ok(f, def, &r);
    expect_file(f, "renamed.txt", HELLO, 0755, HELLO_MTIME);
    snprintf(path, sizeof(path), "%s/files/hello.txt", srv.www);
    sha256_file(path, sum);
    snprintf(json, sizeof(json),
             "{\"Filename\":\"renamed.txt\",\"Perm\":493,\"UID\":%u,"
             "\"GID\":%u,\"Checksum\":\"%s\","
             "\"LastModTime\":\"Sun, 13 Sep 2020 12:26:40 GMT\"}",
             o.uid, o.gid, sum);
    expect_pin(r.pin, json);
    snprintf(path, sizeof(path), "%s/renamed.txt", f->out);
    assert_int_equal(stat(path, &st), 0);
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, 1234);
        assert_int_equal(st.st_gid, 5678);
    }
    kiln_definition_free(def);

    /* Named by Content-Disposition. */
    url_of(url, sizeof(url), "/cd/data.bin");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    expect_file(f, "named.bin", "disposition\n", 0600, HELLO_MTIME);
    kiln_definition_free(def);

    /* RFC 2231 filename* wins; directories are dropped; ".." is no name
     * (the URL's is used). */
    url_of(url, sizeof(url), "/cd-utf8/data.bin");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    expect_file(f, "na\xc3\xafve name.txt", "disposition\n", 0600, HELLO_MTIME);
    kiln_definition_free(def);
    url_of(url, sizeof(url), "/cd-dots/data.bin");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    expect_file(f, "up", "disposition\n", 0600, HELLO_MTIME);
    kiln_definition_free(def);
    url_of(url, sizeof(url), "/cd-dotdot/data.bin");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    expect_file(f, "data.bin", "disposition\n", 0600, HELLO_MTIME);
    kiln_definition_free(def);
}

/* No Last-Modified, no ETag: mtime 0, and a rebuild downloads again but
 * finds the same content, so the result is cached. */
static void test_no_validators(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char url[128];

    NEED_NGINX();
    url_of(url, sizeof(url), "/fixed");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    expect_file(f, "fixed", "fixed body\n", 0600, 0);
    build_ok(f, def, &r);
    expect_file(f, "fixed", "fixed body\n", 0600, 0);
    assert_int_equal(r.stats.run, 0);
    expect_log("GET /fixed 200 11", 2);
    kiln_definition_free(def);
}

static int count_record(const kiln_du_entry_t *e, void *ud)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

static const char *find_hex;
static int find_hits;

static int find_cb(const char *path, const struct stat *st, int type,
                   struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    find_hits += strstr(path, find_hex) != NULL;
    return 0;
}

static void test_checksum(void **state)
{
    struct fixture *f = *state;
    const char *wrong = "sha256:0000000000000000000000000000000000000000000000"
                        "000000000000000000";
    struct opts o = {0};
    kiln_definition_t *def;
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_error_t err = {0};
    struct result r;
    char url[128], path[256], right[72], json[512];
    int records = 0;

    NEED_NGINX();
    serve("files/sum.txt", "checksummed\n", HELLO_MTIME);
    snprintf(path, sizeof(path), "%s/files/sum.txt", srv.www);
    sha256_file(path, right);
    url_of(url, sizeof(url), "/files/sum.txt");

    /* Wrong: fails naming both digests, and nothing is kept. */
    o.checksum = wrong;
    def = http_def(url, &o);
    build_fails(f, def, url, wrong, right, (const char *)NULL);
    kiln_definition_free(def);
    eo.root = f->root;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    assert_int_equal(kiln_engine_du(e, count_record, &records, NULL, &err), 0);
    kiln_engine_free(e);
    assert_int_equal(records, 0);
    find_hex = right + 7;
    find_hits = 0;
    assert_int_equal(nftw(f->root, find_cb, 16, FTW_PHYS), 0);
    assert_int_equal(find_hits, 0);

    /* Right: one download (in fetch), then no request at all. */
    o.checksum = right;
    def = http_def(url, &o);
    build_ok(f, def, &r);
    expect_file(f, "sum.txt", "checksummed\n", 0600, HELLO_MTIME);
    expect_log("GET /files/sum.txt 200 12", 2);
    snprintf(json, sizeof(json),
             "{\"Filename\":\"sum.txt\",\"Perm\":0,\"UID\":0,\"GID\":0,"
             "\"Checksum\":\"%s\"}",
             right);
    expect_pin(r.pin, json);
    build_ok(f, def, &r);
    assert_int_equal(r.stats.run, 0);
    usleep(200000);
    expect_log("GET /files/sum.txt 200 12", 2);
    expect_log("GET /files/sum.txt 304 0", 0);
    kiln_definition_free(def);
}

static void test_http_errors(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    char url[128];

    NEED_NGINX();
    url_of(url, sizeof(url), "/files/missing.txt");
    def = http_def(url, NULL);
    build_fails(f, def, url, "404 Not Found", (const char *)NULL);
    kiln_definition_free(def);

    url_of(url, sizeof(url), "/error");
    def = http_def(url, NULL);
    build_fails(f, def, url, "500 Internal Server Error", (const char *)NULL);
    kiln_definition_free(def);

    url_of(url, sizeof(url), "/loop");
    def = http_def(url, NULL);
    build_fails(f, def, url, "redirect", (const char *)NULL);
    kiln_definition_free(def);
}

static void test_redirect(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char url[128];

    NEED_NGINX();
    url_of(url, sizeof(url), "/redirect");
    def = http_def(url, NULL);
    build_ok(f, def, &r);
    /* Named by the URL asked for, as BuildKit does. */
    expect_file(f, "redirect", HELLO, 0600, HELLO_MTIME);
    expect_log("GET /redirect 302 *", 1);
    kiln_definition_free(def);
}

static void test_auth_secret(void **state)
{
    struct fixture *f = *state;
    struct opts o = {.secret = "token"};
    kiln_definition_t *def;
    struct result r;
    char url[128], secret[256], entry[300];
    const char *secrets[] = {entry, NULL};

    NEED_NGINX();
    snprintf(secret, sizeof(secret), "%s/token", srv.dir);
    write_file(secret, "Bearer s3cret", 13, 0);
    snprintf(entry, sizeof(entry), "token=%s", secret);
    url_of(url, sizeof(url), "/private/token.txt");
    def = http_def(url, &o);

    /* Named but not given: an error, no request without it. */
    build_fails(f, def, url, "token", (const char *)NULL);
    run(f, def, secrets, NO_CANCEL, &r);
    if (r.rc != 0) {
        fail_msg("%s", r.err.message);
    }
    expect_file(f, "token.txt", "secret content\n", 0600, HELLO_MTIME);
    kiln_definition_free(def);

    /* Without the header the server refuses. */
    def = http_def(url, NULL);
    build_fails(f, def, url, "401", (const char *)NULL);
    kiln_definition_free(def);
}

static void test_refused_and_bad_url(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    char url[128];

    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", free_port());
    def = http_def(url, NULL);
    build_fails(f, def, url, "Connection refused", (const char *)NULL);
    kiln_definition_free(def);

    def = http_def("http://127.0.0.1:99999/x", NULL);
    build_fails(f, def, "http://127.0.0.1:99999/x", "invalid URL",
                (const char *)NULL);
    kiln_definition_free(def);
}

/* A listener that accepts and never answers. */
static int silent_fd;
static atomic_bool silent_stop;

static void *silent_main(void *arg)
{
    int conns[16], n = 0;

    (void)arg;
    while (!atomic_load(&silent_stop)) {
        struct pollfd p = {.fd = silent_fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0 && n < 16) {
            int c = accept(silent_fd, NULL, NULL);
            if (c >= 0) {
                conns[n++] = c;
            }
        }
    }
    while (n > 0) {
        close(conns[--n]);
    }
    return NULL;
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    kiln_definition_t *def;
    pthread_t th;
    struct result r;
    char url[128];

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(silent_fd >= 0);
    assert_int_equal(bind(silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(silent_fd, 16), 0);
    assert_int_equal(getsockname(silent_fd, (struct sockaddr *)&a, &len), 0);
    atomic_store(&silent_stop, false);
    assert_int_equal(pthread_create(&th, NULL, silent_main, NULL), 0);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/never", ntohs(a.sin_port));
    def = http_def(url, NULL);
    setenv("KILN_HTTP_TIMEOUT", "2", 1);
    run(f, def, NULL, NO_CANCEL, &r);
    setenv("KILN_HTTP_TIMEOUT", "20", 1);
    atomic_store(&silent_stop, true);
    pthread_join(th, NULL);
    close(silent_fd);
    kiln_definition_free(def);

    assert_int_not_equal(r.rc, 0);
    printf("# failed as expected: %s\n", r.err.message);
    if (strstr(r.err.message, url) == NULL ||
        strstr(r.err.message, "timed out") == NULL) {
        fail_msg("message \"%s\"", r.err.message);
    }
    if (r.seconds < 1.5 || r.seconds > 15) {
        fail_msg("timed out after %.1f s, want about 2", r.seconds);
    }
}

/*
 * A slow download stops soon when the build is canceled. With a checksum it
 * happens in fetch, while the vertex runs: its progress is reported, with
 * the Content-Length as the total. Without, it happens in resolve.
 */
static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct opts o = {0};
    kiln_definition_t *def;
    struct result r;
    char url[128], path[256], sum[72];

    NEED_NGINX();
    snprintf(path, sizeof(path), "%s/slow/big.bin", srv.www);
    sha256_file(path, sum);
    o.checksum = sum;
    url_of(url, sizeof(url), "/slow/big.bin");
    def = http_def(url, &o);
    run(f, def, NULL, CANCEL_ON_PROGRESS, &r);
    kiln_definition_free(def);
    assert_int_equal(r.rc, KILN_ECANCELED);
    assert_true(atomic_load(&r.progress) > 0);
    assert_int_equal(atomic_load(&r.progress_total), BIG_SIZE);
    if (r.seconds > 30) {
        fail_msg("cancel took %.1f s", r.seconds);
    }

    def = http_def(url, NULL);
    run(f, def, NULL, CANCEL_AFTER_1S, &r);
    kiln_definition_free(def);
    assert_int_equal(r.rc, KILN_ECANCELED);
    if (r.seconds > 10) {
        fail_msg("cancel took %.1f s", r.seconds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate),
        cmocka_unit_test_setup_teardown(test_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_validators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_bad_url, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };

    return cmocka_run_group_tests(tests, start_nginx, stop_nginx);
}
