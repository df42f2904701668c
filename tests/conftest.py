import os

import pytest

from casreg.repo import Repository


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
    yield server
    server.stop()
