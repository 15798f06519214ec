/*
 * SSH agent forwarding in kiln-run's init (helper.h): each SSH mount is a
 * socket of init's own, made on the private tmpfs with SSHOpt's owner and
 * mode and bound at the mount's destination; init relays every connection
 * to the agent's socket on the host, which it reaches through a descriptor
 * kept from before pivot_root (/proc/self/fd/N). So the command sees a
 * socket with the owner and mode it asked for, whatever the agent's are.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/helper.h"

#define MAX_LISTENERS 16
#define MAX_PAIRS     64

static struct {
    int listen_fd;
    int agent_fd; /* O_PATH of the agent's socket */
} listeners[MAX_LISTENERS];
static size_t n_listeners;

static struct {
    int a, b;          /* the command's connection, the agent's */
    bool a_eof, b_eof; /* that side is done sending */
} pairs[MAX_PAIRS];
static size_t n_pairs;

int kiln__helper_relay_add(int listen_fd, int agent_fd)
{
    if (n_listeners == MAX_LISTENERS) {
        return -1;
    }
    listeners[n_listeners].listen_fd = listen_fd;
    listeners[n_listeners++].agent_fd = agent_fd;
    return 0;
}

bool kiln__helper_relay_wanted(void)
{
    return n_listeners > 0;
}

static void accept_one(size_t l)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int c = accept4(listeners[l].listen_fd, NULL, NULL, SOCK_CLOEXEC);
    int a;

    if (c < 0) {
        return;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d",
             listeners[l].agent_fd);
    a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a < 0 || n_pairs == MAX_PAIRS ||
        connect(a, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (a >= 0) {
            close(a);
        }
        close(c);
        return;
    }
    pairs[n_pairs].a = c;
    pairs[n_pairs].b = a;
    pairs[n_pairs].a_eof = pairs[n_pairs].b_eof = false;
    n_pairs++;
}

static void drop_pair(size_t i)
{
    close(pairs[i].a);
    close(pairs[i].b);
    pairs[i] = pairs[--n_pairs];
}

/* Copies what `from` has to `to`: 1 copied, 0 end of `from` (passed on
 * as a half close, as ssh-agent clients expect), -1 an error. */
static int pump(int from, int to)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof(buf));

    if (n == 0) {
        shutdown(to, SHUT_WR);
        return 0;
    }
    if (n < 0) {
        return errno == EINTR ? 1 : -1;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        off += w;
    }
    return 1;
}

int kiln__helper_relay_run(pid_t cmd)
{
    int pidfd = (int)syscall(SYS_pidfd_open, cmd, 0);
    struct pollfd fds[1 + MAX_LISTENERS + 2 * MAX_PAIRS];

    for (;;) {
        size_t n = 0, np = n_pairs;
        int st;

        fds[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        for (size_t l = 0; l < n_listeners; l++) {
            fds[n++] =
                (struct pollfd){.fd = listeners[l].listen_fd, .events = POLLIN};
        }
        for (size_t p = 0; p < np; p++) {
            /* A side that ended is not polled (fd -1 is skipped). */
            fds[n++] = (struct pollfd){.fd = pairs[p].a_eof ? -1 : pairs[p].a,
                                       .events = POLLIN};
            fds[n++] = (struct pollfd){.fd = pairs[p].b_eof ? -1 : pairs[p].b,
                                       .events = POLLIN};
        }
        /* Without a pidfd, poll for the command's end now and then. */
        if (poll(fds, n, pidfd >= 0 ? 1000 : 100) < 0 && errno != EINTR) {
            break;
        }
        /* The command, and the orphans init inherits. */
        for (pid_t w; (w = waitpid(-1, &st, WNOHANG)) > 0;) {
            if (w == cmd) {
                if (pidfd >= 0) {
                    close(pidfd);
                }
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
        }
        for (size_t l = 0; l < n_listeners; l++) {
            if (fds[1 + l].revents & POLLIN) {
                accept_one(l);
            }
        }
        for (size_t p = np; p-- > 0;) {
            struct pollfd *fa = &fds[1 + n_listeners + 2 * p];
            struct pollfd *fb = fa + 1;
            int ra = 1, rb = 1;

            if (fa->revents & (POLLIN | POLLHUP | POLLERR)) {
                ra = pump(pairs[p].a, pairs[p].b);
                pairs[p].a_eof |= ra == 0;
            }
            if (ra >= 0 && (fb->revents & (POLLIN | POLLHUP | POLLERR))) {
                rb = pump(pairs[p].b, pairs[p].a);
                pairs[p].b_eof |= rb == 0;
            }
            if (ra < 0 || rb < 0 || (pairs[p].a_eof && pairs[p].b_eof)) {
                drop_pair(p);
            }
        }
    }
    return 127;
}
