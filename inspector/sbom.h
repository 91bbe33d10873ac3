/*
 * SBOM writers: the packages of an image document as SPDX 2.3 or
 * CycloneDX 1.5 JSON.
 */
#ifndef PG_INSPECTOR_SBOM_H
#define PG_INSPECTOR_SBOM_H

#include <jansson.h>

#include "config/error.h"

/* TODO: document the writers once they exist. */
json_t *inspector_sbom_spdx(const json_t *document, struct pg_error **err);
json_t *inspector_sbom_cyclonedx(const json_t *document,
                                 struct pg_error **err);

#endif
