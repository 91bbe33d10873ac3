/*
 * Unit tests for the rpm cataloger (inspector/catalog_rpm.c) against rpm
 * databases that tests/fixtures/mkrpmdb builds with Debian's rpm and
 * Berkeley DB tools. Expected values are what `rpm -qa` prints for the
 * same databases. Hostile inputs are derived from those files or built
 * here with SQLite.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>
#include <sqlite3.h>

#include "inspector/catalog.h"

#define SQLITE_PATH "var/lib/rpm/rpmdb.sqlite"
#define BDB_PATH "var/lib/rpm/Packages"

/* Lines of an expected file: NAME|EPOCH|VERSION|RELEASE|ARCH|LICENSE|
 * SOURCERPM, as mkrpmdb writes them. */
#define EXPECTED_LINES_MAX 16
#define EXPECTED_FIELDS 7

/* The folder mkrpmdb wrote, set once in main before the tests fork. */
static char fixture_dir[256];

struct expected_package {
    char line[512];
    const char *field[EXPECTED_FIELDS];
};

/* Reads a whole file with a NUL byte after it, as the layer reader hands
 * files over. */
static unsigned char *
read_whole(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    unsigned char *data;
    long size;

    ck_assert_msg(file != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(file, 0, SEEK_END), 0);
    size = ftell(file);
    ck_assert_int_ge(size, 0);
    rewind(file);
    data = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, file), (size_t)size);
    data[size] = '\0';
    fclose(file);
    *len = (size_t)size;
    return data;
}

static unsigned char *
read_fixture(const char *name, size_t *len)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    return read_whole(path, len);
}

/* Runs the cataloger on one file and returns the findings. */
static json_t *
catalog(const char *path, const unsigned char *data, size_t len)
{
    struct inspector_options options = {.file_bytes_max = 64u << 20};
    struct catalog_ctx ctx = {
        .findings = json_object(),
        .options = &options,
        .layer_digest = "sha256:test",
    };

    ck_assert_int_eq(catalog_rpm.want(path, (int64_t)len), CATALOG_BUFFER);
    ck_assert_int_eq(catalog_rpm.file(&ctx, path, data, len), 0);
    return ctx.findings;
}

static size_t
count_of(const json_t *findings, const char *key)
{
    return json_array_size(json_object_get(findings, key));
}

static const char *
note_message(const json_t *findings, size_t index)
{
    const json_t *note =
        json_array_get(json_object_get(findings, "notes"), index);

    ck_assert_ptr_nonnull(note);
    ck_assert_str_eq(json_string_value(json_object_get(note, "cataloger")),
                     "rpm");
    return json_string_value(json_object_get(note, "message"));
}

static const json_t *
find_package(const json_t *findings, const char *name)
{
    const json_t *packages = json_object_get(findings, "packages");

    for (size_t i = 0; i < json_array_size(packages); i++) {
        const json_t *item = json_array_get(packages, i);

        if (strcmp(json_string_value(json_object_get(item, "name")), name) == 0)
            return item;
    }
    return NULL;
}

/* Reads an expected file into lines split at '|'. Returns the count. */
static size_t
read_expected(const char *name, struct expected_package *lines)
{
    char path[512];
    FILE *file;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    file = fopen(path, "r");
    ck_assert_msg(file != NULL, "cannot open %s", path);
    while (n < EXPECTED_LINES_MAX &&
           fgets(lines[n].line, sizeof(lines[n].line), file) != NULL) {
        char *cursor = lines[n].line;

        cursor[strcspn(cursor, "\n")] = '\0';
        for (size_t f = 0; f < EXPECTED_FIELDS; f++) {
            lines[n].field[f] = cursor;
            cursor = strchr(cursor, '|');
            if (f + 1 < EXPECTED_FIELDS) {
                ck_assert_ptr_nonnull(cursor);
                *cursor++ = '\0';
            }
        }
        n++;
    }
    fclose(file);
    return n;
}

static void
assert_string_field(const json_t *item, const char *key, const char *value)
{
    const json_t *field = json_object_get(item, key);

    if (strcmp(value, "(none)") == 0) {
        ck_assert_msg(field == NULL, "%s is set", key);
        return;
    }
    ck_assert_msg(json_is_string(field), "%s is missing", key);
    ck_assert_str_eq(json_string_value(field), value);
}

/* Checks one package item against the line rpm -qa printed for it. */
static void
assert_package(const json_t *item, const struct expected_package *line,
               const char *path)
{
    const json_t *epoch = json_object_get(item, "epoch");
    const json_t *licenses = json_object_get(item, "licenses");
    char source_rpm[512];

    ck_assert_str_eq(json_string_value(json_object_get(item, "type")), "rpm");
    assert_string_field(item, "version", line->field[2]);
    assert_string_field(item, "release", line->field[3]);
    assert_string_field(item, "arch", line->field[4]);
    assert_string_field(item, "path", path);
    ck_assert_ptr_null(json_object_get(item, "purl"));

    if (strcmp(line->field[1], "(none)") == 0) {
        ck_assert_ptr_null(epoch);
    } else {
        ck_assert(json_is_integer(epoch));
        ck_assert_int_eq(json_integer_value(epoch),
                         strtol(line->field[1], NULL, 10));
    }

    ck_assert_uint_eq(json_array_size(licenses), 1);
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 0)),
                     line->field[5]);

    /* The source RPM's file name is NAME-VERSION-RELEASE.src.rpm. */
    snprintf(source_rpm, sizeof(source_rpm), "%s-%s.src.rpm",
             json_string_value(json_object_get(item, "source_name")),
             json_string_value(json_object_get(item, "source_version")));
    ck_assert_str_eq(source_rpm, line->field[6]);
}

/* Checks that findings hold exactly the packages of an expected file,
 * apart from the gpg-pubkey pseudo-package, which it must contain. */
static void
assert_matches_rpm(const json_t *findings, const char *expected_name,
                   const char *path)
{
    struct expected_package lines[EXPECTED_LINES_MAX];
    size_t n = read_expected(expected_name, lines);
    size_t packages = 0;
    bool saw_pubkey = false;

    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    for (size_t i = 0; i < n; i++) {
        const json_t *item = find_package(findings, lines[i].field[0]);

        if (strcmp(lines[i].field[0], "gpg-pubkey") == 0) {
            saw_pubkey = true;
            ck_assert_ptr_null(item);
            continue;
        }
        ck_assert_msg(item != NULL, "%s is missing", lines[i].field[0]);
        assert_package(item, &lines[i], path);
        packages++;
    }
    ck_assert(saw_pubkey);
    ck_assert_uint_eq(packages, 3);
    ck_assert_uint_eq(count_of(findings, "packages"), packages);
}

START_TEST(sqlite_matches_rpm)
{
    size_t len;
    unsigned char *data = read_fixture("sqlite/rpmdb.sqlite", &len);
    json_t *findings = catalog(SQLITE_PATH, data, len);

    assert_matches_rpm(findings, "expected", SQLITE_PATH);
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(sqlite_sysimage_path)
{
    size_t len;
    unsigned char *data = read_fixture("sqlite/rpmdb.sqlite", &len);
    json_t *findings = catalog("usr/lib/sysimage/rpm/rpmdb.sqlite", data, len);

    assert_matches_rpm(findings, "expected",
                       "usr/lib/sysimage/rpm/rpmdb.sqlite");
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(bdb_matches_rpm)
{
    size_t len;
    unsigned char *data = read_fixture("bdb/Packages", &len);
    json_t *findings = catalog(BDB_PATH, data, len);

    assert_matches_rpm(findings, "expected-bdb", BDB_PATH);
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(bdb_big_endian_matches_rpm)
{
    size_t len;
    unsigned char *data = read_fixture("bdb-be/Packages", &len);
    json_t *findings = catalog("usr/lib/sysimage/rpm/Packages", data, len);

    assert_matches_rpm(findings, "expected-bdb-be",
                       "usr/lib/sysimage/rpm/Packages");
    json_decref(findings);
    free(data);
}
END_TEST

/* Headers small enough to sit on the hash pages themselves. */
START_TEST(bdb_inline_values_match_rpm)
{
    size_t len;
    unsigned char *data = read_fixture("bdb-64k/Packages", &len);
    json_t *findings = catalog(BDB_PATH, data, len);

    assert_matches_rpm(findings, "expected-bdb-64k", BDB_PATH);
    json_decref(findings);
    free(data);
}
END_TEST

/* The values the spec files in mkrpmdb state, for the fields whose form
 * the cataloger derives rather than copies. */
START_TEST(subpackage_source_and_epoch)
{
    size_t len;
    unsigned char *data = read_fixture("sqlite/rpmdb.sqlite", &len);
    json_t *findings = catalog(SQLITE_PATH, data, len);
    const json_t *libs = find_package(findings, "pgtest-beta-libs");
    const json_t *alpha = find_package(findings, "pgtest-alpha");

    ck_assert_ptr_nonnull(libs);
    ck_assert_str_eq(json_string_value(json_object_get(libs, "source_name")),
                     "pgtest-beta");
    ck_assert_str_eq(json_string_value(json_object_get(libs, "source_version")),
                     "0.9-1");
    ck_assert_ptr_null(json_object_get(libs, "epoch"));
    ck_assert_ptr_nonnull(alpha);
    ck_assert_int_eq(json_integer_value(json_object_get(alpha, "epoch")), 2);
    ck_assert_str_eq(
        json_string_value(json_object_get(alpha, "source_version")),
        "1.2.3-4.el9");
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(want_paths)
{
    ck_assert_int_eq(catalog_rpm.want("var/lib/rpm/rpmdb.sqlite", 4096),
                     CATALOG_BUFFER);
    ck_assert_int_eq(
        catalog_rpm.want("usr/lib/sysimage/rpm/rpmdb.sqlite", 4096),
        CATALOG_BUFFER);
    ck_assert_int_eq(catalog_rpm.want("var/lib/rpm/Packages", 4096),
                     CATALOG_BUFFER);
    ck_assert_int_eq(catalog_rpm.want("usr/lib/sysimage/rpm/Packages", 4096),
                     CATALOG_BUFFER);
    ck_assert_int_eq(catalog_rpm.want("var/lib/rpm/Name", 4096), CATALOG_SKIP);
    ck_assert_int_eq(catalog_rpm.want("var/lib/rpm/rpmdb.sqlite-wal", 4096),
                     CATALOG_SKIP);
    ck_assert_int_eq(catalog_rpm.want("home/x/var/lib/rpm/Packages", 4096),
                     CATALOG_SKIP);
}
END_TEST

/* ---- hostile input ---- */

START_TEST(sqlite_not_a_database)
{
    static const unsigned char text[] = "this is not an SQLite database\n";
    json_t *findings = catalog(SQLITE_PATH, text, sizeof(text) - 1);

    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    ck_assert_str_eq(note_message(findings, 0),
                     "not an SQLite database: the file header is missing "
                     "or truncated");
    json_decref(findings);
}
END_TEST

/* The SQLite file header followed by pages of noise. */
START_TEST(sqlite_garbage_after_header)
{
    size_t len;
    unsigned char *data = read_fixture("sqlite/rpmdb.sqlite", &len);
    json_t *findings;

    for (size_t i = 100; i < len; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    findings = catalog(SQLITE_PATH, data, len);
    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(sqlite_truncated)
{
    size_t len;
    unsigned char *data = read_fixture("sqlite/rpmdb.sqlite", &len);
    json_t *findings = catalog(SQLITE_PATH, data, len / 2);

    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    ck_assert_str_eq(note_message(findings, 0),
                     "the database is corrupt (PRAGMA quick_check)");
    json_decref(findings);
    free(data);
}
END_TEST

static void
put_be32(unsigned char *p, uint32_t value)
{
    p[0] = (unsigned char)(value >> 24);
    p[1] = (unsigned char)(value >> 16);
    p[2] = (unsigned char)(value >> 8);
    p[3] = (unsigned char)value;
}

/* Writes a header with one index entry: tag, type, offset, count, and a
 * data store of store_len bytes of 'x'. Returns its length. */
static size_t
make_header(unsigned char *blob, uint32_t tag, uint32_t type, uint32_t offset,
            uint32_t store_len)
{
    put_be32(blob, 1);
    put_be32(blob + 4, store_len);
    put_be32(blob + 8, tag);
    put_be32(blob + 12, type);
    put_be32(blob + 16, offset);
    put_be32(blob + 20, 1);
    memset(blob + 24, 'x', store_len);
    return 24 + store_len;
}

/* Builds an SQLite database with rpm's Packages table holding hostile
 * headers, then the first real header of the fixture, and returns its
 * bytes. */
static unsigned char *
make_hostile_sqlite(size_t *len)
{
    char path[512];
    char fixture[512];
    sqlite3 *db;
    sqlite3_stmt *insert;
    unsigned char blob[64];
    unsigned char huge[8];
    size_t blob_len;
    unsigned char *data;

    snprintf(path, sizeof(path), "%s/hostile.sqlite", fixture_dir);
    snprintf(fixture, sizeof(fixture), "%s/sqlite/rpmdb.sqlite", fixture_dir);
    remove(path);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, blob BLOB NOT NULL)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO Packages (blob) "
                                        "VALUES (?)",
                                        -1, &insert, NULL),
                     SQLITE_OK);

    /* Row 1: NAME (a string) at an offset past the 4-byte data store. */
    blob_len = make_header(blob, 1000, 6, 20, 4);
    sqlite3_bind_blob(insert, 1, blob, (int)blob_len, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);

    /* Row 2: 1,000,000 index entries claimed in an 8-byte blob. */
    put_be32(huge, 1000000);
    put_be32(huge + 4, 0);
    sqlite3_bind_blob(insert, 1, huge, sizeof(huge), SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);

    /* Row 3: NAME runs to the end of the data store with no NUL. */
    blob_len = make_header(blob, 1000, 6, 0, 8);
    sqlite3_bind_blob(insert, 1, blob, (int)blob_len, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);

    /* Row 4: EPOCH (an int32) whose 4 bytes end past the data store. */
    blob_len = make_header(blob, 1003, 4, 2, 4);
    sqlite3_bind_blob(insert, 1, blob, (int)blob_len, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);

    /* Row 5: the data store runs past the end of the blob. */
    blob_len = make_header(blob, 1000, 6, 0, 4);
    put_be32(blob + 4, 400);
    sqlite3_bind_blob(insert, 1, blob, (int)blob_len, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_finalize(insert);

    /* Row 6: a real header, which must still be read. */
    {
        char sql[1024];

        snprintf(sql, sizeof(sql),
                 "ATTACH '%s' AS real; INSERT INTO Packages (blob) SELECT "
                 "blob FROM real.Packages WHERE instr(blob, "
                 "CAST('gpg-pubkey' AS BLOB)) = 0 ORDER BY hnum LIMIT 1; "
                 "DETACH real",
                 fixture);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);

    data = read_whole(path, len);
    remove(path);
    return data;
}

START_TEST(sqlite_hostile_headers)
{
    size_t len;
    unsigned char *data = make_hostile_sqlite(&len);
    json_t *findings = catalog(SQLITE_PATH, data, len);

    ck_assert_uint_eq(count_of(findings, "notes"), 5);
    ck_assert_str_eq(note_message(findings, 0),
                     "row 1: index entry 0 (tag 1000) is of the wrong type "
                     "or points outside the data store");
    ck_assert_str_eq(note_message(findings, 1),
                     "row 2: the header claims 1000000 index entries and 0 "
                     "data bytes, outside rpm's limits of 1 to 65535 "
                     "entries and 268435455 bytes");
    ck_assert_str_eq(note_message(findings, 2),
                     "row 3: index entry 0 (tag 1000) is of the wrong type "
                     "or points outside the data store");
    ck_assert_str_eq(note_message(findings, 3),
                     "row 4: index entry 0 (tag 1003) is of the wrong type "
                     "or points outside the data store");
    ck_assert_str_eq(note_message(findings, 4),
                     "row 5: the header's index and data need 424 bytes, "
                     "but the header has 28");
    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    json_decref(findings);
    free(data);
}
END_TEST

/* Index entries and data store bytes of the header that repeats NAME. */
#define REPEATED_TAG_ENTRIES 65535u
#define REPEATED_TAG_STORE_BYTES (4u << 20)

/*
 * Builds an SQLite database whose only row is a header of 65535 NAME
 * entries that all point at one string of 4 MiB, and returns its bytes.
 * rpm writes each tag once, so only the first entry of a tag counts.
 * Searching the string for its NUL once per entry would read 256 GiB.
 */
static unsigned char *
make_repeated_tag_sqlite(size_t *len)
{
    size_t store = REPEATED_TAG_STORE_BYTES;
    size_t blob_len = 8 + (size_t)REPEATED_TAG_ENTRIES * 16 + store;
    unsigned char *blob = malloc(blob_len);
    unsigned char *entry = blob + 8;
    char path[512];
    sqlite3 *db;
    sqlite3_stmt *insert;
    unsigned char *data;

    ck_assert_ptr_nonnull(blob);
    put_be32(blob, REPEATED_TAG_ENTRIES);
    put_be32(blob + 4, (uint32_t)store);
    for (uint32_t i = 0; i < REPEATED_TAG_ENTRIES; i++, entry += 16) {
        put_be32(entry, 1000);
        put_be32(entry + 4, 6);
        put_be32(entry + 8, 0);
        put_be32(entry + 12, 1);
    }
    memset(entry, 'x', store - 1);
    entry[store - 1] = '\0';

    snprintf(path, sizeof(path), "%s/repeated.sqlite", fixture_dir);
    remove(path);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, blob BLOB NOT NULL)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO Packages (blob) "
                                        "VALUES (?)",
                                        -1, &insert, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(insert, 1, blob, (int)blob_len, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_finalize(insert);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    free(blob);

    data = read_whole(path, len);
    remove(path);
    return data;
}

/* Finishes within the test's timeout only when each header is read in
 * one pass. */
START_TEST(sqlite_repeated_tag_linear)
{
    size_t len;
    unsigned char *data = make_repeated_tag_sqlite(&len);
    json_t *findings = catalog(SQLITE_PATH, data, len);

    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    ck_assert_str_eq(note_message(findings, 0),
                     "row 1: the header has no NAME or no VERSION");
    json_decref(findings);
    free(data);
}
END_TEST

/* Berkeley DB page header fields, for corrupting the fixture. */
#define PAGE_SIZE_SMALL 512
#define PAGE_NEXT_PGNO 16
#define PAGE_TYPE 25
#define PAGE_TYPE_OVERFLOW 7

START_TEST(bdb_overflow_loop)
{
    size_t len;
    unsigned char *data = read_fixture("bdb/Packages", &len);
    struct expected_package lines[EXPECTED_LINES_MAX];
    size_t records = read_expected("expected-bdb", lines);
    json_t *findings;
    int looped = 0;

    /* Point every overflow page that has a successor back at itself. The
     * fixture is little-endian with 512-byte pages, and every header
     * spans more than one page. */
    for (size_t pgno = 1; (pgno + 1) * PAGE_SIZE_SMALL <= len; pgno++) {
        unsigned char *page = data + pgno * PAGE_SIZE_SMALL;
        unsigned char *next = page + PAGE_NEXT_PGNO;

        if (page[PAGE_TYPE] != PAGE_TYPE_OVERFLOW ||
            (next[0] | next[1] | next[2] | next[3]) == 0)
            continue;
        next[0] = (unsigned char)pgno;
        next[1] = (unsigned char)(pgno >> 8);
        next[2] = 0;
        next[3] = 0;
        looped++;
    }
    ck_assert_int_ge(looped, (int)records);

    findings = catalog(BDB_PATH, data, len);
    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), records);
    for (size_t i = 0; i < records; i++) {
        const char *message = note_message(findings, i);

        ck_assert_msg(strncmp(message, "page ", 5) == 0, "%s", message);
        ck_assert_msg(catalog_has_suffix(message,
                                         ": the overflow chain loops or "
                                         "shares a page"),
                      "%s", message);
    }
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(bdb_truncated)
{
    size_t len;
    unsigned char *data = read_fixture("bdb/Packages", &len);
    json_t *findings = catalog(BDB_PATH, data, 3 * PAGE_SIZE_SMALL + 100);
    char expected[128];

    snprintf(expected, sizeof(expected),
             "only 3 of the %zu pages the metadata states are read: the "
             "file is truncated or above the limit of 1048576 pages",
             len / PAGE_SIZE_SMALL);
    ck_assert_uint_ge(count_of(findings, "notes"), 1);
    ck_assert_str_eq(note_message(findings, 0), expected);
    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(bdb_shorter_than_metadata)
{
    size_t len;
    unsigned char *data = read_fixture("bdb/Packages", &len);
    json_t *findings = catalog(BDB_PATH, data, 100);

    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    ck_assert_str_eq(note_message(findings, 0),
                     "truncated: shorter than the Berkeley DB metadata page");
    json_decref(findings);
    free(data);
}
END_TEST

START_TEST(bdb_wrong_magic)
{
    size_t len;
    unsigned char *data = read_fixture("sqlite/rpmdb.sqlite", &len);
    json_t *findings = catalog(BDB_PATH, data, len);

    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    ck_assert_str_eq(note_message(findings, 0),
                     "not a Berkeley DB hash file: wrong magic number");
    json_decref(findings);
    free(data);
}
END_TEST

/* Builds the fixtures once, before Check forks the tests. */
static void
build_fixtures(void)
{
    const char *srcdir = getenv("PG_SRCDIR");
    char command[1024];

    snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/pg-test-rpm-XXXXXX");
    if (mkdtemp(fixture_dir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
    snprintf(command, sizeof(command),
             "'%s/tests/fixtures/mkrpmdb' '%s' >'%s/mkrpmdb.log' 2>&1",
             srcdir != NULL ? srcdir : ".", fixture_dir, fixture_dir);
    if (system(command) != 0) {
        fprintf(stderr,
                "mkrpmdb failed (needs rpm, db5.3-util, sqlite3, "
                "gpg); see %s/mkrpmdb.log\n",
                fixture_dir);
        exit(EXIT_FAILURE);
    }
}

static void
remove_fixtures(void)
{
    char command[512];

    snprintf(command, sizeof(command), "rm -rf '%s'", fixture_dir);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", fixture_dir);
}

int
main(void)
{
    Suite *suite = suite_create("rpm");
    TCase *databases = tcase_create("databases");
    TCase *hostile = tcase_create("hostile");
    SRunner *runner;
    int failed;

    build_fixtures();

    tcase_add_test(databases, sqlite_matches_rpm);
    tcase_add_test(databases, sqlite_sysimage_path);
    tcase_add_test(databases, bdb_matches_rpm);
    tcase_add_test(databases, bdb_big_endian_matches_rpm);
    tcase_add_test(databases, bdb_inline_values_match_rpm);
    tcase_add_test(databases, subpackage_source_and_epoch);
    tcase_add_test(databases, want_paths);
    suite_add_tcase(suite, databases);

    tcase_add_test(hostile, sqlite_not_a_database);
    tcase_add_test(hostile, sqlite_garbage_after_header);
    tcase_add_test(hostile, sqlite_truncated);
    tcase_add_test(hostile, sqlite_hostile_headers);
    tcase_add_test(hostile, sqlite_repeated_tag_linear);
    tcase_add_test(hostile, bdb_overflow_loop);
    tcase_add_test(hostile, bdb_truncated);
    tcase_add_test(hostile, bdb_shorter_than_metadata);
    tcase_add_test(hostile, bdb_wrong_magic);
    suite_add_tcase(suite, hostile);

    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    remove_fixtures();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
