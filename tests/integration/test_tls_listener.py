"""The listener serves HTTPS when tls.cert_file and tls.key_file are set."""

import subprocess

import pytest

from pgtest import images, skopeo

# The test certificate is self-signed, so requests does not verify it.
pytestmark = pytest.mark.filterwarnings(
    "ignore::urllib3.exceptions.InsecureRequestWarning"
)

NAME = "team/tls"
TAG = "1"


def make_certificate(directory):
    """Write a self-signed certificate for 127.0.0.1 and its key."""
    cert = directory / "tls.crt"
    key = directory / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert.read_text(), key.read_text()


def test_https_pull(registry, pullgate, skopeo_client, tmp_path):
    cert, key = make_certificate(tmp_path)
    image = images.image([{"app/run": b"served over TLS\n" * 4000}])
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"tls": {"cert_file": "tls.crt", "key_file": "tls.key"}},
        files={"tls.crt": cert, "tls.key": key},
    )

    result, out = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")
    layer = image.layers[0]
    blob = proxy.get(f"/v2/{NAME}/blobs/{layer.digest}")

    assert proxy.url.startswith("https://")
    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == image.data
    assert blob.status_code == 200
    assert blob.content == layer.data
    assert blob.headers["Docker-Content-Digest"] == layer.digest


def test_plain_http_rejected(registry, pullgate, tmp_path):
    cert, key = make_certificate(tmp_path)
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"tls": {"cert_file": "tls.crt", "key_file": "tls.key"}},
        files={"tls.crt": cert, "tls.key": key},
    )

    completed = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
         f"http://{proxy.host}/v2/"],
        capture_output=True,
        text=True,
    )

    # curl exit status 52: the server closed the connection with no reply.
    assert completed.returncode == 52
    assert completed.stdout == "000"
    assert proxy.get("/v2/").status_code == 200
