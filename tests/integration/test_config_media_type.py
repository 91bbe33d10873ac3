"""An image is gated whatever media type its config descriptor states.

moby runs images whose config media type is empty, application/json,
application/octet-stream or text/html, values that old tools wrote by
mistake, and containerd unpacks tar layers whatever the config's type. A
manifest that only relabels its config must not pass as an artifact.
"""

import json

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
        "image contains a cloud credential or SSH private key file "
        "(root/.aws/credentials)"
    )
    layer = image.layers[0]
    blob = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")
    assert blob.status_code == 403
