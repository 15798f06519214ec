/*
 * kiln-example-site: builds a small site from sources and file ops, and
 * writes the marshaled pb.Definition to standard output (or to FILE):
 *
 *     kiln-example-site | kiln build --local site=examples/site -o out/
 *     kiln-example-site https://example.com/lib.js | kiln build ...
 *
 * The site's pages come from the local:// source "site" (only *.html and
 * *.css: notes and drafts stay out), the optional URL from an https://
 * source; a file op lays them out under /srv/www with a VERSION file.
 * Rebuilding changes nothing until a page (or the download) changes.
 *
 * Uses only the public API (<kiln/llb.h>); the sources are made by the
 * plugins' own translate() (kiln_llb_plugin_source()), as `kiln source
 * translate` shows them.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kiln/llb.h>

static const char version[] = "site 1.0\n";

static kiln_llb_state_t *build(kiln_llb_t *b, const char *url)
{
    const char *site_params[] = {"name=site", "include=*.html,*.css", NULL};
    char url_param[2048];
    const char *http_params[] = {url_param, "filename=lib.js", "chmod=0644",
                                 NULL};
    kiln_llb_state_t *pages, *lib = NULL;
    kiln_llb_file_t *fa;

    pages = kiln_llb_custom_name(kiln_llb_plugin_source(b, "local",
                                                        site_params),
                                 "pages");
    if (url != NULL) {
        snprintf(url_param, sizeof(url_param), "url=%s", url);
        lib = kiln_llb_custom_name(
            kiln_llb_plugin_source(
                b, strncmp(url, "http://", 7) == 0 ? "http" : "https",
                http_params),
            "download lib.js");
    }
    fa = kiln_llb_actions(b);
    fa = kiln_llb_mkdir(fa, "/srv/www", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_copy(fa, pages, "/", "/srv/www/",
                       KILN_LLB_COPY_DIR_CONTENTS_ONLY);
    fa = kiln_llb_mkfile(fa, "/srv/www/VERSION", 0644, version,
                         strlen(version), 0);
    if (lib != NULL) {
        fa = kiln_llb_copy(fa, lib, "/lib.js", "/srv/www/vendor/lib.js",
                           KILN_LLB_COPY_CREATE_DEST_PATH);
    }
    return kiln_llb_custom_name(kiln_llb_file(kiln_llb_scratch(b), fa),
                                "lay out /srv/www");
}

int main(int argc, char **argv)
{
    kiln_error_t err = {0};
    kiln_llb_t *b = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [URL]\n", argv[0]);
        return 2;
    }
    if (isatty(STDOUT_FILENO)) {
        fprintf(stderr,
                "%s: refusing to write a binary definition to a terminal; "
                "pipe it into 'kiln build'\n",
                argv[0]);
        return 2;
    }
    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0 ||
        kiln_llb_marshal(b, build(b, argc == 2 ? argv[1] : NULL), &bytes,
                         &len, &err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0],
                err.message[0] ? err.message : "out of memory");
        kiln_llb_free(b);
        return 1;
    }
    if (fwrite(bytes, 1, len, stdout) != len || fflush(stdout) != 0) {
        perror(argv[0]);
        kiln_free(bytes);
        kiln_llb_free(b);
        return 1;
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return 0;
}
