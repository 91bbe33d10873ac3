"""The daemon exits with status 0 on SIGTERM and SIGINT."""

import signal

import pytest

from pgtest import images


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"]
)
def test_signal_exits_zero(registry, pullgate, signum):
    image = images.image([{"app/run": b"shutdown\n"}])
    images.push(registry.url, "team/app", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, "team/app", "1").status_code == 200

    proxy.proc.send_signal(signum)
    status = proxy.proc.wait(timeout=20)

    assert status == 0
    assert proxy.sanitizer_report() is None


def test_restart_keeps_cache(registry, pullgate):
    """A second daemon on the same cache serves a pulled tag offline."""
    image = images.image([{"app/run": b"restart\n"}])
    images.push(registry.url, "team/app", "1", image)
    first = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(first.url, "team/app", "1").status_code == 200
    assert first.stop() == 0

    registry.stop()
    second = pullgate(
        upstreams={"docker.io": registry.url},
        cache_dir=first.cache_dir,
    )
    response = images.get_manifest(second.url, "team/app", "1")

    assert response.status_code == 200
    assert response.content == image.data
