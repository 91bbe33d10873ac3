/*
 * The image document: the one JSON object the policy reads. Its layout is
 * stable within a document_version, and a change of layout bumps
 * INSPECTOR_DOCUMENT_VERSION, which is part of the key the document is
 * stored under.
 *
 * Layout of document_version 2 for an inspected image, which
 * docs/image-document.md describes for users with an example:
 *
 *   document_version   2
 *   inspector_version  "2"
 *   kind               "image"
 *   source             {"registry", "repository", "reference"}: where the
 *                      image was pulled from; missing parts are ""
 *   manifest           {"digest", "media_type", "config_digest",
 *                      "config_media_type", "annotations": {name: value}}
 *   inspection         {"status": "ok", "notes": [{"cataloger", "path",
 *                      "message", "layer"}]}: files a cataloger could not
 *                      read, from every layer
 *   platform           {"os", "architecture", "variant"}; "variant" only
 *                      when the image config has one
 *   config             from the image config:
 *     user             "" when unset
 *     env              [{"name", "value"}], in image order; the value of
 *                      a secret name (below) is "<redacted>"
 *     exposed_ports    ["443/tcp", "80/tcp"], sorted bytewise
 *     volumes          ["/data"], sorted bytewise
 *     labels           {name: value}; the value of a secret name is
 *                      "<redacted>"
 *     entrypoint, cmd  [argument, ...], with secret assignments redacted
 *     working_dir      "" when unset
 *     created          "" when unset, otherwise as the image states it
 *     history          [{"created", "created_by", "empty_layer": bool,
 *                      "comment"}], with secret assignments in
 *                      created_by redacted
 *     dockerfile       [{"instruction", "value"}]: one per history entry
 *                      with a created_by, read back as a Dockerfile line
 *                      (section_add_dockerfile)
 *   rootfs             {"diff_ids": ["sha256:...", ...]}
 *   layers             [{"index", "digest", "media_type", "size",
 *                      "entries", "bytes"}], in manifest order; "size" is
 *                      the compressed size, "bytes" the decompressed size
 *   files              [{"path", "layer", "type", "mode", "size", "uid",
 *                      "gid", "present", "link", "target", "raw_path"}],
 *                      every entry of every layer in order; "layer" is
 *                      the layer's index, "present" is true when the
 *                      entry is visible in the merged file system (below),
 *                      "link" appears only on symlinks and hard links and
 *                      "target" only on whiteouts (see layer.c). "path",
 *                      a hard link's "link" and "target" have "." and
 *                      ".." resolved lexically, as runtimes resolve them
 *                      before unpacking, and never go above the root.
 *                      "raw_path", the name as the layer has it, appears
 *                      only when that name has a ".." segment, such as
 *                      "root/.aws/x/../credentials" for the path
 *                      "root/.aws/credentials".
 *   os                 the os-release finding (catalog.h) of the merged
 *                      file system with "layer", etc/os-release before
 *                      usr/lib/os-release, or null
 *   packages           the package findings whose file is visible, with
 *                      "layer", sorted by type, name, version and path;
 *                      deb, apk and rpm packages also get "purl" and
 *                      "distro": {"id", "version_id"} or null, and deb
 *                      packages without licenses those of their copyright
 *                      file
 *   secrets            every secret finding with "layer" and "present"
 *   summary            {"layers", "files", "present_files",
 *                      "setuid_files": [path], "world_writable": [path],
 *                      "packages", "secrets"}
 *   base_image         {"name", "digest", "source": "annotation"} from
 *                      the manifest's org.opencontainers.image.base.name
 *                      and .digest annotations, or null until
 *                      inspector_document_set_base sets it
 *
 * The merged file system is what a runtime unpacks: each layer applied
 * over the ones before it as the OCI layer changeset rules say. An entry
 * is present unless something applied after it removes it: a later entry
 * at its path, a later non-directory at one of its parent directories, a
 * whiteout in a later layer naming its path or a parent directory, or an
 * opaque whiteout in a later layer inside one of its parent directories.
 * Whiteouts are never present. "files" keeps the entries that are not
 * present, because their bytes are still in the image.
 *
 * An os-release, package or license finding counts only when its "path"
 * is present and the visible entry there comes from the finding's own
 * layer, so packages of a dpkg status file that a later layer replaced
 * or deleted are gone. Secrets and notes are all kept.
 *
 * "setuid_files" lists present regular files and hard links with the
 * setuid or setgid bit. "world_writable" lists present entries writable
 * by others, except symlinks (whose mode means nothing) and directories
 * with the sticky bit (such as /tmp). A path has at most one present
 * entry, so neither list repeats a path.
 *
 * A document whose inspection failed has kind "image", the source, the
 * manifest, "inspection": {"status": "failed", "error": message,
 * "notes": []}, "layers" with only index, digest, media_type and size,
 * "os": null, "packages": [], "secrets": [] and "base_image" from the
 * annotations. An artifact's document has kind "artifact", the source,
 * the manifest, "artifact_type" (the manifest's artifactType, else its
 * config media type), "inspection": {"status": "ok", "notes": []},
 * "subject" {"digest", "media_type", "size"} when the manifest refers to
 * another one, the same short "layers", "os": null, "packages": [],
 * "secrets": [] and "base_image": null.
 *
 * A secret name contains PASSWORD, PASSWD, SECRET, TOKEN, APIKEY, API_KEY,
 * PRIVATEKEY, PRIVATE_KEY, CREDENTIAL, ACCESSKEY or ACCESS_KEY in any
 * case. A secret assignment is NAME=VALUE with a secret NAME, as in
 * "ENV DB_PASSWORD=x" or "--token=x", and its VALUE becomes "<redacted>".
 * The document is stored and shown to users, and an image that bakes in a
 * credential must not spread it further.
 *
 * Missing optional fields of the image config take the defaults above.
 * A field present with the wrong JSON type fails the inspection, because
 * a runtime would reject the image or read it differently than we do.
 *
 * Container runtimes decode the image config and the manifest with Go's
 * encoding/json, which matches member names to fields without regard to
 * case, and the last matching member wins. So "user" is read as User, and
 * a config with both "User": "1000" and "user": "0" runs as root. The
 * image config's fields are therefore found the same way here, and an
 * object of the image config or the manifest with two members that match
 * one field read here fails the inspection.
 * NOTE: the manifest's members are still read only as spelled, so
 * "Annotations" alone is missing from the document, and a manifest whose
 * layer list is spelled "Layers" fails for lack of "layers".
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "config/error.h"
#include "config/limits.h"
#include "config/parse.h"
#include "inspector/catalog.h"
#include "inspector/inspector.h"

#define DEFAULT_MANIFEST_MEDIA_TYPE "application/vnd.oci.image.manifest.v1+json"
#define REDACTED_VALUE "<redacted>"

/* Bytes of a field name in an error message, such as config.Env[12]. */
#define FIELD_NAME_MAX 128

/* Substrings of environment variable names whose values are withheld. */
static const char *const secret_env_words[] = {
    "PASSWORD",   "PASSWD",    "SECRET",     "TOKEN",
    "APIKEY",     "API_KEY",   "PRIVATEKEY", "PRIVATE_KEY",
    "CREDENTIAL", "ACCESSKEY", "ACCESS_KEY", NULL,
};

/* Length of a ChainID: "sha256:" and 64 hex digits. */
#define CHAIN_ID_LENGTH 71

struct file_summary {
    json_int_t files;
    json_int_t present_files;
    json_t *setuid_files;   /* visible paths only */
    json_t *world_writable; /* visible paths only */
};

/*
 * Returns the length of the valid UTF-8 sequence that starts at text and
 * fits in left bytes, or 0 when there is none. Overlong forms, surrogates
 * and code points above U+10FFFF are invalid, as RFC 3629 defines.
 */
static size_t
utf8_sequence_length(const unsigned char *text, size_t left)
{
    uint32_t code_point;
    size_t len;

    if (text[0] < 0x80)
        return 1;
    if (text[0] >= 0xc2 && text[0] <= 0xdf)
        len = 2, code_point = text[0] & 0x1f;
    else if (text[0] >= 0xe0 && text[0] <= 0xef)
        len = 3, code_point = text[0] & 0x0f;
    else if (text[0] >= 0xf0 && text[0] <= 0xf4)
        len = 4, code_point = text[0] & 0x07;
    else
        return 0;

    if (len > left)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((text[i] & 0xc0) != 0x80)
            return 0;
        code_point = (code_point << 6) | (text[i] & 0x3f);
    }

    if (len == 3 &&
        (code_point < 0x800 || (code_point >= 0xd800 && code_point <= 0xdfff)))
        return 0;
    if (len == 4 && (code_point < 0x10000 || code_point > 0x10ffff))
        return 0;
    return len;
}

/* Returns a JSON string of text with invalid bytes replaced, or NULL. */
static json_t *
json_text_replaced(const char *text, size_t len)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *in = (const unsigned char *)text;
    char *out;
    size_t used = 0;
    json_t *result;

    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;

    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_length(in + i, len - i);

        if (n == 0) {
            memcpy(out + used, replacement, 3);
            used += 3;
            i++;
        } else {
            memcpy(out + used, in + i, n);
            used += n;
            i += n;
        }
    }

    result = json_stringn_nocheck(out, used);
    free(out);
    return result;
}

json_t *
inspector_json_text(const char *text, size_t len)
{
    json_t *valid = json_stringn(text, len);

    if (valid != NULL)
        return valid;
    return json_text_replaced(text, len);
}

static void
set_memory_error(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while building the image document; "
                 "retry later");
}

/* Sets key in object, stealing value. A NULL value or a failed insert is
 * a memory shortage. Returns 0 or -1. */
static int
set_new(json_t *object, const char *key, json_t *value, struct pg_error **err)
{
    if (json_object_set_new(object, key, value) < 0) {
        set_memory_error(err);
        return -1;
    }
    return 0;
}

static int
append_new(json_t *array, json_t *value, struct pg_error **err)
{
    if (json_array_append_new(array, value) < 0) {
        set_memory_error(err);
        return -1;
    }
    return 0;
}

static const char *
json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

static int
field_type_error(const char *field, const char *expected, const json_t *value,
                 struct pg_error **err)
{
    pg_error_set(err, 403, PG_ERR_DENIED,
                 "field %s of the image config is %s, but must be %s", field,
                 json_type_name(value), expected);
    return -1;
}

/* Returns the value of key in object, or NULL when object is NULL, the
 * key is missing or its value is JSON null, because Docker writes null
 * for unset fields. */
static json_t *
field_get(const json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);

    return json_is_null(value) ? NULL : value;
}

/* Returns a new JSON string copied from a string member, or "" when the
 * member is missing or not a string. NULL only when memory is short. */
static json_t *
string_member(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);

    if (!json_is_string(value))
        return json_string("");
    return json_stringn(json_string_value(value), json_string_length(value));
}

/*
 * Stores under out_key in out the string field key of object (named field
 * in errors), or "" when it is absent. Returns 0, or -1 when it has
 * another type or memory is short.
 */
static int
copy_string(json_t *out, const char *out_key, const json_t *object,
            const char *key, const char *field, struct pg_error **err)
{
    json_t *value = field_get(object, key);

    if (value != NULL && !json_is_string(value))
        return field_type_error(field, "a string", value, err);
    if (value == NULL)
        return set_new(out, out_key, json_string(""), err);
    return set_new(out, out_key, json_incref(value), err);
}

/* ---- member names, matched as Go's encoding/json matches them ---- */

/* UTF-8 forms of the only two non-ASCII characters that Unicode simple
 * case folding, which encoding/json applies to names, maps to ASCII. */
#define LONG_S_UTF8 "\xc5\xbf"          /* U+017F, folds to 's' */
#define KELVIN_SIGN_UTF8 "\xe2\x84\xaa" /* U+212A, folds to 'k' */

/* The members of the manifest that the document reads. */
static const char *const manifest_fields[] = {
    "mediaType", "config", "layers", "annotations", NULL,
};

/* The members of a descriptor (the config and each layer) that the gate
 * and the document read. */
static const char *const descriptor_fields[] = {
    "mediaType",
    "digest",
    "size",
    NULL,
};

/* The members of the image config, of its "config" and "rootfs" objects
 * and of each "history" entry that the document reads. */
static const char *const image_config_fields[] = {
    "created", "architecture", "os",      "variant",
    "config",  "rootfs",       "history", NULL,
};
static const char *const container_config_fields[] = {
    "User",       "Env", "ExposedPorts", "Volumes", "Labels",
    "Entrypoint", "Cmd", "WorkingDir",   NULL,
};
static const char *const rootfs_fields[] = {"diff_ids", NULL};
static const char *const history_fields[] = {
    "created", "created_by", "empty_layer", "comment", NULL,
};

static char
ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * Returns true when the member name matches field, an ASCII name, as
 * encoding/json matches them: equal after Unicode simple case folding.
 * Besides ASCII letters in either case, that makes U+017F match 's' and
 * U+212A match 'k', so "User" spelled with U+017F is still User.
 */
static bool
member_name_matches(const char *name, const char *field)
{
    for (; *field != '\0'; field++) {
        char lower = ascii_lower(*field);

        if (ascii_lower(*name) == lower)
            name++;
        else if (lower == 's' &&
                 strncmp(name, LONG_S_UTF8, strlen(LONG_S_UTF8)) == 0)
            name += strlen(LONG_S_UTF8);
        else if (lower == 'k' &&
                 strncmp(name, KELVIN_SIGN_UTF8, strlen(KELVIN_SIGN_UTF8)) == 0)
            name += strlen(KELVIN_SIGN_UTF8);
        else
            return false;
    }
    return *name == '\0';
}

/*
 * Finds the member of object that matches field and stores its name in
 * *name, or NULL when there is none or object is not an object. Returns
 * -1 with a 403 error when two or more members match, because runtimes
 * apply the last of them, or merge them when they are objects, so the
 * value that runs may not be the one pullgate reads. source ("image
 * config", "manifest") and where ("config", "layers[0]") place the object
 * in messages.
 */
static int
member_find(const json_t *object, const char *field, const char *source,
            const char *where, const char **name, struct pg_error **err)
{
    const char *key;
    json_t *value;

    *name = NULL;
    json_object_foreach((json_t *)object, key, value)
    {
        if (!member_name_matches(key, field))
            continue;
        if (*name != NULL) {
            pg_error_set(err, 403, PG_ERR_DENIED,
                         "%s has both \"%s\" and \"%s\" at %s; container "
                         "runtimes read such keys without regard to case, "
                         "so the value that applies is ambiguous",
                         source, *name, key, where);
            return -1;
        }
        *name = key;
    }
    return 0;
}

/* Checks that no two members of object match one of fields. */
static int
check_fields(const json_t *object, const char *const *fields,
             const char *source, const char *where, struct pg_error **err)
{
    const char *name;

    for (size_t i = 0; fields[i] != NULL; i++) {
        if (member_find(object, fields[i], source, where, &name, err) < 0)
            return -1;
    }
    return 0;
}

/*
 * Checks the manifest, its config descriptor and each layer descriptor for
 * members that runtimes would read as one field. A layer listed as both
 * "digest" and "Digest" would be inspected under one digest and unpacked
 * from the other.
 */
static int
manifest_check_fields(const json_t *manifest, struct pg_error **err)
{
    const json_t *layer;
    size_t i;

    if (check_fields(manifest, manifest_fields, "manifest", "the top level",
                     err) < 0 ||
        check_fields(json_object_get(manifest, "config"), descriptor_fields,
                     "manifest", "config", err) < 0)
        return -1;
    json_array_foreach(json_object_get(manifest, "layers"), i, layer)
    {
        char where[FIELD_NAME_MAX];

        snprintf(where, sizeof(where), "layers[%zu]", i);
        if (check_fields(layer, descriptor_fields, "manifest", where, err) < 0)
            return -1;
    }
    return 0;
}

/*
 * Renames the member of object that matches each of fields to the field's
 * own spelling, so that json_object_get finds what a runtime reads, such
 * as "user" for "User". Returns -1 with an error when two members match
 * one field or memory is short.
 */
static int
rename_fields(json_t *object, const char *const *fields, const char *where,
              struct pg_error **err)
{
    for (size_t i = 0; fields[i] != NULL; i++) {
        const char *name;

        if (member_find(object, fields[i], "image config", where, &name, err) <
            0)
            return -1;
        if (name == NULL || strcmp(name, fields[i]) == 0)
            continue;
        /* The new key is set before the old one is deleted, because
         * deleting frees the string that name points to. */
        if (set_new(object, fields[i],
                    json_incref(json_object_get(object, name)), err) < 0)
            return -1;
        json_object_del(object, name);
    }
    return 0;
}

/* Gives every member of the image config that the document reads the
 * spelling the rest of this file looks up. */
static int
config_rename_fields(json_t *image_config, struct pg_error **err)
{
    json_t *item;
    size_t i;

    if (rename_fields(image_config, image_config_fields, "the top level", err) <
            0 ||
        rename_fields(json_object_get(image_config, "config"),
                      container_config_fields, "config", err) < 0 ||
        rename_fields(json_object_get(image_config, "rootfs"), rootfs_fields,
                      "rootfs", err) < 0)
        return -1;
    json_array_foreach(json_object_get(image_config, "history"), i, item)
    {
        char where[FIELD_NAME_MAX];

        snprintf(where, sizeof(where), "history[%zu]", i);
        if (rename_fields(item, history_fields, where, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- source and manifest sections, shared by every kind of document ---- */

static json_t *
source_section(const json_t *reference)
{
    return json_pack("{s:o, s:o, s:o}", "registry",
                     string_member(reference, "registry"), "repository",
                     string_member(reference, "repository"), "reference",
                     string_member(reference, "reference"));
}

/* Returns a copy of the string members of an annotations object. Other
 * members are dropped, since the manifest was not validated here. */
static json_t *
annotations_copy(const json_t *annotations)
{
    json_t *copy = json_object();
    const char *key;
    json_t *value;

    if (copy == NULL)
        return NULL;
    json_object_foreach((json_t *)annotations, key, value)
    {
        if (!json_is_string(value))
            continue;
        if (json_object_set_new(copy, key, string_member(annotations, key)) <
            0) {
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

static json_t *
manifest_section(const char *digest, const json_t *manifest)
{
    const json_t *config = json_object_get(manifest, "config");
    bool declared = json_is_string(json_object_get(manifest, "mediaType"));

    /* OCI lets an image manifest omit mediaType, but Docker requires it. */
    return json_pack(
        "{s:s, s:o, s:o, s:o, s:o}", "digest", digest != NULL ? digest : "",
        "media_type",
        declared ? string_member(manifest, "mediaType")
                 : json_string(DEFAULT_MANIFEST_MEDIA_TYPE),
        "config_digest", string_member(config, "digest"), "config_media_type",
        string_member(config, "mediaType"), "annotations",
        annotations_copy(json_object_get(manifest, "annotations")));
}

/* Returns {"digest", "media_type", "size"} of a descriptor, tolerating
 * missing members, or NULL when memory is short. */
static json_t *
descriptor_summary(const json_t *descriptor)
{
    return json_pack("{s:o, s:o, s:I}", "digest",
                     string_member(descriptor, "digest"), "media_type",
                     string_member(descriptor, "mediaType"), "size",
                     json_integer_value(json_object_get(descriptor, "size")));
}

/* Returns the manifest's layers with their index and descriptor fields. */
static json_t *
descriptor_list(const json_t *manifest)
{
    const json_t *layers = json_object_get(manifest, "layers");
    json_t *list = json_array();
    const json_t *layer;
    size_t i;

    if (list == NULL)
        return NULL;
    json_array_foreach(layers, i, layer)
    {
        json_t *entry = descriptor_summary(layer);

        if (entry == NULL ||
            json_object_set_new(entry, "index", json_integer((json_int_t)i)) <
                0 ||
            json_array_append_new(list, entry) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* Returns the fields every document starts with, or NULL when memory is
 * short. */
static json_t *
document_start(const char *kind, const char *manifest_digest,
               const json_t *manifest, const json_t *reference)
{
    return json_pack("{s:i, s:s, s:s, s:o, s:o}", "document_version",
                     INSPECTOR_DOCUMENT_VERSION, "inspector_version",
                     INSPECTOR_VERSION, "kind", kind, "source",
                     source_section(reference), "manifest",
                     manifest_section(manifest_digest, manifest));
}

/* ---- the image config ---- */

/* Parses the image config blob into a JSON object, or returns NULL. */
static json_t *
config_load(const char *bytes, size_t len, struct pg_error **err)
{
    json_error_t parse_error;
    json_t *config;

    if (bytes == NULL) {
        pg_error_set(err, 403, PG_ERR_DENIED, "image config is missing");
        return NULL;
    }
    if (len > PG_IMAGE_CONFIG_MAX_BYTES) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "image config is %zu bytes, more than the maximum of "
                     "%u (PG_IMAGE_CONFIG_MAX_BYTES)",
                     len, PG_IMAGE_CONFIG_MAX_BYTES);
        return NULL;
    }
    if (!pg_json_depth_within(bytes, len, PG_JSON_MAX_DEPTH)) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "image config nests arrays and objects more than %d "
                     "levels deep (PG_JSON_MAX_DEPTH)",
                     PG_JSON_MAX_DEPTH);
        return NULL;
    }

    config = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &parse_error);
    if (config == NULL) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "image config is not valid JSON: %s at line %d, "
                     "column %d",
                     parse_error.text, parse_error.line, parse_error.column);
        return NULL;
    }
    if (!json_is_object(config)) {
        field_type_error("(top level)", "an object", config, err);
        json_decref(config);
        return NULL;
    }
    return config;
}

static int
document_add_platform(json_t *document, const json_t *image_config,
                      struct pg_error **err)
{
    json_t *platform = json_object();
    json_t *variant = field_get(image_config, "variant");
    int rc = -1;

    if (platform == NULL) {
        set_memory_error(err);
        goto out;
    }
    if (copy_string(platform, "os", image_config, "os", "os", err) < 0 ||
        copy_string(platform, "architecture", image_config, "architecture",
                    "architecture", err) < 0)
        goto out;
    if (variant != NULL && copy_string(platform, "variant", image_config,
                                       "variant", "variant", err) < 0)
        goto out;

    rc = set_new(document, "platform", json_incref(platform), err);

out:
    json_decref(platform);
    return rc;
}

/* Returns true when an environment variable name, of len bytes, contains
 * one of secret_env_words in any case. */
static bool
env_name_is_secret(const char *name, size_t len)
{
    for (size_t w = 0; secret_env_words[w] != NULL; w++) {
        const char *word = secret_env_words[w];
        size_t word_len = strlen(word);

        for (size_t start = 0; start + word_len <= len; start++) {
            size_t i = 0;

            /* ASCII case folding, independent of the locale. */
            while (i < word_len &&
                   (name[start + i] == word[i] ||
                    (name[start + i] >= 'a' && name[start + i] <= 'z' &&
                     name[start + i] - 'a' + 'A' == word[i])))
                i++;
            if (i == word_len)
                return true;
        }
    }
    return false;
}

static bool
is_name_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Returns the end of the value that starts at text[start]: the matching
 * quote when it is quoted, otherwise the next space, tab or newline. */
static size_t
assignment_value_end(const char *text, size_t len, size_t start)
{
    size_t end = start;

    if (start < len && (text[start] == '"' || text[start] == '\'')) {
        const char *close =
            memchr(text + start + 1, text[start], len - start - 1);

        return close == NULL ? len : (size_t)(close - text) + 1;
    }
    while (end < len && text[end] != ' ' && text[end] != '\t' &&
           text[end] != '\n')
        end++;
    return end;
}

/*
 * Returns a new JSON string of the len bytes at text in which the value
 * of every NAME=VALUE assignment with a secret NAME is replaced by
 * "<redacted>". NAME is the run of letters, digits, '_', '-' and '.'
 * before the '=', which covers "ENV DB_PASSWORD=x" and "RUN |1 TOKEN=x"
 * in history and "--password=x" in a command. Returns NULL when memory
 * is short.
 */
static json_t *
redact_assignments(const char *text, size_t len)
{
    size_t room = len + 1;
    size_t copied = 0;
    size_t used = 0;
    json_t *result;
    char *out;

    for (size_t i = 0; i < len; i++)
        room += text[i] == '=' ? strlen(REDACTED_VALUE) : 0;
    out = malloc(room);
    if (out == NULL)
        return NULL;

    for (size_t i = 0; i < len; i++) {
        size_t name = i;

        if (text[i] != '=')
            continue;
        while (name > 0 && is_name_byte(text[name - 1]))
            name--;
        if (!env_name_is_secret(text + name, i - name))
            continue;

        memcpy(out + used, text + copied, i + 1 - copied);
        used += i + 1 - copied;
        memcpy(out + used, REDACTED_VALUE, strlen(REDACTED_VALUE));
        used += strlen(REDACTED_VALUE);
        copied = assignment_value_end(text, len, i + 1);
        i = copied - 1;
    }
    memcpy(out + used, text + copied, len - copied);
    used += len - copied;

    result = json_stringn(out, used);
    free(out);
    return result;
}

/* Replaces the string under key in object with its redacted form. */
static int
redact_member(json_t *object, const char *key, struct pg_error **err)
{
    json_t *value = json_object_get(object, key);

    return set_new(
        object, key,
        redact_assignments(json_string_value(value), json_string_length(value)),
        err);
}

/* Returns {"name", "value"} for one "NAME=VALUE" entry, or NULL when
 * memory is short. An entry without '=' has an empty value. */
static json_t *
env_entry(const json_t *item)
{
    const char *text = json_string_value(item);
    size_t len = json_string_length(item);
    const char *equals = memchr(text, '=', len);
    size_t name_len = equals == NULL ? len : (size_t)(equals - text);
    json_t *value;

    if (env_name_is_secret(text, name_len))
        value = json_string(REDACTED_VALUE);
    else if (equals == NULL)
        value = json_string("");
    else
        value = json_stringn(equals + 1, len - name_len - 1);

    return json_pack("{s:o, s:o}", "name", json_stringn(text, name_len),
                     "value", value);
}

static int
section_add_env(json_t *section, const json_t *container, struct pg_error **err)
{
    json_t *env = field_get(container, "Env");
    json_t *list;
    json_t *item;
    size_t i;

    if (env != NULL && !json_is_array(env))
        return field_type_error("config.Env", "an array", env, err);

    list = json_array();
    if (set_new(section, "env", list, err) < 0)
        return -1;
    json_array_foreach(env, i, item)
    {
        char field[FIELD_NAME_MAX];

        if (!json_is_string(item)) {
            snprintf(field, sizeof(field), "config.Env[%zu]", i);
            return field_type_error(field, "a string", item, err);
        }
        if (append_new(list, env_entry(item), err) < 0)
            return -1;
    }
    return 0;
}

static int
compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Stores under out_key the sorted member names of the object field key of
 * container, such as ExposedPorts, whose values carry nothing.
 */
static int
section_add_keys(json_t *section, const char *out_key, const json_t *container,
                 const char *key, const char *field, struct pg_error **err)
{
    json_t *object = field_get(container, key);
    const char **names = NULL;
    json_t *list = NULL;
    const char *name;
    json_t *value;
    size_t n = 0;
    int rc = -1;

    if (object != NULL && !json_is_object(object))
        return field_type_error(field, "an object", object, err);

    names = calloc(json_object_size(object) + 1, sizeof(*names));
    list = json_array();
    if (names == NULL || list == NULL) {
        set_memory_error(err);
        goto out;
    }
    json_object_foreach(object, name, value)
    {
        names[n++] = name;
    }
    qsort(names, n, sizeof(*names), compare_strings);

    for (size_t i = 0; i < n; i++) {
        if (append_new(list, json_string(names[i]), err) < 0)
            goto out;
    }
    rc = set_new(section, out_key, json_incref(list), err);

out:
    json_decref(list);
    free(names);
    return rc;
}

static int
section_add_labels(json_t *section, const json_t *container,
                   struct pg_error **err)
{
    json_t *labels = field_get(container, "Labels");
    json_t *copy;
    const char *name;
    json_t *value;

    if (labels != NULL && !json_is_object(labels))
        return field_type_error("config.Labels", "an object", labels, err);

    copy = json_object();
    if (set_new(section, "labels", copy, err) < 0)
        return -1;
    json_object_foreach(labels, name, value)
    {
        char field[FIELD_NAME_MAX];

        if (!json_is_string(value)) {
            snprintf(field, sizeof(field), "config.Labels[\"%s\"]", name);
            return field_type_error(field, "a string", value, err);
        }
        json_t *copied = env_name_is_secret(name, strlen(name))
                             ? json_string(REDACTED_VALUE)
                             : json_incref(value);

        if (set_new(copy, name, copied, err) < 0)
            return -1;
    }
    return 0;
}

/* Stores under out_key a copy of an array-of-strings field, or [], with
 * secret assignments redacted when redact is set. */
static int
section_add_strings(json_t *section, const char *out_key,
                    const json_t *container, const char *key, const char *field,
                    bool redact, struct pg_error **err)
{
    json_t *array = field_get(container, key);
    json_t *copy;
    json_t *item;
    size_t i;

    if (array != NULL && !json_is_array(array))
        return field_type_error(field, "an array", array, err);

    copy = json_array();
    if (set_new(section, out_key, copy, err) < 0)
        return -1;
    json_array_foreach(array, i, item)
    {
        char item_field[FIELD_NAME_MAX];

        if (!json_is_string(item)) {
            snprintf(item_field, sizeof(item_field), "%s[%zu]", field, i);
            return field_type_error(item_field, "a string", item, err);
        }
        json_t *copied = redact ? redact_assignments(json_string_value(item),
                                                     json_string_length(item))
                                : json_incref(item);

        if (append_new(copy, copied, err) < 0)
            return -1;
    }
    return 0;
}

/* Returns the document form of one history entry, or NULL. */
static json_t *
history_entry(const json_t *item, size_t index, struct pg_error **err)
{
    char field[FIELD_NAME_MAX];
    json_t *entry = json_object();
    json_t *empty = field_get(item, "empty_layer");
    json_t *result = NULL;

    if (entry == NULL) {
        set_memory_error(err);
        goto out;
    }

    snprintf(field, sizeof(field), "history[%zu].created", index);
    if (copy_string(entry, "created", item, "created", field, err) < 0)
        goto out;
    snprintf(field, sizeof(field), "history[%zu].created_by", index);
    if (copy_string(entry, "created_by", item, "created_by", field, err) < 0 ||
        redact_member(entry, "created_by", err) < 0)
        goto out;
    snprintf(field, sizeof(field), "history[%zu].empty_layer", index);
    if (empty != NULL && !json_is_boolean(empty)) {
        field_type_error(field, "a boolean", empty, err);
        goto out;
    }
    if (set_new(entry, "empty_layer", json_boolean(json_is_true(empty)), err) <
        0)
        goto out;
    snprintf(field, sizeof(field), "history[%zu].comment", index);
    if (copy_string(entry, "comment", item, "comment", field, err) < 0)
        goto out;

    result = json_incref(entry);

out:
    json_decref(entry);
    return result;
}

static int
section_add_history(json_t *section, const json_t *image_config,
                    struct pg_error **err)
{
    json_t *history = field_get(image_config, "history");
    json_t *list;
    json_t *item;
    size_t i;

    if (history != NULL && !json_is_array(history))
        return field_type_error("history", "an array", history, err);

    list = json_array();
    if (set_new(section, "history", list, err) < 0)
        return -1;
    json_array_foreach(history, i, item)
    {
        char field[FIELD_NAME_MAX];
        json_t *entry;

        if (!json_is_object(item)) {
            snprintf(field, sizeof(field), "history[%zu]", i);
            return field_type_error(field, "an object", item, err);
        }
        entry = history_entry(item, i, err);
        if (entry == NULL || append_new(list, entry, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- the Dockerfile, read back from the history ---- */

/* Tokens a shell wrapper may have between its path and "-c", as in
 * "/bin/bash -o pipefail -c", which SHELL ["/bin/bash", "-o", "pipefail",
 * "-c"] produces. */
#define SHELL_OPTIONS_MAX 4

/* Digits of the build argument count in "|N"; more is not a count. */
#define BUILD_ARGS_DIGITS_MAX 4

/* The instructions a Dockerfile may have, as history spells them. */
static const char *const dockerfile_keywords[] = {
    "ADD",        "ARG",     "CMD",     "COPY",        "ENTRYPOINT",
    "ENV",        "EXPOSE",  "FROM",    "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN",     "SHELL",       "STOPSIGNAL",
    "USER",       "VOLUME",  "WORKDIR", NULL,
};

/* A part of a history string: len bytes at text, not NUL-terminated. */
struct text_span {
    const char *text;
    size_t len;
};

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static struct text_span
span_trim(struct text_span span)
{
    while (span.len > 0 && is_blank(span.text[0])) {
        span.text++;
        span.len--;
    }
    while (span.len > 0 && is_blank(span.text[span.len - 1]))
        span.len--;
    return span;
}

static bool
span_starts_with(struct text_span span, const char *prefix)
{
    size_t len = strlen(prefix);

    return span.len >= len && memcmp(span.text, prefix, len) == 0;
}

/* Returns the length of the token at the start of span: the bytes up to
 * the first blank. */
static size_t
span_token_length(struct text_span span)
{
    size_t len = 0;

    while (len < span.len && !is_blank(span.text[len]))
        len++;
    return len;
}

/* Returns span without its first token and the blanks after it. */
static struct text_span
span_skip_token(struct text_span span)
{
    size_t len = span_token_length(span);
    struct text_span rest = {span.text + len, span.len - len};

    while (rest.len > 0 && is_blank(rest.text[0])) {
        rest.text++;
        rest.len--;
    }
    return rest;
}

/*
 * Stores in *command what follows a shell wrapper at the start of span,
 * such as "/bin/sh -c " or "/bin/bash -o pipefail -c ", and returns true,
 * or returns false when span does not start with one. Docker records a
 * shell-form command as the shell's arguments joined by spaces.
 */
static bool
strip_shell(struct text_span span, struct text_span *command)
{
    if (span.len == 0 || span.text[0] != '/')
        return false;
    span = span_skip_token(span);
    for (int i = 0; i <= SHELL_OPTIONS_MAX && span.len > 0; i++) {
        if (span_token_length(span) == 2 && span_starts_with(span, "-c")) {
            *command = span_skip_token(span);
            return true;
        }
        span = span_skip_token(span);
    }
    return false;
}

/*
 * Returns span without the build arguments that Docker writes before a
 * RUN command, "|2 A=1 B=2 ", or span itself when it has none. The count
 * is the number of NAME=VALUE tokens, but a value with a space spans more
 * tokens, so a shell wrapper later on is taken as the command's start.
 * NOTE: an exec-form RUN whose own arguments contain "/PATH -c" after
 * such a value is cut there.
 */
static struct text_span
strip_build_args(struct text_span span)
{
    struct text_span rest;
    struct text_span command;
    size_t count = 0;
    size_t digits = 0;

    if (!span_starts_with(span, "|"))
        return span;
    while (digits < BUILD_ARGS_DIGITS_MAX && 1 + digits < span.len &&
           span.text[1 + digits] >= '0' && span.text[1 + digits] <= '9') {
        count = count * 10 + (size_t)(span.text[1 + digits] - '0');
        digits++;
    }
    if (digits == 0 || span_token_length(span) != 1 + digits)
        return span;

    rest = span_skip_token(span);
    for (size_t i = 0; i < count && rest.len > 0; i++)
        rest = span_skip_token(rest);
    for (struct text_span scan = rest; scan.len > 0;
         scan = span_skip_token(scan)) {
        if (strip_shell(scan, &command))
            return scan;
    }
    return rest;
}

/* Returns the Dockerfile keyword that span starts with as a whole token,
 * or NULL. */
static const char *
dockerfile_keyword(struct text_span span)
{
    size_t len = span_token_length(span);

    for (size_t i = 0; dockerfile_keywords[i] != NULL; i++) {
        if (strlen(dockerfile_keywords[i]) == len &&
            memcmp(span.text, dockerfile_keywords[i], len) == 0)
            return dockerfile_keywords[i];
    }
    return NULL;
}

static json_t *
instruction_new(const char *instruction, struct text_span value)
{
    value = span_trim(value);
    return json_pack("{s:s, s:s%}", "instruction", instruction, "value",
                     value.text, value.len);
}

/* Returns the RUN instruction of a command with optional build arguments
 * and shell wrapper. */
static json_t *
run_instruction(struct text_span command)
{
    struct text_span shell_command;

    command = strip_build_args(command);
    if (strip_shell(command, &shell_command))
        command = shell_command;
    return instruction_new("RUN", command);
}

/*
 * Returns {"instruction", "value"} for the created_by text of one history
 * entry, or NULL when memory is short. The forms are those of Docker's
 * classic builder, "/bin/sh -c #(nop)  CMD [...]" for an instruction and
 * "|N ARGS /bin/sh -c COMMAND" for RUN, and those of BuildKit, which
 * writes the instruction, "RUN |N ARGS /bin/sh -c COMMAND". Text in
 * neither form, as other build tools write, becomes the comment "#".
 */
static json_t *
dockerfile_instruction(struct text_span text)
{
    struct text_span command;
    const char *keyword;

    if (span_starts_with(text, "|"))
        return run_instruction(text);
    if (strip_shell(text, &command)) {
        if (!span_starts_with(command, "#(nop)"))
            return instruction_new("RUN", command);
        text = span_trim((struct text_span){command.text + strlen("#(nop)"),
                                            command.len - strlen("#(nop)")});
    }

    keyword = dockerfile_keyword(text);
    if (keyword == NULL)
        return instruction_new("#", text);
    if (strcmp(keyword, "RUN") == 0)
        return run_instruction(span_skip_token(text));
    return instruction_new(keyword, span_skip_token(text));
}

/* Adds "dockerfile" from the section's history, whose created_by texts
 * are already redacted. An entry without created_by adds nothing. */
static int
section_add_dockerfile(json_t *section, struct pg_error **err)
{
    const json_t *history = json_object_get(section, "history");
    const json_t *entry;
    json_t *list = json_array();
    size_t i;

    if (set_new(section, "dockerfile", list, err) < 0)
        return -1;
    json_array_foreach(history, i, entry)
    {
        const json_t *created_by = json_object_get(entry, "created_by");
        struct text_span text = span_trim((struct text_span){
            json_string_value(created_by), json_string_length(created_by)});

        if (text.len == 0)
            continue;
        if (append_new(list, dockerfile_instruction(text), err) < 0)
            return -1;
    }
    return 0;
}

/* Adds "config": the container settings, the creation time and history. */
static int
document_add_config(json_t *document, const json_t *image_config,
                    struct pg_error **err)
{
    json_t *container = field_get(image_config, "config");
    json_t *section;

    if (container != NULL && !json_is_object(container))
        return field_type_error("config", "an object", container, err);

    section = json_object();
    if (set_new(document, "config", section, err) < 0)
        return -1;

    if (copy_string(section, "user", container, "User", "config.User", err) <
            0 ||
        section_add_env(section, container, err) < 0 ||
        section_add_keys(section, "exposed_ports", container, "ExposedPorts",
                         "config.ExposedPorts", err) < 0 ||
        section_add_keys(section, "volumes", container, "Volumes",
                         "config.Volumes", err) < 0 ||
        section_add_labels(section, container, err) < 0 ||
        section_add_strings(section, "entrypoint", container, "Entrypoint",
                            "config.Entrypoint", true, err) < 0 ||
        section_add_strings(section, "cmd", container, "Cmd", "config.Cmd",
                            true, err) < 0 ||
        copy_string(section, "working_dir", container, "WorkingDir",
                    "config.WorkingDir", err) < 0 ||
        copy_string(section, "created", image_config, "created", "created",
                    err) < 0 ||
        section_add_history(section, image_config, err) < 0 ||
        section_add_dockerfile(section, err) < 0)
        return -1;
    return 0;
}

/*
 * Adds "rootfs". Each diff_id names the uncompressed form of the layer at
 * the same index, so a count that differs from the manifest's layers is
 * an image no runtime can unpack.
 */
static int
document_add_rootfs(json_t *document, const json_t *image_config,
                    size_t n_layers, struct pg_error **err)
{
    json_t *rootfs = field_get(image_config, "rootfs");
    json_t *section;

    if (rootfs != NULL && !json_is_object(rootfs))
        return field_type_error("rootfs", "an object", rootfs, err);

    section = json_object();
    if (set_new(document, "rootfs", section, err) < 0 ||
        section_add_strings(section, "diff_ids", rootfs, "diff_ids",
                            "rootfs.diff_ids", false, err) < 0)
        return -1;

    if (json_array_size(json_object_get(section, "diff_ids")) != n_layers) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "image config lists %zu rootfs.diff_ids but the "
                     "manifest has %zu layers",
                     json_array_size(json_object_get(section, "diff_ids")),
                     n_layers);
        return -1;
    }
    return 0;
}

/* ---- the merged file system ---- */

/* A later entry at this path replaces an earlier entry at the same path. */
#define MERGE_HIDES_PATH 1u
/* Everything under this path is hidden from earlier entries. */
#define MERGE_HIDES_BELOW 2u

/* A path that an entry has or that a whiteout names. */
struct merge_key {
    const char *path; /* shared with the layer result */
    size_t len;
    unsigned flags;    /* MERGE_HIDES_*, from the entries applied after */
    int present_layer; /* layer of the visible entry at path, or -1 */
};

/*
 * The image's file system with every layer applied: which entries are
 * visible, and for each path the layer its visible entry comes from. keys
 * is sorted by path bytes and searched by bisection, so no input can make
 * a look-up slower than O(log n), as colliding keys can in a hash table.
 */
struct merged_fs {
    struct merge_key *keys;
    size_t n_keys;
    bool *present; /* one per entry, in the order of "files" */
    size_t n_entries;
};

static const char *
entry_type(const json_t *entry)
{
    return json_string_value(json_object_get(entry, "type"));
}

static bool
is_whiteout_type(const char *type)
{
    return strcmp(type, "whiteout") == 0 ||
           strcmp(type, "opaque_whiteout") == 0;
}

static int
compare_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int rc = memcmp(a, b, a_len < b_len ? a_len : b_len);

    if (rc != 0)
        return rc;
    return (a_len > b_len) - (a_len < b_len);
}

static int
compare_merge_keys(const void *a, const void *b)
{
    const struct merge_key *key_a = a;
    const struct merge_key *key_b = b;

    return compare_bytes(key_a->path, key_a->len, key_b->path, key_b->len);
}

static struct merge_key *
merge_find(const struct merged_fs *fs, const char *path, size_t len)
{
    size_t low = 0;
    size_t high = fs->n_keys;

    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int rc =
            compare_bytes(path, len, fs->keys[mid].path, fs->keys[mid].len);

        if (rc == 0)
            return &fs->keys[mid];
        if (rc < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return NULL;
}

static struct merge_key *
merge_find_json(const struct merged_fs *fs, const json_t *path)
{
    return merge_find(fs, json_string_value(path), json_string_length(path));
}

/*
 * Returns true when an entry at path is hidden by what was applied after
 * it: an entry at the same path, or a removal of the root "." or of a
 * directory above path. Each '/' ends the path of a parent directory.
 */
static bool
merge_hidden(const struct merged_fs *fs, const char *path, size_t len)
{
    const struct merge_key *key = merge_find(fs, path, len);

    if (key != NULL && (key->flags & MERGE_HIDES_PATH) != 0)
        return true;
    if (!(len == 1 && path[0] == '.')) {
        key = merge_find(fs, ".", 1);
        if (key != NULL && (key->flags & MERGE_HIDES_BELOW) != 0)
            return true;
    }
    for (size_t i = 0; i < len; i++) {
        if (path[i] != '/')
            continue;
        key = merge_find(fs, path, i);
        if (key != NULL && (key->flags & MERGE_HIDES_BELOW) != 0)
            return true;
    }
    return false;
}

static void
merge_add_key(struct merged_fs *fs, const json_t *path)
{
    struct merge_key *key = &fs->keys[fs->n_keys++];

    key->path = json_string_value(path);
    key->len = json_string_length(path);
    key->flags = 0;
    key->present_layer = -1;
}

/*
 * Fills fs->keys with every entry's path and every whiteout's target,
 * sorted, each once. The caller checked the entries. Returns 0, or -1
 * when memory is short.
 */
static int
merge_collect_keys(struct merged_fs *fs, json_t *const *results,
                   size_t n_layers, struct pg_error **err)
{
    size_t unique = 0;

    /* At most two keys per entry: its path and a whiteout's target. */
    if (fs->n_entries > SIZE_MAX / 2 / sizeof(*fs->keys) ||
        (fs->keys = calloc(2 * fs->n_entries + 1, sizeof(*fs->keys))) == NULL) {
        set_memory_error(err);
        return -1;
    }
    for (size_t i = 0; i < n_layers; i++) {
        const json_t *entry;
        size_t j;

        json_array_foreach(json_object_get(results[i], "files"), j, entry)
        {
            merge_add_key(fs, json_object_get(entry, "path"));
            if (is_whiteout_type(entry_type(entry)))
                merge_add_key(fs, json_object_get(entry, "target"));
        }
    }

    qsort(fs->keys, fs->n_keys, sizeof(*fs->keys), compare_merge_keys);
    for (size_t i = 0; i < fs->n_keys; i++) {
        if (unique == 0 ||
            compare_merge_keys(&fs->keys[unique - 1], &fs->keys[i]) != 0)
            fs->keys[unique++] = fs->keys[i];
    }
    fs->n_keys = unique;
    return 0;
}

/*
 * Applies one layer's entries over what the layers above it already
 * decided, walking from the last entry to the first: an entry is visible
 * unless something applied after it hides it. first is the index in
 * fs->present of the layer's first entry.
 */
static void
merge_layer(struct merged_fs *fs, const json_t *entries, size_t first,
            int layer)
{
    size_t n = json_array_size(entries);

    /* A later entry of the same layer replaces an earlier one at its
     * path, as unpacking the tar stream in order does. */
    for (size_t j = n; j-- > 0;) {
        const json_t *entry = json_array_get(entries, j);
        const json_t *path = json_object_get(entry, "path");
        const char *type = entry_type(entry);
        struct merge_key *key = merge_find_json(fs, path);

        if (is_whiteout_type(type) || key == NULL)
            continue;
        fs->present[first + j] = !merge_hidden(fs, json_string_value(path),
                                               json_string_length(path));
        if (fs->present[first + j])
            key->present_layer = layer;
        key->flags |= MERGE_HIDES_PATH;
        /* A non-directory replacing a directory removes its contents. */
        if (strcmp(type, "dir") != 0)
            key->flags |= MERGE_HIDES_BELOW;
    }

    /* Whiteouts apply to the lower layers only, so they take effect once
     * the whole layer has been applied. */
    for (size_t j = 0; j < n; j++) {
        const json_t *entry = json_array_get(entries, j);
        const char *type = entry_type(entry);
        struct merge_key *key;

        if (!is_whiteout_type(type))
            continue;
        key = merge_find_json(fs, json_object_get(entry, "target"));
        if (key == NULL)
            continue;
        key->flags |= MERGE_HIDES_BELOW;
        if (strcmp(type, "whiteout") == 0)
            key->flags |= MERGE_HIDES_PATH;
    }
}

/*
 * Computes the merged file system of the layer results, whose entries the
 * caller checked, as the OCI image spec's layer changeset rules define
 * it: ".wh.NAME" deletes NAME and everything under it from the lower
 * layers, ".wh..wh..opq" hides every lower entry under its directory, and
 * a later entry replaces an earlier one at its path. The layers are
 * walked from the top down, so each entry is looked at once: O(n log n)
 * for n entries. Returns 0, or -1 when memory is short.
 */
static int
merge_layers(struct merged_fs *fs, json_t *const *results, size_t n_layers,
             struct pg_error **err)
{
    size_t first = 0;

    for (size_t i = 0; i < n_layers; i++)
        fs->n_entries += json_array_size(json_object_get(results[i], "files"));
    fs->present = calloc(fs->n_entries + 1, sizeof(*fs->present));
    if (fs->present == NULL) {
        set_memory_error(err);
        return -1;
    }
    if (merge_collect_keys(fs, results, n_layers, err) < 0)
        return -1;

    first = fs->n_entries;
    for (size_t i = n_layers; i-- > 0;) {
        const json_t *entries = json_object_get(results[i], "files");

        first -= json_array_size(entries);
        merge_layer(fs, entries, first, (int)i);
    }
    return 0;
}

/* Returns true when the visible entry at path comes from layer. */
static bool
merge_visible_from(const struct merged_fs *fs, const json_t *path, size_t layer)
{
    const struct merge_key *key = merge_find_json(fs, path);

    return key != NULL && key->present_layer == (int)layer;
}

static void
merged_fs_release(struct merged_fs *fs)
{
    free(fs->present);
    free(fs->keys);
}

/* ---- layers, files and the summary ---- */

/* Counts one file and adds a visible one to the summary lists it belongs
 * in. A path has at most one visible entry, so no list repeats a path. */
static int
summary_add(struct file_summary *summary, const json_t *file, bool present,
            struct pg_error **err)
{
    const char *type = entry_type(file);
    json_int_t mode = json_integer_value(json_object_get(file, "mode"));
    json_t *path = json_object_get(file, "path");
    bool regular = strcmp(type, "file") == 0 || strcmp(type, "hardlink") == 0;
    bool sticky_dir = strcmp(type, "dir") == 0 && (mode & 01000) != 0;
    bool no_mode = strcmp(type, "symlink") == 0 || is_whiteout_type(type);

    summary->files++;
    if (!present)
        return 0;
    summary->present_files++;
    if (regular && (mode & 06000) != 0 &&
        append_new(summary->setuid_files, json_incref(path), err) < 0)
        return -1;
    if ((mode & 0002) != 0 && !sticky_dir && !no_mode &&
        append_new(summary->world_writable, json_incref(path), err) < 0)
        return -1;
    return 0;
}

/* Returns true when a layer result's entry has every field the document
 * copies, with the right types. */
static bool
file_entry_valid(const json_t *entry)
{
    static const char *const integers[] = {"mode", "size", "uid", "gid", NULL};

    if (!json_is_string(json_object_get(entry, "path")) ||
        !json_is_string(json_object_get(entry, "type")))
        return false;
    for (size_t i = 0; integers[i] != NULL; i++) {
        if (!json_is_integer(json_object_get(entry, integers[i])))
            return false;
    }
    return !is_whiteout_type(entry_type(entry)) ||
           json_is_string(json_object_get(entry, "target"));
}

/* Checks every entry of one layer result before the layers are merged. */
static int
check_layer_files(const json_t *result, size_t layer_index,
                  struct pg_error **err)
{
    const json_t *entry;
    size_t i;

    json_array_foreach(json_object_get(result, "files"), i, entry)
    {
        if (!file_entry_valid(entry)) {
            pg_error_set(err, 500, PG_ERR_INTERNAL,
                         "entry %zu of the result for layer %zu lacks a "
                         "field; results must come from "
                         "inspector_list_layer",
                         i, layer_index);
            return -1;
        }
    }
    return 0;
}

/*
 * Returns the document form of one layer result entry, or NULL. The
 * strings and integers are shared with the caller's result, not copied:
 * nothing changes them, and jansson built with JSON_HAVE_ATOMIC_BUILTINS
 * counts references safely across threads.
 */
static json_t *
document_file(const json_t *entry, size_t layer_index, bool present)
{
    json_t *link = json_object_get(entry, "link");
    json_t *target = json_object_get(entry, "target");
    json_t *raw_path = json_object_get(entry, "raw_path");
    json_t *file;

    file = json_pack(
        "{s:O, s:I, s:O, s:O, s:O, s:O, s:O, s:b}", "path",
        json_object_get(entry, "path"), "layer", (json_int_t)layer_index,
        "type", json_object_get(entry, "type"), "mode",
        json_object_get(entry, "mode"), "size", json_object_get(entry, "size"),
        "uid", json_object_get(entry, "uid"), "gid",
        json_object_get(entry, "gid"), "present", present);
    if (file == NULL)
        return NULL;
    if ((link != NULL && json_object_set(file, "link", link) < 0) ||
        (target != NULL && json_object_set(file, "target", target) < 0) ||
        (raw_path != NULL && json_object_set(file, "raw_path", raw_path) < 0)) {
        json_decref(file);
        return NULL;
    }
    return file;
}

/* Appends the entries of every layer result to files and the summary. */
static int
add_files(json_t *files, struct file_summary *summary,
          const struct merged_fs *fs, json_t *const *results, size_t n_layers,
          struct pg_error **err)
{
    size_t index = 0;

    for (size_t layer = 0; layer < n_layers; layer++) {
        const json_t *entry;
        size_t i;

        json_array_foreach(json_object_get(results[layer], "files"), i, entry)
        {
            bool present = fs->present[index++];

            if (append_new(files, document_file(entry, layer, present), err) <
                    0 ||
                summary_add(summary, entry, present, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Returns the "layers" entry of layer index, checking that the result
 * belongs to the manifest's descriptor at that index. */
static json_t *
document_layer(const json_t *descriptor, const json_t *result, size_t index,
               struct pg_error **err)
{
    const char *expected =
        json_string_value(json_object_get(descriptor, "digest"));
    const char *actual = json_string_value(json_object_get(result, "digest"));
    json_t *layer;

    if (expected == NULL || actual == NULL || strcmp(expected, actual) != 0 ||
        !json_is_array(json_object_get(result, "files"))) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "layer result %zu is for %s, but the manifest lists %s "
                     "at that index",
                     index, actual != NULL ? actual : "(no digest)",
                     expected != NULL ? expected : "(no digest)");
        return NULL;
    }

    layer = descriptor_summary(descriptor);
    if (layer == NULL ||
        json_object_set_new(layer, "index", json_integer((json_int_t)index)) <
            0 ||
        json_object_set_new(layer, "entries",
                            json_integer(json_integer_value(
                                json_object_get(result, "entries")))) < 0 ||
        json_object_set_new(layer, "bytes",
                            json_integer(json_integer_value(
                                json_object_get(result, "bytes")))) < 0) {
        json_decref(layer);
        set_memory_error(err);
        return NULL;
    }
    return layer;
}

/* Returns the "layers" list, checking each result against the manifest
 * and its entries for the fields the merge reads, or NULL. */
static json_t *
layer_list(const json_t *manifest, json_t *const *results, size_t n_layers,
           struct pg_error **err)
{
    const json_t *descriptors = json_object_get(manifest, "layers");
    json_t *layers = json_array();

    if (layers == NULL) {
        set_memory_error(err);
        return NULL;
    }
    for (size_t i = 0; i < n_layers; i++) {
        json_t *descriptor = json_array_get(descriptors, i);

        if (append_new(layers, document_layer(descriptor, results[i], i, err),
                       err) < 0 ||
            check_layer_files(results[i], i, err) < 0) {
            json_decref(layers);
            return NULL;
        }
    }
    return layers;
}

/* ---- findings: os-release, packages, licenses, secrets, notes ---- */

/* The findings of every layer, each item a copy with "layer" added. */
struct findings {
    json_t *os;       /* os-release files still visible */
    json_t *packages; /* packages whose file is still visible */
    json_t *licenses; /* dpkg copyright files still visible */
    json_t *secrets;  /* all, with "present" */
    json_t *notes;    /* all */
};

/* The rule that keeps a layer's findings and adds fields to them. */
enum keep_rule {
    KEEP_VISIBLE,      /* only when its file is the visible entry */
    KEEP_WITH_PRESENT, /* always, with "present" */
    KEEP_ALL,          /* always; "path" is optional */
};

/* The namespace of OS package URLs when the image has no os-release ID:
 * the distribution each package format is best known from. */
static const char *const os_package_types[][2] = {
    {"deb", "debian"},
    {"apk", "alpine"},
    {"rpm", "redhat"},
};

/* The os-release files in order of preference, as systemd's
 * os-release(5) reads them. */
static const char *const os_release_paths[] = {
    "etc/os-release",
    "usr/lib/os-release",
};

/* Bytes of the text form of an RPM epoch held as an integer. */
#define EPOCH_TEXT_MAX 24

static void
findings_release(struct findings *found)
{
    json_decref(found->notes);
    json_decref(found->secrets);
    json_decref(found->licenses);
    json_decref(found->packages);
    json_decref(found->os);
}

static int
findings_init(struct findings *found, struct pg_error **err)
{
    found->os = json_array();
    found->packages = json_array();
    found->licenses = json_array();
    found->secrets = json_array();
    found->notes = json_array();
    if (found->os == NULL || found->packages == NULL ||
        found->licenses == NULL || found->secrets == NULL ||
        found->notes == NULL) {
        set_memory_error(err);
        return -1;
    }
    return 0;
}

static int
finding_error(const char *key, size_t index, size_t layer,
              struct pg_error **err)
{
    pg_error_set(err, 500, PG_ERR_INTERNAL,
                 "findings.%s[%zu] of the result for layer %zu is not an "
                 "object with a \"path\" string; results must come from "
                 "inspector_list_layer",
                 key, index, layer);
    return -1;
}

/*
 * Appends to out a copy of each item of findings[key] that rule keeps,
 * with "layer" added. The copy shares its values with the item.
 */
static int
collect_findings(json_t *out, const json_t *findings, const char *key,
                 enum keep_rule rule, const struct merged_fs *fs, size_t layer,
                 struct pg_error **err)
{
    const json_t *list = json_object_get(findings, key);
    const json_t *item;
    size_t i;

    if (list != NULL && !json_is_array(list)) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "findings.%s of the result for layer %zu is not an "
                     "array; results must come from inspector_list_layer",
                     key, layer);
        return -1;
    }
    json_array_foreach(list, i, item)
    {
        const json_t *path = json_object_get(item, "path");
        bool visible;
        json_t *copy;

        if (!json_is_object(item) ||
            (rule != KEEP_ALL && !json_is_string(path)))
            return finding_error(key, i, layer, err);
        visible = json_is_string(path) && merge_visible_from(fs, path, layer);
        if (rule == KEEP_VISIBLE && !visible)
            continue;

        copy = json_copy((json_t *)item);
        if (copy == NULL ||
            set_new(copy, "layer", json_integer((json_int_t)layer), err) < 0 ||
            (rule == KEEP_WITH_PRESENT &&
             set_new(copy, "present", json_boolean(visible), err) < 0) ||
            append_new(out, copy, err) < 0) {
            if (copy == NULL)
                set_memory_error(err);
            return -1;
        }
    }
    return 0;
}

/* Collects the findings of every layer result that the merged file
 * system keeps. A result without "findings" found nothing. */
static int
findings_collect(struct findings *found, const struct merged_fs *fs,
                 json_t *const *results, size_t n_layers, struct pg_error **err)
{
    for (size_t layer = 0; layer < n_layers; layer++) {
        const json_t *findings = json_object_get(results[layer], "findings");

        if (findings == NULL)
            continue;
        if (!json_is_object(findings)) {
            pg_error_set(err, 500, PG_ERR_INTERNAL,
                         "findings of the result for layer %zu are not an "
                         "object; results must come from "
                         "inspector_list_layer",
                         layer);
            return -1;
        }
        if (collect_findings(found->os, findings, "os", KEEP_VISIBLE, fs, layer,
                             err) < 0 ||
            collect_findings(found->packages, findings, "packages",
                             KEEP_VISIBLE, fs, layer, err) < 0 ||
            collect_findings(found->licenses, findings, "licenses",
                             KEEP_VISIBLE, fs, layer, err) < 0 ||
            collect_findings(found->secrets, findings, "secrets",
                             KEEP_WITH_PRESENT, fs, layer, err) < 0 ||
            collect_findings(found->notes, findings, "notes", KEEP_ALL, fs,
                             layer, err) < 0)
            return -1;
    }
    return 0;
}

/* Returns the rank of an os-release path in os_release_paths, or the
 * number of paths for any other file. */
static size_t
os_release_rank(const json_t *os)
{
    const char *path = json_string_value(json_object_get(os, "path"));
    size_t n = sizeof(os_release_paths) / sizeof(os_release_paths[0]);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(path, os_release_paths[i]) == 0)
            return i;
    }
    return n;
}

/* Returns the visible os-release finding that os-release(5) would read,
 * or NULL when the image has none. The first of equal rank wins. */
static const json_t *
choose_os(const json_t *os_list)
{
    const json_t *best = NULL;
    const json_t *os;
    size_t i;

    json_array_foreach(os_list, i, os)
    {
        if (best == NULL || os_release_rank(os) < os_release_rank(best))
            best = os;
    }
    return best;
}

/* ---- package URLs and licenses of OS packages ---- */

/* The distribution an image's os-release file names. */
struct os_identity {
    const char *id;         /* NULL when the image has no os-release ID */
    const char *version_id; /* "" when the file has no VERSION_ID */
};

static struct os_identity
os_identity_of(const json_t *os)
{
    struct os_identity identity = {.id = NULL, .version_id = ""};
    const char *id = json_string_value(json_object_get(os, "id"));
    const char *version_id =
        json_string_value(json_object_get(os, "version_id"));

    if (id != NULL && id[0] != '\0')
        identity.id = id;
    if (identity.id != NULL && version_id != NULL)
        identity.version_id = version_id;
    return identity;
}

/* Returns a new string of a, b and c joined, or NULL. */
static char *
join3(const char *a, const char *b, const char *c)
{
    size_t a_len = strlen(a);
    size_t b_len = strlen(b);
    size_t c_len = strlen(c);
    char *joined = malloc(a_len + b_len + c_len + 1);

    if (joined == NULL)
        return NULL;
    memcpy(joined, a, a_len);
    memcpy(joined + a_len, b, b_len);
    memcpy(joined + a_len + b_len, c, c_len + 1);
    return joined;
}

/* Returns a new lowercase copy of text, or NULL. The purl specification
 * requires lowercase deb, apk and rpm namespaces. */
static char *
ascii_lowercase_copy(const char *text)
{
    char *copy = strdup(text);

    for (char *p = copy; p != NULL && *p != '\0'; p++)
        *p = ascii_lower(*p);
    return copy;
}

/* Returns the purl version of a package: an RPM's "version-release", as
 * the purl rpm type defines it, or the version as it is. The RPM
 * cataloger may already have joined them; VERSION has no '-' in RPM. */
static char *
purl_version(const json_t *package, const char *type)
{
    const char *version =
        json_string_value(json_object_get(package, "version"));
    const char *release =
        json_string_value(json_object_get(package, "release"));

    if (version == NULL)
        version = "";
    if (strcmp(type, "rpm") != 0 || release == NULL || release[0] == '\0' ||
        strchr(version, '-') != NULL)
        return strdup(version);
    return join3(version, "-", release);
}

/* Writes an RPM's "epoch", a string or an integer, to buf ("" when it has
 * none). */
static void
epoch_text(const json_t *package, char *buf, size_t size)
{
    const json_t *epoch = json_object_get(package, "epoch");

    buf[0] = '\0';
    if (json_is_string(epoch))
        snprintf(buf, size, "%s", json_string_value(epoch));
    else if (json_is_integer(epoch))
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(epoch));
}

/*
 * Returns the package URL of a deb, apk or rpm package, or NULL when
 * memory is short. The namespace is the os-release ID, or
 * default_namespace without one. The qualifiers are arch, epoch (rpm) and
 * distro "ID-VERSION_ID", the form of purl's examples ("debian-12"), which
 * needs both.
 */
static json_t *
os_package_purl(const json_t *package, const char *type,
                const char *default_namespace, const struct os_identity *os)
{
    char epoch[EPOCH_TEXT_MAX] = "";
    const char *name = json_string_value(json_object_get(package, "name"));
    const char *qualifiers[] = {
        "arch",   json_string_value(json_object_get(package, "arch")),
        "epoch",  NULL,
        "distro", NULL,
        NULL,
    };
    char *namespace =
        ascii_lowercase_copy(os->id != NULL ? os->id : default_namespace);
    char *version = purl_version(package, type);
    char *distro = NULL;
    json_t *purl = NULL;

    if (strcmp(type, "rpm") == 0) {
        epoch_text(package, epoch, sizeof(epoch));
        qualifiers[3] = epoch;
    }
    if (os->id != NULL && os->version_id[0] != '\0') {
        distro = join3(os->id, "-", os->version_id);
        if (distro == NULL)
            goto out;
        qualifiers[5] = distro;
    }
    if (namespace != NULL && version != NULL)
        purl = catalog_purl(type, namespace, name != NULL ? name : "", version,
                            qualifiers);

out:
    free(distro);
    free(version);
    free(namespace);
    return purl;
}

/* Returns {"id", "version_id"} of the image's distribution, JSON null
 * when it has no os-release ID, or NULL when memory is short. */
static json_t *
os_package_distro(const struct os_identity *os)
{
    if (os->id == NULL)
        return json_null();
    return json_pack("{s:s, s:s}", "id", os->id, "version_id", os->version_id);
}

/* Returns the default namespace of an OS package type, or NULL for the
 * package types of language ecosystems. */
static const char *
os_package_namespace(const char *type)
{
    size_t n = sizeof(os_package_types) / sizeof(os_package_types[0]);

    for (size_t i = 0; type != NULL && i < n; i++) {
        if (strcmp(type, os_package_types[i][0]) == 0)
            return os_package_types[i][1];
    }
    return NULL;
}

/*
 * Returns {package name: licenses} from the visible dpkg copyright files,
 * or NULL when memory is short. A package has one copyright file,
 * usr/share/doc/NAME/copyright, so the first one found is kept.
 */
static json_t *
license_index(const json_t *licenses)
{
    json_t *index = json_object();
    const json_t *item;
    size_t i;

    if (index == NULL)
        return NULL;
    json_array_foreach(licenses, i, item)
    {
        const json_t *name = json_object_get(item, "package");
        const json_t *list = json_object_get(item, "licenses");

        if (!json_is_string(name) || !json_is_array(list) ||
            json_object_getn(index, json_string_value(name),
                             json_string_length(name)) != NULL)
            continue;
        if (json_object_setn_new(index, json_string_value(name),
                                 json_string_length(name),
                                 json_incref((json_t *)list)) < 0) {
            json_decref(index);
            return NULL;
        }
    }
    return index;
}

/*
 * Gives a deb package without licenses those of its copyright file. A
 * name with an architecture, "libc6:amd64", documents itself under the
 * plain name, as dpkg installs multiarch packages' doc directories.
 */
static int
package_join_licenses(json_t *package, const json_t *index,
                      struct pg_error **err)
{
    const json_t *name = json_object_get(package, "name");
    const json_t *own = json_object_get(package, "licenses");
    const json_t *licenses;
    const char *colon;
    size_t len;

    if (!json_is_string(name) || json_array_size(own) > 0)
        return 0;
    colon = memchr(json_string_value(name), ':', json_string_length(name));
    len = colon != NULL ? (size_t)(colon - json_string_value(name))
                        : json_string_length(name);
    licenses = json_object_getn(index, json_string_value(name), len);
    if (licenses == NULL)
        return 0;
    return set_new(package, "licenses", json_incref((json_t *)licenses), err);
}

/* Adds what needs more than the package's own layer: the distribution in
 * OS package URLs and dpkg licenses. */
static int
packages_complete(json_t *packages, const json_t *licenses, const json_t *os,
                  struct pg_error **err)
{
    struct os_identity identity = os_identity_of(os);
    json_t *index = license_index(licenses);
    json_t *package;
    size_t i;
    int rc = -1;

    if (index == NULL) {
        set_memory_error(err);
        return -1;
    }
    json_array_foreach(packages, i, package)
    {
        const char *type = json_string_value(json_object_get(package, "type"));
        const char *namespace = os_package_namespace(type);

        if (namespace != NULL &&
            (set_new(package, "purl",
                     os_package_purl(package, type, namespace, &identity),
                     err) < 0 ||
             set_new(package, "distro", os_package_distro(&identity), err) < 0))
            goto out;
        if (type != NULL && strcmp(type, "deb") == 0 &&
            package_join_licenses(package, index, err) < 0)
            goto out;
    }
    rc = 0;

out:
    json_decref(index);
    return rc;
}

/* A package and its place in the order the catalogers found it, which
 * breaks ties so that the sort is stable. */
struct package_slot {
    json_t *package;
    size_t order;
};

static int
compare_members(const json_t *a, const json_t *b, const char *key)
{
    const json_t *value_a = json_object_get(a, key);
    const json_t *value_b = json_object_get(b, key);

    return compare_bytes(
        json_is_string(value_a) ? json_string_value(value_a) : "",
        json_string_length(value_a),
        json_is_string(value_b) ? json_string_value(value_b) : "",
        json_string_length(value_b));
}

static int
compare_packages(const void *a, const void *b)
{
    static const char *const keys[] = {"type", "name", "version", "path"};
    const struct package_slot *slot_a = a;
    const struct package_slot *slot_b = b;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = compare_members(slot_a->package, slot_b->package, keys[i]);

        if (rc != 0)
            return rc;
    }
    return (slot_a->order > slot_b->order) - (slot_a->order < slot_b->order);
}

/* Returns a new array of packages sorted by type, name, version and path,
 * or NULL when memory is short. */
static json_t *
packages_sorted(const json_t *packages)
{
    size_t n = json_array_size(packages);
    struct package_slot *slots = calloc(n + 1, sizeof(*slots));
    json_t *sorted = json_array();

    if (slots == NULL || sorted == NULL) {
        free(slots);
        json_decref(sorted);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        slots[i].package = json_array_get(packages, i);
        slots[i].order = i;
    }
    qsort(slots, n, sizeof(*slots), compare_packages);
    for (size_t i = 0; i < n; i++) {
        if (json_array_append(sorted, slots[i].package) < 0) {
            json_decref(sorted);
            sorted = NULL;
            break;
        }
    }
    free(slots);
    return sorted;
}

/* Adds "os", "packages", "secrets" and inspection.notes. */
static int
document_add_findings(json_t *document, const struct findings *found,
                      struct pg_error **err)
{
    const json_t *os = choose_os(found->os);
    json_t *packages;

    if (packages_complete(found->packages, found->licenses, os, err) < 0)
        return -1;
    packages = packages_sorted(found->packages);
    if (packages == NULL) {
        set_memory_error(err);
        return -1;
    }
    if (set_new(document, "os",
                os != NULL ? json_incref((json_t *)os) : json_null(),
                err) < 0 ||
        set_new(document, "packages", packages, err) < 0 ||
        set_new(document, "secrets", json_incref(found->secrets), err) < 0 ||
        set_new(json_object_get(document, "inspection"), "notes",
                json_incref(found->notes), err) < 0)
        return -1;
    return 0;
}

/* ---- the summary ---- */

static void
summary_release(struct file_summary *summary)
{
    json_decref(summary->world_writable);
    json_decref(summary->setuid_files);
}

static int
document_add_summary(json_t *document, const struct file_summary *summary,
                     size_t n_layers, struct pg_error **err)
{
    return set_new(
        document, "summary",
        json_pack(
            "{s:I, s:I, s:I, s:O, s:O, s:I, s:I}", "layers",
            (json_int_t)n_layers, "files", summary->files, "present_files",
            summary->present_files, "setuid_files", summary->setuid_files,
            "world_writable", summary->world_writable, "packages",
            (json_int_t)json_array_size(json_object_get(document, "packages")),
            "secrets",
            (json_int_t)json_array_size(json_object_get(document, "secrets"))),
        err);
}

/*
 * Adds "layers", "files", the findings and "summary" from the layer
 * results: the layers are merged first, because what a later layer
 * deletes or replaces decides which files and findings count.
 */
static int
document_add_layers(json_t *document, const json_t *manifest,
                    json_t *const *results, size_t n_layers,
                    struct pg_error **err)
{
    struct file_summary summary = {
        .setuid_files = json_array(),
        .world_writable = json_array(),
    };
    struct merged_fs fs = {0};
    struct findings found = {0};
    json_t *layers = NULL;
    json_t *files = json_array();
    int rc = -1;

    if (files == NULL || summary.setuid_files == NULL ||
        summary.world_writable == NULL) {
        set_memory_error(err);
        goto out;
    }
    layers = layer_list(manifest, results, n_layers, err);
    if (layers == NULL || merge_layers(&fs, results, n_layers, err) < 0 ||
        add_files(files, &summary, &fs, results, n_layers, err) < 0 ||
        findings_init(&found, err) < 0 ||
        findings_collect(&found, &fs, results, n_layers, err) < 0)
        goto out;

    if (set_new(document, "layers", json_incref(layers), err) < 0 ||
        set_new(document, "files", json_incref(files), err) < 0 ||
        document_add_findings(document, &found, err) < 0 ||
        document_add_summary(document, &summary, n_layers, err) < 0)
        goto out;
    rc = 0;

out:
    findings_release(&found);
    merged_fs_release(&fs);
    summary_release(&summary);
    json_decref(files);
    json_decref(layers);
    return rc;
}

/* ---- the base image and layer chains ---- */

#define BASE_NAME_ANNOTATION "org.opencontainers.image.base.name"
#define BASE_DIGEST_ANNOTATION "org.opencontainers.image.base.digest"

/* Returns the base image that the manifest's annotations name, or JSON
 * null when it names none, or NULL when memory is short. */
static json_t *
base_from_annotations(const json_t *manifest)
{
    const json_t *annotations = json_object_get(manifest, "annotations");
    const json_t *name = json_object_get(annotations, BASE_NAME_ANNOTATION);
    const json_t *digest = json_object_get(annotations, BASE_DIGEST_ANNOTATION);

    if (!json_is_string(name) && !json_is_string(digest))
        return json_null();
    return json_pack("{s:o, s:o, s:s}", "name",
                     string_member(annotations, BASE_NAME_ANNOTATION), "digest",
                     string_member(annotations, BASE_DIGEST_ANNOTATION),
                     "source", "annotation");
}

int
inspector_document_set_base(json_t *document, const char *name,
                            const char *digest, const char *source,
                            struct pg_error **err)
{
    json_t *base;

    if (!json_is_object(document) || name == NULL || digest == NULL ||
        source == NULL || source[0] == '\0') {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "inspector_document_set_base needs a document, a "
                     "name, a digest and a non-empty source");
        return -1;
    }
    base = json_pack("{s:o, s:o, s:o}", "name",
                     inspector_json_text(name, strlen(name)), "digest",
                     inspector_json_text(digest, strlen(digest)), "source",
                     inspector_json_text(source, strlen(source)));
    return set_new(document, "base_image", base, err);
}

/* Stores in out ("sha256:" and 64 hex digits) the ChainID of parent
 * followed by diff_id. Returns 0, or -1 when OpenSSL fails. */
static int
chain_id_next(const char *parent, size_t parent_len, const json_t *diff_id,
              char *out)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, parent, parent_len) == 1 &&
         EVP_DigestUpdate(ctx, " ", 1) == 1 &&
         EVP_DigestUpdate(ctx, json_string_value(diff_id),
                          json_string_length(diff_id)) == 1 &&
         EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;

    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < md_len; i++) {
        out[7 + 2 * i] = digits[md[i] >> 4];
        out[8 + 2 * i] = digits[md[i] & 0xf];
    }
    out[7 + 2 * md_len] = '\0';
    return 0;
}

json_t *
inspector_chain_ids(const json_t *diff_ids)
{
    char chain_id[CHAIN_ID_LENGTH + 1];
    json_t *chain_ids;
    const json_t *diff_id;
    size_t i;

    if (!json_is_array(diff_ids))
        return NULL;
    chain_ids = json_array();
    if (chain_ids == NULL)
        return NULL;

    json_array_foreach(diff_ids, i, diff_id)
    {
        json_t *previous = json_array_get(chain_ids, i - 1);
        json_t *next;

        if (!json_is_string(diff_id))
            goto fail;
        if (i == 0)
            next = json_incref((json_t *)diff_id);
        else if (chain_id_next(json_string_value(previous),
                               json_string_length(previous), diff_id,
                               chain_id) < 0)
            goto fail;
        else
            next = json_string(chain_id);
        if (json_array_append_new(chain_ids, next) < 0)
            goto fail;
    }
    return chain_ids;

fail:
    json_decref(chain_ids);
    return NULL;
}

/* Checks the manifest's layer list against the results the caller has. */
static int
check_layer_count(const json_t *manifest, size_t n_layers,
                  struct pg_error **err)
{
    const json_t *descriptors = json_object_get(manifest, "layers");
    size_t listed = json_array_size(descriptors);

    if (!json_is_array(descriptors)) {
        pg_error_set(err, 403, PG_ERR_DENIED, "manifest has no layers array");
        return -1;
    }
    if (listed > PG_LAYERS_MAX) {
        pg_error_set(err, 403, PG_ERR_DENIED,
                     "manifest has %zu layers, more than the maximum of %d "
                     "(PG_LAYERS_MAX)",
                     listed, PG_LAYERS_MAX);
        return -1;
    }
    if (listed != n_layers) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "manifest has %zu layers but %zu layer results were "
                     "given",
                     listed, n_layers);
        return -1;
    }
    return 0;
}

json_t *
inspector_build_document(const char *manifest_digest, const json_t *manifest,
                         const char *config_bytes, size_t config_len,
                         json_t *const *layers, size_t n_layers,
                         const json_t *reference, struct pg_error **err)
{
    json_t *image_config = NULL;
    json_t *document = NULL;
    json_t *result = NULL;

    if (manifest_check_fields(manifest, err) < 0 ||
        check_layer_count(manifest, n_layers, err) < 0)
        goto out;
    image_config = config_load(config_bytes, config_len, err);
    if (image_config == NULL || config_rename_fields(image_config, err) < 0)
        goto out;

    document = document_start("image", manifest_digest, manifest, reference);
    if (document == NULL) {
        set_memory_error(err);
        goto out;
    }
    if (set_new(document, "inspection", json_pack("{s:s}", "status", "ok"),
                err) < 0 ||
        document_add_platform(document, image_config, err) < 0 ||
        document_add_config(document, image_config, err) < 0 ||
        document_add_rootfs(document, image_config, n_layers, err) < 0 ||
        document_add_layers(document, manifest, layers, n_layers, err) < 0 ||
        set_new(document, "base_image", base_from_annotations(manifest), err) <
            0)
        goto out;

    result = json_incref(document);

out:
    if (result == NULL)
        pg_error_prefix(err, "image %s",
                        manifest_digest != NULL ? manifest_digest : "");
    json_decref(document);
    json_decref(image_config);
    return result;
}

/*
 * Adds the findings fields of a document without layer contents: no os,
 * no packages, no secrets, and the base image of the manifest's
 * annotations (none when manifest is NULL). A policy then finds every
 * field it reads. Returns 0, or -1 when memory is short.
 */
static int
document_add_empty_findings(json_t *document, const json_t *manifest)
{
    json_t *base =
        manifest != NULL ? base_from_annotations(manifest) : json_null();

    if (json_object_set_new(document, "os", json_null()) < 0 ||
        json_object_set_new(document, "packages", json_array()) < 0 ||
        json_object_set_new(document, "secrets", json_array()) < 0 ||
        json_object_set_new(document, "base_image", base) < 0)
        return -1;
    return 0;
}

json_t *
inspector_failed_document(const char *manifest_digest, const json_t *manifest,
                          const json_t *reference, const char *message)
{
    json_t *document;

    if (message == NULL)
        message = "inspection failed with no message";
    document = document_start("image", manifest_digest, manifest, reference);
    if (document == NULL)
        return NULL;

    if (json_object_set_new(
            document, "inspection",
            json_pack("{s:s, s:o, s:[]}", "status", "failed", "error",
                      inspector_json_text(message, strlen(message)), "notes")) <
            0 ||
        json_object_set_new(document, "layers", descriptor_list(manifest)) <
            0 ||
        document_add_empty_findings(document, manifest) < 0) {
        json_decref(document);
        return NULL;
    }
    return document;
}

/* Returns the artifactType, else the config media type, else "". */
static json_t *
artifact_type(const json_t *manifest)
{
    if (json_is_string(json_object_get(manifest, "artifactType")))
        return string_member(manifest, "artifactType");
    return string_member(json_object_get(manifest, "config"), "mediaType");
}

json_t *
inspector_artifact_document(const char *manifest_digest, const json_t *manifest,
                            const json_t *reference)
{
    const json_t *subject = json_object_get(manifest, "subject");
    json_t *document;

    document = document_start("artifact", manifest_digest, manifest, reference);
    if (document == NULL)
        return NULL;

    if (json_object_set_new(document, "artifact_type",
                            artifact_type(manifest)) < 0 ||
        json_object_set_new(document, "inspection",
                            json_pack("{s:s, s:[]}", "status", "ok", "notes")) <
            0 ||
        (json_is_object(subject) &&
         json_object_set_new(document, "subject", descriptor_summary(subject)) <
             0) ||
        json_object_set_new(document, "layers", descriptor_list(manifest)) <
            0 ||
        document_add_empty_findings(document, NULL) < 0) {
        json_decref(document);
        return NULL;
    }
    return document;
}
