/*
 * The content-addressed blob store: digests, blob paths, the verified
 * writer that renames a temporary file into place only after its bytes
 * hash to the digest, and reads of stored blobs and manifests.
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cache/cache_internal.h"
#include "config/limits.h"
#include "config/log.h"

struct digest_algorithm {
    const char *name;
    size_t hex_len;
    const EVP_MD *(*md)(void);
};

static const struct digest_algorithm digest_algorithms[] = {
    {"sha256", 64, EVP_sha256},
    {"sha512", 128, EVP_sha512},
};

static bool
is_lower_hex(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

int
cache_digest_parse(const char *digest, struct cache_digest *parsed,
                   struct pg_error **err)
{
    const char *colon = digest == NULL ? NULL : strchr(digest, ':');
    char quoted[CACHE_QUOTE_MAX];

    size_t count = sizeof(digest_algorithms) / sizeof(digest_algorithms[0]);

    for (size_t i = 0; colon != NULL && i < count; i++) {
        const struct digest_algorithm *alg = &digest_algorithms[i];
        size_t name_len = strlen(alg->name);
        const char *hex = colon + 1;

        if ((size_t)(colon - digest) != name_len ||
            memcmp(digest, alg->name, name_len) != 0)
            continue;
        if (strnlen(hex, alg->hex_len + 1) != alg->hex_len ||
            !is_lower_hex(hex, alg->hex_len))
            break;
        parsed->algorithm = alg->name;
        parsed->hex = hex;
        parsed->hex_len = alg->hex_len;
        parsed->md = alg->md();
        return 0;
    }

    pg_error_set(err, 400, PG_ERR_DIGEST_INVALID,
                 "invalid digest %s: expected \"sha256:\" and 64 lowercase "
                 "hex digits, or \"sha512:\" and 128",
                 pg_log_quote(quoted, sizeof(quoted), digest));
    return -1;
}

int
cache_blob_path(const struct cache *cache, const char *digest, char *buf,
                size_t size)
{
    struct cache_digest parsed;
    int n;

    if (size == 0)
        return -1;
    buf[0] = '\0';
    if (cache_digest_parse(digest, &parsed, NULL) < 0)
        return -1;

    n = snprintf(buf, size, "%s/blobs/%s/%.2s/%s", cache->dir, parsed.algorithm,
                 parsed.hex, parsed.hex);
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

int
cache_make_dir(const char *path, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];

    if (mkdir(path, 0700) == 0)
        return 1;
    if (errno == EEXIST)
        return 0;

    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "cannot create directory %s: %s; check that its parent "
                 "exists and that pullgate may write there",
                 path, cache_strerror(errno, reason, sizeof(reason)));
    return -1;
}

/* Creates dir/name; the caller checked that the cache path fits. */
static int
make_cache_subdir(const struct cache *cache, const char *name,
                  struct pg_error **err)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", cache->dir, name);
    return cache_make_dir(path, err) < 0 ? -1 : 0;
}

/*
 * Removes the files in tmp/. They are blobs an earlier run did not finish,
 * so none of them was verified. Subdirectories are not ours and stay.
 */
static int
remove_temp_files(const struct cache *cache, struct pg_error **err)
{
    char path[PATH_MAX];
    char reason[CACHE_STRERROR_MAX];
    struct dirent *entry;
    DIR *dir;
    int removed = 0;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/tmp", cache->dir);
    dir = opendir(path);
    if (dir == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot read directory %s: %s; check its permissions",
                     path, cache_strerror(errno, reason, sizeof(reason)));
        goto out;
    }

    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(dir), entry->d_name, 0) == 0) {
            removed++;
            continue;
        }
        if (errno == ENOENT || errno == EISDIR)
            continue;
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot remove leftover file %s/%s: %s; remove it by "
                     "hand or fix the permissions of %s",
                     path, entry->d_name,
                     cache_strerror(errno, reason, sizeof(reason)), path);
        goto out;
    }
    rc = 0;

    if (removed > 0)
        pg_log(PG_LOG_INFO, "cache_temp_files_removed", "dir=%s count=%d", path,
               removed);

out:
    if (dir != NULL)
        closedir(dir);
    return rc;
}

int
cache_store_prepare(struct cache *cache, struct pg_error **err)
{
    static const char *const subdirs[] = {
        "tmp", "lmdb", "blobs", "blobs/sha256", "blobs/sha512",
    };

    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if (make_cache_subdir(cache, subdirs[i], err) < 0)
            return -1;
    }
    return remove_temp_files(cache, err);
}

/* Writes all of data to fd, retrying short writes and EINTR. */
static int
write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Reads exactly len bytes from fd. Returns 0, or -1 with errno set. A file
 * that ends early sets EIO.
 */
static int
read_all(int fd, unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fsyncs a directory so that a rename or a new entry in it is durable. */
static int
sync_dir(const char *path, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];
    int fd;
    int rc = -1;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot sync directory %s: %s; check the file system",
                     path, cache_strerror(errno, reason, sizeof(reason)));
        goto out;
    }
    rc = 0;

out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int
writer_start(struct cache_blob_writer *writer,
             const struct cache_digest *parsed, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];

    writer->hash = EVP_MD_CTX_new();
    if (writer->hash == NULL ||
        EVP_DigestInit_ex(writer->hash, parsed->md, NULL) != 1) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "OpenSSL cannot start a %s hash; check the OpenSSL "
                     "installation and free memory",
                     parsed->algorithm);
        return -1;
    }

    snprintf(writer->temp_path, sizeof(writer->temp_path), "%s/tmp/blob-XXXXXX",
             writer->cache->dir);
    writer->fd = mkostemp(writer->temp_path, O_CLOEXEC);
    if (writer->fd < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot create a temporary file %s: %s; check free "
                     "space and permissions under %s/tmp",
                     writer->temp_path,
                     cache_strerror(errno, reason, sizeof(reason)),
                     writer->cache->dir);
        writer->temp_path[0] = '\0';
        return -1;
    }
    return 0;
}

struct cache_blob_writer *
cache_blob_writer_new(struct cache *cache, const char *digest,
                      const char *media_type, struct pg_error **err)
{
    struct cache_blob_writer *writer = NULL;
    struct cache_digest parsed;
    size_t media_len = media_type == NULL ? 0 : strlen(media_type);

    if (cache_digest_parse(digest, &parsed, err) < 0)
        return NULL;
    if (media_len > CACHE_MEDIA_TYPE_MAX) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "media type of blob %s is %zu bytes, longer than the "
                     "%d bytes the cache stores; nothing was cached",
                     digest, media_len, CACHE_MEDIA_TYPE_MAX);
        return NULL;
    }

    writer = calloc(1, sizeof(*writer));
    if (writer == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory for a blob writer; retry later");
        return NULL;
    }
    writer->cache = cache;
    writer->fd = -1;
    memcpy(writer->digest, digest, strlen(digest) + 1);
    memcpy(writer->media_type, media_type == NULL ? "" : media_type,
           media_len + 1);

    if (writer_start(writer, &parsed, err) < 0) {
        cache_blob_writer_abort(writer);
        return NULL;
    }
    return writer;
}

int
cache_blob_writer_write(struct cache_blob_writer *writer, const void *data,
                        size_t len, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];

    if (writer->failed) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "blob writer for %s failed earlier and accepts only "
                     "an abort",
                     writer->digest);
        return -1;
    }

    if (EVP_DigestUpdate(writer->hash, data, len) != 1) {
        writer->failed = true;
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "OpenSSL failed to hash blob %s; retry later",
                     writer->digest);
        return -1;
    }

    if (write_all(writer->fd, data, len) < 0) {
        writer->failed = true;
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot write %s: %s; check free space and permissions "
                     "under %s",
                     writer->temp_path,
                     cache_strerror(errno, reason, sizeof(reason)),
                     writer->cache->dir);
        return -1;
    }

    writer->size += len;
    return 0;
}

uint64_t
cache_blob_writer_size(const struct cache_blob_writer *writer)
{
    return writer->size;
}

int
cache_blob_writer_open_reader(const struct cache_blob_writer *writer,
                              struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];
    int fd = -1;

    /* Only this writer's owner unlinks or renames the temporary file, so
     * the name still refers to the file it writes. */
    if (writer->temp_path[0] != '\0')
        fd = open(writer->temp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot open %s for reading: %s; check permissions "
                     "under %s/tmp",
                     writer->temp_path,
                     cache_strerror(errno, reason, sizeof(reason)),
                     writer->cache->dir);
    return fd;
}

/* Compares the hash of the bytes written with the expected digest. */
static int
writer_verify(struct cache_blob_writer *writer, struct pg_error **err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char actual[EVP_MAX_MD_SIZE * 2 + 1];
    unsigned int md_len = 0;
    struct cache_digest parsed;

    if (cache_digest_parse(writer->digest, &parsed, err) < 0)
        return -1;
    if (EVP_DigestFinal_ex(writer->hash, md, &md_len) != 1) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "OpenSSL failed to finish the hash of blob %s; retry "
                     "later",
                     writer->digest);
        return -1;
    }

    cache_hex_encode(md, md_len, actual);
    if (strcmp(actual, parsed.hex) != 0) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "bytes hash to %s:%s, not the expected %s; nothing was "
                     "cached",
                     parsed.algorithm, actual, writer->digest);
        return -1;
    }
    return 0;
}

/* Flushes the file to disk and closes it, before the rename publishes it. */
static int
writer_sync(struct cache_blob_writer *writer, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];
    int fd = writer->fd;

    writer->fd = -1;
    if (fsync(fd) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        goto fail;
    }
    if (close(fd) < 0)
        goto fail;
    return 0;

fail:
    pg_error_set(
        err, 503, PG_ERR_UNAVAILABLE,
        "cannot sync %s: %s; check free space under %s", writer->temp_path,
        cache_strerror(errno, reason, sizeof(reason)), writer->cache->dir);
    return -1;
}

/*
 * Creates blobs/<algorithm>/<two hex>/ when missing, renames the file into
 * it and syncs the directories that changed.
 */
static int
writer_install(struct cache_blob_writer *writer, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];
    char path[PATH_MAX];
    char dir[PATH_MAX];
    char *slash;
    int created;

    if (cache_blob_path(writer->cache, writer->digest, path, sizeof(path)) <
        0) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "blob path for %s under %s is too long", writer->digest,
                     writer->cache->dir);
        return -1;
    }
    memcpy(dir, path, sizeof(dir));
    slash = strrchr(dir, '/');
    *slash = '\0';

    created = cache_make_dir(dir, err);
    if (created < 0)
        return -1;

    if (rename(writer->temp_path, path) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot rename %s to %s: %s; check the permissions of %s",
                     writer->temp_path, path,
                     cache_strerror(errno, reason, sizeof(reason)), dir);
        return -1;
    }
    writer->temp_path[0] = '\0';

    if (sync_dir(dir, err) < 0)
        return -1;
    if (created) {
        /* The new directory's own entry lives in the algorithm directory. */
        slash = strrchr(dir, '/');
        *slash = '\0';
        return sync_dir(dir, err);
    }
    return 0;
}

int
cache_blob_writer_commit(struct cache_blob_writer *writer,
                         struct pg_error **err)
{
    int rc = -1;

    if (writer->failed) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "blob %s was not cached because an earlier write "
                     "failed",
                     writer->digest);
        goto out;
    }

    if (writer_verify(writer, err) < 0)
        goto out;

    if (writer_sync(writer, err) < 0)
        goto out;

    if (writer_install(writer, err) < 0)
        goto out;

    if (cache_blob_record_put(writer->cache, writer->digest, writer->size,
                              writer->media_type, err) < 0)
        goto out;
    rc = 0;

out:
    cache_blob_writer_abort(writer);
    return rc;
}

void
cache_blob_writer_abort(struct cache_blob_writer *writer)
{
    if (writer == NULL)
        return;

    if (writer->fd >= 0)
        close(writer->fd);
    if (writer->temp_path[0] != '\0')
        unlink(writer->temp_path);
    EVP_MD_CTX_free(writer->hash);
    free(writer);
}

/*
 * Fills *info from the file's status and, when there is one, the blob's
 * LMDB record. The file is the authority on the size.
 */
static int
fill_blob_info(struct cache *cache, const char *digest, const struct stat *st,
               struct cache_blob_info *info, struct pg_error **err)
{
    struct cache_blob_info record;
    int found;

    memset(info, 0, sizeof(*info));
    info->size = (uint64_t)st->st_size;
    info->last_access = st->st_mtime;

    found = cache_blob_record_get(cache, digest, &record, err);
    if (found < 0)
        return -1;
    if (found) {
        info->last_access = record.last_access;
        memcpy(info->media_type, record.media_type, sizeof(info->media_type));
    }
    return 0;
}

/*
 * Returns true when the blob has an LMDB record whose size differs from
 * the file's, or when the record cannot be read (with *err set).
 */
static bool
size_differs_from_record(struct cache *cache, const char *digest,
                         const struct stat *st, struct pg_error **err)
{
    struct cache_blob_info record;
    int found = cache_blob_record_get(cache, digest, &record, err);

    if (found < 0)
        return true;
    if (found == 1 && record.size != (uint64_t)st->st_size) {
        pg_log(PG_LOG_WARN, "blob_size_mismatch",
               "digest=%s file_bytes=%lld record_bytes=%llu", digest,
               (long long)st->st_size, (unsigned long long)record.size);
        return true;
    }
    return false;
}

/*
 * Looks up a blob file. With fd non-NULL, opens it and leaves it open in
 * *fd on success. With info NULL, skips the LMDB record. Returns 1, 0 when
 * there is no file, or -1.
 */
static int
find_blob(struct cache *cache, const char *digest, int *fd,
          struct cache_blob_info *info, struct pg_error **err)
{
    char path[PATH_MAX];
    char reason[CACHE_STRERROR_MAX];
    struct cache_digest parsed;
    struct stat st;
    int file = -1;
    int status;
    int rc = -1;

    if (cache_digest_parse(digest, &parsed, err) < 0)
        goto out;
    if (cache_blob_path(cache, digest, path, sizeof(path)) < 0) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "blob path for %s under %s is too long", digest,
                     cache->dir);
        goto out;
    }

    if (fd != NULL) {
        file = open(path, O_RDONLY | O_CLOEXEC);
        status = file < 0 ? -1 : fstat(file, &st);
    } else {
        status = stat(path, &st);
    }
    if (status < 0 && errno == ENOENT) {
        rc = 0;
        goto out;
    }
    if (status < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "cannot open %s: %s", path,
                     cache_strerror(errno, reason, sizeof(reason)));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "%s is not a regular file; remove it", path);
        goto out;
    }

    /* A file whose size no longer matches its record was changed after
     * it was verified (truncated by a full disk or by hand). It counts as
     * absent, so that a fetch replaces it, and is never served. */
    if (size_differs_from_record(cache, digest, &st, err)) {
        rc = *err != NULL ? -1 : 0;
        goto out;
    }
    if (info != NULL && fill_blob_info(cache, digest, &st, info, err) < 0)
        goto out;
    rc = 1;

out:
    if (rc == 1 && fd != NULL) {
        *fd = file;
        file = -1;
    }
    if (file >= 0)
        close(file);
    return rc;
}

int
cache_blob_open(struct cache *cache, const char *digest, int *fd,
                struct cache_blob_info *info, struct pg_error **err)
{
    *fd = -1;
    return find_blob(cache, digest, fd, info, err);
}

int
cache_blob_stat(struct cache *cache, const char *digest,
                struct cache_blob_info *info, struct pg_error **err)
{
    return find_blob(cache, digest, NULL, info, err);
}

int
cache_manifest_put(struct cache *cache, const char *digest,
                   const char *media_type, const void *bytes, size_t len,
                   struct pg_error **err)
{
    struct cache_blob_writer *writer;
    struct cache_digest parsed;

    if (cache_digest_parse(digest, &parsed, err) < 0)
        return -1;
    if (len > PG_MANIFEST_MAX_BYTES) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "manifest %s is %zu bytes, over the limit of %u; "
                     "nothing was cached",
                     digest, len, PG_MANIFEST_MAX_BYTES);
        return -1;
    }

    writer = cache_blob_writer_new(cache, digest, media_type, err);
    if (writer == NULL)
        return -1;
    if (cache_blob_writer_write(writer, bytes, len, err) < 0) {
        cache_blob_writer_abort(writer);
        return -1;
    }
    return cache_blob_writer_commit(writer, err);
}

/* Reads the whole of a manifest file of size bytes into a new buffer. */
static char *
read_manifest(struct cache *cache, const char *digest, int fd, uint64_t size,
              struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];
    char *bytes;

    if (size > PG_MANIFEST_MAX_BYTES) {
        pg_error_set(err, 404, PG_ERR_MANIFEST_UNKNOWN,
                     "blob %s in the cache is %llu bytes, over the "
                     "manifest limit of %u, so it is not a manifest",
                     digest, (unsigned long long)size, PG_MANIFEST_MAX_BYTES);
        return NULL;
    }

    bytes = malloc((size_t)size + 1);
    if (bytes == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory for manifest %s; retry later", digest);
        return NULL;
    }
    if (read_all(fd, (unsigned char *)bytes, (size_t)size) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot read manifest %s from %s: %s", digest, cache->dir,
                     cache_strerror(errno, reason, sizeof(reason)));
        free(bytes);
        return NULL;
    }
    bytes[size] = '\0';
    return bytes;
}

int
cache_manifest_get(struct cache *cache, const char *digest, char **bytes,
                   size_t *len, char **media_type, struct pg_error **err)
{
    struct cache_blob_info info;
    char *data = NULL;
    char *type = NULL;
    int fd = -1;
    int found;
    int rc = -1;

    found = cache_blob_open(cache, digest, &fd, &info, err);
    if (found <= 0) {
        rc = found;
        goto out;
    }

    data = read_manifest(cache, digest, fd, info.size, err);
    if (data == NULL)
        goto out;

    type = strdup(info.media_type);
    if (type == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory for manifest %s; retry later", digest);
        goto out;
    }

    *bytes = data;
    *len = (size_t)info.size;
    *media_type = type;
    data = NULL;
    type = NULL;
    rc = 1;

out:
    free(type);
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}
