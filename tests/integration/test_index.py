"""Indexes and manifest lists: served as they are, platforms gated one by one."""

import pytest

from pgtest import images, skopeo

NAME = "team/multi"
TAG = "1"


def platform_images(style: str) -> tuple[images.Manifest, images.Manifest]:
    amd64 = images.image(
        [{"app/run": b"amd64 binary\n" * 10, "etc/arch": b"amd64\n"}],
        architecture="amd64",
        style=style,
    )
    arm64 = images.image(
        [{"app/run": b"arm64 binary\n" * 10, "etc/arch": b"arm64\n"}],
        architecture="arm64",
        variant="v8",
        style=style,
    )
    return amd64, arm64


@pytest.fixture(params=["oci", "docker"])
def multi(request, registry, pullgate):
    amd64, arm64 = platform_images(request.param)
    index = images.index([amd64, arm64], style=request.param)
    images.push(registry.url, NAME, TAG, index)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    return proxy, index


@pytest.mark.parametrize("architecture", ["amd64", "arm64"])
def test_skopeo_copies_platform(multi, skopeo_client, architecture):
    proxy, index = multi
    expected = index.child(architecture)

    result, out = skopeo_client.copy(
        f"{proxy.host}/{NAME}:{TAG}", architecture=architecture
    )

    assert result.returncode == 0, result.stderr
    copied = skopeo.dir_manifest(out)
    assert images.sha256_digest(copied) == expected.digest
    for blob in expected.blobs:
        assert skopeo.dir_blob(out, blob.digest).read_bytes() == blob.data


def test_index_served_byte_for_byte(multi):
    proxy, index = multi

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 200
    assert response.content == index.data
    assert response.headers["Content-Type"] == index.media_type
    assert response.headers["Docker-Content-Digest"] == index.digest


def test_index_by_digest_head(multi):
    proxy, index = multi

    response = images.get_manifest(proxy.url, NAME, index.digest, "HEAD")

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(index.size)
    assert response.headers["Docker-Content-Digest"] == index.digest


def test_denied_platform_only(registry, pullgate):
    """A denied child is 403 while its sibling and the index are served."""
    clean = images.image([{"app/run": b"clean\n"}], architecture="amd64")
    leaky = images.image(
        [{"root/.ssh/id_rsa": b"-----BEGIN RSA PRIVATE KEY-----\n"}],
        architecture="arm64",
        variant="v8",
    )
    index = images.index([clean, leaky])
    images.push(registry.url, NAME, TAG, index)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    index_response = images.get_manifest(proxy.url, NAME, TAG)
    clean_response = images.get_manifest(proxy.url, NAME, clean.digest)
    leaky_response = images.get_manifest(proxy.url, NAME, leaky.digest)

    assert index_response.status_code == 200
    assert clean_response.status_code == 200
    assert clean_response.content == clean.data
    assert leaky_response.status_code == 403
    assert leaky_response.json()["errors"][0]["message"] == (
        f"image {leaky.digest} is denied by policy: no-credential-files: "
        "image contains AWS credentials or an SSH private key: "
        "root/.ssh/id_rsa (layer 0)"
    )
