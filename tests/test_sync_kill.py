"""A real server process killed (SIGKILL) in the middle of a sync batch: after a restart
there is no partial row of that batch, and resending it completes the work once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx2

from bench.harness import Server
from tests.support import consent_body, feelings_board_body
from tests.sync_support import recorded_visit

ADMIN_EMAIL, PASSWORD = "admin@kill.example.org", "kill test password, long enough"


def _api(port: int, token: str | None = None) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers,
                         timeout=60)


def _token(port: int, email: str) -> str:
    with _api(port) as c:
        r = c.post("/auth/token", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def _world(port: int) -> SimpleNamespace:
    admin = _api(port, _token(port, ADMIN_EMAIL))
    team = admin.post("/teams", json={"name": "Kill Team"}).json()
    r = admin.post("/users", json={"email": "worker@kill.example.org", "full_name": "Worker",
                                   "role": "social_worker", "team_id": team["id"],
                                   "password": PASSWORD})
    assert r.status_code == 201, r.text
    board = admin.post("/boards", json=feelings_board_body()).json()
    week = admin.post("/boards", json=feelings_board_body("My week")).json()
    token = _token(port, "worker@kill.example.org")
    worker = _api(port, token)
    child = worker.post("/children", json={"preferred_name": "Synthetic", "team_id": team["id"],
                                           "date_of_birth": "2016-01-01"}).json()
    assert worker.post(f"/children/{child['id']}/consents",
                       json=consent_body()).status_code == 201
    device = worker.post("/devices", json={"name": "kill tablet"}).json()
    return SimpleNamespace(child_id=child["id"], boards=[board, week], token=token,
                           device=device, worker=worker)


def _body(world: SimpleNamespace, items: list[dict]) -> bytes:
    import json
    return json.dumps({"device_id": world.device["id"], "items": items}).encode()


def _raw_post(port: int, world: SimpleNamespace, body: bytes) -> socket.socket:
    """Send the whole request on a raw socket and return it (the answer is read later, or
    never: the server may be dead by then)."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (f"POST /api/v1/sync HTTP/1.1\r\nHost: kill\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {world.token}\r\nX-Device-Key: {world.device['device_key']}"
            f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock.sendall(head + body)
    return sock


def _write_locked(db_path: Path) -> bool:
    con = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def _counts(db_path: Path, items: list[dict]) -> tuple[int, int, int]:
    ids = [uuid.UUID(i["client_id"]).hex for i in items]
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return (db.execute(f"SELECT count(*) FROM capture_sessions WHERE client_id IN ({marks})",
                           ids).fetchone()[0],
                db.execute(f"SELECT count(*) FROM voice_entries WHERE client_id IN ({marks})",
                           ids).fetchone()[0],
                db.execute(f"SELECT count(*) FROM sync_receipts WHERE client_id IN ({marks})",
                           ids).fetchone()[0])


def test_sigkill_during_a_batch_leaves_no_partial_rows(tmp_path: Path) -> None:
    db_path = tmp_path / "kill.db"
    server = Server(database_url=f"sqlite:///{db_path}", workdir=tmp_path,
                    env={"CHILDVOICE_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
                         "CHILDVOICE_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD}).start()
    try:
        world = _world(server.port)
        warmup = recorded_visit(world, world.boards, entries=400, seed=1)
        started = time.perf_counter()
        r = world.worker.post("/sync", content=_body(world, warmup),
                              headers={"X-Device-Key": world.device["device_key"],
                                       "Content-Type": "application/json"})
        took = time.perf_counter() - started
        print(f"warm-up batch of {len(warmup)} items took {took:.2f}s")
        assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == \
            {"created"}

        items = recorded_visit(world, world.boards, entries=400, seed=2)
        sock = _raw_post(server.port, world, _body(world, items))
        # Wait until the server is inside the batch's transaction (it holds SQLite's write
        # lock from the batch's first statement to its commit), a while into it, then kill.
        deadline, inside_since = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            if _write_locked(db_path):
                inside_since = inside_since or time.monotonic()
                if time.monotonic() - inside_since >= took * 0.3:
                    break
            else:
                inside_since = None
            time.sleep(0.002)
        assert inside_since is not None, "never saw the batch's transaction"
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        sock.close()
        # No partial row: nothing of the batch, and the database is sound.
        assert _counts(db_path, items) == (0, 0, 0)
        server.start()

        # Resending completes the work, once.
        worker = _api(server.port, world.token)
        headers = {"X-Device-Key": world.device["device_key"],
                   "Content-Type": "application/json"}
        first = worker.post("/sync", content=_body(world, items), headers=headers)
        assert first.status_code == 200, first.text
        assert {x["status"] for x in first.json()["results"]} == {"created"}
        again = worker.post("/sync", content=_body(world, items), headers=headers)
        assert {x["status"] for x in again.json()["results"]} == {"duplicate"}
        assert _counts(db_path, items) == (1, 400, len(items))
        assert _counts(db_path, warmup) == (1, 400, len(warmup))
    finally:
        server.stop()
