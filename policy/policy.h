/*
 * The policy: rules loaded from a YAML file, turned into verdicts.
 *
 * Rules come in two groups. Source rules (denied registries, denied
 * repositories) read only the reference, so they are checked on every
 * request before anything is fetched. Content rules read the image document
 * and their verdict is stored under (manifest digest, policy digest).
 *
 * A loaded policy is immutable and may be used by several threads at once.
 */
#ifndef PG_POLICY_H
#define PG_POLICY_H

#include <jansson.h>

#include "config/error.h"

struct policy;

/*
 * Loads the policy file at path, or the built-in default policy when path
 * is NULL. Returns a policy that the caller frees with policy_free, or NULL
 * with an error "PATH:LINE:COLUMN: problem; what to do" (status 500, code
 * PG_ERR_CONFIG) for a file that is not a valid version 1 policy.
 */
struct policy *policy_load(const char *path, struct pg_error **err);

/* As policy_load, from memory; name appears in error messages. */
struct policy *policy_parse(const char *name, const char *text, size_t len,
                            struct pg_error **err);

/*
 * Returns "sha256:<hex>" over the canonical JSON form of the policy: the
 * parsed file with defaults filled in, keys sorted, no spaces. Comments
 * and layout do not change it; any change to a rule does. Owned by the
 * policy.
 */
const char *policy_digest(const struct policy *policy);

/* Returns where the policy came from: its path or "built-in default
 * policy". Owned by the policy. */
const char *policy_source(const struct policy *policy);

/*
 * Checks the source rules against a request. registry is the upstream's
 * name ("docker.io"), repository the upstream-side name ("library/alpine"),
 * reference a tag or digest. Returns a verdict object (see below) whose
 * decision is "deny" when a source rule denies. The caller releases it
 * with json_decref. Returns NULL when memory is short.
 */
json_t *policy_check_source(const struct policy *policy, const char *registry,
                            const char *repository, const char *reference);

/*
 * Evaluates the content rules against an image document. Returns the
 * verdict:
 *   {"decision": "allow" | "deny",
 *    "policy_digest": "sha256:...",
 *    "denied":   [{"rule": NAME, "message": TEXT}, ...],
 *    "warnings": [{"rule": NAME, "message": TEXT}, ...]}
 * A document whose "inspection.status" is "failed" gets the decision set
 * by on_inspection_failure (deny by default), with rule
 * "inspection-failed". A document whose "kind" is "artifact" gets no
 * content rules. A pattern that exceeds the match limit denies the image,
 * whatever the rule's action, with a message naming the pattern. The
 * caller releases the verdict with json_decref. Returns NULL with an error
 * when memory is short or document is not a JSON object.
 */
json_t *policy_evaluate(const struct policy *policy, const json_t *document,
                        struct pg_error **err);

/* Frees the policy; accepts NULL. */
void policy_free(struct policy *policy);

#endif
