/*
 * The `pullgate inspect` and `pullgate sbom` commands: read one image from
 * an upstream registry, an OCI image layout or an image archive, verify
 * every blob against its digest, and print the image document or an SBOM
 * of it to standard output.
 */
#ifndef PG_CLI_INSPECT_H
#define PG_CLI_INSPECT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "config/error.h"

enum cli_inspect_output {
    CLI_OUTPUT_DOCUMENT, /* pullgate inspect */
    CLI_OUTPUT_SBOM,     /* pullgate sbom */
};

/* Exit statuses of both commands. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_UNREADABLE 1 /* the image could not be read or inspected */
#define CLI_EXIT_USAGE 2

/*
 * Runs the command with argv[0] the command's name ("inspect" or "sbom")
 * and returns the exit status. Messages go to standard error. libevent's
 * pthread support and libcurl must be initialised first.
 */
int cli_inspect_main(int argc, char **argv, enum cli_inspect_output output);

/* The platform pullgate inspect reads from an index without --platform. */
#define CLI_DEFAULT_PLATFORM "linux/amd64"

/*
 * Returns whether platform is written OS/ARCH[/VARIANT]: two or three
 * non-empty parts, such as "linux/arm64/v8".
 */
bool cli_inspect_platform_valid(const char *platform);

/* The image cli_inspect_layout reads from a layout, and what it found. */
struct cli_layout_choice {
    /* The org.opencontainers.image.ref.name annotation of the manifest to
     * read, or NULL for the only manifest of index.json. */
    const char *tag;
    /* The OS/ARCH[/VARIANT] to read from an index; NULL for
     * CLI_DEFAULT_PLATFORM. */
    const char *platform;
    /* The setting that chooses the platform, named in the error for an
     * index without that platform, such as "--platform". */
    const char *platform_setting;
    /* Set by cli_inspect_layout: the number of distinct platforms of the
     * index the image was chosen from, 0 when no index was read. */
    size_t index_platforms;
};

/*
 * Inspects the image in the OCI image layout directory dir as
 * `pullgate inspect oci:DIR[:TAG]` does: the manifest whose
 * org.opencontainers.image.ref.name annotation is choice->tag (an error
 * when several have it), or with a NULL tag the only manifest of
 * index.json (else the one for choice->platform). Indexes are followed by
 * choice->platform. Every blob is verified against its digest. cfg
 * supplies the inspector's limits and secret rules. Returns the image
 * document, which the caller releases with json_decref, or NULL with err
 * set when the layout cannot be read or inspected.
 */
json_t *cli_inspect_layout(const struct config *cfg, const char *dir,
                           struct cli_layout_choice *choice,
                           struct pg_error **err);

#endif
