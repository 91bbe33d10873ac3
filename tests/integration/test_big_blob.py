"""A 1 GiB layer streams through pullgate in bounded memory."""

import hashlib
import os
import shutil

from pgtest import images, skopeo

NAME = "team/big"
TAG = "1"
FILE_SIZE = 1 << 30
MIB = 1 << 20
# Peak resident memory allowed while a 1 GiB layer passes through. ASan's
# shadow memory and its quarantine of freed blocks add hundreds of MiB (360
# MiB measured in this test with Debian 12's GCC 12), so a build with
# --enable-sanitizers gets 512 MiB, which still fails a daemon that holds
# the whole layer in memory.
VM_HWM_MAX = (512 if os.environ.get("PG_SANITIZERS") else 64) * MIB


def sha256_of_file(path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(4 * MIB):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def test_big_layer_streams(registry, pullgate, skopeo_client, tmp_path):
    # The verdict needs the whole layer fetched and read, which can take
    # longer than the default 60 s wait on a loaded two-core machine.
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"verdict_wait_seconds": 600},
    )
    image = images.big_image(tmp_path / "build", FILE_SIZE)
    layer = image.layers[0]
    images.push(registry.url, NAME, TAG, image)
    layer.path.unlink()
    out = tmp_path / "copy"

    try:
        result, _ = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}", out)
        vm_hwm = proxy.vm_hwm_bytes()
        print(f"pullgate VmHWM after a 1 GiB layer: {vm_hwm / MIB:.1f} MiB")

        assert result.returncode == 0, result.stderr
        assert skopeo.dir_manifest(out) == image.data
        copied = skopeo.dir_blob(out, layer.digest)
        assert copied.stat().st_size == layer.size
        assert sha256_of_file(copied) == layer.digest
        assert vm_hwm < VM_HWM_MAX
    finally:
        shutil.rmtree(out, ignore_errors=True)
