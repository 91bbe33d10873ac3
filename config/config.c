#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/limits.h"
#include "config/log.h"
#include "config/parse.h"
#include "config/yaml.h"

/* A dotted key such as "upstreams[1].tls.verify", as messages show it. */
#define CONFIG_KEY_MAX 128

/* A value repeated in a message, quoted and escaped; longer ones are cut. */
#define CONFIG_QUOTED_MAX 96

/* RFC 1035 bounds a host name to 253 characters and a label to 63. */
#define CONFIG_HOST_MAX 253
#define CONFIG_LABEL_MAX 63

#define MIB (1024ull * 1024)

/* A secret rule name, as findings and policies spell it. */
#define CONFIG_SECRET_NAME_MAX 64

/* Layer reader threads, as for workers. */
#define CONFIG_INSPECTOR_THREADS_MAX 256

/*
 * Counts and sizes read from the file. They belong with the other maxima
 * in config/limits.h and are defined here only until they move there.
 */
#ifndef PG_CONFIG_UPSTREAMS_MAX
#define PG_CONFIG_UPSTREAMS_MAX 64
#endif
#ifndef PG_CONFIG_ALIASES_MAX
#define PG_CONFIG_ALIASES_MAX 16
#endif
#ifndef PG_PASSWORD_FILE_MAX_BYTES
#define PG_PASSWORD_FILE_MAX_BYTES 4096
#endif

#define DOCKER_HUB_NAME "docker.io"
#define DOCKER_HUB_URL "https://registry-1.docker.io"

static const char *const docker_hub_aliases[] = {
    "index.docker.io",
    "registry-1.docker.io",
};

/* A configuration file being loaded: its document, name and directory. */
struct loader {
    const struct yaml_doc *doc;
    const char *name; /* the file, as messages show it */
    char *dir;        /* base of relative paths; NULL keeps them as written */
};

/* One value of the file, with the line and dotted key that name it. */
struct field {
    const json_t *value;
    size_t line;
    char key[CONFIG_KEY_MAX];
};

struct key_handler;

/* Loads the value of one known key into target. */
typedef int (*config_key_loader)(const struct loader *ld, const struct field *f,
                                 const struct key_handler *h, void *target,
                                 struct pg_error **err);

/*
 * A known key. The generic loaders (load_path_key, load_unsigned_key...)
 * store the value at offset in the target, within min and max; the other
 * loaders ignore those fields.
 */
struct key_handler {
    const char *key;
    config_key_loader load;
    size_t offset;
    uint64_t min;
    uint64_t max;
};

/* An upstream being loaded, and which optional keys the file set. */
struct upstream_builder {
    struct config_upstream *up;
    bool docker_hub_set;
    bool aliases_set;
};

static void config_error(struct pg_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
config_error(struct pg_error **err, const char *fmt, ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    pg_error_set(err, 500, PG_ERR_CONFIG, "%s", message);
}

static void
out_of_memory(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while loading the configuration");
}

/* Writes text into buf in double quotes, escaped as log values are. */
static const char *
quote(char *buf, size_t size, const char *text)
{
    char inner[CONFIG_QUOTED_MAX];

    pg_log_quote(inner, sizeof(inner), text);
    if (inner[0] == '"')
        snprintf(buf, size, "%s", inner);
    else
        snprintf(buf, size, "\"%s\"", inner);
    return buf;
}

/* Replaces *slot with value, which may be NULL; the old string is freed. */
static void
replace_string(char **slot, char *value)
{
    free(*slot);
    *slot = value;
}

static void
free_secret(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

static void
tls_free(struct config_tls *tls)
{
    free(tls->ca_file);
    free(tls->cert_file);
    free(tls->key_file);
}

static void
upstream_clear(struct config_upstream *up)
{
    tls_free(&up->tls);
    free_secret(up->password);
    free(up->username);
    for (size_t i = 0; i < up->n_aliases; i++)
        free(up->aliases[i]);
    free(up->aliases);
    free(up->url);
    free(up->name);
    memset(up, 0, sizeof(*up));
}

static void
secret_rules_free(struct config_secret_rule *rules, size_t n)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rules[i].name);
        free(rules[i].description);
        free(rules[i].pattern);
    }
    free(rules);
}

static void
upstreams_free(struct config_upstream *list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        upstream_clear(&list[i]);
    free(list);
}

void
config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    upstreams_free(cfg->upstreams, cfg->n_upstreams);
    secret_rules_free(cfg->inspector.secret_rules,
                      cfg->inspector.n_secret_rules);
    free(cfg->log_level);
    free(cfg->policy_path);
    free(cfg->cache_dir);
    free(cfg->tls_key_file);
    free(cfg->tls_cert_file);
    free(cfg->listen_host);
    free(cfg->source);
    free(cfg);
}

/* ------------------------------------------------------------------ */
/* Checks shared by the file and the command line.                    */
/* ------------------------------------------------------------------ */

/* Parses a port from 1 to 65535. */
static int
parse_port(const char *text, size_t len, uint16_t *port)
{
    uint64_t value;

    if (pg_parse_u64_n(text, len, 65535, &value) < 0 || value == 0)
        return -1;
    *port = (uint16_t)value;
    return 0;
}

static int
listen_syntax_error(const char *text, struct pg_error **err)
{
    char quoted[CONFIG_QUOTED_MAX + 2];

    config_error(err,
                 "%s is not ADDRESS:PORT; write an IP address and a port, "
                 "such as 127.0.0.1:5000 or [::1]:5000",
                 quote(quoted, sizeof(quoted), text));
    return -1;
}

/*
 * Parses "ADDRESS:PORT" or "[IPV6]:PORT" into a new host string (without
 * brackets) and a port. The caller frees *host.
 */
static int
parse_listen(const char *text, char **host, uint16_t *port,
             struct pg_error **err)
{
    char address[INET6_ADDRSTRLEN];
    unsigned char binary[sizeof(struct in6_addr)];
    const char *colon = strrchr(text, ':');
    const char *start = text;
    uint16_t parsed_port;
    size_t len;
    int family = AF_INET;

    if (colon == NULL)
        return listen_syntax_error(text, err);
    len = (size_t)(colon - text);
    if (text[0] == '[') {
        if (len < 2 || text[len - 1] != ']')
            return listen_syntax_error(text, err);
        start = text + 1;
        len -= 2;
        family = AF_INET6;
    }
    if (len == 0 || len >= sizeof(address))
        return listen_syntax_error(text, err);
    memcpy(address, start, len);
    address[len] = '\0';
    if (inet_pton(family, address, binary) != 1)
        return listen_syntax_error(text, err);

    if (parse_port(colon + 1, strlen(colon + 1), &parsed_port) < 0) {
        char quoted[CONFIG_QUOTED_MAX + 2];

        config_error(err,
                     "port %s is not a number from 1 to 65535; write "
                     "a port such as 5000",
                     quote(quoted, sizeof(quoted), colon + 1));
        return -1;
    }

    *host = strdup(address);
    if (*host == NULL) {
        out_of_memory(err);
        return -1;
    }
    *port = parsed_port;
    return 0;
}

static bool
is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Checks one DNS label: letters, digits and inner '-', at most 63. */
static bool
valid_label(const char *label, size_t len)
{
    if (len == 0 || len > CONFIG_LABEL_MAX)
        return false;
    if (label[0] == '-' || label[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_lower_alnum(label[i]) && label[i] != '-')
            return false;
    }
    return true;
}

/* Checks a lowercase host name such as "ghcr.io" or "localhost". */
static bool
valid_host(const char *host, size_t len)
{
    size_t start = 0;

    if (len == 0 || len > CONFIG_HOST_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && host[i] != '.')
            continue;
        if (!valid_label(host + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

/*
 * Checks a registry name as clients write it in image references: a
 * lowercase host name with an optional ":PORT".
 */
static int
check_registry_name(const char *name, struct pg_error **err)
{
    const char *colon = strchr(name, ':');
    size_t host_len = colon != NULL ? (size_t)(colon - name) : strlen(name);
    uint16_t port;
    char quoted[CONFIG_QUOTED_MAX + 2];

    if (valid_host(name, host_len) &&
        (colon == NULL || parse_port(colon + 1, strlen(colon + 1), &port) == 0))
        return 0;

    config_error(err,
                 "%s is not a registry host name; write it as clients do, "
                 "in lowercase letters, digits, '.' and '-' with an optional "
                 ":PORT, such as ghcr.io or registry.example.com:5000",
                 quote(quoted, sizeof(quoted), name));
    return -1;
}

/* Checks the host and optional port of a URL: "host", "[v6]:443". */
static bool
valid_authority(const char *text, size_t len)
{
    const char *end = text + len;
    const char *colon = NULL;
    uint16_t port;

    if (len > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', len);
        char address[INET6_ADDRSTRLEN];
        unsigned char binary[sizeof(struct in6_addr)];
        size_t address_len = close != NULL ? (size_t)(close - text - 1) : 0;

        if (address_len == 0 || address_len >= sizeof(address))
            return false;
        memcpy(address, text + 1, address_len);
        address[address_len] = '\0';
        if (inet_pton(AF_INET6, address, binary) != 1)
            return false;
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return false;
    } else {
        colon = memchr(text, ':', len);
        for (const char *p = text; p < (colon ? colon : end); p++) {
            if (!is_lower_alnum(*p) && *p != '.' && *p != '-' && *p != '_' &&
                !(*p >= 'A' && *p <= 'Z'))
                return false;
        }
        if (colon == text || len == 0)
            return false;
    }
    return colon == NULL ||
           parse_port(colon + 1, (size_t)(end - colon - 1), &port) == 0;
}

static int
url_error(const char *url, const char *problem, struct pg_error **err)
{
    char quoted[CONFIG_QUOTED_MAX + 2];

    config_error(err,
                 "%s %s; write the upstream's base URL, such as "
                 "https://ghcr.io",
                 quote(quoted, sizeof(quoted), url), problem);
    return -1;
}

/*
 * Checks an upstream base URL and returns a copy without the trailing '/'.
 * Credentials in the URL are rejected without repeating the URL, so that a
 * password never reaches a message.
 */
static char *
check_url(const char *url, struct pg_error **err)
{
    size_t scheme_len = 0;
    size_t authority_len;
    const char *rest;
    char *copy;

    if (strchr(url, '@') != NULL) {
        config_error(err,
                     "the URL contains a user name or password; remove them "
                     "from the URL and set username and password (or "
                     "password_file) on the upstream");
        return NULL;
    }
    if (strncmp(url, "https://", 8) == 0)
        scheme_len = 8;
    else if (strncmp(url, "http://", 7) == 0)
        scheme_len = 7;
    if (scheme_len == 0) {
        url_error(url, "is not an http:// or https:// URL", err);
        return NULL;
    }

    authority_len = strcspn(url + scheme_len, "/?#");
    rest = url + scheme_len + authority_len;
    if (!valid_authority(url + scheme_len, authority_len)) {
        url_error(url, "has no valid host and port", err);
        return NULL;
    }
    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        url_error(url, "has a path, query or fragment", err);
        return NULL;
    }

    copy = strndup(url, scheme_len + authority_len);
    if (copy == NULL)
        out_of_memory(err);
    return copy;
}

/* Adds a copy of alias to the aliases of up. */
static int
upstream_add_alias(struct config_upstream *up, const char *alias)
{
    char **aliases;
    char *copy = strdup(alias);

    if (copy == NULL)
        return -1;
    aliases = realloc(up->aliases, (up->n_aliases + 1) * sizeof(*aliases));
    if (aliases == NULL) {
        free(copy);
        return -1;
    }
    aliases[up->n_aliases++] = copy;
    up->aliases = aliases;
    return 0;
}

/*
 * Fills in what an upstream gets by default: Docker Hub's name handling
 * and its two other host names, unless the source set them.
 */
static int
upstream_apply_defaults(struct config_upstream *up, bool docker_hub_set,
                        bool aliases_set, struct pg_error **err)
{
    bool is_hub = strcmp(up->name, DOCKER_HUB_NAME) == 0;

    if (!docker_hub_set)
        up->docker_hub = is_hub;
    if (!is_hub || aliases_set)
        return 0;

    for (size_t i = 0; i < sizeof(docker_hub_aliases) / sizeof(char *); i++) {
        if (upstream_add_alias(up, docker_hub_aliases[i]) < 0) {
            out_of_memory(err);
            return -1;
        }
    }
    return 0;
}

/* Fills up with a name and URL from the command line or the defaults. */
static int
upstream_init(struct config_upstream *up, const char *name, const char *url,
              struct pg_error **err)
{
    memset(up, 0, sizeof(*up));
    up->tls.verify = true;
    up->name = strdup(name);
    up->url = strdup(url);
    if (up->name == NULL || up->url == NULL) {
        out_of_memory(err);
        return -1;
    }
    return upstream_apply_defaults(up, false, false, err);
}

struct config *
config_defaults(struct pg_error **err)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        goto fail;
    cfg->source = strdup("built-in defaults");
    cfg->listen_host = strdup("127.0.0.1");
    cfg->listen_port = 5000;
    cfg->cache_dir = strdup("./var");
    cfg->log_level = strdup("info");
    cfg->verdict_wait_seconds = 60;
    cfg->shutdown_grace_seconds = 30;
    cfg->connect_timeout_seconds = 10;
    cfg->low_speed_timeout_seconds = 30;
    cfg->lmdb_map_size = 4096 * MIB;
    cfg->inspector.layer_entries_max = PG_LAYER_ENTRIES_DEFAULT_MAX;
    cfg->inspector.layer_bytes_max = PG_LAYER_BYTES_DEFAULT_MAX;
    cfg->inspector.path_length_max = PG_LAYER_PATH_DEFAULT_MAX;
    cfg->inspector.compression_ratio_max = PG_LAYER_RATIO_DEFAULT_MAX;
    cfg->inspector.file_bytes_max = PG_INSPECT_FILE_DEFAULT_MAX;
    cfg->inspector.secret_file_bytes_max = PG_SECRET_FILE_DEFAULT_MAX;
    if (cfg->source == NULL || cfg->listen_host == NULL ||
        cfg->cache_dir == NULL || cfg->log_level == NULL)
        goto fail;

    cfg->upstreams = calloc(1, sizeof(*cfg->upstreams));
    if (cfg->upstreams == NULL)
        goto fail;
    cfg->n_upstreams = 1;
    if (upstream_init(&cfg->upstreams[0], DOCKER_HUB_NAME, DOCKER_HUB_URL,
                      err) < 0)
        goto fail;
    return cfg;

fail:
    out_of_memory(err);
    config_free(cfg);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Values of the file.                                                */
/* ------------------------------------------------------------------ */

/* Prepends "FILE:LINE: KEY" (or "FILE:LINE" when key is NULL) to *err. */
static void
location_prefix(const struct loader *ld, size_t line, const char *key,
                struct pg_error **err)
{
    if (line > 0 && key != NULL)
        pg_error_prefix(err, "%s:%zu: %s", ld->name, line, key);
    else if (line > 0)
        pg_error_prefix(err, "%s:%zu", ld->name, line);
    else if (key != NULL)
        pg_error_prefix(err, "%s: %s", ld->name, key);
    else
        pg_error_prefix(err, "%s", ld->name);
}

static void field_error(const struct loader *ld, const struct field *f,
                        struct pg_error **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
field_error(const struct loader *ld, const struct field *f,
            struct pg_error **err, const char *fmt, ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    config_error(err, "%s", message);
    location_prefix(ld, f->line, f->key, err);
}

/* Describes a value for "expected ..., not %s"; secrets show only a type. */
static const char *
describe(char *buf, size_t size, const json_t *value, bool secret)
{
    char quoted[CONFIG_QUOTED_MAX + 2];

    switch (json_typeof(value)) {
    case JSON_STRING:
        if (secret)
            return "a string";
        snprintf(buf, size, "the string %s",
                 quote(quoted, sizeof(quoted), json_string_value(value)));
        return buf;
    case JSON_INTEGER:
        if (secret)
            return "an integer";
        snprintf(buf, size, "the integer %" JSON_INTEGER_FORMAT,
                 json_integer_value(value));
        return buf;
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "an empty value";
    case JSON_ARRAY:
        return "a list";
    default:
        return "a mapping";
    }
}

/* Formats the dotted key of f; a key longer than CONFIG_KEY_MAX is cut. */
static void field_set_key(struct field *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
field_set_key(struct field *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(f->key, sizeof(f->key), fmt, ap);
    va_end(ap);
}

/* Fills member with object's value for key, its line and dotted key. */
static void
field_member(const struct loader *ld, const struct field *parent,
             const char *key, struct field *member)
{
    size_t column;

    member->value = json_object_get(parent->value, key);
    yaml_doc_key_position(ld->doc, parent->value, key, &member->line, &column);
    if (parent->key[0] == '\0')
        field_set_key(member, "%s", key);
    else
        field_set_key(member, "%s.%s", parent->key, key);
}

static void
field_element(const struct loader *ld, const struct field *parent, size_t index,
              struct field *element)
{
    size_t column;

    element->value = json_array_get(parent->value, index);
    yaml_doc_index_position(ld->doc, parent->value, index, &element->line,
                            &column);
    field_set_key(element, "%s[%zu]", parent->key, index);
}

/* Returns the string of f, which must be a non-empty string. */
static const char *
get_string(const struct loader *ld, const struct field *f, bool secret,
           struct pg_error **err)
{
    char found[CONFIG_QUOTED_MAX + 32];
    const char *text;

    if (!json_is_string(f->value)) {
        field_error(ld, f, err,
                    "expected a string, not %s; write the value in quotes",
                    describe(found, sizeof(found), f->value, secret));
        return NULL;
    }
    text = json_string_value(f->value);
    if (text[0] == '\0') {
        field_error(ld, f, err,
                    "the value is empty; write a value or "
                    "remove the key");
        return NULL;
    }
    return text;
}

static int
get_bool(const struct loader *ld, const struct field *f, bool *value,
         struct pg_error **err)
{
    char found[CONFIG_QUOTED_MAX + 32];

    if (!json_is_boolean(f->value)) {
        field_error(ld, f, err, "expected true or false, not %s",
                    describe(found, sizeof(found), f->value, false));
        return -1;
    }
    *value = json_is_true(f->value);
    return 0;
}

static int
get_integer(const struct loader *ld, const struct field *f, uint64_t min,
            uint64_t max, uint64_t *value, struct pg_error **err)
{
    char found[CONFIG_QUOTED_MAX + 32];
    json_int_t number;

    if (!json_is_integer(f->value)) {
        field_error(ld, f, err, "expected an integer from %llu to %llu, not %s",
                    (unsigned long long)min, (unsigned long long)max,
                    describe(found, sizeof(found), f->value, false));
        return -1;
    }
    number = json_integer_value(f->value);
    if (number < 0 || (uint64_t)number < min || (uint64_t)number > max) {
        field_error(ld, f, err,
                    "%" JSON_INTEGER_FORMAT " is out of range; write an "
                    "integer from %llu to %llu",
                    number, (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *value = (uint64_t)number;
    return 0;
}

/* Joins a relative path to the directory of the file; the caller frees. */
static char *
resolve_path(const struct loader *ld, const char *path)
{
    size_t dir_len;
    size_t size;
    char *joined;

    if (ld->dir == NULL || path[0] == '/')
        return strdup(path);

    dir_len = strlen(ld->dir);
    size = dir_len + 1 + strlen(path) + 1;
    joined = malloc(size);
    if (joined == NULL)
        return NULL;
    if (dir_len > 0 && ld->dir[dir_len - 1] == '/')
        snprintf(joined, size, "%s%s", ld->dir, path);
    else
        snprintf(joined, size, "%s/%s", ld->dir, path);
    return joined;
}

/* Stores the path of f, resolved against the file's directory, in *slot. */
static int
get_path(const struct loader *ld, const struct field *f, char **slot,
         struct pg_error **err)
{
    const char *text = get_string(ld, f, false, err);
    char *path;

    if (text == NULL)
        return -1;
    if (strlen(text) >= PATH_MAX) {
        field_error(ld, f, err,
                    "the path is longer than %d bytes; use a "
                    "shorter path",
                    PATH_MAX - 1);
        return -1;
    }
    path = resolve_path(ld, text);
    if (path == NULL) {
        out_of_memory(err);
        return -1;
    }
    replace_string(slot, path);
    return 0;
}

static const struct key_handler *
find_handler(const struct key_handler *handlers, const char *key)
{
    for (size_t i = 0; handlers[i].key != NULL; i++) {
        if (strcmp(handlers[i].key, key) == 0)
            return &handlers[i];
    }
    return NULL;
}

static void
unknown_key(const struct loader *ld, const struct field *f,
            const struct key_handler *handlers, struct pg_error **err)
{
    char known[PG_ERROR_MESSAGE_MAX / 2] = "";
    char quoted[CONFIG_QUOTED_MAX + 2];
    size_t used = 0;

    for (size_t i = 0; handlers[i].key != NULL && used < sizeof(known); i++) {
        int n = snprintf(known + used, sizeof(known) - used, "%s%s",
                         i > 0 ? ", " : "", handlers[i].key);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    config_error(err, "unknown key %s; known keys are %s",
                 quote(quoted, sizeof(quoted), f->key), known);
    location_prefix(ld, f->line, NULL, err);
}

/* Loads every key of the mapping f through handlers, in file order. */
static int
load_mapping(const struct loader *ld, const struct field *f,
             const struct key_handler *handlers, void *target,
             struct pg_error **err)
{
    char found[CONFIG_QUOTED_MAX + 32];

    if (!json_is_object(f->value)) {
        field_error(ld, f, err,
                    "expected a mapping, not %s; write its "
                    "keys on the lines below, indented",
                    describe(found, sizeof(found), f->value, false));
        return -1;
    }

    for (void *it = json_object_iter((json_t *)f->value); it != NULL;
         it = json_object_iter_next((json_t *)f->value, it)) {
        const char *key = json_object_iter_key(it);
        const struct key_handler *handler = find_handler(handlers, key);
        struct field member;

        field_member(ld, f, key, &member);
        if (handler == NULL) {
            unknown_key(ld, &member, handlers, err);
            return -1;
        }
        if (handler->load(ld, &member, handler, target, err) < 0)
            return -1;
    }
    return 0;
}

/* Checks that a pair of keys of f is set together or not at all. */
static int
check_pair(const struct loader *ld, const struct field *f, const char *first,
           const void *first_value, const char *second,
           const void *second_value, struct pg_error **err)
{
    if ((first_value == NULL) == (second_value == NULL))
        return 0;
    field_error(ld, f, err,
                "%s is set but %s is missing; set both, or "
                "neither",
                first_value != NULL ? first : second,
                first_value != NULL ? second : first);
    return -1;
}

/* Returns the member of target that h names. */
static void *
key_member(void *target, const struct key_handler *h)
{
    return (char *)target + h->offset;
}

static int
load_path_key(const struct loader *ld, const struct field *f,
              const struct key_handler *h, void *target, struct pg_error **err)
{
    return get_path(ld, f, key_member(target, h), err);
}

static int
load_unsigned_key(const struct loader *ld, const struct field *f,
                  const struct key_handler *h, void *target,
                  struct pg_error **err)
{
    unsigned *member = key_member(target, h);
    uint64_t number;

    if (get_integer(ld, f, h->min, h->max, &number, err) < 0)
        return -1;
    *member = (unsigned)number;
    return 0;
}

static int
load_u64_key(const struct loader *ld, const struct field *f,
             const struct key_handler *h, void *target, struct pg_error **err)
{
    return get_integer(ld, f, h->min, h->max, key_member(target, h), err);
}

static int
load_bool_key(const struct loader *ld, const struct field *f,
              const struct key_handler *h, void *target, struct pg_error **err)
{
    return get_bool(ld, f, key_member(target, h), err);
}

/* ------------------------------------------------------------------ */
/* Top-level keys.                                                    */
/* ------------------------------------------------------------------ */

static int
load_listen(const struct loader *ld, const struct field *f,
            const struct key_handler *h, void *target, struct pg_error **err)
{
    struct config *cfg = target;
    const char *text = get_string(ld, f, false, err);
    char *host = NULL;

    if (text == NULL)
        return -1;
    if (parse_listen(text, &host, &cfg->listen_port, err) < 0) {
        location_prefix(ld, f->line, f->key, err);
        return -1;
    }
    replace_string(&cfg->listen_host, host);
    return 0;
}

static const struct key_handler server_tls_keys[] = {
    {.key = "cert_file",
     .load = load_path_key,
     .offset = offsetof(struct config, tls_cert_file)},
    {.key = "key_file",
     .load = load_path_key,
     .offset = offsetof(struct config, tls_key_file)},
    {.key = NULL},
};

static int
load_server_tls(const struct loader *ld, const struct field *f,
                const struct key_handler *h, void *target,
                struct pg_error **err)
{
    struct config *cfg = target;

    if (load_mapping(ld, f, server_tls_keys, cfg, err) < 0)
        return -1;
    return check_pair(ld, f, "cert_file", cfg->tls_cert_file, "key_file",
                      cfg->tls_key_file, err);
}

static int
load_log_level(const struct loader *ld, const struct field *f,
               const struct key_handler *h, void *target, struct pg_error **err)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    struct config *cfg = target;
    const char *text = get_string(ld, f, false, err);
    char quoted[CONFIG_QUOTED_MAX + 2];

    if (text == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(text, levels[i]) != 0)
            continue;
        replace_string(&cfg->log_level, strdup(levels[i]));
        if (cfg->log_level == NULL) {
            out_of_memory(err);
            return -1;
        }
        return 0;
    }
    field_error(ld, f, err,
                "%s is not a log level; write debug, info, "
                "warn or error",
                quote(quoted, sizeof(quoted), text));
    return -1;
}

static int
load_map_size(const struct loader *ld, const struct field *f,
              const struct key_handler *h, void *target, struct pg_error **err)
{
    struct config *cfg = target;
    uint64_t mib;

    if (get_integer(ld, f, h->min, h->max, &mib, err) < 0)
        return -1;
    cfg->lmdb_map_size = mib * MIB;
    return 0;
}

/* ------------------------------------------------------------------ */
/* inspector:                                                         */
/* ------------------------------------------------------------------ */

/* An inspector limit: a positive integer stored in struct config_inspector. */
#define INSPECTOR_LIMIT(name)                                                  \
    {                                                                          \
        .key = #name, .load = load_u64_key,                                    \
        .offset = offsetof(struct config_inspector, name), .min = 1,           \
        .max = (uint64_t)INT64_MAX,                                            \
    }

/* Returns true for a secret rule name: 1 to CONFIG_SECRET_NAME_MAX
 * lowercase letters, digits and '-', as findings and policies spell it. */
static bool
valid_secret_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > CONFIG_SECRET_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_lower_alnum(name[i]) && name[i] != '-')
            return false;
    }
    return true;
}

/* Stores a copy of the string of f in *slot. */
static int
load_string_copy(const struct loader *ld, const struct field *f, char **slot,
                 struct pg_error **err)
{
    const char *text = get_string(ld, f, false, err);

    if (text == NULL)
        return -1;
    replace_string(slot, strdup(text));
    if (*slot == NULL) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

static int
load_secret_name(const struct loader *ld, const struct field *f,
                 const struct key_handler *h, void *target,
                 struct pg_error **err)
{
    struct config_secret_rule *rule = target;
    char quoted[CONFIG_QUOTED_MAX + 2];

    if (load_string_copy(ld, f, &rule->name, err) < 0)
        return -1;
    if (valid_secret_name(rule->name))
        return 0;
    field_error(ld, f, err,
                "%s is not a secret rule name; use 1 to %d lowercase "
                "letters, digits and '-', such as acme-api-key",
                quote(quoted, sizeof(quoted), rule->name),
                CONFIG_SECRET_NAME_MAX);
    return -1;
}

static int
load_secret_pattern(const struct loader *ld, const struct field *f,
                    const struct key_handler *h, void *target,
                    struct pg_error **err)
{
    struct config_secret_rule *rule = target;

    if (load_string_copy(ld, f, &rule->pattern, err) < 0)
        return -1;
    if (strlen(rule->pattern) <= PG_SECRET_PATTERN_MAX)
        return 0;
    field_error(ld, f, err,
                "the pattern is longer than %d bytes; write a shorter "
                "pattern",
                PG_SECRET_PATTERN_MAX);
    return -1;
}

static int
load_secret_description(const struct loader *ld, const struct field *f,
                        const struct key_handler *h, void *target,
                        struct pg_error **err)
{
    struct config_secret_rule *rule = target;

    return load_string_copy(ld, f, &rule->description, err);
}

static const struct key_handler secret_rule_keys[] = {
    {.key = "name", .load = load_secret_name},
    {.key = "pattern", .load = load_secret_pattern},
    {.key = "description", .load = load_secret_description},
    {.key = NULL},
};

/*
 * Loads inspector.secret_rules[index] into rules[index] and checks that
 * its name differs from the earlier ones. The pattern is compiled by the
 * inspector when the daemon starts, not here.
 */
static int
load_secret_rule(const struct loader *ld, const struct field *f,
                 struct config_secret_rule *rules, size_t index,
                 struct pg_error **err)
{
    struct config_secret_rule *rule = &rules[index];
    struct field member;

    if (load_mapping(ld, f, secret_rule_keys, rule, err) < 0)
        return -1;
    if (rule->name == NULL || rule->pattern == NULL) {
        field_error(ld, f, err,
                    "missing key \"%s\"; add %s",
                    rule->name == NULL ? "name" : "pattern",
                    rule->name == NULL
                        ? "the name that findings report, such as "
                          "name: acme-api-key"
                        : "a PCRE2 pattern, such as pattern: "
                          "'ACME-[0-9]{8}'");
        return -1;
    }
    if (rule->description == NULL) {
        rule->description = strdup("");
        if (rule->description == NULL) {
            out_of_memory(err);
            return -1;
        }
    }

    for (size_t i = 0; i < index; i++) {
        if (strcmp(rules[i].name, rule->name) != 0)
            continue;
        field_member(ld, f, "name", &member);
        field_error(ld, &member, err,
                    "\"%s\" is also the name of "
                    "inspector.secret_rules[%zu]; give each secret rule a "
                    "different name",
                    rule->name, i);
        return -1;
    }
    return 0;
}

static int
load_secret_rules(const struct loader *ld, const struct field *f,
                  const struct key_handler *h, void *target,
                  struct pg_error **err)
{
    struct config_inspector *inspector = target;
    struct config_secret_rule *rules = NULL;
    char found[CONFIG_QUOTED_MAX + 32];
    size_t n = json_array_size(f->value);
    int rc = -1;

    if (!json_is_array(f->value)) {
        field_error(ld, f, err,
                    "expected a list of secret rules, not %s; write one "
                    "entry per rule, starting with \"- name: ...\"",
                    describe(found, sizeof(found), f->value, false));
        return -1;
    }
    if (n > PG_SECRET_RULES_MAX) {
        field_error(ld, f, err, "%zu secret rules are more than %d; remove "
                                "some",
                    n, PG_SECRET_RULES_MAX);
        return -1;
    }
    if (n > 0 && (rules = calloc(n, sizeof(*rules))) == NULL) {
        out_of_memory(err);
        return -1;
    }

    for (size_t i = 0; i < n; i++) {
        struct field element;

        field_element(ld, f, i, &element);
        if (load_secret_rule(ld, &element, rules, i, err) < 0)
            goto out;
    }
    secret_rules_free(inspector->secret_rules, inspector->n_secret_rules);
    inspector->secret_rules = rules;
    inspector->n_secret_rules = n;
    rules = NULL;
    rc = 0;

out:
    secret_rules_free(rules, n);
    return rc;
}

static const struct key_handler inspector_keys[] = {
    INSPECTOR_LIMIT(layer_entries_max),
    INSPECTOR_LIMIT(layer_bytes_max),
    INSPECTOR_LIMIT(path_length_max),
    INSPECTOR_LIMIT(compression_ratio_max),
    INSPECTOR_LIMIT(file_bytes_max),
    INSPECTOR_LIMIT(secret_file_bytes_max),
    {.key = "threads",
     .load = load_unsigned_key,
     .offset = offsetof(struct config_inspector, threads),
     .min = 0,
     .max = CONFIG_INSPECTOR_THREADS_MAX},
    {.key = "secret_rules", .load = load_secret_rules},
    {.key = NULL},
};

static int
load_inspector(const struct loader *ld, const struct field *f,
               const struct key_handler *h, void *target, struct pg_error **err)
{
    struct config *cfg = target;

    return load_mapping(ld, f, inspector_keys, &cfg->inspector, err);
}

/* ------------------------------------------------------------------ */
/* upstreams[N].tls:                                                  */
/* ------------------------------------------------------------------ */

static const struct key_handler upstream_tls_keys[] = {
    {.key = "verify",
     .load = load_bool_key,
     .offset = offsetof(struct config_tls, verify)},
    {.key = "ca_file",
     .load = load_path_key,
     .offset = offsetof(struct config_tls, ca_file)},
    {.key = "cert_file",
     .load = load_path_key,
     .offset = offsetof(struct config_tls, cert_file)},
    {.key = "key_file",
     .load = load_path_key,
     .offset = offsetof(struct config_tls, key_file)},
    {.key = NULL},
};

/* ------------------------------------------------------------------ */
/* upstreams[N]:                                                      */
/* ------------------------------------------------------------------ */

static int
load_upstream_name(const struct loader *ld, const struct field *f,
                   const struct key_handler *h, void *target,
                   struct pg_error **err)
{
    struct upstream_builder *b = target;
    const char *text = get_string(ld, f, false, err);

    if (text == NULL)
        return -1;
    if (check_registry_name(text, err) < 0) {
        location_prefix(ld, f->line, f->key, err);
        return -1;
    }
    replace_string(&b->up->name, strdup(text));
    if (b->up->name == NULL) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

static int
load_upstream_url(const struct loader *ld, const struct field *f,
                  const struct key_handler *h, void *target,
                  struct pg_error **err)
{
    struct upstream_builder *b = target;
    const char *text = get_string(ld, f, false, err);
    char *url;

    if (text == NULL)
        return -1;
    url = check_url(text, err);
    if (url == NULL) {
        location_prefix(ld, f->line, f->key, err);
        return -1;
    }
    replace_string(&b->up->url, url);
    return 0;
}

static int
load_alias(const struct loader *ld, const struct field *f,
           struct config_upstream *up, struct pg_error **err)
{
    const char *text = get_string(ld, f, false, err);

    if (text == NULL)
        return -1;
    if (check_registry_name(text, err) < 0) {
        location_prefix(ld, f->line, f->key, err);
        return -1;
    }
    if (upstream_add_alias(up, text) < 0) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

static int
load_aliases(const struct loader *ld, const struct field *f,
             const struct key_handler *h, void *target, struct pg_error **err)
{
    struct upstream_builder *b = target;
    char found[CONFIG_QUOTED_MAX + 32];
    size_t n = json_array_size(f->value);

    if (!json_is_array(f->value)) {
        field_error(ld, f, err,
                    "expected a list of host names, not %s; "
                    "write them as [index.docker.io, registry-1.docker.io]",
                    describe(found, sizeof(found), f->value, false));
        return -1;
    }
    if (n > PG_CONFIG_ALIASES_MAX) {
        field_error(ld, f, err,
                    "%zu aliases are more than %d; route "
                    "fewer names to this upstream",
                    n, PG_CONFIG_ALIASES_MAX);
        return -1;
    }

    b->aliases_set = true;
    for (size_t i = 0; i < n; i++) {
        struct field element;

        field_element(ld, f, i, &element);
        if (load_alias(ld, &element, b->up, err) < 0)
            return -1;
    }
    return 0;
}

static int
load_docker_hub(const struct loader *ld, const struct field *f,
                const struct key_handler *h, void *target,
                struct pg_error **err)
{
    struct upstream_builder *b = target;

    b->docker_hub_set = true;
    return get_bool(ld, f, &b->up->docker_hub, err);
}

static int
load_username(const struct loader *ld, const struct field *f,
              const struct key_handler *h, void *target, struct pg_error **err)
{
    struct upstream_builder *b = target;
    const char *text = get_string(ld, f, false, err);

    if (text == NULL)
        return -1;
    replace_string(&b->up->username, strdup(text));
    if (b->up->username == NULL) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

static int
load_password(const struct loader *ld, const struct field *f,
              const struct key_handler *h, void *target, struct pg_error **err)
{
    struct upstream_builder *b = target;
    const char *text = get_string(ld, f, true, err);

    if (text == NULL)
        return -1;
    free_secret(b->up->password);
    b->up->password = strdup(text);
    if (b->up->password == NULL) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

/*
 * Reads fd, at most PG_PASSWORD_FILE_MAX_BYTES, into buf as a string.
 * Returns the length, or -1 with errno set (EFBIG when the file is larger).
 */
static ssize_t
read_secret(int fd, char *buf, size_t size)
{
    size_t used = 0;

    while (used < size) {
        ssize_t n = read(fd, buf + used, size - used);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used == size) {
        errno = EFBIG;
        return -1;
    }
    buf[used] = '\0';
    return (ssize_t)used;
}

/* Checks a password read from a file, after its trailing newline. */
static int
check_secret(const char *secret, size_t len, struct pg_error **err)
{
    if (len == 0) {
        config_error(err, "the file is empty; write the password in it");
        return -1;
    }
    if (strlen(secret) != len || strpbrk(secret, "\r\n") != NULL) {
        config_error(err, "the file contains more than one line or a NUL "
                          "byte; write only the password, on one line");
        return -1;
    }
    return 0;
}

/*
 * Reads a password file: one line, the trailing newline removed. Returns a
 * new string that the caller wipes and frees, or NULL. Messages name the
 * path but never the content.
 */
static char *
read_password_file(const char *path, struct pg_error **err)
{
    char buf[PG_PASSWORD_FILE_MAX_BYTES + 1];
    char *secret = NULL;
    ssize_t len = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0)
        len = read_secret(fd, buf, sizeof(buf));
    if (len < 0) {
        config_error(err,
                     "failed to read %s: %s; check the path and its "
                     "permissions (at most %d bytes)",
                     path, strerror(errno), PG_PASSWORD_FILE_MAX_BYTES);
        goto out;
    }

    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    if (check_secret(buf, (size_t)len, err) < 0)
        goto out;

    secret = strdup(buf);
    if (secret == NULL)
        out_of_memory(err);

out:
    explicit_bzero(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return secret;
}

static int
load_password_file(const struct loader *ld, const struct field *f,
                   const struct key_handler *h, void *target,
                   struct pg_error **err)
{
    struct upstream_builder *b = target;
    char *path = NULL;
    char *secret;

    if (get_path(ld, f, &path, err) < 0)
        return -1;
    secret = read_password_file(path, err);
    free(path);
    if (secret == NULL) {
        location_prefix(ld, f->line, f->key, err);
        return -1;
    }
    free_secret(b->up->password);
    b->up->password = secret;
    return 0;
}

static int
load_upstream_tls(const struct loader *ld, const struct field *f,
                  const struct key_handler *h, void *target,
                  struct pg_error **err)
{
    struct upstream_builder *b = target;
    struct config_tls *tls = &b->up->tls;

    if (load_mapping(ld, f, upstream_tls_keys, tls, err) < 0)
        return -1;
    return check_pair(ld, f, "cert_file", tls->cert_file, "key_file",
                      tls->key_file, err);
}

static const struct key_handler upstream_keys[] = {
    {.key = "name", .load = load_upstream_name},
    {.key = "url", .load = load_upstream_url},
    {.key = "aliases", .load = load_aliases},
    {.key = "docker_hub", .load = load_docker_hub},
    {.key = "username", .load = load_username},
    {.key = "password", .load = load_password},
    {.key = "password_file", .load = load_password_file},
    {.key = "tls", .load = load_upstream_tls},
    {.key = NULL},
};

/* Rejects password and password_file together, before either is read. */
static int
check_password_sources(const struct loader *ld, const struct field *f,
                       struct pg_error **err)
{
    struct field member;

    if (!json_is_object(f->value) ||
        json_object_get(f->value, "password") == NULL ||
        json_object_get(f->value, "password_file") == NULL)
        return 0;

    field_member(ld, f, "password_file", &member);
    field_error(ld, &member, err,
                "password is set too; keep either "
                "password or password_file");
    return -1;
}

/* Checks the keys an upstream needs, once all of them are loaded. */
static int
finish_upstream(const struct loader *ld, const struct field *f,
                struct upstream_builder *b, struct pg_error **err)
{
    struct config_upstream *up = b->up;
    struct field member;

    if (up->name == NULL) {
        field_error(ld, f, err,
                    "missing key \"name\"; add the registry "
                    "host that clients use, such as name: ghcr.io");
        return -1;
    }
    if (up->url == NULL) {
        field_error(ld, f, err,
                    "missing key \"url\"; add the upstream's "
                    "base URL, such as url: https://ghcr.io");
        return -1;
    }
    if (up->password != NULL && up->username == NULL) {
        const char *key = json_object_get(f->value, "password") != NULL
                              ? "password"
                              : "password_file";

        field_member(ld, f, key, &member);
        field_error(ld, &member, err,
                    "a password is set but username is "
                    "missing; add username, or remove %s",
                    key);
        return -1;
    }
    return upstream_apply_defaults(up, b->docker_hub_set, b->aliases_set, err);
}

static int
load_upstream(const struct loader *ld, const struct field *f,
              struct config_upstream *up, struct pg_error **err)
{
    struct upstream_builder b = {.up = up};

    up->tls.verify = true;
    if (check_password_sources(ld, f, err) < 0 ||
        load_mapping(ld, f, upstream_keys, &b, err) < 0)
        return -1;
    return finish_upstream(ld, f, &b, err);
}

static int
load_upstreams(const struct loader *ld, const struct field *f,
               const struct key_handler *h, void *target, struct pg_error **err)
{
    struct config *cfg = target;
    struct config_upstream *list = NULL;
    char found[CONFIG_QUOTED_MAX + 32];
    size_t n = json_array_size(f->value);
    int rc = -1;

    if (!json_is_array(f->value)) {
        field_error(ld, f, err,
                    "expected a list of upstreams, not %s; "
                    "write one entry per registry, starting with "
                    "\"- name: docker.io\"",
                    describe(found, sizeof(found), f->value, false));
        goto out;
    }
    if (n == 0) {
        field_error(ld, f, err,
                    "the list is empty; add at least one "
                    "upstream, such as \"- name: docker.io\"");
        goto out;
    }
    if (n > PG_CONFIG_UPSTREAMS_MAX) {
        field_error(ld, f, err,
                    "%zu upstreams are more than %d; remove "
                    "some",
                    n, PG_CONFIG_UPSTREAMS_MAX);
        goto out;
    }

    list = calloc(n, sizeof(*list));
    if (list == NULL) {
        out_of_memory(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct field element;

        field_element(ld, f, i, &element);
        if (load_upstream(ld, &element, &list[i], err) < 0)
            goto out;
    }

    upstreams_free(cfg->upstreams, cfg->n_upstreams);
    cfg->upstreams = list;
    cfg->n_upstreams = n;
    list = NULL;
    rc = 0;

out:
    upstreams_free(list, n);
    return rc;
}

/* The keys of the file, in the order messages list them, with ranges. */
static const struct key_handler top_keys[] = {
    {.key = "listen", .load = load_listen},
    {.key = "tls", .load = load_server_tls},
    {.key = "cache_dir",
     .load = load_path_key,
     .offset = offsetof(struct config, cache_dir)},
    {.key = "policy",
     .load = load_path_key,
     .offset = offsetof(struct config, policy_path)},
    {.key = "log_level", .load = load_log_level},
    {.key = "workers",
     .load = load_unsigned_key,
     .offset = offsetof(struct config, workers),
     .min = 0,
     .max = 256},
    {.key = "verdict_wait_seconds",
     .load = load_unsigned_key,
     .offset = offsetof(struct config, verdict_wait_seconds),
     .min = 0,
     .max = 3600},
    {.key = "shutdown_grace_seconds",
     .load = load_unsigned_key,
     .offset = offsetof(struct config, shutdown_grace_seconds),
     .min = 0,
     .max = 3600},
    {.key = "upstream_connect_timeout_seconds",
     .load = load_unsigned_key,
     .offset = offsetof(struct config, connect_timeout_seconds),
     .min = 1,
     .max = 600},
    {.key = "upstream_low_speed_timeout_seconds",
     .load = load_unsigned_key,
     .offset = offsetof(struct config, low_speed_timeout_seconds),
     .min = 1,
     .max = 3600},
    {.key = "lmdb_map_size_mib",
     .load = load_map_size,
     .min = 16,
     .max = 1048576},
    {.key = "inspector", .load = load_inspector},
    {.key = "upstreams", .load = load_upstreams},
    {.key = NULL},
};

/* ------------------------------------------------------------------ */
/* Names that two upstreams share.                                    */
/* ------------------------------------------------------------------ */

/* An upstream's name (alias is SIZE_MAX) or one of its aliases. */
struct name_ref {
    size_t upstream;
    size_t alias;
};

static const char *
ref_name(const struct config *cfg, struct name_ref ref)
{
    const struct config_upstream *up = &cfg->upstreams[ref.upstream];

    return ref.alias == SIZE_MAX ? up->name : up->aliases[ref.alias];
}

static void
ref_key(struct name_ref ref, char *buf, size_t size)
{
    if (ref.alias == SIZE_MAX)
        snprintf(buf, size, "upstreams[%zu].name", ref.upstream);
    else
        snprintf(buf, size, "upstreams[%zu].aliases[%zu]", ref.upstream,
                 ref.alias);
}

/* Returns true when an earlier name or alias equals later's. */
static bool
find_earlier(const struct config *cfg, struct name_ref later,
             struct name_ref *earlier)
{
    const char *name = ref_name(cfg, later);

    for (size_t u = 0; u <= later.upstream; u++) {
        const struct config_upstream *up = &cfg->upstreams[u];
        bool same = u == later.upstream;
        size_t end;

        /* Entries of one upstream come in the order name, aliases. */
        if (same && later.alias == SIZE_MAX)
            break;
        end = same ? later.alias : up->n_aliases;
        earlier->upstream = u;
        earlier->alias = SIZE_MAX;
        if (strcasecmp(up->name, name) == 0)
            return true;
        for (size_t a = 0; a < end; a++) {
            earlier->alias = a;
            if (strcasecmp(up->aliases[a], name) == 0)
                return true;
        }
    }
    return false;
}

/* Finds the first name or alias that repeats an earlier one. */
static bool
find_duplicate(const struct config *cfg, struct name_ref *earlier,
               struct name_ref *later)
{
    for (size_t u = 0; u < cfg->n_upstreams; u++) {
        const struct config_upstream *up = &cfg->upstreams[u];

        for (size_t a = 0; a <= up->n_aliases; a++) {
            later->upstream = u;
            later->alias = a == 0 ? SIZE_MAX : a - 1;
            if (find_earlier(cfg, *later, earlier))
                return true;
        }
    }
    return false;
}

static int
duplicate_error(const struct config *cfg, struct name_ref earlier,
                struct name_ref later, struct pg_error **err)
{
    char earlier_key[CONFIG_KEY_MAX];
    char later_key[CONFIG_KEY_MAX];
    char quoted[CONFIG_QUOTED_MAX + 2];

    ref_key(earlier, earlier_key, sizeof(earlier_key));
    ref_key(later, later_key, sizeof(later_key));
    config_error(err,
                 "%s: %s is also %s; give each upstream a different name "
                 "and aliases",
                 later_key, quote(quoted, sizeof(quoted), ref_name(cfg, later)),
                 earlier_key);
    return -1;
}

int
config_validate(const struct config *cfg, struct pg_error **err)
{
    struct name_ref earlier;
    struct name_ref later;

    if (cfg->n_upstreams == 0) {
        config_error(err, "no upstream is configured; add one under "
                          "upstreams: or with --upstream NAME=URL");
        return -1;
    }
    if (find_duplicate(cfg, &earlier, &later))
        return duplicate_error(cfg, earlier, later, err);
    return 0;
}

/* Returns the line of a name or alias in the file, or 0. */
static size_t
ref_line(const struct loader *ld, struct name_ref ref)
{
    json_t *list = json_object_get(yaml_doc_root(ld->doc), "upstreams");
    json_t *entry = json_array_get(list, ref.upstream);
    json_t *aliases = json_object_get(entry, "aliases");
    size_t line = 0;
    size_t column;

    if (ref.alias == SIZE_MAX)
        yaml_doc_key_position(ld->doc, entry, "name", &line, &column);
    else
        yaml_doc_index_position(ld->doc, aliases, ref.alias, &line, &column);
    if (line == 0)
        yaml_doc_index_position(ld->doc, list, ref.upstream, &line, &column);
    return line;
}

/* As config_validate, with the file and line of the repeated name. */
static int
check_file_duplicates(const struct loader *ld, const struct config *cfg,
                      struct pg_error **err)
{
    struct name_ref earlier;
    struct name_ref later;

    if (!find_duplicate(cfg, &earlier, &later))
        return 0;
    duplicate_error(cfg, earlier, later, err);
    location_prefix(ld, ref_line(ld, later), NULL, err);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Loading a file.                                                    */
/* ------------------------------------------------------------------ */

/* Returns the directory part of path, or NULL when path has none. */
static char *
directory_of(const char *path, struct pg_error **err)
{
    const char *slash = strrchr(path, '/');
    char *dir;

    if (slash == NULL)
        return NULL;
    dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (dir == NULL)
        out_of_memory(err);
    return dir;
}

static int
load_root(const struct loader *ld, struct config *cfg, struct pg_error **err)
{
    struct field root = {.value = yaml_doc_root(ld->doc), .key = ""};
    size_t column;

    if (!json_is_object(root.value)) {
        yaml_doc_position(ld->doc, root.value, &root.line, &column);
        config_error(err, "the file is not a mapping of keys; start it "
                          "with a key such as listen: 127.0.0.1:5000");
        location_prefix(ld, root.line, NULL, err);
        return -1;
    }
    if (load_mapping(ld, &root, top_keys, cfg, err) < 0)
        return -1;
    return check_file_duplicates(ld, cfg, err);
}

struct config *
config_load(const char *path, struct pg_error **err)
{
    struct loader ld = {.name = path};
    struct yaml_doc *doc = NULL;
    struct config *cfg = NULL;
    struct config *result = NULL;

    cfg = config_defaults(err);
    if (cfg == NULL)
        goto out;
    doc = yaml_doc_load(path, err);
    if (doc == NULL)
        goto out;
    ld.doc = doc;
    if (strchr(path, '/') != NULL) {
        ld.dir = directory_of(path, err);
        if (ld.dir == NULL)
            goto out;
    }

    if (load_root(&ld, cfg, err) < 0)
        goto out;
    replace_string(&cfg->source, strdup(path));
    if (cfg->source == NULL) {
        out_of_memory(err);
        goto out;
    }
    result = cfg;
    cfg = NULL;

out:
    free(ld.dir);
    yaml_doc_free(doc);
    config_free(cfg);
    return result;
}

/* ------------------------------------------------------------------ */
/* Command-line options.                                              */
/* ------------------------------------------------------------------ */

/* Prepends "--OPTION "VALUE"" to *err; a URL with credentials stays out. */
static void
option_prefix(const char *option, const char *value, struct pg_error **err)
{
    char quoted[CONFIG_QUOTED_MAX + 2];

    if (strchr(value, '@') != NULL)
        pg_error_prefix(err, "--%s", option);
    else
        pg_error_prefix(err, "--%s %s", option,
                        quote(quoted, sizeof(quoted), value));
}

/* Adds one upstream; the first call replaces the list from the file. */
static int
add_option_upstream(struct config *cfg, struct config_upstream *up,
                    struct pg_error **err)
{
    struct config_upstream *list;
    size_t n = cfg->upstreams_from_options ? cfg->n_upstreams : 0;

    if (n >= PG_CONFIG_UPSTREAMS_MAX) {
        config_error(err, "more than %d upstreams; remove some",
                     PG_CONFIG_UPSTREAMS_MAX);
        return -1;
    }
    list = calloc(n + 1, sizeof(*list));
    if (list == NULL) {
        out_of_memory(err);
        return -1;
    }
    if (n > 0)
        memcpy(list, cfg->upstreams, n * sizeof(*list));
    list[n] = *up;
    memset(up, 0, sizeof(*up));

    if (cfg->upstreams_from_options)
        free(cfg->upstreams);
    else
        upstreams_free(cfg->upstreams, cfg->n_upstreams);
    cfg->upstreams = list;
    cfg->n_upstreams = n + 1;
    cfg->upstreams_from_options = true;
    return 0;
}

static int
set_upstream_option(struct config *cfg, const char *value,
                    struct pg_error **err)
{
    struct config_upstream up = {0};
    const char *equals = strchr(value, '=');
    char *name = NULL;
    char *url = NULL;
    int rc = -1;

    if (equals == NULL || equals == value || equals[1] == '\0') {
        config_error(err, "expected NAME=URL, such as "
                          "docker.io=" DOCKER_HUB_URL);
        goto out;
    }
    name = strndup(value, (size_t)(equals - value));
    if (name == NULL) {
        out_of_memory(err);
        goto out;
    }
    if (check_registry_name(name, err) < 0)
        goto out;
    url = check_url(equals + 1, err);
    if (url == NULL || upstream_init(&up, name, url, err) < 0)
        goto out;
    rc = add_option_upstream(cfg, &up, err);

out:
    upstream_clear(&up);
    free(url);
    free(name);
    return rc;
}

static int
set_path_option(char **slot, const char *value, struct pg_error **err)
{
    char *copy;

    if (value[0] == '\0') {
        config_error(err, "the path is empty; give a directory or file");
        return -1;
    }
    copy = strdup(value);
    if (copy == NULL) {
        out_of_memory(err);
        return -1;
    }
    replace_string(slot, copy);
    return 0;
}

static int
set_listen_option(struct config *cfg, const char *value, struct pg_error **err)
{
    char *host = NULL;

    if (parse_listen(value, &host, &cfg->listen_port, err) < 0)
        return -1;
    replace_string(&cfg->listen_host, host);
    return 0;
}

int
config_set_option(struct config *cfg, const char *option, const char *value,
                  struct pg_error **err)
{
    int rc;

    if (strcmp(option, "listen") == 0) {
        rc = set_listen_option(cfg, value, err);
    } else if (strcmp(option, "upstream") == 0) {
        rc = set_upstream_option(cfg, value, err);
    } else if (strcmp(option, "cache-dir") == 0) {
        rc = set_path_option(&cfg->cache_dir, value, err);
    } else if (strcmp(option, "policy") == 0) {
        rc = set_path_option(&cfg->policy_path, value, err);
    } else {
        config_error(err, "unknown option; the options that override the "
                          "configuration are --listen, --upstream, --cache-dir "
                          "and --policy");
        rc = -1;
    }
    if (rc < 0)
        option_prefix(option, value, err);
    return rc;
}
