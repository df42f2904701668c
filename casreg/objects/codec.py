"""How an object's bytes are stored: a one-byte codec tag, then the payload.

The object id is always the BLAKE3 hash of the original bytes, so the codec is a property of
storage only: dedup and verification do not depend on it.
"""

from __future__ import annotations

import struct
import threading

import zstandard

from ..errors import Corrupt

RAW = 0
ZSTD = 1
GROUPED = 2
DELTA = 3
CODEC_NAMES = {RAW: "raw", ZSTD: "zstd", GROUPED: "grouped-zstd", DELTA: "delta"}
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
    own header when known (``grouping.tensor_layout``); None lets the bytes speak. ``hints``
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


def decode(codec: int, payload, bases: list | None = None, limit: int = MAX_OBJECT) -> bytes | memoryview:
    """The original bytes of a stored payload (grouped and delta chunks come back as a read-only
    memoryview of the decoded array, saving a copy); a DELTA payload needs its ``bases`` decoded
    (in ``delta.base_ids`` order). A payload that would decode to more than ``limit`` bytes is
    refused (Corrupt) before anything that size is allocated. Thread-safe."""
    if codec == RAW:
        _refuse_over(len(payload), limit)
        return bytes(payload)
    if codec not in (ZSTD, GROUPED, DELTA):
        raise Corrupt(f"unknown codec tag {codec}")
    if codec == ZSTD:
        try:
            if zstandard.frame_content_size(payload) < 0:
                return _unsized_frame(payload, limit)
            _refuse_over(zstandard.frame_content_size(payload), limit)  # it would be allocated at once
            return _decompressor().decompress(payload)
        except zstandard.ZstdError as exc:
            raise Corrupt(f"cannot decompress stored object: {exc}") from None
    _refuse_over(raw_size(codec, payload), limit)
    if codec == GROUPED:
        from .grouping import ungroup
        return ungroup(payload, _decompressor())
    from . import delta
    if bases is None:
        raise Corrupt("a delta object cannot be decoded without its bases")
    return delta.apply(payload, bases, _decompressor())


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


def raw_size(codec: int, payload, limit: int = MAX_OBJECT) -> int:
    """The original length of a stored payload, from its header (Corrupt if that is damaged); a
    zstd frame that does not give its size is decoded, at most ``limit`` bytes of it."""
    from .grouping import grouped_size
    try:
        if codec == ZSTD:
            size = zstandard.frame_content_size(payload)
            return size if size >= 0 else len(_unsized_frame(payload, limit))
        if codec == GROUPED:
            return grouped_size(payload)
        if codec == DELTA:
            from . import delta
            return grouped_size(delta.parse(payload)[3])
    except (zstandard.ZstdError, struct.error):
        raise Corrupt("stored object has a damaged header") from None
    return len(payload)
