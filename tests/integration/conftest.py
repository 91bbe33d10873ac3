"""Fixtures that start real servers on 127.0.0.1 for each test.

PULLGATE_BIN names the daemon under test (default: build/tests/pullgate in
the repository, where tests/run builds it). Every fixture stops what it
started, also when the test fails.
"""

import os
from pathlib import Path

import pytest

from pgtest import faulty, net, skopeo, tokenserver
from pgtest.registry import Registry
from pgtest.pullgate import Pullgate, exit_status_text

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_USER = "pgtest-user"
TOKEN_PASSWORD = "pgtest-password-3f9c1a7e"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Store each phase's report on the item, so that fixtures can print
    server logs during teardown when the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _test_failed(request) -> bool:
    node = request.node
    return any(
        getattr(node, f"report_{phase}", None) is not None
        and getattr(node, f"report_{phase}").failed
        for phase in ("setup", "call")
    )


@pytest.fixture(scope="session")
def pullgate_bin() -> Path:
    default = REPO_ROOT / "build" / "tests" / "pullgate"
    return Path(os.environ.get("PULLGATE_BIN", default))


@pytest.fixture
def registry_factory(tmp_path, request):
    """Start registries: registry_factory(label, token_server=None)."""
    started = []

    def start(label: str = "registry", token_server=None):
        instance = Registry(tmp_path / label, token_server)
        started.append(instance)
        instance.start()
        return instance

    yield start
    for instance in started:
        instance.stop()
        if _test_failed(request):
            print(f"--- {instance.log_path} (tail)")
            print(net.log_tail(instance.log_path))
        instance.remove_storage()


@pytest.fixture
def registry(registry_factory):
    """A docker-registry with push enabled and no authentication."""
    return registry_factory()


@pytest.fixture
def token_server(tmp_path):
    server = tokenserver.TokenServer(
        tmp_path / "token-server", TOKEN_USER, TOKEN_PASSWORD
    )
    yield server
    server.close()


@pytest.fixture
def auth_registry(registry_factory, token_server):
    """A docker-registry that requires tokens from token_server."""
    return registry_factory("auth-registry", token_server)


@pytest.fixture
def faulty_factory():
    """Start fault-injecting upstreams (see pgtest.faulty)."""
    started = []

    def start(name, tag, manifest, broken_digest, mode):
        upstream = faulty.FaultyUpstream(name, tag, manifest, broken_digest, mode)
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.close()


@pytest.fixture
def skopeo_client(tmp_path):
    return skopeo.Skopeo(tmp_path / "skopeo")


@pytest.fixture
def pullgate(pullgate_bin, tmp_path, request):
    """Start pullgate daemons: pullgate(upstreams=..., config=..., ...).

    Teardown stops each daemon with SIGTERM and fails the test when it
    does not exit with status 0 or when a sanitizer reported an error.
    """
    started = []

    def start(**kwargs):
        label = f"pullgate-{len(started)}"
        instance = Pullgate(pullgate_bin, tmp_path / label, **kwargs)
        started.append(instance)
        try:
            instance.start()
        except net.StartError as exc:
            error = str(exc)
        else:
            return instance
        pytest.fail(error, pytrace=False)

    yield start
    problems = []
    for instance in started:
        if instance.proc is None:
            continue
        was_running = instance.running()
        status = instance.stop()
        if was_running and status != 0:
            problems.append(
                f"pullgate {instance.host} stopped with "
                f"{exit_status_text(status)} after SIGTERM, expected 0"
            )
        report = instance.sanitizer_report()
        if report is not None:
            problems.append(f"sanitizer error in {instance.log_path}:\n{report}")
        if _test_failed(request) or problems:
            print(f"--- {instance.log_path} (tail)")
            print(net.log_tail(instance.log_path, 80))
        instance.remove_cache()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
