#include "proxy/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config/limits.h"
#include "config/log.h"
#include "config/parse.h"
#include "inspector/inspector.h"
#include "inspector/secrets.h"
#include "proxy/gate_internal.h"
#include "proxy/reference.h"

/* Seconds sent in Retry-After while a verdict is being computed. */
#define GATE_RETRY_AFTER_SECONDS 5

/* Sent when the client gave no Accept header: every manifest media type
 * pullgate can serve, so the upstream never falls back to schema 1. */
static const char default_accept[] =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

/* A manifest on its way to the blob store and the tag table. */
struct manifest_store {
    struct cache *cache;
    char upstream[256];
    char repository[PG_NAME_MAX + 1];
    char tag[PG_DIGEST_MAX + 1]; /* empty when pulled by digest */
    char digest[PG_DIGEST_MAX + 1];
    char *media_type;
    char *bytes;
    size_t len;
};

/*
 * Blob permissions being written for a request whose image was allowed in
 * another repository, or by a job started from another repository.
 */
struct allow_job {
    struct gate_request *request; /* NULL once the client went away */
    struct cache *cache;
    char policy_digest[PG_DIGEST_MAX + 1];
    char manifest_digest[PG_DIGEST_MAX + 1];
    char scope[PG_NAME_MAX + 300];
    /* Layers, the config, and the manifest itself last. */
    char (*digests)[PG_DIGEST_MAX + 1];
    size_t n_digests;
    const char *outcome;
    json_t *verdict;
    struct pg_error *err;
};

static void resolve_manifest(struct gate_request *request);
static void request_succeed(struct gate_request *request, const char *outcome,
                            const json_t *verdict);

/* Writes "ALGORITHM:HEX" of bytes into out (PG_DIGEST_MAX + 1 bytes). */
static int
compute_digest(const char *algorithm, const void *bytes, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const EVP_MD *md = NULL;
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sum_len = 0;
    size_t used;

    if (strcmp(algorithm, "sha256") == 0)
        md = EVP_sha256();
    else if (strcmp(algorithm, "sha512") == 0)
        md = EVP_sha512();
    if (md == NULL || EVP_Digest(bytes, len, sum, &sum_len, md, NULL) != 1)
        return -1;

    used = (size_t)snprintf(out, PG_DIGEST_MAX + 1, "%s:", algorithm);
    for (unsigned int i = 0; i < sum_len && used + 2 < PG_DIGEST_MAX + 1; i++) {
        out[used++] = hex[sum[i] >> 4];
        out[used++] = hex[sum[i] & 0xf];
    }
    out[used] = '\0';
    return 0;
}

/*
 * Picks the manifest's media type: the upstream's Content-Type without
 * parameters, else the manifest's own mediaType field, else what its
 * fields imply. Returns a new string.
 */
static char *
manifest_media_type(const char *content_type, const json_t *manifest)
{
    const char *field =
        json_string_value(json_object_get(manifest, "mediaType"));
    size_t len;

    if (content_type != NULL) {
        len = strcspn(content_type, "; \t");
        if (len > 0 && strncmp(content_type, "application/json", len) != 0 &&
            strncmp(content_type, "text/plain", len) != 0)
            return strndup(content_type, len);
    }
    if (field != NULL && field[0] != '\0')
        return strdup(field);
    if (json_is_array(json_object_get(manifest, "manifests")))
        return strdup("application/vnd.oci.image.index.v1+json");
    return strdup("application/vnd.oci.image.manifest.v1+json");
}

static void
request_free(struct gate_request *request)
{
    if (request == NULL)
        return;
    if (request->transfer != NULL)
        upstream_cancel(request->transfer);
    if (request->job != NULL)
        gate_job_detach(request);
    if (request->allow_job != NULL)
        request->allow_job->request = NULL;
    if (request->timer != NULL)
        event_free(request->timer);
    if (request->deliver != NULL)
        event_free(request->deliver);
    gate_result_free(request->result);
    policy_free(request->policy);
    free(request->accept);
    free(request->media_type);
    free(request->bytes);
    free(request);
}

static void
request_unlink(struct gate_request *request)
{
    struct gate *gate = request->gate;

    if (request->prev != NULL)
        request->prev->next = request->next;
    else
        gate->requests = request->next;
    if (request->next != NULL)
        request->next->prev = request->prev;
}

static void
on_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct gate_request *request = arg;
    struct gate_result *result = request->result;

    request->result = NULL;
    request_unlink(request);
    request->cb(result, request->arg);
    request_free(request);
}

/* Schedules the callback with result; the request ends there. */
static void
request_deliver(struct gate_request *request, struct gate_result *result)
{
    if (request->transfer != NULL) {
        upstream_cancel(request->transfer);
        request->transfer = NULL;
    }
    if (request->job != NULL)
        gate_job_detach(request);
    if (request->timer != NULL)
        event_del(request->timer);
    request->result = result;
    event_active(request->deliver, EV_READ, 0);
}

static struct gate_result *
result_new(struct gate_request *request, const char *outcome)
{
    struct gate_result *result = calloc(1, sizeof(*result));

    if (result == NULL)
        return NULL;
    snprintf(result->digest, sizeof(result->digest), "%s", request->digest);
    result->source = request->source;
    result->outcome = outcome;
    return result;
}

/* Ends a request with an error (taken). */
static void
request_fail(struct gate_request *request, struct pg_error *err)
{
    struct gate_result *result = result_new(request, "error");

    if (result == NULL) {
        /* A result is needed to call back; without memory the client's
         * connection is left to time out, which frees the request. */
        pg_error_free(err);
        return;
    }
    result->err = err;
    request_deliver(request, result);
}

/* Ends a request with the resolved manifest and outcome. */
static void
request_succeed(struct gate_request *request, const char *outcome,
                const json_t *verdict)
{
    struct gate_result *result = result_new(request, outcome);

    if (result == NULL)
        return;
    result->bytes = request->bytes;
    result->len = request->len;
    result->media_type = request->media_type;
    request->bytes = NULL;
    request->media_type = NULL;
    if (verdict != NULL)
        result->verdict = json_deep_copy(verdict);
    request_deliver(request, result);
}

struct pg_error *
gate_denied_error(const char *subject, const json_t *verdict)
{
    struct pg_error *err = NULL;
    char rules[PG_ERROR_MESSAGE_MAX] = "";
    size_t used = 0, i;
    json_t *entry;

    json_array_foreach(json_object_get(verdict, "denied"), i, entry)
    {
        int n = snprintf(rules + used, sizeof(rules) - used, "%s%s: %s",
                         i > 0 ? "; " : "",
                         json_string_value(json_object_get(entry, "rule")),
                         json_string_value(json_object_get(entry, "message")));
        if (n < 0 || (size_t)n >= sizeof(rules) - used)
            break;
        used += (size_t)n;
    }
    pg_error_set(&err, 403, PG_ERR_DENIED, "%s is denied by policy: %s",
                 subject, rules);
    return err;
}

void
gate_scope(const struct config_upstream *upstream, const char *repository,
           char *scope, size_t size)
{
    snprintf(scope, size, "%s/%s", upstream->name, repository);
}

static void
allow_job_free(struct allow_job *job)
{
    json_decref(job->verdict);
    pg_error_free(job->err);
    free(job->digests);
    free(job);
}

/* Writes the blob permissions, the manifest's last. Worker thread. */
static void
allow_job_run(void *arg)
{
    struct allow_job *job = arg;

    for (size_t i = 0; i < job->n_digests; i++) {
        if (cache_blob_allow(job->cache, job->digests[i], job->policy_digest,
                             job->scope, job->manifest_digest, &job->err) < 0)
            return;
    }
}

static void
allow_job_done(void *arg)
{
    struct allow_job *job = arg;
    struct gate_request *request = job->request;

    if (request != NULL) {
        request->allow_job = NULL;
        if (job->err != NULL) {
            request_fail(request, job->err);
            job->err = NULL;
        } else {
            request_succeed(request, job->outcome, job->verdict);
        }
    }
    allow_job_free(job);
}

/*
 * Collects the blob digests of the request's manifest: its layers, its
 * config, then the manifest's own digest. Returns the count.
 */
static size_t
collect_blob_digests(const struct gate_request *request,
                     char (**digests)[PG_DIGEST_MAX + 1])
{
    json_t *manifest = json_loadb(request->bytes, request->len, 0, NULL);
    json_t *layers = json_object_get(manifest, "layers"), *layer;
    const char *config = json_string_value(
        json_object_get(json_object_get(manifest, "config"), "digest"));
    size_t n = 0, i;

    *digests = calloc(json_array_size(layers) + 2, sizeof(**digests));
    if (*digests != NULL) {
        json_array_foreach(layers, i, layer)
        {
            const char *digest =
                json_string_value(json_object_get(layer, "digest"));

            if (digest != NULL && reference_digest_valid(digest))
                snprintf((*digests)[n++], PG_DIGEST_MAX + 1, "%s", digest);
        }
        if (config != NULL && reference_digest_valid(config))
            snprintf((*digests)[n++], PG_DIGEST_MAX + 1, "%s", config);
        snprintf((*digests)[n++], PG_DIGEST_MAX + 1, "%s", request->digest);
    }
    json_decref(manifest);
    return n;
}

/*
 * Serves an allowed manifest once its blobs may be served from the
 * request's repository. Blob permissions are scoped by repository, so an
 * image allowed through one repository gets them written for another the
 * first time it is pulled from there. The manifest's own record is
 * written last, so one look-up of it, without parsing the manifest, shows
 * that all are there.
 */
static void
request_allow_blobs(struct gate_request *request, const char *outcome,
                    const json_t *verdict)
{
    struct gate *gate = request->gate;
    struct pg_error *err = NULL;
    struct allow_job *job = calloc(1, sizeof(*job));
    int found;

    if (job == NULL)
        goto nomem;
    gate_scope(request->upstream, request->repository, job->scope,
               sizeof(job->scope));
    snprintf(job->policy_digest, sizeof(job->policy_digest), "%s",
             request->verdict_key);

    found = cache_blob_allowed(gate->cache, request->digest, job->policy_digest,
                               job->scope, &err);
    if (found != 0) {
        allow_job_free(job);
        if (found < 0)
            request_fail(request, err);
        else
            request_succeed(request, outcome, verdict);
        return;
    }

    job->n_digests = collect_blob_digests(request, &job->digests);
    if (job->digests == NULL)
        goto nomem;
    job->request = request;
    job->cache = gate->cache;
    job->outcome = outcome;
    job->verdict = json_deep_copy(verdict);
    snprintf(job->manifest_digest, sizeof(job->manifest_digest), "%s",
             request->digest);
    if (workers_submit(gate->workers, allow_job_run, allow_job_done, job,
                       &err) < 0) {
        allow_job_free(job);
        request_fail(request, err);
        return;
    }
    request->allow_job = job;
    return;

nomem:
    if (job != NULL)
        allow_job_free(job);
    pg_error_set(&err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while allowing the blobs of image %s",
                 request->digest);
    request_fail(request, err);
}

/* Returns the first entry of the set that (scope, digest) belongs to in
 * the table of remembered tags. */
static struct gate_child_tag *
child_tag_set(struct gate *gate, const char *scope, const char *digest)
{
    uint64_t hash = 1469598103934665603u;

    for (const char *p = scope; *p != '\0'; p++)
        hash = (hash ^ (unsigned char)*p) * 1099511628211u;
    for (const char *p = digest; *p != '\0'; p++)
        hash = (hash ^ (unsigned char)*p) * 1099511628211u;
    return &gate->child_tags[(hash % GATE_CHILD_TAG_SETS) *
                             GATE_CHILD_TAG_WAYS];
}

/* Remembers that digest, in scope, was reached through tag. */
static void
remember_tag(struct gate *gate, const char *scope, const char *digest,
             const char *tag)
{
    struct gate_child_tag *set = child_tag_set(gate, scope, digest);
    struct gate_child_tag *slot = &set[0];

    /* The entry for the same manifest, else the oldest of the set. */
    for (size_t i = 0; i < GATE_CHILD_TAG_WAYS; i++) {
        if (strcmp(set[i].scope, scope) == 0 &&
            strcmp(set[i].digest, digest) == 0) {
            slot = &set[i];
            break;
        }
        if (set[i].at < slot->at)
            slot = &set[i];
    }
    snprintf(slot->scope, sizeof(slot->scope), "%s", scope);
    snprintf(slot->digest, sizeof(slot->digest), "%s", digest);
    snprintf(slot->tag, sizeof(slot->tag), "%s", tag);
    slot->at = time(NULL);
}

/*
 * Remembers the tag a request by tag resolved to its manifest, and for an
 * index, to each of its platform manifests. Runtimes request an index by
 * tag and the platform manifest by digest, and containerd resolves a tag
 * with HEAD and then gets the manifest by digest. A rule scoped to tags,
 * or an exception naming a tag, must apply to the image they run. The
 * table has GATE_CHILD_TAGS entries for GATE_CHILD_TAG_SECONDS, and
 * entries are per repository, not per client, so the last tag that
 * reached a manifest is the one remembered.
 */
static void
remember_tags(struct gate_request *request, const json_t *index)
{
    struct gate *gate = request->gate;
    char scope[sizeof(gate->child_tags[0].scope)];
    const json_t *child;
    size_t i;

    if (request->by_digest)
        return;
    if (gate->child_tags == NULL)
        gate->child_tags = calloc(GATE_CHILD_TAGS, sizeof(*gate->child_tags));
    if (gate->child_tags == NULL)
        return;
    gate_scope(request->upstream, request->repository, scope, sizeof(scope));
    remember_tag(gate, scope, request->digest, request->reference);
    json_array_foreach(json_object_get(index, "manifests"), i, child)
    {
        const char *digest =
            json_string_value(json_object_get(child, "digest"));

        if (digest != NULL && reference_digest_valid(digest))
            remember_tag(gate, scope, digest, request->reference);
    }
}

/* Sets request->tag: the request's own tag, or the remembered tag that
 * reached the manifest it requests by digest. */
static void
resolve_tag(struct gate_request *request)
{
    struct gate *gate = request->gate;
    const struct gate_child_tag *set;
    char scope[sizeof(gate->child_tags[0].scope)];

    request->tag[0] = '\0';
    if (!request->by_digest) {
        snprintf(request->tag, sizeof(request->tag), "%s", request->reference);
        return;
    }
    if (gate->child_tags == NULL)
        return;
    gate_scope(request->upstream, request->repository, scope, sizeof(scope));
    set = child_tag_set(gate, scope, request->digest);
    for (size_t i = 0; i < GATE_CHILD_TAG_WAYS; i++) {
        if (strcmp(set[i].scope, scope) == 0 &&
            strcmp(set[i].digest, request->digest) == 0 &&
            time(NULL) - set[i].at < GATE_CHILD_TAG_SECONDS) {
            snprintf(request->tag, sizeof(request->tag), "%s", set[i].tag);
            return;
        }
    }
}

void
gate_policy_request(const struct config_upstream *upstream,
                    const char *repository, const char *reference,
                    const char *digest, struct policy_request *out)
{
    out->registry = upstream->name;
    out->repository = repository;
    out->tag = reference_digest_valid(reference) ? NULL : reference;
    out->digest = digest;
}

/* Serves an index: its source rules are checked again with its digest,
 * and their warnings go to the client. */
static void
request_succeed_index(struct gate_request *request)
{
    struct policy_request subject;
    struct pg_error *err = NULL;
    char text[PG_DIGEST_MAX + 16];
    const char *decision;
    json_t *verdict;

    gate_policy_request(request->upstream, request->repository,
                        request->reference, request->digest, &subject);
    subject.tag = request->tag[0] != '\0' ? request->tag : NULL;
    verdict = policy_check_source(request->policy, &subject, time(NULL));
    if (verdict == NULL) {
        pg_error_set(&err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while checking the policy for index %s",
                     request->digest);
        request_fail(request, err);
        return;
    }
    decision = json_string_value(json_object_get(verdict, "decision"));
    if (decision != NULL && strcmp(decision, "deny") == 0) {
        snprintf(text, sizeof(text), "index %s", request->digest);
        request_fail(request, gate_denied_error(text, verdict));
    } else {
        request_succeed(request, "index", verdict);
    }
    json_decref(verdict);
}

void
gate_request_finish_verdict(struct gate_request *request,
                            const json_t *findings, struct pg_error *err)
{
    struct policy_request subject_request;
    const char *decision, *kind;
    char subject[PG_DIGEST_MAX + 16];
    struct gate_result *result;
    json_t *verdict;

    if (err != NULL) {
        request_fail(request, err);
        return;
    }
    /* Scope and exceptions depend on the request and the time, so the
     * stored findings become a verdict anew for each request. */
    gate_policy_request(request->upstream, request->repository,
                        request->reference, request->digest, &subject_request);
    subject_request.tag = request->tag[0] != '\0' ? request->tag : NULL;
    verdict =
        policy_verdict(request->policy, findings, &subject_request, time(NULL));
    if (verdict == NULL) {
        pg_error_set(&err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while deciding the verdict for image %s",
                     request->digest);
        request_fail(request, err);
        return;
    }
    decision = json_string_value(json_object_get(verdict, "decision"));
    kind = json_string_value(json_object_get(verdict, "kind"));
    if (decision != NULL && strcmp(decision, "allow") == 0) {
        request_allow_blobs(request,
                            kind != NULL && strcmp(kind, "artifact") == 0
                                ? "artifact"
                                : "allow",
                            verdict);
        json_decref(verdict);
        return;
    }

    result = result_new(request, "deny");
    if (result != NULL) {
        snprintf(subject, sizeof(subject), "image %s", request->digest);
        result->err = gate_denied_error(subject, verdict);
        result->verdict = json_incref(verdict);
        request_deliver(request, result);
    }
    json_decref(verdict);
}

static void
on_verdict_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gate_request *request = arg;
    struct pg_error *err = NULL;

    pg_error_set(&err, 503, PG_ERR_UNAVAILABLE,
                 "the verdict for image %s is still being computed; retry in "
                 "%d seconds",
                 request->digest, GATE_RETRY_AFTER_SECONDS);
    err->retry_after = GATE_RETRY_AFTER_SECONDS;
    request_fail(request, err);
}

/* Stores the manifest and, for a tag, the tag record. Worker thread. */
static void
store_run(void *arg)
{
    struct manifest_store *store = arg;
    struct pg_error *err = NULL;

    if (cache_manifest_put(store->cache, store->digest, store->media_type,
                           store->bytes, store->len, &err) == 0 &&
        store->tag[0] != '\0') {
        cache_tag_put(store->cache, store->upstream, store->repository,
                      store->tag, store->digest, store->media_type, &err);
    }
    if (err != NULL) {
        char repo[320];

        pg_log(PG_LOG_ERROR, "manifest_store_failed",
               "upstream=%s repo=%s digest=%s error=%s", store->upstream,
               pg_log_quote(repo, sizeof(repo), store->repository),
               store->digest, err->message);
        pg_error_free(err);
    }
}

static void
store_done(void *arg)
{
    struct manifest_store *store = arg;

    free(store->media_type);
    free(store->bytes);
    free(store);
}

/* Queues the manifest for the cache; failures are logged, not fatal. */
static void
store_manifest(struct gate_request *request)
{
    struct manifest_store *store = calloc(1, sizeof(*store));
    struct pg_error *err = NULL;

    if (store == NULL)
        return;
    store->cache = request->gate->cache;
    snprintf(store->upstream, sizeof(store->upstream), "%s",
             request->upstream->name);
    snprintf(store->repository, sizeof(store->repository), "%s",
             request->repository);
    if (!request->by_digest)
        snprintf(store->tag, sizeof(store->tag), "%s", request->reference);
    snprintf(store->digest, sizeof(store->digest), "%s", request->digest);
    store->media_type = strdup(request->media_type);
    store->bytes = malloc(request->len > 0 ? request->len : 1);
    if (store->media_type == NULL || store->bytes == NULL) {
        store_done(store);
        return;
    }
    memcpy(store->bytes, request->bytes, request->len);
    store->len = request->len;
    if (workers_submit(request->gate->workers, store_run, store_done, store,
                       &err) < 0) {
        pg_error_free(err);
        store_done(store);
    }
}

/* Fails the request unless the manifest bytes hash to want. */
static int
verify_digest(struct gate_request *request, const char *want,
              struct pg_error **err)
{
    char algorithm[8];
    char got[PG_DIGEST_MAX + 1];
    size_t alen = strcspn(want, ":");

    if (alen >= sizeof(algorithm))
        alen = sizeof(algorithm) - 1;
    memcpy(algorithm, want, alen);
    algorithm[alen] = '\0';

    if (compute_digest(algorithm, request->bytes, request->len, got) < 0 ||
        strcmp(got, want) != 0) {
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent a manifest for %s:%s whose bytes hash "
                     "to %s, not %s; nothing was cached",
                     request->upstream->name, request->repository,
                     request->reference, got, want);
        return -1;
    }
    return 0;
}

/*
 * Sets request->digest from the bytes and checks it against the
 * reference (by digest) or the Docker-Content-Digest header (by tag).
 */
static int
verify_manifest(struct gate_request *request, const char *header_digest,
                struct pg_error **err)
{
    if (request->by_digest) {
        snprintf(request->digest, sizeof(request->digest), "%s",
                 request->reference);
        return verify_digest(request, request->reference, err);
    }

    if (compute_digest("sha256", request->bytes, request->len,
                       request->digest) < 0) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "cannot compute the digest of a manifest of %s",
                     request->repository);
        return -1;
    }
    if (header_digest != NULL && reference_digest_valid(header_digest))
        return verify_digest(request, header_digest, err);
    return 0;
}

/* Classifies the resolved manifest and takes the path its kind needs. */
static void
process_manifest(struct gate_request *request, const char *content_type)
{
    struct gate *gate = request->gate;
    struct pg_error *err = NULL;
    json_error_t jerr;
    json_t *manifest = NULL, *verdict = NULL;
    enum inspector_manifest_kind kind;
    int found;

    if (!pg_json_depth_within(request->bytes, request->len,
                              PG_JSON_MAX_DEPTH)) {
        pg_error_set(&err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent a manifest for %s:%s nested deeper "
                     "than %d levels; it was not served",
                     request->upstream->name, request->repository,
                     request->reference, PG_JSON_MAX_DEPTH);
        goto fail;
    }
    manifest =
        json_loadb(request->bytes, request->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(manifest)) {
        pg_error_set(&err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent a manifest for %s:%s that is not a "
                     "JSON object (line %d: %s); it was not served",
                     request->upstream->name, request->repository,
                     request->reference, jerr.line, jerr.text);
        goto fail;
    }

    if (request->media_type == NULL)
        request->media_type = manifest_media_type(content_type, manifest);
    if (request->media_type == NULL) {
        pg_error_set(&err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        goto fail;
    }
    if (strcmp(request->source, "cache") != 0)
        store_manifest(request);

    kind = inspector_classify(manifest, request->media_type);
    resolve_tag(request);
    remember_tags(request, kind == INSPECTOR_KIND_INDEX ? manifest : NULL);
    if (kind == INSPECTOR_KIND_INDEX) {
        request_succeed_index(request);
        goto out;
    }
    if (kind == INSPECTOR_KIND_UNSUPPORTED) {
        pg_error_set(&err, 403, PG_ERR_DENIED,
                     "manifest %s has media type %s, which pullgate cannot "
                     "inspect, so it is not served",
                     request->digest, request->media_type);
        goto fail;
    }

    found = cache_verdict_get(gate->cache, request->digest,
                              request->verdict_key, &verdict, &err);
    if (found < 0)
        goto fail;
    if (found == 1) {
        gate_request_finish_verdict(request, verdict, NULL);
        goto out;
    }

    struct gate_manifest info = {
        .upstream = request->upstream,
        .repository = request->repository,
        .reference = request->reference,
        .digest = request->digest,
        .media_type = request->media_type,
        .bytes = request->bytes,
        .len = request->len,
        .manifest = manifest,
        .artifact = kind == INSPECTOR_KIND_ARTIFACT ||
                    kind == INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT,
        .sniff = kind == INSPECTOR_KIND_IMAGE_CONFIG_ARTIFACT,
        .policy = request->policy,
        .verdict_key = request->verdict_key,
        .tag = request->tag,
    };
    if (gate_job_wait(gate, request, &info, &err) < 0)
        goto fail;
    if (gate->cfg->verdict_wait_seconds == 0) {
        on_verdict_timeout(-1, 0, request);
    } else {
        struct timeval wait = {.tv_sec = gate->cfg->verdict_wait_seconds};

        evtimer_add(request->timer, &wait);
    }
    goto out;

fail:
    request_fail(request, err);
out:
    json_decref(verdict);
    json_decref(manifest);
}

/*
 * Serves a tag from its cached record when the upstream cannot be asked.
 * Returns 0 when the request went on with the cached manifest.
 */
static int
resolve_stale_tag(struct gate_request *request)
{
    struct cache_tag_record record;
    struct pg_error *err = NULL;
    char *bytes = NULL, *media_type = NULL;
    size_t len = 0;

    if (request->by_digest ||
        cache_tag_get(request->gate->cache, request->upstream->name,
                      request->repository, request->reference, &record,
                      &err) != 1 ||
        cache_manifest_get(request->gate->cache, record.digest, &bytes, &len,
                           &media_type, &err) != 1) {
        pg_error_free(err);
        return -1;
    }

    snprintf(request->digest, sizeof(request->digest), "%s", record.digest);
    request->bytes = bytes;
    request->len = len;
    request->media_type = media_type[0] != '\0' ? media_type : NULL;
    if (request->media_type == NULL)
        free(media_type);
    request->source = "stale";
    pg_log(PG_LOG_WARN, "tag_served_from_cache",
           "upstream=%s repo=%s tag=%s digest=%s", request->upstream->name,
           request->repository, request->reference, record.digest);
    process_manifest(request, NULL);
    return 0;
}

/* Maps a non-200 upstream status for a manifest to the client's error. */
static struct pg_error *
manifest_status_error(struct gate_request *request, int status)
{
    struct pg_error *err = NULL;
    const char *name = request->upstream->name;

    if (status == 404) {
        pg_error_set(&err, 404, PG_ERR_MANIFEST_UNKNOWN,
                     "manifest %s not found in upstream %s repository %s",
                     request->reference, name, request->repository);
    } else if (status == 401 || status == 403) {
        pg_error_set(&err, 404, PG_ERR_NAME_UNKNOWN,
                     "repository %s not found in upstream %s, or pullgate's "
                     "credentials for it do not allow pulls (upstream status "
                     "%d)",
                     request->repository, name, status);
    } else if (status == 429) {
        pg_error_set(&err, 429, PG_ERR_TOOMANYREQUESTS,
                     "upstream %s is limiting the rate of pulls; retry later",
                     name);
    } else {
        pg_error_set(&err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s returned status %d for manifest %s:%s", name,
                     status, request->repository, request->reference);
    }
    return err;
}

static void
on_manifest_fetched(struct upstream_transfer *transfer, int status,
                    struct evbuffer *body, struct pg_error *err, void *arg)
{
    struct gate_request *request = arg;
    size_t len;

    request->transfer = NULL;
    if (err == NULL && status != 200)
        err = manifest_status_error(request, status);
    if (err != NULL) {
        bool upstream_fault = err->status >= 500 || err->status == 429;

        if (upstream_fault && resolve_stale_tag(request) == 0) {
            pg_error_free(err);
            return;
        }
        request_fail(request, err);
        return;
    }

    len = evbuffer_get_length(body);
    request->bytes = malloc(len > 0 ? len : 1);
    if (request->bytes == NULL) {
        pg_error_set(&err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        request_fail(request, err);
        return;
    }
    evbuffer_remove(body, request->bytes, len);
    request->len = len;
    request->source = "upstream";

    if (verify_manifest(request,
                        upstream_header(transfer, "Docker-Content-Digest"),
                        &err) < 0) {
        request_fail(request, err);
        return;
    }
    process_manifest(request, upstream_header(transfer, "Content-Type"));
}

static void
fetch_manifest(struct gate_request *request)
{
    struct pg_error *err = NULL;
    char path[PG_NAME_MAX + PG_DIGEST_MAX + 32];
    struct upstream_request req = {
        .upstream = request->upstream,
        .method = "GET",
        .path = path,
        .accept = request->accept != NULL ? request->accept : default_accept,
        .repository = request->repository,
    };

    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", request->repository,
             request->reference);
    request->transfer =
        upstream_fetch(request->gate->upstreams, &req, PG_MANIFEST_MAX_BYTES,
                       on_manifest_fetched, request, &err);
    if (request->transfer == NULL) {
        if (resolve_stale_tag(request) == 0) {
            pg_error_free(err);
            return;
        }
        request_fail(request, err);
    }
}

/* Serves a digest reference from the cache when the manifest is there. */
static void
resolve_manifest(struct gate_request *request)
{
    struct pg_error *err = NULL;
    char *media_type = NULL;
    int found;

    if (!request->by_digest) {
        fetch_manifest(request);
        return;
    }

    found =
        cache_manifest_get(request->gate->cache, request->reference,
                           &request->bytes, &request->len, &media_type, &err);
    if (found < 0) {
        request_fail(request, err);
        return;
    }
    if (found == 0) {
        fetch_manifest(request);
        return;
    }
    snprintf(request->digest, sizeof(request->digest), "%s",
             request->reference);
    if (media_type != NULL && media_type[0] != '\0')
        request->media_type = media_type;
    else
        free(media_type);
    request->source = "cache";
    process_manifest(request, NULL);
}

static void
on_start(evutil_socket_t fd, short what, void *arg)
{
    struct gate_request *request = arg;

    event_assign(request->deliver, request->gate->base, -1, 0, on_deliver,
                 request);
    resolve_manifest(request);
}

struct gate_request *
gate_manifest(struct gate *gate, const struct route *route, const char *accept,
              gate_manifest_cb cb, void *arg, struct pg_error **err)
{
    struct gate_request *request = calloc(1, sizeof(*request));

    if (request == NULL)
        goto nomem;
    request->gate = gate;
    request->policy = policy_ref(gate->policy);
    snprintf(request->verdict_key, sizeof(request->verdict_key), "%s",
             gate->verdict_key);
    request->upstream = route->upstream;
    snprintf(request->repository, sizeof(request->repository), "%s",
             route->repository);
    snprintf(request->reference, sizeof(request->reference), "%s",
             route->reference);
    request->by_digest = route->reference_is_digest;
    request->cb = cb;
    request->arg = arg;
    request->source = "upstream";
    request->started_ms = pg_monotonic_ms();
    if (accept != NULL && accept[0] != '\0')
        request->accept = strdup(accept);
    request->timer = evtimer_new(gate->base, on_verdict_timeout, request);
    request->deliver = event_new(gate->base, -1, 0, on_deliver, request);
    if (request->timer == NULL || request->deliver == NULL ||
        (accept != NULL && accept[0] != '\0' && request->accept == NULL)) {
        request_free(request);
        goto nomem;
    }

    request->next = gate->requests;
    if (gate->requests != NULL)
        gate->requests->prev = request;
    gate->requests = request;

    /* Start from the loop so the callback never runs inside this call.
     * The deliver event first runs on_start, which points it back at
     * on_deliver before anything can complete the request. */
    event_assign(request->deliver, gate->base, -1, 0, on_start, request);
    event_active(request->deliver, EV_READ, 0);
    return request;

nomem:
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while starting a manifest request");
    return NULL;
}

void
gate_cancel(struct gate_request *request)
{
    if (request == NULL)
        return;
    request_unlink(request);
    request_free(request);
}

int
gate_check_source(struct gate *gate, const struct route *route,
                  struct pg_error **err)
{
    struct policy_request request;
    json_t *verdict;
    const char *decision;
    char subject[PG_NAME_MAX + 300];

    /* Only a manifest route names an image: a blob's or a referrers
     * route's digest is not a manifest digest, and those routes have no
     * tag, so their rules see the repository alone. */
    if (route->kind == ROUTE_MANIFEST) {
        gate_policy_request(
            route->upstream, route->repository, route->reference,
            route->reference_is_digest ? route->reference : NULL, &request);
    } else {
        request = (struct policy_request){
            .registry = route->upstream->name,
            .repository = route->repository,
        };
    }
    verdict = policy_check_source(gate->policy, &request, time(NULL));
    if (verdict == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while checking the policy");
        return -1;
    }
    decision = json_string_value(json_object_get(verdict, "decision"));
    if (decision != NULL && strcmp(decision, "deny") == 0) {
        snprintf(subject, sizeof(subject), "repository %s/%s",
                 route->upstream->name, route->repository);
        *err = gate_denied_error(subject, verdict);
        json_decref(verdict);
        return -1;
    }
    json_decref(verdict);
    return 0;
}

/* Returns inspector.threads, or two per online CPU when it is 0, because
 * readers spend part of their time waiting for the download. */
static unsigned
reader_thread_count(const struct config *cfg)
{
    long cpus;

    if (cfg->inspector.threads > 0)
        return cfg->inspector.threads;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    /* workers_new caps the count at its own maximum. */
    return cpus > 1024 ? 2048 : (unsigned)cpus * 2;
}

/* Stores in key the verdict key of a policy: SHA-256 of its digest and the
 * inspector version. Returns 0, or -1 when OpenSSL fails. */
static int
verdict_key_of(const struct policy *policy, char key[PG_DIGEST_MAX + 1],
               struct pg_error **err)
{
    char text[PG_DIGEST_MAX + 64];
    int len = snprintf(text, sizeof(text), "%s inspector %s",
                       policy_digest(policy), INSPECTOR_VERSION);

    if (len < 0 || (size_t)len >= sizeof(text) ||
        compute_digest("sha256", text, (size_t)len, key) < 0) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "cannot compute the verdict key with OpenSSL");
        return -1;
    }
    return 0;
}

const char *
gate_verdict_key(const struct gate *gate)
{
    return gate->verdict_key;
}

const struct policy *
gate_policy(const struct gate *gate)
{
    return gate->policy;
}

int
gate_set_policy(struct gate *gate, struct policy *policy, struct pg_error **err)
{
    char key[PG_DIGEST_MAX + 1];

    if (verdict_key_of(policy, key, err) < 0)
        return -1;
    policy_free(gate->policy);
    gate->policy = policy_ref(policy);
    memcpy(gate->verdict_key, key, sizeof(key));
    return 0;
}

struct gate *
gate_new(struct event_base *base, const struct config *cfg,
         struct upstream_client *upstreams, struct blobfetch *fetches,
         struct workers *workers, struct cache *cache, struct policy *policy,
         struct pg_error **err)
{
    struct gate *gate = calloc(1, sizeof(*gate));

    if (gate == NULL) {
        pg_error_set(err, 503, PG_ERR_INTERNAL,
                     "out of memory while creating the gate");
        return NULL;
    }
    gate->base = base;
    gate->cfg = cfg;
    gate->upstreams = upstreams;
    gate->fetches = fetches;
    gate->workers = workers;
    gate->cache = cache;
    if (verdict_key_of(policy, gate->verdict_key, err) < 0) {
        free(gate);
        return NULL;
    }
    gate->policy = policy_ref(policy);
    gate->secrets = inspector_secrets_new(cfg->inspector.secret_rules,
                                          cfg->inspector.n_secret_rules, err);
    if (gate->secrets == NULL) {
        pg_error_prefix(err, "%s: inspector.secret_rules", cfg->source);
        policy_free(gate->policy);
        free(gate);
        return NULL;
    }
    gate->readers = workers_new(base, reader_thread_count(cfg), err);
    if (gate->readers == NULL) {
        pg_error_prefix(err, "starting the layer readers");
        inspector_secrets_free(gate->secrets);
        policy_free(gate->policy);
        free(gate);
        return NULL;
    }
    return gate;
}

void
gate_free(struct gate *gate)
{
    if (gate == NULL)
        return;
    while (gate->requests != NULL) {
        struct gate_request *request = gate->requests;

        request_unlink(request);
        request_free(request);
    }
    /* Freeing the jobs aborts their readers, so the reader threads can be
     * joined; the done functions then free the detached reads. */
    gate_jobs_free(gate);
    workers_free(gate->readers);
    inspector_secrets_free(gate->secrets);
    policy_free(gate->policy);
    free(gate->child_tags);
    free(gate);
}

void
gate_result_free(struct gate_result *result)
{
    if (result == NULL)
        return;
    pg_error_free(result->err);
    free(result->media_type);
    free(result->bytes);
    json_decref(result->verdict);
    free(result);
}
