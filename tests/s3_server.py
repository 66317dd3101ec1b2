"""A real S3 API server for the tests: moto in server mode, as its own process on a free
loopback port (`moto[server]`, installed with the dev dependencies)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> MotoServer:
        command = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or \
            shutil.which("moto_server")
        assert command, "moto_server is missing: pip install -e '.[dev]' (moto[server])"
        for _ in range(5):  # the free port may be taken between asking and binding
            port = _free_port()
            log = (self.log_dir / f"moto-{port}.log").open("wb")
            self.process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"})
            self.url = f"http://127.0.0.1:{port}"
            if self._ready():
                return self
            self.stop()
        raise RuntimeError("the S3 test server (moto_server) did not start")

    def _ready(self) -> bool:
        for _ in range(200):
            if self.process.poll() is not None:
                return False
            try:
                httpx2.get(f"{self.url}/moto-api/", timeout=1)
                return True
            except httpx2.TransportError:
                time.sleep(0.05)
        return False

    def new_bucket(self) -> str:
        import boto3

        name = f"childvoice-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                     aws_access_key_id=ACCESS_KEY,
                     aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
