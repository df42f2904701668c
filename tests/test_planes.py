"""Byte planes: the C kernels and their numpy fallback give the same bytes."""

import os
import shutil
import sysconfig

import numpy as np
import pytest

from casreg.objects import planes


def _can_build() -> bool:
    cc = (sysconfig.get_config_var("CC") or "").split()
    header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
    return bool(cc) and shutil.which(cc[0]) is not None and os.path.exists(header)


def test_native_kernels_are_built_where_a_compiler_exists():
    if not _can_build():
        pytest.skip("no C compiler or Python headers here: casreg runs on the numpy fallback")
    assert planes.NATIVE, "casreg/objects/_planes.c was not built: reinstall with `pip install -e .`"


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("count", [0, 1, 7, 4099])
def test_split_and_merge_match_numpy_and_invert_each_other(width, count):
    src = np.random.default_rng(width * 10007 + count).integers(0, 256, width * count, np.uint8).tobytes()
    split = planes.split(src, width)
    assert split == planes.split_numpy(src, width)
    assert split == b"".join(src[i::width] for i in range(width))  # plane i: byte i of each element
    pieces = [split[i * count:(i + 1) * count] for i in range(width)]
    for merge in (planes.merge, planes.merge_numpy):
        out = bytearray(len(src))
        merge(out, pieces)
        assert bytes(out) == src


def test_bad_arguments_raise_instead_of_reading_past_a_buffer():
    for split in (planes.split, planes.split_numpy):
        with pytest.raises(ValueError):
            split(b"abcde", 4)
        with pytest.raises(ValueError):
            split(b"abcd", 9)
    for merge in (planes.merge, planes.merge_numpy):
        with pytest.raises(ValueError):
            merge(bytearray(8), [b"ab", b"cd", b"ef", b"g"])
        with pytest.raises(ValueError):
            merge(bytearray(9), [b"abc", b"def"])
        with pytest.raises(ValueError):
            merge(bytearray(0), [])
    with pytest.raises((TypeError, ValueError)):
        planes.merge(b"read-only", [b"abc", b"def", b"ghi"])
