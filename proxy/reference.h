/*
 * The grammar of repository names, tags and digests, as the OCI
 * distribution specification 1.1 and the image specification define them.
 * Every name, tag and digest a client sends is checked here before any
 * upstream request is made.
 */
#ifndef PG_REFERENCE_H
#define PG_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A repository name: path components of [a-z0-9]+ joined by ".", "_",
 * "__" or runs of "-", separated by "/", at most PG_NAME_MAX bytes.
 */
bool reference_name_valid(const char *name);

/* A tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool reference_tag_valid(const char *tag);

/*
 * A digest this proxy can verify: "sha256:" and 64 lowercase hex digits,
 * or "sha512:" and 128. Other algorithms that fit the generic grammar are
 * not valid here, because their bytes could not be checked.
 */
bool reference_digest_valid(const char *digest);

/* True when text looks like a digest (has a ':'), valid or not. */
bool reference_is_digest(const char *text);

/*
 * True when the first path component of a name is a registry host rather
 * than a repository component: it contains '.' or ':', or is "localhost".
 */
bool reference_component_is_host(const char *component, size_t len);

#endif
