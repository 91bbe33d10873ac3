/*
 * SBOM writers: the packages of an image document as SPDX 2.3 or
 * CycloneDX 1.5 JSON.
 *
 * Both read the document's "source", "manifest", "platform", "os" and
 * "packages" members, and a member that is missing or of another type is
 * left out of the SBOM rather than failing it. An image described by
 * source {"registry": "r", "repository": "a/b", "reference": "1.0"} is
 * named "r/a/b:1.0" ("r/a/b@sha256:..." for a digest reference, and "a/b"
 * alone when the registry is ""), and its version is the manifest digest.
 */
#ifndef PG_INSPECTOR_SBOM_H
#define PG_INSPECTOR_SBOM_H

#include <jansson.h>

#include "config/error.h"

/*
 * The URI prefix of every SPDX documentNamespace. The .invalid top-level
 * domain is reserved (RFC 2606) and never resolves, so the namespace is
 * only a name and nothing ever looks it up.
 */
#define SBOM_SPDX_NAMESPACE_PREFIX "https://pullgate.invalid/spdx/"

/* Packages of one document written to an SBOM; more fail the writer. */
#define SBOM_PACKAGES_MAX 100000

/* License strings of one package that are read, and the bytes of one
 * license expression; longer ones are written as free text. */
#define SBOM_PACKAGE_LICENSES_MAX 64
#define SBOM_LICENSE_EXPRESSION_MAX 1024

/*
 * Writes document as an SPDX 2.3 document: the image is one package that
 * the document DESCRIBES and that CONTAINS the operating system and every
 * package. A package's licenseDeclared is an SPDX license expression when
 * each of its license strings is a listed license or a valid expression of
 * listed licenses. Other strings become LicenseRef- identifiers declared in
 * hasExtractedLicensingInfos, and several strings are joined with AND. The
 * documentNamespace is SBOM_SPDX_NAMESPACE_PREFIX, the manifest digest and
 * the pullgate version, so the same image gets the same namespace from the
 * same pullgate. Returns a new object that the caller owns, or NULL with
 * a 500 error when the document has more than SBOM_PACKAGES_MAX packages
 * or memory is short.
 */
json_t *inspector_sbom_spdx(const json_t *document, struct pg_error **err);

/*
 * Writes document as a CycloneDX 1.5 BOM: the image is
 * metadata.component (type "container", version the manifest digest),
 * the operating system is a component of type "operating-system" and
 * each package one of type "library". A license string that is one listed
 * SPDX license becomes {"license": {"id"}}, any other string
 * {"license": {"name"}}, and when every string is a valid SPDX expression
 * and one of them is compound, the package gets one {"expression"}. The
 * serialNumber is a random (version 4) UUID from OpenSSL's RAND_bytes,
 * because CycloneDX asks for a new serial number for every BOM even when
 * its content is unchanged. Returns a new object that the caller owns, or
 * NULL with a 500 error as for inspector_sbom_spdx.
 */
json_t *inspector_sbom_cyclonedx(const json_t *document,
                                 struct pg_error **err);

#endif
