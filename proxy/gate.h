/*
 * The gate: the pull flow for manifests.
 *
 * A manifest request resolves to a digest (from the cache, or from the
 * upstream for tags, falling back to the cached tag record when the
 * upstream is unreachable), then to a verdict. An image whose verdict is
 * not stored yet is fetched into the blob store (config and every layer),
 * inspected on worker threads and evaluated. Requests for the same image
 * share that work. Nothing is served before its verdict exists.
 *
 * Loop thread only.
 */
#ifndef PG_GATE_H
#define PG_GATE_H

#include <jansson.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/error.h"
#include "policy/policy.h"
#include "proxy/blobfetch.h"
#include "proxy/route.h"
#include "proxy/upstream.h"
#include "proxy/workers.h"

struct gate;
struct gate_request;

/* The outcome of a manifest request; freed with gate_result_free. */
struct gate_result {
    struct pg_error *err; /* set when the client gets an error */
    char digest[PG_DIGEST_MAX + 1];
    char *media_type;
    char *bytes; /* the manifest exactly as the upstream sent it */
    size_t len;
    json_t *verdict;     /* the verdict, or NULL for an index */
    const char *source;  /* "cache", "upstream" or "stale" */
    const char *outcome; /* "allow", "deny", "index", "artifact", "error" */
};

typedef void (*gate_manifest_cb)(struct gate_result *result, void *arg);

/*
 * Creates the gate and its pool of layer reader threads
 * (cfg->inspector.threads, 0: two per online CPU). workers runs the drain
 * jobs of fetches and the rest of each inspection. Returns NULL with an
 * error when memory is short or a thread cannot start.
 */
struct gate *gate_new(struct event_base *base, const struct config *cfg,
                      struct upstream_client *upstreams,
                      struct blobfetch *fetches, struct workers *workers,
                      struct cache *cache, struct policy *policy,
                      struct pg_error **err);

/*
 * Puts a new policy in force: requests that start from now on use it and
 * its verdict key, while requests and inspections under way finish with
 * the policy they started with. The gate takes a reference to policy.
 * Returns 0, or -1 with err set when the verdict key cannot be computed,
 * in which case the old policy stays.
 */
int gate_set_policy(struct gate *gate, struct policy *policy,
                    struct pg_error **err);

/* Cancels every pending request without calling back; accepts NULL. */
void gate_free(struct gate *gate);

/*
 * Resolves a manifest route. accept is the client's Accept header (NULL:
 * every manifest media type). cb runs exactly once, from the loop, never
 * from inside this call, unless the request is cancelled first. Returns
 * NULL only when memory is short.
 */
struct gate_request *gate_manifest(struct gate *gate, const struct route *route,
                                   const char *accept, gate_manifest_cb cb,
                                   void *arg, struct pg_error **err);

/* Detaches a request whose client went away; its callback will not run. */
void gate_cancel(struct gate_request *request);

/*
 * Checks the policy's source rules for a route. Returns 0 when allowed, -1
 * with a 403 DENIED error naming the rules otherwise.
 */
int gate_check_source(struct gate *gate, const struct route *route,
                      struct pg_error **err);

/*
 * Writes "<upstream>/<repository>", the scope that blob permissions are
 * recorded under, into scope (size bytes).
 */
void gate_scope(const struct config_upstream *upstream,
                const char *repository, char *scope, size_t size);

void gate_result_free(struct gate_result *result);

/*
 * Returns the digest that stored verdicts and blob permissions are kept
 * under: SHA-256 over the policy digest and the inspector version. A new
 * inspector finds what the old one missed, so its verdicts must not be
 * served from records that an older pullgate wrote with the same policy.
 */
const char *gate_verdict_key(const struct gate *gate);

/* Returns the policy in force; owned by the gate. */
const struct policy *gate_policy(const struct gate *gate);

#endif
