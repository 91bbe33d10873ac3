"""Records pullgate stored, read with mdb_dump (lmdb-utils).

mdb_dump reads the LMDB environment independently of pullgate, so tests
that check what pullgate stored do not trust pullgate to report it.
"""

import json
import subprocess


def mdb_print_decode(line: str) -> bytes:
    """Decode one value line of `mdb_dump -p`: printable bytes as they
    are, a backslash as two, any other byte as a backslash and two hex
    digits."""
    out = bytearray()
    i = 1  # Each data line starts with a space.
    while i < len(line):
        if line[i] == "\\":
            if line[i + 1] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(line[i + 1 : i + 3], 16))
                i += 3
        else:
            out += line[i].encode()
            i += 1
    return bytes(out)


def stored_document(proxy, manifest_digest: str) -> dict:
    """Return the image document pullgate stored for manifest_digest."""
    output = subprocess.run(
        ["mdb_dump", "-p", "-s", "documents", str(proxy.cache_dir / "lmdb")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = output.split("HEADER=END\n", 1)[1].splitlines()
    for key, value in zip(lines[0::2], lines[1::2]):
        if mdb_print_decode(key).decode().startswith(manifest_digest + " "):
            return json.loads(mdb_print_decode(value))
    raise AssertionError(f"no document stored for {manifest_digest}")
