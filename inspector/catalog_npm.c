/*
 * npm cataloger: installed Node.js packages, one per package.json file at
 * the root of a package folder in a node_modules folder:
 * node_modules/NAME/package.json or node_modules/@SCOPE/NAME/package.json,
 * at any depth. Other package.json files, such as an application's own or
 * those inside a package's subfolders, describe no installed package.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "config/limits.h"
#include "config/parse.h"
#include "inspector/catalog.h"

#define NODE_MODULES "node_modules"
#define PACKAGE_JSON "package.json"

/* Licenses kept from one package.json. */
#define NPM_LICENSES_MAX 16

/* Bytes of a name, version or license that is kept. */
#define NPM_VALUE_MAX 1024

/* Returns the start of the path segment that ends just before end, and
 * stores its length. */
static const char *
segment_before(const char *path, const char *end, size_t *len)
{
    const char *start = end;

    while (start > path && start[-1] != '/')
        start--;
    *len = (size_t)(end - start);
    return start;
}

/* Returns true when the path segment text[0..len) is "node_modules". */
static bool
is_node_modules(const char *text, size_t len)
{
    return len == strlen(NODE_MODULES) && memcmp(text, NODE_MODULES, len) == 0;
}

static enum catalog_want
npm_want(const char *path, int64_t size)
{
    const char *name;
    const char *parent;
    size_t name_len;
    size_t parent_len;

    (void)size;
    if (!catalog_has_suffix(path, "/" PACKAGE_JSON))
        return CATALOG_SKIP;
    name = segment_before(path, path + strlen(path) - strlen("/" PACKAGE_JSON),
                          &name_len);
    if (name_len == 0 || name == path)
        return CATALOG_SKIP;
    parent = segment_before(path, name - 1, &parent_len);
    if (is_node_modules(parent, parent_len))
        return name[0] == '@' || name[0] == '.' ? CATALOG_SKIP : CATALOG_BUFFER;
    if (parent_len < 2 || parent[0] != '@' || parent == path)
        return CATALOG_SKIP;
    parent = segment_before(path, parent - 1, &parent_len);
    return is_node_modules(parent, parent_len) ? CATALOG_BUFFER : CATALOG_SKIP;
}

/* Returns the text of a string member of object, or NULL when it is
 * absent. Stores a description of a member of another type or of a too
 * long one in *problem. */
static const char *
npm_string_member(const json_t *object, const char *key, const char **problem)
{
    const json_t *value = json_object_get(object, key);

    if (value == NULL)
        return NULL;
    if (!json_is_string(value)) {
        *problem = "is not a string";
        return NULL;
    }
    if (json_string_length(value) > NPM_VALUE_MAX) {
        *problem = "is too long";
        return NULL;
    }
    return json_string_value(value);
}

/* Appends one license, a string or an object with a string "type", as
 * package.json has had both. Other values are skipped. */
static int
npm_append_license(json_t *licenses, const json_t *value)
{
    if (json_is_object(value))
        value = json_object_get(value, "type");
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        json_string_length(value) > NPM_VALUE_MAX ||
        json_array_size(licenses) == NPM_LICENSES_MAX)
        return 0;
    return json_array_append_new(licenses,
                                 json_string(json_string_value(value)));
}

/*
 * Builds the licenses of "license" (an SPDX expression, or an object with
 * a "type" in old packages) or else of the older "licenses" array.
 * Returns NULL when memory is short.
 */
static json_t *
npm_licenses(const json_t *package)
{
    json_t *licenses = json_array();
    const json_t *license = json_object_get(package, "license");
    const json_t *list = json_object_get(package, "licenses");
    size_t index;
    const json_t *value;

    if (licenses == NULL)
        return NULL;
    if (license != NULL) {
        if (npm_append_license(licenses, license) < 0)
            goto fail;
    } else if (json_is_array(list)) {
        json_array_foreach(list, index, value)
        {
            if (npm_append_license(licenses, value) < 0)
                goto fail;
        }
    } else if (list != NULL && npm_append_license(licenses, list) < 0) {
        goto fail;
    }
    return licenses;

fail:
    json_decref(licenses);
    return NULL;
}

/*
 * Builds the package item. name is "NAME" or "@SCOPE/NAME"; the scope
 * becomes the package URL's namespace. Returns NULL when memory is short.
 */
static json_t *
npm_package_item(const char *path, const char *name, const char *version,
                 const json_t *package)
{
    char scope[NPM_VALUE_MAX + 1] = "";
    const char *bare = name;
    const char *slash = strchr(name, '/');
    json_t *item = json_object();
    json_t *licenses = npm_licenses(package);

    if (name[0] == '@' && slash != NULL) {
        memcpy(scope, name, (size_t)(slash - name));
        scope[slash - name] = '\0';
        bare = slash + 1;
    }
    if (item == NULL || licenses == NULL ||
        json_object_set_new(item, "type", json_string("npm")) < 0 ||
        json_object_set_new(item, "name", json_string(name)) < 0 ||
        json_object_set_new(item, "version", json_string(version)) < 0 ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0 ||
        json_object_set_new(
            item, "purl", catalog_purl("npm", scope, bare, version, NULL)) < 0)
        goto fail;
    if (json_array_size(licenses) > 0)
        return json_object_set_new(item, "licenses", licenses) < 0 ? NULL
                                                                   : item;
    json_decref(licenses);
    return item;

fail:
    json_decref(licenses);
    json_decref(item);
    return NULL;
}

/* Adds the package a package.json describes, or a note when it is not
 * JSON, nests deeper than PG_JSON_MAX_DEPTH, or has no usable name or
 * version. */
static int
npm_file(struct catalog_ctx *ctx, const char *path, const unsigned char *data,
         size_t len)
{
    const char *name_problem = "is missing";
    const char *version_problem = "is missing";
    const char *name;
    const char *version;
    json_error_t error;
    json_t *package;
    int result;

    if (!pg_json_depth_within((const char *)data, len, PG_JSON_MAX_DEPTH))
        return catalog_note(ctx, catalog_npm.name, path,
                            "JSON nests deeper than %d levels",
                            PG_JSON_MAX_DEPTH);
    package = json_loadb((const char *)data, len, 0, &error);
    if (!json_is_object(package)) {
        json_decref(package);
        if (package != NULL)
            return catalog_note(ctx, catalog_npm.name, path,
                                "the top-level JSON value is not an object");
        return catalog_note(ctx, catalog_npm.name, path,
                            "invalid JSON at line %d", error.line);
    }

    name = npm_string_member(package, "name", &name_problem);
    version = npm_string_member(package, "version", &version_problem);
    if (name == NULL || name[0] == '\0') {
        result = catalog_note(ctx, catalog_npm.name, path, "field name %s",
                              name == NULL ? name_problem : "is empty");
    } else if (version == NULL) {
        result = catalog_note(ctx, catalog_npm.name, path, "field version %s",
                              version_problem);
    } else {
        result = catalog_add(ctx, "packages",
                             npm_package_item(path, name, version, package));
    }
    json_decref(package);
    return result;
}

const struct cataloger catalog_npm = {
    .name = "npm",
    .want = npm_want,
    .file = npm_file,
};
