"""Codecs: every stored form decodes to the original bytes; the chunk id never depends on it."""


import numpy as np
import pytest

from casreg.errors import Corrupt
from casreg.objects import codec
from casreg.objects.grouping import chunk_layout, detect_layout, npy_layout, safetensors_layout, tensor_layout
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
    assert "grouped-zstd" in by_codec and "zstd" in by_codec
    repo.close()
    with pytest.raises(Exception, match="unknown codec"):
        Repository.init(str(tmp_path / "other"), codec_name="lzma")
