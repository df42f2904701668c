"""FATE input and stored FATE metadata from someone else: nothing leaves its directory, no archive
bomb fills the disk, nothing half-imported, and every refusal is one line."""

import hashlib
import io
import json
import os
import stat
import time
import warnings
import zipfile

import pytest
import yaml

from casreg import archive, fate
from casreg.errors import HostileArchive, UnsafePath
from casreg.safepath import join_inside
from tests.helpers import one_line_error, random_bytes, run_cli, tree_files, write_file
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
        one_line_error(run_cli("versions", bad, cwd=work))  # any model name may be asked for: one line
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


# -- archives --------------------------------------------------------------------------------------
def _zip(path, entries, compression=zipfile.ZIP_STORED):
    """``entries``: (name, bytes) or (ZipInfo, bytes); duplicates allowed (zipfile only warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in entries:
                z.writestr(name, data)
    return path


def _import_refused(work, archive_path, env=None) -> str:
    """Import ``archive_path`` expecting a one-line refusal; nothing stored, nothing left in TMPDIR."""
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    err = one_line_error(run_cli("fate", "import", archive_path, cwd=work, env={"TMPDIR": str(tmp), **(env or {})}))
    assert _refs(work) == {} and os.listdir(tmp) == []
    return err


def test_zip_bomb_is_refused_from_its_headers_before_anything_is_written(work):
    bomb = work / f"{PARTY}_202611230020.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("define/define_meta.yaml", b"a: 1")
        with z.open("variables/data/weights.bin", "w") as f:
            zeros = bytes(1 << 20)
            for _ in range(300):  # 300 MiB of zeros: about 300 KiB deflated
                f.write(zeros)
    assert bomb.stat().st_size < 1 << 20
    started = time.monotonic()
    err = _import_refused(work, bomb)
    assert time.monotonic() - started < 3  # refused up front, not after inflating 300 MiB
    assert bomb.name in err and "weights.bin" in err and "CASREG_ARCHIVE_MAX_RATIO" in err


@pytest.mark.slow
def test_archive_limits_come_from_the_environment(work):
    big = _zip(work / f"{PARTY}_202611230021.zip",
               [("define/a.bin", random_bytes(600_000, "a")), ("define/b.bin", random_bytes(600_000, "b"))])
    assert "CASREG_ARCHIVE_MAX_BYTES" in _import_refused(work, big, {"CASREG_ARCHIVE_MAX_BYTES": "1000000"})
    many = _zip(work / f"{PARTY}_202611230022.zip", [(f"define/{n}.yaml", b"x") for n in range(5)])
    assert "5 members" in _import_refused(work, many, {"CASREG_ARCHIVE_MAX_MEMBERS": "4"})
    squeezed = _zip(work / f"{PARTY}_202611230023.zip", [("define/w.bin", bytes(2 << 20))], zipfile.ZIP_DEFLATED)
    assert "ratio limit of 20:1" in _import_refused(work, squeezed, {"CASREG_ARCHIVE_MAX_RATIO": "20"})
    assert "positive whole number" in _import_refused(work, many, {"CASREG_ARCHIVE_MAX_MEMBERS": "lots"})
    run_cli("fate", "import", many, cwd=work, env={"CASREG_ARCHIVE_MAX_MEMBERS": "5"}, check=0)


def test_a_header_that_lies_is_caught_while_extracting(tmp_path, monkeypatch):
    """zipfile stops at the size a header gives; casreg counts what it writes all the same."""
    path = _zip(tmp_path / "one.zip", [("define/w.bin", b"small")])
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(bytes(3 << 20)))
    with pytest.raises(HostileArchive, match="past the 5 bytes its header says"):
        archive.extract_zip(str(path), str(tmp_path / "out"))


def test_overlapping_members_are_refused(work):
    """Two central-directory entries sharing one compressed stream (the "better zip bomb" trick)."""
    path = _zip(work / f"{PARTY}_202611230025.zip", [("define/a.bin", random_bytes(100_000)), ("define/b.bin", b"x")])
    data = bytearray(path.read_bytes())
    cd = data.index(b"PK\x01\x02")
    second = data.index(b"PK\x01\x02", cd + 4)
    data[second + 42:second + 46] = data[cd + 42:cd + 46]  # b's local header offset := a's
    data[second + 16:second + 28] = data[cd + 16:cd + 28]  # and a's crc and sizes
    path.write_bytes(bytes(data))
    assert "overlapping members" in _import_refused(work, path)


def _special(name, mode):
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize("entries, why", [
    ([("/tmp/casreg-abs.txt", b"x")], "outside the destination"),
    ([("define/../../x.txt", b"x")], "outside the destination"),
    ([("define\\..\\..\\x.txt", b"x")], "outside the destination"),
    ([("define/a.yaml", b"good"), ("define/a.yaml", b"evil")], "appears twice"),
    ([("define/", b""), ("define", b"file where a dir was")], "appears twice"),
    ([(_special("define/link", stat.S_IFLNK | 0o777), b"/etc/passwd")], "is a symlink"),
    ([(_special("define/tty", stat.S_IFCHR | 0o666), b"")], "a device, FIFO or socket"),
    ([(_special("define/fifo", stat.S_IFIFO | 0o666), b"")], "a device, FIFO or socket"),
])
def test_hostile_zip_members_are_refused(work, entries, why):
    err = _import_refused(work, _zip(work / f"{PARTY}_202611230024.zip", entries))
    assert why in err and "202611230024.zip" in err
    assert not os.path.exists("/tmp/casreg-abs.txt")


@pytest.mark.slow
# -- symlinked directories, refused checkpoints ----------------------------------------------------
def test_a_symlinked_version_directory_is_refused_naming_it(work):
    elsewhere = _unzip(FIXTURE, work / "elsewhere" / "202611230030")
    cache = work / "cache"
    _unzip(FIXTURE, cache / PARTY / "202611230031")
    os.symlink(elsewhere, cache / PARTY / "202611230030")
    err = one_line_error(run_cli("fate", "import", cache, cwd=work))
    assert f"{PARTY}/202611230030 is a symlink" in err and "give the real path" in err
    assert _refs(work) == {}
    os.symlink(cache / PARTY / "202611230031", work / "link-to-version")  # the source itself
    assert "link-to-version is a symlink" in one_line_error(run_cli("fate", "import", "link-to-version/", cwd=work))
    os.unlink(cache / PARTY / "202611230030")
    os.symlink("202611230031", cache / PARTY / "202611230030")  # pointing inside the cache: still no
    assert "is a symlink" in one_line_error(run_cli("fate", "import", cache / PARTY, cwd=work))
    assert _refs(work) == {}
    os.unlink(cache / PARTY / "202611230030")
    os.symlink(FIXTURE, cache / PARTY / "notes.zip")  # a link to a file is no part of the layout: fine
    run_cli("fate", "import", cache / PARTY, cwd=work, check=0)
    run_cli("fate", "export", f"models/{PARTY}/202611230031", "out", cwd=work, check=0)
    assert tree_files(work / "out") == tree_files(cache / PARTY / "202611230031")


def test_a_symlinked_checkpoint_directory_is_refused(work):
    vdir = work / "fate" / PARTY / "202611230032"
    _unzip(FIXTURE, vdir)
    _checkpoint(work / "other" / "hetero_lr_0" / "1#step_1", 1, "step_1", b"model")
    os.symlink(work / "other", vdir / "checkpoint")
    assert "checkpoint is a symlink" in one_line_error(run_cli("fate", "import", vdir, cwd=work))
    assert _refs(work) == {}
