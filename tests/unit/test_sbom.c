/*
 * Tests of the SBOM writers on hand-built image documents. The expected
 * values are written out here from the SPDX 2.3 and CycloneDX 1.5
 * specifications, not taken from the writers' output. sbom.c is included
 * to reach the builders that take the time as an argument.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "inspector/sbom.c"

#define DIGEST                                                                 \
    "sha256:"                                                                  \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NOW 1700000000 /* 2023-11-14T22:13:20Z */

/* A document with every member the writers read. */
static const char full_document[] =
    "{\"document_version\": 2,"
    " \"source\": {\"registry\": \"127.0.0.1:5001\","
    "  \"repository\": \"lib/app\", \"reference\": \"1.0\"},"
    " \"manifest\": {\"digest\": \"" DIGEST "\"},"
    " \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"},"
    " \"os\": {\"id\": \"debian\", \"version_id\": \"12\","
    "  \"name\": \"Debian GNU/Linux\","
    "  \"pretty_name\": \"Debian GNU/Linux 12 (bookworm)\"},"
    " \"packages\": ["
    "  {\"type\": \"deb\", \"name\": \"libc6\", \"version\": \"2.36-9\","
    "   \"purl\": \"pkg:deb/debian/libc6@2.36-9?arch=amd64\","
    "   \"licenses\": [\"GPL-2.0-or-later\", \"LGPL-2.1-only\"],"
    "   \"path\": \"var/lib/dpkg/status\", \"layer\": 0,"
    "   \"source_name\": \"glibc\", \"source_version\": \"2.36-9\","
    "   \"arch\": \"amd64\"},"
    "  {\"type\": \"pypi\", \"name\": \"requests\", \"version\": \"2.31.0\","
    "   \"purl\": \"pkg:pypi/requests@2.31.0\", \"licenses\": [\"mit\"],"
    "   \"path\": \"usr/lib/python3/dist-packages/requests-2.31.0.dist-info/"
    "METADATA\", \"layer\": 1},"
    "  {\"type\": \"npm\", \"name\": \"dual\", \"version\": \"1.0.0\","
    "   \"purl\": \"pkg:npm/dual@1.0.0\","
    "   \"licenses\": [\"(MIT OR Apache-2.0)\"]},"
    "  {\"type\": \"pypi\", \"name\": \"unversioned\","
    "   \"purl\": \"pkg:pypi/unversioned\", \"licenses\": [\"BSD License\"]},"
    "  {\"type\": \"gem\", \"name\": \"na\xc3\xafve-\xd0\xbf\xd0\xb0\xd0\xba\","
    "   \"version\": \"1.0\", \"licenses\": [\"BSD-License\"]},"
    "  {\"type\": \"deb\", \"version\": \"1.0\"}"
    " ]}";

/* The package URL the image gets: pkg:oci, the last name component, the
 * digest as version, and the qualifiers sorted by key. */
static const char image_purl_text[] =
    "pkg:oci/app@" DIGEST
    "?arch=amd64&repository_url=127.0.0.1:5001%2Flib%2Fapp&tag=1.0";

static json_t *
load(const char *text)
{
    json_error_t jerr;
    json_t *document = json_loads(text, 0, &jerr);

    ck_assert_msg(document != NULL, "test document: line %d: %s", jerr.line,
                  jerr.text);
    return document;
}

static json_t *
spdx_of(const char *text)
{
    json_t *document = load(text);
    struct pg_error *err = NULL;
    json_t *spdx = spdx_build(document, NOW, &err);

    ck_assert_msg(spdx != NULL, "%s", err != NULL ? err->message : "");
    json_decref(document);
    return spdx;
}

static json_t *
cyclonedx_of(const char *text)
{
    json_t *document = load(text);
    struct pg_error *err = NULL;
    json_t *bom = cyclonedx_build(document, NOW, &err);

    ck_assert_msg(bom != NULL, "%s", err != NULL ? err->message : "");
    json_decref(document);
    return bom;
}

static const char *
text_at(const json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));

    ck_assert_msg(value != NULL, "member \"%s\" is missing", key);
    return value;
}

static bool
matches(const char *pattern, const char *text)
{
    regex_t regex;
    int status;

    ck_assert_int_eq(regcomp(&regex, pattern, REG_EXTENDED | REG_NOSUB), 0);
    status = regexec(&regex, text, 0, NULL, 0);
    regfree(&regex);
    return status == 0;
}

/* Returns the SPDX package whose name is name, or NULL. */
static const json_t *
spdx_package(const json_t *spdx, const char *name)
{
    size_t i;
    json_t *package;

    json_array_foreach(json_object_get(spdx, "packages"), i, package)
    {
        if (strcmp(text_at(package, "name"), name) == 0)
            return package;
    }
    return NULL;
}

/* Returns the CycloneDX component whose name is name, or NULL. */
static const json_t *
cyclonedx_component_named(const json_t *bom, const char *name)
{
    size_t i;
    json_t *component;

    json_array_foreach(json_object_get(bom, "components"), i, component)
    {
        if (strcmp(text_at(component, "name"), name) == 0)
            return component;
    }
    return NULL;
}

static bool
spdx_has_relationship(const json_t *spdx, const char *from, const char *type,
                      const char *to)
{
    size_t i;
    json_t *item;

    json_array_foreach(json_object_get(spdx, "relationships"), i, item)
    {
        if (strcmp(text_at(item, "spdxElementId"), from) == 0 &&
            strcmp(text_at(item, "relationshipType"), type) == 0 &&
            strcmp(text_at(item, "relatedSpdxElement"), to) == 0)
            return true;
    }
    return false;
}

static const char *
spdx_purl(const json_t *package)
{
    const json_t *ref =
        json_array_get(json_object_get(package, "externalRefs"), 0);

    ck_assert_ptr_nonnull(ref);
    ck_assert_str_eq(text_at(ref, "referenceCategory"), "PACKAGE-MANAGER");
    ck_assert_str_eq(text_at(ref, "referenceType"), "purl");
    return text_at(ref, "referenceLocator");
}

START_TEST(spdx_document_fields)
{
    json_t *spdx = spdx_of(full_document);
    const json_t *info = json_object_get(spdx, "creationInfo");

    ck_assert_str_eq(text_at(spdx, "spdxVersion"), "SPDX-2.3");
    ck_assert_str_eq(text_at(spdx, "dataLicense"), "CC0-1.0");
    ck_assert_str_eq(text_at(spdx, "SPDXID"), "SPDXRef-DOCUMENT");
    ck_assert_str_eq(text_at(spdx, "name"), "127.0.0.1:5001/lib/app:1.0");
    ck_assert_str_eq(text_at(spdx, "documentNamespace"),
                     "https://pullgate.invalid/spdx/sha256/"
                     "0123456789abcdef0123456789abcdef0123456789abcdef"
                     "0123456789abcdef/pullgate-" PACKAGE_VERSION);
    ck_assert_str_eq(text_at(info, "created"), "2023-11-14T22:13:20Z");
    ck_assert_int_eq(json_array_size(json_object_get(info, "creators")), 1);
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(info, "creators"), 0)),
        "Tool: pullgate-" PACKAGE_VERSION);
    json_decref(spdx);
}
END_TEST

START_TEST(spdx_package_fields)
{
    json_t *spdx = spdx_of(full_document);
    json_t *packages = json_object_get(spdx, "packages");
    json_t *ids = json_object();
    size_t i;
    json_t *package;

    /* The image, the operating system and the five packages with a name;
     * the package without a name is left out. */
    ck_assert_int_eq(json_array_size(packages), 7);
    json_array_foreach(packages, i, package)
    {
        const char *id = text_at(package, "SPDXID");

        ck_assert_msg(matches("^SPDXRef-[A-Za-z0-9.-]+$", id), "%s", id);
        ck_assert_msg(json_object_get(ids, id) == NULL, "%s twice", id);
        json_object_set_new(ids, id, json_true());
        ck_assert(strlen(text_at(package, "name")) > 0);
        ck_assert_str_eq(text_at(package, "downloadLocation"), "NOASSERTION");
        ck_assert(json_is_false(json_object_get(package, "filesAnalyzed")));
        ck_assert_str_eq(text_at(package, "licenseConcluded"), "NOASSERTION");
        ck_assert(json_is_string(json_object_get(package, "licenseDeclared")));
        ck_assert_str_eq(text_at(package, "copyrightText"), "NOASSERTION");
    }
    json_decref(ids);
    json_decref(spdx);
}
END_TEST

START_TEST(spdx_image_and_os)
{
    json_t *spdx = spdx_of(full_document);
    const json_t *image = spdx_package(spdx, "127.0.0.1:5001/lib/app:1.0");
    const json_t *os = spdx_package(spdx, "debian");

    ck_assert_ptr_nonnull(image);
    ck_assert_str_eq(text_at(image, "SPDXID"), "SPDXRef-Image");
    ck_assert_str_eq(text_at(image, "versionInfo"), DIGEST);
    ck_assert_str_eq(text_at(image, "primaryPackagePurpose"), "CONTAINER");
    ck_assert_str_eq(spdx_purl(image), image_purl_text);
    ck_assert_ptr_nonnull(os);
    ck_assert_str_eq(text_at(os, "versionInfo"), "12");
    ck_assert_str_eq(text_at(os, "primaryPackagePurpose"), "OPERATING-SYSTEM");
    ck_assert_str_eq(text_at(os, "description"),
                     "Debian GNU/Linux 12 (bookworm)");
    ck_assert(spdx_has_relationship(spdx, "SPDXRef-DOCUMENT", "DESCRIBES",
                                    "SPDXRef-Image"));
    ck_assert(spdx_has_relationship(spdx, "SPDXRef-Image", "CONTAINS",
                                    text_at(os, "SPDXID")));
    json_decref(spdx);
}
END_TEST

START_TEST(spdx_packages_carried_over)
{
    json_t *spdx = spdx_of(full_document);
    const json_t *libc = spdx_package(spdx, "libc6");
    const json_t *unversioned = spdx_package(spdx, "unversioned");
    const json_t *accented = spdx_package(spdx, "na\xc3\xafve-\xd0\xbf\xd0"
                                                "\xb0\xd0\xba");

    ck_assert_ptr_nonnull(libc);
    ck_assert_str_eq(text_at(libc, "versionInfo"), "2.36-9");
    ck_assert_str_eq(spdx_purl(libc), "pkg:deb/debian/libc6@2.36-9?arch=amd64");
    ck_assert_str_eq(text_at(libc, "sourceInfo"),
                     "built from source package glibc 2.36-9");
    ck_assert_str_eq(text_at(libc, "comment"),
                     "found at /var/lib/dpkg/status in layer 0");
    ck_assert(spdx_has_relationship(spdx, "SPDXRef-Image", "CONTAINS",
                                    text_at(libc, "SPDXID")));

    ck_assert_ptr_nonnull(unversioned);
    ck_assert_ptr_null(json_object_get(unversioned, "versionInfo"));
    ck_assert_str_eq(spdx_purl(unversioned), "pkg:pypi/unversioned");

    ck_assert_ptr_nonnull(accented);
    ck_assert_ptr_null(json_object_get(accented, "externalRefs"));
    ck_assert(spdx_has_relationship(spdx, "SPDXRef-Image", "CONTAINS",
                                    text_at(accented, "SPDXID")));
    json_decref(spdx);
}
END_TEST

/* Returns the extracted licensing info whose licenseId is id, or NULL. */
static const json_t *
extracted_info(const json_t *spdx, const char *id)
{
    size_t i;
    json_t *info;

    json_array_foreach(json_object_get(spdx, "hasExtractedLicensingInfos"), i,
                       info)
    {
        if (strcmp(text_at(info, "licenseId"), id) == 0)
            return info;
    }
    return NULL;
}

START_TEST(spdx_license_declared_values)
{
    json_t *spdx = spdx_of(full_document);
    const char *free_text, *similar;
    const json_t *info;

    ck_assert_str_eq(text_at(spdx_package(spdx, "libc6"), "licenseDeclared"),
                     "GPL-2.0-or-later AND LGPL-2.1-only");
    ck_assert_str_eq(text_at(spdx_package(spdx, "requests"), "licenseDeclared"),
                     "MIT");
    ck_assert_str_eq(text_at(spdx_package(spdx, "dual"), "licenseDeclared"),
                     "(MIT OR Apache-2.0)");
    ck_assert_str_eq(text_at(spdx_package(spdx, "debian"), "licenseDeclared"),
                     "NOASSERTION");

    /* Free text gets a LicenseRef- identifier with its text declared, and
     * two texts that read the same get different identifiers. */
    free_text = text_at(spdx_package(spdx, "unversioned"), "licenseDeclared");
    ck_assert_str_eq(free_text, "LicenseRef-BSD-License");
    info = extracted_info(spdx, free_text);
    ck_assert_ptr_nonnull(info);
    ck_assert_str_eq(text_at(info, "name"), "BSD License");
    ck_assert_str_eq(text_at(info, "extractedText"), "BSD License");
    similar = text_at(spdx_package(spdx, "na\xc3\xafve-\xd0\xbf\xd0\xb0\xd0"
                                         "\xba"),
                      "licenseDeclared");
    ck_assert_str_ne(similar, free_text);
    ck_assert(matches("^LicenseRef-[A-Za-z0-9.-]+$", similar));
    ck_assert_str_eq(text_at(extracted_info(spdx, similar), "extractedText"),
                     "BSD-License");
    json_decref(spdx);
}
END_TEST

START_TEST(spdx_minimal_document)
{
    json_t *spdx = spdx_of("{\"manifest\": {\"digest\": \"" DIGEST "\"}}");
    json_t *packages = json_object_get(spdx, "packages");

    ck_assert_str_eq(text_at(spdx, "name"), DIGEST);
    ck_assert_int_eq(json_array_size(packages), 1);
    ck_assert_ptr_null(
        json_object_get(json_array_get(packages, 0), "externalRefs"));
    ck_assert_ptr_null(json_object_get(spdx, "hasExtractedLicensingInfos"));
    ck_assert_int_eq(json_array_size(json_object_get(spdx, "relationships")),
                     1);
    json_decref(spdx);
}
END_TEST

START_TEST(spdx_local_image_name)
{
    json_t *spdx = spdx_of(
        "{\"source\": {\"registry\": \"\", \"repository\": \"oci:/tmp/x\","
        " \"reference\": \"v1\"},"
        " \"manifest\": {\"digest\": \"" DIGEST "\"}}");

    ck_assert_str_eq(text_at(spdx, "name"), "oci:/tmp/x:v1");
    ck_assert_ptr_null(json_object_get(
        json_array_get(json_object_get(spdx, "packages"), 0), "externalRefs"));
    json_decref(spdx);
}
END_TEST

START_TEST(cyclonedx_document_fields)
{
    json_t *bom = cyclonedx_of(full_document);
    const json_t *metadata = json_object_get(bom, "metadata");
    const json_t *image = json_object_get(metadata, "component");
    const json_t *tool = json_array_get(
        json_object_get(json_object_get(metadata, "tools"), "components"), 0);

    ck_assert_str_eq(text_at(bom, "bomFormat"), "CycloneDX");
    ck_assert_str_eq(text_at(bom, "specVersion"), "1.5");
    ck_assert(matches("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                      "[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                      text_at(bom, "serialNumber")));
    ck_assert(json_is_integer(json_object_get(bom, "version")));
    ck_assert_int_eq(json_integer_value(json_object_get(bom, "version")), 1);
    ck_assert_str_eq(text_at(metadata, "timestamp"), "2023-11-14T22:13:20Z");
    ck_assert_str_eq(text_at(tool, "type"), "application");
    ck_assert_str_eq(text_at(tool, "name"), "pullgate");
    ck_assert_str_eq(text_at(tool, "version"), PACKAGE_VERSION);
    ck_assert_str_eq(text_at(image, "type"), "container");
    ck_assert_str_eq(text_at(image, "name"), "127.0.0.1:5001/lib/app:1.0");
    ck_assert_str_eq(text_at(image, "version"), DIGEST);
    ck_assert_str_eq(text_at(image, "purl"), image_purl_text);
    json_decref(bom);
}
END_TEST

START_TEST(cyclonedx_serial_numbers_differ)
{
    json_t *first = cyclonedx_of(full_document);
    json_t *second = cyclonedx_of(full_document);

    ck_assert_str_ne(text_at(first, "serialNumber"),
                     text_at(second, "serialNumber"));
    json_decref(first);
    json_decref(second);
}
END_TEST

START_TEST(cyclonedx_components_unique)
{
    json_t *bom = cyclonedx_of(full_document);
    json_t *components = json_object_get(bom, "components");
    json_t *refs = json_object();
    const json_t *os = cyclonedx_component_named(bom, "debian");
    size_t i;
    json_t *component;

    json_object_set_new(
        refs,
        text_at(json_object_get(json_object_get(bom, "metadata"), "component"),
                "bom-ref"),
        json_true());
    ck_assert_int_eq(json_array_size(components), 6);
    json_array_foreach(components, i, component)
    {
        const char *ref = text_at(component, "bom-ref");

        ck_assert_msg(json_object_get(refs, ref) == NULL, "%s twice", ref);
        json_object_set_new(refs, ref, json_true());
    }
    ck_assert_ptr_nonnull(os);
    ck_assert_str_eq(text_at(os, "type"), "operating-system");
    ck_assert_str_eq(text_at(os, "version"), "12");
    json_decref(refs);
    json_decref(bom);
}
END_TEST

START_TEST(cyclonedx_packages_carried_over)
{
    json_t *bom = cyclonedx_of(full_document);
    const json_t *libc = cyclonedx_component_named(bom, "libc6");
    const json_t *unversioned = cyclonedx_component_named(bom, "unversioned");
    const json_t *accented =
        cyclonedx_component_named(bom, "na\xc3\xafve-\xd0\xbf\xd0\xb0\xd0\xba");
    const json_t *property;

    ck_assert_ptr_nonnull(libc);
    ck_assert_str_eq(text_at(libc, "type"), "library");
    ck_assert_str_eq(text_at(libc, "version"), "2.36-9");
    ck_assert_str_eq(text_at(libc, "purl"),
                     "pkg:deb/debian/libc6@2.36-9?arch=amd64");
    property = json_array_get(json_object_get(libc, "properties"), 0);
    ck_assert_str_eq(text_at(property, "name"), "pullgate:path");
    ck_assert_str_eq(text_at(property, "value"), "var/lib/dpkg/status");
    property = json_array_get(json_object_get(libc, "properties"), 1);
    ck_assert_str_eq(text_at(property, "name"), "pullgate:layer");
    ck_assert_str_eq(text_at(property, "value"), "0");

    ck_assert_ptr_nonnull(unversioned);
    ck_assert_ptr_null(json_object_get(unversioned, "version"));
    ck_assert_str_eq(text_at(unversioned, "purl"), "pkg:pypi/unversioned");
    ck_assert_ptr_nonnull(accented);
    ck_assert_ptr_null(json_object_get(accented, "purl"));
    json_decref(bom);
}
END_TEST

/* Returns licenses[index].license of the component named name. */
static const json_t *
cyclonedx_license(const json_t *bom, const char *name, size_t index)
{
    const json_t *component = cyclonedx_component_named(bom, name);
    const json_t *item;

    ck_assert_ptr_nonnull(component);
    item = json_array_get(json_object_get(component, "licenses"), index);
    ck_assert_ptr_nonnull(item);
    return json_object_get(item, "license");
}

START_TEST(cyclonedx_license_forms)
{
    json_t *bom = cyclonedx_of(full_document);
    const json_t *dual = cyclonedx_component_named(bom, "dual");
    const json_t *choice;

    ck_assert_str_eq(text_at(cyclonedx_license(bom, "libc6", 0), "id"),
                     "GPL-2.0-or-later");
    ck_assert_str_eq(text_at(cyclonedx_license(bom, "libc6", 1), "id"),
                     "LGPL-2.1-only");
    ck_assert_str_eq(text_at(cyclonedx_license(bom, "requests", 0), "id"),
                     "MIT");
    ck_assert_str_eq(text_at(cyclonedx_license(bom, "unversioned", 0), "name"),
                     "BSD License");
    ck_assert_ptr_null(
        json_object_get(cyclonedx_license(bom, "unversioned", 0), "id"));
    ck_assert_ptr_null(
        json_object_get(cyclonedx_component_named(bom, "debian"), "licenses"));

    /* An expression is the only item of "licenses". */
    ck_assert_int_eq(json_array_size(json_object_get(dual, "licenses")), 1);
    choice = json_array_get(json_object_get(dual, "licenses"), 0);
    ck_assert_str_eq(text_at(choice, "expression"), "(MIT OR Apache-2.0)");
    ck_assert_ptr_null(json_object_get(choice, "license"));
    json_decref(bom);
}
END_TEST

START_TEST(cyclonedx_minimal_document)
{
    json_t *bom = cyclonedx_of("{}");
    const json_t *image =
        json_object_get(json_object_get(bom, "metadata"), "component");

    ck_assert_int_eq(json_array_size(json_object_get(bom, "components")), 0);
    ck_assert_str_eq(text_at(image, "name"), "image");
    ck_assert_ptr_null(json_object_get(image, "version"));
    json_decref(bom);
}
END_TEST

START_TEST(too_many_packages)
{
    json_t *document =
        json_pack("{s:{s:s}, s:[]}", "manifest", "digest", DIGEST, "packages");
    json_t *packages = json_object_get(document, "packages");
    struct pg_error *err = NULL;

    for (size_t i = 0; i <= SBOM_PACKAGES_MAX; i++)
        json_array_append_new(packages, json_object());
    ck_assert_ptr_null(inspector_sbom_spdx(document, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err->message,
                     "image " DIGEST " has 100001 packages, more than the "
                     "100000 an SBOM holds");
    pg_error_clear(&err);
    ck_assert_ptr_null(inspector_sbom_cyclonedx(document, &err));
    ck_assert_ptr_nonnull(err);
    pg_error_free(err);
    json_decref(document);
}
END_TEST

/* License strings and the expression each is written as, or NULL when it
 * is not an SPDX expression of listed identifiers. */
static const struct {
    const char *text;
    const char *expression;
} expression_cases[] = {
    {"MIT", "MIT"},
    {"mit", "MIT"},
    {"gpl-2.0-or-later", "GPL-2.0-or-later"},
    {"GPL-2.0+", "GPL-2.0+"},
    {"Apache-2.0+", "Apache-2.0+"},
    {"Apache-2.0 WITH LLVM-exception", "Apache-2.0 WITH LLVM-exception"},
    {"MIT  or\tApache-2.0", "MIT OR Apache-2.0"},
    {"MIT OR (Apache-2.0 AND BSD-3-Clause)",
     "MIT OR (Apache-2.0 AND BSD-3-Clause)"},
    {"((MIT))", "((MIT))"},
    {"", NULL},
    {"MIT AND", NULL},
    {"AND MIT", NULL},
    {"(MIT", NULL},
    {"MIT)", NULL},
    {"()", NULL},
    {"MIT Apache-2.0", NULL},
    {"BSD License", NULL},
    {"GPL-2+", NULL},
    {"Apache-2.0 WITH Unknown-exception", NULL},
    {"LicenseRef-Custom", NULL},
    {"+", NULL},
    {"(((((((((((((((((MIT)))))))))))))))))", NULL},
};

START_TEST(license_expressions)
{
    const char *text = expression_cases[_i].text;
    const char *want = expression_cases[_i].expression;
    struct expression e;
    bool parsed = license_expression_parse(text, &e);

    if (want == NULL) {
        ck_assert_msg(!parsed, "\"%s\" parsed as \"%s\"", text, e.out);
    } else {
        ck_assert_msg(parsed, "\"%s\" did not parse", text);
        ck_assert_str_eq(e.out, want);
    }
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("sbom");
    TCase *spdx = tcase_create("spdx");
    TCase *cyclonedx = tcase_create("cyclonedx");
    TCase *licenses = tcase_create("licenses");
    SRunner *runner;
    int failed;

    tcase_add_test(spdx, spdx_document_fields);
    tcase_add_test(spdx, spdx_package_fields);
    tcase_add_test(spdx, spdx_image_and_os);
    tcase_add_test(spdx, spdx_packages_carried_over);
    tcase_add_test(spdx, spdx_license_declared_values);
    tcase_add_test(spdx, spdx_minimal_document);
    tcase_add_test(spdx, spdx_local_image_name);
    tcase_add_test(cyclonedx, cyclonedx_document_fields);
    tcase_add_test(cyclonedx, cyclonedx_serial_numbers_differ);
    tcase_add_test(cyclonedx, cyclonedx_components_unique);
    tcase_add_test(cyclonedx, cyclonedx_packages_carried_over);
    tcase_add_test(cyclonedx, cyclonedx_license_forms);
    tcase_add_test(cyclonedx, cyclonedx_minimal_document);
    tcase_add_test(licenses, too_many_packages);
    tcase_add_loop_test(
        licenses, license_expressions, 0,
        (int)(sizeof(expression_cases) / sizeof(expression_cases[0])));
    suite_add_tcase(suite, spdx);
    suite_add_tcase(suite, cyclonedx);
    suite_add_tcase(suite, licenses);
    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
