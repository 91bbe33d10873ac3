#include "proxy/blobfetch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "config/limits.h"
#include "config/log.h"
#include "config/parse.h"

/* Bytes a drain job moves out of the queue at a time. */
#define DRAIN_CHUNK_BYTES (256u * 1024)

/*
 * The bytes of one blob as they reach its file, shared by the drain job
 * that writes them and every reader. Freed with its last reference.
 */
struct blob_bytes {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* broadcast when any field below changes */
    unsigned refs;
    char digest[PG_DIGEST_MAX + 1];
    int fd;           /* read-only; -1 until the temporary file exists */
    uint64_t written; /* bytes in the file that readers may read */
    bool complete;    /* the digest matched: written is the whole blob */
    struct pg_error *error; /* the fetch failed; set once */
};

struct blobfetch_reader {
    struct blob_bytes *bytes;
    uint64_t offset;
    bool aborted; /* under bytes->lock */
};

struct blobfetch_waiter {
    struct blobfetch *owner;
    struct fetch *fetch; /* NULL while on the owner's ready list */
    char digest[PG_DIGEST_MAX + 1];
    blobfetch_cb cb;
    void *arg;
    struct blobfetch_waiter *prev;
    struct blobfetch_waiter *next;
};

/* One upstream transfer of one blob, shared by all its waiters. */
struct fetch {
    struct blobfetch *owner;
    struct fetch *prev;
    struct fetch *next;
    struct blobfetch_waiter *waiters;

    const struct config_upstream *upstream;
    char digest[PG_DIGEST_MAX + 1];
    char repository[PG_NAME_MAX + 1];
    char *media_type;
    int64_t expected_size; /* -1 when unknown */
    uint64_t received;
    struct upstream_transfer *transfer; /* NULL once the transfer ended */
    struct pg_error *loop_err;          /* status, size or transfer error */

    /* Shared between the loop and the drain job, under lock. */
    pthread_mutex_t lock;
    struct evbuffer *queue;
    bool draining; /* a drain job is queued or running */
    bool paused;   /* the upstream transfer is paused on a full queue */
    bool eof;      /* no more bytes will be queued */
    bool failed;   /* discard the temporary file instead of committing */

    /* Owned by the drain job that is running, one at a time. */
    struct cache_blob_writer *writer;
    struct blob_bytes *bytes; /* what readers see of the writer's file */
    struct pg_error *sink_err;
    bool finalized;

    /* Drain jobs submitted and not yet done; loop thread only. The fetch
     * completes when the last one is done, because an earlier job's done
     * can run after a later job finalized the blob. */
    unsigned drains_outstanding;
};

struct blobfetch {
    struct event_base *base;
    struct upstream_client *upstreams;
    struct workers *workers;
    struct cache *cache;
    struct fetch *fetches;
    struct blobfetch_waiter *ready; /* blobs found in the store */
    struct event *ready_event;
};

static void waiter_unlink(struct blobfetch_waiter **head,
                          struct blobfetch_waiter *waiter);

static void
waiter_link(struct blobfetch_waiter **head, struct blobfetch_waiter *waiter)
{
    waiter->prev = NULL;
    waiter->next = *head;
    if (*head != NULL)
        (*head)->prev = waiter;
    *head = waiter;
}

static void
waiter_unlink(struct blobfetch_waiter **head, struct blobfetch_waiter *waiter)
{
    if (waiter->prev != NULL)
        waiter->prev->next = waiter->next;
    else
        *head = waiter->next;
    if (waiter->next != NULL)
        waiter->next->prev = waiter->prev;
    waiter->prev = NULL;
    waiter->next = NULL;
}

/* ---- the bytes that readers see ---- */

static struct blob_bytes *
blob_bytes_new(const char *digest)
{
    struct blob_bytes *bytes = calloc(1, sizeof(*bytes));

    if (bytes == NULL)
        return NULL;
    pthread_mutex_init(&bytes->lock, NULL);
    pthread_cond_init(&bytes->changed, NULL);
    bytes->refs = 1;
    bytes->fd = -1;
    snprintf(bytes->digest, sizeof(bytes->digest), "%s", digest);
    return bytes;
}

static void
blob_bytes_ref(struct blob_bytes *bytes)
{
    pthread_mutex_lock(&bytes->lock);
    bytes->refs++;
    pthread_mutex_unlock(&bytes->lock);
}

/* Drops a reference; accepts NULL. Any thread. */
static void
blob_bytes_unref(struct blob_bytes *bytes)
{
    bool last;

    if (bytes == NULL)
        return;
    pthread_mutex_lock(&bytes->lock);
    last = --bytes->refs == 0;
    pthread_mutex_unlock(&bytes->lock);
    if (!last)
        return;

    if (bytes->fd >= 0)
        close(bytes->fd);
    pg_error_free(bytes->error);
    pthread_cond_destroy(&bytes->changed);
    pthread_mutex_destroy(&bytes->lock);
    free(bytes);
}

/* Publishes the read descriptor and the bytes written so far; the drain
 * job calls it after every chunk. Takes fd when it is not -1. */
static void
blob_bytes_grow(struct blob_bytes *bytes, int fd, uint64_t written)
{
    pthread_mutex_lock(&bytes->lock);
    if (fd >= 0 && bytes->fd < 0)
        bytes->fd = fd;
    else if (fd >= 0)
        close(fd);
    bytes->written = written;
    pthread_cond_broadcast(&bytes->changed);
    pthread_mutex_unlock(&bytes->lock);
}

/* Ends the blob: complete when err is NULL, else failed with a copy of
 * err. Only the first call counts. */
static void
blob_bytes_end(struct blob_bytes *bytes, const struct pg_error *err)
{
    pthread_mutex_lock(&bytes->lock);
    if (!bytes->complete && bytes->error == NULL) {
        if (err != NULL)
            bytes->error = pg_error_copy(err);
        else
            bytes->complete = true;
    }
    pthread_cond_broadcast(&bytes->changed);
    pthread_mutex_unlock(&bytes->lock);
}

static void
fetch_free(struct fetch *fetch)
{
    struct pg_error *err = NULL;

    if (fetch == NULL)
        return;
    /* A fetch freed before its drain job finalized it (blobfetch_free at
     * shutdown) leaves its readers an error instead of a wait. */
    if (fetch->bytes != NULL) {
        pg_error_set(&err, 503, PG_ERR_UNAVAILABLE,
                     "the fetch of blob %s stopped because pullgate is "
                     "shutting down; retry later",
                     fetch->digest);
        blob_bytes_end(fetch->bytes, err);
        pg_error_free(err);
        blob_bytes_unref(fetch->bytes);
    }
    cache_blob_writer_abort(fetch->writer);
    pg_error_free(fetch->loop_err);
    pg_error_free(fetch->sink_err);
    if (fetch->queue != NULL)
        evbuffer_free(fetch->queue);
    pthread_mutex_destroy(&fetch->lock);
    free(fetch->media_type);
    free(fetch);
}

/* Removes the fetch from the owner and runs every waiter; loop thread. */
static void
fetch_complete(struct fetch *fetch)
{
    struct blobfetch *owner = fetch->owner;
    struct pg_error *err = fetch->loop_err ? fetch->loop_err : fetch->sink_err;

    if (fetch->prev != NULL)
        fetch->prev->next = fetch->next;
    else
        owner->fetches = fetch->next;
    if (fetch->next != NULL)
        fetch->next->prev = fetch->prev;

    if (err != NULL) {
        char repo[320], digest[160];

        pg_log(PG_LOG_WARN, "blob_fetch_failed",
               "upstream=%s repo=%s digest=%s status=%d error=%s",
               fetch->upstream->name,
               pg_log_quote(repo, sizeof(repo), fetch->repository),
               pg_log_quote(digest, sizeof(digest), fetch->digest),
               err->status, err->code);
    } else {
        pg_log(PG_LOG_DEBUG, "blob_fetched", "upstream=%s digest=%s bytes=%llu",
               fetch->upstream->name, fetch->digest,
               (unsigned long long)fetch->received);
    }

    while (fetch->waiters != NULL) {
        struct blobfetch_waiter *waiter = fetch->waiters;

        waiter_unlink(&fetch->waiters, waiter);
        waiter->cb(err != NULL ? pg_error_copy(err) : NULL, waiter->arg);
        free(waiter);
    }
    fetch_free(fetch);
}

/* Writes a chunk to the temporary file; worker thread. */
static void
sink_write(struct fetch *fetch, struct evbuffer *chunk)
{
    struct evbuffer_iovec vec[16];
    int n;

    while (evbuffer_get_length(chunk) > 0) {
        n = evbuffer_peek(chunk, -1, NULL, vec, 16);
        if (n > 16)
            n = 16;
        for (int i = 0; i < n && fetch->sink_err == NULL; i++) {
            cache_blob_writer_write(fetch->writer, vec[i].iov_base,
                                    vec[i].iov_len, &fetch->sink_err);
        }
        for (int i = 0; i < n; i++)
            evbuffer_drain(chunk, vec[i].iov_len);
    }
    if (fetch->sink_err == NULL)
        blob_bytes_grow(fetch->bytes, -1,
                        cache_blob_writer_size(fetch->writer));
}

/* Creates the writer and hands its file to the readers; worker thread. */
static void
sink_open(struct fetch *fetch)
{
    int fd;

    fetch->writer = cache_blob_writer_new(fetch->owner->cache, fetch->digest,
                                          fetch->media_type, &fetch->sink_err);
    if (fetch->writer == NULL)
        return;
    fd = cache_blob_writer_open_reader(fetch->writer, &fetch->sink_err);
    if (fd >= 0)
        blob_bytes_grow(fetch->bytes, fd, 0);
}

/*
 * Tells the readers how the fetch ended. A failed transfer's error is
 * fetch->loop_err, which the loop set before it set eof under the lock,
 * and does not change afterwards. Worker thread.
 */
static void
sink_end_bytes(struct fetch *fetch, bool failed)
{
    struct pg_error *err = fetch->sink_err;

    if (failed)
        err = fetch->loop_err;
    if (failed && err == NULL)
        pg_error_set(&fetch->sink_err, 502, PG_ERR_UNAVAILABLE,
                     "the fetch of blob %s of %s failed", fetch->digest,
                     fetch->repository);
    blob_bytes_end(fetch->bytes, err != NULL ? err : fetch->sink_err);
}

/* Commits or discards the temporary file; worker thread. */
static void
sink_finalize(struct fetch *fetch, bool failed)
{
    if (fetch->writer == NULL && fetch->sink_err == NULL && !failed)
        sink_open(fetch);
    if (failed || fetch->sink_err != NULL) {
        cache_blob_writer_abort(fetch->writer);
    } else if (cache_blob_writer_commit(fetch->writer, &fetch->sink_err) < 0 &&
               fetch->sink_err->status == 502) {
        /* 502 is the store's digest mismatch; 503 is its own disk fault. */
        pg_error_prefix(&fetch->sink_err,
                        "upstream %s sent blob %s of %s with the wrong bytes",
                        fetch->upstream->name, fetch->digest,
                        fetch->repository);
    }
    fetch->writer = NULL;
    fetch->finalized = true;
    sink_end_bytes(fetch, failed);
}

static void
resume_on_loop(void *arg)
{
    struct fetch *fetch = arg;

    if (fetch->transfer != NULL)
        upstream_resume(fetch->transfer);
}

/*
 * Moves queued bytes into the blob store until the queue is empty, then
 * finalizes the blob if the transfer has ended. Worker thread.
 */
static void
drain_run(void *arg)
{
    struct fetch *fetch = arg;
    struct evbuffer *chunk = evbuffer_new();

    for (;;) {
        bool resume, finish, failed;

        pthread_mutex_lock(&fetch->lock);
        if (evbuffer_get_length(fetch->queue) == 0) {
            finish = fetch->eof;
            failed = fetch->failed;
            if (!finish)
                fetch->draining = false;
            pthread_mutex_unlock(&fetch->lock);
            if (finish)
                sink_finalize(fetch, failed);
            break;
        }
        if (chunk != NULL)
            evbuffer_remove_buffer(fetch->queue, chunk, DRAIN_CHUNK_BYTES);
        else
            evbuffer_drain(fetch->queue, DRAIN_CHUNK_BYTES);
        resume = fetch->paused &&
                 evbuffer_get_length(fetch->queue) <= PG_BLOB_QUEUE_LOW_BYTES;
        if (resume)
            fetch->paused = false;
        pthread_mutex_unlock(&fetch->lock);

        if (resume)
            workers_post(fetch->owner->workers, resume_on_loop, fetch, NULL);
        if (chunk == NULL) {
            pg_error_set(&fetch->sink_err, 503, PG_ERR_UNAVAILABLE,
                         "out of memory while writing blob %s", fetch->digest);
            continue;
        }
        if (fetch->writer == NULL && fetch->sink_err == NULL)
            sink_open(fetch);
        if (fetch->sink_err == NULL)
            sink_write(fetch, chunk);
        else
            evbuffer_drain(chunk, evbuffer_get_length(chunk));
    }
    if (chunk != NULL)
        evbuffer_free(chunk);
}

static void
drain_done(void *arg)
{
    struct fetch *fetch = arg;

    fetch->drains_outstanding--;
    if (fetch->finalized && fetch->drains_outstanding == 0)
        fetch_complete(fetch);
}

/* Queues a drain job unless one is queued or running; lock held, loop
 * thread only. */
static void
schedule_drain_locked(struct fetch *fetch)
{
    struct pg_error *err = NULL;

    if (fetch->draining)
        return;
    fetch->draining = true;
    fetch->drains_outstanding++;
    if (workers_submit(fetch->owner->workers, drain_run, drain_done, fetch,
                       &err) < 0) {
        fetch->drains_outstanding--;
        /* NOTE: the pool only rejects jobs while shutting down or out of
         * memory; the fetch then stays unfinished until blobfetch_free. */
        fetch->draining = false;
        pg_log(PG_LOG_ERROR, "blob_drain_failed", "digest=%s error=%s",
               fetch->digest, err->message);
        pg_error_free(err);
    }
}

static int
on_headers(struct upstream_transfer *transfer, int status, void *arg)
{
    struct fetch *fetch = arg;
    const char *length = upstream_header(transfer, "Content-Length");
    uint64_t declared;

    if (status == 404) {
        pg_error_set(&fetch->loop_err, 404, PG_ERR_BLOB_UNKNOWN,
                     "blob %s not found in upstream %s repository %s",
                     fetch->digest, fetch->upstream->name, fetch->repository);
        return -1;
    }
    if (status != 200) {
        pg_error_set(&fetch->loop_err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s returned status %d for blob %s of %s",
                     fetch->upstream->name, status, fetch->digest,
                     fetch->repository);
        return -1;
    }
    if (fetch->expected_size >= 0 && length != NULL &&
        pg_parse_u64(length, UINT64_MAX, &declared) == 0 &&
        declared != (uint64_t)fetch->expected_size) {
        pg_error_set(&fetch->loop_err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent Content-Length %llu for blob %s of %s, "
                     "whose descriptor says %lld bytes",
                     fetch->upstream->name, (unsigned long long)declared,
                     fetch->digest, fetch->repository,
                     (long long)fetch->expected_size);
        return -1;
    }
    return 0;
}

static int
on_data(struct upstream_transfer *transfer, const char *data, size_t len,
        void *arg)
{
    struct fetch *fetch = arg;
    int rc = 0;

    if (fetch->expected_size >= 0 &&
        fetch->received + len > (uint64_t)fetch->expected_size) {
        pg_error_set(&fetch->loop_err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent more than the %lld bytes of blob %s "
                     "of %s",
                     fetch->upstream->name, (long long)fetch->expected_size,
                     fetch->digest, fetch->repository);
        return -1;
    }

    pthread_mutex_lock(&fetch->lock);
    if (evbuffer_get_length(fetch->queue) >= PG_BLOB_QUEUE_HIGH_BYTES) {
        fetch->paused = true;
        rc = UPSTREAM_PAUSE;
    } else if (evbuffer_add(fetch->queue, data, len) < 0) {
        rc = -1;
    } else {
        fetch->received += len;
        schedule_drain_locked(fetch);
    }
    pthread_mutex_unlock(&fetch->lock);

    if (rc < 0) {
        pg_error_set(&fetch->loop_err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while fetching blob %s", fetch->digest);
    }
    return rc;
}

static void
on_done(struct upstream_transfer *transfer, int status, struct pg_error *err,
        void *arg)
{
    struct fetch *fetch = arg;

    fetch->transfer = NULL;
    if (fetch->loop_err == NULL && err != NULL) {
        fetch->loop_err = err;
        pg_error_prefix(&fetch->loop_err, "fetching blob %s of %s",
                        fetch->digest, fetch->repository);
        err = NULL;
    }
    pg_error_free(err);

    if (fetch->loop_err == NULL && fetch->expected_size >= 0 &&
        fetch->received != (uint64_t)fetch->expected_size) {
        pg_error_set(&fetch->loop_err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent %llu of the %lld bytes of blob %s of %s",
                     fetch->upstream->name,
                     (unsigned long long)fetch->received,
                     (long long)fetch->expected_size, fetch->digest,
                     fetch->repository);
    }

    pthread_mutex_lock(&fetch->lock);
    fetch->eof = true;
    fetch->failed = fetch->loop_err != NULL;
    schedule_drain_locked(fetch);
    pthread_mutex_unlock(&fetch->lock);
}

static const struct upstream_callbacks fetch_callbacks = {
    .on_headers = on_headers,
    .on_data = on_data,
    .on_done = on_done,
};

static struct fetch *
fetch_find(struct blobfetch *fetches, const struct config_upstream *upstream,
           const char *digest)
{
    for (struct fetch *f = fetches->fetches; f != NULL; f = f->next) {
        if (f->upstream == upstream && strcmp(f->digest, digest) == 0)
            return f;
    }
    return NULL;
}

static struct fetch *
fetch_start(struct blobfetch *fetches, const struct config_upstream *upstream,
            const char *repository, const char *digest,
            const char *media_type, int64_t expected_size,
            struct pg_error **err)
{
    struct fetch *fetch = calloc(1, sizeof(*fetch));
    char path[PG_NAME_MAX + PG_DIGEST_MAX + 32];
    struct upstream_request req = {
        .upstream = upstream,
        .method = "GET",
        .path = path,
        .repository = repository,
        .follow_redirects = true,
    };

    if (fetch == NULL)
        goto nomem;
    pthread_mutex_init(&fetch->lock, NULL);
    fetch->owner = fetches;
    fetch->upstream = upstream;
    fetch->expected_size = expected_size;
    snprintf(fetch->digest, sizeof(fetch->digest), "%s", digest);
    snprintf(fetch->repository, sizeof(fetch->repository), "%s", repository);
    fetch->queue = evbuffer_new();
    fetch->bytes = blob_bytes_new(digest);
    if (fetch->bytes == NULL)
        goto nomem;
    if (media_type != NULL)
        fetch->media_type = strdup(media_type);
    if (fetch->queue == NULL || (media_type != NULL && !fetch->media_type))
        goto nomem;

    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repository, digest);
    fetch->transfer = upstream_start(fetches->upstreams, &req,
                                     &fetch_callbacks, fetch, err);
    if (fetch->transfer == NULL) {
        fetch_free(fetch);
        return NULL;
    }

    fetch->next = fetches->fetches;
    if (fetches->fetches != NULL)
        fetches->fetches->prev = fetch;
    fetches->fetches = fetch;
    return fetch;

nomem:
    fetch_free(fetch);
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while starting to fetch blob %s", digest);
    return NULL;
}

static void
on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct blobfetch *fetches = arg;

    while (fetches->ready != NULL) {
        struct blobfetch_waiter *waiter = fetches->ready;

        waiter_unlink(&fetches->ready, waiter);
        waiter->cb(NULL, waiter->arg);
        free(waiter);
    }
}

struct blobfetch *
blobfetch_new(struct event_base *base, struct upstream_client *upstreams,
              struct workers *workers, struct cache *cache,
              struct pg_error **err)
{
    struct blobfetch *fetches = calloc(1, sizeof(*fetches));

    if (fetches == NULL)
        goto nomem;
    fetches->base = base;
    fetches->upstreams = upstreams;
    fetches->workers = workers;
    fetches->cache = cache;
    fetches->ready_event = event_new(base, -1, 0, on_ready, fetches);
    if (fetches->ready_event == NULL)
        goto nomem;
    return fetches;

nomem:
    blobfetch_free(fetches);
    pg_error_set(err, 503, PG_ERR_INTERNAL,
                 "out of memory while creating the blob fetcher");
    return NULL;
}

struct blobfetch_waiter *
blobfetch_get(struct blobfetch *fetches,
              const struct config_upstream *upstream, const char *repository,
              const char *digest, const char *media_type,
              int64_t expected_size, blobfetch_cb cb, void *arg,
              struct pg_error **err)
{
    struct blobfetch_waiter *waiter = calloc(1, sizeof(*waiter));
    struct fetch *fetch;
    int present;

    if (waiter == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while waiting for blob %s", digest);
        return NULL;
    }
    waiter->owner = fetches;
    snprintf(waiter->digest, sizeof(waiter->digest), "%s", digest);
    waiter->cb = cb;
    waiter->arg = arg;

    present = cache_blob_stat(fetches->cache, digest, NULL, err);
    if (present < 0)
        goto fail;
    if (present == 1) {
        waiter_link(&fetches->ready, waiter);
        event_active(fetches->ready_event, EV_READ, 0);
        return waiter;
    }

    fetch = fetch_find(fetches, upstream, digest);
    if (fetch == NULL)
        fetch = fetch_start(fetches, upstream, repository, digest, media_type,
                            expected_size, err);
    if (fetch == NULL)
        goto fail;
    waiter->fetch = fetch;
    waiter_link(&fetch->waiters, waiter);
    return waiter;

fail:
    free(waiter);
    return NULL;
}

void
blobfetch_cancel(struct blobfetch_waiter *waiter)
{
    if (waiter == NULL)
        return;
    if (waiter->fetch != NULL)
        waiter_unlink(&waiter->fetch->waiters, waiter);
    else
        waiter_unlink(&waiter->owner->ready, waiter);
    free(waiter);
}

void
blobfetch_free(struct blobfetch *fetches)
{
    if (fetches == NULL)
        return;

    /* The worker pool is stopped first, so no drain job is running. */
    while (fetches->fetches != NULL) {
        struct fetch *fetch = fetches->fetches;

        fetches->fetches = fetch->next;
        if (fetch->transfer != NULL)
            upstream_cancel(fetch->transfer);
        while (fetch->waiters != NULL) {
            struct blobfetch_waiter *waiter = fetch->waiters;

            waiter_unlink(&fetch->waiters, waiter);
            free(waiter);
        }
        fetch_free(fetch);
    }
    while (fetches->ready != NULL) {
        struct blobfetch_waiter *waiter = fetches->ready;

        waiter_unlink(&fetches->ready, waiter);
        free(waiter);
    }
    if (fetches->ready_event != NULL)
        event_free(fetches->ready_event);
    free(fetches);
}

/* ---- readers ---- */

/* Returns bytes that are complete from the start: the blob's file in the
 * store, opened now so that it stays readable whatever happens to the
 * name. */
static struct blob_bytes *
blob_bytes_from_store(struct blobfetch *fetches, const char *digest,
                      struct pg_error **err)
{
    struct blob_bytes *bytes;
    struct stat st;
    int fd = -1;
    int present = cache_blob_open(fetches->cache, digest, &fd, NULL, err);

    if (present < 0)
        return NULL;
    if (present == 0 || fstat(fd, &st) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "blob %s left the blob store before it could be read; "
                     "retry the pull",
                     digest);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    bytes = blob_bytes_new(digest);
    if (bytes == NULL) {
        close(fd);
        return NULL;
    }
    bytes->fd = fd;
    bytes->written = (uint64_t)st.st_size;
    bytes->complete = true;
    return bytes;
}

struct blobfetch_reader *
blobfetch_reader_new(struct blobfetch_waiter *waiter, struct pg_error **err)
{
    struct blobfetch_reader *reader = calloc(1, sizeof(*reader));
    struct blob_bytes *bytes = NULL;

    if (reader == NULL)
        goto nomem;
    if (waiter->fetch != NULL) {
        bytes = waiter->fetch->bytes;
        blob_bytes_ref(bytes);
    } else {
        /* The waiter is on the ready list: the blob was in the store. */
        struct pg_error *open_err = NULL;

        bytes = blob_bytes_from_store(waiter->owner, waiter->digest,
                                      &open_err);
        if (bytes == NULL && open_err == NULL)
            goto nomem;
        if (bytes == NULL) {
            free(reader);
            if (err != NULL && *err == NULL)
                *err = open_err;
            else
                pg_error_free(open_err);
            return NULL;
        }
    }
    reader->bytes = bytes;
    return reader;

nomem:
    free(reader);
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while starting to read a blob; retry later");
    return NULL;
}

/*
 * Waits until the reader's next byte is in the file or the blob ended.
 * Returns the number of bytes readable from the reader's offset, 0 at the
 * end of the blob, or -1 with *err set. Stores the descriptor in *fd.
 */
static ssize_t
reader_wait(struct blobfetch_reader *reader, size_t len, int *fd,
            struct pg_error **err)
{
    struct blob_bytes *bytes = reader->bytes;
    ssize_t ready = -1;

    pthread_mutex_lock(&bytes->lock);
    for (;;) {
        if (reader->aborted) {
            pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                         "reading blob %s stopped because its inspection "
                         "was cancelled",
                         bytes->digest);
            break;
        }
        if (bytes->error != NULL) {
            if (err != NULL && *err == NULL)
                *err = pg_error_copy(bytes->error);
            break;
        }
        if (bytes->fd >= 0 && reader->offset < bytes->written) {
            uint64_t available = bytes->written - reader->offset;

            ready = available < len ? (ssize_t)available : (ssize_t)len;
            *fd = bytes->fd;
            break;
        }
        if (bytes->complete) {
            ready = 0;
            break;
        }
        pthread_cond_wait(&bytes->changed, &bytes->lock);
    }
    pthread_mutex_unlock(&bytes->lock);
    return ready;
}

ssize_t
blobfetch_reader_read(struct blobfetch_reader *reader, void *buf, size_t len,
                      struct pg_error **err)
{
    char reason[128];
    int fd = -1;
    ssize_t ready;
    ssize_t n;

    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    ready = reader_wait(reader, len, &fd, err);
    if (ready <= 0)
        return ready;

    /* The descriptor is closed only with the last reference, which this
     * reader holds, so it stays valid outside the lock. */
    do {
        n = pread(fd, buf, (size_t)ready, (off_t)reader->offset);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot read blob %s at offset %llu: %s",
                     reader->bytes->digest,
                     (unsigned long long)reader->offset,
                     n == 0 ? "the file is shorter than the bytes written"
                            : strerror_r(errno, reason, sizeof(reason)));
        return -1;
    }
    reader->offset += (uint64_t)n;
    return n;
}

void
blobfetch_reader_abort(struct blobfetch_reader *reader)
{
    struct blob_bytes *bytes = reader->bytes;

    pthread_mutex_lock(&bytes->lock);
    reader->aborted = true;
    pthread_cond_broadcast(&bytes->changed);
    pthread_mutex_unlock(&bytes->lock);
}

void
blobfetch_reader_free(struct blobfetch_reader *reader)
{
    if (reader == NULL)
        return;
    blob_bytes_unref(reader->bytes);
    free(reader);
}
