"""The structured objects a fetch has received and verified, held until their chunks have landed.

A fetch walks the remote's commits, trees and manifests first and may land them only after every
chunk they name (anything local is complete). A clone of 3x10^5 small files held 3x10^5
manifests in a dict meanwhile (~150 bytes each); here they wait in an unlinked temporary file in
the store's directory (nothing is left behind by a crash), appended in the order received and
read back in passes, one kind at a time, so memory does not follow the number of objects.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from typing import Generator

from ..errors import CasregError

_RECORD = struct.Struct("<32sI")  # id, value length; then the value (its first byte is its kind)


class Staged:
    """Received (id, stored value) pairs, appended, then read back by kind."""

    def __init__(self, directory: str):
        try:
            self._file = tempfile.TemporaryFile(dir=directory, prefix="fetch-")
        except OSError as exc:
            raise CasregError(f"cannot stage fetched objects in {directory}: {exc.strerror}") from None
        self.count = 0
        self.bytes = 0
        self._reading = False

    def add(self, oid: bytes, value: bytes) -> None:
        if self._reading:
            raise RuntimeError("Staged.add after reading began")
        try:
            self._file.seek(0, os.SEEK_END)  # after a pass, however far it read
            self._file.write(_RECORD.pack(oid, len(value)))
            self._file.write(value)
        except OSError as exc:  # the disk is full: nothing has landed yet
            raise CasregError(f"cannot stage fetched objects: {exc.strerror}") from None
        self.count += 1
        self.bytes += len(value)

    def of_kind(self, kind: int) -> Generator[tuple[bytes, bytes], None, None]:
        """The staged objects of ``kind``, in the order they were added (one pass at a time)."""
        if self._reading:
            raise RuntimeError("Staged.of_kind while another pass is reading")
        self._reading = True
        try:
            try:
                self._file.flush()
            except OSError as exc:
                raise CasregError(f"cannot stage fetched objects: {exc.strerror}") from None
            self._file.seek(0)
            for _ in range(self.count):
                oid, n = _RECORD.unpack(self._file.read(_RECORD.size))
                value = self._file.read(n)
                if value[0] == kind:
                    yield oid, value
        finally:
            self._reading = False

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the disk is full: what is unwritten goes anyway
            self._file.close()

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
