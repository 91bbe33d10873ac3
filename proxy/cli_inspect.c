/*
 * `pullgate inspect` and `pullgate sbom`.
 *
 * Every image source ends in the same steps: a verified manifest, its
 * config blob read whole, and each layer read as a stream through
 * inspector_scan_layer. Blobs are read through a hashing stream, and a
 * blob whose bytes do not hash to its digest fails the command, so
 * nothing unverified is reported as the image's content. The sources:
 *
 *   remote     the manifest through the upstream client, the blobs through
 *              blobfetch into a blob store in a temporary directory, the
 *              way the daemon fetches them (one libevent loop, run here)
 *   layout     an OCI image layout directory: index.json, blobs/ALG/HEX
 *   archive    a tar file holding an OCI image layout (an OCI archive, or
 *              a `docker save` archive of Docker 25 and later) or a
 *              `docker save` archive with only manifest.json; entries are
 *              read from inside the tar and nothing is written to disk
 */
#include "proxy/cli_inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/limits.h"
#include "config/log.h"
#include "config/parse.h"
#include "inspector/inspector.h"
#include "inspector/sbom.h"
#include "inspector/secrets.h"
#include "proxy/blobfetch.h"
#include "proxy/reference.h"
#include "proxy/route.h"
#include "proxy/upstream.h"
#include "proxy/workers.h"

/* Bytes of a path built from a directory or archive and a member. */
#define CLI_PATH_MAX 4096

/* Entries of an image archive looked through to find one member. */
#define CLI_ARCHIVE_ENTRIES_MAX 100000

/* Index and manifest levels followed from index.json to an image. */
#define CLI_INDEX_DEPTH_MAX 4

/* LMDB map of the temporary blob store, which holds only a few records. */
#define CLI_CACHE_MAP_SIZE (64ull * 1024 * 1024)

/* Worker threads of the blob store writes during a remote fetch. */
#define CLI_FETCH_WORKERS 2

#define READ_CHUNK_BYTES (64u * 1024)

/* Platforms named in the error for an index without the requested one;
 * the rest are counted. */
#define CLI_PLATFORMS_SHOWN_MAX 16

/* Bytes of one platform written OS/ARCH[/VARIANT]. */
#define CLI_PLATFORM_TEXT_MAX 128

/* How often the loop of a remote fetch wakes up to check for a signal. */
#define CLI_SIGNAL_CHECK_MS 100

/* Media types of the manifest built for a docker save archive. The
 * registry manifest format of Docker has no uncompressed layer type, so
 * the OCI types are used, and a Docker image config is a valid OCI one. */
#define ARCHIVE_LAYER_TYPE "application/vnd.oci.image.layer.v1.tar"
#define ARCHIVE_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define ARCHIVE_CONFIG_TYPE "application/vnd.oci.image.config.v1+json"
#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

static const char manifest_accept[] =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

static const char inspect_usage[] =
    "Usage: pullgate inspect [-c CONFIG] [--platform OS/ARCH] REF\n"
    "\n"
    "Reads one image, verifies every blob against its digest, and prints\n"
    "its image document (JSON) to standard output.\n";

static const char sbom_usage[] =
    "Usage: pullgate sbom [-c CONFIG] [--platform OS/ARCH] REF\n"
    "                     --format spdx-json|cyclonedx-json\n"
    "\n"
    "Reads one image, verifies every blob against its digest, and prints a\n"
    "software bill of materials of its packages to standard output:\n"
    "SPDX 2.3 JSON or CycloneDX 1.5 JSON.\n";

static const char common_usage[] =
    "\n"
    "REF is one of:\n"
    "  [REGISTRY/]NAME[:TAG|@DIGEST]  an image of a configured upstream,\n"
    "                     chosen as `pullgate serve` routes it (no\n"
    "                     registry: the first upstream; default tag latest)\n"
    "  oci:DIR[:TAG]      an OCI image layout; TAG selects a manifest by its\n"
    "                     org.opencontainers.image.ref.name annotation\n"
    "  docker-archive:FILE\n"
    "                     a tar file from `docker save`, or an OCI layout\n"
    "                     in a tar file\n"
    "  DIR or FILE        the same, when the path exists\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  YAML configuration: upstreams, credentials and\n"
    "                     inspector limits (default: built-in defaults)\n"
    "      --platform OS/ARCH[/VARIANT]\n"
    "                     the image to read from an index "
    "(default " CLI_DEFAULT_PLATFORM ")\n"
    "      --format FORMAT  sbom only: spdx-json or cyclonedx-json\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "Exit status: 0 when the output was written, 1 when the image could not\n"
    "be read or inspected, 2 for a command-line error.\n";

enum sbom_format {
    SBOM_NONE,
    SBOM_SPDX,
    SBOM_CYCLONEDX,
};

struct cli_options {
    const char *config_file;
    const char *platform;
    const char *ref;
    enum sbom_format format;
};

/* The place the image's blobs are read from. */
enum store_kind {
    STORE_DIRECTORY, /* members are files under root */
    STORE_ARCHIVE,   /* members are entries of the tar file root */
};

struct store {
    enum store_kind kind;
    char root[CLI_PATH_MAX];
};

/* A blob being read: the bytes of a file or an archive entry, hashed. */
struct blob_stream {
    int fd;
    struct archive *archive;
    EVP_MD_CTX *hash;
    char digest[PG_DIGEST_MAX + 1];
    const char *member;
    int64_t expected_size; /* -1 when unknown */
    uint64_t bytes;
};

/* The image being read, whatever its source. */
struct image {
    const struct config *cfg;
    struct inspector_options options;
    struct store store;
    const char *platform;
    const char *platform_setting; /* such as "--platform", for messages */
    size_t index_platforms;       /* of the index chosen from, or 0 */
    json_t *reference;            /* {"registry", "repository", "reference"} */
    char digest[PG_DIGEST_MAX + 1];
    json_t *manifest;
    /* docker save archives without a layout: the members of the config
     * and of each layer, in manifest order; NULL for blobs/ALG/HEX. */
    char *config_member;
    json_t *layer_members;
    /* Remote images: the blob store that contains the fetched blobs. */
    struct cache *cache;
};

/* The SIGINT or SIGTERM that stopped the command, 0 while it runs. The
 * command then cleans up, so that a remote fetch leaves no temporary
 * directory behind, and exits with status 1. */
static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int signal_number)
{
    stop_signal = signal_number;
}

/* Sets *err when a signal stopped the command. Returns whether one did. */
static bool
stopped(struct pg_error **err)
{
    if (stop_signal == 0)
        return false;
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "stopped by signal %d",
                 (int)stop_signal);
    return true;
}

/* ---- hashing streams ---- */

static const EVP_MD *
digest_algorithm(const char *digest)
{
    if (strncmp(digest, "sha256:", 7) == 0)
        return EVP_sha256();
    if (strncmp(digest, "sha512:", 7) == 0)
        return EVP_sha512();
    return NULL;
}

/* Writes "ALGORITHM:HEX" of the finished hash into out. */
static void
hash_text(EVP_MD_CTX *hash, const char *digest, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    size_t used;

    EVP_DigestFinal_ex(hash, sum, &len);
    used =
        (size_t)snprintf(out, size, "%.*s:", (int)strcspn(digest, ":"), digest);
    for (unsigned int i = 0; i < len && used + 2 < size; i++) {
        out[used++] = hex[sum[i] >> 4];
        out[used++] = hex[sum[i] & 15];
    }
    out[used] = '\0';
}

static void
stream_close(struct blob_stream *stream)
{
    if (stream->fd >= 0)
        close(stream->fd);
    archive_read_free(stream->archive);
    EVP_MD_CTX_free(stream->hash);
    stream->fd = -1;
    stream->archive = NULL;
    stream->hash = NULL;
}

/* Opens the tar file at path and moves to the entry named member, where
 * names are compared without a leading "./". */
static struct archive *
archive_open_member(const char *path, const char *member, struct pg_error **err)
{
    struct archive *archive = archive_read_new();
    struct archive_entry *entry;

    if (archive == NULL)
        goto memory;
    archive_read_support_filter_all(archive);
    archive_read_support_format_tar(archive);
    if (archive_read_open_filename(archive, path, READ_CHUNK_BYTES) !=
        ARCHIVE_OK) {
        pg_error_set(err, 404, PG_ERR_BLOB_UNKNOWN, "cannot open %s: %s", path,
                     archive_error_string(archive));
        goto fail;
    }
    for (unsigned n = 0; n < CLI_ARCHIVE_ENTRIES_MAX; n++) {
        int status = archive_read_next_header(archive, &entry);
        const char *name;

        if (status == ARCHIVE_EOF)
            break;
        if (status != ARCHIVE_OK && status != ARCHIVE_WARN) {
            pg_error_set(err, 400, PG_ERR_BLOB_UNKNOWN,
                         "cannot read the tar file %s: %s", path,
                         archive_error_string(archive));
            goto fail;
        }
        name = archive_entry_pathname(entry);
        if (name != NULL && strncmp(name, "./", 2) == 0)
            name += 2;
        if (name != NULL && strcmp(name, member) == 0 &&
            archive_entry_filetype(entry) == AE_IFREG)
            return archive;
    }
    pg_error_set(err, 404, PG_ERR_BLOB_UNKNOWN,
                 "%s has no file %s (searched %d entries)", path, member,
                 CLI_ARCHIVE_ENTRIES_MAX);
fail:
    archive_read_free(archive);
    return NULL;
memory:
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
    return NULL;
}

/*
 * Opens path for reading and returns the descriptor, or -1 with an error
 * when it is not a regular file. The open does not block, because a
 * named pipe in a layout (or a symbolic link to one) would otherwise wait
 * for a writer forever; blocking reads are restored afterwards.
 */
static int
open_regular(const char *path, struct pg_error **err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int flags;

    if (fd < 0) {
        pg_error_set(err, 404, PG_ERR_BLOB_UNKNOWN, "cannot open %s: %s", path,
                     strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        pg_error_set(err, 404, PG_ERR_BLOB_UNKNOWN,
                     "%s is not a regular file; an image layout holds only "
                     "regular files",
                     path);
        close(fd);
        return -1;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "cannot read %s: %s", path,
                     strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Opens member of the store as a stream that is checked against digest
 * and, unless it is -1, expected_size. A NULL digest reads a file that
 * has none, such as index.json, without a check. The caller closes the stream
 * with stream_finish or stream_close.
 */
static int
stream_open(const struct store *store, const char *member, const char *digest,
            int64_t expected_size, struct blob_stream *stream,
            struct pg_error **err)
{
    char path[CLI_PATH_MAX];
    const EVP_MD *md = digest != NULL ? digest_algorithm(digest) : NULL;
    int n;

    *stream = (struct blob_stream){
        .fd = -1, .expected_size = expected_size, .member = member};
    if (digest == NULL)
        goto open;
    snprintf(stream->digest, sizeof(stream->digest), "%s", digest);
    stream->hash = EVP_MD_CTX_new();
    if (md == NULL || stream->hash == NULL ||
        EVP_DigestInit_ex(stream->hash, md, NULL) != 1) {
        pg_error_set(err, 400, PG_ERR_DIGEST_INVALID,
                     "cannot verify %s: digest \"%s\" is not sha256 or "
                     "sha512",
                     member, digest);
        goto fail;
    }
open:
    if (store->kind == STORE_ARCHIVE) {
        stream->archive = archive_open_member(store->root, member, err);
        if (stream->archive == NULL)
            goto fail;
        return 0;
    }
    n = member[0] == '/'
            ? snprintf(path, sizeof(path), "%s", member)
            : snprintf(path, sizeof(path), "%s/%s", store->root, member);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "the path of %s is longer than %d bytes", member,
                     CLI_PATH_MAX - 1);
        goto fail;
    }
    stream->fd = open_regular(path, err);
    if (stream->fd < 0)
        goto fail;
    return 0;
fail:
    stream_close(stream);
    return -1;
}

static ssize_t
stream_read(void *arg, void *buf, size_t len, struct pg_error **err)
{
    struct blob_stream *stream = arg;
    ssize_t n;

    if (stopped(err))
        return -1;
    if (stream->archive != NULL)
        n = archive_read_data(stream->archive, buf, len);
    else
        n = read(stream->fd, buf, len);
    if (n < 0 && stopped(err))
        return -1;
    if (n < 0) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE, "cannot read %s (%s): %s",
                     stream->member, stream->digest,
                     stream->archive != NULL
                         ? archive_error_string(stream->archive)
                         : strerror(errno));
        return -1;
    }
    stream->bytes += (uint64_t)n;
    if (stream->expected_size >= 0 &&
        stream->bytes > (uint64_t)stream->expected_size) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "blob %s has more than the %lld bytes its descriptor "
                     "states",
                     stream->digest, (long long)stream->expected_size);
        return -1;
    }
    if (stream->hash != NULL)
        EVP_DigestUpdate(stream->hash, buf, (size_t)n);
    return n;
}

/* Reads what is left of the stream and checks its size and digest, then
 * closes it. */
static int
stream_finish(struct blob_stream *stream, struct pg_error **err)
{
    char buf[READ_CHUNK_BYTES];
    char got[PG_DIGEST_MAX + 1];
    ssize_t n;

    while ((n = stream_read(stream, buf, sizeof(buf), err)) > 0)
        ;
    if (n < 0)
        goto fail;
    if (stream->expected_size >= 0 &&
        stream->bytes != (uint64_t)stream->expected_size) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "blob %s has %llu bytes, not the %lld its descriptor "
                     "states",
                     stream->digest, (unsigned long long)stream->bytes,
                     (long long)stream->expected_size);
        goto fail;
    }
    if (stream->hash == NULL)
        goto out;
    hash_text(stream->hash, stream->digest, got, sizeof(got));
    if (strcmp(got, stream->digest) != 0) {
        pg_error_set(err, 502, PG_ERR_DIGEST_INVALID,
                     "blob %s does not match its digest: %s hashes to %s",
                     stream->digest, stream->member, got);
        goto fail;
    }
out:
    stream_close(stream);
    return 0;
fail:
    stream_close(stream);
    return -1;
}

/* Reads a whole blob of at most max bytes, verified unless digest is
 * NULL, into *bytes (with a
 * NUL byte after it), which the caller frees. */
static int
read_blob(const struct store *store, const char *member, const char *digest,
          int64_t expected_size, size_t max, char **bytes, size_t *len,
          struct pg_error **err)
{
    struct blob_stream stream;
    size_t cap = max + 1;
    ssize_t n;

    *bytes = NULL;
    *len = 0;
    if (stream_open(store, member, digest, expected_size, &stream, err) < 0)
        return -1;
    *bytes = malloc(cap + 1);
    if (*bytes == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        goto fail;
    }
    while ((n = stream_read(&stream, *bytes + *len, cap - *len, err)) > 0) {
        *len += (size_t)n;
        if (*len > max) {
            pg_error_set(err, 403, PG_ERR_DENIED,
                         "%s has more than the %zu bytes pullgate reads",
                         member, max);
            goto fail;
        }
    }
    (*bytes)[*len] = '\0';
    if (n < 0 || stream_finish(&stream, err) < 0)
        goto fail;
    return 0;
fail:
    stream_close(&stream);
    free(*bytes);
    *bytes = NULL;
    return -1;
}

/* Returns the parsed JSON object in bytes, or NULL with an error. */
static json_t *
parse_json(const char *bytes, size_t len, const char *what,
           struct pg_error **err)
{
    json_error_t jerr;
    json_t *value;

    if (!pg_json_depth_within(bytes, len, PG_JSON_MAX_DEPTH)) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "%s is nested deeper than %d levels", what,
                     PG_JSON_MAX_DEPTH);
        return NULL;
    }
    value = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(value) && !json_is_array(value)) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "%s is not a JSON object (line %d: %s)", what, jerr.line,
                     jerr.text);
        json_decref(value);
        return NULL;
    }
    return value;
}

/* ---- from a manifest to the document ---- */

/* Writes the member of a blob in an OCI layout, "blobs/ALG/HEX". */
static void
layout_member(const char *digest, char *out, size_t size)
{
    size_t alen = strcspn(digest, ":");

    snprintf(out, size, "blobs/%.*s/%s", (int)alen, digest,
             digest[alen] != '\0' ? digest + alen + 1 : "");
}

/* Writes the member of a blob of the image: its path in the blob store
 * of a remote image, else its path in an OCI layout. */
static void
image_member(const struct image *image, const char *digest, char *out,
             size_t size)
{
    if (image->cache != NULL)
        cache_blob_path(image->cache, digest, out, size);
    else
        layout_member(digest, out, size);
}

/* Reads a descriptor's digest, media type and size. */
static int
descriptor_fields(const json_t *descriptor, const char *what,
                  const char **digest, const char **media_type, int64_t *size,
                  struct pg_error **err)
{
    json_t *size_value = json_object_get(descriptor, "size");

    *digest = json_string_value(json_object_get(descriptor, "digest"));
    *media_type = json_string_value(json_object_get(descriptor, "mediaType"));
    if (*digest == NULL || !reference_digest_valid(*digest) ||
        !json_is_integer(size_value) || json_integer_value(size_value) < 0) {
        pg_error_set(err, 403, PG_ERR_MANIFEST_INVALID,
                     "%s is not a descriptor with a sha256 or sha512 digest "
                     "and a size",
                     what);
        return -1;
    }
    *size = json_integer_value(size_value);
    return 0;
}

/* Returns whether descriptor's platform is os/arch[/variant]. */
static bool
platform_matches(const json_t *descriptor, const char *platform)
{
    const json_t *p = json_object_get(descriptor, "platform");
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    const char *variant = json_string_value(json_object_get(p, "variant"));
    char text[256];

    if (os == NULL || arch == NULL)
        return false;
    if (strchr(platform + strcspn(platform, "/") + 1, '/') == NULL)
        snprintf(text, sizeof(text), "%s/%s", os, arch);
    else
        snprintf(text, sizeof(text), "%s/%s/%s", os, arch,
                 variant != NULL ? variant : "");
    return strcmp(text, platform) == 0;
}

/*
 * Writes the platform of an index entry as OS/ARCH[/VARIANT] into text.
 * Returns false when the entry has no platform, or "unknown" for its OS
 * or architecture, as BuildKit marks the manifests of attestations.
 */
static bool
entry_platform(const json_t *entry, char *text, size_t size)
{
    const json_t *p = json_object_get(entry, "platform");
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    const char *variant = json_string_value(json_object_get(p, "variant"));
    int n;

    if (os == NULL || arch == NULL || os[0] == '\0' || arch[0] == '\0' ||
        strcmp(os, "unknown") == 0 || strcmp(arch, "unknown") == 0)
        return false;
    if (variant != NULL && variant[0] != '\0')
        n = snprintf(text, size, "%s/%s/%s", os, arch, variant);
    else
        n = snprintf(text, size, "%s/%s", os, arch);
    return n > 0 && (size_t)n < size;
}

/* Returns the distinct platforms of an index's entries, in index order,
 * as the keys of an object the caller releases, or NULL when memory is
 * short. */
static json_t *
index_platforms(const json_t *index)
{
    json_t *platforms = json_object();
    char text[CLI_PLATFORM_TEXT_MAX];
    size_t i;
    json_t *entry;

    json_array_foreach(json_object_get(index, "manifests"), i, entry)
    {
        if (platforms == NULL)
            break;
        if (entry_platform(entry, text, sizeof(text)) &&
            json_object_set_new(platforms, text, json_null()) < 0) {
            json_decref(platforms);
            platforms = NULL;
        }
    }
    return platforms;
}

/* Sets the error for an index without a manifest for the image's
 * platform, naming the platforms it has. */
static void
no_platform_error(const struct image *image, const json_t *index,
                  const char *digest, struct pg_error **err)
{
    json_t *platforms = index_platforms(index);
    size_t shown = 0, total = json_object_size(platforms);
    char list[CLI_PLATFORMS_SHOWN_MAX * (CLI_PLATFORM_TEXT_MAX + 2) + 32];
    size_t used = 0;
    const char *key;
    json_t *value;

    list[0] = '\0';
    json_object_foreach(platforms, key, value)
    {
        if (shown == CLI_PLATFORMS_SHOWN_MAX)
            break;
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                 shown > 0 ? ", " : "", key);
        shown++;
    }
    if (shown < total)
        snprintf(list + used, sizeof(list) - used, " and %zu more",
                 total - shown);
    if (total == 0)
        pg_error_set(err, 404, PG_ERR_MANIFEST_UNKNOWN,
                     "index %s has no manifest for platform %s; none of its "
                     "entries names a platform",
                     digest, image->platform);
    else
        pg_error_set(err, 404, PG_ERR_MANIFEST_UNKNOWN,
                     "index %s has no manifest for platform %s; it has %s; "
                     "choose one with %s",
                     digest, image->platform, list, image->platform_setting);
    json_decref(platforms);
}

/*
 * Returns the entry of an index for image->platform (borrowed), or NULL.
 * Counts the distinct platforms of the index in image->index_platforms.
 */
static const json_t *
index_select(struct image *image, const json_t *index, const char *digest,
             struct pg_error **err)
{
    const json_t *manifests = json_object_get(index, "manifests");
    size_t i;
    json_t *entry, *platforms;

    if (json_array_size(manifests) > PG_INDEX_ENTRIES_MAX) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "index %s has more than %d entries", digest,
                     PG_INDEX_ENTRIES_MAX);
        return NULL;
    }
    json_array_foreach(manifests, i, entry)
    {
        const char *entry_digest;

        if (!platform_matches(entry, image->platform))
            continue;
        /* The digest goes into an upstream URL or a layout path next. */
        entry_digest = json_string_value(json_object_get(entry, "digest"));
        if (entry_digest == NULL || !reference_digest_valid(entry_digest)) {
            pg_error_set(err, 403, PG_ERR_DENIED,
                         "index %s entry %zu for platform %s has a missing "
                         "or invalid digest",
                         digest, i, image->platform);
            return NULL;
        }
        platforms = index_platforms(index);
        if (platforms == NULL) {
            pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
            return NULL;
        }
        image->index_platforms = json_object_size(platforms);
        json_decref(platforms);
        return entry;
    }
    no_platform_error(image, index, digest, err);
    return NULL;
}

/* Reads the config blob named by the manifest, verified. */
static int
read_config(struct image *image, char **bytes, size_t *len,
            struct pg_error **err)
{
    const json_t *config = json_object_get(image->manifest, "config");
    const char *digest, *media_type;
    char member[CLI_PATH_MAX];
    int64_t size;

    if (descriptor_fields(config, "the manifest's config", &digest, &media_type,
                          &size, err) < 0)
        return -1;
    if (image->config_member != NULL)
        snprintf(member, sizeof(member), "%s", image->config_member);
    else
        image_member(image, digest, member, sizeof(member));
    return read_blob(&image->store, member, digest, size,
                     PG_IMAGE_CONFIG_MAX_BYTES, bytes, len, err);
}

/* Lists layer i through a hashing stream and verifies it afterwards. */
static json_t *
read_layer(struct image *image, size_t i, struct pg_error **err)
{
    const json_t *layer =
        json_array_get(json_object_get(image->manifest, "layers"), i);
    const char *digest, *media_type;
    char member[CLI_PATH_MAX], what[64];
    struct blob_stream stream;
    int64_t size;
    json_t *listing;

    snprintf(what, sizeof(what), "layers[%zu] of the manifest", i);
    if (descriptor_fields(layer, what, &digest, &media_type, &size, err) < 0)
        return NULL;
    if (image->layer_members != NULL)
        snprintf(member, sizeof(member), "%s",
                 json_string_value(json_array_get(image->layer_members, i)));
    else
        image_member(image, digest, member, sizeof(member));
    if (stream_open(&image->store, member, digest, size, &stream, err) < 0)
        return NULL;

    struct inspector_source source = {.read = stream_read, .arg = &stream};
    listing = inspector_scan_layer(&source, digest, media_type, size,
                                   &image->options, err);
    if (listing == NULL) {
        stream_close(&stream);
        return NULL;
    }
    if (stream_finish(&stream, err) < 0) {
        json_decref(listing);
        return NULL;
    }
    return listing;
}

/* Reads the config and every layer of image->manifest and builds the
 * image document. */
static json_t *
inspect_image(struct image *image, struct pg_error **err)
{
    const json_t *layers = json_object_get(image->manifest, "layers");
    size_t n = json_array_size(layers);
    json_t **listings = NULL;
    json_t *document = NULL;
    char *config = NULL;
    size_t config_len = 0, done = 0;

    if (inspector_classify(image->manifest, NULL) != INSPECTOR_KIND_IMAGE) {
        pg_error_set(
            err, 403, PG_ERR_UNSUPPORTED,
            "manifest %s is not a runnable image (it is %s)", image->digest,
            inspector_kind_name(inspector_classify(image->manifest, NULL)));
        return NULL;
    }
    if (n > PG_LAYERS_MAX) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "manifest %s has %zu layers, more than the %d pullgate "
                     "inspects",
                     image->digest, n, PG_LAYERS_MAX);
        return NULL;
    }
    listings = calloc(n + 1, sizeof(*listings));
    if (listings == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        goto out;
    }
    if (read_config(image, &config, &config_len, err) < 0)
        goto out;
    for (done = 0; done < n; done++) {
        listings[done] = read_layer(image, done, err);
        if (listings[done] == NULL)
            goto out;
    }
    document = inspector_build_document(image->digest, image->manifest, config,
                                        config_len, listings, n,
                                        image->reference, err);
    if (document != NULL &&
        inspector_document_scan_config(document, config, config_len,
                                       &image->options, err) < 0) {
        json_decref(document);
        document = NULL;
    }
out:
    for (size_t i = 0; listings != NULL && i < done; i++)
        json_decref(listings[i]);
    free(listings);
    free(config);
    return document;
}

/* ---- OCI image layouts, in a directory or a tar file ---- */

/* Returns the entry of index.json to read (borrowed): the one whose
 * ref.name annotation is tag, else the only one, else the one for the
 * platform. Two entries with the tag are an error, because either could
 * be the image meant. */
static const json_t *
layout_select(struct image *image, const json_t *index, const char *tag,
              struct pg_error **err)
{
    const json_t *manifests = json_object_get(index, "manifests");
    const json_t *found = NULL;
    size_t i, count = 0;
    json_t *entry;

    if (tag == NULL && json_array_size(manifests) == 1)
        return json_array_get(manifests, 0);
    if (tag == NULL)
        return index_select(image, index, "index.json", err);
    json_array_foreach(manifests, i, entry)
    {
        const char *name = json_string_value(json_object_get(
            json_object_get(entry, "annotations"), REF_NAME_ANNOTATION));

        if (name != NULL && strcmp(name, tag) == 0) {
            found = found != NULL ? found : entry;
            count++;
        }
    }
    if (count == 1)
        return found;
    if (count > 1)
        pg_error_set(err, 403, PG_ERR_MANIFEST_INVALID,
                     "index.json has %zu manifests whose %s annotation is "
                     "\"%s\"; give the tag to one manifest",
                     count, REF_NAME_ANNOTATION, tag);
    else
        pg_error_set(err, 404, PG_ERR_MANIFEST_UNKNOWN,
                     "index.json has no manifest whose %s annotation is "
                     "\"%s\"",
                     REF_NAME_ANNOTATION, tag);
    return NULL;
}

/* Reads the manifest that entry describes, verified, and follows indexes
 * by platform until it reaches an image manifest. Takes entry. */
static int
follow_manifest(struct image *image, json_t *entry, struct pg_error **err)
{
    for (int depth = 0; depth < CLI_INDEX_DEPTH_MAX; depth++) {
        const char *digest, *media_type;
        char member[CLI_PATH_MAX];
        int64_t size;
        char *bytes = NULL;
        size_t len;
        json_t *manifest;

        if (descriptor_fields(entry, "a manifest descriptor", &digest,
                              &media_type, &size, err) < 0)
            break;
        layout_member(digest, member, sizeof(member));
        if (read_blob(&image->store, member, digest, size,
                      PG_MANIFEST_MAX_BYTES, &bytes, &len, err) < 0)
            break;
        manifest = parse_json(bytes, len, member, err);
        free(bytes);
        if (manifest == NULL)
            break;
        if (inspector_classify(manifest, media_type) != INSPECTOR_KIND_INDEX) {
            snprintf(image->digest, sizeof(image->digest), "%s", digest);
            image->manifest = manifest;
            json_decref(entry);
            return 0;
        }
        json_decref(entry);
        entry =
            json_incref((json_t *)index_select(image, manifest, digest, err));
        json_decref(manifest);
        if (entry == NULL)
            return -1;
    }
    json_decref(entry);
    pg_error_set(err, 403, PG_ERR_DENIED,
                 "indexes are nested more than %d levels deep",
                 CLI_INDEX_DEPTH_MAX);
    return -1;
}

static int
layout_resolve(struct image *image, const char *tag, struct pg_error **err)
{
    char *bytes = NULL;
    size_t len;
    json_t *index;
    const json_t *entry;
    int status = -1;

    if (read_blob(&image->store, "index.json", NULL, -1, PG_MANIFEST_MAX_BYTES,
                  &bytes, &len, err) < 0)
        return -1;
    index = parse_json(bytes, len, "index.json", err);
    free(bytes);
    if (index == NULL)
        return -1;
    entry = layout_select(image, index, tag, err);
    if (entry != NULL)
        status = follow_manifest(image, json_incref((json_t *)entry), err);
    json_decref(index);
    return status;
}

/* ---- docker save archives without a layout ---- */

/* Sets sizes[i] to the size of the archive entry members[i]. */
static int
archive_sizes(const char *path, const json_t *members, int64_t *sizes,
              struct pg_error **err)
{
    struct archive *archive = archive_read_new();
    struct archive_entry *entry;
    int status = -1;

    archive_read_support_filter_all(archive);
    archive_read_support_format_tar(archive);
    if (archive_read_open_filename(archive, path, READ_CHUNK_BYTES) !=
        ARCHIVE_OK)
        goto fail;
    for (unsigned n = 0; n < CLI_ARCHIVE_ENTRIES_MAX; n++) {
        int read = archive_read_next_header(archive, &entry);
        const char *name;
        size_t i;
        json_t *member;

        if (read == ARCHIVE_EOF) {
            status = 0;
            break;
        }
        if (read != ARCHIVE_OK && read != ARCHIVE_WARN)
            goto fail;
        name = archive_entry_pathname(entry);
        if (name != NULL && strncmp(name, "./", 2) == 0)
            name += 2;
        json_array_foreach(members, i, member)
        {
            if (name != NULL && strcmp(name, json_string_value(member)) == 0)
                sizes[i] = archive_entry_size(entry);
        }
    }
    archive_read_free(archive);
    return status;
fail:
    pg_error_set(err, 400, PG_ERR_BLOB_UNKNOWN,
                 "cannot read the tar file %s: %s", path,
                 archive_error_string(archive));
    archive_read_free(archive);
    return -1;
}

/* Returns "sha256:HEX" for a config member named HEX.json or
 * blobs/sha256/HEX, as docker save names it, or NULL. */
static json_t *
config_member_digest(const char *member)
{
    const char *base = strrchr(member, '/');
    char text[PG_DIGEST_MAX + 1];

    base = base != NULL ? base + 1 : member;
    snprintf(text, sizeof(text), "sha256:%.*s", (int)strcspn(base, "."), base);
    return reference_digest_valid(text) ? json_string(text) : NULL;
}

/*
 * Builds the manifest of a docker save entry {"Config", "Layers"}: the
 * config's digest from its name, each layer an uncompressed tar whose
 * digest is its diff_id in the verified config, and the sizes from the
 * archive.
 * NOTE: such an archive has no manifest, so the document's manifest
 * digest is the digest of this manifest, which no registry serves.
 */
static json_t *
docker_manifest(struct image *image, const json_t *entry, const char *config,
                size_t config_len, const char *config_digest,
                struct pg_error **err)
{
    json_t *config_json = parse_json(config, config_len, "the config", err);
    json_t *diff_ids =
        json_object_get(json_object_get(config_json, "rootfs"), "diff_ids");
    const json_t *members = json_object_get(entry, "Layers");
    size_t n = json_array_size(members);
    int64_t *sizes = calloc(n + 1, sizeof(*sizes));
    json_t *layers = json_array(), *manifest = NULL;

    if (config_json == NULL || sizes == NULL || layers == NULL)
        goto out;
    if (json_array_size(diff_ids) != n || n > PG_LAYERS_MAX) {
        pg_error_set(err, 403, PG_ERR_MANIFEST_INVALID,
                     "manifest.json lists %zu layers but the config has %zu "
                     "diff_ids",
                     n, json_array_size(diff_ids));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        sizes[i] = -1;
    if (archive_sizes(image->store.root, members, sizes, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] < 0) {
            pg_error_set(err, 404, PG_ERR_BLOB_UNKNOWN,
                         "%s has no layer file %s", image->store.root,
                         json_string_value(json_array_get(members, i)));
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(layers, json_pack("{s:s, s:O, s:I}", "mediaType",
                                                ARCHIVE_LAYER_TYPE, "digest",
                                                json_array_get(diff_ids, i),
                                                "size", (json_int_t)sizes[i]));
    manifest =
        json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2,
                  "mediaType", ARCHIVE_MANIFEST_TYPE, "config", "mediaType",
                  ARCHIVE_CONFIG_TYPE, "digest", config_digest, "size",
                  (json_int_t)config_len, "layers", layers);
out:
    json_decref(config_json);
    json_decref(layers);
    free(sizes);
    return manifest;
}

/* Sets image->digest to the sha256 digest of the manifest's compact JSON. */
static int
digest_of_json(struct image *image, struct pg_error **err)
{
    char *text = json_dumps(image->manifest, JSON_COMPACT | JSON_SORT_KEYS);
    EVP_MD_CTX *hash = EVP_MD_CTX_new();

    if (text == NULL || hash == NULL ||
        EVP_DigestInit_ex(hash, EVP_sha256(), NULL) != 1) {
        free(text);
        EVP_MD_CTX_free(hash);
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        return -1;
    }
    EVP_DigestUpdate(hash, text, strlen(text));
    hash_text(hash, "sha256:", image->digest, sizeof(image->digest));
    EVP_MD_CTX_free(hash);
    free(text);
    return 0;
}

static int
docker_resolve(struct image *image, struct pg_error **err)
{
    char *bytes = NULL, *config = NULL;
    size_t len, config_len;
    json_t *list, *digest = NULL;
    const json_t *entry;
    const char *member;
    int status = -1;

    if (read_blob(&image->store, "manifest.json", NULL, -1,
                  PG_MANIFEST_MAX_BYTES, &bytes, &len, err) < 0)
        return -1;
    list = parse_json(bytes, len, "manifest.json", err);
    free(bytes);
    entry = json_array_get(list, 0);
    member = json_string_value(json_object_get(entry, "Config"));
    if (list != NULL && (json_array_size(list) != 1 || member == NULL ||
                         !json_is_array(json_object_get(entry, "Layers")))) {
        pg_error_set(err, 403, PG_ERR_MANIFEST_INVALID,
                     "manifest.json must list one image with Config and "
                     "Layers; it lists %zu",
                     json_array_size(list));
        goto out;
    }
    if (list == NULL)
        goto out;
    digest = config_member_digest(member);
    if (digest == NULL) {
        pg_error_set(err, 403, PG_ERR_MANIFEST_INVALID,
                     "cannot tell the digest of the config %s from its name",
                     member);
        goto out;
    }
    if (read_blob(&image->store, member, json_string_value(digest), -1,
                  PG_IMAGE_CONFIG_MAX_BYTES, &config, &config_len, err) < 0)
        goto out;
    image->manifest = docker_manifest(image, entry, config, config_len,
                                      json_string_value(digest), err);
    image->config_member = strdup(member);
    image->layer_members = json_incref(json_object_get(entry, "Layers"));
    if (image->manifest != NULL && image->config_member != NULL)
        status = digest_of_json(image, err);
out:
    if (status < 0 && image->manifest == NULL)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
    json_decref(digest);
    json_decref(list);
    free(config);
    return status;
}

/* Reads an archive: the OCI layout inside it when it has index.json,
 * else the docker save manifest.json. */
static int
archive_resolve(struct image *image, struct pg_error **err)
{
    struct archive *archive =
        archive_open_member(image->store.root, "index.json", NULL);

    if (archive != NULL) {
        archive_read_free(archive);
        return layout_resolve(image, NULL, err);
    }
    return docker_resolve(image, err);
}

/* ---- remote images ---- */

/* A blob fetch waited for on the loop. */
struct blob_wait {
    size_t *pending;
    struct pg_error **first_err;
};

/* What the remote reader runs: the loop and the blob store it fills. */
struct remote {
    struct event_base *base;
    struct event *signal_check; /* wakes the loop to look at stop_signal */
    struct workers *workers;
    struct cache *cache;
    struct upstream_client *upstreams;
    struct blobfetch *fetches;
    char dir[CLI_PATH_MAX]; /* the temporary directory, "" until made */
    struct route route;

    /* The blob fetches under way. They live as long as the fetcher,
     * because a fetch stopped by a signal runs its callback when the
     * worker pool stops in remote_stop. */
    struct blob_wait blobs;
    size_t blobs_pending;
    struct pg_error *blobs_err;
};

/* A manifest request waited for on the loop. */
struct manifest_wait {
    bool done;
    int status;
    struct evbuffer *body;
    char *content_type;
    char *header_digest;
    struct pg_error *err;
};

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Frees what remote_start made, in the order main() frees the daemon:
 * blobfetch_free needs the worker pool stopped, so that no drain job runs
 * on a fetch it frees, and the upstream client alive, to cancel the
 * transfers. */
static void
remote_stop(struct remote *r)
{
    workers_free(r->workers);
    blobfetch_free(r->fetches);
    upstream_client_free(r->upstreams);
    pg_error_free(r->blobs_err);
    cache_close(r->cache);
    if (r->signal_check != NULL)
        event_free(r->signal_check);
    if (r->base != NULL)
        event_base_free(r->base);
    if (r->dir[0] != '\0')
        nftw(r->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Does nothing: the timer only makes a blocked loop return, so that the
 * loops of this file see stop_signal. */
static void
on_signal_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int
remote_start(struct remote *r, const struct config *cfg, struct pg_error **err)
{
    static const struct timeval signal_check_interval = {
        .tv_sec = 0, .tv_usec = CLI_SIGNAL_CHECK_MS * 1000};
    const char *tmp = getenv("TMPDIR");
    char cache_dir[CLI_PATH_MAX];

    snprintf(r->dir, sizeof(r->dir), "%s/pullgate-inspect-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(r->dir) == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot create a temporary directory %s: %s; set TMPDIR "
                     "to a writable directory",
                     r->dir, strerror(errno));
        r->dir[0] = '\0';
        return -1;
    }
    if (snprintf(cache_dir, sizeof(cache_dir), "%s/blobs", r->dir) >=
        (int)sizeof(cache_dir)) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "the temporary directory %s is too long; set TMPDIR to "
                     "a shorter path",
                     r->dir);
        return -1;
    }
    r->base = event_base_new();
    if (r->base != NULL)
        r->signal_check =
            event_new(r->base, -1, EV_PERSIST, on_signal_check, NULL);
    if (r->base == NULL || r->signal_check == NULL ||
        event_add(r->signal_check, &signal_check_interval) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot create an event loop");
        return -1;
    }
    r->cache = cache_open(cache_dir, CLI_CACHE_MAP_SIZE, err);
    if (r->cache == NULL)
        return -1;
    r->workers = workers_new(r->base, CLI_FETCH_WORKERS, err);
    if (r->workers == NULL)
        return -1;
    r->upstreams = upstream_client_new(r->base, cfg, err);
    if (r->upstreams == NULL)
        return -1;
    r->fetches =
        blobfetch_new(r->base, r->upstreams, r->workers, r->cache, err);
    return r->fetches != NULL ? 0 : -1;
}

static char *
header_copy(const struct upstream_transfer *transfer, const char *name)
{
    const char *value = upstream_header(transfer, name);

    return value != NULL ? strdup(value) : NULL;
}

static void
on_manifest(struct upstream_transfer *transfer, int status,
            struct evbuffer *body, struct pg_error *err, void *arg)
{
    struct manifest_wait *wait = arg;

    wait->done = true;
    wait->status = status;
    wait->err = err;
    if (err != NULL || body == NULL)
        return;
    wait->body = evbuffer_new();
    if (wait->body != NULL)
        evbuffer_remove_buffer(body, wait->body, evbuffer_get_length(body));
    wait->content_type = header_copy(transfer, "Content-Type");
    wait->header_digest = header_copy(transfer, "Docker-Content-Digest");
}

/* Runs the loop until *done is set or a signal stops the command. After a
 * signal the loop never runs again, so no callback reaches the caller's
 * state. */
static void
loop_until(struct event_base *base, const bool *done)
{
    while (!*done && stop_signal == 0)
        event_base_loop(base, EVLOOP_ONCE);
}

static void
manifest_wait_clear(struct manifest_wait *wait)
{
    if (wait->body != NULL)
        evbuffer_free(wait->body);
    free(wait->content_type);
    free(wait->header_digest);
    pg_error_free(wait->err);
}

/* Checks the manifest bytes against the digest reference or the
 * Docker-Content-Digest header, and sets image->digest. */
static int
verify_manifest(struct image *image, const char *reference,
                const struct manifest_wait *wait, const unsigned char *bytes,
                size_t len, struct pg_error **err)
{
    const char *want =
        reference_is_digest(reference) ? reference : wait->header_digest;
    EVP_MD_CTX *hash = EVP_MD_CTX_new();
    const EVP_MD *md = digest_algorithm(want != NULL ? want : "sha256:");
    char got[PG_DIGEST_MAX + 1];

    if (hash == NULL || md == NULL || EVP_DigestInit_ex(hash, md, NULL) != 1) {
        EVP_MD_CTX_free(hash);
        pg_error_set(err, 502, PG_ERR_DIGEST_INVALID,
                     "cannot verify the manifest against digest \"%s\"",
                     want != NULL ? want : "");
        return -1;
    }
    EVP_DigestUpdate(hash, bytes, len);
    hash_text(hash, want != NULL ? want : "sha256:", got, sizeof(got));
    EVP_MD_CTX_free(hash);
    if (want != NULL && strcmp(got, want) != 0) {
        pg_error_set(err, 502, PG_ERR_DIGEST_INVALID,
                     "the manifest's bytes hash to %s, not %s", got, want);
        return -1;
    }
    snprintf(image->digest, sizeof(image->digest), "%s", got);
    return 0;
}

/* Fetches one manifest by tag or digest into *manifest, verified. */
static int
fetch_manifest(struct remote *r, struct image *image, const char *reference,
               json_t **manifest, char **media_type, struct pg_error **err)
{
    struct manifest_wait wait = {0};
    char path[PG_NAME_MAX + PG_DIGEST_MAX + 32];
    struct upstream_request request = {
        .upstream = r->route.upstream,
        .method = "GET",
        .path = path,
        .accept = manifest_accept,
        .repository = r->route.repository,
    };
    int status = -1;

    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", r->route.repository,
             reference);
    if (upstream_fetch(r->upstreams, &request, PG_MANIFEST_MAX_BYTES,
                       on_manifest, &wait, err) == NULL)
        return -1;
    loop_until(r->base, &wait.done);
    if (!wait.done) {
        stopped(err);
    } else if (wait.err != NULL) {
        pg_error_set(err, wait.err->status, wait.err->code, "%s",
                     wait.err->message);
    } else if (wait.status != 200) {
        pg_error_set(err, 404, PG_ERR_MANIFEST_UNKNOWN,
                     "upstream %s returned HTTP %d for the manifest %s:%s",
                     r->route.upstream->name, wait.status, r->route.repository,
                     reference);
    } else if (wait.body != NULL) {
        size_t len = evbuffer_get_length(wait.body);
        unsigned char *bytes = evbuffer_pullup(wait.body, -1);

        if (verify_manifest(image, reference, &wait, bytes, len, err) == 0)
            *manifest =
                parse_json((const char *)bytes, len, "the manifest", err);
        if (*manifest != NULL) {
            *media_type = wait.content_type;
            wait.content_type = NULL;
            status = 0;
        }
    }
    manifest_wait_clear(&wait);
    return status;
}

static void
on_blob(struct pg_error *err, void *arg)
{
    struct blob_wait *wait = arg;

    (*wait->pending)--;
    if (err != NULL && *wait->first_err == NULL)
        *wait->first_err = err;
    else
        pg_error_free(err);
}

/* Starts the fetch of one descriptor's blob. */
static int
fetch_blob(struct remote *r, const json_t *descriptor, struct blob_wait *wait,
           struct pg_error **err)
{
    const char *digest, *media_type;
    int64_t size;

    if (descriptor_fields(descriptor, "a descriptor of the manifest", &digest,
                          &media_type, &size, err) < 0)
        return -1;
    if (blobfetch_get(r->fetches, r->route.upstream, r->route.repository,
                      digest, media_type, size, on_blob, wait, err) == NULL)
        return -1;
    (*wait->pending)++;
    return 0;
}

/* Fetches the config and every layer into the blob store, verified. */
static int
fetch_blobs(struct remote *r, const json_t *manifest, struct pg_error **err)
{
    const json_t *layers = json_object_get(manifest, "layers");
    struct blob_wait *wait = &r->blobs;
    size_t i;
    json_t *layer;

    if (json_array_size(layers) > PG_LAYERS_MAX) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "the manifest has more than %d layers", PG_LAYERS_MAX);
        return -1;
    }
    *wait = (struct blob_wait){.pending = &r->blobs_pending,
                               .first_err = &r->blobs_err};
    if (fetch_blob(r, json_object_get(manifest, "config"), wait,
                   &r->blobs_err) == 0) {
        json_array_foreach(layers, i, layer)
        {
            if (fetch_blob(r, layer, wait, &r->blobs_err) < 0)
                break;
        }
    }
    while (r->blobs_pending > 0 && stop_signal == 0)
        event_base_loop(r->base, EVLOOP_ONCE);
    if (stopped(err))
        return -1;
    if (r->blobs_err != NULL) {
        pg_error_set(err, r->blobs_err->status, r->blobs_err->code, "%s",
                     r->blobs_err->message);
        return -1;
    }
    return 0;
}

/* Splits ref, NAME[:TAG][@DIGEST], into the request path of its manifest,
 * "/v2/NAME/manifests/TAG|DIGEST", which route_parse then checks. */
static int
manifest_uri(const char *ref, char *uri, size_t size, struct pg_error **err)
{
    const char *at = strchr(ref, '@');
    const char *slash = strrchr(ref, '/');
    const char *colon;
    size_t name_len;
    int n;

    if (at != NULL) {
        colon = memchr(ref, ':', (size_t)(at - ref));
        if (colon != NULL && (slash == NULL || colon > slash))
            name_len = (size_t)(colon - ref);
        else
            name_len = (size_t)(at - ref);
        n = snprintf(uri, size, "/v2/%.*s/manifests/%s", (int)name_len, ref,
                     at + 1);
    } else {
        colon = strrchr(ref, ':');
        if (colon != NULL && (slash == NULL || colon > slash))
            n = snprintf(uri, size, "/v2/%.*s/manifests/%s", (int)(colon - ref),
                         ref, colon + 1);
        else
            n = snprintf(uri, size, "/v2/%s/manifests/latest", ref);
    }
    if (n < 0 || (size_t)n >= size) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "the reference is longer than %d bytes", PG_URI_MAX);
        return -1;
    }
    return 0;
}

static int
remote_resolve(struct remote *r, struct image *image, const char *ref,
               struct pg_error **err)
{
    char uri[PG_URI_MAX + 1];
    char *media_type = NULL;
    const json_t *entry;
    json_t *index = NULL;
    int status = -1;

    if (manifest_uri(ref, uri, sizeof(uri), err) < 0 ||
        route_parse(image->cfg, "GET", uri, &r->route, err) < 0 ||
        remote_start(r, image->cfg, err) < 0)
        return -1;
    image->cache = r->cache;
    image->reference = json_pack(
        "{s:s, s:s, s:s}", "registry", r->route.upstream->name, "repository",
        r->route.repository, "reference", r->route.reference);
    if (image->reference == NULL ||
        fetch_manifest(r, image, r->route.reference, &image->manifest,
                       &media_type, err) < 0)
        goto out;
    if (inspector_classify(image->manifest, media_type) ==
        INSPECTOR_KIND_INDEX) {
        index = image->manifest;
        image->manifest = NULL;
        entry = index_select(image, index, image->digest, err);
        free(media_type);
        media_type = NULL;
        if (entry == NULL ||
            fetch_manifest(r, image,
                           json_string_value(json_object_get(entry, "digest")),
                           &image->manifest, &media_type, err) < 0)
            goto out;
    }
    status = fetch_blobs(r, image->manifest, err);
out:
    json_decref(index);
    free(media_type);
    return status;
}

/* ---- choosing the source ---- */

static bool
is_directory(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool
is_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int
set_store(struct image *image, enum store_kind kind, const char *path,
          size_t len, struct pg_error **err)
{
    if (len >= sizeof(image->store.root)) {
        pg_error_set(err, 400, PG_ERR_NAME_INVALID,
                     "the path is longer than %d bytes", CLI_PATH_MAX - 1);
        return -1;
    }
    image->store.kind = kind;
    memcpy(image->store.root, path, len);
    image->store.root[len] = '\0';
    return 0;
}

/* Reads ref, oci:DIR[:TAG]; DIR wins when the whole text after "oci:"
 * names a directory. */
static int
resolve_layout(struct image *image, const char *ref, struct pg_error **err)
{
    const char *text = ref + 4;
    const char *colon = strrchr(text, ':');
    const char *tag = NULL;
    size_t len = strlen(text);

    if (!is_directory(text) && colon != NULL && strchr(colon, '/') == NULL) {
        len = (size_t)(colon - text);
        tag = colon + 1;
    }
    if (set_store(image, STORE_DIRECTORY, text, len, err) < 0)
        return -1;
    image->reference =
        json_pack("{s:s, s:s#, s:s}", "registry", "", "repository", ref,
                  len + 4, "reference", tag != NULL ? tag : "");
    return layout_resolve(image, tag, err);
}

static int
resolve_archive(struct image *image, const char *path, const char *shown,
                struct pg_error **err)
{
    if (set_store(image, STORE_ARCHIVE, path, strlen(path), err) < 0)
        return -1;
    image->reference = json_pack("{s:s, s:s, s:s}", "registry", "",
                                 "repository", shown, "reference", "");
    return archive_resolve(image, err);
}

/* Returns true when ref ends like an image archive or layout file name,
 * with or without a ":TAG" after it. */
static bool
has_path_suffix(const char *ref)
{
    static const char *const suffixes[] = {".tar", ".tar.gz", ".tgz", ".oci",
                                           NULL};
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(ref, ':');
    size_t len = strlen(ref);

    /* A ":TAG" is after the last '/'; a colon before it is a port. */
    if (colon != NULL && (slash == NULL || colon > slash))
        len = (size_t)(colon - ref);
    for (size_t i = 0; suffixes[i] != NULL; i++) {
        size_t n = strlen(suffixes[i]);

        if (len >= n && strncmp(ref + len - n, suffixes[i], n) == 0)
            return true;
    }
    return false;
}

/* Finds the image that ref names and reads its manifest. */
static int
resolve(struct remote *r, struct image *image, const char *ref,
        struct pg_error **err)
{
    char shown[CLI_PATH_MAX + 32];

    if (strncmp(ref, "oci:", 4) == 0)
        return resolve_layout(image, ref, err);
    if (strncmp(ref, "docker-archive:", 15) == 0)
        return resolve_archive(image, ref + 15, ref, err);
    if (is_directory(ref)) {
        snprintf(shown, sizeof(shown), "oci:%s", ref);
        if (set_store(image, STORE_DIRECTORY, ref, strlen(ref), err) < 0)
            return -1;
        image->reference = json_pack("{s:s, s:s, s:s}", "registry", "",
                                     "repository", shown, "reference", "");
        return layout_resolve(image, NULL, err);
    }
    if (is_file(ref)) {
        snprintf(shown, sizeof(shown), "docker-archive:%s", ref);
        return resolve_archive(image, ref, shown, err);
    }
    /* A mistyped path must not turn into a request to the default
     * upstream: no registry reference starts with '/', '.' or '~', and
     * image archives and layouts have these endings. */
    if (ref[0] == '/' || ref[0] == '.' || ref[0] == '~' ||
        has_path_suffix(ref)) {
        pg_error_set(err, 404, PG_ERR_NAME_UNKNOWN,
                     "no such file or directory; give an existing OCI layout "
                     "directory or image archive, or a registry reference");
        return -1;
    }
    return remote_resolve(r, image, ref, err);
}

/* ---- the command ---- */

static void
print_usage(FILE *out, enum cli_inspect_output output)
{
    fputs(output == CLI_OUTPUT_SBOM ? sbom_usage : inspect_usage, out);
    fputs(common_usage, out);
}

static int usage_error(enum cli_inspect_output output, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "pullgate COMMAND: MESSAGE; see ..." and returns
 * CLI_EXIT_USAGE. */
static int
usage_error(enum cli_inspect_output output, const char *fmt, ...)
{
    const char *command = output == CLI_OUTPUT_SBOM ? "sbom" : "inspect";
    va_list ap;

    fprintf(stderr, "pullgate %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see pullgate %s --help\n", command);
    return CLI_EXIT_USAGE;
}

bool
cli_inspect_platform_valid(const char *platform)
{
    size_t parts = 1, len = 0;

    for (const char *p = platform; *p != '\0'; p++) {
        if (*p == '/') {
            if (len == 0)
                return false;
            parts++;
            len = 0;
        } else {
            len++;
        }
    }
    return len > 0 && parts >= 2 && parts <= 3 && strlen(platform) < 128;
}

/* Parses the command line into *options. Returns -1 after printing the
 * help, CLI_EXIT_USAGE after a usage error, or 0. */
static int
parse_options(int argc, char **argv, enum cli_inspect_output output,
              struct cli_options *options)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"platform", required_argument, NULL, 'p'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *options = (struct cli_options){.platform = CLI_DEFAULT_PLATFORM};
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
        if (opt == 'c') {
            options->config_file = optarg;
        } else if (opt == 'p') {
            options->platform = optarg;
        } else if (opt == 'f' && output == CLI_OUTPUT_SBOM &&
                   strcmp(optarg, "spdx-json") == 0) {
            options->format = SBOM_SPDX;
        } else if (opt == 'f' && output == CLI_OUTPUT_SBOM &&
                   strcmp(optarg, "cyclonedx-json") == 0) {
            options->format = SBOM_CYCLONEDX;
        } else if (opt == 'f' && output == CLI_OUTPUT_SBOM) {
            return usage_error(output,
                               "invalid --format \"%s\": expected spdx-json "
                               "or cyclonedx-json",
                               optarg);
        } else if (opt == 'h') {
            print_usage(stdout, output);
            return -1;
        } else {
            return usage_error(output, "invalid command line");
        }
    }
    if (optind + 1 != argc)
        return usage_error(output, "expected one image reference");
    options->ref = argv[optind];
    if (!cli_inspect_platform_valid(options->platform))
        return usage_error(output,
                           "invalid --platform \"%s\": expected "
                           "OS/ARCH[/VARIANT], such as linux/arm64/v8",
                           options->platform);
    if (output == CLI_OUTPUT_SBOM && options->format == SBOM_NONE)
        return usage_error(
            output, "missing --format%s: spdx-json or cyclonedx-json", "");
    return 0;
}

/* Makes the first SIGINT or SIGTERM stop the command through its cleanup
 * and a second one end it at once. Without SA_RESTART, so that a blocked
 * read returns. */
static void
install_stop_handlers(void)
{
    struct sigaction action = {.sa_handler = on_stop_signal,
                               .sa_flags = SA_RESETHAND};

    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

static struct config *
load_config(const char *file, struct pg_error **err)
{
    struct config *cfg =
        file != NULL ? config_load(file, err) : config_defaults(err);

    if (cfg != NULL && config_validate(cfg, err) < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Fills the layer reading limits from the configuration's inspector
 * section, with the secret rules compiled into *secrets. */
static int
set_inspector_options(struct image *image, struct inspector_secrets **secrets,
                      struct pg_error **err)
{
    const struct config_inspector *limits = &image->cfg->inspector;

    *secrets = inspector_secrets_new(limits->secret_rules,
                                     limits->n_secret_rules, err);
    if (*secrets == NULL)
        return -1;
    image->options = inspector_options_from_config(limits, *secrets);
    return 0;
}

/* Prints value as indented JSON and a newline to standard output. */
static int
print_json(const json_t *value, struct pg_error **err)
{
    if (json_dumpf(value, stdout, JSON_INDENT(2)) < 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot write to standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static json_t *
render(const json_t *document, const struct cli_options *options,
       struct pg_error **err)
{
    if (options->format == SBOM_SPDX)
        return inspector_sbom_spdx(document, err);
    if (options->format == SBOM_CYCLONEDX)
        return inspector_sbom_cyclonedx(document, err);
    return json_incref((json_t *)document);
}

/* Reads the image and prints the output. */
static int
run(const struct cli_options *options, const struct config *cfg,
    struct pg_error **err)
{
    struct remote remote = {0};
    struct image image = {.cfg = cfg,
                          .platform = options->platform,
                          .platform_setting = "--platform"};
    struct inspector_secrets *secrets = NULL;
    json_t *document = NULL, *output = NULL;
    int status = -1;

    if (set_inspector_options(&image, &secrets, err) < 0 ||
        resolve(&remote, &image, options->ref, err) < 0)
        goto out;
    document = inspect_image(&image, err);
    if (document == NULL)
        goto out;
    output = render(document, options, err);
    if (output != NULL)
        status = print_json(output, err);
out:
    json_decref(output);
    json_decref(document);
    json_decref(image.manifest);
    json_decref(image.reference);
    json_decref(image.layer_members);
    free(image.config_member);
    inspector_secrets_free(secrets);
    remote_stop(&remote);
    return status;
}

json_t *
cli_inspect_layout(const struct config *cfg, const char *dir,
                   struct cli_layout_choice *choice, struct pg_error **err)
{
    struct image image = {
        .cfg = cfg,
        .platform =
            choice->platform != NULL ? choice->platform : CLI_DEFAULT_PLATFORM,
        .platform_setting = choice->platform_setting != NULL
                                ? choice->platform_setting
                                : "--platform",
    };
    struct inspector_secrets *secrets = NULL;
    json_t *document = NULL;

    choice->index_platforms = 0;
    if (set_inspector_options(&image, &secrets, err) < 0 ||
        set_store(&image, STORE_DIRECTORY, dir, strlen(dir), err) < 0)
        goto out;
    image.reference =
        json_pack("{s:s, s:s+, s:s}", "registry", "", "repository", "oci:", dir,
                  "reference", choice->tag != NULL ? choice->tag : "");
    if (image.reference == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        goto out;
    }
    if (layout_resolve(&image, choice->tag, err) < 0)
        goto out;
    choice->index_platforms = image.index_platforms;
    document = inspect_image(&image, err);
out:
    json_decref(image.manifest);
    json_decref(image.reference);
    json_decref(image.layer_members);
    free(image.config_member);
    inspector_secrets_free(secrets);
    return document;
}

int
cli_inspect_main(int argc, char **argv, enum cli_inspect_output output)
{
    struct cli_options options;
    struct pg_error *err = NULL;
    struct config *cfg;
    int status = parse_options(argc, argv, output, &options);

    if (status != 0)
        return status < 0 ? CLI_EXIT_OK : status;

    /* The upstream client logs retries and token fetches at info level,
     * which would bury the one error line this command prints. */
    pg_log_set_level(PG_LOG_WARN);
    install_stop_handlers();
    cfg = load_config(options.config_file, &err);
    if (cfg == NULL) {
        fprintf(stderr, "pullgate: %s\n", err->message);
        pg_error_free(err);
        return CLI_EXIT_USAGE;
    }
    status = CLI_EXIT_OK;
    if (run(&options, cfg, &err) < 0) {
        fprintf(stderr, "pullgate: cannot read image %s: %s\n", options.ref,
                err != NULL ? err->message : "out of memory");
        status = CLI_EXIT_UNREADABLE;
    }
    pg_error_free(err);
    config_free(cfg);
    return status;
}
