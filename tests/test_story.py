"""The capture loop as a story: a worker signs in, opens a session, hands the tablet to the
child, the child chooses symbols, and the child's My plan shows what they said."""

from datetime import datetime, timezone

from tests.support import World, assert_problem, symbols_entry


def test_a_childs_symbol_choices_reach_their_plan(world: World) -> None:
    worker, child_id = world.worker, world.child_id

    # The worker opens a session on the tablet for Robin, with the feelings board.
    r = worker.post(f"/children/{child_id}/sessions",
                    json={"setting": "school", "purpose": "How Robin feels about school",
                          "board_ids": [world.board["id"]], "device": "ipad-07"})
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["child_id"] == child_id and session["status"] == "open"
    assert session["capture_token"] and session["expires_at"]
    assert [b["id"] for b in session["boards"]] == [world.board["id"]]

    # In child mode the tablet holds only the capture token.
    tablet = world.capture(session)
    r = tablet.get(f"/sessions/{session['id']}/boards")
    assert r.status_code == 200
    boards = r.json()["boards"]
    assert boards[0]["buttons"][0]["label"] == "happy"
    assert "labels_shown" in r.json()["board_preferences"]

    # Robin chooses "happy" then "calm".
    r = tablet.post(f"/sessions/{session['id']}/entries",
                    json=symbols_entry(world.board, ["happy", "calm"],
                                       prompt="How do you feel at school?", topic="school"))
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["choices"] == [
        {"button_id": "happy", "label": "happy", "vocalization": "I feel happy"},
        {"button_id": "calm", "label": "calm", "vocalization": "I feel calm"}]
    assert entry["consent_id"] == world.consent["id"]
    assert entry["source"] == "child_direct" and entry["status"] == "active"
    assert entry["received_at"] and entry["session_id"] == session["id"]

    # The worker adds what they saw.
    r = worker.post(f"/sessions/{session['id']}/entries", json={
        "kind": "observation", "client_id": "5a0e8f1c-1111-4111-8111-111111111111",
        "captured_at": datetime.now(timezone.utc).isoformat(),
        "source": "adult_interpretation", "text": "Rocked and hummed when choosing happy."})
    assert r.status_code == 201, r.text
    observation = r.json()

    # The session ends; the tablet can no longer add anything.
    assert worker.post(f"/sessions/{session['id']}/end").json()["status"] == "ended"
    assert_problem(tablet.post(f"/sessions/{session['id']}/entries",
                               json=symbols_entry(world.board, ["sad"])), 401)

    # Robin's plan shows the latest of what they said, newest first.
    plan = worker.get(f"/children/{child_id}/plan").json()
    assert [e["id"] for e in plan["latest_voice"]] == [observation["id"], entry["id"]]
    assert [s["key"] for s in plan["sections"]] == [
        "about_me", "important_to_me", "my_goals", "how_to_support_me",
        "my_wishes_and_feelings"]

    # The worker writes to Robin and pins the choice into "My wishes and feelings".
    r = worker.put(f"/children/{child_id}/plan/sections/my_wishes_and_feelings",
                   json={"text": "You told us you feel happy and calm at school.",
                         "pinned_entry_ids": [entry["id"]]})
    assert r.status_code == 200, r.text
    section = next(s for s in r.json()["sections"] if s["key"] == "my_wishes_and_feelings")
    assert section["text"].startswith("You told us")
    assert [e["id"] for e in section["pinned_entries"]] == [entry["id"]]

    # Published, the plan is frozen: later edits do not change version 1.
    r = worker.post(f"/children/{child_id}/plan/versions")
    assert r.status_code == 201 and r.json()["version"] == 1
    worker.put(f"/children/{child_id}/plan/sections/my_wishes_and_feelings",
               json={"text": "Changed later.", "pinned_entry_ids": []})
    v1 = worker.get(f"/children/{child_id}/plan/versions/1").json()["plan"]
    frozen = next(s for s in v1["sections"] if s["key"] == "my_wishes_and_feelings")
    assert frozen["text"].startswith("You told us")
    assert [e["id"] for e in frozen["pinned_entries"]] == [entry["id"]]
    assert worker.get(f"/children/{child_id}/plan/versions").json()["items"][0]["version"] == 1

    # The team manager sees the same plan; a worker of another team does not know Robin.
    assert world.manager.get(f"/children/{child_id}/plan").status_code == 200
    assert_problem(world.other_worker.get(f"/children/{child_id}/plan"), 404)
