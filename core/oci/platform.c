/*
 * Platforms: the host's, parsing "os/arch/variant", and choosing an index
 * entry with containerd's platforms.Only() preference order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "oci/layout.h"

/* Longest preference list: arm64/v8, arm/v8..v5. */
#define MAX_CANDIDATES 16

/* Copies `s` into dst[0..size), truncating. */
static void set_str(char *dst, size_t size, const char *s)
{
    snprintf(dst, size, "%s", s);
}

/* Architecture aliases as containerd's normalizeArch(). */
static void normalize(kiln_oci_platform_t *p)
{
    static const struct {
        const char *from, *arch, *variant;
    } map[] = {
        {"x86_64", "amd64", NULL},  {"x86-64", "amd64", NULL},
        {"aarch64", "arm64", NULL}, {"armhf", "arm", "v7"},
        {"armel", "arm", "v6"},     {"i386", "386", ""},
        {"i486", "386", ""},        {"i586", "386", ""},
        {"i686", "386", ""},
    };

    for (char *c = p->os; *c; c++) {
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    }
    for (size_t i = 0; i < KILN_ARRAY_SIZE(map); i++) {
        if (strcmp(p->arch, map[i].from) == 0) {
            set_str(p->arch, sizeof(p->arch), map[i].arch);
            if (map[i].variant != NULL) {
                set_str(p->variant, sizeof(p->variant), map[i].variant);
            }
            break;
        }
    }
    if (strcmp(p->arch, "arm") == 0 &&
        (strcmp(p->variant, "7") == 0 || strcmp(p->variant, "6") == 0 ||
         strcmp(p->variant, "5") == 0 || strcmp(p->variant, "8") == 0)) {
        char v[4] = {'v', p->variant[0], '\0', '\0'};
        set_str(p->variant, sizeof(p->variant), v);
    }
}

void kiln__oci_platform_host(kiln_oci_platform_t *p)
{
    struct utsname u;

    memset(p, 0, sizeof(*p));
    set_str(p->os, sizeof(p->os), "linux");
    if (uname(&u) < 0) {
        set_str(p->arch, sizeof(p->arch), "amd64");
        return;
    }
    if (strncmp(u.machine, "armv", 4) == 0 && u.machine[4] >= '5' &&
        u.machine[4] <= '8') {
        char v[3] = {'v', u.machine[4], '\0'};
        set_str(p->arch, sizeof(p->arch), "arm");
        set_str(p->variant, sizeof(p->variant), v);
        return;
    }
    if (strcmp(u.machine, "aarch64") == 0 || strcmp(u.machine, "arm64") == 0) {
        set_str(p->arch, sizeof(p->arch), "arm64");
        set_str(p->variant, sizeof(p->variant), "v8");
        return;
    }
    set_str(p->arch, sizeof(p->arch), u.machine);
    normalize(p);
}

int kiln__oci_platform_parse(const char *s, kiln_oci_platform_t *p,
                             kiln_error_t *err)
{
    const char *a = strchr(s, '/'), *v = a != NULL ? strchr(a + 1, '/') : NULL;
    size_t os_len = a != NULL ? (size_t)(a - s) : 0;
    size_t arch_len = a == NULL   ? 0
                      : v != NULL ? (size_t)(v - a - 1)
                                  : strlen(a + 1);
    size_t var_len = v != NULL ? strlen(v + 1) : 0;

    memset(p, 0, sizeof(*p));
    if (a == NULL || os_len == 0 || arch_len == 0 || os_len >= sizeof(p->os) ||
        arch_len >= sizeof(p->arch) || var_len >= sizeof(p->variant) ||
        (v != NULL && (var_len == 0 || strchr(v + 1, '/') != NULL))) {
        return kiln__fail(err, KILN_EINVAL,
                          "platform \"%.100s\" is not os/arch[/variant]", s);
    }
    memcpy(p->os, s, os_len);
    memcpy(p->arch, a + 1, arch_len);
    if (v != NULL) {
        memcpy(p->variant, v + 1, var_len);
    }
    normalize(p);
    return 0;
}

void kiln__oci_platform_format(const kiln_oci_platform_t *p, char *buf,
                               size_t size)
{
    snprintf(buf, size, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "",
             p->variant);
}

/* The variant an entry of `arch` without one stands for, for comparing. */
static const char *default_variant(const char *arch)
{
    if (strcmp(arch, "arm64") == 0) {
        return "v8";
    }
    if (strcmp(arch, "amd64") == 0) {
        return "v1";
    }
    return "";
}

/* Version number of a "vN" variant, or 0. */
static int variant_num(const char *v)
{
    if (v[0] == 'v' && v[1] >= '1' && v[1] <= '9' && v[2] == '\0') {
        return v[1] - '0';
    }
    return 0;
}

/* Appends os/arch/variant to the candidate list `c` unless full. */
static void add(kiln_oci_platform_t *c, size_t *n, const char *os,
                const char *arch, const char *variant)
{
    if (*n < MAX_CANDIDATES) {
        memset(&c[*n], 0, sizeof(c[*n]));
        set_str(c[*n].os, sizeof(c[*n].os), os);
        set_str(c[*n].arch, sizeof(c[*n].arch), arch);
        set_str(c[*n].variant, sizeof(c[*n].variant), variant);
        (*n)++;
    }
}

/* arm/vN then vN-1 down to v5. */
static void add_arm(kiln_oci_platform_t *c, size_t *n, const char *os,
                    const char *variant)
{
    int v = variant_num(variant);

    add(c, n, os, "arm", variant);
    for (v--; v >= 5; v--) {
        char name[3] = {'v', (char)('0' + v), '\0'};
        add(c, n, os, "arm", name);
    }
}

/* containerd's platformVector(): `want` then its fallbacks, best first.
 * Variants are in their explicit form ("v8" for arm64, "v1" for amd64). */
static size_t candidates(const kiln_oci_platform_t *want,
                         kiln_oci_platform_t *c)
{
    const char *v =
        want->variant[0] ? want->variant : default_variant(want->arch);
    size_t n = 0;

    if (strcmp(want->arch, "arm64") == 0) {
        add(c, &n, want->os, "arm64", v);
        add_arm(c, &n, want->os, v);
    } else if (strcmp(want->arch, "arm") == 0) {
        add_arm(c, &n, want->os, v[0] ? v : "v7");
    } else if (strcmp(want->arch, "amd64") == 0) {
        add(c, &n, want->os, "amd64", v);
        for (int k = variant_num(v) - 1; k >= 1; k--) {
            char name[3] = {'v', (char)('0' + k), '\0'};
            add(c, &n, want->os, "amd64", name);
        }
        add(c, &n, want->os, "386", "");
    } else {
        add(c, &n, want->os, want->arch, v);
    }
    return n;
}

/* Does entry platform `e` (normalised) match candidate `c`? With `loose`,
 * an entry without a variant matches any variant. */
static bool matches(const kiln_oci_platform_t *e, const kiln_oci_platform_t *c,
                    bool loose)
{
    const char *ev = e->variant[0] ? e->variant : default_variant(e->arch);

    if (strcmp(e->os, c->os) != 0 || strcmp(e->arch, c->arch) != 0) {
        return false;
    }
    return strcmp(ev, c->variant) == 0 || (loose && e->variant[0] == '\0');
}

/* "has: ..." for the error message. */
static void list_platforms(const kiln_oci_desc_t *m, size_t n, char *buf,
                           size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[96];
        if (!m[i].has_platform) {
            continue;
        }
        kiln__oci_platform_format(&m[i].platform, one, sizeof(one));
        if (len + strlen(one) + 8 >= size) {
            snprintf(buf + len, size - len, ", ...");
            return;
        }
        len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                                one);
    }
    if (len == 0) {
        snprintf(buf, size, "no platforms");
    }
}

int kiln__oci_platform_select(const kiln_oci_desc_t *manifests, size_t n,
                              const kiln_oci_platform_t *want, const char *name,
                              size_t *chosen, kiln_error_t *err)
{
    kiln_oci_platform_t c[MAX_CANDIDATES], w = *want;
    char has[640], wname[96];
    size_t nc;

    normalize(&w);
    nc = candidates(&w, c);
    for (int loose = 0; loose < 2; loose++) {
        for (size_t k = 0; k < nc; k++) {
            for (size_t i = 0; i < n; i++) {
                kiln_oci_platform_t e = manifests[i].platform;
                if (!manifests[i].has_platform) {
                    continue;
                }
                normalize(&e);
                if (matches(&e, &c[k], loose != 0)) {
                    *chosen = i;
                    return 0;
                }
            }
        }
    }
    kiln__oci_platform_format(want, wname, sizeof(wname));
    list_platforms(manifests, n, has, sizeof(has));
    return kiln__fail(err, KILN_ENOENT, "no manifest for %s in %s (has: %s)",
                      wname, name, has);
}
