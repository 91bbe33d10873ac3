/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the apk cataloger. */
static enum catalog_want
apk_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_apk = {.name = "apk", .want = apk_want};
