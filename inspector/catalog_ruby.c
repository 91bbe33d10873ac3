/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the ruby cataloger. */
static enum catalog_want
ruby_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_ruby = {.name = "ruby", .want = ruby_want};
