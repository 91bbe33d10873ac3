"""The base image of a pulled image, by lineage and by annotation.

An image built FROM another one starts with all of its layers. Once
pullgate has inspected the base, the document of every image built on it
names the base; the manifest's base image annotations name it directly.
"""

import json

from pgtest import images
from pgtest.stored import stored_document

BASE_LAYER = {"etc/os-release": b'ID=debian\nVERSION_ID="12"\n'}
APP_LAYER = {"srv/app/run": images.File(b"#!/bin/sh\n", mode=0o755)}
TOOL_LAYER = {"usr/local/bin/tool": images.File(b"#!/bin/sh\n", mode=0o755)}


def pull(proxy, name: str, tag: str) -> None:
    response = images.get_manifest(proxy.url, name, tag)
    assert response.status_code == 200, response.text


def test_longest_known_prefix_is_the_base(registry, pullgate):
    base = images.image([BASE_LAYER])
    middle = images.image([BASE_LAYER, TOOL_LAYER])
    app = images.image([BASE_LAYER, TOOL_LAYER, APP_LAYER])
    images.push(registry.url, "team/base", "12", base)
    images.push(registry.url, "team/middle", "1", middle)
    images.push(registry.url, "team/app", "1", app)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    pull(proxy, "team/base", "12")
    pull(proxy, "team/middle", "1")
    pull(proxy, "team/app", "1")

    assert stored_document(proxy, base.digest)["base_image"] is None
    assert stored_document(proxy, middle.digest)["base_image"] == {
        "name": "docker.io/team/base:12",
        "digest": base.digest,
        "source": "lineage",
    }
    assert stored_document(proxy, app.digest)["base_image"] == {
        "name": "docker.io/team/middle:1",
        "digest": middle.digest,
        "source": "lineage",
    }


def test_unknown_base_is_null(registry, pullgate):
    app = images.image([BASE_LAYER, APP_LAYER])
    images.push(registry.url, "team/app", "2", app)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    pull(proxy, "team/app", "2")

    assert stored_document(proxy, app.digest)["base_image"] is None


def test_annotation_names_the_base(registry, pullgate):
    base = images.image([BASE_LAYER])
    built = images.image([BASE_LAYER, APP_LAYER])
    manifest = json.loads(built.data)
    manifest["annotations"] = {
        "org.opencontainers.image.base.name": "docker.io/library/debian:12",
        "org.opencontainers.image.base.digest": base.digest,
    }
    annotated = images.Manifest(
        built.media_type, images.encode_json(manifest), blobs=built.blobs
    )
    images.push(registry.url, "team/base", "12", base)
    images.push(registry.url, "team/annotated", "1", annotated)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    pull(proxy, "team/base", "12")
    pull(proxy, "team/annotated", "1")

    # The annotation wins over the lineage pullgate knows.
    assert stored_document(proxy, annotated.digest)["base_image"] == {
        "name": "docker.io/library/debian:12",
        "digest": base.digest,
        "source": "annotation",
    }


EVIL_LAYER = {"srv/evil/run": images.File(b"#!/bin/sh\nexit 0\n", mode=0o755)}


def forged_image(layers: list[dict], claimed: list[dict]) -> images.Manifest:
    """Return an image of layers whose config claims the diff_ids of the
    layers in claimed, which nothing in the image backs."""
    blobs = [images.make_layer(files)[0] for files in layers]
    diff_ids = [images.make_layer(files)[1] for files in claimed]
    config = images.make_config(
        diff_ids, "1000:1000", "amd64", "linux", None, None, None
    )
    config_blob = images.Blob.from_bytes(images.OCI_CONFIG, images.encode_json(config))
    return images.image_manifest(
        config_blob, blobs, "oci", images.platform_of("amd64", "linux", None)
    )


def test_forged_diff_ids_keep_the_recorded_base(registry, pullgate):
    # An image whose config lists the base's diff_ids over other layers
    # must not take over the base's lineage record.
    base = images.image([BASE_LAYER])
    forged = forged_image([EVIL_LAYER], claimed=[BASE_LAYER])
    app = images.image([BASE_LAYER, APP_LAYER])
    images.push(registry.url, "team/base", "12", base)
    images.push(registry.url, "evil/forged", "1", forged)
    images.push(registry.url, "team/app", "3", app)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    pull(proxy, "team/base", "12")
    pull(proxy, "evil/forged", "1")
    pull(proxy, "team/app", "3")

    assert stored_document(proxy, app.digest)["base_image"] == {
        "name": "docker.io/team/base:12",
        "digest": base.digest,
        "source": "lineage",
    }


def test_forged_diff_ids_claim_no_base(registry, pullgate):
    # Claiming the base's diff_ids without its layers names no base.
    base = images.image([BASE_LAYER])
    forged = forged_image([EVIL_LAYER, APP_LAYER], claimed=[BASE_LAYER, APP_LAYER])
    images.push(registry.url, "team/base", "12", base)
    images.push(registry.url, "evil/forged", "2", forged)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    pull(proxy, "team/base", "12")
    pull(proxy, "evil/forged", "2")

    assert stored_document(proxy, forged.digest)["base_image"] is None


def test_copy_of_the_base_does_not_take_over(registry, pullgate):
    base = images.image([BASE_LAYER])
    # The same layer blob under another name and another config: a copy
    # pulled later must not become the base of images built on the first.
    copy = images.image([BASE_LAYER], user="1234")
    app = images.image([BASE_LAYER, APP_LAYER])
    images.push(registry.url, "team/base", "12", base)
    images.push(registry.url, "other/base", "12", copy)
    images.push(registry.url, "team/app", "3", app)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    pull(proxy, "team/base", "12")
    pull(proxy, "other/base", "12")
    pull(proxy, "team/app", "3")

    assert stored_document(proxy, app.digest)["base_image"] == {
        "name": "docker.io/team/base:12",
        "digest": base.digest,
        "source": "lineage",
    }


def test_denied_image_is_never_a_base(registry, pullgate):
    leaky = images.image(
        [
            BASE_LAYER,
            {"root/.aws/credentials": b"[default]\nregion = eu-west-1\n"},
        ]
    )
    app = images.image(
        [
            BASE_LAYER,
            {"root/.aws/credentials": b"[default]\nregion = eu-west-1\n"},
            APP_LAYER,
        ]
    )
    images.push(registry.url, "team/leaky", "1", leaky)
    images.push(registry.url, "team/app", "4", app)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    assert images.get_manifest(proxy.url, "team/leaky", "1").status_code == 403
    assert images.get_manifest(proxy.url, "team/app", "4").status_code == 403

    assert stored_document(proxy, app.digest)["base_image"] is None
