"""FATE-Flow 1.7/1.8's Redis model store: one key per version, ``SET key zip NX EX ex``."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    RemoteError,
    RemoteRefused,
    RemoteUnreachable,
)
from .base import FateStore
from .entries import ENV, LAYOUT_1_8, LAYOUT_1_X, PIPELINE, REDIS_PREFIX, Archive, Entry, check_archive, size_limit, too_big
from .where import Location


# Redis ------------------------------------------------------------------------------------------------
class RedisStore(FateStore):
    def __init__(self, location: Location):
        super().__init__(location)
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        self._redis = redis
        loc = location
        self.where = f"redis {loc.host}:{loc.port or 6379}/{loc.db}"
        self.r = redis.Redis(host=loc.host, port=loc.port or 6379, db=loc.db, password=self.secrets.get("password"),
                             socket_connect_timeout=loc.timeout, socket_timeout=loc.timeout, retry=Retry(NoBackoff(), 0))
        with self._errors():
            self.r.ping()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        e = self._redis.exceptions
        try:
            yield
        except e.AuthenticationError:
            raise RemoteRefused(f"{self.where}: authentication failed (FATE's config or {ENV['password']})") from None
        except (e.ConnectionError, e.TimeoutError) as exc:
            raise RemoteUnreachable(f"cannot reach {self.where}: {str(exc).splitlines()[0][:200]}") from None
        except e.ResponseError as exc:
            text = str(exc)
            kind = RemoteRefused if ("NOAUTH" in text or "WRONGPASS" in text or text.startswith("OOM")) else RemoteError
            raise kind(f"{self.where}: {text[:200]}") from None
        except e.RedisError as exc:
            raise RemoteError(f"{self.where}: unexpected reply, is it a Redis server? ({str(exc)[:100]})") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.r.close()

    @staticmethod
    def key(party_model_id: str, model_version: str) -> str:
        return f"{REDIS_PREFIX}{party_model_id}:{model_version}"

    def entries(self) -> list[Entry]:
        out = []
        with self._errors():
            for raw in self.r.scan_iter(match=REDIS_PREFIX + "*", count=1000):
                try:
                    key = raw.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                pmid, _, version = key[len(REDIS_PREFIX):].rpartition(":")
                if pmid and version:
                    out.append(Entry(LAYOUT_1_8, pmid, version, PIPELINE, where=f"{self.where} key {key}"))
        return sorted(out, key=lambda e: e.sort_key)

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        limit = max_bytes or size_limit()
        if entry.kind != PIPELINE or entry.layout not in (LAYOUT_1_8, LAYOUT_1_X):
            raise NotFound(f"{entry}: FATE keeps only 1.7/1.8 pipeline archives in Redis")
        key = self.key(entry.party_model_id, entry.model_version)
        entry = Entry(LAYOUT_1_8, entry.party_model_id, entry.model_version, PIPELINE, where=f"{self.where} key {key}")
        with self._errors():
            size = int(self.r.strlen(key))     # a key that is not a string: WRONGTYPE, a RemoteError
            if size > limit:
                raise too_big(entry, size, limit)
            data = self.r.get(key)
        if data is None:
            raise NotFound(f"{entry}: no such key")
        if len(data) > limit:  # grown since STRLEN
            raise too_big(entry, len(data), limit)
        return Archive(entry, check_archive(bytes(data), entry))

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        if component is not None or output_key is not None or layout not in (None, LAYOUT_1_8):
            raise InvalidInput("FATE keeps only 1.7/1.8 pipeline archives in Redis (1.9 removed the Redis store)")
        self._checked_write(party_model_id, model_version, data, None, None, LAYOUT_1_8)
        key = self.key(party_model_id, model_version)
        entry = Entry(LAYOUT_1_8, party_model_id, model_version, PIPELINE, where=f"{self.where} key {key}")
        with self._errors():
            done = self.r.set(key, bytes(data), ex=self.location.ex, nx=not force)  # FATE's SET key zip [NX] [EX ex]
        if not done:
            raise AlreadyExists(f"{entry}: already in the store; replace it with force")
        return entry
