/*
 * Unit tests for the secret scanner: every built-in rule on positive
 * cases and look-alikes, credential files by path, private keys made by
 * openssl and ssh-keygen, rules from the configuration, the maxima, and a
 * randomized comparison of the prefilter with running every rule over
 * the whole file.
 *
 * Secret-looking strings are assembled at run time from a prefix and
 * generated characters, so that no such string sits in the repository.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspector/secrets.c"

/* Text assembled for one test; long enough for every case. */
#define TEXT_MAX 8192

static const char upper32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char alnum[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
static const char base64[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

/* Appends prefix and n characters of charset, chosen by position. */
static void
add_token(char *text, const char *prefix, const char *charset, size_t n)
{
    size_t used = strlen(text);
    size_t set_len = strlen(charset);

    ck_assert_uint_lt(used + strlen(prefix) + n, TEXT_MAX);
    memcpy(text + used, prefix, strlen(prefix));
    used += strlen(prefix);
    for (size_t i = 0; i < n; i++)
        text[used++] = charset[(i * 7 + 3) % set_len];
    text[used] = '\0';
}

static void
add(char *text, const char *part)
{
    size_t used = strlen(text);

    ck_assert_uint_lt(used + strlen(part), TEXT_MAX);
    memcpy(text + used, part, strlen(part) + 1);
}

/* Scans text with set (NULL: the built-in rules) and returns the
 * findings object, which the caller releases. */
static json_t *
scan_with(const struct inspector_secrets *set, const char *path,
          const char *text, size_t len)
{
    struct inspector_options options = {.secrets = set};
    struct catalog_ctx ctx = {.findings = json_object(), .options = &options};

    ck_assert_int_eq(secrets_scan(&ctx, path, (const unsigned char *)text, len),
                     0);
    return ctx.findings;
}

/*
 * Checks that the secrets of findings are exactly expected, a string of
 * "RULE:LINE" items separated by spaces ("" for none), in order.
 */
static void
check_secrets(const json_t *findings, const char *path, const char *expected)
{
    const json_t *list = json_object_get(findings, "secrets");
    char actual[TEXT_MAX] = "";
    size_t i;
    const json_t *item;

    json_array_foreach(list, i, item)
    {
        char one[128];

        ck_assert_uint_eq(json_object_size(item), 3);
        ck_assert_str_eq(json_string_value(json_object_get(item, "path")),
                         path);
        snprintf(one, sizeof(one), "%s%s:%lld", i > 0 ? " " : "",
                 json_string_value(json_object_get(item, "rule")),
                 (long long)json_integer_value(json_object_get(item, "line")));
        add(actual, one);
    }
    ck_assert_str_eq(actual, expected);
}

/* Scans text with the built-in rules and checks the findings. */
static void
expect(const char *text, const char *expected)
{
    json_t *findings = scan_with(NULL, "app/config.txt", text, strlen(text));

    check_secrets(findings, "app/config.txt", expected);
    ck_assert_ptr_null(json_object_get(findings, "notes"));
    json_decref(findings);
}

/* ---- content rules ---- */

START_TEST(aws_access_key_id)
{
    char text[TEXT_MAX] = "# keys\n";

    add_token(text, "aws_access_key_id = AKIA", upper32, 16);
    add(text, "\n");
    add_token(text, "id: ASIA", upper32, 16);
    add_token(text, " and AKIA", upper32, 16);
    add(text, "\n");
    expect(text, "aws-access-key-id:2 aws-access-key-id:3");
}
END_TEST

/* AWS's documented example key is reported too: it is the test vector. */
START_TEST(aws_example_key)
{
    char text[TEXT_MAX] = "";

    add(text, "[default]\naws_access_key_id = AKIA");
    add(text, "IOSFODNN7");
    add(text, "EXAMPLE\n");
    expect(text, "aws-access-key-id:2");
}
END_TEST

START_TEST(aws_access_key_look_alikes)
{
    char text[TEXT_MAX] = "";

    add_token(text, "short AKIA", upper32, 15);
    add_token(text, "\nlong AKIA", upper32, 17);
    add_token(text, "\nword XAKIA", upper32, 16);
    add_token(text, "\nlower AKIA", "abcdefgh", 16);
    add(text, "\nAKIA and ASIA alone\n");
    expect(text, "");
}
END_TEST

START_TEST(aws_secret_access_key)
{
    char text[TEXT_MAX] = "[default]\n";

    add_token(text, "aws_secret_access_key = ", base64, 40);
    add_token(text, "\nexport AWS_SECRET_ACCESS_KEY=\"", base64, 40);
    add_token(text, "\"\n{\"awsSecretKey\": \"", base64, 40);
    add(text, "\"}\n");
    expect(text, "aws-secret-access-key:2 aws-secret-access-key:3 "
                 "aws-secret-access-key:4");
}
END_TEST

START_TEST(aws_secret_look_alikes)
{
    char text[TEXT_MAX] = "";

    add_token(text, "secret_access_key = ", base64, 40);
    add_token(text, "\naws_secret_access_key = ", base64, 41);
    add_token(text, "\naws_secret_access_key = ", base64, 39);
    add(text, "\naws_secret_access_key = ${AWS_SECRET}\n");
    expect(text, "");
}
END_TEST

START_TEST(github_token)
{
    char text[TEXT_MAX] = "";
    const char *prefixes[] = {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"};

    for (size_t i = 0; i < 5; i++) {
        add(text, "token=");
        add_token(text, prefixes[i], alnum, 36);
        add(text, "\n");
    }
    add_token(text, "github_pat_", alnum, 22);
    add_token(text, "_", alnum, 59);
    add(text, "\n");
    expect(text, "github-token:1 github-token:2 github-token:3 "
                 "github-token:4 github-token:5 github-token:6");
}
END_TEST

START_TEST(github_token_look_alikes)
{
    char text[TEXT_MAX] = "";

    add_token(text, "ghp_", alnum, 35);
    add_token(text, "\nghp_", alnum, 37);
    add_token(text, "\nghx_", alnum, 36);
    add_token(text, "\nmyghp_", alnum, 36);
    add_token(text, "\ngithub_pat_", alnum, 22);
    add(text, "\n");
    expect(text, "");
}
END_TEST

START_TEST(gitlab_token)
{
    char text[TEXT_MAX] = "";

    add_token(text, "GITLAB_TOKEN=glpat-", alnum, 20);
    add_token(text, "\nshort glpat-", alnum, 19);
    add(text, "\n");
    expect(text, "gitlab-token:1");
}
END_TEST

START_TEST(slack_token)
{
    char text[TEXT_MAX] = "";

    add(text, "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-");
    add_token(text, "", alnum, 24);
    add(text, "\nuser xoxp-1234-5678-");
    add_token(text, "", alnum, 32);
    add(text, "\nnot xoxz-1234-5678-abcdef\nnot xoxb-alone\n");
    expect(text, "slack-token:1 slack-token:2");
}
END_TEST

START_TEST(slack_webhook)
{
    char text[TEXT_MAX] = "# hooks.slack.com/services/ is the endpoint\n";

    add(text, "url: https://hooks.slack.com/services/T");
    add_token(text, "", upper32, 8);
    add_token(text, "/B", upper32, 8);
    add_token(text, "/", alnum, 24);
    add(text, "\n");
    expect(text, "slack-webhook:2");
}
END_TEST

START_TEST(stripe_key)
{
    char text[TEXT_MAX] = "";

    add_token(text, "STRIPE_KEY=sk_live_", alnum, 24);
    add_token(text, "\nrestricted: rk_live_", alnum, 30);
    add_token(text, "\ntest mode: sk_test_", alnum, 24);
    add_token(text, "\nshort: sk_live_", alnum, 23);
    add(text, "\n");
    expect(text, "stripe-key:1 stripe-key:2");
}
END_TEST

START_TEST(npm_token)
{
    char text[TEXT_MAX] = "";

    add_token(text, "//registry.npmjs.org/:_authToken=npm_", alnum, 36);
    add_token(text, "\nshort npm_", alnum, 35);
    add_token(text, "\nnot pnpm_", alnum, 36);
    add(text, "\n");
    expect(text, "npm-token:1");
}
END_TEST

START_TEST(google_service_account)
{
    char text[TEXT_MAX] = "{\n  \"type\": \"service_account\",\n"
                          "  \"project_id\": \"demo\",\n";

    add(text, "  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n");
    add_token(text, "", base64, 64);
    add(text, "\\n-----END PRIVATE KEY-----\\n\",\n}\n");
    expect(text, "private-key:4 google-service-account:4");
}
END_TEST

START_TEST(google_authorized_user_not_reported)
{
    expect("{\n  \"type\": \"authorized_user\",\n"
           "  \"private_key\": \"-----BEGIN\"\n}\n"
           "service_account\n",
           "");
}
END_TEST

START_TEST(docker_config_auth)
{
    char text[TEXT_MAX] =
        "{\n\t\"auths\": {\n\t\t\"registry.example.com\": {\n";

    add_token(text, "\t\t\t\"auth\": \"", base64, 16);
    add(text, "=\"\n\t\t}\n\t}\n}\n");
    expect(text, "docker-config-auth:4");
}
END_TEST

START_TEST(docker_config_look_alikes)
{
    /* A credential helper keeps no secret in the file, and "auth" outside
     * "auths" is something else. */
    expect("{\n\t\"auths\": {\n\t\t\"ghcr.io\": {}\n\t},\n"
           "\t\"credsStore\": \"desktop\"\n}\n",
           "");
    expect("{\"auth\": \"dXNlcjpwYXNz\"}\n", "");
}
END_TEST

START_TEST(url_password)
{
    char text[TEXT_MAX] = "";

    add(text, "DATABASE_URL=postgres://app:");
    add_token(text, "", alnum, 12);
    add(text, "@db.internal:5432/app\nredis://:");
    add_token(text, "", alnum, 8);
    add(text, "@cache:6379/0\n");
    expect(text, "url-password:1 url-password:2");
}
END_TEST

START_TEST(url_password_placeholders)
{
    expect("a: postgres://app:${DB_PASSWORD}@db/app\n"
           "b: postgres://app:$DB_PASSWORD@db/app\n"
           "c: mysql://root:<password>@db/app\n"
           "d: amqp://guest:***@rabbit/\n"
           "e: https://user:password@registry.internal/\n"
           "f: https://user:@registry.internal/\n"
           "g: https://user@registry.internal/\n"
           "h: https://abc:xyz@example.com/\n"
           "i: https://host.internal:8443/path\n",
           "");
}
END_TEST

/* Two keys of one rule on one line make one finding; two rules on one
 * line make two. */
START_TEST(one_finding_per_rule_and_line)
{
    char text[TEXT_MAX] = "";

    add_token(text, "AKIA", upper32, 16);
    add_token(text, " AKIA", "QRSTUVWXYZ", 16);
    add_token(text, " ghp_", alnum, 36);
    add(text, "\n");
    expect(text, "aws-access-key-id:1 github-token:1");
}
END_TEST

/* The line counts lines of any length, and a file without a final
 * newline. */
START_TEST(line_numbers)
{
    char text[TEXT_MAX] = "\n\n";

    for (size_t i = 0; i < 3000; i++)
        add(text, "x");
    add(text, "\n\r\n");
    add_token(text, "AKIA", upper32, 16);
    expect(text, "aws-access-key-id:5");
}
END_TEST

/* ---- private keys from real tools ---- */

/* Runs command in dir; returns the exit status. */
static int
run_in(const char *dir, const char *command)
{
    char line[1024];

    snprintf(line, sizeof(line), "cd '%s' && %s >/dev/null 2>&1", dir, command);
    return system(line);
}

static char *
read_file(const char *dir, const char *name, size_t *len)
{
    char path[512];
    FILE *file;
    char *data = malloc(TEXT_MAX * 2);

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    file = fopen(path, "rb");
    ck_assert_msg(file != NULL, "cannot open %s", path);
    *len = fread(data, 1, TEXT_MAX * 2 - 1, file);
    data[*len] = '\0';
    fclose(file);
    return data;
}

static void
expect_file(const char *dir, const char *name, const char *expected)
{
    size_t len;
    char *data = read_file(dir, name, &len);
    json_t *findings = scan_with(NULL, name, data, len);

    check_secrets(findings, name, expected);
    json_decref(findings);
    free(data);
}

START_TEST(private_keys_from_tools)
{
    char dir[] = "/tmp/pg-secrets-XXXXXX";

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(run_in(dir, "openssl genpkey -algorithm EC -pkeyopt "
                                 "ec_paramgen_curve:P-256 -out pkcs8.pem"),
                     0);
    ck_assert_int_eq(run_in(dir, "openssl genpkey -algorithm EC -pkeyopt "
                                 "ec_paramgen_curve:P-256 -aes256 -pass "
                                 "pass:test -out encrypted.pem"),
                     0);
    ck_assert_int_eq(run_in(dir, "openssl genrsa -traditional -out rsa.pem "
                                 "1024"),
                     0);
    ck_assert_int_eq(run_in(dir, "openssl pkey -in pkcs8.pem -pubout -out "
                                 "public.pem"),
                     0);
    ck_assert_int_eq(run_in(dir, "ssh-keygen -q -t ed25519 -N '' -C test "
                                 "-f id_ed25519"),
                     0);

    expect_file(dir, "pkcs8.pem", "private-key:1");
    expect_file(dir, "encrypted.pem", "private-key:1");
    expect_file(dir, "rsa.pem", "private-key:1");
    expect_file(dir, "id_ed25519", "private-key:1");
    expect_file(dir, "public.pem", "");
    expect_file(dir, "id_ed25519.pub", "");
    ck_assert_int_eq(run_in(dir, "rm -f pkcs8.pem encrypted.pem rsa.pem "
                                 "public.pem id_ed25519 id_ed25519.pub"),
                     0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* A library that parses keys keeps the header as a constant; without key
 * material after it, it is not a key. */
START_TEST(private_key_header_alone)
{
    expect("_SK_START = b\"-----BEGIN OPENSSH PRIVATE KEY-----\"\n"
           "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n",
           "");
}
END_TEST

/* ---- credential files by path ---- */

START_TEST(credential_files_by_path)
{
    static const struct {
        const char *path;
        const char *rule;
    } cases[] = {
        {"root/.aws/credentials", "credential-file-aws"},
        {".aws/credentials", "credential-file-aws"},
        {"root/.aws/credentials.bak", NULL},
        {"root/.aws/config", NULL},
        {"home/app/.ssh/id_rsa", "credential-file-ssh"},
        {"home/app/.ssh/id_ed25519", "credential-file-ssh"},
        {"home/app/.ssh/id_ed25519.pub", NULL},
        {"home/app/.ssh/known_hosts", NULL},
        {"home/app/ssh/id_rsa", NULL},
        {"root/.docker/config.json", "credential-file-docker"},
        {"app/config.json", NULL},
        {"home/app/.npmrc", "credential-file-npm"},
        {"app/x.npmrc", NULL},
        {"root/.pypirc", "credential-file-pypi"},
        {"root/.netrc", "credential-file-netrc"},
        {".git-credentials", "credential-file-git"},
        {"usr/share/doc/git/git-credentials.txt", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct catalog_ctx ctx = {.findings = json_object()};
        char expected[128] = "";

        ck_assert_int_eq(secrets_check_path(&ctx, cases[i].path), 0);
        if (cases[i].rule != NULL)
            snprintf(expected, sizeof(expected), "%s:0", cases[i].rule);
        check_secrets(ctx.findings, cases[i].path, expected);
        json_decref(ctx.findings);
    }
}
END_TEST

/* ---- rules from the configuration ---- */

START_TEST(config_rule_matches)
{
    struct config_secret_rule rules[] = {
        {.name = "acme-api-key",
         .description = "",
         .pattern = "^ACME-[0-9]{8}$"},
    };
    struct pg_error *err = NULL;
    struct inspector_secrets *set = inspector_secrets_new(rules, 1, &err);
    const char text[] = "x ACME-12345678\nACME-12345678\nACME-1234\n";
    char text2[TEXT_MAX] = "ACME-87654321\n";
    json_t *findings;

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(set);
    findings = scan_with(set, "etc/acme", text, strlen(text));
    check_secrets(findings, "etc/acme", "acme-api-key:2");
    json_decref(findings);

    /* The built-in rules still run with a configured set. */
    add_token(text2, "AKIA", upper32, 16);
    findings = scan_with(set, "etc/acme", text2, strlen(text2));
    check_secrets(findings, "etc/acme", "aws-access-key-id:2 acme-api-key:1");
    json_decref(findings);
    inspector_secrets_free(set);
}
END_TEST

static void
expect_rules_error(const struct config_secret_rule *rules, size_t n,
                   const char *message)
{
    struct pg_error *err = NULL;

    ck_assert_ptr_null(inspector_secrets_new(rules, n, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_str_eq(err->message, message);
    pg_error_free(err);
}

/* pcre2test reports "missing closing parenthesis" at offset 6 for this
 * pattern; the message counts columns from 1. */
START_TEST(config_rule_bad_pattern)
{
    struct config_secret_rule rules[] = {
        {.name = "acme-ok", .description = "", .pattern = "acme"},
        {.name = "acme-bad", .description = "", .pattern = "acme-("},
    };

    expect_rules_error(rules, 2,
                       "secret rule \"acme-bad\": invalid pattern at column "
                       "7: missing closing parenthesis; fix the pattern "
                       "(PCRE2 syntax)");
}
END_TEST

START_TEST(config_rule_duplicate_names)
{
    struct config_secret_rule twice[] = {
        {.name = "acme", .description = "", .pattern = "a"},
        {.name = "acme", .description = "", .pattern = "b"},
    };
    struct config_secret_rule builtin[] = {
        {.name = "private-key", .description = "", .pattern = "a"},
    };

    expect_rules_error(twice, 2,
                       "secret rule \"acme\" is defined twice or repeats a "
                       "built-in rule's name; give it another name");
    expect_rules_error(builtin, 1,
                       "secret rule \"private-key\" is defined twice or "
                       "repeats a built-in rule's name; give it another "
                       "name");
}
END_TEST

/* ---- maxima ---- */

/* Builds n lines that each hold an access key ID. */
static void
key_lines(char *text, size_t n)
{
    text[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        add_token(text, "AKIA", upper32, 16);
        add(text, "\n");
    }
}

START_TEST(file_maximum)
{
    char text[TEXT_MAX];
    json_t *findings;
    const json_t *notes;

    key_lines(text, SECRETS_FILE_FINDINGS_MAX + 8);
    findings = scan_with(NULL, "app/keys", text, strlen(text));
    ck_assert_uint_eq(json_array_size(json_object_get(findings, "secrets")),
                      32);
    notes = json_object_get(findings, "notes");
    ck_assert_uint_eq(json_array_size(notes), 1);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(notes, 0), "message")),
        "8 more secret findings in this file were not recorded; a file keeps "
        "at most 32");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(notes, 0),
                                                       "cataloger")),
                     "secrets");
    json_decref(findings);

    key_lines(text, SECRETS_FILE_FINDINGS_MAX);
    findings = scan_with(NULL, "app/keys", text, strlen(text));
    ck_assert_uint_eq(json_array_size(json_object_get(findings, "secrets")),
                      32);
    ck_assert_ptr_null(json_object_get(findings, "notes"));
    json_decref(findings);
}
END_TEST

START_TEST(layer_maximum)
{
    struct catalog_ctx ctx = {.findings = json_object()};
    char text[TEXT_MAX];
    const json_t *notes;
    size_t files = SECRETS_LAYER_FINDINGS_MAX / SECRETS_FILE_FINDINGS_MAX;

    /* 31 files of 32 findings make 992; the 32nd file fills the layer at
     * its 8th finding and loses 24. */
    ck_assert_uint_eq(files, 31);
    key_lines(text, SECRETS_FILE_FINDINGS_MAX);
    for (size_t i = 0; i <= files + 1; i++)
        ck_assert_int_eq(secrets_scan(&ctx, "app/keys",
                                      (const unsigned char *)text,
                                      strlen(text)),
                         0);
    ck_assert_int_eq(secrets_check_path(&ctx, "root/.netrc"), 0);

    ck_assert_uint_eq(json_array_size(json_object_get(ctx.findings, "secrets")),
                      1000);
    notes = json_object_get(ctx.findings, "notes");
    ck_assert_uint_eq(json_array_size(notes), 1);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(notes, 0), "message")),
        "the layer reached its maximum of 1000 secret findings here: 24 more "
        "in this file were not recorded, and later files were not scanned "
        "for secrets");
    json_decref(ctx.findings);
}
END_TEST

/* ---- the prefilter against every rule over the whole file ---- */

/* Lists "RULE:LINE" for every line on which a match of the rule starts
 * when the search begins at that line, as the scanner defines findings,
 * by running each rule's regular expression over the whole file. */
static void
reference_findings(const struct inspector_secrets *set, const char *text,
                   size_t len, char *out, size_t size)
{
    pcre2_match_data *match_data = pcre2_match_data_create(1, NULL);
    size_t used = 0;

    out[0] = '\0';
    for (size_t r = 0; r < set->n_rules; r++) {
        const struct secret_rule *rule = &set->rules[r];
        size_t line = 1;

        if (rule->gate != NULL && pcre2_match(rule->gate, (PCRE2_SPTR)text, len,
                                              0, 0, match_data, NULL) < 0)
            continue;
        for (size_t start = 0; start <= len; line++) {
            const char *newline = memchr(text + start, '\n', len - start);
            size_t end = newline != NULL ? (size_t)(newline - text) : len;
            int rc = pcre2_match(rule->pattern, (PCRE2_SPTR)text, len, start, 0,
                                 match_data, NULL);

            if (rc >= 0 && pcre2_get_ovector_pointer(match_data)[0] <= end)
                used += (size_t)snprintf(out + used, size - used, "%s:%zu\n",
                                         rule->name, line);
            if (newline == NULL)
                break;
            start = end + 1;
        }
    }
    pcre2_match_data_free(match_data);
}

/* Lists the scanner's findings the same way, sorted by rule order. */
static void
scanner_findings(const struct inspector_secrets *set, const json_t *findings,
                 char *out, size_t size)
{
    const json_t *list = json_object_get(findings, "secrets");
    size_t used = 0;

    out[0] = '\0';
    for (size_t r = 0; r < set->n_rules; r++) {
        /* Within a rule, findings come in line order. */
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *item = json_array_get(list, i);

            if (strcmp(json_string_value(json_object_get(item, "rule")),
                       set->rules[r].name) != 0)
                continue;
            used += (size_t)snprintf(
                out + used, size - used, "%s:%lld\n", set->rules[r].name,
                (long long)json_integer_value(json_object_get(item, "line")));
        }
    }
}

/* Pieces that random texts are made of: literals, the characters around
 * them in real secrets, and line breaks. */
static const char *const pieces[] = {
    "AKIA",
    "ASIA",
    "ABCDEFGHIJKLMNOP",
    "QRSTUVWX234567",
    "aws",
    "secret",
    "SECRET",
    "_access_key",
    " = ",
    "=",
    ":",
    "\"",
    "'",
    "\n",
    "\n",
    "\r\n",
    " ",
    "\t",
    "-----BEGIN ",
    "RSA ",
    "PRIVATE KEY-----",
    "MIIEowIBAAKCAQEAvfTdv+3fgvVTKR",
    "\\n",
    "ghp_",
    "github_pat_",
    "abcdefghij0123456789",
    "glpat-",
    "xoxb-",
    "-1234-",
    "hooks.slack.com/services/T",
    "/B",
    "sk_live_",
    "rk_live_",
    "npm_",
    "\"type\"",
    "\"service_account\"",
    "\"private_key\"",
    "\"auths\"",
    "{",
    "}",
    "\"auth\"",
    "dXNlcjpwYXNz",
    "://",
    "postgres",
    "user",
    "@",
    "db",
    "$VAR",
    "password",
    "example.com",
    "x",
    "7",
    "/",
    "+",
};

START_TEST(prefilter_matches_full_scan)
{
    struct config_secret_rule extra[] = {
        {.name = "custom", .description = "", .pattern = "^user.*db$"},
    };
    struct pg_error *err = NULL;
    struct inspector_secrets *set = inspector_secrets_new(extra, 1, &err);
    size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
    unsigned seed = 20240601;
    size_t compared = 0;

    ck_assert_ptr_nonnull(set);
    for (int round = 0; round < 3000; round++) {
        char text[TEXT_MAX] = "";
        char expected[TEXT_MAX];
        char actual[TEXT_MAX];
        size_t n = 1 + (size_t)rand_r(&seed) % 120;
        json_t *findings;

        for (size_t i = 0; i < n; i++) {
            const char *piece = pieces[(size_t)rand_r(&seed) % n_pieces];
            /* Repeats make tokens long enough to match. */
            size_t repeat = 1 + (size_t)rand_r(&seed) % 3;

            for (size_t k = 0; k < repeat; k++)
                add(text, piece);
        }
        findings = scan_with(set, "random", text, strlen(text));
        if (json_array_size(json_object_get(findings, "secrets")) <
            SECRETS_FILE_FINDINGS_MAX) {
            reference_findings(set, text, strlen(text), expected,
                               sizeof(expected));
            scanner_findings(set, findings, actual, sizeof(actual));
            ck_assert_msg(strcmp(expected, actual) == 0,
                          "round %d: expected\n%s\nfound\n%s\nin\n%s", round,
                          expected, actual, text);
            if (expected[0] != '\0')
                compared++;
        }
        json_decref(findings);
    }
    /* Most rounds must find something, or the comparison proves little. */
    ck_assert_uint_gt(compared, 1000);
    inspector_secrets_free(set);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("secrets");
    TCase *rules = tcase_create("rules");
    TCase *files = tcase_create("files");
    TCase *config = tcase_create("config");
    TCase *limits = tcase_create("limits");
    SRunner *runner;
    int failed;

    tcase_add_test(rules, aws_access_key_id);
    tcase_add_test(rules, aws_example_key);
    tcase_add_test(rules, aws_access_key_look_alikes);
    tcase_add_test(rules, aws_secret_access_key);
    tcase_add_test(rules, aws_secret_look_alikes);
    tcase_add_test(rules, github_token);
    tcase_add_test(rules, github_token_look_alikes);
    tcase_add_test(rules, gitlab_token);
    tcase_add_test(rules, slack_token);
    tcase_add_test(rules, slack_webhook);
    tcase_add_test(rules, stripe_key);
    tcase_add_test(rules, npm_token);
    tcase_add_test(rules, google_service_account);
    tcase_add_test(rules, google_authorized_user_not_reported);
    tcase_add_test(rules, docker_config_auth);
    tcase_add_test(rules, docker_config_look_alikes);
    tcase_add_test(rules, url_password);
    tcase_add_test(rules, url_password_placeholders);
    tcase_add_test(rules, one_finding_per_rule_and_line);
    tcase_add_test(rules, line_numbers);
    tcase_add_test(rules, private_key_header_alone);
    tcase_add_test(rules, prefilter_matches_full_scan);
    tcase_set_timeout(rules, 60);
    suite_add_tcase(suite, rules);

    tcase_add_test(files, private_keys_from_tools);
    tcase_add_test(files, credential_files_by_path);
    tcase_set_timeout(files, 60);
    suite_add_tcase(suite, files);

    tcase_add_test(config, config_rule_matches);
    tcase_add_test(config, config_rule_bad_pattern);
    tcase_add_test(config, config_rule_duplicate_names);
    suite_add_tcase(suite, config);

    tcase_add_test(limits, file_maximum);
    tcase_add_test(limits, layer_maximum);
    suite_add_tcase(suite, limits);

    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
