"""FATE-Flow's Tencent COS model store: ``FATEFlow/PipelinedModel/...`` objects (1.x, 1.9+
components, ``.zip.sha1`` side objects) and 2.x storage keys."""

from __future__ import annotations

import re

from ..errors import (
    AlreadyExists,
    Corrupt,
    NotFound,
    RemoteError,
)
from .base import FateStore
from .entries import (
    COMPONENT,
    COS_COMPONENTS,
    COS_MODELS,
    LAYOUT_1_8,
    LAYOUT_1_9,
    LAYOUT_1_X,
    LAYOUT_2,
    PIPELINE,
    Archive,
    Entry,
    check_archive,
    parse_storage_key,
    size_limit,
    too_big,
)
from .where import Location


# COS --------------------------------------------------------------------------------------------------
class COSStore(FateStore):
    def __init__(self, location: Location):
        super().__init__(location)
        from ..remotes.base import Traffic
        from ..remotes.config import RemoteURL
        from ..remotes.cos_backend import COSBlobs
        loc = location
        query = {"region": loc.region, "prefix": "", **dict(loc.cos)}
        url = RemoteURL(f"cos://{loc.bucket}", "cos", loc.bucket, query=query, timeout=loc.timeout)
        self.blobs = COSBlobs(url, self.secrets, Traffic())
        self.where = f"COS bucket {loc.bucket}"

    def _list(self, prefix: str) -> dict[str, int]:
        """Key (after ``prefix``) -> size of every object under ``prefix`` (all of them for "")."""
        out: dict[str, int] = {}
        marker = ""
        while True:
            with self.blobs._errors():
                resp = self.blobs.client.list_objects(Bucket=self.blobs.bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
            contents = resp.get("Contents", [])
            out.update((c["Key"][len(prefix):], int(c.get("Size", 0))) for c in contents)
            if resp.get("IsTruncated") not in ("true", True) or not contents:
                return out
            marker = resp.get("NextMarker") or contents[-1]["Key"]

    def entries(self) -> list[Entry]:
        models, components, out = self._list(COS_MODELS + "/"), self._list(COS_COMPONENTS + "/"), []
        with_components = set()
        for name in components:
            parts = name.split("/")
            if len(parts) == 3 and parts[2].endswith(".zip") and len(parts[2]) > 4:
                with_components.add((parts[0], parts[1]))
                out.append(Entry(LAYOUT_1_9, parts[0], parts[1], COMPONENT, parts[2][:-4],
                                 where=f"{self.where} {COS_COMPONENTS}/{name}"))
        for name in models:
            parts = name.split("/")
            if len(parts) == 2 and parts[1].endswith(".zip") and len(parts[1]) > 4:
                pmid, version = parts[0], parts[1][:-4]
                layout = LAYOUT_1_8 if f"{name}.sha1" in models else \
                    LAYOUT_1_9 if (pmid, version) in with_components else LAYOUT_1_X
                out.append(Entry(layout, pmid, version, PIPELINE, where=f"{self.where} {COS_MODELS}/{name}"))
        for name in self._list(""):
            if not name.startswith("FATEFlow/"):
                entry = parse_storage_key(name, f"{self.where} {name}")
                if entry:
                    out.append(entry)
        return sorted(out, key=lambda e: e.sort_key)

    @staticmethod
    def key(entry: Entry) -> str:
        if entry.layout == LAYOUT_2:
            return entry.storage_key
        if entry.kind == COMPONENT:
            return f"{COS_COMPONENTS}/{entry.party_model_id}/{entry.model_version}/{entry.component}.zip"
        return f"{COS_MODELS}/{entry.party_model_id}/{entry.model_version}.zip"

    def _size(self, key: str) -> int | None:
        from ..remotes.blobs import BlobMissing
        try:
            with self.blobs._errors():
                head = self.blobs.client.head_object(Bucket=self.blobs.bucket, Key=key)
        except BlobMissing:
            return None
        except RemoteError as exc:
            if "404" in str(exc) or "NoSuch" in str(exc):
                return None
            raise
        length = next((v for k, v in head.items() if k.lower() == "content-length"), None)
        return int(length) if length is not None and str(length).isdigit() else None

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        from ..remotes.blobs import BlobMissing
        limit = max_bytes or size_limit()
        key = self.key(entry)
        entry = Entry(entry.layout, entry.party_model_id, entry.model_version, entry.kind, entry.component,
                      entry.output_key, f"{self.where} {key}")
        size = self._size(key)
        if size is None:
            raise NotFound(f"{entry}: no such object")
        if size > limit:
            raise too_big(entry, size, limit)
        try:
            data, _ = self.blobs.get(key)
        except BlobMissing:
            raise NotFound(f"{entry}: no such object") from None
        if len(data) > limit:
            raise too_big(entry, len(data), limit)
        sha1 = None
        if entry.kind == PIPELINE and entry.layout in (LAYOUT_1_8, LAYOUT_1_X) and self._size(key + ".sha1") is not None:
            side, _ = self.blobs.get(key + ".sha1")
            sha1 = side[:64].decode("ascii", "replace").strip().lower()
            if not re.fullmatch(r"[0-9a-f]{40}", sha1) or len(side.strip()) != 40:
                raise Corrupt(f"{entry}: its side object {key}.sha1 does not hold a SHA-1")
        return Archive(entry, check_archive(data, entry), recorded_sha1=sha1)

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        if layout is None:
            layout = LAYOUT_2 if self.location.generation == 2 else LAYOUT_1_9
        self._checked_write(party_model_id, model_version, data, component, output_key, layout)
        entry = Entry(layout, party_model_id, model_version, COMPONENT if component else PIPELINE, component, output_key)
        key = self.key(entry)
        entry = Entry(layout, party_model_id, model_version, entry.kind, component, output_key, f"{self.where} {key}")
        if force:
            self.blobs.put(key, bytes(data))
        elif self.blobs.put_if_absent(key, bytes(data)) is None:
            raise AlreadyExists(f"{entry}: already in the store; replace it with force")
        return entry
