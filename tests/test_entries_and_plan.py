"""Entries of every kind, their filters and pages, and how the plan picks the latest voice."""

import uuid
from datetime import datetime, timedelta, timezone

from tests.support import World, assert_problem, symbols_entry

# Within the world's consent, which runs from yesterday.
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def test_every_kind_of_entry_is_stored_as_said(world: World) -> None:
    session = world.open_session()
    tablet, path = world.capture(session), f"/sessions/{session['id']}/entries"
    mat = tablet.post(path, json={
        "kind": "mat", "client_id": str(uuid.uuid4()), "captured_at": _at(1),
        "source": "child_assisted", "prompt": "What do you think of these?", "topic": "week",
        "board_id": world.board["id"], "board_version": 1,
        "scale": ["like", "not sure", "don't like"],
        "placements": [{"button_id": "happy", "scale_value": "like"},
                       {"button_id": "scared", "scale_value": "don't like"}]})
    assert mat.status_code == 201, mat.text
    assert mat.json()["placements"] == [
        {"button_id": "happy", "label": "happy", "scale_value": "like"},
        {"button_id": "scared", "label": "scared", "scale_value": "don't like"}]
    assert mat.json()["scale"] == ["like", "not sure", "don't like"]
    text = tablet.post(path, json={"kind": "text", "client_id": str(uuid.uuid4()),
                                   "captured_at": _at(2), "source": "child_direct",
                                   "text": "I want to see my nan"})
    assert text.status_code == 201 and text.json()["text"] == "I want to see my nan"
    # The tablet's clock is kept as sent (in UTC); the server's beside it.
    local = (T0 + timedelta(minutes=3)).astimezone(timezone(timedelta(hours=1)))
    sent = tablet.post(path, json=symbols_entry(world.board, ["sad"],
                                                captured_at=local.isoformat()))
    assert "+01:00" in local.isoformat()
    assert datetime.fromisoformat(sent.json()["captured_at"]) == T0 + timedelta(minutes=3)
    assert sent.json()["captured_at"].endswith("Z") or "+00:00" in sent.json()["captured_at"]
    received = datetime.fromisoformat(sent.json()["received_at"])
    assert abs(received - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_entries_filter_and_page_newest_first(world: World) -> None:
    session = world.open_session()
    tablet, path = world.capture(session), f"/sessions/{session['id']}/entries"
    for i in range(7):
        tablet.post(path, json=symbols_entry(
            world.board, ["happy"], captured_at=_at(i), topic="school" if i % 2 else "home",
            source="child_direct" if i < 5 else "child_assisted"))
    all_entries = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert [e["captured_at"] for e in all_entries] == sorted(
        (e["captured_at"] for e in all_entries), reverse=True)
    assert len(all_entries) == 7

    base = f"/children/{world.child_id}/entries"
    assert len(world.worker.get(base, params={"topic": "school"}).json()["items"]) == 3
    assert len(world.worker.get(base, params={"source": "child_assisted"}).json()["items"]) == 2
    assert len(world.worker.get(base, params={"kind": "symbols"}).json()["items"]) == 7
    assert world.worker.get(base, params={"kind": "text"}).json()["items"] == []
    window = world.worker.get(base, params={"since": _at(2), "until": _at(4)}).json()["items"]
    assert [datetime.fromisoformat(e["captured_at"]) for e in window] == [
        datetime.fromisoformat(_at(3)), datetime.fromisoformat(_at(2))]
    assert_problem(world.worker.get(base, params={"kind": "dance"}), 422)

    seen, cursor = [], None
    while True:
        page = world.worker.get(base, params={"limit": 3} | ({"cursor": cursor} if cursor else {}))
        seen += [e["id"] for e in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in all_entries]


def test_latest_voice_is_the_newest_n_active_plan_entries(world: World) -> None:
    session = world.open_session()
    tablet, path = world.capture(session), f"/sessions/{session['id']}/entries"
    ids = [tablet.post(path, json=symbols_entry(world.board, ["happy"], captured_at=_at(i)))
           .json()["id"] for i in range(12)]
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert [e["id"] for e in plan["latest_voice"]] == list(reversed(ids))[:10]
    assert plan["updated_at"]
    plan = world.worker.get(f"/children/{world.child_id}/plan", params={"latest": 3}).json()
    assert [e["id"] for e in plan["latest_voice"]] == list(reversed(ids))[:3]
    assert_problem(world.worker.get(f"/children/{world.child_id}/plan",
                                    params={"latest": 0}), 422)


def test_plan_sections_and_versions(world: World) -> None:
    plan_path = f"/children/{world.child_id}/plan"
    assert_problem(world.worker.put(f"{plan_path}/sections/my_secrets", json={"text": "x"}), 422)
    other_child = world.other_worker.post("/children", json={
        "preferred_name": "Sky", "date_of_birth": "2014-01-01",
        "team_id": world.other_team_id}).json()
    world.other_worker.post(f"/children/{other_child['id']}/consents", json={
        "given_by": "child", "scopes": ["symbols", "plan"], "method": "symbols",
        "child_assent": "agreed"})
    # Another child's entry cannot be pinned into this plan.
    r = world.worker.put(f"{plan_path}/sections/about_me",
                         json={"text": "", "pinned_entry_ids": [str(uuid.uuid4())]})
    assert_problem(r, 422)
    r = world.worker.put(f"{plan_path}/sections/about_me", json={"text": "I am nine."})
    assert r.status_code == 200
    assert world.worker.post(f"{plan_path}/versions").json()["version"] == 1
    world.worker.put(f"{plan_path}/sections/about_me", json={"text": "I am ten."})
    assert world.worker.post(f"{plan_path}/versions").json()["version"] == 2
    versions = world.manager.get(f"{plan_path}/versions").json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    texts = [next(s["text"] for s in world.manager.get(f"{plan_path}/versions/{n}")
                  .json()["plan"]["sections"] if s["key"] == "about_me") for n in (1, 2)]
    assert texts == ["I am nine.", "I am ten."]
    assert_problem(world.manager.get(f"{plan_path}/versions/3"), 404)
