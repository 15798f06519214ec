/*
 * The build's mounts, made by its init before the command runs
 * (helper.h): the root (an overlay of the input's layers, or a directory
 * for the copy fallback), /proc, a minimal /dev, /etc/hosts and
 * /etc/resolv.conf, the op's own mounts, then pivot_root.
 *
 * Every mount destination is resolved inside the new root with
 * openat2(RESOLVE_IN_ROOT), one component at a time, so that a symlink in
 * the rootfs can never send a mount outside it; what is missing is made
 * (a "stub") and reported to kiln, which removes it from the output
 * afterwards as BuildKit does. The mount itself goes onto the resolved
 * descriptor through /proc/self/fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "exec/helper.h"

struct ctx {
    const kiln__exec_spec_t *s;
    char staging[PATH_MAX];
    char root[PATH_MAX];
    int rootfd;
    bool rootless;
};

static int fail(int e, const char *fmt, ...) KILN_PRINTF(2, 3);
static int fail(int e, const char *fmt, ...)
{
    char msg[KILN_ERROR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kiln__helper_status(KILN__EXEC_ST_ERROR, "%s: %s", msg, strerror(e));
    return -1;
}

static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };

    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* The container path of directory fd `dir` plus `name`. */
static void container_path(const struct ctx *c, int dir, const char *name,
                           char *out, size_t size)
{
    char link[64], host[PATH_MAX];
    ssize_t n;
    size_t rl = strlen(c->root);

    snprintf(link, sizeof(link), "/proc/self/fd/%d", dir);
    n = readlink(link, host, sizeof(host) - 1);
    host[n > 0 ? n : 0] = '\0';
    if (n > 0 && strncmp(host, c->root, rl) == 0 &&
        (host[rl] == '/' || host[rl] == '\0')) {
        snprintf(out, size, "%s/%s", host + rl, name);
    } else {
        snprintf(out, size, "/%s", name);
    }
}

/*
 * Resolves `dest` in the new root, making what is missing (directories,
 * and a file at the end when !dir); *fd is an O_PATH descriptor of it.
 */
static int target(struct ctx *c, const char *dest, bool dir, bool parents,
                  int *fd)
{
    char path[PATH_MAX];
    size_t len;

    if (snprintf(path, sizeof(path), "%s", dest) >= (int)sizeof(path)) {
        return fail(ENAMETOOLONG, "mount destination %s", dest);
    }
    len = strlen(path);
    while (len > 1 && path[len - 1] == '/') {
        path[--len] = '\0';
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char saved = *p;
        bool leaf = saved == '\0';
        int f;

        *p = '\0';
        f = open_in_root(c->rootfd, path, O_PATH);
        if (f < 0 && errno == ENOENT) {
            char *slash = strrchr(path, '/');
            char where[PATH_MAX];
            int parent;

            *slash = '\0';
            parent = open_in_root(c->rootfd, path[0] ? path : "/",
                                  O_PATH | O_DIRECTORY);
            *slash = '/';
            if (parent < 0) {
                return fail(errno, "mount destination %s: parent of %s", dest,
                            path);
            }
            if (leaf && !dir) {
                f = openat(parent, slash + 1,
                           O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
            } else {
                f = mkdirat(parent, slash + 1, 0755);
            }
            if (f < 0) {
                int e = errno;
                close(parent);
                return fail(e, "mount destination %s: making %s", dest, path);
            }
            if (leaf && !dir) {
                close(f);
            }
            container_path(c, parent, slash + 1, where, sizeof(where));
            close(parent);
            kiln__helper_stub(where, !leaf && parents);
            f = open_in_root(c->rootfd, path, O_PATH);
        }
        if (f < 0) {
            return fail(errno, "mount destination %s: %s", dest, path);
        }
        *p = saved;
        if (leaf) {
            *fd = f;
            return 0;
        }
        close(f);
    }
}

static void fd_path(int fd, char out[64])
{
    snprintf(out, 64, "/proc/self/fd/%d", fd);
}

/* Read-only, recursively, keeping the flags a user namespace locks. */
static int make_readonly(int fd, const char *dest)
{
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};

    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) <
        0) {
        return fail(errno, "read-only %s", dest);
    }
    return 0;
}

/* An O_PATH descriptor of host path `src`, or of `selector` inside it
 * (resolved as if `src` were the root); *dir says whether it is one. */
static int open_source(const char *src, const char *selector, const char *dest,
                       int *fd, bool *dir)
{
    int sfd = open(src, O_PATH | O_CLOEXEC);
    struct stat st;

    if (sfd < 0) {
        return fail(errno, "mount %s: source %s", dest, src);
    }
    if (selector != NULL && selector[0] != '\0') {
        int sub = open_in_root(sfd, selector, O_PATH);

        close(sfd);
        if (sub < 0) {
            return fail(errno, "mount %s: selector %s", dest, selector);
        }
        sfd = sub;
    }
    if (fstat(sfd, &st) < 0) {
        close(sfd);
        return fail(errno, "mount %s: source %s", dest, src);
    }
    *dir = S_ISDIR(st.st_mode);
    *fd = sfd;
    return 0;
}

/* Attaches a copy of the tree at sfd (open_tree), made read-only before
 * it is attached, onto the resolved target tfd. */
static int attach(int sfd, int tfd, bool readonly, const char *dest)
{
    int rc = 0;
    int tree = open_tree(sfd, "",
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
                             AT_RECURSIVE);

    if (tree < 0) {
        return fail(errno, "bind mount at %s", dest);
    }
    if (readonly) {
        rc = make_readonly(tree, dest);
    }
    if (rc == 0 &&
        move_mount(tree, "", tfd, "",
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
        rc = fail(errno, "bind mount at %s", dest);
    }
    close(tree);
    return rc;
}

/* Classic mount(2) options: lowerdirs joined by ':' with ':' , ',' and
 * '\' escaped. */
static int overlay_legacy(const kiln__exec_mount_t *m, const char *dir,
                          bool rootless)
{
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    kiln__buf_puts(&b, "lowerdir=");
    for (const char *p = m->src; *p != '\0'; p++) {
        if (*p == '\n') {
            kiln__buf_putc(&b, ':');
            continue;
        }
        if (*p == ':' || *p == ',' || *p == '\\') {
            kiln__buf_putc(&b, '\\');
        }
        kiln__buf_putc(&b, (uint8_t)*p);
    }
    if (m->upper[0] != '\0') {
        kiln__buf_printf(&b, ",upperdir=%s,workdir=%s", m->upper, m->work);
    }
    /* redirect_dir=off still follows existing redirects, which a user
     * namespace's overlay (userxattr) does not allow: nofollow there. */
    kiln__buf_printf(&b, ",index=off,redirect_dir=%s,metacopy=off,xino=off",
                     rootless ? "nofollow" : "off");
    if (rootless) {
        kiln__buf_puts(&b, ",userxattr");
    }
    if (!kiln__buf_ok(&b)) {
        errno = ENOMEM;
        return -1;
    }
    rc = mount("overlay", dir, "overlay", 0, (const char *)b.data);
    kiln__buf_free(&b);
    return rc;
}

/* The new mount API: one lowerdir+ per layer, so no option string limits
 * the depth. */
static int overlay_fsconfig(const kiln__exec_mount_t *m, const char *dir,
                            bool rootless)
{
    int fs = fsopen("overlay", FSOPEN_CLOEXEC), mnt = -1, rc = -1;
    char *lowers = fs >= 0 ? strdup(m->src) : NULL, *save = NULL;
    static const char *const off[] = {"index", "redirect_dir", "metacopy",
                                      "xino"};

    if (lowers == NULL) {
        goto out;
    }
    for (char *l = strtok_r(lowers, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", l, 0) < 0) {
            goto out;
        }
    }
    if (m->upper[0] != '\0' &&
        (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", m->upper, 0) < 0 ||
         fsconfig(fs, FSCONFIG_SET_STRING, "workdir", m->work, 0) < 0)) {
        goto out;
    }
    for (size_t i = 0; i < KILN_ARRAY_SIZE(off); i++) {
        const char *v = rootless && strcmp(off[i], "redirect_dir") == 0
                            ? "nofollow"
                            : "off";
        if (fsconfig(fs, FSCONFIG_SET_STRING, off[i], v, 0) < 0) {
            goto out;
        }
    }
    if ((rootless &&
         fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0) ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        goto out;
    }
    mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
    if (mnt >= 0) {
        rc = move_mount(mnt, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH);
    }
out:
    free(lowers);
    if (mnt >= 0) {
        close(mnt);
    }
    if (fs >= 0) {
        int e = errno;
        close(fs);
        errno = e;
    }
    return rc;
}

static int mount_overlay(const struct ctx *c, const kiln__exec_mount_t *m,
                         const char *dir)
{
    int e;

    if (overlay_fsconfig(m, dir, c->rootless) == 0) {
        return 0;
    }
    e = errno;
    if (overlay_legacy(m, dir, c->rootless) == 0) {
        return 0;
    }
    if (e == ENODEV || errno == ENODEV || errno == EPERM || e == EPERM) {
        kiln__helper_status(KILN__EXEC_ST_NOOVL, "overlayfs: %s",
                            strerror(e == ENODEV || e == EPERM ? e : errno));
        return -1;
    }
    return fail(e, "overlay for %s", m->dest);
}

static int write_text(const char *path, const void *data, size_t len,
                      mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ssize_t n = fd >= 0 ? write(fd, data, len) : -1;

    if (fd >= 0) {
        close(fd);
    }
    return n == (ssize_t)len ? 0 : -1;
}

static int bind_to(struct ctx *c, const char *src, const char *selector,
                   const char *dest, bool readonly, bool parents)
{
    bool dir = false;
    int sfd = -1, tfd, rc;

    if (open_source(src, selector, dest, &sfd, &dir) < 0) {
        return -1;
    }
    if (target(c, dest, dir, parents, &tfd) < 0) {
        close(sfd);
        return -1;
    }
    rc = attach(sfd, tfd, readonly, dest);
    close(sfd);
    close(tfd);
    return rc;
}

static int tmpfs_at(struct ctx *c, const kiln__exec_mount_t *m)
{
    char opts[64], to[64];
    int tfd, rc = 0;

    if (target(c, m->dest, true, m->stub_parents, &tfd) < 0) {
        return -1;
    }
    fd_path(tfd, to);
    if (m->size > 0) {
        snprintf(opts, sizeof(opts), "mode=1777,size=%llu",
                 (unsigned long long)m->size);
    } else {
        snprintf(opts, sizeof(opts), "mode=1777");
    }
    if (mount("tmpfs", to, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
        rc = fail(errno, "tmpfs at %s", m->dest);
    }
    close(tfd);
    return rc;
}

/* A secret's file on the private tmpfs; an owner a user namespace cannot
 * map stays root (inside), with a warning. */
static int secret_at(struct ctx *c, const kiln__exec_mount_t *m, size_t i)
{
    char staged[PATH_MAX + 32];

    snprintf(staged, sizeof(staged), "%s/secrets/%zu", c->staging, i);
    if (write_text(staged, m->data, m->len, 0600) < 0) {
        return fail(errno, "secret for %s", m->dest);
    }
    if (chown(staged, m->uid, m->gid) < 0) {
        if (!c->rootless) {
            return fail(errno, "secret for %s", m->dest);
        }
        kiln__helper_status(KILN__EXEC_ST_WARN,
                            "secret at %s: owner %u:%u cannot be mapped "
                            "without root; it stays root's",
                            m->dest, m->uid, m->gid);
    }
    if (chmod(staged, m->mode) < 0) {
        return fail(errno, "secret for %s", m->dest);
    }
    return bind_to(c, staged, NULL, m->dest, true, m->stub_parents);
}

/* An SSH mount: a socket of init's own with the owner and mode asked for,
 * relayed to the agent's (relay.c). Bound relative to the staging
 * directory, since a socket path holds at most 107 bytes. */
static int socket_at(struct ctx *c, const kiln__exec_mount_t *m, size_t i)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char name[32], staged[PATH_MAX + 32], cwd[PATH_MAX];
    int agent = open(m->src, O_PATH | O_CLOEXEC);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = 0;

    snprintf(name, sizeof(name), "ssh%zu.sock", i);
    snprintf(staged, sizeof(staged), "%s/%s", c->staging, name);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
    if (agent < 0 || l < 0 || getcwd(cwd, sizeof(cwd)) == NULL ||
        chdir(c->staging) < 0) {
        rc = fail(errno, "SSH socket for %s", m->dest);
    } else {
        if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(l, 16) < 0) {
            rc = fail(errno, "SSH socket for %s", m->dest);
        }
        if (chdir(cwd) < 0 && rc == 0) {
            rc = fail(errno, "SSH socket for %s", m->dest);
        }
    }
    if (rc == 0 && chown(staged, m->uid, m->gid) < 0) {
        if (!c->rootless) {
            rc = fail(errno, "SSH socket for %s", m->dest);
        } else {
            kiln__helper_status(KILN__EXEC_ST_WARN,
                                "SSH socket at %s: owner %u:%u cannot be "
                                "mapped without root; it stays root's",
                                m->dest, m->uid, m->gid);
        }
    }
    if (rc == 0 && chmod(staged, m->mode) < 0) {
        rc = fail(errno, "SSH socket for %s", m->dest);
    }
    if (rc == 0 && kiln__helper_relay_add(l, agent) < 0) {
        rc = fail(EMFILE, "SSH socket for %s: too many", m->dest);
    }
    if (rc < 0) {
        if (agent >= 0) {
            close(agent);
        }
        if (l >= 0) {
            close(l);
        }
        return rc;
    }
    return bind_to(c, staged, NULL, m->dest, false, m->stub_parents);
}

/* One mount of the op (not the root). */
static int op_mount(struct ctx *c, const kiln__exec_mount_t *m, size_t i)
{
    char staged[PATH_MAX + 32];

    switch (m->type) {
    case KILN__EXEC_MNT_BIND:
        return bind_to(c, m->src, m->selector, m->dest, m->readonly,
                       m->stub_parents);
    case KILN__EXEC_MNT_OVERLAY:
        snprintf(staged, sizeof(staged), "%s/m%zu", c->staging, i);
        if (mkdir(staged, 0755) < 0) {
            return fail(errno, "%s", staged);
        }
        if (mount_overlay(c, m, staged) < 0) {
            return -1;
        }
        return bind_to(c, staged, m->selector, m->dest, m->readonly,
                       m->stub_parents);
    case KILN__EXEC_MNT_TMPFS:
        return tmpfs_at(c, m);
    case KILN__EXEC_MNT_SECRET:
        return secret_at(c, m, i);
    case KILN__EXEC_MNT_SOCKET:
        return socket_at(c, m, i);
    default:
        return fail(EINVAL, "mount %s: unknown type", m->dest);
    }
}

static int sys_mount(struct ctx *c, const char *dest, bool dir,
                     const char *type, unsigned long flags, const char *opts)
{
    char to[64];
    int tfd, rc = 0;

    if (target(c, dest, dir, true, &tfd) < 0) {
        return -1;
    }
    fd_path(tfd, to);
    if (mount(type, to, type, flags, opts) < 0) {
        rc = fail(errno, "mounting %s at %s", type, dest);
    }
    close(tfd);
    return rc;
}

/* What Docker and BuildKit protect in /proc that the dropped
 * capabilities do not already: writing sysrq-trigger, sysctls or IRQ
 * affinities only takes uid 0 (read-only here), and keys and the kernel's
 * timer and scheduler state leak the host's (hidden behind /dev/null).
 * The rest of Docker's list (kcore, bus, acpi, scsi, ...) needs
 * CAP_SYS_RAWIO or CAP_SYS_ADMIN, which no step has; each mount here
 * costs time in every exec. In a user namespace none of these are
 * writable anyway. Paths this kernel lacks are skipped. */
static const char *const proc_readonly[] = {"sys", "sysrq-trigger", "irq"};
static const char *const proc_masked[] = {"keys", "timer_list", "sched_debug"};

/* An O_PATH descriptor of `path` in the new root (never followed out of
 * it) and its /proc/self/fd name. */
static int in_root(struct ctx *c, const char *path, char name[64])
{
    int fd = open_in_root(c->rootfd, path, O_PATH);

    if (fd >= 0) {
        fd_path(fd, name);
    }
    return fd;
}

static int protect_proc(struct ctx *c)
{
    char p[64], name[64];
    struct stat st;

    if (c->rootless) {
        return 0;
    }
    for (size_t i = 0; i < KILN_ARRAY_SIZE(proc_readonly); i++) {
        int fd, tree;

        snprintf(p, sizeof(p), "/proc/%s", proc_readonly[i]);
        if ((fd = in_root(c, p, name)) < 0) {
            continue; /* not in this kernel */
        }
        tree = open_tree(fd, "",
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0 || make_readonly(tree, p) < 0 ||
            move_mount(tree, "", fd, "",
                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
            int e = errno;
            if (tree >= 0) {
                close(tree);
            }
            close(fd);
            return fail(e, "read-only %s", p);
        }
        close(tree);
        close(fd);
    }
    for (size_t i = 0; i < KILN_ARRAY_SIZE(proc_masked); i++) {
        int fd, rc;

        snprintf(p, sizeof(p), "/proc/%s", proc_masked[i]);
        if ((fd = in_root(c, p, name)) < 0) {
            continue;
        }
        rc = fstat(fd, &st) < 0 ? -1
             : S_ISDIR(st.st_mode)
                 ? mount("tmpfs", name, "tmpfs", MS_RDONLY, "size=0")
                 : mount("/dev/null", name, NULL, MS_BIND, NULL);
        close(fd);
        if (rc < 0) {
            return fail(errno, "hiding %s", p);
        }
    }
    return 0;
}

/* A minimal /dev: a tmpfs with the host's harmless devices bound in
 * (binding works in a user namespace, where mknod does not). Everything
 * is made relative to the tmpfs's descriptor, never by a host path. */
static int make_dev(struct ctx *c)
{
    static const char *const devs[] = {"null",   "zero",    "full",
                                       "random", "urandom", "tty"};
    static const char *const links[][2] = {
        {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
        {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"},
    };
    char name[64];
    int tfd, d, f;

    if (target(c, "/dev", true, true, &tfd) < 0) {
        return -1;
    }
    fd_path(tfd, name);
    if (mount("tmpfs", name, "tmpfs", MS_NOSUID | MS_NOEXEC,
              "mode=755,size=65536k") < 0) {
        close(tfd);
        return fail(errno, "tmpfs at %s", "/dev");
    }
    close(tfd);
    d = open_in_root(c->rootfd, "/dev", O_RDONLY | O_DIRECTORY);
    if (d < 0) {
        return fail(errno, "%s", "/dev");
    }
    for (size_t i = 0; i < KILN_ARRAY_SIZE(devs); i++) {
        char host[32];

        snprintf(host, sizeof(host), "/dev/%s", devs[i]);
        f = openat(d, devs[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
        if (f >= 0) {
            close(f);
            f = openat(d, devs[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
        if (f >= 0) {
            fd_path(f, name);
        }
        if (f < 0 || mount(host, name, NULL, MS_BIND, NULL) < 0) {
            int e = errno;
            if (f >= 0) {
                close(f);
            }
            close(d);
            return fail(e, "binding %s into /dev", host);
        }
        close(f);
    }
    if (mkdirat(d, "pts", 0755) < 0 || mkdirat(d, "shm", 01777) < 0) {
        int e = errno;
        close(d);
        return fail(e, "%s", "/dev/pts, /dev/shm");
    }
    f = openat(d, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (f >= 0) {
        fd_path(f, name);
    }
    if (f < 0 ||
        mount("devpts", name, "devpts", MS_NOSUID | MS_NOEXEC,
              c->rootless ? "newinstance,ptmxmode=0666,mode=0620"
                          : "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0) {
        int e = errno;
        if (f >= 0) {
            close(f);
        }
        close(d);
        return fail(e, "devpts at %s", "/dev/pts");
    }
    close(f);
    f = openat(d, "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (f >= 0) {
        fd_path(f, name);
    }
    if (f < 0 || mount("shm", name, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "mode=1777,size=65536k") < 0) {
        int e = errno;
        if (f >= 0) {
            close(f);
        }
        close(d);
        return fail(e, "tmpfs at %s", "/dev/shm");
    }
    close(f);
    for (size_t i = 0; i < KILN_ARRAY_SIZE(links); i++) {
        if (symlinkat(links[i][1], d, links[i][0]) < 0) {
            int e = errno;
            close(d);
            return fail(e, "/dev/%s", links[i][0]);
        }
    }
    close(d);
    return 0;
}

/* A generated file bound over `dest` (made if missing). */
static int gen_file(struct ctx *c, const char *dest, const char *name,
                    const char *text)
{
    char p[PATH_MAX + 32];

    snprintf(p, sizeof(p), "%s/%s", c->staging, name);
    if (write_text(p, text, strlen(text), 0644) < 0) {
        return fail(errno, "writing %s", name);
    }
    return bind_to(c, p, NULL, dest, false, true);
}

static int loopback_up(void)
{
    struct ifreq ifr = {0};
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = -1;

    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (s >= 0) {
        close(s);
    }
    return rc < 0 ? fail(errno, "bringing up %s", "lo") : 0;
}

static int mount_root(struct ctx *c)
{
    const kiln__exec_mount_t *m = &c->s->mounts[0];

    if (mkdir(c->root, 0755) < 0) {
        return fail(errno, "%s", c->root);
    }
    if (m->type == KILN__EXEC_MNT_OVERLAY) {
        if (mount_overlay(c, m, c->root) < 0) {
            return -1;
        }
    } else if (mount(m->src, c->root, NULL, MS_BIND | MS_REC, NULL) < 0) {
        return fail(errno, "binding the root %s", m->src);
    }
    c->rootfd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return c->rootfd >= 0 ? 0 : fail(errno, "%s", c->root);
}

static int pivot(struct ctx *c)
{
    if (c->s->mounts[0].readonly && make_readonly(c->rootfd, "/") < 0) {
        return -1;
    }
    if (chdir(c->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
        umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
        return fail(errno, "pivot_root into %s", c->root);
    }
    close(c->rootfd);
    return 0;
}

int kiln__helper_mounts(const kiln__exec_spec_t *s, const char *staging,
                        bool rootless)
{
    struct ctx c = {.s = s, .rootfd = -1, .rootless = rootless};
    char p[PATH_MAX + 16];

    if (s->n_mounts == 0 || strcmp(s->mounts[0].dest, "/") != 0) {
        return fail(EINVAL, "spec: the first mount is not the root");
    }
    snprintf(c.staging, sizeof(c.staging), "%s", staging);
    snprintf(c.root, sizeof(c.root), "%s/root", staging);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        return fail(errno, "making mounts private");
    }
    /* Secrets and generated files never touch a disk. */
    if (mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") <
        0) {
        return fail(errno, "tmpfs at %s", staging);
    }
    snprintf(p, sizeof(p), "%s/secrets", staging);
    if (mkdir(p, 0700) < 0) {
        return fail(errno, "%s", p);
    }
    if (mount_root(&c) < 0) {
        return -1;
    }
    if (sys_mount(&c, "/proc", true, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) < 0 ||
        protect_proc(&c) < 0 || make_dev(&c) < 0) {
        return -1;
    }
    if ((s->hosts != NULL &&
         gen_file(&c, "/etc/hosts", "hosts", s->hosts) < 0) ||
        (s->resolv != NULL &&
         gen_file(&c, "/etc/resolv.conf", "resolv.conf", s->resolv) < 0)) {
        return -1;
    }
    for (size_t i = 1; i < s->n_mounts; i++) {
        if (op_mount(&c, &s->mounts[i], i) < 0) {
            return -1;
        }
    }
    if (s->net_none && loopback_up() < 0) {
        return -1;
    }
    return pivot(&c);
}
