/*
 * A test plugin whose fetch() makes two layers with add_layer() (ABI 1.1):
 * the first has /a and /b, the second deletes /a with a whiteout and adds
 * /c, so the source's result holds /b and /c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kiln/plugin.h>

static const kiln_host_t *host;

static int layers_init(const kiln_host_t *h, void **state)
{
    (void)state;
    if (!KILN_HOST_HAS(h, add_layer)) {
        return -ENOTSUP;
    }
    host = h;
    return 0;
}

static int resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    (void)state;
    (void)src;
    return host->set_pin(job, "layers-test-1");
}

static int put(kiln_job_t *job, const char *dir, const char *name,
               const char *data)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
        if (fd >= 0) {
            close(fd);
        }
        return host->fail(job, -EIO, "layers: %s: %s", path, strerror(errno));
    }
    return close(fd) == 0 ? 0 : host->fail(job, -EIO, "layers: close");
}

static int fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                 const char *dest)
{
    char upper[4096];
    int rc;

    (void)state;
    (void)src;
    rc = put(job, dest, "a", "a\n");
    if (rc == 0) {
        rc = put(job, dest, "b", "b\n");
    }
    if (rc == 0) {
        rc = host->add_layer(job, upper, sizeof(upper));
    }
    if (rc == 0) {
        rc = put(job, upper, ".wh.a", "");
    }
    if (rc == 0) {
        rc = put(job, upper, "c", "c\n");
    }
    return rc;
}

static const char *const schemes[] = {"layers", NULL};

static const kiln_plugin_t desc = {
    KILN_PLUGIN_HEADER,
    .name = "layers",
    .version = "0.0.1",
    .schemes = schemes,
    .init = layers_init,
    .resolve = resolve,
    .fetch = fetch,
};

KILN_PLUGIN_DEFINE(desc)
