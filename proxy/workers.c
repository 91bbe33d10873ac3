#include "proxy/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/log.h"

/* Maximum threads in a pool, whatever the CPU count. */
#define WORKERS_MAX 256

struct workers_item {
    workers_fn run;  /* NULL for an item posted straight to the loop */
    workers_fn done; /* runs on the loop; may be NULL */
    void *arg;
    struct workers_item *next;
};

/* A first-in, first-out list of items. */
struct workers_list {
    struct workers_item *head;
    struct workers_item *tail;
};

struct workers {
    struct event_base *base;
    struct event *wakeup; /* activated from any thread to run finished */
    pthread_t *threads;
    unsigned n_threads;

    pthread_mutex_t lock;
    pthread_cond_t ready; /* signalled when jobs gains an item */
    struct workers_list jobs;     /* waiting for a worker thread */
    struct workers_list finished; /* waiting for the loop */
    bool stopping;
};

static void
list_push(struct workers_list *list, struct workers_item *item)
{
    item->next = NULL;
    if (list->tail != NULL)
        list->tail->next = item;
    else
        list->head = item;
    list->tail = item;
}

static struct workers_item *
list_take_all(struct workers_list *list)
{
    struct workers_item *head = list->head;

    list->head = NULL;
    list->tail = NULL;
    return head;
}

static struct workers_item *
list_pop(struct workers_list *list)
{
    struct workers_item *item = list->head;

    if (item == NULL)
        return NULL;
    list->head = item->next;
    if (list->head == NULL)
        list->tail = NULL;
    return item;
}

/* Runs every finished item's done function; loop thread only. */
static void
run_finished(struct workers *workers)
{
    struct workers_item *item;

    pthread_mutex_lock(&workers->lock);
    item = list_take_all(&workers->finished);
    pthread_mutex_unlock(&workers->lock);

    while (item != NULL) {
        struct workers_item *next = item->next;

        if (item->done != NULL)
            item->done(item->arg);
        free(item);
        item = next;
    }
}

static void
on_wakeup(evutil_socket_t fd, short what, void *arg)
{
    run_finished(arg);
}

/* Hands an item to the loop; the caller does not hold the lock. */
static void
finish_item(struct workers *workers, struct workers_item *item)
{
    pthread_mutex_lock(&workers->lock);
    list_push(&workers->finished, item);
    pthread_mutex_unlock(&workers->lock);
    event_active(workers->wakeup, EV_READ, 0);
}

static void *
worker_main(void *arg)
{
    struct workers *workers = arg;

    for (;;) {
        struct workers_item *item;

        pthread_mutex_lock(&workers->lock);
        while (workers->jobs.head == NULL && !workers->stopping)
            pthread_cond_wait(&workers->ready, &workers->lock);
        item = list_pop(&workers->jobs);
        pthread_mutex_unlock(&workers->lock);

        /* Stopping with an empty queue: every queued job has run. */
        if (item == NULL)
            return NULL;

        item->run(item->arg);
        finish_item(workers, item);
    }
}

static unsigned
default_thread_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (cpus < 2)
        return 2;
    if (cpus > WORKERS_MAX)
        return WORKERS_MAX;
    return (unsigned)cpus;
}

struct workers *
workers_new(struct event_base *base, unsigned n, struct pg_error **err)
{
    struct workers *workers;
    int rc;

    if (n == 0)
        n = default_thread_count();
    if (n > WORKERS_MAX)
        n = WORKERS_MAX;

    workers = calloc(1, sizeof(*workers));
    if (workers == NULL)
        goto nomem;
    workers->base = base;
    pthread_mutex_init(&workers->lock, NULL);
    pthread_cond_init(&workers->ready, NULL);

    workers->wakeup = event_new(base, -1, 0, on_wakeup, workers);
    workers->threads = calloc(n, sizeof(*workers->threads));
    if (workers->wakeup == NULL || workers->threads == NULL)
        goto nomem;

    for (unsigned i = 0; i < n; i++) {
        rc = pthread_create(&workers->threads[i], NULL, worker_main, workers);
        if (rc != 0) {
            pg_error_set(err, 503, PG_ERR_INTERNAL,
                         "cannot start worker thread %u of %u: %s", i + 1, n,
                         strerror(rc));
            workers_free(workers);
            return NULL;
        }
        workers->n_threads++;
    }
    return workers;

nomem:
    workers_free(workers);
    pg_error_set(err, 503, PG_ERR_INTERNAL,
                 "out of memory while starting the worker pool");
    return NULL;
}

static int
enqueue(struct workers *workers, struct workers_list *list, workers_fn run,
        workers_fn done, void *arg, struct pg_error **err)
{
    struct workers_item *item = calloc(1, sizeof(*item));

    if (item == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while queueing work; retry later");
        return -1;
    }
    item->run = run;
    item->done = done;
    item->arg = arg;

    pthread_mutex_lock(&workers->lock);
    if (workers->stopping && list == &workers->jobs) {
        pthread_mutex_unlock(&workers->lock);
        free(item);
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "pullgate is shutting down; retry later");
        return -1;
    }
    list_push(list, item);
    if (list == &workers->jobs)
        pthread_cond_signal(&workers->ready);
    pthread_mutex_unlock(&workers->lock);

    if (list == &workers->finished)
        event_active(workers->wakeup, EV_READ, 0);
    return 0;
}

int
workers_submit(struct workers *workers, workers_fn run, workers_fn done,
               void *arg, struct pg_error **err)
{
    return enqueue(workers, &workers->jobs, run, done, arg, err);
}

int
workers_post(struct workers *workers, workers_fn fn, void *arg,
             struct pg_error **err)
{
    return enqueue(workers, &workers->finished, NULL, fn, arg, err);
}

unsigned
workers_count(const struct workers *workers)
{
    return workers->n_threads;
}

void
workers_free(struct workers *workers)
{
    if (workers == NULL)
        return;

    pthread_mutex_lock(&workers->lock);
    workers->stopping = true;
    pthread_cond_broadcast(&workers->ready);
    pthread_mutex_unlock(&workers->lock);

    for (unsigned i = 0; i < workers->n_threads; i++)
        pthread_join(workers->threads[i], NULL);

    /* Done functions may post more items; run until none are left. */
    while (workers->finished.head != NULL)
        run_finished(workers);

    if (workers->wakeup != NULL)
        event_free(workers->wakeup);
    free(workers->threads);
    pthread_cond_destroy(&workers->ready);
    pthread_mutex_destroy(&workers->lock);
    free(workers);
}
