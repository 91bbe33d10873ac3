/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the npm cataloger. */
static enum catalog_want
npm_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_npm = {.name = "npm", .want = npm_want};
