/* Placeholder. */
#include "inspector/catalog.h"

/* TODO: replace this placeholder with the python cataloger. */
static enum catalog_want
python_want(const char *path, int64_t size)
{
    (void)path;
    (void)size;
    return CATALOG_SKIP;
}

const struct cataloger catalog_python = {.name = "python", .want = python_want};
