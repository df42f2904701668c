import os

import pytest

from casreg.repo import Repository
from tests.remote_kinds import KINDS


@pytest.fixture
def repo(tmp_path):
    r = Repository.init(str(tmp_path / "store"))
    yield r
    r.close()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    from tests.servers import SeaweedFS
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweedfs")))
    # SeaweedFS runs without IAM here, so any key pair is accepted; the SDK insists on one.
    os.environ.setdefault("COS_SECRET_ID", "casreg-test")
    os.environ.setdefault("COS_SECRET_KEY", "casreg-test-secret")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "casreg-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "casreg-test-secret")
    yield server
    server.stop()


@pytest.fixture(params=KINDS)
def remote(request, tmp_path):
    """One real remote of each kind (file://, Redis, MariaDB, SeaweedFS speaking COS, and S3)."""
    from tests.remote_kinds import open_remote
    handle = open_remote(request.param, request, tmp_path)
    yield handle
    handle.cleanup()


def pytest_collection_modifyitems(items):
    """The fast lane (-m 'not slow') leaves out whatever needs a real server of its own (every
    test taking the ``remote`` or ``seaweed`` fixture) besides the modules marked slow."""
    for item in items:
        if {"remote", "seaweed"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
