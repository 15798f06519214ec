/*
 * libFuzzer target for the git plugin's remote parser (BuildKit's
 * gitutil.ParseURL rules) and the helpers that keep credentials out of
 * identifiers and messages. The input is one remote string. A parsed
 * remote has an identifier and a remote, the redacted form replaces just
 * the user-info, the http origin keeps no user-info, and a cleaned path is
 * absolute, without "." or ".." elements or a trailing slash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/git/git.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s)
{
    char *p = git_path_clean(s);
    size_t n;

    if (p == NULL) {
        return;
    }
    n = strlen(p);
    if (p[0] != '/' || (n > 1 && p[n - 1] == '/') || strstr(p, "//") ||
        strstr(p, "/./") || strstr(p, "/../") ||
        (n >= 3 && strcmp(p + n - 3, "/..") == 0) ||
        (n >= 2 && strcmp(p + n - 2, "/.") == 0)) {
        abort();
    }
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), *user, *shown, *origin;
    git_url_t u;

    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    if (git_url_parse(s, &u) == 0) {
        if (u.id == NULL || u.remote == NULL) {
            abort();
        }
        git_url_free(&u);
    }
    user = git_url_userinfo(s);
    shown = git_url_redact(s);
    /* The user-info, and only it, becomes "xxxxx". */
    if (shown != NULL &&
        strlen(shown) !=
            strlen(s) - (user ? strlen(user) : 0) + (user ? 5 : 0) &&
        (user != NULL || strcmp(shown, s) != 0)) {
        abort();
    }
    origin = git_url_http_origin(s);
    if (origin != NULL && strchr(origin, '@') != NULL) {
        abort();
    }
    free(origin);
    free(shown);
    free(user);
    (void)git_url_is_local(s);
    (void)git_is_full_sha(s);
    check_clean(s);
    free(s);
    return 0;
}
