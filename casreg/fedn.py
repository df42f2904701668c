"""A FEDn ``ModelStorage`` backed by casreg, so a combiner keeps every model update deduplicated.

    from casreg.fedn import ModelStorage
    storage = ModelStorage("/var/lib/fedn/casreg")      # a store directory (created if missing)

Each model id becomes the ref ``fedn/<model_id>`` holding one file, ``model``; metadata is the
version's metadata map (changed by new commits, so its history is kept).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile

from .errors import CasregError, NotFound
from .refs import check_ref_name
from .registry import Registry

PREFIX = "fedn/"
FILE_NAME = "model"


class ModelStorage:
    """exist / get / get_ptr / set_model / get_model_metadata / set_model_metadata / delete / delete_all."""

    def __init__(self, path: str):
        if not os.path.exists(os.path.join(path, "data.mdb")):
            Registry.init(path).close()
        self.registry = Registry(path)

    def _ref(self, model_id: str) -> str:
        return check_ref_name(PREFIX + str(model_id))

    def exist(self, model_id) -> bool:
        try:
            self.registry.resolve(self._ref(model_id))
            return True
        except NotFound:
            return False

    def set_model(self, model_id, model, metadata: dict | None = None) -> bool:
        """Store a model given as bytes, a binary file object or a file path."""
        with tempfile.TemporaryDirectory(prefix="casreg-fedn-") as tmp:
            path = os.path.join(tmp, FILE_NAME)
            if isinstance(model, (bytes, bytearray, memoryview)):
                with open(path, "wb") as f:
                    f.write(model)
            elif isinstance(model, (str, os.PathLike)):
                shutil.copyfile(model, path)
            else:
                with open(path, "wb") as f:
                    shutil.copyfileobj(model, f, 1 << 20)
            self.registry.commit(path, self._ref(model_id), meta=dict(metadata or {}), force=True,
                                 message="fedn model")
        return True

    def get(self, model_id):
        """The model as an in-memory binary stream (FEDn's contract), or None if unknown."""
        if not self.exist(model_id):
            return None
        out = io.BytesIO()
        self.registry.cat(f"{self._ref(model_id)}:{FILE_NAME}", out)
        out.seek(0)
        return out

    def get_ptr(self, model_id):
        """An open binary file holding the model (spooled to disk when large), or None."""
        if not self.exist(model_id):
            return None
        out = tempfile.SpooledTemporaryFile(max_size=64 << 20)
        self.registry.cat(f"{self._ref(model_id)}:{FILE_NAME}", out)
        out.seek(0)
        return out

    def get_model_metadata(self, model_id) -> dict:
        try:
            return self.registry.metadata(self._ref(model_id))
        except NotFound:
            return {}

    def set_model_metadata(self, model_id, model_metadata: dict) -> bool:
        try:
            self.registry.set_meta(self._ref(model_id), dict(model_metadata))
        except CasregError:
            return False
        return True

    def delete(self, model_id) -> bool:
        try:
            self.registry.delete_ref(self._ref(model_id))
        except CasregError:
            return False
        return True

    def delete_all(self) -> bool:
        for ref, _ in self.registry.list_refs(PREFIX):
            self.registry.delete_ref(ref)
        return True

    def close(self) -> None:
        self.registry.close()
