"""``cos://<bucket>-<appid>?region=ap-guangzhou&prefix=casreg`` — Tencent COS (official SDK).

Optional query keys: ``timeout`` (seconds, per request) and, for private deployments,
``endpoint``, ``ip``, ``port``, ``scheme``.

Layout under the prefix:
- ``packs/<id>``: many objects concatenated (one pack per ``put_many``: tens of MiB), so a push
  is a few large PUTs, never one request per chunk;
- ``index/<id>``: the pack's table of ``(object id, offset, length)``, written after its pack; an
  object exists for casreg once its index exists (a pack without index is debris of a killed push);
- ``refs/<name>:<seq>``: an append-only log of ref updates (JSON ``{"old", "new"}``), each written
  create-only (``If-None-Match: *`` and COS's ``x-cos-forbid-overwrite``): the writer of seq n+1
  wins, a racer gets PreconditionFailed. A ref's value is its entry with the highest seq.

Reads fetch only the byte ranges they need (adjacent ranges coalesced).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import struct
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Iterator

import blake3

from ..errors import Corrupt, RemoteError, RemoteRefused, RemoteUnreachable
from .base import Backend, remote_ref
from .registry import Scheme, register

_REC = struct.Struct("<32sQI")
INDEX_MAGIC = b"casreg-packindex-1\n"
SEQ_WIDTH = 16
RANGE_GAP = 1 << 20
CREATE_ONLY = {"IfNoneMatch": "*", "Metadata": {"x-cos-forbid-overwrite": "true"}}


class COSBackend(Backend):
    def __init__(self, url: str, secrets: dict, cache_dir: str | None = None):
        super().__init__(url)
        u = self.u
        self.cache_dir = cache_dir
        from qcloud_cos import CosConfig, CosS3Client
        logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)  # failures become one RemoteError line
        from qcloud_cos.cos_exception import CosClientError, CosServiceError
        self._client_error, self._service_error = CosClientError, CosServiceError
        q = u.query
        self.bucket = u.host
        self.prefix = q.get("prefix", "casreg").strip("/")
        secret_id = secrets.get("secret_id") or os.environ.get("COS_SECRET_ID")
        secret_key = secrets.get("secret_key") or os.environ.get("COS_SECRET_KEY")
        if not (secret_id and secret_key):
            raise RemoteError("COS needs a SecretId and SecretKey: set CASREG_REMOTE_<NAME>_SECRET_ID and "
                              "_SECRET_KEY (or COS_SECRET_ID / COS_SECRET_KEY), or use --fate-config")
        options = {"Region": q["region"], "Scheme": q.get("scheme", "https"), "Timeout": u.timeout,
                   "SecretId": secret_id, "SecretKey": secret_key}
        if q.get("endpoint"):
            options["Endpoint"] = q["endpoint"]
        if q.get("ip"):
            options["IP"] = q["ip"]
            options["Port"] = int(q.get("port", 80))
        self.where = f"COS bucket {self.bucket}"
        self._index: dict[bytes, tuple[str, int, int]] | None = None
        self._packs_loaded: set[str] = set()
        with self._errors():
            self.client = CosS3Client(CosConfig(**options), retry=0)  # Retrying decides
            self.client.head_bucket(Bucket=self.bucket)
        self.traffic.requests += 1

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except self._service_error as exc:
            code = exc.get_error_code()
            if code in ("NoSuchBucket", "NoSuchResource") and exc.get_status_code() == 404:
                raise RemoteError(f"{self.where} does not exist (or has no such object)") from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise RemoteRefused(f"{self.where}: access denied ({code}); check the SecretId/SecretKey") from None
            raise RemoteError(f"{self.where}: {code}: {exc.get_error_msg()}") from None
        except self._client_error as exc:
            raise RemoteUnreachable(f"cannot reach {self.where}: {str(exc).splitlines()[0][:200]}") from None
        except (SyntaxError, ValueError, KeyError, TypeError, AttributeError) as exc:  # the SDK parsing a non-COS reply
            raise RemoteError(f"{self.where}: unexpected reply, is it a COS server? ({type(exc).__name__})") from None

    def _key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts)) if self.prefix else "/".join(parts)

    def _list(self, folder: str) -> dict[str, str]:
        """Name under ``folder`` -> ETag ("" if the server gives none) of every object there."""
        keys: dict[str, str] = {}
        marker = ""
        base = self._key(folder) + "/"
        while True:
            with self._errors():
                resp = self.client.list_objects(Bucket=self.bucket, Prefix=base, Marker=marker, MaxKeys=1000)
            self.traffic.requests += 1
            contents = resp.get("Contents", [])
            keys.update((c["Key"][len(base):], _etag(c)) for c in contents)
            if resp.get("IsTruncated") not in ("true", True) or not contents:
                return keys
            marker = resp.get("NextMarker") or contents[-1]["Key"]

    def _get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        return self._fetch(key, byte_range)[0]

    def _fetch(self, key: str, byte_range: tuple[int, int] | None = None) -> tuple[bytes, str]:
        """The object's bytes (or a range of them) and its ETag."""
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"} if byte_range else {}
        with self._errors():
            resp = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            body = resp["Body"].get_raw_stream().read()
        self.traffic.requests += 1
        return body, _etag(resp)

    def _put(self, key: str, body: bytes, create_only: bool = False) -> str | None:
        """Write ``body``; its ETag ("" if the server gives none), or None when ``create_only``
        and the key exists."""
        try:
            with self._errors():
                resp = self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                              **(CREATE_ONLY if create_only else {}))
        except RemoteError as exc:
            if create_only and "PreconditionFailed" in str(exc):
                return None
            raise
        finally:
            self.traffic.requests += 1
        return _etag(resp)

    # -- objects ---------------------------------------------------------------------------------
    def _load_index(self) -> dict[bytes, tuple[str, int, int]]:
        if self._index is None:
            self._index = {}
        new = [(p, etag) for p, etag in self._list("index").items() if p not in self._packs_loaded]
        with ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda p: (p[0], self._get_immutable(self._key("index", p[0]), p[1])), new))
        for pack, body in bodies:
            self._add_index(pack, body)
        return self._index

    def _get_immutable(self, key: str, etag: str) -> bytes:
        """An object written once (pack index, ref log entry), through the local cache when this
        store has read it before. The cache is keyed by name *and* the ETag the listing gave: a
        key rewritten since (the prefix emptied, another site pushing anew) is read again."""
        cached = self._cache_path(key, etag)
        if cached and os.path.exists(cached):
            with open(cached, "rb") as f:
                return f.read()
        body, got = self._fetch(key)
        self._cache_put(key, got, body)
        return body

    def _cache_path(self, key: str, etag: str) -> str | None:
        if not (self.cache_dir and etag):  # no ETag, nothing to check a cached copy against
            return None
        return os.path.join(self.cache_dir, blake3.blake3(f"{key}\n{etag}".encode()).hexdigest())

    def _cache_put(self, key: str, etag: str, body: bytes) -> None:
        path = self._cache_path(key, etag)
        if not path:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(body)
        os.replace(path + ".tmp", path)

    def _add_index(self, pack: str, body: bytes) -> None:
        assert self._index is not None  # _load_index made it
        if not body.startswith(INDEX_MAGIC) or (len(body) - len(INDEX_MAGIC)) % _REC.size:
            raise RemoteError(f"{self.where}: pack index {pack} is damaged")
        for oid, offset, length in _REC.iter_unpack(body[len(INDEX_MAGIC):]):
            self._index.setdefault(oid, (pack, offset, length))
        self._packs_loaded.add(pack)

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        index = self._index if self._index is not None else self._load_index()
        return {oid for oid in ids if oid in index}

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        index = self._index if self._index is not None else self._load_index()
        items = [(oid, v) for oid, v in dict(items).items() if oid not in index]
        if not items:
            return
        body = b"".join(v for _, v in items)
        records, offset = [], 0
        for oid, value in items:
            records.append(_REC.pack(oid, offset, len(value)))
            offset += len(value)
        pack = blake3.blake3(body).hexdigest()
        self._put(self._key("packs", pack), body)
        table = INDEX_MAGIC + b"".join(records)
        etag = self._put(self._key("index", pack), table)  # after the pack: only now do its objects exist
        assert etag is not None  # only a create_only put gives None
        self._add_index(pack, table)
        self._cache_put(self._key("index", pack), etag, table)

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        index = self._index if self._index is not None else self._load_index()
        by_pack: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
        for oid in ids:
            if oid not in index:
                self._load_index()  # someone may have pushed since we looked
                if oid not in index:
                    raise RemoteError(f"{self.where} lacks object {oid.hex()}")
            pack, offset, length = index[oid]
            by_pack[pack].append((offset, length, oid))
        spans = []
        for pack, entries in by_pack.items():
            entries.sort()
            start, end, members = entries[0][0], entries[0][0] + entries[0][1], [entries[0]]
            for entry in entries[1:]:
                if entry[0] - end <= RANGE_GAP:
                    end = max(end, entry[0] + entry[1])
                    members.append(entry)
                else:
                    spans.append((pack, start, end, members))
                    start, end, members = entry[0], entry[0] + entry[1], [entry]
            spans.append((pack, start, end, members))
        with ThreadPoolExecutor(4) as pool:
            fetched = pool.map(lambda s: (s, self._get(self._key("packs", s[0]), (s[1], s[2]))), spans)
            for (pack, start, end, members), body in fetched:
                if len(body) != end - start:
                    raise RemoteError(f"{self.where}: pack {pack} is shorter than its index says")
                for offset, length, oid in members:
                    yield oid, body[offset - start:offset - start + length]

    # -- refs ------------------------------------------------------------------------------------
    def _ref_heads(self) -> dict[str, tuple[int, str]]:
        """Ref name -> (highest seq in its log, that entry's ETag)."""
        heads: dict[str, tuple[int, str]] = {}
        for key, etag in self._list("refs").items():
            name, _, seq = key.rpartition(":")
            if name and seq.isdigit() and int(seq) > heads.get(name, (-1, ""))[0]:
                heads[name] = (int(seq), etag)
        return heads

    def _target(self, name: str, seq: int, etag: str):
        """The ``new`` of a ref log entry, as stored (None: the ref was deleted); Corrupt if the
        entry is not the JSON object casreg writes."""
        try:
            entry = json.loads(self._get_immutable(self._key("refs", f"{name}:{seq:0{SEQ_WIDTH}d}"), etag))
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "new" not in entry:
            raise Corrupt(f"{self.where}: ref log entry {name}:{seq} is damaged")
        return entry["new"]

    def _target_or_error(self, name: str, head: tuple[int, str]):
        try:
            return self._target(name, *head)
        except Corrupt as exc:
            return exc

    def refs(self) -> dict[str, bytes]:
        heads = self._ref_heads()
        with ThreadPoolExecutor(8) as pool:
            targets = list(pool.map(lambda item: (item[0], self._target_or_error(*item)), heads.items()))
        return self._accept_refs((name, t) for name, t in targets if t is not None)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        seq, etag = self._ref_heads().get(name, (-1, ""))
        current = self._target(name, seq, etag) if seq >= 0 else None
        if current is not None:
            current = remote_ref(name, current)[1]  # a damaged head refuses the update, in one line
        if current != old:
            return False
        entry = json.dumps({"old": old.hex() if old else None, "new": new.hex() if new else None}).encode()
        return self._put(self._key("refs", f"{name}:{seq + 1:0{SEQ_WIDTH}d}"), entry, create_only=True) is not None


def _etag(headers: dict) -> str:
    """The ETag of a listing entry or a response, without its quotes ("" if absent)."""
    return next((str(v) for k, v in headers.items() if k.lower() == "etag"), "").strip('"')


def _check_url(out, netloc: str, path: str, bad):
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", netloc) or path.strip("/"):
        raise bad("use cos://<bucket>-<appid>?region=<region>")
    query = out.query
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]", query.get("region", "")):
        raise bad("needs ?region=<region> (letters, digits, '-', '.')")  # the SDK's rule
    if query.get("scheme", "https") not in ("http", "https"):
        raise bad("scheme must be http or https")
    if "port" in query and not (query["port"].isdigit() and 0 < int(query["port"]) < 65536):
        raise bad("port must be a number from 1 to 65535")
    return replace(out, host=netloc)


register(Scheme("cos", lambda url, secrets, create=False, cache_dir=None: COSBackend(url, secrets, cache_dir=cache_dir),
                query_keys=("region", "prefix", "endpoint", "ip", "port", "scheme", "timeout"),
                check_url=_check_url, sdk="qcloud_cos", extra="cos", secret_fields=("secret_id", "secret_key")))
