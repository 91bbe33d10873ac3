"""Each request is logged on one key=value line."""

import re
import time

from pgtest import images

NAME = "team/logged"
TAG = "1"


def request_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " event=request " in line]


def logged_requests(proxy, path: str, timeout: float = 5) -> list[str]:
    """Return the request lines for path, waiting for the first one.

    A request is logged once its response has been written completely,
    which can be a moment after the client has read the response.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line
            for line in request_lines(proxy.log_text())
            if field(line, "path") == path
        ]
        if lines or time.monotonic() >= deadline:
            return lines
        time.sleep(0.05)


def field(line: str, key: str) -> str | None:
    match = re.search(rf'(?:^| ){key}=("(?:[^"\\]|\\.)*"|\S*)', line)
    if match is None:
        return None
    return match.group(1).strip('"')


def test_manifest_request_logged(registry, pullgate):
    image = images.image([{"app/run": b"logged\n"}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, TAG)
    lines = logged_requests(proxy, f"/v2/{NAME}/manifests/{TAG}")

    assert response.status_code == 200
    assert len(lines) == 1
    assert field(lines[0], "method") == "GET"
    assert field(lines[0], "status") == "200"
    assert field(lines[0], "bytes") == str(image.size)
    assert field(lines[0], "upstream") == "docker.io"
    assert field(lines[0], "digest") == image.digest
    assert field(lines[0], "duration_ms").isdigit()


def test_blob_request_logged(registry, pullgate):
    image = images.image([{"app/run": b"logged blob\n" * 10}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, NAME, TAG).status_code == 200
    layer = image.layers[0]

    response = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")
    lines = logged_requests(proxy, f"/v2/{NAME}/blobs/{layer.digest}")

    assert response.status_code == 200
    assert len(lines) == 1
    assert field(lines[0], "status") == "200"
    assert field(lines[0], "bytes") == str(layer.size)
    assert field(lines[0], "cache") == "hit"
    assert field(lines[0], "digest") == layer.digest


def test_denied_request_logged(registry, pullgate):
    image = images.image([{"root/.aws/credentials": b"[default]\n"}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, TAG)
    lines = logged_requests(proxy, f"/v2/{NAME}/manifests/{TAG}")

    assert response.status_code == 403
    assert len(lines) == 1
    assert field(lines[0], "status") == "403"
    assert field(lines[0], "verdict") == "deny"
