"""An image that passes the default policy is served byte for byte."""

import hashlib

import pytest
import requests

from pgtest import images, skopeo

NAME = "team/allowed"
TAG = "1.0"
ROOT_WARNING = (
    '299 - "pullgate: root-user: image runs as root; '
    'set USER to a non-root user"'
)


def allowed_image(user: str = "1000:1000") -> images.Manifest:
    return images.image(
        [
            {
                "app": images.File(kind="dir", mode=0o755),
                "app/run": images.File(b"#!/bin/sh\nexec echo hi\n", mode=0o755),
                "etc/motd": b"welcome\n",
            },
            {"app/data/readme.txt": b"harmless file\n" * 20},
        ],
        user=user,
        exposed_ports=["8080/tcp"],
        env=["PATH=/usr/bin:/bin", "APP_MODE=production"],
    )


@pytest.fixture
def allowed(registry, pullgate):
    image = allowed_image()
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    return registry, proxy, image


def test_skopeo_copy_matches_upstream(allowed, skopeo_client):
    registry, proxy, image = allowed
    upstream = images.get_manifest(registry.url, NAME, TAG)

    result, out = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")

    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == upstream.content
    for blob in image.blobs:
        upstream_blob = requests.get(
            f"{registry.url}/v2/{NAME}/blobs/{blob.digest}", timeout=30
        )
        copied = skopeo.dir_blob(out, blob.digest).read_bytes()
        assert copied == upstream_blob.content, blob.digest


def test_head_manifest_headers(allowed):
    registry, proxy, image = allowed
    upstream = images.get_manifest(registry.url, NAME, TAG, "HEAD")

    response = images.get_manifest(proxy.url, NAME, TAG, "HEAD")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == upstream.headers["Content-Type"]
    assert (
        response.headers["Content-Length"] == upstream.headers["Content-Length"]
    )
    assert (
        response.headers["Docker-Content-Digest"]
        == upstream.headers["Docker-Content-Digest"]
    )
    assert response.content == b""


def test_get_manifest_by_digest(allowed):
    registry, proxy, image = allowed

    response = images.get_manifest(proxy.url, NAME, image.digest)

    assert response.status_code == 200
    assert response.content == image.data
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.headers["Content-Type"] == images.OCI_MANIFEST


def test_blob_range_request(allowed):
    registry, proxy, image = allowed
    layer = image.layers[1]
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 200

    response = proxy.get(
        f"/v2/{NAME}/blobs/{layer.digest}", headers={"Range": "bytes=10-19"}
    )

    assert response.status_code == 206
    assert response.content == layer.data[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{layer.size}"
    assert response.headers["Content-Length"] == "10"


def test_blob_get_and_head(allowed):
    registry, proxy, image = allowed
    layer = image.layers[0]
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 200

    got = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")
    head = proxy.request("HEAD", f"/v2/{NAME}/blobs/{layer.digest}")

    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == layer.digest[7:]
    assert got.headers["Docker-Content-Digest"] == layer.digest
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(layer.size)
    assert head.headers["Docker-Content-Digest"] == layer.digest


def test_non_root_image_no_warning(allowed):
    registry, proxy, image = allowed

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 200
    assert "Warning" not in response.headers


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "root:staff"])
def test_root_user_warning(registry, pullgate, user):
    image = allowed_image(user=user)
    images.push(registry.url, "team/rootly", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, "team/rootly", "1")

    assert response.status_code == 200
    assert response.content == image.data
    assert response.headers["Warning"] == ROOT_WARNING
