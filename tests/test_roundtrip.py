"""Commit -> checkout is byte-identical for every shape of input."""

import io
import os

import blake3
import pytest

from casreg.errors import CasregError
from tests.helpers import random_bytes, tree_files, write_file


def roundtrip(repo, src, tmp_path, ref="models/t/v1"):
    result = repo.commit(str(src), ref, message="m")
    out = tmp_path / "out"
    repo.checkout(ref, str(out))
    return result, out


@pytest.mark.parametrize("size", [0, 1, 16383, 16384, 262144, 262145, 3 << 20])
def test_single_file_sizes(repo, tmp_path, size):
    data = random_bytes(size, f"s{size}")
    src = write_file(tmp_path / "src" / "weights.bin", data)
    result, out = roundtrip(repo, src, tmp_path)
    assert (out / "weights.bin").read_bytes() == data
    assert result.logical_bytes == size
    sink = io.BytesIO()
    repo.cat("models/t/v1:weights.bin", sink)
    assert sink.getvalue() == data


def test_exactly_one_chunk(repo, tmp_path):
    data = random_bytes(12345, "one")
    src = write_file(tmp_path / "src" / "f", data)
    result = repo.commit(src, "r/one")
    assert result.new_chunks == 1
    with repo.db.read() as txn:
        from casreg.objects.encoding import COMMIT, MANIFEST, TREE
        commit = repo.objects.load(txn, result.id, COMMIT)
        entry = repo.objects.load(txn, commit.tree, TREE).get("f")
        manifest = repo.objects.load(txn, entry.id, MANIFEST)
    assert manifest.chunks == [(blake3.blake3(data).digest(), len(data))]


def test_directory_tree_with_unicode_deep_symlinks_and_modes(repo, tmp_path):
    src = tmp_path / "src"
    write_file(src / "模型" / "权重.bin", random_bytes(300_000, "u"))
    write_file(src / "émoji 🚀.txt", b"hello\n")
    deep = src
    for i in range(40):
        deep = deep / f"d{i}"
    write_file(deep / "leaf.bin", random_bytes(70_000, "leaf"))
    run = write_file(src / "run.sh", b"#!/bin/sh\necho hi\n")
    os.chmod(run, 0o755)
    os.symlink("émoji 🚀.txt", src / "link")
    os.symlink("../outside", src / "dangling")
    (src / "empty").mkdir()
    _, out = roundtrip(repo, src, tmp_path)
    assert tree_files(out) == tree_files(src)
    assert os.stat(out / "run.sh").st_mode & 0o111


@pytest.mark.slow
def test_sparse_multi_gigabyte_file(repo, tmp_path):
    path = tmp_path / "src" / "sparse.bin"
    path.parent.mkdir()
    size = (2 << 30) + 12345
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(1 << 30)
        f.write(b"a marker in the middle")
    result, out = roundtrip(repo, path, tmp_path)
    assert result.logical_bytes == size
    restored = out / "sparse.bin"
    assert restored.stat().st_size == size
    assert restored.stat().st_blocks * 512 < 64 << 20, "zero chunks should be restored as holes"
    with open(restored, "rb") as f:
        f.seek(1 << 30)
        assert f.read(22) == b"a marker in the middle"
        f.seek(size - 4096)
        assert f.read() == bytes(4096)
    assert result.new_chunks <= 8  # a few distinct chunks, however large the file


def test_checkout_refuses_non_empty_destination_without_force(repo, tmp_path):
    src = write_file(tmp_path / "src" / "a", b"new")
    repo.commit(src, "r/a")
    dest = tmp_path / "dest"
    write_file(dest / "keep.txt", b"precious")
    with pytest.raises(CasregError, match="not empty"):
        repo.checkout("r/a", str(dest))
    assert (dest / "keep.txt").read_bytes() == b"precious"
    repo.checkout("r/a", str(dest), force=True)
    assert sorted(os.listdir(dest)) == ["a", "keep.txt"], "--force writes the version, keeps the rest"
    assert (dest / "keep.txt").read_bytes() == b"precious"
    repo.checkout("r/a", str(dest), force=True, clean=True)
    assert sorted(os.listdir(dest)) == ["a"]
    assert not [n for n in os.listdir(tmp_path) if ".casreg-" in n], "no temporary sibling left behind"


def test_forced_checkout_merges_directories_and_replaces_only_version_paths(repo, tmp_path):
    src = tmp_path / "src"
    write_file(src / "sub" / "w.bin", b"version")
    write_file(src / "top.txt", b"top")
    repo.commit(str(src), "r/m")
    dest = tmp_path / "dest"
    write_file(dest / "sub" / "w.bin", b"old weights")
    write_file(dest / "sub" / "notes.md", b"mine")
    write_file(dest / "top.txt" / "inner", b"a directory where the version has a file")
    with pytest.raises(CasregError, match="use --clean"):
        repo.checkout("r/m", str(dest), force=True)
    assert (dest / "sub" / "notes.md").read_bytes() == b"mine"
    assert not [n for n in os.listdir(dest) if ".casreg-" in n], "no temporary directory left behind"
    (dest / "top.txt" / "inner").unlink()
    (dest / "top.txt").rmdir()
    (dest / "link").symlink_to(tmp_path / "outside")
    repo.checkout("r/m", str(dest), force=True)
    assert (dest / "sub" / "w.bin").read_bytes() == b"version"
    assert (dest / "sub" / "notes.md").read_bytes() == b"mine"
    assert (dest / "top.txt").read_bytes() == b"top"
    assert os.path.islink(dest / "link") and not (tmp_path / "outside").exists()


def test_checkout_never_touches_the_store(tmp_path):
    """The data loss of issue 11: `checkout REF . --force` in the project directory deleted
    .casreg itself and every untracked file."""
    from casreg.repo import Repository
    project = tmp_path / "project"
    write_file(project / "model" / "w.bin", b"weights")
    write_file(project / "untracked.txt", b"my notes")
    with Repository.init(str(project / ".casreg")) as repo:
        repo.commit(str(project / "model"), "r/m")
        for dest in (project, project / ".casreg", project / ".casreg" / "x", tmp_path):
            with pytest.raises(CasregError, match="refusing to check out"):
                repo.checkout("r/m", str(dest), force=True, clean=True)
        assert (project / "untracked.txt").read_bytes() == b"my notes"
        assert repo.resolve("r/m")
        assert not (project / ".casreg" / "x").exists()
    with Repository(str(project / ".casreg")) as repo:
        assert repo.verify(full=True) == []


def test_checkout_into_existing_empty_directory(repo, tmp_path):
    src = write_file(tmp_path / "src" / "a", b"x")
    repo.commit(src, "r/a")
    (tmp_path / "empty").mkdir()
    repo.checkout("r/a", str(tmp_path / "empty"))
    assert (tmp_path / "empty" / "a").read_bytes() == b"x"


def test_the_store_never_stores_itself(tmp_path):
    from casreg.repo import Repository
    work = tmp_path / "work"
    write_file(work / "model.bin", b"weights")
    with Repository.init(str(work / ".casreg")) as repo:
        repo.commit(str(work), "r/w")
        assert [row["path"] for row in repo.ls("r/w")] == ["model.bin"]


def test_casregignore_and_patterns_choose_the_files(repo, tmp_path):
    """Issue 11: one FIFO in a model directory refused the whole commit, with no way around it."""
    from casreg.ignore import literal
    src = tmp_path / "model"
    write_file(src / "weights.bin", b"w")
    write_file(src / "run.tmp", b"t")
    write_file(src / "keep.tmp", b"k")
    write_file(src / "logs" / "a.log", b"l")
    write_file(src / "odd [1]#x" / "f", b"o")
    write_file(src / "notes.md", b"n")
    os.mkfifo(src / "pipe")
    (src / ".casregignore").write_text("*.tmp\n!keep.tmp\nlogs/\n")
    with pytest.raises(CasregError, match="--exclude"):
        repo.commit(str(src), "r/m")
    repo.commit(str(src), "r/m", exclude=["pipe", literal("odd [1]#x", directory=True)])
    assert sorted(r["path"] for r in repo.ls("r/m")) == [".casregignore", "keep.tmp", "notes.md", "weights.bin"]
    repo.commit(str(src), "r/only", exclude=["pipe"], include=["*.bin", "odd*/**"])
    assert sorted(r["path"] for r in repo.ls("r/only")) == ["odd [1]#x/f", "weights.bin"]
