/*
 * The inspector: turns a manifest, its image config and its layers into the
 * image document, the one JSON object that the policy reads.
 *
 * Every function here is pure with respect to its arguments and may run on
 * any worker thread at the same time as the others. Nothing is extracted to
 * disk: layers are read as tar streams with libarchive.
 */
#ifndef PG_INSPECTOR_H
#define PG_INSPECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/error.h"

/* Version of the document's layout; part of the key it is stored under. */
#define INSPECTOR_DOCUMENT_VERSION 1
#define INSPECTOR_VERSION "1"

struct inspector_limits {
    uint64_t entries_max;     /* tar entries in one layer */
    uint64_t bytes_max;       /* decompressed bytes of one layer */
    uint64_t path_length_max; /* bytes of one entry's path */
    uint64_t ratio_max;       /* decompressed / compressed bytes */
};

enum inspector_manifest_kind {
    INSPECTOR_KIND_INDEX,    /* OCI image index or Docker manifest list */
    INSPECTOR_KIND_IMAGE,    /* a runnable image: config and tar layers */
    INSPECTOR_KIND_ARTIFACT, /* signature, attestation, SBOM, chart... */
    INSPECTOR_KIND_UNSUPPORTED, /* schema 1 or unknown media type */
};

/*
 * Classifies a parsed manifest. media_type is the Content-Type the upstream
 * sent; the manifest's own mediaType field wins when present. An image
 * manifest is an artifact when it has an artifactType, when its config
 * media type is not an image config, or when a layer is not a tar layer
 * (in-toto attestations, cosign signatures).
 */
enum inspector_manifest_kind inspector_classify(const json_t *manifest,
                                                const char *media_type);

/* Returns "index", "image", "artifact" or "unsupported". */
const char *inspector_kind_name(enum inspector_manifest_kind kind);

/*
 * Lists the entries of one layer read from the file at path. media_type
 * selects the decompressor (gzip, zstd, plain tar; Docker and OCI names).
 * Returns {"digest", "media_type", "size", "entries": N, "bytes": N,
 * "files": [{"path", "type", "mode", "size", "uid", "gid", "link"}]} or
 * NULL with an error naming the limit or the corruption. Runs for as long
 * as reading the layer takes: worker threads only.
 */
json_t *inspector_list_layer(const char *path, const char *digest,
                             const char *media_type,
                             const struct inspector_limits *limits,
                             struct pg_error **err);

/*
 * Builds the image document from the manifest, its config blob (bytes) and
 * the results of inspector_list_layer in manifest order (steals nothing).
 * reference describes where the image came from:
 * {"registry", "repository", "reference"}.
 */
json_t *inspector_build_document(const char *manifest_digest,
                                 const json_t *manifest,
                                 const char *config_bytes, size_t config_len,
                                 json_t *const *layers, size_t n_layers,
                                 const json_t *reference,
                                 struct pg_error **err);

/*
 * Builds the document of an image whose inspection failed: the same
 * reference and manifest fields and "inspection": {"status": "failed",
 * "error": message}, so that the policy decides what failure means.
 */
json_t *inspector_failed_document(const char *manifest_digest,
                                  const json_t *manifest,
                                  const json_t *reference,
                                  const char *message);

/* Builds the document of an artifact: no config parsing, no layers read. */
json_t *inspector_artifact_document(const char *manifest_digest,
                                    const json_t *manifest,
                                    const json_t *reference);

#endif
