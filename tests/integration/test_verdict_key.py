"""Stored verdicts belong to one policy and one inspector version.

A newer inspector finds what an older one missed, so a verdict that an
older pullgate stored under the same policy must not be served. The test
writes such a record, keyed by the manifest and policy digests alone as
older versions kept them, with mdb_load (lmdb-utils), and checks that
pullgate inspects the image again instead of trusting it.
"""

import json
import subprocess

from pgtest import images
from pgtest.stored import mdb_print_decode

NAME = "team/upgraded"


def dump_table(cache_dir, table: str) -> list[tuple[str, bytes]]:
    output = subprocess.run(
        ["mdb_dump", "-p", "-s", table, str(cache_dir / "lmdb")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = output.split("HEADER=END\n", 1)[1].splitlines()
    lines = [line for line in lines if line != "DATA=END"]
    return [
        (mdb_print_decode(key).decode(), mdb_print_decode(value))
        for key, value in zip(lines[0::2], lines[1::2])
    ]


def test_verdict_of_an_older_inspector_is_not_served(registry, pullgate):
    image = images.image(
        [{"root/.aws/credentials": b"[default]\nregion = eu-west-1\n"}]
    )
    images.push(registry.url, NAME, "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, NAME, "1").status_code == 403
    assert proxy.stop() == 0

    [(key, value)] = dump_table(proxy.cache_dir, "verdicts")
    verdict = json.loads(value)
    manifest_digest, verdict_key = key.split(" ")
    assert manifest_digest == image.digest
    assert verdict_key != verdict["policy_digest"]

    allowed = dict(verdict, findings=[])
    old_key = f"{image.digest} {verdict['policy_digest']}"
    subprocess.run(
        ["mdb_load", "-T", "-s", "verdicts", str(proxy.cache_dir / "lmdb")],
        input=f"{old_key}\n{json.dumps(allowed)}\n",
        text=True,
        check=True,
    )
    proxy.start()

    response = images.get_manifest(proxy.url, NAME, "1")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"].startswith(
        f"image {image.digest} is denied by policy: no-credential-files: "
    )
