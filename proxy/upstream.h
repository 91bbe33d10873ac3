/*
 * The upstream client: HTTP requests to upstream registries with libcurl's
 * multi interface, driven by the libevent loop (curl_multi_socket_action on
 * socket events and a timer). No thread per request, no blocking call.
 *
 * Authentication is handled here and is invisible to callers: a 401 with a
 * "Bearer realm=...,service=...,scope=..." challenge makes the client fetch
 * a token (anonymously or with the upstream's credentials), cache it until
 * it expires, and retry. A cached token that the upstream rejects is
 * replaced by a new one, once. A "Basic" challenge gets a retry with the
 * configured credentials. Callers see only the final response. When the
 * retry gets a 401 as well, or no challenge has a supported scheme, that
 * 401 is the final response, delivered with no error.
 *
 * All functions run on the event loop thread.
 */
#ifndef PG_UPSTREAM_H
#define PG_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/config.h"
#include "config/error.h"

struct upstream_client;
struct upstream_transfer;

struct upstream_request {
    const struct config_upstream *upstream;
    const char *method;     /* "GET" or "HEAD" */
    const char *path;       /* "/v2/library/alpine/manifests/3.19?n=10" */
    const char *accept;     /* Accept header to send, or NULL */
    const char *range;      /* Range header value, or NULL */
    const char *repository; /* for the token scope "repository:R:pull" */
    bool follow_redirects;  /* blobs: follow 307 to object storage */
};

/* Value returned by on_data to stop the flow until upstream_resume(). */
#define UPSTREAM_PAUSE 1

struct upstream_callbacks {
    /*
     * The final response's status and headers are known (after token
     * retries and redirects). Return 0 to go on, -1 to cancel the transfer,
     * in which case on_done is called with an error.
     */
    int (*on_headers)(struct upstream_transfer *transfer, int status,
                      void *arg);
    /*
     * Body bytes of the final response. Return 0 when they are consumed,
     * UPSTREAM_PAUSE to refuse them for now (they are delivered again after
     * upstream_resume), or -1 to cancel. May be NULL to discard bodies.
     * The bytes delivered again may arrive before upstream_resume returns,
     * because libcurl passes them on from inside curl_easy_pause. on_data
     * may pause again or cancel there.
     */
    int (*on_data)(struct upstream_transfer *transfer, const char *data,
                   size_t len, void *arg);
    /*
     * The transfer ended. err is NULL when a complete response was received
     * (any status), else it explains the fault (refused, timed out, reset,
     * too many redirects): 502 or 504 UNAVAILABLE naming the upstream. The
     * transfer is freed after on_done returns; err is the callee's to free.
     * status is the final response's status, or 0 when on_headers was not
     * called. on_done never runs from inside upstream_resume or
     * upstream_cancel. Any callback may be NULL.
     */
    void (*on_done)(struct upstream_transfer *transfer, int status,
                    struct pg_error *err, void *arg);
};

struct upstream_client *upstream_client_new(struct event_base *base,
                                            const struct config *cfg,
                                            struct pg_error **err);

/* Cancels every transfer (without calling on_done) and frees the client;
 * accepts NULL. Not to be called from inside a transfer's callback. */
void upstream_client_free(struct upstream_client *client);

/*
 * Starts a request. The strings in req are copied. Returns the transfer
 * (valid until on_done returns or upstream_cancel is called), or NULL with
 * an error. Callbacks are never called from inside upstream_start, and it
 * may be called from inside any callback: the request goes to libcurl
 * from the loop soon after.
 */
struct upstream_transfer *upstream_start(struct upstream_client *client,
                                         const struct upstream_request *req,
                                         const struct upstream_callbacks *cb,
                                         void *arg, struct pg_error **err);

/*
 * Resumes a transfer paused by on_data returning UPSTREAM_PAUSE; does
 * nothing for a transfer that is not paused. on_data may run before this
 * returns (see struct upstream_callbacks).
 */
void upstream_resume(struct upstream_transfer *transfer);

/*
 * Cancels a transfer; on_done is not called. Safe to call from inside the
 * transfer's own callbacks (the transfer is released later).
 */
void upstream_cancel(struct upstream_transfer *transfer);

/* A header of the final response (case-insensitive name), or NULL. */
const char *upstream_header(const struct upstream_transfer *transfer,
                            const char *name);

/* The final URL after redirects, for log lines, with credentials, query
 * and fragment removed, since object storage redirects carry signatures
 * in the query. Before the headers arrive it is the upstream's base URL.
 * The string belongs to the transfer. */
const char *upstream_effective_url(const struct upstream_transfer *transfer);

/*
 * Fetches a whole body into memory, for manifests, configs, tag lists and
 * referrers. Bodies over max_bytes fail with 502 UNAVAILABLE. The callback
 * gets the status, the headers through upstream_header() on transfer, and
 * the body (the callee may take it with evbuffer_remove_buffer). As for
 * on_done, err is the callee's to free, and the transfer and the body are
 * freed after the callback returns.
 */
typedef void (*upstream_buffer_cb)(struct upstream_transfer *transfer,
                                   int status, struct evbuffer *body,
                                   struct pg_error *err, void *arg);

struct upstream_transfer *upstream_fetch(struct upstream_client *client,
                                         const struct upstream_request *req,
                                         size_t max_bytes,
                                         upstream_buffer_cb cb, void *arg,
                                         struct pg_error **err);

#endif
