/*
 * The worker pool: a fixed set of threads for work that must not run on the
 * event loop (disk writes, hashing, decompression, catalogers, policy
 * evaluation, LMDB writes), and the way results come back to the loop.
 *
 * A job's run function executes on some worker thread; its done function
 * then executes on the loop thread. Jobs run in no particular order, so a
 * caller that needs ordering submits the next job from the previous done.
 */
#ifndef PG_WORKERS_H
#define PG_WORKERS_H

#include <event2/event.h>

#include "config/error.h"

struct workers;

typedef void (*workers_fn)(void *arg);

/*
 * Starts n threads (0: one per online CPU, at least 2). base is the loop
 * that done and posted functions run on; libevent's pthread support must
 * be enabled (evthread_use_pthreads) before base is created.
 */
struct workers *workers_new(struct event_base *base, unsigned n,
                            struct pg_error **err);

/*
 * Queues run(arg) for a worker thread and then done(arg) for the loop.
 * done may be NULL. Fails only when memory is short or the pool is
 * stopping. Thread-safe.
 */
int workers_submit(struct workers *workers, workers_fn run, workers_fn done,
                   void *arg, struct pg_error **err);

/*
 * Queues fn(arg) to run on the loop thread. Callable from any thread,
 * including workers, which is how a worker wakes something on the loop.
 */
int workers_post(struct workers *workers, workers_fn fn, void *arg,
                 struct pg_error **err);

/* Returns the number of worker threads. */
unsigned workers_count(const struct workers *workers);

/*
 * Stops the pool: queued jobs still run, threads are joined, then every
 * pending done and posted function runs on the calling thread, which must
 * be the loop thread with the loop no longer dispatching. Accepts NULL.
 */
void workers_free(struct workers *workers);

#endif
