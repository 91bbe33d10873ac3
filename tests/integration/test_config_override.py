"""Command-line options override the configuration file."""

from pgtest import images

NAME = "team/app"
TAG = "1"


def test_cli_upstream_replaces_file_list(registry_factory, pullgate):
    from_file = registry_factory("from-file")
    from_cli = registry_factory("from-cli")
    file_image = images.image([{"etc/origin": b"file\n"}])
    cli_image = images.image([{"etc/origin": b"command line\n"}])
    images.push(from_file.url, NAME, TAG, file_image)
    images.push(from_cli.url, NAME, TAG, cli_image)
    config = {
        "upstreams": [
            {"name": "docker.io", "url": from_file.url},
            {"name": "mirror.test", "url": from_file.url},
        ]
    }
    proxy = pullgate(config=config, upstreams={"docker.io": from_cli.url})

    default = images.get_manifest(proxy.url, NAME, TAG)
    dropped = images.get_manifest(proxy.url, f"mirror.test/{NAME}", TAG)

    assert default.status_code == 200
    assert default.content == cli_image.data
    assert dropped.status_code == 404
    assert dropped.json()["errors"][0]["code"] == "NAME_UNKNOWN"

