/* dump-llb: JSON and Graphviz output of a definition. */
#include "llb/graph.h"

int kiln_definition_dump_json(const kiln_definition_t *def, FILE *out,
                              kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOTSUP, "dump: being written");
}

int kiln_definition_dump_dot(const kiln_definition_t *def, FILE *out,
                             kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOTSUP, "dump: being written");
}
