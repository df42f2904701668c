"""Ref names, compare-and-swap and the reflog."""

import pytest

from casreg.errors import CasregError, NotFound, RefConflict
from casreg.refs import check_ref_name
from tests.helpers import write_file

FATE_NAMES = [
    "models/guest#9999#arbiter-10000#guest-9999#host-10000#model/202006122116502527621",
    "checkpoints/guest#9999#guest-9999#host-10000#model/2020061215063879320146/hetero_lr_0/3#step_3",
    "models/lr-demo/v1",
    "remotes/origin/models/x/v_1.2",
    "模型/版本",
]
BAD_NAMES = ["", "/abs", "trail/", "a//b", "a/../b", "..", "a/.hidden", "x.lock", "a/b.lock/c",
             "end.", "sp ace", "col:on", "ti~lde", "car^et", "q?", "st*ar", "br[acket", "back\\slash",
             "ctl\x01", "nul\x00", "del\x7f", "@", "a@{1}", "x" * 401]


@pytest.mark.parametrize("name", FATE_NAMES)
def test_accepts_every_fate_name(name):
    assert check_ref_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_rejects_bad_names(name):
    with pytest.raises(CasregError, match="invalid ref name"):
        check_ref_name(name)


def test_existing_ref_moves_forward_or_by_expected_old(repo, tmp_path):
    a = repo.commit(write_file(tmp_path / "a" / "f", b"one"), "m/v")
    with pytest.raises(RefConflict, match="expected"):
        repo.commit(write_file(tmp_path / "b" / "f", b"two"), "m/v", expect_old="none")
    b = repo.commit(str(tmp_path / "b" / "f"), "m/v", expect_old=a.id.hex())
    assert repo.read_commit(b.id).parents == [a.id]
    with pytest.raises(CasregError, match="not in the history"):
        repo.commit(write_file(tmp_path / "c" / "f", b"three"), "m/v", parents=[a.id.hex()])
    with pytest.raises(RefConflict, match="expected"):
        repo.update_ref("m/v", a.id.hex(), expect_old=a.id.hex())  # stale expectation loses
    repo.update_ref("m/v", a.id.hex(), force=True)
    assert repo.resolve("m/v") == a.id
    log = repo.reflog("m/v")
    assert [e["new"] for e in log] == [a.id.hex(), b.id.hex(), a.id.hex()]
    assert log[-1]["old"] is None


def test_cas_conflict_when_ref_moves_during_commit(repo, tmp_path, monkeypatch):
    """A commit that checked the ref at its start loses if someone else moved it meanwhile."""
    base = repo.commit(write_file(tmp_path / "a" / "f", b"base"), "m/race")
    other = repo.commit(write_file(tmp_path / "o" / "f", b"other"), "m/other")
    original = repo._store_node

    def store_then_race(*args, **kwargs):
        tree = original(*args, **kwargs)
        repo.update_ref("m/race", "m/other", force=True)  # a concurrent writer wins the race
        return tree
    monkeypatch.setattr(repo, "_store_node", store_then_race)
    with pytest.raises(RefConflict):
        repo.commit(write_file(tmp_path / "b" / "f", b"mine"), "m/race", expect_old=base.id.hex())
    assert repo.resolve("m/race") == other.id


def test_concurrent_commits_to_one_name_both_stay_in_history(repo, tmp_path, monkeypatch):
    """Without --expect-old, a commit that lost the race to the name lands on top of the winner."""
    base = repo.commit(write_file(tmp_path / "a" / "f", b"base"), "m/race")
    original = repo._store_node
    winner = []

    def store_then_race(*args, **kwargs):
        tree = original(*args, **kwargs)
        if not winner:
            monkeypatch.setattr(repo, "_store_node", original)
            winner.append(repo.commit(write_file(tmp_path / "w" / "f", b"theirs"), "m/race").id)
        return tree
    monkeypatch.setattr(repo, "_store_node", store_then_race)
    mine = repo.commit(write_file(tmp_path / "b" / "f", b"mine"), "m/race").id
    assert [cid for cid, _ in repo.log("m/race")] == [mine, winner[0], base.id]


def test_delete_is_logged_and_restorable_until_gc(repo, tmp_path):
    a = repo.commit(write_file(tmp_path / "a" / "f", b"one"), "m/del")
    repo.delete_ref("m/del")
    with pytest.raises(CasregError, match="unknown ref"):
        repo.resolve("m/del")
    entry = repo.reflog("m/del")[0]
    assert entry["old"] == a.id.hex() and entry["new"] is None
    repo.update_ref("m/del", entry["old"])
    assert repo.resolve("m/del") == a.id


def test_resolve_by_unique_prefix(repo, tmp_path):
    a = repo.commit(write_file(tmp_path / "a" / "f", b"one"), "m/p")
    assert repo.resolve(a.id.hex()[:10]) == a.id


def test_names_resolve_the_way_git_resolves_them(repo, tmp_path):
    a = repo.commit(write_file(tmp_path / "a" / "f", b"one"), "models/mlp/v1").id
    b = repo.commit(write_file(tmp_path / "b" / "f", b"two"), "models/mlp/v2").id
    repo.update_ref("tags/golden", a.hex())
    assert repo.resolve("golden") == a and repo.resolve("mlp/v2") == b
    repo.update_ref("aliases/golden", b.hex())
    with pytest.raises(CasregError, match="ambiguous: it could be tags/golden, aliases/golden"):
        repo.resolve("golden")
    with pytest.raises(CasregError, match="too short: give at least 6"):
        repo.resolve(a.hex()[:4])
    assert repo.resolve(a.hex()[:8]) == a
    with pytest.raises(NotFound, match="did you mean .*mlp/v1"):
        repo.resolve("mlp/v3")


def test_git_ancestry_steps_after_a_name(repo, tmp_path):
    """`m~2`, `m^`, `m^2` (a merge's second parent), `m~^0` chains: git's steps, after any name
    or id; past the first version is NotFound, never another version."""
    ids = [repo.commit(write_file(tmp_path / f"v{i}" / "f", b"x%d" % i), "models/m/main").id for i in range(3)]
    side = repo.commit(write_file(tmp_path / "side" / "f", b"side"), "models/m/side").id
    merge = repo.commit(write_file(tmp_path / "merge" / "f", b"merged"), "models/m/main",
                        parents=[ids[2].hex(), side.hex()]).id
    assert repo.resolve("m/main^0") == merge
    assert repo.resolve("m/main~") == repo.resolve("m/main^") == repo.resolve("m/main~1") == ids[2]
    assert repo.resolve("m/main^2") == side
    assert repo.resolve("m/main~3") == repo.resolve("m/main~1~2") == repo.resolve("m/main^~^") == ids[0]
    assert repo.resolve(merge.hex()[:10] + "~2") == ids[1]
    with pytest.raises(NotFound, match="has 0 parents"):
        repo.resolve("m/main~4")
    with pytest.raises(NotFound, match="has 2 parents"):
        repo.resolve("m/main^3")
    with pytest.raises(NotFound):
        repo.resolve("nothing~1")
