/*
 * Benchmark driver: evaluates policies on one large image document with
 * policy_evaluate, as a pullgate worker thread does once per image, and
 * prints what it cost as key=value lines.
 *
 * Usage: bench/policy_eval [SECONDS [ROUNDS]]
 *
 * The document is built here from a fixed pseudo-random sequence, so
 * every run evaluates the same bytes. It has 5,000 packages (4,600 deb
 * packages of a Debian 12 image, 250 pypi and 150 npm packages), 20,000
 * files in three layers, a config with environment, labels and history,
 * and three secret findings that no default rule denies. Only the root
 * user makes a default rule fire, so every rule that reads "files" or
 * "packages" goes through the whole list.
 *
 * Two policies are measured: the built-in default policy
 * (policy_load(NULL)), and the default policy plus three heavy rules, as
 * a directory of two files. Each round evaluates one policy for SECONDS
 * (default 1) and counts the evaluations; the median of ROUNDS rounds
 * (default 5) is printed. Exits 0, or 2 on a usage or setup error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/error.h"
#include "config/parse.h"
#include "policy/default_policy.h"
#include "policy/policy.h"

#define DEB_PACKAGES 4600
#define PYPI_PACKAGES 250
#define NPM_PACKAGES 150
#define FILES 20000

/* Upper bounds of the command line, so a typing mistake does not start
 * an hour-long run. */
#define SECONDS_MAX 600
#define ROUNDS_MAX 101

/*
 * The heavy rules: a minimum version over every package, a license
 * check over every package's licenses, and a size filter over every
 * file. None fires on the document, so none stops early.
 */
static const char heavy_rules[] =
    "version: 2\n"
    "rules:\n"
    "  - name: pre-release-packages\n"
    "    description: Warn about packages older than 0.0.1.\n"
    "    action: warn\n"
    "    when: >-\n"
    "      packages.exists(p, p.type in [\"deb\", \"npm\", \"pypi\"] &&\n"
    "        compareVersions(p.type, p.version, \"0.0.1\") < 0)\n"
    "    message: image has a package older than 0.0.1\n"
    "  - name: agpl-licenses\n"
    "    action: deny\n"
    "    when: >-\n"
    "      packages.exists(p, has(p.licenses) &&\n"
    "        p.licenses.exists(l, l.startsWith(\"AGPL\")))\n"
    "    message: image contains AGPL software\n"
    "  - name: huge-files\n"
    "    action: warn\n"
    "    when: >-\n"
    "      files.filter(f, f.present && f.type == \"file\" &&\n"
    "        f.size > 512 * 1024 * 1024).size() > 0\n"
    "    message: image has a file over 512 MiB\n";

static double
clock_seconds(clockid_t clock)
{
    struct timespec now;

    clock_gettime(clock, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* A 64-bit linear congruential generator (Knuth's MMIX constants): the
 * same sequence on every machine, which is all the document needs. */
static uint64_t
next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return *state >> 33;
}

/* Returns a Debian version such as "2.36-9+deb12u4" or "1:8.9p1-3",
 * valid by dpkg's rules. */
static void
deb_version(uint64_t *rng, char *out, size_t size)
{
    unsigned major = 1 + (unsigned)(next_random(rng) % 12);
    unsigned minor = (unsigned)(next_random(rng) % 40);
    unsigned patch = (unsigned)(next_random(rng) % 20);
    unsigned revision = 1 + (unsigned)(next_random(rng) % 9);

    switch (next_random(rng) % 4) {
    case 0:
        snprintf(out, size, "1:%u.%u.%u-%u", major, minor, patch, revision);
        break;
    case 1:
        snprintf(out, size, "%u.%u-%u+deb12u%u", major, minor, revision,
                 1 + patch % 5);
        break;
    default:
        snprintf(out, size, "%u.%u.%u-%u", major, minor, patch, revision);
        break;
    }
}

static const char *const licenses[] = {
    "GPL-2.0-or-later", "LGPL-2.1-or-later", "MIT",           "BSD-3-Clause",
    "Apache-2.0",       "GPL-3.0-only",      "Zlib",          "ISC",
    "MPL-2.0",          "Artistic-2.0",      "public-domain",
};

#define LICENSE_COUNT (sizeof(licenses) / sizeof(licenses[0]))

/* Returns a list of one or two licenses; NULL when memory is short. */
static json_t *
license_list(uint64_t *rng)
{
    json_t *list = json_array();
    size_t count = 1 + next_random(rng) % 2;

    for (size_t i = 0; list != NULL && i < count; i++) {
        const char *name = licenses[next_random(rng) % LICENSE_COUNT];

        if (json_array_append_new(list, json_string(name)) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* Copies version into out with "+" and ":" percent-encoded, as a package
 * URL's version is written. */
static void
purl_version(const char *version, char *out, size_t size)
{
    size_t used = 0;

    for (const char *c = version; *c != '\0' && used + 4 < size; c++) {
        if (*c == '+' || *c == ':')
            used += (size_t)snprintf(out + used, size - used, "%%%02X",
                                     (unsigned char)*c);
        else
            out[used++] = *c;
    }
    out[used] = '\0';
}

/* Appends one deb package to packages; returns 0, or -1 when memory is
 * short. */
static int
add_deb_package(json_t *packages, uint64_t *rng, unsigned index)
{
    char name[64], source[64], version[64], encoded[96], purl[256];
    json_t *package;

    snprintf(name, sizeof(name), "lib%c%c%c%u-%u",
             (char)('a' + next_random(rng) % 26),
             (char)('a' + next_random(rng) % 26),
             (char)('a' + next_random(rng) % 26), index, index % 7);
    snprintf(source, sizeof(source), "src%u", index / 3);
    deb_version(rng, version, sizeof(version));

    purl_version(version, encoded, sizeof(encoded));
    snprintf(purl, sizeof(purl),
             "pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12", name, encoded);
    package = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}}",
        "type", "deb", "name", name, "version", version, "path",
        "var/lib/dpkg/status", "layer", 0, "purl", purl, "arch", "amd64",
        "source_name", source, "source_version", version, "licenses",
        license_list(rng), "distro", "id", "debian", "version_id", "12");
    return json_array_append_new(packages, package);
}

/* Appends a pypi (layer 1) or npm (layer 2) package. */
static int
add_language_package(json_t *packages, uint64_t *rng, unsigned index,
                     int is_pypi)
{
    char name[64], version[32], path[256], purl[256];
    json_t *package;

    snprintf(name, sizeof(name), "%s-module-%u", is_pypi ? "py" : "js", index);
    snprintf(version, sizeof(version), "%u.%u.%u",
             1 + (unsigned)(next_random(rng) % 9),
             (unsigned)(next_random(rng) % 30),
             (unsigned)(next_random(rng) % 15));
    if (is_pypi)
        snprintf(path, sizeof(path),
                 "usr/local/lib/python3.11/site-packages/%s-%s.dist-info/"
                 "METADATA",
                 name, version);
    else
        snprintf(path, sizeof(path), "usr/lib/node_modules/%s/package.json",
                 name);
    snprintf(purl, sizeof(purl), "pkg:%s/%s@%s", is_pypi ? "pypi" : "npm", name,
             version);
    package = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:o}", "type",
                        is_pypi ? "pypi" : "npm", "name", name, "version",
                        version, "path", path, "layer", is_pypi ? 1 : 2, "purl",
                        purl, "licenses", license_list(rng));
    return json_array_append_new(packages, package);
}

static json_t *
make_packages(uint64_t *rng)
{
    json_t *packages = json_array();
    int rc = packages != NULL ? 0 : -1;

    for (unsigned i = 0; rc == 0 && i < DEB_PACKAGES; i++)
        rc = add_deb_package(packages, rng, i);
    for (unsigned i = 0; rc == 0 && i < PYPI_PACKAGES; i++)
        rc = add_language_package(packages, rng, i, 1);
    for (unsigned i = 0; rc == 0 && i < NPM_PACKAGES; i++)
        rc = add_language_package(packages, rng, i, 0);
    if (rc < 0) {
        json_decref(packages);
        return NULL;
    }
    return packages;
}

/*
 * Appends file index: one directory in 10, one symlink in 8, the rest
 * regular files of up to 4 MiB under usr/, spread over three layers. One
 * file in 20 of the first layer is replaced by a later one and so is not
 * present.
 */
static int
add_file(json_t *files, uint64_t *rng, unsigned index)
{
    static const char *const roots[] = {
        "usr/lib/x86_64-linux-gnu",
        "usr/share/doc",
        "usr/bin",
        "usr/share/locale",
        "etc",
        "usr/local/lib/python3.11/site-packages",
    };
    unsigned layer = index < FILES * 7 / 10   ? 0
                     : index < FILES * 9 / 10 ? 1
                                              : 2;
    const char *root = roots[next_random(rng) % 6];
    char path[256];
    json_t *file;

    snprintf(path, sizeof(path), "%s/entry%u/file%u", root, index / 16, index);
    if (index % 10 == 0)
        file = json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:b}", "path",
                         path, "layer", layer, "type", "dir", "mode", 0755,
                         "size", 0, "uid", 0, "gid", 0, "present", 1);
    else if (index % 8 == 0)
        file = json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:b, s:s}",
                         "path", path, "layer", layer, "type", "symlink",
                         "mode", 0777, "size", 0, "uid", 0, "gid", 0, "present",
                         1, "link", "../lib/target");
    else
        file =
            json_pack("{s:s, s:i, s:s, s:i, s:I, s:i, s:i, s:b}", "path", path,
                      "layer", layer, "type", "file", "mode", 0644, "size",
                      (json_int_t)(next_random(rng) % (4u << 20)), "uid", 0,
                      "gid", 0, "present", !(layer == 0 && index % 20 == 1));
    return json_array_append_new(files, file);
}

static json_t *
make_files(uint64_t *rng)
{
    json_t *files = json_array();
    int rc = files != NULL ? 0 : -1;

    for (unsigned i = 0; rc == 0 && i < FILES; i++)
        rc = add_file(files, rng, i);
    if (rc < 0) {
        json_decref(files);
        return NULL;
    }
    return files;
}

/* The parts of the document that do not grow: a config of a typical
 * Debian-based application image, run as root so the default policy's
 * warn rule fires, and secret findings that no default rule denies. */
static const char document_frame[] =
    "{\"document_version\": 2, \"inspector_version\": \"3\","
    " \"kind\": \"image\","
    " \"source\": {\"registry\": \"docker.io\","
    "  \"repository\": \"library/app\", \"reference\": \"1.0\"},"
    " \"manifest\": {\"digest\": \"sha256:0000000000000000000000000000000000"
    "000000000000000000000000000000\","
    "  \"media_type\": \"application/vnd.oci.image.manifest.v1+json\","
    "  \"config_digest\": \"sha256:1111111111111111111111111111111111111111"
    "111111111111111111111111\","
    "  \"config_media_type\": \"application/vnd.oci.image.config.v1+json\","
    "  \"annotations\": {\"org.opencontainers.image.base.name\":"
    "   \"docker.io/library/debian:12\"}},"
    " \"inspection\": {\"status\": \"ok\", \"notes\": []},"
    " \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"},"
    " \"config\": {\"user\": \"\","
    "  \"env\": [{\"name\": \"PATH\", \"value\": \"/usr/local/sbin:/usr/local/"
    "bin:/usr/sbin:/usr/bin:/sbin:/bin\"}, {\"name\": \"LANG\", \"value\":"
    " \"C.UTF-8\"}, {\"name\": \"PYTHON_VERSION\", \"value\": \"3.11.9\"},"
    "   {\"name\": \"NODE_VERSION\", \"value\": \"20.12.2\"},"
    "   {\"name\": \"APP_HOME\", \"value\": \"/srv/app\"}],"
    "  \"exposed_ports\": [\"8080/tcp\"], \"volumes\": [\"/data\"],"
    "  \"labels\": {\"org.opencontainers.image.source\":"
    "   \"https://git.example.com/app\", \"team\": \"payments\"},"
    "  \"entrypoint\": [\"/srv/app/run\"], \"cmd\": [\"--serve\"],"
    "  \"working_dir\": \"/srv/app\", \"created\": \"2026-11-30T10:00:00Z\","
    "  \"history\": [{\"created\": \"2026-11-01T00:00:00Z\", \"created_by\":"
    "   \"/bin/sh -c #(nop) ADD file:2b1a8fe9e9c2 in / \", \"empty_layer\":"
    "   false, \"comment\": \"\"}, {\"created\": \"2026-11-30T10:00:00Z\","
    "   \"created_by\": \"RUN /bin/sh -c pip install -r requirements.txt #"
    " buildkit\", \"empty_layer\": false, \"comment\": \"\"},"
    "   {\"created\": \"2026-11-30T10:00:01Z\", \"created_by\": \"RUN /bin/sh"
    " -c npm ci # buildkit\", \"empty_layer\": false, \"comment\": \"\"}],"
    "  \"dockerfile\": [{\"instruction\": \"ADD\", \"value\":"
    "   \"file:2b1a8fe9e9c2 in /\"}, {\"instruction\": \"RUN\", \"value\":"
    "   \"pip install -r requirements.txt # buildkit\"},"
    "   {\"instruction\": \"RUN\", \"value\": \"npm ci # buildkit\"}]},"
    " \"rootfs\": {\"diff_ids\": [\"sha256:d0\", \"sha256:d1\","
    "  \"sha256:d2\"]},"
    " \"layers\": [{\"index\": 0, \"digest\": \"sha256:l0\", \"media_type\":"
    "  \"application/vnd.oci.image.layer.v1.tar+gzip\", \"size\": 30000000,"
    "  \"entries\": 14000, \"bytes\": 90000000}, {\"index\": 1, \"digest\":"
    "  \"sha256:l1\", \"media_type\":"
    "  \"application/vnd.oci.image.layer.v1.tar+gzip\", \"size\": 9000000,"
    "  \"entries\": 4000, \"bytes\": 30000000}, {\"index\": 2, \"digest\":"
    "  \"sha256:l2\", \"media_type\":"
    "  \"application/vnd.oci.image.layer.v1.tar+gzip\", \"size\": 6000000,"
    "  \"entries\": 2000, \"bytes\": 20000000}],"
    " \"os\": {\"path\": \"etc/os-release\", \"layer\": 0, \"id\": \"debian\","
    "  \"version_id\": \"12\", \"name\": \"Debian GNU/Linux\","
    "  \"pretty_name\": \"Debian GNU/Linux 12 (bookworm)\","
    "  \"version_codename\": \"bookworm\"},"
    " \"secrets\": [{\"rule\": \"url-password\", \"source\": \"layer\","
    "  \"path\": \"usr/share/doc/curl/examples/ftp.txt\", \"line\": 12,"
    "  \"layer\": 0, \"present\": true}, {\"rule\": \"slack-webhook\","
    "  \"source\": \"layer\", \"path\": \"srv/app/README.md\", \"line\": 40,"
    "  \"layer\": 2, \"present\": true}, {\"rule\": \"docker-config-auth\","
    "  \"source\": \"layer\", \"path\": \"usr/share/doc/app/example.json\","
    "  \"line\": 3, \"layer\": 2, \"present\": true}],"
    " \"base_image\": {\"name\": \"docker.io/library/debian:12\","
    "  \"digest\": \"\", \"source\": \"annotation\"}}";

/* Builds the benchmark document; NULL when memory is short. */
static json_t *
make_document(void)
{
    uint64_t rng = 20261204;
    json_t *document = json_loads(document_frame, 0, NULL);
    json_t *packages = make_packages(&rng);
    json_t *files = make_files(&rng);
    json_t *summary =
        json_pack("{s:i, s:i, s:i, s:[], s:[], s:i, s:i}", "layers", 3, "files",
                  FILES, "present_files", FILES - FILES * 7 / 10 / 20,
                  "setuid_files", "world_writable", "packages",
                  DEB_PACKAGES + PYPI_PACKAGES + NPM_PACKAGES, "secrets", 3);

    if (document == NULL || packages == NULL || files == NULL ||
        summary == NULL ||
        json_object_set_new(document, "packages", packages) < 0 ||
        json_object_set_new(document, "files", files) < 0 ||
        json_object_set_new(document, "summary", summary) < 0) {
        json_decref(document);
        return NULL;
    }
    return document;
}

/*
 * Writes the default policy and the heavy rules as two files of a new
 * directory under TMPDIR, loads it and removes the files again. Returns
 * the policy, or NULL after printing why.
 */
static struct policy *
load_heavy_policy(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], first[4200], second[4200];
    struct pg_error *err = NULL;
    struct policy *policy = NULL;
    FILE *file;

    snprintf(dir, sizeof(dir), "%s/pg-policy-eval-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "policy_eval: mkdtemp %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    snprintf(first, sizeof(first), "%s/00-default.yaml", dir);
    snprintf(second, sizeof(second), "%s/10-heavy.yaml", dir);
    file = fopen(first, "w");
    if (file != NULL) {
        fwrite(policy_default_yaml, 1, policy_default_yaml_len, file);
        fclose(file);
    }
    file = fopen(second, "w");
    if (file != NULL) {
        fputs(heavy_rules, file);
        fclose(file);
    }
    policy = policy_load(dir, &err);
    if (policy == NULL)
        fprintf(stderr, "policy_eval: the heavy policy failed to load: %s\n",
                err != NULL ? err->message : "no error was returned");
    pg_error_free(err);
    unlink(second);
    unlink(first);
    rmdir(dir);
    return policy;
}

static int
compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/*
 * Evaluates policy on document for rounds rounds of seconds each and
 * prints NAME_* lines: the findings of one evaluation, then the medians
 * of evaluations per second, wall and CPU microseconds per evaluation.
 * Returns 0, or -1 when an evaluation fails.
 */
static int
measure(const char *name, const struct policy *policy, const json_t *document,
        double seconds, unsigned rounds)
{
    double rates[ROUNDS_MAX], cpu[ROUNDS_MAX];
    struct pg_error *err = NULL;
    json_t *result = policy_evaluate(policy, document, &err);
    const json_t *finding;
    size_t i;

    if (result == NULL) {
        fprintf(stderr, "policy_eval: %s: %s\n", name,
                err != NULL ? err->message : "no error was returned");
        pg_error_free(err);
        return -1;
    }
    json_array_foreach(json_object_get(result, "findings"), i, finding)
    {
        printf("%s_finding=%s %s: %s\n", name,
               json_string_value(json_object_get(finding, "action")),
               json_string_value(json_object_get(finding, "rule")),
               json_string_value(json_object_get(finding, "message")));
    }
    json_decref(result);

    /* CPU time is the thread's own, so it stays near the same when other
     * processes share the CPUs, while the rate by wall time drops. */
    for (unsigned round = 0; round < rounds; round++) {
        double start = clock_seconds(CLOCK_MONOTONIC), elapsed;
        double cpu_start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        unsigned long count = 0;

        do {
            json_decref(policy_evaluate(policy, document, NULL));
            count++;
            elapsed = clock_seconds(CLOCK_MONOTONIC) - start;
        } while (elapsed < seconds);
        rates[round] = (double)count / elapsed;
        cpu[round] = (clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start) /
                     (double)count * 1e6;
    }
    qsort(rates, rounds, sizeof(rates[0]), compare_doubles);
    qsort(cpu, rounds, sizeof(cpu[0]), compare_doubles);
    printf("%s_policy_digest=%s\n", name, policy_digest(policy));
    printf("%s_evaluations_per_second=%.1f\n", name, rates[rounds / 2]);
    printf("%s_microseconds_per_evaluation=%.0f\n", name,
           1e6 / rates[rounds / 2]);
    printf("%s_cpu_microseconds_per_evaluation=%.0f\n", name, cpu[rounds / 2]);
    printf("%s_rounds_min_max=%.1f %.1f\n", name, rates[0], rates[rounds - 1]);
    return 0;
}

/* Parses a positive integer argument no larger than max; exits 2 when it
 * is not one. */
static unsigned
argument(const char *text, uint64_t max, const char *what)
{
    uint64_t value = 0;

    if (pg_parse_u64(text, max, &value) < 0 || value == 0) {
        fprintf(stderr,
                "policy_eval: invalid %s \"%s\"; give a whole number from 1 "
                "to %llu\n",
                what, text, (unsigned long long)max);
        exit(2);
    }
    return (unsigned)value;
}

int
main(int argc, char **argv)
{
    unsigned seconds = argc > 1 ? argument(argv[1], SECONDS_MAX, "SECONDS") : 1;
    unsigned rounds = argc > 2 ? argument(argv[2], ROUNDS_MAX, "ROUNDS") : 5;
    struct pg_error *err = NULL;
    struct policy *builtin, *heavy;
    json_t *document;
    char *text;
    int rc;

    if (argc > 3) {
        fputs("usage: policy_eval [SECONDS [ROUNDS]]\n", stderr);
        return 2;
    }
    document = make_document();
    builtin = policy_load(NULL, &err);
    heavy = load_heavy_policy();
    if (document == NULL || builtin == NULL || heavy == NULL) {
        fprintf(stderr, "policy_eval: setup failed: %s\n",
                err != NULL ? err->message : "see above, or out of memory");
        return 2;
    }

    text = json_dumps(document, JSON_COMPACT);
    printf("packages=%zu\n",
           json_array_size(json_object_get(document, "packages")));
    printf("files=%zu\n", json_array_size(json_object_get(document, "files")));
    printf("document_bytes=%zu\n", text != NULL ? strlen(text) : 0);
    printf("seconds_per_round=%u\nrounds=%u\n", seconds, rounds);
    free(text);

    rc = measure("default", builtin, document, seconds, rounds);
    if (rc == 0)
        rc = measure("heavy", heavy, document, seconds, rounds);
    policy_free(heavy);
    policy_free(builtin);
    json_decref(document);
    return rc == 0 ? 0 : 2;
}
