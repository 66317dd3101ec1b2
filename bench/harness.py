"""Shared pieces for the benchmarks: a server of our own on a free localhost port, a
keep-alive HTTP/1.1 load generator (h11, the protocol library uvicorn itself uses), and
the server's memory. Benchmarks print figures; they never assert timings."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h11

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """`childvoice serve` in a subprocess, on a fresh database unless one is given."""

    database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cv-bench-")))
    process: subprocess.Popen | None = None

    @property
    def settings_env(self) -> dict[str, str]:
        env = {"CHILDVOICE_DATA_DIR": str(self.workdir / "data"),
               "CHILDVOICE_MEDIA_ROOT": str(self.workdir / "media"),
               "CHILDVOICE_SECRET_KEY": "bench-only-secret-key-0123456789abcdef",
               # Sign-in cost is not what these benchmarks measure.
               "CHILDVOICE_PASSWORD_TIME_COST": "1", "CHILDVOICE_PASSWORD_MEMORY_KIB": "8",
               "CHILDVOICE_PASSWORD_PARALLELISM": "1"}
        if self.database_url:
            env["CHILDVOICE_DATABASE_URL"] = self.database_url
        return env | self.env

    def apply_settings_env(self) -> None:
        """Make this process see the server's settings (to seed its database directly)."""
        os.environ.update(self.settings_env)
        from app.core.config import get_settings
        get_settings.cache_clear()

    def start(self) -> "Server":
        env = os.environ | self.settings_env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
             "--workers", str(self.workers)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180  # a busy shared machine starts slowly
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.process.stderr.read().decode()[-2000:])
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the server process, in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
                  if line.startswith(("VmRSS", "VmHWM"))}
        return values["VmRSS"] / 1024, values["VmHWM"] / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and every process under it (uvicorn's
        workers), from /proc."""
        return sum(_cpu_of(pid) for pid in _tree(self.process.pid))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_of(pid: int) -> float:
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> "Connection":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.conn = h11.Connection(h11.CLIENT)
        return self

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        hdrs = [("Host", "bench"), ("Content-Length", str(len(body)))]
        hdrs += list((headers or {}).items())
        data = self.conn.send(h11.Request(method=method, target=path, headers=hdrs))
        data += self.conn.send(h11.Data(data=body)) if body else b""
        data += self.conn.send(h11.EndOfMessage())
        self.writer.write(data)
        status, chunks = 0, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.conn.start_next_cycle()
                return status, b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()


RequestMaker = Callable[[int], tuple[str, str, bytes, dict[str, str]]]


async def _load(port: int, make: RequestMaker, concurrency: int, seconds: float,
                expect: set[int]) -> tuple[int, list[float]]:
    conns = [await Connection(port).open() for _ in range(concurrency)]
    latencies: list[float] = []
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker(conn: Connection) -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            method, path, body, headers = make(counter)
            start = time.perf_counter()
            status, payload = await conn.request(method, path, body, headers)
            latencies.append(time.perf_counter() - start)
            if status not in expect:
                raise RuntimeError(f"{method} {path} answered {status}: {payload[:300]!r}")

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        await c.close()
    return len(latencies), latencies


@dataclass
class Phase:
    """One timed load: what the server did per request, and what clients saw."""

    requests: int
    seconds: float
    cpu_seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / self.requests * 1000

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(server: Server, make: RequestMaker, *, concurrency: int = 16,
            seconds: float = 5.0, expect: set[int] | None = None) -> Phase:
    """Load the server for `seconds` and read its CPU time before and after."""
    cpu = server.cpu_seconds()
    start = time.perf_counter()
    count, latencies = asyncio.run(_load(server.port, make, concurrency, seconds,
                                         expect or {200, 201}))
    took = time.perf_counter() - start
    return Phase(count, took, server.cpu_seconds() - cpu, latencies)


def throughput(port: int, make: RequestMaker, *, concurrency: int = 16, seconds: float = 5.0,
               expect: set[int] | None = None) -> float:
    """Requests per second with `concurrency` clients for `seconds`."""
    start = time.perf_counter()
    count, _ = asyncio.run(_load(port, make, concurrency, seconds, expect or {200, 201}))
    return count / (time.perf_counter() - start)


def median_latency_ms(port: int, make: RequestMaker, *, count: int = 200,
                      expect: set[int] | None = None) -> float:
    """Median latency of `count` requests sent one at a time."""
    async def run() -> list[float]:
        conn = await Connection(port).open()
        out = []
        for i in range(count):
            method, path, body, headers = make(i)
            start = time.perf_counter()
            status, payload = await conn.request(method, path, body, headers)
            out.append(time.perf_counter() - start)
            if status not in (expect or {200}):
                raise RuntimeError(f"{path} answered {status}: {payload[:300]!r}")
        await conn.close()
        return out
    return statistics.median(asyncio.run(run())) * 1000


def json_request(method: str, path: str, body: object | None = None,
                 token: str | None = None) -> tuple[str, str, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return method, path, json.dumps(body).encode() if body is not None else b"", headers


def sign_in(port: int, email: str, password: str) -> str:
    import urllib.parse
    import urllib.request
    data = urllib.parse.urlencode({"username": email, "password": password}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/auth/token", data) as r:
        return json.load(r)["access_token"]


def call(port: int, method: str, path: str, body: object | None = None,
         token: str | None = None) -> dict:
    import urllib.request
    m, p, data, headers = json_request(method, path, body, token)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{p}", data=data or None,
                                 headers=headers, method=m)
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "meets target" if ok else "BELOW TARGET" if higher_is_better else "OVER TARGET"
