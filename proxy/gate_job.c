/*
 * Inspection jobs: everything between "this image has no verdict" and "the
 * verdict is stored". One job per manifest digest; requests for the same
 * image wait on the same job.
 *
 * The loop thread fetches the config blob and every layer into the blob
 * store through blobfetch. Each layer is read on the gate's reader pool
 * from the bytes being downloaded, while the download goes on. The config
 * blob is read once it is in the store. When every blob is verified and
 * read, a worker builds the image document, evaluates the policy and
 * stores the document, the verdict and the blob permissions. The loop then
 * completes every waiting request.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/limits.h"
#include "config/log.h"
#include "inspector/inspector.h"
#include "proxy/gate_internal.h"
#include "proxy/reference.h"

/*
 * One layer being read on the reader pool. The job may be freed while the
 * read runs (at shutdown): it then sets slot to NULL and aborts the
 * reader, and the done function frees the read alone. The worker thread
 * touches only the fields below slot.
 */
struct layer_read {
    struct slot *slot; /* loop thread only */
    struct blobfetch_reader *reader;
    char digest[PG_DIGEST_MAX + 1];
    char *media_type;
    int64_t size;
    struct inspector_options options;
    json_t *listing;
    struct pg_error *error;
    uint64_t started_ms;
    uint64_t elapsed_ms;
};

/* One blob of the image: each layer, then the config blob last. */
struct slot {
    struct gate_job *job;
    size_t index;
    char digest[PG_DIGEST_MAX + 1];
    char *media_type;
    int64_t size;
    struct blobfetch_waiter *waiter; /* while the fetch is under way */
    struct layer_read *read;         /* while a layer is being read */
    json_t *listing;                 /* a layer's inspector_scan_layer */
    struct pg_error *error;          /* why reading the blob failed */
};

struct gate_job {
    struct gate *gate;
    struct gate_job *prev;
    struct gate_job *next;
    struct gate_request *waiters;

    const struct config_upstream *upstream;
    char repository[PG_NAME_MAX + 1];
    char tag[PG_DIGEST_MAX + 1]; /* the tag its request is judged by, or "" */
    char digest[PG_DIGEST_MAX + 1];
    struct policy *policy; /* the policy of the request that started it */
    char verdict_key[PG_DIGEST_MAX + 1];
    json_t *manifest;
    json_t *reference; /* {"registry", "repository", "reference"} */
    bool artifact;
    bool sniff;    /* fetch the layers to show they are not tar archives */
    char *invalid; /* why the manifest itself cannot be inspected */

    struct slot *slots; /* n_layers + 1, the config blob last */
    size_t n_layers;
    size_t fetches_pending;
    size_t reads_pending;
    struct pg_error *fetch_err; /* a blob could not be fetched: no verdict */

    char *config_bytes;
    size_t config_len;
    bool evaluating;
    json_t *verdict;         /* the findings, which are stored */
    json_t *decision;        /* the verdict for the job's own request, logged */
    json_t *stored_document; /* from an earlier inspection, if any */
    struct pg_error *store_err;
    uint64_t started_ms;
};

static void job_progress(struct gate_job *job);

static void
layer_read_free(struct layer_read *read)
{
    if (read == NULL)
        return;
    blobfetch_reader_free(read->reader);
    free(read->media_type);
    json_decref(read->listing);
    pg_error_free(read->error);
    free(read);
}

static void
job_free(struct gate_job *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; job->slots != NULL && i <= job->n_layers; i++) {
        struct layer_read *read = job->slots[i].read;

        if (read != NULL) {
            read->slot = NULL;
            blobfetch_reader_abort(read->reader);
        }
        blobfetch_cancel(job->slots[i].waiter);
        free(job->slots[i].media_type);
        json_decref(job->slots[i].listing);
        pg_error_free(job->slots[i].error);
    }
    free(job->slots);
    free(job->invalid);
    free(job->config_bytes);
    json_decref(job->manifest);
    json_decref(job->reference);
    json_decref(job->verdict);
    json_decref(job->decision);
    policy_free(job->policy);
    json_decref(job->stored_document);
    pg_error_free(job->fetch_err);
    pg_error_free(job->store_err);
    free(job);
}

static void
job_unlink(struct gate_job *job)
{
    struct gate *gate = job->gate;

    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        gate->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
}

/* Completes every waiting request and frees the job; loop thread. */
static void
job_finish(struct gate_job *job)
{
    struct pg_error *err = job->fetch_err ? job->fetch_err : job->store_err;

    job_unlink(job);
    while (job->waiters != NULL) {
        struct gate_request *request = job->waiters;

        gate_job_detach(request);
        gate_request_finish_verdict(request, job->verdict,
                                    err != NULL ? pg_error_copy(err) : NULL);
    }
    job_free(job);
}

/* Records why the manifest cannot be inspected (first reason wins). */
static void job_invalid(struct gate_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
job_invalid(struct gate_job *job, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    if (job->invalid != NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    job->invalid = strdup(text);
}

/* Copies one descriptor into a slot, or marks the manifest invalid. */
static void
slot_init(struct gate_job *job, struct slot *slot, const json_t *descriptor,
          const char *field, size_t index)
{
    const char *digest =
        json_string_value(json_object_get(descriptor, "digest"));
    const char *media_type =
        json_string_value(json_object_get(descriptor, "mediaType"));
    json_t *size = json_object_get(descriptor, "size");

    slot->job = job;
    slot->index = index;
    slot->size = -1;
    if (!json_is_object(descriptor)) {
        job_invalid(job, "manifest %s[%zu] is not a descriptor object", field,
                    index);
        return;
    }
    if (digest == NULL || !reference_digest_valid(digest)) {
        job_invalid(job,
                    "manifest %s[%zu].digest is missing or is not a sha256 "
                    "or sha512 digest",
                    field, index);
        return;
    }
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
        job_invalid(job,
                    "manifest %s[%zu].size is missing or is not a "
                    "non-negative integer",
                    field, index);
        return;
    }
    snprintf(slot->digest, sizeof(slot->digest), "%s", digest);
    slot->size = json_integer_value(size);
    slot->media_type = strdup(media_type != NULL ? media_type : "");
}

/* Validates the manifest's descriptors into slots. */
static int
job_prepare(struct gate_job *job)
{
    json_t *layers = json_object_get(job->manifest, "layers");
    json_t *config = json_object_get(job->manifest, "config");
    json_t *layer;
    size_t i;

    if (!json_is_array(layers)) {
        job_invalid(job, "manifest %s has no layers array", job->digest);
        return 0;
    }
    job->n_layers = json_array_size(layers);
    if (job->n_layers > PG_LAYERS_MAX) {
        job_invalid(job,
                    "manifest %s has %zu layers, more than the %d "
                    "pullgate inspects",
                    job->digest, job->n_layers, PG_LAYERS_MAX);
        job->n_layers = 0;
        return 0;
    }
    job->slots = calloc(job->n_layers + 1, sizeof(*job->slots));
    if (job->slots == NULL)
        return -1;
    json_array_foreach(layers, i, layer)
    {
        slot_init(job, &job->slots[i], layer, "layers", i);
    }
    slot_init(job, &job->slots[job->n_layers], config, "config", 0);
    return 0;
}

/*
 * Reads one layer from its reader while it downloads. Runs on the reader
 * pool, because it blocks until the bytes arrive.
 */
static ssize_t
layer_source_read(void *arg, void *buf, size_t len, struct pg_error **err)
{
    return blobfetch_reader_read(arg, buf, len, err);
}

static void
layer_read_run(void *arg)
{
    struct layer_read *read = arg;
    struct inspector_source source = {.read = layer_source_read,
                                      .arg = read->reader};

    read->listing =
        inspector_scan_layer(&source, read->digest, read->media_type,
                             read->size, &read->options, &read->error);
    read->elapsed_ms = pg_monotonic_ms() - read->started_ms;
}

static void
log_layer_read(const struct gate_job *job, const struct layer_read *read)
{
    if (read->error == NULL)
        pg_log(PG_LOG_INFO, "layer_read",
               "upstream=%s digest=%s image=%s result=ok entries=%lld "
               "elapsed_ms=%llu",
               job->upstream->name, read->digest, job->digest,
               (long long)json_integer_value(
                   json_object_get(read->listing, "entries")),
               (unsigned long long)read->elapsed_ms);
    else
        pg_log(PG_LOG_INFO, "layer_read",
               "upstream=%s digest=%s image=%s result=failed status=%d "
               "error=%s elapsed_ms=%llu",
               job->upstream->name, read->digest, job->digest,
               read->error->status, read->error->code,
               (unsigned long long)read->elapsed_ms);
}

/*
 * Hands a finished read to its slot, or frees it when the job is gone.
 * The listing is kept even when the layer's fetch fails later, because a
 * failed fetch gives the job no verdict at all. Loop thread.
 */
static void
layer_read_done(void *arg)
{
    struct layer_read *read = arg;
    struct slot *slot = read->slot;

    if (slot == NULL) {
        layer_read_free(read);
        return;
    }
    log_layer_read(slot->job, read);
    slot->read = NULL;
    slot->listing = read->listing;
    slot->error = read->error;
    read->listing = NULL;
    read->error = NULL;
    layer_read_free(read);
    slot->job->reads_pending--;
    job_progress(slot->job);
}

/* Returns the inspector's options from the configuration. */
static struct inspector_options
layer_options(const struct gate *gate)
{
    return inspector_options_from_config(&gate->cfg->inspector, gate->secrets);
}

/*
 * Starts reading a layer on the reader pool from the bytes its waiter's
 * fetch writes. Returns 0, or -1 with an error. Loop thread.
 */
static int
layer_read_start(struct gate_job *job, struct slot *slot, struct pg_error **err)
{
    struct layer_read *read = calloc(1, sizeof(*read));

    if (read == NULL || (read->media_type = strdup(slot->media_type)) == NULL)
        goto nomem;
    read->reader = blobfetch_reader_new(slot->waiter, err);
    if (read->reader == NULL)
        goto fail;
    read->slot = slot;
    snprintf(read->digest, sizeof(read->digest), "%s", slot->digest);
    read->size = slot->size;
    read->options = layer_options(job->gate);
    read->started_ms = pg_monotonic_ms();

    if (workers_submit(job->gate->readers, layer_read_run, layer_read_done,
                       read, err) < 0)
        goto fail;
    slot->read = read;
    job->reads_pending++;
    return 0;

nomem:
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while starting to read layer %s; retry later",
                 slot->digest);
fail:
    layer_read_free(read);
    return -1;
}

/* Reads the config blob into memory, bounded. Worker thread. */
static void
read_config_run(void *arg)
{
    struct slot *slot = arg;
    struct gate_job *job = slot->job;
    char path[4096];
    int fd = -1;
    ssize_t n;

    if (slot->size > (int64_t)PG_IMAGE_CONFIG_MAX_BYTES) {
        pg_error_set(&slot->error, 403, PG_ERR_DENIED,
                     "config blob %s has %lld bytes, more than the %u "
                     "pullgate reads",
                     slot->digest, (long long)slot->size,
                     PG_IMAGE_CONFIG_MAX_BYTES);
        return;
    }
    cache_blob_path(job->gate->cache, slot->digest, path, sizeof(path));
    job->config_bytes = malloc((size_t)slot->size + 1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (job->config_bytes == NULL || fd < 0)
        goto fail;
    while (job->config_len < (size_t)slot->size) {
        n = read(fd, job->config_bytes + job->config_len,
                 (size_t)slot->size - job->config_len);
        if (n <= 0)
            goto fail;
        job->config_len += (size_t)n;
    }
    close(fd);
    return;

fail:
    pg_error_set(&slot->error, 503, PG_ERR_UNAVAILABLE,
                 "cannot read config blob %s from %s: %s", slot->digest, path,
                 strerror(errno));
    if (fd >= 0)
        close(fd);
}

/*
 * Checks that a layer of an image-config artifact is not a tar archive,
 * which containers/storage would unpack whatever its media type. Worker
 * thread.
 */
static void
sniff_layer_run(void *arg)
{
    struct slot *slot = arg;
    char path[4096];
    int is_tar;

    cache_blob_path(slot->job->gate->cache, slot->digest, path, sizeof(path));
    is_tar = inspector_blob_is_tar(path, &slot->error);
    if (is_tar == 1) {
        pg_error_set(&slot->error, 403, PG_ERR_DENIED,
                     "layer %s has media type %s but its bytes are a tar "
                     "archive, which container runtimes would unpack; it is "
                     "not served as an artifact",
                     slot->digest, slot->media_type);
    }
}

static void
read_done(void *arg)
{
    struct slot *slot = arg;

    slot->job->reads_pending--;
    job_progress(slot->job);
}

static void
on_slot_fetched(struct pg_error *err, void *arg)
{
    struct slot *slot = arg;
    struct gate_job *job = slot->job;
    bool is_config = slot == &job->slots[job->n_layers];
    struct pg_error *submit_err = NULL;

    slot->waiter = NULL;
    job->fetches_pending--;
    if (err != NULL) {
        if (job->fetch_err == NULL)
            job->fetch_err = err;
        else
            pg_error_free(err);
    } else if (job->fetch_err == NULL && (is_config || job->sniff) &&
               !(job->sniff && is_config)) {
        /* Layers of images are read while they download, from
         * layer_read_start. */
        workers_fn run = is_config ? read_config_run : sniff_layer_run;

        job->reads_pending++;
        if (workers_submit(job->gate->workers, run, read_done, slot,
                           &submit_err) < 0) {
            job->reads_pending--;
            job->fetch_err = submit_err;
        }
    }
    job_progress(job);
}

/* Writes "registry/repository:tag" or "registry/repository@digest" for
 * the job's reference into buf. */
static void
job_reference_name(const struct gate_job *job, char *buf, size_t size)
{
    const char *registry =
        json_string_value(json_object_get(job->reference, "registry"));
    const char *repository =
        json_string_value(json_object_get(job->reference, "repository"));
    const char *reference =
        json_string_value(json_object_get(job->reference, "reference"));

    if (reference == NULL || reference[0] == '\0')
        reference = job->digest;
    snprintf(buf, size, "%s/%s%c%s", registry != NULL ? registry : "",
             repository != NULL ? repository : "",
             reference_is_digest(reference) ? '@' : ':', reference);
}

/*
 * Returns a new array of the digests of the job's layers in manifest
 * order, or NULL when memory is short.
 */
static json_t *
job_layer_digests(const struct gate_job *job)
{
    json_t *digests = json_array();

    for (size_t i = 0; digests != NULL && i < job->n_layers; i++) {
        if (json_array_append_new(digests, json_string(job->slots[i].digest)) <
            0) {
            json_decref(digests);
            digests = NULL;
        }
    }
    return digests;
}

/* Logs and frees a lineage error, if any: lineage only describes an
 * image, so its failures never stop an inspection. */
static void
log_lineage_error(const struct gate_job *job, struct pg_error *err)
{
    if (err == NULL)
        return;
    pg_log(PG_LOG_WARN, "lineage_failed", "digest=%s status=%d error=%s",
           job->digest, err->status, err->code);
    pg_error_free(err);
}

/*
 * Finds the base image by lineage: the longest allowed image already
 * recorded by job_record_lineage whose layers are the first layers of
 * this one, found by the ChainID of each shorter prefix.
 * The chains are computed over the digests of the layer blobs, which were
 * fetched and verified, and not over rootfs.diff_ids: nothing checks the
 * config's diff_ids against the layers, so an image could claim another
 * image's diff_ids to take over its lineage record. Lineage only describes
 * an image, so a failure here is logged and the inspection goes on.
 * Worker thread.
 * NOTE: the base found depends on what this pullgate inspected before, so
 * two replicas may describe one image with different bases. An image
 * whose base layers were compressed again has other layer digests and no
 * base by lineage.
 */
static void
document_add_lineage(struct gate_job *job, json_t *document)
{
    json_t *layer_digests = job_layer_digests(job);
    json_t *chain_ids = inspector_chain_ids(layer_digests);
    char base_digest[PG_DIGEST_MAX + 1];
    char base_name[CACHE_LINEAGE_NAME_MAX + 1];
    struct pg_error *err = NULL;
    size_t n = json_array_size(chain_ids);

    if (n == 0)
        goto out;
    for (size_t i = n - 1;
         i-- > 0 && json_is_null(json_object_get(document, "base_image"));) {
        const char *chain_id = json_string_value(json_array_get(chain_ids, i));
        int found = cache_lineage_get(job->gate->cache, chain_id, base_digest,
                                      sizeof(base_digest), base_name,
                                      sizeof(base_name), &err);

        if (found < 0)
            goto out;
        if (found == 1 && strcmp(base_digest, job->digest) != 0 &&
            inspector_document_set_base(document, base_name, base_digest,
                                        "lineage", &err) < 0)
            goto out;
    }

out:
    log_lineage_error(job, err);
    json_decref(chain_ids);
    json_decref(layer_digests);
}

/* Returns true for the document of an image whose inspection succeeded. */
static bool
document_inspected(const json_t *document)
{
    const char *status = json_string_value(
        json_object_get(json_object_get(document, "inspection"), "status"));

    return status != NULL && strcmp(status, "ok") == 0;
}

/*
 * Records the job's image as the one whose layers are exactly its own,
 * so that images built on it later name it as their base. Only allowed
 * images are recorded, and the first one recorded for a chain keeps it:
 * an image that copies another's layers can neither replace the base
 * that images built on them name, nor be named as a base after it was
 * denied. Failures are logged, as lineage only describes images. Worker
 * thread.
 */
static void
job_record_lineage(struct gate_job *job)
{
    json_t *layer_digests = job_layer_digests(job);
    json_t *chain_ids = inspector_chain_ids(layer_digests);
    size_t n = json_array_size(chain_ids);
    const char *chain_id;
    char name[CACHE_LINEAGE_NAME_MAX + 1];
    struct pg_error *err = NULL;
    int found;

    if (n == 0)
        goto out;
    chain_id = json_string_value(json_array_get(chain_ids, n - 1));
    found =
        cache_lineage_get(job->gate->cache, chain_id, NULL, 0, NULL, 0, &err);
    if (found == 0) {
        job_reference_name(job, name, sizeof(name));
        cache_lineage_put(job->gate->cache, chain_id, job->digest, name, &err);
    }

out:
    log_lineage_error(job, err);
    json_decref(chain_ids);
    json_decref(layer_digests);
}

/* Builds the document for what was read. Worker thread. */
static json_t *
build_document(struct gate_job *job)
{
    struct pg_error *err = NULL;
    json_t **listings;
    json_t *document = NULL;

    if (job->stored_document != NULL)
        return json_incref(job->stored_document);
    if (job->invalid != NULL && !job->artifact)
        return inspector_failed_document(job->digest, job->manifest,
                                         job->reference, job->invalid);
    for (size_t i = 0; job->slots != NULL && i <= job->n_layers; i++) {
        if (job->slots[i].error != NULL)
            return inspector_failed_document(job->digest, job->manifest,
                                             job->reference,
                                             job->slots[i].error->message);
    }
    if (job->artifact)
        return inspector_artifact_document(job->digest, job->manifest,
                                           job->reference);

    listings = calloc(job->n_layers + 1, sizeof(*listings));
    if (listings == NULL)
        return NULL;
    for (size_t i = 0; i < job->n_layers; i++)
        listings[i] = job->slots[i].listing;
    document = inspector_build_document(
        job->digest, job->manifest, job->config_bytes, job->config_len,
        listings, job->n_layers, job->reference, &err);
    free(listings);
    if (document != NULL) {
        struct inspector_options options = layer_options(job->gate);

        if (inspector_document_scan_config(document, job->config_bytes,
                                           job->config_len, &options,
                                           &err) < 0) {
            json_decref(document);
            document = NULL;
        }
    }
    if (document != NULL)
        document_add_lineage(job, document);
    if (document == NULL && err != NULL)
        document = inspector_failed_document(job->digest, job->manifest,
                                             job->reference, err->message);
    pg_error_free(err);
    return document;
}

static void
evaluate_run(void *arg)
{
    struct gate_job *job = arg;
    struct cache *cache = job->gate->cache;
    const struct policy *policy = job->policy;
    struct policy_request request;
    const char *decision;
    json_t *document = build_document(job);

    if (document == NULL) {
        pg_error_set(&job->store_err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while inspecting image %s", job->digest);
        return;
    }
    job->verdict = policy_evaluate(policy, document, &job->store_err);
    if (job->verdict == NULL)
        goto out;
    gate_policy_request(job->upstream, job->repository, job->digest,
                        job->digest, &request);
    request.tag = job->tag[0] != '\0' ? job->tag : NULL;
    job->decision = policy_decide(policy, job->verdict, &request, time(NULL));
    if (job->decision == NULL) {
        pg_error_set(&job->store_err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while deciding the verdict for image %s",
                     job->digest);
        goto out;
    }

    if (job->stored_document == NULL &&
        cache_document_put(cache, job->digest, INSPECTOR_VERSION, document,
                           &job->store_err) < 0)
        goto out;
    /* Blob permissions are not written here: each request writes them for
     * its repository once its own verdict allows the image
     * (gate_request_finish_verdict), since scope and exceptions make the
     * verdict depend on the request. This decision is for the log and
     * lineage. */
    decision = json_string_value(json_object_get(job->decision, "decision"));
    if (decision != NULL && strcmp(decision, "allow") == 0 &&
        job->stored_document == NULL && !job->artifact &&
        document_inspected(document))
        job_record_lineage(job);
    cache_verdict_put(cache, job->digest, job->verdict_key, job->verdict,
                      &job->store_err);
out:
    json_decref(document);
}

/* Writes the rule names of verdict entries into buf, comma-separated, or
 * "-" when there are none. Returns buf. */
static const char *
join_rule_names(const json_t *entries, char *buf, size_t size)
{
    size_t used = 0, i;
    json_t *entry;

    buf[0] = '\0';
    json_array_foreach(entries, i, entry)
    {
        int n = snprintf(buf + used, size - used, "%s%s", i ? "," : "",
                         json_string_value(json_object_get(entry, "rule")));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(buf, size, "-");
    return buf;
}

static void
log_verdict(struct gate_job *job)
{
    char repo[320], denied[512], warnings[512], excepted[512];

    pg_log(PG_LOG_INFO, "verdict",
           "upstream=%s repo=%s digest=%s decision=%s denied=%s warnings=%s "
           "excepted=%s layers=%zu elapsed_ms=%llu",
           job->upstream->name,
           pg_log_quote(repo, sizeof(repo), job->repository), job->digest,
           json_string_value(json_object_get(job->decision, "decision")),
           join_rule_names(json_object_get(job->decision, "denied"), denied,
                           sizeof(denied)),
           join_rule_names(json_object_get(job->decision, "warnings"), warnings,
                           sizeof(warnings)),
           join_rule_names(json_object_get(job->decision, "excepted"), excepted,
                           sizeof(excepted)),
           job->n_layers,
           (unsigned long long)(pg_monotonic_ms() - job->started_ms));
}

static void
evaluate_done(void *arg)
{
    struct gate_job *job = arg;

    if (job->verdict != NULL && job->store_err == NULL)
        log_verdict(job);
    else if (job->store_err != NULL)
        pg_log(PG_LOG_ERROR, "verdict_failed", "digest=%s error=%s",
               job->digest, job->store_err->message);
    job_finish(job);
}

/* Starts evaluation once every fetch and read has ended. */
static void
job_progress(struct gate_job *job)
{
    struct pg_error *err = NULL;

    if (job->fetches_pending > 0 || job->reads_pending > 0 || job->evaluating)
        return;
    if (job->fetch_err != NULL) {
        pg_log(PG_LOG_WARN, "inspection_aborted",
               "upstream=%s digest=%s status=%d error=%s", job->upstream->name,
               job->digest, job->fetch_err->status, job->fetch_err->code);
        job_finish(job);
        return;
    }
    job->evaluating = true;
    if (workers_submit(job->gate->workers, evaluate_run, evaluate_done, job,
                       &err) < 0) {
        job->fetch_err = err;
        job_finish(job);
    }
}

/* Starts the fetch of every blob; the config blob is fetched first. */
static void
job_fetch_all(struct gate_job *job)
{
    struct pg_error *err = NULL;

    for (size_t k = 0; k <= job->n_layers; k++) {
        size_t i = job->n_layers - k;
        struct slot *slot = &job->slots[i];

        slot->waiter = blobfetch_get(
            job->gate->fetches, job->upstream, job->repository, slot->digest,
            slot->media_type, slot->size, on_slot_fetched, slot, &err);
        if (slot->waiter == NULL)
            goto fail;
        job->fetches_pending++;

        /* The fetch goes on when the read cannot start; the job has no
         * verdict because of fetch_err. */
        if (i < job->n_layers && !job->sniff &&
            layer_read_start(job, slot, &err) < 0)
            goto fail;
    }
    return;

fail:
    if (job->fetch_err == NULL)
        job->fetch_err = err;
    else
        pg_error_free(err);
}

static struct gate_job *
job_new(struct gate *gate, const struct gate_manifest *manifest)
{
    struct gate_job *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    job->gate = gate;
    job->upstream = manifest->upstream;
    job->artifact = manifest->artifact;
    job->sniff = manifest->sniff;
    job->started_ms = pg_monotonic_ms();
    snprintf(job->repository, sizeof(job->repository), "%s",
             manifest->repository);
    snprintf(job->digest, sizeof(job->digest), "%s", manifest->digest);
    snprintf(job->tag, sizeof(job->tag), "%s", manifest->tag);
    snprintf(job->verdict_key, sizeof(job->verdict_key), "%s",
             manifest->verdict_key);
    job->policy = policy_ref(manifest->policy);
    job->manifest = json_deep_copy(manifest->manifest);
    job->reference = json_pack(
        "{s:s, s:s, s:s}", "registry", manifest->upstream->name, "repository",
        manifest->repository, "reference", manifest->reference);
    if (job->manifest == NULL || job->reference == NULL) {
        job_free(job);
        return NULL;
    }
    return job;
}

static struct gate_job *
job_find(struct gate *gate, const char *digest, const char *verdict_key)
{
    /* A job under another policy (one started before a reload) gives
     * findings under that policy's key, so it is not shared. */
    for (struct gate_job *job = gate->jobs; job != NULL; job = job->next) {
        if (strcmp(job->digest, digest) == 0 &&
            strcmp(job->verdict_key, verdict_key) == 0)
            return job;
    }
    return NULL;
}

/* Creates and starts a job; it may finish only from a later callback. */
static struct gate_job *
job_start(struct gate *gate, const struct gate_manifest *manifest)
{
    struct gate_job *job = job_new(gate, manifest);
    struct pg_error *err = NULL;

    if (job == NULL)
        return NULL;
    /* Artifacts are not fetched, but their descriptors are read so that
     * their blobs can be allowed with the verdict. */
    if (job_prepare(job) < 0) {
        job_free(job);
        return NULL;
    }
    job->next = gate->jobs;
    if (gate->jobs != NULL)
        gate->jobs->prev = job;
    gate->jobs = job;

    /* A document stored under this inspector version is evaluated as it
     * is, so a new policy needs no download and no second inspection. */
    if (cache_document_get(gate->cache, job->digest, INSPECTOR_VERSION,
                           &job->stored_document, &err) < 0) {
        pg_log(PG_LOG_WARN, "document_read_failed", "digest=%s error=%s",
               job->digest, err->message);
        pg_error_free(err);
    }
    pg_log(PG_LOG_INFO, "inspection_started",
           "upstream=%s digest=%s kind=%s layers=%zu stored_document=%s",
           job->upstream->name, job->digest,
           job->artifact ? "artifact" : "image", job->n_layers,
           job->stored_document != NULL ? "yes" : "no");
    if ((!job->artifact || job->sniff) && job->invalid == NULL &&
        job->stored_document == NULL)
        job_fetch_all(job);
    return job;
}

static void
on_job_kick(evutil_socket_t fd, short what, void *arg)
{
    job_progress(arg);
}

int
gate_job_wait(struct gate *gate, struct gate_request *request,
              const struct gate_manifest *manifest, struct pg_error **err)
{
    struct gate_job *job =
        job_find(gate, manifest->digest, manifest->verdict_key);
    bool started = false;

    if (job == NULL) {
        job = job_start(gate, manifest);
        started = true;
    }
    if (job == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while starting to inspect image %s",
                     manifest->digest);
        return -1;
    }

    request->job = job;
    request->job_prev = NULL;
    request->job_next = job->waiters;
    if (job->waiters != NULL)
        job->waiters->job_prev = request;
    job->waiters = request;

    /* A job with nothing to fetch (an artifact, an invalid manifest, or a
     * failed first fetch) moves on from the loop, after this returns. */
    if (started && job->fetches_pending == 0)
        event_base_once(gate->base, -1, EV_TIMEOUT, on_job_kick, job, NULL);
    return 0;
}

void
gate_job_detach(struct gate_request *request)
{
    struct gate_job *job = request->job;

    if (job == NULL)
        return;
    if (request->job_prev != NULL)
        request->job_prev->job_next = request->job_next;
    else
        job->waiters = request->job_next;
    if (request->job_next != NULL)
        request->job_next->job_prev = request->job_prev;
    request->job = NULL;
    request->job_prev = NULL;
    request->job_next = NULL;
}

void
gate_jobs_free(struct gate *gate)
{
    while (gate->jobs != NULL) {
        struct gate_job *job = gate->jobs;

        gate->jobs = job->next;
        while (job->waiters != NULL)
            gate_job_detach(job->waiters);
        job_free(job);
    }
}
