"""Blob permissions are scoped by repository, as registries scope blobs."""

from pgtest import images

TAG = "1"


def test_blob_not_served_from_other_repository(registry, pullgate):
    image = images.image([{"app/run": b"scoped\n" * 30}])
    images.push(registry.url, "team/one", TAG, image)
    images.push(registry.url, "team/two", TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, "team/one", TAG).status_code == 200
    layer = image.layers[0]

    other = proxy.get(f"/v2/team/two/blobs/{layer.digest}")

    assert other.status_code == 403
    error = other.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"blob {layer.digest} is not part of an image allowed by policy"
    )


def test_same_image_allowed_in_second_repository(registry, pullgate):
    image = images.image([{"app/run": b"scoped twice\n" * 30}])
    images.push(registry.url, "team/one", TAG, image)
    images.push(registry.url, "team/two", TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, "team/one", TAG).status_code == 200

    manifest = images.get_manifest(proxy.url, "team/two", TAG)
    layer = image.layers[0]
    blob = proxy.get(f"/v2/team/two/blobs/{layer.digest}")

    assert manifest.status_code == 200
    assert manifest.content == image.data
    assert blob.status_code == 200
    assert blob.content == layer.data
    assert proxy.log_text().count("event=inspection_started") == 1


def test_artifact_does_not_open_denied_layer(registry, pullgate):
    denied = images.image(
        [{"root/.aws/credentials": b"[default]\naws_secret_access_key=x\n"}]
    )
    images.push(registry.url, "team/secret", TAG, denied)
    layer = denied.layers[0]
    chart_config = images.Blob.from_bytes(
        "application/vnd.cncf.helm.config.v1+json", b"{}"
    )
    chart = images.Manifest(
        images.OCI_MANIFEST,
        images.encode_json(
            {
                "schemaVersion": 2,
                "mediaType": images.OCI_MANIFEST,
                "config": chart_config.descriptor(),
                "layers": [layer.descriptor()],
            }
        ),
        blobs=[chart_config, layer],
    )
    images.push(registry.url, "team/chart", TAG, chart)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, "team/secret", TAG).status_code == 403

    # containerd unpacks a tar layer whatever the config's media type, so
    # a manifest that lists one is gated as an image, not passed as an
    # artifact.
    chart_response = images.get_manifest(proxy.url, "team/chart", TAG)
    assert chart_response.status_code == 403
    assert chart_response.json()["errors"][0]["message"] == (
        f"image {chart.digest} is denied by policy: inspection-failed: "
        f"inspection failed: image {chart.digest}: image config lists 0 "
        "rootfs.diff_ids but the manifest has 1 layers"
    )
    for repository in ("team/secret", "team/chart"):
        response = proxy.get(f"/v2/{repository}/blobs/{layer.digest}")
        assert response.status_code == 403, repository
        assert response.json()["errors"][0]["code"] == "DENIED"
