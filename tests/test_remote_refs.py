"""Remote refs read only as a push or a named fetch needs them (issue 15), on every real remote."""

from __future__ import annotations

import pytest

from casreg.remotes import ops
from casreg.remotes.sync import fetch, push
from casreg.remotes.wrappers import BackendWrapper
from tests.helpers import new_store, random_bytes, write_file

pytestmark = pytest.mark.slow  # real servers


class RefReads(BackendWrapper):
    """A real backend, with the names each ``refs`` call asked for written down (None: all)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.asked: list[list[str] | None] = []

    def refs(self, names=None):
        self.asked.append(None if names is None else list(names))
        return self.inner.refs(names)


def _version(repo, tmp_path, name: str, ref: str, seed: str, parents=None, weights: bytes | None = None):
    root = tmp_path / "src" / name
    write_file(root / "weights.bin", random_bytes(200_000, seed) if weights is None else weights)
    write_file(root / "config.json", seed.encode())
    return repo.commit(str(root), ref, parents=parents or ()).id


def test_push_and_named_fetch_read_only_the_names_they_move(remote, tmp_path):
    a = new_store(tmp_path, "a", remote)
    for i in range(5):
        _version(a, tmp_path, f"o{i}", f"models/other/v{i}", f"other-{i}")
    ops.push_refs(a, "origin", [f"models/other/v{i}" for i in range(5)])
    v1 = _version(a, tmp_path, "v1", "models/m/v1", "m-1")
    be = RefReads(remote.backend())
    try:
        [result] = push(a, be, ["models/m/v1"])
        assert result.new == v1 and be.asked == [["models/m/v1"]]
        b = new_store(tmp_path, "b", remote)
        be.asked.clear()
        got = fetch(b, "origin", be, ["models/m/v1"])
        assert got.refs == {"models/m/v1": v1}
        assert all(asked is not None and "models/other/v0" not in asked for asked in be.asked), be.asked
        assert b.resolve("remotes/origin/models/m/v1") == v1
    finally:
        be.close()


def test_a_new_name_over_history_the_remote_holds_sends_only_what_is_new(remote, tmp_path):
    """The remote holds part of the history under another name the push does not read: the
    negotiation finds it by asking, and sends only the new version."""
    a = new_store(tmp_path, "a", remote)
    weights = random_bytes(1 << 20, "hist")
    v1 = _version(a, tmp_path, "v1", "models/m/main", "hist-1", weights=weights)
    [first] = ops.push_refs(a, "origin", ["models/m/main"])
    v2 = _version(a, tmp_path, "v2", "models/m/feature", "hist-2", parents=["models/m/main"],
                  weights=weights[:-1000] + b"one fine-tune step")
    be = RefReads(remote.backend())
    try:
        [second] = push(a, be, ["models/m/feature"])
        assert be.asked == [["models/m/feature"]]
        assert second.old is None and second.new == v2
        assert second.bytes_sent < first.bytes_sent / 4, "v1's chunks are not sent again"
    finally:
        be.close()
    assert ops.ls_remote(a, "origin") == {"models/m/main": v1, "models/m/feature": v2}
    c = ops.clone(remote.url, str(tmp_path / "c"))
    assert c.verify(full=True) == [] and c.resolve("models/m/feature") == v2
