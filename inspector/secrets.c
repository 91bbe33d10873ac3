/* Placeholder for the secret scanner. */
#include <stdlib.h>

#include "inspector/catalog.h"
#include "inspector/secrets.h"

/* TODO: replace this placeholder with the secret scanner. */
struct inspector_secrets {
    int unused;
};

struct inspector_secrets *
inspector_secrets_new(const struct config_secret_rule *extra, size_t n,
                      struct pg_error **err)
{
    (void)extra;
    (void)n;
    (void)err;
    return calloc(1, sizeof(struct inspector_secrets));
}

void
inspector_secrets_free(struct inspector_secrets *secrets)
{
    free(secrets);
}

int
secrets_check_path(struct catalog_ctx *ctx, const char *path)
{
    (void)ctx;
    (void)path;
    return 0;
}

int
secrets_scan(struct catalog_ctx *ctx, const char *path,
             const unsigned char *data, size_t len)
{
    (void)ctx;
    (void)path;
    (void)data;
    (void)len;
    return 0;
}
