/*
 * Helpers shared by the files of core/oci: temporary files renamed into
 * place, and streaming SHA-256.
 */
#ifndef KILN_OCI_LAYOUT_INT_H
#define KILN_OCI_LAYOUT_INT_H

#include <stddef.h>

#include <openssl/evp.h>

#include "internal.h"

/* Creates a temporary file in `dir` (its name written to tmp[0..size));
 * returns its descriptor or a negative KILN_E* code. */
int kiln__oci_tmp_open(const char *dir, char *tmp, size_t size,
                       kiln_error_t *err);

/* Syncs and closes `fd` (always), then renames `tmp` to `final`; on
 * failure `tmp` is removed. */
int kiln__oci_tmp_commit(int fd, const char *tmp, const char *final,
                         kiln_error_t *err);

/* write(2) until done; -1 with errno on failure. */
int kiln__oci_write_all(int fd, const void *data, size_t len);

/* A running SHA-256. new returns NULL when out of memory. */
EVP_MD_CTX *kiln__oci_sha_new(void);
void kiln__oci_sha_update(EVP_MD_CTX *c, const void *data, size_t len);

/* Writes "sha256:<hex>" of everything hashed so far and frees `c`.
 * Returns 0 or KILN_ENOMEM. */
int kiln__oci_sha_final(EVP_MD_CTX *c, char out[KILN_DIGEST_STRLEN + 1]);

#endif
