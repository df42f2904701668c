"""FATE input and stored FATE metadata from someone else: nothing leaves its directory, no archive
bomb fills the disk, nothing half-imported, and every refusal is one line."""

import hashlib
import json
import os

import pytest
import yaml

from casreg import fate
from casreg.errors import UnsafePath
from casreg.safepath import join_inside
from tests.helpers import one_line_error, run_cli, tree_files, write_file
from tests.test_fate import FIXTURE, PARTY, _checkpoint, _unzip


@pytest.fixture
def work(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    return tmp_path


def _files(root) -> dict:
    """Everything under ``root`` but the store (whose lock file changes on every read)."""
    return {k: v for k, v in tree_files(root).items() if k.split(os.sep)[0] != ".casreg"}


def _refs(work) -> dict:
    return json.loads(run_cli("refs", "--json", cwd=work, check=0).stdout)


# -- paths built from stored or received data ------------------------------------------------------
@pytest.mark.parametrize("part", ["", ".", "..", "/etc", "a/b", "a\\b", "a\0b", "../x"])
def test_join_inside_refuses_anything_but_one_plain_name(tmp_path, part):
    with pytest.raises(UnsafePath):
        join_inside(str(tmp_path), "ok", part)


def test_join_inside_refuses_a_symlink_out_of_the_base(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "base" / "link")
    assert join_inside(str(tmp_path / "base"), "a", "b.txt") == str(tmp_path / "base" / "a" / "b.txt")
    with pytest.raises(UnsafePath, match="through a symlink"):
        join_inside(str(tmp_path / "base"), "link", "x")


@pytest.mark.parametrize("party_model_id, version", [("guest#1#/ABS", "1"), ("guest#1#../../x", ".."),
                                                     ("guest#..#m", "1"), ("guest#1#m", ".")])
def test_v2_export_never_writes_outside_dest(work, party_model_id, version):
    """A version whose metadata (set by `commit --meta`, or pulled from a remote) names a path."""
    victim = work / "victim"
    write_file(victim / version / "guest" / "1" / "keep.txt", b"not yours")
    write_file(work / "model" / "model.json", b"{}")
    meta = {"fate_layout": "2", "party_model_id": party_model_id.replace("/ABS", str(victim)),
            "model_version": version}
    run_cli("commit", "model", "--ref", "models/evil/1", *[f"--meta={k}={v}" for k, v in meta.items()],
            cwd=work, check=0)
    before = _files(work)
    deep = work / "a" / "b" / "out"
    err = one_line_error(run_cli("fate", "export", "models/evil/1", deep, "--force", cwd=work))
    assert "cannot export models/evil/1" in err and "FATE 2.x location" in err
    assert _files(work) == before  # nothing written anywhere, victim untouched


def test_fate_names_are_checked_where_they_are_read(work):
    for bad in ("guest#1#/abs", "guest#..#m", "guest#1#.hidden", "guest#1#a\\b", "guest#1#"):
        assert not fate.is_party_model_id(bad)
        assert "not a FATE party model id" in one_line_error(run_cli("versions", bad, cwd=work))
    for bad in ("..", ".", ".5", "a/b", ""):
        with pytest.raises(Exception, match="not a FATE model version"):
            fate.check_version(bad)
    write_file(work / "fate2" / "m1" / "0" / "guest" / "9#9" / "lr_0" / "out", b"x")
    assert "not a FATE party id" in one_line_error(run_cli("fate", "import", work / "fate2", cwd=work))


def test_a_bad_name_refuses_the_whole_import_before_anything_is_stored(work):
    for party in ("guest#1#a", "guest#1#b c"):  # the second makes no legal ref (a space)
        write_file(work / "cache" / party / "1" / "define" / "a.yaml", b"a")
    assert "invalid ref name" in one_line_error(run_cli("fate", "import", work / "cache", cwd=work))
    assert _refs(work) == {}


def test_checkpoint_model_file_outside_its_step_is_refused(work):
    """database.yaml names the model file; ../ must not make casreg read (and vouch for) other files."""
    vdir = work / "fate" / PARTY / "202611230010"
    _unzip(FIXTURE, vdir)
    step = vdir / "checkpoint" / "hetero_lr_0" / "1#step_1"
    _checkpoint(step, 1, "step_1", b"model")
    outside = write_file(work / "secret.pb", b"someone else's file")
    db = yaml.safe_load((step / "database.yaml").read_text())
    db["models"]["HeteroLogisticRegressionParam"].update(
        filename=os.path.relpath(outside, step), sha1=hashlib.sha1(b"someone else's file").hexdigest())
    (step / "database.yaml").write_text(yaml.safe_dump(db))
    proc = run_cli("fate", "import", vdir, cwd=work)
    assert proc.returncode == 1 and "outside the step" in proc.stderr.decode()
    assert f"checkpoints/{PARTY}/202611230010/hetero_lr_0/1#step_1" not in _refs(work)


def test_zip_export_does_not_follow_a_stored_symlink(work):
    """A stored link to a local file would put that file's bytes into the archive."""
    secret = write_file(work / "secret.txt", b"private key")
    write_file(work / "model" / "define" / "a.yaml", b"a")
    os.symlink(secret, work / "model" / "define" / "leak.yaml")
    run_cli("commit", "model", "--ref", f"models/{PARTY}/1", cwd=work, check=0)
    err = one_line_error(run_cli("fate", "export", f"models/{PARTY}/1", "out.zip", cwd=work))
    assert "define/leak.yaml is a symlink" in err
    assert not (work / "out.zip").exists()
