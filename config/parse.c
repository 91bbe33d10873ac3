#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "config/parse.h"

int
pg_parse_u64_n(const char *text, size_t len, uint64_t max, uint64_t *value)
{
    uint64_t result = 0;

    if (text == NULL || len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned digit;

        if (text[i] < '0' || text[i] > '9')
            return -1;
        digit = (unsigned)(text[i] - '0');
        if (digit > max || result > (max - digit) / 10)
            return -1;
        result = result * 10 + digit;
    }
    *value = result;
    return 0;
}

int
pg_parse_u64(const char *text, uint64_t max, uint64_t *value)
{
    if (text == NULL)
        return -1;
    return pg_parse_u64_n(text, strlen(text), max, value);
}

bool
pg_json_depth_within(const char *text, size_t len, unsigned max_depth)
{
    unsigned depth = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}
