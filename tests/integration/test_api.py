"""The read side of the distribution API, its errors and upstream routing."""

import re
import time

import pytest

from pgtest import images

NAME = "team/app"
WRITE_METHODS = ["PUT", "POST", "DELETE", "PATCH"]
SOME_DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def proxy(registry, pullgate):
    return pullgate(upstreams={"docker.io": registry.url})


def oci_error(response) -> dict:
    return response.json()["errors"][0]


def test_base_endpoint(proxy):
    response = proxy.get("/v2/")

    assert response.status_code == 200
    assert response.content == b"{}"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_healthz_body(proxy):
    response = proxy.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize(
    "path",
    [
        f"/v2/{NAME}/manifests/latest",
        f"/v2/{NAME}/blobs/{SOME_DIGEST}",
        f"/v2/{NAME}/blobs/uploads/",
    ],
    ids=["manifest", "blob", "upload"],
)
def test_write_unsupported(proxy, registry, method, path):
    response = proxy.request(method, path, data=b"{}")

    assert response.status_code == 405
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    error = oci_error(response)
    assert error["code"] == "UNSUPPORTED"
    assert error["message"] == (
        f"pullgate is a read-only mirror: {method} is not supported"
    )
    assert f'"{method} ' not in registry.log_text()


@pytest.mark.parametrize(
    "path",
    [
        "/v2/team/BadName/manifests/latest",
        "/v2/team/BadName/blobs/" + SOME_DIGEST,
        "/v2/team/bad..name/tags/list",
    ],
    ids=["manifest", "blob", "tags"],
)
def test_invalid_name(proxy, path):
    name = path.split("/")[3]

    response = proxy.get(path)

    assert response.status_code == 400
    error = oci_error(response)
    assert error["code"] == "NAME_INVALID"
    assert error["message"].startswith(f'invalid repository name "team/{name}"')


@pytest.mark.parametrize(
    "kind,digest",
    [
        ("blobs", "sha256:xyz"),
        ("blobs", "sha256:" + "AB" * 32),
        ("blobs", "sha256:" + "ab" * 31),
        ("manifests", "sha256:" + "0" * 63),
    ],
    ids=["short-blob", "uppercase-blob", "31-byte-blob", "short-manifest"],
)
def test_invalid_digest(proxy, kind, digest):
    response = proxy.get(f"/v2/{NAME}/{kind}/{digest}")

    assert response.status_code == 400
    error = oci_error(response)
    assert error["code"] == "DIGEST_INVALID"
    assert error["message"].startswith(f'invalid digest "{digest}"')


def test_unknown_manifest_tag(registry, proxy):
    images.push(registry.url, NAME, "1", images.image([{"a": b"a\n"}]))

    response = images.get_manifest(proxy.url, NAME, "no-such-tag")

    assert response.status_code == 404
    assert oci_error(response)["code"] == "MANIFEST_UNKNOWN"


def test_unknown_blob(registry, proxy):
    images.push(registry.url, NAME, "1", images.image([{"a": b"a\n"}]))

    response = proxy.get(f"/v2/{NAME}/blobs/{SOME_DIGEST}")

    assert response.status_code == 404
    assert oci_error(response)["code"] == "BLOB_UNKNOWN"


@pytest.fixture
def tagged(registry, proxy):
    image = images.image([{"app/run": b"tags\n"}])
    for tag in ["v3", "latest", "v1", "beta", "v2"]:
        images.push(registry.url, NAME, tag, image)
    return proxy


def test_tags_list_sorted(tagged):
    response = tagged.get(f"/v2/{NAME}/tags/list")

    assert response.status_code == 200
    assert response.json() == {
        "name": NAME,
        "tags": ["beta", "latest", "v1", "v2", "v3"],
    }
    assert "Link" not in response.headers


def test_tags_list_pages(tagged):
    first = tagged.get(f"/v2/{NAME}/tags/list?n=2")
    second = tagged.get(f"/v2/{NAME}/tags/list?n=2&last=latest")
    third = tagged.get(f"/v2/{NAME}/tags/list?n=2&last=v2")

    assert first.json() == {"name": NAME, "tags": ["beta", "latest"]}
    assert first.headers["Link"] == (
        f'</v2/{NAME}/tags/list?n=2&last=latest>; rel="next"'
    )
    assert second.json() == {"name": NAME, "tags": ["v1", "v2"]}
    assert second.headers["Link"] == (
        f'</v2/{NAME}/tags/list?n=2&last=v2>; rel="next"'
    )
    assert third.json() == {"name": NAME, "tags": ["v3"]}
    assert "Link" not in third.headers


def wait_for_log_line(registry, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = registry.log_text()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} did not appear in {registry.log_path}")


def test_unknown_upstream_host(registry, proxy):
    response = proxy.get("/v2/ghcr.io/x/manifests/1")
    # A later request that reaches the registry proves that its access log
    # is written up to this point.
    proxy.get(f"/v2/{NAME}/manifests/log-marker")
    log = wait_for_log_line(registry, f"/v2/{NAME}/manifests/log-marker")

    assert response.status_code == 404
    error = oci_error(response)
    assert error["code"] == "NAME_UNKNOWN"
    assert error["message"] == (
        'registry "ghcr.io" is not a configured upstream; '
        "add it under upstreams in the configuration"
    )
    assert re.search(r"/v2/(ghcr\.io/)?x/", log) is None


@pytest.fixture
def two_upstreams(registry_factory, pullgate):
    """docker.io (the default) and mirror.test each serve team/app:1 with
    different content, and library/busybox:1 exists only on docker.io."""
    hub = registry_factory("hub")
    mirror = registry_factory("mirror")
    hub_image = images.image([{"etc/origin": b"docker.io\n"}])
    mirror_image = images.image([{"etc/origin": b"mirror.test\n"}])
    busybox = images.image([{"bin/busybox": b"busybox\n"}])
    images.push(hub.url, NAME, "1", hub_image)
    images.push(mirror.url, NAME, "1", mirror_image)
    images.push(hub.url, "library/busybox", "1", busybox)
    proxy = pullgate(upstreams={"docker.io": hub.url, "mirror.test": mirror.url})
    return proxy, hub_image, mirror_image, busybox


@pytest.mark.parametrize(
    "path,origin",
    [
        (f"/v2/{NAME}/manifests/1", "hub"),
        (f"/v2/{NAME}/manifests/1?ns=docker.io", "hub"),
        (f"/v2/docker.io/{NAME}/manifests/1", "hub"),
        (f"/v2/{NAME}/manifests/1?ns=mirror.test", "mirror"),
        (f"/v2/mirror.test/{NAME}/manifests/1", "mirror"),
        ("/v2/busybox/manifests/1", "busybox"),
        ("/v2/docker.io/busybox/manifests/1", "busybox"),
    ],
    ids=[
        "default",
        "ns-default",
        "host-default",
        "ns-mirror",
        "host-mirror",
        "library-prefix",
        "host-library-prefix",
    ],
)
def test_upstream_routing(two_upstreams, path, origin):
    proxy, hub_image, mirror_image, busybox = two_upstreams
    expected = {"hub": hub_image, "mirror": mirror_image, "busybox": busybox}

    response = proxy.get(path, headers={"Accept": images.MANIFEST_ACCEPT})

    assert response.status_code == 200
    assert response.content == expected[origin].data


def test_unknown_ns_rejected(two_upstreams):
    proxy = two_upstreams[0]

    response = proxy.get(f"/v2/{NAME}/manifests/1?ns=quay.io")

    assert response.status_code == 404
    error = oci_error(response)
    assert error["code"] == "NAME_UNKNOWN"
    assert error["message"] == (
        'registry "quay.io" is not a configured upstream; '
        "add it under upstreams in the configuration"
    )
