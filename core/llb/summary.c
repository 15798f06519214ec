/* Display names of ops, for progress output and error messages. */
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"

static void file_action_summary(kiln__buf_t *b, const Pb__FileAction *a)
{
    switch (a->action_case) {
    case PB__FILE_ACTION__ACTION_COPY:
        kiln__buf_printf(b, "copy %s %s", a->copy->src, a->copy->dest);
        break;
    case PB__FILE_ACTION__ACTION_MKFILE:
        kiln__buf_printf(b, "mkfile %s", a->mkfile->path);
        break;
    case PB__FILE_ACTION__ACTION_MKDIR:
        kiln__buf_printf(b, "mkdir %s", a->mkdir->path);
        break;
    case PB__FILE_ACTION__ACTION_RM:
        kiln__buf_printf(b, "rm %s", a->rm->path);
        break;
    case PB__FILE_ACTION__ACTION_SYMLINK:
        kiln__buf_printf(b, "symlink %s -> %s", a->symlink->newpath,
                         a->symlink->oldpath);
        break;
    default:
        kiln__buf_puts(b, "?");
        break;
    }
}

void kiln__vertex_summary_buf(kiln__buf_t *b, const kiln__vertex_t *v)
{
    const Pb__Op *op = v->op;

    switch (v->kind) {
    case KILN_OP_SOURCE:
        kiln__buf_puts(b, op->source->identifier);
        break;
    case KILN_OP_EXEC:
        for (size_t i = 0; op->exec->meta && i < op->exec->meta->n_args; i++) {
            kiln__buf_printf(b, "%s%s", i ? " " : "", op->exec->meta->args[i]);
        }
        break;
    case KILN_OP_FILE:
        for (size_t i = 0; i < op->file->n_actions; i++) {
            if (i > 0) {
                kiln__buf_puts(b, ", ");
            }
            file_action_summary(b, op->file->actions[i]);
        }
        break;
    case KILN_OP_MERGE:
        kiln__buf_printf(b, "merge of %zu", op->merge->n_inputs);
        break;
    case KILN_OP_PASSTHROUGH:
        kiln__buf_printf(b, "passthrough %s", op->passthrough->id);
        break;
    default:
        kiln__buf_puts(b, kiln__op_kind_name(v->kind));
        break;
    }
}

char *kiln__vertex_summary(const kiln__vertex_t *v)
{
    kiln__buf_t b = KILN_BUF_INIT;

    if (v->name != NULL) {
        return strdup(v->name);
    }
    kiln__vertex_summary_buf(&b, v);
    if (!kiln__buf_ok(&b) || !kiln__buf_reserve(&b, 0)) {
        kiln__buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}
