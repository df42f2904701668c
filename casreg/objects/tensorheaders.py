"""The headers of tensor files: where the numbers start and how wide they are.

safetensors (JSON header: dtype, shape and offsets of each tensor), NumPy ``.npy`` (a Python
literal header) and torch.save zips (``torchzip``). A file these cannot read is "not a tensor
header", never an error: the bytes then speak for themselves (``grouping.detect_layout``).
"""

from __future__ import annotations

SAFETENSORS_WIDTHS = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
                      "I16": 2, "U16": 2}


def safetensors_tensors(head) -> tuple[int, dict[str, tuple[str, tuple, int, int]]] | None:
    """(start of the tensor data, name -> (dtype, shape, begin, end) as file offsets) of a
    safetensors file from its first bytes; None if ``head`` is not (or not all of) its header.
    The one parser of safetensors headers (layout for grouping, alignment for deltas)."""
    import json
    if len(head) < 8:
        return None
    size = int.from_bytes(head[:8], "little")
    if not 2 <= size <= len(head) - 8 or head[8:9] != b"{":
        return None
    try:
        header = json.loads(bytes(head[8:8 + size]))
        table = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = (int(x) for x in info["data_offsets"][:2])
            table[name] = (str(info["dtype"]), tuple(info["shape"]), 8 + size + begin, 8 + size + end)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # (deeply nested JSON)
        return None
    return 8 + size, table


def safetensors_layout(head) -> tuple[int, int] | None:
    """(element width, start of the tensor data) of a safetensors file from its first bytes: the
    width that holds most of the tensor bytes. None if ``head`` is not a safetensors header."""
    parsed = safetensors_tensors(head)
    if parsed is None:
        return None
    data_start, table = parsed
    by_width: dict[int, int] = {}
    for dtype, _, begin, end in table.values():
        width = SAFETENSORS_WIDTHS.get(dtype)
        if width:
            by_width[width] = by_width.get(width, 0) + end - begin
    if not by_width:
        return None
    return max(by_width, key=lambda w: by_width[w]), data_start


def npy_layout(head) -> tuple[int, int] | None:
    """(element width, start of the data) of a little-endian numeric ``.npy`` file from its
    first bytes, None otherwise."""
    import ast
    if bytes(head[:6]) != b"\x93NUMPY" or len(head) < 10:
        return None
    major = head[6]
    if major == 1:
        size, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3) and len(head) >= 12:
        size, start = int.from_bytes(head[8:12], "little"), 12
    else:
        return None
    try:
        header = ast.literal_eval(bytes(head[start:start + size]).decode("latin1"))
        descr = header["descr"]
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(descr, str) or len(descr) < 3 or descr[0] not in "<|" or descr[1] not in "fiuc":
        return None
    try:
        width = int(descr[2:])
    except ValueError:
        return None
    return (width, start + size) if 1 < width <= 8 else None


def tensor_layout(head) -> tuple[int, int] | None:
    """(element width, start of the data) from a tensor file's own header: safetensors, .npy or
    a torch.save zip."""
    from .torchzip import torch_layout
    return safetensors_layout(head) or npy_layout(head) or torch_layout(head)
