"""A council's Monday morning: the tablets of a weekend's visits come back online at once.

Starts a real S3 API server (moto_server) on loopback, a fresh PostgreSQL database, two
`childvoice serve` processes that share nothing but the database and the bucket (each has
its own media root), and one `childvoice worker`. Then `--tablets` tablets (default 300),
each holding an offline visit of `--min-items` to `--max-items` queued items (default 50 to
500), arrive at random moments within `--window` seconds (default 300) and drain their
queues in sync batches of `--batch` items, each request to either API process at random.
One tablet in ten also holds a photo and a recording, sent over tus in 256 KiB PATCHes
that alternate between the two processes.

It prints p50/p99 of sync batches and of whole uploads, the errors (target 0), and then
checks that every item is stored exactly once, every receipt is held, and every upload's
bytes match what the tablet sent (read back through the other process). `--quick` is a
short run (about two minutes on a small shared machine).

    python bench/council.py --database-url postgresql+psycopg://postgres@127.0.0.1/postgres
    python bench/council.py --database-url ... --quick
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import math
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2  # noqa: E402

from bench.capture import PASSWORD, fresh_postgres  # noqa: E402
from bench.harness import ROOT, Server  # noqa: E402
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoServer  # noqa: E402

CHUNK = 256 * 1024


@dataclass
class Tablet:
    index: int
    email: str
    child_id: str
    token: str = ""
    device: dict = field(default_factory=dict)
    items: list[dict] = field(default_factory=list)
    media: list[tuple[str, bytes, str]] = field(default_factory=list)  # kind, bytes, name
    uploads: list[dict] = field(default_factory=list)  # what each upload became


@dataclass
class Figures:
    batches: list[float] = field(default_factory=list)
    uploads: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def seed(tablets: int) -> tuple[str, list[Tablet]]:
    """Workers, children, consents and a board, straight into the database."""
    from app.cli import migrate
    from app.core.clock import utcnow
    from app.core.config import get_settings
    from app.core.db import make_engine, new_session
    from app.core.security import PasswordHashing
    from app.models import Allocation, Child, Consent, Team
    from app.models.staff import Role
    from app.services.boards.library import add_board
    from app.services.demo import feelings_board
    from app.services.staff import add_user

    settings = get_settings()
    migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    now = utcnow()
    hashing = PasswordHashing(settings)
    out = []
    with new_session(engine) as db:
        team = Team(name="Monday Team")
        db.add(team)
        db.flush()
        board_id = None
        for i in range(tablets):
            email = f"worker{i:03d}@council.example.org"
            worker = add_user(db, hashing, email, f"Worker {i}", Role.social_worker,
                              team.id, PASSWORD)
            if board_id is None:
                board, _ = add_board(db, feelings_board(), worker.id)
                board_id = str(board.id)
            child = Child(preferred_name=f"Child {i}", date_of_birth=date(2014, 1, 1),
                          team_id=team.id, created_by=worker.id)
            db.add(child)
            db.flush()
            db.add(Allocation(child_id=child.id, user_id=worker.id,
                              started_at=now - timedelta(days=30)))
            db.add(Consent(child_id=child.id, given_by="child",
                           scopes=["plan", "symbols", "photo", "audio"], method="symbols",
                           child_assent="agreed", valid_from=now - timedelta(days=400)))
            out.append(Tablet(i, email, str(child.id)))
        db.commit()
    engine.dispose()
    return board_id, out


def synthetic_wav(seconds: float, tone: float) -> bytes:
    rate = 16000
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone * n / rate)))
                      for n in range(int(rate * seconds)))
    header = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " + \
        struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + \
        b"data" + struct.pack("<I", len(frames))
    return header + frames


def synthetic_jpeg(seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    image = Image.effect_noise((1024, 768), 40 + rng.random() * 40).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def queue_for(tablet: Tablet, board_id: str, count: int, rng: random.Random) -> None:
    started = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    session = str(uuid.uuid4())
    tablet.items = [{"type": "session", "client_id": session, "child_id": tablet.child_id,
                     "setting": "home", "purpose": "Weekend visit",
                     "board_ids": [board_id], "started_at": started.isoformat()}]
    buttons = ["happy", "sad", "angry", "scared", "worried", "calm"]
    for i in range(count - 2):
        tablet.items.append({
            "type": "entry", "session_client_id": session, "client_id": str(uuid.uuid4()),
            "captured_at": (started + timedelta(seconds=5 * (i + 1))).isoformat(),
            "kind": "symbols", "source": "child_direct", "topic": "feelings",
            "board_id": board_id, "board_version": 1,
            "button_ids": rng.sample(buttons, rng.randint(1, 3))})
    tablet.items.append({"type": "session_end", "client_id": str(uuid.uuid4()),
                         "session_client_id": session,
                         "ended_at": (started + timedelta(seconds=5 * count)).isoformat()})
    if tablet.index % 10 == 0:
        tablet.media = [("photo", synthetic_jpeg(tablet.index), "photo.jpg"),
                        ("audio", synthetic_wav(8, 220 + tablet.index), "voice.wav")]


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def drain(tablet: Tablet, clients: list[httpx2.AsyncClient], start_at: float,
                batch: int, figures: Figures, rng: random.Random) -> None:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    headers = {"Authorization": f"Bearer {tablet.token}",
               "X-Device-Key": tablet.device["device_key"]}
    for i in range(0, len(tablet.items), batch):
        body = {"device_id": tablet.device["id"],
                "sent_at": datetime.now(timezone.utc).isoformat(),
                "items": tablet.items[i:i + batch]}
        began = time.perf_counter()
        try:
            r = await rng.choice(clients).post("/api/v1/sync", json=body, headers=headers)
        except httpx2.HTTPError as exc:
            figures.errors.append(f"sync: {type(exc).__name__}")
            continue
        figures.batches.append(time.perf_counter() - began)
        if r.status_code != 200:
            figures.errors.append(f"sync answered {r.status_code}: {r.text[:200]}")
            continue
        bad = [x for x in r.json()["results"] if x["status"] not in ("created", "duplicate")]
        figures.errors += [f"item {x['status']}: {json.dumps(x.get('problem'))[:200]}"
                           for x in bad]
    session = tablet.items[0]["client_id"]
    tus = headers | {"Tus-Resumable": "1.0.0"}
    for kind, data, filename in tablet.media:
        meta = {"client_id": str(uuid.uuid4()), "kind": kind, "source": "child_direct",
                "captured_at": tablet.items[1]["captured_at"], "filename": filename,
                "session_client_id": session}
        began = time.perf_counter()
        try:
            r = await clients[0].post("/api/v1/uploads/", headers=tus | {
                "Upload-Length": str(len(data)),
                "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in meta.items())})
            if r.status_code != 201:
                figures.errors.append(f"upload create answered {r.status_code}: {r.text[:200]}")
                continue
            url = r.headers["location"]
            entry_id = None
            for n, offset in enumerate(range(0, len(data), CHUNK)):
                chunk = data[offset:offset + CHUNK]
                digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                r = await clients[n % len(clients)].patch(url, content=chunk, headers=tus | {
                    "Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
                    "Content-Type": "application/offset+octet-stream"})
                if r.status_code != 204:
                    figures.errors.append(f"PATCH answered {r.status_code}: {r.text[:200]}")
                    break
                entry_id = r.headers.get("x-entry-id") or entry_id
        except httpx2.HTTPError as exc:
            figures.errors.append(f"upload: {type(exc).__name__}")
            continue
        figures.uploads.append(time.perf_counter() - began)
        tablet.uploads.append({"kind": kind, "client_id": meta["client_id"],
                               "entry_id": entry_id, "sha256": hashlib.sha256(data).hexdigest(),
                               "data": data})


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def start(server: Server, args: list[str]) -> subprocess.Popen:
    """A `childvoice` process with the server's settings, its output to a log file."""
    log = (server.workdir / f"{args[0]}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                            env=os.environ | server.settings_env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300  # a busy shared machine starts slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("an API process exited at start-up")
        try:
            httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.2)
    raise RuntimeError("an API process did not start")


async def run(args: argparse.Namespace, ports: list[int], tablets: list[Tablet],
              figures: Figures) -> float:
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    clients = [httpx2.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=300, limits=limits)
               for p in ports]
    try:
        for tablet in tablets:  # sign in and enrol the tablet (before the weekend)
            client = clients[tablet.index % 2]
            r = await client.post("/api/v1/auth/token",
                                  data={"username": tablet.email, "password": PASSWORD})
            tablet.token = r.json()["access_token"]
            r = await client.post("/api/v1/devices", json={"name": f"tablet {tablet.index}"},
                                  headers={"Authorization": f"Bearer {tablet.token}"})
            tablet.device = r.json()
        rng = random.Random(7)
        began = time.monotonic()
        await asyncio.gather(*(drain(t, clients, began + rng.random() * args.window,
                                     args.batch, figures, random.Random(t.index))
                               for t in tablets))
        return time.monotonic() - began
    finally:
        for client in clients:
            await client.aclose()


def verify(database_url: str, ports: list[int], tablets: list[Tablet]) -> list[str]:
    """Every item stored exactly once, every receipt held, every upload's bytes as sent."""
    from sqlalchemy import create_engine, text

    problems = []
    engine = create_engine(database_url)
    expected = [i["client_id"] for t in tablets for i in t.items if i["type"] == "entry"]
    expected += [u["client_id"] for t in tablets for u in t.uploads]
    with engine.connect() as conn:
        total, distinct = conn.execute(text(
            "SELECT count(*), count(DISTINCT client_id) FROM voice_entries")).one()
        held = {str(r[0]) for r in conn.execute(text("SELECT client_id FROM sync_receipts"))}
        stored = {str(r[0]) for r in conn.execute(text("SELECT client_id FROM voice_entries"))}
    engine.dispose()
    if total != distinct:
        problems.append(f"{total - distinct} entries stored more than once")
    if total != len(expected) or set(expected) != stored:
        problems.append(f"{len(expected)} entries sent, {total} stored")
    every_item = {i["client_id"] for t in tablets for i in t.items} | \
        {u["client_id"] for t in tablets for u in t.uploads}
    if every_item - held:
        problems.append(f"{len(every_item - held)} items without a receipt")
    with httpx2.Client(timeout=120) as client:
        for tablet in tablets:
            auth = {"Authorization": f"Bearer {tablet.token}"}
            for n, upload in enumerate(tablet.uploads):
                other = f"http://127.0.0.1:{ports[(n + 1) % 2]}"
                entry = client.get(f"{other}/api/v1/entries/{upload['entry_id']}",
                                   headers=auth).json()
                [media] = entry["media"]
                if media["upload_sha256"] != upload["sha256"]:
                    problems.append(f"upload {upload['client_id']}: not the bytes sent")
                served = client.get(f"{other}{media['url']}", headers=auth).content
                if hashlib.sha256(served).hexdigest() != media["sha256"]:
                    problems.append(f"upload {upload['client_id']}: stored bytes differ")
                if upload["kind"] == "audio" and served != upload["data"]:
                    problems.append(f"upload {upload['client_id']}: a plain WAV changed")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server (a fresh "
                        "database is made there and dropped afterwards)")
    parser.add_argument("--tablets", type=int, default=300)
    parser.add_argument("--min-items", type=int, default=50)
    parser.add_argument("--max-items", type=int, default=500)
    parser.add_argument("--window", type=float, default=300, help="seconds within which "
                        "the tablets arrive")
    parser.add_argument("--batch", type=int, default=100, help="items per sync request")
    parser.add_argument("--quick", action="store_true", help="30 tablets of 20 to 80 items "
                        "within 30 s")
    args = parser.parse_args()
    if args.quick:
        args.tablets, args.min_items, args.max_items, args.window = 30, 20, 80, 30

    moto = MotoServer(Path(tempfile.mkdtemp(prefix="cv-council-moto-"))).start()
    bucket = moto.new_bucket()
    url, drop = fresh_postgres(args.database_url)
    s3 = {"CHILDVOICE_MEDIA_STORE": "s3", "CHILDVOICE_S3_BUCKET": bucket,
          "CHILDVOICE_S3_ENDPOINT_URL": moto.url, "CHILDVOICE_S3_REGION": REGION,
          "CHILDVOICE_S3_ACCESS_KEY_ID": ACCESS_KEY,
          "CHILDVOICE_S3_SECRET_ACCESS_KEY": SECRET_KEY}
    servers = [Server(database_url=url, env=s3) for _ in range(2)]  # a media root each
    processes: list[subprocess.Popen] = []
    try:
        servers[0].apply_settings_env()
        board_id, tablets = seed(args.tablets)
        rng = random.Random(1)
        for tablet in tablets:
            queue_for(tablet, board_id, rng.randint(args.min_items, args.max_items), rng)
        items = sum(len(t.items) for t in tablets)
        media = sum(len(t.media) for t in tablets)
        for server in servers:
            processes.append(start(server, ["serve", "--port", str(server.port)]))
        processes.append(start(servers[0], ["worker"]))
        for server, process in zip(servers, processes):
            wait_for(server.port, process)
        print(f"PostgreSQL, S3 store (moto), 2 API processes + 1 worker; {args.tablets} "
              f"tablets, {items} queued items, {media} uploads over tus, arriving within "
              f"{args.window:.0f} s, {args.batch} items per sync request")
        figures = Figures()
        took = asyncio.run(run(args, [s.port for s in servers], tablets, figures))
        problems = verify(url, [s.port for s in servers], tablets)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        drop()
        moto.stop()

    print(f"\nall queues drained in {took:.1f} s ({items / took:.0f} items/s overall)")
    print(f"sync batches: {len(figures.batches)}, p50 {percentile(figures.batches, 50) * 1000:.0f} "
          f"ms, p99 {percentile(figures.batches, 99) * 1000:.0f} ms")
    print(f"uploads: {len(figures.uploads)}, p50 {percentile(figures.uploads, 50) * 1000:.0f} "
          f"ms, p99 {percentile(figures.uploads, 99) * 1000:.0f} ms")
    print(f"errors: {len(figures.errors)} (target 0)")
    for error in figures.errors[:10]:
        print(f"  {error}")
    print("verified: every item stored exactly once, every receipt held, every upload's "
          "bytes as sent" if not problems else "verification FAILED:")
    for problem in problems:
        print(f"  {problem}")
    if figures.batches:
        print(f"mean sync batch {statistics.mean(figures.batches) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
