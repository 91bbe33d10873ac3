/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the os-release cataloger. */
static enum catalog_want
os_release_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_os_release = {.name = "os-release", .want = os_release_want};
