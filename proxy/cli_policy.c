/*
 * `pullgate policy eval`, `lint` and `test`.
 *
 * eval and lint are thin: they hand an expression to the CEL parser,
 * checker and evaluator, or a path to policy_lint, and print the result.
 * test reads test files (YAML, see test_usage) and builds an image
 * document for each test case. It runs the steps the proxy runs for a
 * pull: the source rules first, whose denial ends the check, then the
 * content rules over the document, then scope and exceptions for the
 * test's image reference and time. Then it compares the verdict with the
 * expected decision and rule names.
 */
#include "proxy/cli_policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "config/error.h"
#include "config/limits.h"
#include "config/log.h"
#include "config/parse.h"
#include "config/utf8.h"
#include "config/yaml.h"
#include "inspector/inspector.h"
#include "policy/cel.h"
#include "policy/cel_check.h"
#include "policy/policy.h"
#include "proxy/cli_inspect.h"
#include "proxy/reference.h"
#include "proxy/route.h"

/*
 * Bytes of an input object or image document read from a file. An image
 * document lists every file of every layer, at an estimated 150 to 250
 * bytes each, so this leaves room for about a million files.
 */
#define CLI_POLICY_INPUT_MAX_BYTES (256u * 1024 * 1024)

/* Test files in one policy directory. */
#define CLI_POLICY_TEST_FILES_MAX 1000

/* Tests in one test file. */
#define CLI_POLICY_TESTS_MAX 10000

/* Bytes of one test's name. */
#define CLI_POLICY_TEST_NAME_MAX 200

/* Problems printed for one test file. The rest are only counted. */
#define CLI_POLICY_PROBLEMS_SHOWN_MAX 50

/* Bytes of a path built from a folder and a file name. */
#define CLI_POLICY_PATH_MAX 4096

/* Bytes of an image's platform, OS/ARCH[/VARIANT], as a test prints it.
 * A longer one is cut. */
#define CLI_POLICY_PLATFORM_MAX 256

/* Bytes of a test's image reference: a registry host, '/', a repository
 * name, ':' and a tag, '@' and a digest. */
#define CLI_POLICY_IMAGE_MAX                                                   \
    (PG_REGISTRY_HOST_MAX + PG_NAME_MAX + PG_TAG_MAX + PG_DIGEST_MAX + 3)

/* Symbolic links followed from the --junit path to the file it names,
 * as many as Linux follows (MAXSYMLINKS). */
#define CLI_POLICY_SYMLINKS_MAX 40

/* Bytes read from a file at a time while its size is not known. */
#define READ_CHUNK_BYTES (64u * 1024)

/* The request of a test without "image". The .invalid top-level domain
 * is reserved (RFC 2606), so it names no real registry. */
#define DEFAULT_IMAGE "registry.invalid/test:latest"

#define OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"

static const char policy_usage[] =
    "Usage: pullgate policy eval --expr EXPR [--input FILE|-]\n"
    "       pullgate policy lint [--now TIME] PATH\n"
    "       pullgate policy test PATH [--junit FILE]\n"
    "\n"
    "eval prints the value of a CEL expression, lint checks a policy file\n"
    "or directory, and test runs the test files written beside a policy.\n"
    "See pullgate policy SUBCOMMAND --help.\n";

static const char eval_usage[] =
    "Usage: pullgate policy eval --expr EXPR [--input FILE|-]\n"
    "\n"
    "Evaluates one CEL expression and prints its value as JSON. The members\n"
    "of the input object are the expression's variables, so a rule's\n"
    "condition can be tried on a real image document:\n"
    "\n"
    "  pullgate inspect IMAGE > document.json\n"
    "  pullgate policy eval --input document.json --expr 'config.user'\n"
    "\n"
    "Options:\n"
    "  -e, --expr EXPR     the CEL expression (required)\n"
    "  -i, --input FILE    a JSON object whose members are the variables, at\n"
    "                      most 256 MiB; - reads standard input (default: no\n"
    "                      variables)\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Exit status: 0 when the value was printed, 1 when the expression is\n"
    "invalid or fails to evaluate, 2 for a command-line error or an invalid\n"
    "input file.\n";

static const char lint_usage[] =
    "Usage: pullgate policy lint [--now TIME] PATH\n"
    "\n"
    "Checks the policy file or directory PATH and prints every problem as\n"
    "FILE:LINE:COLUMN: error: MESSAGE (or warning:), then the number of\n"
    "errors and warnings. An exception that has expired is a warning.\n"
    "\n"
    "Options:\n"
    "  --now TIME          judge expiry at TIME (YYYY-MM-DD or an RFC 3339\n"
    "                      time) instead of now, such as a date next month\n"
    "                      to see which exceptions are about to expire\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Exit status: 0 when the policy has no error, 1 when it has one, 2 for a\n"
    "command-line error.\n";

static const char test_usage[] =
    "Usage: pullgate policy test PATH [--junit FILE]\n"
    "\n"
    "Runs the test files of the policy file or directory PATH: X.test.yaml\n"
    "and X.test.yml beside a policy file X.yaml, or every *.test.yaml and\n"
    "*.test.yml file in a policy directory, in bytewise name order. Prints\n"
    "\"ok NAME\" or \"FAIL NAME: what differed\" for each test, then the\n"
    "number that passed and failed. A test file lists tests like this:\n"
    "\n"
    "  tests:\n"
    "    - name: root image warns\n"
    "      image: docker.io/library/app:1  # default " DEFAULT_IMAGE "\n"
    "      document: inputs/root.json      # a JSON image document, or\n"
    "      # layout: layouts/app           # an OCI image layout, inspected,\n"
    "      # layout_reference: v1          # with the manifest of this tag,\n"
    "      # platform: linux/arm64         # and this platform of an index,\n"
    "      # inline: {config: {user: root}}  # or members over an empty image\n"
    "      now: 2027-01-01                 # time for exception expiry\n"
    "      expect:\n"
    "        decision: deny                # required: allow or deny\n"
    "        denied: [no-secrets]          # optional: the exact rule names\n"
    "        warnings: [root-user]\n"
    "        excepted: []\n"
    "\n"
    "Paths are relative to the test file. Without document, layout or\n"
    "inline a test uses the empty image document: no files, packages or\n"
    "secrets, and config.user \"\". image is read as the proxy reads a\n"
    "request: registry names ignore case, index.docker.io and\n"
    "registry-1.docker.io are docker.io, and a Docker Hub name of one\n"
    "component gets library/. platform is OS/ARCH[/VARIANT]; the default\n"
    "is " CLI_DEFAULT_PLATFORM ". When the layout's index has several\n"
    "platforms, the test's line ends with the one used, such as\n"
    "\"(platform linux/amd64)\". now is a date (midnight UTC) or an\n"
    "RFC 3339 time; the default is the current time. Rules are checked as\n"
    "the proxy checks a pull: when a source rule denies the image, that is\n"
    "the verdict, else the content rules decide.\n"
    "\n"
    "Options:\n"
    "      --junit FILE    also write the results to FILE as JUnit XML\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Exit status: 0 when every test passed, 1 when one failed, 2 for a\n"
    "command-line error, an invalid policy or test file, an input a test\n"
    "could not read, or a policy without test files.\n";

/* ---- shared steps ---- */

static int usage_error(const char *usage, const char *subcommand,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "pullgate policy SUBCOMMAND: MESSAGE" and the subcommand's usage
 * to standard error, and returns CLI_POLICY_EXIT_USAGE. */
static int
usage_error(const char *usage, const char *subcommand, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "pullgate policy %s: ", subcommand);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    fputs(usage, stderr);
    return CLI_POLICY_EXIT_USAGE;
}

/* Returns the usage error for the option getopt_long rejected last: an
 * unknown option, or one without its value. */
static int
option_error(const char *usage, const char *subcommand, int opt, char **argv)
{
    const char *last = argv[optind - 1];
    char short_option[3] = {'-', (char)optopt, '\0'};
    const char *option =
        strncmp(last, "--", 2) == 0 || optopt == 0 ? last : short_option;

    if (opt == ':')
        return usage_error(usage, subcommand, "option %s needs a value",
                           option);
    return usage_error(usage, subcommand, "unknown option %s", option);
}

/* Flushes standard output. Returns status, or CLI_POLICY_EXIT_FAILED
 * after a message when the output could not be written. */
static int
finish_output(const char *subcommand, int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr,
                "pullgate policy %s: cannot write to standard output: %s\n",
                subcommand, strerror(errno));
        return CLI_POLICY_EXIT_FAILED;
    }
    return status;
}

/*
 * Reads the file at path, or standard input for "-", into *bytes with a
 * NUL byte after the last one; the caller frees *bytes. shown names the
 * file in errors. Fails when the file has more than max bytes.
 */
static int
read_limited(const char *path, const char *shown, size_t max, char **bytes,
             size_t *len, struct pg_error **err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    size_t cap = 0, used = 0;
    char *buf = NULL;

    *bytes = NULL;
    if (in == NULL) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "%s: cannot open: %s", shown,
                     strerror(errno));
        return -1;
    }
    while (!feof(in) && !ferror(in)) {
        if (used == cap) {
            size_t next = cap == 0 ? READ_CHUNK_BYTES : cap * 2;
            char *grown;

            if (cap > max)
                break;
            next = next > max + 1 ? max + 1 : next;
            grown = realloc(buf, next + 1);
            if (grown == NULL) {
                pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "%s: out of memory",
                             shown);
                goto fail;
            }
            buf = grown;
            cap = next;
        }
        used += fread(buf + used, 1, cap - used, in);
    }
    if (ferror(in)) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "%s: cannot read: %s", shown,
                     strerror(errno));
        goto fail;
    }
    if (used > max) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "%s: larger than the %zu bytes pullgate reads", shown,
                     max);
        goto fail;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "%s: out of memory", shown);
        goto fail;
    }
    buf[used] = '\0';
    if (!is_stdin)
        fclose(in);
    *bytes = buf;
    *len = used;
    return 0;
fail:
    if (!is_stdin)
        fclose(in);
    free(buf);
    return -1;
}

static const char *
json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/*
 * Reads the JSON object in the file at path ("-" for standard input),
 * named shown in errors ("FILE:LINE:COLUMN: invalid JSON: ..." for
 * syntax). Returns it, or NULL with an error.
 */
static json_t *
load_object(const char *path, const char *shown, struct pg_error **err)
{
    json_error_t jerr;
    json_t *value;
    char *bytes;
    size_t len;

    if (read_limited(path, shown, CLI_POLICY_INPUT_MAX_BYTES, &bytes, &len,
                     err) < 0)
        return NULL;
    if (!pg_json_depth_within(bytes, len, PG_JSON_MAX_DEPTH)) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "%s: JSON nested deeper than %d levels", shown,
                     PG_JSON_MAX_DEPTH);
        free(bytes);
        return NULL;
    }
    value = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    free(bytes);
    if (value == NULL) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "%s:%d:%d: invalid JSON: %s",
                     shown, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(value)) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "%s: the JSON value is %s, not an object; give an "
                     "object such as an image document",
                     shown, json_type_name(value));
        json_decref(value);
        return NULL;
    }
    return value;
}

/* ---- eval ---- */

/* Prints the checker's problems of the expression. Returns the number of
 * errors among them, or -1 when the check could not run. */
static int
check_expression(const struct cel_ast *ast)
{
    struct cel_check_result result = {0};
    struct pg_error *err = NULL;
    size_t i;
    json_t *problem;
    int errors = 0;

    if (cel_check(ast, CEL_ENV_ANY, NULL, &result, &err) < 0) {
        fprintf(stderr, "pullgate: policy eval: %s\n",
                err != NULL ? err->message : "out of memory");
        pg_error_free(err);
        return -1;
    }
    json_array_foreach(result.problems, i, problem)
    {
        const char *severity =
            json_string_value(json_object_get(problem, "severity"));
        bool is_error = severity == NULL || strcmp(severity, "error") == 0;

        fprintf(
            stderr, "pullgate: policy eval: --expr:%lld:%lld: %s%s\n",
            (long long)json_integer_value(json_object_get(problem, "line")),
            (long long)json_integer_value(json_object_get(problem, "column")),
            is_error ? "" : "warning: ",
            json_string_value(json_object_get(problem, "message")));
        errors += is_error;
    }
    json_decref(result.problems);
    return errors;
}

/* Parses, checks and evaluates expr over the input object in the file
 * input_path (NULL for none) and prints its value. Returns the exit
 * status. */
static int
eval_run(const char *expr, const char *input_path)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = NULL;
    json_t *input = NULL, *value = NULL;
    int status = CLI_POLICY_EXIT_FAILED;

    if (input_path != NULL) {
        input = load_object(
            input_path,
            strcmp(input_path, "-") == 0 ? "standard input" : input_path, &err);
        if (input == NULL) {
            status = CLI_POLICY_EXIT_USAGE;
            goto out;
        }
    }
    ast = cel_parse(expr, strlen(expr), "--expr", &err);
    if (ast == NULL || check_expression(ast) != 0)
        goto out;

    value = cel_eval(ast, input, &err);
    if (value == NULL && err != NULL && err->status != 503) {
        /* A runtime error is "LINE:COLUMN: message" without the origin. */
        fprintf(stderr, "pullgate: policy eval: --expr:%s\n", err->message);
        pg_error_clear(&err);
        goto out;
    }
    if (value == NULL)
        goto out;
    if (json_dumpf(value, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0 ||
        fputc('\n', stdout) == EOF) {
        pg_error_set(&err, 503, PG_ERR_UNAVAILABLE,
                     "cannot write to standard output: %s", strerror(errno));
        goto out;
    }
    status = finish_output("eval", CLI_POLICY_EXIT_OK);
out:
    if (err != NULL)
        fprintf(stderr, "pullgate: policy eval: %s\n", err->message);
    pg_error_free(err);
    json_decref(value);
    json_decref(input);
    cel_ast_free(ast);
    return status;
}

static int
eval_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"expr", required_argument, NULL, 'e'},
        {"input", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *expr = NULL, *input_path = NULL;
    int opt;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":e:i:h", options, NULL)) != -1) {
        if (opt == 'e') {
            expr = optarg;
        } else if (opt == 'i') {
            input_path = optarg;
        } else if (opt == 'h') {
            fputs(eval_usage, stdout);
            return CLI_POLICY_EXIT_OK;
        } else {
            return option_error(eval_usage, "eval", opt, argv);
        }
    }
    if (optind < argc)
        return usage_error(eval_usage, "eval",
                           "unexpected argument \"%s\"; quote the whole "
                           "expression after --expr",
                           argv[optind]);
    if (expr == NULL)
        return usage_error(eval_usage, "eval",
                           "missing --expr; give the expression to evaluate");
    return eval_run(expr, input_path);
}

/* ---- lint ---- */

/* Prints one problem of policy_lint as FILE:LINE:COLUMN: SEVERITY:
 * MESSAGE, leaving out a line or column that is 0. */
static void
print_problem(FILE *out, const json_t *problem)
{
    const char *file = json_string_value(json_object_get(problem, "file"));
    json_int_t line = json_integer_value(json_object_get(problem, "line"));
    json_int_t column = json_integer_value(json_object_get(problem, "column"));

    fputs(file != NULL ? file : "", out);
    if (line > 0)
        fprintf(out, ":%lld", (long long)line);
    if (line > 0 && column > 0)
        fprintf(out, ":%lld", (long long)column);
    fprintf(out, ": %s: %s\n",
            json_string_value(json_object_get(problem, "severity")),
            json_string_value(json_object_get(problem, "message")));
}

static bool
is_error_problem(const json_t *problem)
{
    const char *severity =
        json_string_value(json_object_get(problem, "severity"));

    return severity == NULL || strcmp(severity, "warning") != 0;
}

static int
lint_run(const char *path, time_t now)
{
    struct pg_error *err = NULL;
    json_t *problems = policy_lint(path, now, &err);
    size_t errors = 0, warnings = 0, i;
    json_t *problem;

    if (problems == NULL) {
        fprintf(stderr, "pullgate: policy lint: %s\n",
                err != NULL ? err->message : "out of memory");
        pg_error_free(err);
        return CLI_POLICY_EXIT_FAILED;
    }
    json_array_foreach(problems, i, problem)
    {
        print_problem(stdout, problem);
        if (is_error_problem(problem))
            errors++;
        else
            warnings++;
    }
    json_decref(problems);
    printf("%zu error%s, %zu warning%s\n", errors, errors == 1 ? "" : "s",
           warnings, warnings == 1 ? "" : "s");
    return finish_output("lint", errors > 0 ? CLI_POLICY_EXIT_FAILED
                                            : CLI_POLICY_EXIT_OK);
}

static int
lint_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"now", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    time_t now = time(NULL);
    int opt;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (opt == 'n') {
            if (policy_parse_time(optarg, false, &now) != NULL)
                return usage_error(lint_usage, "lint",
                                   "invalid --now; write a date such as "
                                   "2027-03-31 or an RFC 3339 time such as "
                                   "2027-03-31T18:00:00Z");
            continue;
        }
        if (opt != 'h')
            return option_error(lint_usage, "lint", opt, argv);
        fputs(lint_usage, stdout);
        return CLI_POLICY_EXIT_OK;
    }
    if (optind + 1 != argc)
        return usage_error(lint_usage, "lint",
                           "expected one policy file or directory");
    return lint_run(argv[optind], now);
}

/* ---- test: image references and times ---- */

/* The request a test makes, from its "image". */
struct image_ref {
    char registry[PG_REGISTRY_HOST_MAX + 1];
    char repository[PG_NAME_MAX + 1];
    char tag[PG_TAG_MAX + 1];       /* "" for a request by digest alone */
    char digest[PG_DIGEST_MAX + 1]; /* "" for a request by tag */
};

/* Copies len bytes of text into out of size bytes. Returns false when
 * they do not fit. */
static bool
copy_part(char *out, size_t size, const char *text, size_t len)
{
    if (len >= size)
        return false;
    memcpy(out, text, len);
    out[len] = '\0';
    return true;
}

/* Lower-cases a registry host with an optional port, or an IPv6 address
 * in brackets, into out. Returns false when text is not one. */
static bool
lower_registry(const char *text, size_t len, char *out, size_t size)
{
    if (len == 0 || len >= size)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
            strchr(".-:[]", c) == NULL)
            return false;
        out[i] = c;
    }
    out[len] = '\0';
    return true;
}

/* Appends len bytes of text to the request path uri, percent-encoding
 * every byte but letters, digits, "-._~" and '/' when keep_slash, so that
 * route_parse decodes exactly text. Returns false when uri is full. */
static bool
append_encoded(char *uri, size_t size, size_t *used, const char *text,
               size_t len, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || strchr("-._~", c) != NULL ||
                     (keep_slash && c == '/');

        if (*used + 4 > size)
            return false;
        if (plain && c != '\0') {
            uri[(*used)++] = (char)c;
            continue;
        }
        uri[(*used)++] = '%';
        uri[(*used)++] = hex[c >> 4];
        uri[(*used)++] = hex[c & 0xf];
    }
    uri[*used] = '\0';
    return true;
}

/*
 * Routes the manifest request "/v2/NAME/manifests/REFERENCE" as the proxy
 * does, where NAME is the registry as written, '/', and the name_len
 * bytes of name. The upstreams are cfg's first one, Docker Hub with its
 * aliases, and registry, the test's registry in lower case, for any other
 * host. Copies the upstream's name and the repository of the route into
 * *ref. Returns 0, or -1 with the proxy's error.
 */
static int
route_image(const struct config *cfg, const char *text, size_t host_len,
            char *registry, const char *name, size_t name_len,
            const char *reference, struct image_ref *ref, struct pg_error **err)
{
    struct config_upstream upstreams[2] = {cfg->upstreams[0],
                                           {.name = registry}};
    struct config view = {.upstreams = upstreams, .n_upstreams = 2};
    char uri[PG_URI_MAX + 1] = "/v2/";
    size_t used = strlen(uri);
    struct route route;

    if (!append_encoded(uri, sizeof(uri), &used, text, host_len, false) ||
        !append_encoded(uri, sizeof(uri), &used, "/", 1, true) ||
        !append_encoded(uri, sizeof(uri), &used, name, name_len, true) ||
        !append_encoded(uri, sizeof(uri), &used, "/manifests/", 11, true) ||
        !append_encoded(uri, sizeof(uri), &used, reference, strlen(reference),
                        false)) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "the request path is longer than %d bytes", PG_URI_MAX);
        return -1;
    }
    if (route_parse(&view, "GET", uri, &route, err) < 0)
        return -1;
    snprintf(ref->registry, sizeof(ref->registry), "%s", route.upstream->name);
    snprintf(ref->repository, sizeof(ref->repository), "%s", route.repository);
    return 0;
}

/*
 * Routes the reference (what: "tag" or "digest") of the image named by
 * text, with host_len bytes of registry and name_len bytes of name, and
 * fills the registry and repository of *ref from the route. Returns 0, or
 * -1 with the proxy's error for the name or reference.
 */
static int
resolve_image(const struct config *cfg, const char *text, size_t host_len,
              char *registry, const char *name, size_t name_len,
              const char *what, const char *reference, struct image_ref *ref,
              struct pg_error **err)
{
    /* A '/' would split the path into other segments, and the proxy
     * reads a reference without ':' as a tag. */
    if (reference[0] == '\0' || strchr(reference, '/') != NULL ||
        (strcmp(what, "digest") == 0 && !reference_is_digest(reference))) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "invalid %s \"%s\": expected %s",
                     what, reference,
                     strcmp(what, "digest") == 0
                         ? "ALGORITHM:HEX, such as sha256: and 64 hex digits"
                         : "letters, digits, '_', '.' and '-'");
        return -1;
    }
    return route_image(cfg, text, host_len, registry, name, name_len, reference,
                       ref, err);
}

/*
 * Parses REGISTRY/REPOSITORY[:TAG][@DIGEST] into *ref as the proxy reads
 * the request for it (see route_image): the registry in lower case, with
 * index.docker.io and registry-1.docker.io read as docker.io, and
 * "library/" before a Docker Hub name of one component. A reference with
 * neither tag nor digest gets the tag "latest", as docker pull does.
 * Returns 0, or -1 with an error that names why text is invalid.
 */
static int
parse_image_ref(const struct config *cfg, const char *text,
                struct image_ref *ref, struct pg_error **err)
{
    const char *slash = strchr(text, '/');
    const char *name, *at, *colon;
    size_t host_len, name_len;
    char registry[PG_REGISTRY_HOST_MAX + 1];
    char tag[CLI_POLICY_IMAGE_MAX + 1] = "";

    memset(ref, 0, sizeof(*ref));
    if (strlen(text) > CLI_POLICY_IMAGE_MAX) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "longer than the %d bytes of an image reference",
                     CLI_POLICY_IMAGE_MAX);
        return -1;
    }
    if (slash == NULL || slash == text) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "expected REGISTRY/REPOSITORY[:TAG|@DIGEST], such as "
                     "docker.io/library/nginx:1.27");
        return -1;
    }
    host_len = (size_t)(slash - text);
    /* The proxy sends a name without a host to its first upstream, which
     * a test cannot know, so a test names the registry. */
    if (!reference_component_is_host(text, host_len) ||
        !lower_registry(text, host_len, registry, sizeof(registry))) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "\"%.*s\" is not a registry host name; write the "
                     "registry first, such as docker.io/%s",
                     (int)host_len, text, text);
        return -1;
    }

    /* The tag follows the last ':' after the last '/' of the name. */
    name = slash + 1;
    at = strchr(name, '@');
    name_len = at != NULL ? (size_t)(at - name) : strlen(name);
    colon = memrchr(name, ':', name_len);
    if (colon != NULL &&
        memchr(colon, '/', name_len - (size_t)(colon - name)) == NULL) {
        copy_part(tag, sizeof(tag), colon + 1,
                  name_len - (size_t)(colon + 1 - name));
        name_len = (size_t)(colon - name);
        if (resolve_image(cfg, text, host_len, registry, name, name_len, "tag",
                          tag, ref, err) < 0)
            return -1;
        snprintf(ref->tag, sizeof(ref->tag), "%s", tag);
    } else if (at == NULL) {
        snprintf(ref->tag, sizeof(ref->tag), "latest");
        return resolve_image(cfg, text, host_len, registry, name, name_len,
                             "tag", ref->tag, ref, err);
    }
    if (at == NULL)
        return 0;
    if (resolve_image(cfg, text, host_len, registry, name, name_len, "digest",
                      at + 1, ref, err) < 0)
        return -1;
    snprintf(ref->digest, sizeof(ref->digest), "%s", at + 1);
    return 0;
}

/* ---- test: reading test files ---- */

static const char *const file_keys[] = {"tests", NULL};
static const char *const test_keys[] = {
    "name",     "image",  "document", "layout", "layout_reference",
    "platform", "inline", "now",      "expect", NULL};
static const char *const expect_keys[] = {"decision", "denied", "warnings",
                                          "excepted", NULL};
/* The verdict lists a test may name, as the verdict spells them. */
static const char *const verdict_lists[] = {"denied", "warnings", "excepted",
                                            NULL};

/* A test file being checked. */
struct checker {
    const struct yaml_doc *doc;
    const char *file;
    const struct config *cfg; /* the upstreams image references name */
    unsigned problems;
};

static void problem_at(struct checker *c, size_t line, size_t column,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prints one problem of a test file as FILE:LINE:COLUMN: MESSAGE. */
static void
problem_at(struct checker *c, size_t line, size_t column, const char *fmt, ...)
{
    va_list ap;

    c->problems++;
    if (c->problems > CLI_POLICY_PROBLEMS_SHOWN_MAX)
        return;
    fprintf(stderr, "pullgate: policy test: %s:%zu:%zu: ", c->file, line,
            column);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Returns where member key of object is written: its value, or its key
 * for the values that have no position (true, false, null). */
static void
member_position(const struct checker *c, const json_t *object, const char *key,
                size_t *line, size_t *column)
{
    yaml_doc_position(c->doc, json_object_get(object, key), line, column);
    if (*line == 0)
        yaml_doc_key_position(c->doc, object, key, line, column);
}

static bool
string_in(const char *text, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(text, list[i]) == 0)
            return true;
    }
    return false;
}

/* Reports every key of object that allowed does not list. */
static void
check_keys(struct checker *c, const json_t *object, const char *const *allowed,
           const char *where)
{
    char names[256] = "";
    size_t used = 0, line, column;
    const char *key;
    json_t *value;

    for (size_t i = 0; allowed[i] != NULL && used < sizeof(names); i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                 i > 0 ? ", " : "", allowed[i]);
    json_object_foreach((json_t *)object, key, value)
    {
        if (string_in(key, allowed))
            continue;
        yaml_doc_key_position(c->doc, object, key, &line, &column);
        problem_at(c, line, column,
                   "unknown key \"%s\" in %s; allowed keys: %s", key, where,
                   names);
    }
}

/* Returns member key of object when it is a non-empty string, or NULL,
 * reporting a problem when it is there but is not one. */
static const char *
optional_string(struct checker *c, const json_t *object, const char *key,
                const char *where)
{
    const json_t *value = json_object_get(object, key);
    size_t line, column;

    if (value == NULL)
        return NULL;
    if (json_is_string(value) && json_string_length(value) > 0 &&
        strlen(json_string_value(value)) == json_string_length(value))
        return json_string_value(value);
    member_position(c, object, key, &line, &column);
    problem_at(c, line, column, "\"%s\" of %s must be a non-empty string", key,
               where);
    return NULL;
}

/* Returns whether a test name can be printed on one line. */
static bool
test_name_valid(const json_t *name)
{
    const char *text = json_string_value(name);

    if (text == NULL || text[0] == '\0' ||
        json_string_length(name) > CLI_POLICY_TEST_NAME_MAX ||
        strlen(text) != json_string_length(name))
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* Checks the test's name, unique in the file (names maps each name to its
 * line), and writes how messages refer to the test into where. */
static void
check_test_name(struct checker *c, const json_t *test, size_t index,
                json_t *names, char *where, size_t size)
{
    const json_t *name = json_object_get(test, "name");
    const json_t *first;
    size_t line, column;

    snprintf(where, size, "test %zu", index + 1);
    member_position(c, test, "name", &line, &column);
    if (name == NULL) {
        yaml_doc_position(c->doc, test, &line, &column);
        problem_at(c, line, column,
                   "%s has no \"name\"; give each test a name unique in its "
                   "file",
                   where);
        return;
    }
    if (!test_name_valid(name)) {
        problem_at(c, line, column,
                   "\"name\" of %s must be a string of 1 to %d characters "
                   "without control characters",
                   where, CLI_POLICY_TEST_NAME_MAX);
        return;
    }
    snprintf(where, size, "test \"%s\"", json_string_value(name));
    first = json_object_get(names, json_string_value(name));
    if (first != NULL) {
        problem_at(c, line, column,
                   "%s is already defined at line %lld; give each test a "
                   "name unique in its file",
                   where, (long long)json_integer_value(first));
        return;
    }
    json_object_set_new(names, json_string_value(name),
                        json_integer((json_int_t)line));
}

static void
check_image(struct checker *c, const json_t *test, const char *where)
{
    const char *text = optional_string(c, test, "image", where);
    struct pg_error *err = NULL;
    struct image_ref ref;
    size_t line, column;

    if (text == NULL || parse_image_ref(c->cfg, text, &ref, &err) == 0)
        return;
    member_position(c, test, "image", &line, &column);
    problem_at(c, line, column, "invalid \"image\" \"%s\" of %s: %s", text,
               where, err != NULL ? err->message : "out of memory");
    pg_error_free(err);
}

/* Checks platform: OS/ARCH[/VARIANT], for a test with a layout. */
static void
check_platform(struct checker *c, const json_t *test, const char *where)
{
    const char *platform = optional_string(c, test, "platform", where);
    size_t line, column;

    if (platform == NULL)
        return;
    member_position(c, test, "platform", &line, &column);
    if (json_object_get(test, "layout") == NULL)
        problem_at(c, line, column,
                   "%s has \"platform\" without \"layout\"; platform "
                   "chooses the image of a layout's index",
                   where);
    else if (!cli_inspect_platform_valid(platform))
        problem_at(c, line, column,
                   "invalid \"platform\" \"%s\" of %s: expected "
                   "OS/ARCH[/VARIANT], such as linux/arm64 or linux/arm/v7",
                   platform, where);
}

/* Checks document, layout, layout_reference and inline: at most one
 * input, each of its type. */
static void
check_input(struct checker *c, const json_t *test, const char *where)
{
    static const char *const inputs[] = {"document", "layout", "inline", NULL};
    const char *first = NULL, *tag;
    size_t line, column;

    for (size_t i = 0; inputs[i] != NULL; i++) {
        if (json_object_get(test, inputs[i]) == NULL)
            continue;
        if (first != NULL) {
            member_position(c, test, inputs[i], &line, &column);
            problem_at(c, line, column,
                       "%s has both \"%s\" and \"%s\"; give one of "
                       "document, layout or inline",
                       where, first, inputs[i]);
        }
        first = first != NULL ? first : inputs[i];
    }
    optional_string(c, test, "document", where);
    optional_string(c, test, "layout", where);
    tag = optional_string(c, test, "layout_reference", where);
    member_position(c, test, "layout_reference", &line, &column);
    if (tag != NULL && json_object_get(test, "layout") == NULL)
        problem_at(c, line, column,
                   "%s has \"layout_reference\" without \"layout\"; give the "
                   "layout directory too",
                   where);
    else if (tag != NULL && !reference_tag_valid(tag))
        problem_at(c, line, column,
                   "\"layout_reference\" \"%s\" of %s is not a tag", tag,
                   where);
    if (json_object_get(test, "inline") != NULL &&
        !json_is_object(json_object_get(test, "inline"))) {
        member_position(c, test, "inline", &line, &column);
        problem_at(c, line, column,
                   "\"inline\" of %s must be a mapping of image document "
                   "members, such as {config: {user: root}}",
                   where);
    }
}

static void
check_now(struct checker *c, const json_t *test, const char *where)
{
    const char *text = optional_string(c, test, "now", where);
    const char *reason;
    size_t line, column;
    time_t when;

    if (text == NULL)
        return;
    reason = policy_parse_time(text, false, &when);
    if (reason == NULL)
        return;
    member_position(c, test, "now", &line, &column);
    problem_at(c, line, column, "invalid \"now\" \"%s\" of %s: %s", text, where,
               reason);
}

/* Checks expect.KEY: a list of distinct rule names. */
static void
check_rule_list(struct checker *c, const json_t *expect, const char *key,
                const char *where)
{
    const json_t *list = json_object_get(expect, key);
    size_t i, line, column;
    json_t *item;

    if (list == NULL)
        return;
    if (!json_is_array(list)) {
        member_position(c, expect, key, &line, &column);
        problem_at(c, line, column,
                   "\"%s\" of %s must be a list of rule names, such as "
                   "[root-user]",
                   key, where);
        return;
    }
    json_array_foreach(list, i, item)
    {
        yaml_doc_index_position(c->doc, list, i, &line, &column);
        if (!json_is_string(item) || json_string_length(item) == 0) {
            problem_at(c, line, column,
                       "item %zu of \"%s\" of %s must be a rule name", i + 1,
                       key, where);
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal(item, json_array_get(list, j)))
                problem_at(c, line, column,
                           "rule \"%s\" is listed twice in \"%s\" of %s",
                           json_string_value(item), key, where);
        }
    }
}

static void
check_expect(struct checker *c, const json_t *test, const char *where)
{
    const json_t *expect = json_object_get(test, "expect");
    const char *decision;
    char expect_where[CLI_POLICY_TEST_NAME_MAX + 64];
    size_t line, column;

    member_position(c, test, "expect", &line, &column);
    if (expect == NULL)
        yaml_doc_position(c->doc, test, &line, &column);
    if (!json_is_object(expect)) {
        problem_at(c, line, column,
                   "%s needs \"expect\", a mapping with at least "
                   "\"decision: allow\" or \"decision: deny\"",
                   where);
        return;
    }
    snprintf(expect_where, sizeof(expect_where), "\"expect\" of %s", where);
    check_keys(c, expect, expect_keys, expect_where);
    decision = json_string_value(json_object_get(expect, "decision"));
    member_position(c, expect, "decision", &line, &column);
    if (json_object_get(expect, "decision") == NULL)
        yaml_doc_position(c->doc, expect, &line, &column);
    if (decision == NULL ||
        (strcmp(decision, "allow") != 0 && strcmp(decision, "deny") != 0))
        problem_at(c, line, column, "%s needs \"decision\": allow or deny",
                   expect_where);
    for (size_t i = 0; verdict_lists[i] != NULL; i++)
        check_rule_list(c, expect, verdict_lists[i], expect_where);
}

static void
check_test(struct checker *c, const json_t *tests, size_t index, json_t *names)
{
    const json_t *test = json_array_get(tests, index);
    char where[CLI_POLICY_TEST_NAME_MAX + 16];
    size_t line, column;

    if (!json_is_object(test)) {
        yaml_doc_index_position(c->doc, tests, index, &line, &column);
        problem_at(c, line, column,
                   "test %zu must be a mapping with \"name\" and \"expect\"",
                   index + 1);
        return;
    }
    check_test_name(c, test, index, names, where, sizeof(where));
    check_keys(c, test, test_keys, where);
    check_image(c, test, where);
    check_input(c, test, where);
    check_platform(c, test, where);
    check_now(c, test, where);
    check_expect(c, test, where);
}

/* Checks a parsed test file, whose images name cfg's upstreams or other
 * registries. Returns its "tests" list (borrowed from the document), or
 * NULL after printing its problems. */
static const json_t *
check_test_file(const struct yaml_doc *doc, const char *file,
                const struct config *cfg)
{
    struct checker c = {.doc = doc, .file = file, .cfg = cfg};
    const json_t *root = yaml_doc_root(doc);
    const json_t *tests = json_object_get(root, "tests");
    json_t *names = json_object();
    size_t line = 1, column = 1;

    if (names == NULL) {
        fprintf(stderr, "pullgate: policy test: out of memory\n");
        return NULL;
    }
    if (!json_is_object(root)) {
        problem_at(&c, 1, 1, "a test file must be a mapping with \"tests\"");
        goto out;
    }
    check_keys(&c, root, file_keys, "a test file");
    yaml_doc_key_position(doc, root, "tests", &line, &column);
    if (!json_is_array(tests) || json_array_size(tests) == 0)
        problem_at(&c, line > 0 ? line : 1, line > 0 ? column : 1,
                   "a test file needs \"tests\", a list of at least one "
                   "test; see pullgate policy test --help");
    else if (json_array_size(tests) > CLI_POLICY_TESTS_MAX)
        problem_at(&c, line, column,
                   "\"tests\" lists %zu tests, more than the %d of one file; "
                   "split them into several test files",
                   json_array_size(tests), CLI_POLICY_TESTS_MAX);
    else
        for (size_t i = 0; i < json_array_size(tests); i++)
            check_test(&c, tests, i, names);
out:
    if (c.problems > CLI_POLICY_PROBLEMS_SHOWN_MAX)
        fprintf(stderr, "pullgate: policy test: %s: %u more problems\n", file,
                c.problems - CLI_POLICY_PROBLEMS_SHOWN_MAX);
    json_decref(names);
    return c.problems == 0 ? tests : NULL;
}

/* ---- test: finding test files ---- */

/* The outcome of one test. */
enum test_outcome {
    TEST_PASSED,
    TEST_FAILED, /* the verdict differs from the expected one */
    TEST_ERROR,  /* the test's input could not be read or evaluated */
};

struct test_result {
    enum test_outcome outcome;
    char *message;  /* what differed, or the error; NULL when passed */
    char *platform; /* of a layout whose index has several, else NULL */
};

struct test_file {
    char *path;
    struct yaml_doc *doc;
    const json_t *tests; /* owned by doc */
    struct test_result *results;
    size_t failed;
    size_t errors;
};

struct test_run {
    struct policy *policy;
    /* The inspector's limits for layout tests, and Docker Hub, the first
     * upstream, for image references. */
    struct config *cfg;
    time_t started; /* the time of tests without "now" */
    struct test_file *files;
    size_t n_files;
    size_t passed;
    size_t failed;
    size_t errors;
};

static int
compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool
has_suffix(const char *text, const char *suffix)
{
    size_t len = strlen(text), n = strlen(suffix);

    return len >= n && strcmp(text + len - n, suffix) == 0;
}

static bool
is_regular_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Adds the test file at path to the run. */
static int
add_test_file(struct test_run *run, const char *path, struct pg_error **err)
{
    struct test_file *grown;

    if (run->n_files >= CLI_POLICY_TEST_FILES_MAX) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "more than %d test files; split the policy directory",
                     CLI_POLICY_TEST_FILES_MAX);
        return -1;
    }
    grown = realloc(run->files, (run->n_files + 1) * sizeof(*grown));
    if (grown == NULL)
        goto memory;
    run->files = grown;
    run->files[run->n_files] = (struct test_file){.path = strdup(path)};
    if (run->files[run->n_files].path == NULL)
        goto memory;
    run->n_files++;
    return 0;
memory:
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
    return -1;
}

/* Finds X.test.yaml and X.test.yml beside the policy file X.yaml (or
 * X.yml, or X). */
static int
find_beside_file(struct test_run *run, const char *path, struct pg_error **err)
{
    static const char *const endings[] = {".test.yaml", ".test.yml", NULL};
    char candidate[CLI_POLICY_PATH_MAX];
    size_t base_len = strlen(path);
    const char *base;

    if (has_suffix(path, ".yaml"))
        base_len -= 5;
    else if (has_suffix(path, ".yml"))
        base_len -= 4;
    for (size_t i = 0; endings[i] != NULL; i++) {
        int n = snprintf(candidate, sizeof(candidate), "%.*s%s", (int)base_len,
                         path, endings[i]);

        if (n > 0 && (size_t)n < sizeof(candidate) &&
            is_regular_file(candidate) &&
            add_test_file(run, candidate, err) < 0)
            return -1;
    }
    if (run->n_files > 0)
        return 0;
    base = memrchr(path, '/', base_len);
    base = base != NULL ? base + 1 : path;
    pg_error_set(err, 400, PG_ERR_CONFIG,
                 "no test files found for %s; write %.*s.test.yaml beside it",
                 path, (int)(base_len - (size_t)(base - path)), base);
    return -1;
}

/* Collects the names of the test files in the directory: *.test.yaml and
 * *.test.yml, except hidden files, which editors leave behind. */
static int
list_test_names(const char *path, char ***names, size_t *n,
                struct pg_error **err)
{
    DIR *dir = opendir(path);
    struct dirent *entry;
    int status = 0;

    *names = NULL;
    *n = 0;
    if (dir == NULL) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot read directory %s: %s",
                     path, strerror(errno));
        return -1;
    }
    while ((entry = readdir(dir)) != NULL) {
        char **grown;

        if (entry->d_name[0] == '.' ||
            (!has_suffix(entry->d_name, ".test.yaml") &&
             !has_suffix(entry->d_name, ".test.yml")))
            continue;
        if (*n >= CLI_POLICY_TEST_FILES_MAX) {
            pg_error_set(err, 400, PG_ERR_CONFIG,
                         "%s has more than %d test files; split it", path,
                         CLI_POLICY_TEST_FILES_MAX);
            status = -1;
            break;
        }
        grown = realloc(*names, (*n + 1) * sizeof(**names));
        if (grown == NULL || (grown[*n] = strdup(entry->d_name)) == NULL) {
            *names = grown != NULL ? grown : *names;
            pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
            status = -1;
            break;
        }
        *names = grown;
        (*n)++;
    }
    closedir(dir);
    /* qsort may not be given the NULL list of an empty directory. */
    if (status == 0 && *n > 1)
        qsort(*names, *n, sizeof(**names), compare_strings);
    return status;
}

static int
find_in_directory(struct test_run *run, const char *path, struct pg_error **err)
{
    char **names;
    size_t n;
    int status = -1;
    bool slash = has_suffix(path, "/");

    if (list_test_names(path, &names, &n, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char file[CLI_POLICY_PATH_MAX];
        int len = snprintf(file, sizeof(file), "%s%s%s", path, slash ? "" : "/",
                           names[i]);

        if (len < 0 || (size_t)len >= sizeof(file)) {
            pg_error_set(err, 400, PG_ERR_CONFIG,
                         "the path of %s in %s is longer than %d bytes",
                         names[i], path, CLI_POLICY_PATH_MAX - 1);
            goto out;
        }
        if (is_regular_file(file) && add_test_file(run, file, err) < 0)
            goto out;
    }
    status = 0;
    if (run->n_files == 0) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "no test files found for %s; write a NAME.test.yaml "
                     "file in it",
                     path);
        status = -1;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return status;
}

static int
find_test_files(struct test_run *run, const char *path, struct pg_error **err)
{
    struct stat st;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return find_in_directory(run, path, err);
    return find_beside_file(run, path, err);
}

/* Parses and checks every test file, printing the problems of each.
 * Returns -1 when any is invalid. */
static int
load_test_files(struct test_run *run)
{
    int status = 0;

    for (size_t i = 0; i < run->n_files; i++) {
        struct test_file *file = &run->files[i];
        struct pg_error *err = NULL;

        file->doc = yaml_doc_load(file->path, &err);
        if (file->doc == NULL) {
            fprintf(stderr, "pullgate: policy test: %s\n",
                    err != NULL ? err->message : "out of memory");
            pg_error_free(err);
            status = -1;
            continue;
        }
        file->tests = check_test_file(file->doc, file->path, run->cfg);
        if (file->tests == NULL) {
            status = -1;
            continue;
        }
        file->results =
            calloc(json_array_size(file->tests), sizeof(*file->results));
        if (file->results == NULL) {
            fprintf(stderr, "pullgate: policy test: out of memory\n");
            status = -1;
        }
    }
    return status;
}

/* ---- test: documents ---- */

/* Returns an inspected image with nothing in it: every member of a
 * version 2 image document, with its empty value. */
static json_t *
empty_document(void)
{
    return json_pack(
        "{s:i, s:s, s:s, s:{s:s, s:s, s:s},"
        " s:{s:s, s:s, s:s, s:s, s:{}}, s:{s:s, s:[]}, s:{s:s, s:s},"
        " s:{s:s, s:[], s:[], s:[], s:{}, s:[], s:[], s:s, s:s, s:[], s:[]},"
        " s:{s:[]}, s:[], s:[], s:n, s:[], s:[],"
        " s:{s:i, s:i, s:i, s:[], s:[], s:i, s:i}, s:n}",
        "document_version", INSPECTOR_DOCUMENT_VERSION, "inspector_version",
        INSPECTOR_VERSION, "kind", "image", "source", "registry", "",
        "repository", "", "reference", "", "manifest", "digest", "",
        "media_type", OCI_MANIFEST_TYPE, "config_digest", "",
        "config_media_type", "", "annotations", "inspection", "status", "ok",
        "notes", "platform", "os", "", "architecture", "", "config", "user", "",
        "env", "exposed_ports", "volumes", "labels", "entrypoint", "cmd",
        "working_dir", "", "created", "", "history", "dockerfile", "rootfs",
        "diff_ids", "layers", "files", "os", "packages", "secrets", "summary",
        "layers", 0, "files", 0, "present_files", 0, "setuid_files",
        "world_writable", "packages", 0, "secrets", 0, "base_image");
}

/* Writes the path of file, relative to the folder of the test file, or
 * file itself when it is absolute. */
static bool
resolve_path(const char *test_file, const char *file, char *out, size_t size)
{
    const char *slash = strrchr(test_file, '/');
    int n;

    if (file[0] == '/' || slash == NULL)
        n = snprintf(out, size, "%s", file);
    else
        n = snprintf(out, size, "%.*s/%s", (int)(slash - test_file), test_file,
                     file);
    return n >= 0 && (size_t)n < size;
}

/* Writes the platform of an image document as OS/ARCH[/VARIANT]. */
static void
document_platform(const json_t *document, char *out, size_t size)
{
    const json_t *platform = json_object_get(document, "platform");
    const char *os = json_string_value(json_object_get(platform, "os"));
    const char *arch =
        json_string_value(json_object_get(platform, "architecture"));
    const char *variant =
        json_string_value(json_object_get(platform, "variant"));

    snprintf(out, size, "%s/%s%s%s", os != NULL ? os : "",
             arch != NULL ? arch : "",
             variant != NULL && variant[0] != '\0' ? "/" : "",
             variant != NULL ? variant : "");
}

/* Returns whether the platform found is the one requested: the same, or
 * with any variant when requested names none. Both are OS/ARCH[/VARIANT]. */
static bool
platform_is(const char *found, const char *requested)
{
    size_t len = strlen(requested);
    bool has_variant = strchr(strchr(requested, '/') + 1, '/') != NULL;

    return strncmp(found, requested, len) == 0 &&
           (found[len] == '\0' || (!has_variant && found[len] == '/'));
}

/*
 * Inspects the layout at path for test, with the manifest of its
 * layout_reference and platform. When the layout's index has several
 * platforms, stores the image's platform in *platform_used, which the
 * caller frees. Returns the image document, or NULL with an error.
 */
static json_t *
inspect_layout(const struct test_run *run, const json_t *test, const char *path,
               char **platform_used, struct pg_error **err)
{
    const char *platform = json_string_value(json_object_get(test, "platform"));
    struct cli_layout_choice choice = {
        .tag = json_string_value(json_object_get(test, "layout_reference")),
        .platform = platform,
        .platform_setting = "\"platform\" in the test",
    };
    char found[CLI_POLICY_PLATFORM_MAX];
    json_t *document = cli_inspect_layout(run->cfg, path, &choice, err);

    if (document == NULL) {
        pg_error_prefix(err, "cannot inspect the layout %s", path);
        return NULL;
    }
    document_platform(document, found, sizeof(found));
    /* Without an index, the layout's one image is checked here. */
    if (platform != NULL && choice.index_platforms == 0 &&
        !platform_is(found, platform)) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "the layout %s has no manifest for platform %s; its "
                     "image is %s",
                     path, platform, found);
        json_decref(document);
        return NULL;
    }
    if (choice.index_platforms > 1 &&
        (*platform_used = strdup(found)) == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        json_decref(document);
        return NULL;
    }
    return document;
}

/* Builds the image document of a test from its document, layout or
 * inline member. For a layout, sets *platform_used as inspect_layout
 * does. */
static json_t *
test_document(struct test_run *run, const struct test_file *file,
              const json_t *test, char **platform_used, struct pg_error **err)
{
    const char *document = json_string_value(json_object_get(test, "document"));
    const char *layout = json_string_value(json_object_get(test, "layout"));
    const json_t *members = json_object_get(test, "inline");
    char path[CLI_POLICY_PATH_MAX];
    json_t *built, *copy;

    if ((document != NULL || layout != NULL) &&
        !resolve_path(file->path, document != NULL ? document : layout, path,
                      sizeof(path))) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "the path of %s is too long",
                     document != NULL ? document : layout);
        return NULL;
    }
    if (document != NULL)
        return load_object(path, path, err);
    if (layout != NULL)
        return inspect_layout(run, test, path, platform_used, err);
    built = empty_document();
    copy = json_deep_copy(members);
    if (built == NULL || (members != NULL && copy == NULL) ||
        (copy != NULL && json_object_update_recursive(built, copy) < 0)) {
        json_decref(built);
        built = NULL;
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
    }
    json_decref(copy);
    return built;
}

/* ---- test: verdicts ---- */

static bool
verdict_denies(const json_t *verdict)
{
    const char *decision =
        json_string_value(json_object_get(verdict, "decision"));

    return decision != NULL && strcmp(decision, "deny") == 0;
}

/*
 * Returns the verdict of the pull of image at time now, as the proxy
 * reaches it: the source rules' verdict when it denies, else
 * policy_verdict() over the document's findings. The manifest digest of
 * the request is the image's digest, else the document's.
 */
static json_t *
test_verdict(const struct policy *policy, const json_t *document,
             const struct image_ref *image, time_t now, struct pg_error **err)
{
    struct policy_request request = {
        .registry = image->registry,
        .repository = image->repository,
        .tag = image->tag[0] != '\0' ? image->tag : NULL,
        .digest = image->digest[0] != '\0' ? image->digest : NULL,
    };
    const char *document_digest = json_string_value(
        json_object_get(json_object_get(document, "manifest"), "digest"));
    json_t *source, *findings, *verdict;

    /* The proxy checks the source rules before it fetches anything, and a
     * denial there ends the pull. */
    source = policy_check_source(policy, &request, now);
    if (source == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
        return NULL;
    }
    if (verdict_denies(source))
        return source;
    json_decref(source);

    findings = policy_evaluate(policy, document, err);
    if (findings == NULL)
        return NULL;
    if (request.digest == NULL && document_digest != NULL &&
        reference_digest_valid(document_digest))
        request.digest = document_digest;
    verdict = policy_verdict(policy, findings, &request, now);
    json_decref(findings);
    if (verdict == NULL)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE, "out of memory");
    return verdict;
}

/* Rule names sorted bytewise, without repeats. The strings are borrowed. */
struct name_set {
    const char **names;
    size_t n;
};

/* Fills set with the strings of list, or with the "rule" members of its
 * objects when of_findings. */
static int
name_set_fill(struct name_set *set, const json_t *list, bool of_findings)
{
    size_t i, kept = 0;
    json_t *item;

    set->n = 0;
    set->names = calloc(json_array_size(list) + 1, sizeof(*set->names));
    if (set->names == NULL)
        return -1;
    json_array_foreach(list, i, item)
    {
        const char *name = json_string_value(
            of_findings ? json_object_get(item, "rule") : item);

        if (name != NULL)
            set->names[set->n++] = name;
    }
    qsort(set->names, set->n, sizeof(*set->names), compare_strings);
    for (i = 0; i < set->n; i++) {
        if (kept == 0 || strcmp(set->names[kept - 1], set->names[i]) != 0)
            set->names[kept++] = set->names[i];
    }
    set->n = kept;
    return 0;
}

static bool
name_set_equal(const struct name_set *a, const struct name_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->names[i], b->names[i]) != 0)
            return false;
    }
    return true;
}

static void
name_set_print(FILE *out, const struct name_set *set)
{
    fputc('[', out);
    for (size_t i = 0; i < set->n; i++)
        fprintf(out, "%s%s", i > 0 ? ", " : "", set->names[i]);
    fputc(']', out);
}

/* Writes "expected KEY [...], got [...]" to out when verdict[key] and
 * expect[key] name different rules. Returns whether they did, or -1 when
 * memory is short. */
static int
compare_list(FILE *out, const json_t *verdict, const json_t *expect,
             const char *key, bool separate)
{
    struct name_set want = {0}, got = {0};
    int differs = -1;

    if (name_set_fill(&want, json_object_get(expect, key), false) < 0 ||
        name_set_fill(&got, json_object_get(verdict, key), true) < 0)
        goto out;
    differs = !name_set_equal(&want, &got);
    if (differs) {
        fprintf(out, "%sexpected %s ", separate ? "; " : "", key);
        name_set_print(out, &want);
        fputs(", got ", out);
        name_set_print(out, &got);
    }
out:
    free(want.names);
    free(got.names);
    return differs;
}

/* Returns what differs between verdict and expect, as a string the caller
 * frees, "" when nothing does, or NULL when memory is short. */
static char *
compare_verdict(const json_t *verdict, const json_t *expect)
{
    const char *want = json_string_value(json_object_get(expect, "decision"));
    const char *got = json_string_value(json_object_get(verdict, "decision"));
    char *text = NULL;
    size_t size = 0;
    bool differs = false;
    FILE *out = open_memstream(&text, &size);

    if (out == NULL)
        return NULL;
    if (got == NULL || strcmp(want, got) != 0) {
        fprintf(out, "expected decision %s, got %s", want,
                got != NULL ? got : "none");
        differs = true;
    }
    for (size_t i = 0; verdict_lists[i] != NULL; i++) {
        int listed;

        if (json_object_get(expect, verdict_lists[i]) == NULL)
            continue;
        listed = compare_list(out, verdict, expect, verdict_lists[i], differs);
        if (listed < 0) {
            fclose(out);
            free(text);
            return NULL;
        }
        differs = differs || listed;
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Runs one test and fills its result. */
static void
run_test(struct test_run *run, const struct test_file *file, const json_t *test,
         struct test_result *result)
{
    const char *image_text = json_string_value(json_object_get(test, "image"));
    const char *now_text = json_string_value(json_object_get(test, "now"));
    struct pg_error *err = NULL;
    struct image_ref image;
    time_t now = run->started;
    json_t *document = NULL, *verdict = NULL;

    /* The checker accepted now, so it parses. */
    if (now_text != NULL)
        (void)policy_parse_time(now_text, false, &now);

    if (parse_image_ref(run->cfg,
                        image_text != NULL ? image_text : DEFAULT_IMAGE, &image,
                        &err) == 0)
        document = test_document(run, file, test, &result->platform, &err);
    if (document != NULL)
        verdict = test_verdict(run->policy, document, &image, now, &err);
    if (verdict != NULL) {
        result->message =
            compare_verdict(verdict, json_object_get(test, "expect"));
        if (result->message == NULL)
            pg_error_set(&err, 503, PG_ERR_UNAVAILABLE, "out of memory");
    }
    if (err != NULL) {
        free(result->message);
        result->outcome = TEST_ERROR;
        result->message = strdup(err->message);
    } else if (result->message[0] != '\0') {
        result->outcome = TEST_FAILED;
    } else {
        result->outcome = TEST_PASSED;
        free(result->message);
        result->message = NULL;
    }
    pg_error_free(err);
    json_decref(verdict);
    json_decref(document);
}

/* Runs every test of every file and prints one line for each. */
static void
run_tests(struct test_run *run)
{
    bool several = run->n_files > 1;

    for (size_t f = 0; f < run->n_files; f++) {
        struct test_file *file = &run->files[f];
        size_t i;
        json_t *test;

        json_array_foreach(file->tests, i, test)
        {
            struct test_result *result = &file->results[i];
            const char *name = json_string_value(json_object_get(test, "name"));

            run_test(run, file, test, result);
            printf("%s %s%s%s", result->outcome == TEST_PASSED ? "ok" : "FAIL",
                   several ? file->path : "", several ? ": " : "", name);
            if (result->platform != NULL)
                printf(" (platform %s)", result->platform);
            if (result->outcome != TEST_PASSED)
                printf(": %s", result->message != NULL ? result->message
                                                       : "out of memory");
            putchar('\n');
            run->passed += result->outcome == TEST_PASSED;
            file->failed += result->outcome == TEST_FAILED;
            file->errors += result->outcome == TEST_ERROR;
        }
        run->failed += file->failed;
        run->errors += file->errors;
    }
}

/* ---- test: JUnit XML ---- */

/* UTF-8 of U+FFFD, the replacement character. */
#define REPLACEMENT_CHARACTER "\xef\xbf\xbd"

/*
 * Writes text as XML character data, usable in an attribute. Characters
 * that XML 1.0 does not allow become U+FFFD: C0 controls other than tab,
 * newline and carriage return, the noncharacters U+FFFE and U+FFFF, and
 * each byte that is not part of a UTF-8 sequence.
 */
static void
xml_text(FILE *out, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    const unsigned char *end = p + strlen(text);

    while (*p != '\0') {
        size_t len = pg_utf8_sequence_length(p, (size_t)(end - p));

        if (len == 3 && p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe) {
            fputs(REPLACEMENT_CHARACTER, out);
            p += len;
            continue;
        }
        if (len > 1) {
            fwrite(p, 1, len, out);
            p += len;
            continue;
        }
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        case '\t':
        case '\n':
        case '\r':
            fprintf(out, "&#%d;", *p);
            break;
        default:
            if (len == 1 && *p >= 0x20)
                fputc(*p, out);
            else
                fputs(REPLACEMENT_CHARACTER, out);
        }
        p++;
    }
}

static void
junit_testcase(FILE *out, const struct test_file *file, const json_t *test,
               const struct test_result *result)
{
    const char *element = result->outcome == TEST_ERROR ? "error" : "failure";

    fputs("    <testcase name=\"", out);
    xml_text(out, json_string_value(json_object_get(test, "name")));
    fputs("\" classname=\"", out);
    xml_text(out, file->path);
    if (result->outcome == TEST_PASSED && result->platform == NULL) {
        fputs("\"/>\n", out);
        return;
    }
    fputs("\">\n", out);
    if (result->outcome != TEST_PASSED) {
        fprintf(out, "      <%s message=\"", element);
        xml_text(out, result->message != NULL ? result->message : "");
        fputs("\">", out);
        xml_text(out, result->message != NULL ? result->message : "");
        fprintf(out, "</%s>\n", element);
    }
    if (result->platform != NULL) {
        fputs("      <system-out>platform ", out);
        xml_text(out, result->platform);
        fputs("</system-out>\n", out);
    }
    fputs("    </testcase>\n", out);
}

static void
junit_write(FILE *out, const struct test_run *run)
{
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"pullgate policy test\" tests=\"%zu\" "
            "failures=\"%zu\" errors=\"%zu\">\n",
            run->passed + run->failed + run->errors, run->failed, run->errors);
    for (size_t f = 0; f < run->n_files; f++) {
        const struct test_file *file = &run->files[f];
        size_t i;
        json_t *test;

        fputs("  <testsuite name=\"", out);
        xml_text(out, file->path);
        fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\">\n",
                json_array_size(file->tests), file->failed, file->errors);
        json_array_foreach(file->tests, i, test)
            junit_testcase(out, file, test, &file->results[i]);
        fputs("  </testsuite>\n", out);
    }
    fputs("</testsuites>\n", out);
}

/*
 * Writes the report to the open descriptor fd, and closes fd. shown names
 * the file in errors. Returns 0, or -1 with an error such as ENOSPC.
 */
static int
junit_write_fd(const struct test_run *run, int fd, const char *shown, bool sync,
               struct pg_error **err)
{
    FILE *out = fdopen(fd, "w");
    int saved;

    if (out == NULL) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", shown,
                     strerror(errno));
        close(fd);
        return -1;
    }
    junit_write(out, run);
    errno = 0;
    if (fflush(out) != 0 || ferror(out) || (sync && fsync(fd) < 0)) {
        saved = errno;
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", shown,
                     saved != 0 ? strerror(saved) : "write error");
        fclose(out);
        return -1;
    }
    if (fclose(out) != 0) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", shown,
                     strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Returns the descriptor that path names when it is /dev/stdout,
 * /dev/stderr, /dev/fd/N or /proc/self/fd/N, or -1. Writing to that
 * descriptor continues after what the process wrote there before, where
 * opening the path again would start a regular file at its first byte.
 */
static int
named_descriptor(const char *path)
{
    const char *number = NULL;
    uint64_t fd;

    if (strcmp(path, "/dev/stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(path, "/dev/stderr") == 0)
        return STDERR_FILENO;
    if (strncmp(path, "/dev/fd/", 8) == 0)
        number = path + 8;
    else if (strncmp(path, "/proc/self/fd/", 14) == 0)
        number = path + 14;
    if (number == NULL || pg_parse_u64(number, INT_MAX, &fd) < 0)
        return -1;
    return (int)fd;
}

/* Replaces target, the path of a symbolic link, with the path the link
 * names. A relative link is read from the folder of the link. Returns 0,
 * or -1 with errno set. */
static int
read_link(char *target, size_t size)
{
    char link[CLI_POLICY_PATH_MAX], joined[CLI_POLICY_PATH_MAX];
    const char *slash = strrchr(target, '/');
    ssize_t len = readlink(target, link, sizeof(link));
    int n;

    if (len < 0)
        return -1;
    if ((size_t)len >= sizeof(link)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    link[len] = '\0';
    if (link[0] == '/' || slash == NULL)
        n = snprintf(joined, sizeof(joined), "%s", link);
    else
        n = snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - target),
                     target, link);
    if (n < 0 || (size_t)n >= sizeof(joined) || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(target, joined, (size_t)n + 1);
    return 0;
}

/*
 * Follows the symbolic links from path into target, of size bytes. Stops
 * at a file that is not a link or does not exist, or at a descriptor
 * path, whose descriptor it stores in *fd (else -1). Returns 0, or -1
 * with an error.
 */
static int
follow_links(const char *path, char *target, size_t size, int *fd,
             struct pg_error **err)
{
    struct stat st;

    *fd = -1;
    if (strlen(path) >= size) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", path,
                     strerror(ENAMETOOLONG));
        return -1;
    }
    memcpy(target, path, strlen(path) + 1);
    for (int hops = 0;; hops++) {
        *fd = named_descriptor(target);
        if (*fd >= 0 || lstat(target, &st) < 0 || !S_ISLNK(st.st_mode))
            return 0;
        if (hops == CLI_POLICY_SYMLINKS_MAX)
            errno = ELOOP;
        if (hops == CLI_POLICY_SYMLINKS_MAX || read_link(target, size) < 0) {
            pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", path,
                         strerror(errno));
            return -1;
        }
    }
}

/* Writes the report to a temporary file beside target and renames it to
 * target, so that a reader never sees half a report. An existing file
 * keeps its permissions. path names the file in errors. */
static int
junit_replace(const struct test_run *run, const char *target, const char *path,
              struct pg_error **err)
{
    char temporary[CLI_POLICY_PATH_MAX];
    mode_t mask = umask(0);
    mode_t mode = 0666 & ~mask;
    struct stat st;
    int fd, n;

    umask(mask);
    if (stat(target, &st) == 0)
        mode = st.st_mode & 07777;
    n = snprintf(temporary, sizeof(temporary), "%s.XXXXXX", target);
    if (n < 0 || (size_t)n >= sizeof(temporary)) {
        pg_error_set(err, 400, PG_ERR_CONFIG,
                     "the path %s is longer than %d bytes", target,
                     CLI_POLICY_PATH_MAX - 8);
        return -1;
    }
    fd = mkstemp(temporary);
    if (fd < 0 || fchmod(fd, mode) < 0) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot create %s: %s", temporary,
                     strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(temporary);
        }
        return -1;
    }
    if (junit_write_fd(run, fd, path, true, err) < 0) {
        unlink(temporary);
        return -1;
    }
    if (rename(temporary, target) < 0) {
        pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", path,
                     strerror(errno));
        unlink(temporary);
        return -1;
    }
    return 0;
}

/*
 * Writes the JUnit report to path. A regular file, or a symbolic link to
 * one, is replaced whole (see junit_replace), and the links stay. Other
 * files, such as a FIFO, a character device or a descriptor of the
 * process (/dev/fd/N, as bash's >(...) gives), are written directly.
 */
static int
junit_save(const struct test_run *run, const char *path, struct pg_error **err)
{
    char target[CLI_POLICY_PATH_MAX];
    struct stat st;
    int fd;

    if (follow_links(path, target, sizeof(target), &fd, err) < 0)
        return -1;
    if (fd >= 0) {
        /* The descriptor stays open for the rest of the process. */
        fd = dup(fd);
        if (fd < 0) {
            pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", path,
                         strerror(errno));
            return -1;
        }
        return junit_write_fd(run, fd, path, false, err);
    }
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        fd = open(target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            pg_error_set(err, 400, PG_ERR_CONFIG, "cannot write %s: %s", path,
                         strerror(errno));
            return -1;
        }
        return junit_write_fd(run, fd, path, false, err);
    }
    return junit_replace(run, target, path, err);
}

/* ---- test: the command ---- */

static void
test_run_clear(struct test_run *run)
{
    for (size_t f = 0; f < run->n_files; f++) {
        struct test_file *file = &run->files[f];

        for (size_t i = 0;
             file->results != NULL && i < json_array_size(file->tests); i++) {
            free(file->results[i].message);
            free(file->results[i].platform);
        }
        free(file->results);
        yaml_doc_free(file->doc);
        free(file->path);
    }
    free(run->files);
    config_free(run->cfg);
    policy_free(run->policy);
}

/* Prints the warnings found while loading the policy, such as expired
 * exceptions, as lint prints them. */
static void
print_policy_warnings(const struct policy *policy)
{
    const json_t *warnings = policy_warnings(policy);
    size_t i;
    json_t *warning;

    json_array_foreach(warnings, i, warning)
    {
        fputs("pullgate: policy test: ", stderr);
        print_problem(stderr, warning);
    }
}

static int
test_command(const char *path, const char *junit)
{
    struct test_run run = {.started = time(NULL)};
    struct pg_error *err = NULL;
    int status = CLI_POLICY_EXIT_USAGE;

    run.policy = policy_load(path, &err);
    if (run.policy == NULL)
        goto out;
    print_policy_warnings(run.policy);
    run.cfg = config_defaults(&err);
    if (run.cfg == NULL || find_test_files(&run, path, &err) < 0 ||
        load_test_files(&run) < 0)
        goto out;
    /* Only the inspector's warnings may interleave with the results. */
    pg_log_set_level(PG_LOG_WARN);

    run_tests(&run);
    printf("%zu passed, %zu failed\n", run.passed, run.failed + run.errors);
    status = run.errors > 0   ? CLI_POLICY_EXIT_USAGE
             : run.failed > 0 ? CLI_POLICY_EXIT_FAILED
                              : CLI_POLICY_EXIT_OK;
    status = finish_output("test", status);
    if (junit != NULL && junit_save(&run, junit, &err) < 0)
        status = CLI_POLICY_EXIT_USAGE;
out:
    if (err != NULL)
        fprintf(stderr, "pullgate: policy test: %s\n", err->message);
    pg_error_free(err);
    test_run_clear(&run);
    return status;
}

static int
test_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"junit", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *junit = NULL;
    int opt;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (opt == 'j') {
            junit = optarg;
        } else if (opt == 'h') {
            fputs(test_usage, stdout);
            return CLI_POLICY_EXIT_OK;
        } else {
            return option_error(test_usage, "test", opt, argv);
        }
    }
    if (optind + 1 != argc)
        return usage_error(test_usage, "test",
                           "expected one policy file or directory");
    if (junit != NULL && junit[0] == '\0')
        return usage_error(test_usage, "test",
                           "--junit needs a file name for the report");
    return test_command(argv[optind], junit);
}

int
cli_policy_main(int argc, char **argv)
{
    const char *subcommand = argc >= 2 ? argv[1] : NULL;

    if (subcommand == NULL) {
        fputs(policy_usage, stderr);
        return CLI_POLICY_EXIT_USAGE;
    }
    if (strcmp(subcommand, "--help") == 0 || strcmp(subcommand, "-h") == 0) {
        fputs(policy_usage, stdout);
        return CLI_POLICY_EXIT_OK;
    }
    if (strcmp(subcommand, "eval") == 0)
        return eval_main(argc - 1, argv + 1);
    if (strcmp(subcommand, "lint") == 0)
        return lint_main(argc - 1, argv + 1);
    if (strcmp(subcommand, "test") == 0)
        return test_main(argc - 1, argv + 1);
    fprintf(stderr,
            "pullgate policy: unknown subcommand \"%s\"; expected eval, lint "
            "or test\n\n",
            subcommand);
    fputs(policy_usage, stderr);
    return CLI_POLICY_EXIT_USAGE;
}
