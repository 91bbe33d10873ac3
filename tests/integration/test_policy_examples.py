"""The shipped policies pass their own tests and lint, and the expressions
in docs/policy.md give the values the page states.

The policies are config/policy/default.yaml (the built-in policy) and the
example directories under config/policy/examples/. Expected counts are the
numbers of test cases written in each test file. Expected messages and
values are worked out by hand from the JSON inputs in the testdata folders.
"""

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

SRCDIR = Path(os.environ.get("PG_SRCDIR", Path(__file__).resolve().parents[2]))
POLICY_DIR = SRCDIR / "config" / "policy"
EXAMPLES_DIR = POLICY_DIR / "examples"
DEFAULT_DATA = POLICY_DIR / "testdata"
DOC = SRCDIR / "docs" / "policy.md"

# The number of test cases in each policy's test file.
TEST_COUNTS = {
    "default": 12,
    "deny-dev-repositories": 6,
    "deny-docker-hub": 3,
    "no-secrets": 5,
    "require-non-root": 9,
    "setuid-allowlist": 4,
    "trusted-base": 10,
}
EXAMPLES = sorted(name for name in TEST_COUNTS if name != "default")


def run(pullgate_bin, *args, stdin=None):
    return subprocess.run(
        [str(pullgate_bin), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=30,
    )


def policy_path(name: str) -> Path:
    return POLICY_DIR if name == "default" else EXAMPLES_DIR / name


def last_line(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    return lines[-1]


def evaluate(pullgate_bin, expr: str, document: Path | None = None):
    """Return the JSON value `pullgate policy eval` prints for expr."""
    args = ["policy", "eval", "--expr", expr]
    if document is not None:
        args += ["--input", str(document)]
    result = run(pullgate_bin, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def rule_of(policy_file: Path, name: str) -> dict:
    rules = yaml.safe_load(policy_file.read_text())["rules"]
    return next(rule for rule in rules if rule["name"] == name)


@pytest.mark.parametrize("name", sorted(TEST_COUNTS))
def test_policy_tests_pass(pullgate_bin, name):
    result = run(pullgate_bin, "policy", "test", str(policy_path(name)))

    assert result.returncode == 0, result.stdout + result.stderr
    assert last_line(result.stdout) == f"{TEST_COUNTS[name]} passed, 0 failed"
    assert "FAIL " not in result.stdout


@pytest.mark.parametrize("name", sorted(TEST_COUNTS))
def test_policy_lint_clean(pullgate_bin, name):
    # The trusted-base example has an exception that expires on
    # 2030-06-30, so lint judges expiry on a fixed day before that.
    result = run(
        pullgate_bin, "policy", "lint", "--now", "2027-01-01",
        str(policy_path(name)),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "0 errors, 0 warnings\n"


def test_policy_test_counts_match_files():
    """TEST_COUNTS above agrees with the test files."""
    for name, count in TEST_COUNTS.items():
        if name == "default":
            test_file = POLICY_DIR / "default.test.yaml"
        else:
            test_file = EXAMPLES_DIR / name / "policy.test.yaml"
        tests = yaml.safe_load(test_file.read_text())["tests"]
        assert len(tests) == count, test_file


def test_examples_combine_in_one_directory(pullgate_bin, tmp_path):
    """Every example and the default policy can share one policy
    directory: rule names differ and only default.yaml sets
    on_inspection_failure."""
    combined = tmp_path / "policy"
    combined.mkdir()
    shutil.copy(POLICY_DIR / "default.yaml", combined / "00-default.yaml")
    for name in EXAMPLES:
        shutil.copy(EXAMPLES_DIR / name / "policy.yaml", combined / f"{name}.yaml")

    result = run(pullgate_bin, "policy", "lint", str(combined))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "0 errors, 0 warnings\n"


def test_examples_leave_inspection_failure_unset():
    for name in EXAMPLES:
        policy = yaml.safe_load((EXAMPLES_DIR / name / "policy.yaml").read_text())
        assert "on_inspection_failure" not in policy, name


# ---- messages of the default policy ----

DEFAULT_MESSAGES = [
    (
        "no-credential-files",
        "aws-credentials.json",
        "image contains AWS credentials or an SSH private key: "
        "root/.aws/credentials (layer 1)",
    ),
    (
        "no-credential-files",
        "ssh-private-keys.json",
        "image contains AWS credentials or an SSH private key: "
        "home/app/.ssh/id_ed25519 (layer 1), home/app/.ssh/id_rsa (layer 1), "
        "home/deploy/.ssh/id_ed25519 (layer 1) and 1 more",
    ),
    (
        "no-embedded-secrets",
        "aws-credentials.json",
        "image contains a secret: "
        "aws-access-key-id in root/.aws/credentials (layer 1, line 2), "
        "aws-secret-access-key in root/.aws/credentials (layer 1, line 3)",
    ),
    (
        "no-embedded-secrets",
        "ssh-private-keys.json",
        "image contains a secret: "
        "private-key in home/app/.ssh/id_ed25519 (layer 1, line 1), "
        "private-key in home/app/.ssh/id_rsa (layer 1, line 1), "
        "private-key in home/deploy/.ssh/id_ed25519 (layer 1, line 1) and 1 more",
    ),
    (
        "no-embedded-secrets",
        "config-token.json",
        "image contains a secret: github-token in the image config",
    ),
]


@pytest.mark.parametrize("rule,document,expected", DEFAULT_MESSAGES)
def test_default_message_lists_findings(pullgate_bin, rule, document, expected):
    expression = rule_of(POLICY_DIR / "default.yaml", rule)["message_expression"]

    message = evaluate(pullgate_bin, expression, DEFAULT_DATA / document)

    assert message == expected


def test_default_conditions_match_messages(pullgate_bin):
    """Each rule with a message_expression fires on the documents its
    message was checked on."""
    for rule, document, _ in DEFAULT_MESSAGES:
        when = rule_of(POLICY_DIR / "default.yaml", rule)["when"]
        assert evaluate(pullgate_bin, when, DEFAULT_DATA / document) is True


EXAMPLE_MESSAGES = [
    (
        "setuid-allowlist",
        "unlisted-setuid-files",
        "extra-setuid.json",
        "setuid or setgid files not on the allow list: "
        "usr/local/bin/backup-agent, usr/local/bin/netdiag, "
        "usr/local/bin/spool and 1 more",
    ),
    (
        "no-secrets",
        "no-keys-in-files",
        "env-file-keys.json",
        "image contains keys: aws-access-key-id in app/.env:3, "
        "aws-secret-access-key in app/.env:4",
    ),
    (
        "no-secrets",
        "no-keys-in-files",
        "ssh-key.json",
        "image contains keys: private-key in root/.ssh/id_rsa:1 "
        "(deleted in a later layer)",
    ),
    (
        "trusted-base",
        "trusted-base-image",
        "ubuntu-base.json",
        "base image docker.io/library/ubuntu:24.04 is only named by the "
        "image's annotations; pull the base image through pullgate first "
        "so that its layers confirm it",
    ),
    (
        "trusted-base",
        "trusted-base-image",
        "digest-only-base.json",
        "image names no base image; build it FROM a trusted base image",
    ),
    (
        "require-non-root",
        "non-root-user",
        "unset-user.json",
        "image sets no USER, so it runs as root; set USER to a non-root user",
    ),
]


@pytest.mark.parametrize("example,rule,document,expected", EXAMPLE_MESSAGES)
def test_example_message(pullgate_bin, example, rule, document, expected):
    directory = EXAMPLES_DIR / example
    expression = rule_of(directory / "policy.yaml", rule)["message_expression"]

    message = evaluate(pullgate_bin, expression, directory / "testdata" / document)

    assert message == expected


# ---- expressions of docs/policy.md ----

# Every expression the page shows outside the shipped policies, with the
# input it is evaluated on (None for no variables) and the value the page
# states.
NPM_PACKAGES = {
    "packages": [
        {"type": "npm", "name": "lodash", "version": "4.17.20",
         "path": "app/node_modules/lodash/package.json", "layer": 2},
        {"type": "npm", "name": "lodash", "version": "latest",
         "path": "tools/node_modules/lodash/package.json", "layer": 3},
    ]
}
DOC_VALUES = [
    ('"deb" in ["deb", "rpm"]', None, True),
    ("1 == 1.0", None, True),
    ("1u == 1", None, True),
    ('"1" == 1', None, False),
    ("7 / 2", None, 3),
    ("double(1) + 1.0", None, 2.0),
    ('int("12")', None, 12),
    ("string(3)", None, "3"),
    ('r"\\d+"', None, "\\d+"),
    ("0x1F", None, 31),
    ("1e3", None, 1000.0),
    ("false && 1 / 0 == 1", None, False),
    ("1 / 0 == 1 || true", None, True),
    ('{"a": 1}.exists(k, k == "a")', None, True),
    ('"docker.io/library/debian:12".matchesGlob("docker.io/library/debian:*")',
     None, True),
    ('"gcr.io/distroless/static-debian12:nonroot"'
     '.matchesGlob("gcr.io/distroless/*:*")', None, True),
    ('"usr/lib/dbus-1.0/dbus-daemon-launch-helper"'
     '.matchesGlob("usr/lib/dbus-1*/dbus-daemon-launch-helper")', None, True),
    ('"root/.aws/credentials".matchesGlob("**/.aws/credentials")', None, True),
    ('".aws/credentials".matchesGlob("**/.aws/credentials")', None, False),
    ('("/" + ".aws/credentials").matchesGlob("**/.aws/credentials")',
     None, True),
    ('compareVersions("deb", "1:2.36-9", "2.37-1")', None, 1),
    ('compareVersions("deb", "2.36~rc1-1", "2.36-1")', None, -1),
    ('compareVersions("semver", "v1.2.3", "1.2.3+build.7")', None, 0),
    ('compareVersions("semver", "1.0.0-rc.1", "1.0.0")', None, -1),
    ('compareVersions("pypi", "3.0.0", "3.0.0.post1")', None, -1),
    ('compareVersions("rpm", "1:3.0.7-24.el9", "1:3.0.7-27.el9")', None, -1),
    ('compareVersions("apk", "1.2.3_rc1-r2", "1.2.3-r0")', None, -1),
    ('compareVersions("pep440", "1!0.5", "2.0")', None, 1),
    ('isVersion("npm", "latest")', None, False),
    ('isVersion("npm", "4.17.20")', None, True),
    ("secrets.filter(s, !s.present).map(s, s.rule)",
     DEFAULT_DATA / "aws-credentials.json",
     ["credential-file-aws", "aws-access-key-id", "aws-secret-access-key"]),
    ('packages.exists(p, p.type == "deb" && p.name == "libc6" &&\n'
     '  compareVersions("deb", p.version, "2.36-9+deb12u7") < 0)',
     DEFAULT_DATA / "debian-app.json", True),
    ('packages.exists(p, p.type == "npm" && p.name == "lodash" &&\n'
     '  isVersion(p.type, p.version) &&\n'
     '  compareVersions(p.type, p.version, "4.17.21") < 0)',
     NPM_PACKAGES, True),
    ('"com.acme.team" in config.labels &&\n'
     '  config.labels["com.acme.team"] == "payments"',
     DEFAULT_DATA / "debian-app.json", False),
]

# Expressions the page shows failing, with the message pullgate prints.
DOC_ERRORS = [
    ("1 + 1.0", None,
     "--expr:1:3: no matching overload for '_+_' with (int, double); CEL "
     "does not convert between int, uint and double, so convert one side "
     "with int(), uint() or double()"),
    ('config.labels["com.acme.team"] == "payments"',
     DEFAULT_DATA / "debian-app.json",
     "--expr:1:14: no such key: 'com.acme.team'"),
    ('compareVersions("maven", "1.0", "2.0")', None,
     "--expr:1:17: unknown version scheme 'maven'; use one of deb, apk, "
     "rpm, semver, pep440, npm, golang or pypi"),
    ('compareVersions("deb", "x y", "1")', None,
     "--expr:1:1: 'x y' is not a valid deb version: it contains white space"),
]


def input_file(tmp_path, value) -> Path | None:
    if value is None or isinstance(value, Path):
        return value
    path = tmp_path / "input.json"
    path.write_text(json.dumps(value))
    return path


@pytest.mark.parametrize("expr,document,expected", DOC_VALUES)
def test_doc_expression_value(pullgate_bin, tmp_path, expr, document, expected):
    value = evaluate(pullgate_bin, expr, input_file(tmp_path, document))

    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("expr,document,message", DOC_ERRORS)
def test_doc_expression_error(pullgate_bin, tmp_path, expr, document, message):
    args = ["policy", "eval", "--expr", expr]
    path = input_file(tmp_path, document)
    if path is not None:
        args += ["--input", str(path)]

    result = run(pullgate_bin, *args)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"pullgate: policy eval: {message}\n"


def normalize(text: str) -> str:
    return " ".join(text.split())


def collect_conditions(node, found: list) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("when", "message_expression"):
                found.append(normalize(value))
            else:
                collect_conditions(value, found)
    elif isinstance(node, list):
        for item in node:
            collect_conditions(item, found)


def doc_conditions() -> list[str]:
    """Return the when and message_expression texts of the YAML blocks
    in docs/policy.md, which are whole files or indented fragments."""
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S):
        collect_conditions(yaml.safe_load(textwrap.dedent(block)), found)
    return found


def shipped_conditions() -> set[str]:
    files = [POLICY_DIR / "default.yaml"]
    files += sorted(EXAMPLES_DIR.glob("*/policy.yaml"))
    texts = set()
    for path in files:
        for rule in yaml.safe_load(path.read_text())["rules"]:
            for key in ("when", "message_expression"):
                if key in rule:
                    texts.add(normalize(rule[key]))
    return texts


def test_doc_conditions_are_tested():
    """Every condition in a YAML block of the page is in a shipped,
    tested policy or among the expressions checked above."""
    checked = [expr for expr, _, _ in DOC_VALUES + DOC_ERRORS]
    tested = shipped_conditions() | {normalize(expr) for expr in checked}
    conditions = doc_conditions()

    assert len(conditions) >= 8
    for condition in conditions:
        assert condition in tested, condition
