#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "config/limits.h"
#include "proxy/reference.h"

#define SHA256_PREFIX "sha256:"
#define SHA512_PREFIX "sha512:"
#define SHA256_HEX_LEN 64
#define SHA512_HEX_LEN 128

static bool
is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_tag_start(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_tag_char(char c)
{
    return is_tag_start(c) || c == '.' || c == '-';
}

static bool
is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/*
 * Returns the length of the separator that starts text: 1 for ".", 1 or 2
 * for "_" and "__", the length of a run of "-", or 0 when text does not
 * start with a separator. A third '_' is left for the caller to reject.
 */
static size_t
separator_length(const char *text, size_t len)
{
    size_t n = 0;

    if (len == 0)
        return 0;
    if (text[0] == '.')
        return 1;
    if (text[0] == '_')
        return len > 1 && text[1] == '_' ? 2 : 1;

    while (n < len && text[n] == '-')
        n++;
    return n;
}

/* Matches one path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool
component_valid(const char *text, size_t len)
{
    size_t i = 0;

    for (;;) {
        size_t start = i;
        size_t separator;

        while (i < len && is_lower_alnum(text[i]))
            i++;
        if (i == start)
            return false;
        if (i == len)
            return true;

        separator = separator_length(text + i, len - i);
        if (separator == 0)
            return false;
        i += separator;
    }
}

bool
reference_name_valid(const char *name)
{
    size_t len;
    size_t start = 0;

    if (name == NULL)
        return false;
    len = strnlen(name, PG_NAME_MAX + 1);
    if (len == 0 || len > PG_NAME_MAX)
        return false;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        if (!component_valid(name + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

bool
reference_tag_valid(const char *tag)
{
    size_t len;

    if (tag == NULL)
        return false;
    len = strnlen(tag, PG_TAG_MAX + 1);
    if (len == 0 || len > PG_TAG_MAX)
        return false;
    if (!is_tag_start(tag[0]))
        return false;

    for (size_t i = 1; i < len; i++) {
        if (!is_tag_char(tag[i]))
            return false;
    }
    return true;
}

/* True when text is exactly len lowercase hex digits and then its end. */
static bool
hex_exact(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_lower_hex(text[i]))
            return false;
    }
    return text[len] == '\0';
}

bool
reference_digest_valid(const char *digest)
{
    size_t prefix_len = sizeof(SHA256_PREFIX) - 1;

    if (digest == NULL)
        return false;
    if (strncmp(digest, SHA256_PREFIX, prefix_len) == 0)
        return hex_exact(digest + prefix_len, SHA256_HEX_LEN);

    prefix_len = sizeof(SHA512_PREFIX) - 1;
    if (strncmp(digest, SHA512_PREFIX, prefix_len) == 0)
        return hex_exact(digest + prefix_len, SHA512_HEX_LEN);
    return false;
}

bool
reference_is_digest(const char *text)
{
    return text != NULL && strchr(text, ':') != NULL;
}

bool
reference_component_is_host(const char *component, size_t len)
{
    static const char localhost[] = "localhost";

    if (component == NULL || len == 0)
        return false;
    if (memchr(component, '.', len) != NULL)
        return true;
    if (memchr(component, ':', len) != NULL)
        return true;
    return len == sizeof(localhost) - 1 &&
           memcmp(component, localhost, len) == 0;
}
