"""`pullgate policy eval`, `lint` and `test` on policies, documents and
test files written here.

Expected values come from the inputs: JSON values are printed by Python's
json module with the same layout, positions are counted in the files this
test writes, and verdicts follow from the rules and dates below."""

import json
import os
import stat
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pgtest import images, layout

EVAL_USAGE = "Usage: pullgate policy eval --expr EXPR [--input FILE|-]\n"
TEST_USAGE = "Usage: pullgate policy test PATH [--junit FILE]\n"

# Four rules: a warning about root, a denial of images with secrets, a
# source rule that blocks one registry, and an exception for the root
# warning of one vendor's images through 2099-03-31.
POLICY = """\
version: 2
rules:
  - name: root-user
    when: 'config.user in ["", "root", "0"]'
    action: warn
    message: image runs as root; set USER to a non-root user
  - name: no-secrets
    when: 'secrets.size() > 0'
    action: deny
    message: image contains a credential; remove it and rotate it
  - name: blocked-registry
    when: 'image.registry == "blocked.example"'
    action: deny
    message: blocked.example is not an approved registry
exceptions:
  - images: ["registry.example/vendor/*:*"]
    rules: [root-user]
    reason: vendor image, ticket SEC-42
    expires: 2099-03-31
"""

SECRET_DOCUMENT = {
    "document_version": 2,
    "inspector_version": "3",
    "kind": "image",
    "source": {"registry": "", "repository": "", "reference": ""},
    "manifest": {"digest": "sha256:" + "ab" * 32, "annotations": {}},
    "inspection": {"status": "ok", "notes": []},
    "config": {"user": "app"},
    "files": [],
    "packages": [],
    "secrets": [
        {
            "rule": "aws-access-key-id",
            "source": "layer",
            "path": "app/settings.env",
            "line": 1,
            "layer": 0,
            "present": True,
        }
    ],
}

AWS_KEY_LINE = b"AWS_ACCESS_KEY_ID=AKIA" + b"QW3RTY7UIO5PASDF" + b"\n"


def run(pullgate_bin, *args, stdin=None):
    return subprocess.run(
        [str(pullgate_bin), "policy", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def pretty(value) -> str:
    """Return value as pullgate prints it: two-space indent, newline."""
    return json.dumps(value, indent=2) + "\n"


# ---- eval ----


@pytest.mark.parametrize(
    "expr, value",
    [
        ("1 + 2", 3),
        ("-7 / 2", -3),
        ('"pull" + "gate"', "pullgate"),
        ("[1, 'two', true, null]", [1, "two", True, None]),
        ('{"a": 1, "b": [2, 3]}', {"a": 1, "b": [2, 3]}),
        ("[3, 1, 2].filter(x, x > 1)", [3, 2]),
        ('"docker.io/library/nginx".matchesGlob("docker.io/**")', True),
    ],
)
def test_eval_values(pullgate_bin, expr, value):
    result = run(pullgate_bin, "eval", "--expr", expr)

    assert result.stderr == ""
    assert result.stdout == pretty(value)
    assert result.returncode == 0


def test_eval_input_members(pullgate_bin, tmp_path):
    document = {
        "config": {"user": "root"},
        "packages": [
            {"name": "openssl", "version": "3.0.11-1"},
            {"name": "zlib", "version": "1.2.13"},
        ],
    }
    path = tmp_path / "document.json"
    path.write_text(json.dumps(document))

    names = run(
        pullgate_bin, "eval", "--input", str(path),
        "--expr", "packages.map(p, p.name)",
    )
    user = run(pullgate_bin, "eval", "--expr", "config.user", "--input", str(path))

    assert names.stdout == pretty(["openssl", "zlib"])
    assert names.returncode == 0
    assert user.stdout == pretty("root")
    assert user.returncode == 0


def test_eval_input_from_stdin(pullgate_bin):
    result = run(
        pullgate_bin, "eval", "--input", "-", "--expr", "size(files)",
        stdin='{"files": [{"path": "a"}, {"path": "b"}]}',
    )

    assert result.stdout == "2\n"
    assert result.returncode == 0


def test_eval_runtime_error(pullgate_bin):
    result = run(pullgate_bin, "eval", "--expr", "10 / (2 - 2)")

    assert result.stdout == ""
    assert result.stderr == "pullgate: policy eval: --expr:1:4: division by zero\n"
    assert result.returncode == 1


def test_eval_missing_key(pullgate_bin, tmp_path):
    path = tmp_path / "document.json"
    path.write_text('{"config": {"user": "root"}}')

    result = run(pullgate_bin, "eval", "--input", str(path), "--expr", "config.cmd")

    assert result.stdout == ""
    assert result.stderr == "pullgate: policy eval: --expr:1:8: no such key: 'cmd'\n"
    assert result.returncode == 1


def test_eval_syntax_error(pullgate_bin):
    result = run(pullgate_bin, "eval", "--expr", "1 +")

    assert result.stdout == ""
    assert result.stderr.startswith("pullgate: policy eval: --expr:1:4: ")
    assert result.stderr.count("\n") == 1
    assert result.returncode == 1


def test_eval_unknown_function(pullgate_bin):
    result = run(pullgate_bin, "eval", "--expr", "nosuchfunction(1)")

    assert result.stdout == ""
    assert result.stderr.startswith("pullgate: policy eval: --expr:1:1: ")
    assert "nosuchfunction" in result.stderr
    assert result.returncode == 1


def test_eval_input_not_object(pullgate_bin, tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]\n")

    result = run(pullgate_bin, "eval", "--input", str(path), "--expr", "1")

    assert result.stdout == ""
    assert result.stderr == (
        f"pullgate: policy eval: {path}: the JSON value is an array, not an "
        "object; give an object such as an image document\n"
    )
    assert result.returncode == 2


def test_eval_input_invalid_json(pullgate_bin, tmp_path):
    path = tmp_path / "broken.json"
    # Line 3 is the first with an error: a value is missing after "b":.
    path.write_text('{\n  "a": 1,\n  "b": }\n')

    result = run(pullgate_bin, "eval", "--input", str(path), "--expr", "a")

    assert result.stdout == ""
    assert result.stderr.startswith(f"pullgate: policy eval: {path}:3:")
    assert ": invalid JSON: " in result.stderr
    assert result.returncode == 2


def test_eval_input_over_maximum(pullgate_bin, tmp_path):
    maximum = 256 * 1024 * 1024
    path = tmp_path / "big.json"
    with open(path, "wb") as out:
        out.truncate(maximum + 1)

    result = run(pullgate_bin, "eval", "--input", str(path), "--expr", "1")

    assert result.stderr == (
        f"pullgate: policy eval: {path}: larger than the {maximum} bytes "
        "pullgate reads\n"
    )
    assert result.returncode == 2


def test_eval_missing_input_file(pullgate_bin, tmp_path):
    path = tmp_path / "absent.json"

    result = run(pullgate_bin, "eval", "--input", str(path), "--expr", "1")

    assert result.stderr == (
        f"pullgate: policy eval: {path}: cannot open: No such file or directory\n"
    )
    assert result.returncode == 2


def test_eval_usage_errors(pullgate_bin):
    missing = run(pullgate_bin, "eval")
    unknown = run(pullgate_bin, "eval", "--expr", "1", "--bogus")
    extra = run(pullgate_bin, "eval", "--expr", "1", "2")
    no_value = run(pullgate_bin, "eval", "--expr")
    help_text = run(pullgate_bin, "eval", "--help")

    assert missing.stderr.startswith(
        "pullgate policy eval: missing --expr; give the expression to "
        "evaluate\n\n" + EVAL_USAGE
    )
    assert missing.returncode == 2
    assert unknown.stderr.startswith(
        "pullgate policy eval: unknown option --bogus\n\n" + EVAL_USAGE
    )
    assert unknown.returncode == 2
    assert extra.stderr.startswith('pullgate policy eval: unexpected argument "2"')
    assert extra.returncode == 2
    assert no_value.stderr.startswith(
        "pullgate policy eval: option --expr needs a value\n"
    )
    assert no_value.returncode == 2
    assert help_text.stdout.startswith(EVAL_USAGE)
    assert help_text.returncode == 0


def test_policy_unknown_subcommand(pullgate_bin):
    result = run(pullgate_bin, "check")

    assert result.stderr.startswith(
        'pullgate policy: unknown subcommand "check"; expected eval, lint or '
        "test\n"
    )
    assert result.returncode == 2


# ---- lint ----


def test_lint_clean_policy(pullgate_bin, tmp_path):
    policy = write(tmp_path / "policy.yaml", POLICY)

    result = run(pullgate_bin, "lint", str(policy))

    # The exception expires on 2099-03-31, after today.
    assert result.stdout == "0 errors, 0 warnings\n"
    assert result.returncode == 0


def test_lint_now_shows_exceptions_about_to_expire(pullgate_bin, tmp_path):
    policy = write(tmp_path / "policy.yaml", POLICY)

    last_day = run(pullgate_bin, "lint", "--now", "2099-03-31T23:59:59Z",
                   str(policy))
    after = run(pullgate_bin, "lint", "--now", "2099-04-01", str(policy))
    invalid = run(pullgate_bin, "lint", "--now", "2099-02-30", str(policy))

    assert last_day.stdout == "0 errors, 0 warnings\n"
    assert after.returncode == 0
    assert after.stdout.splitlines()[-1] == "0 errors, 1 warning"
    assert after.stdout.splitlines()[0].endswith(
        ": warning: exception 1 expired on 2099-03-31 and no longer applies; "
        "remove it or extend it"
    )
    assert invalid.returncode == 2
    assert "invalid --now; write a date such as 2027-03-31" in invalid.stderr


def test_lint_several_problems(pullgate_bin, tmp_path):
    policy = write(
        tmp_path / "policy.yaml",
        """\
        version: 2
        rules:
          - name: Root_User
            when: 'config.user == "root"'
            action: warn
            message: runs as root
          - name: no-action
            when: 'secrets.size() > 0'
            message: has secrets
          - name: bad-action
            when: 'true'
            action: block
            message: always
        exceptions:
          - images: ["docker.io/library/nginx:*"]
            rules: [no-action]
            reason: old ticket
            expires: 2020-01-01
        """,
    )

    result = run(pullgate_bin, "lint", str(policy))
    lines = result.stdout.splitlines()

    # Problems come in file order. The invalid name is at line 3, where
    # its value starts at column 11. The rule without action is its
    # mapping at 7:5, the unknown action at 12:13, and the expired
    # exception's date at 18:14 is a warning.
    assert [line.split(": ")[0] + ": " + line.split(": ")[1] for line in lines[:-1]] == [
        f"{policy}:3:11: error",
        f"{policy}:7:5: error",
        f"{policy}:12:13: error",
        f"{policy}:18:14: warning",
    ]
    assert "Root_User" in lines[0]
    assert '"action"' in lines[1] or "action" in lines[1]
    assert "block" in lines[2]
    assert "2020-01-01" in lines[3]
    assert lines[-1] == "3 errors, 1 warning"
    assert result.returncode == 1


def test_lint_warning_only(pullgate_bin, tmp_path):
    policy = write(
        tmp_path / "policy.yaml",
        """\
        version: 2
        rules:
          - name: root-user
            when: 'config.user == "root"'
            action: warn
            message: runs as root
        exceptions:
          - images: ["docker.io/**"]
            rules: ["*"]
            reason: migration
            expires: 2021-06-30
        """,
    )

    result = run(pullgate_bin, "lint", str(policy))
    lines = result.stdout.splitlines()

    assert len(lines) == 2
    assert lines[0].startswith(f"{policy}:11:14: warning: ")
    assert lines[1] == "0 errors, 1 warning"
    assert result.returncode == 0


def test_lint_usage_error(pullgate_bin):
    result = run(pullgate_bin, "lint")

    assert result.stderr.startswith(
        "pullgate policy lint: expected one policy file or directory\n\n"
        "Usage: pullgate policy lint [--now TIME] PATH\n"
    )
    assert result.returncode == 2


# ---- test ----


PASSING_TESTS = """\
tests:
  - name: root image warns
    inline: {config: {user: root}}
    expect:
      decision: allow
      denied: []
      warnings: [root-user]
  - name: non-root image passes
    inline: {config: {user: "1000:1000"}}
    expect:
      decision: allow
      warnings: []
      excepted: []
  - name: secret denied
    document: inputs/secret.json
    expect:
      decision: deny
      denied: [no-secrets]
      warnings: []
  - name: blocked registry
    image: blocked.example/team/app:1
    inline: {config: {user: "1000"}}
    expect:
      decision: deny
      denied: [blocked-registry]
  - name: vendor excepted on last day
    image: registry.example/vendor/app:2
    inline: {config: {user: root}}
    now: 2099-03-31
    expect:
      decision: allow
      warnings: []
      excepted: [root-user]
  - name: vendor excepted at last second
    image: registry.example/vendor/app:2
    now: 2099-03-31T23:59:59Z
    expect:
      decision: allow
      excepted: [root-user]
  - name: vendor offset time still excepted
    image: registry.example/vendor/app:2
    now: 2099-04-01T01:30:00+02:00
    expect:
      decision: allow
      excepted: [root-user]
  - name: vendor exception expired
    image: registry.example/vendor/app:2
    now: 2099-04-01
    expect:
      decision: allow
      warnings: [root-user]
      excepted: []
"""

PASSING_NAMES = [
    "root image warns",
    "non-root image passes",
    "secret denied",
    "blocked registry",
    "vendor excepted on last day",
    "vendor excepted at last second",
    "vendor offset time still excepted",
    "vendor exception expired",
]


@pytest.fixture
def policy_file(tmp_path) -> Path:
    policy = write(tmp_path / "policy.yaml", POLICY)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "secret.json").write_text(json.dumps(SECRET_DOCUMENT))
    return policy


def test_test_passing(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yaml", PASSING_TESTS)

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stdout.splitlines() == [
        *[f"ok {name}" for name in PASSING_NAMES],
        "8 passed, 0 failed",
    ]
    assert result.stderr == ""
    assert result.returncode == 0


FAILING_TESTS = """\
tests:
  - name: root image warns
    inline: {config: {user: root}}
    expect:
      decision: allow
      warnings: [root-user]
  - name: root image denied
    inline: {config: {user: root}}
    expect:
      decision: deny
      denied: [root-user]
      warnings: []
  - name: secret and root
    image: registry.example/vendor/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    inline:
      config: {user: ""}
      secrets: [{rule: aws-access-key-id, path: a, line: 1}]
    now: 2026-01-01
    expect:
      decision: deny
      denied: [no-secrets, root-user]
      excepted: []
"""


def test_test_failing(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yml", FAILING_TESTS)
    junit = tmp_path / "reports" / "junit.xml"
    junit.parent.mkdir()

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(junit))

    # The third image is requested by digest. The exception's glob still
    # matches its digest form, because "*" matches "app@sha256" and ":*"
    # the hex digits, so root-user is excepted there.
    assert result.stdout.splitlines() == [
        "ok root image warns",
        "FAIL root image denied: expected decision deny, got allow; "
        "expected denied [root-user], got []; "
        "expected warnings [], got [root-user]",
        "FAIL secret and root: expected denied [no-secrets, root-user], "
        "got [no-secrets]; expected excepted [], got [root-user]",
        "1 passed, 2 failed",
    ]
    assert result.returncode == 1

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "3"
    assert root.get("failures") == "2"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert suites[0].get("name") == str(tmp_path / "policy.test.yml")
    assert suites[0].get("tests") == "3"
    assert suites[0].get("failures") == "2"
    cases = suites[0].findall("testcase")
    assert [case.get("name") for case in cases] == [
        "root image warns",
        "root image denied",
        "secret and root",
    ]
    assert {case.get("classname") for case in cases} == {
        str(tmp_path / "policy.test.yml")
    }
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == (
        "expected decision deny, got allow; expected denied [root-user], "
        "got []; expected warnings [], got [root-user]"
    )
    assert cases[2].find("failure").text == (
        "expected denied [no-secrets, root-user], got [no-secrets]; "
        "expected excepted [], got [root-user]"
    )
    assert [path.name for path in junit.parent.iterdir()] == ["junit.xml"]


def test_test_junit_escapes_names(pullgate_bin, policy_file, tmp_path):
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: 'quotes " & <tags> and ''apostrophes'''
            inline: {config: {user: root}}
            expect: {decision: deny}
        """,
    )
    junit = tmp_path / "junit.xml"

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(junit))

    name = "quotes \" & <tags> and 'apostrophes'"
    assert result.stdout.splitlines()[0] == (
        f"FAIL {name}: expected decision deny, got allow"
    )
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case.get("name") == name
    assert case.find("failure").get("message") == "expected decision deny, got allow"
    assert result.returncode == 1


def test_test_inline_defaults(pullgate_bin, tmp_path):
    # The first rule fires only when every member it reads has its empty
    # value, so it shows that an inline mapping keeps the members it does
    # not name. The second is a source rule whose warning joins the
    # content verdict.
    policy = write(
        tmp_path / "policy.yaml",
        """\
        version: 2
        rules:
          - name: empty-image
            when: >-
              kind == "image" && inspection.status == "ok" &&
              files.size() == 0 && packages.size() == 0 &&
              secrets.size() == 0 && config.env.size() == 0 &&
              config.labels.size() == 0 && summary.files == 0 &&
              os == null && base_image == null && document_version == 2
            action: warn
            message: the image is empty
          - name: old-registry
            when: 'image.registry == "old.example"'
            action: warn
            message: old.example is being retired
        """,
    )
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: inline keeps defaults
            image: old.example/app:1
            inline: {config: {user: root, labels: {}}}
            expect:
              decision: allow
              warnings: [empty-image, old-registry]
          - name: inline replaces lists
            inline: {files: [{path: a, type: file, present: true}]}
            expect:
              decision: allow
              warnings: []
        """,
    )

    result = run(pullgate_bin, "test", str(policy))

    assert result.stdout.splitlines() == [
        "ok inline keeps defaults",
        "ok inline replaces lists",
        "2 passed, 0 failed",
    ]
    assert result.returncode == 0


def test_test_junit_unwritable(pullgate_bin, policy_file, tmp_path):
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: root image warns
            inline: {config: {user: root}}
            expect: {decision: allow}
        """,
    )
    junit = tmp_path / "absent" / "junit.xml"

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(junit))

    assert result.stdout.splitlines() == ["ok root image warns", "1 passed, 0 failed"]
    assert result.stderr.startswith(
        f"pullgate: policy test: cannot create {junit}."
    )
    assert result.stderr.endswith(": No such file or directory\n")
    assert result.returncode == 2


def test_test_layout(pullgate_bin, policy_file, tmp_path):
    root_image = images.image([{"app/run": b"#!/bin/sh\n"}], user="root")
    secret_image = images.image(
        [{"app/run": b"#!/bin/sh\n", "app/settings.env": AWS_KEY_LINE}],
        user="1000:1000",
    )
    layout.write_layout(tmp_path / "layouts" / "root", root_image, tag="v1")
    layout.write_layout(tmp_path / "layouts" / "secret", secret_image)
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: root layout warns
            layout: layouts/root
            layout_reference: v1
            expect:
              decision: allow
              warnings: [root-user]
          - name: secret layout denied
            layout: layouts/secret
            expect:
              decision: deny
              denied: [no-secrets]
              warnings: []
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stdout.splitlines() == [
        "ok root layout warns",
        "ok secret layout denied",
        "2 passed, 0 failed",
    ]
    assert result.returncode == 0


def test_test_tampered_layout(pullgate_bin, policy_file, tmp_path):
    image = images.image([{"app/run": b"#!/bin/sh\n"}])
    root = layout.write_layout(tmp_path / "layouts" / "app", image)
    blob = layout.blob_file(root, image.layers[0].digest)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: tampered layout
            layout: layouts/app
            expect: {decision: allow}
        """,
    )
    junit = tmp_path / "junit.xml"

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(junit))

    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"FAIL tampered layout: cannot inspect the layout {tmp_path}/layouts/app: "
    )
    assert image.layers[0].digest in lines[0]
    assert lines[1] == "0 passed, 1 failed"
    assert result.returncode == 2
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("errors") == "1"
    assert suite.find("testcase/error") is not None


def test_test_directory(pullgate_bin, tmp_path):
    policies = tmp_path / "policies"
    write(policies / "rules.yaml", POLICY)
    write(
        policies / "b.test.yaml",
        """\
        tests:
          - name: root warns
            inline: {config: {user: "0"}}
            expect: {decision: allow, warnings: [root-user]}
        """,
    )
    write(
        policies / "a.test.yml",
        """\
        tests:
          - name: blocked
            image: blocked.example/x/y:z
            expect: {decision: deny, denied: [blocked-registry]}
        """,
    )
    write(policies / "notes.yaml.bak", "not a test file\n")

    result = run(pullgate_bin, "test", str(policies))

    assert result.stdout.splitlines() == [
        f"ok {policies}/a.test.yml: blocked",
        f"ok {policies}/b.test.yaml: root warns",
        "2 passed, 0 failed",
    ]
    assert result.returncode == 0


def test_test_unknown_keys(pullgate_bin, policy_file, tmp_path):
    tests = write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: typo
            inline: {config: {user: root}}
            expected: {decision: allow}
          - name: typo
            expect: {decision: maybe, warning: [root-user]}
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    allowed = (
        "name, image, document, layout, layout_reference, platform, inline, "
        "now, expect"
    )
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"pullgate: policy test: {tests}:4:5: unknown key \"expected\" in "
        f"test \"typo\"; allowed keys: {allowed}",
        f"pullgate: policy test: {tests}:2:5: test \"typo\" needs \"expect\", "
        "a mapping with at least \"decision: allow\" or \"decision: deny\"",
        f"pullgate: policy test: {tests}:5:11: test \"typo\" is already "
        "defined at line 2; give each test a name unique in its file",
        f"pullgate: policy test: {tests}:6:31: unknown key \"warning\" in "
        "\"expect\" of test \"typo\"; allowed keys: decision, denied, "
        "warnings, excepted",
        f"pullgate: policy test: {tests}:6:24: \"expect\" of test \"typo\" "
        "needs \"decision\": allow or deny",
    ]
    assert result.returncode == 2


def test_test_invalid_values(pullgate_bin, policy_file, tmp_path):
    tests = write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: bad values
            image: Docker.io
            now: 2027-02-29
            document: a.json
            inline: {}
            expect: {decision: allow, denied: [x, x]}
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stderr.splitlines() == [
        f"pullgate: policy test: {tests}:3:12: invalid \"image\" \"Docker.io\" "
        "of test \"bad values\": expected REGISTRY/REPOSITORY[:TAG|@DIGEST], "
        "such as docker.io/library/nginx:1.27",
        f"pullgate: policy test: {tests}:6:13: test \"bad values\" has both "
        "\"document\" and \"inline\"; give one of document, layout or inline",
        f"pullgate: policy test: {tests}:4:10: invalid \"now\" \"2027-02-29\" "
        "of test \"bad values\": the day does not exist in that month",
        f"pullgate: policy test: {tests}:7:43: rule \"x\" is listed twice in "
        "\"denied\" of \"expect\" of test \"bad values\"",
    ]
    assert result.returncode == 2


def test_test_yaml_syntax_error(pullgate_bin, policy_file, tmp_path):
    tests = write(tmp_path / "policy.test.yaml", "tests:\n  - name: [unclosed\n")

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stderr.startswith(f"pullgate: policy test: {tests}:")
    assert result.stdout == ""
    assert result.returncode == 2


def test_test_missing_document(pullgate_bin, policy_file, tmp_path):
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: absent document
            document: inputs/absent.json
            expect: {decision: allow}
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stdout.splitlines() == [
        f"FAIL absent document: {tmp_path}/inputs/absent.json: cannot open: "
        "No such file or directory",
        "0 passed, 1 failed",
    ]
    assert result.returncode == 2


def test_test_no_test_files(pullgate_bin, policy_file):
    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stdout == ""
    assert result.stderr == (
        f"pullgate: policy test: no test files found for {policy_file}; "
        "write policy.test.yaml beside it\n"
    )
    assert result.returncode == 2


def test_test_invalid_policy(pullgate_bin, tmp_path):
    policy = write(
        tmp_path / "policy.yaml",
        "version: 2\nrules:\n  - name: x\n    when: 'true'\n",
    )
    write(tmp_path / "policy.test.yaml", PASSING_TESTS)

    result = run(pullgate_bin, "test", str(policy))

    assert result.stdout == ""
    assert result.stderr.startswith(f"pullgate: policy test: {policy}:3:")
    assert result.returncode == 2


def test_test_usage_errors(pullgate_bin, policy_file):
    missing = run(pullgate_bin, "test")
    no_junit = run(pullgate_bin, "test", str(policy_file), "--junit")
    help_text = run(pullgate_bin, "test", "--help")

    assert missing.stderr.startswith(
        "pullgate policy test: expected one policy file or directory\n\n"
        + TEST_USAGE
    )
    assert missing.returncode == 2
    assert no_junit.stderr.startswith(
        "pullgate policy test: option --junit needs a value\n\n" + TEST_USAGE
    )
    assert no_junit.returncode == 2
    assert help_text.stdout.startswith(TEST_USAGE)
    assert help_text.returncode == 0


def test_test_no_test_files_in_directory(pullgate_bin, tmp_path):
    policies = tmp_path / "policies"
    write(policies / "rules.yaml", POLICY)

    result = run(pullgate_bin, "test", str(policies))

    # A build with UndefinedBehaviorSanitizer stops at an empty name list
    # handed to qsort, before this message.
    assert result.stdout == ""
    assert result.stderr == (
        f"pullgate: policy test: no test files found for {policies}; write "
        "a NAME.test.yaml file in it\n"
    )
    assert result.returncode == 2


# ---- test: where the JUnit report goes ----


ONE_TEST = """\
tests:
  - name: root image warns
    inline: {config: {user: root}}
    expect: {decision: allow, warnings: [root-user]}
"""

ONE_TEST_OUTPUT = "ok root image warns\n1 passed, 0 failed\n"


def assert_one_test_report(data: bytes):
    root = ET.fromstring(data)
    assert root.tag == "testsuites"
    assert root.get("tests") == "1"
    assert root.get("failures") == "0"
    assert [case.get("name") for case in root.iter("testcase")] == [
        "root image warns"
    ]


def test_test_junit_follows_symlinks(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yaml", ONE_TEST)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "junit.xml").write_text("old report\n")
    link = tmp_path / "junit.xml"
    link.symlink_to("reports/junit.xml")
    # A chain whose second link is relative to its own folder, and a link
    # to a file that does not exist yet.
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "second.xml").symlink_to("../reports/chained.xml")
    chain = tmp_path / "chain.xml"
    chain.symlink_to(tmp_path / "links" / "second.xml")

    existing = run(pullgate_bin, "test", str(policy_file), "--junit", str(link))
    chained = run(pullgate_bin, "test", str(policy_file), "--junit", str(chain))

    assert existing.stderr == ""
    assert existing.returncode == 0
    assert chained.stderr == ""
    assert chained.returncode == 0
    assert os.readlink(link) == "reports/junit.xml"
    assert os.readlink(chain) == str(tmp_path / "links" / "second.xml")
    assert os.readlink(tmp_path / "links" / "second.xml") == "../reports/chained.xml"
    assert_one_test_report((reports / "junit.xml").read_bytes())
    assert_one_test_report((reports / "chained.xml").read_bytes())
    assert sorted(path.name for path in reports.iterdir()) == [
        "chained.xml",
        "junit.xml",
    ]


def test_test_junit_keeps_file_mode(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yaml", ONE_TEST)
    junit = tmp_path / "junit.xml"
    junit.write_text("old report\n")
    junit.chmod(0o600)

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(junit))

    assert result.returncode == 0
    assert stat.S_IMODE(junit.stat().st_mode) == 0o600
    assert_one_test_report(junit.read_bytes())


def test_test_junit_into_fifo(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yaml", ONE_TEST)
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        result = run(pullgate_bin, "test", str(policy_file), "--junit", str(fifo))
        report, _ = reader.communicate(timeout=10)
    finally:
        reader.kill()
        reader.wait()

    assert result.stdout == ONE_TEST_OUTPUT
    assert result.returncode == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert_one_test_report(report)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "inputs", "junit.fifo", "policy.test.yaml", "policy.yaml"
    ]


def test_test_junit_into_inherited_descriptor(pullgate_bin, policy_file, tmp_path):
    # This is what bash passes for --junit >(cat).
    write(tmp_path / "policy.test.yaml", ONE_TEST)
    read_end, write_end = os.pipe()
    try:
        result = subprocess.run(
            [str(pullgate_bin), "policy", "test", str(policy_file),
             "--junit", f"/dev/fd/{write_end}"],
            capture_output=True, text=True, pass_fds=(write_end,), timeout=120,
        )
        os.close(write_end)
        write_end = -1
        with os.fdopen(read_end, "rb") as pipe:
            read_end = -1
            report = pipe.read()
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)

    assert result.stderr == ""
    assert result.stdout == ONE_TEST_OUTPUT
    assert result.returncode == 0
    assert_one_test_report(report)


def test_test_junit_to_redirected_stdout(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yaml", ONE_TEST)
    out = tmp_path / "out.txt"
    # A link of its own, made as /dev/stdout is, so that a regression
    # replaces this link and not the machine's.
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")

    with open(out, "wb") as stdout:
        result = subprocess.run(
            [str(pullgate_bin), "policy", "test", str(policy_file),
             "--junit", str(link)],
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120,
        )

    # The report follows the printed lines in the same file.
    data = out.read_bytes()
    assert result.stderr == ""
    assert result.returncode == 0
    assert os.readlink(link) == "/proc/self/fd/1"
    assert data.startswith(ONE_TEST_OUTPUT.encode())
    assert_one_test_report(data[len(ONE_TEST_OUTPUT):])


def test_test_junit_write_error(pullgate_bin, policy_file, tmp_path):
    write(tmp_path / "policy.test.yaml", ONE_TEST)
    # A device node of its own, the same device as /dev/full, so that a
    # regression replaces this node and not the machine's (tests run as
    # root).
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    before = sorted(os.listdir(tmp_path))

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(full))

    node = os.lstat(full)
    assert stat.S_ISCHR(node.st_mode)
    assert (os.major(node.st_rdev), os.minor(node.st_rdev)) == (1, 7)
    # No temporary file was left beside it.
    assert sorted(os.listdir(tmp_path)) == before
    assert result.stdout == ONE_TEST_OUTPUT
    assert result.stderr == (
        f"pullgate: policy test: cannot write {full}: No space left on "
        "device\n"
    )
    assert result.returncode == 2


# ---- test: the JUnit report's characters ----


def test_test_junit_replaces_invalid_characters(pullgate_bin, tmp_path):
    # A test name with the noncharacters U+FFFE and U+FFFF, and an error
    # message with U+0001: XML 1.0 allows none of them, so the report has
    # U+FFFD in their place.
    policies = tmp_path / "policies"
    write(policies / "rules.yaml", POLICY)
    write(
        policies / "a.test.yaml",
        """\
        tests:
          - name: "noncharacters \\uFFFE and \\uFFFF"
            document: "inputs/\\x01.json"
            expect: {decision: allow}
        """,
    )
    junit = tmp_path / "junit.xml"

    # The printed lines keep the bytes as they are.
    result = subprocess.run(
        [str(pullgate_bin), "policy", "test", str(policies), "--junit",
         str(junit)],
        capture_output=True, timeout=120,
    )

    suite = ET.parse(junit).getroot().find("testsuite")
    case = suite.find("testcase")
    error = case.find("error")
    message = (
        f"{policies}/inputs/\ufffd.json: cannot open: No such file or "
        "directory"
    )
    assert suite.get("name") == f"{policies}/a.test.yaml"
    assert case.get("name") == "noncharacters \ufffd and \ufffd"
    assert case.get("classname") == f"{policies}/a.test.yaml"
    assert error.get("message") == message
    assert error.text == message
    assert result.stdout.splitlines()[0] == (
        b"FAIL noncharacters \xef\xbf\xbe and \xef\xbf\xbf: "
        + os.fsencode(policies) + b"/inputs/\x01.json: cannot open: No such "
        b"file or directory"
    )
    assert result.returncode == 2


# ---- test: image references ----


def test_test_image_read_as_proxy_reads_it(pullgate_bin, tmp_path):
    policy = write(
        tmp_path / "policy.yaml",
        """\
        version: 2
        rules:
          - name: hub-alpine
            when: >-
              image.registry == "docker.io" &&
              image.repository == "library/alpine"
            action: warn
            message: pulled from Docker Hub
          - name: ghcr-app
            when: 'image.registry == "ghcr.io" && image.repository == "acme/app"'
            action: warn
            message: pulled from ghcr.io
          - name: tag-three
            when: 'has(image.tag) && image.tag == "3"'
            action: warn
            message: tag 3
        """,
    )
    digest = "sha256:" + "0123456789abcdef" * 4
    write(
        tmp_path / "policy.test.yaml",
        f"""\
        tests:
          - name: one component gets library
            image: docker.io/alpine:3
            expect: {{decision: allow, warnings: [hub-alpine, tag-three]}}
          - name: index alias by digest
            image: index.docker.io/alpine@{digest}
            expect: {{decision: allow, warnings: [hub-alpine]}}
          - name: upper-case alias
            image: Registry-1.Docker.IO/library/alpine
            expect: {{decision: allow, warnings: [hub-alpine]}}
          - name: upper-case registry
            image: GHCR.io/acme/app:3@{digest}
            expect: {{decision: allow, warnings: [ghcr-app, tag-three]}}
          - name: other registry adds nothing
            image: ghcr.io/alpine:3
            expect: {{decision: allow, warnings: [tag-three]}}
        """,
    )

    result = run(pullgate_bin, "test", str(policy))

    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "ok one component gets library",
        "ok index alias by digest",
        "ok upper-case alias",
        "ok upper-case registry",
        "ok other registry adds nothing",
        "5 passed, 0 failed",
    ]
    assert result.returncode == 0


def test_test_invalid_images(pullgate_bin, policy_file, tmp_path):
    tests = write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: upper-case repository
            image: docker.io/Library/Alpine:3
            expect: {decision: allow}
          - name: invalid tag
            image: ghcr.io/acme/app:-1
            expect: {decision: allow}
          - name: invalid digest
            image: ghcr.io/acme/app@sha256:abc
            expect: {decision: allow}
          - name: no registry
            image: acme/app:1
            expect: {decision: allow}
          - name: empty component
            image: ghcr.io/acme//app
            expect: {decision: allow}
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    # The reasons are the ones the proxy gives a client for the same name,
    # tag or digest.
    name_rule = (
        "components are lowercase letters and digits separated by '.', "
        "'_', '__' or '-', joined by '/', at most 255 characters"
    )
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f'pullgate: policy test: {tests}:3:12: invalid "image" '
        '"docker.io/Library/Alpine:3" of test "upper-case repository": '
        f'invalid repository name "Library/Alpine": {name_rule}',
        f'pullgate: policy test: {tests}:6:12: invalid "image" '
        '"ghcr.io/acme/app:-1" of test "invalid tag": invalid tag "-1": a '
        "tag is 1 to 128 characters of letters, digits, '_', '.' and '-', "
        "not starting with '.' or '-'",
        f'pullgate: policy test: {tests}:9:12: invalid "image" '
        '"ghcr.io/acme/app@sha256:abc" of test "invalid digest": invalid '
        'digest "sha256:abc": expected sha256: followed by 64 lowercase hex '
        "digits, or sha512: followed by 128",
        f'pullgate: policy test: {tests}:12:12: invalid "image" "acme/app:1" '
        'of test "no registry": "acme" is not a registry host name; write '
        "the registry first, such as docker.io/acme/app:1",
        f'pullgate: policy test: {tests}:15:12: invalid "image" '
        '"ghcr.io/acme//app" of test "empty component": invalid path '
        '"/v2/ghcr.io/acme//app/manifests/latest": it contains an empty '
        'segment ("//")',
    ]
    assert result.returncode == 2


# ---- test: platforms of a layout ----


def test_test_layout_platform(pullgate_bin, policy_file, tmp_path):
    amd64 = images.image([{"app/run": b"#!/bin/sh\n"}], user="root")
    arm64 = images.image(
        [{"app/run": b"#!/bin/sh\n"}], user="1000", architecture="arm64",
        variant="v8",
    )
    multi = images.index([amd64, arm64])
    layout.write_layout(tmp_path / "layouts" / "multi", multi, tag="1")
    layout.write_layout(tmp_path / "layouts" / "single", arm64)
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: default platform
            layout: layouts/multi
            expect: {decision: allow, warnings: [root-user]}
          - name: arm64 chosen
            layout: layouts/multi
            layout_reference: "1"
            platform: linux/arm64
            expect: {decision: allow, warnings: []}
          - name: missing platform
            layout: layouts/multi
            platform: linux/s390x
            expect: {decision: allow}
          - name: single image of another platform
            layout: layouts/single
            platform: linux/amd64
            expect: {decision: allow}
          - name: single image of its platform
            layout: layouts/single
            platform: linux/arm64/v8
            expect: {decision: allow, warnings: []}
        """,
    )
    junit = tmp_path / "junit.xml"

    result = run(pullgate_bin, "test", str(policy_file), "--junit", str(junit))

    assert result.stdout.splitlines() == [
        "ok default platform (platform linux/amd64)",
        "ok arm64 chosen (platform linux/arm64/v8)",
        f"FAIL missing platform: cannot inspect the layout "
        f"{tmp_path}/layouts/multi: index {multi.digest} has no manifest for "
        "platform linux/s390x; it has linux/amd64, linux/arm64/v8; choose "
        'one with "platform" in the test',
        f"FAIL single image of another platform: the layout "
        f"{tmp_path}/layouts/single has no manifest for platform "
        "linux/amd64; its image is linux/arm64/v8",
        "ok single image of its platform",
        "3 passed, 2 failed",
    ]
    assert result.returncode == 2
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert [case.findtext("system-out") for case in cases] == [
        "platform linux/amd64",
        "platform linux/arm64/v8",
        None,
        None,
        None,
    ]


def test_test_layout_index_lists_platforms(pullgate_bin, policy_file, tmp_path):
    # index.json lists one manifest for each platform, both tagged v1, as
    # no tool should write it.
    amd64 = images.image([{"app/run": b"#!/bin/sh\n"}], user="root")
    arm64 = images.image(
        [{"app/run": b"#!/bin/sh\n"}], user="1000", architecture="arm64"
    )
    root = layout.write_layout(
        tmp_path / "layouts" / "app", images.index([amd64, arm64])
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {**image.descriptor(), "annotations": {layout.REF_NAME: "v1"}}
            for image in (amd64, arm64)
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: chosen by platform
            layout: layouts/app
            platform: linux/arm64
            expect: {decision: allow, warnings: []}
          - name: tag of two manifests
            layout: layouts/app
            layout_reference: v1
            expect: {decision: allow}
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stdout.splitlines() == [
        "ok chosen by platform (platform linux/arm64)",
        f"FAIL tag of two manifests: cannot inspect the layout "
        f"{tmp_path}/layouts/app: index.json has 2 manifests whose "
        'org.opencontainers.image.ref.name annotation is "v1"; give the '
        "tag to one manifest",
        "1 passed, 1 failed",
    ]
    assert result.returncode == 2


def test_test_invalid_platform(pullgate_bin, policy_file, tmp_path):
    tests = write(
        tmp_path / "policy.test.yaml",
        """\
        tests:
          - name: no architecture
            layout: layouts/app
            platform: linux
            expect: {decision: allow}
          - name: platform without layout
            platform: linux/arm64
            expect: {decision: allow}
        """,
    )

    result = run(pullgate_bin, "test", str(policy_file))

    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f'pullgate: policy test: {tests}:4:15: invalid "platform" "linux" '
        'of test "no architecture": expected OS/ARCH[/VARIANT], such as '
        "linux/arm64 or linux/arm/v7",
        f'pullgate: policy test: {tests}:7:15: test "platform without '
        'layout" has "platform" without "layout"; platform chooses the '
        "image of a layout's index",
    ]
    assert result.returncode == 2


def test_test_source_rule_sees_manifest_digest(pullgate_bin, tmp_path):
    # The proxy checks source rules again once a pull by tag has resolved
    # the manifest's digest; a test checks them the same way.
    digest = "sha256:" + "ab" * 32
    policy = write(
        tmp_path / "policy.yaml",
        f"""\
        version: 2
        rules:
          - name: banned-digest
            when: 'has(image.digest) && image.digest == "{digest}"'
            action: deny
            message: this digest is banned
        """,
    )
    write(
        tmp_path / "policy.test.yaml",
        f"""\
        tests:
          - name: banned image pulled by tag
            image: docker.io/team/ok:1
            inline: {{manifest: {{digest: "{digest}"}}}}
            expect: {{decision: deny, denied: [banned-digest]}}
          - name: other image pulled by tag
            image: docker.io/team/ok:1
            expect: {{decision: allow, denied: []}}
        """,
    )

    result = run(pullgate_bin, "test", str(policy))

    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "ok banned image pulled by tag",
        "ok other image pulled by tag",
        "2 passed, 0 failed",
    ]
    assert result.returncode == 0
