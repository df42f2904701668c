"""diff between versions and status of a directory against one."""

import json
import os

from tests.helpers import random_bytes, run_cli, write_file


def test_diff_lists_files_and_the_bytes_that_are_new(repo, tmp_path):
    src = tmp_path / "m"
    weights = random_bytes(2 << 20, "w")
    write_file(src / "weights.bin", weights)
    write_file(src / "conf.json", b"{}")
    write_file(src / "old.txt", b"gone soon")
    write_file(src / "sub" / "same.bin", b"same")
    repo.commit(str(src), "m/v1")
    write_file(src / "weights.bin", weights[:1 << 20] + random_bytes(100_000, "tail") + weights[(1 << 20) + 100_000:])
    os.unlink(src / "old.txt")
    write_file(src / "added.md", b"notes")
    repo.commit(str(src), "m/v2")
    d = repo.diff("m/v1", "m/v2")
    assert [(c.path, c.change) for c in d.changes] == [("added.md", "added"), ("old.txt", "removed"),
                                                       ("weights.bin", "changed")]
    assert 100_000 <= d.new_bytes < 600_000, d.new_bytes  # the edited region's chunks and the new file
    assert repo.diff("m/v2", "m/v2").changes == []


def test_status_of_a_directory_against_a_version(repo, tmp_path):
    src = tmp_path / "m"
    write_file(src / "a.bin", b"aaaa")
    write_file(src / "b.bin", b"bbbb")
    (src / ".casregignore").write_text("*.tmp\n")
    repo.commit(str(src), "m/v1")
    assert repo.status(str(src), "m/v1").clean
    write_file(src / "a.bin", b"aaab")  # same size, other bytes
    write_file(src / "scratch.tmp", b"ignored")
    write_file(src / "c.bin", b"new")
    os.unlink(src / "b.bin")
    st = repo.status(str(src), "m/v1")
    assert (st.added, st.removed, st.changed, st.unchanged) == (["c.bin"], ["b.bin"], ["a.bin"], 1)


def test_diff_and_status_on_the_cli(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    write_file(tmp_path / "m" / "w.bin", b"one")
    run_cli("commit", "m", "--ref", "models/x/v1", cwd=tmp_path, check=0)
    write_file(tmp_path / "m" / "w.bin", b"two!")
    assert run_cli("status", "m", "x/v1", cwd=tmp_path).returncode == 1
    run_cli("commit", "m", "--ref", "models/x/v2", cwd=tmp_path, check=0)
    out = run_cli("diff", "x/v1", "x/v2", cwd=tmp_path, check=0).stdout.decode()
    assert "M" in out and "w.bin" in out and "0 added, 0 removed, 1 changed" in out
    data = json.loads(run_cli("diff", "x/v1", "x/v2", "--json", cwd=tmp_path, check=0).stdout)
    assert data["counts"] == {"added": 0, "removed": 0, "changed": 1} and data["new_bytes"] == 4
    assert json.loads(run_cli("status", "m", "x/v2", "--json", cwd=tmp_path, check=0).stdout)["clean"]
