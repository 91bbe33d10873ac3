/*
 * Unit tests for the catalogers (inspector/catalog*.c): package URLs, and
 * each cataloger against real files of the test machine.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "inspector/catalog.h"

/* Package URLs as the purl specification spells them. */
static const struct {
    const char *type, *namespace, *name, *version;
    const char *qualifiers[7];
    const char *expected;
} purl_cases[] = {
    {"deb", "debian", "libstdc++6", "12.2.0-14",
     {"distro", "debian-12", "arch", "amd64", NULL},
     "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12"},
    {"deb", "debian", "tzdata", "1:2024a", {NULL},
     "pkg:deb/debian/tzdata@1:2024a"},
    {"npm", "@types", "node", "20.1.0", {NULL},
     "pkg:npm/%40types/node@20.1.0"},
    {"golang", "github.com/docker", "distribution", "v2.8.2+incompatible",
     {NULL},
     "pkg:golang/github.com/docker/distribution@v2.8.2%2Bincompatible"},
    {"pypi", NULL, "requests", "2.28.1", {"extra", "", NULL},
     "pkg:pypi/requests@2.28.1"},
    {"maven", "org.apache.commons", "commons-lang3", "3.12.0", {NULL},
     "pkg:maven/org.apache.commons/commons-lang3@3.12.0"},
    {"gem", "", "rake", NULL, {NULL}, "pkg:gem/rake"},
};

START_TEST(purl_spelled)
{
    json_t *purl = catalog_purl(purl_cases[_i].type, purl_cases[_i].namespace,
                                purl_cases[_i].name, purl_cases[_i].version,
                                purl_cases[_i].qualifiers);

    ck_assert_ptr_nonnull(purl);
    ck_assert_str_eq(json_string_value(purl), purl_cases[_i].expected);
    json_decref(purl);
}
END_TEST

START_TEST(add_and_note)
{
    struct catalog_ctx ctx = {.findings = json_object()};
    json_t *notes;

    ck_assert_int_eq(catalog_add(&ctx, "os", json_pack("{s:s}", "id", "x")),
                     0);
    ck_assert_int_eq(catalog_note(&ctx, "dpkg", "var/lib/dpkg/status",
                                  "line %d has no colon", 7),
                     0);
    ck_assert_int_eq(json_array_size(json_object_get(ctx.findings, "os")), 1);
    notes = json_object_get(ctx.findings, "notes");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(notes, 0), "message")),
                     "line 7 has no colon");
    json_decref(ctx.findings);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("catalog");
    TCase *purl = tcase_create("purl");
    SRunner *runner;
    int failed;

    tcase_add_loop_test(purl, purl_spelled, 0,
                        sizeof(purl_cases) / sizeof(purl_cases[0]));
    tcase_add_test(purl, add_and_note);
    suite_add_tcase(suite, purl);
    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
