"""Long listings: ``log --oneline`` walked over the version summaries in the order ``log`` walks
the commits (merges, equal times, versions stored before summaries), and the CLI's text for
``log`` and tables, written in batches, the same as it was line by line."""

from __future__ import annotations

import json

import pytest

from casreg.cli.base import _print_lines, _table
from casreg.objects.encoding import COMMIT, TREE, Commit, Tree
from casreg.objects.summary import SUMMARY_PREFIX
from casreg.repo import Repository
from tests.helpers import run_cli, write_file

# (name, parents, time, message): two lines of work from "root", merged, then one more; two
# versions share a time (the walk's tie-break: the one reached first comes first)
SHAPE = [("root", [], 100, "root"), ("a1", ["root"], 110, "a one"), ("b1", ["root"], 105, "b one"),
         ("a2", ["a1"], 120, "a two"), ("b2", ["b1"], 120, "b two"), ("merge", ["a2", "b2"], 130, "merge"),
         ("tip", ["merge"], 140, "")]
ORDER = ["tip", "merge", "a2", "b2", "a1", "b1", "root"]


def _history(repo: Repository) -> dict[str, bytes]:
    """SHAPE as versions at refs ``h/<name>``, with the commit times it gives."""
    staged: dict[bytes, bytes] = {}

    def put(kind: int, data: bytes) -> bytes:
        oid, value = repo.objects.encode(kind, data)
        staged[oid] = value
        return oid
    tree = put(TREE, Tree([]).encode())
    ids: dict[str, bytes] = {}
    for name, parents, when, message in SHAPE:
        ids[name] = put(COMMIT, Commit(tree, [ids[p] for p in parents], "t@x", when, message, {"n": name}).encode())

    def land(txn):
        repo.objects.put_values(txn, staged.items())
        for name, cid in ids.items():
            repo.refs.set_if_equals(txn, f"h/{name}", None, cid, who="t@x", message="test")
    repo.db.write(land)
    return ids


def _forget_summaries(repo: Repository, ids) -> None:
    repo.db.write(lambda txn: [txn.delete(SUMMARY_PREFIX + cid, db=repo.objects.meta) for cid in ids])


def _brief(repo: Repository, ref: str, limit: int | None = None) -> list[tuple[bytes, int, str, str, list[bytes]]]:
    return [(cid, c.time, c.author, c.message, c.parents) for cid, c in repo.iter_history(ref, limit)]


def _full(repo: Repository, ref: str, limit: int | None = None) -> list[tuple[bytes, int, str, str, list[bytes]]]:
    return [(v.id, v.commit.time, v.commit.author, v.commit.message, v.commit.parents) for v in repo.log(ref, limit)]


@pytest.mark.parametrize("summaries", ["all", "some", "none"])
def test_the_brief_history_is_logs_order_with_or_without_summaries(tmp_path, summaries):
    repo = Repository.init(str(tmp_path / "store"))
    ids = _history(repo)
    if summaries != "all":  # versions stored before there were summaries: their commits stand in
        _forget_summaries(repo, [ids[n] for n in (["a1", "merge", "root"] if summaries == "some" else ids)])
    expected = [ids[name] for name in ORDER]
    assert [cid for cid, _ in repo.log("h/tip")] == expected
    assert _brief(repo, "h/tip") == _full(repo, "h/tip")
    assert _brief(repo, "h/tip")[5][4] == [ids["root"]] and _brief(repo, "h/merge")[0][4] == [ids["a2"], ids["b2"]]
    assert _brief(repo, "h/tip", 3) == _full(repo, "h/tip", 3)
    assert _brief(repo, "h/b2") == _full(repo, "h/b2") and [c for c, *_ in _brief(repo, "h/b2")] == [
        ids["b2"], ids["b1"], ids["root"]]
    with repo.db.read() as txn:
        has = {cid for cid in ids.values() if txn.get(SUMMARY_PREFIX + cid, db=repo.objects.meta) is not None}
    assert len(has) == {"all": 7, "some": 4, "none": 0}[summaries]  # reading wrote nothing back
    repo.close()


def test_log_oneline_prints_what_the_commits_say(tmp_path):
    repo = Repository.init(str(tmp_path / "store"))
    ids = _history(repo)
    repo.close()
    store = tmp_path / "store"
    commits = json.loads(run_cli("--store", store, "log", "h/tip", "--json", check=0).stdout)
    lines = run_cli("--store", store, "log", "h/tip", "--oneline", check=0).stdout.decode().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [c["id"][:12] for c in commits] == [
        ids[n].hex()[:12] for n in ORDER]
    assert [line.split(" ", 2)[2:] for line in lines] == [[c["message"]] if c["message"] else [] for c in commits]
    assert lines[0].count(" ") == 1, "no trailing space after an empty message"
    full = run_cli("--store", store, "log", "h/tip", "-n", "2", check=0).stdout.decode()
    assert full.startswith(f"version {ids['tip'].hex()}\nAuthor: t@x\nDate:   ")
    assert "\nMeta:   n=tip\n\nversion " in full and full.endswith("\nMeta:   n=merge\n\n    merge\n\n")


def test_batched_lines_are_the_printed_lines_and_an_error_keeps_those_before(capsys):
    _print_lines(f"line {n}" for n in range(2500))
    assert capsys.readouterr().out == "".join(f"line {n}\n" for n in range(2500))

    def failing():
        yield "before"
        raise RuntimeError("mid-listing")
    with pytest.raises(RuntimeError):
        _print_lines(failing())
    assert capsys.readouterr().out == "before\n"


def test_tables_align_text_numbers_and_wide_characters(capsys):
    rows = [{"name": "a", "n": 5, "note": "", "x": None}, {"name": "日本", "n": 12345, "note": "{0} x", "x": 1.5}]
    _table(rows, False, [("NAME", lambda r: r["name"]), ("N", lambda r: r["n"]), ("X", lambda r: r["x"]),
                         ("NOTE", lambda r: r["note"])])
    assert capsys.readouterr().out.splitlines() == [
        "NAME      N  X     NOTE",
        "a         5  None",
        "日本  12345  1.5   {0} x"]


def test_versions_lists_by_name_whatever_the_ids(tmp_path):
    repo = Repository.init(str(tmp_path / "store"))
    for n in (3, 1, 10, 2):
        repo.commit(write_file(tmp_path / f"src{n}" / "w", b"%d" % n), f"models/m/v{n}", message=f"m{n}")
    repo.close()
    out = run_cli("--store", tmp_path / "store", "versions", "m", check=0).stdout.decode().splitlines()
    assert [line.split()[0] for line in out] == ["VERSION", "v1", "v10", "v2", "v3"]
    listed = json.loads(run_cli("--store", tmp_path / "store", "versions", "m", "--json", check=0).stdout)
    assert [(r["version"], r["message"]) for r in listed] == [("v1", "m1"), ("v10", "m10"), ("v2", "m2"), ("v3", "m3")]


def test_version_columns_rows_and_the_table_agree_on_tags_states_and_where(tmp_path):
    """The columns (``version_table``), the rows (``versions``) and the CLI's table show the same
    versions: two tags sorted on one, none on the others, a state set after the commit, ``where``
    keeping only the matching version; each row's tag list is its own."""
    from casreg.registry import Registry
    reg = Registry.init(str(tmp_path / "store"))
    for n in (1, 2, 3):
        reg.commit(write_file(tmp_path / f"src{n}" / "w", b"%d" % n), f"models/m/v{n}", message=f"step {n}")
    reg.tag("zeta", "models/m/v2")
    reg.tag("alpha", "models/m/v2")
    reg.set_state("models/m/v3", "archived")
    reg.set_meta("models/m/v1", {"team": "nlp"})
    table = reg.version_table("m")
    rows = reg.versions("m")
    assert len(table) == 3
    assert [r["version"] for r in rows] == table.version == ["v1", "v2", "v3"]
    assert [r["tags"] for r in rows] == [[], ["alpha", "zeta"], []] and table.tags == [(), ("alpha", "zeta"), ()]
    assert [r["state"] for r in rows] == table.state == ["LIVE", "LIVE", "ARCHIVED"]
    assert [r["message"] for r in rows] == table.message == ["step 1", "step 2", "step 3"]
    assert [r["id"] for r in rows] == [reg.resolve(f"models/m/v{n}").hex() for n in (1, 2, 3)] == table.id
    rows[0]["tags"].append("mine")
    assert reg.versions("m")[2]["tags"] == [] and rows[2]["tags"] == []
    assert [r["version"] for r in reg.versions("m", {"team": "nlp"})] == ["v1"]
    assert reg.version_table("m", {"team": "nlp"}).id == [table.id[0]]
    reg.close()
    out = run_cli("--store", tmp_path / "store", "versions", "m", check=0).stdout.decode().splitlines()
    assert out[0].split() == ["VERSION", "STATE", "DATE", "AUTHOR", "SIZE", "TAGS", "MESSAGE"]
    assert [line.split()[:2] for line in out[1:]] == [["v1", "LIVE"], ["v2", "LIVE"], ["v3", "ARCHIVED"]]
    assert "alpha, zeta" in out[2] and out[2].rstrip().endswith("step 2")
    assert json.loads(run_cli("--store", tmp_path / "store", "versions", "m", "--json", check=0).stdout) == \
        [dict(r, tags=[] if i == 0 else r["tags"]) for i, r in enumerate(rows)]
    filtered = run_cli("--store", tmp_path / "store", "versions", "m", "--where", "team=nlp", check=0).stdout.decode()
    assert [line.split()[0] for line in filtered.splitlines()] == ["VERSION", "v1"]
