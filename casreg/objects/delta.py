"""Checkpoint deltas: a chunk stored as the byte-grouped difference from the same tensors' bytes
in a keyframe (an earlier version of the file with the same tensor layout).

In a full fine-tune every weight moves a little, so no chunk repeats and content-defined dedup
saves nothing; but sign, exponent and top mantissa bits rarely change, so a weight's difference
from its previous value is mostly zero bits, and its byte planes compress ~1.9x better than the
weights themselves. Codec ``DELTA`` takes each element's integer difference of bit patterns
(units in the last place), zigzagged (``ulp_forward``): 40.8 MB per full fine-tune step of the
benchmark corpus's 91 MB of fp32, against 43.4 MB for the XOR that codec ``DELTA_XOR`` (still
read) took and 76.3 MB for the weights' own planes; the step's noise itself carries about 39.6 MB
(its order-0 entropy, ~14 bits per weight), so little is left to win per step.

Which bytes are "the same tensor" is decided by the file's layout (``FileLayout``): a safetensors
file maps each tensor by name (same dtype and shape) whatever its position; any other file maps
byte for byte onto a keyframe of the same name and size. Bytes with no counterpart (a header, a new
tensor) are XORed with zeros, i.e. stored as themselves.

Depth is bounded at one: a delta's bases are always self-contained chunks, so a restore decodes a
delta's bases (usually two chunks) and nothing beyond them. The bases are named by chunk id, so ``gc``, push and fetch see them as
the delta chunk's children.

Payload (codec tag ``DELTA``): the keyframe's 32-byte manifest id (where its decoded bytes may be
cached, see ``keyframecache``), ``u16 count`` then ``count`` 32-byte base chunk ids (in base file
order), ``u16 segments`` then that many ``u32 start, u32 length``: the aligned base bytes are the
concatenation of those ranges of the bases' concatenated bytes (``ZEROS`` as start: zero bytes),
then the grouped payload (``grouping.group``) of ``ulp_forward(chunk, aligned base)`` (``DELTA``)
or of ``chunk XOR aligned base`` (``DELTA_XOR``).
"""

from __future__ import annotations

import bisect
import itertools
import json
from dataclasses import dataclass

import blake3

from ..errors import Corrupt
from . import deltaformat, grouping, kernels, tensorheaders

ZEROS = kernels.ZEROS
# A file's 16th version after its keyframe is stored whole and becomes the next. A fine-tune's
# steps are a random walk: a delta against a keyframe k steps back carries ~0.5*log2(k) more bits
# per weight (corpus: 41.9 MB at k=1, 44.9 at k=4, 46.0 at k=7 for 91 MB of fp32), while a new
# keyframe costs ~34 MB more than a delta. The period minimizing the mean cost per version,
# (keyframe excess + summed drift) / (period), is about 16 for these figures (8: 6.4 MB per
# version over an ideal delta, 16: 5.8); restores stay one delta deep whatever the period.
KEYFRAME_EVERY = 16
MIN_FILE = 1 << 20  # smaller files are not worth a keyframe
MAX_HEADER = 16 << 20  # a safetensors header longer than this is not parsed for alignment
ACCEPT = 0.6  # a delta this small (vs. the chunk) is taken without trying the self-contained codecs
ULP_WIDTHS = (2, 4, 8)  # element widths an ulp delta takes (fp16/bf16, fp32, fp64 and ints of those)
MIDDLING = 0.8  # ... and one up to this, once the self-contained codecs keep losing to this file's deltas



@dataclass
class FileLayout:
    """What a file's bytes mean, for aligning it with another version of itself."""
    key: bytes  # files with equal keys can be aligned (same tensors, or same name and size)
    size: int
    data_start: int
    tensors: dict[str, tuple[str, tuple, int, int]] | None  # name -> dtype, shape, begin, end

    def to_base(self, base: FileLayout, start: int, length: int) -> list[tuple[int | None, int]]:
        """Segments (base file offset or None for zeros, length) aligned with [start, start+length)."""
        if self.tensors is None:
            if start + length > base.size:
                return [(None, length)]
            return [(start, length)]
        out: list[tuple[int | None, int]] = []
        pos, end = start, start + length
        spans = self._spans(base)
        i = max(0, bisect.bisect_right(spans, (pos, float("inf"), 0)) - 1)
        while pos < end:
            while i < len(spans) and spans[i][1] <= pos:
                i += 1
            if i < len(spans) and spans[i][0] <= pos:
                begin, stop, base_begin = spans[i]
                n = min(stop, end) - pos
                out.append((None if base_begin is None else base_begin + pos - begin, n))
            else:  # a gap (the header, padding): no counterpart
                n = min(spans[i][0] if i < len(spans) else end, end) - pos
                out.append((None, n))
            pos += n
        return _merge(out)

    def _spans(self, base: FileLayout) -> list[tuple[int, int, int | None]]:
        cache = getattr(self, "_span_cache", None)
        if cache is not None and cache[0] is base:
            return cache[1]
        assert self.tensors is not None  # to_base aligns byte for byte without tensors
        spans: list[tuple[int, int, int | None]] = []
        for name, (dtype, shape, begin, end) in self.tensors.items():
            other = (base.tensors or {}).get(name)
            same = other is not None and other[0] == dtype and other[1] == shape
            if begin < end:
                spans.append((begin, end, other[2] if other is not None and same else None))
        spans.sort(key=lambda s: (s[0], s[1]))
        self._span_cache = (base, spans)
        return spans


def _merge(segments: list[tuple[int | None, int]]) -> list[tuple[int | None, int]]:
    out: list[tuple[int | None, int]] = []
    for off, n in segments:
        if out and n and ((off is None and out[-1][0] is None) or
                          (off is not None and out[-1][0] is not None and out[-1][0] + out[-1][1] == off)):
            out[-1] = (out[-1][0], out[-1][1] + n)
        elif n:
            out.append((off, n))
    return out


def file_layout(name: str, size: int, head) -> FileLayout | None:
    """The layout of a file from its name, size and first bytes; None for files too small to
    delta. Safetensors headers give tensors by name; other files align byte for byte."""
    if size < MIN_FILE:
        return None
    tensors = tensorheaders.safetensors_tensors(head)
    if tensors is None:
        return FileLayout(b"bytes\0" + name.encode("utf-8", "surrogateescape") + b"\0" + str(size).encode(),
                          size, 0, None)
    data_start, table = tensors
    shape_key = sorted((n, t[0], list(t[1])) for n, t in table.items())
    key = b"safetensors\0" + blake3.blake3(json.dumps(shape_key).encode()).digest()
    return FileLayout(key, size, data_start, table)


# -- payload (its header: deltaformat) -------------------------------------------------------------


def starts(lengths) -> list[int]:
    """The offset of each piece in the concatenation of pieces of these lengths, then the total."""
    return list(itertools.accumulate(lengths, initial=0))


def xor_aligned(out: bytearray, bases: list, segments: list[tuple[int, int]]) -> None:
    """XOR the aligned base bytes into ``out`` in place: ``segments`` gathered from the
    concatenated ``bases`` (a ZEROS segment leaves its bytes as they are), without joining them."""
    try:
        kernels.xor_segments(out, bases, segments)
    except ValueError as exc:
        raise Corrupt(str(exc)) from None


def ulp_forward(out: bytearray, aligned, width: int, offset: int) -> None:
    """In place, ``out`` (a chunk's bytes) -> what the ulp delta groups: each whole element as the
    zigzagged integer difference of its bit pattern from the aligned base element's (a float that
    moved by k units in the last place becomes about 2k: the high bytes zero, where XOR sets every
    bit below the highest one that changed, and a carry sets them all). Elements whose base is 0
    (no counterpart, or a zero weight) stay as they are; the bytes around the whole elements are
    XORed (``kernels.ulp``)."""
    kernels.ulp(out, aligned, width, offset, False)


def ulp_inverse(out: bytearray, aligned, width: int, offset: int) -> None:
    """Undo ``ulp_forward`` in place."""
    try:
        kernels.ulp(out, aligned, width, offset, True)
    except ValueError as exc:
        raise Corrupt(str(exc)) from None


def _aligned(length: int, bases: list, segments: list[tuple[int, int]]) -> bytearray:
    aligned = bytearray(length)
    xor_aligned(aligned, bases, segments)
    return aligned


def apply(payload, bases: list, decompressor, *, ulp: bool = False) -> memoryview:
    """The original bytes of a delta payload, given its bases' decoded bytes (in ``base_ids`` order);
    ``ulp``: an ulp delta (codec ``DELTA``), else an XOR delta (``DELTA_XOR``)."""
    _, ids, segments, grouped = deltaformat.parse(payload)
    if len(bases) != len(ids):
        raise Corrupt("delta object given the wrong number of bases")
    out = grouping.ungroup_buffer(grouped, decompressor)
    if ulp:
        width, offset = grouping.layout_of(grouped)  # a width ulp deltas never take: Corrupt below
        ulp_inverse(out, _aligned(len(out), bases, segments), width, offset)
    else:
        xor_aligned(out, bases, segments)
    return memoryview(out).toreadonly()


def encode(data, keyframe_id: bytes, base_ids_: list[bytes], bases: list, segments: list[tuple[int, int]],
           layout: tuple[int, int], compressor, hints: grouping.Streaks | None = None) -> bytes | None:
    """The ulp delta payload (codec ``DELTA``) of ``data`` against the aligned base bytes, or
    None if it has no whole element."""
    if len(base_ids_) > 0xFFFF or len(segments) > 0xFFFF:  # thousands of tiny tensors: not worth it
        return None
    width, offset = layout
    out = bytearray(data)
    if width not in ULP_WIDTHS or not 0 <= offset < width or len(out) - offset < width:
        return None
    ulp_forward(out, _aligned(len(out), bases, segments), width, offset)
    grouped = grouping.group(out, width, offset, compressor, hints)
    return None if grouped is None else deltaformat.payload(keyframe_id, base_ids_, segments, grouped)


class Keyframe:
    """A stored file used as the base of a new version's deltas: its manifest's chunks and their
    offsets; ``fetch(chunk id, offset, length)`` gives a chunk's checked bytes, None if it is a
    delta itself (thread-safe)."""

    def __init__(self, manifest_id: bytes, layout: FileLayout, chunks: list[tuple[bytes, int]], fetch):
        self.manifest_id = manifest_id
        self.layout = layout
        self.chunks = chunks
        self.starts = starts(n for _, n in chunks)[:-1]
        self.fetch = fetch

    def read_base(self, i: int) -> bytes | memoryview | None:
        """Keyframe chunk ``i``'s bytes, or None if it cannot be a base."""
        cid, n = self.chunks[i]
        return self.fetch(cid, self.starts[i], n)

    def plan(self, layout: FileLayout, start: int, length: int):
        """(base chunk indexes, segments relative to their concatenation) aligning a new chunk of
        ``layout`` at [start, start+length) with this keyframe; None if nothing aligns."""
        file_segments = layout.to_base(self.layout, start, length)
        if all(off is None for off, _ in file_segments):
            return None
        indexes: list[int] = []
        for off, n in file_segments:
            if off is None:
                continue
            first = bisect.bisect_right(self.starts, off) - 1
            last = bisect.bisect_right(self.starts, off + n - 1) - 1
            indexes.extend(range(first, last + 1))
        indexes = sorted(set(indexes))
        position = {}
        pos = 0
        for i in indexes:
            position[i] = pos
            pos += self.chunks[i][1]
        segments = []
        for off, n in file_segments:
            if off is None:
                segments.append((ZEROS, n))
            else:
                i = bisect.bisect_right(self.starts, off) - 1
                segments.append((position[i] + off - self.starts[i], n))
        return indexes, segments
