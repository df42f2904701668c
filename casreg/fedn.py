"""A FEDn combiner's model storage backed by casreg, so every model a combiner receives is kept deduplicated.

    from casreg.fedn import ModelStorage
    storage = ModelStorage("/var/lib/fedn/casreg")      # a store directory (created if missing)

It follows the protocol of FEDn's ``ModelService`` (``fedn/network/combiner/modelservice.py``) and
``TempModelStorage``, which it replaces: ``Upload`` writes each chunk into ``get_ptr(id)`` and says
``set_model_metadata(id, ModelStatus.IN_PROGRESS)``, then ``ModelStatus.OK``, then flushes and closes
the pointer; ``Download`` serves ``get(id)`` only while ``get_model_metadata(id) == ModelStatus.OK``.

- ``get_ptr(id)`` is a writable file (a temporary file, the same one until it is closed); closing it
  commits the bytes as a new version of the ref ``fedn/<id>`` holding one file, ``model``. Until then
  nothing of it is visible: ``exist`` is False for a new id, ``get`` None, the status IN_PROGRESS.
  One never closed (a client that went away mid-stream) commits nothing; ``delete`` discards it.
- The status is the version's metadata ``fedn_status`` (the ModelStatus name, e.g. ``"OK"``): the one
  the combiner said last is committed with the bytes; later changes are notes beside the version.
  Statuses of ids that have no version are kept in memory, as ``TempModelStorage`` keeps them all.
- ``delete`` removes the name only: the version stays restorable (``Registry.restore_version``)
  until gc's grace period (14 days by default) has passed.

When fedn is importable the class is a subclass of FEDn's ``ModelStorage``; without it, it has the
same methods and ``ModelStatus`` has FEDn's values (``fedn_pb2.ModelStatus``).
"""

from __future__ import annotations

import enum
import io
import os
import shutil
import tempfile
import threading
from typing import Any

from .errors import NotFound
from .refs import check_ref_name
from .registry import Registry

try:  # FEDn's abstract base when fedn is installed, so isinstance(storage, ModelStorage) holds there
    from fedn.network.storage.models.modelstorage import ModelStorage as _FednModelStorage
except ImportError:  # no fedn: the same class on a plain base (tests: test_without_fedn_...)
    _FednModelStorage = object

PREFIX = "fedn/"
FILE_NAME = "model"
STATUS_KEY = "fedn_status"


class ModelStatus(enum.IntEnum):
    """FEDn's ``fedn_pb2.ModelStatus`` (same values, so members compare equal to FEDn's ints)."""
    OK = 0
    IN_PROGRESS = 1
    IN_PROGRESS_OK = 2
    FAILED = 3
    UNKNOWN = 4


class ModelUpload(io.RawIOBase):
    """What ``get_ptr`` returns: a write-only file whose bytes become a version on ``close``.

    Leaving a ``with`` block on an exception, ``abort()``, the model's ``delete`` or the storage's
    ``close`` discard it."""

    def __init__(self, storage: ModelStorage, model_id: str, tmp_dir: str | None = None):
        super().__init__()
        self.model_id = model_id
        self._storage = storage
        self._dir = tempfile.mkdtemp(prefix="casreg-fedn-", dir=tmp_dir)
        self.path = os.path.join(self._dir, FILE_NAME)
        self._file = open(self.path, "wb")
        self.meta: dict[str, Any] = {}     # more metadata to commit with the bytes (JSON values)
        self.version: bytes | None = None  # the version id, once closed

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError(f"the upload of model {self.model_id} is closed")
        return self._file.write(data)

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Commit the bytes written as a new version of ``fedn/<model_id>`` (once)."""
        if self.closed:
            return
        try:
            self._file.close()
            self.version = self._storage._land(self)
        finally:
            self._discard()

    def abort(self) -> None:
        """Throw the bytes away: nothing is committed."""
        if not self.closed:
            self._storage._forget(self)
            self._discard()

    def _discard(self) -> None:
        self._file.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        super().close()

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:  # never commit from the garbage collector: unclosed means unfinished
        try:
            self.abort()
        except Exception:
            pass


class ModelStorage(_FednModelStorage):
    """exist / get / get_ptr / get_model_metadata / set_model_metadata / delete / delete_all
    (FEDn's ``ModelStorage``), plus ``set_model`` and ``close``."""

    def __init__(self, path: str, *, tmp_dir: str | None = None):
        """``path``: a casreg store (created if missing); ``tmp_dir``: where uploads in progress
        are spooled (default: the system's temporary directory)."""
        if not os.path.exists(os.path.join(path, "data.mdb")):
            Registry.init(path).close()
        self.registry = Registry(path)
        self.tmp_dir = tmp_dir
        self._lock = threading.Lock()
        self._uploads: dict[str, ModelUpload] = {}   # open get_ptr files, by model id
        self._said: dict[str, ModelStatus] = {}      # the status last set for an id not (yet) committed

    def _ref(self, model_id) -> str:
        return check_ref_name(PREFIX + str(model_id))

    def _version(self, model_id) -> bytes | None:
        try:
            return self.registry.resolve(self._ref(model_id))
        except NotFound:
            return None

    def _stored_status(self, version: bytes) -> ModelStatus:
        """A version's status; one committed without any (not by this class) is whole, so OK."""
        name = self.registry.metadata(version.hex()).get(STATUS_KEY, "OK")
        return ModelStatus[name] if name in ModelStatus.__members__ else ModelStatus.UNKNOWN

    # -- FEDn's ModelStorage ------------------------------------------------------------------------
    def exist(self, model_id) -> bool:
        """True when a version of the model has been committed (not while its first upload is open)."""
        return self._version(model_id) is not None

    def get(self, model_id) -> io.BytesIO | None:
        """The model as an in-memory binary stream when its status is OK, else None (as FEDn's)."""
        if self.get_model_metadata(model_id) != ModelStatus.OK:
            return None
        out = io.BytesIO()
        try:
            self.registry.cat(f"{self._ref(model_id)}:{FILE_NAME}", out)
        except NotFound:  # deleted meanwhile
            return None
        out.seek(0)
        return out

    def get_ptr(self, model_id) -> ModelUpload:
        """The open upload of ``model_id`` (a new one if none is open): write, then close to commit."""
        key = str(model_id)
        with self._lock:
            upload = self._uploads.get(key)
            if upload is None or upload.closed:
                self._ref(key)  # refuse a bad id before spooling anything
                upload = self._uploads[key] = ModelUpload(self, key, self.tmp_dir)
            return upload

    def get_model_metadata(self, model_id) -> ModelStatus:
        """The model's ``ModelStatus``: IN_PROGRESS while an upload is open, the committed status
        once closed, UNKNOWN for an id never seen (as ``TempModelStorage``)."""
        key = str(model_id)
        with self._lock:
            if key in self._uploads:
                return ModelStatus.IN_PROGRESS
            said = self._said.get(key)
        version = self._version(key)
        if version is not None:
            return self._stored_status(version)
        return said if said is not None else ModelStatus.UNKNOWN

    def set_model_metadata(self, model_id, model_metadata) -> bool:
        """Record the model's ``ModelStatus`` (FEDn passes ``fedn_pb2.ModelStatus`` ints). During an
        upload it is held and committed with the bytes; on a committed version it is a note beside it."""
        status = _status(model_metadata)
        key = str(model_id)
        with self._lock:
            if key in self._uploads:
                self._said[key] = status
                return True
            version = self._version(key)
            if version is None:
                self._said[key] = status
                return True
        if self._stored_status(version) != status:
            self.registry.set_meta(version.hex(), {STATUS_KEY: status.name}, message=f"fedn: {status.name}")
        return True

    def delete(self, model_id) -> bool:
        """Remove the model's name (and abort an open upload of it). The version stays in the
        history, restorable with ``registry.restore_version("fedn/<id>")`` until gc. False if unknown."""
        key = str(model_id)
        with self._lock:
            upload = self._uploads.pop(key, None)
            said = self._said.pop(key, None)
        if upload is not None:
            upload.abort()
        if self._version(key) is None:
            return upload is not None or said is not None
        try:
            self.registry.delete_version(self._ref(key))
        except NotFound:
            return False
        return True

    def delete_all(self) -> bool:
        with self._lock:
            uploads = list(self._uploads.values())
            self._uploads.clear()
            self._said.clear()
        for upload in uploads:
            upload.abort()
        for ref, _ in self.registry.list_refs(PREFIX):
            try:
                self.registry.delete_version(ref)
            except NotFound:
                pass
        return True

    # -- casreg's own ---------------------------------------------------------------------------------
    def set_model(self, model_id, model, metadata: dict | None = None) -> bool:
        """Store a whole model (bytes, a binary file object or a file path) with status OK, plus
        ``metadata`` (JSON values) in the version's metadata."""
        with self.get_ptr(model_id) as ptr:
            if isinstance(model, (bytes, bytearray, memoryview)):
                ptr.write(model)
            elif isinstance(model, (str, os.PathLike)):
                with open(model, "rb") as f:
                    shutil.copyfileobj(f, ptr, 1 << 20)
            else:
                shutil.copyfileobj(model, ptr, 1 << 20)
            ptr.meta.update(metadata or {})
            self.set_model_metadata(model_id, ModelStatus.OK)
        return True

    def close(self) -> None:
        """Discard the uploads still open, then close the store."""
        with self._lock:
            uploads = list(self._uploads.values())
            self._uploads.clear()
        for upload in uploads:
            upload.abort()
        self.registry.close()

    # -- ModelUpload's callbacks -------------------------------------------------------------------
    def _land(self, upload: ModelUpload) -> bytes:
        """Commit a closed upload's file with the status said last (OK if none was said)."""
        key = upload.model_id
        with self._lock:
            if self._uploads.get(key) is not upload:  # deleted (aborted) meanwhile
                raise ValueError(f"the upload of model {key} was deleted before it was closed")
            status = self._said.get(key, ModelStatus.OK)
        meta = {**upload.meta, STATUS_KEY: status.name}
        try:
            result = self.registry.commit(upload.path, self._ref(key), meta=meta, message=f"fedn: model {key}")
            if not result.moved:  # the same bytes as the current version: no new one, but what was said holds
                current = self.registry.metadata(result.id.hex())
                if any(current.get(k) != v for k, v in meta.items()):
                    self.registry.set_meta(result.id.hex(), meta, message=f"fedn: {status.name}")
        finally:
            self._forget(upload)
        return result.id

    def _forget(self, upload: ModelUpload) -> None:
        with self._lock:
            if self._uploads.get(upload.model_id) is upload:
                del self._uploads[upload.model_id]
                self._said.pop(upload.model_id, None)


def _status(value) -> ModelStatus:
    """A ModelStatus from FEDn's int (or one of ours, or its name)."""
    if isinstance(value, str) and value in ModelStatus.__members__:
        return ModelStatus[value]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return ModelStatus(value)
        except ValueError:
            pass
    raise TypeError(f"a FEDn ModelStatus is expected (fedn_pb2.ModelStatus.OK ...), got {value!r}")
