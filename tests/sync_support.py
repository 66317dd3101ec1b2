"""Helpers for the offline-sync tests: an enrolled tablet, a recorded offline visit, a
tablet's queue that sends, resends and resumes, and the final state to compare."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from datetime import datetime, timedelta, timezone

from sqlmodel import func, select

from app.core.db import new_session
from app.models.capture import CaptureSession, VoiceEntry
from app.models.sync import SyncReceipt
from tests.support import Api, World

RETRACTED_INDEX = 7   # the entry the child takes back in the recorded visit


def enroll(api: Api, name: str = "tablet north 07") -> dict:
    r = api.post("/devices", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def mat_board(world: World) -> dict:
    ids = ["swimming", "school", "dad", "dog", "bus"]
    r = world.admin.post("/boards", json={
        "name": "Things in my week", "grid": {"rows": 1, "columns": 5, "order": [ids]},
        "buttons": [{"id": i, "label": i} for i in ids]})
    assert r.status_code == 201, r.text
    return r.json()


def recorded_visit(world: World, boards: list[dict], *, started_at: datetime | None = None,
                   entries: int = 40, seed: int = 4) -> list[dict]:
    """A visit recorded offline on the tablet, in the order it happened: session start,
    `entries` entries of mixed kinds, one retract, session end. Synthetic words only."""
    rng = random.Random(seed)
    feelings, week = boards
    # Long enough ago that the whole visit is over (a time ahead of the server's clock is
    # refused).
    t0 = started_at or datetime.now(timezone.utc).replace(microsecond=0) - \
        timedelta(hours=1, seconds=30 * (entries + 2))
    session_cid = str(uuid.uuid4())
    items: list[dict] = [{"type": "session", "client_id": session_cid,
                          "child_id": world.child_id, "setting": "home",
                          "purpose": "How weekends feel",
                          "board_ids": [feelings["id"], week["id"]],
                          "started_at": t0.isoformat()}]
    feeling_ids = [b["id"] for b in feelings["buttons"]]
    week_ids = [b["id"] for b in week["buttons"]]
    for i in range(entries):
        at = (t0 + timedelta(seconds=30 * (i + 1))).isoformat()
        base = {"type": "entry", "session_client_id": session_cid,
                "client_id": str(uuid.uuid4()), "captured_at": at}
        kind = ("symbols", "mat", "text", "observation")[i % 4]
        if kind == "symbols":
            base |= {"kind": "symbols", "source": "child_direct", "prompt": "How do you feel?",
                     "topic": "feelings", "board_id": feelings["id"],
                     "board_version": feelings["version"],
                     "button_ids": rng.sample(feeling_ids, rng.randint(1, 3))}
        elif kind == "mat":
            base |= {"kind": "mat", "source": "child_assisted", "topic": "my week",
                     "board_id": week["id"], "board_version": week["version"],
                     "scale": ["like", "not sure", "don't like"],
                     "placements": [{"button_id": b, "scale_value": rng.choice(
                         ["like", "not sure", "don't like"])} for b in rng.sample(week_ids, 3)]}
        elif kind == "text":
            base |= {"kind": "text", "source": "child_direct", "text": f"synthetic words {i}"}
        else:
            base |= {"kind": "observation", "source": "adult_interpretation",
                     "text": f"synthetic observation {i}", "note": "worker's note"}
        items.append(base)
    which = min(RETRACTED_INDEX, entries - 1)
    items.append({"type": "retract", "client_id": str(uuid.uuid4()),
                  "entry_client_id": items[1 + which]["client_id"],
                  "retracted_at": (t0 + timedelta(seconds=30 * (which + 1) + 10))
                  .isoformat()})
    items.append({"type": "session_end", "client_id": str(uuid.uuid4()),
                  "session_client_id": session_cid,
                  "ended_at": (t0 + timedelta(seconds=30 * (entries + 1))).isoformat()})
    return items


class Tablet:
    """A tablet with an enrolled device and a signed-in worker, sending its queue."""

    def __init__(self, worker: Api, device: dict) -> None:
        self.worker, self.device = worker, device
        self.headers = {"X-Device-Key": device["device_key"]}

    def body(self, items: list[dict]) -> dict:
        return {"device_id": self.device["id"],
                "sent_at": datetime.now(timezone.utc).isoformat(), "items": items}

    def send(self, items: list[dict]):  # noqa: ANN201
        return self.worker.post("/sync", json=self.body(items), headers=self.headers)

    def state(self, cursor: str | None = None) -> dict:
        params = {"device_id": self.device["id"]} | ({"cursor": cursor} if cursor else {})
        r = self.worker.get("/sync/state", params=params, headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def held(self) -> set[str]:
        out, cursor = set(), None
        while True:
            page = self.state(cursor)
            out |= set(page["held"])
            cursor = page["cursor"]
            if not page["more"]:
                return out

    def drain(self, queue: list[dict], *, rng: random.Random | None = None,
              max_batch: int = 500, cut: float = 0.0, rounds: int = 200) -> int:
        """Send the queue until the server holds everything: batches of random size (when
        `rng` is given), a `cut` share of them lost on the way (before or after the server
        stored them), resumed by asking /sync/state what the server holds. Returns how
        many requests it took."""
        queue = list(queue)
        requests = 0
        while queue:
            rounds -= 1
            assert rounds > 0, f"queue never drained; left: {[i['type'] for i in queue]}"
            size = rng.randint(1, max_batch) if rng else max_batch
            batch, rest = queue[:size], queue[size:]
            if rng and rng.random() < cut:
                if rng.random() < 0.5:
                    requests += 1
                    self.send(batch)          # stored, but the answer never arrives
                held = self.held()            # resume: what does the server hold?
                queue = [i for i in queue if i["client_id"] not in held]
                continue
            requests += 1
            r = self.send(batch)
            assert r.status_code == 200, r.text
            keep = []
            for item, result in zip(batch, r.json()["results"], strict=True):
                assert result["client_id"] == item["client_id"]
                if result["status"] == "rejected":
                    assert result["problem"].get("retry") is True, result["problem"]
                    keep.append(item)
            queue = rest + keep
        return requests


def final_state(world: World) -> dict:
    """What the server holds for the child, through the API, without server-made ids."""
    entries, cursor = [], None
    while True:
        r = world.worker.get(f"/children/{world.child_id}/entries",
                             params={"limit": 200} | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        entries += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    session_ids = {e["session_id"] for e in entries}
    assert len(session_ids) == 1, session_ids
    session_id = session_ids.pop()
    r = world.worker.get(f"/sessions/{session_id}/entries", params={"limit": 200})
    assert r.status_code == 200, r.text
    listed = r.json()["items"]
    keep = ("client_id", "kind", "source", "status", "captured_at", "retracted_at",
            "retracted_by", "prompt", "topic", "note", "text", "choices", "placements",
            "board_version")
    plan = world.worker.get(f"/children/{world.child_id}/plan", params={"latest": 50}).json()
    return {"entries": [{k: e.get(k) for k in keep} for e in listed],
            "plan": sorted(e["client_id"] for e in plan["latest_voice"])}


def expected_state(world: World, items: list[dict]) -> dict:
    entries = sorted((i for i in items if i["type"] == "entry"), key=lambda i: i["captured_at"])
    retract = next(i for i in items if i["type"] == "retract")
    return {"client_ids": [e["client_id"] for e in entries],
            "retracted": retract["entry_client_id"],
            "plan": sorted(e["client_id"] for e in entries
                           if e["client_id"] != retract["entry_client_id"])}


def assert_final_state(world: World, items: list[dict], app) -> dict:  # noqa: ANN001
    """Every item once, entries in captured_at order, the retracted one kept but out of
    the plan, the session ended; and no stray rows in the database."""
    state = final_state(world)
    expected = expected_state(world, items)
    assert [e["client_id"] for e in state["entries"]] == expected["client_ids"]
    captured = [e["captured_at"] for e in state["entries"]]
    assert captured == sorted(captured)
    for e in state["entries"]:
        if e["client_id"] == expected["retracted"]:
            assert e["status"] == "retracted" and e["retracted_at"]
            assert e["retracted_by"] == world.worker.user_id
        else:
            assert e["status"] == "active" and e["retracted_at"] is None
    assert state["plan"] == expected["plan"]
    session_item = next(i for i in items if i["type"] == "session")
    with new_session(app.state.engine) as db:
        sessions = db.exec(select(CaptureSession)).all()
        assert [str(s.client_id) for s in sessions] == [session_item["client_id"]]
        assert sessions[0].ended_at is not None
        assert db.exec(select(func.count()).select_from(VoiceEntry)).one() == \
            len(expected["client_ids"])
        receipts = db.exec(select(SyncReceipt.client_id)).all()
        assert sorted(str(r) for r in receipts) == sorted(i["client_id"] for i in items)
    return state


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


class Tus:
    """A tus 1.0 client as a tablet would use it: the worker's token, the device key."""

    def __init__(self, client, token: str, device: dict) -> None:  # noqa: ANN001
        self.client = client
        self.headers = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}",
                        "X-Device-Key": device["device_key"]}

    @staticmethod
    def meta(kind: str, **kw: str) -> dict:
        at = datetime.now(timezone.utc) - timedelta(hours=2)
        return {"client_id": str(uuid.uuid4()), "kind": kind, "captured_at": at.isoformat(),
                "source": "child_direct", "filename": f"{kind}.bin"} | kw

    def create_raw(self, length: int, meta: dict):  # noqa: ANN201
        return self.client.post("/api/v1/uploads/", headers=self.headers | {
            "Upload-Length": str(length),
            "Upload-Metadata": ",".join(f"{k} {_b64(v)}" for k, v in meta.items())})

    def create(self, length: int, meta: dict) -> str:
        r = self.create_raw(length, meta)
        assert r.status_code == 201, r.text
        return r.headers["location"]

    def head(self, url: str):  # noqa: ANN201
        return self.client.head(url, headers=self.headers)

    def patch(self, url: str, offset: int, chunk: bytes, algorithm: str | None = "sha1", *,
              digest_of: bytes | None = None, algorithm_header: str | None = None):  # noqa: ANN201
        headers = self.headers | {"Upload-Offset": str(offset),
                                  "Content-Type": "application/offset+octet-stream"}
        if algorithm_header:
            headers["Upload-Checksum"] = algorithm_header
        elif algorithm:
            digest = hashlib.new(algorithm, chunk if digest_of is None else digest_of).digest()
            headers["Upload-Checksum"] = f"{algorithm} {_b64(digest)}"
        return self.client.patch(url, content=chunk, headers=headers)
