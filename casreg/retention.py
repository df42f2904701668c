"""Retention: which named versions of a model to keep, and deleting the names of the rest.

A version is kept when any rule keeps it: among the newest ``keep_last`` (by commit time), younger
than ``keep_days``, tagged, named by one of the model's aliases, or LIVE (not ARCHIVED). Deleting
a name is what ``casreg delete`` does: the version stays restorable for gc's grace period, and gc
reclaims its objects once nothing else needs them (a chunk a kept version shares stays). A policy
can be saved with the model (its ``retention`` metadata) and is then applied by ``Registry.gc``.

Expiry: a version whose metadata has ``expires_at`` (epoch seconds; FATE's ``ex``, see
``fate.import_source(ttl=)``) loses its name at the first ``gc`` after that time, whatever the
policies say, as FATE's Redis key would vanish. Only the name goes: a chunk that a kept version
shares stays, as for any deleted name.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from . import catalog, notes
from .errors import InvalidInput


@dataclass
class Policy:
    keep_last: int | None = None
    keep_days: float | None = None
    keep_tagged: bool = False
    keep_aliased: bool = False
    keep_live: bool = False

    def check(self) -> Policy:
        if self.keep_last is None and self.keep_days is None and not (
                self.keep_tagged or self.keep_aliased or self.keep_live):
            raise InvalidInput("say what to keep: --keep-last N, --keep-days D, --keep-tagged, "
                               "--keep-aliased or --keep-live")
        if (self.keep_last is not None and self.keep_last < 0) or (self.keep_days is not None and self.keep_days < 0):
            raise InvalidInput("--keep-last and --keep-days take numbers of at least 0")
        return self

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Policy:
        try:
            return cls(**{k: data[k] for k in asdict(cls()) if k in data}).check()
        except TypeError as exc:
            raise InvalidInput(f"not a retention policy: {exc}") from None


@dataclass
class Plan:
    model: str
    keep: dict[str, str] = field(default_factory=dict)  # version -> the rule that keeps it
    drop: list[str] = field(default_factory=list)
    dry_run: bool = True
    remote: str | None = None
    remote_drop: list[str] = field(default_factory=list)  # of ``drop``, the versions the remote names too

    def to_json(self) -> dict:
        return {"model": self.model, "keep": self.keep, "drop": self.drop, "dry_run": self.dry_run,
                **({"remote": self.remote, "remote_drop": self.remote_drop} if self.remote else {})}


def plan(repo, model: str, policy: Policy, *, now: float | None = None) -> Plan:
    """What ``policy`` keeps and drops of ``model``'s named versions (nothing is changed)."""
    policy.check()
    rows = sorted(catalog.versions(repo, model), key=lambda r: (r["time"], r["version"]), reverse=True)
    aliased = {cid.hex() for _, cid in repo.list_refs(f"aliases/{catalog.check_model(model)}/")}
    now = time.time() if now is None else now
    result = Plan(model)
    for rank, row in enumerate(rows):
        why = None
        if policy.keep_last is not None and rank < policy.keep_last:
            why = f"among the newest {policy.keep_last}"
        elif policy.keep_days is not None and now - row["time"] <= policy.keep_days * 86400:
            why = f"younger than {policy.keep_days:g} days"
        elif policy.keep_tagged and row["tags"]:
            why = "tagged " + ", ".join(row["tags"])
        elif policy.keep_aliased and row["id"] in aliased:
            why = "named by an alias"
        elif policy.keep_live and row["state"] == "LIVE":
            why = "LIVE"
        if why:
            result.keep[row["version"]] = why
        else:
            result.drop.append(row["version"])
    return result


def apply(registry, model: str, policy: Policy, *, dry_run: bool = False, remote: str | None = None) -> Plan:
    """``plan``, then (unless ``dry_run``) the names of the versions it drops deleted, and with
    ``remote`` on that remote too, each by compare-and-swap from where the remote had it (its
    objects go at the remote's ``gc --remote``). The plan is made from this store's versions."""
    result = plan(registry, model, policy)
    result.dry_run, result.remote = dry_run, remote
    remote_refs: dict[str, bytes] = {}
    if remote is not None:
        from .remotes import ops
        remote_refs = ops.ls_remote(registry, remote)
        result.remote_drop = [v for v in result.drop if catalog.version_ref(model, v) in remote_refs]
    if not dry_run:
        for version in result.drop:
            registry.delete_version(catalog.version_ref(model, version))
        for version in result.remote_drop:
            ref = catalog.version_ref(model, version)
            ops.delete_remote_ref(registry, str(remote), ref, expect_old=remote_refs[ref])
    return result


POLICY_KEY = "retention"


def saved_policies(registry) -> dict[str, Policy]:
    """model -> the retention policy saved with it."""
    out = {}
    for row in catalog.models(registry):
        saved = registry.model_meta(row["model"]).get(POLICY_KEY)
        if isinstance(saved, dict):
            out[row["model"]] = Policy.from_json(saved)
    return out


EXPIRES_KEY = "expires_at"
EXPIRING = ("models/", "checkpoints/", "components/")


def expired(repo, *, now: float | None = None) -> list[str]:
    """The version names (models, checkpoint steps, components) whose ``expires_at`` has passed."""
    now = time.time() if now is None else now
    out = []
    for ref, cid in repo.list_refs():
        if ref.startswith(EXPIRING):
            when = notes.read(repo, cid).get(EXPIRES_KEY)
            if isinstance(when, (int, float)) and not isinstance(when, bool) and when <= now:
                out.append(ref)
    return out


def expire(registry, *, dry_run: bool = False, now: float | None = None) -> list[str]:
    """Delete the names ``expired`` lists (unless ``dry_run``); returns them."""
    names = expired(registry, now=now)
    if not dry_run:
        for ref in names:
            registry.delete_version(ref)
    return names
