/*
 * Unit tests for version comparison (policy/version.c). Every pair of a
 * list of tricky versions is compared here and by each scheme's own tool,
 * run at test time: dpkg (Debian package dpkg), rpm's rpm.vercmp()
 * (rpm), Python's packaging.version (python3-packaging) and the npm
 * registry's semver module (node-semver, run with nodejs). The same tools
 * decide which versions are valid, except for rpm, which accepts any
 * text. apk-tools has no Debian package, so apk is checked against a
 * table written from apk-tools' version rules. A missing tool fails the
 * test with the name of the package to install.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "policy/version.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Bytes of one line a reference tool prints. */
#define REFERENCE_LINE_BYTES 64

/* ---- Running the reference tools. ---- */

/* Fails the test unless command (a shell command) succeeds, naming the
 * Debian package that provides what it checks. */
static void
require(const char *command, const char *package)
{
    char line[512];
    int rc;

    snprintf(line, sizeof(line), "%s >/dev/null 2>&1", command);
    rc = system(line);
    ck_assert_msg(rc == 0,
                  "'%s' failed: install the Debian package %s to run this "
                  "test",
                  command, package);
}

/* Writes versions one per line to a new temporary file and returns its
 * path, which the caller unlinks and frees. */
static char *
write_versions(const char *const *versions, size_t count)
{
    char *path = strdup("/tmp/pg-test-version-XXXXXX");
    int fd;
    FILE *file;

    ck_assert_ptr_nonnull(path);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    file = fdopen(fd, "w");
    ck_assert_ptr_nonnull(file);
    for (size_t i = 0; i < count; i++) {
        ck_assert_msg(strchr(versions[i], '\n') == NULL, "%s", versions[i]);
        fprintf(file, "%s\n", versions[i]);
    }
    ck_assert_int_eq(fclose(file), 0);
    return path;
}

/* Copies format to out with every "@FILE@" replaced by path. */
static void
expand_path(const char *format, const char *path, char *out, size_t size)
{
    size_t len = 0;

    while (*format != '\0') {
        const char *piece = format;
        size_t piece_len = 1;

        if (strncmp(format, "@FILE@", 6) == 0) {
            piece = path;
            piece_len = strlen(path);
            format += 6;
        } else {
            format++;
        }
        ck_assert_uint_lt(len + piece_len, size);
        memcpy(out + len, piece, piece_len);
        len += piece_len;
    }
    out[len] = '\0';
}

/*
 * Runs a shell command in which every "@FILE@" is the path of a file with
 * the versions, and reads the count integers it prints, one per line.
 * Returns them in an array the caller frees.
 */
static int *
run_reference(const char *command_format, const char *const *versions,
              size_t version_count, size_t count)
{
    char *path = write_versions(versions, version_count);
    char command[4096], line[REFERENCE_LINE_BYTES];
    int *values = calloc(count, sizeof(*values));
    size_t n = 0;
    FILE *pipe;

    ck_assert_ptr_nonnull(values);
    expand_path(command_format, path, command, sizeof(command));
    pipe = popen(command, "r");
    ck_assert_ptr_nonnull(pipe);
    while (fgets(line, sizeof(line), pipe) != NULL) {
        if (line[0] == '\n')
            continue;
        ck_assert_msg(n < count, "the reference printed more than %zu lines",
                      count);
        values[n++] = atoi(line);
    }
    ck_assert_int_eq(pclose(pipe), 0);
    ck_assert_msg(n == count, "the reference printed %zu lines, expected %zu",
                  n, count);
    unlink(path);
    free(path);
    return values;
}

/* Compares every ordered pair of versions with the reference's results,
 * which list b fastest. */
static void
check_pairs(enum pg_version_scheme scheme, const char *const *versions,
            size_t count, const int *expected)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < count; j++) {
            const char *a = versions[i], *b = versions[j];
            char why[PG_VERSION_WHY_BYTES] = "";
            int result = 99;
            int want = expected[i * count + j];

            want = (want > 0) - (want < 0);
            ck_assert_msg(pg_version_compare(scheme, a, strlen(a), b, strlen(b),
                                             &result, why, sizeof(why)) == 0,
                          "%s", why);
            ck_assert_msg(result == want,
                          "%s: '%s' vs '%s': got %d, the reference says %d",
                          pg_version_scheme_name(scheme), a, b, result, want);
        }
    }
}

/* Checks validity against the reference's 1 (valid) or 0 per version. */
static void
check_validity(enum pg_version_scheme scheme, const char *const *versions,
               size_t count, const int *expected)
{
    for (size_t i = 0; i < count; i++) {
        char why[PG_VERSION_WHY_BYTES] = "";
        int rc = pg_version_check(scheme, versions[i], strlen(versions[i]), why,
                                  sizeof(why));

        ck_assert_msg((rc == 0) == (expected[i] == 1),
                      "%s: '%s': got %s (%s), the reference says %s",
                      pg_version_scheme_name(scheme), versions[i],
                      rc == 0 ? "valid" : "invalid", why,
                      expected[i] == 1 ? "valid" : "invalid");
        ck_assert(pg_version_valid(scheme, versions[i], strlen(versions[i])) ==
                  (rc == 0));
    }
}

/* ---- deb, against dpkg --compare-versions. ---- */

static const char *const deb_versions[] = {
    "0",           "1",          "1.0",
    "1.0-0",       "1.0-1",      "1.0-1ubuntu1",
    "1.0~rc1",     "1.0~rc1-1",  "1.0~~",
    "1.0~",        "1.0+dfsg-1", "1.0.0",
    "1.00",        "1:0.9",      "1:1.0-1",
    "2:0",         "0:1.0",      "1.0a",
    "1.0A",        "1.0-1~bpo1", "1.0-1+b1",
    "1.0-1.1",     "10",         "9",
    "1.2.3-4.5~6", "1a",         "1.0.",
    "1.0-a",       "1:1.0:2-1",  "1.0-1-1",
    "007",         "1.0+~",      "2.30-0.2+deb12u1",
};

/* Versions whose validity dpkg decides: it exits with an error or warns
 * "has bad syntax" for an invalid one. The empty version is left out,
 * since dpkg reads it as "no version". */
static const char *const deb_candidates[] = {
    "1.0",     " 1.0",    "1.0 ",         "a1.0",         "1.0 1", ":1.0",
    "a:1.0",   "1:",      "1.0-",         "-1",           "1:-1",  "1.0_1",
    "1.0-1_1", "1.0-1:1", "2147483647:1", "2147483648:1", "1.0!",  "1.0@",
    "~1",      "1.0-~",   "1.0-+",        "1.0-a-b",      "1:a",   "1:1:1",
    "1.0-1.",  " ",       "1.0\t",        "1.0-\xc3\xa9",
};

START_TEST(test_deb_against_dpkg)
{
    size_t n = COUNT(deb_versions);
    int *expected;

    require("test -x /usr/bin/dpkg", "dpkg");
    expected = run_reference(
        "f='@FILE@'; while IFS= read -r a; do while IFS= read -r b; do "
        "if dpkg --compare-versions \"$a\" lt \"$b\"; then echo -1; "
        "elif dpkg --compare-versions \"$a\" eq \"$b\"; then echo 0; "
        "else echo 1; fi; done < \"$f\"; done < \"$f\"",
        deb_versions, n, n * n);
    check_pairs(PG_VERSION_DEB, deb_versions, n, expected);
    free(expected);

    expected = run_reference(
        "while IFS= read -r a; do "
        "if out=$(dpkg --compare-versions \"$a\" eq \"$a\" 2>&1) && "
        "[ -z \"$out\" ]; then echo 1; else echo 0; fi; done < '@FILE@'",
        deb_candidates, COUNT(deb_candidates), COUNT(deb_candidates));
    check_validity(PG_VERSION_DEB, deb_candidates, COUNT(deb_candidates),
                   expected);
    free(expected);
}
END_TEST

/* ---- rpm, against rpm.vercmp() in rpm's Lua. ---- */

static const char *const rpm_versions[] = {
    "1.0",
    "1.0-1",
    "1.0-2",
    "1.0.1",
    "1.0a",
    "1.0.a",
    "1.0~rc1",
    "1.0~rc1-1",
    "1.0^git1",
    "1.0^",
    "1.0^git1~pre",
    "1.0~~",
    "1:1.0",
    "0:1.0",
    "2:0.1",
    "1.0_1",
    "1.0+1",
    "1.00",
    "1.01",
    "1.001",
    "a",
    "b",
    "1a",
    "1.a1",
    "10",
    "9",
    "1.0-1.el8",
    "1.0-1.fc38",
    "5.3.28",
    "5.3.28-15.el9",
    "2.0b3",
    "2.0.b3",
    "1.0^1",
    "01:1.0",
    "1.0-1^1",
    "1.0-1~1",
    "1.0-0.rc1",
    "0.99-1",
    "1.0-10",
    "1.0-9",
};

START_TEST(test_rpm_against_rpmvercmp)
{
    size_t n = COUNT(rpm_versions);
    int *expected;

    require("test -x /usr/bin/rpm", "rpm");
    expected =
        run_reference("rpm --eval '%{lua: local t = {} "
                      "for l in io.lines(\"@FILE@\") do t[#t + 1] = l end "
                      "for _, a in ipairs(t) do for _, b in ipairs(t) do "
                      "print(rpm.vercmp(a, b) .. \"\\n\") end end}'",
                      rpm_versions, n, n * n);
    check_pairs(PG_VERSION_RPM, rpm_versions, n, expected);
    free(expected);
}
END_TEST

struct validity_case {
    const char *version;
    const char *message; /* NULL for a valid version */
};

static void
check_validity_cases(enum pg_version_scheme scheme,
                     const struct validity_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *v = cases[i].version;
        char why[PG_VERSION_WHY_BYTES] = "";
        int rc = pg_version_check(scheme, v, strlen(v), why, sizeof(why));

        if (cases[i].message == NULL) {
            ck_assert_msg(rc == 0, "%s", why);
            continue;
        }
        ck_assert_msg(rc == -1, "%s: '%s' passed the check",
                      pg_version_scheme_name(scheme), v);
        ck_assert_str_eq(why, cases[i].message);
    }
}

/* rpm itself compares any text; these are the rules rpmbuild applies to
 * the Version and Release tags, and to the epoch (a uint32). */
static const struct validity_case rpm_validity[] = {
    {"1.0", NULL},
    {"1.0-1.el9_2", NULL},
    {"3:1.0^git2~rc1+x-1", NULL},
    {"", "'' is not a valid rpm version: the version is empty"},
    {"1.0-", "'1.0-' is not a valid rpm version: the release is empty"},
    {"-1", "'-1' is not a valid rpm version: the version is empty"},
    {":1.0", "':1.0' is not a valid rpm version: the epoch before ':' is "
             "empty"},
    {"4294967296:1", "'4294967296:1' is not a valid rpm version: the epoch "
                     "is larger than 4294967295"},
    {"4294967295:1", NULL},
    {"a:1.0", "'a:1.0' is not a valid rpm version: invalid character ':' in "
              "the version"},
    {"1.0-1-1", "'1.0-1-1' is not a valid rpm version: invalid character "
                "'-' in the version"},
    {"1..0", "'1..0' is not a valid rpm version: the version contains '..'"},
    {"1.0 ", "'1.0 ' is not a valid rpm version: invalid character byte "
             "0x20 in the version"},
    {"1.0-%{dist}", "'1.0-%{dist}' is not a valid rpm version: invalid "
                    "character '%' in the release"},
};

START_TEST(test_rpm_validity)
{
    check_validity_cases(PG_VERSION_RPM, rpm_validity, COUNT(rpm_validity));
}
END_TEST

/* ---- pep440, against packaging.version. ---- */

static const char *const pep440_versions[] = {
    "1.0",         "1.0.0",          "1",
    "v1.0",        "1.0a1",          "1.0alpha1",
    "1.0.a.1",     "1.0-a1",         "1.0b2",
    "1.0beta2",    "1.0c1",          "1.0rc1",
    "1.0pre1",     "1.0preview1",    "1.0.post1",
    "1.0-1",       "1.0post1",       "1.0.rev1",
    "1.0r1",       "1.0.dev1",       "1.0dev",
    "1.0a1.dev1",  "1.0.post1.dev1", "1.0+local",
    "1.0+local.1", "1.0+local.a",    "1.0+1",
    "1.0+abc.5",   "1.0+ABC.5",      "1!0.1",
    "0!1.0",       "1.0A1",          "2.0",
    "1.0.post",    "1.0a",           "1.0a0",
    "1.1.dev0",    "1.0rc1.post1",   "1.0a1-1",
    "1.0RC1",      "V1.0",           "1.0.0.0.1",
    "1.0_post_1",  "1.0+1.a",        "1.0+a.1",
    "1.0+01",      "1.0+1.0",        "01.0",
    "1.0.dev0",    "1.0a.post1",     " 1.0 ",
    "1.0rc1.dev2", "1.0+local-2",    "1.0+local_2",
};

static const char *const pep440_candidates[] = {
    "1.0",
    "1.0.",
    "1.0..post1",
    "1.0a..post1",
    "1.0+",
    "1.0+a..b",
    "1.0+a_b-c",
    "1!",
    "!1.0",
    "1.0-",
    "1.0--1",
    "1.0a-",
    "1.0abc",
    "1.0 1",
    " 1.0 ",
    "1.0\t",
    "v",
    "1.0.dev-1",
    "1.0post-1",
    "1.0-dev",
    "1.0-post",
    "1.0-r",
    "1.0r",
    "1.0rc",
    "1.0c",
    "1.0_1",
    "01.0",
    "1.0a1b2",
    "1.0+local+x",
    "1.0+ab-",
    "vv1.0",
    "1.0.dev1.post1",
    "1.0+\xc3\xa9",
    "1.0alpha.beta",
    "a1.0",
    "",
    "1.0.rc1",
    "1.0-rc.1",
    "1.0.post.dev",
    "1.0dev1dev2",
};

START_TEST(test_pep440_against_packaging)
{
    size_t n = COUNT(pep440_versions);
    int *expected;

    require("/usr/bin/python3 -c 'import packaging.version'",
            "python3-packaging");
    expected = run_reference(
        "/usr/bin/python3 -c '\n"
        "import sys\n"
        "from packaging.version import Version\n"
        "vs = [Version(v) for v in open(sys.argv[1]).read().split(\"\\n\")"
        "[:-1]]\n"
        "for a in vs:\n"
        "    for b in vs:\n"
        "        print((a > b) - (a < b))\n"
        "' '@FILE@'",
        pep440_versions, n, n * n);
    check_pairs(PG_VERSION_PEP440, pep440_versions, n, expected);
    free(expected);

    expected = run_reference(
        "/usr/bin/python3 -c '\n"
        "import sys\n"
        "from packaging.version import Version, InvalidVersion\n"
        "for v in open(sys.argv[1]).read().split(\"\\n\")[:-1]:\n"
        "    try:\n"
        "        Version(v)\n"
        "        print(1)\n"
        "    except InvalidVersion:\n"
        "        print(0)\n"
        "' '@FILE@'",
        pep440_candidates, COUNT(pep440_candidates), COUNT(pep440_candidates));
    check_validity(PG_VERSION_PEP440, pep440_candidates,
                   COUNT(pep440_candidates), expected);
    free(expected);
}
END_TEST

/* ---- semver, against node-semver. ---- */

static const char *const semver_versions[] = {
    "0.0.0",
    "1.0.0",
    "v1.0.0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0+build",
    "1.0.0-alpha+build",
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-a-b",
    "1.0.0--",
    "1.0.0-x.7.z.92",
    "1.0.0-alpha.1a",
    "1.0.0-alpha.a1",
    "1.0.0-A",
    "1.0.0-a",
    "1.0.0-10",
    "1.0.0-9",
    "1.0.0-1.2.3",
    "1.0.0-1.2",
    "2.0.0",
    "1.10.0",
    "1.9.0",
    "10.0.0",
    "1.0.10",
    "0.0.1-pre",
    "1.0.0+001",
    "v2.0.0-rc.1+meta",
    "99999.99999.99999",
    "1.0.0-00a",
    "1.0.0-a.b.c.d",
};

static const char *const semver_candidates[] = {
    "1",         "1.0",         "1.0.0.0",
    "01.0.0",    "1.01.0",      "1.0.01",
    "1.0.0-01",  "1.0.0-00a",   "1.0.0-",
    "1.0.0+",    "1.0.0-a..b",  "1.0.0+a..b",
    "1.0.0+001", "V1.0.0",      "=1.0.0",
    " 1.0.0",    "1.0.0 ",      "1.0.0-\xc3\xa9",
    "v1.0.0",    "vv1.0.0",     "1.0.0-a_b",
    "1.0.0+a_b", "1.0.0-a.",    "1.-1.0",
    "",          "1.0.0-0",     "0.0.0",
    "1.0.0+a+b", "1.0.0-a+b.c", "1.2.3-beta.-1",
};

/* The node-semver of Debian's node-semver package, loaded with whichever
 * node comes first on PATH. */
#define NODE_SEMVER "NODE_PATH=/usr/share/nodejs node -e '"

START_TEST(test_semver_against_node_semver)
{
    size_t n = COUNT(semver_versions);
    int *expected;

    require("node --version", "nodejs");
    require("test -f /usr/share/nodejs/semver/package.json", "node-semver");
    expected = run_reference(
        NODE_SEMVER "const s = require(\"semver\");\n"
                    "const vs = require(\"fs\").readFileSync(process.argv[1], "
                    "\"utf8\").split(\"\\n\").slice(0, -1);\n"
                    "for (const a of vs) for (const b of vs) "
                    "console.log(s.compare(a, b));\n"
                    "' '@FILE@'",
        semver_versions, n, n * n);
    check_pairs(PG_VERSION_SEMVER, semver_versions, n, expected);
    free(expected);

    expected = run_reference(
        NODE_SEMVER "const s = require(\"semver\");\n"
                    "const vs = require(\"fs\").readFileSync(process.argv[1], "
                    "\"utf8\").split(\"\\n\").slice(0, -1);\n"
                    "for (const v of vs) console.log(s.valid(v) ? 1 : 0);\n"
                    "' '@FILE@'",
        semver_candidates, COUNT(semver_candidates), COUNT(semver_candidates));
    check_validity(PG_VERSION_SEMVER, semver_candidates,
                   COUNT(semver_candidates), expected);
    free(expected);
}
END_TEST

/* ---- apk, against a table from apk-tools' version rules. ---- */

struct pair_case {
    const char *a;
    const char *b;
    int expected;
};

/*
 * apk versions read digits{.digits}{letter}{_suffix{digits}}...{~hash}
 * {-rdigits}. Tokens compare in turn while both versions have the same
 * kind of token. Where one ends or the kinds differ, a pre-release suffix
 * is lower, and otherwise the kind that comes later in a version is
 * lower: the end is below a revision, which is below a letter, which is
 * below more digits.
 */
static const struct pair_case apk_pairs[] = {
    {"1.0", "1.0", 0},
    {"1.0", "1.0.1", -1},     /* the end is below more digits */
    {"1.10", "1.9", 1},       /* digits compare by value */
    {"2", "1.99", 1},         /* the first number decides */
    {"006", "1.0.0", 1},      /* leading zeros count only after a '.' */
    {"1.05", "1.5", -1},      /* after a '.', a leading 0 compares as text */
    {"1.001", "1.01", -1},    /* "001" is below "01" as text */
    {"1.0", "1.00", -1},      /* "0" is a prefix of "00" */
    {"1.0a", "1.0", 1},       /* a letter is above the end */
    {"1.0a", "1.0b", -1},     /* letters compare as bytes */
    {"1.0a", "1.0.1", -1},    /* more digits are above a letter */
    {"1.0_alpha", "1.0", -1}, /* pre-release suffixes are below the end */
    {"1.0_alpha", "1.0_beta", -1},
    {"1.0_beta", "1.0_pre", -1},
    {"1.0_pre", "1.0_rc", -1},
    {"1.0_rc9", "1.0", -1},
    {"1.0", "1.0_cvs", -1}, /* other suffixes are above the end */
    {"1.0_cvs", "1.0_svn", -1},
    {"1.0_svn", "1.0_git", -1},
    {"1.0_git", "1.0_hg", -1},
    {"1.0_hg", "1.0_p", -1},
    {"1.0_p1", "1.0", 1},
    {"1.0_p10", "1.0_p9", 1},            /* suffix numbers compare by value */
    {"1.0_alpha1", "1.0_alpha", 1},      /* a suffix number is above none */
    {"1.0_alpha_pre2", "1.0_alpha", -1}, /* a second pre-release suffix */
    {"1.0_alpha_p1", "1.0_alpha", 1},
    {"1.0_p1", "1.0a", -1},    /* a letter comes before a suffix, so it is
                                * the higher kind of token */
    {"1.0_rc1", "1.0-r1", -1}, /* a pre-release suffix is below anything */
    {"1.0-r1", "1.0", 1},      /* the end is below a revision */
    {"1.0-r1", "1.0.1", -1},   /* a revision is below more digits */
    {"1.0-r10", "1.0-r9", 1},
    {"1.0-r0", "1.0", 1},
    {"1.0~1234", "1.0~2345", -1}, /* commit hashes compare as text */
    {"1.0~abc", "1.0~abc0", -1},
    {"1.0~1234-r1", "1.0~1234-r0", 1},
    {"1.0~1234", "1.0", 1},    /* the end is below a hash */
    {"1.0~1234", "1.0-r1", 1}, /* a revision comes after a hash */
    {"1.0_rc1~ab", "1.0_rc1", 1},
    {"20050718-r1", "3.9.8-r5", 1},
    {"1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0", -1},
    /* Numbers of any length compare by value. */
    {"1.0_pre99999999999999999999", "1.0_pre18446744073709551615", 1},
    {"1.0_p01", "1.0_p1", 0},
};

START_TEST(test_apk_pairs)
{
    for (size_t i = 0; i < COUNT(apk_pairs); i++) {
        const struct pair_case *c = &apk_pairs[i];
        char why[PG_VERSION_WHY_BYTES] = "";
        int forward = 99, backward = 99;

        ck_assert_msg(pg_version_compare(PG_VERSION_APK, c->a, strlen(c->a),
                                         c->b, strlen(c->b), &forward, why,
                                         sizeof(why)) == 0,
                      "%s", why);
        ck_assert_msg(forward == c->expected, "'%s' vs '%s': got %d", c->a,
                      c->b, forward);
        ck_assert_int_eq(pg_version_compare(PG_VERSION_APK, c->b, strlen(c->b),
                                            c->a, strlen(c->a), &backward, why,
                                            sizeof(why)),
                         0);
        ck_assert_msg(backward == -c->expected, "'%s' vs '%s': got %d", c->b,
                      c->a, backward);
    }
}
END_TEST

#define APK_SHAPE "; apk versions read 1.2.3a_rc1~hash-r0"

static const struct validity_case apk_validity[] = {
    {"1.2", NULL},
    {"0.1_pre2", NULL},
    {"0.1_pre2~1234abcd", NULL},
    {"0.1_p1_pre2", NULL},
    {"0.1_alpha1_pre2", NULL},
    {"0.1_git20240101_pre1", NULL},
    {"1.0a_p1-r3", NULL},
    {"1.0~a-r1", NULL},
    {"", "'' is not a valid apk version: it does not start with a digit"},
    {"v1.0", "'v1.0' is not a valid apk version: it does not start with a "
             "digit"},
    {".1", "'.1' is not a valid apk version: it does not start with a digit"},
    {"0.1_foobar", "'0.1_foobar' is not a valid apk version: unknown suffix "
                   "'_foobar' at character 4; use _alpha, _beta, _pre, _rc, "
                   "_cvs, _svn, _git, _hg or _p"},
    {"1.0_Alpha", "'1.0_Alpha' is not a valid apk version: '_Alpha' at "
                  "character 4 cannot follow what precedes it" APK_SHAPE},
    /* Only one letter, and no digits after it. */
    {"0.1bc", "'0.1bc' is not a valid apk version: 'c' at character 5 cannot "
              "follow what precedes it" APK_SHAPE},
    {"0.1a1", "'0.1a1' is not a valid apk version: '1' at character 5 cannot "
              "follow what precedes it" APK_SHAPE},
    {"0.1a.1", "'0.1a.1' is not a valid apk version: '.1' at character 5 "
               "cannot follow what precedes it" APK_SHAPE},
    /* A hash is lower-case hexadecimal and not empty. */
    {"0.1_pre2~", "'0.1_pre2~' is not a valid apk version: '~' at character "
                  "9 cannot follow what precedes it" APK_SHAPE},
    {"0.1~12x4", "'0.1~12x4' is not a valid apk version: 'x4' at character "
                 "7 cannot follow what precedes it" APK_SHAPE},
    {"0.1~ABC", "'0.1~ABC' is not a valid apk version: '~ABC' at character "
                "4 cannot follow what precedes it" APK_SHAPE},
    {"0.1~12_pre1", "'0.1~12_pre1' is not a valid apk version: '_pre1' at "
                    "character 7 cannot follow what precedes it" APK_SHAPE},
    /* A revision is "-r" and digits, and ends the version. */
    {"0.1-pre1", "'0.1-pre1' is not a valid apk version: '-pre1' at "
                 "character 4 cannot follow what precedes it" APK_SHAPE},
    {"0.1-r", "'0.1-r' is not a valid apk version: '-r' at character 4 "
              "cannot follow what precedes it" APK_SHAPE},
    {"0.1-r2_pre1", "'0.1-r2_pre1' is not a valid apk version: '_pre1' at "
                    "character 7 cannot follow what precedes it" APK_SHAPE},
    {"0.1-r2-r3", "'0.1-r2-r3' is not a valid apk version: '-r3' at "
                  "character 7 cannot follow what precedes it" APK_SHAPE},
    {"0.1-r2.1", "'0.1-r2.1' is not a valid apk version: '.1' at character 7 "
                 "cannot follow what precedes it" APK_SHAPE},
    {"0.1_", "'0.1_' is not a valid apk version: '_' at character 4 cannot "
             "follow what precedes it" APK_SHAPE},
    {"0.1__alpha", "'0.1__alpha' is not a valid apk version: '__alpha' at "
                   "character 4 cannot follow what precedes it" APK_SHAPE},
    {"0.1_1_alpha", "'0.1_1_alpha' is not a valid apk version: '_1_alpha' at "
                    "character 4 cannot follow what precedes it" APK_SHAPE},
};

START_TEST(test_apk_validity)
{
    check_validity_cases(PG_VERSION_APK, apk_validity, COUNT(apk_validity));
}
END_TEST

/* ---- Messages, limits and scheme names. ---- */

static const struct validity_case deb_messages[] = {
    {"", "'' is not a valid deb version: the version is empty"},
    {"a1", "'a1' is not a valid deb version: the upstream version does not "
           "start with a digit"},
    {"x:1", "'x:1' is not a valid deb version: the epoch 'x' is not a "
            "number"},
    {"1.0-", "'1.0-' is not a valid deb version: the revision after the last "
             "'-' is empty"},
    {"1.0_1", "'1.0_1' is not a valid deb version: invalid character '_' in "
              "the upstream version"},
    /* The epoch ends at the first ':'. */
    {"1.0-1:1", "'1.0-1:1' is not a valid deb version: the epoch '1.0-1' is "
                "not a number"},
};

static const struct validity_case semver_messages[] = {
    {"1.x", "'1.x' is not a valid semver version: the minor version is not a "
            "number"},
    {"1.0", "'1.0' is not a valid semver version: a '.' and the patch "
            "version must follow the minor version"},
    {"01.0.0", "'01.0.0' is not a valid semver version: the major version "
               "has a leading zero"},
    {"1.0.0-01", "'1.0.0-01' is not a valid semver version: the pre-release "
                 "identifier '01' has a leading zero"},
    {"1.0.0-a..b", "'1.0.0-a..b' is not a valid semver version: the "
                   "pre-release has an empty or invalid identifier at "
                   "character 9"},
    {"1.0.0 ", "'1.0.0 ' is not a valid semver version: unexpected text at "
               "character 6; semver versions read 1.2.3-rc.1+build"},
};

static const struct validity_case pep440_messages[] = {
    {"x", "'x' is not a valid pep440 version: the release number is "
          "missing"},
    {"1.0+a..b", "'1.0+a..b' is not a valid pep440 version: the local "
                 "version label has an empty part at character 7"},
    {"1.0abc", "'1.0abc' is not a valid pep440 version: unexpected text at "
               "character 5; PEP 440 versions read "
               "1!2.3rc1.post4.dev5+local"},
};

START_TEST(test_messages)
{
    check_validity_cases(PG_VERSION_DEB, deb_messages, COUNT(deb_messages));
    check_validity_cases(PG_VERSION_SEMVER, semver_messages,
                         COUNT(semver_messages));
    check_validity_cases(PG_VERSION_PEP440, pep440_messages,
                         COUNT(pep440_messages));
}
END_TEST

START_TEST(test_length_limit)
{
    char v[PG_VERSION_MAX_BYTES + 2], why[PG_VERSION_WHY_BYTES];
    int result;

    /* "1.0.0.0...": 256 bytes are valid, 257 are not. */
    for (size_t i = 0; i < sizeof(v) - 1; i++)
        v[i] = i % 2 == 0 ? (i == 0 ? '1' : '0') : '.';
    v[sizeof(v) - 1] = '\0';
    for (int s = PG_VERSION_DEB; s <= PG_VERSION_PEP440; s++) {
        enum pg_version_scheme scheme = (enum pg_version_scheme)s;
        size_t len = PG_VERSION_MAX_BYTES - 1; /* ends in a digit */

        if (scheme == PG_VERSION_SEMVER)
            continue;
        ck_assert_msg(pg_version_valid(scheme, v, len), "%s",
                      pg_version_scheme_name(scheme));
        ck_assert(!pg_version_valid(scheme, v, PG_VERSION_MAX_BYTES + 1));
    }
    ck_assert_int_eq(pg_version_compare(PG_VERSION_DEB, v,
                                        PG_VERSION_MAX_BYTES + 1, "1", 1,
                                        &result, why, sizeof(why)),
                     -1);
    ck_assert_str_eq(why,
                     "'1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                     "0.0.0.0....' is not a valid deb version: it is 257 bytes "
                     "long, more than the maximum of 256");
}
END_TEST

START_TEST(test_scheme_lookup)
{
    static const struct {
        const char *name;
        enum pg_version_scheme scheme;
    } known[] = {
        {"deb", PG_VERSION_DEB},       {"apk", PG_VERSION_APK},
        {"rpm", PG_VERSION_RPM},       {"semver", PG_VERSION_SEMVER},
        {"npm", PG_VERSION_SEMVER},    {"golang", PG_VERSION_SEMVER},
        {"pep440", PG_VERSION_PEP440}, {"pypi", PG_VERSION_PEP440},
    };
    static const char *const unknown[] = {"Deb", "", "maven", "deb ", "debx"};
    enum pg_version_scheme scheme;
    char why[PG_VERSION_WHY_BYTES];

    for (size_t i = 0; i < COUNT(known); i++) {
        ck_assert_int_eq(pg_version_scheme_lookup(known[i].name,
                                                  strlen(known[i].name),
                                                  &scheme, why, sizeof(why)),
                         0);
        ck_assert_int_eq(scheme, known[i].scheme);
    }
    for (size_t i = 0; i < COUNT(unknown); i++)
        ck_assert_int_eq(pg_version_scheme_lookup(unknown[i],
                                                  strlen(unknown[i]), &scheme,
                                                  why, sizeof(why)),
                         -1);
    ck_assert_int_eq(
        pg_version_scheme_lookup("deb\0", 4, &scheme, why, sizeof(why)), -1);
    ck_assert_int_eq(
        pg_version_scheme_lookup("maven", 5, &scheme, why, sizeof(why)), -1);
    ck_assert_str_eq(why, "unknown version scheme 'maven'; use deb, apk, rpm, "
                          "semver or pep440 (or the package URL types npm, "
                          "golang, pypi)");
    ck_assert_str_eq(pg_version_scheme_name(PG_VERSION_PEP440), "pep440");
}
END_TEST

static Suite *
version_suite(void)
{
    Suite *suite = suite_create("version");
    TCase *tc = tcase_create("version");

    /* The dpkg test starts about two thousand processes. */
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_deb_against_dpkg);
    tcase_add_test(tc, test_rpm_against_rpmvercmp);
    tcase_add_test(tc, test_rpm_validity);
    tcase_add_test(tc, test_pep440_against_packaging);
    tcase_add_test(tc, test_semver_against_node_semver);
    tcase_add_test(tc, test_apk_pairs);
    tcase_add_test(tc, test_apk_validity);
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_length_limit);
    tcase_add_test(tc, test_scheme_lookup);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(version_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
