/*
 * Blob fetches: bring a blob from an upstream into the blob store, verified.
 *
 * Bytes flow from the upstream transfer (loop thread) through a bounded
 * queue to a worker thread that hashes them and writes them under a
 * temporary name. The blob store renames the file only when the digest
 * matches. When the queue is full the upstream transfer is paused, so
 * memory stays bounded whatever the blob size, and resumed when the worker
 * has drained it. Requests for a blob that is already being fetched join
 * that fetch, so one upstream transfer serves them all.
 *
 * A reader (blobfetch_reader_new) reads the bytes of a fetch from its
 * temporary file while the download goes on, so that a layer is inspected
 * as it arrives. Readers block, so they run on their own threads, never on
 * the worker pool that runs the drain jobs they wait for.
 *
 * Loop thread only, except the blobfetch_reader functions that say
 * otherwise.
 */
#ifndef PG_BLOBFETCH_H
#define PG_BLOBFETCH_H

#include <stdint.h>
#include <sys/types.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/error.h"
#include "proxy/upstream.h"
#include "proxy/workers.h"

struct blobfetch;
struct blobfetch_waiter;
struct blobfetch_reader;

/*
 * Called once per waiter when the blob is in the store (err NULL) or the
 * fetch failed (err set; the callee frees it with pg_error_free).
 */
typedef void (*blobfetch_cb)(struct pg_error *err, void *arg);

struct blobfetch *blobfetch_new(struct event_base *base,
                                struct upstream_client *upstreams,
                                struct workers *workers, struct cache *cache,
                                struct pg_error **err);

/* Cancels every fetch without calling callbacks; accepts NULL. */
void blobfetch_free(struct blobfetch *fetches);

/*
 * Makes sure blob digest of upstream/repository is in the store. When it
 * already is, cb runs from the loop soon after this returns (never from
 * inside). expected_size is the descriptor's size, or -1 when unknown; a
 * response of any other length fails the fetch. Returns a waiter handle
 * valid until cb runs, or NULL with an error.
 */
struct blobfetch_waiter *blobfetch_get(struct blobfetch *fetches,
                                       const struct config_upstream *upstream,
                                       const char *repository,
                                       const char *digest,
                                       const char *media_type,
                                       int64_t expected_size, blobfetch_cb cb,
                                       void *arg, struct pg_error **err);

/* Detaches a waiter: its callback will not run. The fetch goes on. */
void blobfetch_cancel(struct blobfetch_waiter *waiter);

/*
 * Returns a reader of the blob that waiter waits for, from its first
 * byte: the file in the store when the blob was already there, otherwise
 * the fetch's temporary file as it grows. Call it before the waiter's
 * callback runs. Returns NULL with a 503 error. The reader holds its own
 * reference to the bytes, so it stays valid after the waiter and the
 * fetch are gone; free it with blobfetch_reader_free.
 */
struct blobfetch_reader *blobfetch_reader_new(struct blobfetch_waiter *waiter,
                                              struct pg_error **err);

/*
 * Stores up to len bytes at buf and returns how many, waiting while the
 * download has not reached them. Returns 0 at the end of the blob, which
 * comes only once the digest matched, or -1 with *err set to the fetch's
 * error (digest mismatch, upstream fault, shutdown) or a read error.
 * Thread-safe; blocks, so worker threads only, and one thread per reader
 * at a time.
 */
ssize_t blobfetch_reader_read(struct blobfetch_reader *reader, void *buf,
                              size_t len, struct pg_error **err);

/*
 * Makes the reader's current and later reads fail with a 503 error, for
 * a reader whose result nobody needs any more. Thread-safe.
 */
void blobfetch_reader_abort(struct blobfetch_reader *reader);

/* Frees a reader that no thread is using; accepts NULL. Thread-safe. */
void blobfetch_reader_free(struct blobfetch_reader *reader);

#endif
