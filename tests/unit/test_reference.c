/*
 * Unit tests for proxy/reference.c: the name, tag and digest grammars and
 * the registry host test, each against tables of accepted and rejected
 * strings, with the length limits at maximum and maximum + 1.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "config/limits.h"
#include "proxy/reference.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX128                                                                 \
    HEX64 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba98"           \
          "76543210"

static const char *const valid_names[] = {
    "a",
    "0",
    "alpine",
    "library/alpine",
    "org/team/app",
    "a.b",
    "a_b",
    "a__b",
    "a-b",
    "a--b",
    "a---b",
    "a1-b2.c3_d4__e5",
    "a/b/c/d/e/f/g",
    "manifests/blobs",
};

static const char *const invalid_names[] = {
    "",        "a___b", "-a",        "a-",   ".a",   "a.",  "_a",
    "a_",      "a..b",  "a._b",      "a.-b", "a-.b", "A",   "Alpine",
    "org/App", "a//b",  "/a",        "a/",   "/",    "a:b", "localhost:5000/a",
    "a b",     "a\tb",  "a\xc3\xa9",
};

static const char *const valid_tags[] = {
    "latest", "1", "_", "A", "1.0", "v1.2.3-rc.1_b", "__", "a-", "a.", "3.19",
};

static const char *const invalid_tags[] = {
    "", ".a", "-a", "a:b", "a/b", "a b", "a+b", "a@b", "t\xc3\xa9", "a\n",
};

static const char *const valid_digests[] = {
    "sha256:" HEX64,
    "sha512:" HEX128,
};

static const char *const invalid_digests[] = {
    "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
    "sha256:0123456789abcdef",
    "sha256:" HEX64 "0",
    "sha256:" HEX64 ":",
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
    "sha256:",
    "SHA256:" HEX64,
    "sha1:0123456789abcdef0123456789abcdef01234567",
    "sha384:" HEX64 "0123456789abcdef0123456789abcdef",
    "sha512:" HEX64,
    "sha512:" HEX128 "0",
    "md5:0123456789abcdef0123456789abcdef",
    HEX64,
    ":" HEX64,
    "",
};

/* Returns a new string of len bytes of 'a', with '/' at every index in
 * slashes (a list ending in 0). The caller frees it. */
static char *
make_name(size_t len, const size_t *slashes)
{
    char *name = malloc(len + 1);

    ck_assert_ptr_nonnull(name);
    memset(name, 'a', len);
    name[len] = '\0';
    for (; *slashes != 0; slashes++)
        name[*slashes] = '/';
    return name;
}

START_TEST(name_valid_table)
{
    ck_assert_msg(reference_name_valid(valid_names[_i]),
                  "name \"%s\" should be valid", valid_names[_i]);
}
END_TEST

START_TEST(name_invalid_table)
{
    ck_assert_msg(!reference_name_valid(invalid_names[_i]),
                  "name \"%s\" should be invalid", invalid_names[_i]);
}
END_TEST

START_TEST(name_null)
{
    ck_assert(!reference_name_valid(NULL));
}
END_TEST

START_TEST(name_length_max)
{
    static const size_t none[] = {0};
    char *name = make_name(PG_NAME_MAX, none);

    ck_assert_uint_eq(strlen(name), 255);
    ck_assert(reference_name_valid(name));
    free(name);
}
END_TEST

START_TEST(name_length_over_max)
{
    static const size_t none[] = {0};
    char *name = make_name(PG_NAME_MAX + 1, none);

    ck_assert_uint_eq(strlen(name), 256);
    ck_assert(!reference_name_valid(name));
    free(name);
}
END_TEST

START_TEST(name_components_length_max)
{
    static const size_t slashes[] = {10, 100, 200, 0};
    char *name = make_name(PG_NAME_MAX, slashes);

    ck_assert(reference_name_valid(name));
    free(name);
}
END_TEST

START_TEST(name_components_length_over_max)
{
    static const size_t slashes[] = {10, 100, 200, 0};
    char *name = make_name(PG_NAME_MAX + 1, slashes);

    ck_assert(!reference_name_valid(name));
    free(name);
}
END_TEST

START_TEST(tag_valid_table)
{
    ck_assert_msg(reference_tag_valid(valid_tags[_i]),
                  "tag \"%s\" should be valid", valid_tags[_i]);
}
END_TEST

START_TEST(tag_invalid_table)
{
    ck_assert_msg(!reference_tag_valid(invalid_tags[_i]),
                  "tag \"%s\" should be invalid", invalid_tags[_i]);
}
END_TEST

START_TEST(tag_null)
{
    ck_assert(!reference_tag_valid(NULL));
}
END_TEST

START_TEST(tag_length_max)
{
    char tag[PG_TAG_MAX + 1];

    memset(tag, 'v', PG_TAG_MAX);
    tag[PG_TAG_MAX] = '\0';
    ck_assert_uint_eq(strlen(tag), 128);
    ck_assert(reference_tag_valid(tag));
}
END_TEST

START_TEST(tag_length_over_max)
{
    char tag[PG_TAG_MAX + 2];

    memset(tag, 'v', PG_TAG_MAX + 1);
    tag[PG_TAG_MAX + 1] = '\0';
    ck_assert_uint_eq(strlen(tag), 129);
    ck_assert(!reference_tag_valid(tag));
}
END_TEST

START_TEST(digest_valid_table)
{
    ck_assert_msg(reference_digest_valid(valid_digests[_i]),
                  "digest \"%s\" should be valid", valid_digests[_i]);
}
END_TEST

START_TEST(digest_invalid_table)
{
    ck_assert_msg(!reference_digest_valid(invalid_digests[_i]),
                  "digest \"%s\" should be invalid", invalid_digests[_i]);
}
END_TEST

START_TEST(digest_null)
{
    ck_assert(!reference_digest_valid(NULL));
}
END_TEST

START_TEST(digest_max_fits_limit)
{
    ck_assert_uint_eq(strlen("sha512:" HEX128), PG_DIGEST_MAX);
}
END_TEST

START_TEST(is_digest_with_colon)
{
    ck_assert(reference_is_digest("sha256:abc"));
}
END_TEST

START_TEST(is_digest_invalid_digest)
{
    ck_assert(reference_is_digest("md5:"));
}
END_TEST

START_TEST(is_digest_tag)
{
    ck_assert(!reference_is_digest("latest"));
}
END_TEST

START_TEST(is_digest_null)
{
    ck_assert(!reference_is_digest(NULL));
}
END_TEST

static const struct {
    const char *component;
    size_t len;
    bool is_host;
} host_cases[] = {
    {"docker.io", 9, true},
    {"ghcr.io", 7, true},
    {"localhost:5001", 14, true},
    {"registry:5000", 13, true},
    {"localhost", 9, true},
    {"localhost/app", 9, true},
    {"localhostx", 10, false},
    {"localhostx", 9, true},
    {"local", 5, false},
    {"org", 3, false},
    {"library", 7, false},
    {"docker.io", 6, false},
    {"", 0, false},
};

START_TEST(component_is_host_table)
{
    ck_assert_msg(reference_component_is_host(host_cases[_i].component,
                                              host_cases[_i].len) ==
                      host_cases[_i].is_host,
                  "component \"%.*s\" should%s be a host",
                  (int)host_cases[_i].len, host_cases[_i].component,
                  host_cases[_i].is_host ? "" : " not");
}
END_TEST

START_TEST(component_is_host_null)
{
    ck_assert(!reference_component_is_host(NULL, 3));
}
END_TEST

#define TABLE_SIZE(table) ((int)(sizeof(table) / sizeof((table)[0])))

static Suite *
reference_suite(void)
{
    Suite *suite = suite_create("reference");
    TCase *names = tcase_create("name");
    TCase *tags = tcase_create("tag");
    TCase *digests = tcase_create("digest");
    TCase *hosts = tcase_create("host");

    tcase_add_loop_test(names, name_valid_table, 0, TABLE_SIZE(valid_names));
    tcase_add_loop_test(names, name_invalid_table, 0,
                        TABLE_SIZE(invalid_names));
    tcase_add_test(names, name_null);
    tcase_add_test(names, name_length_max);
    tcase_add_test(names, name_length_over_max);
    tcase_add_test(names, name_components_length_max);
    tcase_add_test(names, name_components_length_over_max);
    suite_add_tcase(suite, names);

    tcase_add_loop_test(tags, tag_valid_table, 0, TABLE_SIZE(valid_tags));
    tcase_add_loop_test(tags, tag_invalid_table, 0, TABLE_SIZE(invalid_tags));
    tcase_add_test(tags, tag_null);
    tcase_add_test(tags, tag_length_max);
    tcase_add_test(tags, tag_length_over_max);
    suite_add_tcase(suite, tags);

    tcase_add_loop_test(digests, digest_valid_table, 0,
                        TABLE_SIZE(valid_digests));
    tcase_add_loop_test(digests, digest_invalid_table, 0,
                        TABLE_SIZE(invalid_digests));
    tcase_add_test(digests, digest_null);
    tcase_add_test(digests, digest_max_fits_limit);
    tcase_add_test(digests, is_digest_with_colon);
    tcase_add_test(digests, is_digest_invalid_digest);
    tcase_add_test(digests, is_digest_tag);
    tcase_add_test(digests, is_digest_null);
    suite_add_tcase(suite, digests);

    tcase_add_loop_test(hosts, component_is_host_table, 0,
                        TABLE_SIZE(host_cases));
    tcase_add_test(hosts, component_is_host_null);
    suite_add_tcase(suite, hosts);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(reference_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
