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
    /* The name as the client sent it, and as the upstream knows it (prefix
     * removed, "library/" added for Docker Hub). */
    char client_name[PG_NAME_MAX + 256 + 2];
    char repository[PG_NAME_MAX + 1];
    /* Tag or digest for manifests; digest for blobs and referrers. */
    char reference[PG_DIGEST_MAX + 1];
    int reference_is_digest;
    /* Tags list paging: n (UINT32_MAX when absent) and last ("" if absent). */
    uint32_t tags_n;
    char tags_last[PG_TAG_MAX + 1];
    /* Referrers filter (artifactType), "" when absent. */
    char artifact_type[256];
};

/*
 * Parses a request. method is "GET", "HEAD", "PUT"..., uri the raw request
 * URI (path and query, percent-encoded). Errors:
 *   405 UNSUPPORTED      any method but GET and HEAD, and upload paths;
 *   400 NAME_INVALID     a repository name or tag outside the grammar;
 *   400 DIGEST_INVALID   a digest outside the grammar;
 *   404 NAME_UNKNOWN     an "ns" or registry host that is not configured;
 *   404 NAME_UNKNOWN     a path that is not part of the API.
 */
int route_parse(const struct config *cfg, const char *method, const char *uri,
                struct route *route, struct pg_error **err);

const char *route_kind_name(enum route_kind kind);

#endif
