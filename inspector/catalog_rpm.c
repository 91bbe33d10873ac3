/*
 * The rpm cataloger: lists the packages in rpm's database, which stores
 * one rpm header per installed package. Images ship it in one of two
 * formats:
 *
 *   rpmdb.sqlite  SQLite (RHEL 9, Fedora 33 and later), one header per
 *                 row of the Packages table, read from memory through
 *                 SQLite with a hardened connection
 *   Packages      a Berkeley DB hash file (RHEL 8, CentOS 7 and older),
 *                 parsed here, because libdb is not linked and is not
 *                 written to read hostile files
 *
 * Every count and offset read from either file is checked before use, so
 * a corrupt or hostile database costs at most one pass over its bytes. A
 * header or page that cannot be read becomes a note naming where it is,
 * and the other packages still count.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "inspector/catalog.h"

#define RPM_CATALOGER "rpm"

/* Packages read from one database; real systems have a few thousand. */
#define RPM_PACKAGES_MAX 100000

/*
 * Index entries and data store bytes of one header. These are rpm's own
 * limits (HEADER_TAGS_MAX and HEADER_DATA_MAX in rpm 4.18), so every
 * header that rpm itself accepts is read.
 */
#define RPM_HEADER_TAGS_MAX 0xffffu
#define RPM_HEADER_DATA_MAX 0x0fffffffu

/* Bytes of a header's intro (index count, data length) and index entry. */
#define RPM_HEADER_INTRO_BYTES 8
#define RPM_HEADER_ENTRY_BYTES 16

/* The largest header blob the limits above allow. */
#define RPM_HEADER_BYTES_MAX                                                   \
    (RPM_HEADER_INTRO_BYTES +                                                  \
     (uint64_t)RPM_HEADER_TAGS_MAX * RPM_HEADER_ENTRY_BYTES +                  \
     RPM_HEADER_DATA_MAX)

/* Header tags (rpmtag.h) and data types (rpm_tagtype_e). */
#define RPMTAG_NAME 1000
#define RPMTAG_VERSION 1001
#define RPMTAG_RELEASE 1002
#define RPMTAG_EPOCH 1003
#define RPMTAG_LICENSE 1014
#define RPMTAG_ARCH 1022
#define RPMTAG_SOURCERPM 1044

#define RPM_INT32_TYPE 4
#define RPM_STRING_TYPE 6
#define RPM_STRING_ARRAY_TYPE 8
#define RPM_I18NSTRING_TYPE 9

/* Bytes of a location such as "page 12, item 4", and of a message
 * naming what is wrong with a header. */
#define RPM_WHERE_MAX 64
#define RPM_PROBLEM_MAX 160

/* ---- rpm headers ---- */

/* The fields of one header that the package item needs. The strings
 * point into the header's data store and are NUL-terminated there. */
struct rpm_package {
    const char *name;
    const char *version;
    const char *release;
    const char *arch;
    const char *license;
    const char *source_rpm;
    bool has_epoch;
    uint32_t epoch;
};

static uint32_t
read_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/*
 * Reads a string entry: one of the string types, at least one element,
 * and a NUL byte before the end of the data store. Returns the first
 * element, or NULL when the entry does not hold one.
 */
static const char *
header_string(const unsigned char *store, uint32_t store_len, uint32_t type,
              uint32_t offset, uint32_t count)
{
    const unsigned char *nul;

    if (type != RPM_STRING_TYPE && type != RPM_STRING_ARRAY_TYPE &&
        type != RPM_I18NSTRING_TYPE)
        return NULL;
    if (count < 1 || offset >= store_len)
        return NULL;
    nul = memchr(store + offset, '\0', store_len - offset);
    return nul == NULL ? NULL : (const char *)(store + offset);
}

/*
 * Stores the value of one index entry in pkg when its tag is one the
 * package item needs. Returns true, or false when the entry does not
 * hold a value of the tag's type inside the data store.
 */
static bool
header_take_entry(struct rpm_package *pkg, const unsigned char *store,
                  uint32_t store_len, const unsigned char *entry)
{
    uint32_t tag = read_be32(entry);
    uint32_t type = read_be32(entry + 4);
    uint32_t offset = read_be32(entry + 8);
    uint32_t count = read_be32(entry + 12);
    const char **field = NULL;

    switch (tag) {
    case RPMTAG_NAME:
        field = &pkg->name;
        break;
    case RPMTAG_VERSION:
        field = &pkg->version;
        break;
    case RPMTAG_RELEASE:
        field = &pkg->release;
        break;
    case RPMTAG_ARCH:
        field = &pkg->arch;
        break;
    case RPMTAG_LICENSE:
        field = &pkg->license;
        break;
    case RPMTAG_SOURCERPM:
        field = &pkg->source_rpm;
        break;
    case RPMTAG_EPOCH:
        if (type != RPM_INT32_TYPE || count < 1 || store_len < 4 ||
            offset > store_len - 4)
            return false;
        pkg->has_epoch = true;
        pkg->epoch = read_be32(store + offset);
        return true;
    default:
        return true;
    }

    /* rpm writes each tag once. A header that repeats one keeps the first,
     * so that the search for the string's NUL runs once per tag, not once
     * per entry over the same bytes. */
    if (*field != NULL)
        return true;
    *field = header_string(store, store_len, type, offset, count);
    return *field != NULL;
}

/*
 * Parses a header blob as rpm stores it in its database: the index entry
 * count and the data store length (32-bit, network byte order), the
 * index entries of 16 bytes (tag, type, offset, count), then the data
 * store. Returns true with pkg filled in, or false with problem set to a
 * message naming what is wrong.
 */
static bool
header_parse(const unsigned char *blob, size_t len, struct rpm_package *pkg,
             char problem[RPM_PROBLEM_MAX])
{
    uint32_t index_count;
    uint32_t store_len;
    uint64_t needed;
    const unsigned char *store;

    memset(pkg, 0, sizeof(*pkg));
    if (len < RPM_HEADER_INTRO_BYTES) {
        snprintf(problem, RPM_PROBLEM_MAX,
                 "the header has %zu bytes, fewer than its 8-byte intro", len);
        return false;
    }
    index_count = read_be32(blob);
    store_len = read_be32(blob + 4);
    if (index_count < 1 || index_count > RPM_HEADER_TAGS_MAX ||
        store_len > RPM_HEADER_DATA_MAX) {
        snprintf(problem, RPM_PROBLEM_MAX,
                 "the header claims %" PRIu32 " index entries and %" PRIu32
                 " data bytes, outside rpm's limits of 1 to %u entries and "
                 "%u bytes",
                 index_count, store_len, RPM_HEADER_TAGS_MAX,
                 RPM_HEADER_DATA_MAX);
        return false;
    }
    needed = RPM_HEADER_INTRO_BYTES +
             (uint64_t)index_count * RPM_HEADER_ENTRY_BYTES + store_len;
    if (needed > len) {
        snprintf(problem, RPM_PROBLEM_MAX,
                 "the header's index and data need %" PRIu64
                 " bytes, but the header has %zu",
                 needed, len);
        return false;
    }

    store = blob + RPM_HEADER_INTRO_BYTES +
            (size_t)index_count * RPM_HEADER_ENTRY_BYTES;
    for (uint32_t i = 0; i < index_count; i++) {
        const unsigned char *entry =
            blob + RPM_HEADER_INTRO_BYTES + (size_t)i * RPM_HEADER_ENTRY_BYTES;

        if (!header_take_entry(pkg, store, store_len, entry)) {
            snprintf(problem, RPM_PROBLEM_MAX,
                     "index entry %" PRIu32 " (tag %" PRIu32
                     ") is of the wrong type or points outside the data "
                     "store",
                     i, read_be32(entry));
            return false;
        }
    }

    if (pkg->name == NULL || pkg->version == NULL) {
        snprintf(problem, RPM_PROBLEM_MAX,
                 "the header has no NAME or no VERSION");
        return false;
    }
    return true;
}

/*
 * Splits a source RPM file name, "bash-5.1.8-6.el9.src.rpm", into the
 * source package's name ("bash") and its version with the release
 * ("5.1.8-6.el9"). Returns false when the name has another form.
 */
static bool
split_source_rpm(const char *source_rpm, const char **name, size_t *name_len,
                 const char **version, size_t *version_len)
{
    size_t len = strlen(source_rpm);
    size_t release_dash = 0;
    size_t version_dash = 0;

    if (catalog_has_suffix(source_rpm, ".src.rpm"))
        len -= strlen(".src.rpm");
    else if (catalog_has_suffix(source_rpm, ".nosrc.rpm"))
        len -= strlen(".nosrc.rpm");
    else
        return false;

    for (size_t i = 0; i < len; i++) {
        if (source_rpm[i] == '-') {
            version_dash = release_dash;
            release_dash = i;
        }
    }
    if (version_dash == 0 || release_dash == version_dash + 1 ||
        release_dash + 1 == len)
        return false;

    *name = source_rpm;
    *name_len = version_dash;
    *version = source_rpm + version_dash + 1;
    *version_len = len - version_dash - 1;
    return true;
}

/* Sets item[key] to the text when it is not NULL. Returns 0 or -1. */
static int
set_text(json_t *item, const char *key, const char *text, size_t len)
{
    if (text == NULL)
        return 0;
    return json_object_set_new(item, key, inspector_json_text(text, len));
}

static int
set_string(json_t *item, const char *key, const char *text)
{
    return set_text(item, key, text, text == NULL ? 0 : strlen(text));
}

/*
 * Builds the package item for pkg, found in the database at path.
 * Returns a new object, or NULL when memory is short.
 */
static json_t *
package_item(const struct rpm_package *pkg, const char *path)
{
    json_t *item = json_object();
    const char *source_name;
    const char *source_version;
    size_t source_name_len;
    size_t source_version_len;
    json_t *licenses = NULL;

    if (item == NULL || json_object_set_new(item, "type", json_string("rpm")) ||
        set_string(item, "name", pkg->name) ||
        set_string(item, "version", pkg->version) ||
        set_string(item, "release", pkg->release))
        goto fail;
    if (pkg->has_epoch &&
        json_object_set_new(item, "epoch", json_integer(pkg->epoch)) < 0)
        goto fail;
    if (set_string(item, "arch", pkg->arch) < 0)
        goto fail;
    if (pkg->license != NULL) {
        licenses = json_array();
        if (licenses == NULL ||
            json_array_append_new(
                licenses,
                inspector_json_text(pkg->license, strlen(pkg->license))) < 0 ||
            json_object_set_new(item, "licenses", licenses) < 0)
            goto fail;
    }
    if (pkg->source_rpm != NULL &&
        split_source_rpm(pkg->source_rpm, &source_name, &source_name_len,
                         &source_version, &source_version_len) &&
        (set_text(item, "source_name", source_name, source_name_len) < 0 ||
         set_text(item, "source_version", source_version, source_version_len) <
             0))
        goto fail;
    if (set_string(item, "path", path) < 0)
        goto fail;
    return item;

fail:
    json_decref(item);
    return NULL;
}

/*
 * Reads one header blob and adds its package, or a note that names where
 * the blob is ("row 3", "page 5, item 2"). Returns 0, or -1 when memory
 * is short.
 */
static int
add_header(struct catalog_ctx *ctx, const char *path, const char *where,
           const unsigned char *blob, size_t len)
{
    struct rpm_package pkg;
    char problem[RPM_PROBLEM_MAX];

    if (!header_parse(blob, len, &pkg, problem))
        return catalog_note(ctx, RPM_CATALOGER, path, "%s: %s", where, problem);

    /* rpm stores each imported signing key as a pseudo-package named
     * gpg-pubkey. It is a key, not installed software, so it is left
     * out. */
    if (strcmp(pkg.name, "gpg-pubkey") == 0)
        return 0;
    return catalog_add(ctx, "packages", package_item(&pkg, path));
}

/* ---- rpmdb.sqlite ---- */

/* The 16 bytes that start every SQLite database file. */
#define SQLITE_FILE_MAGIC "SQLite format 3"
#define SQLITE_FILE_HEADER_BYTES 100

/* Offsets of the file format write and read versions in the header:
 * 1 for a rollback journal, 2 for write-ahead logging (WAL). */
#define SQLITE_WRITE_VERSION_OFFSET 18
#define SQLITE_READ_VERSION_OFFSET 19

/*
 * Zero bytes after the copy of the file: SQLite's deserialize
 * documentation warns that a malicious database can make it read a few
 * bytes past the end of the content.
 */
#define SQLITE_DESERIALIZE_PAD_BYTES 512

/* Bytes of one SQL statement the connection accepts; ours are short. */
#define SQLITE_SQL_LENGTH_MAX 1024

/*
 * Opens a copy of the database bytes as a read-only in-memory database,
 * hardened as SQLite's "Defense Against The Dark Arts" page advises for
 * untrusted database files. Returns the connection, or NULL with
 * *message set to a static text, or to NULL when memory is short.
 *
 * NOTE: SQLite's heap limits (sqlite3_hard_heap_limit64) apply to the
 * whole process, so none is set. The memory one connection uses is the
 * copy (at most inspector.file_bytes_max) plus the page cache, which
 * SQLite caps at about 2 MB by default.
 */
static sqlite3 *
sqlite_open_copy(const unsigned char *data, size_t len, const char **message)
{
    sqlite3 *db = NULL;
    unsigned char *copy;
    int rc;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_MEMORY |
                SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;

    *message = "SQLite could not open the database";
    rc = sqlite3_open_v2(":memory:", &db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM)
            *message = NULL;
        goto fail;
    }

    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, (int)RPM_HEADER_BYTES_MAX);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, SQLITE_SQL_LENGTH_MAX);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);

    /*
     * sqlite3_deserialize wants memory from sqlite3_malloc64 when SQLite
     * is to free it, and the copy is also where the journal mode is
     * changed: rpm leaves rpmdb.sqlite in WAL mode, which SQLite's
     * in-memory file cannot open, and the layer has no -wal file to
     * apply anyway.
     */
    copy = sqlite3_malloc64(len + SQLITE_DESERIALIZE_PAD_BYTES);
    if (copy == NULL) {
        *message = NULL;
        goto fail;
    }
    memcpy(copy, data, len);
    memset(copy + len, 0, SQLITE_DESERIALIZE_PAD_BYTES);
    if (copy[SQLITE_WRITE_VERSION_OFFSET] == 2 &&
        copy[SQLITE_READ_VERSION_OFFSET] == 2) {
        copy[SQLITE_WRITE_VERSION_OFFSET] = 1;
        copy[SQLITE_READ_VERSION_OFFSET] = 1;
    }

    /* SQLite frees copy on failure as well, because of FREEONCLOSE. */
    if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len,
                            (sqlite3_int64)(len + SQLITE_DESERIALIZE_PAD_BYTES),
                            SQLITE_DESERIALIZE_FREEONCLOSE |
                                SQLITE_DESERIALIZE_READONLY) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(db,
                     "PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0; "
                     "PRAGMA trusted_schema = OFF;",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return db;

fail:
    sqlite3_close(db);
    return NULL;
}

/*
 * Runs PRAGMA quick_check and checks that Packages is an ordinary table,
 * not a view or a virtual table whose module a hostile schema could
 * choose. Returns NULL, or a message naming what is wrong.
 */
static const char *
sqlite_check(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    const char *problem = "the database is corrupt (PRAGMA quick_check)";

    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &stmt, NULL) !=
            SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW ||
        sqlite3_column_type(stmt, 0) != SQLITE_TEXT ||
        strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") != 0)
        goto out;
    sqlite3_finalize(stmt);

    problem = "the database has no Packages table";
    if (sqlite3_prepare_v2(db,
                           "SELECT rootpage FROM sqlite_schema WHERE "
                           "type = 'table' AND name = 'Packages'",
                           -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_int64(stmt, 0) <= 0)
        goto out;
    problem = NULL;

out:
    sqlite3_finalize(stmt);
    return problem;
}

/*
 * Reads every row of "SELECT blob FROM Packages" as a header. Returns 0,
 * or -1 when memory is short.
 */
static int
sqlite_read_packages(struct catalog_ctx *ctx, const char *path, sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    char where[RPM_WHERE_MAX];
    unsigned long row = 0;
    int rc;
    int result = 0;

    if (sqlite3_prepare_v2(db, "SELECT blob FROM Packages", -1, &stmt, NULL) !=
        SQLITE_OK)
        return catalog_note(ctx, RPM_CATALOGER, path,
                            "the Packages table has no blob column");

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *blob;
        int len;

        row++;
        if (row > RPM_PACKAGES_MAX) {
            result = catalog_note(ctx, RPM_CATALOGER, path,
                                  "more than %d packages; the rest are "
                                  "not read",
                                  RPM_PACKAGES_MAX);
            goto out;
        }
        snprintf(where, sizeof(where), "row %lu", row);
        if (sqlite3_column_type(stmt, 0) != SQLITE_BLOB) {
            result = catalog_note(ctx, RPM_CATALOGER, path,
                                  "%s: the blob column is not a blob", where);
        } else {
            blob = sqlite3_column_blob(stmt, 0);
            len = sqlite3_column_bytes(stmt, 0);
            result = add_header(ctx, path, where, blob, (size_t)len);
        }
        if (result < 0)
            goto out;
    }
    if (rc != SQLITE_DONE)
        result = catalog_note(ctx, RPM_CATALOGER, path,
                              "reading the Packages table stopped after "
                              "row %lu: %s",
                              row, sqlite3_errstr(rc));

out:
    sqlite3_finalize(stmt);
    return result;
}

/* Reads rpmdb.sqlite from memory. Returns 0, or -1 when memory is short. */
static int
rpm_sqlite_file(struct catalog_ctx *ctx, const char *path,
                const unsigned char *data, size_t len)
{
    sqlite3 *db;
    const char *message;
    int result;

    if (len < SQLITE_FILE_HEADER_BYTES ||
        memcmp(data, SQLITE_FILE_MAGIC, sizeof(SQLITE_FILE_MAGIC)) != 0)
        return catalog_note(ctx, RPM_CATALOGER, path,
                            "not an SQLite database: the file header is "
                            "missing or truncated");

    db = sqlite_open_copy(data, len, &message);
    if (db == NULL)
        return message == NULL
                   ? -1
                   : catalog_note(ctx, RPM_CATALOGER, path, "%s", message);

    message = sqlite_check(db);
    if (message != NULL)
        result = catalog_note(ctx, RPM_CATALOGER, path, "%s", message);
    else
        result = sqlite_read_packages(ctx, path, db);
    sqlite3_close(db);
    return result;
}

/* ---- Berkeley DB Packages ---- */

/*
 * The Berkeley DB on-disk format, as db_page.h of Berkeley DB 4.8 to 5.3
 * lays it out. Page 0 is the hash metadata page. Every page starts with a
 * 26-byte header: LSN (8), page number (4), previous and next page
 * numbers (4 each), entry count (2), high free offset (2), level (1) and
 * page type (1). Integers are in the byte order of the machine that
 * created the file, which the magic number reveals.
 */
#define BDB_HASH_MAGIC 0x061561u
#define BDB_META_BYTES 512 /* the metadata fits the smallest page */
#define BDB_PAGE_SIZE_MIN 512
#define BDB_PAGE_SIZE_MAX 65536

#define BDB_META_MAGIC 12
#define BDB_META_PAGE_SIZE 20
#define BDB_META_ENCRYPT_ALG 24
#define BDB_META_FLAGS 26
#define BDB_META_LAST_PGNO 32

#define BDB_META_FLAG_CHKSUM 0x01

#define BDB_PAGE_NEXT_PGNO 16
#define BDB_PAGE_ENTRIES 20
#define BDB_PAGE_HF_OFFSET 22
#define BDB_PAGE_TYPE 25

/* Bytes before a page's item index or overflow data: the page header,
 * then 2 bytes of padding and a 4-byte checksum when the file has page
 * checksums (db_load -c chksum=1; rpm's own files have none). */
#define BDB_PAGE_HEADER_BYTES 26
#define BDB_PAGE_CHKSUM_BYTES 6

#define BDB_P_HASH_UNSORTED 2 /* hash pages written before 4.6 */
#define BDB_P_OVERFLOW 7
#define BDB_P_HASHMETA 8
#define BDB_P_HASH 13

/* Hash item types, the first byte of each item. */
#define BDB_H_KEYDATA 1
#define BDB_H_OFFPAGE 3

/* An H_OFFPAGE item: type (1), unused (3), first page (4), length (4). */
#define BDB_OFFPAGE_BYTES 12

/* rpm's keys are 4-byte package numbers. */
#define BDB_RPM_KEY_BYTES 4

/* Pages of one file read, 512 MiB at the smallest page size. */
#define BDB_PAGES_MAX (1u << 20)

/* Overflow pages in one chain: 256 MiB at 4096-byte pages. */
#define BDB_CHAIN_PAGES_MAX 65536u

struct bdb_file {
    const unsigned char *data;
    bool big_endian;
    uint32_t page_size;
    uint64_t pages_stated; /* last page number in the metadata, plus 1 */
    uint32_t pages;        /* pages read, metadata page included */
    size_t overhead;       /* bytes before a page's item index or data */
    /* One bit per page, set when an overflow chain has read the page,
     * so that a chain that loops or two items that share pages stop. */
    unsigned char *visited;
};

static uint32_t
bdb_u32(const struct bdb_file *file, const unsigned char *p)
{
    if (file->big_endian)
        return read_be32(p);
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 |
           (uint32_t)p[0];
}

static uint16_t
bdb_u16(const struct bdb_file *file, const unsigned char *p)
{
    if (file->big_endian)
        return (uint16_t)(p[0] << 8 | p[1]);
    return (uint16_t)(p[1] << 8 | p[0]);
}

static const unsigned char *
bdb_page(const struct bdb_file *file, uint32_t pgno)
{
    return file->data + (size_t)pgno * file->page_size;
}

/*
 * Reads the metadata page into file. Returns NULL, or a message naming
 * what is wrong. file->pages is less than file->pages_stated when the
 * file ends early or states more than BDB_PAGES_MAX pages, and the pages
 * up to there are still read.
 */
static const char *
bdb_open(struct bdb_file *file, const unsigned char *data, size_t len)
{
    uint64_t pages;

    file->data = data;
    if (len < BDB_META_BYTES)
        return "truncated: shorter than the Berkeley DB metadata page";
    file->big_endian = false;
    if (bdb_u32(file, data + BDB_META_MAGIC) != BDB_HASH_MAGIC) {
        file->big_endian = true;
        if (bdb_u32(file, data + BDB_META_MAGIC) != BDB_HASH_MAGIC)
            return "not a Berkeley DB hash file: wrong magic number";
    }
    if (data[BDB_PAGE_TYPE] != BDB_P_HASHMETA)
        return "the Berkeley DB metadata page has the wrong page type";
    if (data[BDB_META_ENCRYPT_ALG] != 0)
        return "the Berkeley DB file is encrypted";

    file->page_size = bdb_u32(file, data + BDB_META_PAGE_SIZE);
    if (file->page_size < BDB_PAGE_SIZE_MIN ||
        file->page_size > BDB_PAGE_SIZE_MAX ||
        (file->page_size & (file->page_size - 1)) != 0)
        return "the Berkeley DB page size is not a power of two from 512 "
               "to 65536";
    file->overhead = BDB_PAGE_HEADER_BYTES;
    if (data[BDB_META_FLAGS] & BDB_META_FLAG_CHKSUM)
        file->overhead += BDB_PAGE_CHKSUM_BYTES;

    file->pages_stated = (uint64_t)bdb_u32(file, data + BDB_META_LAST_PGNO) + 1;
    pages = len / file->page_size;
    if (pages > file->pages_stated)
        pages = file->pages_stated;
    if (pages > BDB_PAGES_MAX)
        pages = BDB_PAGES_MAX;
    file->pages = (uint32_t)pages;
    return NULL;
}

/*
 * Reads the overflow chain that starts at page pgno and contains len bytes
 * into *out, which the caller frees. Returns 0, -1 when memory is short,
 * or 1 with *problem set when the chain is broken.
 */
static int
bdb_read_chain(struct bdb_file *file, uint32_t pgno, uint32_t len,
               unsigned char **out, const char **problem)
{
    unsigned char *buf;
    size_t done = 0;
    size_t room = file->page_size - file->overhead;

    *out = NULL;
    if (len == 0 || len > RPM_HEADER_BYTES_MAX ||
        len > (uint64_t)file->pages * room) {
        *problem = "the overflow item's length is 0 or larger than the file";
        return 1;
    }
    buf = malloc(len);
    if (buf == NULL)
        return -1;

    for (uint32_t n = 0; pgno != 0; n++) {
        const unsigned char *page;
        uint16_t page_len;

        *problem = "the overflow chain is longer than 65536 pages";
        if (n == BDB_CHAIN_PAGES_MAX)
            goto fail;
        *problem = "the overflow chain points past the file's last page";
        if (pgno >= file->pages)
            goto fail;
        *problem = "the overflow chain loops or shares a page";
        if (file->visited[pgno / 8] & (1u << (pgno % 8)))
            goto fail;
        file->visited[pgno / 8] |= (unsigned char)(1u << (pgno % 8));

        page = bdb_page(file, pgno);
        page_len = bdb_u16(file, page + BDB_PAGE_HF_OFFSET);
        *problem = "the overflow chain reaches a page of another type";
        if (page[BDB_PAGE_TYPE] != BDB_P_OVERFLOW)
            goto fail;
        *problem = "an overflow page has more bytes than the item";
        if (page_len > room || page_len > len - done)
            goto fail;
        memcpy(buf + done, page + file->overhead, page_len);
        done += page_len;
        pgno = bdb_u32(file, page + BDB_PAGE_NEXT_PGNO);
    }
    *problem = "the overflow chain ends before the item's length";
    if (done != len)
        goto fail;
    *out = buf;
    return 0;

fail:
    free(buf);
    return 1;
}

/*
 * Finds the item at index on a hash page: its offset and length. Items are
 * stored from the end of the page downwards in index order, so an item
 * ends where the one before it starts. Returns false when the offsets
 * do not fit that layout.
 */
static bool
bdb_item(const struct bdb_file *file, const unsigned char *page,
         uint16_t entries, uint16_t index, const unsigned char **item,
         size_t *len)
{
    size_t first_free = file->overhead + (size_t)entries * 2;
    size_t start = bdb_u16(file, page + file->overhead + (size_t)index * 2);
    size_t end = file->page_size;

    if (index > 0)
        end = bdb_u16(file, page + file->overhead + (size_t)(index - 1) * 2);
    if (start < first_free || start >= end || end > file->page_size)
        return false;
    *item = page + start;
    *len = end - start;
    return true;
}

/*
 * Reads the key and data items at index and index + 1 of a hash page and
 * adds the header that the data item contains. Returns 0, or -1 when memory is
 * short.
 */
static int
bdb_read_pair(struct catalog_ctx *ctx, const char *path, struct bdb_file *file,
              const unsigned char *page, uint16_t entries, uint16_t index,
              const char *where)
{
    const unsigned char *key;
    const unsigned char *value;
    size_t key_len;
    size_t value_len;
    unsigned char *blob;
    const char *problem;
    int rc;

    if (!bdb_item(file, page, entries, index, &key, &key_len) ||
        !bdb_item(file, page, entries, index + 1, &value, &value_len))
        return catalog_note(ctx, RPM_CATALOGER, path,
                            "%s: the item offsets are out of order or "
                            "outside the page",
                            where);

    /* Key 0 stores rpm's last package number, not a header. */
    if (key[0] != BDB_H_KEYDATA || key_len != 1 + BDB_RPM_KEY_BYTES)
        return catalog_note(ctx, RPM_CATALOGER, path,
                            "%s: the key is not a 4-byte package number",
                            where);
    if (bdb_u32(file, key + 1) == 0)
        return 0;

    if (value[0] == BDB_H_KEYDATA)
        return add_header(ctx, path, where, value + 1, value_len - 1);
    if (value[0] != BDB_H_OFFPAGE || value_len < BDB_OFFPAGE_BYTES)
        return catalog_note(ctx, RPM_CATALOGER, path,
                            "%s: the value is of item type %u, not a header",
                            where, value[0]);

    rc = bdb_read_chain(file, bdb_u32(file, value + 4),
                        bdb_u32(file, value + 8), &blob, &problem);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return catalog_note(ctx, RPM_CATALOGER, path, "%s: %s", where, problem);
    rc = add_header(ctx, path, where, blob, bdb_u32(file, value + 8));
    free(blob);
    return rc;
}

/* Reads every key and data pair of one hash page. Returns 0 or -1. */
static int
bdb_read_hash_page(struct catalog_ctx *ctx, const char *path,
                   struct bdb_file *file, uint32_t pgno, unsigned long *headers)
{
    const unsigned char *page = bdb_page(file, pgno);
    uint16_t entries = bdb_u16(file, page + BDB_PAGE_ENTRIES);
    char where[RPM_WHERE_MAX];

    if (file->overhead + (size_t)entries * 2 > file->page_size ||
        entries % 2 != 0)
        return catalog_note(ctx, RPM_CATALOGER, path,
                            "page %u: the item count %u does not fit the "
                            "page",
                            pgno, entries);

    for (uint16_t i = 0; i + 1 < entries; i += 2) {
        (*headers)++;
        if (*headers > RPM_PACKAGES_MAX)
            return 0;
        snprintf(where, sizeof(where), "page %u, item %u", pgno, i / 2);
        if (bdb_read_pair(ctx, path, file, page, entries, i, where) < 0)
            return -1;
    }
    return 0;
}

/* Reads a Berkeley DB Packages file. Returns 0, or -1 when memory is
 * short. */
static int
rpm_bdb_file(struct catalog_ctx *ctx, const char *path,
             const unsigned char *data, size_t len)
{
    struct bdb_file file = {0};
    unsigned long headers = 0;
    const char *problem = bdb_open(&file, data, len);
    int result = 0;

    if (problem != NULL)
        return catalog_note(ctx, RPM_CATALOGER, path, "%s", problem);
    if (file.pages < file.pages_stated &&
        catalog_note(ctx, RPM_CATALOGER, path,
                     "only %" PRIu32 " of the %" PRIu64
                     " pages the metadata states are read: the file is "
                     "truncated or above the limit of %u pages",
                     file.pages, file.pages_stated, BDB_PAGES_MAX) < 0)
        return -1;

    file.visited = calloc((size_t)file.pages / 8 + 1, 1);
    if (file.visited == NULL)
        return -1;

    for (uint32_t pgno = 1;
         pgno < file.pages && result == 0 && headers <= RPM_PACKAGES_MAX;
         pgno++) {
        uint8_t type = bdb_page(&file, pgno)[BDB_PAGE_TYPE];

        if (type == BDB_P_HASH || type == BDB_P_HASH_UNSORTED)
            result = bdb_read_hash_page(ctx, path, &file, pgno, &headers);
    }
    if (result == 0 && headers > RPM_PACKAGES_MAX)
        result = catalog_note(ctx, RPM_CATALOGER, path,
                              "more than %d packages; the rest are not read",
                              RPM_PACKAGES_MAX);
    free(file.visited);
    return result;
}

/* ---- the cataloger ---- */

static const char *const rpm_sqlite_paths[] = {
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    NULL,
};

static const char *const rpm_bdb_paths[] = {
    "var/lib/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages",
    NULL,
};

static bool
path_in(const char *path, const char *const *paths)
{
    for (size_t i = 0; paths[i] != NULL; i++) {
        if (strcmp(path, paths[i]) == 0)
            return true;
    }
    return false;
}

static enum catalog_want
rpm_want(const char *path, int64_t size)
{
    (void)size;
    if (path_in(path, rpm_sqlite_paths) || path_in(path, rpm_bdb_paths))
        return CATALOG_BUFFER;
    return CATALOG_SKIP;
}

static int
rpm_file(struct catalog_ctx *ctx, const char *path, const unsigned char *data,
         size_t len)
{
    if (path_in(path, rpm_sqlite_paths))
        return rpm_sqlite_file(ctx, path, data, len);
    return rpm_bdb_file(ctx, path, data, len);
}

const struct cataloger catalog_rpm = {
    .name = RPM_CATALOGER,
    .want = rpm_want,
    .file = rpm_file,
};
