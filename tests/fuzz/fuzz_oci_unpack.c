/*
 * libFuzzer target for OCI layer unpacking (core/oci/unpack.c): the input
 * is a layer blob, a tar plain or compressed. Whatever it holds, unpacking
 * either succeeds or fails with a message, and nothing is ever written
 * outside the layer directory: a canary directory beside it must stay
 * empty, and the fuzzer's top directory must hold nothing else.
 */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[] = "/tmp/kiln-fuzz-oci-unpack-XXXXXX";
static char canary[512];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP) {
        chmod(p, 0700);
        return rmdir(p);
    }
    if (flag == FTW_DNR) {
        /* A directory without read permission: open it up, retry. */
        chmod(p, 0700);
        return nftw(p, rm_entry, 32, FTW_DEPTH | FTW_PHYS) == 0 ? rmdir(p) : -1;
    }
    return unlink(p);
}

/* Number of entries in `path` other than those named `allowed`. */
static int count_others(const char *path, const char *allowed1,
                        const char *allowed2)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            (allowed1 == NULL || strcmp(e->d_name, allowed1) != 0) &&
            (allowed2 == NULL || strcmp(e->d_name, allowed2) != 0)) {
            n++;
        }
    }
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[600];
    kiln_oci_unpack_opts_t opts = {64u << 20, NULL, NULL};
    kiln_oci_unpack_result_t res;
    kiln_error_t err = {0};
    int rc;

    if (canary[0] == '\0') {
        if (mkdtemp(top) == NULL) {
            abort();
        }
        snprintf(canary, sizeof(canary), "%s/canary", top);
        mkdir(canary, 0755);
    }
    snprintf(out, sizeof(out), "%s/out", top);
    nftw(out, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
    if (mkdir(out, 0755) < 0) {
        abort();
    }
    rc = kiln__oci_unpack_mem(data, size, out, &opts, &res, &err);
    if (rc < 0 && err.message[0] == '\0') {
        fprintf(stderr, "error %d without a message\n", rc);
        abort();
    }
    if (rc > 0) {
        fprintf(stderr, "positive return %d\n", rc);
        abort();
    }
    if (count_others(canary, NULL, NULL) != 0 ||
        count_others(top, "out", "canary") != 0) {
        fprintf(stderr, "unpacking wrote outside its layer\n");
        abort();
    }
    return 0;
}
