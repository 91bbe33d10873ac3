/*
 * The cache: a content-addressed blob store on disk and the LMDB records
 * that describe it.
 *
 * Layout under the cache directory:
 *   blobs/sha256/<first two hex>/<hex>   verified blobs and manifests
 *   blobs/sha512/<first two hex>/<hex>   the same for sha512 digests
 *   tmp/                                 blobs being written
 *   lmdb/                                the LMDB environment
 *   lock                                 locked while a process has the
 *                                        cache open
 *
 * A blob file is renamed into blobs/ only after its bytes hash to its
 * digest, so a file there counts as present even without an LMDB record
 * (a crash between the rename and the record leaves such a file).
 *
 * LMDB tables (named databases):
 *   blobs       digest -> size, last access time, media type
 *   tags        "<upstream>/<repository>:<tag>" -> digest, media type, time
 *   documents   "<manifest digest> <inspector version>" -> image document
 *   verdicts    "<manifest digest> <policy digest>" -> verdict
 *   allowed     "<blob digest> <policy digest>" -> manifest digest that
 *               allowed it
 *   lineage     "<chain id>" -> the image whose layers make up that chain
 *
 * Record encodings:
 *   blobs       24-byte header, then the media type without a terminator.
 *               Byte 0 is the format version (1), bytes 1-7 are zero,
 *               bytes 8-15 the size and bytes 16-23 the last access time
 *               (seconds since the epoch), both little-endian.
 *   tags        compact JSON {"digest", "media_type", "fetched"}
 *   documents   the document as compact JSON
 *   verdicts    the verdict as compact JSON
 *   allowed     the manifest digest as text, without a terminator
 *   lineage     compact JSON {"manifest_digest", "name"}
 * A key longer than LMDB's maximum key size (511 bytes in LMDB 0.9) is
 * stored as "sha256:" and the hex SHA-256 of the key. Only tag keys get
 * that long; such a key cannot clash with a tag key, which has a '/'.
 *
 * Threads: reads may run on any thread (the environment is opened with
 * MDB_NOTLS). Writes take LMDB's single writer lock, so the event loop
 * never calls a writing function; workers do. Every function may be called
 * from several threads at once: each call runs its own LMDB transaction,
 * and a struct cache does not change between cache_open and cache_close.
 *
 * Errors: disk and LMDB failures are 503 UNAVAILABLE and name the path. An
 * invalid digest is 400 DIGEST_INVALID and names the digest. A record that
 * cannot be decoded is 500 INTERNAL and names the record's key and table.
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

/* Maximum length of a stored media type, in bytes. RFC 6838 section 4.2
 * allows 127 bytes each for the type and the subtype, so 255 bytes fit any
 * media type without parameters. */
#define CACHE_MEDIA_TYPE_MAX 255

struct cache_blob_info {
    uint64_t size;
    time_t last_access;
    char media_type[CACHE_MEDIA_TYPE_MAX + 1]; /* empty when unknown */
};

struct cache_tag_record {
    char digest[136];
    char media_type[CACHE_MEDIA_TYPE_MAX + 1];
    time_t fetched; /* when the upstream last returned this tag */
};

/*
 * Opens or creates the cache under dir, with an LMDB map of map_size bytes.
 * Creates dir (not its parents) and the layout above, locks dir/lock so
 * that no other process uses the same cache, and removes leftover
 * temporary files from an earlier run. The caller frees the result with
 * cache_close(); writers and file descriptors must be finished first.
 */
struct cache *cache_open(const char *dir, uint64_t map_size,
                         struct pg_error **err);

/* Closes the LMDB environment and releases the lock; accepts NULL. */
void cache_close(struct cache *cache);

/*
 * Writes the path of a blob into buf. Returns 0, or -1 with buf set to ""
 * when digest is not valid or the path does not fit in size bytes.
 */
int cache_blob_path(const struct cache *cache, const char *digest, char *buf,
                    size_t size);

/*
 * Opens a verified blob for reading. Returns 1 with *fd and *info set,
 * 0 when the blob is not in the store (*fd is -1), -1 on error. The caller
 * closes fd. The size comes from the file. A blob without an LMDB record
 * gets the file's modification time as last access and an empty media
 * type. info may be NULL, which skips the LMDB read.
 */
int cache_blob_open(struct cache *cache, const char *digest, int *fd,
                    struct cache_blob_info *info, struct pg_error **err);

/*
 * Returns 1 when a verified blob is in the store, 0 when not, -1 on error.
 * Fills *info as cache_blob_open() does; info may be NULL.
 */
int cache_blob_stat(struct cache *cache, const char *digest,
                    struct cache_blob_info *info, struct pg_error **err);

/*
 * Starts writing a blob under a temporary name in tmp/. digest
 * ("sha256:..." or "sha512:...") is what the bytes must hash to.
 * media_type may be NULL; a longer one than CACHE_MEDIA_TYPE_MAX is a 502
 * UNAVAILABLE error. The writer belongs to one thread at a time, and the
 * cache must stay open until the writer is committed or aborted.
 */
struct cache_blob_writer *cache_blob_writer_new(struct cache *cache,
                                                const char *digest,
                                                const char *media_type,
                                                struct pg_error **err);

/*
 * Hashes and appends bytes. A failed write (ENOSPC...) is a 503
 * UNAVAILABLE error naming the file; after it the writer accepts only
 * cache_blob_writer_abort() or a commit, which fails.
 */
int cache_blob_writer_write(struct cache_blob_writer *writer,
                            const void *data, size_t len,
                            struct pg_error **err);

/* Returns the number of bytes written so far. */
uint64_t cache_blob_writer_size(const struct cache_blob_writer *writer);

/*
 * Opens the writer's temporary file read-only, so that the bytes written
 * so far can be read while more arrive. The descriptor stays valid after
 * the writer commits (the file is renamed) or aborts (the file is
 * deleted). Returns it, or -1 with a 503 UNAVAILABLE error. The caller
 * closes it.
 */
int cache_blob_writer_open_reader(const struct cache_blob_writer *writer,
                                  struct pg_error **err);

/*
 * Finishes the blob: when the bytes hash to the digest, syncs the file,
 * renames it into the store and records it in LMDB; otherwise deletes the
 * file and fails with 502 UNAVAILABLE naming both digests. The writer is
 * freed either way. Writes to LMDB: worker threads only.
 *
 * A blob that is already in the store is replaced by the identical new
 * file, and the call succeeds. When only the LMDB record fails, the
 * verified file stays in the store and the call fails. A record without a
 * media type keeps the one an earlier commit stored.
 */
int cache_blob_writer_commit(struct cache_blob_writer *writer,
                             struct pg_error **err);

/* Deletes the temporary file and frees the writer; accepts NULL. */
void cache_blob_writer_abort(struct cache_blob_writer *writer);

/*
 * Stores a manifest in the blob store with its media type, through a blob
 * writer: bytes that do not hash to digest fail as in
 * cache_blob_writer_commit(), and more than PG_MANIFEST_MAX_BYTES is a
 * 502 UNAVAILABLE error. Worker threads only.
 */
int cache_manifest_put(struct cache *cache, const char *digest,
                       const char *media_type, const void *bytes, size_t len,
                       struct pg_error **err);

/*
 * Reads a cached manifest into a malloc'ed buffer (*bytes, *len, with a
 * terminating NUL after the last byte) and its media type (malloc'ed
 * *media_type). The media type is "" when none was recorded, and the
 * caller decides what to send then. Returns 1, 0 when the blob is not in
 * the store, or -1; a blob over PG_MANIFEST_MAX_BYTES is a 404
 * MANIFEST_UNKNOWN error. The caller frees *bytes and *media_type.
 */
int cache_manifest_get(struct cache *cache, const char *digest, char **bytes,
                       size_t *len, char **media_type, struct pg_error **err);

/*
 * Records that upstream/repository:tag pointed at digest now. Workers.
 * upstream must not contain '/' and repository must not contain ':', so
 * that two different tags never share a key; both are 400 NAME_INVALID.
 */
int cache_tag_put(struct cache *cache, const char *upstream,
                  const char *repository, const char *tag,
                  const char *digest, const char *media_type,
                  struct pg_error **err);

/* Fills *record for upstream/repository:tag. Returns 1, 0 or -1. */
int cache_tag_get(struct cache *cache, const char *upstream,
                  const char *repository, const char *tag,
                  struct cache_tag_record *record, struct pg_error **err);

/*
 * Stores a JSON record (document or verdict) under a pair of keys. Workers.
 * The digests must be valid (else 400 DIGEST_INVALID). inspector_version
 * must be non-empty and contain no space (else 500 INTERNAL). The caller
 * keeps its reference to the JSON value.
 */
int cache_document_put(struct cache *cache, const char *manifest_digest,
                       const char *inspector_version, const json_t *document,
                       struct pg_error **err);

/*
 * Returns 1 with a new reference in *document, 0 or -1. The caller
 * releases it with json_decref().
 */
int cache_document_get(struct cache *cache, const char *manifest_digest,
                       const char *inspector_version, json_t **document,
                       struct pg_error **err);

/* As cache_document_put, keyed by manifest digest and policy digest. */
int cache_verdict_put(struct cache *cache, const char *manifest_digest,
                      const char *policy_digest, const json_t *verdict,
                      struct pg_error **err);

/* As cache_document_get; the caller releases *verdict with json_decref. */
int cache_verdict_get(struct cache *cache, const char *manifest_digest,
                      const char *policy_digest, json_t **verdict,
                      struct pg_error **err);

/*
 * Records that blob_digest belongs to manifest_digest, which policy
 * policy_digest allowed in scope ("<upstream>/<repository>"), so the blob
 * may be served from that repository. Blobs are scoped by repository as
 * registries scope them, so allowing an image in one repository opens no
 * blob in another. Workers.
 */
int cache_blob_allow(struct cache *cache, const char *blob_digest,
                     const char *policy_digest, const char *scope,
                     const char *manifest_digest, struct pg_error **err);

/* Returns 1 when an allowed image of scope contains the blob, 0 when none,
 * -1 on error. */
int cache_blob_allowed(struct cache *cache, const char *blob_digest,
                       const char *policy_digest, const char *scope,
                       struct pg_error **err);

/* Maximum length of the image name in a lineage record, in bytes. The
 * longest reference pullgate accepts, a registry host with a port, a
 * repository and a digest, is about 650 bytes. */
#define CACHE_LINEAGE_NAME_MAX 1024

/*
 * Records that the image manifest_digest, pulled as name (such as
 * "docker.io/library/debian:12", or ""), has exactly the layers whose
 * ChainID is chain_id, replacing an earlier record of that chain. The
 * gate computes it with inspector_chain_ids over the verified digests of
 * the layer blobs, not over the config's rootfs.diff_ids, which nothing
 * checks against the layers. An image whose own chain passes through chain_id
 * is built on that image. The digests must be valid (else 400
 * DIGEST_INVALID) and name at most CACHE_LINEAGE_NAME_MAX bytes (else 400
 * NAME_INVALID). Workers.
 */
int cache_lineage_put(struct cache *cache, const char *chain_id,
                      const char *manifest_digest, const char *name,
                      struct pg_error **err);

/*
 * Looks up the image recorded for chain_id and copies its manifest digest
 * and name into the caller's buffers, either of which may be NULL. Sizes
 * of PG_DIGEST_MAX + 1 and CACHE_LINEAGE_NAME_MAX + 1 bytes fit any
 * record. A smaller buffer that a record does not fit is a 500 INTERNAL
 * error. Returns 1, 0 or -1.
 */
int cache_lineage_get(struct cache *cache, const char *chain_id,
                      char *manifest_digest, size_t manifest_digest_size,
                      char *name, size_t name_size, struct pg_error **err);

/*
 * Updates a blob's last access time, or creates its record from the file
 * when it has none. Best effort, workers only: a failure is logged at
 * debug level and otherwise ignored.
 */
void cache_blob_touch(struct cache *cache, const char *digest);

#endif
