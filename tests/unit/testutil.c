#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

const char *const kt_vectors[] = {
    "a_image", "b_git_https", "b_git_ssh", "c_local",
    "d_http",  "e_run_file",  "f_diamond", "g_chain200",
};
const size_t kt_n_vectors = sizeof(kt_vectors) / sizeof(kt_vectors[0]);

uint8_t *kt_read_data(const char *rel, size_t *len)
{
    const char *dir = getenv("KILN_TEST_DATA");
    char path[4096];
    uint8_t *buf;
    FILE *f;
    long n;

    if (dir == NULL) {
        fail_msg("KILN_TEST_DATA is not set (run through meson test)");
    }
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

size_t kt_split_lines(char *text, char ***lines)
{
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof(*v));
    char *save = NULL;

    for (char *l = strtok_r(text, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
        }
        v[n++] = l;
    }
    *lines = v;
    return n;
}

void kt_assert_bytes_equal(const uint8_t *got, size_t got_len,
                           const uint8_t *want, size_t want_len)
{
    size_t n = got_len < want_len ? got_len : want_len;

    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fail_msg("bytes differ at offset %zu: got %02x, want %02x "
                     "(lengths %zu, %zu)",
                     i, got[i], want[i], got_len, want_len);
        }
    }
    if (got_len != want_len) {
        fail_msg("lengths differ: got %zu, want %zu (equal up to %zu)", got_len,
                 want_len, n);
    }
}
