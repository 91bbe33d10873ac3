/*
 * Routing: turns a client request (method, URI) into what to do and which
 * configured upstream serves it. Pure functions; no I/O.
 *
 * The upstream is chosen, in order, by containerd's "ns" query parameter,
 * by a leading registry host or configured upstream name in the repository
 * name ("/v2/ghcr.io/org/app/manifests/1", as CRI-O and podman mirrors with
 * a namespace send it), or else it is the default (first) upstream, as for
 * Docker's registry-mirrors. A host that is not configured is rejected: it
 * is never dialled.
 */
#ifndef PG_ROUTE_H
#define PG_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/error.h"
#include "config/limits.h"

/* The largest page size ("n") a tags list request may ask for. */
#define ROUTE_TAGS_N_MAX 100000

/* Bytes of a referrers artifactType filter, after percent-decoding. */
#define ROUTE_ARTIFACT_TYPE_MAX 255

/* Characters of a request value quoted in an error message, after escaping
 * (a longer value is cut and ends in "..."). */
#define ROUTE_ECHO_MAX 256

enum route_kind {
    ROUTE_API_BASE,  /* /v2/ */
    ROUTE_MANIFEST,  /* /v2/<name>/manifests/<reference> */
    ROUTE_BLOB,      /* /v2/<name>/blobs/<digest> */
    ROUTE_TAGS_LIST, /* /v2/<name>/tags/list */
    ROUTE_REFERRERS, /* /v2/<name>/referrers/<digest> */
    ROUTE_HEALTH,    /* /healthz */
};

struct route {
    enum route_kind kind;
    const struct config_upstream *upstream; /* NULL for API base, health */
    /* The name as the client sent it (a registry host, '/', a name), and
     * the upstream's name for the repository (prefix removed, "library/"
     * added for Docker Hub). */
    char client_name[PG_REGISTRY_HOST_MAX + 1 + PG_NAME_MAX + 1];
    char repository[PG_NAME_MAX + 1];
    /* Tag or digest for manifests; digest for blobs and referrers. */
    char reference[PG_DIGEST_MAX + 1];
    int reference_is_digest;
    /* Tags list paging: n (UINT32_MAX when absent) and last ("" if absent). */
    uint32_t tags_n;
    char tags_last[PG_TAG_MAX + 1];
    /* Referrers filter (artifactType, percent-decoded), "" when absent. */
    char artifact_type[ROUTE_ARTIFACT_TYPE_MAX + 1];
};

/*
 * Parses a request into *route, which the caller owns. On failure the
 * contents of *route are unspecified. method is "GET", "HEAD", "PUT"...,
 * uri the raw request URI in origin form (path and query, percent-encoded).
 * An absolute-form URI ("http://host/v2/") matches no route. The path and
 * the query values are percent-decoded once ('+' stays '+'). Of the query,
 * only "ns", "n", "last" and "artifactType" are read. An empty value counts
 * as absent, and the first of repeated parameters is used. Errors:
 *   405 UNSUPPORTED      any method but GET and HEAD, and upload paths;
 *   400 NAME_INVALID     a URI over PG_URI_MAX bytes, a bad percent escape,
 *                        a decoded path with NUL, "//", "." or "..";
 *   400 NAME_INVALID     a repository name, tag, "last" or artifactType
 *                        outside its grammar;
 *   400 DIGEST_INVALID   a digest outside the grammar;
 *   400 PAGINATION_NUMBER_INVALID  an "n" that is not 0..ROUTE_TAGS_N_MAX;
 *   404 NAME_UNKNOWN     an "ns" or registry host that is not configured;
 *   404 NAME_UNKNOWN     a path that is not part of the API;
 *   500 INTERNAL         a repository route when cfg has no upstreams.
 * Values quoted in messages are escaped and cut to ROUTE_ECHO_MAX.
 */
int route_parse(const struct config *cfg, const char *method, const char *uri,
                struct route *route, struct pg_error **err);

/* Returns a static name for logs: "api-base", "manifest", "blob",
 * "tags-list", "referrers" or "health". */
const char *route_kind_name(enum route_kind kind);

#endif
