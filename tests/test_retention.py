"""casreg retain: which versions of a model stay, and the space that comes back."""

import json
import os
import time
import zipfile

import pytest

from casreg.errors import InvalidInput
from casreg.registry import Registry
from casreg.retention import Policy, plan
from tests.helpers import random_bytes, run_cli, write_file


@pytest.fixture
def reg(tmp_path):
    reg = Registry.init(str(tmp_path / "store"))
    for n in range(6):
        write_file(tmp_path / "m" / "weights.bin", random_bytes(1 << 20, f"ckpt-{n}"))
        reg.commit(str(tmp_path / "m"), f"models/mlp/v{n}")
    yield reg
    reg.close()


def test_a_version_stays_when_any_rule_keeps_it(reg):
    reg.tag("golden", "models/mlp/v1")
    reg.set_alias("mlp", "production", "v2")
    reg.set_state("models/mlp/v0", "archived")
    p = plan(reg, "mlp", Policy(keep_last=2, keep_tagged=True, keep_aliased=True))
    assert sorted(p.keep) == ["v1", "v2", "v4", "v5"] and sorted(p.drop) == ["v0", "v3"]
    assert p.keep["v1"].startswith("tagged") and p.keep["v2"] == "named by an alias"
    assert sorted(plan(reg, "mlp", Policy(keep_live=True)).drop) == ["v0"]
    assert plan(reg, "mlp", Policy(keep_days=1), now=time.time() + 3 * 86400).drop != []
    with pytest.raises(InvalidInput, match="say what to keep"):
        plan(reg, "mlp", Policy())


def test_retain_then_gc_gives_the_space_back(reg):
    before = reg.stats()["stored_bytes"]
    dry = reg.retain("mlp", Policy(keep_last=2), dry_run=True)
    assert dry.drop and len(reg.versions("mlp")) == 6, "a dry run deletes nothing"
    reg.retain("mlp", Policy(keep_last=2))
    assert [r["version"] for r in reg.versions("mlp")] == ["v4", "v5"]
    assert reg.gc()["deleted_objects"] == 0, "within the grace period the dropped versions stay restorable"
    reg.restore_version("models/mlp/v0")
    reg.delete_version("models/mlp/v0")
    reg.gc(prune="now")
    after = reg.stats()["stored_bytes"]
    assert after < before * 0.4, (before, after)  # 4 of 6 versions of 1 MiB of new weights each
    assert reg.verify(full=True) == []


def test_a_saved_policy_is_applied_by_gc(reg, tmp_path):
    reg.retain("mlp", Policy(keep_last=3), save=True)
    write_file(tmp_path / "m" / "weights.bin", random_bytes(1 << 20, "ckpt-6"))
    reg.commit(str(tmp_path / "m"), "models/mlp/v6")
    result = reg.gc(prune="now")
    assert result["retention"]["mlp"]["drop"] == ["v3"]
    assert [r["version"] for r in reg.versions("mlp")] == ["v4", "v5", "v6"]


@pytest.mark.slow
def test_retain_on_the_cli(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    for n in range(3):
        write_file(tmp_path / "m" / "w.bin", f"weights {n}".encode())
        run_cli("commit", "m", "--ref", f"models/x/v{n}", cwd=tmp_path, check=0)
    out = json.loads(run_cli("retain", "x", "--keep-last", "1", "--dry-run", "--json", cwd=tmp_path, check=0).stdout)
    assert out["drop"] == ["v1", "v0"] and out["dry_run"]
    assert "say what to keep" in run_cli("retain", "x", cwd=tmp_path).stderr.decode()
    run_cli("retain", "x", "--keep-last", "1", cwd=tmp_path, check=0)
    rows = json.loads(run_cli("versions", "x", "--json", cwd=tmp_path, check=0).stdout)
    assert [r["version"] for r in rows] == ["v2"]


def test_fate_ttl_names_expire_at_the_next_gc_and_shared_chunks_stay(tmp_path):
    from casreg import retention
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "fate",
                           "guest#9999#guest-9999#host-10000#model_2020061215063879320146.zip")
    reg = Registry.init(str(tmp_path / ".casreg"))
    report = reg.fate_import(fixture, ttl=3600)
    (ref,) = report.versions
    assert reg.metadata(ref)["expires_at"] == pytest.approx(time.time() + 3600, abs=5)
    assert retention.expired(reg) == [] and retention.expired(reg, now=time.time() + 3601) == [ref]
    keeper = tmp_path / "keeper"
    with zipfile.ZipFile(fixture) as zf:
        zf.extractall(keeper)
    reg.commit(str(keeper), "models/kept/v1")  # the same files under a name that does not expire
    assert reg.gc(dry_run=True).get("expired") is None
    reg.set_meta(ref, {"expires_at": int(time.time()) - 1})
    assert reg.gc(dry_run=True)["expired"] == [ref] and ref in dict(reg.list_refs())
    result = reg.gc(prune="now")
    assert result["expired"] == [ref] and ref not in dict(reg.list_refs())
    reg.checkout("models/kept/v1", str(tmp_path / "out"))
    assert reg.verify(full=True) == []
    with pytest.raises(InvalidInput):
        reg.fate_import(fixture, ttl=0)
    reg.close()


def test_retain_remote_deletes_the_names_there_too_and_gc_remote_reclaims(tmp_path):
    from casreg.remotes import ops
    Registry.init(str(tmp_path / "hub")).close()
    reg = Registry.init(str(tmp_path / "site" / ".casreg"))
    ops.config(reg).add("origin", f"file://{tmp_path / 'hub'}")
    for n in range(3):
        write_file(tmp_path / "m" / "w.bin", random_bytes(200_000, f"v{n}"))
        reg.commit(str(tmp_path / "m"), f"models/lr/v{n}")
    reg.push("origin", [f"models/lr/v{n}" for n in range(3)])
    dry = reg.retain("lr", Policy(keep_last=1), dry_run=True, remote="origin")
    assert sorted(dry.remote_drop) == ["v0", "v1"] and set(ops.ls_remote(reg, "origin")) >= {"models/lr/v0", "models/lr/v1"}
    done = reg.retain("lr", Policy(keep_last=1), remote="origin")
    assert sorted(done.remote_drop) == ["v0", "v1"]
    remote_refs = ops.ls_remote(reg, "origin")
    assert "models/lr/v2" in remote_refs and not {"models/lr/v0", "models/lr/v1"} & set(remote_refs)
    result = reg.gc_remote("origin", grace="now")
    assert result.to_json()["deleted_objects"] > 0
    assert ops.verify(reg, "origin", full=True) == []
    reg.close()
