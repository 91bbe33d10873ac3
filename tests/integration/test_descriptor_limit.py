"""Running out of file descriptors pauses accepting instead of spinning."""

import resource
import socket
import subprocess
import time

import requests

from pgtest import net

# Descriptors the daemon may open: enough to start, far fewer than the
# connections the test keeps open.
DESCRIPTOR_LIMIT = 48
HELD_CONNECTIONS = 80


def limit_descriptors():
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT)
    )


def test_accept_pauses_when_out_of_descriptors(pullgate_bin, tmp_path):
    port = net.free_port()
    log_path = tmp_path / "pullgate.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(pullgate_bin), "serve", "--listen", f"127.0.0.1:{port}",
             "--upstream", "docker.io=http://127.0.0.1:9",
             "--cache-dir", str(tmp_path / "cache")],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_descriptors,
        )
    open_connections = []
    try:
        url = f"http://127.0.0.1:{port}"
        net.wait_for_http(url + "/healthz", {200}, 20, proc, log_path)
        for _ in range(HELD_CONNECTIONS):
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                break
            conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: test\r\n")
            open_connections.append(conn)
        time.sleep(3)
        cpu_ticks = sum(
            int(field)
            for field in open(f"/proc/{proc.pid}/stat").read().split()[13:15]
        )
        for conn in open_connections:
            conn.close()
        open_connections.clear()
        time.sleep(1.5)
        healthz = requests.get(url + "/healthz", timeout=5)
    finally:
        for conn in open_connections:
            conn.close()
        status = net.stop_process(proc)

    log = log_path.read_text()
    failures = log.count("event=accept_failed")
    assert healthz.status_code == 200
    assert status == 0
    assert 1 <= failures <= 6, failures
    assert 'error="Too many open files"' in log
    # A spinning loop would use most of the 3 s; a paused one almost none.
    assert cpu_ticks < 100, cpu_ticks
