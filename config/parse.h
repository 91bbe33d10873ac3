/*
 * Checked number parsing. Every number read from a request, a header, a
 * configuration file or an upstream goes through here instead of atoi or a
 * bare strtol: trailing garbage, signs, empty strings and overflow are
 * errors.
 */
#ifndef PG_PARSE_H
#define PG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses the decimal digits of text (no sign, no spaces) into *value.
 * Returns 0, or -1 when text is empty, has a non-digit, or exceeds max.
 */
int pg_parse_u64(const char *text, uint64_t max, uint64_t *value);

/* As pg_parse_u64, for the first len bytes of text. */
int pg_parse_u64_n(const char *text, size_t len, uint64_t max,
                   uint64_t *value);

/*
 * Returns whether JSON text nests arrays and objects no deeper than
 * max_depth, without parsing it. jansson's own limit is fixed when jansson
 * is built (2048 in Debian 12's libjansson 2.14), far above
 * PG_JSON_MAX_DEPTH, so network JSON is scanned with this first. Brackets
 * inside strings do not count.
 */
bool pg_json_depth_within(const char *text, size_t len, unsigned max_depth);

#endif
