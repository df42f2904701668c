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
CODEC_NAMES = {RAW: "raw", ZSTD: "zstd"}
ZSTD_LEVEL = 3

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


def encode(data):
    """(codec, payload): zstd when it shrinks the bytes, raw otherwise (``data`` itself, not a
    copy: the caller copies it once into the stored value). Thread-safe."""
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
    raise Corrupt(f"unknown codec tag {codec}")


def raw_size(codec: int, payload) -> int:
    """The original length of a stored payload, without decoding it."""
    if codec == ZSTD:
        return zstandard.frame_content_size(payload)
    return len(payload)
