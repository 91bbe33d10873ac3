/*
 * Unit tests for proxy/route.c. The configuration has three upstreams:
 * docker.io (the default, Docker Hub, with two aliases), ghcr.io and
 * localhost:5001. Each table row is one request and the exact route or
 * the exact status, error code and message expected.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "config/config.h"
#include "config/error.h"
#include "config/limits.h"
#include "proxy/route.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D256 "sha256:" HEX64
#define D512 "sha512:" HEX64 HEX64

#define NAME_RULE                                                              \
    "components are lowercase letters and digits separated by '.', '_', "      \
    "'__' or '-', joined by '/', at most 255 characters"
#define TAG_RULE                                                               \
    "a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', "      \
    "not starting with '.' or '-'"
#define DIGEST_RULE                                                            \
    "expected sha256: followed by 64 lowercase hex digits, or sha512: "        \
    "followed by 128"
#define UNKNOWN_REGISTRY(host)                                                 \
    "registry \"" host "\" is not a configured upstream; add it under "        \
    "upstreams in the configuration"
#define READ_ONLY(method)                                                      \
    "pullgate is a read-only mirror: " method " is not supported"
#define NO_ROUTE(path) "no such route: " path "; the API is under /v2/"

enum { DOCKER, GHCR, LOCAL, NONE };

static char *docker_aliases[] = {"index.docker.io", "registry-1.docker.io"};

static struct config_upstream upstreams[] = {
    {
        .name = "docker.io",
        .url = "https://registry-1.docker.io",
        .aliases = docker_aliases,
        .n_aliases = 2,
        .docker_hub = true,
    },
    {.name = "ghcr.io", .url = "https://ghcr.io"},
    {.name = "localhost:5001", .url = "http://localhost:5001"},
};

static struct config cfg = {
    .upstreams = upstreams,
    .n_upstreams = 3,
};

struct ok_case {
    const char *method;
    const char *uri;
    enum route_kind kind;
    int upstream;
    const char *client_name;
    const char *repository;
    const char *reference;
    int reference_is_digest;
};

static const struct ok_case ok_cases[] = {
    /* Default upstream; Docker Hub's one-component names get library/. */
    {"GET", "/v2/alpine/manifests/3", ROUTE_MANIFEST, DOCKER, "alpine",
     "library/alpine", "3", 0},
    {"HEAD", "/v2/alpine/manifests/3", ROUTE_MANIFEST, DOCKER, "alpine",
     "library/alpine", "3", 0},
    {"GET", "/v2/org/app/manifests/x", ROUTE_MANIFEST, DOCKER, "org/app",
     "org/app", "x", 0},
    {"GET", "/v2/library/alpine/manifests/" D256, ROUTE_MANIFEST, DOCKER,
     "library/alpine", "library/alpine", D256, 1},
    {"GET", "/v2/org/app/manifests/" D512, ROUTE_MANIFEST, DOCKER, "org/app",
     "org/app", D512, 1},
    {"GET", "/v2/org/app/blobs/" D256, ROUTE_BLOB, DOCKER, "org/app", "org/app",
     D256, 1},
    {"HEAD", "/v2/alpine/blobs/" D256, ROUTE_BLOB, DOCKER, "alpine",
     "library/alpine", D256, 1},
    {"GET", "/v2/org/app/tags/list", ROUTE_TAGS_LIST, DOCKER, "org/app",
     "org/app", "", 0},
    {"GET", "/v2/alpine/tags/list", ROUTE_TAGS_LIST, DOCKER, "alpine",
     "library/alpine", "", 0},
    {"GET", "/v2/org/app/referrers/" D256, ROUTE_REFERRERS, DOCKER, "org/app",
     "org/app", D256, 1},

    /* A registry host, name or alias, leading the name. */
    {"GET", "/v2/ghcr.io/org/app/manifests/1", ROUTE_MANIFEST, GHCR,
     "ghcr.io/org/app", "org/app", "1", 0},
    {"GET", "/v2/ghcr.io/app/manifests/1", ROUTE_MANIFEST, GHCR, "ghcr.io/app",
     "app", "1", 0},
    {"GET", "/v2/docker.io/alpine/manifests/3", ROUTE_MANIFEST, DOCKER,
     "docker.io/alpine", "library/alpine", "3", 0},
    {"GET", "/v2/index.docker.io/alpine/manifests/3", ROUTE_MANIFEST, DOCKER,
     "index.docker.io/alpine", "library/alpine", "3", 0},
    {"GET", "/v2/registry-1.docker.io/org/app/blobs/" D256, ROUTE_BLOB, DOCKER,
     "registry-1.docker.io/org/app", "org/app", D256, 1},
    {"GET", "/v2/GHCR.io/org/app/manifests/1", ROUTE_MANIFEST, GHCR,
     "GHCR.io/org/app", "org/app", "1", 0},
    {"GET", "/v2/localhost:5001/team/app/manifests/1", ROUTE_MANIFEST, LOCAL,
     "localhost:5001/team/app", "team/app", "1", 0},
    {"GET", "/v2/localhost%3A5001/team/app/tags/list", ROUTE_TAGS_LIST, LOCAL,
     "localhost:5001/team/app", "team/app", "", 0},
    {"GET", "/v2/ghcr.io/org/app/referrers/" D256, ROUTE_REFERRERS, GHCR,
     "ghcr.io/org/app", "org/app", D256, 1},
    /* A single component is a repository, never a registry host. */
    {"GET", "/v2/docker.io/manifests/1", ROUTE_MANIFEST, DOCKER, "docker.io",
     "library/docker.io", "1", 0},

    /* containerd's ns parameter. */
    {"GET", "/v2/alpine/manifests/3?ns=ghcr.io", ROUTE_MANIFEST, GHCR, "alpine",
     "alpine", "3", 0},
    {"GET", "/v2/alpine/manifests/3?ns=docker.io", ROUTE_MANIFEST, DOCKER,
     "alpine", "library/alpine", "3", 0},
    {"GET", "/v2/alpine/manifests/3?ns=INDEX.Docker.IO", ROUTE_MANIFEST, DOCKER,
     "alpine", "library/alpine", "3", 0},
    {"GET", "/v2/team/app/blobs/" D256 "?ns=localhost%3A5001", ROUTE_BLOB,
     LOCAL, "team/app", "team/app", D256, 1},
    {"GET", "/v2/ghcr.io/org/app/manifests/1?ns=docker.io", ROUTE_MANIFEST,
     DOCKER, "ghcr.io/org/app", "ghcr.io/org/app", "1", 0},
    {"GET", "/v2/alpine/manifests/3?ns=", ROUTE_MANIFEST, DOCKER, "alpine",
     "library/alpine", "3", 0},
    {"GET", "/v2/alpine/manifests/3?ns=ghcr.io&ns=docker.io", ROUTE_MANIFEST,
     GHCR, "alpine", "alpine", "3", 0},
    {"GET", "/v2/alpine/manifests/3?x=%zz&n=abc&ns=ghcr.io", ROUTE_MANIFEST,
     GHCR, "alpine", "alpine", "3", 0},
    {"GET", "/v2/alpine/manifests/3?%6Es=ghcr.io", ROUTE_MANIFEST, GHCR,
     "alpine", "alpine", "3", 0},

    /* Names with route words as components; encoded paths. */
    {"GET", "/v2/org/manifests/app/manifests/latest", ROUTE_MANIFEST, DOCKER,
     "org/manifests/app", "org/manifests/app", "latest", 0},
    {"GET", "/v2/org/app/manifests/manifests", ROUTE_MANIFEST, DOCKER,
     "org/app", "org/app", "manifests", 0},
    {"GET", "/v2/tags/list/tags/list", ROUTE_TAGS_LIST, DOCKER, "tags/list",
     "tags/list", "", 0},
    {"GET", "/v2/blobs/referrers/blobs/" D256, ROUTE_BLOB, DOCKER,
     "blobs/referrers", "blobs/referrers", D256, 1},
    {"GET", "/v2/org%2Fapp/manifests/1", ROUTE_MANIFEST, DOCKER, "org/app",
     "org/app", "1", 0},
    {"GET", "/v2/%61lpine/manifests/%33", ROUTE_MANIFEST, DOCKER, "alpine",
     "library/alpine", "3", 0},
    {"GET", "/v2/org/app/manifests/sha256%3A" HEX64, ROUTE_MANIFEST, DOCKER,
     "org/app", "org/app", D256, 1},
};

START_TEST(parse_ok_table)
{
    const struct ok_case *c = &ok_cases[_i];
    struct pg_error *err = NULL;
    struct route route;
    int rc = route_parse(&cfg, c->method, c->uri, &route, &err);

    ck_assert_msg(rc == 0, "%s %s: %s", c->method, c->uri,
                  err != NULL ? err->message : "no error");
    ck_assert_ptr_null(err);
    ck_assert_str_eq(route_kind_name(route.kind), route_kind_name(c->kind));
    ck_assert_ptr_eq(route.upstream, &upstreams[c->upstream]);
    ck_assert_str_eq(route.client_name, c->client_name);
    ck_assert_str_eq(route.repository, c->repository);
    ck_assert_str_eq(route.reference, c->reference);
    ck_assert_int_eq(route.reference_is_digest, c->reference_is_digest);
    ck_assert_uint_eq(route.tags_n, UINT32_MAX);
    ck_assert_str_eq(route.tags_last, "");
    ck_assert_str_eq(route.artifact_type, "");
}
END_TEST

struct plain_case {
    const char *method;
    const char *uri;
    enum route_kind kind;
};

static const struct plain_case plain_cases[] = {
    {"GET", "/healthz", ROUTE_HEALTH},
    {"HEAD", "/healthz", ROUTE_HEALTH},
    {"GET", "/healthz?probe=1", ROUTE_HEALTH},
    {"GET", "/v2", ROUTE_API_BASE},
    {"GET", "/v2/", ROUTE_API_BASE},
    {"HEAD", "/v2/", ROUTE_API_BASE},
    {"GET", "/v2/?ns=quay.io", ROUTE_API_BASE},
    {"GET", "/v2%2F", ROUTE_API_BASE},
};

START_TEST(parse_plain_table)
{
    const struct plain_case *c = &plain_cases[_i];
    struct pg_error *err = NULL;
    struct route route;
    int rc = route_parse(&cfg, c->method, c->uri, &route, &err);

    ck_assert_msg(rc == 0, "%s %s: %s", c->method, c->uri,
                  err != NULL ? err->message : "no error");
    ck_assert_ptr_null(err);
    ck_assert_str_eq(route_kind_name(route.kind), route_kind_name(c->kind));
    ck_assert_ptr_null(route.upstream);
    ck_assert_str_eq(route.repository, "");
}
END_TEST

struct query_case {
    const char *uri;
    uint32_t tags_n;
    const char *tags_last;
    const char *artifact_type;
};

static const struct query_case query_cases[] = {
    {"/v2/org/app/tags/list?n=10", 10, "", ""},
    {"/v2/org/app/tags/list?n=0", 0, "", ""},
    {"/v2/org/app/tags/list?n=100000", 100000, "", ""},
    {"/v2/org/app/tags/list?n=%31%32", 12, "", ""},
    {"/v2/org/app/tags/list?n=", UINT32_MAX, "", ""},
    {"/v2/org/app/tags/list?last=v1.0", UINT32_MAX, "v1.0", ""},
    {"/v2/org/app/tags/list?n=5&last=v1.0", 5, "v1.0", ""},
    {"/v2/org/app/tags/list?last=&n=5", 5, "", ""},
    {"/v2/org/app/tags/list?n=5&n=abc", 5, "", ""},
    {"/v2/org/app/tags/list?artifactType=x%0A", UINT32_MAX, "", ""},
    {"/v2/org/app/referrers/" D256 "?artifactType=application%2Fvnd.a%2Bjson",
     UINT32_MAX, "", "application/vnd.a+json"},
    {"/v2/org/app/referrers/" D256 "?artifactType=application/vnd.a+json",
     UINT32_MAX, "", "application/vnd.a+json"},
    {"/v2/org/app/referrers/" D256 "?artifactType=", UINT32_MAX, "", ""},
    {"/v2/org/app/referrers/" D256 "?n=abc&last=.x", UINT32_MAX, "", ""},
};

START_TEST(parse_query_table)
{
    const struct query_case *c = &query_cases[_i];
    struct pg_error *err = NULL;
    struct route route;
    int rc = route_parse(&cfg, "GET", c->uri, &route, &err);

    ck_assert_msg(rc == 0, "%s: %s", c->uri,
                  err != NULL ? err->message : "no error");
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(route.tags_n, c->tags_n);
    ck_assert_str_eq(route.tags_last, c->tags_last);
    ck_assert_str_eq(route.artifact_type, c->artifact_type);
}
END_TEST

struct error_case {
    const char *method;
    const char *uri;
    int status;
    const char *code;
    const char *message;
};

static const struct error_case error_cases[] = {
    /* Writes. */
    {"PUT", "/v2/alpine/manifests/3", 405, "UNSUPPORTED", READ_ONLY("PUT")},
    {"POST", "/v2/alpine/blobs/uploads/", 405, "UNSUPPORTED",
     READ_ONLY("POST")},
    {"PATCH", "/v2/alpine/blobs/uploads/1", 405, "UNSUPPORTED",
     READ_ONLY("PATCH")},
    {"DELETE", "/v2/alpine/manifests/" D256, 405, "UNSUPPORTED",
     READ_ONLY("DELETE")},
    {"OPTIONS", "/v2/", 405, "UNSUPPORTED", READ_ONLY("OPTIONS")},
    {"get", "/v2/", 405, "UNSUPPORTED", READ_ONLY("get")},
    {"", "/v2/", 405, "UNSUPPORTED", READ_ONLY("")},
    {"VERYLONGMETHODNAME", "/v2/", 405, "UNSUPPORTED",
     READ_ONLY("VERYLONGMETHO...")},
    {"PU\x01\"", "/v2/", 405, "UNSUPPORTED", READ_ONLY("PU\\x01\\x22")},
    {"GET", "/v2/alpine/blobs/uploads/", 405, "UNSUPPORTED",
     "pullgate is a read-only mirror: blob uploads are not supported"},
    {"HEAD", "/v2/org/app/blobs/uploads/abc?_state=x", 405, "UNSUPPORTED",
     "pullgate is a read-only mirror: blob uploads are not supported"},
    {"GET", "/v2/alpine/blobs%2Fuploads/x", 405, "UNSUPPORTED",
     "pullgate is a read-only mirror: blob uploads are not supported"},

    /* Paths that decode badly or ambiguously. */
    {"GET", "/v2/a%zz/manifests/1", 400, "NAME_INVALID",
     "invalid percent-encoding in path \"/v2/a%zz/manifests/1\": '%' must "
     "be followed by two hex digits"},
    {"GET", "/v2/a/manifests/1%4", 400, "NAME_INVALID",
     "invalid percent-encoding in path \"/v2/a/manifests/1%4\": '%' must be "
     "followed by two hex digits"},
    {"GET", "/v2/a%00b/manifests/1", 400, "NAME_INVALID",
     "invalid path \"/v2/a\\x00b/manifests/1\": it contains an encoded NUL "
     "byte"},
    {"GET", "/v2//manifests/1", 400, "NAME_INVALID",
     "invalid path \"/v2//manifests/1\": it contains an empty segment "
     "(\"//\")"},
    {"GET", "/v2/a%2F%2Fb/manifests/1", 400, "NAME_INVALID",
     "invalid path \"/v2/a//b/manifests/1\": it contains an empty segment "
     "(\"//\")"},
    {"GET", "/v2/../healthz", 400, "NAME_INVALID",
     "invalid path \"/v2/../healthz\": \".\" and \"..\" segments are not "
     "allowed"},
    {"GET", "/v2/a/./manifests/1", 400, "NAME_INVALID",
     "invalid path \"/v2/a/./manifests/1\": \".\" and \"..\" segments are "
     "not allowed"},
    {"GET", "/v2/a/%2e%2E/manifests/1", 400, "NAME_INVALID",
     "invalid path \"/v2/a/../manifests/1\": \".\" and \"..\" segments are "
     "not allowed"},
    {"GET", "/v2/a/manifests/..", 400, "NAME_INVALID",
     "invalid path \"/v2/a/manifests/..\": \".\" and \"..\" segments are "
     "not allowed"},

    /* Paths outside the API. */
    {"GET", "", 404, "NAME_UNKNOWN", NO_ROUTE("")},
    {"GET", "/", 404, "NAME_UNKNOWN", NO_ROUTE("/")},
    {"GET", "/v3/", 404, "NAME_UNKNOWN", NO_ROUTE("/v3/")},
    {"GET", "/healthz/", 404, "NAME_UNKNOWN", NO_ROUTE("/healthz/")},
    {"GET", "/v2/alpine", 404, "NAME_UNKNOWN", NO_ROUTE("/v2/alpine")},
    {"GET", "/v2/alpine/manifests", 404, "NAME_UNKNOWN",
     NO_ROUTE("/v2/alpine/manifests")},
    {"GET", "/v2/alpine/manifests/", 404, "NAME_UNKNOWN",
     NO_ROUTE("/v2/alpine/manifests/")},
    {"GET", "/v2/manifests/latest", 404, "NAME_UNKNOWN",
     NO_ROUTE("/v2/manifests/latest")},
    {"GET", "/v2/alpine/tags/list/", 404, "NAME_UNKNOWN",
     NO_ROUTE("/v2/alpine/tags/list/")},
    {"GET", "/v2/tags/list", 404, "NAME_UNKNOWN", NO_ROUTE("/v2/tags/list")},
    {"GET", "/v2/alpine/tags/1", 404, "NAME_UNKNOWN",
     NO_ROUTE("/v2/alpine/tags/1")},
    {"GET", "/v2/_catalog", 404, "NAME_UNKNOWN", NO_ROUTE("/v2/_catalog")},
    {"GET", "/v2/a%0Ab\xff", 404, "NAME_UNKNOWN", NO_ROUTE("/v2/a\\x0ab\\xff")},
    {"GET", "http://x/v2/", 404, "NAME_UNKNOWN", NO_ROUTE("http://x/v2/")},
    {"GET", "x/../v2/", 404, "NAME_UNKNOWN", NO_ROUTE("x/../v2/")},
    {"GET", "%00/v2/", 400, "NAME_INVALID",
     "invalid path \"\\x00/v2/\": it contains an encoded NUL byte"},

    /* Registries that are not configured. */
    {"GET", "/v2/alpine/manifests/3?ns=quay.io", 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("quay.io")},
    {"GET", "/v2/org/app/tags/list?ns=ghcr.io.evil", 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("ghcr.io.evil")},
    {"GET", "/v2/alpine/manifests/3?ns=docker.io%00", 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("docker.io\\x00")},
    {"GET", "/v2/alpine/manifests/3?ns=a%22b", 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("a\\x22b")},
    {"GET", "/v2/quay.io/org/app/manifests/1", 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("quay.io")},
    {"GET", "/v2/localhost/app/manifests/1", 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("localhost")},
    {"GET", "/v2/localhost:5002/app/blobs/" D256, 404, "NAME_UNKNOWN",
     UNKNOWN_REGISTRY("localhost:5002")},
    {"GET", "/v2/alpine/manifests/3?ns=quay.io%zz", 400, "NAME_INVALID",
     "invalid percent-encoding in query parameter \"ns\": '%' must be "
     "followed by two hex digits"},

    /* Names, tags and digests outside the grammar. */
    {"GET", "/v2/Org/app/manifests/1", 400, "NAME_INVALID",
     "invalid repository name \"Org/app\": " NAME_RULE},
    {"GET", "/v2/ghcr.io/Org/app/manifests/1", 400, "NAME_INVALID",
     "invalid repository name \"Org/app\": " NAME_RULE},
    {"GET", "/v2/a___b/manifests/1", 400, "NAME_INVALID",
     "invalid repository name \"a___b\": " NAME_RULE},
    {"GET", "/v2/-a/blobs/" D256, 400, "NAME_INVALID",
     "invalid repository name \"-a\": " NAME_RULE},
    {"GET", "/v2/localhost:5001/x/manifests/1?ns=docker.io", 400,
     "NAME_INVALID",
     "invalid repository name \"localhost:5001/x\": " NAME_RULE},
    {"GET", "/v2/a%22b/tags/list", 400, "NAME_INVALID",
     "invalid repository name \"a\\x22b\": " NAME_RULE},
    {"GET", "/v2/alpine/manifests/-latest", 400, "NAME_INVALID",
     "invalid tag \"-latest\": " TAG_RULE},
    {"GET", "/v2/alpine/manifests/.x", 400, "NAME_INVALID",
     "invalid tag \".x\": " TAG_RULE},
    {"GET", "/v2/alpine/manifests/a%20b", 400, "NAME_INVALID",
     "invalid tag \"a b\": " TAG_RULE},
    {"GET", "/v2/alpine/manifests/sha256:" HEX64 "0", 400, "DIGEST_INVALID",
     "invalid digest \"sha256:" HEX64 "0\": " DIGEST_RULE},
    {"GET",
     "/v2/alpine/manifests/"
     "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
     400, "DIGEST_INVALID",
     "invalid digest "
     "\"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcd"
     "ef\": " DIGEST_RULE},
    {"GET", "/v2/alpine/manifests/sha1:abc", 400, "DIGEST_INVALID",
     "invalid digest \"sha1:abc\": " DIGEST_RULE},
    {"GET", "/v2/alpine/blobs/latest", 400, "DIGEST_INVALID",
     "invalid digest \"latest\": " DIGEST_RULE},
    {"GET", "/v2/alpine/blobs/" HEX64, 400, "DIGEST_INVALID",
     "invalid digest \"" HEX64 "\": " DIGEST_RULE},
    {"HEAD", "/v2/alpine/referrers/sha384:abc", 400, "DIGEST_INVALID",
     "invalid digest \"sha384:abc\": " DIGEST_RULE},
    {"GET", "/v2/alpine/referrers/v1", 400, "DIGEST_INVALID",
     "invalid digest \"v1\": " DIGEST_RULE},

    /* Query parameters of tags lists and referrers. */
    {"GET", "/v2/org/app/tags/list?n=100001", 400, "PAGINATION_NUMBER_INVALID",
     "invalid n \"100001\": expected a number from 0 to 100000"},
    {"GET", "/v2/org/app/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID",
     "invalid n \"-1\": expected a number from 0 to 100000"},
    {"GET", "/v2/org/app/tags/list?n=abc", 400, "PAGINATION_NUMBER_INVALID",
     "invalid n \"abc\": expected a number from 0 to 100000"},
    {"GET", "/v2/org/app/tags/list?n=1x", 400, "PAGINATION_NUMBER_INVALID",
     "invalid n \"1x\": expected a number from 0 to 100000"},
    {"GET", "/v2/org/app/tags/list?n=+5", 400, "PAGINATION_NUMBER_INVALID",
     "invalid n \"+5\": expected a number from 0 to 100000"},
    {"GET", "/v2/org/app/tags/list?n=99999999999999999999999", 400,
     "PAGINATION_NUMBER_INVALID",
     "invalid n \"99999999999999999999999\": expected a number from 0 to "
     "100000"},
    {"GET", "/v2/org/app/tags/list?n=1%002", 400, "PAGINATION_NUMBER_INVALID",
     "invalid n \"1\\x002\": expected a number from 0 to 100000"},
    {"GET", "/v2/org/app/tags/list?last=.bad", 400, "NAME_INVALID",
     "invalid last \".bad\": " TAG_RULE},
    {"GET", "/v2/org/app/tags/list?last=a%00b", 400, "NAME_INVALID",
     "invalid last \"a\\x00b\": " TAG_RULE},
    {"GET", "/v2/org/app/tags/list?n=1&last=a:b", 400, "NAME_INVALID",
     "invalid last \"a:b\": " TAG_RULE},
    {"GET", "/v2/org/app/referrers/" D256 "?artifactType=a%0Ab", 400,
     "NAME_INVALID",
     "invalid artifactType \"a\\x0ab\": expected a media type of at most 255 "
     "printable ASCII characters"},
};

START_TEST(parse_error_table)
{
    const struct error_case *c = &error_cases[_i];
    struct pg_error *err = NULL;
    struct route route;
    int rc = route_parse(&cfg, c->method, c->uri, &route, &err);

    ck_assert_msg(rc == -1, "%s %s should fail", c->method, c->uri);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, c->status);
    ck_assert_str_eq(err->code, c->code);
    ck_assert_str_eq(err->message, c->message);
    pg_error_free(err);
}
END_TEST

/* Runs a request that must fail and checks the error it returns. */
static void
assert_error(const char *method, const char *uri, int status, const char *code,
             const char *message)
{
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, method, uri, &route, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, status);
    ck_assert_str_eq(err->code, code);
    ck_assert_str_eq(err->message, message);
    pg_error_free(err);
}

/* Returns a new string: prefix, then count copies of fill, then suffix. */
static char *
make_string(const char *prefix, char fill, size_t count, const char *suffix)
{
    size_t prefix_len = strlen(prefix);
    size_t suffix_len = strlen(suffix);
    char *text = malloc(prefix_len + count + suffix_len + 1);

    ck_assert_ptr_nonnull(text);
    memcpy(text, prefix, prefix_len);
    memset(text + prefix_len, fill, count);
    memcpy(text + prefix_len + count, suffix, suffix_len + 1);
    return text;
}

START_TEST(uri_length_max)
{
    const char *prefix = "/v2/org/app/manifests/1?x=";
    char *uri = make_string(prefix, 'a', PG_URI_MAX - strlen(prefix), "");
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_uint_eq(strlen(uri), 4096);
    ck_assert_int_eq(route_parse(&cfg, "GET", uri, &route, &err), 0);
    ck_assert_ptr_null(err);
    free(uri);
}
END_TEST

START_TEST(uri_length_over_max)
{
    const char *prefix = "/v2/org/app/manifests/1?x=";
    char *uri = make_string(prefix, 'a', PG_URI_MAX + 1 - strlen(prefix), "");

    assert_error("GET", uri, 400, "NAME_INVALID",
                 "request URI is longer than the maximum of 4096 bytes; "
                 "shorten the repository name or the query");
    free(uri);
}
END_TEST

START_TEST(name_length_max)
{
    char *uri = make_string("/v2/org/", 'a', PG_NAME_MAX - 4, "/manifests/1");
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, "GET", uri, &route, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(strlen(route.repository), 255);
    free(uri);
}
END_TEST

START_TEST(name_length_over_max)
{
    char *uri = make_string("/v2/org/", 'a', PG_NAME_MAX - 3, "/manifests/1");
    char *name = make_string("org/", 'a', PG_NAME_MAX - 3, "");
    char message[1024];

    snprintf(message, sizeof(message), "invalid repository name \"%s\": %s",
             name, NAME_RULE);
    ck_assert_uint_eq(strlen(name), 256);
    assert_error("GET", uri, 400, "NAME_INVALID", message);
    free(name);
    free(uri);
}
END_TEST

START_TEST(name_with_host_length_max)
{
    char *uri =
        make_string("/v2/ghcr.io/org/", 'a', PG_NAME_MAX - 4, "/manifests/1");
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, "GET", uri, &route, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_ptr_eq(route.upstream, &upstreams[GHCR]);
    ck_assert_uint_eq(strlen(route.repository), 255);
    ck_assert_uint_eq(strlen(route.client_name), 263);
    free(uri);
}
END_TEST

START_TEST(library_prefix_over_max)
{
    char *uri = make_string("/v2/", 'a', PG_NAME_MAX - 7, "/manifests/1");
    char *name = make_string("library/", 'a', PG_NAME_MAX - 7, "");
    char message[1024];

    snprintf(message, sizeof(message), "invalid repository name \"%s\": %s",
             name, NAME_RULE);
    ck_assert_uint_eq(strlen(name), 256);
    assert_error("GET", uri, 400, "NAME_INVALID", message);
    free(name);
    free(uri);
}
END_TEST

START_TEST(library_prefix_length_max)
{
    char *uri = make_string("/v2/", 'a', PG_NAME_MAX - 8, "/manifests/1");
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, "GET", uri, &route, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(strlen(route.repository), 255);
    ck_assert_int_eq(strncmp(route.repository, "library/", 8), 0);
    free(uri);
}
END_TEST

START_TEST(client_name_over_buffer)
{
    char *uri = make_string("/v2/a/", 'b', 600, "/manifests/1");
    char *escaped = make_string("a/", 'b', 251, "...");
    char message[1024];

    snprintf(message, sizeof(message), "invalid repository name \"%s\": %s",
             escaped, NAME_RULE);
    ck_assert_uint_eq(strlen(escaped), 256);
    assert_error("GET", uri, 400, "NAME_INVALID", message);
    free(escaped);
    free(uri);
}
END_TEST

START_TEST(tag_length_max)
{
    char *uri = make_string("/v2/alpine/manifests/", 't', PG_TAG_MAX, "");
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, "GET", uri, &route, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(strlen(route.reference), 128);
    free(uri);
}
END_TEST

START_TEST(tag_length_over_max)
{
    char *uri = make_string("/v2/alpine/manifests/", 't', PG_TAG_MAX + 1, "");
    char *tag = make_string("", 't', PG_TAG_MAX + 1, "");
    char message[1024];

    snprintf(message, sizeof(message), "invalid tag \"%s\": %s", tag, TAG_RULE);
    assert_error("GET", uri, 400, "NAME_INVALID", message);
    free(tag);
    free(uri);
}
END_TEST

START_TEST(path_echo_cut)
{
    char *uri = make_string("/x/", 'p', 300, "");
    char *escaped = make_string("/x/", 'p', 250, "...");
    char message[1024];

    snprintf(message, sizeof(message), NO_ROUTE("%s"), escaped);
    ck_assert_uint_eq(strlen(escaped), 256);
    assert_error("GET", uri, 404, "NAME_UNKNOWN", message);
    free(escaped);
    free(uri);
}
END_TEST

START_TEST(path_echo_cut_escapes_whole)
{
    /* 253 plain bytes fill the room before "...", so the escapes that
     * follow are dropped whole rather than cut in half. */
    char *uri = make_string("/x/", 'p', 250, "%01%01");
    char *escaped = make_string("/x/", 'p', 250, "...");
    char message[1024];

    snprintf(message, sizeof(message), NO_ROUTE("%s"), escaped);
    assert_error("GET", uri, 404, "NAME_UNKNOWN", message);
    free(escaped);
    free(uri);
}
END_TEST

START_TEST(path_echo_exact_max)
{
    char *uri = make_string("/x/", 'p', 253, "");
    char message[1024];

    snprintf(message, sizeof(message), NO_ROUTE("%s"), uri);
    assert_error("GET", uri, 404, "NAME_UNKNOWN", message);
    free(uri);
}
END_TEST

START_TEST(artifact_type_length_max)
{
    char *uri = make_string("/v2/org/app/referrers/" D256 "?artifactType=", 'm',
                            ROUTE_ARTIFACT_TYPE_MAX, "");
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, "GET", uri, &route, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(strlen(route.artifact_type), 255);
    free(uri);
}
END_TEST

START_TEST(artifact_type_length_over_max)
{
    char *uri = make_string("/v2/org/app/referrers/" D256 "?artifactType=", 'm',
                            ROUTE_ARTIFACT_TYPE_MAX + 1, "");
    char *escaped = make_string("", 'm', ROUTE_ARTIFACT_TYPE_MAX + 1, "");
    char message[1024];

    snprintf(message, sizeof(message),
             "invalid artifactType \"%s\": expected a media type of at most "
             "255 printable ASCII characters",
             escaped);
    assert_error("GET", uri, 400, "NAME_INVALID", message);
    free(escaped);
    free(uri);
}
END_TEST

START_TEST(null_method)
{
    assert_error(NULL, "/v2/", 405, "UNSUPPORTED", READ_ONLY(""));
}
END_TEST

START_TEST(null_uri)
{
    assert_error("GET", NULL, 404, "NAME_UNKNOWN", NO_ROUTE(""));
}
END_TEST

START_TEST(no_upstreams)
{
    struct config empty = {.upstreams = NULL, .n_upstreams = 0};
    struct pg_error *err = NULL;
    struct route route;

    ck_assert_int_eq(
        route_parse(&empty, "GET", "/v2/alpine/manifests/3", &route, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, "INTERNAL");
    pg_error_free(err);
}
END_TEST

START_TEST(no_upstreams_health)
{
    struct config empty = {.upstreams = NULL, .n_upstreams = 0};
    struct route route;

    ck_assert_int_eq(route_parse(&empty, "GET", "/healthz", &route, NULL), 0);
    ck_assert_int_eq(route.kind, ROUTE_HEALTH);
}
END_TEST

START_TEST(error_null_err)
{
    struct route route;

    ck_assert_int_eq(route_parse(&cfg, "PUT", "/v2/", &route, NULL), -1);
}
END_TEST

static const struct {
    enum route_kind kind;
    const char *name;
} kind_names[] = {
    {ROUTE_API_BASE, "api-base"},   {ROUTE_MANIFEST, "manifest"},
    {ROUTE_BLOB, "blob"},           {ROUTE_TAGS_LIST, "tags-list"},
    {ROUTE_REFERRERS, "referrers"}, {ROUTE_HEALTH, "health"},
};

START_TEST(kind_name_table)
{
    ck_assert_str_eq(route_kind_name(kind_names[_i].kind), kind_names[_i].name);
}
END_TEST

#define TABLE_SIZE(table) ((int)(sizeof(table) / sizeof((table)[0])))

static Suite *
route_suite(void)
{
    Suite *suite = suite_create("route");
    TCase *tables = tcase_create("tables");
    TCase *limits = tcase_create("limits");
    TCase *edges = tcase_create("edges");

    tcase_add_loop_test(tables, parse_ok_table, 0, TABLE_SIZE(ok_cases));
    tcase_add_loop_test(tables, parse_plain_table, 0, TABLE_SIZE(plain_cases));
    tcase_add_loop_test(tables, parse_query_table, 0, TABLE_SIZE(query_cases));
    tcase_add_loop_test(tables, parse_error_table, 0, TABLE_SIZE(error_cases));
    tcase_add_loop_test(tables, kind_name_table, 0, TABLE_SIZE(kind_names));
    suite_add_tcase(suite, tables);

    tcase_add_test(limits, uri_length_max);
    tcase_add_test(limits, uri_length_over_max);
    tcase_add_test(limits, name_length_max);
    tcase_add_test(limits, name_length_over_max);
    tcase_add_test(limits, name_with_host_length_max);
    tcase_add_test(limits, library_prefix_length_max);
    tcase_add_test(limits, library_prefix_over_max);
    tcase_add_test(limits, client_name_over_buffer);
    tcase_add_test(limits, tag_length_max);
    tcase_add_test(limits, tag_length_over_max);
    tcase_add_test(limits, path_echo_cut);
    tcase_add_test(limits, path_echo_cut_escapes_whole);
    tcase_add_test(limits, path_echo_exact_max);
    tcase_add_test(limits, artifact_type_length_max);
    tcase_add_test(limits, artifact_type_length_over_max);
    suite_add_tcase(suite, limits);

    tcase_add_test(edges, null_method);
    tcase_add_test(edges, null_uri);
    tcase_add_test(edges, no_upstreams);
    tcase_add_test(edges, no_upstreams_health);
    tcase_add_test(edges, error_null_err);
    suite_add_tcase(suite, edges);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(route_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
