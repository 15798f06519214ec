/*
 * `kiln build --output`: buildctl's CSV form, "type=local,dest=DIR",
 * "type=tar,dest=FILE" or "type=tar,dest=-", and buildx's shorthand: a bare
 * DIR for local, a bare "-" for a tar stream on standard output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "build.h"

/*
 * Reads one CSV field at *p (quoted with "..." and "" for a quote inside,
 * as Go's encoding/csv reads buildctl's options) into a new string, and
 * moves *p past it and its comma. Returns NULL on a malformed quote or out
 * of memory, with *bad set for the former.
 */
static char *csv_field(const char **p, bool *bad)
{
    const char *s = *p;
    size_t len = strlen(s);
    char *out = malloc(len + 1), *o = out;

    if (out == NULL) {
        return NULL;
    }
    if (*s == '"') {
        for (s++;; s++) {
            if (*s == '\0') {
                *bad = true;
                free(out);
                return NULL;
            }
            if (*s == '"' && s[1] == '"') {
                *o++ = '"';
                s++;
            } else if (*s == '"') {
                s++;
                break;
            } else {
                *o++ = *s;
            }
        }
        if (*s != ',' && *s != '\0') {
            *bad = true;
            free(out);
            return NULL;
        }
    } else {
        while (*s != ',' && *s != '\0') {
            *o++ = *s++;
        }
    }
    *o = '\0';
    *p = *s == ',' ? s + 1 : s;
    return out;
}

static int set_type(struct kiln_cli_output *o, const char *value, char *msg,
                    size_t len)
{
    if (o->type != KILN_OUTPUT_NONE) {
        snprintf(msg, len, "--output: key 'type' given twice");
        return -1;
    }
    if (strcmp(value, "local") == 0) {
        o->type = KILN_OUTPUT_LOCAL;
    } else if (strcmp(value, "tar") == 0) {
        o->type = KILN_OUTPUT_TAR;
    } else {
        snprintf(msg, len,
                 "--output: unknown type '%s' (kiln exports local and tar)",
                 value);
        return -1;
    }
    return 0;
}

/* One "key=value" field. Takes nothing; copies what it keeps. */
static int set_field(struct kiln_cli_output *o, const char *field, char *msg,
                     size_t len)
{
    const char *eq = strchr(field, '=');
    size_t klen = eq != NULL ? (size_t)(eq - field) : 0;

    if (eq == NULL) {
        snprintf(msg, len, "--output: '%s' is not key=value", field);
        return -1;
    }
    if (klen == 4 && strncasecmp(field, "type", 4) == 0) {
        return set_type(o, eq + 1, msg, len);
    }
    if (klen == 4 && strncasecmp(field, "dest", 4) == 0) {
        if (o->dest != NULL) {
            snprintf(msg, len, "--output: key 'dest' given twice");
            return -1;
        }
        o->dest = strdup(eq + 1);
        if (o->dest == NULL) {
            snprintf(msg, len, "out of memory");
            return -1;
        }
        return 0;
    }
    snprintf(msg, len, "--output: unknown key '%.*s' (known: type, dest)",
             (int)klen, field);
    return -1;
}

/* What the fields say together makes sense. */
static int check_output(struct kiln_cli_output *o, char *msg, size_t len)
{
    if (o->type == KILN_OUTPUT_NONE) {
        snprintf(msg, len,
                 "--output: missing type= (type=local,dest=DIR or "
                 "type=tar,dest=FILE)");
        return -1;
    }
    if (o->type == KILN_OUTPUT_LOCAL &&
        (o->dest == NULL || o->dest[0] == '\0' || strcmp(o->dest, "-") == 0)) {
        snprintf(msg, len, "--output: type=local needs dest=DIR");
        return -1;
    }
    if (o->type == KILN_OUTPUT_TAR && (o->dest == NULL || o->dest[0] == '\0')) {
        snprintf(msg, len, "--output: type=tar needs dest=FILE or dest=-");
        return -1;
    }
    if (o->type == KILN_OUTPUT_TAR && strcmp(o->dest, "-") == 0) {
        o->to_stdout = true;
    }
    return 0;
}

int kiln_cli_parse_output(const char *spec, struct kiln_cli_output *o,
                          char *msg, size_t len)
{
    const char *p = spec;

    memset(o, 0, sizeof(*o));
    if (strchr(spec, '=') == NULL && strchr(spec, ',') == NULL &&
        spec[0] != '\0') {
        /* buildx's shorthand: "-o DIR", "-o -". */
        o->type = strcmp(spec, "-") == 0 ? KILN_OUTPUT_TAR : KILN_OUTPUT_LOCAL;
        o->dest = strdup(spec);
        if (o->dest == NULL) {
            snprintf(msg, len, "out of memory");
            return -1;
        }
        return check_output(o, msg, len);
    }
    while (*p != '\0') {
        bool bad = false;
        char *field = csv_field(&p, &bad);
        int rc;

        if (field == NULL) {
            snprintf(msg, len, "%s",
                     bad ? "--output: a quoted field is not closed"
                         : "out of memory");
            return -1;
        }
        rc = set_field(o, field, msg, len);
        free(field);
        if (rc < 0) {
            return -1;
        }
    }
    return check_output(o, msg, len);
}

void kiln_cli_output_free(struct kiln_cli_output *o)
{
    free(o->dest);
    o->dest = NULL;
}
