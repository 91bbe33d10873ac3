/*
 * Client exchanges and responses: the one place that turns a result or an
 * error into an HTTP response (status, OCI error body, Retry-After), and
 * writes the request's log line.
 *
 * An exchange is one client request in flight. Handlers end it with
 * exactly one respond_* call, which sends the reply unless the client went
 * away. The exchange is logged and freed when the response has been
 * written completely or the connection closes, whichever comes first.
 * Loop thread only.
 */
#ifndef PG_RESPOND_H
#define PG_RESPOND_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "config/error.h"
#include "proxy/route.h"

struct handlers;

struct exchange {
    struct handlers *handlers;
    struct evhttp_request *req; /* NULL once the client went away */
    struct evhttp_connection *conn;
    const char *method;
    bool head;
    char path[512]; /* the request URI, escaped for the log line */
    struct route route;
    bool routed;
    uint64_t started_ms;

    /* Log fields, set as the request goes. */
    int status;              /* set when the response is sent */
    uint64_t content_length; /* bytes of the response body */
    const char *cache;   /* "hit", "miss", "stale" or "-" */
    const char *verdict; /* "allow", "deny", "index", "artifact" or "-" */
    char digest[PG_DIGEST_MAX + 1];

    /* The operation under way, cancelled when the client goes away. */
    struct gate_request *gate_request;
    struct blobfetch_waiter *blob_waiter;
    struct upstream_transfer *transfer;
    json_t *tags; /* tag list pages collected so far */
    unsigned pages;
};

/* Creates the exchange for req and watches its connection. */
struct exchange *exchange_new(struct handlers *handlers,
                              struct evhttp_request *req);

/*
 * Sends an OCI error response for err: its status, Content-Type
 * application/json, {"errors": [{"code", "message", "detail"}]} (detail
 * may be NULL), and Retry-After when err sets it. Ends the exchange.
 */
void respond_error(struct exchange *ex, const struct pg_error *err,
                   const json_t *detail);

/*
 * Sends status with the output headers already set on the request and
 * body (taken; may be NULL). For HEAD nothing is sent after the headers,
 * whose Content-Length the caller set. content_length is logged as bytes.
 * Ends the exchange.
 */
void respond_send(struct exchange *ex, int status, struct evbuffer *body,
                  uint64_t content_length);

/* Adds an output header when the client is still there. */
void respond_header(struct exchange *ex, const char *name, const char *value);

#endif
