/*
 * The policy: rules written in YAML whose conditions are CEL expressions
 * over the image document, turned into verdicts.
 *
 * A policy is one file or a directory of files (docs/policy.md). Rules
 * come in two groups. Source rules read only the request's image
 * reference (the CEL variable "image"), so they are checked on every
 * request before anything is fetched. Content rules read the image
 * document; their findings do not depend on the request and are stored
 * under (manifest digest, policy digest). Scope and exceptions depend on
 * the request and on the time, so policy_decide() applies them to the
 * stored findings of each request.
 *
 * A loaded policy is immutable and may be used by several threads at once.
 * It is reference-counted, so a reload can replace it while evaluations of
 * the old one finish.
 */
#ifndef PG_POLICY_H
#define PG_POLICY_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "config/error.h"

struct policy;

/* The request a verdict is for. registry is the upstream's name
 * ("docker.io"), repository the upstream-side name ("library/alpine").
 * tag is NULL for a request by digest; digest is the manifest digest, or
 * NULL when it is not known yet (a source check of a request by tag). */
struct policy_request {
    const char *registry;
    const char *repository;
    const char *tag;
    const char *digest;
};

/*
 * Loads the policy at path, a file or a directory, or the built-in default
 * policy when path is NULL. Returns a policy with one reference, which the
 * caller drops with policy_free, or NULL with an error for a policy that
 * has any error: "FILE:LINE:COLUMN: problem; what to do" (status 500, code
 * PG_ERR_CONFIG), followed by "(and N more problems; run pullgate policy
 * lint PATH)" when there are several. Warnings (expired exceptions) do not
 * stop loading; policy_warnings lists them.
 */
struct policy *policy_load(const char *path, struct pg_error **err);

/* As policy_load, from one file's text in memory; name appears in error
 * messages and in the digest as the file's name. */
struct policy *policy_parse(const char *name, const char *text, size_t len,
                            struct pg_error **err);

/*
 * Checks the policy at path and returns every problem found, in file and
 * line order, as an array of {"file", "line", "column", "severity":
 * "error" | "warning", "message"}, which the caller releases with
 * json_decref. now decides which exceptions have expired. Returns NULL
 * with err set only when memory is short.
 */
json_t *policy_lint(const char *path, time_t now, struct pg_error **err);

/*
 * Parses a time as policies write it: a date YYYY-MM-DD, or an RFC 3339
 * time such as 2027-03-31T18:00:00Z. A date stands for its first second
 * in UTC, or, when date_is_end is set (an exception's expiry, which
 * applies through that day), for the first second of the next day.
 * Returns NULL, or a static text that says why text is invalid: neither
 * form, a day the month does not have, or a year before 1970.
 */
const char *policy_parse_time(const char *text, bool date_is_end,
                              time_t *out);

/* Takes another reference to the policy and returns it. */
struct policy *policy_ref(struct policy *policy);

/* Drops one reference and frees the policy with the last; accepts NULL. */
void policy_free(struct policy *policy);

/*
 * Returns "sha256:<hex>" over the canonical form of the policy's files
 * (docs/policy.md): comments and layout do not change it, any change to a
 * rule does. Owned by the policy.
 */
const char *policy_digest(const struct policy *policy);

/* Returns where the policy came from: its path or "built-in default
 * policy". Owned by the policy. */
const char *policy_source(const struct policy *policy);

/* Returns the warnings found while loading, in policy_lint's form (an
 * empty array when there are none). Owned by the policy. */
const json_t *policy_warnings(const struct policy *policy);

/*
 * Runs the source rules against a request, with scope and exceptions
 * applied at time now. Returns a verdict:
 *   {"decision": "allow" | "deny",
 *    "policy_digest": "sha256:...",
 *    "kind": "image",
 *    "denied":   [{"rule": NAME, "message": TEXT}, ...],
 *    "warnings": [{"rule": NAME, "message": TEXT}, ...],
 *    "excepted": [{"rule", "message", "reason", "expires"}, ...]}
 * that the caller releases with json_decref, or NULL when memory is short.
 */
json_t *policy_check_source(const struct policy *policy,
                            const struct policy_request *request, time_t now);

/*
 * Runs the content rules against an image document. Returns the findings,
 * which depend on the document alone:
 *   {"policy_digest": "sha256:...", "kind": "image" | "artifact",
 *    "findings": [{"rule": NAME, "action": "deny" | "warn",
 *                  "message": TEXT}, ...]}
 * A document whose "inspection.status" is "failed" gets the finding
 * "inspection-failed" with the action on_inspection_failure sets (none for
 * allow). A document whose "kind" is "artifact" gets no content rules. A
 * condition that fails to evaluate, or gives something other than a bool,
 * fires with the rule's action and a message saying why, so an error never
 * lets an image through a deny rule. The caller releases the result with
 * json_decref. Returns NULL with an error when memory is short or document
 * is not a JSON object.
 */
json_t *policy_evaluate(const struct policy *policy, const json_t *document,
                        struct pg_error **err);

/*
 * Turns findings from policy_evaluate into the verdict for one request at
 * time now: a finding counts only when its rule's scope matches the
 * request, and a finding that an unexpired exception covers moves to
 * "excepted". Findings of rules this policy does not have (stored by
 * another policy with the same digest, which cannot happen unless the
 * store was edited) count as they are. Returns a verdict as
 * policy_check_source does, with "kind" copied from the findings, or NULL
 * when memory is short.
 */
json_t *policy_decide(const struct policy *policy, const json_t *findings,
                      const struct policy_request *request, time_t now);

/*
 * Returns the verdict a request gets once its manifest digest is known:
 * policy_decide over findings, with what the source rules find for the
 * request added. The check before the fetch cannot pass on their warnings
 * and exceptions, and a rule that reads image.digest may deny only now.
 * The caller releases it with json_decref. Returns NULL when memory is
 * short.
 */
json_t *policy_verdict(const struct policy *policy, const json_t *findings,
                       const struct policy_request *request, time_t now);

#endif
