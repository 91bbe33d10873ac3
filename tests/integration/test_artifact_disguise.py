"""Runnable images dressed as artifacts are inspected, not waved through."""

from pgtest import images

NAME = "team/disguised"
CREDENTIALS = {"root/.aws/credentials": b"[default]\naws_access_key_id=AKIA\n"}
IN_TOTO = "application/vnd.in-toto+json"


def manifest_with(config_blob, layer_blobs, extra=None) -> images.Manifest:
    document = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor() for blob in layer_blobs],
    }
    document.update(extra or {})
    return images.Manifest(
        images.OCI_MANIFEST,
        images.encode_json(document),
        blobs=[config_blob, *layer_blobs],
    )


def image_config(layer_blobs) -> images.Blob:
    """An image config with a non-root user and one diff_id per layer."""
    diff_ids = [images.sha256_digest(blob.data) for blob in layer_blobs]
    document = images.make_config(
        diff_ids, "1000:1000", "amd64", "linux", None, None, None
    )
    return images.Blob.from_bytes(
        images.OCI_CONFIG, images.encode_json(document)
    )


def test_artifact_type_on_image_inspected(registry, pullgate):
    layer, _ = images.make_layer(CREDENTIALS)
    manifest = manifest_with(
        image_config([layer]), [layer], {"artifactType": "application/x"}
    )
    images.push(registry.url, NAME, "type", manifest)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "type")

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"].startswith(
        f"image {manifest.digest} is denied by policy: no-credential-files:"
    )


def test_tar_under_artifact_type_denied(registry, pullgate):
    layer, _ = images.make_layer(CREDENTIALS)
    disguised = images.Blob.from_bytes(IN_TOTO, layer.data)
    manifest = manifest_with(image_config([disguised]), [disguised])
    images.push(registry.url, NAME, "intoto", manifest)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "intoto")

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"image {manifest.digest} is denied by policy: inspection-failed: "
        f"inspection failed: layer {disguised.digest} has media type "
        f"{IN_TOTO} but its bytes are a tar archive, which container "
        "runtimes would unpack; it is not served as an artifact"
    )


def test_attestation_with_image_config_served(registry, pullgate):
    statement = images.encode_json({"_type": "https://in-toto.io/Statement/v1"})
    attestation = images.Blob.from_bytes(IN_TOTO, statement)
    manifest = manifest_with(image_config([attestation]), [attestation])
    images.push(registry.url, NAME, "att", manifest)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "att")
    blob = proxy.get(f"/v2/{NAME}/blobs/{attestation.digest}")

    assert response.status_code == 200
    assert response.content == manifest.data
    assert blob.status_code == 200
    assert blob.content == statement


def test_mixed_layers_fail_closed(registry, pullgate):
    layer, _ = images.make_layer({"app/run": b"fine\n"})
    note = images.Blob.from_bytes("application/vnd.example.note", b"hello")
    manifest = manifest_with(image_config([layer, note]), [layer, note])
    images.push(registry.url, NAME, "mixed", manifest)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "mixed")

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"].startswith(
        f"image {manifest.digest} is denied by policy: inspection-failed: "
    )


def test_index_and_manifest_fields_rejected(faulty_factory, pullgate):
    layer, _ = images.make_layer({"app/run": b"fine\n"})
    manifest = manifest_with(
        image_config([layer]), [layer], {"manifests": []}
    )
    # The distribution registry rejects such a push, so a test upstream
    # serves the manifest as it is. None of its blobs is broken.
    upstream = faulty_factory(NAME, "both", manifest, "sha256:" + "0" * 64,
                              "error")
    proxy = pullgate(upstreams={"docker.io": upstream.url})

    response = images.get_manifest(proxy.url, NAME, "both")

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"manifest {manifest.digest} has media type {images.OCI_MANIFEST}, "
        "which pullgate cannot inspect, so it is not served"
    )
