/* Helpers shared by the unit tests. */
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The LLB vectors made by BuildKit's Go client, in tests/data/llb. */
extern const char *const kt_vectors[];
extern const size_t kt_n_vectors;

/* Reads tests/data/<rel> (KILN_TEST_DATA) into a malloc'ed buffer, NUL
 * terminated; fails the test if it cannot. */
uint8_t *kt_read_data(const char *rel, size_t *len);

/* Lines of a text buffer: splits in place, returns the count. */
size_t kt_split_lines(char *text, char ***lines);

/* Hex dump of the first difference between two buffers, for messages. */
void kt_assert_bytes_equal(const uint8_t *got, size_t got_len,
                           const uint8_t *want, size_t want_len);

#endif
