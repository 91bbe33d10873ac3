/*
 * Shared between gate.c (manifest requests) and gate_job.c (inspection
 * jobs). Not part of the gate's interface.
 */
#ifndef PG_GATE_INTERNAL_H
#define PG_GATE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "proxy/gate.h"

struct gate_job;
struct allow_job;

/* Manifests remembered with the tag that named them (an index's platform
 * manifests, or a manifest resolved from a tag), so that a request by
 * digest is judged with that tag. The table is GATE_CHILD_TAG_SETS sets of
 * GATE_CHILD_TAG_WAYS entries, and a set replaces its oldest entry. */
#define GATE_CHILD_TAG_WAYS 4
#define GATE_CHILD_TAG_SETS 256
#define GATE_CHILD_TAGS (GATE_CHILD_TAG_WAYS * GATE_CHILD_TAG_SETS)

/* How long a remembered tag holds: clients fetch the platform manifest
 * right after its index, and a tag can move. */
#define GATE_CHILD_TAG_SECONDS 600

struct gate_child_tag {
    char scope[PG_REGISTRY_HOST_MAX + 1 + PG_NAME_MAX + 1];
    char digest[PG_DIGEST_MAX + 1];
    char tag[PG_DIGEST_MAX + 1]; /* sized as the reference it copies */
    time_t at;
};

struct gate {
    struct event_base *base;
    const struct config *cfg;
    struct upstream_client *upstreams;
    struct blobfetch *fetches;
    struct workers *workers; /* drain jobs, config reads, evaluation */
    /* Layer readers, which block while their layer downloads, so they
     * never hold a thread of workers, which runs the drain jobs. */
    struct workers *readers;
    /* The built-in and configured secret rules, compiled once. */
    struct inspector_secrets *secrets;
    /* Keys verdicts and blob permissions: the policy digest and the
     * inspector version together (gate_verdict_key). */
    char verdict_key[PG_DIGEST_MAX + 1];
    struct cache *cache;
    struct policy *policy; /* in force; the gate holds a reference */
    struct gate_child_tag *child_tags; /* GATE_CHILD_TAGS, or NULL */
    struct gate_job *jobs;             /* inspections under way */
    struct gate_request *requests;     /* every live request */
};

struct gate_request {
    struct gate *gate;
    struct gate_request *prev; /* in gate->requests */
    struct gate_request *next;
    struct gate_request *job_prev; /* in job->waiters */
    struct gate_request *job_next;

    const struct config_upstream *upstream;
    char repository[PG_NAME_MAX + 1];
    char reference[PG_DIGEST_MAX + 1];
    bool by_digest;
    char *accept;
    gate_manifest_cb cb;
    void *arg;
    /* The policy in force when the request started, and its verdict key,
     * kept so that a reload in the middle does not mix two policies. */
    struct policy *policy;
    char verdict_key[PG_DIGEST_MAX + 1];

    struct upstream_transfer *transfer; /* manifest fetch under way */
    struct gate_job *job;               /* inspection waited on */
    struct event *timer;                /* verdict wait, then 503 */
    struct event *deliver;              /* calls back from the loop */
    struct gate_result *result;         /* ready to deliver */
    struct allow_job *allow_job;        /* blob permissions being written */

    /* The manifest, once resolved. */
    char digest[PG_DIGEST_MAX + 1];
    char *media_type;
    char *bytes;
    size_t len;
    const char *source; /* "cache", "upstream" or "stale" */
    /* The tag the request is judged by: its own, or for a platform
     * manifest requested by digest, its index's (gate_child_tag). */
    char tag[PG_DIGEST_MAX + 1]; /* sized as the reference it copies */
    uint64_t started_ms;
};

/* The manifest a request resolved to, handed to a job. */
struct gate_manifest {
    const struct config_upstream *upstream;
    const char *repository;
    const char *reference;
    const char *digest;
    const char *media_type;
    const char *bytes;
    size_t len;
    const json_t *manifest; /* parsed bytes */
    bool artifact;
    bool sniff; /* an image-config artifact: check its layers are not tar */
    struct policy *policy; /* the request's, which the job references */
    const char *verdict_key;
    const char *tag; /* the tag the request is judged by, "" for none */
};

/*
 * Attaches request to the inspection job of manifest->digest, starting
 * one when none is under way. The request's result is set when the job
 * ends (gate_request_finish). Returns -1 when the job cannot start.
 */
int gate_job_wait(struct gate *gate, struct gate_request *request,
                  const struct gate_manifest *manifest, struct pg_error **err);

/* Detaches request from its job; the job goes on. */
void gate_job_detach(struct gate_request *request);

/* Frees every job; used by gate_free after the workers have stopped. */
void gate_jobs_free(struct gate *gate);

/*
 * Completes a request with the stored findings of its image, or an error:
 * decides the verdict for this request (scope and exceptions), builds the
 * result from the request's manifest and schedules the callback. Takes
 * err.
 */
void gate_request_finish_verdict(struct gate_request *request,
                                 const json_t *findings, struct pg_error *err);

/* Fills the policy's view of a request for the manifest digest. */
void gate_policy_request(const struct config_upstream *upstream,
                         const char *repository, const char *reference,
                         const char *digest, struct policy_request *out);

/* Builds the 403 DENIED error for a verdict that denies. */
struct pg_error *gate_denied_error(const char *subject, const json_t *verdict);

#endif
