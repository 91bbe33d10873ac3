/*
 * The secret scanner: credential files found by path, and secrets found
 * in the content of text files by PCRE2 rules.
 *
 * Running a dozen regular expressions over every byte of a layer would
 * cost more than decompressing it, so each built-in rule names literals
 * that every one of its matches contains ("AKIA", "-----BEGIN", "://").
 * One pass over the file looks up each pair of adjacent bytes in a bitmap
 * of the literals' anchor pairs, checks the literal at a hit, and only
 * then runs the rule's regular expression on the line around it. Because
 * the line rules never match a newline, the result is the same as running
 * every rule over the whole file: for each rule, the lines on which one of
 * its matches starts. Rules whose matches span lines (google-service-
 * account, docker-config-auth) and the configuration's rules, which have
 * no known literal, run over the whole file.
 *
 * The compiled set is read-only after inspector_secrets_new, so many
 * threads share it; each scan creates its own match data. The matched
 * text is never stored, logged or returned: a finding names the rule, the
 * path and the line.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "config/limits.h"
#include "inspector/catalog.h"
#include "inspector/secrets.h"

/* Findings recorded for one file, and for one layer, before the rest are
 * only counted in a note. */
#define SECRETS_FILE_FINDINGS_MAX 32
#define SECRETS_LAYER_FINDINGS_MAX 1000

/* Bytes of a rule name from the configuration, as config.c checks it. */
#define SECRETS_RULE_NAME_MAX 64

/* Literals of one built-in rule. */
#define SECRETS_LITERALS_MAX 6

/* Built-in rules that carry literals: one bit each in a line's mask. */
#define SECRETS_LITERAL_RULES_MAX 32

/* Backtracking steps of one match (pcre2_set_match_limit), so that a
 * configured pattern with nested quantifiers cannot stall a worker. */
#define SECRETS_MATCH_LIMIT 1000000u

/* The cataloger name in notes. */
#define SECRETS_NOTE_NAME "secrets"

/* A literal every match of its rule contains, and the two bytes at anchor
 * that the prefilter's bitmap looks for. */
struct secret_literal {
    const char *text;
    size_t len;
    size_t anchor; /* offset of the looked-up pair inside text */
    bool caseless;
    size_t rule;
    /* The bitmap keys of the anchor pair: one, or four when caseless.
     * A hit is checked only against literals with its key, because a
     * common pair would otherwise compare every literal. */
    unsigned keys[4];
    size_t n_keys;
};

struct secret_rule {
    char *name;
    pcre2_code *pattern;
    /* For rules matched over the whole file: a pattern that must match
     * somewhere in the file before pattern runs, or NULL. */
    pcre2_code *gate;
    bool whole_file; /* matches may span lines; run over the whole file */
    bool has_literals;
};

struct inspector_secrets {
    struct secret_rule *rules;
    size_t n_rules;
    struct secret_literal *literals;
    size_t n_literals;
    pcre2_match_context *match_context;
    /* Bit (b0 | b1 << 8) is set when bytes b0, b1 start a literal's
     * anchor pair. */
    uint8_t pairs[65536 / 8];
};

/* A built-in rule as written in the table below. */
struct builtin_rule {
    const char *name;
    const char *pattern;
    const char *gate;
    bool whole_file;
    bool caseless_literals;
    /* Each literal with the offset of its anchor pair, chosen to be a
     * pair of bytes that is rare in source code and prose. */
    struct {
        const char *text;
        size_t anchor;
    } literals[SECRETS_LITERALS_MAX];
};

/*
 * The built-in rules. Line patterns must never match a newline (they use
 * \h and negated classes that exclude \s), which is what makes the
 * prefilter exact.
 */
static const struct builtin_rule builtin_rules[] = {
    /* Access key IDs are AKIA (long-term) or ASIA (temporary) and 16
     * base32 characters. AWS's documented example key
     * AKIAIOSFODNN7EXAMPLE matches as well, on purpose: scanners report
     * it, and test suites use it as the known test vector. */
    {.name = "aws-access-key-id",
     .pattern = "(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}(?![A-Za-z0-9])",
     .literals = {{"AKIA", 1}, {"ASIA", 1}}},

    /* 40 base64 characters assigned to a name that contains both "aws"
     * and "secret", as in aws_secret_access_key = ... or
     * "AWS_SECRET_ACCESS_KEY": "...", or following it after spaces, as a
     * command-line option's value does. */
    {.name = "aws-secret-access-key",
     .pattern = "(?i:aws[\\w.-]{0,32}?secret|secret[\\w.-]{0,32}?aws)"
                "[\\w.-]{0,32}?[\"']?(?:\\h*(?:=>|:=|=|:)\\h*|\\h+)[\"']?"
                "[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
     .caseless_literals = true,
     .literals = {{"secret", 2}}},

    /*
     * PEM private keys of every kind (PKCS#8, RSA, EC, DSA, ENCRYPTED,
     * OPENSSH) and PGP private key blocks; public keys do not match. The
     * header must be followed by a line break, written or escaped as in
     * JSON, and key material or a PEM or PGP header line, because
     * libraries that parse keys keep the bare header line as a constant
     * (Python's cryptography package does, in ssh.py).
     */
    {.name = "private-key",
     .pattern = "-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                "(?:\\r?\\n|(?:\\\\r)?\\\\n)"
                "(?:[A-Za-z0-9+/]{20}|Proc-Type:|Version:|Comment:|"
                "\\r?\\n|(?:\\\\r)?\\\\n)",
     .whole_file = true,
     .literals = {{"-----BEGIN", 4}}},

    /* Classic tokens are a prefix and 36 alphanumerics; fine-grained
     * tokens are github_pat_, 22 alphanumerics, '_' and 59 more. */
    {.name = "github-token",
     .pattern = "(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|"
                "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"
                "(?![A-Za-z0-9_])",
     .literals = {{"ghp_", 0},
                  {"gho_", 0},
                  {"ghu_", 0},
                  {"ghs_", 0},
                  {"ghr_", 0},
                  {"github_pat_", 5}}},

    {.name = "gitlab-token",
     .pattern = "(?<![A-Za-z0-9_-])glpat-[0-9A-Za-z_-]{20,}",
     .literals = {{"glpat-", 4}}},

    /* Bot (b), user (p), app-level (a), refresh (r), workspace (o) and
     * legacy (s) tokens. */
    {.name = "slack-token",
     .pattern = "(?<![A-Za-z0-9])xox[abpors]-[0-9A-Za-z]+(?:-[0-9A-Za-z]+)+",
     .literals = {{"xox", 0}}},

    {.name = "slack-webhook",
     .pattern = "hooks\\.slack\\.com/services/T[A-Za-z0-9_]+/"
                "B[A-Za-z0-9_]+/[A-Za-z0-9_]{8,}",
     .literals = {{"hooks.slack.com", 4}}},

    {.name = "stripe-key",
     .pattern = "(?<![A-Za-z0-9_])[sr]k_live_[0-9A-Za-z]{24,}",
     .literals = {{"sk_live_", 1}, {"rk_live_", 1}}},

    {.name = "npm-token",
     .pattern = "(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])",
     .literals = {{"npm_", 1}}},

    /* A key file of a Google Cloud service account: JSON with "type":
     * "service_account" and a PEM private key. */
    {.name = "google-service-account",
     .gate = "\"type\"\\s*:\\s*\"service_account\"",
     .pattern = "\"private_key\"\\s*:\\s*\"-----BEGIN",
     .whole_file = true,
     .literals = {{"service_account", 7}}},

    /* Docker's config.json keeps registry credentials as base64 of
     * user:password in "auths": {"HOST": {"auth": "..."}}. */
    {.name = "docker-config-auth",
     .gate = "\"auths\"\\s*:\\s*\\{",
     .pattern = "\"auth\"\\s*:\\s*\"[A-Za-z0-9+/]{4,}={0,2}\"",
     .whole_file = true,
     .literals = {{"\"auths\"", 4}}},

    /*
     * scheme://user:password@host with a non-empty password made of the
     * characters RFC 3986 allows in userinfo. Placeholders that fill the
     * whole password are not reported: $VAR, ***, xxx, ..., and the words
     * password, passwd, pass, pwd, secret and changeme, which manuals use
     * in examples. ${VAR}, <password> and {{var}} contain characters that
     * a URL's userinfo cannot, so they never match. Neither do URLs of
     * the example domains that RFC 2606 reserves for documentation.
     */
    {.name = "url-password",
     .pattern = "(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://"
                "(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*:"
                "(?!(?:\\$[A-Za-z_][A-Za-z0-9_]*|\\*+|[xX]+|\\.+|"
                "(?i:password|passwd|pass|pwd|secret|changeme))@)"
                "(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+"
                "@(?!(?:[A-Za-z0-9-]+\\.)*example\\.(?:com|org|net)"
                "(?![A-Za-z0-9.-]))[A-Za-z0-9\\[]",
     .literals = {{"://", 0}}},
};

#define BUILTIN_RULES_COUNT (sizeof(builtin_rules) / sizeof(builtin_rules[0]))

/* Credential files, found by path in every layer. */
static const struct {
    const char *rule;
    const char *dir;      /* the parent directory's name, or NULL */
    const char *basename; /* exact name, or a prefix when prefix is set */
    bool prefix;
} credential_files[] = {
    {"credential-file-aws", ".aws", "credentials", false},
    {"credential-file-ssh", ".ssh", "id_", true},
    {"credential-file-docker", ".docker", "config.json", false},
    {"credential-file-npm", NULL, ".npmrc", false},
    {"credential-file-pypi", NULL, ".pypirc", false},
    {"credential-file-netrc", NULL, ".netrc", false},
    {"credential-file-git", NULL, ".git-credentials", false},
};

/* ---- compiling ---- */

static void
secrets_out_of_memory(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while compiling the secret rules");
}

/*
 * Compiles one pattern of the rule name. Returns the code, or NULL with
 * an error naming the rule and the 1-based column PCRE2 stopped at.
 */
static pcre2_code *
compile_rule_pattern(const char *name, const char *pattern, uint32_t options,
                     struct pg_error **err)
{
    PCRE2_UCHAR reason[256];
    PCRE2_SIZE offset;
    pcre2_code *code;
    int error;

    code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                         options | PCRE2_NEVER_UTF, &error, &offset, NULL);
    if (code == NULL) {
        if (error == PCRE2_ERROR_NOMEMORY) {
            secrets_out_of_memory(err);
            return NULL;
        }
        pcre2_get_error_message(error, reason, sizeof(reason));
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "secret rule \"%s\": invalid pattern at column %zu: %s; "
                     "fix the pattern (PCRE2 syntax)",
                     name, (size_t)offset + 1, (const char *)reason);
        return NULL;
    }

    /* Without JIT support, matching falls back to the interpreter. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

static void
set_pair(struct inspector_secrets *set, struct secret_literal *literal,
         unsigned char first, unsigned char second)
{
    unsigned key = (unsigned)first | (unsigned)second << 8;

    set->pairs[key >> 3] |= (uint8_t)(1u << (key & 7));
    literal->keys[literal->n_keys++] = key;
}

/* Adds a literal of rule and its anchor pair, in every case when
 * caseless. The table has room for every built-in literal. */
static void
add_literal(struct inspector_secrets *set, size_t rule, const char *text,
            size_t anchor, bool caseless)
{
    struct secret_literal *literal = &set->literals[set->n_literals++];
    unsigned char first = (unsigned char)text[anchor];
    unsigned char second = (unsigned char)text[anchor + 1];

    literal->text = text;
    literal->len = strlen(text);
    literal->anchor = anchor;
    literal->caseless = caseless;
    literal->rule = rule;
    literal->n_keys = 0;
    set_pair(set, literal, first, second);
    if (!caseless)
        return;
    set_pair(set, literal, (unsigned char)toupper(first), second);
    set_pair(set, literal, first, (unsigned char)toupper(second));
    set_pair(set, literal, (unsigned char)toupper(first),
             (unsigned char)toupper(second));
}

static int
compile_builtin(struct inspector_secrets *set, size_t index,
                struct pg_error **err)
{
    const struct builtin_rule *spec = &builtin_rules[index];
    struct secret_rule *rule = &set->rules[index];

    rule->name = strdup(spec->name);
    if (rule->name == NULL) {
        secrets_out_of_memory(err);
        return -1;
    }
    rule->whole_file = spec->whole_file;
    rule->has_literals = true;
    rule->pattern = compile_rule_pattern(spec->name, spec->pattern, 0, err);
    if (rule->pattern == NULL)
        return -1;
    if (spec->gate != NULL) {
        rule->gate = compile_rule_pattern(spec->name, spec->gate, 0, err);
        if (rule->gate == NULL)
            return -1;
    }
    for (size_t i = 0; i < SECRETS_LITERALS_MAX; i++) {
        if (spec->literals[i].text == NULL)
            break;
        add_literal(set, index, spec->literals[i].text,
                    spec->literals[i].anchor, spec->caseless_literals);
    }
    return 0;
}

/* Returns the rule named name among the first n of set, or NULL. */
static const struct secret_rule *
find_rule(const struct inspector_secrets *set, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(set->rules[i].name, name) == 0)
            return &set->rules[i];
    }
    return NULL;
}

/* Compiles a rule from the configuration into slot index of set. Its
 * pattern runs over the whole file in multiline mode, so that ^ and $
 * match at the start and end of every line. */
static int
compile_extra(struct inspector_secrets *set, size_t index,
              const struct config_secret_rule *spec, struct pg_error **err)
{
    struct secret_rule *rule = &set->rules[index];

    if (spec->name == NULL || spec->pattern == NULL) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "secret rule %zu has no name or pattern; set both",
                     index - BUILTIN_RULES_COUNT + 1);
        return -1;
    }
    if (find_rule(set, index, spec->name) != NULL) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "secret rule \"%s\" is defined twice or repeats a "
                     "built-in rule's name; give it another name",
                     spec->name);
        return -1;
    }
    rule->name = strdup(spec->name);
    if (rule->name == NULL) {
        secrets_out_of_memory(err);
        return -1;
    }
    rule->whole_file = true;
    rule->pattern =
        compile_rule_pattern(spec->name, spec->pattern, PCRE2_MULTILINE, err);
    return rule->pattern == NULL ? -1 : 0;
}

/* Counts the literals of the built-in table, to size the set's array. */
static size_t
count_builtin_literals(void)
{
    size_t count = 0;

    for (size_t r = 0; r < BUILTIN_RULES_COUNT; r++) {
        for (size_t i = 0; i < SECRETS_LITERALS_MAX; i++) {
            if (builtin_rules[r].literals[i].text != NULL)
                count++;
        }
    }
    return count;
}

struct inspector_secrets *
inspector_secrets_new(const struct config_secret_rule *extra, size_t n,
                      struct pg_error **err)
{
    struct inspector_secrets *set = calloc(1, sizeof(*set));
    size_t total = BUILTIN_RULES_COUNT + n;

    _Static_assert(BUILTIN_RULES_COUNT <= SECRETS_LITERAL_RULES_MAX,
                   "a line's mask has one bit per built-in rule");
    if (set == NULL || n > PG_SECRET_RULES_MAX ||
        (set->rules = calloc(total, sizeof(*set->rules))) == NULL ||
        (set->literals = calloc(count_builtin_literals(),
                                sizeof(*set->literals))) == NULL ||
        (set->match_context = pcre2_match_context_create(NULL)) == NULL) {
        if (set != NULL && n > PG_SECRET_RULES_MAX)
            pg_error_set(err, 500, PG_ERR_CONFIG,
                         "%zu secret rules are more than %d; remove some", n,
                         PG_SECRET_RULES_MAX);
        else
            secrets_out_of_memory(err);
        inspector_secrets_free(set);
        return NULL;
    }
    pcre2_set_match_limit(set->match_context, SECRETS_MATCH_LIMIT);

    for (size_t i = 0; i < total; i++) {
        int rc;

        /* Counted first, so inspector_secrets_free releases a
         * half-compiled rule. */
        set->n_rules++;
        if (i < BUILTIN_RULES_COUNT)
            rc = compile_builtin(set, i, err);
        else
            rc = compile_extra(set, i, &extra[i - BUILTIN_RULES_COUNT], err);
        if (rc < 0) {
            inspector_secrets_free(set);
            return NULL;
        }
    }
    return set;
}

void
inspector_secrets_free(struct inspector_secrets *secrets)
{
    if (secrets == NULL)
        return;
    for (size_t i = 0; i < secrets->n_rules; i++) {
        pcre2_code_free(secrets->rules[i].gate);
        pcre2_code_free(secrets->rules[i].pattern);
        free(secrets->rules[i].name);
    }
    free(secrets->rules);
    free(secrets->literals);
    pcre2_match_context_free(secrets->match_context);
    free(secrets);
}

/* The built-in set, compiled once for scans whose options carry none. */
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static struct inspector_secrets *builtin_set;

static void
compile_builtin_set(void)
{
    struct pg_error *err = NULL;

    /* Only a memory shortage can fail here: the built-in patterns are
     * compiled by the unit tests. The scans then report -1. */
    builtin_set = inspector_secrets_new(NULL, 0, &err);
    pg_error_free(err);
}

static const struct inspector_secrets *
scan_rules(const struct catalog_ctx *ctx)
{
    if (ctx->options != NULL && ctx->options->secrets != NULL)
        return ctx->options->secrets;
    pthread_once(&builtin_once, compile_builtin_set);
    return builtin_set;
}

/* ---- recording findings ---- */

/* One scan of one file: its bytes, where the prefilter is, what was
 * recorded. */
struct scan {
    struct catalog_ctx *ctx;
    const struct inspector_secrets *set;
    const char *path;
    const unsigned char *data;
    size_t len;
    pcre2_match_data *match_data;

    /* The line around the prefilter's last hit: [line_start, line_end),
     * line_end at its '\n' or the end of data, and the rules already
     * tried on it. */
    size_t line_start;
    size_t line_end;
    bool have_line;
    uint32_t tried;
    uint32_t whole_file_pending; /* gate rules whose literal was seen */

    size_t recorded; /* findings of this file */
    size_t dropped;  /* findings past a maximum */
    bool layer_full;
    bool match_failed; /* a match stopped at a limit; noted */
};

/* Counts lines up to an offset, moving forward only. */
struct line_counter {
    size_t offset;
    size_t line; /* 1-based line of offset */
};

static size_t
line_at(const struct scan *scan, struct line_counter *counter, size_t offset)
{
    while (counter->offset < offset) {
        const unsigned char *newline = memchr(scan->data + counter->offset,
                                              '\n', offset - counter->offset);

        if (newline == NULL) {
            counter->offset = offset;
            break;
        }
        counter->line++;
        counter->offset = (size_t)(newline - scan->data) + 1;
    }
    return counter->line;
}

static size_t
layer_findings(const struct catalog_ctx *ctx)
{
    return json_array_size(json_object_get(ctx->findings, "secrets"));
}

/* Adds {"rule", "path", "line"} unless a maximum is reached, in which case
 * the finding is only counted. Returns 0, or -1 when memory is short. */
static int
record(struct scan *scan, const char *rule, size_t line)
{
    json_t *item;

    if (scan->recorded >= SECRETS_FILE_FINDINGS_MAX || scan->layer_full ||
        layer_findings(scan->ctx) >= SECRETS_LAYER_FINDINGS_MAX) {
        scan->layer_full = scan->layer_full || layer_findings(scan->ctx) >=
                                                   SECRETS_LAYER_FINDINGS_MAX;
        scan->dropped++;
        return 0;
    }
    item = json_pack("{s:s, s:o, s:I}", "rule", rule, "path",
                     inspector_json_text(scan->path, strlen(scan->path)),
                     "line", (json_int_t)line);
    scan->recorded++;
    return catalog_add(scan->ctx, "secrets", item);
}

/*
 * Adds the note for findings that were not recorded. The note that the
 * layer is full is added once, by the scan that filled it, because later
 * scans return before scanning.
 */
static int
note_dropped(struct scan *scan, bool layer_was_full)
{
    bool layer_full = layer_findings(scan->ctx) >= SECRETS_LAYER_FINDINGS_MAX;

    if (layer_full && !layer_was_full)
        return catalog_note(scan->ctx, SECRETS_NOTE_NAME, scan->path,
                            "the layer reached its maximum of %d secret "
                            "findings here: %zu more in this file were not "
                            "recorded, and later files were not scanned for "
                            "secrets",
                            SECRETS_LAYER_FINDINGS_MAX, scan->dropped);
    if (scan->dropped == 0)
        return 0;
    return catalog_note(scan->ctx, SECRETS_NOTE_NAME, scan->path,
                        "%zu more secret findings in this file were not "
                        "recorded; a file keeps at most %d",
                        scan->dropped, SECRETS_FILE_FINDINGS_MAX);
}

/* Notes, once per file, that a match of rule failed at a limit; the rule
 * stops for the rest of the file. Returns 0, or -1 when memory is
 * short. */
static int
match_error(struct scan *scan, const struct secret_rule *rule, int code)
{
    PCRE2_UCHAR reason[128];

    if (scan->match_failed)
        return 0;
    scan->match_failed = true;
    pcre2_get_error_message(code, reason, sizeof(reason));
    return catalog_note(scan->ctx, SECRETS_NOTE_NAME, scan->path,
                        "secret rule %s stopped: %s; the rest of the file "
                        "was not scanned with it",
                        rule->name, (const char *)reason);
}

/* ---- credential files by path ---- */

/* Returns the basename of path and stores its parent directory's name
 * and length. */
static const char *
split_path(const char *path, const char **dir, size_t *dir_len)
{
    const char *slash = strrchr(path, '/');
    const char *parent;

    *dir = NULL;
    *dir_len = 0;
    if (slash == NULL)
        return path;
    parent = slash;
    while (parent > path && parent[-1] != '/')
        parent--;
    *dir = parent;
    *dir_len = (size_t)(slash - parent);
    return slash + 1;
}

/* Returns the rule of the credential file at path, or NULL. */
static const char *
credential_file_rule(const char *path)
{
    size_t n = sizeof(credential_files) / sizeof(credential_files[0]);
    const char *dir;
    size_t dir_len;
    const char *base = split_path(path, &dir, &dir_len);

    for (size_t i = 0; i < n; i++) {
        const char *want_dir = credential_files[i].dir;
        const char *name = credential_files[i].basename;

        if (want_dir != NULL && (dir == NULL || dir_len != strlen(want_dir) ||
                                 memcmp(dir, want_dir, dir_len) != 0))
            continue;
        if (credential_files[i].prefix ? !catalog_has_prefix(base, name) ||
                                             catalog_has_suffix(base, ".pub")
                                       : strcmp(base, name) != 0)
            continue;
        return credential_files[i].rule;
    }
    return NULL;
}

int
secrets_check_path(struct catalog_ctx *ctx, const char *path)
{
    const char *rule = credential_file_rule(path);
    struct scan scan = {.ctx = ctx, .path = path};
    bool layer_was_full;

    if (rule == NULL)
        return 0;
    layer_was_full = layer_findings(ctx) >= SECRETS_LAYER_FINDINGS_MAX;
    if (layer_was_full)
        return 0;
    if (record(&scan, rule, 0) < 0)
        return -1;
    return note_dropped(&scan, layer_was_full);
}

/* ---- content ---- */

/*
 * Runs rule over the whole file, or from the start of each line after a
 * match, and records every line on which a match starts. A gate rule runs
 * only when its gate matches somewhere. Returns 0, or -1 when memory is
 * short.
 */
static int
scan_whole_file(struct scan *scan, const struct secret_rule *rule)
{
    struct line_counter counter = {.offset = 0, .line = 1};
    PCRE2_SPTR subject = (PCRE2_SPTR)scan->data;
    pcre2_match_context *context = scan->set->match_context;
    size_t offset = 0;
    int rc;

    if (rule->gate != NULL) {
        rc = pcre2_match(rule->gate, subject, scan->len, 0, 0, scan->match_data,
                         context);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0)
            return match_error(scan, rule, rc);
    }

    while (offset <= scan->len) {
        const PCRE2_SIZE *ovector;
        const unsigned char *newline;
        size_t start;

        rc = pcre2_match(rule->pattern, subject, scan->len, offset, 0,
                         scan->match_data, context);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0)
            return match_error(scan, rule, rc);
        ovector = pcre2_get_ovector_pointer(scan->match_data);
        start = ovector[0];
        if (record(scan, rule->name, line_at(scan, &counter, start)) < 0)
            return -1;

        /* One finding per line: go on at the next line. */
        newline = memchr(scan->data + start, '\n', scan->len - start);
        if (newline == NULL)
            return 0;
        offset = (size_t)(newline - scan->data) + 1;
    }
    return 0;
}

/* Moves the current line to the one that contains offset, which is at or
 * after the previous line's start. */
static void
move_to_line(struct scan *scan, size_t offset)
{
    size_t from = 0;
    const unsigned char *newline;

    if (scan->have_line && offset <= scan->line_end)
        return;
    if (scan->have_line)
        from = scan->line_end + 1;

    /* Search back from offset only as far as the last known line, so
     * that every byte is searched at most once in each direction. */
    newline = memrchr(scan->data + from, '\n', offset - from);
    scan->line_start =
        newline != NULL ? (size_t)(newline - scan->data) + 1 : from;
    newline = memchr(scan->data + offset, '\n', scan->len - offset);
    scan->line_end =
        newline != NULL ? (size_t)(newline - scan->data) : scan->len;
    scan->have_line = true;
    scan->tried = 0;
}

/*
 * Runs a line rule on the current line, with the subject ending after
 * the line's '\n' so that lookarounds see what they would see in the
 * whole file. Returns 1 on a match, 0, or a negative PCRE2 error.
 */
static int
match_line(struct scan *scan, const struct secret_rule *rule)
{
    size_t end = scan->line_end < scan->len ? scan->line_end + 1 : scan->len;
    int rc;

    rc = pcre2_match(rule->pattern, (PCRE2_SPTR)scan->data, end,
                     scan->line_start, 0, scan->match_data,
                     scan->set->match_context);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    return rc < 0 ? rc : 1;
}

/* Handles a literal of rule found at offset. Returns 0, or -1 when memory
 * is short. */
static int
literal_found(struct scan *scan, struct line_counter *counter, size_t rule,
              size_t offset)
{
    const struct secret_rule *secret_rule = &scan->set->rules[rule];
    int rc;

    if (secret_rule->whole_file) {
        scan->whole_file_pending |= 1u << rule;
        return 0;
    }
    move_to_line(scan, offset);
    if (scan->tried & (1u << rule))
        return 0;
    scan->tried |= 1u << rule;

    rc = match_line(scan, secret_rule);
    if (rc < 0)
        return match_error(scan, secret_rule, rc);
    if (rc == 0)
        return 0;
    return record(scan, secret_rule->name,
                  line_at(scan, counter, scan->line_start));
}

/* Checks which literals begin their anchor at offset. Returns 0, or -1
 * when memory is short. */
static bool
literal_has_key(const struct secret_literal *literal, unsigned key)
{
    for (size_t i = 0; i < literal->n_keys; i++)
        if (literal->keys[i] == key)
            return true;
    return false;
}

static int
check_candidate(struct scan *scan, struct line_counter *counter, size_t offset)
{
    const struct inspector_secrets *set = scan->set;
    unsigned key = (unsigned)scan->data[offset] |
                   (unsigned)scan->data[offset + 1] << 8;

    for (size_t i = 0; i < set->n_literals; i++) {
        const struct secret_literal *literal = &set->literals[i];
        const char *at;

        if (!literal_has_key(literal, key) || offset < literal->anchor ||
            offset - literal->anchor + literal->len > scan->len)
            continue;
        at = (const char *)scan->data + offset - literal->anchor;
        if (literal->caseless ? strncasecmp(at, literal->text, literal->len)
                              : memcmp(at, literal->text, literal->len))
            continue;
        if (literal_found(scan, counter, literal->rule,
                          offset - literal->anchor) < 0)
            return -1;
    }
    return 0;
}

/* The prefilter pass: looks up every pair of adjacent bytes in the
 * bitmap. Returns 0, or -1 when memory is short. */
static inline unsigned
pair_key(const unsigned char *at)
{
    uint16_t key;

    /* One 16-bit load instead of two byte loads: this loop runs over
     * every byte of every text file. */
    memcpy(&key, at, sizeof(key));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    key = (uint16_t)(key >> 8 | key << 8);
#endif
    return key;
}

static inline unsigned
pair_marked(const uint8_t *pairs, unsigned key)
{
    return (pairs[key >> 3] >> (key & 7)) & 1u;
}

static int
scan_literals(struct scan *scan)
{
    struct line_counter counter = {.offset = 0, .line = 1};
    const uint8_t *pairs = scan->set->pairs;
    const unsigned char *data = scan->data;
    size_t i = 0;

    /* Four pairs at a time, so that the common case of no hit costs one
     * branch for four bytes. */
    for (; i + 4 < scan->len; i += 4) {
        unsigned hits = pair_marked(pairs, pair_key(data + i)) |
                        pair_marked(pairs, pair_key(data + i + 1)) << 1 |
                        pair_marked(pairs, pair_key(data + i + 2)) << 2 |
                        pair_marked(pairs, pair_key(data + i + 3)) << 3;

        for (size_t j = 0; hits != 0; j++, hits >>= 1)
            if ((hits & 1u) != 0 &&
                check_candidate(scan, &counter, i + j) < 0)
                return -1;
    }
    for (; i + 1 < scan->len; i++)
        if (pair_marked(pairs, pair_key(data + i)) != 0 &&
            check_candidate(scan, &counter, i) < 0)
            return -1;
    return 0;
}

/* Runs every rule over the file. Returns 0, or -1 when memory is short. */
static int
scan_file(struct scan *scan)
{
    const struct inspector_secrets *set = scan->set;

    if (scan_literals(scan) < 0)
        return -1;
    for (size_t i = 0; i < set->n_rules; i++) {
        const struct secret_rule *rule = &set->rules[i];

        if (rule->has_literals && !(scan->whole_file_pending & (1u << i)))
            continue;
        if (scan_whole_file(scan, rule) < 0)
            return -1;
    }
    return 0;
}

int
secrets_scan(struct catalog_ctx *ctx, const char *path,
             const unsigned char *data, size_t len)
{
    struct scan scan = {.ctx = ctx, .path = path, .data = data, .len = len};
    bool layer_was_full = layer_findings(ctx) >= SECRETS_LAYER_FINDINGS_MAX;
    int rc = -1;

    if (layer_was_full)
        return 0;
    scan.set = scan_rules(ctx);
    if (scan.set == NULL)
        return -1;
    scan.match_data = pcre2_match_data_create(1, NULL);
    if (scan.match_data == NULL)
        return -1;

    if (scan_file(&scan) == 0)
        rc = note_dropped(&scan, layer_was_full);
    pcre2_match_data_free(scan.match_data);
    return rc;
}
