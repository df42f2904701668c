"""A zip archive's layout: what it takes, beside the files it holds, to rebuild it bit for bit.

FATE-Flow records the SHA-256 (1.9+) or SHA-1 (1.7/1.8) of the zip it packaged and checks it on
restore, and a zip carries what a directory does not: entry order, times, attributes, directory
entries, the compressor's choices. A layout keeps all of that as the archive's own bytes minus
the compressed data of the members whose content casreg already holds, so the rebuild cannot
drift from the original by construction:

- every byte outside a member's compressed data (local headers, data descriptors, the central
  directory) is kept verbatim;
- a member's compressed data is dropped when recompressing its content (the file of the same
  name in the version) at some zlib level gives exactly those bytes (found at ``describe`` time:
  level 6, what Python's ``zipfile`` and so FATE's ``shutil.make_archive`` use, is tried first);
  a stored member is dropped when its bytes are the file's; any other member (another compressor,
  a file not in the version, encryption) is kept verbatim.

``describe`` proves the layout by rebuilding the archive and comparing SHA-256s before it
returns, so a layout it gives always rebuilds the archive on this machine. Another machine's zlib
could compress differently: ``rebuild`` then reports the digest it got, and the caller says so.

Encoding: ``CZL1``, a 4-byte big-endian length, canonical JSON ``{"sha256", "size", "parts"}``,
then the verbatim bytes. ``parts`` in archive order: ``[n]`` (next n verbatim bytes) or
``[path, method, level, size]`` (a member's data: method 0 stored, 8 deflated; ``size`` its
compressed length, checked on rebuild).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from .errors import Corrupt

MAGIC = b"CZL1"
LEVELS = (6, 9, 1, 5, 4, 3, 2, 7, 8, 0)
BLOCK = 1 << 20

Opener = Callable[[str], "BinaryIO | None"]   # path in the version -> its content, None if absent


@dataclass
class Layout:
    sha256: str
    size: int
    parts: list
    verbatim: bytes

    def encode(self) -> bytes:
        head = json.dumps({"sha256": self.sha256, "size": self.size, "parts": self.parts},
                          separators=(",", ":"), sort_keys=True).encode()
        return MAGIC + struct.pack(">I", len(head)) + head + self.verbatim

    @classmethod
    def decode(cls, data: bytes) -> Layout:
        try:
            if data[:4] != MAGIC:
                raise ValueError("no CZL1 header")
            (n,) = struct.unpack(">I", data[4:8])
            head = json.loads(data[8:8 + n])
            layout = cls(head["sha256"], int(head["size"]), list(head["parts"]), data[8 + n:])
            verbatim = sum(p[0] for p in layout.parts if len(p) == 1)
            members = sum(p[3] for p in layout.parts if len(p) == 4)
            if verbatim != len(layout.verbatim) or verbatim + members != layout.size:
                raise ValueError("sizes do not add up")
        except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
            raise Corrupt(f"archive layout does not parse: {exc}") from None
        return layout

    @property
    def kept_bytes(self) -> int:
        """What the layout costs beyond the version's files: the archive bytes it keeps verbatim."""
        return len(self.verbatim)


def _member_spans(zf: zipfile.ZipFile, fp: BinaryIO) -> list[tuple[int, int, zipfile.ZipInfo]]:
    """(start, end, info) of each member's compressed data, in archive order, not overlapping."""
    spans = []
    for info in zf.infolist():
        fp.seek(info.header_offset)
        local = fp.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise Corrupt(f"{info.filename}: no local header at offset {info.header_offset}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        spans.append((start, start + info.compress_size, info))
    spans.sort(key=lambda s: s[0])
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise Corrupt(f"members {a.filename} and {b.filename} overlap")
    return spans


def _compressed(src: BinaryIO, method: int, level: int) -> Iterator[bytes]:
    if method == zipfile.ZIP_STORED:
        while block := src.read(BLOCK):
            yield block
        return
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    while block := src.read(BLOCK):
        if out := z.compress(block):
            yield out
    yield z.flush()


def _same(stream: Iterator[bytes], fp: BinaryIO, start: int, size: int) -> bool:
    """Whether ``stream`` yields exactly the ``size`` bytes of ``fp`` at ``start`` (stops at the
    first difference, so a wrong guess costs little)."""
    fp.seek(start)
    seen = 0
    for out in stream:
        if seen + len(out) > size or fp.read(len(out)) != out:
            return False
        seen += len(out)
    return seen == size


def _how(info: zipfile.ZipInfo, open_file: Opener, fp: BinaryIO, start: int) -> tuple[int, int] | None:
    """(method, level) that rebuilds this member's data from the version's file, or None."""
    if info.is_dir() or info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                                            zipfile.ZIP_DEFLATED):
        return None
    levels = (0,) if info.compress_type == zipfile.ZIP_STORED else LEVELS
    for level in levels:
        src = open_file(info.filename)
        if src is None:
            return None
        with src:
            if _same(_compressed(src, info.compress_type, level), fp, start, info.compress_size):
                return info.compress_type, level
    return None


def describe(archive: str, open_file: Opener) -> Layout:
    """The layout of the zip at ``archive``, whose members' contents ``open_file`` gives."""
    digest = hashlib.sha256()
    parts: list = []
    verbatim = bytearray()
    with open(archive, "rb") as fp:
        while block := fp.read(BLOCK):
            digest.update(block)
        size = fp.tell()
        try:
            zf = zipfile.ZipFile(fp)
        except zipfile.BadZipFile as exc:
            raise Corrupt(f"{archive} is not a zip archive: {exc}") from None
        with zf:
            pos = 0
            for start, end, info in _member_spans(zf, fp):
                how = _how(info, open_file, fp, start) if end > start else None
                if how is None:
                    continue
                fp.seek(pos)
                verbatim += fp.read(start - pos)
                parts.append([start - pos])
                parts.append([info.filename, how[0], how[1], end - start])
                pos = end
            fp.seek(pos)
            verbatim += fp.read()
            parts.append([size - pos])
    layout = Layout(digest.hexdigest(), size, [p for p in parts if p != [0]], bytes(verbatim))
    check = hashlib.sha256()
    rebuild(layout, open_file, _Hashing(check))
    if check.hexdigest() != layout.sha256:
        raise Corrupt(f"{archive}: its layout does not rebuild it (a member changed while reading?)")
    return layout


class _Hashing:
    def __init__(self, digest):
        self.digest = digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)


def rebuild(layout: Layout, open_file: Opener, out) -> None:
    """Write the archive ``layout`` describes to ``out``, members' data from ``open_file``."""
    offset = 0
    for part in layout.parts:
        if len(part) == 1:
            out.write(layout.verbatim[offset:offset + part[0]])
            offset += part[0]
            continue
        path, method, level, size = part
        src = open_file(path)
        if src is None:
            raise Corrupt(f"archive layout names {path}, which the version lacks")
        written = 0
        with src:
            for data in _compressed(src, method, level):
                written += len(data)
                out.write(data)
        if written != size:
            raise Corrupt(f"{path} recompressed to {written} bytes, the archive held {size} "
                          f"(zlib here compresses differently)")
