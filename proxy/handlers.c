#include "proxy/handlers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config/limits.h"
#include "config/log.h"
#include "proxy/handlers_internal.h"

/* Bytes of the Accept values joined from every Accept header. */
#define ACCEPT_MAX_BYTES 2048

/* Bytes of one Warning header value. */
#define WARNING_MAX_BYTES 600

static const char *
method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "UNKNOWN";
    }
}

void
respond_new_error(struct exchange *ex, int status, const char *code,
                  const char *fmt, ...)
{
    struct pg_error err = {.status = status, .code = code};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err.message, sizeof(err.message), fmt, ap);
    va_end(ap);
    respond_error(ex, &err, NULL);
}

void
respond_error_free(struct exchange *ex, struct pg_error *err)
{
    respond_error(ex, err, NULL);
    pg_error_free(err);
}

void
respond_api_version(struct exchange *ex)
{
    respond_header(ex, "Docker-Distribution-API-Version", "registry/2.0");
}

static void
respond_text(struct exchange *ex, const char *content_type, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    size_t len = strlen(text);
    char length[32];

    snprintf(length, sizeof(length), "%zu", len);
    respond_header(ex, "Content-Type", content_type);
    respond_header(ex, "Content-Length", length);
    if (body != NULL)
        evbuffer_add(body, text, len);
    respond_send(ex, 200, body, len);
}

/*
 * Joins the values of every Accept header (Docker sends one header per
 * media type), so the upstream receives the client's whole list.
 */
static char *
joined_accept(struct evhttp_request *req)
{
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    char joined[ACCEPT_MAX_BYTES] = "";
    size_t used = 0;

    for (struct evkeyval *h = headers->tqh_first; h; h = h->next.tqe_next) {
        int n;

        if (strcasecmp(h->key, "Accept") != 0)
            continue;
        n = snprintf(joined + used, sizeof(joined) - used, "%s%s",
                     used > 0 ? ", " : "", h->value);
        if (n < 0 || (size_t)n >= sizeof(joined) - used)
            break;
        used += (size_t)n;
    }
    return used > 0 ? strdup(joined) : NULL;
}

/* Adds one Warning header (RFC 7234 code 299) per warning of a verdict. */
static void
add_warnings(struct exchange *ex, const json_t *verdict)
{
    size_t i;
    json_t *entry;

    json_array_foreach(json_object_get(verdict, "warnings"), i, entry) {
        const char *rule = json_string_value(json_object_get(entry, "rule"));
        const char *message = json_string_value(json_object_get(entry,
                                                                "message"));
        char value[WARNING_MAX_BYTES];
        int n;

        n = snprintf(value, sizeof(value), "299 - \"pullgate: %s: %s\"",
                     rule ? rule : "-", message ? message : "");
        if (n < 0)
            continue;
        if ((size_t)n >= sizeof(value))
            value[sizeof(value) - 2] = '"';
        /* A quote or control byte inside would end or split the header. */
        for (char *p = value + 15; *p != '\0'; p++) {
            if (*p == '"' && p[1] != '\0')
                *p = '\'';
            else if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        }
        respond_header(ex, "Warning", value);
    }
}

/* The OCI error detail of a denied image: what the policy found. */
static json_t *
denied_detail(const struct gate_result *result)
{
    if (result->verdict == NULL)
        return NULL;
    return json_pack("{s:s, s:O?, s:O?, s:O?}", "digest", result->digest,
                     "policy_digest",
                     json_object_get(result->verdict, "policy_digest"),
                     "denied", json_object_get(result->verdict, "denied"),
                     "warnings", json_object_get(result->verdict, "warnings"));
}

static const char *
cache_field(const char *source)
{
    if (strcmp(source, "cache") == 0)
        return "hit";
    if (strcmp(source, "stale") == 0)
        return "stale";
    return "miss";
}

static void
on_manifest_result(struct gate_result *result, void *arg)
{
    struct exchange *ex = arg;
    struct evbuffer *body;
    char length[32];

    ex->gate_request = NULL;
    snprintf(ex->digest, sizeof(ex->digest), "%s", result->digest);
    ex->cache = cache_field(result->source);
    ex->verdict = result->outcome;

    if (result->err != NULL) {
        json_t *detail = denied_detail(result);

        if (result->verdict != NULL)
            add_warnings(ex, result->verdict);
        respond_error(ex, result->err, detail);
        json_decref(detail);
        gate_result_free(result);
        return;
    }

    respond_api_version(ex);
    respond_header(ex, "Content-Type", result->media_type);
    snprintf(length, sizeof(length), "%zu", result->len);
    respond_header(ex, "Content-Length", length);
    respond_header(ex, "Docker-Content-Digest", result->digest);
    add_warnings(ex, result->verdict);

    body = evbuffer_new();
    if (body != NULL)
        evbuffer_add(body, result->bytes, result->len);
    respond_send(ex, 200, body, result->len);
    gate_result_free(result);
}

void
handle_manifest(struct exchange *ex)
{
    struct gate *gate = ex->handlers->deps.gate;
    struct pg_error *err = NULL;
    char *accept;

    if (gate_check_source(gate, &ex->route, &err) < 0) {
        ex->verdict = "deny";
        respond_error_free(ex, err);
        return;
    }

    accept = joined_accept(ex->req);
    ex->gate_request = gate_manifest(gate, &ex->route, accept,
                                     on_manifest_result, ex, &err);
    free(accept);
    if (ex->gate_request == NULL)
        respond_error_free(ex, err);
}

void
handlers_dispatch(struct evhttp_request *req, void *arg)
{
    struct handlers *handlers = arg;
    struct exchange *ex = exchange_new(handlers, req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct pg_error *err = NULL;

    if (ex == NULL) {
        evhttp_send_error(req, 503, "Service Unavailable");
        return;
    }
    ex->method = method_name(cmd);
    ex->head = cmd == EVHTTP_REQ_HEAD;

    if (route_parse(handlers->deps.cfg, ex->method, ex->path, &ex->route,
                    &err) < 0) {
        respond_error_free(ex, err);
        return;
    }
    ex->routed = true;

    switch (ex->route.kind) {
    case ROUTE_HEALTH:
        respond_text(ex, "text/plain; charset=utf-8", "ok\n");
        break;
    case ROUTE_API_BASE:
        respond_api_version(ex);
        respond_text(ex, "application/json", "{}");
        break;
    case ROUTE_MANIFEST:
        handle_manifest(ex);
        break;
    case ROUTE_BLOB:
        handle_blob(ex);
        break;
    case ROUTE_TAGS_LIST:
        handle_tags_list(ex);
        break;
    case ROUTE_REFERRERS:
        handle_referrers(ex);
        break;
    }
}

struct handlers *
handlers_new(const struct handlers_deps *deps, struct pg_error **err)
{
    struct handlers *handlers = calloc(1, sizeof(*handlers));

    if (handlers == NULL) {
        pg_error_set(err, 503, PG_ERR_INTERNAL,
                     "out of memory while creating the request handlers");
        return NULL;
    }
    handlers->deps = *deps;
    return handlers;
}

void
handlers_free(struct handlers *handlers)
{
    free(handlers);
}

void
handlers_exchange_started(struct handlers *handlers)
{
    handlers->in_flight++;
}

void
handlers_exchange_ended(struct handlers *handlers)
{
    handlers->in_flight--;
}

unsigned
handlers_in_flight(const struct handlers *handlers)
{
    return handlers->in_flight;
}
