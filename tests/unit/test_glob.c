/*
 * Unit tests for policy globs (policy/glob.c): a table of cases written
 * from the glob language, the exact messages of invalid globs, random
 * globs checked against PCRE2 with a regular expression built beside each
 * glob, and worst-case globs that would take exponential time in a
 * backtracking matcher.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <check.h>
#include <pcre2.h>

#include "policy/glob.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

struct match_case {
    const char *glob;
    const char *text;
    bool ignore_case;
    bool expected;
};

static const struct match_case match_cases[] = {
    {"docker.io", "docker.io", false, true},
    {"docker.io", "docker.iox", false, false},
    {"docker.io", "docker.i", false, false},
    /* '.' is no wildcard. */
    {"docker.io", "dockerxio", false, false},
    {"*", "", false, true},
    {"*", "nginx", false, true},
    {"*", "library/nginx", false, false},
    {"**", "", false, true},
    {"**", "library/nginx", false, true},
    {"library/*", "library/nginx", false, true},
    {"library/*", "library/nginx/extra", false, false},
    {"library/*", "library/", false, true},
    {"library/**", "library/nginx/extra", false, true},
    {"library/**", "library", false, false},
    {"**/nginx", "a/b/c/nginx", false, true},
    {"**/nginx", "nginx", false, false},
    {"a/**/b", "a/x/y/b", false, true},
    {"a/**/b", "a//b", false, true},
    {"a/**/b", "a/b", false, false},
    /* Three stars behave as two. */
    {"a***z", "a/b/z", false, true},
    {"*/*", "a/b", false, true},
    {"*/*", "a/b/c", false, false},
    {"*.io", "docker.io", false, true},
    {"*.io", "registry.k8s.io", false, true},
    {"*.io", "evil/x.io", false, false},
    {"v?", "v1", false, true},
    {"v?", "v", false, false},
    {"v?", "v12", false, false},
    {"a?b", "a/b", false, false},
    /* '?' is one UTF-8 character, not one byte. */
    {"caf?", "caf\xc3\xa9", false, true},
    {"caf??", "caf\xc3\xa9", false, false},
    {"[abc]", "b", false, true},
    {"[abc]", "d", false, false},
    {"[a-z]", "q", false, true},
    {"[a-z]", "Q", false, false},
    {"[a-z]", "Q", true, true},
    {"[A-Z]", "q", true, true},
    {"[!a-z]", "Q", false, true},
    {"[!a-z]", "q", false, false},
    {"[!a-z]", "Q", true, false},
    {"[!a]", "/", false, false},
    {"[/]", "/", false, false},
    {"[]a]", "]", false, true},
    {"[]a]", "a", false, true},
    {"[!]a]", "]", false, false},
    {"[!]a]", "b", false, true},
    {"[a-]", "-", false, true},
    {"[-a]", "-", false, true},
    {"[a\\]]", "]", false, true},
    {"[\\!a]", "!", false, true},
    {"[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", false, true},
    {"[\xc3\xa0-\xc3\xbf]", "e", false, false},
    {"1.[0-9]*", "1.25", false, true},
    {"1.[0-9]*", "1.x", false, false},
    {"\\*", "*", false, true},
    {"\\*", "a", false, false},
    {"\\?", "?", false, true},
    {"\\[a]", "[a]", false, true},
    {"\\\\", "\\", false, true},
    {"\\a", "a", false, true},
    {"Docker.IO", "docker.io", false, false},
    {"Docker.IO", "docker.io", true, true},
    {"docker.io", "DOCKER.IO", true, true},
    /* Case folding is ASCII only. */
    {"\xc3\xa9", "\xc3\x89", true, false},
    {"*:latest", "docker.io/library/nginx:latest", false, false},
    {"**:latest", "docker.io/library/nginx:latest", false, true},
    {"docker.io/library/nginx@sha256:*",
     "docker.io/library/nginx@sha256:"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     false, true},
    {"docker.io/library/nginx:*", "docker.io/library/nginx@sha256:ab", false,
     false},
    {"*a*a*b", "aaab", false, true},
    {"*a*a*b", "aab", false, true},
    {"*a*a*b", "ab", false, false},
    {"a*", "a/", false, false},
};

START_TEST(test_match_table)
{
    for (size_t i = 0; i < COUNT(match_cases); i++) {
        const struct match_case *c = &match_cases[i];
        bool got = pg_glob_match(c->glob, strlen(c->glob), c->text,
                                 strlen(c->text), c->ignore_case);

        ck_assert_msg(got == c->expected, "glob '%s' on '%s'%s: got %s",
                      c->glob, c->text, c->ignore_case ? " (ignore case)" : "",
                      got ? "match" : "no match");
    }
}
END_TEST

START_TEST(test_nul_bytes)
{
    /* Lengths, not NUL bytes, end the glob and the text. */
    ck_assert(pg_glob_match("a\0b", 3, "a\0b", 3, false));
    ck_assert(!pg_glob_match("a\0b", 3, "a", 1, false));
    ck_assert(pg_glob_match("a?b", 3, "a\0b", 3, false));
    ck_assert(pg_glob_match("a*", 2, "a\0\0", 3, false));
    ck_assert(pg_glob_match("abc", 1, "a", 1, false));
    ck_assert(pg_glob_match("*", 1, "xyz", 0, false));
}
END_TEST

START_TEST(test_invalid_utf8)
{
    /* A stray byte is a character that only itself and wildcards match. */
    ck_assert(pg_glob_match("a?c", 3,
                            "a\xff"
                            "c",
                            3, false));
    ck_assert(pg_glob_match("a\xff"
                            "c",
                            3,
                            "a\xff"
                            "c",
                            3, false));
    ck_assert(!pg_glob_match("a\xfe"
                             "c",
                             3,
                             "a\xff"
                             "c",
                             3, false));
    ck_assert(pg_glob_match("[!a]", 4, "\xc3", 1, false));
    ck_assert(!pg_glob_match("?", 1, "\xc3\xa9\xc3", 3, false));
    ck_assert(pg_glob_match("??", 2, "\xc3\xa9\xc3", 3, false));
}
END_TEST

struct check_case {
    const char *glob;
    const char *message; /* NULL for a valid glob */
};

static const struct check_case check_cases[] = {
    {"docker.io", NULL},
    {"**", NULL},
    {"[]]", NULL},
    {"[!]]", NULL},
    {"a\\[", NULL},
    {"", "the glob is empty; write '**' to match every text"},
    {"abc\\",
     "the glob ends in a '\\' that escapes nothing; write '\\\\' for a "
     "literal backslash"},
    {"ab[cd",
     "the character class at character 3 has no closing ']'; close it, or "
     "write '\\[' for a literal '['"},
    {"\xc3\xa9[!a",
     "the character class at character 2 has no closing ']'; close it, or "
     "write '\\[' for a literal '['"},
    {"[", "the character class at character 1 has no closing ']'; close it, "
          "or write '\\[' for a literal '['"},
    {"[!", "the character class at character 1 has no closing ']'; close it, "
           "or write '\\[' for a literal '['"},
    {"[]", "the character class at character 1 has no closing ']'; close it, "
           "or write '\\[' for a literal '['"},
    {"[a\\]", "the character class at character 1 has no closing ']'; close "
              "it, or write '\\[' for a literal '['"},
    {"x[a-", "the character class at character 2 has no closing ']'; close "
             "it, or write '\\[' for a literal '['"},
    {"x[z-a]", "the range 'z-a' at character 3 ends below its start; write "
               "the lower character first"},
};

START_TEST(test_check_messages)
{
    for (size_t i = 0; i < COUNT(check_cases); i++) {
        const struct check_case *c = &check_cases[i];
        char why[256] = "";
        int rc = pg_glob_check(c->glob, strlen(c->glob), why, sizeof(why));

        if (c->message == NULL) {
            ck_assert_msg(rc == 0, "'%s': %s", c->glob, why);
            continue;
        }
        ck_assert_msg(rc == -1, "'%s' passed the check", c->glob);
        ck_assert_str_eq(why, c->message);

        /* An invalid glob matches nothing, not even itself. */
        ck_assert(!pg_glob_match(c->glob, strlen(c->glob), c->glob,
                                 strlen(c->glob), false));
    }
}
END_TEST

START_TEST(test_check_length)
{
    char glob[PG_GLOB_MAX_BYTES + 1];
    char why[128];

    memset(glob, 'a', sizeof(glob));
    ck_assert_int_eq(pg_glob_check(glob, PG_GLOB_MAX_BYTES, why, sizeof(why)),
                     0);
    ck_assert(
        pg_glob_match(glob, PG_GLOB_MAX_BYTES, glob, PG_GLOB_MAX_BYTES, false));
    ck_assert_int_eq(
        pg_glob_check(glob, PG_GLOB_MAX_BYTES + 1, why, sizeof(why)), -1);
    ck_assert_str_eq(why,
                     "the glob is 1025 bytes long, more than the maximum of "
                     "1024");
    ck_assert(!pg_glob_match(glob, PG_GLOB_MAX_BYTES + 1, glob,
                             PG_GLOB_MAX_BYTES + 1, false));

    /* A NULL buffer or a size of 0 takes no message. */
    ck_assert_int_eq(pg_glob_check("[", 1, NULL, 0), -1);
    ck_assert_int_eq(pg_glob_check("[", 1, why, 0), -1);
}
END_TEST

/*
 * Pieces random globs are built from, each with the regular expression
 * that means the same, written from the glob language rather than from
 * the matcher. "(?!/)" keeps classes off '/'.
 */
static const struct {
    const char *glob;
    const char *regex;
} pieces[] = {
    {"a", "a"},
    {"b", "b"},
    {"A", "A"},
    {"/", "/"},
    {".", "\\."},
    {"\xc3\xa9", "\xc3\xa9"},
    {"*", "[^/]*"},
    {"**", ".*"},
    {"?", "[^/]"},
    {"[ab]", "(?!/)[ab]"},
    {"[!a]", "(?!/)[^a]"},
    {"[a-c]", "(?!/)[a-c]"},
    {"[!a-c/]", "(?!/)[^a-c/]"},
    {"[]a]", "(?!/)[\\]a]"},
    {"[B-b]", "(?!/)[B-b]"},
    {"[!\xc3\xa9]", "(?!/)[^\xc3\xa9]"},
    {"\\*", "\\*"},
    {"\\[", "\\["},
    {"\\a", "a"},
};

static const char *const text_alphabet[] = {
    "a", "b", "c", "A", "B", "/", ".", "\xc3\xa9", "*", "[", "]",
};

static uint64_t random_state = 0x9e3779b97f4a7c15u;

/* xorshift64: the same sequence in every run. */
static unsigned
random_below(unsigned n)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (unsigned)(random_state % n);
}

/* Builds a random glob and its regular expression. Two star pieces never
 * meet, since "*" "*" would read as "**". */
static void
random_glob(char *glob, size_t glob_size, char *regex, size_t regex_size)
{
    size_t count = 1 + random_below(6);
    bool after_star = false;

    snprintf(glob, glob_size, "%s", "");
    snprintf(regex, regex_size, "%s", "^(?:");
    for (size_t i = 0; i < count; i++) {
        size_t k = random_below(COUNT(pieces));

        if (after_star && pieces[k].glob[0] == '*')
            continue;
        after_star = pieces[k].glob[0] == '*';
        strncat(glob, pieces[k].glob, glob_size - strlen(glob) - 1);
        strncat(regex, pieces[k].regex, regex_size - strlen(regex) - 1);
    }
    strncat(regex, ")\\z", regex_size - strlen(regex) - 1);
}

static void
random_text(char *text, size_t size)
{
    size_t count = random_below(9);

    text[0] = '\0';
    for (size_t i = 0; i < count; i++)
        strncat(text, text_alphabet[random_below(COUNT(text_alphabet))],
                size - strlen(text) - 1);
}

static pcre2_code *
compile_reference(const char *regex, bool ignore_case)
{
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_DOTALL |
                                       (ignore_case ? PCRE2_CASELESS : 0),
                                   &code, &offset, NULL);

    ck_assert_msg(re != NULL, "regex %s did not compile: error %d at %zu",
                  regex, code, (size_t)offset);
    return re;
}

START_TEST(test_random_against_pcre2)
{
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    size_t matches = 0, total = 0;

    for (int round = 0; round < 3000; round++) {
        char glob[128], regex[512];
        bool ignore_case = round % 4 == 3;
        pcre2_code *re;

        random_glob(glob, sizeof(glob), regex, sizeof(regex));
        if (glob[0] == '\0')
            continue;
        re = compile_reference(regex, ignore_case);
        for (int t = 0; t < 60; t++) {
            char text[64];
            bool want, got;

            /* Every sixth text is the glob itself, so literal globs get
             * matches too. */
            if (t % 6 == 0)
                snprintf(text, sizeof(text), "%s", glob);
            else
                random_text(text, sizeof(text));
            want = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md,
                               NULL) >= 0;
            got = pg_glob_match(glob, strlen(glob), text, strlen(text),
                                ignore_case);
            ck_assert_msg(
                got == want, "glob '%s' on '%s'%s: got %s, PCRE2 %s says %s",
                glob, text, ignore_case ? " (ignore case)" : "",
                got ? "match" : "no match", regex, want ? "match" : "no match");
            matches += want;
            total++;
        }
        pcre2_code_free(re);
    }
    pcre2_match_data_free(md);

    /* The comparison means something only if both outcomes occur often. */
    ck_assert_uint_gt(matches, total / 20);
    ck_assert_uint_lt(matches, total - total / 20);
}
END_TEST

START_TEST(test_worst_case_globs)
{
    size_t len = 10000;
    char *text = malloc(len + 1);

    ck_assert_ptr_nonnull(text);
    memset(text, 'a', len);
    text[len] = '\0';

    /* A backtracking matcher needs about len^7 steps to fail these. */
    ck_assert(!pg_glob_match("*a*a*a*a*a*a*a*b", 16, text, len, false));
    ck_assert(!pg_glob_match("**a**a**a**a**a**a**a**b", 24, text, len, false));
    ck_assert(!pg_glob_match("*?*?*?*?*?*?*?*b", 16, text, len, true));
    ck_assert(pg_glob_match("*a*a*a*a*a*a*a*a", 16, text, len, false));
    ck_assert(pg_glob_match("**a**a**a**a**a**a**a**a", 24, text, len, false));

    /* '/' ends what a single star can take. */
    text[len / 2] = '/';
    ck_assert(!pg_glob_match("*a*a*a*a*a*a*a*a", 16, text, len, false));
    ck_assert(pg_glob_match("*a*a*a*/*a*a*a*a", 16, text, len, false));
    free(text);
}
END_TEST

static Suite *
glob_suite(void)
{
    Suite *suite = suite_create("glob");
    TCase *tc = tcase_create("glob");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_match_table);
    tcase_add_test(tc, test_nul_bytes);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_check_messages);
    tcase_add_test(tc, test_check_length);
    tcase_add_test(tc, test_random_against_pcre2);
    tcase_add_test(tc, test_worst_case_globs);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(glob_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
