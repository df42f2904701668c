"""One FATE store's interface (``entries``, ``read``, ``write``) and opening one."""

from __future__ import annotations

from ..errors import (
    Corrupt,
    InvalidInput,
)
from .entries import (
    COMPONENT,
    LAYOUT_1_8,
    LAYOUT_1_9,
    LAYOUT_2,
    LAYOUTS,
    PIPELINE,
    ROLES,
    Archive,
    Entry,
    check_archive,
    check_names,
)
from .where import Location, env_secrets, parse_store_url, read_service_conf


# -- the stores ---------------------------------------------------------------------------------------
class FateStore:
    """One FATE store. ``entries()`` lists what it holds, ``read(entry)`` one archive, ``write(...)``
    stores one the way FATE-Flow does (refusing to replace a version unless ``force``)."""

    def __init__(self, location: Location):
        self.location = location
        self.secrets = {**env_secrets(), **location.secrets}

    def entries(self) -> list[Entry]:
        raise NotImplementedError

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        raise NotImplementedError

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _checked_write(self, party_model_id, model_version, data, component, output_key, layout) -> None:
        if layout is not None and layout not in LAYOUTS:
            raise InvalidInput(f"unknown FATE layout {layout!r} (one of {', '.join(LAYOUTS)})")
        if not isinstance(party_model_id, str) or len(party_model_id.split("#", 2)) != 3 \
                or party_model_id.split("#", 1)[0] not in ROLES:
            raise InvalidInput(f"not a FATE party model id: {party_model_id!r} (<role>#<party_id>#<model_id>)")
        check_names(("party model id", party_model_id), ("model version", model_version))
        if component is not None:
            check_names(("component", component))
        if layout == LAYOUT_2:
            if component is None or output_key is None:
                raise InvalidInput("a FATE 2.x archive is a task's output: give its task name and output key")
            check_names(("output key", output_key), *(("2.x key part", p) for p in party_model_id.split("#", 2)))
        elif output_key is not None:
            raise InvalidInput("an output key is FATE 2.x's; a 1.x archive has none")
        if layout == LAYOUT_1_8 and component is not None:
            raise InvalidInput("FATE 1.7/1.8 store whole pipelines only; component archives are 1.9+")
        try:
            check_archive(bytes(data), Entry(layout or LAYOUT_1_9, party_model_id, model_version,
                                              COMPONENT if component else PIPELINE, component, output_key,
                                              "the archive to write"))
        except Corrupt as exc:
            raise InvalidInput(str(exc)) from None


def open_store(location: Location) -> FateStore:
    """The store at ``location``, connected (a one-line RemoteError if it cannot be)."""
    from .cos import COSStore
    from .files import FileStore
    from .mysql import MySQLStore
    from .redis import RedisStore
    kinds = {"mysql": MySQLStore, "redis": RedisStore, "tencent_cos": COSStore, "file": FileStore}
    return kinds[location.engine](location)


def open_conf(path: str) -> FateStore:
    return open_store(read_service_conf(path))


def open_url(url: str) -> FateStore:
    return open_store(parse_store_url(url))
