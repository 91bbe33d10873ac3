/*
 * Placeholder: the helper that owns this file replaces it with the tests
 * of its module.
 */
#include <stdlib.h>

#include <check.h>

#include "inspector/catalog.h"

START_TEST(suffix_matches)
{
    ck_assert(catalog_has_suffix("a/b.jar", ".jar"));
    ck_assert(!catalog_has_suffix("jar", ".jar"));
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("sbom");
    TCase *tcase = tcase_create("placeholder");
    SRunner *runner;
    int failed;

    tcase_add_test(tcase, suffix_matches);
    suite_add_tcase(suite, tcase);
    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
