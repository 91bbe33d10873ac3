/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the dpkg cataloger. */
static enum catalog_want
dpkg_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_dpkg = {.name = "dpkg", .want = dpkg_want};

/* TODO: replace this placeholder with the dpkg-copyright cataloger. */
static enum catalog_want
dpkg_copyright_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_dpkg_copyright = {.name = "dpkg-copyright", .want = dpkg_copyright_want};
