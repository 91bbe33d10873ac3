/*
 * The cache: a content-addressed blob store on disk and the LMDB records
 * that describe it.
 *
 * Layout under the cache directory:
 *   blobs/sha256/<first two hex>/<hex>   verified blobs and manifests
 *   tmp/                                 blobs being written
 *   lmdb/                                the LMDB environment
 *
 * LMDB tables (named databases):
 *   blobs       digest -> size, last access time, media type
 *   tags        "<upstream>/<repository>:<tag>" -> digest, media type, time
 *   documents   "<manifest digest> <inspector version>" -> image document
 *   verdicts    "<manifest digest> <policy digest>" -> verdict
 *   allowed     "<blob digest> <policy digest>" -> manifest digest that
 *               allowed it
 *
 * Threads: reads may run on any thread (the environment is opened with
 * MDB_NOTLS). Writes take LMDB's single writer lock, so the event loop
 * never calls a writing function; workers do.
 *
 * Return convention for look-ups: 1 found, 0 not found, -1 error.
 */
#ifndef PG_CACHE_H
#define PG_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config/error.h"

struct cache;
struct cache_blob_writer;

struct cache_blob_info {
    uint64_t size;
    time_t last_access;
    char media_type[256]; /* empty when unknown */
};

struct cache_tag_record {
    char digest[136];
    char media_type[256];
    time_t fetched; /* when the upstream last returned this tag */
};

/*
 * Opens or creates the cache under dir, with an LMDB map of map_size bytes.
 * Leftover temporary files from an earlier run are removed.
 */
struct cache *cache_open(const char *dir, uint64_t map_size,
                         struct pg_error **err);

void cache_close(struct cache *cache);

/* Writes the path of a blob into buf ("" when digest is not valid). */
int cache_blob_path(const struct cache *cache, const char *digest, char *buf,
                    size_t size);

/*
 * Opens a verified blob for reading. Returns 1 with *fd and *info set,
 * 0 when the blob is not in the store, -1 on error. The caller closes fd.
 */
int cache_blob_open(struct cache *cache, const char *digest, int *fd,
                    struct cache_blob_info *info, struct pg_error **err);

/* Returns 1 when a verified blob is in the store, 0 when not, -1 on error. */
int cache_blob_stat(struct cache *cache, const char *digest,
                    struct cache_blob_info *info, struct pg_error **err);

/*
 * Starts writing a blob under a temporary name. digest ("sha256:..." or
 * "sha512:...") is what the bytes must hash to. media_type may be NULL.
 * The writer belongs to one thread at a time.
 */
struct cache_blob_writer *cache_blob_writer_new(struct cache *cache,
                                                const char *digest,
                                                const char *media_type,
                                                struct pg_error **err);

/* Hashes and appends bytes. */
int cache_blob_writer_write(struct cache_blob_writer *writer,
                            const void *data, size_t len,
                            struct pg_error **err);

uint64_t cache_blob_writer_size(const struct cache_blob_writer *writer);

/*
 * Finishes the blob: when the bytes hash to the digest, syncs the file,
 * renames it into the store and records it in LMDB; otherwise deletes the
 * file and fails with 502 UNAVAILABLE naming both digests. The writer is
 * freed either way. Writes to LMDB: worker threads only.
 */
int cache_blob_writer_commit(struct cache_blob_writer *writer,
                             struct pg_error **err);

/* Deletes the temporary file and frees the writer; accepts NULL. */
void cache_blob_writer_abort(struct cache_blob_writer *writer);

/*
 * Stores a manifest (already verified by the caller against digest) in the
 * blob store with its media type. Worker threads only.
 */
int cache_manifest_put(struct cache *cache, const char *digest,
                       const char *media_type, const void *bytes, size_t len,
                       struct pg_error **err);

/*
 * Reads a cached manifest into a malloc'ed buffer (*bytes, *len) and its
 * media type (malloc'ed *media_type). Returns 1, 0 or -1.
 */
int cache_manifest_get(struct cache *cache, const char *digest, char **bytes,
                       size_t *len, char **media_type, struct pg_error **err);

/* Records that upstream/repository:tag pointed at digest now. Workers. */
int cache_tag_put(struct cache *cache, const char *upstream,
                  const char *repository, const char *tag,
                  const char *digest, const char *media_type,
                  struct pg_error **err);

int cache_tag_get(struct cache *cache, const char *upstream,
                  const char *repository, const char *tag,
                  struct cache_tag_record *record, struct pg_error **err);

/* Stores a JSON record (document or verdict) under a pair of keys. Workers. */
int cache_document_put(struct cache *cache, const char *manifest_digest,
                       const char *inspector_version, const json_t *document,
                       struct pg_error **err);

/* Returns 1 with a new reference in *document, 0 or -1. */
int cache_document_get(struct cache *cache, const char *manifest_digest,
                       const char *inspector_version, json_t **document,
                       struct pg_error **err);

int cache_verdict_put(struct cache *cache, const char *manifest_digest,
                      const char *policy_digest, const json_t *verdict,
                      struct pg_error **err);

int cache_verdict_get(struct cache *cache, const char *manifest_digest,
                      const char *policy_digest, json_t **verdict,
                      struct pg_error **err);

/*
 * Records that blob_digest belongs to manifest_digest, which policy
 * policy_digest allowed, so the blob may be served. Workers.
 */
int cache_blob_allow(struct cache *cache, const char *blob_digest,
                     const char *policy_digest, const char *manifest_digest,
                     struct pg_error **err);

/* Returns 1 when some allowed image contains the blob, 0 when none, -1. */
int cache_blob_allowed(struct cache *cache, const char *blob_digest,
                       const char *policy_digest, struct pg_error **err);

/* Updates a blob's last access time; best effort, workers only. */
void cache_blob_touch(struct cache *cache, const char *digest);

#endif
