/*
 * Catalogers: the readers of one kind of file inside a layer, such as the
 * dpkg status file or a Python METADATA file. Internal to the inspector.
 *
 * The layer reader (layer.c) walks the tar stream once. For each regular
 * file it asks every cataloger in catalog_table whether it wants the file,
 * by path and size alone, then hands over the file's content: the whole
 * content in memory (CATALOG_BUFFER, at most options->file_bytes_max
 * bytes) or a stream of blocks (CATALOG_STREAM, for archives such as jars
 * that may be larger than memory should hold). Catalogers never see the
 * layer's other files and never touch the file system.
 *
 * What a cataloger finds goes into the layer's findings, a JSON object of
 * arrays built with catalog_add. The document builder (document.c) later
 * keeps only the findings whose file is still present in the image's merged
 * file system, adds the layer index, and fills in what needs more than one
 * layer (the distribution in OS package URLs, dpkg licenses). Findings keys
 * and the fields of their items:
 *
 *   "os"        {"path", "id", "version_id", "name", "pretty_name",
 *               "version_codename", "id_like"}; absent keys were not in
 *               the file
 *   "packages"  {"type", "name", "version", "path", ...}: "type" is the
 *               package URL type (deb, apk, rpm, pypi, npm, maven, golang,
 *               gem); "path" is the file the package was found in; the
 *               optional fields are "purl" (set by every cataloger except
 *               the OS package ones, whose namespace and distro come from
 *               the os-release file), "licenses" [string], "arch",
 *               "namespace" (a Maven group id),
 *               "source_name", "source_version" (dpkg Source:, apk origin,
 *               source RPM), "epoch" (rpm), "release" (rpm), "location"
 *               (a path inside an archive, such as
 *               "WEB-INF/lib/x.jar!META-INF/maven/g/a/pom.properties"),
 *               "go_version" (golang), "main_module" (golang, bool)
 *   "licenses"  {"path", "package", "licenses": [string]}: licenses that
 *               a dpkg copyright file states for the package it documents
 *   "secrets"   {"rule", "path", "line"}: "line" is 1-based, 0 for a
 *               finding by path alone; the matched text is never kept
 *   "notes"     {"cataloger", "path", "message"}: a file that a cataloger
 *               could not read, which does not fail the inspection
 *
 * Paths are as the layer reader cleaned them: relative to the root, no
 * leading '/', "." and ".." resolved.
 *
 * Catalogers run on worker threads, many at once; they keep no state
 * between calls except through ctx.
 */
#ifndef PG_INSPECTOR_CATALOG_H
#define PG_INSPECTOR_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/error.h"
#include "inspector/inspector.h"

/* The state that one layer's catalogers share. */
struct catalog_ctx {
    json_t *findings; /* {"os": [...], "packages": [...], ...} */
    const struct inspector_options *options;
    const char *layer_digest; /* for messages */
};

enum catalog_want {
    CATALOG_SKIP,   /* not this cataloger's file */
    CATALOG_BUFFER, /* the whole content, in memory */
    CATALOG_STREAM, /* the content as a stream of blocks */
};

/* The content of one archive entry, read block by block. */
struct catalog_stream;

/*
 * Reads the next block of the entry. Returns 1 with *block and *len set,
 * 0 at the end of the entry, or -1 when the layer cannot be read further
 * (a limit or a corrupt stream). After -1 the cataloger returns at once;
 * the layer reader reports the error, which the stream keeps. The block
 * stays valid until the next call.
 */
int catalog_stream_next(struct catalog_stream *stream, const void **block,
                        size_t *len);

struct cataloger {
    const char *name; /* in notes, such as "dpkg" */

    /* Decides from the cleaned path and the size in the tar header. */
    enum catalog_want (*want)(const char *path, int64_t size);

    /*
     * Reads a file it asked for with CATALOG_BUFFER: data holds len
     * bytes, followed by a NUL byte that is not counted. Returns 0, or -1
     * only when memory is short. A file it cannot parse is a note.
     */
    int (*file)(struct catalog_ctx *ctx, const char *path,
                const unsigned char *data, size_t len);

    /*
     * Reads a file it asked for with CATALOG_STREAM. Returns 0, or -1
     * when memory is short or catalog_stream_next returned -1.
     */
    int (*stream)(struct catalog_ctx *ctx, const char *path,
                  struct catalog_stream *stream);
};

/* Every cataloger, NULL-terminated, in the order they are asked. */
extern const struct cataloger *const catalog_table[];

extern const struct cataloger catalog_os_release;
extern const struct cataloger catalog_dpkg;
extern const struct cataloger catalog_dpkg_copyright;
extern const struct cataloger catalog_apk;
extern const struct cataloger catalog_rpm;
extern const struct cataloger catalog_python;
extern const struct cataloger catalog_npm;
extern const struct cataloger catalog_java;
extern const struct cataloger catalog_ruby;

/*
 * Appends item to findings[key], creating the array, and takes the
 * reference to item in every case. Returns 0, or -1 when memory is short.
 */
int catalog_add(struct catalog_ctx *ctx, const char *key, json_t *item);

/*
 * Adds {"cataloger", "path", "message"} to findings["notes"]. The message
 * names what is wrong with the file and never quotes more than a short,
 * non-secret part of it. A layer keeps at most 1,000 notes. One more note
 * then marks where they stop, and later ones are dropped. Returns 0, or
 * -1 when memory is short.
 */
int catalog_note(struct catalog_ctx *ctx, const char *cataloger,
                 const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Bytes of the message that describes the first problem of a file. */
#define CATALOG_PROBLEM_TEXT_MAX 160

/* The first problem found in a file and how many there were, so that a
 * hostile file yields one note rather than one per line. Starts zeroed. */
struct catalog_problems {
    char first[CATALOG_PROBLEM_TEXT_MAX];
    unsigned long count;
};

/* Counts a problem and keeps its message when it is the first. */
void catalog_problems_add(struct catalog_problems *problems, const char *fmt,
                          ...) __attribute__((format(printf, 2, 3)));

/*
 * Adds one note for all the problems of the file at path, if there were
 * any: the first message, and the count when there was more than one.
 * Returns 0, or -1 when memory is short.
 */
int catalog_problems_note(struct catalog_ctx *ctx, const char *cataloger,
                          const char *path,
                          const struct catalog_problems *problems);

/*
 * Returns true when path ends with suffix, or begins with prefix, and so
 * on: small helpers every cataloger needs to match paths.
 */
bool catalog_has_prefix(const char *text, const char *prefix);
bool catalog_has_suffix(const char *text, const char *suffix);

/*
 * Returns a new JSON string holding the package URL
 * pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS, with every component
 * percent-encoded as the purl specification requires. namespace may be
 * NULL or "" and holds '/'-separated segments (a Maven group id is one
 * segment; a Go module path's segments are kept). qualifiers is NULL or
 * a NULL-terminated list of key, value pairs, which are sorted by key;
 * pairs with a NULL or empty value are left out. Returns NULL when memory
 * is short.
 */
json_t *catalog_purl(const char *type, const char *namespace, const char *name,
                     const char *version, const char *const *qualifiers);

/*
 * Content scanners that look at every regular file rather than at paths:
 * secrets (secrets.c) and Go build information (catalog_go.c).
 */

/*
 * Reports credential files by path: .aws/credentials, .ssh/id_*,
 * .docker/config.json, .npmrc, .pypirc, .netrc, .git-credentials.
 * Called for every regular file. Returns 0, or -1 when memory is short.
 */
int secrets_check_path(struct catalog_ctx *ctx, const char *path);

/*
 * Scans the text file at path, whose whole content is data[0..len), with
 * ctx->options->secrets (or the built-in rules). No byte after data[len]
 * is read, so data may point into libarchive's own buffer.
 * Called only for files the layer reader judged to be text and no larger
 * than options->secret_file_bytes_max. Returns 0, or -1 when memory is
 * short.
 */
int secrets_scan(struct catalog_ctx *ctx, const char *path,
                 const unsigned char *data, size_t len);

/* Build information of one Go binary, read block by block. */
struct go_scan;

/*
 * Starts reading an ELF file at path. Returns NULL when memory is short.
 * Feed it every block of the file in order with go_scan_feed, then call
 * go_scan_finish, which adds the packages it found and frees the scan.
 */
struct go_scan *go_scan_new(const char *path);
void go_scan_feed(struct go_scan *scan, const unsigned char *block, size_t len);
int go_scan_finish(struct catalog_ctx *ctx, struct go_scan *scan);
/* Frees a scan without adding anything; accepts NULL. */
void go_scan_free(struct go_scan *scan);

#endif
