/*
 * The registry client (core/oci/registry*.c, auth.c) against Debian's
 * docker-registry (distribution 2.8) on 127.0.0.1: one instance without
 * auth, one with htpasswd Basic auth; and against small responders (in
 * test_oci_registry_fixture.h) for what a real registry will not do on
 * demand: a connection dropped mid-blob, Bearer tokens. Nothing leaves
 * 127.0.0.1: proxies are unset and no name is resolved. Registry tests are
 * skipped, with a TAP comment, when /usr/bin/docker-registry is not installed.
 */
#include "test_oci_registry_fixture.h"

/* ---- parsers ------------------------------------------------------------ */

static void test_ref_parse(void **state)
{
    static const char *const bad[] = {
        "alpine",
        "library/alpine:latest",
        "docker.io/library/alpine",
        "docker.io/Library/alpine:latest",
        "docker.io/library/alpine:",
        "docker.io/library/alpine@sha256:abc",
        "docker.io//alpine:latest",
        "docker.io/library/alpine/:latest",
        "host:port/x:latest",
        "-bad.io/x:latest",
        "",
    };
    kiln__oci_ref_t r = {0};
    kiln_error_t err = {0};
    char buf[400];
    const char *d = "sha256:"
                    "0123456789abcdef0123456789abcdef"
                    "0123456789abcdef0123456789abcdef";

    (void)state;
    ASSERT_OK(kiln__oci_ref_parse("docker.io/library/alpine:latest", &r, &err),
              err);
    assert_string_equal(r.registry, "docker.io");
    assert_string_equal(r.repository, "library/alpine");
    assert_string_equal(r.tag, "latest");
    assert_null(r.digest);
    assert_string_equal(kiln__oci_registry_endpoint(r.registry),
                        "registry-1.docker.io");
    kiln__oci_ref_clear(&r);

    snprintf(buf, sizeof(buf), "127.0.0.1:5000/busybox@%s", d);
    ASSERT_OK(kiln__oci_ref_parse(buf, &r, &err), err);
    assert_string_equal(r.registry, "127.0.0.1:5000");
    assert_string_equal(r.repository, "busybox");
    assert_null(r.tag);
    assert_string_equal(r.digest, d);
    kiln__oci_ref_clear(&r);

    snprintf(buf, sizeof(buf), "host.example/ns/a.b_c__d-e/repo:v1.2-rc@%s", d);
    ASSERT_OK(kiln__oci_ref_parse(buf, &r, &err), err);
    assert_string_equal(r.registry, "host.example");
    assert_string_equal(r.repository, "ns/a.b_c__d-e/repo");
    assert_string_equal(r.tag, "v1.2-rc");
    assert_string_equal(r.digest, d);
    assert_string_equal(kiln__oci_ref_format(&r, buf + 200, 200), buf);
    kiln__oci_ref_clear(&r);

    ASSERT_OK(kiln__oci_ref_parse("[::1]:5000/x:t", &r, &err), err);
    assert_string_equal(r.registry, "[::1]:5000");
    kiln__oci_ref_clear(&r);
    ASSERT_OK(kiln__oci_ref_parse("localhost/x:t", &r, &err), err);
    kiln__oci_ref_clear(&r);

    for (size_t i = 0; i < KILN_ARRAY_SIZE(bad); i++) {
        memset(&err, 0, sizeof(err));
        if (kiln__oci_ref_parse(bad[i], &r, &err) != KILN_EINVAL) {
            fail_msg("\"%s\" parsed", bad[i]);
        }
        ASSERT_CONTAINS(err.message, "invalid image reference");
    }
    kiln__oci_ref_parse("alpine", &r, &err);
    ASSERT_CONTAINS(err.message, "not normalized");
    kiln__oci_ref_parse("docker.io/library/alpine", &r, &err);
    ASSERT_CONTAINS(err.message, "neither a tag nor a digest");
}

/* Plain HTTP for loopback and the insecure list, HTTPS for the rest,
 * docker.io's API host. Builds URLs only: nothing is sent. */
static void test_url_scheme(void **state)
{
    static const char *const insecure[] = {"my.registry:5000", "bare.host"};
    static const struct {
        const char *registry, *url;
    } cases[] = {
        {"my.registry:5000", "http://my.registry:5000/v2/a/b"},
        {"my.registry:5001", "https://my.registry:5001/v2/a/b"},
        {"bare.host:8080", "http://bare.host:8080/v2/a/b"},
        {"other.io", "https://other.io/v2/a/b"},
        {"docker.io", "https://registry-1.docker.io/v2/a/b"},
        {"localhost:5000", "http://localhost:5000/v2/a/b"},
        {"127.0.0.5", "http://127.0.0.5/v2/a/b"},
        {"[::1]:5000", "http://[::1]:5000/v2/a/b"},
        {"128.0.0.1", "https://128.0.0.1/v2/a/b"},
    };
    kiln__oci_reg_opts_t o = {.insecure = insecure, .n_insecure = 2};
    kiln__oci_reg_t *r = NULL;
    kiln_error_t err = {0};

    (void)state;
    ASSERT_OK(kiln__oci_reg_new(&o, &r, &err), err);
    for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
        char *url = NULL;
        ASSERT_OK(
            kiln__oci_reg_url(r, cases[i].registry, &url, &err, "%s", "a/b"),
            err);
        assert_string_equal(url, cases[i].url);
        free(url);
    }
    kiln__oci_reg_free(r);
}

static void test_challenge_parse(void **state)
{
    const char *h = "Bearer realm=\"https://auth.example/token\","
                    "service=\"registry.example\","
                    "scope=\"repository:a/b:pull,push\"";
    kiln__oci_challenge_t c = {0};
    kiln_error_t err = {0};

    (void)state;
    ASSERT_OK(kiln__oci_challenge_parse(h, strlen(h), &c, &err), err);
    assert_int_equal(c.scheme, KILN_OCI_AUTH_BEARER);
    assert_string_equal(c.realm, "https://auth.example/token");
    assert_string_equal(c.service, "registry.example");
    assert_string_equal(c.scope, "repository:a/b:pull,push");
    kiln__oci_challenge_clear(&c);

    h = "basic realm=\"Registry \\\"x\\\" Realm\" , charset=UTF-8";
    ASSERT_OK(kiln__oci_challenge_parse(h, strlen(h), &c, &err), err);
    assert_int_equal(c.scheme, KILN_OCI_AUTH_BASIC);
    assert_string_equal(c.realm, "Registry \"x\" Realm");
    assert_null(c.scope);
    kiln__oci_challenge_clear(&c);

    /* A second challenge ends the first. */
    h = "Negotiate, Bearer realm=x";
    ASSERT_OK(kiln__oci_challenge_parse(h, strlen(h), &c, &err), err);
    assert_int_equal(c.scheme, KILN_OCI_AUTH_UNKNOWN);
    kiln__oci_challenge_clear(&c);

    h = "Bearer realm=\"unterminated";
    assert_int_equal(kiln__oci_challenge_parse(h, strlen(h), &c, &err),
                     KILN_EINVAL);
    h = "Bearer realm=";
    assert_int_equal(kiln__oci_challenge_parse(h, strlen(h), &c, &err),
                     KILN_EINVAL);
    h = "Bearer realm=\"x\" service=\"y\"";
    assert_int_equal(kiln__oci_challenge_parse(h, strlen(h), &c, &err),
                     KILN_EINVAL);
    ASSERT_CONTAINS(err.message, "expected ','");
    assert_int_equal(kiln__oci_challenge_parse("", 0, &c, &err), KILN_EINVAL);
}

static void test_config_creds(void **state)
{
    char dir[400], path[500], *user = NULL, *pass = NULL;
    kiln_error_t err = {0};

    (void)state;
    snprintf(dir, sizeof(dir), "%s/creds", tmp_root);
    assert_int_equal(mkdir(dir, 0700), 0);
    /* No file: no credentials, no error. */
    ASSERT_OK(kiln__oci_config_creds(dir, "x.io", &user, &pass, &err), err);
    assert_null(user);
    snprintf(path, sizeof(path), "%s/config.json", dir);
    write_text(path, "{\"auths\":{"
                     "\"https://index.docker.io/v1/\":{\"auth\":"
                     "\"aHViOnNlY3JldA==\"},"
                     "\"http://x.io:5000\":{\"username\":\"u\","
                     "\"password\":\"p:q\"},"
                     "\"bad.io\":{\"auth\":\"!!!\"}}}");
    ASSERT_OK(kiln__oci_config_creds(dir, "docker.io", &user, &pass, &err),
              err);
    assert_string_equal(user, "hub");
    assert_string_equal(pass, "secret");
    free(user);
    free(pass);
    ASSERT_OK(kiln__oci_config_creds(dir, "x.io:5000", &user, &pass, &err),
              err);
    assert_string_equal(user, "u");
    assert_string_equal(pass, "p:q");
    free(user);
    free(pass);
    ASSERT_OK(kiln__oci_config_creds(dir, "x.io", &user, &pass, &err), err);
    assert_null(user);
    assert_int_equal(kiln__oci_config_creds(dir, "bad.io", &user, &pass, &err),
                     KILN_EINVAL);
    ASSERT_CONTAINS(err.message, "base64");
}

/* ---- against docker-registry ------------------------------------------- */

static void test_blob_monolithic(void **state)
{
    kiln__oci_reg_t *r;
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1];
    uint8_t *data = make_data(300000, 1);
    uint64_t size = 0;
    bool exists = true;

    (void)state;
    r = client(NULL, NULL);
    assert_int_equal(kiln__sha256_digest(data, 300000, d), 0);
    ASSERT_OK(kiln__oci_blob_head(r, plain_reg.host, "mono/app", d, &exists,
                                  &size, &err),
              err);
    assert_false(exists);
    ASSERT_OK(kiln__oci_blob_push(r, plain_reg.host, "mono/app", d, data,
                                  300000, &err),
              err);
    ASSERT_OK(kiln__oci_blob_head(r, plain_reg.host, "mono/app", d, &exists,
                                  &size, &err),
              err);
    assert_true(exists);
    assert_int_equal(size, 300000);
    assert_blob(r, plain_reg.host, "mono/app", d, data, 300000);
    /* A wrong digest is refused before anything is sent. */
    d[10] = d[10] == 'a' ? 'b' : 'a';
    assert_int_equal(kiln__oci_blob_push(r, plain_reg.host, "mono/app", d, data,
                                         300000, &err),
                     KILN_EINVAL);
    /* A blob the registry lacks. */
    assert_int_equal(kiln__oci_blob_get(r, plain_reg.host, "mono/app", d,
                                        buf_sink, NULL, NULL, &err),
                     KILN_ENOENT);
    ASSERT_CONTAINS(err.message, d);
    kiln__oci_reg_free(r);
    free(data);
}

static void test_blob_chunked(void **state)
{
    kiln__oci_reg_t *r;
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], want[KILN_DIGEST_STRLEN + 1];
    uint8_t *data = make_data(100001, 2);
    mem_src_t src = {data, 100001, 0};

    (void)state;
    r = client(NULL, NULL);
    assert_int_equal(kiln__sha256_digest(data, 100001, want), 0);
    ASSERT_OK(kiln__oci_blob_push_chunked(r, plain_reg.host, "chunk/app", want,
                                          mem_read, &src, 40000, d, &err),
              err);
    assert_string_equal(d, want);
    assert_blob(r, plain_reg.host, "chunk/app", d, data, 100001);
    /* The data does not match the digest promised: not committed. */
    src.off = 0;
    want[20] = want[20] == '0' ? '1' : '0';
    assert_int_equal(kiln__oci_blob_push_chunked(r, plain_reg.host, "chunk/app",
                                                 want, mem_read, &src, 40000,
                                                 NULL, &err),
                     KILN_EBADMSG);
    ASSERT_CONTAINS(err.message, d);
    kiln__oci_reg_free(r);
    free(data);
}

/* Pushes a config and a layer and an OCI manifest naming them to
 * host/repo:tag; returns the manifest (malloc'ed) and its digest. */
static char *push_image(kiln__oci_reg_t *r, const char *host, const char *repo,
                        const char *tag, uint32_t seed,
                        char digest[KILN_DIGEST_STRLEN + 1])
{
    const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\","
                      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    char cd[KILN_DIGEST_STRLEN + 1], ld[KILN_DIGEST_STRLEN + 1];
    char name[300], *m = malloc(1024);
    uint8_t *layer = make_data(5000, seed);
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};

    assert_non_null(m);
    assert_int_equal(kiln__sha256_digest(cfg, strlen(cfg), cd), 0);
    assert_int_equal(kiln__sha256_digest(layer, 5000, ld), 0);
    ASSERT_OK(kiln__oci_blob_push(r, host, repo, NULL, cfg, strlen(cfg), &err),
              err);
    ASSERT_OK(kiln__oci_blob_push(r, host, repo, NULL, layer, 5000, &err), err);
    snprintf(m, 1024,
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{"
             "\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
             "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
             "\"size\":5000}]}",
             KILN_OCI_MT_MANIFEST, cd, strlen(cfg), ld);
    snprintf(name, sizeof(name), "%s/%s:%s", host, repo, tag);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_put(r, &ref, KILN_OCI_MT_MANIFEST, m,
                                     strlen(m), digest, &err),
              err);
    kiln__oci_ref_clear(&ref);
    free(layer);
    return m;
}

static void test_manifest_tag_digest(void **state)
{
    kiln__oci_reg_t *r;
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], name[300], *body;

    (void)state;
    r = client(NULL, NULL);
    body = push_image(r, plain_reg.host, "man/app", "v1", 3, d);
    snprintf(name, sizeof(name), "%s/man/app:v1", plain_reg.host);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &m, &err), err);
    assert_string_equal(m.media_type, KILN_OCI_MT_MANIFEST);
    assert_string_equal(m.digest, d);
    assert_int_equal(m.size, strlen(body));
    kt_assert_bytes_equal(m.body, m.len, (const uint8_t *)body, strlen(body));
    kiln__oci_manifest_clear(&m);
    ASSERT_OK(kiln__oci_manifest_head(r, &ref, &m, &err), err);
    assert_string_equal(m.digest, d);
    assert_int_equal(m.size, strlen(body));
    assert_null(m.body);
    assert_string_equal(m.media_type, KILN_OCI_MT_MANIFEST);
    kiln__oci_manifest_clear(&m);
    kiln__oci_ref_clear(&ref);

    snprintf(name, sizeof(name), "%s/man/app@%s", plain_reg.host, d);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &m, &err), err);
    assert_string_equal(m.digest, d);
    kt_assert_bytes_equal(m.body, m.len, (const uint8_t *)body, strlen(body));
    kiln__oci_manifest_clear(&m);
    kiln__oci_ref_clear(&ref);
    free(body);
    kiln__oci_reg_free(r);
}

static void test_index_accept(void **state)
{
    kiln__oci_reg_t *r;
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], id[KILN_DIGEST_STRLEN + 1];
    char name[300], idx[1024], *body;

    (void)state;
    r = client(NULL, NULL);
    body = push_image(r, plain_reg.host, "idx/app", "one", 4, d);
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{"
             "\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}",
             KILN_OCI_MT_INDEX, KILN_OCI_MT_MANIFEST, d, strlen(body));
    snprintf(name, sizeof(name), "%s/idx/app:multi", plain_reg.host);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_put(r, &ref, KILN_OCI_MT_INDEX, idx,
                                     strlen(idx), id, &err),
              err);
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &m, &err), err);
    assert_string_equal(m.media_type, KILN_OCI_MT_INDEX);
    assert_string_equal(m.digest, id);
    kt_assert_bytes_equal(m.body, m.len, (const uint8_t *)idx, strlen(idx));
    kiln__oci_manifest_clear(&m);
    kiln__oci_ref_clear(&ref);
    free(body);
    kiln__oci_reg_free(r);
}

static void test_mount(void **state)
{
    kiln__oci_reg_t *r;
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1];
    uint8_t *data = make_data(20000, 5);
    bool mounted = false, exists = false;

    (void)state;
    r = client(NULL, NULL);
    assert_int_equal(kiln__sha256_digest(data, 20000, d), 0);
    ASSERT_OK(
        kiln__oci_blob_push(r, plain_reg.host, "mnt/src", d, data, 20000, &err),
        err);
    ASSERT_OK(kiln__oci_blob_mount(r, plain_reg.host, "mnt/dst", "mnt/src", d,
                                   &mounted, &err),
              err);
    assert_true(mounted);
    ASSERT_OK(kiln__oci_blob_head(r, plain_reg.host, "mnt/dst", d, &exists,
                                  NULL, &err),
              err);
    assert_true(exists);
    assert_blob(r, plain_reg.host, "mnt/dst", d, data, 20000);
    /* A blob the source lacks: the registry offers an upload instead. */
    d[30] = d[30] == 'f' ? 'e' : 'f';
    ASSERT_OK(kiln__oci_blob_mount(r, plain_reg.host, "mnt/dst2", "mnt/src", d,
                                   &mounted, &err),
              err);
    assert_false(mounted);
    kiln__oci_reg_free(r);
    free(data);
}

static void test_manifest_404(void **state)
{
    kiln__oci_reg_t *r;
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char name[300], want[400];

    (void)state;
    r = client(NULL, NULL);
    snprintf(name, sizeof(name), "%s/nothing/here:nosuchtag", plain_reg.host);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    assert_int_equal(kiln__oci_manifest_get(r, &ref, &m, &err), KILN_ENOENT);
    snprintf(want, sizeof(want), "image not found: %s", name);
    assert_string_equal(err.message, want);
    assert_int_equal(kiln__oci_manifest_head(r, &ref, &m, &err), KILN_ENOENT);
    assert_string_equal(err.message, want);
    kiln__oci_ref_clear(&ref);
    kiln__oci_reg_free(r);
}

static void test_connection_refused(void **state)
{
    kiln__oci_reg_t *r = client(NULL, NULL);
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char name[300], want[300];
    int port = free_port();

    (void)state;
    snprintf(name, sizeof(name), "127.0.0.1:%d/x/y:latest", port);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    assert_int_equal(kiln__oci_manifest_get(r, &ref, &m, &err), KILN_EIO);
    snprintf(want, sizeof(want), "cannot reach registry 127.0.0.1:%d: ", port);
    ASSERT_CONTAINS(err.message, want);
    ASSERT_CONTAINS(err.message, "refused");
    kiln__oci_ref_clear(&ref);
    kiln__oci_reg_free(r);
}

static void test_tampered_blob(void **state)
{
    kiln__oci_reg_t *r;
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], path[700];
    uint8_t *data = make_data(4096, 6);
    kiln__buf_t got = KILN_BUF_INIT;
    FILE *f;

    (void)state;
    r = client(NULL, NULL);
    assert_int_equal(kiln__sha256_digest(data, 4096, d), 0);
    ASSERT_OK(kiln__oci_blob_push(r, plain_reg.host, "tamper/app", d, data,
                                  4096, &err),
              err);
    snprintf(path, sizeof(path),
             "%s/plain/data/docker/registry/v2/blobs/sha256/%.2s/%s/data",
             tmp_root, d + 7, d + 7);
    f = fopen(path, "r+b");
    assert_non_null(f);
    data[100] ^= 0xff;
    assert_int_equal(fwrite(data, 1, 4096, f), 4096);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(kiln__oci_blob_get(r, plain_reg.host, "tamper/app", d,
                                        buf_sink, &got, NULL, &err),
                     KILN_EBADMSG);
    ASSERT_CONTAINS(err.message, d);
    ASSERT_CONTAINS(err.message, "digest mismatch");
    assert_int_equal(kiln__sha256_digest(data, 4096, d), 0);
    ASSERT_CONTAINS(err.message, d);
    kiln__buf_free(&got);
    kiln__oci_reg_free(r);
    free(data);
}

static int always_cancel(void *ud)
{
    (void)ud;
    return 1;
}

static void test_cancel(void **state)
{
    kiln__oci_reg_opts_t o = {.cancelled = always_cancel};
    kiln__oci_reg_t *r = NULL;
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1];

    (void)state;
    ASSERT_OK(kiln__oci_reg_new(&o, &r, &err), err);
    assert_int_equal(kiln__sha256_digest("x", 1, d), 0);
    assert_int_equal(kiln__oci_blob_get(r, plain_reg.host, "c/app", d, buf_sink,
                                        NULL, NULL, &err),
                     KILN_ECANCELED);
    ASSERT_CONTAINS(err.message, "canceled");
    kiln__oci_reg_free(r);
}

/* ---- auth against docker-registry's htpasswd -------------------------- */

static void test_auth_wrong(void **state)
{
    kiln__oci_reg_t *anon, *wrong;
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char name[300], want[400];

    (void)state;
    anon = client(NULL, NULL);
    wrong = client("user", "wrong");
    snprintf(name, sizeof(name), "%s/auth/app:latest", auth_reg.host);
    snprintf(want, sizeof(want),
             "authentication required for %s (auth/app): wrong or missing "
             "credentials",
             auth_reg.host);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    assert_int_equal(kiln__oci_manifest_get(anon, &ref, &m, &err), KILN_EIO);
    assert_string_equal(err.message, want);
    assert_int_equal(kiln__oci_manifest_get(wrong, &ref, &m, &err), KILN_EIO);
    assert_string_equal(err.message, want);
    kiln__oci_ref_clear(&ref);
    kiln__oci_reg_free(anon);
    kiln__oci_reg_free(wrong);
}

/* Pushes an image with `r` and reads it back by tag. */
static void push_pull_auth(kiln__oci_reg_t *r, const char *repo, uint32_t seed)
{
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], name[300];
    char *body = push_image(r, auth_reg.host, repo, "v1", seed, d);

    snprintf(name, sizeof(name), "%s/%s:v1", auth_reg.host, repo);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &m, &err), err);
    assert_string_equal(m.digest, d);
    kt_assert_bytes_equal(m.body, m.len, (const uint8_t *)body, strlen(body));
    kiln__oci_manifest_clear(&m);
    kiln__oci_ref_clear(&ref);
    free(body);
}

static void test_auth_explicit(void **state)
{
    kiln__oci_reg_t *r;

    (void)state;
    r = client("user", "pass");
    push_pull_auth(r, "auth/explicit", 7);
    kiln__oci_reg_free(r);
}

static void test_auth_config_json(void **state)
{
    char dir[400], path[500], text[600], *old;
    kiln__oci_reg_t *r;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/docker-auth", tmp_root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/config.json", dir);
    /* base64("user:pass") */
    snprintf(text, sizeof(text),
             "{\"auths\":{\"%s\":{\"auth\":\"dXNlcjpwYXNz\"}}}", auth_reg.host);
    write_text(path, text);
    old = strdup(getenv("DOCKER_CONFIG"));
    assert_non_null(old);
    setenv("DOCKER_CONFIG", dir, 1);
    r = client(NULL, NULL);
    push_pull_auth(r, "auth/config", 8);
    kiln__oci_reg_free(r);
    setenv("DOCKER_CONFIG", old, 1);
    free(old);
}

/* ---- Range resume, with a responder that drops connections ------------ */

static void test_range_resume(void **state)
{
    mini_t m = {0};
    kiln__oci_reg_t *r = client(NULL, NULL);
    kiln__buf_t got = KILN_BUF_INIT;
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], host[64];
    uint8_t *data = make_data(30000, 9);

    (void)state;
    m.blob = data;
    m.blob_len = 30000;
    m.piece = 10001;
    assert_int_equal(kiln__sha256_digest(data, 30000, d), 0);
    mini_start(&m, resume_handle);
    snprintf(host, sizeof(host), "127.0.0.1:%d", m.port);
    /* Three connections: 0-10000, 10001-20001 and the rest. */
    ASSERT_OK(
        kiln__oci_blob_get(r, host, "r/app", d, buf_sink, &got, NULL, &err),
        err);
    kt_assert_bytes_equal(got.data, got.len, data, 30000);
    assert_int_equal(m.requests, 3);
    assert_string_equal(m.seen, "bytes=20002-");
    kiln__buf_free(&got);
    /* Five pieces need four resumes: one too many. */
    m.piece = 6000;
    m.requests = 0;
    assert_int_equal(
        kiln__oci_blob_get(r, host, "r/app", d, buf_sink, &got, NULL, &err),
        KILN_EIO);
    assert_int_equal(m.requests, 4);
    kiln__buf_free(&got);
    mini_stop(&m);
    kiln__oci_reg_free(r);
    free(data);
}

/* ---- Bearer tokens, with a responder that is registry and realm -------- */

static void test_bearer(void **state)
{
    mini_t m = {0};
    kiln__oci_reg_t *r = client("user", "pass");
    kiln__oci_manifest_t man = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char name[300], d[KILN_DIGEST_STRLEN + 1];

    (void)state;
    mini_start(&m, bearer_handle);
    snprintf(name, sizeof(name), "127.0.0.1:%d/bear/app:latest", m.port);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &man, &err), err);
    assert_int_equal(kiln__sha256_digest(bearer_body, strlen(bearer_body), d),
                     0);
    assert_string_equal(man.digest, d);
    kiln__oci_manifest_clear(&man);
    assert_int_equal(m.token_requests, 1);
    ASSERT_CONTAINS(m.seen, "service=svc");
    ASSERT_CONTAINS(m.seen, "scope=repository%3Abear%2Fapp%3Apull");
    ASSERT_CONTAINS(m.seen, "| Basic dXNlcjpwYXNz");
    /* The cached token is used: no second token request, no 401. */
    m.requests = 0;
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &man, &err), err);
    kiln__oci_manifest_clear(&man);
    assert_int_equal(m.token_requests, 1);
    assert_int_equal(m.requests, 1);
    kiln__oci_ref_clear(&ref);
    mini_stop(&m);
    kiln__oci_reg_free(r);
}

/* docker-registry with token auth: the client fetches a JWT from the
 * realm with its credentials, and is refused without the right ones. */
static void test_token_auth(void **state)
{
    kiln__oci_reg_t *r = client("user", "pass"), *wrong;
    kiln__oci_manifest_t m = {0};
    kiln__oci_ref_t ref = {0};
    kiln_error_t err = {0};
    char d[KILN_DIGEST_STRLEN + 1], name[300], want[400], *body;

    (void)state;
    token_srv.token_requests = 0;
    body = push_image(r, token_reg.host, "tok/app", "v1", 10, d);
    /* One token for pull,push on tok/app serves the whole push. */
    assert_int_equal(token_srv.token_requests, 1);
    snprintf(name, sizeof(name), "%s/tok/app:v1", token_reg.host);
    ASSERT_OK(kiln__oci_ref_parse(name, &ref, &err), err);
    ASSERT_OK(kiln__oci_manifest_get(r, &ref, &m, &err), err);
    assert_string_equal(m.digest, d);
    kt_assert_bytes_equal(m.body, m.len, (const uint8_t *)body, strlen(body));
    kiln__oci_manifest_clear(&m);
    /* The pull scope is another token. */
    assert_int_equal(token_srv.token_requests, 2);

    wrong = client("user", "wrong");
    snprintf(want, sizeof(want),
             "authentication required for %s (tok/app): wrong or missing "
             "credentials",
             token_reg.host);
    assert_int_equal(kiln__oci_manifest_get(wrong, &ref, &m, &err), KILN_EIO);
    assert_string_equal(err.message, want);
    kiln__oci_ref_clear(&ref);
    kiln__oci_reg_free(wrong);
    kiln__oci_reg_free(r);
    free(body);
}

/*
 * The parser and responder tests always run; the docker-registry ones
 * only when it is installed, the auth ones only with htpasswd and openssl
 * too
 * (cmocka's skip() reads as a failure to meson's TAP parser, so absent
 * tests are left out, with a TAP comment).
 */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_parse),
        cmocka_unit_test(test_challenge_parse),
        cmocka_unit_test(test_url_scheme),
        cmocka_unit_test(test_config_creds),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_range_resume),
        cmocka_unit_test(test_bearer),
        /* Registry tests from here on. */
        cmocka_unit_test(test_blob_monolithic),
        cmocka_unit_test(test_blob_chunked),
        cmocka_unit_test(test_manifest_tag_digest),
        cmocka_unit_test(test_index_accept),
        cmocka_unit_test(test_mount),
        cmocka_unit_test(test_manifest_404),
        cmocka_unit_test(test_tampered_blob),
        cmocka_unit_test(test_cancel),
        /* Auth tests (Basic, then token) from here on. */
        cmocka_unit_test(test_auth_wrong),
        cmocka_unit_test(test_auth_explicit),
        cmocka_unit_test(test_auth_config_json),
        cmocka_unit_test(test_token_auth),
    };
    size_t n = KILN_ARRAY_SIZE(tests);

    have_registry = access(REGISTRY_BIN, X_OK) == 0;
    have_auth = have_registry && access(HTPASSWD_BIN, X_OK) == 0 &&
                access(OPENSSL_BIN, X_OK) == 0;
    if (!have_registry) {
        printf("# %s is not installed: registry tests skipped\n", REGISTRY_BIN);
        n -= 12;
    } else if (!have_auth) {
        printf("# %s or %s is not installed: auth tests skipped\n",
               HTPASSWD_BIN, OPENSSL_BIN);
        n -= 4;
    }
    return _cmocka_run_group_tests("tests", tests, n, group_setup,
                                   group_teardown);
}
