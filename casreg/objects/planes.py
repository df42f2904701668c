"""Byte planes: ``split`` turns ``count`` elements of ``width`` bytes into ``width`` planes (byte
``i`` of every element, planes back to back); ``merge`` interleaves them again.

Both come from the C module ``_planes`` (built on install; the loops release the GIL and run
~2.5x faster than numpy's strided copies). Where it could not be built, the numpy versions below
give the same bytes, slower. ``NATIVE`` says which one runs; the tests hold both to each other.
"""

from __future__ import annotations

import numpy as np


def split_numpy(src, width: int) -> bytes:
    arr = np.frombuffer(src, np.uint8)
    if not 1 <= width <= 8 or len(arr) % width:
        raise ValueError("split: width must be 1..8 and divide the length")
    return np.ascontiguousarray(arr.reshape(-1, width).T).tobytes()


def merge_numpy(out, planes) -> None:
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


try:
    from ._planes import merge, split
    NATIVE = True
except ImportError:  # no compiler at install time: same bytes, slower
    split, merge = split_numpy, merge_numpy
    NATIVE = False
