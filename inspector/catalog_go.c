/*
 * Go build information: the Go version and the module versions that the
 * Go linker writes into the ".go.buildinfo" section of every binary. A
 * binary built outside module mode (GOPATH) records no module versions,
 * which is noted with its Go version.
 *
 * The layer reader feeds every ELF file through a go_scan block by block,
 * so the file is never held in memory. The section starts with a 32-byte
 * header at a 16-byte aligned file offset:
 *
 *   bytes 0-13   the magic "\xff Go buildinf:"
 *   byte  14     the pointer size
 *   byte  15     flags: bit 0 big-endian, bit 1 strings follow inline
 *   bytes 16-31  padding (pointers to the strings in older releases)
 *
 * With the inline flag, two strings follow the header, each prefixed by
 * its length as an unsigned LEB128 varint: the Go version ("go1.21.5")
 * and the module information text. Without it the strings are reached
 * through pointers into the data segment, which a single forward pass
 * cannot follow, so such binaries get a note instead.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "inspector/catalog.h"

#define GO_CATALOGER "golang"

#define GO_MAGIC "\xff Go buildinf:"
#define GO_MAGIC_BYTES 14
#define GO_ALIGN_BYTES 16
#define GO_HEADER_BYTES 32
#define GO_FLAG_INLINE_STRINGS 2

/* A uint64 takes at most 10 bytes as a varint. */
#define GO_VARINT_BYTES_MAX 10

/* The Go version string, such as "go1.22.3 X:loopvar". */
#define GO_VERSION_MAX 256

/* The module information text, and the modules read from it. */
#define GO_MODULE_INFO_MAX (1024u * 1024)
#define GO_MODULES_MAX 10000

/*
 * The Go linker wraps the module information text in two 16-byte
 * sentinels, and the text before the closing sentinel ends with a
 * newline. A text without that shape carries no module information.
 */
#define GO_SENTINEL_BYTES 16

enum go_state {
    GO_SEARCH,         /* looking for the magic */
    GO_HEADER,         /* skipping the rest of the 32-byte header */
    GO_VERSION_LENGTH, /* reading the varint before the Go version */
    GO_VERSION,        /* reading the Go version */
    GO_MODINFO_LENGTH, /* reading the varint before the module text */
    GO_MODINFO,        /* reading the module text */
    GO_DONE,           /* both strings read; the rest is ignored */
    GO_OLD_FORMAT,     /* a header without inline strings */
    GO_INVALID,        /* a header whose strings cannot be read */
};

struct go_scan {
    char *path;
    enum go_state state;
    unsigned char chunk[GO_ALIGN_BYTES]; /* an aligned 16 bytes */
    size_t chunk_len;
    size_t header_left;
    uint64_t varint;
    unsigned varint_bytes;
    char *text; /* the string being read, NUL-terminated when done */
    size_t text_len;
    size_t text_want;
    char *go_version;
    char *modinfo;
    size_t modinfo_len;
    const char *invalid; /* why the strings cannot be read */
    bool memory_short;
};

/* One "mod" or "dep" line, with the "=>" line that replaced it. */
struct go_module {
    const char *path;
    const char *version;
    const char *replace_path;    /* NULL unless replaced */
    const char *replace_version; /* "" for a local directory */
    bool main;
};

/* The parsed module information; strings point into the text. */
struct go_modinfo {
    const char *package_path; /* the "path" line */
    struct go_module *modules;
    size_t n_modules;
    size_t capacity;
    size_t bad_line; /* the first malformed line, 1-based, or 0 */
    bool has_main;
    bool too_many;
};

struct go_scan *
go_scan_new(const char *path)
{
    struct go_scan *scan = calloc(1, sizeof(*scan));

    if (scan == NULL)
        return NULL;
    scan->path = strdup(path);
    if (scan->path == NULL) {
        free(scan);
        return NULL;
    }
    return scan;
}

void
go_scan_free(struct go_scan *scan)
{
    if (scan == NULL)
        return;
    free(scan->path);
    free(scan->text);
    free(scan->go_version);
    free(scan->modinfo);
    free(scan);
}

/* Examines one complete aligned chunk for the magic. */
static void
scan_check_chunk(struct go_scan *scan, const unsigned char *chunk)
{
    if (memcmp(chunk, GO_MAGIC, GO_MAGIC_BYTES) != 0)
        return;
    if ((chunk[15] & GO_FLAG_INLINE_STRINGS) == 0) {
        scan->state = GO_OLD_FORMAT;
        return;
    }
    scan->state = GO_HEADER;
    scan->header_left = GO_HEADER_BYTES - GO_ALIGN_BYTES;
}

/*
 * Looks for the magic at every 16-byte aligned offset. Whole chunks are
 * checked in place; a chunk split between blocks is assembled in
 * scan->chunk. Returns the bytes consumed, which stop right after the
 * chunk that holds the magic.
 */
static size_t
scan_search(struct go_scan *scan, const unsigned char *block, size_t len)
{
    size_t used = 0;

    if (scan->chunk_len > 0) {
        size_t n = GO_ALIGN_BYTES - scan->chunk_len;

        if (n > len)
            n = len;
        memcpy(scan->chunk + scan->chunk_len, block, n);
        scan->chunk_len += n;
        used = n;
        if (scan->chunk_len < GO_ALIGN_BYTES)
            return used;
        scan->chunk_len = 0;
        scan_check_chunk(scan, scan->chunk);
    }

    while (scan->state == GO_SEARCH && len - used >= GO_ALIGN_BYTES) {
        const unsigned char *chunk = block + used;

        used += GO_ALIGN_BYTES;
        if (chunk[0] == 0xff)
            scan_check_chunk(scan, chunk);
    }

    if (scan->state == GO_SEARCH && used < len) {
        scan->chunk_len = len - used;
        memcpy(scan->chunk, block + used, scan->chunk_len);
        used = len;
    }
    return used;
}

/* Moves on from a string that scan->text holds completely. */
static void
scan_text_done(struct go_scan *scan)
{
    scan->text[scan->text_len] = '\0';
    if (scan->state == GO_VERSION) {
        scan->go_version = scan->text;
        scan->state = GO_MODINFO_LENGTH;
    } else {
        scan->modinfo = scan->text;
        scan->modinfo_len = scan->text_len;
        scan->state = GO_DONE;
    }
    scan->text = NULL;
}

/*
 * Reads one byte of a varint length. When the varint is complete, checks
 * it against max and prepares scan->text for the string.
 */
static void
scan_varint_byte(struct go_scan *scan, unsigned char byte, size_t max,
                 enum go_state next)
{
    uint64_t bits = byte & 0x7f;
    unsigned shift = 7 * scan->varint_bytes;

    scan->varint_bytes++;
    if (scan->varint_bytes > GO_VARINT_BYTES_MAX || (shift == 63 && bits > 1)) {
        scan->invalid = "a string length overflows 64 bits";
        scan->state = GO_INVALID;
        return;
    }
    scan->varint |= bits << shift;
    if (byte & 0x80)
        return;

    if (scan->varint > max) {
        scan->invalid = next == GO_VERSION
                            ? "the Go version is longer than 256 bytes"
                            : "the module information is longer than 1 MiB";
        scan->state = GO_INVALID;
        return;
    }
    scan->text_want = (size_t)scan->varint;
    scan->text_len = 0;
    scan->varint = 0;
    scan->varint_bytes = 0;
    scan->text = malloc(scan->text_want + 1);
    if (scan->text == NULL) {
        scan->memory_short = true;
        scan->state = GO_INVALID;
        return;
    }
    scan->state = next;
    if (scan->text_want == 0)
        scan_text_done(scan);
}

/* Copies string bytes into scan->text. Returns the bytes consumed. */
static size_t
scan_text(struct go_scan *scan, const unsigned char *block, size_t len)
{
    size_t n = scan->text_want - scan->text_len;

    if (n > len)
        n = len;
    memcpy(scan->text + scan->text_len, block, n);
    scan->text_len += n;
    if (scan->text_len == scan->text_want)
        scan_text_done(scan);
    return n;
}

/* Consumes bytes of the header and its strings. Returns the count. */
static size_t
scan_step(struct go_scan *scan, const unsigned char *block, size_t len)
{
    size_t n;

    switch (scan->state) {
    case GO_SEARCH:
        return scan_search(scan, block, len);
    case GO_HEADER:
        n = len < scan->header_left ? len : scan->header_left;
        scan->header_left -= n;
        if (scan->header_left == 0)
            scan->state = GO_VERSION_LENGTH;
        return n;
    case GO_VERSION_LENGTH:
        scan_varint_byte(scan, block[0], GO_VERSION_MAX, GO_VERSION);
        return 1;
    case GO_MODINFO_LENGTH:
        scan_varint_byte(scan, block[0], GO_MODULE_INFO_MAX, GO_MODINFO);
        return 1;
    case GO_VERSION:
    case GO_MODINFO:
        return scan_text(scan, block, len);
    default:
        return len;
    }
}

void
go_scan_feed(struct go_scan *scan, const unsigned char *block, size_t len)
{
    while (len > 0) {
        size_t n;

        if (scan->state >= GO_DONE)
            return;
        n = scan_step(scan, block, len);
        block += n;
        len -= n;
    }
}

/* Splits text at each tab in place. Stores up to max fields and returns
 * how many there are, which may be more than max. */
static size_t
split_tabs(char *text, char **fields, size_t max)
{
    size_t n = 0;

    for (;;) {
        char *tab = strchr(text, '\t');

        if (n < max)
            fields[n] = text;
        n++;
        if (tab == NULL)
            return n;
        *tab = '\0';
        text = tab + 1;
    }
}

/* Adds a module from the fields after "mod" or "dep". Returns false for a
 * malformed line. */
static bool
modinfo_add_module(struct go_modinfo *info, char **fields, size_t n, bool main)
{
    struct go_module *module;

    /* PATH VERSION, with SUM unless the module has no checksum. */
    if (n != 3 && n != 4)
        return false;
    if (info->n_modules == info->capacity) {
        info->too_many = true;
        return true;
    }
    if (main)
        info->has_main = true;
    module = &info->modules[info->n_modules++];
    *module = (struct go_module){
        .path = fields[1], .version = fields[2], .main = main};
    return true;
}

/* Applies an "=>" line to the module on the line before it. Returns
 * false for a malformed line. */
static bool
modinfo_replace(struct go_modinfo *info, char **fields, size_t n,
                bool after_module)
{
    struct go_module *module;

    if (n != 4 || !after_module || info->n_modules == 0)
        return false;
    module = &info->modules[info->n_modules - 1];
    module->replace_path = fields[1];
    module->replace_version = fields[2];
    return true;
}

/*
 * Parses one line of the module information text. after_module says
 * whether the previous line was a "mod" or "dep" line, the only lines a
 * replacement may follow. Returns false for a malformed line.
 */
static bool
modinfo_parse_line(struct go_modinfo *info, char *line, bool *after_module)
{
    char *fields[4];
    size_t n = split_tabs(line, fields, 4);
    bool was_module = *after_module;
    const char *keyword = fields[0];

    *after_module = false;
    if (n == 1 && keyword[0] == '\0')
        return true;
    if (strcmp(keyword, "path") == 0) {
        if (n != 2)
            return false;
        info->package_path = fields[1];
        return true;
    }
    if (strcmp(keyword, "mod") == 0 || strcmp(keyword, "dep") == 0) {
        *after_module = true;
        return modinfo_add_module(info, fields, n, keyword[0] == 'm');
    }
    if (strcmp(keyword, "=>") == 0)
        return modinfo_replace(info, fields, n, was_module);
    /* "build" lines and lines of later formats carry no modules. */
    return true;
}

/*
 * Parses the module information text in place, after checking and
 * removing its sentinels. Returns 0, or -1 when memory is short.
 */
static int
modinfo_parse(struct go_modinfo *info, char *text, size_t len)
{
    size_t line_number = 0;
    bool after_module = false;
    char *line;

    memset(info, 0, sizeof(*info));
    if (len < 2 * GO_SENTINEL_BYTES + 1 ||
        text[len - GO_SENTINEL_BYTES - 1] != '\n')
        return 0;
    text[len - GO_SENTINEL_BYTES] = '\0';
    line = text + GO_SENTINEL_BYTES;

    /* Each line names at most one module. */
    info->capacity = 1;
    for (const char *p = line; *p != '\0'; p++)
        if (*p == '\n' && info->capacity < GO_MODULES_MAX)
            info->capacity++;
    info->modules = calloc(info->capacity, sizeof(*info->modules));
    if (info->modules == NULL)
        return -1;

    while (*line != '\0') {
        char *newline = strchr(line, '\n');

        if (newline != NULL)
            *newline = '\0';
        line_number++;
        if (!modinfo_parse_line(info, line, &after_module) &&
            info->bad_line == 0)
            info->bad_line = line_number;
        if (newline == NULL)
            break;
        line = newline + 1;
    }
    return 0;
}

/* Sets key in object to a JSON string of text. Returns 0 or -1. */
static int
json_set_text(json_t *object, const char *key, const char *text)
{
    return json_object_set_new(object, key,
                               inspector_json_text(text, strlen(text)));
}

/*
 * Returns the package URL of a module: the module path is split at its
 * last '/' into namespace and name, as the purl specification's golang
 * type does. Returns NULL when memory is short.
 */
static json_t *
module_purl(const char *module_path, const char *version)
{
    const char *slash = strrchr(module_path, '/');
    char *namespace;
    json_t *purl;

    if (slash == NULL)
        return catalog_purl("golang", NULL, module_path, version, NULL);
    namespace = strndup(module_path, (size_t)(slash - module_path));
    if (namespace == NULL)
        return NULL;
    purl = catalog_purl("golang", namespace, slash + 1, version, NULL);
    free(namespace);
    return purl;
}

/*
 * Adds the package of one module. A module replaced by another module
 * is reported as the replacement, whose code was built. A module
 * replaced by a local directory has no version of its own, so it is
 * reported as "(devel)", as Go reports a main module built from a
 * checkout. Returns 0 or -1.
 */
static int
add_module(struct catalog_ctx *ctx, const struct go_scan *scan,
           const struct go_module *module)
{
    const char *path = module->path;
    const char *version = module->version;
    json_t *package;

    if (module->replace_path != NULL) {
        if (module->replace_version[0] != '\0') {
            path = module->replace_path;
            version = module->replace_version;
        } else {
            version = "(devel)";
        }
    }

    package =
        json_pack("{s:s, s:b}", "type", "golang", "main_module", module->main);
    if (package == NULL || json_set_text(package, "name", path) < 0 ||
        json_set_text(package, "version", version) < 0 ||
        json_set_text(package, "path", scan->path) < 0 ||
        json_set_text(package, "go_version", scan->go_version) < 0 ||
        json_object_set_new(package, "purl", module_purl(path, version)) < 0) {
        json_decref(package);
        return -1;
    }
    return catalog_add(ctx, "packages", package);
}

/* Adds the packages of a parsed module information text, and notes for
 * what could not be read. Returns 0 or -1. */
static int
add_modules(struct catalog_ctx *ctx, const struct go_scan *scan,
            const struct go_modinfo *info)
{
    if (!info->has_main) {
        const char *package_path = info->package_path;

        return catalog_note(ctx, GO_CATALOGER, scan->path,
                            "built with %s outside module mode (package %s); "
                            "no module versions are recorded",
                            scan->go_version,
                            package_path == NULL ? "unknown" : package_path);
    }

    for (size_t i = 0; i < info->n_modules; i++)
        if (add_module(ctx, scan, &info->modules[i]) < 0)
            return -1;

    if (info->bad_line != 0 &&
        catalog_note(ctx, GO_CATALOGER, scan->path,
                     "line %zu of the Go module information is malformed "
                     "and was skipped",
                     info->bad_line) < 0)
        return -1;
    if (info->too_many &&
        catalog_note(ctx, GO_CATALOGER, scan->path,
                     "the Go module information lists more than %u modules; "
                     "the rest were not read",
                     (unsigned)GO_MODULES_MAX) < 0)
        return -1;
    return 0;
}

/*
 * Adds the Go standard library linked into the binary as the package
 * "stdlib", because vulnerability feeds list Go's own fixes under that
 * name with versions such as "1.19.8". Binaries built outside module mode
 * record nothing else, so this is all a policy can match for them. The
 * version is the Go version without its "go" prefix and without the
 * experiment suffix (" X:boringcrypto"); a development build of Go
 * ("devel go1.22-abc") keeps its whole text. Returns 0 or -1.
 */
static int
add_stdlib(struct catalog_ctx *ctx, const struct go_scan *scan)
{
    const char *version = scan->go_version;
    size_t len = strcspn(version, " ");
    char *trimmed;
    json_t *package;
    int rc = -1;

    if (strncmp(version, "go", 2) == 0 && len > 2) {
        version += 2;
        len -= 2;
    } else {
        len = strlen(version);
    }
    trimmed = strndup(version, len);
    if (trimmed == NULL)
        return -1;
    package = json_pack("{s:s, s:s, s:b}", "type", "golang", "name", "stdlib",
                        "main_module", false);
    if (package != NULL && json_set_text(package, "version", trimmed) == 0 &&
        json_set_text(package, "path", scan->path) == 0 &&
        json_set_text(package, "go_version", scan->go_version) == 0 &&
        json_object_set_new(package, "purl",
                            catalog_purl("golang", NULL, "stdlib", trimmed,
                                         NULL)) == 0) {
        rc = catalog_add(ctx, "packages", package);
        package = NULL;
    }
    json_decref(package);
    free(trimmed);
    return rc;
}

/* Returns 0 or -1 for a scan that read both strings. */
static int
finish_strings(struct catalog_ctx *ctx, struct go_scan *scan)
{
    struct go_modinfo info;
    int rc;

    if (scan->go_version[0] == '\0')
        return catalog_note(ctx, GO_CATALOGER, scan->path,
                            "the Go build information has an empty Go "
                            "version");
    if (add_stdlib(ctx, scan) < 0)
        return -1;
    if (modinfo_parse(&info, scan->modinfo, scan->modinfo_len) < 0)
        return -1;
    rc = add_modules(ctx, scan, &info);
    free(info.modules);
    return rc;
}

int
go_scan_finish(struct catalog_ctx *ctx, struct go_scan *scan)
{
    int rc = 0;

    if (scan->memory_short) {
        rc = -1;
    } else if (scan->state == GO_DONE) {
        rc = finish_strings(ctx, scan);
    } else if (scan->state == GO_OLD_FORMAT) {
        rc = catalog_note(ctx, GO_CATALOGER, scan->path,
                          "built with a Go release before 1.18; module "
                          "information is not read");
    } else if (scan->state == GO_INVALID) {
        rc = catalog_note(ctx, GO_CATALOGER, scan->path,
                          "the Go build information is invalid: %s",
                          scan->invalid);
    } else if (scan->state != GO_SEARCH) {
        rc = catalog_note(ctx, GO_CATALOGER, scan->path,
                          "the file ends inside its Go build information");
    }
    go_scan_free(scan);
    return rc;
}
