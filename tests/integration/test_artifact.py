"""Artifacts (a cosign-like signature) pass without image rules."""

import pytest

from pgtest import images

NAME = "team/signed"
TAG = "1"


@pytest.fixture
def signed(registry, pullgate):
    image = images.image([{"app/run": b"signed app\n"}])
    signature = images.signature_artifact(image, f"docker.io/{NAME}:{TAG}")
    index = images.index([image, signature])
    images.push(registry.url, NAME, TAG, index)
    signature_tag = image.digest.replace(":", "-") + ".sig"
    images.push(registry.url, NAME, signature_tag, signature)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    return proxy, index, image, signature, signature_tag


def test_artifact_manifest_by_digest(signed):
    proxy, index, image, signature, _ = signed

    response = images.get_manifest(proxy.url, NAME, signature.digest)

    assert response.status_code == 200
    assert response.content == signature.data
    assert response.headers["Content-Type"] == images.OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == signature.digest


def test_artifact_manifest_by_tag(signed):
    proxy, index, image, signature, signature_tag = signed

    response = images.get_manifest(proxy.url, NAME, signature_tag)

    assert response.status_code == 200
    assert response.content == signature.data


def test_artifact_blobs_served(signed):
    proxy, index, image, signature, _ = signed
    assert images.get_manifest(proxy.url, NAME, signature.digest).status_code == 200

    for blob in signature.blobs:
        response = proxy.get(f"/v2/{NAME}/blobs/{blob.digest}")
        assert response.status_code == 200, blob.digest
        assert response.content == blob.data, blob.digest


def test_index_with_artifact_served(signed):
    proxy, index, image, signature, _ = signed

    index_response = images.get_manifest(proxy.url, NAME, TAG)
    image_response = images.get_manifest(proxy.url, NAME, image.digest)

    assert index_response.status_code == 200
    assert index_response.content == index.data
    assert image_response.status_code == 200
    assert image_response.content == image.data
