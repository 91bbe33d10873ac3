/*
 * Tag lists and referrers.
 *
 * Tag lists are collected from every upstream page, following Link
 * headers on the same upstream. pullgate then sorts them, filters them by
 * "last" and cuts them to "n" itself, because upstreams differ in how they
 * page (the distribution registry 2.8 ignores n and last). Referrers are
 * passed through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "config/limits.h"
#include "proxy/handlers_internal.h"

static void fetch_tags_page(struct exchange *ex, const char *path);

static int
compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends a page's tags; returns -1 when the page is not a tag list. */
static int
collect_tags(struct exchange *ex, struct evbuffer *body)
{
    json_error_t jerr;
    json_t *page, *tags, *tag;
    size_t len = evbuffer_get_length(body), i;
    int rc = -1;

    page = json_loadb((const char *)evbuffer_pullup(body, -1), len, 0, &jerr);
    tags = json_object_get(page, "tags");
    if (!json_is_object(page) || (!json_is_array(tags) && !json_is_null(tags)))
        goto out;
    json_array_foreach(tags, i, tag) {
        if (json_is_string(tag))
            json_array_append(ex->tags, tag);
    }
    rc = 0;
out:
    json_decref(page);
    return rc;
}

/*
 * Returns the path of the next page from a Link header when it points at
 * the same upstream, else NULL. A Link to another host is not followed:
 * only configured upstreams are ever dialled.
 */
static char *
next_page_path(const struct exchange *ex, const char *link)
{
    const char *start, *end, *url = ex->route.upstream->url;
    size_t url_len = strlen(url);

    if (link == NULL || strstr(link, "rel=\"next\"") == NULL)
        return NULL;
    start = strchr(link, '<');
    end = start != NULL ? strchr(start, '>') : NULL;
    if (start == NULL || end == NULL)
        return NULL;
    start++;
    if (strncmp(start, url, url_len) == 0 && start[url_len] == '/')
        start += url_len;
    if (start[0] != '/' || strncmp(start, "/v2/", 4) != 0)
        return NULL;
    return strndup(start, (size_t)(end - start));
}

/* Sorts, pages and sends the collected tags. */
static void
send_tags(struct exchange *ex)
{
    size_t count = json_array_size(ex->tags), kept = 0, i;
    const char **names = calloc(count + 1, sizeof(*names));
    json_t *list = json_array(), *doc;
    uint32_t n = ex->route.tags_n;
    const char *last = ex->route.tags_last;
    const char *last_kept = NULL;
    bool more = false;
    char *text = NULL, length[32];
    struct evbuffer *body = evbuffer_new();

    if (names == NULL || list == NULL || body == NULL)
        goto nomem;
    for (i = 0; i < count; i++)
        names[i] = json_string_value(json_array_get(ex->tags, i));
    qsort(names, count, sizeof(*names), compare_strings);

    for (i = 0; i < count; i++) {
        if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
            continue;
        if (last[0] != '\0' && strcmp(names[i], last) <= 0)
            continue;
        if (kept == n) {
            more = true;
            break;
        }
        json_array_append_new(list, json_string(names[i]));
        last_kept = names[i];
        kept++;
    }

    doc = json_pack("{s:s, s:o}", "name", ex->route.client_name, "tags", list);
    list = NULL;
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        goto nomem;

    if (more && kept > 0) {
        char link[PG_NAME_MAX + PG_TAG_MAX + 600];

        snprintf(link, sizeof(link),
                 "</v2/%s/tags/list?n=%u&last=%s>; rel=\"next\"",
                 ex->route.client_name, n, last_kept);
        respond_header(ex, "Link", link);
    }
    respond_api_version(ex);
    respond_header(ex, "Content-Type", "application/json");
    snprintf(length, sizeof(length), "%zu", strlen(text));
    respond_header(ex, "Content-Length", length);
    evbuffer_add(body, text, strlen(text));
    respond_send(ex, 200, body, strlen(text));
    free(text);
    free(names);
    return;

nomem:
    json_decref(list);
    free(names);
    if (body != NULL)
        evbuffer_free(body);
    respond_new_error(ex, 503, PG_ERR_UNAVAILABLE,
                      "out of memory while listing tags; retry later");
}

static void
on_tags_page(struct upstream_transfer *transfer, int status,
             struct evbuffer *body, struct pg_error *err, void *arg)
{
    struct exchange *ex = arg;
    char *next;

    ex->transfer = NULL;
    if (err != NULL) {
        respond_error_free(ex, err);
        return;
    }
    if (status == 404 || status == 401 || status == 403) {
        respond_new_error(ex, 404, PG_ERR_NAME_UNKNOWN,
                          "repository %s not found in upstream %s (upstream "
                          "status %d)",
                          ex->route.repository, ex->route.upstream->name,
                          status);
        return;
    }
    if (status != 200 || collect_tags(ex, body) < 0) {
        respond_new_error(ex, 502, PG_ERR_UNAVAILABLE,
                          "upstream %s returned status %d and no tag list for "
                          "%s",
                          ex->route.upstream->name, status,
                          ex->route.repository);
        return;
    }

    next = next_page_path(ex, upstream_header(transfer, "Link"));
    if (next != NULL && ++ex->pages < PG_TAGS_LIST_MAX_PAGES) {
        fetch_tags_page(ex, next);
        free(next);
        return;
    }
    free(next);
    send_tags(ex);
}

static void
fetch_tags_page(struct exchange *ex, const char *path)
{
    struct pg_error *err = NULL;
    struct upstream_request req = {
        .upstream = ex->route.upstream,
        .method = "GET",
        .path = path,
        .accept = "application/json",
        .repository = ex->route.repository,
    };

    ex->transfer = upstream_fetch(ex->handlers->deps.upstreams, &req,
                                  PG_TAGS_LIST_MAX_BYTES, on_tags_page, ex,
                                  &err);
    if (ex->transfer == NULL)
        respond_error_free(ex, err);
}

void
handle_tags_list(struct exchange *ex)
{
    struct pg_error *err = NULL;
    char path[PG_NAME_MAX + 32];

    if (gate_check_source(ex->handlers->deps.gate, &ex->route, &err) < 0) {
        respond_error_free(ex, err);
        return;
    }
    ex->tags = json_array();
    if (ex->tags == NULL) {
        respond_new_error(ex, 503, PG_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    snprintf(path, sizeof(path), "/v2/%s/tags/list", ex->route.repository);
    fetch_tags_page(ex, path);
}

static void
on_referrers(struct upstream_transfer *transfer, int status,
             struct evbuffer *body, struct pg_error *err, void *arg)
{
    struct exchange *ex = arg;
    const char *content_type = upstream_header(transfer, "Content-Type");
    const char *filters = upstream_header(transfer, "OCI-Filters-Applied");
    struct evbuffer *copy;
    size_t len;
    char length[32];

    ex->transfer = NULL;
    if (err != NULL) {
        respond_error_free(ex, err);
        return;
    }
    if (status == 404) {
        respond_new_error(ex, 404, PG_ERR_MANIFEST_UNKNOWN,
                          "upstream %s has no referrers for %s in %s, or no "
                          "referrers API",
                          ex->route.upstream->name, ex->route.reference,
                          ex->route.repository);
        return;
    }
    if (status != 200) {
        respond_new_error(ex, 502, PG_ERR_UNAVAILABLE,
                          "upstream %s returned status %d for the referrers "
                          "of %s",
                          ex->route.upstream->name, status,
                          ex->route.reference);
        return;
    }

    len = evbuffer_get_length(body);
    copy = evbuffer_new();
    if (copy != NULL)
        evbuffer_add_buffer(copy, body);
    respond_api_version(ex);
    respond_header(ex, "Content-Type",
                   content_type != NULL
                       ? content_type
                       : "application/vnd.oci.image.index.v1+json");
    if (filters != NULL)
        respond_header(ex, "OCI-Filters-Applied", filters);
    snprintf(length, sizeof(length), "%zu", len);
    respond_header(ex, "Content-Length", length);
    respond_send(ex, 200, copy, len);
}

void
handle_referrers(struct exchange *ex)
{
    struct pg_error *err = NULL;
    char path[PG_NAME_MAX + PG_DIGEST_MAX + 3 * ROUTE_ARTIFACT_TYPE_MAX + 64];
    char *encoded = NULL;
    struct upstream_request req = {
        .upstream = ex->route.upstream,
        .method = "GET",
        .path = path,
        .accept = "application/vnd.oci.image.index.v1+json",
        .repository = ex->route.repository,
    };

    if (gate_check_source(ex->handlers->deps.gate, &ex->route, &err) < 0) {
        respond_error_free(ex, err);
        return;
    }
    if (ex->route.artifact_type[0] != '\0')
        encoded = evhttp_encode_uri(ex->route.artifact_type);
    snprintf(path, sizeof(path), "/v2/%s/referrers/%s%s%s",
             ex->route.repository, ex->route.reference,
             encoded != NULL ? "?artifactType=" : "",
             encoded != NULL ? encoded : "");
    free(encoded);

    ex->transfer = upstream_fetch(ex->handlers->deps.upstreams, &req,
                                  PG_REFERRERS_MAX_BYTES, on_referrers, ex,
                                  &err);
    if (ex->transfer == NULL)
        respond_error_free(ex, err);
}
