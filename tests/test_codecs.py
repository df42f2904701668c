"""Codecs: every stored form decodes to the original bytes; the chunk id never depends on it."""

import os

import blake3
import numpy as np
import pytest

from casreg.errors import Corrupt
from casreg.objects import codec
from casreg.objects.grouping import chunk_layout, detect_layout
from casreg.objects.tensorheaders import npy_layout, safetensors_layout, tensor_layout
from casreg.repo import Repository
from tests.helpers import random_bytes, tree_files, write_file

RNG = np.random.default_rng(7)


def _weights(dtype, n=40_000):
    w = (RNG.standard_normal(n) * 0.05).astype(np.float32)
    if dtype == "bf16":
        return (w.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    return w.astype(dtype).tobytes()


SAMPLES = {
    "fp32": _weights(np.float32), "fp16": _weights(np.float16), "bf16": _weights("bf16"),
    "fp64": _weights(np.float64), "int8": RNG.integers(-128, 127, 80_000, dtype=np.int8).tobytes(),
    "text": b'{"vocab": ["the", "model", "weights"]}\n' * 2000, "random": random_bytes(70_000, "codec"),
    "zeros": bytes(65536), "tiny": b"abc", "empty": b"",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("grouping", [False, True])
def test_round_trip_every_kind_of_data(name, grouping):
    data = SAMPLES[name]
    for offset in (0, 1, 3):  # a chunk may start anywhere inside an element
        chunk = data[offset:]
        tag, payload = codec.encode(chunk, grouping=grouping)
        assert codec.decode(tag, payload) == chunk
        assert codec.raw_size(tag, payload) == len(chunk)
        assert len(payload) <= len(chunk)


def test_grouping_detects_widths_and_pays_on_floats():
    assert detect_layout(SAMPLES["fp32"]) == (4, 0)
    assert detect_layout(SAMPLES["fp32"][1:]) == (4, 3)
    assert detect_layout(SAMPLES["bf16"]) == (2, 0)
    assert detect_layout(SAMPLES["text"]) is None and detect_layout(SAMPLES["random"]) is None
    for name in ("fp32", "bf16"):
        tag, grouped = codec.encode(SAMPLES[name], grouping=True)
        _, plain = codec.encode(SAMPLES[name])
        assert tag == codec.GROUPED and len(grouped) < 0.95 * len(plain), name
    assert codec.encode(SAMPLES["text"], grouping=True)[0] == codec.ZSTD
    assert codec.encode(SAMPLES["random"], grouping=True)[0] == codec.RAW


def test_chunk_straddling_two_tensors_of_different_dtypes():
    chunk = SAMPLES["fp32"][:30_001] + SAMPLES["fp16"][:30_000] + SAMPLES["int8"][:999]
    for layout in ((4, 0), (2, 1), (4, 3), None):
        tag, payload = codec.encode(chunk, layout, grouping=True)
        assert codec.decode(tag, payload) == chunk


def test_safetensors_header_gives_width_and_alignment():
    import json
    header = json.dumps({"a": {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]},
                         "b": {"dtype": "I64", "shape": [1], "data_offsets": [40, 48]},
                         "__metadata__": {"x": "y"}}).encode()
    head = len(header).to_bytes(8, "little") + header
    layout = safetensors_layout(head + bytes(48))
    assert layout == (4, len(head))
    assert chunk_layout(layout, len(head) + 6) == (4, 2)
    assert chunk_layout(layout, 0) is None
    assert safetensors_layout(b"PK\x03\x04 not safetensors") is None
    nested = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # deeper than json can recurse
    assert safetensors_layout(len(nested).to_bytes(8, "little") + nested) is None


def test_npy_header_gives_width_and_alignment(tmp_path):
    import io
    for dtype, width in ((np.float32, 4), (np.float16, 2), (np.float64, 8), (np.int64, 8)):
        buf = io.BytesIO()
        np.save(buf, np.zeros(100, dtype))
        data = buf.getvalue()
        layout = tensor_layout(data[:4096])
        assert layout == (width, len(data) - 100 * width)
    buf = io.BytesIO()
    np.save(buf, np.zeros(10, ">f4"))  # big-endian: not grouped by header
    assert npy_layout(buf.getvalue()) is None
    assert npy_layout(b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage}") is None
    assert tensor_layout(b"plain text, no header") is None


TORCH = os.path.join(os.path.dirname(__file__), "fixtures", "torch")  # made by make.py there


def _first_storage(path: str) -> tuple[int, int]:
    """Where the first ``data/`` record's header and bytes start, from zipfile's own reading."""
    import struct
    import zipfile
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        info = next(i for i in z.infolist() if "/data/" in i.filename)
        f.seek(info.header_offset)
        local = f.read(30)
        return info.header_offset, info.header_offset + 30 + sum(struct.unpack("<HH", local[26:30]))


@pytest.mark.parametrize("name,width", [("fp32_state_dict.pt", 4), ("bf16_checkpoint.pt", 2), ("int64.pt", 8)])
def test_torch_checkpoint_gives_width_and_alignment(name, width):
    path = os.path.join(TORCH, name)
    data = open(path, "rb").read()
    header, start = _first_storage(path)
    assert start % 64 == 0
    assert tensor_layout(data[:4096]) == (width, start)
    assert tensor_layout(data[:start]) == (width, start)
    assert tensor_layout(data[:header + 20]) is None  # a head that stops short of the storages
    tag, payload = codec.encode(data[start:], (width, 0), grouping=True)
    assert tag == codec.GROUPED and len(payload) < len(codec.encode(data[start:])[1])  # planes pay
    assert codec.decode(tag, payload) == data[start:]


def test_torch_pickle_is_read_without_running_it(tmp_path):
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        z.writestr("evil/data/0", bytes(4000))
    assert tensor_layout(path.read_bytes()) is None  # names no storage
    assert not (tmp_path / "ran").exists()
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:  # any other zip
        z.writestr("readme.txt", "hello")
    assert tensor_layout((tmp_path / "other.zip").read_bytes()) is None


def _damaged(data: bytes, count: int, seed: int):
    """``count`` copies of ``data`` with a few bytes flipped, some of them cut short."""
    import random
    rng = random.Random(seed)
    for _ in range(count):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            damaged = damaged[:rng.randrange(len(damaged))]
        yield bytes(damaged)


def test_damaged_torch_heads_give_no_layout_and_no_error(capfd):
    """A damaged head (bytes flipped, cut short) falls back to byte statistics: never an
    exception, never a word on stderr (some damaged pickles upset CPython's own unpickler)."""
    for seed, name in enumerate(("fp32_state_dict.pt", "bf16_checkpoint.pt", "int64.pt")):
        with open(os.path.join(TORCH, name), "rb") as f:
            data = f.read(4096)
        for damaged in _damaged(data, 600, seed):
            layout = tensor_layout(damaged)
            assert layout is None or layout[0] in (2, 4, 8)
    assert capfd.readouterr().err == ""


def test_torch_checkpoints_round_trip_grouped(tmp_path):
    repo = Repository.init(str(tmp_path / "store"), codec_name="grouped")
    repo.commit(TORCH, "models/torch/v1")
    repo.checkout("models/torch/v1", str(tmp_path / "out"))
    assert tree_files(str(tmp_path / "out")) == tree_files(TORCH)
    assert repo.verify(full=True) == []
    repo.close()


def test_corrupt_grouped_payload_is_detected():
    tag, payload = codec.encode(SAMPLES["fp32"], grouping=True)
    assert tag == codec.GROUPED
    with pytest.raises(Corrupt):
        codec.decode(tag, payload[:40])
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0xFF  # inside a plane: decodes or not, never to the original
    try:
        assert codec.decode(tag, bytes(damaged)) != SAMPLES["fp32"]  # the id check then refuses it
    except Corrupt:
        pass


def test_damaged_payloads_of_every_codec_are_corrupt_never_another_error():
    """What a remote or a damaged disk hands back is refused as Corrupt (or NotFound, for a base
    that was never stored): no other exception, and no allocation of whatever size a damaged
    zstd frame header claims."""
    from casreg.errors import NotFound
    from casreg.objects.encoding import object_id
    from casreg.objects.store import decode_checked
    base, moved = SAMPLES["fp32"], _weights(np.float32)
    delta_payload = codec.encode_delta(moved, bytes(32), [object_id(base)], [base], [(0, len(moved))], (4, 0))
    stored_base = codec.encode(base, grouping=True)

    def base_of(bid):
        if bid != object_id(base):
            raise NotFound("no such base")
        return stored_base
    cases = [(base, *codec.encode(base, grouping=True)), (SAMPLES["text"], *codec.encode(SAMPLES["text"])),
             (moved, codec.DELTA, delta_payload)]
    for seed, (data, tag, payload) in enumerate(cases):
        assert tag in (codec.GROUPED, codec.ZSTD, codec.DELTA)
        for damaged in _damaged(payload, 1500, seed):
            try:
                assert decode_checked(object_id(data), tag, damaged, base_of) == data
            except (Corrupt, NotFound):  # NotFound: a damaged base id names no stored chunk
                pass
    huge = bytearray(codec.encode(SAMPLES["text"])[1])
    huge[4] = 0xE0  # frame header descriptor: single segment, 8-byte content size (next)
    huge[5:13] = (1 << 50).to_bytes(8, "little")
    with pytest.raises(Corrupt):
        codec.decode(codec.ZSTD, bytes(huge))
    grouped = bytearray(stored_base[1])  # the same lie in a byte plane's frame
    width, offset = grouped[0], grouped[1]
    sizes = np.frombuffer(bytes(grouped[6:6 + 4 * width]), "<u4")
    pos = 6 + 4 * width + offset + sum(int(n) & 0x7FFFFFFF for n in sizes[:np.argmax(sizes < 1 << 31)])
    assert grouped[pos:pos + 4] == b"\x28\xb5\x2f\xfd"  # a zstd frame starts here
    grouped[pos + 4] = 0xE0
    grouped[pos + 5:pos + 13] = (1 << 50).to_bytes(8, "little")
    with pytest.raises(Corrupt):
        codec.decode(codec.GROUPED, bytes(grouped))


def test_a_delta_on_a_wrong_base_names_the_base():
    """Bases are not hashed on their own (the delta's bytes are): when a delta fails, the error
    names the base whose bytes are wrong, and a cache of unchecked bases never yields bytes."""
    from casreg.objects.encoding import object_id
    from casreg.objects.store import decode_checked
    base, moved = SAMPLES["fp32"], _weights(np.float32)
    base_id = object_id(base)
    payload = codec.encode_delta(moved, bytes(32), [base_id], [base], [(0, len(moved))], (4, 0))
    assert decode_checked(object_id(moved), codec.DELTA, payload, lambda bid: codec.encode(base)) == moved
    wrong = bytearray(base)
    wrong[100] ^= 1  # decodes fine, to the wrong bytes
    cache: dict = {}
    for _ in range(2):  # the second time from the cache, unchecked
        with pytest.raises(Corrupt, match=f"object {base_id.hex()} does not match its hash"):
            decode_checked(object_id(moved), codec.DELTA, payload, lambda bid: codec.encode(bytes(wrong)), cache)
    assert cache[base_id] == wrong
    with pytest.raises(Corrupt) as refused:  # a damaged delta on the right base: the base is not blamed
        decode_checked(object_id(moved), codec.DELTA, payload[:-1] + bytes([payload[-1] ^ 1]),
                       lambda bid: codec.encode(base))
    assert base_id.hex() not in str(refused.value)


def test_grouped_store_round_trip_stats_and_verify(tmp_path):
    repo = Repository.init(str(tmp_path / "store"), codec_name="grouped")
    src = tmp_path / "ckpt"
    write_file(src / "model.bin", SAMPLES["fp32"] * 8)
    write_file(src / "vocab.json", SAMPLES["text"])
    repo.commit(str(src), "m/v1")
    repo.checkout("m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(src)
    assert repo.verify(full=True) == []
    by_codec = repo.stats()["stored_bytes_by_codec"]
    assert "grouped" in by_codec and "zstd" in by_codec
    repo.close()
    with pytest.raises(Exception, match="unknown codec"):
        Repository.init(str(tmp_path / "other"), codec_name="lzma")


# Stored forms written by casreg on 2026-11-23 (codec 2 and 3): every later version must decode
# them to the same bytes, or stores written today become unreadable. Weights are k / 64 (exact).
GOLDEN_WEIGHTS_X64 = (
    "-6 2 -15 11 5 -2 -2 2 -2 -2 6 4 -1 -1 1 -5 -3 4 -1 -11 -4 5 -2 -1 5 15 -6 11 -10 1 -9 11 7 9 -7 "
    "5 -4 -4 4 7 2 -5 -7 12 5 6 17 -7 20 25 13 7 -5 8 -4 0 -2 2 10 -4 -8 -8 -8 -11 -7 10 -5 2 -10 1 "
    "-14 -6 18 -5 9 4 -1 -5 10 -1 12 -6 0 4 3 -10 -5 -2 -7 5 5 -16 -14 -10 1 16 -3 2 -9 -8 -16 0 8 -3 "
    "11 2 0 4 4 9 -6 -18 1 -5 0 13 -9 6 8 4 9 -4 -5 8 6 11 2 13 -2 -8 -16 -9 7 -12 -4 17 7 14 -8 -20 "
    "12 -11 1 2 -8 12 12 4 0 2 -9 -2 -1 -7 7 -11 -4 -18 4 6 5 23 8 -8 21 -7 6 6 -7 11 3 5 -5 10 -7 "
    "-14 11 -3 0 15 9 5 9 -6 6 9 6 -2 -30 4 1 -3 6 2 2 -12 -12 3 1 1 1 3 0 1 2 7 -4 6 5 1 -4 3 7 -9 0 "
    "1 -5 -5 -12 -9 -12 -5 -4 -4 3 -2 -6 -6 -9 -2 -2 13 12 12 17 -10 5 6 4 17 20 8 5 -9 -9 6 -1 -11 "
    "-1 3 7 -1 -2 0 1 -9 "
)
GOLDEN_MOVED_X64 = (
    "-6 2 -15 11 5 -1 -2 2 -2 -2 6 4 -1 -1 1 -5 -3 4 -1 -11 -4 5 -2 -1 5 15 -6 11 -10 1 -9 12 7 9 -7 "
    "5 -4 -4 5 7 2 -5 -7 12 5 6 17 -6 21 25 13 7 -5 8 -4 0 -2 2 10 -4 -8 -8 -8 -11 -7 10 -5 2 -10 1 "
    "-14 -6 18 -5 9 4 -1 -5 10 -1 12 -5 0 5 3 -10 -5 -2 -7 5 5 -16 -14 -10 1 16 -2 2 -9 -8 -15 0 8 -3 "
    "11 2 0 4 4 10 -6 -18 2 -5 0 13 -9 6 8 4 9 -4 -5 8 6 11 2 13 -2 -8 -16 -9 8 -11 -4 17 7 15 -8 -20 "
    "12 -11 1 2 -7 12 12 5 0 3 -9 -2 -1 -7 7 -11 -3 -18 4 6 6 24 8 -8 21 -7 6 6 -7 11 3 5 -5 10 -7 "
    "-14 11 -3 0 15 10 5 9 -6 6 9 6 -2 -29 4 1 -3 6 2 2 -12 -12 4 1 1 1 3 0 1 2 7 -4 6 5 1 -4 3 7 -8 "
    "0 2 -5 -5 -12 -9 -12 -5 -4 -4 3 -2 -6 -6 -9 -2 -2 13 12 13 17 -10 5 6 4 17 20 8 5 -9 -9 6 -1 -11 "
    "-1 3 7 -1 -2 0 1 -9 "
)
GOLDEN_GROUPED = (
    "0403ff0300001200000012000000970000006900000000c0bd28b52ffd20ff4d000010000001007a0a600128b52ffd20"
    "ff4d000010000001007a0a600128b52ffd20ff750400b28f2119b015241dcc654174a56c8415859a45204208a11eb7a5"
    "399501f276f19944ba12530741069b108d5f0adb27c52f5d7bfc496ec41f180991548671841a2da7880a600b285d3c55"
    "4fb6c9ed612714314bde820dadcb2309d60b92df86db93f187705bebe0233efad28284c73a6ab63db6bd5620d022a8ac"
    "aefe96d4c86368e8ebf3ec3fad332c010001d00228b52ffd20ff050300f20f170ae0690c0900464d0d0ced0970a89050"
    "925a45f5f3f727f900a9a3ae004544497594b34dc1662faf8d56391d4e204d1113f3946433df2c82235b201724692349"
    "fd29b0c143ee89b427c936d853b7fceadb4cc42ddc097d8450df670a00"
)
GOLDEN_DELTA = (
    "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b02007f8b2392f9ea8846075e5147b105"
    "40bcdf1d3dc095959943fda66772f6a6ac559b02765d9b8fde175aeb0b9437b633f78b20efb6f157aebd686ec1e59321"
    "65170200ffffffff080000000c000000f40300000400fc0300001200000012000000630000002400000028b52ffd20ff"
    "4d000010000001007a0a600128b52ffd20ff4d000010000001007a0a600128b52ffd20ffd50200340300700000800070"
    "0020002008006000200040000000f00030e0700000001000e000002000400000c00000006078301800c0001011003982"
    "313250433a9019c86d250bc82e700eac406b6e5017e4020c02da0089418b41500428b52ffd20ffdd0000703dbe000001"
    "0001000300030001000510004a2c08c3d8c3262d02"
)


# Codec 4 (ulp delta), written on 2026-12-02: the same chunk of the moved weights against the same
# two bases as GOLDEN_DELTA.
GOLDEN_DELTA_ULP = (
    "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b02007f8b2392f9ea8846075e5147b105"
    "40bcdf1d3dc095959943fda66772f6a6ac559b02765d9b8fde175aeb0b9437b633f78b20efb6f157aebd686ec1e59321"
    "65170200ffffffff080000000c000000f40300000400fc03000036000000360000005e0000001a00000028b52ffd20ff"
    "6d01008000000000ff00ff00ff00ffff00ffffff0d008001201f9001e0033c400160439713405c31900c1c0de06d09e0"
    "28b52ffd20ff6d01008000000000ff00ff00ff00ffff00ffffff0d008001201f9001e0033c400160439713405c31900c"
    "1c0de06d09e028b52ffd20ffad0200e40200700000ff00200040003f10003f0040007f0000001f002000401f3f000040"
    "00807f00000040200f0000008000201200c000300736833210023002f7206374480f0cf8736be0379021303268032406"
    "2d06411128b52ffd20ff8d0000383dbe00010001000310004a2c529cd221"
)


def _golden(ks: str) -> bytes:
    return (np.array([int(k) for k in ks.split()], np.float32) / np.float32(64)).tobytes()


def test_golden_stored_forms_still_decode():
    from casreg.objects import deltaformat
    base, moved = _golden(GOLDEN_WEIGHTS_X64), _golden(GOLDEN_MOVED_X64)
    grouped = bytes.fromhex(GOLDEN_GROUPED)
    assert codec.decode(codec.GROUPED, grouped) == base[1:]  # a chunk starting inside an element
    payload = bytes.fromhex(GOLDEN_DELTA)
    assert deltaformat.parse(payload)[0] == b"K" * 32
    assert deltaformat.base_ids(payload) == [blake3.blake3(base[:300]).digest(), blake3.blake3(base[300:]).digest()]
    assert codec.decode(codec.DELTA_XOR, payload, [base[:300], base[300:]]) == moved[4:]
    ulp = bytes.fromhex(GOLDEN_DELTA_ULP)
    assert deltaformat.base_ids(ulp) == deltaformat.base_ids(payload)
    assert codec.decode(codec.DELTA, ulp, [base[:300], base[300:]]) == moved[4:]
