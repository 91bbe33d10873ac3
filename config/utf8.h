/*
 * UTF-8 helpers shared by every module: messages, JSON documents and XML
 * reports must be valid UTF-8, and their text often comes from input.
 */
#ifndef PG_UTF8_H
#define PG_UTF8_H

#include <stddef.h>

/*
 * Returns the length of the valid UTF-8 sequence that starts at text and
 * fits in left bytes, or 0 when there is none. Overlong forms, surrogates
 * and code points above U+10FFFF are invalid, as RFC 3629 defines.
 */
size_t pg_utf8_sequence_length(const unsigned char *text, size_t left);

/*
 * Cuts a UTF-8 sequence that truncation left incomplete at the end of the
 * NUL-terminated text, so that the text stays valid where it was before.
 */
void pg_utf8_trim(char *text);

#endif
