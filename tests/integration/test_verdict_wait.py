"""A verdict that takes longer than verdict_wait_seconds gives 503 first."""

import time

from pgtest import images

NAME = "team/slow"
TAG = "1"
RETRY_DEADLINE_SECONDS = 60


def test_503_then_verdict(registry, pullgate):
    image = images.image(
        [{"app/run": b"slow\n" * 1000}, {"app/data": b"more\n" * 1000}]
    )
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"verdict_wait_seconds": 0},
    )

    first = images.get_manifest(proxy.url, NAME, TAG)
    deadline = time.monotonic() + RETRY_DEADLINE_SECONDS
    retry = images.get_manifest(proxy.url, NAME, TAG)
    while retry.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        retry = images.get_manifest(proxy.url, NAME, TAG)

    assert first.status_code == 503
    assert first.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert first.headers["Retry-After"].isdigit()
    assert retry.status_code == 200
    assert retry.content == image.data
