/*
 * GET and HEAD of blobs: served from the blob store with sendfile, only
 * for blobs of an image the policy allowed. A blob the store lacks but an
 * allowed image contains is fetched first (verified), never streamed
 * unverified.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "config/limits.h"
#include "config/parse.h"
#include "proxy/handlers_internal.h"

/* A parsed Range header: bytes first..last, inclusive. */
struct byte_range {
    uint64_t first;
    uint64_t last;
};

enum range_result {
    RANGE_NONE,        /* no Range header, or one to ignore: send it all */
    RANGE_OK,          /* one satisfiable range */
    RANGE_UNSATISFIED, /* answer 416 */
};

/*
 * Parses a single "bytes=" range against size. Several ranges and syntax
 * errors are ignored, as RFC 9110 allows, so the whole blob is sent.
 */
static enum range_result
parse_range(const char *header, uint64_t size, struct byte_range *range)
{
    const char *spec, *dash;
    uint64_t a, b;

    if (header == NULL || strncmp(header, "bytes=", 6) != 0)
        return RANGE_NONE;
    spec = header + 6;
    dash = strchr(spec, '-');
    if (dash == NULL || strchr(spec, ',') != NULL)
        return RANGE_NONE;

    if (dash == spec) {
        /* A suffix range: the last N bytes. */
        if (pg_parse_u64(dash + 1, UINT64_MAX, &b) < 0)
            return RANGE_NONE;
        if (b == 0 || size == 0)
            return RANGE_UNSATISFIED;
        range->first = b >= size ? 0 : size - b;
        range->last = size - 1;
        return RANGE_OK;
    }
    if (pg_parse_u64_n(spec, (size_t)(dash - spec), UINT64_MAX, &a) < 0)
        return RANGE_NONE;
    if (dash[1] == '\0')
        b = UINT64_MAX;
    else if (pg_parse_u64(dash + 1, UINT64_MAX, &b) < 0 || b < a)
        return RANGE_NONE;
    if (a >= size)
        return RANGE_UNSATISFIED;
    range->first = a;
    range->last = b >= size ? size - 1 : b;
    return RANGE_OK;
}

static void
blob_headers(struct exchange *ex, uint64_t length)
{
    char text[32];

    respond_api_version(ex);
    respond_header(ex, "Content-Type", "application/octet-stream");
    snprintf(text, sizeof(text), "%llu", (unsigned long long)length);
    respond_header(ex, "Content-Length", text);
    respond_header(ex, "Docker-Content-Digest", ex->route.reference);
    respond_header(ex, "Accept-Ranges", "bytes");
    /* A blob never changes under its digest. */
    respond_header(ex, "Cache-Control", "max-age=31536000, immutable");
}

/* Sends an open blob file (fd is taken), whole or one range of it. */
static void
send_blob_file(struct exchange *ex, int fd, uint64_t size)
{
    const char *range_header = NULL;
    struct byte_range range = {0, size > 0 ? size - 1 : 0};
    enum range_result ranged = RANGE_NONE;
    struct evbuffer *body = NULL;
    uint64_t length = size;
    int status = 200;
    char text[96];

    if (ex->req != NULL)
        range_header = evhttp_find_header(
            evhttp_request_get_input_headers(ex->req), "Range");
    ranged = parse_range(range_header, size, &range);
    if (ranged == RANGE_UNSATISFIED) {
        close(fd);
        snprintf(text, sizeof(text), "bytes */%llu", (unsigned long long)size);
        respond_header(ex, "Content-Range", text);
        respond_new_error(ex, 416, PG_ERR_RANGE_INVALID,
                          "range %s is outside blob %s of %llu bytes",
                          range_header, ex->route.reference,
                          (unsigned long long)size);
        return;
    }
    if (ranged == RANGE_OK) {
        status = 206;
        length = range.last - range.first + 1;
        snprintf(text, sizeof(text), "bytes %llu-%llu/%llu",
                 (unsigned long long)range.first,
                 (unsigned long long)range.last, (unsigned long long)size);
        respond_header(ex, "Content-Range", text);
    }
    blob_headers(ex, length);

    if (ex->head || length == 0) {
        close(fd);
    } else {
        body = evbuffer_new();
        /* libevent sends a file segment with sendfile(2) only when the
         * buffer it is added to is marked as draining to a socket. Without
         * the flag it maps the whole file into memory. A TLS connection
         * needs the bytes in memory to encrypt them, so it keeps the
         * mapping.
         * NOTE: over TLS the mapped pages of a blob count in pullgate's
         * resident memory while it is sent. */
        if (body != NULL && ex->handlers->deps.cfg->tls_cert_file == NULL)
            evbuffer_set_flags(body, EVBUFFER_FLAG_DRAINS_TO_FD);
        if (body == NULL || evbuffer_add_file(body, fd, (ev_off_t)range.first,
                                              (ev_off_t)length) < 0) {
            if (body != NULL)
                evbuffer_free(body);
            close(fd);
            respond_new_error(ex, 503, PG_ERR_UNAVAILABLE,
                              "cannot send blob %s; retry later",
                              ex->route.reference);
            return;
        }
    }
    respond_send(ex, status, body, length);
}

/* Serves a blob from the store. Returns 0 when it was not there. */
static int
serve_stored_blob(struct exchange *ex)
{
    struct cache *cache = ex->handlers->deps.cache;
    struct cache_blob_info info;
    struct pg_error *err = NULL;
    int fd = -1, found;

    found = cache_blob_open(cache, ex->route.reference, &fd, &info, &err);
    if (found < 0) {
        respond_error_free(ex, err);
        return 1;
    }
    if (found == 0)
        return 0;
    send_blob_file(ex, fd, info.size);
    return 1;
}

static void
on_blob_fetched(struct pg_error *err, void *arg)
{
    struct exchange *ex = arg;

    ex->blob_waiter = NULL;
    if (err != NULL) {
        respond_error_free(ex, err);
        return;
    }
    if (!serve_stored_blob(ex))
        respond_new_error(ex, 503, PG_ERR_UNAVAILABLE,
                          "blob %s was fetched but is no longer in the "
                          "cache; retry",
                          ex->route.reference);
}

static void
serve_allowed_blob(struct exchange *ex)
{
    struct pg_error *err = NULL;

    ex->verdict = "allow";
    ex->cache = "hit";
    if (serve_stored_blob(ex))
        return;

    ex->cache = "miss";
    ex->blob_waiter = blobfetch_get(
        ex->handlers->deps.fetches, ex->route.upstream, ex->route.repository,
        ex->route.reference, NULL, -1, on_blob_fetched, ex, &err);
    if (ex->blob_waiter == NULL)
        respond_error_free(ex, err);
}

static void
respond_blob_denied(struct exchange *ex)
{
    ex->verdict = "deny";
    respond_new_error(ex, 403, PG_ERR_DENIED,
                      "blob %s is not part of an image allowed by policy",
                      ex->route.reference);
}

/* The upstream's status for HEAD separates a gated blob from a missing
 * one. */
static void
on_probe_done(struct upstream_transfer *transfer, int status,
              struct pg_error *err, void *arg)
{
    struct exchange *ex = arg;

    ex->transfer = NULL;
    if (err != NULL) {
        respond_error_free(ex, err);
    } else if (status == 404) {
        respond_new_error(ex, 404, PG_ERR_BLOB_UNKNOWN,
                          "blob %s not found in upstream %s repository %s",
                          ex->route.reference, ex->route.upstream->name,
                          ex->route.repository);
    } else if (status >= 200 && status < 300) {
        respond_blob_denied(ex);
    } else {
        respond_new_error(ex, 502, PG_ERR_UNAVAILABLE,
                          "upstream %s returned status %d for blob %s of %s",
                          ex->route.upstream->name, status, ex->route.reference,
                          ex->route.repository);
    }
}

static const struct upstream_callbacks probe_callbacks = {
    .on_done = on_probe_done,
};

static void
probe_upstream(struct exchange *ex)
{
    struct pg_error *err = NULL;
    char path[PG_NAME_MAX + PG_DIGEST_MAX + 32];
    struct upstream_request req = {
        .upstream = ex->route.upstream,
        .method = "HEAD",
        .path = path,
        .repository = ex->route.repository,
        .follow_redirects = true,
    };

    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", ex->route.repository,
             ex->route.reference);
    ex->transfer = upstream_start(ex->handlers->deps.upstreams, &req,
                                  &probe_callbacks, ex, &err);
    if (ex->transfer == NULL)
        respond_error_free(ex, err);
}

void
handle_blob(struct exchange *ex)
{
    const struct handlers_deps *deps = &ex->handlers->deps;
    struct pg_error *err = NULL;
    char scope[PG_NAME_MAX + 300];
    int allowed, stored;

    snprintf(ex->digest, sizeof(ex->digest), "%s", ex->route.reference);

    gate_scope(ex->route.upstream, ex->route.repository, scope, sizeof(scope));
    allowed = cache_blob_allowed(deps->cache, ex->route.reference,
                                 gate_verdict_key(deps->gate), scope, &err);
    if (allowed < 0) {
        respond_error_free(ex, err);
        return;
    }
    if (allowed == 1) {
        serve_allowed_blob(ex);
        return;
    }

    /* A permission exists only where a manifest passed every rule of this
     * policy, source rules and their exceptions included, so only blobs
     * without one are checked here, before the upstream is asked. */
    if (gate_check_source(deps->gate, &ex->route, &err) < 0) {
        ex->verdict = "deny";
        respond_error_free(ex, err);
        return;
    }

    /* Not part of an allowed image. A blob in the store was seen in some
     * image, so it exists; otherwise the upstream decides 403 or 404. */
    stored = cache_blob_stat(deps->cache, ex->route.reference, NULL, &err);
    if (stored < 0) {
        respond_error_free(ex, err);
        return;
    }
    if (stored == 1) {
        respond_blob_denied(ex);
        return;
    }
    probe_upstream(ex);
}
