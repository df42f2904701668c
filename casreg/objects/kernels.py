"""The byte loops under the grouped and delta codecs.

- ``split(src, width)``: ``count`` elements of ``width`` bytes -> ``width`` planes (byte ``i`` of
  every element), back to back; ``merge(out, planes)`` interleaves them again.
- ``xor_segments(out, bases, segments)``: XOR into ``out`` the ranges ``(start, length)`` of the
  bases' concatenated bytes, one after the other (``start`` 0xFFFFFFFF: zeros, left as they are).
  Raises ValueError unless the segments cover ``out`` exactly and lie inside the bases.
- ``ulp(out, aligned, width, offset, inverse)``: the ulp delta's transform in place (see
  ``delta.ulp_forward``); ValueError for lengths that differ or a width other than 2, 4, 8.

- ``ungroup(payload)``: a grouped payload's bytes (``grouping``) in one call, planes decompressed
  by libzstd; None where libzstd.so.1 could not be loaded (``grouping`` then uses python-zstandard).
  ValueError names what is wrong with a damaged payload.

They come from the C module ``_kernels`` (built on install; each is one call that runs with the
GIL released). Where it could not be built, the numpy versions below give the same bytes, more
slowly. ``NATIVE`` says which run; the tests hold both to each other.
"""

from __future__ import annotations

import bisect
import itertools

ZEROS = 0xFFFFFFFF


def split_numpy(src, width: int) -> bytes:
    import numpy as np  # only without the C module: importing numpy costs ~80 ms of start-up
    arr = np.frombuffer(src, np.uint8)
    if not 1 <= width <= 8 or len(arr) % width:
        raise ValueError("split: width must be 1..8 and divide the length")
    return np.ascontiguousarray(arr.reshape(-1, width).T).tobytes()


def merge_numpy(out, planes) -> None:
    import numpy as np
    width = len(planes)
    dst = np.frombuffer(out, np.uint8)
    if not 1 <= width <= 8 or len(dst) % width:
        raise ValueError("merge: 1..8 planes whose count divides the output")
    elements = dst.reshape(-1, width)
    for i, plane in enumerate(planes):
        plane = np.frombuffer(plane, np.uint8)
        if len(plane) != len(elements):
            raise ValueError("merge: a plane has the wrong length")
        elements[:, i] = plane


def xor_segments_numpy(out, bases, segments) -> None:
    import numpy as np
    dst = np.frombuffer(out, np.uint8)
    arrays = [np.frombuffer(b, np.uint8) for b in bases]
    *offsets, total = itertools.accumulate((len(a) for a in arrays), initial=0)
    at = 0
    for start, n in segments:
        if at + n > len(dst):
            raise ValueError("delta segments are longer than the chunk")
        if start != ZEROS:
            if start + n > total:
                raise ValueError("delta segment lies outside its bases")
            i = bisect.bisect_right(offsets, start) - 1
            done = 0
            while done < n:
                a = arrays[i]
                lo = start + done - offsets[i]
                k = min(n - done, len(a) - lo)
                piece = dst[at + done:at + done + k]
                np.bitwise_xor(piece, a[lo:lo + k], out=piece)
                done += k
                i += 1
        at += n
    if at != len(dst):
        raise ValueError("delta object does not match its bases' length")


def ulp_numpy(out, aligned, width: int, offset: int, inverse: bool) -> None:
    import numpy as np
    dst, base = np.frombuffer(out, np.uint8), np.frombuffer(aligned, np.uint8)
    if len(dst) != len(base):
        raise ValueError("ulp: the aligned bytes differ in length from the chunk")
    if width not in (2, 4, 8) or not 0 <= offset < width:
        raise ValueError("ulp: elements of 2, 4 or 8 bytes, offset below the width")
    head = min(offset, len(dst))
    end = head + max(0, len(dst) - head) // width * width
    x, b = dst[head:end].view(f"<i{width}"), base[head:end].view(f"<i{width}")
    if inverse:
        u = x.view(f"<u{width}")
        new = ((u >> 1) ^ (0 - (u & 1))).view(x.dtype) + b  # zigzag back, then add the base
    else:
        d = x - b  # wraps: the difference modulo 2**(8 * width)
        new = (d << 1) ^ (d >> (8 * width - 1))
    np.copyto(x, new, where=b != 0)
    np.bitwise_xor(dst[:head], base[:head], out=dst[:head])
    np.bitwise_xor(dst[end:], base[end:], out=dst[end:])


ungroup = None
try:
    from . import _kernels
    from ._kernels import merge, split, ulp, xor_segments
    NATIVE = True
    if getattr(_kernels, "HAVE_ZSTD", 0):  # an extension built before ungroup existed has none
        ungroup = _kernels.ungroup
except ImportError:  # no compiler at install time: same bytes, slower
    split, merge, xor_segments, ulp = split_numpy, merge_numpy, xor_segments_numpy, ulp_numpy
    NATIVE = False
