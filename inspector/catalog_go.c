/* Placeholder for the Go build information reader. */
#include <stdlib.h>

#include "inspector/catalog.h"

/* TODO: replace this placeholder with the Go build information reader. */
struct go_scan {
    int unused;
};

struct go_scan *
go_scan_new(const char *path)
{
    (void)path;
    return calloc(1, sizeof(struct go_scan));
}

void
go_scan_feed(struct go_scan *scan, const unsigned char *block, size_t len)
{
    (void)scan;
    (void)block;
    (void)len;
}

int
go_scan_finish(struct catalog_ctx *ctx, struct go_scan *scan)
{
    (void)ctx;
    free(scan);
    return 0;
}

void
go_scan_free(struct go_scan *scan)
{
    free(scan);
}
