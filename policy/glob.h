/*
 * The globs of policy files: rule scopes, exceptions and the CEL function
 * matchesGlob().
 *
 *   *      any run of characters except '/'
 *   **     any run of characters including '/' (so do three or more '*')
 *   ?      one character except '/'
 *   [abc]  one character of the class, [a-z] a range, [!a-z] any character
 *          outside the class; a class never matches '/'. A ']' right after
 *          '[' or '[!' is a member, and '\' escapes the next character.
 *   \x     x itself
 *
 * Every other character matches itself, and the glob must match the whole
 * text. A character is one UTF-8 sequence; a byte that starts no valid
 * sequence is a character of its own, matched only by the same byte, '?',
 * '*' or '**'. Matching takes time proportional to the lengths of the glob
 * and the text multiplied, with no backtracking, so no glob can stall it.
 */
#ifndef PG_GLOB_H
#define PG_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of one glob. A longer glob is invalid. */
#define PG_GLOB_MAX_BYTES 1024

/*
 * Matches text_len bytes of text against glob_len bytes of glob. Neither
 * needs a NUL byte at its end, and both may contain NUL bytes. With
 * ignore_case, the ASCII letters A-Z and a-z match either case, also in
 * ranges. Returns whether the glob matches the whole text. An invalid
 * glob (see pg_glob_check()) matches nothing.
 */
bool pg_glob_match(const char *glob, size_t glob_len, const char *text,
                   size_t text_len, bool ignore_case);

/*
 * Checks that a glob is valid: not empty, at most PG_GLOB_MAX_BYTES long,
 * every class closed by ']' with no range whose end is below its start,
 * and no '\' as its last character. Returns 0, or -1 with a message in
 * why (why_size bytes, NUL-terminated, may be 0) that names the problem
 * and its position as a 1-based character count, but not the glob itself,
 * so the caller can quote it as it sees fit.
 */
/* As pg_glob_match, for a glob that pg_glob_check() has accepted, so
 * that a glob checked once can be matched many times without checking it
 * again. */
bool pg_glob_match_valid(const char *glob, size_t glob_len, const char *text,
                         size_t text_len, bool ignore_case);

int pg_glob_check(const char *glob, size_t glob_len, char *why,
                  size_t why_size);

#endif
