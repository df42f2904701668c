import pytest

from casreg.repo import Repository


@pytest.fixture
def repo(tmp_path):
    r = Repository.init(str(tmp_path / "store"))
    yield r
    r.close()
