/*
 * Named maxima for everything that grows from input: network bodies, names,
 * counts read from manifests, configuration and policy files. Tests send
 * maximum + 1 of each. Limits an operator may tune are defaults here and
 * settings in the configuration.
 */
#ifndef PG_LIMITS_H
#define PG_LIMITS_H

/* A manifest or index body; the distribution specification lets
 * registries reject manifests over 4 MiB. */
#define PG_MANIFEST_MAX_BYTES (4u * 1024 * 1024)

/* An image config blob, read into memory to be parsed. */
#define PG_IMAGE_CONFIG_MAX_BYTES (8u * 1024 * 1024)

/* Nesting of any JSON document read from the network. */
#define PG_JSON_MAX_DEPTH 64

/* Layers of one image manifest (Docker stops at 127; OCI sets no limit). */
#define PG_LAYERS_MAX 512

/* Entries of one image index or manifest list. */
#define PG_INDEX_ENTRIES_MAX 1024

/* A repository name, without the registry host (Docker's limit). */
#define PG_NAME_MAX 255

/* A registry host with its port, as a client writes it before a name. */
#define PG_REGISTRY_HOST_MAX 255

/* A tag, as the distribution specification's grammar bounds it. */
#define PG_TAG_MAX 128

/* A digest string: "sha512:" and 128 hex digits is the longest supported. */
#define PG_DIGEST_MAX 135

/* A request URI (path and query) from a client. */
#define PG_URI_MAX 4096

/* All request headers from a client, and all headers of one upstream
 * response. */
#define PG_HEADERS_MAX_BYTES (64u * 1024)

/* A tag list assembled from upstream pages, and pages followed. */
#define PG_TAGS_LIST_MAX_BYTES (16u * 1024 * 1024)
#define PG_TAGS_LIST_MAX_PAGES 100

/* A referrers response passed through from an upstream. */
#define PG_REFERRERS_MAX_BYTES (4u * 1024 * 1024)

/* A token endpoint response, and the token it carries. */
#define PG_TOKEN_RESPONSE_MAX_BYTES (1024u * 1024)

/* An upstream error body kept to explain a failure. */
#define PG_UPSTREAM_ERROR_BODY_MAX 4096

/* A WWW-Authenticate challenge header. */
#define PG_CHALLENGE_MAX_BYTES 4096

/* Redirects followed for one upstream request. */
#define PG_REDIRECTS_MAX 5

/* A configuration or policy file. */
#define PG_CONFIG_FILE_MAX_BYTES (1024u * 1024)

/* Bytes of one blob queued between the upstream and the blob store before
 * the upstream transfer is paused, and the level that resumes it. */
#define PG_BLOB_QUEUE_HIGH_BYTES (4u * 1024 * 1024)
#define PG_BLOB_QUEUE_LOW_BYTES (1u * 1024 * 1024)

/* Layer inspection defaults (settable under inspector: in the config). */
#define PG_LAYER_ENTRIES_DEFAULT_MAX 1000000
#define PG_LAYER_BYTES_DEFAULT_MAX (64ull * 1024 * 1024 * 1024)
#define PG_LAYER_PATH_DEFAULT_MAX 4096
#define PG_LAYER_RATIO_DEFAULT_MAX 1000
#define PG_INSPECT_FILE_DEFAULT_MAX (64u * 1024 * 1024)
#define PG_SECRET_FILE_DEFAULT_MAX (1024u * 1024)

/* Secret rules a configuration may add, and the bytes of one pattern. */
#define PG_SECRET_RULES_MAX 256
#define PG_SECRET_PATTERN_MAX 4096

/* Upstreams in one configuration, aliases of one upstream, and the bytes
 * of a password_file. */
#define PG_CONFIG_UPSTREAMS_MAX 64
#define PG_CONFIG_ALIASES_MAX 16
#define PG_PASSWORD_FILE_MAX_BYTES 4096

/* Steps of one PCRE2 match of a policy pattern against one value, so that
 * a pattern with nested quantifiers cannot stall a worker. */
#define PG_POLICY_MATCH_LIMIT 1000000u

#endif
