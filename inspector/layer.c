/*
 * Layer reading: reads one layer as a tar stream with libarchive from any
 * source (a file, or a download still under way), records every entry's
 * metadata and hands the content of regular files to the catalogers and
 * content scanners (inspector/catalog.h). Entry data is read in memory,
 * never written anywhere, and every decompressed byte is counted, so the
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
#include "inspector/catalog.h"
#include "inspector/inspector.h"

/* Bytes libarchive reads from the layer source at a time. */
#define LAYER_READ_BLOCK_BYTES (1024 * 1024)

/* Entries of catalog_table that the layer reader can dispatch to. */
#define LAYER_CATALOGERS_MAX 32

/* Leading bytes of a file searched for a NUL byte: a file without one
 * there is text and is scanned for secrets. */
#define LAYER_TEXT_PROBE_BYTES 8192

/* The ELF magic number, which starts every Go binary on Linux. */
#define ELF_MAGIC "\x7f" "ELF"
#define ELF_MAGIC_BYTES 4

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
    struct catalog_ctx catalog; /* its findings go into the result */

    /* The content of one file that catalogers or the secret scanner
     * read whole, reused across entries. */
    unsigned char *content;
    size_t content_cap;

    const struct inspector_source *source;
    unsigned char *read_buffer; /* LAYER_READ_BLOCK_BYTES */
    uint64_t source_bytes;      /* read from the source so far */
    /* Why the source failed: reported in place of the EIO that the read
     * callback gives libarchive. */
    struct pg_error *source_error;
};

/* The content of the current entry, handed to a streaming cataloger. */
struct catalog_stream {
    struct layer_scan *scan;
    struct pg_error *error; /* why the layer cannot be read further */
    bool ended;
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
entry_to_json(struct archive_entry *entry, const struct entry_names *names,
              const char *path)
{
    json_int_t mode = archive_entry_mode(entry) & 07777;
    json_int_t uid = archive_entry_uid(entry);
    json_int_t gid = archive_entry_gid(entry);
    json_int_t size = 0;
    char *target = NULL;
    const char *type;
    json_t *file = NULL;
    json_t *result = NULL;

    if (entry_whiteout(path, &type, &target) < 0)
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
    return result;
}

/*
 * Stores the error libarchive reported. Anything but a failed read or a
 * memory shortage means the bytes are not a tar stream it can follow.
 */
static void
scan_set_archive_error(struct layer_scan *scan, struct pg_error **err)
{
    int code = archive_errno(scan->archive);
    const char *text = archive_error_string(scan->archive);

    /* A failed source names its own cause, such as a digest mismatch. */
    if (scan->source_error != NULL) {
        if (err != NULL && *err == NULL) {
            *err = scan->source_error;
            scan->source_error = NULL;
        }
        return;
    }

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

/* ---- file content: catalogers, secrets and Go binaries ---- */

/* The handling of one regular file's content. */
struct file_plan {
    const struct cataloger *stream; /* the first that wants a stream */
    bool buffer[LAYER_CATALOGERS_MAX]; /* catalogers that read it whole */
    size_t n_buffer;
    bool read_whole; /* into scan->content, for them or for secrets */
};

static bool
is_text(const unsigned char *data, size_t len)
{
    size_t probe = len < LAYER_TEXT_PROBE_BYTES ? len : LAYER_TEXT_PROBE_BYTES;

    return memchr(data, '\0', probe) == NULL;
}

/*
 * Asks every cataloger whether it wants the file at path of size bytes,
 * and fills plan. A cataloger that wants the whole of a file larger than
 * options->file_bytes_max gets a note in place of the content. A stream
 * goes to the first cataloger that asks for one, and then nobody reads
 * the file whole, because the data can be read only once. Returns 0, or
 * -1 when memory is short.
 */
static int
file_plan_make(struct layer_scan *scan, const char *path, int64_t size,
               struct file_plan *plan)
{
    const struct inspector_options *limits = scan->limits;
    uint64_t bytes = size < 0 ? 0 : (uint64_t)size;

    memset(plan, 0, sizeof(*plan));
    for (size_t i = 0; catalog_table[i] != NULL; i++) {
        const struct cataloger *c = catalog_table[i];
        enum catalog_want want = c->want(path, size);

        if (want == CATALOG_STREAM && plan->stream == NULL) {
            plan->stream = c;
        } else if (want == CATALOG_BUFFER && bytes > limits->file_bytes_max) {
            if (catalog_note(&scan->catalog, c->name, path,
                             "file of %llu bytes is larger than %llu bytes "
                             "(inspector.file_bytes_max) and was not read",
                             (unsigned long long)bytes,
                             (unsigned long long)limits->file_bytes_max) < 0)
                return -1;
        } else if (want == CATALOG_BUFFER) {
            plan->buffer[i] = true;
            plan->n_buffer++;
        }
    }
    plan->read_whole = plan->stream == NULL &&
                       (plan->n_buffer > 0 ||
                        bytes <= limits->secret_file_bytes_max);
    return 0;
}

/* Makes scan->content hold at least len bytes and a NUL byte. len is at
 * most the larger of the two file limits, which file_plan_make checked. */
static int
content_reserve(struct layer_scan *scan, size_t len)
{
    unsigned char *grown;

    if (len < scan->content_cap)
        return 0;
    grown = realloc(scan->content, len + 1);
    if (grown == NULL)
        return -1;
    scan->content = grown;
    scan->content_cap = len + 1;
    return 0;
}

/* Copies one block of the current entry into scan->content, zeroing any
 * hole before it. *filled is the number of leading bytes known to hold
 * data or zeros; blocks come in order, so nothing is written twice. */
static void
content_add_block(struct layer_scan *scan, size_t len, const void *block,
                  size_t size, la_int64_t offset, size_t *filled)
{
    size_t start, room, n;

    if (size == 0 || offset < 0 || (uint64_t)offset >= len)
        return;
    start = (size_t)offset;
    room = len - start;
    n = size < room ? size : room;
    if (start > *filled)
        memset(scan->content + *filled, 0, start - *filled);
    memcpy(scan->content + start, block, n);
    if (start + n > *filled)
        *filled = start + n;
}

/* Reads the next data block of the current entry and checks the limits.
 * Returns 1 with a block, 0 at the end of the entry, or -1. */
static int
content_next_block(struct layer_scan *scan, const void **block, size_t *size,
                   la_int64_t *offset, struct pg_error **err)
{
    int r = archive_read_data_block(scan->archive, block, size, offset);

    if (r == ARCHIVE_EOF)
        return 0;
    if (r < ARCHIVE_WARN) {
        scan_set_archive_error(scan, err);
        return -1;
    }
    if (scan_check_bytes(scan, err) < 0)
        return -1;
    return 1;
}

/*
 * Reads the current entry's data, len bytes by its header, into
 * scan->content, starting with a first block already read when size is
 * not 0. A sparse file's holes read as zero bytes, and data past len,
 * which a corrupt header could announce, is counted and dropped.
 */
static int
content_read(struct layer_scan *scan, size_t len, const void *block,
             size_t size, la_int64_t offset, struct pg_error **err)
{
    size_t filled = 0;
    int r;

    if (content_reserve(scan, len) < 0) {
        scan_set_memory_error(scan, err);
        return -1;
    }
    content_add_block(scan, len, block, size, offset, &filled);
    while ((r = content_next_block(scan, &block, &size, &offset, err)) == 1)
        content_add_block(scan, len, block, size, offset, &filled);
    if (r < 0)
        return -1;
    memset(scan->content + filled, 0, len + 1 - filled);
    return 0;
}

/* Runs the Go build information reader over a whole file in memory. */
static int
go_scan_content(struct layer_scan *scan, const char *path,
                const unsigned char *data, size_t len)
{
    struct go_scan *go = go_scan_new(path);

    if (go == NULL)
        return -1;
    go_scan_feed(go, data, len);
    return go_scan_finish(&scan->catalog, go);
}

/* Runs the secret scanner and the Go reader over the whole content of a
 * file. Returns 0, or -1 when memory is short. */
static int
content_scan(struct layer_scan *scan, const char *path,
             const unsigned char *data, size_t len)
{
    if (len <= scan->limits->secret_file_bytes_max && is_text(data, len) &&
        secrets_scan(&scan->catalog, path, data, len) < 0)
        return -1;
    if (len >= ELF_MAGIC_BYTES &&
        memcmp(data, ELF_MAGIC, ELF_MAGIC_BYTES) == 0 &&
        go_scan_content(scan, path, data, len) < 0)
        return -1;
    return 0;
}

/*
 * Reads a file whole and hands it to the catalogers in plan, the secret
 * scanner and the Go reader. When no cataloger needs the content and its
 * first block holds all of it, as it does for most small files, the block
 * is scanned where libarchive keeps it, before the next read can replace
 * it, instead of being copied first.
 */
static int
file_read_whole(struct layer_scan *scan, const char *path, size_t len,
                const struct file_plan *plan, struct pg_error **err)
{
    const void *block = NULL;
    size_t size = 0;
    la_int64_t offset = 0;
    int r;

    if (plan->n_buffer == 0 && len > 0) {
        r = content_next_block(scan, &block, &size, &offset, err);
        if (r < 0)
            return -1;
        if (r == 1 && offset == 0 && size >= len) {
            if (content_scan(scan, path, block, len) < 0)
                goto memory;
            while ((r = content_next_block(scan, &block, &size, &offset,
                                           err)) == 1)
                ;
            return r;
        }
        if (r == 0)
            size = 0;
    }

    if (content_read(scan, len, block, size, offset, err) < 0)
        return -1;
    for (size_t i = 0; catalog_table[i] != NULL; i++) {
        if (plan->buffer[i] &&
            catalog_table[i]->file(&scan->catalog, path, scan->content, len) <
                0)
            goto memory;
    }
    if (content_scan(scan, path, scan->content, len) < 0)
        goto memory;
    return 0;

memory:
    scan_set_memory_error(scan, err);
    return -1;
}

/* The first bytes of a file read block by block, to recognize an ELF
 * file even when the first block is shorter than the magic number. */
struct elf_sniff {
    unsigned char head[ELF_MAGIC_BYTES];
    size_t head_len;
    bool decided;
    struct go_scan *go; /* set once the file is known to be ELF */
};

/* Feeds one block to the sniffer and, for an ELF file, to the Go reader.
 * Returns 0, or -1 when memory is short. */
static int
elf_sniff_feed(struct elf_sniff *sniff, const char *path,
               const unsigned char *block, size_t size)
{
    size_t used = 0;

    /* An empty block may come with a NULL pointer. */
    if (size == 0)
        return 0;

    if (sniff->decided) {
        if (sniff->go != NULL)
            go_scan_feed(sniff->go, block, size);
        return 0;
    }

    used = ELF_MAGIC_BYTES - sniff->head_len;
    if (used > size)
        used = size;
    memcpy(sniff->head + sniff->head_len, block, used);
    sniff->head_len += used;
    if (sniff->head_len < ELF_MAGIC_BYTES)
        return 0;

    sniff->decided = true;
    if (memcmp(sniff->head, ELF_MAGIC, ELF_MAGIC_BYTES) != 0)
        return 0;
    sniff->go = go_scan_new(path);
    if (sniff->go == NULL)
        return -1;
    go_scan_feed(sniff->go, sniff->head, ELF_MAGIC_BYTES);
    go_scan_feed(sniff->go, block + used, size - used);
    return 0;
}

/*
 * Reads a file that nobody reads whole block by block, feeding an ELF
 * file to the Go reader.
 * NOTE: the blocks of a sparse file reach the Go reader without its
 * holes; a Go binary stored sparse is not recognized.
 */
static int
file_read_blocks(struct layer_scan *scan, const char *path,
                 struct pg_error **err)
{
    struct elf_sniff sniff = {0};
    const void *block;
    size_t size;
    la_int64_t offset;
    int rc = -1;

    for (;;) {
        int r = archive_read_data_block(scan->archive, &block, &size, &offset);

        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            scan_set_archive_error(scan, err);
            goto out;
        }
        if (scan_check_bytes(scan, err) < 0)
            goto out;
        if (elf_sniff_feed(&sniff, path, block, size) < 0) {
            scan_set_memory_error(scan, err);
            goto out;
        }
    }

    rc = 0;
    if (sniff.go != NULL) {
        struct go_scan *go = sniff.go;

        sniff.go = NULL;
        if (go_scan_finish(&scan->catalog, go) < 0) {
            scan_set_memory_error(scan, err);
            rc = -1;
        }
    }

out:
    go_scan_free(sniff.go);
    return rc;
}

int
catalog_stream_next(struct catalog_stream *stream, const void **block,
                    size_t *len)
{
    struct layer_scan *scan = stream->scan;
    la_int64_t offset;

    if (stream->error != NULL)
        return -1;

    while (!stream->ended) {
        int r = archive_read_data_block(scan->archive, block, len, &offset);

        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            scan_set_archive_error(scan, &stream->error);
            return -1;
        }
        if (scan_check_bytes(scan, &stream->error) < 0)
            return -1;
        /* libarchive may return an empty block; the contract promises
         * data with every 1. */
        if (*len > 0)
            return 1;
    }
    stream->ended = true;
    return 0;
}

/*
 * Hands the current entry to a streaming cataloger, then reads what it
 * left, so that the limits still apply to every byte. The stream's error
 * fails the layer.
 */
static int
file_stream(struct layer_scan *scan, const char *path,
            const struct cataloger *cataloger, struct pg_error **err)
{
    struct catalog_stream stream = {.scan = scan};
    int rc = cataloger->stream(&scan->catalog, path, &stream);

    if (stream.error != NULL) {
        if (err != NULL && *err == NULL)
            *err = stream.error;
        else
            pg_error_free(stream.error);
        return -1;
    }
    if (rc < 0) {
        scan_set_memory_error(scan, err);
        return -1;
    }
    return scan_read_data(scan, err);
}

/* Reads the content of the regular file whose header was just read. */
static int
scan_file(struct layer_scan *scan, struct archive_entry *entry,
          const char *path, struct pg_error **err)
{
    int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry)
                                                     : 0;
    struct file_plan plan;

    if (secrets_check_path(&scan->catalog, path) < 0 ||
        file_plan_make(scan, path, size, &plan) < 0) {
        scan_set_memory_error(scan, err);
        return -1;
    }

    if (plan.stream != NULL)
        return file_stream(scan, path, plan.stream, err);
    if (plan.read_whole)
        return file_read_whole(scan, path, (size_t)size, &plan, err);
    return file_read_blocks(scan, path, err);
}

/* Returns true for a regular file: not a hard link, which has no data of
 * its own, and not a whiteout, which only hides a file. */
static bool
entry_is_regular_file(struct archive_entry *entry,
                      const struct entry_names *names, const char *path)
{
    const char *base = path_basename(path);

    return archive_entry_filetype(entry) == AE_IFREG &&
           names->hardlink == NULL && !has_prefix(base, WHITEOUT_PREFIX);
}

/* Checks the entry count and the lengths of the names of the entry whose
 * header was just read. */
static int
scan_check_entry(struct layer_scan *scan, const struct entry_names *names,
                 struct pg_error **err)
{
    scan->entries++;
    if (scan->entries > scan->limits->entries_max) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s has more than %llu entries "
                     "(inspector.layer_entries_max)",
                     scan->digest,
                     (unsigned long long)scan->limits->entries_max);
        return -1;
    }

    if (names->path == NULL) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "entry %llu of layer %s has no path",
                     (unsigned long long)scan->entries, scan->digest);
        return -1;
    }
    if (scan_check_path(scan, "path", names->path, err) < 0 ||
        (names->hardlink != NULL &&
         scan_check_path(scan, "link target", names->hardlink, err) < 0) ||
        (names->symlink != NULL &&
         scan_check_path(scan, "link target", names->symlink, err) < 0))
        return -1;
    return 0;
}

/*
 * Rejects an entry whose header states a negative size, which no valid
 * tar header does. libarchive 3.6 takes one from the pax keys
 * GNU.sparse.size and GNU.sparse.realsize, and file_read_whole would then
 * copy the file's data into a buffer sized from it.
 */
static int
scan_check_size(const struct layer_scan *scan, struct archive_entry *entry,
                struct pg_error **err)
{
    if (!archive_entry_size_is_set(entry))
        return 0;
    if (archive_entry_size(entry) < 0) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s is not a valid tar stream: entry %llu has a "
                     "negative size",
                     scan->digest, (unsigned long long)scan->entries);
        return -1;
    }

    /*
     * NOTE: libarchive also lets a pax path record win over a GNU long
     * name record, where Go takes the GNU name; such an entry is listed
     * under a path that runtimes do not write.
     *
     * libarchive reads a regular file whose name ends in '/' as a
     * directory and skips none of its data, reading that data as the
     * next headers, while Go's archive/tar, which containerd and moby use,
     * unpacks it as a file and goes on after its data. The two would then
     * see different files, so a directory that claims data is rejected.
     */
    if (archive_entry_filetype(entry) == AE_IFDIR &&
        archive_entry_size(entry) > 0) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "layer %s is not a valid tar stream: entry %llu is a "
                     "directory with %lld bytes of data, which container "
                     "runtimes read as a file",
                     scan->digest, (unsigned long long)scan->entries,
                     (long long)archive_entry_size(entry));
        return -1;
    }
    return 0;
}

/* Records the entry whose header was just read, then reads its data. */
static int
scan_entry(struct layer_scan *scan, struct archive_entry *entry,
           struct pg_error **err)
{
    struct entry_names names;
    char *path = NULL;
    json_t *file;
    int rc = -1;

    entry_names_get(entry, &names);
    if (scan_check_entry(scan, &names, err) < 0 ||
        scan_check_size(scan, entry, err) < 0)
        return -1;

    path = path_normalize(names.path);
    file = path == NULL ? NULL : entry_to_json(entry, &names, path);
    if (file == NULL || json_array_append_new(scan->files, file) < 0) {
        scan_set_memory_error(scan, err);
        goto out;
    }

    if (scan_check_bytes(scan, err) < 0)
        goto out;
    if (entry_is_regular_file(entry, &names, path))
        rc = scan_file(scan, entry, path, err);
    else
        rc = scan_read_data(scan, err);

out:
    free(path);
    return rc;
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
 * Reads the next bytes of the layer from its source for libarchive.
 * On failure, keeps the source's error, which scan_set_archive_error
 * reports in place of libarchive's.
 */
static la_ssize_t
layer_source_read(struct archive *archive, void *arg, const void **buffer)
{
    struct layer_scan *scan = arg;
    ssize_t n = scan->source->read(scan->source->arg, scan->read_buffer,
                                   LAYER_READ_BLOCK_BYTES, &scan->source_error);

    if (n < 0 || n > LAYER_READ_BLOCK_BYTES) {
        pg_error_set(&scan->source_error, 502, PG_ERR_UNAVAILABLE,
                     "layer %s could not be read: its source failed "
                     "without naming a reason",
                     scan->digest);
        archive_set_error(archive, EIO, "%s", scan->source_error->message);
        return ARCHIVE_FATAL;
    }
    scan->source_bytes += (uint64_t)n;
    *buffer = scan->read_buffer;
    return n;
}

/*
 * Returns a reader for the tar formats (ustar, pax, GNU tar, which
 * archive_read_support_format_tar covers together) behind gzip, zstd or
 * no compression, reading from scan's source. Other archive formats are
 * not registered, so a zip or ISO image is rejected instead of listed.
 * gzip members may follow one another, as they do in eStargz layers.
 */
static struct archive *
layer_archive_open(struct layer_scan *scan, struct pg_error **err)
{
    struct archive *archive = archive_read_new();

    if (archive == NULL) {
        scan_set_memory_error(scan, err);
        return NULL;
    }

    /* Each call returns ARCHIVE_WARN when libarchive was built without
     * the library and would run an external program instead. bzip2 and
     * xz are read too, because moby and containers/storage detect them
     * from a layer's bytes whatever its media type states. */
    if (archive_read_support_format_tar(archive) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(archive) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(archive) != ARCHIVE_OK ||
        archive_read_support_filter_bzip2(archive) != ARCHIVE_OK ||
        archive_read_support_filter_xz(archive) != ARCHIVE_OK ||
        archive_read_support_filter_none(archive) != ARCHIVE_OK) {
        const char *reason = archive_error_string(archive);

        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "%s cannot read tar, gzip, zstd, bzip2 and xz by itself "
                     "(%s); install a libarchive built with zlib, libzstd, "
                     "libbz2 and liblzma",
                     archive_version_string(),
                     reason != NULL ? reason : "no reason given");
        archive_read_free(archive);
        return NULL;
    }

    /* scan_set_archive_error reads the error from scan->archive. */
    scan->archive = archive;
    if (archive_read_open(archive, scan, NULL, layer_source_read, NULL) !=
        ARCHIVE_OK) {
        scan_set_archive_error(scan, err);
        scan->archive = NULL;
        archive_read_free(archive);
        return NULL;
    }
    scan->archive = NULL;
    return archive;
}

/* The layer file of inspector_list_layer, read as a source. */
struct file_source {
    int fd;
    const char *digest;
};

static ssize_t
file_source_read(void *arg, void *buf, size_t len, struct pg_error **err)
{
    struct file_source *file = arg;
    char reason[128];
    ssize_t n;

    do {
        n = read(file->fd, buf, len);
    } while (n < 0 && errno == EINTR);

    /* The GNU strerror_r, which _GNU_SOURCE selects, is thread-safe. It
     * returns a pointer to the text, which may not be in reason. */
    if (n < 0)
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "layer %s could not be read from the blob store: %s",
                     file->digest, strerror_r(errno, reason, sizeof(reason)));
    return n;
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
                 const struct layer_scan *scan)
{
    int64_t bytes = archive_filter_bytes(scan->archive, 0);

    if (size < 0)
        size = (int64_t)scan->source_bytes;
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:O, s:O}", "digest", digest,
                     "media_type", media_type, "size", (json_int_t)size,
                     "entries", (json_int_t)scan->entries, "bytes",
                     (json_int_t)bytes, "files", scan->files, "findings",
                     scan->catalog.findings);
}

/* Rejects a media type that names no tar layer. */
static int
layer_check_media_type(const char *digest, const char *media_type,
                       struct pg_error **err)
{
    if (inspector_is_tar_layer(media_type))
        return 0;
    pg_error_set(err, 403, PG_ERR_DENIED,
                 "layer %s has media type %s, which is not a tar layer "
                 "media type",
                 digest, media_type == NULL ? "(none)" : media_type);
    return -1;
}

/* Allocates what a scan needs besides the archive. The dispatch table
 * of file_plan has room for LAYER_CATALOGERS_MAX catalogers. */
static int
scan_init(struct layer_scan *scan, struct pg_error **err)
{
    size_t n = 0;

    while (catalog_table[n] != NULL)
        n++;
    if (n > LAYER_CATALOGERS_MAX) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "catalog_table has %zu catalogers, more than "
                     "LAYER_CATALOGERS_MAX (%d) in inspector/layer.c",
                     n, LAYER_CATALOGERS_MAX);
        return -1;
    }

    scan->files = json_array();
    scan->catalog.findings = json_object();
    scan->read_buffer = malloc(LAYER_READ_BLOCK_BYTES);
    if (scan->files == NULL || scan->catalog.findings == NULL ||
        scan->read_buffer == NULL) {
        scan_set_memory_error(scan, err);
        return -1;
    }
    return 0;
}

static void
scan_release(struct layer_scan *scan)
{
    archive_read_free(scan->archive);
    json_decref(scan->files);
    json_decref(scan->catalog.findings);
    free(scan->content);
    free(scan->read_buffer);
    pg_error_free(scan->source_error);
}

json_t *
inspector_scan_layer(const struct inspector_source *source,
                     const char *digest, const char *media_type,
                     int64_t size, const struct inspector_options *options,
                     struct pg_error **err)
{
    struct layer_scan scan = {.digest = digest,
                              .limits = options,
                              .source = source,
                              .catalog = {.options = options,
                                          .layer_digest = digest}};
    json_t *result = NULL;

    if (layer_check_media_type(digest, media_type, err) < 0 ||
        scan_init(&scan, err) < 0)
        goto out;
    scan.archive = layer_archive_open(&scan, err);
    if (scan.archive == NULL)
        goto out;

    if (scan_entries(&scan, err) < 0)
        goto out;

    result = layer_result_new(digest, media_type, size, &scan);
    if (result == NULL)
        scan_set_memory_error(&scan, err);

out:
    scan_release(&scan);
    return result;
}

json_t *
inspector_list_layer(const char *path, const char *digest,
                     const char *media_type,
                     const struct inspector_options *options,
                     struct pg_error **err)
{
    struct file_source file = {.fd = -1, .digest = digest};
    struct inspector_source source = {.read = file_source_read,
                                       .arg = &file};
    int64_t size = 0;
    json_t *result;

    if (layer_check_media_type(digest, media_type, err) < 0)
        return NULL;
    file.fd = layer_file_open(path, digest, &size, err);
    if (file.fd < 0)
        return NULL;
    result =
        inspector_scan_layer(&source, digest, media_type, size, options, err);
    close(file.fd);
    return result;
}
