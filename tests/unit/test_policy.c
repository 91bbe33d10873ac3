/*
 * Unit tests for the policy module: loading version 1 policy files, their
 * errors, the policy digest, and the verdicts of every rule kind on
 * hand-written image documents.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "config/error.h"
#include "config/limits.h"
#include "policy/policy.h"

/* One expected entry of a verdict's "denied" or "warnings" list. */
struct finding {
    const char *rule;
    const char *message;
};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static const char *
source_dir(void)
{
    const char *dir = getenv("PG_SRCDIR");

    return dir != NULL && dir[0] != '\0' ? dir : ".";
}

static struct policy *
parse_ok(const char *yaml)
{
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", yaml, strlen(yaml), &err);
    ck_assert_msg(policy != NULL, "policy failed to load: %s",
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    return policy;
}

static json_t *
document(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);

    ck_assert_msg(value != NULL, "bad test document: %s", error.text);
    return value;
}

static void
check_findings(const json_t *list, const struct finding *expected, size_t count)
{
    ck_assert_int_eq(json_is_array(list), 1);
    ck_assert_uint_eq(json_array_size(list), count);
    for (size_t i = 0; i < count; i++) {
        const json_t *entry = json_array_get(list, i);

        ck_assert_uint_eq(json_object_size(entry), 2);
        ck_assert_str_eq(json_string_value(json_object_get(entry, "rule")),
                         expected[i].rule);
        ck_assert_str_eq(json_string_value(json_object_get(entry, "message")),
                         expected[i].message);
    }
}

/* Compares a verdict field by field and releases it. */
static void
check_verdict(json_t *verdict, const struct policy *policy,
              const char *decision, const struct finding *denied,
              size_t n_denied, const struct finding *warnings,
              size_t n_warnings)
{
    ck_assert_ptr_nonnull(verdict);
    ck_assert_uint_eq(json_object_size(verdict), 4);
    ck_assert_str_eq(json_string_value(json_object_get(verdict, "decision")),
                     decision);
    ck_assert_str_eq(
        json_string_value(json_object_get(verdict, "policy_digest")),
        policy_digest(policy));
    check_findings(json_object_get(verdict, "denied"), denied, n_denied);
    check_findings(json_object_get(verdict, "warnings"), warnings, n_warnings);
    json_decref(verdict);
}

/* Evaluates the document text against the policy text. */
static json_t *
evaluate(const struct policy *policy, const char *document_text)
{
    struct pg_error *err = NULL;
    json_t *doc = document(document_text);
    json_t *verdict = policy_evaluate(policy, doc, &err);

    ck_assert_ptr_null(err);
    json_decref(doc);
    return verdict;
}

static const char files_policy[] =
    "version: 1\n"
    "rules:\n"
    "  - name: no-credential-files\n"
    "    kind: deny_files\n"
    "    message: image contains a cloud credential or SSH private key file\n"
    "    paths:\n"
    "      - '(^|/)\\.aws/credentials$'\n"
    "      - '(^|/)\\.ssh/id_[^/]+$'\n"
    "    except_paths: ['\\.pub$']\n";

static const char root_policy[] =
    "version: 1\n"
    "rules:\n"
    "  - name: root-user\n"
    "    kind: require_non_root\n"
    "    action: warn\n"
    "    message: image runs as root; set USER to a non-root user\n";

static const char source_policy[] =
    "version: 1\n"
    "rules:\n"
    "  - name: no-docker-hub\n"
    "    kind: denied_registries\n"
    "    registries: [docker.io]\n"
    "    message: pulls from Docker Hub are blocked; use the internal "
    "registry\n"
    "  - name: no-dev-images\n"
    "    kind: denied_repositories\n"
    "    patterns: ['^library/.*-dev$']\n"
    "    message: development images are not allowed\n"
    "  - name: root-user\n"
    "    kind: require_non_root\n"
    "    message: image runs as root\n";

#define CREDENTIALS_MESSAGE                                                    \
    "image contains a cloud credential or SSH private key file"
#define ROOT_MESSAGE "image runs as root; set USER to a non-root user"

/*
 * The built-in default policy.
 */

START_TEST(default_loads)
{
    struct pg_error *err = NULL;
    struct policy *policy = policy_load(NULL, &err);

    ck_assert_ptr_nonnull(policy);
    ck_assert_ptr_null(err);
    ck_assert_str_eq(policy_source(policy), "built-in default policy");
    ck_assert_uint_eq(strlen(policy_digest(policy)), 71);
    ck_assert_int_eq(strncmp(policy_digest(policy), "sha256:", 7), 0);
    policy_free(policy);
}
END_TEST

START_TEST(default_digest_stable)
{
    struct policy *first = policy_load(NULL, NULL);
    struct policy *second = policy_load(NULL, NULL);

    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(policy_digest(first), policy_digest(second));
    policy_free(second);
    policy_free(first);
}
END_TEST

START_TEST(default_equals_file)
{
    char path[4096];
    struct pg_error *err = NULL;
    struct policy *builtin = policy_load(NULL, NULL);
    struct policy *file;

    snprintf(path, sizeof(path), "%s/config/policy/default.yaml", source_dir());
    file = policy_load(path, &err);
    ck_assert_msg(file != NULL, "%s", err != NULL ? err->message : "");
    ck_assert_str_eq(policy_source(file), path);
    ck_assert_str_eq(policy_digest(file), policy_digest(builtin));
    policy_free(file);
    policy_free(builtin);
}
END_TEST

START_TEST(default_verdict)
{
    static const struct finding denied[] = {
        {"no-credential-files",
         CREDENTIALS_MESSAGE " (root/.aws/credentials, home/app/.ssh/id_rsa)"},
    };
    static const struct finding warnings[] = {
        {"root-user", ROOT_MESSAGE},
    };
    struct policy *policy = policy_load(NULL, NULL);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"inspection\": {\"status\": \"ok\"},"
                " \"config\": {\"user\": \"\"}, \"files\": ["
                "{\"path\": \"root/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"home/app/.ssh/id_rsa.pub\", \"type\": \"file\"},"
                "{\"path\": \"home/app/.ssh/id_rsa\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), warnings,
                  COUNT(warnings));
    policy_free(policy);
}
END_TEST

/*
 * The policy digest.
 */

/* The digest is SHA-256 over the compact, key-sorted JSON with defaults. */
START_TEST(digest_canonical_form)
{
    static const char canonical[] =
        "{\"on_inspection_failure\":\"deny\",\"rules\":[{\"action\":\"deny\","
        "\"except_paths\":[],\"kind\":\"deny_files\",\"message\":\"m\","
        "\"name\":\"r1\",\"paths\":[\"x$\"]}],\"version\":1}";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char expected[72] = "sha256:";
    struct policy *policy = parse_ok("version: 1\n"
                                     "rules:\n"
                                     "  - name: r1\n"
                                     "    kind: deny_files\n"
                                     "    message: m\n"
                                     "    paths: ['x$']\n");

    ck_assert_int_eq(EVP_Digest(canonical, strlen(canonical), md, &md_len,
                                EVP_sha256(), NULL),
                     1);
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(expected + 7 + 2 * i, 3, "%02x", md[i]);
    ck_assert_str_eq(policy_digest(policy), expected);
    policy_free(policy);
}
END_TEST

START_TEST(digest_ignores_layout)
{
    struct policy *plain = parse_ok(root_policy);
    struct policy *styled = parse_ok(
        "# A comment that changes nothing.\n"
        "rules: [{kind: require_non_root, name: root-user,\n"
        "         message: 'image runs as root; set USER to a non-root user',"
        "\n         action: warn}]\n"
        "on_inspection_failure: deny   # the default, spelled out\n"
        "version: 1\n");

    ck_assert_str_eq(policy_digest(styled), policy_digest(plain));
    policy_free(styled);
    policy_free(plain);
}
END_TEST

START_TEST(digest_changes_with_rule)
{
    struct policy *warn = parse_ok(root_policy);
    struct policy *deny = parse_ok(
        "version: 1\n"
        "rules:\n"
        "  - name: root-user\n"
        "    kind: require_non_root\n"
        "    action: deny\n"
        "    message: image runs as root; set USER to a non-root user\n");

    ck_assert_str_ne(policy_digest(deny), policy_digest(warn));
    policy_free(deny);
    policy_free(warn);
}
END_TEST

START_TEST(digest_changes_with_pattern)
{
    struct policy *before = parse_ok(files_policy);
    struct policy *after = parse_ok(
        "version: 1\n"
        "rules:\n"
        "  - name: no-credential-files\n"
        "    kind: deny_files\n"
        "    message: image contains a cloud credential or SSH private key "
        "file\n"
        "    paths:\n"
        "      - '(^|/)\\.aws/credentials$'\n"
        "      - '(^|/)\\.ssh/id_[^/]+$'\n"
        "    except_paths: ['\\.pem$']\n");

    ck_assert_str_ne(policy_digest(after), policy_digest(before));
    policy_free(after);
    policy_free(before);
}
END_TEST

/*
 * deny_secrets.
 */

static const char secrets_policy[] =
    "version: 1\n"
    "rules:\n"
    "  - name: no-keys\n"
    "    kind: deny_secrets\n"
    "    message: image contains a secret\n"
    "    secrets: [aws-access-key-id, private-key]\n";

START_TEST(secrets_fires)
{
    static const struct finding denied[] = {
        {"no-keys", "image contains a secret: aws-access-key-id in "
                    "app/.env (layer 1, line 3), private-key in "
                    "etc/ssl/private/site.key (layer 2, line 1)"},
    };
    struct policy *policy = parse_ok(secrets_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"secrets\": ["
                "{\"rule\": \"aws-access-key-id\", \"path\": \"app/.env\","
                " \"layer\": 1, \"line\": 3, \"present\": true},"
                "{\"rule\": \"github-token\", \"path\": \"app/.env\","
                " \"layer\": 1, \"line\": 4, \"present\": true},"
                "{\"rule\": \"private-key\", \"path\":"
                " \"etc/ssl/private/site.key\", \"layer\": 2, \"line\": 1,"
                " \"present\": false}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

/* A finding in the image config has no file, layer or line. */
START_TEST(secrets_in_config)
{
    static const struct finding denied[] = {
        {"no-keys", "image contains a secret: aws-access-key-id in the "
                    "image config"},
    };
    struct policy *policy = parse_ok(secrets_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"secrets\": ["
                "{\"rule\": \"aws-access-key-id\", \"source\": \"config\","
                " \"path\": \"\", \"layer\": null, \"line\": 0,"
                " \"present\": true}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(secrets_no_match)
{
    struct policy *policy = parse_ok(secrets_policy);

    check_verdict(evaluate(policy,
                           "{\"kind\": \"image\", \"secrets\": ["
                           "{\"rule\": \"url-password\", \"path\": \"a\","
                           " \"layer\": 0, \"line\": 1, \"present\": true}]}"),
                  policy, "allow", NULL, 0, NULL, 0);
    check_verdict(evaluate(policy, "{\"kind\": \"image\"}"), policy, "allow",
                  NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

/* "*" names every rule; a finding by path alone has line 0 and the
 * message leaves the line out. */
START_TEST(secrets_star_and_path_findings)
{
    static const struct finding warnings[] = {
        {"any-secret", "secret found: credential-file-netrc in root/.netrc "
                       "(layer 0), url-password in etc/app.conf (layer 3, "
                       "line 12)"},
    };
    struct policy *policy =
        parse_ok("version: 1\n"
                 "rules:\n"
                 "  - name: any-secret\n"
                 "    kind: deny_secrets\n"
                 "    action: warn\n"
                 "    message: secret found\n"
                 "    secrets: ['*']\n");
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"secrets\": ["
                "{\"rule\": \"credential-file-netrc\", \"path\":"
                " \"root/.netrc\", \"layer\": 0, \"line\": 0,"
                " \"present\": true},"
                "{\"rule\": \"url-password\", \"path\": \"etc/app.conf\","
                " \"layer\": 3, \"line\": 12, \"present\": true}]}");

    check_verdict(verdict, policy, "allow", NULL, 0, warnings,
                  COUNT(warnings));
    policy_free(policy);
}
END_TEST

/* Ten findings are listed; the rest are counted. */
START_TEST(secrets_more_than_listed)
{
    struct policy *policy = parse_ok(secrets_policy);
    char document_text[4096] = "{\"kind\": \"image\", \"secrets\": [";
    char expected[2048] = "image contains a secret: ";
    struct finding denied[1] = {{"no-keys", expected}};
    json_t *verdict;

    for (int i = 1; i <= 12; i++) {
        size_t used = strlen(document_text);

        snprintf(document_text + used, sizeof(document_text) - used,
                 "%s{\"rule\": \"private-key\", \"path\": \"k%d.pem\","
                 " \"layer\": 0, \"line\": 1, \"present\": true}",
                 i > 1 ? ", " : "", i);
        if (i > 10)
            continue;
        used = strlen(expected);
        snprintf(expected + used, sizeof(expected) - used,
                 "%sprivate-key in k%d.pem (layer 0, line 1)",
                 i > 1 ? ", " : "", i);
    }
    memcpy(document_text + strlen(document_text), "]}", 3);
    memcpy(expected + strlen(expected), " and 2 more", 12);

    verdict = evaluate(policy, document_text);
    check_verdict(verdict, policy, "deny", denied, 1, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(secrets_load_errors)
{
    struct pg_error *err = NULL;
    static const char *const cases[][2] = {
        {"version: 1\nrules:\n  - name: s\n    kind: deny_secrets\n"
         "    message: m\n",
         "test.yaml:3:5: missing required key \"secrets\" in rule \"s\"; list "
         "the secret rule names to deny, such as [private-key], or [\"*\"] "
         "for every rule"},
        {"version: 1\nrules:\n  - name: s\n    kind: deny_secrets\n"
         "    message: m\n    secrets: []\n",
         "test.yaml:6:14: \"secrets\" in rule \"s\" is empty; list the secret "
         "rule names to deny, such as [private-key], or [\"*\"] for every "
         "rule"},
        {"version: 1\nrules:\n  - name: s\n    kind: deny_secrets\n"
         "    message: m\n    secrets: private-key\n",
         "test.yaml:6:14: \"secrets\" in rule \"s\" must be a sequence, not a "
         "string; write a list, either [a, b] or one \"- item\" per line"},
        {"version: 1\nrules:\n  - name: s\n    kind: deny_files\n"
         "    message: m\n    paths: [x]\n    secrets: [x]\n",
         "test.yaml:7:5: key \"secrets\" is not allowed in rule \"s\" of kind "
         "deny_files; remove it, because only deny_secrets rules read it"},
    };

    for (size_t i = 0; i < COUNT(cases); i++) {
        ck_assert_ptr_null(
            policy_parse("test.yaml", cases[i][0], strlen(cases[i][0]), &err));
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(err->message, cases[i][1]);
        pg_error_free(err);
        err = NULL;
    }
}
END_TEST

/* The default policy denies content secrets but leaves url-password to
 * the operator. */
START_TEST(secrets_default_policy)
{
    static const struct finding denied[] = {
        {"no-embedded-secrets",
         "image contains a secret: github-token in app/config.yml (layer 1, "
         "line 7), google-service-account in app/sa.json (layer 1, line 5)"},
    };
    static const struct finding warnings[] = {
        {"root-user", ROOT_MESSAGE},
    };
    struct policy *policy = policy_load(NULL, NULL);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"config\": {\"user\": \"root\"},"
                " \"files\": [], \"secrets\": ["
                "{\"rule\": \"github-token\", \"path\": \"app/config.yml\","
                " \"layer\": 1, \"line\": 7, \"present\": true},"
                "{\"rule\": \"url-password\", \"path\": \"app/config.yml\","
                " \"layer\": 1, \"line\": 9, \"present\": true},"
                "{\"rule\": \"google-service-account\", \"path\":"
                " \"app/sa.json\", \"layer\": 1, \"line\": 5,"
                " \"present\": true}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), warnings,
                  COUNT(warnings));
    policy_free(policy);
}
END_TEST

/*
 * deny_files.
 */

START_TEST(files_fires)
{
    static const struct finding denied[] = {
        {"no-credential-files", CREDENTIALS_MESSAGE " (root/.aws/credentials)"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"etc/passwd\", \"layer\": 0, \"type\": \"file\"},"
                "{\"path\": \"root/.aws/credentials\", \"layer\": 1,"
                " \"type\": \"file\", \"mode\": 384}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_no_match)
{
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"etc/passwd\", \"type\": \"file\"},"
                "{\"path\": \"root/.aws/config\", \"type\": \"file\"},"
                "{\"path\": \"root/.aws/credentials.bak\", \"type\": \"file\"},"
                "{\"path\": \"root/.ssh/id_rsa/x\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_no_files_key)
{
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(policy, "{\"kind\": \"image\"}");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_except_paths)
{
    static const struct finding denied[] = {
        {"no-credential-files", CREDENTIALS_MESSAGE " (root/.ssh/id_ed25519)"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"root/.ssh/id_ed25519.pub\", \"type\": \"file\"},"
                "{\"path\": \"root/.ssh/id_ed25519\", \"type\": \"file\"},"
                "{\"path\": \"root/.ssh/id_rsa.pub\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_more_than_five)
{
    static const struct finding denied[] = {
        {"no-credential-files",
         CREDENTIALS_MESSAGE " (a/.aws/credentials, b/.aws/credentials, "
                             "c/.aws/credentials, d/.aws/credentials, "
                             "e/.aws/credentials, ...)"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"a/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"b/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"c/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"d/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"e/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"f/.aws/credentials\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_exactly_five)
{
    static const struct finding denied[] = {
        {"no-credential-files",
         CREDENTIALS_MESSAGE " (a/.aws/credentials, b/.aws/credentials, "
                             "c/.aws/credentials, d/.aws/credentials, "
                             "e/.aws/credentials)"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"a/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"b/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"c/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"d/.aws/credentials\", \"type\": \"file\"},"
                "{\"path\": \"e/.aws/credentials\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

/* A path written by two layers is listed once. */
START_TEST(files_repeated_path)
{
    static const struct finding denied[] = {
        {"no-credential-files", CREDENTIALS_MESSAGE " (root/.aws/credentials)"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict =
        evaluate(policy, "{\"kind\": \"image\", \"files\": ["
                         "{\"path\": \"root/.aws/credentials\", \"layer\": 0,"
                         " \"type\": \"file\"},"
                         "{\"path\": \"root/.aws/credentials\", \"layer\": 2,"
                         " \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_whiteouts_ignored)
{
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict =
        evaluate(policy, "{\"kind\": \"image\", \"files\": ["
                         "{\"path\": \"root/.aws/credentials\", \"layer\": 1,"
                         " \"type\": \"whiteout\"},"
                         "{\"path\": \"root/.ssh/id_rsa\", \"layer\": 1,"
                         " \"type\": \"opaque_whiteout\"}]}");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

/* A file that a later layer deletes still leaves its bytes in the image. */
START_TEST(files_deleted_still_count)
{
    static const struct finding denied[] = {
        {"no-credential-files", CREDENTIALS_MESSAGE " (root/.aws/credentials)"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict =
        evaluate(policy, "{\"kind\": \"image\", \"files\": ["
                         "{\"path\": \"root/.aws/credentials\", \"layer\": 0,"
                         " \"type\": \"file\", \"deleted\": true},"
                         "{\"path\": \"root/.aws/credentials\", \"layer\": 1,"
                         " \"type\": \"whiteout\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(files_warn_action)
{
    static const struct finding warnings[] = {
        {"no-keys", "image contains a private key (etc/ssl/server.key)"},
    };
    struct policy *policy = parse_ok("version: 1\n"
                                     "rules:\n"
                                     "  - name: no-keys\n"
                                     "    kind: deny_files\n"
                                     "    action: warn\n"
                                     "    message: image contains a private "
                                     "key\n"
                                     "    paths: ['\\.key$']\n");
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"etc/ssl/server.key\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "allow", NULL, 0, warnings, COUNT(warnings));
    policy_free(policy);
}
END_TEST

/*
 * A pattern with nested quantifiers backtracks exponentially on a path of
 * a's that does not end the way it requires. The match limit stops it, and
 * the rule denies the image even though its action is warn.
 */
START_TEST(files_match_limit)
{
    static const struct finding denied[] = {
        {"slow",
         "rule could not be evaluated: pattern '^(a+)+$' failed on "
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\": match limit of "
         "1000000 steps exceeded; simplify the pattern, for example by "
         "removing nested quantifiers"},
    };
    struct policy *policy = parse_ok("version: 1\n"
                                     "rules:\n"
                                     "  - name: slow\n"
                                     "    kind: deny_files\n"
                                     "    action: warn\n"
                                     "    message: m\n"
                                     "    paths: ['^(a+)+$']\n");
    time_t start = time(NULL);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"files\": ["
                "{\"path\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\","
                " \"type\": \"file\"}]}");

    ck_assert_int_le(time(NULL) - start, 5);
    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

/*
 * require_non_root.
 */

/* USER values that run as root, as JSON. Runtimes read an empty uid part
 * as root, and a numeric uid with an optional sign, modulo 2^32. */
static const char *const root_users[] = {
    "\"\"",
    "\"root\"",
    "\"0\"",
    "\"0:0\"",
    "\"root:wheel\"",
    "\"00\"",
    "null",
    "7",
    "\":0\"",
    "\":\"",
    "\":1000\"",
    "\"+0\"",
    "\"-0\"",
    "\"0000\"",
    "\"+0:1000\"",
    "\"4294967296\"",
    "\"-4294967296\"",
    "\"+4294967296:0\"",
    "\"8589934592\"",
    "\"18446744073709551616\"",
    "\"000000000000000000000000000004294967296\"",
    "\"340282366920938463463374607431768211456\"",
};

START_TEST(root_fires)
{
    static const struct finding warnings[] = {
        {"root-user", ROOT_MESSAGE},
    };
    struct policy *policy = parse_ok(root_policy);
    char text[256];
    json_t *verdict;

    snprintf(text, sizeof(text),
             "{\"kind\": \"image\", \"config\": {\"user\": %s}}",
             root_users[_i]);
    verdict = evaluate(policy, text);
    check_verdict(verdict, policy, "allow", NULL, 0, warnings, COUNT(warnings));
    policy_free(policy);
}
END_TEST

static const char *const non_root_users[] = {
    "1000",        "nobody", "1000:0", "rooty", "65532:65532", "app:root",
    "0x",          "65534",  "+1000",  "-1",    "4294967295",  "4294967297",
    "-4294967295", "+",      "-",      "+-0",   "0 ",          " 0",
    "0_0",         "1e0",    "ROOT",   "root ", "0x0",
};

START_TEST(root_does_not_fire)
{
    struct policy *policy = parse_ok(root_policy);
    char text[256];
    json_t *verdict;

    snprintf(text, sizeof(text),
             "{\"kind\": \"image\", \"config\": {\"user\": \"%s\"}}",
             non_root_users[_i]);
    verdict = evaluate(policy, text);
    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

/* An image config without a user runs as root. */
START_TEST(root_user_absent)
{
    static const struct finding warnings[] = {
        {"root-user", ROOT_MESSAGE},
    };
    struct policy *policy = parse_ok(root_policy);
    json_t *verdict = evaluate(policy, "{\"kind\": \"image\", \"config\": {}}");

    check_verdict(verdict, policy, "allow", NULL, 0, warnings, COUNT(warnings));
    policy_free(policy);
}
END_TEST

START_TEST(root_deny_action)
{
    static const struct finding denied[] = {
        {"root-user", "image runs as root"},
    };
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"config\": {\"user\": \"root\"}}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

/* Every rule that fires is listed, in file order. */
START_TEST(rules_in_file_order)
{
    static const struct finding denied[] = {
        {"second", "m2 (x.pem)"},
        {"third", "m3"},
    };
    static const struct finding warnings[] = {
        {"first", "m1 (x.pem)"},
        {"fourth", "m4"},
    };
    struct policy *policy = parse_ok("version: 1\n"
                                     "rules:\n"
                                     "  - {name: first, kind: deny_files,"
                                     " action: warn, message: m1,"
                                     " paths: [pem]}\n"
                                     "  - {name: second, kind: deny_files,"
                                     " message: m2, paths: [pem]}\n"
                                     "  - {name: third, kind: require_non_root,"
                                     " message: m3}\n"
                                     "  - {name: fourth,"
                                     " kind: require_non_root,"
                                     " action: warn, message: m4}\n");
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"config\": {\"user\": \"0\"},"
                " \"files\": [{\"path\": \"x.pem\", \"type\": \"file\"}]}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), warnings,
                  COUNT(warnings));
    policy_free(policy);
}
END_TEST

/*
 * Inspection failures and artifacts.
 */

static const char failed_document[] =
    "{\"kind\": \"image\", \"config\": {\"user\": \"root\"},"
    " \"inspection\": {\"status\": \"failed\","
    " \"error\": \"layer exceeds 1000000 entries\"},"
    " \"files\": [{\"path\": \"root/.aws/credentials\", \"type\": \"file\"}]}";

START_TEST(failed_deny)
{
    static const struct finding denied[] = {
        {"inspection-failed",
         "inspection failed: layer exceeds 1000000 entries"},
    };
    struct policy *policy = parse_ok("version: 1\n"
                                     "on_inspection_failure: deny\n"
                                     "rules:\n"
                                     "  - name: root-user\n"
                                     "    kind: require_non_root\n"
                                     "    message: m\n");
    json_t *verdict = evaluate(policy, failed_document);

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(failed_default_denies)
{
    static const struct finding denied[] = {
        {"inspection-failed",
         "inspection failed: layer exceeds 1000000 entries"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict = evaluate(policy, failed_document);

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(failed_warn)
{
    static const struct finding warnings[] = {
        {"inspection-failed",
         "inspection failed: layer exceeds 1000000 entries"},
    };
    struct policy *policy = parse_ok("version: 1\n"
                                     "on_inspection_failure: warn\n"
                                     "rules:\n"
                                     "  - name: root-user\n"
                                     "    kind: require_non_root\n"
                                     "    message: m\n");
    json_t *verdict = evaluate(policy, failed_document);

    check_verdict(verdict, policy, "allow", NULL, 0, warnings, COUNT(warnings));
    policy_free(policy);
}
END_TEST

START_TEST(failed_allow)
{
    struct policy *policy = parse_ok("version: 1\n"
                                     "on_inspection_failure: allow\n"
                                     "rules:\n"
                                     "  - name: root-user\n"
                                     "    kind: require_non_root\n"
                                     "    message: m\n");
    json_t *verdict = evaluate(policy, failed_document);

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(failed_without_error)
{
    static const struct finding denied[] = {
        {"inspection-failed", "inspection failed: no error was recorded"},
    };
    struct policy *policy = parse_ok(files_policy);
    json_t *verdict =
        evaluate(policy, "{\"kind\": \"image\", \"inspection\": {\"status\": "
                         "\"failed\"}}");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(artifact_skipped)
{
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict =
        evaluate(policy, "{\"kind\": \"artifact\", \"inspection\": {\"status\":"
                         " \"ok\"}, \"config\": {\"user\": \"root\"}}");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(evaluate_not_object)
{
    struct policy *policy = parse_ok(files_policy);
    json_t *array = json_array();
    struct pg_error *err = NULL;

    ck_assert_ptr_null(policy_evaluate(policy, array, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_INTERNAL);
    pg_error_free(err);
    json_decref(array);
    policy_free(policy);
}
END_TEST

/*
 * Source rules.
 */

START_TEST(source_registry_fires)
{
    static const struct finding denied[] = {
        {"no-docker-hub",
         "pulls from Docker Hub are blocked; use the internal registry"},
    };
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict =
        policy_check_source(policy, "Docker.IO", "library/alpine", "3.20");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(source_repository_fires)
{
    static const struct finding denied[] = {
        {"no-dev-images", "development images are not allowed"},
    };
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict =
        policy_check_source(policy, "ghcr.io", "library/app-dev", "latest");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(source_both_fire)
{
    static const struct finding denied[] = {
        {"no-docker-hub",
         "pulls from Docker Hub are blocked; use the internal registry"},
        {"no-dev-images", "development images are not allowed"},
    };
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict =
        policy_check_source(policy, "docker.io", "library/app-dev", "1.0");

    check_verdict(verdict, policy, "deny", denied, COUNT(denied), NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(source_allows)
{
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict =
        policy_check_source(policy, "ghcr.io", "library/app-devel", "1.0");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(source_registry_prefix)
{
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict =
        policy_check_source(policy, "docker.io.example.com", "team/app", "1");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(source_warn_action)
{
    static const struct finding warnings[] = {
        {"sandbox", "image comes from the sandbox"},
    };
    struct policy *policy = parse_ok("version: 1\n"
                                     "rules:\n"
                                     "  - name: sandbox\n"
                                     "    kind: denied_repositories\n"
                                     "    action: warn\n"
                                     "    patterns: ['^sandbox/']\n"
                                     "    message: image comes from the "
                                     "sandbox\n");
    json_t *verdict =
        policy_check_source(policy, "quay.io", "sandbox/tool", "1");

    check_verdict(verdict, policy, "allow", NULL, 0, warnings, COUNT(warnings));
    policy_free(policy);
}
END_TEST

/* Source rules read only the request; evaluation skips them. */
START_TEST(evaluate_skips_source_rules)
{
    struct policy *policy = parse_ok(source_policy);
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"config\": {\"user\": \"1000\"},"
                " \"reference\": {\"registry\": \"docker.io\","
                " \"repository\": \"library/app-dev\"}}");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

/* Content rules read the document; the source check skips them. */
START_TEST(source_skips_content_rules)
{
    struct policy *policy = parse_ok(root_policy);
    json_t *verdict = policy_check_source(policy, "docker.io", "a/b", "1");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

/*
 * Load errors: every message names the file, line and column.
 */

struct error_case {
    const char *yaml;
    const char *message;
};

#define RULE_HEAD "version: 1\nrules:\n  - name: r1\n"

static const struct error_case error_cases[] = {
    {"- a\n",
     "test.yaml:1:1: the policy must be a mapping, not a sequence; start the "
     "file with \"version: 1\""},
    {"", "test.yaml:1:1: missing required key \"version\" in the policy; add "
         "\"version: 1\" at the top of the file"},
    {"rules: []\n",
     "test.yaml:1:1: missing required key \"version\" in the policy; add "
     "\"version: 1\" at the top of the file"},
    {"version: 2\n",
     "test.yaml:1:10: unsupported policy version 2; this pullgate reads "
     "version 1 only, so write \"version: 1\""},
    {"version: '1'\n",
     "test.yaml:1:10: \"version\" in the policy must be an integer, not a "
     "string; write a whole number without quotes"},
    {"version: 1\nrulez: []\n",
     "test.yaml:2:1: unknown key \"rulez\" in the policy; the top-level keys "
     "are version, on_inspection_failure and rules"},
    {"version: 1\non_inspection_failure: block\n",
     "test.yaml:2:24: invalid on_inspection_failure \"block\"; use deny, warn "
     "or allow"},
    {"version: 1\non_inspection_failure: true\n",
     "test.yaml:2:1: \"on_inspection_failure\" in the policy must be a "
     "string, not a boolean; quote the value if it looks like a number or a "
     "boolean"},
    {"version: 1\nrules: {}\n",
     "test.yaml:2:8: \"rules\" in the policy must be a sequence, not a "
     "mapping; write a list, either [a, b] or one \"- item\" per line"},
    {"version: 1\nrules:\n  - just-a-name\n",
     "test.yaml:3:5: rule 1 must be a mapping, not a string; start each rule "
     "with \"- name: ...\""},
    {"version: 1\nrules:\n  - kind: deny_files\n",
     "test.yaml:3:5: missing required key \"name\" in rule 1; add a unique "
     "name such as \"no-root-images\""},
    {"version: 1\nrules:\n  - name: 42\n",
     "test.yaml:3:11: \"name\" in rule 1 must be a string, not an integer; "
     "quote the value if it looks like a number or a boolean"},
    {"version: 1\nrules:\n  - name: Bad_Name\n",
     "test.yaml:3:11: invalid rule name \"Bad_Name\"; use 1 to 63 lowercase "
     "letters, digits and hyphens, starting with a letter or digit"},
    {"version: 1\nrules:\n  - name: -leading-hyphen\n",
     "test.yaml:3:11: invalid rule name \"-leading-hyphen\"; use 1 to 63 "
     "lowercase letters, digits and hyphens, starting with a letter or "
     "digit"},
    {"version: 1\nrules:\n  - name: "
     "a123456789012345678901234567890123456789012345678901234567890123\n",
     "test.yaml:3:11: invalid rule name "
     "\"a123456789012345678901234567890123456789012345678901234567890123\"; "
     "use 1 to 63 lowercase letters, digits and hyphens, starting with a "
     "letter or digit"},
    {"version: 1\nrules:\n  - name: inspection-failed\n",
     "test.yaml:3:11: rule name \"inspection-failed\" is reserved for images "
     "whose inspection failed; choose another name"},
    {RULE_HEAD "    kind: require_non_root\n    message: m\n"
               "  - name: r1\n    kind: require_non_root\n    message: m\n",
     "test.yaml:6:11: duplicate rule name \"r1\" (first used at line 3); give "
     "each rule a unique name"},
    {RULE_HEAD "    message: m\n",
     "test.yaml:3:5: missing required key \"kind\" in rule \"r1\"; add one of "
     "denied_registries, denied_repositories, require_non_root, deny_files "
     "or deny_secrets"},
    {RULE_HEAD "    kind: deny_file\n",
     "test.yaml:4:11: unknown kind \"deny_file\" in rule \"r1\"; use "
     "denied_registries, denied_repositories, require_non_root, deny_files "
     "or deny_secrets"},
    {RULE_HEAD "    kind: deny_files\n    paht: [x]\n",
     "test.yaml:5:5: unknown key \"paht\" in rule \"r1\"; the keys of a "
     "deny_files rule are name, description, kind, action, message, paths "
     "and except_paths"},
    {RULE_HEAD "    kind: require_non_root\n    message: m\n    paths: [x]\n",
     "test.yaml:6:5: key \"paths\" is not allowed in rule \"r1\" of kind "
     "require_non_root; remove it, because only deny_files rules read it"},
    {RULE_HEAD "    kind: denied_registries\n    message: m\n"
               "    patterns: [x]\n",
     "test.yaml:6:5: key \"patterns\" is not allowed in rule \"r1\" of kind "
     "denied_registries; remove it, because only denied_repositories rules "
     "read it"},
    {RULE_HEAD "    kind: require_non_root\n    action: block\n",
     "test.yaml:5:13: invalid action \"block\" in rule \"r1\"; use deny or "
     "warn"},
    {RULE_HEAD "    kind: require_non_root\n",
     "test.yaml:3:5: missing required key \"message\" in rule \"r1\"; add the "
     "text a user sees when the rule fires"},
    {RULE_HEAD "    kind: require_non_root\n    message: ''\n",
     "test.yaml:5:14: \"message\" in rule \"r1\" is empty; add the text a user "
     "sees when the rule fires"},
    {RULE_HEAD "    kind: require_non_root\n    message: [a, b]\n",
     "test.yaml:5:14: \"message\" in rule \"r1\" must be a string, not a "
     "sequence; quote the value if it looks like a number or a boolean"},
    {RULE_HEAD "    kind: require_non_root\n    message: m\n"
               "    description: 5\n",
     "test.yaml:6:18: \"description\" in rule \"r1\" must be a string, not an "
     "integer; quote the value if it looks like a number or a boolean"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n",
     "test.yaml:3:5: missing required key \"paths\" in rule \"r1\"; list PCRE2 "
     "patterns of the file paths to deny"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths: []\n",
     "test.yaml:6:12: \"paths\" in rule \"r1\" is empty; list PCRE2 patterns "
     "of the file paths to deny"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths: x\n",
     "test.yaml:6:12: \"paths\" in rule \"r1\" must be a sequence, not a "
     "string; write a list, either [a, b] or one \"- item\" per line"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths:\n"
               "      - ok\n      - 17\n",
     "test.yaml:8:9: item 2 of \"paths\" in rule \"r1\" must be a string, not "
     "an integer; quote it"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths: [ok, '']\n",
     "test.yaml:6:17: item 2 of \"paths\" in rule \"r1\" is empty; remove it"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths: ['(^|/']\n",
     "test.yaml:6:13: invalid regular expression '(^|/' in \"paths\" of rule "
     "\"r1\": missing closing parenthesis at offset 4; fix the pattern (PCRE2 "
     "syntax)"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths: [x]\n"
               "    except_paths: ['a[']\n",
     "test.yaml:7:20: invalid regular expression 'a[' in \"except_paths\" of "
     "rule \"r1\": missing terminating ] for character class at offset 2; fix "
     "the pattern (PCRE2 syntax)"},
    {RULE_HEAD "    kind: deny_files\n    message: m\n    paths: ['(*UTF)x']\n",
     "test.yaml:6:13: invalid regular expression '(*UTF)x' in \"paths\" of "
     "rule \"r1\": using UTF is disabled by the application at offset 6; fix "
     "the pattern (PCRE2 syntax)"},
    {RULE_HEAD "    kind: denied_repositories\n    message: m\n",
     "test.yaml:3:5: missing required key \"patterns\" in rule \"r1\"; list "
     "PCRE2 patterns of the repository names to deny"},
    {RULE_HEAD "    kind: denied_repositories\n    message: m\n"
               "    patterns: ['*dev']\n",
     "test.yaml:6:16: invalid regular expression '*dev' in \"patterns\" of "
     "rule \"r1\": quantifier does not follow a repeatable item at offset 0; "
     "fix the pattern (PCRE2 syntax)"},
    {RULE_HEAD "    kind: denied_registries\n    message: m\n",
     "test.yaml:3:5: missing required key \"registries\" in rule \"r1\"; list "
     "the upstream registry names to deny, such as [docker.io]"},
    {RULE_HEAD "    kind: denied_registries\n    message: m\n"
               "    registries: []\n",
     "test.yaml:6:17: \"registries\" in rule \"r1\" is empty; list the "
     "upstream registry names to deny, such as [docker.io]"},
    {RULE_HEAD "    kind: denied_registries\n    message: m\n"
               "    registries: [docker.io, null]\n",
     "test.yaml:6:29: item 2 of \"registries\" in rule \"r1\" must be a "
     "string, not null; quote it"},
};

START_TEST(load_error)
{
    const struct error_case *c = &error_cases[_i];
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", c->yaml, strlen(c->yaml), &err);
    ck_assert_ptr_null(policy);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_str_eq(err->message, c->message);
    pg_error_free(err);
}
END_TEST

#define MISSING_POLICY "/nonexistent/policy.yaml"

START_TEST(load_missing_file)
{
    struct pg_error *err = NULL;
    struct policy *policy = policy_load(MISSING_POLICY, &err);
    size_t prefix = strlen(MISSING_POLICY ": ");

    ck_assert_ptr_null(policy);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_int_eq(strncmp(err->message, MISSING_POLICY ": ", prefix), 0);
    pg_error_free(err);
}
END_TEST

/* A YAML syntax error keeps the position that the YAML reader found. */
START_TEST(load_yaml_error)
{
    static const char yaml[] = "version: 1\nrules: [\n";
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", yaml, strlen(yaml), &err);
    ck_assert_ptr_null(policy);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_int_eq(strncmp(err->message, "test.yaml:3:1: ", 15), 0);
    pg_error_free(err);
}
END_TEST

/* A policy with no rules allows everything. */
START_TEST(load_no_rules)
{
    struct policy *policy = parse_ok("version: 1\n");
    json_t *verdict = evaluate(
        policy, "{\"kind\": \"image\", \"config\": {\"user\": \"root\"}}");

    check_verdict(verdict, policy, "allow", NULL, 0, NULL, 0);
    policy_free(policy);
}
END_TEST

START_TEST(load_name_max_length)
{
    struct policy *policy = parse_ok(
        "version: 1\n"
        "rules:\n"
        "  - name: "
        "a12345678901234567890123456789012345678901234567890123456789012\n"
        "    kind: require_non_root\n"
        "    message: m\n");

    policy_free(policy);
}
END_TEST

/* Fills a buffer of size bytes with a valid policy padded by a comment. */
static char *
padded_policy(size_t size)
{
    static const char head[] = "version: 1\n#";
    char *text = malloc(size);

    ck_assert_ptr_nonnull(text);
    memset(text, 'x', size);
    memcpy(text, head, strlen(head));
    text[size - 1] = '\n';
    return text;
}

START_TEST(load_file_max_size)
{
    char *text = padded_policy(PG_CONFIG_FILE_MAX_BYTES);
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", text, PG_CONFIG_FILE_MAX_BYTES, &err);
    ck_assert_ptr_nonnull(policy);
    ck_assert_ptr_null(err);
    policy_free(policy);
    free(text);
}
END_TEST

START_TEST(load_file_over_max_size)
{
    size_t size = PG_CONFIG_FILE_MAX_BYTES + 1;
    char *text = padded_policy(size);
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", text, size, &err);
    ck_assert_ptr_null(policy);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    pg_error_free(err);
    free(text);
}
END_TEST

/*
 * Concurrent evaluation: each thread evaluates the same policy and counts
 * the verdicts that differ from the expected one.
 */

#define THREADS 4
#define EVALUATIONS_PER_THREAD 500

struct worker {
    const struct policy *policy;
    const json_t *document;
    const char *expected;
    int mismatches;
};

static void *
evaluate_repeatedly(void *arg)
{
    struct worker *worker = arg;

    for (int i = 0; i < EVALUATIONS_PER_THREAD; i++) {
        json_t *verdict =
            policy_evaluate(worker->policy, worker->document, NULL);
        char *text = json_dumps(verdict, JSON_COMPACT);

        if (text == NULL || strcmp(text, worker->expected) != 0)
            worker->mismatches++;
        free(text);
        json_decref(verdict);
    }
    return NULL;
}

START_TEST(evaluate_threads)
{
    struct policy *policy = policy_load(NULL, NULL);
    json_t *doc =
        document("{\"kind\": \"image\", \"config\": {\"user\": \"root\"},"
                 " \"files\": [{\"path\": \"root/.ssh/id_rsa\","
                 " \"type\": \"file\"}]}");
    json_t *first = policy_evaluate(policy, doc, NULL);
    char *expected = json_dumps(first, JSON_COMPACT);
    struct worker workers[THREADS];
    pthread_t threads[THREADS];

    ck_assert_ptr_nonnull(expected);
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){policy, doc, expected, 0};
        ck_assert_int_eq(
            pthread_create(&threads[i], NULL, evaluate_repeatedly, &workers[i]),
            0);
    }
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
        ck_assert_int_eq(workers[i].mismatches, 0);
    }
    free(expected);
    json_decref(first);
    json_decref(doc);
    policy_free(policy);
}
END_TEST

static const char *const examples[] = {
    "deny-docker-hub.yaml",
    "require-non-root.yaml",
    "deny-dev-repositories.yaml",
};

START_TEST(example_loads)
{
    char path[4096];
    struct pg_error *err = NULL;
    struct policy *policy;

    snprintf(path, sizeof(path), "%s/config/policy/examples/%s", source_dir(),
             examples[_i]);
    policy = policy_load(path, &err);
    ck_assert_msg(policy != NULL, "%s",
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    policy_free(policy);
}
END_TEST

static Suite *
policy_suite(void)
{
    Suite *suite = suite_create("policy");
    TCase *load = tcase_create("load");
    TCase *digest = tcase_create("digest");
    TCase *files = tcase_create("deny_files");
    TCase *secrets = tcase_create("deny_secrets");
    TCase *root = tcase_create("require_non_root");
    TCase *inspection = tcase_create("inspection");
    TCase *source = tcase_create("source");

    tcase_add_test(secrets, secrets_fires);
    tcase_add_test(secrets, secrets_in_config);
    tcase_add_test(secrets, secrets_no_match);
    tcase_add_test(secrets, secrets_star_and_path_findings);
    tcase_add_test(secrets, secrets_more_than_listed);
    tcase_add_test(secrets, secrets_load_errors);
    tcase_add_test(secrets, secrets_default_policy);
    suite_add_tcase(suite, secrets);

    tcase_add_test(load, default_loads);
    tcase_add_test(load, default_digest_stable);
    tcase_add_test(load, default_equals_file);
    tcase_add_test(load, default_verdict);
    tcase_add_loop_test(load, load_error, 0, (int)COUNT(error_cases));
    tcase_add_test(load, load_missing_file);
    tcase_add_test(load, load_yaml_error);
    tcase_add_test(load, load_no_rules);
    tcase_add_test(load, load_name_max_length);
    tcase_add_test(load, load_file_max_size);
    tcase_add_test(load, load_file_over_max_size);
    tcase_add_loop_test(load, example_loads, 0, (int)COUNT(examples));
    suite_add_tcase(suite, load);

    tcase_add_test(digest, digest_canonical_form);
    tcase_add_test(digest, digest_ignores_layout);
    tcase_add_test(digest, digest_changes_with_rule);
    tcase_add_test(digest, digest_changes_with_pattern);
    suite_add_tcase(suite, digest);

    tcase_add_test(files, files_fires);
    tcase_add_test(files, files_no_match);
    tcase_add_test(files, files_no_files_key);
    tcase_add_test(files, files_except_paths);
    tcase_add_test(files, files_more_than_five);
    tcase_add_test(files, files_exactly_five);
    tcase_add_test(files, files_repeated_path);
    tcase_add_test(files, files_whiteouts_ignored);
    tcase_add_test(files, files_deleted_still_count);
    tcase_add_test(files, files_warn_action);
    tcase_add_test(files, files_match_limit);
    tcase_add_test(files, rules_in_file_order);
    suite_add_tcase(suite, files);

    tcase_add_loop_test(root, root_fires, 0, (int)COUNT(root_users));
    tcase_add_loop_test(root, root_does_not_fire, 0,
                        (int)COUNT(non_root_users));
    tcase_add_test(root, root_user_absent);
    tcase_add_test(root, root_deny_action);
    suite_add_tcase(suite, root);

    tcase_add_test(inspection, failed_deny);
    tcase_add_test(inspection, failed_default_denies);
    tcase_add_test(inspection, failed_warn);
    tcase_add_test(inspection, failed_allow);
    tcase_add_test(inspection, failed_without_error);
    tcase_add_test(inspection, artifact_skipped);
    tcase_add_test(inspection, evaluate_not_object);
    tcase_add_test(inspection, evaluate_threads);
    suite_add_tcase(suite, inspection);

    tcase_add_test(source, source_registry_fires);
    tcase_add_test(source, source_repository_fires);
    tcase_add_test(source, source_both_fire);
    tcase_add_test(source, source_allows);
    tcase_add_test(source, source_registry_prefix);
    tcase_add_test(source, source_warn_action);
    tcase_add_test(source, evaluate_skips_source_rules);
    tcase_add_test(source, source_skips_content_rules);
    suite_add_tcase(suite, source);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(policy_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
