/*
 * Fixtures of test_oci_registry.c (its only includer): docker-registry
 * processes on 127.0.0.1, a small HTTP responder thread, and the sinks,
 * sources and clients the tests share. Everything is static.
 */
#ifndef KILN_TEST_OCI_REGISTRY_FIXTURE_H
#define KILN_TEST_OCI_REGISTRY_FIXTURE_H

#include <stdatomic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "oci/auth.h"
#include "oci/registry.h"
#include "oci/registry_internal.h"
#include "testutil.h"

#include "net_fixture.h"

#ifndef REGISTRY_BIN
#define REGISTRY_BIN "/usr/bin/docker-registry"
#endif
#define HTPASSWD_BIN "/usr/bin/htpasswd"
#define OPENSSL_BIN  "/usr/bin/openssl"

#define ASSERT_CONTAINS(hay, needle)                                           \
    do {                                                                       \
        if (strstr((hay), (needle)) == NULL) {                                 \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));       \
        }                                                                      \
    } while (0)

#define ASSERT_OK(expr, err)                                                   \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != 0) {                                                        \
            fail_msg("%s: %d: %s", #expr, rc_, (err).message);                 \
        }                                                                      \
    } while (0)

/* A docker-registry process we started. */
typedef struct registry {
    pid_t pid;
    int port;
    char host[64]; /* "127.0.0.1:PORT" */
} registry_t;

static char tmp_root[256];
static registry_t plain_reg, auth_reg, token_reg;
static bool have_registry, have_auth;

/* A port nothing listens on right now (the kernel's pick, released). */
/* Writes `text` to `path`, failing the test if it cannot. */
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Starts docker-registry with a config of its own in tmp_root/<name>,
 * with `auth` (a YAML auth section, or NULL) appended. Returns false if
 * it never listened. */
static bool start_registry(registry_t *r, const char *name, const char *auth)
{
    char dir[512], cfg[600], log[600], text[2048];
    int64_t deadline;

    r->port = free_port();
    snprintf(r->host, sizeof(r->host), "127.0.0.1:%d", r->port);
    snprintf(dir, sizeof(dir), "%s/%s", tmp_root, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof(text),
             "version: 0.1\n"
             "log:\n  level: error\n  accesslog:\n    disabled: true\n"
             "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
             "  delete:\n    enabled: true\n"
             "http:\n  addr: 127.0.0.1:%d\n",
             dir, r->port);
    if (auth != NULL) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, "%s", auth);
    }
    snprintf(cfg, sizeof(cfg), "%s/config.yml", dir);
    write_text(cfg, text);
    snprintf(log, sizeof(log), "%s/registry.log", dir);
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        /* A test that dies (a sanitizer abort) takes its server along. */
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

/* Stops a registry we started, and reaps it. */
static void stop_registry(registry_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

/* ---- small HTTP responders on 127.0.0.1 ------------------------------- */

/* A server thread answering one connection at a time; each response
 * closes its connection. */
typedef struct mini {
    int fd;
    int port;
    pthread_t th;
    atomic_int stop; /* set by the test thread, read by the server */
    void (*handle)(struct mini *m, int conn, const char *req);
    /* What the handlers count and see. */
    int requests;
    int token_requests;
    char seen[512]; /* a header or request line a handler kept */
    const uint8_t *blob;
    size_t blob_len;
    size_t piece; /* bytes sent before a dropped connection */
} mini_t;

/* Sends all of p[0..n), giving up if the peer went away. */
static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return;
        }
        c += w;
        n -= (size_t)w;
    }
}

/* The responder thread: accept, read the request head, hand it over. */
static void *mini_main(void *ud)
{
    mini_t *m = ud;

    while (!m->stop) {
        struct pollfd p = {.fd = m->fd, .events = POLLIN};
        char req[8192];
        size_t n = 0;
        int conn;

        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        conn = accept(m->fd, NULL, NULL);
        if (conn < 0) {
            continue;
        }
        while (n + 1 < sizeof(req)) {
            ssize_t r = recv(conn, req + n, sizeof(req) - 1 - n, 0);
            if (r <= 0) {
                break;
            }
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL) {
                break;
            }
        }
        req[n] = '\0';
        m->requests++;
        m->handle(m, conn, req);
        shutdown(conn, SHUT_RDWR);
        close(conn);
    }
    return NULL;
}

/* Starts a responder on a free 127.0.0.1 port (m->port). */
static void mini_start(mini_t *m,
                       void (*handle)(mini_t *m, int conn, const char *req))
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    m->handle = handle;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(m->fd >= 0);
    assert_int_equal(bind(m->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(m->fd, 8), 0);
    assert_int_equal(getsockname(m->fd, (struct sockaddr *)&a, &len), 0);
    m->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&m->th, NULL, mini_main, m), 0);
}

/* Stops the responder thread and closes its socket. */
static void mini_stop(mini_t *m)
{
    m->stop = 1;
    pthread_join(m->th, NULL);
    close(m->fd);
}

/* The value of header `name` in a request, into buf ("" if absent). */
static void req_header(const char *req, const char *name, char *buf,
                       size_t size)
{
    const char *p = req;
    size_t nl = strlen(name);

    buf[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e;
            while (*v == ' ') {
                v++;
            }
            e = strstr(v, "\r\n");
            snprintf(buf, size, "%.*s", (int)(e != NULL ? e - v : 0), v);
            return;
        }
    }
}

/* ---- sinks and sources ------------------------------------------------- */

static int buf_sink(void *ud, const void *data, size_t len, kiln_error_t *err)
{
    kiln__buf_t *b = ud;

    (void)err;
    kiln__buf_append(b, data, len);
    return kiln__buf_ok(b) ? 0 : KILN_ENOMEM;
}

typedef struct mem_src {
    const uint8_t *data;
    size_t len, off;
} mem_src_t;

/* Hands out at most 7000 bytes a call, so chunks take several reads. */
static int mem_read(void *ud, void *buf, size_t cap, size_t *got,
                    kiln_error_t *err)
{
    mem_src_t *s = ud;
    size_t n = s->len - s->off;

    (void)err;
    if (n > cap) {
        n = cap;
    }
    if (n > 7000) {
        n = 7000;
    }
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    *got = n;
    return 0;
}

/* Deterministic pseudo-random bytes. */
static uint8_t *make_data(size_t len, uint32_t seed)
{
    uint8_t *d = malloc(len);

    assert_non_null(d);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        d[i] = (uint8_t)(seed >> 16);
    }
    return d;
}

static kiln__oci_reg_t *client(const char *user, const char *pass)
{
    kiln__oci_reg_opts_t o = {.username = user,
                              .password = pass,
                              .connect_timeout = 5,
                              .idle_timeout = 10};
    kiln_error_t err = {0};
    kiln__oci_reg_t *r = NULL;

    ASSERT_OK(kiln__oci_reg_new(&o, &r, &err), err);
    return r;
}

/* Pulls blob `digest` and checks it equals data[0..len). */
static void assert_blob(kiln__oci_reg_t *r, const char *host, const char *repo,
                        const char *digest, const uint8_t *data, size_t len)
{
    kiln__buf_t got = KILN_BUF_INIT;
    kiln_error_t err = {0};
    uint64_t size = 0;

    ASSERT_OK(
        kiln__oci_blob_get(r, host, repo, digest, buf_sink, &got, &size, &err),
        err);
    assert_int_equal(size, len);
    kt_assert_bytes_equal(got.data, got.len, data, len);
    kiln__buf_free(&got);
}

/* ---- responders for the resume and Bearer tests ---------------------- */

/* Sends at most m->piece bytes of the blob from the Range asked for, then
 * closes the connection. */
static void resume_handle(mini_t *m, int conn, const char *req)
{
    char range[128], head[256];
    unsigned long long from = 0;
    size_t n;

    req_header(req, "Range", range, sizeof(range));
    if (range[0] != '\0') {
        snprintf(m->seen, sizeof(m->seen), "%s", range);
        /* No cmocka asserts off the main thread: a bad Range sends all. */
        if (sscanf(range, "bytes=%llu-", &from) != 1 || from > m->blob_len) {
            from = 0;
        }
        snprintf(head, sizeof(head),
                 "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
                 "Content-Range: bytes %llu-%zu/%zu\r\n"
                 "Connection: close\r\n\r\n",
                 m->blob_len - (size_t)from, from, m->blob_len - 1,
                 m->blob_len);
    } else {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 m->blob_len);
    }
    send_all(conn, head, strlen(head));
    n = m->blob_len - (size_t)from;
    send_all(conn, m->blob + from, n < m->piece ? n : m->piece);
}

static const char bearer_body[] = "{\"schemaVersion\":2}";

static void bearer_handle(mini_t *m, int conn, const char *req)
{
    char auth[256], head[600];

    req_header(req, "Authorization", auth, sizeof(auth));
    if (strncmp(req, "GET /token?", 11) == 0) {
        static const char tok[] = "{\"access_token\":\"tok123\","
                                  "\"expires_in\":300}";
        m->token_requests++;
        snprintf(m->seen, sizeof(m->seen), "%.*s | %s", (int)strcspn(req, "\r"),
                 req, auth);
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(tok), tok);
    } else if (strcmp(auth, "Bearer tok123") == 0) {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 KILN_OCI_MT_MANIFEST, strlen(bearer_body), bearer_body);
    } else {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer "
                 "realm=\"http://127.0.0.1:%d/token\",service=\"svc\","
                 "scope=\"repository:bear/app:pull\"\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                 m->port);
    }
    send_all(conn, head, strlen(head));
}

/* ---- a token server for docker-registry's token auth ----------------- */

/* The key that signs tokens, and its self-signed certificate (the
 * registry's rootcertbundle) as the JWT's x5c, standard base64 DER. */
static EVP_PKEY *token_key;
static char token_x5c[4096];
static mini_t token_srv;

/* base64url without padding, as JWTs use. */
static void b64url(const void *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

    for (int i = 0; i < len; i++) {
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    out[len] = '\0';
}

/* Makes the key and certificate with the openssl command, loads both. */
static bool make_token_key(void)
{
    char cmd[1024], path[400];
    unsigned char *der = NULL;
    X509 *cert;
    FILE *f;
    int n;

    snprintf(cmd, sizeof(cmd),
             "%s req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kiln "
             "-keyout %s/token.key -out %s/token.crt 2>/dev/null",
             OPENSSL_BIN, tmp_root, tmp_root);
    if (system(cmd) != 0) {
        return false;
    }
    snprintf(path, sizeof(path), "%s/token.key", tmp_root);
    f = fopen(path, "r");
    token_key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/token.crt", tmp_root);
    f = fopen(path, "r");
    cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    n = cert != NULL ? i2d_X509(cert, &der) : -1;
    if (n > 0 && (size_t)n * 4 / 3 + 4 < sizeof(token_x5c)) {
        EVP_EncodeBlock((unsigned char *)token_x5c, der, n);
    }
    OPENSSL_free(der);
    X509_free(cert);
    return token_key != NULL && token_x5c[0] != '\0';
}

/* A JWT granting pull and push on tok/app to `user` for ten minutes, in
 * out (4096 bytes). */
static bool make_jwt(char *out, size_t size)
{
    char head[4096], claims[1024], sig_b64[1024], msg[8192];
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    long now = (long)time(NULL);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    char buf[4096];
    bool ok;

    snprintf(buf, sizeof(buf),
             "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5c\":[\"%s\"]}", token_x5c);
    b64url(buf, strlen(buf), head);
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"kiln-issuer\",\"sub\":\"user\",\"aud\":\"kiln\","
             "\"exp\":%ld,\"nbf\":%ld,\"iat\":%ld,\"jti\":\"%ld\","
             "\"access\":[{\"type\":\"repository\",\"name\":\"tok/app\","
             "\"actions\":[\"pull\",\"push\"]}]}",
             now + 600, now - 60, now - 60, now);
    b64url(buf, strlen(buf), claims);
    snprintf(msg, sizeof(msg), "%s.%s", head, claims);
    ok = c != NULL &&
         EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, token_key) == 1 &&
         EVP_DigestSign(c, sig, &siglen, (const unsigned char *)msg,
                        strlen(msg)) == 1;
    EVP_MD_CTX_free(c);
    if (ok) {
        b64url(sig, siglen, sig_b64);
        ok = (size_t)snprintf(out, size, "%s.%s", msg, sig_b64) < size;
    }
    return ok;
}

/* The token endpoint: a token for user:pass, 401 for anyone else. */
static void token_handle(mini_t *m, int conn, const char *req)
{
    char auth[256], jwt[8192], body[8300], resp[9000];
    int n;

    req_header(req, "Authorization", auth, sizeof(auth));
    m->token_requests++;
    if (strcmp(auth, "Basic dXNlcjpwYXNz") != 0 ||
        !make_jwt(jwt, sizeof(jwt))) {
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
    } else {
        snprintf(body, sizeof(body), "{\"token\":\"%s\",\"expires_in\":600}",
                 jwt);
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
    }
    send_all(conn, resp, (size_t)n);
}

/* A temp root, no proxies, an empty DOCKER_CONFIG, and the registries
 * when docker-registry (and htpasswd, openssl) are installed. */
static int group_setup(void **state)
{
    char dcfg[300], cmd[600], yaml[600];

    (void)state;
    /* Nothing may go through a proxy, or leave loopback. */
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/kiln-test-registry-XXXXXX");
    assert_non_null(mkdtemp(tmp_root));
    /* The user's own ~/.docker must not leak in. */
    snprintf(dcfg, sizeof(dcfg), "%s/docker-empty", tmp_root);
    assert_int_equal(mkdir(dcfg, 0700), 0);
    setenv("DOCKER_CONFIG", dcfg, 1);
    if (!have_registry) {
        return 0;
    }
    if (!start_registry(&plain_reg, "plain", NULL)) {
        printf("# docker-registry did not start (see %s/plain/registry.log)\n",
               tmp_root);
        return -1;
    }
    if (!have_auth) {
        return 0;
    }
    snprintf(cmd, sizeof(cmd), "%s -Bbn user pass > %s/htpasswd", HTPASSWD_BIN,
             tmp_root);
    if (system(cmd) != 0 || !make_token_key()) {
        return -1;
    }
    snprintf(yaml, sizeof(yaml),
             "auth:\n  htpasswd:\n    realm: kiln\n    path: %s/htpasswd\n",
             tmp_root);
    if (!start_registry(&auth_reg, "auth", yaml)) {
        return -1;
    }
    mini_start(&token_srv, token_handle);
    snprintf(yaml, sizeof(yaml),
             "auth:\n  token:\n    realm: http://127.0.0.1:%d/token\n"
             "    service: kiln\n    issuer: kiln-issuer\n"
             "    rootcertbundle: %s/token.crt\n",
             token_srv.port, tmp_root);
    return start_registry(&token_reg, "token", yaml) ? 0 : -1;
}

/* Stops the registries and the token server, removes the temp root. */
static int group_teardown(void **state)
{
    char cmd[400];

    (void)state;
    stop_registry(&plain_reg);
    stop_registry(&auth_reg);
    stop_registry(&token_reg);
    if (token_srv.port != 0) {
        mini_stop(&token_srv);
    }
    EVP_PKEY_free(token_key);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
