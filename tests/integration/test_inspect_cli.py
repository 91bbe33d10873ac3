"""`pullgate inspect` and `pullgate sbom` read an image from a registry, an
OCI layout, an OCI archive or a docker save archive, and verify it.

The image holds real files of this machine: the dpkg status file,
/etc/os-release and a Python dist-info folder. Expected packages come from
dpkg-query and the files themselves."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pgtest import images, layout

NAME = "lib/app"
TAG = "1.0"
DIST_INFO_ROOT = Path("/usr/lib/python3/dist-packages")


def dpkg_packages() -> dict:
    """Return {name: version} of the installed packages, from dpkg-query."""
    output = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    packages = {}
    for line in output.splitlines():
        status, name, version = line.split(" ", 2)
        if status == "installed":
            packages[name] = version
    return packages


def dist_info_files() -> dict:
    """Return the files of the first dist-info folder found, under their
    path in the image."""
    folder = sorted(DIST_INFO_ROOT.glob("*.dist-info"))[0]
    return {
        str(path.relative_to("/")): path.read_bytes()
        for path in folder.iterdir()
        if path.is_file()
    }


def image_files() -> dict:
    secret = "AKIA" + "QW3RTY7UIO5PASDF" + "\n"
    files = {
        "etc/os-release": Path("/etc/os-release").read_bytes(),
        "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes(),
        "app/settings.env": b"AWS_ACCESS_KEY_ID=" + secret.encode(),
    }
    files.update(dist_info_files())
    return files


def run(pullgate_bin, *args):
    return subprocess.run(
        [str(pullgate_bin), *args], capture_output=True, text=True, timeout=120
    )


def inspect(pullgate_bin, *args) -> dict:
    result = run(pullgate_bin, "inspect", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_dpkg_packages(document: dict) -> None:
    expected = dpkg_packages()
    found = {
        package["name"]: package.get("version")
        for package in document.get("packages", [])
        if package.get("type") == "deb"
    }
    assert found == expected


@pytest.fixture
def oci_image():
    return images.image([image_files()])


@pytest.fixture
def docker_image():
    return images.image([image_files()], style="docker", compress=False)


def test_remote_image(registry, pullgate_bin, tmp_path, oci_image):
    images.push(registry.url, NAME, TAG, oci_image)
    config = tmp_path / "pullgate.yaml"
    config.write_text(
        f"upstreams:\n  - name: {registry.host}\n    url: {registry.url}\n"
    )

    document = inspect(pullgate_bin, "-c", str(config), f"{registry.host}/{NAME}:{TAG}")

    assert document["source"] == {
        "registry": registry.host,
        "repository": NAME,
        "reference": TAG,
    }
    assert document["manifest"]["digest"] == oci_image.digest
    assert document["os"]["id"] == "debian"
    check_dpkg_packages(document)


def test_remote_index_by_platform(registry, pullgate_bin, tmp_path):
    amd64 = images.image([{"etc/os-release": Path("/etc/os-release").read_bytes()}])
    arm64 = images.image([{"arm/file": b"arm\n"}], architecture="arm64")
    index = images.index([amd64, arm64])
    images.push(registry.url, NAME, TAG, index)
    config = tmp_path / "pullgate.yaml"
    config.write_text(
        f"upstreams:\n  - name: {registry.host}\n    url: {registry.url}\n"
    )
    ref = f"{registry.host}/{NAME}@{index.digest}"

    default = inspect(pullgate_bin, "-c", str(config), ref)
    chosen = inspect(pullgate_bin, "-c", str(config), "--platform", "linux/arm64", ref)

    assert default["manifest"]["digest"] == amd64.digest
    assert chosen["manifest"]["digest"] == arm64.digest


def test_unknown_tag_exits_1(registry, pullgate_bin, tmp_path):
    config = tmp_path / "pullgate.yaml"
    config.write_text(
        f"upstreams:\n  - name: {registry.host}\n    url: {registry.url}\n"
    )
    ref = f"{registry.host}/{NAME}:missing"

    result = run(pullgate_bin, "inspect", "-c", str(config), ref)

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"pullgate: cannot read image {ref}: " in result.stderr
    assert "HTTP 404" in result.stderr


def test_oci_layout_by_tag(pullgate_bin, tmp_path, oci_image):
    root = layout.write_layout(tmp_path / "layout", oci_image, tag=TAG)

    document = inspect(pullgate_bin, f"oci:{root}:{TAG}")
    plain = inspect(pullgate_bin, str(root))

    assert document["manifest"]["digest"] == oci_image.digest
    assert document["source"]["reference"] == TAG
    assert plain["manifest"]["digest"] == oci_image.digest
    check_dpkg_packages(document)
    assert {"rule": "aws-access-key-id", "path": "app/settings.env", "line": 1} in [
        {key: item.get(key) for key in ("rule", "path", "line")}
        for item in document.get("secrets", [])
    ]


def test_oci_archive(pullgate_bin, tmp_path, oci_image):
    root = layout.write_layout(tmp_path / "layout", oci_image)
    archive = layout.tar_directory(root, tmp_path / "image.tar")

    document = inspect(pullgate_bin, f"docker-archive:{archive}")

    assert document["manifest"]["digest"] == oci_image.digest
    check_dpkg_packages(document)


def test_docker_save_archive(pullgate_bin, tmp_path, docker_image):
    archive = layout.write_docker_archive(
        tmp_path / "saved.tar", docker_image, f"app:{TAG}"
    )

    document = inspect(pullgate_bin, str(archive))

    diff_ids = [layer.digest for layer in docker_image.layers]
    assert document["rootfs"]["diff_ids"] == diff_ids
    assert [layer["digest"] for layer in document["layers"]] == diff_ids
    assert document["manifest"]["config_digest"] == docker_image.config.digest
    check_dpkg_packages(document)


def test_tampered_layer_exits_1(pullgate_bin, tmp_path, oci_image):
    root = layout.write_layout(tmp_path / "layout", oci_image)
    layer = oci_image.layers[0]
    path = layout.blob_file(root, layer.digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    result = run(pullgate_bin, "inspect", f"oci:{root}")

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"cannot read image oci:{root}: " in result.stderr
    assert layer.digest in result.stderr


def test_tampered_docker_layer_exits_1(pullgate_bin, tmp_path, docker_image):
    blob = docker_image.layers[0]
    tampered = images.Blob(
        blob.media_type, blob.digest, blob.size, data=blob.read()[:-1] + b"x"
    )
    docker_image.blobs[1] = tampered
    archive = layout.write_docker_archive(tmp_path / "saved.tar", docker_image, "a:1")

    result = run(pullgate_bin, "inspect", str(archive))

    assert result.returncode == 1
    assert blob.digest in result.stderr
    assert "does not match its digest" in result.stderr


def test_sbom_spdx(pullgate_bin, tmp_path, oci_image):
    root = layout.write_layout(tmp_path / "layout", oci_image)

    result = run(pullgate_bin, "sbom", str(root), "--format", "spdx-json")

    assert result.returncode == 0, result.stderr
    spdx = json.loads(result.stdout)
    assert spdx["spdxVersion"] == "SPDX-2.3"
    assert spdx["dataLicense"] == "CC0-1.0"
    assert spdx["SPDXID"] == "SPDXRef-DOCUMENT"
    assert spdx["documentNamespace"].startswith("https://pullgate.invalid/spdx/sha256/")
    ids = [package["SPDXID"] for package in spdx["packages"]]
    assert len(ids) == len(set(ids))
    image = spdx["packages"][0]
    assert image["versionInfo"] == oci_image.digest
    versions = {p["name"]: p.get("versionInfo") for p in spdx["packages"][1:]}
    for name, version in dpkg_packages().items():
        assert versions.get(name) == version, name


def test_sbom_cyclonedx(pullgate_bin, tmp_path, oci_image):
    root = layout.write_layout(tmp_path / "layout", oci_image)

    result = run(pullgate_bin, "sbom", f"oci:{root}", "--format", "cyclonedx-json")

    assert result.returncode == 0, result.stderr
    bom = json.loads(result.stdout)
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] == "1.5"
    assert bom["version"] == 1
    assert bom["metadata"]["component"]["type"] == "container"
    assert bom["metadata"]["component"]["version"] == oci_image.digest
    refs = [component["bom-ref"] for component in bom["components"]]
    assert len(refs) == len(set(refs))
    versions = {
        c["name"]: c.get("version")
        for c in bom["components"]
        if c["type"] == "library"
    }
    for name, version in dpkg_packages().items():
        assert versions.get(name) == version, name


def test_usage_errors(pullgate_bin, tmp_path):
    missing_format = run(pullgate_bin, "sbom", "oci:/nonexistent")
    bad_format = run(pullgate_bin, "sbom", "x", "--format", "spdx")
    no_ref = run(pullgate_bin, "inspect")
    help_text = run(pullgate_bin, "inspect", "--help")

    assert missing_format.returncode == 2
    assert "missing --format" in missing_format.stderr
    assert bad_format.returncode == 2
    assert 'invalid --format "spdx"' in bad_format.stderr
    assert no_ref.returncode == 2
    assert help_text.returncode == 0
    assert "default linux/amd64" in help_text.stdout


@pytest.mark.parametrize("member", ["layer", "index.json"])
def test_layout_fifo_exits_1(pullgate_bin, tmp_path, oci_image, member):
    # A named pipe in place of a file would block open(2) until a writer
    # appears, so the command must reject it instead of waiting forever.
    root = layout.write_layout(tmp_path / "layout", oci_image)
    if member == "layer":
        path = layout.blob_file(root, oci_image.layers[0].digest)
    else:
        path = root / "index.json"
    path.unlink()
    os.mkfifo(path)

    result = subprocess.run(
        [str(pullgate_bin), "inspect", f"oci:{root}"],
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{path} is not a regular file" in result.stderr


def test_layout_blob_symlink_to_fifo_exits_1(pullgate_bin, tmp_path, oci_image):
    root = layout.write_layout(tmp_path / "layout", oci_image)
    path = layout.blob_file(root, oci_image.config.digest)
    fifo = tmp_path / "outside-fifo"
    os.mkfifo(fifo)
    path.unlink()
    path.symlink_to(fifo)

    result = subprocess.run(
        [str(pullgate_bin), "inspect", f"oci:{root}"],
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 1
    assert f"{path} is not a regular file" in result.stderr


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_temporary_directory(
    faulty_factory, pullgate_bin, tmp_path, oci_image, signal_number
):
    # The command is stopped while a layer is half downloaded; the blob
    # store it made under TMPDIR must not stay behind.
    layer = oci_image.layers[0]
    upstream = faulty_factory(NAME, TAG, oci_image, layer.digest, "stall")
    config = tmp_path / "pullgate.yaml"
    config.write_text(
        f"upstreams:\n  - name: {upstream.host}\n    url: {upstream.url}\n"
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(
        [str(pullgate_bin), "inspect", "-c", str(config),
         f"{upstream.host}/{NAME}:{TAG}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )
    try:
        assert upstream.stalled.wait(timeout=30)
        assert len(list(tmpdir.iterdir())) == 1
        proc.send_signal(signal_number)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        upstream.resume.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 1
    assert stdout == ""
    assert "stopped by signal" in stderr
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize(
    "digest", [None, "sha256:../../../etc/passwd", "sha256:" + "0" * 63]
)
def test_layout_index_with_invalid_digest_exits_1(
    pullgate_bin, tmp_path, oci_image, digest
):
    root = layout.write_layout(tmp_path / "layout", oci_image)
    index = json.loads((root / "index.json").read_bytes())
    if digest is None:
        del index["manifests"][0]["digest"]
    else:
        index["manifests"][0]["digest"] = digest
    (root / "index.json").write_text(json.dumps(index))

    result = run(pullgate_bin, "inspect", f"oci:{root}")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"pullgate: cannot read image oci:{root}: a manifest descriptor is "
        "not a descriptor with a sha256 or sha512 digest and a size\n"
    )


@pytest.mark.parametrize(
    "ref",
    [
        "ABSOLUTE/missing-dir",
        "missing.tar",
        "./missing",
        "~/image.tar",
        "image.tgz",
        "save.tar.gz",
        "build/image.oci",
        "save.tar:latest",
    ],
)
def test_missing_path_is_not_sent_upstream(pullgate_bin, tmp_path, ref):
    ref = ref.replace("ABSOLUTE", str(tmp_path))

    result = subprocess.run(
        [str(pullgate_bin), "inspect", ref],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"pullgate: cannot read image {ref}: no such file or directory; give "
        "an existing OCI layout directory or image archive, or a registry "
        "reference\n"
    )
