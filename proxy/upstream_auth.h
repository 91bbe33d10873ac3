/*
 * Upstream authentication helpers: WWW-Authenticate challenges, token
 * endpoint URLs and responses, and the cache of bearer tokens.
 *
 * The flow follows the Docker registry token specification: a 401 carries
 * a challenge such as
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
 *          scope="repository:library/alpine:pull"
 * and the client asks GET REALM?service=SERVICE&scope=SCOPE for a token,
 * which it then sends as "Authorization: Bearer TOKEN". These functions do
 * no I/O, so the unit tests drive them directly; proxy/upstream.c performs
 * the requests. Loop thread only.
 */
#ifndef PG_UPSTREAM_AUTH_H
#define PG_UPSTREAM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/error.h"

/* Lifetime of a token whose response has no "expires_in", as the Docker
 * registry token specification defines it. */
#define UPSTREAM_TOKEN_DEFAULT_LIFETIME_SECONDS 60

/* A cached token is dropped this long before it expires, so that a request
 * started just before expiry does not arrive with a dead token. */
#define UPSTREAM_TOKEN_EXPIRY_MARGIN_SECONDS 10

/* Longer "expires_in" values are cut to this, so that a wrong value cannot
 * keep a token for days or overflow the expiry arithmetic. */
#define UPSTREAM_TOKEN_LIFETIME_MAX_SECONDS (24 * 60 * 60)

/* Entries of the token cache. The number of scopes grows with the
 * repositories that clients request, so the cache evicts beyond this. */
#define UPSTREAM_TOKEN_CACHE_MAX_ENTRIES 1024

/* Schemes in increasing order of preference, so a larger value wins. */
enum upstream_auth_scheme {
    UPSTREAM_AUTH_NONE, /* no challenge with a scheme pullgate supports */
    UPSTREAM_AUTH_BASIC,
    UPSTREAM_AUTH_BEARER,
};

/* A parsed challenge. Strings are NULL when the parameter is absent. */
struct upstream_challenge {
    enum upstream_auth_scheme scheme;
    char *realm;
    char *service;
    char *scope;
    char *error; /* "invalid_token", "insufficient_scope"... */
};

/*
 * Parses one WWW-Authenticate header value into *challenge, which the
 * caller clears with upstream_challenge_clear(). A value may list several
 * challenges, and the first Bearer challenge is taken, else the first Basic
 * one. Returns 0, with scheme UPSTREAM_AUTH_NONE when only other schemes
 * are offered. Returns -1 with a 502 error when the value is malformed,
 * longer than PG_CHALLENGE_MAX_BYTES, or a Bearer challenge has no realm.
 */
int upstream_challenge_parse(const char *header,
                             struct upstream_challenge *challenge,
                             struct pg_error **err);

/* Frees the strings of a challenge and resets it; accepts NULL. */
void upstream_challenge_clear(struct upstream_challenge *challenge);

/*
 * Returns the scope to request a token for: the challenge's scope when
 * there is one, else "repository:REPOSITORY:pull", else "" when both are
 * NULL (the /v2/ version check). The caller frees the result.
 */
char *upstream_auth_scope(const char *challenge_scope, const char *repository,
                          struct pg_error **err);

/*
 * Returns the token request URL, REALM?service=SERVICE&scope=SCOPE with
 * values percent-encoded and one scope parameter per space-separated scope
 * (an empty scope adds none). The realm must be an http or https URL, else
 * the result is NULL with a 502 error. The caller frees the result.
 */
char *upstream_auth_token_url(const struct upstream_challenge *challenge,
                              const char *scope, struct pg_error **err);

/* A token endpoint response. */
struct upstream_token {
    char *value;         /* "token", else "access_token": a secret */
    uint64_t expires_in; /* seconds, default and maximum applied */
    bool has_issued_at;
    int64_t issued_at; /* Unix time of "issued_at" when has_issued_at */
};

/*
 * Parses a token endpoint response body of len bytes into *token, which
 * the caller clears with upstream_token_clear(). Returns -1 with a 502
 * error when the body is over PG_TOKEN_RESPONSE_MAX_BYTES, is not a JSON
 * object, has no non-empty token, or the token has characters that cannot
 * go in a header. An unreadable "issued_at" is ignored.
 */
int upstream_token_parse(const char *body, size_t len,
                         struct upstream_token *token, struct pg_error **err);

/* Wipes and frees the token value and resets *token; accepts NULL. */
void upstream_token_clear(struct upstream_token *token);

/*
 * Returns the seconds a token has left at Unix time now. An issued_at in
 * the future counts as now, because pullgate's clock may lag the token
 * server's. Returns 0 when the token has already expired.
 */
uint64_t upstream_token_lifetime(const struct upstream_token *token,
                                 int64_t now);

struct upstream_token_cache;

/* Returns an empty cache of at most max_entries tokens, or NULL. */
struct upstream_token_cache *upstream_token_cache_new(size_t max_entries,
                                                      struct pg_error **err);

/* Wipes every token and frees the cache; accepts NULL. */
void upstream_token_cache_free(struct upstream_token_cache *cache);

/*
 * Returns the token cached for (upstream, scope) that is still valid at
 * now (seconds of any clock that does not jump, the same for every call),
 * or NULL. The string belongs to the cache and stays valid until the next
 * put or drop, so callers copy it.
 */
const char *upstream_token_cache_get(struct upstream_token_cache *cache,
                                     const char *upstream, const char *scope,
                                     uint64_t now);

/*
 * Stores a copy of token for (upstream, scope), valid for lifetime seconds
 * after now minus UPSTREAM_TOKEN_EXPIRY_MARGIN_SECONDS. A token with no
 * more lifetime than the margin is not stored. When the cache is full, an
 * expired entry is replaced, else the one closest to expiry. Returns 0, or
 * -1 when memory is short.
 */
int upstream_token_cache_put(struct upstream_token_cache *cache,
                             const char *upstream, const char *scope,
                             const char *token, uint64_t lifetime, uint64_t now,
                             struct pg_error **err);

/*
 * Removes the entry for (upstream, scope) if it still contains token, after
 * the upstream rejected that token. A newer token stored meanwhile by
 * another request stays.
 */
void upstream_token_cache_drop(struct upstream_token_cache *cache,
                               const char *upstream, const char *scope,
                               const char *token);

#endif
