"""Checkpoint deltas (codec ``delta``): XOR against the keyframe's aligned tensors, one deep,
kept alive by gc, checked by verify, and moved by push/fetch only where the other side can use them."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from casreg.errors import CasregError
from casreg.objects import codec, delta, deltaformat
from casreg.objects.encoding import CHUNK, MANIFEST
from casreg.objects.keyframecache import FILL_AFTER, KeyframeCache
from casreg.objects.store import unpack
from casreg.remotes import ops
from casreg.repo import Repository
from tests.helpers import damage, flip_last_byte, one_line_error, run_cli, tree_files, write_file

RNG_SEED = 5


def safetensors(tensors: dict[str, np.ndarray], metadata: dict | None = None, order=None) -> bytes:
    """A safetensors file (the format is an 8-byte header length, JSON, then the raw tensors)."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.uint16): "BF16",
              np.dtype(np.int8): "I8"}
    header, blobs, pos = {}, [], 0
    for name in order or tensors:
        t = tensors[name]
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + t.nbytes]}
        blobs.append(t.tobytes())
        pos += t.nbytes
    if metadata:
        header["__metadata__"] = metadata
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + b"".join(blobs)


def bf16(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


class Series:
    """A model trained step by step: every float weight moves a little (a full fine-tune)."""

    def __init__(self, seed: int = RNG_SEED):
        self.rng = np.random.default_rng(seed)
        r = self.rng
        self.w = {"encoder.weight": (r.standard_normal(300_000) * 0.05).astype(np.float32),
                  "encoder.bias": (r.standard_normal(1_001) * 0.01).astype(np.float32),
                  "head.half": (r.standard_normal(150_000) * 0.05).astype(np.float32),
                  "head.bf16": (r.standard_normal(100_000) * 0.05).astype(np.float32),
                  "quant.int8": r.integers(-128, 127, 70_001, dtype=np.int8)}

    def step(self, lr: float = 1e-4) -> None:
        for name, t in self.w.items():
            if t.dtype == np.float32:
                self.w[name] = (t + np.float32(lr * t.std()) * self.rng.standard_normal(t.shape, dtype=np.float32))
        q = self.w["quant.int8"].copy()
        q[self.rng.integers(0, len(q), 500)] += 1
        self.w["quant.int8"] = q

    def file(self, metadata=None, order=None) -> bytes:
        tensors = dict(self.w)
        tensors["head.half"] = tensors["head.half"].astype(np.float16)
        tensors["head.bf16"] = bf16(tensors["head.bf16"])
        return safetensors(tensors, metadata, order)


@pytest.fixture(autouse=True)
def keyframe_cache_on(monkeypatch):
    """The keyframe cache is off by default (it costs disk); these tests turn it on."""
    monkeypatch.setenv("CASREG_KEYFRAME_CACHE", str(1 << 30))


def test_keyframe_cache_is_off_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CASREG_KEYFRAME_CACHE")
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    s = Series()
    for i in range(FILL_AFTER + 3):
        repo.commit(_version(tmp_path, f"v{i}", s.file()), "m/v")
        s.step()
    assert sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/v")) > 10
    assert _cached(repo) == []
    repo.checkout("m/v", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(tmp_path / "src" / f"v{FILL_AFTER + 2}")
    repo.close()


def _cached(repo: Repository) -> list[str]:
    """The keyframe copies in the store's cache (manifest ids, hex)."""
    cache_dir = KeyframeCache(repo.path).dir
    return sorted(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else []


def _with_cached_keyframe(repo: Repository, tmp_path, s: Series) -> str:
    """Commit a keyframe (``m/v0``) and enough versions on ``m/v1`` for it to earn its raw copy in
    the cache; returns the directory of ``m/v1``'s version."""
    repo.commit(_version(tmp_path, "v0", s.file()), "m/v0")
    for i in range(1, FILL_AFTER + 2):
        s.step()
        latest = _version(tmp_path, f"v1.{i}", s.file())
        repo.commit(latest, "m/v1")
    assert len(_cached(repo)) == 1
    return latest


def _version(tmp_path, name: str, weights: bytes) -> str:
    root = tmp_path / "src" / name
    write_file(root / "model.safetensors", weights)
    write_file(root / "config.json", b'{"hidden": 384}')
    return str(root)


def _chunk_lengths(repo: Repository, ref: str, path: str) -> list[tuple[bytes, int]]:
    """(chunk id, length) of every chunk of one file of a version (its manifest)."""
    with repo.db.read() as txn:
        entry = repo._entry_at(txn, repo.read_commit(repo.resolve(ref)).tree, path)
        return repo.objects.load(txn, entry.id, MANIFEST).chunks


def _codecs_of(repo: Repository, ref: str, path: str = "model.safetensors") -> list[tuple[bytes, int, object]]:
    """(chunk id, codec, payload) of every chunk of one file of a version."""
    out = []
    with repo.db.read() as txn:
        for cid, _ in _chunk_lengths(repo, ref, path):
            _, tag, payload = repo.objects.stored(txn, cid)
            out.append((cid, tag, bytes(payload)))
    return out


def _all_chunks(repo: Repository) -> dict[bytes, tuple[int, bytes]]:
    with repo.db.read() as txn:
        return {oid: (tag, bytes(payload)) for oid, kind, tag, payload in repo.objects.iter_stored(txn)
                if kind == CHUNK}


# -- the codec ------------------------------------------------------------------------------------
def _sample(kind: str, rng) -> tuple[bytes, bytes, tuple[int, int]]:
    """(keyframe bytes, new bytes, layout) for one kind of data."""
    w = (rng.standard_normal(30_000) * 0.05).astype(np.float32)
    moved = w + np.float32(1e-4 * w.std()) * rng.standard_normal(w.shape, dtype=np.float32)
    if kind == "fp32":
        return w.tobytes(), moved.tobytes(), (4, 0)
    if kind == "fp16":
        return w.astype(np.float16).tobytes(), moved.astype(np.float16).tobytes(), (2, 0)
    if kind == "bf16":
        return bf16(w).tobytes(), bf16(moved).tobytes(), (2, 0)
    if kind == "int8":
        q = rng.integers(-128, 127, 100_000, dtype=np.int8)
        q2 = q.copy()
        q2[::97] += 1
        return q.tobytes(), q2.tobytes(), (2, 0)
    text = b'{"vocab": ["the", "model", "weights"]}\n' * 2500
    return text, text.replace(b"model", b"mode1"), (4, 0)


@pytest.mark.parametrize("kind", ["fp32", "fp16", "bf16", "int8", "text"])
def test_delta_codec_round_trips_with_split_bases_and_unaligned_bytes(kind):
    rng = np.random.default_rng(11)
    old, new, layout = _sample(kind, rng)
    n = len(new)
    # The keyframe cut into three chunks at odd places; the new chunk starts at an odd offset and
    # the first 100 bytes have no counterpart (zeros): every segment kind and a chunk-crossing range.
    cuts = [0, n // 3 + 1, 2 * n // 3 + 5, n]
    bases = [old[a:b] for a, b in zip(cuts, cuts[1:])]
    ids = [bytes([i]) * 32 for i in range(len(bases))]
    chunk = new[3:]
    segments = [(delta.ZEROS, 100), (103, len(chunk) - 100)]
    payload = codec.encode_delta(chunk, b"k" * 32, ids, bases, segments, (layout[0], (layout[0] - 3) % layout[0]))
    assert deltaformat.base_ids(payload) == ids
    assert codec.decode(codec.DELTA, payload, bases) == chunk
    assert codec.raw_size(codec.DELTA, payload) == len(chunk)
    if kind in ("fp32", "bf16", "int8"):  # a small step: the delta beats the self-contained form
        _, whole = codec.encode(chunk, grouping=True)
        assert len(payload) < 0.8 * len(whole), (len(payload), len(whole))
    with pytest.raises(Exception, match="base"):
        codec.decode(codec.DELTA, payload)
    with pytest.raises(Exception, match="base"):
        codec.decode(codec.DELTA, payload, bases[:2])


def test_layout_aligns_tensors_by_name_whatever_their_order():
    s = Series()
    a = s.file()
    b = s.file(metadata={"note": "x" * 300}, order=sorted(s.w, reverse=True))  # moved, longer header
    la, lb = (delta.file_layout("model.safetensors", len(x), x) for x in (a, b))
    assert la.key == lb.key and la.data_start < lb.data_start
    begin, end = lb.tensors["head.half"][2:]
    [(off, n)] = lb.to_base(la, begin + 10, 1000)
    assert n == 1000 and a[off:off + n] == b[begin + 10:begin + 1010]
    # a range that crosses from one tensor into the next maps piecewise, and the header to zeros
    segments = lb.to_base(la, 0, lb.tensors[sorted(s.w, reverse=True)[0]][2] + 50)
    assert segments[0][0] is None and segments[-1][1] == 50
    other = Series(seed=9).file()
    assert delta.file_layout("m", len(other), other).key == la.key  # same names, dtypes, shapes
    s.w["extra"] = np.zeros(10, np.float32)
    assert delta.file_layout("m", 0, s.file()) is None  # too small to be worth a keyframe
    assert delta.file_layout("m", 2 << 20, s.file()).key != la.key


# -- the store ------------------------------------------------------------------------------------
def test_series_round_trips_and_is_smaller_than_grouped(tmp_path):
    s = Series()
    versions = []
    for i in range(5):
        if i == 3:  # a re-saved checkpoint: tensors in another order, a longer header
            data = s.file(metadata={"epoch": "3"}, order=sorted(s.w, reverse=True))
        else:
            data = s.file()
        versions.append(_version(tmp_path, f"v{i}", data))
        s.step()
    stored = {}
    for name in ("grouped", "delta"):
        repo = Repository.init(str(tmp_path / name), codec_name=name)
        for i, v in enumerate(versions):
            repo.commit(v, f"m/v{i}")
        for i, v in enumerate(versions):
            repo.checkout(f"m/v{i}", str(tmp_path / f"out-{name}-{i}"))
            assert tree_files(tmp_path / f"out-{name}-{i}") == tree_files(v)
        assert repo.verify(full=True) == []
        stats = repo.stats()
        stored[name] = stats["stored_chunk_bytes"]
        if name == "delta":
            assert stats["stored_bytes_by_codec"]["delta"] > 0
            assert {tag for _, tag, _ in _codecs_of(repo, "m/v0")} <= {codec.GROUPED, codec.ZSTD, codec.RAW}
            assert sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/v3")) > 10  # reordered: still deltas
        repo.close()
    assert stored["delta"] < 0.75 * stored["grouped"], stored


def test_other_files_align_byte_for_byte_by_name_and_size(tmp_path):
    """A raw float32 dump (a .npy-like blob, no safetensors header) deltas against the last
    stored file of the same name and size; a file of another size is stored whole."""
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    rng = np.random.default_rng(3)
    w = (rng.standard_normal(400_000) * 0.05).astype(np.float32)
    versions = []
    for i in range(3):
        data = w.tobytes() if i < 2 else w[:-1000].tobytes()
        versions.append(str(tmp_path / f"v{i}"))
        write_file(tmp_path / f"v{i}" / "weights.bin", data)
        repo.commit(versions[-1], f"m/v{i}")
        w = w + np.float32(1e-4 * w.std()) * rng.standard_normal(w.shape, dtype=np.float32)
    delta_chunks = [sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, f"m/v{i}", "weights.bin"))
                    for i in range(3)]
    assert delta_chunks[0] == 0 and delta_chunks[1] > 10 and delta_chunks[2] == 0
    for i, v in enumerate(versions):
        repo.checkout(f"m/v{i}", str(tmp_path / f"out{i}"))
        assert tree_files(tmp_path / f"out{i}") == tree_files(v)
    cache_dir = KeyframeCache(repo.path).dir
    assert not os.path.isdir(cache_dir) or not os.listdir(cache_dir)  # a headerless blob: no raw copy
    repo.close()


def test_reinitialized_weights_are_stored_whole_even_after_a_run_of_deltas(tmp_path):
    """Where new weights have nothing in common with the keyframe's (a re-initialized layer),
    their XOR compresses worse than they do; each chunk keeps the smaller form, also right after
    a run of middling deltas that won (after which the self-contained form is no longer tried
    for those)."""
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    rng = np.random.default_rng(8)
    w = (rng.standard_normal(400_000) * 0.05).astype(np.float32)
    stepped = w + np.float32(1e-2 * w.std()) * rng.standard_normal(w.shape, dtype=np.float32)  # deltas ~0.67
    stepped[200_000:] = rng.standard_normal(200_000) * 0.05  # the second half starts over
    for i, data in enumerate([w, stepped]):
        write_file(tmp_path / f"v{i}" / "weights.bin", data.tobytes())
        repo.commit(str(tmp_path / f"v{i}"), f"m/v{i}")
    chunks = _codecs_of(repo, "m/v1", "weights.bin")
    assert sum(tag in codec.DELTAS for _, tag, _ in chunks) > 8  # the first half: deltas win, many in a row
    data, pos = stepped.tobytes(), 0
    for (_, tag, _payload), (_, n) in zip(chunks, _chunk_lengths(repo, "m/v1", "weights.bin")):
        if pos >= 800_000:  # the new weights: grouped on their own, not a bigger XOR
            assert tag == codec.GROUPED, pos
        pos += n
    repo.checkout("m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(tmp_path / "v1")
    repo.close()


def test_torch_checkpoints_delta_with_a_cached_keyframe(tmp_path):
    """A torch.save file deltas byte for byte like any other file; once deltas against its
    keyframe have paid for a raw copy (the ``FILL_AFTER + 1``-th delta), the copy fills as the
    bases are read: the keyframe's exact bytes."""
    head = open(os.path.join(os.path.dirname(__file__), "fixtures", "torch", "fp32_state_dict.pt"), "rb").read()
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    rng = np.random.default_rng(5)
    w = (rng.standard_normal(400_000) * 0.05).astype(np.float32)
    versions = []
    for i in range(FILL_AFTER + 2):  # a real torch head, then more floats: a bigger state dict
        versions.append(str(tmp_path / f"v{i}"))
        write_file(tmp_path / f"v{i}" / "model.pt", head + w.tobytes())
        repo.commit(versions[-1], f"m/v{i}")
        w = w + np.float32(1e-4 * w.std()) * rng.standard_normal(w.shape, dtype=np.float32)
        if i <= FILL_AFTER:  # the keyframe and its first FILL_AFTER deltas: no copy yet
            assert _cached(repo) == []
    assert sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/v1", "model.pt")) > 10
    [cached] = _cached(repo)
    with open(os.path.join(KeyframeCache(repo.path).dir, cached), "rb") as f, \
            open(os.path.join(versions[0], "model.pt"), "rb") as first:
        copy, raw = f.read(), first.read()
    # the keyframe's bytes where a delta read them as a base; zeros (a hole) where none did
    pos, filled = 0, 0
    for _, n in _chunk_lengths(repo, "m/v0", "model.pt"):
        assert copy[pos:pos + n] in (raw[pos:pos + n], bytes(n)), pos
        filled += n * (copy[pos:pos + n] == raw[pos:pos + n])
        pos += n
    assert len(copy) == len(raw) and filled > 0.9 * len(raw)
    for i, v in enumerate(versions):
        repo.checkout(f"m/v{i}", str(tmp_path / f"out{i}"))
        assert tree_files(tmp_path / f"out{i}") == tree_files(v)
    repo.close()


def test_chain_depth_is_one_and_a_new_keyframe_comes_every_n_versions(tmp_path):
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    s = Series()
    versions = []
    for i in range(delta.KEYFRAME_EVERY + 2):
        versions.append(_version(tmp_path, f"v{i}", s.file()))
        repo.commit(versions[-1], f"m/v{i}")
        s.step()
    chunks = _all_chunks(repo)
    for _oid, (tag, payload) in chunks.items():  # no delta is ever the base of a delta
        if tag in codec.DELTAS:
            assert all(chunks[b][0] not in codec.DELTAS for b in deltaformat.base_ids(payload))
    keyframe = {cid for cid, _, _ in _codecs_of(repo, "m/v0")}
    second = {cid for cid, _, _ in _codecs_of(repo, f"m/v{delta.KEYFRAME_EVERY}")}
    for i in range(1, delta.KEYFRAME_EVERY):  # the versions in between: deltas against v0
        bases = {b for _, tag, p in _codecs_of(repo, f"m/v{i}") if tag in codec.DELTAS for b in deltaformat.base_ids(p)}
        assert bases and bases <= keyframe
    assert all(tag not in codec.DELTAS for _, tag, _ in _codecs_of(repo, f"m/v{delta.KEYFRAME_EVERY}"))
    last = {b for _, tag, p in _codecs_of(repo, f"m/v{delta.KEYFRAME_EVERY + 1}") if tag in codec.DELTAS
            for b in deltaformat.base_ids(p)}
    assert last and last <= second
    for i in (delta.KEYFRAME_EVERY - 1, delta.KEYFRAME_EVERY + 1):  # deepest chains restore exactly
        repo.checkout(f"m/v{i}", str(tmp_path / f"out{i}"))
        assert tree_files(tmp_path / f"out{i}") == tree_files(versions[i])
    repo.close()


def test_a_version_made_of_deltas_never_becomes_a_keyframe(tmp_path):
    """When the keyframe expires on a version whose chunks are mostly deltas already stored (a
    re-saved checkpoint), that version is not the next keyframe: the next trained one is."""
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    s = Series()
    for i in range(delta.KEYFRAME_EVERY):  # v0 keyframe, v1..v7 deltas: the keyframe is used up
        if i:
            s.step()
        repo.commit(_version(tmp_path, f"v{i}", s.file()), f"m/v{i}")
    # the same tensors as v7 re-saved with metadata: only the header chunk is new
    resaved = _version(tmp_path, "resaved", s.file(metadata={"note": "re-saved"}))
    repo.commit(resaved, "m/resaved")
    assert any(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/resaved"))
    s.step()
    repo.commit(_version(tmp_path, "next", s.file()), "m/next")
    assert all(tag not in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/next"))  # the new keyframe
    s.step()
    after = _version(tmp_path, "after", s.file())
    repo.commit(after, "m/after")
    assert sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/after")) > 10
    repo.checkout("m/after", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(after)
    repo.close()


def test_gc_keeps_the_bases_of_live_deltas(tmp_path):
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    s = Series()
    repo.commit(_version(tmp_path, "v0", s.file()), "m/v0")
    for i in range(1, FILL_AFTER + 2):  # enough deltas for the keyframe to earn its copy
        s.step()
        v1 = _version(tmp_path, f"v{i}", s.file())
        repo.commit(v1, "m/v1")
    repo.delete_ref("m/v0")
    [cached] = _cached(repo)
    result = repo.gc(prune="now")
    assert result["deleted_objects"] > 0  # v0's own manifest, tree and commit (and its unshared chunks)
    assert cached not in _cached(repo)  # its decoded copy goes with it
    assert repo.verify(full=True) == []
    repo.checkout("m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(v1)
    # the keyframe's manifest is gone: the next version becomes a keyframe and restores too
    s.step()
    v2 = _version(tmp_path, "v2", s.file())
    repo.commit(v2, "m/v2")
    assert all(tag not in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/v2"))
    assert _cached(repo) == []  # v2, the new keyframe, has no deltas yet: no copy
    repo.delete_ref("m/v1")
    repo.delete_ref("m/v2")
    repo.gc(prune="now")
    assert _all_chunks(repo) == {}
    assert _cached(repo) == []
    repo.close()


def test_corrupt_or_missing_delta_base_is_found_by_verify(tmp_path):
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    s = Series()
    v1 = _with_cached_keyframe(repo, tmp_path, s)
    victim_delta, _, payload = next(c for c in _codecs_of(repo, "m/v1") if c[1] in codec.DELTAS)
    base = deltaformat.base_ids(payload)[0]
    damage(repo, base, flip_last_byte)
    problems = {p["id"]: p["problem"] for p in repo.verify(full=True)}
    assert base.hex() in problems and victim_delta.hex() in problems
    # the decoded keyframe cache still holds the right bytes (checked by hash): v1 restores
    repo.checkout("m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(v1)
    # without the cache the damage shows: one clear error naming the base, nothing half-written
    shutil.rmtree(KeyframeCache(repo.path).dir)
    with pytest.raises(CasregError, match=f"object {base.hex()} does not match its hash|cannot"):
        repo.checkout("m/v1", str(tmp_path / "out2"))
    assert not (tmp_path / "out2").exists()
    damage(repo, base)
    repo.delete_ref("m/v0")  # now only the delta names the base
    assert {"id": base.hex(), "kind": "chunk", "problem": "missing"} in repo.verify()
    repo.close()


def test_keyframe_cache_is_only_a_speed_up(tmp_path):
    """A damaged or missing cache changes no byte: commits and restores check what they read."""
    repo = Repository.init(str(tmp_path / "store"), codec_name="delta")
    s = Series()
    _with_cached_keyframe(repo, tmp_path, s)
    [cached] = _cached(repo)
    path = os.path.join(KeyframeCache(repo.path).dir, cached)
    with open(path, "r+b") as f:  # flip bytes all over the cached keyframe
        for offset in range(0, os.path.getsize(path), 100_000):
            f.seek(offset)
            f.write(b"\xff\x00\xff")
    versions = []
    for i in (1, 2):
        s.step()
        versions.append(_version(tmp_path, f"v{i}", s.file()))
        repo.commit(versions[-1], f"m/v{i}")  # v1 with the damaged cache, v2 with none
        repo.checkout(f"m/v{i}", str(tmp_path / f"out{i}"))
        assert tree_files(tmp_path / f"out{i}") == tree_files(versions[-1])
        if i == 1:
            os.unlink(path)
    assert any(tag in codec.DELTAS for _, tag, _ in _codecs_of(repo, "m/v2"))
    assert repo.verify(full=True) == []
    repo.delete_ref("m/v0")
    repo.delete_ref("m/v1")
    repo.delete_ref("m/v2")
    repo.gc(prune="now")
    assert os.listdir(KeyframeCache(repo.path).dir) == []
    repo.close()


# -- remotes --------------------------------------------------------------------------------------
def test_push_and_fetch_of_deltas(remote, tmp_path):
    a = Repository.init(str(tmp_path / "a" / ".casreg"), codec_name="delta")
    ops.config(a).add("origin", remote.url)
    s = Series()
    v = []
    for i in range(3):
        v.append(_version(tmp_path, f"v{i}", s.file()))
        s.step()
    a.commit(v[0], "m/v0")
    a.commit(v[1], "m/v1")
    assert any(tag in codec.DELTAS for _, tag, _ in _codecs_of(a, "m/v1"))
    # The remote lacks the keyframe: v1 goes self-contained, and v0's own chunks stay home.
    [pushed] = ops.push_refs(a, "origin", ["m/v1"])
    only_v0 = {c for c, _, _ in _codecs_of(a, "m/v0")} - {c for c, _, _ in _codecs_of(a, "m/v1")}
    be = remote.backend()
    assert be.has_many(sorted(only_v0)) == set()
    sent = dict(be.get_many([c for c, _, _ in _codecs_of(a, "m/v1")]))
    assert all(unpack(value)[1] not in codec.DELTAS for value in sent.values())
    be.close()
    # Once the remote holds the keyframe, a delta crosses as a delta: a fraction of the bytes.
    ops.push_refs(a, "origin", ["m/v0"])
    result = a.commit(v[2], "m/v2")
    [pushed2] = ops.push_refs(a, "origin", ["m/v2"])
    assert pushed2.bytes_sent <= 1.1 * result.new_stored_bytes + 4096
    assert pushed2.bytes_sent < 0.75 * pushed.bytes_sent
    assert ops.verify(a, "origin", full=True) == []
    # A fetch of v2 alone brings the bases its deltas need: the store is complete on its own.
    b = Repository.init(str(tmp_path / "b" / ".casreg"), codec_name="delta")
    ops.config(b).add("origin", remote.url)
    ops.fetch_refs(b, "origin", ["m/v2"])
    assert any(tag in codec.DELTAS for _, tag, _ in _codecs_of(b, "remotes/origin/m/v2"))
    assert b.verify(full=True) == []
    b.checkout("remotes/origin/m/v2", str(tmp_path / "out-b"))
    assert tree_files(tmp_path / "out-b") == tree_files(v[2])
    a.close()
    b.close()


@pytest.mark.slow
def test_cli_delta_store_end_to_end(tmp_path):
    store = tmp_path / "store"
    run_cli("--store", store, "init", "--codec", "delta", check=0)
    s = Series()
    versions = []
    for i in range(FILL_AFTER + 2):  # the last delta fills the keyframe's copy in the cache
        versions.append(_version(tmp_path, f"v{i}", s.file()))
        run_cli("--store", store, "commit", versions[-1], "--ref", f"m/v{i}", check=0)
        s.step()
    stats = json.loads(run_cli("--store", store, "stats", "--json", check=0).stdout)
    assert stats["stored_bytes_by_codec"]["delta"] > 0
    size = os.path.getsize(f"{versions[0]}/model.safetensors")  # the disk it takes, in 4 KiB blocks
    assert 0.9 * size < stats["keyframe_cache_bytes"] <= size + 4096
    assert b"keyframe cache:" in run_cli("--store", store, "stats", check=0).stdout
    run_cli("--store", store, "checkout", "m/v1", tmp_path / "out", check=0)
    assert tree_files(tmp_path / "out") == tree_files(versions[1])
    assert "codec" in one_line_error(run_cli("--store", tmp_path / "x", "init", "--codec", "xdelta"))


@pytest.mark.slow
def test_cli_switches_an_existing_store_to_deltas(tmp_path):
    """`casreg codec delta` on a zstd store: earlier versions keep their form and restore as they
    were; a file's next new version becomes its first keyframe, the one after it is deltas."""
    store = tmp_path / "store"
    run_cli("--store", store, "init", "--codec", "zstd", check=0)
    s = Series()
    versions = []
    for i in range(3):
        if i == 1:
            assert run_cli("--store", store, "codec", check=0).stdout.strip() == b"zstd"
            assert run_cli("--store", store, "codec", "delta", check=0).stdout.strip() == b"delta"
        versions.append(_version(tmp_path, f"v{i}", s.file()))
        run_cli("--store", store, "commit", versions[-1], "--ref", f"m/v{i}", check=0)
        s.step()
    repo = Repository.open(str(store))
    tags = [{tag for _, tag, _ in _codecs_of(repo, f"m/v{i}")} for i in range(3)]
    assert not codec.DELTAS & (tags[0] | tags[1]) and codec.GROUPED not in tags[0] and codec.GROUPED in tags[1]
    assert codec.DELTAS & tags[2]
    for i, v in enumerate(versions):
        repo.checkout(f"m/v{i}", str(tmp_path / f"out{i}"))
        assert tree_files(tmp_path / f"out{i}") == tree_files(v)
    assert repo.verify(full=True) == []
    repo.close()
    assert "codec" in one_line_error(run_cli("--store", store, "codec", "xdelta"))
    assert run_cli("--store", store, "codec", check=0).stdout.strip() == b"delta"
    assert "codec" in one_line_error(run_cli("--store", tmp_path / "new", "init", "--codec", "xdelta"))
    assert not (tmp_path / "new").exists()  # an unknown codec creates nothing


@pytest.mark.parametrize("remote", ["file", "redis"], indirect=True)
def test_a_fetched_version_is_the_keyframe_of_the_next_local_one(remote, tmp_path):
    """Federated rounds: a site pulls the global model, trains a step, pushes it back as deltas."""
    hub = Repository.init(str(tmp_path / "hub" / ".casreg"), codec_name="delta")
    ops.config(hub).add("origin", remote.url)
    s = Series()
    hub.commit(_version(tmp_path, "global", s.file()), "m/round1")
    ops.push_refs(hub, "origin", ["m/round1"])
    site = Repository.init(str(tmp_path / "site" / ".casreg"), codec_name="delta")
    ops.config(site).add("origin", remote.url)
    ops.fetch_refs(site, "origin", ["m/round1"])
    assert _cached(site) == []  # a fetched keyframe earns a raw copy as any other: by its deltas
    s.step()
    local = _version(tmp_path, "local", s.file())
    result = site.commit(local, "m/round2-site", parents=["remotes/origin/m/round1"])
    assert sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(site, "m/round2-site")) > 10
    [pushed] = ops.push_refs(site, "origin", ["m/round2-site"])
    assert pushed.bytes_sent <= 1.1 * result.new_stored_bytes + 4096
    whole = sum(len(p) for _, _, p in _codecs_of(hub, "m/round1"))
    assert pushed.bytes_sent < 0.75 * whole
    ops.fetch_refs(hub, "origin", ["m/round2-site"])
    hub.checkout("remotes/origin/m/round2-site", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(local)
    assert hub.verify(full=True) == [] and site.verify(full=True) == []
    hub.close()
    site.close()


def test_fetched_torch_and_raw_files_are_keyframes_by_name_too(tmp_path):
    """Files aligned byte for byte are keyed by their name: a fetch finds it in the fetched trees.
    Neither is copied into the keyframe cache by the fetch."""
    from tests.remote_kinds import FileRemote
    remote = FileRemote(tmp_path)
    head = open(os.path.join(os.path.dirname(__file__), "fixtures", "torch", "fp32_state_dict.pt"), "rb").read()
    rng = np.random.default_rng(11)
    w = (rng.standard_normal(300_000) * 0.05).astype(np.float32)

    def version(name):
        root = tmp_path / "src" / name
        write_file(root / "sub" / "model.pt", head + w.tobytes())  # a torch head, then more floats
        write_file(root / "weights.bin", w[::-1].tobytes())
        return str(root)
    hub = Repository.init(str(tmp_path / "hub" / ".casreg"), codec_name="delta")
    ops.config(hub).add("origin", remote.url)
    hub.commit(version("global"), "m/round1")
    ops.push_refs(hub, "origin", ["m/round1"])
    site = Repository.init(str(tmp_path / "site" / ".casreg"), codec_name="delta")
    ops.config(site).add("origin", remote.url)
    ops.fetch_refs(site, "origin", ["m/round1"])
    assert _cached(site) == []
    w = w + np.float32(1e-4 * w.std()) * rng.standard_normal(w.shape, dtype=np.float32)
    local = version("local")
    site.commit(local, "m/round2-site")
    for path in ("sub/model.pt", "weights.bin"):
        assert sum(tag in codec.DELTAS for _, tag, _ in _codecs_of(site, "m/round2-site", path)) > 10, path
    site.checkout("m/round2-site", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(local)
    hub.close()
    site.close()


def test_push_lands_every_base_before_the_deltas_built_on_it(tmp_path, monkeypatch):
    """A push cut off at any point must not leave a delta on the remote without its base: bases
    go first, in earlier (or the same) batches. Batches of one object make the order visible."""
    from casreg.remotes import open_backend, sync
    a = Repository.init(str(tmp_path / "a"), codec_name="delta")
    s = Series()
    v0 = s.file()
    a.commit(_version(tmp_path, "v0", v0), "m/v0")
    s.step()
    v1 = s.file()
    a.commit(_version(tmp_path, "v1", v1), "m/v1")
    # one version holding both files: the graph walk meets the deltas (b/) before their bases (a/)
    write_file(tmp_path / "both" / "a" / "model.safetensors", v0)
    write_file(tmp_path / "both" / "b" / "model.safetensors", v1)
    a.commit(str(tmp_path / "both"), "m/both")
    landed: list[bytes] = []
    be = open_backend(f"file://{tmp_path}/remote", create=True)
    put_many = be.put_many
    be.put_many = lambda items: (landed.extend(oid for oid, _ in items), put_many(items))[1]
    be.batch_bytes = 1
    sync.push(a, be, ["m/both"])
    position = {oid: i for i, oid in enumerate(landed)}
    deltas = [(oid, p) for oid, tag, p in _codecs_of(a, "m/v1") if tag in codec.DELTAS]
    assert deltas and all(oid in position for oid, _ in deltas)  # sent as deltas: v0 goes too
    for oid, payload in deltas:
        assert all(position[b] < position[oid] for b in deltaformat.base_ids(payload))
    be.close()
    a.close()
