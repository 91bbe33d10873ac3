/*
 * Unit tests for proxy/upstream_auth.c: WWW-Authenticate challenges, token
 * request URLs, token responses and the token cache. The .c is included
 * so that the RFC 3339 and JSON depth helpers can be tested directly.
 * Times are passed in, so expiry is tested without waiting.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "proxy/upstream_auth.c"

#define DOCKER_HUB_CHALLENGE                                                   \
    "Bearer realm=\"https://auth.docker.io/token\","                           \
    "service=\"registry.docker.io\","                                          \
    "scope=\"repository:library/alpine:pull\""

/* ---- Challenges ---- */

struct challenge_case {
    const char *header;
    enum upstream_auth_scheme scheme;
    const char *realm;
    const char *service;
    const char *scope;
    const char *error;
};

static const struct challenge_case valid_challenges[] = {
    {DOCKER_HUB_CHALLENGE, UPSTREAM_AUTH_BEARER, "https://auth.docker.io/token",
     "registry.docker.io", "repository:library/alpine:pull", NULL},
    /* A comma inside quotes belongs to the value. */
    {"Bearer realm=\"https://a.test/token\",scope=\"repository:x:pull,push\"",
     UPSTREAM_AUTH_BEARER, "https://a.test/token", NULL,
     "repository:x:pull,push", NULL},
    /* Backslash escapes inside quotes. */
    {"Bearer realm=\"https://a.test/t\",service=\"say \\\"hi\\\" \\\\ x\"",
     UPSTREAM_AUTH_BEARER, "https://a.test/t", "say \"hi\" \\ x", NULL, NULL},
    {"Basic realm=\"Registry Realm\"", UPSTREAM_AUTH_BASIC, "Registry Realm",
     NULL, NULL, NULL},
    {"Basic", UPSTREAM_AUTH_BASIC, NULL, NULL, NULL, NULL},
    {"Bearer realm=\"https://a.test/t\",error=\"insufficient_scope\"",
     UPSTREAM_AUTH_BEARER, "https://a.test/t", NULL, NULL,
     "insufficient_scope"},
    /* Scheme and parameter names are case-insensitive; spaces around '='
     * and unquoted URL values are accepted. */
    {"bearer REALM = https://a.test/t , Service = reg", UPSTREAM_AUTH_BEARER,
     "https://a.test/t", "reg", NULL, NULL},
    /* Bearer is preferred wherever it appears in the list. */
    {"Basic realm=\"b\", Bearer realm=\"https://a.test/t\"",
     UPSTREAM_AUTH_BEARER, "https://a.test/t", NULL, NULL, NULL},
    /* An unknown scheme with a token68 is skipped. */
    {"Negotiate abc/def==, Basic realm=\"x\"", UPSTREAM_AUTH_BASIC, "x", NULL,
     NULL, NULL},
    {"Newauth realm=\"apps\", type=1, Basic realm=\"simple\"",
     UPSTREAM_AUTH_BASIC, "simple", NULL, NULL, NULL},
    {"Negotiate", UPSTREAM_AUTH_NONE, NULL, NULL, NULL, NULL},
    {"", UPSTREAM_AUTH_NONE, NULL, NULL, NULL, NULL},
    /* Unknown parameters are ignored, and the first of a repeated one
     * wins. */
    {"Bearer foo=bar,realm=\"https://a.test/1\",realm=\"https://a.test/2\"",
     UPSTREAM_AUTH_BEARER, "https://a.test/1", NULL, NULL, NULL},
    /* Empty list elements and a trailing comma are allowed. */
    {"Bearer realm=\"https://a.test/t\",,service=s,", UPSTREAM_AUTH_BEARER,
     "https://a.test/t", "s", NULL, NULL},
};

static void
assert_optional_string(const char *actual, const char *expected)
{
    if (expected == NULL)
        ck_assert_ptr_null(actual);
    else
        ck_assert_str_eq(actual, expected);
}

START_TEST(challenge_valid)
{
    const struct challenge_case *c = &valid_challenges[_i];
    struct upstream_challenge challenge;
    struct pg_error *err = NULL;

    ck_assert_int_eq(upstream_challenge_parse(c->header, &challenge, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(challenge.scheme, c->scheme);
    assert_optional_string(challenge.realm, c->realm);
    assert_optional_string(challenge.service, c->service);
    assert_optional_string(challenge.scope, c->scope);
    assert_optional_string(challenge.error, c->error);
    upstream_challenge_clear(&challenge);
}
END_TEST

struct invalid_case {
    const char *header;
    const char *message;
};

static const struct invalid_case invalid_challenges[] = {
    {"Bearer service=\"x\"",
     "WWW-Authenticate Bearer challenge from the upstream has no realm, so "
     "pullgate cannot request a token"},
    {"Bearer realm=",
     "WWW-Authenticate Bearer challenge from the upstream has no realm, so "
     "pullgate cannot request a token"},
    {"\"foo",
     "invalid WWW-Authenticate challenge from the upstream: expected an "
     "authentication scheme at byte 0"},
    {"Bearer realm=\"https://a.test/t",
     "invalid WWW-Authenticate challenge from the upstream: expected a "
     "closing quote at byte 30"},
    {"Bearer realm=\"a\" junk",
     "invalid WWW-Authenticate challenge from the upstream: expected ',' "
     "after a parameter at byte 17"},
    {"Bearer realm=\"a\x01z\"",
     "invalid WWW-Authenticate challenge from the upstream: expected a "
     "printable character at byte 15"},
    {"Bearer realm=a\"b",
     "invalid WWW-Authenticate challenge from the upstream: expected a "
     "parameter value at byte 14"},
    {"Bearer =x",
     "invalid WWW-Authenticate challenge from the upstream: expected a "
     "parameter name at byte 7"},
    {"Bearer\x01",
     "invalid WWW-Authenticate challenge from the upstream: expected a "
     "space after the scheme at byte 6"},
};

START_TEST(challenge_invalid)
{
    const struct invalid_case *c = &invalid_challenges[_i];
    struct upstream_challenge challenge;
    struct pg_error *err = NULL;

    ck_assert_int_eq(upstream_challenge_parse(c->header, &challenge, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_str_eq(err->message, c->message);
    ck_assert_int_eq(challenge.scheme, UPSTREAM_AUTH_NONE);
    ck_assert_ptr_null(challenge.realm);
    pg_error_free(err);
}
END_TEST

/* Returns a Bearer challenge of exactly len bytes, padded in the realm. */
static char *
challenge_of_length(size_t len)
{
    static const char head[] = "Bearer realm=\"https://a.test/";
    char *header = malloc(len + 1);

    ck_assert_ptr_nonnull(header);
    memcpy(header, head, sizeof(head) - 1);
    memset(header + sizeof(head) - 1, 'a', len - sizeof(head));
    header[len - 1] = '"';
    header[len] = '\0';
    return header;
}

START_TEST(challenge_length_max)
{
    char *header = challenge_of_length(PG_CHALLENGE_MAX_BYTES);
    struct upstream_challenge challenge;
    struct pg_error *err = NULL;

    ck_assert_int_eq(upstream_challenge_parse(header, &challenge, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(challenge.scheme, UPSTREAM_AUTH_BEARER);
    ck_assert_uint_eq(strlen(challenge.realm), PG_CHALLENGE_MAX_BYTES - 15);
    upstream_challenge_clear(&challenge);
    free(header);
}
END_TEST

START_TEST(challenge_over_max)
{
    char *header = challenge_of_length(PG_CHALLENGE_MAX_BYTES + 1);
    struct upstream_challenge challenge;
    struct pg_error *err = NULL;

    ck_assert_int_eq(upstream_challenge_parse(header, &challenge, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->message, "WWW-Authenticate challenge from the "
                                   "upstream is longer than 4096 bytes");
    pg_error_free(err);
    free(header);
}
END_TEST

START_TEST(challenge_clear_resets)
{
    struct upstream_challenge challenge = {
        .scheme = UPSTREAM_AUTH_BEARER,
        .realm = strdup("r"),
        .service = strdup("s"),
        .scope = strdup("c"),
        .error = strdup("e"),
    };

    upstream_challenge_clear(NULL);
    upstream_challenge_clear(&challenge);
    ck_assert_int_eq(challenge.scheme, UPSTREAM_AUTH_NONE);
    ck_assert_ptr_null(challenge.realm);
    ck_assert_ptr_null(challenge.service);
    ck_assert_ptr_null(challenge.scope);
    ck_assert_ptr_null(challenge.error);
}
END_TEST

/* ---- Scopes and token URLs ---- */

START_TEST(scope_from_challenge)
{
    char *scope = upstream_auth_scope("repository:a:pull,push", "b", NULL);

    ck_assert_str_eq(scope, "repository:a:pull,push");
    free(scope);
}
END_TEST

START_TEST(scope_from_repository)
{
    char *scope = upstream_auth_scope(NULL, "library/alpine", NULL);

    ck_assert_str_eq(scope, "repository:library/alpine:pull");
    free(scope);
}
END_TEST

START_TEST(scope_empty_without_both)
{
    char *scope = upstream_auth_scope(NULL, NULL, NULL);

    ck_assert_str_eq(scope, "");
    free(scope);
}
END_TEST

struct url_case {
    const char *realm;
    const char *service;
    const char *scope;
    const char *url;
};

static const struct url_case token_urls[] = {
    {"https://auth.docker.io/token", "registry.docker.io",
     "repository:library/alpine:pull",
     "https://auth.docker.io/token?service=registry.docker.io&"
     "scope=repository%3Alibrary%2Falpine%3Apull"},
    /* A realm with a query gets '&'. */
    {"http://127.0.0.1:5001/auth?x=1", "reg", "repository:a:pull",
     "http://127.0.0.1:5001/auth?x=1&service=reg&scope=repository%3Aa%3Apull"},
    /* Space-separated scopes become one parameter each. */
    {"https://a.test/t", NULL, " repository:a:pull  repository:b:pull ",
     "https://a.test/t?scope=repository%3Aa%3Apull&"
     "scope=repository%3Ab%3Apull"},
    {"https://a.test/t", "s&t=u v", "",
     "https://a.test/t?service=s%26t%3Du%20v"},
    {"HTTPS://a.test/t", NULL, "", "HTTPS://a.test/t"},
    {"https://a.test/t", "", "x~y_z.w-v", "https://a.test/t?scope=x~y_z.w-v"},
};

START_TEST(token_url_valid)
{
    const struct url_case *c = &token_urls[_i];
    struct upstream_challenge challenge = {
        .scheme = UPSTREAM_AUTH_BEARER,
        .realm = (char *)c->realm,
        .service = (char *)c->service,
    };
    struct pg_error *err = NULL;
    char *url = upstream_auth_token_url(&challenge, c->scope, &err);

    ck_assert_ptr_null(err);
    ck_assert_str_eq(url, c->url);
    free(url);
}
END_TEST

static const char *const bad_realms[] = {
    "ftp://a.test/token",    "file:///etc/passwd",    "https://", "http:///x",
    "https://a.test/t oken", "https://a.test/t#frag", "/token",   "",
};

START_TEST(token_url_bad_realm)
{
    struct upstream_challenge challenge = {
        .scheme = UPSTREAM_AUTH_BEARER,
        .realm = (char *)bad_realms[_i],
    };
    struct pg_error *err = NULL;
    char expected[256];

    ck_assert_ptr_null(upstream_auth_token_url(&challenge, "", &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    snprintf(expected, sizeof(expected),
             "token realm \"%s\" in the upstream's WWW-Authenticate "
             "challenge is not an http or https URL",
             bad_realms[_i]);
    ck_assert_str_eq(err->message, expected);
    pg_error_free(err);
}
END_TEST

/* ---- Token responses ---- */

static struct upstream_token
parse_ok(const char *body)
{
    struct upstream_token token;
    struct pg_error *err = NULL;

    ck_assert_int_eq(upstream_token_parse(body, strlen(body), &token, &err), 0);
    ck_assert_ptr_null(err);
    return token;
}

static void
assert_parse_fails(const char *body, size_t len, const char *message)
{
    struct upstream_token token;
    struct pg_error *err = NULL;

    ck_assert_int_eq(upstream_token_parse(body, len, &token, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_str_eq(err->message, message);
    ck_assert_ptr_null(token.value);
    pg_error_free(err);
}

START_TEST(token_field)
{
    struct upstream_token token = parse_ok("{\"token\":\"abc.def\","
                                           "\"expires_in\":300}");

    ck_assert_str_eq(token.value, "abc.def");
    ck_assert_uint_eq(token.expires_in, 300);
    ck_assert(!token.has_issued_at);
    upstream_token_clear(&token);
}
END_TEST

START_TEST(token_access_token_field)
{
    struct upstream_token token = parse_ok("{\"access_token\":\"xyz\"}");

    ck_assert_str_eq(token.value, "xyz");
    upstream_token_clear(&token);
}
END_TEST

START_TEST(token_preferred_over_access)
{
    struct upstream_token token =
        parse_ok("{\"access_token\":\"second\",\"token\":\"first\"}");

    ck_assert_str_eq(token.value, "first");
    upstream_token_clear(&token);
}
END_TEST

START_TEST(token_empty_uses_access)
{
    struct upstream_token token =
        parse_ok("{\"token\":\"\",\"access_token\":\"second\"}");

    ck_assert_str_eq(token.value, "second");
    upstream_token_clear(&token);
}
END_TEST

struct expiry_case {
    const char *body;
    uint64_t expires_in;
};

static const struct expiry_case expiries[] = {
    {"{\"token\":\"t\"}", 60},
    {"{\"token\":\"t\",\"expires_in\":0}", 60},
    {"{\"token\":\"t\",\"expires_in\":-5}", 60},
    {"{\"token\":\"t\",\"expires_in\":\"300\"}", 60},
    {"{\"token\":\"t\",\"expires_in\":1.5}", 60},
    {"{\"token\":\"t\",\"expires_in\":30}", 30},
    {"{\"token\":\"t\",\"expires_in\":86400}", 86400},
    {"{\"token\":\"t\",\"expires_in\":86401}", 86400},
    {"{\"token\":\"t\",\"expires_in\":9223372036854775807}", 86400},
};

START_TEST(token_expires_in)
{
    struct upstream_token token = parse_ok(expiries[_i].body);

    ck_assert_uint_eq(token.expires_in, expiries[_i].expires_in);
    upstream_token_clear(&token);
}
END_TEST

START_TEST(token_bad_json)
{
    static const char body[] = "{\"token\":\"s3cr3t-value";

    assert_parse_fails(body, sizeof(body) - 1,
                       "invalid token response: not valid JSON at byte 22");
}
END_TEST

START_TEST(token_not_object)
{
    assert_parse_fails("[\"token\"]", 9,
                       "invalid token response: not a JSON object");
}
END_TEST

START_TEST(token_missing)
{
    assert_parse_fails("{\"token\":5}", 11,
                       "invalid token response: no \"token\" or "
                       "\"access_token\" string");
}
END_TEST

START_TEST(token_header_injection)
{
    static const char body[] = "{\"token\":\"a\\r\\nX-Evil: 1\"}";

    assert_parse_fails(body, sizeof(body) - 1,
                       "invalid token response: the token has characters "
                       "other than visible ASCII");
}
END_TEST

START_TEST(token_with_space)
{
    static const char body[] = "{\"token\":\"a b\"}";

    assert_parse_fails(body, sizeof(body) - 1,
                       "invalid token response: the token has characters "
                       "other than visible ASCII");
}
END_TEST

START_TEST(token_duplicate_key)
{
    static const char body[] = "{\"token\":\"a\",\"token\":\"b\"}";

    assert_parse_fails(body, sizeof(body) - 1,
                       "invalid token response: not valid JSON at byte 20");
}
END_TEST

START_TEST(token_response_max)
{
    static const char head[] = "{\"token\":\"";
    static const char tail[] = "\"}";
    size_t len = PG_TOKEN_RESPONSE_MAX_BYTES;
    char *body = malloc(len);
    struct upstream_token token;
    struct pg_error *err = NULL;

    ck_assert_ptr_nonnull(body);
    memcpy(body, head, sizeof(head) - 1);
    memset(body + sizeof(head) - 1, 'a', len - sizeof(head) - sizeof(tail) + 2);
    memcpy(body + len - 2, tail, 2);

    ck_assert_int_eq(upstream_token_parse(body, len, &token, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(strlen(token.value), len - 12);
    upstream_token_clear(&token);
    free(body);
}
END_TEST

START_TEST(token_response_over_max)
{
    size_t len = PG_TOKEN_RESPONSE_MAX_BYTES + 1;
    char *body = malloc(len);

    ck_assert_ptr_nonnull(body);
    memset(body, ' ', len);
    assert_parse_fails(body, len,
                       "invalid token response: 1048577 bytes is over the "
                       "maximum of 1048576");
    free(body);
}
END_TEST

START_TEST(token_too_deep)
{
    char body[256];
    size_t used = 0;

    used += (size_t)snprintf(body, sizeof(body), "{\"token\":\"t\",\"x\":");
    for (int i = 0; i < PG_JSON_MAX_DEPTH; i++)
        body[used++] = '[';
    for (int i = 0; i < PG_JSON_MAX_DEPTH; i++)
        body[used++] = ']';
    body[used++] = '}';
    body[used] = '\0';
    assert_parse_fails(body, used,
                       "invalid token response: JSON nests too "
                       "deep");
}
END_TEST

START_TEST(json_depth_limit)
{
    ck_assert(pg_json_depth_within("[[]]", 4, 2));
    ck_assert(!pg_json_depth_within("[[[]]]", 6, 2));
    ck_assert(pg_json_depth_within("[\"[[[\"]", 7, 2));
    ck_assert(pg_json_depth_within("[\"\\\"[[[\"]", 9, 2));
}
END_TEST

struct time_case {
    const char *text;
    int rc;
    int64_t when;
};

static const struct time_case times[] = {
    {"2024-01-01T00:00:00Z", 0, 1704067200},
    {"2024-01-01t00:00:00z", 0, 1704067200},
    {"2024-01-01T00:00:00.123456789Z", 0, 1704067200},
    {"2024-01-01T01:00:00+01:00", 0, 1704067200},
    {"2023-12-31T23:30:00-00:30", 0, 1704067200},
    {"2024-01-01T00:00:00", -1, 0},
    {"2024-01-01 00:00:00Z", -1, 0},
    {"2024-13-01T00:00:00Z", -1, 0},
    {"2024-01-01T00:00:00+1:00", -1, 0},
    {"2024-01-01T00:00:00Zjunk", -1, 0},
    {"yesterday", -1, 0},
};

START_TEST(rfc3339_parse)
{
    int64_t when = 0;

    ck_assert_int_eq(parse_rfc3339(times[_i].text, &when), times[_i].rc);
    if (times[_i].rc == 0)
        ck_assert_int_eq(when, times[_i].when);
}
END_TEST

START_TEST(token_issued_at)
{
    struct upstream_token token =
        parse_ok("{\"token\":\"t\",\"issued_at\":\"2024-01-01T00:00:00Z\"}");

    ck_assert(token.has_issued_at);
    ck_assert_int_eq(token.issued_at, 1704067200);
    upstream_token_clear(&token);
}
END_TEST

START_TEST(token_issued_at_invalid)
{
    struct upstream_token token =
        parse_ok("{\"token\":\"t\",\"issued_at\":\"soon\"}");

    ck_assert(!token.has_issued_at);
    upstream_token_clear(&token);
}
END_TEST

START_TEST(lifetime_without_issued_at)
{
    struct upstream_token token = {.expires_in = 300};

    ck_assert_uint_eq(upstream_token_lifetime(&token, 5000), 300);
}
END_TEST

START_TEST(lifetime_counts_age)
{
    struct upstream_token token = {
        .expires_in = 300, .has_issued_at = true, .issued_at = 1000};

    ck_assert_uint_eq(upstream_token_lifetime(&token, 1100), 200);
    ck_assert_uint_eq(upstream_token_lifetime(&token, 1299), 1);
    ck_assert_uint_eq(upstream_token_lifetime(&token, 1300), 0);
    ck_assert_uint_eq(upstream_token_lifetime(&token, 9000), 0);
}
END_TEST

START_TEST(lifetime_future_issued_at)
{
    struct upstream_token token = {
        .expires_in = 300, .has_issued_at = true, .issued_at = 1000};

    ck_assert_uint_eq(upstream_token_lifetime(&token, 900), 300);
}
END_TEST

START_TEST(token_clear_resets)
{
    struct upstream_token token = {
        .value = strdup("secret"), .expires_in = 5, .has_issued_at = true};

    upstream_token_clear(NULL);
    upstream_token_clear(&token);
    ck_assert_ptr_null(token.value);
    ck_assert_uint_eq(token.expires_in, 0);
    ck_assert(!token.has_issued_at);
}
END_TEST

/* ---- Token cache ---- */

static struct upstream_token_cache *
cache_new(size_t max)
{
    struct upstream_token_cache *cache = upstream_token_cache_new(max, NULL);

    ck_assert_ptr_nonnull(cache);
    return cache;
}

START_TEST(cache_hit_until_margin)
{
    struct upstream_token_cache *cache = cache_new(4);

    ck_assert_int_eq(
        upstream_token_cache_put(cache, "d", "s", "tok", 60, 1000, NULL), 0);
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "s", 1000), "tok");
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "s", 1049), "tok");
    ck_assert_ptr_null(upstream_token_cache_get(cache, "d", "s", 1050));
    upstream_token_cache_free(cache);
    upstream_token_cache_free(NULL);
}
END_TEST

START_TEST(cache_short_lifetime_skipped)
{
    struct upstream_token_cache *cache = cache_new(4);

    ck_assert_int_eq(upstream_token_cache_put(
                         cache, "d", "s", "tok",
                         UPSTREAM_TOKEN_EXPIRY_MARGIN_SECONDS, 1000, NULL),
                     0);
    ck_assert_ptr_null(upstream_token_cache_get(cache, "d", "s", 1000));
    ck_assert_uint_eq(cache->count, 0);
    upstream_token_cache_free(cache);
}
END_TEST

START_TEST(cache_keys_separate)
{
    struct upstream_token_cache *cache = cache_new(4);

    upstream_token_cache_put(cache, "d", "s1", "one", 60, 0, NULL);
    upstream_token_cache_put(cache, "e", "s1", "two", 60, 0, NULL);
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "s1", 1), "one");
    ck_assert_str_eq(upstream_token_cache_get(cache, "e", "s1", 1), "two");
    ck_assert_ptr_null(upstream_token_cache_get(cache, "d", "s2", 1));
    ck_assert_ptr_null(upstream_token_cache_get(cache, "f", "s1", 1));
    upstream_token_cache_free(cache);
}
END_TEST

START_TEST(cache_put_replaces)
{
    struct upstream_token_cache *cache = cache_new(4);

    upstream_token_cache_put(cache, "d", "s", "old", 60, 0, NULL);
    upstream_token_cache_put(cache, "d", "s", "new", 600, 0, NULL);
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "s", 100), "new");
    ck_assert_uint_eq(cache->count, 1);
    upstream_token_cache_free(cache);
}
END_TEST

START_TEST(cache_drop_matching)
{
    struct upstream_token_cache *cache = cache_new(4);

    upstream_token_cache_put(cache, "d", "a", "ta", 60, 0, NULL);
    upstream_token_cache_put(cache, "d", "b", "tb", 60, 0, NULL);
    upstream_token_cache_drop(cache, "d", "a", "ta");
    ck_assert_ptr_null(upstream_token_cache_get(cache, "d", "a", 1));
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "b", 1), "tb");
    ck_assert_uint_eq(cache->count, 1);
    upstream_token_cache_free(cache);
}
END_TEST

START_TEST(cache_drop_keeps_newer)
{
    struct upstream_token_cache *cache = cache_new(4);

    upstream_token_cache_put(cache, "d", "a", "newer", 60, 0, NULL);
    upstream_token_cache_drop(cache, "d", "a", "rejected");
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "a", 1), "newer");
    upstream_token_cache_drop(cache, "d", "missing", "x");
    ck_assert_uint_eq(cache->count, 1);
    upstream_token_cache_free(cache);
}
END_TEST

START_TEST(cache_evicts_closest_expiry)
{
    struct upstream_token_cache *cache = cache_new(2);

    upstream_token_cache_put(cache, "d", "long", "l", 600, 0, NULL);
    upstream_token_cache_put(cache, "d", "short", "s", 60, 0, NULL);
    upstream_token_cache_put(cache, "d", "third", "t", 300, 0, NULL);
    ck_assert_uint_eq(cache->count, 2);
    ck_assert_ptr_null(upstream_token_cache_get(cache, "d", "short", 1));
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "long", 1), "l");
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "third", 1), "t");
    upstream_token_cache_free(cache);
}
END_TEST

START_TEST(cache_evicts_expired_first)
{
    struct upstream_token_cache *cache = cache_new(2);

    upstream_token_cache_put(cache, "d", "soon", "s", 60, 0, NULL);
    upstream_token_cache_put(cache, "d", "later", "l", 600, 500, NULL);
    /* At 200 "soon" has expired, so it goes although "later" was added
     * more recently. */
    upstream_token_cache_put(cache, "d", "new", "n", 600, 200, NULL);
    ck_assert_ptr_null(upstream_token_cache_get(cache, "d", "soon", 200));
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "later", 200), "l");
    ck_assert_str_eq(upstream_token_cache_get(cache, "d", "new", 200), "n");
    upstream_token_cache_free(cache);
}
END_TEST

static Suite *
upstream_auth_suite(void)
{
    Suite *suite = suite_create("upstream_auth");
    TCase *challenges = tcase_create("challenges");
    TCase *urls = tcase_create("token_urls");
    TCase *tokens = tcase_create("token_responses");
    TCase *cache = tcase_create("token_cache");

    tcase_add_loop_test(challenges, challenge_valid, 0,
                        sizeof(valid_challenges) / sizeof(valid_challenges[0]));
    tcase_add_loop_test(challenges, challenge_invalid, 0,
                        sizeof(invalid_challenges) /
                            sizeof(invalid_challenges[0]));
    tcase_add_test(challenges, challenge_length_max);
    tcase_add_test(challenges, challenge_over_max);
    tcase_add_test(challenges, challenge_clear_resets);
    suite_add_tcase(suite, challenges);

    tcase_add_test(urls, scope_from_challenge);
    tcase_add_test(urls, scope_from_repository);
    tcase_add_test(urls, scope_empty_without_both);
    tcase_add_loop_test(urls, token_url_valid, 0,
                        sizeof(token_urls) / sizeof(token_urls[0]));
    tcase_add_loop_test(urls, token_url_bad_realm, 0,
                        sizeof(bad_realms) / sizeof(bad_realms[0]));
    suite_add_tcase(suite, urls);

    tcase_add_test(tokens, token_field);
    tcase_add_test(tokens, token_access_token_field);
    tcase_add_test(tokens, token_preferred_over_access);
    tcase_add_test(tokens, token_empty_uses_access);
    tcase_add_loop_test(tokens, token_expires_in, 0,
                        sizeof(expiries) / sizeof(expiries[0]));
    tcase_add_test(tokens, token_bad_json);
    tcase_add_test(tokens, token_not_object);
    tcase_add_test(tokens, token_missing);
    tcase_add_test(tokens, token_header_injection);
    tcase_add_test(tokens, token_with_space);
    tcase_add_test(tokens, token_duplicate_key);
    tcase_add_test(tokens, token_response_max);
    tcase_add_test(tokens, token_response_over_max);
    tcase_add_test(tokens, token_too_deep);
    tcase_add_test(tokens, json_depth_limit);
    tcase_add_loop_test(tokens, rfc3339_parse, 0,
                        sizeof(times) / sizeof(times[0]));
    tcase_add_test(tokens, token_issued_at);
    tcase_add_test(tokens, token_issued_at_invalid);
    tcase_add_test(tokens, lifetime_without_issued_at);
    tcase_add_test(tokens, lifetime_counts_age);
    tcase_add_test(tokens, lifetime_future_issued_at);
    tcase_add_test(tokens, token_clear_resets);
    suite_add_tcase(suite, tokens);

    tcase_add_test(cache, cache_hit_until_margin);
    tcase_add_test(cache, cache_short_lifetime_skipped);
    tcase_add_test(cache, cache_keys_separate);
    tcase_add_test(cache, cache_put_replaces);
    tcase_add_test(cache, cache_drop_matching);
    tcase_add_test(cache, cache_drop_keeps_newer);
    tcase_add_test(cache, cache_evicts_closest_expiry);
    tcase_add_test(cache, cache_evicts_expired_first);
    suite_add_tcase(suite, cache);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(upstream_auth_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
