"""How an object's bytes are stored: a one-byte codec tag, then the payload.

The object id is always the BLAKE3 hash of the original bytes, so the codec is a property of
storage only: dedup and verification do not depend on it.
"""

from __future__ import annotations

import threading

import zstandard

from ..errors import Corrupt

RAW = 0
ZSTD = 1
GROUPED = 2
CODEC_NAMES = {RAW: "raw", ZSTD: "zstd", GROUPED: "grouped-zstd"}
ZSTD_LEVEL = 3
GROUPED_LEVEL = 1

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
        c = _local.plane_compressor = zstandard.ZstdCompressor(level=GROUPED_LEVEL, write_checksum=False)
    return c


def encode(data, layout: tuple[int, int] | None = None, *, grouping: bool = False):
    """(codec, payload) of the smallest form: with ``grouping``, byte-grouped planes when ``data``
    holds numbers of a known or detected width; else zstd when it shrinks the bytes; else raw
    (``data`` itself, not a copy: the caller copies it once into the stored value). Thread-safe.

    ``layout`` is (element width, offset of the first whole element in ``data``), from the file's
    own header when known (``grouping.safetensors_layout``); None lets the bytes speak.
    """
    if grouping:
        from .grouping import detect_layout, group
        layout = layout or detect_layout(data)
        if layout is not None:
            grouped = group(data, *layout, _plane_compressor())
            if grouped is not None and len(grouped) < 0.97 * len(data):
                return GROUPED, grouped
    packed = _compressor().compress(data)
    if len(packed) < len(data):
        return ZSTD, packed
    return RAW, data


def decode(codec: int, payload) -> bytes:
    """The original bytes of a stored payload. Thread-safe."""
    if codec == RAW:
        return bytes(payload)
    if codec == ZSTD:
        try:
            return _decompressor().decompress(payload)
        except zstandard.ZstdError as exc:
            raise Corrupt(f"cannot decompress stored object: {exc}") from None
    if codec == GROUPED:
        from .grouping import ungroup
        return ungroup(payload, _decompressor())
    raise Corrupt(f"unknown codec tag {codec}")


def raw_size(codec: int, payload) -> int:
    """The original length of a stored payload, without decoding it."""
    if codec == ZSTD:
        return zstandard.frame_content_size(payload)
    if codec == GROUPED:
        from .grouping import grouped_size
        return grouped_size(payload)
    return len(payload)
