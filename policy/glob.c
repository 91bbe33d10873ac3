/*
 * Glob matching for policies (the language is in policy/glob.h).
 *
 * The matcher runs the glob as a nondeterministic automaton: a state is
 * the byte offset of the glob's next token, and the set of live states
 * advances one text character at a time. A '*' state stays live while the
 * text has no '/', a '**' state stays live always, and both also make the
 * state after them live. With at most PG_GLOB_MAX_BYTES + 1 states the
 * sets fit in two small bitsets on the stack, and each text character
 * costs at most one pass over the glob.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy/glob.h"

/* The value given to a byte that starts no valid UTF-8 sequence: above
 * every code point, so it equals only the same byte. */
#define GLOB_INVALID_BYTE_BASE 0x110000u

enum glob_token_kind {
    GLOB_TOKEN_END,
    GLOB_TOKEN_CHAR,
    GLOB_TOKEN_ANY,      /* ? */
    GLOB_TOKEN_STAR,     /* * */
    GLOB_TOKEN_STARSTAR, /* ** or longer runs of '*' */
    GLOB_TOKEN_CLASS,
};

/* The problems a glob can have, for the messages of pg_glob_check(). */
enum glob_problem {
    GLOB_OK,
    GLOB_TRAILING_BACKSLASH,
    GLOB_UNTERMINATED_CLASS,
    GLOB_REVERSED_RANGE,
};

/* One token of a glob, read at some offset. */
struct glob_token {
    enum glob_token_kind kind;
    uint32_t c;        /* CHAR: the code point to match */
    bool negated;      /* CLASS: written [!...] */
    size_t body;       /* CLASS: offset of the first member */
    size_t body_end;   /* CLASS: offset of the closing ']' */
    size_t next;       /* offset of the token after this one */
    size_t problem_at; /* offset a problem was found at */
};

#define GLOB_STATE_WORDS ((PG_GLOB_MAX_BYTES + 1 + 63) / 64)

/* A set of glob offsets, one bit each. */
struct glob_states {
    uint64_t bits[GLOB_STATE_WORDS];
};

/*
 * Decodes the UTF-8 sequence at s[pos] (pos < len). Stores its code point
 * in *cp and returns its length. An invalid, overlong, surrogate or
 * truncated sequence yields its first byte alone, as
 * GLOB_INVALID_BYTE_BASE plus the byte.
 */
static size_t
decode_utf8(const char *s, size_t len, size_t pos, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s + pos;
    size_t avail = len - pos, need;
    uint32_t value, min;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        need = 2, value = p[0] & 0x1F, min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        need = 3, value = p[0] & 0x0F, min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        need = 4, value = p[0] & 0x07, min = 0x10000;
    } else {
        goto invalid;
    }
    if (need > avail)
        goto invalid;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            goto invalid;
        value = (value << 6) | (p[i] & 0x3F);
    }
    if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        goto invalid;
    *cp = value;
    return need;

invalid:
    *cp = GLOB_INVALID_BYTE_BASE + p[0];
    return 1;
}

static uint32_t
fold_ascii(uint32_t c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * Reads one class member at *pos, a character or an escaped one, into
 * *cp. Returns GLOB_OK, or a problem when the glob ends first.
 */
static enum glob_problem
read_class_char(const char *glob, size_t len, size_t *pos, uint32_t *cp)
{
    if (glob[*pos] == '\\') {
        if (*pos + 1 >= len)
            return GLOB_UNTERMINATED_CLASS;
        (*pos)++;
    }
    *pos += decode_utf8(glob, len, *pos, cp);
    return *pos < len ? GLOB_OK : GLOB_UNTERMINATED_CLASS;
}

/*
 * Reads the members of a class from tok->body to its closing ']', checking
 * each range, and sets tok->body_end and tok->next. Returns GLOB_OK or the
 * problem, with tok->problem_at set.
 */
static enum glob_problem
read_class(const char *glob, size_t len, struct glob_token *tok)
{
    size_t pos = tok->body;

    if (pos >= len)
        goto unterminated;

    /* A ']' right after '[' or '[!' is a member, not the end. */
    for (bool first = true; first || glob[pos] != ']'; first = false) {
        size_t start = pos;
        uint32_t low, high;

        if (read_class_char(glob, len, &pos, &low) != GLOB_OK)
            goto unterminated;
        if (glob[pos] != '-' || pos + 1 >= len || glob[pos + 1] == ']')
            continue;
        pos++;
        if (read_class_char(glob, len, &pos, &high) != GLOB_OK)
            goto unterminated;
        if (high < low) {
            tok->problem_at = start;
            tok->next = pos;
            return GLOB_REVERSED_RANGE;
        }
    }
    tok->body_end = pos;
    tok->next = pos + 1;
    return GLOB_OK;

unterminated:
    tok->problem_at = tok->body - 1 - tok->negated;
    return GLOB_UNTERMINATED_CLASS;
}

/* Reads the token at pos (pos <= len) into *tok. Returns GLOB_OK or the
 * problem that makes the glob invalid there. */
static enum glob_problem
read_token(const char *glob, size_t len, size_t pos, struct glob_token *tok)
{
    memset(tok, 0, sizeof(*tok));
    tok->problem_at = pos;
    if (pos >= len) {
        tok->kind = GLOB_TOKEN_END;
        tok->next = len;
        return GLOB_OK;
    }
    switch (glob[pos]) {
    case '*':
        tok->next = pos + 1;
        while (tok->next < len && glob[tok->next] == '*')
            tok->next++;
        tok->kind =
            tok->next - pos == 1 ? GLOB_TOKEN_STAR : GLOB_TOKEN_STARSTAR;
        return GLOB_OK;
    case '?':
        tok->kind = GLOB_TOKEN_ANY;
        tok->next = pos + 1;
        return GLOB_OK;
    case '[':
        tok->kind = GLOB_TOKEN_CLASS;
        tok->negated = pos + 1 < len && glob[pos + 1] == '!';
        tok->body = pos + 1 + tok->negated;
        return read_class(glob, len, tok);
    case '\\':
        if (pos + 1 >= len)
            return GLOB_TRAILING_BACKSLASH;
        pos++;
        break;
    default:
        break;
    }
    tok->kind = GLOB_TOKEN_CHAR;
    tok->next = pos + decode_utf8(glob, len, pos, &tok->c);
    return GLOB_OK;
}

static bool
in_range(uint32_t c, uint32_t low, uint32_t high, bool ignore_case)
{
    if (c >= low && c <= high)
        return true;
    if (!ignore_case)
        return false;

    /* Try the other case of an ASCII letter. */
    if (c >= 'a' && c <= 'z')
        c = c - 'a' + 'A';
    else if (c >= 'A' && c <= 'Z')
        c = c - 'A' + 'a';
    else
        return false;
    return c >= low && c <= high;
}

/* Returns whether character c is a member of the class tok, which
 * read_token() has checked. */
static bool
class_matches(const char *glob, const struct glob_token *tok, uint32_t c,
              bool ignore_case)
{
    size_t pos = tok->body;
    bool member = false;

    if (c == '/')
        return false;
    for (bool first = true; !member && (first || pos < tok->body_end);
         first = false) {
        uint32_t low = 0, high;

        read_class_char(glob, tok->body_end + 1, &pos, &low);
        high = low;
        if (glob[pos] == '-' && pos + 1 < tok->body_end) {
            pos++;
            read_class_char(glob, tok->body_end + 1, &pos, &high);
        }
        member = in_range(c, low, high, ignore_case);
    }
    return member != tok->negated;
}

static void
states_add(struct glob_states *set, size_t state)
{
    set->bits[state / 64] |= UINT64_C(1) << (state % 64);
}

static bool
states_has(const struct glob_states *set, size_t state)
{
    return (set->bits[state / 64] >> (state % 64)) & 1;
}

/*
 * Makes state live in set, and with it every state an empty run of text
 * reaches from there: the states after '*' and '**' tokens.
 */
static void
states_enter(struct glob_states *set, const char *glob, size_t len,
             size_t state)
{
    states_add(set, state);
    while (state < len && glob[state] == '*') {
        while (state < len && glob[state] == '*')
            state++;
        states_add(set, state);
    }
}

/* Advances every state of cur over the character c into next. Returns
 * whether any state is live afterwards. */
static bool
states_step(const struct glob_states *cur, struct glob_states *next,
            const char *glob, size_t len, uint32_t c, bool ignore_case)
{
    bool live = false;

    memset(next, 0, sizeof(*next));
    for (size_t state = 0; state < len; state++) {
        struct glob_token tok;
        size_t target;

        if (!states_has(cur, state))
            continue;
        read_token(glob, len, state, &tok);
        if (tok.kind == GLOB_TOKEN_STARSTAR ||
            (tok.kind == GLOB_TOKEN_STAR && c != '/'))
            target = state;
        else if ((tok.kind == GLOB_TOKEN_ANY && c != '/') ||
                 (tok.kind == GLOB_TOKEN_CHAR &&
                  (ignore_case ? fold_ascii(tok.c) == fold_ascii(c)
                               : tok.c == c)) ||
                 (tok.kind == GLOB_TOKEN_CLASS &&
                  class_matches(glob, &tok, c, ignore_case)))
            target = tok.next;
        else
            continue;
        states_enter(next, glob, len, target);
        live = true;
    }
    return live;
}

/* Whether byte c can only match itself, because it does not start or
 * end a wildcard, a class or an escape. */
static bool
is_plain_byte(char c)
{
    return c != '*' && c != '?' && c != '[' && c != ']' && c != '\\';
}

static bool
bytes_equal(const char *a, const char *b, size_t n, bool ignore_case)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

        if (ignore_case) {
            x = (unsigned char)(x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x);
            y = (unsigned char)(y >= 'A' && y <= 'Z' ? y - 'A' + 'a' : y);
        }
        if (x != y)
            return false;
    }
    return true;
}

/*
 * Compares the plain bytes at the start and at the end of the glob with
 * the text's. Most texts a policy tests (every file path against a glob
 * that ends in /.aws/credentials) fail here, in time proportional to
 * those bytes, before the automaton runs. Returns false only when the
 * text cannot match. A glob that is all plain bytes is decided here, and
 * *decided is then true.
 */
static bool
plain_ends_match(const char *glob, size_t glob_len, const char *text,
                 size_t text_len, bool ignore_case, bool *decided)
{
    size_t head = 0, tail = 0;

    while (head < glob_len && is_plain_byte(glob[head]))
        head++;
    *decided = head == glob_len;
    if (*decided)
        return glob_len == text_len &&
               bytes_equal(glob, text, text_len, ignore_case);
    while (tail < glob_len - head && is_plain_byte(glob[glob_len - 1 - tail]))
        tail++;
    if (head + tail > text_len)
        return false;
    return bytes_equal(glob, text, head, ignore_case) &&
           bytes_equal(glob + glob_len - tail, text + text_len - tail, tail,
                       ignore_case);
}

/*
 * Finds the longest run of plain bytes outside classes, which every
 * matching text contains somewhere: "/.ssh/id_" for a glob that starts
 * with ** and ends with *. Stores its offset and length.
 */
static void
longest_plain_run(const char *glob, size_t len, size_t *start, size_t *run)
{
    size_t i = 0, current = 0;

    *start = 0;
    *run = 0;
    while (i < len) {
        char c = glob[i];

        if (is_plain_byte(c)) {
            current++;
            if (current > *run) {
                *run = current;
                *start = i + 1 - current;
            }
            i++;
            continue;
        }
        current = 0;
        if (c == '\\') {
            i += 2;
        } else if (c == '[') {
            /* Skip the class: a ']' first (after an optional '!') is a
             * member, and '\\' escapes the next byte. */
            i++;
            if (i < len && glob[i] == '!')
                i++;
            if (i < len && glob[i] == ']')
                i++;
            while (i < len && glob[i] != ']')
                i += glob[i] == '\\' ? 2 : 1;
            i++;
        } else {
            i++;
        }
    }
}

bool
pg_glob_match(const char *glob, size_t glob_len, const char *text,
              size_t text_len, bool ignore_case)
{
    if (pg_glob_check(glob, glob_len, NULL, 0) < 0)
        return false;
    return pg_glob_match_valid(glob, glob_len, text, text_len, ignore_case);
}

bool
pg_glob_match_valid(const char *glob, size_t glob_len, const char *text,
                    size_t text_len, bool ignore_case)
{
    struct glob_states sets[2];
    size_t pos = 0, cur = 0;
    bool decided, possible;

    possible =
        plain_ends_match(glob, glob_len, text, text_len, ignore_case, &decided);
    if (!possible || decided)
        return possible;
    if (!ignore_case) {
        size_t start, run;

        longest_plain_run(glob, glob_len, &start, &run);
        if (run > 0 && memmem(text, text_len, glob + start, run) == NULL)
            return false;
    }

    memset(&sets[cur], 0, sizeof(sets[cur]));
    states_enter(&sets[cur], glob, glob_len, 0);
    while (pos < text_len) {
        uint32_t c;

        pos += decode_utf8(text, text_len, pos, &c);
        if (!states_step(&sets[cur], &sets[1 - cur], glob, glob_len, c,
                         ignore_case))
            return false;
        cur = 1 - cur;
    }
    return states_has(&sets[cur], glob_len);
}

/* Returns the 1-based character position of byte offset pos in glob. */
static size_t
character_position(const char *glob, size_t len, size_t pos)
{
    size_t count = 1;

    for (size_t i = 0; i < pos && i < len; count++) {
        uint32_t c;

        i += decode_utf8(glob, len, i, &c);
    }
    return count;
}

static void set_why(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_why(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

/* Writes the message of a problem found at byte offset at. */
static void
describe_problem(enum glob_problem problem, const char *glob, size_t len,
                 size_t at, size_t end, char *why, size_t why_size)
{
    size_t where = character_position(glob, len, at);

    switch (problem) {
    case GLOB_TRAILING_BACKSLASH:
        set_why(why, why_size,
                "the glob ends in a '\\' that escapes nothing; write '\\\\' "
                "for a literal backslash");
        break;
    case GLOB_UNTERMINATED_CLASS:
        set_why(why, why_size,
                "the character class at character %zu has no closing ']'; "
                "close it, or write '\\[' for a literal '['",
                where);
        break;
    default:
        set_why(why, why_size,
                "the range '%.*s' at character %zu ends below its start; "
                "write the lower character first",
                (int)(end - at), glob + at, where);
        break;
    }
}

int
pg_glob_check(const char *glob, size_t glob_len, char *why, size_t why_size)
{
    size_t pos = 0;

    if (glob_len == 0) {
        set_why(why, why_size,
                "the glob is empty; write '**' to match every text");
        return -1;
    }
    if (glob_len > PG_GLOB_MAX_BYTES) {
        set_why(why, why_size,
                "the glob is %zu bytes long, more than the maximum of %u",
                glob_len, (unsigned)PG_GLOB_MAX_BYTES);
        return -1;
    }
    while (pos < glob_len) {
        struct glob_token tok;
        enum glob_problem problem = read_token(glob, glob_len, pos, &tok);

        if (problem != GLOB_OK) {
            describe_problem(problem, glob, glob_len, tok.problem_at, tok.next,
                             why, why_size);
            return -1;
        }
        pos = tok.next;
    }
    return 0;
}
