"""Port allocation and readiness checks for servers started on 127.0.0.1."""

import socket
import subprocess
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import requests

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Another process may take it before the caller binds it, so callers that
    start a server retry with a new port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file, or a note when it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


class StartError(Exception):
    """A server process exited or did not become ready in time."""


def wait_for_http(
    url: str,
    statuses: set[int],
    timeout: float,
    proc: subprocess.Popen,
    log_path: Path,
    verify=True,
) -> None:
    """Poll url until it returns one of statuses.

    verify is passed to requests: False or a CA bundle for HTTPS servers
    with a test certificate.

    Raises StartError with the log's tail when proc exits first or when
    timeout seconds pass.
    """
    deadline = time.monotonic() + timeout
    last_error = "no response"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(
                f"{proc.args[0]} exited with status {proc.returncode} "
                f"before {url} responded; log tail:\n{log_tail(log_path)}"
            )
        try:
            response = requests.get(url, timeout=2, verify=verify)
            if response.status_code in statuses:
                return
            last_error = f"status {response.status_code}"
        except requests.RequestException as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise StartError(
        f"{url} did not respond with {sorted(statuses)} within {timeout} s "
        f"(last: {last_error}); log tail:\n{log_tail(log_path)}"
    )


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> int:
    """Send SIGTERM, wait up to timeout seconds, then SIGKILL.

    Returns the exit status as Popen reports it (negative for a signal).
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def address_in_use(log_path: Path) -> bool:
    """Return whether a server's log reports that its port is in use."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return False
    return "address already in use" in text.lower()


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that ignores clients closing connections.

    pullgate may close an upstream connection in the middle of a request
    (a cancelled download, for one), which is not an error of the server.
    """

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
