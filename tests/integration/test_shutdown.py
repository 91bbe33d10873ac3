"""The daemon exits with status 0 on SIGTERM and SIGINT."""

import signal
import time

import pytest
import requests

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


def test_sigterm_lets_blob_finish(registry, pullgate):
    """Open transfers finish after SIGTERM; new connections are refused."""
    payload = bytes(range(256)) * (128 * 1024)  # 32 MiB, stored uncompressed
    image = images.image([{"app/data": payload}], compress=False)
    images.push(registry.url, "team/big", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})
    assert images.get_manifest(proxy.url, "team/big", "1").status_code == 200
    layer = image.layers[0]

    response = proxy.get(f"/v2/team/big/blobs/{layer.digest}", stream=True)
    chunks = response.iter_content(1 << 20)
    received = [next(chunks)]
    proxy.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(requests.ConnectionError):
        requests.get(proxy.url + "/healthz", timeout=5)
    for chunk in chunks:
        received.append(chunk)
        time.sleep(0.01)
    status = proxy.proc.wait(timeout=30)

    assert response.status_code == 200
    assert b"".join(received) == layer.data
    assert status == 0
    log = proxy.log_text()
    assert "event=stopping signal=15 in_flight=1 grace_s=30" in log
    assert (
        f"method=GET path=/v2/team/big/blobs/{layer.digest} status=200 "
        f"bytes={layer.size}"
    ) in log
    assert "result=complete" in log.split("event=stopping")[1]
