"""Packages of a pulled image, from this machine's own package files.

The image holds the machine's dpkg status file, its os-release and the
egg-info folder of Debian's python3-requests; a second layer deletes the
egg-info folder. The document pullgate stores is read with mdb_dump and
compared with dpkg-query and the shell, never with pullgate's output.
"""

import subprocess
from pathlib import Path

from pgtest import images
from pgtest.stored import stored_document

NAME = "team/debian-like"
EGG_INFO = next(Path("/usr/lib/python3/dist-packages").glob("requests-*.egg-info"))
COPYRIGHT = Path("/usr/share/doc/bash/copyright")


def os_release_fields() -> dict:
    output = subprocess.run(
        ["sh", "-c", '. /etc/os-release; printf "%s\\n%s\\n" "$ID" "$VERSION_ID"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return {"id": output[0], "version_id": output[1]}


def installed_packages() -> dict:
    output = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f=${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {}
    for line in output.splitlines():
        status, name, version, arch = line.split("\t")
        if status == "installed":
            result[name] = (version, arch)
    return result


def copyright_licenses(path: Path) -> list:
    """Return the License: names of the header and Files paragraphs of a
    machine-readable copyright file. Stand-alone License paragraphs only
    hold the text of a license that a Files paragraph names."""
    names = set()
    for paragraph in path.read_text().split("\n\n"):
        lines = paragraph.strip("\n").splitlines()
        fields = [line.split(":", 1)[0] for line in lines if not line[:1].isspace()]
        if "Files" not in fields and "Format" not in fields:
            continue
        for line in lines:
            if line.startswith("License:"):
                names.add(line.split(":", 1)[1].strip())
    return sorted(names)


def tree_files(root: Path, prefix: str) -> dict:
    if root.is_file():
        return {prefix: root.read_bytes()}
    return {
        f"{prefix}/{path.relative_to(root)}": path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def debian_like_image(delete_egg_info: bool = True) -> images.Manifest:
    egg_path = f"usr/lib/python3/dist-packages/{EGG_INFO.name}"
    first = {
        "etc/os-release": Path("/etc/os-release").read_bytes(),
        "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes(),
        "usr/share/doc/bash/copyright": COPYRIGHT.read_bytes(),
        **tree_files(EGG_INFO, egg_path),
    }
    parent, _, leaf = egg_path.rpartition("/")
    second = {f"{parent}/.wh.{leaf}": b""}
    return images.image([first, second] if delete_egg_info else [first])


def test_stored_document_lists_the_machine_packages(registry, pullgate):
    image = debian_like_image()
    images.push(registry.url, NAME, "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "1")

    assert response.status_code == 200, response.text
    document = stored_document(proxy, image.digest)
    os_fields = os_release_fields()
    assert document["os"]["id"] == os_fields["id"]
    assert document["os"]["version_id"] == os_fields["version_id"]

    expected = installed_packages()
    debs = {p["name"]: p for p in document["packages"] if p["type"] == "deb"}
    assert set(debs) == set(expected)
    for name, (version, arch) in expected.items():
        assert debs[name]["version"] == version, name
        assert debs[name]["arch"] == arch, name
        assert debs[name]["layer"] == 0, name

    bash = debs["bash"]
    distro = f"{os_fields['id']}-{os_fields['version_id']}"
    assert bash["purl"] == (
        f"pkg:deb/{os_fields['id']}/bash@{expected['bash'][0].replace('+', '%2B')}"
        f"?arch={expected['bash'][1]}&distro={distro}"
    )
    assert sorted(bash["licenses"]) == copyright_licenses(COPYRIGHT)


def test_deleted_python_package_is_not_listed(registry, pullgate):
    image = debian_like_image()
    images.push(registry.url, NAME, "2", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    assert images.get_manifest(proxy.url, NAME, "2").status_code == 200

    document = stored_document(proxy, image.digest)
    assert [p for p in document["packages"] if p["type"] == "pypi"] == []
    egg_entries = [
        f for f in document["files"] if EGG_INFO.name in f["path"] and f["layer"] == 0
    ]
    assert egg_entries
    assert all(f["present"] is False for f in egg_entries)


def test_python_package_is_listed_until_deleted(registry, pullgate):
    image = debian_like_image(delete_egg_info=False)
    images.push(registry.url, NAME, "3", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    assert images.get_manifest(proxy.url, NAME, "3").status_code == 200

    # The folder is named NAME-VERSION.egg-info by setuptools.
    version = EGG_INFO.name[len("requests-") : -len(".egg-info")]
    document = stored_document(proxy, image.digest)
    pypi = [p for p in document["packages"] if p["type"] == "pypi"]
    assert [(p["name"], p["version"], p["purl"]) for p in pypi] == [
        ("requests", version, f"pkg:pypi/requests@{version}")
    ]
