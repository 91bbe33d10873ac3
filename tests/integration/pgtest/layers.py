"""Build hostile and unusual layers, and images around them.

Each builder returns a layer Blob (see images.py) and the diff_id that the
image config lists for it. Tar entries are written one by one with
tarfile.TarInfo, which keeps a name exactly as given ("../../etc/passwd",
"/etc/shadow", a name used twice), unlike TarFile.add, which cleans it.
"""

import gzip
import io
import json
import struct
import subprocess
import tarfile

from . import images

OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

# The name and footer of an eStargz layer, from the eStargz specification
# (containerd/stargz-snapshotter, docs/estargz.md).
STARGZ_TOC_NAME = "stargz.index.json"
STARGZ_FOOTER_MAGIC = b"STARGZ"
STARGZ_FOOTER_BYTES = 51


def tar_entry(name: str, data: bytes = b"", kind: str = "file",
              link: str = "", mode: int = 0o644) -> bytes:
    """Return one PAX tar entry (header, data and padding), no end marker."""
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.mtime = images.LAYER_MTIME
    if kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = link
    elif kind == "dir":
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(data)
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    padding = b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    return header + data + padding


def tar_end() -> bytes:
    """Return the two zero blocks that end a tar archive."""
    return b"\0" * (2 * tarfile.BLOCKSIZE)


def tar_of(entries: list[bytes]) -> bytes:
    return b"".join(entries) + tar_end()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def zstd_bytes(data: bytes) -> bytes:
    """Compress data with the zstd command-line tool."""
    return subprocess.run(
        ["zstd", "-3", "-q", "-c"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout


def layer(tar: bytes, compressed: bytes, media_type: str):
    """Return (blob, diff_id) of compressed bytes whose tar is tar."""
    blob = images.Blob.from_bytes(media_type, compressed)
    return blob, images.sha256_digest(tar)


def gzip_layer(entries: list[bytes], media_type: str = images.OCI_LAYER_GZIP):
    tar = tar_of(entries)
    return layer(tar, gzip_bytes(tar), media_type)


def tar_bomb(zero_bytes: int):
    """A gzip layer of one file of zero_bytes zeros. Deflate shrinks zeros
    about 1000 times, so a few MiB make a blob of a few KiB."""
    return gzip_layer([tar_entry("data/zeros", b"\0" * zero_bytes)])


def traversal_layer():
    """A layer whose names climb out of the root or start at it."""
    return gzip_layer(
        [
            tar_entry("../../etc/passwd", b"pgtest:x:0:0::/root:/bin/sh\n"),
            tar_entry("/etc/shadow", b"pgtest::1:0:99999:7:::\n", mode=0o640),
        ]
    )


def symlink_loop_layer():
    """A layer with a -> b, b -> a, then a again as a -> ".", in that
    order: two symlinks that point at each other and one at its own
    directory."""
    return gzip_layer(
        [
            tar_entry("a", kind="symlink", link="b"),
            tar_entry("b", kind="symlink", link="a"),
            tar_entry("a", kind="symlink", link="."),
        ]
    )


def truncated_gzip_layer(keep_fraction: float = 0.5):
    """A gzip layer cut off after keep_fraction of its bytes. The blob's
    digest is that of the cut bytes, so a registry accepts it. The file
    contains pseudo-random bytes, so the cut lands inside the tar data and
    not in the end-of-archive zeros."""
    payload = bytes(
        (i * 7919 + (i >> 8) * 31) & 0xFF for i in range(256 * 1024)
    )
    tar = tar_of([tar_entry("data/payload.bin", payload)])
    compressed = gzip_bytes(tar)
    cut = compressed[: int(len(compressed) * keep_fraction)]
    return layer(tar, cut, images.OCI_LAYER_GZIP)


def many_entries_layer(count: int):
    """A gzip layer of count empty files, d/000000 to d/{count-1}."""
    return gzip_layer([tar_entry(f"d/{i:06d}") for i in range(count)])


def zstd_layer(files: dict[str, bytes]):
    """A +zstd layer compressed with the zstd command-line tool."""
    entries = [tar_entry(name, data) for name, data in sorted(files.items())]
    tar = tar_of(entries)
    return layer(tar, zstd_bytes(tar), OCI_LAYER_ZSTD)


def gzip_labelled_zstd_layer(files: dict[str, bytes]):
    """gzip bytes under the +zstd media type."""
    entries = [tar_entry(name, data) for name, data in sorted(files.items())]
    return gzip_layer(entries, OCI_LAYER_ZSTD)


def estargz_footer(toc_offset: int) -> bytes:
    """Return the 51-byte eStargz footer: an empty gzip member (RFC 1952)
    whose extra field has one subfield "SG" holding the TOC's offset as 16
    hex digits and "STARGZ", and whose deflate data is one empty stored
    block."""
    field = b"%016x" % toc_offset + STARGZ_FOOTER_MAGIC
    extra = b"SG" + struct.pack("<H", len(field)) + field
    header = b"\x1f\x8b\x08\x04" + struct.pack("<I", 0) + b"\x00\xff"
    header += struct.pack("<H", len(extra)) + extra
    empty_stored_block = b"\x01\x00\x00\xff\xff"
    footer = header + empty_stored_block + struct.pack("<II", 0, 0)
    assert len(footer) == STARGZ_FOOTER_BYTES
    return footer


def estargz_layer(files: dict[str, bytes]):
    """An eStargz-style layer: one gzip member per file, then a member with
    the stargz.index.json TOC entry and the tar end marker, then a footer
    member whose extra field contains the TOC's offset as 16 hex digits and
    "STARGZ". Returns (blob, diff_id); the diff_id is of the tar that the
    members decompress to together."""
    members = []
    tar_parts = []
    toc_entries = []
    offset = 0
    for name, data in sorted(files.items()):
        entry = tar_entry(name, data)
        member = gzip_bytes(entry)
        toc_entries.append(
            {"name": name, "type": "reg", "size": len(data), "offset": offset}
        )
        members.append(member)
        tar_parts.append(entry)
        offset += len(member)
    toc = json.dumps({"version": 1, "entries": toc_entries}).encode()
    toc_tar = tar_entry(STARGZ_TOC_NAME, toc) + tar_end()
    members.append(gzip_bytes(toc_tar))
    tar_parts.append(toc_tar)
    members.append(estargz_footer(offset))
    blob = images.Blob.from_bytes(images.OCI_LAYER_GZIP, b"".join(members))
    return blob, images.sha256_digest(b"".join(tar_parts))


def image_of(built: list) -> images.Manifest:
    """Build an OCI image (user 1000:1000, linux/amd64) whose layers are
    the (blob, diff_id) pairs in built."""
    config = images.make_config(
        [diff_id for _, diff_id in built],
        "1000:1000",
        "amd64",
        "linux",
        None,
        None,
        None,
    )
    config_blob = images.Blob.from_bytes(
        images.OCI_CONFIG, images.encode_json(config)
    )
    return images.image_manifest(
        config_blob,
        [blob for blob, _ in built],
        "oci",
        images.platform_of("amd64", "linux", None),
    )
