"""Build OCI and Docker images byte by byte and push them to a registry.

Layers are tar archives written with the tarfile module at a fixed mtime,
so the same files always give the same digests. Manifests, indexes and
configs are JSON with a 3-space indent and a trailing newline, a layout
that no JSON library produces by default, so a proxy that re-serializes a
manifest instead of passing its bytes through changes its digest.
"""

import gzip
import hashlib
import io
import json
import tarfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"

# The Accept header that skopeo and containerd send, in their order.
MANIFEST_ACCEPT = ", ".join(
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
)

LAYER_MTIME = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"
REQUEST_TIMEOUT = 120


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode_json(value) -> bytes:
    return (json.dumps(value, indent=3) + "\n").encode()


@dataclass
class Blob:
    """A blob held in memory, or in a file when it is too large for that."""

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    @classmethod
    def from_bytes(cls, media_type: str, data: bytes) -> "Blob":
        return cls(media_type, sha256_digest(data), len(data), data=data)

    def descriptor(self) -> dict:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }

    def read(self) -> bytes:
        """Return the blob's bytes, reading the file when it has one."""
        if self.data is not None:
            return self.data
        return self.path.read_bytes()


@dataclass
class Manifest:
    """An image manifest, artifact manifest, index or manifest list.

    blobs lists the config first, then the layers, and children the
    manifests an index refers to, which must be pushed before it.
    """

    media_type: str
    data: bytes
    blobs: list[Blob] = field(default_factory=list)
    children: list["Manifest"] = field(default_factory=list)
    platform: dict | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def config(self) -> Blob:
        return self.blobs[0]

    @property
    def layers(self) -> list[Blob]:
        return self.blobs[1:]

    def descriptor(self) -> dict:
        result = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            result["platform"] = self.platform
        return result

    def child(self, architecture: str) -> "Manifest":
        """Return the index entry built for architecture."""
        for manifest in self.children:
            if manifest.platform and (
                manifest.platform["architecture"] == architecture
            ):
                return manifest
        raise KeyError(architecture)


@dataclass
class File:
    """One tar entry: a regular file, a directory or a symbolic link."""

    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    kind: str = "file"
    target: str = ""


def layer_tar(files: dict) -> bytes:
    """Return an uncompressed tar archive of files (path -> bytes or File).

    Entries are written in path order, with fixed mtimes and no user or
    group names, so equal input gives equal bytes.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            entry = files[path]
            if isinstance(entry, bytes):
                entry = File(data=entry)
            info = tarfile.TarInfo(path)
            info.mode = entry.mode
            info.uid = entry.uid
            info.gid = entry.gid
            info.mtime = LAYER_MTIME
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def make_layer(files: dict, style: str = "oci", compress: bool = True):
    """Return (layer blob, diff_id) for files in the given manifest style."""
    tar = layer_tar(files)
    diff_id = sha256_digest(tar)
    if not compress:
        media_type = OCI_LAYER if style == "oci" else DOCKER_LAYER
        return Blob.from_bytes(media_type, tar), diff_id
    data = gzip.compress(tar, compresslevel=6, mtime=0)
    media_type = OCI_LAYER_GZIP if style == "oci" else DOCKER_LAYER_GZIP
    return Blob.from_bytes(media_type, data), diff_id


def make_config(
    diff_ids: list[str],
    user: str,
    architecture: str,
    os_name: str,
    variant: str | None,
    env: list[str] | None,
    exposed_ports: list[str] | None,
) -> dict:
    config = {
        "User": user,
        "Env": env
        if env is not None
        else ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["/app/run"],
        "WorkingDir": "/app",
    }
    if exposed_ports:
        config["ExposedPorts"] = {port: {} for port in exposed_ports}
    document = {
        "created": CREATED,
        "architecture": architecture,
        "os": os_name,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": CREATED, "created_by": f"pgtest: layer {number}"}
            for number in range(len(diff_ids))
        ],
    }
    if variant:
        document["variant"] = variant
    return document


def platform_of(architecture: str, os_name: str, variant: str | None) -> dict:
    platform = {"architecture": architecture, "os": os_name}
    if variant:
        platform["variant"] = variant
    return platform


def image(
    layers: list[dict],
    *,
    user: str = "1000:1000",
    architecture: str = "amd64",
    os_name: str = "linux",
    variant: str | None = None,
    style: str = "oci",
    compress: bool = True,
    env: list[str] | None = None,
    exposed_ports: list[str] | None = None,
) -> Manifest:
    """Build an image manifest with one layer per dict in layers.

    style "oci" gives an OCI image manifest, "docker" a Docker image
    manifest version 2, schema 2. user becomes config.User.
    """
    built = [make_layer(files, style, compress) for files in layers]
    config = make_config(
        [diff_id for _, diff_id in built],
        user,
        architecture,
        os_name,
        variant,
        env,
        exposed_ports,
    )
    config_type = OCI_CONFIG if style == "oci" else DOCKER_CONFIG
    config_blob = Blob.from_bytes(config_type, encode_json(config))
    layer_blobs = [blob for blob, _ in built]
    return image_manifest(
        config_blob,
        layer_blobs,
        style,
        platform_of(architecture, os_name, variant),
    )


def image_manifest(
    config_blob: Blob,
    layer_blobs: list[Blob],
    style: str,
    platform: dict | None,
) -> Manifest:
    media_type = OCI_MANIFEST if style == "oci" else DOCKER_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor() for blob in layer_blobs],
    }
    return Manifest(
        media_type,
        encode_json(document),
        blobs=[config_blob, *layer_blobs],
        platform=platform,
    )


def index(manifests: list[Manifest], style: str = "oci") -> Manifest:
    """Build an OCI index ("oci") or Docker manifest list ("docker")."""
    media_type = OCI_INDEX if style == "oci" else DOCKER_LIST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [manifest.descriptor() for manifest in manifests],
    }
    return Manifest(media_type, encode_json(document), children=list(manifests))


def signature_artifact(subject: Manifest, reference: str) -> Manifest:
    """Build a cosign-like signature of subject.

    It is an OCI manifest whose config is the empty descriptor and whose
    one layer is a simple-signing payload naming the subject's digest.
    """
    payload = encode_json(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": subject.digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    config_blob = Blob.from_bytes(OCI_EMPTY, b"{}")
    layer_blob = Blob.from_bytes(COSIGN_SIGNATURE, payload)
    layer_descriptor = layer_blob.descriptor()
    layer_descriptor["annotations"] = {
        "dev.cosignproject.cosign/signature": "MEUCIQ=="
    }
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": COSIGN_SIGNATURE,
        "config": config_blob.descriptor(),
        "layers": [layer_descriptor],
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    return Manifest(
        OCI_MANIFEST, encode_json(document), blobs=[config_blob, layer_blob]
    )


def big_image(workdir: Path, file_size: int) -> Manifest:
    """Build an OCI image with one uncompressed layer holding one file of
    file_size bytes, streamed to a file in workdir and hashed on the way,
    so the layer never sits in memory."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "big-layer.tar"
    info = tarfile.TarInfo("data/big.bin")
    info.size = file_size
    info.mode = 0o644
    info.mtime = LAYER_MTIME
    chunk = bytes(range(256)) * 4096
    hasher = hashlib.sha256()
    size = 0

    def write(out, data: bytes) -> None:
        nonlocal size
        out.write(data)
        hasher.update(data)
        size += len(data)

    with open(path, "wb") as out:
        write(out, info.tobuf(format=tarfile.USTAR_FORMAT))
        remaining = file_size
        while remaining > 0:
            piece = chunk[: min(len(chunk), remaining)]
            write(out, piece)
            remaining -= len(piece)
        write(out, b"\0" * (-file_size % tarfile.BLOCKSIZE))
        write(out, b"\0" * (2 * tarfile.BLOCKSIZE))
    digest = "sha256:" + hasher.hexdigest()
    layer_blob = Blob(OCI_LAYER, digest, size, path=path)
    config = make_config([digest], "1000", "amd64", "linux", None, None, None)
    config_blob = Blob.from_bytes(OCI_CONFIG, encode_json(config))
    return image_manifest(
        config_blob, [layer_blob], "oci", platform_of("amd64", "linux", None)
    )


class PushError(Exception):
    """The registry rejected a blob or manifest upload."""


def _check(response: requests.Response, expected: int, what: str) -> None:
    if response.status_code != expected:
        raise PushError(
            f"{what}: {response.request.method} {response.url} returned "
            f"{response.status_code}: {response.text[:500]}"
        )


def push_blob(session: requests.Session, base_url: str, name: str, blob: Blob):
    """Upload blob monolithically unless the repository already has it."""
    blob_url = f"{base_url}/v2/{name}/blobs/{blob.digest}"
    if session.head(blob_url, timeout=REQUEST_TIMEOUT).status_code == 200:
        return
    response = session.post(
        f"{base_url}/v2/{name}/blobs/uploads/", timeout=REQUEST_TIMEOUT
    )
    _check(response, 202, f"start upload of {blob.digest}")
    location = urllib.parse.urljoin(base_url, response.headers["Location"])
    separator = "&" if "?" in location else "?"
    upload_url = (
        f"{location}{separator}digest={urllib.parse.quote(blob.digest)}"
    )
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(blob.size),
    }
    if blob.data is not None:
        response = session.put(
            upload_url, data=blob.data, headers=headers, timeout=REQUEST_TIMEOUT
        )
    else:
        with open(blob.path, "rb") as body:
            response = session.put(
                upload_url, data=body, headers=headers, timeout=600
            )
    _check(response, 201, f"upload of {blob.digest}")


def push(
    base_url: str,
    name: str,
    reference: str,
    manifest: Manifest,
    session: requests.Session | None = None,
) -> str:
    """Push manifest with its blobs and children, tagged reference.

    Children are pushed by digest first, because the registry rejects an
    index whose manifests it does not have. Returns the manifest digest
    that the registry reports.
    """
    session = session or requests.Session()
    for child in manifest.children:
        push(base_url, name, child.digest, child, session)
    for blob in manifest.blobs:
        push_blob(session, base_url, name, blob)
    response = session.put(
        f"{base_url}/v2/{name}/manifests/{reference}",
        data=manifest.data,
        headers={"Content-Type": manifest.media_type},
        timeout=REQUEST_TIMEOUT,
    )
    _check(response, 201, f"manifest {name}:{reference}")
    digest = response.headers["Docker-Content-Digest"]
    if digest != manifest.digest:
        raise PushError(
            f"registry stored {name}:{reference} as {digest}, "
            f"expected {manifest.digest}"
        )
    return digest


def get_manifest(
    base_url: str,
    name: str,
    reference: str,
    method: str = "GET",
    session: requests.Session | None = None,
) -> requests.Response:
    """Request a manifest with the Accept header that skopeo sends."""
    session = session or requests.Session()
    return session.request(
        method,
        f"{base_url}/v2/{name}/manifests/{reference}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=REQUEST_TIMEOUT,
    )
