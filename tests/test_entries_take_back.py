"""The worker takes an entry back or corrects it online. Nothing a child said is edited:
a retraction marks the entry, a correction is a new entry that supersedes the old one,
both audited and both in the entry's history."""

import uuid
from datetime import datetime, timezone

from tests.support import World, assert_problem, symbols_entry


def _said(world: World, session: dict, buttons: list[str]) -> dict:
    r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, buttons))
    assert r.status_code == 201, r.text
    return r.json()


def _actions(world: World) -> list[tuple[str, str]]:
    items = world.manager.get(f"/children/{world.child_id}/audit",
                              params={"limit": 200}).json()["items"]
    return [(e["action"], e["object_id"]) for e in items]


def _plan_ids(world: World) -> list[str]:
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    return [e["id"] for e in plan["latest_voice"]]


def test_the_worker_retracts_an_entry_online(world: World) -> None:
    session = world.open_session()
    kept, taken = _said(world, session, ["happy"]), _said(world, session, ["angry"])
    r = world.worker.post(f"/entries/{taken['id']}/retract",
                          json={"reason": "Pressed by mistake, Robin showed"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "retracted" and body["retracted_by"] == world.worker.user_id
    assert body["retraction_reason"] == "Pressed by mistake, Robin showed"
    assert body["choices"][0]["button_id"] == "angry"              # kept as it was said
    shown = world.worker.get(f"/entries/{taken['id']}").json()
    assert shown["status"] == "retracted" and shown["retracted_at"]
    assert shown["retraction_reason"] == body["retraction_reason"]
    assert _plan_ids(world) == [kept["id"]]
    assert ("entry.retract", taken["id"]) in _actions(world)
    # Asking again answers it as it stands; the first retraction stands.
    again = world.worker.post(f"/entries/{taken['id']}/retract", json={"reason": "again"})
    assert again.status_code == 200 and again.json()["retraction_reason"] == \
        body["retraction_reason"]
    assert [a for a in _actions(world) if a[0] == "entry.retract"] == \
        [("entry.retract", taken["id"])]


def test_who_may_take_back(world: World) -> None:
    session = world.open_session()
    entry = _said(world, session, ["sad"])
    assert_problem(world.worker.post(f"/entries/{entry['id']}/retract", json={}), 422)
    for api in (world.other_worker, world.colleague, world.admin):
        assert_problem(api.post(f"/entries/{entry['id']}/retract", json={"reason": "x"}), 404)
        assert_problem(api.post(f"/entries/{entry['id']}/correct", json={
            "reason": "x", "entry": symbols_entry(world.board, ["happy"])}), 404)
    assert_problem(world.manager.post(f"/entries/{entry['id']}/retract",
                                      json={"reason": "x"}), 403)
    assert_problem(world.capture(session).post(f"/entries/{entry['id']}/retract",
                                               json={"reason": "x"}), 403)
    assert world.worker.get(f"/entries/{entry['id']}").json()["status"] == "active"


def test_a_correction_supersedes_the_old_entry_which_stays(world: World) -> None:
    session = world.open_session()
    old = _said(world, session, ["sad"])
    correction = {"reason": "Robin chose again with help: it was 'calm'",
                  "entry": symbols_entry(world.board, ["calm"], source="child_assisted")}
    r = world.worker.post(f"/entries/{old['id']}/correct", json=correction)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["supersedes"] == old["id"] and new["status"] == "active"
    assert new["correction_reason"] == correction["reason"]
    assert new["session_id"] == session["id"] and new["choices"][0]["button_id"] == "calm"
    before = world.worker.get(f"/entries/{old['id']}").json()
    assert before["status"] == "superseded" and before["superseded_by"] == new["id"]
    assert before["superseded_at"] and before["choices"][0]["button_id"] == "sad"
    assert _plan_ids(world) == [new["id"]]
    listed = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert {e["id"]: e["status"] for e in listed} == {old["id"]: "superseded",
                                                       new["id"]: "active"}
    actions = _actions(world)
    assert ("entry.correct", old["id"]) in actions and ("entry.create", new["id"]) in actions

    # A resend of the same correction answers it; a second correction of the old one, or
    # a correction of a retracted entry, is refused.
    again = world.worker.post(f"/entries/{old['id']}/correct", json=correction)
    assert again.status_code == 200 and again.json()["id"] == new["id"]
    other = {"reason": "no", "entry": symbols_entry(world.board, ["happy"])}
    assert assert_problem(world.worker.post(f"/entries/{old['id']}/correct", json=other),
                          409)["type"].endswith("entry-not-active")
    retracted = _said(world, session, ["worried"])
    world.worker.post(f"/entries/{retracted['id']}/retract", json={"reason": "mistake"})
    assert_problem(world.worker.post(f"/entries/{retracted['id']}/correct", json=other), 409)


def test_a_correction_passes_the_rules_of_any_entry(world: World) -> None:
    session = world.open_session()
    old = _said(world, session, ["sad"])
    wrong_button = {"reason": "x", "entry": symbols_entry(world.board, ["flying"])}
    assert_problem(world.worker.post(f"/entries/{old['id']}/correct", json=wrong_button), 422)
    r = world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "no"})
    assert r.status_code == 200
    no_consent = {"reason": "x", "entry": symbols_entry(world.board, ["calm"])}
    assert_problem(world.worker.post(f"/entries/{old['id']}/correct", json=no_consent), 403)
    observation = {"reason": "My note was on the wrong visit", "entry": {
        "kind": "observation", "client_id": str(uuid.uuid4()), "source": "adult_interpretation",
        "captured_at": datetime.now(timezone.utc).isoformat(), "text": "Calm, smiling"}}
    r = world.worker.post(f"/entries/{old['id']}/correct", json=observation)
    assert r.status_code == 201, r.text      # the worker's own record needs no capture consent
    assert world.worker.get(f"/entries/{old['id']}").json()["status"] == "superseded"
