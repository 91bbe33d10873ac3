#include "config/error.h"
#include "config/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Returned when there is no memory for a new error, so that a failing
 * allocation still produces a 503 instead of a success. It is never freed.
 */
static struct pg_error out_of_memory = {
    .status = 503,
    .code = PG_ERR_UNAVAILABLE,
    .message = "out of memory; the request was not served, retry later",
};

void
pg_error_set(struct pg_error **err, int status, const char *code,
             const char *fmt, ...)
{
    struct pg_error *e;
    va_list ap;

    if (err == NULL || *err != NULL)
        return;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        *err = &out_of_memory;
        return;
    }
    e->status = status;
    e->code = code;

    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    pg_utf8_trim(e->message);

    *err = e;
}

void
pg_error_prefix(struct pg_error **err, const char *fmt, ...)
{
    char prefix[PG_ERROR_MESSAGE_MAX];
    char joined[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    if (err == NULL || *err == NULL || *err == &out_of_memory)
        return;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);

    /* Truncation is expected here: the message keeps its first bytes. */
    prefix[sizeof(prefix) - 3] = '\0';
    pg_utf8_trim(prefix);
    size_t used = strlen(prefix);
    memcpy(joined, prefix, used);
    memcpy(joined + used, ": ", 2);
    used += 2;
    size_t rest = sizeof(joined) - used - 1;
    size_t msg_len = strnlen((*err)->message, rest);
    memcpy(joined + used, (*err)->message, msg_len);
    joined[used + msg_len] = '\0';
    pg_utf8_trim(joined);
    memcpy((*err)->message, joined, sizeof(joined));
}

struct pg_error *
pg_error_copy(const struct pg_error *src)
{
    struct pg_error *copy;

    if (src == NULL)
        return NULL;
    copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return &out_of_memory;
    memcpy(copy, src, sizeof(*copy));
    return copy;
}

void
pg_error_free(struct pg_error *err)
{
    if (err != NULL && err != &out_of_memory)
        free(err);
}

void
pg_error_clear(struct pg_error **err)
{
    if (err == NULL)
        return;
    pg_error_free(*err);
    *err = NULL;
}
