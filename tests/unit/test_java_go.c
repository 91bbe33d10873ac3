/*
 * Unit tests of the Java archive cataloger and the Go build information
 * reader. Java archives are real jars from Debian's packages, and wars
 * and jars built here with libarchive's zip writer, read through the
 * layer reader inside tar layers written in memory. The Go reader is fed
 * the real /usr/bin/docker-registry in blocks of several sizes, and build
 * information written here byte by byte. Expected values come from
 * unzip, objcopy and the bytes the tests write, not from the code under
 * test. The Debian packages libcommons-lang3-java, libcommons-io-java,
 * docker-registry, unzip and binutils provide the files and tools.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <jansson.h>

#include "config/limits.h"
#include "inspector/catalog.h"
#include "inspector/inspector.h"

#define PLAIN_LAYER "application/vnd.oci.image.layer.v1.tar"
#define TEST_DIGEST                                                            \
    "sha256:"                                                                  \
    "2222222222222222222222222222222222222222222222222222222222222222"
#define LANG3_JAR "/usr/share/java/commons-lang3.jar"
#define IO_JAR "/usr/share/java/commons-io.jar"
#define GO_BINARY "/usr/bin/docker-registry"
#define MIB (1024 * 1024)

static const struct inspector_options default_options = {
    .entries_max = PG_LAYER_ENTRIES_DEFAULT_MAX,
    .bytes_max = PG_LAYER_BYTES_DEFAULT_MAX,
    .path_length_max = PG_LAYER_PATH_DEFAULT_MAX,
    .ratio_max = PG_LAYER_RATIO_DEFAULT_MAX,
    .file_bytes_max = PG_INSPECT_FILE_DEFAULT_MAX,
    .secret_file_bytes_max = PG_SECRET_FILE_DEFAULT_MAX,
};

/* ---- bytes in memory ---- */

struct bytes {
    unsigned char *data;
    size_t len;
    size_t cap;
};

static void
bytes_append(struct bytes *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;

        while (b->len + len > cap)
            cap *= 2;
        b->data = realloc(b->data, cap);
        ck_assert_ptr_nonnull(b->data);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static la_ssize_t
bytes_write(struct archive *a, void *arg, const void *buf, size_t len)
{
    (void)a;
    bytes_append(arg, buf, len);
    return (la_ssize_t)len;
}

static struct bytes
file_read(const char *path)
{
    struct bytes b = {0};
    FILE *f = fopen(path, "rb");
    unsigned char buf[65536];
    size_t n;

    ck_assert_msg(f != NULL, "%s is missing; install its Debian package", path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        bytes_append(&b, buf, n);
    fclose(f);
    return b;
}

/* Returns what command prints on its standard output. */
static struct bytes
command_output(const char *command)
{
    struct bytes b = {0};
    FILE *p = popen(command, "r");
    unsigned char buf[4096];
    size_t n;

    ck_assert_msg(p != NULL, "cannot run %s", command);
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        bytes_append(&b, buf, n);
    ck_assert_int_eq(pclose(p), 0);
    bytes_append(&b, "", 1);
    return b;
}

/* ---- archives written with libarchive ---- */

struct member {
    const char *path;
    const void *data;
    size_t len;
};

static void
archive_add(struct archive *a, const struct member *m)
{
    struct archive_entry *entry = archive_entry_new();

    archive_entry_set_pathname(entry, m->path);
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, (la_int64_t)m->len);
    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
    if (m->len > 0)
        ck_assert_int_eq(archive_write_data(a, m->data, m->len),
                         (la_ssize_t)m->len);
    archive_entry_free(entry);
}

/* Writes a zip archive (compression "deflate" or "store") or, when
 * compression is NULL, a plain tar layer of members. */
static struct bytes
archive_build_as(const char *compression, const struct member *members,
                 size_t n)
{
    struct bytes out = {0};
    struct archive *a = archive_write_new();

    if (compression != NULL) {
        char option[64];

        snprintf(option, sizeof(option), "compression=%s", compression);
        ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
        ck_assert_int_eq(archive_write_set_options(a, option), ARCHIVE_OK);
    } else {
        ck_assert_int_eq(archive_write_set_format_pax_restricted(a),
                         ARCHIVE_OK);
    }
    ck_assert_int_eq(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open(a, &out, NULL, bytes_write, NULL),
                     ARCHIVE_OK);
    for (size_t i = 0; i < n; i++)
        archive_add(a, &members[i]);
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return out;
}

/* Writes a zip archive (deflate) or a plain tar layer of members. */
static struct bytes
archive_build(bool zip, const struct member *members, size_t n)
{
    return archive_build_as(zip ? "deflate" : NULL, members, n);
}

static struct member
member_bytes(const char *path, const struct bytes *b)
{
    return (struct member){path, b->data, b->len};
}

static struct member
member_text(const char *path, const char *text)
{
    return (struct member){path, text, strlen(text)};
}

/* ---- layers read through the layer reader ---- */

struct memory_source {
    const struct bytes *layer;
    size_t pos;
};

static ssize_t
memory_source_read(void *arg, void *buf, size_t len, struct pg_error **err)
{
    struct memory_source *src = arg;
    size_t n = src->layer->len - src->pos;

    (void)err;
    if (n > len)
        n = len;
    memcpy(buf, src->layer->data + src->pos, n);
    src->pos += n;
    return (ssize_t)n;
}

/* Reads a tar layer of members with options and returns its findings. */
static json_t *
layer_findings(const struct member *members, size_t n,
               const struct inspector_options *options)
{
    struct bytes layer = archive_build(false, members, n);
    struct memory_source src = {.layer = &layer};
    struct inspector_source source = {.read = memory_source_read, .arg = &src};
    struct pg_error *err = NULL;
    json_t *result = inspector_scan_layer(&source, TEST_DIGEST, PLAIN_LAYER, -1,
                                          options, &err);
    json_t *findings;

    ck_assert_msg(result != NULL, "layer failed: %s",
                  err == NULL ? "" : err->message);
    findings = json_incref(json_object_get(result, "findings"));
    ck_assert_ptr_nonnull(findings);
    json_decref(result);
    free(layer.data);
    return findings;
}

static const char *
text_at(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static size_t
count_of(const json_t *findings, const char *key)
{
    return json_array_size(json_object_get(findings, key));
}

/* Returns the package named name with version, or NULL. */
static json_t *
package_find(const json_t *findings, const char *name, const char *version)
{
    json_t *packages = json_object_get(findings, "packages");
    size_t i;
    json_t *package;

    json_array_foreach(packages, i, package)
    {
        if (strcmp(text_at(package, "name"), name) == 0 &&
            strcmp(text_at(package, "version"), version) == 0)
            return package;
    }
    return NULL;
}

/* Returns the message of the note of cataloger about path, or NULL. */
static const char *
note_find(const json_t *findings, const char *cataloger, const char *path)
{
    json_t *notes = json_object_get(findings, "notes");
    size_t i;
    json_t *note;

    json_array_foreach(notes, i, note)
    {
        if (strcmp(text_at(note, "cataloger"), cataloger) == 0 &&
            strcmp(text_at(note, "path"), path) == 0)
            return text_at(note, "message");
    }
    return NULL;
}

/* ---- expected values from unzip ---- */

struct pom_expected {
    char group[256];
    char artifact[256];
    char version[256];
    char location[512];
};

/* Copies the value of "key=value" in the text of a plain properties file
 * (no escapes, as Maven writes them). */
static void
property_copy(const char *text, const char *key, char *out, size_t size)
{
    char needle[64];
    const char *line;
    size_t len;

    snprintf(needle, sizeof(needle), "\n%s=", key);
    line = strstr(text, needle);
    ck_assert_msg(line != NULL, "no %s in pom.properties", key);
    line += strlen(needle);
    len = strcspn(line, "\r\n");
    ck_assert_uint_lt(len, size);
    memcpy(out, line, len);
    out[len] = '\0';
}

/* Reads the pom.properties of jar with unzip. */
static struct pom_expected
pom_expected_read(const char *jar)
{
    struct pom_expected pom;
    char command[512];
    struct bytes text;
    struct bytes listing;
    size_t len;

    snprintf(command, sizeof(command),
             "unzip -p %s 'META-INF/maven/*/*/pom.properties'", jar);
    text = command_output(command);
    /* A newline in front lets the first line match "\nkey=". */
    memmove(text.data + 1, text.data, text.len - 1);
    text.data[0] = '\n';
    property_copy((char *)text.data, "groupId", pom.group, sizeof(pom.group));
    property_copy((char *)text.data, "artifactId", pom.artifact,
                  sizeof(pom.artifact));
    property_copy((char *)text.data, "version", pom.version,
                  sizeof(pom.version));

    snprintf(command, sizeof(command),
             "unzip -Z1 %s | grep '^META-INF/maven/.*/pom.properties$'", jar);
    listing = command_output(command);
    len = strcspn((char *)listing.data, "\n");
    ck_assert_uint_lt(len, sizeof(pom.location));
    memcpy(pom.location, listing.data, len);
    pom.location[len] = '\0';

    free(text.data);
    free(listing.data);
    return pom;
}

/* Checks the package that pom describes, found in the archive at path,
 * with location prefix before the pom.properties path. */
static void
pom_package_check(const json_t *findings, const struct pom_expected *pom,
                  const char *path, const char *prefix)
{
    json_t *package = package_find(findings, pom->artifact, pom->version);
    char location[1024];
    char purl[1024];

    ck_assert_msg(package != NULL, "no package %s %s", pom->artifact,
                  pom->version);
    snprintf(location, sizeof(location), "%s%s", prefix, pom->location);
    snprintf(purl, sizeof(purl), "pkg:maven/%s/%s@%s", pom->group,
             pom->artifact, pom->version);
    ck_assert_str_eq(text_at(package, "type"), "maven");
    ck_assert_str_eq(text_at(package, "namespace"), pom->group);
    ck_assert_str_eq(text_at(package, "path"), path);
    ck_assert_str_eq(text_at(package, "location"), location);
    ck_assert_str_eq(text_at(package, "purl"), purl);
}

/* ---- Java archives ---- */

START_TEST(jar_pom_properties)
{
    struct pom_expected pom = pom_expected_read(LANG3_JAR);
    struct bytes jar = file_read(LANG3_JAR);
    struct member members[] = {
        member_bytes("usr/share/java/commons-lang3.jar", &jar),
    };
    json_t *findings = layer_findings(members, 1, &default_options);

    ck_assert_str_eq(pom.artifact, "commons-lang3");
    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    pom_package_check(findings, &pom, "usr/share/java/commons-lang3.jar", "");
    ck_assert_uint_eq(count_of(findings, "notes"), 0);

    json_decref(findings);
    free(jar.data);
}
END_TEST

START_TEST(war_nested_jars)
{
    struct pom_expected lang3 = pom_expected_read(LANG3_JAR);
    struct pom_expected io = pom_expected_read(IO_JAR);
    struct bytes lang3_jar = file_read(LANG3_JAR);
    struct bytes io_jar = file_read(IO_JAR);
    struct member war_members[] = {
        member_text("WEB-INF/web.xml", "<web-app/>\n"),
        member_bytes("WEB-INF/lib/commons-io-2.11.0.jar", &io_jar),
        member_bytes("WEB-INF/lib/commons-lang3-3.12.0.jar", &lang3_jar),
    };
    struct bytes war = archive_build(true, war_members, 3);
    struct member members[] = {member_bytes("srv/app.war", &war)};
    json_t *findings = layer_findings(members, 1, &default_options);

    ck_assert_uint_eq(count_of(findings, "packages"), 2);
    pom_package_check(findings, &io, "srv/app.war",
                      "WEB-INF/lib/commons-io-2.11.0.jar!");
    pom_package_check(findings, &lang3, "srv/app.war",
                      "WEB-INF/lib/commons-lang3-3.12.0.jar!");
    ck_assert_uint_eq(count_of(findings, "notes"), 0);

    json_decref(findings);
    free(war.data);
    free(io_jar.data);
    free(lang3_jar.data);
}
END_TEST

/* Java properties syntax: comments, ':' and white space as separators,
 * escapes, a continuation line; a repeated pom is reported once. */
START_TEST(jar_pom_properties_syntax)
{
    static const char pom[] = "#Generated by hand\r\n"
                              "  ! another comment\r\n"
                              "groupId : org.ex\\\r\n"
                              "        ample\r\n"
                              "artifactId=my\\u0041rt\\tx\n"
                              "version   1.0\\:final\n"
                              "other\n";
    struct member jar_members[] = {
        member_text("META-INF/maven/org.example/myArt/pom.properties", pom),
        member_text("META-INF/maven/copy/pom.properties", pom),
    };
    struct bytes jar = archive_build(true, jar_members, 2);
    struct member members[] = {member_bytes("app/my.jar", &jar)};
    json_t *findings = layer_findings(members, 1, &default_options);
    json_t *package;

    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    package = package_find(findings, "myArt\tx", "1.0:final");
    ck_assert_ptr_nonnull(package);
    ck_assert_str_eq(text_at(package, "namespace"), "org.example");
    ck_assert_str_eq(text_at(package, "location"),
                     "META-INF/maven/org.example/myArt/pom.properties");
    ck_assert_str_eq(text_at(package, "purl"),
                     "pkg:maven/org.example/myArt%09x@1.0:final");

    json_decref(findings);
    free(jar.data);
}
END_TEST

/* A jar without pom.properties is named by its manifest, whose lines
 * are continued after 72 bytes with a leading space. */
/* Stored entries end with an empty block whose pointer is NULL, which
 * must never reach memcpy (the sanitizer build aborted on it). */
START_TEST(jar_stored_entries)
{
    struct member jar_members[] = {
        member_text("META-INF/MANIFEST.MF",
                    "Manifest-Version: 1.0\n"
                    "Implementation-Title: stored\n"
                    "Implementation-Version: 1.1\n"),
        member_text("META-INF/empty.txt", ""),
    };
    struct bytes jar = archive_build_as("store", jar_members, 2);
    struct member layer_members[] = {member_bytes("opt/app/stored.jar", &jar)};
    json_t *findings = layer_findings(layer_members, 1, &default_options);
    json_t *package = package_find(findings, "stored", "1.1");

    ck_assert_ptr_nonnull(package);
    ck_assert_str_eq(text_at(package, "path"), "opt/app/stored.jar");
    json_decref(findings);
    free(jar.data);
}
END_TEST

START_TEST(jar_manifest_only)
{
    static const char bundle[] =
        "Manifest-Version: 1.0\r\n"
        "Bundle-SymbolicName: org.example.tool.with.a.rather.long.symbolic."
        "na\r\n"
        " me;singleton:=true\r\n"
        "Bundle-Version: 2.4.1\r\n"
        "Bundle-License: \"Apache-2.0\";link=\"https://www.apache.org/licen"
        "se\r\n"
        " s/LICENSE-2.0\", MIT\r\n"
        "\r\n"
        "Name: org/example/\r\n"
        "Implementation-Title: not the main section\r\n"
        "Implementation-Version: 9\r\n";
    static const char implementation[] =
        "Manifest-Version: 1.0\n"
        "Implementation-Title: widget\n"
        "Implementation-Version: 0.3\n"
        "Bundle-SymbolicName: org.example.widget\n"
        "Bundle-Version: 7\n";
    struct member bundle_members[] = {
        member_text("META-INF/MANIFEST.MF", bundle),
        member_text("org/example/Tool.class", "\xca\xfe\xba\xbe"),
    };
    struct member impl_members[] = {
        member_text("META-INF/MANIFEST.MF", implementation),
    };
    struct member plain_members[] = {
        member_text("org/example/Plain.class", "\xca\xfe\xba\xbe"),
    };
    struct bytes bundle_jar = archive_build(true, bundle_members, 2);
    struct bytes impl_jar = archive_build(true, impl_members, 1);
    struct bytes plain_jar = archive_build(true, plain_members, 1);
    struct member members[] = {
        member_bytes("opt/tool.jar", &bundle_jar),
        member_bytes("opt/widget.jar", &impl_jar),
        member_bytes("opt/plain-lib-3.2.1.jar", &plain_jar),
    };
    json_t *findings = layer_findings(members, 3, &default_options);
    json_t *package;
    json_t *licenses;

    ck_assert_uint_eq(count_of(findings, "packages"), 3);
    package = package_find(
        findings, "org.example.tool.with.a.rather.long.symbolic.name", "2.4.1");
    ck_assert_ptr_nonnull(package);
    ck_assert_str_eq(text_at(package, "path"), "opt/tool.jar");
    ck_assert_str_eq(text_at(package, "location"), "META-INF/MANIFEST.MF");
    ck_assert_ptr_null(json_object_get(package, "namespace"));
    ck_assert_str_eq(
        text_at(package, "purl"),
        "pkg:maven/org.example.tool.with.a.rather.long.symbolic.name@2.4.1");
    licenses = json_object_get(package, "licenses");
    ck_assert_uint_eq(json_array_size(licenses), 2);
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 0)),
                     "Apache-2.0");
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 1)), "MIT");

    package = package_find(findings, "widget", "0.3");
    ck_assert_ptr_nonnull(package);
    ck_assert_str_eq(text_at(package, "path"), "opt/widget.jar");

    package = package_find(findings, "plain-lib", "3.2.1");
    ck_assert_ptr_nonnull(package);
    ck_assert_str_eq(text_at(package, "path"), "opt/plain-lib-3.2.1.jar");
    ck_assert_ptr_null(json_object_get(package, "location"));
    ck_assert_str_eq(text_at(package, "purl"), "pkg:maven/plain-lib@3.2.1");
    ck_assert_uint_eq(count_of(findings, "notes"), 0);

    json_decref(findings);
    free(bundle_jar.data);
    free(impl_jar.data);
    free(plain_jar.data);
}
END_TEST

/* A truncated jar is a note; the layer and the next jar are still
 * read. */
START_TEST(jar_truncated)
{
    struct pom_expected io = pom_expected_read(IO_JAR);
    struct bytes lang3_jar = file_read(LANG3_JAR);
    struct bytes io_jar = file_read(IO_JAR);
    struct member members[] = {
        {"opt/broken-1.0.jar", lang3_jar.data, lang3_jar.len / 2},
        member_bytes("opt/commons-io.jar", &io_jar),
    };
    json_t *findings = layer_findings(members, 2, &default_options);
    const char *message = note_find(findings, "java", "opt/broken-1.0.jar");

    ck_assert_ptr_nonnull(message);
    ck_assert_msg(strstr(message, "not a readable zip archive") != NULL,
                  "note: %s", message);
    pom_package_check(findings, &io, "opt/commons-io.jar", "");

    json_decref(findings);
    free(lang3_jar.data);
    free(io_jar.data);
}
END_TEST

/* A jar of 64 MiB of zeros, which deflate compresses about 1000 times,
 * and a pom.properties after them. */
static struct bytes
bomb_jar_build(void)
{
    unsigned char *zeros = calloc(64, MIB);
    struct member jar_members[] = {
        {"data.bin", zeros, (size_t)64 * MIB},
        member_text("META-INF/maven/g/a/pom.properties",
                    "groupId=g\nartifactId=a\nversion=1\n"),
    };
    struct bytes jar;

    ck_assert_ptr_nonnull(zeros);
    jar = archive_build(true, jar_members, 2);
    free(zeros);
    ck_assert_uint_lt(jar.len, MIB);
    return jar;
}

START_TEST(jar_bomb_ratio)
{
    struct bytes jar = bomb_jar_build();
    struct member members[] = {member_bytes("opt/bomb.jar", &jar)};
    struct inspector_options options = default_options;
    json_t *findings;

    options.ratio_max = 100;
    findings = layer_findings(members, 1, &options);
    ck_assert_str_eq(note_find(findings, "java", "opt/bomb.jar"),
                     "the archive decompresses to more than 100 times its "
                     "size (inspector.compression_ratio_max); the rest was "
                     "not read");
    ck_assert_uint_eq(count_of(findings, "packages"), 0);

    json_decref(findings);
    free(jar.data);
}
END_TEST

START_TEST(jar_bomb_bytes)
{
    struct bytes jar = bomb_jar_build();
    struct member members[] = {member_bytes("opt/bomb.jar", &jar)};
    struct inspector_options options = default_options;
    json_t *findings;

    options.bytes_max = 32 * MIB;
    findings = layer_findings(members, 1, &options);
    ck_assert_str_eq(note_find(findings, "java", "opt/bomb.jar"),
                     "the archive has more than 33554432 decompressed bytes "
                     "(inspector.layer_bytes_max); the rest was not read");
    ck_assert_uint_eq(count_of(findings, "packages"), 0);

    json_decref(findings);
    free(jar.data);
}
END_TEST

/* A jar in a jar in a war: the second level is not opened. */
START_TEST(war_second_level_not_opened)
{
    struct member inner_members[] = {
        member_text("META-INF/maven/g/inner/pom.properties",
                    "groupId=g\nartifactId=inner\nversion=2.0\n"),
    };
    struct bytes inner = archive_build(true, inner_members, 1);
    struct member outer_members[] = {member_bytes("lib/inner-2.0.jar", &inner)};
    struct bytes outer = archive_build(true, outer_members, 1);
    struct member war_members[] = {
        member_bytes("WEB-INF/lib/outer-1.0.jar", &outer),
    };
    struct bytes war = archive_build(true, war_members, 1);
    struct member members[] = {member_bytes("srv/app.war", &war)};
    json_t *findings = layer_findings(members, 1, &default_options);
    json_t *package;

    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    package = package_find(findings, "outer", "1.0");
    ck_assert_ptr_nonnull(package);
    ck_assert_str_eq(text_at(package, "location"), "WEB-INF/lib/outer-1.0.jar");
    ck_assert_ptr_null(package_find(findings, "inner", "2.0"));
    ck_assert_str_eq(note_find(findings, "java", "srv/app.war"),
                     "archives nested two levels deep were not read (1, the "
                     "first at WEB-INF/lib/outer-1.0.jar!lib/inner-2.0.jar)");

    json_decref(findings);
    free(inner.data);
    free(outer.data);
    free(war.data);
}
END_TEST

/* A pom.properties over the 1 MiB maximum is a note, and the archive
 * goes on. */
START_TEST(jar_text_over_max)
{
    size_t len = 1024 * 1024 + 1;
    char *big = malloc(len + 1);
    struct member jar_members[3];
    struct bytes jar;
    json_t *findings;

    ck_assert_ptr_nonnull(big);
    memset(big, '#', len);
    big[len] = '\0';
    jar_members[0] = member_text("META-INF/maven/g/big/pom.properties", big);
    jar_members[1] = member_text("META-INF/maven/g/ok/pom.properties",
                                 "groupId=g\nartifactId=ok\nversion=3\n");
    jar = archive_build(true, jar_members, 2);
    {
        struct member members[] = {member_bytes("opt/x.jar", &jar)};

        findings = layer_findings(members, 1, &default_options);
    }
    ck_assert_str_eq(note_find(findings, "java", "opt/x.jar"),
                     "META-INF/maven/g/big/pom.properties is larger than "
                     "1048576 bytes and was not read");
    ck_assert_ptr_nonnull(package_find(findings, "ok", "3"));

    json_decref(findings);
    free(jar.data);
    free(big);
}
END_TEST

/* Licenses in the hostile Bundle-License header: "L," each, so the
 * manifest stays under JAVA_TEXT_FILE_MAX (1 MiB). */
#define MANY_LICENSES 500000

/*
 * A manifest whose Bundle-License lists 500,000 licenses. Searching the
 * rest of the header for ';' once per license reads about 2.5 * 10^11
 * bytes, and keeping every license makes a package of 500,000 strings.
 * The package keeps the first 64 (JAVA_LICENSES_MAX), with a note.
 */
START_TEST(jar_manifest_many_licenses)
{
    static const char head[] = "Manifest-Version: 1.0\n"
                               "Bundle-SymbolicName: org.example.many\n"
                               "Bundle-Version: 1.0\n"
                               "Bundle-License: ";
    size_t len = strlen(head) + 2 * MANY_LICENSES + 1;
    char *manifest = malloc(len + 1);
    struct member jar_members[1];
    struct bytes jar;
    struct member members[1];
    json_t *findings;
    const json_t *package;
    const json_t *licenses;
    const char *note;

    ck_assert_ptr_nonnull(manifest);
    memcpy(manifest, head, strlen(head));
    for (size_t i = 0; i < MANY_LICENSES; i++)
        memcpy(manifest + strlen(head) + 2 * i, "L,", 2);
    manifest[len - 1] = '\n';
    manifest[len] = '\0';
    jar_members[0] = member_text("META-INF/MANIFEST.MF", manifest);
    jar = archive_build(true, jar_members, 1);
    members[0] = member_bytes("opt/many.jar", &jar);
    findings = layer_findings(members, 1, &default_options);

    package = package_find(findings, "org.example.many", "1.0");
    ck_assert_ptr_nonnull(package);
    licenses = json_object_get(package, "licenses");
    ck_assert_uint_eq(json_array_size(licenses), 64);
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 63)), "L");
    note = note_find(findings, "java", "opt/many.jar");
    ck_assert_ptr_nonnull(note);
    ck_assert_str_eq(note,
                     "META-INF/MANIFEST.MF lists more than 64 licenses in "
                     "Bundle-License; the rest were not read");
    json_decref(findings);
    free(jar.data);
    free(manifest);
}
END_TEST

/* ---- Go build information ---- */

static const unsigned char go_magic[14] = "\xff Go buildinf:";
static const unsigned char sentinel_start[16] = {
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02,
    0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6};
static const unsigned char sentinel_end[16] = {
    0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72,
    0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2};

static void
varint_append(struct bytes *b, uint64_t value)
{
    do {
        unsigned char byte = value & 0x7f;

        value >>= 7;
        if (value != 0)
            byte |= 0x80;
        bytes_append(b, &byte, 1);
    } while (value != 0);
}

/* Appends filler bytes up to a multiple of 16, then a build information
 * header with flags. */
static void
header_append(struct bytes *b, unsigned char flags)
{
    unsigned char header[32] = {0};

    while (b->len % 16 != 0)
        bytes_append(b, "\x90", 1);
    memcpy(header, go_magic, sizeof(go_magic));
    header[14] = 8;
    header[15] = flags;
    bytes_append(b, header, sizeof(header));
}

/* Returns an ELF-like file with build information of Go version and
 * module text, after a decoy magic at an unaligned offset. */
static struct bytes
go_file_build(const char *version, const char *modinfo)
{
    struct bytes b = {0};
    size_t mod_len = strlen(modinfo);

    bytes_append(&b,
                 "\x7f"
                 "ELF",
                 4);
    for (int i = 0; i < 1000; i++)
        bytes_append(&b, (unsigned char[]){(unsigned char)(i * 7)}, 1);
    /* Not at a multiple of 16: ignored. */
    bytes_append(&b, "\x01\x02\x03", 3);
    bytes_append(&b, go_magic, sizeof(go_magic));
    bytes_append(&b, "\x08\x02", 2);
    for (int i = 0; i < 600; i++)
        bytes_append(&b, "\0", 1);

    header_append(&b, 2);
    varint_append(&b, strlen(version));
    bytes_append(&b, version, strlen(version));
    varint_append(&b, mod_len + 32);
    bytes_append(&b, sentinel_start, 16);
    bytes_append(&b, modinfo, mod_len);
    bytes_append(&b, sentinel_end, 16);
    for (int i = 0; i < 5000; i++)
        bytes_append(&b, (unsigned char[]){(unsigned char)i}, 1);
    return b;
}

/* Feeds data to a go_scan block bytes at a time and returns the
 * findings. */
static json_t *
go_findings(const char *path, const struct bytes *data, size_t block)
{
    struct catalog_ctx ctx = {.findings = json_object(),
                              .options = &default_options,
                              .layer_digest = TEST_DIGEST};
    struct go_scan *scan = go_scan_new(path);

    ck_assert_ptr_nonnull(scan);
    for (size_t pos = 0; pos < data->len; pos += block) {
        size_t n = data->len - pos < block ? data->len - pos : block;

        go_scan_feed(scan, data->data + pos, n);
    }
    ck_assert_int_eq(go_scan_finish(&ctx, scan), 0);
    return ctx.findings;
}

static void
golang_check(const json_t *findings, const char *name, const char *version,
             const char *purl, bool main_module)
{
    json_t *package = package_find(findings, name, version);

    ck_assert_msg(package != NULL, "no module %s %s", name, version);
    ck_assert_str_eq(text_at(package, "type"), "golang");
    ck_assert_str_eq(text_at(package, "path"), "usr/local/bin/tool");
    ck_assert_str_eq(text_at(package, "go_version"), "go1.21.5");
    ck_assert_str_eq(text_at(package, "purl"), purl);
    ck_assert(json_is_boolean(json_object_get(package, "main_module")));
    ck_assert(json_boolean_value(json_object_get(package, "main_module")) ==
              main_module);
}

static const char module_text[] =
    "path\texample.com/tool/cmd/tool\n"
    "mod\texample.com/tool\t(devel)\t\n"
    "dep\tgithub.com/spf13/cobra\tv1.8.0\th1:7aJaZx1B85qltLMc546zn58BxxfZd"
    "R/W22ej9CFoEf0=\n"
    "dep\tgolang.org/x/sys\tv0.15.0\th1:h48lPFYpsTvQJZF4EKyI4aLHaev3CxGIZ"
    "7kuHUlFfAM=\n"
    "dep\tgithub.com/old/lib\tv1.0.0\th1:aaaa=\n"
    "=>\tgithub.com/new/lib\tv1.2.0\th1:bbbb=\n"
    "dep\texample.com/local\tv0.0.0\t\n"
    "=>\t../local\t\t\n"
    "build\t-compiler=gc\n"
    "build\tGOOS=linux\n";

START_TEST(go_modules_any_block_size)
{
    static const size_t blocks[] = {1, 2, 3, 7, 15, 16, 17, 31, 4096, SIZE_MAX};
    struct bytes file = go_file_build("go1.21.5", module_text);

    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        json_t *findings = go_findings("usr/local/bin/tool", &file, blocks[i]);

        ck_assert_uint_eq(count_of(findings, "packages"), 6);
        ck_assert_uint_eq(count_of(findings, "notes"), 0);
        golang_check(findings, "stdlib", "1.21.5", "pkg:golang/stdlib@1.21.5",
                     false);
        golang_check(findings, "example.com/tool", "(devel)",
                     "pkg:golang/example.com/tool@%28devel%29", true);
        golang_check(findings, "github.com/spf13/cobra", "v1.8.0",
                     "pkg:golang/github.com/spf13/cobra@v1.8.0", false);
        golang_check(findings, "golang.org/x/sys", "v0.15.0",
                     "pkg:golang/golang.org/x/sys@v0.15.0", false);
        golang_check(findings, "github.com/new/lib", "v1.2.0",
                     "pkg:golang/github.com/new/lib@v1.2.0", false);
        golang_check(findings, "example.com/local", "(devel)",
                     "pkg:golang/example.com/local@%28devel%29", false);
        json_decref(findings);
    }
    free(file.data);
}
END_TEST

/* The expected note for docker-registry, from the section's bytes as
 * objcopy extracts them. Debian builds it outside module mode, so it
 * records the Go version and the package path but no modules. */
static void
registry_expected(char *message, size_t size, char *go_version,
                  size_t go_version_size)
{
    char out[] = "/tmp/test_java_go.XXXXXX";
    int fd = mkstemp(out);
    char command[256];
    struct bytes section;
    char version[64];
    const char *path;
    size_t version_len;

    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(command, sizeof(command),
             "objcopy -O binary --only-section=.go.buildinfo %s %s", GO_BINARY,
             out);
    free(command_output(command).data);
    section = file_read(out);
    unlink(out);

    ck_assert_uint_gt(section.len, 33);
    ck_assert_int_eq(memcmp(section.data, go_magic, sizeof(go_magic)), 0);
    version_len = section.data[32];
    ck_assert_uint_lt(version_len, sizeof(version));
    memcpy(version, section.data + 33, version_len);
    version[version_len] = '\0';

    bytes_append(&section, "", 1);
    path = memmem(section.data, section.len, "path\t", 5);
    ck_assert_ptr_nonnull(path);
    path += 5;
    ck_assert_ptr_null(memmem(section.data, section.len, "\nmod\t", 5));
    snprintf(message, size,
             "built with %s outside module mode (package %.*s); no module "
             "versions are recorded",
             version, (int)strcspn(path, "\n"), path);
    snprintf(go_version, go_version_size, "%s", version);
    free(section.data);
}

START_TEST(go_docker_registry)
{
    static const size_t blocks[] = {1, 7, 65536, SIZE_MAX};
    struct bytes binary = file_read(GO_BINARY);
    char expected[512];
    char go_version[64];

    registry_expected(expected, sizeof(expected), go_version,
                      sizeof(go_version));
    ck_assert_msg(strncmp(go_version, "go1.", 4) == 0, "%s", go_version);
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        json_t *findings =
            go_findings("usr/bin/docker-registry", &binary, blocks[i]);
        json_t *stdlib = package_find(findings, "stdlib", go_version + 2);

        /* The standard library is all a binary built outside module
         * mode records. */
        ck_assert_uint_eq(count_of(findings, "packages"), 1);
        ck_assert_ptr_nonnull(stdlib);
        ck_assert_str_eq(text_at(stdlib, "go_version"), go_version);
        ck_assert_uint_eq(count_of(findings, "notes"), 1);
        ck_assert_str_eq(
            note_find(findings, "golang", "usr/bin/docker-registry"), expected);
        json_decref(findings);
    }
    free(binary.data);
}
END_TEST

/* The layer reader hands ELF files to the Go reader. */
START_TEST(go_docker_registry_in_layer)
{
    struct bytes binary = file_read(GO_BINARY);
    struct member members[] = {
        member_bytes("usr/bin/docker-registry", &binary)};
    json_t *findings = layer_findings(members, 1, &default_options);
    char expected[512];
    char go_version[64];

    registry_expected(expected, sizeof(expected), go_version,
                      sizeof(go_version));
    ck_assert_str_eq(note_find(findings, "golang", "usr/bin/docker-registry"),
                     expected);

    json_decref(findings);
    free(binary.data);
}
END_TEST

/* Returns the note of a file fed in blocks of 1 and as a whole, which
 * must agree, and that has no packages. */
static char *
go_note_of(const struct bytes *file)
{
    char *message = NULL;

    for (size_t block = 1; block != 0; block = block == 1 ? SIZE_MAX : 0) {
        json_t *findings = go_findings("usr/local/bin/tool", file, block);
        const char *note = note_find(findings, "golang", "usr/local/bin/tool");

        ck_assert_uint_eq(count_of(findings, "packages"), 0);
        if (message == NULL) {
            message = note == NULL ? strdup("") : strdup(note);
        } else {
            ck_assert_str_eq(note == NULL ? "" : note, message);
        }
        json_decref(findings);
    }
    return message;
}

START_TEST(go_truncated)
{
    struct bytes file = go_file_build("go1.21.5", module_text);
    unsigned char *start = memmem(file.data, file.len, sentinel_start, 16);
    char *message;

    /* Cut 40 bytes into the module text. */
    ck_assert_ptr_nonnull(start);
    file.len = (size_t)(start - file.data) + 16 + 40;
    message = go_note_of(&file);
    ck_assert_str_eq(message, "the file ends inside its Go build information");
    free(message);
    free(file.data);
}
END_TEST

START_TEST(go_varint_too_large)
{
    struct bytes file = {0};
    char *message;

    header_append(&file, 2);
    varint_append(&file, 8);
    bytes_append(&file, "go1.21.5", 8);
    varint_append(&file, (uint64_t)1 << 60);
    bytes_append(&file, "path\tx\n", 7);
    message = go_note_of(&file);
    ck_assert_str_eq(message, "the Go build information is invalid: the "
                              "module information is longer than 1 MiB");
    free(message);
    free(file.data);
}
END_TEST

START_TEST(go_varint_overflow)
{
    struct bytes file = {0};
    char *message;

    header_append(&file, 2);
    /* Eleven bytes with the continuation bit: no uint64 is that long. */
    for (int i = 0; i < 11; i++)
        bytes_append(&file, "\xff", 1);
    message = go_note_of(&file);
    ck_assert_str_eq(message, "the Go build information is invalid: a "
                              "string length overflows 64 bits");
    free(message);
    free(file.data);
}
END_TEST

START_TEST(go_unaligned_magic_ignored)
{
    struct bytes file = {0};
    char *message;

    bytes_append(&file,
                 "\x7f"
                 "ELF",
                 4);
    bytes_append(&file, go_magic, sizeof(go_magic));
    bytes_append(&file, "\x08\x02", 2);
    for (int i = 0; i < 64; i++)
        bytes_append(&file, "\0", 1);
    message = go_note_of(&file);
    ck_assert_str_eq(message, "");
    free(message);
    free(file.data);
}
END_TEST

START_TEST(go_before_1_18)
{
    struct bytes file = {0};
    char *message;

    bytes_append(&file,
                 "\x7f"
                 "ELF",
                 4);
    header_append(&file, 0);
    for (int i = 0; i < 64; i++)
        bytes_append(&file, "\0", 1);
    message = go_note_of(&file);
    ck_assert_str_eq(message, "built with a Go release before 1.18; module "
                              "information is not read");
    free(message);
    free(file.data);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("java_go");
    TCase *java = tcase_create("java");
    TCase *go = tcase_create("go");
    TCase *java_hostile = tcase_create("java_hostile");
    SRunner *runner;
    int failed;

    tcase_set_timeout(java, 120);
    tcase_add_test(java, jar_pom_properties);
    tcase_add_test(java, war_nested_jars);
    tcase_add_test(java, jar_pom_properties_syntax);
    tcase_add_test(java, jar_manifest_only);
    tcase_add_test(java, jar_stored_entries);
    tcase_add_test(java, jar_truncated);
    tcase_add_test(java, jar_bomb_ratio);
    tcase_add_test(java, jar_bomb_bytes);
    tcase_add_test(java, war_second_level_not_opened);
    tcase_add_test(java, jar_text_over_max);
    suite_add_tcase(suite, java);

    /* Hostile archives, each read in well under a second when every
     * header is read in one pass. */
    tcase_set_timeout(java_hostile, 10);
    tcase_add_test(java_hostile, jar_manifest_many_licenses);
    suite_add_tcase(suite, java_hostile);

    tcase_set_timeout(go, 120);
    tcase_add_test(go, go_modules_any_block_size);
    tcase_add_test(go, go_docker_registry);
    tcase_add_test(go, go_docker_registry_in_layer);
    tcase_add_test(go, go_truncated);
    tcase_add_test(go, go_varint_too_large);
    tcase_add_test(go, go_varint_overflow);
    tcase_add_test(go, go_unaligned_magic_ignored);
    tcase_add_test(go, go_before_1_18);
    suite_add_tcase(suite, go);

    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
