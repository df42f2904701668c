"""``redis://host:port/db?prefix=casreg:&timeout=30`` — objects as keys, refs in one hash.

Existence checks and writes are pipelined (one round trip per batch); the ref compare-and-swap is a
Lua script, so it is atomic on the server.

For gc (``gc.py``): two sorted sets beside the objects, ``<prefix>gc:up`` (id -> upload time) and
``<prefix>gc:cond`` (id -> condemnation time), both by the server's clock (``TIME``). A put, a
condemnation and a delete are each one Lua script, so each is atomic against the others.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import replace
from typing import Collection, Iterator

from ..errors import RemoteError, RemoteRefused, RemoteUnreachable
from .base import Backend, StoredObject, batched
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

# KEYS: object, gc:up, gc:cond; ARGV: id, value. A put clears a condemnation, then stamps the upload.
PUT_SCRIPT = """
redis.call('ZREM', KEYS[3], ARGV[1])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], string.format('%d.%06d', t[1], t[2]), ARGV[1])
redis.call('SET', KEYS[1], ARGV[2], 'NX')
return 1
"""
# KEYS: object, gc:up, gc:cond; ARGV: id, uploaded before
CONDEMN_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
local up = redis.call('ZSCORE', KEYS[2], ARGV[1])
if up and tonumber(up) > tonumber(ARGV[2]) then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[3], string.format('%d.%06d', t[1], t[2]), ARGV[1])
return 1
"""
# KEYS: object, gc:up, gc:cond; ARGV: id, cutoff. The object's size if deleted, else -1.
DELETE_SCRIPT = """
local c = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not c or tonumber(c) > tonumber(ARGV[2]) then return -1 end
local n = redis.call('STRLEN', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return n
"""
LIST_BATCH = 1000


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
        self._put, self._condemn = self.r.register_script(PUT_SCRIPT), self.r.register_script(CONDEMN_SCRIPT)
        self._delete = self.r.register_script(DELETE_SCRIPT)
        self.k_up, self.k_cond = self.prefix + b"gc:up", self.prefix + b"gc:cond"

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
                pipe.zscore(self.k_cond, oid)  # a condemned object is not offered to a push
            found = pipe.execute()
        self.traffic.requests += 1
        return {oid for oid, n, cond in zip(ids, found[::2], found[1::2]) if n and cond is None}

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        size, pipe = 0, None
        with self._errors():
            for oid, value in items:
                if pipe is None:
                    pipe = self.r.pipeline(transaction=False)
                self._put(keys=[self._key(oid), self.k_up, self.k_cond], args=[oid, value], client=pipe)
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

    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        if names is None:
            with self._errors():
                raw = self.r.hgetall(self.prefix + b"refs")
            self.traffic.requests += 1
            return self._accept_refs(raw.items())
        pairs = []
        for batch in batched([n.encode() for n in dict.fromkeys(names)], LIST_BATCH):
            with self._errors():
                values = self.r.hmget(self.prefix + b"refs", batch)
            self.traffic.requests += 1
            pairs += [(n, v) for n, v in zip(batch, values) if v is not None]
        return self._accept_refs(pairs)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        with self._errors():
            done = self._cas(keys=[self.prefix + b"refs"], args=[name.encode(), old or b"", new or b""])
        self.traffic.requests += 1
        return bool(done)

    # -- gc ----------------------------------------------------------------------------------------
    def server_time(self) -> float:
        with self._errors():
            seconds, micros = self.r.time()
        self.traffic.requests += 1
        return seconds + micros / 1e6

    def list_objects(self) -> Iterator[StoredObject]:
        start = len(self.prefix) + 2
        pattern = re.sub(rb"([*?\[\]\\])", rb"\\\1", self.prefix) + b"o:*"
        cursor = 0
        while True:
            with self._errors():
                cursor, keys = self.r.scan(cursor, match=pattern, count=LIST_BATCH)
                ids = [k[start:] for k in keys]
                if ids:
                    pipe = self.r.pipeline(transaction=False)
                    for key in keys:
                        pipe.strlen(key)
                    pipe.zmscore(self.k_up, ids)
                    pipe.zmscore(self.k_cond, ids)
                    *sizes, ups, conds = pipe.execute()
            self.traffic.requests += 2 if ids else 1
            for oid, size, up, cond in (zip(ids, sizes, ups, conds) if ids else ()):
                if size:
                    yield StoredObject(oid, size, float(up or 0.0), None if cond is None else float(cond))
            if cursor == 0:
                return

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        before = repr(uploaded_before) if math.isfinite(uploaded_before) else "inf"
        return sum(self._each(self._condemn, items, lambda o: ([self._key(o.id), self.k_up, self.k_cond],
                                                                [o.id, before])))

    def absolve(self, items: list[StoredObject]) -> None:
        for batch in batched(items, LIST_BATCH):
            with self._errors():
                self.r.zrem(self.k_cond, *[o.id for o in batch])
            self.traffic.requests += 1

    def delete_condemned(self, items: list[StoredObject], cutoff: float, *,
                         repack_below: float = 0.5,
                         debris_before: float | None = None) -> tuple[int, int]:
        sizes = [n for n in self._each(self._delete, items, lambda o: (
            [self._key(o.id), self.k_up, self.k_cond], [o.id, repr(cutoff)])) if n >= 0]
        return len(sizes), sum(sizes)

    def _each(self, script, items: list[StoredObject], keys_args) -> list[int]:
        """``script`` run once per item, pipelined: its replies."""
        out: list[int] = []
        for batch in batched(items, LIST_BATCH):
            with self._errors():
                pipe = self.r.pipeline(transaction=False)
                for item in batch:
                    keys, args = keys_args(item)
                    script(keys=keys, args=args, client=pipe)
                out += [int(n) for n in pipe.execute()]
            self.traffic.requests += 1
        return out

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
