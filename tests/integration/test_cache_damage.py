"""A cached blob changed after it was verified is fetched again, not served."""

from pgtest import images

NAME = "team/damaged"
TAG = "1"


def test_truncated_blob_refetched(registry, pullgate):
    image = images.image([{"app/data": bytes(range(256)) * 400}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 200
    layer = image.layers[0]
    path = proxy.blob_path(layer.digest)
    path.write_bytes(layer.data[: layer.size // 2])

    response = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")

    assert response.status_code == 200
    assert response.content == layer.data
    assert path.read_bytes() == layer.data
    assert (
        f"event=blob_size_mismatch digest={layer.digest} "
        f"file_bytes={layer.size // 2} record_bytes={layer.size}"
    ) in proxy.log_text()
