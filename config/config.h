/*
 * The daemon's configuration: built-in defaults, a YAML file, and
 * command-line overrides, validated into one read-only struct config.
 *
 * The file is YAML, loaded with libyaml into a jansson tree (config/yaml.h)
 * and checked against the known keys. An unknown key, a wrong type or a bad
 * value is an error naming the file, the line and the key.
 */
#ifndef PG_CONFIG_H
#define PG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/error.h"

struct config_tls {
    bool verify;     /* verify the upstream's certificate and host name */
    char *ca_file;   /* PEM bundle to verify with; NULL: system default */
    char *cert_file; /* client certificate (PEM), or NULL */
    char *key_file;  /* its private key (PEM), or NULL */
};

struct config_upstream {
    char *name;       /* registry host as clients write it: "docker.io" */
    char *url;        /* base URL, scheme://host[:port], no trailing / */
    char **aliases;   /* other names routed here: "index.docker.io" */
    size_t n_aliases;
    char *username;   /* NULL for anonymous pulls */
    char *password;   /* never logged; NULL when username is NULL */
    bool docker_hub;  /* one-component names get "library/" */
    struct config_tls tls;
};

/* A secret rule from the configuration: a PCRE2 pattern, matched line by
 * line in the text files of every layer. */
struct config_secret_rule {
    char *name;        /* reported in findings, such as "acme-api-key" */
    char *description; /* "" when not given */
    char *pattern;     /* PCRE2 syntax */
};

struct config_inspector {
    uint64_t layer_entries_max;     /* tar entries in one layer */
    uint64_t layer_bytes_max;       /* decompressed bytes of one layer */
    uint64_t path_length_max;       /* bytes of one entry's path */
    uint64_t compression_ratio_max; /* decompressed / compressed bytes */
    uint64_t file_bytes_max;        /* one file a cataloger reads */
    uint64_t secret_file_bytes_max; /* larger text files are not scanned */
    unsigned threads;               /* layer readers; 0: two per CPU */
    struct config_secret_rule *secret_rules; /* added to the built-in ones */
    size_t n_secret_rules;
};

struct config {
    char *source;      /* the file it came from, or "built-in defaults" */
    char *listen_host; /* "127.0.0.1" or "::1" */
    uint16_t listen_port;
    char *tls_cert_file; /* serve HTTPS when both are set */
    char *tls_key_file;
    char *cache_dir;
    char *policy_path; /* NULL: the built-in default policy */
    char *log_level;   /* "debug", "info", "warn" or "error" */
    unsigned workers;  /* worker threads; 0 means one per CPU */
    unsigned verdict_wait_seconds;    /* before a manifest request gets 503 */
    unsigned shutdown_grace_seconds;  /* open requests may finish on SIGTERM */
    unsigned connect_timeout_seconds; /* upstream TCP and TLS connect */
    unsigned low_speed_timeout_seconds; /* upstream stall before abort */
    uint64_t lmdb_map_size;           /* bytes */
    struct config_upstream *upstreams; /* the first is the default */
    size_t n_upstreams;
    struct config_inspector inspector;
    /* Set once an --upstream option replaced the list; later ones append. */
    bool upstreams_from_options;
};

/* Returns the built-in defaults: listen 127.0.0.1:5000, upstream docker.io
 * at https://registry-1.docker.io, cache under ./var, the default policy.
 * The caller frees the result with config_free. */
struct config *config_defaults(struct pg_error **err);

/*
 * Loads path over the built-in defaults. Keys absent from the file keep
 * their defaults; an "upstreams" list replaces the default list. Relative
 * paths in the file are resolved against the file's directory, and
 * password_file is read here. Returns a configuration that the caller
 * frees with config_free, or NULL with an error "PATH:LINE: KEY: problem;
 * what to do" (status 500, PG_ERR_CONFIG). Upstream names and aliases are
 * checked for duplicates here too, with the line of the second one.
 */
struct config *config_load(const char *path, struct pg_error **err);

/*
 * Applies one command-line override: "listen" (ADDR:PORT, [v6]:PORT),
 * "upstream" (NAME=URL; the first call replaces the upstream list and later
 * calls append), "cache-dir" or "policy". Relative paths stay relative to
 * the working directory. Returns 0, or -1 with an error that names the
 * option and value, such as `--upstream "foo": expected NAME=URL, ...`;
 * a value with credentials in it is left out of the message. On error cfg
 * is unchanged.
 */
int config_set_option(struct config *cfg, const char *option,
                      const char *value, struct pg_error **err);

/* Checks rules that span keys (unique upstream names and aliases, compared
 * without case, and at least one upstream); called after all overrides are
 * applied. Returns 0, or -1 with an error naming both entries. */
int config_validate(const struct config *cfg, struct pg_error **err);

/* Frees cfg and everything it points to, wiping passwords first; accepts
 * NULL. */
void config_free(struct config *cfg);

#endif
