/*
 * Version comparison for the schemes of policy/version.h.
 *
 * Each scheme has a parser, which checks a version and splits it into
 * spans of the input, and a comparison over the parsed parts. Numbers are
 * compared as digit strings of any length, so no version overflows an
 * integer type. Every loop advances through its input, so the work is
 * linear in PG_VERSION_MAX_BYTES.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy/version.h"

/* Bytes of the reason a parser gives for an invalid version. */
#define VERSION_REASON_BYTES 200

/* The largest epoch dpkg accepts (INT_MAX) and rpm stores (uint32). */
#define DEB_EPOCH_MAX "2147483647"
#define RPM_EPOCH_MAX "4294967295"

/* A part of a version: len bytes at text. */
struct span {
    const char *text;
    size_t len;
};

static const char *const scheme_names[] = {
    [PG_VERSION_DEB] = "deb",       [PG_VERSION_APK] = "apk",
    [PG_VERSION_RPM] = "rpm",       [PG_VERSION_SEMVER] = "semver",
    [PG_VERSION_PEP440] = "pep440",
};

/* Package URL types that name a scheme of another name. */
static const struct {
    const char *name;
    enum pg_version_scheme scheme;
} scheme_aliases[] = {
    {"npm", PG_VERSION_SEMVER},
    {"golang", PG_VERSION_SEMVER},
    {"pypi", PG_VERSION_PEP440},
};

static void set_text(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats into buf unless buf is NULL or size is 0. */
static void
set_text(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* ---- Characters and numbers. ---- */

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_alnum(char c)
{
    return is_digit(c) || is_alpha(c);
}

static bool
is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Returns the byte at i, or NUL past the end, as C strings read. */
static char
at(const char *s, size_t len, size_t i)
{
    return i < len ? s[i] : '\0';
}

/* Returns the number of digits at s[pos]. */
static size_t
count_digits(const char *s, size_t len, size_t pos)
{
    size_t n = 0;

    while (pos + n < len && is_digit(s[pos + n]))
        n++;
    return n;
}

static int
sign(int value)
{
    return (value > 0) - (value < 0);
}

/* Orders two strings of bytes as memcmp() and then length do. */
static int
compare_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

    if (c != 0)
        return sign(c);
    return (a_len > b_len) - (a_len < b_len);
}

/* Orders two strings of decimal digits by value; an empty one is 0. */
static int
compare_numbers(const char *a, size_t a_len, const char *b, size_t b_len)
{
    while (a_len > 0 && *a == '0')
        a++, a_len--;
    while (b_len > 0 && *b == '0')
        b++, b_len--;
    if (a_len != b_len)
        return a_len > b_len ? 1 : -1;
    return a_len == 0 ? 0 : sign(memcmp(a, b, a_len));
}

static int
compare_number_spans(struct span a, struct span b)
{
    return compare_numbers(a.text, a.len, b.text, b.len);
}

/* Describes byte c for a message: "'x'", or "byte 0x07" when it is not
 * printable ASCII. */
static void
describe_byte(char c, char *buf, size_t size)
{
    if (c > ' ' && c < 0x7F && c != '\'')
        set_text(buf, size, "'%c'", c);
    else
        set_text(buf, size, "byte 0x%02x", (unsigned char)c);
}

/* Removes ASCII white space from both ends of *s, *len. */
static void
trim_space(const char **s, size_t *len)
{
    while (*len > 0 && is_space((*s)[0]))
        (*s)++, (*len)--;
    while (*len > 0 && is_space((*s)[*len - 1]))
        (*len)--;
}

/* ---- deb: dpkg's parseversion() and verrevcmp(). ---- */

struct deb_version {
    struct span epoch; /* empty: 0 */
    struct span upstream;
    struct span revision; /* empty when there is none */
};

/* Checks every byte of part against dpkg's characters for it. */
static int
check_deb_chars(struct span part, const char *extra, const char *what,
                char *reason, size_t size)
{
    for (size_t i = 0; i < part.len; i++) {
        char c = part.text[i], shown[16];

        if (is_alnum(c) || (c != '\0' && strchr(extra, c) != NULL))
            continue;
        describe_byte(c, shown, sizeof(shown));
        set_text(reason, size, "invalid character %s in the %s", shown, what);
        return -1;
    }
    return 0;
}

/*
 * Parses a deb version as dpkg does: leading and trailing white space is
 * ignored, the epoch ends at the first ':' and the revision starts after
 * the last '-'. dpkg only warns about a bad first character or a bad
 * character and then compares anyway, but such versions are rejected
 * here. NOTE: dpkg reads the epoch with strtol(), which also takes a
 * leading '+' or '-'; here the epoch is digits only.
 */
static int
parse_deb(const char *v, size_t len, struct deb_version *out, char *reason,
          size_t size)
{
    const char *colon, *rest;
    size_t rest_len, hyphen;

    memset(out, 0, sizeof(*out));
    trim_space(&v, &len);
    if (len == 0) {
        set_text(reason, size, "the version is empty");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (is_space(v[i])) {
            set_text(reason, size, "it contains white space");
            return -1;
        }
    }

    rest = v;
    rest_len = len;
    colon = memchr(v, ':', len);
    if (colon != NULL) {
        out->epoch.text = v;
        out->epoch.len = (size_t)(colon - v);
        if (out->epoch.len == 0) {
            set_text(reason, size, "the epoch before ':' is empty");
            return -1;
        }
        if (count_digits(v, out->epoch.len, 0) != out->epoch.len) {
            set_text(reason, size, "the epoch '%.*s' is not a number",
                     (int)out->epoch.len, v);
            return -1;
        }
        if (compare_numbers(v, out->epoch.len, DEB_EPOCH_MAX,
                            strlen(DEB_EPOCH_MAX)) > 0) {
            set_text(reason, size, "the epoch is larger than %s",
                     DEB_EPOCH_MAX);
            return -1;
        }
        rest = colon + 1;
        rest_len = len - out->epoch.len - 1;
        if (rest_len == 0) {
            set_text(reason, size, "nothing follows the epoch's ':'");
            return -1;
        }
    }

    hyphen = rest_len;
    for (size_t i = 0; i < rest_len; i++)
        if (rest[i] == '-')
            hyphen = i;
    out->upstream.text = rest;
    out->upstream.len = hyphen;
    if (hyphen < rest_len) {
        out->revision.text = rest + hyphen + 1;
        out->revision.len = rest_len - hyphen - 1;
        if (out->revision.len == 0) {
            set_text(reason, size, "the revision after the last '-' is empty");
            return -1;
        }
    }
    if (out->upstream.len == 0) {
        set_text(reason, size, "the upstream version is empty");
        return -1;
    }
    if (!is_digit(rest[0])) {
        set_text(reason, size,
                 "the upstream version does not start with a digit");
        return -1;
    }
    if (check_deb_chars(out->upstream, ".-+~:", "upstream version", reason,
                        size) < 0)
        return -1;
    return check_deb_chars(out->revision, ".+~", "revision", reason, size);
}

/* The weight of a non-digit byte in dpkg's order: '~' first, then the end
 * of the part, then letters, then everything else. */
static int
deb_order(char c)
{
    if (is_digit(c))
        return 0;
    if (is_alpha(c))
        return (unsigned char)c;
    if (c == '~')
        return -1;
    if (c != '\0')
        return (unsigned char)c + 256;
    return 0;
}

/*
 * Compares two upstream versions or revisions as dpkg does: alternately a
 * run of non-digits, by deb_order() byte by byte, and a run of digits, by
 * value.
 */
static int
deb_compare_part(struct span a, struct span b)
{
    size_t i = 0, j = 0;

    while (i < a.len || j < b.len) {
        int first_diff = 0;

        while ((i < a.len && !is_digit(a.text[i])) ||
               (j < b.len && !is_digit(b.text[j]))) {
            int ac = deb_order(at(a.text, a.len, i));
            int bc = deb_order(at(b.text, b.len, j));

            if (ac != bc)
                return sign(ac - bc);
            i++, j++;
        }
        while (i < a.len && a.text[i] == '0')
            i++;
        while (j < b.len && b.text[j] == '0')
            j++;
        while (i < a.len && j < b.len && is_digit(a.text[i]) &&
               is_digit(b.text[j])) {
            if (first_diff == 0)
                first_diff = a.text[i] - b.text[j];
            i++, j++;
        }
        if (i < a.len && is_digit(a.text[i]))
            return 1;
        if (j < b.len && is_digit(b.text[j]))
            return -1;
        if (first_diff != 0)
            return sign(first_diff);
    }
    return 0;
}

static int
compare_deb(const struct deb_version *a, const struct deb_version *b)
{
    int c = compare_number_spans(a->epoch, b->epoch);

    if (c == 0)
        c = deb_compare_part(a->upstream, b->upstream);
    if (c == 0)
        c = deb_compare_part(a->revision, b->revision);
    return c;
}

/* ---- apk: apk-tools' version tokens. ---- */

/* The token kinds in the order they may follow each other. */
enum apk_token_kind {
    APK_INITIAL_DIGIT,
    APK_DIGIT,
    APK_LETTER,
    APK_SUFFIX,
    APK_SUFFIX_NO,
    APK_COMMIT_HASH,
    APK_REVISION_NO,
    APK_END,
    APK_INVALID,
};

/* The suffixes in their order. Those before "" mark pre-releases and
 * sort below the version without a suffix. */
static const char *const apk_suffixes[] = {
    "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p",
};
#define APK_SUFFIX_NONE 4

/* One token of an apk version and the reading position after it. */
struct apk_token {
    enum apk_token_kind kind;
    struct span value; /* digits, letter, suffix name or hash */
    size_t suffix;     /* SUFFIX: index in apk_suffixes */
    size_t pos;
};

static bool
is_hex_lower(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* Reads a run of bytes that pass accept at t->pos into t->value. */
static void
apk_take(struct apk_token *t, const char *v, size_t len, bool (*accept)(char))
{
    size_t start = t->pos;

    while (t->pos < len && accept(v[t->pos]))
        t->pos++;
    t->value.text = v + start;
    t->value.len = t->pos - start;
}

static bool
is_lower_alpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static void
apk_take_suffix(struct apk_token *t, const char *v, size_t len)
{
    apk_take(t, v, len, is_lower_alpha);
    t->kind = APK_INVALID;
    for (size_t i = 0; i < sizeof(apk_suffixes) / sizeof(apk_suffixes[0]);
         i++) {
        if (i != APK_SUFFIX_NONE && t->value.len == strlen(apk_suffixes[i]) &&
            memcmp(t->value.text, apk_suffixes[i], t->value.len) == 0) {
            t->kind = APK_SUFFIX;
            t->suffix = i;
        }
    }
}

/*
 * Reads the token after t, which must be of a kind below APK_END, and
 * checks that it may follow: digits{.digits}{letter}{_suffix{digits}}...
 * {~hash}{-rdigits}.
 */
static void
apk_next(struct apk_token *t, const char *v, size_t len)
{
    enum apk_token_kind prev = t->kind;
    char c = at(v, len, t->pos);

    if (t->pos >= len) {
        t->kind = APK_END;
    } else if (is_lower_alpha(c) && prev <= APK_DIGIT) {
        t->kind = APK_LETTER;
        t->value.text = v + t->pos++;
        t->value.len = 1;
    } else if (c == '.' && prev <= APK_DIGIT) {
        t->pos++;
        apk_take(t, v, len, is_digit);
        t->kind = t->value.len > 0 ? APK_DIGIT : APK_INVALID;
    } else if (is_digit(c) && prev == APK_SUFFIX) {
        apk_take(t, v, len, is_digit);
        t->kind = APK_SUFFIX_NO;
    } else if (c == '_' && prev <= APK_SUFFIX_NO) {
        t->pos++;
        apk_take_suffix(t, v, len);
    } else if (c == '~' && prev < APK_COMMIT_HASH) {
        t->pos++;
        apk_take(t, v, len, is_hex_lower);
        t->kind = t->value.len > 0 ? APK_COMMIT_HASH : APK_INVALID;
    } else if (c == '-' && at(v, len, t->pos + 1) == 'r' &&
               prev < APK_REVISION_NO) {
        t->pos += 2;
        apk_take(t, v, len, is_digit);
        t->kind = t->value.len > 0 ? APK_REVISION_NO : APK_INVALID;
    } else {
        t->kind = APK_INVALID;
    }
}

static void
apk_first(struct apk_token *t, const char *v, size_t len)
{
    memset(t, 0, sizeof(*t));
    apk_take(t, v, len, is_digit);
    t->kind = t->value.len > 0 ? APK_INITIAL_DIGIT : APK_INVALID;
}

/*
 * Checks an apk version token by token. NOTE: apk-tools 3 reads numbers
 * into a uint64_t that wraps past 2^64 - 1; here numbers of any length
 * compare by value.
 */
static int
parse_apk(const char *v, size_t len, char *reason, size_t size)
{
    struct apk_token t;
    size_t start = 0;

    apk_first(&t, v, len);
    while (t.kind < APK_END) {
        start = t.pos;
        apk_next(&t, v, len);
    }
    if (t.kind == APK_END)
        return 0;
    if (start == 0)
        set_text(reason, size, "it does not start with a digit");
    else if (v[start] == '_' && t.value.len > 0 &&
             t.value.text == v + start + 1)
        set_text(reason, size,
                 "unknown suffix '_%.*s' at character %zu; use _alpha, "
                 "_beta, _pre, _rc, _cvs, _svn, _git, _hg or _p",
                 (int)t.value.len, t.value.text, start + 1);
    else
        set_text(reason, size,
                 "'%.*s' at character %zu cannot follow what precedes it; "
                 "apk versions read 1.2.3a_rc1~hash-r0",
                 (int)(len - start > 16 ? 16 : len - start), v + start,
                 start + 1);
    return -1;
}

/* Orders two tokens of the same kind as apk-tools does. */
static int
apk_compare_token(const struct apk_token *a, const struct apk_token *b)
{
    switch (a->kind) {
    case APK_DIGIT:
        /* A number with a leading zero compares as text, as in Gentoo,
         * so 1.05 sorts below 1.5 and 1.0 below 1.00. */
        if (a->value.text[0] == '0' || b->value.text[0] == '0')
            return compare_bytes(a->value.text, a->value.len, b->value.text,
                                 b->value.len);
        return compare_number_spans(a->value, b->value);
    case APK_INITIAL_DIGIT:
    case APK_SUFFIX_NO:
    case APK_REVISION_NO:
        return compare_number_spans(a->value, b->value);
    case APK_LETTER:
        return sign(a->value.text[0] - b->value.text[0]);
    case APK_SUFFIX:
        return (a->suffix > b->suffix) - (a->suffix < b->suffix);
    default:
        return compare_bytes(a->value.text, a->value.len, b->value.text,
                             b->value.len);
    }
}

/* Compares two valid apk versions. */
static int
compare_apk(struct span a, struct span b)
{
    struct apk_token ta, tb;

    apk_first(&ta, a.text, a.len);
    apk_first(&tb, b.text, b.len);
    while (ta.kind == tb.kind && ta.kind < APK_END) {
        int c = apk_compare_token(&ta, &tb);

        if (c != 0)
            return c;
        apk_next(&ta, a.text, a.len);
        apk_next(&tb, b.text, b.len);
    }
    if (ta.kind == tb.kind)
        return 0;

    /* One version goes on where the other ends or has a different kind of
     * token: a pre-release suffix makes it lower, and otherwise the
     * token kind that comes later in a version is the lower one, so the
     * end is below a revision and a revision below more digits. */
    if (ta.kind == APK_SUFFIX && ta.suffix < APK_SUFFIX_NONE)
        return -1;
    if (tb.kind == APK_SUFFIX && tb.suffix < APK_SUFFIX_NONE)
        return 1;
    return ta.kind > tb.kind ? -1 : 1;
}

/* ---- rpm: [epoch:]version[-release] and rpmvercmp(). ---- */

struct rpm_version {
    struct span epoch; /* empty: 0 */
    struct span version;
    struct span release;
    bool has_release;
};

/*
 * Checks a version or release against the characters rpmbuild accepts in
 * them (letters, digits and "._+~^"; the '%', '{' and '}' it also takes
 * are macro syntax that a built package no longer contains), and the ".."
 * it rejects.
 */
static int
check_rpm_part(struct span part, const char *what, char *reason, size_t size)
{
    char shown[16];

    if (part.len == 0) {
        set_text(reason, size, "the %s is empty", what);
        return -1;
    }
    for (size_t i = 0; i < part.len; i++) {
        char c = part.text[i];

        if (is_alnum(c) || (c != '\0' && strchr("._+~^", c) != NULL))
            continue;
        describe_byte(c, shown, sizeof(shown));
        set_text(reason, size, "invalid character %s in the %s", shown, what);
        return -1;
    }
    for (size_t i = 0; i + 1 < part.len; i++) {
        if (part.text[i] == '.' && part.text[i + 1] == '.') {
            set_text(reason, size, "the %s contains '..'", what);
            return -1;
        }
    }
    return 0;
}

/* Splits an rpm EVR as rpm's parseEVR() does: the epoch is the leading
 * digits when a ':' follows them, the release starts after the last '-'. */
static int
parse_rpm(const char *v, size_t len, struct rpm_version *out, char *reason,
          size_t size)
{
    size_t digits = count_digits(v, len, 0), start = 0, hyphen;

    memset(out, 0, sizeof(*out));
    if (at(v, len, digits) == ':') {
        if (digits == 0) {
            set_text(reason, size, "the epoch before ':' is empty");
            return -1;
        }
        if (compare_numbers(v, digits, RPM_EPOCH_MAX, strlen(RPM_EPOCH_MAX)) >
            0) {
            set_text(reason, size, "the epoch is larger than %s",
                     RPM_EPOCH_MAX);
            return -1;
        }
        out->epoch.text = v;
        out->epoch.len = digits;
        start = digits + 1;
    }
    hyphen = len;
    for (size_t i = start; i < len; i++)
        if (v[i] == '-')
            hyphen = i;
    out->version.text = v + start;
    out->version.len = hyphen - start;
    if (hyphen < len) {
        out->has_release = true;
        out->release.text = v + hyphen + 1;
        out->release.len = len - hyphen - 1;
    }
    if (check_rpm_part(out->version, "version", reason, size) < 0)
        return -1;
    if (out->has_release)
        return check_rpm_part(out->release, "release", reason, size);
    return 0;
}

static bool
rpm_is_separator(char c)
{
    return c != '\0' && !is_alnum(c) && c != '~' && c != '^';
}

/*
 * Compares two versions or releases as rpmvercmp() does: separators are
 * skipped, '~' sorts before everything and '^' after the end of a
 * version but before anything else. The runs of digits and of letters
 * between them compare in turn, and digits are above letters.
 */
static int
rpm_compare_part(struct span a, struct span b)
{
    size_t i = 0, j = 0;

    while (i < a.len || j < b.len) {
        size_t i_end, j_end;
        bool numeric;
        int c;

        while (i < a.len && rpm_is_separator(a.text[i]))
            i++;
        while (j < b.len && rpm_is_separator(b.text[j]))
            j++;
        if (at(a.text, a.len, i) == '~' || at(b.text, b.len, j) == '~') {
            if (at(a.text, a.len, i) != '~')
                return 1;
            if (at(b.text, b.len, j) != '~')
                return -1;
            i++, j++;
            continue;
        }
        if (at(a.text, a.len, i) == '^' || at(b.text, b.len, j) == '^') {
            if (i >= a.len)
                return -1;
            if (j >= b.len)
                return 1;
            if (a.text[i] != '^')
                return 1;
            if (b.text[j] != '^')
                return -1;
            i++, j++;
            continue;
        }
        if (i >= a.len || j >= b.len)
            break;

        numeric = is_digit(a.text[i]);
        for (i_end = i; i_end < a.len && (numeric ? is_digit(a.text[i_end])
                                                  : is_alpha(a.text[i_end]));
             i_end++)
            ;
        for (j_end = j; j_end < b.len && (numeric ? is_digit(b.text[j_end])
                                                  : is_alpha(b.text[j_end]));
             j_end++)
            ;
        /* A run of digits is above a run of letters. */
        if (j_end == j)
            return numeric ? 1 : -1;
        if (numeric)
            c = compare_numbers(a.text + i, i_end - i, b.text + j, j_end - j);
        else
            c = compare_bytes(a.text + i, i_end - i, b.text + j, j_end - j);
        if (c != 0)
            return c;
        i = i_end;
        j = j_end;
    }
    if (i >= a.len && j >= b.len)
        return 0;
    return i >= a.len ? -1 : 1;
}

/* Compares epoch, version and release in turn, as rpm's rpmverCmp() does
 * (rpm 4.18): a missing epoch is 0, and a missing release is below every
 * release, so 1.0 sorts below 1.0-1. */
static int
compare_rpm(const struct rpm_version *a, const struct rpm_version *b)
{
    int c = compare_number_spans(a->epoch, b->epoch);

    if (c == 0)
        c = rpm_compare_part(a->version, b->version);
    if (c == 0 && a->has_release != b->has_release)
        c = a->has_release ? 1 : -1;
    if (c == 0 && a->has_release)
        c = rpm_compare_part(a->release, b->release);
    return c;
}

/* ---- semver: Semantic Versioning 2.0.0. ---- */

struct semver_version {
    struct span major, minor, patch;
    struct span prerelease; /* identifiers joined by '.'; empty: none */
};

static bool
is_identifier_char(char c)
{
    return is_alnum(c) || c == '-';
}

/* Reads a numeric identifier of a version core at *pos. */
static int
semver_number(const char *v, size_t len, size_t *pos, struct span *out,
              const char *what, char *reason, size_t size)
{
    size_t n = count_digits(v, len, *pos);

    if (n == 0) {
        set_text(reason, size, "the %s version is not a number", what);
        return -1;
    }
    if (n > 1 && v[*pos] == '0') {
        set_text(reason, size, "the %s version has a leading zero", what);
        return -1;
    }
    out->text = v + *pos;
    out->len = n;
    *pos += n;
    return 0;
}

/* Reads dot-separated identifiers at *pos into *out. Numeric pre-release
 * identifiers must not have leading zeros; build identifiers may. */
static int
semver_identifiers(const char *v, size_t len, size_t *pos, bool prerelease,
                   struct span *out, char *reason, size_t size)
{
    const char *what = prerelease ? "pre-release" : "build metadata";

    out->text = v + *pos;
    for (;;) {
        size_t start = *pos;
        bool numeric = true;

        for (; *pos < len && is_identifier_char(v[*pos]); (*pos)++)
            numeric = numeric && is_digit(v[*pos]);
        if (*pos == start) {
            set_text(reason, size,
                     "the %s has an empty or invalid identifier at character "
                     "%zu",
                     what, start + 1);
            return -1;
        }
        if (prerelease && numeric && *pos - start > 1 && v[start] == '0') {
            set_text(reason, size,
                     "the pre-release identifier '%.*s' has a leading zero",
                     (int)(*pos - start), v + start);
            return -1;
        }
        if (at(v, len, *pos) != '.')
            break;
        (*pos)++;
    }
    out->len = (size_t)(v + *pos - out->text);
    return 0;
}

/*
 * Parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] with an optional leading
 * 'v'. NOTE: the npm registry's node-semver rejects a major, minor or
 * patch version above 2^53 - 1 and compares longer numeric pre-release
 * identifiers as text; here numbers of any length are valid and compare
 * by value, as Semantic Versioning 2.0.0 and Go's semver do.
 */
static int
parse_semver(const char *v, size_t len, struct semver_version *out,
             char *reason, size_t size)
{
    size_t pos = at(v, len, 0) == 'v';
    struct span build;

    memset(out, 0, sizeof(*out));
    if (semver_number(v, len, &pos, &out->major, "major", reason, size) < 0)
        return -1;
    if (at(v, len, pos++) != '.') {
        set_text(reason, size,
                 "a '.' and the minor version must follow the "
                 "major version");
        return -1;
    }
    if (semver_number(v, len, &pos, &out->minor, "minor", reason, size) < 0)
        return -1;
    if (at(v, len, pos++) != '.') {
        set_text(reason, size,
                 "a '.' and the patch version must follow the "
                 "minor version");
        return -1;
    }
    if (semver_number(v, len, &pos, &out->patch, "patch", reason, size) < 0)
        return -1;
    if (at(v, len, pos) == '-') {
        pos++;
        if (semver_identifiers(v, len, &pos, true, &out->prerelease, reason,
                               size) < 0)
            return -1;
    }
    if (at(v, len, pos) == '+') {
        pos++;
        if (semver_identifiers(v, len, &pos, false, &build, reason, size) < 0)
            return -1;
    }
    if (pos < len) {
        set_text(reason, size,
                 "unexpected text at character %zu; semver versions read "
                 "1.2.3-rc.1+build",
                 pos + 1);
        return -1;
    }
    return 0;
}

/* Returns the identifier of a pre-release at *pos and moves past it. */
static struct span
semver_next_identifier(struct span list, size_t *pos)
{
    struct span id = {list.text + *pos, 0};

    while (*pos < list.len && list.text[*pos] != '.')
        (*pos)++, id.len++;
    (*pos)++;
    return id;
}

/* Orders pre-release identifiers: numbers by value, below any other
 * identifier, others by ASCII, and a shorter list first. */
static int
semver_compare_prerelease(struct span a, struct span b)
{
    size_t i = 0, j = 0;

    if (a.len == 0 || b.len == 0)
        return (a.len == 0) - (b.len == 0);
    while (i < a.len && j < b.len) {
        struct span x = semver_next_identifier(a, &i);
        struct span y = semver_next_identifier(b, &j);
        bool x_numeric = count_digits(x.text, x.len, 0) == x.len;
        bool y_numeric = count_digits(y.text, y.len, 0) == y.len;
        int c;

        if (x_numeric != y_numeric)
            return x_numeric ? -1 : 1;
        c = x_numeric ? compare_number_spans(x, y)
                      : compare_bytes(x.text, x.len, y.text, y.len);
        if (c != 0)
            return c;
    }
    return (i < a.len) - (j < b.len);
}

static int
compare_semver(const struct semver_version *a, const struct semver_version *b)
{
    int c = compare_number_spans(a->major, b->major);

    if (c == 0)
        c = compare_number_spans(a->minor, b->minor);
    if (c == 0)
        c = compare_number_spans(a->patch, b->patch);
    if (c == 0)
        c = semver_compare_prerelease(a->prerelease, b->prerelease);
    return c;
}

/* ---- pep440: PEP 440 as packaging.version reads it. ---- */

/* The pre-release kinds in their order. */
enum pep440_pre {
    PEP440_PRE_NONE = -1,
    PEP440_PRE_ALPHA,
    PEP440_PRE_BETA,
    PEP440_PRE_RC,
};

struct pep440_version {
    struct span epoch;   /* empty: 0 */
    struct span release; /* numbers joined by '.' */
    enum pep440_pre pre;
    struct span pre_number; /* empty: 0 */
    bool has_post;
    struct span post_number;
    bool has_dev;
    struct span dev_number;
    struct span local; /* after '+'; empty when there is none */
};

/* A spelling of a pre-release, post-release or development marker. */
struct pep440_word {
    const char *text;
    int value;
};

static const struct pep440_word pep440_pre_words[] = {
    {"alpha", PEP440_PRE_ALPHA}, {"a", PEP440_PRE_ALPHA},
    {"beta", PEP440_PRE_BETA},   {"b", PEP440_PRE_BETA},
    {"preview", PEP440_PRE_RC},  {"pre", PEP440_PRE_RC},
    {"rc", PEP440_PRE_RC},       {"c", PEP440_PRE_RC},
};

static const struct pep440_word pep440_post_words[] = {
    {"post", 0},
    {"rev", 0},
    {"r", 0},
};

static const struct pep440_word pep440_dev_words[] = {
    {"dev", 0},
};

static bool
is_pep440_separator(char c)
{
    return c == '.' || c == '-' || c == '_';
}

/*
 * Matches the longest of count words, ignoring case, at v[pos]. Returns
 * its length, or 0 when none matches, and stores its value in *value. No
 * shorter spelling could lead to a valid version where the longest does
 * not, because no marker can follow the rest of a longer one ("lpha").
 */
static size_t
pep440_word(const char *v, size_t len, size_t pos,
            const struct pep440_word *words, size_t count, int *value)
{
    size_t best = 0;

    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(words[i].text), k = 0;

        while (k < n && pos + k < len && lower(v[pos + k]) == words[i].text[k])
            k++;
        if (k == n && n > best) {
            best = n;
            *value = words[i].value;
        }
    }
    return best;
}

/*
 * Reads an optional separator, a marker from words and an optional
 * separator and number after it at *pos. Returns whether the marker is
 * there, and leaves *pos unchanged when it is not.
 */
static bool
pep440_marker(const char *v, size_t len, size_t *pos,
              const struct pep440_word *words, size_t count, int *value,
              struct span *number)
{
    size_t p = *pos, n;

    if (is_pep440_separator(at(v, len, p)))
        p++;
    n = pep440_word(v, len, p, words, count, value);
    if (n == 0)
        return false;
    p += n;

    /* The separator after the marker belongs to it even without a
     * number: every part that can follow takes a separator of its own. */
    if (is_pep440_separator(at(v, len, p)))
        p++;
    n = count_digits(v, len, p);
    number->text = v + p;
    number->len = n;
    *pos = p + n;
    return true;
}

/* Reads the local version label after '+': alphanumerics in parts joined
 * by '.', '-' or '_'. */
static int
pep440_local(const char *v, size_t len, size_t *pos, struct span *local,
             char *reason, size_t size)
{
    size_t p = *pos;

    local->text = v + p;
    for (;;) {
        size_t start = p;

        while (p < len && is_alnum(v[p]))
            p++;
        if (p == start) {
            set_text(reason, size,
                     "the local version label has an empty part at "
                     "character %zu",
                     start + 1);
            return -1;
        }
        if (!is_pep440_separator(at(v, len, p)))
            break;
        p++;
    }
    local->len = (size_t)(v + p - local->text);
    *pos = p;
    return 0;
}

/*
 * Parses [v][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local] with the other
 * spellings and optional separators packaging accepts. Case does not
 * matter, and white space at either end is ignored. NOTE: packaging also
 * ignores non-ASCII white space there; here only ASCII white space is.
 */
static int
parse_pep440(const char *v, size_t len, struct pep440_version *out,
             char *reason, size_t size)
{
    size_t pos = 0, n;
    int value = 0;

    memset(out, 0, sizeof(*out));
    out->pre = PEP440_PRE_NONE;
    trim_space(&v, &len);
    if (lower(at(v, len, pos)) == 'v')
        pos++;
    n = count_digits(v, len, pos);
    if (n > 0 && at(v, len, pos + n) == '!') {
        out->epoch.text = v + pos;
        out->epoch.len = n;
        pos += n + 1;
    }

    out->release.text = v + pos;
    if (count_digits(v, len, pos) == 0) {
        set_text(reason, size, "the release number is missing");
        return -1;
    }
    pos += count_digits(v, len, pos);
    while (at(v, len, pos) == '.' && is_digit(at(v, len, pos + 1)))
        pos += 1 + count_digits(v, len, pos + 1);
    out->release.len = (size_t)(v + pos - out->release.text);

    if (pep440_marker(v, len, &pos, pep440_pre_words,
                      sizeof(pep440_pre_words) / sizeof(pep440_pre_words[0]),
                      &value, &out->pre_number))
        out->pre = (enum pep440_pre)value;
    if (at(v, len, pos) == '-' && is_digit(at(v, len, pos + 1))) {
        /* 1.0-1 is the post-release 1.0.post1. */
        out->has_post = true;
        n = count_digits(v, len, pos + 1);
        out->post_number.text = v + pos + 1;
        out->post_number.len = n;
        pos += 1 + n;
    } else {
        out->has_post = pep440_marker(v, len, &pos, pep440_post_words,
                                      sizeof(pep440_post_words) /
                                          sizeof(pep440_post_words[0]),
                                      &value, &out->post_number);
    }
    out->has_dev = pep440_marker(v, len, &pos, pep440_dev_words, 1, &value,
                                 &out->dev_number);
    if (at(v, len, pos) == '+') {
        pos++;
        if (pep440_local(v, len, &pos, &out->local, reason, size) < 0)
            return -1;
    }
    if (pos < len) {
        set_text(reason, size,
                 "unexpected text at character %zu; PEP 440 versions read "
                 "1!2.3rc1.post4.dev5+local",
                 pos + 1);
        return -1;
    }
    return 0;
}

/* Returns the next number of a release, or an empty span (0) past its
 * end, as if every release went on with zeros. */
static struct span
pep440_next_release_number(struct span release, size_t *pos)
{
    struct span number = {release.text + *pos, 0};

    if (*pos >= release.len)
        return number;
    number.len = count_digits(release.text, release.len, *pos);
    *pos += number.len + 1;
    return number;
}

/* Orders releases with trailing zeros ignored, so 1.0 equals 1.0.0. */
static int
pep440_compare_release(struct span a, struct span b)
{
    size_t i = 0, j = 0;

    while (i < a.len || j < b.len) {
        int c = compare_number_spans(pep440_next_release_number(a, &i),
                                     pep440_next_release_number(b, &j));

        if (c != 0)
            return c;
    }
    return 0;
}

/* The rank of a version's pre-release part: a development release with
 * neither pre- nor post-release comes before every pre-release, and no
 * pre-release after all of them. */
static int
pep440_pre_rank(const struct pep440_version *v)
{
    if (v->pre != PEP440_PRE_NONE)
        return 1;
    return !v->has_post && v->has_dev ? 0 : 2;
}

static int
pep440_compare_pre(const struct pep440_version *a,
                   const struct pep440_version *b)
{
    int ra = pep440_pre_rank(a), rb = pep440_pre_rank(b);

    if (ra != rb || ra != 1)
        return sign(ra - rb);
    if (a->pre != b->pre)
        return a->pre > b->pre ? 1 : -1;
    return compare_number_spans(a->pre_number, b->pre_number);
}

/* Returns the next part of a local version label. */
static struct span
pep440_next_local_part(struct span local, size_t *pos)
{
    struct span part = {local.text + *pos, 0};

    while (*pos < local.len && !is_pep440_separator(local.text[*pos]))
        (*pos)++, part.len++;
    (*pos)++;
    return part;
}

/* Orders local version labels part by part: numbers by value and above
 * words, words by their lower-case text, and a shorter label first. No
 * label is below every label. */
static int
pep440_compare_local(struct span a, struct span b)
{
    size_t i = 0, j = 0;

    if (a.len == 0 || b.len == 0)
        return (b.len == 0) - (a.len == 0);
    while (i < a.len && j < b.len) {
        struct span x = pep440_next_local_part(a, &i);
        struct span y = pep440_next_local_part(b, &j);
        bool x_numeric = count_digits(x.text, x.len, 0) == x.len;
        bool y_numeric = count_digits(y.text, y.len, 0) == y.len;
        size_t k = 0;

        if (x_numeric != y_numeric)
            return x_numeric ? 1 : -1;
        if (x_numeric) {
            int c = compare_number_spans(x, y);

            if (c != 0)
                return c;
            continue;
        }
        while (k < x.len && k < y.len && lower(x.text[k]) == lower(y.text[k]))
            k++;
        if (k < x.len && k < y.len)
            return lower(x.text[k]) > lower(y.text[k]) ? 1 : -1;
        if (x.len != y.len)
            return x.len > y.len ? 1 : -1;
    }
    return (i < a.len) - (j < b.len);
}

static int
compare_pep440(const struct pep440_version *a, const struct pep440_version *b)
{
    int c = compare_number_spans(a->epoch, b->epoch);

    if (c == 0)
        c = pep440_compare_release(a->release, b->release);
    if (c == 0)
        c = pep440_compare_pre(a, b);
    if (c == 0 && a->has_post != b->has_post)
        c = a->has_post ? 1 : -1;
    if (c == 0)
        c = compare_number_spans(a->post_number, b->post_number);
    if (c == 0 && a->has_dev != b->has_dev)
        c = a->has_dev ? -1 : 1;
    if (c == 0)
        c = compare_number_spans(a->dev_number, b->dev_number);
    if (c == 0)
        c = pep440_compare_local(a->local, b->local);
    return c;
}

/* ---- The interface. ---- */

/* A parsed version of any scheme. */
struct parsed_version {
    enum pg_version_scheme scheme;
    struct span text;
    union {
        struct deb_version deb;
        struct rpm_version rpm;
        struct semver_version semver;
        struct pep440_version pep440;
    } u;
};

int
pg_version_scheme_lookup(const char *name, size_t len,
                         enum pg_version_scheme *scheme, char *why,
                         size_t why_size)
{
    for (size_t i = 0; i < sizeof(scheme_names) / sizeof(scheme_names[0]);
         i++) {
        if (len == strlen(scheme_names[i]) &&
            memcmp(name, scheme_names[i], len) == 0) {
            *scheme = (enum pg_version_scheme)i;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(scheme_aliases) / sizeof(scheme_aliases[0]);
         i++) {
        if (len == strlen(scheme_aliases[i].name) &&
            memcmp(name, scheme_aliases[i].name, len) == 0) {
            *scheme = scheme_aliases[i].scheme;
            return 0;
        }
    }
    set_text(why, why_size,
             "unknown version scheme '%.*s'; use deb, apk, rpm, semver or "
             "pep440 (or the package URL types npm, golang, pypi)",
             (int)(len > 64 ? 64 : len), name);
    return -1;
}

const char *
pg_version_scheme_name(enum pg_version_scheme scheme)
{
    return scheme_names[scheme];
}

static int
parse_version(enum pg_version_scheme scheme, const char *v, size_t len,
              struct parsed_version *out, char *reason, size_t size)
{
    out->scheme = scheme;
    out->text.text = v;
    out->text.len = len;
    if (len > PG_VERSION_MAX_BYTES) {
        set_text(reason, size,
                 "it is %zu bytes long, more than the maximum of %u", len,
                 (unsigned)PG_VERSION_MAX_BYTES);
        return -1;
    }
    switch (scheme) {
    case PG_VERSION_DEB:
        return parse_deb(v, len, &out->u.deb, reason, size);
    case PG_VERSION_APK:
        return parse_apk(v, len, reason, size);
    case PG_VERSION_RPM:
        return parse_rpm(v, len, &out->u.rpm, reason, size);
    case PG_VERSION_SEMVER:
        return parse_semver(v, len, &out->u.semver, reason, size);
    default:
        return parse_pep440(v, len, &out->u.pep440, reason, size);
    }
}

/* Parses v, and on failure writes the full message into why. */
static int
parse_or_explain(enum pg_version_scheme scheme, const char *v, size_t len,
                 struct parsed_version *out, char *why, size_t why_size)
{
    char reason[VERSION_REASON_BYTES] = "";

    if (parse_version(scheme, v, len, out, reason, sizeof(reason)) == 0)
        return 0;

    /* A version too long to be valid is not quoted whole. */
    set_text(why, why_size, "'%.*s%s' is not a valid %s version: %s",
             (int)(len > 64 ? 64 : len), v, len > 64 ? "..." : "",
             scheme_names[scheme], reason);
    return -1;
}

int
pg_version_check(enum pg_version_scheme scheme, const char *v, size_t len,
                 char *why, size_t why_size)
{
    struct parsed_version parsed;

    return parse_or_explain(scheme, v, len, &parsed, why, why_size);
}

bool
pg_version_valid(enum pg_version_scheme scheme, const char *v, size_t len)
{
    return pg_version_check(scheme, v, len, NULL, 0) == 0;
}

int
pg_version_compare(enum pg_version_scheme scheme, const char *a, size_t a_len,
                   const char *b, size_t b_len, int *result, char *why,
                   size_t why_size)
{
    struct parsed_version pa, pb;

    if (parse_or_explain(scheme, a, a_len, &pa, why, why_size) < 0 ||
        parse_or_explain(scheme, b, b_len, &pb, why, why_size) < 0)
        return -1;
    switch (scheme) {
    case PG_VERSION_DEB:
        *result = compare_deb(&pa.u.deb, &pb.u.deb);
        break;
    case PG_VERSION_APK:
        *result = compare_apk(pa.text, pb.text);
        break;
    case PG_VERSION_RPM:
        *result = compare_rpm(&pa.u.rpm, &pb.u.rpm);
        break;
    case PG_VERSION_SEMVER:
        *result = compare_semver(&pa.u.semver, &pb.u.semver);
        break;
    default:
        *result = compare_pep440(&pa.u.pep440, &pb.u.pep440);
        break;
    }
    return 0;
}
