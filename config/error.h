/*
 * The error convention shared by every module.
 *
 * A function that can fail returns int (0 on success, -1 on failure) or a
 * pointer (NULL on failure) and takes `struct pg_error **err` as its last
 * argument. On failure it stores a new error there, unless err is NULL. The
 * error carries the HTTP status and the OCI error code a client would see,
 * so the one place that builds responses (proxy/respond.c) needs nothing
 * else. Callers add context with pg_error_prefix() as the error climbs.
 * No function both logs an error and returns it.
 */
#ifndef PG_ERROR_H
#define PG_ERROR_H

#include <stddef.h>

/* OCI distribution error codes, as the specification spells them. */
#define PG_ERR_BLOB_UNKNOWN "BLOB_UNKNOWN"
#define PG_ERR_DIGEST_INVALID "DIGEST_INVALID"
#define PG_ERR_MANIFEST_INVALID "MANIFEST_INVALID"
#define PG_ERR_MANIFEST_UNKNOWN "MANIFEST_UNKNOWN"
#define PG_ERR_NAME_INVALID "NAME_INVALID"
#define PG_ERR_NAME_UNKNOWN "NAME_UNKNOWN"
#define PG_ERR_UNAUTHORIZED "UNAUTHORIZED"
#define PG_ERR_DENIED "DENIED"
#define PG_ERR_UNSUPPORTED "UNSUPPORTED"
#define PG_ERR_UNAVAILABLE "UNAVAILABLE"
#define PG_ERR_TOOMANYREQUESTS "TOOMANYREQUESTS"
#define PG_ERR_RANGE_INVALID "RANGE_INVALID"

/* Errors that never reach a client (configuration, files, internal). */
#define PG_ERR_CONFIG "CONFIG_INVALID"
#define PG_ERR_INTERNAL "INTERNAL"

#define PG_ERROR_MESSAGE_MAX 1024

struct pg_error {
    int status;       /* HTTP status a client gets: 400, 403, 404, 502... */
    const char *code; /* one of the PG_ERR_* strings; never freed */
    unsigned retry_after; /* seconds for a Retry-After header; 0: none */
    char message[PG_ERROR_MESSAGE_MAX];
};

/*
 * Stores a new error in *err unless err is NULL or *err is already set (the
 * first, most specific error wins). The message is formatted with printf
 * rules and truncated to PG_ERROR_MESSAGE_MAX - 1 bytes.
 */
void pg_error_set(struct pg_error **err, int status, const char *code,
                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prepends "context: " to the message of *err, if there is one. */
void pg_error_prefix(struct pg_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns a copy of src (NULL when src is NULL or memory is short). */
struct pg_error *pg_error_copy(const struct pg_error *src);

/* Frees an error; accepts NULL. */
void pg_error_free(struct pg_error *err);

/* Frees *err and sets it to NULL. */
void pg_error_clear(struct pg_error **err);

#endif
