"""Hostile and unusual layers pulled through pullgate.

Each test pushes an image with one such layer to a docker-registry on
127.0.0.1, requests it through pullgate, checks the status, the OCI error
code and the message a client receives, and then checks that pullgate is still
up and serves a clean image. Where an image is allowed, the image document
that pullgate stored is read back from its LMDB environment with mdb_dump
(lmdb-utils), a reader independent of pullgate.
"""

import hashlib
import time
from pathlib import Path

import pytest

from pgtest import images, layers, skopeo
from pgtest.stored import stored_document

TAG = "1"
CACHE_ENTRIES = {"blobs", "tmp", "lmdb", "lock"}
HOST_FILES = [Path("/etc/passwd"), Path("/etc/shadow")]
# Seconds a request for a hostile layer may take. A reader that loops on a
# symlink cycle or waits for bytes that never come exceeds it.
REQUEST_SECONDS = 60


def clean_image() -> images.Manifest:
    return images.image([{"app/run": images.File(b"#!/bin/sh\n", 0o755)}])


def denied_message(image: images.Manifest, reason: str) -> str:
    """Return the message of a 403 for an image whose inspection failed
    under the default policy (on_inspection_failure: deny)."""
    return (
        f"image {image.digest} is denied by policy: inspection-failed: "
        f"inspection failed: {reason}"
    )


def push_and_get(registry, proxy, name: str, image: images.Manifest):
    images.push(registry.url, name, TAG, image)
    started = time.monotonic()
    response = images.get_manifest(proxy.url, name, TAG)
    assert time.monotonic() - started < REQUEST_SECONDS
    return response


def assert_denied(response, message: str) -> None:
    assert response.status_code == 403
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == message


def assert_still_serving(registry, proxy, skopeo_client) -> None:
    """Check that pullgate is alive and pulls a clean image with skopeo."""
    image = clean_image()
    images.push(registry.url, "team/clean", TAG, image)

    health = proxy.get("/healthz")
    result, out = skopeo_client.copy(f"{proxy.host}/team/clean:{TAG}")

    assert proxy.running()
    assert health.status_code == 200
    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == image.data


def layer_files(document: dict, index: int) -> list[dict]:
    return [f for f in document["files"] if f["layer"] == index]


def file_hashes() -> dict:
    return {
        path: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in HOST_FILES
    }


def test_tar_bomb_denied(registry, pullgate, skopeo_client):
    bomb, diff_id = layers.tar_bomb(32 * 1024 * 1024)
    image = layers.image_of([(bomb, diff_id)])
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"inspector": {"compression_ratio_max": 100}},
    )

    response = push_and_get(registry, proxy, "team/bomb", image)

    assert bomb.size < 64 * 1024
    assert_denied(
        response,
        denied_message(
            image,
            f"layer {bomb.digest} decompresses to more than 100 times its "
            "compressed size (inspector.compression_ratio_max)",
        ),
    )
    assert_still_serving(registry, proxy, skopeo_client)


def test_path_traversal_listed(registry, pullgate, skopeo_client, tmp_path):
    before = file_hashes()
    blob, diff_id = layers.traversal_layer()
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/climb", image)
    result, out = skopeo_client.copy(f"{proxy.host}/team/climb:{TAG}")

    assert response.status_code == 200
    assert response.content == image.data
    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == image.data
    files = layer_files(stored_document(proxy, image.digest), 0)
    assert [f["path"] for f in files] == ["etc/passwd", "etc/shadow"]
    assert files[0]["raw_path"] == "../../etc/passwd"
    # Only a ".." segment changes which file a name refers to, so the
    # absolute name keeps no raw form.
    assert "raw_path" not in files[1]
    assert {p.name for p in proxy.cache_dir.iterdir()} == CACHE_ENTRIES
    assert file_hashes() == before
    names = ("passwd", "shadow")
    written = [p for p in tmp_path.rglob("*") if p.name in names]
    assert written == []
    assert_still_serving(registry, proxy, skopeo_client)


def test_symlink_loop_listed(registry, pullgate, skopeo_client):
    blob, diff_id = layers.symlink_loop_layer()
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/loop", image)

    assert response.status_code == 200
    files = layer_files(stored_document(proxy, image.digest), 0)
    assert [(f["path"], f["type"], f["link"]) for f in files] == [
        ("a", "symlink", "b"),
        ("b", "symlink", "a"),
        ("a", "symlink", "."),
    ]
    assert_still_serving(registry, proxy, skopeo_client)


def test_truncated_gzip_denied(registry, pullgate, skopeo_client):
    blob, diff_id = layers.truncated_gzip_layer()
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/cut", image)

    # "truncated gzip input" is libarchive's text (3.6.2, its gzip filter)
    # for a gzip member that ends before its trailer.
    assert_denied(
        response,
        denied_message(
            image,
            f"layer {blob.digest} is not a valid tar stream: "
            "truncated gzip input",
        ),
    )
    assert_still_serving(registry, proxy, skopeo_client)


def test_many_entries_allowed(registry, pullgate, skopeo_client):
    blob, diff_id = layers.many_entries_layer(10_000)
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/many", image)

    assert response.status_code == 200
    document = stored_document(proxy, image.digest)
    assert document["layers"][0]["entries"] == 10_000
    assert len(layer_files(document, 0)) == 10_000
    assert_still_serving(registry, proxy, skopeo_client)


def test_entries_over_limit_denied(registry, pullgate, skopeo_client):
    blob, diff_id = layers.many_entries_layer(10_000)
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"inspector": {"layer_entries_max": 9999}},
    )

    response = push_and_get(registry, proxy, "team/many", image)

    assert_denied(
        response,
        denied_message(
            image,
            f"layer {blob.digest} has more than 9999 entries "
            "(inspector.layer_entries_max)",
        ),
    )
    assert_still_serving(registry, proxy, skopeo_client)


FILES = {
    "app/run": b"#!/bin/sh\nexec /app/server\n",
    "app/README": b"an image with one layer\n" * 40,
}


def test_zstd_layer_allowed(registry, pullgate, skopeo_client):
    blob, diff_id = layers.zstd_layer(FILES)
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/zstd", image)
    result, out = skopeo_client.copy(f"{proxy.host}/team/zstd:{TAG}")

    assert blob.read()[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
    assert response.status_code == 200
    assert result.returncode == 0, result.stderr
    assert skopeo.dir_blob(out, blob.digest).read_bytes() == blob.read()
    files = layer_files(stored_document(proxy, image.digest), 0)
    assert [f["path"] for f in files] == sorted(FILES)
    assert_still_serving(registry, proxy, skopeo_client)


def test_gzip_labelled_zstd_listed(registry, pullgate, skopeo_client):
    blob, diff_id = layers.gzip_labelled_zstd_layer(FILES)
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/mislabelled", image)

    assert blob.read()[:2] == b"\x1f\x8b"  # the gzip magic
    assert response.status_code == 200
    document = stored_document(proxy, image.digest)
    assert document["layers"][0]["media_type"] == layers.OCI_LAYER_ZSTD
    assert [f["path"] for f in layer_files(document, 0)] == sorted(FILES)
    assert_still_serving(registry, proxy, skopeo_client)


def test_estargz_layer_allowed(registry, pullgate, skopeo_client):
    blob, diff_id = layers.estargz_layer(FILES)
    image = layers.image_of([(blob, diff_id)])
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = push_and_get(registry, proxy, "team/stargz", image)
    result, out = skopeo_client.copy(f"{proxy.host}/team/stargz:{TAG}")

    # One gzip member per file, one for the TOC and one for the footer.
    assert blob.read().count(b"\x1f\x8b\x08") >= len(FILES) + 2
    # The footer's extra field locates the TOC's gzip member.
    footer = blob.read()[-layers.STARGZ_FOOTER_BYTES :]
    assert footer[32:38] == layers.STARGZ_FOOTER_MAGIC
    toc_offset = int(footer[16:32], 16)
    assert blob.read()[toc_offset : toc_offset + 3] == b"\x1f\x8b\x08"
    assert response.status_code == 200
    assert result.returncode == 0, result.stderr
    files = layer_files(stored_document(proxy, image.digest), 0)
    assert [f["path"] for f in files] == [
        *sorted(FILES),
        layers.STARGZ_TOC_NAME,
    ]
    assert_still_serving(registry, proxy, skopeo_client)
