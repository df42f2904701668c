"""The byte kernels: the C versions and their numpy fallbacks give the same bytes and refuse the same input."""

import os
import shutil
import sysconfig

import numpy as np
import pytest

from casreg.objects import kernels


def _can_build() -> bool:
    cc = (sysconfig.get_config_var("CC") or "").split()
    header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
    return bool(cc) and shutil.which(cc[0]) is not None and os.path.exists(header)


def test_native_kernels_are_built_where_a_compiler_exists():
    if not _can_build():
        pytest.skip("no C compiler or Python headers here: casreg runs on the numpy fallback")
    assert kernels.NATIVE, "casreg/objects/_kernels.c was not built: reinstall with `pip install -e .`"


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("count", [0, 1, 7, 4099])
def test_split_and_merge_match_numpy_and_invert_each_other(width, count):
    src = np.random.default_rng(width * 10007 + count).integers(0, 256, width * count, np.uint8).tobytes()
    split = kernels.split(src, width)
    assert split == kernels.split_numpy(src, width)
    assert split == b"".join(src[i::width] for i in range(width))  # plane i: byte i of each element
    pieces = [split[i * count:(i + 1) * count] for i in range(width)]
    for merge in (kernels.merge, kernels.merge_numpy):
        out = bytearray(len(src))
        merge(out, pieces)
        assert bytes(out) == src


def test_bad_arguments_raise_instead_of_reading_past_a_buffer():
    for split in (kernels.split, kernels.split_numpy):
        with pytest.raises(ValueError):
            split(b"abcde", 4)
        with pytest.raises(ValueError):
            split(b"abcd", 9)
    for merge in (kernels.merge, kernels.merge_numpy):
        with pytest.raises(ValueError):
            merge(bytearray(8), [b"ab", b"cd", b"ef", b"g"])
        with pytest.raises(ValueError):
            merge(bytearray(9), [b"abc", b"def"])
        with pytest.raises(ValueError):
            merge(bytearray(0), [])
    with pytest.raises((TypeError, ValueError)):
        kernels.merge(b"read-only", [b"abc", b"def", b"ghi"])
    for bad in ([[0, 4]], [(0,)], [(0, 1, 2)], [("a", 4)], 7):
        with pytest.raises(TypeError):
            kernels.xor_segments(bytearray(4), [b"abcd"], bad)


def _xor_reference(length: int, bases: list[bytes], segments) -> bytes:
    joined = b"".join(bases)
    out = bytearray(length)  # XOR into zeros: the aligned bytes themselves
    at = 0
    for start, n in segments:
        if start != kernels.ZEROS:
            out[at:at + n] = joined[start:start + n]
        at += n
    return bytes(out)


def test_xor_segments_gathers_across_bases_and_skips_zeros():
    rng = np.random.default_rng(3)
    bases = [rng.integers(0, 256, n, np.uint8).tobytes() for n in (1000, 7, 2500)]
    segments = [(10, 990), (kernels.ZEROS, 33), (995, 20), (0, 0), (3000, 507), (1005, 1)]  # 20 spans 3 bases
    length = sum(n for _, n in segments)
    data = rng.integers(0, 256, length, np.uint8).tobytes()
    expected = bytes(a ^ b for a, b in zip(data, _xor_reference(length, bases, segments)))
    for xor in (kernels.xor_segments, kernels.xor_segments_numpy):
        out = bytearray(data)
        xor(out, bases, segments)
        assert bytes(out) == expected
        xor(out, bases, segments)  # XOR twice: back to the start
        assert bytes(out) == data


@pytest.mark.parametrize("segments", [
    [(0, 11)],                      # longer than the chunk
    [(0, 5)],                       # shorter than the chunk
    [(5, 6), (kernels.ZEROS, 4)],   # 5 + 6 > the bases' 10 bytes
    [(2 ** 32, 10)],                # far outside
])
def test_xor_segments_refuses_segments_that_do_not_fit(segments):
    for xor in (kernels.xor_segments, kernels.xor_segments_numpy):
        with pytest.raises(ValueError):
            xor(bytearray(10), [b"a" * 4, b"b" * 6], segments)


def test_xor_segments_agree_with_numpy_on_random_segments_valid_or_not():
    rng = np.random.default_rng(17)
    for _ in range(300):
        bases = [rng.integers(0, 256, int(n), np.uint8).tobytes() for n in rng.integers(0, 300, rng.integers(0, 4))]
        total = sum(map(len, bases))
        starts = [kernels.ZEROS if rng.random() < 0.2 else int(rng.integers(0, total + 20)) for _ in range(4)]
        segments = [(start, int(rng.integers(0, 120))) for start in starts[:rng.integers(0, 5)]]
        length = sum(n for _, n in segments) + int(rng.choice([0, 0, 0, 1, -1]))
        if length < 0:
            continue
        data = rng.integers(0, 256, length, np.uint8).tobytes()
        results = []
        for xor in (kernels.xor_segments, kernels.xor_segments_numpy):
            out = bytearray(data)
            try:
                xor(out, bases, segments)
                results.append(bytes(out))
            except ValueError:
                results.append(ValueError)
        assert results[0] == results[1], (segments, [len(b) for b in bases], length)


@pytest.mark.parametrize("width", [2, 4, 8])
def test_ulp_matches_numpy_inverts_itself_and_refuses_bad_shapes(width):
    """The ulp delta's transform: C and numpy agree byte for byte on every offset and on lengths
    around the element grid (zero bases left as they are), and the inverse gives the bytes back."""
    rng = np.random.default_rng(width)
    for offset in range(width):
        for n in (0, 1, width - 1, width, width + 1, 1001, 4097):
            data = rng.integers(0, 256, n, np.uint8).tobytes()
            base = rng.integers(0, 256, n, np.uint8)
            base[: n // 3] = 0  # no counterpart: those elements stay as they are
            base_bytes = base.tobytes()
            forward = []
            for ulp in (kernels.ulp, kernels.ulp_numpy):
                out = bytearray(data)
                ulp(out, base_bytes, width, offset, False)
                forward.append(bytes(out))
                ulp(out, base_bytes, width, offset, True)
                assert bytes(out) == data, (ulp, offset, n)
            assert forward[0] == forward[1], (offset, n)
    # a weight one unit in the last place above its base becomes 2: high bytes zero
    one = np.array([1.0], np.float32)
    moved = bytearray(np.nextafter(one, np.float32(2)).tobytes())
    kernels.ulp(moved, one.tobytes(), 4, 0, False)
    assert bytes(moved) == (2).to_bytes(4, "little")
    for ulp in (kernels.ulp, kernels.ulp_numpy):
        with pytest.raises(ValueError):
            ulp(bytearray(8), bytes(7), 4, 0, False)
        with pytest.raises(ValueError):
            ulp(bytearray(9), bytes(9), 3, 0, False)


def _grouped_payloads():
    """Grouped payloads of every shape ``group`` writes: widths 2-8, every offset, raw planes
    (noise), compressed planes (weights, zeros), tails."""
    from casreg.objects import codec, grouping
    rng = np.random.default_rng(17)
    for width in (2, 4, 8):
        for offset in range(width):
            for n in (width, 1001, 40961):
                weights = rng.normal(0, 0.02, n // 4 + 1).astype(np.float32).tobytes()[:n]
                noise = rng.integers(0, 256, n, np.uint8).tobytes()
                for data in (weights, noise, bytes(n)):
                    payload = grouping.group(data, width, offset, codec._plane_compressor())
                    if payload is not None:
                        yield data, payload


def test_native_ungroup_gives_the_bytes_python_zstandard_gives():
    from casreg.objects import codec, grouping
    if kernels.ungroup is None:
        pytest.skip("libzstd.so.1 is not loadable here: grouping decodes through python-zstandard")
    checked = 0
    for data, payload in _grouped_payloads():
        native = kernels.ungroup(payload)
        assert isinstance(native, bytearray)
        assert native == grouping.ungroup_python(payload, codec._decompressor())
        if data:
            assert native == data
        checked += 1
    assert checked >= 90


def test_native_ungroup_refuses_what_python_refuses():
    """Truncations and damaged headers are refused (Corrupt) by both decoders; a damaged byte
    inside a plane is refused or gives bytes of the header's length (zstd frames carry no
    checksum here: the chunk's id check refuses those, see store.decode_checked). Neither reads
    past the payload or crashes."""
    from casreg.errors import Corrupt
    from casreg.objects import codec, grouping
    if kernels.ungroup is None:
        pytest.skip("libzstd.so.1 is not loadable here")
    data = np.random.default_rng(5).normal(0, 0.02, 3000).astype(np.float32).tobytes() + b"tail!"
    payload = grouping.group(data, 4, 1, codec._plane_compressor())
    head = 6 + 4 * 4 + 1  # u8 width, u8 offset, u32 length, 4 plane sizes, 1 head byte

    def both(bad):
        out = []
        for decode in (kernels.ungroup, lambda p: grouping.ungroup_python(p, codec._decompressor())):
            try:
                out.append(bytes(decode(bad)))
            except (ValueError, Corrupt):
                out.append(None)
        return out

    structural = [payload[:n] for n in range(0, len(payload), 7)] + [payload + b"x"]
    structural += [bytes([w]) + payload[1:] for w in (0, 1, 9, 255)]  # widths no payload has
    structural += [payload[:1] + bytes([o]) + payload[2:] for o in (4, 200)]  # offsets past the width
    for at in range(6, head - 1):  # the plane sizes
        for flip in (0x01, 0x80):
            b = bytearray(payload)
            b[at] ^= flip
            structural.append(bytes(b))
    for bad in structural:
        assert both(bad) == [None, None], bad[:12].hex()
        with pytest.raises(Corrupt):
            grouping.ungroup_buffer(bad, codec._decompressor())
    for at in range(head, len(payload), 13):  # inside the planes and the tail
        b = bytearray(payload)
        b[at] ^= 0x5A
        for result in both(bytes(b)):
            assert result is None or len(result) == len(data), at
    huge = payload[:2] + (1 << 31).to_bytes(4, "little") + payload[6:]
    with pytest.raises(Corrupt):
        codec.decode(codec.GROUPED, huge, None, 1 << 20)  # refused before 2 GiB is allocated


def test_native_ungroup_keeps_no_large_scratch_after_a_payload_claiming_a_huge_chunk():
    """A 10 KB payload whose header claims 64 MiB (three planes of zeros that do expand, one
    damaged) is refused, and the thread does not keep the 48 MiB it decompressed into (review
    finding: it kept it until the thread ended)."""
    import struct

    import zstandard

    from casreg.errors import Corrupt
    from casreg.objects import grouping
    if kernels.ungroup is None:
        pytest.skip("libzstd.so.1 is not loadable here")

    def resident() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    count = 16 << 20
    zeros = zstandard.ZstdCompressor().compress(bytes(count))
    frames = [zeros, zeros, zeros, b"\x28\xb5\x2f\xfd" + b"\xff" * 16]
    payload = b"".join([struct.pack("<BBI", 4, 0, 4 * count), struct.pack("<4I", *map(len, frames)), *frames])
    assert len(payload) < 20000
    before = resident()
    with pytest.raises(ValueError):
        kernels.ungroup(payload)
    assert resident() - before < 16 << 20
    with pytest.raises(Corrupt):
        grouping.ungroup_buffer(payload, None)
