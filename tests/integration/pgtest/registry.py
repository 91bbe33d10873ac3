"""A docker-registry (distribution 2.8) process for one test."""

import os
import shutil
import subprocess
from pathlib import Path

from . import net

REGISTRY_BIN = os.environ.get("PG_REGISTRY_BIN", "/usr/bin/docker-registry")


class Registry:
    """A registry on 127.0.0.1 with its own configuration and storage.

    The access log (one line per request, from the registry's HTTP handler)
    and error lines go to registry.log in workdir. With token_server set,
    the registry requires bearer tokens issued by that server.
    """

    def __init__(self, workdir: Path, token_server=None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage = workdir / "storage"
        self.config_path = workdir / "config.yml"
        self.log_path = workdir / "registry.log"
        self.token_server = token_server
        self.port = net.free_port()
        self.proc = None

    @property
    def host(self) -> str:
        return f"{net.LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _write_config(self) -> None:
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
            "  secret: pullgate-integration-tests",
        ]
        if self.token_server is not None:
            ts = self.token_server
            lines += [
                "auth:",
                "  token:",
                f"    realm: {ts.realm}",
                f"    service: {ts.service}",
                f"    issuer: {ts.issuer}",
                f"    rootcertbundle: {ts.cert_path}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, attempts: int = 3) -> None:
        """Start the registry and wait until GET /v2/ returns 200 (or 401).

        A port taken by another process between allocation and bind is
        retried with a new port, but only on the first start, because a
        restart must keep the address that pullgate was given.
        """
        first_start = self.proc is None
        for attempt in range(attempts):
            self._write_config()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [REGISTRY_BIN, "serve", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                net.wait_for_http(
                    self.url + "/v2/", {200, 401}, 20, self.proc, self.log_path
                )
                return
            except net.StartError:
                net.stop_process(self.proc)
                retry = first_start and net.address_in_use(self.log_path)
                if not retry or attempt == attempts - 1:
                    raise
                self.port = net.free_port()

    def stop(self) -> None:
        if self.proc is not None:
            net.stop_process(self.proc)

    def remove_storage(self) -> None:
        shutil.rmtree(self.storage, ignore_errors=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")
