/*
 * libFuzzer target for the git plugin's reader of `git ls-remote` output
 * (what a remote sends back). The input is the ref name, a NUL, then the
 * output. A pick must be a 40- or 64-digit hex name that the output holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/git/git.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    char *ref, *out, sha[65];
    size_t rl, ol;

    if (nul == NULL) {
        return 0;
    }
    rl = (size_t)(nul - data);
    ol = size - rl - 1;
    ref = malloc(rl + 1);
    out = malloc(ol + 1);
    if (ref == NULL || out == NULL) {
        free(ref);
        free(out);
        return 0;
    }
    memcpy(ref, data, rl);
    ref[rl] = '\0';
    memcpy(out, nul + 1, ol);
    out[ol] = '\0';
    if (git_refs_pick(out, ol, ref, sha, sizeof(sha)) == 0) {
        size_t n = strlen(sha);
        if ((n != 40 && n != 64) || strspn(sha, "0123456789abcdef") != n ||
            memmem(out, ol, sha, n) == NULL) {
            abort();
        }
    }
    free(ref);
    free(out);
    return 0;
}
