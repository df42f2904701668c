"""How an object's bytes are stored: a one-byte codec tag, then the payload; the codec table.

The object id is always the BLAKE3 hash of the original bytes, so the codec is a property of
storage only: dedup and verification do not depend on it. Each codec is one ``Codec`` in
``CODECS``: its tag byte, its name, how to decode a payload (bounded by a limit), its original size
and the chunks it is built on (only a delta has any). Adding a codec is a class here, its
encoder and its tests. A store's *policy* (``POLICIES``: zstd, grouped, delta) says which codecs
new chunks may use.
"""

from __future__ import annotations

import struct
import threading

import zstandard

from ..errors import Corrupt
from . import deltaformat

RAW = 0
ZSTD = 1
GROUPED = 2
DELTA_XOR = 3  # read, no longer written: DELTA (ulp) stores a fine-tune step ~6% smaller
DELTA = 4
ZSTD_LEVEL = 3
MAX_OBJECT = 1 << 32  # no object is this large (a manifest this size would list a file of petabytes)
# Byte planes: zstd's fast strategy with 7-byte minimum matches. A sign/exponent plane holds few
# distinct bytes, so short matches abound; skipping them leaves the work to the entropy coder,
# which is both smaller (0.356 vs 0.397 of the plane) and ~1.7x faster both ways than level 1.
PLANE_PARAMS = dict(window_log=18, hash_log=15, chain_log=15, search_log=1, min_match=7,
                    target_length=0, strategy=zstandard.STRATEGY_FAST)

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "compressor", None)
    if c is None:
        c = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "decompressor", None)
    if d is None:
        d = _local.decompressor = zstandard.ZstdDecompressor()
    return d


def _plane_compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "plane_compressor", None)
    if c is None:
        params = zstandard.ZstdCompressionParameters(**PLANE_PARAMS, write_checksum=False)
        c = _local.plane_compressor = zstandard.ZstdCompressor(compression_params=params)
    return c


def encode(data, layout: tuple[int, int] | None = None, *, grouping: bool = False, hints=None):
    """(codec, payload) of the smallest form: with ``grouping``, byte-grouped planes when ``data``
    holds numbers of a known or detected width; else zstd when it shrinks the bytes; else raw
    (``data`` itself, not a copy: the caller copies it once into the stored value). Thread-safe.

    ``layout`` is (element width, offset of the first whole element in ``data``), from the file's
    own header when known (``tensorheaders.tensor_layout``); None lets the bytes speak. ``hints``
    (``grouping.Streaks``) lets a stream of chunks skip planes that never compress.
    """
    if grouping:
        from .grouping import detect_layout, group
        layout = layout or detect_layout(data)
        if layout is not None:
            grouped = group(data, *layout, _plane_compressor(), hints)
            if grouped is not None and len(grouped) < 0.97 * len(data):
                return GROUPED, grouped
    packed = _compressor().compress(data)
    if len(packed) < len(data):
        return ZSTD, packed
    return RAW, data


def encode_delta(data, keyframe_id: bytes, base_ids: list[bytes], bases: list, segments, layout: tuple[int, int],
                 hints=None):
    """The DELTA payload of ``data`` against aligned base bytes (see ``delta``), or None."""
    from . import delta
    return delta.encode(data, keyframe_id, base_ids, bases, segments, layout, _plane_compressor(), hints)


def _refuse_over(size: int, limit: int) -> None:
    if size > limit:
        raise Corrupt(f"object claims to be larger than its kind can be ({size} > {limit} bytes)")


def _unsized_frame(payload, limit: int) -> bytes:
    """A zstd frame whose header does not give its size, decoded piece by piece up to ``limit``."""
    out, total = [], 0
    with _decompressor().stream_reader(payload) as reader:
        while piece := reader.read(1 << 20):
            total += len(piece)
            _refuse_over(total, limit)
            out.append(piece)
    return b"".join(out)


class Codec:
    """One stored form. Subclasses set ``tag`` and ``name`` and decode their payloads."""
    tag = -1
    name = ""
    self_contained = True  # decodes without other chunks

    def decode(self, payload, bases: list | None, limit: int) -> bytes | memoryview:
        raise NotImplementedError

    def raw_size(self, payload, limit: int = MAX_OBJECT) -> int:
        """The original length, from the payload's header (Corrupt if that is damaged)."""
        return len(payload)

    def base_ids(self, payload) -> list[bytes]:
        """The chunks this payload is built on (children in the object graph)."""
        return []


class Raw(Codec):
    tag, name = RAW, "raw"

    def decode(self, payload, bases, limit):
        _refuse_over(len(payload), limit)
        return bytes(payload)


class Zstd(Codec):
    tag, name = ZSTD, "zstd"

    def decode(self, payload, bases, limit):
        try:
            if zstandard.frame_content_size(payload) < 0:
                return _unsized_frame(payload, limit)
            _refuse_over(zstandard.frame_content_size(payload), limit)  # it would be allocated at once
            return _decompressor().decompress(payload)
        except zstandard.ZstdError as exc:
            raise Corrupt(f"cannot decompress stored object: {exc}") from None

    def raw_size(self, payload, limit=MAX_OBJECT):
        try:
            size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError:
            raise Corrupt("stored object has a damaged header") from None
        return size if size >= 0 else len(_unsized_frame(payload, limit))  # a frame without its size


class Grouped(Codec):
    """Byte planes: each w-byte element split into w planes, one zstd frame each (grouping.py)."""
    tag, name = GROUPED, "grouped"

    def decode(self, payload, bases, limit):
        from .grouping import ungroup
        _refuse_over(self.raw_size(payload), limit)
        return ungroup(payload, _decompressor())

    def raw_size(self, payload, limit=MAX_OBJECT):
        from .grouping import grouped_size
        try:
            return grouped_size(payload)
        except struct.error:
            raise Corrupt("stored object has a damaged header") from None


class DeltaXor(Codec):
    """Byte planes of the XOR against aligned base chunks (delta.py; the header: deltaformat.py)."""
    tag, name = DELTA_XOR, "delta-xor"
    self_contained = False
    ulp = False

    def decode(self, payload, bases, limit):
        from . import delta
        _refuse_over(self.raw_size(payload), limit)
        if bases is None:
            raise Corrupt("a delta object cannot be decoded without its bases")
        return delta.apply(payload, bases, _decompressor(), ulp=self.ulp)

    def raw_size(self, payload, limit=MAX_OBJECT):
        from .grouping import grouped_size
        try:
            return grouped_size(deltaformat.parse(payload)[3])
        except struct.error:
            raise Corrupt("stored object has a damaged header") from None

    def base_ids(self, payload):
        return deltaformat.base_ids(payload)


class Delta(DeltaXor):
    """Byte planes of each element's zigzagged integer difference from the aligned base element
    (units in the last place, for floats); the payload is laid out as ``DeltaXor``'s (delta.py)."""
    tag, name = DELTA, "delta"
    ulp = True


CODECS: dict[int, Codec] = {c.tag: c for c in (Raw(), Zstd(), Grouped(), DeltaXor(), Delta())}
DELTAS = frozenset(tag for tag, c in CODECS.items() if not c.self_contained)
# A store's policy: which codecs new chunks may take (grouping: byte planes; deltas: XOR deltas).
POLICIES = {"zstd": (False, False), "grouped": (True, False), "delta": (True, True)}


def of(tag: int) -> Codec:
    """The codec of a stored tag byte (Corrupt for a tag no casreg writes)."""
    try:
        return CODECS[tag]
    except KeyError:
        raise Corrupt(f"unknown codec tag {tag}") from None


def decode(tag: int, payload, bases: list | None = None, limit: int = MAX_OBJECT) -> bytes | memoryview:
    """The original bytes of a stored payload (grouped and delta chunks come back as a read-only
    memoryview of the decoded array, saving a copy); a delta payload needs its ``bases`` decoded
    (in ``base_ids`` order). A payload that would decode to more than ``limit`` bytes is refused
    (Corrupt) before anything that size is allocated. Thread-safe."""
    return of(tag).decode(payload, bases, limit)


def raw_size(tag: int, payload, limit: int = MAX_OBJECT) -> int:
    """The original length of a stored payload, from its header (Corrupt if that is damaged)."""
    return of(tag).raw_size(payload, limit)


def base_ids(tag: int, payload) -> list[bytes]:
    """The chunk ids a stored payload is built on ([] for a self-contained one)."""
    return of(tag).base_ids(payload)
