"""A policy file replaces the built-in policy, and its rules decide verdicts."""

import pytest

from pgtest import images

TAG = "1"
POLICY = r"""version: 2
on_inspection_failure: deny
rules:
  - name: non-root-user
    action: deny
    when: 'config.user.matches("^(root|[+-]?0+)?(:.*)?$")'
    message: image runs as root
  - name: no-private-keys
    action: deny
    when: |-
      files.exists(f, f.path.endsWith(".key") &&
        !f.path.startsWith("usr/share/doc/"))
    message: image contains a private key file
    message_expression: |-
      [files.filter(f, f.path.endsWith(".key") &&
        !f.path.startsWith("usr/share/doc/")).map(f, f.path)
      ].map(found, "image contains a private key file (" + found[0] +
        (size(found) > 1 ? " and " + string(size(found) - 1) + " more" : "") +
        ")")[0]
  - name: no-blocked-repositories
    action: deny
    when: 'image.repository == "team/blocked"'
    message: repository is blocked
  - name: no-mirror
    action: deny
    when: 'image.registry == "mirror.test"'
    message: pulls from mirror.test are blocked
"""


@pytest.fixture
def gated(registry, pullgate):
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=POLICY)
    return registry, proxy


def push_and_get(registry, proxy, name: str, image: images.Manifest):
    images.push(registry.url, name, TAG, image)
    return images.get_manifest(proxy.url, name, TAG)


def assert_denied(response, message: str) -> None:
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == message


def test_root_user_denied(gated):
    registry, proxy = gated
    image = images.image([{"app/run": b"root\n"}], user="root")

    response = push_and_get(registry, proxy, "team/root", image)

    assert_denied(
        response,
        f"image {image.digest} is denied by policy: "
        "non-root-user: image runs as root",
    )


def test_key_file_denied(gated):
    registry, proxy = gated
    image = images.image([{"srv/tls/server.key": b"-----BEGIN PRIVATE KEY-----\n"}])

    response = push_and_get(registry, proxy, "team/keyed", image)

    assert_denied(
        response,
        f"image {image.digest} is denied by policy: "
        "no-private-keys: image contains a private key file (srv/tls/server.key)",
    )


def test_excepted_path_allowed(gated):
    registry, proxy = gated
    image = images.image([{"usr/share/doc/example/test.key": b"example\n"}])

    response = push_and_get(registry, proxy, "team/docs", image)

    assert response.status_code == 200
    assert response.content == image.data


def test_rules_joined_in_order(gated):
    registry, proxy = gated
    image = images.image([{"app/secret.key": b"key\n"}], user="0")

    response = push_and_get(registry, proxy, "team/both", image)

    assert_denied(
        response,
        f"image {image.digest} is denied by policy: "
        "non-root-user: image runs as root; "
        "no-private-keys: image contains a private key file (app/secret.key)",
    )


def test_repository_denied(gated):
    """Rules on the repository or registry name deny before any download,
    so the message names the repository instead of an image digest."""
    registry, proxy = gated
    image = images.image([{"app/run": b"blocked\n"}])

    response = push_and_get(registry, proxy, "team/blocked", image)

    assert_denied(
        response,
        "repository docker.io/team/blocked is denied by policy: "
        "no-blocked-repositories: repository is blocked",
    )
    assert '"GET /v2/team/blocked/blobs/' not in registry.log_text()


def test_builtin_rules_replaced(gated):
    """The built-in rules do not apply: an AWS credentials file passes."""
    registry, proxy = gated
    image = images.image([{"root/.aws/credentials": b"[default]\n"}])

    response = push_and_get(registry, proxy, "team/aws", image)

    assert response.status_code == 200
    assert response.content == image.data


def test_registry_denied(registry_factory, pullgate):
    hub = registry_factory("hub")
    mirror = registry_factory("mirror")
    image = images.image([{"app/run": b"mirrored\n"}])
    images.push(hub.url, "team/app", TAG, image)
    images.push(mirror.url, "team/app", TAG, image)
    proxy = pullgate(
        upstreams={"docker.io": hub.url, "mirror.test": mirror.url},
        policy=POLICY,
    )

    hub_response = images.get_manifest(proxy.url, "team/app", TAG)
    mirror_response = images.get_manifest(
        proxy.url, "mirror.test/team/app", TAG
    )

    assert hub_response.status_code == 200
    assert_denied(
        mirror_response,
        "repository mirror.test/team/app is denied by policy: "
        "no-mirror: pulls from mirror.test are blocked",
    )


def test_policy_path_relative_to_config(registry, pullgate):
    image = images.image([{"app/run": b"relative\n"}], user="root")
    images.push(registry.url, "team/root", TAG, image)
    proxy = pullgate(
        upstreams={"docker.io": registry.url},
        config={"policy": "policies/strict.yaml"},
        files={"policies/strict.yaml": POLICY},
    )

    response = images.get_manifest(proxy.url, "team/root", TAG)

    assert_denied(
        response,
        f"image {image.digest} is denied by policy: "
        "non-root-user: image runs as root",
    )
