"""Scope, exceptions and source rules on the pulls runtimes make."""

from pgtest import images, skopeo
from pgtest.pullgate import run_command


def root_index(name: str, tag: str, registry) -> images.Manifest:
    amd64 = images.image(
        [{"app/run": b"amd64\n" * 10}], architecture="amd64", user="root"
    )
    arm64 = images.image(
        [{"app/run": b"arm64\n" * 10}],
        architecture="arm64",
        variant="v8",
        user="root",
    )
    index = images.index([amd64, arm64])
    images.push(registry.url, name, tag, index)
    return index


TAG_SCOPED = """\
version: 2
rules:
  - name: no-root-latest
    when: 'config.user == "root"'
    action: deny
    message: latest images must not run as root
    scope:
      tags: [latest]
"""


def test_tag_scope_covers_platform_manifest(registry, pullgate, skopeo_client):
    index = root_index("team/app", "latest", registry)
    root_index("team/app", "1", registry)
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=TAG_SCOPED)

    # A runtime requests the index by tag, then the platform by digest.
    tagged = images.get_manifest(proxy.url, "team/app", "latest")
    child = images.get_manifest(
        proxy.url, "team/app", index.child("amd64").digest
    )
    result, _ = skopeo_client.copy(
        f"{proxy.host}/team/app:1", architecture="amd64"
    )

    assert tagged.status_code == 200
    assert child.status_code == 403
    assert child.json()["errors"][0]["message"] == (
        f"image {index.child('amd64').digest} is denied by policy: "
        "no-root-latest: latest images must not run as root"
    )
    # The same images under another tag are outside the scope.
    assert result.returncode == 0, result.stderr


def test_tag_exception_covers_platform_manifest(
    registry, pullgate, skopeo_client
):
    index = root_index("legacy/app", "1", registry)
    proxy = pullgate(
        upstreams={"docker.io": registry.url}, policy=EXCEPTED
    )

    result, out = skopeo_client.copy(
        f"{proxy.host}/legacy/app:1", architecture="arm64"
    )

    assert result.returncode == 0, result.stderr
    copied = skopeo.dir_manifest(out)
    assert images.sha256_digest(copied) == index.child("arm64").digest


SOURCE_RULES = """\
version: 2
rules:
  - name: no-docker-hub
    when: 'image.registry == "docker.io"'
    action: deny
    message: pull from the internal mirror instead
  - name: sandbox-images
    when: 'image.repository.startsWith("sandbox/")'
    action: warn
    message: sandbox images are not supported
exceptions:
  - images: ["docker.io/vendor/app:1"]
    rules: [no-docker-hub]
    reason: vendor image not yet mirrored
    expires: 2999-12-31
"""


def test_source_exception_serves_blobs(registry, pullgate, skopeo_client):
    image = images.image([{"app/run": b"vendor\n" * 10}], user="1000")
    images.push(registry.url, "vendor/app", "1", image)
    images.push(registry.url, "vendor/app", "2", image)
    proxy = pullgate(
        upstreams={"docker.io": registry.url}, policy=SOURCE_RULES
    )

    result, out = skopeo_client.copy(f"{proxy.host}/vendor/app:1")
    other = images.get_manifest(proxy.url, "vendor/app", "2")

    assert result.returncode == 0, result.stderr
    for blob in image.blobs:
        assert skopeo.dir_blob(out, blob.digest).read_bytes() == blob.data
    assert other.status_code == 403
    assert other.json()["errors"][0]["message"] == (
        "repository docker.io/vendor/app is denied by policy: "
        "no-docker-hub: pull from the internal mirror instead"
    )


def test_source_warning_reaches_client(registry, pullgate):
    image = images.image([{"app/run": b"sandbox\n" * 10}], user="1000")
    images.push(registry.url, "sandbox/app", "1", image)
    policy = SOURCE_RULES.replace(
        '"docker.io/vendor/app:1"', '"docker.io/sandbox/*:*"'
    )
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=policy)

    first = images.get_manifest(proxy.url, "sandbox/app", "1")
    again = images.get_manifest(proxy.url, "sandbox/app", "1")

    for response in (first, again):
        assert response.status_code == 200
        assert response.headers["Warning"] == (
            '299 - "pullgate: sandbox-images: sandbox images are not '
            'supported"'
        )


def test_rule_reading_source_is_rejected(registry, pullgate_bin, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 2\n"
        "rules:\n"
        "  - name: untrusted\n"
        "    when: 'source.repository.startsWith(\"untrusted/\")'\n"
        "    action: deny\n"
        "    message: untrusted repository\n"
    )

    result = run_command(
        pullgate_bin, ["policy", "lint", str(policy)], tmp_path
    )

    assert result.returncode == 1
    assert result.stdout == (
        f"{policy}:4:12: error: when of rule \"untrusted\": source is where "
        "the image was first pulled from, not the request being judged; "
        "read image.registry or image.repository in a rule that reads "
        "nothing else, or limit the rule with scope\n"
        "1 error, 0 warnings\n"
    )


SCOPED = """\
version: 2
rules:
  - name: root-in-production
    when: 'config.user == "root"'
    action: deny
    message: production images must not run as root
    scope:
      repositories: ["prod/*"]
"""


def test_scope_applies_per_repository(registry, pullgate):
    image = images.image([{"app/run": b"scoped\n" * 20}], user="root")
    images.push(registry.url, "dev/app", "1", image)
    images.push(registry.url, "prod/app", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=SCOPED)

    dev = images.get_manifest(proxy.url, "dev/app", "1")
    prod = images.get_manifest(proxy.url, "prod/app", "1")
    dev_again = images.get_manifest(proxy.url, "dev/app", "1")

    assert dev.status_code == 200
    assert prod.status_code == 403
    assert prod.json()["errors"][0]["message"] == (
        f"image {image.digest} is denied by policy: root-in-production: "
        "production images must not run as root"
    )
    assert dev_again.status_code == 200
    # One inspection served both repositories.
    assert proxy.log_text().count("event=inspection_started") == 1


EXCEPTED = """\
version: 2
rules:
  - name: no-root
    when: 'config.user == "root"'
    action: deny
    message: image runs as root
exceptions:
  - images: ["docker.io/legacy/app:1"]
    rules: [no-root]
    reason: vendor image until it is rebuilt
    expires: 2999-12-31
"""


def test_exception_allows_one_tag(registry, pullgate):
    image = images.image([{"app/run": b"legacy\n" * 20}], user="root")
    images.push(registry.url, "legacy/app", "1", image)
    images.push(registry.url, "legacy/app", "2", image)
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=EXCEPTED)

    excepted = images.get_manifest(proxy.url, "legacy/app", "1")
    other_tag = images.get_manifest(proxy.url, "legacy/app", "2")

    assert excepted.status_code == 200
    assert excepted.content == image.data
    assert other_tag.status_code == 403
    assert other_tag.json()["errors"][0]["message"] == (
        f"image {image.digest} is denied by policy: no-root: "
        "image runs as root"
    )


def test_tag_exception_covers_head_then_digest(registry, pullgate):
    image = images.image([{"app/run": b"single\n" * 20}], user="root")
    images.push(registry.url, "legacy/app", "1", image)
    proxy = pullgate(upstreams={"docker.io": registry.url}, policy=EXCEPTED)

    # containerd resolves the tag with HEAD, then gets the manifest by
    # the digest it learned.
    head = images.get_manifest(proxy.url, "legacy/app", "1", "HEAD")
    by_digest = images.get_manifest(proxy.url, "legacy/app", image.digest)

    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == image.digest
    assert by_digest.status_code == 200
    assert by_digest.content == image.data
