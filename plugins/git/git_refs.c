/*
 * `git ls-remote` output: which commit a ref name stands for, in the order
 * BuildKit's git source prefers them. Pure: no I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "git.h"

/* Ranks of a match, best first. */
enum {
    RANK_EXACT,
    RANK_HEAD,
    RANK_TAG,
    RANK_SUFFIX,
    RANK_NONE,
};

static int rank_of(const char *name, size_t n, const char *ref)
{
    size_t rl = strlen(ref);

    if (n == rl && memcmp(name, ref, n) == 0) {
        return RANK_EXACT;
    }
    if (n == rl + 11 && memcmp(name, "refs/heads/", 11) == 0 &&
        memcmp(name + 11, ref, rl) == 0) {
        return RANK_HEAD;
    }
    if (n == rl + 10 && memcmp(name, "refs/tags/", 10) == 0 &&
        memcmp(name + 10, ref, rl) == 0) {
        return RANK_TAG;
    }
    if (n > rl + 1 && name[n - rl - 1] == '/' &&
        memcmp(name + n - rl, ref, rl) == 0) {
        return RANK_SUFFIX;
    }
    return RANK_NONE;
}

/* A hex object name of 40 or 64 digits at s, ended by a tab. */
static size_t sha_len(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n &&
           ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
        i++;
    }
    return (i == 40 || i == 64) && i < n && s[i] == '\t' ? i : 0;
}

int git_refs_pick(const char *out, size_t len, const char *ref, char *sha,
                  size_t sha_size)
{
    const char *want = *ref ? ref : "HEAD";
    const char *p = out, *end = out + len;
    int best = RANK_NONE;
    bool best_peeled = false;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), sl, nn;
        const char *name;
        bool peeled = false;
        int rank;

        if (n == 0) {
            p += 1;
            continue;
        }
        if (n > 5 && memcmp(p, "ref: ", 5) == 0) {
            /* --symref: "ref: refs/heads/main\tHEAD" */
            p += n + (nl != NULL);
            continue;
        }
        sl = sha_len(p, n);
        if (sl == 0 || sl + 1 >= n) {
            return -EBADMSG;
        }
        name = p + sl + 1;
        nn = n - sl - 1;
        if (nn > 3 && memcmp(name + nn - 3, "^{}", 3) == 0) {
            peeled = true;
            nn -= 3;
        }
        rank = rank_of(name, nn, want);
        /* A peeled tag beats the tag object at the same rank. */
        if (rank < best ||
            (rank == best && rank != RANK_NONE && peeled && !best_peeled)) {
            if (sl + 1 > sha_size) {
                return -ERANGE;
            }
            memcpy(sha, p, sl);
            sha[sl] = '\0';
            best = rank;
            best_peeled = peeled;
        }
        p += n + (nl != NULL);
    }
    return best == RANK_NONE ? -ENOENT : 0;
}
