/*
 * libFuzzer target for archive unpacking (FileOp copy with Docker ADD
 * compatibility): the input is a file that may be a tar archive, plain or
 * compressed. Whatever it holds, unpacking either succeeds or fails with a
 * message, and nothing is ever written outside the layer directories the
 * op was handed: a canary directory beside them must stay empty.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileop/fileop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[] = "/tmp/kiln-fuzz-unpack-XXXXXX";
static char canary[512];
static int n_layers;

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP) {
        chmod(p, 0700);
        return rmdir(p);
    }
    return unlink(p);
}

static int new_layer(void *ud, char *path, size_t size, kiln_error_t *err)
{
    (void)ud;
    snprintf(path, size, "%s/work/l%d", top, n_layers++);
    if (mkdir(path, 0700) < 0) {
        return kiln__fail(err, KILN_EIO, "%s: cannot create", path);
    }
    return 0;
}

static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool empty = true;

    if (d == NULL) {
        return false;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
        }
    }
    closedir(d);
    return empty;
}

static void write_input(const char *dir, const uint8_t *data, size_t size)
{
    char path[600];
    int fd;

    snprintf(path, sizeof(path), "%s/in.tar", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size)) {
        abort();
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char work[600], src[600];
    Pb__FileOp op = PB__FILE_OP__INIT;
    Pb__FileAction act = PB__FILE_ACTION__INIT, *acts[] = {&act};
    Pb__FileActionCopy cp = PB__FILE_ACTION_COPY__INIT;
    kiln_snap_view_t *views[2] = {NULL, NULL};
    kiln_fileop_result_t *res = NULL;
    kiln_error_t err = {0};
    const char *layers[1];

    if (canary[0] == '\0') {
        if (mkdtemp(top) == NULL) {
            abort();
        }
        snprintf(canary, sizeof(canary), "%s/canary", top);
        mkdir(canary, 0755);
    }
    snprintf(work, sizeof(work), "%s/work", top);
    snprintf(src, sizeof(src), "%s/work/src", top);
    nftw(work, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
    if (mkdir(work, 0700) < 0 || mkdir(src, 0755) < 0) {
        abort();
    }
    write_input(src, data, size);
    layers[0] = src;
    if (kiln__snap_view_open(NULL, 0, &err, &views[0]) != 0 ||
        kiln__snap_view_open(layers, 1, &err, &views[1]) != 0) {
        abort();
    }
    cp.src = "/in.tar";
    cp.dest = "/out";
    cp.mode = -1;
    cp.timestamp = -1;
    cp.attemptunpackdockercompatibility = true;
    cp.createdestpath = true;
    act.input = 0;
    act.secondaryinput = 1;
    act.output = 0;
    act.action_case = PB__FILE_ACTION__ACTION_COPY;
    act.copy = &cp;
    op.n_actions = 1;
    op.actions = acts;
    {
        kiln_fileop_env_t env = {(const kiln_snap_view_t *const *)views, 2,
                                 new_layer, NULL, NULL, NULL};
        int rc = kiln__fileop_run(&op, &env, &err, &res);
        if (rc < 0 && err.message[0] == '\0') {
            fprintf(stderr, "error %d without a message\n", rc);
            abort();
        }
    }
    kiln__fileop_result_free(res);
    kiln__snap_view_free(views[0]);
    kiln__snap_view_free(views[1]);
    if (!dir_empty(canary)) {
        fprintf(stderr, "unpacking wrote outside its layer\n");
        abort();
    }
    return 0;
}
