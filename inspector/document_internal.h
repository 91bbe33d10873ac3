/*
 * What the parts of the image document builder share: document.c
 * assembles the document from the manifest and the image config, merge.c
 * merges the layers and keeps the findings of present files, and
 * dockerfile.c reads the history back as Dockerfile instructions.
 * Internal to the inspector.
 */
#ifndef PG_INSPECTOR_DOCUMENT_INTERNAL_H
#define PG_INSPECTOR_DOCUMENT_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "config/error.h"

/* Sets err to 503 for a memory shortage while building the document. */
void set_memory_error(struct pg_error **err);

/*
 * Sets key in object, or appends to array, stealing value. A NULL value
 * or a failed insert is a memory shortage. Returns 0, or -1 with err set.
 */
int set_new(json_t *object, const char *key, json_t *value,
            struct pg_error **err);
int append_new(json_t *array, json_t *value, struct pg_error **err);

/* Returns c in lowercase when it is an ASCII capital letter, else c. */
char ascii_lower(char c);

/* Returns {"digest", "media_type", "size"} of a descriptor, tolerating
 * missing members, or NULL when memory is short. The caller owns it. */
json_t *descriptor_summary(const json_t *descriptor);

/*
 * Adds "dockerfile" to the config section from its "history", whose
 * created_by texts are already redacted (dockerfile.c). Returns 0, or -1
 * when memory is short.
 */
int section_add_dockerfile(json_t *section, struct pg_error **err);

/*
 * Adds "layers", "files", "os", "packages", "secrets", inspection.notes
 * and "summary" to document from the layer results, checking each result
 * against the manifest's layer at its index (merge.c). Returns 0, or -1
 * with a 500 error for a result that does not match or lacks a field, or
 * 503 when memory is short.
 */
int document_add_layers(json_t *document, const json_t *manifest,
                        json_t *const *results, size_t n_layers,
                        struct pg_error **err);

#endif
