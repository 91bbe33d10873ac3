"""Bytes that do not hash to their digest are never served or cached."""

import re

import pytest

from pgtest import images

NAME = "team/broken"
TAG = "1"


def broken_image() -> images.Manifest:
    return images.image(
        [
            {"app/run": b"good layer\n" * 100},
            {"app/data": b"layer the upstream breaks\n" * 400},
        ]
    )


def assert_nothing_cached(proxy, digest: str) -> None:
    assert not proxy.blob_path(digest).exists()
    tmp = proxy.cache_dir / "tmp"
    leftovers = sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
    assert leftovers == []


def test_corrupt_layer_rejected(faulty_factory, pullgate):
    image = broken_image()
    layer = image.layers[1]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, "corrupt")
    proxy = pullgate(upstreams={"docker.io": upstream.url})

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 502
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert re.fullmatch(
        f"upstream docker.io sent blob {layer.digest} of {NAME} with the "
        f"wrong bytes: bytes hash to sha256:[0-9a-f]{{64}}, not the expected "
        f"{layer.digest}; nothing was cached",
        error["message"],
    ), error["message"]
    assert_nothing_cached(proxy, layer.digest)
    assert proxy.get("/v2/").status_code == 200


def test_corrupt_layer_blob_request(faulty_factory, pullgate):
    image = broken_image()
    layer = image.layers[1]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, "corrupt")
    proxy = pullgate(upstreams={"docker.io": upstream.url})
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 502

    response = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"blob {layer.digest} is not part of an image allowed by policy"
    )
    assert_nothing_cached(proxy, layer.digest)


@pytest.mark.parametrize("mode", ["reset", "error"])
def test_broken_transfer_rejected(faulty_factory, pullgate, mode):
    image = broken_image()
    layer = image.layers[1]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, mode)
    proxy = pullgate(upstreams={"docker.io": upstream.url})

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert_nothing_cached(proxy, layer.digest)
    assert proxy.get("/v2/").status_code == 200


def test_retry_after_corrupt_layer(faulty_factory, pullgate):
    """The failure is not cached as a verdict: a retry fetches again."""
    image = broken_image()
    layer = image.layers[1]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, "corrupt")
    proxy = pullgate(upstreams={"docker.io": upstream.url})
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 502
    blob_request = ("GET", f"/v2/{NAME}/blobs/{layer.digest}")
    fetched = upstream.requests.count(blob_request)

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 502
    assert upstream.requests.count(blob_request) > fetched
