/*
 * kiln-example-app: a build on an image, with exec steps, a cache mount and
 * file ops, written as a marshaled pb.Definition to standard output:
 *
 *     D=$(kiln-mkbase build/base)
 *     kiln-example-app "$D" | kiln build --oci-layout base=build/base \
 *         --local src=examples/app -o out/
 *
 * The base is oci-layout://busybox@D (store "base": the busybox image
 * kiln-mkbase writes). Step one runs busybox's shell over the sources
 * mounted read-only at /src: it checks them, keeps a checksum list in
 * /out and counts its runs in a cache mount (/cache, kept between builds,
 * never part of a result). Step two makes a tarball of /out with tar and
 * gzip from the image. A file op lays the result out under /dist with a
 * VERSION file. Rebuilding runs nothing until a source changes.
 *
 * Uses only the public API (<kiln/llb.h>).
 */
#include <stdio.h>
#include <string.h>

#include <kiln/llb.h>

static const char version[] = "app 1.0\n";

static kiln_llb_state_t *build(kiln_llb_t *b, const char *digest)
{
    char ref[128];
    const char *base_params[] = {ref, "store=base", NULL};
    const char *src_params[] = {"name=src", NULL};
    const char *check[] = {
        "/bin/sh", "-ec",
        "mkdir -p /out\n"
        "cd /src\n"
        "for f in *; do test -s \"$f\" || { echo \"empty: $f\"; exit 1; }; "
        "done\n"
        "sha256sum * > /out/SHA256SUMS\n"
        "cp -r /src /out/src\n"
        "echo run >> /cache/runs\n"
        "echo \"checked $(ls | wc -l) files (run $(wc -l < /cache/runs) of "
        "this step)\"\n",
        NULL};
    const char *pack[] = {"/bin/sh", "-ec",
                          "mkdir -p /pkg && cd /out && "
                          "tar -cf - . | gzip -9 > /pkg/app.tar.gz && "
                          "ls -l /pkg",
                          NULL};
    kiln_llb_state_t *base, *src, *checked, *packed;
    kiln_llb_exec_t *ex;
    kiln_llb_file_t *fa;

    snprintf(ref, sizeof(ref), "ref=busybox@%s", digest);
    base = kiln_llb_custom_name(
        kiln_llb_plugin_source(b, "oci-layout", base_params), "busybox base");
    src = kiln_llb_custom_name(kiln_llb_plugin_source(b, "local", src_params),
                               "sources");

    ex = kiln_llb_exec(base, check);
    ex = kiln_llb_exec_mount(ex, "/src", src, NULL, KILN_LLB_MOUNT_READONLY);
    ex = kiln_llb_exec_cache(ex, "/cache", kiln_llb_scratch(b), "app-runs",
                             KILN_LLB_CACHE_LOCKED, 0);
    ex = kiln_llb_exec_env(ex, "PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    checked = kiln_llb_custom_name(kiln_llb_exec_root(ex), "check sources");

    ex = kiln_llb_exec(checked, pack);
    ex = kiln_llb_exec_env(ex, "PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    packed = kiln_llb_custom_name(kiln_llb_exec_root(ex), "package");

    fa = kiln_llb_actions(b);
    fa = kiln_llb_mkdir(fa, "/dist", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_copy(fa, packed, "/pkg/app.tar.gz", "/dist/app.tar.gz", 0);
    fa = kiln_llb_copy(fa, packed, "/out/SHA256SUMS", "/dist/SHA256SUMS", 0);
    fa = kiln_llb_mkfile(fa, "/dist/VERSION", 0644, version, strlen(version),
                         0);
    return kiln_llb_custom_name(kiln_llb_file(kiln_llb_scratch(b), fa),
                                "lay out /dist");
}

int main(int argc, char **argv)
{
    kiln_llb_t *b;
    kiln_error_t err = {0};
    FILE *out = stdout;
    int rc = 0;

    if (argc < 2 || argc > 3 || strncmp(argv[1], "sha256:", 7) != 0) {
        fprintf(stderr,
                "usage: %s DIGEST [FILE]\n"
                "DIGEST is the busybox base's (what kiln-mkbase prints)\n",
                argv[0]);
        return 2;
    }
    if (argc == 3 && (out = fopen(argv[2], "wb")) == NULL) {
        perror(argv[2]);
        return 1;
    }
    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0) {
        return 1;
    }
    if (kiln_llb_write(b, build(b, argv[1]), out, &err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err.message);
        rc = 1;
    }
    kiln_llb_free(b);
    if (out != stdout && fclose(out) != 0) {
        rc = 1;
    }
    return rc;
}
