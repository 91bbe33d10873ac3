/*
 * Secrets in the image config and the manifest: the environment, labels,
 * entrypoint, cmd and history of an image, and its annotations, are as
 * readable as its files, and a key passed with ENV or as a build argument
 * is a common way to leak one. Every string of the parsed config and of
 * the annotations, member names included, is scanned with the rules that
 * scan text files, after JSON escapes are decoded, so "\n" or "\u0041"
 * hide nothing. Every string of the document that contains a match is then
 * replaced, so the document never repeats the secret it reports.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/limits.h"
#include "inspector/catalog.h"
#include "inspector/document_internal.h"
#include "inspector/inspector.h"

#define REDACTED_VALUE "<redacted>"

/* The state of one walk over JSON values: the rules found so far. */
struct config_scan {
    const struct inspector_options *options;
    json_t *rules; /* {rule name: true} for every rule that matched */
    bool memory_short;
};

/*
 * Scans one decoded string. Returns true when a rule matched, and adds
 * the rules that matched to scan->rules.
 */
static bool
scan_text(struct config_scan *scan, const char *text, size_t len)
{
    struct catalog_ctx ctx = {.findings = json_object(),
                              .options = scan->options};
    const json_t *finding;
    bool found = false;
    size_t i;

    if (ctx.findings == NULL ||
        secrets_scan(&ctx, "", (const unsigned char *)text, len) < 0) {
        scan->memory_short = true;
        json_decref(ctx.findings);
        return false;
    }
    json_array_foreach(json_object_get(ctx.findings, "secrets"), i, finding)
    {
        const char *rule = json_string_value(json_object_get(finding, "rule"));

        found = true;
        if (rule != NULL &&
            json_object_set_new(scan->rules, rule, json_true()) < 0)
            scan->memory_short = true;
    }
    json_decref(ctx.findings);
    return found;
}

/*
 * Scans the strings of array joined by spaces, as a shell would run an
 * entrypoint or a cmd, so that an option and its value in separate
 * arguments ("--aws-secret-access-key", "KEY") are read together. Arrays
 * with other values, and joined text over PG_IMAGE_CONFIG_MAX_BYTES, are
 * left to the scan of each string. Returns true when a rule matched.
 */
static bool
scan_joined(struct config_scan *scan, const json_t *array)
{
    size_t len = 0, pos = 0;
    const json_t *item;
    char *text;
    size_t i;

    bool found;

    if (json_array_size(array) < 2)
        return false;
    json_array_foreach(array, i, item)
    {
        if (!json_is_string(item))
            return false;
        len += json_string_length(item) + 1;
    }
    if (len > PG_IMAGE_CONFIG_MAX_BYTES)
        return false;
    text = malloc(len + 1);
    if (text == NULL) {
        scan->memory_short = true;
        return false;
    }
    json_array_foreach(array, i, item)
    {
        memcpy(text + pos, json_string_value(item), json_string_length(item));
        pos += json_string_length(item);
        text[pos++] = ' ';
    }
    text[pos] = '\0';
    found = scan_text(scan, text, pos);
    free(text);
    return found;
}

/*
 * Scans "NAME=VALUE" for a member whose value is a string, so that a key
 * whose rule needs its name, such as an AWS secret access key in a label
 * named aws_secret_access_key, is found. Returns true when a rule
 * matched.
 */
static bool
scan_member(struct config_scan *scan, const char *name, const json_t *member)
{
    size_t name_len = strlen(name);
    size_t len;
    char *text;
    bool found;

    if (!json_is_string(member))
        return false;
    len = name_len + 1 + json_string_length(member);
    text = malloc(len + 1);
    if (text == NULL) {
        scan->memory_short = true;
        return false;
    }
    memcpy(text, name, name_len);
    text[name_len] = '=';
    memcpy(text + name_len + 1, json_string_value(member),
           json_string_length(member));
    text[len] = '\0';
    found = scan_text(scan, text, len);
    free(text);
    return found;
}

/* Scans every string of value, member names included. JSON read from the
 * network was checked against PG_JSON_MAX_DEPTH, which bounds the
 * recursion. */
static void
scan_value(struct config_scan *scan, const json_t *value, int depth)
{
    const char *name;
    json_t *member;
    size_t i;

    if (depth > PG_JSON_MAX_DEPTH)
        return;
    if (json_is_string(value)) {
        scan_text(scan, json_string_value(value), json_string_length(value));
    } else if (json_is_object(value)) {
        json_object_foreach((json_t *)value, name, member)
        {
            scan_text(scan, name, strlen(name));
            scan_member(scan, name, member);
            scan_value(scan, member, depth + 1);
        }
    } else if (json_is_array(value)) {
        json_array_foreach(value, i, member)
        {
            scan_value(scan, member, depth + 1);
        }
        scan_joined(scan, value);
    }
}

/* Renames the members of object whose names contain a secret to
 * "<redacted>", "<redacted>-2" and so on, keeping their values. */
static void
redact_member_names(struct config_scan *scan, json_t *object)
{
    const char *name;
    json_t *member;
    void *tmp;
    size_t renamed = 0;

    json_object_foreach_safe(object, tmp, name, member)
    {
        char replacement[32];

        if (!scan_text(scan, name, strlen(name)))
            continue;
        renamed++;
        if (renamed == 1)
            snprintf(replacement, sizeof(replacement), "%s", REDACTED_VALUE);
        else
            snprintf(replacement, sizeof(replacement), "%s-%zu", REDACTED_VALUE,
                     renamed);
        json_incref(member);
        json_object_del(object, name);
        if (json_object_set_new(object, replacement, member) < 0)
            scan->memory_short = true;
    }
}

/* Replaces every string of value that contains a secret, and renames such
 * members. */
static void
redact_value(struct config_scan *scan, json_t *value, int depth)
{
    const char *name;
    json_t *member;
    size_t i;

    if (depth > PG_JSON_MAX_DEPTH)
        return;
    if (json_is_object(value)) {
        redact_member_names(scan, value);
        json_object_foreach(value, name, member)
        {
            if (json_is_string(member)) {
                if ((scan_member(scan, name, member) ||
                     scan_text(scan, json_string_value(member),
                               json_string_length(member))) &&
                    json_string_set(member, REDACTED_VALUE) < 0)
                    scan->memory_short = true;
            } else {
                redact_value(scan, member, depth + 1);
            }
        }
    } else if (json_is_array(value)) {
        /* A secret split over several arguments is found only when they
         * are read together, and then every argument is withheld. */
        bool whole = scan_joined(scan, value);

        json_array_foreach(value, i, member)
        {
            if (json_is_string(member)) {
                if ((whole || scan_text(scan, json_string_value(member),
                                        json_string_length(member))) &&
                    json_string_set(member, REDACTED_VALUE) < 0)
                    scan->memory_short = true;
            } else {
                redact_value(scan, member, depth + 1);
            }
        }
    }
}

/* Appends one finding per rule in rules, with source, to the document's
 * secrets. Returns 0 or -1. */
static int
add_findings(json_t *secrets, const json_t *rules, const char *source)
{
    const char *rule;
    json_t *unused;

    json_object_foreach((json_t *)rules, rule, unused)
    {
        json_t *item = json_pack("{s:s, s:s, s:s, s:n, s:I, s:b}", "rule", rule,
                                 "source", source, "path", "", "layer", "line",
                                 (json_int_t)0, "present", true);

        if (item == NULL || json_array_append_new(secrets, item) < 0)
            return -1;
    }
    return 0;
}

/* Finds the rules that match in value and records them with source.
 * Returns 0 or -1. */
static int
find_secrets(json_t *secrets, const json_t *value, const char *source,
             const struct inspector_options *options)
{
    struct config_scan scan = {.options = options, .rules = json_object()};
    int rc = -1;

    if (scan.rules == NULL)
        return -1;
    scan_value(&scan, value, 0);
    if (!scan.memory_short)
        rc = add_findings(secrets, scan.rules, source);
    json_decref(scan.rules);
    return rc;
}

/* Redacts the sections of the document that come from the config and the
 * manifest. Returns 0 or -1. */
static int
redact_document(json_t *document, const struct inspector_options *options)
{
    struct config_scan scan = {.options = options, .rules = json_object()};
    json_t *manifest = json_object_get(document, "manifest");
    static const char *const sections[] = {"config", "platform", "base_image",
                                           NULL};
    int rc = 0;

    if (scan.rules == NULL)
        return -1;
    for (size_t i = 0; sections[i] != NULL; i++)
        redact_value(&scan, json_object_get(document, sections[i]), 0);
    redact_value(&scan, json_object_get(manifest, "annotations"), 0);
    if (scan.memory_short)
        rc = -1;
    json_decref(scan.rules);
    return rc;
}

int
inspector_document_scan_config(json_t *document, const char *config_bytes,
                               size_t config_len,
                               const struct inspector_options *options,
                               struct pg_error **err)
{
    json_t *secrets = json_object_get(document, "secrets");
    json_t *summary = json_object_get(document, "summary");
    json_t *manifest = json_object_get(document, "manifest");
    json_t *config = json_loadb(config_bytes, config_len, 0, NULL);
    int rc = -1;

    /* The builder parsed the same bytes already, so a parse failure here
     * means memory is short. */
    if (config == NULL || !json_is_array(secrets))
        goto out;
    if (find_secrets(secrets, config, "config", options) < 0 ||
        find_secrets(secrets, json_object_get(manifest, "annotations"),
                     "manifest", options) < 0 ||
        redact_document(document, options) < 0)
        goto out;
    if (json_is_object(summary) &&
        json_object_set_new(
            summary, "secrets",
            json_integer((json_int_t)json_array_size(secrets))) < 0)
        goto out;
    rc = 0;

out:
    if (rc < 0)
        set_memory_error(err);
    json_decref(config);
    return rc;
}
