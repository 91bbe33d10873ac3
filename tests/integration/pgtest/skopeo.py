"""Run skopeo 1.9 with a configuration of its own, so that no system file
(registries.conf mirrors, stored credentials) changes where it connects."""

import json
import os
import subprocess
from pathlib import Path

SKOPEO_BIN = os.environ.get("PG_SKOPEO_BIN", "/usr/bin/skopeo")
COPY_TIMEOUT = 600


class Skopeo:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.policy_path = workdir / "policy.json"
        self.policy_path.write_text(
            json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
        )
        self.registries_conf = workdir / "registries.conf"
        self.registries_conf.write_text("")
        self.auth_file = workdir / "auth.json"
        self.auth_file.write_text(json.dumps({"auths": {}}))
        self.copies = 0

    def _env(self) -> dict:
        env = dict(os.environ)
        env["CONTAINERS_REGISTRIES_CONF"] = str(self.registries_conf)
        env["REGISTRY_AUTH_FILE"] = str(self.auth_file)
        env["TMPDIR"] = str(self.workdir)
        return env

    def copy(
        self,
        source: str,
        destination: Path | None = None,
        *,
        creds: str | None = None,
        architecture: str | None = None,
        timeout: float = COPY_TIMEOUT,
    ) -> tuple[subprocess.CompletedProcess, Path]:
        """Copy docker://source to dir:destination (a new folder when None).

        --src-tls-verify=false lets skopeo fall back to plain HTTP after a
        failed TLS handshake. Returns the finished process and the folder.
        """
        if destination is None:
            self.copies += 1
            destination = self.workdir / f"copy-{self.copies}"
        argv = [SKOPEO_BIN, "--policy", str(self.policy_path)]
        if architecture is not None:
            argv += ["--override-arch", architecture, "--override-os", "linux"]
        argv += ["copy", "--src-tls-verify=false"]
        if creds is not None:
            argv += ["--src-creds", creds]
        else:
            argv += ["--src-no-creds"]
        argv += [f"docker://{source}", f"dir:{destination}"]
        result = subprocess.run(
            argv,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return result, destination


def dir_manifest(folder: Path) -> bytes:
    """Return the manifest bytes that a dir: copy stored."""
    return (folder / "manifest.json").read_bytes()


def dir_blob(folder: Path, digest: str) -> Path:
    """Return the path of a blob in a dir: copy (named by its hex digest)."""
    return folder / digest.split(":", 1)[1]
