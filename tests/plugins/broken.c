/*
 * Deliberately broken plugins for the loader's tests, one per BROKEN_*
 * macro (tests/plugins/meson.build builds each as its own module), and
 * two good ones that claim the same scheme.
 */
#include <errno.h>
#include <stddef.h>

#include <kiln/plugin.h>

#if !defined(BROKEN_NO_ENTRY)
static int resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    (void)state;
    (void)src;
    (void)job;
    return 0;
}

#if !defined(BROKEN_NO_FETCH)
static int fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                 const char *dest)
{
    (void)state;
    (void)job;
    (void)src;
    (void)dest;
    return 0;
}
#endif
#endif

#if defined(BROKEN_NO_ENTRY)
/* A shared object, but no kiln_plugin_entry. */
KILN_PLUGIN_EXPORT int not_a_kiln_plugin(void);
int not_a_kiln_plugin(void)
{
    return 1;
}
#else
#if defined(BROKEN_INIT_FAILS)
static int init_fail(const kiln_host_t *host, void **state)
{
    (void)host;
    (void)state;
    return -EIO;
}
#endif

static const char *const schemes[] = {"dup", NULL};

static const kiln_plugin_t desc = {
#if defined(BROKEN_BAD_MAGIC)
    .magic = 0x12345678u,
#else
    .magic = KILN_PLUGIN_MAGIC,
#endif
#if defined(BROKEN_NEW_MAJOR)
    .abi_major = KILN_PLUGIN_ABI_MAJOR + 1,
#else
    .abi_major = KILN_PLUGIN_ABI_MAJOR,
#endif
#if defined(BROKEN_NEW_MINOR)
    .abi_minor = KILN_PLUGIN_ABI_MINOR + 7,
#else
    .abi_minor = KILN_PLUGIN_ABI_MINOR,
#endif
#if defined(BROKEN_SMALL)
    .size = 16,
#else
    .size = sizeof(kiln_plugin_t),
#endif
#if defined(BROKEN_DUP_B)
    .name = "dup-b",
#elif defined(BROKEN_BAD_NAME)
    .name = "../up",
#else
    .name = "dup-a",
#endif
    .version = "0.0.1",
    .schemes = schemes,
#if defined(BROKEN_INIT_FAILS)
    .init = init_fail,
#endif
    .resolve = resolve,
#if !defined(BROKEN_NO_FETCH)
    .fetch = fetch,
#endif
};

KILN_PLUGIN_DEFINE(desc)
#endif
