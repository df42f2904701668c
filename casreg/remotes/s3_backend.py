"""``s3://<bucket>/<prefix>?region=us-east-1&endpoint=http://127.0.0.1:9000`` — Amazon S3 or any
S3-compatible store (SeaweedFS, MinIO, Ceph RGW, ...) through boto3.

The path is the prefix everything goes under (default ``casreg``). Query keys: ``region``
(default ``us-east-1``), ``endpoint`` (an ``http(s)://host[:port]`` for a
store that is not AWS; path-style addressing is used then), ``timeout`` (seconds, per request).
Credentials: ``CASREG_REMOTE_<NAME>_ACCESS_KEY_ID`` / ``_SECRET_ACCESS_KEY``, else
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``). boto3's other
sources (``~/.aws``, instance metadata) are not consulted: a remote works the same on every host.

The layout is ``packs.py``'s, the same as COS's. The ref log's compare-and-swap rests on create-only
writes: ``PutObject`` with ``If-None-Match: *``, which AWS S3 honours since August 2024 (a racer
gets 412 PreconditionFailed). SeaweedFS honours it too (checked, racing writers included, by
``tests/test_backend_contract.py``). A store that ignores the header would let two racing pushes
both "win", the later log entry silently replacing the earlier: do not point casreg at such a
store for refs shared by several writers (older MinIO, some gateways); nothing client-side can make
an S3 PUT conditional.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import replace
from urllib.parse import urlsplit

from ..errors import RemoteError, RemoteRefused, RemoteUnreachable
from .blobs import BlobInfo, BlobMissing, BlobStore, listed_time, strip_etag
from .packs import PackBackend
from .registry import Scheme, register

REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem",
           "InvalidToken", "ExpiredToken", "403", "QuotaExceeded", "EntityTooLarge"}
MISSING = {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}
# "try again": throttling, a gateway's hiccup, and AWS's 409 for a conditional write racing another
BUSY = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "ConditionalRequestConflict", "503", "502", "504"}


class S3Blobs(BlobStore):
    def __init__(self, u, secrets: dict, traffic):
        import boto3
        import botocore.config
        import botocore.exceptions
        logging.getLogger("botocore").setLevel(logging.CRITICAL)
        logging.getLogger("boto3").setLevel(logging.CRITICAL)
        self._exc = botocore.exceptions
        self.traffic = traffic
        self.bucket = u.host
        self.prefix = u.path.strip("/")
        self.where = f"S3 bucket {self.bucket}"
        self.timeout = u.timeout
        key_id = secrets.get("access_key_id") or os.environ.get("AWS_ACCESS_KEY_ID")
        secret = secrets.get("secret_access_key") or os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not (key_id and secret):
            raise RemoteError("S3 needs an access key: set CASREG_REMOTE_<NAME>_ACCESS_KEY_ID and "
                              "_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
        endpoint = u.query.get("endpoint")
        config = botocore.config.Config(
            connect_timeout=u.timeout, read_timeout=u.timeout,
            retries={"max_attempts": 1, "mode": "standard"},  # one attempt: Retrying decides
            s3={"addressing_style": "path" if endpoint else "auto"})
        session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                        aws_session_token=secrets.get("session_token") or
                                        os.environ.get("AWS_SESSION_TOKEN"),
                                        region_name=u.query.get("region", "us-east-1"))
        with self._errors():
            self.client = session.client("s3", endpoint_url=endpoint, config=config)
        put = self.client.meta.service_model.operation_model("PutObject").input_shape
        if "IfNoneMatch" not in put.members:  # botocore from before S3's conditional writes (2024)
            from ..errors import CasregError
            raise CasregError("this boto3 cannot send create-only writes (PutObject IfNoneMatch), which s3:// "
                              "refs need: pip install -U 'casreg[s3]'")
        with self._errors():
            self.traffic.requests += 1
            self.client.head_bucket(Bucket=self.bucket)

    @contextlib.contextmanager
    def _errors(self):
        exc_ = self._exc
        try:
            yield
        except exc_.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in MISSING or status == 404:
                raise BlobMissing(f"{self.where} does not exist (or has no such object)") from None
            if code in REFUSED or status == 403:
                raise RemoteRefused(f"{self.where}: access denied ({code}); check the access key") from None
            if code in BUSY or status in (502, 503, 504):
                raise RemoteUnreachable(f"{self.where}: {code} (HTTP {status}); try again later") from None
            message = str(error.get("Message", "")).splitlines()[0][:200] if error.get("Message") else ""
            raise RemoteError(f"{self.where}: {code or status}: {message}") from None
        except exc_.NoCredentialsError:
            raise RemoteRefused(f"{self.where}: no credentials") from None
        except (exc_.ConnectionError, exc_.HTTPClientError) as exc:  # refused, DNS, timeouts, a connection lost
            text = str(exc).splitlines()[0][:200]
            if isinstance(exc, (exc_.ReadTimeoutError, exc_.ConnectTimeoutError)):
                raise RemoteUnreachable(f"{self.where}: no answer within {self.timeout:g} s (URL key timeout=)") from None
            raise RemoteUnreachable(f"cannot reach {self.where}: {text}") from None
        except exc_.BotoCoreError as exc:  # a reply that does not parse as S3's, and the rest
            raise RemoteError(f"{self.where}: unexpected reply, is it an S3 server? "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:100]})") from None

    def list_info(self, folder: str, starting: str = "", after: str = "") -> dict[str, BlobInfo]:
        keys: dict[str, BlobInfo] = {}
        base = self.full_key(folder) + "/"
        prefix = base + starting
        token = None
        while True:
            self.traffic.requests += 1
            with self._errors():
                resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=self.page_keys,
                                                   **({"ContinuationToken": token} if token else {}),
                                                   **({"StartAfter": base + after} if after else {}))
                contents = resp.get("Contents", [])
                keys.update((c["Key"][len(base):], BlobInfo(strip_etag(c.get("ETag")), int(c.get("Size", 0)),
                                                            listed_time(c.get("LastModified"))))
                            for c in contents)
                token = resp.get("NextContinuationToken")
            if not (resp.get("IsTruncated") and token):
                return keys

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> tuple[bytes, str]:
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"} if byte_range else {}
        self.traffic.requests += 1
        with self._errors():
            resp = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key), **extra)
            body = resp["Body"].read()
        return body, strip_etag(resp.get("ETag"))

    def head(self, key: str) -> str | None:
        self.traffic.requests += 1
        try:
            with self._errors():
                return strip_etag(self.client.head_object(Bucket=self.bucket, Key=self.full_key(key)).get("ETag"))
        except BlobMissing:
            return None

    def put(self, key: str, body: bytes) -> str:
        self.traffic.requests += 1
        with self._errors():
            return strip_etag(self.client.put_object(Bucket=self.bucket, Key=self.full_key(key), Body=body).get("ETag"))

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        self.traffic.requests += 1
        try:
            with self._errors():
                resp = self.client.put_object(Bucket=self.bucket, Key=self.full_key(key), Body=body, IfNoneMatch="*")
        except RemoteError as exc:
            if "PreconditionFailed" in str(exc) or "(HTTP 412)" in str(exc):
                return None
            raise
        return strip_etag(resp.get("ETag"))

    def delete(self, key: str) -> None:
        self.traffic.requests += 1
        with self._errors():
            self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class S3Backend(PackBackend):
    def __init__(self, url: str, secrets: dict, cache_dir: str | None = None):
        super().__init__(url, cache_dir)
        self.blobs = S3Blobs(self.u, secrets, self.traffic)
        self.client, self.bucket, self.prefix = self.blobs.client, self.blobs.bucket, self.blobs.prefix


def _check_url(out, netloc: str, path: str, bad):
    # S3's bucket naming rules (no dots: path-style and TLS both dislike them less than users think,
    # but a dotted name is never needed for casreg, and it keeps the check simple).
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", netloc):
        raise bad("use s3://<bucket>/<prefix> (bucket: 3-63 lowercase letters, digits, '-')")
    prefix = path.strip("/")
    if prefix and (not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]+", prefix) or "//" in prefix
                   or any(part in (".", "..") for part in prefix.split("/"))):
        raise bad("the prefix may have letters, digits, '/', and !_.*'()- (no empty, '.' or '..' part)")
    if "region" in out.query and not re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", out.query["region"]):
        raise bad("region must be like us-east-1")
    if "endpoint" in out.query:
        try:
            ep = urlsplit(out.query["endpoint"])
            ep.port  # noqa: B018  (raises for a bad port)
        except ValueError as exc:
            raise bad(f"endpoint: {exc}") from None
        if ep.scheme not in ("http", "https") or not ep.hostname or ep.path.strip("/") or ep.query:
            raise bad("endpoint must be http(s)://host[:port]")
    return replace(out, host=netloc, path=prefix or "casreg")


register(Scheme("s3", lambda url, secrets, create=False, cache_dir=None: S3Backend(url, secrets, cache_dir=cache_dir),
                query_keys=("region", "endpoint", "timeout"), check_url=_check_url, sdk="boto3", extra="s3",
                secret_fields=("access_key_id", "secret_access_key")))
