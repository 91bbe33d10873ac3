#include "config/utf8.h"

#include <stdint.h>
#include <string.h>

size_t
pg_utf8_sequence_length(const unsigned char *text, size_t left)
{
    uint32_t code_point;
    size_t len;

    if (left == 0)
        return 0;
    if (text[0] < 0x80)
        return 1;
    if (text[0] >= 0xc2 && text[0] <= 0xdf) {
        len = 2;
        code_point = text[0] & 0x1f;
    } else if (text[0] >= 0xe0 && text[0] <= 0xef) {
        len = 3;
        code_point = text[0] & 0x0f;
    } else if (text[0] >= 0xf0 && text[0] <= 0xf4) {
        len = 4;
        code_point = text[0] & 0x07;
    } else {
        return 0;
    }

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

void
pg_utf8_trim(char *text)
{
    size_t len = strlen(text);
    size_t start = len;
    unsigned char lead;
    size_t need;

    /* Continuation bytes have the form 10xxxxxx; a sequence has at most
     * three after its lead byte. */
    while (start > 0 && len - start < 3 &&
           ((unsigned char)text[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)text[start - 1];
    if (lead < 0xC0)
        return;
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (start - 1) < need)
        text[start - 1] = '\0';
}
