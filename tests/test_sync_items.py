"""Sync items one by one: the same rules as the single endpoints, a bad item answered
`rejected` with a problem without failing the rest, retracts, session ends, the batch
limit, the tablet's clock, and /sync/state."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import func, select

from app.core.db import new_session
from app.models.capture import VoiceEntry
from app.models.sync import SyncReceipt
from tests.support import World, assert_problem, consent_body, symbols_entry
from tests.sync_support import Tablet, enroll, mat_board, recorded_visit


@pytest.fixture
def tablet(world: World) -> Tablet:
    return Tablet(world.worker, enroll(world.worker))


def _session_item(world: World, **kw) -> dict:  # noqa: ANN003
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    return {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
            "setting": "home", "board_ids": [world.board["id"]],
            "started_at": started.isoformat()} | kw


def _entry_item(world: World, session: dict, buttons: list[str] | None = None,
                **kw) -> dict:  # noqa: ANN003
    at = datetime.fromisoformat(session["started_at"]) + timedelta(minutes=1)
    return {"type": "entry", "session_client_id": session["client_id"]} | \
        symbols_entry(world.board, buttons or ["happy"], captured_at=at.isoformat()) | kw


def _problem(result: dict, status: int, slug: str) -> dict:
    assert result["status"] == "rejected", result
    problem = result["problem"]
    assert problem["status"] == status and problem["type"].endswith(slug), problem
    assert problem["title"] and problem["detail"]
    return problem


def _entries(app) -> int:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        return db.exec(select(func.count()).select_from(VoiceEntry)).one()


def test_one_bad_item_never_fails_the_batch(world: World, tablet: Tablet, app) -> None:  # noqa: ANN001
    session = _session_item(world)
    good = _entry_item(world, session)
    no_kind = {k: v for k, v in _entry_item(world, session).items() if k != "kind"}
    items = [
        session,
        no_kind,
        "not an object",
        {"type": "teleport", "client_id": str(uuid.uuid4())},
        _entry_item(world, session, board_version=9),
        _entry_item(world, session, ["flying"]),
        good,
        good | {"button_ids": ["sad"]},                          # same client_id, other words
        {"type": "entry", "client_id": str(uuid.uuid4()), "kind": "text", "text": "hi",
         "source": "child_direct", "captured_at": good["captured_at"]},   # no session named
        {"type": "retract", "client_id": session["client_id"],   # a client_id already used
         "entry_client_id": good["client_id"], "retracted_at": good["captured_at"]},
    ]
    r = tablet.send(items)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(items)
    assert [x["status"] for x in results] == ["created", "rejected", "rejected", "rejected",
                                              "rejected", "rejected", "created", "rejected",
                                              "rejected", "rejected"]
    missing = _problem(results[1], 422, "invalid")
    assert missing["errors"][0]["loc"][:3] == ["body", "items", 1]
    assert results[2]["client_id"] is None
    _problem(results[2], 422, "invalid")
    assert _problem(results[3], 422, "invalid")["errors"][0]["loc"] == \
        ["body", "items", 3, "type"]
    assert "no version 9" in _problem(results[4], 422, "invalid")["detail"]
    assert "flying" in _problem(results[5], 422, "invalid")["detail"]
    _problem(results[7], 409, "client-id-reused")
    assert _problem(results[8], 422, "invalid")["errors"][0]["loc"][:3] == ["body", "items", 8]
    _problem(results[9], 409, "client-id-reused")
    assert _entries(app) == 1


def test_consent_at_captured_at_decides(world: World, tablet: Tablet, app) -> None:  # noqa: ANN001
    session = _session_item(world, started_at=(datetime.now(timezone.utc) - timedelta(days=3))
                            .isoformat())
    before_consent = _entry_item(world, session)                     # captured 3 days ago
    observation = {"type": "entry", "session_client_id": session["client_id"],
                   "client_id": str(uuid.uuid4()), "kind": "observation",
                   "source": "adult_interpretation", "text": "synthetic: smiled",
                   "captured_at": before_consent["captured_at"]}
    results = tablet.send([session, before_consent, observation]).json()["results"]
    assert [x["status"] for x in results] == ["created", "rejected", "created"]
    assert _problem(results[1], 403, "consent-required")["missing_scope"] == "symbols"
    # After the consent is withdrawn, nothing needing it is accepted, whatever the clock says.
    assert world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                             json={"reason": "synthetic"}).status_code == 200
    recent = _entry_item(world, session, captured_at=datetime.now(timezone.utc).isoformat())
    _problem(tablet.send([recent]).json()["results"][0], 403, "consent-required")
    assert _entries(app) == 1


def test_a_child_no_longer_allocated(world: World, tablet: Tablet, app) -> None:  # noqa: ANN001
    online = world.open_session()
    offline = _session_item(world)
    # While the tablet was offline, the manager moved the child to a colleague.
    assert world.manager.post(f"/children/{world.child_id}/allocations",
                              json={"user_id": world.colleague.user_id}).status_code == 201
    by_id = {"type": "entry", "session_id": online["id"]} | symbols_entry(world.board, ["sad"])
    results = tablet.send([offline, _entry_item(world, offline), by_id]).json()["results"]
    _problem(results[0], 404, "not-found")
    _problem(results[1], 409, "session-rejected")
    _problem(results[2], 404, "not-found")
    assert _entries(app) == 0


def test_the_batch_limit(world: World, tablet: Tablet, app) -> None:  # noqa: ANN001
    limit = app.state.settings.sync_batch_max_items
    assert limit == 500
    session = _session_item(world)
    items = [session] + [_entry_item(world, session) for _ in range(limit)]
    problem = assert_problem(tablet.send(items), 422)
    assert problem["type"].endswith("batch-too-large") and problem["max_items"] == limit
    assert _entries(app) == 0
    results = tablet.send(items[:limit]).json()["results"]
    assert {x["status"] for x in results} == {"created"}


def test_retract_keeps_the_entry_and_takes_it_out_of_the_plan(world: World, tablet: Tablet,
                                                              app) -> None:  # noqa: ANN001
    session = _session_item(world)
    kept, taken_back = _entry_item(world, session), _entry_item(world, session, ["sad"])
    results = tablet.send([session, kept, taken_back]).json()["results"]
    entry_id = results[2]["entry"]["id"]
    # The worker pins it into the plan; then the child says "no, not that one".
    assert world.worker.put(f"/children/{world.child_id}/plan/sections/my_wishes_and_feelings",
                            json={"text": "", "pinned_entry_ids": [entry_id]}).status_code == 200
    at = (datetime.fromisoformat(taken_back["captured_at"]) + timedelta(seconds=20)).isoformat()
    retract = {"type": "retract", "client_id": str(uuid.uuid4()),
               "entry_client_id": taken_back["client_id"], "retracted_at": at}
    result = tablet.send([retract]).json()["results"][0]
    assert result["status"] == "created" and result["entry"]["status"] == "retracted"
    entry = world.worker.get(f"/entries/{entry_id}").json()
    assert entry["status"] == "retracted" and entry["retracted_by"] == world.worker.user_id
    assert datetime.fromisoformat(entry["retracted_at"]) == datetime.fromisoformat(at)
    assert entry["choices"][0]["button_id"] == "sad"            # kept, as it was
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert [e["client_id"] for e in plan["latest_voice"]] == [kept["client_id"]]
    section = next(s for s in plan["sections"] if s["key"] == "my_wishes_and_feelings")
    assert section["pinned_entries"] == []
    listed = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert {e["status"] for e in listed} == {"active", "retracted"}
    # The same retract again, or another retract of it, is a duplicate; the first stands.
    again = tablet.send([retract, retract | {"client_id": str(uuid.uuid4()),
                                             "retracted_at": datetime.now(timezone.utc)
                                             .isoformat()}]).json()["results"]
    assert [x["status"] for x in again] == ["duplicate", "duplicate"]
    assert datetime.fromisoformat(again[1]["entry"]["retracted_at"]) == \
        datetime.fromisoformat(at)
    # A retract before the words were said is a mistake on the tablet.
    early = retract | {"client_id": str(uuid.uuid4()), "entry_client_id": kept["client_id"],
                       "retracted_at": session["started_at"]}
    _problem(tablet.send([early]).json()["results"][0], 422, "invalid")
    # Someone else's child: not visible.
    other = Tablet(world.other_worker, enroll(world.other_worker))
    steal = retract | {"client_id": str(uuid.uuid4()), "entry_client_id": kept["client_id"]}
    _problem(other.send([steal]).json()["results"][0], 404, "not-found")
    assert _entries(app) == 2


def test_session_end_first_one_stands(world: World, tablet: Tablet) -> None:
    online = world.open_session()
    ended_at = datetime.now(timezone.utc).isoformat()
    end = {"type": "session_end", "client_id": str(uuid.uuid4()), "session_id": online["id"],
           "ended_at": ended_at}
    later = end | {"client_id": str(uuid.uuid4()),
                   "ended_at": (datetime.now(timezone.utc) + timedelta(minutes=2)).isoformat()}
    results = tablet.send([end, later, end]).json()["results"]
    assert [x["status"] for x in results] == ["created", "duplicate", "duplicate"]
    assert {datetime.fromisoformat(x["session"]["ended_at"]) for x in results} == \
        {datetime.fromisoformat(ended_at)}
    # The capture token of a session ended by sync stops working.
    assert world.capture(online).get(f"/sessions/{online['id']}/boards").status_code == 401
    both = {"type": "session_end", "client_id": str(uuid.uuid4()), "session_id": online["id"],
            "session_client_id": str(uuid.uuid4()), "ended_at": ended_at}
    _problem(tablet.send([both]).json()["results"][0], 422, "invalid")


def test_received_at_and_the_tablets_clock_are_recorded(world: World, tablet: Tablet,
                                                        app) -> None:  # noqa: ANN001
    session = _session_item(world)
    entry = _entry_item(world, session)
    # The tablet's clock is five minutes slow.
    sent_at = datetime.now(timezone.utc) - timedelta(minutes=5)
    body = tablet.body([session, entry]) | {"sent_at": sent_at.isoformat()}
    r = world.worker.post("/sync", json=body, headers=tablet.headers).json()
    assert 299_000 < r["clock_offset_ms"] < 310_000
    stored = r["results"][1]["entry"]
    assert stored["clock_offset_ms"] == r["clock_offset_ms"]
    assert stored["captured_at"].startswith(entry["captured_at"][:19])   # kept as the tablet said
    assert datetime.fromisoformat(stored["received_at"]) == datetime.fromisoformat(
        r["received_at"])
    assert r["results"][0]["session"]["client_id"] == session["client_id"]
    with new_session(app.state.engine) as db:
        receipts = db.exec(select(SyncReceipt)).all()
    assert {x.clock_offset_ms for x in receipts} == {r["clock_offset_ms"]}
    assert {x.item_type for x in receipts} == {"session", "entry"}


def test_sync_state_pages_with_a_cursor(world: World, tablet: Tablet) -> None:
    items = recorded_visit(world, [world.board, mat_board(world)], entries=6)
    tablet.send(items[:3])
    first = tablet.state()
    assert first["held"] == [i["client_id"] for i in items[:3]] and not first["more"]
    assert first["incomplete_uploads"] == []
    tablet.send(items[3:])
    since = tablet.state(first["cursor"])
    # Receipts come in the order the server stored them: one batch in dependency order.
    assert set(since["held"]) == {i["client_id"] for i in items[3:]}
    assert tablet.state(since["cursor"])["held"] == []
    r = world.worker.get("/sync/state", params={"device_id": tablet.device["id"], "limit": 4},
                         headers=tablet.headers).json()
    assert len(r["held"]) == 4 and r["more"]
    assert tablet.held() == {i["client_id"] for i in items}
    assert_problem(world.worker.get("/sync/state", params={"device_id": tablet.device["id"],
                                                           "cursor": "bm9wZQ=="},
                                    headers=tablet.headers), 422)
    # Another worker's tablet does not learn this one's items.
    other = Tablet(world.other_worker, enroll(world.other_worker))
    assert other.state()["held"] == []


def test_an_offline_session_is_listed_and_ordered_by_captured_at(world: World,
                                                                 tablet: Tablet) -> None:
    session = _session_item(world)
    start = datetime.fromisoformat(session["started_at"])
    entries = [_entry_item(world, session, captured_at=(start + timedelta(minutes=m))
                           .isoformat()) for m in (9, 2, 5, 1)]
    results = tablet.send([session, *entries]).json()["results"]
    sid = results[0]["session"]["id"]
    listed = world.worker.get(f"/sessions/{sid}/entries").json()["items"]
    assert [e["client_id"] for e in listed] == \
        [entries[i]["client_id"] for i in (3, 1, 2, 0)]
    # A worker who may not see the child does not see the session either.
    assert_problem(world.other_worker.get(f"/sessions/{sid}/entries"), 404)
    # The single-entry endpoint adds to it too, by the same rules.
    late = symbols_entry(world.board, ["calm"], captured_at=(start + timedelta(minutes=3))
                         .isoformat())
    assert world.worker.post(f"/sessions/{sid}/entries", json=late).status_code == 201
    bad = symbols_entry(world.board, ["calm"], board_version=7)
    assert_problem(world.worker.post(f"/sessions/{sid}/entries", json=bad), 422)
    listed = world.worker.get(f"/sessions/{sid}/entries").json()["items"]
    assert [e["client_id"] for e in listed][2] == late["client_id"]


def test_a_consent_recorded_later_does_not_cover_earlier_words(world: World,
                                                               tablet: Tablet) -> None:
    """An offline capture is accepted on the consent in force at its captured_at, not on
    one recorded by the time it syncs."""
    world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "synthetic"})
    fresh = consent_body(valid_from=datetime.now(timezone.utc).isoformat())
    assert world.worker.post(f"/children/{world.child_id}/consents", json=fresh).status_code \
        == 201
    session = _session_item(world)                        # started an hour ago
    earlier = _entry_item(world, session)
    now = _entry_item(world, session, captured_at=(datetime.now(timezone.utc) +
                                                   timedelta(seconds=1)).isoformat())
    results = tablet.send([session, earlier, now]).json()["results"]
    assert [x["status"] for x in results] == ["created", "rejected", "created"]
    _problem(results[1], 403, "consent-required")


def test_a_safeguarding_signal_synced_offline_raises_one_alert(world: World,
                                                              tablet: Tablet) -> None:
    """The same rule as online: a marked symbol is kept (even with no consent covering it)
    and raises exactly one alert, however often the batch is resent."""
    from tests.test_trust_safeguarding import marked_board_body

    board = world.admin.post("/boards", json=marked_board_body()).json()
    world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "synthetic"})
    session = _session_item(world, board_ids=[board["id"]])
    at = (datetime.fromisoformat(session["started_at"]) + timedelta(minutes=1)).isoformat()
    hurt = {"type": "entry", "session_client_id": session["client_id"]} | \
        symbols_entry(board, ["hurt"], captured_at=at)
    happy = {"type": "entry", "session_client_id": session["client_id"]} | \
        symbols_entry(board, ["happy"], captured_at=at)
    for _ in range(2):
        results = tablet.send([session, hurt, happy]).json()["results"]
    assert results[1]["status"] == "duplicate" and results[1]["entry"]["consent_id"] is None
    _problem(results[2], 403, "consent-required")
    alerts = world.worker.get("/alerts").json()["items"]
    assert [a["entry_id"] for a in alerts] == [results[1]["entry"]["id"]]
