#include "proxy/upstream_auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "config/limits.h"
#include "config/parse.h"

/* A position in a header value being parsed, and the value's start for
 * byte offsets in error messages. */
struct cursor {
    const char *start;
    const char *p;
    const char *end;
};

struct token_entry {
    char *upstream;
    char *scope;
    char *token;
    uint64_t expires_at;
};

struct upstream_token_cache {
    struct token_entry *entries;
    size_t count;
    size_t max;
};

/* A string that grows within a capacity fixed in advance. */
struct url_builder {
    char *data;
    size_t len;
    size_t cap;
};

static void
set_oom(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory in upstream authentication; retry later");
}

static char *
dup_string(const char *text, size_t len, struct pg_error **err)
{
    char *copy = strndup(text, len);

    if (copy == NULL)
        set_oom(err);
    return copy;
}

static void
wipe_free(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

/* Token characters of RFC 9110, section 5.6.2. */
static bool
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    if (c >= '0' && c <= '9')
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static size_t
cursor_offset(const struct cursor *cur)
{
    return (size_t)(cur->p - cur->start);
}

static void
skip_spaces(struct cursor *cur)
{
    while (cur->p < cur->end && (*cur->p == ' ' || *cur->p == '\t'))
        cur->p++;
}

static void
skip_spaces_and_commas(struct cursor *cur)
{
    while (cur->p < cur->end &&
           (*cur->p == ' ' || *cur->p == '\t' || *cur->p == ','))
        cur->p++;
}

static size_t
read_token(struct cursor *cur, const char **token)
{
    *token = cur->p;
    while (cur->p < cur->end && is_tchar((unsigned char)*cur->p))
        cur->p++;
    return (size_t)(cur->p - *token);
}

static void
set_syntax_error(struct pg_error **err, const struct cursor *cur,
                 const char *expected)
{
    pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                 "invalid WWW-Authenticate challenge from the upstream: "
                 "expected %s at byte %zu",
                 expected, cursor_offset(cur));
}

/* Reads a quoted-string (RFC 9110, section 5.6.4), undoing backslash
 * escapes. The cursor is on the opening quote. */
static char *
read_quoted(struct cursor *cur, struct pg_error **err)
{
    char *value = malloc((size_t)(cur->end - cur->p) + 1);
    size_t len = 0;

    if (value == NULL) {
        set_oom(err);
        return NULL;
    }
    cur->p++;
    while (cur->p < cur->end) {
        char c = *cur->p++;

        if (c == '"') {
            value[len] = '\0';
            return value;
        }
        if (c == '\\' && cur->p < cur->end)
            c = *cur->p++;
        if (is_ctl((unsigned char)c)) {
            cur->p--;
            free(value);
            set_syntax_error(err, cur, "a printable character");
            return NULL;
        }
        value[len++] = c;
    }
    free(value);
    set_syntax_error(err, cur, "a closing quote");
    return NULL;
}

static bool
is_value_delimiter(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

/* Reads a parameter value: a quoted-string, or (more leniently than the
 * token the RFC allows) anything up to a comma or a space, because some
 * servers send unquoted URLs. */
static char *
read_value(struct cursor *cur, struct pg_error **err)
{
    const char *value = cur->p;

    if (cur->p < cur->end && *cur->p == '"')
        return read_quoted(cur, err);

    while (cur->p < cur->end && !is_value_delimiter(*cur->p) &&
           *cur->p != '"' && !is_ctl((unsigned char)*cur->p))
        cur->p++;

    /* An unquoted value that stops at a quote or a control character is
     * malformed, and so is an empty one. */
    if (cur->p == value ||
        (cur->p < cur->end && !is_value_delimiter(*cur->p))) {
        set_syntax_error(err, cur, "a parameter value");
        return NULL;
    }
    return dup_string(value, (size_t)(cur->p - value), err);
}

/* Stores value under the parameter it names, taking ownership. Unknown
 * parameters are ignored, and a repeated one keeps its first value. */
static void
store_param(struct upstream_challenge *challenge, const char *name, size_t len,
            char *value)
{
    static const char *const names[] = {"realm", "service", "scope", "error"};
    char **slots[] = {&challenge->realm, &challenge->service, &challenge->scope,
                      &challenge->error};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0 &&
            *slots[i] == NULL) {
            *slots[i] = value;
            return;
        }
    }
    free(value);
}

/* Skips a token68 (RFC 9110, section 11.2) if the cursor is on one that
 * runs to the end of the challenge. Returns whether it did. */
static bool
skip_token68(struct cursor *cur)
{
    const char *mark = cur->p;

    while (cur->p < cur->end &&
           (is_tchar((unsigned char)*cur->p) || *cur->p == '/'))
        cur->p++;
    if (cur->p == mark)
        return false;
    while (cur->p < cur->end && *cur->p == '=')
        cur->p++;
    skip_spaces(cur);
    if (cur->p == cur->end || *cur->p == ',')
        return true;
    cur->p = mark;
    return false;
}

/*
 * Parses the auth-params after a scheme. Stops at the end, or before a
 * token that is not followed by '=', which starts the next challenge.
 */
static int
parse_params(struct cursor *cur, struct upstream_challenge *challenge,
             struct pg_error **err)
{
    for (;;) {
        const char *mark;
        const char *name;
        size_t len;
        char *value;

        skip_spaces_and_commas(cur);
        if (cur->p == cur->end)
            return 0;
        mark = cur->p;
        len = read_token(cur, &name);
        if (len == 0) {
            set_syntax_error(err, cur, "a parameter name");
            return -1;
        }
        skip_spaces(cur);
        if (cur->p == cur->end || *cur->p != '=') {
            cur->p = mark;
            return 0;
        }

        cur->p++;
        skip_spaces(cur);
        value = read_value(cur, err);
        if (value == NULL)
            return -1;
        store_param(challenge, name, len, value);

        skip_spaces(cur);
        if (cur->p < cur->end && *cur->p != ',') {
            set_syntax_error(err, cur, "',' after a parameter");
            return -1;
        }
    }
}

/* Parses one challenge: a scheme, then a token68 or auth-params. */
static int
parse_challenge(struct cursor *cur, struct upstream_challenge *challenge,
                struct pg_error **err)
{
    const char *scheme;
    size_t len = read_token(cur, &scheme);

    if (len == 0) {
        set_syntax_error(err, cur, "an authentication scheme");
        return -1;
    }
    if (len == 6 && strncasecmp(scheme, "Bearer", len) == 0)
        challenge->scheme = UPSTREAM_AUTH_BEARER;
    else if (len == 5 && strncasecmp(scheme, "Basic", len) == 0)
        challenge->scheme = UPSTREAM_AUTH_BASIC;
    else
        challenge->scheme = UPSTREAM_AUTH_NONE;

    if (cur->p == cur->end || *cur->p == ',')
        return 0;
    if (*cur->p != ' ' && *cur->p != '\t') {
        set_syntax_error(err, cur, "a space after the scheme");
        return -1;
    }
    skip_spaces(cur);
    if (skip_token68(cur))
        return 0;
    return parse_params(cur, challenge, err);
}

static void
move_challenge(struct upstream_challenge *to, struct upstream_challenge *from)
{
    upstream_challenge_clear(to);
    *to = *from;
    memset(from, 0, sizeof(*from));
}

int
upstream_challenge_parse(const char *header,
                         struct upstream_challenge *challenge,
                         struct pg_error **err)
{
    struct upstream_challenge current = {0};
    struct upstream_challenge basic = {0};
    size_t len = strnlen(header, PG_CHALLENGE_MAX_BYTES + 1);
    struct cursor cur = {header, header, header + len};
    int rc = -1;

    memset(challenge, 0, sizeof(*challenge));
    if (len > PG_CHALLENGE_MAX_BYTES) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "WWW-Authenticate challenge from the upstream is longer "
                     "than %u bytes",
                     (unsigned)PG_CHALLENGE_MAX_BYTES);
        goto out;
    }

    for (;;) {
        skip_spaces_and_commas(&cur);
        if (cur.p == cur.end)
            break;
        if (parse_challenge(&cur, &current, err) < 0)
            goto out;
        if (current.scheme == UPSTREAM_AUTH_BEARER) {
            move_challenge(challenge, &current);
            break;
        }
        if (current.scheme == UPSTREAM_AUTH_BASIC &&
            basic.scheme == UPSTREAM_AUTH_NONE)
            move_challenge(&basic, &current);
        upstream_challenge_clear(&current);
    }
    if (challenge->scheme == UPSTREAM_AUTH_NONE)
        move_challenge(challenge, &basic);

    if (challenge->scheme == UPSTREAM_AUTH_BEARER && challenge->realm == NULL) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "WWW-Authenticate Bearer challenge from the upstream has "
                     "no realm, so pullgate cannot request a token");
        goto out;
    }
    rc = 0;

out:
    upstream_challenge_clear(&basic);
    upstream_challenge_clear(&current);
    if (rc < 0)
        upstream_challenge_clear(challenge);
    return rc;
}

void
upstream_challenge_clear(struct upstream_challenge *challenge)
{
    if (challenge == NULL)
        return;
    free(challenge->realm);
    free(challenge->service);
    free(challenge->scope);
    free(challenge->error);
    memset(challenge, 0, sizeof(*challenge));
}

char *
upstream_auth_scope(const char *challenge_scope, const char *repository,
                    struct pg_error **err)
{
    static const char prefix[] = "repository:";
    static const char suffix[] = ":pull";
    size_t size;
    char *scope;

    if (challenge_scope != NULL)
        return dup_string(challenge_scope, strlen(challenge_scope), err);
    if (repository == NULL)
        return dup_string("", 0, err);

    size = sizeof(prefix) - 1 + strlen(repository) + sizeof(suffix);
    scope = malloc(size);
    if (scope == NULL) {
        set_oom(err);
        return NULL;
    }
    snprintf(scope, size, "%s%s%s", prefix, repository, suffix);
    return scope;
}

static void
builder_add(struct url_builder *url, const char *text)
{
    size_t len = strlen(text);

    if (url->len + len >= url->cap)
        return;
    memcpy(url->data + url->len, text, len);
    url->len += len;
    url->data[url->len] = '\0';
}

/* Appends len bytes of text, percent-encoding all but RFC 3986's
 * unreserved characters. */
static void
builder_add_encoded(struct url_builder *url, const char *text, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len && url->len + 3 < url->cap; i++) {
        unsigned char c = (unsigned char)text[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("-._~", c) != NULL) {
            url->data[url->len++] = (char)c;
            continue;
        }
        url->data[url->len++] = '%';
        url->data[url->len++] = hex[c >> 4];
        url->data[url->len++] = hex[c & 0xf];
    }
    url->data[url->len] = '\0';
}

static bool
is_http_url(const char *url)
{
    if (strncasecmp(url, "http://", 7) == 0)
        return url[7] != '\0' && url[7] != '/';
    if (strncasecmp(url, "https://", 8) == 0)
        return url[8] != '\0' && url[8] != '/';
    return false;
}

/* Appends "&scope=PIECE" for each space-separated piece of scope. */
static void
builder_add_scopes(struct url_builder *url, const char *scope, char *separator)
{
    const char *piece = scope;

    while (*piece != '\0') {
        size_t len = strcspn(piece, " ");

        if (len > 0) {
            builder_add(url, separator);
            builder_add(url, "scope=");
            builder_add_encoded(url, piece, len);
            separator[0] = '&';
        }
        piece += len;
        piece += strspn(piece, " ");
    }
}

char *
upstream_auth_token_url(const struct upstream_challenge *challenge,
                        const char *scope, struct pg_error **err)
{
    const char *realm = challenge->realm;
    const char *service = challenge->service ? challenge->service : "";
    char separator[2] = {'?', '\0'};
    struct url_builder url = {0};

    if (realm == NULL || !is_http_url(realm) ||
        strpbrk(realm, " \t\r\n#") != NULL) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "token realm \"%.200s\" in the upstream's "
                     "WWW-Authenticate challenge is not an http or https URL",
                     realm ? realm : "");
        return NULL;
    }

    /* Every piece of scope costs "&scope=" plus three bytes per byte at
     * most, and so does the service. */
    url.cap = strlen(realm) + 16 + 3 * strlen(service) + 10 * strlen(scope) +
              sizeof("&scope=");
    url.data = malloc(url.cap);
    if (url.data == NULL) {
        set_oom(err);
        return NULL;
    }
    url.data[0] = '\0';

    builder_add(&url, realm);
    if (strchr(realm, '?') != NULL)
        separator[0] = '&';
    if (service[0] != '\0') {
        builder_add(&url, separator);
        builder_add(&url, "service=");
        builder_add_encoded(&url, service, strlen(service));
        separator[0] = '&';
    }
    builder_add_scopes(&url, scope, separator);
    return url.data;
}

/* A token goes into "Authorization: Bearer TOKEN" as is, so it must be
 * visible ASCII: a CR or LF in it would inject headers. */
static bool
is_header_safe(const char *token)
{
    for (const unsigned char *p = (const unsigned char *)token; *p; p++) {
        if (*p < 0x21 || *p > 0x7e)
            return false;
    }
    return true;
}

static const char *
pick_token(json_t *root)
{
    static const char *const keys[] = {"token", "access_token"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *value = json_string_value(json_object_get(root, keys[i]));

        if (value != NULL && value[0] != '\0')
            return value;
    }
    return NULL;
}

static uint64_t
read_expires_in(json_t *root)
{
    json_t *value = json_object_get(root, "expires_in");
    json_int_t seconds;

    if (!json_is_integer(value))
        return UPSTREAM_TOKEN_DEFAULT_LIFETIME_SECONDS;
    seconds = json_integer_value(value);
    if (seconds <= 0)
        return UPSTREAM_TOKEN_DEFAULT_LIFETIME_SECONDS;
    if (seconds > UPSTREAM_TOKEN_LIFETIME_MAX_SECONDS)
        return UPSTREAM_TOKEN_LIFETIME_MAX_SECONDS;
    return (uint64_t)seconds;
}

/* Parses the zone of an RFC 3339 time: "Z" or "+HH:MM" / "-HH:MM". */
static int
parse_zone(const char *text, int64_t *offset)
{
    uint64_t hours;
    uint64_t minutes;

    if ((text[0] == 'Z' || text[0] == 'z') && text[1] == '\0') {
        *offset = 0;
        return 0;
    }
    if ((text[0] != '+' && text[0] != '-') || strlen(text) != 6 ||
        text[3] != ':')
        return -1;
    if (pg_parse_u64_n(text + 1, 2, 23, &hours) < 0 ||
        pg_parse_u64_n(text + 4, 2, 59, &minutes) < 0)
        return -1;
    *offset = (int64_t)(hours * 3600 + minutes * 60);
    if (text[0] == '-')
        *offset = -*offset;
    return 0;
}

/* Parses an RFC 3339 time such as "2024-05-01T12:00:00.123Z". */
static int
parse_rfc3339(const char *text, int64_t *when)
{
    static const struct {
        size_t offset;
        size_t len;
        uint64_t max;
    } fields[] = {{0, 4, 9999}, {5, 2, 12},  {8, 2, 31},
                  {11, 2, 23},  {14, 2, 59}, {17, 2, 60}};
    uint64_t values[6];
    struct tm tm = {0};
    const char *rest;
    int64_t offset;

    if (strlen(text) < 20 || text[4] != '-' || text[7] != '-' ||
        (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
        text[16] != ':')
        return -1;
    for (size_t i = 0; i < 6; i++) {
        if (pg_parse_u64_n(text + fields[i].offset, fields[i].len,
                           fields[i].max, &values[i]) < 0)
            return -1;
    }

    rest = text + 19;
    if (*rest == '.') {
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    if (parse_zone(rest, &offset) < 0)
        return -1;

    tm.tm_year = (int)values[0] - 1900;
    tm.tm_mon = (int)values[1] - 1;
    tm.tm_mday = (int)values[2];
    tm.tm_hour = (int)values[3];
    tm.tm_min = (int)values[4];
    tm.tm_sec = (int)values[5];
    *when = (int64_t)timegm(&tm) - offset;
    return 0;
}

static void
set_token_error(struct pg_error **err, const char *problem)
{
    pg_error_set(err, 502, PG_ERR_UNAVAILABLE, "invalid token response: %s",
                 problem);
}

int
upstream_token_parse(const char *body, size_t len, struct upstream_token *token,
                     struct pg_error **err)
{
    json_t *root = NULL;
    json_error_t json_error;
    const char *value;
    const char *issued_at;
    int rc = -1;

    memset(token, 0, sizeof(*token));
    if (len > PG_TOKEN_RESPONSE_MAX_BYTES) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "invalid token response: %zu bytes is over the maximum "
                     "of %u",
                     len, (unsigned)PG_TOKEN_RESPONSE_MAX_BYTES);
        goto out;
    }
    if (!pg_json_depth_within(body, len, PG_JSON_MAX_DEPTH)) {
        set_token_error(err, "JSON nests too deep");
        goto out;
    }

    /* jansson's error text can quote the input, which may be a token, so
     * only the position goes into the message. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "invalid token response: not valid JSON at byte %d",
                     json_error.position);
        goto out;
    }
    if (!json_is_object(root)) {
        set_token_error(err, "not a JSON object");
        goto out;
    }

    value = pick_token(root);
    if (value == NULL) {
        set_token_error(err, "no \"token\" or \"access_token\" string");
        goto out;
    }
    if (!is_header_safe(value)) {
        set_token_error(err, "the token has characters other than visible "
                             "ASCII");
        goto out;
    }
    token->value = dup_string(value, strlen(value), err);
    if (token->value == NULL)
        goto out;

    token->expires_in = read_expires_in(root);
    issued_at = json_string_value(json_object_get(root, "issued_at"));
    if (issued_at != NULL && parse_rfc3339(issued_at, &token->issued_at) == 0)
        token->has_issued_at = true;
    rc = 0;

out:
    json_decref(root);
    return rc;
}

void
upstream_token_clear(struct upstream_token *token)
{
    if (token == NULL)
        return;
    wipe_free(token->value);
    memset(token, 0, sizeof(*token));
}

uint64_t
upstream_token_lifetime(const struct upstream_token *token, int64_t now)
{
    uint64_t age = 0;

    if (token->has_issued_at && now > token->issued_at)
        age = (uint64_t)(now - token->issued_at);
    if (age >= token->expires_in)
        return 0;
    return token->expires_in - age;
}

struct upstream_token_cache *
upstream_token_cache_new(size_t max_entries, struct pg_error **err)
{
    struct upstream_token_cache *cache = calloc(1, sizeof(*cache));

    if (cache == NULL)
        goto fail;
    cache->max = max_entries > 0 ? max_entries : 1;
    cache->entries = calloc(cache->max, sizeof(*cache->entries));
    if (cache->entries == NULL)
        goto fail;
    return cache;

fail:
    set_oom(err);
    free(cache);
    return NULL;
}

static void
entry_clear(struct token_entry *entry)
{
    free(entry->upstream);
    free(entry->scope);
    wipe_free(entry->token);
    memset(entry, 0, sizeof(*entry));
}

void
upstream_token_cache_free(struct upstream_token_cache *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < cache->count; i++)
        entry_clear(&cache->entries[i]);
    free(cache->entries);
    free(cache);
}

static struct token_entry *
cache_find(struct upstream_token_cache *cache, const char *upstream,
           const char *scope)
{
    for (size_t i = 0; i < cache->count; i++) {
        struct token_entry *entry = &cache->entries[i];

        if (strcmp(entry->upstream, upstream) == 0 &&
            strcmp(entry->scope, scope) == 0)
            return entry;
    }
    return NULL;
}

const char *
upstream_token_cache_get(struct upstream_token_cache *cache,
                         const char *upstream, const char *scope, uint64_t now)
{
    struct token_entry *entry = cache_find(cache, upstream, scope);

    if (entry == NULL || now >= entry->expires_at)
        return NULL;
    return entry->token;
}

/* Returns a cleared slot for a new entry, evicting one when full. */
static struct token_entry *
cache_slot(struct upstream_token_cache *cache, uint64_t now)
{
    struct token_entry *victim = &cache->entries[0];

    if (cache->count < cache->max)
        return &cache->entries[cache->count++];

    for (size_t i = 0; i < cache->count; i++) {
        struct token_entry *entry = &cache->entries[i];

        if (now >= entry->expires_at) {
            victim = entry;
            break;
        }
        if (entry->expires_at < victim->expires_at)
            victim = entry;
    }
    entry_clear(victim);
    return victim;
}

static void
cache_remove(struct upstream_token_cache *cache, struct token_entry *entry)
{
    struct token_entry *last = &cache->entries[cache->count - 1];

    entry_clear(entry);
    if (entry != last) {
        *entry = *last;
        memset(last, 0, sizeof(*last));
    }
    cache->count--;
}

int
upstream_token_cache_put(struct upstream_token_cache *cache,
                         const char *upstream, const char *scope,
                         const char *token, uint64_t lifetime, uint64_t now,
                         struct pg_error **err)
{
    struct token_entry fresh = {0};
    struct token_entry *entry;

    if (lifetime <= UPSTREAM_TOKEN_EXPIRY_MARGIN_SECONDS)
        return 0;

    fresh.upstream = dup_string(upstream, strlen(upstream), err);
    fresh.scope = dup_string(scope, strlen(scope), err);
    fresh.token = dup_string(token, strlen(token), err);
    if (fresh.upstream == NULL || fresh.scope == NULL || fresh.token == NULL) {
        entry_clear(&fresh);
        return -1;
    }
    fresh.expires_at = now + lifetime - UPSTREAM_TOKEN_EXPIRY_MARGIN_SECONDS;

    entry = cache_find(cache, upstream, scope);
    if (entry != NULL)
        entry_clear(entry);
    else
        entry = cache_slot(cache, now);
    *entry = fresh;
    return 0;
}

void
upstream_token_cache_drop(struct upstream_token_cache *cache,
                          const char *upstream, const char *scope,
                          const char *token)
{
    struct token_entry *entry = cache_find(cache, upstream, scope);

    if (entry != NULL && strcmp(entry->token, token) == 0)
        cache_remove(cache, entry);
}
