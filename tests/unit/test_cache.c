/*
 * Unit tests of the cache: the blob store on disk and the LMDB records.
 * Every test opens its own cache in a new directory under one mkdtemp
 * directory, which main() removes at the end.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>
#include <openssl/evp.h>

#include "cache/cache.h"
#include "cache/cache_internal.h"
#include "config/error.h"
#include "config/limits.h"

#define TEST_MAP_SIZE (64u * 1024 * 1024)
#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define LAYER_TYPE "application/vnd.oci.image.layer.v1.tar+gzip"
#define POLICY_A                                                               \
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define POLICY_B                                                               \
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define THREAD_BLOBS 16

static char test_root[PATH_MAX / 4];
static char cache_dir[PATH_MAX / 2];

/* Creates a fresh cache directory name for the test about to run. */
static void
setup(void)
{
    snprintf(cache_dir, sizeof(cache_dir), "%s/cache-XXXXXX", test_root);
    ck_assert_ptr_nonnull(mkdtemp(cache_dir));
}

static struct cache *
open_cache(void)
{
    struct pg_error *err = NULL;
    struct cache *cache = cache_open(cache_dir, TEST_MAP_SIZE, &err);

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cache);
    return cache;
}

/* Writes "<algorithm>:<hex of the hash of data>" into out. */
static void
digest_of(const char *algorithm, const void *data, size_t len, char *out,
          size_t size)
{
    const EVP_MD *type =
        strcmp(algorithm, "sha512") == 0 ? EVP_sha512() : EVP_sha256();
    unsigned char md[EVP_MAX_MD_SIZE];
    char hex[EVP_MAX_MD_SIZE * 2 + 1];
    unsigned int md_len = 0;

    ck_assert_int_eq(EVP_Digest(data, len, md, &md_len, type, NULL), 1);
    cache_hex_encode(md, md_len, hex);
    snprintf(out, size, "%s:%s", algorithm, hex);
}

/* Stores text as a verified blob and writes its digest into digest. */
static void
commit_blob(struct cache *cache, const char *algorithm, const char *text,
            const char *media_type, char *digest, size_t size)
{
    struct pg_error *err = NULL;
    struct cache_blob_writer *writer;

    digest_of(algorithm, text, strlen(text), digest, size);
    writer = cache_blob_writer_new(cache, digest, media_type, &err);
    ck_assert_ptr_nonnull(writer);
    ck_assert_int_eq(cache_blob_writer_write(writer, text, strlen(text), &err),
                     0);
    ck_assert_int_eq(cache_blob_writer_commit(writer, &err), 0);
    ck_assert_ptr_null(err);
}

/* Returns the number of entries in a directory, without "." and "..". */
static int
count_entries(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *entry;
    int count = 0;

    ck_assert_ptr_nonnull(dir);
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            count++;
    }
    closedir(dir);
    return count;
}

static int
count_in_cache(const char *name)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", cache_dir, name);
    return count_entries(path);
}

static bool
is_directory(const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", cache_dir, name);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads all of fd into buf (size bytes at most) and returns the length. */
static size_t
read_fd(int fd, char *buf, size_t size)
{
    size_t used = 0;
    ssize_t n;

    while (used < size && (n = read(fd, buf + used, size - used)) > 0)
        used += (size_t)n;
    return used;
}

START_TEST(test_open_layout)
{
    struct cache *cache = open_cache();

    ck_assert(is_directory("tmp"));
    ck_assert(is_directory("lmdb"));
    ck_assert(is_directory("blobs/sha256"));
    ck_assert(is_directory("blobs/sha512"));
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_open_reopen)
{
    struct cache_tag_record record;
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();
    json_t *verdict = json_pack("{s:s}", "decision", "allow");
    json_t *loaded = NULL;

    commit_blob(cache, "sha256", "layer bytes", LAYER_TYPE, digest,
                sizeof(digest));
    ck_assert_int_eq(cache_tag_put(cache, "docker.io", "library/alpine", "3.20",
                                   digest, MANIFEST_TYPE, &err),
                     0);
    ck_assert_int_eq(cache_verdict_put(cache, digest, POLICY_A, verdict, &err),
                     0);
    cache_close(cache);

    cache = open_cache();
    ck_assert_int_eq(cache_tag_get(cache, "docker.io", "library/alpine", "3.20",
                                   &record, &err),
                     1);
    ck_assert_str_eq(record.digest, digest);
    ck_assert_int_eq(cache_blob_stat(cache, digest, &info, &err), 1);
    ck_assert_str_eq(info.media_type, LAYER_TYPE);
    ck_assert_int_eq(cache_verdict_get(cache, digest, POLICY_A, &loaded, &err),
                     1);
    ck_assert(json_equal(loaded, verdict));
    ck_assert_ptr_null(err);

    json_decref(loaded);
    json_decref(verdict);
    cache_close(cache);
}
END_TEST

START_TEST(test_open_missing_parent)
{
    struct pg_error *err = NULL;
    char dir[PATH_MAX];

    snprintf(dir, sizeof(dir), "%s/missing/cache", cache_dir);
    ck_assert_ptr_null(cache_open(dir, TEST_MAP_SIZE, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 503);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err->message, dir));
    ck_assert_ptr_nonnull(strstr(err->message, "No such file or directory"));
    pg_error_free(err);
}
END_TEST

START_TEST(test_open_locked)
{
    struct pg_error *err = NULL;
    struct cache *cache = open_cache();

    ck_assert_ptr_null(cache_open(cache_dir, TEST_MAP_SIZE, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 503);
    ck_assert_ptr_nonnull(strstr(err->message, "another pullgate process"));
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_open_removes_leftovers)
{
    static const char *const names[] = {"tmp/blob-abc123", "tmp/other"};
    char path[PATH_MAX];
    struct cache *cache = open_cache();

    cache_close(cache);
    for (size_t i = 0; i < 2; i++) {
        FILE *file;

        snprintf(path, sizeof(path), "%s/%s", cache_dir, names[i]);
        file = fopen(path, "w");
        ck_assert_ptr_nonnull(file);
        fputs("partial", file);
        fclose(file);
    }
    ck_assert_int_eq(count_in_cache("tmp"), 2);

    cache = open_cache();
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_round_trip)
{
    static const char *const chunks[] = {"hello ", "blob ", "store"};
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    struct cache_blob_writer *writer;
    char digest[PG_DIGEST_MAX + 1];
    char path[PATH_MAX];
    char expected_path[PATH_MAX];
    char buf[64];
    struct cache *cache = open_cache();
    int fd = -1;

    digest_of("sha256", "hello blob store", 16, digest, sizeof(digest));
    writer = cache_blob_writer_new(cache, digest, LAYER_TYPE, &err);
    ck_assert_ptr_nonnull(writer);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(
            cache_blob_writer_write(writer, chunks[i], strlen(chunks[i]), &err),
            0);
    ck_assert_uint_eq(cache_blob_writer_size(writer), 16);
    ck_assert_int_eq(cache_blob_writer_commit(writer, &err), 0);

    ck_assert_int_eq(cache_blob_open(cache, digest, &fd, &info, &err), 1);
    ck_assert_uint_eq(info.size, 16);
    ck_assert_str_eq(info.media_type, LAYER_TYPE);
    ck_assert_uint_eq(read_fd(fd, buf, sizeof(buf)), 16);
    ck_assert_mem_eq(buf, "hello blob store", 16);
    close(fd);

    ck_assert_int_eq(cache_blob_path(cache, digest, path, sizeof(path)), 0);
    snprintf(expected_path, sizeof(expected_path), "%s/blobs/sha256/%.2s/%s",
             cache_dir, digest + 7, digest + 7);
    ck_assert_str_eq(path, expected_path);
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_mismatch)
{
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    struct cache_blob_writer *writer;
    char expected[PG_DIGEST_MAX + 1];
    char actual[PG_DIGEST_MAX + 1];
    char message[PG_ERROR_MESSAGE_MAX];
    struct cache *cache = open_cache();

    digest_of("sha256", "other bytes", 11, expected, sizeof(expected));
    digest_of("sha256", "sent bytes", 10, actual, sizeof(actual));
    writer = cache_blob_writer_new(cache, expected, NULL, &err);
    ck_assert_ptr_nonnull(writer);
    ck_assert_int_eq(cache_blob_writer_write(writer, "sent bytes", 10, &err),
                     0);
    ck_assert_int_eq(cache_blob_writer_commit(writer, &err), -1);

    snprintf(message, sizeof(message),
             "bytes hash to %s, not the expected %s; nothing was cached",
             actual, expected);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_str_eq(err->message, message);
    ck_assert_int_eq(count_in_cache("blobs/sha256"), 0);
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    pg_error_clear(&err);
    ck_assert_int_eq(cache_blob_stat(cache, expected, &info, &err), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_digest_invalid)
{
    static const char *const digests[] = {
        "sha256:"
        "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        "sha256:abc",
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ":e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550",
        "sha512:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        "",
    };
    struct cache_blob_info info;
    char path[PATH_MAX];
    struct cache *cache = open_cache();

    for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
        struct pg_error *err = NULL;

        ck_assert_ptr_null(
            cache_blob_writer_new(cache, digests[i], NULL, &err));
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(err->status, 400);
        ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
        if (digests[i][0] != '\0')
            ck_assert_ptr_nonnull(strstr(err->message, digests[i]));
        pg_error_clear(&err);

        ck_assert_int_eq(cache_blob_stat(cache, digests[i], &info, &err), -1);
        ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
        pg_error_clear(&err);

        ck_assert_int_eq(cache_blob_path(cache, digests[i], path, sizeof(path)),
                         -1);
        ck_assert_str_eq(path, "");
    }
    cache_close(cache);
}
END_TEST

START_TEST(test_digest_invalid_message)
{
    struct pg_error *err = NULL;
    struct cache *cache = open_cache();

    ck_assert_ptr_null(cache_blob_writer_new(cache, "sha256:abc", NULL, &err));
    ck_assert_str_eq(err->message,
                     "invalid digest sha256:abc: expected \"sha256:\" and 64 "
                     "lowercase hex digits, or \"sha512:\" and 128");
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_sha512)
{
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char path[PATH_MAX];
    char buf[64];
    struct cache *cache = open_cache();
    int fd = -1;

    commit_blob(cache, "sha512", "sha512 bytes", NULL, digest, sizeof(digest));
    ck_assert_uint_eq(strlen(digest), 135);
    ck_assert_int_eq(cache_blob_open(cache, digest, &fd, &info, &err), 1);
    ck_assert_uint_eq(info.size, 12);
    ck_assert_str_eq(info.media_type, "");
    ck_assert_uint_eq(read_fd(fd, buf, sizeof(buf)), 12);
    ck_assert_mem_eq(buf, "sha512 bytes", 12);
    close(fd);

    snprintf(path, sizeof(path), "blobs/sha512/%.2s", digest + 7);
    ck_assert_int_eq(count_in_cache(path), 1);
    ck_assert_int_eq(count_in_cache("blobs/sha256"), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_missing)
{
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();
    int fd = -1;

    digest_of("sha256", "never stored", 12, digest, sizeof(digest));
    ck_assert_int_eq(cache_blob_stat(cache, digest, &info, &err), 0);
    ck_assert_int_eq(cache_blob_open(cache, digest, &fd, &info, &err), 0);
    ck_assert_int_eq(fd, -1);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_stat_without_info)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char missing[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();
    int fd = -1;

    commit_blob(cache, "sha256", "no info", NULL, digest, sizeof(digest));
    digest_of("sha256", "not stored", 10, missing, sizeof(missing));
    ck_assert_int_eq(cache_blob_stat(cache, digest, NULL, &err), 1);
    ck_assert_int_eq(cache_blob_stat(cache, missing, NULL, &err), 0);
    ck_assert_int_eq(cache_blob_open(cache, digest, &fd, NULL, &err), 1);
    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_null(err);
    close(fd);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_without_record)
{
    struct cache_blob_info info;
    struct cache_blob_info record;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char path[PATH_MAX];
    char dir[PATH_MAX];
    struct cache *cache = open_cache();
    FILE *file;

    /* A crash between the rename and the LMDB write leaves this state. */
    digest_of("sha256", "orphan bytes", 12, digest, sizeof(digest));
    snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", cache_dir, digest + 7);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(cache_blob_path(cache, digest, path, sizeof(path)), 0);
    file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs("orphan bytes", file);
    fclose(file);

    ck_assert_int_eq(cache_blob_record_get(cache, digest, &record, &err), 0);
    ck_assert_int_eq(cache_blob_stat(cache, digest, &info, &err), 1);
    ck_assert_uint_eq(info.size, 12);
    ck_assert_str_eq(info.media_type, "");

    cache_blob_touch(cache, digest);
    ck_assert_int_eq(cache_blob_record_get(cache, digest, &record, &err), 1);
    ck_assert_uint_eq(record.size, 12);
    ck_assert_str_eq(record.media_type, "");
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_truncated_absent)
{
    struct pg_error *err = NULL;
    struct cache_blob_info info;
    char digest[PG_DIGEST_MAX + 1];
    char path[4096];
    int fd = -1;
    struct cache *cache = open_cache();

    commit_blob(cache, "sha256", "a blob that will be cut short", NULL,
                digest, sizeof(digest));
    ck_assert_int_eq(cache_blob_path(cache, digest, path, sizeof(path)), 0);
    ck_assert_int_eq(truncate(path, 5), 0);

    ck_assert_int_eq(cache_blob_stat(cache, digest, NULL, &err), 0);
    ck_assert_int_eq(cache_blob_open(cache, digest, &fd, &info, &err), 0);
    ck_assert_int_eq(fd, -1);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_touch_keeps_record)
{
    struct cache_blob_info record;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    commit_blob(cache, "sha256", "touched", LAYER_TYPE, digest, sizeof(digest));
    cache_blob_touch(cache, digest);
    ck_assert_int_eq(cache_blob_record_get(cache, digest, &record, &err), 1);
    ck_assert_uint_eq(record.size, 7);
    ck_assert_str_eq(record.media_type, LAYER_TYPE);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_commit_twice)
{
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char again[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    commit_blob(cache, "sha256", "same bytes", LAYER_TYPE, digest,
                sizeof(digest));
    commit_blob(cache, "sha256", "same bytes", NULL, again, sizeof(again));
    ck_assert_str_eq(again, digest);
    ck_assert_int_eq(cache_blob_stat(cache, digest, &info, &err), 1);
    ck_assert_uint_eq(info.size, 10);
    ck_assert_str_eq(info.media_type, LAYER_TYPE);
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_abort)
{
    struct pg_error *err = NULL;
    struct cache_blob_writer *writer;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "aborted", 7, digest, sizeof(digest));
    writer = cache_blob_writer_new(cache, digest, NULL, &err);
    ck_assert_ptr_nonnull(writer);
    ck_assert_int_eq(cache_blob_writer_write(writer, "abort", 5, &err), 0);
    ck_assert_int_eq(count_in_cache("tmp"), 1);
    cache_blob_writer_abort(writer);
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    ck_assert_int_eq(count_in_cache("blobs/sha256"), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_write_failure)
{
    struct pg_error *err = NULL;
    struct cache_blob_writer *writer;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();
    int full;

    /* /dev/full fails every write with ENOSPC, like a full disk. */
    digest_of("sha256", "full", 4, digest, sizeof(digest));
    writer = cache_blob_writer_new(cache, digest, NULL, &err);
    ck_assert_ptr_nonnull(writer);
    full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(full, 0);
    ck_assert_int_ge(dup2(full, writer->fd), 0);
    close(full);

    ck_assert_int_eq(cache_blob_writer_write(writer, "full", 4, &err), -1);
    ck_assert_int_eq(err->status, 503);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err->message, writer->temp_path));
    ck_assert_ptr_nonnull(strstr(err->message, "No space left on device"));
    pg_error_clear(&err);

    ck_assert_int_eq(cache_blob_writer_write(writer, "full", 4, &err), -1);
    ck_assert_str_eq(err->code, PG_ERR_INTERNAL);
    pg_error_clear(&err);

    ck_assert_int_eq(cache_blob_writer_commit(writer, &err), -1);
    ck_assert_int_eq(err->status, 503);
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    ck_assert_int_eq(count_in_cache("blobs/sha256"), 0);
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_media_type_too_long)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char media_type[CACHE_MEDIA_TYPE_MAX + 2];
    struct cache *cache = open_cache();

    memset(media_type, 'a', sizeof(media_type) - 1);
    media_type[sizeof(media_type) - 1] = '\0';
    digest_of("sha256", "x", 1, digest, sizeof(digest));
    ck_assert_ptr_null(cache_blob_writer_new(cache, digest, media_type, &err));
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

struct thread_job {
    struct cache *cache;
    int first;
    int failures;
    char digests[THREAD_BLOBS][PG_DIGEST_MAX + 1];
};

/* Commits THREAD_BLOBS distinct blobs; counts failures instead of asserting,
 * because Check's asserts must run on the test's own thread. */
static void *
commit_many(void *arg)
{
    struct thread_job *job = arg;

    for (int i = 0; i < THREAD_BLOBS; i++) {
        struct pg_error *err = NULL;
        struct cache_blob_writer *writer;
        char text[32];
        int n = snprintf(text, sizeof(text), "blob number %d", job->first + i);

        digest_of("sha256", text, (size_t)n, job->digests[i],
                  sizeof(job->digests[i]));
        writer = cache_blob_writer_new(job->cache, job->digests[i], NULL, &err);
        if (writer == NULL ||
            cache_blob_writer_write(writer, text, (size_t)n, &err) < 0 ||
            cache_blob_writer_commit(writer, &err) < 0)
            job->failures++;
        pg_error_free(err);
    }
    return NULL;
}

START_TEST(test_blob_concurrent_commits)
{
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    struct cache *cache = open_cache();
    struct thread_job *jobs = calloc(2, sizeof(*jobs));
    pthread_t threads[2];

    ck_assert_ptr_nonnull(jobs);
    for (int t = 0; t < 2; t++) {
        jobs[t].cache = cache;
        jobs[t].first = t * THREAD_BLOBS;
        ck_assert_int_eq(
            pthread_create(&threads[t], NULL, commit_many, &jobs[t]), 0);
    }
    for (int t = 0; t < 2; t++)
        ck_assert_int_eq(pthread_join(threads[t], NULL), 0);

    for (int t = 0; t < 2; t++) {
        ck_assert_int_eq(jobs[t].failures, 0);
        for (int i = 0; i < THREAD_BLOBS; i++)
            ck_assert_int_eq(
                cache_blob_stat(cache, jobs[t].digests[i], &info, &err), 1);
    }
    ck_assert_int_eq(count_in_cache("tmp"), 0);
    free(jobs);
    cache_close(cache);
}
END_TEST

START_TEST(test_manifest_round_trip)
{
    static const char manifest[] = "{\"schemaVersion\":2}";
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char *bytes = NULL;
    char *media_type = NULL;
    size_t len = 0;
    struct cache *cache = open_cache();

    digest_of("sha256", manifest, strlen(manifest), digest, sizeof(digest));
    ck_assert_int_eq(cache_manifest_put(cache, digest, MANIFEST_TYPE, manifest,
                                        strlen(manifest), &err),
                     0);
    ck_assert_int_eq(
        cache_manifest_get(cache, digest, &bytes, &len, &media_type, &err), 1);
    ck_assert_uint_eq(len, strlen(manifest));
    ck_assert_mem_eq(bytes, manifest, len);
    ck_assert_int_eq(bytes[len], '\0');
    ck_assert_str_eq(media_type, MANIFEST_TYPE);
    ck_assert_ptr_null(err);
    free(bytes);
    free(media_type);
    cache_close(cache);
}
END_TEST

START_TEST(test_manifest_no_media_type)
{
    static const char manifest[] = "{\"schemaVersion\":2,\"layers\":[]}";
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char *bytes = NULL;
    char *media_type = NULL;
    size_t len = 0;
    struct cache *cache = open_cache();

    digest_of("sha256", manifest, strlen(manifest), digest, sizeof(digest));
    ck_assert_int_eq(cache_manifest_put(cache, digest, NULL, manifest,
                                        strlen(manifest), &err),
                     0);
    ck_assert_int_eq(
        cache_manifest_get(cache, digest, &bytes, &len, &media_type, &err), 1);
    ck_assert_str_eq(media_type, "");
    free(bytes);
    free(media_type);
    cache_close(cache);
}
END_TEST

START_TEST(test_manifest_missing)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    char *bytes = NULL;
    char *media_type = NULL;
    size_t len = 0;
    struct cache *cache = open_cache();

    digest_of("sha256", "absent", 6, digest, sizeof(digest));
    ck_assert_int_eq(
        cache_manifest_get(cache, digest, &bytes, &len, &media_type, &err), 0);
    ck_assert_ptr_null(bytes);
    ck_assert_ptr_null(media_type);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_manifest_mismatch)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "expected", 8, digest, sizeof(digest));
    ck_assert_int_eq(
        cache_manifest_put(cache, digest, MANIFEST_TYPE, "{}", 2, &err), -1);
    ck_assert_int_eq(err->status, 502);
    ck_assert_ptr_nonnull(strstr(err->message, "nothing was cached"));
    ck_assert_int_eq(count_in_cache("blobs/sha256"), 0);
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_manifest_over_limit)
{
    struct pg_error *err = NULL;
    struct cache_blob_writer *writer;
    size_t len = PG_MANIFEST_MAX_BYTES + 1;
    char digest[PG_DIGEST_MAX + 1];
    char *big = calloc(1, len);
    char *bytes = NULL;
    char *media_type = NULL;
    size_t got = 0;
    struct cache *cache = open_cache();

    ck_assert_ptr_nonnull(big);
    digest_of("sha256", big, len, digest, sizeof(digest));
    ck_assert_int_eq(
        cache_manifest_put(cache, digest, MANIFEST_TYPE, big, len, &err), -1);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    pg_error_clear(&err);

    /* The same bytes stored as a layer are too large to read as one. */
    writer = cache_blob_writer_new(cache, digest, NULL, &err);
    ck_assert_ptr_nonnull(writer);
    ck_assert_int_eq(cache_blob_writer_write(writer, big, len, &err), 0);
    ck_assert_int_eq(cache_blob_writer_commit(writer, &err), 0);
    ck_assert_int_eq(
        cache_manifest_get(cache, digest, &bytes, &got, &media_type, &err), -1);
    ck_assert_int_eq(err->status, 404);
    ck_assert_str_eq(err->code, PG_ERR_MANIFEST_UNKNOWN);
    ck_assert_ptr_null(bytes);
    pg_error_free(err);
    free(big);
    cache_close(cache);
}
END_TEST

START_TEST(test_tag_round_trip)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    time_t before = time(NULL);
    struct cache *cache = open_cache();

    digest_of("sha256", "manifest", 8, digest, sizeof(digest));
    ck_assert_int_eq(cache_tag_put(cache, "docker.io", "library/alpine",
                                   "latest", digest, MANIFEST_TYPE, &err),
                     0);
    ck_assert_int_eq(cache_tag_get(cache, "docker.io", "library/alpine",
                                   "latest", &record, &err),
                     1);
    ck_assert_str_eq(record.digest, digest);
    ck_assert_str_eq(record.media_type, MANIFEST_TYPE);
    ck_assert_int_ge(record.fetched, before);
    ck_assert_int_le(record.fetched, time(NULL));
    ck_assert_int_eq(cache_tag_get(cache, "docker.io", "library/alpine", "edge",
                                   &record, &err),
                     0);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_tag_overwrite)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    char first[PG_DIGEST_MAX + 1];
    char second[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "first", 5, first, sizeof(first));
    digest_of("sha256", "second", 6, second, sizeof(second));
    ck_assert_int_eq(cache_tag_put(cache, "ghcr.io", "org/app", "v1", first,
                                   MANIFEST_TYPE, &err),
                     0);
    ck_assert_int_eq(
        cache_tag_put(cache, "ghcr.io", "org/app", "v1", second, NULL, &err),
        0);
    ck_assert_int_eq(
        cache_tag_get(cache, "ghcr.io", "org/app", "v1", &record, &err), 1);
    ck_assert_str_eq(record.digest, second);
    ck_assert_str_eq(record.media_type, "");
    cache_close(cache);
}
END_TEST

START_TEST(test_tag_per_upstream)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    char hub[PG_DIGEST_MAX + 1];
    char quay[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "hub", 3, hub, sizeof(hub));
    digest_of("sha256", "quay", 4, quay, sizeof(quay));
    ck_assert_int_eq(
        cache_tag_put(cache, "docker.io", "org/app", "1", hub, NULL, &err), 0);
    ck_assert_int_eq(
        cache_tag_put(cache, "quay.io", "org/app", "1", quay, NULL, &err), 0);
    ck_assert_int_eq(
        cache_tag_get(cache, "docker.io", "org/app", "1", &record, &err), 1);
    ck_assert_str_eq(record.digest, hub);
    ck_assert_int_eq(
        cache_tag_get(cache, "quay.io", "org/app", "1", &record, &err), 1);
    ck_assert_str_eq(record.digest, quay);
    ck_assert_int_eq(
        cache_tag_get(cache, "ghcr.io", "org/app", "1", &record, &err), 0);
    cache_close(cache);
}
END_TEST

START_TEST(test_tag_long_key)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    char upstream[254];
    char repository[PG_NAME_MAX + 1];
    char tag[PG_TAG_MAX + 1];
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    /* About 640 bytes, over LMDB's 511-byte key limit, so it is hashed. */
    memset(upstream, 'h', sizeof(upstream) - 1);
    upstream[sizeof(upstream) - 1] = '\0';
    memset(repository, 'r', sizeof(repository) - 1);
    repository[sizeof(repository) - 1] = '\0';
    memset(tag, 't', sizeof(tag) - 1);
    tag[sizeof(tag) - 1] = '\0';
    digest_of("sha256", "long", 4, digest, sizeof(digest));

    ck_assert_int_eq(
        cache_tag_put(cache, upstream, repository, tag, digest, NULL, &err), 0);
    ck_assert_int_eq(
        cache_tag_get(cache, upstream, repository, tag, &record, &err), 1);
    ck_assert_str_eq(record.digest, digest);
    tag[0] = 'u';
    ck_assert_int_eq(
        cache_tag_get(cache, upstream, repository, tag, &record, &err), 0);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_tag_invalid_names)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "names", 5, digest, sizeof(digest));
    ck_assert_int_eq(cache_tag_put(cache, "docker.io/library", "alpine", "3",
                                   digest, NULL, &err),
                     -1);
    ck_assert_int_eq(err->status, 400);
    ck_assert_str_eq(err->code, PG_ERR_NAME_INVALID);
    pg_error_clear(&err);

    ck_assert_int_eq(
        cache_tag_get(cache, "docker.io", "alpine:3", "3", &record, &err), -1);
    ck_assert_str_eq(err->code, PG_ERR_NAME_INVALID);
    pg_error_clear(&err);

    ck_assert_int_eq(cache_tag_put(cache, "docker.io", "alpine", "3",
                                   "sha256:abc", NULL, &err),
                     -1);
    ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_tag_damaged_record)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    MDB_txn *txn = NULL;
    MDB_val key = {strlen("docker.io/app:1"), "docker.io/app:1"};
    MDB_val value = {7, "garbage"};
    struct cache *cache = open_cache();

    ck_assert_int_eq(mdb_txn_begin(cache->env, NULL, 0, &txn), 0);
    ck_assert_int_eq(
        mdb_put(txn, cache->tables[CACHE_TABLE_TAGS], &key, &value, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);

    ck_assert_int_eq(
        cache_tag_get(cache, "docker.io", "app", "1", &record, &err), -1);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err->message, "is damaged"));
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_document_versions)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    json_t *v1 = json_pack("{s:i, s:s}", "version", 1, "os", "debian");
    json_t *v2 = json_pack("{s:i, s:s}", "version", 2, "os", "alpine");
    json_t *loaded = NULL;
    struct cache *cache = open_cache();

    digest_of("sha256", "image", 5, digest, sizeof(digest));
    ck_assert_int_eq(cache_document_put(cache, digest, "1", v1, &err), 0);
    ck_assert_int_eq(cache_document_put(cache, digest, "2", v2, &err), 0);
    ck_assert_int_eq(cache_document_get(cache, digest, "1", &loaded, &err), 1);
    ck_assert(json_equal(loaded, v1));
    json_decref(loaded);
    ck_assert_int_eq(cache_document_get(cache, digest, "2", &loaded, &err), 1);
    ck_assert(json_equal(loaded, v2));
    json_decref(loaded);
    loaded = NULL;
    ck_assert_int_eq(cache_document_get(cache, digest, "3", &loaded, &err), 0);
    ck_assert_ptr_null(loaded);
    ck_assert_ptr_null(err);

    ck_assert_int_eq(cache_document_put(cache, digest, "1 2", v1, &err), -1);
    ck_assert_int_eq(err->status, 500);
    pg_error_free(err);
    json_decref(v1);
    json_decref(v2);
    cache_close(cache);
}
END_TEST

START_TEST(test_verdict_policies)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    json_t *allow = json_pack("{s:s}", "decision", "allow");
    json_t *deny = json_pack("{s:s}", "decision", "deny");
    json_t *loaded = NULL;
    struct cache *cache = open_cache();

    digest_of("sha256", "image", 5, digest, sizeof(digest));
    ck_assert_int_eq(cache_verdict_put(cache, digest, POLICY_A, allow, &err),
                     0);
    ck_assert_int_eq(cache_verdict_put(cache, digest, POLICY_B, deny, &err), 0);
    ck_assert_int_eq(cache_verdict_get(cache, digest, POLICY_A, &loaded, &err),
                     1);
    ck_assert_str_eq(json_string_value(json_object_get(loaded, "decision")),
                     "allow");
    json_decref(loaded);
    ck_assert_int_eq(cache_verdict_get(cache, digest, POLICY_B, &loaded, &err),
                     1);
    ck_assert_str_eq(json_string_value(json_object_get(loaded, "decision")),
                     "deny");
    json_decref(loaded);
    ck_assert_int_eq(
        cache_verdict_get(cache, POLICY_A, POLICY_B, &loaded, &err), 0);
    ck_assert_ptr_null(err);

    ck_assert_int_eq(cache_verdict_get(cache, digest, "policy", &loaded, &err),
                     -1);
    ck_assert_int_eq(err->status, 400);
    ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
    pg_error_free(err);
    json_decref(allow);
    json_decref(deny);
    cache_close(cache);
}
END_TEST

#define SCOPE_A "docker.io/team/app"
#define SCOPE_B "docker.io/team/other"

START_TEST(test_blob_allowed)
{
    struct pg_error *err = NULL;
    char blob[PG_DIGEST_MAX + 1];
    char other[PG_DIGEST_MAX + 1];
    char manifest[PG_DIGEST_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "layer", 5, blob, sizeof(blob));
    digest_of("sha256", "other layer", 11, other, sizeof(other));
    digest_of("sha256", "manifest", 8, manifest, sizeof(manifest));
    ck_assert_int_eq(cache_blob_allowed(cache, blob, POLICY_A, SCOPE_A, &err),
                     0);
    ck_assert_int_eq(
        cache_blob_allow(cache, blob, POLICY_A, SCOPE_A, manifest, &err), 0);
    ck_assert_int_eq(cache_blob_allowed(cache, blob, POLICY_A, SCOPE_A, &err),
                     1);
    ck_assert_int_eq(cache_blob_allowed(cache, blob, POLICY_B, SCOPE_A, &err),
                     0);
    ck_assert_int_eq(cache_blob_allowed(cache, blob, POLICY_A, SCOPE_B, &err),
                     0);
    ck_assert_int_eq(
        cache_blob_allowed(cache, other, POLICY_A, SCOPE_A, &err), 0);
    ck_assert_ptr_null(err);

    ck_assert_int_eq(
        cache_blob_allow(cache, blob, POLICY_A, SCOPE_A, "manifest", &err), -1);
    ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_map_full)
{
    struct pg_error *err = NULL;
    char digest[PG_DIGEST_MAX + 1];
    size_t len = 2u * 1024 * 1024;
    char *text = malloc(len + 1);
    json_t *document;
    struct cache *cache = cache_open(cache_dir, 1024 * 1024, &err);

    ck_assert_ptr_nonnull(cache);
    ck_assert_ptr_nonnull(text);
    memset(text, 'x', len);
    text[len] = '\0';
    document = json_pack("{s:s}", "padding", text);
    digest_of("sha256", "big", 3, digest, sizeof(digest));

    ck_assert_int_eq(cache_document_put(cache, digest, "1", document, &err),
                     -1);
    ck_assert_int_eq(err->status, 503);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err->message, "raise lmdb_map_size_mib"));
    pg_error_free(err);
    json_decref(document);
    free(text);
    cache_close(cache);
}
END_TEST

START_TEST(test_blob_path_too_small)
{
    char digest[PG_DIGEST_MAX + 1];
    char path[16];
    struct cache *cache = open_cache();

    digest_of("sha256", "path", 4, digest, sizeof(digest));
    ck_assert_int_eq(cache_blob_path(cache, digest, path, sizeof(path)), -1);
    ck_assert_str_eq(path, "");
    cache_close(cache);
}
END_TEST

/* ---- lineage ---- */

START_TEST(test_lineage_round_trip)
{
    struct pg_error *err = NULL;
    char chain[PG_DIGEST_MAX + 1];
    char manifest[PG_DIGEST_MAX + 1];
    char newer[PG_DIGEST_MAX + 1];
    char other[PG_DIGEST_MAX + 1];
    char digest_out[PG_DIGEST_MAX + 1];
    char name_out[CACHE_LINEAGE_NAME_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "chain", 5, chain, sizeof(chain));
    digest_of("sha256", "debian:12", 9, manifest, sizeof(manifest));
    digest_of("sha256", "debian:12 rebuilt", 17, newer, sizeof(newer));
    digest_of("sha256", "other chain", 11, other, sizeof(other));
    ck_assert_int_eq(cache_lineage_put(cache, chain, manifest,
                                       "docker.io/library/debian:12", &err),
                     0);
    ck_assert_int_eq(cache_lineage_get(cache, chain, digest_out,
                                       sizeof(digest_out), name_out,
                                       sizeof(name_out), &err),
                     1);
    ck_assert_str_eq(digest_out, manifest);
    ck_assert_str_eq(name_out, "docker.io/library/debian:12");
    ck_assert_int_eq(cache_lineage_get(cache, other, digest_out,
                                       sizeof(digest_out), name_out,
                                       sizeof(name_out), &err),
                     0);

    /* A later record of the same chain replaces the earlier one, and
     * records outlive the process. */
    ck_assert_int_eq(cache_lineage_put(cache, chain, newer, NULL, &err), 0);
    cache_close(cache);
    cache = open_cache();
    ck_assert_int_eq(cache_lineage_get(cache, chain, digest_out,
                                       sizeof(digest_out), name_out,
                                       sizeof(name_out), &err),
                     1);
    ck_assert_str_eq(digest_out, newer);
    ck_assert_str_eq(name_out, "");
    ck_assert_int_eq(cache_lineage_get(cache, chain, NULL, 0, NULL, 0, &err),
                     1);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_lineage_name_max)
{
    struct pg_error *err = NULL;
    char chain[PG_DIGEST_MAX + 1];
    char manifest[PG_DIGEST_MAX + 1];
    char name[CACHE_LINEAGE_NAME_MAX + 2];
    char name_out[CACHE_LINEAGE_NAME_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "chain", 5, chain, sizeof(chain));
    digest_of("sha256", "manifest", 8, manifest, sizeof(manifest));
    memset(name, 'n', CACHE_LINEAGE_NAME_MAX);
    name[CACHE_LINEAGE_NAME_MAX] = '\0';
    ck_assert_int_eq(cache_lineage_put(cache, chain, manifest, name, &err), 0);
    ck_assert_int_eq(cache_lineage_get(cache, chain, NULL, 0, name_out,
                                       sizeof(name_out), &err),
                     1);
    ck_assert_str_eq(name_out, name);

    name[CACHE_LINEAGE_NAME_MAX] = 'n';
    name[CACHE_LINEAGE_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(cache_lineage_put(cache, chain, manifest, name, &err), -1);
    ck_assert_int_eq(err->status, 400);
    ck_assert_str_eq(err->code, PG_ERR_NAME_INVALID);
    ck_assert_ptr_nonnull(
        strstr(err->message, "is 1025 bytes, more than the 1024 bytes"));
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

START_TEST(test_lineage_invalid_arguments)
{
    struct pg_error *err = NULL;
    char chain[PG_DIGEST_MAX + 1];
    char manifest[PG_DIGEST_MAX + 1];
    char small[8];
    struct cache *cache = open_cache();

    digest_of("sha256", "chain", 5, chain, sizeof(chain));
    digest_of("sha256", "manifest", 8, manifest, sizeof(manifest));
    ck_assert_int_eq(
        cache_lineage_put(cache, "sha256:abc", manifest, "x", &err), -1);
    ck_assert_int_eq(err->status, 400);
    ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
    pg_error_clear(&err);
    ck_assert_int_eq(cache_lineage_put(cache, chain, "latest", "x", &err), -1);
    ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
    pg_error_clear(&err);
    ck_assert_int_eq(cache_lineage_get(cache, "chain", NULL, 0, NULL, 0, &err),
                     -1);
    ck_assert_str_eq(err->code, PG_ERR_DIGEST_INVALID);
    pg_error_clear(&err);

    /* A buffer too small for the record is the caller's bug. */
    ck_assert_int_eq(cache_lineage_put(cache, chain, manifest, "x", &err), 0);
    ck_assert_int_eq(
        cache_lineage_get(cache, chain, small, sizeof(small), NULL, 0, &err),
        -1);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_INTERNAL);
    ck_assert_str_eq(err->message,
                     "the manifest digest of a lineage record is 71 bytes, "
                     "but the buffer holds 8 with its terminator");
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

/* Writes value under key in the lineage table, bypassing the checks. */
static void
lineage_put_raw(struct cache *cache, const char *key, const char *value)
{
    MDB_txn *txn = NULL;
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {strlen(value), (void *)value};

    ck_assert_int_eq(mdb_txn_begin(cache->env, NULL, 0, &txn), 0);
    ck_assert_int_eq(
        mdb_put(txn, cache->tables[CACHE_TABLE_LINEAGE], &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
}

START_TEST(test_lineage_damaged_record)
{
    struct pg_error *err = NULL;
    char chain[PG_DIGEST_MAX + 1];
    char long_name[CACHE_LINEAGE_NAME_MAX + 64];
    char record[CACHE_LINEAGE_NAME_MAX + 256];
    char name_out[CACHE_LINEAGE_NAME_MAX + 1];
    struct cache *cache = open_cache();

    digest_of("sha256", "chain", 5, chain, sizeof(chain));
    lineage_put_raw(cache, chain, "garbage");
    ck_assert_int_eq(cache_lineage_get(cache, chain, NULL, 0, name_out,
                                       sizeof(name_out), &err),
                     -1);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err->message, "in LMDB table lineage is "
                                               "damaged"));
    pg_error_clear(&err);

    /* A stored name over the maximum is damage too, not an overflow. */
    memset(long_name, 'n', CACHE_LINEAGE_NAME_MAX + 1);
    long_name[CACHE_LINEAGE_NAME_MAX + 1] = '\0';
    snprintf(record, sizeof(record),
             "{\"manifest_digest\": \"%s\", \"name\": \"%s\"}", chain,
             long_name);
    lineage_put_raw(cache, chain, record);
    ck_assert_int_eq(cache_lineage_get(cache, chain, NULL, 0, name_out,
                                       sizeof(name_out), &err),
                     -1);
    ck_assert_str_eq(err->code, PG_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err->message, "is damaged"));
    pg_error_free(err);
    cache_close(cache);
}
END_TEST

/* A cache written before the lineage table existed gains it on open. */
START_TEST(test_lineage_added_to_old_cache)
{
    struct pg_error *err = NULL;
    char chain[PG_DIGEST_MAX + 1];
    char manifest[PG_DIGEST_MAX + 1];
    char digest_out[PG_DIGEST_MAX + 1];
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    struct cache *cache = open_cache();

    ck_assert_int_eq(mdb_txn_begin(cache->env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "lineage", 0, &dbi), 0);
    ck_assert_int_eq(mdb_drop(txn, dbi, 1), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    cache_close(cache);

    cache = open_cache();
    digest_of("sha256", "chain", 5, chain, sizeof(chain));
    digest_of("sha256", "manifest", 8, manifest, sizeof(manifest));
    ck_assert_int_eq(cache_lineage_get(cache, chain, digest_out,
                                       sizeof(digest_out), NULL, 0, &err),
                     0);
    ck_assert_int_eq(cache_lineage_put(cache, chain, manifest, "a", &err), 0);
    ck_assert_int_eq(cache_lineage_get(cache, chain, digest_out,
                                       sizeof(digest_out), NULL, 0, &err),
                     1);
    ck_assert_str_eq(digest_out, manifest);
    ck_assert_ptr_null(err);
    cache_close(cache);
}
END_TEST

static Suite *
cache_suite(void)
{
    Suite *suite = suite_create("cache");
    TCase *tc = tcase_create("cache");

    tcase_add_checked_fixture(tc, setup, NULL);
    /* Each commit syncs files, directories and LMDB, which is slow on
     * some disks. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_open_layout);
    tcase_add_test(tc, test_open_reopen);
    tcase_add_test(tc, test_open_missing_parent);
    tcase_add_test(tc, test_open_locked);
    tcase_add_test(tc, test_open_removes_leftovers);
    tcase_add_test(tc, test_blob_round_trip);
    tcase_add_test(tc, test_blob_mismatch);
    tcase_add_test(tc, test_digest_invalid);
    tcase_add_test(tc, test_digest_invalid_message);
    tcase_add_test(tc, test_blob_sha512);
    tcase_add_test(tc, test_blob_missing);
    tcase_add_test(tc, test_blob_stat_without_info);
    tcase_add_test(tc, test_blob_without_record);
    tcase_add_test(tc, test_blob_truncated_absent);
    tcase_add_test(tc, test_blob_touch_keeps_record);
    tcase_add_test(tc, test_blob_commit_twice);
    tcase_add_test(tc, test_blob_abort);
    tcase_add_test(tc, test_blob_write_failure);
    tcase_add_test(tc, test_blob_media_type_too_long);
    tcase_add_test(tc, test_blob_concurrent_commits);
    tcase_add_test(tc, test_blob_path_too_small);
    tcase_add_test(tc, test_manifest_round_trip);
    tcase_add_test(tc, test_manifest_no_media_type);
    tcase_add_test(tc, test_manifest_missing);
    tcase_add_test(tc, test_manifest_mismatch);
    tcase_add_test(tc, test_manifest_over_limit);
    tcase_add_test(tc, test_tag_round_trip);
    tcase_add_test(tc, test_tag_overwrite);
    tcase_add_test(tc, test_tag_per_upstream);
    tcase_add_test(tc, test_tag_long_key);
    tcase_add_test(tc, test_tag_invalid_names);
    tcase_add_test(tc, test_tag_damaged_record);
    tcase_add_test(tc, test_document_versions);
    tcase_add_test(tc, test_verdict_policies);
    tcase_add_test(tc, test_blob_allowed);
    tcase_add_test(tc, test_map_full);
    tcase_add_test(tc, test_lineage_round_trip);
    tcase_add_test(tc, test_lineage_name_max);
    tcase_add_test(tc, test_lineage_invalid_arguments);
    tcase_add_test(tc, test_lineage_damaged_record);
    tcase_add_test(tc, test_lineage_added_to_old_cache);
    suite_add_tcase(suite, tc);
    return suite;
}

static int
remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

int
main(void)
{
    const char *tmpdir = getenv("TMPDIR");
    SRunner *runner;
    int failed;

    snprintf(test_root, sizeof(test_root), "%s/test_cache-XXXXXX",
             tmpdir != NULL && tmpdir[0] != '\0' ? tmpdir : "/tmp");
    if (mkdtemp(test_root) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }

    runner = srunner_create(cache_suite());
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);

    nftw(test_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
