"""A recorded offline visit, replayed every way a tablet's connection allows: in order,
shuffled, twice, ten times at once, cut at random points and resumed. The server ends in
the same state each time: every item once, in captured_at order, the retracted entry kept
but out of the plan."""

import asyncio
import random
from datetime import datetime

import httpx2
import pytest

from tests.support import World
from tests.sync_support import (Tablet, assert_final_state, enroll, final_state, mat_board,
                                recorded_visit)


@pytest.fixture
def visit(world: World) -> tuple[Tablet, list[dict]]:
    tablet = Tablet(world.worker, enroll(world.worker))
    return tablet, recorded_visit(world, [world.board, mat_board(world)])


def test_in_order_as_one_batch(world: World, app, visit) -> None:  # noqa: ANN001
    tablet, items = visit
    r = tablet.send(items)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["client_id"] for x in body["results"]] == [i["client_id"] for i in items]
    assert {x["status"] for x in body["results"]} == {"created"}, \
        [x["problem"] for x in body["results"] if x["problem"]]
    session = body["results"][0]["session"]
    assert session["client_id"] == items[0]["client_id"] and session["status"] == "open"
    ended = body["results"][-1]["session"]
    assert ended["id"] == session["id"] and ended["status"] == "ended"
    assert ended["ended_at"].startswith(items[-1]["ended_at"][:19])
    assert abs(body["clock_offset_ms"]) < 60_000
    first_entry = body["results"][1]["entry"]
    assert datetime.fromisoformat(first_entry["received_at"]) == \
        datetime.fromisoformat(body["received_at"])
    assert first_entry["clock_offset_ms"] == body["clock_offset_ms"]
    assert_final_state(world, items, app)


def test_shuffled_in_one_batch_and_across_batches(world: World, app, visit) -> None:  # noqa: ANN001
    tablet, items = visit
    rng = random.Random(11)
    shuffled = items[:]
    rng.shuffle(shuffled)
    r = tablet.send(shuffled)
    assert r.status_code == 200
    # One batch is applied in dependency order, so every item lands first time.
    assert {x["status"] for x in r.json()["results"]} == {"created"}
    first = assert_final_state(world, items, app)

    # The same queue shuffled again and sent in small batches: entries may now arrive
    # before their session ("retry later"), and are all answered duplicate in the end.
    rng.shuffle(shuffled)
    tablet.drain(shuffled, rng=rng, max_batch=7)
    assert assert_final_state(world, items, app) == first


def test_shuffled_small_batches_from_empty(world: World, app, visit) -> None:  # noqa: ANN001
    tablet, items = visit
    rng = random.Random(5)
    shuffled = items[:]
    rng.shuffle(shuffled)
    requests = tablet.drain(shuffled, rng=rng, max_batch=6)
    assert requests > 1
    assert_final_state(world, items, app)


def test_twice_answers_the_same(world: World, app, visit) -> None:  # noqa: ANN001
    tablet, items = visit
    first = tablet.send(items).json()["results"]
    state = assert_final_state(world, items, app)
    again = tablet.send(items).json()["results"]
    assert [x["status"] for x in again] == ["duplicate"] * len(items)
    for a, b in zip(first, again, strict=True):
        if a["entry"]:
            a_entry = dict(a["entry"])
            b_entry = dict(b["entry"])
            # The created answer was given before the retract in the same batch.
            if a_entry["client_id"] == items[-2]["entry_client_id"] and a["type"] == "entry":
                assert b_entry["status"] == "retracted"
                continue
            assert a_entry == b_entry
        if a["session"]:
            assert a["session"]["id"] == b["session"]["id"]
    assert assert_final_state(world, items, app) == state


def test_ten_at_once(world: World, app, visit) -> None:  # noqa: ANN001
    tablet, items = visit
    headers = {"Authorization": f"Bearer {world.worker.token}"} | tablet.headers

    async def send_all() -> list:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://tablet") as c:
            return await asyncio.gather(*[
                c.post("/api/v1/sync", json=tablet.body(items), headers=headers)
                for _ in range(10)])

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    per_item = list(zip(*[r.json()["results"] for r in responses], strict=True))
    for item, answers in zip(items, per_item, strict=True):
        statuses = sorted(a["status"] for a in answers)
        assert statuses == ["created"] + ["duplicate"] * 9, (item["type"], statuses)
        ids = {(a["entry"] or a["session"])["id"] for a in answers}
        assert len(ids) == 1
    assert_final_state(world, items, app)


def test_ten_at_once_across_two_devices_and_the_single_endpoint(world: World, app,
                                                                visit) -> None:  # noqa: ANN001
    """The same queue from two enrolled tablets of one worker (say one restored from the
    other's backup) and, for its first entries, the single-entry endpoint, all at once:
    the unique constraints, not the device, keep each item once."""
    tablet, items = visit
    other = Tablet(world.worker, enroll(world.worker, "spare tablet"))
    session = tablet.send(items[:1]).json()["results"][0]["session"]
    worker_headers = {"Authorization": f"Bearer {world.worker.token}"}
    singles = [{k: v for k, v in i.items() if k not in ("type", "session_client_id")}
               for i in items[1:6]]

    async def send_all() -> list:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://tablet") as c:
            calls = [c.post("/api/v1/sync", json=t.body(items), headers=worker_headers | t.headers)
                     for t in (tablet, other) * 5]
            calls += [c.post(f"/api/v1/sessions/{session['id']}/entries", json=s,
                             headers=worker_headers) for s in singles]
            return await asyncio.gather(*calls)

    responses = asyncio.run(send_all())
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    batches = [r.json()["results"] for r in responses[:10]]
    for index, item in enumerate(items):
        statuses = [b[index]["status"] for b in batches]
        assert "rejected" not in statuses, [b[index]["problem"] for b in batches]
    created_singly = sum(r.status_code == 201 for r in responses[10:])
    created_in_batches = sum(b[i]["status"] == "created" for b in batches
                             for i in range(1, 6))
    assert created_singly + created_in_batches == 5
    assert_final_state(world, items, app)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cut_at_random_points_and_resumed(world: World, app, visit, seed: int) -> None:  # noqa: ANN001
    tablet, items = visit
    rng = random.Random(seed)
    tablet.drain(items, rng=rng, max_batch=12, cut=0.4)
    assert_final_state(world, items, app)
    # A restored tablet (its queue back to the whole visit) asks what the server holds,
    # and owes nothing.
    assert tablet.held() == {i["client_id"] for i in items}
    assert final_state(world)["entries"]


def test_a_copy_stored_since_the_batch_looked_is_a_duplicate(world: World, app, visit,
                                                              monkeypatch) -> None:  # noqa: ANN001
    """What a concurrent copy does, made certain: the batch does not see what is already
    stored (as if another request stored it after this one looked), so every insert meets
    the unique constraints, and every item is still answered `duplicate` and stored once."""
    from app.services.sync import batch as sync

    tablet, items = visit
    first = tablet.send(items).json()["results"]
    state = assert_final_state(world, items, app)
    monkeypatch.setattr(sync._Batch, "prefetch", lambda self, items: None)
    again = tablet.send(items).json()["results"]
    assert [x["status"] for x in again] == ["duplicate"] * len(items), \
        [x["problem"] for x in again if x["problem"]]
    assert [((x["entry"] or x["session"])["id"]) for x in again] == \
        [((x["entry"] or x["session"])["id"]) for x in first]
    assert assert_final_state(world, items, app) == state
    # Some held, some new: the held ones are duplicates, the new ones land once.
    more = recorded_visit(world, [world.board, mat_board(world)], entries=3, seed=9)
    mixed = tablet.send(items[1:5] + more).json()["results"]
    assert [x["status"] for x in mixed] == ["duplicate"] * 4 + ["created"] * len(more)
    assert len(world.worker.get(f"/children/{world.child_id}/entries",
                                params={"limit": 200}).json()["items"]) == 43


def test_the_audit_chain_stays_whole(world: World, app, visit) -> None:  # noqa: ANN001
    from sqlmodel import select

    from app.core.db import new_session
    from app.models.audit import AuditEvent
    from app.services.audit import GENESIS_HASH, event_hash

    tablet, items = visit
    tablet.send(items)
    tablet.send(items)
    with new_session(app.state.engine) as db:
        events = db.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    prev: dict[str, str] = {}  # each chain (a child's, the council's) links on its own
    for event in events:
        assert event.prev_hash == prev.get(event.chain, GENESIS_HASH)
        assert event_hash(event) == event.hash
        prev[event.chain] = event.hash
    actions = [e.action for e in events]
    assert actions.count("entry.create") >= 40 and actions.count("entry.retract") == 1
    assert actions.count("sync.resend") == 1 and actions.count("session.end") == 1


@pytest.mark.parametrize("mode", ["in order", "twice", "cut and resumed"])
def test_the_visit_with_a_photo_and_a_recording_via_tus(world: World, app, visit,
                                                        mode: str) -> None:  # noqa: ANN001
    """The recorded visit with one photo and one recording sent by tus: every item once,
    in captured_at order, the media intact (the upload's checksum is the sample's)."""
    import hashlib
    from datetime import timedelta

    from tests.media_support import sample
    from tests.sync_support import Tus

    tablet, items = visit
    session_cid = items[0]["client_id"]
    started = datetime.fromisoformat(items[0]["started_at"])
    tus = Tus(world.client, world.worker.token, tablet.device)
    media = {"photo": (sample("photo_gps_rotated.jpg"), Tus.meta(
                 "photo", session_client_id=session_cid, filename="swing.jpg",
                 captured_at=(started + timedelta(seconds=75)).isoformat())),
             "audio": (sample("voice_ipad.m4a"), Tus.meta(
                 "audio", session_client_id=session_cid, filename="voice.m4a",
                 captured_at=(started + timedelta(seconds=615)).isoformat()))}
    rng = random.Random(3)

    def send_media() -> dict[str, str]:
        entry_ids = {}
        for kind, (data, meta) in media.items():
            url = tus.create(len(data), meta)
            if mode == "cut and resumed":
                offset = 0
                for cut in (0.3, 0.8):
                    end = int(len(data) * cut)
                    tus.patch(url, offset, data[offset:end], "sha1")  # answer lost
                    offset = int(tus.head(url).headers["upload-offset"])
                    assert offset == end
                r = tus.patch(url, offset, data[offset:], "sha256")
            else:
                r = tus.patch(url, 0, data, "sha1")
            assert r.status_code == 204, r.text
            entry_ids[kind] = r.headers["x-entry-id"]
        return entry_ids

    if mode == "cut and resumed":
        tablet.drain(items, rng=rng, max_batch=12, cut=0.4)
    else:
        tablet.send(items)
    entry_ids = send_media()
    if mode == "twice":
        assert {x["status"] for x in tablet.send(items).json()["results"]} == {"duplicate"}
        assert send_media() == entry_ids
    entries = world.worker.get(f"/children/{world.child_id}/entries",
                               params={"limit": 200}).json()["items"]
    assert len(entries) == 42
    listed = world.worker.get(f"/sessions/{entries[0]['session_id']}/entries",
                              params={"limit": 200}).json()["items"]
    captured = [e["captured_at"] for e in listed]
    assert captured == sorted(captured)
    for kind, (data, meta) in media.items():
        shown = next(e for e in listed if e["client_id"] == meta["client_id"])
        assert shown["id"] == entry_ids[kind] and shown["kind"] == kind
        assert [m["upload_sha256"] for m in shown["media"]] == [hashlib.sha256(data).hexdigest()]
    assert tablet.held() == {i["client_id"] for i in items} | \
        {meta["client_id"] for _, meta in media.values()}
    assert tablet.state()["incomplete_uploads"] == []
