"""pullgate raises its soft limit on open files to the hard limit.

Layer reads waiting for a reader thread keep their blob open, so a daemon
left at a low soft limit fails large images with EMFILE although the hard
limit would allow them.
"""

import resource
from pathlib import Path

LOW_SOFT_LIMIT = 256


def open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files line in /proc/{pid}/limits")


def test_soft_limit_raised_to_hard(registry, pullgate):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > LOW_SOFT_LIMIT
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT_LIMIT, hard))
    try:
        proxy = pullgate(upstreams={"docker.io": registry.url})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert open_files_limits(proxy.pid) == (hard, hard)
