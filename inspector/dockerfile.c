/*
 * The Dockerfile of an image, read back from the created_by texts of its
 * history: the instructions of Docker's classic builder and of BuildKit,
 * with shell wrappers and build arguments taken off RUN commands.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "config/error.h"
#include "inspector/document_internal.h"

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
int
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
