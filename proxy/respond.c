#include "proxy/respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config/log.h"
#include "proxy/blobfetch.h"
#include "proxy/gate.h"
#include "proxy/handlers.h"
#include "proxy/upstream.h"

static const char *
reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* Cancels whatever the exchange waits on. */
static void
exchange_cancel_operations(struct exchange *ex)
{
    if (ex->gate_request != NULL) {
        gate_cancel(ex->gate_request);
        ex->gate_request = NULL;
    }
    if (ex->blob_waiter != NULL) {
        blobfetch_cancel(ex->blob_waiter);
        ex->blob_waiter = NULL;
    }
    if (ex->transfer != NULL) {
        upstream_cancel(ex->transfer);
        ex->transfer = NULL;
    }
}

static void
exchange_log(const struct exchange *ex, int status, uint64_t bytes,
             const char *result)
{
    char path[700];

    pg_log(status >= 500 ? PG_LOG_WARN : PG_LOG_INFO, "request",
           "method=%s path=%s status=%d bytes=%llu duration_ms=%llu "
           "upstream=%s cache=%s digest=%s verdict=%s result=%s",
           ex->method, pg_log_quote(path, sizeof(path), ex->path), status,
           (unsigned long long)bytes,
           (unsigned long long)(pg_monotonic_ms() - ex->started_ms),
           ex->routed && ex->route.upstream ? ex->route.upstream->name : "-",
           ex->cache, ex->digest[0] ? ex->digest : "-", ex->verdict, result);
}

static void
exchange_free(struct exchange *ex)
{
    exchange_cancel_operations(ex);
    json_decref(ex->tags);
    handlers_exchange_ended(ex->handlers);
    free(ex);
}

/*
 * The client closed the connection before its response was completely
 * written. A response not started yet is logged with 499, the
 * conventional status for a client that went away. A response cut short
 * keeps its status and is logged as aborted.
 */
static void
on_close(struct evhttp_connection *conn, void *arg)
{
    struct exchange *ex = arg;

    ex->req = NULL;
    exchange_cancel_operations(ex);
    if (ex->status == 0)
        exchange_log(ex, 499, 0, "aborted");
    else
        exchange_log(ex, ex->status, 0, "aborted");
    exchange_free(ex);
}

/* The whole response was written to the socket. */
static void
on_complete(struct evhttp_request *req, void *arg)
{
    struct exchange *ex = arg;

    if (ex->conn != NULL)
        evhttp_connection_set_closecb(ex->conn, NULL, NULL);
    exchange_log(ex, ex->status, ex->head ? 0 : ex->content_length,
                 "complete");
    exchange_free(ex);
}

struct exchange *
exchange_new(struct handlers *handlers, struct evhttp_request *req)
{
    struct exchange *ex = calloc(1, sizeof(*ex));
    const char *uri = evhttp_request_get_uri(req);

    if (ex == NULL)
        return NULL;
    ex->handlers = handlers;
    ex->req = req;
    ex->conn = evhttp_request_get_connection(req);
    ex->started_ms = pg_monotonic_ms();
    ex->cache = "-";
    ex->verdict = "-";
    snprintf(ex->path, sizeof(ex->path), "%s", uri != NULL ? uri : "");
    if (ex->conn != NULL)
        evhttp_connection_set_closecb(ex->conn, on_close, ex);
    handlers_exchange_started(handlers);
    return ex;
}

void
respond_header(struct exchange *ex, const char *name, const char *value)
{
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req), name,
                          value);
}

void
respond_send(struct exchange *ex, int status, struct evbuffer *body,
             uint64_t content_length)
{
    ex->status = status;
    ex->content_length = content_length;
    if (ex->req == NULL) {
        exchange_log(ex, status, 0, "aborted");
        if (body != NULL)
            evbuffer_free(body);
        exchange_free(ex);
        return;
    }

    /* The exchange lives until on_complete or on_close, so the log line
     * has the real duration and shutdown waits for the bytes to leave. */
    evhttp_request_set_on_complete_cb(ex->req, on_complete, ex);
    if (ex->head && body != NULL)
        evbuffer_drain(body, evbuffer_get_length(body));
    evhttp_send_reply(ex->req, status, reason_phrase(status),
                      ex->head ? NULL : body);
    ex->req = NULL;
    if (body != NULL)
        evbuffer_free(body);
}

void
respond_error(struct exchange *ex, const struct pg_error *err,
              const json_t *detail)
{
    json_t *doc;
    char *text = NULL;
    char length[32], retry[32];
    struct evbuffer *body = evbuffer_new();
    size_t len = 0;

    doc = json_pack("{s:[{s:s, s:s, s:O?}]}", "errors", "code", err->code,
                    "message", err->message, "detail", detail);
    if (doc != NULL)
        text = json_dumps(doc, JSON_COMPACT);
    if (text != NULL && body != NULL) {
        len = strlen(text);
        evbuffer_add(body, text, len);
    }

    respond_header(ex, "Content-Type", "application/json");
    snprintf(length, sizeof(length), "%zu", len);
    respond_header(ex, "Content-Length", length);
    respond_header(ex, "Docker-Distribution-API-Version", "registry/2.0");
    if (err->retry_after > 0) {
        snprintf(retry, sizeof(retry), "%u", err->retry_after);
        respond_header(ex, "Retry-After", retry);
    }
    if (err->status >= 500 || err->status == 403) {
        char message[PG_ERROR_MESSAGE_MAX + 64];

        char repo[320];

        pg_log(PG_LOG_INFO, "request_error", "repo=%s code=%s message=%s",
               pg_log_quote(repo, sizeof(repo),
                            ex->route.repository[0] ? ex->route.repository
                                                    : NULL),
               err->code,
               pg_log_quote(message, sizeof(message), err->message));
    }

    free(text);
    json_decref(doc);
    respond_send(ex, err->status, body, len);
}
