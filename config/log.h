/*
 * One-line, key=value logging to standard error.
 *
 * Each line is "ts=... level=... event=NAME" followed by the caller's
 * key=value pairs. Values that come from the network or from files must go
 * through pg_log_quote() so that a hostile value cannot forge a line or a
 * key. Credentials, tokens and Authorization headers are never passed here.
 * Safe to call from any thread: each line is written with one write(2).
 */
#ifndef PG_LOG_H
#define PG_LOG_H

#include <stddef.h>
#include <stdint.h>

enum pg_log_level {
    PG_LOG_DEBUG,
    PG_LOG_INFO,
    PG_LOG_WARN,
    PG_LOG_ERROR,
};

/* Sets the lowest level written; lines below it are dropped. */
void pg_log_set_level(enum pg_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int pg_log_parse_level(const char *name, enum pg_log_level *level);

/* Writes one line; fmt formats the key=value pairs after the event name. */
void pg_log(enum pg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes value into buf as a log value: unchanged when it is made only of
 * printable ASCII other than space, '"', '\\' and '=', otherwise in double
 * quotes with '"', '\\' and bytes outside printable ASCII escaped (\xNN).
 * A value longer than buf is cut and ends in "...". NULL becomes "-".
 * Returns buf.
 */
const char *pg_log_quote(char *buf, size_t size, const char *value);

/* Milliseconds on the monotonic clock, for elapsed_ms and duration_ms. */
uint64_t pg_monotonic_ms(void);

#endif
