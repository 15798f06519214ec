/*
 * Path patterns as BuildKit matches them: Go's filepath.Match (wildcards in
 * a copy source or an rm path) and moby/patternmatcher (include and exclude
 * patterns of a copy, .dockerignore style).
 */
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"
#include "util/gopath.h"

/* Decodes one UTF-8 rune as Go does: invalid bytes give U+FFFD, length 1. */
static size_t decode_rune(const char *s, uint32_t *r)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n;
    uint32_t c;

    if (u[0] < 0x80) {
        *r = u[0];
        return 1;
    }
    if ((u[0] & 0xe0) == 0xc0) {
        n = 2;
        c = u[0] & 0x1f;
    } else if ((u[0] & 0xf0) == 0xe0) {
        n = 3;
        c = u[0] & 0x0f;
    } else if ((u[0] & 0xf8) == 0xf0) {
        n = 4;
        c = u[0] & 0x07;
    } else {
        *r = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            *r = 0xfffd;
            return 1;
        }
        c = (c << 6) | (u[i] & 0x3f);
    }
    *r = c;
    return n;
}

bool kiln__fo_has_wildcards(const char *s)
{
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] == '\\') {
            if (s[i + 1] == '\0') {
                break;
            }
            i++;
        } else if (s[i] == '*' || s[i] == '?' || s[i] == '[') {
            return true;
        }
    }
    return false;
}

/* filepath.Match's getEsc: one possibly escaped rune of a character class. */
static int get_esc(const char **chunk, const char *end, uint32_t *r)
{
    const char *c = *chunk;
    size_t n;

    if (c >= end || *c == '-' || *c == ']') {
        return KILN_EINVAL;
    }
    if (*c == '\\') {
        c++;
        if (c >= end) {
            return KILN_EINVAL;
        }
    }
    n = decode_rune(c, r);
    if (*r == 0xfffd && n == 1 && (unsigned char)*c >= 0x80) {
        return KILN_EINVAL;
    }
    c += n;
    if (c >= end) {
        return KILN_EINVAL;
    }
    *chunk = c;
    return 0;
}

/* Matches a bracket expression starting after '['; advances *chunk past ']'.
 * Sets *ok to whether rune r (if have_r) is in the class. */
static int match_class(const char **chunk, const char *end, bool have_r,
                       uint32_t r, bool *ok)
{
    const char *c = *chunk;
    bool negated = false, match = false;
    int nrange = 0, rc;
    uint32_t lo, hi;

    if (c < end && *c == '^') {
        negated = true;
        c++;
    }
    for (;;) {
        if (c < end && *c == ']' && nrange > 0) {
            c++;
            break;
        }
        if ((rc = get_esc(&c, end, &lo)) < 0) {
            return rc;
        }
        hi = lo;
        if (*c == '-') {
            c++;
            if ((rc = get_esc(&c, end, &hi)) < 0) {
                return rc;
            }
        }
        if (have_r && lo <= r && r <= hi) {
            match = true;
        }
        nrange++;
    }
    *ok = match != negated;
    *chunk = c;
    return 0;
}

/* filepath.Match's matchChunk: returns the rest of s after a match of the
 * whole chunk, NULL if it does not match; *bad on a malformed chunk. */
static const char *match_chunk(const char *chunk, const char *end,
                               const char *s, bool *bad)
{
    bool failed = false, ok;
    uint32_t r = 0;

    *bad = false;
    while (chunk < end) {
        if (!failed && *s == '\0') {
            failed = true;
        }
        if (*chunk == '[') {
            if (!failed) {
                s += decode_rune(s, &r);
            }
            chunk++;
            if (match_class(&chunk, end, !failed, r, &ok) < 0) {
                *bad = true;
                return NULL;
            }
            if (!ok) {
                failed = true;
            }
        } else if (*chunk == '?') {
            if (!failed) {
                if (*s == '/') {
                    failed = true;
                }
                s += decode_rune(s, &r);
            }
            chunk++;
        } else {
            if (*chunk == '\\') {
                chunk++;
                if (chunk >= end) {
                    *bad = true;
                    return NULL;
                }
            }
            if (!failed) {
                if (*chunk != *s) {
                    failed = true;
                }
                s++;
            }
            chunk++;
        }
    }
    return failed ? NULL : s;
}

/* filepath.Match's scanChunk: skips leading stars, returns the chunk end. */
static const char *scan_chunk(const char **pattern, bool *star)
{
    const char *p = *pattern;
    bool inrange = false;

    *star = false;
    while (*p == '*') {
        p++;
        *star = true;
    }
    *pattern = p;
    for (; *p != '\0'; p++) {
        if (*p == '\\') {
            if (p[1] != '\0') {
                p++;
            }
        } else if (*p == '[') {
            inrange = true;
        } else if (*p == ']') {
            inrange = false;
        } else if (*p == '*' && !inrange) {
            break;
        }
    }
    return p;
}

/* Checks the rest of a pattern for syntax errors, as Match does before
 * reporting a mismatch. */
static int check_rest(const char *pattern)
{
    bool star, bad;

    while (*pattern != '\0') {
        const char *end = scan_chunk(&pattern, &star);
        match_chunk(pattern, end, "", &bad);
        if (bad) {
            return KILN_EINVAL;
        }
        pattern = end;
    }
    return 0;
}

/* The star case of Match: tries the chunk after each prefix of non-'/'. */
static int match_star(const char *chunk, const char *end, const char **name,
                      bool last)
{
    const char *n = *name, *t;
    bool bad;

    for (size_t i = 0; n[i] != '\0' && n[i] != '/'; i++) {
        t = match_chunk(chunk, end, n + i + 1, &bad);
        if (t != NULL) {
            if (last && *t != '\0') {
                continue;
            }
            *name = t;
            return 1;
        }
        if (bad) {
            return KILN_EINVAL;
        }
    }
    return 0;
}

int kiln__fo_fnmatch(const char *pattern, const char *name)
{
    bool star, bad;
    const char *end, *t;
    int rc;

    while (*pattern != '\0') {
        end = scan_chunk(&pattern, &star);
        if (star && end == pattern) {
            return strchr(name, '/') == NULL;
        }
        t = match_chunk(pattern, end, name, &bad);
        if (t != NULL && (*t == '\0' || *end != '\0')) {
            name = t;
            pattern = end;
            continue;
        }
        if (bad) {
            return KILN_EINVAL;
        }
        if (star) {
            rc = match_star(pattern, end, &name, *end == '\0');
            if (rc < 0) {
                return rc;
            }
            if (rc > 0) {
                pattern = end;
                continue;
            }
        }
        return check_rest(end) < 0 ? KILN_EINVAL : 0;
    }
    return *name == '\0';
}

/*
 * patternmatcher. A pattern compiles to the regexp its compile() builds,
 * kept as tokens: literal bytes, T_STAR (any run of non-slashes), T_QMARK
 * (one non-slash rune), T_DSTAR_SLASH (nothing, or anything ending in a
 * slash), T_DSTAR_END (anything) and bracket expressions (kept as text).
 */
enum tok_kind { T_LIT, T_STAR, T_QMARK, T_DSTAR_SLASH, T_DSTAR_END, T_CLASS };
enum match_type { M_EXACT, M_PREFIX, M_SUFFIX, M_REGEXP };

typedef struct tok {
    enum tok_kind kind;
    char c;            /* T_LIT */
    const char *class; /* T_CLASS: after '[' ... up to ']' (excluded) */
    size_t class_len;
} tok_t;

typedef struct pattern {
    char *cleaned;
    bool exclusion;
    enum match_type type;
    tok_t *toks;
    size_t n_toks;
} pattern_t;

struct kiln__fo_patterns {
    pattern_t *p;
    size_t n;
};

static bool class_has(const char *c, size_t len, uint32_t r)
{
    const char *end = c + len;
    bool neg = false, in = false;
    uint32_t lo, hi;

    if (c < end && *c == '^') {
        neg = true;
        c++;
    }
    while (c < end) {
        if (*c == '\\' && c + 1 < end) {
            c++;
        }
        c += decode_rune(c, &lo);
        hi = lo;
        if (c + 1 < end && *c == '-') {
            c++;
            if (*c == '\\' && c + 1 < end) {
                c++;
            }
            c += decode_rune(c, &hi);
        }
        if (lo <= r && r <= hi) {
            in = true;
        }
    }
    return in != neg;
}

/*
 * Matching runs in time linear in pattern x path, as Go's regexp does: a
 * memo of (token, position) results cuts the backtracking of stars, which
 * is exponential otherwise ("*a*a*a*...b" against "aaaa...").
 */
typedef struct matcher {
    const tok_t *toks;
    size_t n_toks;
    const char *s;
    size_t len;
    unsigned char *memo; /* (n_toks + 1) x (len + 1): 0 unknown, 1 no, 2 yes */
} matcher_t;

static bool match_at(matcher_t *m, size_t ti, const char *s);

/* match_at(), remembered. */
static bool match_from(matcher_t *m, size_t ti, const char *s)
{
    size_t at = ti * (m->len + 1) + (size_t)(s - m->s);
    bool r;

    if (m->memo != NULL && m->memo[at] != 0) {
        return m->memo[at] == 2;
    }
    r = match_at(m, ti, s);
    if (m->memo != NULL) {
        m->memo[at] = r ? 2 : 1;
    }
    return r;
}

static bool match_at(matcher_t *m, size_t ti, const char *s)
{
    uint32_t r;

    for (; ti < m->n_toks; ti++) {
        const tok_t *t = &m->toks[ti];

        switch (t->kind) {
        case T_LIT:
            if (*s != t->c) {
                return false;
            }
            s++;
            break;
        case T_QMARK:
        case T_CLASS:
            if (*s == '\0' || (t->kind == T_QMARK && *s == '/')) {
                return false;
            }
            s += decode_rune(s, &r);
            if (t->kind == T_CLASS && !class_has(t->class, t->class_len, r)) {
                return false;
            }
            break;
        case T_STAR:
            for (const char *p = s;; p++) {
                if (match_from(m, ti + 1, p)) {
                    return true;
                }
                if (*p == '\0' || *p == '/') {
                    return false;
                }
            }
        case T_DSTAR_END:
            return true;
        case T_DSTAR_SLASH:
            if (match_from(m, ti + 1, s)) {
                return true;
            }
            for (const char *p = s; *p != '\0'; p++) {
                if (*p == '/' && match_from(m, ti + 1, p + 1)) {
                    return true;
                }
            }
            return false;
        }
    }
    return *s == '\0';
}

static bool toks_match(const tok_t *t, size_t n, const char *s)
{
    matcher_t m = {t, n, s, strlen(s), NULL};
    bool r;

    /* Without memory for the memo, still correct, only slower. */
    if ((n + 1) <= SIZE_MAX / (m.len + 1)) {
        m.memo = calloc((n + 1) * (m.len + 1), 1);
    }
    r = match_at(&m, 0, s);
    free(m.memo);
    return r;
}

static void add_tok(pattern_t *p, enum tok_kind kind, char c)
{
    p->toks[p->n_toks].kind = kind;
    p->toks[p->n_toks].c = c;
    p->n_toks++;
}

/* A "**": sets the match type as compile() does. */
static void compile_dstar(pattern_t *p, const char **s, bool first)
{
    const char *c = *s + 2;

    if (*c == '/') {
        c++;
    }
    if (*c == '\0') {
        if (p->type == M_EXACT) {
            p->type = M_PREFIX;
        } else {
            add_tok(p, T_DSTAR_END, 0);
            p->type = M_REGEXP;
        }
    } else {
        add_tok(p, T_DSTAR_SLASH, 0);
        p->type = M_REGEXP;
    }
    if (first) {
        p->type = M_SUFFIX;
    }
    *s = c;
}

/* A bracket expression: '[' up to its ']' (the pattern passed Match's syntax
 * check, so it is closed). */
static void compile_class(pattern_t *p, const char **s)
{
    const char *c = *s + 1;
    tok_t *t = &p->toks[p->n_toks++];

    t->kind = T_CLASS;
    t->class = c;
    if (*c == '^') {
        c++;
    }
    while (*c != '\0' && *c != ']') {
        c += (*c == '\\' && c[1] != '\0') ? 2 : 1;
    }
    t->class_len = (size_t)(c - t->class);
    *s = *c == ']' ? c + 1 : c;
    p->type = M_REGEXP;
}

static void compile(pattern_t *p)
{
    const char *s = p->cleaned;
    bool first = true;

    p->type = M_EXACT;
    while (*s != '\0') {
        if (s[0] == '*' && s[1] == '*') {
            compile_dstar(p, &s, first);
        } else if (*s == '*' || *s == '?') {
            add_tok(p, *s == '*' ? T_STAR : T_QMARK, 0);
            p->type = M_REGEXP;
            s++;
        } else if (*s == '\\' && s[1] != '\0') {
            add_tok(p, T_LIT, s[1]);
            p->type = M_REGEXP;
            s += 2;
        } else if (*s == '[') {
            compile_class(p, &s);
        } else {
            add_tok(p, T_LIT, *s);
            s++;
        }
        first = false;
    }
}

static bool pattern_match(const pattern_t *p, const char *path)
{
    size_t len = strlen(p->cleaned), plen = strlen(path);
    const char *suffix;

    switch (p->type) {
    case M_EXACT:
        return strcmp(path, p->cleaned) == 0;
    case M_PREFIX:
        return strncmp(path, p->cleaned, len - 2) == 0;
    case M_SUFFIX:
        suffix = p->cleaned + 2;
        if (plen >= len - 2 && strcmp(path + plen - (len - 2), suffix) == 0) {
            return true;
        }
        return suffix[0] == '/' && strcmp(path, suffix + 1) == 0;
    default:
        return toks_match(p->toks, p->n_toks, path);
    }
}

/* New()'s per-pattern work: trim, clean, "!", syntax check, compile. */
static int pattern_init(pattern_t *p, const char *raw, bool *skip,
                        kiln_error_t *err)
{
    size_t b = 0, e = strlen(raw);
    char *trim, *c;

    while (b < e && strchr(" \t\n\v\f\r", raw[b]) != NULL) {
        b++;
    }
    while (e > b && strchr(" \t\n\v\f\r", raw[e - 1]) != NULL) {
        e--;
    }
    *skip = b == e;
    if (*skip) {
        return 0;
    }
    trim = strndup(raw + b, e - b);
    c = trim != NULL ? kiln__gopath_clean(trim) : NULL;
    free(trim);
    if (c == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    p->cleaned = c;
    if (c[0] == '!') {
        if (c[1] == '\0') {
            return kiln__fail(err, KILN_EINVAL,
                              "illegal exclusion pattern: \"!\"");
        }
        memmove(c, c + 1, strlen(c));
        p->exclusion = true;
    }
    if (kiln__fo_fnmatch(c, ".") < 0) {
        return kiln__fail(err, KILN_EINVAL, "%s: syntax error in pattern", raw);
    }
    p->toks = calloc(strlen(c) + 1, sizeof(*p->toks));
    if (p->toks == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    compile(p);
    return 0;
}

int kiln__fo_patterns_new(char *const *patterns, size_t n,
                          kiln__fo_patterns_t **out, kiln_error_t *err)
{
    kiln__fo_patterns_t *pm = calloc(1, sizeof(*pm));
    bool skip;
    int rc;

    *out = NULL;
    if (pm == NULL || (n > 0 && (pm->p = calloc(n, sizeof(*pm->p))) == NULL)) {
        free(pm);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        rc = pattern_init(&pm->p[pm->n], patterns[i], &skip, err);
        if (rc < 0) {
            pm->n++;
            kiln__fo_patterns_free(pm);
            return rc;
        }
        if (!skip) {
            pm->n++;
        }
    }
    *out = pm;
    return 0;
}

void kiln__fo_patterns_free(kiln__fo_patterns_t *pm)
{
    if (pm == NULL) {
        return;
    }
    for (size_t i = 0; i < pm->n; i++) {
        free(pm->p[i].cleaned);
        free(pm->p[i].toks);
    }
    free(pm->p);
    free(pm);
}

size_t kiln__fo_patterns_count(const kiln__fo_patterns_t *pm)
{
    return pm->n;
}

bool kiln__fo_patterns_exclusions(const kiln__fo_patterns_t *pm)
{
    for (size_t i = 0; i < pm->n; i++) {
        if (pm->p[i].exclusion) {
            return true;
        }
    }
    return false;
}

/* Without parent information: does the pattern match a parent directory? */
static bool parent_matches(const pattern_t *p, const char *path)
{
    char *dir = strdup(path), *slash;
    bool m = false;

    if (dir == NULL) {
        return false;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        free(dir);
        return false;
    }
    *slash = '\0';
    for (char *c = dir;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            m = pattern_match(p, dir);
            *c = save;
            if (m || save == '\0') {
                break;
            }
        }
    }
    free(dir);
    return m;
}

bool kiln__fo_patterns_match(const kiln__fo_patterns_t *pm, const char *path,
                             const bool *parent, bool *info)
{
    bool matched = false, m;

    for (size_t i = 0; i < pm->n; i++) {
        const pattern_t *p = &pm->p[i];

        m = parent != NULL && parent[i];
        if (!m) {
            if (p->exclusion != matched) {
                info[i] = false;
                continue;
            }
            m = pattern_match(p, path);
            if (!m && parent == NULL) {
                m = parent_matches(p, path);
            }
        }
        info[i] = m;
        if (m) {
            matched = !p->exclusion;
        }
    }
    return matched;
}
