/*
 * Unit tests of the inspector: manifest classification, layer listing
 * over tar layers written here with libarchive (gzip, zstd and none), the
 * layer limits, corrupt layers, and the image, failed and artifact
 * documents. layer.c and document.c are included to reach their static
 * helpers; classify.c comes from libpginspector.a.
 */
#include <check.h>
#include <ftw.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "inspector/dockerfile.c"
#include "inspector/document.c"
#include "inspector/layer.c"
#include "inspector/merge.c"

#define TEST_DIGEST "sha256:test"
#define GZIP_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define ZSTD_LAYER "application/vnd.oci.image.layer.v1.tar+zstd"
#define TAR_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MIB (1024 * 1024)
#define TABLE_SIZE(table) ((int)(sizeof(table) / sizeof((table)[0])))

static char scratch_dir[] = "/tmp/test_inspector.XXXXXX";

static const struct inspector_options loose_limits = {
    .entries_max = PG_LAYER_ENTRIES_DEFAULT_MAX,
    .bytes_max = PG_LAYER_BYTES_DEFAULT_MAX,
    .path_length_max = PG_LAYER_PATH_DEFAULT_MAX,
    .ratio_max = PG_LAYER_RATIO_DEFAULT_MAX,
};

/* ---- fixtures and helpers ---- */

static void
scratch_setup(void)
{
    snprintf(scratch_dir, sizeof(scratch_dir), "%s",
             "/tmp/test_inspector.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch_dir));
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
scratch_teardown(void)
{
    nftw(scratch_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *
scratch_path(const char *name)
{
    static char path[256];

    snprintf(path, sizeof(path), "%s/%s", scratch_dir, name);
    return path;
}

enum compression {
    COMPRESSION_NONE,
    COMPRESSION_GZIP,
    COMPRESSION_ZSTD,
};

static const char *const compression_media_types[] = {TAR_LAYER, GZIP_LAYER,
                                                      ZSTD_LAYER};

enum spec_kind {
    SPEC_FILE,
    SPEC_DIR,
    SPEC_SYMLINK,
    SPEC_HARDLINK,
    SPEC_CHAR,
    SPEC_FIFO,
};

/* One entry to write into a test layer. */
struct entry_spec {
    const char *path;
    enum spec_kind kind;
    unsigned mode;
    int64_t size;
    const char *link;
    int64_t uid;
    int64_t gid;
};

static struct archive *
writer_open(const char *path, enum compression compression)
{
    struct archive *a = archive_write_new();

    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (compression == COMPRESSION_GZIP)
        ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    else if (compression == COMPRESSION_ZSTD)
        ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    else
        ck_assert_int_eq(archive_write_add_filter_none(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    return a;
}

/* Fills size bytes of entry data, all equal to fill, or pseudo-random
 * (a fixed xorshift sequence) when random is set. */
static void
writer_fill(struct archive *a, int64_t size, int fill, bool random)
{
    static unsigned char chunk[64 * 1024];
    uint32_t state = 2463534242u;

    while (size > 0) {
        size_t n = size < (int64_t)sizeof(chunk) ? (size_t)size : sizeof(chunk);

        for (size_t i = 0; i < n; i++) {
            if (random) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                chunk[i] = (unsigned char)state;
            } else {
                chunk[i] = (unsigned char)fill;
            }
        }
        ck_assert_int_eq(archive_write_data(a, chunk, n), (la_ssize_t)n);
        size -= (int64_t)n;
    }
}

static void
writer_add(struct archive *a, const struct entry_spec *spec, bool random)
{
    static const unsigned filetypes[] = {
        [SPEC_FILE] = AE_IFREG,    [SPEC_DIR] = AE_IFDIR,
        [SPEC_SYMLINK] = AE_IFLNK, [SPEC_HARDLINK] = AE_IFREG,
        [SPEC_CHAR] = AE_IFCHR,    [SPEC_FIFO] = AE_IFIFO,
    };
    struct archive_entry *entry = archive_entry_new();
    int64_t size = spec->kind == SPEC_FILE ? spec->size : 0;

    archive_entry_set_pathname(entry, spec->path);
    archive_entry_set_filetype(entry, filetypes[spec->kind]);
    archive_entry_set_perm(entry, spec->mode);
    archive_entry_set_uid(entry, spec->uid);
    archive_entry_set_gid(entry, spec->gid);
    archive_entry_set_size(entry, size);
    if (spec->kind == SPEC_SYMLINK)
        archive_entry_set_symlink(entry, spec->link);
    if (spec->kind == SPEC_HARDLINK)
        archive_entry_set_hardlink(entry, spec->link);
    if (spec->kind == SPEC_CHAR)
        archive_entry_set_rdev(entry, makedev(1, 3));

    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
    writer_fill(a, size, 'x', random);
    archive_entry_free(entry);
}

static void
writer_close(struct archive *a)
{
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_free(a), ARCHIVE_OK);
}

static const char *
write_layer(const char *name, enum compression compression,
            const struct entry_spec *specs, size_t n)
{
    const char *path = scratch_path(name);
    struct archive *a = writer_open(path, compression);

    for (size_t i = 0; i < n; i++)
        writer_add(a, &specs[i], false);
    writer_close(a);
    return path;
}

/* Writes a layer of count empty files named f0, f1, ... */
static const char *
write_many_files(const char *name, size_t count)
{
    const char *path = scratch_path(name);
    struct archive *a = writer_open(path, COMPRESSION_GZIP);

    for (size_t i = 0; i < count; i++) {
        char file[32];
        struct entry_spec spec = {file, SPEC_FILE, 0644, 0, NULL, 0, 0};

        snprintf(file, sizeof(file), "f%zu", i);
        writer_add(a, &spec, false);
    }
    writer_close(a);
    return path;
}

static void
write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void
assert_error(struct pg_error *err, int status, const char *code,
             const char *message)
{
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, status);
    ck_assert_str_eq(err->code, code);
    ck_assert_str_eq(err->message, message);
}

static void
assert_error_prefix(struct pg_error *err, int status, const char *code,
                    const char *prefix)
{
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, status);
    ck_assert_str_eq(err->code, code);
    ck_assert_int_eq(strncmp(err->message, prefix, strlen(prefix)), 0);
    ck_assert_uint_gt(strlen(err->message), strlen(prefix));
}

static const char *
str_at(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static json_int_t
int_at(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

static json_t *
parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);

    ck_assert_msg(value != NULL, "test JSON invalid: %s", error.text);
    return value;
}

/* ---- classification ---- */

struct classify_case {
    const char *manifest;
    const char *content_type;
    enum inspector_manifest_kind expected;
};

#define OCI_MANIFEST "\"application/vnd.oci.image.manifest.v1+json\""
#define OCI_CONFIG                                                             \
    "\"config\": {\"mediaType\": "                                             \
    "\"application/vnd.oci.image.config.v1+json\"}"
#define LAYERS_OF(type) "\"layers\": [{\"mediaType\": \"" type "\"}]"

static const struct classify_case classify_cases[] = {
    {"{\"mediaType\": \"application/vnd.oci.image.index.v1+json\", "
     "\"manifests\": []}",
     NULL, INSPECTOR_KIND_INDEX},
    {"{\"mediaType\": "
     "\"application/vnd.docker.distribution.manifest.list.v2+json\", "
     "\"manifests\": []}",
     NULL, INSPECTOR_KIND_INDEX},
    {"{\"schemaVersion\": 2, \"manifests\": []}", NULL, INSPECTOR_KIND_INDEX},
    {"{\"manifests\": []}",
     "application/vnd.oci.image.index.v1+json; charset=utf-8",
     INSPECTOR_KIND_INDEX},
    {"{\"mediaType\": \"application/vnd.oci.image.index.v1+json\", "
     "\"manifests\": []}",
     "application/vnd.oci.image.manifest.v1+json", INSPECTOR_KIND_INDEX},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG
     ", " LAYERS_OF("application/vnd.oci.image.layer.v1.tar+gzip") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": "
     "\"application/vnd.docker.distribution.manifest.v2+json\", "
     "\"config\": {\"mediaType\": "
     "\"application/vnd.docker.container.image.v1+json\"}, " LAYERS_OF(
         "application/vnd.docker.image.rootfs.diff.tar.gzip") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"schemaVersion\": 2, " OCI_CONFIG
     ", " LAYERS_OF("application/vnd.oci.image.layer.v1.tar+zstd") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{" OCI_CONFIG
     ", " LAYERS_OF("application/vnd.oci.image.layer.v1.tar") "}",
     "application/vnd.oci.image.manifest.v1+json", INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG ", " LAYERS_OF(
         "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG ", " LAYERS_OF(
         "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG ", \"layers\": []}", NULL,
     INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", \"artifactType\": "
     "\"application/vnd.example.sbom\", " OCI_CONFIG
     ", " LAYERS_OF("application/vnd.oci.image.layer.v1.tar+gzip") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    /* containerd unpacks tar layers whatever the config's media type. */
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"application/vnd.oci.empty.v1+json\"}, " LAYERS_OF(
         "application/vnd.oci.image.layer.v1.tar+gzip") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"application/vnd.oci.empty.v1+json\"}, " LAYERS_OF(
         "application/vnd.dev.cosign.simplesigning.v1+json") "}",
     NULL, INSPECTOR_KIND_ARTIFACT},
    /* moby runs configs of these legacy and prefixed types as images. */
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"\"}, " LAYERS_OF("application/vnd.example.blob") "}",
     NULL, INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"application/octet-stream\"}, \"layers\": []}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"text/html\"}, " LAYERS_OF("application/vnd.example.blob") "}",
     NULL, INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"application/vnd.docker.plugin.v1+json\"}, " LAYERS_OF(
         "application/vnd.example.blob") "}",
     NULL, INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"Application/JSON\"}, " LAYERS_OF("application/vnd.example.blob") "}",
     NULL, INSPECTOR_KIND_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG ", " LAYERS_OF(
         "application/vnd.docker.image.rootfs.diff.tar") "}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{\"mediaType\": " OCI_MANIFEST ", \"config\": {\"mediaType\": "
     "\"application/vnd.cncf.helm.config.v1+json\"}, " LAYERS_OF(
         "application/vnd.cncf.helm.chart.content.v1.tar+gzip") "}",
     NULL, INSPECTOR_KIND_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG
     ", " LAYERS_OF("application/vnd.in-toto+json") "}",
     NULL, INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG
     ", " LAYERS_OF("application/vnd.dev.cosign.simplesigning.v1+json") "}",
     NULL, INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG ", \"layers\": "
     "[{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\"}, "
     "{\"mediaType\": \"application/vnd.example.note\"}]}",
     NULL, INSPECTOR_KIND_IMAGE},
    {"{" OCI_CONFIG ", \"layers\": [], \"manifests\": []}",
     "application/vnd.oci.image.index.v1+json", INSPECTOR_KIND_UNSUPPORTED},
    {"{\"schemaVersion\": 1, \"name\": \"library/alpine\", "
     "\"fsLayers\": []}",
     "application/vnd.docker.distribution.manifest.v1+json",
     INSPECTOR_KIND_UNSUPPORTED},
    {"{\"schemaVersion\": 1, \"fsLayers\": [], \"signatures\": []}",
     "application/vnd.docker.distribution.manifest.v1+prettyjws",
     INSPECTOR_KIND_UNSUPPORTED},
    {"{\"mediaType\": \"application/vnd.example+json\", " OCI_CONFIG
     ", \"layers\": []}",
     NULL, INSPECTOR_KIND_UNSUPPORTED},
    {"[1, 2]", "application/vnd.oci.image.manifest.v1+json",
     INSPECTOR_KIND_UNSUPPORTED},
    {"{\"mediaType\": " OCI_MANIFEST ", \"layers\": []}", NULL,
     INSPECTOR_KIND_UNSUPPORTED},
    {"{\"mediaType\": " OCI_MANIFEST ", " OCI_CONFIG
     ", \"layers\": [{\"digest\": \"sha256:00\"}]}",
     NULL, INSPECTOR_KIND_UNSUPPORTED},
    {"{\"mediaType\": \"application/vnd.oci.image.index.v1+json\"}", NULL,
     INSPECTOR_KIND_UNSUPPORTED},
    {"{\"name\": \"x\"}", "application/json", INSPECTOR_KIND_UNSUPPORTED},
};

START_TEST(classify_table)
{
    const struct classify_case *c = &classify_cases[_i];
    json_t *manifest = parse(c->manifest);

    ck_assert_msg(
        inspector_classify(manifest, c->content_type) == c->expected,
        "case %d: expected %s, got %s", _i, inspector_kind_name(c->expected),
        inspector_kind_name(inspector_classify(manifest, c->content_type)));
    json_decref(manifest);
}
END_TEST

START_TEST(classify_kind_names)
{
    ck_assert_str_eq(inspector_kind_name(INSPECTOR_KIND_INDEX), "index");
    ck_assert_str_eq(inspector_kind_name(INSPECTOR_KIND_IMAGE), "image");
    ck_assert_str_eq(inspector_kind_name(INSPECTOR_KIND_ARTIFACT), "artifact");
    ck_assert_str_eq(inspector_kind_name(INSPECTOR_KIND_UNSUPPORTED),
                     "unsupported");
}
END_TEST

START_TEST(classify_tar_layer_types)
{
    ck_assert(inspector_is_tar_layer(GZIP_LAYER));
    ck_assert(inspector_is_tar_layer(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"));
    ck_assert(inspector_is_tar_layer(
        "application/vnd.docker.image.rootfs.diff.tar.gzip"));
    ck_assert(!inspector_is_tar_layer("application/vnd.in-toto+json"));
    /* containerd unpacks any suffix after a tar base type. */
    ck_assert(inspector_is_tar_layer(
        "application/vnd.oci.image.layer.v1.tar+gzip+extra"));
    ck_assert(inspector_is_tar_layer(
        "application/vnd.oci.image.layer.v1.tar+foo+gzip"));
    ck_assert(inspector_is_tar_layer(
        "application/vnd.oci.image.layer.v1.tar+bzip2"));
    ck_assert(inspector_is_tar_layer(
        "application/vnd.docker.image.rootfs.diff.tar+x"));
    ck_assert(inspector_is_tar_layer(
        "APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR+GZIP"));
    ck_assert(!inspector_is_tar_layer("application/vnd.oci.image.layer.v1"));
    ck_assert(!inspector_is_tar_layer(
        "application/vnd.oci.image.layer.v1.tarball"));
    ck_assert(!inspector_is_tar_layer(NULL));
}
END_TEST

/* ---- path normalization and text ---- */

static const char *const normalize_cases[][2] = {
    {"./", "."},
    {"/", "."},
    {"", "."},
    {".", "."},
    {"./etc/hosts", "etc/hosts"},
    {"/usr/bin/", "usr/bin"},
    {"a//b/./c/", "a/b/c"},
    {"//./x", "x"},
    {"./a/./b/", "a/b"},
    {"a/../b", "b"},
    {"root/.aws/x/../credentials", "root/.aws/credentials"},
    {"../../etc/passwd", "etc/passwd"},
    {"/../../etc/passwd", "etc/passwd"},
    {"..", "."},
    {"../", "."},
    {"a/b/../../..", "."},
    {"a/b/c/../../d", "a/d"},
    {"../escape", "escape"},
    {"./../a/../b", "b"},
    {"a/.../b", "a/.../b"},
    {"..a/b..", "..a/b.."},
};

START_TEST(normalize_table)
{
    char *path = path_normalize(normalize_cases[_i][0]);

    ck_assert_str_eq(path, normalize_cases[_i][1]);
    free(path);
}
END_TEST

static const struct {
    const char *path;
    bool parent;
} parent_segment_cases[] = {
    {"a/../b", true}, {"..", true},     {"../x", true},  {"x/..", true},
    {"x/../", true},  {"a/b", false},   {"./a/", false}, {"a/.../b", false},
    {"..a/b", false}, {"a/b..", false}, {"", false},     {"/", false},
};

START_TEST(parent_segment_table)
{
    ck_assert_msg(path_has_parent_segment(parent_segment_cases[_i].path) ==
                      parent_segment_cases[_i].parent,
                  "%s", parent_segment_cases[_i].path);
}
END_TEST

START_TEST(json_text_valid)
{
    json_t *text = inspector_json_text("caf\xc3\xa9", 5);

    ck_assert_str_eq(json_string_value(text), "caf\xc3\xa9");
    json_decref(text);
}
END_TEST

START_TEST(json_text_invalid)
{
    json_t *latin1 = inspector_json_text("caf\xe9/x", 6);
    json_t *overlong = inspector_json_text("\xc0\xaf", 2);
    json_t *surrogate = inspector_json_text("\xed\xa0\x80", 3);
    json_t *cut = inspector_json_text("a\xe2\x82", 3);

    ck_assert_str_eq(json_string_value(latin1), "caf\xef\xbf\xbd/x");
    ck_assert_str_eq(json_string_value(overlong), "\xef\xbf\xbd\xef\xbf\xbd");
    ck_assert_str_eq(json_string_value(surrogate),
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    ck_assert_str_eq(json_string_value(cut), "a\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(cut);
    json_decref(surrogate);
    json_decref(overlong);
    json_decref(latin1);
}
END_TEST

/* ---- layer listing ---- */

static const struct entry_spec sample_entries[] = {
    {"./", SPEC_DIR, 0755, 0, NULL, 0, 0},
    {"./etc/", SPEC_DIR, 0755, 0, NULL, 0, 0},
    {"./etc/hosts", SPEC_FILE, 0644, 12, NULL, 0, 0},
    {"usr/bin/sudo", SPEC_FILE, 04755, 100, NULL, 0, 0},
    {"usr/bin/sudoedit", SPEC_HARDLINK, 04755, 0, "./usr/bin/sudo", 0, 0},
    {"usr/bin/sh", SPEC_SYMLINK, 0777, 0, "/bin/bash", 0, 0},
    {"tmp/", SPEC_DIR, 01777, 0, NULL, 0, 0},
    {"srv/shared/", SPEC_DIR, 0777, 0, NULL, 0, 0},
    {"var/cache/.wh.apt", SPEC_FILE, 0644, 0, NULL, 0, 0},
    {"opt/app/.wh..wh..opq", SPEC_FILE, 0644, 0, NULL, 0, 0},
    {"../escape/evil", SPEC_FILE, 0644, 4, NULL, 0, 0},
    {"/abs/path", SPEC_FILE, 02600, 4, NULL, 1000, 1001},
    {"dev/null", SPEC_CHAR, 0666, 0, NULL, 0, 0},
    {"run/fifo", SPEC_FIFO, 0600, 0, NULL, 0, 0},
    {".wh..wh.plnk/", SPEC_DIR, 0700, 0, NULL, 0, 0},
};

#define SAMPLE_COUNT (sizeof(sample_entries) / sizeof(sample_entries[0]))

/* What listing sample_entries must produce, entry by entry. */
struct expected_file {
    const char *path;
    const char *type;
    json_int_t mode;
    json_int_t size;
    json_int_t uid;
    json_int_t gid;
    const char *link;
    const char *target;
    const char *raw_path;
};

static const struct expected_file sample_expected[SAMPLE_COUNT] = {
    {".", "dir", 0755, 0, 0, 0, NULL, NULL, NULL},
    {"etc", "dir", 0755, 0, 0, 0, NULL, NULL, NULL},
    {"etc/hosts", "file", 0644, 12, 0, 0, NULL, NULL, NULL},
    {"usr/bin/sudo", "file", 04755, 100, 0, 0, NULL, NULL, NULL},
    {"usr/bin/sudoedit", "hardlink", 04755, 0, 0, 0, "usr/bin/sudo", NULL,
     NULL},
    {"usr/bin/sh", "symlink", 0777, 0, 0, 0, "/bin/bash", NULL, NULL},
    {"tmp", "dir", 01777, 0, 0, 0, NULL, NULL, NULL},
    {"srv/shared", "dir", 0777, 0, 0, 0, NULL, NULL, NULL},
    {"var/cache/.wh.apt", "whiteout", 0644, 0, 0, 0, NULL, "var/cache/apt",
     NULL},
    {"opt/app/.wh..wh..opq", "opaque_whiteout", 0644, 0, 0, 0, NULL, "opt/app",
     NULL},
    {"escape/evil", "file", 0644, 4, 0, 0, NULL, NULL, "../escape/evil"},
    {"abs/path", "file", 02600, 4, 1000, 1001, NULL, NULL, NULL},
    {"dev/null", "char", 0666, 0, 0, 0, NULL, NULL, NULL},
    {"run/fifo", "fifo", 0600, 0, 0, 0, NULL, NULL, NULL},
    {".wh..wh.plnk", "dir", 0700, 0, 0, 0, NULL, NULL, NULL},
};

static void
assert_file(const json_t *file, const struct expected_file *expected)
{
    ck_assert_str_eq(str_at(file, "path"), expected->path);
    ck_assert_str_eq(str_at(file, "type"), expected->type);
    ck_assert_int_eq(int_at(file, "mode"), expected->mode);
    ck_assert_int_eq(int_at(file, "size"), expected->size);
    ck_assert_int_eq(int_at(file, "uid"), expected->uid);
    ck_assert_int_eq(int_at(file, "gid"), expected->gid);
    if (expected->link == NULL)
        ck_assert_ptr_null(json_object_get(file, "link"));
    else
        ck_assert_str_eq(str_at(file, "link"), expected->link);
    if (expected->target == NULL)
        ck_assert_ptr_null(json_object_get(file, "target"));
    else
        ck_assert_str_eq(str_at(file, "target"), expected->target);
    if (expected->raw_path == NULL)
        ck_assert_ptr_null(json_object_get(file, "raw_path"));
    else
        ck_assert_str_eq(str_at(file, "raw_path"), expected->raw_path);
}

/* Names with ".." segments, as a layer that hides a file from path
 * patterns would write them. */
static const struct entry_spec parent_entries[] = {
    {"root/.aws/x/../credentials", SPEC_FILE, 0600, 5, NULL, 0, 0},
    {"../../etc/passwd", SPEC_FILE, 0644, 5, NULL, 0, 0},
    {"a/../b", SPEC_FILE, 0644, 0, NULL, 0, 0},
    {"./a/./b/", SPEC_DIR, 0755, 0, NULL, 0, 0},
    {"..", SPEC_DIR, 0755, 0, NULL, 0, 0},
    {"usr/bin/cred", SPEC_HARDLINK, 0600, 0,
     "usr/../root/.aws/x/../credentials", 0, 0},
    {"usr/bin/up", SPEC_HARDLINK, 0644, 0, "../../etc/passwd", 0, 0},
    {"usr/lib/sh", SPEC_SYMLINK, 0777, 0, "../bin/../sh", 0, 0},
    {"var/x/../.wh.cache", SPEC_FILE, 0644, 0, NULL, 0, 0},
    {"opt/app/sub/../.wh..wh..opq", SPEC_FILE, 0644, 0, NULL, 0, 0},
    {"../.wh.etc", SPEC_FILE, 0644, 0, NULL, 0, 0},
};

#define PARENT_COUNT (sizeof(parent_entries) / sizeof(parent_entries[0]))

static const struct expected_file parent_expected[PARENT_COUNT] = {
    {"root/.aws/credentials", "file", 0600, 5, 0, 0, NULL, NULL,
     "root/.aws/x/../credentials"},
    {"etc/passwd", "file", 0644, 5, 0, 0, NULL, NULL, "../../etc/passwd"},
    {"b", "file", 0644, 0, 0, 0, NULL, NULL, "a/../b"},
    {"a/b", "dir", 0755, 0, 0, 0, NULL, NULL, NULL},
    {".", "dir", 0755, 0, 0, 0, NULL, NULL, "../"},
    {"usr/bin/cred", "hardlink", 0600, 0, 0, 0, "root/.aws/credentials", NULL,
     NULL},
    {"usr/bin/up", "hardlink", 0644, 0, 0, 0, "etc/passwd", NULL, NULL},
    {"usr/lib/sh", "symlink", 0777, 0, 0, 0, "../bin/../sh", NULL, NULL},
    {"var/.wh.cache", "whiteout", 0644, 0, 0, 0, NULL, "var/cache",
     "var/x/../.wh.cache"},
    {"opt/app/.wh..wh..opq", "opaque_whiteout", 0644, 0, 0, 0, NULL, "opt/app",
     "opt/app/sub/../.wh..wh..opq"},
    {".wh.etc", "whiteout", 0644, 0, 0, 0, NULL, "etc", "../.wh.etc"},
};

/* Runs once per compression: _i is an enum compression. */
START_TEST(layer_list_sample)
{
    const char *media_type = compression_media_types[_i];
    const char *path =
        write_layer("sample.tar", _i, sample_entries, SAMPLE_COUNT);
    struct pg_error *err = NULL;
    struct stat st;
    json_t *layer;
    json_t *files;

    layer = inspector_list_layer(path, TEST_DIGEST, media_type, &loose_limits,
                                 &err);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(layer);
    ck_assert_int_eq(stat(path, &st), 0);

    ck_assert_str_eq(str_at(layer, "digest"), TEST_DIGEST);
    ck_assert_str_eq(str_at(layer, "media_type"), media_type);
    ck_assert_int_eq(int_at(layer, "size"), st.st_size);
    ck_assert_int_eq(int_at(layer, "entries"), SAMPLE_COUNT);
    ck_assert_int_ge(int_at(layer, "bytes"), 120 + 512 * SAMPLE_COUNT);
    files = json_object_get(layer, "files");
    ck_assert_uint_eq(json_array_size(files), SAMPLE_COUNT);
    for (size_t i = 0; i < SAMPLE_COUNT; i++)
        assert_file(json_array_get(files, i), &sample_expected[i]);
    json_decref(layer);
}
END_TEST

/* Paths and hard link targets are listed with ".." resolved as runtimes
 * resolve them, and a name with ".." keeps its raw form beside the path. */
START_TEST(layer_list_parent_segments)
{
    const char *path = write_layer("parent.tar", COMPRESSION_NONE,
                                   parent_entries, PARENT_COUNT);
    struct pg_error *err = NULL;
    json_t *layer;
    json_t *files;

    layer =
        inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &loose_limits, &err);
    ck_assert_ptr_null(err);
    files = json_object_get(layer, "files");
    ck_assert_uint_eq(json_array_size(files), PARENT_COUNT);
    for (size_t i = 0; i < PARENT_COUNT; i++)
        assert_file(json_array_get(files, i), &parent_expected[i]);
    json_decref(layer);
}
END_TEST

START_TEST(layer_list_compressed_size)
{
    const char *path = write_layer("sample.tar.gz", COMPRESSION_GZIP,
                                   sample_entries, SAMPLE_COUNT);
    struct pg_error *err = NULL;
    json_t *layer;

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &loose_limits,
                                 &err);
    ck_assert_ptr_nonnull(layer);
    ck_assert_int_lt(int_at(layer, "size"), int_at(layer, "bytes"));
    json_decref(layer);
}
END_TEST

START_TEST(layer_list_empty_tar)
{
    const char *path = write_layer("empty.tar.gz", COMPRESSION_GZIP, NULL, 0);
    struct pg_error *err = NULL;
    json_t *layer;

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &loose_limits,
                                 &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(layer, "entries"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(layer, "files")), 0);
    json_decref(layer);
}
END_TEST

/* Media types name the compression, but the bytes decide it. */
START_TEST(layer_list_mislabeled_compression)
{
    const char *path = write_layer("plain.tar", COMPRESSION_NONE,
                                   sample_entries, SAMPLE_COUNT);
    struct pg_error *err = NULL;
    json_t *layer;

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &loose_limits,
                                 &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(layer, "entries"), SAMPLE_COUNT);
    json_decref(layer);
}
END_TEST

/*
 * A pax "path" record carries a name in UTF-8. libarchive's pax writer
 * needs a UTF-8 locale to produce one, but the daemon reads in the "C"
 * locale, so the locale is switched back before the layer is listed.
 */
START_TEST(layer_list_utf8_path)
{
    static const struct entry_spec entries[] = {
        {"caf\xc3\xa9/na\xc3\xafve", SPEC_FILE, 0644, 0, NULL, 0, 0},
    };
    struct pg_error *err = NULL;
    const char *path;
    json_t *layer;

    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
    path = write_layer("utf8.tar", COMPRESSION_NONE, entries, 1);
    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C"));

    layer =
        inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &loose_limits, &err);
    ck_assert_ptr_null(err);
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(layer, "files"), 0), "path"),
        "caf\xc3\xa9/na\xc3\xafve");
    json_decref(layer);
}
END_TEST

/* A ustar header contains raw bytes, and a name that is not UTF-8 is
 * replaced. */
START_TEST(layer_list_latin1_path)
{
    const char *path = scratch_path("latin1.tar");
    struct archive *a = archive_write_new();
    struct archive_entry *entry = archive_entry_new();
    struct pg_error *err = NULL;
    json_t *layer;

    ck_assert_int_eq(archive_write_set_format_ustar(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    archive_entry_set_pathname(entry, "caf\xe9");
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, 0);
    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
    archive_entry_free(entry);
    writer_close(a);

    layer =
        inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &loose_limits, &err);
    ck_assert_ptr_null(err);
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(layer, "files"), 0), "path"),
        "caf\xef\xbf\xbd");
    json_decref(layer);
}
END_TEST

START_TEST(layer_entries_at_max)
{
    struct inspector_options limits = loose_limits;
    const char *path = write_many_files("ten.tar.gz", 10);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.entries_max = 10;
    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(layer, "entries"), 10);
    json_decref(layer);
}
END_TEST

START_TEST(layer_entries_over_max)
{
    struct inspector_options limits = loose_limits;
    const char *path = write_many_files("eleven.tar.gz", 11);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.entries_max = 10;
    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    ck_assert_ptr_null(layer);
    assert_error(err, 403, PG_ERR_DENIED,
                 "layer sha256:test has more than 10 entries "
                 "(inspector.layer_entries_max)");
    pg_error_free(err);
}
END_TEST

/* The decompressed size is measured once, then used as the limit and as
 * the limit plus one byte. */
START_TEST(layer_bytes_limit)
{
    static const struct entry_spec entries[] = {
        {"data", SPEC_FILE, 0644, 100 * 1024, NULL, 0, 0},
    };
    struct inspector_options limits = loose_limits;
    const char *path =
        write_layer("bytes.tar.gz", COMPRESSION_GZIP, entries, 1);
    struct pg_error *err = NULL;
    char expected[200];
    json_int_t bytes;
    json_t *layer;

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    bytes = int_at(layer, "bytes");
    ck_assert_int_ge(bytes, 100 * 1024 + 512);
    json_decref(layer);

    limits.bytes_max = (uint64_t)bytes;
    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(layer, "bytes"), bytes);
    json_decref(layer);

    limits.bytes_max = (uint64_t)bytes - 1;
    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    ck_assert_ptr_null(layer);
    snprintf(expected, sizeof(expected),
             "layer sha256:test has more than %lld decompressed bytes "
             "(inspector.layer_bytes_max)",
             (long long)bytes - 1);
    assert_error(err, 403, PG_ERR_DENIED, expected);
    pg_error_free(err);
}
END_TEST

START_TEST(layer_path_at_max)
{
    static const struct entry_spec entries[] = {
        {"abcdefghijklmnop", SPEC_FILE, 0644, 0, NULL, 0, 0},
    };
    struct inspector_options limits = loose_limits;
    const char *path = write_layer("path16.tar", COMPRESSION_NONE, entries, 1);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.path_length_max = 16;
    layer = inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &limits, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(int_at(layer, "entries"), 1);
    json_decref(layer);
}
END_TEST

START_TEST(layer_path_over_max)
{
    static const struct entry_spec entries[] = {
        {"ok", SPEC_FILE, 0644, 0, NULL, 0, 0},
        {"abcdefghijklmnopq", SPEC_FILE, 0644, 0, NULL, 0, 0},
    };
    struct inspector_options limits = loose_limits;
    const char *path = write_layer("path17.tar", COMPRESSION_NONE, entries, 2);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.path_length_max = 16;
    layer = inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &limits, &err);
    ck_assert_ptr_null(layer);
    assert_error(err, 403, PG_ERR_DENIED,
                 "entry 2 of layer sha256:test has a path of 17 bytes, more "
                 "than 16 (inspector.path_length_max)");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_link_over_max)
{
    static const struct entry_spec entries[] = {
        {"link", SPEC_SYMLINK, 0777, 0, "/aaaaaaaa/bbbbbbbb", 0, 0},
    };
    struct inspector_options limits = loose_limits;
    const char *path = write_layer("link.tar", COMPRESSION_NONE, entries, 1);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.path_length_max = 16;
    layer = inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &limits, &err);
    ck_assert_ptr_null(layer);
    assert_error(err, 403, PG_ERR_DENIED,
                 "entry 1 of layer sha256:test has a link target of 18 "
                 "bytes, more than 16 (inspector.path_length_max)");
    pg_error_free(err);
}
END_TEST

static const char *
write_zero_layer(const char *name, enum compression compression)
{
    static const struct entry_spec zeros = {
        "zeros", SPEC_FILE, 0644, 64 * MIB, NULL, 0, 0,
    };
    const char *path = scratch_path(name);
    struct archive *a = writer_open(path, compression);
    struct archive_entry *entry = archive_entry_new();

    archive_entry_set_pathname(entry, zeros.path);
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, zeros.mode);
    archive_entry_set_size(entry, zeros.size);
    ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
    writer_fill(a, zeros.size, 0, false);
    archive_entry_free(entry);
    writer_close(a);
    return path;
}

/* 64 MiB of zeros compress about a thousandfold with gzip. */
START_TEST(layer_ratio_over_max)
{
    struct inspector_options limits = loose_limits;
    const char *path = write_zero_layer("zeros.tar.gz", COMPRESSION_GZIP);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.ratio_max = 100;
    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    ck_assert_ptr_null(layer);
    assert_error(err, 403, PG_ERR_DENIED,
                 "layer sha256:test decompresses to more than 100 times its "
                 "compressed size (inspector.compression_ratio_max)");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_ratio_within_max)
{
    struct inspector_options limits = loose_limits;
    const char *path = write_zero_layer("zeros.tar.gz", COMPRESSION_GZIP);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.ratio_max = 100000;
    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &limits, &err);
    ck_assert_ptr_null(err);
    ck_assert_int_ge(int_at(layer, "bytes"), 64 * MIB + 512);
    json_decref(layer);
}
END_TEST

START_TEST(layer_ratio_zstd)
{
    struct inspector_options limits = loose_limits;
    const char *path = write_zero_layer("zeros.tar.zst", COMPRESSION_ZSTD);
    struct pg_error *err = NULL;
    json_t *layer;

    limits.ratio_max = 100;
    layer = inspector_list_layer(path, TEST_DIGEST, ZSTD_LAYER, &limits, &err);
    ck_assert_ptr_null(layer);
    assert_error(err, 403, PG_ERR_DENIED,
                 "layer sha256:test decompresses to more than 100 times its "
                 "compressed size (inspector.compression_ratio_max)");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_truncated_gzip)
{
    static const struct entry_spec noise = {
        "noise", SPEC_FILE, 0644, 256 * 1024, NULL, 0, 0,
    };
    const char *path = scratch_path("cut.tar.gz");
    struct archive *a = writer_open(path, COMPRESSION_GZIP);
    struct pg_error *err = NULL;
    struct stat st;
    json_t *layer;

    writer_add(a, &noise, true);
    writer_close(a);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &loose_limits,
                                 &err);
    ck_assert_ptr_null(layer);
    assert_error_prefix(err, 403, PG_ERR_DENIED,
                        "layer sha256:test is not a valid tar stream: ");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_random_bytes)
{
    static unsigned char bytes[64 * 1024];
    const char *path = scratch_path("random.bin");
    uint32_t state = 88172645u;
    struct pg_error *err = NULL;
    json_t *layer;

    for (size_t i = 0; i < sizeof(bytes); i++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes[i] = (unsigned char)state;
    }
    write_bytes(path, bytes, sizeof(bytes));

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &loose_limits,
                                 &err);
    ck_assert_ptr_null(layer);
    assert_error_prefix(err, 403, PG_ERR_DENIED,
                        "layer sha256:test is not a valid tar stream: ");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_zip_rejected)
{
    /* An empty zip archive: only the end-of-central-directory record. */
    static const unsigned char zip[22] = {0x50, 0x4b, 0x05, 0x06};
    const char *path = scratch_path("empty.zip");
    struct pg_error *err = NULL;
    json_t *layer;

    write_bytes(path, zip, sizeof(zip));
    layer =
        inspector_list_layer(path, TEST_DIGEST, TAR_LAYER, &loose_limits, &err);
    ck_assert_ptr_null(layer);
    assert_error_prefix(err, 403, PG_ERR_DENIED,
                        "layer sha256:test is not a valid tar stream: ");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_unknown_media_type)
{
    const char *path = write_layer("sample.tar", COMPRESSION_NONE,
                                   sample_entries, SAMPLE_COUNT);
    struct pg_error *err = NULL;
    json_t *layer;

    layer = inspector_list_layer(
        path, TEST_DIGEST, "application/vnd.in-toto+json", &loose_limits, &err);
    ck_assert_ptr_null(layer);
    assert_error(err, 403, PG_ERR_DENIED,
                 "layer sha256:test has media type "
                 "application/vnd.in-toto+json, which is not a tar layer "
                 "media type");
    pg_error_free(err);
}
END_TEST

START_TEST(layer_missing_file)
{
    struct pg_error *err = NULL;
    json_t *layer;

    layer = inspector_list_layer(scratch_path("absent"), TEST_DIGEST,
                                 GZIP_LAYER, &loose_limits, &err);
    ck_assert_ptr_null(layer);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 502);
    ck_assert_str_eq(err->code, PG_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err->message, "No such file or directory"));
    pg_error_free(err);
}
END_TEST

/* ---- the image config helpers ---- */

struct secret_case {
    const char *name;
    bool secret;
};

static const struct secret_case secret_cases[] = {
    {"DB_PASSWORD", true},     {"mysql_passwd", true},
    {"CLIENT_SECRET", true},   {"github_token", true},
    {"Api_Key", true},         {"STRIPE_APIKEY", true},
    {"PRIVATE_KEY_PEM", true}, {"privatekey", true},
    {"GCP_CREDENTIALS", true}, {"AWS_ACCESS_KEY_ID", true},
    {"accesskey", true},       {"PATH", false},
    {"API_URL", false},        {"KEYBOARD", false},
    {"HOME", false},           {"PASS", false},
};

START_TEST(env_secret_table)
{
    const struct secret_case *c = &secret_cases[_i];

    ck_assert_msg(env_name_is_secret(c->name, strlen(c->name)) == c->secret,
                  "%s: expected %s", c->name,
                  c->secret ? "secret" : "not secret");
}
END_TEST

static const char *const redact_cases[][2] = {
    {"ENV DB_PASSWORD=hunter2", "ENV DB_PASSWORD=<redacted>"},
    {"/bin/sh -c #(nop)  ENV API_KEY=abc PATH=/bin",
     "/bin/sh -c #(nop)  ENV API_KEY=<redacted> PATH=/bin"},
    {"RUN |2 GITHUB_TOKEN=ghp_x VERSION=1 /bin/sh -c make",
     "RUN |2 GITHUB_TOKEN=<redacted> VERSION=1 /bin/sh -c make"},
    {"--password=\"s3 cret\" --user=me", "--password=<redacted> --user=me"},
    {"SECRET='a b", "SECRET=<redacted>"},
    {"TOKEN=", "TOKEN=<redacted>"},
    {"a=b c==d", "a=b c==d"},
    {"=x", "=x"},
    {"", ""},
};

START_TEST(redact_table)
{
    const char *text = redact_cases[_i][0];
    json_t *redacted = redact_assignments(text, strlen(text));

    ck_assert_str_eq(json_string_value(redacted), redact_cases[_i][1]);
    json_decref(redacted);
}
END_TEST

/* Returns n nested arrays, such as "[[]]" for 2, in a new string. */
static char *
nested_arrays(size_t n)
{
    char *text = malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++) {
        text[i] = '[';
        text[2 * n - 1 - i] = ']';
    }
    text[2 * n] = '\0';
    return text;
}

START_TEST(depth_at_max)
{
    char *text = nested_arrays(PG_JSON_MAX_DEPTH);

    ck_assert(pg_json_depth_within(text, strlen(text), PG_JSON_MAX_DEPTH));
    free(text);
}
END_TEST

START_TEST(depth_over_max)
{
    char *text = nested_arrays(PG_JSON_MAX_DEPTH + 1);

    ck_assert(!pg_json_depth_within(text, strlen(text), PG_JSON_MAX_DEPTH));
    free(text);
}
END_TEST

START_TEST(depth_ignores_strings)
{
    const char *text = "{\"a\": \"[[[[[[\\\"[[[[\"}";

    ck_assert(pg_json_depth_within(text, strlen(text), 1));
}
END_TEST

/* ---- documents ---- */

static const char document_manifest[] =
    "{\"schemaVersion\": 2, "
    "\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", "
    "\"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\","
    " \"digest\": \"sha256:c0\", \"size\": 1000}, "
    "\"layers\": ["
    "{\"mediaType\": \"" GZIP_LAYER "\", \"digest\": \"sha256:l0\", "
    "\"size\": 111}, "
    "{\"mediaType\": \"" ZSTD_LAYER "\", \"digest\": \"sha256:l1\", "
    "\"size\": 222}], "
    "\"annotations\": {\"org.opencontainers.image.source\": "
    "\"https://example.com/app\"}}";

static const char document_config[] =
    "{\"created\": \"2024-05-01T10:00:00Z\", \"architecture\": \"arm64\", "
    "\"variant\": \"v8\", \"os\": \"linux\", "
    "\"config\": {\"User\": \"nobody\", "
    "\"Env\": [\"PATH=/usr/bin:/bin\", \"DB_PASSWORD=hunter2\", "
    "\"github_token=ghp_abc\", \"NOVALUE\", \"EQUALS=a=b\"], "
    "\"ExposedPorts\": {\"8080/tcp\": {}, \"443/tcp\": {}, \"80/tcp\": {}}, "
    "\"Volumes\": {\"/var/lib/data\": {}, \"/cache\": {}}, "
    "\"Labels\": {\"maintainer\": \"team@example.com\", "
    "\"db.password\": \"hunter2\"}, "
    "\"Entrypoint\": [\"/entrypoint.sh\"], "
    "\"Cmd\": [\"serve\", \"--port\", \"8080\", \"--token=hunter2\"], "
    "\"WorkingDir\": \"/app\"}, "
    "\"rootfs\": {\"type\": \"layers\", "
    "\"diff_ids\": [\"sha256:d0\", \"sha256:d1\"]}, "
    "\"history\": ["
    "{\"created\": \"2024-05-01T09:00:00Z\", "
    "\"created_by\": \"ENV DB_PASSWORD=hunter2 PATH=/bin\", "
    "\"comment\": \"base\"}, "
    "{\"created_by\": \"ENV X=1\", \"empty_layer\": true}]}";

static const char document_layer0[] =
    "{\"digest\": \"sha256:l0\", \"media_type\": \"" GZIP_LAYER "\", "
    "\"size\": 111, \"entries\": 5, \"bytes\": 10240, \"files\": ["
    "{\"path\": \"usr/bin/sudo\", \"type\": \"file\", \"mode\": 2541, "
    "\"size\": 100, \"uid\": 0, \"gid\": 0}, "
    "{\"path\": \"usr/bin/passwd\", \"type\": \"hardlink\", \"mode\": 1517, "
    "\"size\": 0, \"uid\": 0, \"gid\": 0, \"link\": \"usr/bin/chfn\"}, "
    "{\"path\": \"tmp\", \"type\": \"dir\", \"mode\": 1023, \"size\": 0, "
    "\"uid\": 0, \"gid\": 0}, "
    "{\"path\": \"srv\", \"type\": \"dir\", \"mode\": 511, \"size\": 0, "
    "\"uid\": 0, \"gid\": 0}, "
    "{\"path\": \"usr/bin/sh\", \"type\": \"symlink\", \"mode\": 511, "
    "\"size\": 0, \"uid\": 0, \"gid\": 0, \"link\": \"bash\"}]}";

static const char document_layer1[] =
    "{\"digest\": \"sha256:l1\", \"media_type\": \"" ZSTD_LAYER "\", "
    "\"size\": 222, \"entries\": 4, \"bytes\": 4096, \"files\": ["
    "{\"path\": \"var/.wh.x\", \"type\": \"whiteout\", \"mode\": 438, "
    "\"size\": 0, \"uid\": 0, \"gid\": 0, \"target\": \"var/x\"}, "
    "{\"path\": \"usr/bin/sudo\", \"type\": \"file\", \"mode\": 2541, "
    "\"size\": 100, \"uid\": 0, \"gid\": 0}, "
    "{\"path\": \"data/file\", \"type\": \"file\", \"mode\": 438, "
    "\"size\": 7, \"uid\": 1000, \"gid\": 1000}, "
    "{\"path\": \"app/shared\", \"type\": \"file\", \"mode\": 436, "
    "\"size\": 1, \"uid\": 0, \"gid\": 0}]}";

static const char document_reference[] =
    "{\"registry\": \"docker.io\", \"repository\": \"library/app\", "
    "\"reference\": \"1.0\"}";

static json_t *
build_sample_document(void)
{
    json_t *manifest = parse(document_manifest);
    json_t *reference = parse(document_reference);
    json_t *layers[2] = {parse(document_layer0), parse(document_layer1)};
    struct pg_error *err = NULL;
    json_t *document;

    document = inspector_build_document("sha256:m", manifest, document_config,
                                        strlen(document_config), layers, 2,
                                        reference, &err);
    ck_assert_msg(err == NULL, "%s", err != NULL ? err->message : "");
    ck_assert_ptr_nonnull(document);
    json_decref(layers[1]);
    json_decref(layers[0]);
    json_decref(reference);
    json_decref(manifest);
    return document;
}

/* ---- secrets in the image config ---- */

/* Writes prefix and then count characters cycling through a-z and 0-9,
 * so that no token-shaped literal sits in the source. */
static void
token_build(char *out, size_t size, const char *prefix, size_t count)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(prefix);

    ck_assert_uint_lt(len + count, size);
    memcpy(out, prefix, len);
    for (size_t i = 0; i < count; i++)
        out[len + i] = alphabet[(i * 7) % 36];
    out[len + count] = '\0';
}

START_TEST(config_secrets_reported_and_redacted)
{
    char npm[64], github[64], config[1024];
    json_t *manifest = parse(document_manifest);
    json_t *layers[2] = {parse(document_layer0), parse(document_layer1)};
    struct pg_error *err = NULL;
    json_t *document, *section, *secrets;
    char *text;

    token_build(npm, sizeof(npm), "npm_", 36);
    token_build(github, sizeof(github), "ghp_", 36);
    snprintf(config, sizeof(config),
             "{\"os\": \"linux\", \"architecture\": \"amd64\", "
             "\"config\": {\"Labels\": {\"ci\": \"%s\", \"team\": \"web\"}, "
             "\"Cmd\": [\"serve\", \"%s\"]}, "
             "\"rootfs\": {\"type\": \"layers\", "
             "\"diff_ids\": [\"sha256:d0\", \"sha256:d1\"]}, "
             "\"history\": [{\"created_by\": \"RUN echo %s > /etc/ci\"}]}",
             npm, github, npm);
    document = inspector_build_document("sha256:m", manifest, config,
                                        strlen(config), layers, 2, NULL, &err);
    ck_assert_ptr_nonnull(document);

    ck_assert_int_eq(inspector_document_scan_config(document, config,
                                                    strlen(config), NULL,
                                                    &err),
                     0);
    section = json_object_get(document, "config");
    ck_assert_str_eq(str_at(json_object_get(section, "labels"), "ci"),
                     "<redacted>");
    ck_assert_str_eq(str_at(json_object_get(section, "labels"), "team"),
                     "web");
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(section, "cmd"), 1)),
        "<redacted>");
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(section, "history"), 0),
               "created_by"),
        "<redacted>");
    secrets = json_object_get(document, "secrets");
    ck_assert_uint_eq(json_array_size(secrets), 2);
    ck_assert_str_eq(str_at(json_array_get(secrets, 0), "source"), "config");
    ck_assert(json_is_null(json_object_get(json_array_get(secrets, 0),
                                           "layer")));
    ck_assert_int_eq(
        int_at(json_object_get(document, "summary"), "secrets"), 2);
    text = json_dumps(document, 0);
    ck_assert_ptr_null(strstr(text, npm));
    ck_assert_ptr_null(strstr(text, github));

    free(text);
    json_decref(document);
    json_decref(layers[1]);
    json_decref(layers[0]);
    json_decref(manifest);
}
END_TEST

/* Keys that JSON escapes break up in the raw bytes, in member names and
 * in the manifest's annotations are found once decoded. */
START_TEST(config_secrets_after_escapes)
{
    char key_id[32], escaped[64], github[64], config[1024], manifest[1024];
    json_t *layers[2] = {parse(document_layer0), parse(document_layer1)};
    struct pg_error *err = NULL;
    json_t *manifest_json, *document, *secrets, *labels;
    char *text;

    snprintf(key_id, sizeof(key_id), "AKIA%s", "QWERTYUIOPASDFGH");
    /* "\u0041" is "A", so the raw bytes never spell AKIA. */
    snprintf(escaped, sizeof(escaped), "\\u0041KIA%s", "ZXCVBNMQWERTYUIO");
    token_build(github, sizeof(github), "ghp_", 36);
    snprintf(config, sizeof(config),
             "{\"os\": \"linux\", \"architecture\": \"amd64\", "
             "\"config\": {\"Labels\": {\"%s\": \"x\", \"b\": \"%s\"}}, "
             "\"rootfs\": {\"type\": \"layers\", "
             "\"diff_ids\": [\"sha256:d0\", \"sha256:d1\"]}, "
             "\"history\": [{\"created_by\": "
             "\"RUN cat <<EOF\\n%s\\nEOF\"}]}",
             github, escaped, key_id);
    snprintf(manifest, sizeof(manifest),
             "{\"schemaVersion\": 2, \"mediaType\": "
             "\"application/vnd.oci.image.manifest.v1+json\", "
             "\"config\": {\"mediaType\": "
             "\"application/vnd.oci.image.config.v1+json\", "
             "\"digest\": \"sha256:c0\", \"size\": 1}, "
             "\"layers\": [{\"mediaType\": \"" GZIP_LAYER "\", "
             "\"digest\": \"sha256:l0\", \"size\": 111}, "
             "{\"mediaType\": \"" ZSTD_LAYER "\", "
             "\"digest\": \"sha256:l1\", \"size\": 222}], "
             "\"annotations\": {\"ci.token\": \"%s\"}}",
             github);
    manifest_json = parse(manifest);
    document = inspector_build_document("sha256:m", manifest_json, config,
                                        strlen(config), layers, 2, NULL, &err);
    ck_assert_msg(document != NULL, "%s", err != NULL ? err->message : "");

    ck_assert_int_eq(inspector_document_scan_config(document, config,
                                                    strlen(config), NULL,
                                                    &err),
                     0);
    secrets = json_object_get(document, "secrets");
    /* github-token (a label name) and aws-access-key-id (the escaped
     * label and the heredoc) from the config, github-token from the
     * manifest. */
    ck_assert_uint_eq(json_array_size(secrets), 3);
    ck_assert_str_eq(str_at(json_array_get(secrets, 2), "source"),
                     "manifest");
    labels = json_object_get(json_object_get(document, "config"), "labels");
    ck_assert_str_eq(str_at(labels, "<redacted>"), "x");
    ck_assert_str_eq(str_at(labels, "b"), "<redacted>");
    text = json_dumps(document, 0);
    ck_assert_ptr_null(strstr(text, github));
    ck_assert_ptr_null(strstr(text, key_id));
    ck_assert_ptr_null(strstr(text, "ZXCVBNMQWERTYUIO"));

    free(text);
    json_decref(document);
    json_decref(manifest_json);
    json_decref(layers[1]);
    json_decref(layers[0]);
}
END_TEST

START_TEST(document_header)
{
    json_t *document = build_sample_document();
    json_t *source = json_object_get(document, "source");
    json_t *manifest = json_object_get(document, "manifest");

    ck_assert_int_eq(int_at(document, "document_version"), 2);
    ck_assert_str_eq(str_at(document, "inspector_version"), "3");
    ck_assert_str_eq(str_at(document, "kind"), "image");
    ck_assert_str_eq(str_at(source, "registry"), "docker.io");
    ck_assert_str_eq(str_at(source, "repository"), "library/app");
    ck_assert_str_eq(str_at(source, "reference"), "1.0");
    ck_assert_str_eq(str_at(manifest, "digest"), "sha256:m");
    ck_assert_str_eq(str_at(manifest, "media_type"),
                     "application/vnd.oci.image.manifest.v1+json");
    ck_assert_str_eq(str_at(manifest, "config_digest"), "sha256:c0");
    ck_assert_str_eq(str_at(manifest, "config_media_type"),
                     "application/vnd.oci.image.config.v1+json");
    ck_assert_str_eq(str_at(json_object_get(manifest, "annotations"),
                            "org.opencontainers.image.source"),
                     "https://example.com/app");
    ck_assert_str_eq(str_at(json_object_get(document, "inspection"), "status"),
                     "ok");
    json_decref(document);
}
END_TEST

START_TEST(document_platform)
{
    json_t *document = build_sample_document();
    json_t *platform = json_object_get(document, "platform");

    ck_assert_str_eq(str_at(platform, "os"), "linux");
    ck_assert_str_eq(str_at(platform, "architecture"), "arm64");
    ck_assert_str_eq(str_at(platform, "variant"), "v8");
    json_decref(document);
}
END_TEST

START_TEST(document_config_fields)
{
    json_t *document = build_sample_document();
    json_t *config = json_object_get(document, "config");
    json_t *ports = json_object_get(config, "exposed_ports");
    json_t *volumes = json_object_get(config, "volumes");
    json_t *cmd = json_object_get(config, "cmd");

    ck_assert_str_eq(str_at(config, "user"), "nobody");
    ck_assert_uint_eq(json_array_size(ports), 3);
    ck_assert_str_eq(json_string_value(json_array_get(ports, 0)), "443/tcp");
    ck_assert_str_eq(json_string_value(json_array_get(ports, 1)), "80/tcp");
    ck_assert_str_eq(json_string_value(json_array_get(ports, 2)), "8080/tcp");
    ck_assert_uint_eq(json_array_size(volumes), 2);
    ck_assert_str_eq(json_string_value(json_array_get(volumes, 0)), "/cache");
    ck_assert_str_eq(json_string_value(json_array_get(volumes, 1)),
                     "/var/lib/data");
    ck_assert_str_eq(str_at(json_object_get(config, "labels"), "maintainer"),
                     "team@example.com");
    ck_assert_str_eq(str_at(json_object_get(config, "labels"), "db.password"),
                     "<redacted>");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(config, "entrypoint"), 0)),
                     "/entrypoint.sh");
    ck_assert_uint_eq(json_array_size(cmd), 4);
    ck_assert_str_eq(json_string_value(json_array_get(cmd, 1)), "--port");
    ck_assert_str_eq(json_string_value(json_array_get(cmd, 3)),
                     "--token=<redacted>");
    ck_assert_str_eq(str_at(config, "working_dir"), "/app");
    ck_assert_str_eq(str_at(config, "created"), "2024-05-01T10:00:00Z");
    json_decref(document);
}
END_TEST

START_TEST(document_env_redaction)
{
    static const char *const expected[][2] = {
        {"PATH", "/usr/bin:/bin"},
        {"DB_PASSWORD", "<redacted>"},
        {"github_token", "<redacted>"},
        {"NOVALUE", ""},
        {"EQUALS", "a=b"},
    };
    json_t *document = build_sample_document();
    json_t *env = json_object_get(json_object_get(document, "config"), "env");
    char *dump;

    ck_assert_uint_eq(json_array_size(env), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *item = json_array_get(env, i);

        ck_assert_str_eq(str_at(item, "name"), expected[i][0]);
        ck_assert_str_eq(str_at(item, "value"), expected[i][1]);
    }
    dump = json_dumps(document, 0);
    ck_assert_ptr_null(strstr(dump, "hunter2"));
    free(dump);
    json_decref(document);
}
END_TEST

START_TEST(document_history)
{
    json_t *document = build_sample_document();
    json_t *history =
        json_object_get(json_object_get(document, "config"), "history");
    json_t *first = json_array_get(history, 0);
    json_t *second = json_array_get(history, 1);

    ck_assert_uint_eq(json_array_size(history), 2);
    ck_assert_str_eq(str_at(first, "created"), "2024-05-01T09:00:00Z");
    ck_assert_str_eq(str_at(first, "created_by"),
                     "ENV DB_PASSWORD=<redacted> PATH=/bin");
    ck_assert(json_is_false(json_object_get(first, "empty_layer")));
    ck_assert_str_eq(str_at(first, "comment"), "base");
    ck_assert_str_eq(str_at(second, "created"), "");
    ck_assert_str_eq(str_at(second, "created_by"), "ENV X=1");
    ck_assert(json_is_true(json_object_get(second, "empty_layer")));
    ck_assert_str_eq(str_at(second, "comment"), "");
    json_decref(document);
}
END_TEST

START_TEST(document_layers)
{
    json_t *document = build_sample_document();
    json_t *diff_ids =
        json_object_get(json_object_get(document, "rootfs"), "diff_ids");
    json_t *layers = json_object_get(document, "layers");
    json_t *second = json_array_get(layers, 1);

    ck_assert_uint_eq(json_array_size(diff_ids), 2);
    ck_assert_str_eq(json_string_value(json_array_get(diff_ids, 1)),
                     "sha256:d1");
    ck_assert_uint_eq(json_array_size(layers), 2);
    ck_assert_int_eq(int_at(second, "index"), 1);
    ck_assert_str_eq(str_at(second, "digest"), "sha256:l1");
    ck_assert_str_eq(str_at(second, "media_type"), ZSTD_LAYER);
    ck_assert_int_eq(int_at(second, "size"), 222);
    ck_assert_int_eq(int_at(second, "entries"), 4);
    ck_assert_int_eq(int_at(second, "bytes"), 4096);
    json_decref(document);
}
END_TEST

START_TEST(document_files)
{
    json_t *document = build_sample_document();
    json_t *files = json_object_get(document, "files");
    json_t *hardlink = json_array_get(files, 1);
    json_t *whiteout = json_array_get(files, 5);
    json_t *last = json_array_get(files, 7);

    ck_assert_uint_eq(json_array_size(files), 9);
    ck_assert_str_eq(str_at(hardlink, "path"), "usr/bin/passwd");
    ck_assert_int_eq(int_at(hardlink, "layer"), 0);
    ck_assert_str_eq(str_at(hardlink, "type"), "hardlink");
    ck_assert_int_eq(int_at(hardlink, "mode"), 02755);
    ck_assert_str_eq(str_at(hardlink, "link"), "usr/bin/chfn");
    ck_assert_ptr_null(json_object_get(hardlink, "target"));
    ck_assert_int_eq(int_at(whiteout, "layer"), 1);
    ck_assert_str_eq(str_at(whiteout, "target"), "var/x");
    ck_assert_ptr_null(json_object_get(whiteout, "link"));
    ck_assert(json_is_true(json_object_get(hardlink, "present")));
    ck_assert(json_is_false(json_object_get(whiteout, "present")));
    /* Layer 1 replaces usr/bin/sudo. */
    ck_assert(
        json_is_false(json_object_get(json_array_get(files, 0), "present")));
    ck_assert(
        json_is_true(json_object_get(json_array_get(files, 6), "present")));
    ck_assert_str_eq(str_at(last, "path"), "data/file");
    ck_assert_int_eq(int_at(last, "size"), 7);
    ck_assert_int_eq(int_at(last, "uid"), 1000);
    ck_assert_int_eq(int_at(last, "gid"), 1000);
    json_decref(document);
}
END_TEST

START_TEST(document_summary)
{
    json_t *document = build_sample_document();
    json_t *summary = json_object_get(document, "summary");
    json_t *setuid = json_object_get(summary, "setuid_files");
    json_t *writable = json_object_get(summary, "world_writable");

    ck_assert_int_eq(int_at(summary, "layers"), 2);
    ck_assert_int_eq(int_at(summary, "files"), 9);
    /* Everything but layer 0's usr/bin/sudo and the whiteout. */
    ck_assert_int_eq(int_at(summary, "present_files"), 7);
    ck_assert_int_eq(int_at(summary, "packages"), 0);
    ck_assert_int_eq(int_at(summary, "secrets"), 0);
    ck_assert_uint_eq(json_array_size(setuid), 2);
    ck_assert_str_eq(json_string_value(json_array_get(setuid, 0)),
                     "usr/bin/passwd");
    ck_assert_str_eq(json_string_value(json_array_get(setuid, 1)),
                     "usr/bin/sudo");
    ck_assert_uint_eq(json_array_size(writable), 2);
    ck_assert_str_eq(json_string_value(json_array_get(writable, 0)), "srv");
    ck_assert_str_eq(json_string_value(json_array_get(writable, 1)),
                     "data/file");
    json_decref(document);
}
END_TEST

/* A config with only the required fields gets every default. */
START_TEST(document_config_defaults)
{
    static const char config[] =
        "{\"architecture\": \"amd64\", \"os\": \"linux\", "
        "\"config\": {\"Entrypoint\": null, \"Labels\": null}}";
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;
    json_t *document;
    json_t *section;

    document = inspector_build_document("sha256:m", manifest, config,
                                        strlen(config), NULL, 0, NULL, &err);
    ck_assert_ptr_null(err);
    section = json_object_get(document, "config");
    ck_assert_ptr_null(
        json_object_get(json_object_get(document, "platform"), "variant"));
    ck_assert_str_eq(str_at(section, "user"), "");
    ck_assert_uint_eq(json_array_size(json_object_get(section, "env")), 0);
    ck_assert_uint_eq(json_object_size(json_object_get(section, "labels")), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(section, "entrypoint")),
                      0);
    ck_assert_str_eq(str_at(section, "created"), "");
    ck_assert_uint_eq(json_array_size(json_object_get(section, "history")), 0);
    ck_assert_str_eq(
        str_at(json_object_get(document, "manifest"), "media_type"),
        "application/vnd.oci.image.manifest.v1+json");
    ck_assert_str_eq(str_at(json_object_get(document, "source"), "registry"),
                     "");
    ck_assert_int_eq(int_at(json_object_get(document, "summary"), "files"), 0);
    json_decref(document);
    json_decref(manifest);
}
END_TEST

struct bad_config_case {
    const char *config;
    const char *message;
};

static const struct bad_config_case bad_config_cases[] = {
    {"{\"config\": {\"User\": 0}}",
     "image sha256:m: field config.User of the image config is an integer, "
     "but must be a string"},
    {"{\"config\": {\"Env\": [\"A=1\", 2]}}",
     "image sha256:m: field config.Env[1] of the image config is an "
     "integer, but must be a string"},
    {"{\"config\": {\"ExposedPorts\": [\"80/tcp\"]}}",
     "image sha256:m: field config.ExposedPorts of the image config is an "
     "array, but must be an object"},
    {"{\"config\": {\"Labels\": {\"a\": true}}}",
     "image sha256:m: field config.Labels[\"a\"] of the image config is a "
     "boolean, but must be a string"},
    {"{\"config\": {\"Cmd\": \"sh -c true\"}}",
     "image sha256:m: field config.Cmd of the image config is a string, "
     "but must be an array"},
    {"{\"config\": []}",
     "image sha256:m: field config of the image config is an array, but "
     "must be an object"},
    {"{\"os\": 1.5}",
     "image sha256:m: field os of the image config is a real number, but "
     "must be a string"},
    {"{\"variant\": 7}",
     "image sha256:m: field variant of the image config is an integer, but "
     "must be a string"},
    {"{\"history\": [{\"empty_layer\": \"yes\"}]}",
     "image sha256:m: field history[0].empty_layer of the image config is "
     "a string, but must be a boolean"},
    {"{\"history\": [\"x\"]}",
     "image sha256:m: field history[0] of the image config is a string, "
     "but must be an object"},
    {"{\"rootfs\": {\"diff_ids\": \"sha256:d0\"}}",
     "image sha256:m: field rootfs.diff_ids of the image config is a "
     "string, but must be an array"},
    {"[]", "image sha256:m: field (top level) of the image config is an array, "
           "but must be an object"},
    {"{\"rootfs\": {\"diff_ids\": [\"sha256:d0\"]}}",
     "image sha256:m: image config lists 1 rootfs.diff_ids but the "
     "manifest has 0 layers"},
};

START_TEST(document_bad_config)
{
    const struct bad_config_case *c = &bad_config_cases[_i];
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;
    json_t *document;

    document = inspector_build_document("sha256:m", manifest, c->config,
                                        strlen(c->config), NULL, 0, NULL, &err);
    ck_assert_ptr_null(document);
    assert_error(err, 403, PG_ERR_DENIED, c->message);
    pg_error_free(err);
    json_decref(manifest);
}
END_TEST

/* jansson words the parse error, so only the part before it is checked. */
START_TEST(document_config_duplicate_key)
{
    static const char config[] = "{\"os\": \"linux\", \"os\": \"linux\"}";
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;

    ck_assert_ptr_null(inspector_build_document(
        "sha256:m", manifest, config, strlen(config), NULL, 0, NULL, &err));
    assert_error_prefix(err, 403, PG_ERR_DENIED,
                        "image sha256:m: image config is not valid JSON: "
                        "duplicate object key");
    pg_error_free(err);
    json_decref(manifest);
}
END_TEST

/* ---- member names that runtimes read without regard to case ---- */

static const struct {
    const char *name;
    const char *field;
    bool matches;
} name_match_cases[] = {
    {"User", "User", true},
    {"user", "User", true},
    {"USER", "User", true},
    {"U" LONG_S_UTF8 "er", "User", true},
    {"u" LONG_S_UTF8 "ER", "User", true},
    {"Wor" KELVIN_SIGN_UTF8 "ingDir", "WorkingDir", true},
    {"DIFF_IDS", "diff_ids", true},
    {"Users", "User", false},
    {"Use", "User", false},
    {"", "User", false},
    {"U_er", "User", false},
    {"\303\234ser", "User", false},
    {"U" LONG_S_UTF8, "Us", true},
    {"U\xc5", "Us", false},
    {"diff-ids", "diff_ids", false},
};

START_TEST(name_match_table)
{
    ck_assert_msg(member_name_matches(name_match_cases[_i].name,
                                      name_match_cases[_i].field) ==
                      name_match_cases[_i].matches,
                  "%s against %s", name_match_cases[_i].name,
                  name_match_cases[_i].field);
}
END_TEST

#define AMBIGUOUS_REASON                                                       \
    "; container runtimes read such keys without regard to case, so the "      \
    "value that applies is ambiguous"

struct ambiguous_case {
    const char *json;
    const char *message;
};

/* Image configs with two members that runtimes read as one field. */
static const struct ambiguous_case ambiguous_config_cases[] = {
    {"{\"config\": {\"User\": \"1000\", \"user\": \"0\"}}",
     "image sha256:m: image config has both \"User\" and \"user\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {\"user\": \"1000\", \"USER\": \"0\"}}",
     "image sha256:m: image config has both \"user\" and \"USER\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {\"User\": \"1000\", \"U" LONG_S_UTF8 "er\": \"0\"}}",
     "image sha256:m: image config has both \"User\" and \"U" LONG_S_UTF8
     "er\" "
     "at config" AMBIGUOUS_REASON},
    {"{\"config\": {\"User\": \"1000\"}, \"Config\": {\"User\": \"0\"}}",
     "image sha256:m: image config has both \"config\" and \"Config\" at "
     "the top level" AMBIGUOUS_REASON},
    {"{\"config\": {\"Env\": [], \"ENV\": [\"LD_PRELOAD=/x.so\"]}}",
     "image sha256:m: image config has both \"Env\" and \"ENV\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {\"ExposedPorts\": {}, \"exposedPorts\": {}}}",
     "image sha256:m: image config has both \"ExposedPorts\" and "
     "\"exposedPorts\" at config" AMBIGUOUS_REASON},
    {"{\"config\": {\"Volumes\": {}, \"volumes\": {}}}",
     "image sha256:m: image config has both \"Volumes\" and \"volumes\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {\"Labels\": {}, \"labels\": {}}}",
     "image sha256:m: image config has both \"Labels\" and \"labels\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {\"Entrypoint\": [], \"EntryPoint\": [\"/bin/sh\"]}}",
     "image sha256:m: image config has both \"Entrypoint\" and "
     "\"EntryPoint\" at config" AMBIGUOUS_REASON},
    {"{\"config\": {\"Cmd\": [], \"cmd\": [\"sh\"]}}",
     "image sha256:m: image config has both \"Cmd\" and \"cmd\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {\"WorkingDir\": \"/\", "
     "\"Wor" KELVIN_SIGN_UTF8 "ingDir\": \"/root\"}}",
     "image sha256:m: image config has both \"WorkingDir\" and "
     "\"Wor" KELVIN_SIGN_UTF8 "ingDir\" at config" AMBIGUOUS_REASON},
    {"{\"os\": \"linux\", \"OS\": \"windows\"}",
     "image sha256:m: image config has both \"os\" and \"OS\" at the top "
     "level" AMBIGUOUS_REASON},
    {"{\"architecture\": \"amd64\", \"Architecture\": \"arm64\"}",
     "image sha256:m: image config has both \"architecture\" and "
     "\"Architecture\" at the top level" AMBIGUOUS_REASON},
    {"{\"variant\": \"v7\", \"Variant\": \"v8\"}",
     "image sha256:m: image config has both \"variant\" and \"Variant\" at "
     "the top level" AMBIGUOUS_REASON},
    {"{\"created\": \"2024\", \"Created\": \"2025\"}",
     "image sha256:m: image config has both \"created\" and \"Created\" at "
     "the top level" AMBIGUOUS_REASON},
    {"{\"history\": [], \"History\": []}",
     "image sha256:m: image config has both \"history\" and \"History\" at "
     "the top level" AMBIGUOUS_REASON},
    {"{\"rootfs\": {}, \"RootFS\": {}}",
     "image sha256:m: image config has both \"rootfs\" and \"RootFS\" at "
     "the top level" AMBIGUOUS_REASON},
    {"{\"rootfs\": {\"diff_ids\": [], \"Diff_IDs\": []}}",
     "image sha256:m: image config has both \"diff_ids\" and \"Diff_IDs\" "
     "at rootfs" AMBIGUOUS_REASON},
    {"{\"history\": [{}, {\"created_by\": \"a\", \"Created_By\": \"b\"}]}",
     "image sha256:m: image config has both \"created_by\" and "
     "\"Created_By\" at history[1]" AMBIGUOUS_REASON},
    {"{\"history\": [{\"created\": \"a\", \"CREATED\": \"b\"}]}",
     "image sha256:m: image config has both \"created\" and \"CREATED\" at "
     "history[0]" AMBIGUOUS_REASON},
    {"{\"history\": [{\"empty_layer\": true, \"Empty_Layer\": false}]}",
     "image sha256:m: image config has both \"empty_layer\" and "
     "\"Empty_Layer\" at history[0]" AMBIGUOUS_REASON},
    {"{\"history\": [{\"comment\": \"a\", \"Comment\": \"b\"}]}",
     "image sha256:m: image config has both \"comment\" and \"Comment\" at "
     "history[0]" AMBIGUOUS_REASON},
};

START_TEST(config_ambiguous_key)
{
    const struct ambiguous_case *c = &ambiguous_config_cases[_i];
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;
    json_t *document;

    document = inspector_build_document("sha256:m", manifest, c->json,
                                        strlen(c->json), NULL, 0, NULL, &err);
    ck_assert_ptr_null(document);
    assert_error(err, 403, PG_ERR_DENIED, c->message);
    pg_error_free(err);
    json_decref(manifest);
}
END_TEST

/* Manifests with two members that runtimes read as one field. */
static const struct ambiguous_case ambiguous_manifest_cases[] = {
    {"{\"config\": {}, \"layers\": [], \"Layers\": []}",
     "image sha256:m: manifest has both \"layers\" and \"Layers\" at the "
     "top level" AMBIGUOUS_REASON},
    {"{\"config\": {}, \"CONFIG\": {}, \"layers\": []}",
     "image sha256:m: manifest has both \"config\" and \"CONFIG\" at the "
     "top level" AMBIGUOUS_REASON},
    {"{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", "
     "\"MediaType\": \"application/vnd.oci.image.index.v1+json\", "
     "\"config\": {}, \"layers\": []}",
     "image sha256:m: manifest has both \"mediaType\" and \"MediaType\" at "
     "the top level" AMBIGUOUS_REASON},
    {"{\"config\": {}, \"layers\": [], \"annotations\": {}, "
     "\"Annotations\": {}}",
     "image sha256:m: manifest has both \"annotations\" and \"Annotations\" "
     "at the top level" AMBIGUOUS_REASON},
    {"{\"config\": {\"digest\": \"sha256:c0\", \"Digest\": \"sha256:c1\"}, "
     "\"layers\": []}",
     "image sha256:m: manifest has both \"digest\" and \"Digest\" at "
     "config" AMBIGUOUS_REASON},
    {"{\"config\": {}, \"layers\": [{\"digest\": \"sha256:l0\"}, "
     "{\"digest\": \"sha256:l1\", \"DIGEST\": \"sha256:l2\"}]}",
     "image sha256:m: manifest has both \"digest\" and \"DIGEST\" at "
     "layers[1]" AMBIGUOUS_REASON},
    {"{\"config\": {}, \"layers\": [{\"mediaType\": \"" GZIP_LAYER "\", "
     "\"mediatype\": \"" TAR_LAYER "\"}]}",
     "image sha256:m: manifest has both \"mediaType\" and \"mediatype\" at "
     "layers[0]" AMBIGUOUS_REASON},
    {"{\"config\": {}, \"layers\": [{\"size\": 1, \"Size\": 2}]}",
     "image sha256:m: manifest has both \"size\" and \"Size\" at "
     "layers[0]" AMBIGUOUS_REASON},
};

START_TEST(manifest_ambiguous_key)
{
    const struct ambiguous_case *c = &ambiguous_manifest_cases[_i];
    json_t *manifest = parse(c->json);
    struct pg_error *err = NULL;
    json_t *document;

    document = inspector_build_document("sha256:m", manifest, "{}", 2, NULL, 0,
                                        NULL, &err);
    ck_assert_ptr_null(document);
    assert_error(err, 403, PG_ERR_DENIED, c->message);
    pg_error_free(err);
    json_decref(manifest);
}
END_TEST

/* A member spelled in another case is read as the field it matches, as
 * runtimes read it. */
START_TEST(config_key_case_folded)
{
    static const char config[] =
        "{\"OS\": \"linux\", \"Architecture\": \"arm\", \"VARIANT\": \"v7\", "
        "\"Created\": \"2024-05-01T10:00:00Z\", "
        "\"CONFIG\": {\"u" LONG_S_UTF8 "er\": \"0\", \"env\": [\"A=1\"], "
        "\"ENTRYPOINT\": [\"/x\"], \"cmd\": [\"c\"], "
        "\"workingdir\": \"/w\", \"labels\": {\"a\": \"b\"}, "
        "\"exposedports\": {\"80/tcp\": {}}, \"volumes\": {\"/v\": {}}}, "
        "\"RootFS\": {\"Diff_IDs\": []}, "
        "\"History\": [{\"Created\": \"t\", \"Created_By\": \"RUN x\", "
        "\"Empty_Layer\": true, \"Comment\": \"c\"}]}";
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;
    json_t *document;
    json_t *platform;
    json_t *section;
    json_t *env;
    json_t *history;

    document = inspector_build_document("sha256:m", manifest, config,
                                        strlen(config), NULL, 0, NULL, &err);
    ck_assert_msg(err == NULL, "%s", err != NULL ? err->message : "");
    platform = json_object_get(document, "platform");
    section = json_object_get(document, "config");
    env = json_array_get(json_object_get(section, "env"), 0);
    history = json_array_get(json_object_get(section, "history"), 0);
    ck_assert_str_eq(str_at(platform, "os"), "linux");
    ck_assert_str_eq(str_at(platform, "architecture"), "arm");
    ck_assert_str_eq(str_at(platform, "variant"), "v7");
    ck_assert_str_eq(str_at(section, "user"), "0");
    ck_assert_str_eq(str_at(env, "name"), "A");
    ck_assert_str_eq(str_at(env, "value"), "1");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(section, "entrypoint"), 0)),
                     "/x");
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(section, "cmd"), 0)),
        "c");
    ck_assert_str_eq(str_at(section, "working_dir"), "/w");
    ck_assert_str_eq(str_at(json_object_get(section, "labels"), "a"), "b");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(section, "exposed_ports"), 0)),
                     "80/tcp");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(section, "volumes"), 0)),
                     "/v");
    ck_assert_str_eq(str_at(section, "created"), "2024-05-01T10:00:00Z");
    ck_assert_str_eq(str_at(history, "created"), "t");
    ck_assert_str_eq(str_at(history, "created_by"), "RUN x");
    ck_assert(json_is_true(json_object_get(history, "empty_layer")));
    ck_assert_str_eq(str_at(history, "comment"), "c");
    json_decref(document);
    json_decref(manifest);
}
END_TEST

/* Names that only resemble a field are not read as it, and label names,
 * which are map keys, keep their case. */
START_TEST(config_similar_keys_kept)
{
    static const char config[] =
        "{\"config\": {\"User\": \"1000\", \"Users\": \"0\", "
        "\"Username\": \"0\", \"U_er\": \"0\", "
        "\"Labels\": {\"Tier\": \"web\", \"tier\": \"db\"}}}";
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;
    json_t *document;
    json_t *section;
    json_t *labels;

    document = inspector_build_document("sha256:m", manifest, config,
                                        strlen(config), NULL, 0, NULL, &err);
    ck_assert_msg(err == NULL, "%s", err != NULL ? err->message : "");
    section = json_object_get(document, "config");
    labels = json_object_get(section, "labels");
    ck_assert_str_eq(str_at(section, "user"), "1000");
    ck_assert_uint_eq(json_object_size(labels), 2);
    ck_assert_str_eq(str_at(labels, "Tier"), "web");
    ck_assert_str_eq(str_at(labels, "tier"), "db");
    json_decref(document);
    json_decref(manifest);
}
END_TEST

START_TEST(document_config_too_deep)
{
    char *config = nested_arrays(PG_JSON_MAX_DEPTH + 1);
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;

    ck_assert_ptr_null(inspector_build_document(
        "sha256:m", manifest, config, strlen(config), NULL, 0, NULL, &err));
    assert_error(err, 403, PG_ERR_DENIED,
                 "image sha256:m: image config nests arrays and objects "
                 "more than 64 levels deep (PG_JSON_MAX_DEPTH)");
    pg_error_free(err);
    json_decref(manifest);
    free(config);
}
END_TEST

START_TEST(document_config_too_large)
{
    size_t len = PG_IMAGE_CONFIG_MAX_BYTES + 1;
    char *config = malloc(len);
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    struct pg_error *err = NULL;
    char expected[200];

    memset(config, ' ', len);
    ck_assert_ptr_null(inspector_build_document("sha256:m", manifest, config,
                                                len, NULL, 0, NULL, &err));
    snprintf(expected, sizeof(expected),
             "image sha256:m: image config is %zu bytes, more than the "
             "maximum of %u (PG_IMAGE_CONFIG_MAX_BYTES)",
             len, PG_IMAGE_CONFIG_MAX_BYTES);
    assert_error(err, 403, PG_ERR_DENIED, expected);
    pg_error_free(err);
    json_decref(manifest);
    free(config);
}
END_TEST

START_TEST(document_too_many_layers)
{
    json_t *manifest = parse("{\"config\": {}, \"layers\": []}");
    json_t *layers = json_object_get(manifest, "layers");
    struct pg_error *err = NULL;

    for (int i = 0; i < PG_LAYERS_MAX + 1; i++)
        json_array_append_new(layers, json_object());
    ck_assert_ptr_null(inspector_build_document(
        "sha256:m", manifest, "{}", 2, NULL, PG_LAYERS_MAX + 1, NULL, &err));
    assert_error(err, 403, PG_ERR_DENIED,
                 "image sha256:m: manifest has 513 layers, more than the "
                 "maximum of 512 (PG_LAYERS_MAX)");
    pg_error_free(err);
    json_decref(manifest);
}
END_TEST

START_TEST(document_layer_count_mismatch)
{
    json_t *manifest = parse(document_manifest);
    json_t *layer = parse(document_layer0);
    struct pg_error *err = NULL;

    ck_assert_ptr_null(inspector_build_document(
        "sha256:m", manifest, document_config, strlen(document_config), &layer,
        1, NULL, &err));
    assert_error(err, 500, PG_ERR_INTERNAL,
                 "image sha256:m: manifest has 2 layers but 1 layer results "
                 "were given");
    pg_error_free(err);
    json_decref(layer);
    json_decref(manifest);
}
END_TEST

START_TEST(document_layer_order_mismatch)
{
    json_t *manifest = parse(document_manifest);
    json_t *layers[2] = {parse(document_layer1), parse(document_layer0)};
    struct pg_error *err = NULL;

    ck_assert_ptr_null(inspector_build_document(
        "sha256:m", manifest, document_config, strlen(document_config), layers,
        2, NULL, &err));
    assert_error(err, 500, PG_ERR_INTERNAL,
                 "image sha256:m: layer result 0 is for sha256:l1, but the "
                 "manifest lists sha256:l0 at that index");
    pg_error_free(err);
    json_decref(layers[1]);
    json_decref(layers[0]);
    json_decref(manifest);
}
END_TEST

/* A real listing feeds the document: the same entries, tagged with the
 * layer index. */
START_TEST(document_from_listing)
{
    const char *path = write_layer("sample.tar.gz", COMPRESSION_GZIP,
                                   sample_entries, SAMPLE_COUNT);
    static const char config[] =
        "{\"os\": \"linux\", \"architecture\": \"amd64\", "
        "\"rootfs\": {\"diff_ids\": [\"sha256:d0\"]}}";
    json_t *manifest = parse("{\"config\": {}, \"layers\": [{\"mediaType\": "
                             "\"" GZIP_LAYER "\", \"digest\": \"" TEST_DIGEST
                             "\", \"size\": 1}]}");
    struct pg_error *err = NULL;
    json_t *layer;
    json_t *document;
    json_t *files;

    layer = inspector_list_layer(path, TEST_DIGEST, GZIP_LAYER, &loose_limits,
                                 &err);
    document = inspector_build_document("sha256:m", manifest, config,
                                        strlen(config), &layer, 1, NULL, &err);
    ck_assert_ptr_null(err);
    files = json_object_get(document, "files");
    ck_assert_uint_eq(json_array_size(files), SAMPLE_COUNT);
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        ck_assert_int_eq(int_at(json_array_get(files, i), "layer"), 0);
        assert_file(json_array_get(files, i), &sample_expected[i]);
    }
    ck_assert_uint_eq(
        json_array_size(json_object_get(json_object_get(document, "summary"),
                                        "setuid_files")),
        3);
    json_decref(document);
    json_decref(layer);
    json_decref(manifest);
}
END_TEST

START_TEST(document_failed)
{
    json_t *manifest = parse(document_manifest);
    json_t *reference = parse(document_reference);
    json_t *document;
    json_t *inspection;
    json_t *layers;

    document = inspector_failed_document("sha256:m", manifest, reference,
                                         "layer sha256:l0 is bad: \xff");
    inspection = json_object_get(document, "inspection");
    layers = json_object_get(document, "layers");
    ck_assert_int_eq(int_at(document, "document_version"), 2);
    ck_assert_str_eq(str_at(document, "kind"), "image");
    ck_assert_str_eq(str_at(json_object_get(document, "source"), "reference"),
                     "1.0");
    ck_assert_str_eq(
        str_at(json_object_get(document, "manifest"), "config_digest"),
        "sha256:c0");
    ck_assert_str_eq(str_at(inspection, "status"), "failed");
    ck_assert_str_eq(str_at(inspection, "error"),
                     "layer sha256:l0 is bad: \xef\xbf\xbd");
    ck_assert_uint_eq(json_array_size(layers), 2);
    ck_assert_str_eq(str_at(json_array_get(layers, 1), "digest"), "sha256:l1");
    ck_assert_int_eq(int_at(json_array_get(layers, 1), "index"), 1);
    ck_assert_ptr_null(json_object_get(document, "files"));
    ck_assert_ptr_null(json_object_get(document, "config"));
    ck_assert_uint_eq(json_array_size(json_object_get(inspection, "notes")), 0);
    ck_assert(json_is_null(json_object_get(document, "os")));
    ck_assert(json_is_array(json_object_get(document, "packages")));
    ck_assert_uint_eq(json_array_size(json_object_get(document, "packages")),
                      0);
    ck_assert(json_is_array(json_object_get(document, "secrets")));
    ck_assert_uint_eq(json_array_size(json_object_get(document, "secrets")), 0);
    ck_assert(json_is_null(json_object_get(document, "base_image")));
    json_decref(document);
    json_decref(reference);
    json_decref(manifest);
}
END_TEST

START_TEST(document_artifact)
{
    json_t *manifest = parse(
        "{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", "
        "\"artifactType\": \"application/vnd.dev.sigstore.bundle+json\", "
        "\"config\": {\"mediaType\": \"application/vnd.oci.empty.v1+json\", "
        "\"digest\": \"sha256:e0\", \"size\": 2}, "
        "\"layers\": [{\"mediaType\": \"application/vnd.in-toto+json\", "
        "\"digest\": \"sha256:a0\", \"size\": 42}], "
        "\"subject\": {\"mediaType\": "
        "\"application/vnd.oci.image.manifest.v1+json\", "
        "\"digest\": \"sha256:s0\", \"size\": 7}}");
    json_t *document;
    json_t *layer;
    json_t *subject;

    document = inspector_artifact_document("sha256:m", manifest, NULL);
    layer = json_array_get(json_object_get(document, "layers"), 0);
    subject = json_object_get(document, "subject");
    ck_assert_str_eq(str_at(document, "kind"), "artifact");
    ck_assert_str_eq(str_at(document, "artifact_type"),
                     "application/vnd.dev.sigstore.bundle+json");
    ck_assert_str_eq(str_at(json_object_get(document, "inspection"), "status"),
                     "ok");
    ck_assert_str_eq(str_at(layer, "digest"), "sha256:a0");
    ck_assert_str_eq(str_at(layer, "media_type"),
                     "application/vnd.in-toto+json");
    ck_assert_int_eq(int_at(layer, "size"), 42);
    ck_assert_ptr_null(json_object_get(layer, "files"));
    ck_assert_str_eq(str_at(subject, "digest"), "sha256:s0");
    ck_assert_int_eq(int_at(subject, "size"), 7);
    ck_assert_int_eq(int_at(document, "document_version"), 2);
    ck_assert_uint_eq(json_array_size(json_object_get(
                          json_object_get(document, "inspection"), "notes")),
                      0);
    ck_assert(json_is_null(json_object_get(document, "os")));
    ck_assert(json_is_array(json_object_get(document, "packages")));
    ck_assert_uint_eq(json_array_size(json_object_get(document, "packages")),
                      0);
    ck_assert(json_is_array(json_object_get(document, "secrets")));
    ck_assert(json_is_null(json_object_get(document, "base_image")));
    json_decref(document);
    json_decref(manifest);
}
END_TEST

START_TEST(document_artifact_config_type)
{
    json_t *manifest =
        parse("{\"config\": {\"mediaType\": "
              "\"application/vnd.cncf.helm.config.v1+json\"}, \"layers\": []}");
    json_t *document = inspector_artifact_document("sha256:m", manifest, NULL);

    ck_assert_str_eq(str_at(document, "artifact_type"),
                     "application/vnd.cncf.helm.config.v1+json");
    ck_assert_ptr_null(json_object_get(document, "subject"));
    json_decref(document);
    json_decref(manifest);
}
END_TEST

/* ---- the merged file system ---- */

static json_t *
entry_new(const char *path, const char *type, int mode)
{
    json_t *entry =
        json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "path", path, "type", type,
                  "mode", mode, "size", 0, "uid", 0, "gid", 0);

    ck_assert_ptr_nonnull(entry);
    return entry;
}

static json_t *
file_new(const char *path)
{
    return entry_new(path, "file", 0644);
}

static json_t *
dir_new(const char *path)
{
    return entry_new(path, "dir", 0755);
}

/* Returns the entry "DIR/.wh.NAME" that deletes DIR/NAME, as the layer
 * reader lists it; dir "" is the root. */
static json_t *
whiteout_new(const char *dir, const char *name)
{
    char path[256];
    char target[256];
    json_t *entry;

    snprintf(path, sizeof(path), "%s%s.wh.%s", dir, dir[0] ? "/" : "", name);
    snprintf(target, sizeof(target), "%s%s%s", dir, dir[0] ? "/" : "", name);
    entry = entry_new(path, "whiteout", 0644);
    json_object_set_new(entry, "target", json_string(target));
    return entry;
}

/* Returns the opaque marker of dir ("" for the root). */
static json_t *
opaque_new(const char *dir)
{
    char path[256];
    json_t *entry;

    snprintf(path, sizeof(path), "%s%s.wh..wh..opq", dir, dir[0] ? "/" : "");
    entry = entry_new(path, "opaque_whiteout", 0644);
    json_object_set_new(entry, "target", json_string(dir[0] ? dir : "."));
    return entry;
}

/* Returns the result of layer index with files and findings (NULL for a
 * result without them), both stolen. */
static json_t *
result_new(size_t index, json_t *files, json_t *findings)
{
    char digest[32];
    json_t *result;

    snprintf(digest, sizeof(digest), "sha256:l%zu", index);
    result = json_pack("{s:s, s:s, s:i, s:I, s:i, s:o}", "digest", digest,
                       "media_type", TAR_LAYER, "size", 100, "entries",
                       (json_int_t)json_array_size(files), "bytes", 1024,
                       "files", files);
    ck_assert_ptr_nonnull(result);
    if (findings != NULL)
        json_object_set_new(result, "findings", findings);
    return result;
}

/*
 * Builds the document of an image of n layer results, which it releases.
 * history and annotations (stolen) go into the image config and the
 * manifest unless NULL. Fails the test when the build fails.
 */
static json_t *
image_document(json_t **results, size_t n, json_t *history, json_t *annotations)
{
    json_t *manifest =
        json_pack("{s:{s:s, s:s, s:i}, s:[]}", "config", "mediaType",
                  "application/vnd.oci.image.config.v1+json", "digest",
                  "sha256:c0", "size", 1000, "layers");
    json_t *config =
        json_pack("{s:s, s:s, s:{s:s, s:[]}}", "os", "linux", "architecture",
                  "amd64", "rootfs", "type", "layers", "diff_ids");
    struct pg_error *err = NULL;
    json_t *document;
    char *config_text;

    for (size_t i = 0; i < n; i++) {
        char text[32];

        snprintf(text, sizeof(text), "sha256:l%zu", i);
        json_array_append_new(json_object_get(manifest, "layers"),
                              json_pack("{s:s, s:s, s:i}", "mediaType",
                                        TAR_LAYER, "digest", text, "size",
                                        100));
        snprintf(text, sizeof(text), "sha256:d%zu", i);
        json_array_append_new(
            json_object_get(json_object_get(config, "rootfs"), "diff_ids"),
            json_string(text));
    }
    if (history != NULL)
        json_object_set_new(config, "history", history);
    if (annotations != NULL)
        json_object_set_new(manifest, "annotations", annotations);
    config_text = json_dumps(config, JSON_COMPACT);

    document =
        inspector_build_document("sha256:m", manifest, config_text,
                                 strlen(config_text), results, n, NULL, &err);
    ck_assert_msg(err == NULL, "%s", err != NULL ? err->message : "");
    ck_assert_ptr_nonnull(document);
    free(config_text);
    for (size_t i = 0; i < n; i++)
        json_decref(results[i]);
    json_decref(config);
    json_decref(manifest);
    return document;
}

/* Returns "present" of the entry of layer at path in the document's
 * files, failing the test when there is no such entry. */
static bool
present_at(const json_t *document, int layer, const char *path)
{
    const json_t *file;
    size_t i;

    json_array_foreach(json_object_get(document, "files"), i, file)
    {
        if (int_at(file, "layer") == layer &&
            strcmp(str_at(file, "path"), path) == 0) {
            ck_assert(json_is_boolean(json_object_get(file, "present")));
            return json_is_true(json_object_get(file, "present"));
        }
    }
    ck_abort_msg("no entry %s in layer %d", path, layer);
    return false;
}

START_TEST(merge_whiteout_file)
{
    json_t *results[2] = {
        result_new(0,
                   json_pack("[o, o, o]", dir_new("etc"), file_new("etc/a"),
                             file_new("etc/b")),
                   NULL),
        result_new(1, json_pack("[o]", whiteout_new("etc", "a")), NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);

    ck_assert(present_at(document, 0, "etc"));
    ck_assert(!present_at(document, 0, "etc/a"));
    ck_assert(present_at(document, 0, "etc/b"));
    ck_assert(!present_at(document, 1, "etc/.wh.a"));
    ck_assert_int_eq(int_at(json_object_get(document, "summary"), "files"), 4);
    ck_assert_int_eq(
        int_at(json_object_get(document, "summary"), "present_files"), 2);
    json_decref(document);
}
END_TEST

/* Deleting a directory deletes what is under it and nothing that only
 * shares the beginning of its name. */
START_TEST(merge_whiteout_directory)
{
    json_t *results[2] = {
        result_new(0,
                   json_pack("[o, o, o, o, o, o, o, o]", dir_new("opt"),
                             dir_new("opt/app"), file_new("opt/app/x"),
                             dir_new("opt/app/sub"), file_new("opt/app/sub/y"),
                             file_new("opt/application"),
                             file_new("opt/app2/z"), file_new("opt/keep")),
                   NULL),
        result_new(1, json_pack("[o]", whiteout_new("opt", "app")), NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);

    ck_assert(present_at(document, 0, "opt"));
    ck_assert(!present_at(document, 0, "opt/app"));
    ck_assert(!present_at(document, 0, "opt/app/x"));
    ck_assert(!present_at(document, 0, "opt/app/sub"));
    ck_assert(!present_at(document, 0, "opt/app/sub/y"));
    ck_assert(present_at(document, 0, "opt/application"));
    ck_assert(present_at(document, 0, "opt/app2/z"));
    ck_assert(present_at(document, 0, "opt/keep"));
    ck_assert(!present_at(document, 1, "opt/.wh.app"));
    json_decref(document);
}
END_TEST

/* An opaque directory keeps its own entries and those of its layer but
 * hides everything the lower layers had under it. */
START_TEST(merge_opaque_directory)
{
    json_t *results[3] = {
        result_new(0,
                   json_pack("[o, o, o, o, o, o]", dir_new("var"),
                             dir_new("var/cache"), file_new("var/cache/a"),
                             dir_new("var/cache/sub"),
                             file_new("var/cache/sub/b"), file_new("var/log")),
                   NULL),
        result_new(1,
                   json_pack("[o, o, o]", dir_new("var/cache"),
                             opaque_new("var/cache"),
                             file_new("var/cache/new")),
                   NULL),
        result_new(2, json_pack("[o]", file_new("var/cache/later")), NULL),
    };
    json_t *document = image_document(results, 3, NULL, NULL);

    ck_assert(present_at(document, 0, "var"));
    ck_assert(!present_at(document, 0, "var/cache"));
    ck_assert(!present_at(document, 0, "var/cache/a"));
    ck_assert(!present_at(document, 0, "var/cache/sub"));
    ck_assert(!present_at(document, 0, "var/cache/sub/b"));
    ck_assert(present_at(document, 0, "var/log"));
    ck_assert(present_at(document, 1, "var/cache"));
    ck_assert(!present_at(document, 1, "var/cache/.wh..wh..opq"));
    ck_assert(present_at(document, 1, "var/cache/new"));
    ck_assert(present_at(document, 2, "var/cache/later"));
    json_decref(document);
}
END_TEST

START_TEST(merge_opaque_root)
{
    json_t *results[2] = {
        result_new(0, json_pack("[o, o]", dir_new("."), file_new("a/b")), NULL),
        result_new(1, json_pack("[o, o]", opaque_new(""), file_new("c")), NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);

    ck_assert(present_at(document, 0, "."));
    ck_assert(!present_at(document, 0, "a/b"));
    ck_assert(present_at(document, 1, "c"));
    json_decref(document);
}
END_TEST

START_TEST(merge_replaced_file)
{
    json_t *results[3] = {
        result_new(0, json_pack("[o, o]", file_new("bin/tool"), file_new("x")),
                   NULL),
        result_new(1, json_pack("[o]", file_new("bin/tool")), NULL),
        result_new(2, json_pack("[o]", entry_new("x", "symlink", 0777)), NULL),
    };
    json_t *document = image_document(results, 3, NULL, NULL);

    ck_assert(!present_at(document, 0, "bin/tool"));
    ck_assert(present_at(document, 1, "bin/tool"));
    ck_assert(!present_at(document, 0, "x"));
    ck_assert(present_at(document, 2, "x"));
    json_decref(document);
}
END_TEST

/* A symlink or file where a directory was removes the directory's
 * contents; a directory over a directory keeps them. */
START_TEST(merge_file_replaces_directory)
{
    json_t *results[2] = {
        result_new(0,
                   json_pack("[o, o, o, o]", dir_new("data"),
                             file_new("data/x"), dir_new("srv"),
                             file_new("srv/y")),
                   NULL),
        result_new(1,
                   json_pack("[o, o]", entry_new("data", "symlink", 0777),
                             dir_new("srv")),
                   NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);

    ck_assert(!present_at(document, 0, "data"));
    ck_assert(!present_at(document, 0, "data/x"));
    ck_assert(present_at(document, 1, "data"));
    ck_assert(!present_at(document, 0, "srv"));
    ck_assert(present_at(document, 0, "srv/y"));
    ck_assert(present_at(document, 1, "srv"));
    json_decref(document);
}
END_TEST

START_TEST(merge_readded_after_whiteout)
{
    json_t *results[3] = {
        result_new(0, json_pack("[o, o]", dir_new("a"), file_new("a/f")), NULL),
        result_new(1, json_pack("[o]", whiteout_new("", "a")), NULL),
        result_new(2, json_pack("[o]", file_new("a/f")), NULL),
    };
    json_t *document = image_document(results, 3, NULL, NULL);

    ck_assert(!present_at(document, 0, "a"));
    ck_assert(!present_at(document, 0, "a/f"));
    ck_assert(!present_at(document, 1, ".wh.a"));
    ck_assert(present_at(document, 2, "a/f"));
    json_decref(document);
}
END_TEST

/* Within one layer the later entry of a path wins, and a whiteout hides
 * nothing of its own layer. */
START_TEST(merge_same_layer_order)
{
    json_t *results[1] = {
        result_new(0,
                   json_pack("[o, o, o, o]", entry_new("x", "file", 0600),
                             entry_new("x", "file", 0644), file_new("y"),
                             whiteout_new("", "y")),
                   NULL),
    };
    json_t *document = image_document(results, 1, NULL, NULL);
    json_t *files = json_object_get(document, "files");

    ck_assert(
        json_is_false(json_object_get(json_array_get(files, 0), "present")));
    ck_assert(
        json_is_true(json_object_get(json_array_get(files, 1), "present")));
    ck_assert(present_at(document, 0, "y"));
    json_decref(document);
}
END_TEST

/* setuid_files and world_writable list only files still in the image. */
START_TEST(merge_summary_present_only)
{
    json_t *results[2] = {
        result_new(0,
                   json_pack("[o, o, o, o]",
                             entry_new("usr/bin/su", "file", 04755),
                             entry_new("usr/bin/mount", "file", 04755),
                             entry_new("srv/open", "file", 0666),
                             entry_new("srv/also", "file", 0666)),
                   NULL),
        result_new(1,
                   json_pack("[o, o]", whiteout_new("usr/bin", "su"),
                             entry_new("srv/also", "file", 0644)),
                   NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *summary = json_object_get(document, "summary");
    json_t *setuid = json_object_get(summary, "setuid_files");
    json_t *writable = json_object_get(summary, "world_writable");

    ck_assert_uint_eq(json_array_size(setuid), 1);
    ck_assert_str_eq(json_string_value(json_array_get(setuid, 0)),
                     "usr/bin/mount");
    ck_assert_uint_eq(json_array_size(writable), 1);
    ck_assert_str_eq(json_string_value(json_array_get(writable, 0)),
                     "srv/open");
    ck_assert_int_eq(int_at(summary, "files"), 6);
    ck_assert_int_eq(int_at(summary, "present_files"), 3);
    json_decref(document);
}
END_TEST

#define MANY_DIRS 1000
#define MANY_FILES_PER_DIR 100

/*
 * An image of 201,100 entries: layer 0 has 1,000 directories of 100
 * files, layer 1 deletes every tenth directory and adds 100,000 files.
 * The merge is O(n log n). A quadratic one would compare about 2 * 10^10
 * pairs of entries and run into the test case's timeout.
 */
START_TEST(merge_many_files)
{
    json_t *lower = json_array();
    json_t *upper = json_array();
    json_t *results[2];
    json_t *document;
    json_t *summary;
    json_t *files;
    char path[64];

    for (int d = 0; d < MANY_DIRS; d++) {
        snprintf(path, sizeof(path), "d%03d", d);
        json_array_append_new(lower, dir_new(path));
        for (int f = 0; f < MANY_FILES_PER_DIR; f++) {
            snprintf(path, sizeof(path), "d%03d/f%02d", d, f);
            json_array_append_new(lower, file_new(path));
            snprintf(path, sizeof(path), "n%03d/f%02d", d, f);
            json_array_append_new(upper, file_new(path));
        }
        if (d % 10 == 0) {
            snprintf(path, sizeof(path), "d%03d", d);
            json_array_append_new(upper, whiteout_new("", path));
        }
    }
    results[0] = result_new(0, lower, NULL);
    results[1] = result_new(1, upper, NULL);
    document = image_document(results, 2, NULL, NULL);
    summary = json_object_get(document, "summary");

    ck_assert_int_eq(int_at(summary, "files"), 201100);
    /* 900 directories and their 90,000 files, and 100,000 new files. */
    ck_assert_int_eq(int_at(summary, "present_files"), 190900);
    /* Each directory of layer 0 is 101 entries: d010/f00 is entry 1011
     * and d011/f00 entry 1112. */
    files = json_object_get(document, "files");
    ck_assert_str_eq(str_at(json_array_get(files, 1011), "path"), "d010/f00");
    ck_assert(
        json_is_false(json_object_get(json_array_get(files, 1011), "present")));
    ck_assert_str_eq(str_at(json_array_get(files, 1112), "path"), "d011/f00");
    ck_assert(
        json_is_true(json_object_get(json_array_get(files, 1112), "present")));
    json_decref(document);
}
END_TEST

/* Segments of the directory the deep files are in, and the files. With
 * "f00000" each path is 4,086 bytes, under the default maximum of 4,096. */
#define DEEP_SEGMENTS 2040
#define DEEP_FILES 20000

/* Returns a new string of count "a" segments, each followed by '/'. */
static char *
deep_dir(size_t count)
{
    char *dir = malloc(2 * count + 1);

    ck_assert_ptr_nonnull(dir);
    for (size_t i = 0; i < count; i++)
        memcpy(dir + 2 * i, "a/", 2);
    dir[2 * count] = '\0';
    return dir;
}

/*
 * An image of the 2,040 directories of a deep path, 20,000 files in the
 * deepest, and a whiteout of one of them in the next layer. Looking up
 * each parent directory of each path by bisection costs O(segments *
 * log n * path bytes) per path, about 10^12 byte comparisons here, and
 * runs into the test case's timeout.
 */
START_TEST(merge_deep_paths)
{
    char *dir = deep_dir(DEEP_SEGMENTS);
    size_t size = strlen(dir) + 16;
    char *path = malloc(size);
    json_t *lower = json_array();
    json_t *upper = json_array();
    json_t *whiteout;
    json_t *results[2];
    json_t *document;
    json_t *summary;

    ck_assert_ptr_nonnull(path);
    for (size_t d = 1; d <= DEEP_SEGMENTS; d++) {
        memcpy(path, dir, 2 * d - 1);
        path[2 * d - 1] = '\0';
        json_array_append_new(lower, dir_new(path));
    }
    for (int f = 0; f < DEEP_FILES; f++) {
        snprintf(path, size, "%sf%05d", dir, f);
        json_array_append_new(lower, file_new(path));
    }
    snprintf(path, size, "%s.wh.f00000", dir);
    whiteout = entry_new(path, "whiteout", 0644);
    snprintf(path, size, "%sf00000", dir);
    json_object_set_new(whiteout, "target", json_string(path));
    json_array_append_new(upper, whiteout);
    json_array_append_new(upper, file_new("kept"));
    results[0] = result_new(0, lower, NULL);
    results[1] = result_new(1, upper, NULL);
    document = image_document(results, 2, NULL, NULL);
    summary = json_object_get(document, "summary");

    ck_assert_int_eq(int_at(summary, "files"), DEEP_SEGMENTS + DEEP_FILES + 2);
    /* Every directory, every file but f00000, and "kept". */
    ck_assert_int_eq(int_at(summary, "present_files"),
                     DEEP_SEGMENTS + DEEP_FILES);
    snprintf(path, size, "%sf%05d", dir, 0);
    ck_assert(!present_at(document, 0, path));
    snprintf(path, size, "%sf%05d", dir, DEEP_FILES - 1);
    ck_assert(present_at(document, 0, path));
    ck_assert(present_at(document, 1, "kept"));
    json_decref(document);
    free(path);
    free(dir);
}
END_TEST

/* ---- findings ---- */

START_TEST(findings_missing_are_empty)
{
    json_t *document = build_sample_document();

    ck_assert(json_is_null(json_object_get(document, "os")));
    ck_assert_uint_eq(json_array_size(json_object_get(document, "packages")),
                      0);
    ck_assert(json_is_array(json_object_get(document, "packages")));
    ck_assert(json_is_array(json_object_get(document, "secrets")));
    ck_assert(json_is_array(
        json_object_get(json_object_get(document, "inspection"), "notes")));
    ck_assert(json_is_null(json_object_get(document, "base_image")));
    json_decref(document);
}
END_TEST

/* A later layer's dpkg status file replaces the earlier one, and with it
 * the packages the earlier one listed. */
START_TEST(findings_status_replaced)
{
    json_t *results[2] = {
        result_new(0, json_pack("[o]", file_new("var/lib/dpkg/status")),
                   parse("{\"packages\": ["
                         "{\"type\": \"deb\", \"name\": \"a\", \"version\": "
                         "\"1.0\", \"path\": \"var/lib/dpkg/status\"}, "
                         "{\"type\": \"deb\", \"name\": \"b\", \"version\": "
                         "\"1.0\", \"path\": \"var/lib/dpkg/status\"}]}")),
        result_new(1, json_pack("[o]", file_new("var/lib/dpkg/status")),
                   parse("{\"packages\": ["
                         "{\"type\": \"deb\", \"name\": \"c\", \"version\": "
                         "\"2.0\", \"path\": \"var/lib/dpkg/status\"}, "
                         "{\"type\": \"deb\", \"name\": \"a\", \"version\": "
                         "\"1.1\", \"path\": \"var/lib/dpkg/status\"}]}")),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *packages = json_object_get(document, "packages");

    ck_assert_uint_eq(json_array_size(packages), 2);
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "name"), "a");
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "version"), "1.1");
    ck_assert_int_eq(int_at(json_array_get(packages, 0), "layer"), 1);
    ck_assert_str_eq(str_at(json_array_get(packages, 1), "name"), "c");
    ck_assert_int_eq(int_at(json_array_get(packages, 1), "layer"), 1);
    ck_assert_int_eq(int_at(json_object_get(document, "summary"), "packages"),
                     2);
    json_decref(document);
}
END_TEST

START_TEST(findings_deleted_site_packages)
{
    static const char metadata[] = "usr/lib/python3/site-packages/"
                                   "requests-2.31.0.dist-info/METADATA";
    static const char kept[] = "usr/local/lib/python3.11/site-packages/"
                               "idna-3.6.dist-info/METADATA";
    json_t *findings =
        json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}]}",
                  "packages", "type", "pypi", "name", "requests", "version",
                  "2.31.0", "path", metadata, "purl",
                  "pkg:pypi/requests@2.31.0", "type", "pypi", "name", "idna",
                  "version", "3.6", "path", kept, "purl", "pkg:pypi/idna@3.6");
    json_t *results[2] = {
        result_new(0, json_pack("[o, o]", file_new(metadata), file_new(kept)),
                   findings),
        result_new(
            1,
            json_pack("[o]", whiteout_new("usr/lib/python3", "site-packages")),
            NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *packages = json_object_get(document, "packages");

    ck_assert_uint_eq(json_array_size(packages), 1);
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "name"), "idna");
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "purl"),
                     "pkg:pypi/idna@3.6");
    ck_assert_ptr_null(json_object_get(json_array_get(packages, 0), "distro"));
    json_decref(document);
}
END_TEST

/* Secrets stay in the layer's bytes when a later layer deletes the file,
 * so every one is kept, with "present" for whether its file is visible. */
START_TEST(findings_secret_deleted_file)
{
    json_t *results[2] = {
        result_new(0,
                   json_pack("[o, o]", file_new("root/.aws/credentials"),
                             file_new("app/config.yml")),
                   parse("{\"secrets\": ["
                         "{\"rule\": \"aws-credentials-file\", \"path\": "
                         "\"root/.aws/credentials\", \"line\": 0}, "
                         "{\"rule\": \"github-token\", \"path\": "
                         "\"app/config.yml\", \"line\": 3}]}")),
        result_new(1,
                   json_pack("[o]", whiteout_new("root/.aws", "credentials")),
                   NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *secrets = json_object_get(document, "secrets");
    json_t *deleted = json_array_get(secrets, 0);
    json_t *visible = json_array_get(secrets, 1);

    ck_assert_uint_eq(json_array_size(secrets), 2);
    ck_assert_str_eq(str_at(deleted, "rule"), "aws-credentials-file");
    ck_assert_int_eq(int_at(deleted, "layer"), 0);
    ck_assert(json_is_false(json_object_get(deleted, "present")));
    ck_assert_str_eq(str_at(visible, "path"), "app/config.yml");
    ck_assert_int_eq(int_at(visible, "line"), 3);
    ck_assert(json_is_true(json_object_get(visible, "present")));
    ck_assert_int_eq(int_at(json_object_get(document, "summary"), "secrets"),
                     2);
    json_decref(document);
}
END_TEST

START_TEST(findings_notes_kept)
{
    json_t *results[2] = {
        result_new(0, json_pack("[o]", file_new("var/lib/dpkg/status")),
                   parse("{\"notes\": [{\"cataloger\": \"dpkg\", \"path\": "
                         "\"var/lib/dpkg/status\", \"message\": \"stanza 3 "
                         "has no Package field\"}]}")),
        result_new(1, json_pack("[o]", whiteout_new("var/lib/dpkg", "status")),
                   parse("{\"notes\": [{\"cataloger\": \"java\", \"path\": "
                         "\"app.jar\", \"message\": \"not a zip archive\"}]}")),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *notes =
        json_object_get(json_object_get(document, "inspection"), "notes");

    ck_assert_uint_eq(json_array_size(notes), 2);
    ck_assert_str_eq(str_at(json_array_get(notes, 0), "cataloger"), "dpkg");
    ck_assert_str_eq(str_at(json_array_get(notes, 0), "message"),
                     "stanza 3 has no Package field");
    ck_assert_int_eq(int_at(json_array_get(notes, 0), "layer"), 0);
    ck_assert_str_eq(str_at(json_array_get(notes, 1), "path"), "app.jar");
    ck_assert_int_eq(int_at(json_array_get(notes, 1), "layer"), 1);
    ck_assert_str_eq(str_at(json_object_get(document, "inspection"), "status"),
                     "ok");
    json_decref(document);
}
END_TEST

/* The os-release findings of layer 0: usr/lib/os-release is listed
 * first, so the choice of etc/os-release is not the order's. */
static json_t *
os_release_findings(void)
{
    return parse("{\"os\": ["
                 "{\"path\": \"usr/lib/os-release\", \"id\": \"debian\", "
                 "\"version_id\": \"12\"}, "
                 "{\"path\": \"etc/os-release\", \"id\": \"ubuntu\", "
                 "\"version_id\": \"22.04\", \"pretty_name\": \"Ubuntu "
                 "22.04.4 LTS\"}]}");
}

static json_t *
os_release_files(void)
{
    return json_pack("[o, o]", file_new("usr/lib/os-release"),
                     file_new("etc/os-release"));
}

START_TEST(findings_os_precedence)
{
    json_t *results[1] = {
        result_new(0, os_release_files(), os_release_findings()),
    };
    json_t *document = image_document(results, 1, NULL, NULL);
    json_t *os = json_object_get(document, "os");

    ck_assert_str_eq(str_at(os, "path"), "etc/os-release");
    ck_assert_str_eq(str_at(os, "id"), "ubuntu");
    ck_assert_str_eq(str_at(os, "version_id"), "22.04");
    ck_assert_str_eq(str_at(os, "pretty_name"), "Ubuntu 22.04.4 LTS");
    ck_assert_int_eq(int_at(os, "layer"), 0);
    json_decref(document);
}
END_TEST

/* A symlink that replaces etc/os-release has no finding of its own, so
 * the file it replaced no longer counts and usr/lib/os-release does. */
START_TEST(findings_os_fallback)
{
    json_t *results[2] = {
        result_new(0, os_release_files(), os_release_findings()),
        result_new(
            1, json_pack("[o]", entry_new("etc/os-release", "symlink", 0777)),
            NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *os = json_object_get(document, "os");

    ck_assert_str_eq(str_at(os, "path"), "usr/lib/os-release");
    ck_assert_str_eq(str_at(os, "id"), "debian");
    json_decref(document);

    results[0] = result_new(0, os_release_files(), os_release_findings());
    results[1] =
        result_new(1,
                   json_pack("[o, o]", whiteout_new("etc", "os-release"),
                             whiteout_new("usr/lib", "os-release")),
                   NULL);
    document = image_document(results, 2, NULL, NULL);
    ck_assert(json_is_null(json_object_get(document, "os")));
    json_decref(document);
}
END_TEST

struct purl_case {
    const char *os;      /* os finding, or NULL for an image without */
    const char *package; /* package finding */
    const char *purl;
    const char *distro_id; /* NULL: "distro" is null or absent */
    const char *distro_version_id;
};

/* Expected package URLs follow the purl specification's deb, apk and rpm
 * type definitions and its examples, such as
 * pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25. */
static const struct purl_case purl_cases[] = {
    {"{\"path\": \"etc/os-release\", \"id\": \"debian\", \"version_id\": "
     "\"12\"}",
     "{\"type\": \"deb\", \"name\": \"libc6\", \"version\": "
     "\"2.36-9+deb12u4\", \"arch\": \"amd64\"}",
     "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
     "debian", "12"},
    {"{\"path\": \"etc/os-release\", \"id\": \"ubuntu\", \"version_id\": "
     "\"22.04\"}",
     "{\"type\": \"deb\", \"name\": \"libssl3\", \"version\": "
     "\"3.0.2-0ubuntu1.15\", \"arch\": \"amd64\"}",
     "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.15?arch=amd64&distro=ubuntu-22.04",
     "ubuntu", "22.04"},
    {"{\"path\": \"etc/os-release\", \"id\": \"alpine\", \"version_id\": "
     "\"3.19.1\"}",
     "{\"type\": \"apk\", \"name\": \"musl\", \"version\": "
     "\"1.2.4_git20230717-r4\", \"arch\": \"x86_64\"}",
     "pkg:apk/alpine/"
     "musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1",
     "alpine", "3.19.1"},
    {"{\"path\": \"etc/os-release\", \"id\": \"rhel\", \"version_id\": "
     "\"9.3\"}",
     "{\"type\": \"rpm\", \"name\": \"openssl\", \"version\": \"3.0.7\", "
     "\"release\": \"24.el9\", \"epoch\": 1, \"arch\": \"x86_64\"}",
     "pkg:rpm/rhel/openssl@3.0.7-24.el9?arch=x86_64&distro=rhel-9.3&epoch=1",
     "rhel", "9.3"},
    {"{\"path\": \"etc/os-release\", \"id\": \"fedora\", \"version_id\": "
     "\"39\"}",
     "{\"type\": \"rpm\", \"name\": \"bash\", \"version\": \"5.2.26-1.fc39\", "
     "\"release\": \"1.fc39\", \"epoch\": \"2\", \"arch\": \"x86_64\"}",
     "pkg:rpm/fedora/bash@5.2.26-1.fc39?arch=x86_64&distro=fedora-39&epoch=2",
     "fedora", "39"},
    {NULL,
     "{\"type\": \"deb\", \"name\": \"libc6\", \"version\": "
     "\"2.36-9+deb12u4\", \"arch\": \"amd64\"}",
     "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64", NULL, NULL},
    {NULL,
     "{\"type\": \"apk\", \"name\": \"musl\", \"version\": \"1.2.4-r2\", "
     "\"arch\": \"aarch64\"}",
     "pkg:apk/alpine/musl@1.2.4-r2?arch=aarch64", NULL, NULL},
    {NULL,
     "{\"type\": \"rpm\", \"name\": \"openssl\", \"version\": \"3.0.7\", "
     "\"release\": \"24.el9\", \"epoch\": 1, \"arch\": \"x86_64\"}",
     "pkg:rpm/redhat/openssl@3.0.7-24.el9?arch=x86_64&epoch=1", NULL, NULL},
    /* Debian testing and unstable have no VERSION_ID. */
    {"{\"path\": \"etc/os-release\", \"id\": \"debian\", \"version_codename\": "
     "\"trixie\"}",
     "{\"type\": \"deb\", \"name\": \"bash\", \"version\": \"5.2.21-2\", "
     "\"arch\": \"arm64\"}",
     "pkg:deb/debian/bash@5.2.21-2?arch=arm64", "debian", ""},
    {"{\"path\": \"etc/os-release\", \"id\": \"debian\", \"version_id\": "
     "\"12\"}",
     "{\"type\": \"pypi\", \"name\": \"requests\", \"version\": \"2.31.0\", "
     "\"purl\": \"pkg:pypi/requests@2.31.0\"}",
     "pkg:pypi/requests@2.31.0", NULL, NULL},
};

START_TEST(findings_purl_table)
{
    const struct purl_case *c = &purl_cases[_i];
    json_t *findings = json_object();
    json_t *package = parse(c->package);
    json_t *results[1];
    json_t *document;
    json_t *distro;

    json_object_set_new(package, "path", json_string("pkgdb"));
    json_object_set_new(findings, "packages", json_pack("[o]", package));
    if (c->os != NULL)
        json_object_set_new(findings, "os", json_pack("[o]", parse(c->os)));
    results[0] = result_new(
        0, json_pack("[o, o]", file_new("etc/os-release"), file_new("pkgdb")),
        findings);
    document = image_document(results, 1, NULL, NULL);
    package = json_array_get(json_object_get(document, "packages"), 0);
    distro = json_object_get(package, "distro");

    ck_assert_str_eq(str_at(package, "purl"), c->purl);
    if (c->distro_id == NULL) {
        ck_assert(distro == NULL || json_is_null(distro));
    } else {
        ck_assert_str_eq(str_at(distro, "id"), c->distro_id);
        ck_assert_str_eq(str_at(distro, "version_id"), c->distro_version_id);
    }
    json_decref(document);
}
END_TEST

/* OS packages without an os-release file have "distro": null, so that
 * a policy can tell them from packages of other types. */
START_TEST(findings_distro_null_without_os)
{
    json_t *results[1] = {
        result_new(0, json_pack("[o]", file_new("lib/apk/db/installed")),
                   parse("{\"packages\": [{\"type\": \"apk\", \"name\": "
                         "\"busybox\", \"version\": \"1.36.1-r15\", "
                         "\"path\": \"lib/apk/db/installed\"}]}")),
    };
    json_t *document = image_document(results, 1, NULL, NULL);
    json_t *package = json_array_get(json_object_get(document, "packages"), 0);

    ck_assert(json_is_null(json_object_get(package, "distro")));
    ck_assert_str_eq(str_at(package, "purl"),
                     "pkg:apk/alpine/busybox@1.36.1-r15");
    json_decref(document);
}
END_TEST

/* Licenses of copyright files are joined to the dpkg packages by name;
 * an architecture-qualified name uses the plain name's file. */
START_TEST(findings_dpkg_license_join)
{
    json_t *files =
        json_pack("[o, o, o, o, o]", file_new("var/lib/dpkg/status"),
                  file_new("usr/share/doc/libc6/copyright"),
                  file_new("usr/share/doc/libssl3/copyright"),
                  file_new("usr/share/doc/own/copyright"),
                  file_new("usr/share/doc/gone/copyright"));
    json_t *findings = parse(
        "{\"packages\": ["
        "{\"type\": \"deb\", \"name\": \"own\", \"version\": \"1\", "
        "\"path\": \"var/lib/dpkg/status\", \"licenses\": [\"MIT\"]}, "
        "{\"type\": \"deb\", \"name\": \"libc6\", \"version\": \"2.36-9\", "
        "\"arch\": \"amd64\", \"path\": \"var/lib/dpkg/status\"}, "
        "{\"type\": \"deb\", \"name\": \"libssl3:amd64\", \"version\": "
        "\"3.0.11-1\", \"path\": \"var/lib/dpkg/status\", \"licenses\": []}, "
        "{\"type\": \"deb\", \"name\": \"gone\", \"version\": \"1\", "
        "\"path\": \"var/lib/dpkg/status\"}, "
        "{\"type\": \"deb\", \"name\": \"nodoc\", \"version\": \"1\", "
        "\"path\": \"var/lib/dpkg/status\"}], "
        "\"licenses\": ["
        "{\"path\": \"usr/share/doc/libc6/copyright\", \"package\": "
        "\"libc6\", \"licenses\": [\"LGPL-2.1-or-later\", "
        "\"GPL-2.0-or-later\"]}, "
        "{\"path\": \"usr/share/doc/libssl3/copyright\", \"package\": "
        "\"libssl3\", \"licenses\": [\"Apache-2.0\"]}, "
        "{\"path\": \"usr/share/doc/own/copyright\", \"package\": \"own\", "
        "\"licenses\": [\"GPL-3.0-only\"]}, "
        "{\"path\": \"usr/share/doc/gone/copyright\", \"package\": \"gone\", "
        "\"licenses\": [\"BSD-3-Clause\"]}]}");
    json_t *results[2] = {
        result_new(0, files, findings),
        result_new(1, json_pack("[o]", whiteout_new("usr/share/doc", "gone")),
                   NULL),
    };
    json_t *document = image_document(results, 2, NULL, NULL);
    json_t *packages = json_object_get(document, "packages");
    json_t *licenses;

    ck_assert_uint_eq(json_array_size(packages), 5);
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "name"), "gone");
    ck_assert_ptr_null(
        json_object_get(json_array_get(packages, 0), "licenses"));
    licenses = json_object_get(json_array_get(packages, 1), "licenses");
    ck_assert_str_eq(str_at(json_array_get(packages, 1), "name"), "libc6");
    ck_assert_uint_eq(json_array_size(licenses), 2);
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 0)),
                     "LGPL-2.1-or-later");
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 1)),
                     "GPL-2.0-or-later");
    licenses = json_object_get(json_array_get(packages, 2), "licenses");
    ck_assert_str_eq(str_at(json_array_get(packages, 2), "name"),
                     "libssl3:amd64");
    ck_assert_uint_eq(json_array_size(licenses), 1);
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 0)),
                     "Apache-2.0");
    ck_assert_str_eq(str_at(json_array_get(packages, 3), "name"), "nodoc");
    ck_assert_ptr_null(
        json_object_get(json_array_get(packages, 3), "licenses"));
    licenses = json_object_get(json_array_get(packages, 4), "licenses");
    ck_assert_str_eq(str_at(json_array_get(packages, 4), "name"), "own");
    ck_assert_uint_eq(json_array_size(licenses), 1);
    ck_assert_str_eq(json_string_value(json_array_get(licenses, 0)), "MIT");
    json_decref(document);
}
END_TEST

/* Packages are sorted by type, name, version and path, bytewise. */
START_TEST(findings_package_order)
{
    json_t *results[1] = {
        result_new(0, json_pack("[o, o]", file_new("p1"), file_new("p2")),
                   parse("{\"packages\": ["
                         "{\"type\": \"npm\", \"name\": \"a\", \"version\": "
                         "\"1\", \"path\": \"p1\"}, "
                         "{\"type\": \"deb\", \"name\": \"z\", \"version\": "
                         "\"1\", \"path\": \"p1\"}, "
                         "{\"type\": \"npm\", \"name\": \"a\", \"version\": "
                         "\"1\", \"path\": \"p0\"}, "
                         "{\"type\": \"npm\", \"name\": \"B\", \"version\": "
                         "\"2\", \"path\": \"p2\"}, "
                         "{\"type\": \"npm\", \"name\": \"a\", \"version\": "
                         "\"10\", \"path\": \"p1\"}]}")),
    };
    json_t *document;
    json_t *packages;

    /* p0 is no file of the image, so that package is dropped. */
    document = image_document(results, 1, NULL, NULL);
    packages = json_object_get(document, "packages");
    ck_assert_uint_eq(json_array_size(packages), 4);
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "type"), "deb");
    ck_assert_str_eq(str_at(json_array_get(packages, 1), "name"), "B");
    ck_assert_str_eq(str_at(json_array_get(packages, 2), "version"), "1");
    ck_assert_str_eq(str_at(json_array_get(packages, 3), "version"), "10");
    json_decref(document);
}
END_TEST

START_TEST(findings_malformed)
{
    static const char *const cases[][2] = {
        {"[]", "image sha256:m: findings of the result for layer 0 are not "
               "an object; results must come from inspector_list_layer"},
        {"{\"packages\": {}}",
         "image sha256:m: findings.packages of the result for layer 0 is "
         "not an array; results must come from inspector_list_layer"},
        {"{\"secrets\": [{\"rule\": \"x\"}]}",
         "image sha256:m: findings.secrets[0] of the result for layer 0 is "
         "not an object with a \"path\" string; results must come from "
         "inspector_list_layer"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *manifest =
            parse("{\"config\": {}, \"layers\": [{\"mediaType\": \"" TAR_LAYER
                  "\", \"digest\": \"sha256:l0\", \"size\": 1}]}");
        json_t *result = result_new(0, json_array(), parse(cases[i][0]));
        static const char config[] =
            "{\"rootfs\": {\"diff_ids\": [\"sha256:d0\"]}}";
        struct pg_error *err = NULL;

        ck_assert_ptr_null(inspector_build_document("sha256:m", manifest,
                                                    config, strlen(config),
                                                    &result, 1, NULL, &err));
        assert_error(err, 500, PG_ERR_INTERNAL, cases[i][1]);
        pg_error_free(err);
        json_decref(result);
        json_decref(manifest);
    }
}
END_TEST

/* ---- the Dockerfile ---- */

struct dockerfile_case {
    const char *created_by;  /* NULL: the history entry has none */
    const char *instruction; /* NULL: the entry adds no instruction */
    const char *value;
};

static const struct dockerfile_case dockerfile_cases[] = {
    {"/bin/sh -c #(nop) ADD file:5d6b639e8b6b in / ", "ADD",
     "file:5d6b639e8b6b in /"},
    {"/bin/sh -c #(nop)  CMD [\"bash\"]", "CMD", "[\"bash\"]"},
    {"/bin/sh -c #(nop)  ENV NGINX_VERSION=1.25.4", "ENV",
     "NGINX_VERSION=1.25.4"},
    {"/bin/sh -c #(nop) WORKDIR /usr/src/app", "WORKDIR", "/usr/src/app"},
    {"/bin/sh -c apt-get update && apt-get install -y curl", "RUN",
     "apt-get update && apt-get install -y curl"},
    {"|1 VERSION=1.2 /bin/sh -c ./build.sh \"$VERSION\"", "RUN",
     "./build.sh \"$VERSION\""},
    {"RUN /bin/sh -c apt-get update # buildkit", "RUN",
     "apt-get update # buildkit"},
    {"RUN |2 A=1 B=2 /bin/sh -c make install # buildkit", "RUN",
     "make install # buildkit"},
    {"RUN |1 JAVA_OPTS=-Xmx1g -Xms1g /bin/sh -c java -version", "RUN",
     "java -version"},
    {"RUN /bin/bash -o pipefail -c curl -fsSL x | sh", "RUN",
     "curl -fsSL x | sh"},
    {"RUN |1 GITHUB_TOKEN=ghp_abc /bin/sh -c git clone x", "RUN",
     "git clone x"},
    {"RUN echo exec form", "RUN", "echo exec form"},
    {"ENV X=1", "ENV", "X=1"},
    {"ENV API_TOKEN=abc LANG=C", "ENV", "API_TOKEN=<redacted> LANG=C"},
    {"COPY app /app # buildkit", "COPY", "app /app # buildkit"},
    {"WORKDIR /x", "WORKDIR", "/x"},
    {"USER x", "USER", "x"},
    {"EXPOSE 80", "EXPOSE", "80"},
    {"LABEL org.opencontainers.image.title=app", "LABEL",
     "org.opencontainers.image.title=app"},
    {"ENTRYPOINT [\"/app\"]", "ENTRYPOINT", "[\"/app\"]"},
    {"ARG TARGETARCH", "ARG", "TARGETARCH"},
    {"", NULL, NULL},
    {"   ", NULL, NULL},
    {NULL, NULL, NULL},
    {"apko", "#", "apko"},
    {"RUNNING tests", "#", "RUNNING tests"},
};

START_TEST(dockerfile_forms)
{
    size_t n = sizeof(dockerfile_cases) / sizeof(dockerfile_cases[0]);
    json_t *history = json_array();
    json_t *dockerfile;
    json_t *document;
    size_t expected = 0;
    char *dump;

    for (size_t i = 0; i < n; i++) {
        json_t *entry = json_pack("{s:b}", "empty_layer", true);

        if (dockerfile_cases[i].created_by != NULL)
            json_object_set_new(entry, "created_by",
                                json_string(dockerfile_cases[i].created_by));
        json_array_append_new(history, entry);
    }
    document = image_document(NULL, 0, history, NULL);
    dockerfile =
        json_object_get(json_object_get(document, "config"), "dockerfile");

    for (size_t i = 0; i < n; i++) {
        const struct dockerfile_case *c = &dockerfile_cases[i];
        json_t *item;

        if (c->instruction == NULL)
            continue;
        item = json_array_get(dockerfile, expected++);
        ck_assert_msg(item != NULL, "no instruction for %s", c->created_by);
        ck_assert_str_eq(str_at(item, "instruction"), c->instruction);
        ck_assert_str_eq(str_at(item, "value"), c->value);
    }
    ck_assert_uint_eq(json_array_size(dockerfile), expected);
    dump = json_dumps(document, 0);
    ck_assert_ptr_null(strstr(dump, "ghp_abc"));
    free(dump);
    json_decref(document);
}
END_TEST

/* ---- base image and chain IDs ---- */

START_TEST(base_image_from_annotations)
{
    json_t *annotations = json_pack(
        "{s:s, s:s}", "org.opencontainers.image.base.name",
        "docker.io/library/debian:12", "org.opencontainers.image.base.digest",
        "sha256:"
        "b5ace515e78743215a1b101a6f17e59ed74b17132139ca3af3c37e605205e973");
    json_t *manifest;
    json_t *document = image_document(NULL, 0, NULL, json_incref(annotations));
    json_t *base = json_object_get(document, "base_image");

    ck_assert_str_eq(str_at(base, "name"), "docker.io/library/debian:12");
    ck_assert_str_eq(
        str_at(base, "digest"),
        "sha256:b5ace515e78743215a1b101a6f17e59ed74b17132139ca3af3c"
        "37e605205e973");
    ck_assert_str_eq(str_at(base, "source"), "annotation");
    json_decref(document);

    /* A failed inspection still reads the manifest's annotations. */
    manifest = json_pack("{s:{}, s:[], s:O}", "config", "layers", "annotations",
                         annotations);
    document = inspector_failed_document("sha256:m", manifest, NULL, "bad");
    base = json_object_get(document, "base_image");
    ck_assert_str_eq(str_at(base, "name"), "docker.io/library/debian:12");
    ck_assert_str_eq(str_at(base, "source"), "annotation");
    json_decref(document);
    json_decref(manifest);
    json_decref(annotations);
}
END_TEST

START_TEST(base_image_set)
{
    json_t *document = image_document(NULL, 0, NULL, NULL);
    struct pg_error *err = NULL;
    json_t *base;

    ck_assert(json_is_null(json_object_get(document, "base_image")));
    ck_assert_int_eq(inspector_document_set_base(document,
                                                 "docker.io/library/alpine:3",
                                                 "sha256:a1", "lineage", &err),
                     0);
    base = json_object_get(document, "base_image");
    ck_assert_str_eq(str_at(base, "name"), "docker.io/library/alpine:3");
    ck_assert_str_eq(str_at(base, "digest"), "sha256:a1");
    ck_assert_str_eq(str_at(base, "source"), "lineage");

    ck_assert_int_eq(
        inspector_document_set_base(document, "x", "sha256:a1", "", &err), -1);
    assert_error(err, 500, PG_ERR_INTERNAL,
                 "inspector_document_set_base needs a document, a name, a "
                 "digest and a non-empty source");
    pg_error_free(err);
    json_decref(document);
}
END_TEST

/* Writes "sha256:" and the SHA-256 that sha256sum computes of text. */
static void
sha256sum_of(const char *text, char *out, size_t size)
{
    char command[512];
    char hex[65] = "";
    FILE *pipe;

    snprintf(command, sizeof(command), "printf '%%s' '%s' | sha256sum", text);
    pipe = popen(command, "r");
    ck_assert_ptr_nonnull(pipe);
    ck_assert_int_eq(fscanf(pipe, "%64s", hex), 1);
    ck_assert_int_eq(pclose(pipe), 0);
    snprintf(out, size, "sha256:%s", hex);
}

START_TEST(chain_ids_match_sha256sum)
{
    static const char *const diff_ids[] = {
        "sha256:1b8b5a4b1b1d3b4c0d2c7d6bcb8b4a8fd0b8b6f4c6d1f1d4f0e9c9a4c2b0"
        "e7d1",
        "sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2"
        "b1a0",
        "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccdd"
        "eeff",
    };
    char text[256];
    char expected[2][80];
    json_t *input =
        json_pack("[s, s, s]", diff_ids[0], diff_ids[1], diff_ids[2]);
    json_t *chain_ids = inspector_chain_ids(input);

    snprintf(text, sizeof(text), "%s %s", diff_ids[0], diff_ids[1]);
    sha256sum_of(text, expected[0], sizeof(expected[0]));
    snprintf(text, sizeof(text), "%s %s", expected[0], diff_ids[2]);
    sha256sum_of(text, expected[1], sizeof(expected[1]));

    ck_assert_uint_eq(json_array_size(chain_ids), 3);
    ck_assert_str_eq(json_string_value(json_array_get(chain_ids, 0)),
                     diff_ids[0]);
    ck_assert_str_eq(json_string_value(json_array_get(chain_ids, 1)),
                     expected[0]);
    ck_assert_str_eq(json_string_value(json_array_get(chain_ids, 2)),
                     expected[1]);
    json_decref(chain_ids);
    json_decref(input);
}
END_TEST

START_TEST(chain_ids_invalid)
{
    json_t *empty = json_array();
    json_t *number = json_pack("[s, i]", "sha256:a", 1);
    json_t *object = json_object();
    json_t *chain_ids = inspector_chain_ids(empty);

    ck_assert_uint_eq(json_array_size(chain_ids), 0);
    ck_assert(json_is_array(chain_ids));
    ck_assert_ptr_null(inspector_chain_ids(number));
    ck_assert_ptr_null(inspector_chain_ids(object));
    ck_assert_ptr_null(inspector_chain_ids(NULL));
    json_decref(chain_ids);
    json_decref(object);
    json_decref(number);
    json_decref(empty);
}
END_TEST

/* ---- an image read from real layers ---- */

static const struct inspector_options catalog_limits = {
    .entries_max = PG_LAYER_ENTRIES_DEFAULT_MAX,
    .bytes_max = PG_LAYER_BYTES_DEFAULT_MAX,
    .path_length_max = PG_LAYER_PATH_DEFAULT_MAX,
    .ratio_max = PG_LAYER_RATIO_DEFAULT_MAX,
    .file_bytes_max = PG_INSPECT_FILE_DEFAULT_MAX,
    .secret_file_bytes_max = PG_SECRET_FILE_DEFAULT_MAX,
};

/* One entry of a layer with content: a file when content is set, a
 * symlink when link is set, else a directory. */
struct text_entry {
    const char *path;
    const char *content;
    const char *link;
};

/* Writes a gzip layer of entries, lists it as the gate does and returns
 * the result under the digest sha256:l<index>. */
static json_t *
text_layer(size_t index, const struct text_entry *entries, size_t n)
{
    char name[32];
    char digest[32];
    const char *path;
    struct archive *a;
    struct pg_error *err = NULL;
    json_t *result;

    snprintf(name, sizeof(name), "text%zu.tar.gz", index);
    snprintf(digest, sizeof(digest), "sha256:l%zu", index);
    path = scratch_path(name);
    a = writer_open(path, COMPRESSION_GZIP);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *entry = archive_entry_new();
        size_t len =
            entries[i].content != NULL ? strlen(entries[i].content) : 0;

        archive_entry_set_pathname(entry, entries[i].path);
        archive_entry_set_perm(entry, entries[i].link != NULL ? 0777 : 0644);
        archive_entry_set_size(entry, (la_int64_t)len);
        if (entries[i].content != NULL) {
            archive_entry_set_filetype(entry, AE_IFREG);
        } else if (entries[i].link != NULL) {
            archive_entry_set_filetype(entry, AE_IFLNK);
            archive_entry_set_symlink(entry, entries[i].link);
        } else {
            archive_entry_set_filetype(entry, AE_IFDIR);
            archive_entry_set_perm(entry, 0755);
        }
        ck_assert_int_eq(archive_write_header(a, entry), ARCHIVE_OK);
        if (len > 0)
            ck_assert_int_eq(archive_write_data(a, entries[i].content, len),
                             (la_ssize_t)len);
        archive_entry_free(entry);
    }
    writer_close(a);

    result =
        inspector_list_layer(path, digest, GZIP_LAYER, &catalog_limits, &err);
    ck_assert_msg(err == NULL, "%s", err != NULL ? err->message : "");
    return result;
}

static const struct text_entry debian_base[] = {
    {"etc/", NULL, NULL},
    {"etc/os-release", NULL, "../usr/lib/os-release"},
    {"usr/lib/os-release",
     "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
     "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n"
     "VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
     NULL},
    {"var/lib/dpkg/status",
     "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
     "Multi-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u4\n"
     "Description: GNU C Library: Shared libraries\n\n"
     "Package: bash\nStatus: install ok installed\nArchitecture: amd64\n"
     "Version: 5.2.15-2+b2\nDescription: GNU Bourne Again SHell\n",
     NULL},
    {"usr/share/doc/libc6/copyright",
     "Format: https://www.debian.org/doc/packaging-manuals/"
     "copyright-format/1.0/\nUpstream-Name: glibc\n\n"
     "Files: *\nCopyright: 1991-2023 Free Software Foundation, Inc.\n"
     "License: LGPL-2.1\n",
     NULL},
    {"tmp/setup.sh", "#!/bin/sh\n", NULL},
};

static const struct text_entry app_layer[] = {
    {"root/.aws/credentials",
     "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", NULL},
    {"usr/local/lib/python3.11/site-packages/flask-3.0.0.dist-info/METADATA",
     "Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.0\n", NULL},
    {"tmp/.wh.setup.sh", "", NULL},
};

static const struct text_entry cleanup_layer[] = {
    {"root/.aws/.wh.credentials", "", NULL},
};

/* Builds the document of a three-layer Debian image from real layers. */
static json_t *
real_image_document(void)
{
    json_t *results[3] = {
        text_layer(0, debian_base, TABLE_SIZE(debian_base)),
        text_layer(1, app_layer, TABLE_SIZE(app_layer)),
        text_layer(2, cleanup_layer, TABLE_SIZE(cleanup_layer)),
    };
    json_t *history =
        json_pack("[{s:s, s:s}, {s:s, s:s, s:b}, {s:s, s:s}, {s:s, s:s}, "
                  "{s:s, s:s, s:b}]",
                  "created", "2024-05-13T00:00:00Z", "created_by",
                  "/bin/sh -c #(nop) ADD file:2b1a8fe9e9c2 in / ", "created",
                  "2024-05-13T00:00:00Z", "created_by",
                  "/bin/sh -c #(nop)  CMD [\"bash\"]", "empty_layer", true,
                  "created", "2024-05-20T09:00:00Z", "created_by",
                  "RUN /bin/sh -c pip install flask==3.0.0 # buildkit",
                  "created", "2024-05-20T09:00:01Z", "created_by",
                  "RUN |1 AWS_SECRET_ACCESS_KEY=abc /bin/sh -c rm "
                  "/root/.aws/credentials # buildkit",
                  "created", "2024-05-20T09:00:02Z", "created_by",
                  "CMD [\"flask\" \"run\"]", "empty_layer", true);
    json_t *annotations = json_pack(
        "{s:s, s:s}", "org.opencontainers.image.base.name",
        "docker.io/library/debian:12", "org.opencontainers.image.base.digest",
        "sha256:"
        "b5ace515e78743215a1b101a6f17e59ed74b17132139ca3af3c37e605205e973");

    return image_document(results, 3, history, annotations);
}

/* The catalogers' findings pass through the merge: the deleted script
 * and credentials file are not present, the secret is kept. */
START_TEST(document_real_layers)
{
    json_t *document = real_image_document();
    json_t *packages = json_object_get(document, "packages");
    json_t *secrets = json_object_get(document, "secrets");
    json_t *os = json_object_get(document, "os");
    json_t *dockerfile =
        json_object_get(json_object_get(document, "config"), "dockerfile");
    json_t *libc6 = json_array_get(packages, 1);

    ck_assert_str_eq(str_at(os, "path"), "usr/lib/os-release");
    ck_assert_str_eq(str_at(os, "id"), "debian");
    ck_assert_str_eq(str_at(os, "version_id"), "12");
    ck_assert_uint_eq(json_array_size(packages), 3);
    ck_assert_str_eq(str_at(json_array_get(packages, 0), "purl"),
                     "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&"
                     "distro=debian-12");
    ck_assert_str_eq(str_at(libc6, "purl"),
                     "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&"
                     "distro=debian-12");
    ck_assert_str_eq(json_string_value(
                         json_array_get(json_object_get(libc6, "licenses"), 0)),
                     "LGPL-2.1");
    ck_assert_str_eq(str_at(json_array_get(packages, 2), "name"), "Flask");
    ck_assert_int_eq(int_at(json_array_get(packages, 2), "layer"), 1);
    /* One finding for the file's name and one for the key on line 2. */
    ck_assert_uint_eq(json_array_size(secrets), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *secret = json_array_get(secrets, i);

        ck_assert_str_eq(str_at(secret, "path"), "root/.aws/credentials");
        ck_assert_int_eq(int_at(secret, "line"), i == 0 ? 0 : 2);
        ck_assert_int_eq(int_at(secret, "layer"), 1);
        ck_assert(json_is_false(json_object_get(secret, "present")));
    }
    ck_assert(!present_at(document, 0, "tmp/setup.sh"));
    ck_assert_int_eq(int_at(json_object_get(document, "summary"), "files"), 10);
    ck_assert_int_eq(
        int_at(json_object_get(document, "summary"), "present_files"), 6);
    ck_assert_uint_eq(json_array_size(dockerfile), 5);
    ck_assert_str_eq(str_at(json_array_get(dockerfile, 3), "value"),
                     "rm /root/.aws/credentials # buildkit");
    json_decref(document);
}
END_TEST

/* ---- suite ---- */

static TCase *
classify_tcase(void)
{
    TCase *tc = tcase_create("classify");

    tcase_add_loop_test(tc, classify_table, 0, TABLE_SIZE(classify_cases));
    tcase_add_test(tc, classify_kind_names);
    tcase_add_test(tc, classify_tar_layer_types);
    tcase_add_loop_test(tc, normalize_table, 0, TABLE_SIZE(normalize_cases));
    tcase_add_loop_test(tc, parent_segment_table, 0,
                        TABLE_SIZE(parent_segment_cases));
    tcase_add_test(tc, json_text_valid);
    tcase_add_test(tc, json_text_invalid);
    return tc;
}

static TCase *
layer_tcase(void)
{
    TCase *tc = tcase_create("layer");

    /* The 64 MiB layers make these the slowest tests, so the timeout
     * is raised above Check's default of 4 seconds. */
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_loop_test(tc, layer_list_sample, COMPRESSION_NONE,
                        COMPRESSION_ZSTD + 1);
    tcase_add_test(tc, layer_list_parent_segments);
    tcase_add_test(tc, layer_list_compressed_size);
    tcase_add_test(tc, layer_list_empty_tar);
    tcase_add_test(tc, layer_list_mislabeled_compression);
    tcase_add_test(tc, layer_list_utf8_path);
    tcase_add_test(tc, layer_list_latin1_path);
    tcase_add_test(tc, layer_entries_at_max);
    tcase_add_test(tc, layer_entries_over_max);
    tcase_add_test(tc, layer_bytes_limit);
    tcase_add_test(tc, layer_path_at_max);
    tcase_add_test(tc, layer_path_over_max);
    tcase_add_test(tc, layer_link_over_max);
    tcase_add_test(tc, layer_ratio_over_max);
    tcase_add_test(tc, layer_ratio_within_max);
    tcase_add_test(tc, layer_ratio_zstd);
    tcase_add_test(tc, layer_truncated_gzip);
    tcase_add_test(tc, layer_random_bytes);
    tcase_add_test(tc, layer_zip_rejected);
    tcase_add_test(tc, layer_unknown_media_type);
    tcase_add_test(tc, layer_missing_file);
    return tc;
}

static TCase *
document_tcase(void)
{
    TCase *tc = tcase_create("document");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_loop_test(tc, env_secret_table, 0, TABLE_SIZE(secret_cases));
    tcase_add_loop_test(tc, redact_table, 0, TABLE_SIZE(redact_cases));
    tcase_add_test(tc, depth_at_max);
    tcase_add_test(tc, depth_over_max);
    tcase_add_test(tc, depth_ignores_strings);
    tcase_add_test(tc, document_header);
    tcase_add_test(tc, config_secrets_reported_and_redacted);
    tcase_add_test(tc, config_secrets_after_escapes);
    tcase_add_test(tc, document_platform);
    tcase_add_test(tc, document_config_fields);
    tcase_add_test(tc, document_env_redaction);
    tcase_add_test(tc, document_history);
    tcase_add_test(tc, document_layers);
    tcase_add_test(tc, document_files);
    tcase_add_test(tc, document_summary);
    tcase_add_test(tc, document_config_defaults);
    tcase_add_loop_test(tc, document_bad_config, 0,
                        TABLE_SIZE(bad_config_cases));
    tcase_add_test(tc, document_config_duplicate_key);
    tcase_add_loop_test(tc, name_match_table, 0, TABLE_SIZE(name_match_cases));
    tcase_add_loop_test(tc, config_ambiguous_key, 0,
                        TABLE_SIZE(ambiguous_config_cases));
    tcase_add_loop_test(tc, manifest_ambiguous_key, 0,
                        TABLE_SIZE(ambiguous_manifest_cases));
    tcase_add_test(tc, config_key_case_folded);
    tcase_add_test(tc, config_similar_keys_kept);
    tcase_add_test(tc, document_config_too_deep);
    tcase_add_test(tc, document_config_too_large);
    tcase_add_test(tc, document_too_many_layers);
    tcase_add_test(tc, document_layer_count_mismatch);
    tcase_add_test(tc, document_layer_order_mismatch);
    tcase_add_test(tc, document_from_listing);
    tcase_add_test(tc, document_failed);
    tcase_add_test(tc, document_artifact);
    tcase_add_test(tc, document_artifact_config_type);
    return tc;
}

/* Hostile merges, each of which takes well under a second when every
 * path costs O(length * log n). */
static TCase *
merge_hostile_tcase(void)
{
    TCase *tc = tcase_create("merge_hostile");

    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, merge_deep_paths);
    return tc;
}

static TCase *
merge_tcase(void)
{
    TCase *tc = tcase_create("merge");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, merge_whiteout_file);
    tcase_add_test(tc, merge_whiteout_directory);
    tcase_add_test(tc, merge_opaque_directory);
    tcase_add_test(tc, merge_opaque_root);
    tcase_add_test(tc, merge_replaced_file);
    tcase_add_test(tc, merge_file_replaces_directory);
    tcase_add_test(tc, merge_readded_after_whiteout);
    tcase_add_test(tc, merge_same_layer_order);
    tcase_add_test(tc, merge_summary_present_only);
    tcase_add_test(tc, merge_many_files);
    tcase_add_test(tc, findings_missing_are_empty);
    tcase_add_test(tc, findings_status_replaced);
    tcase_add_test(tc, findings_deleted_site_packages);
    tcase_add_test(tc, findings_secret_deleted_file);
    tcase_add_test(tc, findings_notes_kept);
    tcase_add_test(tc, findings_os_precedence);
    tcase_add_test(tc, findings_os_fallback);
    tcase_add_loop_test(tc, findings_purl_table, 0, TABLE_SIZE(purl_cases));
    tcase_add_test(tc, findings_distro_null_without_os);
    tcase_add_test(tc, findings_dpkg_license_join);
    tcase_add_test(tc, findings_package_order);
    tcase_add_test(tc, findings_malformed);
    tcase_add_test(tc, dockerfile_forms);
    tcase_add_test(tc, base_image_from_annotations);
    tcase_add_test(tc, base_image_set);
    tcase_add_test(tc, chain_ids_match_sha256sum);
    tcase_add_test(tc, chain_ids_invalid);
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, document_real_layers);
    return tc;
}

int
main(void)
{
    Suite *suite = suite_create("inspector");
    SRunner *runner;
    int failed;

    suite_add_tcase(suite, classify_tcase());
    suite_add_tcase(suite, layer_tcase());
    suite_add_tcase(suite, document_tcase());
    suite_add_tcase(suite, merge_tcase());
    suite_add_tcase(suite, merge_hostile_tcase());
    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
