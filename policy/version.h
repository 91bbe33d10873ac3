/*
 * Version comparison for policies, with the rules of each packaging
 * ecosystem:
 *
 *   deb     dpkg: [epoch:]upstream[-revision], '~' before everything
 *   apk     apk-tools: 1.2.3a_rc1_p2~c0ffee-r4
 *   rpm     rpmvercmp over [epoch:]version[-release], with '~' and '^'
 *   semver  Semantic Versioning 2.0.0, with an optional leading 'v' as Go
 *           writes it; build metadata does not take part in the order
 *   pep440  PEP 440 as Python's packaging library reads it: epochs,
 *           pre-, post- and development releases, local versions, and
 *           normalisation such as 1.0alpha1 == 1.0a1
 *
 * The package URL types npm and golang name semver, and pypi names pep440.
 * Each scheme accepts the versions its own tool accepts; where this code
 * differs, a NOTE at the scheme's parser says how. Every version is at
 * most PG_VERSION_MAX_BYTES long, which bounds all the work.
 */
#ifndef PG_VERSION_H
#define PG_VERSION_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of one version. A longer version is invalid in every scheme. */
#define PG_VERSION_MAX_BYTES 256

/* Bytes a message buffer for these functions needs to hold any message
 * whole. */
#define PG_VERSION_WHY_BYTES 512

enum pg_version_scheme {
    PG_VERSION_DEB,
    PG_VERSION_APK,
    PG_VERSION_RPM,
    PG_VERSION_SEMVER,
    PG_VERSION_PEP440,
};

/*
 * Looks up the scheme named by len bytes of name: deb, apk, rpm, semver,
 * pep440, or the package URL types npm, golang and pypi. Returns 0 with
 * *scheme set, or -1 with a message in why (why_size bytes, may be 0)
 * such as "unknown version scheme 'x'; use deb, apk, rpm, semver or
 * pep440".
 */
int pg_version_scheme_lookup(const char *name, size_t len,
                             enum pg_version_scheme *scheme, char *why,
                             size_t why_size);

/* Returns the name of a scheme: "deb", "semver"... */
const char *pg_version_scheme_name(enum pg_version_scheme scheme);

/*
 * Checks that len bytes of v are a valid version in the scheme. Returns 0,
 * or -1 with a message in why that quotes the version and says what is
 * wrong: "'1.x' is not a valid semver version: the minor version 'x' is
 * not a number".
 */
int pg_version_check(enum pg_version_scheme scheme, const char *v, size_t len,
                     char *why, size_t why_size);

/* Returns whether len bytes of v are a valid version in the scheme. */
bool pg_version_valid(enum pg_version_scheme scheme, const char *v, size_t len);

/*
 * Compares version a with version b in the scheme. Returns 0 with *result
 * set to -1, 0 or 1 as a is lower than, equal to or higher than b, or -1
 * with the message of pg_version_check() in why when either is invalid.
 */
int pg_version_compare(enum pg_version_scheme scheme, const char *a,
                       size_t a_len, const char *b, size_t b_len, int *result,
                       char *why, size_t why_size);

#endif
