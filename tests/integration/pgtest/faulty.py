"""An upstream registry that serves one image and breaks one of its blobs.

It is a real HTTP/1.1 server on 127.0.0.1. GET and HEAD on /v2/, on the
image's manifest (by tag or digest) and on its blobs behave like a
registry, except for the broken blob, which the mode decides:

- "corrupt": 200 with the right Content-Length and different bytes, so
  the bytes do not hash to the digest;
- "reset": 200 with the right Content-Length, half the bytes, then a TCP
  reset;
- "error": 500 with an error body;
- "stall": 200 with the right Content-Length and the first stall_at bytes
  (half by default), then nothing until resume is set, then the rest;
- "corrupt_tail": like "stall", but the bytes after stall_at are
  corrupted, so the blob's first part is right and the digest fails.

Setting broken_digest to "" makes every blob served right from then on.
"""

import json
import socket
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler

from . import images, net

MODES = ("corrupt", "reset", "error", "stall", "corrupt_tail")

# How long a stalled blob waits for resume before it sends the rest anyway.
STALL_MAX_SECONDS = 60


def corrupt(data: bytes) -> bytes:
    """Return bytes of the same length that differ from data in every byte."""
    return bytes(byte ^ 0xFF for byte in data)


class FaultyUpstream:
    def __init__(
        self,
        name: str,
        tag: str,
        manifest: images.Manifest,
        broken_digest: str,
        mode: str,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.name = name
        self.tag = tag
        self.manifest = manifest
        self.broken_digest = broken_digest
        self.mode = mode
        self.blobs = {blob.digest: blob for blob in manifest.blobs}
        self.requests: list[tuple[str, str]] = []
        self.stall_at: int | None = None  # None: half of the blob
        self.stalled = threading.Event()  # set once the first part is sent
        self.resume = threading.Event()
        self._lock = threading.Lock()
        self._server = net.LoopbackHTTPServer((net.LOOPBACK, 0), _handler(self))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faulty-upstream", daemon=True
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return f"{net.LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(upstream: FaultyUpstream):
    manifest_paths = {
        f"/v2/{upstream.name}/manifests/{upstream.tag}",
        f"/v2/{upstream.name}/manifests/{upstream.manifest.digest}",
    }
    blob_prefix = f"/v2/{upstream.name}/blobs/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 (base class name)
            pass

        def _send(self, status: int, content_type: str, body: bytes, **headers):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_error(self, status: int, code: str, message: str):
            body = json.dumps({"errors": [{"code": code, "message": message}]})
            self._send(status, "application/json", body.encode())

        def _send_broken(self, blob: images.Blob):
            data = blob.read()
            if upstream.mode == "error":
                self._send_error(500, "UNKNOWN", "unknown error")
                return
            if upstream.mode in ("stall", "corrupt_tail") and self.command == "GET":
                self._send_stalled(data)
                return
            if upstream.mode == "corrupt" or self.command == "HEAD":
                self._send(
                    200,
                    "application/octet-stream",
                    corrupt(data),
                    Docker_Content_Digest=blob.digest,
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Docker-Content-Digest", blob.digest)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            # SO_LINGER with a zero timeout makes close() send a RST.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.close_connection = True
            self.connection.close()

        def _send_stalled(self, data: bytes):
            cut = len(data) // 2 if upstream.stall_at is None else upstream.stall_at
            rest = data[cut:]
            if upstream.mode == "corrupt_tail":
                rest = corrupt(rest)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:cut])
            self.wfile.flush()
            upstream.stalled.set()
            upstream.resume.wait(STALL_MAX_SECONDS)
            self.wfile.write(rest)
            self.wfile.flush()

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            upstream.record(self.command, path)
            if path == "/v2/":
                self._send(200, "application/json", b"{}")
            elif path in manifest_paths:
                manifest = upstream.manifest
                self._send(
                    200,
                    manifest.media_type,
                    manifest.data,
                    Docker_Content_Digest=manifest.digest,
                )
            elif path.startswith(blob_prefix):
                self._send_blob(path[len(blob_prefix) :])
            else:
                self._send_error(
                    404, "NAME_UNKNOWN", "repository name not known to registry"
                )

        def _send_blob(self, digest: str):
            blob = upstream.blobs.get(digest)
            if blob is None:
                self._send_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            elif digest == upstream.broken_digest:
                self._send_broken(blob)
            else:
                self._send(
                    200,
                    "application/octet-stream",
                    blob.read(),
                    Docker_Content_Digest=blob.digest,
                )

        do_HEAD = do_GET

    return Handler
