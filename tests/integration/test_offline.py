"""Images pulled once stay available when the upstream is down."""

import requests

from pgtest import images, skopeo

NAME = "team/offline"
TAG = "stable"


def test_pull_by_tag_upstream_down(registry, pullgate, skopeo_client):
    image = images.image([{"app/run": b"offline\n" * 50}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    first, first_out = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")
    assert first.returncode == 0, first.stderr

    registry.stop()
    second, second_out = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")

    assert second.returncode == 0, second.stderr
    assert skopeo.dir_manifest(second_out) == image.data
    for blob in image.blobs:
        first_bytes = skopeo.dir_blob(first_out, blob.digest).read_bytes()
        second_bytes = skopeo.dir_blob(second_out, blob.digest).read_bytes()
        assert second_bytes == first_bytes, blob.digest


def test_unknown_tag_upstream_down(registry, pullgate):
    image = images.image([{"app/run": b"never pulled\n"}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    registry.stop()
    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


def test_upstream_restart_serves_again(registry, pullgate):
    image = images.image([{"app/run": b"restart\n"}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    registry.stop()
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 502

    registry.start()
    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 200
    assert response.content == image.data


def test_blob_served_upstream_down(registry, pullgate):
    image = images.image([{"app/run": b"blob offline\n" * 30}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 200

    registry.stop()
    layer = image.layers[0]
    response = requests.get(
        f"{proxy.url}/v2/{NAME}/blobs/{layer.digest}", timeout=60
    )

    assert response.status_code == 200
    assert response.content == layer.data
