"""pullgate logs in to an upstream that requires bearer tokens."""

import base64

import pytest
import requests

from pgtest import images, skopeo

NAME = "team/private"
TAG = "1"


@pytest.fixture
def private(auth_registry, token_server, pullgate):
    image = images.image([{"app/run": b"private app\n" * 10}])
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token_server.push_token(NAME)
    images.push(auth_registry.url, NAME, TAG, image, session)
    pushed_tokens = len(token_server.tokens)
    config = {
        "upstreams": [
            {
                "name": "docker.io",
                "url": auth_registry.url,
                "username": token_server.username,
                "password": token_server.password,
            }
        ]
    }
    proxy = pullgate(config=config)
    return proxy, image, pushed_tokens


def test_pull_through_token_auth(private, token_server, skopeo_client):
    proxy, image, _ = private

    result, out = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")

    assert result.returncode == 0, result.stderr
    assert skopeo.dir_manifest(out) == image.data
    for blob in image.blobs:
        assert skopeo.dir_blob(out, blob.digest).read_bytes() == blob.data


def test_token_request_credentials(private, token_server):
    proxy, image, _ = private

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 200
    authenticated = [r for r in token_server.requests if r.authenticated]
    assert len(authenticated) >= 1
    scopes = [r.query.get("scope") for r in authenticated]
    assert [f"repository:{NAME}:pull"] in scopes


def test_log_has_no_secrets(private, token_server, skopeo_client):
    proxy, image, pushed_tokens = private

    result, _ = skopeo_client.copy(f"{proxy.host}/{NAME}:{TAG}")

    assert result.returncode == 0, result.stderr
    issued = token_server.tokens[pushed_tokens:]
    assert len(issued) >= 1
    log = proxy.log_text()
    basic = base64.b64encode(
        f"{token_server.username}:{token_server.password}".encode()
    ).decode()
    assert token_server.password not in log
    assert basic not in log
    for token in issued:
        assert token not in log
        # The signature alone must not leak either.
        assert token.rsplit(".", 1)[1] not in log


def test_wrong_password_unavailable(auth_registry, token_server, pullgate):
    image = images.image([{"app/run": b"locked\n"}])
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token_server.push_token(NAME)
    images.push(auth_registry.url, NAME, TAG, image, session)
    config = {
        "upstreams": [
            {
                "name": "docker.io",
                "url": auth_registry.url,
                "username": token_server.username,
                "password": "wrong-password-5d2e",
            }
        ]
    }
    proxy = pullgate(config=config)

    response = images.get_manifest(proxy.url, NAME, TAG)

    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "wrong-password-5d2e" not in proxy.log_text()
