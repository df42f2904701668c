"""Extracting an archive to import without trusting it.

Limits on the total uncompressed size, on each member's compression ratio and on the number of
members are checked from the archive's headers before anything is written. Headers can lie, so
extraction counts the bytes it writes and refuses a member that inflates past the size its header
gave (which keeps every limit above true of the bytes on disk), and the members may not claim
more compressed bytes than the file holds (overlapping members, as in zip bombs that reuse one
compressed kernel). Member names go through ``join_inside``; symlinks, devices, FIFOs, encrypted
and duplicate members are refused. Any refusal is a one-line ``HostileArchive``; the caller
extracts into a temporary directory it removes.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from dataclasses import dataclass

from .errors import CasregError, HostileArchive, UnsafePath
from .safepath import join_inside

RATIO_FROM = 1 << 20  # the ratio limit applies to members over 1 MiB (small files compress as they like)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 32 << 30    # CASREG_ARCHIVE_MAX_BYTES: total uncompressed size
    max_ratio: int = 200         # CASREG_ARCHIVE_MAX_RATIO: uncompressed / compressed, per member over 1 MiB
    max_members: int = 100_000   # CASREG_ARCHIVE_MAX_MEMBERS

    @classmethod
    def from_env(cls) -> Limits:
        default = cls()
        return cls(_env_int("CASREG_ARCHIVE_MAX_BYTES", default.max_bytes),
                   _env_int("CASREG_ARCHIVE_MAX_RATIO", default.max_ratio),
                   _env_int("CASREG_ARCHIVE_MAX_MEMBERS", default.max_members))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) == 0:
        raise CasregError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


def _refuse(archive: str, why: str):
    raise HostileArchive(f"{archive}: {why}; refusing to import it")


def extract_zip(archive: str, dest: str, limits: Limits | None = None) -> None:
    """Extract the zip ``archive`` into the empty directory ``dest``, or refuse it."""
    limits = limits or Limits.from_env()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CasregError(f"cannot read {archive}: not a valid zip (truncated or damaged: {exc})") from None
    with zf:
        for info, target in _plan_zip(archive, zf.infolist(), dest, limits):
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    written = 0
                    for block in iter(lambda: src.read(1 << 20), b""):
                        written += len(block)
                        if written > info.file_size:
                            _refuse(archive, f"member {info.filename!r} expands past the {info.file_size} bytes "
                                             f"its header says")
                        out.write(block)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError) as exc:
                raise CasregError(f"cannot read {archive}: damaged zip at {info.filename!r} ({exc})") from None


def _plan_zip(archive: str, infos: list[zipfile.ZipInfo], dest: str,
              limits: Limits) -> list[tuple[zipfile.ZipInfo, str]]:
    """(member, where it goes) for every member, after checking all of them against the limits."""
    if len(infos) > limits.max_members:
        _refuse(archive, f"{len(infos)} members, over the limit of {limits.max_members} (CASREG_ARCHIVE_MAX_MEMBERS)")
    total = sum(i.file_size for i in infos)
    if total > limits.max_bytes:
        _refuse(archive, f"its headers say it expands to {total} bytes, over the limit of {limits.max_bytes} "
                         f"(CASREG_ARCHIVE_MAX_BYTES)")
    if sum(i.compress_size for i in infos) > os.path.getsize(archive):
        _refuse(archive, "its members claim more compressed bytes than the file holds (overlapping members)")
    plan, seen = [], set()
    for info in infos:
        name, kind = info.filename, stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix file type given
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            what = "a symlink" if kind == stat.S_IFLNK else "a device, FIFO or socket"
            _refuse(archive, f"member {name!r} is {what}, not a file or directory")
        if info.flag_bits & 0x1:
            _refuse(archive, f"member {name!r} is encrypted")
        if info.file_size > RATIO_FROM and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            _refuse(archive, f"member {name!r} expands {info.file_size} bytes from {info.compress_size}, over the "
                             f"ratio limit of {limits.max_ratio}:1 (CASREG_ARCHIVE_MAX_RATIO)")
        try:
            target = join_inside(dest, *name.rstrip("/").split("/"))
        except UnsafePath as exc:
            _refuse(archive, f"member {name!r} would be written outside the destination ({exc})")
        if target in seen:
            _refuse(archive, f"member {name!r} appears twice")
        seen.add(target)
        plan.append((info, target))
    return plan
