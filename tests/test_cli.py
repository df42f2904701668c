"""The CLI as a user meets it: every bad input is one line on stderr and a non-zero exit."""

import json
import os

import pytest

from tests.helpers import ROOT, damage, one_line_error, random_bytes, run_cli, write_file


@pytest.fixture
def work(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    write_file(tmp_path / "model" / "w.bin", random_bytes(500_000, "cli"))
    write_file(tmp_path / "model" / "conf.json", b'{"lr": 0.1}')
    return tmp_path


def test_everyday_commands(work):
    sub = work / "model"  # the store is found upward from a subdirectory, like git
    out = run_cli("commit", ".", "--ref", "models/lr-demo/v1", "-m", "first", "--meta", "framework=fate",
                  cwd=sub, check=0)
    assert b"models/lr-demo/v1 -> " in out.stdout
    run_cli("commit", "w.bin", "--ref", "models/lr-demo/v2", "--parent", "models/lr-demo/v1", cwd=sub, check=0)
    log = json.loads(run_cli("log", "models/lr-demo/v2", "--json", cwd=work, check=0).stdout)
    assert len(log) == 2 and log[1]["meta"] == {"framework": "fate"} and log[1]["message"] == "first"
    ls = json.loads(run_cli("ls", "models/lr-demo/v1", "--json", cwd=work, check=0).stdout)
    assert {(r["path"], r["size"]) for r in ls} == {("w.bin", 500_000), ("conf.json", 11)}
    cat = run_cli("cat", "models/lr-demo/v1:w.bin", cwd=work, check=0)
    assert cat.stdout == (work / "model" / "w.bin").read_bytes()
    run_cli("checkout", "models/lr-demo/v1", "restored", cwd=work, check=0)
    assert (work / "restored" / "conf.json").read_bytes() == b'{"lr": 0.1}'
    stats = json.loads(run_cli("stats", "--json", cwd=work, check=0).stdout)
    assert stats["versions"] == 2 and stats["dedup_ratio"] > 1.9
    assert json.loads(run_cli("verify", "--full", "--json", cwd=work, check=0).stdout)["ok"] is True
    assert json.loads(run_cli("gc", "--json", cwd=work, check=0).stdout)["deleted_objects"] == 0
    refs = json.loads(run_cli("refs", "--json", cwd=work, check=0).stdout)
    assert set(refs) == {"models/lr-demo/v1", "models/lr-demo/v2"}


def test_store_from_environment_and_option(tmp_path):
    store = tmp_path / "elsewhere"
    run_cli("--store", store, "init", check=0)
    write_file(tmp_path / "f", b"x")
    run_cli("commit", tmp_path / "f", "--ref", "a/b", cwd=tmp_path, env={"CASREG_STORE": str(store)}, check=0)
    assert b"a/b" in run_cli("--store", store, "refs", check=0).stdout


BAD = [
    (["commit", "missing-dir", "--ref", "m/v"], "no such file or directory"),
    (["log", "models/nope"], "unknown ref"),
    (["checkout", "models/nope", "dest"], "unknown ref"),
    (["cat", "models/nope:x"], "unknown ref"),
    (["commit", "model", "--ref", "../escape"], "invalid ref name"),
    (["commit", "model", "--ref", "bad name"], "invalid ref name"),
    (["commit", "model", "--ref", "m/v", "--meta", "novalue"], "key=value"),
    (["init"], "already exists"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_clear_line(work, args, message):
    assert message in one_line_error(run_cli(*args, cwd=work))


def test_a_second_commit_to_a_name_goes_on_top_and_force_rewrites(work):
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    first = json.loads(run_cli("show", "m/v", "--json", cwd=work, check=0).stdout)["id"]
    same = json.loads(run_cli("commit", "model", "--ref", "m/v", "--json", cwd=work, check=0).stdout)
    assert not same["moved"] and same["commit"] == first, "an unchanged tree is no new version"
    (work / "model" / "conf.json").write_bytes(b'{"lr": 0.2}')
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    shown = json.loads(run_cli("show", "m/v", "--json", cwd=work, check=0).stdout)
    assert shown["parents"] == [first], "the name's previous version is the new one's parent"
    run_cli("commit", "model/w.bin", "--ref", "m/v", "--force", cwd=work, check=0)
    assert json.loads(run_cli("show", "m/v", "--json", cwd=work, check=0).stdout)["parents"] == []
    assert len(json.loads(run_cli("reflog", "m/v", "--json", cwd=work, check=0).stdout)) == 3


def test_unknown_path_inside_version(work):
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    assert "no such path" in one_line_error(run_cli("cat", "m/v:nope.bin", cwd=work))


def test_not_a_store(tmp_path):
    assert "not in a casreg store" in one_line_error(run_cli("refs", cwd=tmp_path))
    assert "not a casreg store" in one_line_error(run_cli("--store", tmp_path, "refs"))


def test_checkout_over_non_empty_dir_needs_force(work):
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    assert "not empty" in one_line_error(run_cli("checkout", "m/v", "model", cwd=work))
    run_cli("checkout", "m/v", "model", "--force", cwd=work, check=0)


def test_forced_checkout_into_the_project_directory_keeps_the_store(work):
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    (work / "untracked.txt").write_bytes(b"mine")
    assert "holds the store" in one_line_error(run_cli("checkout", "m/v", ".", "--force", cwd=work))
    assert (work / "untracked.txt").read_bytes() == b"mine"
    run_cli("verify", "--full", cwd=work, check=0)


def test_file_changed_while_being_read_is_refused(repo, tmp_path, monkeypatch):
    from casreg.errors import CasregError
    from casreg.objects import ingest
    path = write_file(tmp_path / "s" / "grows.bin", random_bytes(40 << 20, "torn"))
    real = ingest._read_full
    calls = []

    def read_then_append(f, view):
        n = real(f, view)
        if not calls:
            with open(path, "ab") as g:  # another process appends while we read
                g.write(b"more")
        calls.append(n)
        return n
    monkeypatch.setattr(ingest, "_read_full", read_then_append)
    with pytest.raises(CasregError, match="changed while it was being read"):
        repo.commit(path, "m/torn")
    assert repo.list_refs() == []
    assert repo.verify() == []


def test_special_files_are_refused(work):
    os.mkfifo(work / "model" / "pipe")
    assert "not a regular file, directory or symlink" in one_line_error(
        run_cli("commit", "model", "--ref", "m/v", cwd=work))


def test_each_kind_of_failure_has_its_own_exit_code(work):
    """errors.py: unknown ref 3, conflict 4, corrupt 5, bad input 2, unreachable remote 6."""
    import socket
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    assert run_cli("show", "m/nope", cwd=work).returncode == 3
    (work / "model" / "conf.json").write_bytes(b'{"lr": 0.2}')
    assert run_cli("commit", "model", "--ref", "m/v", "--expect-old", "0" * 64, cwd=work).returncode == 4
    assert run_cli("show", "bad..name", cwd=work).returncode == 2
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_cli("remote", "add", "down", f"redis://127.0.0.1:{port}/0", cwd=work, check=0)
    assert run_cli("ls-remote", "down", cwd=work).returncode == 6
    from casreg.repo import Repository
    with Repository(str(work / ".casreg")) as repo:
        victim = repo.read_commit(repo.resolve("m/v")).tree

        def garbage(value):
            value[:] = b"\x02\x00garbage"
        damage(repo, victim, garbage)
    proc = run_cli("ls", "m/v", cwd=work)
    assert proc.returncode == 5 and "Traceback" not in proc.stderr.decode()


def test_an_unexpected_error_is_one_line_unless_debug(work, monkeypatch):
    """A bug never prints a traceback without --debug (exit 70)."""
    env = {"PYTHONPATH": f"{work}{os.pathsep}{ROOT}"}
    (work / "sitecustomize.py").write_text(
        "import casreg.repo\n"
        "def boom(*a, **k):\n    raise ZeroDivisionError('a bug')\n"
        "casreg.repo.Repository.list_refs = boom\n")
    proc = run_cli("refs", cwd=work, env=env)
    assert proc.returncode == 70
    assert "internal error (ZeroDivisionError: a bug)" in one_line_error(proc)
    proc = run_cli("--debug", "refs", cwd=work, env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr.decode()


def test_log_takes_n_and_oneline_and_meta_log_lists_changes(work):
    for n in range(3):
        (work / "model" / "conf.json").write_bytes(f'{{"lr": 0.{n + 1}}}'.encode())
        run_cli("commit", "model", "--ref", "m/v", "-m", f"step {n}", cwd=work, check=0)
    lines = run_cli("log", "m/v", "--oneline", "-n", "2", cwd=work, check=0).stdout.decode().splitlines()
    assert [line.split()[-2:] for line in lines] == [["step", "2"], ["step", "1"]]
    assert len(json.loads(run_cli("log", "m/v", "--json", cwd=work, check=0).stdout)) == 3
    run_cli("meta", "set", "m/v", "stage=prod", cwd=work, check=0)
    shown = run_cli("show", "m/v", cwd=work, check=0).stdout.decode()
    assert 'meta    stage = "prod"' in shown and "date    20" in shown
    changes = json.loads(run_cli("meta", "log", "m/v", "--json", cwd=work, check=0).stdout)
    assert [c["message"] for c in changes] == ["meta: stage=prod"]
    assert json.loads(run_cli("meta", "get", "m/v", "--json", cwd=work, check=0).stdout) == {"stage": "prod"}


def test_stats_counts_the_whole_store_directory(work):
    run_cli("commit", "model", "--ref", "m/v", cwd=work, check=0)
    (work / ".casreg" / "cache").mkdir(exist_ok=True)
    (work / ".casreg" / "cache" / "blob").write_bytes(b"c" * 100_000)
    s = json.loads(run_cli("stats", "--json", cwd=work, check=0).stdout)
    assert s["disk_cache_bytes"] >= 100_000
    assert s["disk_bytes"] >= s["disk_store_file_bytes"] + s["disk_cache_bytes"] > s["stored_bytes"]


def test_quiet_verbose_and_json_on_read_commands(work):
    assert json.loads(run_cli("codec", "--json", cwd=work, check=0).stdout) == {"codec": "delta"}  # the default for new stores
    assert json.loads(run_cli("gc-grace", "--json", cwd=work, check=0).stdout) == {"gc_grace": "14d"}
    run_cli("-q", "commit", "model", "--ref", "m/v", cwd=work, check=0)
    assert run_cli("-v", "refs", cwd=work, check=0).stdout.decode().startswith("REF")
    assert run_cli("--version", cwd=work, check=0).stdout.decode().startswith("casreg ")
    assert "Usage" in run_cli("log", "-h", cwd=work, check=0).stdout.decode()


def test_every_parameter_has_help_and_arguments_read_in_capitals():
    """Issue 11: help showed metavars as <str>/{spec} and many arguments had no help."""
    import typer

    from casreg import cli
    command = typer.main.get_command(cli.app)
    cli._document(command)
    missing, lower = [], []

    def walk(cmd, path):
        for param in cmd.params:
            if param.name in ("help", "install_completion", "show_completion"):
                continue
            if not getattr(param, "help", None):
                missing.append(f"{path} {param.name}")
            if param.param_type_name == "argument" and not (param.metavar or "").isupper():
                lower.append(f"{path} {param.name}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())
    walk(command, "")
    assert lower == []
    assert missing == []


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe"])
def test_listing_times_are_isoformat_across_offset_changes(zone, monkeypatch):
    """The DATE column (formatted once per minute) says what datetime.isoformat says, also
    around a daylight-saving change and in zones whose offsets have half hours."""
    import datetime
    import time

    from casreg.cli import base
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    base._MINUTES.clear()
    try:
        change = 1711846800  # 2024-03-31 01:00 UTC: Berlin moves to summer time
        for ts in [*range(change - 7200, change + 7200, 13), *range(1_700_000_000, 1_700_200_000, 997)]:
            assert base._when(ts) == datetime.datetime.fromtimestamp(ts).astimezone().isoformat(), ts
    finally:
        monkeypatch.undo()
        time.tzset()
        base._MINUTES.clear()
