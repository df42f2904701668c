"""Regenerate the checked-in stubs from ``model_service.proto``: ``python -m casreg.fate.proto.regenerate``
(``--check``: only say whether the checked-in files are what the proto gives; exit 1 if not).

It runs grpcio-tools' protoc (``TOOLS``: the version pinned in the test extra, whose protoc 29
writes gencode for protobuf runtime 5.29 and later) with the repository as the include root, so
the generated modules import each other as ``casreg.fate.proto.*``, then puts a header on each.
"""

from __future__ import annotations

import os
import sys
import tempfile

TOOLS = "1.70.0"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))  # the directory holding casreg/
PROTO = "casreg/fate/proto/model_service.proto"
OUTPUTS = ("model_service_pb2.py", "model_service_pb2.pyi", "model_service_pb2_grpc.py")
HEADER = (f"# Generated from model_service.proto by regenerate.py (grpcio-tools {TOOLS}): do not edit.\n"
          "# ruff: noqa\n")
GRPC_HEADER = "# mypy: ignore-errors\n"  # grpcio-tools writes no types for the service stubs


def generate() -> dict[str, bytes]:
    """file name -> the bytes the installed grpcio-tools makes of the proto (with the header)."""
    import importlib.metadata

    from grpc_tools import protoc
    installed = importlib.metadata.version("grpcio-tools")
    if installed != TOOLS:
        raise SystemExit(f"the stubs are made with grpcio-tools {TOOLS}, this is {installed}: "
                         f"pip install grpcio-tools=={TOOLS}")
    with tempfile.TemporaryDirectory() as out:
        code = protoc.main(["protoc", f"-I{ROOT}", f"--python_out={out}", f"--pyi_out={out}",
                            f"--grpc_python_out={out}", os.path.join(ROOT, PROTO)])
        if code != 0:
            raise SystemExit(f"protoc failed ({code})")
        made = {}
        for name in OUTPUTS:
            with open(os.path.join(out, os.path.dirname(PROTO), name), "rb") as f:
                header = HEADER + (GRPC_HEADER if name.endswith("_grpc.py") else "")
                made[name] = header.encode() + f.read()
    return made


def stale() -> list[str]:
    """The checked-in stubs that differ from what the proto gives (none: they match)."""
    out = []
    for name, data in generate().items():
        path = os.path.join(HERE, name)
        if not os.path.isfile(path) or open(path, "rb").read() != data:
            out.append(name)
    return out


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        differ = stale()
        print("stubs match model_service.proto" if not differ else f"stale: {', '.join(differ)}")
        return 1 if differ else 0
    for name, data in generate().items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        print(f"wrote {os.path.join(HERE, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
