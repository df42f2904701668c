"""What FATE's stores hold: the names and constants of FATE-Flow's formats, an entry (one
archive a store lists), an archive's bytes with the hashes FATE recorded, and the slice codec
(base64 of a pickled ``bytes``, unpickled with every global refused)."""

from __future__ import annotations

import base64
import hashlib
import io
import pickle
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    Corrupt,
    HostileInput,
    InvalidInput,
)
from ..fate.names import ROLES

LAYOUT_1_8, LAYOUT_1_9, LAYOUT_1_X, LAYOUT_2 = "1.7/1.8", "1.9+", "1.x", "2.x"
LAYOUTS = (LAYOUT_1_8, LAYOUT_1_9, LAYOUT_2)    # what a write may ask for
PIPELINE, COMPONENT = "pipeline", "component"
SLICE_MAX_SIZE = 8 << 20                        # FATE's SLICE_MAX_SIZE
PICKLE_PROTOCOL = 4                             # pickle.dumps' default on the Pythons FATE runs on
MODEL_TABLE, COMPONENT_TABLE = "t_machine_learning_model", "t_machine_learning_component"
MODEL_INFO_TABLE, COMPONENT_META_TABLE = "t_machine_learning_model_info", "t_pipeline_component_meta"
REDIS_PREFIX = "FATEFlow:PipelinedModel:"
COS_MODELS, COS_COMPONENTS = "FATEFlow/PipelinedModel", "FATEFlow/PipelinedComponent"
ENV = {"password": "CASREG_FATE_PASSWORD", "secret_id": "CASREG_FATE_SECRET_ID", "secret_key": "CASREG_FATE_SECRET_KEY"}
NAME_MAX = 100                                 # FATE's CharField(max_length=100) columns



# -- what -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One archive in a FATE store. ``component`` is the component (2.x: the task) of a component
    archive, ``output_key`` a 2.x task output's key; ``where`` how the store names it."""
    layout: str                      # LAYOUT_1_8, LAYOUT_1_9, LAYOUT_1_X (COS, unknown 1.x) or LAYOUT_2
    party_model_id: str              # <role>#<party_id>#<model_id>
    model_version: str
    kind: str                        # PIPELINE or COMPONENT
    component: str | None = None
    output_key: str | None = None
    where: str = field(default="", compare=False)

    def __str__(self) -> str:
        what = " ".join(p for p in (self.kind, self.party_model_id, self.model_version, self.component,
                                    self.output_key) if p)
        return f"{what} ({self.where})" if self.where else what

    @property
    def sort_key(self) -> tuple:
        return (self.party_model_id, self.model_version, self.kind != PIPELINE, self.component or "",
                self.output_key or "")

    @property
    def storage_key(self) -> str:
        """FATE 2.x's key: ``<model_id>/<model_version>/<role>/<party_id>/<task_name>/<output_key>``."""
        parts = self.party_model_id.split("#", 2)
        if len(parts) != 3:
            raise InvalidInput(f"not a FATE party model id: {self.party_model_id!r} (<role>#<party_id>#<model_id>)")
        role, party, model = parts
        return "/".join((model, self.model_version, role, party, self.component or "", self.output_key or ""))


@dataclass(frozen=True)
class Archive:
    """An archive's bytes and the hashes FATE recorded for it (None where it recorded none)."""
    entry: Entry
    data: bytes = field(repr=False)
    recorded_sha256: str | None = None
    recorded_sha1: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def check(self) -> Archive:
        """Itself, or Corrupt if its bytes differ from a hash FATE recorded."""
        for name, recorded, actual in (("SHA-256", self.recorded_sha256, self.sha256),
                                       ("SHA-1", self.recorded_sha1, hashlib.sha1(self.data).hexdigest())):
            if recorded and recorded.lower() != actual:
                raise Corrupt(f"{self.entry}: the archive's {name} is {actual}, FATE recorded {recorded}")
        return self


def v2_entry(model_id: str, model_version: str, role: str, party_id: str, task_name: str, output_key: str,
             where: str = "") -> Entry:
    return Entry(LAYOUT_2, f"{role}#{party_id}#{model_id}", model_version, COMPONENT, task_name, output_key, where)


def parse_storage_key(key: str, where: str) -> Entry | None:
    parts = key.split("/")
    if len(parts) != 6 or parts[2] not in ROLES or not all(_plain(p) for p in parts):
        return None
    model, version, role, party, task, output = parts
    return v2_entry(model, version, role, party, task, output, where)


def _plain(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= NAME_MAX and value not in (".", "..")
            and not any(c in value for c in "/\\:") and not any(ord(c) < 32 or ord(c) == 127 for c in value))


def check_names(*pairs: tuple[str, Any]) -> None:
    for what, value in pairs:
        if not _plain(value):
            raise InvalidInput(f"not a name FATE can store: {what} {value!r} (1 to {NAME_MAX} characters, "
                               f"no '/', '\\', ':' or control characters)")


# -- decoding what a store holds ---------------------------------------------------------------------
class _NoGlobals(pickle.Unpickler):
    """FATE's slices are pickled ``bytes``: a pickle that names any global at all is refused."""
    def find_class(self, module, name):
        raise _GlobalRefused(f"{module}.{name}")


class _GlobalRefused(pickle.UnpicklingError):
    pass


def encode_slice(content: bytes) -> str:
    """``f_content`` of a 1.x row, as FATE's ``serialize_b64(content, to_str=True)`` writes it."""
    return base64.b64encode(pickle.dumps(bytes(content), protocol=PICKLE_PROTOCOL)).decode("ascii")


def slice_size(f_content: str) -> int:
    """``f_size`` as FATE computes it, ``sys.getsizeof(f_content)`` of an ASCII str on CPython 3.6-3.11
    (FATE 1.x runs on 3.6-3.8; 3.12 dropped 8 bytes from the str header, so not ``sys.getsizeof`` here)."""
    return 49 + len(f_content)


def decode_slice(f_content: Any, name: str, pickled: bool) -> bytes:
    """The bytes of one row's ``f_content``: strict base64, then (1.x) a pickle of one ``bytes``."""
    if isinstance(f_content, str):
        try:
            f_content = f_content.encode("ascii")
        except UnicodeEncodeError:
            raise Corrupt(f"{name}: f_content is not base64 (non-ASCII text)") from None
    try:
        raw = base64.b64decode(f_content, validate=True)
    except (ValueError, TypeError):
        raise Corrupt(f"{name}: f_content is not valid base64") from None
    if not pickled:
        return raw
    stream = io.BytesIO(raw)
    try:
        value = _NoGlobals(stream).load()
    except _GlobalRefused as exc:
        raise HostileInput(f"{name}: the pickle in f_content calls for the global {exc}; refused "
                           f"(FATE's slices are plain bytes)") from None
    except Exception as exc:  # any malformed pickle (truncated, bad opcode, bad memo): never partly used
        raise Corrupt(f"{name}: f_content is not a pickle FATE wrote ({type(exc).__name__})") from None
    if type(value) is not bytes:
        raise HostileInput(f"{name}: the pickle in f_content holds a {type(value).__name__}, not bytes")
    if stream.tell() != len(raw):
        raise Corrupt(f"{name}: f_content has {len(raw) - stream.tell()} bytes after its pickle")
    return value


def check_archive(data: bytes, entry: Entry) -> bytes:
    buf = io.BytesIO(data)
    if entry.layout == LAYOUT_2:
        try:
            with tarfile.open(fileobj=buf):
                pass
        except (tarfile.TarError, EOFError, OSError, ValueError):
            raise Corrupt(f"{entry}: not a tar archive (FATE 2.x stores tars)") from None
        return data
    try:
        with zipfile.ZipFile(buf):
            pass
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise Corrupt(f"{entry}: not a zip archive (truncated or damaged)") from None
    return data


def size_limit() -> int:
    from ..archive import Limits
    return Limits.from_env().max_bytes


def too_big(entry: Entry, size: int, limit: int) -> HostileInput:
    return HostileInput(f"{entry}: {size} bytes, more than the archive limit of {limit} (CASREG_ARCHIVE_MAX_BYTES)")


def now_ms() -> int:
    return int(time.time() * 1000)


def date_of(ms: int) -> str:
    """FATE's timestamp_to_date: local time, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))
