/*
 * kiln-run, the exec helper: what its parts share. Private to core/exec.
 *
 * Process tree: kiln spawns kiln-run (the "outer" process), which
 * unshares its namespaces and forks the build's init, pid 1 of the new pid
 * namespace. Init makes the mounts, pivots into the root, forks the
 * command and reaps every process until the command ends, then exits with
 * its status, so that the kernel kills whatever the command left behind.
 * Killing the outer process (cancel) kills init (PR_SET_PDEATHSIG), and
 * with it the whole namespace.
 *
 * Descriptor 3 is a socket to kiln: the spec arrives on it, and the helper
 * answers with status records (kiln__exec_rec()): the tags below.
 */
#ifndef KILN_EXEC_HELPER_H
#define KILN_EXEC_HELPER_H

#include <stdbool.h>
#include <sys/types.h>

#include "exec/spec.h"
#include "exec/user.h"

#define KILN__EXEC_FD 3

/* Status tags, helper -> kiln. */
enum kiln__exec_status {
    KILN__EXEC_ST_ERROR = 'E', /* [message]: setting up failed */
    KILN__EXEC_ST_NOOVL = 'O', /* [message]: overlayfs refused */
    KILN__EXEC_ST_NONS = 'n',  /* [message]: namespaces refused */
    KILN__EXEC_ST_STUB = 'S',  /* [path, "1" if removable parent]: made */
    KILN__EXEC_ST_START = 'X', /* [message]: the command did not start */
    KILN__EXEC_ST_WARN = 'W',  /* [message] */
};

/* Exit status of the helper when it failed before the command ran. */
#define KILN__EXEC_EXIT_SETUP 125

/* Sends a status record (best effort). */
void kiln__helper_status(int tag, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln__helper_stub(const char *path, bool parent);

/*
 * In init, before the command: every mount of the spec under `staging`
 * (an empty directory the helper owns), /proc, /dev, /etc/hosts and
 * /etc/resolv.conf, then pivot_root into the new root. Returns 0, or -1
 * after sending an ERROR (or NOOVL) status.
 */
int kiln__helper_mounts(const kiln__exec_spec_t *s, const char *staging,
                        bool rootless);

/*
 * SSH forwarding (relay.c): init relays connections made to `listen_fd`
 * to the agent socket `agent_fd` (O_PATH, from before pivot_root). When
 * any are registered, init runs kiln__helper_relay_run() instead of a
 * plain wait: it relays until `cmd` exits and returns its exit status.
 */
int kiln__helper_relay_add(int listen_fd, int agent_fd);
bool kiln__helper_relay_wanted(void);
int kiln__helper_relay_run(pid_t cmd);

#endif
