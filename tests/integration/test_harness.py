"""Checks of the test fixtures against real clients, without pullgate.

When these fail, failures of the pullgate tests are not meaningful.
"""

import hashlib

import requests

from pgtest import images, skopeo, tokenserver


def sha256_file(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry_serves_pushed_image(registry, skopeo_client):
    image = images.image([{"app/run": b"#!/bin/sh\n"}], style="docker")
    images.push(registry.url, "harness/app", "1", image)

    result, out = skopeo_client.copy(f"{registry.host}/harness/app:1")

    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == image.data
    for blob in image.blobs:
        assert sha256_file(skopeo.dir_blob(out, blob.digest)) == blob.digest


def test_registry_index_platform_choice(registry, skopeo_client):
    amd64 = images.image([{"arch": b"amd64\n"}], architecture="amd64")
    arm64 = images.image(
        [{"arch": b"arm64\n"}], architecture="arm64", variant="v8"
    )
    images.push(registry.url, "harness/multi", "1", images.index([amd64, arm64]))

    result, out = skopeo_client.copy(
        f"{registry.host}/harness/multi:1", architecture="arm64"
    )

    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == arm64.data


def test_token_server_key_id_format(token_server):
    groups = token_server.key_id.split(":")

    assert len(groups) == 12
    assert all(len(group) == 4 for group in groups)


def test_auth_registry_requires_token(auth_registry, token_server):
    image = images.image([{"app/run": b"token\n"}])
    session = requests.Session()
    session.headers["Authorization"] = (
        "Bearer " + token_server.push_token("harness/auth")
    )
    images.push(auth_registry.url, "harness/auth", "1", image, session)
    url = f"{auth_registry.url}/v2/harness/auth/manifests/1"

    first, token_response, final = tokenserver.get_with_token(
        url,
        token_server.username,
        token_server.password,
        {"Accept": images.MANIFEST_ACCEPT},
    )

    assert first.status_code == 401
    assert token_response.status_code == 200
    assert final.status_code == 200
    assert final.content == image.data


def test_auth_registry_skopeo_credentials(
    auth_registry, token_server, skopeo_client
):
    image = images.image([{"app/run": b"skopeo\n"}])
    session = requests.Session()
    session.headers["Authorization"] = (
        "Bearer " + token_server.push_token("harness/auth")
    )
    images.push(auth_registry.url, "harness/auth", "1", image, session)
    source = f"{auth_registry.host}/harness/auth:1"

    good, out = skopeo_client.copy(
        source, creds=f"{token_server.username}:{token_server.password}"
    )
    bad, _ = skopeo_client.copy(source, creds=f"{token_server.username}:wrong")

    assert good.returncode == 0, good.stderr
    assert skopeo.dir_manifest(out) == image.data
    assert bad.returncode != 0
    assert "invalid username/password" in bad.stderr


def test_faulty_upstream_corrupt_blob(faulty_factory, skopeo_client):
    image = images.image([{"app/run": b"corrupt\n" * 100}])
    layer = image.layers[0]
    upstream = faulty_factory("harness/app", "1", image, layer.digest, "corrupt")

    result, _ = skopeo_client.copy(f"{upstream.host}/harness/app:1")

    assert result.returncode != 0
    assert f"Digest did not match, expected {layer.digest}" in result.stderr


def test_faulty_upstream_reset_blob(faulty_factory, skopeo_client):
    image = images.image([{"app/run": b"reset\n" * 100}])
    layer = image.layers[0]
    upstream = faulty_factory("harness/app", "1", image, layer.digest, "reset")

    result, _ = skopeo_client.copy(f"{upstream.host}/harness/app:1")

    assert result.returncode != 0
    assert "connection reset by peer" in result.stderr


def test_faulty_upstream_error_blob(faulty_factory, skopeo_client):
    image = images.image([{"app/run": b"error\n" * 100}])
    layer = image.layers[0]
    upstream = faulty_factory("harness/app", "1", image, layer.digest, "error")

    result, _ = skopeo_client.copy(f"{upstream.host}/harness/app:1")

    assert result.returncode != 0
    assert "500 (Internal Server Error)" in result.stderr
