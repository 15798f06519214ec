/*
 * libFuzzer target for the registry client's parsers of untrusted text:
 * WWW-Authenticate challenges (from any registry), normalized image
 * references, token endpoint responses and base64 credentials. The input
 * is split at its first two NUL bytes into the three strings (challenge,
 * reference, then a body read both as a token response and as base64).
 */
#include <stdlib.h>
#include <string.h>

#include "oci/auth.h"
#include "oci/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses one challenge; checks what a success must hold. */
static void fuzz_challenge(const char *s, size_t len)
{
    kiln__oci_challenge_t c = {0};
    kiln_error_t err = {0};

    if (kiln__oci_challenge_parse(s, len, &c, &err) == 0) {
        if (c.realm != NULL && strlen(c.realm) > len) {
            abort();
        }
        kiln__oci_challenge_clear(&c);
    } else if (err.message[0] == '\0') {
        abort();
    }
}

/* A parsed reference must format back to the input. */
static void fuzz_ref(const char *s)
{
    kiln__oci_ref_t r = {0};
    kiln_error_t err = {0};
    char buf[1024];

    if (kiln__oci_ref_parse(s, &r, &err) == 0) {
        if (r.tag == NULL && r.digest == NULL) {
            abort();
        }
        if (strlen(s) < sizeof(buf) &&
            strcmp(kiln__oci_ref_format(&r, buf, sizeof(buf)), s) != 0) {
            abort();
        }
        kiln__oci_ref_clear(&r);
    } else if (err.message[0] == '\0') {
        abort();
    }
}

/* Normalizing a normalized reference changes nothing. (The registry
 * client's parser may still refuse what Docker's grammar allows, such as a
 * port past 65535, but with a message.) */
static void fuzz_normalize(const char *s)
{
    kiln__oci_ref_t r = {0};
    kiln_error_t err = {0};
    char *norm = NULL, *again = NULL;

    if (kiln__oci_ref_normalize(s, &norm, &err) != 0) {
        if (err.message[0] == '\0' || norm != NULL) {
            abort();
        }
        return;
    }
    if (kiln__oci_ref_parse(norm, &r, &err) != 0 && err.message[0] == '\0') {
        abort();
    }
    if (kiln__oci_ref_normalize(norm, &again, &err) != 0 ||
        strcmp(norm, again) != 0) {
        abort();
    }
    kiln__oci_ref_clear(&r);
    free(norm);
    free(again);
}

/* Token responses and base64: a success must be sane. */
static void fuzz_body(const char *s, size_t len)
{
    kiln_error_t err = {0};
    char *token = NULL;
    long exp = 0;
    uint8_t *dec = NULL;
    size_t n = 0;

    if (kiln__oci_token_parse(s, len, &token, &exp, &err) == 0) {
        if (token == NULL || exp <= 0) {
            abort();
        }
        free(token);
    }
    if (kiln__oci_base64_decode(s, len, &dec, &n, &err) == 0) {
        if (n > len) {
            abort();
        }
        free(dec);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 3);
    const char *parts[3];
    size_t lens[3], off = 0;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = text[size + 1] = text[size + 2] = '\0';
    for (int i = 0; i < 3; i++) {
        parts[i] = text + off;
        lens[i] = strlen(parts[i]);
        off += lens[i] + (off + lens[i] < size ? 1 : 0);
        if (off > size) {
            off = size;
        }
    }
    /* The challenge parser takes a length: it sees the whole input, NUL
     * bytes included, and the first part alone. */
    fuzz_challenge(text, size);
    fuzz_challenge(parts[0], lens[0]);
    fuzz_ref(parts[1]);
    fuzz_normalize(parts[1]);
    fuzz_body(parts[2], lens[2]);
    free(text);
    return 0;
}
