"""``redis://host:port/db?prefix=casreg:&timeout=30`` — objects as keys, refs in one hash.

Existence checks and writes are pipelined (one round trip per batch); the ref compare-and-swap is a
Lua script, so it is atomic on the server.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Iterator

from ..errors import RemoteError, RemoteRefused, RemoteUnreachable
from .base import Backend, batched
from .config import check_server_url
from .registry import Scheme, register

PIPE_BYTES = 16 << 20
CAS_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


class RedisBackend(Backend):
    def __init__(self, url: str, secrets: dict):
        super().__init__(url)
        u = self.u
        import redis
        self._redis = redis
        self.prefix = u.query.get("prefix", "casreg:").encode()
        self.where = f"redis at {u.host}:{u.port or 6379}/{u.database}"
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        self.r = redis.Redis(host=u.host, port=u.port or 6379, db=int(u.database),
                             password=secrets.get("password") or u.password, socket_connect_timeout=u.timeout,
                             socket_timeout=u.timeout, retry=Retry(NoBackoff(), 0))  # Retrying decides
        with self._errors():
            self.r.ping()
            self.traffic.requests += 1
        self._cas = self.r.register_script(CAS_SCRIPT)

    @contextlib.contextmanager
    def _errors(self):
        r = self._redis
        try:
            yield
        except r.exceptions.AuthenticationError:
            raise RemoteRefused(f"{self.where}: authentication failed (check CASREG_REMOTE_<NAME>_PASSWORD)") from None
        except r.exceptions.ReadOnlyError:
            raise RemoteRefused(f"{self.where}: the server is read-only") from None
        except r.exceptions.ConnectionError as exc:
            raise RemoteUnreachable(f"cannot reach {self.where}: {str(exc).splitlines()[0]}") from None
        except r.exceptions.TimeoutError:
            raise RemoteUnreachable(f"{self.where}: no answer within {self.u.timeout:g} s (URL key timeout=)") from None
        except r.exceptions.ResponseError as exc:
            text = str(exc).split("caused error:", 1)[-1].strip()  # drop the (binary) command of a pipeline
            if text.startswith("OOM") or "maxmemory" in text:
                raise RemoteRefused(f"{self.where}: the server is full (maxmemory reached)") from None
            if "NOAUTH" in text or "WRONGPASS" in text:
                raise RemoteRefused(f"{self.where}: authentication failed") from None
            raise RemoteError(f"{self.where}: {text}") from None
        except r.exceptions.RedisError as exc:  # a reply that is not Redis's protocol, and the rest
            raise RemoteError(f"{self.where}: unexpected reply, is it a Redis server? ({str(exc)[:100]})") from None

    def _key(self, oid: bytes) -> bytes:
        return self.prefix + b"o:" + oid

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        with self._errors():
            pipe = self.r.pipeline(transaction=False)
            for oid in ids:
                pipe.exists(self._key(oid))
            found = pipe.execute()
        self.traffic.requests += 1
        return {oid for oid, n in zip(ids, found) if n}

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        size, pipe = 0, None
        with self._errors():
            for oid, value in items:
                if pipe is None:
                    pipe = self.r.pipeline(transaction=False)
                pipe.set(self._key(oid), value, nx=True)
                size += len(value)
                if size >= PIPE_BYTES:
                    pipe.execute()
                    self.traffic.requests += 1
                    size, pipe = 0, None
            if pipe is not None:
                pipe.execute()
                self.traffic.requests += 1

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        for batch in batched(ids, 64):
            with self._errors():
                values = self.r.mget([self._key(oid) for oid in batch])
            self.traffic.requests += 1
            for oid, value in zip(batch, values):
                if value is None:
                    raise RemoteError(f"{self.where} lacks object {oid.hex()}")
                yield oid, value

    def refs(self) -> dict[str, bytes]:
        with self._errors():
            raw = self.r.hgetall(self.prefix + b"refs")
        self.traffic.requests += 1
        return self._accept_refs(raw.items())

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        with self._errors():
            done = self._cas(keys=[self.prefix + b"refs"], args=[name.encode(), old or b"", new or b""])
        self.traffic.requests += 1
        return bool(done)

    def close(self) -> None:
        self.r.close()


def _check_url(out, netloc: str, path: str, bad):
    out = check_server_url(out, netloc, path, bad)
    if not (out.database or "0").isdigit():
        raise bad("the path must be a db number: redis://host:port/0")
    return replace(out, database=out.database or "0")


register(Scheme("redis", lambda url, secrets, create=False, cache_dir=None: RedisBackend(url, secrets),
                query_keys=("prefix", "timeout"), check_url=_check_url, sdk="redis", extra="redis",
                secret_fields=("password",)))
