/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the rpm cataloger. */
static enum catalog_want
rpm_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_rpm = {.name = "rpm", .want = rpm_want};
