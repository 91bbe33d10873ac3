"""SIGHUP reloads the policy; stored documents are evaluated again."""

import os
import signal
import time

from pgtest import images

NAME = "team/rootapp"
TAG = "1"

WARN_ROOT = """\
version: 2
rules:
  - name: root-user
    when: 'config.user in ["", "root", "0"]'
    action: warn
    message: image runs as root
"""

DENY_ROOT = WARN_ROOT.replace("action: warn", "action: deny")

# The condition compares a string with a number, which the checker
# rejects before the policy is used.
INVALID = WARN_ROOT.replace('config.user in ["", "root", "0"]', "config.user + 1")


def wait_for_log(proxy, text: str, count: int, timeout: float = 20) -> None:
    """Wait until text appears count times in the daemon's log."""
    deadline = time.monotonic() + timeout
    while proxy.log_text().count(text) < count:
        assert time.monotonic() < deadline, (
            f"{text!r} did not appear {count} times in the log:\n"
            + proxy.log_text()[-3000:]
        )
        time.sleep(0.05)


def reload(proxy, policy: str, event: str, count: int) -> None:
    proxy.policy_path.write_text(policy)
    os.kill(proxy.pid, signal.SIGHUP)
    wait_for_log(proxy, f"event={event}", count)


def blob_gets(registry) -> int:
    return registry.log_text().count(f'"GET /v2/{NAME}/blobs/')


def test_reload_changes_verdict_without_download(registry, pullgate):
    image = images.image([{"app/run": b"root image\n" * 20}], user="root")
    images.push(registry.url, NAME, TAG, image)
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=WARN_ROOT)

    first = images.get_manifest(proxy.url, NAME, TAG)
    assert first.status_code == 200
    assert first.headers["Warning"] == '299 - "pullgate: root-user: image runs as root"'
    fetched = blob_gets(registry)
    assert fetched == 2  # the config and the one layer

    reload(proxy, DENY_ROOT, "policy_reloaded", 1)
    denied = images.get_manifest(proxy.url, NAME, TAG)

    assert denied.status_code == 403
    error = denied.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"image {image.digest} is denied by policy: root-user: "
        "image runs as root"
    )
    # The new verdict came from the stored document, not from the layers.
    assert blob_gets(registry) == fetched
    assert "stored_document=yes" in proxy.log_text()

    # An invalid policy is refused and the one in force stays.
    reload(proxy, INVALID, "policy_reload_failed", 1)
    assert (
        f'error="{proxy.policy_path}:4:24: when of rule \\"root-user\\": '
        "no matching overload for '_+_' with (string, int); + takes two "
        'numbers of the same type, two strings or two lists"'
    ) in proxy.log_text()
    still_denied = images.get_manifest(proxy.url, NAME, TAG)
    assert still_denied.status_code == 403

    reload(proxy, WARN_ROOT, "policy_reloaded", 2)
    allowed = images.get_manifest(proxy.url, NAME, TAG)
    assert allowed.status_code == 200
    assert allowed.content == image.data
    assert blob_gets(registry) == fetched


def test_reload_of_same_policy_keeps_digest(registry, pullgate):
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=WARN_ROOT)

    # Comments and layout are not part of the digest.
    reload(proxy, "# edited\n" + WARN_ROOT, "policy_unchanged", 1)

    assert "event=policy_reloaded" not in proxy.log_text()
