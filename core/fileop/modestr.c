/*
 * chmod(1) mode strings for FileActionCopy.modeStr, as BuildKit applies
 * them: tonistiigi/dchapes-mode (a Go port of BSD setmode(3)/getmode(3)),
 * parsed with a umask of 0. "755", "+x", "u+rw,g-w", "go=u-w", "a+X".
 */
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"

#define IS_UID   04000
#define IS_GID   02000
#define IS_TXT   01000
#define I_RWXU   00700
#define I_RWXG   00070
#define I_RWXO   00007
#define STD_BITS (IS_UID | IS_GID | I_RWXU | I_RWXG | I_RWXO)

enum { CMD2_CLR = 1, CMD2_SET = 2, CMD2_G = 4, CMD2_O = 8, CMD2_U = 16 };

typedef struct bitcmd {
    char cmd;
    unsigned cmd2;
    unsigned bits;
} bitcmd_t;

struct kiln__fo_modeset {
    bitcmd_t *cmds;
    size_t n;
    size_t cap;
};

static int push(kiln__fo_modeset_t *m, bitcmd_t c)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        bitcmd_t *n = realloc(m->cmds, cap * sizeof(*n));
        if (n == NULL) {
            return KILN_ENOMEM;
        }
        m->cmds = n;
        m->cap = cap;
    }
    m->cmds[m->n++] = c;
    return 0;
}

/* setmode's addcmd() with the mask of a zero umask. */
static int addcmd(kiln__fo_modeset_t *m, char op, unsigned who, unsigned arg)
{
    const unsigned mask = 0xffff;
    bitcmd_t c = {0, 0, 0};

    switch (op) {
    case '=':
        c.cmd = '-';
        c.bits = who != 0 ? who : STD_BITS;
        if (push(m, c) < 0) {
            return KILN_ENOMEM;
        }
        op = '+';
        /* fall through */
    case '+':
    case '-':
    case 'X':
        c.cmd = op;
        c.bits = (who != 0 ? who : mask) & arg;
        break;
    default: /* 'u', 'g', 'o': copy that class's bits */
        c.cmd = op;
        if (who != 0) {
            c.cmd2 |= (who & 0400) ? CMD2_U : 0;
            c.cmd2 |= (who & 0040) ? CMD2_G : 0;
            c.cmd2 |= (who & 0004) ? CMD2_O : 0;
            c.bits = 0xffff;
        } else {
            c.cmd2 = CMD2_U | CMD2_G | CMD2_O;
            c.bits = mask;
        }
        c.cmd2 |= arg == '+'   ? CMD2_SET
                  : arg == '-' ? CMD2_CLR
                               : CMD2_SET | CMD2_CLR;
        break;
    }
    return push(m, c);
}

/* An octal mode: "=" of exactly those bits. */
static int parse_octal(kiln__fo_modeset_t *m, const char *s)
{
    unsigned long v = 0;

    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '7') {
            return KILN_EINVAL;
        }
        v = v * 8 + (unsigned long)(*p - '0');
        if (v > 077777) {
            return KILN_EINVAL;
        }
    }
    if ((v & ~(unsigned long)(STD_BITS | IS_TXT)) != 0) {
        return KILN_EINVAL;
    }
    return addcmd(m, '=', STD_BITS | IS_TXT, (unsigned)v);
}

typedef struct clause {
    char op;
    unsigned who;
    unsigned perm;
    unsigned perm_x;
    bool *equal_done;
} clause_t;

/* Flushes pending permission bits of a clause (the default: case). */
static int flush(kiln__fo_modeset_t *m, clause_t *c)
{
    if (c->perm != 0 || (c->op == '=' && !*c->equal_done)) {
        if (c->op == '=') {
            *c->equal_done = true;
        }
        if (addcmd(m, c->op, c->who, c->perm) < 0) {
            return KILN_ENOMEM;
        }
        c->perm = 0;
    }
    if (c->perm_x != 0) {
        if (addcmd(m, 'X', c->who, c->perm_x) < 0) {
            return KILN_ENOMEM;
        }
        c->perm_x = 0;
    }
    return 0;
}

/* One permission letter after an operator; *end at the first other. */
static int perm_char(kiln__fo_modeset_t *m, clause_t *c, char b, bool *end)
{
    bool not_only_o = c->who == 0 || (c->who & ~(unsigned)I_RWXO) != 0;

    *end = false;
    switch (b) {
    case 'r':
        c->perm |= 0444;
        return 0;
    case 'w':
        c->perm |= 0222;
        return 0;
    case 'x':
        c->perm |= 0111;
        return 0;
    case 'X':
        if (c->op == '+') {
            c->perm_x = 0111;
        }
        return 0;
    case 's':
        c->perm |= not_only_o ? IS_UID | IS_GID : 0;
        return 0;
    case 't':
        if (not_only_o) {
            c->who |= IS_TXT;
            c->perm |= IS_TXT;
        }
        return 0;
    case 'u':
    case 'g':
    case 'o':
        if (c->perm != 0 && addcmd(m, c->op, c->who, c->perm) < 0) {
            return KILN_ENOMEM;
        }
        c->perm = 0;
        if (c->op == '=') {
            *c->equal_done = true;
        }
        if (c->perm_x != 0 && addcmd(m, 'X', c->who, c->perm_x) < 0) {
            return KILN_ENOMEM;
        }
        c->perm_x = 0;
        return addcmd(m, b, c->who, (unsigned char)c->op);
    default:
        *end = true;
        return flush(m, c);
    }
}

/* Parses "op perms" after the who letters; *s moves past it. */
static int parse_op(kiln__fo_modeset_t *m, const char **s, unsigned who,
                    bool *equal_done)
{
    clause_t c = {0, who, 0, 0, equal_done};
    const char *p = *s;
    bool end = false;
    int rc;

    if (*p != '+' && *p != '-' && *p != '=') {
        return KILN_EINVAL;
    }
    c.op = *p++;
    if (c.op == '=') {
        *equal_done = false;
    }
    c.who &= ~(unsigned)IS_TXT;
    while (!end) {
        if ((rc = perm_char(m, &c, *p, &end)) < 0) {
            return rc;
        }
        if (!end) {
            p++;
        }
    }
    *s = p;
    return 0;
}

static int parse_symbolic(kiln__fo_modeset_t *m, const char *s)
{
    bool equal_done = false;
    unsigned who;
    int rc;

    for (;;) {
        for (who = 0;; s++) {
            if (*s == 'a') {
                who |= STD_BITS;
            } else if (*s == 'u') {
                who |= IS_UID | I_RWXU;
            } else if (*s == 'g') {
                who |= IS_GID | I_RWXG;
            } else if (*s == 'o') {
                who |= I_RWXO;
            } else {
                break;
            }
        }
        do {
            if ((rc = parse_op(m, &s, who, &equal_done)) < 0) {
                return rc;
            }
        } while (*s != '\0' && *s != ',');
        if (*s == '\0') {
            return 0;
        }
        s++;
    }
}

int kiln__fo_modeset_parse(const char *s, kiln__fo_modeset_t **out)
{
    kiln__fo_modeset_t *m = calloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    if (m == NULL) {
        return KILN_ENOMEM;
    }
    if (*s == '\0') {
        rc = KILN_EINVAL;
    } else if (*s >= '0' && *s <= '9') {
        rc = parse_octal(m, s);
    } else {
        rc = parse_symbolic(m, s);
    }
    if (rc < 0) {
        kiln__fo_modeset_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void kiln__fo_modeset_free(kiln__fo_modeset_t *m)
{
    if (m != NULL) {
        free(m->cmds);
        free(m);
    }
}

/* The 'u', 'g' and 'o' commands: copy `value` (3 bits) to classes. */
static unsigned copy_class(const bitcmd_t *c, unsigned mode, unsigned value)
{
    unsigned clr = (c->cmd2 & CMD2_SET) ? 07 : value;

    if (c->cmd2 & CMD2_CLR) {
        mode &= (c->cmd2 & CMD2_U) ? ~((clr << 6) & c->bits) : ~0u;
        mode &= (c->cmd2 & CMD2_G) ? ~((clr << 3) & c->bits) : ~0u;
        mode &= (c->cmd2 & CMD2_O) ? ~(clr & c->bits) : ~0u;
    }
    if (c->cmd2 & CMD2_SET) {
        mode |= (c->cmd2 & CMD2_U) ? (value << 6) & c->bits : 0;
        mode |= (c->cmd2 & CMD2_G) ? (value << 3) & c->bits : 0;
        mode |= (c->cmd2 & CMD2_O) ? value & c->bits : 0;
    }
    return mode;
}

mode_t kiln__fo_modeset_apply(const kiln__fo_modeset_t *m, mode_t st_mode)
{
    unsigned omode = st_mode & 07777, mode = omode;

    for (size_t i = 0; i < m->n; i++) {
        const bitcmd_t *c = &m->cmds[i];
        switch (c->cmd) {
        case 'u':
            mode = copy_class(c, mode, (mode & I_RWXU) >> 6);
            break;
        case 'g':
            mode = copy_class(c, mode, (mode & I_RWXG) >> 3);
            break;
        case 'o':
            mode = copy_class(c, mode, mode & I_RWXO);
            break;
        case '+':
            mode |= c->bits;
            break;
        case '-':
            mode &= ~c->bits;
            break;
        case 'X':
            if ((omode & 0111) != 0 || S_ISDIR(st_mode)) {
                mode |= c->bits;
            }
            break;
        }
    }
    return (st_mode & ~(mode_t)07777) | (mode & 07777);
}
