/* Placeholder for the SBOM writers. */
#include "inspector/sbom.h"

/* TODO: replace this placeholder with the SPDX writer. */
json_t *
inspector_sbom_spdx(const json_t *document, struct pg_error **err)
{
    (void)document;
    pg_error_set(err, 500, PG_ERR_INTERNAL, "SPDX output is not built yet");
    return NULL;
}

/* TODO: replace this placeholder with the CycloneDX writer. */
json_t *
inspector_sbom_cyclonedx(const json_t *document, struct pg_error **err)
{
    (void)document;
    pg_error_set(err, 500, PG_ERR_INTERNAL,
                 "CycloneDX output is not built yet");
    return NULL;
}
