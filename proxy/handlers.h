/*
 * Request handlers for the distribution API: one function per route kind,
 * each ending its exchange with a respond_* call. Loop thread only.
 */
#ifndef PG_HANDLERS_H
#define PG_HANDLERS_H

#include <event2/http.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/error.h"
#include "policy/policy.h"
#include "proxy/blobfetch.h"
#include "proxy/gate.h"
#include "proxy/upstream.h"

struct handlers;

/* Dependencies of the handlers, owned by the caller and outliving them. */
struct handlers_deps {
    const struct config *cfg;
    struct cache *cache;
    struct gate *gate;
    struct blobfetch *fetches;
    struct upstream_client *upstreams;
};

struct handlers *handlers_new(const struct handlers_deps *deps,
                              struct pg_error **err);

/* Frees the handlers; exchanges still open must have ended. */
void handlers_free(struct handlers *handlers);

/* The evhttp general callback: arg is the struct handlers. */
void handlers_dispatch(struct evhttp_request *req, void *arg);

/* Counts exchanges in flight, for the shutdown log line. */
void handlers_exchange_started(struct handlers *handlers);
void handlers_exchange_ended(struct handlers *handlers);
unsigned handlers_in_flight(const struct handlers *handlers);

#endif
