/*
 * Layer listing: reads one layer blob as a tar stream with libarchive and
 * records every entry's metadata. Entry data is read and discarded, never
 * written anywhere, so that every decompressed byte is counted and the
 * size and compression ratio limits apply to all of the layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "config/error.h"
#include "inspector/inspector.h"

/* Bytes libarchive reads from the layer file at a time. */
#define LAYER_READ_BLOCK_BYTES (1024 * 1024)

/*
 * Decompressed bytes read before the compression ratio is checked. Below
 * this, a small layer of mostly empty files could trip the ratio limit
 * while being harmless.
 */
#define LAYER_RATIO_MIN_BYTES (1024ull * 1024)

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/* Names under this prefix other than the opaque marker, such as
 * .wh..wh.plnk, are AUFS metadata. They hide nothing and keep their own
 * entry type. */
#define WHITEOUT_META_PREFIX ".wh..wh."

/* The names of one entry, each in UTF-8 when libarchive can convert it
 * and as the header's raw bytes otherwise. */
struct entry_names {
    const char *path;
    const char *hardlink; /* NULL unless the entry is a hard link */
    const char *symlink;  /* NULL unless the entry is a symlink */
};

struct layer_scan {
    struct archive *archive;
    const char *digest;
    const struct inspector_options *limits;
    uint64_t entries;
    json_t *files;
};

/* Returns the length of the path in path[0..len) without its last
 * segment: the position of its last '/', or 0. */
static size_t
path_parent_length(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] != '/')
        len--;
    return len > 0 ? len - 1 : 0;
}

/*
 * Returns a new string holding the path a tar entry name unpacks to.
 * containerd, moby and containers/storage clean a name lexically, as Go's
 * filepath.Join("/", name) does, before they write it under the root, and
 * the policy must match the path they write. Empty and "." segments are
 * dropped, and ".." removes the segment before it, or nothing at the
 * root, so "../../etc/passwd" becomes "etc/passwd". The result has no
 * leading or trailing '/', and the root itself becomes ".". Nothing on
 * disk is consulted.
 * NOTE: runtimes also follow symlinks that earlier entries created in the
 * parent directories, so "x/credentials" under a symlink "x" pointing to
 * "/root/.aws" is listed as written although it lands elsewhere.
 * Returns NULL when memory is short. The caller frees the result.
 */
static char *
path_normalize(const char *raw)
{
    size_t raw_len = strlen(raw);
    char *out = malloc(raw_len + 2);
    size_t used = 0;
    const char *segment = raw;

    if (out == NULL)
        return NULL;

    while (*segment != '\0') {
        size_t len = strcspn(segment, "/");

        if (len == 2 && segment[0] == '.' && segment[1] == '.') {
            used = path_parent_length(out, used);
        } else if (len > 0 && !(len == 1 && segment[0] == '.')) {
            if (used > 0)
                out[used++] = '/';
            memcpy(out + used, segment, len);
            used += len;
        }
        segment += len;
        if (*segment == '/')
            segment++;
    }

    if (used == 0)
        out[used++] = '.';
    out[used] = '\0';
    return out;
}

/* Returns true when path has a ".." segment, which path_normalize
 * resolves against the segments before it. */
static bool
path_has_parent_segment(const char *path)
{
    const char *segment = path;

    for (;;) {
        size_t len = strcspn(segment, "/");

        if (len == 2 && segment[0] == '.' && segment[1] == '.')
            return true;
        if (segment[len] == '\0')
            return false;
        segment += len + 1;
    }
}

/*
 * Returns a new normalized path of name inside the directory that
 * contains path (a normalized path), or NULL when memory is short.
 */
static char *
path_sibling(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash == NULL ? 0 : (size_t)(slash - path);
    size_t name_len = strlen(name);
    char *joined = malloc(dir_len + name_len + 2);
    char *normalized;

    if (joined == NULL)
        return NULL;

    memcpy(joined, path, dir_len);
    joined[dir_len] = '/';
    memcpy(joined + dir_len + 1, name, name_len + 1);
    normalized = path_normalize(joined);
    free(joined);
    return normalized;
}

static const char *
path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash == NULL ? path : slash + 1;
}

/* Returns the type name of an entry that is not a whiteout. */
static const char *
entry_type_name(struct archive_entry *entry, const struct entry_names *names)
{
    if (names->hardlink != NULL)
        return "hardlink";

    switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
        return "file";
    case AE_IFDIR:
        return "dir";
    case AE_IFLNK:
        return "symlink";
    case AE_IFCHR:
        return "char";
    case AE_IFBLK:
        return "block";
    case AE_IFIFO:
        return "fifo";
    default:
        return "other";
    }
}

/* Sets key in object to a JSON string of text. Returns 0 or -1. */
static int
json_set_text(json_t *object, const char *key, const char *text)
{
    return json_object_set_new(object, key,
                               inspector_json_text(text, strlen(text)));
}

static bool
has_prefix(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/*
 * Recognizes whiteouts by their base name alone, whatever their entry
 * type, so that no entry named like a whiteout passes as an ordinary
 * file. For a whiteout, stores its type name in *type and the normalized
 * path it hides in *target, a new string the caller frees. An opaque
 * whiteout hides the contents of its own directory. Otherwise leaves both
 * NULL. Returns 0, or -1 when memory is short.
 */
static int
entry_whiteout(const char *path, const char **type, char **target)
{
    const char *base = path_basename(path);

    *type = NULL;
    *target = NULL;
    if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
        *type = "opaque_whiteout";
        *target = path_sibling(path, ".");
    } else if (has_prefix(base, WHITEOUT_PREFIX) &&
               !has_prefix(base, WHITEOUT_META_PREFIX)) {
        *type = "whiteout";
        *target = path_sibling(path, base + strlen(WHITEOUT_PREFIX));
    }
    return *type != NULL && *target == NULL ? -1 : 0;
}

static const char *
prefer_utf8(const char *utf8, const char *raw)
{
    return utf8 != NULL ? utf8 : raw;
}

/*
 * Fills names from entry. In the "C" locale libarchive cannot convert a
 * pax UTF-8 name to the locale and returns no UTF-8 form, but the raw
 * form then contains the UTF-8 bytes.
 */
static void
entry_names_get(struct archive_entry *entry, struct entry_names *names)
{
    names->path = prefer_utf8(archive_entry_pathname_utf8(entry),
                              archive_entry_pathname(entry));
    names->hardlink = prefer_utf8(archive_entry_hardlink_utf8(entry),
                                  archive_entry_hardlink(entry));
    names->symlink = NULL;
    if (archive_entry_filetype(entry) == AE_IFLNK)
        names->symlink = prefer_utf8(archive_entry_symlink_utf8(entry),
                                     archive_entry_symlink(entry));
}

/*
 * Adds "link" for symlinks and hard links. Runtimes resolve a hard link's
 * target under the root when they unpack it, so it is normalized like an
 * entry's path. A symlink's target is resolved at run time and is kept as
 * written.
 */
static int
entry_set_link(json_t *file, const struct entry_names *names)
{
    char *normalized;
    int rc;

    if (names->hardlink != NULL) {
        normalized = path_normalize(names->hardlink);
        if (normalized == NULL)
            return -1;
        rc = json_set_text(file, "link", normalized);
        free(normalized);
        return rc;
    }
    if (names->symlink != NULL)
        return json_set_text(file, "link", names->symlink);
    return 0;
}

/* Returns the JSON object of one entry, or NULL when memory is short. */
static json_t *
entry_to_json(struct archive_entry *entry, const struct entry_names *names)
{
    char *path = path_normalize(names->path);
    json_int_t mode = archive_entry_mode(entry) & 07777;
    json_int_t uid = archive_entry_uid(entry);
    json_int_t gid = archive_entry_gid(entry);
    json_int_t size = 0;
    char *target = NULL;
    const char *type;
    json_t *file = NULL;
    json_t *result = NULL;

    if (path == NULL || entry_whiteout(path, &type, &target) < 0)
        goto out;
    if (type == NULL)
        type = entry_type_name(entry, names);
    if (archive_entry_size_is_set(entry))
        size = archive_entry_size(entry);

    file = json_pack("{s:o, s:s, s:I, s:I, s:I, s:I}", "path",
                     inspector_json_text(path, strlen(path)), "type", type,
                     "mode", mode, "size", size, "uid", uid, "gid", gid);
    if (file == NULL || entry_set_link(file, names) < 0)
        goto out;
    if (target != NULL && json_set_text(file, "target", target) < 0)
        goto out;
    /* Only ".." changes which file a name refers to, so a name that just
     * has "./" or a trailing '/' keeps no raw form. */
    if (path_has_parent_segment(names->path) &&
        json_set_text(file, "raw_path", names->path) < 0)
        goto out;

    result = file;
    file = NULL;

out:
    json_decref(file);
    free(target);
    free(path);
    return result;
}

/*
 * Stores the error libarchive reported. Anything but a failed read or a
 * memory shortage means the bytes are not a tar stream it can follow.
 */
static void
scan_set_archive_error(const struct layer_scan *scan, struct pg_error **err)
{
    int code = archive_errno(scan->archive);
    const char *text = archive_error_string(scan->archive);

    if (text == NULL)
        text = "unknown libarchive error";

    if (code == ENOMEM)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while reading layer %s; retry later",
                     scan->digest);
    else if (code == EIO)
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "layer %s could not be read from the blob store: %s",
                     scan->digest, text);
    else
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s is not a valid tar stream: %s", scan->digest,
                     text);
}

static void
scan_set_memory_error(const struct layer_scan *scan, struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while listing layer %s; retry later",
                 scan->digest);
}

/*
 * Checks the decompressed size and the compression ratio read so far.
 * Filter 0 counts the decompressed bytes the tar reader consumed, and
 * filter -1 the bytes the decompressor consumed from the file.
 */
static int
scan_check_bytes(const struct layer_scan *scan, struct pg_error **err)
{
    const struct inspector_options *limits = scan->limits;
    int64_t out = archive_filter_bytes(scan->archive, 0);
    int64_t in = archive_filter_bytes(scan->archive, -1);
    uint64_t decompressed = out < 0 ? 0 : (uint64_t)out;
    uint64_t compressed = in < 0 ? 0 : (uint64_t)in;

    if (decompressed > limits->bytes_max) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s has more than %llu decompressed bytes "
                     "(inspector.layer_bytes_max)",
                     scan->digest, (unsigned long long)limits->bytes_max);
        return -1;
    }

    /* The ratio is an integer quotient, which cannot overflow. */
    if (decompressed >= LAYER_RATIO_MIN_BYTES && compressed > 0 &&
        decompressed / compressed > limits->ratio_max) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s decompresses to more than %llu times its "
                     "compressed size (inspector.compression_ratio_max)",
                     scan->digest, (unsigned long long)limits->ratio_max);
        return -1;
    }
    return 0;
}

/* Reads and discards the data of the current entry, checking the limits
 * after every block. */
static int
scan_read_data(struct layer_scan *scan, struct pg_error **err)
{
    const void *block;
    size_t size;
    la_int64_t offset;

    for (;;) {
        int r = archive_read_data_block(scan->archive, &block, &size, &offset);

        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN) {
            scan_set_archive_error(scan, err);
            return -1;
        }
        if (scan_check_bytes(scan, err) < 0)
            return -1;
    }
}

/* Checks a path or link target of the current entry against the limit. */
static int
scan_check_path(const struct layer_scan *scan, const char *what,
                const char *path, struct pg_error **err)
{
    size_t len = strlen(path);

    if (len <= scan->limits->path_length_max)
        return 0;

    pg_error_set(err, 403, PG_ERR_DENIED,
                 "entry %llu of layer %s has a %s of %zu bytes, more than "
                 "%llu (inspector.path_length_max)",
                 (unsigned long long)scan->entries, scan->digest, what, len,
                 (unsigned long long)scan->limits->path_length_max);
    return -1;
}

/* Records the entry whose header was just read, then reads its data. */
static int
scan_entry(struct layer_scan *scan, struct archive_entry *entry,
           struct pg_error **err)
{
    struct entry_names names;
    json_t *file;

    scan->entries++;
    if (scan->entries > scan->limits->entries_max) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s has more than %llu entries "
                     "(inspector.layer_entries_max)",
                     scan->digest,
                     (unsigned long long)scan->limits->entries_max);
        return -1;
    }

    entry_names_get(entry, &names);
    if (names.path == NULL) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "entry %llu of layer %s has no path",
                     (unsigned long long)scan->entries, scan->digest);
        return -1;
    }
    if (scan_check_path(scan, "path", names.path, err) < 0 ||
        (names.hardlink != NULL &&
         scan_check_path(scan, "link target", names.hardlink, err) < 0) ||
        (names.symlink != NULL &&
         scan_check_path(scan, "link target", names.symlink, err) < 0))
        return -1;

    file = entry_to_json(entry, &names);
    if (file == NULL || json_array_append_new(scan->files, file) < 0) {
        scan_set_memory_error(scan, err);
        return -1;
    }

    if (scan_check_bytes(scan, err) < 0)
        return -1;
    return scan_read_data(scan, err);
}

/* Reads every entry up to the end of the archive. */
static int
scan_entries(struct layer_scan *scan, struct pg_error **err)
{
    struct archive_entry *entry;

    for (;;) {
        int r = archive_read_next_header(scan->archive, &entry);

        if (r == ARCHIVE_EOF)
            return scan_check_bytes(scan, err);
        /* ARCHIVE_WARN covers names that cannot be converted to the
         * current locale, and the entry itself is complete. */
        if (r < ARCHIVE_WARN) {
            scan_set_archive_error(scan, err);
            return -1;
        }
        if (scan_entry(scan, entry, err) < 0)
            return -1;
    }
}

/*
 * Returns a reader for the tar formats (ustar, pax, GNU tar, which
 * archive_read_support_format_tar covers together) behind gzip, zstd or
 * no compression, reading from fd. Other archive formats are not
 * registered, so a zip or ISO image is rejected instead of listed.
 */
static struct archive *
layer_archive_open(int fd, const char *digest, struct pg_error **err)
{
    struct layer_scan scan = {.archive = archive_read_new(), .digest = digest};
    struct archive *result = NULL;

    if (scan.archive == NULL) {
        scan_set_memory_error(&scan, err);
        goto out;
    }

    /* Each call returns ARCHIVE_WARN when libarchive was built without
     * the library and would run an external program instead. */
    if (archive_read_support_format_tar(scan.archive) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(scan.archive) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(scan.archive) != ARCHIVE_OK ||
        archive_read_support_filter_none(scan.archive) != ARCHIVE_OK) {
        const char *reason = archive_error_string(scan.archive);

        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "%s cannot read tar, gzip and zstd by itself (%s); "
                     "install a libarchive built with zlib and libzstd",
                     archive_version_string(),
                     reason != NULL ? reason : "no reason given");
        goto out;
    }
    if (archive_read_open_fd(scan.archive, fd, LAYER_READ_BLOCK_BYTES) !=
        ARCHIVE_OK) {
        scan_set_archive_error(&scan, err);
        goto out;
    }

    result = scan.archive;
    scan.archive = NULL;

out:
    archive_read_free(scan.archive);
    return result;
}

/*
 * Opens the layer file read-only and stores its size. Returns the
 * descriptor or -1. The path stays out of the message, because the
 * message reaches clients in the image document.
 */
static int
layer_file_open(const char *path, const char *digest, int64_t *size,
                struct pg_error **err)
{
    char reason[128];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        /* The GNU strerror_r, which _GNU_SOURCE selects, is thread-safe.
         * It returns a pointer to the text, which may not be in reason. */
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "layer %s could not be opened in the blob store: %s",
                     digest, strerror_r(errno, reason, sizeof(reason)));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "layer %s in the blob store is not a readable regular "
                     "file",
                     digest);
        close(fd);
        return -1;
    }
    *size = st.st_size;
    return fd;
}

/* Returns the layer result object with its fixed fields, or NULL. */
static json_t *
layer_result_new(const char *digest, const char *media_type, int64_t size,
                 json_t *files, const struct layer_scan *scan)
{
    int64_t bytes = archive_filter_bytes(scan->archive, 0);

    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:O}", "digest", digest,
                     "media_type", media_type, "size", (json_int_t)size,
                     "entries", (json_int_t)scan->entries, "bytes",
                     (json_int_t)bytes, "files", files);
}

json_t *
inspector_list_layer(const char *path, const char *digest,
                     const char *media_type,
                     const struct inspector_options *limits,
                     struct pg_error **err)
{
    struct layer_scan scan = {.digest = digest, .limits = limits};
    json_t *result = NULL;
    int64_t size = 0;
    int fd = -1;

    if (!inspector_is_tar_layer(media_type)) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s has media type %s, which is not a tar layer "
                     "media type",
                     digest, media_type == NULL ? "(none)" : media_type);
        goto out;
    }

    fd = layer_file_open(path, digest, &size, err);
    if (fd < 0)
        goto out;
    scan.archive = layer_archive_open(fd, digest, err);
    if (scan.archive == NULL)
        goto out;
    scan.files = json_array();
    if (scan.files == NULL) {
        scan_set_memory_error(&scan, err);
        goto out;
    }

    if (scan_entries(&scan, err) < 0)
        goto out;

    result = layer_result_new(digest, media_type, size, scan.files, &scan);
    if (result == NULL)
        scan_set_memory_error(&scan, err);

out:
    json_decref(scan.files);
    archive_read_free(scan.archive);
    if (fd >= 0)
        close(fd);
    return result;
}
