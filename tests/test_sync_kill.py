"""A real server process (`childvoice serve` on a free port, SQLite in a temp directory):
killed with SIGKILL in the middle of a sync batch and of an upload, and uploads whose
connection drops at 30%, 80% and 99.9%. After a restart there is no partial row and no
orphan file, and resending (HEAD + PATCH for an upload) completes the work once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import hashlib

import httpx2
import pytest

from bench.harness import Server
from tests.media_support import sample
from tests.support import consent_body, feelings_board_body
from tests.sync_support import Tus, recorded_visit

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


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    workdir = tmp_path_factory.mktemp("live")
    db_path = workdir / "kill.db"
    server = Server(database_url=f"sqlite:///{db_path}", workdir=workdir,
                    env={"CHILDVOICE_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
                         "CHILDVOICE_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD}).start()
    try:
        world = _world(server.port)
        items = recorded_visit(world, world.boards, entries=2, seed=7)
        r = world.worker.post("/sync", content=_body(world, items),
                              headers={"X-Device-Key": world.device["device_key"],
                                       "Content-Type": "application/json"})
        assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == \
            {"created"}
        world.session_client_id = items[0]["client_id"]
        yield SimpleNamespace(server=server, world=world, db_path=db_path,
                              media_root=workdir / "media")
    finally:
        server.stop()


def _kill_and_restart(server: Server) -> None:
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    server.start()


def test_sigkill_during_a_batch_leaves_no_partial_rows(live) -> None:  # noqa: ANN001
    server, world, db_path = live.server, live.world, live.db_path
    warmup = recorded_visit(world, world.boards, entries=400, seed=1)
    started = time.perf_counter()
    r = world.worker.post("/sync", content=_body(world, warmup),
                          headers={"X-Device-Key": world.device["device_key"],
                                   "Content-Type": "application/json"})
    took = time.perf_counter() - started
    print(f"warm-up batch of {len(warmup)} items took {took:.2f}s")
    assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {"created"}

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
    headers = {"X-Device-Key": world.device["device_key"], "Content-Type": "application/json"}
    first = worker.post("/sync", content=_body(world, items), headers=headers)
    assert first.status_code == 200, first.text
    assert {x["status"] for x in first.json()["results"]} == {"created"}
    again = worker.post("/sync", content=_body(world, items), headers=headers)
    assert {x["status"] for x in again.json()["results"]} == {"duplicate"}
    assert _counts(db_path, items) == (1, 400, len(items))
    assert _counts(db_path, warmup) == (1, 400, len(warmup))


# --- uploads over a connection that drops -----------------------------------------------

def _tus(live) -> Tus:  # noqa: ANN001
    return Tus(httpx2.Client(base_url=f"http://127.0.0.1:{live.server.port}", timeout=60),
               live.world.token, live.world.device)


def _raw_patch(port: int, tus: Tus, url: str, offset: int, body: bytes,
               declared: int) -> socket.socket:
    """A PATCH that says `declared` bytes follow and sends only `body`: the connection is
    then cut (closed) by the caller, or the server is killed."""
    head = (f"PATCH {url} HTTP/1.1\r\nHost: tablet\r\nContent-Length: {declared}\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in tus.headers.items()) + "\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head + body)
    return sock


def _offset_settles(tus: Tus, url: str, expected: int | None = None) -> int:
    """HEAD until the offset stops moving (the server notices the cut when it notices)."""
    last, stable = -1, 0
    for _ in range(200):
        offset = int(tus.head(url).headers["upload-offset"])
        if expected is not None and offset == expected:
            return offset
        stable = stable + 1 if offset == last else 0
        if stable >= 5 and expected is None:
            return offset
        last = offset
        time.sleep(0.02)
    return last


def _upload_files(live, url: str) -> set[str]:  # noqa: ANN001
    directory = live.media_root / "uploads" / uuid.UUID(url.rsplit("/", 1)[-1]).hex
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


def _staging_files(live) -> set[str]:  # noqa: ANN001
    """Files in the server processes' staging areas (`tmp/p<pid>-<x>/`), not their locks."""
    staging = live.media_root / "tmp"
    return {str(p.relative_to(staging)) for p in staging.rglob("*")
            if p.is_file() and not p.name.endswith(".lock")} if staging.exists() else set()


@pytest.mark.parametrize("cut", [0.3, 0.8, 0.999])
def test_an_upload_cut_mid_way_resumes_from_its_offset(live, cut: float) -> None:  # noqa: ANN001
    data = sample("voice.wav")
    tus = _tus(live)
    meta = tus.meta("audio", session_client_id=live.world.session_client_id)
    url = tus.create(len(data), meta)
    sent = int(len(data) * cut)
    sock = _raw_patch(live.server.port, tus, url, 0, data[:sent], len(data))
    time.sleep(0.05)
    sock.close()  # the signal drops
    # No checksum was sent, so what arrived before the cut is kept.
    offset = _offset_settles(tus, url, expected=sent)
    assert offset == sent
    r = tus.patch(url, offset, data[offset:], "sha256")
    assert r.status_code == 204, r.text
    entry = live.world.worker.get(f"/entries/{r.headers['x-entry-id']}").json()
    assert entry["kind"] == "audio" and entry["client_id"] == meta["client_id"]
    assert entry["media"][0]["upload_sha256"] == hashlib.sha256(data).hexdigest()
    assert _upload_files(live, url) == set()


def test_sigkill_during_an_upload_then_resume(live) -> None:  # noqa: ANN001
    data = sample("voice.wav")
    tus = _tus(live)
    meta = tus.meta("audio", session_client_id=live.world.session_client_id)
    url = tus.create(len(data), meta)
    first = len(data) * 2 // 5
    assert tus.patch(url, 0, data[:first], "sha1").status_code == 204
    staged_before = _staging_files(live)
    # The second PATCH is streaming (its part file exists in the server's staging area)
    # when the server is killed.
    sock = _raw_patch(live.server.port, tus, url, first, data[first:first + 100_000],
                      len(data) - first)
    deadline = time.monotonic() + 10
    while not any(n.rsplit("/", 1)[-1].startswith("part-") for n in _staging_files(live)):
        assert time.monotonic() < deadline, "the PATCH never started"
        time.sleep(0.01)
    _kill_and_restart(live.server)
    sock.close()
    tus = _tus(live)
    # After the restart: the accepted bytes are there, the killed PATCH's are not.
    assert tus.head(url).headers["upload-offset"] == str(first)
    with sqlite3.connect(live.db_path) as db:
        assert db.execute("SELECT count(*) FROM voice_entries WHERE client_id = ?",
                          (uuid.UUID(meta["client_id"]).hex,)).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM media WHERE client_id = ?",
                          (uuid.UUID(meta["client_id"]).hex,)).fetchone()[0] == 0
    r = tus.patch(url, first, data[first:], "sha1")
    assert r.status_code == 204, r.text
    entry = live.world.worker.get(f"/entries/{r.headers['x-entry-id']}").json()
    assert entry["media"][0]["upload_sha256"] == hashlib.sha256(data).hexdigest()
    # No orphan file: the upload's parts are gone, and the killed server's staging area
    # (with the killed PATCH's part) was swept when the server started again.
    assert _upload_files(live, url) == set()
    assert _staging_files(live) <= staged_before


def test_a_cut_checksummed_patch_keeps_nothing(live) -> None:  # noqa: ANN001
    """Bytes that cannot be checked against their Upload-Checksum are not kept."""
    import base64
    data = sample("voice.mp3")
    tus = _tus(live)
    url = tus.create(len(data), tus.meta("audio", session_client_id=live.world.session_client_id))
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()
    tus.headers = tus.headers | {"Upload-Checksum": f"sha1 {digest}"}
    sock = _raw_patch(live.server.port, tus, url, 0, data[:len(data) // 2], len(data))
    time.sleep(0.2)
    sock.close()
    time.sleep(0.3)
    assert _offset_settles(tus, url) == 0
    assert not any(n.startswith("chunk-") for n in _upload_files(live, url))
    del tus.headers["Upload-Checksum"]
    r = tus.patch(url, 0, data, "sha1")
    assert r.status_code == 204, r.text
