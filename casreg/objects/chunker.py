"""Content-defined chunking (FastCDC 2020 via pyfastcdc) with parameters fixed per store.

The parameters are written into the store's config at ``init`` and read back on every open:
identical bytes must always cut identically, or dedup against an existing store is lost.
``tests/test_chunker.py`` pins the cut points of a fixed input (golden test).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, cast

from ..errors import StoreUnavailable
from .encoding import MAX_CHUNK


@dataclass(frozen=True)
class ChunkerParams:
    algorithm: str = "fastcdc2020"
    # pyfastcdc's avg_size; the observed mean chunk is about avg_size + min_size (~80 KB).
    avg_size: int = 64 * 1024
    min_size: int = 16 * 1024
    max_size: int = 256 * 1024
    normalized_chunking: int = 1
    seed: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ChunkerParams:
        params = cls(**data)
        if params.algorithm != "fastcdc2020":
            raise StoreUnavailable(f"store uses unknown chunker {params.algorithm!r}")
        if not 0 < params.min_size <= params.avg_size <= params.max_size <= MAX_CHUNK:
            raise StoreUnavailable(f"store has impossible chunk sizes (max {params.max_size}, the limit is {MAX_CHUNK})")
        return params


class Chunker:
    """Cuts buffers into chunks; returns (offset, length) pairs."""

    def __init__(self, params: ChunkerParams):
        from pyfastcdc import FastCDC

        self.params = params
        self._cdc = FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size,
            # an int from the store's config: pyfastcdc refuses one outside 0..3 itself
            normalized_chunking=cast(Literal[0, 1, 2, 3], params.normalized_chunking), seed=params.seed,
        )

    @property
    def max_size(self) -> int:
        return self.params.max_size

    def cut(self, buf) -> list[tuple[int, int]]:
        """Cut points of ``buf`` as if it were a whole stream (the last chunk ends at its end)."""
        return [(c.offset, c.length) for c in self._cdc.cut_buf(buf)]
