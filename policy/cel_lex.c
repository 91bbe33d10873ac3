/*
 * The CEL lexer: turns expression source into tokens one at a time, with
 * the line and column where each starts. String literals are decoded here
 * (escapes, raw and triple-quoted forms) and checked to be valid UTF-8,
 * and number literals are converted with overflow checks. Whether a large
 * int literal fits depends on a preceding minus sign, so int tokens carry
 * their magnitude and the parser checks the range.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/error.h"
#include "policy/cel_internal.h"

/* Characters of a number literal copied out for strtod(). */
#define CEL_NUMBER_TEXT_MAX 512

void
cel_error_at(struct pg_error **err, const char *origin, unsigned line,
             unsigned column, const char *fmt, ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    pg_error_set(err, 400, PG_ERR_CONFIG, "%s:%u:%u: %s", origin, line, column,
                 message);
}

void
cel_error_memory(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while parsing a CEL expression; retry later");
}

void
cel_lexer_init(struct cel_lexer *lx, const char *source, size_t len,
               const char *origin)
{
    lx->source = source;
    lx->len = len;
    lx->pos = 0;
    lx->line = 1;
    lx->column = 1;
    lx->origin = origin;
}

void
cel_token_clear(struct cel_token *tok)
{
    free(tok->string);
    memset(tok, 0, sizeof(*tok));
    tok->kind = CEL_TOK_EOF;
}

static const char *const token_names[] = {
    [CEL_TOK_EOF] = "end of expression",
    [CEL_TOK_IDENT] = "identifier",
    [CEL_TOK_INT] = "int literal",
    [CEL_TOK_UINT] = "uint literal",
    [CEL_TOK_DOUBLE] = "double literal",
    [CEL_TOK_STRING] = "string literal",
    [CEL_TOK_TRUE] = "'true'",
    [CEL_TOK_FALSE] = "'false'",
    [CEL_TOK_NULL] = "'null'",
    [CEL_TOK_IN] = "'in'",
    [CEL_TOK_LPAREN] = "'('",
    [CEL_TOK_RPAREN] = "')'",
    [CEL_TOK_LBRACKET] = "'['",
    [CEL_TOK_RBRACKET] = "']'",
    [CEL_TOK_LBRACE] = "'{'",
    [CEL_TOK_RBRACE] = "'}'",
    [CEL_TOK_DOT] = "'.'",
    [CEL_TOK_COMMA] = "','",
    [CEL_TOK_COLON] = "':'",
    [CEL_TOK_QUESTION] = "'?'",
    [CEL_TOK_PLUS] = "'+'",
    [CEL_TOK_MINUS] = "'-'",
    [CEL_TOK_STAR] = "'*'",
    [CEL_TOK_SLASH] = "'/'",
    [CEL_TOK_PERCENT] = "'%'",
    [CEL_TOK_NOT] = "'!'",
    [CEL_TOK_LT] = "'<'",
    [CEL_TOK_LE] = "'<='",
    [CEL_TOK_GT] = "'>'",
    [CEL_TOK_GE] = "'>='",
    [CEL_TOK_EQ] = "'=='",
    [CEL_TOK_NE] = "'!='",
    [CEL_TOK_AND] = "'&&'",
    [CEL_TOK_OR] = "'||'",
};

const char *
cel_token_kind_name(enum cel_token_kind kind)
{
    if ((size_t)kind >= sizeof(token_names) / sizeof(token_names[0]) ||
        token_names[kind] == NULL)
        return "token";
    return token_names[kind];
}

static void lex_fail(const struct cel_lexer *lx, struct pg_error **err,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets err at the lexer's current position. */
static void
lex_fail(const struct cel_lexer *lx, struct pg_error **err, const char *fmt,
         ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    cel_error_at(err, lx->origin, lx->line, lx->column, "%s", message);
}

static int
peek_at(const struct cel_lexer *lx, size_t ahead)
{
    if (lx->pos + ahead >= lx->len)
        return -1;
    return (unsigned char)lx->source[lx->pos + ahead];
}

/*
 * Moves n bytes forward, counting lines and columns. CR LF, CR and LF each
 * end a line, and UTF-8 continuation bytes add no column.
 */
static void
advance(struct cel_lexer *lx, size_t n)
{
    while (n-- > 0 && lx->pos < lx->len) {
        unsigned char c = (unsigned char)lx->source[lx->pos++];

        if (c == '\n' || (c == '\r' && peek_at(lx, 0) != '\n')) {
            lx->line++;
            lx->column = 1;
        } else if (c != '\r' && (c & 0xC0) != 0x80) {
            lx->column++;
        }
    }
}

/*
 * Decodes one UTF-8 sequence of at most avail bytes. Returns its length
 * and stores the code point, or returns 0 for an invalid, overlong or
 * truncated sequence or an encoded surrogate.
 */
static size_t
utf8_decode(const unsigned char *s, size_t avail, uint32_t *code_point)
{
    uint32_t cp;
    size_t len;
    uint32_t min;

    if (avail == 0)
        return 0;
    if (s[0] < 0x80) {
        *code_point = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        cp = s[0] & 0x1F;
        len = 2;
        min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        cp = s[0] & 0x0F;
        len = 3;
        min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        cp = s[0] & 0x07;
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > avail)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *code_point = cp;
    return len;
}

/* Appends a code point that is known to be valid as UTF-8. */
static size_t
utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Describes the character at the lexer's position for a message. */
static void
describe_char(const struct cel_lexer *lx, char *out, size_t size)
{
    const unsigned char *s = (const unsigned char *)lx->source + lx->pos;
    uint32_t cp;
    size_t n = utf8_decode(s, lx->len - lx->pos, &cp);

    if (n == 0)
        snprintf(out, size, "invalid UTF-8 byte 0x%02X", s[0]);
    else if (cp > 0x20 && cp < 0x7F)
        snprintf(out, size, "'%c'", (char)cp);
    else
        snprintf(out, size, "character U+%04X", (unsigned)cp);
}

static bool
is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int
hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Skips whitespace and // comments. */
static void
skip_space(struct cel_lexer *lx)
{
    for (;;) {
        int c = peek_at(lx, 0);

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            advance(lx, 1);
        } else if (c == '/' && peek_at(lx, 1) == '/') {
            while (peek_at(lx, 0) != -1 && peek_at(lx, 0) != '\n' &&
                   peek_at(lx, 0) != '\r')
                advance(lx, 1);
        } else {
            return;
        }
    }
}

/* Reads count hex digits after an escape letter into *value. */
static int
read_hex_digits(struct cel_lexer *lx, int count, uint32_t *value,
                struct pg_error **err)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        int digit = hex_value(peek_at(lx, 0));

        if (digit < 0) {
            lex_fail(lx, err,
                     "expected %d hexadecimal digits in the escape sequence",
                     count);
            return -1;
        }
        *value = (*value << 4) | (uint32_t)digit;
        advance(lx, 1);
    }
    return 0;
}

/* Reads the two octal digits after the first one of an octal escape. */
static int
read_octal_escape(struct cel_lexer *lx, int first, uint32_t *value,
                  struct pg_error **err)
{
    *value = (uint32_t)(first - '0');
    for (int i = 0; i < 2; i++) {
        int c = peek_at(lx, 0);

        if (c < '0' || c > '7') {
            lex_fail(lx, err,
                     "expected three octal digits (\\000 to \\377) "
                     "in the escape sequence");
            return -1;
        }
        *value = (*value << 3) | (uint32_t)(c - '0');
        advance(lx, 1);
    }
    return 0;
}

/* The character a one-letter escape stands for, or -1. */
static int
simple_escape(int c)
{
    switch (c) {
    case 'a':
        return '\a';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'v':
        return '\v';
    case '\\':
    case '?':
    case '"':
    case '\'':
    case '`':
        return c;
    default:
        return -1;
    }
}

/*
 * Decodes one escape sequence, the lexer standing on its backslash, and
 * appends the code point it stands for to out. In a string literal \x and
 * octal escapes are code points too (\xFF is U+00FF), not bytes.
 */
static int
read_escape(struct cel_lexer *lx, char *out, size_t *out_len,
            struct pg_error **err)
{
    unsigned line = lx->line, column = lx->column;
    int c = peek_at(lx, 1);
    int simple = simple_escape(c);
    uint32_t cp;
    int rc;

    if (c == -1) {
        lex_fail(lx, err,
                 "expected an escape sequence after '\\', found "
                 "end of expression");
        return -1;
    }
    advance(lx, 2);
    if (simple >= 0) {
        out[(*out_len)++] = (char)simple;
        return 0;
    }
    if (c == 'x' || c == 'X')
        rc = read_hex_digits(lx, 2, &cp, err);
    else if (c == 'u')
        rc = read_hex_digits(lx, 4, &cp, err);
    else if (c == 'U')
        rc = read_hex_digits(lx, 8, &cp, err);
    else if (c >= '0' && c <= '3')
        rc = read_octal_escape(lx, c, &cp, err);
    else {
        cel_error_at(err, lx->origin, line, column,
                     "invalid escape sequence '\\%c'; use \\\\ for a "
                     "backslash",
                     c > 0x20 && c < 0x7F ? c : '?');
        return -1;
    }
    if (rc < 0)
        return -1;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
        cel_error_at(err, lx->origin, line, column,
                     "escape sequence U+%04X is not a Unicode scalar value "
                     "(surrogates and values above U+10FFFF are invalid)",
                     (unsigned)cp);
        return -1;
    }
    *out_len += utf8_encode(cp, out + *out_len);
    return 0;
}

/*
 * Reads and decodes a string literal, the lexer standing on its first
 * quote after any r or R prefix. A raw string keeps its backslashes and
 * cannot contain its own quote.
 */
static int
read_string_body(struct cel_lexer *lx, struct cel_token *tok, bool raw,
                 struct pg_error **err)
{
    int quote = peek_at(lx, 0);
    bool triple = peek_at(lx, 1) == quote && peek_at(lx, 2) == quote;
    size_t out_len = 0;
    char *out;

    advance(lx, triple ? 3 : 1);

    /* Every escape decodes to no more bytes than it is written with, so
     * the rest of the source bounds the decoded string. */
    out = malloc(lx->len - lx->pos + 1);
    if (out == NULL) {
        cel_error_memory(err);
        return -1;
    }
    tok->string = out;

    for (;;) {
        int c = peek_at(lx, 0);
        uint32_t cp;
        size_t n;

        if (c == -1) {
            cel_error_at(err, lx->origin, tok->line, tok->column,
                         "string literal is not closed: expected %s%c before "
                         "the end of the expression",
                         triple ? "three of " : "", quote);
            return -1;
        }
        if (c == quote &&
            (!triple || (peek_at(lx, 1) == quote && peek_at(lx, 2) == quote)))
            break;
        if (!triple && (c == '\n' || c == '\r')) {
            cel_error_at(err, lx->origin, tok->line, tok->column,
                         "string literal is not closed before the end of "
                         "the line; use \\n or a triple-quoted string for "
                         "a newline");
            return -1;
        }
        if (c == '\\' && !raw) {
            if (read_escape(lx, out, &out_len, err) < 0)
                return -1;
            continue;
        }
        n = utf8_decode((const unsigned char *)lx->source + lx->pos,
                        lx->len - lx->pos, &cp);
        if (n == 0) {
            lex_fail(lx, err, "invalid UTF-8 byte 0x%02X in string literal",
                     (unsigned)c);
            return -1;
        }
        memcpy(out + out_len, lx->source + lx->pos, n);
        out_len += n;
        advance(lx, n);
    }

    advance(lx, triple ? 3 : 1);
    out[out_len] = '\0';
    tok->string_len = out_len;
    tok->kind = CEL_TOK_STRING;
    return 0;
}

/* Returns the length of a string prefix (r, b, rb, br in any case) that
 * is right before a quote, or 0. */
static size_t
string_prefix_length(const struct cel_lexer *lx, bool *raw, bool *bytes)
{
    size_t i = 0;

    *raw = false;
    *bytes = false;
    while (i < 2) {
        int c = peek_at(lx, i);

        if ((c == 'r' || c == 'R') && !*raw)
            *raw = true;
        else if ((c == 'b' || c == 'B') && !*bytes)
            *bytes = true;
        else
            break;
        i++;
    }
    if (i > 0 && (peek_at(lx, i) == '"' || peek_at(lx, i) == '\''))
        return i;
    *raw = false;
    *bytes = false;
    return 0;
}

static const struct {
    const char *word;
    enum cel_token_kind kind;
} keywords[] = {
    {"true", CEL_TOK_TRUE},
    {"false", CEL_TOK_FALSE},
    {"null", CEL_TOK_NULL},
    {"in", CEL_TOK_IN},
};

/* Reads an identifier, a keyword, or a string literal with a prefix. */
static int
read_word(struct cel_lexer *lx, struct cel_token *tok, struct pg_error **err)
{
    bool raw, bytes;
    size_t prefix = string_prefix_length(lx, &raw, &bytes);
    size_t start = lx->pos;

    if (bytes) {
        lex_fail(lx, err,
                 "bytes literals are not supported; use a string "
                 "literal without the b prefix");
        return -1;
    }
    if (prefix > 0) {
        advance(lx, prefix);
        return read_string_body(lx, tok, raw, err);
    }

    while (is_ident_char(peek_at(lx, 0)))
        advance(lx, 1);
    tok->kind = CEL_TOK_IDENT;
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strlen(keywords[i].word) == lx->pos - start &&
            memcmp(keywords[i].word, lx->source + start, lx->pos - start) == 0)
            tok->kind = keywords[i].kind;
    }
    return 0;
}

/* Accumulates digits in base into *value and returns how many were read.
 * *overflow is set when the value exceeds 2^64 - 1. */
static int
read_digits(struct cel_lexer *lx, unsigned base, uint64_t *value,
            bool *overflow)
{
    int count = 0;
    int digit;

    *value = 0;
    *overflow = false;
    while ((digit = hex_value(peek_at(lx, 0))) >= 0 && (unsigned)digit < base) {
        if (*value > (UINT64_MAX - (unsigned)digit) / base)
            *overflow = true;
        else
            *value = *value * base + (unsigned)digit;
        advance(lx, 1);
        count++;
    }
    return count;
}

/* Reads the fraction and exponent of a double and converts it. */
static int
read_double(struct cel_lexer *lx, struct cel_token *tok, size_t start,
            struct pg_error **err)
{
    char text[CEL_NUMBER_TEXT_MAX];
    size_t len;
    char *end;
    double value;

    if (peek_at(lx, 0) == '.') {
        advance(lx, 1);
        while (peek_at(lx, 0) >= '0' && peek_at(lx, 0) <= '9')
            advance(lx, 1);
    }
    if (peek_at(lx, 0) == 'e' || peek_at(lx, 0) == 'E') {
        int sign = peek_at(lx, 1);
        size_t skip = sign == '+' || sign == '-' ? 2 : 1;
        int digit = peek_at(lx, skip);

        if (digit < '0' || digit > '9') {
            advance(lx, skip);
            lex_fail(lx, err,
                     "expected digits of the exponent of the "
                     "double literal");
            return -1;
        }
        advance(lx, skip);
        while (peek_at(lx, 0) >= '0' && peek_at(lx, 0) <= '9')
            advance(lx, 1);
    }

    len = lx->pos - start;
    if (len >= sizeof(text)) {
        cel_error_at(err, lx->origin, tok->line, tok->column,
                     "double literal is longer than %d characters",
                     CEL_NUMBER_TEXT_MAX - 1);
        return -1;
    }
    memcpy(text, lx->source + start, len);
    text[len] = '\0';
    /* NOTE: strtod() takes the decimal point from LC_NUMERIC. pullgate
     * leaves it at "C", and a program that changes it breaks doubles. */
    errno = 0;
    value = strtod(text, &end);
    if (end != text + len || (errno == ERANGE && (value > 1 || value < -1))) {
        cel_error_at(err, lx->origin, tok->line, tok->column,
                     "double literal %s is out of the range of a 64-bit "
                     "double",
                     text);
        return -1;
    }
    tok->kind = CEL_TOK_DOUBLE;
    tok->number.float64 = value;
    return 0;
}

/* Reads an int, uint or double literal. */
static int
read_number(struct cel_lexer *lx, struct cel_token *tok, struct pg_error **err)
{
    size_t start = lx->pos;
    bool hex = peek_at(lx, 0) == '0' &&
               (peek_at(lx, 1) == 'x' || peek_at(lx, 1) == 'X');
    bool overflow;
    int c;

    if (hex) {
        advance(lx, 2);
        if (read_digits(lx, 16, &tok->number.uint64, &overflow) == 0) {
            lex_fail(lx, err, "expected hexadecimal digits after 0x");
            return -1;
        }
    } else {
        read_digits(lx, 10, &tok->number.uint64, &overflow);
        c = peek_at(lx, 0);
        if ((c == '.' && peek_at(lx, 1) >= '0' && peek_at(lx, 1) <= '9') ||
            c == 'e' || c == 'E') {
            if (read_double(lx, tok, start, err) < 0)
                return -1;
            goto suffix;
        }
    }

    tok->kind = CEL_TOK_INT;
    if (peek_at(lx, 0) == 'u' || peek_at(lx, 0) == 'U') {
        advance(lx, 1);
        tok->kind = CEL_TOK_UINT;
    }
    if (overflow && tok->kind == CEL_TOK_UINT) {
        cel_error_at(err, lx->origin, tok->line, tok->column,
                     "uint literal %.*s is out of range: the maximum is "
                     "18446744073709551615u",
                     (int)(lx->pos - start), lx->source + start);
        return -1;
    }
    if (overflow) {
        cel_error_at(err, lx->origin, tok->line, tok->column,
                     "int literal %.*s is out of range: ints are 64-bit, "
                     "from -9223372036854775808 to 9223372036854775807",
                     (int)(lx->pos - start), lx->source + start);
        return -1;
    }

suffix:
    if (is_ident_char(peek_at(lx, 0))) {
        char what[64];

        describe_char(lx, what, sizeof(what));
        lex_fail(lx, err,
                 "invalid %s after the number literal; "
                 "separate it with a space or an operator",
                 what);
        return -1;
    }
    return 0;
}

/* The operator or punctuation token at the lexer's position, 0 if none,
 * with its length in *len. */
static enum cel_token_kind
match_operator(const struct cel_lexer *lx, size_t *len)
{
    static const struct {
        const char *text;
        enum cel_token_kind kind;
    } table[] = {
        {"<=", CEL_TOK_LE},      {">=", CEL_TOK_GE},    {"==", CEL_TOK_EQ},
        {"!=", CEL_TOK_NE},      {"&&", CEL_TOK_AND},   {"||", CEL_TOK_OR},
        {"(", CEL_TOK_LPAREN},   {")", CEL_TOK_RPAREN}, {"[", CEL_TOK_LBRACKET},
        {"]", CEL_TOK_RBRACKET}, {"{", CEL_TOK_LBRACE}, {"}", CEL_TOK_RBRACE},
        {".", CEL_TOK_DOT},      {",", CEL_TOK_COMMA},  {":", CEL_TOK_COLON},
        {"?", CEL_TOK_QUESTION}, {"+", CEL_TOK_PLUS},   {"-", CEL_TOK_MINUS},
        {"*", CEL_TOK_STAR},     {"/", CEL_TOK_SLASH},  {"%", CEL_TOK_PERCENT},
        {"!", CEL_TOK_NOT},      {"<", CEL_TOK_LT},     {">", CEL_TOK_GT},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t n = strlen(table[i].text);

        if (lx->len - lx->pos >= n &&
            memcmp(lx->source + lx->pos, table[i].text, n) == 0) {
            *len = n;
            return table[i].kind;
        }
    }
    return CEL_TOK_EOF;
}

int
cel_lex_next(struct cel_lexer *lx, struct cel_token *tok, struct pg_error **err)
{
    enum cel_token_kind kind;
    size_t start;
    size_t len;
    int c;
    int rc = 0;

    cel_token_clear(tok);
    skip_space(lx);
    tok->line = lx->line;
    tok->column = lx->column;
    start = lx->pos;
    c = peek_at(lx, 0);

    if (c == -1) {
        tok->kind = CEL_TOK_EOF;
    } else if (is_ident_start(c)) {
        rc = read_word(lx, tok, err);
    } else if ((c >= '0' && c <= '9') ||
               (c == '.' && peek_at(lx, 1) >= '0' && peek_at(lx, 1) <= '9')) {
        rc = read_number(lx, tok, err);
    } else if (c == '"' || c == '\'') {
        rc = read_string_body(lx, tok, false, err);
    } else if ((kind = match_operator(lx, &len)) != CEL_TOK_EOF) {
        tok->kind = kind;
        advance(lx, len);
    } else {
        char what[64];

        describe_char(lx, what, sizeof(what));
        lex_fail(lx, err, "unexpected %s", what);
        rc = -1;
    }

    tok->text = lx->source + start;
    tok->length = lx->pos - start;
    return rc;
}
