"""Consent decides which captures may be made and what reaches the plan."""

from datetime import datetime, timedelta, timezone

from tests.support import World, assert_problem, consent_body, symbols_entry


def _child_without_consent(world: World) -> str:
    r = world.worker.post("/children", json={
        "preferred_name": "Ash", "date_of_birth": "2016-05-05", "team_id": world.team_id})
    return r.json()["id"]


def test_capture_is_refused_without_a_consent_covering_it(world: World) -> None:
    child_id = _child_without_consent(world)
    session = world.open_session(child_id=child_id)
    tablet = world.capture(session)
    body = symbols_entry(world.board, ["happy"])
    problem = assert_problem(tablet.post(f"/sessions/{session['id']}/entries", json=body), 403)
    assert problem["missing_scope"] == "symbols" and "symbols" in problem["detail"]
    assert world.worker.get(f"/children/{child_id}/entries").json()["items"] == []

    # A consent for photos only still does not cover symbols…
    world.worker.post(f"/children/{child_id}/consents", json=consent_body(["photo"]))
    assert tablet.post(f"/sessions/{session['id']}/entries", json=body).status_code == 403
    # …one for symbols does, and the entry names it.
    consent = world.worker.post(f"/children/{child_id}/consents",
                                json=consent_body(["symbols"])).json()
    r = tablet.post(f"/sessions/{session['id']}/entries", json=body)
    assert r.status_code == 201 and r.json()["consent_id"] == consent["id"]


def test_consent_outside_its_dates_covers_nothing(world: World) -> None:
    child_id = _child_without_consent(world)
    now = datetime.now(timezone.utc)
    world.worker.post(f"/children/{child_id}/consents", json=consent_body(
        ["symbols"], valid_from=(now - timedelta(days=30)).isoformat(),
        valid_until=(now - timedelta(days=1)).isoformat()))
    world.worker.post(f"/children/{child_id}/consents", json=consent_body(
        ["symbols"], valid_from=(now + timedelta(days=1)).isoformat()))
    statuses = sorted(c["status"] for c in
                      world.worker.get(f"/children/{child_id}/consents").json()["items"])
    assert statuses == ["expired", "pending"]
    session = world.open_session(child_id=child_id)
    r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["happy"]))
    assert_problem(r, 403)


def test_withdrawn_consent_takes_entries_out_of_the_plan(world: World) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    kept = tablet.post(f"/sessions/{session['id']}/entries",
                       json=symbols_entry(world.board, ["happy"])).json()
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert [e["id"] for e in plan["latest_voice"]] == [kept["id"]]
    world.worker.put(f"/children/{world.child_id}/plan/sections/about_me",
                     json={"text": "About me", "pinned_entry_ids": [kept["id"]]})
    world.worker.post(f"/children/{world.child_id}/plan/versions")

    r = world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                          json={"reason": "Parent asked at the review."})
    assert r.status_code == 200
    assert r.json()["status"] == "withdrawn" and r.json()["withdrawn_at"]

    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert plan["latest_voice"] == []
    assert all(s["pinned_entries"] == [] for s in plan["sections"])
    published = world.worker.get(f"/children/{world.child_id}/plan/versions/1").json()["plan"]
    assert published["latest_voice"] == []
    assert all(s["pinned_entries"] == [] for s in published["sections"])
    # The statutory record keeps it.
    assert world.worker.get(f"/entries/{kept['id']}").status_code == 200
    # No new captures under it, and it cannot be withdrawn twice.
    assert_problem(tablet.post(f"/sessions/{session['id']}/entries",
                               json=symbols_entry(world.board, ["sad"])), 403)
    assert_problem(world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                                     json={"reason": "again"}), 409)


def test_entry_under_consent_without_plan_scope_stays_out_of_the_plan(world: World) -> None:
    child_id = _child_without_consent(world)
    world.worker.post(f"/children/{child_id}/consents", json=consent_body(["symbols"]))
    session = world.open_session(child_id=child_id)
    entry = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                        json=symbols_entry(world.board, ["calm"])).json()
    assert world.worker.get(f"/children/{child_id}/plan").json()["latest_voice"] == []
    problem = assert_problem(world.worker.put(
        f"/children/{child_id}/plan/sections/about_me",
        json={"text": "", "pinned_entry_ids": [entry["id"]]}), 422)
    assert "plan" in problem["detail"]


def test_observation_needs_no_capture_consent_but_child_mode_cannot_add_one(world: World) -> None:
    child_id = _child_without_consent(world)
    session = world.open_session(child_id=child_id)
    body = {"kind": "observation", "client_id": "0d3c1a2b-2222-4222-8222-222222222222",
            "captured_at": datetime.now(timezone.utc).isoformat(),
            "source": "adult_interpretation", "text": "Reached for the dog picture."}
    assert_problem(world.capture(session).post(f"/sessions/{session['id']}/entries",
                                               json=body), 403)
    r = world.worker.post(f"/sessions/{session['id']}/entries", json=body)
    assert r.status_code == 201 and r.json()["consent_id"] is None


def test_consent_bases_are_recorded_as_given(world: World) -> None:
    child_id = world.child_id
    r = world.worker.post(f"/children/{child_id}/consents", json={
        "given_by": "child", "scopes": ["symbols", "plan"], "method": "symbols",
        "child_assent": "agreed"})
    assert r.status_code == 201 and r.json()["status"] == "active"
    assert r.json()["valid_from"]
    r = world.worker.post(f"/children/{child_id}/consents", json={
        "given_by": "parent_or_carer", "scopes": ["photo"], "method": "written",
        "child_assent": "dissented"})
    problem = assert_problem(r, 422)
    assert "giver_name" in problem["detail"] + str(problem["errors"])

