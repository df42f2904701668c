"""FATE's archives kept bit for bit: `fate export x.zip` gives back the very zip FATE-Flow packaged
(the SHA-256 FATE-Flow 1.9+ recorded, the SHA-1 1.7/1.8 did), at a small cost in stored bytes."""

import hashlib
import io
import json
import os
import shutil
import zipfile

import pytest

from casreg import fate, ziplayout
from casreg.errors import CasregError, Corrupt, InvalidInput
from casreg.registry import Registry
from tests.helpers import one_line_error, run_cli

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "fate")
NAME = "guest#9999#guest-9999#host-10000#model_2020061215063879320146.zip"
PARTY = "guest#9999#guest-9999#host-10000#model"
VERSION = "2020061215063879320146"
REF = f"models/{PARTY}/{VERSION}"
FATE_MYSQL = os.path.join(HERE, "fate1112-mysql", NAME)   # what FATE-Flow 1.11.2 put in MySQL
FATE_COS = os.path.join(HERE, "fate1112-cos", NAME)       # the same model, packaged again for COS
FATE_SERVING = os.path.join(HERE, NAME)                   # FATE-Serving's test archive (made on Windows)
RECORDED_SHA256 = "d67543e0e894071f6f2e5575194bef86710b040d23d583bfdf7726621d6b1fa8"


def _sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def registry(tmp_path):
    for path in (FATE_MYSQL, FATE_COS, FATE_SERVING):
        if not os.path.exists(path):
            pytest.fail(f"the FATE fixture is missing: {path}", pytrace=False)
    reg = Registry.init(str(tmp_path / "store" / ".casreg"))
    yield reg
    reg.close()


@pytest.mark.parametrize("archive", [FATE_MYSQL, FATE_SERVING], ids=["fate-flow-1.11.2", "windows-made"])
def test_export_gives_back_the_archive_fate_packaged(registry, tmp_path, archive):
    report = registry.fate_import(archive)
    assert list(report.versions) == [REF] and report.archives[REF]["sha256"] == _sha256(archive)
    done = registry.fate_export(REF, str(tmp_path / "out.zip"))
    assert done.identical and done.sha256 == _sha256(archive)
    assert (tmp_path / "out.zip").read_bytes() == open(archive, "rb").read()
    assert done.sha1 == hashlib.sha1(open(archive, "rb").read()).hexdigest()


def test_fate_flow_s_recorded_sha256_comes_back_at_a_small_cost(registry, tmp_path):
    assert _sha256(FATE_MYSQL) == RECORDED_SHA256
    report = registry.fate_import(FATE_MYSQL, recorded={"sha256": RECORDED_SHA256})
    kept = report.archives[REF]
    with_layout = registry.stats()["stored_bytes"]
    plain = Registry.init(str(tmp_path / "plain" / ".casreg"))
    with zipfile.ZipFile(FATE_MYSQL) as zf:
        zf.extractall(tmp_path / "tree")
    plain.commit(str(tmp_path / "tree"), REF)
    without = plain.stats()["stored_bytes"]
    plain.close()
    # FATE-Flow's own zlib choices are found again: only headers are kept, not the members' data
    assert kept["verbatim_bytes"] < kept["archive_bytes"] // 4
    assert with_layout - without < 0.10 * without, (with_layout, without)
    done = registry.fate_export(REF, str(tmp_path / "again.zip"))
    assert done.sha256 == RECORDED_SHA256


def test_reimport_stores_nothing_and_moves_nothing(registry):
    registry.fate_import(FATE_MYSQL)
    refs, stored = dict(registry.list_refs()), registry.stats()["stored_bytes"]
    again = registry.fate_import(FATE_MYSQL)
    assert again.unchanged == [REF] and again.new_stored_bytes == 0 and again.archives[REF]["unchanged"]
    assert dict(registry.list_refs()) == refs and registry.stats()["stored_bytes"] == stored


def test_another_packaging_of_the_same_model_is_one_version_two_archives(registry, tmp_path):
    registry.fate_import(FATE_MYSQL)
    version = registry.resolve(REF)
    report = registry.fate_import(FATE_COS)
    assert report.unchanged == [REF] and registry.resolve(REF) == version  # same files, same version
    assert registry.fate_export(REF, str(tmp_path / "cos.zip")).sha256 == _sha256(FATE_COS)
    fresh = registry.fate_export(REF, str(tmp_path / "fresh.zip"), fresh=True)
    assert not fresh.identical and fresh.sha256 not in (_sha256(FATE_COS), _sha256(FATE_MYSQL))
    with zipfile.ZipFile(tmp_path / "fresh.zip") as a, zipfile.ZipFile(FATE_COS) as b:
        assert {i.filename: a.read(i) for i in a.infolist()} == {i.filename: b.read(i) for i in b.infolist()}
    assert registry.metadata(REF)["fate_archive_sha256"] == _sha256(FATE_COS)


def test_layout_travels_with_the_version_to_another_store(registry, tmp_path):
    registry.fate_import(FATE_MYSQL)
    from casreg.remotes import ops
    Registry.init(str(tmp_path / "remote")).close()
    ops.config(registry).add("origin", f"file://{tmp_path / 'remote'}")
    ops.push_refs(registry, "origin", [REF])
    other = Registry.init(str(tmp_path / "other" / ".casreg"))
    ops.config(other).add("origin", f"file://{tmp_path / 'remote'}")
    ops.pull_ref(other, "origin", REF)
    assert other.fate_export(REF, str(tmp_path / "there.zip")).sha256 == RECORDED_SHA256
    assert other.verify(full=True) == []
    other.close()


def test_an_archive_that_fails_its_recorded_digest_is_refused_before_anything_is_stored(registry):
    with pytest.raises(Corrupt, match="FATE recorded"):
        registry.fate_import(FATE_MYSQL, recorded={"sha256": "0" * 64})
    assert registry.list_refs() == []


def test_recorded_digests_with_a_directory_are_refused_not_ignored(registry, tmp_path):
    """FATE-Flow hashes the zip it packaged; the same files as a directory have no such bytes."""
    version_dir = tmp_path / "cache" / PARTY / VERSION
    with zipfile.ZipFile(FATE_MYSQL) as zf:
        zf.extractall(version_dir)
    with pytest.raises(InvalidInput, match="recorded digests apply to an archive"):
        registry.fate_import(str(version_dir), recorded={"sha256": RECORDED_SHA256})
    assert registry.list_refs() == []
    with pytest.raises(InvalidInput, match="no md5 digest"):
        registry.fate_import(FATE_MYSQL, recorded={"md5": "0" * 32})
    assert registry.list_refs() == []
    assert list(registry.fate_import(str(version_dir)).versions) == [REF]  # without: the directory imports


def test_a_damaged_layout_is_reported_not_used(registry, tmp_path):
    with pytest.raises(Corrupt, match="layout does not parse"):
        ziplayout.Layout.decode(b"CZL1\x00\x00\x00\x02{}")
    with pytest.raises(Corrupt, match="layout does not parse"):
        ziplayout.Layout.decode(b"PK\x03\x04")


def test_a_refused_checkpoint_is_not_kept_in_the_archive_either(registry, tmp_path):
    with zipfile.ZipFile(FATE_MYSQL) as src, zipfile.ZipFile(tmp_path / NAME, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("checkpoint/hetero_lr_0/1#step_1/database.yaml",
                     "step_index: 1\nstep_name: step_1\nmodels:\n  P:\n    sha1: '00'\n")
        dst.writestr("checkpoint/hetero_lr_0/1#step_1/P.pb", b"secret weights the SHA-1 does not match")
        dst.writestr("checkpoint/hetero_lr_0/1#step_1/P.json", b"{}")
    report = registry.fate_import(str(tmp_path / NAME))
    assert any("archive not kept" in p for p in report.problems) and REF not in report.archives
    done = registry.fate_export(REF, str(tmp_path / "out.zip"))
    assert not done.identical
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert not [n for n in zf.namelist() if n.startswith("checkpoint/hetero_lr_0/1#step_1/")]
        assert b"secret weights" not in b"".join(zf.read(n) for n in zf.namelist())


def test_cli_export_prints_both_digests(tmp_path):
    shutil.copy(FATE_MYSQL, tmp_path / NAME)
    run_cli("init", cwd=tmp_path, check=0)
    out = json.loads(run_cli("fate", "import", NAME, "--json", cwd=tmp_path, check=0).stdout)
    assert out["archives"][REF]["sha256"] == RECORDED_SHA256
    lines = run_cli("fate", "export", REF, "x.zip", cwd=tmp_path, check=0).stdout.decode().splitlines()
    assert lines[0] == f"sha256 {RECORDED_SHA256}  x.zip"
    assert lines[1].startswith(f"sha1   {hashlib.sha1((tmp_path / 'x.zip').read_bytes()).hexdigest()}")
    proc = run_cli("fate", "export", REF, "x.zip", cwd=tmp_path)
    assert proc.returncode != 0 and "exists" in one_line_error(proc)


def test_rebuild_refuses_a_member_the_version_lacks(registry, tmp_path):
    registry.fate_import(FATE_MYSQL)
    buf = io.BytesIO()
    version = registry.resolve(REF)
    from casreg import notes
    assert notes.attachment(registry, version, fate.names.LAYOUTS + RECORDED_SHA256, buf)
    layout = ziplayout.Layout.decode(buf.getvalue())
    with pytest.raises(Corrupt, match="lacks"):
        ziplayout.rebuild(layout, lambda path: None, io.BytesIO())


def _component_archive(tmp_path, component="secureboost_0"):
    """A 1.9+ component archive, packed as FATE-Flow packs one (shutil.make_archive of the
    component's variables/data and checkpoint directories)."""
    with zipfile.ZipFile(FATE_MYSQL) as zf:
        zf.extractall(tmp_path / "version")
    root = tmp_path / "component"
    shutil.copytree(tmp_path / "version" / "variables" / "data" / component,
                    root / "variables" / "data" / component)
    base = tmp_path / "archives" / f"{PARTY}_{VERSION}_{component}"
    return shutil.make_archive(str(base), "zip", root)


def test_a_component_archive_is_imported_as_that_component(registry, tmp_path):
    archive = _component_archive(tmp_path)
    report = registry.fate_import(archive)
    ref = f"components/{PARTY}/{VERSION}/secureboost_0"
    assert list(report.versions) == [ref] and report.archives[ref]["sha256"] == _sha256(archive)
    meta = registry.metadata(ref)
    assert (meta["fate_kind"], meta["component"], meta["party_model_id"]) == ("component", "secureboost_0", PARTY)
    assert fate.export(registry, ref, str(tmp_path / "c.zip")).sha256 == _sha256(archive)
    registry.fate_import(FATE_MYSQL)  # the pipeline archive shares every byte of the component's files
    assert registry.fate_import(archive).new_stored_bytes == 0


def test_a_component_archive_named_for_another_component_is_refused(registry, tmp_path):
    archive = _component_archive(tmp_path)
    renamed = os.path.join(os.path.dirname(archive), f"{PARTY}_{VERSION}_dataio_0.zip")
    os.rename(archive, renamed)
    with pytest.raises(CasregError, match="holds component secureboost_0"):
        registry.fate_import(renamed)
    assert registry.list_refs() == []
