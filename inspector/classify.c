/*
 * Manifest classification: decides from a parsed manifest whether it is an
 * index, a runnable image, an artifact or something pullgate cannot gate.
 * Only media types and the shape of the JSON are read, and nothing is
 * fetched.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "config/config.h"
#include "inspector/inspector.h"

static const char *const index_media_types[] = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    NULL,
};

static const char *const manifest_media_types[] = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    NULL,
};

/*
 * Config media types that moby pulls and runs as image configs: the two
 * standard ones, and the values that old registries and tools wrote by
 * mistake, which it accepts on purpose (an empty type among them).
 */
static const char *const image_config_media_types[] = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    "application/octet-stream",
    "application/json",
    "text/html",
    "",
    NULL,
};

/* moby also accepts any config media type with these prefixes, and reads
 * the config as an image config. */
static const char *const image_config_prefixes[] = {
    "application/vnd.oci.image",
    "application/vnd.docker",
    NULL,
};

static const char *const tar_layer_media_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    NULL,
};

/*
 * Returns true when media_type, without any parameters after ';' and
 * without the spaces before them, is one of the NULL-terminated list.
 * A Content-Type header may carry parameters, but manifest fields do not.
 */
static bool
media_type_in(const char *media_type, const char *const *list)
{
    size_t len;

    if (media_type == NULL)
        return false;

    len = strcspn(media_type, "; \t");
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strlen(list[i]) == len && memcmp(list[i], media_type, len) == 0)
            return true;
    }
    return false;
}

/*
 * Base types of layers that containerd unpacks whatever follows them: it
 * reads "application/vnd.oci.image.layer.v1.tar+foo+gzip" as the base
 * type and a list of suffixes, and detects the compression from the
 * bytes when it does not know a suffix.
 */
static const char *const tar_layer_base_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
    NULL,
};

bool
inspector_is_tar_layer(const char *media_type)
{
    size_t len;

    if (media_type == NULL)
        return false;
    if (media_type_in(media_type, tar_layer_media_types))
        return true;

    /* The base type ends at the first '+', ';' or space. Case is ignored,
     * so that no spelling of a tar layer escapes inspection. */
    len = strcspn(media_type, "+; \t");
    for (size_t i = 0; tar_layer_base_types[i] != NULL; i++) {
        if (strlen(tar_layer_base_types[i]) == len &&
            strncasecmp(tar_layer_base_types[i], media_type, len) == 0)
            return true;
    }
    return false;
}

/* Returns true when a runtime would read a config of media_type as an
 * image config. */
static bool
config_is_image(const char *media_type)
{
    if (media_type_in(media_type, image_config_media_types))
        return true;
    for (size_t i = 0; image_config_prefixes[i] != NULL; i++) {
        const char *prefix = image_config_prefixes[i];

        if (strncmp(media_type, prefix, strlen(prefix)) == 0)
            return true;
    }
    return false;
}

/*
 * Classifies a manifest that declares an image manifest media type. A
 * missing or malformed config or layer list makes it unsupported, because
 * no runtime could pull it either.
 *
 * A manifest is a plain artifact only when no runtime would unpack it:
 * its config is not one that moby reads as an image config
 * (config_is_image) and none of its layers has a tar media type, which
 * containerd unpacks whatever the config's media type. artifactType
 * plays no part. An image config with no tar layer at all is the shape of
 * cosign signatures and BuildKit attestations, but containers/storage
 * detects a layer's format from its bytes, so such a manifest is an
 * artifact only after its blobs are shown not to be tar archives
 * (INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT). A mix of tar and other layers
 * is an image, and its inspection fails on the other layers.
 */
static enum inspector_manifest_kind
classify_image_manifest(const json_t *manifest)
{
    const json_t *config = json_object_get(manifest, "config");
    const json_t *layers = json_object_get(manifest, "layers");
    const char *config_type;
    const json_t *layer;
    size_t i, tar_layers = 0;

    config_type = json_string_value(json_object_get(config, "mediaType"));
    if (config_type == NULL || !json_is_array(layers))
        return INSPECTOR_KIND_UNSUPPORTED;

    json_array_foreach(layers, i, layer)
    {
        const char *layer_type =
            json_string_value(json_object_get(layer, "mediaType"));

        if (layer_type == NULL)
            return INSPECTOR_KIND_UNSUPPORTED;
        if (inspector_is_tar_layer(layer_type))
            tar_layers++;
    }
    if (tar_layers > 0)
        return INSPECTOR_KIND_IMAGE;
    if (!config_is_image(config_type))
        return INSPECTOR_KIND_ARTIFACT;
    if (json_array_size(layers) > 0)
        return INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT;
    return INSPECTOR_KIND_IMAGE;
}

/*
 * Returns the media type that governs a manifest with no mediaType field.
 * That is the Content-Type when it names an index or a manifest, and
 * otherwise a type guessed from the shape. OCI lets both documents omit
 * the field, and some registries send a generic Content-Type. Returns
 * NULL when neither identifies the document.
 */
static const char *
undeclared_media_type(const json_t *manifest, const char *content_type)
{
    if (media_type_in(content_type, index_media_types) ||
        media_type_in(content_type, manifest_media_types))
        return content_type;

    if (json_is_array(json_object_get(manifest, "manifests")))
        return index_media_types[0];
    if (json_is_object(json_object_get(manifest, "config")) &&
        json_is_array(json_object_get(manifest, "layers")))
        return manifest_media_types[0];
    return NULL;
}

enum inspector_manifest_kind
inspector_classify(const json_t *manifest, const char *media_type)
{
    const json_t *declared;
    const char *effective;

    if (!json_is_object(manifest))
        return INSPECTOR_KIND_UNSUPPORTED;

    /* A document with the fields of both an index and a manifest would be
     * read differently by different clients, so it is not served. */
    if (json_object_get(manifest, "manifests") != NULL &&
        (json_object_get(manifest, "layers") != NULL ||
         json_object_get(manifest, "config") != NULL))
        return INSPECTOR_KIND_UNSUPPORTED;

    /* Schema 1 manifests carry schemaVersion 1 whatever the Content-Type. */
    if (json_integer_value(json_object_get(manifest, "schemaVersion")) == 1)
        return INSPECTOR_KIND_UNSUPPORTED;

    declared = json_object_get(manifest, "mediaType");
    if (declared != NULL)
        effective = json_string_value(declared);
    else
        effective = undeclared_media_type(manifest, media_type);

    if (media_type_in(effective, index_media_types)) {
        if (!json_is_array(json_object_get(manifest, "manifests")))
            return INSPECTOR_KIND_UNSUPPORTED;
        return INSPECTOR_KIND_INDEX;
    }
    if (media_type_in(effective, manifest_media_types))
        return classify_image_manifest(manifest);
    return INSPECTOR_KIND_UNSUPPORTED;
}

const char *
inspector_kind_name(enum inspector_manifest_kind kind)
{
    switch (kind) {
    case INSPECTOR_KIND_INDEX:
        return "index";
    case INSPECTOR_KIND_IMAGE:
        return "image";
    case INSPECTOR_KIND_ARTIFACT:
    case INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT:
        return "artifact";
    case INSPECTOR_KIND_UNSUPPORTED:
        break;
    }
    return "unsupported";
}

int
inspector_blob_is_tar(const char *path, struct pg_error **err)
{
    struct archive *archive = archive_read_new();
    struct archive_entry *entry;
    int rc = -1, r;

    if (archive == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while reading a blob");
        return -1;
    }
    /* Every compression a runtime detects from the bytes. */
    archive_read_support_filter_gzip(archive);
    archive_read_support_filter_zstd(archive);
    archive_read_support_filter_bzip2(archive);
    archive_read_support_filter_xz(archive);
    archive_read_support_format_tar(archive);
    archive_read_support_format_gnutar(archive);

    r = archive_read_open_filename(archive, path, 64 * 1024);
    if (r != ARCHIVE_OK) {
        /* libarchive chooses the format at open, so bytes that are not a
         * tar stream fail here. Only a failure to read the file is an
         * error. */
        int code = archive_errno(archive);

        rc = code == ENOENT || code == EACCES || code == EIO ? -1 : 0;
        if (rc < 0)
            pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                         "cannot read blob %s: %s", path,
                         archive_error_string(archive));
        goto out;
    }
    r = archive_read_next_header(archive, &entry);
    rc = r == ARCHIVE_OK || r == ARCHIVE_WARN ? 1 : 0;
out:
    archive_read_free(archive);
    return rc;
}

struct inspector_options
inspector_options_from_config(const struct config_inspector *cfg,
                              const struct inspector_secrets *secrets)
{
    struct inspector_options options = {
        .entries_max = cfg->layer_entries_max,
        .bytes_max = cfg->layer_bytes_max,
        .path_length_max = cfg->path_length_max,
        .ratio_max = cfg->compression_ratio_max,
        .file_bytes_max = cfg->file_bytes_max,
        .secret_file_bytes_max = cfg->secret_file_bytes_max,
        .secrets = secrets,
    };

    return options;
}
