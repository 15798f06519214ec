/*
 * libFuzzer target for the exec helper's input: the spec kiln-run decodes
 * from its socket (core/exec/spec.c), and the rootfs's /etc/passwd and
 * /etc/group it reads for Meta.user (core/exec/user.c), both from outside
 * the helper's trust. The input is decoded as a spec; a spec that decodes
 * must encode back to bytes that decode to the same spec. The input split
 * at its first two NUL bytes is also (user, passwd, group).
 */
#include <stdlib.h>
#include <string.h>

#include "exec/spec.h"
#include "exec/user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_spec(const kiln__exec_spec_t *a, const kiln__exec_spec_t *b)
{
    if (a->n_args != b->n_args || a->n_env != b->n_env ||
        a->n_mounts != b->n_mounts || a->n_ulimits != b->n_ulimits ||
        a->net_none != b->net_none || strcmp(a->staging, b->staging) != 0) {
        abort();
    }
    for (size_t i = 0; i < a->n_args; i++) {
        if (strcmp(a->args[i], b->args[i]) != 0) {
            abort();
        }
    }
    for (size_t i = 0; i < a->n_mounts; i++) {
        const kiln__exec_mount_t *x = &a->mounts[i], *y = &b->mounts[i];

        if (x->type != y->type || strcmp(x->dest, y->dest) != 0 ||
            x->len != y->len || x->mode != y->mode ||
            (x->len > 0 && memcmp(x->data, y->data, x->len) != 0)) {
            abort();
        }
    }
}

static void fuzz_spec(const uint8_t *data, size_t size)
{
    kiln__exec_spec_t s, again;
    kiln__buf_t b = KILN_BUF_INIT;
    kiln_error_t err = {0};

    if (kiln__exec_spec_decode(data, size, &s, &err) != 0) {
        if (err.message[0] == '\0') {
            abort();
        }
        kiln__exec_spec_clear(&s);
        return;
    }
    kiln__exec_spec_encode(&s, &b);
    if (!kiln__buf_ok(&b) ||
        kiln__exec_spec_decode(b.data, b.len, &again, &err) != 0) {
        abort();
    }
    same_spec(&s, &again);
    kiln__exec_spec_clear(&again);
    kiln__exec_spec_clear(&s);
    kiln__buf_free(&b);
}

static void fuzz_user(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 3);
    const char *user, *passwd, *group;
    kiln__exec_user_t u;
    kiln_error_t err = {0};
    char *nul;

    if (text == NULL) {
        return;
    }
    memcpy(text, data, size);
    text[size] = text[size + 1] = text[size + 2] = '\0';
    user = text;
    passwd = user + strlen(user) + 1;
    nul = memchr(passwd, '\0', (size_t)(text + size + 2 - passwd));
    group = nul != NULL ? nul + 1 : text + size + 2;
    if (kiln__exec_user_resolve(user, passwd, group, &u, &err) == 0) {
        if (u.n_groups > KILN__EXEC_MAX_GROUPS || u.home[0] == '\0') {
            abort();
        }
    } else if (err.message[0] == '\0') {
        abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec(data, size);
    fuzz_user(data, size);
    return 0;
}
