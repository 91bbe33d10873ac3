#include "config/error.h"

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

/*
 * Cuts a UTF-8 sequence that truncation left incomplete at the end of
 * text. Messages quote names from input and end up in JSON bodies, which
 * must be valid UTF-8, and a cut in the middle of a character would make
 * the whole body unencodable.
 */
static void
trim_partial_utf8(char *text)
{
    size_t len = strlen(text);
    size_t start = len;
    unsigned char lead;
    size_t need;

    /* Continuation bytes have the form 10xxxxxx; a sequence has at most
     * three after its lead byte. */
    while (start > 0 && len - start < 3 &&
           ((unsigned char)text[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)text[start - 1];
    if (lead < 0xC0)
        return;
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (start - 1) < need)
        text[start - 1] = '\0';
}

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
    trim_partial_utf8(e->message);

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
    trim_partial_utf8(prefix);
    size_t used = strlen(prefix);
    memcpy(joined, prefix, used);
    memcpy(joined + used, ": ", 2);
    used += 2;
    size_t rest = sizeof(joined) - used - 1;
    size_t msg_len = strnlen((*err)->message, rest);
    memcpy(joined + used, (*err)->message, msg_len);
    joined[used + msg_len] = '\0';
    trim_partial_utf8(joined);
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
