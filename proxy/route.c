/*
 * Request routing: method check, percent-decoding, path matching, query
 * parameters and upstream choice. Everything works on stack buffers
 * bounded by PG_URI_MAX, so a request cannot make routing allocate.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/error.h"
#include "config/limits.h"
#include "config/parse.h"
#include "proxy/reference.h"
#include "proxy/route.h"

/*
 * Docker Distribution's error code for a bad page size. The OCI
 * specification defines none, and lets registries add codes that clients
 * treat as UNKNOWN.
 */
#define ERR_PAGINATION_NUMBER_INVALID "PAGINATION_NUMBER_INVALID"

/* Characters of a method quoted in the 405 message. */
#define METHOD_ECHO_MAX 16

#define API_PREFIX "/v2/"
#define HEALTH_PATH "/healthz"
#define UPLOAD_MARKER "/blobs/uploads"
#define TAGS_LIST_SUFFIX "/tags/list"
#define DOCKER_HUB_PREFIX "library/"

static const char name_rule[] =
    "components are lowercase letters and digits separated by '.', '_', "
    "'__' or '-', joined by '/', at most 255 characters";

static const char tag_rule[] =
    "a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', "
    "not starting with '.' or '-'";

static const char digest_rule[] =
    "expected sha256: followed by 64 lowercase hex digits, or sha512: "
    "followed by 128";

/* The decoded path split into a kind, a repository name and a reference;
 * name and reference point into the decoded path. */
struct route_target {
    enum route_kind kind;
    const char *name;
    size_t name_len;
    const char *reference; /* "" for tags lists */
};

/* A query value; text is NULL when the parameter is absent. A decoded %00
 * leaves a NUL inside, so len, not strlen, is its length. */
struct query_value {
    const char *text;
    size_t len;
};

/* The query parameters that routing reads. */
struct route_query {
    char text[PG_URI_MAX + 1]; /* a copy of the query, decoded in place */
    struct query_value ns;
    struct query_value n;
    struct query_value last;
    struct query_value artifact_type;
};

static size_t
escaped_length(unsigned char c)
{
    bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';

    return plain ? 1 : 4;
}

/*
 * Writes len bytes of text into out for an error message: printable ASCII
 * is copied, and other bytes, '"' and '\\' become \xNN so that no request
 * byte can end the quotes or reach a terminal. A result longer than max
 * characters is cut and ends in "...". out has room for max + 1 bytes,
 * and max >= 3. Returns out.
 */
static const char *
escape_value(char *out, size_t max, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t total = 0;
    size_t limit = max;
    size_t used = 0;

    for (size_t i = 0; i < len; i++)
        total += escaped_length((unsigned char)text[i]);
    if (total > max)
        limit = max - 3;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (used + escaped_length(c) > limit)
            break;
        if (escaped_length(c) == 1) {
            out[used++] = (char)c;
            continue;
        }
        out[used++] = '\\';
        out[used++] = 'x';
        out[used++] = hex[c >> 4];
        out[used++] = hex[c & 0xf];
    }

    if (total > max) {
        memcpy(out + used, "...", 3);
        used += 3;
    }
    out[used] = '\0';
    return out;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes len bytes of in into out and ends out with a NUL. out has room
 * for len + 1 bytes and may be in itself, because each output byte is
 * written after the input bytes it comes from are read. Returns 0 and the
 * decoded length, or -1 at a '%' that is not followed by two hex digits.
 */
static int
percent_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t used = 0;

    for (size_t i = 0; i < len; i++) {
        int high;
        int low;

        if (in[i] != '%') {
            out[used++] = in[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        high = hex_value(in[i + 1]);
        low = hex_value(in[i + 2]);
        if (high < 0 || low < 0)
            return -1;
        out[used++] = (char)(high * 16 + low);
        i += 2;
    }

    out[used] = '\0';
    *out_len = used;
    return 0;
}

static int
check_method(const char *method, struct pg_error **err)
{
    char escaped[METHOD_ECHO_MAX + 1];

    if (method == NULL)
        method = "";
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return 0;

    escape_value(escaped, METHOD_ECHO_MAX, method, strnlen(method, PG_URI_MAX));
    pg_error_set(err, 405, PG_ERR_UNSUPPORTED,
                 "pullgate is a read-only mirror: %s is not supported",
                 escaped);
    return -1;
}

static int
check_uri_length(const char *uri, struct pg_error **err)
{
    if (strnlen(uri, PG_URI_MAX + 1) <= PG_URI_MAX)
        return 0;

    pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                 "request URI is longer than the maximum of %d bytes; "
                 "shorten the repository name or the query",
                 PG_URI_MAX);
    return -1;
}

/*
 * Decodes the path of uri into path (PG_URI_MAX + 1 bytes) and points
 * *query at the raw query ("" when there is none).
 */
static int
decode_path(const char *uri, char *path, size_t *path_len, const char **query,
            struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];
    size_t raw_len = strcspn(uri, "?");

    *query = uri[raw_len] == '?' ? uri + raw_len + 1 : "";
    if (percent_decode(uri, raw_len, path, path_len) == 0)
        return 0;

    escape_value(escaped, ROUTE_ECHO_MAX, uri, raw_len);
    pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                 "invalid percent-encoding in path \"%s\": '%%' must be "
                 "followed by two hex digits",
                 escaped);
    return -1;
}

/* True when the segment that starts at segment is "." or "..". */
static bool
is_dot_segment(const char *segment)
{
    size_t len = strcspn(segment, "/");

    return (len == 1 && segment[0] == '.') ||
           (len == 2 && segment[0] == '.' && segment[1] == '.');
}

/*
 * Rejects decoded paths that other software could read differently from
 * this proxy: an embedded NUL, an empty segment, or a "." or ".."
 * segment. Upload paths are rejected first, as writes.
 */
static int
check_path(const char *path, size_t len, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];
    const char *problem = NULL;

    /* NOTE: this also rejects pulls from a repository whose name contains
     * the components "blobs/uploads", which the name grammar allows. */
    if (strstr(path, UPLOAD_MARKER) != NULL) {
        pg_error_set(err, 405, PG_ERR_UNSUPPORTED,
                     "pullgate is a read-only mirror: blob uploads are not "
                     "supported");
        return -1;
    }

    if (strlen(path) != len)
        problem = "it contains an encoded NUL byte";
    else if (path[0] != '/')
        return 0; /* no route matches it, so match_path returns 404 */
    else if (strstr(path, "//") != NULL)
        problem = "it contains an empty segment (\"//\")";
    for (const char *p = path; problem == NULL && p != NULL;) {
        if (is_dot_segment(p))
            problem = "\".\" and \"..\" segments are not allowed";
        p = strchr(p, '/');
        if (p != NULL)
            p++;
    }
    if (problem == NULL)
        return 0;

    escape_value(escaped, ROUTE_ECHO_MAX, path, len);
    pg_error_set(err, 400, PG_ERR_NAME_INVALID, "invalid path \"%s\": %s",
                 escaped, problem);
    return -1;
}

/* Matches "<name>/tags/list" in rest, the path after "/v2/". */
static bool
match_tags_list(const char *rest, size_t len, struct route_target *target)
{
    size_t suffix_len = sizeof(TAGS_LIST_SUFFIX) - 1;

    if (len <= suffix_len)
        return false;
    if (memcmp(rest + len - suffix_len, TAGS_LIST_SUFFIX, suffix_len) != 0)
        return false;

    target->kind = ROUTE_TAGS_LIST;
    target->name = rest;
    target->name_len = len - suffix_len;
    target->reference = "";
    return true;
}

static bool
lookup_reference_kind(const char *segment, size_t len, enum route_kind *kind)
{
    static const struct {
        const char *segment;
        enum route_kind kind;
    } kinds[] = {
        {"manifests", ROUTE_MANIFEST},
        {"blobs", ROUTE_BLOB},
        {"referrers", ROUTE_REFERRERS},
    };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].segment) == len &&
            memcmp(kinds[i].segment, segment, len) == 0) {
            *kind = kinds[i].kind;
            return true;
        }
    }
    return false;
}

/*
 * Matches "<name>/<kind>/<reference>" in rest, the path after "/v2/". Only
 * the last two segments decide the kind, so a name may itself contain a
 * "manifests" or "blobs" component.
 */
static bool
match_reference_route(const char *rest, struct route_target *target)
{
    const char *last_slash = strrchr(rest, '/');
    const char *kind_start;

    if (last_slash == NULL || last_slash[1] == '\0')
        return false;

    kind_start = last_slash;
    while (kind_start > rest && kind_start[-1] != '/')
        kind_start--;
    if (kind_start - rest < 2)
        return false;
    if (!lookup_reference_kind(kind_start, (size_t)(last_slash - kind_start),
                               &target->kind))
        return false;

    target->name = rest;
    target->name_len = (size_t)(kind_start - 1 - rest);
    target->reference = last_slash + 1;
    return true;
}

static int
match_path(const char *path, struct route_target *target, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];
    size_t prefix_len = sizeof(API_PREFIX) - 1;
    const char *rest = path + prefix_len;

    if (strcmp(path, HEALTH_PATH) == 0) {
        target->kind = ROUTE_HEALTH;
        return 0;
    }
    if (strcmp(path, "/v2") == 0 || strcmp(path, API_PREFIX) == 0) {
        target->kind = ROUTE_API_BASE;
        return 0;
    }

    if (strncmp(path, API_PREFIX, prefix_len) == 0) {
        if (match_tags_list(rest, strlen(rest), target))
            return 0;
        if (match_reference_route(rest, target))
            return 0;
    }

    escape_value(escaped, ROUTE_ECHO_MAX, path, strlen(path));
    pg_error_set(err, 404, PG_ERR_NAME_UNKNOWN,
                 "no such route: %s; the API is under /v2/", escaped);
    return -1;
}

static bool
key_equals(const char *key, size_t len, const char *expected)
{
    return strlen(expected) == len && memcmp(key, expected, len) == 0;
}

static struct query_value *
query_slot(struct route_query *query, const char *key, size_t len)
{
    if (key_equals(key, len, "ns"))
        return &query->ns;
    if (key_equals(key, len, "n"))
        return &query->n;
    if (key_equals(key, len, "last"))
        return &query->last;
    if (key_equals(key, len, "artifactType"))
        return &query->artifact_type;
    return NULL;
}

/*
 * Decodes one "key=value" pair in place and stores the value when routing
 * reads that key and has not seen it yet. A key with a bad escape cannot
 * be one that routing reads, so it is ignored like any unknown key.
 */
static int
take_query_pair(struct route_query *query, char *pair, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];
    char *value = strchr(pair, '=');
    struct query_value *slot;
    size_t key_len;
    size_t value_len;

    if (value != NULL)
        *value++ = '\0';
    else
        value = pair + strlen(pair);

    if (percent_decode(pair, strlen(pair), pair, &key_len) < 0)
        return 0;
    slot = query_slot(query, pair, key_len);
    if (slot == NULL || slot->text != NULL)
        return 0;

    if (percent_decode(value, strlen(value), value, &value_len) < 0) {
        escape_value(escaped, ROUTE_ECHO_MAX, pair, key_len);
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "invalid percent-encoding in query parameter \"%s\": "
                     "'%%' must be followed by two hex digits",
                     escaped);
        return -1;
    }
    slot->text = value;
    slot->len = value_len;
    return 0;
}

static int
parse_query(const char *text, struct route_query *query, struct pg_error **err)
{
    char *pair = query->text;

    memset(query, 0, sizeof(*query));
    snprintf(query->text, sizeof(query->text), "%s", text);

    while (pair != NULL) {
        char *next = strchr(pair, '&');

        if (next != NULL)
            *next++ = '\0';
        if (take_query_pair(query, pair, err) < 0)
            return -1;
        pair = next;
    }
    return 0;
}

static bool
host_equals(const char *configured, const char *host, size_t len)
{
    return configured != NULL && strlen(configured) == len &&
           strncasecmp(configured, host, len) == 0;
}

/* Returns the upstream whose name or alias is host, ignoring case. */
static const struct config_upstream *
find_upstream(const struct config *cfg, const char *host, size_t len)
{
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct config_upstream *upstream = &cfg->upstreams[i];

        if (host_equals(upstream->name, host, len))
            return upstream;
        for (size_t j = 0; j < upstream->n_aliases; j++) {
            if (host_equals(upstream->aliases[j], host, len))
                return upstream;
        }
    }
    return NULL;
}

static int
reject_unknown_registry(const char *host, size_t len, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];

    escape_value(escaped, ROUTE_ECHO_MAX, host, len);
    pg_error_set(err, 404, PG_ERR_NAME_UNKNOWN,
                 "registry \"%s\" is not a configured upstream; add it under "
                 "upstreams in the configuration",
                 escaped);
    return -1;
}

static int
reject_name(const char *name, size_t len, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];

    escape_value(escaped, ROUTE_ECHO_MAX, name, len);
    pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                 "invalid repository name \"%s\": %s", escaped, name_rule);
    return -1;
}

/*
 * Validates name (len bytes, the client's name without any registry host)
 * and stores it in route->repository as the upstream names it: Docker Hub
 * keeps official images under "library/".
 */
static int
set_repository(struct route *route, const struct config_upstream *upstream,
               const char *name, size_t len, struct pg_error **err)
{
    char plain[PG_NAME_MAX + 1];
    char prefixed[sizeof(DOCKER_HUB_PREFIX) + PG_NAME_MAX];

    if (len > PG_NAME_MAX)
        return reject_name(name, len, err);
    memcpy(plain, name, len);
    plain[len] = '\0';
    if (!reference_name_valid(plain))
        return reject_name(name, len, err);

    route->upstream = upstream;
    if (!upstream->docker_hub || strchr(plain, '/') != NULL) {
        memcpy(route->repository, plain, len + 1);
        return 0;
    }

    snprintf(prefixed, sizeof(prefixed), "%s%s", DOCKER_HUB_PREFIX, plain);
    if (strlen(prefixed) > PG_NAME_MAX)
        return reject_name(prefixed, strlen(prefixed), err);
    memcpy(route->repository, prefixed, strlen(prefixed) + 1);
    return 0;
}

/*
 * Chooses the upstream for target's name and fills route->client_name and
 * route->repository. "ns" wins over a leading registry host, which wins
 * over the default upstream.
 */
static int
select_upstream(const struct config *cfg, const struct route_target *target,
                const struct route_query *query, struct route *route,
                struct pg_error **err)
{
    const struct config_upstream *upstream;
    const char *name = target->name;
    size_t len = target->name_len;
    const char *slash;
    size_t host_len;

    if (len >= sizeof(route->client_name))
        return reject_name(name, len, err);
    memcpy(route->client_name, name, len);
    route->client_name[len] = '\0';

    if (query->ns.len > 0) {
        upstream = find_upstream(cfg, query->ns.text, query->ns.len);
        if (upstream == NULL)
            return reject_unknown_registry(query->ns.text, query->ns.len, err);
        return set_repository(route, upstream, name, len, err);
    }

    slash = memchr(name, '/', len);
    if (slash != NULL) {
        host_len = (size_t)(slash - name);
        upstream = find_upstream(cfg, name, host_len);
        if (upstream != NULL)
            return set_repository(route, upstream, slash + 1,
                                  len - host_len - 1, err);
        if (reference_component_is_host(name, host_len))
            return reject_unknown_registry(name, host_len, err);
    }
    return set_repository(route, &cfg->upstreams[0], name, len, err);
}

static int
reject_digest(const char *digest, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];

    escape_value(escaped, ROUTE_ECHO_MAX, digest, strlen(digest));
    pg_error_set(err, 400, PG_ERR_DIGEST_INVALID, "invalid digest \"%s\": %s",
                 escaped, digest_rule);
    return -1;
}

static int
reject_tag(const char *what, const char *tag, size_t len, struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];

    escape_value(escaped, ROUTE_ECHO_MAX, tag, len);
    pg_error_set(err, 400, PG_ERR_NAME_INVALID, "invalid %s \"%s\": %s", what,
                 escaped, tag_rule);
    return -1;
}

/* Validates the tag or digest of the path and copies it to the route. */
static int
set_reference(const struct route_target *target, struct route *route,
              struct pg_error **err)
{
    const char *reference = target->reference;

    if (target->kind == ROUTE_TAGS_LIST)
        return 0;

    if (target->kind != ROUTE_MANIFEST || reference_is_digest(reference)) {
        if (!reference_digest_valid(reference))
            return reject_digest(reference, err);
        route->reference_is_digest = 1;
    } else if (!reference_tag_valid(reference)) {
        return reject_tag("tag", reference, strlen(reference), err);
    }

    snprintf(route->reference, sizeof(route->reference), "%s", reference);
    return 0;
}

static int
set_tags_paging(const struct route_query *query, struct route *route,
                struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];
    const struct query_value *n = &query->n;
    const struct query_value *last = &query->last;
    uint64_t count;

    if (n->len > 0) {
        if (pg_parse_u64_n(n->text, n->len, ROUTE_TAGS_N_MAX, &count) < 0) {
            escape_value(escaped, ROUTE_ECHO_MAX, n->text, n->len);
            pg_error_set(err, 400, ERR_PAGINATION_NUMBER_INVALID,
                         "invalid n \"%s\": expected a number from 0 to %d",
                         escaped, ROUTE_TAGS_N_MAX);
            return -1;
        }
        route->tags_n = (uint32_t)count;
    }

    if (last->len > 0) {
        if (strlen(last->text) != last->len || !reference_tag_valid(last->text))
            return reject_tag("last", last->text, last->len, err);
        memcpy(route->tags_last, last->text, last->len + 1);
    }
    return 0;
}

static int
set_artifact_type(const struct query_value *value, struct route *route,
                  struct pg_error **err)
{
    char escaped[ROUTE_ECHO_MAX + 1];
    bool printable = value->len <= ROUTE_ARTIFACT_TYPE_MAX;

    for (size_t i = 0; printable && i < value->len; i++) {
        unsigned char c = (unsigned char)value->text[i];

        printable = c >= 0x20 && c < 0x7f;
    }
    if (printable) {
        memcpy(route->artifact_type, value->text, value->len);
        route->artifact_type[value->len] = '\0';
        return 0;
    }

    escape_value(escaped, ROUTE_ECHO_MAX, value->text, value->len);
    pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                 "invalid artifactType \"%s\": expected a media type of at "
                 "most %d printable ASCII characters",
                 escaped, ROUTE_ARTIFACT_TYPE_MAX);
    return -1;
}

int
route_parse(const struct config *cfg, const char *method, const char *uri,
            struct route *route, struct pg_error **err)
{
    char path[PG_URI_MAX + 1];
    struct route_query query;
    struct route_target target;
    const char *query_text;
    size_t path_len;

    memset(route, 0, sizeof(*route));
    route->tags_n = UINT32_MAX;
    if (uri == NULL)
        uri = "";

    if (check_method(method, err) < 0 || check_uri_length(uri, err) < 0)
        return -1;
    if (decode_path(uri, path, &path_len, &query_text, err) < 0)
        return -1;
    if (check_path(path, path_len, err) < 0)
        return -1;
    if (match_path(path, &target, err) < 0)
        return -1;

    route->kind = target.kind;
    if (target.kind == ROUTE_HEALTH || target.kind == ROUTE_API_BASE)
        return 0;

    if (cfg->n_upstreams == 0) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "no upstream is configured; add one under upstreams in "
                     "the configuration");
        return -1;
    }
    if (parse_query(query_text, &query, err) < 0)
        return -1;
    if (select_upstream(cfg, &target, &query, route, err) < 0)
        return -1;
    if (set_reference(&target, route, err) < 0)
        return -1;

    if (target.kind == ROUTE_TAGS_LIST)
        return set_tags_paging(&query, route, err);
    if (target.kind == ROUTE_REFERRERS && query.artifact_type.len > 0)
        return set_artifact_type(&query.artifact_type, route, err);
    return 0;
}

const char *
route_kind_name(enum route_kind kind)
{
    switch (kind) {
    case ROUTE_API_BASE:
        return "api-base";
    case ROUTE_MANIFEST:
        return "manifest";
    case ROUTE_BLOB:
        return "blob";
    case ROUTE_TAGS_LIST:
        return "tags-list";
    case ROUTE_REFERRERS:
        return "referrers";
    case ROUTE_HEALTH:
        return "health";
    }
    return "unknown";
}
