/*
 * Definitions shared by cache/cache.c (the LMDB side) and cache/blobstore.c
 * (the files on disk). Nothing outside cache/ includes this header, except
 * the unit tests.
 */
#ifndef PG_CACHE_INTERNAL_H
#define PG_CACHE_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "cache/cache.h"
#include "config/error.h"
#include "config/limits.h"

/* The LMDB named databases, in the order cache_table_names lists them. */
enum cache_table {
    CACHE_TABLE_BLOBS,
    CACHE_TABLE_TAGS,
    CACHE_TABLE_DOCUMENTS,
    CACHE_TABLE_VERDICTS,
    CACHE_TABLE_ALLOWED,
    CACHE_TABLE_LINEAGE,
    CACHE_TABLE_COUNT,
};

extern const char *const cache_table_names[CACHE_TABLE_COUNT];

/*
 * Maximum length of a record key before hashing. The longest valid key is a
 * tag key of about 650 bytes: a host name (253 bytes) with a port, a
 * repository (PG_NAME_MAX) and a tag (PG_TAG_MAX).
 */
#define CACHE_KEY_MAX 1024

/* Maximum length of a blob path below the cache directory:
 * "/blobs/sha512/xx/" and 128 hex digits. */
#define CACHE_BLOB_SUFFIX_MAX 145

/* Bytes of the fixed header of a blob record (see cache.h). */
#define CACHE_BLOB_RECORD_HEADER 24
#define CACHE_BLOB_RECORD_VERSION 1

/* Size of the buffer for the text of strerror_r(). */
#define CACHE_STRERROR_MAX 128

/* Size of the buffer for an untrusted value that pg_log_quote() escapes
 * into an error message. */
#define CACHE_QUOTE_MAX 192

struct cache {
    char *dir;   /* the cache directory, as given to cache_open() */
    int lock_fd; /* dir/lock, locked with flock() while open, or -1 */
    MDB_env *env;
    MDB_dbi tables[CACHE_TABLE_COUNT];
};

struct cache_blob_writer {
    struct cache *cache;
    char digest[PG_DIGEST_MAX + 1];
    char media_type[CACHE_MEDIA_TYPE_MAX + 1];

    /* The temporary file, "" once it was renamed into the store or
     * deleted, so that nothing unlinks a name another writer may reuse. */
    char temp_path[PATH_MAX];
    int fd; /* -1 once closed */
    EVP_MD_CTX *hash;
    uint64_t size;
    bool failed; /* a write failed, so only abort or a failing commit remain */
};

/* A digest split into its parts; hex points into the parsed string. */
struct cache_digest {
    const char *algorithm; /* "sha256" or "sha512", static */
    const char *hex;
    size_t hex_len;
    const EVP_MD *md;
};

/* blobstore.c */

/*
 * Checks that digest is "sha256:" and 64 lowercase hex digits or
 * "sha512:" and 128, and fills *parsed. Returns 0, or -1 with a 400
 * DIGEST_INVALID error naming the digest.
 */
int cache_digest_parse(const char *digest, struct cache_digest *parsed,
                       struct pg_error **err);

/* Creates path with mode 0700 unless it exists. Returns 1 when created,
 * 0 when it existed, -1 with a 503 error naming the path. */
int cache_make_dir(const char *path, struct pg_error **err);

/*
 * Creates the directories below cache->dir and removes the files left in
 * tmp/ by an earlier run. Call with the lock held. Returns 0 or -1.
 */
int cache_store_prepare(struct cache *cache, struct pg_error **err);

/* cache.c */

/* Writes len bytes as 2 * len lowercase hex digits and a NUL to out. */
void cache_hex_encode(const unsigned char *bytes, size_t len, char *out);

/* Returns the text for errnum, written to buf when not static. */
const char *cache_strerror(int errnum, char *buf, size_t size);

/*
 * Reads the blobs record of digest into *info. Returns 1 when found, 0 when
 * there is none, -1 on error.
 */
int cache_blob_record_get(struct cache *cache, const char *digest,
                          struct cache_blob_info *info, struct pg_error **err);

/*
 * Writes the blobs record of digest with size, the current time and
 * media_type (NULL or "" keeps the media type already recorded).
 */
int cache_blob_record_put(struct cache *cache, const char *digest,
                          uint64_t size, const char *media_type,
                          struct pg_error **err);

#endif
