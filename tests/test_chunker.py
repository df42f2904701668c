"""Golden cut points: a chunker or library change that moves a boundary breaks dedup silently."""


import blake3

from casreg.objects.chunker import Chunker, ChunkerParams
from casreg.objects.ingest import Ingester
from tests.helpers import random_bytes, write_file

# Cut lengths of random_bytes(1 MiB, "golden") under the default parameters, recorded with
# pyfastcdc 0.3.1. Never edit these numbers to make the test pass: a change here means every
# existing store loses dedup against new commits.
GOLDEN = [71791, 89804, 36896, 71775, 95052, 38007, 117681, 73470, 72823, 83293, 65149, 130731,
          64011, 38093]


def _cuts():
    return Chunker(ChunkerParams()).cut(random_bytes(1 << 20, "golden"))


def test_default_parameters_are_the_documented_ones():
    p = ChunkerParams()
    assert (p.algorithm, p.min_size, p.avg_size, p.max_size, p.normalized_chunking, p.seed) == (
        "fastcdc2020", 16384, 65536, 262144, 1, 0)


def test_golden_cut_points():
    cuts = _cuts()
    assert [n for _, n in cuts] == GOLDEN
    assert sum(n for _, n in cuts) == 1 << 20


def test_cuts_cover_the_input_within_bounds():
    data = random_bytes(3 << 20, "bounds")
    cuts = Chunker(ChunkerParams()).cut(data)
    pos = 0
    for off, n in cuts:
        assert off == pos
        pos += n
    assert pos == len(data)
    assert all(16384 <= n <= 262144 for _, n in cuts[:-1])


def test_streaming_ingest_cuts_like_one_whole_buffer(repo, tmp_path):
    """Block-wise reading (16 MiB blocks with carry-over) must not move any boundary."""
    data = random_bytes(40 << 20, "stream")
    path = write_file(tmp_path / "big.bin", data)
    with Ingester(repo.objects, Chunker(repo.chunker_params)) as ing:
        manifest = ing.add_file(path)
        ing.flush()
    expected = Chunker(repo.chunker_params).cut(data)
    assert [n for _, n in manifest.chunks] == [n for _, n in expected]
    assert [cid for cid, _ in manifest.chunks] == [
        blake3.blake3(data[o:o + n]).digest() for o, n in expected]
    assert manifest.file_hash == blake3.blake3(data).digest()
    assert manifest.size == len(data)
