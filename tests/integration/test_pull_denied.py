"""An image with a credential file is denied, manifest and blobs alike."""

import pytest

from pgtest import images, skopeo

NAME = "team/leaky"
TAG = "1"
RULE_MESSAGE = "image contains AWS credentials or an SSH private key"


def leaky_image() -> images.Manifest:
    return images.image(
        [
            {"app/run": images.File(b"#!/bin/sh\n", mode=0o755)},
            {
                "root/.aws": images.File(kind="dir", mode=0o700),
                # A credentials file without a key in it, so that the
                # path rule alone denies the image.
                "root/.aws/credentials": images.File(
                    b"[default]\nregion = eu-west-1\n",
                    mode=0o600,
                ),
            },
        ]
    )


@pytest.fixture
def denied(registry, pullgate):
    image = leaky_image()
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    return proxy, image


def test_manifest_get_denied(denied):
    proxy, image = denied

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 403
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"image {image.digest} is denied by policy: no-credential-files: "
        f"{RULE_MESSAGE}: root/.aws/credentials (layer 1)"
    )


def test_manifest_head_denied(denied):
    proxy, image = denied

    response = images.get_manifest(proxy.url, NAME, TAG, "HEAD")

    assert response.status_code == 403


def test_skopeo_copy_denied(denied, skopeo_client):
    proxy, image = denied

    result, _ = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")

    assert result.returncode != 0
    assert "denied" in result.stderr
    assert "no-credential-files" in result.stderr


def test_blobs_of_denied_image(denied):
    proxy, image = denied
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 403

    for blob in image.blobs:
        response = proxy.get(f"/v2/{NAME}/blobs/{blob.digest}")
        assert response.status_code == 403, blob.digest
        error = response.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert error["message"] == (
            f"blob {blob.digest} is not part of an image allowed by policy"
        )


def test_blob_before_manifest_denied(denied):
    """A client that asks for a layer without the manifest gets 403 too."""
    proxy, image = denied
    layer = image.layers[1]

    response = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "DENIED"


def test_several_paths_listed(registry, pullgate):
    image = images.image(
        [
            {
                "home/app/.ssh/id_ed25519": b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
                "./root/.aws/credentials": b"[default]\n",
            }
        ]
    )
    images.push(registry.url, "team/keys", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, "team/keys", "1")

    assert response.status_code == 403
    message = response.json()["errors"][0]["message"]
    assert message.startswith(
        f"image {image.digest} is denied by policy: no-credential-files: "
        f"{RULE_MESSAGE}: "
    )
    assert "home/app/.ssh/id_ed25519" in message
    assert "root/.aws/credentials" in message
    assert "./root" not in message


def test_public_key_allowed(registry, pullgate, skopeo_client):
    image = images.image(
        [{"home/app/.ssh/id_rsa.pub": b"ssh-rsa AAAAB3NzaC1yc2E app@example\n"}]
    )
    images.push(registry.url, "team/pubkey", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, "team/pubkey", "1")
    result, out = skopeo_client.copy(f"{proxy.host}/team/pubkey:1")

    assert response.status_code == 200
    assert response.content == image.data
    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == image.data
