/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the java cataloger. */
static enum catalog_want
java_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_java = {.name = "java", .want = java_want};
