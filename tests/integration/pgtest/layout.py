"""Write images built with pgtest.images as an OCI image layout, an OCI
archive or a `docker save` archive, for `pullgate inspect` to read."""

import io
import json
import tarfile
from pathlib import Path

from .images import LAYER_MTIME, Manifest, encode_json

REF_NAME = "org.opencontainers.image.ref.name"


def _blob_path(root: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":", 1)
    return root / "blobs" / algorithm / hexdigest


def write_layout(root: Path, manifest: Manifest, tag: str | None = None) -> Path:
    """Write manifest, its children and blobs as an OCI image layout in
    root, with index.json naming it (and tag in the ref.name annotation)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}\n')

    def put(data: bytes, digest: str) -> None:
        path = _blob_path(root, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_manifest(item: Manifest) -> None:
        for child in item.children:
            put_manifest(child)
        for blob in item.blobs:
            put(blob.read(), blob.digest)
        put(item.data, item.digest)

    put_manifest(manifest)
    descriptor = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": manifest.size,
    }
    if tag is not None:
        descriptor["annotations"] = {REF_NAME: tag}
    index = {"schemaVersion": 2, "manifests": [descriptor]}
    (root / "index.json").write_bytes(encode_json(index))
    return root


def blob_file(root: Path, digest: str) -> Path:
    """Return the path of a blob in the layout at root."""
    return _blob_path(root, digest)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = LAYER_MTIME
    tar.addfile(info, io.BytesIO(data))


def tar_directory(root: Path, out: Path) -> Path:
    """Write every file under root into the tar file out (an OCI archive
    when root is a layout), with paths relative to root."""
    with tarfile.open(out, "w") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                _add(tar, str(path.relative_to(root)), path.read_bytes())
    return out


def write_docker_archive(out: Path, manifest: Manifest, repo_tag: str) -> Path:
    """Write a `docker save` archive without an OCI layout: manifest.json,
    the config as HEX.json and each layer as HEX/layer.tar. The manifest's
    layers must be uncompressed, as docker save writes them."""
    config = manifest.config
    config_name = config.digest.split(":", 1)[1] + ".json"
    layer_names = []
    with tarfile.open(out, "w") as tar:
        _add(tar, config_name, config.read())
        for layer in manifest.layers:
            name = layer.digest.split(":", 1)[1] + "/layer.tar"
            layer_names.append(name)
            _add(tar, name, layer.read())
        entry = {"Config": config_name, "RepoTags": [repo_tag],
                 "Layers": layer_names}
        _add(tar, "manifest.json", json.dumps([entry]).encode())
    return out
