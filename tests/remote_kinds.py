"""One test double per remote kind? No: one handle per *real* remote, with the server-side
tampering the tests need (corrupt or delete a stored object) done through the server's own API."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from tests.helpers import damage, flip_last_byte
from tests.servers import MYSQL_URL, REDIS_URL, require_tcp


class RemoteHandle:
    kind = ""

    def __init__(self, url: str):
        self.url = url

    def backend(self):
        from casreg.remotes import open_backend
        return open_backend(self.url, create=True) if self.kind == "file" else open_backend(self.url)

    def corrupt(self, oid: bytes) -> None:
        raise NotImplementedError

    def delete(self, oid: bytes) -> None:
        raise NotImplementedError

    def plant_bad_ref(self, target: bytes) -> str:
        """Store, the way the backend stores refs, a ref with an invalid name pointing at
        ``target``; returns the name as ``bad_refs`` shows it."""
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class FileRemote(RemoteHandle):
    kind = "file"

    def __init__(self, tmp_path):
        super().__init__(f"file://{tmp_path}/remote-store")
        self.backend().close()  # creates the store

    def _damage(self, oid, edit=None):
        be = self.backend()
        damage(be.repo, oid, edit)
        be.close()

    def corrupt(self, oid):
        self._damage(oid, flip_last_byte)

    def delete(self, oid):
        self._damage(oid)

    def plant_bad_ref(self, target):
        be = self.backend()
        be.repo.db.write(lambda txn: txn.put(b"../../x", target, db=be.repo.refs.refs))
        be.close()
        return "../../x"


class RedisRemote(RemoteHandle):
    kind = "redis"

    def __init__(self):
        parts = urlsplit(REDIS_URL)
        require_tcp(parts.hostname, parts.port or 6379, "Redis")
        self.prefix = f"casreg-test-{uuid.uuid4().hex[:8]}:"
        super().__init__(f"{REDIS_URL}?prefix={self.prefix}")
        import redis
        self.r = redis.Redis.from_url(REDIS_URL)

    def corrupt(self, oid):
        key = self.prefix.encode() + b"o:" + oid
        value = bytearray(self.r.get(key))
        value[-1] ^= 0xFF
        self.r.set(key, bytes(value))

    def delete(self, oid):
        self.r.delete(self.prefix.encode() + b"o:" + oid)

    def plant_bad_ref(self, target):
        self.r.hset(self.prefix.encode() + b"refs", b"../../x", target)
        return "../../x"

    def cleanup(self):
        keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))
        for i in range(0, len(keys), 1000):
            self.r.delete(*keys[i:i + 1000])
        self.r.close()


class MySQLRemote(RemoteHandle):
    kind = "mysql"

    def __init__(self):
        parts = urlsplit(MYSQL_URL)
        require_tcp(parts.hostname, parts.port or 3306, "MariaDB/MySQL")
        self.prefix = f"t{uuid.uuid4().hex[:8]}_"
        super().__init__(f"{MYSQL_URL}?prefix={self.prefix}")
        import pymysql
        self.conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                                    password=parts.password or "", database=parts.path.strip("/"), autocommit=True)

    def corrupt(self, oid):
        with self.conn.cursor() as cur:
            cur.execute(f"UPDATE {self.prefix}objects SET value = CONCAT(value, 'x') WHERE id = %s", (oid,))

    def delete(self, oid):
        with self.conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self.prefix}objects WHERE id = %s", (oid,))

    def plant_bad_ref(self, target):
        with self.conn.cursor() as cur:
            cur.execute(f"INSERT INTO {self.prefix}refs (name, target) VALUES (%s, %s)", (b"../../x", target))
        return "../../x"

    def cleanup(self):
        with self.conn.cursor() as cur:
            for t in ("objects", "refs", "meta"):
                cur.execute(f"DROP TABLE IF EXISTS {self.prefix}{t}")
        self.conn.close()


class PackRemote(RemoteHandle):
    """COS and S3: the pack layout over a bucket, tampered with through the backend's blob store."""

    def _locate(self, oid):
        """(backend, pack key, offset, length) of an object; keys relative to the prefix."""
        be = self.backend()
        be.has_many([oid])
        pack, offset, length = be.location(oid)
        return be, f"packs/{pack}", offset, length

    def corrupt(self, oid):
        be, key, offset, length = self._locate(oid)
        body = bytearray(be.blobs.get(key)[0])
        body[offset + length - 1] ^= 0xFF
        be.blobs.put(key, bytes(body))

    def delete(self, oid):
        """Drop the object by rewriting its pack's index without it."""
        from casreg.remotes.packs import _REC, INDEX_MAGIC
        be, key, _, _ = self._locate(oid)
        index_key = key.replace("packs/", "index/", 1)
        body = be.blobs.get(index_key)[0]
        records = [r for r in _REC.iter_unpack(body[len(INDEX_MAGIC):]) if r[0] != oid]
        be.blobs.put(index_key, INDEX_MAGIC + b"".join(_REC.pack(*r) for r in records))

    def put_raw(self, key: str, body: bytes) -> None:
        """Write ``key`` (relative to the prefix) as it is, overwriting."""
        be = self.backend()
        be.blobs.put(key, body)
        be.close()

    def plant_bad_ref(self, target):
        # SeaweedFS refuses keys with '../'; this name is as invalid for casreg
        self.put_raw("refs/models/a..b:0000000000000000", b'{"old": null, "new": "%s"}' % target.hex().encode())
        return "models/a..b"

    def empty(self) -> None:
        """Delete everything under the prefix."""
        be = self.backend()
        for folder in ("packs", "index", "merged", "refs", "refsnap"):
            for name in be.blobs.list(folder):
                be.blobs.delete(f"{folder}/{name}")
        be.close()


class COSRemote(PackRemote):
    kind = "cos"

    def __init__(self, seaweed):
        self.seaweed = seaweed
        self.bucket = seaweed.bucket
        super().__init__(seaweed.url(self.bucket, prefix=f"t{uuid.uuid4().hex[:12]}"))


class S3Remote(PackRemote):
    kind = "s3"

    def __init__(self, seaweed):
        self.seaweed = seaweed
        self.bucket = seaweed.bucket
        super().__init__(seaweed.s3_url(self.bucket, f"t{uuid.uuid4().hex[:12]}"))


KINDS = ["file", "redis", "mysql", "cos", "s3"]


def open_remote(kind: str, request, tmp_path) -> RemoteHandle:
    """The handle of a fresh remote of ``kind`` (``request``: pytest's, for the seaweed fixture)."""
    if kind == "file":
        return FileRemote(tmp_path)
    if kind == "redis":
        return RedisRemote()
    if kind == "mysql":
        return MySQLRemote()
    if kind == "cos":
        return COSRemote(request.getfixturevalue("seaweed"))
    if kind == "s3":
        return S3Remote(request.getfixturevalue("seaweed"))
    raise ValueError(f"unknown remote kind {kind}")
