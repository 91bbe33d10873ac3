/*
 * The static checker of CEL expressions: finds, before anything is
 * evaluated, the mistakes that would otherwise show up as runtime errors
 * on the first image that reaches them.
 */
#ifndef PG_CEL_CHECK_H
#define PG_CEL_CHECK_H

#include <stdbool.h>

#include <jansson.h>

#include "config/error.h"
#include "policy/cel.h"

/* The variables a checked expression may read. */
enum cel_check_env {
    /* Any name: the variables are not known in advance, as for
     * pullgate policy eval. Only functions and literals are checked. */
    CEL_ENV_ANY,
    /* A policy rule: the members of the image document, with the types
     * docs/image-document.md gives them, and the request's "image". */
    CEL_ENV_POLICY,
};

struct cel_check_result {
    /* Problems found, in source order: an array of {"line", "column",
     * "severity": "error" | "warning", "message"}, where line and column
     * are the expression's own. Owned by the caller (json_decref). */
    json_t *problems;
    /* Whether the expression reads the variable "image". */
    bool reads_image;
    /* Whether it reads any member of the image document. */
    bool reads_document;
};

/*
 * Checks a tree from cel_parse(): unknown functions and wrong argument
 * counts, undeclared variables, fields that the document's objects do not
 * have, operands whose types can never fit, and a result whose type can
 * never be want ("bool", "string", or NULL for any). Fills result, whose
 * problems array the caller releases. Returns 0, or -1 with err set when
 * memory is short.
 */
int cel_check(const struct cel_ast *ast, enum cel_check_env env,
              const char *want, struct cel_check_result *result,
              struct pg_error **err);

#endif
