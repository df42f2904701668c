"""The header of a delta payload (codec 3), read without numpy: what the graph walk, gc, push
and fetch need to know of a delta (which chunks it is built on) costs no decoding.

Layout: keyframe manifest id (32 bytes), u16 count + that many base chunk ids (32 bytes each),
u16 count + that many (start, length) u32 segments, then the byte-grouped XOR (``grouping``).
"""

from __future__ import annotations

import struct

from ..errors import Corrupt

_COUNT = struct.Struct("<H")
_SEGMENT = struct.Struct("<II")


def payload(keyframe_id: bytes, base_ids: list[bytes], segments: list[tuple[int, int]], grouped: bytes) -> bytes:
    return b"".join((keyframe_id, _COUNT.pack(len(base_ids)), *base_ids, _COUNT.pack(len(segments)),
                     *(_SEGMENT.pack(s, n) for s, n in segments), grouped))


def _ids(mv: memoryview) -> tuple[list[bytes], int]:
    """(base chunk ids, offset of the segment count) of a delta payload."""
    try:
        (count,) = _COUNT.unpack_from(mv, 32)
    except struct.error:
        raise Corrupt("truncated delta object") from None
    pos = 32 + _COUNT.size + 32 * count
    if len(mv) < pos:
        raise Corrupt("truncated delta object")
    return [bytes(mv[i:i + 32]) for i in range(32 + _COUNT.size, pos, 32)], pos


def parse(payload) -> tuple[bytes, list[bytes], list[tuple[int, int]], memoryview]:
    """(keyframe manifest id, base chunk ids, segments, grouped XOR) of a delta payload."""
    mv = memoryview(payload)
    ids, pos = _ids(mv)
    try:
        (nseg,) = _COUNT.unpack_from(mv, pos)
        pos += _COUNT.size
        segments = list(_SEGMENT.iter_unpack(mv[pos:pos + _SEGMENT.size * nseg]))
    except struct.error:
        raise Corrupt("truncated delta object") from None
    if len(segments) != nseg:
        raise Corrupt("truncated delta object")
    return bytes(mv[:32]), ids, segments, mv[pos + _SEGMENT.size * nseg:]


def base_ids(payload) -> list[bytes]:
    """The chunk ids a delta payload needs (its children in the object graph)."""
    return _ids(memoryview(payload))[0]


def keyframe_of(payload) -> bytes:
    """The manifest id of the keyframe a delta payload was made against."""
    if len(payload) < 32:
        raise Corrupt("truncated delta object")
    return bytes(payload[:32])
