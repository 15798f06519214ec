/*
 * The local, http and git plugins' translate() against BuildKit's own
 * vectors: a definition built from the plugins' output
 * (kiln_llb_plugin_source(), as `kiln source translate` prints it) has the
 * op digests BuildKit's Go client gave llb.Local(...), llb.HTTP(...) and
 * llb.Git(...) in tests/data/llb/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

/* The digest of the result op of a one-source definition. */
static void source_digest(const char *scheme, const char *const *params,
                          char *out, size_t size)
{
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    kiln_llb_t *b;
    uint8_t *bytes;
    size_t len;

    /* The vectors come from a v0.11 client: its field order. */
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_LEGACY, &b), 0);
    if (kiln_llb_marshal(b, kiln_llb_plugin_source(b, scheme, params), &bytes,
                         &len, &err) != 0 ||
        kiln_definition_load(bytes, len, &err, &def) != 0) {
        fail_msg("%s: %s", scheme, err.message);
    }
    snprintf(out, size, "%s", kiln_definition_result(def, NULL));
    kiln_free(bytes);
    kiln_llb_free(b);
    kiln_definition_free(def);
}

static void test_local_vector(void **state)
{
    const char *params[] = {
        "name=context",
        "include=[\"src/**\",\"*.go\",\"Dockerfile\"]",
        "exclude=**/*.tmp,node_modules,!node_modules/keep",
        "sharedkeyhint=context-shared-key",
        "unique=llbgenfixeduniqueid000000",
        NULL,
    };
    char digest[80];

    (void)state;
    source_digest("local", params, digest, sizeof(digest));
    assert_string_equal(digest, "sha256:8455a3c7373fda5bb6e8263cd5a87bfa95715"
                                "5114bb745642d1dc60079553449");
}

static void test_http_vector(void **state)
{
    const char *params[] = {
        "url=https://example.com/file.tar.gz",
        "checksum=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6"
        "c15b0f00a08",
        "filename=f",
        "chmod=0644",
        NULL,
    };
    char digest[80];

    (void)state;
    source_digest("https", params, digest, sizeof(digest));
    assert_string_equal(digest, "sha256:a73c9ee9907557e6f865121c8248b2e99582"
                                "775228139d9eab70b16a2fb80a80");
}

/* llb.Git("https://github.com/moby/buildkit.git", "v0.11.0"):
 * tests/data/llb/b_git_https.json. */
static void test_git_https_vector(void **state)
{
    const char *params[] = {"remote=https://github.com/moby/buildkit.git",
                            "fragment=v0.11.0", NULL};
    char digest[80];

    (void)state;
    source_digest("git", params, digest, sizeof(digest));
    assert_string_equal(digest, "sha256:e7494a7e38b854d52455d43704ae775b8b2f"
                                "da5fe5dcf73be60acdf65f6c2800");
}

/* llb.Git("git@github.com:moby/buildkit.git", "master"): the SSH form
 * shares the identifier and adds git.mountsshsock (b_git_ssh.json). */
static void test_git_ssh_vector(void **state)
{
    const char *params[] = {"remote=git@github.com:moby/buildkit.git",
                            "ref=master", NULL};
    char digest[80];

    (void)state;
    source_digest("git", params, digest, sizeof(digest));
    assert_string_equal(digest, "sha256:74aadab116221d139c1b3d05a0c5d50fde09"
                                "a172c9977f0569c9e52ee27790cf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_vector),
        cmocka_unit_test(test_http_vector),
        cmocka_unit_test(test_git_https_vector),
        cmocka_unit_test(test_git_ssh_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
