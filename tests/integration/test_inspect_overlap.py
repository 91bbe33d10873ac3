"""Layers are read while they download, and only verified bytes get a verdict.

The upstream is pgtest.faulty's. In "stall" mode it sends the first part
of a layer and waits, so a layer reader that waited for the whole download
would report nothing before the upstream resumes. In "corrupt_tail" mode
it sends a layer whose second half does not hash to its digest.
"""

import concurrent.futures
import re
import time

from pgtest import images, layers

NAME = "team/overlap"
TAG = "1"
PATH_LENGTH_MAX = 100
LOG_WAIT_SECONDS = 15

def noise(size: int) -> bytes:
    """Return size bytes of a fixed xorshift sequence, which deflate
    cannot shrink."""
    state = 2463534242
    out = bytearray(size)
    for i in range(size):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        out[i] = state & 0xFF
    return bytes(out)


NOISE = noise(4 * 1024 * 1024)


def layer_read_lines(proxy, digest: str) -> list[str]:
    return [
        line
        for line in proxy.log_text().splitlines()
        if "layer_read" in line and f"digest={digest}" in line
    ]


def wait_for_layer_read(proxy, digest: str) -> list[str]:
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        lines = layer_read_lines(proxy, digest)
        if lines or time.monotonic() >= deadline:
            return lines
        time.sleep(0.05)


def test_layer_failure_before_download_ends(faulty_factory, pullgate):
    long_name = "d/" + "x" * 198
    built = layers.gzip_layer(
        [
            layers.tar_entry(long_name, b"first entry\n"),
            layers.tar_entry("data/noise", NOISE),
        ]
    )
    image = layers.image_of([built])
    layer = image.layers[0]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, "stall")
    upstream.stall_at = 1024 * 1024
    proxy = pullgate(
        upstreams={"docker.io": upstream.url},
        config={"inspector": {"path_length_max": PATH_LENGTH_MAX}},
    )

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(images.get_manifest, proxy.url, NAME, TAG)
        assert upstream.stalled.wait(LOG_WAIT_SECONDS)
        lines = wait_for_layer_read(proxy, layer.digest)
        resumed_early = upstream.resume.is_set()
        upstream.resume.set()
        response = pending.result(timeout=60)

    assert layer.size > 4 * 1024 * 1024
    assert not resumed_early
    assert len(lines) == 1, proxy.log_text()
    assert "result=failed status=403 error=DENIED" in lines[0]
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"image {image.digest} is denied by policy: inspection-failed: "
        f"inspection failed: entry 1 of layer {layer.digest} has a path of "
        f"200 bytes, more than {PATH_LENGTH_MAX} "
        "(inspector.path_length_max)"
    )
    # The verdict waited for the download: the blob is verified and stored.
    assert proxy.blob_path(layer.digest).exists()


def test_clean_layer_read_during_download(faulty_factory, pullgate):
    built = layers.gzip_layer(
        [
            layers.tar_entry("app/run", b"#!/bin/sh\necho run\n", mode=0o755),
            layers.tar_entry("data/noise", NOISE),
        ]
    )
    image = layers.image_of([built])
    layer = image.layers[0]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, "stall")
    proxy = pullgate(upstreams={"docker.io": upstream.url})

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(images.get_manifest, proxy.url, NAME, TAG)
        assert upstream.stalled.wait(LOG_WAIT_SECONDS)
        # Half of the layer is in; its reader waits for the rest.
        time.sleep(0.5)
        lines_while_stalled = layer_read_lines(proxy, layer.digest)
        upstream.resume.set()
        response = pending.result(timeout=60)

    assert lines_while_stalled == []
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == image.digest
    lines = wait_for_layer_read(proxy, layer.digest)
    assert len(lines) == 1
    assert "result=ok entries=2" in lines[0]


def test_digest_mismatch_mid_stream(faulty_factory, pullgate):
    built = layers.gzip_layer(
        [
            layers.tar_entry("app/run", b"#!/bin/sh\necho run\n", mode=0o755),
            layers.tar_entry("data/noise", NOISE),
        ]
    )
    image = layers.image_of([built])
    layer = image.layers[0]
    upstream = faulty_factory(NAME, TAG, image, layer.digest, "corrupt_tail")
    upstream.resume.set()
    proxy = pullgate(upstreams={"docker.io": upstream.url})

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 502
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert re.fullmatch(
        f"upstream docker.io sent blob {layer.digest} of {NAME} with the "
        f"wrong bytes: bytes hash to sha256:[0-9a-f]{{64}}, not the expected "
        f"{layer.digest}; nothing was cached",
        error["message"],
    ), error["message"]
    assert not proxy.blob_path(layer.digest).exists()
    assert len(wait_for_layer_read(proxy, layer.digest)) == 1

    # The upstream serves the right bytes now, and the next pull inspects
    # them from the start.
    upstream.broken_digest = ""
    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert proxy.blob_path(layer.digest).exists()
    lines = layer_read_lines(proxy, layer.digest)
    assert len(lines) == 2
    assert "result=ok entries=2" in lines[1]
