"""A new policy is evaluated from stored image documents, offline."""

from pgtest import images

NAME = "team/rootapp"
TAG = "1"

DENY_ROOT = """\
version: 2
rules:
  - name: root-user
    action: deny
    when: 'config.user.matches("^(root|[+-]?0+)?(:.*)?$")'
    message: image runs as root
"""


def test_new_policy_uses_stored_document(registry, pullgate, tmp_path):
    image = images.image([{"app/run": b"root image\n" * 20}], user="root")
    images.push(registry.url, NAME, TAG, image)
    cache = tmp_path / "shared-cache"
    first = pullgate(upstreams={"docker.io": registry.url}, cache_dir=cache)
    assert images.get_manifest(first.url, NAME, TAG).status_code == 200
    first.stop()

    registry.stop()
    second = pullgate(
        upstreams={"docker.io": registry.url},
        cache_dir=cache,
        policy=DENY_ROOT,
    )
    response = images.get_manifest(second.url, NAME, TAG)

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"image {image.digest} is denied by policy: root-user: "
        "image runs as root"
    )
    assert "stored_document=yes" in second.log_text()
