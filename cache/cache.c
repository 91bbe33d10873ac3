/*
 * The LMDB side of the cache: opening the environment and its tables,
 * record keys, and the records of blobs, tags, documents, verdicts,
 * allowed blobs and image lineage. The record encodings are described in
 * cache.h.
 */
#include "cache/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>
#include <openssl/evp.h>

#include "cache/cache_internal.h"
#include "config/limits.h"
#include "config/log.h"

const char *const cache_table_names[CACHE_TABLE_COUNT] = {
    "blobs", "tags", "documents", "verdicts", "allowed", "lineage",
};

/*
 * Decodes one record value into arg. It runs inside the read transaction
 * that found the value, because the value is valid only until then.
 */
typedef int (*record_decode_fn)(const MDB_val *value, void *arg,
                                struct pg_error **err);

void
cache_hex_encode(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
}

const char *
cache_strerror(int errnum, char *buf, size_t size)
{
    /* The GNU strerror_r, which _GNU_SOURCE selects, returns the text. */
    return strerror_r(errnum, buf, size);
}

/* Sets an error for an LMDB return code. Callers prefix the operation. */
static void
set_lmdb_error(const struct cache *cache, int rc, struct pg_error **err)
{
    char reason[CACHE_STRERROR_MAX];
    MDB_envinfo info = {0};

    if (rc == MDB_MAP_FULL) {
        mdb_env_info(cache->env, &info);
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "the LMDB map in %s/lmdb is full at %zu MiB; raise "
                     "lmdb_map_size_mib in the configuration and restart "
                     "pullgate",
                     cache->dir, info.me_mapsize / (1024 * 1024));
        return;
    }
    if (rc == MDB_READERS_FULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "all LMDB reader slots of %s/lmdb are in use; retry "
                     "later",
                     cache->dir);
        return;
    }

    /* mdb_strerror() passes positive codes to strerror(), which is not
     * thread-safe, so those go through strerror_r(). */
    pg_error_set(
        err, 503, PG_ERR_UNAVAILABLE, "LMDB in %s/lmdb: %s", cache->dir,
        rc > 0 ? cache_strerror(rc, reason, sizeof(reason)) : mdb_strerror(rc));
}

/* Replaces a key longer than LMDB accepts with "sha256:" and its hash. */
static int
hash_long_key(char *key, size_t len, struct pg_error **err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(key, len, md, &md_len, EVP_sha256(), NULL) != 1) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "OpenSSL failed to hash a cache key; retry later");
        return -1;
    }
    memcpy(key, "sha256:", 7);
    cache_hex_encode(md, md_len, key + 7);
    return 0;
}

/* Joins parts into key (CACHE_KEY_MAX + 1 bytes), then hashes long keys. */
static int
build_key(const struct cache *cache, const char *const parts[], size_t count,
          char *key, struct pg_error **err)
{
    char quoted[48];
    size_t len = 0;

    for (size_t i = 0; i < count; i++) {
        size_t part_len = strlen(parts[i]);

        if (part_len > CACHE_KEY_MAX - len) {
            pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                         "cache key starting with %s is over the maximum "
                         "of %d bytes; use a shorter name or tag",
                         pg_log_quote(quoted, sizeof(quoted), parts[0]),
                         CACHE_KEY_MAX);
            return -1;
        }
        memcpy(key + len, parts[i], part_len);
        len += part_len;
    }
    key[len] = '\0';

    if (len > (size_t)mdb_env_get_maxkeysize(cache->env))
        return hash_long_key(key, len, err);
    return 0;
}

/* Sets the error for a record that cannot be decoded, naming the fix. */
static void
set_damaged_error(const struct cache *cache, enum cache_table table,
                  const char *key, const struct pg_error *detail,
                  struct pg_error **err)
{
    char quoted[CACHE_QUOTE_MAX];

    pg_error_set(err, 500, PG_ERR_INTERNAL,
                 "record %s in LMDB table %s is damaged (%s); stop pullgate "
                 "and remove %s/lmdb to start with empty records (blobs "
                 "are kept)",
                 pg_log_quote(quoted, sizeof(quoted), key),
                 cache_table_names[table],
                 detail == NULL ? "no detail" : detail->message, cache->dir);
}

/*
 * Looks up key in table and, when decode is not NULL, decodes the value
 * into arg. Returns 1 when found, 0 when not, -1 on error.
 */
static int
record_get(struct cache *cache, enum cache_table table, const char *key,
           record_decode_fn decode, void *arg, struct pg_error **err)
{
    struct pg_error *detail = NULL;
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v;
    MDB_txn *txn = NULL;
    int found = -1;
    int rc;

    rc = mdb_txn_begin(cache->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_get(txn, cache->tables[table], &k, &v);
    if (rc == MDB_NOTFOUND) {
        found = 0;
        goto out;
    }
    if (rc != 0) {
        set_lmdb_error(cache, rc, err);
        pg_error_prefix(err, "cannot read LMDB table %s",
                        cache_table_names[table]);
        goto out;
    }

    if (decode != NULL && decode(&v, arg, &detail) < 0) {
        set_damaged_error(cache, table, key, detail, err);
        goto out;
    }
    found = 1;

out:
    pg_error_free(detail);
    if (txn != NULL)
        mdb_txn_abort(txn);
    return found;
}

/* Stores value under key in table, replacing any earlier value. */
static int
record_put(struct cache *cache, enum cache_table table, const char *key,
           const void *value, size_t len, struct pg_error **err)
{
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {len, (void *)value};
    MDB_txn *txn = NULL;
    int rc;

    rc = mdb_txn_begin(cache->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_put(txn, cache->tables[table], &k, &v, 0);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }

    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc != 0) {
        set_lmdb_error(cache, rc, err);
        pg_error_prefix(err, "cannot write LMDB table %s",
                        cache_table_names[table]);
        return -1;
    }
    return 0;
}

static void
put_le64(unsigned char *out, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t
get_le64(const unsigned char *in)
{
    uint64_t value = 0;

    for (int i = 0; i < 8; i++)
        value |= (uint64_t)in[i] << (8 * i);
    return value;
}

/* Encodes a blob record into out, which has room for the header and
 * CACHE_MEDIA_TYPE_MAX bytes. Returns its length. */
static size_t
blob_record_encode(const struct cache_blob_info *info, unsigned char *out)
{
    size_t media_len = strnlen(info->media_type, CACHE_MEDIA_TYPE_MAX);

    memset(out, 0, CACHE_BLOB_RECORD_HEADER);
    out[0] = CACHE_BLOB_RECORD_VERSION;
    put_le64(out + 8, info->size);
    put_le64(out + 16, (uint64_t)(int64_t)info->last_access);
    memcpy(out + CACHE_BLOB_RECORD_HEADER, info->media_type, media_len);
    return CACHE_BLOB_RECORD_HEADER + media_len;
}

static int
blob_record_decode(const MDB_val *value, void *arg, struct pg_error **err)
{
    struct cache_blob_info *info = arg;
    const unsigned char *data = value->mv_data;
    size_t media_len;

    if (value->mv_size < CACHE_BLOB_RECORD_HEADER ||
        value->mv_size > CACHE_BLOB_RECORD_HEADER + CACHE_MEDIA_TYPE_MAX ||
        data[0] != CACHE_BLOB_RECORD_VERSION) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "%zu bytes with format version %u, expected version "
                     "%d and %d to %d bytes",
                     value->mv_size,
                     value->mv_size > 0 ? (unsigned)data[0] : 0u,
                     CACHE_BLOB_RECORD_VERSION, CACHE_BLOB_RECORD_HEADER,
                     CACHE_BLOB_RECORD_HEADER + CACHE_MEDIA_TYPE_MAX);
        return -1;
    }

    media_len = value->mv_size - CACHE_BLOB_RECORD_HEADER;
    info->size = get_le64(data + 8);
    info->last_access = (time_t)(int64_t)get_le64(data + 16);
    memcpy(info->media_type, data + CACHE_BLOB_RECORD_HEADER, media_len);
    info->media_type[media_len] = '\0';
    return 0;
}

int
cache_blob_record_get(struct cache *cache, const char *digest,
                      struct cache_blob_info *info, struct pg_error **err)
{
    return record_get(cache, CACHE_TABLE_BLOBS, digest, blob_record_decode,
                      info, err);
}

/*
 * Merges fresh into the blob record of digest in one write transaction,
 * so that two threads updating the same record cannot lose a media type.
 * A touch keeps the recorded size and media type and sets only the time.
 * Otherwise an empty media type in fresh keeps the recorded one. A record
 * that cannot be decoded is replaced by fresh.
 */
static int
blob_record_update(struct cache *cache, const char *digest,
                   const struct cache_blob_info *fresh, bool touch,
                   struct pg_error **err)
{
    unsigned char buf[CACHE_BLOB_RECORD_HEADER + CACHE_MEDIA_TYPE_MAX];
    struct cache_blob_info merged = *fresh;
    struct cache_blob_info old;
    MDB_val k = {strlen(digest), (void *)digest};
    MDB_val v;
    MDB_txn *txn = NULL;
    int rc;

    rc = mdb_txn_begin(cache->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_get(txn, cache->tables[CACHE_TABLE_BLOBS], &k, &v);
    if (rc == 0 && blob_record_decode(&v, &old, NULL) == 0) {
        if (touch)
            merged.size = old.size;
        if (touch || merged.media_type[0] == '\0')
            memcpy(merged.media_type, old.media_type,
                   sizeof(merged.media_type));
    }

    if (rc == 0 || rc == MDB_NOTFOUND) {
        v.mv_data = buf;
        v.mv_size = blob_record_encode(&merged, buf);
        rc = mdb_put(txn, cache->tables[CACHE_TABLE_BLOBS], &k, &v, 0);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }

    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc != 0) {
        set_lmdb_error(cache, rc, err);
        pg_error_prefix(err, "cannot record blob %s", digest);
        return -1;
    }
    return 0;
}

int
cache_blob_record_put(struct cache *cache, const char *digest, uint64_t size,
                      const char *media_type, struct pg_error **err)
{
    struct cache_blob_info fresh = {.size = size, .last_access = time(NULL)};

    if (media_type != NULL)
        snprintf(fresh.media_type, sizeof(fresh.media_type), "%s", media_type);
    return blob_record_update(cache, digest, &fresh, false, err);
}

void
cache_blob_touch(struct cache *cache, const char *digest)
{
    char path[PATH_MAX];
    char quoted[CACHE_QUOTE_MAX];
    struct cache_blob_info fresh = {.last_access = time(NULL)};
    struct pg_error *err = NULL;
    struct stat st;

    /* A blob that is not in the store has nothing to touch. */
    if (cache_blob_path(cache, digest, path, sizeof(path)) < 0 ||
        stat(path, &st) < 0)
        return;
    fresh.size = (uint64_t)st.st_size;

    /* The caller has no use for a failure, and the next write to LMDB
     * reports a lasting one (a full map) as an error. */
    if (blob_record_update(cache, digest, &fresh, true, &err) < 0)
        pg_log(PG_LOG_DEBUG, "cache_touch_failed", "digest=%s error=%s", digest,
               pg_log_quote(quoted, sizeof(quoted), err->message));
    pg_error_free(err);
}

/*
 * Locks dir/lock for as long as the cache is open. A second process on the
 * same directory would delete the first one's temporary files.
 */
static int
lock_cache(struct cache *cache, struct pg_error **err)
{
    char path[PATH_MAX];
    char reason[CACHE_STRERROR_MAX];

    snprintf(path, sizeof(path), "%s/lock", cache->dir);
    cache->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (cache->lock_fd < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot open %s: %s; check the permissions of %s", path,
                     cache_strerror(errno, reason, sizeof(reason)), cache->dir);
        return -1;
    }

    if (flock(cache->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot lock %s: %s; another pullgate process may be "
                     "using %s, so give each process its own cache_dir",
                     path, cache_strerror(errno, reason, sizeof(reason)),
                     cache->dir);
        return -1;
    }
    return 0;
}

static int
open_tables(struct cache *cache, struct pg_error **err)
{
    MDB_txn *txn = NULL;
    int rc;

    rc = mdb_txn_begin(cache->env, NULL, 0, &txn);
    for (int i = 0; rc == 0 && i < CACHE_TABLE_COUNT; i++)
        rc = mdb_dbi_open(txn, cache_table_names[i], MDB_CREATE,
                          &cache->tables[i]);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }

    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc != 0) {
        set_lmdb_error(cache, rc, err);
        pg_error_prefix(err, "cannot create the LMDB tables");
        return -1;
    }
    return 0;
}

static int
open_environment(struct cache *cache, uint64_t map_size, struct pg_error **err)
{
    char path[PATH_MAX];
    int rc;

    snprintf(path, sizeof(path), "%s/lmdb", cache->dir);
    rc = mdb_env_create(&cache->env);
    if (rc != 0) {
        cache->env = NULL;
        goto fail;
    }

    /* Reads run on the event loop thread and writes on workers. MDB_NOTLS
     * ties each reader slot to a transaction instead of a thread, so no
     * thread keeps a slot between calls. */
    rc = mdb_env_set_maxdbs(cache->env, CACHE_TABLE_COUNT);
    if (rc == 0)
        rc = mdb_env_set_mapsize(cache->env, (size_t)map_size);
    if (rc == 0)
        rc = mdb_env_open(cache->env, path, MDB_NOTLS, 0600);
    if (rc != 0)
        goto fail;
    return open_tables(cache, err);

fail:
    set_lmdb_error(cache, rc, err);
    pg_error_prefix(err,
                    "cannot open the LMDB environment with a map of "
                    "%llu MiB (check lmdb_map_size_mib and the "
                    "permissions of %s)",
                    (unsigned long long)(map_size / (1024 * 1024)), path);
    return -1;
}

struct cache *
cache_open(const char *dir, uint64_t map_size, struct pg_error **err)
{
    struct cache *cache = NULL;
    bool opened = false;

    if (strlen(dir) + CACHE_BLOB_SUFFIX_MAX >= PATH_MAX) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "cache directory %s is %zu bytes long; cache_dir must "
                     "be shorter than %d bytes",
                     dir, strlen(dir), PATH_MAX - CACHE_BLOB_SUFFIX_MAX);
        goto out;
    }
    if ((uint64_t)(size_t)map_size != map_size) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "LMDB map of %llu bytes does not fit the address "
                     "space; lower lmdb_map_size_mib",
                     (unsigned long long)map_size);
        goto out;
    }

    cache = calloc(1, sizeof(*cache));
    if (cache == NULL || (cache->dir = strdup(dir)) == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory opening the cache in %s", dir);
        goto out;
    }
    cache->lock_fd = -1;

    if (cache_make_dir(dir, err) < 0 || lock_cache(cache, err) < 0 ||
        cache_store_prepare(cache, err) < 0 ||
        open_environment(cache, map_size, err) < 0)
        goto out;
    opened = true;

out:
    if (!opened) {
        cache_close(cache);
        cache = NULL;
    }
    return cache;
}

void
cache_close(struct cache *cache)
{
    if (cache == NULL)
        return;

    if (cache->env != NULL)
        mdb_env_close(cache->env);
    if (cache->lock_fd >= 0)
        close(cache->lock_fd);
    free(cache->dir);
    free(cache);
}

/* Checks the parts of a tag key and builds it. */
static int
tag_key(const struct cache *cache, const char *upstream, const char *repository,
        const char *tag, char *key, struct pg_error **err)
{
    const char *const parts[] = {upstream, "/", repository, ":", tag};
    char quoted[CACHE_QUOTE_MAX];

    if (upstream[0] == '\0' || strchr(upstream, '/') != NULL) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "invalid upstream name %s for a tag record: it must "
                     "be non-empty and contain no '/'",
                     pg_log_quote(quoted, sizeof(quoted), upstream));
        return -1;
    }
    if (repository[0] == '\0' || strchr(repository, ':') != NULL ||
        tag[0] == '\0') {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "invalid repository or tag %s for a tag record: both "
                     "must be non-empty and the repository has no ':'",
                     pg_log_quote(quoted, sizeof(quoted), repository));
        return -1;
    }
    return build_key(cache, parts, 5, key, err);
}

/* Builds "<first> <second>", the key of documents, verdicts and allowed. */
static int
pair_key(const struct cache *cache, const char *first, const char *second,
         char *key, struct pg_error **err)
{
    const char *const parts[] = {first, " ", second};

    return build_key(cache, parts, 3, key, err);
}

/* Stores value as compact JSON under key in table. */
static int
json_record_put(struct cache *cache, enum cache_table table, const char *key,
                const json_t *value, struct pg_error **err)
{
    char *text;
    int rc;

    text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot encode a record for LMDB table %s as JSON; "
                     "memory may be short, retry later",
                     cache_table_names[table]);
        return -1;
    }

    rc = record_put(cache, table, key, text, strlen(text), err);
    free(text);
    return rc;
}

static int
json_record_decode(const MDB_val *value, void *arg, struct pg_error **err)
{
    json_t **out = arg;
    json_error_t error;

    *out = json_loadb(value->mv_data, value->mv_size, JSON_DECODE_ANY, &error);
    if (*out == NULL) {
        pg_error_set(err, 500, PG_ERR_INTERNAL, "invalid JSON at byte %d: %s",
                     error.position, error.text);
        return -1;
    }
    return 0;
}

static int
tag_record_decode(const MDB_val *value, void *arg, struct pg_error **err)
{
    struct cache_tag_record *record = arg;
    const char *digest = NULL;
    const char *media_type = NULL;
    json_int_t fetched = 0;
    json_t *root = NULL;
    int rc = -1;

    if (json_record_decode(value, &root, err) < 0)
        goto out;
    if (json_unpack(root, "{s:s, s:s, s:I}", "digest", &digest, "media_type",
                    &media_type, "fetched", &fetched) < 0 ||
        strlen(digest) >= sizeof(record->digest) ||
        strlen(media_type) >= sizeof(record->media_type)) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "expected {\"digest\", \"media_type\", \"fetched\"} "
                     "with a digest and media type that fit");
        goto out;
    }

    memcpy(record->digest, digest, strlen(digest) + 1);
    memcpy(record->media_type, media_type, strlen(media_type) + 1);
    record->fetched = (time_t)fetched;
    rc = 0;

out:
    json_decref(root);
    return rc;
}

int
cache_tag_put(struct cache *cache, const char *upstream, const char *repository,
              const char *tag, const char *digest, const char *media_type,
              struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];
    struct cache_digest parsed;
    const char *type = media_type == NULL ? "" : media_type;
    json_t *record = NULL;
    int rc = -1;

    if (cache_digest_parse(digest, &parsed, err) < 0 ||
        tag_key(cache, upstream, repository, tag, key, err) < 0)
        goto out;
    if (strlen(type) > CACHE_MEDIA_TYPE_MAX) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "media type of tag %s is %zu bytes, longer than the "
                     "%d bytes the cache stores",
                     key, strlen(type), CACHE_MEDIA_TYPE_MAX);
        goto out;
    }

    record = json_pack("{s:s, s:s, s:I}", "digest", digest, "media_type", type,
                       "fetched", (json_int_t)time(NULL));
    if (record == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory for a tag record; retry later");
        goto out;
    }
    rc = json_record_put(cache, CACHE_TABLE_TAGS, key, record, err);

out:
    json_decref(record);
    return rc;
}

int
cache_tag_get(struct cache *cache, const char *upstream, const char *repository,
              const char *tag, struct cache_tag_record *record,
              struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];

    if (tag_key(cache, upstream, repository, tag, key, err) < 0)
        return -1;
    return record_get(cache, CACHE_TABLE_TAGS, key, tag_record_decode, record,
                      err);
}

/* Checks the manifest digest and inspector version and builds the key. */
static int
document_key(const struct cache *cache, const char *manifest_digest,
             const char *inspector_version, char *key, struct pg_error **err)
{
    struct cache_digest parsed;
    char quoted[CACHE_QUOTE_MAX];

    if (cache_digest_parse(manifest_digest, &parsed, err) < 0)
        return -1;
    if (inspector_version[0] == '\0' ||
        strchr(inspector_version, ' ') != NULL) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "invalid inspector version %s: it must be non-empty "
                     "and contain no space",
                     pg_log_quote(quoted, sizeof(quoted), inspector_version));
        return -1;
    }
    return pair_key(cache, manifest_digest, inspector_version, key, err);
}

/* Checks two digests and builds "<first> <second>". */
static int
digest_pair_key(const struct cache *cache, const char *first,
                const char *second, char *key, struct pg_error **err)
{
    struct cache_digest parsed;

    if (cache_digest_parse(first, &parsed, err) < 0 ||
        cache_digest_parse(second, &parsed, err) < 0)
        return -1;
    return pair_key(cache, first, second, key, err);
}

int
cache_document_put(struct cache *cache, const char *manifest_digest,
                   const char *inspector_version, const json_t *document,
                   struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];

    if (document_key(cache, manifest_digest, inspector_version, key, err) < 0)
        return -1;
    return json_record_put(cache, CACHE_TABLE_DOCUMENTS, key, document, err);
}

int
cache_document_get(struct cache *cache, const char *manifest_digest,
                   const char *inspector_version, json_t **document,
                   struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];

    if (document_key(cache, manifest_digest, inspector_version, key, err) < 0)
        return -1;
    return record_get(cache, CACHE_TABLE_DOCUMENTS, key, json_record_decode,
                      document, err);
}

int
cache_verdict_put(struct cache *cache, const char *manifest_digest,
                  const char *policy_digest, const json_t *verdict,
                  struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];

    if (digest_pair_key(cache, manifest_digest, policy_digest, key, err) < 0)
        return -1;
    return json_record_put(cache, CACHE_TABLE_VERDICTS, key, verdict, err);
}

int
cache_verdict_get(struct cache *cache, const char *manifest_digest,
                  const char *policy_digest, json_t **verdict,
                  struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];

    if (digest_pair_key(cache, manifest_digest, policy_digest, key, err) < 0)
        return -1;
    return record_get(cache, CACHE_TABLE_VERDICTS, key, json_record_decode,
                      verdict, err);
}

/* Builds "<blob digest> <policy digest> <scope>", the key of allowed. */
static int
allowed_key(const struct cache *cache, const char *blob_digest,
            const char *policy_digest, const char *scope, char *key,
            struct pg_error **err)
{
    struct cache_digest parsed;
    const char *const parts[] = {blob_digest, " ", policy_digest, " ", scope};

    if (cache_digest_parse(blob_digest, &parsed, err) < 0 ||
        cache_digest_parse(policy_digest, &parsed, err) < 0)
        return -1;
    return build_key(cache, parts, 5, key, err);
}

int
cache_blob_allow(struct cache *cache, const char *blob_digest,
                 const char *policy_digest, const char *scope,
                 const char *manifest_digest, struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];
    struct cache_digest parsed;

    if (cache_digest_parse(manifest_digest, &parsed, err) < 0 ||
        allowed_key(cache, blob_digest, policy_digest, scope, key, err) < 0)
        return -1;
    return record_put(cache, CACHE_TABLE_ALLOWED, key, manifest_digest,
                      strlen(manifest_digest), err);
}

int
cache_blob_allowed(struct cache *cache, const char *blob_digest,
                   const char *policy_digest, const char *scope,
                   struct pg_error **err)
{
    char key[CACHE_KEY_MAX + 1];

    if (allowed_key(cache, blob_digest, policy_digest, scope, key, err) < 0)
        return -1;
    return record_get(cache, CACHE_TABLE_ALLOWED, key, NULL, NULL, err);
}

/* A lineage record as stored, each field bounded. */
struct lineage_record {
    char manifest_digest[PG_DIGEST_MAX + 1];
    char name[CACHE_LINEAGE_NAME_MAX + 1];
};

static int
lineage_record_decode(const MDB_val *value, void *arg, struct pg_error **err)
{
    struct lineage_record *record = arg;
    const char *digest = NULL;
    const char *name = NULL;
    json_t *root = NULL;
    int rc = -1;

    if (json_record_decode(value, &root, err) < 0)
        goto out;
    if (json_unpack(root, "{s:s, s:s}", "manifest_digest", &digest, "name",
                    &name) < 0 ||
        strlen(digest) >= sizeof(record->manifest_digest) ||
        strlen(name) >= sizeof(record->name)) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "expected {\"manifest_digest\", \"name\"} with a "
                     "digest and name that fit");
        goto out;
    }

    memcpy(record->manifest_digest, digest, strlen(digest) + 1);
    memcpy(record->name, name, strlen(name) + 1);
    rc = 0;

out:
    json_decref(root);
    return rc;
}

int
cache_lineage_put(struct cache *cache, const char *chain_id,
                  const char *manifest_digest, const char *name,
                  struct pg_error **err)
{
    struct cache_digest parsed;
    char quoted[CACHE_QUOTE_MAX];
    json_t *record = NULL;
    int rc = -1;

    if (name == NULL)
        name = "";
    if (cache_digest_parse(chain_id, &parsed, err) < 0 ||
        cache_digest_parse(manifest_digest, &parsed, err) < 0)
        goto out;
    if (strlen(name) > CACHE_LINEAGE_NAME_MAX) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "image name %s is %zu bytes, more than the %d bytes a "
                     "lineage record stores",
                     pg_log_quote(quoted, sizeof(quoted), name), strlen(name),
                     CACHE_LINEAGE_NAME_MAX);
        goto out;
    }

    record = json_pack("{s:s, s:s}", "manifest_digest", manifest_digest, "name",
                       name);
    if (record == NULL) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "image name %s of a lineage record is not valid UTF-8, "
                     "or memory is short",
                     pg_log_quote(quoted, sizeof(quoted), name));
        goto out;
    }
    rc = json_record_put(cache, CACHE_TABLE_LINEAGE, chain_id, record, err);

out:
    json_decref(record);
    return rc;
}

/* Copies text into out (size bytes) unless out is NULL. Returns 0, or -1
 * when it does not fit. */
static int
copy_out(char *out, size_t size, const char *text, const char *what,
         struct pg_error **err)
{
    size_t len = strlen(text);

    if (out == NULL)
        return 0;
    if (len >= size) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "the %s of a lineage record is %zu bytes, but the "
                     "buffer holds %zu with its terminator",
                     what, len, size);
        return -1;
    }
    memcpy(out, text, len + 1);
    return 0;
}

int
cache_lineage_get(struct cache *cache, const char *chain_id,
                  char *manifest_digest, size_t manifest_digest_size,
                  char *name, size_t name_size, struct pg_error **err)
{
    struct lineage_record record;
    struct cache_digest parsed;
    int found;

    if (cache_digest_parse(chain_id, &parsed, err) < 0)
        return -1;
    found = record_get(cache, CACHE_TABLE_LINEAGE, chain_id,
                       lineage_record_decode, &record, err);
    if (found != 1)
        return found;
    if (copy_out(manifest_digest, manifest_digest_size, record.manifest_digest,
                 "manifest digest", err) < 0 ||
        copy_out(name, name_size, record.name, "image name", err) < 0)
        return -1;
    return 1;
}
