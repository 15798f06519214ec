/*
 * The git plugin's transports besides git://, through the public API: a
 * local repository (file://, a path), smart HTTP (git http-backend behind
 * nginx: a token-protected area and one that speaks protocol v0 only) and
 * SSH (sshd with an ssh-agent's key and git.knownsshhosts), and the
 * credentials that must never show (git_build.h).
 */
#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "net_fixture.h"

#include "git_build.h"

/* A local repository named in git.fullurl: the file protocol, allowed for
 * it alone. */
static void test_local_remote(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    kiln_llb_state_t *st;
    kiln_llb_t *b;
    struct result r;
    char id[256], url[256];

    snprintf(id, sizeof(id), "git://file://%s/main.git#v1", srv.srv);
    snprintf(url, sizeof(url), "file://%s/main.git", srv.srv);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
        st = kiln_llb_source(b, id);
        st = kiln_llb_source_attr(st, "git.fullurl", i == 0 ? url : url + 7);
        def = marshal(b, st);
        build_ok(f, def, &r);
        expect_text(f, "README", "one");
        kiln_definition_free(def);
    }
}

/* ---- HTTP ---- */

static void test_http_token(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    char remote[128], secret[256], entry[300], wrong[300];
    const char *secrets[] = {entry, NULL};
    const char *bad[] = {wrong, NULL};
    struct result r;

    NEED_HTTP();
    snprintf(remote, sizeof(remote), "remote=http://127.0.0.1:%d/git/main.git",
             srv.http_port);
    snprintf(secret, sizeof(secret), "%s/token", srv.dir);
    assert_int_equal(gitf_sh("printf %s >'%s'", GITF_TOKEN, secret), 0);
    snprintf(entry, sizeof(entry), "GIT_AUTH_TOKEN=%s", secret);
    snprintf(wrong, sizeof(wrong), "GIT_AUTH_TOKEN=%s/make-repos.sh", srv.dir);

    def = git_def(remote, "ref=main", NULL);
    run(f, def, secrets, &r);
    if (r.rc != 0) {
        fail_msg("%s\n%s", r.err.message, r.log);
    }
    expect_text(f, "README", "two");
    if (strstr(r.log, GITF_TOKEN) != NULL) {
        fail_msg("the token is in the log:\n%s", r.log);
    }
    /* Without the token, or with a wrong one, the server refuses. */
    build_fails(f, def, NULL, "authentication failed", "http://127.0.0.1",
                (const char *)NULL);
    build_fails(f, def, bad, "authentication failed", (const char *)NULL);
    kiln_definition_free(def);
}

/* A server that serves no unadvertised commit (protocol v0): a commit no
 * ref points at comes with a full fetch. */
static void test_http_unadvertised(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128], ref[96];

    NEED_HTTP();
    snprintf(remote, sizeof(remote), "remote=http://127.0.0.1:%d/pub/main.git",
             srv.http_port);
    snprintf(ref, sizeof(ref), "ref=%s", zero);
    def = git_def(remote, ref, NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "zero");
    if (strstr(r.log, "does not serve commit") == NULL) {
        fail_msg("no fallback to a full fetch:\n%s", r.log);
    }
    kiln_definition_free(def);
}

/* User and password of a URL never reach the identifier or a message. */
static void test_credentials_hidden(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};
    struct result r;
    char remote[160];
    const char *params[] = {remote, "ref=nope", NULL};

    NEED_HTTP();
    snprintf(remote, sizeof(remote),
             "remote=http://x-access-token:%s@127.0.0.1:%d/git/main.git",
             GITF_TOKEN, srv.http_port);
    assert_int_equal(kiln_source_translate(NULL, "git", params, &t, &err), 0);
    assert_null(strstr(t->identifier, GITF_TOKEN));
    kiln_translated_free(t);

    def = git_def(remote, "ref=nope", NULL);
    run(f, def, NULL, &r);
    assert_int_not_equal(r.rc, 0);
    printf("# failed as expected: %s\n", r.err.message);
    assert_non_null(strstr(r.err.message, "ref 'nope' not found in "
                                          "http://xxxxx@127.0.0.1"));
    assert_null(strstr(r.err.message, GITF_TOKEN));
    assert_null(strstr(r.log, GITF_TOKEN));
    kiln_definition_free(def);

    /* A short password is hidden as well, and only it. */
    snprintf(remote, sizeof(remote),
             "remote=http://ab:cd@127.0.0.1:%d/git/main.git", srv.http_port);
    def = git_def(remote, "ref=main", NULL);
    run(f, def, NULL, &r);
    assert_int_not_equal(r.rc, 0);
    printf("# failed as expected: %s\n", r.err.message);
    assert_non_null(strstr(r.err.message, "authentication failed"));
    assert_null(strstr(r.err.message, "ab:cd@"));
    assert_null(strstr(r.log, "ab:cd@"));
    assert_non_null(strstr(r.log, "git ls-remote http://xxxxx@127.0.0.1"));
    kiln_definition_free(def);
    snprintf(remote, sizeof(remote),
             "remote=http://x-access-token:%s@127.0.0.1:%d/git/main.git",
             GITF_TOKEN, srv.http_port);

    /* The URL's credentials do authenticate. */
    def = git_def(remote, "ref=main", NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    assert_null(strstr(r.log, GITF_TOKEN));
    kiln_definition_free(def);
}

/* ---- SSH ---- */

/* ssh:// through sshd, the host checked against git.knownsshhosts, the
 * key from the agent of kiln's environment. */
static void test_ssh(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[256], known[600], wrong[600];

    if (srv.ssh_port == 0) {
        skip();
    }
    snprintf(remote, sizeof(remote), "remote=ssh://%s@127.0.0.1:%d%s/main.git",
             getpwuid(geteuid())->pw_name, srv.ssh_port, srv.srv);
    snprintf(known, sizeof(known), "knownsshhosts=%s", srv.known_host);
    def = git_def(remote, "ref=main", known, NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    kiln_definition_free(def);

    /* An unknown host, or one whose key is not the one listed. */
    def = git_def(remote, "ref=main", NULL);
    build_fails(f, def, NULL, "host key verification failed",
                "git.knownsshhosts", (const char *)NULL);
    kiln_definition_free(def);
    snprintf(wrong, sizeof(wrong),
             "knownsshhosts=[127.0.0.1]:%d ssh-ed25519 "
             "AAAAC3NzaC1lZDI1NTE5AAAAIA0SXsVJA3hZrdBc/qsOJg1dHjLfZRh1b3wMGtuo"
             "p3B5",
             srv.ssh_port);
    def = git_def(remote, "ref=main", wrong, NULL);
    build_fails(f, def, NULL, "git ls-remote ssh://",
                "host key verification failed", (const char *)NULL);
    kiln_definition_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_unadvertised, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_credentials_hidden, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ssh, setup, teardown),
    };

    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
