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
 *   inspector_version  "3": what found the findings (INSPECTOR_VERSION)
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
 *                      (inspector/dockerfile.c)
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
 * Which entries are present and which findings count is decided by
 * merging the layers, as inspector/merge.c describes.
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
#include "config/utf8.h"
#include "inspector/document_internal.h"
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
        size_t n = pg_utf8_sequence_length(in + i, len - i);

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

void
set_memory_error(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while building the image document; "
                 "retry later");
}

/* Sets key in object, stealing value. A NULL value or a failed insert is
 * a memory shortage. Returns 0 or -1. */
int
set_new(json_t *object, const char *key, json_t *value, struct pg_error **err)
{
    if (json_object_set_new(object, key, value) < 0) {
        set_memory_error(err);
        return -1;
    }
    return 0;
}

int
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

char
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
json_t *
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
