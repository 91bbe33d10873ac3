#include "config/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PG_LOG_LINE_MAX 8192

static enum pg_log_level min_level = PG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
pg_log_set_level(enum pg_log_level level)
{
    min_level = level;
}

int
pg_log_parse_level(const char *name, enum pg_log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *level = (enum pg_log_level)i;
            return 0;
        }
    }
    return -1;
}

void
pg_log(enum pg_log_level level, const char *event, const char *fmt, ...)
{
    char line[PG_LOG_LINE_MAX];
    struct timespec now;
    struct tm tm;
    size_t used;
    int n;
    va_list ap;

    if (level < min_level)
        return;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L,
                 level_names[level], event);
    used = n > 0 ? (size_t)n : 0;
    if (used >= sizeof(line))
        used = sizeof(line) - 1;

    va_start(ap, fmt);
    n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    va_end(ap);
    if (n > 0)
        used += (size_t)n;
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2;
    while (used > 0 && line[used - 1] == ' ')
        used--;
    line[used++] = '\n';

    /* One write per line keeps lines from different threads whole. */
    if (write(STDERR_FILENO, line, used) < 0)
        return;
}

const char *
pg_log_quote(char *buf, size_t size, const char *value)
{
    static const char hex[] = "0123456789abcdef";
    size_t out = 0;
    int plain = 1;

    if (size < 8) {
        if (size > 0)
            buf[0] = '\0';
        return buf;
    }
    if (value == NULL) {
        buf[0] = '-';
        buf[1] = '\0';
        return buf;
    }
    if (value[0] == '\0')
        plain = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '=') {
            plain = 0;
            break;
        }
    }

    if (!plain)
        buf[out++] = '"';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        char piece[4];
        size_t len;

        if (!plain && (*p == '"' || *p == '\\')) {
            piece[0] = '\\';
            piece[1] = (char)*p;
            len = 2;
        } else if (!plain && (*p < ' ' || *p >= 0x7f)) {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = hex[*p >> 4];
            piece[3] = hex[*p & 0xf];
            len = 4;
        } else {
            piece[0] = (char)*p;
            len = 1;
        }
        /* Keep room for "...", the closing quote and the terminator. */
        if (out + len + 5 > size) {
            memcpy(buf + out, "...", 3);
            out += 3;
            break;
        }
        memcpy(buf + out, piece, len);
        out += len;
    }
    if (!plain)
        buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

uint64_t
pg_monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}
