/*
 * What every cataloger shares: the table the layer reader walks, the way
 * findings are recorded, and package URLs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "inspector/catalog.h"

/* Bytes of one note's message; longer ones are cut. */
#define NOTE_MESSAGE_MAX 512

/* Notes kept for one layer. A hostile layer can ask for one per entry,
 * such as a file named like a jar that is not a zip archive. */
#define CATALOG_NOTES_MAX 1000

const struct cataloger *const catalog_table[] = {
    &catalog_os_release,
    &catalog_dpkg,
    &catalog_dpkg_copyright,
    &catalog_apk,
    &catalog_rpm,
    &catalog_python,
    &catalog_npm,
    &catalog_java,
    &catalog_ruby,
    NULL,
};

int
catalog_add(struct catalog_ctx *ctx, const char *key, json_t *item)
{
    json_t *list;

    if (item == NULL)
        return -1;
    list = json_object_get(ctx->findings, key);
    if (list == NULL) {
        list = json_array();
        if (list == NULL || json_object_set_new(ctx->findings, key, list) < 0) {
            json_decref(item);
            return -1;
        }
    }
    return json_array_append_new(list, item);
}

int
catalog_note(struct catalog_ctx *ctx, const char *cataloger, const char *path,
             const char *fmt, ...)
{
    char message[NOTE_MESSAGE_MAX];
    size_t count = json_array_size(json_object_get(ctx->findings, "notes"));
    va_list ap;
    json_t *note;

    /* One note past the maximum marks where the notes stop. */
    if (count > CATALOG_NOTES_MAX)
        return 0;
    if (count == CATALOG_NOTES_MAX) {
        snprintf(message, sizeof(message),
                 "the layer reached its maximum of %d notes here; later "
                 "notes were not recorded",
                 CATALOG_NOTES_MAX);
    } else {
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
    }

    note = json_object();
    if (note == NULL ||
        json_object_set_new(note, "cataloger", json_string(cataloger)) < 0 ||
        json_object_set_new(note, "path",
                            inspector_json_text(path, strlen(path))) < 0 ||
        json_object_set_new(note, "message",
                            inspector_json_text(message, strlen(message))) <
            0) {
        json_decref(note);
        return -1;
    }
    return catalog_add(ctx, "notes", note);
}

void
catalog_problems_add(struct catalog_problems *problems, const char *fmt, ...)
{
    va_list ap;

    if (problems->count++ > 0)
        return;
    va_start(ap, fmt);
    vsnprintf(problems->first, sizeof(problems->first), fmt, ap);
    va_end(ap);
}

int
catalog_problems_note(struct catalog_ctx *ctx, const char *cataloger,
                      const char *path, const struct catalog_problems *problems)
{
    if (problems->count == 0)
        return 0;
    if (problems->count == 1)
        return catalog_note(ctx, cataloger, path, "%s", problems->first);
    return catalog_note(ctx, cataloger, path, "%s (%lu problems in all)",
                        problems->first, problems->count);
}

bool
catalog_has_prefix(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

bool
catalog_has_suffix(const char *text, const char *suffix)
{
    size_t len = strlen(text);
    size_t suffix_len = strlen(suffix);

    return len >= suffix_len &&
           memcmp(text + len - suffix_len, suffix, suffix_len) == 0;
}

/* ---- package URLs ---- */

/* A growing string; on a memory shortage it is marked failed and stays
 * that way, so callers check once at the end. */
struct purl_text {
    char *bytes;
    size_t len;
    size_t cap;
    bool failed;
};

static void
text_append(struct purl_text *text, const char *bytes, size_t len)
{
    if (text->failed)
        return;
    if (text->len + len + 1 > text->cap) {
        size_t cap = text->cap == 0 ? 128 : text->cap;
        char *grown;

        while (text->len + len + 1 > cap)
            cap *= 2;
        grown = realloc(text->bytes, cap);
        if (grown == NULL) {
            text->failed = true;
            return;
        }
        text->bytes = grown;
        text->cap = cap;
    }
    memcpy(text->bytes + text->len, bytes, len);
    text->len += len;
    text->bytes[text->len] = '\0';
}

static void
text_append_str(struct purl_text *text, const char *str)
{
    text_append(text, str, strlen(str));
}

/*
 * Appends a purl component percent-encoded: every byte but the unreserved
 * characters of RFC 3986 and ':' (which purl keeps, as in deb epochs such
 * as "1:2.3") is encoded, so "libstdc++6" becomes "libstdc%2B%2B6" and an
 * npm scope "@types" becomes "%40types".
 */
static void
text_append_encoded(struct purl_text *text, const char *component,
                    bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)component; *p != 0;
         p++) {
        char c = (char)*p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                     c == '_' || c == '~' || c == ':' ||
                     (keep_slash && c == '/');

        if (plain) {
            text_append(text, &c, 1);
        } else {
            char escaped[3] = {'%', hex[*p >> 4], hex[*p & 15]};

            text_append(text, escaped, 3);
        }
    }
}

static int
compare_qualifier_keys(const void *a, const void *b)
{
    const char *const *pa = a;
    const char *const *pb = b;

    return strcmp(pa[0], pb[0]);
}

/* Appends "?k=v&k=v" with the pairs sorted by key, skipping empty values. */
static void
text_append_qualifiers(struct purl_text *text, const char *const *qualifiers)
{
    const char *pairs[32][2];
    size_t n = 0;

    for (size_t i = 0; qualifiers != NULL && qualifiers[i] != NULL &&
                       n < sizeof(pairs) / sizeof(pairs[0]);
         i += 2) {
        if (qualifiers[i + 1] == NULL || qualifiers[i + 1][0] == '\0')
            continue;
        pairs[n][0] = qualifiers[i];
        pairs[n][1] = qualifiers[i + 1];
        n++;
    }
    qsort(pairs, n, sizeof(pairs[0]), compare_qualifier_keys);
    for (size_t i = 0; i < n; i++) {
        text_append(text, i == 0 ? "?" : "&", 1);
        text_append_str(text, pairs[i][0]);
        text_append(text, "=", 1);
        text_append_encoded(text, pairs[i][1], false);
    }
}

json_t *
catalog_purl(const char *type, const char *namespace, const char *name,
             const char *version, const char *const *qualifiers)
{
    struct purl_text text = {0};
    json_t *result = NULL;

    text_append_str(&text, "pkg:");
    text_append_str(&text, type);
    text_append(&text, "/", 1);
    if (namespace != NULL && namespace[0] != '\0') {
        text_append_encoded(&text, namespace, true);
        text_append(&text, "/", 1);
    }
    text_append_encoded(&text, name, false);
    if (version != NULL && version[0] != '\0') {
        text_append(&text, "@", 1);
        text_append_encoded(&text, version, false);
    }
    text_append_qualifiers(&text, qualifiers);

    if (!text.failed)
        result = json_string(text.bytes);
    free(text.bytes);
    return result;
}
