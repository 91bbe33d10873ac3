/*
 * Secrets in the image config: the environment, labels, entrypoint, cmd
 * and history of an image are as readable as its files, and a key passed
 * with ENV or as a build argument is a common way to leak one. The
 * config blob is scanned with the same rules as text files, and every
 * string of the document's config section that holds a match is
 * replaced, so the document never repeats the secret it reports.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "inspector/catalog.h"
#include "inspector/document_internal.h"
#include "inspector/inspector.h"

#define REDACTED_VALUE "<redacted>"

/* Returns 1 when text matches a secret rule, 0 when it does not, -1 when
 * memory is short. */
static int
text_has_secret(const char *text, size_t len,
                const struct inspector_options *options)
{
    struct catalog_ctx ctx = {.findings = json_object(), .options = options};
    int rc;

    if (ctx.findings == NULL)
        return -1;
    rc = secrets_scan(&ctx, "", (const unsigned char *)text, len);
    if (rc == 0)
        rc = json_array_size(json_object_get(ctx.findings, "secrets")) > 0;
    json_decref(ctx.findings);
    return rc;
}

/* Replaces the string *value when it contains a secret. Returns 0 or -1. */
static int
redact_string(json_t *value, const struct inspector_options *options)
{
    int found;

    if (!json_is_string(value))
        return 0;
    found = text_has_secret(json_string_value(value), json_string_length(value),
                            options);
    if (found <= 0)
        return found;
    return json_string_set(value, REDACTED_VALUE);
}

/* Redacts member key of every object in the array list. */
static int
redact_each_member(json_t *list, const char *key,
                   const struct inspector_options *options)
{
    json_t *item;
    size_t i;

    json_array_foreach(list, i, item)
    {
        if (redact_string(json_object_get(item, key), options) < 0)
            return -1;
    }
    return 0;
}

/* Redacts every string of the array list. */
static int
redact_each_string(json_t *list, const struct inspector_options *options)
{
    json_t *item;
    size_t i;

    json_array_foreach(list, i, item)
    {
        if (redact_string(item, options) < 0)
            return -1;
    }
    return 0;
}

/* Redacts the values of the config section that may carry a secret. */
static int
redact_config_section(json_t *section, const struct inspector_options *options)
{
    const char *name;
    json_t *value;

    json_object_foreach(json_object_get(section, "labels"), name, value)
    {
        if (redact_string(value, options) < 0)
            return -1;
    }
    if (redact_each_member(json_object_get(section, "env"), "value", options) <
            0 ||
        redact_each_string(json_object_get(section, "entrypoint"), options) <
            0 ||
        redact_each_string(json_object_get(section, "cmd"), options) < 0 ||
        redact_each_member(json_object_get(section, "history"), "created_by",
                           options) < 0 ||
        redact_each_member(json_object_get(section, "dockerfile"), "value",
                           options) < 0 ||
        redact_string(json_object_get(section, "working_dir"), options) < 0 ||
        redact_string(json_object_get(section, "user"), options) < 0)
        return -1;
    return 0;
}

/* Appends the findings of the config blob to the document's secrets and
 * updates the summary's count. Returns 0 or -1. */
static int
add_config_findings(json_t *document, const json_t *found)
{
    json_t *secrets = json_object_get(document, "secrets");
    json_t *summary = json_object_get(document, "summary");
    const json_t *finding;
    size_t i;

    json_array_foreach(json_object_get(found, "secrets"), i, finding)
    {
        json_t *item = json_pack("{s:O, s:s, s:s, s:n, s:I, s:b}", "rule",
                                 json_object_get(finding, "rule"), "source",
                                 "config", "path", "", "layer", "line",
                                 (json_int_t)0, "present", true);

        if (item == NULL || json_array_append_new(secrets, item) < 0)
            return -1;
    }
    if (json_is_object(summary) &&
        json_object_set_new(
            summary, "secrets",
            json_integer((json_int_t)json_array_size(secrets))) < 0)
        return -1;
    return 0;
}

int
inspector_document_scan_config(json_t *document, const char *config_bytes,
                               size_t config_len,
                               const struct inspector_options *options,
                               struct pg_error **err)
{
    struct catalog_ctx ctx = {.findings = json_object(), .options = options};
    json_t *secrets = json_object_get(document, "secrets");
    /* The scanner expects a NUL byte after the text, which a blob read
     * into memory need not have. */
    char *text = malloc(config_len + 1);
    int rc = -1;

    if (ctx.findings == NULL || text == NULL || !json_is_array(secrets))
        goto out;
    memcpy(text, config_bytes, config_len);
    text[config_len] = '\0';
    if (secrets_scan(&ctx, "", (const unsigned char *)text, config_len) < 0 ||
        add_config_findings(document, ctx.findings) < 0 ||
        redact_config_section(json_object_get(document, "config"), options) < 0)
        goto out;
    rc = 0;

out:
    if (rc < 0)
        set_memory_error(err);
    free(text);
    json_decref(ctx.findings);
    return rc;
}
