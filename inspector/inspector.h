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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "config/error.h"

/* Version of the document's layout. docs/image-document.md describes the
 * layout of each version. */
#define INSPECTOR_DOCUMENT_VERSION 2

/* Version of what the inspector finds, part of the key that documents,
 * verdicts and blob permissions are stored under. It changes whenever an
 * image could get other findings, with or without a new layout, so that
 * records of an older inspector are never trusted. */
#define INSPECTOR_VERSION "3"

struct inspector_secrets;

/* The reading options of one layer: the limits that guard against hostile
 * layers, and the secret rules. Many threads may share the same options. */
struct inspector_options {
    uint64_t entries_max;     /* tar entries in one layer */
    uint64_t bytes_max;       /* decompressed bytes of one layer */
    uint64_t path_length_max; /* bytes of one entry's path */
    uint64_t ratio_max;       /* decompressed / compressed bytes */
    uint64_t file_bytes_max;  /* bytes of one file a cataloger reads */
    /* Text files up to this size are scanned for secrets. */
    uint64_t secret_file_bytes_max;
    /* Compiled secret rules (inspector/secrets.h), read-only and shared;
     * NULL scans with the built-in rules only. */
    const struct inspector_secrets *secrets;
};

struct config_inspector;

/* Returns the options that the inspector section of a configuration
 * sets, with secrets (compiled from its secret_rules, or NULL). */
struct inspector_options
inspector_options_from_config(const struct config_inspector *cfg,
                              const struct inspector_secrets *secrets);

enum inspector_manifest_kind {
    INSPECTOR_KIND_INDEX,    /* OCI image index or Docker manifest list */
    INSPECTOR_KIND_IMAGE,    /* a runnable image: config and tar layers */
    INSPECTOR_KIND_ARTIFACT, /* config is not an image config: a chart... */
    /* An image config and only non-tar layers: a cosign signature or an
     * in-toto attestation, unless a layer's bytes are a tar archive. */
    INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT,
    INSPECTOR_KIND_UNSUPPORTED, /* schema 1 or unknown media type */
};

/*
 * Classifies a parsed manifest. media_type is the Content-Type the upstream
 * sent; the manifest's own mediaType field wins when present. An image
 * manifest is an artifact when its config media type is not an image
 * config, and an image-config artifact when no layer has a tar media type.
 * artifactType alone does not make a runnable manifest an artifact, and a
 * document with both index and manifest fields is unsupported.
 */
enum inspector_manifest_kind inspector_classify(const json_t *manifest,
                                                const char *media_type);

/*
 * Returns 1 when the blob at path opens as a tar stream (plain, gzip or
 * zstd) with at least one entry, 0 when it is not a tar stream, -1 when it
 * cannot be read. Used on the layers of image-config artifacts, whose
 * bytes containers/storage would unpack if they were a tar archive.
 */
int inspector_blob_is_tar(const char *path, struct pg_error **err);

/* Returns "index", "image", "artifact" or "unsupported". */
const char *inspector_kind_name(enum inspector_manifest_kind kind);

/*
 * Returns true when media_type names a tar layer: the OCI layer types
 * (plain, +gzip, +zstd, and their nondistributable forms) and Docker's
 * rootfs.diff.tar.gzip and rootfs.foreign.diff.tar.gzip. Parameters after
 * a ';' are ignored. NULL is not a tar layer.
 */
bool inspector_is_tar_layer(const char *media_type);

/*
 * Returns a new JSON string of the len bytes at text, with every byte
 * that is not part of valid UTF-8 replaced by U+FFFD, because tar paths
 * and library messages may be in any encoding and jansson accepts only
 * UTF-8. Returns NULL only when memory is short. The caller owns the
 * reference.
 */
json_t *inspector_json_text(const char *text, size_t len);

/*
 * Lists the entries of one layer read from the file at path. media_type
 * must be a tar layer media type (inspector_is_tar_layer). The decompressor
 * (gzip, zstd or none) is chosen from the layer's first bytes, so a layer
 * whose media type misnames its compression is still listed as it is.
 * Returns {"digest", "media_type", "size", "entries": N, "bytes": N,
 * "files": [{"path", "type", "mode", "size", "uid", "gid", "link",
 * "target", "raw_path"}]} or NULL with an error naming the limit or the
 * corruption. "path" is the entry's name cleaned as runtimes clean it
 * before unpacking: "." and ".." resolved lexically, never above the
 * root. "size" is the file's size and "bytes" the decompressed bytes
 * read. "link" appears on symlinks and hard links, "target" on whiteouts,
 * and "raw_path", the name as the archive has it, only when that name has
 * a ".." segment. The caller owns the result. Runs for as long as reading
 * the layer takes: worker threads only.
 */
json_t *inspector_list_layer(const char *path, const char *digest,
                             const char *media_type,
                             const struct inspector_options *options,
                             struct pg_error **err);

/*
 * The source of a layer's bytes: a file in the blob store, a file that
 * is still being downloaded, or an entry of an archive. read stores up to
 * len bytes at buf and returns how many, 0 at the end of the layer, or -1
 * with *err set. It may block, so layers are read on worker threads.
 */
struct inspector_source {
    ssize_t (*read)(void *arg, void *buf, size_t len, struct pg_error **err);
    void *arg;
};

/*
 * Reads one layer from source the way inspector_list_layer reads a file,
 * and returns the same result. size is the layer's compressed size as
 * the descriptor states it, or -1 when it is unknown.
 */
json_t *inspector_scan_layer(const struct inspector_source *source,
                             const char *digest, const char *media_type,
                             int64_t size,
                             const struct inspector_options *options,
                             struct pg_error **err);

/*
 * Builds the image document from the manifest, its config blob (bytes) and
 * the results of inspector_list_layer in manifest order (steals nothing).
 * Each result may carry "findings" (inspector/catalog.h); a result without
 * them counts as a layer where nothing was found. reference describes
 * where the image came from: {"registry", "repository", "reference"}.
 * The layers are merged by the OCI layer changeset rules, and only
 * findings whose file is still visible in the merged file system become
 * packages (document.c describes the layout).
 * Returns a new document that the caller owns, or NULL with an error:
 * 403 DENIED for an image config or manifest that cannot be inspected,
 * 500 INTERNAL for layer results that do not match the manifest or lack a
 * field, 503 when memory is short. The document shares string and integer
 * values with the layer results, which nothing modifies.
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
 * Returns a new document that the caller owns, or NULL when memory is
 * short.
 */
json_t *inspector_failed_document(const char *manifest_digest,
                                  const json_t *manifest,
                                  const json_t *reference,
                                  const char *message);

/*
 * Builds the document of an artifact: no config parsing, no layers read.
 * Returns a new document that the caller owns, or NULL when memory is
 * short.
 */
json_t *inspector_artifact_document(const char *manifest_digest,
                                    const json_t *manifest,
                                    const json_t *reference);

/*
 * Scans every string of the image config blob (config_bytes, config_len)
 * and of the manifest's annotations, member names included, with the
 * secret rules of options (the built-in ones when options or its rules
 * are NULL). Each rule that matches is added to the document's "secrets"
 * once per source as {"rule", "source": "config" or "manifest", "path":
 * "", "layer": null, "line": 0, "present": true}, and every string of the
 * document's "config", "platform" and "base_image" sections and of
 * "manifest"."annotations" that contains a secret is replaced by
 * "<redacted>". Call it once on a document from inspector_build_document.
 * Returns 0, or -1 with 503 when memory is short.
 */
int inspector_document_scan_config(json_t *document, const char *config_bytes,
                                   size_t config_len,
                                   const struct inspector_options *options,
                                   struct pg_error **err);

/*
 * Sets the document's "base_image" to {"name", "digest", "source"},
 * replacing what was there: the base image annotations or null. A caller
 * that trusts annotations more than its own finding checks for them
 * first. source names how the base was found, such as "annotation" or
 * "lineage", and must be non-empty. name and digest may be "". Returns 0,
 * or -1 with 500 INTERNAL for invalid arguments or 503 when memory is
 * short.
 */
int inspector_document_set_base(json_t *document, const char *name,
                                const char *digest, const char *source,
                                struct pg_error **err);

/*
 * Returns a new array of the OCI ChainIDs of every prefix of diff_ids (an
 * array of digest strings, such as rootfs.diff_ids): ChainID(L0) is
 * DiffID(L0), and ChainID(L0..n) is "sha256:" and the hex SHA-256 of
 * ChainID(L0..n-1) + " " + DiffID(Ln). Two images share a ChainID exactly
 * when their layer lists up to that index are the same, so the longest
 * shared ChainID names the base image. Returns NULL when diff_ids is not
 * an array of strings, or when memory is short or OpenSSL fails. The
 * caller owns the result.
 */
json_t *inspector_chain_ids(const json_t *diff_ids);

#endif
