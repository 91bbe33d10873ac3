"""Start the pullgate daemon under test and read what it logged."""

import json
import shutil
import signal
import subprocess
from pathlib import Path

import requests

from . import net

HEALTHZ_TIMEOUT_SECONDS = 20
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error")


def to_yaml(value, indent: int = 0) -> str:
    """Render dicts, lists and scalars as block-style YAML.

    Strings are written as JSON strings, which are valid YAML
    double-quoted scalars.
    """
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            text = to_yaml(item, indent + 2)
            lines.append(f"{pad}- {text.lstrip()}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return "\n".join(lines)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value))


class Pullgate:
    """One `pullgate serve` process listening on 127.0.0.1.

    upstreams (name -> URL, the first is the default) become --upstream
    options. config, a dict or YAML text, is written to etc/pullgate.yaml
    in workdir and passed with -c, and files (name -> text) are written
    next to it. policy, YAML text, is written to policy.yaml and passed
    with --policy. cache_dir defaults to a new folder in workdir. The
    daemon runs in workdir, and its standard output and standard error go
    to pullgate.log.
    """

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        *,
        upstreams: dict | None = None,
        config=None,
        files: dict | None = None,
        policy: str | None = None,
        cache_dir: Path | None = None,
        args: list[str] | None = None,
    ):
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = cache_dir or workdir / "cache"
        self.log_path = workdir / "pullgate.log"
        self.config_path = None
        self.policy_path = None
        self.upstreams = dict(upstreams or {})
        # A listener with tls: set serves HTTPS with a test certificate,
        # which requests made here do not verify.
        self.tls = isinstance(config, dict) and "tls" in config
        self.args = list(args or [])
        self.port = net.free_port()
        self.proc = None
        config_dir = workdir / "etc"
        if config is not None:
            config_dir.mkdir(exist_ok=True)
            self.config_path = config_dir / "pullgate.yaml"
            text = config if isinstance(config, str) else to_yaml(config)
            self.config_path.write_text(text + "\n")
        for name, text in (files or {}).items():
            (config_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (config_dir / name).write_text(text)
        if policy is not None:
            self.policy_path = workdir / "policy.yaml"
            self.policy_path.write_text(policy)

    @property
    def host(self) -> str:
        return f"{net.LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def argv(self) -> list[str]:
        argv = [str(self.binary), "serve"]
        if self.config_path is not None:
            argv += ["-c", str(self.config_path)]
        argv += ["--listen", self.host, "--cache-dir", str(self.cache_dir)]
        if self.policy_path is not None:
            argv += ["--policy", str(self.policy_path)]
        for name, url in self.upstreams.items():
            argv += ["--upstream", f"{name}={url}"]
        return argv + self.args

    def start(self, attempts: int = 3) -> None:
        """Start the daemon and wait until GET /healthz returns 200.

        Raises net.StartError with the log's tail when the daemon exits or
        is not ready within HEALTHZ_TIMEOUT_SECONDS.
        """
        if not self.binary.is_file():
            raise net.StartError(
                f"pullgate binary {self.binary} does not exist; build it "
                "first (tests/run does) or set PULLGATE_BIN"
            )
        for attempt in range(attempts):
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                )
            try:
                net.wait_for_http(
                    self.url + "/healthz",
                    {200},
                    HEALTHZ_TIMEOUT_SECONDS,
                    self.proc,
                    self.log_path,
                    verify=not self.tls,
                )
                return
            except net.StartError:
                net.stop_process(self.proc)
                in_use = net.address_in_use(self.log_path)
                if not in_use or attempt == attempts - 1:
                    raise
                self.port = net.free_port()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        """Send SIGTERM and return the exit status (SIGKILL after 20 s)."""
        return net.stop_process(self.proc)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sanitizer_report(self) -> str | None:
        """Return the log when a sanitizer reported an error in it."""
        text = self.log_text()
        if any(marker in text for marker in SANITIZER_MARKERS):
            return text
        return None

    def vm_hwm_bytes(self) -> int:
        """Return the peak resident set size (VmHWM) of the running daemon."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                value, unit = line.split()[1:3]
                if unit != "kB":
                    raise ValueError(f"unexpected VmHWM unit in {line!r}")
                return int(value) * 1024
        raise ValueError(f"no VmHWM line in /proc/{self.pid}/status")

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("verify", not self.tls)
        return requests.request(method, self.url + path, **kwargs)

    def blob_path(self, digest: str) -> Path:
        """Return where the cache stores the blob with this digest."""
        algorithm, hex_digest = digest.split(":", 1)
        return self.cache_dir / "blobs" / algorithm / hex_digest[:2] / hex_digest

    def remove_cache(self) -> None:
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def run_command(binary: Path, args: list[str], cwd: Path, timeout: float = 30):
    """Run pullgate with args (a command that exits by itself)."""
    if not binary.is_file():
        raise net.StartError(
            f"pullgate binary {binary} does not exist; build it first "
            "(tests/run does) or set PULLGATE_BIN"
        )
    return subprocess.run(
        [str(binary), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def exit_status_text(status: int) -> str:
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"
