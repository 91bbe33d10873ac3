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
 * Loop thread only.
 */
#ifndef PG_BLOBFETCH_H
#define PG_BLOBFETCH_H

#include <stdint.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/error.h"
#include "proxy/upstream.h"
#include "proxy/workers.h"

struct blobfetch;
struct blobfetch_waiter;

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

#endif
