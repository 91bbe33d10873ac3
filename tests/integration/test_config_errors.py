"""Command-line behaviour: version, help and configuration errors."""

import pytest

from pgtest.pullgate import run_command


def serve_with(pullgate_bin, tmp_path, text: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run_command(
        pullgate_bin,
        ["serve", "-c", str(path), "--cache-dir", str(tmp_path / "cache")],
        tmp_path,
    )
    return path, result


def error_lines(stderr: str, path) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.startswith(f"pullgate: {path}:")
    ]


def test_version(pullgate_bin, tmp_path):
    result = run_command(pullgate_bin, ["--version"], tmp_path)

    assert result.returncode == 0
    assert result.stdout == "pullgate 0.1.0\n"


def test_help(pullgate_bin, tmp_path):
    result = run_command(pullgate_bin, ["--help"], tmp_path)

    assert result.returncode == 0
    assert "serve" in result.stdout


def test_unknown_top_level_key(pullgate_bin, tmp_path):
    path, result = serve_with(
        pullgate_bin,
        tmp_path,
        "log_level: info\nworkers: 2\ncache_dirr: /tmp/nowhere\n",
    )

    assert result.returncode == 1
    lines = error_lines(result.stderr, path)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pullgate: {path}:3: ")
    assert "cache_dirr" in lines[0]


def test_unknown_upstream_key(pullgate_bin, tmp_path):
    path, result = serve_with(
        pullgate_bin,
        tmp_path,
        "upstreams:\n"
        "  - name: docker.io\n"
        "    url: http://127.0.0.1:1\n"
        "    passwrd: secret-value\n",
    )

    assert result.returncode == 1
    lines = error_lines(result.stderr, path)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pullgate: {path}:4: ")
    assert "passwrd" in lines[0]
    assert "secret-value" not in result.stderr


@pytest.mark.parametrize(
    "text,line,key",
    [
        ("workers: many\n", 1, "workers"),
        ("log_level: info\nlisten: not-an-address\n", 2, "listen"),
        ("verdict_wait_seconds: -5\n", 1, "verdict_wait_seconds"),
    ],
    ids=["workers", "listen", "verdict-wait"],
)
def test_invalid_value(pullgate_bin, tmp_path, text, line, key):
    path, result = serve_with(pullgate_bin, tmp_path, text)

    assert result.returncode == 1
    lines = error_lines(result.stderr, path)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pullgate: {path}:{line}: {key}: ")


def test_missing_config_file(pullgate_bin, tmp_path):
    missing = tmp_path / "absent.yaml"

    result = run_command(pullgate_bin, ["serve", "-c", str(missing)], tmp_path)

    assert result.returncode == 1
    assert str(missing) in result.stderr
