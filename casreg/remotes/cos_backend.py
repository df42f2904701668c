"""``cos://<bucket>-<appid>?region=ap-guangzhou&prefix=casreg`` — Tencent COS (official SDK).

Optional query keys: ``timeout`` (seconds, per request) and, for private deployments,
``endpoint``, ``ip``, ``port``, ``scheme``.

The layout (packs, pack indexes, the create-only ref log) is ``packs.py``'s; this module is the
blob store under it. Create-only writes send both ``If-None-Match: *`` and COS's own
``x-cos-forbid-overwrite: true``; a racer gets ``PreconditionFailed``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import replace

from ..errors import RemoteError, RemoteRefused, RemoteUnreachable
from .blobs import BlobInfo, BlobMissing, BlobStore, listed_time, strip_etag
from .packs import _REC, INDEX_MAGIC, SEQ_WIDTH, PackBackend  # noqa: F401  (benchmarks/stress.py reads _REC)
from .registry import Scheme, register

CREATE_ONLY = {"IfNoneMatch": "*", "Metadata": {"x-cos-forbid-overwrite": "true"}}


class COSBlobs(BlobStore):
    def __init__(self, u, secrets: dict, traffic):
        from qcloud_cos import CosConfig, CosS3Client
        logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)  # failures become one RemoteError line
        from qcloud_cos.cos_exception import CosClientError, CosServiceError
        self._client_error, self._service_error = CosClientError, CosServiceError
        self.traffic = traffic
        q = u.query
        self.bucket = u.host
        self.prefix = q.get("prefix", "casreg").strip("/")
        self.where = f"COS bucket {self.bucket}"
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
        with self._errors():
            self.client = CosS3Client(CosConfig(**options), retry=0)  # Retrying decides
            self.traffic.requests += 1
            self.client.head_bucket(Bucket=self.bucket)

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except self._service_error as exc:
            code, status = exc.get_error_code(), exc.get_status_code()
            if code in ("NoSuchBucket", "NoSuchResource", "NoSuchKey") and status == 404:
                raise BlobMissing(f"{self.where} does not exist (or has no such object)") from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise RemoteRefused(f"{self.where}: access denied ({code}); check the SecretId/SecretKey") from None
            if status in (502, 503, 504):
                raise RemoteUnreachable(f"{self.where}: {code} (HTTP {status}); try again later") from None
            raise RemoteError(f"{self.where}: {code}: {exc.get_error_msg()}") from None
        except self._client_error as exc:
            raise RemoteUnreachable(f"cannot reach {self.where}: {str(exc).splitlines()[0][:200]}") from None
        except (SyntaxError, ValueError, KeyError, TypeError, AttributeError) as exc:  # the SDK parsing a non-COS reply
            raise RemoteError(f"{self.where}: unexpected reply, is it a COS server? ({type(exc).__name__})") from None

    def list_info(self, folder: str, starting: str = "", after: str = "") -> dict[str, BlobInfo]:
        keys: dict[str, BlobInfo] = {}
        base = self.full_key(folder) + "/"
        marker = base + after if after else ""
        prefix = base + starting
        while True:
            self.traffic.requests += 1
            with self._errors():
                resp = self.client.list_objects(Bucket=self.bucket, Prefix=prefix, Marker=marker, MaxKeys=self.page_keys)
                contents = resp.get("Contents", [])
                keys.update((c["Key"][len(base):], BlobInfo(_etag(c), int(c.get("Size", 0)),
                                                            listed_time(c.get("LastModified"))))
                            for c in contents)
            if resp.get("IsTruncated") not in ("true", True) or not contents:
                return keys
            marker = resp.get("NextMarker") or contents[-1]["Key"]

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> tuple[bytes, str]:
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"} if byte_range else {}
        self.traffic.requests += 1
        with self._errors():
            resp = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key), **extra)
            body = resp["Body"].get_raw_stream().read()
        return body, _etag(resp)

    def head(self, key: str) -> str | None:
        self.traffic.requests += 1
        try:
            with self._errors():
                return _etag(self.client.head_object(Bucket=self.bucket, Key=self.full_key(key)))
        except BlobMissing:
            return None
        except RemoteError as exc:
            if "404" in str(exc) or "NoSuch" in str(exc):  # a HEAD's 404 has no body, so no code
                return None
            raise

    def put(self, key: str, body: bytes) -> str:
        self.traffic.requests += 1
        with self._errors():
            return _etag(self.client.put_object(Bucket=self.bucket, Key=self.full_key(key), Body=body))

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        self.traffic.requests += 1
        try:
            with self._errors():
                return _etag(self.client.put_object(Bucket=self.bucket, Key=self.full_key(key), Body=body,
                                                    **CREATE_ONLY))
        except RemoteError as exc:
            if "PreconditionFailed" in str(exc):
                return None
            raise

    def delete(self, key: str) -> None:
        self.traffic.requests += 1
        with self._errors():
            self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))


class COSBackend(PackBackend):
    def __init__(self, url: str, secrets: dict, cache_dir: str | None = None):
        super().__init__(url, cache_dir)
        self.blobs = COSBlobs(self.u, secrets, self.traffic)
        self.client, self.bucket, self.prefix = self.blobs.client, self.blobs.bucket, self.blobs.prefix


def _etag(headers: dict) -> str:
    """The ETag of a listing entry or a response, without its quotes ("" if absent)."""
    return strip_etag(next((v for k, v in headers.items() if k.lower() == "etag"), ""))


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
