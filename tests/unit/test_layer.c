/*
 * Unit tests of the layer reader: reading a layer from a source (short
 * reads, a source that fails part way), the layer limits on that path,
 * eStargz and zstd layers, the findings object and the decisions that
 * route a file's content to the catalogers, the secret scanner and the
 * Go reader. Layers are written in memory here with libarchive; layer.c
 * is included to reach its static functions.
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
#include "inspector/layer.c"

#define GZIP_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define ZSTD_LAYER "application/vnd.oci.image.layer.v1.tar+zstd"
#define TEST_DIGEST "sha256:" \
    "1111111111111111111111111111111111111111111111111111111111111111"
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

/* ---- layers written with libarchive ---- */

enum filter {
    FILTER_NONE,
    FILTER_GZIP,
    FILTER_ZSTD,
};

struct entry_spec {
    const char *path;
    unsigned filetype; /* AE_IFREG, AE_IFDIR, AE_IFLNK */
    const char *content; /* regular files; NULL with size: zero bytes */
    int64_t size;
    const char *link;
};

/* Opens a writer into out. Writes are unbuffered, so out->len marks the
 * end of each entry, and the output is not padded to a block. */
static struct archive *
writer_open(struct bytes *out, enum filter filter, bool raw)
{
    struct archive *a = archive_write_new();

    ck_assert_ptr_nonnull(a);
    if (raw)
        ck_assert_int_eq(archive_write_set_format_raw(a), ARCHIVE_OK);
    else
        ck_assert_int_eq(archive_write_set_format_pax_restricted(a),
                         ARCHIVE_OK);
    if (filter == FILTER_GZIP)
        ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    else if (filter == FILTER_ZSTD)
        ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_set_bytes_per_block(a, 0), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open(a, out, NULL, bytes_write, NULL),
                     ARCHIVE_OK);
    return a;
}

static void
writer_add(struct archive *a, const struct entry_spec *spec)
{
    static const unsigned char zeros[64 * 1024];
    struct archive_entry *entry = archive_entry_new();
    int64_t size = 0;

    if (spec->filetype == AE_IFREG)
        size = spec->content != NULL ? (int64_t)strlen(spec->content)
                                     : spec->size;
    archive_entry_set_pathname(entry, spec->path);
    archive_entry_set_filetype(entry, spec->filetype);
    archive_entry_set_perm(entry, spec->filetype == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(entry, size);
    if (spec->filetype == AE_IFLNK)
        archive_entry_set_symlink(entry, spec->link);
    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);

    if (spec->content != NULL) {
        ck_assert_int_eq(archive_write_data(a, spec->content, (size_t)size),
                         size);
    } else {
        while (size > 0) {
            size_t n = size < (int64_t)sizeof(zeros) ? (size_t)size
                                                     : sizeof(zeros);

            ck_assert_int_eq(archive_write_data(a, zeros, n), (la_ssize_t)n);
            size -= (int64_t)n;
        }
    }
    ck_assert_int_eq(archive_write_finish_entry(a), ARCHIVE_OK);
    archive_entry_free(entry);
}

static void
writer_close(struct archive *a)
{
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_free(a), ARCHIVE_OK);
}

static struct bytes
layer_build(enum filter filter, const struct entry_spec *specs, size_t n)
{
    struct bytes out = {0};
    struct archive *a = writer_open(&out, filter, false);

    for (size_t i = 0; i < n; i++)
        writer_add(a, &specs[i]);
    writer_close(a);
    return out;
}

/* Returns len bytes of data compressed as one gzip member. */
static struct bytes
gzip_member(const unsigned char *data, size_t len)
{
    struct bytes out = {0};
    struct archive *a = writer_open(&out, FILTER_GZIP, true);
    struct archive_entry *entry = archive_entry_new();

    archive_entry_set_pathname(entry, "member");
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_size(entry, (int64_t)len);
    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(entry);
    writer_close(a);
    return out;
}

/* ---- sources ---- */

/* Bytes in memory, returned at most chunk bytes per read; once fail_at
 * bytes were returned, reads fail with a 502 error. */
struct memory_source {
    const struct bytes *layer;
    size_t pos;
    size_t chunk;
    size_t fail_at; /* SIZE_MAX: never */
    unsigned reads;
};

static ssize_t
memory_source_read(void *arg, void *buf, size_t len, struct pg_error **err)
{
    struct memory_source *src = arg;
    size_t n = src->layer->len - src->pos;

    src->reads++;
    if (src->pos >= src->fail_at) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream closed the connection");
        return -1;
    }
    if (n > src->chunk)
        n = src->chunk;
    if (n > len)
        n = len;
    if (src->pos + n > src->fail_at)
        n = src->fail_at - src->pos;
    memcpy(buf, src->layer->data + src->pos, n);
    src->pos += n;
    return (ssize_t)n;
}

/* Reads layer from memory chunk bytes at a time. */
static json_t *
scan_memory(const struct bytes *layer, size_t chunk, const char *media_type,
            const struct inspector_options *options, struct pg_error **err)
{
    struct memory_source src = {.layer = layer, .chunk = chunk,
                                .fail_at = SIZE_MAX};
    struct inspector_source source = {.read = memory_source_read,
                                      .arg = &src};

    return inspector_scan_layer(&source, TEST_DIGEST, media_type, -1, options,
                                err);
}

static const char *
path_of(const json_t *layer, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(layer, "files"), i),
                        "path"));
}

static json_int_t
int_at(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

/* ---- the source API ---- */

static const struct entry_spec sample[] = {
    {"etc/", AE_IFDIR, NULL, 0, NULL},
    {"etc/hosts", AE_IFREG, "127.0.0.1 localhost\n", 0, NULL},
    {"etc/localtime", AE_IFLNK, NULL, 0, "/usr/share/zoneinfo/UTC"},
    {"usr/lib/empty", AE_IFREG, "", 0, NULL},
};
#define SAMPLE_COUNT (sizeof(sample) / sizeof(sample[0]))

START_TEST(source_one_byte_reads)
{
    struct bytes layer = layer_build(FILTER_GZIP, sample, SAMPLE_COUNT);
    struct pg_error *err = NULL;
    json_t *result = scan_memory(&layer, 1, GZIP_LAYER, &default_options, &err);
    json_t *hosts;

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(result);
    ck_assert_str_eq(json_string_value(json_object_get(result, "digest")),
                     TEST_DIGEST);
    /* An unknown size is the number of bytes the source returned. */
    ck_assert_int_eq(int_at(result, "size"), (json_int_t)layer.len);
    ck_assert_int_eq(int_at(result, "entries"), 4);
    ck_assert_str_eq(path_of(result, 0), "etc");
    ck_assert_str_eq(path_of(result, 1), "etc/hosts");
    ck_assert_str_eq(path_of(result, 2), "etc/localtime");
    ck_assert_str_eq(path_of(result, 3), "usr/lib/empty");
    hosts = json_array_get(json_object_get(result, "files"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(hosts, "type")),
                     "file");
    ck_assert_int_eq(int_at(hosts, "size"), 20);
    ck_assert(json_is_object(json_object_get(result, "findings")));

    json_decref(result);
    free(layer.data);
}
END_TEST

/* A source read in one piece, a source read a byte at a time and the
 * file reader give the same result. */
START_TEST(source_matches_file)
{
    struct bytes layer = layer_build(FILTER_GZIP, sample, SAMPLE_COUNT);
    char path[] = "/tmp/test_layer.XXXXXX";
    int fd = mkstemp(path);
    struct pg_error *err = NULL;
    json_t *from_file;
    json_t *whole;
    json_t *bytewise;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, layer.data, layer.len), (ssize_t)layer.len);
    close(fd);

    from_file = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER,
                                     &default_options, &err);
    whole = scan_memory(&layer, SIZE_MAX, GZIP_LAYER, &default_options, &err);
    bytewise = scan_memory(&layer, 1, GZIP_LAYER, &default_options, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(from_file, "size"), (json_int_t)layer.len);
    ck_assert(json_equal(from_file, whole));
    ck_assert(json_equal(from_file, bytewise));

    unlink(path);
    json_decref(from_file);
    json_decref(whole);
    json_decref(bytewise);
    free(layer.data);
}
END_TEST

/* The source's own error reaches the caller, at the first read and in
 * the middle of the layer. */
START_TEST(source_failure_surfaces)
{
    static const struct entry_spec big[] = {
        {"data/a", AE_IFREG, NULL, 3 * MIB, NULL},
        {"data/b", AE_IFREG, NULL, 3 * MIB, NULL},
    };
    struct bytes layer = layer_build(FILTER_NONE, big, 2);
    size_t fail_points[] = {0, 100, 4 * MIB};

    for (size_t i = 0; i < 3; i++) {
        struct memory_source src = {.layer = &layer, .chunk = 64 * 1024,
                                    .fail_at = fail_points[i]};
        struct inspector_source source = {.read = memory_source_read,
                                          .arg = &src};
        struct pg_error *err = NULL;
        json_t *result = inspector_scan_layer(
            &source, TEST_DIGEST, "application/vnd.oci.image.layer.v1.tar",
            -1, &default_options, &err);

        ck_assert_ptr_null(result);
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(err->status, 502);
        ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
        ck_assert_str_eq(err->message, "upstream closed the connection");
        pg_error_free(err);
    }
    free(layer.data);
}
END_TEST

START_TEST(source_rejects_non_tar_media_type)
{
    struct memory_source src = {.fail_at = SIZE_MAX};
    struct inspector_source source = {.read = memory_source_read,
                                      .arg = &src};
    struct pg_error *err = NULL;

    ck_assert_ptr_null(inspector_scan_layer(&source, TEST_DIGEST,
                                            "application/vnd.in-toto+json",
                                            -1, &default_options, &err));
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message,
                     "layer " TEST_DIGEST " has media type "
                     "application/vnd.in-toto+json, which is not a tar "
                     "layer media type");
    ck_assert_uint_eq(src.reads, 0);
    pg_error_free(err);
}
END_TEST

/* ---- compression formats ---- */

START_TEST(zstd_layer_lists)
{
    struct bytes layer = layer_build(FILTER_ZSTD, sample, SAMPLE_COUNT);
    struct pg_error *err = NULL;
    json_t *result;

    /* The zstd frame magic number, RFC 8878 section 3.1.1. */
    ck_assert_mem_eq(layer.data, "\x28\xb5\x2f\xfd", 4);
    result = scan_memory(&layer, 7, ZSTD_LAYER, &default_options, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(result, "entries"), 4);
    ck_assert_str_eq(path_of(result, 1), "etc/hosts");
    json_decref(result);
    free(layer.data);
}
END_TEST

/*
 * Appends the eStargz footer: an empty gzip member whose extra field,
 * subfield "SG", holds the table of contents' offset as 16 hex digits
 * followed by "STARGZ" (51 bytes in all), as containerd/stargz-snapshotter
 * writes it.
 */
static void
estargz_footer(struct bytes *out, size_t toc_offset)
{
    static const unsigned char header[] = {0x1f, 0x8b, 8,    4,    0, 0,
                                           0,    0,    0,    0xff, 26, 0,
                                           'S',  'G',  22,   0};
    static const unsigned char tail[] = {1, 0, 0, 0xff, 0xff, 0, 0, 0,
                                         0, 0, 0, 0,    0};
    char extra[23];

    snprintf(extra, sizeof(extra), "%016zxSTARGZ", toc_offset);
    bytes_append(out, header, sizeof(header));
    bytes_append(out, extra, 22);
    bytes_append(out, tail, sizeof(tail));
}

/*
 * eStargz: every file in its own gzip member, then a member holding the
 * stargz.index.json entry and the end of the tar stream, then the footer.
 */
START_TEST(estargz_layer_lists)
{
    static const char toc[] = "{\"version\":1,\"entries\":[]}";
    const struct entry_spec specs[] = {
        {"bin/", AE_IFDIR, NULL, 0, NULL},
        {"bin/tool", AE_IFREG, "#!/bin/sh\necho tool\n", 0, NULL},
        {"etc/motd", AE_IFREG, "welcome\n", 0, NULL},
        {"stargz.index.json", AE_IFREG, toc, 0, NULL},
    };
    struct bytes tar = {0};
    struct bytes layer = {0};
    size_t ends[4];
    size_t start = 0;
    size_t toc_offset = 0;
    struct archive *a = writer_open(&tar, FILTER_NONE, false);
    struct pg_error *err = NULL;
    json_t *result;

    for (size_t i = 0; i < 4; i++) {
        writer_add(a, &specs[i]);
        ends[i] = tar.len;
    }
    writer_close(a);
    ends[3] = tar.len; /* the table of contents and the end blocks */

    for (size_t i = 0; i < 4; i++) {
        struct bytes member = gzip_member(tar.data + start, ends[i] - start);

        if (i == 3)
            toc_offset = layer.len;
        bytes_append(&layer, member.data, member.len);
        free(member.data);
        start = ends[i];
    }
    estargz_footer(&layer, toc_offset);

    result = scan_memory(&layer, 5, GZIP_LAYER, &default_options, &err);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(result);
    ck_assert_int_eq(int_at(result, "entries"), 4);
    ck_assert_str_eq(path_of(result, 0), "bin");
    ck_assert_str_eq(path_of(result, 1), "bin/tool");
    ck_assert_str_eq(path_of(result, 2), "etc/motd");
    ck_assert_str_eq(path_of(result, 3), "stargz.index.json");
    ck_assert_int_eq(int_at(result, "bytes"), (json_int_t)tar.len);

    json_decref(result);
    free(layer.data);
    free(tar.data);
}
END_TEST

/* ---- limits on the streaming path ---- */

START_TEST(limit_entries_streamed)
{
    struct inspector_options options = default_options;
    struct bytes layer = layer_build(FILTER_GZIP, sample, SAMPLE_COUNT);
    struct pg_error *err = NULL;

    options.entries_max = 3;
    ck_assert_ptr_null(scan_memory(&layer, 1, GZIP_LAYER, &options, &err));
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message, "layer " TEST_DIGEST " has more than 3 "
                                   "entries (inspector.layer_entries_max)");
    pg_error_free(err);
    free(layer.data);
}
END_TEST

START_TEST(limit_bytes_streamed)
{
    static const struct entry_spec big[] = {
        {"data/zeros", AE_IFREG, NULL, 2 * MIB, NULL},
    };
    struct inspector_options options = default_options;
    struct bytes layer = layer_build(FILTER_GZIP, big, 1);
    struct pg_error *err = NULL;

    options.bytes_max = MIB;
    ck_assert_ptr_null(scan_memory(&layer, 3, GZIP_LAYER, &options, &err));
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message,
                     "layer " TEST_DIGEST " has more than 1048576 "
                     "decompressed bytes (inspector.layer_bytes_max)");
    pg_error_free(err);
    free(layer.data);
}
END_TEST

/* 16 MiB of zeros compress about 1000 to 1 with gzip; a ratio limit of
 * 10 stops the layer, read 4 KiB at a time. */
START_TEST(limit_ratio_streamed)
{
    static const struct entry_spec big[] = {
        {"data/zeros", AE_IFREG, NULL, 16 * MIB, NULL},
    };
    struct inspector_options options = default_options;
    struct bytes layer = layer_build(FILTER_GZIP, big, 1);
    struct pg_error *err = NULL;

    ck_assert_uint_lt(layer.len, MIB);
    options.ratio_max = 10;
    ck_assert_ptr_null(scan_memory(&layer, 4096, GZIP_LAYER, &options, &err));
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message,
                     "layer " TEST_DIGEST " decompresses to more than 10 "
                     "times its compressed size "
                     "(inspector.compression_ratio_max)");
    pg_error_free(err);
    free(layer.data);
}
END_TEST

START_TEST(limit_path_length_streamed)
{
    struct inspector_options options = default_options;
    struct bytes layer = layer_build(FILTER_GZIP, sample, SAMPLE_COUNT);
    struct pg_error *err = NULL;

    options.path_length_max = 8;
    ck_assert_ptr_null(scan_memory(&layer, 1, GZIP_LAYER, &options, &err));
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message,
                     "entry 2 of layer " TEST_DIGEST " has a path of 9 "
                     "bytes, more than 8 (inspector.path_length_max)");
    pg_error_free(err);
    free(layer.data);
}
END_TEST

/* ---- tar headers written byte by byte ---- */

#define TAR_BLOCK 512

/* Appends a ustar header of name, type flag and size to b, with its
 * checksum, as POSIX.1-2001 lays it out. */
static void
ustar_header_append(struct bytes *b, const char *name, char type, size_t size)
{
    unsigned char block[TAR_BLOCK] = {0};
    unsigned sum = 0;

    snprintf((char *)block, 100, "%s", name);
    snprintf((char *)block + 100, 8, "%07o", 0644);
    snprintf((char *)block + 108, 8, "%07o", 0);
    snprintf((char *)block + 116, 8, "%07o", 0);
    snprintf((char *)block + 124, 12, "%011zo", size);
    snprintf((char *)block + 136, 12, "%011o", 0);
    memset(block + 148, ' ', 8);
    block[156] = (unsigned char)type;
    memcpy(block + 257, "ustar", 6);
    memcpy(block + 263, "00", 2);
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += block[i];
    snprintf((char *)block + 148, 8, "%06o", sum);
    bytes_append(b, block, TAR_BLOCK);
}

/* Appends len bytes of data and the zero bytes that fill its last block. */
static void
tar_data_append(struct bytes *b, const void *data, size_t len)
{
    static const unsigned char zeros[TAR_BLOCK];

    bytes_append(b, data, len);
    bytes_append(b, zeros, (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK);
}

/* The pax keys that set an entry's size, which GNU tar writes for sparse
 * files. libarchive 3.6 takes a negative value from either. */
static const char *const negative_size_keys[] = {
    "GNU.sparse.size",
    "GNU.sparse.realsize",
};

/*
 * A file whose pax header states a size of -1. Read whole into a buffer
 * of size + 1 bytes, its 12 bytes of data would overflow it, so the
 * layer is rejected.
 */
START_TEST(negative_size_rejected)
{
    static const unsigned char end_of_archive[2 * TAR_BLOCK];
    static const char data[] = "hello world\n";
    struct bytes layer = {0};
    struct pg_error *err = NULL;
    char record[64];
    int len;

    /* A pax record is "LENGTH KEY=VALUE\n", and LENGTH counts its own two
     * digits. */
    len = 2 + snprintf(record, sizeof(record), " %s=-1\n",
                       negative_size_keys[_i]);
    ck_assert_int_lt(len, 100);
    snprintf(record, sizeof(record), "%d %s=-1\n", len,
             negative_size_keys[_i]);
    ustar_header_append(&layer, "PaxHeaders/x.txt", 'x', (size_t)len);
    tar_data_append(&layer, record, (size_t)len);
    ustar_header_append(&layer, "etc/x.txt", '0', strlen(data));
    tar_data_append(&layer, data, strlen(data));
    bytes_append(&layer, end_of_archive, sizeof(end_of_archive));

    ck_assert_ptr_null(scan_memory(&layer, MIB,
                                   "application/vnd.oci.image.layer.v1.tar",
                                   &default_options, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message, "layer " TEST_DIGEST " is not a valid tar "
                                   "stream: entry 1 has a negative size");
    pg_error_free(err);
    free(layer.data);
}
END_TEST

/*
 * A regular file named "a/" with 1024 bytes of data, then a credentials
 * file. libarchive reads "a/" as a directory and its zero-filled data as
 * the end of the archive, while Go's archive/tar unpacks both files, so
 * the layer is rejected instead of listed without the second file.
 */
START_TEST(directory_with_data_rejected)
{
    static const unsigned char zeros[2 * TAR_BLOCK];
    static const char data[] = "[default]\n";
    struct bytes layer = {0};
    struct pg_error *err = NULL;

    ustar_header_append(&layer, "a/", '0', sizeof(zeros));
    bytes_append(&layer, zeros, sizeof(zeros));
    ustar_header_append(&layer, "root/.aws/credentials", '0', strlen(data));
    tar_data_append(&layer, data, strlen(data));
    bytes_append(&layer, zeros, sizeof(zeros));

    ck_assert_ptr_null(scan_memory(&layer, MIB,
                                   "application/vnd.oci.image.layer.v1.tar",
                                   &default_options, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 403);
    ck_assert_str_eq(err->message,
                     "layer " TEST_DIGEST " is not a valid tar stream: "
                     "entry 1 is a directory with 1024 bytes of data, "
                     "which container runtimes read as a file");
    pg_error_free(err);
    free(layer.data);
}
END_TEST

/* ---- findings and the routing of file content ---- */

/* Binary data under a name no cataloger reads leaves findings empty. */
START_TEST(findings_empty_object)
{
    static const struct entry_spec specs[] = {
        {"opt/data/blob.bin", AE_IFREG, NULL, 4096, NULL},
    };
    struct bytes layer = layer_build(FILTER_GZIP, specs, 1);
    struct pg_error *err = NULL;
    json_t *result = scan_memory(&layer, 512, GZIP_LAYER, &default_options,
                                 &err);
    json_t *findings = json_object_get(result, "findings");

    ck_assert_ptr_null(err);
    ck_assert(json_is_object(findings));
    ck_assert_uint_eq(json_object_size(findings), 0);
    json_decref(result);
    free(layer.data);
}
END_TEST

/* Files that catalogers of this tree read whole, by path. */
static const char *const cataloged_paths[] = {
    "etc/os-release",
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
    "usr/lib/node_modules/npm/package.json",
    "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
    NULL,
};

/*
 * A file that a cataloger wants whole but that is larger than
 * file_bytes_max is not read, and the note names the size and the limit.
 * Only the catalogers built into this tree can take part: with none that
 * reads these paths, findings stays empty.
 */
START_TEST(findings_note_file_over_max)
{
    struct inspector_options options = default_options;
    struct entry_spec spec = {NULL, AE_IFREG, NULL, 2048, NULL};
    const struct cataloger *wanting = NULL;
    struct bytes layer;
    struct pg_error *err = NULL;
    json_t *result;
    json_t *notes;
    json_t *note;

    for (size_t i = 0; cataloged_paths[i] != NULL && wanting == NULL; i++) {
        for (size_t j = 0; catalog_table[j] != NULL; j++) {
            if (catalog_table[j]->want(cataloged_paths[i], 2048) ==
                CATALOG_BUFFER) {
                wanting = catalog_table[j];
                spec.path = cataloged_paths[i];
                break;
            }
        }
    }
    if (spec.path == NULL)
        spec.path = cataloged_paths[0];

    options.file_bytes_max = 1024;
    layer = layer_build(FILTER_GZIP, &spec, 1);
    result = scan_memory(&layer, 100, GZIP_LAYER, &options, &err);
    ck_assert_ptr_null(err);
    notes = json_object_get(json_object_get(result, "findings"), "notes");

    if (wanting == NULL) {
        ck_assert_ptr_null(notes);
    } else {
        ck_assert_uint_ge(json_array_size(notes), 1);
        note = json_array_get(notes, 0);
        ck_assert_str_eq(
            json_string_value(json_object_get(note, "cataloger")),
            wanting->name);
        ck_assert_str_eq(json_string_value(json_object_get(note, "path")),
                         spec.path);
        ck_assert_str_eq(
            json_string_value(json_object_get(note, "message")),
            "file of 2048 bytes is larger than 1024 bytes "
            "(inspector.file_bytes_max) and was not read");
    }
    json_decref(result);
    free(layer.data);
}
END_TEST

/* A file is read whole for the secret scanner up to
 * secret_file_bytes_max, and block by block above it. */
START_TEST(plan_whole_up_to_secret_max)
{
    struct inspector_options options = default_options;
    struct layer_scan scan = {.limits = &options,
                              .catalog = {.options = &options}};
    struct file_plan plan;

    scan.catalog.findings = json_object();
    options.secret_file_bytes_max = 100;
    ck_assert_int_eq(file_plan_make(&scan, "opt/notes.txt", 100, &plan), 0);
    ck_assert(plan.read_whole);
    ck_assert_ptr_null(plan.stream);
    ck_assert_int_eq(file_plan_make(&scan, "opt/notes.txt", 101, &plan), 0);
    ck_assert(!plan.read_whole);
    ck_assert_int_eq(file_plan_make(&scan, "opt/empty", 0, &plan), 0);
    ck_assert(plan.read_whole);
    json_decref(scan.catalog.findings);
}
END_TEST

/* Text is a file without a NUL byte in its first 8 KiB. */
START_TEST(text_detection_probe)
{
    static unsigned char data[16384];

    memset(data, 'a', sizeof(data));
    ck_assert(is_text(data, sizeof(data)));
    ck_assert(is_text(data, 0));
    data[8191] = '\0';
    ck_assert(!is_text(data, sizeof(data)));
    ck_assert(!is_text(data, 8192));
    data[8191] = 'a';
    data[8192] = '\0';
    ck_assert(is_text(data, sizeof(data)));
}
END_TEST

/* The ELF magic number is recognized even when it arrives a byte per
 * block, and a near miss is not. */
START_TEST(elf_sniff_split_blocks)
{
    static const unsigned char elf[] = "\x7f" "ELF\x02\x01\x01";
    static const unsigned char other[] = "\x7f" "ELG\x02\x01\x01";
    struct elf_sniff sniff = {0};
    struct elf_sniff miss = {0};

    for (size_t i = 0; i < sizeof(elf) - 1; i++) {
        ck_assert_int_eq(elf_sniff_feed(&sniff, "bin/app", elf + i, 1), 0);
        ck_assert_int_eq(elf_sniff_feed(&miss, "bin/app", other + i, 1), 0);
    }
    ck_assert(sniff.decided);
    ck_assert_ptr_nonnull(sniff.go);
    ck_assert(miss.decided);
    ck_assert_ptr_null(miss.go);
    go_scan_free(sniff.go);
}
END_TEST

/* An ELF file larger than secret_file_bytes_max goes block by block; the
 * layer still lists and the content is counted in "bytes". */
START_TEST(large_elf_read_by_blocks)
{
    struct bytes tar = {0};
    struct archive *a = writer_open(&tar, FILTER_GZIP, false);
    struct archive_entry *entry = archive_entry_new();
    static unsigned char body[3 * MIB];
    struct inspector_options options = default_options;
    struct pg_error *err = NULL;
    json_t *result;

    memcpy(body, "\x7f" "ELF", 4);
    archive_entry_set_pathname(entry, "usr/bin/app");
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0755);
    archive_entry_set_size(entry, sizeof(body));
    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_data(a, body, sizeof(body)),
                     (la_ssize_t)sizeof(body));
    archive_entry_free(entry);
    writer_close(a);

    options.secret_file_bytes_max = MIB;
    result = scan_memory(&tar, 4096, GZIP_LAYER, &options, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(result, "entries"), 1);
    ck_assert_int_ge(int_at(result, "bytes"), 3 * MIB + 512);
    json_decref(result);
    free(tar.data);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("layer");
    TCase *source = tcase_create("source");
    TCase *formats = tcase_create("formats");
    TCase *limits = tcase_create("limits");
    TCase *findings = tcase_create("findings");
    SRunner *runner;
    int failed;

    tcase_add_test(source, source_one_byte_reads);
    tcase_add_test(source, source_matches_file);
    tcase_add_test(source, source_failure_surfaces);
    tcase_add_test(source, source_rejects_non_tar_media_type);
    tcase_add_test(formats, zstd_layer_lists);
    tcase_add_test(formats, estargz_layer_lists);
    tcase_add_test(formats, directory_with_data_rejected);
    tcase_add_loop_test(formats, negative_size_rejected, 0,
                        sizeof(negative_size_keys) /
                            sizeof(negative_size_keys[0]));
    tcase_add_test(limits, limit_entries_streamed);
    tcase_add_test(limits, limit_bytes_streamed);
    tcase_add_test(limits, limit_ratio_streamed);
    tcase_add_test(limits, limit_path_length_streamed);
    tcase_set_timeout(limits, 60);
    tcase_add_test(findings, findings_empty_object);
    tcase_add_test(findings, findings_note_file_over_max);
    tcase_add_test(findings, plan_whole_up_to_secret_max);
    tcase_add_test(findings, text_detection_probe);
    tcase_add_test(findings, elf_sniff_split_blocks);
    tcase_add_test(findings, large_elf_read_by_blocks);
    suite_add_tcase(suite, source);
    suite_add_tcase(suite, formats);
    suite_add_tcase(suite, limits);
    suite_add_tcase(suite, findings);
    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
