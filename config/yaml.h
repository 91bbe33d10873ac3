/*
 * YAML to jansson, remembering where each value came from.
 *
 * Used for the daemon configuration and for policy files, so both report
 * errors as FILE:LINE:COLUMN. Only the JSON-compatible part of YAML 1.1 is
 * accepted: mappings with string keys, sequences and scalars. Plain scalars
 * become integers, reals, booleans (true/false) or null (null, ~, empty)
 * when they look like one, as the YAML 1.2 core schema resolves them
 * (decimal numbers only, without a leading '+', .inf or .nan). Quoted
 * scalars stay strings. Anchors, aliases, tags other than the
 * standard !!str, !!int, !!float, !!bool, !!null, !!seq and !!map,
 * duplicate keys, keys that are not strings, a second document and nesting
 * deeper than PG_JSON_MAX_DEPTH are errors.
 */
#ifndef PG_YAML_H
#define PG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config/error.h"

struct yaml_doc;

/*
 * Parses the file at path (at most PG_CONFIG_FILE_MAX_BYTES). Returns the
 * document, which the caller frees with yaml_doc_free, or NULL with an
 * error "PATH:LINE:COLUMN: problem" (status 500, PG_ERR_CONFIG). An empty
 * file is an empty object.
 */
struct yaml_doc *yaml_doc_load(const char *path, struct pg_error **err);

/* As yaml_doc_load, from memory; name is used in error messages. */
struct yaml_doc *yaml_doc_parse(const char *name, const char *text,
                                size_t len, struct pg_error **err);

/* The root value; owned by the document. */
json_t *yaml_doc_root(const struct yaml_doc *doc);

/* The source name given at load. */
const char *yaml_doc_name(const struct yaml_doc *doc);

/*
 * Returns the 1-based line and column where value (any value inside the
 * root) starts, or 0 and 0 when it is not part of the document. jansson
 * shares one true, one false and one null among all documents, so those
 * three always give 0 and 0: find them with yaml_doc_key_position or
 * yaml_doc_index_position instead.
 */
void yaml_doc_position(const struct yaml_doc *doc, const json_t *value,
                       size_t *line, size_t *column);

/*
 * Returns the line and column where the text of a string value starts:
 * after the opening quote of a quoted scalar, or at the first character
 * of a block scalar's first line. *literal is true for a "|" block, whose
 * lines are the text's lines, so line N of the text is content line + N - 1
 * at the same indentation. Gives 0 and 0 for a value not in the document.
 */
void yaml_doc_content_position(const struct yaml_doc *doc, const json_t *string,
                               size_t *line, size_t *column, bool *literal);

/*
 * Turns a position inside the text of a string value into its position in
 * the file. Lines and columns are 1-based and count the decoded text's
 * characters. The walk steps past the escapes and doubled quotes of quoted
 * scalars and the indentation of blocks, and follows line folding. Gives 0
 * and 0 for a value not in the document.
 */
void yaml_doc_string_position(const struct yaml_doc *doc, const json_t *string,
                              size_t line, size_t column, size_t *out_line,
                              size_t *out_column);

/* Returns the line and column of the key that names member key of object,
 * or 0 and 0 when object has no such key in the document. */
void yaml_doc_key_position(const struct yaml_doc *doc, const json_t *object,
                           const char *key, size_t *line, size_t *column);

/* Returns the line and column where element index (0-based) of array
 * starts, or 0 and 0 when array has no such element in the document. */
void yaml_doc_index_position(const struct yaml_doc *doc, const json_t *array,
                             size_t index, size_t *line, size_t *column);

/* Frees the document and its tree; accepts NULL. */
void yaml_doc_free(struct yaml_doc *doc);

#endif
