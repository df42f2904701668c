"""The element width of a PyTorch checkpoint (``torch.save``'s zip format), from its first bytes.

Such a file is an uncompressed zip: ``<name>/data.pkl`` first (the pickled object tree), a few
small records, then one record per storage, ``<name>/data/<key>``, each aligned to 64 bytes. The
pickle names every storage as ``('storage', torch.<Dtype>Storage, key, location, numel)``, so the
bytes per dtype are known without torch; the width that holds most of them is the plane width,
and the first storage record is where the numbers start (64-byte alignment keeps every later
record in the same phase for widths up to 8).

The pickle is first walked opcode by opcode (``pickletools``) and refused unless well formed and
free of what could make the C unpickler misbehave; then it is read with every global replaced by an
inert stub: nothing in the file is imported or called. A refusal only means "let the bytes speak".
Local zip headers carry no sizes here (torch sets the data-descriptor flag), so the walk to the
first storage record reads the pickle to its end and then the small records by their contents."""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import warnings
from typing import cast

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_LOCAL_SIG = 0x04034B50
_REFUSED = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER", "STRING", "UNICODE"}  # torch writes none
WIDTHS = {"DoubleStorage": 8, "LongStorage": 8, "ComplexDoubleStorage": 8, "FloatStorage": 4,
          "IntStorage": 4, "ComplexFloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
          "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1}


class _Stub:
    """Stands for every class or function the pickle names; absorbs whatever is done to it."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Stub()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _Reader(pickle.Unpickler):
    def __init__(self, stream):
        super().__init__(stream)
        self.storages: dict[str, tuple[str, int]] = {}  # key -> (storage type, numel)

    def find_class(self, module, name):
        if module == "torch" and name in WIDTHS:
            return name
        return _Stub

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind, key, numel = pid[1], pid[2], pid[4]
            if isinstance(kind, str) and kind in WIDTHS and isinstance(numel, int) and numel >= 0:
                self.storages[str(key)] = (kind, numel)
        return _Stub()


def _pickle_length(data: bytes) -> int | None:
    """Where the pickle at the start of ``data`` ends (after STOP), read opcode by opcode without
    building anything (every counted length is checked against the bytes there); None if it is
    damaged or could make the C unpickler misbehave: an out-of-order memo index (it sizes its
    memo by the largest one: a damaged index could ask for gigabytes), or opcodes torch never
    writes (out-of-band buffers, whose error paths mishandle memory; protocol 0's strings)."""
    puts = 0
    with warnings.catch_warnings():  # a damaged protocol-0 string escape warns as it is read
        warnings.simplefilter("ignore")
        try:
            for op, arg, pos in pickletools.genops(io.BytesIO(data)):
                if op.name in _REFUSED:
                    return None
                # genops gives the PUT and GET opcodes an int argument (MEMOIZE has none)
                if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                    if op.name != "MEMOIZE" and cast(int, arg) > puts:  # pickle numbers its memo 0, 1, 2...
                        return None
                    puts += 1
                elif op.name in ("GET", "BINGET", "LONG_BINGET") and cast(int, arg) >= puts:
                    return None
                elif op.name == "STOP":
                    assert pos is not None  # a BytesIO always tells its position
                    return pos + 1
        except Exception:
            return None
    return None


def _local_header(head, offset: int) -> tuple[str, int] | None:
    """(name, offset of the record's data) of the local zip header at ``offset``."""
    if offset + _LOCAL.size > len(head):
        return None
    sig, _, _, _, _, _, _, _, _, name_len, extra_len = _LOCAL.unpack_from(head, offset)
    if sig != _LOCAL_SIG:
        return None
    name = bytes(head[offset + _LOCAL.size:offset + _LOCAL.size + name_len]).decode("utf-8", "replace")
    return name, offset + _LOCAL.size + name_len + extra_len


def torch_layout(head) -> tuple[int, int] | None:
    """(element width, offset of the first storage's bytes) of a torch zip checkpoint, from its
    first bytes; None if ``head`` is not one (or does not reach its first storage)."""
    first = _local_header(head, 0)
    if first is None or not first[0].endswith("data.pkl"):
        return None
    prefix = first[0][:-len("data.pkl")]
    pickled = bytes(head[first[1]:])
    length = _pickle_length(pickled)
    if length is None:  # truncated, damaged, or using opcodes torch does not write
        return None
    reader = _Reader(io.BytesIO(pickled[:length]))
    try:
        reader.load()
    except Exception:  # not a torch pickle after all: let the bytes speak
        return None
    by_width: dict[int, int] = {}
    for kind, numel in reader.storages.values():
        by_width[WIDTHS[kind]] = by_width.get(WIDTHS[kind], 0) + WIDTHS[kind] * numel
    if not by_width:
        return None
    # after the pickle: a few small records (.format_version, byteorder, ...), each followed by
    # a data descriptor; the first "<prefix>data/" record is where the storages begin
    pos = first[1] + length
    for _ in range(16):
        window = bytes(head[pos:pos + 4096])
        found = window.find(b"PK\x03\x04")
        header = _local_header(head, pos + found) if found >= 0 else None
        if header is None or not header[0].startswith(prefix):
            return None
        if header[0].startswith(prefix + "data/"):
            width = max(by_width, key=lambda w: by_width[w])
            return (width, header[1]) if width > 1 else None
        pos = header[1]
    return None
