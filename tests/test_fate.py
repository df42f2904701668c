"""FATE-Flow models in and out of the registry, byte-identical, with FATE's own names."""

import hashlib
import io
import json
import os
import zipfile

import pytest
import yaml

from tests.helpers import one_line_error, random_bytes, run_cli, tree_files, write_file

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "fate",
                       "guest#9999#guest-9999#host-10000#model_2020061215063879320146.zip")
PARTY = "guest#9999#guest-9999#host-10000#model"
VERSION = "2020061215063879320146"


@pytest.fixture
def work(tmp_path):
    if not os.path.exists(FIXTURE):
        pytest.fail(f"the FATE fixture is missing: {FIXTURE}", pytrace=False)
    run_cli("init", cwd=tmp_path, check=0)
    return tmp_path


def _unzip(path, dest):
    with zipfile.ZipFile(path) as z:
        z.extractall(dest)
    return dest


def _checkpoint(step_dir, index, name, payload: bytes, sha1=None):
    write_file(os.path.join(step_dir, "HeteroLogisticRegressionParam.pb"), payload)
    write_file(os.path.join(step_dir, "HeteroLogisticRegressionParam.json"), b'{"weight": 1}')
    db = {"step_index": index, "step_name": name, "create_time": "2026-11-23T12:00:00",
          "models": {"HeteroLogisticRegressionParam": {"filename": "HeteroLogisticRegressionParam.pb",
                                                       "sha1": sha1 or hashlib.sha1(payload).hexdigest(),
                                                       "buffer_name": "LRModelParam"}}}
    write_file(os.path.join(step_dir, "database.yaml"), yaml.safe_dump(db).encode())


def _cache_with_checkpoints(root, versions=("202611230001", "202611230002")):
    """A model_local_cache tree: the real FATE model plus generated checkpoints and weights."""
    weights = random_bytes(2 << 20, "lr-weights")
    for n, version in enumerate(versions):
        vdir = os.path.join(root, "model_local_cache", PARTY, version)
        _unzip(FIXTURE, vdir)
        weights = weights[:500_000] + random_bytes(20_000, f"step{n}") + weights[520_000:]
        write_file(os.path.join(vdir, "variables", "data", "hetero_lr_0", "model", "weights.bin"), weights)
        for index in (1, 2, 3):
            _checkpoint(os.path.join(vdir, "checkpoint", "hetero_lr_0", f"{index}#step_{index}"), index,
                        f"step_{index}", random_bytes(300_000, f"{version}-{index}"))
    return os.path.join(root, "model_local_cache")


def test_real_archive_round_trip_is_byte_identical_and_idempotent(work):
    out = json.loads(run_cli("fate", "import", FIXTURE, "--json", cwd=work, check=0).stdout)
    ref = f"models/{PARTY}/{VERSION}"
    assert list(out["versions"]) == [ref] and out["new_stored_bytes"] > 0
    again = json.loads(run_cli("fate", "import", FIXTURE, "--json", cwd=work, check=0).stdout)
    assert again["unchanged"] == [ref] and again["new_stored_bytes"] == 0
    assert len(json.loads(run_cli("reflog", ref, "--json", cwd=work, check=0).stdout)) == 1  # no ref moved
    run_cli("fate", "export", ref, "exported", cwd=work, check=0)
    assert tree_files(work / "exported") == tree_files(_unzip(FIXTURE, work / "original"))
    line = run_cli("fate", "export", ref, "model.zip", cwd=work, check=0).stdout.decode()
    digest = hashlib.sha256((work / "model.zip").read_bytes()).hexdigest()
    assert line.startswith(f"sha256 {digest}")
    assert tree_files(_unzip(work / "model.zip", work / "from-zip")) == tree_files(work / "original")
    meta = json.loads(run_cli("show", ref, "--json", cwd=work, check=0).stdout)["meta"]
    assert {k: meta[k] for k in ("framework", "party_model_id", "model_version", "fate_layout", "role", "party_id",
                                 "fate_archive_sha256", "fate_archive_sha1")} == {
        "framework": "fate", "party_model_id": PARTY, "model_version": VERSION, "fate_layout": "1",
        "role": "guest", "party_id": "9999",
        "fate_archive_sha256": hashlib.sha256(open(FIXTURE, "rb").read()).hexdigest(),
        "fate_archive_sha1": hashlib.sha1(open(FIXTURE, "rb").read()).hexdigest()}
    assert (work / "model.zip").read_bytes() == open(FIXTURE, "rb").read()  # the very archive, bit for bit


@pytest.mark.slow
def test_cache_with_checkpoints_catalog_and_dedup(work):
    cache = _cache_with_checkpoints(str(work / "fate"))
    report = json.loads(run_cli("fate", "import", cache, "--json", cwd=work, check=0).stdout)
    assert sorted(report["versions"]) == [f"models/{PARTY}/202611230001", f"models/{PARTY}/202611230002"]
    assert f"checkpoints/{PARTY}/202611230002/hetero_lr_0/3#step_3" in report["checkpoints"]
    assert len(report["checkpoints"]) == 6
    stats = json.loads(run_cli("stats", "--json", cwd=work, check=0).stdout)
    assert stats["dedup_ratio"] > 1.8  # the second version shares all but the edited chunks
    models = json.loads(run_cli("models", "--json", cwd=work, check=0).stdout)
    assert [(m["model"], m["versions"], m["latest"]) for m in models] == [(PARTY, 2, "202611230002")]
    versions = json.loads(run_cli("versions", PARTY, "--json", cwd=work, check=0).stdout)
    assert [v["version"] for v in versions] == ["202611230001", "202611230002"]
    steps = json.loads(run_cli("checkpoint", "list", PARTY, "202611230001", "--json", cwd=work, check=0).stdout)
    assert [(s["component"], s["step_index"], s["step_name"]) for s in steps] == [
        ("hetero_lr_0", 1, "step_1"), ("hetero_lr_0", 2, "step_2"), ("hetero_lr_0", 3, "step_3")]
    src = os.path.join(cache, PARTY, "202611230001", "checkpoint", "hetero_lr_0", "2#step_2")
    run_cli("checkpoint", "get", PARTY, "202611230001", "hetero_lr_0", "2", "by-index", cwd=work, check=0)
    run_cli("checkpoint", "get", PARTY, "202611230001", "hetero_lr_0", "step_2", "by-name", cwd=work, check=0)
    assert tree_files(work / "by-index") == tree_files(src) == tree_files(work / "by-name")
    run_cli("fate", "export", f"models/{PARTY}/202611230002", "v2", cwd=work, check=0)
    assert tree_files(work / "v2") == tree_files(os.path.join(cache, PARTY, "202611230002"))


def test_checkpoint_with_wrong_sha1_is_reported_not_taken(work):
    vdir = work / "fate" / PARTY / "202611230009"
    _unzip(FIXTURE, vdir)
    _checkpoint(vdir / "checkpoint" / "hetero_lr_0" / "1#step_1", 1, "step_1", b"good model")
    _checkpoint(vdir / "checkpoint" / "hetero_lr_0" / "2#step_2", 2, "step_2", b"tampered", sha1="0" * 40)
    proc = run_cli("fate", "import", vdir, cwd=work)
    assert proc.returncode == 1
    assert "2#step_2" in proc.stderr.decode() and "SHA-1" in proc.stderr.decode()
    refs = json.loads(run_cli("refs", "--json", cwd=work, check=0).stdout)
    assert f"checkpoints/{PARTY}/202611230009/hetero_lr_0/1#step_1" in refs
    assert f"checkpoints/{PARTY}/202611230009/hetero_lr_0/2#step_2" not in refs
    # the refused step is not stored inside the version either, nor exported
    ref = f"models/{PARTY}/202611230009"
    run_cli("fate", "export", ref, "out", cwd=work, check=0)
    assert os.listdir(work / "out" / "checkpoint" / "hetero_lr_0") == ["1#step_1"]
    paths = [row["path"] for row in json.loads(run_cli("ls", ref, "--json", cwd=work, check=0).stdout)]
    assert not any("2#step_2" in p for p in paths)
    expected = {k: v for k, v in tree_files(vdir).items() if "2#step_2" not in k}
    assert tree_files(work / "out") == expected


def test_checkpoint_without_its_json_is_refused_as_fate_refuses_it(work):
    vdir = work / "fate" / PARTY / "202611230010"
    _unzip(FIXTURE, vdir)
    step = vdir / "checkpoint" / "hetero_lr_0" / "1#step_1"
    _checkpoint(step, 1, "step_1", b"good model")
    os.remove(step / "HeteroLogisticRegressionParam.json")
    proc = run_cli("fate", "import", vdir, cwd=work)
    assert proc.returncode == 1 and "HeteroLogisticRegressionParam.json" in proc.stderr.decode()
    paths = [row["path"] for row in json.loads(run_cli("ls", f"models/{PARTY}/202611230010", "--json",
                                                       cwd=work, check=0).stdout)]
    assert not any("1#step_1" in p for p in paths)


def _zip_with(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            z.writestr(name, data)
    return path


def test_bad_fate_input_is_one_clear_line(work):
    (work / "plain").mkdir()
    write_file(work / "plain" / "x.txt", b"x")
    assert "not a FATE layout" in one_line_error(run_cli("fate", "import", "plain", cwd=work))
    evil = _zip_with(work / f"{PARTY}_202611230003.zip", [("define/ok.yaml", b"a"), ("../../escape.txt", b"x")])
    assert "outside the destination" in one_line_error(run_cli("fate", "import", evil, cwd=work))
    assert not (work.parent / "escape.txt").exists()
    data = open(FIXTURE, "rb").read()
    truncated = work / f"{PARTY}_202611230004.zip"
    truncated.write_bytes(data[: len(data) // 2])
    assert "not a valid zip" in one_line_error(run_cli("fate", "import", truncated, cwd=work))
    odd = _zip_with(work / "mymodel_1.zip", [("define/a", b"a")])
    assert "not a FATE party model id" in one_line_error(run_cli("fate", "import", odd, cwd=work))
    assert "no versions of model" in one_line_error(run_cli("versions", "guest#1#nope", cwd=work))
    assert "no versions of model nope" in one_line_error(run_cli("versions", "nope", cwd=work))
    run_cli("fate", "import", FIXTURE, cwd=work, check=0)
    assert "no checkpoint" in one_line_error(
        run_cli("checkpoint", "get", PARTY, VERSION, "hetero_lr_0", "9", "out", cwd=work))
    assert "unknown ref" in one_line_error(run_cli("fate", "export", f"models/{PARTY}/1", "out", cwd=work))


def _v2_tree(root):
    """FATE 2.x: <model_id>/<model_version>/<role>/<party_id>/<task_name>/<output_key> as tars."""
    import tarfile
    weights = random_bytes(1 << 20, "v2-weights")
    for version, edit in (("0", b""), ("1", b"one more step")):
        for role, party in (("guest", "9999"), ("host", "10000")):
            task = os.path.join(root, "202611231200xyz", version, role, party, "lr_0")
            os.makedirs(task, exist_ok=True)
            with tarfile.open(os.path.join(task, "train_output_model"), "w") as tar:
                data = weights[:300_000] + edit + weights[300_000:]
                info = tarfile.TarInfo("model.json")
                info.size, info.mtime = len(data), 1700000000
                tar.addfile(info, io.BytesIO(data))
            write_file(os.path.join(root, "202611231200xyz", version, role, party, "reader_0", "output_data"),
                       b"meta of the reader output")
    return root


def test_fate_2_task_outputs_in_and_out(work):
    root = _v2_tree(str(work / "fate2"))
    report = json.loads(run_cli("fate", "import", root, "--json", cwd=work, check=0).stdout)
    assert sorted(report["versions"]) == [
        "models/guest#9999#202611231200xyz/0", "models/guest#9999#202611231200xyz/1",
        "models/host#10000#202611231200xyz/0", "models/host#10000#202611231200xyz/1"]
    stats = json.loads(run_cli("stats", "--json", cwd=work, check=0).stdout)
    assert stats["dedup_ratio"] > 3  # the four tars share all but the chunks around the edit
    run_cli("fate", "export", "models/host#10000#202611231200xyz/1", "out", cwd=work, check=0)
    exported = work / "out" / "202611231200xyz" / "1" / "host" / "10000"
    assert tree_files(exported) == tree_files(os.path.join(root, "202611231200xyz", "1", "host", "10000"))
    again = json.loads(run_cli("fate", "import", root, "--json", cwd=work, check=0).stdout)
    assert len(again["unchanged"]) == 4 and again["new_stored_bytes"] == 0


def test_fate_2_export_zip_is_one_version_per_party_and_comes_back_bit_for_bit(work):
    """FATE 2.x's /model/export: shutil.make_archive of the storage keys of one party's outputs."""
    import shutil
    root = _v2_tree(str(work / "fate2"))
    party = work / "one-party"
    shutil.copytree(os.path.join(root, "202611231200xyz", "1", "host"), party / "202611231200xyz" / "1" / "host")
    archive = shutil.make_archive(str(work / "202611231200xyz_1_host_10000"), "zip", party)
    report = json.loads(run_cli("fate", "import", archive, "--json", cwd=work, check=0).stdout)
    ref = "models/host#10000#202611231200xyz/1"
    assert list(report["versions"]) == [ref] and report["archives"][ref]["sha256"]
    line = run_cli("fate", "export", ref, "back.zip", cwd=work, check=0).stdout.decode()
    assert (work / "back.zip").read_bytes() == open(archive, "rb").read() and "bit for bit" in line
    wrong = work / "202611231200xyz_1_guest_9999.zip"
    shutil.copy(archive, wrong)
    assert "is not named 202611231200xyz_1_host_10000.zip" in one_line_error(run_cli("fate", "import", wrong,
                                                                                     cwd=work))
