/*
 * Benchmark driver: lists one layer file with inspector_list_layer, as a
 * pullgate worker thread does, and prints what it cost as key=value lines.
 *
 * Usage: bench/inspect_layer FILE [MEDIA_TYPE]
 *
 * The inspector options are the daemon's built-in defaults
 * (config_defaults), mapped the way the gate maps them, with the built-in
 * secret rules. The media type defaults to the OCI gzip layer type; the
 * inspector picks the decompressor from the file's first bytes anyway.
 * Exits 0 when the layer was listed, 1 when the inspector rejected it and
 * 2 on a usage or setup error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "config/config.h"
#include "config/error.h"
#include "inspector/inspector.h"

#define DEFAULT_MEDIA_TYPE "application/vnd.oci.image.layer.v1.tar+gzip"

/* The digest that names the layer in error messages. The driver does not
 * hash the file, because hashing is no part of what it measures. */
#define BENCH_DIGEST "sha256:benchmark"

/* Returns seconds since an arbitrary fixed point. */
static double
monotonic_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static double
timeval_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Fills options from the built-in configuration defaults. Returns 0, or
 * -1 when memory is short. */
static int
options_from_defaults(struct inspector_options *options)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);

    if (cfg == NULL) {
        fprintf(stderr, "inspect_layer: %s\n",
                err != NULL ? err->message : "out of memory");
        pg_error_free(err);
        return -1;
    }
    /* NULL secrets: the built-in rules, as the default configuration. */
    *options = inspector_options_from_config(&cfg->inspector, NULL);
    config_free(cfg);
    return 0;
}

/* Prints the number of items under each key of the listing's findings
 * (packages, secrets, notes...), which shows what the catalogers found. */
static void
print_findings(const json_t *listing)
{
    const json_t *findings = json_object_get(listing, "findings");
    const char *key;
    json_t *items;

    json_object_foreach((json_t *)findings, key, items)
    {
        printf("findings_%s=%zu\n", key, json_array_size(items));
    }
}

/* Prints the listing's counts and the measured costs. */
static void
print_result(const json_t *listing, double wall, const struct rusage *usage)
{
    json_int_t bytes = json_integer_value(json_object_get(listing, "bytes"));
    json_int_t size = json_integer_value(json_object_get(listing, "size"));
    json_int_t entries =
        json_integer_value(json_object_get(listing, "entries"));
    double user = timeval_seconds(usage->ru_utime);
    double sys = timeval_seconds(usage->ru_stime);

    printf("compressed_bytes=%lld\n", (long long)size);
    printf("decompressed_bytes=%lld\n", (long long)bytes);
    printf("entries=%lld\n", (long long)entries);
    printf("wall_seconds=%.3f\n", wall);
    printf("user_seconds=%.3f\n", user);
    printf("sys_seconds=%.3f\n", sys);
    printf("cpu_seconds=%.3f\n", user + sys);
    printf("decompressed_mb_per_second=%.1f\n",
           wall > 0 ? (double)bytes / 1e6 / wall : 0.0);
    printf("max_rss_kib=%ld\n", usage->ru_maxrss);
    print_findings(listing);
}

int
main(int argc, char **argv)
{
    const char *media_type = argc > 2 ? argv[2] : DEFAULT_MEDIA_TYPE;
    struct inspector_options options;
    struct pg_error *err = NULL;
    struct rusage usage;
    json_t *listing;
    double start, wall;

    if (argc < 2 || argc > 3) {
        fputs("usage: inspect_layer FILE [MEDIA_TYPE]\n", stderr);
        return 2;
    }
    if (options_from_defaults(&options) < 0)
        return 2;

    start = monotonic_seconds();
    listing =
        inspector_list_layer(argv[1], BENCH_DIGEST, media_type, &options, &err);
    wall = monotonic_seconds() - start;
    getrusage(RUSAGE_SELF, &usage);

    if (listing == NULL) {
        printf("error_status=%d\n", err != NULL ? err->status : 0);
        printf("wall_seconds=%.3f\n", wall);
        fprintf(stderr, "inspect_layer: %s\n",
                err != NULL ? err->message : "no error was returned");
        pg_error_free(err);
        return 1;
    }
    print_result(listing, wall, &usage);
    json_decref(listing);
    return 0;
}
