/*
 * Unit tests for the catalogers (inspector/catalog*.c): package URLs, and
 * each cataloger against real files of the test machine. Expected values
 * come from other tools: dpkg-query, sh, awk, Python's importlib.metadata,
 * npm ls and Ruby's own gemspec loader.
 *
 * Needs the Debian packages dpkg, mawk (or another awk), python3,
 * python3-requests, python3-jwt, python3-pytest, npm, ruby and rake, and
 * a reachable npm registry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "config/limits.h"
#include "inspector/catalog.h"

/* Included for DPKG_PARAGRAPHS_MAX and DPKG_VALUE_MAX. */
#include "inspector/catalog_dpkg.c"

/* Bytes of output read from one command. */
#define COMMAND_OUTPUT_MAX (16u * 1024 * 1024)

/* Package URLs as the purl specification spells them. */
static const struct {
    const char *type, *namespace, *name, *version;
    const char *qualifiers[7];
    const char *expected;
} purl_cases[] = {
    {"deb",
     "debian",
     "libstdc++6",
     "12.2.0-14",
     {"distro", "debian-12", "arch", "amd64", NULL},
     "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12"},
    {"deb",
     "debian",
     "tzdata",
     "1:2024a",
     {NULL},
     "pkg:deb/debian/tzdata@1:2024a"},
    {"npm", "@types", "node", "20.1.0", {NULL}, "pkg:npm/%40types/node@20.1.0"},
    {"golang",
     "github.com/docker",
     "distribution",
     "v2.8.2+incompatible",
     {NULL},
     "pkg:golang/github.com/docker/distribution@v2.8.2%2Bincompatible"},
    {"pypi",
     NULL,
     "requests",
     "2.28.1",
     {"extra", "", NULL},
     "pkg:pypi/requests@2.28.1"},
    {"maven",
     "org.apache.commons",
     "commons-lang3",
     "3.12.0",
     {NULL},
     "pkg:maven/org.apache.commons/commons-lang3@3.12.0"},
    {"gem", "", "rake", NULL, {NULL}, "pkg:gem/rake"},
};

START_TEST(purl_spelled)
{
    json_t *purl = catalog_purl(purl_cases[_i].type, purl_cases[_i].namespace,
                                purl_cases[_i].name, purl_cases[_i].version,
                                purl_cases[_i].qualifiers);

    ck_assert_ptr_nonnull(purl);
    ck_assert_str_eq(json_string_value(purl), purl_cases[_i].expected);
    json_decref(purl);
}
END_TEST

START_TEST(add_and_note)
{
    struct catalog_ctx ctx = {.findings = json_object()};
    json_t *notes;

    ck_assert_int_eq(catalog_add(&ctx, "os", json_pack("{s:s}", "id", "x")), 0);
    ck_assert_int_eq(catalog_note(&ctx, "dpkg", "var/lib/dpkg/status",
                                  "line %d has no colon", 7),
                     0);
    ck_assert_int_eq(json_array_size(json_object_get(ctx.findings, "os")), 1);
    notes = json_object_get(ctx.findings, "notes");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(notes, 0), "message")),
        "line 7 has no colon");
    json_decref(ctx.findings);
}
END_TEST

/* Notes added to one layer's findings in the test below. */
#define MANY_NOTES 1500

/*
 * A layer can ask for a note per entry, such as a million files named
 * ".jar" that are not zip archives. The findings keep 1,000 notes and one
 * more that marks where the rest were dropped.
 */
START_TEST(notes_capped_per_layer)
{
    struct catalog_ctx ctx = {.findings = json_object()};
    const json_t *notes;
    const json_t *kept;
    const json_t *last;

    for (int i = 0; i < MANY_NOTES; i++)
        ck_assert_int_eq(catalog_note(&ctx, "java", "opt/x.jar",
                                      "note %d", i),
                         0);
    notes = json_object_get(ctx.findings, "notes");
    ck_assert_uint_eq(json_array_size(notes), 1001);
    kept = json_array_get(notes, 999);
    ck_assert_str_eq(json_string_value(json_object_get(kept, "message")),
                     "note 999");
    last = json_array_get(notes, 1000);
    ck_assert_str_eq(json_string_value(json_object_get(last, "cataloger")),
                     "java");
    ck_assert_str_eq(json_string_value(json_object_get(last, "path")),
                     "opt/x.jar");
    ck_assert_str_eq(json_string_value(json_object_get(last, "message")),
                     "the layer reached its maximum of 1000 notes here; "
                     "later notes were not recorded");
    json_decref(ctx.findings);
}
END_TEST

/* ---- helpers ---- */

/* Runs command with sh and returns its standard output, a new string.
 * Stores the exit status in *status. */
static char *
run_command(const char *command, int *status)
{
    FILE *pipe = popen(command, "r");
    char *output = malloc(COMMAND_OUTPUT_MAX + 1);
    size_t len = 0;
    size_t n;

    ck_assert_msg(pipe != NULL, "popen failed for: %s", command);
    ck_assert_ptr_nonnull(output);
    while ((n = fread(output + len, 1, COMMAND_OUTPUT_MAX - len, pipe)) > 0)
        len += n;
    output[len] = '\0';
    *status = pclose(pipe);
    return output;
}

/* Runs command and fails the test unless it exits with 0. */
static char *
run_checked(const char *command)
{
    int status;
    char *output = run_command(command, &status);

    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "command failed (status %d): %s", status, command);
    return output;
}

/* Returns the content of the file at path, NUL-terminated, and its length
 * in *len. */
static char *
read_disk_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    char *data;
    long size;

    ck_assert_msg(file != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(file, 0, SEEK_END), 0);
    size = ftell(file);
    ck_assert_int_ge(size, 0);
    rewind(file);
    data = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, file), (size_t)size);
    data[size] = '\0';
    fclose(file);
    *len = (size_t)size;
    return data;
}

/* Hands data to cataloger as the file layer_path of a layer, after
 * checking that its want function returns CATALOG_BUFFER, and returns
 * the new findings. */
static json_t *
catalog_bytes(const struct cataloger *cataloger, const char *layer_path,
              const char *data, size_t len)
{
    struct catalog_ctx ctx = {.findings = json_object()};

    ck_assert_ptr_nonnull(ctx.findings);
    ck_assert_msg(cataloger->want(layer_path, (int64_t)len) == CATALOG_BUFFER,
                  "%s does not want %s", cataloger->name, layer_path);
    ck_assert_int_eq(
        cataloger->file(&ctx, layer_path, (const unsigned char *)data, len), 0);
    return ctx.findings;
}

static json_t *
catalog_text(const struct cataloger *cataloger, const char *layer_path,
             const char *text)
{
    return catalog_bytes(cataloger, layer_path, text, strlen(text));
}

/* Catalogs the file at disk_path, named as in a layer: without the
 * leading '/'. */
static json_t *
catalog_disk_file(const struct cataloger *cataloger, const char *disk_path)
{
    size_t len;
    char *data = read_disk_file(disk_path, &len);
    json_t *findings = catalog_bytes(cataloger, disk_path + 1, data, len);

    free(data);
    return findings;
}

static size_t
count_of(const json_t *findings, const char *key)
{
    return json_array_size(json_object_get(findings, key));
}

static const char *
text_of(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

/* Returns the message of the only note. */
static const char *
only_note(const json_t *findings)
{
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    return text_of(json_array_get(json_object_get(findings, "notes"), 0),
                   "message");
}

/* Returns the package with name (and arch unless NULL), or NULL. */
static json_t *
find_package(const json_t *findings, const char *name, const char *arch)
{
    json_t *packages = json_object_get(findings, "packages");
    size_t index;
    json_t *package;

    json_array_foreach(packages, index, package)
    {
        if (strcmp(text_of(package, "name"), name) == 0 &&
            (arch == NULL || strcmp(text_of(package, "arch"), arch) == 0))
            return package;
    }
    return NULL;
}

/* Returns the licenses of item joined by '|', "" when it has none. The
 * result is static. */
static const char *
joined_licenses(const json_t *item)
{
    static char joined[4096];
    json_t *licenses = json_object_get(item, "licenses");
    size_t used = 0;
    size_t index;
    json_t *license;

    json_array_foreach(licenses, index, license)
    {
        int n = snprintf(joined + used, sizeof(joined) - used, "%s%s",
                         index > 0 ? "|" : "", json_string_value(license));

        ck_assert_int_lt(n, (int)(sizeof(joined) - used));
        used += (size_t)n;
    }
    joined[used] = '\0';
    return joined;
}

/* Splits line at tabs into at most max fields; returns how many. */
static size_t
split_tabs(char *line, char **fields, size_t max)
{
    size_t n = 0;

    while (n < max) {
        char *tab = strchr(line, '\t');

        fields[n++] = line;
        if (tab == NULL)
            break;
        *tab = '\0';
        line = tab + 1;
    }
    return n;
}

/* The upstream version in a Debian version: no epoch, no revision. */
static void
debian_upstream_version(const char *version, char *out, size_t size)
{
    const char *colon = strchr(version, ':');
    const char *start = colon != NULL ? colon + 1 : version;
    const char *dash = strrchr(start, '-');
    size_t len = dash != NULL ? (size_t)(dash - start) : strlen(start);

    ck_assert_uint_lt(len, size);
    memcpy(out, start, len);
    out[len] = '\0';
}

static double
seconds_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ---- os-release ---- */

static const char *const os_release_keys_read[][2] = {
    {"ID", "id"},
    {"VERSION_ID", "version_id"},
    {"NAME", "name"},
    {"PRETTY_NAME", "pretty_name"},
    {"VERSION_CODENAME", "version_codename"},
    {"ID_LIKE", "id_like"},
};

/* Checks the os item of findings against the variables sh sets when it
 * sources file: each set key must be in the item with the same value, and
 * each unset key must be absent. */
static void
check_os_against_shell(const json_t *findings, const char *file)
{
    const json_t *os = json_array_get(json_object_get(findings, "os"), 0);

    ck_assert_ptr_nonnull(os);
    for (size_t i = 0; i < 6; i++) {
        const char *key = os_release_keys_read[i][0];
        const char *field = os_release_keys_read[i][1];
        char command[512];
        char *output;
        size_t len;

        snprintf(command, sizeof(command),
                 "sh -c '. \"$1\"; if [ \"${%s+set}\" = set ]; then "
                 "printf \"set:%%s\" \"$%s\"; else printf unset; fi' sh %s",
                 key, key, file);
        output = run_checked(command);
        len = strlen(output);
        if (strcmp(output, "unset") == 0) {
            ck_assert_msg(json_object_get(os, field) == NULL,
                          "%s is unset but the item has %s", key, field);
        } else {
            ck_assert_msg(len >= 4 && memcmp(output, "set:", 4) == 0,
                          "unexpected shell output for %s", key);
            ck_assert_msg(text_of(os, field) != NULL, "%s is missing", field);
            ck_assert_str_eq(text_of(os, field), output + 4);
        }
        free(output);
    }
}

START_TEST(os_release_machine)
{
    const char *file = access("/etc/os-release", R_OK) == 0
                           ? "/etc/os-release"
                           : "/usr/lib/os-release";
    json_t *findings = catalog_disk_file(&catalog_os_release, file);
    const json_t *os = json_array_get(json_object_get(findings, "os"), 0);

    ck_assert_uint_eq(count_of(findings, "os"), 1);
    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    ck_assert_str_eq(text_of(os, "path"), file + 1);
    ck_assert_ptr_nonnull(text_of(os, "id"));
    check_os_against_shell(findings, file);
    json_decref(findings);
}
END_TEST

/* Quoting and escapes as os-release(5) allows them, compared with sh. */
START_TEST(os_release_quoting)
{
    static const char text[] =
        "# a comment, and a blank line\n"
        "\n"
        "NAME=\"Example \\\"Linux\\\" \\$HOME \\\\ \\`x\\` a\\b\"\n"
        "ID='ex-ample'\n"
        "VERSION_ID=1.2\n"
        "PRETTY_NAME=\"Example Linux 1.2 ('single' inside)\"\n"
        "ID_LIKE=\"debian ubuntu\"\n"
        "VERSION_CODENAME=\n"
        "HOME_URL=\"https://example.org/\"\n"
        "ID=example\n";
    char path[] = "/tmp/test-catalog-os-XXXXXX";
    int fd = mkstemp(path);
    json_t *findings;
    const json_t *os;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1),
                     (ssize_t)(sizeof(text) - 1));
    close(fd);
    findings = catalog_text(&catalog_os_release, "etc/os-release", text);
    os = json_array_get(json_object_get(findings, "os"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    check_os_against_shell(findings, path);
    ck_assert_str_eq(text_of(os, "name"),
                     "Example \"Linux\" $HOME \\ `x` a\\b");
    ck_assert_str_eq(text_of(os, "id"), "example");
    ck_assert_str_eq(text_of(os, "version_codename"), "");
    unlink(path);
    json_decref(findings);
}
END_TEST

START_TEST(os_release_malformed)
{
    json_t *findings = catalog_text(&catalog_os_release, "usr/lib/os-release",
                                    "ID=debian\n"
                                    "NAME=\"Debian\n"
                                    "just words\n"
                                    "VERSION_ID=\"12\" trailing\n"
                                    "PRETTY_NAME=\"caf\xe9\"\n");
    const json_t *os = json_array_get(json_object_get(findings, "os"), 0);

    ck_assert_str_eq(text_of(os, "id"), "debian");
    ck_assert_ptr_null(json_object_get(os, "name"));
    ck_assert_ptr_null(json_object_get(os, "version_id"));
    ck_assert_str_eq(text_of(os, "pretty_name"), "caf\xef\xbf\xbd");
    ck_assert_str_eq(only_note(findings),
                     "line 2: NAME has an unclosed quote or text after its "
                     "closing quote (3 problems in all)");
    json_decref(findings);

    findings = catalog_text(&catalog_os_release, "etc/os-release", "");
    os = json_array_get(json_object_get(findings, "os"), 0);
    ck_assert_str_eq(text_of(os, "path"), "etc/os-release");
    ck_assert_uint_eq(json_object_size(os), 1);
    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    json_decref(findings);

    ck_assert_int_eq(catalog_os_release.want("etc/os-release.d/x", 1),
                     CATALOG_SKIP);
    ck_assert_int_eq(catalog_os_release.want("x/etc/os-release", 1),
                     CATALOG_SKIP);
}
END_TEST

/* ---- dpkg ---- */

/* The dpkg-query format of the fields compared: state, name, arch,
 * version, source name, source version. */
#define DPKG_QUERY_FORMAT                                                      \
    "'${db:Status-Status}\\t${Package}\\t${Architecture}\\t${Version}\\t"      \
    "${source:Package}\\t${source:Version}\\n'"

/*
 * Checks every installed package that dpkg-query lists for the packages
 * named in names (all packages when names is "") against findings, and
 * returns how many there were.
 */
static size_t
check_dpkg_against_query(const json_t *findings, const char *names,
                         const char *path)
{
    char command[1024];
    char *output;
    char *line;
    char *next;
    size_t installed = 0;

    snprintf(command, sizeof(command), "dpkg-query -W -f=%s %s",
             DPKG_QUERY_FORMAT, names);
    output = run_checked(command);
    for (line = output; *line != '\0'; line = next) {
        char *fields[6];
        json_t *package;

        next = strchr(line, '\n');
        ck_assert_ptr_nonnull(next);
        *next++ = '\0';
        ck_assert_uint_eq(split_tabs(line, fields, 6), 6);
        if (strcmp(fields[0], "installed") != 0)
            continue;
        installed++;
        package = find_package(findings, fields[1], fields[2]);
        ck_assert_msg(package != NULL, "package %s:%s not found", fields[1],
                      fields[2]);
        ck_assert_str_eq(text_of(package, "type"), "deb");
        ck_assert_str_eq(text_of(package, "version"), fields[3]);
        ck_assert_str_eq(text_of(package, "source_name"), fields[4]);
        ck_assert_str_eq(text_of(package, "source_version"), fields[5]);
        ck_assert_str_eq(text_of(package, "path"), path);
        ck_assert_ptr_null(json_object_get(package, "purl"));
    }
    free(output);
    return installed;
}

START_TEST(dpkg_machine_status)
{
    json_t *findings = catalog_disk_file(&catalog_dpkg, "/var/lib/dpkg/status");
    size_t installed =
        check_dpkg_against_query(findings, "", "var/lib/dpkg/status");

    ck_assert_uint_gt(installed, 50);
    ck_assert_uint_eq(count_of(findings, "packages"), installed);
    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    /* The comparison above covers a Source without a version (libc6 has
     * "Source: glibc") and a binNMU whose source version differs (bash),
     * so the machine must have both packages. */
    ck_assert_ptr_nonnull(find_package(findings, "libc6", NULL));
    ck_assert_ptr_nonnull(find_package(findings, "bash", NULL));
    json_decref(findings);
}
END_TEST

/*
 * A distroless layout: one status.d file per package, stanzas as dpkg
 * wrote them for this machine but without Status, and a file with two
 * stanzas.
 */
START_TEST(dpkg_status_d)
{
    static const char *const files[][2] = {
        {"libc6", "libc6"},
        {"base-files", "base-files"},
        {"bash", "bash"},
        {"two", "zlib1g libzstd1"},
    };
    size_t total = 0;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char command[256];
        char layer_path[256];
        char *stanzas;
        json_t *found;
        size_t expected;

        snprintf(command, sizeof(command),
                 "dpkg-query -s %s | grep -v '^Status:'", files[i][1]);
        snprintf(layer_path, sizeof(layer_path), "var/lib/dpkg/status.d/%s",
                 files[i][0]);
        stanzas = run_checked(command);
        found = catalog_text(&catalog_dpkg, layer_path, stanzas);
        expected = check_dpkg_against_query(found, files[i][1], layer_path);
        ck_assert_uint_eq(count_of(found, "packages"), expected);
        ck_assert_uint_eq(count_of(found, "notes"), 0);
        total += expected;
        json_decref(found);
        free(stanzas);
    }
    ck_assert_uint_eq(total, 5);
    ck_assert_int_eq(
        catalog_dpkg.want("var/lib/dpkg/status.d/libc6.md5sums", 10),
        CATALOG_SKIP);
    ck_assert_int_eq(catalog_dpkg.want("var/lib/dpkg/status.d/a/b", 10),
                     CATALOG_SKIP);
    ck_assert_int_eq(catalog_dpkg.want("var/lib/dpkg/status-old", 10),
                     CATALOG_SKIP);
}
END_TEST

/* A status.d stanza with a Status field is read like one of the status
 * file, and the parenthesized Source version is split off. */
START_TEST(dpkg_status_values)
{
    json_t *findings = catalog_text(&catalog_dpkg, "var/lib/dpkg/status.d/x",
                                    "Package: removed\n"
                                    "Status: deinstall ok config-files\n"
                                    "Version: 1.0\n"
                                    "\n"
                                    "Package: held\n"
                                    "Status: hold ok installed\n"
                                    "Architecture: amd64\n"
                                    "Source: heldsrc (1:2.0-1)\n"
                                    "Version: 1:2.0-1+b1\n"
                                    "Description: a package\n"
                                    " with a long description\n"
                                    " .\n"
                                    " and more\n");
    const json_t *held = find_package(findings, "held", NULL);

    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    ck_assert_str_eq(text_of(held, "version"), "1:2.0-1+b1");
    ck_assert_str_eq(text_of(held, "arch"), "amd64");
    ck_assert_str_eq(text_of(held, "source_name"), "heldsrc");
    ck_assert_str_eq(text_of(held, "source_version"), "1:2.0-1");
    ck_assert_str_eq(text_of(held, "path"), "var/lib/dpkg/status.d/x");
    json_decref(findings);
}
END_TEST

/* Returns a new string of count copies of c. */
static char *
repeated(char c, size_t count)
{
    char *text = malloc(count + 1);

    ck_assert_ptr_nonnull(text);
    memset(text, c, count);
    text[count] = '\0';
    return text;
}

START_TEST(dpkg_hostile_lines)
{
    size_t long_len = 2u * 1024 * 1024;
    char *long_value = repeated('9', long_len);
    size_t size = 3 * long_len + 4096;
    char *text = malloc(size);
    json_t *findings;

    ck_assert_ptr_nonnull(text);

    /* A line with no colon breaks its stanza only. */
    findings = catalog_text(&catalog_dpkg, "var/lib/dpkg/status",
                            "Package: a\nStatus: install ok installed\n"
                            "Version: 1\nthis line has no colon\n\n"
                            "Package: b\nStatus: install ok installed\n"
                            "Version: 2\n\n"
                            " continues nothing\nPackage: c\n");
    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    ck_assert_ptr_nonnull(find_package(findings, "b", NULL));
    ck_assert_str_eq(only_note(findings), "line 4 has no colon (2 problems in "
                                          "all)");
    json_decref(findings);

    /* A 2 MiB Version is rejected, a 2 MiB description line is harmless,
     * and a 2 MiB line without a colon is one problem. */
    snprintf(text, size,
             "Package: long\nStatus: install ok installed\nVersion: %s\n\n"
             "Package: kept\nStatus: install ok installed\nVersion: 3\n"
             "Description: x\n %s\n\n"
             "%s\n",
             long_value, long_value, long_value);
    findings = catalog_text(&catalog_dpkg, "var/lib/dpkg/status", text);
    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    ck_assert_ptr_nonnull(find_package(findings, "kept", NULL));
    ck_assert_str_eq(only_note(findings),
                     "line 3: Version is longer than 1024 bytes (2 "
                     "problems in all)");
    json_decref(findings);

    /* Invalid UTF-8 becomes U+FFFD, and an empty file has no packages. */
    findings = catalog_text(&catalog_dpkg, "var/lib/dpkg/status",
                            "Package: caf\xe9\nStatus: install ok installed\n"
                            "Version: 1\xff\n");
    ck_assert_ptr_nonnull(find_package(findings, "caf\xef\xbf\xbd", NULL));
    ck_assert_str_eq(
        text_of(find_package(findings, "caf\xef\xbf\xbd", NULL), "version"),
        "1\xef\xbf\xbd");
    json_decref(findings);
    findings = catalog_text(&catalog_dpkg, "var/lib/dpkg/status", "");
    ck_assert_uint_eq(json_object_size(findings), 0);
    json_decref(findings);

    free(text);
    free(long_value);
}
END_TEST

/* 200,000 tiny stanzas: the first DPKG_PARAGRAPHS_MAX are read. */
START_TEST(dpkg_many_stanzas)
{
    static const char stanza[] =
        "Package: p\nStatus: install ok installed\nVersion: 1\n\n";
    size_t count = 200000;
    size_t len = count * (sizeof(stanza) - 1);
    char *text = malloc(len + 1);
    char expected[128];
    double started;
    json_t *findings;

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < count; i++)
        memcpy(text + i * (sizeof(stanza) - 1), stanza, sizeof(stanza) - 1);
    text[len] = '\0';

    started = seconds_now();
    findings = catalog_bytes(&catalog_dpkg, "var/lib/dpkg/status", text, len);
    /* Generous for sanitizer builds; an unbounded quadratic parser takes
     * far longer. */
    ck_assert_double_lt(seconds_now() - started, 10.0);
    ck_assert_uint_eq(count_of(findings, "packages"), DPKG_PARAGRAPHS_MAX);
    snprintf(expected, sizeof(expected),
             "more than %d paragraphs; the rest from line %d is not read",
             DPKG_PARAGRAPHS_MAX, DPKG_PARAGRAPHS_MAX * 4 + 1);
    ck_assert_str_eq(only_note(findings), expected);
    json_decref(findings);
    free(text);
}
END_TEST

/* ---- dpkg copyright files ---- */

/*
 * An awk program that prints the distinct License short names of the header
 * paragraph (the first) and of the Files paragraphs of the
 * machine-readable copyright file it reads, one per line: the first
 * License line of each such paragraph, without "License:" and surrounding
 * blanks. sed empties lines of only blanks first, since deb822(5) lets
 * them separate paragraphs and awk's paragraph mode splits only at empty
 * lines.
 */
#define COPYRIGHT_AWK                                                          \
    "awk 'BEGIN { RS = \"\"; FS = \"\\n\" }"                                   \
    " NR == 1 || /(^|\\n)[Ff][Ii][Ll][Ee][Ss]:/ {"                             \
    "   for (i = 1; i <= NF; i++) if ($i ~ /^[Ll][Ii][Cc][Ee][Nn][Ss][Ee]:/) " \
    "{"                                                                        \
    "     v = $i; sub(/^[^:]*:[ \\t]*/, \"\", v); sub(/[ \\t\\r]+$/, \"\", "   \
    "v);"                                                                      \
    "     if (v != \"\" && !(v in seen)) { seen[v] = 1; print v }; break } }'"

/* An awk program that prints "yes" when the first paragraph has the
 * Format field of the machine-readable format, else "no". */
#define COPYRIGHT_HEADER_AWK                                                   \
    "awk 'BEGIN { RS = \"\" } NR == 1 { print "                                \
    "($0 ~ /(^|\\n)Format:[^\\n]*copyright-format\\/1\\.0/) ? \"yes\" : "      \
    "\"no\";"                                                                  \
    " exit }'"

/* Returns whether the copyright file at path is in the machine-readable
 * format by its first paragraph, as awk finds it. */
static bool
copyright_machine_readable(const char *path)
{
    char command[1024];
    char *output;
    bool yes;

    snprintf(command, sizeof(command), "sed 's/^[ \t]*$//' %s | %s", path,
             COPYRIGHT_HEADER_AWK);
    output = run_checked(command);
    yes = strcmp(output, "yes\n") == 0;
    ck_assert_msg(yes || strcmp(output, "no\n") == 0, "awk printed %s", output);
    free(output);
    return yes;
}

START_TEST(copyright_machine)
{
    char *list = run_checked(
        "grep -l '^Format:.*copyright-format/1.0' /usr/share/doc/*/copyright");
    size_t compared = 0;
    size_t not_first = 0;
    char *next;

    for (char *file = list; *file != '\0'; file = next) {
        char command[1024];
        char expected[4096];
        char *lines;
        json_t *findings;
        const json_t *item;

        next = strchr(file, '\n');
        ck_assert_ptr_nonnull(next);
        *next++ = '\0';
        /* A Format field after a free-text paragraph does not make the
         * file machine-readable. */
        if (!copyright_machine_readable(file)) {
            findings = catalog_disk_file(&catalog_dpkg_copyright, file);
            ck_assert_msg(json_object_size(findings) == 0,
                          "%s has a free-text first paragraph but findings",
                          file);
            json_decref(findings);
            not_first++;
            continue;
        }
        snprintf(command, sizeof(command), "sed 's/^[ \t]*$//' %s | %s", file,
                 COPYRIGHT_AWK);
        lines = run_checked(command);
        /* The awk output, one license per line, joined by '|'. */
        snprintf(expected, sizeof(expected), "%s", lines);
        for (char *p = expected; *p != '\0'; p++) {
            if (*p == '\n')
                *p = p[1] == '\0' ? '\0' : '|';
        }
        free(lines);

        findings = catalog_disk_file(&catalog_dpkg_copyright, file);
        item = json_array_get(json_object_get(findings, "licenses"), 0);
        ck_assert_msg(item != NULL, "no licenses item for %s", file);
        ck_assert_msg(strcmp(joined_licenses(item), expected) == 0,
                      "%s: licenses \"%s\", awk found \"%s\"", file,
                      joined_licenses(item), expected);
        ck_assert_str_eq(text_of(item, "path"), file + 1);
        ck_assert_uint_eq(count_of(findings, "notes"), 0);
        json_decref(findings);
        compared++;
    }
    ck_assert_uint_gt(compared, 20);
    ck_assert_uint_lt(not_first, compared);
    free(list);
}
END_TEST

START_TEST(copyright_package_and_free_text)
{
    char *free_text = run_checked(
        "grep -L '^Format:' /usr/share/doc/*/copyright | head -n 1");
    json_t *findings;
    const json_t *item;

    /* A free-text copyright file adds nothing and no note. */
    ck_assert_msg(free_text[0] != '\0', "no free-text copyright file");
    *strchr(free_text, '\n') = '\0';
    findings = catalog_disk_file(&catalog_dpkg_copyright, free_text);
    ck_assert_uint_eq(json_object_size(findings), 0);
    json_decref(findings);
    free(free_text);

    findings =
        catalog_text(&catalog_dpkg_copyright, "usr/share/doc/libfoo1/copyright",
                     "Format: https://www.debian.org/doc/packaging-manuals/"
                     "copyright-format/1.0/\n"
                     "Upstream-Name: foo\n"
                     "License: GPL-2+\n"
                     "\n"
                     "Files: *\n"
                     "Copyright: 2020 Someone\n"
                     "License: MIT\n"
                     " The license text may follow the short name.\n"
                     "\n"
                     "Files: lib/*\n"
                     "Copyright: 2021 Someone Else\n"
                     "License: GPL-2+\n"
                     "\n"
                     "License: Apache-2.0\n"
                     " A stand-alone license paragraph holds text only.\n");
    item = json_array_get(json_object_get(findings, "licenses"), 0);
    ck_assert_str_eq(text_of(item, "package"), "libfoo1");
    ck_assert_str_eq(text_of(item, "path"), "usr/share/doc/libfoo1/copyright");
    ck_assert_str_eq(joined_licenses(item), "GPL-2+|MIT");
    json_decref(findings);

    ck_assert_int_eq(
        catalog_dpkg_copyright.want("usr/share/doc/a/b/copyright", 1),
        CATALOG_SKIP);
    ck_assert_int_eq(catalog_dpkg_copyright.want("usr/share/doc//copyright", 1),
                     CATALOG_SKIP);
}
END_TEST

/* ---- Python ---- */

/* Prints, for every distribution in Debian's dist-packages, the metadata
 * file, Name, Version and the licenses the cataloger should choose. */
static const char python_script[] =
    "import importlib.metadata as m, pathlib\n"
    "for d in m.distributions(path=['/usr/lib/python3/dist-packages']):\n"
    "    p = pathlib.Path(d._path)\n"
    "    if p.suffix == '.dist-info':\n"
    "        f = p / 'METADATA'\n"
    "    elif p.is_dir():\n"
    "        f = p / 'PKG-INFO'\n"
    "    else:\n"
    "        f = p\n"
    "    md = d.metadata\n"
    "    expr = md.get('License-Expression')\n"
    "    lic = (md.get('License') or '').strip()\n"
    "    if expr:\n"
    "        ls = [expr]\n"
    "    elif lic and '\\n' not in lic and lic.upper() != 'UNKNOWN':\n"
    "        ls = [lic]\n"
    "    else:\n"
    "        ls = [c.split(' :: ')[-1] for c in md.get_all('Classifier') or "
    "[]\n"
    "              if c.startswith('License :: ')\n"
    "              and c != 'License :: OSI Approved']\n"
    "    print('\\t'.join([str(f), md['Name'], md['Version'], "
    "'|'.join(ls)]))\n";

/* Returns the expected package URL of a distribution, computed by
 * Python: the name normalized by the rule of PEP 503 and the version
 * percent-encoded. */
static char *
python_expected_purl(const char *name, const char *version)
{
    char command[1024];

    snprintf(command, sizeof(command),
             "/usr/bin/python3 -c 'import re, sys, urllib.parse as u; "
             "n = re.sub(r\"[-_.]+\", \"-\", sys.argv[1]).lower(); "
             "print(\"pkg:pypi/\" + u.quote(n) + \"@\" + "
             "u.quote(sys.argv[2], safe=\":\"), end=\"\")' '%s' '%s'",
             name, version);
    return run_checked(command);
}

START_TEST(python_machine)
{
    char script_path[] = "/tmp/test-catalog-py-XXXXXX";
    int fd = mkstemp(script_path);
    char command[256];
    char *output;
    char *next;
    size_t compared = 0;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, python_script, sizeof(python_script) - 1),
                     (ssize_t)(sizeof(python_script) - 1));
    close(fd);
    snprintf(command, sizeof(command), "/usr/bin/python3 %s", script_path);
    output = run_checked(command);
    unlink(script_path);

    for (char *line = output; *line != '\0'; line = next) {
        char *fields[4];
        char *expected_purl;
        json_t *findings;
        const json_t *package;

        next = strchr(line, '\n');
        ck_assert_ptr_nonnull(next);
        *next++ = '\0';
        ck_assert_uint_eq(split_tabs(line, fields, 4), 4);
        findings = catalog_disk_file(&catalog_python, fields[0]);
        package = json_array_get(json_object_get(findings, "packages"), 0);
        ck_assert_msg(package != NULL, "no package from %s", fields[0]);
        ck_assert_str_eq(text_of(package, "type"), "pypi");
        ck_assert_str_eq(text_of(package, "name"), fields[1]);
        ck_assert_str_eq(text_of(package, "version"), fields[2]);
        ck_assert_msg(strcmp(joined_licenses(package), fields[3]) == 0,
                      "%s: licenses \"%s\", expected \"%s\"", fields[0],
                      joined_licenses(package), fields[3]);
        ck_assert_str_eq(text_of(package, "path"), fields[0] + 1);
        expected_purl = python_expected_purl(fields[1], fields[2]);
        ck_assert_str_eq(text_of(package, "purl"), expected_purl);
        free(expected_purl);
        json_decref(findings);
        compared++;
    }
    ck_assert_uint_gt(compared, 10);
    free(output);
}
END_TEST

/* requests, PyJWT and pytest, with the versions dpkg-query reports for
 * the Debian packages that ship them. */
START_TEST(python_debian_packages)
{
    static const char *const cases[][3] = {
        {"python3-requests", "requests", "requests-*.egg-info/PKG-INFO"},
        {"python3-jwt", "PyJWT", "PyJWT-*.egg-info/PKG-INFO"},
        {"python3-pytest", "pytest", "pytest-*.dist-info/METADATA"},
    };

    for (size_t i = 0; i < 3; i++) {
        char command[512];
        char upstream[128];
        char *version;
        char *file;
        json_t *findings;
        const json_t *package;

        snprintf(command, sizeof(command), "dpkg-query -W -f='${Version}' %s",
                 cases[i][0]);
        version = run_checked(command);
        debian_upstream_version(version, upstream, sizeof(upstream));
        /* Debian marks repacked sources with +dfsg or +repack; the
         * Python version has no such suffix. */
        upstream[strcspn(upstream, "+")] = '\0';
        snprintf(command, sizeof(command),
                 "ls /usr/lib/python3/dist-packages/%s | head -n 1",
                 cases[i][2]);
        file = run_checked(command);
        *strchr(file, '\n') = '\0';
        findings = catalog_disk_file(&catalog_python, file);
        package = json_array_get(json_object_get(findings, "packages"), 0);
        ck_assert_str_eq(text_of(package, "name"), cases[i][1]);
        ck_assert_str_eq(text_of(package, "version"), upstream);
        json_decref(findings);
        free(file);
        free(version);
    }
}
END_TEST

START_TEST(python_egg_info_file)
{
    size_t len;
    char *data = NULL;
    char *file = run_checked(
        "ls /usr/lib/python3/dist-packages/PyJWT-*.egg-info/PKG-INFO");
    json_t *findings;
    const json_t *package;

    *strchr(file, '\n') = '\0';
    data = read_disk_file(file, &len);
    findings = catalog_bytes(
        &catalog_python, "usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info",
        data, len);
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(text_of(package, "name"), "PyJWT");
    ck_assert_str_eq(text_of(package, "purl"), "pkg:pypi/pyjwt@2.6.0");
    ck_assert_str_eq(text_of(package, "path"),
                     "usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info");
    json_decref(findings);
    free(data);
    free(file);

    ck_assert_int_eq(catalog_python.want("x/requests/__init__.py", 1),
                     CATALOG_SKIP);
    ck_assert_int_eq(catalog_python.want("x/a-1.dist-info/RECORD", 1),
                     CATALOG_SKIP);
}
END_TEST

START_TEST(python_licenses_and_problems)
{
    json_t *findings = catalog_text(
        &catalog_python,
        "site-packages/Zope.Interface_x-5.0.dist-info/METADATA",
        "Metadata-Version: 2.1\r\n"
        "Name: Zope.Interface__x\r\n"
        "Version: 5.0\r\n"
        "License: ZPL 2.1\r\n"
        "        with a second line, so it is text\r\n"
        "Classifier: License :: OSI Approved\r\n"
        "Classifier: License :: OSI Approved :: Zope Public License\r\n"
        "Classifier: License :: Other/Proprietary License\r\n"
        "\r\n"
        "License: not a header, the description\r\n");
    const json_t *package =
        json_array_get(json_object_get(findings, "packages"), 0);

    ck_assert_str_eq(text_of(package, "purl"), "pkg:pypi/zope-interface-x@5.0");
    ck_assert_str_eq(joined_licenses(package),
                     "Zope Public License|Other/Proprietary License");
    json_decref(findings);

    findings = catalog_text(&catalog_python, "a/b-1.dist-info/METADATA",
                            "Name: b\nVersion: 1\nLicense: UNKNOWN\n"
                            "License-Expression: MIT OR Apache-2.0\n");
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(joined_licenses(package), "MIT OR Apache-2.0");
    json_decref(findings);

    findings = catalog_text(&catalog_python, "a/b-1.dist-info/METADATA",
                            "Name: caf\xe9\nVersion: 1\n");
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(text_of(package, "name"), "caf\xef\xbf\xbd");
    ck_assert_ptr_null(json_object_get(package, "licenses"));
    json_decref(findings);

    findings = catalog_text(&catalog_python, "a/b-1.dist-info/METADATA", "");
    ck_assert_str_eq(only_note(findings),
                     "no Name field in the header fields that end at line 0");
    json_decref(findings);

    findings = catalog_text(&catalog_python, "a/b-1.dist-info/METADATA",
                            "Name: b\nno colon here\nVersion: 1\n");
    ck_assert_str_eq(only_note(findings),
                     "no Version field in the header fields that end at "
                     "line 2");
    json_decref(findings);
}
END_TEST

/* ---- npm ---- */

/* Adds the packages of an "npm ls --json --all --long" dependency tree
 * to expected, keyed by the package folder's path. */
static void
collect_npm_tree(const json_t *node, json_t *expected)
{
    const json_t *dependencies = json_object_get(node, "dependencies");
    const char *name;
    json_t *dependency;

    json_object_foreach((json_t *)dependencies, name, dependency)
    {
        ck_assert_ptr_nonnull(text_of(dependency, "path"));
        json_object_set(expected, text_of(dependency, "path"), dependency);
        collect_npm_tree(dependency, expected);
    }
}

/*
 * Installs two small packages, one of them scoped, with npm into a new
 * folder, and compares every package.json the cataloger takes there with
 * what "npm ls" reports.
 */
START_TEST(npm_installed_packages)
{
    char folder[] = "/tmp/test-catalog-npm-XXXXXX";
    char command[1024];
    char *output;
    char *next;
    int status;
    json_t *tree;
    json_t *expected = json_object();
    size_t matched = 0;

    ck_assert_ptr_nonnull(mkdtemp(folder));
    output = run_command("command -v npm", &status);
    ck_assert_msg(status == 0, "npm is not installed: apt-get install npm");
    free(output);
    snprintf(command, sizeof(command),
             "npm install --prefix %s --no-audit --no-fund --loglevel=error "
             "semver@7.5.4 @isaacs/string-locale-compare@1.1.0 2>&1",
             folder);
    output = run_command(command, &status);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "npm install failed; this test needs the npm registry: %s",
                  output);
    free(output);

    snprintf(command, sizeof(command), "npm ls --json --all --long --prefix %s",
             folder);
    output = run_checked(command);
    tree = json_loads(output, 0, NULL);
    ck_assert_ptr_nonnull(tree);
    free(output);
    collect_npm_tree(tree, expected);
    ck_assert_uint_ge(json_object_size(expected), 2);

    snprintf(command, sizeof(command), "find %s -name package.json", folder);
    output = run_checked(command);
    for (char *file = output; *file != '\0'; file = next) {
        char package_folder[512];
        const json_t *want;
        json_t *findings;
        const json_t *package;

        next = strchr(file, '\n');
        *next++ = '\0';
        snprintf(package_folder, sizeof(package_folder), "%.*s",
                 (int)(strlen(file) - strlen("/package.json")), file);
        want = json_object_get(expected, package_folder);
        if (want == NULL) {
            ck_assert_msg(catalog_npm.want(file + 1, 1) == CATALOG_SKIP,
                          "%s is no installed package but is taken", file);
            continue;
        }
        findings = catalog_disk_file(&catalog_npm, file);
        package = json_array_get(json_object_get(findings, "packages"), 0);
        ck_assert_msg(package != NULL, "no package from %s", file);
        ck_assert_str_eq(text_of(package, "name"), text_of(want, "name"));
        ck_assert_str_eq(text_of(package, "version"), text_of(want, "version"));
        ck_assert_str_eq(joined_licenses(package), text_of(want, "license"));
        ck_assert_str_eq(text_of(package, "type"), "npm");
        json_decref(findings);
        matched++;
    }
    ck_assert_uint_eq(matched, json_object_size(expected));
    free(output);

    snprintf(command, sizeof(command),
             "%s/node_modules/@isaacs/"
             "string-locale-compare/package.json",
             folder);
    {
        json_t *findings = catalog_disk_file(&catalog_npm, command);
        const json_t *package =
            json_array_get(json_object_get(findings, "packages"), 0);

        ck_assert_str_eq(text_of(package, "purl"),
                         "pkg:npm/%40isaacs/string-locale-compare@1.1.0");
        json_decref(findings);
    }

    snprintf(command, sizeof(command), "rm -rf %s", folder);
    free(run_checked(command));
    json_decref(tree);
    json_decref(expected);
}
END_TEST

static const struct {
    const char *path;
    enum catalog_want want;
} npm_paths[] = {
    {"node_modules/semver/package.json", CATALOG_BUFFER},
    {"app/node_modules/@isaacs/cliui/package.json", CATALOG_BUFFER},
    {"app/node_modules/a/node_modules/b/package.json", CATALOG_BUFFER},
    {"app/package.json", CATALOG_SKIP},
    {"package.json", CATALOG_SKIP},
    {"app/node_modules/semver/lib/package.json", CATALOG_SKIP},
    {"app/node_modules/@scope/package.json", CATALOG_SKIP},
    {"app/node_modules/.bin/package.json", CATALOG_SKIP},
    {"app/node_modules/@a/b/c/package.json", CATALOG_SKIP},
    {"app/@a/b/package.json", CATALOG_SKIP},
};

START_TEST(npm_want_paths)
{
    ck_assert_msg(catalog_npm.want(npm_paths[_i].path, 10) ==
                      npm_paths[_i].want,
                  "%s", npm_paths[_i].path);
}
END_TEST

/* Returns a package.json text whose "x" member nests depth - 1 arrays,
 * so that the document nests depth levels. */
static char *
nested_package_json(size_t depth)
{
    char *text = malloc(2 * depth + 64);
    size_t used;

    ck_assert_ptr_nonnull(text);
    used = (size_t)snprintf(text, 64,
                            "{\"name\":\"a\",\"version\":\"1\","
                            "\"x\":");
    for (size_t i = 1; i < depth; i++)
        text[used++] = '[';
    for (size_t i = 1; i < depth; i++)
        text[used++] = ']';
    text[used++] = '}';
    text[used] = '\0';
    return text;
}

START_TEST(npm_licenses_and_problems)
{
    static const char path[] = "node_modules/a/package.json";
    char *nested;
    json_t *findings;
    const json_t *package;

    findings = catalog_text(&catalog_npm, path,
                            "{\"name\":\"a\",\"version\":\"1.0.0\","
                            "\"license\":{\"type\":\"MIT\",\"url\":\"x\"}}");
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(joined_licenses(package), "MIT");
    ck_assert_str_eq(text_of(package, "purl"), "pkg:npm/a@1.0.0");
    json_decref(findings);

    findings = catalog_text(&catalog_npm, path,
                            "{\"name\":\"a\",\"version\":\"1.0.0\","
                            "\"licenses\":[{\"type\":\"MIT\"},"
                            "{\"type\":\"Apache-2.0\"}]}");
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(joined_licenses(package), "MIT|Apache-2.0");
    json_decref(findings);

    nested = nested_package_json(PG_JSON_MAX_DEPTH);
    findings = catalog_text(&catalog_npm, path, nested);
    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    json_decref(findings);
    free(nested);
    nested = nested_package_json(PG_JSON_MAX_DEPTH + 1);
    findings = catalog_text(&catalog_npm, path, nested);
    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_str_eq(only_note(findings), "JSON nests deeper than 64 levels");
    json_decref(findings);
    free(nested);

    findings = catalog_text(&catalog_npm, path, "");
    ck_assert_uint_eq(count_of(findings, "packages"), 0);
    ck_assert_uint_eq(count_of(findings, "notes"), 1);
    json_decref(findings);
    findings = catalog_text(&catalog_npm, path, "{\n\"name\": \"a\",\n x}");
    ck_assert_str_eq(only_note(findings), "invalid JSON at line 3");
    json_decref(findings);
    findings = catalog_text(&catalog_npm, path, "{\"name\": 7}");
    ck_assert_str_eq(only_note(findings), "field name is not a string");
    json_decref(findings);
    findings = catalog_text(&catalog_npm, path, "{\"name\": \"a\"}");
    ck_assert_str_eq(only_note(findings), "field version is missing");
    json_decref(findings);
    findings = catalog_text(&catalog_npm, path, "[1]");
    ck_assert_str_eq(only_note(findings),
                     "the top-level JSON value is not an object");
    json_decref(findings);
    /* jansson rejects invalid UTF-8 as invalid JSON. */
    findings = catalog_text(&catalog_npm, path,
                            "{\"name\":\"caf\xe9\",\"version\":\"1\"}");
    ck_assert_str_eq(only_note(findings), "invalid JSON at line 1");
    json_decref(findings);
}
END_TEST

/* ---- Ruby ---- */

/* Prints name, version and licenses of each gemspec as Ruby loads it. */
#define RUBY_LOAD_SCRIPT                                                       \
    "ruby -e 'ARGV.each { |f| s = Gem::Specification.load(f); "                \
    "puts [f, s.name, s.version.to_s, s.licenses.join(\"|\")].join(\"\\t\") "  \
    "}'"

START_TEST(ruby_machine)
{
    char *output = run_checked(
        RUBY_LOAD_SCRIPT " /usr/share/rubygems-integration/all/specifications/"
                         "*.gemspec /usr/lib/ruby/gems/*/specifications/"
                         "*.gemspec /usr/lib/ruby/gems/*/specifications/"
                         "default/*.gemspec");
    size_t compared = 0;
    char *next;

    for (char *line = output; *line != '\0'; line = next) {
        char *fields[4];
        json_t *findings;
        const json_t *package;
        char expected_purl[512];

        next = strchr(line, '\n');
        ck_assert_ptr_nonnull(next);
        *next++ = '\0';
        ck_assert_uint_eq(split_tabs(line, fields, 4), 4);
        findings = catalog_disk_file(&catalog_ruby, fields[0]);
        package = json_array_get(json_object_get(findings, "packages"), 0);
        ck_assert_msg(package != NULL, "no package from %s", fields[0]);
        ck_assert_str_eq(text_of(package, "type"), "gem");
        ck_assert_str_eq(text_of(package, "name"), fields[1]);
        ck_assert_str_eq(text_of(package, "version"), fields[2]);
        ck_assert_str_eq(joined_licenses(package), fields[3]);
        ck_assert_str_eq(text_of(package, "path"), fields[0] + 1);
        snprintf(expected_purl, sizeof(expected_purl), "pkg:gem/%s@%s",
                 fields[1], fields[2]);
        ck_assert_str_eq(text_of(package, "purl"), expected_purl);
        ck_assert_uint_eq(count_of(findings, "notes"), 0);
        json_decref(findings);
        compared++;
    }
    ck_assert_uint_gt(compared, 5);
    free(output);
}
END_TEST

/* rake's gemspec against the version of the Debian package rake. */
START_TEST(ruby_rake_version)
{
    char *version = run_checked("dpkg-query -W -f='${Version}' rake");
    char *file =
        run_checked("dpkg -L rake | grep '/specifications/rake-.*\\.gemspec$'");
    char upstream[128];
    json_t *findings;
    const json_t *package;

    debian_upstream_version(version, upstream, sizeof(upstream));
    *strchr(file, '\n') = '\0';
    findings = catalog_disk_file(&catalog_ruby, file);
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(text_of(package, "name"), "rake");
    ck_assert_str_eq(text_of(package, "version"), upstream);
    json_decref(findings);
    free(file);
    free(version);
}
END_TEST

START_TEST(ruby_literals_and_problems)
{
    static const char path[] = "usr/lib/ruby/gems/3.1.0/specifications/"
                               "my-gem-1.0.0.gemspec";
    json_t *findings =
        catalog_text(&catalog_ruby, path,
                     "# -*- encoding: utf-8 -*-\n"
                     "Gem::Specification.new do |spec|\n"
                     "  spec.name = %q{my-gem}\n"
                     "  spec.version = '1.0.0'\n"
                     "  spec.authors = [\"Jos\\u00E9\".freeze]\n"
                     "  spec.license = \"Apache-2.0\".freeze\n"
                     "  spec.summary = \"caf\xe9\".freeze\n"
                     "  spec.name == \"comparison, not an assignment\"\n"
                     "end\n");
    const json_t *package =
        json_array_get(json_object_get(findings, "packages"), 0);

    ck_assert_str_eq(text_of(package, "name"), "my-gem");
    ck_assert_str_eq(text_of(package, "version"), "1.0.0");
    ck_assert_str_eq(joined_licenses(package), "Apache-2.0");
    ck_assert_str_eq(text_of(package, "purl"), "pkg:gem/my-gem@1.0.0");
    json_decref(findings);

    findings = catalog_text(&catalog_ruby, path,
                            "Gem::Specification.new do |s|\n"
                            "  s.name = \"caf\\xE9\\#{x}\"\n"
                            "  s.version = \"1\"\n"
                            "  s.licenses = [\"MIT\".freeze, 'Ruby']\n");
    package = json_array_get(json_object_get(findings, "packages"), 0);
    ck_assert_str_eq(text_of(package, "name"), "caf\xef\xbf\xbd#{x}");
    ck_assert_str_eq(joined_licenses(package), "MIT|Ruby");
    json_decref(findings);

    findings = catalog_text(&catalog_ruby, path,
                            "Gem::Specification.new do |s|\n"
                            "  s.name = \"a#{`id`}\"\n");
    ck_assert_str_eq(only_note(findings),
                     "line 2: name has string interpolation, which is not "
                     "evaluated");
    json_decref(findings);
    findings = catalog_text(&catalog_ruby, path,
                            "Gem::Specification.new do |s|\n"
                            "  s.name = \"a\"\n"
                            "  s.version = Gem::Version.new(\"1\")\n");
    ck_assert_str_eq(only_note(findings),
                     "line 3: version is not a string literal");
    json_decref(findings);
    findings = catalog_text(&catalog_ruby, path, "");
    ck_assert_str_eq(only_note(findings),
                     "no \"Gem::Specification.new do |VARIABLE|\" line in 0 "
                     "lines");
    json_decref(findings);
    findings = catalog_text(&catalog_ruby, path,
                            "Gem::Specification.new do |s|\n"
                            "  s.version = \"1\"\nend\n");
    ck_assert_str_eq(only_note(findings), "no name assignment in 3 lines");
    json_decref(findings);

    ck_assert_int_eq(catalog_ruby.want("x/specifications/default/a.gemspec", 1),
                     CATALOG_BUFFER);
    ck_assert_int_eq(catalog_ruby.want("specifications/a.gemspec", 1),
                     CATALOG_BUFFER);
    ck_assert_int_eq(catalog_ruby.want("src/a/a.gemspec", 1), CATALOG_SKIP);
    ck_assert_int_eq(catalog_ruby.want("x/myspecifications/a.gemspec", 1),
                     CATALOG_SKIP);
}
END_TEST

/* ---- apk ---- */

/* Two records as apk writes them, with the repeated F, R, a and Z lines
 * of the files each package owns. */
static const char apk_installed[] =
    "C:Q1kLGp4vk+Fhv0b0SkR9GuQ2Nbo+c=\n"
    "P:musl\n"
    "V:1.2.4-r2\n"
    "A:x86_64\n"
    "S:383152\n"
    "I:622592\n"
    "T:the musl c library (libc) implementation\n"
    "U:https://musl.libc.org/\n"
    "L:MIT\n"
    "o:musl\n"
    "m:Timo Ter\xc3\xa4s <timo.teras@iki.fi>\n"
    "t:1695137925\n"
    "c:ca7f2ab5e88794e4e654b40776f8a92256f50639\n"
    "p:so:libc.musl-x86_64.so.1=1\n"
    "F:lib\n"
    "R:ld-musl-x86_64.so.1\n"
    "a:0:0:755\n"
    "Z:Q1cJsX1r2wqyGHeE8hVYeVpGhvSKc=\n"
    "R:libc.musl-x86_64.so.1\n"
    "a:0:0:777\n"
    "Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=\n"
    "\n"
    "C:Q1Qm0hr1NqjQKJsRPYkcMhyc6Yqs4=\n"
    "P:musl-utils\n"
    "V:1.2.4-r2\n"
    "A:x86_64\n"
    "S:36938\n"
    "I:135168\n"
    "T:the musl c library (libc) implementation\n"
    "U:https://musl.libc.org/\n"
    "L:MIT AND BSD-2-Clause AND GPL-2.0-or-later\n"
    "o:musl\n"
    "m:Timo Ter\xc3\xa4s <timo.teras@iki.fi>\n"
    "t:1695137925\n"
    "c:ca7f2ab5e88794e4e654b40776f8a92256f50639\n"
    "D:scanelf so:libc.musl-x86_64.so.1\n"
    "p:cmd:getconf=1.2.4-r2 cmd:getent=1.2.4-r2 cmd:iconv=1.2.4-r2\n"
    "r:libiconv\n"
    "F:sbin\n"
    "R:ldconfig\n"
    "a:0:0:755\n"
    "Z:Q1Kja2+POZcDY5M1TYeHNMgKFVIRM=\n"
    "F:usr\n"
    "F:usr/bin\n"
    "R:getconf\n"
    "a:0:0:755\n"
    "Z:Q1T2wNXe7JPu8CBVN6lYRFVrr1hbo=\n"
    "\n";

START_TEST(apk_installed_records)
{
    static const char *const expected[][4] = {
        {"musl", "1.2.4-r2", "MIT", "musl"},
        {"musl-utils", "1.2.4-r2", "MIT AND BSD-2-Clause AND GPL-2.0-or-later",
         "musl"},
    };
    json_t *findings =
        catalog_text(&catalog_apk, "lib/apk/db/installed", apk_installed);

    ck_assert_uint_eq(count_of(findings, "packages"), 2);
    ck_assert_uint_eq(count_of(findings, "notes"), 0);
    for (size_t i = 0; i < 2; i++) {
        const json_t *package =
            json_array_get(json_object_get(findings, "packages"), i);
        const json_t *licenses = json_object_get(package, "licenses");

        ck_assert_str_eq(text_of(package, "type"), "apk");
        ck_assert_str_eq(text_of(package, "name"), expected[i][0]);
        ck_assert_str_eq(text_of(package, "version"), expected[i][1]);
        ck_assert_str_eq(text_of(package, "arch"), "x86_64");
        ck_assert_uint_eq(json_array_size(licenses), 1);
        ck_assert_str_eq(json_string_value(json_array_get(licenses, 0)),
                         expected[i][2]);
        ck_assert_str_eq(text_of(package, "source_name"), expected[i][3]);
        ck_assert_str_eq(text_of(package, "path"), "lib/apk/db/installed");
        ck_assert_ptr_null(json_object_get(package, "purl"));
        ck_assert_ptr_null(json_object_get(package, "source_version"));
        ck_assert_uint_eq(json_object_size(package), 7);
    }
    json_decref(findings);
}
END_TEST

START_TEST(apk_problems)
{
    json_t *findings = catalog_text(&catalog_apk, "lib/apk/db/installed",
                                    "P:a\nV:1\ngarbage\n\n"
                                    "V:2\n\n"
                                    "P:caf\xe9\nV:3");
    const json_t *package =
        json_array_get(json_object_get(findings, "packages"), 0);

    ck_assert_uint_eq(count_of(findings, "packages"), 1);
    ck_assert_str_eq(text_of(package, "name"), "caf\xef\xbf\xbd");
    ck_assert_ptr_null(json_object_get(package, "licenses"));
    ck_assert_str_eq(only_note(findings),
                     "line 3 is not a letter, a colon and a value (2 "
                     "problems in all)");
    json_decref(findings);

    findings = catalog_text(&catalog_apk, "lib/apk/db/installed", "");
    ck_assert_uint_eq(json_object_size(findings), 0);
    json_decref(findings);
    ck_assert_int_eq(catalog_apk.want("lib/apk/db/installed.new", 1),
                     CATALOG_SKIP);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("catalog");
    TCase *purl = tcase_create("purl");
    TCase *os = tcase_create("os-release");
    TCase *dpkg = tcase_create("dpkg");
    TCase *python = tcase_create("python");
    TCase *npm = tcase_create("npm");
    TCase *ruby = tcase_create("ruby");
    TCase *apk = tcase_create("apk");
    SRunner *runner;
    int failed;

    tcase_add_loop_test(purl, purl_spelled, 0,
                        sizeof(purl_cases) / sizeof(purl_cases[0]));
    tcase_add_test(purl, add_and_note);
    tcase_add_test(purl, notes_capped_per_layer);
    suite_add_tcase(suite, purl);

    tcase_add_test(os, os_release_machine);
    tcase_add_test(os, os_release_quoting);
    tcase_add_test(os, os_release_malformed);
    suite_add_tcase(suite, os);

    tcase_set_timeout(dpkg, 120);
    tcase_add_test(dpkg, dpkg_machine_status);
    tcase_add_test(dpkg, dpkg_status_d);
    tcase_add_test(dpkg, dpkg_status_values);
    tcase_add_test(dpkg, dpkg_hostile_lines);
    tcase_add_test(dpkg, dpkg_many_stanzas);
    tcase_add_test(dpkg, copyright_machine);
    tcase_add_test(dpkg, copyright_package_and_free_text);
    suite_add_tcase(suite, dpkg);

    tcase_set_timeout(python, 120);
    tcase_add_test(python, python_machine);
    tcase_add_test(python, python_debian_packages);
    tcase_add_test(python, python_egg_info_file);
    tcase_add_test(python, python_licenses_and_problems);
    suite_add_tcase(suite, python);

    tcase_set_timeout(npm, 300);
    tcase_add_test(npm, npm_installed_packages);
    tcase_add_loop_test(npm, npm_want_paths, 0,
                        sizeof(npm_paths) / sizeof(npm_paths[0]));
    tcase_add_test(npm, npm_licenses_and_problems);
    suite_add_tcase(suite, npm);

    tcase_set_timeout(ruby, 120);
    tcase_add_test(ruby, ruby_machine);
    tcase_add_test(ruby, ruby_rake_version);
    tcase_add_test(ruby, ruby_literals_and_problems);
    suite_add_tcase(suite, ruby);

    tcase_add_test(apk, apk_installed_records);
    tcase_add_test(apk, apk_problems);
    suite_add_tcase(suite, apk);

    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
