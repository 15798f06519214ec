/*
 * The decoded form of an LLB Definition: vertices keyed by digest with their
 * exact bytes, decoded op, metadata and resolved edges. Built and validated
 * by kiln_definition_load() (decode.c); read by the dumpers and the solver.
 */
#ifndef KILN_LLB_GRAPH_H
#define KILN_LLB_GRAPH_H

#include "internal.h"
#include "ops.pb-c.h"

/* Limits past which a definition is refused as absurd. */
#define KILN_DEFINITION_MAX_OPS 1000000u
#define KILN_OP_MAX_INPUTS      65536u
#define KILN_PB_MAX_DEPTH       32u

enum kiln__op_kind {
    KILN_OP_TERMINAL = 0, /* inputs only: the definition's result */
    KILN_OP_EXEC,
    KILN_OP_SOURCE,
    KILN_OP_FILE,
    KILN_OP_BUILD,
    KILN_OP_MERGE,
    KILN_OP_DIFF,
    KILN_OP_PASSTHROUGH,
};

typedef struct kiln__vertex kiln__vertex_t;

struct kiln__vertex {
    size_t pos;         /* position among the distinct ops, def order */
    const uint8_t *raw; /* exact op bytes, owned by the definition */
    size_t raw_len;
    char digest[KILN_DIGEST_STRLEN + 1];
    Pb__Op *op;                 /* decoded op */
    const Pb__OpMetadata *meta; /* NULL if the definition has none */
    const char *name;           /* llb.customname, or NULL */
    enum kiln__op_kind kind;
    size_t n_outputs;
    kiln__vertex_t **inputs; /* op->n_inputs resolved edges */
};

struct kiln_definition {
    Pb__Definition *pb; /* owns the op bytes (pb->def[i].data) */
    size_t n_vertices;
    kiln__vertex_t *vertices; /* distinct ops in def order */
    size_t table_mask;        /* digest -> vertex index + 1, open addressing */
    size_t *table;
    kiln__vertex_t *terminal; /* NULL only for an empty definition */
};

/* "exec", "source", ... or "terminal". */
const char *kiln__op_kind_name(enum kiln__op_kind kind);

/* Appends a one-line description of the op (identifier, arguments, file
 * actions) to b; kiln__vertex_summary() returns the custom name if there is
 * one, else that line, malloc'ed (NULL when out of memory). */
void kiln__vertex_summary_buf(kiln__buf_t *b, const kiln__vertex_t *v);
char *kiln__vertex_summary(const kiln__vertex_t *v);

/* The vertex with this digest, or NULL. */
kiln__vertex_t *kiln__definition_find(const kiln_definition_t *def,
                                      const char *digest);

/*
 * Fails with KILN_EINVAL if the vertices' input edges form a cycle. A cycle
 * needs a SHA-256 fixed point, so only hand-wired graphs can have one; the
 * solver's walks rely on the check all the same.
 */
int kiln__graph_check_acyclic(kiln_definition_t *def, kiln_error_t *err);

/*
 * Checks that data[0..len) is well-formed protobuf for `desc`, recursing
 * into sub-messages up to KILN_PB_MAX_DEPTH levels and checking that every
 * string field holds valid UTF-8. On failure, writes a message naming the
 * field and byte offset into `err` and returns KILN_EBADMSG.
 */
int kiln__pb_check(const uint8_t *data, size_t len,
                   const ProtobufCMessageDescriptor *desc, kiln_error_t *err);

#endif
