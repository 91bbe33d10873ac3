"""A key inside a file denies the image, even after a later layer deletes it.

The key is assembled at run time, so that no secret-shaped string sits in
the repository. Whiteouts hide a file from the container, but the layer
that added it is still served to every client, so the secret still leaks.
"""

import json
import secrets as random_source
import string

from pgtest import images
from pgtest.stored import stored_document

NAME = "team/secretive"
RULE_MESSAGE = "image contains a secret"


def access_key_id() -> str:
    alphabet = string.ascii_uppercase + "234567"
    return "AKIA" + "".join(random_source.choice(alphabet) for _ in range(16))


def settings_file(key: str) -> bytes:
    return f"# deploy settings\nregion = eu-west-1\nkey_id = {key}\n".encode()


def denial_message(image: images.Manifest, finding: str) -> str:
    return (
        f"image {image.digest} is denied by policy: no-embedded-secrets: "
        f"{RULE_MESSAGE}: {finding}"
    )


def test_key_in_a_file_is_denied(registry, pullgate):
    image = images.image(
        [{"srv/app/settings.ini": settings_file(access_key_id())}]
    )
    images.push(registry.url, NAME, "present", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "present")

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == denial_message(
        image, "aws-access-key-id in srv/app/settings.ini (layer 0, line 3)"
    )
    assert "AKIA" not in response.text


def test_key_deleted_by_a_later_layer_is_still_denied(registry, pullgate):
    image = images.image(
        [
            {"srv/app/settings.ini": settings_file(access_key_id())},
            {"srv/app/.wh.settings.ini": b""},
        ]
    )
    images.push(registry.url, NAME, "deleted", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "deleted")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == denial_message(
        image, "aws-access-key-id in srv/app/settings.ini (layer 0, line 3)"
    )


def test_key_shaped_text_that_is_not_a_key_is_allowed(registry, pullgate):
    # Lower case and too short: no AWS access key id looks like this.
    image = images.image(
        [{"srv/app/settings.ini": settings_file("akia" + "x" * 16)}]
    )
    images.push(registry.url, NAME, "clean", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "clean")

    assert response.status_code == 200
    assert response.content == image.data


def test_key_in_the_config_is_denied_and_redacted(registry, pullgate):
    key = access_key_id()
    image = images.image(
        [{"srv/app/run": images.File(b"#!/bin/sh\n", mode=0o755)}],
        env=[f"DEPLOY_ID={key}", "PATH=/usr/bin"],
    )
    images.push(registry.url, NAME, "config", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "config")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == denial_message(
        image, "aws-access-key-id in the image config"
    )
    document = stored_document(proxy, image.digest)
    assert document["config"]["env"] == [
        {"name": "DEPLOY_ID", "value": "<redacted>"},
        {"name": "PATH", "value": "/usr/bin"},
    ]
    assert document["secrets"] == [
        {
            "rule": "aws-access-key-id",
            "source": "config",
            "path": "",
            "layer": None,
            "line": 0,
            "present": True,
        }
    ]
    assert key not in json.dumps(document)
    assert key not in proxy.log_text()


def secret_access_key() -> str:
    alphabet = string.ascii_letters + string.digits + "/+"
    return "".join(random_source.choice(alphabet) for _ in range(40))


def test_key_in_a_separate_argument_is_denied(registry, pullgate):
    key = secret_access_key()
    files = {"srv/app/run": images.File(b"#!/bin/sh\n", mode=0o755)}
    layer, diff_id = images.make_layer(files)
    config = images.make_config(
        [diff_id], "1000:1000", "amd64", "linux", None, None, None
    )
    config["config"]["Cmd"] = ["app", "--aws-secret-access-key", key]
    config_blob = images.Blob.from_bytes(
        images.OCI_CONFIG, images.encode_json(config)
    )
    image = images.image_manifest(config_blob, [layer], "oci", None)
    images.push(registry.url, NAME, "argument", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "argument")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == denial_message(
        image, "aws-secret-access-key in the image config"
    )
    document = stored_document(proxy, image.digest)
    assert document["config"]["cmd"] == ["<redacted>"] * 3
    assert key not in json.dumps(document)


def test_key_named_by_its_label_is_denied(registry, pullgate):
    key = secret_access_key()
    files = {"srv/app/run": images.File(b"#!/bin/sh\n", mode=0o755)}
    layer, diff_id = images.make_layer(files)
    config = images.make_config(
        [diff_id], "1000:1000", "amd64", "linux", None, None, None
    )
    config["config"]["Labels"] = {"aws_secret_access_key": key}
    config_blob = images.Blob.from_bytes(
        images.OCI_CONFIG, images.encode_json(config)
    )
    image = images.image_manifest(config_blob, [layer], "oci", None)
    images.push(registry.url, NAME, "label", image)
    proxy = pullgate(upstreams={"docker.io": registry.url})

    response = images.get_manifest(proxy.url, NAME, "label")

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == denial_message(
        image, "aws-secret-access-key in the image config"
    )
    assert key not in json.dumps(stored_document(proxy, image.digest))
