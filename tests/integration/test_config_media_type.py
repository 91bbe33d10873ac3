"""An image is gated whatever media type its config descriptor states.

moby runs images whose config media type is empty, application/json,
application/octet-stream or text/html, values that old tools wrote by
mistake, and containerd unpacks tar layers whatever the config's type. A
manifest that only relabels its config must not pass as an artifact.
"""

import bz2
import gzip
import json
import lzma

import pytest

from pgtest import images

NAME = "team/relabelled"


def relabelled(config_media_type: str) -> images.Manifest:
    built = images.image(
        [{"root/.aws/credentials": b"[default]\nregion = eu-west-1\n"}]
    )
    config = images.Blob.from_bytes(config_media_type, built.config.read())
    manifest = json.loads(built.data)
    manifest["config"] = config.descriptor()
    return images.Manifest(
        built.media_type,
        images.encode_json(manifest),
        blobs=[config, *built.layers],
    )


@pytest.mark.parametrize(
    "config_media_type",
    [
        "",
        "application/octet-stream",
        "application/json",
        "text/html",
        "application/vnd.oci.empty.v1+json",
        "application/vnd.cncf.helm.config.v1+json",
    ],
)
def test_relabelled_config_is_still_inspected(
    registry, pullgate, config_media_type
):
    image = relabelled(config_media_type)
    images.push(registry.url, NAME, "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "1")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == (
        f"image {image.digest} is denied by policy: no-credential-files: "
        "image contains AWS credentials or an SSH private key: "
        "root/.aws/credentials (layer 0)"
    )
    layer = image.layers[0]
    blob = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")
    assert blob.status_code == 403


def relayered(
    config_media_type: str, layer_media_type: str, compress
) -> images.Manifest:
    """An image whose one layer is compressed by compress and labelled
    layer_media_type, with its config relabelled config_media_type."""
    files = {"root/.aws/credentials": b"[default]\nregion = eu-west-1\n"}
    tar = images.layer_tar(files)
    layer = images.Blob.from_bytes(layer_media_type, compress(tar))
    config_bytes = images.encode_json(
        images.make_config(
            [images.sha256_digest(tar)], "1000:1000", "amd64", "linux", None,
            None, None,
        )
    )
    config = images.Blob.from_bytes(config_media_type, config_bytes)
    return images.image_manifest(config, [layer], "oci", None)


CREDENTIALS_DENIAL = (
    "is denied by policy: no-credential-files: image contains AWS "
    "credentials or an SSH private key: root/.aws/credentials (layer 0)"
)


@pytest.mark.parametrize(
    "config_media_type, layer_media_type, compression",
    [
        (images.OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+bzip2", "bz2"),
        (images.OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+xz", "xz"),
        (
            "application/vnd.acme.tool.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+foo+gzip",
            "gzip",
        ),
        (
            "application/vnd.acme.tool.config.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar+x",
            "gzip",
        ),
    ],
)
def test_any_tar_layer_type_is_inspected(
    registry, pullgate, config_media_type, layer_media_type, compression
):
    compress = {
        "bz2": bz2.compress,
        "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
        "gzip": lambda data: gzip.compress(data, mtime=0),
    }[compression]
    image = relayered(config_media_type, layer_media_type, compress)
    images.push(registry.url, NAME, "layer", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "layer")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == (
        f"image {image.digest} {CREDENTIALS_DENIAL}"
    )


def test_bzip2_tar_under_a_non_tar_type_is_denied(registry, pullgate):
    layer_type = "application/vnd.docker.image.rootfs.diff.tar.bzip2"
    image = relayered(images.OCI_CONFIG, layer_type, bz2.compress)
    images.push(registry.url, NAME, "sniffed", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "sniffed")

    assert response.status_code == 403
    message = response.json()["errors"][0]["message"]
    assert message.startswith(f"image {image.digest} is denied by policy: ")
    assert (
        f"layer {image.layers[0].digest} has media type {layer_type} but its "
        "bytes are a tar archive, which container runtimes would unpack"
    ) in message
