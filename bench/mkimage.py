#!/usr/bin/python3
"""Build a one-layer OCI image for the benchmark and push it to a registry.

The layer is a gzip tar of one file of pseudo-random bytes, so it does not
compress and its blob is a little larger than the file. The bytes come from
random.Random(seed), and every timestamp is fixed, so a given size and seed
always give the same digests. The config runs as user 1000:1000, which
pullgate's built-in policy allows without a warning.

Prints the image's digests and sizes as KEY=VALUE lines for bench/run.
"""

import argparse
import gzip
import hashlib
import json
import random
import sys
import tarfile
import urllib.parse
from pathlib import Path

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MIB = 1 << 20
# Fixed modification time of every tar entry: 2024-01-01T00:00:00Z.
MTIME = 1704067200
REQUEST_TIMEOUT = 30
# A monolithic PUT of a large blob: the registry hashes and stores it
# before it returns 201.
UPLOAD_TIMEOUT = 600


class HashingWriter:
    """A write-only file that passes bytes on and counts and hashes them."""

    def __init__(self, target):
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self):
        self.target.flush()

    @property
    def digest(self):
        return "sha256:" + self.sha256.hexdigest()


class RandomReader:
    """A read-only file of size pseudo-random bytes from random.Random(seed)."""

    def __init__(self, size, seed):
        self.remaining = size
        self.random = random.Random(seed)

    def read(self, size=-1):
        if size < 0 or size > self.remaining:
            size = self.remaining
        size = min(size, 4 * MIB)
        self.remaining -= size
        return self.random.randbytes(size)


def tar_entry(name, kind, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uid = info.gid = 1000
    info.uname = info.gname = "bench"
    info.mtime = MTIME
    return info


def write_layer(path, size, seed):
    """Write the gzip tar layer. Returns (blob digest, blob size, diff_id)."""
    with open(path, "wb") as raw:
        compressed = HashingWriter(raw)
        # The data does not compress at any level, and 1 is the fastest
        # level that compresses (level 0 only stores).
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, compresslevel=1, mtime=0
        ) as gz:
            uncompressed = HashingWriter(gz)
            with tarfile.open(
                fileobj=uncompressed, mode="w|", format=tarfile.USTAR_FORMAT
            ) as tar:
                tar.addfile(tar_entry("srv/", tarfile.DIRTYPE))
                tar.addfile(tar_entry("srv/bench/", tarfile.DIRTYPE))
                tar.addfile(
                    tar_entry("srv/bench/random.bin", tarfile.REGTYPE, size),
                    RandomReader(size, seed),
                )
    return compressed.digest, compressed.size, uncompressed.digest


def json_bytes(document):
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def build(directory, size, seed):
    """Write layer, config and manifest into directory.

    Returns their digests, sizes and paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    layer_path = directory / "layer.tar.gz"
    layer_digest, layer_size, diff_id = write_layer(layer_path, size, seed)

    config = json_bytes(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "User": "1000:1000",
                "Cmd": ["/bin/true"],
                "WorkingDir": "/srv/bench",
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    )
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    (directory / "config.json").write_bytes(config)

    manifest = json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": OCI_LAYER_GZIP,
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        }
    )
    (directory / "manifest.json").write_bytes(manifest)
    return {
        "manifest_digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
        "manifest_size": len(manifest),
        "config_digest": config_digest,
        "config_size": len(config),
        "layer_digest": layer_digest,
        "layer_size": layer_size,
        "layer_path": layer_path,
        "config_path": directory / "config.json",
        "manifest_path": directory / "manifest.json",
    }


def check_status(response, expected, action):
    if response.status_code != expected:
        sys.exit(
            f"mkimage.py: {action} failed: HTTP {response.status_code} "
            f"(expected {expected}): {response.text[:500]}"
        )


def push_blob(session, base_url, name, digest, path):
    """Upload one blob with POST, then a monolithic PUT ?digest=."""
    response = session.post(
        f"{base_url}/v2/{name}/blobs/uploads/", timeout=REQUEST_TIMEOUT
    )
    check_status(response, 202, f"starting the upload of {digest}")
    location = urllib.parse.urljoin(base_url, response.headers["Location"])
    separator = "&" if "?" in location else "?"
    url = f"{location}{separator}digest={urllib.parse.quote(digest)}"
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(path.stat().st_size),
    }
    with open(path, "rb") as body:
        response = session.put(url, data=body, headers=headers, timeout=UPLOAD_TIMEOUT)
    check_status(response, 201, f"uploading {digest}")


def push(base_url, name, tag, image):
    session = requests.Session()
    push_blob(session, base_url, name, image["config_digest"], image["config_path"])
    push_blob(session, base_url, name, image["layer_digest"], image["layer_path"])
    response = session.put(
        f"{base_url}/v2/{name}/manifests/{tag}",
        data=image["manifest_path"].read_bytes(),
        headers={"Content-Type": OCI_MANIFEST},
        timeout=REQUEST_TIMEOUT,
    )
    check_status(response, 201, f"pushing the manifest {name}:{tag}")
    stored = response.headers.get("Docker-Content-Digest")
    if stored != image["manifest_digest"]:
        sys.exit(
            f"mkimage.py: the registry stored {name}:{tag} as {stored}, "
            f"expected {image['manifest_digest']}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", required=True, type=Path, help="directory for the image files"
    )
    parser.add_argument(
        "--blob-mib",
        type=int,
        default=256,
        help="size of the file in the layer, in MiB (default 256)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the random bytes (default 1)"
    )
    parser.add_argument(
        "--push", metavar="URL", help="registry base URL, e.g. http://127.0.0.1:5000"
    )
    parser.add_argument("--name", default="bench/image", help="repository name")
    parser.add_argument("--tag", default="1", help="tag of the pushed manifest")
    args = parser.parse_args()
    if args.blob_mib < 1:
        parser.error("--blob-mib must be at least 1")

    image = build(args.dir, args.blob_mib * MIB, args.seed)
    if args.push:
        push(args.push.rstrip("/"), args.name, args.tag, image)
    for key in (
        "manifest_digest",
        "manifest_size",
        "config_digest",
        "config_size",
        "layer_digest",
        "layer_size",
    ):
        print(f"{key}={image[key]}")


if __name__ == "__main__":
    main()
