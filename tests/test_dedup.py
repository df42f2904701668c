"""Identical bytes are stored once; an edit costs only the chunks around it."""

from tests.helpers import random_bytes, write_file


def test_recommit_stores_nothing_new(repo, tmp_path):
    src = write_file(tmp_path / "src" / "w.bin", random_bytes(4 << 20, "w"))
    first = repo.commit(src, "m/v1")
    second = repo.commit(src, "m/v2", parents=["m/v1"])
    assert first.new_chunks > 10
    assert second.new_chunks == 0 and second.new_stored_bytes == 0


def test_inserted_bytes_cost_only_the_chunks_around_the_edit(repo, tmp_path):
    data = random_bytes(8 << 20, "base")
    v1 = repo.commit(write_file(tmp_path / "a" / "w.bin", data), "m/v1")
    edited = data[:3_000_000] + b"inserted header growth" * 7 + data[3_000_000:]
    v2 = repo.commit(write_file(tmp_path / "b" / "w.bin", edited), "m/v2", parents=["m/v1"])
    assert v1.new_chunks >= 80
    assert 1 <= v2.new_chunks <= 3
    assert v2.new_stored_bytes <= 3 * 262144 + 64
    stats = repo.stats()
    assert stats["versions"] == 2
    assert stats["logical_bytes"] == len(data) + len(edited)
    assert stats["dedup_ratio"] > 1.8


def test_same_file_in_two_directories_is_stored_once(repo, tmp_path):
    blob = random_bytes(1 << 20, "twice")
    write_file(tmp_path / "src" / "x" / "a.bin", blob)
    write_file(tmp_path / "src" / "y" / "b.bin", blob)
    result = repo.commit(str(tmp_path / "src"), "m/two")
    assert result.new_stored_bytes <= len(blob) + 64 * result.new_chunks
    assert repo.stats()["unique_chunk_bytes"] == len(blob)
