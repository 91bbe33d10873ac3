/*
 * Unit tests of the config module: YAML loading with positions, the
 * configuration file, command-line overrides, and the number parser and
 * log quoting that the module provides to the others.
 */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.c"
#include "config/yaml.h"

/* The temporary directory of the running test, made by setup(). */
static char tmpdir[64];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pullgate-test-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
teardown(void)
{
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to tmpdir/name and returns the path (a static buffer). */
static const char *
write_file(const char *name, const char *text)
{
    static char path[PATH_MAX];
    FILE *file;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), file), strlen(text));
    ck_assert_int_eq(fclose(file), 0);
    return path;
}

/* Loads text as tmpdir/pullgate.yaml. */
static struct config *
load_text(const char *text, struct pg_error **err)
{
    return config_load(write_file("pullgate.yaml", text), err);
}

/* Returns the message of err with the tmpdir prefix and '/' removed. */
static const char *
message_in_tmpdir(const struct pg_error *err)
{
    size_t len = strlen(tmpdir);

    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(strncmp(err->message, tmpdir, len), 0);
    ck_assert_int_eq(err->message[len], '/');
    return err->message + len + 1;
}

/* Loads text, expects failure, and checks the message after tmpdir/. */
static void
assert_load_error(const char *text, const char *expected)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text(text, &err);

    ck_assert_ptr_null(cfg);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_str_eq(message_in_tmpdir(err), expected);
    pg_error_free(err);
}

static struct yaml_doc *
parse_yaml(const char *text, struct pg_error **err)
{
    return yaml_doc_parse("test.yaml", text, strlen(text), err);
}

/* Parses text, expects failure, and checks the whole message. */
static void
assert_yaml_error(const char *text, const char *expected)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml(text, &err);

    ck_assert_ptr_null(doc);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_str_eq(err->message, expected);
    pg_error_free(err);
}

/* ------------------------------------------------------------------ */
/* config/parse.c                                                     */
/* ------------------------------------------------------------------ */

/* Two-byte characters, so that a cut at any byte count can land inside
 * one. jansson accepts only valid UTF-8, as JSON bodies must be. */
static void
fill_two_byte_text(char *text, size_t characters)
{
    for (size_t i = 0; i < characters; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[2 * characters] = '\0';
}

START_TEST(error_truncation_keeps_utf8)
{
    static char long_text[2 * 700 + 1];
    struct pg_error *err = NULL;
    json_t *json;

    fill_two_byte_text(long_text, 700);
    pg_error_set(&err, 400, PG_ERR_NAME_INVALID, "xy%s", long_text);
    ck_assert_uint_lt(strlen(err->message), PG_ERROR_MESSAGE_MAX);
    json = json_string(err->message);
    ck_assert_ptr_nonnull(json);
    json_decref(json);

    pg_error_prefix(&err, "yz%s", long_text);
    ck_assert_uint_lt(strlen(err->message), PG_ERROR_MESSAGE_MAX);
    json = json_string(err->message);
    ck_assert_ptr_nonnull(json);
    json_decref(json);
    pg_error_free(err);
}
END_TEST

START_TEST(parse_u64_plain)
{
    uint64_t value = 0;

    ck_assert_int_eq(pg_parse_u64("12345", UINT64_MAX, &value), 0);
    ck_assert_uint_eq(value, 12345);
    ck_assert_int_eq(pg_parse_u64("0", UINT64_MAX, &value), 0);
    ck_assert_uint_eq(value, 0);
}
END_TEST

START_TEST(parse_u64_empty)
{
    uint64_t value = 7;

    ck_assert_int_eq(pg_parse_u64("", UINT64_MAX, &value), -1);
    ck_assert_int_eq(pg_parse_u64(NULL, UINT64_MAX, &value), -1);
    ck_assert_uint_eq(value, 7);
}
END_TEST

START_TEST(parse_u64_sign)
{
    uint64_t value = 7;

    ck_assert_int_eq(pg_parse_u64("-1", UINT64_MAX, &value), -1);
    ck_assert_int_eq(pg_parse_u64("+1", UINT64_MAX, &value), -1);
    ck_assert_uint_eq(value, 7);
}
END_TEST

START_TEST(parse_u64_garbage)
{
    uint64_t value = 7;

    ck_assert_int_eq(pg_parse_u64("12a", UINT64_MAX, &value), -1);
    ck_assert_int_eq(pg_parse_u64(" 12", UINT64_MAX, &value), -1);
    ck_assert_int_eq(pg_parse_u64("12 ", UINT64_MAX, &value), -1);
    ck_assert_int_eq(pg_parse_u64("0x10", UINT64_MAX, &value), -1);
    ck_assert_uint_eq(value, 7);
}
END_TEST

START_TEST(parse_u64_overflow)
{
    uint64_t value = 7;

    ck_assert_int_eq(pg_parse_u64("18446744073709551615", UINT64_MAX, &value),
                     0);
    ck_assert_uint_eq(value, UINT64_MAX);
    ck_assert_int_eq(pg_parse_u64("18446744073709551616", UINT64_MAX, &value),
                     -1);
    ck_assert_int_eq(pg_parse_u64("99999999999999999999", UINT64_MAX, &value),
                     -1);
    ck_assert_uint_eq(value, UINT64_MAX);
}
END_TEST

START_TEST(parse_u64_max_bound)
{
    uint64_t value = 7;

    ck_assert_int_eq(pg_parse_u64("65535", 65535, &value), 0);
    ck_assert_uint_eq(value, 65535);
    ck_assert_int_eq(pg_parse_u64("65536", 65535, &value), -1);
    ck_assert_int_eq(pg_parse_u64("7", 5, &value), -1);
    ck_assert_int_eq(pg_parse_u64("0", 0, &value), 0);
    ck_assert_uint_eq(value, 0);
}
END_TEST

START_TEST(parse_u64_n_prefix)
{
    uint64_t value = 0;

    ck_assert_int_eq(pg_parse_u64_n("443/v2", 3, 65535, &value), 0);
    ck_assert_uint_eq(value, 443);
    ck_assert_int_eq(pg_parse_u64_n("443", 0, 65535, &value), -1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* config/log.c                                                       */
/* ------------------------------------------------------------------ */

START_TEST(log_quote_plain)
{
    char buf[64];

    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "library/alpine:3.19"),
                     "library/alpine:3.19");
}
END_TEST

START_TEST(log_quote_spaces)
{
    char buf[64];

    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "a b"), "\"a b\"");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "a=b"), "\"a=b\"");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), ""), "\"\"");
}
END_TEST

START_TEST(log_quote_quotes)
{
    char buf[64];

    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "say \"hi\""),
                     "\"say \\\"hi\\\"\"");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "a\\b"), "\"a\\\\b\"");
}
END_TEST

START_TEST(log_quote_control)
{
    char buf[64];

    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "a\nlevel=error"),
                     "\"a\\x0alevel=error\"");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "\x1b[0m"), "\"\\x1b[0m\"");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "caf\xc3\xa9"),
                     "\"caf\\xc3\\xa9\"");
}
END_TEST

START_TEST(log_quote_null)
{
    char buf[64];

    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), NULL), "-");
}
END_TEST

START_TEST(log_quote_truncation)
{
    char buf[16];

    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "abcdefghijklmnopqrst"),
                     "abcdefghijk...");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "a bcdefghijklmnopqrs"),
                     "\"a bcdefghi...\"");
    ck_assert_str_eq(pg_log_quote(buf, sizeof(buf), "\n\n\n\n\n"),
                     "\"\\x0a\\x0a...\"");
    ck_assert_str_eq(pg_log_quote(buf, 4, "abc"), "");
}
END_TEST

/* ------------------------------------------------------------------ */
/* config/yaml.c                                                      */
/* ------------------------------------------------------------------ */

START_TEST(yaml_scalar_types)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml("int: 42\n"
                                      "negative: -7\n"
                                      "real: 1.5\n"
                                      "exponent: 1e3\n"
                                      "yes: true\n"
                                      "no: False\n"
                                      "tilde: ~\n"
                                      "empty:\n"
                                      "word: null\n"
                                      "text: hello world\n"
                                      "octal_looking: 012\n"
                                      "yes_word: yes\n",
                                      &err);
    json_t *root;

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(doc);
    root = yaml_doc_root(doc);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "int")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "negative")), -7);
    ck_assert(json_real_value(json_object_get(root, "real")) == 1.5);
    ck_assert(json_real_value(json_object_get(root, "exponent")) == 1000.0);
    ck_assert(json_is_true(json_object_get(root, "yes")));
    ck_assert(json_is_false(json_object_get(root, "no")));
    ck_assert(json_is_null(json_object_get(root, "tilde")));
    ck_assert(json_is_null(json_object_get(root, "empty")));
    ck_assert(json_is_null(json_object_get(root, "word")));
    ck_assert_str_eq(json_string_value(json_object_get(root, "text")),
                     "hello world");
    ck_assert_int_eq(json_integer_value(json_object_get(root, "octal_looking")),
                     12);
    ck_assert_str_eq(json_string_value(json_object_get(root, "yes_word")),
                     "yes");
    yaml_doc_free(doc);
}
END_TEST

START_TEST(yaml_quoted_strings)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml("a: \"42\"\n"
                                      "b: 'true'\n"
                                      "c: \"\"\n"
                                      "d: !!str 12\n"
                                      "e: !!int \"12\"\n",
                                      &err);
    json_t *root;

    ck_assert_ptr_nonnull(doc);
    root = yaml_doc_root(doc);
    ck_assert_str_eq(json_string_value(json_object_get(root, "a")), "42");
    ck_assert_str_eq(json_string_value(json_object_get(root, "b")), "true");
    ck_assert_str_eq(json_string_value(json_object_get(root, "c")), "");
    ck_assert_str_eq(json_string_value(json_object_get(root, "d")), "12");
    ck_assert_int_eq(json_integer_value(json_object_get(root, "e")), 12);
    yaml_doc_free(doc);
}
END_TEST

START_TEST(yaml_integer_limits)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml("max: 9223372036854775807\n"
                                      "min: -9223372036854775808\n",
                                      &err);
    json_t *root;

    ck_assert_ptr_nonnull(doc);
    root = yaml_doc_root(doc);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "max")),
                     INT64_MAX);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "min")),
                     INT64_MIN);
    yaml_doc_free(doc);
}
END_TEST

START_TEST(yaml_integer_overflow)
{
    assert_yaml_error("a: 1\nb: 9223372036854775808\n",
                      "test.yaml:2:4: integer out of range "
                      "(-9223372036854775808 to 9223372036854775807); quote "
                      "it to use it as a string");
    assert_yaml_error("a: -9223372036854775809\n",
                      "test.yaml:1:4: integer out of range "
                      "(-9223372036854775808 to 9223372036854775807); quote "
                      "it to use it as a string");
}
END_TEST

START_TEST(yaml_real_overflow)
{
    assert_yaml_error("a: 1e999\n", "test.yaml:1:4: number out of range; "
                                    "quote it to use it as a string");
}
END_TEST

START_TEST(yaml_positions)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml("# comment\n"
                                      "name: value\n"
                                      "list:\n"
                                      "  - first\n"
                                      "  - true\n"
                                      "nested: {inner: 7}\n",
                                      &err);
    json_t *root;
    json_t *list;
    json_t *nested;
    size_t line = 99;
    size_t column = 99;

    ck_assert_ptr_nonnull(doc);
    root = yaml_doc_root(doc);
    list = json_object_get(root, "list");
    nested = json_object_get(root, "nested");

    yaml_doc_key_position(doc, root, "name", &line, &column);
    ck_assert_uint_eq(line, 2);
    ck_assert_uint_eq(column, 1);
    yaml_doc_position(doc, json_object_get(root, "name"), &line, &column);
    ck_assert_uint_eq(line, 2);
    ck_assert_uint_eq(column, 7);
    yaml_doc_position(doc, list, &line, &column);
    ck_assert_uint_eq(line, 4);
    ck_assert_uint_eq(column, 3);
    yaml_doc_index_position(doc, list, 1, &line, &column);
    ck_assert_uint_eq(line, 5);
    ck_assert_uint_eq(column, 5);
    yaml_doc_key_position(doc, nested, "inner", &line, &column);
    ck_assert_uint_eq(line, 6);
    ck_assert_uint_eq(column, 10);
    yaml_doc_position(doc, json_object_get(nested, "inner"), &line, &column);
    ck_assert_uint_eq(line, 6);
    ck_assert_uint_eq(column, 17);
    yaml_doc_free(doc);
}
END_TEST

START_TEST(yaml_position_unknown)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml("a: true\nb: [1]\n", &err);
    json_t *root;
    json_t *other = json_string("elsewhere");
    size_t line = 99;
    size_t column = 99;

    ck_assert_ptr_nonnull(doc);
    root = yaml_doc_root(doc);
    yaml_doc_position(doc, other, &line, &column);
    ck_assert_uint_eq(line, 0);
    ck_assert_uint_eq(column, 0);
    yaml_doc_position(doc, json_object_get(root, "a"), &line, &column);
    ck_assert_uint_eq(line, 0);
    ck_assert_uint_eq(column, 0);
    yaml_doc_key_position(doc, root, "c", &line, &column);
    ck_assert_uint_eq(line, 0);
    yaml_doc_index_position(doc, json_object_get(root, "b"), 1, &line, &column);
    ck_assert_uint_eq(line, 0);
    json_decref(other);
    yaml_doc_free(doc);
}
END_TEST

START_TEST(yaml_empty_document)
{
    struct pg_error *err = NULL;
    struct yaml_doc *doc = parse_yaml("# only a comment\n", &err);

    ck_assert_ptr_nonnull(doc);
    ck_assert(json_is_object(yaml_doc_root(doc)));
    ck_assert_uint_eq(json_object_size(yaml_doc_root(doc)), 0);
    ck_assert_str_eq(yaml_doc_name(doc), "test.yaml");
    yaml_doc_free(doc);

    doc = parse_yaml("---\n", &err);
    ck_assert_ptr_nonnull(doc);
    ck_assert(json_is_object(yaml_doc_root(doc)));
    yaml_doc_free(doc);
    yaml_doc_free(NULL);
}
END_TEST

START_TEST(yaml_duplicate_key)
{
    assert_yaml_error("a: 1\nb: 2\na: 3\n",
                      "test.yaml:3:1: duplicate key \"a\" (first at line 1); "
                      "remove one of them");
}
END_TEST

START_TEST(yaml_alias_rejected)
{
    assert_yaml_error("a: &x 1\n",
                      "test.yaml:1:4: anchors (&x) are not supported; write "
                      "the value out in full");
    assert_yaml_error("a: [*x]\n",
                      "test.yaml:1:5: aliases (*x) are not supported; write "
                      "the value out in full");
}
END_TEST

START_TEST(yaml_tag_rejected)
{
    assert_yaml_error("a: !custom x\n",
                      "test.yaml:1:4: tag !custom is not supported on a "
                      "scalar; remove it");
    assert_yaml_error("a: !!int x\n",
                      "test.yaml:1:4: the value is not a valid !!int; fix the "
                      "value or remove the tag");
    assert_yaml_error("a: !!seq {b: 1}\n",
                      "test.yaml:1:4: tag tag:yaml.org,2002:seq is not "
                      "supported here; remove it");
}
END_TEST

START_TEST(yaml_key_not_string)
{
    assert_yaml_error("1: a\n",
                      "test.yaml:1:1: key 1 is not a string; quote it "
                      "(\"1\")");
    assert_yaml_error("? [a]\n: b\n",
                      "test.yaml:1:3: a mapping key is not a string; use a "
                      "plain or quoted string as the key");
}
END_TEST

START_TEST(yaml_two_documents)
{
    assert_yaml_error("a: 1\n---\nb: 2\n",
                      "test.yaml:2:1: a second YAML document starts here; "
                      "keep one document per file");
}
END_TEST

START_TEST(yaml_syntax_error)
{
    assert_yaml_error("a:\n  b: c\n d: e\n",
                      "test.yaml:3:2: invalid YAML: did not find expected "
                      "key while parsing a block mapping started at line 1");
    assert_yaml_error("a: \"\\xff\\0\"\n",
                      "test.yaml:1:4: a string contains a NUL character; "
                      "remove the \\0 escape");
    assert_yaml_error("a: \xff\n",
                      "test.yaml:1:4: invalid YAML: invalid leading UTF-8 "
                      "octet (byte 0xff); save the file as UTF-8");
}
END_TEST

/* Builds "[[[...]]]" nested depth levels deep; the caller frees it. */
static char *
nested_lists(size_t depth)
{
    char *text = malloc(2 * depth + 1);

    ck_assert_ptr_nonnull(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    return text;
}

START_TEST(yaml_depth_limit)
{
    struct pg_error *err = NULL;
    char *text = nested_lists(PG_JSON_MAX_DEPTH);
    struct yaml_doc *doc = parse_yaml(text, &err);

    ck_assert_ptr_nonnull(doc);
    yaml_doc_free(doc);
    free(text);

    text = nested_lists(PG_JSON_MAX_DEPTH + 1);
    assert_yaml_error(text, "test.yaml:1:65: mappings and sequences are "
                            "nested deeper than 64 levels; flatten the "
                            "document");
    free(text);
}
END_TEST

START_TEST(yaml_size_limit)
{
    size_t len = (size_t)PG_CONFIG_FILE_MAX_BYTES + 1;
    char *text = malloc(len + 1);
    struct pg_error *err = NULL;
    struct yaml_doc *doc;
    FILE *file;
    char path[PATH_MAX];

    ck_assert_ptr_nonnull(text);
    memset(text, '#', len);
    text[len] = '\0';
    doc = yaml_doc_parse("big.yaml", text, len, &err);
    ck_assert_ptr_null(doc);
    ck_assert_str_eq(err->message, "big.yaml: file is larger than 1048576 "
                                   "bytes; split it or remove unused parts");
    pg_error_clear(&err);

    doc = yaml_doc_parse("max.yaml", text, len - 1, &err);
    ck_assert_ptr_nonnull(doc);
    yaml_doc_free(doc);

    snprintf(path, sizeof(path), "%s/big.yaml", tmpdir);
    file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(text, 1, len, file), len);
    ck_assert_int_eq(fclose(file), 0);
    doc = yaml_doc_load(path, &err);
    ck_assert_ptr_null(doc);
    ck_assert_str_eq(message_in_tmpdir(err),
                     "big.yaml: file is larger than 1048576 bytes; split it "
                     "or remove unused parts");
    pg_error_free(err);
    free(text);
}
END_TEST

START_TEST(yaml_load_missing)
{
    struct pg_error *err = NULL;
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/absent.yaml", tmpdir);
    ck_assert_ptr_null(yaml_doc_load(path, &err));
    ck_assert_str_eq(message_in_tmpdir(err),
                     "absent.yaml: failed to open: No such file or "
                     "directory; check the path and its permissions");
    pg_error_free(err);
}
END_TEST

/* ------------------------------------------------------------------ */
/* config/config.c: defaults and valid files                          */
/* ------------------------------------------------------------------ */

START_TEST(config_builtin_defaults)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);
    const struct config_upstream *up;

    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->source, "built-in defaults");
    ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
    ck_assert_uint_eq(cfg->listen_port, 5000);
    ck_assert_ptr_null(cfg->tls_cert_file);
    ck_assert_ptr_null(cfg->tls_key_file);
    ck_assert_str_eq(cfg->cache_dir, "./var");
    ck_assert_ptr_null(cfg->policy_path);
    ck_assert_str_eq(cfg->log_level, "info");
    ck_assert_uint_eq(cfg->workers, 0);
    ck_assert_uint_eq(cfg->verdict_wait_seconds, 60);
    ck_assert_uint_eq(cfg->shutdown_grace_seconds, 30);
    ck_assert_uint_eq(cfg->connect_timeout_seconds, 10);
    ck_assert_uint_eq(cfg->low_speed_timeout_seconds, 30);
    ck_assert_uint_eq(cfg->lmdb_map_size, 4ull * 1024 * 1024 * 1024);
    ck_assert_uint_eq(cfg->inspector.layer_entries_max,
                      PG_LAYER_ENTRIES_DEFAULT_MAX);
    ck_assert_uint_eq(cfg->inspector.layer_bytes_max,
                      PG_LAYER_BYTES_DEFAULT_MAX);
    ck_assert_uint_eq(cfg->inspector.path_length_max,
                      PG_LAYER_PATH_DEFAULT_MAX);
    ck_assert_uint_eq(cfg->inspector.compression_ratio_max,
                      PG_LAYER_RATIO_DEFAULT_MAX);

    ck_assert_uint_eq(cfg->n_upstreams, 1);
    up = &cfg->upstreams[0];
    ck_assert_str_eq(up->name, "docker.io");
    ck_assert_str_eq(up->url, "https://registry-1.docker.io");
    ck_assert_uint_eq(up->n_aliases, 2);
    ck_assert_str_eq(up->aliases[0], "index.docker.io");
    ck_assert_str_eq(up->aliases[1], "registry-1.docker.io");
    ck_assert(up->docker_hub);
    ck_assert(up->tls.verify);
    ck_assert_ptr_null(up->username);
    ck_assert_ptr_null(up->password);
    ck_assert_int_eq(config_validate(cfg, &err), 0);
    config_free(cfg);
    config_free(NULL);
}
END_TEST

START_TEST(config_empty_file)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text("# nothing set\n", &err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
    ck_assert_uint_eq(cfg->listen_port, 5000);
    ck_assert_str_eq(cfg->cache_dir, "./var");
    ck_assert_uint_eq(cfg->n_upstreams, 1);
    ck_assert_str_eq(cfg->upstreams[0].name, "docker.io");
    config_free(cfg);
}
END_TEST

static const char full_file[] =
    "listen: \"[::1]:8443\"\n"
    "tls:\n"
    "  cert_file: server.crt\n"
    "  key_file: /etc/pullgate/server.key\n"
    "cache_dir: /srv/pullgate\n"
    "policy: policies/main.yaml\n"
    "log_level: debug\n"
    "workers: 8\n"
    "verdict_wait_seconds: 0\n"
    "upstream_connect_timeout_seconds: 5\n"
    "upstream_low_speed_timeout_seconds: 120\n"
    "lmdb_map_size_mib: 16\n"
    "inspector:\n"
    "  layer_entries_max: 10\n"
    "  layer_bytes_max: 2048\n"
    "  path_length_max: 255\n"
    "  compression_ratio_max: 50\n"
    "upstreams:\n"
    "  - name: ghcr.io\n"
    "    url: https://ghcr.io/\n"
    "  - name: registry.example.com:5000\n"
    "    url: http://10.0.0.5:5000\n"
    "    aliases: [registry, registry.example.com]\n"
    "    docker_hub: true\n"
    "    username: puller\n"
    "    password: s3cret\n"
    "    tls:\n"
    "      verify: false\n"
    "      ca_file: ca.pem\n"
    "      cert_file: client.crt\n"
    "      key_file: client.key\n";

START_TEST(config_full_file)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text(full_file, &err);
    const struct config_upstream *up;
    char expected[PATH_MAX + 64];

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cfg);
    snprintf(expected, sizeof(expected), "%s/pullgate.yaml", tmpdir);
    ck_assert_str_eq(cfg->source, expected);
    ck_assert_str_eq(cfg->listen_host, "::1");
    ck_assert_uint_eq(cfg->listen_port, 8443);
    snprintf(expected, sizeof(expected), "%s/server.crt", tmpdir);
    ck_assert_str_eq(cfg->tls_cert_file, expected);
    ck_assert_str_eq(cfg->tls_key_file, "/etc/pullgate/server.key");
    ck_assert_str_eq(cfg->cache_dir, "/srv/pullgate");
    snprintf(expected, sizeof(expected), "%s/policies/main.yaml", tmpdir);
    ck_assert_str_eq(cfg->policy_path, expected);
    ck_assert_str_eq(cfg->log_level, "debug");
    ck_assert_uint_eq(cfg->workers, 8);
    ck_assert_uint_eq(cfg->verdict_wait_seconds, 0);
    ck_assert_uint_eq(cfg->connect_timeout_seconds, 5);
    ck_assert_uint_eq(cfg->low_speed_timeout_seconds, 120);
    ck_assert_uint_eq(cfg->lmdb_map_size, 16ull * 1024 * 1024);
    ck_assert_uint_eq(cfg->inspector.layer_entries_max, 10);
    ck_assert_uint_eq(cfg->inspector.layer_bytes_max, 2048);
    ck_assert_uint_eq(cfg->inspector.path_length_max, 255);
    ck_assert_uint_eq(cfg->inspector.compression_ratio_max, 50);
    ck_assert_uint_eq(cfg->n_upstreams, 2);

    up = &cfg->upstreams[0];
    ck_assert_str_eq(up->name, "ghcr.io");
    ck_assert_str_eq(up->url, "https://ghcr.io");
    ck_assert_uint_eq(up->n_aliases, 0);
    ck_assert(!up->docker_hub);
    ck_assert(up->tls.verify);
    ck_assert_ptr_null(up->tls.ca_file);

    up = &cfg->upstreams[1];
    ck_assert_str_eq(up->name, "registry.example.com:5000");
    ck_assert_str_eq(up->url, "http://10.0.0.5:5000");
    ck_assert_uint_eq(up->n_aliases, 2);
    ck_assert_str_eq(up->aliases[0], "registry");
    ck_assert_str_eq(up->aliases[1], "registry.example.com");
    ck_assert(up->docker_hub);
    ck_assert_str_eq(up->username, "puller");
    ck_assert_str_eq(up->password, "s3cret");
    ck_assert(!up->tls.verify);
    snprintf(expected, sizeof(expected), "%s/ca.pem", tmpdir);
    ck_assert_str_eq(up->tls.ca_file, expected);
    snprintf(expected, sizeof(expected), "%s/client.crt", tmpdir);
    ck_assert_str_eq(up->tls.cert_file, expected);
    snprintf(expected, sizeof(expected), "%s/client.key", tmpdir);
    ck_assert_str_eq(up->tls.key_file, expected);
    ck_assert_int_eq(config_validate(cfg, &err), 0);
    config_free(cfg);
}
END_TEST

START_TEST(config_docker_hub_defaults)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text("upstreams:\n"
                                   "  - name: docker.io\n"
                                   "    url: https://mirror.example.com\n"
                                   "  - name: docker.io.example.com\n"
                                   "    url: https://hub.example.com\n",
                                   &err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert(cfg->upstreams[0].docker_hub);
    ck_assert_uint_eq(cfg->upstreams[0].n_aliases, 2);
    ck_assert_str_eq(cfg->upstreams[0].aliases[0], "index.docker.io");
    ck_assert_str_eq(cfg->upstreams[0].aliases[1], "registry-1.docker.io");
    ck_assert(!cfg->upstreams[1].docker_hub);
    ck_assert_uint_eq(cfg->upstreams[1].n_aliases, 0);
    config_free(cfg);
}
END_TEST

START_TEST(config_docker_hub_overrides)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text("upstreams:\n"
                                   "  - name: docker.io\n"
                                   "    url: https://mirror.example.com\n"
                                   "    aliases: []\n"
                                   "    docker_hub: false\n",
                                   &err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert(!cfg->upstreams[0].docker_hub);
    ck_assert_uint_eq(cfg->upstreams[0].n_aliases, 0);
    config_free(cfg);
}
END_TEST

START_TEST(config_password_file)
{
    struct pg_error *err = NULL;
    struct config *cfg;

    write_file("token", "hunter2\n");
    write_file("token-crlf", "hunter3\r\n");
    cfg = load_text("upstreams:\n"
                    "  - name: ghcr.io\n"
                    "    url: https://ghcr.io\n"
                    "    username: bot\n"
                    "    password_file: token\n"
                    "  - name: quay.io\n"
                    "    url: https://quay.io\n"
                    "    username: bot\n"
                    "    password_file: token-crlf\n",
                    &err);

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->upstreams[0].password, "hunter2");
    ck_assert_str_eq(cfg->upstreams[1].password, "hunter3");
    config_free(cfg);
}
END_TEST

START_TEST(config_relative_paths)
{
    struct pg_error *err = NULL;
    struct config *cfg;
    char dir[128];
    char path[PATH_MAX];
    char expected[PATH_MAX];

    snprintf(dir, sizeof(dir), "%s/etc", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_file("etc/pullgate.yaml", "cache_dir: var\npolicy: ../p.yaml\n");
    snprintf(path, sizeof(path), "%s/pullgate.yaml", dir);
    cfg = config_load(path, &err);
    ck_assert_ptr_nonnull(cfg);
    snprintf(expected, sizeof(expected), "%s/var", dir);
    ck_assert_str_eq(cfg->cache_dir, expected);
    snprintf(expected, sizeof(expected), "%s/../p.yaml", dir);
    ck_assert_str_eq(cfg->policy_path, expected);
    config_free(cfg);

    /* A file named without a directory resolves against the working
     * directory, which is its own directory. */
    ck_assert_int_eq(chdir(dir), 0);
    cfg = config_load("pullgate.yaml", &err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->cache_dir, "var");
    ck_assert_str_eq(cfg->policy_path, "../p.yaml");
    config_free(cfg);

    cfg = config_load("./pullgate.yaml", &err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->cache_dir, "./var");
    config_free(cfg);
}
END_TEST

/* The example configuration sits next to the sources of this test. */
START_TEST(config_example_loads)
{
    struct pg_error *err = NULL;
    struct config *cfg;
    char path[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    int dir_len = slash != NULL ? (int)(slash - __FILE__) : 1;

    snprintf(path, sizeof(path), "%.*s/../../config/pullgate.example.yaml",
             dir_len, slash != NULL ? __FILE__ : ".");
    cfg = config_load(path, &err);
    if (err != NULL)
        ck_abort_msg("%s", err->message);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->n_upstreams, 2);
    ck_assert_str_eq(cfg->upstreams[0].name, "docker.io");
    ck_assert_str_eq(cfg->upstreams[1].name, "ghcr.io");
    ck_assert_str_eq(cfg->cache_dir, "/var/lib/pullgate");
    ck_assert_uint_eq(cfg->lmdb_map_size, 4ull * 1024 * 1024 * 1024);
    ck_assert_uint_eq(cfg->inspector.layer_bytes_max,
                      PG_LAYER_BYTES_DEFAULT_MAX);
    ck_assert_int_eq(config_validate(cfg, &err), 0);
    config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------ */
/* config/config.c: inspector limits, threads and secret rules        */
/* ------------------------------------------------------------------ */

START_TEST(inspector_defaults)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->inspector.file_bytes_max, 64u * 1024 * 1024);
    ck_assert_uint_eq(cfg->inspector.secret_file_bytes_max, 1024u * 1024);
    ck_assert_uint_eq(cfg->inspector.threads, 0);
    ck_assert_ptr_null(cfg->inspector.secret_rules);
    ck_assert_uint_eq(cfg->inspector.n_secret_rules, 0);
    config_free(cfg);
}
END_TEST

START_TEST(inspector_file_limits)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text("inspector:\n"
                                   "  file_bytes_max: 1\n"
                                   "  secret_file_bytes_max: "
                                   "9223372036854775807\n"
                                   "  threads: 256\n",
                                   &err);

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->inspector.file_bytes_max, 1);
    ck_assert_uint_eq(cfg->inspector.secret_file_bytes_max, INT64_MAX);
    ck_assert_uint_eq(cfg->inspector.threads, 256);
    config_free(cfg);

    cfg = load_text("inspector:\n  threads: 0\n", &err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->inspector.threads, 0);
    config_free(cfg);
}
END_TEST

START_TEST(inspector_file_limit_errors)
{
    assert_load_error("inspector:\n  file_bytes_max: 0\n",
                      "pullgate.yaml:2: inspector.file_bytes_max: 0 is out of "
                      "range; write an integer from 1 to "
                      "9223372036854775807");
    assert_load_error("inspector:\n  secret_file_bytes_max: 1MiB\n",
                      "pullgate.yaml:2: inspector.secret_file_bytes_max: "
                      "expected an integer from 1 to 9223372036854775807, "
                      "not the string \"1MiB\"");
    assert_load_error("inspector:\n  secret_file_bytes_max: "
                      "9223372036854775808\n",
                      "pullgate.yaml:2:26: integer out of range "
                      "(-9223372036854775808 to 9223372036854775807); quote "
                      "it to use it as a string");
    assert_load_error("inspector:\n  threads: 257\n",
                      "pullgate.yaml:2: inspector.threads: 257 is out of "
                      "range; write an integer from 0 to 256");
    assert_load_error("inspector:\n  threads: [2]\n",
                      "pullgate.yaml:2: inspector.threads: expected an "
                      "integer from 0 to 256, not a list");
}
END_TEST

START_TEST(secret_rules_loaded)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text(
        "inspector:\n"
        "  secret_rules:\n"
        "    - name: acme-api-key\n"
        "      pattern: 'acme_live_[0-9a-f]{32}'\n"
        "      description: API keys of ACME.\n"
        "    - name: internal-token-2\n"
        "      pattern: '^itok-[A-Z]{20}$'\n",
        &err);
    const struct config_secret_rule *rules;

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->inspector.n_secret_rules, 2);
    rules = cfg->inspector.secret_rules;
    ck_assert_str_eq(rules[0].name, "acme-api-key");
    ck_assert_str_eq(rules[0].pattern, "acme_live_[0-9a-f]{32}");
    ck_assert_str_eq(rules[0].description, "API keys of ACME.");
    ck_assert_str_eq(rules[1].name, "internal-token-2");
    ck_assert_str_eq(rules[1].pattern, "^itok-[A-Z]{20}$");
    ck_assert_str_eq(rules[1].description, "");
    config_free(cfg);
}
END_TEST

/* Appends text to a growing buffer; the caller frees it. */
static char *
append(char *buffer, const char *text)
{
    size_t used = buffer != NULL ? strlen(buffer) : 0;
    char *grown = realloc(buffer, used + strlen(text) + 1);

    ck_assert_ptr_nonnull(grown);
    memcpy(grown + used, text, strlen(text) + 1);
    return grown;
}

/* Builds a file with n secret rules named r0, r1... */
static char *
rules_file(size_t n)
{
    char *text = append(NULL, "inspector:\n  secret_rules:\n");

    for (size_t i = 0; i < n; i++) {
        char line[64];

        snprintf(line, sizeof(line), "    - {name: r%zu, pattern: x}\n", i);
        text = append(text, line);
    }
    return text;
}

START_TEST(secret_rules_maximum)
{
    struct pg_error *err = NULL;
    char *text = rules_file(PG_SECRET_RULES_MAX);
    struct config *cfg = load_text(text, &err);

    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->inspector.n_secret_rules, 256);
    ck_assert_str_eq(cfg->inspector.secret_rules[255].name, "r255");
    config_free(cfg);
    free(text);

    text = rules_file(PG_SECRET_RULES_MAX + 1);
    assert_load_error(text, "pullgate.yaml:2: inspector.secret_rules: 257 "
                            "secret rules are more than 256; remove some");
    free(text);
}
END_TEST

START_TEST(secret_rule_name_limits)
{
    struct pg_error *err = NULL;
    char name[80];
    char text[256];
    struct config *cfg;

    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(text, sizeof(text),
             "inspector:\n  secret_rules:\n    - name: %s\n"
             "      pattern: x\n",
             name);
    cfg = load_text(text, &err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->inspector.secret_rules[0].name, name);
    config_free(cfg);

    name[64] = 'a';
    name[65] = '\0';
    snprintf(text, sizeof(text),
             "inspector:\n  secret_rules:\n    - name: %s\n"
             "      pattern: x\n",
             name);
    assert_load_error(text,
                      "pullgate.yaml:3: inspector.secret_rules[0].name: "
                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaa\" is not a secret rule name; use 1 to 64 "
                      "lowercase letters, digits and '-', such as "
                      "acme-api-key");
    assert_load_error("inspector:\n  secret_rules:\n    - name: Acme_Key\n"
                      "      pattern: x\n",
                      "pullgate.yaml:3: inspector.secret_rules[0].name: "
                      "\"Acme_Key\" is not a secret rule name; use 1 to 64 "
                      "lowercase letters, digits and '-', such as "
                      "acme-api-key");
}
END_TEST

/* Builds a rule whose pattern has len bytes. */
static char *
pattern_file(size_t len)
{
    char *text = append(NULL, "inspector:\n  secret_rules:\n"
                              "    - name: long\n      pattern: ");
    char *pattern = malloc(len + 2);

    ck_assert_ptr_nonnull(pattern);
    memset(pattern, 'p', len);
    pattern[len] = '\n';
    pattern[len + 1] = '\0';
    text = append(text, pattern);
    free(pattern);
    return text;
}

START_TEST(secret_rule_pattern_limits)
{
    struct pg_error *err = NULL;
    char *text = pattern_file(PG_SECRET_PATTERN_MAX);
    struct config *cfg = load_text(text, &err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(strlen(cfg->inspector.secret_rules[0].pattern), 4096);
    config_free(cfg);
    free(text);

    text = pattern_file(PG_SECRET_PATTERN_MAX + 1);
    assert_load_error(text, "pullgate.yaml:4: "
                            "inspector.secret_rules[0].pattern: the pattern "
                            "is longer than 4096 bytes; write a shorter "
                            "pattern");
    free(text);
}
END_TEST

START_TEST(secret_rule_errors)
{
    assert_load_error("inspector:\n  secret_rules: acme\n",
                      "pullgate.yaml:2: inspector.secret_rules: expected a "
                      "list of secret rules, not the string \"acme\"; write "
                      "one entry per rule, starting with \"- name: ...\"");
    assert_load_error("inspector:\n  secret_rules:\n    - acme\n",
                      "pullgate.yaml:3: inspector.secret_rules[0]: expected "
                      "a mapping, not the string \"acme\"; write its keys on "
                      "the lines below, indented");
    assert_load_error("inspector:\n  secret_rules:\n    - pattern: x\n",
                      "pullgate.yaml:3: inspector.secret_rules[0]: missing "
                      "key \"name\"; add the name that findings report, "
                      "such as name: acme-api-key");
    assert_load_error("inspector:\n  secret_rules:\n    - name: acme\n",
                      "pullgate.yaml:3: inspector.secret_rules[0]: missing "
                      "key \"pattern\"; add a PCRE2 pattern, such as "
                      "pattern: 'ACME-[0-9]{8}'");
    assert_load_error("inspector:\n  secret_rules:\n"
                      "    - {name: acme, pattern: 5}\n",
                      "pullgate.yaml:3: inspector.secret_rules[0].pattern: "
                      "expected a string, not the integer 5; write the value "
                      "in quotes");
    assert_load_error("inspector:\n  secret_rules:\n"
                      "    - {name: acme, pattern: x, note: y}\n",
                      "pullgate.yaml:3: unknown key "
                      "\"inspector.secret_rules[0].note\"; known keys are "
                      "name, pattern, description");
    assert_load_error("inspector:\n  secret_rules:\n"
                      "    - {name: acme, pattern: x}\n"
                      "    - name: acme\n"
                      "      pattern: y\n",
                      "pullgate.yaml:4: inspector.secret_rules[1].name: "
                      "\"acme\" is also the name of "
                      "inspector.secret_rules[0]; give each secret rule a "
                      "different name");
}
END_TEST

/* ------------------------------------------------------------------ */
/* config/config.c: errors in files                                   */
/* ------------------------------------------------------------------ */

START_TEST(config_unknown_key)
{
    assert_load_error("log_level: info\n"
                      "\n"
                      "listn: 127.0.0.1:5000\n",
                      "pullgate.yaml:3: unknown key \"listn\"; known keys are "
                      "listen, tls, cache_dir, policy, log_level, workers, "
                      "verdict_wait_seconds, shutdown_grace_seconds, "
                      "upstream_connect_timeout_seconds, "
                      "upstream_low_speed_timeout_seconds, lmdb_map_size_mib, "
                      "inspector, upstreams");
}
END_TEST

START_TEST(config_unknown_nested_key)
{
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    tsl: {verify: false}\n",
                      "pullgate.yaml:4: unknown key \"upstreams[0].tsl\"; "
                      "known keys are name, url, aliases, docker_hub, "
                      "username, password, password_file, tls");
}
END_TEST

START_TEST(config_wrong_type)
{
    assert_load_error("workers: four\n",
                      "pullgate.yaml:1: workers: expected an integer from 0 "
                      "to 256, not the string \"four\"");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "  - name: quay.io\n"
                      "    url: https://quay.io\n"
                      "    tls:\n"
                      "      verify: \"no\"\n",
                      "pullgate.yaml:7: upstreams[1].tls.verify: expected "
                      "true or false, not the string \"no\"");
    assert_load_error("cache_dir: 5\n",
                      "pullgate.yaml:1: cache_dir: expected a string, not the "
                      "integer 5; write the value in quotes");
    assert_load_error("inspector: 5\n",
                      "pullgate.yaml:1: inspector: expected a mapping, not "
                      "the integer 5; write its keys on the lines below, "
                      "indented");
    assert_load_error("- listen\n",
                      "pullgate.yaml:1: the file is not a mapping of keys; "
                      "start it with a key such as listen: 127.0.0.1:5000");
}
END_TEST

START_TEST(config_out_of_range)
{
    assert_load_error("workers: 257\n",
                      "pullgate.yaml:1: workers: 257 is out of range; write "
                      "an integer from 0 to 256");
    assert_load_error("upstream_connect_timeout_seconds: 0\n",
                      "pullgate.yaml:1: upstream_connect_timeout_seconds: 0 "
                      "is out of range; write an integer from 1 to 600");
    assert_load_error("lmdb_map_size_mib: 15\n",
                      "pullgate.yaml:1: lmdb_map_size_mib: 15 is out of "
                      "range; write an integer from 16 to 1048576");
    assert_load_error("inspector:\n  path_length_max: -1\n",
                      "pullgate.yaml:2: inspector.path_length_max: -1 is out "
                      "of range; write an integer from 1 to "
                      "9223372036854775807");
    assert_load_error("log_level: verbose\n",
                      "pullgate.yaml:1: log_level: \"verbose\" is not a log "
                      "level; write debug, info, warn or error");
}
END_TEST

START_TEST(config_bad_url)
{
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "  - name: example.com\n"
                      "\n"
                      "\n"
                      "    url: ftp://x\n",
                      "pullgate.yaml:7: upstreams[1].url: \"ftp://x\" is not "
                      "an http:// or https:// URL; write the upstream's base "
                      "URL, such as https://ghcr.io");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io/v2/\n",
                      "pullgate.yaml:3: upstreams[0].url: "
                      "\"https://ghcr.io/v2/\" has a path, query or fragment; "
                      "write the upstream's base URL, such as "
                      "https://ghcr.io");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://:443\n",
                      "pullgate.yaml:3: upstreams[0].url: \"https://:443\" "
                      "has no valid host and port; write the upstream's base "
                      "URL, such as https://ghcr.io");
}
END_TEST

START_TEST(config_url_credentials)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text("upstreams:\n"
                                   "  - name: ghcr.io\n"
                                   "    url: https://bot:hunter2@ghcr.io\n",
                                   &err);

    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(message_in_tmpdir(err),
                     "pullgate.yaml:3: upstreams[0].url: the URL contains a "
                     "user name or password; remove them from the URL and set "
                     "username and password (or password_file) on the "
                     "upstream");
    ck_assert_ptr_null(strstr(err->message, "hunter2"));
    pg_error_free(err);
}
END_TEST

START_TEST(config_bad_name)
{
    assert_load_error("upstreams:\n"
                      "  - name: GHCR.io\n"
                      "    url: https://ghcr.io\n",
                      "pullgate.yaml:2: upstreams[0].name: \"GHCR.io\" is not "
                      "a registry host name; write it as clients do, in "
                      "lowercase letters, digits, '.' and '-' with an "
                      "optional :PORT, such as ghcr.io or "
                      "registry.example.com:5000");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    aliases: [ok.example, bad..example]\n",
                      "pullgate.yaml:4: upstreams[0].aliases[1]: "
                      "\"bad..example\" is not a registry host name; write it "
                      "as clients do, in lowercase letters, digits, '.' and "
                      "'-' with an optional :PORT, such as ghcr.io or "
                      "registry.example.com:5000");
}
END_TEST

START_TEST(config_missing_keys)
{
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n",
                      "pullgate.yaml:2: upstreams[0]: missing key \"url\"; "
                      "add the upstream's base URL, such as url: "
                      "https://ghcr.io");
    assert_load_error("upstreams:\n"
                      "  - url: https://ghcr.io\n",
                      "pullgate.yaml:2: upstreams[0]: missing key \"name\"; "
                      "add the registry host that clients use, such as name: "
                      "ghcr.io");
    assert_load_error("upstreams: []\n",
                      "pullgate.yaml:1: upstreams: the list is empty; add at "
                      "least one upstream, such as \"- name: docker.io\"");
}
END_TEST

START_TEST(config_bad_listen_port)
{
    assert_load_error("listen: 127.0.0.1:70000\n",
                      "pullgate.yaml:1: listen: port \"70000\" is not a "
                      "number from 1 to 65535; write a port such as 5000");
    assert_load_error("listen: 127.0.0.1:0\n",
                      "pullgate.yaml:1: listen: port \"0\" is not a number "
                      "from 1 to 65535; write a port such as 5000");
    assert_load_error("listen: localhost:5000\n",
                      "pullgate.yaml:1: listen: \"localhost:5000\" is not "
                      "ADDRESS:PORT; write an IP address and a port, such as "
                      "127.0.0.1:5000 or [::1]:5000");
    assert_load_error("listen: \"::1:5000\"\n",
                      "pullgate.yaml:1: listen: \"::1:5000\" is not "
                      "ADDRESS:PORT; write an IP address and a port, such as "
                      "127.0.0.1:5000 or [::1]:5000");
}
END_TEST

START_TEST(config_password_without_username)
{
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    password: hunter2\n",
                      "pullgate.yaml:4: upstreams[0].password: a password is "
                      "set but username is missing; add username, or remove "
                      "password");
}
END_TEST

START_TEST(config_password_twice)
{
    write_file("token", "hunter2\n");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    username: bot\n"
                      "    password: hunter2\n"
                      "    password_file: token\n",
                      "pullgate.yaml:6: upstreams[0].password_file: password "
                      "is set too; keep either password or password_file");
}
END_TEST

START_TEST(config_password_hidden)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text("upstreams:\n"
                                   "  - name: ghcr.io\n"
                                   "    url: https://ghcr.io\n"
                                   "    username: bot\n"
                                   "    password: 8675309\n",
                                   &err);

    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(message_in_tmpdir(err),
                     "pullgate.yaml:5: upstreams[0].password: expected a "
                     "string, not an integer; write the value in quotes");
    ck_assert_ptr_null(strstr(err->message, "8675309"));
    pg_error_free(err);
}
END_TEST

START_TEST(config_password_file_errors)
{
    write_file("empty", "\n");
    write_file("two-lines", "hunter2\nhunter3\n");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    username: bot\n"
                      "    password_file: empty\n",
                      "pullgate.yaml:5: upstreams[0].password_file: the file "
                      "is empty; write the password in it");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    username: bot\n"
                      "    password_file: two-lines\n",
                      "pullgate.yaml:5: upstreams[0].password_file: the file "
                      "contains more than one line or a NUL byte; write only "
                      "the password, on one line");
}
END_TEST

START_TEST(config_tls_pair)
{
    assert_load_error("tls:\n  cert_file: a.crt\n",
                      "pullgate.yaml:1: tls: cert_file is set but key_file is "
                      "missing; set both, or neither");
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "    tls: {key_file: c.key}\n",
                      "pullgate.yaml:4: upstreams[0].tls: key_file is set but "
                      "cert_file is missing; set both, or neither");
}
END_TEST

START_TEST(config_duplicate_names)
{
    assert_load_error("upstreams:\n"
                      "  - name: ghcr.io\n"
                      "    url: https://ghcr.io\n"
                      "  - name: quay.io\n"
                      "    url: https://quay.io\n"
                      "  - name: ghcr.io\n"
                      "    url: https://mirror.example.com\n",
                      "pullgate.yaml:6: upstreams[2].name: \"ghcr.io\" is "
                      "also upstreams[0].name; give each upstream a different "
                      "name and aliases");
    assert_load_error("upstreams:\n"
                      "  - name: docker.io\n"
                      "    url: https://registry-1.docker.io\n"
                      "  - name: hub.example.com\n"
                      "    url: https://hub.example.com\n"
                      "    aliases:\n"
                      "      - index.docker.io\n",
                      "pullgate.yaml:7: upstreams[1].aliases[0]: "
                      "\"index.docker.io\" is also upstreams[0].aliases[0]; "
                      "give each upstream a different name and aliases");
}
END_TEST

/* ------------------------------------------------------------------ */
/* config/config.c: command-line options and validation               */
/* ------------------------------------------------------------------ */

START_TEST(option_upstream_replaces)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text(full_file, &err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(
        config_set_option(cfg, "upstream", "quay.io=https://quay.io/", &err),
        0);
    ck_assert_uint_eq(cfg->n_upstreams, 1);
    ck_assert_str_eq(cfg->upstreams[0].name, "quay.io");
    ck_assert_str_eq(cfg->upstreams[0].url, "https://quay.io");
    ck_assert(!cfg->upstreams[0].docker_hub);
    ck_assert(cfg->upstreams[0].tls.verify);

    ck_assert_int_eq(config_set_option(cfg, "upstream",
                                       "docker.io=https://mirror.gcr.io", &err),
                     0);
    ck_assert_uint_eq(cfg->n_upstreams, 2);
    ck_assert_str_eq(cfg->upstreams[0].name, "quay.io");
    ck_assert_str_eq(cfg->upstreams[1].name, "docker.io");
    ck_assert_str_eq(cfg->upstreams[1].url, "https://mirror.gcr.io");
    ck_assert(cfg->upstreams[1].docker_hub);
    ck_assert_uint_eq(cfg->upstreams[1].n_aliases, 2);
    ck_assert_str_eq(cfg->upstreams[1].aliases[0], "index.docker.io");
    ck_assert_int_eq(config_validate(cfg, &err), 0);
    ck_assert_ptr_null(err);
    config_free(cfg);
}
END_TEST

static void
assert_option_error(const char *option, const char *value, const char *expected)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(config_set_option(cfg, option, value, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_str_eq(err->message, expected);
    ck_assert_uint_eq(cfg->n_upstreams, 1);
    ck_assert_str_eq(cfg->upstreams[0].name, "docker.io");
    pg_error_free(err);
    config_free(cfg);
}

START_TEST(option_upstream_bad_form)
{
    assert_option_error("upstream", "foo",
                        "--upstream \"foo\": expected NAME=URL, such as "
                        "docker.io=https://registry-1.docker.io");
    assert_option_error("upstream", "=https://ghcr.io",
                        "--upstream \"=https://ghcr.io\": expected NAME=URL, "
                        "such as docker.io=https://registry-1.docker.io");
    assert_option_error(
        "upstream", "ghcr.io=ftp://ghcr.io",
        "--upstream \"ghcr.io=ftp://ghcr.io\": \"ftp://ghcr.io\" "
        "is not an http:// or https:// URL; write the "
        "upstream's base URL, such as https://ghcr.io");
    assert_option_error("upstream", "ghcr.io=https://bot:hunter2@ghcr.io",
                        "--upstream: the URL contains a user name or "
                        "password; remove them from the URL and set username "
                        "and password (or password_file) on the upstream");
    assert_option_error("upstream", "ghcr_io=https://ghcr.io",
                        "--upstream \"ghcr_io=https://ghcr.io\": \"ghcr_io\" "
                        "is not a registry host name; write it as clients do, "
                        "in lowercase letters, digits, '.' and '-' with an "
                        "optional :PORT, such as ghcr.io or "
                        "registry.example.com:5000");
}
END_TEST

START_TEST(option_listen)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);

    ck_assert_int_eq(config_set_option(cfg, "listen", "[::]:5443", &err), 0);
    ck_assert_str_eq(cfg->listen_host, "::");
    ck_assert_uint_eq(cfg->listen_port, 5443);
    ck_assert_int_eq(config_set_option(cfg, "listen", "0.0.0.0:80", &err), 0);
    ck_assert_str_eq(cfg->listen_host, "0.0.0.0");
    ck_assert_uint_eq(cfg->listen_port, 80);
    config_free(cfg);

    assert_option_error("listen", "0.0.0.0:http",
                        "--listen \"0.0.0.0:http\": port \"http\" is not a "
                        "number from 1 to 65535; write a port such as 5000");
    assert_option_error("listen", "5000",
                        "--listen \"5000\": \"5000\" is not ADDRESS:PORT; "
                        "write an IP address and a port, such as "
                        "127.0.0.1:5000 or [::1]:5000");
}
END_TEST

START_TEST(option_paths_stay_relative)
{
    struct pg_error *err = NULL;
    struct config *cfg = load_text(full_file, &err);

    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(config_set_option(cfg, "cache-dir", "cache", &err), 0);
    ck_assert_str_eq(cfg->cache_dir, "cache");
    ck_assert_int_eq(config_set_option(cfg, "policy", "p.yaml", &err), 0);
    ck_assert_str_eq(cfg->policy_path, "p.yaml");
    config_free(cfg);

    assert_option_error("cache-dir", "",
                        "--cache-dir \"\": the path is empty; give a "
                        "directory or file");
    assert_option_error("workers", "4",
                        "--workers \"4\": unknown option; the options that "
                        "override the configuration are --listen, "
                        "--upstream, --cache-dir and --policy");
}
END_TEST

START_TEST(validate_duplicate_options)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);

    ck_assert_int_eq(
        config_set_option(cfg, "upstream", "ghcr.io=https://ghcr.io", &err), 0);
    ck_assert_int_eq(config_set_option(cfg, "upstream",
                                       "ghcr.io=https://mirror.example", &err),
                     0);
    ck_assert_int_eq(config_validate(cfg, &err), -1);
    ck_assert_str_eq(err->message,
                     "upstreams[1].name: \"ghcr.io\" is also "
                     "upstreams[0].name; give each upstream a different name "
                     "and aliases");
    pg_error_free(err);
    config_free(cfg);
}
END_TEST

START_TEST(validate_no_upstream)
{
    struct pg_error *err = NULL;
    struct config *cfg = config_defaults(&err);

    upstreams_free(cfg->upstreams, cfg->n_upstreams);
    cfg->upstreams = NULL;
    cfg->n_upstreams = 0;
    ck_assert_int_eq(config_validate(cfg, &err), -1);
    ck_assert_str_eq(err->message,
                     "no upstream is configured; add one under upstreams: or "
                     "with --upstream NAME=URL");
    pg_error_free(err);
    config_free(cfg);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *suite = suite_create("config");
    TCase *parse = tcase_create("parse");
    TCase *log = tcase_create("log");
    TCase *yaml = tcase_create("yaml");
    TCase *file = tcase_create("file");
    TCase *options = tcase_create("options");

    tcase_add_test(parse, error_truncation_keeps_utf8);
    tcase_add_test(parse, parse_u64_plain);
    tcase_add_test(parse, parse_u64_empty);
    tcase_add_test(parse, parse_u64_sign);
    tcase_add_test(parse, parse_u64_garbage);
    tcase_add_test(parse, parse_u64_overflow);
    tcase_add_test(parse, parse_u64_max_bound);
    tcase_add_test(parse, parse_u64_n_prefix);
    suite_add_tcase(suite, parse);

    tcase_add_test(log, log_quote_plain);
    tcase_add_test(log, log_quote_spaces);
    tcase_add_test(log, log_quote_quotes);
    tcase_add_test(log, log_quote_control);
    tcase_add_test(log, log_quote_null);
    tcase_add_test(log, log_quote_truncation);
    suite_add_tcase(suite, log);

    tcase_add_checked_fixture(yaml, setup, teardown);
    tcase_add_test(yaml, yaml_scalar_types);
    tcase_add_test(yaml, yaml_quoted_strings);
    tcase_add_test(yaml, yaml_integer_limits);
    tcase_add_test(yaml, yaml_integer_overflow);
    tcase_add_test(yaml, yaml_real_overflow);
    tcase_add_test(yaml, yaml_positions);
    tcase_add_test(yaml, yaml_position_unknown);
    tcase_add_test(yaml, yaml_empty_document);
    tcase_add_test(yaml, yaml_duplicate_key);
    tcase_add_test(yaml, yaml_alias_rejected);
    tcase_add_test(yaml, yaml_tag_rejected);
    tcase_add_test(yaml, yaml_key_not_string);
    tcase_add_test(yaml, yaml_two_documents);
    tcase_add_test(yaml, yaml_syntax_error);
    tcase_add_test(yaml, yaml_depth_limit);
    tcase_add_test(yaml, yaml_size_limit);
    tcase_add_test(yaml, yaml_load_missing);
    suite_add_tcase(suite, yaml);

    tcase_add_checked_fixture(file, setup, teardown);
    tcase_add_test(file, config_builtin_defaults);
    tcase_add_test(file, config_empty_file);
    tcase_add_test(file, config_full_file);
    tcase_add_test(file, config_docker_hub_defaults);
    tcase_add_test(file, config_docker_hub_overrides);
    tcase_add_test(file, config_password_file);
    tcase_add_test(file, config_relative_paths);
    tcase_add_test(file, config_example_loads);
    tcase_add_test(file, config_unknown_key);
    tcase_add_test(file, config_unknown_nested_key);
    tcase_add_test(file, config_wrong_type);
    tcase_add_test(file, config_out_of_range);
    tcase_add_test(file, config_bad_url);
    tcase_add_test(file, config_url_credentials);
    tcase_add_test(file, config_bad_name);
    tcase_add_test(file, config_missing_keys);
    tcase_add_test(file, config_bad_listen_port);
    tcase_add_test(file, config_password_without_username);
    tcase_add_test(file, config_password_twice);
    tcase_add_test(file, config_password_hidden);
    tcase_add_test(file, config_password_file_errors);
    tcase_add_test(file, config_tls_pair);
    tcase_add_test(file, config_duplicate_names);
    suite_add_tcase(suite, file);

    tcase_add_checked_fixture(options, setup, teardown);
    tcase_add_test(options, option_upstream_replaces);
    tcase_add_test(options, option_upstream_bad_form);
    tcase_add_test(options, option_listen);
    tcase_add_test(options, option_paths_stay_relative);
    tcase_add_test(options, validate_duplicate_options);
    tcase_add_test(options, validate_no_upstream);
    tcase_add_test(options, inspector_defaults);
    tcase_add_test(options, inspector_file_limits);
    tcase_add_test(options, inspector_file_limit_errors);
    tcase_add_test(options, secret_rules_loaded);
    tcase_add_test(options, secret_rules_maximum);
    tcase_add_test(options, secret_rule_name_limits);
    tcase_add_test(options, secret_rule_pattern_limits);
    tcase_add_test(options, secret_rule_errors);
    suite_add_tcase(suite, options);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(config_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
